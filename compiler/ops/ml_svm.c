/*
 * ml_svm.c — support vector machines of the ai.onnx.ml domain (opset 1): SVMRegressor and
 * SVMClassifier, as ONNX Runtime computes them (the models come from scikit-learn through
 * skl2onnx, and ORT is what they are checked against).
 *
 * With support vectors (n_supports / vectors_per_class: libsvm's SVC/SVR) each row is first
 * compared with every support vector through the kernel, K[i, v]:
 *   LINEAR x·sv, POLY (gamma x·sv + coef0)^degree, RBF exp(-gamma |x - sv|^2),
 *   SIGMOID tanh(gamma x·sv + coef0)      (kernel_params = [gamma, coef0, degree]).
 * SVMRegressor:  y = sum over v of coefficients[v] K[i, v] + rho[0]; without support vectors
 *   (liblinear) y = x·coefficients + rho[0]; one_class makes y +1 or -1 by its sign.
 * SVMClassifier with support vectors: one score per pair of classes (i < j, in that order):
 *   the coefficients of i's vectors in row j-1 and of j's vectors in row i, dotted with K, plus
 *   rho of the pair; the pair's vote goes to i when its score is positive, else to j, and the
 *   label is the class of the most votes (the first on a tie). Z holds the pair scores (with
 *   two classes: [-s, s] for post_transform NONE, [1 - sigmoid(s), sigmoid(s)] for LOGISTIC,
 *   else [1 - s, s]); without support vectors Z
 *   is x·coefficientsᵀ + rho[0] per class and the label the highest score's class (two
 *   classes: the second when the highest score is above 0 (0.5 with only positive
 *   coefficients)). post_transform then applies as for LinearClassifier.
 * Not supported, each refused with its reason: probability estimates (prob_a / prob_b: libsvm's
 * iterative pairwise coupling) and string class labels.
 */
#include <string.h>

#include "ml_util.h"

#define ML KL_ML_DOMAIN

typedef enum svm_kernel { SVM_LINEAR, SVM_POLY, SVM_RBF, SVM_SIGMOID } svm_kernel;

typedef struct svm {
    svm_kernel kernel;
    double gamma, coef0, degree;
    int64_t vectors, features; /* vectors 0: liblinear (the coefficients are the weights) */
    const double *support, *coef, *rho;
    int n_coef, n_rho;
} svm;

static bool parse_kernel(kl_node *n, svm *m, kl_diag *d) {
    static const char *const names[] = {"LINEAR", "POLY", "RBF", "SIGMOID"};
    const char *s = kl_attr_string(n, "kernel_type", "LINEAR");
    int i = 0;
    while (i < 4 && strcmp(s, names[i])) i++;
    if (i == 4) return kl_error(d, n, "kernel_type '%s' is not LINEAR, POLY, RBF or SIGMOID", s);
    m->kernel = (svm_kernel)i;
    const double *p;
    int np = kl_ml_floats_attr(n, "kernel_params", &p);
    if (np != 0 && np != 3)
        return kl_error(d, n, "kernel_params has %d values, not 3 (gamma, coef0, degree)", np);
    m->gamma = np ? p[0] : 0;
    m->coef0 = np ? p[1] : 0;
    m->degree = np ? p[2] : 0;
    return true;
}

/* The attributes every SVM has, checked against X's feature count. */
static bool parse_svm(kl_node *n, int64_t vectors, svm *m, kl_diag *d) {
    memset(m, 0, sizeof *m);
    if (!parse_kernel(n, m, d)) return false;
    m->features = kl_ml_features(n->inputs[0]);
    m->vectors = vectors;
    m->n_coef = kl_ml_floats_attr(n, "coefficients", &m->coef);
    m->n_rho = kl_ml_floats_attr(n, "rho", &m->rho);
    if (m->n_coef < 1) return kl_error(d, n, "coefficients is missing or empty");
    if (m->n_rho < 1) return kl_error(d, n, "rho is missing or empty");
    if (kl_attr_find(n, "prob_a") || kl_attr_find(n, "prob_b")) {
        const double *pa;
        if (kl_ml_floats_attr(n, "prob_a", &pa) > 0)
            return kl_error(d, n, "prob_a / prob_b: probability estimates (libsvm's pairwise "
                            "coupling) are not supported yet");
    }
    if (vectors < 0 || vectors > INT32_MAX)
        return kl_error(d, n, "the number of support vectors (%lld) is out of range",
                        (long long)vectors);
    if (vectors == 0) {
        m->kernel = SVM_LINEAR;
        return true;
    }
    int n_sv = kl_ml_floats_attr(n, "support_vectors", &m->support);
    if (n_sv != vectors * m->features)
        return kl_error(d, n, "support_vectors has %d values; %lld vectors of %lld features "
                        "need %lld", n_sv, (long long)vectors, (long long)m->features,
                        (long long)(vectors * m->features));
    return true;
}

