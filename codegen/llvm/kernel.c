/*
 * codegen/llvm/kernel.c — one kl_kernel as one internal LLVM function.
 *
 * The function takes one pointer per distinct storage the kernel touches — views share their
 * root's parameter (predict passes the argument, the constant global or workspace + offset) —
 * and, last, the half-open range [task_begin, task_end) of its task loop (the whole extent when
 * predict runs it alone; a slice per task in the parallel entry). Loads and stores index with
 * the shape of the buffer they name (the view's). A pointer is `noalias` unless the kernel both
 * reads and writes that buffer, or two of its workspace buffers overlap (in-place plans).
 *
 * Loops are emitted in do-while form with i64 phis (every extent is known and nonzero once the
 * empty cases are handled at compile time); loops of extent 1 emit no loop at all.
 *
 * The register block (kl_kernel.n_block, set by the tile pass): the innermost parallel loops
 * are fully unrolled — an UNROLL loop into one copy per iteration, the VECTOR loop into
 * ceil(extent / lanes) vectors — and jammed into the reduction:
 *
 *     for outer parallel loops:
 *         acc[p] = init(p)                      for every point p of the block
 *         for reduction loops:
 *             acc[p] = acc[p] + value(p)        for every point p (a sum of products: fmuladd)
 *         out[p] = result(p)
 *
 * so a load that does not depend on a block loop is shared by all points (LLVM's CSE merges the
 * copies) and each loaded vector feeds several FMAs. Accumulators live in allocas that SROA
 * promotes to registers. A kernel without a block is the same with one scalar point.
 */
#include <string.h>

#include "kernel_gen.h"

/* ---------------------------------------------------------------- buffers */

static void collect_buffers(kl_arena *a, kl_ptrvec *v, const kl_expr *e) {
    if (!e)
        return;
    if (e->kind == KL_E_LOAD) {
        kl_buffer *root = kl_buffer_root(e->buf);
        bool seen = false;
        for (int i = 0; i < v->n && !seen; i++)
            seen = v->items[i] == root;
        if (!seen)
            kl_ptrvec_push(a, v, root);
        for (int d = 0; d < e->buf->shape.rank; d++)
            collect_buffers(a, v, e->idx[d]);
    }
    if (e->kind == KL_E_STRING && e->buf) { /* the string arena, or a regex's DFA table */
        bool seen = false;
        for (int i = 0; i < v->n && !seen; i++)
            seen = v->items[i] == kl_buffer_root(e->buf);
        if (!seen)
            kl_ptrvec_push(a, v, kl_buffer_root(e->buf));
    }
    collect_buffers(a, v, e->a);
    collect_buffers(a, v, e->b);
    collect_buffers(a, v, e->c);
}

