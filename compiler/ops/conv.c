/*
 * conv.c — Conv, ConvInteger, QLinearConv: sliding-window convolutions (conv_variants.c has the
 * others).
 *
 * Conv with constant weights (every exported model) lowers to two kernels, "channels-last":
 * a copy of X into a workspace buffer laid out [n, spatial.., c] with the padding written as
 * zeros, then the convolution reading that copy and a compile-time copy of W laid out
 * [m, taps.., ic]: parallel loops over the output [n, (group,) channel, spatial..], reduction
 * over the taps then the channels, so the innermost loop walks both operands contiguously with
 * no padding select, and the back end vectorizes it. Without groups the last dim's taps and the
 * channels merge into one loop (details at lower_conv_channels_last).
 *
 * With few input channels (C = 3 in a first layer) the patches are instead unrolled (im2col)
 * when that copy stays within a few times the output's size, so the reduction is one long
 * contiguous loop.
 *
 * The direct form of DESIGN.md (reduction ic, k1..kk over X in place, padding as a select
 * around the load, only in dims where some window reaches outside the input) remains for
 * depthwise convolutions (one channel per group: nothing to make contiguous), weights computed
 * at run time, and the integer forms. Groups get their own loop (out channel =
 * g*Mg + mg, in channel = g*Cg + ic) rather than a division, so every index stays affine; loops
 * of extent 1 are left out. The bias is the accumulator's start in both forms.
 *
 * kiln.ConvNHWC (domain "kiln", made by passes/layout.c) is Conv with X and Y channels-last,
 * [N, D.., C] and [N, out.., M], W as in Conv. It lowers to the direct nest alone, in the order
 * n, out.., g, mg | taps.., ic: no copies, the output channel innermost among the parallel loops
 * and the input channel innermost in the reduction, both contiguous, which is what the kernel
 * passes vectorize and block.
 *
 * ConvInteger is the same nest over zero-point-shifted int32 values: a padded position reads 0
 * after the shift, which is what padding with x_zero_point means. QLinearConv adds an int32 bias
 * and requantizes the sum in the kernel's result (quant.h).

 */
#include <string.h>

#include "ops.h"
#include "conv_nest.h"
#include "quant.h"
#include "window.h"

/* float16/bfloat16 sums drift quickly: accumulate them in float32. */
kl_dtype kl_conv_acc_dtype(kl_dtype t) {
    return (t == KL_F16 || t == KL_BF16) ? KL_F32 : t;
}

static bool is_float(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16;
}

static bool is_8bit(kl_dtype t) { return t == KL_U8 || t == KL_I8; }

/* ---- shape inference ------------------------------------------------------------------ */

/* Conv and its integer forms: X [N, C, D...], W (input w_at) [M, C/group, k...] ->
 * Y [N, M, out...]; channels-last (ConvNHWC): X [N, D..., C] -> Y [N, out..., M]. */
bool kl_conv_infer_shape(kl_node *n, int w_at, kl_dtype out_type, kl_layout layout, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, w_at, d)) return false;
    const kl_value *x = n->inputs[0], *w = n->inputs[w_at];
    if (w->shape.rank != x->shape.rank)
        return kl_error(d, n, "W has rank %d but X has rank %d", w->shape.rank, x->shape.rank);
    if (x->shape.rank < 3)
        return kl_error(d, n, "input X has rank %d; expected rank >= 3", x->shape.rank);
    int64_t group = kl_attr_int(n, "group", 1);
    if (group < 1) return kl_error(d, n, "group = %lld must be >= 1", (long long)group);
    if (group > KL_MAX_BYTES) /* it becomes a loop extent even where the tensors are empty */
        return kl_error(d, n, "group = %lld is out of range", (long long)group);
    int c_axis = kl_layout_channel_axis(layout, x->shape.rank);
    int64_t c = x->shape.dim[c_axis], m = w->shape.dim[0], wc;
    /* group is the model's number: the product may overflow before it can disagree */
    if (!kl_mul_checked(w->shape.dim[1], group, &wc) || wc != c)
        return kl_error(d, n, "X has %lld channels but W expects %lld x group %lld",
                        (long long)c, (long long)w->shape.dim[1], (long long)group);
    if (m % group != 0)
        return kl_error(d, n, "W has %lld output channels, not a multiple of group %lld",
                        (long long)m, (long long)group);
    kl_window win;
    if (!kl_window_resolve(n, &x->shape, layout, w->shape.dim + 2, false, &win, d)) return false;
    kl_shape y = {.rank = x->shape.rank};
    y.dim[0] = x->shape.dim[0];
    y.dim[c_axis] = m;
    for (int i = 0; i < win.nsp; i++) y.dim[kl_layout_spatial_axis(layout, i)] = win.out[i];
    return kl_infer_set(n, 0, out_type, &y);
}

