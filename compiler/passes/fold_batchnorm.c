/*
 * fold_batchnorm.c — pass `bnfold`: fold per-output-channel affine maps into the convolution
 * (Conv or ConvTranspose) that feeds them.
 *
 * Exporters keep BatchNormalization after every convolution (and models add scale-and-shift
 * Mul/Add pairs of their own). At inference each is an affine map per output channel m,
 *     BatchNormalization: y = (x - mean[m]) * s[m] + beta[m],  s = scale / sqrt(var + eps)
 *     Mul by a constant:  y = x * c[m]
 *     Add of a constant:  y = x + c[m]
 * and a convolution is linear in its weights, so conv(X, W, B) followed by y = x * s + t is
 * conv(X, W', B') with W'[m, ...] = W[m, ...] * s[m] and B'[m] = B[m] * s[m] + t[m]. The fold
 * saves a pass over the activations per map and lets later passes see one kernel.
 *
 * A map is folded when the convolution's output feeds nothing else and is not a graph output
 * (the unscaled value must not be needed), W and B are constants, and the map's parameters are
 * constants holding one value per output channel (or one for all). The folded convolution takes
 * over the map's output value, so its name and every reader stay as they were. The arithmetic is
 * done in double and rounded once to the element type (float32, float64, and float16/bfloat16
 * through util/dtype.c), so a fold is exact up to that rounding.
 */
#include <math.h>
#include <string.h>

#include "kl.h"

/* One affine map per channel: y = x * mul[m] + add[m]. */
typedef struct channel_map {
    double *mul, *add;
} channel_map;

static bool foldable_type(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16;
}

/* Element i of a float constant, in double. */
static double get(const kl_value *v, int64_t i) { return kl_value_const_float(v, i); }

/* Store x into element i of a buffer of type t, rounded once. */
static void put(void *data, kl_dtype t, int64_t i, double x) {
    switch (t) {
    case KL_F64: ((double *)data)[i] = x; break;
    case KL_F16: ((uint16_t *)data)[i] = kl_f32_to_f16((float)x); break;
    case KL_BF16: ((uint16_t *)data)[i] = kl_f32_to_bf16((float)x); break;
    default: ((float *)data)[i] = (float)x; break;
    }
}

/* Whether constant c of type t holds one value per channel of a conv output y ([N, M, ...]):
 * numpy broadcasting against y leaves y's shape unchanged and c varies at most along dim 1. */
static bool per_channel(const kl_value *c, const kl_value *y) {
    if (!c || !c->data || c->dtype != y->dtype || !c->has_shape || c->shape.rank > y->shape.rank)
        return false;
    int lead = y->shape.rank - c->shape.rank;
    for (int j = 0; j < c->shape.rank; j++) {
        int64_t dim = c->shape.dim[j];
        if (dim == 1) continue;
        if (lead + j != 1 || dim != y->shape.dim[1]) return false;
    }
    return true;
}

/* c's value for channel m (c is per_channel, so it is laid out along that one dim or scalar). */
static double channel_value(const kl_value *c, int64_t m) {
    return kl_shape_numel(&c->shape) == 1 ? get(c, 0) : get(c, m);
}

/* ---- what follows the convolution ---------------------------------------------------------- */

/* BatchNormalization in inference form with constant parameters, one per channel. */
static bool bn_map(const kl_node *bn, const kl_value *y, channel_map *map, int64_t m_count) {
    if (bn->n_inputs < 5 || bn->inputs[0] != y) return false;
    if (bn->opset >= 14 && kl_attr_int(bn, "training_mode", 0)) return false;
    for (int i = 1; i < bn->n_outputs; i++)
        if (bn->outputs[i]) return false;
    for (int i = 1; i <= 4; i++) {
        const kl_value *p = bn->inputs[i];
        if (!p || !p->data || p->dtype != y->dtype || kl_shape_numel(&p->shape) != m_count ||
            p->shape.rank < 1 || p->shape.dim[0] != m_count)
            return false;
    }
    double eps = kl_attr_float(bn, "epsilon", 1e-5);
    for (int64_t m = 0; m < m_count; m++) {
        double s = get(bn->inputs[1], m) / sqrt(get(bn->inputs[4], m) + eps);
        map->mul[m] = s;
        map->add[m] = get(bn->inputs[2], m) - get(bn->inputs[3], m) * s;
    }
    return true;
}

/* Mul(y, c) / Mul(c, y), Add(y, c) / Add(c, y), Sub(y, c) with c constant per channel. Before
 * opset 7 these carried their own broadcast attributes: left alone. */
static bool arith_map(const kl_node *n, const kl_value *y, channel_map *map, int64_t m_count) {
    bool mul = !strcmp(n->op_type, "Mul"), add = !strcmp(n->op_type, "Add"),
         sub = !strcmp(n->op_type, "Sub");
    if (!(mul || add || sub) || n->n_inputs != 2 || n->opset < 7) return false;
    int at = n->inputs[0] == y ? 0 : 1;
    if (n->inputs[at] != y || n->inputs[1 - at] == y || (sub && at != 0)) return false;
    const kl_value *c = n->inputs[1 - at];
    if (!per_channel(c, y)) return false;
    for (int64_t m = 0; m < m_count; m++) {
        double v = channel_value(c, m);
        map->mul[m] = mul ? v : 1.0;
        map->add[m] = mul ? 0.0 : sub ? -v : v;
    }
    return true;
}

/* ---- the fold ------------------------------------------------------------------------------ */

