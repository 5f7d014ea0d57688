/*
 * gridsample.c — GridSample (opset 16: 2-D; 20 and later: any number of spatial dimensions).
 *
 * Unlike Resize, the sampling positions are data (the grid), so the coordinate arithmetic
 * cannot become constant tables: it is written out as expressions over the grid's loads.
 * One kernel over the output [N, C, O1..Ok]; for linear and cubic modes, one reduction loop
 * per spatial dimension runs over that dimension's taps (2 or 4), so the value is
 *     sum over taps t of (prod_i w_i(t_i)) * pixel(base_1 + t_1, ..., base_k + t_k)
 * where pixel() applies the padding mode to an integer position. The steps follow PyTorch's
 * grid_sampler (which ONNX's reference, onnx/reference/ops/op_grid_sample.py, mirrors):
 * denormalize the grid value into a pixel coordinate (align_corners decides whether -1 and 1
 * are the centres or the edges of the corner pixels); round it for nearest; move a coordinate
 * outside the borders back inside (clamp or reflect); then read taps, each again padded.
 * grid[..., 0] is the coordinate along the last spatial dimension (x, the width).
 */
#include <math.h>
#include <string.h>

#include "arith_util.h"

static const char *const grid_sample_attrs[] = {"align_corners", "mode", "padding_mode", NULL};

typedef enum gs_mode { GS_NEAREST, GS_LINEAR, GS_CUBIC } gs_mode;
typedef enum gs_pad { GS_ZEROS, GS_BORDER, GS_REFLECTION } gs_pad;

typedef struct gs {
    kl_arena *a;
    kl_dtype u;          /* compute type */
    gs_mode mode;
    gs_pad pad;
    bool align;
    int k;               /* spatial dimensions */
    const kl_shape *x;   /* X's shape [N, C, D1..Dk] */
} gs;

static bool gs_attrs(kl_node *n, gs *g, kl_diag *d) {
    const char *m = kl_attr_string(n, "mode", n->opset >= 20 ? "linear" : "bilinear");
    if (!strcmp(m, "nearest")) g->mode = GS_NEAREST;
    else if (!strcmp(m, "linear") || !strcmp(m, "bilinear")) g->mode = GS_LINEAR;
    else if (!strcmp(m, "cubic") || !strcmp(m, "bicubic")) g->mode = GS_CUBIC;
    else return kl_error(d, n, "unknown mode '%s'", m);
    const char *p = kl_attr_string(n, "padding_mode", "zeros");
    if (!strcmp(p, "zeros")) g->pad = GS_ZEROS;
    else if (!strcmp(p, "border")) g->pad = GS_BORDER;
    else if (!strcmp(p, "reflection")) g->pad = GS_REFLECTION;
    else return kl_error(d, n, "unknown padding_mode '%s'", p);
    g->align = kl_attr_int(n, "align_corners", 0) != 0;
    return true;
}

