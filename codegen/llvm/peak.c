/*
 * codegen/llvm/peak.c — a probe of the target's floating-point peak, for `kiln bench`.
 *
 * "% of peak" is only honest when the peak is measured on the machine, for the code the target
 * allows, rather than taken from a data sheet: the same CPU has a different peak for SSE2
 * (x86-64), AVX2 + FMA (x86-64-v3) and AVX-512 (v4, native). So this file builds a tiny separate
 * LLVM module for a target and emits it as a shared library exporting
 *
 *   float kiln_peak_run(int64_t iterations);   the work (at least one iteration); the result
 *                                              is a checksum that keeps the work alive
 *   const int64_t kiln_peak_info[3];           flops per iteration, chains, float lanes
 *
 * The loop body is `chains` independent multiply-add chains on vectors of the target's width
 * (vector_bits / 32 float lanes), each advanced KL_PEAK_ROUNDS times per iteration:
 * acc = fmuladd(acc, m, a). Independent chains hide the instruction latency (a core needs about
 * latency x ports of them in flight); vector_registers - 4 of them (at least 8) fill the
 * register file without spilling, leaving room for m, a and the loop. `llvm.fmuladd` is an FMA
 * where the target has one and a multiply plus an add where it has none, which is that ISA's
 * peak; either way one lane of one step counts 2 flops. No fast-math flags: nothing may be
 * reassociated or folded away. The module reuses module.c's target machine, pipeline and
 * emission, so the probe is compiled exactly like a model for the same target.
 */
#include <string.h>

#include "llvm_internal.h"

enum { KL_PEAK_ROUNDS = 4, KL_PEAK_MIN_CHAINS = 8 };

static LLVMValueRef splat(kl_cg *cg, int lanes, double v) {
    LLVMValueRef e[64];
    for (int i = 0; i < lanes; i++) e[i] = LLVMConstReal(cg->f32, v);
    return LLVMConstVector(e, (unsigned)lanes);
}

static void add_info_table(kl_cg *cg, int64_t flops_per_iteration, int chains, int lanes) {
    LLVMValueRef v[3] = {LLVMConstInt(cg->i64, (unsigned long long)flops_per_iteration, 0),
                         LLVMConstInt(cg->i64, (unsigned long long)chains, 0),
                         LLVMConstInt(cg->i64, (unsigned long long)lanes, 0)};
    LLVMValueRef init = LLVMConstArray2(cg->i64, v, 3);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), "kiln_peak_info");
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
}

/* The sum of the accumulators' lanes, so that no chain is dead. */
static LLVMValueRef checksum(kl_cg *cg, LLVMTypeRef vt, LLVMValueRef *acc, int chains) {
    LLVMValueRef sum = acc[0];
    for (int j = 1; j < chains; j++) sum = LLVMBuildFAdd(cg->b, sum, acc[j], "");
    LLVMValueRef reduce = kl_cg_intrinsic(cg, "llvm.vector.reduce.fadd", &vt, 1);
    LLVMTypeRef params[2] = {cg->f32, vt};
    LLVMValueRef args[2] = {LLVMConstReal(cg->f32, 0.0), sum};
    return LLVMBuildCall2(cg->b, LLVMFunctionType(cg->f32, params, 2, 0), reduce, args, 2, "");
}

/* float kiln_peak_run(i64 n): do { chains x rounds fmuladds } while (++i < n) */
static void add_run_function(kl_cg *cg, int chains, int lanes) {
    LLVMTypeRef vt = LLVMVectorType(cg->f32, (unsigned)lanes);
    LLVMValueRef fn = LLVMAddFunction(cg->mod, "kiln_peak_run",
                                      LLVMFunctionType(cg->f32, &cg->i64, 1, 0));
    kl_cg_add_fn_attr(cg, fn, "nounwind");
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(cg->ctx, fn, "loop");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, fn, "done");
    LLVMPositionBuilderAtEnd(cg->b, entry);
    LLVMBuildBr(cg->b, loop);

    LLVMPositionBuilderAtEnd(cg->b, loop);
    LLVMValueRef i = LLVMBuildPhi(cg->b, cg->i64, "i");
    LLVMValueRef phis[64], acc[64];
    for (int j = 0; j < chains; j++) {
        phis[j] = acc[j] = LLVMBuildPhi(cg->b, vt, "acc");
        LLVMValueRef init = splat(cg, lanes, 2.0 + 0.01 * j); /* never the fixed point */
        LLVMAddIncoming(phis[j], &init, &entry, 1);
    }
    /* m < 1 and a small: every chain converges to a / (1 - m) = 1, finite and never denormal.
     * No chain may start at 1: LLVM would see a constant phi and drop the chain. */
    LLVMValueRef m = splat(cg, lanes, 0.999), a = splat(cg, lanes, 0.001);
    LLVMValueRef fma = kl_cg_intrinsic(cg, "llvm.fmuladd", &vt, 1);
    LLVMTypeRef fma_params[3] = {vt, vt, vt};
    LLVMTypeRef fma_t = LLVMFunctionType(vt, fma_params, 3, 0);
    for (int r = 0; r < KL_PEAK_ROUNDS; r++)
        for (int j = 0; j < chains; j++) {
            LLVMValueRef args[3] = {acc[j], m, a};
            acc[j] = LLVMBuildCall2(cg->b, fma_t, fma, args, 3, "");
        }
    LLVMValueRef next = LLVMBuildAdd(cg->b, i, LLVMConstInt(cg->i64, 1, 0), "");
    LLVMValueRef zero = LLVMConstInt(cg->i64, 0, 0);
    LLVMAddIncoming(i, &zero, &entry, 1);
    LLVMAddIncoming(i, &next, &loop, 1);
    for (int j = 0; j < chains; j++) LLVMAddIncoming(phis[j], &acc[j], &loop, 1);
    LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSLT, next, LLVMGetParam(fn, 0), "");
    LLVMBuildCondBr(cg->b, more, loop, done);

    LLVMPositionBuilderAtEnd(cg->b, done);
    LLVMBuildRet(cg->b, checksum(cg, vt, acc, chains));
}

bool kl_codegen_peak(kl_arena *a, const kl_target *target, const char *so_path,
                     kl_diag *d) {
    const kl_target *t = kl_target_resolve(a, target, d);
    if (!t) return false;
    int lanes = kl_target_lanes(t, KL_F32);
    int chains = t->vector_registers - 4;
    if (chains < KL_PEAK_MIN_CHAINS) chains = KL_PEAK_MIN_CHAINS;
    if (lanes > 64 || chains > 64)
        return kl_error(d, NULL, "peak probe: %d lanes x %d chains is more than it builds",
                        lanes, chains);
    kl_codegen_opts o = {.target = t, .name = "kiln_peak", .opt_level = 2, .emit = KL_EMIT_SO};
    kl_cg cg = {.arena = a, .d = d, .o = &o};
    bool ok = kl_cg_open(&cg);
    if (ok) {
        add_run_function(&cg, chains, lanes);
        add_info_table(&cg, (int64_t)2 * KL_PEAK_ROUNDS * chains * lanes, chains, lanes);
        ok = kl_cg_write(&cg, so_path);
    }
    kl_cg_close(&cg);
    return ok;
}
