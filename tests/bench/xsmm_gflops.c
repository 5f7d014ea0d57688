/*
 * xsmm_gflops.c — GFLOP/s of embedded libxsmm kernels against the core's FMA peak (a
 * measurement, not a test: `build/tests/bench/xsmm_gflops`).
 *
 * Each kernel is embedded the way kiln embeds it (kl_cg_xsmm_function in a module written as a
 * shared library by kl_cg_write), called from an exported IR loop `xb_loop(a, b, c, n)` so that
 * the timing holds nothing but the kernel and its call, and timed on one thread (best of
 * several runs: the machine may be shared). The peak is a register-only loop of 12 independent
 * FMA chains (inline asm: 12 chains cover 2 FMA ports x 4-cycle latency with room to spare);
 * 2 flops per lane per FMA. Operands are 64-byte aligned; beta = 1 (C accumulates; values stay
 * small because A and B are).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl.h"
#include "llvm_internal.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---------------------------------------------------------------- peak */

static void fma_avx512(long iters) {
    __asm__ volatile(
        "vxorps %%zmm0, %%zmm0, %%zmm0\n\t"
        "vmovaps %%zmm0, %%zmm1\n\t"
        "1:\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm4\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm5\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm6\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm7\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm8\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm9\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm10\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm11\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm12\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm13\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm14\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm15\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "cc");
}

static void fma_avx2(long iters) {
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vmovaps %%ymm0, %%ymm1\n\t"
        "1:\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm5\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm7\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm9\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm11\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm12\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm13\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm14\n\t"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm15\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "cc");
}

/* Best GFLOP/s of `runs` timings of fn(iters), each iteration 12 FMAs of `lanes` floats. */
static double peak(void (*fn)(long), int lanes, long iters, int runs) {
    double best = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        fn(iters);
        double gf = (double)iters * 12 * lanes * 2 / (now() - t0) / 1e9;
        best = gf > best ? gf : best;
    }
    return best;
}

/* ---------------------------------------------------------------- kernels */

typedef void (*loop_fn)(const float *, const float *, float *, long);

/* void xb_loop(ptr a, ptr b, ptr c, i64 n) { for (i = 0; i < n; i++) kernel(a, b, c); } */
static void add_loop(kl_cg *cg, LLVMValueRef kernel) {
    LLVMTypeRef params[4] = {cg->ptr, cg->ptr, cg->ptr, cg->i64};
    LLVMValueRef fn = LLVMAddFunction(cg->mod, "xb_loop",
                                      LLVMFunctionType(cg->void_t, params, 4, 0));
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, fn, "body");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(cg->ctx, fn, "exit");
    LLVMPositionBuilderAtEnd(cg->b, entry);
    LLVMValueRef zero = LLVMConstInt(cg->i64, 0, 0);
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, LLVMGetParam(fn, 3), zero, ""),
                    body, exit);
    LLVMPositionBuilderAtEnd(cg->b, body);
    LLVMValueRef i = LLVMBuildPhi(cg->b, cg->i64, "i");
    LLVMValueRef args[3] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2)};
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(kernel), kernel, args, 3, "");
    LLVMValueRef next = LLVMBuildAdd(cg->b, i, LLVMConstInt(cg->i64, 1, 0), "");
    LLVMAddIncoming(i, &zero, &entry, 1);
    LLVMAddIncoming(i, &next, &body, 1);
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, next, LLVMGetParam(fn, 3), ""),
                    body, exit);
    LLVMPositionBuilderAtEnd(cg->b, exit);
    LLVMBuildRetVoid(cg->b);
}

