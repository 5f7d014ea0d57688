/*
 * loss.c — NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
 *
 * Both pick, for every target position (n, d1, ..., dk), the input's entry at the target class:
 * loss = -x[n, t, d1, ..., dk] * w[t], where w is the optional class weight and is 0 where t
 * equals ignore_index. That element expression is built once over loop variables 0..k and
 * serves all three reductions: "none" stores it over the target's shape, "sum" is a reduction
 * nest over every target dimension, and "mean" divides that sum by the sum of the weights
 * (the number of counted positions when there are no weights). The class index is itself a
 * load inside the index expression of x (a gather); ignored positions read class 0 so that
 * every load stays in range.
 * SoftmaxCrossEntropyLoss first writes LogSoftmax over the class dimension (into its second
 * output when the model asks for it) and then is the same loss on that.
 */
#include <string.h>

#include "arith_util.h"

typedef enum loss_reduction { LOSS_NONE, LOSS_SUM, LOSS_MEAN } loss_reduction;

static bool reduction_of(kl_node *n, loss_reduction *r, kl_diag *d) {
    const char *s = kl_attr_string(n, "reduction", "mean");
    if (!strcmp(s, "none")) *r = LOSS_NONE;
    else if (!strcmp(s, "sum")) *r = LOSS_SUM;
    else if (!strcmp(s, "mean")) *r = LOSS_MEAN;
    else return kl_error(d, n, "reduction must be none, sum or mean, not '%s'", s);
    return true;
}

