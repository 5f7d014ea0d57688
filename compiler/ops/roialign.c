/*
 * roialign.c — RoiAlign (opset 10, 16 and later).
 *
 * Each region of interest (x1, y1, x2, y2, scaled by spatial_scale) is cut into
 * output_height x output_width bins; each bin averages (or, mode max, takes the largest of)
 * sampling_ratio^2 bilinear samples spread evenly inside it. The region comes from data, so
 * its arithmetic is written as expressions: one kernel over the output [R, C, oh, ow] whose two
 * reduction loops are the samples of a bin. Sampling follows ONNX Runtime's kernel, which the
 * ONNX reference copies: a sample more than one pixel outside the image counts 0, one inside
 * that margin is clamped to the edge; max mode takes the largest of the four weighted corner
 * values of each sample. sampling_ratio 0 (as many samples as the region is pixels high or
 * wide) would make the loop counts data, so it is refused.
 */
#include <string.h>

#include "arith_util.h"

static const char *const roi_align_attrs[] = {"coordinate_transformation_mode", "mode",
                                              "output_height", "output_width", "sampling_ratio",
                                              "spatial_scale", NULL};

typedef struct roi {
    kl_arena *a;
    kl_dtype u;
    bool max, half_pixel;
    int64_t oh, ow, grid, H, W;
    double scale;
} roi;

static bool roi_attrs(kl_node *n, roi *r, kl_diag *d) {
    const char *mode = kl_attr_string(n, "mode", "avg");
    if (strcmp(mode, "avg") && strcmp(mode, "max"))
        return kl_error(d, n, "mode '%s' is neither 'avg' nor 'max'", mode);
    r->max = !strcmp(mode, "max");
    /* opset 10 had no such attribute and behaved as output_half_pixel */
    const char *ct = kl_attr_string(n, "coordinate_transformation_mode",
                                    n->opset >= 16 ? "half_pixel" : "output_half_pixel");
    if (strcmp(ct, "half_pixel") && strcmp(ct, "output_half_pixel"))
        return kl_error(d, n, "coordinate_transformation_mode '%s' is not known", ct);
    r->half_pixel = !strcmp(ct, "half_pixel");
    r->oh = kl_attr_int(n, "output_height", 1);
    r->ow = kl_attr_int(n, "output_width", 1);
    r->grid = kl_attr_int(n, "sampling_ratio", 0);
    r->scale = kl_attr_float(n, "spatial_scale", 1.0);
    if (r->oh <= 0 || r->ow <= 0)
        return kl_error(d, n, "output_height and output_width must be positive");
    if (r->grid <= 0)
        return kl_error(d, n, "sampling_ratio %lld: an adaptive number of samples (0) depends on "
                        "the regions' data, which kiln cannot compile; give a positive ratio",
                        (long long)r->grid);
    if (r->grid > 64) return kl_error(d, n, "sampling_ratio %lld is too large",
                                      (long long)r->grid);
    return true;
}

