/*
 * conv_variants.c — the convolutions that are not one sliding window over the input:
 * ConvTranspose (and kiln.ConvTransposeNHWC), DeformConv and CausalConvWithState.
 *
 * ConvTranspose scatters every input element over a window of the output; the kernel IR has no
 * scatter, so each output gathers instead: output o takes tap k from input (o + pad - k*d) / s
 * when the division is exact. Written as one nest, that test costs a division, a modulo and a
 * select per tap, wastes the s^k taps that fail it, and leaves indices no kernel pass can
 * block. So the output is split by phase (window.h): in each spatial dim, o = q*s + r for a
 * fixed r in [0, s) reaches only the taps k = k0 + j*step, which read input q + shift - j*back.
 * Each phase is then an ordinary convolution-shaped kernel (conv_nest.h) over q, the channels
 * and the phase's taps, every index affine, padding guarded by in_range selects as in Conv,
 * storing at o = q*s + r; s1*..*sk kernels in all, a phase no tap reaches writing the bias
 * alone. The tile and halo passes then treat them as they treat Conv.
 *
 * kiln.ConvTransposeNHWC (made by passes/layout.c) is ConvTranspose with X and Y channels-last,
 * [N, D.., C] and [N, out.., M]; W stays in ONNX's layout [C, M/group, k..] and the attributes
 * mean what they mean for ConvTranspose. Its phases loop n, q.., g, mg | taps.., ic, so the
 * output channel (Y's contiguous dim) is the innermost parallel loop, as in ConvNHWC; constant
 * weights are copied at compile time to [M, k.., C/group], contiguous along ic.
 */
#include <string.h>

#include "conv_nest.h"

/* ---- ConvTranspose ---------------------------------------------------------------------- */

/*
 * ConvTranspose geometry: the window's kernel/strides/dilations, the pads (explicit, or derived
 * from output_shape / auto_pad as total = s*(in-1) + output_padding + span - out, split with the
 * odd element at the end for SAME_UPPER and at the start otherwise) and the output sizes.
 * X is [N, C, D..] or, channels-last, [N, D.., C]; output_shape names the spatial sizes (a
 * full [N, C, D..] list is accepted too, in ONNX's order whatever the layout).
 */
