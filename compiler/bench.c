/*
 * bench.c — `kiln bench`: how fast is the compiled model, and how far from the machine's peak?
 *
 * The model is compiled through the real path (library.c: --emit so into a private folder,
 * dlopened; with --profile the object also carries the profiling entry) and driven only
 * through its model table, as any program linking it would. Inputs are a data set's (--data, or
 * the first test_data_set_* beside the model) when it fits the compiled inputs, else
 * deterministic pseudo-random values of each input's type, so every model can be timed; the
 * inputs, outputs and workspace are 64-byte aligned like a careful caller's.
 *
 * Timing follows ONNX Runtime's anchor script (../shared/models/scripts/bench.js) so the two
 * compare: warm-up runs, then 30 timed calls (10 when one takes over 250 ms), min and median.
 * One thread calls model->run; more call model->run_parallel with a kiln_pool of that many
 * threads. FLOPs are the model table's (2 x multiply-adds of the contractions), the same count
 * as bench.js's; the peak is measured on the spot (bench_peak.c) for the same target.
 *
 * A CUDA target runs on the GPU (cuda_run.c): cuda_run on device copies of the inputs, each
 * call followed by a stream synchronization, so the time is the latency a caller sees, launches
 * included; no peak is measured there, and without a GPU the benchmark is skipped (exit 77).
 *
 * Report lines are "key: value" with fixed keys (scripts/bench.sh and the tests read them).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kiln_pool.h"
#include "kl.h"

#define SLOW_RUN_MS 250.0
enum { DEFAULT_RUNS = 30, SLOW_RUNS = 10 };

/* What one bench session holds while it runs. */
typedef struct bench {
    const kl_bench_opts *o;
    kl_arena *arena;
    const kl_target *target;       /* resolved (native: the host's figures) */
    const kl_target *code;         /* whose code runs here: target, or the ISA variant the
                                      object chooses on this CPU (codegen/llvm/dispatch.c) */
    const char *data_set;          /* where inputs come from; NULL: none */
    bool data_set_given;           /* --data: a mismatch is an error, not a fallback */
    const char *inputs_from;       /* for the report */
    kl_library lib;
    kl_run_buffers buf;
    kiln_pool *pool;
    kl_cuda_run *gpu;              /* CUDA targets: the driver and the loaded model */
    int runs, warmup;
    double min_ms, median_ms;
    kl_peak peak;
} bench;

/* ---------------------------------------------------------------------------------------
 * Inputs
 * --------------------------------------------------------------------------------------- */

static bool pick_data_set(bench *B, kl_diag *d) {
    const kl_bench_opts *o = B->o;
    if (o->data_dir) {
        if (!kl_path_is_dir(o->data_dir))
            return kl_error(d, NULL, "data folder '%s' does not exist", o->data_dir);
        B->data_set = o->data_dir;
        B->data_set_given = true;
        return true;
    }
    kl_ptrvec sets = {0};
    if (!kl_dataset_find_beside(B->arena, o->model_path, &sets, d)) return false;
    B->data_set = sets.n > 0 ? sets.items[0] : NULL;
    return true;
}

/* splitmix64: a fixed seed per input, so two runs time the same values. */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Floats in [-1, 1); integers in [0, 16), small enough to be valid indices of most Gathers;
 * bools 0 or 1; strings one of a few words (never NULL). Types without numbers stay zero. */
