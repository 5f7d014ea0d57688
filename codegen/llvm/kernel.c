/*
 * codegen/llvm/kernel.c — one kl_kernel as one internal LLVM function.
 *
 * The function takes one pointer per distinct storage the kernel touches — views share their
 * root's parameter (predict passes the argument, the constant global or workspace + offset).
 * Loads and stores index with the shape of the buffer they name (the view's). A pointer is `noalias` unless the kernel
 * both reads and writes that buffer, or two of its workspace buffers overlap (in-place plans).
 *
 * Loops are emitted in do-while form with i64 phis (every extent is known and nonzero once the
 * empty cases are handled at compile time); loops of extent 1 emit no loop at all. The
 * accumulator lives in an alloca that SROA promotes. Expression values are memoized per region
 * (expressions are DAGs: kl_e_in_range shares its operand), scoped so that a value computed
 * inside the reduction loops is never reused after them.
 *
 * Safety, because predict never traps or reads outside its buffers: both arms of a select are
 * evaluated (no branches, so loops stay vectorizable), hence a load inside a select arm — a
 * padding read such as X[ih] guarded by 0 <= ih < H — and a load whose index is itself loaded
 * (Gather) have their linear offset clamped into the buffer. Integer division and remainder by
 * 0 (and INT_MIN / -1) give 0 instead of trapping; float -> int casts saturate (no poison).
 * Functions that would become libm calls on baseline x86-64 go through runtime-min.
 */
#include <string.h>

#include "llvm_internal.h"

typedef struct kgen {
    kl_cg *cg;
    const kl_kernel *k;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    int n_bufs;
    kl_buffer **bufs;
    LLVMValueRef *buf_ptr;
    LLVMValueRef iv[KL_MAX_LOOPS];
    LLVMValueRef acc;   /* alloca of the accumulator, or NULL */
    int guarded;        /* > 0 while emitting an arm of a select */
    int n_memo, cap_memo;
    const kl_expr **memo_key;
    LLVMValueRef *memo_val;
} kgen;

/* ---------------------------------------------------------------- dtypes */

static bool is_float(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16;
}
static bool is_signed(kl_dtype t) {
    return t == KL_I8 || t == KL_I16 || t == KL_I32 || t == KL_I64;
}
static bool is_half(kl_dtype t) { return t == KL_F16 || t == KL_BF16; }

/* Type of a value in registers: bools are i1, 16-bit floats compute in float. */
static LLVMTypeRef reg_type(kl_cg *cg, kl_dtype t) {
    switch (t) {
    case KL_BOOL: return cg->i1;
    case KL_I8: case KL_U8: return cg->i8;
    case KL_I16: case KL_U16: return cg->i16;
    case KL_I32: case KL_U32: return cg->i32;
    case KL_I64: case KL_U64: return cg->i64;
    case KL_F16: case KL_BF16: case KL_F32: return cg->f32;
    case KL_F64: return cg->f64;
    default: return NULL;
    }
}

/* Type of an element in memory: bools are one byte, 16-bit floats are raw bits. */
static LLVMTypeRef mem_type(kl_cg *cg, kl_dtype t) {
    if (t == KL_BOOL)
        return cg->i8;
    if (is_half(t))
        return cg->i16;
    return reg_type(cg, t);
}

static unsigned int_bits(kl_cg *cg, kl_dtype t) {
    return LLVMGetIntTypeWidth(reg_type(cg, t));
}

/* ---------------------------------------------------------------- errors */

static LLVMValueRef fail(kgen *kg, const char *fmt, const char *a, const char *b) {
    kl_error(kg->cg->d, kg->k->node, "codegen: kernel '%s': %s%s%s", kg->k->name, fmt, a ? a : "",
             b ? b : "");
    return NULL;
}

static const char *dname(kl_dtype t) {
    const char *n = kl_dtype_name(t);
    return n ? n : "?";
}

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
    collect_buffers(a, v, e->a);
    collect_buffers(a, v, e->b);
    collect_buffers(a, v, e->c);
}

/* Whether e reads the storage of `root` (through any view of it). */
static bool expr_reads(const kl_expr *e, const kl_buffer *root) {
    if (!e)
        return false;
    if (e->kind == KL_E_LOAD) {
        if (kl_buffer_root(e->buf) == root)
            return true;
        for (int d = 0; d < e->buf->shape.rank; d++)
            if (expr_reads(e->idx[d], root))
                return true;
    }
    return expr_reads(e->a, root) || expr_reads(e->b, root) || expr_reads(e->c, root);
}

