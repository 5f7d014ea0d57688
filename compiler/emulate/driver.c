/*
 * emulate/driver.c — the generic test driver: a program for the *target*, never built into kiln.
 *
 * `kiln check --target T` (T not the host) compiles the model to an object, writes this file
 * (embedded in kiln as text) and kiln.h beside it, and links them into a program with the
 * target's toolchain (kl_target.link). The program runs under the target's emulator in that
 * folder: it reads kiln-in.bin, calls model_model.run once (run_dynamic for a model whose
 * outputs have data-dependent lengths, each output then written at the shape it reports),
 * writes kiln-out.bin, and exits 0.
 * It talks only through files, so the same source serves Linux (qemu-user) and bare metal
 * (picolibc over semihosting); it never interprets the model, so a foreign object is never
 * loaded into kiln's process.
 *
 * Every check against the model table happens here, on the target, against the real table:
 * the ABI version, and each input's element type, shape and size. What fails is reported as a
 * message in the output file, not through the exit status (bare-metal exits carry little).
 *
 * Formats (little endian, as every kiln target is):
 *   kiln-in.bin   "KLI1" u32 n; n x { i32 dtype, i32 rank, i64 dims[rank], u64 bytes, data }
 *   kiln-out.bin  "KLO1" i32 rc (the run's return code, or 1 with a message), u32 msg_len, msg;
 *                 u32 n; n x { u32 name_len, name, i32 dtype, i32 rank, i64 dims[rank],
 *                 u64 bytes, data }
 * A string tensor's `bytes` is its size at the interface (8 a pointer), and its data is each
 * element's text instead: u32 len, len bytes (no NUL).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

extern const kiln_model model_model;

/* 64-byte aligned, zeroed (a zero-sized tensor still gets a valid pointer). */
static void *alloc64(uint64_t bytes) {
    unsigned char *raw = malloc((size_t)bytes + 128);
    if (!raw) return NULL;
    memset(raw, 0, (size_t)bytes + 128);
    return (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
}

static int read_all(FILE *f, void *p, uint64_t n) {
    return n == 0 || fread(p, 1, (size_t)n, f) == (size_t)n;
}

static void write_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }

static void write_data(FILE *f, const kiln_tensor_desc *t, const void *data, uint64_t bytes) {
    if (t->dtype != KILN_STRING) {
        fwrite(data, 1, (size_t)bytes, f);
        return;
    }
    const char *const *s = data;
    for (uint64_t i = 0; i < bytes / 8; i++) {
        write_u32(f, (uint32_t)strlen(s[i]));
        fwrite(s[i], 1, strlen(s[i]), f);
    }
}

/* A string tensor's elements from the file: each a fresh NUL-terminated copy. */
static int read_strings(FILE *f, const char **out, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint32_t len = 0;
        char *s = NULL;
        if (!read_all(f, &len, 4) || !(s = calloc((size_t)len + 1, 1)) || !read_all(f, s, len))
            return 0;
        out[i] = s;
    }
    return 1;
}
/* Data-dependent outputs: the dims predict_dynamic wrote (NULL: the table's shapes). */
static int64_t *run_shapes[4096];

static int finish(int rc, const char *msg, void *const *outputs) {
    FILE *f = fopen("kiln-out.bin", "wb");
    if (!f) return 2;
    fwrite("KLO1", 1, 4, f);
    fwrite(&rc, 4, 1, f);
    write_u32(f, (uint32_t)strlen(msg));
    fwrite(msg, 1, strlen(msg), f);
    uint32_t n = outputs ? model_model.n_outputs : 0;
    write_u32(f, n);
    for (uint32_t i = 0; i < n; i++) {
        const kiln_tensor_desc *t = &model_model.outputs[i];
        write_u32(f, (uint32_t)strlen(t->name));
        fwrite(t->name, 1, strlen(t->name), f);
        fwrite(&t->dtype, 4, 1, f);
        fwrite(&t->rank, 4, 1, f);
        const int64_t *shape = run_shapes[i] ? run_shapes[i] : t->shape;
        fwrite(shape, 8, (size_t)t->rank, f);
        uint64_t bytes = (uint64_t)t->size_bytes;
        if (run_shapes[i]) { /* dense at the run-time shape, at most the table's size */
            uint64_t numel = 1;
            for (int32_t d = 0; d < t->rank; d++) numel *= (uint64_t)shape[d];
            uint64_t whole = 1;
            for (int32_t d = 0; d < t->rank; d++) whole *= (uint64_t)t->shape[d];
            if (numel < whole) bytes = whole ? bytes / whole * numel : 0;
        }
        fwrite(&bytes, 8, 1, f);
        write_data(f, t, outputs[i], bytes);
    }
    return fclose(f) == 0 ? 0 : 2;
}

