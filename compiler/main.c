/*
 * main.c — the kiln command line: argument parsing only; the work is in driver.c, check.c and
 * bench.c.
 *
 *   kiln compile MODEL.onnx -o OUT [--emit obj|so|asm|llvm-ir] [--name NAME]
 *                [--shape INPUT:DIMxDIM...]... [--sequence S:N]... [--optional O:present|absent]...
 *                [--value INPUT:V,V...]...
 *                [--target T] [-O0..3] [--dump-ir PASS]
 *   kiln check MODEL.onnx [--data DIR]... [--shape ...]... [--rtol X] [--atol Y] [-O N] [--target T]
 *              (a target that is not the host runs under its emulator: emulate/)
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
#define MAX_CLI_VALUES 256 /* elements of one --value */
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
    "  --header PATH          write the header here instead (build systems)\n"
    "  --emit obj|so|asm|llvm-ir|cuda|ptx|cubin  what to write (default: from OUT's suffix\n"
    "                         .o .so .s .ll .cu .ptx .cubin; cuda, ptx and cubin: CUDA targets)\n"
    "  --name NAME            C prefix of the generated symbols (default: from MODEL's file name)\n"
    "  --shape INPUT:DIMS     bind an input's shape, e.g. --shape x:1x3x224x224 (repeatable);\n"
    "                         a dim LO..HI (or ..HI, from 1) varies at run time up to HI, e.g.\n"
    "                         --shape ids:1x1..512: the object also exports NAME_predict_dynamic\n"
    "                         (see \"Bounded dims\" in the README); one such range per model\n"
    "  --sequence S:N         a sequence input S of N tensors: they are inputs S[0] .. S[N-1]\n"
    "                         of the generated code (shapes: --shape S[0]:2x3 ...); a sequence\n"
    "                         output of N tensors is outputs S[0] .. S[N-1] likewise\n"
    "  --optional O:present|absent  whether an optional input holds a value (present: input\n"
    "                         O[0], or O[0] .. for an optional of a sequence with --sequence O:N);\n"
    "                         an optional output holding a value is output O[0], an empty one none\n"
    "  --value INPUT:V,V...   compile for one value of an input that sets shapes or structure\n"
    "                         (a target shape, a Loop's trip count, an If's condition), e.g.\n"
    "                         --value shape:10,10,3: what it decides is folded when compiling,\n"
    "                         and predict returns KILN_E_SHAPE when the input holds another value\n"
    "                         (a message names the inputs a model needs this for)\n"
    "  --target T             target: x86-64 (default), x86-64-v2..v4, native, aarch64-linux,\n"
    "                         riscv64-linux, cortex-m4, ..., cuda-sm90 (see `kiln targets`)\n"
    "  -O0 .. -O3             optimization level (default -O2)\n"
    "  --dump-ir PASS         print the IR after PASS: graph passes resolve, infer, bnfold,\n"
    "                         layout, dce; lower; kernel passes fold, fuse, halo, tile,\n"
    "                         tasks; plan\n"
    "  --microkernels M       contractions: auto (default), ir (kiln's register blocks) or\n"
    "                         libxsmm (generated GEMM micro-kernels where they apply)\n"
    "  --stats                print kernels, workspace, time and peak memory per phase, and\n"
    "                         sizes: code (model and runtime-min), weights, other constants\n"
    "  --progress             show the phase on stderr (default: only when stderr is a\n"
    "                         terminal and the compilation takes over 2 s)\n"
    "  --optimize-for size|speed  size: no extra workspace, no blocks or unrolling (the\n"
    "                         default on microcontrollers); speed: the default elsewhere\n"
    "  --weights-section NAME put the weights in ELF section NAME (firmware: a flash region)\n"
    "  --string-bytes N       bytes of new strings (StringConcat, StringNormalizer's case\n"
    "                         change) one run may build, in the workspace (default 65536);\n"
    "                         past it predict returns KILN_E_STRING_BYTES\n"
    "  --dispatch auto|off    target x86-64: a model with over 10 MFLOP of contractions also\n"
    "                         carries code for x86-64-v4 and v3, chosen per call by CPUID\n"
    "                         (auto, the default); off: baseline code only\n"
    "  --cuda-emulate         (tests) CUDA targets: embed the CUDA source for the emulator of\n"
    "                         tests/cuda/ instead of a cubin; needs no NVRTC and no GPU\n"
    "  --sanitize address|thread  (testing) instrument the generated code with LLVM's\n"
    "                         AddressSanitizer or ThreadSanitizer; the program linking it must\n"
    "                         be built with the same -fsanitize\n"
    "check options:\n"
    "  --data DIR             a test_data_set folder (repeatable; default: all beside MODEL)\n"
    "  --rtol X --atol Y      tolerance |got-want| <= atol + rtol*|want| (default 1e-3, 1e-7)\n"
    "  --shape, --sequence, --optional, --value, --target, -O, --microkernels,\n"
    "                         --optimize-for, --dispatch, --cuda-emulate, --string-bytes  as for\n"
    "                         compile (sequences and optionals: their structure is read from the\n"
    "                         data set, like shapes; an input the model needs a --value for,\n"
    "                         where none is given: its value in the first data set);\n"
    "                         a target that is not the host runs under its emulator (QEMU); a\n"
    "                         CUDA target runs on the GPU (exit status 77 when there is no\n"
    "                         driver or GPU; KILN_LIBCUDA names another driver than libcuda.so.1)\n"
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
    "  --shape, --target, -O, --microkernels, --dispatch, --cuda-emulate  as for compile (-O N also\n"
    "                         with a space); a CUDA target times cuda_run on the GPU, waiting\n"
    "                         for every call (exit status 77 without a GPU)\n";

