/*
 * ml_linear.c — the linear models and feature scalers of the ai.onnx.ml domain (opset 1):
 * LinearRegressor, LinearClassifier, Scaler, Normalizer.
 *
 * They follow ONNX Runtime, the engine these models come from (scikit-learn through
 * skl2onnx), where its behaviour is more specific than the operator pages:
 *   - every input type (float, double, int32, int64) is converted to float first, and the
 *     outputs are float;
 *   - a 1-D X is one row;
 *   - the scores' post_transform (NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT) applies per
 *     row when there are two or more scores; with one score only PROBIT applies; SOFTMAX_ZERO
 *     leaves scores of magnitude up to 1e-7 out of the sum, and PROBIT uses the same closed
 *     approximation of erf^-1 (Winitzki's, a = 0.147);
 *   - LinearClassifier's label is the first class of the highest raw score; with one score,
 *     the second class when it is positive, else the first (classes 1 and 0 without labels),
 *     and with exactly two labels the scores become the two columns [1 - s, s].
 * String class labels need string tensors, which kiln does not hold: such a model is refused.
 */
#include <string.h>

#include "arith_util.h"

#define ML "ai.onnx.ml"

/* ---- shared checks ---- */

static bool need_features(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    if (!kl_dtype_is_float(x->dtype) && x->dtype != KL_I32 && x->dtype != KL_I64)
        return kl_error(d, n, "X must be float, double, int32 or int64, not %s",
                        kl_dtype_name(x->dtype));
    if (x->shape.rank < 1 || x->shape.rank > 2)
        return kl_error(d, n, "X must be [N, C] or [C], not rank %d", x->shape.rank);
    return true;
}

static int64_t rows_of(const kl_value *x) { return x->shape.rank == 1 ? 1 : x->shape.dim[0]; }
static int64_t features_of(const kl_value *x) { return x->shape.dim[x->shape.rank - 1]; }

/* A FLOATS attribute's values and count (0 and NULL when absent). */
static int floats_attr(const kl_node *n, const char *name, const double **out) {
    const kl_attr *at = kl_attr_find(n, name);
    *out = at && at->type == KL_ATTR_FLOATS ? at->floats : NULL;
    return *out ? at->n : 0;
}

typedef enum post_transform { PT_NONE, PT_LOGISTIC, PT_SOFTMAX, PT_SOFTMAX_ZERO, PT_PROBIT } post_transform;

static bool parse_post_transform(kl_node *n, post_transform *pt, kl_diag *d) {
    static const char *const names[] = {"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"};
    const char *s = kl_attr_string(n, "post_transform", "NONE");
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *pt = (post_transform)i;
            return true;
        }
    return kl_error(d, n, "post_transform '%s' is not NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO or "
                    "PROBIT", s);
}

/* ---- constant tables ---- */

static kl_buffer *const_floats(kl_lower *L, const kl_node *n, const char *what,
                               const double *v, int64_t count, kl_shape s) {
    float *data = kl_alloc_array(L->arena, (size_t)count, sizeof *data);
    for (int64_t i = 0; i < count; i++) data[i] = (float)v[i];
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_%s", n->name, what),
                                     KL_BUF_CONST, KL_F32, &s);
    b->data = b->host = data; /* the interpreter reads it when folding */
    return b;
}

static kl_buffer *const_ints(kl_lower *L, const kl_node *n, const char *what,
                             const int64_t *v, int64_t count) {
    int64_t *data = kl_alloc_array(L->arena, (size_t)count, sizeof *data);
    memcpy(data, v, (size_t)count * sizeof *data);
    kl_shape s = {.rank = 1, .dim = {count}};
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_%s", n->name, what),
                                     KL_BUF_CONST, KL_I64, &s);
    b->data = b->host = data;
    return b;
}

