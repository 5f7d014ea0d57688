/*
 * test_xsmm.c — libxsmm's GEMM micro-kernels, generated at compile time and embedded in the
 * objects kiln writes (codegen/llvm/xsmm.c).
 *
 * Each numeric test builds an LLVM module through the back end's own steps (kl_cg_open,
 * kl_cg_write): an exported wrapper `xt_gemm(a, b, c, c2)` calls the embedded kernel on C and
 * then on C2, so A, B and C2 live across the first call in callee-saved registers (the kernel
 * must restore them). The module becomes a shared library (ld.lld, as `--emit so`), is dlopened
 * and run on random data against a naive reference in double: |diff| <= 1e-5 * K. The operands
 * sit 4 bytes past a 64-byte boundary (the kernels must not need more than float alignment),
 * C's padding rows and a guard after each C must stay untouched, and with beta = 0 C starts as
 * NaN (it must not be read). AVX-512 and AVX2 are separate tests, each skipped with a message
 * on a CPU without the ISA (and then the run exits with 77, meson's SKIP). Also: the object
 * needs nothing but memcpy/memset and has no mutable data (tests/runtime/check_object.sh), the
 * kernel's symbol stays local, `--emit asm` output assembles, identical gemms share one
 * function, bad requests fail with a diagnostic, and the code check rejects what it must.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl.h"
#include "llvm_internal.h"

#ifndef KL_CHECK_OBJECT
#error "KL_CHECK_OBJECT (the path of tests/runtime/check_object.sh) must be defined"
#endif

/* ---------------------------------------------------------------- building */

typedef struct built {
    kl_arena *arena;
    kl_diag d;
    kl_codegen_opts o;
    kl_cg cg;
    char dir[64];
    char path[128];
    void *so;
} built;

static void open_module(built *b, kl_emit_kind emit) {
    b->arena = kl_arena_new();
    kl_diag_init(&b->d, "test");
    b->o = (kl_codegen_opts){kl_target_default(), "xt", 2, emit};
    b->cg = (kl_cg){.arena = b->arena, .d = &b->d, .o = &b->o};
    cr_assert(kl_cg_open(&b->cg), "kl_cg_open failed");
    strcpy(b->dir, "/tmp/kiln-test-xsmm-XXXXXX");
    cr_assert(mkdtemp(b->dir));
}

static void fail_with_diag(built *b, const char *what) {
    kl_diag_print(&b->d, stderr);
    cr_assert_fail("%s failed", what);
}

/* void xt_gemm(ptr a, ptr b, ptr c, ptr c2) { kernel(a, b, c); kernel(a, b, c2); } */
static void add_wrapper(built *b, const kl_xsmm_gemm *g) {
    kl_cg *cg = &b->cg;
    LLVMValueRef kernel = kl_cg_xsmm_function(cg, g);
    if (!kernel)
        fail_with_diag(b, "kl_cg_xsmm_function");
    LLVMTypeRef params[4] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr};
    LLVMTypeRef type = LLVMFunctionType(cg->void_t, params, 4, 0);
    LLVMValueRef fn = LLVMAddFunction(cg->mod, "xt_gemm", type);
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    LLVMTypeRef kt = LLVMGlobalGetValueType(kernel);
    for (unsigned c = 2; c <= 3; c++) {
        LLVMValueRef args[3] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, c)};
        LLVMBuildCall2(cg->b, kt, kernel, args, 3, "");
    }
    LLVMBuildRetVoid(cg->b);
}

/* Writes the module as `suffix` (.so, .o, .s) in the test's folder. */
static void write_module(built *b, const char *suffix) {
    snprintf(b->path, sizeof b->path, "%s/xt%s", b->dir, suffix);
    if (!kl_cg_write(&b->cg, b->path))
        fail_with_diag(b, "kl_cg_write");
}

static void done(built *b) {
    if (b->so)
        dlclose(b->so);
    kl_cg_close(&b->cg);
    unlink(b->path);
    rmdir(b->dir);
    kl_diag_free(&b->d);
    kl_arena_free(b->arena);
}

static char *run_command(const char *cmd) {
    FILE *f = popen(cmd, "r");
    cr_assert(f, "popen %s", cmd);
    static char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    int rc = pclose(f);
    cr_assert_eq(rc, 0, "`%s` failed:\n%s", cmd, text);
    return text;
}