/* X [N, C, D1..Dk] and grid [N, O1..Ok, k], both floating-point; out = [N, C, O1..Ok]. */
static bool gs_shapes(kl_node *n, gs *g, kl_shape *out, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d) || !kl_arith_need_float(n, 1, d)) return false;
    if (!gs_attrs(n, g, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape, *gr = &n->inputs[1]->shape;
    if (x->rank < 3) return kl_error(d, n, "X must have rank 3 or more, not %d", x->rank);
    g->k = x->rank - 2;
    if (n->opset < 20 && g->k != 2) return kl_error(d, n, "GridSample-%d takes 4-D X only",
                                                    n->opset);
    if (gr->rank != x->rank || gr->dim[0] != x->dim[0] || gr->dim[gr->rank - 1] != g->k)
        return kl_error(d, n, "grid must be [N, O1..O%d, %d] with X's N", g->k, g->k);
    g->x = x;
    g->u = kl_arith_compute_dtype(n->inputs[0]->dtype);
    *out = *x;
    for (int i = 0; i < g->k; i++) out->dim[2 + i] = gr->dim[1 + i];
    return true;
}

static bool infer_grid_sample(kl_node *n, kl_diag *d) {
    gs g;
    kl_shape out;
    if (!gs_shapes(n, &g, &out, d)) return false;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* ---- expressions ---- */

static kl_expr *cf(const gs *g, double v) { return kl_e_const_f(g->a, g->u, v); }
static kl_expr *fop(const gs *g, kl_binop op, kl_expr *x, kl_expr *y) {
    return kl_e_binary(g->a, op, x, y);
}

/* x reflected by the borders [lo, hi] until it lies inside (PyTorch's reflect_coordinates,
 * in the reference's form): the distance past the near border, folded by the border width;
 * an even number of folds measures from that border, an odd one from the other. */
static kl_expr *reflect(const gs *g, kl_expr *x, double lo, double hi) {
    kl_arena *a = g->a;
    kl_expr *below = fop(g, KL_LT, x, cf(g, lo)), *above = fop(g, KL_GT, x, cf(g, hi));
    kl_expr *outside = fop(g, KL_OR, below, above);
    double width = hi - lo;
    if (width <= 0) return kl_e_select(a, outside, cf(g, lo), x);
    kl_expr *dx = kl_e_select(a, below, fop(g, KL_SUB, cf(g, lo), x), fop(g, KL_SUB, x, cf(g, hi)));
    kl_expr *folds = kl_e_unary(a, KL_FLOOR, fop(g, KL_DIV, dx, cf(g, width)));
    kl_expr *r = fop(g, KL_SUB, dx, fop(g, KL_MUL, folds, cf(g, width)));
    kl_expr *even = fop(g, KL_EQ, fop(g, KL_FMOD, folds, cf(g, 2)), cf(g, 0));
    kl_expr *from_lo = fop(g, KL_ADD, cf(g, lo), r), *from_hi = fop(g, KL_SUB, cf(g, hi), r);
    kl_expr *in = kl_e_select(a, below, kl_e_select(a, even, from_lo, from_hi),
                              kl_e_select(a, even, from_hi, from_lo));
    return kl_e_select(a, outside, in, x);
}

/* The borders of spatial dimension i: the pixel centres with align_corners, else the edges. */
static void borders(const gs *g, int i, double *lo, double *hi) {
    int64_t size = g->x->dim[2 + i];
    *lo = g->align ? 0 : -0.5;
    *hi = g->align ? (double)size - 1 : (double)size - 0.5;
}

/* The pixel coordinate along spatial dimension i of the grid value at the output position
 * (loops 0 and 2..k+1 are n and O1..Ok), rounded for nearest and moved inside the borders
 * for border and reflection padding. */
static kl_expr *coordinate(const gs *g, kl_buffer *grid, int i) {
    kl_arena *a = g->a;
    int64_t size = g->x->dim[2 + i];
    kl_expr *idx[KL_MAX_RANK];
    idx[0] = kl_e_iv(a, 0);
    for (int j = 0; j < g->k; j++) idx[1 + j] = kl_e_iv(a, 2 + j);
    idx[1 + g->k] = kl_e_idx(a, g->k - 1 - i);
    kl_expr *v = kl_e_cast(a, g->u, kl_e_load(a, grid, idx));
    kl_expr *x = fop(g, KL_ADD, v, cf(g, 1));
    x = g->align ? fop(g, KL_MUL, x, cf(g, 0.5 * (double)(size - 1)))
                 : fop(g, KL_MUL, fop(g, KL_SUB, fop(g, KL_MUL, x, cf(g, (double)size)), cf(g, 1)),
                       cf(g, 0.5));
    /* nearest rounds half to even in every dimension, as the conformance data does (older
     * references rounded 3-D half away from zero, like PyTorch's std::round) */
    if (g->mode == GS_NEAREST) x = kl_e_unary(a, KL_ROUND, x);
    double lo, hi;
    borders(g, i, &lo, &hi);
    if (g->pad == GS_BORDER) {
        kl_expr *outside = fop(g, KL_OR, fop(g, KL_LT, x, cf(g, lo)), fop(g, KL_GT, x, cf(g, hi)));
        kl_expr *clamped = fop(g, KL_MIN, fop(g, KL_MAX, x, cf(g, 0)), cf(g, (double)size - 1));
        x = kl_e_select(a, outside, clamped, x);
    } else if (g->pad == GS_REFLECTION) {
        x = reflect(g, x, lo, hi);
    }
    return x;
}

/* An integer position along spatial dimension i after padding: clamped (border), reflected
 * (reflection), or as it is (zeros: the caller tests it). */
static kl_expr *padded_index(const gs *g, int i, kl_expr *p) {
    kl_arena *a = g->a;
    int64_t size = g->x->dim[2 + i];
    if (g->pad == GS_BORDER)
        return kl_e_binary(a, KL_MIN, kl_e_binary(a, KL_MAX, p, kl_e_idx(a, 0)),
                           kl_e_idx(a, size - 1));
    if (g->pad == GS_REFLECTION) {
        double lo, hi;
        borders(g, i, &lo, &hi);
        return kl_e_cast(a, KL_I64, reflect(g, kl_e_cast(a, g->u, p), lo, hi));
    }
    return p;
}

/* X[n, c, pos...] with the padding mode applied (zeros: 0 outside). */
static kl_expr *pixel(const gs *g, kl_buffer *x, kl_expr *const *pos) {
    kl_arena *a = g->a;
    kl_expr *idx[KL_MAX_RANK], *inside = NULL;
    idx[0] = kl_e_iv(a, 0);
    idx[1] = kl_e_iv(a, 1);
    for (int i = 0; i < g->k; i++) {
        idx[2 + i] = padded_index(g, i, pos[i]);
        if (g->pad == GS_ZEROS) inside = kl_e_and(a, inside, kl_e_in_range(a, idx[2 + i],
                                                                          g->x->dim[2 + i]));
    }
    kl_expr *v = kl_e_cast(a, g->u, kl_e_load(a, x, idx));
    return inside ? kl_e_select(a, inside, v, cf(g, 0)) : v;
}

/* Keys' cubic convolution weight (a = -0.75) of the tap at distance s from x. */
static kl_expr *cubic_weight(const gs *g, kl_expr *s, bool near) {
    const double A = -0.75;
    if (near) /* |s| <= 1: ((A + 2) s - (A + 3)) s^2 + 1 */
        return fop(g, KL_ADD, fop(g, KL_MUL, fop(g, KL_SUB, fop(g, KL_MUL, cf(g, A + 2), s),
                                                 cf(g, A + 3)),
                                      fop(g, KL_MUL, s, s)),
                   cf(g, 1));
    /* 1 < |s| < 2: ((A s - 5A) s + 8A) s - 4A */
    kl_expr *t = fop(g, KL_SUB, fop(g, KL_MUL, cf(g, A), s), cf(g, 5 * A));
    t = fop(g, KL_ADD, fop(g, KL_MUL, t, s), cf(g, 8 * A));
    return fop(g, KL_SUB, fop(g, KL_MUL, t, s), cf(g, 4 * A));
}

/* Tap t (a loop variable, 0..taps-1) of coordinate x: its integer position and weight. The
 * position is computed from floor(x) clamped a few pixels past the image, so that a wild grid
 * value cannot overflow the integer arithmetic (such taps read padding either way). */
static void tap(const gs *g, int i, kl_expr *x, kl_expr *t, kl_expr **pos, kl_expr **w) {
    kl_arena *a = g->a;
    int64_t size = g->x->dim[2 + i];
    kl_expr *fl = kl_e_unary(a, KL_FLOOR, x);
    kl_expr *frac = fop(g, KL_SUB, x, fl);
    kl_expr *safe = fop(g, KL_MIN, fop(g, KL_MAX, fl, cf(g, -8)), cf(g, (double)size + 8));
    kl_expr *base = kl_e_cast(a, KL_I64, safe);
    kl_expr *is[4];
    for (int j = 0; j < 4; j++) is[j] = kl_e_binary(a, KL_EQ, t, kl_e_idx(a, j));
    if (g->mode == GS_LINEAR) {
        *pos = kl_e_add(a, base, t);
        *w = kl_e_select(a, is[0], fop(g, KL_SUB, cf(g, 1), frac), frac);
        return;
    }
    /* cubic: taps floor(x) - 1 .. floor(x) + 2 at distances 1 + frac, frac, 1 - frac, 2 - frac */
    *pos = kl_e_add(a, kl_e_addc(a, base, -1), t);
    kl_expr *one_m = fop(g, KL_SUB, cf(g, 1), frac);
    kl_expr *w0 = cubic_weight(g, fop(g, KL_ADD, frac, cf(g, 1)), false);
    kl_expr *w1 = cubic_weight(g, frac, true);
    kl_expr *w2 = cubic_weight(g, one_m, true);
    kl_expr *w3 = cubic_weight(g, fop(g, KL_SUB, cf(g, 2), frac), false);
    *w = kl_e_select(a, is[0], w0, kl_e_select(a, is[1], w1, kl_e_select(a, is[2], w2, w3)));
}

static bool lower_grid_sample(kl_lower *L, kl_node *n, kl_diag *d) {
    gs g = {.a = L->arena};
    kl_shape os;
    if (!gs_shapes(n, &g, &os, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *grid = kl_lower_buffer(L, n->inputs[1]);
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    k->n_par = os.rank;
    for (int i = 0; i < os.rank; i++) k->extent[i] = os.dim[i];
    k->out = out;
    k->out_idx = kl_lower_ivs(L, os.rank);
    kl_expr *pos[KL_MAX_RANK];
    if (g.mode == GS_NEAREST) {
        k->n_loops = os.rank;
        for (int i = 0; i < g.k; i++) {
            kl_expr *c = coordinate(&g, grid, i);
            /* far outside only matters for zeros padding, where it reads 0 either way */
            double size = (double)g.x->dim[2 + i];
            c = fop(&g, KL_MIN, fop(&g, KL_MAX, c, cf(&g, -8)), cf(&g, size + 8));
            pos[i] = kl_e_cast(a, KL_I64, c);
        }
        k->value = kl_e_cast(a, out->dtype, pixel(&g, x, pos));
        kl_program_add_kernel(L->prog, k);
        return true;
    }
    int taps = g.mode == GS_LINEAR ? 2 : 4;
    k->n_loops = os.rank + g.k;
    kl_expr *weight = NULL;
    for (int i = 0; i < g.k; i++) {
        k->extent[os.rank + i] = taps;
        kl_expr *w;
        tap(&g, i, coordinate(&g, grid, i), kl_e_iv(a, os.rank + i), &pos[i], &w);
        weight = weight ? fop(&g, KL_MUL, weight, w) : w;
    }
    k->value = fop(&g, KL_MUL, weight, pixel(&g, x, pos));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = g.u;
    k->result = kl_e_cast(a, out->dtype, kl_e_acc(a, g.u));
    kl_program_add_kernel(L->prog, k);
    return true;
}

const kl_op kl_ops_gridsample[] = {
    {"", "GridSample", 16, KL_OPSET_LATEST, grid_sample_attrs, infer_grid_sample,
     lower_grid_sample},
    {0},
};
