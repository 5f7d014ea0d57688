/*
 * codegen/llvm/dispatch.c — one portable object that runs at the speed of the CPU it meets.
 *
 * A baseline x86-64 object runs on every x86-64 CPU, with SSE2 and no FMA: on a server with
 * AVX-512 that is 5-7x slower than code for the machine. So for a model with real work, the
 * driver also lowers the graph for the target's `dispatch` variants (x86-64-v4, then v3), and
 * here each variant is compiled as a module of its own, for its own CPU, into its own object:
 * entries NAME__vN_predict, NAME__vN_predict_parallel (and the profiling one), hidden, and its
 * own hidden weights. `ld -r` joins them to the baseline object. The baseline entries begin
 * with the choice: the best variant whose CPUID bits and XCR0 state components the CPU has
 * (data in the target descriptors), else the baseline code.
 *
 * CPUID is slow where it matters most: under a hypervisor each call is a VM exit (about 12 us
 * on this project's machine), and the check needs five. The object keeps no writable data, so
 * the answer is remembered in the caller's workspace: its last 64 bytes hold a tag (the
 * workspace's address mixed with a constant) and the chosen level. A workspace seen before
 * costs one load and a compare; a fresh one, or one the caller reused for something else,
 * fails the tag and is checked again. The workspace size in the header includes those bytes.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "llvm_internal.h"

#define CPU_CACHE_TAG 0x6b696c6e63707531ull /* "kilncpu1" */

/* The C prefix of variant `t`'s symbols. */
static const char *variant_name(kl_cg *cg, const kl_target *t) {
    return kl_sprintf(cg->arena, "%s__v%d", cg->o->name, t->isa_level);
}

/* ---------------------------------------------------------------- the variants' objects */

bool kl_cg_variants_compile(kl_cg *cg, const char *out_path) {
    const kl_codegen_opts *o = cg->o;
    if (o->n_variants == 0) return true;
    cg->variant_files = kl_alloc_array(cg->arena, (size_t)o->n_variants, sizeof(char *));
    int kernel_base = cg->p->kernels.n;
    for (int i = 0; i < o->n_variants; i++) {
        const kl_isa_variant *v = &o->variants[i];
        kl_codegen_opts vo = *o;
        vo.target = v->target;
        vo.name = variant_name(cg, v->target);
        vo.emit = KL_EMIT_OBJ;
        vo.variants = NULL;
        vo.n_variants = 0;
        vo.is_variant = true;
        vo.profile_kernel_base = kernel_base;
        kl_size_stats vs = {0};
        vo.sizes = o->sizes ? &vs : NULL;
        vo.phases = NULL;
        char *file = kl_cg_temp_beside(cg, out_path, ".o");
        if (!file) return false;
        cg->variant_files[cg->n_variant_files++] = file;
        if (!kl_codegen_llvm(v->p, cg->g, &vo, file, cg->d)) return false;
        kernel_base += v->p->kernels.n;
        kl_size_stats *sum = &cg->variant_sizes;
        sum->text += vs.text;
        sum->text_runtime += vs.text_runtime;
        sum->rodata += vs.rodata;
        sum->weights += vs.weights;
        sum->data += vs.data;
        sum->bss += vs.bss;
    }
    return true;
}

/* The joined object holds the variants' code and weights too: --stats counts what links. */
void kl_cg_variants_add_sizes(kl_cg *cg, kl_size_stats *sizes) {
    if (!sizes || !sizes->measured || cg->n_variant_files == 0) return;
    const kl_size_stats *v = &cg->variant_sizes;
    sizes->text += v->text;
    sizes->text_runtime += v->text_runtime;
    sizes->rodata += v->rodata;
    sizes->weights += v->weights;
    sizes->data += v->data;
    sizes->bss += v->bss;
    sizes->variants = cg->n_variant_files;
    sizes->variant_weights = v->weights;
}

bool kl_cg_variants_join(kl_cg *cg, const char *code) {
    if (cg->n_variant_files == 0) return true;
    int n = cg->n_variant_files + 1;
    const char **files = kl_alloc_array(cg->arena, (size_t)n, sizeof *files);
    files[0] = code;
    for (int i = 1; i < n; i++) files[i] = cg->variant_files[i - 1];
    char *joined = kl_cg_temp_beside(cg, code, ".o");
    if (!joined) return false;
    bool ok = kl_link_relocatable(cg->o->target->triple, files, n, joined, cg->d);
    if (ok && rename(joined, code) != 0)
        ok = kl_error(cg->d, NULL, "cannot replace '%s' with the joined object", code);
    if (!ok) unlink(joined);
    return ok;
}

void kl_cg_variants_close(kl_cg *cg) {
    for (int i = 0; i < cg->n_variant_files; i++) unlink(cg->variant_files[i]);
    cg->n_variant_files = 0;
}

/* ---------------------------------------------------------------- the CPU check */