static char *read_text(kl_arena *a, const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = kl_alloc(a, (size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

/* ---------------------------------------------------------------- numbers */

enum { GUARD = 16 };
static const float guard_value = 12345.0f;

typedef struct operands {
    void *blocks[3];
    float *a, *b, *c, *c2; /* 4 bytes past a 64-byte boundary */
    size_t na, nb, nc;
} operands;

static float *misaligned(operands *o, int i, size_t n) {
    o->blocks[i] = aligned_alloc(64, ((n + 1 + GUARD) * sizeof(float) + 63) / 64 * 64);
    cr_assert(o->blocks[i]);
    return (float *)o->blocks[i] + 1;
}

static uint32_t next(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }
static float uniform(uint32_t *s) { return (float)(next(s) >> 8) / (float)(1u << 23) - 1.0f; }

/* Random A and B; C (and C2) random for beta = 1, NaN for beta = 0; padding rows and guards
 * hold guard_value. C and C2 are one block of 2 * nc (+ guards). */
static void make_operands(operands *o, const kl_xsmm_gemm *g, uint32_t seed) {
    o->na = (size_t)g->lda * (size_t)g->k;
    o->nb = (size_t)g->ldb * (size_t)g->n;
    o->nc = (size_t)g->ldc * (size_t)g->n;
    o->a = misaligned(o, 0, o->na);
    o->b = misaligned(o, 1, o->nb);
    o->c = misaligned(o, 2, 2 * o->nc + GUARD);
    o->c2 = o->c + o->nc + GUARD;
    for (size_t i = 0; i < o->na; i++)
        o->a[i] = uniform(&seed);
    for (size_t i = 0; i < o->nb; i++)
        o->b[i] = uniform(&seed);
    for (size_t i = 0; i < 2 * o->nc + 2 * GUARD; i++)
        o->c[i] = guard_value;
    for (int j = 0; j < g->n; j++)
        for (int i = 0; i < g->m; i++) {
            size_t at = (size_t)i + (size_t)j * (size_t)g->ldc;
            o->c[at] = g->beta ? uniform(&seed) : NAN;
            o->c2[at] = g->beta ? uniform(&seed) : NAN;
        }
}

static void free_operands(operands *o) {
    for (int i = 0; i < 3; i++)
        free(o->blocks[i]);
}

/* Checks C (as computed) against the reference from C's initial contents `c0`. */
static void check_result(const kl_xsmm_gemm *g, const operands *o, const float *c,
                         const float *c0, const char *which) {
    double tol = 1e-5 * g->k;
    for (int j = 0; j < g->n; j++)
        for (int i = 0; i < g->ldc; i++) {
            size_t at = (size_t)i + (size_t)j * (size_t)g->ldc;
            if (i >= g->m) {
                cr_assert_eq(c[at], guard_value, "%s: padding row %d of column %d was written",
                             which, i, j);
                continue;
            }
            double want = g->beta ? c0[at] : 0.0;
            for (int p = 0; p < g->k; p++)
                want += (double)o->a[i + (size_t)p * g->lda] * o->b[p + (size_t)j * g->ldb];
            cr_assert(fabs(c[at] - want) <= tol,
                      "%s: C[%d,%d] = %.9g, want %.9g (m=%d n=%d k=%d beta=%d)", which, i, j,
                      c[at], want, g->m, g->n, g->k, g->beta);
        }
    for (int i = 0; i < GUARD; i++)
        cr_assert_eq(c[o->nc + (size_t)i], guard_value, "%s: written past its end", which);
}

typedef void (*gemm_fn)(const float *, const float *, float *, float *);

static void run_gemm(const kl_xsmm_gemm *g, uint32_t seed) {
    built b = {0};
    open_module(&b, KL_EMIT_SO);
    add_wrapper(&b, g);
    write_module(&b, ".so");
    b.so = dlopen(b.path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(b.so, "dlopen: %s", dlerror());
    gemm_fn f = (gemm_fn)dlsym(b.so, "xt_gemm");
    cr_assert(f, "xt_gemm is not exported");
    operands o = {0};
    make_operands(&o, g, seed);
    size_t nc = 2 * o.nc + GUARD;
    float *c0 = malloc(nc * sizeof *c0);
    memcpy(c0, o.c, nc * sizeof *c0);
    f(o.a, o.b, o.c, o.c2);
    check_result(g, &o, o.c, c0, "C");
    check_result(g, &o, o.c2, c0 + o.nc + GUARD, "C2");
    free(c0);
    free_operands(&o);
    done(&b);
}

static const kl_xsmm_gemm shapes[] = {
    /* m   n   k  lda ldb ldc beta */
    {16, 14, 64, 16, 64, 16, 0},
    {16, 14, 64, 16, 64, 16, 1},
    {32, 6, 9, 40, 20, 48, 0},   /* leading dimensions past m / k / m */
    {32, 6, 9, 40, 20, 48, 1},
    {13, 5, 7, 17, 11, 15, 1},   /* remainders everywhere (AVX-512 masks, AVX2 scalars) */
    {64, 6, 64, 64, 64, 64, 1},
    {64, 14, 576, 64, 576, 64, 1},
    {1, 1, 1, 1, 1, 1, 0},
};

static void run_shapes(int isa) {
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        kl_xsmm_gemm g = shapes[i];
        g.isa = isa;
        run_gemm(&g, 1234u + (uint32_t)i);
    }
}

/* The ISA tests are suite xsmm_isa, each registered in meson on its own (--filter), so that a
 * skip is reported as SKIP (exit status 77, see main) rather than counted as passed. */
Test(xsmm_isa, avx512) {
    if (!__builtin_cpu_supports("avx512f"))
        cr_skip_test("this CPU has no AVX-512F: the AVX-512 kernels were not run");
    run_shapes(KL_XSMM_AVX512);
}

Test(xsmm_isa, avx2) {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        cr_skip_test("this CPU has no AVX2 and FMA: the AVX2 kernels were not run");
    run_shapes(KL_XSMM_AVX2);
}

/* ---------------------------------------------------------------- the object */

static const kl_xsmm_gemm gemm_64x6x64 = {64, 6, 64, 64, 64, 64, 1, KL_XSMM_AVX512};

/* Self-contained, no mutable data, the kernel local; the shared library exports only the
 * wrapper. Needs no AVX-512 on this CPU: nothing runs. */
Test(xsmm, object_is_self_contained) {
    built b = {0};
    open_module(&b, KL_EMIT_OBJ);
    add_wrapper(&b, &gemm_64x6x64);
    write_module(&b, ".o");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bash %s %s 2>&1", KL_CHECK_OBJECT, b.path);
    char *report = run_command(cmd);
    cr_assert(strstr(report, "2 passed, 0 failed"), "check_object.sh:\n%s", report);
    const char *name = kl_xsmm_name(b.arena, &gemm_64x6x64);
    snprintf(cmd, sizeof cmd, "nm %s", b.path);
    char *symbols = run_command(cmd);
    char *local = kl_sprintf(b.arena, " t %s\n", name);
    cr_assert(strstr(symbols, local), "the kernel is not a local function symbol:\n%s", symbols);
    snprintf(cmd, sizeof cmd, "nm -g --defined-only %s | awk '{print $3}'", b.path);
    cr_assert_str_eq(run_command(cmd), "xt_gemm\n");
    done(&b);
}

/* `--emit asm`: the kernel is in the listing as bytes, and the listing assembles back into an
 * object that defines it. */
Test(xsmm, assembly_output) {
    built b = {0};
    open_module(&b, KL_EMIT_ASM);
    add_wrapper(&b, &gemm_64x6x64);
    write_module(&b, ".s");
    const char *name = kl_xsmm_name(b.arena, &gemm_64x6x64);
    char *listing = read_text(b.arena, b.path);
    cr_assert(strstr(listing, kl_sprintf(b.arena, "%s:\n", name)), "no kernel label:\n%s",
              listing);
    /* LLVM reprints module asm: bytes in decimal, one a line; 83 = 0x53, push %rbx */
    cr_assert(strstr(listing, kl_sprintf(b.arena, "%s:\n\t.cfi_startproc\n\t.byte\t83\n", name)),
              "the kernel does not start with push %%rbx:\n%s", listing);
    cr_assert(strstr(listing, kl_sprintf(b.arena, "callq\t%s\n", name)),
              "the wrapper does not call the kernel directly (no PLT):\n%s", listing);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cc -c %s -o %s/again.o 2>&1 && nm %s/again.o && rm %s/again.o",
             b.path, b.dir, b.dir, b.dir);
    char *symbols = run_command(cmd);
    cr_assert(strstr(symbols, kl_sprintf(b.arena, " t %s\n", name)),
              "the reassembled listing does not define the kernel:\n%s", symbols);
    done(&b);
}

/* ---------------------------------------------------------------- the mechanism */

/* The code is libxsmm's, framed as documented: pushes first, pops, vzeroupper and ret last. */
Test(xsmm, code_frame) {
    kl_arena *a = kl_arena_new();
    kl_diag d;
    kl_diag_init(&d, "test");
    const unsigned char *code = NULL;
    size_t size = 0;
    cr_assert(kl_xsmm_generate(a, &gemm_64x6x64, &code, &size, &d));
    static const unsigned char head[] = {0x53, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57};
    static const unsigned char end[] = {0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5b,
                                        0xc5, 0xf8, 0x77, 0xc3};
    cr_assert_gt(size, sizeof head + sizeof end);
    cr_assert_eq(memcmp(code, head, sizeof head), 0);
    cr_assert_eq(memcmp(code + size - sizeof end, end, sizeof end), 0);
    kl_diag_free(&d);
    kl_arena_free(a);
}

Test(xsmm, identical_gemms_share_a_function) {
    built b = {0};
    open_module(&b, KL_EMIT_OBJ);
    kl_xsmm_gemm g = gemm_64x6x64, other = gemm_64x6x64;
    other.beta = 0;
    LLVMValueRef f1 = kl_cg_xsmm_function(&b.cg, &g);
    LLVMValueRef f2 = kl_cg_xsmm_function(&b.cg, &g);
    LLVMValueRef f3 = kl_cg_xsmm_function(&b.cg, &other);
    cr_assert(f1 && f3);
    cr_assert_eq(f1, f2);
    cr_assert_neq(f1, f3);
    size_t len = 0;
    const char *text = LLVMGetModuleInlineAsm(b.cg.mod, &len);
    char *label = kl_sprintf(b.arena, "\n%s:\n", kl_xsmm_name(b.arena, &g));
    const char *first = strstr(text, label);
    cr_assert(first, "the kernel is not in the module's assembly");
    cr_assert_null(strstr(first + 1, label), "the kernel is defined twice");
    /* a declaration removed as unused comes back without a second definition */
    LLVMDeleteFunction(f1);
    LLVMValueRef again = kl_cg_xsmm_function(&b.cg, &g);
    cr_assert(again);
    text = LLVMGetModuleInlineAsm(b.cg.mod, &len);
    cr_assert_null(strstr(strstr(text, label) + 1, label), "the kernel is defined twice");
    b.path[0] = 0;
    done(&b);
}

/* The check accepts what libxsmm writes across the shapes a tile pass picks (remainders of
 * every vector width, k below, at and above libxsmm's unroll threshold of 23, padded leading
 * dimensions, both betas, both ISAs); a false rejection would silently cost the fast path. */
Test(xsmm, many_shapes_generate) {
    static const int ms[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65};
    static const int ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 14, 16, 28, 31};
    static const int ks[] = {1, 3, 24, 25, 64};
    int generated = 0;
    for (int isa = KL_XSMM_AVX2; isa <= KL_XSMM_AVX512; isa++)
        for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
            for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
                for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
                    int m = ms[mi], n = ns[ni], k = ks[ki];
                    kl_xsmm_gemm g = {m, n, k, m + m % 3, k + n % 2, m + k % 5, (m + n) % 2, isa};
                    kl_arena *a = kl_arena_new();
                    kl_diag d;
                    kl_diag_init(&d, "test");
                    const unsigned char *code = NULL;
                    size_t size = 0;
                    bool ok = kl_xsmm_generate(a, &g, &code, &size, &d);
                    cr_assert(ok, "%s", d.text ? d.text : "");
                    generated++;
                    kl_diag_free(&d);
                    kl_arena_free(a);
                }
    cr_assert_eq(generated, 2 * 17 * 12 * 5);
}

