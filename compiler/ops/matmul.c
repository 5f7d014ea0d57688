/*
 * matmul.c — MatMul, MatMulInteger, QLinearMatMul and Gemm.
 *
 * Each lowers to one kernel: parallel loops over the output, one reduction loop over K,
 * value = A[.., m, k] * B[.., k, n]. numpy's 1-D rules are handled by index construction
 * alone (a 1-D A has no m loop, a 1-D B no n loop); batch dims broadcast by reading index 0
 * from a size-1 dim.
 *
 * Memory order: the k-inner reduction reads A[m, k] contiguously but B[k, n] with stride N.
 * When B is a compile-time constant (weights, the common case) lowering adds a transposed
 * copy [.., N, K] as a new CONST buffer, so both operands stream through memory. A non-constant
 * B (attention) is read in place: transposing it would cost a kernel and a buffer per call.
 *
 * Gemm is the same nest with transA/transB folded into the index order and
 * alpha * acc + beta * C in the kernel's result (multiplications by 1 and a C scaled by 0 are
 * left out). MatMulInteger reads zero-point-shifted int32 values; QLinearMatMul does the same
 * and requantizes the int32 sum in the kernel's result (quant.h).
 */
#include <string.h>

#include "ops.h"
#include "quant.h"

/* float16/bfloat16 sums drift quickly: accumulate them in float32. */
static kl_dtype acc_dtype_for(kl_dtype t) {
    return (t == KL_F16 || t == KL_BF16) ? KL_F32 : t;
}

static bool is_matmul_type(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16 || t == KL_I32 ||
           t == KL_I64 || t == KL_U32 || t == KL_U64;
}

static bool is_8bit(kl_dtype t) { return t == KL_U8 || t == KL_I8; }

static kl_expr *const_of(kl_arena *a, kl_dtype t, double v) {
    return kl_dtype_is_float(t) ? kl_e_const_f(a, t, v)
                                : kl_e_const_i(a, t, kl_index_from_double(v));
}

/* "[2,3]" into buf (diagnostics are written during inference, which has no arena). */
static const char *shape_text(const kl_shape *s, char *buf, size_t size) {
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "",
                                (long long)s->dim[i]);
    if (len < size) snprintf(buf + len, size - len, "]");
    return buf;
}

/* ---- MatMul shapes ---------------------------------------------------------------------- */

/* The output shape of numpy matmul, or an error naming both shapes. */
static bool matmul_shape(kl_node *n, const kl_shape *a, const kl_shape *b, kl_shape *out,
                         kl_diag *d) {
    if (a->rank < 1 || b->rank < 1) return kl_error(d, n, "MatMul operands must have rank >= 1");
    int64_t ka = a->dim[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dim[0] : b->dim[b->rank - 2];
    if (ka != kb)
        return kl_error(d, n, "inner dimensions differ: A has K = %lld, B has K = %lld",
                        (long long)ka, (long long)kb);
    kl_shape ba = {.rank = a->rank > 2 ? a->rank - 2 : 0};
    kl_shape bb = {.rank = b->rank > 2 ? b->rank - 2 : 0};
    memcpy(ba.dim, a->dim, sizeof(int64_t) * (size_t)ba.rank);
    memcpy(bb.dim, b->dim, sizeof(int64_t) * (size_t)bb.rank);
    if (!kl_shape_broadcast(&ba, &bb, out))
        return kl_error(d, n, "batch dimensions of A and B cannot be broadcast");
    if (a->rank > 1) out->dim[out->rank++] = a->dim[a->rank - 2];
    if (b->rank > 1) out->dim[out->rank++] = b->dim[b->rank - 1];
    return true;
}

static bool infer_matmul(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_value *a = n->inputs[0], *b = n->inputs[1];
    if (!is_matmul_type(a->dtype))
        return kl_error(d, n, "MatMul does not take %s", kl_dtype_name(a->dtype));
    if (b->dtype != a->dtype)
        return kl_error(d, n, "A is %s but B is %s", kl_dtype_name(a->dtype),
                        kl_dtype_name(b->dtype));
    kl_shape y;
    if (!matmul_shape(n, &a->shape, &b->shape, &y, d)) return false;
    return kl_infer_set(n, 0, a->dtype, &y);
}

/* A zero point of MatMulInteger: a scalar, or 1-D of `len` (per row of A / column of B). */
static bool check_zero_point(kl_node *n, int i, kl_dtype t, int64_t len, kl_diag *d) {
    const kl_value *z = kl_node_input(n, i);
    if (!z) return true;
    if (z->dtype != t)
        return kl_error(d, n, "zero point input %d is %s, expected %s", i, kl_dtype_name(z->dtype),
                        kl_dtype_name(t));
    if (kl_shape_numel(&z->shape) == 1 || (z->shape.rank == 1 && z->shape.dim[0] == len))
        return true;
    return kl_error(d, n, "zero point input %d must be a scalar or 1-D of %lld", i,
                    (long long)len);
}

static bool infer_matmul_integer(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_value *a = n->inputs[0], *b = n->inputs[1];
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype))
        return kl_error(d, n, "A and B must be int8 or uint8 (got %s and %s)",
                        kl_dtype_name(a->dtype), kl_dtype_name(b->dtype));
    kl_shape y;
    if (!matmul_shape(n, &a->shape, &b->shape, &y, d)) return false;
    int64_t m = a->shape.rank > 1 ? a->shape.dim[a->shape.rank - 2] : 1;
    int64_t nn = b->shape.rank > 1 ? b->shape.dim[b->shape.rank - 1] : 1;
    if (!check_zero_point(n, 2, a->dtype, m, d) || !check_zero_point(n, 3, b->dtype, nn, d))
        return false;
    return kl_infer_set(n, 0, KL_I32, &y);
}

