/*
 * norm.c — Softmax, LogSoftmax, Hardmax, BatchNormalization, InstanceNormalization,
 * LayerNormalization, GroupNormalization, LRN, RMSNormalization, LpNormalization,
 * MeanVarianceNormalization.
 *
 * Each is a few kernels: statistics of the input over some dimensions (reduction nests from
 * arith_util.h, stored with the reduced dimensions kept as 1), then one elementwise kernel over
 * the input that reads those statistics broadcast. Softmax and LogSoftmax subtract the maximum
 * before exp so large inputs do not overflow; the normalizations compute the variance from the
 * mean in a second pass (sum of squared differences), which loses no precision when the mean
 * is large. Softmax before opset 13 normalizes over all dimensions from `axis` on (the input
 * coerced to 2-D), since 13 over `axis` alone.
 */
#include <string.h>

#include "arith_util.h"

/* ---- expression shorthands ---- */

static kl_expr *sub(kl_arena *a, kl_expr *x, kl_expr *y) { return kl_e_binary(a, KL_SUB, x, y); }
static kl_expr *mul(kl_arena *a, kl_expr *x, kl_expr *y) { return kl_e_binary(a, KL_MUL, x, y); }
static kl_expr *add(kl_arena *a, kl_expr *x, kl_expr *y) { return kl_e_binary(a, KL_ADD, x, y); }
static kl_expr *divide(kl_arena *a, kl_expr *x, kl_expr *y) {
    return kl_e_binary(a, KL_DIV, x, y);
}

/* Load of x over loop variables 0..rank-1, converted to the computation type u. */
static kl_expr *load_full(kl_lower *L, kl_buffer *x, kl_dtype u) {
    return kl_e_cast(L->arena, u, kl_e_load(L->arena, x, kl_lower_ivs(L, x->shape.rank)));
}

/* ---- Softmax, LogSoftmax, Hardmax ---- */

static bool softmax_axes(kl_node *n, bool reduced[KL_MAX_RANK], kl_diag *d) {
    int rank = n->inputs[0]->shape.rank, axis;
    int64_t given = kl_attr_int(n, "axis", n->opset < 13 ? 1 : -1);
    if (!kl_axis_normalize(given, rank, &axis))
        return kl_error(d, n, "axis %lld is out of range for rank %d", (long long)given, rank);
    for (int i = 0; i < rank; i++) reduced[i] = n->opset < 13 ? i >= axis : i == axis;
    return true;
}

static bool infer_softmax(kl_node *n, kl_diag *d) {
    bool reduced[KL_MAX_RANK];
    if (!kl_arith_need_float(n, 0, d) || !softmax_axes(n, reduced, d)) return false;
    return kl_infer_same_as_input(n, d);
}

/* The maximum of x over the reduced dimensions, kept as 1. */
static kl_buffer *slice_max(kl_lower *L, kl_node *n, kl_buffer *x, const bool *reduced) {
    kl_shape s = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *m = kl_lower_temp(L, "max", x->dtype, &s);
    kl_program_add_kernel(L->prog, kl_arith_reduce(L, n, "max", x, reduced, m, KL_RED_MAX));
    return m;
}

static bool lower_softmax(kl_lower *L, kl_node *n, kl_diag *d) {
    bool reduced[KL_MAX_RANK];
    if (!softmax_axes(n, reduced, d)) return false;
    kl_arith_softmax(L, n, kl_lower_buffer(L, n->inputs[0]), reduced,
                     kl_lower_buffer(L, n->outputs[0]), !strcmp(n->op_type, "LogSoftmax"));
    return true;
}

/* Row-major position within the reduced dimensions; iv(d) of dimension d is `first_iv[d]`. */
static kl_expr *reduced_position(kl_arena *a, const kl_shape *s, const bool *reduced,
                                 const int *iv_of) {
    kl_expr *pos = kl_e_idx(a, 0);
    for (int d = 0; d < s->rank; d++)
        if (reduced[d]) pos = kl_e_add(a, kl_e_mulc(a, pos, s->dim[d]), kl_e_iv(a, iv_of[d]));
    return pos;
}

