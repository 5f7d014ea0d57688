/*
 * codegen/llvm/module.c — kl_program -> object / shared library / assembly / LLVM IR.
 *
 * The steps, in order: target machine from the kl_target descriptor (the only place that
 * initializes an LLVM target, by the triple's architecture), module with the target's data
 * layout, runtime-min bitcode linked in, one internal function per kernel, the exported entry
 * points NAME_predict / NAME_run and the NAME_model table, everything else made internal (so
 * unused runtime functions vanish and the rest inline), verification, the new pass manager's
 * default<On> pipeline, and emission. Output files are written to a temporary name beside the
 * destination and renamed, so a failure never leaves a partial file. The steps that do not
 * depend on the program (kl_cg_open, kl_cg_write, kl_cg_close) are exported for tests that
 * build modules of their own.
 *
 * predict(in..., out..., workspace) checks its pointers (KILN_E_NULL_ARGUMENT) and the
 * workspace alignment (KILN_E_MISALIGNED), then calls the kernels in order, handing each the
 * pointers of the buffers it touches: an argument, a constant global (weights as one byte
 * string, 64-byte aligned) or workspace + the planner's offset.
 */
#ifndef _GNU_SOURCE /* mkstemps under -std=c17 */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "kiln.h"
#include "llvm_internal.h"

/* ---------------------------------------------------------------- small helpers */

LLVMValueRef kl_cg_intrinsic(kl_cg *cg, const char *name, LLVMTypeRef *types, int n_types) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    return LLVMGetIntrinsicDeclaration(cg->mod, id, types, (size_t)n_types);
}

void kl_cg_add_fn_attr(kl_cg *cg, LLVMValueRef fn, const char *attr) {
    unsigned kind = LLVMGetEnumAttributeKindForName(attr, strlen(attr));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

void kl_cg_add_param_attr(kl_cg *cg, LLVMValueRef fn, int param, const char *attr,
                          uint64_t value) {
    unsigned kind = LLVMGetEnumAttributeKindForName(attr, strlen(attr));
    LLVMAddAttributeAtIndex(fn, (LLVMAttributeIndex)(param + 1),
                            LLVMCreateEnumAttribute(cg->ctx, kind, value));
}

static char *exported(kl_cg *cg, const char *what) {
    return kl_sprintf(cg->arena, "%s_%s", cg->o->name, what);
}

/* ---------------------------------------------------------------- target machine */

/* LLVM targets kiln can initialize, by the architecture part of the triple. Adding a target
 * family adds a line here (and its libraries are already in libLLVM). The assembly parser is
 * needed for module-level inline asm (the embedded libxsmm kernels, xsmm.c, and the x86 ISA
 * note): without it LLVM aborts the process when it writes an object. */
static bool init_llvm_target(const char *triple) {
    if (strncmp(triple, "x86_64", 6) == 0 || strncmp(triple, "i686", 4) == 0) {
        LLVMInitializeX86TargetInfo();
        LLVMInitializeX86Target();
        LLVMInitializeX86TargetMC();
        LLVMInitializeX86AsmPrinter();
        LLVMInitializeX86AsmParser(); /* module-level assembly: the ISA note, micro-kernels */
        return true;
    }
    if (strncmp(triple, "aarch64", 7) == 0) {
        LLVMInitializeAArch64TargetInfo();
        LLVMInitializeAArch64Target();
        LLVMInitializeAArch64TargetMC();
        LLVMInitializeAArch64AsmPrinter();
        LLVMInitializeAArch64AsmParser();
        return true;
    }
    if (strncmp(triple, "riscv", 5) == 0) {
        LLVMInitializeRISCVTargetInfo();
        LLVMInitializeRISCVTarget();
        LLVMInitializeRISCVTargetMC();
        LLVMInitializeRISCVAsmPrinter();
        LLVMInitializeRISCVAsmParser();
        return true;
    }
    if (strncmp(triple, "thumb", 5) == 0 || strncmp(triple, "arm", 3) == 0) {
        LLVMInitializeARMTargetInfo();
        LLVMInitializeARMTarget();
        LLVMInitializeARMTargetMC();
        LLVMInitializeARMAsmPrinter();
        LLVMInitializeARMAsmParser();
        return true;
    }
    return false;
}

/* Code for an OS is position independent (it may go into a PIE or a shared library); bare-metal
 * code is linked at fixed addresses, where PIC would only add GOT indirections (and on Arm
 * needs a GOT that firmware linker scripts do not provide). */
static LLVMTargetMachineRef target_machine(LLVMTargetRef target, const kl_target *t,
                                           LLVMCodeGenOptLevel level) {
    LLVMTargetMachineOptionsRef opts = LLVMCreateTargetMachineOptions();
    LLVMTargetMachineOptionsSetCPU(opts, t->cpu ? t->cpu : "");
    LLVMTargetMachineOptionsSetFeatures(opts, t->features ? t->features : "");
    if (t->abi && *t->abi)
        LLVMTargetMachineOptionsSetABI(opts, t->abi);
    LLVMTargetMachineOptionsSetCodeGenOptLevel(opts, level);
    LLVMTargetMachineOptionsSetRelocMode(opts, t->hosted ? LLVMRelocPIC : LLVMRelocStatic);
    LLVMTargetMachineOptionsSetCodeModel(opts, LLVMCodeModelDefault);
    LLVMTargetMachineRef tm = LLVMCreateTargetMachineWithOptions(target, t->triple, opts);
    LLVMDisposeTargetMachineOptions(opts);
    return tm;
}

static bool create_target_machine(kl_cg *cg) {
    const kl_target *t = cg->o->target;
    if (!init_llvm_target(t->triple))
        return kl_error(cg->d, NULL, "codegen: the LLVM back end has no support for '%s' (%s)",
                        t->name, t->triple);
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &target, &err)) {
        kl_error(cg->d, NULL, "codegen: target '%s': %s", t->triple, err ? err : "unknown");
        LLVMDisposeMessage(err);
        return false;
    }
    static const LLVMCodeGenOptLevel levels[] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                                 LLVMCodeGenLevelDefault,
                                                 LLVMCodeGenLevelAggressive};
    int lvl = cg->o->opt_level < 0 ? 0 : cg->o->opt_level > 3 ? 3 : cg->o->opt_level;
    cg->tm = target_machine(target, t, levels[lvl]);
    if (!cg->tm)
        return kl_error(cg->d, NULL, "codegen: cannot create a target machine for '%s'", t->triple);
    cg->td = LLVMCreateTargetDataLayout(cg->tm);
    return true;
}

static void create_module(kl_cg *cg) {
    cg->ctx = LLVMContextCreate();
    cg->mod = LLVMModuleCreateWithNameInContext(cg->o->name, cg->ctx);
    LLVMSetTarget(cg->mod, cg->o->target->triple);
    char *layout = LLVMCopyStringRepOfTargetData(cg->td);
    LLVMSetDataLayout(cg->mod, layout);
    LLVMDisposeMessage(layout);
    cg->b = LLVMCreateBuilderInContext(cg->ctx);
    cg->i1 = LLVMInt1TypeInContext(cg->ctx);
    cg->i8 = LLVMInt8TypeInContext(cg->ctx);
    cg->i16 = LLVMInt16TypeInContext(cg->ctx);
    cg->i32 = LLVMInt32TypeInContext(cg->ctx);
    cg->i64 = LLVMInt64TypeInContext(cg->ctx);
    cg->f32 = LLVMFloatTypeInContext(cg->ctx);
    cg->f64 = LLVMDoubleTypeInContext(cg->ctx);
    cg->ptr = LLVMPointerTypeInContext(cg->ctx, 0);
    cg->void_t = LLVMVoidTypeInContext(cg->ctx);
}

