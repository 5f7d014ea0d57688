/*
 * codegen/llvm/kernel_expr.c — kernel IR expressions as LLVM values, scalar or SIMD.
 *
 * In a block point with a VECTOR loop, the loop variable stands for `lanes` consecutive values
 * and every expression that depends on it becomes a vector; the others stay scalars and are
 * broadcast where they meet a vector. Index expressions are followed symbolically as
 * base + stride * lane, so that a load becomes a scalar load (stride 0: a broadcast), a vector
 * load (stride 1) or, only for other strides and data-dependent indices, a gather. The last
 * chunk of a loop whose extent is not a multiple of the lanes is masked: its loads and stores
 * touch only the lanes inside the loop.
 *
 * Expression values are memoized per block point (expressions are DAGs: kl_e_in_range shares
 * its operand), scoped so that a value computed inside the reduction loops is never reused
 * after them, and never from inside a select arm that only some lanes take.
 *
 * Safety, because predict never traps or reads outside its buffers: both arms of a select are
 * evaluated (no branches, so loops stay vectorizable), hence a load inside a select arm — a
 * padding read such as X[ih] guarded by 0 <= ih < H — and a load whose index is itself loaded
 * (Gather) have their linear offset clamped into the buffer (for a vector load, the whole
 * vector). Where the guard differs between lanes, the load is masked by it instead: the lanes
 * outside touch no memory. Integer division and remainder by 0 (and INT_MIN / -1) give 0 instead of trapping;
 * float -> int casts saturate (no poison). Functions that would become libm calls on baseline
 * x86-64 go through runtime-min; in SIMD code they are called once per lane.
 */
#include <string.h>

#include "kernel_gen.h"

/* ---------------------------------------------------------------- dtypes */

static bool is_float(kl_dtype t) { return kl_dtype_is_float(t); }
static bool is_signed(kl_dtype t) { return kl_dtype_is_signed_int(t); }
static bool is_half(kl_dtype t) { return t == KL_F16 || t == KL_BF16; }
/* int4/uint4/int2/uint2: an i8 register that wraps to the type's width after every step */
static bool is_small_int(kl_dtype t) {
    return t == KL_I4 || t == KL_U4 || t == KL_I2 || t == KL_U2;
}

/* Type of a value in registers: bools are i1, 16-bit floats and the float8 / float4 types
 * compute in float (runtime-min converts their bits). */
LLVMTypeRef kl_kg_reg_type(kl_cg *cg, kl_dtype t) {
    switch (t) {
    case KL_BOOL: return cg->i1;
    case KL_I8: case KL_U8: return cg->i8;
    case KL_I16: case KL_U16: return cg->i16;
    case KL_I32: case KL_U32: return cg->i32;
    case KL_I64: case KL_U64: return cg->i64;
    case KL_F16: case KL_BF16: case KL_F32: return cg->f32;
    case KL_F64: return cg->f64;
    case KL_I4: case KL_U4: case KL_I2: case KL_U2: return cg->i8;
    case KL_STRING: return cg->ptr; /* const char * */
    default: return kl_dtype_is_minifloat(t) ? cg->f32 : NULL;
    }
}

/* Type of an element in memory: bools are one byte, 16-bit floats are raw bits. */
static LLVMTypeRef mem_type(kl_cg *cg, kl_dtype t) {
    if (t == KL_BOOL || kl_dtype_is_minifloat(t))
        return cg->i8;
    if (is_half(t))
        return cg->i16;
    return kl_kg_reg_type(cg, t);
}

static const char *dname(kl_dtype t) {
    const char *n = kl_dtype_name(t);
    return n ? n : "?";
}

/* ---------------------------------------------------------------- vectors */

static bool is_vec(LLVMValueRef v) {
    return LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMVectorTypeKind;
}

static LLVMTypeRef scalar_of(LLVMTypeRef t) {
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMGetElementType(t) : t;
}

static LLVMTypeRef vec_type(kgen *kg, LLVMTypeRef scalar) {
    return LLVMVectorType(scalar, (unsigned)kg->lanes);
}

/* `scalar` shaped like `like`: the vector type of the same lane count when `like` is a vector. */
static LLVMTypeRef shaped_like(LLVMTypeRef scalar, LLVMTypeRef like) {
    if (LLVMGetTypeKind(like) != LLVMVectorTypeKind)
        return scalar;
    return LLVMVectorType(scalar, LLVMGetVectorSize(like));
}

static LLVMValueRef splat(kgen *kg, LLVMValueRef v) {
    LLVMTypeRef vt = vec_type(kg, LLVMTypeOf(v));
    LLVMValueRef one = LLVMBuildInsertElement(kg->b, LLVMGetUndef(vt), v,
                                              LLVMConstInt(kg->cg->i32, 0, 0), "");
    LLVMValueRef zeros = LLVMConstNull(vec_type(kg, kg->cg->i32));
    return LLVMBuildShuffleVector(kg->b, one, LLVMGetUndef(vt), zeros, "");
}

LLVMValueRef kl_kg_widen(kgen *kg, LLVMValueRef v) {
    return (kg->vloop >= 0 && v && !is_vec(v)) ? splat(kg, v) : v;
}

/* A constant of type `t` (a splat when t is a vector type). */
static LLVMValueRef const_like(LLVMTypeRef t, LLVMValueRef scalar) {
    if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
        return scalar;
    unsigned n = LLVMGetVectorSize(t);
    LLVMValueRef lanes[64];
    for (unsigned i = 0; i < n && i < 64; i++)
        lanes[i] = scalar;
    return LLVMConstVector(lanes, n);
}

static LLVMValueRef cst_f(LLVMTypeRef t, double v) {
    return const_like(t, LLVMConstReal(scalar_of(t), v));
}

static LLVMValueRef cst_i(LLVMTypeRef t, unsigned long long v) {
    return const_like(t, LLVMConstInt(scalar_of(t), v, 0));
}

/* <0, 1, ..., lanes-1> as i64 */
static LLVMValueRef lane_iota(kgen *kg) {
    LLVMValueRef lanes[64];
    for (int i = 0; i < kg->lanes; i++)
        lanes[i] = LLVMConstInt(kg->cg->i64, (unsigned long long)i, 0);
    return LLVMConstVector(lanes, (unsigned)kg->lanes);
}