/* Hardmax: 1 at the first maximum of each slice, 0 elsewhere. */
static bool lower_hardmax(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK];
    if (!softmax_axes(n, reduced, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    int rank = x->shape.rank, in_reduce[KL_MAX_RANK], in_map[KL_MAX_RANK], r = 0;
    for (int i = 0; i < rank; i++) {
        in_map[i] = i;
        in_reduce[i] = reduced[i] ? rank + r++ : i;
    }
    kl_buffer *m = slice_max(L, n, x, reduced);

    kl_shape ps = m->shape;
    kl_buffer *first = kl_lower_temp(L, "first", KL_I64, &ps);
    kl_kernel *k = kl_arith_reduce(L, n, "first", x, reduced, first, KL_RED_MIN);
    kl_expr *hit = kl_e_binary(a, KL_EQ, k->value, kl_lower_load_broadcast(L, m, rank));
    k->value = kl_e_select(a, hit, reduced_position(a, &x->shape, reduced, in_reduce),
                           kl_e_idx(a, kl_arith_reduced_count(&x->shape, reduced)));
    k->acc_dtype = KL_I64;
    kl_program_add_kernel(L->prog, k);

    kl_expr *is_first = kl_e_binary(a, KL_EQ, reduced_position(a, &x->shape, reduced, in_map),
                                    kl_lower_load_broadcast(L, first, rank));
    kl_arith_map(L, n, NULL, out,
                 kl_e_select(a, is_first, kl_arith_const(a, x->dtype, 1),
                             kl_arith_const(a, x->dtype, 0)));
    return true;
}

/* ---- moments shared by the normalizations ---- */

/* mean = sum(x) / N and second = sum((x - mean)^2) / N (or 1 / sqrt(that + eps) when
 * `inv_std`), over the reduced dimensions, in type u; both buffers have the kept shape. */
static void moments(kl_lower *L, kl_node *n, kl_buffer *x, const bool *reduced, kl_dtype u,
                    kl_buffer *mean, kl_buffer *second, bool inv_std, double eps) {
    kl_arena *a = L->arena;
    int rank = x->shape.rank;
    kl_expr *count = kl_arith_const(a, u, (double)kl_arith_reduced_count(&x->shape, reduced));

    kl_kernel *km = kl_arith_reduce(L, n, "mean", x, reduced, mean, KL_RED_SUM);
    km->value = kl_e_cast(a, u, km->value);
    km->acc_dtype = u;
    km->result = divide(a, kl_e_acc(a, u), count);
    kl_program_add_kernel(L->prog, km);

    kl_kernel *kv = kl_arith_reduce(L, n, inv_std ? "invstd" : "var", x, reduced, second,
                                    KL_RED_SUM);
    kl_expr *diff = sub(a, kl_e_cast(a, u, kv->value), kl_lower_load_broadcast(L, mean, rank));
    kv->value = mul(a, diff, diff);
    kv->acc_dtype = u;
    kl_expr *var = divide(a, kl_e_acc(a, u), count);
    kv->result = inv_std ? kl_e_unary(a, KL_RECIP, kl_e_unary(a, KL_SQRT,
                                                          add(a, var, kl_arith_const(a, u, eps))))
                         : var;
    kl_program_add_kernel(L->prog, kv);
}

/* ---- BatchNormalization ---- */

/* Scale, bias, mean and variance: all the same shape, either [C] or (per activation, before
 * opset 9's spatial=0) X's shape without the batch dimension, or 1s where broadcast. */
static bool check_bn_params(kl_node *n, kl_diag *d) {
    const kl_shape *x = &n->inputs[0]->shape;
    if (x->rank < 2) return kl_error(d, n, "X must have rank 2 or more, not %d", x->rank);
    for (int i = 1; i <= 4; i++) /* all present first: the scale's shape is read below */
        if (!kl_arith_need_float(n, i, d)) return false;
    const kl_shape *p = &n->inputs[1]->shape;
    for (int i = 2; i <= 4; i++) {
        if (!kl_shape_equal(&n->inputs[i]->shape, p))
            return kl_error(d, n, "input %d ('%s') does not have the shape of the scale", i,
                            n->inputs[i]->name);
    }
    if (p->rank < 1 || p->rank > x->rank - 1)
        return kl_error(d, n, "scale must have rank 1 to %d, not %d", x->rank - 1, p->rank);
    for (int j = 0; j < p->rank; j++)
        if (p->dim[j] != 1 && p->dim[j] != x->dim[1 + j])
            return kl_error(d, n, "scale dimension %d (%lld) does not match X dimension %d "
                            "(%lld)", j, (long long)p->dim[j], 1 + j, (long long)x->dim[1 + j]);
    return true;
}

static bool bn_training(const kl_node *n) {
    return n->opset >= 14 && kl_attr_int(n, "training_mode", 0);
}

static bool infer_batchnorm(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d) || !check_bn_params(n, d)) return false;
    bool training = bn_training(n);
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] && !training)
            return kl_error(d, n, "output %d (training statistics) is only computed with "
                            "training_mode=1 (opset 14+)", i);
    if (!kl_infer_same_as_input(n, d)) return false;
    if (training && n->inputs[1]->shape.rank != 1)
        return kl_error(d, n, "training mode needs scale of shape [C]");
    for (int i = 1; i < n->n_outputs && i < 3; i++)
        kl_infer_set(n, i, n->inputs[2 + i]->dtype, &n->inputs[2 + i]->shape);
    return true;
}