/* An x86-64 object that needs more than the baseline ISA says so in an ELF property note
 * (GNU_PROPERTY_X86_ISA_1_NEEDED, OR-merged by the linker into the program or shared library).
 * glibc (2.33 and later) then refuses to start the program on an older CPU, with "CPU ISA level
 * is lower than required", instead of letting predict() die of an illegal instruction. */
static void add_isa_level_note(kl_cg *cg) {
    int level = cg->o->target->isa_level;
    if (cg->o->is_variant) return; /* only run where the baseline code chose it */
    if (level < 2 || level > 4 || strncmp(cg->o->target->triple, "x86_64", 6) != 0)
        return;
    char text[512];
    snprintf(text, sizeof text,
             ".pushsection .note.gnu.property,\"a\",@note\n"
             ".p2align 3\n"
             ".long 4\n"            /* name size: "GNU\\0" */
             ".long 16\n"           /* descriptor size: one 4-byte property, padded to 8 */
             ".long 5\n"            /* NT_GNU_PROPERTY_TYPE_0 */
             ".asciz \"GNU\"\n"
             ".long 0xc0008002\n"   /* GNU_PROPERTY_X86_ISA_1_NEEDED */
             ".long 4\n"
             ".long %d\n"           /* bit 1 << (level - 1): v2 = 2, v3 = 4, v4 = 8 */
             ".long 0\n"
             ".popsection\n",
             1 << (level - 1));
    LLVMAppendModuleInlineAsm(cg->mod, text, strlen(text));
}

static void dispose(kl_cg *cg) {
    if (cg->b)
        LLVMDisposeBuilder(cg->b);
    if (cg->mod)
        LLVMDisposeModule(cg->mod);
    if (cg->ctx)
        LLVMContextDispose(cg->ctx);
    if (cg->td)
        LLVMDisposeTargetData(cg->td);
    if (cg->tm)
        LLVMDisposeTargetMachine(cg->tm);
}

/* ---------------------------------------------------------------- predict / run */

/* The three entries share the kernel sequence and differ in how each kernel is started. */
typedef enum entry_mode {
    ENTRY_SERIAL,    /* NAME_predict: every kernel on the calling thread */
    ENTRY_PARALLEL,  /* NAME_predict_parallel: kernels with a task loop through parallel_for */
    ENTRY_PROFILED,  /* the profiling entry: a callback around every kernel, and the kernels
                        with a task loop through parallel_for when it is given one */
    ENTRY_SIZED,     /* bounded dims: the serial entry behind predict_dynamic, which has
                        written the dim's run-time value already (internal) */
} entry_mode;

enum { TASKS_PER_THREAD = 4 };

typedef struct entry {
    LLVMValueRef fn;
    entry_mode mode;
    int n_args;                  /* inputs + outputs + workspace */
    LLVMValueRef *const_globals; /* parallel to p->buffers, created on first use */
    LLVMValueRef closure;        /* parallel: the tasks' closure (alloca), reused kernel by kernel */
    LLVMTypeRef closure_t;
} entry;

/* Whether the entry hands kernels to a parallel-for (its `par` argument), and which argument
 * that is: the profiled entry's comes after the callback and its context. */
static bool takes_parallel(entry_mode mode) { return mode == ENTRY_PARALLEL || mode == ENTRY_PROFILED; }

static LLVMValueRef parallel_param(const entry *e) {
    return LLVMGetParam(e->fn, (unsigned)e->n_args + (e->mode == ENTRY_PROFILED ? 2 : 0));
}

/* A private read-only global "const.NAME" holding buf's constant `init`. */
static LLVMValueRef private_constant(kl_cg *cg, const kl_buffer *buf, LLVMValueRef init,
                                     unsigned align) {
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(init),
                                   kl_sprintf(cg->arena, "const.%s", buf->name ? buf->name : ""));
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    LLVMSetAlignment(g, align);
    return g;
}

/* A string constant: an array of pointers to private NUL-terminated strings, all read-only
 * (a shared object relocates the pointers once, in its RELRO pages). */
static LLVMValueRef const_strings(kl_cg *cg, const kl_buffer *buf) {
    int64_t n = kl_shape_numel(&buf->shape);
    const char *const *s = buf->data;
    LLVMValueRef *items = kl_alloc_array(cg->arena, (size_t)n + 1, sizeof *items);
    for (int64_t i = 0; i < n; i++)
        items[i] = kl_cg_const_string(cg, s[i], "const_string");
    return private_constant(cg, buf, LLVMConstArray2(cg->ptr, items, (uint64_t)n), 8);
}

static LLVMValueRef const_global(kl_cg *cg, entry *e, const kl_buffer *buf) {
    int i = 0;
    while (i < cg->p->buffers.n && cg->p->buffers.items[i] != buf)
        i++;
    if (i == cg->p->buffers.n)
        return NULL;
    if (e->const_globals[i])
        return e->const_globals[i];
    int64_t bytes = kl_buffer_bytes(buf);
    if (bytes > 0 && !buf->data) {
        kl_error(cg->d, NULL, "codegen: constant buffer '%s' has no data", buf->name);
        return NULL;
    }
    if (buf->dtype == KL_STRING)
        return e->const_globals[i] = const_strings(cg, buf);
    LLVMValueRef outside = kl_cg_blob_place(cg, buf);
    if (outside)
        return e->const_globals[i] = outside;
    LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, bytes > 0 ? buf->data : "",
                                                  (size_t)(bytes > 0 ? bytes : 0), 1);
    LLVMValueRef g = private_constant(cg, buf, init, 64);
    if (cg->o->weights_section && *cg->o->weights_section) /* firmware: a chosen flash region */
        LLVMSetSection(g, cg->o->weights_section);
    return e->const_globals[i] = g;
}

/* The pointer predict hands a kernel for one buffer. */
static LLVMValueRef buffer_pointer(kl_cg *cg, entry *e, const kl_buffer *buf) {
    int n_in = cg->p->inputs.n, n_out = cg->p->outputs.n;
    switch (buf->kind) {
    case KL_BUF_INPUT:
        if (buf->index >= 0 && buf->index < n_in)
            return LLVMGetParam(e->fn, (unsigned)buf->index);
        break;
    case KL_BUF_OUTPUT:
        if (buf->index >= 0 && buf->index < n_out)
            return LLVMGetParam(e->fn, (unsigned)(n_in + buf->index));
        break;
    case KL_BUF_CONST:
        return const_global(cg, e, buf);
    case KL_BUF_WORKSPACE: {
        if (buf->offset < 0 || buf->offset + kl_buffer_bytes(buf) > cg->p->workspace_size)
            break;
        LLVMValueRef off = LLVMConstInt(cg->i64, (unsigned long long)buf->offset, 0);
        return LLVMBuildInBoundsGEP2(cg->b, cg->i8, LLVMGetParam(e->fn, (unsigned)(n_in + n_out)),
                                     &off, 1, "");
    }
    }
    kl_error(cg->d, NULL, "codegen: buffer '%s' has no valid place (kind %d, index %d, offset %lld)",
             buf->name, (int)buf->kind, buf->index, (long long)buf->offset);
    return NULL;
}

