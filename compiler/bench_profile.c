/*
 * bench_profile.c — `kiln bench --profile`: where the time of one inference goes.
 *
 * The profiling entry (kiln.h `run_profiled`, compiled in with kl_codegen_opts.profile) calls
 * us before and after every kernel; the callback reads CLOCK_MONOTONIC and adds the difference
 * to that kernel's total, so nothing is allocated or printed while the model runs. With
 * --threads the entry hands each kernel's tasks to the same pool as the timed runs
 * (kiln_model.run_profiled_parallel), and the callback, on the calling thread, sees a kernel
 * start and end around its parallel-for: the table shows where the time of a threaded
 * inference goes, kernels that split poorly included.
 *
 * A user thinks in ONNX nodes, not kernels: the tile pass splits one convolution into several
 * region and remainder kernels (k12_conv_in1_in2, ...), and fusion names a kernel after the
 * node it computes. So kernels are summed under their node (kernel table `node`), with their
 * flops summed too for the GFLOP/s column; --profile-kernels lists them one by one instead.
 * The total line compares the sum of the kernels with the profiled run's own wall time (the
 * difference is the callbacks' overhead and the code between kernels) and with the unprofiled
 * median.
 */
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kl.h"

enum { TOP_ROWS = 20, NAME_WIDTH = 44 };

/* The callback's state: the start of the kernel running now, and each kernel's total. */
typedef struct kernel_clock {
    double started;
    double *seconds;           /* per kernel, summed over the runs */
    int64_t *calls;            /* per kernel: an object with ISA variants (codegen/llvm/
                                  dispatch.c) lists every variant's kernels; one set runs */
} kernel_clock;

static void on_kernel(void *ctx, int32_t kernel, int32_t phase) {
    kernel_clock *c = ctx;
    double now = kl_now();
    if (phase == 0) c->started = now;
    else c->seconds[kernel] += now - c->started, c->calls[kernel]++;
}

/* One line of the table: a node (or a kernel) and everything summed under it. */
typedef struct profile_row {
    const char *name, *op;
    int kernels;
    double seconds;            /* summed over the runs */
    int64_t flops;             /* per run */
} profile_row;

static int slower_first(const void *x, const void *y) {
    const profile_row *a = x, *b = y;
    return a->seconds < b->seconds ? 1 : a->seconds > b->seconds ? -1 : 0;
}

/* Group kernels into rows by node (or not at all); returns the number of rows. Kernels without
 * a node (none today, but the table allows it) stand alone under their own name. */
static int group_rows(const kiln_model *m, const kernel_clock *c, bool per_kernel,
                      profile_row *rows) {
    int n = 0;
    for (uint32_t k = 0; k < m->n_kernels; k++) {
        const kiln_kernel_info *ki = &m->kernels[k];
        if (c->calls[k] == 0) continue; /* another ISA variant's */
        bool by_node = !per_kernel && ki->node && *ki->node;
        const char *key = by_node ? ki->node : ki->name;
        int r = 0;
        while (by_node && r < n && strcmp(rows[r].name, key) != 0) r++;
        if (!by_node || r == n) {
            r = n++;
            rows[r] = (profile_row){.name = key, .op = ki->op_type ? ki->op_type : ""};
        }
        rows[r].kernels++;
        rows[r].seconds += c->seconds[k];
        rows[r].flops += ki->flops;
    }
    qsort(rows, (size_t)n, sizeof *rows, slower_first);
    return n;
}

static void print_gflops(FILE *out, int64_t flops, double ms) {
    if (flops > 0 && ms > 0) fprintf(out, " %9.1f", (double)flops / (ms * 1e6));
    else fprintf(out, " %9s", "-");
}

/* A name cut to the column keeps its end, where ONNX exporters put what tells nodes apart
 * ("/layer4/layer4.0/downsample/downsample.0/Conv"). */
static void print_row(FILE *out, const char *name, const char *op, int kernels, double ms,
                      double share, int64_t flops) {
    size_t len = strlen(name);
    if (len > NAME_WIDTH) fprintf(out, "  ...%-*s", NAME_WIDTH - 3, name + len - (NAME_WIDTH - 3));
    else fprintf(out, "  %-*s", NAME_WIDTH, name);
    fprintf(out, " %-16.16s %7d %10.4f %6.1f%%", op, kernels, ms, share);
    print_gflops(out, flops, ms);
    fputc('\n', out);
}

