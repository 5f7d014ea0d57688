/*
 * bench_peak.c — the denominator of `kiln bench`'s "% of peak": measured, not assumed.
 *
 * codegen/llvm/peak.c builds a probe for the same target the model was compiled for (the same
 * vector width and FMA or not), as a shared library in the model library's private folder. We
 * load it, find an iteration count that takes about 50 ms, and keep the fastest of 4 calls
 * (about 0.2 s in all): the fastest, because on a shared machine every disturbance only ever
 * makes a run slower. With more than one thread the probe runs once per thread at the same time
 * through the caller's parallel-for (the same pool the model runs on), and the aggregate is
 * measured too: a machine whose cores share a power budget, or are busy with other work,
 * does not reach threads x the one-thread figure, and the percentage should say so.
 */
#include <dlfcn.h>
#include <math.h>

#include "kiln.h"
#include "kl.h"

enum { PEAK_REPEATS = 4 };
#define PEAK_CALL_SECONDS 0.05
#define PEAK_CALIBRATE_SECONDS 0.01

typedef float (*peak_run_fn)(int64_t iterations);

typedef struct probe {
    void *handle;
    peak_run_fn run;
    const int64_t *info;       /* flops per iteration, chains, lanes */
} probe;

/* One thread's share of a parallel measurement: each writes its own checksum slot. */
typedef struct parallel_job {
    peak_run_fn run;
    int64_t iterations;
    volatile float *sink;
} parallel_job;

static bool load_probe(kl_arena *a, const kl_library *lib, const kl_target *t, probe *p,
                       kl_diag *d) {
    const char *path = kl_library_path(a, lib, "peak.so");
    if (!kl_codegen_peak(a, t, path, d)) return false;
    p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) return kl_error(d, NULL, "cannot load the peak probe: %s", dlerror());
    p->run = (peak_run_fn)dlsym(p->handle, KL_PEAK_RUN);
    p->info = dlsym(p->handle, KL_PEAK_INFO);
    if (!p->run || !p->info)
        return kl_error(d, NULL, "the peak probe lacks %s or %s", KL_PEAK_RUN, KL_PEAK_INFO);
    return true;
}

static double time_one(peak_run_fn run, int64_t iterations, volatile float *sink) {
    double t0 = kl_now();
    *sink = run(iterations);
    return kl_now() - t0;
}

/* Iterations for one call of about PEAK_CALL_SECONDS. */
static int64_t calibrate(peak_run_fn run, volatile float *sink) {
    int64_t n = 1000;
    double t;
    while ((t = time_one(run, n, sink)) < PEAK_CALIBRATE_SECONDS && n < (INT64_C(1) << 40))
        n *= 4;
    double scaled = (double)n * PEAK_CALL_SECONDS / (t > 0 ? t : 1e-9);
    return scaled < 1 ? 1 : (int64_t)scaled;
}

static void parallel_task(void *arg, int64_t i) {
    parallel_job *job = arg;
    job->sink[i] = job->run(job->iterations);
}

/* Fastest of PEAK_REPEATS rounds; in each, every thread runs `iterations` at once. */
static double best_seconds(kl_arena *a, const probe *p, int64_t iterations,
                           const kiln_parallel *par) {
    int threads = par ? par->threads : 1;
    volatile float *sink = kl_alloc_array(a, (size_t)threads, sizeof *sink);
    parallel_job job = {p->run, iterations, sink};
    double best = INFINITY;
    for (int r = 0; r < PEAK_REPEATS; r++) {
        double t0 = kl_now();
        if (par) par->parallel_for(par->ctx, threads, parallel_task, &job);
        else sink[0] = p->run(iterations);
        double t = kl_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

bool kl_bench_peak(kl_arena *a, const kl_library *lib, const kl_target *t,
                   const kiln_parallel *par, kl_peak *out, kl_diag *d) {
    probe p = {0};
    bool ok = load_probe(a, lib, t, &p, d);
    if (ok) {
        volatile float sink = 0;
        int64_t iterations = calibrate(p.run, &sink);
        double flops = (double)iterations * (double)p.info[0];
        out->chains = (int)p.info[1];
        out->lanes = (int)p.info[2];
        out->threads = 1;
        out->gflops = out->gflops_1t = flops / best_seconds(a, &p, iterations, NULL) * 1e-9;
        if (par && par->threads > 1) {
            out->threads = par->threads;
            out->gflops = flops * par->threads / best_seconds(a, &p, iterations, par) * 1e-9;
        }
    }
    if (p.handle) dlclose(p.handle);
    return ok;
}