/* QLinearMatMul: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point. */
static bool infer_qlinear_matmul(kl_node *n, kl_diag *d) {
    for (int i = 0; i < 8; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    const kl_value *a = n->inputs[0], *b = n->inputs[3], *yz = n->inputs[7];
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype) || !is_8bit(yz->dtype))
        return kl_error(d, n, "a, b and y_zero_point must be int8 or uint8 (got %s, %s, %s)",
                        kl_dtype_name(a->dtype), kl_dtype_name(b->dtype),
                        kl_dtype_name(yz->dtype));
    kl_shape y;
    if (!matmul_shape(n, &a->shape, &b->shape, &y, d)) return false;
    int64_t m = a->shape.rank > 1 ? a->shape.dim[a->shape.rank - 2] : 1;
    int64_t nn = b->shape.rank > 1 ? b->shape.dim[b->shape.rank - 1] : 1;
    if (!check_zero_point(n, 2, a->dtype, m, d) || !check_zero_point(n, 5, b->dtype, nn, d) ||
        !check_zero_point(n, 7, yz->dtype, nn, d) || !kl_quant_check_scale(n, 1, m, d) ||
        !kl_quant_check_scale(n, 4, nn, d) || !kl_quant_check_scale(n, 6, nn, d))
        return false;
    return kl_infer_set(n, 0, yz->dtype, &y);
}

/* ---- the transposed weight copy ------------------------------------------------------- */

/* A CONST buffer holding constant `v` ([.., K, N]) with its last two dims swapped. */
static kl_buffer *transposed_const(kl_lower *L, kl_value *v) {
    kl_shape s = v->shape;
    int r = s.rank;
    int64_t rows = s.dim[r - 2], cols = s.dim[r - 1];
    int64_t batches = kl_shape_numel(&s) / (rows * cols);
    size_t es = kl_dtype_size(v->dtype);
    unsigned char *dst = kl_alloc(L->arena, (size_t)kl_shape_numel(&s) * es);
    const unsigned char *src = v->data;
    for (int64_t b = 0; b < batches; b++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                memcpy(dst + ((b * cols + j) * rows + i) * es,
                       src + ((b * rows + i) * cols + j) * es, es);
    s.dim[r - 2] = cols;
    s.dim[r - 1] = rows;
    kl_buffer *t = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_T", v->name), KL_BUF_CONST,
                                     v->dtype, &s);
    t->data = dst;
    t->host = dst; /* readable by the interpreter during constant folding too */
    return t;
}

/* Worth transposing: a constant matrix whose k-stride would be larger than 1. */
static bool transpose_pays(const kl_value *b) {
    return b->data && b->shape.rank >= 2 && b->shape.dim[b->shape.rank - 1] > 1 &&
           b->shape.dim[b->shape.rank - 2] > 1;
}

/* ---- MatMul / MatMulInteger lowering -------------------------------------------------- */

/* Batch indices of an operand of rank `r` (its first r-2 dims) against `nb` output batch
 * loops 0..nb-1, aligned right; size-1 dims read index 0. */
static void batch_index(kl_lower *L, const kl_shape *s, int nb, kl_expr **idx) {
    int own = s->rank - 2;
    for (int j = 0; j < own; j++)
        idx[j] = s->dim[j] == 1 ? kl_e_idx(L->arena, 0) : kl_e_iv(L->arena, j + nb - own);
}

/* Zero point of MatMulInteger as an int32 expression (index `along` for a 1-D one). */
static kl_expr *zero_point(kl_lower *L, kl_value *z, kl_expr *along) {
    if (!z) return kl_e_const_i(L->arena, KL_I32, 0);
    kl_buffer *b = kl_lower_buffer(L, z);
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < b->shape.rank; i++)
        idx[i] = b->shape.dim[i] == 1 ? kl_e_idx(L->arena, 0) : along;
    return kl_e_cast(L->arena, KL_I32, kl_e_load(L->arena, b, idx));
}