static void print_table(const kiln_model *m, const profile_row *rows, int n, double run_ms,
                        const kl_profile_opts *o) {
    FILE *out = o->out;
    double total_s = 0;
    int64_t total_flops = 0;
    int kernels = 0;
    for (int r = 0; r < n; r++)
        total_s += rows[r].seconds, total_flops += rows[r].flops, kernels += rows[r].kernels;
    double total_ms = total_s * 1e3 / o->runs;
    int threads = o->par && o->par->threads > 1 ? o->par->threads : 1;
    fprintf(out, "profile:    %d runs of the profiled entry (%d thread%s), %d kernels in %d %s\n",
            o->runs, threads, threads > 1 ? "s" : "", kernels, n,
            o->per_kernel ? "rows" : "nodes");
    fprintf(out, "  %-*s %-16s %7s %10s %7s %9s\n", NAME_WIDTH, o->per_kernel ? "kernel" : "node",
            "op", "kernels", "ms/run", "share", "GFLOP/s");
    int shown = n < TOP_ROWS ? n : TOP_ROWS;
    for (int r = 0; r < shown; r++) {
        double ms = rows[r].seconds * 1e3 / o->runs;
        print_row(out, rows[r].name, rows[r].op, rows[r].kernels, ms,
                  total_ms > 0 ? 100 * ms / total_ms : 0, rows[r].flops);
    }
    if (shown < n) {
        double rest_s = total_s;
        for (int r = 0; r < shown; r++) rest_s -= rows[r].seconds;
        fprintf(out, "  (%d more rows: %.4f ms/run, %.1f%%)\n", n - shown, rest_s * 1e3 / o->runs,
                total_s > 0 ? 100 * rest_s / total_s : 0);
    }
    print_row(out, "total", "", kernels, total_ms, total_ms > 0 ? 100 : 0,
              total_flops);
    fprintf(out, "profile total: kernels %.4f ms of %.4f ms per profiled run (%.1f%%); "
            "unprofiled median %.4f ms\n", total_ms, run_ms,
            run_ms > 0 ? 100 * total_ms / run_ms : 0, o->predict_ms);
}

/* One call of the profiling entry; its wall time in seconds, or -1 with a diagnostic. */
static double profiled_call(const kiln_model *m, const kl_run_buffers *b, kernel_clock *clock,
                            const kiln_parallel *par, kl_diag *d) {
    double t0 = kl_now();
    const void *const *in = (const void *const *)b->inputs;
    int rc = par ? m->run_profiled_parallel(in, b->outputs, b->workspace, on_kernel, clock, par)
                 : m->run_profiled(in, b->outputs, b->workspace, on_kernel, clock);
    double t = kl_now() - t0;
    if (rc == KILN_OK) return t;
    kl_error(d, NULL, "the profiled run returned error code %d", rc);
    return -1;
}

bool kl_bench_profile(const kiln_model *m, const kl_run_buffers *b, const kl_profile_opts *o,
                      kl_diag *d) {
    const kiln_parallel *par = o->par && o->par->threads > 1 ? o->par : NULL;
    if (!m->run_profiled || (par && !m->run_profiled_parallel))
        return kl_error(d, NULL, "the model has no profiling entry");
    kernel_clock clock = {0, calloc(m->n_kernels + 1u, sizeof(double)),
                          calloc(m->n_kernels + 1u, sizeof(int64_t))};
    profile_row *rows = calloc(m->n_kernels + 1u, sizeof *rows);
    bool ok = clock.seconds && clock.calls && rows;
    if (!ok) kl_error(d, NULL, "out of memory for the profile");
    /* One untimed call first: the profiled entry is code of its own, cold until it has run. */
    ok = ok && profiled_call(m, b, &clock, par, d) >= 0;
    if (ok) memset(clock.seconds, 0, m->n_kernels * sizeof(double));
    if (ok) memset(clock.calls, 0, m->n_kernels * sizeof(int64_t));
    double run_s = 0;
    for (int r = 0; ok && r < o->runs; r++) {
        double t = profiled_call(m, b, &clock, par, d);
        ok = t >= 0;
        run_s += t;
    }
    if (ok) {
        int n = group_rows(m, &clock, o->per_kernel, rows);
        print_table(m, rows, n, o->runs > 0 ? run_s * 1e3 / o->runs : 0, o);
    }
    free(clock.seconds);
    free(clock.calls);
    free(rows);
    return ok;
}