/* The lanes of the current chunk that lie inside the loop. */
static LLVMValueRef active_mask(kgen *kg) {
    LLVMValueRef lanes[64];
    for (int i = 0; i < kg->lanes; i++)
        lanes[i] = LLVMConstInt(kg->cg->i1, i < kg->active, 0);
    return LLVMConstVector(lanes, (unsigned)kg->lanes);
}

/* Both operands of a binary operation of the same shape (a scalar meets a vector: broadcast). */
static void match_shapes(kgen *kg, LLVMValueRef *x, LLVMValueRef *y) {
    if (is_vec(*x) && !is_vec(*y))
        *y = splat(kg, *y);
    else if (!is_vec(*x) && is_vec(*y))
        *x = splat(kg, *x);
}

/* ---------------------------------------------------------------- errors */

LLVMValueRef kl_kg_fail(kgen *kg, const char *fmt, const char *a, const char *b) {
    kl_error(kg->cg->d, kg->k->node, "codegen: kernel '%s': %s%s%s", kg->k->name, fmt, a ? a : "",
             b ? b : "");
    return NULL;
}
#define fail kl_kg_fail

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

void kl_kg_memo_reset(kgen *kg, int mark) { kg->n_memo = mark; }

/* ---------------------------------------------------------------- calls */

/* A runtime-min function; with vector arguments it is called once per lane. */
static LLVMValueRef call_rt(kgen *kg, const char *name, LLVMValueRef *args, int n) {
    LLVMValueRef fn = kl_cg_runtime_fn(kg->cg, name);
    if (!fn)
        return NULL;
    LLVMTypeRef ft = LLVMGlobalGetValueType(fn);
    unsigned lanes = 0;
    for (int i = 0; i < n; i++)
        if (is_vec(args[i]))
            lanes = LLVMGetVectorSize(LLVMTypeOf(args[i]));
    if (!lanes)
        return LLVMBuildCall2(kg->b, ft, fn, args, (unsigned)n, "");
    LLVMValueRef r = LLVMGetUndef(LLVMVectorType(LLVMGetReturnType(ft), lanes));
    for (unsigned l = 0; l < lanes; l++) {
        LLVMValueRef idx = LLVMConstInt(kg->cg->i32, l, 0), lane_args[8];
        for (int i = 0; i < n && i < 8; i++)
            lane_args[i] = is_vec(args[i]) ? LLVMBuildExtractElement(kg->b, args[i], idx, "")
                                           : args[i];
        LLVMValueRef v = LLVMBuildCall2(kg->b, ft, fn, lane_args, (unsigned)n, "");
        r = LLVMBuildInsertElement(kg->b, r, v, idx, "");
    }
    return r;
}

/* An intrinsic overloaded on the type of its first argument. */
static LLVMValueRef call_intrinsic1(kgen *kg, const char *name, LLVMTypeRef overload,
                                    LLVMValueRef *args, int n) {
    LLVMValueRef fn = kl_cg_intrinsic(kg->cg, name, &overload, 1);
    return LLVMBuildCall2(kg->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)n, "");
}

/* Round a float register value to the precision of a 16-bit float type. */
LLVMValueRef kl_kg_round_half(kgen *kg, kl_dtype t, LLVMValueRef v) {
    bool bf = t == KL_BF16;
    LLVMValueRef bits = call_rt(kg, bf ? "kiln_rt_f2bf" : "kiln_rt_f2h", &v, 1);
    return bits ? call_rt(kg, bf ? "kiln_rt_bf2f" : "kiln_rt_h2f", &bits, 1) : NULL;
}

/* Round a float register value through a float8 / float4 type (`mode`: KL_CAST_* bits). */
static LLVMValueRef round_minifloat(kgen *kg, kl_dtype t, LLVMValueRef v, unsigned mode) {
    LLVMValueRef args[3] = {LLVMConstInt(kg->cg->i32, (unsigned)t, 0), v,
                            LLVMConstInt(kg->cg->i32, mode, 0)};
    return call_rt(kg, "kiln_rt_mfround", args, 3);
}

/* Wrap an i8 register value to int4/uint4/int2/uint2: shift the type's bits to the top and
 * back, arithmetic (sign extending) for the signed ones. */
static LLVMValueRef wrap_small_int(kgen *kg, kl_dtype t, LLVMValueRef v) {
    LLVMValueRef k = cst_i(LLVMTypeOf(v), (unsigned long long)(8 - kl_dtype_bits(t)));
    v = LLVMBuildShl(kg->b, v, k, "");
    return is_signed(t) ? LLVMBuildAShr(kg->b, v, k, "") : LLVMBuildLShr(kg->b, v, k, "");
}

/* A computed value of a float8 / float4 or sub-byte integer type fitted to it (as the
 * interpreter's fit() does); other types unchanged. */
LLVMValueRef kl_kg_fit_small(kgen *kg, kl_dtype t, LLVMValueRef v) {
    if (kl_dtype_is_minifloat(t))
        return round_minifloat(kg, t, v, 0);
    return is_small_int(t) ? wrap_small_int(kg, t, v) : v;
}

/* An integer register value widened to i64 (for indices and integer pow). */
static LLVMValueRef to_i64(kgen *kg, LLVMValueRef v, kl_dtype t) {
    LLVMTypeRef i64 = shaped_like(kg->cg->i64, LLVMTypeOf(v));
    if (LLVMTypeOf(v) == i64)
        return v;
    if (is_signed(t))
        return LLVMBuildSExt(kg->b, v, i64, "");
    return LLVMBuildZExt(kg->b, v, i64, "");
}

/* ---------------------------------------------------------------- constants */

static LLVMValueRef emit_const(kgen *kg, const kl_expr *e) {
    LLVMTypeRef t = kl_kg_reg_type(kg->cg, e->dtype);
    if (!t || e->dtype == KL_STRING) /* string constants are loads of constant buffers */
        return fail(kg, "unsupported constant type ", dname(e->dtype), NULL);
    if (is_float(e->dtype))
        return LLVMConstReal(t, e->f);
    if (e->dtype == KL_BOOL)
        return LLVMConstInt(t, e->i != 0, 0);
    return LLVMConstInt(t, (unsigned long long)e->i, is_signed(e->dtype));
}

