/*
 * ml_util.c — what the ai.onnx.ml models share (ml_linear.c, ml_svm.c): their feature input,
 * constant tables from attributes, the score matrix X·Wᵀ + b, ONNX Runtime's post_transform of
 * scores, and the label of the highest score.
 */
#include <string.h>

#include "ml_util.h"

bool kl_ml_need_features(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    if (!kl_dtype_is_float(x->dtype) && x->dtype != KL_I32 && x->dtype != KL_I64)
        return kl_error(d, n, "X must be float, double, int32 or int64, not %s",
                        kl_dtype_name(x->dtype));
    if (x->shape.rank < 1 || x->shape.rank > 2)
        return kl_error(d, n, "X must be [N, C] or [C], not rank %d", x->shape.rank);
    return true;
}

int64_t kl_ml_rows(const kl_value *x) { return x->shape.rank == 1 ? 1 : x->shape.dim[0]; }
int64_t kl_ml_features(const kl_value *x) { return x->shape.dim[x->shape.rank - 1]; }

/* A FLOATS attribute's values and count (0 and NULL when absent). */
int kl_ml_floats_attr(const kl_node *n, const char *name, const double **out) {
    const kl_attr *at = kl_attr_find(n, name);
    *out = at && at->type == KL_ATTR_FLOATS ? at->floats : NULL;
    return *out ? at->n : 0;
}

bool kl_ml_parse_transform(kl_node *n, kl_ml_transform *pt, kl_diag *d) {
    static const char *const names[] = {"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"};
    const char *s = kl_attr_string(n, "post_transform", "NONE");
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *pt = (kl_ml_transform)i;
            return true;
        }
    return kl_error(d, n, "post_transform '%s' is not NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO or "
                    "PROBIT", s);
}

/* ---- constant tables ---- */

kl_buffer *kl_ml_const_floats(kl_lower *L, const kl_node *n, const char *what,
                               const double *v, int64_t count, kl_shape s) {
    float *data = kl_alloc_array(L->arena, (size_t)count, sizeof *data);
    for (int64_t i = 0; i < count; i++) data[i] = (float)v[i];
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_%s", n->name, what),
                                     KL_BUF_CONST, KL_F32, &s);
    b->data = b->host = data; /* the interpreter reads it when folding */
    return b;
}

kl_buffer *kl_ml_const_ints(kl_lower *L, const kl_node *n, const char *what,
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
kl_expr *kl_ml_feature(kl_arena *a, kl_buffer *x, kl_expr *row, kl_expr *col) {
    kl_expr *idx[2] = {row, col};
    kl_expr *v = x->shape.rank == 1 ? kl_e_load(a, x, &idx[1]) : kl_e_load(a, x, idx);
    return kl_e_cast(a, KL_F32, v);
}

/* ---- the scores: S[i, e] = sum over c of X[i, c] * coef[e, c] (+ intercept[e]) ---- */

kl_kernel *kl_ml_sum_kernel(kl_lower *L, const kl_node *n, const char *tag, kl_buffer *out,
                            int64_t terms) {
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_par = 2;
    k->n_loops = 3;
    k->extent[0] = out->shape.dim[0];
    k->extent[1] = out->shape.dim[1];
    k->extent[2] = terms;
    k->out = out;
    k->out_idx = kl_lower_ivs(L, 2);
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_F32;
    return k;
}

kl_kernel *kl_ml_scores(kl_lower *L, const kl_node *n, kl_buffer *x, kl_buffer *coef,
                                kl_buffer *intercepts, kl_buffer *s) {
    kl_arena *a = L->arena;
    kl_kernel *k = kl_ml_sum_kernel(L, n, "scores", s, coef->shape.dim[1]);
    kl_expr *ci[2] = {kl_e_iv(a, 1), kl_e_iv(a, 2)};
    k->value = kl_e_binary(a, KL_MUL, kl_ml_feature(a, x, kl_e_iv(a, 0), kl_e_iv(a, 2)),
                           kl_e_load(a, coef, ci));
    kl_expr *e = kl_e_iv(a, 1);
    k->init = intercepts ? kl_e_load(a, intercepts, &e) : kl_e_const_f(a, KL_F32, 0);
    kl_program_add_kernel(L->prog, k);
    return k;
}

/* sqrt(2) * erfinv(2v - 1), erfinv by the closed approximation ONNX Runtime uses. */
kl_expr *kl_ml_probit(kl_arena *a, kl_expr *v) {
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
void kl_ml_transform_rows(kl_lower *L, const kl_node *n, kl_ml_transform pt, kl_buffer *s,
                           kl_buffer *out) {
    kl_arena *a = L->arena;
    kl_expr *v = kl_e_load(a, s, kl_lower_ivs(L, 2));
    if (pt == KL_ML_PT_NONE || pt == KL_ML_PT_LOGISTIC || pt == KL_ML_PT_PROBIT) {
        kl_expr *y = pt == KL_ML_PT_NONE ? v : pt == KL_ML_PT_LOGISTIC ? kl_e_unary(a, KL_SIGMOID, v)
                                                            : kl_ml_probit(a, v);
        kl_arith_map(L, n, "transform", out, y);
        return;
    }
    bool zero_aware = pt == KL_ML_PT_SOFTMAX_ZERO;
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

/* Y[i] = labels[first e of the highest S[i, e]]. */
void kl_ml_argmax_labels(kl_lower *L, const kl_node *n, kl_buffer *s, kl_buffer *labels,
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

