/*
 * pool.c — MaxPool, AveragePool, LpPool, their Global* forms, and MaxUnpool.
 *
 * Every pool is one kernel: parallel loops over the output [n, c, out...], reduction loops over
 * the kernel taps, reading X at o*stride + k*dilation - pad (window.h). A tap outside the input
 * is replaced by the reduction's neutral value through a select (only in dims where some window
 * reaches outside). A Global pool is the same nest with one window covering the whole input.
 *
 * - MaxPool: MAX of X (padding reads the dtype's lowest value). Its optional Indices output is a
 *   second kernel: the MIN over the window of select(X == Y, flat index, INT64_MAX) gives the
 *   first position of the maximum in scan order; storage_order=1 converts that row-major index
 *   to column-major spatial order in the kernel's result.
 * - AveragePool: SUM, divided by the number of taps that count (inside the input, or inside the
 *   padded input with count_include_pad). That number depends only on the output position and
 *   is computed here at compile time: one constant when all windows agree, else a CONST table
 *   over the output's spatial positions.
 * - LpPool: (SUM |x|^p)^(1/p), with x*x and sqrt for the usual p = 2.
 * - MaxUnpool: the inverse of MaxPool with Indices, as a gather (see its section).
 *
 * kiln.MaxPoolNHWC and kiln.AveragePoolNHWC (domain "kiln", made by passes/layout.c) are MaxPool
 * without Indices and AveragePool over channels-last X and Y ([N, D.., C]): the same nest with
 * the channel loop innermost among the parallel loops (n, out.., c | taps..), so the contiguous
 * dim is the one the kernel passes vectorize.
 */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "window.h"

/* float16/bfloat16 sums drift quickly: accumulate them in float32. */
static kl_dtype acc_dtype_for(kl_dtype t) {
    return (t == KL_F16 || t == KL_BF16) ? KL_F32 : t;
}

static bool is_float(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16;
}

/* The smallest value of t: what a padded tap contributes to a MAX. */
static kl_expr *lowest_of(kl_arena *a, kl_dtype t) {
    switch (t) {
    case KL_I8: return kl_e_const_i(a, t, INT8_MIN);
    case KL_I16: return kl_e_const_i(a, t, INT16_MIN);
    case KL_I32: return kl_e_const_i(a, t, INT32_MIN);
    case KL_I64: return kl_e_const_i(a, t, INT64_MIN);
    case KL_U8: case KL_U16: case KL_U32: case KL_U64: return kl_e_const_i(a, t, 0);
    default: return kl_e_const_f(a, t, -INFINITY);
    }
}

/* ---- the loop nest shared by every pool ----------------------------------------------- */

typedef struct pool_nest {
    kl_kernel *k;
    kl_expr *o[KL_MAX_RANK];      /* output spatial loop variables */
    kl_expr *at[KL_MAX_RANK];     /* input spatial coordinate of the current tap */
    kl_expr *inside;              /* the tap is inside the input (NULL: always) */
    kl_expr *x;                   /* X at the tap (unguarded) */
} pool_nest;

/* Parallel loops over y's dims in order (n, c, out... or, channels-last, n, out..., c), then
 * one reduction loop per tap, storing into y. */
static void pool_nest_build(kl_lower *L, const kl_node *n, const char *tag, kl_buffer *x,
                            kl_buffer *y, const kl_window *w, kl_layout layout, pool_nest *p) {
    kl_arena *a = L->arena;
    kl_kernel *k = p->k = kl_kernel_new(L->prog, n, tag);
    int nsp = w->nsp, c_axis = kl_layout_channel_axis(layout, nsp + 2);
    k->extent[0] = x->shape.dim[0];
    k->extent[c_axis] = x->shape.dim[c_axis];
    for (int i = 0; i < nsp; i++) {
        k->extent[kl_layout_spatial_axis(layout, i)] = w->out[i];
        k->extent[2 + nsp + i] = w->kernel[i];
    }
    k->n_par = 2 + nsp;
    k->n_loops = 2 + 2 * nsp;
    kl_expr *xi[KL_MAX_RANK];
    xi[0] = kl_e_iv(a, 0);
    xi[c_axis] = kl_e_iv(a, c_axis);
    p->inside = NULL;
    for (int i = 0; i < nsp; i++) {
        int axis = kl_layout_spatial_axis(layout, i);
        p->o[i] = kl_e_iv(a, axis);
        p->at[i] = xi[axis] = kl_window_input_index(a, w, i, p->o[i], kl_e_iv(a, 2 + nsp + i));
        if (kl_window_needs_guard(w, i))
            p->inside = kl_e_and(a, p->inside, kl_e_in_range(a, p->at[i], w->in[i]));
    }
    p->x = kl_e_load(a, x, xi);
    k->out = y;
    k->out_idx = kl_lower_ivs(L, 2 + nsp);
}