/* if (cond) return code; — continues in a fresh block. */
static void return_if(kl_cg *cg, LLVMValueRef fn, LLVMValueRef cond, int code) {
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(cg->ctx, fn, "fail");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, fn, "ok");
    LLVMBuildCondBr(cg->b, cond, fail, go);
    LLVMPositionBuilderAtEnd(cg->b, fail);
    LLVMBuildRet(cg->b, LLVMConstInt(cg->i32, (unsigned long long)(int64_t)code, 1));
    LLVMPositionBuilderAtEnd(cg->b, go);
}

/* Whether parameter i of predict_dynamic (in0, in0_shape, ..., out0, out0_shape, ..., ws) is
 * the dims of a scalar: never read, so it may be NULL. */
static bool scalar_dims_param(const kl_program *p, int i) {
    if (i % 2 == 0 || i / 2 >= p->inputs.n + p->outputs.n) return false;
    const kl_buffer *b = i / 2 < p->inputs.n ? p->inputs.items[i / 2]
                                             : p->outputs.items[i / 2 - p->inputs.n];
    return b->shape.rank == 0;
}

/* with_dims: fn is predict_dynamic, whose scalars' dims may be NULL */
static void check_arguments(kl_cg *cg, LLVMValueRef fn, int n_args, bool with_dims) {
    bool need_ws = cg->p->workspace_size > 0;
    LLVMValueRef any_null = LLVMConstInt(cg->i1, 0, 0);
    for (int i = 0; i < n_args; i++) {
        if (i == n_args - 1 && !need_ws)
            break;
        if (with_dims && scalar_dims_param(cg->p, i))
            continue;
        any_null = LLVMBuildOr(cg->b, any_null, LLVMBuildIsNull(cg->b, LLVMGetParam(fn, (unsigned)i), ""), "");
    }
    return_if(cg, fn, any_null, -1 /* KILN_E_NULL_ARGUMENT */);
    if (need_ws) {
        LLVMValueRef addr = LLVMBuildPtrToInt(cg->b, LLVMGetParam(fn, (unsigned)(n_args - 1)), cg->i64, "");
        LLVMValueRef low = LLVMBuildAnd(cg->b, addr, LLVMConstInt(cg->i64, 63, 0), "");
        return_if(cg, fn, LLVMBuildICmp(cg->b, LLVMIntNE, low, LLVMConstInt(cg->i64, 0, 0), ""),
                  -2 /* KILN_E_MISALIGNED */);
    }
}

static int max_kernel_buffers(const kl_cg_kernel *kernels, int n) {
    int m = 0;
    for (int k = 0; k < n; k++)
        if (kernels[k].n_bufs > m)
            m = kernels[k].n_bufs;
    return m;
}

/* closure { i64 tasks; [max_bufs x ptr] pointers } */
static LLVMTypeRef closure_type(kl_cg *cg, int max_bufs) {
    LLVMTypeRef f[2] = {cg->i64, LLVMArrayType2(cg->ptr, (uint64_t)(max_bufs ? max_bufs : 1))};
    return LLVMStructTypeInContext(cg->ctx, f, 2, 0);
}

/* void kN_task(ptr closure, i64 i): the kernel over the i-th of `tasks` slices of its task
 * loop. */
static LLVMValueRef task_function(kl_cg *cg, const kl_kernel *kn, const kl_cg_kernel *ck,
                                  LLVMTypeRef closure_t) {
    LLVMTypeRef params[2] = {cg->ptr, cg->i64};
    LLVMValueRef fn = LLVMAddFunction(cg->mod, kl_sprintf(cg->arena, "%s_task", kn->name),
                                      LLVMFunctionType(cg->void_t, params, 2, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    kl_cg_add_fn_attr(cg, fn, "nounwind");
    LLVMBasicBlockRef saved = LLVMGetInsertBlock(cg->b);
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    LLVMValueRef closure = LLVMGetParam(fn, 0), i = LLVMGetParam(fn, 1);
    LLVMValueRef tasks = LLVMBuildLoad2(cg->b, cg->i64, LLVMBuildStructGEP2(cg->b, closure_t, closure, 0, ""), "");
    LLVMValueRef extent = LLVMConstInt(cg->i64, (unsigned long long)kn->extent[kn->task_loop], 0);
    LLVMValueRef lo = LLVMBuildUDiv(cg->b, LLVMBuildMul(cg->b, i, extent, ""), tasks, "");
    LLVMValueRef next = LLVMBuildAdd(cg->b, i, LLVMConstInt(cg->i64, 1, 0), "");
    LLVMValueRef hi = LLVMBuildUDiv(cg->b, LLVMBuildMul(cg->b, next, extent, ""), tasks, "");
    LLVMValueRef ptrs = LLVMBuildStructGEP2(cg->b, closure_t, closure, 1, "");
    LLVMTypeRef ptrs_t = LLVMStructGetTypeAtIndex(closure_t, 1);
    LLVMValueRef *args = kl_alloc_array(cg->arena, (size_t)ck->n_bufs + 2, sizeof *args);
    for (int j = 0; j < ck->n_bufs; j++) {
        LLVMValueRef idx[2] = {LLVMConstInt(cg->i64, 0, 0), LLVMConstInt(cg->i64, (unsigned long long)j, 0)};
        args[j] = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildInBoundsGEP2(cg->b, ptrs_t, ptrs, idx, 2, ""), "");
    }
    args[ck->n_bufs] = lo;
    args[ck->n_bufs + 1] = hi;
    LLVMBuildCall2(cg->b, ck->fn_type, ck->fn, args, (unsigned)ck->n_bufs + 2, "");
    LLVMBuildRetVoid(cg->b);
    LLVMPositionBuilderAtEnd(cg->b, saved);
    return fn;
}

/* The kernel through par->parallel_for when par asks for threads, else directly. */
static void call_parallel(kl_cg *cg, entry *e, const kl_kernel *kn, const kl_cg_kernel *ck,
                          LLVMValueRef *args) {
    LLVMValueRef par = parallel_param(e);
    LLVMTypeRef par_f[3] = {cg->ptr, cg->ptr, cg->i32};
    LLVMTypeRef par_t = LLVMStructTypeInContext(cg->ctx, par_f, 3, 0);
    LLVMBasicBlockRef threaded = LLVMAppendBasicBlockInContext(cg->ctx, e->fn, "threaded");
    LLVMBasicBlockRef check = LLVMAppendBasicBlockInContext(cg->ctx, e->fn, "threads");
    LLVMBasicBlockRef alone = LLVMAppendBasicBlockInContext(cg->ctx, e->fn, "alone");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->ctx, e->fn, "next");
    LLVMBuildCondBr(cg->b, LLVMBuildIsNull(cg->b, par, ""), alone, check);
    LLVMPositionBuilderAtEnd(cg->b, check);
    LLVMValueRef threads = LLVMBuildLoad2(cg->b, cg->i32, LLVMBuildStructGEP2(cg->b, par_t, par, 2, ""), "");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, threads, LLVMConstInt(cg->i32, 1, 0), ""),
                    threaded, alone);

    LLVMPositionBuilderAtEnd(cg->b, threaded);
    int64_t extent = kn->extent[kn->task_loop];
    /* A kernel that prefetches its next panel of weights (kernel/prefetch.c) runs one slice
     * per thread: within a slice the next panel is the thread's own next one, while with
     * several slices a thread's next slice is any thread's (a chain of 512-channel layers on 2
     * threads: 4.8 ms with 4 slices a thread, 3.7 ms with one). */
    int64_t per_thread = kn->prefetch_at ? 1 : TASKS_PER_THREAD;
    LLVMValueRef want = LLVMBuildMul(cg->b, LLVMBuildSExt(cg->b, threads, cg->i64, ""),
                                     LLVMConstInt(cg->i64, (unsigned long long)per_thread, 0), "");
    LLVMValueRef ext = LLVMConstInt(cg->i64, (unsigned long long)extent, 0);
    LLVMValueRef tasks = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, want, ext, ""), want, ext, "");
    LLVMBuildStore(cg->b, tasks, LLVMBuildStructGEP2(cg->b, e->closure_t, e->closure, 0, ""));
    LLVMValueRef ptrs = LLVMBuildStructGEP2(cg->b, e->closure_t, e->closure, 1, "");
    LLVMTypeRef ptrs_t = LLVMStructGetTypeAtIndex(e->closure_t, 1);
    for (int j = 0; j < ck->n_bufs; j++) {
        LLVMValueRef idx[2] = {LLVMConstInt(cg->i64, 0, 0), LLVMConstInt(cg->i64, (unsigned long long)j, 0)};
        LLVMBuildStore(cg->b, args[j], LLVMBuildInBoundsGEP2(cg->b, ptrs_t, ptrs, idx, 2, ""));
    }
    LLVMValueRef pf = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildStructGEP2(cg->b, par_t, par, 0, ""), "");
    LLVMValueRef ctx = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildStructGEP2(cg->b, par_t, par, 1, ""), "");
    LLVMTypeRef pf_params[4] = {cg->ptr, cg->i64, cg->ptr, cg->ptr};
    LLVMTypeRef pf_t = LLVMFunctionType(cg->void_t, pf_params, 4, 0);
    LLVMValueRef pf_args[4] = {ctx, tasks, task_function(cg, kn, ck, e->closure_t), e->closure};
    LLVMBuildCall2(cg->b, pf_t, pf, pf_args, 4, "");
    LLVMBuildBr(cg->b, join);

    LLVMPositionBuilderAtEnd(cg->b, alone);
    LLVMBuildCall2(cg->b, ck->fn_type, ck->fn, args, (unsigned)ck->n_bufs + 2, "");
    LLVMBuildBr(cg->b, join);
    LLVMPositionBuilderAtEnd(cg->b, join);
}

