/*
 * main.c — the kiln command line: argument parsing only; the work is in driver.c, check.c and
 * bench.c.
 *
 *   kiln compile MODEL.onnx -o OUT [--emit obj|so|asm|llvm-ir] [--name NAME]
 *                [--shape INPUT:DIMxDIM...]... [--target T] [-O0..3] [--dump-ir PASS]
 *   kiln check MODEL.onnx [--data DIR]... [--shape ...]... [--rtol X] [--atol Y] [-O N] [--target T]
 *   kiln bench MODEL.onnx [--shape ...]... [--target T] [--threads N] [--profile] [--runs N]
 *              [--warmup N] [--data DIR] [-O N]
 *   kiln targets
 */
#include <limits.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kl.h"

#define KILN_VERSION "0.1.0"
#define MAX_BINDINGS 64
#define MAX_DATA_DIRS 64
#define MAX_THREADS 1024

static const char usage[] =
    "usage: kiln compile MODEL.onnx -o OUT [options]\n"
    "       kiln check MODEL.onnx [--data DIR]... [options]\n"
    "       kiln bench MODEL.onnx [options]\n"
    "       kiln targets\n"
    "\n"
    "compile options:\n"
    "  -o OUT                 output file (NAME.h is written beside it)\n"
    "  --emit obj|so|asm|llvm-ir  what to write (default: from OUT's suffix .o .so .s .ll)\n"
    "  --name NAME            C prefix of the generated symbols (default: from MODEL's file name)\n"
    "  --shape INPUT:DIMS     bind an input's shape, e.g. --shape x:1x3x224x224 (repeatable)\n"
    "  --target T             target: x86-64 (default), x86-64-v2, x86-64-v3, x86-64-v4 or\n"
    "                         native (see `kiln targets`)\n"
    "  -O0 .. -O3             optimization level (default -O2)\n"
    "  --dump-ir PASS         print the IR after PASS: graph passes resolve, infer, bnfold,\n"
    "                         layout, dce; lower; kernel passes fold, fuse, halo, tile,\n"
    "                         tasks; plan\n"
    "  --microkernels M       contractions: auto (default), ir (kiln's register blocks) or\n"
    "                         libxsmm (generated GEMM micro-kernels where they apply)\n"
    "  --stats                print workspace size, sum of intermediates, kernels, time\n"
    "  --sanitize address|thread  (testing) instrument the generated code with LLVM's\n"
    "                         AddressSanitizer or ThreadSanitizer; the program linking it must\n"
    "                         be built with the same -fsanitize\n"
    "check options:\n"
    "  --data DIR             a test_data_set folder (repeatable; default: all beside MODEL)\n"
    "  --rtol X --atol Y      tolerance |got-want| <= atol + rtol*|want| (default 1e-3, 1e-7)\n"
    "  --shape, --target, -O, --microkernels  as for compile\n"
    "  --sanitize address     (testing) the compiled model checked by AddressSanitizer; needs a\n"
    "                         kiln built with -fsanitize=address (scripts/sanitize_predict.sh)\n"
    "bench options (compile through the real path, time predict, compare with the peak):\n"
    "  --threads N            run_parallel on a pool of N threads (default 1: run)\n"
    "  --runs N               timed runs (default 30, or 10 when one run takes over 250 ms)\n"
    "  --warmup N             untimed runs first (default 5)\n"
    "  --profile              also time every kernel; table of the slowest nodes\n"
    "  --profile-kernels      the same, one row per kernel instead of per node\n"
    "  --data DIR             inputs from this data set (default: the first test_data_set_*\n"
    "                         beside MODEL, else pseudo-random values)\n"
    "  --shape, --target, -O, --microkernels  as for compile (-O N also with a space)\n";

typedef struct cli {
    const char *model, *out, *emit, *name, *target, *dump_ir, *microkernels;
    int opt_level;
    bool stats;
    kl_shape_binding bindings[MAX_BINDINGS];
    char binding_names[MAX_BINDINGS][256];
    int n_bindings;
    const char *data_dirs[MAX_DATA_DIRS];
    int n_data_dirs;
    double rtol, atol;
    int threads, runs, warmup;
    bool profile, profile_kernels;
    kl_sanitizer sanitize;
} cli;