typedef struct cli {
    const char *model, *out, *emit, *name, *target, *dump_ir, *microkernels, *optimize_for,
        *dispatch,
        *weights_section, *header;
    int opt_level;
    int64_t string_bytes;
    bool stats, progress;
    kl_shape_binding bindings[MAX_BINDINGS];
    char binding_names[MAX_BINDINGS][256];
    union { int64_t ints[MAX_CLI_VALUES]; double floats[MAX_CLI_VALUES]; } values[MAX_BINDINGS];
    int n_bindings;
    const char *data_dirs[MAX_DATA_DIRS];
    int n_data_dirs;
    double rtol, atol;
    int threads, runs, warmup;
    bool profile, profile_kernels;
    bool cuda_emulate;
    kl_sanitizer sanitize;
} cli;

static int fail(const char *msg, const char *arg) {
    fprintf(stderr, "kiln: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return 1;
}

/* One dim: "224", or a bounded one, "1..512" or "..512" (from 1). */
static const char *parse_dim(const char *p, kl_shape_binding *b) {
    int r = b->shape.rank;
    long long lo = -1, hi;
    char *end;
    errno = 0; /* a number past int64 saturates with ERANGE: refused, not clamped */
    if (strncmp(p, "..", 2) != 0) {
        lo = strtoll(p, &end, 10);
        if (end == p || errno || lo < 0) return NULL;
        p = end;
    }
    if (strncmp(p, "..", 2) != 0) {
        b->shape.dim[r] = lo;
        return p;
    }
    hi = strtoll(p + 2, &end, 10);
    if (end == p + 2 || errno || hi < 1 || (lo >= 0 && (lo < 1 || lo > hi))) return NULL;
    b->bounded[r] = true;
    b->min_dim[r] = lo >= 0 ? lo : 1;
    b->shape.dim[r] = hi;
    return end;
}

/* "x:1x3x224x224" (also "x:1,3,224,224"; "x:" is a scalar; "x:1x1..512" bounds a dim). The
 * name is everything before the last ':' so input names holding ':' still work. */
static bool parse_binding(const char *s, kl_shape_binding *b, char *name_buf, size_t cap) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= cap) return false;
    memcpy(name_buf, s, (size_t)(colon - s));
    name_buf[colon - s] = 0;
    b->input = name_buf;
    b->shape.rank = 0;
    const char *p = colon + 1;
    while (*p) {
        if (b->shape.rank == KL_MAX_RANK || !(p = parse_dim(p, b))) return false;
        b->shape.rank++;
        if (*p == 'x' || *p == 'X' || *p == ',') {
            p++;
            if (!*p) return false;
        } else if (*p) {
            return false;
        }
    }
    return true;
}