static bool kernel_reads(const kl_kernel *k, const kl_buffer *buf) {
    if (expr_reads(k->init, buf) || expr_reads(k->value, buf) || expr_reads(k->result, buf))
        return true;
    for (int d = 0; d < k->out->shape.rank; d++)
        if (expr_reads(k->out_idx[d], buf))
            return true;
    return false;
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

/* ---------------------------------------------------------------- memo */

static LLVMValueRef memo_get(kgen *kg, const kl_expr *e) {
    for (int i = kg->n_memo - 1; i >= 0; i--)
        if (kg->memo_key[i] == e)
            return kg->memo_val[i];
    return NULL;
}

static void memo_put(kgen *kg, const kl_expr *e, LLVMValueRef v) {
    if (kg->n_memo == kg->cap_memo) {
        int cap = kg->cap_memo ? 2 * kg->cap_memo : 64;
        const kl_expr **keys = kl_alloc_array(kg->cg->arena, (size_t)cap, sizeof *keys);
        LLVMValueRef *vals = kl_alloc_array(kg->cg->arena, (size_t)cap, sizeof *vals);
        if (kg->n_memo) {
            memcpy(keys, kg->memo_key, (size_t)kg->n_memo * sizeof *keys);
            memcpy(vals, kg->memo_val, (size_t)kg->n_memo * sizeof *vals);
        }
        kg->memo_key = keys;
        kg->memo_val = vals;
        kg->cap_memo = cap;
    }
    kg->memo_key[kg->n_memo] = e;
    kg->memo_val[kg->n_memo++] = v;
}

/* ---------------------------------------------------------------- helpers */

static LLVMValueRef call_rt(kgen *kg, const char *name, LLVMValueRef *args, int n) {
    LLVMValueRef fn = kl_cg_runtime_fn(kg->cg, name);
    if (!fn)
        return NULL;
    return LLVMBuildCall2(kg->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)n, "");
}

static LLVMValueRef call_intrinsic1(kgen *kg, const char *name, LLVMTypeRef overload,
                                    LLVMValueRef *args, int n) {
    LLVMValueRef fn = kl_cg_intrinsic(kg->cg, name, &overload, 1);
    return LLVMBuildCall2(kg->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)n, "");
}

/* Round a float register value to the precision of a 16-bit float type. */
static LLVMValueRef round_half(kgen *kg, kl_dtype t, LLVMValueRef v) {
    bool bf = t == KL_BF16;
    LLVMValueRef bits = call_rt(kg, bf ? "kiln_rt_f2bf" : "kiln_rt_f2h", &v, 1);
    return bits ? call_rt(kg, bf ? "kiln_rt_bf2f" : "kiln_rt_h2f", &bits, 1) : NULL;
}

/* An integer register value widened to i64 (for indices and integer pow). */
static LLVMValueRef to_i64(kgen *kg, LLVMValueRef v, kl_dtype t) {
    if (LLVMTypeOf(v) == kg->cg->i64)
        return v;
    if (is_signed(t))
        return LLVMBuildSExt(kg->b, v, kg->cg->i64, "");
    return LLVMBuildZExt(kg->b, v, kg->cg->i64, "");
}

static bool contains_load(const kl_expr *e) {
    if (!e)
        return false;
    return e->kind == KL_E_LOAD || contains_load(e->a) || contains_load(e->b) ||
           contains_load(e->c);
}

static LLVMValueRef buffer_ptr(kgen *kg, kl_buffer *buf) {
    kl_buffer *root = kl_buffer_root(buf);
    for (int i = 0; i < kg->n_bufs; i++)
        if (kg->bufs[i] == root)
            return kg->buf_ptr[i];
    return NULL;
}

static LLVMValueRef emit(kgen *kg, const kl_expr *e);

/* Linear element offset of buf[idx...], clamped into the buffer when it may be out of range. */
static LLVMValueRef element_offset(kgen *kg, kl_buffer *buf, kl_expr *const *idx,
                                   bool clamp) {
    kl_cg *cg = kg->cg;
    LLVMValueRef off = LLVMConstInt(cg->i64, 0, 0);
    int64_t stride = 1;
    for (int d = buf->shape.rank - 1; d >= 0; d--) {
        if (!idx || !idx[d])
            return fail(kg, "missing index expression of buffer ", buf->name, NULL);
        LLVMValueRef i = emit(kg, idx[d]);
        if (!i)
            return NULL;
        if (LLVMGetTypeKind(LLVMTypeOf(i)) != LLVMIntegerTypeKind)
            return fail(kg, "non-integer index into buffer ", buf->name, NULL);
        i = to_i64(kg, i, idx[d]->dtype);
        if (stride != 1)
            i = LLVMBuildMul(kg->b, i, LLVMConstInt(cg->i64, (unsigned long long)stride, 0), "");
        off = LLVMBuildAdd(kg->b, off, i, "");
        clamp = clamp || contains_load(idx[d]);
        stride *= buf->shape.dim[d];
    }
    if (clamp && buf->shape.rank > 0) {
        int64_t last = stride > 0 ? stride - 1 : 0;
        LLVMValueRef lo[2] = {off, LLVMConstInt(cg->i64, 0, 0)};
        off = call_intrinsic1(kg, "llvm.smax", cg->i64, lo, 2);
        LLVMValueRef hi[2] = {off, LLVMConstInt(cg->i64, (unsigned long long)last, 0)};
        off = call_intrinsic1(kg, "llvm.smin", cg->i64, hi, 2);
    }
    return off;
}

static LLVMValueRef element_address(kgen *kg, kl_buffer *buf, kl_expr *const *idx,
                                    bool clamp) {
    LLVMValueRef base = buffer_ptr(kg, buf);
    if (!base)
        return fail(kg, "buffer not among the kernel's parameters: ", buf->name, NULL);
    LLVMValueRef off = element_offset(kg, buf, idx, clamp);
    if (!off)
        return NULL;
    return LLVMBuildInBoundsGEP2(kg->b, mem_type(kg->cg, buf->dtype), base, &off, 1, "");
}