/* One input from the file, checked against the table; NULL with *why set. */
static void *read_input(FILE *f, const kiln_tensor_desc *t, char *why, size_t cap) {
    int32_t dtype = 0, rank = 0;
    int64_t dims[16];
    uint64_t bytes = 0;
    if (!read_all(f, &dtype, 4) || !read_all(f, &rank, 4) || rank < 0 || rank > 16 ||
        !read_all(f, dims, 8 * (uint64_t)rank) || !read_all(f, &bytes, 8)) {
        snprintf(why, cap, "input '%s': truncated input file", t->name);
        return NULL;
    }
    int fits = dtype == t->dtype && rank == t->rank && (int64_t)bytes == t->size_bytes;
    for (int32_t d = 0; fits && d < rank; d++) fits = dims[d] == t->shape[d];
    if (!fits) {
        snprintf(why, cap, "input '%s': the data set's tensor (type %d, rank %d, %llu bytes) "
                 "is not the compiled one (type %d, rank %d, %lld bytes)", t->name, (int)dtype,
                 (int)rank, (unsigned long long)bytes, (int)t->dtype, (int)t->rank,
                 (long long)t->size_bytes);
        return NULL;
    }
    void *p = alloc64(bytes);
    int ok = p && (dtype == KILN_STRING ? read_strings(f, p, bytes / 8) : read_all(f, p, bytes));
    if (!ok) {
        snprintf(why, cap, "input '%s': %s", t->name, p ? "truncated data" : "out of memory");
        return NULL;
    }
    return p;
}

/* The inputs' dims as predict_dynamic takes them: the table's. */
static const int64_t **input_shapes(const kiln_model *m) {
    static const int64_t *shapes[4096];
    for (uint32_t i = 0; i < m->n_inputs && i < 4096; i++) shapes[i] = m->inputs[i].shape;
    return shapes;
}

int main(void) {
    static char why[512];
    const kiln_model *m = &model_model;
    if (m->abi_version != KILN_ABI_VERSION) {
        snprintf(why, sizeof why, "model table ABI %u, driver built for %d",
                 (unsigned)m->abi_version, KILN_ABI_VERSION);
        return finish(1, why, NULL);
    }
    FILE *f = fopen("kiln-in.bin", "rb");
    char magic[4];
    uint32_t n = 0;
    if (!f || !read_all(f, magic, 4) || memcmp(magic, "KLI1", 4) || !read_all(f, &n, 4))
        return finish(1, "cannot read kiln-in.bin", NULL);
    if (n != m->n_inputs) {
        snprintf(why, sizeof why, "%u inputs given, the model takes %u", (unsigned)n,
                 (unsigned)m->n_inputs);
        return finish(1, why, NULL);
    }
    void **inputs = calloc(n + 1u, sizeof *inputs);
    void **outputs = calloc(m->n_outputs + 1u, sizeof *outputs);
    void *workspace = alloc64(m->workspace_size);
    if (!inputs || !outputs || !workspace) return finish(1, "out of memory", NULL);
    for (uint32_t i = 0; i < n; i++)
        if (!(inputs[i] = read_input(f, &m->inputs[i], why, sizeof why)))
            return finish(1, why, NULL);
    fclose(f);
    for (uint32_t i = 0; i < m->n_outputs; i++)
        if (!(outputs[i] = alloc64((uint64_t)m->outputs[i].size_bytes)))
            return finish(1, "out of memory for the outputs", NULL);
    int rc;
    if (m->run_dynamic && !m->bounded && m->n_outputs <= 4096) {
        /* data-dependent outputs: the inputs are at the table's shapes (checked above) */
        for (uint32_t i = 0; i < m->n_outputs; i++)
            if (!(run_shapes[i] = calloc((size_t)m->outputs[i].rank + 1u, sizeof(int64_t))))
                return finish(1, "out of memory for the output shapes", NULL);
        rc = m->run_dynamic((const void *const *)inputs, (const int64_t *const *)input_shapes(m),
                            outputs, run_shapes, workspace);
    } else {
        rc = m->run((const void *const *)inputs, outputs, workspace);
    }
    if (rc != KILN_OK) {
        snprintf(why, sizeof why, "predict returned error code %d", rc);
        return finish(rc, why, NULL);
    }
    return finish(0, "", outputs);
}