static bool infer_conv_in(kl_node *n, kl_layout layout, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    kl_dtype t = n->inputs[0]->dtype;
    if (!is_float(t)) return kl_error(d, n, "X has type %s; Conv takes floats", kl_dtype_name(t));
    if (n->inputs[1]->dtype != t)
        return kl_error(d, n, "W has type %s but X has %s", kl_dtype_name(n->inputs[1]->dtype),
                        kl_dtype_name(t));
    const kl_value *b = kl_node_input(n, 2);
    if (b && (b->dtype != t || b->shape.rank != 1 || b->shape.dim[0] != n->inputs[1]->shape.dim[0]))
        return kl_error(d, n, "bias B must be %s [%lld]", kl_dtype_name(t),
                        (long long)n->inputs[1]->shape.dim[0]);
    return kl_conv_infer_shape(n, 1, t, layout, d);
}

static bool infer_conv(kl_node *n, kl_diag *d) { return infer_conv_in(n, KL_LAYOUT_NCHW, d); }
static bool infer_conv_nhwc(kl_node *n, kl_diag *d) { return infer_conv_in(n, KL_LAYOUT_NHWC, d); }

static bool infer_conv_integer(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    if (!is_8bit(n->inputs[0]->dtype) || !is_8bit(n->inputs[1]->dtype))
        return kl_error(d, n, "X and W must be int8 or uint8 (got %s and %s)",
                        kl_dtype_name(n->inputs[0]->dtype), kl_dtype_name(n->inputs[1]->dtype));
    const kl_value *xz = kl_node_input(n, 2), *wz = kl_node_input(n, 3);
    if (xz && (xz->dtype != n->inputs[0]->dtype || kl_shape_numel(&xz->shape) != 1))
        return kl_error(d, n, "x_zero_point must be a scalar of X's type");
    if (wz && (wz->dtype != n->inputs[1]->dtype ||
               (kl_shape_numel(&wz->shape) != 1 &&
                (wz->shape.rank != 1 || wz->shape.dim[0] != n->inputs[1]->shape.dim[0]))))
        return kl_error(d, n, "w_zero_point must be a scalar or [M] of W's type");
    return kl_conv_infer_shape(n, 1, KL_I32, KL_LAYOUT_NCHW, d);
}

/* QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B. */
static bool infer_qlinear_conv(kl_node *n, kl_diag *d) {
    for (int i = 0; i < 8; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    const kl_value *x = n->inputs[0], *w = n->inputs[3], *yz = n->inputs[7];
    const kl_value *xz = n->inputs[2], *wz = n->inputs[5], *b = kl_node_input(n, 8);
    int64_t m = w->shape.dim[0];
    if (!is_8bit(x->dtype) || !is_8bit(w->dtype) || !is_8bit(yz->dtype))
        return kl_error(d, n, "x, w and y_zero_point must be int8 or uint8 (got %s, %s, %s)",
                        kl_dtype_name(x->dtype), kl_dtype_name(w->dtype),
                        kl_dtype_name(yz->dtype));
    if (xz->dtype != x->dtype || kl_shape_numel(&xz->shape) != 1 ||
        kl_shape_numel(&yz->shape) != 1)
        return kl_error(d, n, "x_zero_point and y_zero_point must be scalars of their tensors' "
                              "types");
    if (wz->dtype != w->dtype ||
        (kl_shape_numel(&wz->shape) != 1 && (wz->shape.rank != 1 || wz->shape.dim[0] != m)))
        return kl_error(d, n, "w_zero_point must be a scalar or [M] of w's type");
    if (b && (b->dtype != KL_I32 || b->shape.rank != 1 || b->shape.dim[0] != m))
        return kl_error(d, n, "bias B must be int32 [%lld]", (long long)m);
    if (!kl_quant_check_scale(n, 1, 0, d) || !kl_quant_check_scale(n, 4, m, d) ||
        !kl_quant_check_scale(n, 6, 0, d))
        return false;
    return kl_conv_infer_shape(n, 3, yz->dtype, KL_LAYOUT_NCHW, d);
}

/* ---- Conv / ConvInteger lowering ------------------------------------------------------- */

/* Add a loop of `extent` to k, or return constant 0 when a loop of one iteration is not worth
 * having (`keep` forces it, e.g. to keep the output's loops in one-to-one correspondence). */
static kl_expr *add_loop(kl_lower *L, kl_kernel *k, int64_t extent, bool keep) {
    if (extent == 1 && !keep) return kl_e_idx(L->arena, 0);
    k->extent[k->n_loops] = extent;
    return kl_e_iv(L->arena, k->n_loops++);
}

/*
 * Loops of a convolution-shaped nest with `group` groups of `cg` input and `mg` output
 * channels, in the given order (conv_nest.h). Channels are addressed as g*mg_count + mg (out)
 * and g*cg + ic (in), so every index stays affine.
 */
void kl_conv_make_loops(kl_lower *L, kl_kernel *k, int64_t batch, int64_t group, int64_t mg,
                        int64_t cg, const kl_window *w, const int64_t *out_sp,
                        kl_conv_order order, kl_conv_loops *lp) {
    kl_arena *a = L->arena;
    bool nhwc = order == KL_CONV_NHWC;
    lp->out_layout = nhwc ? KL_LAYOUT_NHWC : KL_LAYOUT_NCHW;
    lp->n = add_loop(L, k, batch, true);
    if (nhwc)
        for (int i = 0; i < w->nsp; i++) lp->o[i] = add_loop(L, k, out_sp[i], true);
    lp->g = add_loop(L, k, group, false);
    lp->mg = add_loop(L, k, mg, group == 1);
    if (!nhwc)
        for (int i = 0; i < w->nsp; i++) lp->o[i] = add_loop(L, k, out_sp[i], true);
    k->n_par = k->n_loops;
    if (order == KL_CONV_IC_FIRST) lp->ic = add_loop(L, k, cg, true);
    for (int i = 0; i < w->nsp; i++) lp->k[i] = add_loop(L, k, w->kernel[i], false);
    if (order != KL_CONV_IC_FIRST) lp->ic = add_loop(L, k, cg, true);
    lp->out_ch = kl_e_add(a, kl_e_mulc(a, lp->g, mg), lp->mg);
    lp->in_ch = kl_e_add(a, kl_e_mulc(a, lp->g, cg), lp->ic);
}

/* out[n, out_ch, o...] (out[n, o..., out_ch] channels-last) as the kernel's store index. */
void kl_conv_store(kl_lower *L, kl_kernel *k, kl_buffer *y, const kl_conv_loops *lp, int nsp) {
    k->out = y;
    k->out_idx = kl_alloc_array(L->arena, (size_t)nsp + 2, sizeof *k->out_idx);
    k->out_idx[0] = lp->n;
    k->out_idx[kl_layout_channel_axis(lp->out_layout, nsp + 2)] = lp->out_ch;
    for (int i = 0; i < nsp; i++) k->out_idx[kl_layout_spatial_axis(lp->out_layout, i)] = lp->o[i];
}

/* A sum over the reduction loops in `acc`, starting from bias[channel] when there is a bias. */
void kl_conv_sum_from_bias(kl_lower *L, kl_kernel *k, kl_dtype acc, kl_value *bias,
                           kl_expr *channel) {
    k->reduce = KL_RED_SUM;
    k->acc_dtype = acc;
    if (bias)
        k->init = kl_e_cast(L->arena, acc, kl_e_load(L->arena, kl_lower_buffer(L, bias), &channel));
}

/* Scalar (or per-channel, indexed by `ch`) zero point converted to `t`; 0 when absent. */
static kl_expr *zero_point(kl_lower *L, kl_value *zp, kl_expr *ch, kl_dtype t) {
    if (!zp) return kl_e_const_i(L->arena, t, 0);
    kl_buffer *b = kl_lower_buffer(L, zp);
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < b->shape.rank; i++)
        idx[i] = (b->shape.dim[i] == 1 || !ch) ? kl_e_idx(L->arena, 0) : ch;
    return kl_e_cast(L->arena, t, kl_e_load(L->arena, b, idx));
}