static LLVMValueRef emit_load(kgen *kg, const kl_expr *e) {
    kl_cg *cg = kg->cg;
    kl_buffer *buf = e->buf;
    LLVMTypeRef mt = mem_type(cg, buf->dtype);
    if (!mt)
        return fail(kg, "unsupported element type ", dname(buf->dtype), NULL);
    LLVMValueRef addr = element_address(kg, buf, e->idx, kg->guarded > 0);
    if (!addr)
        return NULL;
    LLVMValueRef v = LLVMBuildLoad2(kg->b, mt, addr, "");
    LLVMSetAlignment(v, (unsigned)kl_dtype_size(buf->dtype));
    if (buf->dtype == KL_BOOL)
        return LLVMBuildICmp(kg->b, LLVMIntNE, v, LLVMConstInt(cg->i8, 0, 0), "");
    if (is_half(buf->dtype)) {
        LLVMValueRef bits = LLVMBuildZExt(kg->b, v, cg->i32, "");
        return call_rt(kg, buf->dtype == KL_BF16 ? "kiln_rt_bf2f" : "kiln_rt_h2f", &bits, 1);
    }
    return v;
}

static bool emit_store(kgen *kg, LLVMValueRef v) {
    kl_cg *cg = kg->cg;
    const kl_kernel *k = kg->k;
    kl_dtype t = k->out->dtype;
    LLVMValueRef addr = element_address(kg, k->out, k->out_idx, false);
    if (!addr)
        return false;
    if (t == KL_BOOL) {
        v = LLVMBuildZExt(kg->b, v, cg->i8, "");
    } else if (is_half(t)) {
        v = call_rt(kg, t == KL_BF16 ? "kiln_rt_f2bf" : "kiln_rt_f2h", &v, 1);
        if (!v)
            return false;
        v = LLVMBuildTrunc(kg->b, v, cg->i16, "");
    }
    LLVMValueRef st = LLVMBuildStore(kg->b, v, addr);
    LLVMSetAlignment(st, (unsigned)kl_dtype_size(t));
    return true;
}

/* ---------------------------------------------------------------- constants */

static LLVMValueRef emit_const(kgen *kg, const kl_expr *e) {
    LLVMTypeRef t = reg_type(kg->cg, e->dtype);
    if (!t)
        return fail(kg, "unsupported constant type ", dname(e->dtype), NULL);
    if (is_float(e->dtype))
        return LLVMConstReal(t, e->f);
    if (e->dtype == KL_BOOL)
        return LLVMConstInt(t, e->i != 0, 0);
    return LLVMConstInt(t, (unsigned long long)e->i, is_signed(e->dtype));
}

/* Identity of a reduction for the accumulator type. */
static LLVMValueRef reduce_identity(kgen *kg, kl_reduce r, kl_dtype t) {
    LLVMTypeRef ty = reg_type(kg->cg, t);
    if (is_float(t)) {
        switch (r) {
        case KL_RED_PROD: return LLVMConstReal(ty, 1.0);
        case KL_RED_MAX: return LLVMConstReal(ty, -__builtin_inf());
        case KL_RED_MIN: return LLVMConstReal(ty, __builtin_inf());
        default: return LLVMConstReal(ty, 0.0);
        }
    }
    unsigned w = LLVMGetIntTypeWidth(ty);
    unsigned long long all = w == 64 ? ~0ull : (1ull << w) - 1;
    unsigned long long smin = 1ull << (w - 1);
    bool sgn = is_signed(t);
    switch (r) {
    case KL_RED_PROD: return LLVMConstInt(ty, 1, 0);
    case KL_RED_MAX: return LLVMConstInt(ty, sgn ? smin : 0, 0);
    case KL_RED_MIN: return LLVMConstInt(ty, sgn ? smin - 1 : all, 0);
    default: return LLVMConstInt(ty, 0, 0);
    }
}

/* ---------------------------------------------------------------- arithmetic */

static LLVMValueRef select_(kgen *kg, LLVMValueRef c, LLVMValueRef x, LLVMValueRef y) {
    return LLVMBuildSelect(kg->b, c, x, y, "");
}

/* min/max of floats that propagates NaN (ONNX Runtime's behaviour), without minnum. */
static LLVMValueRef float_minmax(kgen *kg, bool is_max, LLVMValueRef x, LLVMValueRef y) {
    LLVMValueRef pick = LLVMBuildFCmp(kg->b, is_max ? LLVMRealOGT : LLVMRealOLT, x, y, "");
    LLVMValueRef r = select_(kg, pick, x, y);
    LLVMValueRef nan = LLVMBuildFCmp(kg->b, LLVMRealUNO, x, y, "");
    return select_(kg, nan, LLVMBuildFAdd(kg->b, x, y, ""), r);
}

/* Integer quotient or remainder that never traps: x / 0 = 0, x % 0 = 0, and for signed types
 * INT_MIN / -1 wraps (x % -1 = 0). */
static LLVMValueRef safe_int_divrem(kgen *kg, bool rem, bool sgn, LLVMValueRef x,
                                    LLVMValueRef y) {
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef zero = LLVMConstInt(t, 0, 0), one = LLVMConstInt(t, 1, 0);
    LLVMValueRef y_zero = LLVMBuildICmp(kg->b, LLVMIntEQ, y, zero, "");
    LLVMValueRef bad = y_zero, y_m1 = NULL;
    if (sgn && LLVMGetIntTypeWidth(t) > 1) {
        y_m1 = LLVMBuildICmp(kg->b, LLVMIntEQ, y, LLVMConstAllOnes(t), "");
        bad = LLVMBuildOr(kg->b, y_zero, y_m1, "");
    }
    LLVMValueRef ys = select_(kg, bad, one, y);
    LLVMValueRef r;
    if (rem)
        r = sgn ? LLVMBuildSRem(kg->b, x, ys, "") : LLVMBuildURem(kg->b, x, ys, "");
    else
        r = sgn ? LLVMBuildSDiv(kg->b, x, ys, "") : LLVMBuildUDiv(kg->b, x, ys, "");
    if (y_m1)
        r = select_(kg, y_m1, rem ? zero : LLVMBuildSub(kg->b, zero, x, ""), r);
    return select_(kg, y_zero, zero, r);
}