/* What the nest computes: float/int products, zero-point-shifted int8 products (int32 result),
 * or the same requantized to 8 bits. */
typedef enum matmul_kind { MM_PLAIN, MM_INTEGER, MM_QLINEAR } matmul_kind;

static bool lower_matmul_nest(kl_lower *L, kl_node *n, matmul_kind kind) {
    kl_arena *ar = L->arena;
    bool integer = kind != MM_PLAIN;
    int b_at = kind == MM_QLINEAR ? 3 : 1, bz_at = kind == MM_QLINEAR ? 5 : 3;
    kl_value *av = n->inputs[0], *bv = n->inputs[b_at], *yv = n->outputs[0];
    const kl_shape *as = &av->shape, *bs = &bv->shape;
    int ra = as->rank, rb = bs->rank, ry = yv->shape.rank;
    int nb = ry - (ra > 1) - (rb > 1);
    kl_dtype acc = integer ? KL_I32 : acc_dtype_for(av->dtype);
    int64_t kdim = as->dim[ra - 1];

    static const char *const tags[] = {"matmul", "matmulinteger", "qlinearmatmul"};
    kl_kernel *k = kl_kernel_new(L->prog, n, tags[kind]);
    for (int i = 0; i < ry; i++) k->extent[i] = yv->shape.dim[i];
    k->n_par = ry;
    if (ry == 0) k->extent[k->n_par++] = 1; /* 1-D x 1-D: a scalar still needs one iteration */
    k->extent[k->n_par] = kdim;
    k->n_loops = k->n_par + 1;
    kl_expr *kv = kl_e_iv(ar, k->n_par);
    kl_expr *mv = ra > 1 ? kl_e_iv(ar, nb) : NULL;
    kl_expr *nv = rb > 1 ? kl_e_iv(ar, nb + (ra > 1)) : NULL;

    kl_expr *ai[KL_MAX_RANK], *bi[KL_MAX_RANK];
    batch_index(L, as, nb, ai);
    if (ra > 1) ai[ra - 2] = mv;
    ai[ra - 1] = kv;
    kl_buffer *b;
    batch_index(L, bs, nb, bi);
    if (rb > 1 && transpose_pays(bv)) {
        b = transposed_const(L, bv);
        bi[rb - 2] = nv;
        bi[rb - 1] = kv;
    } else {
        b = kl_lower_buffer(L, bv);
        if (rb > 1) bi[rb - 1] = nv;
        bi[rb > 1 ? rb - 2 : 0] = kv;
    }
    kl_expr *ae = kl_e_cast(ar, acc, kl_e_load(ar, kl_lower_buffer(L, av), ai));
    kl_expr *be = kl_e_cast(ar, acc, kl_e_load(ar, b, bi));
    if (integer) {
        ae = kl_e_binary(ar, KL_SUB, ae, zero_point(L, kl_node_input(n, 2), mv));
        be = kl_e_binary(ar, KL_SUB, be, zero_point(L, kl_node_input(n, bz_at), nv));
    }
    k->value = kl_e_binary(ar, KL_MUL, ae, be);
    k->reduce = KL_RED_SUM;
    k->acc_dtype = acc;
    if (kind == MM_QLINEAR)
        k->result = kl_requantize(ar, kl_e_acc(ar, acc), kl_quant_param(L, n->inputs[1], mv),
                                  kl_quant_param(L, n->inputs[4], nv),
                                  kl_quant_param(L, n->inputs[6], nv),
                                  kl_quant_param(L, n->inputs[7], nv), yv->dtype);
    else if (acc != yv->dtype)
        k->result = kl_e_cast(ar, yv->dtype, kl_e_acc(ar, acc));
    k->out = kl_lower_buffer(L, yv);
    k->out_idx = kl_lower_ivs(L, ry);
    kl_program_add_kernel(L->prog, k);
    return true;
}

static bool lower_matmul(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_matmul_nest(L, n, MM_PLAIN);
}

static bool lower_matmul_integer(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_matmul_nest(L, n, MM_INTEGER);
}

static bool lower_qlinear_matmul(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_matmul_nest(L, n, MM_QLINEAR);
}

/* ---- Gemm ------------------------------------------------------------------------------ */

