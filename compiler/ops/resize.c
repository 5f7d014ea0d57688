/*
 * resize.c — Resize (opset 10..) and its predecessor Upsample (7..9).
 *
 * Resizing is separable: along each resized axis, output position o reads a few input
 * positions (taps) with weights that depend only on o, the sizes and the attributes, never on
 * the data. So the whole coordinate arithmetic (the six coordinate transformation modes, the
 * nearest rounding modes, linear and cubic coefficients, exclude_outside, edge clamping,
 * tf_crop_and_resize's outside test) runs here at compile time in double precision and becomes
 * small constant tables per axis: tap index [out, taps], tap weight [out, taps] and, for
 * tf_crop_and_resize, inside [out]. The kernel then only gathers:
 *     nearest:        y[o] = x[idx_0[o_0], idx_1[o_1], ...]
 *     linear / cubic: y[o] = sum over taps t of x[idx_a[o_a, t_a] ...] * prod_a w_a[o_a, t_a]
 * with one reduction loop per resized axis. The tables follow the ONNX reference
 * (onnx/reference/ops/op_resize.py): taps are the n input positions nearest to x_original,
 * preferring the left, clamped to the axis (edge padding). With antialias, downscaling
 * (scale < 1) stretches the linear or cubic filter by 1 / scale: more taps, weights from the
 * filter at scale * distance, normalized to sum 1 (the reference's *_coeffs_antialias).
 * When scales, sizes or roi arrive only at run time (the output shape declared by the model),
 * small kernels compute the same tables from the given values before the gather, and a check
 * kernel holds the values to the declared shape (section "operands given at run time").
 */
#include <math.h>
#include <string.h>

#include "move_util.h"

static const char *const resize_attrs[] = {
    "mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside",
    "extrapolation_value", "antialias", "axes", "keep_aspect_ratio_policy", "scales", NULL,
};

typedef enum resize_mode { RESIZE_NEAREST, RESIZE_LINEAR, RESIZE_CUBIC } resize_mode;

/* Everything the tables depend on, per axis of the input. */
typedef struct resize_plan {
    resize_mode mode;
    const char *coord;        /* coordinate_transformation_mode */
    const char *nearest;      /* nearest_mode */
    double cubic_a, extrapolation;
    bool exclude_outside;
    bool antialias;           /* linear / cubic: the filter stretched by 1 / scale downscaling */
    bool resized[KL_MAX_RANK];
    double scale[KL_MAX_RANK];
    double roi_start[KL_MAX_RANK], roi_end[KL_MAX_RANK];
    kl_shape in, out;
} resize_plan;

static bool resize_mode_of(kl_node *n, resize_plan *p, kl_diag *d) {
    const char *m = kl_attr_string(n, "mode", "nearest");
    if (!strcmp(m, "nearest")) p->mode = RESIZE_NEAREST;
    else if (!strcmp(m, "linear") || !strcmp(m, "bilinear")) p->mode = RESIZE_LINEAR;
    else if (!strcmp(m, "cubic") && n->opset >= 11) p->mode = RESIZE_CUBIC;
    else return kl_error(d, n, "unknown mode '%s'", m);
    /* Upsample and Resize-10 map coordinates asymmetrically and take the floor */
    bool old = !strcmp(n->op_type, "Upsample") || n->opset < 11;
    p->coord = old ? "asymmetric"
                   : kl_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    p->nearest = old ? "floor" : kl_attr_string(n, "nearest_mode", "round_prefer_floor");
    p->cubic_a = kl_attr_float(n, "cubic_coeff_a", -0.75);
    p->exclude_outside = kl_attr_int(n, "exclude_outside", 0) != 0;
    p->extrapolation = kl_attr_float(n, "extrapolation_value", 0.0);
    static const char *const coords[] = {"half_pixel", "half_pixel_symmetric",
                                         "pytorch_half_pixel", "align_corners", "asymmetric",
                                         "tf_crop_and_resize", NULL};
    bool known = false;
    for (int i = 0; coords[i]; i++) known |= !strcmp(p->coord, coords[i]);
    if (!known) return kl_error(d, n, "unknown coordinate_transformation_mode '%s'", p->coord);
    if (strcmp(p->nearest, "round_prefer_floor") && strcmp(p->nearest, "round_prefer_ceil") &&
        strcmp(p->nearest, "floor") && strcmp(p->nearest, "ceil"))
        return kl_error(d, n, "unknown nearest_mode '%s'", p->nearest);
    /* nearest mode has no filter to stretch: antialias leaves it alone, as in the reference */
    p->antialias = kl_attr_int(n, "antialias", 0) != 0 && p->mode != RESIZE_NEAREST;
    return true;
}

/* Which inputs hold roi, scales and sizes, by version. */
static void resize_input_slots(const kl_node *n, int *roi, int *scales, int *sizes) {
    *roi = *scales = *sizes = -1;
    if (!strcmp(n->op_type, "Upsample")) {
        if (n->opset >= 9) *scales = 1;
    } else if (n->opset < 11) {
        *scales = 1;
    } else {
        *roi = 1, *scales = 2, *sizes = 3;
    }
}

/* A constant float list input (scales, roi); n = -1 when absent or empty. */
static bool float_list(kl_node *n, int i, const kl_value **out, int64_t *count, kl_diag *d) {
    *out = NULL;
    *count = -1;
    kl_value *v = i >= 0 ? kl_node_input(n, i) : NULL;
    if (!v || (v->has_shape && kl_shape_numel(&v->shape) == 0)) return true;
    if (!kl_infer_need_const(n, i, d)) return false;
    *out = v;
    *count = kl_shape_numel(&v->shape);
    return true;
}

/* The axes that scales / sizes / roi refer to (attribute `axes` from opset 18). */
static bool resize_axes(kl_node *n, int rank, int64_t count, int axes[KL_MAX_RANK], kl_diag *d) {
    kl_int_list given = kl_int_list_from_attr(n, "axes");
    if (given.n < 0) {
        if (count != rank)
            return kl_error(d, n, "scales/sizes have %" PRId64 " entries for an input of rank %d",
                            count, rank);
        for (int i = 0; i < rank; i++) axes[i] = i;
        return true;
    }
    if (given.n != count)
        return kl_error(d, n, "axes has %" PRId64 " entries but scales/sizes have %" PRId64,
                        given.n, count);
    for (int64_t i = 0; i < count; i++)
        if (!kl_axis_normalize(kl_int_list_at(&given, i), rank, &axes[i]))
            return kl_error(d, n, "axis %" PRId64 " is out of range", kl_int_list_at(&given, i));
    return true;
}

