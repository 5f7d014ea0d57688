/*
 * ml_util.h — shared by the ai.onnx.ml model operators (ml_util.c): feature inputs, constant
 * tables, scores and ONNX Runtime's post_transform (see ml_linear.c for its semantics).
 */
#ifndef KIL_ML_UTIL_H
#define KIL_ML_UTIL_H

#include "arith_util.h"

#define KL_ML_DOMAIN "ai.onnx.ml"

typedef enum kl_ml_transform {
    KL_ML_PT_NONE, KL_ML_PT_LOGISTIC, KL_ML_PT_SOFTMAX, KL_ML_PT_SOFTMAX_ZERO, KL_ML_PT_PROBIT
} kl_ml_transform;

/* X of float, double, int32 or int64, shaped [N, C] or [C] (one row). */
bool kl_ml_need_features(kl_node *n, kl_diag *d);
int64_t kl_ml_rows(const kl_value *x);
int64_t kl_ml_features(const kl_value *x);
/* A FLOATS attribute's values and count (0 and NULL when absent). */
int kl_ml_floats_attr(const kl_node *n, const char *name, const double **out);
bool kl_ml_parse_transform(kl_node *n, kl_ml_transform *pt, kl_diag *d);
/* Constant tables (float32 of the given shape; int64 1-D), named after the node. */
kl_buffer *kl_ml_const_floats(kl_lower *L, const kl_node *n, const char *what, const double *v,
                              int64_t count, kl_shape s);
kl_buffer *kl_ml_const_ints(kl_lower *L, const kl_node *n, const char *what, const int64_t *v,
                            int64_t count);
/* X[row, col] (X[col] when X is 1-D) as float. */
kl_expr *kl_ml_feature(kl_arena *a, kl_buffer *x, kl_expr *row, kl_expr *col);
/* A float32 sum over `terms` (loop 2) for every element of out [R, C] (loops 0 and 1); the
 * caller sets its value (and init, result) and adds it. */
kl_kernel *kl_ml_sum_kernel(kl_lower *L, const kl_node *n, const char *tag, kl_buffer *out,
                            int64_t terms);
/* S[i, e] = sum over c of X[i, c] * coef[e, c] (+ intercepts[e]); the kernel is added. */
kl_kernel *kl_ml_scores(kl_lower *L, const kl_node *n, kl_buffer *x, kl_buffer *coef,
                        kl_buffer *intercepts, kl_buffer *s);
/* sqrt(2) * erfinv(2v - 1) by ONNX Runtime's closed approximation. */
kl_expr *kl_ml_probit(kl_arena *a, kl_expr *v);
/* out = pt(S) row by row, S [N, E] with E >= 2. */
void kl_ml_transform_rows(kl_lower *L, const kl_node *n, kl_ml_transform pt, kl_buffer *s,
                          kl_buffer *out);
/* Y[i] = labels[the first e of the highest S[i, e]]. */
void kl_ml_argmax_labels(kl_lower *L, const kl_node *n, kl_buffer *s, kl_buffer *labels,
                         kl_buffer *y);

#endif