static kl_expr *guard(kl_arena *a, const pool_nest *p, kl_expr *v, kl_expr *outside) {
    return p->inside ? kl_e_select(a, p->inside, v, outside) : v;
}

/* The window of a Global pool: one tap per input position, one output position. */
static void global_window(const kl_shape *x, kl_window *w) {
    memset(w, 0, sizeof *w);
    w->nsp = x->rank - 2;
    for (int i = 0; i < w->nsp; i++) {
        w->in[i] = w->kernel[i] = x->dim[i + 2];
        w->stride[i] = w->dilation[i] = w->out[i] = 1;
    }
}

/* Window of a windowed pool or of a Global one (kernel_shape absent in the op's schema; Global
 * pools only exist in ONNX's layout). */
static bool pool_window(const kl_node *n, const kl_shape *x, bool global, kl_layout layout,
                        kl_window *w, kl_diag *d) {
    if (x->rank < 3)
        return kl_error(d, n, "input X has rank %d; expected [N, C, D1, ...] (rank >= 3)",
                        x->rank);
    if (global) {
        global_window(x, w);
        return true;
    }
    return kl_window_resolve(n, x, layout, NULL, true, w, d);
}

/* ---- shape inference ------------------------------------------------------------------ */

static bool infer_pool_layout(kl_node *n, bool global, bool ints_ok, kl_layout layout,
                              kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    const kl_value *x = n->inputs[0];
    bool int8 = x->dtype == KL_U8 || x->dtype == KL_I8;
    if (!is_float(x->dtype) && !(ints_ok && int8))
        return kl_error(d, n, "X has type %s; %s takes %s", kl_dtype_name(x->dtype), n->op_type,
                        ints_ok ? "floats, int8 or uint8" : "floats");
    kl_window w;
    if (!pool_window(n, &x->shape, global, layout, &w, d)) return false;
    kl_shape y = x->shape;
    for (int i = 0; i < w.nsp; i++) y.dim[kl_layout_spatial_axis(layout, i)] = w.out[i];
    if (!kl_infer_set(n, 0, x->dtype, &y)) return false;
    if (kl_node_output(n, 1) && layout == KL_LAYOUT_NHWC)
        return kl_error(d, n, "%s has no Indices output", n->op_type);
    if (kl_node_output(n, 1) && !kl_infer_set(n, 1, KL_I64, &y)) return false;
    return true;
}

static bool infer_pool_common(kl_node *n, bool global, bool ints_ok, kl_diag *d) {
    return infer_pool_layout(n, global, ints_ok, KL_LAYOUT_NCHW, d);
}

static bool infer_maxpool(kl_node *n, kl_diag *d) { return infer_pool_common(n, false, true, d); }
static bool infer_avgpool(kl_node *n, kl_diag *d) { return infer_pool_common(n, false, false, d); }
static bool infer_maxpool_nhwc(kl_node *n, kl_diag *d) {
    return infer_pool_layout(n, false, true, KL_LAYOUT_NHWC, d);
}
static bool infer_avgpool_nhwc(kl_node *n, kl_diag *d) {
    return infer_pool_layout(n, false, false, KL_LAYOUT_NHWC, d);
}
static bool infer_global_maxpool(kl_node *n, kl_diag *d) {
    return infer_pool_common(n, true, false, d);
}
static bool infer_global_avgpool(kl_node *n, kl_diag *d) {
    return infer_pool_common(n, true, false, d);
}

/* ---- MaxPool ----------------------------------------------------------------------------- */