static bool convtranspose_geometry(const kl_node *n, const kl_shape *x, const kl_shape *wsh,
                                   kl_layout layout, kl_window *w, kl_diag *d) {
    memset(w, 0, sizeof *w);
    if (x->rank < 3)
        return kl_error(d, n, "input X has rank %d; expected %s (rank >= 3)", x->rank,
                        layout == KL_LAYOUT_NHWC ? "[N, D1, ..., C]" : "[N, C, D1, ...]");
    if (wsh->rank != x->rank)
        return kl_error(d, n, "W has rank %d but X has rank %d", wsh->rank, x->rank);
    int nsp = w->nsp = x->rank - 2;
    for (int i = 0; i < nsp; i++) w->in[i] = x->dim[kl_layout_spatial_axis(layout, i)];
    if (!kl_window_ints(n, "kernel_shape", nsp, 1, 1, w->kernel, d)) return false;
    for (int i = 0; i < nsp; i++)
        if (kl_attr_find(n, "kernel_shape") ? w->kernel[i] != wsh->dim[i + 2] : false)
            return kl_error(d, n, "kernel_shape[%d] = %lld but W has %lld there", i,
                            (long long)w->kernel[i], (long long)wsh->dim[i + 2]);
    for (int i = 0; i < nsp; i++) w->kernel[i] = wsh->dim[i + 2];
    int64_t pads[2 * KL_MAX_RANK], out_pad[KL_MAX_RANK];
    if (!kl_window_ints(n, "strides", nsp, 1, 1, w->stride, d) ||
        !kl_window_ints(n, "dilations", nsp, 1, 1, w->dilation, d) ||
        !kl_window_ints(n, "pads", 2 * nsp, 0, 0, pads, d) ||
        !kl_window_ints(n, "output_padding", nsp, 0, 0, out_pad, d))
        return false;
    const char *auto_pad = kl_attr_string(n, "auto_pad", "NOTSET");
    bool same = !strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER");
    bool upper = !strcmp(auto_pad, "SAME_UPPER");
    if (!same && strcmp(auto_pad, "NOTSET") && strcmp(auto_pad, "VALID") && auto_pad[0])
        return kl_error(d, n, "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID",
                        auto_pad);
    const int64_t *os;
    int n_os = kl_attr_ints(n, "output_shape", &os);
    if (n_os >= 0 && n_os != nsp && n_os != nsp + 2)
        return kl_error(d, n, "output_shape has %d values, expected %d", n_os, nsp);
    if (n_os == nsp + 2) os += 2;
    for (int i = 0; i < nsp; i++) {
        /* every term is at most KL_MAX_BYTES (attributes, dims), but the product is not */
        int64_t full, span;
        if (!kl_window_span_checked(w, i, &span) ||
            !kl_mul_checked(w->stride[i], w->in[i] - 1, &full) || full > KL_MAX_BYTES ||
            (n_os >= 0 && (os[i] < 1 || os[i] > KL_MAX_BYTES)))
            return kl_error(d, n, "output size in spatial dim %d is out of range (stride %lld, "
                            "input %lld, kernel %lld, dilation %lld)", i,
                            (long long)w->stride[i], (long long)w->in[i],
                            (long long)w->kernel[i], (long long)w->dilation[i]);
        full += out_pad[i] + span;
        if (n_os >= 0 || same) {
            w->out[i] = n_os >= 0 ? os[i] : w->in[i] * w->stride[i];
            int64_t total = full - w->out[i];
            int64_t half = kl_div_floor(total, 2);
            w->pad_begin[i] = upper ? half : total - half;
            w->pad_end[i] = total - w->pad_begin[i];
        } else {
            if (strcmp(auto_pad, "VALID")) {
                w->pad_begin[i] = pads[i];
                w->pad_end[i] = pads[i + nsp];
            }
            w->out[i] = full - w->pad_begin[i] - w->pad_end[i];
        }
        if (w->out[i] < 1)
            return kl_error(d, n, "output size %lld in spatial dim %d is not positive",
                            (long long)w->out[i], i);
    }
    return true;
}

static bool infer_convtranspose_in(kl_node *n, kl_layout layout, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_value *x = n->inputs[0], *w = n->inputs[1], *b = kl_node_input(n, 2);
    kl_dtype t = x->dtype;
    if (!kl_dtype_is_float(t) || w->dtype != t)
        return kl_error(d, n, "X and W must be of one float type (got %s and %s)",
                        kl_dtype_name(t), kl_dtype_name(w->dtype));
    int64_t group = kl_attr_int(n, "group", 1);
    if (group < 1) return kl_error(d, n, "group = %lld must be >= 1", (long long)group);
    if (group > KL_MAX_BYTES) /* it becomes a loop extent even where the tensors are empty */
        return kl_error(d, n, "group = %lld is out of range", (long long)group);
    kl_window win;
    if (!convtranspose_geometry(n, &x->shape, &w->shape, layout, &win, d)) return false;
    int c_axis = kl_layout_channel_axis(layout, x->shape.rank);
    int64_t c = x->shape.dim[c_axis];
    if (w->shape.dim[0] != c || c % group != 0)
        return kl_error(d, n, "W has %lld input channels, X has %lld (group %lld)",
                        (long long)w->shape.dim[0], (long long)c, (long long)group);
    int64_t m;
    if (!kl_mul_checked(w->shape.dim[1], group, &m)) /* c = 0 admits any group */
        return kl_error(d, n, "group %lld is out of range", (long long)group);
    if (b && (b->dtype != t || b->shape.rank != 1 || b->shape.dim[0] != m))
        return kl_error(d, n, "bias B must be %s [%lld]", kl_dtype_name(t), (long long)m);
    kl_shape y = {.rank = x->shape.rank};
    y.dim[0] = x->shape.dim[0];
    y.dim[c_axis] = m;
    for (int i = 0; i < win.nsp; i++) y.dim[kl_layout_spatial_axis(layout, i)] = win.out[i];
    return kl_infer_set(n, 0, t, &y);
}

static bool infer_convtranspose(kl_node *n, kl_diag *d) {
    return infer_convtranspose_in(n, KL_LAYOUT_NCHW, d);
}