/* A check kernel (ops/index_check.c): predict returns its error code when it raised its flag. */
static bool return_on_flag(kl_cg *cg, entry *e, const kl_kernel *kn) {
    LLVMValueRef flag = buffer_pointer(cg, e, kn->out);
    if (!flag || kn->out->dtype != KL_I32)
        return flag && kl_error(cg->d, NULL, "codegen: check kernel %s has no int32 flag", kn->name);
    LLVMValueRef raised = LLVMBuildICmp(cg->b, LLVMIntNE, LLVMBuildLoad2(cg->b, cg->i32, flag, ""),
                                        LLVMConstInt(cg->i32, 0, 0), "");
    return_if(cg, e->fn, raised, kn->error_code);
    return true;
}

static void call_profile(kl_cg *cg, entry *e, int k, int phase) {
    LLVMValueRef fn = LLVMGetParam(e->fn, (unsigned)e->n_args);
    LLVMValueRef ctx = LLVMGetParam(e->fn, (unsigned)e->n_args + 1);
    LLVMTypeRef params[3] = {cg->ptr, cg->i32, cg->i32};
    k += cg->o->profile_kernel_base; /* an ISA variant's kernels follow the baseline's */
    LLVMValueRef args[3] = {ctx, LLVMConstInt(cg->i32, (unsigned long long)k, 0),
                            LLVMConstInt(cg->i32, (unsigned long long)phase, 0)};
    LLVMBuildCall2(cg->b, LLVMFunctionType(cg->void_t, params, 3, 0), fn, args, 3, "");
}

/* Whether a guarded kernel runs: every level's bool condition (one byte) equals its `when`. */
static LLVMValueRef guard_holds(kl_cg *cg, entry *e, const kl_kernel_guard *g) {
    LLVMValueRef all = LLVMConstInt(cg->i1, 1, 0);
    for (; g; g = g->outer) {
        LLVMValueRef at = buffer_pointer(cg, e, kl_buffer_root(g->cond));
        if (!at) return NULL;
        LLVMValueRef set = LLVMBuildICmp(cg->b, LLVMIntNE, LLVMBuildLoad2(cg->b, cg->i8, at, ""),
                                         LLVMConstInt(cg->i8, 0, 0), "");
        all = LLVMBuildAnd(cg->b, all, g->when ? set : LLVMBuildNot(cg->b, set, ""), "");
    }
    return all;
}

static const char *const entry_names[] = {"predict", "predict_parallel", "predict_profiled",
                                          "predict_sized"};

/* Bounded dims: the dim's value n into the workspace's slot, where the kernels read it. */
static LLVMValueRef dims_slot(kl_cg *cg, LLVMValueRef workspace) {
    LLVMValueRef off = LLVMConstInt(cg->i64, (unsigned long long)cg->p->dims->offset, 0);
    return LLVMBuildInBoundsGEP2(cg->b, cg->i8, workspace, &off, 1, "dims");
}

