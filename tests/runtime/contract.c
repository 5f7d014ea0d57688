/*
 * contract.c — the run-time contract of a kiln-compiled object, tested from the outside.
 *
 * runtime-min/kiln.h promises: predict()/run() never allocate, print or abort; all mutable
 * state lives in the caller's workspace (so calls are reentrant and results do not depend on
 * what the workspace held before); NULL pointers give KILN_E_NULL_ARGUMENT and a misaligned
 * workspace KILN_E_MISALIGNED; the model table agrees with the header. This program checks each
 * promise for one compiled model, chosen at build time:
 *     -DMODEL=digits -DMODEL_UPPER=DIGITS -DMODEL_HEADER='"digits.h"'
 * It drives the model through the generic entry (NAME_run and the table's run), so it works for
 * any model; with -DPREDICT_1_1 (one float input, one float output) it calls NAME_predict too.
 * The parallel entry (run_parallel) must give the same outputs bit for bit without a
 * parallel-for, with its tasks run in any order, and on a kiln_pool; with -DEXPECT_TASKS the
 * model is big enough that some kernels must be handed to the parallel-for.
 *
 * Interposition: the program is linked with -Wl,--wrap=malloc,... so every reference to those
 * libc functions from the objects of this link (the compiled model and this file) binds to the
 * __wrap_ functions below, which count calls while `armed` and otherwise forward to libc.
 * Unlike defining `malloc` itself, this leaves libc's and the sanitizers' allocators alone, so
 * the test also runs in the ASan/UBSan build. (check_object.sh proves the object references
 * nothing else from libc but memcpy/memset.)
 *
 * Prints one line per check and "N passed, M failed"; exit status 1 if any failed.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include MODEL_HEADER
#include "kiln_pool.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(a) #a
#define STR(a) STR_(a)
#define MODEL_TABLE CAT(MODEL, _model)
#define MODEL_RUN CAT(MODEL, _run)
#define MODEL_PREDICT CAT(MODEL, _predict)
#define MODEL_WORKSPACE_SIZE CAT(MODEL_UPPER, _WORKSPACE_SIZE)
#define MODEL_WORKSPACE_ALIGN CAT(MODEL_UPPER, _WORKSPACE_ALIGN)

enum { MAX_TENSORS = 16, THREAD_RUNS = 50 };

/* ---- interposed libc functions ---------------------------------------------------------- */

/* Written by the main thread around calls into the model; the counters are atomic because the
 * concurrency check runs the model on two threads while armed. */
static volatile bool armed;
static _Atomic int forbidden_calls;

static void note_call(void)
{
    if (armed)
        forbidden_calls++;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_puts(const char *s);
int __real_putchar(int c);
int __real_fputs(const char *s, FILE *f);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);