/* X[i, c] (X[c] when X is 1-D) as float. */
static kl_expr *feature(kl_arena *a, kl_buffer *x, kl_expr *row, kl_expr *col) {
    kl_expr *idx[2] = {row, col};
    kl_expr *v = x->shape.rank == 1 ? kl_e_load(a, x, &idx[1]) : kl_e_load(a, x, idx);
    return kl_e_cast(a, KL_F32, v);
}

/* ---- the scores: S[i, e] = sum over c of X[i, c] * coef[e, c] (+ intercept[e]) ---- */

static kl_kernel *scores_kernel(kl_lower *L, const kl_node *n, kl_buffer *x, kl_buffer *coef,
                                kl_buffer *intercepts, kl_buffer *s) {
    kl_arena *a = L->arena;
    kl_kernel *k = kl_kernel_new(L->prog, n, "scores");
    k->n_par = 2;
    k->n_loops = 3;
    k->extent[0] = s->shape.dim[0];
    k->extent[1] = s->shape.dim[1];
    k->extent[2] = coef->shape.dim[1];
    k->out = s;
    k->out_idx = kl_lower_ivs(L, 2);
    kl_expr *ci[2] = {kl_e_iv(a, 1), kl_e_iv(a, 2)};
    k->value = kl_e_binary(a, KL_MUL, feature(a, x, kl_e_iv(a, 0), kl_e_iv(a, 2)),
                           kl_e_load(a, coef, ci));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_F32;
    kl_expr *e = kl_e_iv(a, 1);
    k->init = intercepts ? kl_e_load(a, intercepts, &e) : kl_e_const_f(a, KL_F32, 0);
    kl_program_add_kernel(L->prog, k);
    return k;
}

/* sqrt(2) * erfinv(2v - 1), erfinv by the closed approximation ONNX Runtime uses. */
static kl_expr *probit(kl_arena *a, kl_expr *v) {
    kl_expr *x = kl_e_binary(a, KL_SUB, kl_e_binary(a, KL_MUL, v, kl_e_const_f(a, KL_F32, 2)),
                             kl_e_const_f(a, KL_F32, 1));
    kl_expr *one = kl_e_const_f(a, KL_F32, 1);
    kl_expr *ln = kl_e_unary(a, KL_LOG, kl_e_binary(a, KL_MUL, kl_e_binary(a, KL_SUB, one, x),
                                                    kl_e_binary(a, KL_ADD, one, x)));
    kl_expr *t = kl_e_binary(a, KL_ADD, kl_e_const_f(a, KL_F32, 2.0 / (3.14159f * 0.147f)),
                             kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F32, 0.5), ln));
    kl_expr *u = kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F32, 1.0 / 0.147f), ln);
    kl_expr *root = kl_e_unary(
        a, KL_SQRT, kl_e_binary(a, KL_SUB, kl_e_unary(a, KL_SQRT, kl_e_binary(
                                                                 a, KL_SUB, kl_e_binary(a, KL_MUL, t, t), u)),
                                t));
    kl_expr *neg = kl_e_binary(a, KL_LT, x, kl_e_const_f(a, KL_F32, 0));
    kl_expr *erfinv = kl_e_select(a, neg, kl_e_unary(a, KL_NEG, root), root);
    return kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F32, 1.41421356f), erfinv);
}

/* |v| > 1e-7: the scores SOFTMAX_ZERO counts. */
static kl_expr *nonzero_score(kl_arena *a, kl_expr *v) {
    return kl_e_binary(a, KL_GT, kl_e_unary(a, KL_ABS, v), kl_e_const_f(a, KL_F32, 1e-7));
}