/* {eax, ebx, ecx, edx} = cpuid(leaf, 0) */
static LLVMValueRef cpuid(kl_cg *cg, LLVMValueRef leaf) {
    LLVMTypeRef regs[4] = {cg->i32, cg->i32, cg->i32, cg->i32};
    LLVMTypeRef ret = LLVMStructTypeInContext(cg->ctx, regs, 4, 0);
    LLVMTypeRef params[2] = {cg->i32, cg->i32};
    LLVMTypeRef ft = LLVMFunctionType(ret, params, 2, 0);
    const char *text = "cpuid";
    const char *constraints = "={ax},={bx},={cx},={dx},{ax},{cx},~{dirflag},~{fpsr},~{flags}";
    LLVMValueRef asm_fn = LLVMGetInlineAsm(ft, (char *)text, strlen(text), (char *)constraints,
                                           strlen(constraints), 0, 0, LLVMInlineAsmDialectATT, 0);
    LLVMValueRef args[2] = {leaf, LLVMConstInt(cg->i32, 0, 0)};
    return LLVMBuildCall2(cg->b, ft, asm_fn, args, 2, "cpuid");
}

/* The low 32 bits of XCR0 (only ever executed after CPUID said OSXSAVE). */
static LLVMValueRef xcr0_low(kl_cg *cg) {
    LLVMTypeRef regs[2] = {cg->i32, cg->i32};
    LLVMTypeRef ret = LLVMStructTypeInContext(cg->ctx, regs, 2, 0);
    LLVMTypeRef params[1] = {cg->i32};
    LLVMTypeRef ft = LLVMFunctionType(ret, params, 1, 0);
    const char *text = "xgetbv";
    const char *constraints = "={ax},={dx},{cx},~{dirflag},~{fpsr},~{flags}";
    LLVMValueRef asm_fn = LLVMGetInlineAsm(ft, (char *)text, strlen(text), (char *)constraints,
                                           strlen(constraints), 0, 0, LLVMInlineAsmDialectATT, 0);
    LLVMValueRef arg = LLVMConstInt(cg->i32, 0, 0);
    return LLVMBuildExtractValue(cg->b, LLVMBuildCall2(cg->b, ft, asm_fn, &arg, 1, ""), 0, "xcr0");
}

/* Continue in a new block when `ok`, else branch to `fail`. */
static void require(kl_cg *cg, LLVMValueRef fn, LLVMValueRef ok, LLVMBasicBlockRef fail) {
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(cg->ctx, fn, "has");
    LLVMBuildCondBr(cg->b, ok, next, fail);
    LLVMPositionBuilderAtEnd(cg->b, next);
}

static LLVMValueRef all_bits(kl_cg *cg, LLVMValueRef value, uint32_t bits) {
    LLVMValueRef mask = LLVMConstInt(cg->i32, bits, 0);
    return LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildAnd(cg->b, value, mask, ""), mask, "");
}

/* Branches to `yes` when the CPU (and the OS) can run t's code, else to `no`. The leaf's range
 * (basic or extended) is checked to reach it first: CPUID answers a leaf past the maximum with
 * another leaf's data, not with zeros. */
static void emit_cpu_test(kl_cg *cg, LLVMValueRef fn, const kl_target *t, LLVMBasicBlockRef yes,
                          LLVMBasicBlockRef no) {
    for (int i = 0; i < t->n_cpuid_needs; i++) {
        const kl_cpuid_bits *need = &t->cpuid_needs[i];
        uint32_t range = need->leaf & 0x80000000u;
        LLVMValueRef max = LLVMBuildExtractValue(cg->b, cpuid(cg, LLVMConstInt(cg->i32, range, 0)), 0, "");
        require(cg, fn, LLVMBuildICmp(cg->b, LLVMIntUGE, max, LLVMConstInt(cg->i32, need->leaf, 0), ""),
                no);
        LLVMValueRef regs = cpuid(cg, LLVMConstInt(cg->i32, need->leaf, 0));
        require(cg, fn, all_bits(cg, LLVMBuildExtractValue(cg->b, regs, (unsigned)need->reg, ""), need->bits),
                no);
    }
    if (t->xcr0_needs)
        require(cg, fn, all_bits(cg, xcr0_low(cg), (uint32_t)t->xcr0_needs), no);
    LLVMBuildBr(cg->b, yes);
}

/* i32 NAME.cpu_level(): the ISA level of the best variant this CPU runs (the baseline's when
 * none). */