/* Output sizes and per-axis scales from `scales` or `sizes` (+ keep_aspect_ratio_policy). */
static bool resize_sizes(kl_node *n, resize_plan *p, kl_diag *d) {
    int roi_i, scales_i, sizes_i, axes[KL_MAX_RANK];
    resize_input_slots(n, &roi_i, &scales_i, &sizes_i);
    const kl_value *scales, *roi;
    int64_t n_scales, n_roi;
    kl_int_list sizes = {.n = -1};
    if (!float_list(n, scales_i, &scales, &n_scales, d) ||
        !float_list(n, roi_i, &roi, &n_roi, d))
        return false;
    if (sizes_i >= 0 && kl_node_input(n, sizes_i) &&
        !kl_int_list_from_input(n, sizes_i, "sizes", &sizes, d))
        return false;
    int rank = p->in.rank;
    p->out = p->in;
    for (int i = 0; i < rank; i++) p->scale[i] = 1, p->roi_start[i] = 0, p->roi_end[i] = 1;
    if (!strcmp(n->op_type, "Upsample") && n->opset < 9) {
        const double *f = NULL;
        const kl_attr *a = kl_attr_find(n, "scales");
        if (!a || a->n != rank) return kl_error(d, n, "attribute 'scales' needs one per axis");
        f = a->floats;
        for (int i = 0; i < rank; i++) p->scale[i] = f[i];
        for (int i = 0; i < rank; i++)
            if (!kl_dim_from_double(floor(f[i] * (double)p->in.dim[i]), &p->out.dim[i]))
                return kl_error(d, n, "scale %g gives axis %d an output size out of range", f[i],
                                i);
        return true;
    }
    if ((n_scales >= 0) == (sizes.n >= 0))
        return kl_error(d, n, "exactly one of scales and sizes must be given");
    int64_t count = n_scales >= 0 ? n_scales : sizes.n;
    if (!resize_axes(n, rank, count, axes, d)) return false;
    if (n_roi >= 0 && n_roi != 2 * count)
        return kl_error(d, n, "roi has %" PRId64 " entries; %" PRId64 " expected", n_roi,
                        2 * count);
    for (int64_t k = 0; n_roi >= 0 && k < count; k++) {
        p->roi_start[axes[k]] = kl_value_const_float(roi, k);
        p->roi_end[axes[k]] = kl_value_const_float(roi, k + count);
    }
    if (n_scales >= 0) {
        for (int64_t k = 0; k < count; k++) {
            double s = kl_value_const_float(scales, k);
            if (!(s > 0)) return kl_error(d, n, "scale %g must be positive", s);
            int a = axes[k];
            p->scale[a] = s;
            double len = (double)p->in.dim[a];
            if (!strcmp(p->coord, "tf_crop_and_resize")) len *= p->roi_end[a] - p->roi_start[a];
            if (!kl_dim_from_double(floor(len * s), &p->out.dim[a]))
                return kl_error(d, n, "scale %g gives axis %d an output size out of range", s, a);
        }
        return true;
    }
    const char *policy = kl_attr_string(n, "keep_aspect_ratio_policy", "stretch");
    bool stretch = !strcmp(policy, "stretch"), larger = !strcmp(policy, "not_smaller");
    if (!stretch && !larger && strcmp(policy, "not_larger"))
        return kl_error(d, n, "unknown keep_aspect_ratio_policy '%s'", policy);
    double common = larger ? 0 : INFINITY;
    for (int64_t k = 0; k < count; k++) {
        int a = axes[k];
        int64_t want = kl_int_list_at(&sizes, k);
        if (want < 0) return kl_error(d, n, "sizes[%" PRId64 "] is negative", k);
        p->out.dim[a] = want;
        p->scale[a] = p->in.dim[a] ? (double)want / (double)p->in.dim[a] : 1.0;
        common = larger ? fmax(common, p->scale[a]) : fmin(common, p->scale[a]);
    }
    for (int64_t k = 0; !stretch && k < count; k++) {
        int a = axes[k];
        p->scale[a] = common;
        if (!kl_dim_from_double(common * (double)p->in.dim[a] + 0.5, &p->out.dim[a]))
            return kl_error(d, n, "sizes give axis %d an output size out of range", a);
    }
    return true;
}

static bool resize_make_plan(kl_node *n, resize_plan *p, kl_diag *d) {
    memset(p, 0, sizeof *p);
    if (!kl_move_need_data(n, 0, d) || !resize_mode_of(n, p, d)) return false;
    p->in = n->inputs[0]->shape;
    if (!resize_sizes(n, p, d)) return false;
    for (int i = 0; i < p->in.rank; i++) {
        if (p->out.dim[i] > 0 && p->in.dim[i] == 0)
            return kl_error(d, n, "cannot resize the empty axis %d", i);
        bool identity_roi = p->roi_start[i] == 0 && p->roi_end[i] == 1;
        bool crop = !strcmp(p->coord, "tf_crop_and_resize");
        p->resized[i] = !(p->scale[i] == 1 && p->out.dim[i] == p->in.dim[i] &&
                          (!crop || identity_roi));
    }
    if (p->mode != RESIZE_NEAREST && !kl_dtype_is_float(n->inputs[0]->dtype))
        return kl_error(d, n, "linear and cubic resizing of %s is not supported",
                        kl_dtype_name(n->inputs[0]->dtype));
    return true;
}

/* ---------------------------------------------------------------- compile-time tables */