/* Row statistic of S: max, or the sum of exp(S - max) (over the counted scores). */
static kl_buffer *row_stat(kl_lower *L, const kl_node *n, kl_buffer *s, kl_buffer *max,
                           bool zero_aware) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK] = {false, true};
    kl_shape rs = {.rank = 2, .dim = {s->shape.dim[0], 1}};
    kl_buffer *out = kl_lower_temp(L, max ? "sum" : "max", KL_F32, &rs);
    kl_kernel *k = kl_arith_reduce(L, n, max ? "sum" : "max", s, reduced, out,
                                   max ? KL_RED_SUM : KL_RED_MAX);
    if (max) {
        kl_expr *e = kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_SUB, k->value,
                                                       kl_lower_load_broadcast(L, max, 2)));
        k->value = zero_aware ? kl_e_select(a, nonzero_score(a, k->value), e,
                                            kl_e_const_f(a, KL_F32, 0))
                              : e;
    }
    kl_program_add_kernel(L->prog, k);
    return out;
}

/* out = post_transform(S), row by row (S has two or more columns). */
static void transform_rows(kl_lower *L, const kl_node *n, post_transform pt, kl_buffer *s,
                           kl_buffer *out) {
    kl_arena *a = L->arena;
    kl_expr *v = kl_e_load(a, s, kl_lower_ivs(L, 2));
    if (pt == PT_NONE || pt == PT_LOGISTIC || pt == PT_PROBIT) {
        kl_expr *y = pt == PT_NONE ? v : pt == PT_LOGISTIC ? kl_e_unary(a, KL_SIGMOID, v)
                                                            : probit(a, v);
        kl_arith_map(L, n, "transform", out, y);
        return;
    }
    bool zero_aware = pt == PT_SOFTMAX_ZERO;
    kl_buffer *max = row_stat(L, n, s, NULL, false);
    kl_buffer *sum = row_stat(L, n, s, max, zero_aware);
    kl_expr *m = kl_lower_load_broadcast(L, max, 2);
    kl_expr *e = kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_SUB, v, m));
    if (zero_aware) /* a zero score stays (about) zero: v * exp(-max) */
        e = kl_e_select(a, nonzero_score(a, v), e,
                        kl_e_binary(a, KL_MUL, v, kl_e_unary(a, KL_EXP, kl_e_unary(a, KL_NEG, m))));
    kl_arith_map(L, n, "transform", out,
                 kl_e_binary(a, KL_DIV, e, kl_lower_load_broadcast(L, sum, 2)));
}

/* ---- LinearRegressor ---- */

static const char *const regressor_attrs[] = {"coefficients", "intercepts", "targets",
                                              "post_transform", NULL};

static bool infer_regressor(kl_node *n, kl_diag *d) {
    post_transform pt;
    if (!need_features(n, d) || !parse_post_transform(n, &pt, d)) return false;
    int64_t targets = kl_attr_int(n, "targets", 1), c = features_of(n->inputs[0]);
    const double *coef, *icpt;
    int n_coef = floats_attr(n, "coefficients", &coef), n_icpt = floats_attr(n, "intercepts", &icpt);
    if (targets < 1 || targets > INT32_MAX)
        return kl_error(d, n, "targets is %lld; it must be at least 1", (long long)targets);
    if (n_coef != targets * c)
        return kl_error(d, n, "coefficients has %d values; %lld targets of %lld features need "
                        "%lld", n_coef, (long long)targets, (long long)c, (long long)(targets * c));
    if (icpt && n_icpt != targets)
        return kl_error(d, n, "intercepts has %d values, not one per target (%lld)", n_icpt,
                        (long long)targets);
    kl_shape s = {.rank = 2, .dim = {rows_of(n->inputs[0]), targets}};
    return kl_infer_set(n, 0, KL_F32, &s);
}