static bool infer_convtranspose_nhwc(kl_node *n, kl_diag *d) {
    return infer_convtranspose_in(n, KL_LAYOUT_NHWC, d);
}

/* What every phase kernel of one ConvTranspose shares. */
typedef struct ct_nest {
    const kl_node *n;
    kl_window win;
    kl_layout layout;
    int64_t batch, group, mg, cg;
    kl_buffer *x, *w, *y;
    bool w_by_output;      /* w is the compile-time copy [M, k.., C/group] */
    kl_value *bias;
    kl_dtype acc;
} ct_nest;

/* Compile-time copy of constant W [C, M/group, k..] as [M, k.., C/group]: channels-last
 * phases then read it contiguously along their innermost loop, ic. */
static kl_buffer *weights_by_output(kl_lower *L, const kl_value *wv, int64_t group) {
    const kl_shape *s = &wv->shape;
    int64_t c = s->dim[0], mg = s->dim[1], cg = c / group;
    int64_t taps = kl_shape_numel(s) / (c * mg);
    size_t es = kl_dtype_size(wv->dtype);
    unsigned char *dst = kl_alloc(L->arena, (size_t)kl_shape_numel(s) * es + 1);
    const unsigned char *src = wv->data;
    for (int64_t g = 0; g < group; g++)
        for (int64_t ic = 0; ic < cg; ic++)
            for (int64_t m = 0; m < mg; m++)
                for (int64_t t = 0; t < taps; t++) {
                    int64_t from = ((g * cg + ic) * mg + m) * taps + t;
                    int64_t to = ((g * mg + m) * taps + t) * cg + ic;
                    memcpy(dst + to * (int64_t)es, src + from * (int64_t)es, es);
                }
    kl_shape ts = {.rank = s->rank};
    ts.dim[0] = mg * group;
    for (int i = 2; i < s->rank; i++) ts.dim[i - 1] = s->dim[i];
    ts.dim[s->rank - 1] = cg;
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_by_output", wv->name),
                                     KL_BUF_CONST, wv->dtype, &ts);
    b->data = dst;
    b->host = dst; /* readable by the interpreter during constant folding too */
    return b;
}

/* Y's index at the phase's output positions o = q*s + r, as the kernel's store. */
static void store_phase(kl_lower *L, kl_kernel *k, const ct_nest *c, kl_conv_loops *lp,
                        const kl_window_phase *ph) {
    for (int i = 0; i < c->win.nsp; i++)
        lp->o[i] = kl_e_addc(L->arena, kl_e_mulc(L->arena, lp->o[i], c->win.stride[i]), ph[i].r);
    kl_conv_store(L, k, c->y, lp, c->win.nsp);
}

/* A phase some tap reaches in every dim: bias + sum over ic and the phase's taps. */
static void lower_phase(kl_lower *L, const ct_nest *c, const kl_window_phase *ph) {
    kl_arena *a = L->arena;
    int nsp = c->win.nsp;
    kl_window pw = c->win; /* the phase's taps are the kernel its loops run over */
    int64_t q_count[KL_MAX_RANK];
    for (int i = 0; i < nsp; i++) {
        pw.kernel[i] = ph[i].taps;
        q_count[i] = ph[i].q_count;
    }
    kl_kernel *k = kl_kernel_new(L->prog, c->n, "convtranspose");
    kl_conv_loops lp;
    kl_conv_make_loops(L, k, c->batch, c->group, c->mg, c->cg, &pw, q_count,
                       c->layout == KL_LAYOUT_NHWC ? KL_CONV_NHWC : KL_CONV_IC_FIRST, &lp);
    kl_expr *xi[KL_MAX_RANK], *wi[KL_MAX_RANK], *inside = NULL;
    xi[0] = lp.n;
    xi[kl_layout_channel_axis(c->layout, nsp + 2)] = lp.in_ch;
    wi[0] = c->w_by_output ? lp.out_ch : lp.in_ch;
    if (c->w_by_output) wi[nsp + 1] = lp.ic;
    else wi[1] = lp.mg;
    for (int i = 0; i < nsp; i++) {
        kl_expr *at = kl_e_addc(a, kl_e_add(a, lp.o[i], kl_e_mulc(a, lp.k[i], -ph[i].back)),
                                ph[i].shift);
        xi[kl_layout_spatial_axis(c->layout, i)] = at;
        wi[c->w_by_output ? i + 1 : i + 2] =
            kl_e_addc(a, kl_e_mulc(a, lp.k[i], ph[i].step), ph[i].k0);
        if (kl_window_phase_needs_guard(&c->win, i, &ph[i]))
            inside = kl_e_and(a, inside, kl_e_in_range(a, at, c->win.in[i]));
    }
    kl_expr *xe = kl_e_cast(a, c->acc, kl_e_load(a, c->x, xi));
    if (inside) xe = kl_e_select(a, inside, xe, kl_e_const_f(a, c->acc, 0.0));
    k->value = kl_e_binary(a, KL_MUL, xe, kl_e_cast(a, c->acc, kl_e_load(a, c->w, wi)));
    kl_conv_sum_from_bias(L, k, c->acc, c->bias, lp.out_ch);
    if (c->acc != c->y->dtype) k->result = kl_e_cast(a, c->y->dtype, kl_e_acc(a, c->acc));
    store_phase(L, k, c, &lp, ph);
    kl_program_add_kernel(L->prog, k);
}

