/*
 * codegen/llvm/kernel_gen.h — what the two halves of kernel emission share.
 *
 *   kernel.c       the function, its parameters, the loop nest and the register block
 *   kernel_expr.c  expressions: arithmetic, casts, loads and stores, scalar or SIMD
 *
 * One kgen lives for the emission of one kernel. Values are LLVM scalars or, inside a block
 * point whose VECTOR loop is set (vloop >= 0), vectors of `lanes` lanes: an expression that
 * does not depend on the VECTOR loop stays scalar (one load, broadcast where it meets a vector),
 * which is what makes a register block cheap.
 */
#ifndef KIL_KERNEL_GEN_H
#define KIL_KERNEL_GEN_H

#include "llvm_internal.h"

typedef struct kgen {
    kl_cg *cg;
    const kl_kernel *k;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    int n_bufs;
    kl_buffer **bufs;
    LLVMValueRef *buf_ptr;
    /* Scalar i64 value of each loop variable in scope; for the VECTOR loop, the first lane's. */
    LLVMValueRef iv[KL_MAX_LOOPS];
    /* i64 run-time extent of each loop with kl_kernel.extent_expr (a bounded dim), else NULL;
     * computed in the entry block */
    LLVMValueRef run_extent[KL_MAX_LOOPS];
    int vloop;          /* the VECTOR loop of the current block point, or -1 (scalar code) */
    int lanes;          /* lanes of every vector value */
    int active;         /* lanes of the current vector chunk inside the loop (<= lanes) */
    LLVMValueRef acc;   /* alloca of the current point's accumulator, or NULL */
    int guarded;        /* > 0 while emitting an arm of a select */
    LLVMValueRef lane_guard; /* while emitting a select arm under a per-lane condition: the
                                lanes that take it (vector of i1), else NULL */
    int n_memo, cap_memo;
    const kl_expr **memo_key;
    LLVMValueRef *memo_val;
} kgen;

/* kernel_expr.c */
LLVMValueRef kl_kg_emit(kgen *kg, const kl_expr *e);       /* NULL + diagnostic on error */
LLVMValueRef kl_kg_fail(kgen *kg, const char *msg, const char *a, const char *b);
LLVMTypeRef kl_kg_reg_type(kl_cg *cg, kl_dtype t);         /* scalar register type */
LLVMValueRef kl_kg_reduce_identity(kgen *kg, kl_reduce r, kl_dtype t);
/* acc (op) v for a reduction; v may be a scalar when acc is a vector. */
LLVMValueRef kl_kg_combine(kgen *kg, kl_reduce r, kl_dtype t, LLVMValueRef acc, LLVMValueRef v);
/* acc + x*y, fused where the target allows (llvm.fmuladd). */
LLVMValueRef kl_kg_muladd(kgen *kg, LLVMValueRef x, LLVMValueRef y, LLVMValueRef acc);
LLVMValueRef kl_kg_round_half(kgen *kg, kl_dtype t, LLVMValueRef v);
LLVMValueRef kl_kg_fit_small(kgen *kg, kl_dtype t, LLVMValueRef v); /* float8/4, int4/2 */
/* The value widened to a vector of kg->lanes lanes when the point is SIMD and it is scalar. */
LLVMValueRef kl_kg_widen(kgen *kg, LLVMValueRef v);
bool kl_kg_store(kgen *kg, LLVMValueRef v);                /* k->out[k->out_idx] = v */
/* &buf[idx...] at the current (scalar) loop variables. */
LLVMValueRef kl_kg_element_address(kgen *kg, kl_buffer *buf, kl_expr *const *idx);
void kl_kg_memo_reset(kgen *kg, int mark);
/* The kernel's prefetch hint, if any, at the current loop variables (inside the reduction). */
bool kl_kg_prefetch(kgen *kg);

#endif