/* Identity of a reduction for the accumulator type. */
LLVMValueRef kl_kg_reduce_identity(kgen *kg, kl_reduce r, kl_dtype t) {
    LLVMTypeRef ty = kl_kg_reg_type(kg->cg, t);
    if (is_float(t)) {
        switch (r) {
        case KL_RED_PROD: return LLVMConstReal(ty, 1.0);
        case KL_RED_MAX: return LLVMConstReal(ty, -__builtin_inf());
        case KL_RED_MIN: return LLVMConstReal(ty, __builtin_inf());
        default: return LLVMConstReal(ty, 0.0);
        }
    }
    bool sgn = is_signed(t);
    if (is_small_int(t)) { /* the type's own bounds, as the interpreter starts from */
        long long b = kl_dtype_bits(t), lo = sgn ? -(1ll << (b - 1)) : 0;
        long long hi = sgn ? (1ll << (b - 1)) - 1 : (1ll << b) - 1;
        long long v = r == KL_RED_PROD ? 1 : r == KL_RED_MAX ? lo : r == KL_RED_MIN ? hi : 0;
        return LLVMConstInt(ty, (unsigned long long)v, 1);
    }
    unsigned w = LLVMGetIntTypeWidth(ty);
    unsigned long long all = w == 64 ? ~0ull : (1ull << w) - 1;
    unsigned long long smin = 1ull << (w - 1);
    switch (r) {
    case KL_RED_PROD: return LLVMConstInt(ty, 1, 0);
    case KL_RED_MAX: return LLVMConstInt(ty, sgn ? smin : 0, 0);
    case KL_RED_MIN: return LLVMConstInt(ty, sgn ? smin - 1 : all, 0);
    default: return LLVMConstInt(ty, 0, 0);
    }
}

/* ---------------------------------------------------------------- arithmetic */