/* Load of a parameter laid along X's dimensions 1.. (size-1 dimensions broadcast), as u. */
static kl_expr *load_param(kl_lower *L, kl_value *v, kl_dtype u) {
    kl_buffer *b = kl_lower_buffer(L, v);
    kl_expr *idx[KL_MAX_RANK];
    for (int j = 0; j < b->shape.rank; j++)
        idx[j] = b->shape.dim[j] == 1 ? kl_e_idx(L->arena, 0) : kl_e_iv(L->arena, 1 + j);
    return kl_e_cast(L->arena, u, kl_e_load(L->arena, b, idx));
}

/* Inference: y = (x - mean) * a + bias with a = scale / sqrt(var + eps) computed once per
 * channel (a small kernel over the parameter shape, folded at compile time when the
 * parameters are weights, as they nearly always are). */
static bool lower_bn_inference(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    double eps = kl_attr_float(n, "epsilon", 1e-5);

    kl_shape ps = n->inputs[1]->shape;
    kl_buffer *factor = kl_lower_temp(L, "factor", u, &ps);
    kl_expr **pidx = kl_lower_ivs(L, ps.rank);
    kl_expr *scale = kl_e_cast(a, u, kl_e_load(a, kl_lower_buffer(L, n->inputs[1]), pidx));
    kl_expr *var = kl_e_cast(a, u, kl_e_load(a, kl_lower_buffer(L, n->inputs[4]), pidx));
    kl_expr *root = kl_e_unary(a, KL_SQRT, add(a, var, kl_arith_const(a, u, eps)));
    kl_kernel *fk = kl_kernel_new(L->prog, n, "factor");
    fk->n_loops = fk->n_par = ps.rank;
    for (int i = 0; i < ps.rank; i++) fk->extent[i] = ps.dim[i];
    fk->out = factor;
    fk->out_idx = pidx;
    fk->value = divide(a, scale, root);
    if (!kl_arith_add_or_fold(L, fk, d)) return false;

    kl_expr *idx[KL_MAX_RANK];
    for (int j = 0; j < ps.rank; j++)
        idx[j] = ps.dim[j] == 1 ? kl_e_idx(a, 0) : kl_e_iv(a, 1 + j);
    kl_expr *f = kl_e_load(a, factor, idx);
    kl_expr *centered = sub(a, load_full(L, x, u), load_param(L, n->inputs[3], u));
    kl_expr *y = add(a, mul(a, centered, f), load_param(L, n->inputs[2], u));
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));
    return true;
}

