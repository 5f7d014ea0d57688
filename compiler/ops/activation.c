/*
 * activation.c — activation functions: one output element from one input element (plus, for
 * PRelu and Clip, a broadcast slope or bounds).
 *
 * Every operator is one row: its name, its first opset, its attributes, and a function that
 * builds the expression of one output element from the loaded input `x`. Constants are built
 * in x's type, so the same row serves float32, float64, float16 and, where ONNX allows them,
 * integers. Branches are selects (the kernel IR has no control flow), and the formulas that
 * overflow when written naively (Softplus, Mish) use the stable forms.
 */
#include <math.h>
#include <string.h>

#include "arith_util.h"

typedef kl_expr *(*act_fn)(kl_arena *a, const kl_node *n, kl_expr *x);

/* ---- small expression builders in x's type ---- */

static kl_expr *c(kl_arena *a, const kl_expr *like, double v) {
    return kl_arith_const(a, like->dtype, v);
}
static kl_expr *add(kl_arena *a, kl_expr *x, kl_expr *y) { return kl_e_binary(a, KL_ADD, x, y); }
static kl_expr *mul(kl_arena *a, kl_expr *x, kl_expr *y) { return kl_e_binary(a, KL_MUL, x, y); }
static kl_expr *mulc(kl_arena *a, kl_expr *x, double v) { return mul(a, x, c(a, x, v)); }
static kl_expr *less(kl_arena *a, kl_expr *x, double v) {
    return kl_e_binary(a, KL_LT, x, c(a, x, v));
}
static kl_expr *un(kl_arena *a, kl_unop op, kl_expr *x) { return kl_e_unary(a, op, x); }
/* min(max(x, lo), hi) */
static kl_expr *clamp(kl_arena *a, kl_expr *x, double lo, double hi) {
    return kl_e_binary(a, KL_MIN, kl_e_binary(a, KL_MAX, x, c(a, x, lo)), c(a, x, hi));
}
static double attr_f(const kl_node *n, const char *name, double def) {
    return kl_attr_float(n, name, def);
}
/* log(1 + exp(x)) without overflow: max(x, 0) + log(1 + exp(-|x|)) */
static kl_expr *softplus(kl_arena *a, kl_expr *x) {
    kl_expr *tail = un(a, KL_EXP, un(a, KL_NEG, un(a, KL_ABS, x)));
    return add(a, kl_e_binary(a, KL_MAX, x, c(a, x, 0)), un(a, KL_LOG, add(a, c(a, x, 1), tail)));
}

/* ---- the functions ---- */

