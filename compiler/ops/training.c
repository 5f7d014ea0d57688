/*
 * training.c — the optimizers of domain ai.onnx.preview.training (opset 1): Adagrad, Momentum
 * (standard and Nesterov) and Adam.
 *
 * Each takes a learning rate R and a step count T (scalars) and n groups of same-shaped
 * tensors (X1..Xn, then their gradients G1..Gn, then one or two state tensors per X), and
 * returns the updated tensors group by group (X1_new..Xn_new, then the new states). Every
 * output element depends only on the inputs at the same position, so each output is one
 * elementwise kernel over its X; the scalar arithmetic on R and T (decay, bias correction) is
 * part of the expression. Everything computes in float64, as the reference's numpy promotion
 * of a float32 tensor with the float64 attribute values and T does, and rounds once on store.
 */
#include <string.h>

#include "arith_util.h"

typedef enum opt_kind { OPT_ADAGRAD, OPT_MOMENTUM, OPT_ADAM } opt_kind;

static const char *const adagrad_attrs[] = {"decay_factor", "epsilon", "norm_coefficient", NULL};
static const char *const momentum_attrs[] = {"alpha", "beta", "mode", "norm_coefficient", NULL};
static const char *const adam_attrs[] = {"alpha", "beta", "epsilon", "norm_coefficient",
                                         "norm_coefficient_post", NULL};

static opt_kind kind_of(const kl_node *n) {
    if (!strcmp(n->op_type, "Adagrad")) return OPT_ADAGRAD;
    return !strcmp(n->op_type, "Momentum") ? OPT_MOMENTUM : OPT_ADAM;
}

/* State tensors per X: Adagrad H; Momentum V; Adam V and H. */
static int states_of(opt_kind k) { return k == OPT_ADAM ? 2 : 1; }