static bool overlaps_other_workspace(const kl_cg_kernel *ck, int i) {
    const kl_buffer *x = ck->bufs[i];
    if (x->kind != KL_BUF_WORKSPACE)
        return false;
    for (int j = 0; j < ck->n_bufs; j++) {
        const kl_buffer *y = ck->bufs[j];
        if (j == i || y->kind != KL_BUF_WORKSPACE)
            continue;
        if (x->offset < y->offset + kl_buffer_bytes(y) && y->offset < x->offset + kl_buffer_bytes(x))
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------- loops */

typedef struct loop {
    LLVMBasicBlockRef body;
    LLVMValueRef phi;   /* NULL for a loop of one iteration (no loop emitted) */
    LLVMValueRef end;   /* i64 bound */
} loop;

/* A loop from `begin` to `end` (i64 values; begin < end holds on entry). A constant one-trip
 * range emits no loop. */
static void loop_range_begin(kgen *kg, int l, LLVMValueRef begin, LLVMValueRef end, loop *L) {
    kl_cg *cg = kg->cg;
    L->phi = NULL;
    L->end = end;
    if (LLVMIsConstant(begin) && LLVMIsConstant(end) &&
        LLVMConstIntGetSExtValue(end) - LLVMConstIntGetSExtValue(begin) == 1) {
        kg->iv[l] = begin;
        return;
    }
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(kg->b);
    L->body = LLVMAppendBasicBlockInContext(cg->ctx, kg->fn, kl_sprintf(cg->arena, "loop%d", l));
    LLVMBuildBr(kg->b, L->body);
    LLVMPositionBuilderAtEnd(kg->b, L->body);
    L->phi = LLVMBuildPhi(kg->b, cg->i64, kl_sprintf(cg->arena, "i%d", l));
    LLVMAddIncoming(L->phi, &begin, &pre, 1);
    kg->iv[l] = L->phi;
}

/* (a run-time extent is known to be positive here: see skip_if_empty) */
static void loop_begin(kgen *kg, int l, loop *L) {
    LLVMValueRef zero = LLVMConstInt(kg->cg->i64, 0, 0);
    LLVMValueRef end = kg->run_extent[l]
                           ? kg->run_extent[l]
                           : LLVMConstInt(kg->cg->i64, (unsigned long long)kg->k->extent[l], 0);
    loop_range_begin(kg, l, zero, end, L);
}

/* Loops [first, last) with a run-time extent: when one of them is empty, jump to a block
 * that follows (returned; the caller ends the nest there), else continue in a fresh block.
 * NULL when every extent there is fixed. */
static LLVMBasicBlockRef skip_if_empty(kgen *kg, int first, int last) {
    kl_cg *cg = kg->cg;
    LLVMValueRef empty = NULL;
    for (int l = first; l < last; l++) {
        if (!kg->run_extent[l]) continue;
        LLVMValueRef e = LLVMBuildICmp(kg->b, LLVMIntSLE, kg->run_extent[l],
                                       LLVMConstInt(cg->i64, 0, 0), "");
        empty = empty ? LLVMBuildOr(kg->b, empty, e, "") : e;
    }
    if (!empty) return NULL;
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(cg->ctx, kg->fn, "nonempty");
    LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(cg->ctx, kg->fn, "empty");
    LLVMBuildCondBr(kg->b, empty, skip, run);
    LLVMPositionBuilderAtEnd(kg->b, run);
    return skip;
}

static void join_skip(kgen *kg, LLVMBasicBlockRef skip) {
    if (!skip) return;
    LLVMBuildBr(kg->b, skip);
    LLVMPositionBuilderAtEnd(kg->b, skip);
}

static void loop_end(kgen *kg, int l, loop *L) {
    kl_cg *cg = kg->cg;
    if (L->phi) {
        LLVMValueRef next = LLVMBuildNUWAdd(kg->b, L->phi, LLVMConstInt(cg->i64, 1, 0), "");
        LLVMValueRef more = LLVMBuildICmp(kg->b, LLVMIntULT, next, L->end, "");
        LLVMBasicBlockRef latch = LLVMGetInsertBlock(kg->b);
        LLVMBasicBlockRef exit =
            LLVMAppendBasicBlockInContext(cg->ctx, kg->fn, kl_sprintf(cg->arena, "done%d", l));
        LLVMBuildCondBr(kg->b, more, L->body, exit);
        LLVMAddIncoming(L->phi, &next, &latch, 1);
        LLVMPositionBuilderAtEnd(kg->b, exit);
    }
    kg->iv[l] = NULL;
}

/* ---------------------------------------------------------------- block points */

/* The register block: loops [first, n_par) fully unrolled; `points` combinations of their
 * iterations (a VECTOR loop counts one per vector chunk). */
typedef struct block {
    int first;
    int vloop;          /* -1: no VECTOR loop */
    int chunks;         /* vector chunks of the VECTOR loop */
    int points;
    LLVMValueRef *acc;  /* one alloca per point (reductions) */
} block;

static bool is_float_type(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16;
}

static void block_init(kgen *kg, block *B) {
    const kl_kernel *k = kg->k;
    B->first = k->n_par - k->n_block;
    B->vloop = -1;
    B->chunks = 1;
    B->points = 1;
    for (int l = B->first; l < k->n_par; l++) {
        if (k->kind[l] == KL_LOOP_VECTOR) {
            B->vloop = l;
            B->chunks = (int)((k->extent[l] + k->lanes - 1) / k->lanes);
            B->points *= B->chunks;
        } else {
            B->points *= (int)k->extent[l];
        }
    }
}

/* Make point p current: constant loop variables for the block loops, the chunk's lanes. */
static void block_point(kgen *kg, const block *B, int p) {
    const kl_kernel *k = kg->k;
    kg->vloop = -1;
    kg->active = 1;
    int64_t rest = p;
    for (int l = k->n_par - 1; l >= B->first; l--) {
        int64_t n = l == B->vloop ? B->chunks : k->extent[l];
        int64_t i = rest % n;
        rest /= n;
        if (l == B->vloop) {
            kg->vloop = l;
            kg->iv[l] = LLVMConstInt(kg->cg->i64, (unsigned long long)(i * k->lanes), 0);
            int64_t left = k->extent[l] - i * k->lanes;
            kg->active = (int)(left < k->lanes ? left : k->lanes);
        } else {
            kg->iv[l] = LLVMConstInt(kg->cg->i64, (unsigned long long)i, 0);
        }
    }
    if (B->acc)
        kg->acc = B->acc[p];
}

static void block_leave(kgen *kg, const block *B) {
    for (int l = B->first; l < kg->k->n_par; l++)
        kg->iv[l] = NULL;
    kg->vloop = -1;
    kg->active = 1;
}

static LLVMTypeRef acc_type(kgen *kg, const block *B) {
    LLVMTypeRef t = kl_kg_reg_type(kg->cg, kg->k->acc_dtype);
    return B->vloop >= 0 ? LLVMVectorType(t, (unsigned)kg->lanes) : t;
}

/* acc[p] = init(p) (or the reduction's identity) for every point. */
static bool block_init_accumulators(kgen *kg, block *B) {
    const kl_kernel *k = kg->k;
    for (int p = 0; p < B->points; p++) {
        block_point(kg, B, p);
        int mark = kg->n_memo;
        LLVMValueRef init = k->init ? kl_kg_emit(kg, k->init)
                                    : kl_kg_reduce_identity(kg, k->reduce, k->acc_dtype);
        if (!init)
            return false;
        LLVMBuildStore(kg->b, kl_kg_widen(kg, init), B->acc[p]);
        kl_kg_memo_reset(kg, mark);
    }
    return true;
}

/* One step of the reduction for point p: acc = acc (op) value. */
static bool block_update(kgen *kg, const block *B, int p) {
    const kl_kernel *k = kg->k;
    block_point(kg, B, p);
    int mark = kg->n_memo;
    LLVMValueRef acc = LLVMBuildLoad2(kg->b, acc_type(kg, B), kg->acc, "");
    LLVMValueRef r;
    const kl_expr *v = k->value;
    /* In a register block, a sum of products is one fmuladd per point; a kernel without one
     * keeps mul and add with reassociation allowed, which LLVM's loop vectorizer turns into a
     * vector reduction (contraction lets it fuse them where the target has FMA). */
    bool fused = k->n_block > 0 && k->reduce == KL_RED_SUM && is_float_type(k->acc_dtype) &&
                 k->acc_dtype != KL_F16 && v->kind == KL_E_BINARY && v->op == KL_MUL &&
                 v->dtype == k->acc_dtype;
    if (v->dtype != k->acc_dtype) {
        kl_kg_fail(kg, "reduced value's type differs from the accumulator's", NULL, NULL);
        return false;
    }
    if (fused) {
        LLVMValueRef x = kl_kg_emit(kg, v->a), y = x ? kl_kg_emit(kg, v->b) : NULL;
        if (!y)
            return false;
        r = kl_kg_muladd(kg, x, y, acc);
    } else {
        LLVMValueRef x = kl_kg_emit(kg, v);
        if (!x)
            return false;
        r = kl_kg_combine(kg, k->reduce, k->acc_dtype, acc, x);
        /* Sums and products may be reassociated so that a scalar reduction loop vectorizes
         * (the result differs from the sequential order only by rounding). */
        if (r && B->vloop < 0 && kg->cg->o->opt_level >= 2 && is_float_type(k->acc_dtype) &&
            LLVMIsAInstruction(r) && (k->reduce == KL_RED_SUM || k->reduce == KL_RED_PROD)) {
            LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
            if (LLVMIsAInstruction(x) && LLVMGetInstructionOpcode(x) == LLVMFMul)
                LLVMSetFastMathFlags(x, LLVMFastMathAllowContract);
        }
        if (r && k->acc_dtype == KL_F16)
            r = kl_kg_round_half(kg, k->acc_dtype, r);
        if (r)
            r = kl_kg_fit_small(kg, k->acc_dtype, r);
    }
    if (!r)
        return false;
    LLVMBuildStore(kg->b, r, kg->acc);
    kl_kg_memo_reset(kg, mark); /* values of the reduction body do not dominate what follows */
    return true;
}

/* The reduction loops around every point's update. */
static bool block_reduce(kgen *kg, const block *B) {
    const kl_kernel *k = kg->k;
    for (int l = k->n_par; l < k->n_loops; l++)
        if (k->extent[l] <= 0)
            return true; /* empty reduction: acc stays at init */
    loop loops[KL_MAX_LOOPS];
    LLVMBasicBlockRef skip = skip_if_empty(kg, k->n_par, k->n_loops);
    for (int l = k->n_par; l < k->n_loops; l++)
        loop_begin(kg, l, &loops[l]);
    if (!kl_kg_prefetch(kg))
        return false;
    for (int p = 0; p < B->points; p++)
        if (!block_update(kg, B, p))
            return false;
    block_leave(kg, B);
    for (int l = k->n_loops - 1; l >= k->n_par; l--)
        loop_end(kg, l, &loops[l]);
    join_skip(kg, skip);
    return true;
}

/* out[p] = result(p) for every point. */
static bool block_store(kgen *kg, const block *B) {
    const kl_kernel *k = kg->k;
    for (int p = 0; p < B->points; p++) {
        block_point(kg, B, p);
        int mark = kg->n_memo;
        LLVMValueRef v;
        if (k->reduce == KL_RED_NONE)
            v = kl_kg_emit(kg, k->result ? k->result : k->value);
        else
            v = k->result ? kl_kg_emit(kg, k->result)
                          : LLVMBuildLoad2(kg->b, acc_type(kg, B), kg->acc, "");
        if (!v)
            return false;
        LLVMTypeRef want = kl_kg_reg_type(kg->cg, k->out->dtype);
        LLVMTypeRef got = LLVMTypeOf(v);
        if (LLVMGetTypeKind(got) == LLVMVectorTypeKind)
            got = LLVMGetElementType(got);
        if (got != want) {
            kl_kg_fail(kg, "stored value does not match the type of buffer ", k->out->name, NULL);
            return false;
        }
        if (!kl_kg_store(kg, v))
            return false;
        kl_kg_memo_reset(kg, mark);
    }
    block_leave(kg, B);
    return true;
}

/* ---------------------------------------------------------------- micro-kernel blocks */

/* The block loops at their first iteration, scalar: the block's origin. */
static void block_origin(kgen *kg, const block *B) {
    for (int l = B->first; l < kg->k->n_par; l++)
        kg->iv[l] = LLVMConstInt(kg->cg->i64, 0, 0);
    kg->vloop = -1;
    kg->active = 1;
}

/* out[p] = init(p) (or 0) for every point: C before the micro-kernel accumulates into it. */
static bool micro_init(kgen *kg, const block *B) {
    const kl_kernel *k = kg->k;
    for (int p = 0; p < B->points; p++) {
        block_point(kg, B, p);
        int mark = kg->n_memo;
        LLVMValueRef init = k->init ? kl_kg_emit(kg, k->init)
                                    : kl_kg_reduce_identity(kg, k->reduce, k->acc_dtype);
        if (!init || !kl_kg_store(kg, init))
            return false;
        kl_kg_memo_reset(kg, mark);
    }
    return true;
}

/* One micro-kernel call per iteration of the reduction loops outside its k. */
static bool micro_calls(kgen *kg, const block *B, LLVMValueRef gemm, LLVMValueRef c) {
    const kl_kernel *k = kg->k;
    const kl_micro *mk = k->micro;
    int first_merged = k->n_loops - mk->merged;
    loop loops[KL_MAX_LOOPS];
    for (int l = k->n_par; l < first_merged; l++)
        loop_begin(kg, l, &loops[l]);
    for (int l = first_merged; l < k->n_loops; l++)
        kg->iv[l] = LLVMConstInt(kg->cg->i64, 0, 0);
    block_origin(kg, B);
    LLVMValueRef a = kl_kg_element_address(kg, mk->a->buf, mk->a->idx);
    LLVMValueRef b = a ? kl_kg_element_address(kg, mk->b->buf, mk->b->idx) : NULL;
    if (!b)
        return false;
    LLVMValueRef args[3] = {a, b, c};
    LLVMBuildCall2(kg->b, LLVMGlobalGetValueType(gemm), gemm, args, 3, "");
    kg->n_memo = 0;
    for (int l = first_merged; l < k->n_loops; l++)
        kg->iv[l] = NULL;
    for (int l = first_merged - 1; l >= k->n_par; l--)
        loop_end(kg, l, &loops[l]);
    return true;
}

/* The block through the micro-kernel: C = init, C += A * B, out = result(C). */
static bool emit_micro_block(kgen *kg, block *B) {
    kl_cg *cg = kg->cg;
    const kl_kernel *k = kg->k;
    const kl_micro *mk = k->micro;
    kl_xsmm_gemm g = {mk->m, mk->n, mk->k, mk->lda, mk->ldb, mk->ldc, 1,
                      cg->o->target->vector_bits >= 512 ? KL_XSMM_AVX512 : KL_XSMM_AVX2};
    LLVMValueRef gemm = kl_cg_xsmm_function(cg, &g);
    if (!gemm)
        return false;
    block_origin(kg, B);
    int mark = kg->n_memo;
    LLVMValueRef c = kl_kg_element_address(kg, k->out, k->out_idx);
    kl_kg_memo_reset(kg, mark); /* values at the origin are not the points' */
    if (!c || !micro_init(kg, B) || !micro_calls(kg, B, gemm, c))
        return false;
    if (!k->result)
        return true;
    kl_expr *sum = kl_e_load(cg->arena, k->out, k->out_idx); /* the accumulator, from C */
    for (int p = 0; p < B->points; p++) {
        block_point(kg, B, p);
        int mark = kg->n_memo;
        LLVMValueRef acc = kl_kg_emit(kg, sum);
        if (!acc)
            return false;
        LLVMBuildStore(kg->b, kl_kg_widen(kg, acc), B->acc[p]);
        kl_kg_memo_reset(kg, mark);
    }
    return block_store(kg, B);
}

/* Everything inside the outer parallel loops. */
static bool emit_block(kgen *kg, block *B) {
    if (kg->k->micro)
        return emit_micro_block(kg, B);
    if (kg->k->reduce != KL_RED_NONE) {
        if (!block_init_accumulators(kg, B) || !block_reduce(kg, B))
            return false;
    }
    return block_store(kg, B);
}

/* ---------------------------------------------------------------- checks */

static bool check_schedule(kgen *kg) {
    const kl_kernel *k = kg->k;
    if (k->n_block < 0 || k->n_block > k->n_par)
        return kl_kg_fail(kg, "bad register block", NULL, NULL) != NULL;
    int vectors = 0;
    int64_t points = 1;
    for (int l = 0; l < k->n_loops; l++) {
        bool in_block = l >= k->n_par - k->n_block && l < k->n_par;
        if (!in_block && k->kind[l] != KL_LOOP_SERIAL)
            return kl_kg_fail(kg, "an unrolled or SIMD loop outside the register block", NULL,
                              NULL) != NULL;
        if (in_block && k->kind[l] == KL_LOOP_SERIAL)
            return kl_kg_fail(kg, "a serial loop inside the register block", NULL, NULL) != NULL;
        if (!in_block)
            continue;
        if (k->extent_expr[l])
            return kl_kg_fail(kg, "a run-time extent inside the register block", NULL, NULL) != NULL;
        if (k->extent[l] <= 0)
            return kl_kg_fail(kg, "an empty loop inside the register block", NULL, NULL) != NULL;
        if (k->kind[l] == KL_LOOP_VECTOR) {
            vectors++;
            if (k->lanes < 1 || k->lanes > 64)
                return kl_kg_fail(kg, "bad lane count", NULL, NULL) != NULL;
            points *= (k->extent[l] + k->lanes - 1) / k->lanes;
        } else {
            points *= k->extent[l];
        }
    }
    if (vectors > 1 || points > 256)
        return kl_kg_fail(kg, "register block too large", NULL, NULL) != NULL;
    for (int l = k->n_par; k->micro && l < k->n_loops; l++)
        if (k->extent_expr[l])
            return kl_kg_fail(kg, "a micro-kernel with a run-time reduction extent", NULL, NULL) != NULL;
    if (k->task_loop >= 0 && k->extent_expr[k->task_loop])
        return kl_kg_fail(kg, "a task loop with a run-time extent", NULL, NULL) != NULL;
    if (k->task_loop >= k->n_par - k->n_block)
        return kl_kg_fail(kg, "the task loop must be an outer parallel loop", NULL, NULL) != NULL;
    return true;
}

static bool check_kernel(kgen *kg) {
    const kl_kernel *k = kg->k;
    if (!k->out || (!k->value && !k->result))
        return kl_kg_fail(kg, "kernel without output or value", NULL, NULL) != NULL;
    if (k->n_loops < 0 || k->n_loops > KL_MAX_LOOPS || k->n_par < 0 || k->n_par > k->n_loops)
        return kl_kg_fail(kg, "bad loop counts", NULL, NULL) != NULL;
    kl_buffer_kind out_kind = kl_buffer_root(k->out)->kind;
    if (out_kind == KL_BUF_INPUT || out_kind == KL_BUF_CONST)
        return kl_kg_fail(kg, "writes to an input or constant buffer: ", k->out->name, NULL) != NULL;
    if (!kl_kg_reg_type(kg->cg, k->out->dtype))
        return kl_kg_fail(kg, "unsupported output type ", kl_dtype_name(k->out->dtype), NULL) != NULL;
    if (k->reduce != KL_RED_NONE) {
        if (k->reduce > KL_RED_MIN || !k->value || !kl_kg_reg_type(kg->cg, k->acc_dtype))
            return kl_kg_fail(kg, "bad reduction", NULL, NULL) != NULL;
    }
    return check_schedule(kg);
}

/* ---------------------------------------------------------------- the function */

static void declare_function(kgen *kg, kl_cg_kernel *out) {
    kl_cg *cg = kg->cg;
    const kl_kernel *k = kg->k;
    kl_ptrvec bufs = {0};
    collect_buffers(cg->arena, &bufs, k->init);
    collect_buffers(cg->arena, &bufs, k->value);
    collect_buffers(cg->arena, &bufs, k->result);
    for (int l = 0; l < k->n_loops; l++)
        collect_buffers(cg->arena, &bufs, k->extent_expr[l]);
    for (int d = 0; d < k->out->shape.rank; d++)
        collect_buffers(cg->arena, &bufs, k->out_idx[d]);
    kl_buffer *out_root = kl_buffer_root(k->out);
    bool out_seen = false;
    for (int i = 0; i < bufs.n; i++)
        out_seen = out_seen || bufs.items[i] == out_root;
    if (!out_seen)
        kl_ptrvec_push(cg->arena, &bufs, out_root);

    out->n_bufs = bufs.n;
    out->bufs = (kl_buffer **)bufs.items;
    LLVMTypeRef *params = kl_alloc_array(cg->arena, (size_t)bufs.n + 2, sizeof *params);
    for (int i = 0; i < bufs.n; i++)
        params[i] = cg->ptr;
    params[bufs.n] = cg->i64;     /* task_begin */
    params[bufs.n + 1] = cg->i64; /* task_end */
    out->fn_type = LLVMFunctionType(cg->void_t, params, (unsigned)bufs.n + 2, 0);
    out->fn = LLVMAddFunction(cg->mod, k->name ? k->name : "kernel", out->fn_type);
    LLVMSetLinkage(out->fn, LLVMInternalLinkage);
    kl_cg_add_fn_attr(cg, out->fn, "nounwind");
    /* one function per kernel in the object too: profilers (perf) then name the kernel, and
     * a call per kernel costs nothing next to its loops */
    kl_cg_add_fn_attr(cg, out->fn, "noinline");

    kg->fn = out->fn;
    kg->n_bufs = bufs.n;
    kg->bufs = out->bufs;
    kg->buf_ptr = kl_alloc_array(cg->arena, (size_t)bufs.n + 1, sizeof *kg->buf_ptr);
    for (int i = 0; i < bufs.n; i++) {
        kl_buffer *buf = out->bufs[i];
        kg->buf_ptr[i] = LLVMGetParam(out->fn, (unsigned)i);
        LLVMSetValueName2(kg->buf_ptr[i], buf->name ? buf->name : "buf",
                          buf->name ? strlen(buf->name) : 3);
        bool written = buf == out_root, read = kl_kernel_reads(k, buf);
        /* the string arena: runtime-min writes it, and the strings it builds point into it */
        bool arena = buf == cg->p->strings;
        written = written || arena;
        if (!(written && read) && !overlaps_other_workspace(out, i))
            kl_cg_add_param_attr(cg, out->fn, i, "noalias", 0);
        if (!arena)
            kl_cg_add_param_attr(cg, out->fn, i, "nocapture", 0);
        if (!written)
            kl_cg_add_param_attr(cg, out->fn, i, "readonly", 0);
        if (buf->kind == KL_BUF_CONST || (buf->kind == KL_BUF_WORKSPACE && buf->offset % 64 == 0))
            kl_cg_add_param_attr(cg, out->fn, i, "align", 64);
    }
}

/* The outer parallel loops (the task loop over the function's range), the block inside. */
static bool emit_body(kgen *kg, block *B) {
    const kl_kernel *k = kg->k;
    loop loops[KL_MAX_LOOPS];
    for (int l = 0; l < B->first; l++) {
        if (l == k->task_loop)
            loop_range_begin(kg, l, LLVMGetParam(kg->fn, (unsigned)kg->n_bufs),
                             LLVMGetParam(kg->fn, (unsigned)kg->n_bufs + 1), &loops[l]);
        else
            loop_begin(kg, l, &loops[l]);
    }
    if (!emit_block(kg, B))
        return false;
    kg->n_memo = 0;
    for (int l = B->first - 1; l >= 0; l--)
        loop_end(kg, l, &loops[l]);
    return true;
}

bool kl_cg_emit_kernel(kl_cg *cg, const kl_kernel *k, kl_cg_kernel *out) {
    kgen kg = {.cg = cg, .k = k, .b = cg->b, .vloop = -1, .lanes = k->lanes > 0 ? k->lanes : 1,
               .active = 1};
    memset(out, 0, sizeof *out);
    if (!check_kernel(&kg))
        return false;
    declare_function(&kg, out);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, out->fn, "entry");
    LLVMPositionBuilderAtEnd(cg->b, entry);
    block B;
    block_init(&kg, &B);
    B.acc = NULL;
    if (k->reduce != KL_RED_NONE) {
        B.acc = kl_alloc_array(cg->arena, (size_t)B.points, sizeof *B.acc);
        for (int p = 0; p < B.points; p++)
            B.acc[p] = LLVMBuildAlloca(cg->b, acc_type(&kg, &B), "acc");
    }
    bool empty = false;
    for (int l = 0; l < k->n_par; l++)
        empty = empty || k->extent[l] <= 0;
    for (int l = 0; l < k->n_loops && !empty; l++) /* in the entry block: dominates all */
        if (k->extent_expr[l] && !(kg.run_extent[l] = kl_kg_emit(&kg, k->extent_expr[l])))
            return false;
    kg.n_memo = 0;
    LLVMBasicBlockRef skip = empty ? NULL : skip_if_empty(&kg, 0, k->n_par);
    if (k->task_loop >= 0) {
        /* an empty task range (a thread with nothing to do) runs nothing */
        LLVMValueRef lo = LLVMGetParam(out->fn, (unsigned)out->n_bufs);
        LLVMValueRef hi = LLVMGetParam(out->fn, (unsigned)out->n_bufs + 1);
        LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(cg->ctx, out->fn, "work");
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, out->fn, "nothing");
        LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, lo, hi, ""), work, done);
        LLVMPositionBuilderAtEnd(cg->b, done);
        LLVMBuildRetVoid(cg->b);
        LLVMPositionBuilderAtEnd(cg->b, work);
    }
    if (!empty && !emit_body(&kg, &B))
        return false;
    join_skip(&kg, skip);
    LLVMBuildRetVoid(cg->b);
    return true;
}