/* The loop over the gemm's kernel, from a shared library in `dir`; NULL on failure. */
static loop_fn build(const kl_xsmm_gemm *g, const char *dir, void **so) {
    kl_arena *a = kl_arena_new();
    kl_diag d;
    kl_diag_init(&d, "bench");
    kl_codegen_opts o = {kl_target_default(), "xb", 2, KL_EMIT_SO};
    kl_cg cg = {.arena = a, .d = &d, .o = &o};
    char path[256];
    snprintf(path, sizeof path, "%s/xb_%d_%d_%d_%d.so", dir, g->m, g->n, g->k, g->isa);
    LLVMValueRef kernel = NULL;
    bool ok = kl_cg_open(&cg) && (kernel = kl_cg_xsmm_function(&cg, g)) != NULL;
    if (ok) {
        add_loop(&cg, kernel);
        ok = kl_cg_write(&cg, path);
    }
    kl_cg_close(&cg);
    if (!ok)
        kl_diag_print(&d, stderr);
    kl_diag_free(&d);
    kl_arena_free(a);
    *so = ok ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    unlink(path);
    return *so ? (loop_fn)dlsym(*so, "xb_loop") : NULL;
}

static float *operand(size_t n) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((int)(i % 7) - 3) * 1e-3f;
    return p;
}

/* Best GFLOP/s of the embedded kernel over `runs` timings of calls that take about 0.2 s,
 * each run right after a run of the peak loop (so that both see the same machine: it may be
 * shared, and its clock moves); *peak_gf gets the best peak. */
static double measure(const kl_xsmm_gemm *g, const char *dir, int runs, void (*fma)(long),
                      int lanes, double *peak_gf) {
    void *so = NULL;
    loop_fn loop = build(g, dir, &so);
    if (!loop)
        return -1;
    float *a = operand((size_t)g->lda * g->k), *b = operand((size_t)g->ldb * g->n);
    float *c = operand((size_t)g->ldc * g->n);
    double flops = 2.0 * g->m * g->n * g->k;
    long calls = (long)(0.2 * 100e9 / flops) + 1; /* ~0.2 s at 100 GFLOP/s */
    loop(a, b, c, calls / 10);                    /* warm caches and the clock */
    double best = 0;
    *peak_gf = 0;
    for (int r = 0; r < runs; r++) {
        double pk = peak(fma, lanes, 50000000L, 1);
        *peak_gf = pk > *peak_gf ? pk : *peak_gf;
        double t0 = now();
        loop(a, b, c, calls);
        double gf = flops * (double)calls / (now() - t0) / 1e9;
        best = gf > best ? gf : best;
    }
    free(a);
    free(b);
    free(c);
    dlclose(so);
    return best;
}

int main(void) {
    char dir[] = "/tmp/kiln-bench-xsmm-XXXXXX";
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    static const kl_xsmm_gemm shapes[] = {
        {64, 64, 64, 64, 64, 64, 1, 0},
        {64, 14, 576, 64, 576, 64, 1, 0},
        {64, 6, 64, 64, 64, 64, 1, 0},
    };
    struct {
        int isa;
        const char *name;
        bool on_cpu;
        void (*fma)(long);
        int lanes;
    } isas[] = {
        {KL_XSMM_AVX512, "AVX-512", __builtin_cpu_supports("avx512f"), fma_avx512, 16},
        {KL_XSMM_AVX2, "AVX2", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
         fma_avx2, 8},
    };
    int status = 0;
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        if (!isas[i].on_cpu) {
            printf("%s: not on this CPU\n", isas[i].name);
            continue;
        }
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            kl_xsmm_gemm g = shapes[s];
            g.isa = isas[i].isa;
            double pk = 0, gf = measure(&g, dir, 7, isas[i].fma, isas[i].lanes, &pk);
            if (gf < 0) {
                status = 1;
                continue;
            }
            printf("%-7s %dx%dx%d lda=%d ldb=%d ldc=%d: %6.1f GFLOP/s, peak %6.1f: %3.0f%%\n",
                   isas[i].name, g.m, g.n, g.k, g.lda, g.ldb, g.ldc, gf, pk, 100 * gf / pk);
        }
    }
    rmdir(dir);
    return status;
}
