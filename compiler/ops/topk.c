/*
 * topk.c — TopK (opsets 1, 10, 11): the k largest (or smallest) elements along an axis, with
 * their indices.
 *
 * No sort: the order ONNX asks for is a total order on the positions of one line along the axis
 * (by value, NaN above every number as numpy's sort puts it, ties by the lower index), so
 * each element's rank in that order is a count, a reduction over the axis:
 *     rank[p] = #{q : q comes before p}
 * and the j-th output is the one element whose rank is j: its index is
 *     indices[j] = sum over q of (rank[q] == j ? q : 0)
 * and its value a gather through that index. Three kernels, O(n^2) per line: fine for the
 * lengths TopK meets in models (detection heads, beam search), slow for very long axes.
 * The output is always sorted (sorted=0 leaves the order to the implementation).
 *
 * k is an attribute (opset 1) or input 1 (from opset 10). Given at run time, the model must
 * declare the output's shape; the k that arrives is then checked against it (KILN_E_SHAPE).
 */
#include "arith_util.h"

typedef struct topk {
    int axis;
    int64_t k;
    bool largest;
    bool k_at_run_time;
    kl_shape out;
} topk;

/* The declared shape of the outputs (either may carry it). */
static const kl_value *declared_output(const kl_node *n) {
    for (int i = 0; i < 2; i++) {
        const kl_value *v = kl_node_output(n, i);
        if (v && (v->shape_declared || v->has_shape)) return v;
    }
    return NULL;
}

static bool topk_plan(kl_node *n, topk *t, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    int64_t axis = kl_attr_int(n, "axis", -1);
    if (!kl_axis_normalize(axis, x->rank, &t->axis))
        return kl_error(d, n, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
    t->largest = n->opset < 11 || kl_attr_int(n, "largest", 1) != 0;
    t->k_at_run_time = false;
    if (n->opset < 10) {
        if (!kl_attr_find(n, "k")) return kl_error(d, n, "attribute k is required");
        t->k = kl_attr_int(n, "k", 0);
    } else {
        if (!kl_infer_need_input(n, 1, d)) return false;
        const kl_value *k = n->inputs[1];
        if (k->dtype != KL_I64 || kl_shape_numel(&k->shape) != 1 || k->shape.rank > 1)
            return kl_error(d, n, "K must be a 1-D int64 tensor of one element");
        t->k_at_run_time = kl_input_at_run_time(n, 1);
        if (t->k_at_run_time) {
            const kl_value *y = declared_output(n);
            if (!y) return kl_infer_declared(n, 1, d);
            if (y->shape.rank != x->rank)
                return kl_error(d, n, "the declared output has rank %d, the input %d",
                                y->shape.rank, x->rank);
            t->k = y->shape.dim[t->axis];
        } else {
            t->k = kl_value_const_int(k, 0);
        }
    }
    if (t->k < 0 || t->k > x->dim[t->axis])
        return kl_error(d, n, "k = %lld is outside [0, %lld], the length of axis %d",
                        (long long)t->k, (long long)x->dim[t->axis], t->axis);
    t->out = *x;
    t->out.dim[t->axis] = t->k;
    for (int i = 0; i < 2 && t->k_at_run_time; i++) {
        const kl_value *y = kl_node_output(n, i);
        if (y && (y->shape_declared || y->has_shape) && !kl_shape_equal(&y->shape, &t->out))
            return kl_error(d, n, "the declared shape of output %d differs from the input's "
                            "outside axis %d", i, t->axis);
    }
    return true;
}

static bool infer_topk(kl_node *n, kl_diag *d) {
    topk t;
    if (!topk_plan(n, &t, d)) return false;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &t.out) && kl_infer_set(n, 1, KL_I64, &t.out);
}

/* NaN is above every number and equal to NaN (numpy's sort order): x != x only for NaN. */
static kl_expr *is_nan(kl_arena *a, kl_expr *x) { return kl_e_binary(a, KL_NE, x, x); }

/* a > b in that order. */
static kl_expr *above(kl_arena *a, kl_expr *x, kl_expr *y) {
    kl_expr *gt = kl_e_binary(a, KL_GT, x, y);
    if (!kl_dtype_is_float(x->dtype)) return gt;
    kl_expr *nan_over_number = kl_e_and(a, is_nan(a, x), kl_e_unary(a, KL_NOT, is_nan(a, y)));
    return kl_e_binary(a, KL_OR, gt, nan_over_number);
}