/* A phase no tap reaches (a stride larger than the dilated kernel): the bias, or 0. Loops
 * n, channel, q.. (n, q.., channel channels-last): Y's own order. */
static void lower_phase_bias(kl_lower *L, const ct_nest *c, const kl_window_phase *ph) {
    kl_arena *a = L->arena;
    int nsp = c->win.nsp, ch = kl_layout_channel_axis(c->layout, nsp + 2);
    kl_kernel *k = kl_kernel_new(L->prog, c->n, "convtranspose_bias");
    k->n_loops = k->n_par = nsp + 2;
    k->extent[0] = c->batch;
    k->extent[ch] = c->group * c->mg;
    kl_conv_loops lp = {.n = kl_e_iv(a, 0), .out_ch = kl_e_iv(a, ch), .out_layout = c->layout};
    for (int i = 0; i < nsp; i++) {
        int l = kl_layout_spatial_axis(c->layout, i);
        k->extent[l] = ph[i].q_count;
        lp.o[i] = kl_e_iv(a, l);
    }
    k->value = c->bias ? kl_e_load(a, kl_lower_buffer(L, c->bias), &lp.out_ch)
                       : kl_e_const_f(a, c->y->dtype, 0.0);
    store_phase(L, k, c, &lp, ph);
    kl_program_add_kernel(L->prog, k);
}

/* What the phases share, from the node. */
static bool ct_nest_of(kl_lower *L, kl_node *n, kl_layout layout, ct_nest *c, kl_diag *d) {
    kl_value *xv = n->inputs[0], *wv = n->inputs[1];
    *c = (ct_nest){.n = n, .layout = layout, .bias = kl_node_input(n, 2)};
    if (!convtranspose_geometry(n, &xv->shape, &wv->shape, layout, &c->win, d)) return false;
    c->batch = xv->shape.dim[0];
    c->group = kl_attr_int(n, "group", 1);
    c->mg = wv->shape.dim[1];
    c->cg = wv->shape.dim[0] / c->group;
    c->acc = kl_conv_acc_dtype(xv->dtype);
    c->x = kl_lower_buffer(L, xv);
    c->y = kl_lower_buffer(L, n->outputs[0]);
    c->w_by_output = layout == KL_LAYOUT_NHWC && wv->data;
    c->w = c->w_by_output ? weights_by_output(L, wv, c->group) : kl_lower_buffer(L, wv);
    return true;
}

/* A kernel per phase is a kernel to compile: beyond this many (64 x 64 strides in 2-D) the
 * model is refused rather than compiled for minutes. */
enum { MAX_PHASES = 4096 };

/* One kernel per phase: r[i] runs over [0, stride[i]) in every spatial dim; a phase without
 * output positions (r at or past the output's size) has none, so r stops there. */