static kl_expr *relu(kl_arena *a, const kl_node *n, kl_expr *x) {
    return kl_e_binary(a, KL_MAX, x, c(a, x, 0));
}
static kl_expr *leaky_relu(kl_arena *a, const kl_node *n, kl_expr *x) {
    return kl_e_select(a, less(a, x, 0), mulc(a, x, attr_f(n, "alpha", 0.01)), x);
}
static kl_expr *sigmoid(kl_arena *a, const kl_node *n, kl_expr *x) { return un(a, KL_SIGMOID, x); }
static kl_expr *tanh_(kl_arena *a, const kl_node *n, kl_expr *x) { return un(a, KL_TANH, x); }
static kl_expr *hard_sigmoid(kl_arena *a, const kl_node *n, kl_expr *x) {
    kl_expr *lin = add(a, mulc(a, x, attr_f(n, "alpha", 0.2)), c(a, x, attr_f(n, "beta", 0.5)));
    return clamp(a, lin, 0, 1);
}
static kl_expr *hard_swish(kl_arena *a, const kl_node *n, kl_expr *x) {
    return mul(a, x, clamp(a, add(a, mulc(a, x, 1.0 / 6.0), c(a, x, 0.5)), 0, 1));
}
static kl_expr *elu(kl_arena *a, const kl_node *n, kl_expr *x) {
    kl_expr *neg = mulc(a, kl_e_binary(a, KL_SUB, un(a, KL_EXP, x), c(a, x, 1)),
                        attr_f(n, "alpha", 1.0));
    return kl_e_select(a, less(a, x, 0), neg, x);
}
static kl_expr *selu(kl_arena *a, const kl_node *n, kl_expr *x) {
    double alpha = attr_f(n, "alpha", 1.67326319217681884765625);
    double gamma = attr_f(n, "gamma", 1.05070102214813232421875);
    kl_expr *neg = kl_e_binary(a, KL_SUB, mulc(a, un(a, KL_EXP, x), alpha), c(a, x, alpha));
    kl_expr *pos_or_neg = kl_e_select(a, kl_e_binary(a, KL_LE, x, c(a, x, 0)), neg, x);
    return mulc(a, pos_or_neg, gamma);
}
static kl_expr *softplus_fn(kl_arena *a, const kl_node *n, kl_expr *x) { return softplus(a, x); }
static kl_expr *softsign(kl_arena *a, const kl_node *n, kl_expr *x) {
    return kl_e_binary(a, KL_DIV, x, add(a, c(a, x, 1), un(a, KL_ABS, x)));
}
static kl_expr *thresholded_relu(kl_arena *a, const kl_node *n, kl_expr *x) {
    kl_expr *above = kl_e_binary(a, KL_GT, x, c(a, x, attr_f(n, "alpha", 1.0)));
    return kl_e_select(a, above, x, c(a, x, 0));
}
/* max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) */
static kl_expr *celu(kl_arena *a, const kl_node *n, kl_expr *x) {
    double alpha = attr_f(n, "alpha", 1.0);
    kl_expr *e = kl_e_binary(a, KL_SUB, un(a, KL_EXP, mulc(a, x, 1.0 / alpha)), c(a, x, 1));
    return add(a, kl_e_binary(a, KL_MAX, x, c(a, x, 0)),
               kl_e_binary(a, KL_MIN, mulc(a, e, alpha), c(a, x, 0)));
}
static kl_expr *gelu(kl_arena *a, const kl_node *n, kl_expr *x) {
    kl_expr *inner;
    if (!strcmp(kl_attr_string(n, "approximate", "none"), "tanh")) {
        /* tanh(sqrt(2/pi) * (x + 0.044715 x^3)) */
        kl_expr *cube = mul(a, mul(a, x, x), x);
        kl_expr *arg = mulc(a, add(a, x, mulc(a, cube, 0.044715)), sqrt(2.0 / M_PI));
        inner = un(a, KL_TANH, arg);
    } else {
        inner = un(a, KL_ERF, mulc(a, x, 1.0 / sqrt(2.0)));
    }
    return mul(a, mulc(a, x, 0.5), add(a, c(a, x, 1), inner));
}
static kl_expr *mish(kl_arena *a, const kl_node *n, kl_expr *x) {
    return mul(a, x, un(a, KL_TANH, softplus(a, x)));
}
static kl_expr *swish(kl_arena *a, const kl_node *n, kl_expr *x) {
    return mul(a, x, un(a, KL_SIGMOID, mulc(a, x, attr_f(n, "alpha", 1.0))));
}
static kl_expr *shrink(kl_arena *a, const kl_node *n, kl_expr *x) {
    double bias = attr_f(n, "bias", 0.0), lambd = attr_f(n, "lambd", 0.5);
    kl_expr *low = kl_e_binary(a, KL_LT, x, c(a, x, -lambd));
    kl_expr *high = kl_e_binary(a, KL_GT, x, c(a, x, lambd));
    kl_expr *inside = kl_e_select(a, high, kl_e_binary(a, KL_SUB, x, c(a, x, bias)), c(a, x, 0));
    return kl_e_select(a, low, add(a, x, c(a, x, bias)), inside);
}

/* ---- one-input rows ---- */

typedef struct act_row {
    const char *name;
    act_fn fn;
    bool float_only;
} act_row;