/* Training (opset 14+): normalize with the batch's own mean and (biased) variance over every
 * dimension but the channel, and report running statistics
 * input_stat * momentum + batch_stat * (1 - momentum). */
static void lower_bn_training(kl_lower *L, kl_node *n) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    int rank = x->shape.rank;
    double eps = kl_attr_float(n, "epsilon", 1e-5), momentum = kl_attr_float(n, "momentum", 0.9);
    bool reduced[KL_MAX_RANK] = {0};
    for (int i = 0; i < rank; i++) reduced[i] = i != 1;
    kl_shape ks = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *mean = kl_lower_temp(L, "mean", u, &ks), *var = kl_lower_temp(L, "var", u, &ks);
    moments(L, n, x, reduced, u, mean, var, false, eps);

    kl_expr *m = kl_lower_load_broadcast(L, mean, rank), *v = kl_lower_load_broadcast(L, var, rank);
    kl_expr *root = kl_e_unary(a, KL_SQRT, add(a, v, kl_arith_const(a, u, eps)));
    kl_expr *norm = divide(a, sub(a, load_full(L, x, u), m), root);
    kl_expr *y = add(a, mul(a, norm, load_param(L, n->inputs[1], u)),
                     load_param(L, n->inputs[2], u));
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));

    /* running statistics: kernels over [C], reading the [1,C,1,...] batch statistics */
    kl_buffer *batch[2] = {mean, var};
    for (int i = 1; i < n->n_outputs && i < 3; i++) {
        if (!n->outputs[i]) continue;
        kl_buffer *o = kl_lower_buffer(L, n->outputs[i]);
        kl_expr *idx[KL_MAX_RANK];
        for (int j = 0; j < rank; j++) idx[j] = j == 1 ? kl_e_iv(a, 0) : kl_e_idx(a, 0);
        kl_expr *stat = kl_e_cast(a, o->dtype, kl_e_load(a, batch[i - 1], idx));
        kl_expr *c0 = kl_e_iv(a, 0);
        kl_expr *prev = kl_e_cast(a, o->dtype,
                                  kl_e_load(a, kl_lower_buffer(L, n->inputs[2 + i]), &c0));
        kl_arith_map(L, n, i == 1 ? "running_mean" : "running_var", o,
                     add(a, mul(a, prev, kl_arith_const(a, o->dtype, momentum)),
                         mul(a, stat, kl_arith_const(a, o->dtype, 1 - momentum))));
    }
}

static bool lower_batchnorm(kl_lower *L, kl_node *n, kl_diag *d) {
    if (!bn_training(n)) return lower_bn_inference(L, n, d);
    lower_bn_training(L, n);
    return true;
}

/* ---- InstanceNormalization ---- */

static bool infer_instancenorm(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    if (x->rank < 2) return kl_error(d, n, "X must have rank 2 or more, not %d", x->rank);
    for (int i = 1; i <= 2; i++) {
        if (!kl_arith_need_float(n, i, d)) return false;
        const kl_shape *p = &n->inputs[i]->shape;
        if (p->rank != 1 || p->dim[0] != x->dim[1])
            return kl_error(d, n, "input %d ('%s') must have shape [%lld]", i,
                            n->inputs[i]->name, (long long)x->dim[1]);
    }
    return kl_infer_same_as_input(n, d);
}

static bool lower_instancenorm(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    int rank = x->shape.rank;
    bool reduced[KL_MAX_RANK] = {0};
    for (int i = 2; i < rank; i++) reduced[i] = true;
    kl_shape ks = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *mean = kl_lower_temp(L, "mean", u, &ks), *inv = kl_lower_temp(L, "invstd", u, &ks);
    moments(L, n, x, reduced, u, mean, inv, true, kl_attr_float(n, "epsilon", 1e-5));

    kl_expr *norm = mul(a, sub(a, load_full(L, x, u), kl_lower_load_broadcast(L, mean, rank)),
                        kl_lower_load_broadcast(L, inv, rank));
    kl_expr *y = add(a, mul(a, norm, load_param(L, n->inputs[1], u)),
                     load_param(L, n->inputs[2], u));
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));
    return true;
}