static void fill_random(void *data, kl_dtype t, int64_t n, uint64_t seed) {
    static const char *const words[] = {"", "a", "kiln", "Monday", "\xe7\x9a\x84", "x y z"};
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = next_random(&seed);
        float f = (float)((double)(r >> 11) * 0x1.0p-53 * 2.0 - 1.0);
        switch (t) {
        case KL_F32: ((float *)data)[i] = f; break;
        case KL_F64: ((double *)data)[i] = f; break;
        case KL_F16: ((uint16_t *)data)[i] = kl_f32_to_f16(f); break;
        case KL_BF16: ((uint16_t *)data)[i] = kl_f32_to_bf16(f); break;
        case KL_BOOL: ((uint8_t *)data)[i] = r & 1; break;
        case KL_U8: case KL_I8: ((uint8_t *)data)[i] = r & 15; break;
        case KL_U16: case KL_I16: ((uint16_t *)data)[i] = r & 15; break;
        case KL_U32: case KL_I32: ((uint32_t *)data)[i] = r & 15; break;
        case KL_U64: case KL_I64: ((uint64_t *)data)[i] = r & 15; break;
        case KL_U4: case KL_I4: ((uint8_t *)data)[i] = r & 7; break; /* one byte each */
        case KL_U2: case KL_I2: ((uint8_t *)data)[i] = r & 1; break;
        case KL_STRING: ((const char **)data)[i] = words[r % (sizeof words / sizeof *words)]; break;
        default:
            if (!kl_dtype_is_minifloat(t)) return;
            ((uint8_t *)data)[i] = kl_f32_to_minifloat(t, t == KL_F8E8M0 ? f + 2.0f : f, 0);
            break;
        }
    }
}

static void fill_inputs_randomly(bench *B) {
    const kiln_model *m = B->lib.model;
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const kiln_tensor_desc *t = &m->inputs[i];
        size_t esize = kl_dtype_size((kl_dtype)t->dtype);
        if (esize) fill_random(B->buf.inputs[i], (kl_dtype)t->dtype, t->size_bytes / esize, i + 1);
    }
}