static LLVMValueRef select_(kgen *kg, LLVMValueRef c, LLVMValueRef x, LLVMValueRef y) {
    match_shapes(kg, &x, &y);
    if (is_vec(c) && !is_vec(x)) {
        x = splat(kg, x);
        y = splat(kg, y);
    }
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
    LLVMValueRef zero = cst_i(t, 0), one = cst_i(t, 1);
    LLVMValueRef y_zero = LLVMBuildICmp(kg->b, LLVMIntEQ, y, zero, "");
    LLVMValueRef bad = y_zero, y_m1 = NULL;
    if (sgn && LLVMGetIntTypeWidth(scalar_of(t)) > 1) {
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
        LLVMValueRef z = cst_f(t, 0.0);
        nz = LLVMBuildFCmp(kg->b, LLVMRealONE, r, z, "");
        rneg = LLVMBuildFCmp(kg->b, LLVMRealOLT, r, z, "");
        yneg = LLVMBuildFCmp(kg->b, LLVMRealOLT, y, z, "");
        adj = LLVMBuildFAdd(kg->b, r, y, "");
    } else {
        LLVMValueRef z = cst_i(t, 0);
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
        if (r && LLVMTypeOf(r) != LLVMTypeOf(x))
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

/* x op y where both operands have dtype t (a scalar operand meeting a vector is broadcast). */
static LLVMValueRef binop(kgen *kg, int op, kl_dtype t, LLVMValueRef x, LLVMValueRef y) {
    match_shapes(kg, &x, &y);
    return is_float(t) ? float_binop(kg, op, t, x, y) : int_binop(kg, op, t, x, y);
}

LLVMValueRef kl_kg_combine(kgen *kg, kl_reduce r, kl_dtype t, LLVMValueRef acc, LLVMValueRef v) {
    static const int combine_op[] = {[KL_RED_SUM] = KL_ADD, [KL_RED_PROD] = KL_MUL,
                                     [KL_RED_MAX] = KL_MAX, [KL_RED_MIN] = KL_MIN};
    return binop(kg, combine_op[r], t, acc, v);
}

LLVMValueRef kl_kg_muladd(kgen *kg, LLVMValueRef x, LLVMValueRef y, LLVMValueRef acc) {
    match_shapes(kg, &x, &y);
    match_shapes(kg, &x, &acc);
    match_shapes(kg, &y, &acc);
    LLVMValueRef args[3] = {x, y, acc};
    return call_intrinsic1(kg, "llvm.fmuladd", LLVMTypeOf(acc), args, 3);
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
    case KL_SQRT: /* LLVM lowers a square root the FPU lacks to a call of libm's sqrt */
        if (kg->cg->o->target->float_bits >= (t == KL_F64 ? 64 : 32))
            return call_intrinsic1(kg, "llvm.sqrt", ty, &x, 1);
        return call_rt(kg, t == KL_F64 ? "kiln_rt_sqrt" : "kiln_rt_sqrtf", &x, 1);
    case KL_RECIP: return LLVMBuildFDiv(kg->b, cst_f(ty, 1.0), x, "");
    default: return fail(kg, "unary operator not defined on floats: ", unop_name(op), NULL);
    }
}

static LLVMValueRef int_unop(kgen *kg, int op, kl_dtype t, LLVMValueRef x) {
    LLVMTypeRef ty = LLVMTypeOf(x);
    LLVMValueRef zero = cst_i(ty, 0);
    switch (op) {
    case KL_NEG: return LLVMBuildSub(kg->b, zero, x, "");
    case KL_ABS:
        if (!is_signed(t))
            return x;
        return select_(kg, LLVMBuildICmp(kg->b, LLVMIntSLT, x, zero, ""),
                       LLVMBuildSub(kg->b, zero, x, ""), x);
    case KL_NOT: return LLVMBuildNot(kg->b, x, "");
    case KL_FLOOR: case KL_CEIL: case KL_ROUND: return x;
    case KL_RECIP: return safe_int_divrem(kg, false, is_signed(t), cst_i(ty, 1), x);
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
    via = shaped_like(via, src);
    LLVMTypeRef types[2] = {via, src};
    LLVMValueRef fn = kl_cg_intrinsic(cg, name, types, 2);
    LLVMValueRef r = LLVMBuildCall2(kg->b, LLVMGlobalGetValueType(fn), fn, &v, 1, "");
    LLVMTypeRef dst = shaped_like(kl_kg_reg_type(cg, to), src);
    return dst == via ? r : LLVMBuildTrunc(kg->b, r, dst, "");
}

static LLVMValueRef emit_cast(kgen *kg, LLVMValueRef v, kl_dtype from, kl_dtype to) {
    kl_cg *cg = kg->cg;
    LLVMBuilderRef b = kg->b;
    LLVMTypeRef dst_scalar = kl_kg_reg_type(cg, to);
    if (!dst_scalar || !kl_kg_reg_type(cg, from))
        return fail(kg, "unsupported cast ", dname(from), kl_sprintf(cg->arena, " -> %s", dname(to)));
    LLVMTypeRef dst = shaped_like(dst_scalar, LLVMTypeOf(v));
    if (is_float(from) && is_float(to)) {
        if (LLVMTypeOf(v) == dst)
            return v;
        return dst_scalar == cg->f64 ? LLVMBuildFPExt(b, v, dst, "") : LLVMBuildFPTrunc(b, v, dst, "");
    }
    if (is_float(from)) {
        if (to == KL_BOOL)
            return LLVMBuildFCmp(b, LLVMRealUNE, v, cst_f(LLVMTypeOf(v), 0.0), "");
        return float_to_int(kg, v, to);
    }
    if (is_float(to))
        return is_signed(from) ? LLVMBuildSIToFP(b, v, dst, "") : LLVMBuildUIToFP(b, v, dst, "");
    if (to == KL_BOOL)
        return LLVMBuildICmp(b, LLVMIntNE, v, cst_i(LLVMTypeOf(v), 0), "");
    unsigned wf = LLVMGetIntTypeWidth(kl_kg_reg_type(cg, from)), wt = LLVMGetIntTypeWidth(dst_scalar);
    if (wf == wt)
        return v;
    if (wf > wt)
        return LLVMBuildTrunc(b, v, dst, "");
    return is_signed(from) ? LLVMBuildSExt(b, v, dst, "") : LLVMBuildZExt(b, v, dst, "");
}

/* v's bits as `to` (same size). 16-bit floats are floats in registers, so their bits come from
 * (go to) runtime-min's conversions, which are exact both ways; bools are i1 in registers and
 * one byte in memory. */
static LLVMValueRef emit_bitcast(kgen *kg, LLVMValueRef v, kl_dtype from, kl_dtype to) {
    kl_cg *cg = kg->cg;
    LLVMBuilderRef b = kg->b;
    LLVMTypeRef like = LLVMTypeOf(v);
    if (from == to)
        return v;
    if (from == KL_BOOL)
        return LLVMBuildZExt(b, v, shaped_like(cg->i8, like), "");
    if (to == KL_BOOL)
        return LLVMBuildICmp(b, LLVMIntNE, v, cst_i(like, 0), "");
    if (is_half(from)) {
        v = call_rt(kg, from == KL_BF16 ? "kiln_rt_f2bf" : "kiln_rt_f2h", &v, 1);
        if (!v)
            return NULL;
        v = LLVMBuildTrunc(b, v, shaped_like(cg->i16, LLVMTypeOf(v)), "");
    }
    if (is_half(to)) {
        LLVMValueRef bits = LLVMBuildZExt(b, v, shaped_like(cg->i32, LLVMTypeOf(v)), "");
        return call_rt(kg, to == KL_BF16 ? "kiln_rt_bf2f" : "kiln_rt_h2f", &bits, 1);
    }
    LLVMTypeRef dst = shaped_like(kl_kg_reg_type(cg, to), LLVMTypeOf(v));
    return LLVMTypeOf(v) == dst ? v : LLVMBuildBitCast(b, v, dst, "");
}

/* ---------------------------------------------------------------- indices across lanes */

/* Whether e depends on the current VECTOR loop. */
static bool on_lanes(const kgen *kg, const kl_expr *e) {
    if (!e || kg->vloop < 0)
        return false;
    if (e->kind == KL_E_IV)
        return e->i == kg->vloop;
    if (e->kind == KL_E_LOAD)
        for (int d = 0; d < e->buf->shape.rank; d++)
            if (on_lanes(kg, e->idx[d]))
                return true;
    return on_lanes(kg, e->a) || on_lanes(kg, e->b) || on_lanes(kg, e->c);
}

/* An i64 index across the lanes: base + stride * lane while it is affine in the lane, else a
 * vector `vec` of every lane's value. */
typedef struct lane_index {
    LLVMValueRef base;
    int64_t stride;
    LLVMValueRef vec;
} lane_index;

static LLVMValueRef lanes_of(kgen *kg, lane_index x) {
    if (x.vec)
        return x.vec;
    LLVMValueRef v = splat(kg, x.base);
    if (x.stride == 0)
        return v;
    LLVMValueRef steps = LLVMBuildMul(kg->b, lane_iota(kg), cst_i(LLVMTypeOf(v), (unsigned long long)x.stride), "");
    return LLVMBuildAdd(kg->b, v, steps, "");
}

/* Lane strides wrap as the i64 arithmetic they stand for does (LLVM's add and mul without nsw):
 * computed unsigned, so that an absurd constant in an index never makes kiln itself undefined. */
static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

static lane_index li_add(kgen *kg, lane_index x, lane_index y, bool sub) {
    if (!x.vec && !y.vec) {
        lane_index r = {sub ? LLVMBuildSub(kg->b, x.base, y.base, "") : LLVMBuildAdd(kg->b, x.base, y.base, ""),
                        wrap_add(x.stride, sub ? wrap_mul(y.stride, -1) : y.stride), NULL};
        return r;
    }
    LLVMValueRef a = lanes_of(kg, x), b = lanes_of(kg, y);
    lane_index r = {NULL, 0, sub ? LLVMBuildSub(kg->b, a, b, "") : LLVMBuildAdd(kg->b, a, b, "")};
    return r;
}

static lane_index li_scale(kgen *kg, lane_index x, int64_t c) {
    LLVMValueRef k = LLVMConstInt(kg->cg->i64, (unsigned long long)c, 1);
    if (!x.vec) {
        lane_index r = {c == 1 ? x.base : LLVMBuildMul(kg->b, x.base, k, ""), wrap_mul(x.stride, c),
                        NULL};
        return r;
    }
    lane_index r = {NULL, 0, c == 1 ? x.vec : LLVMBuildMul(kg->b, x.vec, splat(kg, k), "")};
    return r;
}

static bool int_const_of(const kl_expr *e, int64_t *c) {
    if (e->kind != KL_E_CONST || is_float(e->dtype) || e->dtype == KL_BOOL)
        return false;
    *c = e->i;
    return true;
}

static bool lane_index_of(kgen *kg, const kl_expr *e, lane_index *out);

/* The general case: every lane's value as a vector of i64. */
static bool lane_index_vector(kgen *kg, const kl_expr *e, lane_index *out) {
    LLVMValueRef v = kl_kg_emit(kg, e);
    if (!v)
        return false;
    if (LLVMGetTypeKind(scalar_of(LLVMTypeOf(v))) != LLVMIntegerTypeKind)
        return fail(kg, "non-integer index expression", NULL, NULL) != NULL;
    v = to_i64(kg, v, e->dtype);
    out->base = NULL;
    out->stride = 0;
    out->vec = is_vec(v) ? v : splat(kg, v);
    return true;
}

static bool lane_index_of(kgen *kg, const kl_expr *e, lane_index *out) {
    if (!on_lanes(kg, e)) {
        LLVMValueRef v = kl_kg_emit(kg, e);
        if (!v)
            return false;
        if (LLVMGetTypeKind(LLVMTypeOf(v)) != LLVMIntegerTypeKind)
            return fail(kg, "non-integer index expression", NULL, NULL) != NULL;
        out->base = to_i64(kg, v, e->dtype);
        out->stride = 0;
        out->vec = NULL;
        return true;
    }
    int64_t c;
    switch (e->kind) {
    case KL_E_IV:
        out->base = kg->iv[e->i];
        out->stride = 1;
        out->vec = NULL;
        return true;
    case KL_E_BINARY:
        if (e->op == KL_ADD || e->op == KL_SUB) {
            lane_index x, y;
            if (!lane_index_of(kg, e->a, &x) || !lane_index_of(kg, e->b, &y))
                return false;
            *out = li_add(kg, x, y, e->op == KL_SUB);
            return true;
        }
        if (e->op == KL_MUL && (int_const_of(e->a, &c) || int_const_of(e->b, &c))) {
            lane_index x;
            if (!lane_index_of(kg, int_const_of(e->a, &c) ? e->b : e->a, &x))
                return false;
            *out = li_scale(kg, x, c);
            return true;
        }
        break;
    case KL_E_CAST:
        /* widening a signed index keeps it affine */
        if (!is_float(e->a->dtype) && is_signed(e->a->dtype) &&
            kl_dtype_size(e->dtype) >= kl_dtype_size(e->a->dtype) && is_signed(e->dtype))
            return lane_index_of(kg, e->a, out);
        break;
    default:
        break;
    }
    return lane_index_vector(kg, e, out);
}

/* ---------------------------------------------------------------- loads and stores */

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

static LLVMValueRef smax_smin(kgen *kg, LLVMValueRef v, int64_t lo, int64_t hi) {
    LLVMTypeRef t = LLVMTypeOf(v);
    LLVMValueRef a[2] = {v, cst_i(t, (unsigned long long)lo)};
    v = call_intrinsic1(kg, "llvm.smax", t, a, 2);
    LLVMValueRef b[2] = {v, cst_i(t, (unsigned long long)hi)};
    return call_intrinsic1(kg, "llvm.smin", t, b, 2);
}

/* Linear element offset of buf[idx...] across the lanes; `clamp` when it may be out of range
 * (then a scalar or per-lane offset is clamped into the buffer, and a stride-1 vector is moved
 * so that all its active lanes are inside). Sets *numel to the buffer's element count. */
static bool element_offset(kgen *kg, kl_buffer *buf, kl_expr *const *idx, bool clamp,
                           lane_index *off) {
    kl_cg *cg = kg->cg;
    lane_index acc = {LLVMConstInt(cg->i64, 0, 0), 0, NULL};
    int64_t stride = 1;
    for (int d = buf->shape.rank - 1; d >= 0; d--) {
        if (!idx || !idx[d])
            return fail(kg, "missing index expression of buffer ", buf->name, NULL) != NULL;
        lane_index i;
        if (!lane_index_of(kg, idx[d], &i))
            return false;
        acc = li_add(kg, acc, li_scale(kg, i, stride), false);
        clamp = clamp || contains_load(idx[d]);
        stride *= buf->shape.dim[d];
    }
    if (clamp && buf->shape.rank > 0) {
        int64_t last = stride > 0 ? stride - 1 : 0;
        if (acc.vec || (acc.stride != 0 && acc.stride != 1)) {
            acc.vec = smax_smin(kg, lanes_of(kg, acc), 0, last);
        } else if (acc.stride == 1 && last + 1 >= kg->active) {
            acc.base = smax_smin(kg, acc.base, 0, last + 1 - kg->active);
        } else if (acc.stride == 1) {
            acc.vec = smax_smin(kg, lanes_of(kg, acc), 0, last); /* buffer shorter than a chunk */
        } else {
            acc.base = smax_smin(kg, acc.base, 0, last);
        }
    }
    *off = acc;
    return true;
}

static LLVMValueRef masked_intrinsic(kgen *kg, const char *name, LLVMTypeRef t0, LLVMTypeRef t1,
                                     LLVMValueRef *args, int n) {
    LLVMTypeRef types[2] = {t0, t1};
    LLVMValueRef fn = kl_cg_intrinsic(kg->cg, name, types, 2);
    return LLVMBuildCall2(kg->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)n, "");
}

static LLVMValueRef lane_pointers(kgen *kg, LLVMTypeRef mt, LLVMValueRef base, lane_index off) {
    LLVMValueRef offs = lanes_of(kg, off);
    return LLVMBuildInBoundsGEP2(kg->b, mt, base, &offs, 1, "");
}

/* A load of `mt` elements at `off` from `base`, across the lanes when off depends on them. */
static LLVMValueRef load_elements(kgen *kg, LLVMTypeRef mt, unsigned align, LLVMValueRef base,
                                  lane_index off) {
    kl_cg *cg = kg->cg;
    if (!off.vec && off.stride == 0) {
        LLVMValueRef addr = LLVMBuildInBoundsGEP2(kg->b, mt, base, &off.base, 1, "");
        LLVMValueRef v = LLVMBuildLoad2(kg->b, mt, addr, "");
        LLVMSetAlignment(v, align);
        return v;
    }
    LLVMTypeRef vt = vec_type(kg, mt);
    LLVMValueRef align_v = LLVMConstInt(cg->i32, align, 0);
    if (!off.vec && off.stride == 1) {
        LLVMValueRef addr = LLVMBuildInBoundsGEP2(kg->b, mt, base, &off.base, 1, "");
        if (kg->active == kg->lanes) {
            LLVMValueRef v = LLVMBuildLoad2(kg->b, vt, addr, "");
            LLVMSetAlignment(v, align);
            return v;
        }
        LLVMValueRef args[4] = {addr, align_v, active_mask(kg), LLVMConstNull(vt)};
        return masked_intrinsic(kg, "llvm.masked.load", vt, cg->ptr, args, 4);
    }
    LLVMValueRef ptrs = lane_pointers(kg, mt, base, off);
    LLVMValueRef args[4] = {ptrs, align_v, active_mask(kg), LLVMConstNull(vt)};
    return masked_intrinsic(kg, "llvm.masked.gather", vt, LLVMTypeOf(ptrs), args, 4);
}

/* A load across the lanes in a select arm that only some lanes take: the other lanes may
 * address anything, so none of them touches memory (a masked load or gather; the address is
 * not `inbounds`, since it may lie outside the buffer for a masked lane). */
static LLVMValueRef load_guarded_lanes(kgen *kg, LLVMTypeRef mt, unsigned align,
                                       LLVMValueRef base, lane_index off) {
    kl_cg *cg = kg->cg;
    LLVMTypeRef vt = vec_type(kg, mt);
    LLVMValueRef mask = LLVMBuildAnd(kg->b, kg->lane_guard, active_mask(kg), "");
    LLVMValueRef align_v = LLVMConstInt(cg->i32, align, 0);
    if (!off.vec && off.stride == 1) {
        LLVMValueRef addr = LLVMBuildGEP2(kg->b, mt, base, &off.base, 1, "");
        LLVMValueRef args[4] = {addr, align_v, mask, LLVMConstNull(vt)};
        return masked_intrinsic(kg, "llvm.masked.load", vt, cg->ptr, args, 4);
    }
    LLVMValueRef offs = lanes_of(kg, off);
    LLVMValueRef ptrs = LLVMBuildGEP2(kg->b, mt, base, &offs, 1, "");
    LLVMValueRef args[4] = {ptrs, align_v, mask, LLVMConstNull(vt)};
    return masked_intrinsic(kg, "llvm.masked.gather", vt, LLVMTypeOf(ptrs), args, 4);
}

static bool index_has_load(const kl_expr *e) {
    for (int d = 0; d < e->buf->shape.rank; d++)
        if (contains_load(e->idx[d]))
            return true;
    return false;
}

static LLVMValueRef emit_load(kgen *kg, const kl_expr *e) {
    kl_cg *cg = kg->cg;
    kl_buffer *buf = e->buf;
    LLVMTypeRef mt = mem_type(cg, buf->dtype);
    if (!mt)
        return fail(kg, "unsupported element type ", dname(buf->dtype), NULL);
    LLVMValueRef base = buffer_ptr(kg, buf);
    if (!base)
        return fail(kg, "buffer not among the kernel's parameters: ", buf->name, NULL);
    unsigned align = (unsigned)kl_dtype_size(buf->dtype);
    lane_index off;
    LLVMValueRef v;
    bool lanes_guarded = kg->lane_guard && on_lanes(kg, e) && !index_has_load(e);
    if (!element_offset(kg, buf, e->idx, kg->guarded > 0 && !lanes_guarded, &off))
        return NULL;
    if (lanes_guarded && (off.vec || off.stride != 0))
        v = load_guarded_lanes(kg, mt, align, base, off);
    else
        v = load_elements(kg, mt, align, base, off);
    if (buf->dtype == KL_BOOL)
        return LLVMBuildICmp(kg->b, LLVMIntNE, v, cst_i(LLVMTypeOf(v), 0), "");
    if (is_half(buf->dtype)) {
        LLVMValueRef bits = LLVMBuildZExt(kg->b, v, shaped_like(cg->i32, LLVMTypeOf(v)), "");
        return call_rt(kg, buf->dtype == KL_BF16 ? "kiln_rt_bf2f" : "kiln_rt_h2f", &bits, 1);
    }
    if (kl_dtype_is_minifloat(buf->dtype)) {
        LLVMValueRef args[2] = {LLVMConstInt(cg->i32, (unsigned)buf->dtype, 0),
                                LLVMBuildZExt(kg->b, v, shaped_like(cg->i32, LLVMTypeOf(v)), "")};
        return call_rt(kg, "kiln_rt_mf2f", args, 2);
    }
    return v;
}

LLVMValueRef kl_kg_element_address(kgen *kg, kl_buffer *buf, kl_expr *const *idx) {
    LLVMValueRef base = buffer_ptr(kg, buf);
    if (!base)
        return fail(kg, "buffer not among the kernel's parameters: ", buf->name, NULL);
    lane_index off;
    if (!element_offset(kg, buf, idx, false, &off))
        return NULL;
    if (off.vec || off.stride != 0)
        return fail(kg, "the address of a block's origin depends on its lanes", NULL, NULL);
    return LLVMBuildInBoundsGEP2(kg->b, mem_type(kg->cg, buf->dtype), base, &off.base, 1, "");
}

/* The kernel's prefetch hint (kernel/prefetch.c): llvm.prefetch of the element at
 * prefetch_at, clamped into the buffer, for reading, kept in the outer caches (locality 2:
 * the panel is read again only after the current one). */
bool kl_kg_prefetch(kgen *kg) {
    const kl_kernel *k = kg->k;
    if (!k->prefetch_at)
        return true;
    kl_cg *cg = kg->cg;
    LLVMValueRef base = buffer_ptr(kg, k->prefetch_buf);
    if (!base)
        return fail(kg, "buffer not among the kernel's parameters: ", k->prefetch_buf->name, NULL);
    int mark = kg->n_memo;
    LLVMValueRef at = kl_kg_emit(kg, k->prefetch_at);
    kl_kg_memo_reset(kg, mark);
    if (!at)
        return false;
    at = smax_smin(kg, at, 0, kl_shape_numel(&k->prefetch_buf->shape) - 1);
    LLVMValueRef addr = LLVMBuildInBoundsGEP2(kg->b, mem_type(cg, k->prefetch_buf->dtype), base, &at, 1, "");
    LLVMTypeRef types[1] = {cg->ptr};
    LLVMValueRef fn = kl_cg_intrinsic(cg, "llvm.prefetch", types, 1);
    LLVMValueRef args[4] = {addr, LLVMConstInt(cg->i32, 0, 0), LLVMConstInt(cg->i32, 2, 0),
                            LLVMConstInt(cg->i32, 1, 0)};
    LLVMBuildCall2(kg->b, LLVMGlobalGetValueType(fn), fn, args, 4, "");
    return true;
}

bool kl_kg_store(kgen *kg, LLVMValueRef v) {
    kl_cg *cg = kg->cg;
    const kl_kernel *k = kg->k;
    kl_dtype t = k->out->dtype;
    LLVMValueRef base = buffer_ptr(kg, k->out);
    if (!base)
        return fail(kg, "output buffer not among the kernel's parameters: ", k->out->name, NULL);
    lane_index off;
    if (!element_offset(kg, k->out, k->out_idx, false, &off))
        return false;
    bool across = off.vec || off.stride != 0;
    if (kg->vloop >= 0 && !across)
        return fail(kg, "a SIMD point stores every lane to one element of ", k->out->name, NULL) != NULL;
    if (across)
        v = kl_kg_widen(kg, v);
    if (t == KL_BOOL) {
        v = LLVMBuildZExt(kg->b, v, shaped_like(cg->i8, LLVMTypeOf(v)), "");
    } else if (is_half(t)) {
        v = call_rt(kg, t == KL_BF16 ? "kiln_rt_f2bf" : "kiln_rt_f2h", &v, 1);
        if (!v)
            return false;
        v = LLVMBuildTrunc(kg->b, v, shaped_like(cg->i16, LLVMTypeOf(v)), "");
    } else if (kl_dtype_is_minifloat(t)) {
        /* the value is one the type holds (rounded where it was computed): exact */
        LLVMValueRef args[3] = {LLVMConstInt(cg->i32, (unsigned)t, 0), v,
                                LLVMConstInt(cg->i32, KL_CAST_STORE, 0)};
        v = call_rt(kg, "kiln_rt_f2mf", args, 3);
        if (!v)
            return false;
        v = LLVMBuildTrunc(kg->b, v, shaped_like(cg->i8, LLVMTypeOf(v)), "");
    }
    LLVMTypeRef mt = mem_type(cg, t);
    unsigned align = (unsigned)kl_dtype_size(t);
    if (!across) {
        LLVMValueRef addr = LLVMBuildInBoundsGEP2(kg->b, mt, base, &off.base, 1, "");
        LLVMSetAlignment(LLVMBuildStore(kg->b, v, addr), align);
        return true;
    }
    LLVMValueRef align_v = LLVMConstInt(cg->i32, align, 0);
    if (!off.vec && off.stride == 1) {
        LLVMValueRef addr = LLVMBuildInBoundsGEP2(kg->b, mt, base, &off.base, 1, "");
        if (kg->active == kg->lanes) {
            LLVMSetAlignment(LLVMBuildStore(kg->b, v, addr), align);
            return true;
        }
        LLVMValueRef args[4] = {v, addr, align_v, active_mask(kg)};
        masked_intrinsic(kg, "llvm.masked.store", LLVMTypeOf(v), cg->ptr, args, 4);
        return true;
    }
    LLVMValueRef ptrs = lane_pointers(kg, mt, base, off);
    LLVMValueRef args[4] = {v, ptrs, align_v, active_mask(kg)};
    masked_intrinsic(kg, "llvm.masked.scatter", LLVMTypeOf(v), LLVMTypeOf(ptrs), args, 4);
    return true;
}

/* ---------------------------------------------------------------- expressions */

static LLVMValueRef emit_iv(kgen *kg, const kl_expr *e) {
    kl_cg *cg = kg->cg;
    if (e->i < 0 || e->i >= kg->k->n_loops || !kg->iv[e->i])
        return fail(kg, "loop variable out of scope", NULL, NULL);
    LLVMTypeRef t = kl_kg_reg_type(cg, e->dtype);
    if (!t || LLVMGetTypeKind(t) != LLVMIntegerTypeKind)
        return fail(kg, "loop variable of non-integer type ", dname(e->dtype), NULL);
    LLVMValueRef v = kg->iv[e->i];
    if (e->i == kg->vloop) {
        lane_index li = {v, 1, NULL};
        v = lanes_of(kg, li);
    }
    return t == cg->i64 ? v : LLVMBuildTrunc(kg->b, v, shaped_like(t, LLVMTypeOf(v)), "");
}

/* A string routine of runtime-min (kiln_string.h, kiln_regex.h); the builders get the arena's
 * address and capacity, the regex matcher its DFA table's address (both `buf`). */
static LLVMValueRef emit_string(kgen *kg, const kl_expr *e) {
    kl_cg *cg = kg->cg;
    LLVMValueRef arena = NULL, cap = NULL, x = NULL, y = NULL;
    if (e->buf) {
        arena = buffer_ptr(kg, e->buf);
        if (!arena)
            return fail(kg, "string arena or DFA table not among the kernel's parameters",
                        NULL, NULL);
        cap = LLVMConstInt(cg->i64, (unsigned long long)(kl_buffer_bytes(kl_buffer_root(e->buf)) - 16), 0);
    }
    if (e->a && !(x = kl_kg_emit(kg, e->a)))
        return NULL;
    if (e->b && !(y = kl_kg_emit(kg, e->b)))
        return NULL;
    switch ((kl_strop)e->op) {
    case KL_STR_EQ:
    case KL_STR_EQ_NOCASE: {
        LLVMValueRef args[2] = {x, y};
        LLVMValueRef r = call_rt(kg, e->op == KL_STR_EQ ? "kiln_rt_str_eq" : "kiln_rt_str_eq_nocase",
                                 args, 2);
        return r ? LLVMBuildICmp(kg->b, LLVMIntNE, r, cst_i(LLVMTypeOf(r), 0), "") : NULL;
    }
    case KL_STR_CONCAT: {
        LLVMValueRef args[4] = {arena, cap, x, y};
        return call_rt(kg, "kiln_rt_str_concat", args, 4);
    }
    case KL_STR_LOWER:
    case KL_STR_UPPER: {
        LLVMValueRef args[4] = {arena, cap, x, LLVMConstInt(cg->i32, e->op == KL_STR_UPPER, 0)};
        return call_rt(kg, "kiln_rt_str_case", args, 4);
    }
    case KL_STR_FAILED:
        return call_rt(kg, "kiln_rt_str_failed", &arena, 1);
    case KL_STR_SPLIT_COUNT:
    case KL_STR_SPLIT_PIECE: {
        LLVMValueRef piece = e->c ? kl_kg_emit(kg, e->c) : NULL;
        if (e->c && !piece)
            return NULL;
        LLVMValueRef maxsplit = LLVMConstInt(cg->i64, (unsigned long long)e->i, 1);
        LLVMValueRef count_args[3] = {x, y, maxsplit};
        LLVMValueRef piece_args[6] = {arena, cap, x, y, maxsplit, piece};
        return e->op == KL_STR_SPLIT_COUNT ? call_rt(kg, "kiln_rt_str_split_count", count_args, 3)
                                           : call_rt(kg, "kiln_rt_str_split_piece", piece_args, 6);
    }
    case KL_STR_REGEX_MATCH: { /* `buf` is the pattern's DFA table, a constant */
        LLVMValueRef args[2] = {arena, x};
        LLVMValueRef r = call_rt(kg, "kiln_rt_regex_full_match", args, 2);
        return r ? LLVMBuildICmp(kg->b, LLVMIntNE, r, cst_i(LLVMTypeOf(r), 0), "") : NULL;
    }
    }
    return fail(kg, "unknown string routine", NULL, NULL);
}

static LLVMValueRef emit_uncached(kgen *kg, const kl_expr *e) {
    kl_cg *cg = kg->cg;
    switch (e->kind) {
    case KL_E_CONST:
        return emit_const(kg, e);
    case KL_E_IV:
        return emit_iv(kg, e);
    case KL_E_LOAD:
        return emit_load(kg, e);
    case KL_E_ACC:
        if (!kg->acc)
            return fail(kg, "accumulator used outside a reduction's result", NULL, NULL);
        return LLVMBuildLoad2(kg->b, LLVMGetAllocatedType(kg->acc), kg->acc, "");
    case KL_E_UNARY: {
        LLVMValueRef x = kl_kg_emit(kg, e->a);
        if (!x)
            return NULL;
        return is_float(e->a->dtype) ? float_unop(kg, e->op, e->a->dtype, x)
                                     : int_unop(kg, e->op, e->a->dtype, x);
    }
    case KL_E_BINARY: {
        LLVMValueRef x = kl_kg_emit(kg, e->a), y = x ? kl_kg_emit(kg, e->b) : NULL;
        if (!y)
            return NULL;
        if (e->a->dtype != e->b->dtype)
            return fail(kg, "binary operands of different types ", dname(e->a->dtype),
                        kl_sprintf(cg->arena, " and %s", dname(e->b->dtype)));
        return binop(kg, e->op, e->a->dtype, x, y);
    }
    case KL_E_SELECT: {
        LLVMValueRef c = kl_kg_emit(kg, e->a);
        if (!c)
            return NULL;
        if (scalar_of(LLVMTypeOf(c)) != cg->i1)
            return fail(kg, "select condition is not bool", NULL, NULL);
        kg->guarded++;
        LLVMValueRef outer = kg->lane_guard, x = NULL, y = NULL;
        if (is_vec(c)) {
            kg->lane_guard = outer ? LLVMBuildAnd(kg->b, outer, c, "") : c;
            x = kl_kg_emit(kg, e->b);
            LLVMValueRef not_c = LLVMBuildNot(kg->b, c, "");
            kg->lane_guard = outer ? LLVMBuildAnd(kg->b, outer, not_c, "") : not_c;
            y = x ? kl_kg_emit(kg, e->c) : NULL;
        } else {
            x = kl_kg_emit(kg, e->b);
            y = x ? kl_kg_emit(kg, e->c) : NULL;
        }
        kg->lane_guard = outer;
        kg->guarded--;
        if (!y)
            return NULL;
        if (scalar_of(LLVMTypeOf(x)) != scalar_of(LLVMTypeOf(y)))
            return fail(kg, "select arms of different types", NULL, NULL);
        return select_(kg, c, x, y);
    }
    case KL_E_CAST: {
        LLVMValueRef x = kl_kg_emit(kg, e->a);
        return x ? emit_cast(kg, x, e->a->dtype, e->dtype) : NULL;
    }
    case KL_E_BITCAST: {
        if (kl_dtype_size(e->dtype) != kl_dtype_size(e->a->dtype) || !kl_kg_reg_type(kg->cg, e->dtype))
            return fail(kg, "bitcast between types of different sizes: ", dname(e->a->dtype),
                        kl_sprintf(kg->cg->arena, " -> %s", dname(e->dtype)));
        LLVMValueRef x = kl_kg_emit(kg, e->a);
        return x ? emit_bitcast(kg, x, e->a->dtype, e->dtype) : NULL;
    }
    case KL_E_STRING:
        return emit_string(kg, e);
    }
    return fail(kg, "unknown expression kind", NULL, NULL);
}

LLVMValueRef kl_kg_emit(kgen *kg, const kl_expr *e) {
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
        v = kl_kg_round_half(kg, e->dtype, v);
        if (!v)
            return NULL;
    }
    /* float8 / float4 and the sub-byte integers fit their type after every step, as the
     * interpreter's fit() does (a cast with its saturate / round_mode bits) */
    bool computed = e->kind == KL_E_CONST || e->kind == KL_E_UNARY || e->kind == KL_E_BINARY ||
                    (e->kind == KL_E_CAST && e->a->dtype != e->dtype);
    if (computed && kl_dtype_is_minifloat(e->dtype)) {
        v = round_minifloat(kg, e->dtype, v, e->kind == KL_E_CAST ? (unsigned)e->op : 0u);
        if (!v)
            return NULL;
    } else if (computed && is_small_int(e->dtype)) {
        v = wrap_small_int(kg, e->dtype, v);
    }
    /* a value computed from masked lanes is only right in its select arm */
    if (e->kind != KL_E_ACC && !kg->lane_guard)
        memo_put(kg, e, v);
    return v;
}