/* NAME_predict(in..., out..., ws [, par | , fn, ctx, par]) */
static LLVMValueRef emit_predict(kl_cg *cg, kl_cg_kernel *kernels, entry_mode mode) {
    const kl_program *p = cg->p;
    int n_args = p->inputs.n + p->outputs.n + 1;
    int n_extra = mode == ENTRY_SERIAL || mode == ENTRY_SIZED ? 0 : mode == ENTRY_PARALLEL ? 1 : 3;
    LLVMTypeRef *params = kl_alloc_array(cg->arena, (size_t)(n_args + n_extra), sizeof *params);
    for (int i = 0; i < n_args + n_extra; i++)
        params[i] = cg->ptr;
    LLVMTypeRef ft = LLVMFunctionType(cg->i32, params, (unsigned)(n_args + n_extra), 0);
    /* one global per constant buffer, shared by every entry: LLVM does not merge duplicates
     * placed in a named section (--weights-section) */
    if (!cg->const_globals)
        cg->const_globals = kl_alloc_array(cg->arena, (size_t)p->buffers.n + 1, sizeof(LLVMValueRef));
    entry e = {LLVMAddFunction(cg->mod, exported(cg, entry_names[mode]), ft), mode, n_args,
               cg->const_globals, NULL, NULL};
    kl_cg_add_fn_attr(cg, e.fn, "nounwind");
    if (mode == ENTRY_SIZED)
        LLVMSetLinkage(e.fn, LLVMInternalLinkage);
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, e.fn, "entry"));
    if (takes_parallel(mode)) {
        e.closure_t = closure_type(cg, max_kernel_buffers(kernels, p->kernels.n));
        e.closure = LLVMBuildAlloca(cg->b, e.closure_t, "closure");
    }
    check_arguments(cg, e.fn, n_args, false);
    if (kl_program_data_dependent(p) && mode != ENTRY_SIZED) {
        /* an output's length is known only at run time: only predict_dynamic reports it */
        LLVMBuildRet(cg->b, LLVMConstInt(cg->i32, (unsigned long long)KILN_E_DYNAMIC_OUTPUT, 1));
        return e.fn;
    }
    kl_cg_dispatch(cg, e.fn, n_args - 1, entry_names[mode]);
    if (p->dims && mode != ENTRY_SIZED) /* the fixed-shape entries run at the bounds */
        LLVMBuildStore(cg->b, LLVMConstInt(cg->i64, (unsigned long long)p->bounded_max, 0),
                       dims_slot(cg, LLVMGetParam(e.fn, (unsigned)(n_args - 1))));
    for (int k = 0; k < p->kernels.n; k++) {
        kl_cg_kernel *ck = &kernels[k];
        const kl_kernel *kn = p->kernels.items[k];
        LLVMValueRef *args = kl_alloc_array(cg->arena, (size_t)ck->n_bufs + 2, sizeof *args);
        for (int i = 0; i < ck->n_bufs; i++)
            if (!(args[i] = buffer_pointer(cg, &e, ck->bufs[i])))
                return NULL;
        LLVMBasicBlockRef after = NULL;
        if (kn->guard) { /* a kernel of an If's branch: skipped unless the branch is taken */
            LLVMValueRef runs = guard_holds(cg, &e, kn->guard);
            if (!runs) return NULL;
            LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, e.fn, "guarded");
            after = LLVMAppendBasicBlockInContext(cg->ctx, e.fn, "after_guard");
            LLVMBuildCondBr(cg->b, runs, body, after);
            LLVMPositionBuilderAtEnd(cg->b, body);
        }
        int64_t tasks = kn->task_loop >= 0 ? kn->extent[kn->task_loop] : 0;
        args[ck->n_bufs] = LLVMConstInt(cg->i64, 0, 0);
        args[ck->n_bufs + 1] = LLVMConstInt(cg->i64, (unsigned long long)tasks, 0);
        if (mode == ENTRY_PROFILED)
            call_profile(cg, &e, k, 0);
        if (takes_parallel(mode) && kn->task_loop >= 0)
            call_parallel(cg, &e, kn, ck, args);
        else
            LLVMBuildCall2(cg->b, ck->fn_type, ck->fn, args, (unsigned)ck->n_bufs + 2, "");
        if (mode == ENTRY_PROFILED)
            call_profile(cg, &e, k, 1);
        if (kn->error_code && !return_on_flag(cg, &e, kn)) /* only where the kernel ran */
            return NULL;
        if (after) {
            LLVMBuildBr(cg->b, after);
            LLVMPositionBuilderAtEnd(cg->b, after);
        }
    }
    LLVMValueRef rc = LLVMConstInt(cg->i32, 0, 0);
    for (int i = 0; i < p->traps.n; i++) { /* a branch left out was taken */
        LLVMValueRef taken = guard_holds(cg, &e, ((const kl_trap *)p->traps.items[i])->guard);
        if (!taken) return NULL;
        rc = LLVMBuildSelect(cg->b, taken, LLVMConstInt(cg->i32, (unsigned long long)KILN_E_UNCOMPILED_BRANCH, 1),
                             rc, "");
    }
    LLVMBuildRet(cg->b, rc);
    return e.fn;
}

/* run(inputs[], outputs[], workspace [, extra...]) -> predict(inputs[0], ..., outputs[0], ...,
 * workspace [, extra...]) */
/* NAME_<name>(inputs[], outputs[], ws, extra...) calling predict with the first n_extra of its
 * extra arguments (NULL for the rest: run_profiled is the profiled entry without threads). */
static LLVMValueRef emit_run(kl_cg *cg, LLVMValueRef predict, const char *name, int n_extra) {
    const kl_program *p = cg->p;
    LLVMTypeRef params[6] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr};
    LLVMValueRef fn = LLVMAddFunction(cg->mod, exported(cg, name),
                                      LLVMFunctionType(cg->i32, params, 3 + (unsigned)n_extra, 0));
    kl_cg_add_fn_attr(cg, fn, "nounwind");
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    LLVMValueRef null_table = LLVMConstInt(cg->i1, 0, 0);
    if (p->inputs.n)
        null_table = LLVMBuildOr(cg->b, null_table, LLVMBuildIsNull(cg->b, LLVMGetParam(fn, 0), ""), "");
    if (p->outputs.n)
        null_table = LLVMBuildOr(cg->b, null_table, LLVMBuildIsNull(cg->b, LLVMGetParam(fn, 1), ""), "");
    return_if(cg, fn, null_table, -1 /* KILN_E_NULL_ARGUMENT */);
    int n_args = p->inputs.n + p->outputs.n + 1;
    int n_callee = (int)LLVMCountParams(predict);
    LLVMValueRef *args = kl_alloc_array(cg->arena, (size_t)n_callee, sizeof *args);
    for (int i = 0; i < n_args - 1; i++) {
        bool in = i < p->inputs.n;
        LLVMValueRef idx = LLVMConstInt(cg->i64, (unsigned long long)(in ? i : i - p->inputs.n), 0);
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->ptr, LLVMGetParam(fn, in ? 0 : 1), &idx, 1, "");
        args[i] = LLVMBuildLoad2(cg->b, cg->ptr, slot, "");
    }
    args[n_args - 1] = LLVMGetParam(fn, 2);
    for (int i = n_args; i < n_callee; i++)
        args[i] = i - n_args < n_extra ? LLVMGetParam(fn, 3 + (unsigned)(i - n_args))
                                       : LLVMConstPointerNull(cg->ptr);
    LLVMValueRef r = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(predict), predict, args,
                                    (unsigned)n_callee, "");
    LLVMBuildRet(cg->b, r);
    return fn;
}

/* ---------------------------------------------------------------- bounded dims */

static LLVMValueRef i64_const(kl_cg *cg, int64_t v) {
    return LLVMConstInt(cg->i64, (unsigned long long)v, 1);
}

/* Dim d of an interface buffer at run time: dyn_a * n + dyn_b, or the fixed dim. */
static LLVMValueRef dim_at_run_time(kl_cg *cg, const kl_buffer *b, int d, LLVMValueRef n) {
    if (!b->dyn_a || !b->dyn_a[d])
        return i64_const(cg, b->shape.dim[d]);
    return LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, n, i64_const(cg, b->dyn_a[d]), ""),
                        i64_const(cg, b->dyn_b[d]), "");
}

/* n from the inputs' dims (the first varying one gives it, the others must agree), and
 * whether any dim breaks its range or fixed value. */