static bool lower_convtranspose_in(kl_lower *L, kl_node *n, kl_layout layout, kl_diag *d) {
    ct_nest c;
    if (!ct_nest_of(L, n, layout, &c, d)) return false;
    int nsp = c.win.nsp;
    int64_t r[KL_MAX_RANK] = {0}, last[KL_MAX_RANK], phases = 1;
    for (int i = 0; i < nsp; i++) {
        last[i] = c.win.stride[i] < c.win.out[i] ? c.win.stride[i] : c.win.out[i];
        phases = kl_mul_saturate(phases, last[i]);
    }
    if (phases > MAX_PHASES)
        return kl_error(d, n, "strides this large need %lld phase kernels; kiln makes at most %d",
                        (long long)phases, MAX_PHASES);
    for (;;) {
        kl_window_phase ph[KL_MAX_RANK];
        bool empty = false, reached = true;
        for (int i = 0; i < nsp; i++) {
            ph[i] = kl_window_phase_of(&c.win, i, r[i]);
            empty = empty || ph[i].q_count == 0;
            reached = reached && ph[i].taps > 0;
        }
        if (!empty && reached) lower_phase(L, &c, ph);
        else if (!empty) lower_phase_bias(L, &c, ph);
        int i = nsp - 1;
        while (i >= 0 && ++r[i] >= last[i]) r[i--] = 0;
        if (i < 0) return true;
    }
}

static bool lower_convtranspose(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_convtranspose_in(L, n, KL_LAYOUT_NCHW, d);
}

static bool lower_convtranspose_nhwc(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_convtranspose_in(L, n, KL_LAYOUT_NHWC, d);
}

/* ---- DeformConv ---------------------------------------------------------------------------- */

/*
 * DeformConv (2-D): each tap samples X at its regular position plus a learned offset, read from
 * `offset` [N, offset_group*kH*kW*2, oH, oW] (h then w per tap), bilinearly with zeros outside
 * the input, optionally scaled by `mask` [N, offset_group*kH*kW, oH, oW]. It is the direct nest
 * with the load of X replaced by the four-corner interpolation; the corner indices come from
 * floor() of loaded values, so each corner load is guarded like a padding read.
 */