/* Requests libxsmm cannot serve fail with a diagnostic naming the reason, not with libxsmm's
 * exit(). */
Test(xsmm, bad_requests) {
    struct {
        kl_xsmm_gemm g;
        const char *reason;
    } bad[] = {
        {{0, 6, 64, 64, 64, 64, 1, KL_XSMM_AVX512}, "at least 1"},
        {{64, 6, 64, 32, 64, 64, 1, KL_XSMM_AVX512}, "lda >= m"},
        {{64, 6, 64, 64, 63, 64, 1, KL_XSMM_AVX2}, "ldb >= k"},
        {{64, 6, 64, 64, 64, 8, 1, KL_XSMM_AVX2}, "ldc >= m"},
        {{64, 6, 64, 64, 64, 64, 2, KL_XSMM_AVX512}, "beta must be 0 or 1"},
        {{64, 6, 64, 64, 64, 64, 1, 7}, "unknown ISA"},
        {{64, 1 << 24, 64, 64, 64, 64, 1, KL_XSMM_AVX512}, "2 GiB"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kl_arena *a = kl_arena_new();
        kl_diag d;
        kl_diag_init(&d, "test");
        const unsigned char *code = NULL;
        size_t size = 0;
        cr_assert_not(kl_xsmm_generate(a, &bad[i].g, &code, &size, &d), "case %zu accepted", i);
        cr_assert(kl_diag_failed(&d));
        cr_assert(strstr(d.text, bad[i].reason), "case %zu: %s", i, d.text);
        cr_assert(strstr(d.text, "libxsmm gemm m="), "case %zu: %s", i, d.text);
        kl_diag_free(&d);
        kl_arena_free(a);
    }
}

/* The check that stands between libxsmm and the object, on hand-made code: a body is framed by
 * the SysV saves and restores, and anything that would tie the code to an address, touch the
 * stack or leave the body is rejected. */
typedef struct code_case {
    const char *what;
    unsigned char body[16];
    size_t len;
    const char *reason; /* NULL: accepted */
} code_case;

static bool check_body_bytes(const code_case *c, kl_diag *d, kl_arena *a) {
    static const unsigned char pushes[] = {0x53, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57};
    static const unsigned char pops[] = {0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d,
                                         0x41, 0x5c, 0x5b, 0xc3};
    unsigned char code[64];
    memcpy(code, pushes, sizeof pushes);
    memcpy(code + sizeof pushes, c->body, c->len);
    memcpy(code + sizeof pushes + c->len, pops, sizeof pops);
    return kl_xsmm_check_code(a, code, sizeof pushes + c->len + sizeof pops, c->what, d);
}

Test(xsmm, code_check) {
    /* vmovups (%rdi),%zmm1; addq $64,%r10 (at 15); cmpq $64,%r10; jl back to the addq */
#define LOOP                                                                                  \
    0x62, 0xf1, 0x7c, 0x48, 0x10, 0x0f, 0x49, 0x83, 0xc2, 0x40, 0x49, 0x83, 0xfa, 0x40, 0x7c
    static const code_case cases[] = {
        {"a loop", {LOOP, 0xf6}, 16, NULL},
        {"a branch into an instruction", {LOOP, 0xf7}, 16, "branches into an instruction"},
        {"a branch out of the body", {LOOP, 0x02}, 16, "branches out of its body"},
        {"vmovups 16(%rip),%zmm0", {0x62, 0xf1, 0x7c, 0x48, 0x10, 0x05, 0x10, 0, 0, 0}, 10,
         "%rip-relative"},
        {"movabsq $imm64,%rax", {0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}, 10,
         "movabs"},
        {"movl 0x1000,%eax", {0x8b, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00}, 7, "absolute address"},
        {"movq (%rsp),%rax", {0x48, 0x8b, 0x04, 0x24}, 4, "stack or frame register"},
        {"callq", {0xe8, 0, 0, 0, 0}, 5, "'call"},
        {"jmpq *%rax", {0xff, 0xe0}, 2, "'jmp"},
        {"an early ret", {0xc3}, 1, "'ret"},
        {"undecodable bytes", {0x06}, 1, "cannot be decoded"},
    };
#undef LOOP
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kl_arena *a = kl_arena_new();
        kl_diag d;
        kl_diag_init(&d, "test");
        bool ok = check_body_bytes(&cases[i], &d, a);
        if (!cases[i].reason) {
            cr_assert(ok, "%s rejected: %s", cases[i].what, d.text ? d.text : "");
        } else {
            cr_assert_not(ok, "%s accepted", cases[i].what);
            cr_assert(strstr(d.text, cases[i].reason), "%s: %s", cases[i].what, d.text);
        }
        kl_diag_free(&d);
        kl_arena_free(a);
    }
    /* the frame itself */
    kl_arena *a = kl_arena_new();
    kl_diag d;
    kl_diag_init(&d, "test");
    static const unsigned char no_saves[] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
                                             0x90, 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41,
                                             0x5c, 0x5b, 0xc3};
    cr_assert_not(kl_xsmm_check_code(a, no_saves, sizeof no_saves, "no saves", &d));
    cr_assert(strstr(d.text, "does not save %rbx"), "%s", d.text);
    kl_diag_free(&d);
    kl_arena_free(a);
}

/* ---------------------------------------------------------------- main */

/* Criterion exits 0 when a test skips; meson would count that as passed. Exit 77 (meson's SKIP)
 * instead when a test skipped and none failed. */
static int n_skipped;

ReportHook(POST_TEST)(struct criterion_test_stats *stats) {
    if (stats->test_status == CR_STATUS_SKIPPED)
        n_skipped++;
}

int main(int argc, char *argv[]) {
    struct criterion_test_set *tests = criterion_initialize();
    int status = 0;
    if (criterion_handle_args(argc, argv, true))
        status = criterion_run_all_tests(tests) ? 0 : 1;
    criterion_finalize(tests);
    if (status == 0 && n_skipped > 0) {
        fprintf(stderr, "%d test(s) skipped: exit status 77 (skip)\n", n_skipped);
        return 77;
    }
    return status;
}