/* Python-style remainder: the sign of the divisor. r = fmod-like rem; fix up when the signs
 * of r and y differ and r != 0. */
static LLVMValueRef python_mod_fixup(kgen *kg, bool flt, LLVMValueRef r, LLVMValueRef y) {
    LLVMTypeRef t = LLVMTypeOf(r);
    LLVMValueRef nz, rneg, yneg, adj;
    if (flt) {
        LLVMValueRef z = LLVMConstReal(t, 0.0);
        nz = LLVMBuildFCmp(kg->b, LLVMRealONE, r, z, "");
        rneg = LLVMBuildFCmp(kg->b, LLVMRealOLT, r, z, "");
        yneg = LLVMBuildFCmp(kg->b, LLVMRealOLT, y, z, "");
        adj = LLVMBuildFAdd(kg->b, r, y, "");
    } else {
        LLVMValueRef z = LLVMConstInt(t, 0, 0);
        nz = LLVMBuildICmp(kg->b, LLVMIntNE, r, z, "");
        rneg = LLVMBuildICmp(kg->b, LLVMIntSLT, r, z, "");
        yneg = LLVMBuildICmp(kg->b, LLVMIntSLT, y, z, "");
        adj = LLVMBuildAdd(kg->b, r, y, "");
    }
    LLVMValueRef fix = LLVMBuildAnd(kg->b, nz, LLVMBuildXor(kg->b, rneg, yneg, ""), "");
    return select_(kg, fix, adj, r);
}

static const char *binop_name(int op) {
    static const char *const names[KL_BINOP_COUNT] = {
        "Add", "Sub", "Mul", "Div", "Min", "Max", "Pow", "Mod", "FMod",
        "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Xor"};
    return op >= 0 && op < KL_BINOP_COUNT ? names[op] : "?";
}

static LLVMValueRef float_binop(kgen *kg, int op, kl_dtype t, LLVMValueRef x, LLVMValueRef y) {
    LLVMBuilderRef b = kg->b;
    bool dbl = t == KL_F64;
    switch (op) {
    case KL_ADD: return LLVMBuildFAdd(b, x, y, "");
    case KL_SUB: return LLVMBuildFSub(b, x, y, "");
    case KL_MUL: return LLVMBuildFMul(b, x, y, "");
    case KL_DIV: return LLVMBuildFDiv(b, x, y, "");
    case KL_MIN: return float_minmax(kg, false, x, y);
    case KL_MAX: return float_minmax(kg, true, x, y);
    case KL_POW: {
        LLVMValueRef args[2] = {x, y};
        return call_rt(kg, dbl ? "kiln_rt_pow" : "kiln_rt_powf", args, 2);
    }
    case KL_FMOD:
    case KL_MOD: {
        LLVMValueRef args[2] = {x, y};
        LLVMValueRef r = call_rt(kg, dbl ? "kiln_rt_fmod" : "kiln_rt_fmodf", args, 2);
        if (!r || op == KL_FMOD)
            return r;
        return python_mod_fixup(kg, true, r, y);
    }
    case KL_EQ: return LLVMBuildFCmp(b, LLVMRealOEQ, x, y, "");
    case KL_NE: return LLVMBuildFCmp(b, LLVMRealUNE, x, y, "");
    case KL_LT: return LLVMBuildFCmp(b, LLVMRealOLT, x, y, "");
    case KL_LE: return LLVMBuildFCmp(b, LLVMRealOLE, x, y, "");
    case KL_GT: return LLVMBuildFCmp(b, LLVMRealOGT, x, y, "");
    case KL_GE: return LLVMBuildFCmp(b, LLVMRealOGE, x, y, "");
    default: return fail(kg, "binary operator not defined on floats: ", binop_name(op), NULL);
    }
}