static bool infer_deform_conv(kl_node *n, kl_diag *d) {
    for (int i = 0; i < 3; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    const kl_value *x = n->inputs[0], *w = n->inputs[1], *off = n->inputs[2];
    const kl_value *b = kl_node_input(n, 3), *mask = kl_node_input(n, 4);
    kl_dtype t = x->dtype;
    if (!kl_dtype_is_float(t) || w->dtype != t || off->dtype != t || (b && b->dtype != t) ||
        (mask && mask->dtype != t))
        return kl_error(d, n, "X, W, offset, B and mask must be of one float type (X is %s)",
                        kl_dtype_name(t));
    if (x->shape.rank != 4)
        return kl_error(d, n, "only 2-D DeformConv is supported (X has rank %d)", x->shape.rank);
    if (!kl_conv_infer_shape(n, 1, t, KL_LAYOUT_NCHW, d)) return false;
    const kl_shape *y = &n->outputs[0]->shape;
    int64_t og = kl_attr_int(n, "offset_group", 1), taps = w->shape.dim[2] * w->shape.dim[3];
    if (og < 1 || x->shape.dim[1] % og != 0)
        return kl_error(d, n, "offset_group %lld does not divide the %lld input channels",
                        (long long)og, (long long)x->shape.dim[1]);
    kl_shape want = {4, {y->dim[0], og * taps * 2, y->dim[2], y->dim[3]}};
    if (!kl_shape_equal(&off->shape, &want))
        return kl_error(d, n, "offset must be [%lld,%lld,%lld,%lld]", (long long)want.dim[0],
                        (long long)want.dim[1], (long long)want.dim[2], (long long)want.dim[3]);
    want.dim[1] = og * taps;
    if (mask && !kl_shape_equal(&mask->shape, &want))
        return kl_error(d, n, "mask must be [%lld,%lld,%lld,%lld]", (long long)want.dim[0],
                        (long long)want.dim[1], (long long)want.dim[2], (long long)want.dim[3]);
    if (b && (b->shape.rank != 1 || b->shape.dim[0] != w->shape.dim[0]))
        return kl_error(d, n, "bias B must be [%lld]", (long long)w->shape.dim[0]);
    return true;
}

/* X[n, c, h, w] when (h, w) is inside the input, else 0. */
static kl_expr *load_or_zero(kl_arena *a, kl_buffer *x, kl_expr *n, kl_expr *c, kl_expr *h,
                             kl_expr *w, kl_dtype t) {
    kl_expr *idx[4] = {n, c, h, w};
    kl_expr *inside = kl_e_and(a, kl_e_in_range(a, h, x->shape.dim[2]),
                               kl_e_in_range(a, w, x->shape.dim[3]));
    return kl_e_select(a, inside, kl_e_cast(a, t, kl_e_load(a, x, idx)), kl_e_const_f(a, t, 0.0));
}

/* Bilinear sample of X[n, c] at the real position (h, w), zeros outside. */
static kl_expr *bilinear(kl_arena *a, kl_buffer *x, kl_expr *n, kl_expr *c, kl_expr *h,
                         kl_expr *w, kl_dtype t) {
    kl_expr *hf = kl_e_unary(a, KL_FLOOR, h), *wf = kl_e_unary(a, KL_FLOOR, w);
    kl_expr *lh = kl_e_binary(a, KL_SUB, h, hf), *lw = kl_e_binary(a, KL_SUB, w, wf);
    kl_expr *one = kl_e_const_f(a, t, 1.0);
    kl_expr *uh = kl_e_binary(a, KL_SUB, one, lh), *uw = kl_e_binary(a, KL_SUB, one, lw);
    kl_expr *h0 = kl_e_cast(a, KL_I64, hf), *w0 = kl_e_cast(a, KL_I64, wf);
    kl_expr *h1 = kl_e_addc(a, h0, 1), *w1 = kl_e_addc(a, w0, 1);
    kl_expr *top = kl_e_binary(a, KL_ADD,
                               kl_e_binary(a, KL_MUL, uw, load_or_zero(a, x, n, c, h0, w0, t)),
                               kl_e_binary(a, KL_MUL, lw, load_or_zero(a, x, n, c, h0, w1, t)));
    kl_expr *bot = kl_e_binary(a, KL_ADD,
                               kl_e_binary(a, KL_MUL, uw, load_or_zero(a, x, n, c, h1, w0, t)),
                               kl_e_binary(a, KL_MUL, lw, load_or_zero(a, x, n, c, h1, w1, t)));
    return kl_e_binary(a, KL_ADD, kl_e_binary(a, KL_MUL, uh, top), kl_e_binary(a, KL_MUL, lh, bot));
}

static bool lower_deform_conv(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *wv = n->inputs[1], *yv = n->outputs[0];
    kl_value *bias = kl_node_input(n, 3), *mask = kl_node_input(n, 4);
    kl_buffer *x = kl_lower_buffer(L, xv), *off = kl_lower_buffer(L, n->inputs[2]);
    kl_window win;
    if (!kl_window_resolve(n, &xv->shape, KL_LAYOUT_NCHW, wv->shape.dim + 2, false, &win, d))
        return false;
    int64_t group = kl_attr_int(n, "group", 1);
    int64_t og_size = xv->shape.dim[1] / kl_attr_int(n, "offset_group", 1);
    int64_t mg = wv->shape.dim[0] / group, cg = wv->shape.dim[1];
    kl_dtype acc = kl_conv_acc_dtype(xv->dtype);

    kl_kernel *k = kl_kernel_new(L->prog, n, "deformconv");
    kl_conv_loops lp;
    kl_conv_make_loops(L, k, xv->shape.dim[0], group, mg, cg, &win, yv->shape.dim + 2, KL_CONV_IC_FIRST,
                       &lp);
    /* tap number within the offset group: (og*kH + i)*kW + j */
    kl_expr *og = og_size == xv->shape.dim[1]
                      ? kl_e_idx(a, 0)
                      : kl_e_binary(a, KL_DIV, lp.in_ch, kl_e_idx(a, og_size));
    kl_expr *tap = kl_e_add(a, kl_e_mulc(a, kl_e_add(a, kl_e_mulc(a, og, win.kernel[0]), lp.k[0]),
                                         win.kernel[1]),
                            lp.k[1]);
    kl_expr *pos[2];
    for (int i = 0; i < 2; i++) {
        kl_expr *oi[4] = {lp.n, kl_e_addc(a, kl_e_mulc(a, tap, 2), i), lp.o[0], lp.o[1]};
        kl_expr *base = kl_e_cast(a, acc, kl_window_input_index(a, &win, i, lp.o[i], lp.k[i]));
        pos[i] = kl_e_binary(a, KL_ADD, base, kl_e_cast(a, acc, kl_e_load(a, off, oi)));
    }
    kl_expr *v = bilinear(a, x, lp.n, lp.in_ch, pos[0], pos[1], acc);
    kl_expr *wi[4] = {lp.out_ch, lp.ic, lp.k[0], lp.k[1]};
    v = kl_e_binary(a, KL_MUL, v, kl_e_cast(a, acc, kl_e_load(a, kl_lower_buffer(L, wv), wi)));
    if (mask) {
        kl_expr *mi[4] = {lp.n, tap, lp.o[0], lp.o[1]};
        v = kl_e_binary(a, KL_MUL, v,
                        kl_e_cast(a, acc, kl_e_load(a, kl_lower_buffer(L, mask), mi)));
    }
    k->value = v;
    kl_conv_sum_from_bias(L, k, acc, bias, lp.out_ch);
    if (acc != yv->dtype) k->result = kl_e_cast(a, yv->dtype, kl_e_acc(a, acc));
    kl_conv_store(L, k, kl_lower_buffer(L, yv), &lp, win.nsp);
    kl_program_add_kernel(L->prog, k);
    return true;
}

/* ---- CausalConvWithState -------------------------------------------------------------------- */

/*
 * CausalConvWithState (opset 27): a depthwise 1-D convolution over the sequence
 * P = concat(past_state or k-1 zeros, input) along the last axis, optionally followed by SiLU,
 * plus the new state = the last k-1 positions of P. P is never materialized: P(t) is a select
 * between the two sources, one kernel per output.
 */
static bool infer_causal_conv(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_value *x = n->inputs[0], *w = n->inputs[1];
    const kl_value *b = kl_node_input(n, 2), *past = kl_node_input(n, 3);
    kl_dtype t = x->dtype;
    const char *act = kl_attr_string(n, "activation", "none");
    if (strcmp(act, "none") && strcmp(act, "silu") && strcmp(act, "swish"))
        return kl_error(d, n, "activation '%s' is not none, silu or swish", act);
    if (!kl_dtype_is_float(t) || w->dtype != t || (b && b->dtype != t) || (past && past->dtype != t))
        return kl_error(d, n, "input, weight, bias and past_state must be of one float type");
    if (x->shape.rank != 3) return kl_error(d, n, "input must be [batch, channels, length]");
    int64_t bs = x->shape.dim[0], c = x->shape.dim[1];
    if (w->shape.rank != 3 || w->shape.dim[0] != c || w->shape.dim[1] != 1)
        return kl_error(d, n, "weight must be [%lld,1,k]", (long long)c);
    kl_shape state = {3, {bs, c, w->shape.dim[2] - 1}};
    if (b && (b->shape.rank != 1 || b->shape.dim[0] != c))
        return kl_error(d, n, "bias must be [%lld]", (long long)c);
    if (past && !kl_shape_equal(&past->shape, &state))
        return kl_error(d, n, "past_state must be [%lld,%lld,%lld]", (long long)bs, (long long)c,
                        (long long)state.dim[2]);
    if (!kl_infer_set(n, 0, t, &x->shape)) return false;
    return !kl_node_output(n, 1) || kl_infer_set(n, 1, t, &state);
}

/* P(t) of batch b, channel c: past_state (or 0) before k-1, the input from there on. */
static kl_expr *causal_padded(kl_lower *L, const kl_node *n, kl_expr *b, kl_expr *c, kl_expr *t,
                              int64_t history, kl_dtype as) {
    kl_arena *a = L->arena;
    kl_expr *xi[3] = {b, c, kl_e_addc(a, t, -history)};
    kl_expr *cur = kl_e_cast(a, as, kl_e_load(a, kl_lower_buffer(L, n->inputs[0]), xi));
    if (history == 0) return cur;
    kl_value *past = kl_node_input(n, 3);
    kl_expr *pi[3] = {b, c, t};
    kl_expr *old = past ? kl_e_cast(a, as, kl_e_load(a, kl_lower_buffer(L, past), pi))
                        : kl_e_const_f(a, as, 0.0);
    return kl_e_select(a, kl_e_binary(a, KL_LT, t, kl_e_idx(a, history)), old, cur);
}

static bool lower_causal_conv(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *yv = n->outputs[0], *sv = kl_node_output(n, 1);
    kl_dtype t = xv->dtype, acc = kl_conv_acc_dtype(t);
    int64_t len = xv->shape.dim[2], taps = n->inputs[1]->shape.dim[2], history = taps - 1;

    kl_kernel *k = kl_kernel_new(L->prog, n, "causalconv");
    k->n_par = 3;
    k->n_loops = 4;
    for (int i = 0; i < 3; i++) k->extent[i] = xv->shape.dim[i];
    k->extent[3] = taps;
    kl_expr *b = kl_e_iv(a, 0), *c = kl_e_iv(a, 1), *l = kl_e_iv(a, 2), *j = kl_e_iv(a, 3);
    kl_expr *wi[3] = {c, kl_e_idx(a, 0), j};
    k->value = kl_e_binary(a, KL_MUL,
                           kl_e_cast(a, acc, kl_e_load(a, kl_lower_buffer(L, n->inputs[1]), wi)),
                           causal_padded(L, n, b, c, kl_e_add(a, l, j), history, acc));
    kl_value *bias = kl_node_input(n, 2);
    kl_conv_sum_from_bias(L, k, acc, bias, c);
    /* the reference rounds the convolution to T before the activation */
    kl_expr *y = kl_e_cast(a, t, kl_e_acc(a, acc));
    if (strcmp(kl_attr_string(n, "activation", "none"), "none")) {
        kl_expr *yf = kl_e_cast(a, acc, y);
        y = kl_e_cast(a, t, kl_e_binary(a, KL_MUL, yf, kl_e_unary(a, KL_SIGMOID, yf)));
    }
    k->result = y;
    k->out = kl_lower_buffer(L, yv);
    k->out_idx = kl_lower_ivs(L, 3);
    kl_program_add_kernel(L->prog, k);

    if (!sv || history == 0) return true;
    kl_kernel *s = kl_kernel_new(L->prog, n, "causalconv_state");
    s->n_par = s->n_loops = 3;
    for (int i = 0; i < 3; i++) s->extent[i] = sv->shape.dim[i];
    s->value = causal_padded(L, n, b, c, kl_e_addc(a, l, len), history, t);
    s->out = kl_lower_buffer(L, sv);
    s->out_idx = kl_lower_ivs(L, 3);
    kl_program_add_kernel(L->prog, s);
    return true;
}

/* ---- the table -------------------------------------------------------------------------- */

static const char *const convtranspose_attrs[] = {
    "auto_pad", "dilations",    "group", "kernel_shape", "output_padding",
    "output_shape", "pads", "strides", NULL};
static const char *const causal_conv_attrs[] = {"activation", NULL};
static const char *const deform_conv_attrs[] = {"dilations", "group", "kernel_shape",
                                                "offset_group", "pads", "strides", NULL};

const kl_op kl_ops_conv_variants[] = {
    {"", "CausalConvWithState", 27, KL_OPSET_LATEST, causal_conv_attrs, infer_causal_conv,
     lower_causal_conv},
    {"", "DeformConv", 19, KL_OPSET_LATEST, deform_conv_attrs, infer_deform_conv,
     lower_deform_conv},
    {"", "ConvTranspose", 1, KL_OPSET_LATEST, convtranspose_attrs, infer_convtranspose,
     lower_convtranspose},
    /* kiln's own: ConvTranspose with X and Y channels-last, W as in ConvTranspose (made by
     * passes/layout.c) */
    {"kiln", "ConvTransposeNHWC", 1, 1, convtranspose_attrs, infer_convtranspose_nhwc,
     lower_convtranspose_nhwc},
    {0},
};