/* x_original of output position o along axis a, per coordinate_transformation_mode. */
static double original_coordinate(const resize_plan *p, int a, int64_t o) {
    double scale = p->scale[a], in = (double)p->in.dim[a];
    double out_f = scale * in, x = (double)o; /* the reference uses the unrounded length */
    const char *m = p->coord;
    if (!strcmp(m, "align_corners")) return out_f == 1 ? 0 : x * (in - 1) / (out_f - 1);
    if (!strcmp(m, "asymmetric")) return x / scale;
    if (!strcmp(m, "pytorch_half_pixel")) return out_f == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    if (!strcmp(m, "tf_crop_and_resize")) {
        double s = p->roi_start[a], e = p->roi_end[a], len = (double)p->out.dim[a];
        double r = len == 1 ? (e - s) * (in - 1) / 2 : x * (e - s) * (in - 1) / (len - 1);
        return r + s * (in - 1);
    }
    if (!strcmp(m, "half_pixel_symmetric")) {
        double adjustment = (double)p->out.dim[a] / out_f, center = in / 2;
        return center * (1 - adjustment) + (x + 0.5) / scale - 0.5;
    }
    return (x + 0.5) / scale - 0.5; /* half_pixel */
}

/* Weights of the taps base + first .. for the fractional position ratio in (0, 1]. */
static int tap_weights(const resize_plan *p, double ratio, double w[4], int *first) {
    double a = p->cubic_a;
    if (p->mode == RESIZE_LINEAR) {
        *first = 0;
        w[0] = 1 - ratio, w[1] = ratio;
        return 2;
    }
    *first = -1;
    double r1 = ratio + 1, s = 1 - ratio, s1 = s + 1;
    w[0] = ((a * r1 - 5 * a) * r1 + 8 * a) * r1 - 4 * a;
    w[1] = ((a + 2) * ratio - (a + 3)) * ratio * ratio + 1;
    w[2] = ((a + 2) * s - (a + 3)) * s * s + 1;
    w[3] = ((a * s1 - 5 * a) * s1 + 8 * a) * s1 - 4 * a;
    return 4;
}

/* Antialiased downscaling (scale < 1) stretches the linear or cubic filter by 1 / scale: the
 * taps are base + first .. base - first + 1 with first = floor(-support / scale) + 1 (support
 * 1 for linear, 2 for cubic), each weighted by the filter at scale * (tap - x), normalized to
 * sum 1. Returns the number of taps, 2 - 2 first. */
static int64_t antialias_window(const resize_plan *p, double scale, int64_t *first) {
    double support = p->mode == RESIZE_LINEAR ? 1 : 2;
    double f = floor(-support / scale) + 1;
    *first = f < -(double)(INT64_C(1) << 40) ? -(INT64_C(1) << 40) : (int64_t)f;
    return 2 - 2 * *first;
}

/* The filter at distance v (already multiplied by the scale). */
static double antialias_filter(const resize_plan *p, double v) {
    double x = fabs(v), a = p->cubic_a;
    if (p->mode == RESIZE_LINEAR) return x < 1 ? 1 - x : 0;
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    return x < 2 ? ((a * x - 5 * a) * x + 8 * a) * x - 4 * a : 0;
}

static void antialias_weights(const resize_plan *p, double scale, double ratio, int64_t taps,
                              int64_t first, double *w) {
    double total = 0;
    for (int64_t t = 0; t < taps; t++)
        total += w[t] = antialias_filter(p, scale * ((double)(first + t) - ratio));
    for (int64_t t = 0; t < taps; t++) w[t] = total != 0 ? w[t] / total : w[t];
}

static int64_t clamp_to(int64_t v, int64_t n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

/* Nearest: the one input position output o reads. */
static int64_t nearest_index(const resize_plan *p, int a, int64_t o) {
    double x = original_coordinate(p, a, o);
    double fl = floor(x), ratio = x - fl;
    int64_t pick;
    /* a roi far outside the input gives coordinates past int64: saturate, then clamp */
    int64_t at = kl_index_from_double(fl);
    if (ratio == 0) pick = kl_index_from_double(x);
    else if (!strcmp(p->nearest, "floor")) pick = at;
    else if (!strcmp(p->nearest, "ceil")) pick = at + 1;
    else if (!strcmp(p->nearest, "round_prefer_ceil")) pick = at + (ratio >= 0.5);
    else pick = at + (ratio > 0.5);
    return clamp_to(pick, p->in.dim[a]);
}

typedef struct axis_tables {
    kl_buffer *index, *weight, *inside; /* [out, taps], [out, taps], [out] */
    int64_t taps;
} axis_tables;

static kl_buffer *const_table(kl_lower *L, const kl_node *n, const char *what, int a, kl_dtype t,
                              kl_shape s, void *data) {
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_%s%d", n->outputs[0]->name,
                                                         what, a),
                                     KL_BUF_CONST, t, &s);
    b->data = data;
    b->host = data; /* the interpreter reads constants through `host` */
    return b;
}

