/*
 * conv_nest.h — the loop nest of a convolution, shared by conv.c and conv_variants.c.
 */
#ifndef KIL_CONV_NEST_H
#define KIL_CONV_NEST_H
#include "ops.h"
#include "window.h"

/* The order of a convolution nest's loops (parallel | reduction). */
typedef enum kl_conv_order {
    KL_CONV_IC_FIRST, /* n, g, mg, o.. | ic, k..   the direct nest over [N, C, D..] */
    KL_CONV_IC_LAST,  /* n, g, mg, o.. | k.., ic   over channels-last copies of X and W */
    KL_CONV_NHWC,     /* n, o.., g, mg | k.., ic   X and Y channels-last (ConvNHWC): the output
                         channel is the innermost parallel loop, as it is Y's contiguous dim */
} kl_conv_order;

/* The loop variables of a convolution nest (NULL-free: extent-1 loops are constant 0). */
typedef struct kl_conv_loops {
    kl_expr *n, *g, *mg, *out_ch, *in_ch, *ic;
    kl_expr *o[KL_MAX_RANK], *k[KL_MAX_RANK];
    kl_layout out_layout; /* how kl_conv_store indexes Y */
} kl_conv_loops;

/* float16/bfloat16 sums drift quickly: they accumulate in float32. */
kl_dtype kl_conv_acc_dtype(kl_dtype t);
/* X [N, C, D...], W (input w_at) [M, C/group, k...] -> Y [N, M, out...] of out_type (X and Y
 * [N, D..., C] and [N, out..., M] in the channels-last layout). */
bool kl_conv_infer_shape(kl_node *n, int w_at, kl_dtype out_type, kl_layout layout, kl_diag *d);
/* Loops of a convolution-shaped nest (see conv.c). */
void kl_conv_make_loops(kl_lower *L, kl_kernel *k, int64_t batch, int64_t group, int64_t mg,
                        int64_t cg, const kl_window *w, const int64_t *out_sp,
                        kl_conv_order order, kl_conv_loops *lp);
/* A sum over the reduction loops in `acc`, starting from bias[channel] when there is a bias. */
void kl_conv_sum_from_bias(kl_lower *L, kl_kernel *k, kl_dtype acc, kl_value *bias,
                           kl_expr *channel);
/* out[n, out_ch, o...] (or out[n, o..., out_ch] for KL_CONV_NHWC) as the kernel's store
 * index. */
void kl_conv_store(kl_lower *L, kl_kernel *k, kl_buffer *y, const kl_conv_loops *lp, int nsp);

#endif