static bool lower_regressor(kl_lower *L, kl_node *n, kl_diag *d) {
    post_transform pt;
    if (!parse_post_transform(n, &pt, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    int64_t targets = y->shape.dim[1], c = features_of(n->inputs[0]);
    const double *coef, *icpt;
    floats_attr(n, "coefficients", &coef);
    floats_attr(n, "intercepts", &icpt);
    kl_buffer *cb = const_floats(L, n, "coefficients", coef, targets * c,
                                 (kl_shape){.rank = 2, .dim = {targets, c}});
    kl_buffer *ib = icpt ? const_floats(L, n, "intercepts", icpt, targets,
                                        (kl_shape){.rank = 1, .dim = {targets}})
                         : NULL;
    bool transformed = targets > 1 ? pt != PT_NONE : pt == PT_PROBIT;
    kl_buffer *s = transformed ? kl_lower_temp(L, "scores", KL_F32, &y->shape) : y;
    scores_kernel(L, n, x, cb, ib, s);
    if (transformed) transform_rows(L, n, targets > 1 ? pt : PT_PROBIT, s, y);
    return true;
}

/* ---- LinearClassifier ---- */

static const char *const classifier_attrs[] = {"coefficients", "intercepts", "classlabels_ints",
                                               "classlabels_strings", "multi_class",
                                               "post_transform", NULL};

/* The number of classes' scores: one per intercept (ONNX Runtime's count). */
static bool classifier_shape(kl_node *n, int64_t *e, int *n_labels, kl_diag *d) {
    int64_t c = features_of(n->inputs[0]);
    const double *coef, *icpt;
    const int64_t *labels;
    int n_coef = floats_attr(n, "coefficients", &coef), n_icpt = floats_attr(n, "intercepts", &icpt);
    if (kl_attr_find(n, "classlabels_strings"))
        return kl_error(d, n, "classlabels_strings: string labels need string tensors, which "
                        "kiln does not support yet (use classlabels_ints)");
    *n_labels = kl_attr_ints(n, "classlabels_ints", &labels);
    if (n_icpt < 1)
        return kl_error(d, n, "intercepts is missing or empty: it gives the number of classes");
    *e = n_icpt;
    if (n_coef != *e * c)
        return kl_error(d, n, "coefficients has %d values; %lld classes of %lld features need "
                        "%lld", n_coef, (long long)*e, (long long)c, (long long)(*e * c));
    if (*e > 1 && *n_labels != *e)
        return kl_error(d, n, "classlabels_ints has %d labels for %lld classes' scores",
                        *n_labels < 0 ? 0 : *n_labels, (long long)*e);
    return true;
}

static bool infer_classifier(kl_node *n, kl_diag *d) {
    post_transform pt;
    int64_t e;
    int n_labels;
    if (!need_features(n, d) || !parse_post_transform(n, &pt, d) ||
        !classifier_shape(n, &e, &n_labels, d))
        return false;
    bool two_columns = e == 1 && n_labels == 2;
    if (two_columns && pt == PT_PROBIT)
        return kl_error(d, n, "post_transform PROBIT with one score and two class labels is not "
                        "supported (ONNX Runtime applies it to half the scores)");
    int64_t rows = rows_of(n->inputs[0]);
    kl_shape ls = {.rank = 1, .dim = {rows}}, ss = {.rank = 2, .dim = {rows, two_columns ? 2 : e}};
    return kl_infer_set(n, 0, KL_I64, &ls) && kl_infer_set(n, 1, KL_F32, &ss);
}

/* Y[i] = labels[first e of the highest S[i, e]]. */
static void argmax_labels(kl_lower *L, const kl_node *n, kl_buffer *s, kl_buffer *labels,
                          kl_buffer *y) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK] = {false, true};
    kl_buffer *max = row_stat(L, n, s, NULL, false);
    kl_shape is = {.rank = 1, .dim = {s->shape.dim[0]}};
    kl_buffer *at = kl_lower_temp(L, "argmax", KL_I64, &is);
    kl_kernel *k = kl_arith_reduce(L, n, "argmax", s, reduced, at, KL_RED_MIN);
    kl_expr *hit = kl_e_binary(a, KL_EQ, k->value, kl_lower_load_broadcast(L, max, 2));
    k->value = kl_e_select(a, hit, kl_e_iv(a, 2), kl_e_idx(a, s->shape.dim[1] - 1));
    k->acc_dtype = KL_I64;
    kl_program_add_kernel(L->prog, k);
    kl_expr *i = kl_e_iv(a, 0), *cls = kl_e_load(a, at, &i);
    kl_arith_map(L, n, "label", y, kl_e_load(a, labels, &cls));
}