/* ---- LayerNormalization ---- */

static bool layernorm_axes(kl_node *n, bool reduced[KL_MAX_RANK], kl_diag *d) {
    int rank = n->inputs[0]->shape.rank, axis;
    int64_t given = kl_attr_int(n, "axis", -1);
    if (!kl_axis_normalize(given, rank, &axis))
        return kl_error(d, n, "axis %lld is out of range for rank %d", (long long)given, rank);
    for (int i = 0; i < rank; i++) reduced[i] = i >= axis;
    return true;
}

/* The type statistics are computed in (stash_type): float32 unless X is float64. */
static kl_dtype stash_dtype(const kl_node *n) {
    kl_dtype x = n->inputs[0]->dtype;
    if (kl_attr_int(n, "stash_type", 1) != 1) return x;
    return x == KL_F64 ? KL_F64 : KL_F32;
}

static bool infer_layernorm(kl_node *n, kl_diag *d) {
    bool reduced[KL_MAX_RANK];
    if (!kl_arith_need_float(n, 0, d) || !layernorm_axes(n, reduced, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    for (int i = 1; i <= 2; i++) {
        if (i == 2 && !kl_node_input(n, 2)) continue;
        if (!kl_arith_need_float(n, i, d)) return false;
        kl_shape s;
        if (!kl_shape_broadcast(x, &n->inputs[i]->shape, &s) || !kl_shape_equal(&s, x))
            return kl_error(d, n, "input %d ('%s') does not broadcast to X", i,
                            n->inputs[i]->name);
    }
    kl_shape ks = kl_arith_reduced_shape(x, reduced, true);
    kl_infer_set(n, 1, stash_dtype(n), &ks);
    kl_infer_set(n, 2, stash_dtype(n), &ks);
    return kl_infer_same_as_input(n, d);
}

/* A statistics buffer: the node's output when the model asks for it, else a temporary. */
static kl_buffer *stat_buffer(kl_lower *L, kl_node *n, int out, const char *name, kl_dtype u,
                              const kl_shape *s) {
    kl_value *v = kl_node_output(n, out);
    return v ? kl_lower_buffer(L, v) : kl_lower_temp(L, name, u, s);
}

static bool lower_layernorm(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK];
    if (!layernorm_axes(n, reduced, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = stash_dtype(n);
    int rank = x->shape.rank;
    kl_shape ks = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *mean = stat_buffer(L, n, 1, "mean", u, &ks);
    kl_buffer *inv = stat_buffer(L, n, 2, "invstd", u, &ks);
    moments(L, n, x, reduced, u, mean, inv, true, kl_attr_float(n, "epsilon", 1e-5));

    kl_expr *norm = mul(a, sub(a, load_full(L, x, u), kl_lower_load_broadcast(L, mean, rank)),
                        kl_lower_load_broadcast(L, inv, rank));
    kl_expr *scale = kl_lower_load_broadcast(L, kl_lower_buffer(L, n->inputs[1]), rank);
    kl_expr *y = mul(a, norm, kl_e_cast(a, u, scale));
    if (kl_node_input(n, 2)) {
        kl_expr *bias = kl_lower_load_broadcast(L, kl_lower_buffer(L, n->inputs[2]), rank);
        y = add(a, y, kl_e_cast(a, u, bias));
    }
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));
    return true;
}

/* ---- GroupNormalization ---- */

/* X [N, C, ...] in num_groups groups of C / G channels; scale and bias per channel [C]
 * (opset 21) or, in the withdrawn opset 18, per group [G]. */
static bool infer_groupnorm(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    if (x->rank < 2) return kl_error(d, n, "X must have rank 2 or more, not %d", x->rank);
    int64_t g = kl_attr_int(n, "num_groups", 0);
    if (g <= 0 || x->dim[1] % g)
        return kl_error(d, n, "num_groups %lld must be positive and divide the %lld channels",
                        (long long)g, (long long)x->dim[1]);
    int64_t want = n->opset >= 21 ? x->dim[1] : g;
    for (int i = 1; i <= 2; i++) {
        if (!kl_arith_need_float(n, i, d)) return false;
        const kl_shape *p = &n->inputs[i]->shape;
        if (p->rank != 1 || p->dim[0] != want)
            return kl_error(d, n, "input %d ('%s') must have shape [%lld]", i,
                            n->inputs[i]->name, (long long)want);
    }
    return kl_infer_same_as_input(n, d);
}

/* The statistics of each group come from a view of X as [N, G, C / G * spatial]; the output
 * kernel reads them for channel c at group c / (C / G). */
static bool lower_groupnorm(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = stash_dtype(n);
    int rank = x->shape.rank;
    int64_t groups = kl_attr_int(n, "num_groups", 1), per = x->shape.dim[1] / groups, rest = per;
    for (int i = 2; i < rank; i++) rest *= x->shape.dim[i];
    kl_shape gs = {.rank = 3, .dim = {x->shape.dim[0], groups, rest}};
    kl_buffer *xg = kl_program_view(L->prog, x, &gs);
    bool reduced[KL_MAX_RANK] = {false, false, true};
    kl_shape ks = kl_arith_reduced_shape(&gs, reduced, true);
    kl_buffer *mean = kl_lower_temp(L, "mean", u, &ks), *inv = kl_lower_temp(L, "invstd", u, &ks);
    moments(L, n, xg, reduced, u, mean, inv, true, kl_attr_float(n, "epsilon", 1e-5));

    kl_expr *g = kl_e_binary(a, KL_DIV, kl_e_iv(a, 1), kl_e_idx(a, per));
    kl_expr *stat_idx[3] = {kl_e_iv(a, 0), g, kl_e_idx(a, 0)};
    kl_expr *norm = mul(a, sub(a, load_full(L, x, u), kl_e_load(a, mean, stat_idx)),
                        kl_e_load(a, inv, stat_idx));
    kl_expr *param_idx = n->opset >= 21 ? kl_e_iv(a, 1) : g;
    kl_expr *scale = kl_e_load(a, kl_lower_buffer(L, n->inputs[1]), &param_idx);
    kl_expr *bias = kl_e_load(a, kl_lower_buffer(L, n->inputs[2]), &param_idx);
    kl_expr *y = add(a, mul(a, norm, kl_e_cast(a, u, scale)), kl_e_cast(a, u, bias));
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));
    return true;
}

