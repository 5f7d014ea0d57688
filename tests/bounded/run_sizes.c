/*
 * run_sizes.c — one object with a bounded dim, run at several sizes (tests/bounded/).
 *
 * te_seq is the shared transformer_encoder with its sequence length made symbolic
 * (make_model.py), compiled with `--shape input_ids:1x1..32`. Through predict_dynamic, each of
 * the sizes in data/ (5, 17, 32 tokens) must give ONNX Runtime's logits (make_expected.js)
 * within the models' tolerance, in buffers of exactly the run-time size (ASan watches them in
 * the sanitizer build, where the object is compiled with --sanitize address). Sizes past the
 * bound, below it and with a wrong fixed dim must return KILN_E_SHAPE and leave the outputs
 * alone. Also: predict at the bound equals predict_dynamic at 32, run_dynamic through the model
 * table, and a second call on the same workspace with a smaller size after a larger one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MODEL_HEADER
#define MODEL_HEADER "te_seq.h"
#endif
#include MODEL_HEADER

#define VOCAB 1000
#define RTOL 1e-3
#define ATOL 1e-4

static int failures;

static void expect(int ok, const char *what, long long n) {
    if (!ok) {
        fprintf(stderr, "FAIL: %s (n = %lld)\n", what, n);
        failures++;
    }
}

static void *read_file(const char *name, size_t want) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", DATA_DIR, name);
    FILE *f = fopen(path, "rb");
    void *buf = malloc(want);
    if (!f || !buf || fread(buf, 1, want, f) != want) {
        fprintf(stderr, "cannot read %zu bytes of %s\n", want, path);
        exit(1);
    }
    fclose(f);
    return buf;
}

/* Worst error against the expected logits, as a multiple of the tolerance (<= 1 passes). */
static double tolerance_used(const float *got, const float *want, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double limit = ATOL + RTOL * fabs(want[i]);
        double used = isfinite(got[i]) ? fabs(got[i] - want[i]) / limit : INFINITY;
        if (used > worst) worst = used;
    }
    return worst;
}

static void run_size(void *ws, long long n) {
    char name[64];
    snprintf(name, sizeof name, "ids_%lld.bin", n);
    int64_t *ids = read_file(name, (size_t)n * sizeof *ids);
    snprintf(name, sizeof name, "logits_%lld.bin", n);
    float *want = read_file(name, (size_t)n * VOCAB * sizeof *want);
    float *logits = malloc((size_t)n * VOCAB * sizeof *logits); /* exactly the run-time size */
    int64_t in_shape[2] = {1, n}, out_shape[3] = {-1, -1, -1};
    int rc = te_seq_predict_dynamic(ids, in_shape, logits, out_shape, ws);
    expect(rc == KILN_OK, "predict_dynamic returns KILN_OK", n);
    expect(out_shape[0] == 1 && out_shape[1] == n && out_shape[2] == VOCAB,
           "the output's dims are [1, n, 1000]", n);
    double used = rc == KILN_OK ? tolerance_used(logits, want, (size_t)n * VOCAB) : INFINITY;
    printf("n = %2lld: max error %.3f of the tolerance (rtol %g, atol %g)\n", n, used, RTOL, ATOL);
    expect(used <= 1, "logits match ONNX Runtime's", n);
    free(ids);
    free(want);
    free(logits);
}

/* A shape predict_dynamic must refuse before touching anything. */
static void refuse(void *ws, int64_t d0, int64_t n) {
    int64_t count = d0 * n > 0 ? d0 * n : 1;
    int64_t *ids = calloc((size_t)count, sizeof *ids);
    float *logits = malloc((size_t)count * VOCAB * sizeof *logits);
    for (int64_t i = 0; i < count * VOCAB; i++) logits[i] = 12345.0f;
    int64_t in_shape[2] = {d0, n}, out_shape[3] = {-7, -7, -7};
    int rc = te_seq_predict_dynamic(ids, in_shape, logits, out_shape, ws);
    expect(rc == KILN_E_SHAPE, "a shape outside the bounds returns KILN_E_SHAPE", n);
    int untouched = out_shape[0] == -7 && out_shape[1] == -7 && out_shape[2] == -7;
    for (int64_t i = 0; i < count * VOCAB; i++) untouched = untouched && logits[i] == 12345.0f;
    expect(untouched, "a refused call writes nothing", n);
    free(ids);
    free(logits);
}

/* predict (fixed shapes: the bounds) and run_dynamic (the model table) agree with
 * predict_dynamic at 32. */
static void other_entries(void *ws) {
    int64_t *ids = read_file("ids_32.bin", 32 * sizeof *ids);
    float *a = malloc(32 * VOCAB * sizeof *a), *b = malloc(32 * VOCAB * sizeof *b);
    expect(te_seq_predict(ids, a, ws) == KILN_OK, "predict at the bound", 32);
    const kiln_model *m = &te_seq_model;
    expect(m->abi_version == KILN_ABI_VERSION && m->bounded == 1 && m->run_dynamic != NULL,
           "the model table says bounded and has run_dynamic", 32);
    expect(m->inputs[0].shape[1] == 32 && m->input_min_shapes[0][1] == 1,
           "the model table gives the range 1..32", 32);
    int64_t in_shape[2] = {1, 32}, out_shape[3];
    const void *ins[1] = {ids};
    const int64_t *in_shapes[1] = {in_shape};
    void *outs[1] = {b};
    int64_t *out_shapes[1] = {out_shape};
    expect(m->run_dynamic(ins, in_shapes, outs, out_shapes, ws) == KILN_OK, "run_dynamic", 32);
    expect(memcmp(a, b, 32 * VOCAB * sizeof *a) == 0, "predict equals run_dynamic at the bound", 32);
    free(ids);
    free(a);
    free(b);
}

int main(void) {
    void *ws = aligned_alloc(TE_SEQ_WORKSPACE_ALIGN,
                             (TE_SEQ_WORKSPACE_SIZE + TE_SEQ_WORKSPACE_ALIGN - 1) /
                                 TE_SEQ_WORKSPACE_ALIGN * TE_SEQ_WORKSPACE_ALIGN);
    long long sizes[] = {32, 5, 17, 5}; /* a smaller size after a larger one, same workspace */
    for (int i = 0; i < 4; i++) run_size(ws, sizes[i]);
    refuse(ws, 1, 33);   /* past the bound */
    refuse(ws, 1, 0);    /* below the range */
    refuse(ws, 2, 5);    /* a fixed dim given another value */
    other_entries(ws);
    free(ws);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    puts("bounded dims: all checks passed");
    return 0;
}