static LLVMValueRef dims_of_inputs(kl_cg *cg, LLVMValueRef fn, LLVMValueRef *bad) {
    const kl_program *p = cg->p;
    LLVMValueRef n = NULL;
    *bad = LLVMConstInt(cg->i1, 0, 0);
    for (int i = 0; i < p->inputs.n; i++) {
        const kl_buffer *b = p->inputs.items[i];
        LLVMValueRef shape = LLVMGetParam(fn, (unsigned)(2 * i + 1));
        for (int d = 0; d < b->shape.rank; d++) {
            LLVMValueRef at = i64_const(cg, d);
            LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->i64,
                                            LLVMBuildInBoundsGEP2(cg->b, cg->i64, shape, &at, 1, ""), "");
            LLVMValueRef wrong;
            if (b->dyn_a && b->dyn_a[d] && !n) {
                LLVMValueRef rest = LLVMBuildSub(cg->b, v, i64_const(cg, b->dyn_b[d]), "");
                n = LLVMBuildSDiv(cg->b, rest, i64_const(cg, b->dyn_a[d]), "n");
                wrong = LLVMBuildICmp(cg->b, LLVMIntNE, LLVMBuildSRem(cg->b, rest, i64_const(cg, b->dyn_a[d]), ""),
                                      i64_const(cg, 0), "");
            } else {
                wrong = LLVMBuildICmp(cg->b, LLVMIntNE, v, dim_at_run_time(cg, b, d, n), "");
            }
            *bad = LLVMBuildOr(cg->b, *bad, wrong, "");
        }
    }
    if (!p->dims) /* data-dependent outputs only: every input dim is fixed */
        return i64_const(cg, 0);
    if (!n) {
        kl_error(cg->d, NULL, "codegen: the bounded dim %s is no input's dim", p->bounded_name);
        return NULL;
    }
    LLVMValueRef low = LLVMBuildICmp(cg->b, LLVMIntSLT, n, i64_const(cg, p->bounded_min), "");
    LLVMValueRef high = LLVMBuildICmp(cg->b, LLVMIntSGT, n, i64_const(cg, p->bounded_max), "");
    *bad = LLVMBuildOr(cg->b, *bad, LLVMBuildOr(cg->b, low, high, ""), "");
    return n;
}

/* A data-dependent output's length: the count its node's kernels left in the workspace. */
static LLVMValueRef counted_length(kl_cg *cg, LLVMValueRef ws, const kl_buffer *count) {
    LLVMValueRef off = i64_const(cg, count->offset);
    return LLVMBuildLoad2(cg->b, cg->i64, LLVMBuildInBoundsGEP2(cg->b, cg->i8, ws, &off, 1, ""),
                          "length");
}

/* NAME_predict_dynamic(in0, in0_shape, ..., out0, out0_shape, ..., ws): checks the dims,
 * writes n into the workspace, runs the sized entry, writes the outputs' dims. */
static LLVMValueRef emit_predict_dynamic(kl_cg *cg, LLVMValueRef sized) {
    const kl_program *p = cg->p;
    int n_in = p->inputs.n, n_out = p->outputs.n, n_args = 2 * (n_in + n_out) + 1;
    LLVMTypeRef *params = kl_alloc_array(cg->arena, (size_t)n_args, sizeof *params);
    for (int i = 0; i < n_args; i++)
        params[i] = cg->ptr;
    LLVMValueRef fn = LLVMAddFunction(cg->mod, exported(cg, "predict_dynamic"),
                                      LLVMFunctionType(cg->i32, params, (unsigned)n_args, 0));
    kl_cg_add_fn_attr(cg, fn, "nounwind");
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    check_arguments(cg, fn, n_args, true);
    LLVMValueRef bad, n = dims_of_inputs(cg, fn, &bad);
    if (!n)
        return NULL;
    return_if(cg, fn, bad, KILN_E_SHAPE);
    LLVMValueRef ws = LLVMGetParam(fn, (unsigned)(n_args - 1));
    if (p->dims)
        LLVMBuildStore(cg->b, n, dims_slot(cg, ws));
    int n_sized = n_in + n_out + 1;
    LLVMValueRef *args = kl_alloc_array(cg->arena, (size_t)n_sized, sizeof *args);
    for (int i = 0; i < n_in + n_out; i++)
        args[i] = LLVMGetParam(fn, (unsigned)(2 * i));
    args[n_in + n_out] = ws;
    LLVMValueRef rc = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(sized), sized, args,
                                     (unsigned)n_sized, "");
    LLVMBasicBlockRef failed = LLVMAppendBasicBlockInContext(cg->ctx, fn, "failed");
    LLVMBasicBlockRef ran = LLVMAppendBasicBlockInContext(cg->ctx, fn, "ran");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntNE, rc, LLVMConstInt(cg->i32, 0, 0), ""),
                    failed, ran);
    LLVMPositionBuilderAtEnd(cg->b, failed);
    LLVMBuildRet(cg->b, rc); /* the outputs' dims are written only for a result */
    LLVMPositionBuilderAtEnd(cg->b, ran);
    for (int o = 0; o < n_out; o++) {
        const kl_buffer *b = p->outputs.items[o];
        LLVMValueRef shape = LLVMGetParam(fn, (unsigned)(2 * (n_in + o) + 1));
        const kl_buffer *count = kl_buffer_root((kl_buffer *)b)->dd_count;
        for (int d = 0; d < b->shape.rank; d++) {
            LLVMValueRef at = i64_const(cg, d);
            LLVMValueRef dim = count && d == kl_buffer_root((kl_buffer *)b)->dd_dim
                                   ? counted_length(cg, ws, count)
                                   : dim_at_run_time(cg, b, d, n);
            LLVMBuildStore(cg->b, dim, LLVMBuildInBoundsGEP2(cg->b, cg->i64, shape, &at, 1, ""));
        }
    }
    LLVMBuildRet(cg->b, LLVMConstInt(cg->i32, 0, 0));
    return fn;
}

/* run_dynamic(inputs[], input_shapes[], outputs[], output_shapes[], ws) */
static LLVMValueRef emit_run_dynamic(kl_cg *cg, LLVMValueRef dynamic) {
    const kl_program *p = cg->p;
    int n_in = p->inputs.n, n_out = p->outputs.n, n_args = 2 * (n_in + n_out) + 1;
    LLVMTypeRef params[5] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr};
    LLVMValueRef fn = LLVMAddFunction(cg->mod, exported(cg, "run_dynamic"),
                                      LLVMFunctionType(cg->i32, params, 5, 0));
    kl_cg_add_fn_attr(cg, fn, "nounwind");
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    LLVMValueRef null_table = LLVMConstInt(cg->i1, 0, 0);
    for (unsigned t = 0; t < 4; t++)
        if ((t < 2 ? n_in : n_out) > 0)
            null_table = LLVMBuildOr(cg->b, null_table, LLVMBuildIsNull(cg->b, LLVMGetParam(fn, t), ""), "");
    return_if(cg, fn, null_table, -1 /* KILN_E_NULL_ARGUMENT */);
    LLVMValueRef *args = kl_alloc_array(cg->arena, (size_t)n_args, sizeof *args);
    for (int i = 0; i < n_in + n_out; i++) {
        bool in = i < n_in;
        LLVMValueRef idx = i64_const(cg, in ? i : i - n_in);
        for (unsigned s = 0; s < 2; s++) {
            LLVMValueRef table = LLVMGetParam(fn, (in ? 0 : 2) + s);
            args[2 * i + (int)s] = LLVMBuildLoad2(cg->b, cg->ptr,
                                                  LLVMBuildInBoundsGEP2(cg->b, cg->ptr, table, &idx, 1, ""), "");
        }
    }
    args[n_args - 1] = LLVMGetParam(fn, 4);
    LLVMBuildRet(cg->b, LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(dynamic), dynamic, args,
                                       (unsigned)n_args, ""));
    return fn;
}

/* ---------------------------------------------------------------- linkage */