/* ---- LRN ---- */

static bool infer_lrn(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d)) return false;
    if (n->inputs[0]->shape.rank < 3)
        return kl_error(d, n, "X must be [N, C, D1, ...], not rank %d", n->inputs[0]->shape.rank);
    if (kl_attr_int(n, "size", 0) <= 0) return kl_error(d, n, "size must be positive");
    return kl_infer_same_as_input(n, d);
}

/* y = x / (bias + alpha / size * sum of x^2 over the channels c - floor((size - 1) / 2) ..
 * c + ceil((size - 1) / 2))^beta: one kernel whose reduction loop walks the window (channels
 * past either end count 0) and whose result divides. */
static bool lower_lrn(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    int rank = x->shape.rank;
    int64_t size = kl_attr_int(n, "size", 1), before = (size - 1) / 2;
    double alpha = kl_attr_float(n, "alpha", 1e-4), beta = kl_attr_float(n, "beta", 0.75);
    double bias = kl_attr_float(n, "bias", 1.0);
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    k->n_par = rank;
    k->n_loops = rank + 1;
    for (int i = 0; i < rank; i++) k->extent[i] = x->shape.dim[i];
    k->extent[rank] = size;
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < rank; i++) idx[i] = kl_e_iv(a, i);
    idx[1] = kl_e_addc(a, kl_e_add(a, kl_e_iv(a, 1), kl_e_iv(a, rank)), -before);
    kl_expr *v = kl_e_cast(a, u, kl_e_load(a, x, idx));
    k->value = kl_e_select(a, kl_e_in_range(a, idx[1], x->shape.dim[1]), mul(a, v, v),
                           kl_arith_const(a, u, 0));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = u;
    kl_expr *den = add(a, kl_arith_const(a, u, bias),
                       mul(a, kl_arith_const(a, u, alpha / (double)size), kl_e_acc(a, u)));
    den = kl_e_binary(a, KL_POW, den, kl_arith_const(a, u, beta));
    k->result = kl_e_cast(a, x->dtype, divide(a, load_full(L, x, u), den));
    k->out = out;
    k->out_idx = kl_lower_ivs(L, rank);
    kl_program_add_kernel(L->prog, k);
    return true;
}