static const act_row rows[] = {
    {"Relu", relu, false},           {"LeakyRelu", leaky_relu, true},
    {"Sigmoid", sigmoid, true},      {"Tanh", tanh_, true},
    {"HardSigmoid", hard_sigmoid, true}, {"HardSwish", hard_swish, true},
    {"Elu", elu, true},              {"Selu", selu, true},
    {"Softplus", softplus_fn, true}, {"Softsign", softsign, true},
    {"ThresholdedRelu", thresholded_relu, true}, {"Celu", celu, true},
    {"Gelu", gelu, true},            {"Mish", mish, true},
    {"Shrink", shrink, false},       {"Swish", swish, true},
    {NULL, NULL, false},
};

static const act_row *row_of(const kl_node *n) {
    for (const act_row *r = rows; r->name; r++)
        if (!strcmp(r->name, n->op_type)) return r;
    return NULL;
}

static bool infer_act(kl_node *n, kl_diag *d) {
    const act_row *r = row_of(n);
    if (!(r->float_only ? kl_arith_need_float(n, 0, d) : kl_arith_need_input(n, 0, d)))
        return false;
    return kl_infer_same_as_input(n, d);
}

static kl_expr *fn_act(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    kl_dtype t = in[0]->dtype, u = kl_arith_compute_dtype(t);
    return kl_e_cast(L->arena, t, row_of(n)->fn(L->arena, n, kl_e_cast(L->arena, u, in[0])));
}

static bool lower_act(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_elementwise(L, n, fn_act);
}

/* ---- Clip: bounds as attributes (opset < 11) or optional scalar inputs ---- */

static bool infer_clip(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    for (int i = 1; i < n->n_inputs && i < 3; i++) {
        kl_value *b = n->inputs[i];
        if (!b) continue;
        if (!kl_arith_need_input(n, i, d) || !kl_arith_same_dtype(n, 0, i, d)) return false;
        if (kl_shape_numel(&b->shape) != 1)
            return kl_error(d, n, "input %d ('%s') must be a scalar", i, b->name);
    }
    return kl_infer_same_as_input(n, d);
}

static kl_expr *fn_clip(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    kl_arena *a = L->arena;
    kl_expr *x = in[0], *lo = NULL, *hi = NULL;
    if (n->opset < 11) {
        if (kl_attr_find(n, "min")) lo = c(a, x, kl_attr_float(n, "min", 0));
        if (kl_attr_find(n, "max")) hi = c(a, x, kl_attr_float(n, "max", 0));
    } else {
        lo = n_in > 1 ? in[1] : NULL;
        hi = n_in > 2 ? in[2] : NULL;
    }
    /* max first, then min: with min > max every element becomes max, as ONNX specifies */
    if (lo) x = kl_e_binary(a, KL_MAX, x, lo);
    if (hi) x = kl_e_binary(a, KL_MIN, x, hi);
    return x;
}

static bool lower_clip(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_elementwise(L, n, fn_clip);
}

/* ---- PRelu: slope broadcast to X ---- */

/* Before opset 7 a slope of X's channel count applies per channel (dimension 1). */
static bool legacy_channel_slope(const kl_node *n) {
    const kl_shape *x = &n->inputs[0]->shape, *s = &n->inputs[1]->shape;
    return n->opset < 7 && s->rank == 1 && x->rank >= 2 && s->dim[0] == x->dim[1] &&
           s->dim[0] != 1;
}

static bool infer_prelu(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d) || !kl_arith_need_input(n, 1, d)) return false;
    if (!kl_arith_same_dtype(n, 0, 1, d)) return false;
    kl_shape s;
    if (!legacy_channel_slope(n)) {
        if (!kl_arith_broadcast(n, 0, 2, &s, d)) return false;
        if (!kl_shape_equal(&s, &n->inputs[0]->shape)) {
            kl_arena *a = kl_arena_new();
            kl_error(d, n, "slope of shape %s does not broadcast to X of shape %s",
                     kl_shape_str(a, &n->inputs[1]->shape), kl_shape_str(a, &n->inputs[0]->shape));
            kl_arena_free(a);
            return false;
        }
    }
    return kl_infer_same_as_input(n, d);
}