/* Indices: first position of the maximum, as a flat index into X (N*C*spatial). */
static void lower_max_indices(kl_lower *L, const kl_node *n, kl_buffer *x, kl_buffer *y,
                              kl_buffer *ind, const kl_window *w) {
    kl_arena *a = L->arena;
    pool_nest p;
    pool_nest_build(L, n, "maxpool_indices", x, ind, w, KL_LAYOUT_NCHW, &p);
    /* row-major flat index: ((n*C + c)*D1 + i1)*D2 + i2 ... */
    kl_expr *flat = kl_e_add(a, kl_e_mulc(a, kl_e_iv(a, 0), x->shape.dim[1]), kl_e_iv(a, 1));
    for (int i = 0; i < w->nsp; i++) flat = kl_e_add(a, kl_e_mulc(a, flat, w->in[i]), p.at[i]);
    kl_expr *yi[KL_MAX_RANK];
    for (int i = 0; i < 2 + w->nsp; i++) yi[i] = kl_e_iv(a, i);
    kl_expr *hit = kl_e_binary(a, KL_EQ, p.x, kl_e_load(a, y, yi));
    /* a select, not an and: X must not be read at a tap outside the input */
    if (p.inside) hit = kl_e_select(a, p.inside, hit, kl_e_const_i(a, KL_BOOL, 0));
    p.k->value = kl_e_select(a, hit, flat, kl_e_idx(a, INT64_MAX));
    p.k->reduce = KL_RED_MIN;
    p.k->acc_dtype = KL_I64;
    if (kl_attr_int(n, "storage_order", 0) == 1 && w->nsp > 1) {
        /* split the spatial part into coordinates, then recombine column-major */
        int64_t plane = 1;
        for (int i = 0; i < w->nsp; i++) plane *= w->in[i];
        kl_expr *acc = kl_e_acc(a, KL_I64), *pl = kl_e_idx(a, plane);
        kl_expr *rest = kl_e_binary(a, KL_MOD, acc, pl);
        kl_expr *r = kl_e_binary(a, KL_SUB, acc, rest);
        int64_t col_stride[KL_MAX_RANK], s = 1;
        for (int i = 0; i < w->nsp; i++) col_stride[i] = s, s *= w->in[i];
        for (int i = w->nsp - 1; i >= 0; i--) {
            kl_expr *size = kl_e_idx(a, w->in[i]);
            kl_expr *coord = kl_e_binary(a, KL_MOD, rest, size);
            r = kl_e_add(a, r, kl_e_mulc(a, coord, col_stride[i]));
            rest = kl_e_binary(a, KL_DIV, rest, size);
        }
        p.k->result = r;
    }
    kl_program_add_kernel(L->prog, p.k);
}