/* ---- RMSNormalization ---- */

/* y = x / sqrt(mean(x^2) + eps) * scale over the dimensions from `axis` on (opset 23). */
static bool lower_rmsnorm(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK];
    if (!layernorm_axes(n, reduced, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = stash_dtype(n);
    int rank = x->shape.rank;
    kl_shape ks = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *inv = kl_lower_temp(L, "invrms", u, &ks);
    kl_kernel *k = kl_arith_reduce(L, n, "invrms", x, reduced, inv, KL_RED_SUM);
    kl_expr *xv = kl_e_cast(a, u, k->value);
    k->value = mul(a, xv, xv);
    k->acc_dtype = u;
    kl_expr *count = kl_arith_const(a, u, (double)kl_arith_reduced_count(&x->shape, reduced));
    kl_expr *ms = add(a, divide(a, kl_e_acc(a, u), count),
                      kl_arith_const(a, u, kl_attr_float(n, "epsilon", 1e-5)));
    k->result = kl_e_unary(a, KL_RECIP, kl_e_unary(a, KL_SQRT, ms));
    kl_program_add_kernel(L->prog, k);

    kl_expr *scale = kl_lower_load_broadcast(L, kl_lower_buffer(L, n->inputs[1]), rank);
    kl_expr *y = mul(a, mul(a, load_full(L, x, u), kl_lower_load_broadcast(L, inv, rank)),
                     kl_e_cast(a, u, scale));
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));
    return true;
}

/* ---- LpNormalization, MeanVarianceNormalization ---- */

static bool lp_axis(kl_node *n, bool reduced[KL_MAX_RANK], kl_diag *d) {
    memset(reduced, 0, KL_MAX_RANK * sizeof reduced[0]);
    return kl_arith_mark_axis(n, kl_attr_int(n, "axis", -1), n->inputs[0]->shape.rank, reduced,
                              d);
}

static bool infer_lpnorm(kl_node *n, kl_diag *d) {
    bool reduced[KL_MAX_RANK];
    if (!kl_arith_need_float(n, 0, d) || !lp_axis(n, reduced, d)) return false;
    int64_t p = kl_attr_int(n, "p", 2);
    if (p != 1 && p != 2) return kl_error(d, n, "p must be 1 or 2, not %lld", (long long)p);
    return kl_infer_same_as_input(n, d);
}

/* y = x / ||x||_p along `axis`, 0 where the norm is 0. */
static bool lower_lpnorm(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK];
    if (!lp_axis(n, reduced, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    bool p2 = kl_attr_int(n, "p", 2) == 2;
    kl_shape ks = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *norm = kl_lower_temp(L, "norm", u, &ks);
    kl_kernel *k = kl_arith_reduce(L, n, "norm", x, reduced, norm, KL_RED_SUM);
    kl_expr *xv = kl_e_cast(a, u, k->value);
    k->value = p2 ? mul(a, xv, xv) : kl_e_unary(a, KL_ABS, xv);
    k->acc_dtype = u;
    if (p2) k->result = kl_e_unary(a, KL_SQRT, kl_e_acc(a, u));
    kl_program_add_kernel(L->prog, k);

    kl_expr *nv = kl_lower_load_broadcast(L, norm, x->shape.rank);
    kl_expr *zero = kl_arith_const(a, u, 0);
    kl_expr *y = kl_e_select(a, kl_e_binary(a, KL_EQ, nv, zero), zero,
                             divide(a, load_full(L, x, u), nv));
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));
    return true;
}