/*
 * Where a convolution's weights keep their output channels. Conv: W [M, C/group, k..], so
 * output channel m owns the rows W[m]. ConvTranspose: W [C, M/group, k..], so W[c, j] belongs to
 * output channel (c / (C/group)) * (M/group) + j.
 */
typedef struct conv_weights {
    int64_t m_count;      /* output channels */
    bool transposed;      /* ConvTranspose's layout */
    int64_t cg, mg, taps; /* ConvTranspose: C/group, M/group, kernel elements */
} conv_weights;

static bool weights_of(const kl_node *n, conv_weights *cw) {
    const kl_value *w = kl_node_input(n, 1);
    cw->transposed = !strcmp(n->op_type, "ConvTranspose");
    if (!w || w->shape.rank < 2) return false;
    int64_t group = kl_attr_int(n, "group", 1);
    if (group < 1 || w->shape.dim[0] % group) return false;
    cw->cg = w->shape.dim[0] / group;
    cw->mg = w->shape.dim[1];
    if (w->shape.dim[0] < 1 || w->shape.dim[1] < 1) return false;
    cw->taps = kl_shape_numel(&w->shape) / (w->shape.dim[0] * w->shape.dim[1]);
    cw->m_count = cw->transposed ? cw->mg * group : w->shape.dim[0];
    return true;
}

/* The output channel of W's element i. */
static int64_t channel_of(const conv_weights *cw, int64_t i, int64_t per_row) {
    if (!cw->transposed) return i / per_row;
    int64_t row = i / cw->taps; /* c * mg + j */
    int64_t c = row / cw->mg, j = row % cw->mg;
    return (c / cw->cg) * cw->mg + j;
}

static bool foldable_conv(const kl_node *n, conv_weights *cw) {
    if ((strcmp(n->op_type, "Conv") && strcmp(n->op_type, "ConvTranspose")) || *n->domain ||
        n->n_outputs < 1 || !n->outputs[0])
        return false;
    const kl_value *x = kl_node_input(n, 0), *w = kl_node_input(n, 1), *b = kl_node_input(n, 2);
    if (!x || !w || !w->data || !foldable_type(w->dtype) || !weights_of(n, cw)) return false;
    if (b && (!b->data || b->dtype != w->dtype || kl_shape_numel(&b->shape) != cw->m_count))
        return false;
    return true;
}

/* conv's W and B through the map; conv then produces `out` (the map's output value). */
static void apply(kl_graph *g, kl_node *conv, const conv_weights *cw, const channel_map *map,
                  kl_node *mapped) {
    kl_value *w = conv->inputs[1], *b = kl_node_input(conv, 2), *out = mapped->outputs[0];
    kl_dtype t = w->dtype;
    int64_t m_count = cw->m_count, count = kl_shape_numel(&w->shape);
    int64_t per_row = count / w->shape.dim[0];
    void *wd = kl_alloc_array(g->arena, (size_t)count + 1, kl_dtype_size(t));
    void *bd = kl_alloc_array(g->arena, (size_t)m_count + 1, kl_dtype_size(t));
    for (int64_t i = 0; i < count; i++)
        put(wd, t, i, get(w, i) * map->mul[channel_of(cw, i, per_row)]);
    for (int64_t m = 0; m < m_count; m++)
        put(bd, t, m, (b ? get(b, m) : 0.0) * map->mul[m] + map->add[m]);
    kl_shape bs = {.rank = 1, .dim = {m_count}};
    kl_node_set_input(g, conv, 1, kl_value_make(g, w->name, t, &w->shape, wd));
    const char *b_name = b ? b->name : kl_sprintf(g->arena, "%s_bias", conv->name);
    kl_node_set_input(g, conv, 2, kl_value_make(g, b_name, t, &bs, bd));
    conv->outputs[0]->producer = NULL; /* the unscaled value is gone */
    kl_node_kill(mapped);
    kl_node_set_output(g, conv, 0, out);
}

/* Fold every map that follows `conv`, one after the other. */
static void fold_into(kl_graph *g, kl_node *conv, const conv_weights *cw, kl_ptrvec *readers,
                      channel_map *map) {
    int64_t m_count = cw->m_count;
    for (;;) {
        kl_value *y = conv->outputs[0];
        if (y->output_index >= 0) return;
        kl_value_consumers(g, y, readers);
        if (readers->n != 1) return;
        kl_node *next = readers->items[0];
        if (next->n_outputs < 1 || !next->outputs[0] || *next->domain) return;
        bool ok = !strcmp(next->op_type, "BatchNormalization") ? bn_map(next, y, map, m_count)
                                                                : arith_map(next, y, map, m_count);
        if (!ok || !kl_shape_equal(&next->outputs[0]->shape, &y->shape) ||
            next->outputs[0]->dtype != y->dtype)
            return;
        apply(g, conv, cw, map, next);
    }
}

bool pass_fold_batchnorm(kl_graph *g, kl_diag *d) {
    (void)d;
    kl_ptrvec readers = {0};
    int count = g->nodes.n;
    for (int i = 0; i < count; i++) {
        kl_node *n = g->nodes.items[i];
        conv_weights cw;
        if (!kl_node_live(n) || !foldable_conv(n, &cw)) continue;
        channel_map map = {
            .mul = kl_alloc_array(g->arena, (size_t)cw.m_count + 1, sizeof(double)),
            .add = kl_alloc_array(g->arena, (size_t)cw.m_count + 1, sizeof(double)),
        };
        fold_into(g, n, &cw, &readers, &map);
    }
    return true;
}