static LLVMValueRef int_binop(kgen *kg, int op, kl_dtype t, LLVMValueRef x, LLVMValueRef y) {
    LLVMBuilderRef b = kg->b;
    bool sgn = is_signed(t);
    switch (op) {
    case KL_ADD: return LLVMBuildAdd(b, x, y, "");
    case KL_SUB: return LLVMBuildSub(b, x, y, "");
    case KL_MUL: return LLVMBuildMul(b, x, y, "");
    case KL_DIV: return safe_int_divrem(kg, false, sgn, x, y);
    case KL_FMOD: return safe_int_divrem(kg, true, sgn, x, y);
    case KL_MOD: {
        LLVMValueRef r = safe_int_divrem(kg, true, sgn, x, y);
        return sgn ? python_mod_fixup(kg, false, r, y) : r;
    }
    case KL_MIN:
    case KL_MAX: {
        LLVMIntPredicate p = op == KL_MIN ? (sgn ? LLVMIntSLT : LLVMIntULT)
                                          : (sgn ? LLVMIntSGT : LLVMIntUGT);
        return select_(kg, LLVMBuildICmp(b, p, x, y, ""), x, y);
    }
    case KL_POW: {
        LLVMValueRef args[2] = {to_i64(kg, x, t), to_i64(kg, y, t)};
        LLVMValueRef r = call_rt(kg, "kiln_rt_ipow", args, 2);
        if (r && LLVMTypeOf(x) != kg->cg->i64)
            r = LLVMBuildTrunc(b, r, LLVMTypeOf(x), "");
        return r;
    }
    case KL_EQ: return LLVMBuildICmp(b, LLVMIntEQ, x, y, "");
    case KL_NE: return LLVMBuildICmp(b, LLVMIntNE, x, y, "");
    case KL_LT: return LLVMBuildICmp(b, sgn ? LLVMIntSLT : LLVMIntULT, x, y, "");
    case KL_LE: return LLVMBuildICmp(b, sgn ? LLVMIntSLE : LLVMIntULE, x, y, "");
    case KL_GT: return LLVMBuildICmp(b, sgn ? LLVMIntSGT : LLVMIntUGT, x, y, "");
    case KL_GE: return LLVMBuildICmp(b, sgn ? LLVMIntSGE : LLVMIntUGE, x, y, "");
    case KL_AND: return LLVMBuildAnd(b, x, y, "");
    case KL_OR: return LLVMBuildOr(b, x, y, "");
    case KL_XOR: return LLVMBuildXor(b, x, y, "");
    default: return fail(kg, "unknown binary operator ", binop_name(op), NULL);
    }
}

/* x op y where both operands have dtype t. */
static LLVMValueRef binop(kgen *kg, int op, kl_dtype t, LLVMValueRef x, LLVMValueRef y) {
    return is_float(t) ? float_binop(kg, op, t, x, y) : int_binop(kg, op, t, x, y);
}

static const char *unop_name(int op) {
    static const char *const names[KL_UNOP_COUNT] = {
        "Neg", "Abs", "Sqrt", "Exp", "Log", "Tanh", "Erf", "Floor", "Ceil", "Round",
        "Not", "Sigmoid", "Recip", "Sin", "Cos"};
    return op >= 0 && op < KL_UNOP_COUNT ? names[op] : "?";
}

/* Unary operators computed by runtime-min: base name (float entry = name + "f"). */
static const char *runtime_unop(int op) {
    switch (op) {
    case KL_EXP: return "kiln_rt_exp";
    case KL_LOG: return "kiln_rt_log";
    case KL_TANH: return "kiln_rt_tanh";
    case KL_ERF: return "kiln_rt_erf";
    case KL_SIGMOID: return "kiln_rt_sigmoid";
    case KL_SIN: return "kiln_rt_sin";
    case KL_COS: return "kiln_rt_cos";
    case KL_FLOOR: return "kiln_rt_floor";
    case KL_CEIL: return "kiln_rt_ceil";
    case KL_ROUND: return "kiln_rt_round";
    default: return NULL;
    }
}

static LLVMValueRef float_unop(kgen *kg, int op, kl_dtype t, LLVMValueRef x) {
    LLVMTypeRef ty = LLVMTypeOf(x);
    const char *rt = runtime_unop(op);
    if (rt) {
        const char *name = t == KL_F64 ? rt : kl_sprintf(kg->cg->arena, "%sf", rt);
        return call_rt(kg, name, &x, 1);
    }
    switch (op) {
    case KL_NEG: return LLVMBuildFNeg(kg->b, x, "");
    case KL_ABS: return call_intrinsic1(kg, "llvm.fabs", ty, &x, 1);
    case KL_SQRT: return call_intrinsic1(kg, "llvm.sqrt", ty, &x, 1);
    case KL_RECIP: return LLVMBuildFDiv(kg->b, LLVMConstReal(ty, 1.0), x, "");
    default: return fail(kg, "unary operator not defined on floats: ", unop_name(op), NULL);
    }
}

static LLVMValueRef int_unop(kgen *kg, int op, kl_dtype t, LLVMValueRef x) {
    LLVMTypeRef ty = LLVMTypeOf(x);
    LLVMValueRef zero = LLVMConstInt(ty, 0, 0);
    switch (op) {
    case KL_NEG: return LLVMBuildSub(kg->b, zero, x, "");
    case KL_ABS:
        if (!is_signed(t))
            return x;
        return select_(kg, LLVMBuildICmp(kg->b, LLVMIntSLT, x, zero, ""),
                       LLVMBuildSub(kg->b, zero, x, ""), x);
    case KL_NOT: return LLVMBuildNot(kg->b, x, "");
    case KL_FLOOR: case KL_CEIL: case KL_ROUND: return x;
    case KL_RECIP: return safe_int_divrem(kg, false, is_signed(t), LLVMConstInt(ty, 1, 0), x);
    default:
        return fail(kg, "unary operator not defined on ", dname(t),
                    kl_sprintf(kg->cg->arena, ": %s", unop_name(op)));
    }
}

/* ---------------------------------------------------------------- casts */