/* --sequence "s:3" or --optional "o:present" / "o:absent": a structure binding. */
static bool parse_structure(const char *s, bool sequence, kl_shape_binding *b, char *name_buf,
                            size_t cap) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= cap) return false;
    memcpy(name_buf, s, (size_t)(colon - s));
    name_buf[colon - s] = 0;
    memset(b, 0, sizeof *b);
    b->input = name_buf;
    b->kind = sequence ? KL_BIND_SEQUENCE : KL_BIND_OPTIONAL;
    const char *v = colon + 1;
    if (!sequence) {
        b->count = !strcmp(v, "present") ? 1 : !strcmp(v, "absent") ? 0 : -1;
        return b->count >= 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    b->count = n;
    return end != v && !*end && !errno && n >= 0 && n <= 4096;
}

/* --value "n:3,4" (integers) or "s:0.5,2" (any with a fraction or exponent: doubles). */
static bool parse_value(const char *s, kl_shape_binding *b, char *name_buf, size_t cap,
                        int64_t *ints, double *floats) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= cap || !colon[1]) return false;
    memcpy(name_buf, s, (size_t)(colon - s));
    name_buf[colon - s] = 0;
    memset(b, 0, sizeof *b);
    b->input = name_buf;
    b->kind = KL_BIND_VALUE;
    b->value_dtype = KL_I64;
    double parsed[MAX_CLI_VALUES];
    for (const char *p = colon + 1;; p++) {
        if (b->count == MAX_CLI_VALUES) return false;
        char *end_i, *end_f;
        errno = 0;
        long long i = strtoll(p, &end_i, 10);
        bool whole = end_i != p && (*end_i == ',' || !*end_i) && !errno;
        parsed[b->count] = strtod(p, &end_f);
        if (end_f == p || (*end_f != ',' && *end_f)) return false;
        if (whole) ints[b->count] = i;
        else b->value_dtype = KL_F64;
        b->count++;
        p = end_f;
        if (!*p) break;
    }
    if (b->value_dtype == KL_F64) memcpy(floats, parsed, (size_t)b->count * sizeof *parsed);
    b->value_data = b->value_dtype == KL_F64 ? (const void *)floats : (const void *)ints;
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
        else if (!strcmp(a, "--optimize-for")) TAKE(optimize_for);
        else if (!strcmp(a, "--weights-section")) TAKE(weights_section);
        else if (!strcmp(a, "--dispatch")) TAKE(dispatch);
        else if (!strcmp(a, "--header")) TAKE(header);
        else if (!strcmp(a, "--shape")) {
            if (!next) return fail("missing value after", a);
            if (c->n_bindings == MAX_BINDINGS) return fail("too many --shape options", NULL);
            if (!parse_binding(next, &c->bindings[c->n_bindings], c->binding_names[c->n_bindings],
                               sizeof c->binding_names[0]))
                return fail("bad --shape (expected INPUT:DIMxDIM..., e.g. x:1x3x224x224, a "
                            "bounded dim as LO..HI with 1 <= LO <= HI, e.g. x:1x1..512)", next);
            c->n_bindings++;
            i++;
        } else if (!strcmp(a, "--sequence") || !strcmp(a, "--optional")) {
            if (!next) return fail("missing value after", a);
            if (c->n_bindings == MAX_BINDINGS)
                return fail("too many --shape, --sequence and --optional options", NULL);
            if (!parse_structure(next, a[2] == 's', &c->bindings[c->n_bindings],
                                 c->binding_names[c->n_bindings], sizeof c->binding_names[0]))
                return fail(a[2] == 's' ? "bad --sequence (expected INPUT:N, e.g. s:3, with N "
                                          "from 0 to 4096)"
                                        : "bad --optional (expected INPUT:present or "
                                          "INPUT:absent)", next);
            c->n_bindings++;
            i++;
        } else if (!strcmp(a, "--value")) {
            if (!next) return fail("missing value after", a);
            if (c->n_bindings == MAX_BINDINGS)
                return fail("too many --shape, --sequence, --optional and --value options", NULL);
            int k = c->n_bindings;
            if (!parse_value(next, &c->bindings[k], c->binding_names[k], sizeof c->binding_names[0],
                             c->values[k].ints, c->values[k].floats))
                return fail("bad --value (expected INPUT:V,V..., e.g. shape:10,10,3, at most 256 "
                            "numbers)", next);
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
        } else if (!strcmp(a, "--progress")) {
            c->progress = true;
        } else if (!strcmp(a, "--cuda-emulate")) {
            c->cuda_emulate = true;
        } else if (!strcmp(a, "--sanitize")) {
            if (!next || (strcmp(next, "address") && strcmp(next, "thread")))
                return fail("expected address or thread after", a);
            c->sanitize = !strcmp(next, "address") ? KL_SANITIZE_ADDRESS : KL_SANITIZE_THREAD;
            i++;
        } else if (!strcmp(a, "--string-bytes")) {
            char *end = NULL;
            long long v = next ? strtoll(next, &end, 10) : 0;
            if (!next || *end || v < 1 || v > (1ll << 40))
                return fail("expected a byte count from 1 to 2^40 after", a);
            c->string_bytes = v;
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
             : ends_with(c->out, ".cu") ? KL_EMIT_CUDA
             : ends_with(c->out, ".ptx") ? KL_EMIT_PTX
             : ends_with(c->out, ".cubin") ? KL_EMIT_CUBIN
                                        : KL_EMIT_OBJ;
        return 0;
    }
    if (!strcmp(e, "obj")) *k = KL_EMIT_OBJ;
    else if (!strcmp(e, "so")) *k = KL_EMIT_SO;
    else if (!strcmp(e, "asm")) *k = KL_EMIT_ASM;
    else if (!strcmp(e, "llvm-ir")) *k = KL_EMIT_LLVM_IR;
    else if (!strcmp(e, "cuda")) *k = KL_EMIT_CUDA;
    else if (!strcmp(e, "ptx")) *k = KL_EMIT_PTX;
    else if (!strcmp(e, "cubin")) *k = KL_EMIT_CUBIN;
    else return fail("bad --emit (expected obj, so, asm, llvm-ir, cuda, ptx or cubin)", e);
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

