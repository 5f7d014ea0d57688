/*
 * codegen/llvm/llvm_internal.h — what the files of the LLVM back end share.
 *
 *   module.c       target machine, module set-up, predict/run entry points, passes, emission
 *   kernel.c       one kl_kernel -> one internal LLVM function
 *   model_table.c  the exported NAME_model constant (kiln_model of runtime-min/kiln.h)
 *   runtime.c      links the embedded runtime-min bitcode and looks up its functions
 *   peak.c         a small separate module: the target's floating-point peak, for `kiln bench`
 *
 * One kl_cg lives for one kl_codegen_llvm call; it owns the LLVM context (disposed at the end)
 * and borrows everything else.
 */
#ifndef KIL_LLVM_INTERNAL_H
#define KIL_LLVM_INTERNAL_H

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "kl.h"

typedef struct kl_cg {
    kl_arena *arena;
    kl_diag *d;
    const kl_program *p;
    const kl_graph *g;
    const kl_codegen_opts *o;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTargetMachineRef tm;
    LLVMTargetDataRef td;
    LLVMTypeRef i1, i8, i16, i32, i64, f32, f64, ptr, void_t;
} kl_cg;

/* kernel.c — a kernel as an internal function `void k(ptr buf0, ptr buf1, ...)`, one parameter
 * per distinct storage it touches (root buffers: views share their root's), in `bufs` order. */
typedef struct kl_cg_kernel {
    LLVMValueRef fn;
    LLVMTypeRef fn_type;
    int n_bufs;
    kl_buffer **bufs;
} kl_cg_kernel;
bool kl_cg_emit_kernel(kl_cg *cg, const kl_kernel *k, kl_cg_kernel *out);

/* module.c — the entry points a model exports (run_profiled NULL unless profiling). */
typedef struct kl_cg_entries {
    LLVMValueRef predict, predict_parallel, run, run_parallel, run_profiled;
} kl_cg_entries;

/* model_table.c — define `const kiln_model NAME_model` pointing at the entries. */
bool kl_cg_emit_model_table(kl_cg *cg, const kl_cg_entries *entries);
/* A private constant NUL-terminated string (NULL -> ""). */
LLVMValueRef kl_cg_const_string(kl_cg *cg, const char *s, const char *label);

/* runtime.c — link the target's runtime-min bitcode into cg->mod (call once, first). */
bool kl_cg_link_runtime(kl_cg *cg);
/* A runtime-min function (kiln_rt_*) by name; NULL with a diagnostic when it is missing. */
LLVMValueRef kl_cg_runtime_fn(kl_cg *cg, const char *name);

/* module.c — the life of a module, in the order a back end calls them: a target machine for
 * cg->o->target (at cg->o->opt_level), an empty module with its data layout and the common
 * types, verification, the default<On> pipeline, emission as cg->o->emit says (through a
 * temporary file, linked for KL_EMIT_SO), and disposal of whatever was created. cg->p and cg->g
 * are not needed by any of them. */
bool kl_cg_create_target_machine(kl_cg *cg);
void kl_cg_create_module(kl_cg *cg);
bool kl_cg_verify(kl_cg *cg);
bool kl_cg_optimize(kl_cg *cg);
bool kl_cg_emit_output(kl_cg *cg, const char *path);
void kl_cg_dispose(kl_cg *cg);

/* module.c helpers used by the other files */
LLVMValueRef kl_cg_intrinsic(kl_cg *cg, const char *name, LLVMTypeRef *types, int n_types);
void kl_cg_add_fn_attr(kl_cg *cg, LLVMValueRef fn, const char *attr);
void kl_cg_add_param_attr(kl_cg *cg, LLVMValueRef fn, int param, const char *attr,
                          uint64_t value);

#endif
