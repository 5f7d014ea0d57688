/*
 * fire.c — predict under fire: a kiln-compiled model driven the way a busy server drives it.
 *
 *   fire threads   8 threads, each with its own workspace and its own inputs, call the model
 *                  over and over at the same time; every output must equal, bit for bit, what
 *                  one thread computed for the same input alone. Built with -fsanitize=thread
 *                  and linked with an object compiled `--sanitize thread`, so ThreadSanitizer
 *                  sees every load and store of the generated code too: any state shared
 *                  between calls (a writable global, a buffer outside the workspace) is a race
 *                  it reports.
 *   fire fp        inputs full of NaN, +-Inf, denormals, and finite values with a few of those
 *                  sprinkled in: predict returns KILN_OK, gives the same bits on a second call,
 *                  leaves the caller's floating-point environment (rounding, flush-to-zero,
 *                  exception masks) as it found it, keeps denormal inputs finite and NaN
 *                  inputs NaN. Runs at
 *                  the portable target and at `native` (AVX-512 register blocks and libxsmm
 *                  micro-kernels on a machine that has them).
 * The model is chosen at build time (-DMODEL=digits -DMODEL_HEADER='"digits.h"'), driven only
 * through its table (NAME_model.run), with one float32 input and one float32 output.
 * Prints one line per check and "N passed, M failed"; exit status 1 if any failed.
 */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include MODEL_HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define MODEL_TABLE CAT(MODEL, _model)

enum { THREADS = 8, CALLS = 6 };

#if defined(__SANITIZE_THREAD__)
/* LLVM 19's ThreadSanitizer pass turns the generated code's block fills and copies into
 * __tsan_memset / __tsan_memcpy / __tsan_memmove, which GCC 12's libtsan (the run-time this
 * program links when built with gcc) does not define yet. Forward them to libc's, which libtsan
 * intercepts and checks; weak, so that a run-time that has them wins. */
__attribute__((weak)) void *__tsan_memset(void *d, int c, size_t n);
__attribute__((weak)) void *__tsan_memcpy(void *d, const void *s, size_t n);
__attribute__((weak)) void *__tsan_memmove(void *d, const void *s, size_t n);
__attribute__((weak)) void *__tsan_memset(void *d, int c, size_t n) { return memset(d, c, n); }
__attribute__((weak)) void *__tsan_memcpy(void *d, const void *s, size_t n) {
    return memcpy(d, s, n);
}
__attribute__((weak)) void *__tsan_memmove(void *d, const void *s, size_t n) {
    return memmove(d, s, n);
}
#endif

static int passed, failed;

static void report(bool ok, const char *what, const char *why) {
    if (ok) passed++;
    else failed++;
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, ok ? "" : ": ", ok ? "" : why);
}

/* One call's memory: input, output and workspace, 64-byte aligned, owned by the caller. */
typedef struct call {
    float *in, *out;
    void *ws;
} call;

static size_t count_of(const kiln_tensor_desc *t) { return (size_t)t->size_bytes / sizeof(float); }

static bool call_alloc(const kiln_model *m, call *c) {
    size_t ws = m->workspace_size ? (size_t)m->workspace_size : 64;
    c->in = aligned_alloc(64, ((size_t)m->inputs[0].size_bytes + 63) / 64 * 64);
    c->out = aligned_alloc(64, ((size_t)m->outputs[0].size_bytes + 63) / 64 * 64);
    c->ws = aligned_alloc(64, (ws + 63) / 64 * 64);
    return c->in && c->out && c->ws;
}

static void call_free(call *c) {
    free(c->in);
    free(c->out);
    free(c->ws);
}

static int run(const kiln_model *m, call *c) {
    const void *ins[1] = {c->in};
    void *outs[1] = {c->out};
    return m->run(ins, outs, c->ws);
}

/* Deterministic inputs in [-1, 1), different for every seed. */
static void fill_inputs(float *x, size_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
}

/* ---- threads ------------------------------------------------------------------------- */

typedef struct job {
    const kiln_model *m;
    int seed;
    const float *expected; /* the single-thread output for this seed */
    bool ok;
    int rc;
} job;

static void *thread_main(void *arg) {
    job *j = arg;
    call c;
    j->ok = call_alloc(j->m, &c);
    for (int k = 0; j->ok && k < CALLS; k++) {
        fill_inputs(c.in, count_of(&j->m->inputs[0]), (uint32_t)j->seed);
        memset(c.ws, 0xA5 + k, j->m->workspace_size ? (size_t)j->m->workspace_size : 64);
        j->rc = run(j->m, &c);
        j->ok = j->rc == KILN_OK &&
                memcmp(c.out, j->expected, (size_t)j->m->outputs[0].size_bytes) == 0;
    }
    call_free(&c);
    return NULL;
}