static bool mvn_axes(kl_node *n, bool reduced[KL_MAX_RANK], kl_diag *d) {
    memset(reduced, 0, KL_MAX_RANK * sizeof reduced[0]);
    const int64_t *axes;
    int count = kl_attr_ints(n, "axes", &axes);
    static const int64_t def[] = {0, 2, 3};
    if (count < 0) {
        axes = def;
        count = 3;
    }
    for (int i = 0; i < count; i++)
        if (!kl_arith_mark_axis(n, axes[i], n->inputs[0]->shape.rank, reduced, d)) return false;
    return true;
}

static bool infer_mvn(kl_node *n, kl_diag *d) {
    bool reduced[KL_MAX_RANK];
    if (!kl_arith_need_float(n, 0, d) || !mvn_axes(n, reduced, d)) return false;
    return kl_infer_same_as_input(n, d);
}

/* y = (x - mean) / (sqrt(var) + 1e-9) over `axes` (default N, H, W), as ONNX's function body. */
static bool lower_mvn(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK];
    if (!mvn_axes(n, reduced, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    int rank = x->shape.rank;
    kl_shape ks = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *mean = kl_lower_temp(L, "mean", u, &ks), *var = kl_lower_temp(L, "var", u, &ks);
    moments(L, n, x, reduced, u, mean, var, false, 0);
    kl_expr *sd = add(a, kl_e_unary(a, KL_SQRT, kl_lower_load_broadcast(L, var, rank)),
                      kl_arith_const(a, u, 1e-9));
    kl_expr *y = divide(a, sub(a, load_full(L, x, u), kl_lower_load_broadcast(L, mean, rank)), sd);
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));
    return true;
}

/* ---- the table ---- */

static const char *const axis_attrs[] = {"axis", NULL};
static const char *const bn_attrs[] = {"epsilon", "momentum", "training_mode", "is_test",
                                       "spatial", "consumed_inputs", NULL};
static const char *const in_attrs[] = {"epsilon", "consumed_inputs", NULL};
static const char *const ln_attrs[] = {"axis", "epsilon", "stash_type", NULL};
static const char *const lp_attrs[] = {"axis", "p", NULL};
static const char *const mvn_attrs[] = {"axes", NULL};
static const char *const gn_attrs[] = {"epsilon", "num_groups", "stash_type", NULL};
static const char *const lrn_attrs[] = {"alpha", "beta", "bias", "size", NULL};

const kl_op kl_ops_norm[] = {
    {"", "Softmax", 1, KL_OPSET_LATEST, axis_attrs, infer_softmax, lower_softmax},
    {"", "LogSoftmax", 1, KL_OPSET_LATEST, axis_attrs, infer_softmax, lower_softmax},
    {"", "Hardmax", 1, KL_OPSET_LATEST, axis_attrs, infer_softmax, lower_hardmax},
    {"", "BatchNormalization", 1, KL_OPSET_LATEST, bn_attrs, infer_batchnorm, lower_batchnorm},
    {"", "InstanceNormalization", 1, KL_OPSET_LATEST, in_attrs, infer_instancenorm,
     lower_instancenorm},
    {"", "LayerNormalization", 17, KL_OPSET_LATEST, ln_attrs, infer_layernorm, lower_layernorm},
    {"", "RMSNormalization", 23, KL_OPSET_LATEST, ln_attrs, infer_layernorm, lower_rmsnorm},
    {"", "LpNormalization", 1, KL_OPSET_LATEST, lp_attrs, infer_lpnorm, lower_lpnorm},
    {"", "MeanVarianceNormalization", 9, KL_OPSET_LATEST, mvn_attrs, infer_mvn, lower_mvn},
    {"", "GroupNormalization", 18, KL_OPSET_LATEST, gn_attrs, infer_groupnorm, lower_groupnorm},
    {"", "LRN", 1, KL_OPSET_LATEST, lrn_attrs, infer_lrn, lower_lrn},
    {0},
};