static LLVMValueRef float_to_int(kgen *kg, LLVMValueRef v, kl_dtype to) {
    kl_cg *cg = kg->cg;
    LLVMTypeRef src = LLVMTypeOf(v);
    const char *name = "llvm.fptosi.sat";
    LLVMTypeRef via = cg->i32;
    switch (to) {
    case KL_I64: via = cg->i64; break;
    case KL_U64: via = cg->i64; name = "llvm.fptoui.sat"; break;
    case KL_U32: via = cg->i64; break; /* like C on x86-64: convert to i64, keep the low bits */
    default: break;                    /* 8/16/32-bit: convert to i32, keep the low bits */
    }
    LLVMTypeRef types[2] = {via, src};
    LLVMValueRef fn = kl_cg_intrinsic(cg, name, types, 2);
    LLVMValueRef r = LLVMBuildCall2(kg->b, LLVMGlobalGetValueType(fn), fn, &v, 1, "");
    LLVMTypeRef dst = reg_type(cg, to);
    return dst == via ? r : LLVMBuildTrunc(kg->b, r, dst, "");
}

static LLVMValueRef emit_cast(kgen *kg, LLVMValueRef v, kl_dtype from, kl_dtype to) {
    kl_cg *cg = kg->cg;
    LLVMBuilderRef b = kg->b;
    LLVMTypeRef dst = reg_type(cg, to);
    if (!dst || !reg_type(cg, from))
        return fail(kg, "unsupported cast ", dname(from), kl_sprintf(cg->arena, " -> %s", dname(to)));
    if (is_float(from) && is_float(to)) {
        if (LLVMTypeOf(v) == dst)
            return v;
        return dst == cg->f64 ? LLVMBuildFPExt(b, v, dst, "") : LLVMBuildFPTrunc(b, v, dst, "");
    }
    if (is_float(from)) {
        if (to == KL_BOOL)
            return LLVMBuildFCmp(b, LLVMRealUNE, v, LLVMConstReal(LLVMTypeOf(v), 0.0), "");
        return float_to_int(kg, v, to);
    }
    if (is_float(to))
        return is_signed(from) ? LLVMBuildSIToFP(b, v, dst, "") : LLVMBuildUIToFP(b, v, dst, "");
    if (to == KL_BOOL)
        return LLVMBuildICmp(b, LLVMIntNE, v, LLVMConstInt(LLVMTypeOf(v), 0, 0), "");
    unsigned wf = int_bits(cg, from), wt = int_bits(cg, to);
    if (wf == wt)
        return v;
    if (wf > wt)
        return LLVMBuildTrunc(b, v, dst, "");
    return is_signed(from) ? LLVMBuildSExt(b, v, dst, "") : LLVMBuildZExt(b, v, dst, "");
}

/* ---------------------------------------------------------------- expressions */

static LLVMValueRef emit_uncached(kgen *kg, const kl_expr *e) {
    kl_cg *cg = kg->cg;
    switch (e->kind) {
    case KL_E_CONST:
        return emit_const(kg, e);
    case KL_E_IV: {
        if (e->i < 0 || e->i >= kg->k->n_loops || !kg->iv[e->i])
            return fail(kg, "loop variable out of scope", NULL, NULL);
        LLVMTypeRef t = reg_type(cg, e->dtype);
        if (!t || LLVMGetTypeKind(t) != LLVMIntegerTypeKind)
            return fail(kg, "loop variable of non-integer type ", dname(e->dtype), NULL);
        return t == cg->i64 ? kg->iv[e->i] : LLVMBuildTrunc(kg->b, kg->iv[e->i], t, "");
    }
    case KL_E_LOAD:
        return emit_load(kg, e);
    case KL_E_ACC:
        if (!kg->acc)
            return fail(kg, "accumulator used outside a reduction's result", NULL, NULL);
        return LLVMBuildLoad2(kg->b, reg_type(cg, kg->k->acc_dtype), kg->acc, "");
    case KL_E_UNARY: {
        LLVMValueRef x = emit(kg, e->a);
        if (!x)
            return NULL;
        return is_float(e->a->dtype) ? float_unop(kg, e->op, e->a->dtype, x)
                                     : int_unop(kg, e->op, e->a->dtype, x);
    }
    case KL_E_BINARY: {
        LLVMValueRef x = emit(kg, e->a), y = x ? emit(kg, e->b) : NULL;
        if (!y)
            return NULL;
        if (e->a->dtype != e->b->dtype)
            return fail(kg, "binary operands of different types ", dname(e->a->dtype),
                        kl_sprintf(cg->arena, " and %s", dname(e->b->dtype)));
        return binop(kg, e->op, e->a->dtype, x, y);
    }
    case KL_E_SELECT: {
        LLVMValueRef c = emit(kg, e->a);
        if (!c)
            return NULL;
        if (LLVMTypeOf(c) != cg->i1)
            return fail(kg, "select condition is not bool", NULL, NULL);
        kg->guarded++;
        LLVMValueRef x = emit(kg, e->b), y = x ? emit(kg, e->c) : NULL;
        kg->guarded--;
        if (!y)
            return NULL;
        if (LLVMTypeOf(x) != LLVMTypeOf(y))
            return fail(kg, "select arms of different types", NULL, NULL);
        return select_(kg, c, x, y);
    }
    case KL_E_CAST: {
        LLVMValueRef x = emit(kg, e->a);
        return x ? emit_cast(kg, x, e->a->dtype, e->dtype) : NULL;
    }
    }
    return fail(kg, "unknown expression kind", NULL, NULL);
}