static void check_threads(const kiln_model *m) {
    size_t n_out = count_of(&m->outputs[0]);
    float *expected = calloc(THREADS * n_out + 1, sizeof(float));
    call c = {0};
    bool ok = expected && call_alloc(m, &c);
    for (int t = 0; ok && t < THREADS; t++) { /* the reference: one thread, one at a time */
        fill_inputs(c.in, count_of(&m->inputs[0]), (uint32_t)t);
        ok = run(m, &c) == KILN_OK;
        memcpy(expected + t * n_out, c.out, (size_t)m->outputs[0].size_bytes);
    }
    call_free(&c);
    job jobs[THREADS];
    pthread_t threads[THREADS];
    int started = 0;
    for (int t = 0; ok && t < THREADS; t++, started++) {
        jobs[t] = (job){.m = m, .seed = t, .expected = expected + t * n_out};
        if (pthread_create(&threads[t], NULL, thread_main, &jobs[t]) != 0) break;
    }
    for (int t = 0; t < started; t++) pthread_join(threads[t], NULL);
    char why[128] = "the single-thread reference run failed";
    for (int t = 0; ok && t < THREADS; t++) {
        if (t >= started) {
            ok = false;
            snprintf(why, sizeof why, "could not start thread %d", t);
        } else if (!jobs[t].ok) {
            ok = false;
            snprintf(why, sizeof why, "thread %d got rc %d or outputs that differ", t,
                     jobs[t].rc);
        }
    }
    report(ok, "8 threads with their own workspaces give the single-thread outputs", why);
    free(expected);
}

/* ---- special values ------------------------------------------------------------------ */

typedef enum pattern { ALL_NAN, ALL_INF, ALL_NEG_INF, ALL_DENORMAL, MIXED, N_PATTERNS } pattern;
static const char *const pattern_names[] = {"NaN", "+Inf", "-Inf", "denormal",
                                            "mixed (finite with NaN, Inf, denormals)"};

static void fill_pattern(float *x, size_t n, pattern p) {
    fill_inputs(x, n, 7);
    for (size_t i = 0; i < n; i++) {
        switch (p) {
        case ALL_NAN: x[i] = NAN; break;
        case ALL_INF: x[i] = INFINITY; break;
        case ALL_NEG_INF: x[i] = -INFINITY; break;
        case ALL_DENORMAL: x[i] = (i % 2 ? -1.0f : 1.0f) * FLT_TRUE_MIN * (float)(1 + i % 100); break;
        case MIXED:
            if (i % 7 == 0) x[i] = NAN;
            else if (i % 11 == 0) x[i] = i % 2 ? INFINITY : -INFINITY;
            else if (i % 5 == 0) x[i] = FLT_MIN / 4;
            break;
        default: break;
        }
    }
}

/* The x87 control word and MXCSR's control bits (rounding, flush-to-zero, denormals-are-zero,
 * exception masks) are the caller's; only the sticky status flags (MXCSR's low 6 bits) may
 * change. glibc's x86-64 fenv_t holds both. */
static bool same_env(const fenv_t *a, const fenv_t *b) {
    return a->__control_word == b->__control_word &&
           (a->__mxcsr & ~0x3fu) == (b->__mxcsr & ~0x3fu);
}

static void check_pattern(const kiln_model *m, pattern p) {
    call c = {0};
    char what[160], why[160] = "out of memory";
    snprintf(what, sizeof what, "%s inputs flow through", pattern_names[p]);
    bool ok = call_alloc(m, &c);
    size_t n_out = count_of(&m->outputs[0]);
    float *first = calloc(n_out + 1, sizeof(float));
    ok = ok && first;
    if (ok) {
        fill_pattern(c.in, count_of(&m->inputs[0]), p);
        fenv_t before, after;
        fegetenv(&before);
        int rc1 = run(m, &c);
        fegetenv(&after);
        memcpy(first, c.out, (size_t)m->outputs[0].size_bytes);
        int rc2 = run(m, &c);
        if (rc1 != KILN_OK || rc2 != KILN_OK) {
            ok = false;
            snprintf(why, sizeof why, "predict returned %d, then %d", rc1, rc2);
        } else if (!same_env(&before, &after)) {
            ok = false;
            snprintf(why, sizeof why, "the floating-point environment changed (mxcsr %#x -> %#x)",
                     before.__mxcsr, after.__mxcsr);
        } else if (memcmp(first, c.out, (size_t)m->outputs[0].size_bytes) != 0) {
            ok = false;
            snprintf(why, sizeof why, "a second call gave other bits");
        }
        for (size_t i = 0; ok && p == ALL_DENORMAL && i < n_out; i++)
            if (!isfinite(c.out[i])) {
                ok = false;
                snprintf(why, sizeof why, "output %zu is %g for denormal inputs", i, c.out[i]);
            }
        /* NaN propagates through every operator of both models (max and min included, as in
           ONNX Runtime): an all-NaN input that gives a number somewhere lost it on the way */
        for (size_t i = 0; ok && p == ALL_NAN && i < n_out; i++)
            if (!isnan(c.out[i])) {
                ok = false;
                snprintf(why, sizeof why, "output %zu is %g for NaN inputs", i, c.out[i]);
            }
    }
    report(ok, what, why);
    call_free(&c);
    free(first);
}

int main(int argc, char **argv) {
    const kiln_model *m = &MODEL_TABLE;
    if (argc != 2 || (strcmp(argv[1], "threads") && strcmp(argv[1], "fp"))) {
        fprintf(stderr, "usage: %s threads|fp\n", argv[0]);
        return 2;
    }
    if (m->n_inputs != 1 || m->n_outputs != 1 || m->inputs[0].dtype != KILN_FLOAT32 ||
        m->outputs[0].dtype != KILN_FLOAT32) {
        fprintf(stderr, "%s: the model must have one float input and one float output\n", argv[0]);
        return 2;
    }
    if (!strcmp(argv[1], "threads")) {
        check_threads(m);
    } else {
        for (pattern p = 0; p < N_PATTERNS; p++) check_pattern(m, p);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