static bool fill_inputs(bench *B, kl_diag *d) {
    const char *why = "there is no data set beside the model";
    if (B->data_set) {
        kl_ptrvec values = {0};
        if (!kl_dataset_load(B->arena, B->data_set, "input", &values, d)) return false;
        if (kl_run_buffers_set_inputs(B->arena, B->lib.model, &B->buf, &values, &why)) {
            B->inputs_from = kl_path_base(B->data_set);
            return true;
        }
        if (B->data_set_given)
            return kl_error(d, NULL, "data set '%s' does not fit the compiled model: %s",
                            B->data_set, why);
    }
    fill_inputs_randomly(B);
    B->inputs_from = kl_sprintf(B->arena, "pseudo-random (%s)", why);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Timing
 * --------------------------------------------------------------------------------------- */

/* One call of the model; its time in ms, or a negative value with a diagnostic. */
static double timed_call(bench *B, kl_diag *d) {
    const kiln_model *m = B->lib.model;
    const void *const *in = (const void *const *)B->buf.inputs;
    double t0 = kl_now();
    int rc = B->pool ? m->run_parallel(in, B->buf.outputs, B->buf.workspace,
                                       kiln_pool_parallel(B->pool))
                     : m->run(in, B->buf.outputs, B->buf.workspace);
    double ms = (kl_now() - t0) * 1e3;
    if (rc == KILN_OK) return ms;
    kl_error(d, NULL, "predict returned error code %d%s", rc,
             rc == KILN_E_DYNAMIC_OUTPUT ? " (KILN_E_DYNAMIC_OUTPUT: an output's length depends "
                                           "on the data; kiln bench runs fixed-shape models only)"
                                         : "");
    return -1;
}

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* A CUDA model: cuda_run on device buffers, each call waited for (cuda_run.c). */
static bool time_gpu_runs(bench *B, kl_diag *d) {
    B->runs = B->o->runs > 0 ? B->o->runs : DEFAULT_RUNS;
    double *ms = kl_alloc_array(B->arena, (size_t)B->runs, sizeof *ms);
    if (!kl_cuda_run_time(B->gpu, &B->buf, B->warmup, B->runs, ms, d)) return false;
    qsort(ms, (size_t)B->runs, sizeof *ms, compare_doubles);
    B->min_ms = ms[0];
    B->median_ms = ms[B->runs / 2];
    return true;
}

/* Warm-up runs, the number of timed runs (from the last warm-up's time unless given), then the
 * timed runs: their min and median (the upper middle, as bench.js takes it). */
static bool time_runs(bench *B, kl_diag *d) {
    if (B->gpu) return time_gpu_runs(B, d);
    double last = -1;
    if (B->warmup == 0 && B->o->runs == 0) B->warmup = 1; /* one run to choose `runs` by */
    for (int i = 0; i < B->warmup; i++)
        if ((last = timed_call(B, d)) < 0) return false;
    B->runs = B->o->runs > 0 ? B->o->runs : last > SLOW_RUN_MS ? SLOW_RUNS : DEFAULT_RUNS;
    double *ms = kl_alloc_array(B->arena, (size_t)B->runs, sizeof *ms);
    for (int i = 0; i < B->runs; i++)
        if ((ms[i] = timed_call(B, d)) < 0) return false;
    qsort(ms, (size_t)B->runs, sizeof *ms, compare_doubles);
    B->min_ms = ms[0];
    B->median_ms = ms[B->runs / 2];
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Report
 * --------------------------------------------------------------------------------------- */

/* The model's name for a reader: its file's, or its folder's for the zoo layout NAME/model.onnx. */
static const char *model_label(kl_arena *a, const char *path) {
    const char *name = kl_c_name_from_path(a, path);
    if (strcmp(name, "model") != 0) return name;
    const char *dir = kl_path_base(kl_path_dir(a, path));
    return *dir && strcmp(dir, ".") && strcmp(dir, "/") ? dir : name;
}

static void print_header(const bench *B) {
    FILE *out = B->o->out;
    const kiln_model *m = B->lib.model;
    const kl_target *t = B->code;
    fprintf(out, "model:      %s (%s), %u input%s, %u output%s\n",
            model_label(B->arena, B->o->model_path), B->o->model_path, m->n_inputs,
            m->n_inputs == 1 ? "" : "s", m->n_outputs, m->n_outputs == 1 ? "" : "s");
    if (B->gpu)
        fprintf(out, "target:     %s (%s)\ndevice:     %s\n", m->target, m->cpu,
                kl_cuda_run_device(B->arena, B->gpu));
    else
        fprintf(out, "target:     %s (cpu %s), %d-bit vectors (%d float lanes), %s\n", m->target,
                m->cpu, t->vector_bits, kl_target_lanes(t, KL_F32), t->fma ? "FMA" : "no FMA");
    if (t != B->target)
        fprintf(out, "code:       its %s variant, chosen at run time for this CPU (%d variants)\n",
                t->name, B->lib.stats.n_variants);
    fprintf(out, "threads:    %d\n", B->pool ? kiln_pool_parallel(B->pool)->threads : 1);
    fprintf(out, "compile:    %.2f s, %d kernels, workspace %lld bytes\n",
            B->lib.compile_seconds, B->lib.stats.n_kernels,
            (long long)B->lib.stats.workspace_size);
    fprintf(out, "inputs:     %s\n", B->inputs_from);
    fprintf(out, "flops:      %lld per inference\n", (long long)m->flops);
}

/* One decimal, three significant digits below 1 (a tiny model on many threads). */
static int decimals(double v) { return v < 1 ? 3 : 1; }

/* "X at min, Y at median" of flops / time, scaled; "-" when the model counts no flops. */
static void print_pair(FILE *out, const char *key, double flops, double min_ms, double med_ms,
                       double scale, const char *unit) {
    fprintf(out, "%-11s ", key);
    if (flops <= 0) {
        fprintf(out, "- (no contractions counted)\n");
        return;
    }
    double at_min = flops / (min_ms * 1e6) * scale, at_median = flops / (med_ms * 1e6) * scale;
    fprintf(out, "%.*f%s at min, %.*f%s at median\n", decimals(at_min), at_min, unit,
            decimals(at_median), at_median, unit);
}

static void print_results(const bench *B) {
    FILE *out = B->o->out;
    const kl_peak *p = &B->peak;
    double flops = (double)B->lib.model->flops;
    fprintf(out, "runs:       %d timed after %d warm-up\n", B->runs, B->warmup);
    fprintf(out, "time:       min %.4f ms, median %.4f ms\n", B->min_ms, B->median_ms);
    print_pair(out, "speed:", flops, B->min_ms, B->median_ms, 1, " GFLOP/s");
    if (B->gpu) {
        fprintf(out, "peak:       - (not measured on GPUs)\n");
        return;
    }
    fprintf(out, "peak:       %.1f GFLOP/s for %d thread%s (measured", p->gflops, p->threads,
            p->threads == 1 ? "" : "s");
    if (p->threads > 1)
        fprintf(out, " on the pool; 1 thread %.1f, x %d = %.1f;", p->gflops_1t, p->threads,
                p->threads * p->gflops_1t);
    else
        fputc(':', out);
    fprintf(out, " %d multiply-add chains x %d lanes)\n", p->chains, p->lanes);
    print_pair(out, "of peak:", flops, B->min_ms, B->median_ms, 100 / p->gflops, "%");
}

/* ---------------------------------------------------------------------------------------
 * Entry point
 * --------------------------------------------------------------------------------------- */

static bool open_model(bench *B, kl_diag *d) {
    const kl_bench_opts *o = B->o;
    kl_library_opts lo = {.model_path = o->model_path, .bindings = o->bindings,
                          .n_bindings = o->n_bindings, .bind_from = B->data_set,
                          .target = B->target, .opt_level = o->opt_level,
                          .profile = o->profile, .microkernels = o->microkernels,
                          .no_dispatch = o->no_dispatch,
                          .cuda_emulate = o->cuda_emulate, .purpose = "bench", .out = o->out};
    if (!kl_library_open(B->arena, &lo, &B->lib, d)) return false;
    B->code = kl_target_host_variant(B->target, B->lib.stats.variants, B->lib.stats.n_variants);
    return kl_run_buffers_alloc(B->lib.model, &B->buf, d) &&
           (!B->gpu || kl_cuda_run_load(B->gpu, B->lib.model, d));
}

static bool start_pool(bench *B, kl_diag *d) {
    if (B->o->threads <= 1) return true;
    B->pool = kiln_pool_create(B->o->threads);
    return B->pool ? true : kl_error(d, NULL, "cannot start %d threads", B->o->threads);
}

static bool measure(bench *B, kl_diag *d) {
    if (!fill_inputs(B, d) || !start_pool(B, d)) return false;
    print_header(B);
    fflush(B->o->out);
    const kiln_parallel *par = B->pool ? kiln_pool_parallel(B->pool) : NULL;
    if (!time_runs(B, d) ||
        (!B->gpu && !kl_bench_peak(B->arena, &B->lib, B->code, par, &B->peak, d)))
        return false;
    print_results(B);
    if (!B->o->profile) return true;
    kl_profile_opts po = {.runs = B->runs, .per_kernel = B->o->profile_kernels,
                          .predict_ms = B->median_ms, .out = B->o->out, .par = par};
    return kl_bench_profile(B->lib.model, &B->buf, &po, d);
}

/* A CUDA target: the GPU, or why the benchmark is skipped; threads and the per-kernel profile
 * are CPU features. */
static bool open_gpu(bench *B, bool *skipped, kl_diag *d) {
    if (B->target->backend != KL_BACKEND_CUDA) return true;
    if (B->o->threads > 1 || B->o->profile)
        return kl_error(d, NULL, "--threads and --profile are for CPU targets, not %s",
                        B->target->name);
    const char *skip = NULL;
    B->gpu = kl_cuda_run_open(B->arena, &skip, d);
    if (B->gpu) return true;
    if (skip) {
        fprintf(B->o->out, "SKIP: %s; target %s needs an NVIDIA GPU and its driver to run\n",
                skip, B->target->name);
        *skipped = true;
    }
    return false;
}

int kl_bench(const kl_bench_opts *o, kl_diag *d) {
    bench B = {.o = o, .arena = kl_arena_new(), .warmup = o->warmup < 0 ? 0 : o->warmup};
    bool skipped = false;
    B.target = kl_target_resolve(B.arena, o->target ? o->target : kl_target_default(), d);
    bool ok = B.target && open_gpu(&B, &skipped, d) && pick_data_set(&B, d) &&
              open_model(&B, d) && measure(&B, d);
    if (B.pool) kiln_pool_destroy(B.pool);
    if (B.gpu) kl_cuda_run_unload(B.gpu); /* before its library goes */
    kl_run_buffers_free(&B.buf);
    kl_library_close(&B.lib);
    kl_cuda_run_close(B.gpu);
    kl_arena_free(B.arena);
    fflush(o->out);
    return skipped ? KL_CHECK_SKIPPED : ok ? 0 : 1;
}