static bool lower_maxpool_nest(kl_lower *L, kl_node *n, bool global, kl_layout layout,
                               kl_diag *d) {
    kl_value *xv = n->inputs[0], *yv = n->outputs[0];
    kl_window w;
    if (!pool_window(n, &xv->shape, global, layout, &w, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, xv), *y = kl_lower_buffer(L, yv);
    const char *tag = global ? "globalmaxpool" : layout == KL_LAYOUT_NHWC ? "maxpool_nhwc"
                                                                          : "maxpool";
    pool_nest p;
    pool_nest_build(L, n, tag, x, y, &w, layout, &p);
    p.k->value = guard(L->arena, &p, p.x, lowest_of(L->arena, xv->dtype));
    p.k->reduce = KL_RED_MAX;
    p.k->acc_dtype = xv->dtype;
    kl_program_add_kernel(L->prog, p.k);
    kl_value *iv = kl_node_output(n, 1);
    if (iv) lower_max_indices(L, n, x, y, kl_lower_buffer(L, iv), &w);
    return true;
}

static bool lower_maxpool(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_maxpool_nest(L, n, false, KL_LAYOUT_NCHW, d);
}
static bool lower_maxpool_nhwc(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_maxpool_nest(L, n, false, KL_LAYOUT_NHWC, d);
}
static bool lower_global_maxpool(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_maxpool_nest(L, n, true, KL_LAYOUT_NCHW, d);
}

/* ---- AveragePool ------------------------------------------------------------------------- */

/* Taps of spatial dim i, output position o, that land in [lo, hi). */
/* How many taps k in [0, kernel) of output o read a position in [lo, hi): those with
 * lo <= base + k*dilation < hi, base = o*stride - pad_begin, counted in closed form (a loop
 * over the taps costs a kernel's width per output position, and a model may ask for 2^31). */
static int64_t taps_in(const kl_window *w, int i, int64_t o, int64_t lo, int64_t hi) {
    int64_t base = o * w->stride[i] - w->pad_begin[i], dil = w->dilation[i];
    int64_t first = -kl_div_floor(base - lo, dil); /* ceil((lo - base) / dil) */
    int64_t end = -kl_div_floor(base - hi, dil);   /* ceil((hi - base) / dil) */
    if (first < 0) first = 0;
    if (end > w->kernel[i]) end = w->kernel[i];
    return end > first ? end - first : 0;
}

/* The divisor of each output position; true if they are all `*same`. */
static bool avg_counts(const kl_window *w, bool include_pad, int64_t *counts, int64_t total,
                       int64_t *same) {
    bool uniform = true;
    for (int64_t flat = 0; flat < total; flat++) {
        int64_t rest = flat, c = 1;
        for (int i = w->nsp - 1; i >= 0; i--) {
            int64_t o = rest % w->out[i];
            rest /= w->out[i];
            int64_t lo = include_pad ? -w->pad_begin[i] : 0;
            int64_t hi = include_pad ? w->in[i] + w->pad_end[i] : w->in[i];
            c = kl_mul_saturate(c, taps_in(w, i, o, lo, hi)); /* huge kernels: past int64 */
        }
        counts[flat] = c;
        if (c != counts[0]) uniform = false;
    }
    *same = counts[0];
    return uniform;
}

/* acc / count, the count being a constant or a CONST table over the output positions. */
static kl_expr *avg_divide(kl_lower *L, const kl_node *n, const kl_window *w, const pool_nest *p,
                           kl_dtype acc, bool include_pad, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_shape s = {.rank = w->nsp};
    for (int i = 0; i < w->nsp; i++) s.dim[i] = w->out[i];
    int64_t total = kl_shape_numel(&s), same;
    /* the count table is built here, one entry per output position: bounded like any constant
       kiln makes (the output itself may be far larger and still compile) */
    if (total * (int64_t)sizeof(int64_t) > KL_MAX_BUILT_BYTES) {
        kl_error(d, n, "average pool over %lld output positions: its divisor table would "
                 "exceed %lld bytes", (long long)total, (long long)KL_MAX_BUILT_BYTES);
        return NULL;
    }
    int64_t *counts = kl_alloc_array(a, (size_t)total, sizeof *counts);
    kl_expr *divisor;
    if (avg_counts(w, include_pad, counts, total, &same)) {
        divisor = kl_e_const_f(a, acc, (double)same);
    } else {
        size_t es = kl_dtype_size(acc);
        unsigned char *data = kl_alloc_array(a, (size_t)total, es);
        for (int64_t i = 0; i < total; i++) {
            if (acc == KL_F64) ((double *)data)[i] = (double)counts[i];
            else ((float *)data)[i] = (float)counts[i];
        }
        kl_buffer *t = kl_program_buffer(L->prog, kl_sprintf(a, "%s_counts", n->name),
                                         KL_BUF_CONST, acc, &s);
        t->data = data;
        t->host = data; /* readable by the interpreter during constant folding too */
        divisor = kl_e_load(a, t, (kl_expr **)p->o);
    }
    return kl_e_binary(a, KL_DIV, kl_e_acc(a, acc), divisor);
}

static bool lower_avgpool_nest(kl_lower *L, kl_node *n, bool global, kl_layout layout,
                               kl_diag *d) {
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *yv = n->outputs[0];
    kl_window w;
    if (!pool_window(n, &xv->shape, global, layout, &w, d)) return false;
    kl_dtype acc = acc_dtype_for(xv->dtype);
    if (acc != KL_F32 && acc != KL_F64)
        return kl_error(d, n, "averaging %s is not supported", kl_dtype_name(xv->dtype));
    const char *tag = global ? "globalavgpool" : layout == KL_LAYOUT_NHWC ? "avgpool_nhwc"
                                                                          : "avgpool";
    pool_nest p;
    pool_nest_build(L, n, tag, kl_lower_buffer(L, xv), kl_lower_buffer(L, yv), &w, layout, &p);
    p.k->value = guard(a, &p, kl_e_cast(a, acc, p.x), kl_e_const_f(a, acc, 0.0));
    p.k->reduce = KL_RED_SUM;
    p.k->acc_dtype = acc;
    bool include_pad = !global && kl_attr_int(n, "count_include_pad", 0) != 0;
    kl_expr *mean = avg_divide(L, n, &w, &p, acc, include_pad, d);
    if (!mean) return false;
    p.k->result = kl_e_cast(a, yv->dtype, mean);
    kl_program_add_kernel(L->prog, p.k);
    return true;
}

static bool lower_avgpool(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_avgpool_nest(L, n, false, KL_LAYOUT_NCHW, d);
}
static bool lower_avgpool_nhwc(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_avgpool_nest(L, n, false, KL_LAYOUT_NHWC, d);
}
static bool lower_global_avgpool(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_avgpool_nest(L, n, true, KL_LAYOUT_NCHW, d);
}

/* ---- LpPool ------------------------------------------------------------------------------ */

/* p: a float before opset 2, an int since; 2 by default. */
static double lp_order(const kl_node *n) {
    const kl_attr *at = kl_attr_find(n, "p");
    if (!at) return 2.0;
    return at->type == KL_ATTR_FLOAT ? at->f : (double)at->i;
}

static bool infer_lppool_common(kl_node *n, bool global, kl_diag *d) {
    if (!(lp_order(n) > 0.0)) return kl_error(d, n, "p = %g must be positive", lp_order(n));
    return infer_pool_common(n, global, false, d);
}
static bool infer_lppool(kl_node *n, kl_diag *d) { return infer_lppool_common(n, false, d); }
static bool infer_global_lppool(kl_node *n, kl_diag *d) { return infer_lppool_common(n, true, d); }

static bool lower_lppool_nest(kl_lower *L, kl_node *n, bool global, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *yv = n->outputs[0];
    kl_window w;
    if (!pool_window(n, &xv->shape, global, KL_LAYOUT_NCHW, &w, d)) return false;
    kl_dtype acc = acc_dtype_for(xv->dtype);
    double ord = lp_order(n);
    pool_nest p;
    pool_nest_build(L, n, global ? "globallppool" : "lppool", kl_lower_buffer(L, xv),
                    kl_lower_buffer(L, yv), &w, KL_LAYOUT_NCHW, &p);
    kl_expr *x = kl_e_cast(a, acc, p.x), *v;
    if (ord == 2.0) v = kl_e_binary(a, KL_MUL, x, x);
    else if (ord == 1.0) v = kl_e_unary(a, KL_ABS, x);
    else v = kl_e_binary(a, KL_POW, kl_e_unary(a, KL_ABS, x), kl_e_const_f(a, acc, ord));
    p.k->value = guard(a, &p, v, kl_e_const_f(a, acc, 0.0));
    p.k->reduce = KL_RED_SUM;
    p.k->acc_dtype = acc;
    kl_expr *r = kl_e_acc(a, acc);
    if (ord == 2.0) r = kl_e_unary(a, KL_SQRT, r);
    else if (ord != 1.0) r = kl_e_binary(a, KL_POW, r, kl_e_const_f(a, acc, 1.0 / ord));
    p.k->result = kl_e_cast(a, yv->dtype, r);
    kl_program_add_kernel(L->prog, p.k);
    return true;
}

static bool lower_lppool(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_lppool_nest(L, n, false, d);
}
static bool lower_global_lppool(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_lppool_nest(L, n, true, d);
}

/* ---- MaxUnpool ---------------------------------------------------------------------------- */

/*
 * MaxUnpool puts each X[n, c, i..] at the flat output position I[n, c, i..] and zeros elsewhere.
 * Written as a gather so it needs no scatter: output position p looks at the inputs whose pool
 * window covers p (the taps of the transposed window, as in ConvTranspose) and takes the MAX of
 * those whose index is p; none gives 0. Indices that MaxPool produced always lie in their own
 * window; an index pointing outside it is ignored (documented limit).
 */
static bool unpool_window(const kl_node *n, const kl_shape *x, kl_window *w, kl_diag *d) {
    memset(w, 0, sizeof *w);
    if (x->rank < 3)
        return kl_error(d, n, "input X has rank %d; expected [N, C, D1, ...] (rank >= 3)",
                        x->rank);
    int nsp = w->nsp = x->rank - 2;
    int64_t pads[2 * KL_MAX_RANK];
    if (!kl_attr_find(n, "kernel_shape"))
        return kl_error(d, n, "attribute kernel_shape is required");
    if (!kl_window_ints(n, "kernel_shape", nsp, 1, 1, w->kernel, d) ||
        !kl_window_ints(n, "strides", nsp, 1, 1, w->stride, d) ||
        !kl_window_ints(n, "pads", 2 * nsp, 0, 0, pads, d))
        return false;
    const kl_value *os = kl_node_input(n, 2);
    for (int i = 0; i < nsp; i++) {
        w->in[i] = x->dim[i + 2];
        w->dilation[i] = 1;
        w->pad_begin[i] = pads[i];
        w->pad_end[i] = pads[i + nsp];
        /* output_shape given at run time: the declared output's (infer_maxunpool) */
        w->out[i] = os && os->data ? kl_value_const_int(os, i + 2)
                    : os           ? n->outputs[0]->shape.dim[i + 2]
                       : (w->in[i] - 1) * w->stride[i] + w->kernel[i] - pads[i] - pads[i + nsp];
        if (w->out[i] < 1)
            return kl_error(d, n, "output size %lld in spatial dim %d is not positive",
                            (long long)w->out[i], i);
    }
    return true;
}

static bool infer_maxunpool(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_value *x = n->inputs[0], *ind = n->inputs[1], *os = kl_node_input(n, 2);
    if (!is_float(x->dtype)) return kl_error(d, n, "X has type %s; MaxUnpool takes floats",
                                             kl_dtype_name(x->dtype));
    if (ind->dtype != KL_I64 || !kl_shape_equal(&ind->shape, &x->shape))
        return kl_error(d, n, "indices I must be int64 of X's shape");
    if (os && kl_shape_numel(&os->shape) != x->shape.rank)
        return kl_error(d, n, "output_shape has %lld values, expected %d",
                        (long long)kl_shape_numel(&os->shape), x->shape.rank);
    if (os && kl_input_at_run_time(n, 2)) { /* the declared shape, checked at run time */
        if (!kl_infer_declared(n, 2, d)) return false;
        const kl_shape *y = &n->outputs[0]->shape;
        if (y->rank != x->shape.rank)
            return kl_error(d, n, "the declared output has rank %d, X rank %d", y->rank,
                            x->shape.rank);
        if (y->dim[0] != x->shape.dim[0] || y->dim[1] != x->shape.dim[1])
            return kl_error(d, n, "the declared output's batch and channels (%lld, %lld) are "
                            "not X's (%lld, %lld)", (long long)y->dim[0], (long long)y->dim[1],
                            (long long)x->shape.dim[0], (long long)x->shape.dim[1]);
    }
    kl_window w;
    if (!unpool_window(n, &x->shape, &w, d)) return false;
    kl_shape y = x->shape;
    for (int i = 0; i < w.nsp; i++) y.dim[i + 2] = w.out[i];
    return kl_infer_set(n, 0, x->dtype, &y);
}

static bool lower_maxunpool(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *yv = n->outputs[0];
    kl_window w;
    if (!unpool_window(n, &xv->shape, &w, d)) return false;
    int nsp = w.nsp;
    kl_buffer *x = kl_lower_buffer(L, xv), *ind = kl_lower_buffer(L, n->inputs[1]);
    if (kl_input_at_run_time(n, 2)) { /* output_shape must be the declared shape */
        kl_expr *ok = NULL;
        for (int i = 0; i < yv->shape.rank; i++)
            ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, kl_lower_int_at(L, n, 2, i),
                                             kl_e_idx(a, yv->shape.dim[i])));
        kl_lower_shape_check(L, n, ok);
    }
    kl_kernel *k = kl_kernel_new(L->prog, n, "maxunpool");
    k->extent[0] = xv->shape.dim[0];
    k->extent[1] = xv->shape.dim[1];
    for (int i = 0; i < nsp; i++) {
        k->extent[2 + i] = w.out[i];
        k->extent[2 + nsp + i] = w.kernel[i];
    }
    k->n_par = 2 + nsp;
    k->n_loops = 2 + 2 * nsp;
    kl_expr *xi[KL_MAX_RANK], *valid = NULL;
    xi[0] = kl_e_iv(a, 0);
    xi[1] = kl_e_iv(a, 1);
    kl_expr *flat = kl_e_add(a, kl_e_mulc(a, xi[0], xv->shape.dim[1]), xi[1]);
    for (int i = 0; i < nsp; i++) {
        kl_expr *o = kl_e_iv(a, 2 + i);
        xi[i + 2] = kl_window_source_index(a, &w, i, o, kl_e_iv(a, 2 + nsp + i), &valid);
        flat = kl_e_add(a, kl_e_mulc(a, flat, w.out[i]), o);
    }
    kl_dtype t = xv->dtype, acc = acc_dtype_for(t);
    kl_expr *lowest = lowest_of(a, acc);
    kl_expr *hit = kl_e_select(a, kl_e_binary(a, KL_EQ, kl_e_load(a, ind, xi), flat),
                               kl_e_cast(a, acc, kl_e_load(a, x, xi)), lowest);
    k->value = kl_e_select(a, valid, hit, lowest);
    k->reduce = KL_RED_MAX;
    k->acc_dtype = acc;
    kl_expr *r = kl_e_acc(a, acc);
    k->result = kl_e_cast(a, t, kl_e_select(a, kl_e_binary(a, KL_EQ, r, lowest),
                                            kl_e_const_f(a, acc, 0.0), r));
    k->out = kl_lower_buffer(L, yv);
    k->out_idx = kl_lower_ivs(L, 2 + nsp);
    kl_program_add_kernel(L->prog, k);
    return true;
}