void *__wrap_malloc(size_t n) { note_call(); return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { note_call(); return __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { note_call(); return __real_realloc(p, n); }
void __wrap_free(void *p) { note_call(); __real_free(p); }
int __wrap_puts(const char *s) { note_call(); return __real_puts(s); }
int __wrap_putchar(int c) { note_call(); return __real_putchar(c); }
int __wrap_fputs(const char *s, FILE *f) { note_call(); return __real_fputs(s, f); }
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    note_call();
    return __real_fwrite(p, size, n, f);
}

int __wrap_printf(const char *fmt, ...)
{
    note_call();
    va_list ap;
    va_start(ap, fmt);
    int r = vprintf(fmt, ap);
    va_end(ap);
    return r;
}

int __wrap_fprintf(FILE *f, const char *fmt, ...)
{
    note_call();
    va_list ap;
    va_start(ap, fmt);
    int r = vfprintf(f, fmt, ap);
    va_end(ap);
    return r;
}

/* abort() cannot return to its caller: a model that calls it fails the whole program here. */
_Noreturn void __wrap_abort(void)
{
    static const char msg[] = "FAIL - the compiled model called abort()\n";
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(1);
    _exit(1);
}

/* ---- reporting ---------------------------------------------------------------------------- */

typedef struct tally {
    int passed, failed;
} tally;

static void report(tally *t, bool ok, const char *what, const char *detail)
{
    if (ok) {
        t->passed++;
        printf("ok   - %s\n", what);
    } else {
        t->failed++;
        printf("FAIL - %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    }
}

/* ---- buffers for one call ------------------------------------------------------------------ */

typedef struct call_buffers {
    void *inputs[MAX_TENSORS];
    void *outputs[MAX_TENSORS];
    unsigned char *workspace;      /* aligned; workspace_bytes() usable */
} call_buffers;

static size_t dtype_bytes(int32_t dtype)
{
    switch (dtype) {
    case KILN_FLOAT64: case KILN_INT64: case KILN_UINT64: return 8;
    case KILN_FLOAT32: case KILN_INT32: case KILN_UINT32: return 4;
    case KILN_FLOAT16: case KILN_BFLOAT16: case KILN_INT16: case KILN_UINT16: return 2;
    case KILN_INT8: case KILN_UINT8: case KILN_BOOL: return 1;
    default: return 0;
    }
}

/* Deterministic inputs in [-1, 1) for float32; zeros (valid indices) for everything else. */
static void fill_input(const kiln_tensor_desc *t, void *data)
{
    memset(data, 0, (size_t)t->size_bytes);
    if (t->dtype != KILN_FLOAT32)
        return;
    uint32_t state = 12345u;
    float *f = data;
    for (int64_t i = 0; i < t->size_bytes / 4; i++) {
        state = state * 1664525u + 1013904223u;
        f[i] = (float)(state >> 8) / (float)(1u << 23) - 1.0f;
    }
}

static void *xalloc(size_t align, size_t bytes)
{
    void *p = aligned_alloc(align, (bytes + align - 1) / align * align + align);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* The workspace plus room for the misaligned calls (which must not read past the buffer even
 * if they ignored the error). Allocated KILN_WORKSPACE_ALIGN-aligned whatever the table says:
 * the table is checked separately. */
static size_t workspace_bytes(const kiln_model *m)
{
    return m->workspace_size + 2 * KILN_WORKSPACE_ALIGN;
}

static void alloc_call(const kiln_model *m, call_buffers *c)
{
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        c->inputs[i] = xalloc(64, (size_t)m->inputs[i].size_bytes);
        fill_input(&m->inputs[i], c->inputs[i]);
    }
    for (uint32_t i = 0; i < m->n_outputs; i++)
        c->outputs[i] = xalloc(64, (size_t)m->outputs[i].size_bytes);
    c->workspace = xalloc(KILN_WORKSPACE_ALIGN, workspace_bytes(m));
}

static void free_call(const kiln_model *m, call_buffers *c)
{
    for (uint32_t i = 0; i < m->n_inputs; i++)
        free(c->inputs[i]);
    for (uint32_t i = 0; i < m->n_outputs; i++)
        free(c->outputs[i]);
    free(c->workspace);
}

static void poison(const kiln_model *m, call_buffers *c, int byte)
{
    for (uint32_t i = 0; i < m->n_outputs; i++)
        memset(c->outputs[i], byte, (size_t)m->outputs[i].size_bytes);
    memset(c->workspace, byte, workspace_bytes(m));
}

static bool same_outputs(const kiln_model *m, const call_buffers *a, const call_buffers *b)
{
    for (uint32_t i = 0; i < m->n_outputs; i++)
        if (memcmp(a->outputs[i], b->outputs[i], (size_t)m->outputs[i].size_bytes))
            return false;
    return true;
}

/* Calls through `entry` with the counters armed; returns the status. */
static int armed_run(int (*entry)(const void *const *, void *const *, void *),
                     const void *const *inputs, void *const *outputs, void *workspace)
{
    armed = true;
    int rc = entry(inputs, outputs, workspace);
    armed = false;
    return rc;
}

/* ---- the checks -------------------------------------------------------------------------- */

static void check_table(tally *t, const kiln_model *m)
{
    char why[160];
    report(t, m->abi_version == KILN_ABI_VERSION, "model table abi_version is KILN_ABI_VERSION",
           NULL);
    report(t, m->name && !strcmp(m->name, STR(MODEL)), "model table name is the C prefix",
           m->name);
    snprintf(why, sizeof why, "table %llu, header %llu", (unsigned long long)m->workspace_size,
             (unsigned long long)MODEL_WORKSPACE_SIZE);
    report(t, m->workspace_size == (uint64_t)MODEL_WORKSPACE_SIZE,
           "workspace size in the table matches the header", why);
    report(t, m->workspace_align == KILN_WORKSPACE_ALIGN &&
              MODEL_WORKSPACE_ALIGN == KILN_WORKSPACE_ALIGN,
           "workspace alignment is KILN_WORKSPACE_ALIGN in table and header", NULL);
    report(t, m->run == MODEL_RUN, "the table's run is NAME_run", NULL);
    bool sizes_ok = m->n_inputs > 0 && m->n_outputs > 0 && m->n_inputs <= MAX_TENSORS &&
                    m->n_outputs <= MAX_TENSORS;
    for (uint32_t k = 0; sizes_ok && k < m->n_inputs + m->n_outputs; k++) {
        const kiln_tensor_desc *d = k < m->n_inputs ? &m->inputs[k] : &m->outputs[k - m->n_inputs];
        int64_t count = 1;
        for (int32_t r = 0; r < d->rank; r++)
            count *= d->shape[r];
        sizes_ok = d->name && count * (int64_t)dtype_bytes(d->dtype) == d->size_bytes;
    }
    report(t, sizes_ok, "every tensor's size_bytes is its shape times its element size", NULL);
}

static void check_runs(tally *t, const kiln_model *m)
{
    call_buffers first = {0}, again = {0};
    alloc_call(m, &first);
    alloc_call(m, &again);
    char why[160];

    poison(m, &first, 0x00);
    forbidden_calls = 0;
    int rc = armed_run(m->run, (const void *const *)first.inputs, first.outputs,
                       first.workspace);
    snprintf(why, sizeof why, "returned %d", rc);
    report(t, rc == KILN_OK, "run returns KILN_OK", why);
    snprintf(why, sizeof why, "%d calls", (int)forbidden_calls);
    report(t, forbidden_calls == 0,
           "run calls no malloc/calloc/realloc/free/printf/fprintf/puts/abort", why);

    /* Different garbage in the outputs and the workspace: the result must not change (every
     * output element is written; nothing is read from the workspace before it is written). */
    poison(m, &again, 0xFF);
    rc = armed_run(MODEL_RUN, (const void *const *)again.inputs, again.outputs, again.workspace);
    report(t, rc == KILN_OK && same_outputs(m, &first, &again),
           "a second call, other workspace, 0xFF garbage: same outputs bit for bit", NULL);
    poison(m, &again, 0x7F);
    rc = armed_run(MODEL_RUN, (const void *const *)again.inputs, again.outputs, again.workspace);
    report(t, rc == KILN_OK && same_outputs(m, &first, &again),
           "a third call, NaN-like 0x7F garbage: same outputs bit for bit", NULL);

    /* Inputs are const. */
    call_buffers fresh = {0};
    alloc_call(m, &fresh);
    bool inputs_kept = true;
    for (uint32_t i = 0; i < m->n_inputs; i++)
        inputs_kept &= !memcmp(first.inputs[i], fresh.inputs[i],
                               (size_t)m->inputs[i].size_bytes);
    report(t, inputs_kept, "inputs are left unchanged", NULL);

#ifdef PREDICT_1_1
    poison(m, &again, 0x55);
    armed = true;
    rc = MODEL_PREDICT(again.inputs[0], again.outputs[0], again.workspace);
    armed = false;
    report(t, rc == KILN_OK && same_outputs(m, &first, &again) && forbidden_calls == 0,
           "NAME_predict gives run's outputs, with no forbidden calls", NULL);
#endif
    free_call(m, &first);
    free_call(m, &again);
    free_call(m, &fresh);
}

static void check_errors(tally *t, const kiln_model *m)
{
    call_buffers c = {0};
    alloc_call(m, &c);
    void *inputs[MAX_TENSORS], *outputs[MAX_TENSORS];
    char why[200];
    forbidden_calls = 0;

    for (uint32_t k = 0; k < m->n_inputs + m->n_outputs; k++) {
        memcpy(inputs, c.inputs, sizeof inputs);
        memcpy(outputs, c.outputs, sizeof outputs);
        bool is_input = k < m->n_inputs;
        uint32_t i = is_input ? k : k - m->n_inputs;
        if (is_input)
            inputs[i] = NULL;
        else
            outputs[i] = NULL;
        int rc = armed_run(m->run, (const void *const *)inputs, outputs, c.workspace);
        snprintf(why, sizeof why, "returned %d", rc);
        char what[160];
        snprintf(what, sizeof what, "NULL %s %u (%s) gives KILN_E_NULL_ARGUMENT",
                 is_input ? "input" : "output", i,
                 is_input ? m->inputs[i].name : m->outputs[i].name);
        report(t, rc == KILN_E_NULL_ARGUMENT, what, why);
    }

    int rc = armed_run(m->run, (const void *const *)c.inputs, c.outputs, NULL);
    snprintf(why, sizeof why, "returned %d", rc);
    report(t, rc == KILN_E_NULL_ARGUMENT, "NULL workspace gives KILN_E_NULL_ARGUMENT", why);
    rc = armed_run(m->run, NULL, c.outputs, c.workspace);
    snprintf(why, sizeof why, "returned %d", rc);
    report(t, rc == KILN_E_NULL_ARGUMENT, "NULL input array gives KILN_E_NULL_ARGUMENT", why);
    rc = armed_run(m->run, (const void *const *)c.inputs, NULL, c.workspace);
    snprintf(why, sizeof why, "returned %d", rc);
    report(t, rc == KILN_E_NULL_ARGUMENT, "NULL output array gives KILN_E_NULL_ARGUMENT", why);

    static const int offsets[] = {1, 4, 8, 32};
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
        rc = armed_run(m->run, (const void *const *)c.inputs, c.outputs,
                       c.workspace + offsets[o]);
        snprintf(why, sizeof why, "returned %d", rc);
        char what[80];
        snprintf(what, sizeof what, "workspace misaligned by %d gives KILN_E_MISALIGNED",
                 offsets[o]);
        report(t, rc == KILN_E_MISALIGNED, what, why);
    }
#ifdef PREDICT_1_1
    armed = true;
    int rc_in = MODEL_PREDICT(NULL, c.outputs[0], c.workspace);
    int rc_out = MODEL_PREDICT(c.inputs[0], NULL, c.workspace);
    int rc_ws = MODEL_PREDICT(c.inputs[0], c.outputs[0], NULL);
    int rc_mis = MODEL_PREDICT(c.inputs[0], c.outputs[0], c.workspace + 16);
    armed = false;
    snprintf(why, sizeof why, "returned %d %d %d %d", rc_in, rc_out, rc_ws, rc_mis);
    report(t, rc_in == KILN_E_NULL_ARGUMENT && rc_out == KILN_E_NULL_ARGUMENT &&
              rc_ws == KILN_E_NULL_ARGUMENT && rc_mis == KILN_E_MISALIGNED,
           "NAME_predict reports NULL and misaligned arguments", why);
#endif
    snprintf(why, sizeof why, "%d calls", (int)forbidden_calls);
    report(t, forbidden_calls == 0, "error paths make no forbidden calls either", why);
    free_call(m, &c);
}

/* Two threads, each with its own workspace, run the model at the same time. */
typedef struct thread_job {
    const kiln_model *m;
    call_buffers c;
    const call_buffers *expected;
    int mismatches;
} thread_job;

static void *run_repeatedly(void *arg)
{
    thread_job *job = arg;
    for (int r = 0; r < THREAD_RUNS; r++) {
        int rc = job->m->run((const void *const *)job->c.inputs, job->c.outputs,
                             job->c.workspace);
        if (rc != KILN_OK || !same_outputs(job->m, job->expected, &job->c))
            job->mismatches++;
    }
    return NULL;
}

static void check_concurrent(tally *t, const kiln_model *m)
{
    call_buffers expected = {0};
    alloc_call(m, &expected);
    m->run((const void *const *)expected.inputs, expected.outputs, expected.workspace);

    thread_job jobs[2];
    pthread_t threads[2];
    forbidden_calls = 0;
    armed = true;
    for (int j = 0; j < 2; j++) {
        jobs[j] = (thread_job){.m = m, .expected = &expected};
        alloc_call(m, &jobs[j].c);
        poison(m, &jobs[j].c, j ? 0xAA : 0x11);
    }
    bool started[2];
    for (int j = 0; j < 2; j++)
        started[j] = pthread_create(&threads[j], NULL, run_repeatedly, &jobs[j]) == 0;
    for (int j = 0; j < 2; j++)
        if (started[j])
            pthread_join(threads[j], NULL);
    armed = false;
    char why[120];
    snprintf(why, sizeof why, "%d + %d mismatching runs, %d forbidden calls", jobs[0].mismatches,
             jobs[1].mismatches, (int)forbidden_calls);
    report(t, started[0] && started[1] && jobs[0].mismatches == 0 && jobs[1].mismatches == 0 &&
              forbidden_calls == 0,
           "two threads with their own workspaces get the same outputs (reentrant)", why);
    free_call(m, &expected);
    for (int j = 0; j < 2; j++)
        free_call(m, &jobs[j].c);
}

/* A parallel-for that runs the tasks last to first on the calling thread and counts them:
 * tasks must not depend on their order. */
typedef struct reverse_ctx {
    int tasks;
} reverse_ctx;

static void reverse_for(void *ctx, int64_t n, kiln_task_fn task, void *arg)
{
    reverse_ctx *r = ctx;
    for (int64_t i = n - 1; i >= 0; i--) {
        task(arg, i);
        r->tasks++;
    }
}

typedef int (*run_parallel_fn)(const void *const *, void *const *, void *, const kiln_parallel *);

static bool parallel_matches(const kiln_model *m, const call_buffers *want, call_buffers *c,
                             const kiln_parallel *par, int byte)
{
    poison(m, c, byte);
    armed = true;
    int rc = m->run_parallel((const void *const *)c->inputs, c->outputs, c->workspace, par);
    armed = false;
    return rc == KILN_OK && same_outputs(m, want, c) && forbidden_calls == 0;
}

static void check_parallel(tally *t, const kiln_model *m)
{
    call_buffers want = {0}, c = {0};
    alloc_call(m, &want);
    alloc_call(m, &c);
    m->run((const void *const *)want.inputs, want.outputs, want.workspace);
    forbidden_calls = 0;
    report(t, m->run_parallel && parallel_matches(m, &want, &c, NULL, 0x33),
           "run_parallel without a parallel-for gives run's outputs bit for bit", NULL);
    reverse_ctx r = {0};
    kiln_parallel reverse = {reverse_for, &r, 4};
    report(t, parallel_matches(m, &want, &c, &reverse, 0x44),
           "run_parallel with tasks run in reverse order gives run's outputs bit for bit", NULL);
#ifdef EXPECT_TASKS
    char why[64];
    snprintf(why, sizeof why, "%d tasks", r.tasks);
    report(t, r.tasks > 0, "heavy kernels are handed to the parallel-for", why);
#endif
    for (int threads = 2; threads <= 3; threads++) {
        kiln_pool *pool = kiln_pool_create(threads); /* allocates: before arming */
        bool ok = pool != NULL;
        for (int rep = 0; ok && rep < 20; rep++)
            ok = parallel_matches(m, &want, &c, kiln_pool_parallel(pool), rep & 1 ? 0x55 : 0xAA);
        kiln_pool_destroy(pool);
        char what[96];
        snprintf(what, sizeof what,
                 "run_parallel on a kiln_pool of %d threads: run's outputs, no forbidden calls",
                 threads);
        report(t, ok, what, NULL);
    }
    free_call(m, &want);
    free_call(m, &c);
}

int main(void)
{
    const kiln_model *m = &MODEL_TABLE;
    tally t = {0, 0};
    printf("run-time contract of %s.o\n", STR(MODEL));
    check_table(&t, m);
    if (m->n_inputs > 0 && m->n_outputs > 0 && m->n_inputs <= MAX_TENSORS &&
        m->n_outputs <= MAX_TENSORS) {
        check_runs(&t, m);
        check_errors(&t, m);
        check_concurrent(&t, m);
        check_parallel(&t, m);
    }
    printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