/* ---- Conv, channels-last form ------------------------------------------------------------
 *
 * The direct nest reads X with stride H*W along ic and taps of a few elements along kw: its
 * reduction cannot use vector instructions, and padded convolutions pay a select (and a clamped
 * address) per tap. When W is a constant (always, in exported models) lowering instead emits
 *   1. a copy of X to a workspace buffer T[n, p1.., c] in channels-last order with the padding
 *      materialized as zeros (a pass over the input, small next to the convolution), and
 *   2. the convolution over T and a compile-time copy of W laid out [m, k1.., ic], reducing over
 *      taps then ic, so the innermost reduction walks both operands contiguously and has no
 *      select.
 */
/* Padded extent of spatial dim i: every input coordinate a window reads, from -pad_begin. */
static int64_t padded_extent(const kl_window *w, int i) {
    return (w->out[i] - 1) * w->stride[i] + kl_window_span(w, i);
}

/* Kernel 1: T[n, p.., c] = X[n, c, p - pad..] inside the input, else 0. */
static kl_buffer *pack_input_channels_last(kl_lower *L, const kl_node *n, kl_buffer *x,
                                           const kl_window *w) {
    kl_arena *a = L->arena;
    int nsp = w->nsp;
    kl_shape ts = {.rank = nsp + 2};
    ts.dim[0] = x->shape.dim[0];
    for (int i = 0; i < nsp; i++) ts.dim[i + 1] = padded_extent(w, i);
    ts.dim[nsp + 1] = x->shape.dim[1];
    kl_buffer *t = kl_lower_temp(L, kl_sprintf(a, "%s_packed", n->name), x->dtype, &ts);
    kl_kernel *k = kl_kernel_new(L->prog, n, "conv_pack");
    k->n_loops = k->n_par = ts.rank;
    for (int i = 0; i < ts.rank; i++) k->extent[i] = ts.dim[i];
    kl_expr *xi[KL_MAX_RANK], *inside = NULL;
    xi[0] = kl_e_iv(a, 0);
    xi[1] = kl_e_iv(a, nsp + 1);
    for (int i = 0; i < nsp; i++) {
        xi[i + 2] = kl_e_addc(a, kl_e_iv(a, i + 1), -w->pad_begin[i]);
        if (w->pad_begin[i] > 0 || ts.dim[i + 1] - w->pad_begin[i] > w->in[i])
            inside = kl_e_and(a, inside, kl_e_in_range(a, xi[i + 2], w->in[i]));
    }
    kl_expr *v = kl_e_load(a, x, xi);
    k->value = inside ? kl_e_select(a, inside, v, kl_e_const_f(a, x->dtype, 0.0)) : v;
    k->out = t;
    k->out_idx = kl_lower_ivs(L, ts.rank);
    kl_program_add_kernel(L->prog, k);
    return t;
}