/* ---- the table -------------------------------------------------------------------------- */

static const char *const maxpool_attrs[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                            "pads", "storage_order", "strides", NULL};
static const char *const avgpool_attrs[] = {"auto_pad", "ceil_mode", "count_include_pad",
                                            "dilations", "kernel_shape", "pads", "strides", NULL};
static const char *const lppool_attrs[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                           "p", "pads", "strides", NULL};
static const char *const global_lp_attrs[] = {"p", NULL};
static const char *const maxunpool_attrs[] = {"kernel_shape", "pads", "strides", NULL};
static const char *const no_attrs[] = {NULL};

const kl_op kl_ops_pool[] = {
    {"", "MaxPool", 1, KL_OPSET_LATEST, maxpool_attrs, infer_maxpool, lower_maxpool},
    {"", "AveragePool", 1, KL_OPSET_LATEST, avgpool_attrs, infer_avgpool, lower_avgpool},
    {"", "LpPool", 1, KL_OPSET_LATEST, lppool_attrs, infer_lppool, lower_lppool},
    {"", "GlobalMaxPool", 1, KL_OPSET_LATEST, no_attrs, infer_global_maxpool,
     lower_global_maxpool},
    {"", "GlobalAveragePool", 1, KL_OPSET_LATEST, no_attrs, infer_global_avgpool,
     lower_global_avgpool},
    {"", "GlobalLpPool", 1, KL_OPSET_LATEST, global_lp_attrs, infer_global_lppool,
     lower_global_lppool},
    {"", "MaxUnpool", 9, KL_OPSET_LATEST, maxunpool_attrs, infer_maxunpool, lower_maxunpool},
    /* kiln's own: X and Y channels-last (made by passes/layout.c); no Indices output */
    {"kiln", "MaxPoolNHWC", 1, 1, maxpool_attrs, infer_maxpool_nhwc, lower_maxpool_nhwc},
    {"kiln", "AveragePoolNHWC", 1, 1, avgpool_attrs, infer_avgpool_nhwc, lower_avgpool_nhwc},
    {0},
};