/* X [N, C, H, W], rois [R, 4], batch_indices [R] -> [R, C, oh, ow] */
static bool roi_shapes(kl_node *n, roi *r, kl_shape *out, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d) || !kl_arith_need_float(n, 1, d) ||
        !kl_infer_need_input(n, 2, d))
        return false;
    if (!roi_attrs(n, r, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape, *rois = &n->inputs[1]->shape,
                   *bi = &n->inputs[2]->shape;
    if (x->rank != 4) return kl_error(d, n, "X must be [N, C, H, W], not rank %d", x->rank);
    if (rois->rank != 2 || rois->dim[1] != 4)
        return kl_error(d, n, "rois must be [num_rois, 4]");
    if (!kl_dtype_is_signed_int(n->inputs[2]->dtype) || bi->rank != 1 ||
        bi->dim[0] != rois->dim[0])
        return kl_error(d, n, "batch_indices must be integers of shape [num_rois]");
    r->H = x->dim[2];
    r->W = x->dim[3];
    r->u = kl_arith_compute_dtype(n->inputs[0]->dtype);
    *out = (kl_shape){.rank = 4, .dim = {rois->dim[0], x->dim[1], r->oh, r->ow}};
    return true;
}

static bool infer_roi_align(kl_node *n, kl_diag *d) {
    roi r;
    kl_shape out;
    return roi_shapes(n, &r, &out, d) && kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

static kl_expr *cf(const roi *r, double v) { return kl_e_const_f(r->a, r->u, v); }
static kl_expr *op(const roi *r, kl_binop o, kl_expr *x, kl_expr *y) {
    return kl_e_binary(r->a, o, x, y);
}

/* One axis of a sample: the region's start and bin size along it (from rois columns lo and
 * hi), the sample position (bin loop `bin`, sample loop `s`), clamped as ONNX Runtime does.
 * Sets the two integer taps, the weight of the high one and whether the sample is outside. */
typedef struct axis_taps {
    kl_expr *low, *high, *frac, *outside;
} axis_taps;

static axis_taps sample_axis(const roi *r, kl_buffer *rois, int lo, int hi, int bin, int s,
                             int64_t bins, int64_t size) {
    kl_arena *a = r->a;
    kl_expr *ri = kl_e_iv(a, 0);
    kl_expr *c0 = kl_e_cast(a, r->u, kl_e_load(a, rois, (kl_expr *[]){ri, kl_e_idx(a, lo)}));
    kl_expr *c1 = kl_e_cast(a, r->u, kl_e_load(a, rois, (kl_expr *[]){ri, kl_e_idx(a, hi)}));
    double off = r->half_pixel ? 0.5 : 0;
    kl_expr *start = op(r, KL_SUB, op(r, KL_MUL, c0, cf(r, r->scale)), cf(r, off));
    kl_expr *end = op(r, KL_SUB, op(r, KL_MUL, c1, cf(r, r->scale)), cf(r, off));
    kl_expr *extent = op(r, KL_SUB, end, start);
    if (!r->half_pixel) extent = op(r, KL_MAX, extent, cf(r, 1)); /* legacy: at least a pixel */
    kl_expr *bin_size = op(r, KL_DIV, extent, cf(r, (double)bins));
    /* start + bin * bin_size + (s + 0.5) * bin_size / grid */
    kl_expr *where = op(r, KL_ADD, kl_e_cast(a, r->u, kl_e_iv(a, bin)),
                        op(r, KL_DIV, op(r, KL_ADD, kl_e_cast(a, r->u, kl_e_iv(a, s)), cf(r, 0.5)),
                           cf(r, (double)r->grid)));
    kl_expr *p = op(r, KL_ADD, start, op(r, KL_MUL, where, bin_size));
    axis_taps t;
    t.outside = op(r, KL_OR, op(r, KL_LT, p, cf(r, -1)), op(r, KL_GT, p, cf(r, (double)size)));
    /* inside the margin: clamp to [0, size]; the last pixel takes both taps */
    kl_expr *pc = op(r, KL_MIN, op(r, KL_MAX, p, cf(r, 0)), cf(r, (double)size));
    kl_expr *l0 = kl_e_cast(a, KL_I64, pc);
    kl_expr *edge = kl_e_binary(a, KL_GE, l0, kl_e_idx(a, size - 1));
    kl_expr *last = kl_e_idx(a, size - 1);
    t.low = kl_e_select(a, edge, last, l0);
    t.high = kl_e_select(a, edge, last, kl_e_addc(a, l0, 1));
    t.frac = kl_e_select(a, edge, cf(r, 0), op(r, KL_SUB, pc, kl_e_cast(a, r->u, l0)));
    return t;
}

static bool lower_roi_align(kl_lower *L, kl_node *n, kl_diag *d) {
    roi r = {.a = L->arena};
    kl_shape os;
    if (!roi_shapes(n, &r, &os, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *rois = kl_lower_buffer(L, n->inputs[1]);
    kl_buffer *bi = kl_lower_buffer(L, n->inputs[2]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    k->n_par = 4;
    k->n_loops = 6; /* r, c, ph, pw, then the samples iy, ix */
    for (int i = 0; i < 4; i++) k->extent[i] = os.dim[i];
    k->extent[4] = k->extent[5] = r.grid;
    k->out = out;
    k->out_idx = kl_lower_ivs(L, 4);
    axis_taps ty = sample_axis(&r, rois, 1, 3, 2, 4, r.oh, r.H);
    axis_taps tx = sample_axis(&r, rois, 0, 2, 3, 5, r.ow, r.W);
    kl_expr *ri = kl_e_iv(a, 0);
    kl_expr *b = kl_e_binary(a, KL_MIN,
                             kl_e_binary(a, KL_MAX, kl_e_cast(a, KL_I64, kl_e_load(a, bi, &ri)),
                                         kl_e_idx(a, 0)),
                             kl_e_idx(a, x->shape.dim[0] - 1));
    kl_expr *ys[2] = {ty.low, ty.high}, *xs[2] = {tx.low, tx.high};
    kl_expr *wy[2] = {op(&r, KL_SUB, cf(&r, 1), ty.frac), ty.frac};
    kl_expr *wx[2] = {op(&r, KL_SUB, cf(&r, 1), tx.frac), tx.frac};
    kl_expr *v = NULL;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            kl_expr *px = kl_e_cast(a, r.u, kl_e_load(a, x, (kl_expr *[]){b, kl_e_iv(a, 1),
                                                                        ys[i], xs[j]}));
            kl_expr *term = op(&r, KL_MUL, op(&r, KL_MUL, wy[i], wx[j]), px);
            v = !v ? term : op(&r, r.max ? KL_MAX : KL_ADD, v, term);
        }
    k->value = kl_e_select(a, op(&r, KL_OR, ty.outside, tx.outside), cf(&r, 0), v);
    k->reduce = r.max ? KL_RED_MAX : KL_RED_SUM;
    k->acc_dtype = r.u;
    kl_expr *res = kl_e_acc(a, r.u);
    if (!r.max) res = op(&r, KL_DIV, res, cf(&r, (double)(r.grid * r.grid)));
    k->result = kl_e_cast(a, out->dtype, res);
    kl_program_add_kernel(L->prog, k);
    return true;
}

const kl_op kl_ops_roialign[] = {
    {"", "RoiAlign", 10, KL_OPSET_LATEST, roi_align_attrs, infer_roi_align, lower_roi_align},
    {0},
};