static bool infer_gemm(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_value *a = n->inputs[0], *b = n->inputs[1], *c = kl_node_input(n, 2);
    if (!is_matmul_type(a->dtype))
        return kl_error(d, n, "Gemm does not take %s", kl_dtype_name(a->dtype));
    if (b->dtype != a->dtype || (c && c->dtype != a->dtype))
        return kl_error(d, n, "A, B and C must have one type (A is %s)", kl_dtype_name(a->dtype));
    if (a->shape.rank != 2 || b->shape.rank != 2)
        return kl_error(d, n, "A and B must be 2-D (ranks %d and %d)", a->shape.rank,
                        b->shape.rank);
    bool ta = kl_attr_int(n, "transA", 0) != 0, tb = kl_attr_int(n, "transB", 0) != 0;
    int64_t m = a->shape.dim[ta ? 1 : 0], ka = a->shape.dim[ta ? 0 : 1];
    int64_t kb = b->shape.dim[tb ? 1 : 0], nn = b->shape.dim[tb ? 0 : 1];
    if (ka != kb)
        return kl_error(d, n, "inner dimensions differ: A gives K = %lld, B gives K = %lld",
                        (long long)ka, (long long)kb);
    if (!c && n->opset < 11) return kl_error(d, n, "input C is required before opset 11");
    kl_shape y = {.rank = 2, .dim = {m, nn}};
    if (c) {
        kl_shape bc;
        char text[160];
        bool exact = n->opset < 7 && !kl_attr_int(n, "broadcast", 0);
        if (c->shape.rank > 2 || !kl_shape_broadcast(&c->shape, &y, &bc) ||
            !kl_shape_equal(&bc, &y) || (exact && !kl_shape_equal(&c->shape, &y)))
            return kl_error(d, n, "C of shape %s cannot be broadcast to [%lld,%lld]",
                            shape_text(&c->shape, text, sizeof text), (long long)m,
                            (long long)nn);
    }
    return kl_infer_set(n, 0, a->dtype, &y);
}

static bool lower_gemm(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *ar = L->arena;
    kl_value *av = n->inputs[0], *bv = n->inputs[1], *cv = kl_node_input(n, 2);
    kl_value *yv = n->outputs[0];
    bool ta = kl_attr_int(n, "transA", 0) != 0, tb = kl_attr_int(n, "transB", 0) != 0;
    double alpha = kl_attr_float(n, "alpha", 1.0), beta = kl_attr_float(n, "beta", 1.0);
    kl_dtype t = yv->dtype, acc = acc_dtype_for(t);

    kl_kernel *k = kl_kernel_new(L->prog, n, "gemm");
    k->n_par = 2;
    k->n_loops = 3;
    k->extent[0] = yv->shape.dim[0];
    k->extent[1] = yv->shape.dim[1];
    k->extent[2] = av->shape.dim[ta ? 0 : 1];
    kl_expr *m = kl_e_iv(ar, 0), *nn = kl_e_iv(ar, 1), *kk = kl_e_iv(ar, 2);

    kl_expr *ai[2] = {ta ? kk : m, ta ? m : kk};
    kl_expr *bi[2] = {tb ? nn : kk, tb ? kk : nn};
    kl_buffer *b;
    if (!tb && transpose_pays(bv)) {
        b = transposed_const(L, bv);
        bi[0] = nn;
        bi[1] = kk;
    } else {
        b = kl_lower_buffer(L, bv);
    }
    kl_expr *ae = kl_e_cast(ar, acc, kl_e_load(ar, kl_lower_buffer(L, av), ai));
    k->value = kl_e_binary(ar, KL_MUL, ae, kl_e_cast(ar, acc, kl_e_load(ar, b, bi)));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = acc;

    kl_expr *r = kl_e_acc(ar, acc);
    if (alpha != 1.0) r = kl_e_binary(ar, KL_MUL, r, const_of(ar, acc, alpha));
    if (cv && beta != 0.0) {
        kl_expr *c = kl_e_cast(ar, acc, kl_lower_load_broadcast(L, kl_lower_buffer(L, cv), 2));
        if (beta != 1.0) c = kl_e_binary(ar, KL_MUL, c, const_of(ar, acc, beta));
        r = kl_e_binary(ar, KL_ADD, r, c);
    }
    k->result = kl_e_cast(ar, t, r);
    k->out = kl_lower_buffer(L, yv);
    k->out_idx = kl_lower_ivs(L, 2);
    kl_program_add_kernel(L->prog, k);
    return true;
}

/* ---- the table -------------------------------------------------------------------------- */

static const char *const no_attrs[] = {NULL};
static const char *const gemm_attrs[] = {"alpha", "beta", "transA", "transB", "broadcast", NULL};

const kl_op kl_ops_matmul[] = {
    {"", "MatMul", 1, KL_OPSET_LATEST, no_attrs, infer_matmul, lower_matmul},
    {"", "MatMulInteger", 10, KL_OPSET_LATEST, no_attrs, infer_matmul_integer,
     lower_matmul_integer},
    {"", "QLinearMatMul", 10, KL_OPSET_LATEST, no_attrs, infer_qlinear_matmul,
     lower_qlinear_matmul},
    {"", "Gemm", 1, KL_OPSET_LATEST, gemm_attrs, infer_gemm, lower_gemm},
    {0},
};
