/*
 * quantize.c — QuantizeLinear, DequantizeLinear (opset 10 and later), DynamicQuantizeLinear (11).
 *
 *     QuantizeLinear:   y = saturate(round_half_even(x / scale) + zero_point)
 *     DequantizeLinear: y = (x - zero_point) * scale
 * each one elementwise kernel. Scale and zero point are per tensor (one element), per axis
 * (1-D along `axis`) or blocked (opset 21: X's shape with `axis` divided into blocks of
 * block_size, so element i reads parameter i / block_size). Quantized types: the 2-, 4-, 8-,
 * 16- (and, for DequantizeLinear, 32-) bit integers, rounded half to even and clamped to
 * their range; float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz) and float4e2m1, where
 * saturate(...) is the Cast to that type with the `saturate` attribute (float4e2m1 always
 * saturates) and there is no integer rounding. Zero points are added / subtracted for every
 * type as the formulas say (ONNX requires them to be 0 for float8; its reference ignores them
 * for float8 and, in DequantizeLinear, for float4e2m1). DynamicQuantizeLinear derives a uint8 scale and zero point from the
 * tensor's range (which always includes 0): two reductions, then the same quantization.
 */
#include <string.h>

#include "arith_util.h"

static const char *const q_attrs[] = {"axis", "block_size", "output_dtype", "saturate",
                                      "precision", NULL};
static const char *const no_attrs[] = {NULL};

static bool quant_int_range(kl_dtype t, double *lo, double *hi) {
    switch (t) {
    case KL_U8: *lo = 0, *hi = 255; return true;
    case KL_I8: *lo = -128, *hi = 127; return true;
    case KL_U16: *lo = 0, *hi = 65535; return true;
    case KL_I16: *lo = -32768, *hi = 32767; return true;
    case KL_U4: *lo = 0, *hi = 15; return true;
    case KL_I4: *lo = -8, *hi = 7; return true;
    case KL_U2: *lo = 0, *hi = 3; return true;
    case KL_I2: *lo = -2, *hi = 1; return true;
    default: return false;
    }
}

/* The float types QuantizeLinear produces and DequantizeLinear reads (not float8e8m0). */
static bool quant_float(kl_dtype t) { return kl_dtype_is_minifloat(t) && t != KL_F8E8M0; }

/* How a scale or zero point (input i) maps onto X: sets *axis (-1: one value for all). */
static bool param_layout(kl_node *n, int i, int *axis, int64_t *block, kl_diag *d) {
    const kl_shape *x = &n->inputs[0]->shape, *p = &n->inputs[i]->shape;
    *axis = -1;
    *block = kl_attr_int(n, "block_size", 0);
    if (kl_shape_numel(p) == 1 && p->rank <= 1) return true;
    int64_t given = kl_attr_int(n, "axis", 1);
    if (!kl_axis_normalize(given, x->rank, axis))
        return kl_error(d, n, "axis %lld is out of range for rank %d", (long long)given, x->rank);
    if (*block <= 0) {
        *block = 0;
        if (p->rank != 1 || p->dim[0] != x->dim[*axis])
            return kl_error(d, n, "input %d must be a scalar or 1-D of X's dimension %d (%lld)", i,
                            *axis, (long long)x->dim[*axis]);
        return true;
    }
    bool fits = p->rank == x->rank;
    for (int k = 0; fits && k < x->rank; k++)
        fits = k == *axis ? p->dim[k] == x->dim[k] / *block + (x->dim[k] % *block != 0)
                          : p->dim[k] == x->dim[k]; /* block_size may be near INT64_MAX */
    if (!fits)
        return kl_error(d, n, "input %d must have X's shape with dimension %d in blocks of %lld",
                        i, *axis, (long long)*block);
    return true;
}

/* The parameter (input i) for the element at loops 0..rank-1, in its own type. */
static kl_expr *param_at(kl_lower *L, kl_node *n, int i, int axis, int64_t block) {
    kl_arena *a = L->arena;
    kl_buffer *b = kl_lower_buffer(L, n->inputs[i]);
    kl_expr *idx[KL_MAX_RANK];
    for (int k = 0; k < b->shape.rank; k++) {
        if (axis < 0) idx[k] = kl_e_idx(a, 0);
        else if (!block) idx[k] = kl_e_iv(a, axis);
        else if (k == axis) idx[k] = kl_e_binary(a, KL_DIV, kl_e_iv(a, k), kl_e_idx(a, block));
        else idx[k] = kl_e_iv(a, k);
    }
    return kl_e_load(a, b, idx);
}