static bool is_exported(kl_cg *cg, const char *name) {
    static const char *const suffixes[] = {"predict", "predict_parallel", "run", "model",
                                           "predict_dynamic"};
    /* an ISA variant's entries are called by the baseline's (dispatch.c) */
    static const char *const variant_suffixes[] = {"predict", "predict_parallel",
                                                   "predict_profiled"};
    size_t n = strlen(cg->o->name);
    if (cg->part_kernels && !strncmp(name, cg->o->name, n) && name[n] == '.')
        return true; /* a kernel of a part, called from the main part (parts.c) */
    if (strncmp(name, cg->o->name, n) != 0 || name[n] != '_')
        return false;
    const char *const *list = cg->o->is_variant ? variant_suffixes : suffixes;
    for (size_t i = 0; i < (cg->o->is_variant ? 3u : 5u); i++)
        if (strcmp(name + n + 1, list[i]) == 0)
            return true;
    return false;
}

/* A variant's entries stay out of a shared library's dynamic symbols. */
static void hide_variant_entries(kl_cg *cg) {
    if (!cg->o->is_variant) return;
    for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f) && LLVMGetLinkage(f) == LLVMExternalLinkage)
            LLVMSetVisibility(f, LLVMHiddenVisibility);
}

/* Everything but the entry points becomes internal; unused functions and globals go (also at
 * -O0, where no pass would remove them). */
void kl_cg_internalize(kl_cg *cg) {
    for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f) && !is_exported(cg, LLVMGetValueName(f)))
            LLVMSetLinkage(f, LLVMInternalLinkage);
    for (LLVMValueRef g = LLVMGetFirstGlobal(cg->mod); g; g = LLVMGetNextGlobal(g))
        if (!LLVMIsDeclaration(g) && !is_exported(cg, LLVMGetValueName(g)) &&
            LLVMGetLinkage(g) != LLVMPrivateLinkage && LLVMGetLinkage(g) != LLVMAppendingLinkage)
            LLVMSetLinkage(g, LLVMInternalLinkage);
    for (bool changed = true; changed;) {
        changed = false;
        for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod), next; f; f = next) {
            next = LLVMGetNextFunction(f);
            LLVMLinkage l = LLVMGetLinkage(f);
            if ((l == LLVMInternalLinkage || LLVMIsDeclaration(f)) && !LLVMGetFirstUse(f)) {
                LLVMDeleteFunction(f);
                changed = true;
            }
        }
        for (LLVMValueRef g = LLVMGetFirstGlobal(cg->mod), next; g; g = next) {
            next = LLVMGetNextGlobal(g);
            LLVMLinkage l = LLVMGetLinkage(g);
            if ((l == LLVMInternalLinkage || l == LLVMPrivateLinkage) && !LLVMGetFirstUse(g)) {
                LLVMDeleteGlobal(g);
                changed = true;
            }
        }
    }
}

/* ---------------------------------------------------------------- passes and emission */

bool kl_cg_verify(kl_cg *cg) {
    char *msg = NULL;
    if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &msg)) {
        kl_error(cg->d, NULL, "codegen: internal error: invalid LLVM module: %s", msg ? msg : "");
        LLVMDisposeMessage(msg);
        return false;
    }
    LLVMDisposeMessage(msg);
    return true;
}

/* For size, every function asks the code generator for its smallest forms too (minsize: no
 * loop alignment, Thumb-2 narrow encodings, calls instead of inline expansions). */
static void mark_for_size(kl_cg *cg) {
    for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f)) {
            kl_cg_add_fn_attr(cg, f, "optsize");
            kl_cg_add_fn_attr(cg, f, "minsize");
        }
}

/* The sanitizers instrument only functions that ask for it (clang marks them from -fsanitize);
 * here every function with a body does. */
static void mark_for_sanitizer(kl_cg *cg, const char *attribute) {
    unsigned kind = LLVMGetEnumAttributeKindForName(attribute, strlen(attribute));
    for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f))
            LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                    LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

bool kl_cg_optimize(kl_cg *cg) {
    int lvl = cg->o->opt_level < 0 ? 0 : cg->o->opt_level > 3 ? 3 : cg->o->opt_level;
    if (cg->o->optimize_for == KL_FOR_SIZE && lvl >= 1)
        mark_for_size(cg);
    /* the sanitizer passes after the optimizations, where clang runs them, so they check the
       accesses that remain */
    static const char *const passes[] = {"", ",asan", ",tsan-module,function(tsan)"};
    static const char *const attributes[] = {NULL, "sanitize_address", "sanitize_thread"};
    char pipeline[64];
    if (cg->o->optimize_for == KL_FOR_SIZE && lvl >= 2) /* no unrolling, no vector remainders */
        snprintf(pipeline, sizeof pipeline, "default<Oz>%s", passes[cg->o->sanitize]);
    else
        snprintf(pipeline, sizeof pipeline, "default<O%d>%s", lvl, passes[cg->o->sanitize]);
    if (attributes[cg->o->sanitize]) mark_for_sanitizer(cg, attributes[cg->o->sanitize]);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(cg->mod, pipeline, cg->tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (err) {
        char *msg = LLVMGetErrorMessage(err);
        kl_error(cg->d, NULL, "codegen: LLVM passes failed: %s", msg);
        LLVMDisposeErrorMessage(msg);
        return false;
    }
    return true;
}

/* A fresh temporary path beside `path` (the file exists, empty, so the name is ours). */
char *kl_cg_temp_beside(kl_cg *cg, const char *path, const char *suffix) {
    char *tmp = kl_sprintf(cg->arena, "%s.tmp-XXXXXX%s", path, suffix);
    int fd = mkstemps(tmp, (int)strlen(suffix));
    if (fd < 0) {
        kl_error(cg->d, NULL, "cannot create a temporary file beside '%s': %s", path, strerror(errno));
        return NULL;
    }
    close(fd);
    return tmp;
}

bool kl_cg_emit_buffer(kl_cg *cg, LLVMCodeGenFileType kind, LLVMMemoryBufferRef *out) {
    char *err = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(cg->tm, cg->mod, kind, &err, out)) {
        kl_error(cg->d, NULL, "codegen: LLVM could not emit code: %s", err ? err : "");
        LLVMDisposeMessage(err);
        return false;
    }
    return true;
}

/* The module's machine code into `file`, its sections counted for --stats. */
bool kl_cg_write_code(kl_cg *cg, LLVMMemoryBufferRef code, const char *file) {
    if (cg->o->sizes)
        kl_cg_measure_object(code, cg->o->weights_section, cg->o->sizes);
    return kl_write_file_atomic(file, LLVMGetBufferStart(code), LLVMGetBufferSize(code), cg->d);
}

static bool emit_code(kl_cg *cg, const char *file) {
    LLVMMemoryBufferRef code = NULL;
    if (!kl_cg_emit_buffer(cg, LLVMObjectFile, &code))
        return false;
    bool ok = kl_cg_write_code(cg, code, file);
    LLVMDisposeMemoryBuffer(code);
    return ok;
}

/* The code object `code` (a temporary file) becomes the output: as it is, or linked into a
 * shared library. */
static bool place_output(kl_cg *cg, const char *code, const char *path) {
    if (cg->o->emit != KL_EMIT_SO) {
        if (rename(code, path) != 0)
            return kl_error(cg->d, NULL, "cannot write '%s': %s", path, strerror(errno));
        return true;
    }
    char *so = kl_cg_temp_beside(cg, path, ".so");
    if (!so)
        return false;
    bool ok = kl_link_shared(code, so, cg->d);
    if (ok && rename(so, path) != 0)
        ok = kl_error(cg->d, NULL, "cannot write '%s': %s", path, strerror(errno));
    if (!ok)
        unlink(so);
    return ok;
}

