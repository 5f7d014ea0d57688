/*
 * attention_util.h — what the attention operators (attention.c: Attention, FlexAttention;
 * linear_attention.c: LinearAttention) share: reading one head of a tensor whose heads are
 * either a dimension of their own or packed into the last one.
 *
 * ONNX's attention operators take Q, K, V either 4-D [B, heads, len, size] or 3-D "packed"
 * [B, len, heads * size]; the reshape and transpose between the two are index arithmetic, so
 * no operator copies its inputs into the other layout.
 * Header-only (static inline), like arith_util.h.
 */
#ifndef KIL_ATTENTION_UTIL_H
#define KIL_ATTENTION_UTIL_H

#include "arith_util.h"

/* Element [b, h, s, e] of x, a [B, heads, len, size] tensor stored 4-D or (packed) as 3-D
 * [B, len, heads * size]. */
static inline kl_expr *kl_heads_at(kl_arena *a, kl_buffer *x, bool packed, int64_t size,
                                   kl_expr *b, kl_expr *h, kl_expr *s, kl_expr *e) {
    if (!packed) return kl_e_load(a, x, (kl_expr *[]){b, h, s, e});
    return kl_e_load(a, x, (kl_expr *[]){b, s, kl_e_add(a, kl_e_mulc(a, h, size), e)});
}

/* The key/value head that query head h reads when `group` query heads share one (grouped-query
 * attention: h / group). */
static inline kl_expr *kl_heads_kv_of(kl_arena *a, kl_expr *h, int64_t group) {
    return group == 1 ? h : kl_e_binary(a, KL_DIV, h, kl_e_idx(a, group));
}

#endif