/* --dispatch auto|off: whether a portable x86-64 object carries ISA variants. */
static int dispatch_policy(const cli *c, bool *off) {
    if (c->dispatch && strcmp(c->dispatch, "auto") && strcmp(c->dispatch, "off"))
        return fail("bad --dispatch (expected auto or off)", c->dispatch);
    *off = c->dispatch && !strcmp(c->dispatch, "off");
    return 0;
}

static int optimize_goal(const cli *c, kl_optimize_for *g) {
    const char *p = c->optimize_for;
    if (!p) *g = KL_FOR_TARGET;
    else if (!strcmp(p, "speed")) *g = KL_FOR_SPEED;
    else if (!strcmp(p, "size")) *g = KL_FOR_SIZE;
    else return fail("bad --optimize-for (expected size or speed)", p);
    return 0;
}

/* An ELF section name: what a linker script can name (".flash_weights", "weights"). */
static bool is_section_name(const char *s) {
    if (!*s || strlen(s) > 64) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.'))
            return false;
    return true;
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

/* The --stats report: one line as before, then the sizes a firmware budget is made of. */
static void print_phases(const kl_phases *ph) {
    printf("phase                 seconds   peak RSS%s\n",
           ph->per_phase_peaks ? "" : " (so far: this kernel cannot reset the peak)");
    for (int i = 0; i < ph->n; i++)
        printf("  %-18s %9.3f %7.0f MB\n", ph->items[i].name, ph->items[i].seconds,
               (double)ph->items[i].peak_bytes / 1e6);
    printf("  %-18s %9.3f %7.0f MB\n", "total", ph->total_seconds, (double)ph->peak_bytes / 1e6);
}

static void print_stats(const cli *c, const kl_target *t, const kl_compile_stats *st,
                        const kl_size_stats *z, const kl_phases *ph) {
    printf("%s: %d kernels, workspace %lld bytes (sum of all intermediates %lld bytes), "
           "compiled in %.2f s, peak memory %.0f MB\n",
           c->out, st->n_kernels, (long long)st->workspace_size,
           (long long)st->intermediates_total, ph->total_seconds, (double)ph->peak_bytes / 1e6);
    print_phases(ph);
    printf("target %s, optimized for %s\n", t->name,
           st->optimize_for == KL_FOR_SIZE ? "size" : "speed");
    if (!z->measured) return;
    printf("code (text)     %10lld bytes: model %lld, runtime-min %lld\n", (long long)z->text,
           (long long)(z->text - z->text_runtime), (long long)z->text_runtime);
    const char *section = *z->weights_section   ? z->weights_section
                          : c->weights_section ? c->weights_section
                                               : ".rodata";
    printf("weights         %10lld bytes (%s%s)\n", (long long)z->weights, section,
           z->weights_large ? ", large data: 64-bit addresses, past the small code model's 2 GiB"
                            : "");
    if (z->variants)
        printf("                %10s of which %lld bytes are the weights of %d ISA variants "
               "(--dispatch off: none)\n", "", (long long)z->variant_weights, z->variants);
    printf("other rodata    %10lld bytes (model table, names, shapes)\n",
           (long long)(z->rodata - z->weights));
    printf("data + bss      %10lld bytes\n", (long long)(z->data + z->bss));
    printf("workspace (RAM) %10lld bytes, the caller's\n", (long long)st->workspace_size);
}

static int cmd_compile(cli *c) {
    if (!c->out) return fail("no output file given (-o OUT)", NULL);
    kl_compile_opts o = {.model_path = c->model, .out_path = c->out, .header_path = c->header,
                         .bindings = c->bindings,
                         .n_bindings = c->n_bindings, .dump_ir_after = c->dump_ir,
                         .string_bytes = c->string_bytes};
    if (emit_kind(c, &o.cg.emit) || microkernel_policy(c, &o.microkernels) ||
        optimize_goal(c, &o.cg.optimize_for))
        return 1;
    if (c->weights_section && !is_section_name(c->weights_section))
        return fail("--weights-section must be a section name (letters, digits, '_', '.')",
                    c->weights_section);
    o.cg.weights_section = c->weights_section;
    if (dispatch_policy(c, &o.no_dispatch)) return 1;
    kl_size_stats sizes = {0};
    if (c->stats) o.cg.sizes = &sizes;
    o.cg.target = pick_target(c->target);
    if (!o.cg.target) return fail("unknown target (see kiln targets)", c->target);
    if (c->name && !is_identifier(c->name)) return fail("--name must be a C identifier", c->name);
    o.cg.name = c->name;
    o.cg.opt_level = c->opt_level;
    o.cg.cuda_emulate = c->cuda_emulate;
    o.cg.sanitize = c->sanitize;
    kl_diag d;
    kl_diag_init(&d, c->model);
    kl_compile_stats st;
    kl_phases phases;
    kl_phases_init(&phases, c->progress ? KL_PROGRESS_ALWAYS : KL_PROGRESS_AUTO, c->stats);
    o.cg.phases = &phases;
    bool ok = kl_compile(&o, &st, &d);
    kl_diag_print(&d, stderr);
    if (ok && d.n_errors == 0) {
        if (c->stats) print_stats(c, o.cg.target, &st, &sizes, &phases);
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
                       .opt_level = c->opt_level, .cuda_emulate = c->cuda_emulate,
                       .sanitize = c->sanitize, .string_bytes = c->string_bytes,
                       .out = stdout};
    if (harness_target(c, &o.target) || microkernel_policy(c, &o.microkernels) ||
        optimize_goal(c, &o.optimize_for) || dispatch_policy(c, &o.no_dispatch))
        return 1;
    kl_diag d;
    kl_diag_init(&d, c->model);
    int rc = kl_check(&o, &d);
    if (rc == KL_CHECK_SKIPPED) { /* no GPU here: said on stdout, not a failure */
        harness_done(&d, 0, c->model, NULL);
        return rc;
    }
    return harness_done(&d, rc, c->model, NULL); /* a mismatch is no error */
}

static int cmd_bench(cli *c) {
    if (c->n_data_dirs > 1) return fail("kiln bench takes one --data folder", c->data_dirs[1]);
    kl_bench_opts o = {.model_path = c->model, .data_dir = c->n_data_dirs ? c->data_dirs[0] : NULL,
                       .bindings = c->bindings, .n_bindings = c->n_bindings,
                       .opt_level = c->opt_level, .threads = c->threads, .runs = c->runs,
                       .warmup = c->warmup, .profile = c->profile,
                       .profile_kernels = c->profile_kernels,
                       .cuda_emulate = c->cuda_emulate, .out = stdout};
    if (harness_target(c, &o.target) || microkernel_policy(c, &o.microkernels) ||
        dispatch_policy(c, &o.no_dispatch))
        return 1;
    if (kl_target_is_emulated(o.target)) /* an emulator's timing says nothing of the chip */
        return fail("kiln bench times code on this machine; this target runs only under an "
                    "emulator (use kiln check --target, or run the object on the device)",
                    o.target->name);
    kl_diag d;
    kl_diag_init(&d, c->model);
    int rc = kl_bench(&o, &d);
    if (rc == KL_CHECK_SKIPPED) {
        harness_done(&d, 0, c->model, NULL);
        return rc;
    }
    return harness_done(&d, rc, c->model, "benchmark");
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

/* A GPU target's line: the GPU, its sm, and whether this kiln can compile for it. */
static void print_cuda_target(kl_arena *a, const kl_target *t) {
    printf("%-12s %s\n", t->name, t->description);
    const char *nvrtc = kl_cuda_nvrtc_version(a);
    printf("             CUDA sm_%d (cubin + PTX through NVRTC), host code %s; %s\n", t->sm,
           t->triple, nvrtc ? kl_sprintf(a, "available (NVRTC %s)", nvrtc)
                            : "unavailable: this kiln was built without NVRTC");
}

static int cmd_targets(void) {
    kl_arena *a = kl_arena_new();
    kl_diag d;
    kl_diag_init(&d, "kiln");
    for (int i = 0; kl_targets[i]; i++) {
        const kl_target *t = kl_targets[i];
        if (t->backend == KL_BACKEND_CUDA) {
            print_cuda_target(a, t);
            continue;
        }
        const kl_target *r = kl_target_resolve(a, t, &d);
        if (!r) r = t;
        printf("%s  %s%s\n", t->name, t->description,
               t == kl_target_default() ? "  [default]" : "");
        char simd[64];
        if (r->vector_bits > 0)
            snprintf(simd, sizeof simd, "%d-bit vectors x %d registers", r->vector_bits,
                     r->vector_registers);
        else
            snprintf(simd, sizeof simd, "no SIMD");
        printf("             triple %s, cpu %s%s%s, %s, %s, %s FPU", r->triple, r->cpu,
               r->abi && *r->abi ? ", abi " : "", r->abi && *r->abi ? r->abi : "", simd,
               r->fma ? "FMA" : "no FMA",
               r->float_bits == 64 ? "double" : r->float_bits == 32 ? "single" : "no");
        if (r->l1_bytes || r->l2_bytes)
            printf(", L1d %d KiB, L2 %d KiB", r->l1_bytes / 1024, r->l2_bytes / 1024);
        printf("%s, optimizes for %s\n", r->hosted ? ", hosted" : ", bare metal",
               r->optimize_for == KL_FOR_SIZE ? "size" : "speed");
        print_enabled_features(r->features);
        if (kl_target_is_emulated(r))
            printf("             runs under: %s\n", r->run);
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
