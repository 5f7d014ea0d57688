/*
 * quant.h — requantization shared by QLinearMatMul and QLinearConv (ops-B family).
 *
 * Both compute an int32 sum of zero-point-shifted products and turn it back into 8-bit values:
 *     y = saturate(round_half_even(acc * (scale_in * scale_w / scale_y) + zero_point_y))
 * The scale factor is computed in the scales' own type (float16 scales round like float16, as
 * the reference does), the rest in float64, which is exact for an int32 accumulator and matches
 * numpy's promotion of int32 * float.
 */
#ifndef KIL_OPS_QUANT_H
#define KIL_OPS_QUANT_H
#include "kl.h"

/* A scalar (or per-channel, indexed by `along`) tensor value as an expression of its own type. */
static inline kl_expr *kl_quant_param(kl_lower *L, kl_value *v, kl_expr *along) {
    kl_buffer *b = kl_lower_buffer(L, v);
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < b->shape.rank; i++)
        idx[i] = (b->shape.dim[i] == 1 || !along) ? kl_e_idx(L->arena, 0) : along;
    return kl_e_load(L->arena, b, idx);
}

static inline kl_expr *kl_requantize(kl_arena *a, kl_expr *acc, kl_expr *s_in, kl_expr *s_w,
                                     kl_expr *s_y, kl_expr *zp_y, kl_dtype out) {
    kl_expr *factor = kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_MUL, s_in, s_w), s_y);
    kl_expr *r = kl_e_binary(a, KL_MUL, kl_e_cast(a, KL_F64, acc), kl_e_cast(a, KL_F64, factor));
    if (zp_y) r = kl_e_binary(a, KL_ADD, r, kl_e_cast(a, KL_F64, zp_y));
    r = kl_e_unary(a, KL_ROUND, r);
    double lo = out == KL_I8 ? -128.0 : 0.0, hi = out == KL_I8 ? 127.0 : 255.0;
    r = kl_e_binary(a, KL_MIN, r, kl_e_const_f(a, KL_F64, hi));
    r = kl_e_binary(a, KL_MAX, r, kl_e_const_f(a, KL_F64, lo));
    return kl_e_cast(a, out, r);
}

/* Scales must be float scalars (or 1-D per channel where allowed); one float type for all. */
static inline bool kl_quant_check_scale(kl_node *n, int i, int64_t per_channel, kl_diag *d) {
    const kl_value *s = kl_node_input(n, i);
    if (!s) return kl_error(d, n, "scale input %d is required", i);
    if (!kl_dtype_is_float(s->dtype))
        return kl_error(d, n, "scale input %d is %s, expected a float type", i,
                        kl_dtype_name(s->dtype));
    if (s->dtype != n->inputs[1]->dtype)
        return kl_error(d, n, "scale input %d is %s but input 1 is %s", i,
                        kl_dtype_name(s->dtype), kl_dtype_name(n->inputs[1]->dtype));
    if (kl_shape_numel(&s->shape) == 1) return true;
    if (per_channel > 0 && s->shape.rank == 1 && s->shape.dim[0] == per_channel) return true;
    return kl_error(d, n, "scale input %d must be a scalar%s", i,
                    per_channel > 0 ? " or 1-D per channel" : "");
}

#endif