/* Compile-time copy of constant W [M, Cg, k..] as [M, k.., Cg]. */
static kl_buffer *weights_channels_last(kl_lower *L, const kl_value *wv) {
    const kl_shape *s = &wv->shape;
    int64_t m = s->dim[0], cg = s->dim[1], taps = kl_shape_numel(s) / (m * cg);
    size_t es = kl_dtype_size(wv->dtype);
    unsigned char *dst = kl_alloc(L->arena, (size_t)kl_shape_numel(s) * es);
    const unsigned char *src = wv->data;
    for (int64_t o = 0; o < m; o++)
        for (int64_t c = 0; c < cg; c++)
            for (int64_t t = 0; t < taps; t++)
                memcpy(dst + ((o * taps + t) * cg + c) * es, src + ((o * cg + c) * taps + t) * es,
                       es);
    kl_shape ts = {.rank = s->rank};
    ts.dim[0] = m;
    for (int i = 2; i < s->rank; i++) ts.dim[i - 1] = s->dim[i];
    ts.dim[s->rank - 1] = cg;
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_cl", wv->name),
                                     KL_BUF_CONST, wv->dtype, &ts);
    b->data = dst;
    b->host = dst; /* readable by the interpreter during constant folding too */
    return b;
}

/*
 * Kernel 2. Without groups and with dilation 1 in the last spatial dim, the taps of that dim and
 * the channels are one contiguous run of k_last*C elements in T (and in the packed W): they
 * become a single reduction loop, read through a view of T whose last dim is P_last*C, which
 * gives the vectorizer a long loop even when C is small (3 in a network's first layer).
 */
static bool lower_conv_channels_last(kl_lower *L, kl_node *n, const kl_window *win) {
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *wv = n->inputs[1], *yv = n->outputs[0];
    int64_t group = kl_attr_int(n, "group", 1);
    int64_t mg = wv->shape.dim[0] / group, cg = wv->shape.dim[1];
    int nsp = win->nsp, last = nsp - 1;
    kl_dtype acc = kl_conv_acc_dtype(xv->dtype);
    kl_buffer *t = pack_input_channels_last(L, n, kl_lower_buffer(L, xv), win);
    kl_buffer *w = weights_channels_last(L, wv);
    bool merge = group == 1 && win->dilation[last] == 1;
    kl_window loops_win = *win;
    int64_t inner = cg;
    if (merge) {
        /* one loop j over (tap, channel) of the last dim: T[.., o*s*C + j], W[m, .., j] */
        loops_win.kernel[last] = 1;
        inner = win->kernel[last] * cg;
        kl_shape ts = t->shape, ws = w->shape;
        ts.rank--;
        ts.dim[ts.rank - 1] *= cg;
        ws.rank--;
        ws.dim[ws.rank - 1] *= cg;
        t = kl_program_view(L->prog, t, &ts);
        w->shape = ws;
    }

    kl_kernel *k = kl_kernel_new(L->prog, n, "conv");
    kl_conv_loops lp;
    kl_conv_make_loops(L, k, xv->shape.dim[0], group, mg, inner, &loops_win, yv->shape.dim + 2,
                       KL_CONV_IC_LAST, &lp);
    kl_expr *ti[KL_MAX_RANK], *wi[KL_MAX_RANK];
    ti[0] = lp.n;
    wi[0] = lp.out_ch;
    for (int i = 0; i < nsp; i++) {
        ti[i + 1] = kl_e_add(a, kl_e_mulc(a, lp.o[i], win->stride[i]),
                             kl_e_mulc(a, lp.k[i], win->dilation[i]));
        wi[i + 1] = lp.k[i];
    }
    if (merge) {
        ti[nsp] = kl_e_add(a, kl_e_mulc(a, lp.o[last], win->stride[last] * cg), lp.ic);
        wi[nsp] = lp.ic;
    } else {
        ti[nsp + 1] = lp.in_ch;
        wi[nsp + 1] = lp.ic;
    }
    k->value = kl_e_binary(a, KL_MUL, kl_e_cast(a, acc, kl_e_load(a, t, ti)),
                           kl_e_cast(a, acc, kl_e_load(a, w, wi)));
    kl_value *bias = kl_node_input(n, 2);
    kl_conv_sum_from_bias(L, k, acc, bias, lp.out_ch);
    if (acc != yv->dtype) k->result = kl_e_cast(a, yv->dtype, kl_e_acc(a, acc));
    kl_conv_store(L, k, kl_lower_buffer(L, yv), &lp, nsp);
    kl_program_add_kernel(L->prog, k);
    return true;
}

