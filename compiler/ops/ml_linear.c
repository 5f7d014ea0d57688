/*
 * ml_linear.c — the linear models of the ai.onnx.ml domain (opset 1): LinearRegressor and
 * LinearClassifier.
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

#include "ml_util.h"

#define ML KL_ML_DOMAIN

/* ---- LinearRegressor ---- */

static const char *const regressor_attrs[] = {"coefficients", "intercepts", "targets",
                                              "post_transform", NULL};

static bool infer_regressor(kl_node *n, kl_diag *d) {
    kl_ml_transform pt;
    if (!kl_ml_need_features(n, d) || !kl_ml_parse_transform(n, &pt, d)) return false;
    int64_t targets = kl_attr_int(n, "targets", 1), c = kl_ml_features(n->inputs[0]);
    const double *coef, *icpt;
    int n_coef = kl_ml_floats_attr(n, "coefficients", &coef), n_icpt = kl_ml_floats_attr(n, "intercepts", &icpt);
    if (targets < 1 || targets > INT32_MAX)
        return kl_error(d, n, "targets is %lld; it must be at least 1", (long long)targets);
    if (n_coef != targets * c)
        return kl_error(d, n, "coefficients has %d values; %lld targets of %lld features need "
                        "%lld", n_coef, (long long)targets, (long long)c, (long long)(targets * c));
    if (icpt && n_icpt != targets)
        return kl_error(d, n, "intercepts has %d values, not one per target (%lld)", n_icpt,
                        (long long)targets);
    kl_shape s = {.rank = 2, .dim = {kl_ml_rows(n->inputs[0]), targets}};
    return kl_infer_set(n, 0, KL_F32, &s);
}

static bool lower_regressor(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_ml_transform pt;
    if (!kl_ml_parse_transform(n, &pt, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    int64_t targets = y->shape.dim[1], c = kl_ml_features(n->inputs[0]);
    const double *coef, *icpt;
    kl_ml_floats_attr(n, "coefficients", &coef);
    kl_ml_floats_attr(n, "intercepts", &icpt);
    kl_buffer *cb = kl_ml_const_floats(L, n, "coefficients", coef, targets * c,
                                 (kl_shape){.rank = 2, .dim = {targets, c}});
    kl_buffer *ib = icpt ? kl_ml_const_floats(L, n, "intercepts", icpt, targets,
                                        (kl_shape){.rank = 1, .dim = {targets}})
                         : NULL;
    bool transformed = targets > 1 ? pt != KL_ML_PT_NONE : pt == KL_ML_PT_PROBIT;
    kl_buffer *s = transformed ? kl_lower_temp(L, "scores", KL_F32, &y->shape) : y;
    kl_ml_scores(L, n, x, cb, ib, s);
    if (transformed) kl_ml_transform_rows(L, n, targets > 1 ? pt : KL_ML_PT_PROBIT, s, y);
    return true;
}

/* ---- LinearClassifier ---- */

static const char *const classifier_attrs[] = {"coefficients", "intercepts", "classlabels_ints",
                                               "classlabels_strings", "multi_class",
                                               "post_transform", NULL};

/* The number of classes' scores: one per intercept (ONNX Runtime's count). */
static bool classifier_shape(kl_node *n, int64_t *e, int *n_labels, kl_diag *d) {
    int64_t c = kl_ml_features(n->inputs[0]);
    const double *coef, *icpt;
    const int64_t *labels;
    int n_coef = kl_ml_floats_attr(n, "coefficients", &coef), n_icpt = kl_ml_floats_attr(n, "intercepts", &icpt);
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
    kl_ml_transform pt;
    int64_t e;
    int n_labels;
    if (!kl_ml_need_features(n, d) || !kl_ml_parse_transform(n, &pt, d) ||
        !classifier_shape(n, &e, &n_labels, d))
        return false;
    bool two_columns = e == 1 && n_labels == 2;
    if (two_columns && pt == KL_ML_PT_PROBIT)
        return kl_error(d, n, "post_transform PROBIT with one score and two class labels is not "
                        "supported (ONNX Runtime applies it to half the scores)");
    int64_t rows = kl_ml_rows(n->inputs[0]);
    kl_shape ls = {.rank = 1, .dim = {rows}}, ss = {.rank = 2, .dim = {rows, two_columns ? 2 : e}};
    return kl_infer_set(n, 0, KL_I64, &ls) && kl_infer_set(n, 1, KL_F32, &ss);
}

static bool lower_classifier(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_ml_transform pt;
    int64_t e;
    int n_labels;
    if (!kl_ml_parse_transform(n, &pt, d) || !classifier_shape(n, &e, &n_labels, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *y = kl_lower_buffer(L, n->outputs[0]), *z = kl_lower_buffer(L, n->outputs[1]);
    int64_t rows = y->shape.dim[0], c = kl_ml_features(n->inputs[0]);
    const double *coef, *icpt;
    const int64_t *label_values;
    kl_ml_floats_attr(n, "coefficients", &coef);
    kl_ml_floats_attr(n, "intercepts", &icpt);
    kl_attr_ints(n, "classlabels_ints", &label_values);
    kl_buffer *cb = kl_ml_const_floats(L, n, "coefficients", coef, e * c,
                                 (kl_shape){.rank = 2, .dim = {e, c}});
    kl_buffer *ib = kl_ml_const_floats(L, n, "intercepts", icpt, e, (kl_shape){.rank = 1, .dim = {e}});
    kl_shape ss = {.rank = 2, .dim = {rows, e}};
    kl_buffer *s = kl_lower_temp(L, "scores", KL_F32, &ss);
    kl_ml_scores(L, n, x, cb, ib, s);
    if (e > 1) {
        kl_ml_argmax_labels(L, n, s, kl_ml_const_ints(L, n, "labels", label_values, e), y);
        kl_ml_transform_rows(L, n, pt, s, z);
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
                     pt == KL_ML_PT_PROBIT ? kl_ml_probit(a, kl_e_load(a, s, kl_lower_ivs(L, 2)))
                                     : kl_e_load(a, s, kl_lower_ivs(L, 2)));
    }
    return true;
}

const kl_op kl_ops_ml_linear[] = {
    {ML, "LinearRegressor", 1, KL_ML_OPSET_LATEST, regressor_attrs, infer_regressor, lower_regressor},
    {ML, "LinearClassifier", 1, KL_ML_OPSET_LATEST, classifier_attrs, infer_classifier, lower_classifier},
    {0},
};