static kl_expr *same(kl_arena *a, kl_expr *x, kl_expr *y) {
    kl_expr *eq = kl_e_binary(a, KL_EQ, x, y);
    if (!kl_dtype_is_float(x->dtype)) return eq;
    return kl_e_binary(a, KL_OR, eq, kl_e_and(a, is_nan(a, x), is_nan(a, y)));
}

/* rank[p] = the number of positions q of p's line that come before p. */
static kl_buffer *lower_ranks(kl_lower *L, const kl_node *n, const topk *t, kl_buffer *x) {
    kl_arena *a = L->arena;
    int r = x->shape.rank, q = r; /* loop r: the other position q along the axis */
    kl_buffer *rank = kl_lower_temp(L, "topk_rank", KL_I64, &x->shape);
    kl_kernel *k = kl_kernel_new(L->prog, n, "rank");
    k->n_par = r;
    k->n_loops = r + 1;
    for (int i = 0; i < r; i++) k->extent[i] = x->shape.dim[i];
    k->extent[q] = x->shape.dim[t->axis];
    k->out = rank;
    k->out_idx = kl_lower_ivs(L, r);
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < r; i++) idx[i] = kl_e_iv(a, i);
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    kl_expr *xp = kl_e_cast(a, u, kl_e_load(a, x, idx));
    idx[t->axis] = kl_e_iv(a, q);
    kl_expr *xq = kl_e_cast(a, u, kl_e_load(a, x, idx));
    kl_expr *better = t->largest ? above(a, xq, xp) : above(a, xp, xq);
    kl_expr *earlier = kl_e_binary(a, KL_LT, kl_e_iv(a, q), kl_e_iv(a, t->axis));
    kl_expr *before = kl_e_binary(a, KL_OR, better, kl_e_and(a, same(a, xq, xp), earlier));
    k->value = kl_e_select(a, before, kl_e_idx(a, 1), kl_e_idx(a, 0));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_program_add_kernel(L->prog, k);
    return rank;
}

/* indices[j] = the position whose rank is j (exactly one is). */
static void lower_indices(kl_lower *L, const kl_node *n, const topk *t, kl_buffer *rank,
                          kl_buffer *ind) {
    kl_arena *a = L->arena;
    int r = ind->shape.rank, q = r;
    kl_kernel *k = kl_kernel_new(L->prog, n, "select");
    k->n_par = r;
    k->n_loops = r + 1;
    for (int i = 0; i < r; i++) k->extent[i] = ind->shape.dim[i];
    k->extent[q] = rank->shape.dim[t->axis];
    k->out = ind;
    k->out_idx = kl_lower_ivs(L, r);
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < r; i++) idx[i] = kl_e_iv(a, i);
    idx[t->axis] = kl_e_iv(a, q);
    kl_expr *hit = kl_e_binary(a, KL_EQ, kl_e_load(a, rank, idx), kl_e_iv(a, t->axis));
    k->value = kl_e_select(a, hit, kl_e_iv(a, q), kl_e_idx(a, 0));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_program_add_kernel(L->prog, k);
}

static bool lower_topk(kl_lower *L, kl_node *n, kl_diag *d) {
    topk t;
    if (!topk_plan(n, &t, d)) return false;
    kl_arena *a = L->arena;
    if (t.k_at_run_time)
        kl_lower_check_int_input(L, n, 1, t.k);
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *values = kl_lower_buffer(L, n->outputs[0]);
    kl_value *iv = kl_node_output(n, 1);
    kl_buffer *ind = iv ? kl_lower_buffer(L, iv) : kl_lower_temp(L, "topk_indices", KL_I64, &t.out);
    if (t.k == 0) return true;
    kl_buffer *rank = lower_ranks(L, n, &t, x);
    lower_indices(L, n, &t, rank, ind);
    /* values[j] = x[indices[j]] along the axis */
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < x->shape.rank; i++) idx[i] = kl_e_iv(a, i);
    idx[t.axis] = kl_e_load(a, ind, kl_lower_ivs(L, x->shape.rank));
    kl_arith_map(L, n, "values", values, kl_e_load(a, x, idx));
    return true;
}

static const char *const topk1_attrs[] = {"axis", "k", NULL};
static const char *const topk10_attrs[] = {"axis", NULL};
static const char *const topk11_attrs[] = {"axis", "largest", "sorted", NULL};

const kl_op kl_ops_topk[] = {
    {"", "TopK", 1, 9, topk1_attrs, infer_topk, lower_topk},
    {"", "TopK", 10, 10, topk10_attrs, infer_topk, lower_topk},
    {"", "TopK", 11, KL_OPSET_LATEST, topk11_attrs, infer_topk, lower_topk},
    {0},
};
