/*
 * ml.c — operators of the ai.onnx.ml domain that are tensor arithmetic: Binarizer and
 * ArrayFeatureExtractor (opset 1).
 *
 * Binarizer is elementwise (1 where x > threshold, else 0). ArrayFeatureExtractor gathers
 * along the last axis with run-time indices, flattened to one list, and keeps X's leading
 * dimensions; a 1-D X gives a [1, k] result, as ONNX Runtime (and so the reference) does.
 * Indices are wrapped from the end when negative and clamped into the axis, as Gather's are,
 * so bad data cannot read outside X.
 */
#include "arith_util.h"

#define ML "ai.onnx.ml"

static const char *const binarizer_attrs[] = {"threshold", NULL};
static const char *const no_attrs[] = {NULL};

static bool infer_binarizer(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_dtype t = n->inputs[0]->dtype;
    if (!kl_dtype_is_float(t) && t != KL_I32 && t != KL_I64)
        return kl_error(d, n, "X must be float, double, int32 or int64, not %s", kl_dtype_name(t));
    return kl_infer_same_as_input(n, d);
}

static bool lower_binarizer(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype u = kl_dtype_is_float(x->dtype) ? kl_arith_compute_dtype(x->dtype) : KL_F64;
    kl_expr *v = kl_e_cast(a, u, kl_e_load(a, x, kl_lower_ivs(L, x->shape.rank)));
    kl_expr *above = kl_e_binary(a, KL_GT, v, kl_arith_const(a, u, kl_attr_float(n, "threshold",
                                                                                    0)));
    kl_arith_map(L, n, NULL, out, kl_e_select(a, above, kl_arith_const(a, x->dtype, 1),
                                              kl_arith_const(a, x->dtype, 0)));
    return true;
}

static bool infer_array_feature_extractor(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    if (n->inputs[1]->dtype != KL_I64)
        return kl_error(d, n, "indices must be int64, not %s",
                        kl_dtype_name(n->inputs[1]->dtype));
    if (x->rank < 1) return kl_error(d, n, "X must have rank 1 or more");
    if (x->dim[x->rank - 1] <= 0) return kl_error(d, n, "X's last dimension is empty");
    kl_shape s = *x;
    if (x->rank == 1) s = (kl_shape){.rank = 2, .dim = {1, 0}};
    s.dim[s.rank - 1] = kl_shape_numel(&n->inputs[1]->shape);
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &s);
}

static bool lower_array_feature_extractor(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *ind = kl_lower_buffer(L, n->inputs[1]);
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    int xr = x->shape.rank, orank = out->shape.rank;
    int64_t len = x->shape.dim[xr - 1];
    /* the k-th index of the flattened list (k = the output's last loop), unravelled */
    kl_expr *k = kl_e_iv(a, orank - 1), *at[KL_MAX_RANK];
    int64_t stride = 1;
    for (int j = ind->shape.rank - 1; j >= 0; j--) {
        kl_expr *q = stride > 1 ? kl_e_binary(a, KL_DIV, k, kl_e_idx(a, stride)) : k;
        at[j] = j > 0 ? kl_e_binary(a, KL_MOD, q, kl_e_idx(a, ind->shape.dim[j])) : q;
        stride *= ind->shape.dim[j];
    }
    kl_expr *i = kl_e_load(a, ind, at);
    i = kl_e_select(a, kl_e_binary(a, KL_LT, i, kl_e_idx(a, 0)), kl_e_addc(a, i, len), i);
    i = kl_e_binary(a, KL_MAX, kl_e_binary(a, KL_MIN, i, kl_e_idx(a, len - 1)), kl_e_idx(a, 0));
    kl_expr *idx[KL_MAX_RANK];
    for (int j = 0; j < xr - 1; j++) idx[j] = kl_e_iv(a, j);
    idx[xr - 1] = i;
    kl_arith_map(L, n, NULL, out, kl_e_load(a, x, idx));
    return true;
}

const kl_op kl_ops_ml[] = {
    {ML, "Binarizer", 1, KL_ML_OPSET_LATEST, binarizer_attrs, infer_binarizer, lower_binarizer},
    {ML, "ArrayFeatureExtractor", 1, KL_ML_OPSET_LATEST, no_attrs, infer_array_feature_extractor,
     lower_array_feature_extractor},
    {0},
};