/* K[i, v]: row i of X against support vector v, through the kernel. */
static kl_buffer *kernel_matrix(kl_lower *L, const kl_node *n, const svm *m, kl_buffer *x) {
    kl_arena *a = L->arena;
    int64_t rows = kl_ml_rows(n->inputs[0]);
    kl_buffer *sv = kl_ml_const_floats(L, n, "support_vectors", m->support,
                                       m->vectors * m->features,
                                       (kl_shape){.rank = 2, .dim = {m->vectors, m->features}});
    kl_shape ks = {.rank = 2, .dim = {rows, m->vectors}};
    kl_buffer *kmat = kl_lower_temp(L, "kernel", KL_F32, &ks);
    kl_kernel *k = kl_ml_sum_kernel(L, n, "kernel", kmat, m->features);
    kl_expr *xv = kl_ml_feature(a, x, kl_e_iv(a, 0), kl_e_iv(a, 2));
    kl_expr *si[2] = {kl_e_iv(a, 1), kl_e_iv(a, 2)};
    kl_expr *s = kl_e_load(a, sv, si);
    kl_expr *acc = kl_e_acc(a, KL_F32), *f = NULL;
    if (m->kernel == SVM_RBF) {
        kl_expr *diff = kl_e_binary(a, KL_SUB, xv, s);
        k->value = kl_e_binary(a, KL_MUL, diff, diff);
        f = kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F32, -m->gamma), acc));
    } else {
        k->value = kl_e_binary(a, KL_MUL, xv, s);
        kl_expr *lin = kl_e_binary(a, KL_ADD,
                                   kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F32, m->gamma), acc),
                                   kl_e_const_f(a, KL_F32, m->coef0));
        if (m->kernel == SVM_POLY)
            f = kl_e_binary(a, KL_POW, lin, kl_e_const_f(a, KL_F32, m->degree));
        else if (m->kernel == SVM_SIGMOID)
            f = kl_e_unary(a, KL_TANH, lin);
    }
    k->result = f;
    kl_program_add_kernel(L->prog, k);
    return kmat;
}

/* ---- SVMRegressor ---- */

static const char *const regressor_attrs[] = {"coefficients", "kernel_params", "kernel_type",
                                              "n_supports", "one_class", "post_transform", "rho",
                                              "support_vectors", NULL};

static bool infer_regressor(kl_node *n, kl_diag *d) {
    svm m;
    if (!kl_ml_need_features(n, d) || !parse_svm(n, kl_attr_int(n, "n_supports", 0), &m, d))
        return false;
    int64_t want = m.vectors ? m.vectors : m.features;
    if (m.n_coef != want)
        return kl_error(d, n, "coefficients has %d values, not one per %s (%lld)", m.n_coef,
                        m.vectors ? "support vector" : "feature", (long long)want);
    kl_shape s = {.rank = 2, .dim = {kl_ml_rows(n->inputs[0]), 1}};
    return kl_infer_set(n, 0, KL_F32, &s);
}