static bool build_tables(kl_lower *L, const kl_node *n, const resize_plan *p, int a,
                         kl_dtype wt, axis_tables *tab, kl_diag *d) {
    int64_t outs = p->out.dim[a];
    /* index and weight tables hold up to 4 taps of 8 bytes per output position of the axis */
    if (outs > KL_MAX_BUILT_BYTES / 32)
        return kl_error(d, n, "axis %d resized to %lld positions: its tables would exceed %lld "
                        "bytes", a, (long long)outs, (long long)KL_MAX_BUILT_BYTES);
    bool crop = !strcmp(p->coord, "tf_crop_and_resize");
    if (p->mode == RESIZE_NEAREST) {
        int64_t *index = kl_alloc_array(L->arena, (size_t)outs + 1, sizeof *index);
        for (int64_t o = 0; o < outs; o++) index[o] = nearest_index(p, a, o);
        tab->taps = 1;
        tab->index = const_table(L, n, "index", a, KL_I64, (kl_shape){1, {outs}}, index);
    } else {
        double w4[4], *w = w4;
        int first4;
        int64_t first;
        bool stretched = p->antialias && p->scale[a] < 1;
        int64_t cells;
        if (stretched) {
            tab->taps = antialias_window(p, p->scale[a], &first);
            if (!kl_mul_checked(outs, tab->taps, &cells) || cells > KL_MAX_BUILT_BYTES / 16)
                return kl_error(d, n, "antialiased axis %d (scale %g) needs %lld taps a position: "
                                "its tables would exceed %lld bytes", a, p->scale[a],
                                (long long)tab->taps, (long long)KL_MAX_BUILT_BYTES);
            w = kl_alloc_array(L->arena, (size_t)tab->taps, sizeof *w);
        } else {
            tab->taps = tap_weights(p, 0.5, w4, &first4);
            first = first4;
        }
        int64_t *index = kl_alloc_array(L->arena, (size_t)(outs * tab->taps) + 1, sizeof *index);
        double *weight = kl_alloc_array(L->arena, (size_t)(outs * tab->taps) + 1, sizeof *weight);
        for (int64_t o = 0; o < outs; o++) {
            double x = original_coordinate(p, a, o);
            double base = ceil(x) - 1, ratio = x - base; /* ratio in (0, 1] */
            if (stretched) antialias_weights(p, p->scale[a], ratio, tab->taps, first, w);
            else tap_weights(p, ratio, w4, &first4);
            double total = 0;
            for (int64_t t = 0; t < tab->taps; t++) {
                int64_t at = kl_index_from_double(base) + first + t;
                if (p->exclude_outside && (at < 0 || at >= p->in.dim[a])) w[t] = 0;
                total += w[t];
                index[o * tab->taps + t] = clamp_to(at, p->in.dim[a]);
            }
            for (int64_t t = 0; t < tab->taps; t++)
                weight[o * tab->taps + t] = p->exclude_outside && total != 0 ? w[t] / total : w[t];
        }
        kl_shape s = {2, {outs, tab->taps}};
        tab->index = const_table(L, n, "index", a, KL_I64, s, index);
        /* weights are stored in the accumulation type */
        void *wdata = weight;
        if (wt == KL_F32) {
            float *f = kl_alloc_array(L->arena, (size_t)(outs * tab->taps) + 1, sizeof *f);
            for (int64_t i = 0; i < outs * tab->taps; i++) f[i] = (float)weight[i];
            wdata = f;
        }
        tab->weight = const_table(L, n, "weight", a, wt, s, wdata);
    }
    tab->inside = NULL;
    if (crop) {
        uint8_t *inside = kl_alloc_array(L->arena, (size_t)outs + 1, 1);
        for (int64_t o = 0; o < outs; o++) {
            double x = original_coordinate(p, a, o);
            inside[o] = x >= 0 && x <= (double)(p->in.dim[a] - 1);
        }
        tab->inside = const_table(L, n, "inside", a, KL_BOOL, (kl_shape){1, {outs}}, inside);
    }
    return true;
}

/* ---------------------------------------------------------------- operands given at run time
 *
 * scales, sizes or roi given at run time where the model declares the output shape: the output
 * takes the declared shape, a check kernel makes predict return KILN_E_SHAPE unless the values
 * give that shape (floor(length * scale), ONNX's rule; sizes equal to it, or through
 * keep_aspect_ratio_policy), and the per-axis tables are computed by small kernels from the
 * run-time values (the same arithmetic as the compile-time tables above, in double precision)
 * instead of being constants. In linear and cubic modes with scales (or sizes under the
 * stretch policy) an axis whose declared length equals the input's is taken as not resized:
 * its scale must be 1 (and its roi the whole axis), which the check verifies; nearest mode and
 * the other policies resize every listed axis by its table.
 * Every table index is clamped into the input, so refused values never read outside it. */

typedef struct resize_rt {
    int roi, scales, sizes;  /* input slots, -1 when absent or empty */
    int axes[KL_MAX_RANK];   /* axes[k]: the axis entry k of scales / sizes / roi refers to */
    int64_t count;           /* entries of scales or sizes */
} resize_rt;

static int present_slot(kl_node *n, int i) {
    const kl_value *v = i >= 0 ? kl_node_input(n, i) : NULL;
    return v && !(v->has_shape && kl_shape_numel(&v->shape) == 0) ? i : -1;
}

static bool resize_at_run_time(kl_node *n) {
    if (!strcmp(n->op_type, "Upsample") && n->opset < 9) return false;
    int slot[3];
    resize_input_slots(n, &slot[0], &slot[1], &slot[2]);
    for (int i = 0; i < 3; i++)
        if (present_slot(n, slot[i]) >= 0 && kl_input_at_run_time(n, slot[i])) return true;
    return false;
}

/* Validates the operands' types and lengths (their values come at run time). */
static bool resize_rt_operands(kl_node *n, resize_rt *r, kl_diag *d) {
    resize_input_slots(n, &r->roi, &r->scales, &r->sizes);
    r->roi = present_slot(n, r->roi), r->scales = present_slot(n, r->scales);
    r->sizes = present_slot(n, r->sizes);
    if ((r->scales >= 0) == (r->sizes >= 0))
        return kl_error(d, n, "exactly one of scales and sizes must be given");
    int list = r->scales >= 0 ? r->scales : r->sizes;
    for (int i = 0; i < 3; i++) {
        int slot = i == 0 ? r->roi : i == 1 ? r->scales : r->sizes;
        const kl_value *v = slot >= 0 ? n->inputs[slot] : NULL;
        if (v && (v->shape.rank != 1 || (slot == r->sizes ? !kl_dtype_is_signed_int(v->dtype)
                                                           : !kl_dtype_is_float(v->dtype))))
            return kl_error(d, n, "roi and scales must be 1-D float tensors, sizes a 1-D "
                            "integer tensor");
    }
    r->count = n->inputs[list]->shape.dim[0];
    if (!resize_axes(n, n->inputs[0]->shape.rank, r->count, r->axes, d)) return false;
    if (r->roi >= 0 && n->inputs[r->roi]->shape.dim[0] != 2 * r->count)
        return kl_error(d, n, "roi has %" PRId64 " entries; %" PRId64 " expected",
                        n->inputs[r->roi]->shape.dim[0], 2 * r->count);
    return true;
}