static LLVMValueRef cpu_level_function(kl_cg *cg) {
    LLVMValueRef fn = LLVMAddFunction(cg->mod, kl_sprintf(cg->arena, "%s.cpu_level", cg->o->name),
                                      LLVMFunctionType(cg->i32, NULL, 0, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    kl_cg_add_fn_attr(cg, fn, "nounwind");
    kl_cg_add_fn_attr(cg, fn, "noinline");
    LLVMBasicBlockRef saved = LLVMGetInsertBlock(cg->b);
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    for (int i = 0; i < cg->o->n_variants; i++) {
        const kl_target *t = cg->o->variants[i].target;
        LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(cg->ctx, fn, "level");
        LLVMBasicBlockRef no = LLVMAppendBasicBlockInContext(cg->ctx, fn, "next");
        emit_cpu_test(cg, fn, t, yes, no);
        LLVMPositionBuilderAtEnd(cg->b, yes);
        LLVMBuildRet(cg->b, LLVMConstInt(cg->i32, (unsigned long long)t->isa_level, 0));
        LLVMPositionBuilderAtEnd(cg->b, no);
    }
    LLVMBuildRet(cg->b, LLVMConstInt(cg->i32, (unsigned long long)cg->o->target->isa_level, 0));
    LLVMPositionBuilderAtEnd(cg->b, saved);
    return fn;
}

/* The level remembered in the workspace, or checked now and remembered. */
static LLVMValueRef cached_cpu_level(kl_cg *cg, LLVMValueRef fn, LLVMValueRef workspace) {
    LLVMValueRef off = LLVMConstInt(cg->i64, (unsigned long long)cg->o->cpu_cache_offset, 0);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->i8, workspace, &off, 1, "cpu_cache");
    LLVMValueRef eight = LLVMConstInt(cg->i64, 8, 0);
    LLVMValueRef level_slot = LLVMBuildInBoundsGEP2(cg->b, cg->i8, slot, &eight, 1, "");
    LLVMValueRef tag = LLVMBuildXor(cg->b, LLVMBuildPtrToInt(cg->b, workspace, cg->i64, ""),
                                    LLVMConstInt(cg->i64, CPU_CACHE_TAG, 0), "tag");
    LLVMValueRef seen = LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildLoad2(cg->b, cg->i64, slot, ""), tag, "");
    LLVMBasicBlockRef entry = LLVMGetInsertBlock(cg->b);
    LLVMBasicBlockRef cached = LLVMAppendBasicBlockInContext(cg->ctx, fn, "cpu_cached");
    LLVMBasicBlockRef check = LLVMAppendBasicBlockInContext(cg->ctx, fn, "cpu_check");
    LLVMBasicBlockRef known = LLVMAppendBasicBlockInContext(cg->ctx, fn, "cpu_known");
    LLVMBuildCondBr(cg->b, seen, cached, check);
    (void)entry;
    LLVMPositionBuilderAtEnd(cg->b, cached);
    LLVMValueRef remembered = LLVMBuildLoad2(cg->b, cg->i32, level_slot, "");
    LLVMBuildBr(cg->b, known);
    LLVMPositionBuilderAtEnd(cg->b, check);
    LLVMValueRef level_fn = cpu_level_function(cg);
    LLVMValueRef measured = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(level_fn), level_fn, NULL, 0, "");
    LLVMBuildStore(cg->b, measured, level_slot);
    LLVMBuildStore(cg->b, tag, slot);
    LLVMBuildBr(cg->b, known);
    LLVMPositionBuilderAtEnd(cg->b, known);
    LLVMValueRef level = LLVMBuildPhi(cg->b, cg->i32, "cpu_level");
    LLVMValueRef values[2] = {remembered, measured};
    LLVMBasicBlockRef blocks[2] = {cached, check};
    LLVMAddIncoming(level, values, blocks, 2);
    return level;
}

void kl_cg_dispatch(kl_cg *cg, LLVMValueRef fn, int workspace_param, const char *entry) {
    const kl_codegen_opts *o = cg->o;
    if (o->n_variants == 0) return;
    LLVMValueRef level = cached_cpu_level(cg, fn, LLVMGetParam(fn, (unsigned)workspace_param));
    unsigned n = LLVMCountParams(fn);
    LLVMValueRef *args = kl_alloc_array(cg->arena, (size_t)n + 1, sizeof *args);
    for (unsigned i = 0; i < n; i++) args[i] = LLVMGetParam(fn, i);
    LLVMTypeRef ft = LLVMGlobalGetValueType(fn);
    for (int i = 0; i < o->n_variants; i++) {
        const kl_target *t = o->variants[i].target;
        const char *name = kl_sprintf(cg->arena, "%s_%s", variant_name(cg, t), entry);
        LLVMValueRef callee = LLVMGetNamedFunction(cg->mod, name);
        if (!callee) {
            callee = LLVMAddFunction(cg->mod, name, ft);
            LLVMSetVisibility(callee, LLVMHiddenVisibility);
            kl_cg_add_fn_attr(cg, callee, "nounwind");
        }
        LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, fn, "variant");
        LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(cg->ctx, fn, "not_variant");
        LLVMValueRef runs = LLVMBuildICmp(cg->b, LLVMIntSGE, level,
                                          LLVMConstInt(cg->i32, (unsigned long long)t->isa_level, 0), "");
        LLVMBuildCondBr(cg->b, runs, go, next);
        LLVMPositionBuilderAtEnd(cg->b, go);
        LLVMBuildRet(cg->b, LLVMBuildCall2(cg->b, ft, callee, args, n, ""));
        LLVMPositionBuilderAtEnd(cg->b, next);
    }
}