/* ---- Conv, im2col form ----------------------------------------------------------------------
 *
 * With few input channels (a network's first layer: C = 3) even the merged run of k_last*C
 * values is too short to vectorize well. If the unrolled patches are not much larger than the
 * output, lowering copies every window into a row of K = taps*C contiguous values (im2col:
 * U[n, o.., k.., c]) and reduces each output over one loop of K. The parallel loops put the
 * output channel innermost so one patch row, and the whole of W, stay in cache while every
 * channel reads them.
 */
enum { IM2COL_SHORT_RUN = 32, IM2COL_MAX_GROWTH = 4 };

static bool im2col_pays(const kl_node *n, const kl_window *w, const kl_value *wv,
                        const kl_value *yv) {
    int last = w->nsp - 1;
    int64_t cg = wv->shape.dim[1], taps = kl_shape_numel(&wv->shape) / (wv->shape.dim[0] * cg);
    int64_t patches = kl_shape_numel(&yv->shape) / yv->shape.dim[1] * taps * cg;
    return kl_attr_int(n, "group", 1) == 1 && 2 * w->nsp + 2 <= KL_MAX_RANK &&
           w->kernel[last] * cg < IM2COL_SHORT_RUN &&
           patches <= IM2COL_MAX_GROWTH * kl_shape_numel(&yv->shape);
}

/* U[n, o.., k.., c] = X[n, c, o*s + k*d - pad..], 0 outside the input. */
static kl_buffer *unroll_patches(kl_lower *L, const kl_node *n, kl_buffer *x,
                                 const kl_window *w) {
    kl_arena *a = L->arena;
    int nsp = w->nsp;
    kl_shape us = {.rank = 2 * nsp + 2};
    us.dim[0] = x->shape.dim[0];
    for (int i = 0; i < nsp; i++) {
        us.dim[1 + i] = w->out[i];
        us.dim[1 + nsp + i] = w->kernel[i];
    }
    us.dim[2 * nsp + 1] = x->shape.dim[1];
    kl_buffer *u = kl_lower_temp(L, kl_sprintf(a, "%s_patches", n->name), x->dtype, &us);
    kl_kernel *k = kl_kernel_new(L->prog, n, "conv_im2col");
    k->n_loops = k->n_par = us.rank;
    for (int i = 0; i < us.rank; i++) k->extent[i] = us.dim[i];
    kl_expr *xi[KL_MAX_RANK], *inside = NULL;
    xi[0] = kl_e_iv(a, 0);
    xi[1] = kl_e_iv(a, 2 * nsp + 1);
    for (int i = 0; i < nsp; i++) {
        xi[i + 2] = kl_window_input_index(a, w, i, kl_e_iv(a, 1 + i), kl_e_iv(a, 1 + nsp + i));
        if (kl_window_needs_guard(w, i))
            inside = kl_e_and(a, inside, kl_e_in_range(a, xi[i + 2], w->in[i]));
    }
    kl_expr *v = kl_e_load(a, x, xi);
    k->value = inside ? kl_e_select(a, inside, v, kl_e_const_f(a, x->dtype, 0.0)) : v;
    k->out = u;
    k->out_idx = kl_lower_ivs(L, us.rank);
    kl_program_add_kernel(L->prog, k);
    return u;
}