static bool resize_infer_declared(kl_node *n, kl_diag *d) {
    resize_plan p;
    resize_rt r;
    memset(&p, 0, sizeof p);
    if (!kl_move_need_data(n, 0, d) || !resize_mode_of(n, &p, d) || !resize_rt_operands(n, &r, d))
        return false;
    int first = -1; /* the operand the message names */
    for (int slot = 1; slot <= 3 && first < 0; slot++)
        if ((slot == r.roi || slot == r.scales || slot == r.sizes) && kl_input_at_run_time(n, slot))
            first = slot;
    if (!kl_infer_declared(n, first, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape, *out = &n->outputs[0]->shape;
    if (out->rank != in->rank)
        return kl_error(d, n, "the declared output %s does not have the rank of the input %s",
                        KL_SHAPE_TEXT(out), KL_SHAPE_TEXT(in));
    bool listed[KL_MAX_RANK] = {0};
    for (int64_t k = 0; k < r.count; k++) listed[r.axes[k]] = true;
    for (int i = 0; i < in->rank; i++) {
        if (!listed[i] && out->dim[i] != in->dim[i])
            return kl_error(d, n, "the declared output %s changes axis %d, which is not resized",
                            KL_SHAPE_TEXT(out), i);
        if (out->dim[i] > 0 && in->dim[i] == 0)
            return kl_error(d, n, "cannot resize the empty axis %d", i);
    }
    if (p.mode != RESIZE_NEAREST && !kl_dtype_is_float(n->inputs[0]->dtype))
        return kl_error(d, n, "linear and cubic resizing of %s is not supported",
                        kl_dtype_name(n->inputs[0]->dtype));
    return true;
}

static kl_expr *f64(kl_arena *a, double v) { return kl_e_const_f(a, KL_F64, v); }
static kl_expr *fop(kl_arena *a, kl_binop op, kl_expr *x, kl_expr *y) {
    return kl_e_binary(a, op, x, y);
}

/* Entry k of a float input as double: a constant, or a load of the run-time buffer. */
static kl_expr *float_at(kl_lower *L, kl_node *n, int input, int64_t k) {
    const kl_value *v = n->inputs[input];
    if (v->data) return f64(L->arena, kl_value_const_float(v, k));
    kl_buffer *b = kl_lower_buffer(L, n->inputs[input]);
    kl_expr *i = kl_e_idx(L->arena, k);
    return kl_e_cast(L->arena, KL_F64, kl_e_load(L->arena, b, &i));
}

static kl_expr *int_at(kl_lower *L, kl_node *n, int input, int64_t k) {
    const kl_value *v = n->inputs[input];
    if (v->data) return kl_e_idx(L->arena, kl_value_const_int(v, k));
    return kl_lower_int_at(L, n, input, k);
}

/* The per-axis scale and roi as double expressions, and the check that they give the
 * declared shape. */
typedef struct resize_rt_axis {
    kl_expr *scale, *roi_start, *roi_end;
} resize_rt_axis;

static kl_expr *resize_rt_values(kl_lower *L, kl_node *n, const resize_plan *p,
                                 const resize_rt *r, resize_rt_axis *ax) {
    kl_arena *a = L->arena;
    bool crop = !strcmp(p->coord, "tf_crop_and_resize");
    kl_expr *ok = NULL, *common = NULL;
    const char *policy = kl_attr_string(n, "keep_aspect_ratio_policy", "stretch");
    bool stretch = !strcmp(policy, "stretch"), larger = !strcmp(policy, "not_smaller");
    for (int i = 0; i < p->in.rank; i++)
        ax[i] = (resize_rt_axis){f64(a, 1), f64(a, 0), f64(a, 1)};
    for (int64_t k = 0; k < r->count; k++) {
        int ai = r->axes[k];
        if (r->roi >= 0) {
            ax[ai].roi_start = float_at(L, n, r->roi, k);
            ax[ai].roi_end = float_at(L, n, r->roi, k + r->count);
        }
        if (r->sizes >= 0) {
            kl_expr *want = int_at(L, n, r->sizes, k);
            double in = (double)p->in.dim[ai];
            ax[ai].scale = in ? fop(a, KL_DIV, kl_e_cast(a, KL_F64, want), f64(a, in)) : f64(a, 1);
            if (stretch)
                ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, want, kl_e_idx(a, p->out.dim[ai])));
            common = !common ? ax[ai].scale
                             : kl_e_binary(a, larger ? KL_MAX : KL_MIN, common, ax[ai].scale);
        } else {
            ax[ai].scale = float_at(L, n, r->scales, k);
        }
    }
    for (int64_t k = 0; k < r->count; k++) {
        int ai = r->axes[k];
        kl_expr *len = f64(a, (double)p->in.dim[ai]), *want = f64(a, (double)p->out.dim[ai]);
        if (r->sizes >= 0 && !stretch) {
            ax[ai].scale = common;
            kl_expr *rounded = fop(a, KL_ADD, fop(a, KL_MUL, common, len), f64(a, 0.5));
            kl_expr *got = kl_e_unary(a, KL_FLOOR, rounded);
            ok = kl_e_and(a, ok, fop(a, KL_EQ, got, want));
        } else if (r->scales >= 0) {
            if (crop) len = fop(a, KL_MUL, len, fop(a, KL_SUB, ax[ai].roi_end, ax[ai].roi_start));
            ok = kl_e_and(a, ok, fop(a, KL_GT, ax[ai].scale, f64(a, 0)));
            kl_expr *got = kl_e_unary(a, KL_FLOOR, fop(a, KL_MUL, len, ax[ai].scale));
            ok = kl_e_and(a, ok, fop(a, KL_EQ, got, want));
        }
        if (!p->resized[ai]) { /* kept axes keep scale 1 and the whole axis */
            ok = kl_e_and(a, ok, fop(a, KL_EQ, ax[ai].scale, f64(a, 1)));
            if (crop)
                ok = kl_e_and(a, ok, kl_e_and(a, fop(a, KL_EQ, ax[ai].roi_start, f64(a, 0)),
                                              fop(a, KL_EQ, ax[ai].roi_end, f64(a, 1))));
        }
    }
    return ok;
}