static bool lower_regressor(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    svm m;
    if (!parse_svm(n, kl_attr_int(n, "n_supports", 0), &m, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    bool one_class = kl_attr_int(n, "one_class", 0) != 0;
    kl_buffer *s = one_class ? kl_lower_temp(L, "score", KL_F32, &y->shape) : y;
    double rho = m.rho[0];
    kl_buffer *bias = kl_ml_const_floats(L, n, "rho", &rho, 1, (kl_shape){.rank = 1, .dim = {1}});
    if (m.vectors) {
        kl_buffer *kmat = kernel_matrix(L, n, &m, x);
        kl_buffer *w = kl_ml_const_floats(L, n, "coefficients", m.coef, m.vectors,
                                          (kl_shape){.rank = 2, .dim = {1, m.vectors}});
        kl_ml_scores(L, n, kmat, w, bias, s);
    } else {
        kl_buffer *w = kl_ml_const_floats(L, n, "coefficients", m.coef, m.features,
                                          (kl_shape){.rank = 2, .dim = {1, m.features}});
        kl_ml_scores(L, n, x, w, bias, s);
    }
    if (one_class) {
        kl_expr *v = kl_e_load(a, s, kl_lower_ivs(L, 2));
        kl_arith_map(L, n, "one_class", y,
                     kl_e_select(a, kl_e_binary(a, KL_GT, v, kl_e_const_f(a, KL_F32, 0)),
                                 kl_e_const_f(a, KL_F32, 1), kl_e_const_f(a, KL_F32, -1)));
    }
    return true;
}

/* ---- SVMClassifier ---- */

static const char *const classifier_attrs[] = {
    "classlabels_ints", "classlabels_strings", "coefficients", "kernel_params", "kernel_type",
    "post_transform", "prob_a", "prob_b", "rho", "support_vectors", "vectors_per_class", NULL};

typedef struct svc {
    svm m;
    kl_ml_transform pt;
    int64_t classes, pairs;
    const int64_t *labels, *per_class;
} svc;

static bool parse_svc(kl_node *n, svc *c, kl_diag *d) {
    if (kl_attr_find(n, "classlabels_strings"))
        return kl_error(d, n, "classlabels_strings: string labels need string tensors, which "
                        "kiln does not support yet (use classlabels_ints)");
    int n_labels = kl_attr_ints(n, "classlabels_ints", &c->labels);
    if (n_labels < 2) return kl_error(d, n, "classlabels_ints needs two or more classes");
    c->classes = n_labels;
    c->pairs = c->classes * (c->classes - 1) / 2;
    int n_per = kl_attr_ints(n, "vectors_per_class", &c->per_class);
    int64_t vectors = 0;
    if (n_per > 0) {
        if (n_per != n_labels)
            return kl_error(d, n, "vectors_per_class has %d counts for %d classes", n_per,
                            n_labels);
        for (int i = 0; i < n_per; i++) {
            if (c->per_class[i] < 0 || c->per_class[i] > INT32_MAX)
                return kl_error(d, n, "vectors_per_class[%d] = %lld is out of range", i,
                                (long long)c->per_class[i]);
            vectors += c->per_class[i];
        }
    }
    if (!kl_ml_parse_transform(n, &c->pt, d) || !parse_svm(n, vectors, &c->m, d)) return false;
    int64_t want = vectors ? (c->classes - 1) * vectors : c->classes * c->m.features;
    if (c->m.n_coef != want)
        return kl_error(d, n, "coefficients has %d values, not %lld (%s)", c->m.n_coef,
                        (long long)want, vectors ? "classes - 1 rows of one per support vector"
                                                 : "one row of features per class");
    if (vectors && c->m.n_rho != c->pairs)
        return kl_error(d, n, "rho has %d values, not one per pair of classes (%lld)",
                        c->m.n_rho, (long long)c->pairs);
    return true;
}

static bool infer_classifier(kl_node *n, kl_diag *d) {
    svc c;
    if (!kl_ml_need_features(n, d) || !parse_svc(n, &c, d)) return false;
    if (c.m.vectors && c.classes == 2 && c.pt == KL_ML_PT_PROBIT)
        return kl_error(d, n, "post_transform PROBIT with support vectors and two classes is not "
                        "supported (ONNX Runtime applies it to one of the two score columns)");
    int64_t rows = kl_ml_rows(n->inputs[0]);
    int64_t scores = c.m.vectors ? (c.classes > 2 ? c.pairs : 2) : c.classes;
    kl_shape ls = {.rank = 1, .dim = {rows}}, ss = {.rank = 2, .dim = {rows, scores}};
    return kl_infer_set(n, 0, KL_I64, &ls) && kl_infer_set(n, 1, KL_F32, &ss);
}

/* The weights of pair p = (i, j) over all support vectors: row j-1's coefficients on class i's
 * vectors, row i's on class j's, zero elsewhere (so the pair score is one dot product). */
static double *pair_weights(kl_arena *a, const svc *c, int64_t *pair_i, int64_t *pair_j) {
    int64_t v = c->m.vectors, p = 0;
    double *w = kl_alloc_array(a, (size_t)(c->pairs * v), sizeof *w);
    int64_t *start = kl_alloc_array(a, (size_t)c->classes, sizeof *start);
    for (int64_t k = 0, at = 0; k < c->classes; at += c->per_class[k++]) start[k] = at;
    for (int64_t i = 0; i < c->classes - 1; i++)
        for (int64_t j = i + 1; j < c->classes; j++, p++) {
            double *row = w + p * v;
            for (int64_t m = 0; m < c->per_class[i]; m++)
                row[start[i] + m] = c->m.coef[(j - 1) * v + start[i] + m];
            for (int64_t m = 0; m < c->per_class[j]; m++)
                row[start[j] + m] = c->m.coef[i * v + start[j] + m];
            pair_i[p] = i;
            pair_j[p] = j;
        }
    return w;
}

/* votes[r, k] = the pairs whose vote goes to class k; Y = labels[first k of the most votes]. */
static void vote(kl_lower *L, const kl_node *n, const svc *c, kl_buffer *pair_scores,
                 const int64_t *pair_i, const int64_t *pair_j, kl_buffer *y) {
    kl_arena *a = L->arena;
    int64_t rows = pair_scores->shape.dim[0];
    kl_buffer *bi = kl_ml_const_ints(L, n, "pair_i", pair_i, c->pairs);
    kl_buffer *bj = kl_ml_const_ints(L, n, "pair_j", pair_j, c->pairs);
    kl_shape vs = {.rank = 2, .dim = {rows, c->classes}};
    kl_buffer *votes = kl_lower_temp(L, "votes", KL_F32, &vs);
    kl_kernel *k = kl_ml_sum_kernel(L, n, "votes", votes, c->pairs);
    kl_expr *si[2] = {kl_e_iv(a, 0), kl_e_iv(a, 2)}, *p = kl_e_iv(a, 2);
    kl_expr *to_i = kl_e_binary(a, KL_GT, kl_e_load(a, pair_scores, si), kl_e_const_f(a, KL_F32, 0));
    kl_expr *winner = kl_e_select(a, to_i, kl_e_load(a, bi, &p), kl_e_load(a, bj, &p));
    k->value = kl_e_select(a, kl_e_binary(a, KL_EQ, winner, kl_e_iv(a, 1)),
                           kl_e_const_f(a, KL_F32, 1), kl_e_const_f(a, KL_F32, 0));
    kl_program_add_kernel(L->prog, k);
    kl_ml_argmax_labels(L, n, votes, kl_ml_const_ints(L, n, "labels", c->labels, c->classes), y);
}

static void lower_svc(kl_lower *L, const kl_node *n, const svc *c, kl_buffer *x, kl_buffer *y,
                      kl_buffer *z) {
    kl_arena *a = L->arena;
    int64_t rows = y->shape.dim[0];
    kl_buffer *kmat = kernel_matrix(L, n, &c->m, x);
    int64_t *pi = kl_alloc_array(a, (size_t)c->pairs, sizeof *pi);
    int64_t *pj = kl_alloc_array(a, (size_t)c->pairs, sizeof *pj);
    double *w = pair_weights(a, c, pi, pj);
    kl_buffer *wb = kl_ml_const_floats(L, n, "pair_weights", w, c->pairs * c->m.vectors,
                                       (kl_shape){.rank = 2, .dim = {c->pairs, c->m.vectors}});
    kl_buffer *rho = kl_ml_const_floats(L, n, "rho", c->m.rho, c->pairs,
                                        (kl_shape){.rank = 1, .dim = {c->pairs}});
    kl_shape ps = {.rank = 2, .dim = {rows, c->pairs}};
    kl_buffer *s = kl_lower_temp(L, "pair_scores", KL_F32, &ps);
    kl_ml_scores(L, n, kmat, wb, rho, s);
    vote(L, n, c, s, pi, pj, y);
    if (c->classes > 2) {
        kl_ml_transform_rows(L, n, c->pt, s, z);
        return;
    }
    /* one pair: [-s, s] with post_transform NONE, [1 - sigmoid(s), sigmoid(s)] with LOGISTIC,
       else [1 - s, s] (ONNX Runtime 1.30's columns, checked against it) */
    kl_expr *zero[2] = {kl_e_iv(a, 0), kl_e_idx(a, 0)};
    kl_expr *sc = kl_e_load(a, s, zero);
    if (c->pt == KL_ML_PT_LOGISTIC) sc = kl_e_unary(a, KL_SIGMOID, sc);
    kl_expr *other = c->pt == KL_ML_PT_NONE
                         ? kl_e_unary(a, KL_NEG, sc)
                         : kl_e_binary(a, KL_SUB, kl_e_const_f(a, KL_F32, 1), sc);
    kl_expr *first = kl_e_binary(a, KL_EQ, kl_e_iv(a, 1), kl_e_idx(a, 0));
    kl_arith_map(L, n, "two_columns", z, kl_e_select(a, first, other, sc));
}

/* liblinear: one score per class, x·coefficients[class] + rho[0]. */
static void lower_linear(kl_lower *L, const kl_node *n, const svc *c, kl_buffer *x,
                         kl_buffer *y, kl_buffer *z) {
    kl_arena *a = L->arena;
    int64_t rows = y->shape.dim[0], e = c->classes;
    kl_buffer *w = kl_ml_const_floats(L, n, "coefficients", c->m.coef, e * c->m.features,
                                      (kl_shape){.rank = 2, .dim = {e, c->m.features}});
    double *bias = kl_alloc_array(a, (size_t)e, sizeof *bias);
    for (int64_t i = 0; i < e; i++) bias[i] = c->m.rho[0];
    kl_buffer *bb = kl_ml_const_floats(L, n, "rho", bias, e, (kl_shape){.rank = 1, .dim = {e}});
    kl_shape ss = {.rank = 2, .dim = {rows, e}};
    kl_buffer *s = kl_lower_temp(L, "scores", KL_F32, &ss);
    kl_ml_scores(L, n, x, w, bb, s);
    kl_buffer *labels = kl_ml_const_ints(L, n, "labels", c->labels, e);
    if (e == 2) { /* the second class when the highest score is above the threshold */
        bool all_positive = true;
        for (int i = 0; i < c->m.n_coef; i++) all_positive = all_positive && c->m.coef[i] >= 0;
        kl_expr *s0[2] = {kl_e_iv(a, 0), kl_e_idx(a, 0)}, *s1[2] = {kl_e_iv(a, 0), kl_e_idx(a, 1)};
        kl_expr *hi = kl_e_binary(a, KL_MAX, kl_e_load(a, s, s0), kl_e_load(a, s, s1));
        kl_expr *second = kl_e_binary(a, all_positive ? KL_GE : KL_GT, hi,
                                      kl_e_const_f(a, KL_F32, all_positive ? 0.5 : 0));
        kl_expr *second_higher = kl_e_binary(a, KL_GT, kl_e_load(a, s, s1), kl_e_load(a, s, s0));
        kl_expr *one = kl_e_idx(a, 1), *zero = kl_e_idx(a, 0);
        kl_expr *cls = kl_e_select(a, kl_e_binary(a, KL_OR, second, second_higher), one, zero);
        kl_arith_map(L, n, "label", y, kl_e_load(a, labels, &cls));
    } else {
        kl_ml_argmax_labels(L, n, s, labels, y);
    }
    kl_ml_transform_rows(L, n, c->pt, s, z);
}

static bool lower_classifier(kl_lower *L, kl_node *n, kl_diag *d) {
    svc c;
    if (!parse_svc(n, &c, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *y = kl_lower_buffer(L, n->outputs[0]), *z = kl_lower_buffer(L, n->outputs[1]);
    if (c.m.vectors) lower_svc(L, n, &c, x, y, z);
    else lower_linear(L, n, &c, x, y, z);
    return true;
}

const kl_op kl_ops_ml_svm[] = {
    {ML, "SVMRegressor", 1, KL_ML_OPSET_LATEST, regressor_attrs, infer_regressor, lower_regressor},
    {ML, "SVMClassifier", 1, KL_ML_OPSET_LATEST, classifier_attrs, infer_classifier, lower_classifier},
    {0},
};