static bool lower_classifier(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    post_transform pt;
    int64_t e;
    int n_labels;
    if (!parse_post_transform(n, &pt, d) || !classifier_shape(n, &e, &n_labels, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *y = kl_lower_buffer(L, n->outputs[0]), *z = kl_lower_buffer(L, n->outputs[1]);
    int64_t rows = y->shape.dim[0], c = features_of(n->inputs[0]);
    const double *coef, *icpt;
    const int64_t *label_values;
    floats_attr(n, "coefficients", &coef);
    floats_attr(n, "intercepts", &icpt);
    kl_attr_ints(n, "classlabels_ints", &label_values);
    kl_buffer *cb = const_floats(L, n, "coefficients", coef, e * c,
                                 (kl_shape){.rank = 2, .dim = {e, c}});
    kl_buffer *ib = const_floats(L, n, "intercepts", icpt, e, (kl_shape){.rank = 1, .dim = {e}});
    kl_shape ss = {.rank = 2, .dim = {rows, e}};
    kl_buffer *s = kl_lower_temp(L, "scores", KL_F32, &ss);
    scores_kernel(L, n, x, cb, ib, s);
    if (e > 1) {
        argmax_labels(L, n, s, const_ints(L, n, "labels", label_values, e), y);
        transform_rows(L, n, pt, s, z);
        return true;
    }
    /* one score: the second class when it is positive */
    kl_expr *zero[2] = {kl_e_iv(a, 0), kl_e_idx(a, 0)};
    kl_expr *score = kl_e_load(a, s, zero);
    kl_expr *positive = kl_e_binary(a, KL_GT, score, kl_e_const_f(a, KL_F32, 0));
    int64_t yes = n_labels == 2 ? label_values[1] : 1, no = n_labels == 2 ? label_values[0] : 0;
    kl_arith_map(L, n, "label", y, kl_e_select(a, positive, kl_e_const_i(a, KL_I64, yes),
                                               kl_e_const_i(a, KL_I64, no)));
    if (n_labels == 2) { /* [1 - s, s] */
        kl_expr *first = kl_e_binary(a, KL_EQ, kl_e_iv(a, 1), kl_e_idx(a, 0));
        kl_expr *sc = kl_e_load(a, s, zero);
        kl_arith_map(L, n, "two_columns", z,
                     kl_e_select(a, first, kl_e_binary(a, KL_SUB, kl_e_const_f(a, KL_F32, 1), sc),
                                 sc));
    } else {
        kl_arith_map(L, n, "score", z,
                     pt == PT_PROBIT ? probit(a, kl_e_load(a, s, kl_lower_ivs(L, 2)))
                                     : kl_e_load(a, s, kl_lower_ivs(L, 2)));
    }
    return true;
}

/* ---- Scaler: Y = (X - offset) * scale, per feature (the last axis) or one for all ---- */

static const char *const scaler_attrs[] = {"offset", "scale", NULL};

static bool scaler_table(kl_node *n, const char *name, const double **v, int *count, kl_diag *d) {
    *count = floats_attr(n, name, v);
    int64_t c = n->inputs[0]->shape.rank ? features_of(n->inputs[0]) : 1;
    if (*v && *count != 1 && *count != c)
        return kl_error(d, n, "%s has %d values: one, or one per feature (%lld)", name, *count,
                        (long long)c);
    return true;
}

static bool infer_scaler(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_dtype t = n->inputs[0]->dtype;
    if (!kl_dtype_is_float(t) && t != KL_I32 && t != KL_I64)
        return kl_error(d, n, "X must be float, double, int32 or int64, not %s", kl_dtype_name(t));
    const double *v;
    int count;
    if (!scaler_table(n, "offset", &v, &count, d) || !scaler_table(n, "scale", &v, &count, d))
        return false;
    return kl_infer_set(n, 0, KL_F32, &n->inputs[0]->shape);
}

/* offset or scale at the feature of the output element (absent: `none`). */
static kl_expr *per_feature(kl_lower *L, const kl_node *n, const char *name, double none) {
    kl_arena *a = L->arena;
    const double *v;
    int count = floats_attr(n, name, &v);
    if (!v) return kl_e_const_f(a, KL_F32, none);
    if (count == 1) return kl_e_const_f(a, KL_F32, (float)v[0]);
    kl_buffer *b = const_floats(L, n, name, v, count, (kl_shape){.rank = 1, .dim = {count}});
    kl_expr *f = kl_e_iv(a, n->inputs[0]->shape.rank - 1);
    return kl_e_load(a, b, &f);
}

static bool lower_scaler(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    kl_expr *v = kl_e_cast(a, KL_F32, kl_e_load(a, x, kl_lower_ivs(L, x->shape.rank)));
    kl_expr *shifted = kl_e_binary(a, KL_SUB, v, per_feature(L, n, "offset", 0));
    kl_arith_map(L, n, NULL, y, kl_e_binary(a, KL_MUL, shifted, per_feature(L, n, "scale", 1)));
    return true;
}

/* ---- Normalizer: each row divided by its max, L1 or L2 norm ---- */

static const char *const normalizer_attrs[] = {"norm", NULL};

typedef enum norm_kind { NORM_MAX, NORM_L1, NORM_L2 } norm_kind;

static bool parse_norm(kl_node *n, norm_kind *k, kl_diag *d) {
    const char *s = kl_attr_string(n, "norm", "MAX");
    if (!strcmp(s, "MAX")) *k = NORM_MAX;
    else if (!strcmp(s, "L1")) *k = NORM_L1;
    else if (!strcmp(s, "L2")) *k = NORM_L2;
    else return kl_error(d, n, "norm '%s' is not MAX, L1 or L2", s);
    return true;
}

static bool infer_normalizer(kl_node *n, kl_diag *d) {
    norm_kind k;
    if (!need_features(n, d) || !parse_norm(n, &k, d)) return false;
    return kl_infer_set(n, 0, KL_F32, &n->inputs[0]->shape);
}

static bool lower_normalizer(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    norm_kind kind;
    if (!parse_norm(n, &kind, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    int rank = x->shape.rank;
    bool reduced[KL_MAX_RANK] = {0};
    reduced[rank - 1] = true;
    kl_shape ns = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *norm = kl_lower_temp(L, "norm", KL_F32, &ns);
    kl_kernel *k = kl_arith_reduce(L, n, "norm", x, reduced, norm,
                                   kind == NORM_MAX ? KL_RED_MAX : KL_RED_SUM);
    kl_expr *v = kl_e_cast(a, KL_F32, k->value);
    k->value = kind == NORM_MAX ? v : kind == NORM_L1 ? kl_e_unary(a, KL_ABS, v)
                                                       : kl_e_binary(a, KL_MUL, v, v);
    k->acc_dtype = KL_F32;
    if (kind == NORM_L2) k->result = kl_e_unary(a, KL_SQRT, kl_e_acc(a, KL_F32));
    kl_program_add_kernel(L->prog, k);
    kl_expr *xv = kl_e_cast(a, KL_F32, kl_e_load(a, x, kl_lower_ivs(L, rank)));
    kl_arith_map(L, n, NULL, y, kl_e_binary(a, KL_DIV, xv, kl_lower_load_broadcast(L, norm, rank)));
    return true;
}

const kl_op kl_ops_ml_linear[] = {
    {ML, "LinearRegressor", 1, 1, regressor_attrs, infer_regressor, lower_regressor},
    {ML, "LinearClassifier", 1, 1, classifier_attrs, infer_classifier, lower_classifier},
    {ML, "Scaler", 1, 1, scaler_attrs, infer_scaler, lower_scaler},
    {ML, "Normalizer", 1, 1, normalizer_attrs, infer_normalizer, lower_normalizer},
    {0},
};