/* original_coordinate with the scale and roi as expressions; o is the output position (f64). */
static kl_expr *original_coordinate_e(kl_arena *a, const resize_plan *p, int ai,
                                      const resize_rt_axis *v, kl_expr *x) {
    double in_d = (double)p->in.dim[ai], len = (double)p->out.dim[ai];
    kl_expr *in = f64(a, in_d), *scale = v->scale, *out_f = fop(a, KL_MUL, scale, in);
    kl_expr *one = f64(a, 1), *half = f64(a, 0.5);
    kl_expr *half_pixel = fop(a, KL_SUB, fop(a, KL_DIV, fop(a, KL_ADD, x, half), scale), half);
    const char *m = p->coord;
    if (!strcmp(m, "align_corners"))
        return kl_e_select(a, fop(a, KL_EQ, out_f, one), f64(a, 0),
                           fop(a, KL_DIV, fop(a, KL_MUL, x, f64(a, in_d - 1)),
                               fop(a, KL_SUB, out_f, one)));
    if (!strcmp(m, "asymmetric")) return fop(a, KL_DIV, x, scale);
    if (!strcmp(m, "pytorch_half_pixel"))
        return kl_e_select(a, fop(a, KL_EQ, out_f, one), f64(a, -0.5), half_pixel);
    if (!strcmp(m, "tf_crop_and_resize")) {
        kl_expr *span = fop(a, KL_MUL, fop(a, KL_SUB, v->roi_end, v->roi_start), f64(a, in_d - 1));
        kl_expr *r = len == 1 ? fop(a, KL_DIV, span, f64(a, 2))
                              : fop(a, KL_DIV, fop(a, KL_MUL, x, span), f64(a, len - 1));
        return fop(a, KL_ADD, r, fop(a, KL_MUL, v->roi_start, f64(a, in_d - 1)));
    }
    if (!strcmp(m, "half_pixel_symmetric")) {
        kl_expr *adjustment = fop(a, KL_DIV, f64(a, len), out_f);
        kl_expr *center = f64(a, in_d / 2);
        return fop(a, KL_ADD, fop(a, KL_MUL, center, fop(a, KL_SUB, one, adjustment)), half_pixel);
    }
    return half_pixel;
}

/* lo <= x <= hi, NaN taken as lo: keeps the conversion to an index defined */
static kl_expr *clamp_f(kl_arena *a, kl_expr *x, double lo, double hi) {
    x = kl_e_select(a, fop(a, KL_GT, x, f64(a, lo)), x, f64(a, lo));
    return kl_e_select(a, fop(a, KL_LT, x, f64(a, hi)), x, f64(a, hi));
}

static kl_expr *clamp_i(kl_arena *a, kl_expr *x, int64_t n) {
    return kl_e_binary(a, KL_MAX, kl_e_binary(a, KL_MIN, x, kl_e_idx(a, n - 1)), kl_e_idx(a, 0));
}

/* Tap weight j (of tap_weights' taps) for the fractional position ratio. */
static kl_expr *tap_weight_e(kl_arena *a, const resize_plan *p, kl_expr *ratio, int j) {
    kl_expr *one = f64(a, 1);
    if (p->mode == RESIZE_LINEAR) return j == 0 ? fop(a, KL_SUB, one, ratio) : ratio;
    double c = p->cubic_a;
    /* ((c*t - 5c)*t + 8c)*t - 4c for the outer taps, ((c+2)*t - (c+3))*t*t + 1 for the inner */
    kl_expr *t = j == 0 ? fop(a, KL_ADD, ratio, one)
                 : j == 1 ? ratio
                 : j == 2 ? fop(a, KL_SUB, one, ratio)
                          : fop(a, KL_SUB, f64(a, 2), ratio);
    if (j == 1 || j == 2) {
        kl_expr *inner = fop(a, KL_SUB, fop(a, KL_MUL, f64(a, c + 2), t), f64(a, c + 3));
        return fop(a, KL_ADD, fop(a, KL_MUL, fop(a, KL_MUL, inner, t), t), one);
    }
    kl_expr *e = fop(a, KL_SUB, fop(a, KL_MUL, f64(a, c), t), f64(a, 5 * c));
    e = fop(a, KL_ADD, fop(a, KL_MUL, e, t), f64(a, 8 * c));
    return fop(a, KL_SUB, fop(a, KL_MUL, e, t), f64(a, 4 * c));
}

/* A kernel filling the workspace table `name` ([extent0] or [extent0, extent1]) with value,
 * an expression of loops 0 and 1. */
static kl_buffer *table_kernel(kl_lower *L, const kl_node *n, const char *name, int ai,
                               kl_dtype t, kl_shape s, kl_expr *value) {
    kl_buffer *b = kl_lower_temp(L, kl_sprintf(L->arena, "%s_%s%d", n->outputs[0]->name, name, ai),
                                 t, &s);
    kl_kernel *k = kl_move_kernel(L, n, "resize_table", b);
    k->value = kl_e_cast(L->arena, t, value);
    kl_move_add_kernel(L, k);
    return b;
}

/* antialias_filter of the expression v (the distance times the scale). */
static kl_expr *antialias_filter_e(kl_arena *a, const resize_plan *p, kl_expr *v) {
    kl_expr *x = kl_e_unary(a, KL_ABS, v), *one = f64(a, 1), *zero = f64(a, 0);
    if (p->mode == RESIZE_LINEAR)
        return kl_e_select(a, fop(a, KL_LT, x, one), fop(a, KL_SUB, one, x), zero);
    double c = p->cubic_a;
    kl_expr *inner = fop(a, KL_SUB, fop(a, KL_MUL, f64(a, c + 2), x), f64(a, c + 3));
    inner = fop(a, KL_ADD, fop(a, KL_MUL, fop(a, KL_MUL, inner, x), x), one);
    kl_expr *outer = fop(a, KL_SUB, fop(a, KL_MUL, f64(a, c), x), f64(a, 5 * c));
    outer = fop(a, KL_ADD, fop(a, KL_MUL, outer, x), f64(a, 8 * c));
    outer = fop(a, KL_SUB, fop(a, KL_MUL, outer, x), f64(a, 4 * c));
    return kl_e_select(a, fop(a, KL_LE, x, one), inner,
                       kl_e_select(a, fop(a, KL_LT, x, f64(a, 2)), outer, zero));
}

/* Antialiased tables at run time: the window depends on the given scale, so the tables have
 * the taps of the least scale the check admits (p->scale, resize_rt_plan) and a tap past the
 * given scale's window weighs 0. Three kernels: raw weights, their sum per position, and the
 * weights divided by it. */