static int fail(const char *msg, const char *arg) {
    fprintf(stderr, "kiln: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return 1;
}

/* "x:1x3x224x224" (also "x:1,3,224,224"; "x:" is a scalar). The name is everything before the
 * last ':' so input names holding ':' still work. */
static bool parse_binding(const char *s, kl_shape_binding *b, char *name_buf, size_t cap) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= cap) return false;
    memcpy(name_buf, s, (size_t)(colon - s));
    name_buf[colon - s] = 0;
    b->input = name_buf;
    b->shape.rank = 0;
    const char *p = colon + 1;
    while (*p) {
        char *end;
        errno = 0; /* a number past int64 saturates with ERANGE: refused, not clamped */
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || b->shape.rank == KL_MAX_RANK) return false;
        b->shape.dim[b->shape.rank++] = v;
        p = end;
        if (*p == 'x' || *p == 'X' || *p == ',') {
            p++;
            if (!*p) return false;
        } else if (*p) {
            return false;
        }
    }
    return true;
}

/* A whole number in [lo, hi] (counts of runs, threads, an optimization level). */
static bool parse_count(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* A bench option at argv[*i] (with its value `next`): 1 taken, 0 not one, -1 bad (said). */
static int parse_bench_option(cli *c, const char *a, const char *next, int *i) {
    int *count = !strcmp(a, "--threads") ? &c->threads
                 : !strcmp(a, "--runs")  ? &c->runs
                 : !strcmp(a, "--warmup") ? &c->warmup
                                          : NULL;
    if (count) {
        int lo = count == &c->warmup ? 0 : 1, hi = count == &c->threads ? MAX_THREADS : INT_MAX;
        if (!next || !parse_count(next, lo, hi, count)) {
            fail(next ? "bad count after" : "missing value after", a);
            return -1;
        }
        ++*i;
        return 1;
    }
    if (!strcmp(a, "--profile")) return c->profile = true, 1;
    if (!strcmp(a, "--profile-kernels")) return c->profile = c->profile_kernels = true, 1;
    return 0;
}

static int parse_args(int argc, char **argv, cli *c) {
    c->opt_level = 2;
    c->rtol = 1e-3;
    c->atol = 1e-7;
    c->threads = 1;
    c->warmup = 5;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(field)                                                                             \
    do {                                                                                        \
        if (!next) return fail("missing value after", a);                                      \
        c->field = next;                                                                        \
        i++;                                                                                    \
    } while (0)
        if (!strcmp(a, "-o")) TAKE(out);
        else if (!strcmp(a, "--emit")) TAKE(emit);
        else if (!strcmp(a, "--name")) TAKE(name);
        else if (!strcmp(a, "--target")) TAKE(target);
        else if (!strcmp(a, "--dump-ir")) TAKE(dump_ir);
        else if (!strcmp(a, "--microkernels")) TAKE(microkernels);
        else if (!strcmp(a, "--shape")) {
            if (!next) return fail("missing value after", a);
            if (c->n_bindings == MAX_BINDINGS) return fail("too many --shape options", NULL);
            if (!parse_binding(next, &c->bindings[c->n_bindings], c->binding_names[c->n_bindings],
                               sizeof c->binding_names[0]))
                return fail("bad --shape (expected INPUT:DIMxDIM..., e.g. x:1x3x224x224)", next);
            c->n_bindings++;
            i++;
        } else if (!strcmp(a, "--data")) {
            if (!next) return fail("missing value after", a);
            if (c->n_data_dirs == MAX_DATA_DIRS) return fail("too many --data options", NULL);
            c->data_dirs[c->n_data_dirs++] = next;
            i++;
        } else if (!strcmp(a, "--rtol") || !strcmp(a, "--atol")) {
            if (!next) return fail("missing value after", a);
            char *end;
            double v = strtod(next, &end);
            if (*end || v < 0) return fail("bad tolerance", next);
            if (a[2] == 'r') c->rtol = v;
            else c->atol = v;
            i++;
        } else if (!strcmp(a, "--stats")) {
            c->stats = true;
        } else if (!strcmp(a, "--sanitize")) {
            if (!next || (strcmp(next, "address") && strcmp(next, "thread")))
                return fail("expected address or thread after", a);
            c->sanitize = !strcmp(next, "address") ? KL_SANITIZE_ADDRESS : KL_SANITIZE_THREAD;
            i++;
        } else if (!strcmp(a, "-O")) {
            if (!next || !parse_count(next, 0, 3, &c->opt_level))
                return fail("expected 0, 1, 2 or 3 after", a);
            i++;
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            c->opt_level = a[2] - '0';
        } else if (a[0] == '-') {
            int taken = parse_bench_option(c, a, next, &i);
            if (taken < 0) return 1;
            if (!taken) return fail("unknown option", a);
        } else if (!c->model) {
            c->model = a;
        } else {
            return fail("more than one model given", a);
        }
#undef TAKE
    }
    if (!c->model) return fail("no model given (see kiln --help)", NULL);
    return 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int emit_kind(const cli *c, kl_emit_kind *k) {
    const char *e = c->emit;
    if (!e) {
        *k = ends_with(c->out, ".so") ? KL_EMIT_SO
             : ends_with(c->out, ".s") ? KL_EMIT_ASM
             : ends_with(c->out, ".ll") ? KL_EMIT_LLVM_IR
                                        : KL_EMIT_OBJ;
        return 0;
    }
    if (!strcmp(e, "obj")) *k = KL_EMIT_OBJ;
    else if (!strcmp(e, "so")) *k = KL_EMIT_SO;
    else if (!strcmp(e, "asm")) *k = KL_EMIT_ASM;
    else if (!strcmp(e, "llvm-ir")) *k = KL_EMIT_LLVM_IR;
    else return fail("bad --emit (expected obj, so, asm or llvm-ir)", e);
    return 0;
}

static int microkernel_policy(const cli *c, kl_microkernels *m) {
    const char *p = c->microkernels;
    if (!p || !strcmp(p, "auto")) *m = KL_MICRO_AUTO;
    else if (!strcmp(p, "ir")) *m = KL_MICRO_IR;
    else if (!strcmp(p, "libxsmm")) *m = KL_MICRO_LIBXSMM;
    else return fail("bad --microkernels (expected auto, ir or libxsmm)", p);
    return 0;
}

static const kl_target *pick_target(const char *name) {
    return name ? kl_target_find(name) : kl_target_default();
}

static bool is_identifier(const char *s) {
    if (!*s || (*s >= '0' && *s <= '9')) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static int cmd_compile(cli *c) {
    if (!c->out) return fail("no output file given (-o OUT)", NULL);
    kl_compile_opts o = {.model_path = c->model, .out_path = c->out, .bindings = c->bindings,
                         .n_bindings = c->n_bindings, .dump_ir_after = c->dump_ir};
    if (emit_kind(c, &o.cg.emit) || microkernel_policy(c, &o.microkernels)) return 1;
    o.cg.target = pick_target(c->target);
    if (!o.cg.target) return fail("unknown target (see kiln targets)", c->target);
    if (c->name && !is_identifier(c->name)) return fail("--name must be a C identifier", c->name);
    o.cg.name = c->name;
    o.cg.opt_level = c->opt_level;
    o.cg.sanitize = c->sanitize;
    kl_diag d;
    kl_diag_init(&d, c->model);
    kl_compile_stats st;
    double t0 = kl_now();
    bool ok = kl_compile(&o, &st, &d);
    double seconds = kl_now() - t0;
    kl_diag_print(&d, stderr);
    if (ok && d.n_errors == 0) {
        if (c->stats)
            printf("%s: %d kernels, workspace %lld bytes (sum of all intermediates %lld bytes), "
                   "compiled in %.2f s\n",
                   c->out, st.n_kernels, (long long)st.workspace_size,
                   (long long)st.intermediates_total, seconds);
        kl_diag_free(&d);
        return 0;
    }
    if (!d.n_errors) fprintf(stderr, "%s: compilation failed\n", c->model);
    kl_diag_free(&d);
    return 1;
}

/* What check and bench need before they start: a known target and a model file that exists. */
static int harness_target(const cli *c, const kl_target **t) {
    *t = pick_target(c->target);
    if (!*t) return fail("unknown target (see kiln targets)", c->target);
    struct stat st;
    if (stat(c->model, &st) != 0) return fail("cannot read model", c->model);
    return 0;
}

/* A harness's diagnostics go after its report; its status becomes kiln's. */
static int harness_done(kl_diag *d, int rc, const char *model, const char *what) {
    fflush(stdout);
    kl_diag_print(d, stderr);
    if (rc && !d->n_errors && what) fprintf(stderr, "%s: %s failed\n", model, what);
    kl_diag_free(d);
    return rc ? 1 : 0;
}

static int cmd_check(cli *c) {
    kl_check_opts o = {.model_path = c->model, .data_dirs = c->data_dirs,
                       .n_data_dirs = c->n_data_dirs, .bindings = c->bindings,
                       .n_bindings = c->n_bindings, .rtol = c->rtol, .atol = c->atol,
                       .opt_level = c->opt_level,
                       .sanitize = c->sanitize, .out = stdout};
    if (harness_target(c, &o.target) || microkernel_policy(c, &o.microkernels)) return 1;
    kl_diag d;
    kl_diag_init(&d, c->model);
    return harness_done(&d, kl_check(&o, &d), c->model, NULL); /* a mismatch is no error */
}

static int cmd_bench(cli *c) {
    if (c->n_data_dirs > 1) return fail("kiln bench takes one --data folder", c->data_dirs[1]);
    kl_bench_opts o = {.model_path = c->model, .data_dir = c->n_data_dirs ? c->data_dirs[0] : NULL,
                       .bindings = c->bindings, .n_bindings = c->n_bindings,
                       .opt_level = c->opt_level, .threads = c->threads, .runs = c->runs,
                       .warmup = c->warmup, .profile = c->profile,
                       .profile_kernels = c->profile_kernels, .out = stdout};
    if (harness_target(c, &o.target) || microkernel_policy(c, &o.microkernels)) return 1;
    kl_diag d;
    kl_diag_init(&d, c->model);
    return harness_done(&d, kl_bench(&o, &d), c->model, "benchmark");
}

/* The features a target string turns on ("+avx2,-sse4a,..." -> "avx2 ..."), on one line. */
static void print_enabled_features(const char *features) {
    if (!features || !*features) return;
    bool any = false;
    for (const char *p = features; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 1 && p[0] == '+') {
            printf("%s%.*s", any ? " " : "             features ", (int)len - 1, p + 1);
            any = true;
        }
        p = end ? end + 1 : p + len;
    }
    if (any) printf("\n");
}

static int cmd_targets(void) {
    kl_arena *a = kl_arena_new();
    kl_diag d;
    kl_diag_init(&d, "kiln");
    for (int i = 0; kl_targets[i]; i++) {
        const kl_target *t = kl_targets[i];
        const kl_target *r = kl_target_resolve(a, t, &d);
        if (!r) r = t;
        printf("%-12s %s%s\n", t->name, t->description,
               t == kl_target_default() ? "  [default]" : "");
        printf("             triple %s, cpu %s, %d-bit vectors x %d registers, %s, L1d %d KiB, "
               "L2 %d KiB%s\n",
               r->triple, r->cpu, r->vector_bits, r->vector_registers, r->fma ? "FMA" : "no FMA",
               r->l1_bytes / 1024, r->l2_bytes / 1024, r->hosted ? ", hosted" : ", bare metal");
        print_enabled_features(r->features);
    }
    kl_diag_free(&d);
    kl_arena_free(a);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("kiln %s\n", KILN_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "targets")) return cmd_targets();
    if (strcmp(argv[1], "compile") && strcmp(argv[1], "check") && strcmp(argv[1], "bench"))
        return fail("unknown command (expected compile, check, bench or targets)", argv[1]);
    cli c = {0};
    if (parse_args(argc, argv, &c)) return 1;
    if (!strcmp(argv[1], "bench")) return cmd_bench(&c);
    return !strcmp(argv[1], "compile") ? cmd_compile(&c) : cmd_check(&c);
}