/* input [N, C, d1..dk], target [N, d1..dk] integer, weight [C] (optional). */
static bool infer_loss(kl_node *n, kl_diag *d) {
    loss_reduction r;
    if (!reduction_of(n, &r, d)) return false;
    if (!kl_arith_need_float(n, 0, d) || !kl_arith_need_input(n, 1, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape, *t = &n->inputs[1]->shape;
    if (x->rank < 2) return kl_error(d, n, "input must have rank 2 or more, not %d", x->rank);
    kl_dtype tt = n->inputs[1]->dtype;
    if (!kl_dtype_is_signed_int(tt) && !kl_dtype_is_unsigned_int(tt))
        return kl_error(d, n, "target must be an integer tensor, not %s", kl_dtype_name(tt));
    bool match = t->rank == x->rank - 1 && t->dim[0] == x->dim[0];
    for (int i = 1; match && i < t->rank; i++) match = t->dim[i] == x->dim[i + 1];
    if (!match) {
        kl_arena *a = kl_arena_new();
        kl_error(d, n, "target of shape %s does not match input of shape %s (N, d1, ..., dk)",
                 kl_shape_str(a, t), kl_shape_str(a, x));
        kl_arena_free(a);
        return false;
    }
    kl_value *w = kl_node_input(n, 2);
    if (w) {
        if (!kl_arith_need_input(n, 2, d) || !kl_arith_same_dtype(n, 0, 2, d)) return false;
        if (w->shape.rank != 1 || w->shape.dim[0] != x->dim[1])
            return kl_error(d, n, "weight must have shape [%lld]", (long long)x->dim[1]);
    }
    kl_shape scalar = {0};
    kl_infer_set(n, 0, n->inputs[0]->dtype, r == LOSS_NONE ? t : &scalar);
    return kl_infer_set(n, 1, n->inputs[0]->dtype, x); /* SoftmaxCrossEntropyLoss's log_prob */
}

/* The expressions of one target position, over loop variables 0..rank(target)-1. */
typedef struct loss_terms {
    kl_expr *weight; /* w[t] (or 1), 0 where t == ignore_index */
    kl_expr *loss;   /* -x[n, t, ...] * weight */
} loss_terms;

static loss_terms loss_at(kl_lower *L, kl_node *n, kl_buffer *x) {
    kl_arena *a = L->arena;
    kl_dtype u = x->dtype;
    kl_buffer *target = kl_lower_buffer(L, n->inputs[1]);
    int tr = target->shape.rank;
    kl_expr *t = kl_e_cast(a, KL_I64, kl_e_load(a, target, kl_lower_ivs(L, tr)));
    kl_expr *counted = NULL;
    const kl_attr *ignore = kl_attr_find(n, "ignore_index");
    if (ignore) {
        counted = kl_e_binary(a, KL_NE, t, kl_e_idx(a, ignore->i));
        t = kl_e_select(a, counted, t, kl_e_idx(a, 0));
    }
    kl_expr *xidx[KL_MAX_RANK];
    xidx[0] = kl_e_iv(a, 0);
    xidx[1] = t;
    for (int i = 1; i < tr; i++) xidx[i + 1] = kl_e_iv(a, i);
    kl_expr *w = kl_arith_const(a, u, 1);
    if (kl_node_input(n, 2)) w = kl_e_load(a, kl_lower_buffer(L, n->inputs[2]), &t);
    if (counted) w = kl_e_select(a, counted, w, kl_arith_const(a, u, 0));
    kl_expr *picked = kl_e_unary(a, KL_NEG, kl_e_load(a, x, xidx));
    bool weighted = counted || kl_node_input(n, 2);
    return (loss_terms){.weight = w, .loss = weighted ? kl_e_binary(a, KL_MUL, picked, w) : picked};
}

/* A reduction of `value` over every target position into the scalar `out`. */
static kl_kernel *sum_over_targets(kl_lower *L, kl_node *n, const char *tag, kl_buffer *out,
                                   kl_expr *value) {
    const kl_shape *t = &n->inputs[1]->shape;
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_par = 0;
    k->n_loops = t->rank;
    for (int i = 0; i < t->rank; i++) k->extent[i] = t->dim[i];
    k->reduce = KL_RED_SUM;
    k->acc_dtype = value->dtype;
    k->value = value;
    k->out = out;
    k->out_idx = kl_alloc_array(L->arena, 1, sizeof *k->out_idx);
    return k;
}

/* The loss of log-probabilities x (the input itself, or SoftmaxCrossEntropyLoss's log_prob). */
static bool lower_loss_of(kl_lower *L, kl_node *n, kl_buffer *x, kl_diag *d) {
    kl_arena *a = L->arena;
    loss_reduction r;
    if (!reduction_of(n, &r, d)) return false;
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    loss_terms terms = loss_at(L, n, x);
    if (r == LOSS_NONE) {
        kl_arith_map(L, n, NULL, out, terms.loss);
        return true;
    }
    kl_kernel *k = sum_over_targets(L, n, NULL, out, terms.loss);
    if (r == LOSS_MEAN) {
        kl_shape scalar = {0};
        kl_buffer *total = kl_lower_temp(L, "weight_sum", x->dtype, &scalar);
        kl_program_add_kernel(L->prog, sum_over_targets(L, n, "weight_sum", total, terms.weight));
        k->result = kl_e_binary(a, KL_DIV, kl_e_acc(a, x->dtype), kl_e_load(a, total, NULL));
    }
    kl_program_add_kernel(L->prog, k);
    return true;
}

static bool lower_nll(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_loss_of(L, n, kl_lower_buffer(L, n->inputs[0]), d);
}

static bool lower_softmax_cross_entropy(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_value *lp = kl_node_output(n, 1);
    kl_buffer *log_prob = lp ? kl_lower_buffer(L, lp)
                             : kl_lower_temp(L, "log_prob", x->dtype, &x->shape);
    bool classes[KL_MAX_RANK] = {false, true};
    kl_arith_softmax(L, n, x, classes, log_prob, true);
    return lower_loss_of(L, n, log_prob, d);
}

static const char *const loss_attrs[] = {"ignore_index", "reduction", NULL};

const kl_op kl_ops_loss[] = {
    {"", "NegativeLogLikelihoodLoss", 12, KL_OPSET_LATEST, loss_attrs, infer_loss, lower_nll},
    {"", "SoftmaxCrossEntropyLoss", 12, KL_OPSET_LATEST, loss_attrs, infer_loss,
     lower_softmax_cross_entropy},
    {0},
};