static LLVMValueRef emit(kgen *kg, const kl_expr *e) {
    if (!e)
        return fail(kg, "missing expression", NULL, NULL);
    LLVMValueRef v = e->kind == KL_E_ACC ? NULL : memo_get(kg, e);
    if (v)
        return v;
    v = emit_uncached(kg, e);
    if (!v)
        return NULL;
    /* float16 arithmetic rounds to its own precision after every operation (as numpy and ONNX
     * Runtime do); bfloat16 computes in float and rounds only when cast or stored (as the ONNX
     * reference does). */
    bool round_op = e->dtype == KL_F16 && (e->kind == KL_E_CONST || e->kind == KL_E_UNARY ||
                                           e->kind == KL_E_BINARY);
    bool round_cast = is_half(e->dtype) && e->kind == KL_E_CAST && e->a->dtype != e->dtype;
    if (round_op || round_cast) {
        v = round_half(kg, e->dtype, v);
        if (!v)
            return NULL;
    }
    if (e->kind != KL_E_ACC)
        memo_put(kg, e, v);
    return v;
}

/* ---------------------------------------------------------------- loops */

typedef struct loop {
    LLVMBasicBlockRef body;
    LLVMValueRef phi;   /* NULL for a loop of extent 1 (no loop emitted) */
    int64_t extent;
} loop;

static void loop_begin(kgen *kg, int l, loop *L) {
    kl_cg *cg = kg->cg;
    L->extent = kg->k->extent[l];
    L->phi = NULL;
    if (L->extent == 1) {
        kg->iv[l] = LLVMConstInt(cg->i64, 0, 0);
        return;
    }
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(kg->b);
    L->body = LLVMAppendBasicBlockInContext(cg->ctx, kg->fn, kl_sprintf(cg->arena, "loop%d", l));
    LLVMBuildBr(kg->b, L->body);
    LLVMPositionBuilderAtEnd(kg->b, L->body);
    L->phi = LLVMBuildPhi(kg->b, cg->i64, kl_sprintf(cg->arena, "i%d", l));
    LLVMValueRef zero = LLVMConstInt(cg->i64, 0, 0);
    LLVMAddIncoming(L->phi, &zero, &pre, 1);
    kg->iv[l] = L->phi;
}

static void loop_end(kgen *kg, int l, loop *L) {
    kl_cg *cg = kg->cg;
    if (L->phi) {
        LLVMValueRef next = LLVMBuildNUWAdd(kg->b, L->phi, LLVMConstInt(cg->i64, 1, 0), "");
        LLVMValueRef more = LLVMBuildICmp(kg->b, LLVMIntULT, next,
                                          LLVMConstInt(cg->i64, (unsigned long long)L->extent, 0), "");
        LLVMBasicBlockRef latch = LLVMGetInsertBlock(kg->b);
        LLVMBasicBlockRef exit =
            LLVMAppendBasicBlockInContext(cg->ctx, kg->fn, kl_sprintf(cg->arena, "done%d", l));
        LLVMBuildCondBr(kg->b, more, L->body, exit);
        LLVMAddIncoming(L->phi, &next, &latch, 1);
        LLVMPositionBuilderAtEnd(kg->b, exit);
    }
    kg->iv[l] = NULL;
}

/* The reduction loops: acc = combine(acc, value) over ivs [n_par, n_loops). */
static bool emit_reduction(kgen *kg) {
    const kl_kernel *k = kg->k;
    LLVMTypeRef at = reg_type(kg->cg, k->acc_dtype);
    for (int l = k->n_par; l < k->n_loops; l++)
        if (k->extent[l] <= 0)
            return true; /* empty reduction: acc stays at init */
    loop loops[KL_MAX_LOOPS];
    for (int l = k->n_par; l < k->n_loops; l++)
        loop_begin(kg, l, &loops[l]);
    int mark = kg->n_memo;
    LLVMValueRef v = emit(kg, k->value);
    if (!v)
        return false;
    if (k->value->dtype != k->acc_dtype) {
        fail(kg, "reduced value of type ", dname(k->value->dtype),
             kl_sprintf(kg->cg->arena, " but accumulator of type %s", dname(k->acc_dtype)));
        return false;
    }
    LLVMValueRef acc = LLVMBuildLoad2(kg->b, at, kg->acc, "");
    static const int combine_op[] = {[KL_RED_SUM] = KL_ADD, [KL_RED_PROD] = KL_MUL,
                                     [KL_RED_MAX] = KL_MAX, [KL_RED_MIN] = KL_MIN};
    LLVMValueRef r = binop(kg, combine_op[k->reduce], k->acc_dtype, acc, v);
    if (!r)
        return false;
    /* Sums and products may be reassociated so that the loop vectorizes (the result differs
     * from the sequential order only by rounding). */
    if (kg->cg->o->opt_level >= 2 && is_float(k->acc_dtype) && LLVMIsAInstruction(r) &&
        (k->reduce == KL_RED_SUM || k->reduce == KL_RED_PROD))
        LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc);
    if (k->acc_dtype == KL_F16)
        r = round_half(kg, k->acc_dtype, r);
    if (!r)
        return false;
    LLVMBuildStore(kg->b, r, kg->acc);
    kg->n_memo = mark; /* values of the reduction body do not dominate what follows */
    for (int l = k->n_loops - 1; l >= k->n_par; l--)
        loop_end(kg, l, &loops[l]);
    return true;
}