/* Scale (input 1) and, if present, zero point (input 2) fit X; the zero point has type zt. */
static bool check_params(kl_node *n, kl_dtype zt, kl_diag *d) {
    int axis;
    int64_t block;
    if (!kl_arith_need_float(n, 1, d) || !param_layout(n, 1, &axis, &block, d)) return false;
    kl_value *z = kl_node_input(n, 2);
    if (!z) return true;
    if (!kl_infer_need_input(n, 2, d) || !param_layout(n, 2, &axis, &block, d)) return false;
    if (z->dtype != zt)
        return kl_error(d, n, "zero point is %s, expected %s", kl_dtype_name(z->dtype),
                        kl_dtype_name(zt));
    if (!kl_shape_equal(&z->shape, &n->inputs[1]->shape) &&
        kl_shape_numel(&z->shape) != kl_shape_numel(&n->inputs[1]->shape))
        return kl_error(d, n, "zero point and scale must have the same shape");
    return true;
}

/* QuantizeLinear's output type: the zero point's, else output_dtype, else uint8. */
static bool quantize_type(kl_node *n, kl_dtype *t, kl_diag *d) {
    kl_value *z = kl_node_input(n, 2);
    int64_t attr = kl_attr_int(n, "output_dtype", 0);
    *t = z ? z->dtype : attr ? (kl_dtype)attr : KL_U8;
    if (z && attr && (kl_dtype)attr != z->dtype)
        return kl_error(d, n, "output_dtype (%lld) differs from the zero point's type %s",
                        (long long)attr, kl_dtype_name(z->dtype));
    double lo, hi;
    if (!quant_int_range(*t, &lo, &hi) && !quant_float(*t))
        return kl_error(d, n, "quantizing to %s is not supported (kiln holds 2-, 4-, 8- and "
                        "16-bit integers, float8 and float4e2m1 quantized values)",
                        kl_dtype_name(*t));
    return true;
}

static bool infer_quantize(kl_node *n, kl_diag *d) {
    kl_dtype t;
    if (!kl_arith_need_float(n, 0, d) || !quantize_type(n, &t, d) || !check_params(n, t, d))
        return false;
    return kl_infer_set(n, 0, t, &n->inputs[0]->shape);
}

/* saturate(round_half_even(q) + zp) into t, the rounding in q's type, the rest in float64 */
static kl_expr *saturate_round(kl_arena *a, kl_expr *q, kl_expr *zp, kl_dtype t) {
    double lo = 0, hi = 0;
    quant_int_range(t, &lo, &hi);
    kl_expr *r = kl_e_cast(a, KL_F64, kl_e_unary(a, KL_ROUND, q));
    if (zp) r = kl_e_binary(a, KL_ADD, r, kl_e_cast(a, KL_F64, zp));
    r = kl_e_binary(a, KL_MAX, kl_e_binary(a, KL_MIN, r, kl_e_const_f(a, KL_F64, hi)),
                    kl_e_const_f(a, KL_F64, lo));
    return kl_e_cast(a, t, r);
}

/* saturate(q + zp) into a float8 / float4 type t: the Cast with the node's `saturate` */
static kl_expr *saturate_float(kl_lower *L, kl_node *n, kl_expr *q, kl_expr *zp, kl_dtype t) {
    kl_arena *a = L->arena;
    if (zp) q = kl_e_binary(a, KL_ADD, q, kl_e_cast(a, q->dtype, zp));
    kl_expr *r = kl_e_cast(a, t, q);
    if (r->kind == KL_E_CAST && !kl_attr_int(n, "saturate", 1)) r->op = KL_CAST_NO_SATURATE;
    return r;
}