static bool lower_conv_im2col(kl_lower *L, kl_node *n, const kl_window *win) {
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *wv = n->inputs[1], *yv = n->outputs[0];
    int nsp = win->nsp;
    int64_t m = wv->shape.dim[0], kk = kl_shape_numel(&wv->shape) / m;
    kl_dtype acc = kl_conv_acc_dtype(xv->dtype);
    kl_buffer *u = unroll_patches(L, n, kl_lower_buffer(L, xv), win);
    kl_shape rows = {.rank = nsp + 2};
    rows.dim[0] = xv->shape.dim[0];
    for (int i = 0; i < nsp; i++) rows.dim[1 + i] = win->out[i];
    rows.dim[nsp + 1] = kk;
    u = kl_program_view(L->prog, u, &rows);
    kl_buffer *w = weights_channels_last(L, wv);
    kl_shape ws = {.rank = 2, .dim = {m, kk}};
    w->shape = ws; /* [M, k.., C] is [M, K] row by row */

    /* loops n, o.., m | j */
    kl_kernel *k = kl_kernel_new(L->prog, n, "conv");
    k->extent[0] = xv->shape.dim[0];
    for (int i = 0; i < nsp; i++) k->extent[1 + i] = win->out[i];
    k->extent[nsp + 1] = m;
    k->extent[nsp + 2] = kk;
    k->n_par = nsp + 2;
    k->n_loops = nsp + 3;
    kl_expr *mv = kl_e_iv(a, nsp + 1), *jv = kl_e_iv(a, nsp + 2);
    kl_expr *ui[KL_MAX_RANK], *wi[2] = {mv, jv};
    for (int i = 0; i <= nsp; i++) ui[i] = kl_e_iv(a, i);
    ui[nsp + 1] = jv;
    k->value = kl_e_binary(a, KL_MUL, kl_e_cast(a, acc, kl_e_load(a, u, ui)),
                           kl_e_cast(a, acc, kl_e_load(a, w, wi)));
    kl_value *bias = kl_node_input(n, 2);
    kl_conv_sum_from_bias(L, k, acc, bias, mv);
    if (acc != yv->dtype) k->result = kl_e_cast(a, yv->dtype, kl_e_acc(a, acc));
    k->out = kl_lower_buffer(L, yv);
    k->out_idx = kl_alloc_array(a, (size_t)nsp + 2, sizeof *k->out_idx);
    k->out_idx[0] = kl_e_iv(a, 0);
    k->out_idx[1] = mv;
    for (int i = 0; i < nsp; i++) k->out_idx[2 + i] = kl_e_iv(a, 1 + i);
    kl_program_add_kernel(L->prog, k);
    return true;
}

/* ---- Conv, direct form (and ConvInteger) ------------------------------------------------ */

/* Where each operand sits among a node's inputs (-1: the op has none), per operator. */
typedef struct conv_roles {
    const char *tag;
    int w, x_zero, w_zero, bias;
    bool integer;   /* int8 operands, int32 accumulation */
    bool requantize;/* QLinearConv: int32 sum back to 8 bits */
    kl_layout layout; /* of X and Y */
} conv_roles;

static const conv_roles conv_plain = {"conv", 1, -1, -1, 2, false, false, KL_LAYOUT_NCHW};
static const conv_roles conv_nhwc = {"conv_nhwc", 1, -1, -1, 2, false, false, KL_LAYOUT_NHWC};
static const conv_roles conv_integer = {"convinteger", 1, 2, 3, -1, true, false, KL_LAYOUT_NCHW};
static const conv_roles conv_qlinear = {"qlinearconv", 3, 2, 5, 8, true, true, KL_LAYOUT_NCHW};

static kl_value *input_at(const kl_node *n, int i) { return i < 0 ? NULL : kl_node_input(n, i); }

/*
 * The direct nest, for every Conv form. Over ONNX's layout it is the nest of DESIGN.md
 * (n, g, mg, o.. | ic, k..). Channels-last (ConvNHWC, made by passes/layout.c) it is one plain
 * nest the kernel passes tile: parallel n, o.., then the output channels (Y's contiguous dim),
 * reduction over the taps, then ic (X's contiguous dim), padding as a select around the load.
 */