static void rt_antialias_tables(kl_lower *L, const kl_node *n, const resize_plan *p, int ai,
                                const resize_rt_axis *v, kl_dtype wt, kl_expr *x,
                                axis_tables *tab) {
    kl_arena *a = L->arena;
    int64_t outs = p->out.dim[ai], in = p->in.dim[ai], first_max;
    tab->taps = antialias_window(p, p->scale[ai], &first_max);
    kl_expr *one = f64(a, 1);
    kl_expr *scale = kl_e_select(a, fop(a, KL_LT, v->scale, one), v->scale, one);
    scale = clamp_f(a, scale, p->scale[ai], 1); /* a refused scale keeps to the window too */
    double support = p->mode == RESIZE_LINEAR ? 1 : 2;
    kl_expr *reach_of = kl_e_unary(a, KL_FLOOR, fop(a, KL_DIV, f64(a, -support), scale));
    kl_expr *first = fop(a, KL_ADD, reach_of, one);
    kl_expr *count = fop(a, KL_SUB, f64(a, 2), fop(a, KL_MUL, f64(a, 2), first));
    /* beyond the window's reach every tap clamps to (or is excluded at) the same edge */
    double reach = (double)tab->taps + 2;
    kl_expr *xc = clamp_f(a, x, -reach, (double)in + reach);
    kl_expr *base = fop(a, KL_SUB, kl_e_unary(a, KL_CEIL, xc), one);
    kl_expr *ratio = fop(a, KL_SUB, xc, base);
    kl_expr *t = kl_e_cast(a, KL_F64, kl_e_iv(a, 1)), *tap = fop(a, KL_ADD, first, t);
    kl_expr *at = kl_e_cast(a, KL_I64, fop(a, KL_ADD, base, tap));
    kl_expr *w = antialias_filter_e(a, p, fop(a, KL_MUL, scale, fop(a, KL_SUB, tap, ratio)));
    kl_expr *used = fop(a, KL_LT, t, count);
    if (p->exclude_outside) used = kl_e_and(a, used, kl_e_in_range(a, at, in));
    w = kl_e_select(a, used, w, f64(a, 0));
    kl_shape s = {2, {outs, tab->taps}};
    kl_buffer *raw = table_kernel(L, n, "raw_weight", ai, KL_F64, s, w);
    kl_buffer *total = kl_lower_temp(L, kl_sprintf(a, "%s_weight_sum%d", n->outputs[0]->name, ai),
                                     KL_F64, &(kl_shape){1, {outs}});
    kl_kernel *k = kl_move_kernel(L, n, "resize_table", total);
    int loop = k->n_loops++;
    k->extent[loop] = tab->taps;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_F64;
    kl_expr *cell[2] = {kl_e_iv(a, 0), kl_e_iv(a, loop)};
    k->value = kl_e_load(a, raw, cell);
    k->result = kl_e_acc(a, KL_F64);
    kl_move_add_kernel(L, k);
    cell[1] = kl_e_iv(a, 1);
    kl_expr *sum = kl_e_load(a, total, cell), *raw_w = kl_e_load(a, raw, cell);
    tab->weight = table_kernel(L, n, "weight", ai, wt, s,
                               kl_e_select(a, fop(a, KL_NE, sum, f64(a, 0)),
                                           fop(a, KL_DIV, raw_w, sum), raw_w));
    tab->index = table_kernel(L, n, "index", ai, KL_I64, s, clamp_i(a, at, in));
}

static void rt_tables(kl_lower *L, const kl_node *n, const resize_plan *p, int ai,
                      const resize_rt_axis *v, kl_dtype wt, axis_tables *tab) {
    kl_arena *a = L->arena;
    int64_t outs = p->out.dim[ai], in = p->in.dim[ai];
    kl_expr *x = original_coordinate_e(a, p, ai, v, kl_e_cast(a, KL_F64, kl_e_iv(a, 0)));
    tab->inside = NULL;
    if (!strcmp(p->coord, "tf_crop_and_resize"))
        tab->inside = table_kernel(L, n, "inside", ai, KL_BOOL, (kl_shape){1, {outs}},
                                   kl_e_and(a, fop(a, KL_GE, x, f64(a, 0)),
                                            fop(a, KL_LE, x, f64(a, (double)(in - 1)))));
    if (p->mode == RESIZE_NEAREST) {
        /* beyond [-1, in] every rounding clamps to the same edge */
        kl_expr *xc = clamp_f(a, x, -1, (double)in);
        kl_expr *fl = kl_e_unary(a, KL_FLOOR, xc), *ratio = fop(a, KL_SUB, xc, fl);
        kl_expr *up;
        if (!strcmp(p->nearest, "floor")) up = kl_e_const_i(a, KL_BOOL, 0);
        else if (!strcmp(p->nearest, "ceil")) up = fop(a, KL_GT, ratio, f64(a, 0));
        else if (!strcmp(p->nearest, "round_prefer_ceil")) up = fop(a, KL_GE, ratio, f64(a, 0.5));
        else up = fop(a, KL_GT, ratio, f64(a, 0.5));
        kl_expr *pick = kl_e_add(a, kl_e_cast(a, KL_I64, fl),
                                 kl_e_select(a, up, kl_e_idx(a, 1), kl_e_idx(a, 0)));
        tab->taps = 1;
        tab->index = table_kernel(L, n, "index", ai, KL_I64, (kl_shape){1, {outs}},
                                  clamp_i(a, pick, in));
        return;
    }
    if (p->antialias) {
        rt_antialias_tables(L, n, p, ai, v, wt, x, tab);
        return;
    }
    double w0[4];
    int first;
    tab->taps = tap_weights(p, 0.5, w0, &first);
    /* beyond [-4, in + 3] every tap clamps to (or is excluded at) the same edge */
    kl_expr *xc = clamp_f(a, x, -4, (double)in + 3);
    kl_expr *base = fop(a, KL_SUB, kl_e_unary(a, KL_CEIL, xc), f64(a, 1));
    kl_expr *ratio = fop(a, KL_SUB, xc, base), *base_i = kl_e_cast(a, KL_I64, base);
    kl_expr *t = kl_e_iv(a, 1), *w = f64(a, 0), *total = f64(a, 0);
    for (int j = tab->taps - 1; j >= 0; j--) {
        kl_expr *wj = tap_weight_e(a, p, ratio, j);
        if (p->exclude_outside)
            wj = kl_e_select(a, kl_e_in_range(a, kl_e_addc(a, base_i, first + j), in), wj,
                             f64(a, 0));
        total = fop(a, KL_ADD, total, wj);
        w = kl_e_select(a, kl_e_binary(a, KL_EQ, t, kl_e_idx(a, j)), wj, w);
    }
    if (p->exclude_outside)
        w = kl_e_select(a, fop(a, KL_NE, total, f64(a, 0)), fop(a, KL_DIV, w, total), w);
    kl_shape s = {2, {outs, tab->taps}};
    tab->index = table_kernel(L, n, "index", ai, KL_I64, s,
                              clamp_i(a, kl_e_add(a, kl_e_addc(a, base_i, first), t), in));
    tab->weight = table_kernel(L, n, "weight", ai, wt, s, w);
}