static bool lower_quantize(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_dtype t;
    int axis;
    int64_t block;
    if (!quantize_type(n, &t, d) || !param_layout(n, 1, &axis, &block, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    /* the division runs in `precision` when given (opset 23), else in X's computing type */
    int64_t prec = kl_attr_int(n, "precision", 0);
    kl_dtype u = prec ? kl_arith_compute_dtype((kl_dtype)prec)
                      : kl_arith_compute_dtype(x->dtype);
    if (!kl_dtype_is_float(u)) return kl_error(d, n, "precision must be a float type");
    kl_expr *xv = kl_e_cast(a, u, kl_e_load(a, x, kl_lower_ivs(L, x->shape.rank)));
    kl_expr *s = kl_e_cast(a, u, param_at(L, n, 1, axis, block));
    kl_expr *zp = kl_node_input(n, 2) ? param_at(L, n, 2, axis, block) : NULL;
    kl_expr *q = kl_e_binary(a, KL_DIV, xv, s);
    int64_t saturate = kl_attr_int(n, "saturate", 1);
    if (saturate != 0 && saturate != 1)
        return kl_error(d, n, "saturate must be 0 or 1, not %lld", (long long)saturate);
    kl_arith_map(L, n, NULL, out, quant_float(t) ? saturate_float(L, n, q, zp, t)
                                                 : saturate_round(a, q, zp, t));
    return true;
}

static bool infer_dequantize(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    kl_dtype t = n->inputs[0]->dtype;
    double lo, hi;
    if (!quant_int_range(t, &lo, &hi) && t != KL_I32 && !quant_float(t))
        return kl_error(d, n, "dequantizing %s is not supported (kiln holds 2-, 4-, 8-, 16- and "
                        "32-bit integers, float8 and float4e2m1 quantized values)",
                        kl_dtype_name(t));
    if (!check_params(n, t, d)) return false;
    kl_dtype out = n->inputs[1]->dtype;
    int64_t attr = kl_attr_int(n, "output_dtype", 0);
    if (attr && (kl_dtype)attr != out)
        return kl_error(d, n, "output_dtype (%lld) differs from the scale's type %s",
                        (long long)attr, kl_dtype_name(out));
    return kl_infer_set(n, 0, out, &n->inputs[0]->shape);
}

static bool lower_dequantize(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    int axis;
    int64_t block;
    if (!param_layout(n, 1, &axis, &block, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = kl_arith_compute_dtype(out->dtype);
    kl_expr *v = kl_e_cast(a, u, kl_e_load(a, x, kl_lower_ivs(L, x->shape.rank)));
    if (kl_node_input(n, 2))
        v = kl_e_binary(a, KL_SUB, v, kl_e_cast(a, u, param_at(L, n, 2, axis, block)));
    v = kl_e_binary(a, KL_MUL, v, kl_e_cast(a, u, param_at(L, n, 1, axis, block)));
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, out->dtype, v));
    return true;
}

/* ---- DynamicQuantizeLinear ---- */

static bool infer_dynamic_quantize(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    if (n->inputs[0]->dtype != KL_F32)
        return kl_error(d, n, "X must be float32, not %s", kl_dtype_name(n->inputs[0]->dtype));
    kl_shape scalar = {.rank = 0};
    if (!kl_infer_set(n, 0, KL_U8, &n->inputs[0]->shape)) return false;
    if (n->n_outputs > 1 && n->outputs[1] && !kl_infer_set(n, 1, KL_F32, &scalar)) return false;
    if (n->n_outputs > 2 && n->outputs[2] && !kl_infer_set(n, 2, KL_U8, &scalar)) return false;
    return true;
}

/* The minimum or maximum of all of x, into a scalar. */
static kl_buffer *extreme(kl_lower *L, kl_node *n, kl_buffer *x, kl_reduce red) {
    bool reduced[KL_MAX_RANK];
    for (int i = 0; i < KL_MAX_RANK; i++) reduced[i] = true;
    kl_shape s = {.rank = 0};
    kl_buffer *b = kl_lower_temp(L, red == KL_RED_MAX ? "max" : "min", x->dtype, &s);
    kl_program_add_kernel(L->prog, kl_arith_reduce(L, n, red == KL_RED_MAX ? "max" : "min", x,
                                                   reduced, b, red));
    return b;
}

static kl_buffer *scalar_output(kl_lower *L, kl_node *n, int i, const char *name, kl_dtype t) {
    kl_shape s = {.rank = 0};
    kl_value *v = kl_node_output(n, i);
    return v ? kl_lower_buffer(L, v) : kl_lower_temp(L, name, t, &s);
}

/* scale = (max(0, max x) - min(0, min x)) / 255, zero point = saturate(round(-min / scale)),
 * y = saturate(round(x / scale) + zero point), as the ONNX reference computes them (float32). */
static bool lower_dynamic_quantize(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *lo = extreme(L, n, x, KL_RED_MIN), *hi = extreme(L, n, x, KL_RED_MAX);
    kl_expr *zero = kl_e_const_f(a, KL_F32, 0);
    kl_expr *mn = kl_e_binary(a, KL_MIN, kl_e_load(a, lo, NULL), zero);
    kl_expr *mx = kl_e_binary(a, KL_MAX, kl_e_load(a, hi, NULL), zero);
    kl_buffer *scale = scalar_output(L, n, 1, "scale", KL_F32);
    kl_buffer *zp = scalar_output(L, n, 2, "zero_point", KL_U8);
    kl_arith_map(L, n, "scale", scale,
                 kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_SUB, mx, mn),
                             kl_e_const_f(a, KL_F32, 255)));
    kl_expr *s = kl_e_load(a, scale, NULL);
    kl_expr *z = kl_e_binary(a, KL_SUB, zero, kl_e_binary(a, KL_DIV, mn, s));
    kl_arith_map(L, n, "zero_point", zp, saturate_round(a, z, NULL, KL_U8));
    kl_expr *xv = kl_e_load(a, x, kl_lower_ivs(L, x->shape.rank));
    kl_arith_map(L, n, NULL, kl_lower_buffer(L, n->outputs[0]),
                 saturate_round(a, kl_e_binary(a, KL_DIV, xv, kl_e_load(a, scale, NULL)),
                                kl_e_load(a, zp, NULL), KL_U8));
    return true;
}

const kl_op kl_ops_quantize[] = {
    {"", "QuantizeLinear", 10, KL_OPSET_LATEST, q_attrs, infer_quantize, lower_quantize},
    {"", "DequantizeLinear", 10, KL_OPSET_LATEST, q_attrs, infer_dequantize, lower_dequantize},
    {"", "DynamicQuantizeLinear", 11, KL_OPSET_LATEST, no_attrs, infer_dynamic_quantize,
     lower_dynamic_quantize},
    {0},
};