static bool lower_conv_nest(kl_lower *L, kl_node *n, const conv_roles *r, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *wv = n->inputs[r->w], *yv = n->outputs[0];
    kl_buffer *x = kl_lower_buffer(L, xv), *w = kl_lower_buffer(L, wv), *y = kl_lower_buffer(L, yv);
    kl_window win;
    if (!kl_window_resolve(n, &xv->shape, r->layout, wv->shape.dim + 2, false, &win, d))
        return false;
    int64_t group = kl_attr_int(n, "group", 1);
    int64_t mg = wv->shape.dim[0] / group, cg = wv->shape.dim[1];
    bool nhwc = r->layout == KL_LAYOUT_NHWC;
    /* depthwise (one channel per group) gains nothing from contiguous channels: the copy
     * would only cost workspace (mobilenet_v2: 14.4 -> 9.6 MB, same speed) */
    if (!nhwc && !r->integer && wv->data && cg > 1)
        return im2col_pays(n, &win, wv, yv) ? lower_conv_im2col(L, n, &win)
                                            : lower_conv_channels_last(L, n, &win);
    kl_dtype acc = r->integer ? KL_I32 : kl_conv_acc_dtype(xv->dtype);

    kl_kernel *k = kl_kernel_new(L->prog, n, r->tag);
    kl_conv_loops lp;
    kl_conv_make_loops(L, k, xv->shape.dim[0], group, mg, cg, &win, win.out,
                       nhwc ? KL_CONV_NHWC : KL_CONV_IC_FIRST, &lp);

    kl_expr *xi[KL_MAX_RANK], *wi[KL_MAX_RANK], *inside = NULL;
    xi[0] = lp.n;
    xi[kl_layout_channel_axis(r->layout, win.nsp + 2)] = lp.in_ch;
    wi[0] = lp.out_ch;
    wi[1] = lp.ic;
    for (int i = 0; i < win.nsp; i++) {
        kl_expr *at = kl_window_input_index(a, &win, i, lp.o[i], lp.k[i]);
        xi[kl_layout_spatial_axis(r->layout, i)] = at;
        wi[i + 2] = lp.k[i];
        if (kl_window_needs_guard(&win, i))
            inside = kl_e_and(a, inside, kl_e_in_range(a, at, win.in[i]));
    }
    kl_expr *xe = kl_e_cast(a, acc, kl_e_load(a, x, xi));
    kl_expr *we = kl_e_cast(a, acc, kl_e_load(a, w, wi));
    if (r->integer) {
        xe = kl_e_binary(a, KL_SUB, xe, zero_point(L, input_at(n, r->x_zero), NULL, acc));
        we = kl_e_binary(a, KL_SUB, we, zero_point(L, input_at(n, r->w_zero), lp.out_ch, acc));
    }
    if (inside)
        xe = kl_e_select(a, inside, xe,
                         r->integer ? kl_e_const_i(a, acc, 0) : kl_e_const_f(a, acc, 0.0));
    k->value = kl_e_binary(a, KL_MUL, xe, we);
    kl_value *bias = input_at(n, r->bias);
    kl_conv_sum_from_bias(L, k, acc, bias, lp.out_ch);
    if (r->requantize)
        k->result = kl_requantize(a, kl_e_acc(a, acc), kl_quant_param(L, n->inputs[1], NULL),
                                  kl_quant_param(L, n->inputs[4], lp.out_ch),
                                  kl_quant_param(L, n->inputs[6], NULL),
                                  kl_quant_param(L, n->inputs[7], NULL), yv->dtype);
    else if (acc != yv->dtype)
        k->result = kl_e_cast(a, yv->dtype, kl_e_acc(a, acc));
    kl_conv_store(L, k, y, &lp, win.nsp);
    kl_program_add_kernel(L->prog, k);
    return true;
}

static bool lower_conv(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_conv_nest(L, n, &conv_plain, d);
}

static bool lower_conv_nhwc(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_conv_nest(L, n, &conv_nhwc, d);
}

static bool lower_conv_integer(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_conv_nest(L, n, &conv_integer, d);
}

static bool lower_qlinear_conv(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_conv_nest(L, n, &conv_qlinear, d);
}

/* ---- the table -------------------------------------------------------------------------- */

static const char *const conv_attrs[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                         "pads",     "strides",   NULL};

const kl_op kl_ops_conv[] = {
    {"", "Conv", 1, KL_OPSET_LATEST, conv_attrs, infer_conv, lower_conv},
    {"", "ConvInteger", 10, KL_OPSET_LATEST, conv_attrs, infer_conv_integer, lower_conv_integer},
    {"", "QLinearConv", 10, KL_OPSET_LATEST, conv_attrs, infer_qlinear_conv, lower_qlinear_conv},
    /* kiln's own: Conv with X and Y channels-last, W as in Conv (made by passes/layout.c) */
    {"kiln", "ConvNHWC", 1, 1, conv_attrs, infer_conv_nhwc, lower_conv_nhwc},
    {0},
};