static kl_expr *prelu_of(kl_arena *a, kl_expr *x, kl_expr *slope) {
    return kl_e_select(a, less(a, x, 0), mul(a, x, slope), x);
}

static kl_expr *fn_prelu(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    return prelu_of(L->arena, in[0], in[1]);
}

static bool lower_prelu(kl_lower *L, kl_node *n, kl_diag *d) {
    if (!legacy_channel_slope(n)) return kl_lower_elementwise(L, n, fn_prelu);
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *s = kl_lower_buffer(L, n->inputs[1]);
    kl_expr *channel = kl_e_iv(L->arena, 1);
    kl_expr *xv = kl_e_load(L->arena, x, kl_lower_ivs(L, x->shape.rank));
    kl_arith_map(L, n, NULL, kl_lower_buffer(L, n->outputs[0]),
                 prelu_of(L->arena, xv, kl_e_load(L->arena, s, &channel)));
    return true;
}

/* ---- SwiGLU: swish(A) * B, A and B of one shape (opset 28) ---- */

static bool infer_swiglu(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d) || !kl_arith_need_input(n, 1, d)) return false;
    if (!kl_arith_same_dtype(n, 0, 1, d)) return false;
    if (!kl_shape_equal(&n->inputs[0]->shape, &n->inputs[1]->shape))
        return kl_error(d, n, "A and B must have the same shape");
    return kl_infer_same_as_input(n, d);
}

static kl_expr *fn_swiglu(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    kl_arena *a = L->arena;
    kl_dtype t = in[0]->dtype, u = kl_arith_compute_dtype(t);
    kl_expr *gate = swish(a, n, kl_e_cast(a, u, in[0]));
    return kl_e_cast(a, t, mul(a, gate, kl_e_cast(a, u, in[1])));
}

static bool lower_swiglu(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_elementwise(L, n, fn_swiglu);
}

/* ---- the table ---- */

static const char *const legacy_attrs[] = {"consumed_inputs", NULL};
static const char *const no_attrs[] = {NULL};
static const char *const alpha_attrs[] = {"alpha", "consumed_inputs", NULL};
static const char *const alpha_beta_attrs[] = {"alpha", "beta", "consumed_inputs", NULL};
static const char *const selu_attrs[] = {"alpha", "gamma", "consumed_inputs", NULL};
static const char *const gelu_attrs[] = {"approximate", NULL};
static const char *const swish_attrs[] = {"alpha", NULL};
static const char *const shrink_attrs[] = {"bias", "lambd", NULL};
static const char *const clip_attrs[] = {"min", "max", "consumed_inputs", NULL};

#define ACT(name, since, attrs) {"", name, since, KL_OPSET_LATEST, attrs, infer_act, lower_act}

const kl_op kl_ops_activation[] = {
    ACT("Relu", 1, legacy_attrs),        ACT("LeakyRelu", 1, alpha_attrs),
    ACT("Sigmoid", 1, legacy_attrs),     ACT("Tanh", 1, legacy_attrs),
    ACT("HardSigmoid", 1, alpha_beta_attrs), ACT("HardSwish", 14, no_attrs),
    ACT("Elu", 1, alpha_attrs),          ACT("Selu", 1, selu_attrs),
    ACT("Softplus", 1, no_attrs),        ACT("Softsign", 1, no_attrs),
    ACT("ThresholdedRelu", 10, alpha_attrs), ACT("Celu", 12, alpha_attrs),
    ACT("Gelu", 20, gelu_attrs),         ACT("Mish", 18, no_attrs),
    ACT("Shrink", 9, shrink_attrs),      ACT("Swish", 24, swish_attrs),
    {"", "Clip", 1, KL_OPSET_LATEST, clip_attrs, infer_clip, lower_clip},
    {"", "PRelu", 1, KL_OPSET_LATEST, legacy_attrs, infer_prelu, lower_prelu},
    {"", "SwiGLU", 28, KL_OPSET_LATEST, swish_attrs, infer_swiglu, lower_swiglu},
    {0},
};