/* An object or shared library: the code (one module, or the parts joined), then the weights
 * appended, under a temporary name until complete: a failure leaves no partial output. */
static bool emit_object(kl_cg *cg, const char *path) {
    char *code = kl_cg_temp_beside(cg, path, ".o");
    if (!code)
        return false;
    bool ok = cg->parts ? kl_cg_parts_emit(cg, code) : emit_code(cg, code);
    if (ok && cg->o->sizes)
        kl_cg_blob_describe(cg, cg->o->sizes);
    ok = ok && kl_cg_blob_append(cg, code) && kl_cg_variants_join(cg, code) &&
         place_output(cg, code, path);
    unlink(code); /* gone already when it became the output */
    return ok;
}

static bool emit_text(kl_cg *cg, const char *path) {
    LLVMMemoryBufferRef text = NULL;
    if (!kl_cg_emit_buffer(cg, LLVMAssemblyFile, &text))
        return false;
    bool ok = kl_write_file_atomic(path, LLVMGetBufferStart(text), LLVMGetBufferSize(text), cg->d);
    LLVMDisposeMemoryBuffer(text);
    return ok;
}

bool kl_cg_emit_output(kl_cg *cg, const char *path) {
    switch (cg->o->emit) {
    case KL_EMIT_OBJ: case KL_EMIT_SO: return emit_object(cg, path);
    case KL_EMIT_ASM: return emit_text(cg, path);
    case KL_EMIT_LLVM_IR: {
        char *text = LLVMPrintModuleToString(cg->mod);
        bool ok = kl_write_file_atomic(path, text, strlen(text), cg->d);
        LLVMDisposeMessage(text);
        return ok;
    }
    case KL_EMIT_CUDA: case KL_EMIT_PTX: case KL_EMIT_CUBIN:
        break; /* the CUDA back end's outputs (codegen/cuda/cuda.c) */
    }
    return kl_error(cg->d, NULL, "codegen: unknown output kind %d", (int)cg->o->emit);
}

/* ---------------------------------------------------------------- entry point */

static bool build_module(kl_cg *cg) {
    kl_phase(cg->o->phases, "LLVM IR");
    if (!kl_cg_link_runtime(cg))
        return false;
    const kl_program *p = cg->p;
    kl_cg_kernel *kernels = kl_alloc_array(cg->arena, (size_t)p->kernels.n + 1, sizeof *kernels);
    bool ok = true;
    for (int k = 0; k < p->kernels.n; k++) {
        ok = (cg->parts ? kl_cg_parts_emit_kernel(cg, k, &kernels[k])
                        : kl_cg_emit_kernel(cg, p->kernels.items[k], &kernels[k])) &&
             ok;
        kl_phase_progress(cg->o->phases, k + 1, p->kernels.n);
    }
    if (!ok || (cg->parts && !kl_cg_parts_finish(cg)))
        return false;
    kl_cg_entries entries = {0};
    entries.predict = emit_predict(cg, kernels, ENTRY_SERIAL);
    entries.predict_parallel = entries.predict ? emit_predict(cg, kernels, ENTRY_PARALLEL) : NULL;
    if (!entries.predict_parallel)
        return false;
    if (cg->o->is_variant) { /* the baseline's entries and table lead here */
        if ((cg->o->profile && !emit_predict(cg, kernels, ENTRY_PROFILED)) || !kl_cg_blob_declare(cg))
            return false;
        kl_cg_internalize(cg);
        hide_variant_entries(cg);
        return true;
    }
    entries.run = emit_run(cg, entries.predict, "run", 0);
    if (p->dims || kl_program_data_dependent(p)) {
        LLVMValueRef sized = emit_predict(cg, kernels, ENTRY_SIZED);
        LLVMValueRef dynamic = sized ? emit_predict_dynamic(cg, sized) : NULL;
        if (!dynamic)
            return false;
        entries.run_dynamic = emit_run_dynamic(cg, dynamic);
    }
    entries.run_parallel = emit_run(cg, entries.predict_parallel, "run_parallel", 1);
    if (cg->o->profile) {
        LLVMValueRef profiled = emit_predict(cg, kernels, ENTRY_PROFILED);
        if (!profiled)
            return false;
        entries.run_profiled = emit_run(cg, profiled, "run_profiled", 2);
        entries.run_profiled_parallel = emit_run(cg, profiled, "run_profiled_parallel", 3);
    }
    if (!kl_cg_emit_model_table(cg, &entries) || !kl_cg_blob_declare(cg))
        return false;
    kl_cg_internalize(cg);
    return true;
}

bool kl_cg_open(kl_cg *cg) {
    if (!create_target_machine(cg))
        return false;
    create_module(cg);
    add_isa_level_note(cg);
    return true;
}

bool kl_cg_write(kl_cg *cg, const char *path) {
    if (!kl_cg_verify(cg))
        return false;
    if (cg->parts)
        return kl_cg_parts_write(cg, path);
    kl_phase(cg->o->phases, "LLVM optimization");
    if (!kl_cg_optimize(cg))
        return false;
    if (cg->o->sizes)
        cg->o->sizes->weights = kl_cg_weights_bytes(cg);
    kl_phase(cg->o->phases, "object emission");
    return kl_cg_emit_output(cg, path);
}

void kl_cg_close(kl_cg *cg) { dispose(cg); }

/* A string element is a `const char *` held in 8 bytes (kl_dtype_size): a target with other
 * pointers cannot take string tensors. */
static bool strings_fit_target(kl_cg *cg) {
    if (LLVMPointerSize(cg->td) == 8)
        return true;
    for (int i = 0; i < cg->p->buffers.n; i++) {
        const kl_buffer *b = cg->p->buffers.items[i];
        if (b->dtype == KL_STRING)
            return kl_error(cg->d, NULL, "string tensors ('%s') need a target with 64-bit "
                            "pointers; %s has %u-bit ones", b->name, cg->o->target->name,
                            8 * LLVMPointerSize(cg->td));
    }
    return true;
}

bool kl_codegen_llvm(const kl_program *p, const kl_graph *g, const kl_codegen_opts *o,
                     const char *out_path, kl_diag *d) {
    if (!o || !o->target || !o->name || !*o->name)
        return kl_error(d, NULL, "codegen: no target or model name given");
    kl_cg cg = {.arena = p->arena, .d = d, .p = p, .g = g, .o = o};
    if (o->n_variants) kl_phase(o->phases, "LLVM: ISA variants");
    bool ok = kl_cg_variants_compile(&cg, out_path) && kl_cg_open(&cg) &&
              strings_fit_target(&cg);
    if (ok && (o->emit == KL_EMIT_OBJ || o->emit == KL_EMIT_SO)) { /* ELF */
        kl_cg_blob_enable(&cg); /* the weights outside LLVM */
        ok = kl_cg_parts_open(&cg); /* the kernels in parts, compiled in parallel */
    }
    ok = ok && build_module(&cg) && kl_cg_write(&cg, out_path);
    if (ok) kl_cg_variants_add_sizes(&cg, o->sizes);
    kl_cg_parts_close(&cg);
    kl_cg_close(&cg);
    kl_cg_variants_close(&cg);
    return ok;
}