/* One iteration of the parallel loops: compute and store one output element. */
static bool emit_element(kgen *kg) {
    const kl_kernel *k = kg->k;
    LLVMValueRef v;
    if (k->reduce == KL_RED_NONE) {
        v = emit(kg, k->result ? k->result : k->value);
    } else {
        LLVMValueRef init = k->init ? emit(kg, k->init)
                                    : reduce_identity(kg, k->reduce, k->acc_dtype);
        if (!init)
            return false;
        LLVMBuildStore(kg->b, init, kg->acc);
        if (!emit_reduction(kg))
            return false;
        v = k->result ? emit(kg, k->result)
                      : LLVMBuildLoad2(kg->b, reg_type(kg->cg, k->acc_dtype), kg->acc, "");
    }
    if (!v)
        return false;
    if (LLVMTypeOf(v) != reg_type(kg->cg, k->out->dtype)) {
        fail(kg, "stored value does not match the type of buffer ", k->out->name, NULL);
        return false;
    }
    return emit_store(kg, v);
}

static bool check_kernel(kgen *kg) {
    const kl_kernel *k = kg->k;
    if (!k->out || (!k->value && !k->result))
        return fail(kg, "kernel without output or value", NULL, NULL) != NULL;
    if (k->n_loops < 0 || k->n_loops > KL_MAX_LOOPS || k->n_par < 0 || k->n_par > k->n_loops)
        return fail(kg, "bad loop counts", NULL, NULL) != NULL;
    kl_buffer_kind out_kind = kl_buffer_root(k->out)->kind;
    if (out_kind == KL_BUF_INPUT || out_kind == KL_BUF_CONST)
        return fail(kg, "writes to an input or constant buffer: ", k->out->name, NULL) != NULL;
    if (!reg_type(kg->cg, k->out->dtype))
        return fail(kg, "unsupported output type ", dname(k->out->dtype), NULL) != NULL;
    if (k->reduce != KL_RED_NONE) {
        if (k->reduce > KL_RED_MIN || !k->value || !reg_type(kg->cg, k->acc_dtype))
            return fail(kg, "bad reduction", NULL, NULL) != NULL;
    }
    return true;
}

/* ---------------------------------------------------------------- the function */

static void declare_function(kgen *kg, kl_cg_kernel *out) {
    kl_cg *cg = kg->cg;
    const kl_kernel *k = kg->k;
    kl_ptrvec bufs = {0};
    collect_buffers(cg->arena, &bufs, k->init);
    collect_buffers(cg->arena, &bufs, k->value);
    collect_buffers(cg->arena, &bufs, k->result);
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
    LLVMTypeRef *params = kl_alloc_array(cg->arena, (size_t)bufs.n + 1, sizeof *params);
    for (int i = 0; i < bufs.n; i++)
        params[i] = cg->ptr;
    out->fn_type = LLVMFunctionType(cg->void_t, params, (unsigned)bufs.n, 0);
    out->fn = LLVMAddFunction(cg->mod, k->name ? k->name : "kernel", out->fn_type);
    LLVMSetLinkage(out->fn, LLVMInternalLinkage);
    kl_cg_add_fn_attr(cg, out->fn, "nounwind");

    kg->fn = out->fn;
    kg->n_bufs = bufs.n;
    kg->bufs = out->bufs;
    kg->buf_ptr = kl_alloc_array(cg->arena, (size_t)bufs.n + 1, sizeof *kg->buf_ptr);
    for (int i = 0; i < bufs.n; i++) {
        kl_buffer *buf = out->bufs[i];
        kg->buf_ptr[i] = LLVMGetParam(out->fn, (unsigned)i);
        LLVMSetValueName2(kg->buf_ptr[i], buf->name ? buf->name : "buf",
                          buf->name ? strlen(buf->name) : 3);
        bool written = buf == out_root, read = kernel_reads(k, buf);
        if (!(written && read) && !overlaps_other_workspace(out, i))
            kl_cg_add_param_attr(cg, out->fn, i, "noalias", 0);
        kl_cg_add_param_attr(cg, out->fn, i, "nocapture", 0);
        if (!written)
            kl_cg_add_param_attr(cg, out->fn, i, "readonly", 0);
        if (buf->kind == KL_BUF_CONST || (buf->kind == KL_BUF_WORKSPACE && buf->offset % 64 == 0))
            kl_cg_add_param_attr(cg, out->fn, i, "align", 64);
    }
}

bool kl_cg_emit_kernel(kl_cg *cg, const kl_kernel *k, kl_cg_kernel *out) {
    kgen kg = {.cg = cg, .k = k, .b = cg->b};
    memset(out, 0, sizeof *out);
    if (!check_kernel(&kg))
        return false;
    declare_function(&kg, out);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, out->fn, "entry");
    LLVMPositionBuilderAtEnd(cg->b, entry);
    if (k->reduce != KL_RED_NONE)
        kg.acc = LLVMBuildAlloca(cg->b, reg_type(cg, k->acc_dtype), "acc");

    bool empty = false;
    for (int l = 0; l < k->n_par; l++)
        empty = empty || k->extent[l] <= 0;
    if (!empty) {
        loop loops[KL_MAX_LOOPS];
        for (int l = 0; l < k->n_par; l++)
            loop_begin(&kg, l, &loops[l]);
        if (!emit_element(&kg))
            return false;
        kg.n_memo = 0;
        for (int l = k->n_par - 1; l >= 0; l--)
            loop_end(&kg, l, &loops[l]);
    }
    LLVMBuildRetVoid(cg->b);
    return true;
}
