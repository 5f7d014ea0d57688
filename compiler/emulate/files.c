/*
 * emulate/files.c — the files between kiln and the test driver running on the target.
 *
 * kiln writes the data set's inputs as they are (type, shape, bytes); the driver checks them
 * against the model table it was linked with, so a mismatch is found where the truth is. The
 * driver writes back every output with the name, type and shape from that table, which is how
 * kiln knows what it compares without loading the foreign object. Formats: see driver.c.
 * Reading is defensive: a short or garbled file (a driver killed mid-write) is an error with a
 * message, never a read past the buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "emulate.h"
#include "kiln.h"

bool kl_emu_write_inputs(const char *path, const kl_ptrvec *values, kl_diag *d) {
    FILE *f = fopen(path, "wb");
    if (!f) return kl_error(d, NULL, "cannot write '%s'", path);
    uint32_t n = (uint32_t)values->n;
    fwrite("KLI1", 1, 4, f);
    fwrite(&n, 4, 1, f);
    for (int i = 0; i < values->n; i++) {
        const kl_value *v = values->items[i];
        int32_t dtype = (int32_t)v->dtype, rank = v->shape.rank;
        uint64_t bytes = (uint64_t)kl_value_bytes(v);
        fwrite(&dtype, 4, 1, f);
        fwrite(&rank, 4, 1, f);
        fwrite(v->shape.dim, 8, (size_t)rank, f);
        fwrite(&bytes, 8, 1, f);
        if (v->dtype == KL_STRING) /* the texts (driver.c's format) */
            for (int64_t e = 0, n = kl_shape_numel(&v->shape); e < n; e++) {
                const char *s = ((const char *const *)v->data)[e];
                uint32_t len = (uint32_t)strlen(s);
                fwrite(&len, 4, 1, f);
                fwrite(s, 1, len, f);
            }
        else if (bytes && v->data) fwrite(v->data, 1, (size_t)bytes, f);
        else if (bytes) /* no data (an empty constant): zeros of the right size */
            for (uint64_t b = 0; b < bytes; b++) fputc(0, f);
    }
    if (fclose(f) != 0) return kl_error(d, NULL, "cannot write '%s'", path);
    return true;
}

/* A cursor over the whole output file. */
typedef struct reader {
    const unsigned char *p, *end;
    bool bad;
} reader;

static const void *take(reader *r, uint64_t n) {
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const void *at = r->p;
    r->p += n;
    return at;
}

static uint32_t take_u32(reader *r) {
    uint32_t v = 0;
    const void *at = take(r, 4);
    if (at) memcpy(&v, at, 4);
    return v;
}

static uint64_t take_u64(reader *r) {
    uint64_t v = 0;
    const void *at = take(r, 8);
    if (at) memcpy(&v, at, 8);
    return v;
}

static char *take_string(kl_arena *a, reader *r) {
    uint32_t n = take_u32(r);
    const char *at = take(r, n);
    return at ? kl_strndup(a, at, n) : NULL;
}

static bool read_output(kl_arena *a, reader *r, kiln_tensor_desc *t, void **data) {
    t->name = take_string(a, r);
    t->dtype = (int32_t)take_u32(r);
    t->rank = (int32_t)take_u32(r);
    if (r->bad || t->rank < 0 || t->rank > KL_MAX_RANK) return false;
    int64_t *shape = kl_alloc_array(a, (size_t)t->rank + 1, sizeof *shape);
    for (int i = 0; i < t->rank; i++) shape[i] = (int64_t)take_u64(r);
    t->shape = shape;
    t->dim_names = kl_alloc_array(a, (size_t)t->rank + 1, sizeof(char *));
    t->size_bytes = (int64_t)take_u64(r);
    if (t->dtype == KL_STRING) { /* the texts, each a NUL-terminated copy */
        if (t->size_bytes < 0 || t->size_bytes % 8) return false;
        int64_t n = t->size_bytes / 8;
        const char **s = kl_alloc_array(a, (size_t)n + 1, sizeof *s);
        for (int64_t i = 0; i < n; i++)
            if (!(s[i] = take_string(a, r))) return false;
        *data = s;
        return true;
    }
    const void *bytes = take(r, (uint64_t)t->size_bytes);
    if (!bytes) return false;
    *data = kl_alloc(a, (size_t)t->size_bytes + 1);
    memcpy(*data, bytes, (size_t)t->size_bytes);
    return true;
}

static unsigned char *slurp(kl_arena *a, const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = n >= 0 ? kl_alloc(a, (size_t)n + 1) : NULL;
    bool ok = buf && fread(buf, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    *size = ok ? (size_t)n : 0;
    return ok ? buf : NULL;
}

bool kl_emu_read_outputs(kl_arena *a, const char *path, kl_emulated_result *res, kl_diag *d) {
    size_t size = 0;
    unsigned char *buf = slurp(a, path, &size);
    if (!buf) return kl_error(d, NULL, "the test driver wrote no '%s'", path);
    reader r = {buf, buf + size, false};
    const void *magic = take(&r, 4);
    if (!magic || memcmp(magic, "KLO1", 4))
        return kl_error(d, NULL, "'%s' is not a test driver's output", path);
    res->rc = (int32_t)take_u32(&r);
    res->message = take_string(a, &r);
    res->n_outputs = take_u32(&r);
    if (r.bad || res->n_outputs > 4096)
        return kl_error(d, NULL, "'%s' is truncated", path);
    res->outputs = kl_alloc_array(a, res->n_outputs + 1u, sizeof *res->outputs);
    res->data = kl_alloc_array(a, res->n_outputs + 1u, sizeof *res->data);
    for (uint32_t i = 0; i < res->n_outputs; i++)
        if (!read_output(a, &r, &res->outputs[i], &res->data[i]))
            return kl_error(d, NULL, "'%s' is truncated at output %u", path, i);
    return true;
}