/* The number of tensor groups n, checking every input and the outputs' count. */
static bool opt_groups(kl_node *n, int *groups, kl_diag *d) {
    opt_kind k = kind_of(n);
    int per = 2 + states_of(k);
    if (n->n_inputs < 2 + per || (n->n_inputs - 2) % per)
        return kl_error(d, n, "%s takes R, T and %d tensors per optimized tensor", n->op_type,
                        per);
    *groups = (n->n_inputs - 2) / per;
    if (n->n_outputs > *groups * (1 + states_of(k)))
        return kl_error(d, n, "%s has %d outputs at most", n->op_type,
                        *groups * (1 + states_of(k)));
    for (int i = 0; i < n->n_inputs; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    if (!kl_dtype_is_float(n->inputs[0]->dtype) || kl_shape_numel(&n->inputs[0]->shape) != 1)
        return kl_error(d, n, "R must be a floating-point scalar");
    if (!kl_dtype_is_signed_int(n->inputs[1]->dtype) || kl_shape_numel(&n->inputs[1]->shape) != 1)
        return kl_error(d, n, "T must be an integer scalar");
    for (int g = 0; g < *groups; g++) {
        kl_value *x = n->inputs[2 + g];
        if (!kl_dtype_is_float(x->dtype))
            return kl_error(d, n, "input %d must be floating-point", 2 + g);
        for (int j = 1; j < per; j++) {
            kl_value *o = n->inputs[2 + j * *groups + g];
            if (o->dtype != x->dtype || !kl_shape_equal(&o->shape, &x->shape))
                return kl_error(d, n, "input %d ('%s') must match X%d's type and shape",
                                2 + j * *groups + g, o->name, g + 1);
        }
    }
    return true;
}

static bool infer_optimizer(kl_node *n, kl_diag *d) {
    int groups;
    if (!opt_groups(n, &groups, d)) return false;
    for (int i = 0; i < n->n_outputs; i++) {
        if (!n->outputs[i]) continue;
        kl_value *x = n->inputs[2 + i % groups];
        if (!kl_infer_set(n, i, x->dtype, &x->shape)) return false;
    }
    return true;
}

typedef struct opt {
    kl_lower *L;
    kl_arena *a;
    kl_node *n;
    int groups, rank;
} opt;

static kl_expr *c(const opt *o, double v) { return kl_e_const_f(o->a, KL_F64, v); }
static kl_expr *add(const opt *o, kl_expr *x, kl_expr *y) {
    return kl_e_binary(o->a, KL_ADD, x, y);
}
static kl_expr *sub(const opt *o, kl_expr *x, kl_expr *y) {
    return kl_e_binary(o->a, KL_SUB, x, y);
}
static kl_expr *mul(const opt *o, kl_expr *x, kl_expr *y) {
    return kl_e_binary(o->a, KL_MUL, x, y);
}
static kl_expr *dvd(const opt *o, kl_expr *x, kl_expr *y) {
    return kl_e_binary(o->a, KL_DIV, x, y);
}

/* Input i: a scalar, or the element at the kernel's position, as float64. */
static kl_expr *in(const opt *o, int i) {
    kl_buffer *b = kl_lower_buffer(o->L, o->n->inputs[i]);
    kl_expr *idx[KL_MAX_RANK];
    for (int k = 0; k < b->shape.rank; k++)
        idx[k] = i < 2 ? kl_e_idx(o->a, 0) : kl_e_iv(o->a, k);
    return kl_e_cast(o->a, KL_F64, kl_e_load(o->a, b, idx));
}

/* Group g's j-th tensor (0: X, 1: G, 2..: states). */
static kl_expr *tensor(const opt *o, int j, int g) { return in(o, 2 + j * o->groups + g); }

/* The new value of output `which` (0: X, 1..: states) of group g. */
static kl_expr *update(const opt *o, opt_kind k, int which, int g) {
    const kl_node *n = o->n;
    kl_expr *r = in(o, 0), *t = in(o, 1), *x = tensor(o, 0, g);
    kl_expr *greg = add(o, mul(o, c(o, kl_attr_float(n, "norm_coefficient", 0)), x),
                        tensor(o, 1, g));
    if (k == OPT_ADAGRAD) {
        kl_expr *h = add(o, tensor(o, 2, g), mul(o, greg, greg));
        if (which == 1) return h;
        kl_expr *rate = dvd(o, r, add(o, c(o, 1),
                                      mul(o, t, c(o, kl_attr_float(n, "decay_factor", 0)))));
        kl_expr *scale = add(o, kl_e_unary(o->a, KL_SQRT, h),
                             c(o, kl_attr_float(n, "epsilon", 1e-6)));
        return sub(o, x, dvd(o, mul(o, rate, greg), scale));
    }
    double alpha = kl_attr_float(n, "alpha", k == OPT_ADAM ? 0.9 : 0);
    double beta = kl_attr_float(n, "beta", k == OPT_ADAM ? 0.999 : 0);
    kl_expr *later = kl_e_binary(o->a, KL_GT, t, c(o, 0));
    if (k == OPT_MOMENTUM) {
        /* the gradient's coefficient is 1 at the first step */
        kl_expr *b = kl_e_select(o->a, later, c(o, beta), c(o, 1));
        kl_expr *v = add(o, mul(o, c(o, alpha), tensor(o, 2, g)), mul(o, b, greg));
        if (which == 1) return v;
        bool nesterov = !strcmp(kl_attr_string(n, "mode", "standard"), "nesterov");
        return sub(o, x, mul(o, r, nesterov ? add(o, greg, mul(o, c(o, alpha), v)) : v));
    }
    kl_expr *v = add(o, mul(o, c(o, alpha), tensor(o, 2, g)), mul(o, c(o, 1 - alpha), greg));
    if (which == 1) return v;
    kl_expr *h = add(o, mul(o, c(o, beta), tensor(o, 3, g)),
                     mul(o, c(o, 1 - beta), mul(o, greg, greg)));
    if (which == 2) return h;
    /* bias correction of both moments after the first step */
    kl_expr *corr = dvd(o, kl_e_unary(o->a, KL_SQRT,
                                      sub(o, c(o, 1), kl_e_binary(o->a, KL_POW, c(o, beta), t))),
                        sub(o, c(o, 1), kl_e_binary(o->a, KL_POW, c(o, alpha), t)));
    kl_expr *rate = kl_e_select(o->a, later, mul(o, r, corr), r);
    kl_expr *scale = add(o, kl_e_unary(o->a, KL_SQRT, h), c(o, kl_attr_float(n, "epsilon", 1e-6)));
    kl_expr *xn = sub(o, x, mul(o, rate, dvd(o, v, scale)));
    return mul(o, c(o, 1 - kl_attr_float(n, "norm_coefficient_post", 0)), xn);
}

static bool lower_optimizer(kl_lower *L, kl_node *n, kl_diag *d) {
    opt o = {.L = L, .a = L->arena, .n = n};
    if (!opt_groups(n, &o.groups, d)) return false;
    opt_kind k = kind_of(n);
    for (int i = 0; i < n->n_outputs; i++) {
        if (!n->outputs[i]) continue;
        kl_buffer *out = kl_lower_buffer(L, n->outputs[i]);
        kl_arith_map(L, n, NULL, out,
                     kl_e_cast(o.a, out->dtype, update(&o, k, i / o.groups, i % o.groups)));
    }
    return true;
}

#define TRAINING "ai.onnx.preview.training"
const kl_op kl_ops_training[] = {
    {TRAINING, "Adagrad", 1, 1, adagrad_attrs, infer_optimizer, lower_optimizer},
    {TRAINING, "Momentum", 1, 1, momentum_attrs, infer_optimizer, lower_optimizer},
    {TRAINING, "Adam", 1, 1, adam_attrs, infer_optimizer, lower_optimizer},
    {0},
};