static bool resize_rt_plan(kl_node *n, resize_plan *p, resize_rt *r, kl_diag *d) {
    memset(p, 0, sizeof *p);
    if (!resize_infer_declared(n, d) || !resize_mode_of(n, p, d) || !resize_rt_operands(n, r, d))
        return false;
    p->in = n->inputs[0]->shape;
    p->out = n->outputs[0]->shape;
    /* a nearest table costs one load per axis: every listed axis gets one; linear and cubic
     * ones multiply the taps, so there an axis the declared shape keeps is taken as kept,
     * unless keep_aspect_ratio_policy gives all listed axes one scale */
    for (int i = 0; i < p->in.rank; i++) p->resized[i] = p->out.dim[i] != p->in.dim[i];
    const char *policy = kl_attr_string(n, "keep_aspect_ratio_policy", "stretch");
    bool common_scale = r->sizes >= 0 && strcmp(policy, "stretch"); /* may differ from 1 */
    for (int64_t k = 0; (p->mode == RESIZE_NEAREST || common_scale) && k < r->count; k++)
        p->resized[r->axes[k]] = true;
    /* antialias: the least scale the check admits decides how many taps the tables hold */
    for (int i = 0; i < p->in.rank; i++) {
        double in = (double)p->in.dim[i], out = (double)p->out.dim[i];
        double least = common_scale ? (out - 0.5) / in : out / in;
        p->scale[i] = p->out.dim[i] > 0 && in > 0 ? fmin(least * (1 - 1e-9), 1) : 1;
        bool crop = !strcmp(p->coord, "tf_crop_and_resize");
        if (p->antialias && p->resized[i] && r->scales >= 0 && crop)
            return kl_error(d, n, "antialias with tf_crop_and_resize and scales given at run "
                            "time is not supported (the roi leaves the scale unbounded)");
        int64_t first, cells;
        if (p->antialias && p->resized[i] &&
            (!kl_mul_checked(p->out.dim[i], antialias_window(p, p->scale[i], &first), &cells) ||
             cells > KL_MAX_BUILT_BYTES / 16))
            return kl_error(d, n, "antialiased axis %d resized to %lld positions: its tables "
                            "would exceed %lld bytes", i, (long long)p->out.dim[i],
                            (long long)KL_MAX_BUILT_BYTES);
    }
    return true;
}

static bool resize_infer(kl_node *n, kl_diag *d) {
    resize_plan p;
    if (resize_at_run_time(n)) return resize_infer_declared(n, d);
    if (!resize_make_plan(n, &p, d)) return false;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &p.out);
}

/* ---------------------------------------------------------------- the kernel */

static bool resize_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    resize_plan p;
    resize_rt r;
    resize_rt_axis run_time[KL_MAX_RANK];
    bool at_run_time = resize_at_run_time(n);
    if (at_run_time) {
        if (!resize_rt_plan(n, &p, &r, d)) return false;
        kl_lower_shape_check(L, n, resize_rt_values(L, n, &p, &r, run_time));
    } else if (!resize_make_plan(n, &p, d)) {
        return false;
    }
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *y = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype t = x->dtype, acc = t == KL_F64 ? KL_F64 : KL_F32;
    int rank = p.in.rank;
    kl_kernel *k = kl_move_kernel(L, n, "resize", y);
    kl_expr *idx[KL_MAX_RANK], *weight = NULL, *inside = NULL;
    for (int i = 0; i < rank; i++) {
        kl_expr *o = kl_e_iv(a, i);
        idx[i] = o;
        if (!p.resized[i]) continue;
        axis_tables tab = {0};
        if (at_run_time) rt_tables(L, n, &p, i, &run_time[i], acc, &tab);
        else if (!build_tables(L, n, &p, i, acc, &tab, d)) return false;
        if (tab.inside) inside = kl_e_and(a, inside, kl_e_load(a, tab.inside, &o));
        if (tab.taps == 1) {
            idx[i] = kl_e_load(a, tab.index, &o);
            continue;
        }
        /* one reduction loop over this axis' taps */
        int loop = k->n_loops++;
        k->extent[loop] = tab.taps;
        kl_expr *at[2] = {o, kl_e_iv(a, loop)};
        idx[i] = kl_e_load(a, tab.index, at);
        kl_expr *w = kl_e_load(a, tab.weight, at);
        weight = weight ? kl_e_binary(a, KL_MUL, weight, w) : w;
    }
    kl_expr *value = kl_e_load(a, x, idx);
    if (weight) {
        k->reduce = KL_RED_SUM;
        k->acc_dtype = acc;
        k->value = kl_e_binary(a, KL_MUL, kl_e_cast(a, acc, value), weight);
        k->result = kl_e_cast(a, t, kl_e_acc(a, acc));
    } else {
        k->value = value;
    }
    if (inside) {
        kl_expr *fill = kl_move_const(a, t, p.extrapolation,
                                      kl_index_from_double(p.extrapolation));
        kl_expr **slot = weight ? &k->result : &k->value;
        *slot = kl_e_select(a, inside, *slot, fill);
    }
    kl_move_add_kernel(L, k);
    return true;
}

const kl_op kl_ops_resize[] = {
    {"", "Resize", 10, KL_OPSET_LATEST, resize_attrs, resize_infer, resize_lower},
    {"", "Upsample", 7, 9, resize_attrs, resize_infer, resize_lower},
    {0},
};
