/*
 * indexing.c — operators whose reads or writes are chosen by index data or by position:
 * GatherElements GatherND ScatterElements Scatter ScatterND TensorScatter OneHot CumSum CumProd
 * Trilu.
 *
 * The kernel IR stores each output element exactly once, from parallel loops over the output.
 * Scatters are therefore written "pull" style: every output element looks through the updates
 * for the ones aimed at it (a reduction loop), which is race-free under any parallelization and
 * gives duplicate indices a defined result (reduction none: the last update wins, as in the
 * ONNX reference). It costs output size x updates along the scattered axes; a runtime-min
 * routine can replace it when large scatters matter. CumSum is the same idea along one axis.
 *
 * Indices loaded at run time are wrapped (negative counts from the end) and clamped into the
 * axis, so that invalid data can never make compiled code read outside a buffer; a check kernel
 * before the read (ops/index_check.c) makes predict return KILN_E_INDEX_OUT_OF_RANGE then.
 */
#include <string.h>

#include "move_util.h"

/* ---------------------------------------------------------------- index helpers */

static kl_expr *clamp_index(kl_arena *a, kl_expr *x, int64_t n) {
    x = kl_e_binary(a, KL_MIN, x, kl_e_idx(a, n - 1));
    return kl_e_binary(a, KL_MAX, x, kl_e_idx(a, 0));
}

/* A loaded index as int64, negative values counted from the end of an axis of size n. */
static kl_expr *wrap_index(kl_arena *a, kl_expr *x, int64_t n) {
    x = kl_e_cast(a, KL_I64, x);
    kl_expr *negative = kl_e_binary(a, KL_LT, x, kl_e_idx(a, 0));
    return kl_e_select(a, negative, kl_e_addc(a, x, n), x);
}

static bool need_index_type(kl_node *n, int i, kl_diag *d) {
    if (!kl_infer_need_input(n, i, d)) return false;
    kl_dtype t = n->inputs[i]->dtype;
    if (t != KL_I32 && t != KL_I64)
        return kl_error(d, n, "input %d (indices) must be int32 or int64, not %s", i,
                        kl_dtype_name(t));
    return true;
}

static bool need_axis(kl_node *n, int rank, int *axis, kl_diag *d) {
    int64_t given = kl_attr_int(n, "axis", 0);
    if (!kl_axis_normalize(given, rank, axis))
        return kl_error(d, n, "axis %" PRId64 " is out of range for rank %d", given, rank);
    return true;
}

/* ---------------------------------------------------------------- GatherElements */

static const char *const axis_attrs[] = {"axis", NULL};

static bool gather_elements_infer(kl_node *n, kl_diag *d) {
    int axis;
    if (!kl_move_need_data(n, 0, d) || !need_index_type(n, 1, d)) return false;
    const kl_shape *data = &n->inputs[0]->shape, *ind = &n->inputs[1]->shape;
    if (!need_axis(n, data->rank, &axis, d)) return false;
    if (ind->rank != data->rank)
        return kl_error(d, n, "indices %s must have the rank of data %s", KL_SHAPE_TEXT(ind),
                        KL_SHAPE_TEXT(data));
    for (int i = 0; i < ind->rank; i++)
        if (i != axis && ind->dim[i] > data->dim[i])
            return kl_error(d, n, "indices %s exceed data %s along axis %d", KL_SHAPE_TEXT(ind),
                            KL_SHAPE_TEXT(data), i);
    return kl_infer_set(n, 0, n->inputs[0]->dtype, ind);
}

/* out[i] = data[i with axis replaced by indices[i]] */
static bool gather_elements_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *data = kl_lower_buffer(L, n->inputs[0]), *ind = kl_lower_buffer(L, n->inputs[1]);
    int axis;
    if (!need_axis(n, data->shape.rank, &axis, d) ||
        !kl_lower_index_check(L, n, ind, &data->shape.dim[axis], 1, d))
        return false;
    kl_kernel *k = kl_move_kernel(L, n, "gather_elements", kl_lower_buffer(L, n->outputs[0]));
    kl_expr **idx = kl_lower_ivs(L, data->shape.rank);
    int64_t dim = data->shape.dim[axis];
    kl_expr *target = kl_e_load(a, ind, kl_lower_ivs(L, ind->shape.rank));
    idx[axis] = clamp_index(a, wrap_index(a, target, dim), dim);
    k->value = kl_e_load(a, data, idx);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- TensorScatter */

/* TensorScatter (opset 24) writes a KV-cache update: present = past_cache with update[b]
 * placed along `axis` from write_indices[b] on (wrapping modulo the axis in circular mode).
 * Pulled like the other scatters, but with one candidate per element, so no reduction loop:
 * position s of batch b takes update[..., s - w[b], ...] when that is one of the update's
 * positions, else the cache's own element. */
static const char *const tensor_scatter_attrs[] = {"axis", "mode", NULL};

static bool tensor_scatter_axis(kl_node *n, int rank, int *axis, bool *circular, kl_diag *d) {
    int64_t given = kl_attr_int(n, "axis", -2);
    if (!kl_axis_normalize(given, rank, axis) || *axis == 0)
        return kl_error(d, n, "axis %" PRId64 " is not a sequence axis of rank %d", given, rank);
    const char *mode = kl_attr_string(n, "mode", "linear");
    if (strcmp(mode, "linear") && strcmp(mode, "circular"))
        return kl_error(d, n, "mode '%s' is neither 'linear' nor 'circular'", mode);
    *circular = !strcmp(mode, "circular");
    return true;
}

static bool tensor_scatter_infer(kl_node *n, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d) || !kl_move_need_data(n, 1, d)) return false;
    const kl_shape *cache = &n->inputs[0]->shape, *upd = &n->inputs[1]->shape;
    int axis;
    bool circular;
    if (cache->rank < 2) return kl_error(d, n, "past_cache must have rank 2 or more");
    if (!tensor_scatter_axis(n, cache->rank, &axis, &circular, d)) return false;
    if (n->inputs[1]->dtype != n->inputs[0]->dtype)
        return kl_error(d, n, "update must have past_cache's element type");
    bool fits = upd->rank == cache->rank;
    for (int i = 0; fits && i < cache->rank; i++)
        fits = i == axis ? upd->dim[i] <= cache->dim[i] : upd->dim[i] == cache->dim[i];
    if (!fits)
        return kl_error(d, n, "update %s does not fit past_cache %s along axis %d",
                        KL_SHAPE_TEXT(upd), KL_SHAPE_TEXT(cache), axis);
    kl_value *w = kl_node_input(n, 2);
    if (w) {
        if (!need_index_type(n, 2, d)) return false;
        if (w->shape.rank != 1 || w->shape.dim[0] != cache->dim[0])
            return kl_error(d, n, "write_indices must be [batch] = [%" PRId64 "]", cache->dim[0]);
    }
    return kl_infer_set(n, 0, n->inputs[0]->dtype, cache);
}

static bool tensor_scatter_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *cache = kl_lower_buffer(L, n->inputs[0]), *upd = kl_lower_buffer(L, n->inputs[1]);
    int rank = cache->shape.rank, axis;
    bool circular;
    if (!tensor_scatter_axis(n, rank, &axis, &circular, d)) return false;
    int64_t max_len = cache->shape.dim[axis], len = upd->shape.dim[axis];
    kl_kernel *k = kl_move_kernel(L, n, "tensor_scatter", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *rel = kl_e_iv(a, axis);
    kl_value *w = kl_node_input(n, 2);
    if (w) {
        kl_expr *b = kl_e_iv(a, 0);
        kl_expr *start = kl_e_cast(a, KL_I64, kl_e_load(a, kl_lower_buffer(L, w), &b));
        rel = kl_e_binary(a, KL_SUB, rel, start);
    }
    if (circular) rel = kl_e_binary(a, KL_MOD, rel, kl_e_idx(a, max_len));
    kl_expr **idx = kl_lower_ivs(L, rank);
    idx[axis] = rel;
    kl_expr *written = kl_e_in_range(a, rel, len);
    k->value = kl_e_select(a, written, kl_e_load(a, upd, idx),
                           kl_e_load(a, cache, kl_lower_ivs(L, rank)));
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- GatherND */

static const char *const gather_nd_attrs[] = {"batch_dims", NULL};

static bool gather_nd_infer(kl_node *n, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    if (n->inputs[1]->dtype != KL_I64)
        return kl_error(d, n, "indices must be int64, not %s", kl_dtype_name(n->inputs[1]->dtype));
    const kl_shape *data = &n->inputs[0]->shape, *ind = &n->inputs[1]->shape;
    int64_t b = kl_attr_int(n, "batch_dims", 0);
    if (ind->rank < 1) return kl_error(d, n, "indices must have rank 1 or more");
    int64_t k = ind->dim[ind->rank - 1];
    if (b < 0 || b >= ind->rank || b >= data->rank || k < 1 || b + k > data->rank)
        return kl_error(d, n, "indices %s with batch_dims %" PRId64 " do not fit data %s",
                        KL_SHAPE_TEXT(ind), b, KL_SHAPE_TEXT(data));
    for (int i = 0; i < b; i++)
        if (ind->dim[i] != data->dim[i])
            return kl_error(d, n, "batch dimension %d differs: data %s, indices %s", i,
                            KL_SHAPE_TEXT(data), KL_SHAPE_TEXT(ind));
    /* indices.shape[:-1] + data.shape[batch_dims + k:] */
    kl_shape out = {.rank = ind->rank - 1 + data->rank - (int)(b + k)};
    if (out.rank > KL_MAX_RANK) return kl_error(d, n, "result rank %d is too large", out.rank);
    int r = 0;
    for (int i = 0; i < ind->rank - 1; i++) out.dim[r++] = ind->dim[i];
    for (int i = (int)(b + k); i < data->rank; i++) out.dim[r++] = data->dim[i];
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

static bool gather_nd_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *data = kl_lower_buffer(L, n->inputs[0]), *ind = kl_lower_buffer(L, n->inputs[1]);
    int q = ind->shape.rank, b = (int)kl_attr_int(n, "batch_dims", 0);
    int k = (int)ind->shape.dim[q - 1];
    if (!kl_lower_index_check(L, n, ind, &data->shape.dim[b], k, d)) return false;
    kl_kernel *kn = kl_move_kernel(L, n, "gather_nd", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *ind_idx[KL_MAX_RANK], *data_idx[KL_MAX_RANK];
    for (int i = 0; i < q - 1; i++) ind_idx[i] = kl_e_iv(a, i);
    for (int i = 0; i < b; i++) data_idx[i] = kl_e_iv(a, i);
    for (int t = 0; t < k; t++) {
        ind_idx[q - 1] = kl_e_idx(a, t);
        int64_t dim = data->shape.dim[b + t];
        data_idx[b + t] = clamp_index(a, wrap_index(a, kl_e_load(a, ind, ind_idx), dim), dim);
    }
    for (int i = b + k; i < data->shape.rank; i++) data_idx[i] = kl_e_iv(a, q - 1 + i - (b + k));
    kn->value = kl_e_load(a, data, data_idx);
    kl_move_add_kernel(L, kn);
    return true;
}

/* ---------------------------------------------------------------- scatter, pull style */

typedef enum scatter_reduction {
    SCATTER_NONE, SCATTER_ADD, SCATTER_MUL, SCATTER_MAX, SCATTER_MIN
} scatter_reduction;

static bool scatter_reduction_of(kl_node *n, scatter_reduction *r, kl_diag *d) {
    const char *s = kl_attr_string(n, "reduction", "none");
    if (!strcmp(s, "none")) *r = SCATTER_NONE;
    else if (!strcmp(s, "add")) *r = SCATTER_ADD;
    else if (!strcmp(s, "mul")) *r = SCATTER_MUL;
    else if (!strcmp(s, "max") && n->opset >= 18) *r = SCATTER_MAX;
    else if (!strcmp(s, "min") && n->opset >= 18) *r = SCATTER_MIN;
    else return kl_error(d, n, "unknown reduction '%s'", s);
    return true;
}

/* Finish a scatter kernel whose reduction loops walk candidate updates. `match` says whether
 * the current candidate targets this output element, `update` is its value and `position` its
 * linear number among the candidates; `update_at` rebuilds the update from a position (for
 * reduction none, where the last matching candidate wins). */
typedef kl_expr *(*update_at_fn)(kl_lower *L, const kl_node *n, kl_expr *position);

static void scatter_finish(kl_lower *L, const kl_node *n, kl_kernel *k, scatter_reduction r,
                           kl_expr *match, kl_expr *update, kl_expr *position,
                           update_at_fn update_at) {
    kl_arena *a = L->arena;
    kl_buffer *data = kl_lower_buffer(L, n->inputs[0]);
    kl_expr *old = kl_e_load(a, data, kl_lower_ivs(L, data->shape.rank));
    kl_dtype t = data->dtype;
    switch (r) {
    case SCATTER_NONE: {
        k->reduce = KL_RED_MAX;
        k->acc_dtype = KL_I64;
        k->init = kl_e_idx(a, -1);
        k->value = kl_e_select(a, match, position, kl_e_idx(a, -1));
        kl_expr *acc = kl_e_acc(a, KL_I64);
        kl_expr *found = kl_e_binary(a, KL_GE, acc, kl_e_idx(a, 0));
        kl_expr *safe = kl_e_binary(a, KL_MAX, acc, kl_e_idx(a, 0));
        k->result = kl_e_select(a, found, update_at(L, n, safe), old);
        return;
    }
    case SCATTER_ADD: k->reduce = KL_RED_SUM; break;
    case SCATTER_MUL: k->reduce = KL_RED_PROD; break;
    case SCATTER_MAX: k->reduce = KL_RED_MAX; break;
    case SCATTER_MIN: k->reduce = KL_RED_MIN; break;
    }
    /* start from the data; candidates that do not match contribute the neutral element (the
     * old value itself is neutral for max and min) */
    kl_expr *neutral = r == SCATTER_ADD   ? kl_move_const(a, t, 0.0, 0)
                       : r == SCATTER_MUL ? kl_move_const(a, t, 1.0, 1)
                                          : old;
    k->acc_dtype = t;
    k->init = old;
    k->value = kl_e_select(a, match, update, neutral);
}

/* ---------------------------------------------------------------- ScatterElements, Scatter */

static const char *const scatter_elements_attrs[] = {"axis", "reduction", NULL};

static bool scatter_elements_infer(kl_node *n, kl_diag *d) {
    int axis;
    scatter_reduction r;
    if (!kl_move_need_data(n, 0, d) || !need_index_type(n, 1, d) || !kl_move_need_data(n, 2, d) ||
        !scatter_reduction_of(n, &r, d))
        return false;
    const kl_shape *data = &n->inputs[0]->shape, *ind = &n->inputs[1]->shape;
    if (!need_axis(n, data->rank, &axis, d)) return false;
    if (!kl_shape_equal(ind, &n->inputs[2]->shape))
        return kl_error(d, n, "updates %s must have the shape of indices %s",
                        KL_SHAPE_TEXT(&n->inputs[2]->shape), KL_SHAPE_TEXT(ind));
    if (n->inputs[2]->dtype != n->inputs[0]->dtype)
        return kl_error(d, n, "updates are %s but data is %s",
                        kl_dtype_name(n->inputs[2]->dtype), kl_dtype_name(n->inputs[0]->dtype));
    if (ind->rank != data->rank) return kl_error(d, n, "indices must have the rank of data");
    for (int i = 0; i < ind->rank; i++)
        if (i != axis && ind->dim[i] > data->dim[i])
            return kl_error(d, n, "indices %s exceed data %s along axis %d", KL_SHAPE_TEXT(ind),
                            KL_SHAPE_TEXT(data), i);
    return kl_infer_set(n, 0, n->inputs[0]->dtype, data);
}

/* Index of indices/updates for output element i and candidate j along the axis: i elsewhere
 * (clamped where indices are smaller than data; `match` rejects those positions). */
static kl_expr **scatter_elements_index(kl_lower *L, const kl_node *n, kl_expr *j) {
    kl_arena *a = L->arena;
    const kl_shape *data = &n->inputs[0]->shape, *ind = &n->inputs[1]->shape;
    int axis = 0;
    kl_axis_normalize(kl_attr_int(n, "axis", 0), data->rank, &axis);
    kl_expr **idx = kl_lower_ivs(L, ind->rank);
    for (int i = 0; i < ind->rank; i++)
        if (i != axis && ind->dim[i] < data->dim[i]) idx[i] = clamp_index(a, idx[i], ind->dim[i]);
    idx[axis] = j;
    return idx;
}

static kl_expr *scatter_elements_update_at(kl_lower *L, const kl_node *n, kl_expr *j) {
    kl_value *updates = n->inputs[2];
    return kl_e_load(L->arena, kl_lower_buffer(L, updates), scatter_elements_index(L, n, j));
}

static bool scatter_elements_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    scatter_reduction r;
    int axis;
    if (!scatter_reduction_of(n, &r, d)) return false;
    kl_buffer *data = kl_lower_buffer(L, n->inputs[0]), *ind = kl_lower_buffer(L, n->inputs[1]);
    int rank = data->shape.rank;
    if (!need_axis(n, rank, &axis, d) ||
        !kl_lower_index_check(L, n, ind, &data->shape.dim[axis], 1, d))
        return false;
    kl_kernel *k = kl_move_kernel(L, n, "scatter_elements", kl_lower_buffer(L, n->outputs[0]));
    k->n_loops = rank + 1; /* candidates j along the axis */
    k->extent[rank] = ind->shape.dim[axis];
    kl_expr *j = kl_e_iv(a, rank);
    kl_expr **idx = scatter_elements_index(L, n, j);
    int64_t dim = data->shape.dim[axis];
    kl_expr *target = wrap_index(a, kl_e_load(a, ind, idx), dim);
    kl_expr *match = kl_e_binary(a, KL_EQ, target, kl_e_iv(a, axis));
    for (int i = 0; i < rank; i++)
        if (i != axis && ind->shape.dim[i] < data->shape.dim[i])
            match = kl_e_and(a, match, kl_e_in_range(a, kl_e_iv(a, i), ind->shape.dim[i]));
    scatter_finish(L, n, k, r, match, kl_e_load(a, kl_lower_buffer(L, n->inputs[2]), idx), j,
                   scatter_elements_update_at);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- ScatterND */

static const char *const scatter_nd_attrs[] = {"reduction", NULL};

static bool scatter_nd_infer(kl_node *n, kl_diag *d) {
    scatter_reduction r;
    if (!kl_move_need_data(n, 0, d) || !kl_infer_need_input(n, 1, d) ||
        !kl_move_need_data(n, 2, d) || !scatter_reduction_of(n, &r, d))
        return false;
    const kl_shape *data = &n->inputs[0]->shape, *ind = &n->inputs[1]->shape,
                   *upd = &n->inputs[2]->shape;
    if (n->inputs[1]->dtype != KL_I64)
        return kl_error(d, n, "indices must be int64, not %s", kl_dtype_name(n->inputs[1]->dtype));
    if (ind->rank < 1 || ind->dim[ind->rank - 1] < 1 || ind->dim[ind->rank - 1] > data->rank)
        return kl_error(d, n, "indices %s do not fit data %s", KL_SHAPE_TEXT(ind),
                        KL_SHAPE_TEXT(data));
    /* updates: indices.shape[:-1] + data.shape[k:] */
    int k = (int)ind->dim[ind->rank - 1];
    kl_shape want = {.rank = ind->rank - 1 + data->rank - k};
    int r2 = 0;
    for (int i = 0; i < ind->rank - 1; i++) want.dim[r2++] = ind->dim[i];
    for (int i = k; i < data->rank; i++) want.dim[r2++] = data->dim[i];
    if (!kl_shape_equal(upd, &want))
        return kl_error(d, n, "updates %s should be %s", KL_SHAPE_TEXT(upd), KL_SHAPE_TEXT(&want));
    if (ind->rank - 1 + data->rank + 1 > KL_MAX_LOOPS)
        return kl_error(d, n, "too many loops for indices %s and data %s", KL_SHAPE_TEXT(ind),
                        KL_SHAPE_TEXT(data));
    return kl_infer_set(n, 0, n->inputs[0]->dtype, data);
}

/* updates[j..., i_k...]: j are the candidate index loops (or their unravelled position). */
static kl_expr *scatter_nd_update(kl_lower *L, const kl_node *n, kl_expr **j) {
    kl_buffer *upd = kl_lower_buffer(L, n->inputs[2]);
    const kl_shape *data = &n->inputs[0]->shape, *ind = &n->inputs[1]->shape;
    int q = ind->rank, k = (int)ind->dim[q - 1];
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < q - 1; i++) idx[i] = j[i];
    for (int i = k; i < data->rank; i++) idx[q - 1 + i - k] = kl_e_iv(L->arena, i);
    return kl_e_load(L->arena, upd, idx);
}

/* Reduction none: the winning candidate's position, unravelled over indices.shape[:-1]. */
static kl_expr *scatter_nd_update_at(kl_lower *L, const kl_node *n, kl_expr *position) {
    kl_arena *a = L->arena;
    const kl_shape *ind = &n->inputs[1]->shape;
    kl_expr *j[KL_MAX_RANK];
    int64_t stride = 1;
    for (int i = ind->rank - 2; i >= 0; i--) {
        kl_expr *q = stride == 1 ? position : kl_e_binary(a, KL_DIV, position, kl_e_idx(a, stride));
        j[i] = kl_e_binary(a, KL_MOD, q, kl_e_idx(a, ind->dim[i]));
        stride *= ind->dim[i];
    }
    return scatter_nd_update(L, n, j);
}

static bool scatter_nd_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    scatter_reduction r;
    if (!scatter_reduction_of(n, &r, d)) return false;
    kl_buffer *data = kl_lower_buffer(L, n->inputs[0]), *ind = kl_lower_buffer(L, n->inputs[1]);
    int rank = data->shape.rank, q = ind->shape.rank, k = (int)ind->shape.dim[q - 1];
    if (!kl_lower_index_check(L, n, ind, data->shape.dim, k, d)) return false;
    kl_kernel *kn = kl_move_kernel(L, n, "scatter_nd", kl_lower_buffer(L, n->outputs[0]));
    /* candidate loops over indices.shape[:-1]; one loop of extent 1 when there are none */
    kl_expr *j[KL_MAX_RANK], *position = kl_e_idx(a, 0);
    kn->n_loops = rank + (q > 1 ? q - 1 : 1);
    kn->extent[rank] = 1;
    for (int i = 0; i < q - 1; i++) {
        kn->extent[rank + i] = ind->shape.dim[i];
        j[i] = kl_e_iv(a, rank + i);
        position = kl_e_add(a, kl_e_mulc(a, position, ind->shape.dim[i]), j[i]);
    }
    kl_expr *match = NULL, *ind_idx[KL_MAX_RANK];
    for (int i = 0; i < q - 1; i++) ind_idx[i] = j[i];
    for (int t = 0; t < k; t++) {
        ind_idx[q - 1] = kl_e_idx(a, t);
        kl_expr *target = wrap_index(a, kl_e_load(a, ind, ind_idx), data->shape.dim[t]);
        match = kl_e_and(a, match, kl_e_binary(a, KL_EQ, target, kl_e_iv(a, t)));
    }
    scatter_finish(L, n, kn, r, match, scatter_nd_update(L, n, j), position, scatter_nd_update_at);
    kl_move_add_kernel(L, kn);
    return true;
}

/* ---------------------------------------------------------------- OneHot */

static bool one_hot_axis(kl_node *n, int out_rank, int *axis, kl_diag *d);

/* The depth: the constant input, or where it is given at run time, the declared output's size
 * along the axis (the kernel of one_hot_check holds the given one to it). */
static bool one_hot_depth(kl_node *n, int64_t *depth, kl_diag *d) {
    const kl_value *v = n->inputs[1];
    if (kl_input_at_run_time(n, 1)) {
        const kl_value *y = n->outputs[0];
        int axis;
        if (kl_shape_numel(&v->shape) != 1) return kl_error(d, n, "depth must be a scalar");
        if (!y->shape_declared && !y->has_shape) return kl_infer_declared(n, 1, d);
        if (y->shape.rank != n->inputs[0]->shape.rank + 1)
            return kl_error(d, n, "the declared output has rank %d, not the indices' rank + 1",
                            y->shape.rank);
        if (!one_hot_axis(n, y->shape.rank, &axis, d)) return false;
        *depth = y->shape.dim[axis];
        if (*depth < 1) return kl_error(d, n, "declared depth %" PRId64 " must be positive", *depth);
        return true;
    }
    if (!kl_infer_need_const(n, 1, d)) return false;
    if (kl_shape_numel(&v->shape) != 1) return kl_error(d, n, "depth must be a scalar");
    *depth = kl_dtype_is_float(v->dtype) ? kl_index_from_double(kl_value_const_float(v, 0))
                                         : kl_value_const_int(v, 0);
    if (*depth < 1) return kl_error(d, n, "depth %" PRId64 " must be positive", *depth);
    return true;
}

static bool one_hot_axis(kl_node *n, int out_rank, int *axis, kl_diag *d) {
    int64_t given = kl_attr_int(n, "axis", -1);
    if (!kl_axis_normalize(given, out_rank, axis))
        return kl_error(d, n, "axis %" PRId64 " is out of range for a result of rank %d", given,
                        out_rank);
    return true;
}

static bool one_hot_infer(kl_node *n, kl_diag *d) {
    int64_t depth;
    int axis;
    if (!kl_infer_need_input(n, 0, d) || !one_hot_depth(n, &depth, d) ||
        !kl_move_need_data(n, 2, d))
        return false;
    const kl_shape *ind = &n->inputs[0]->shape;
    if (kl_shape_numel(&n->inputs[2]->shape) != 2)
        return kl_error(d, n, "values must hold two elements [off, on]");
    if (ind->rank + 1 > KL_MAX_RANK) return kl_error(d, n, "indices have too high a rank");
    if (!one_hot_axis(n, ind->rank + 1, &axis, d)) return false;
    kl_shape out = {.rank = ind->rank + 1};
    for (int i = 0, r = 0; i < out.rank; i++) out.dim[i] = i == axis ? depth : ind->dim[r++];
    return kl_infer_set(n, 0, n->inputs[2]->dtype, &out);
}

/* out[i] = indices[i without axis] == i_axis ? on : off (negative indices count from depth) */
static bool one_hot_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    int64_t depth;
    int axis;
    if (!one_hot_depth(n, &depth, d)) return false;
    kl_buffer *ind = kl_lower_buffer(L, n->inputs[0]), *values = kl_lower_buffer(L, n->inputs[2]);
    if (!one_hot_axis(n, ind->shape.rank + 1, &axis, d)) return false;
    if (kl_input_at_run_time(n, 1)) { /* the given depth (truncated, as a float) is the declared */
        kl_buffer *given = kl_lower_buffer(L, n->inputs[1]);
        kl_expr *idx[KL_MAX_RANK];
        for (int i = 0; i < given->shape.rank; i++) idx[i] = kl_e_idx(a, 0);
        kl_expr *v = kl_e_load(a, given, idx);
        kl_expr *ok;
        if (kl_dtype_is_float(given->dtype)) /* depth <= v < depth + 1 */
            ok = kl_e_and(a, kl_e_binary(a, KL_GE, v, kl_e_const_f(a, given->dtype, (double)depth)),
                          kl_e_binary(a, KL_LT, v, kl_e_const_f(a, given->dtype, (double)depth + 1)));
        else
            ok = kl_e_binary(a, KL_EQ, kl_e_cast(a, KL_I64, v), kl_e_idx(a, depth));
        kl_lower_shape_check(L, n, ok);
    }
    kl_kernel *k = kl_move_kernel(L, n, "one_hot", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *ind_idx[KL_MAX_RANK];
    for (int i = 0, r = 0; i < ind->shape.rank + 1; i++)
        if (i != axis) ind_idx[r++] = kl_e_iv(a, i);
    kl_expr *hot = wrap_index(a, kl_e_load(a, ind, ind_idx), depth);
    kl_expr *value_idx[KL_MAX_RANK];
    for (int i = 0; i < values->shape.rank; i++) value_idx[i] = kl_e_idx(a, 0);
    kl_expr *off = kl_e_load(a, values, value_idx);
    value_idx[values->shape.rank - 1] = kl_e_idx(a, 1);
    kl_expr *on = kl_e_load(a, values, value_idx);
    k->value = kl_e_select(a, kl_e_binary(a, KL_EQ, hot, kl_e_iv(a, axis)), on, off);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- CumSum */

static const char *const cumsum_attrs[] = {"exclusive", "reverse", NULL};

static bool cumsum_axis(kl_node *n, int *axis, kl_diag *d) {
    if (!kl_infer_need_const(n, 1, d)) return false;
    const kl_value *v = n->inputs[1];
    if (kl_shape_numel(&v->shape) != 1) return kl_error(d, n, "axis must be a scalar");
    int64_t given = kl_value_const_int(v, 0);
    if (!kl_axis_normalize(given, n->inputs[0]->shape.rank, axis))
        return kl_error(d, n, "axis %" PRId64 " is out of range for input %s", given,
                        KL_SHAPE_TEXT(&n->inputs[0]->shape));
    return true;
}

static bool cumsum_infer(kl_node *n, kl_diag *d) {
    int axis;
    if (!kl_infer_need_input(n, 0, d)) return false;
    if (kl_input_at_run_time(n, 1)) { /* one result per axis, chosen at run time */
        const kl_value *v = n->inputs[1];
        if (kl_shape_numel(&v->shape) != 1 || !kl_dtype_is_signed_int(v->dtype))
            return kl_error(d, n, "axis must be an integer scalar");
        if (n->inputs[0]->shape.rank < 1) return kl_error(d, n, "input must have rank 1 or more");
    } else if (!cumsum_axis(n, &axis, d)) {
        return false;
    }
    kl_dtype t = n->inputs[0]->dtype;
    if (t == KL_BOOL || t == KL_STRING || kl_dtype_size(t) == 0)
        return kl_error(d, n, "%s of %s is not supported", n->op_type, kl_dtype_name(t));
    return kl_infer_set(n, 0, t, &n->inputs[0]->shape);
}

/* out[i] = x[j] summed (or multiplied) over j <= i (j < i exclusive; j >= i, j > i reversed):
 * a reduction along the axis that replaces the elements outside the prefix by the neutral one. */
static void lower_cumulative_along(kl_lower *L, kl_node *n, kl_reduce reduce, int axis,
                                   kl_buffer *out) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    int rank = x->shape.rank;
    kl_kernel *k = kl_move_kernel(L, n, "cumulative", out);
    k->n_loops = rank + 1;
    k->extent[rank] = x->shape.dim[axis];
    k->reduce = reduce;
    k->acc_dtype = x->dtype;
    kl_expr *j = kl_e_iv(a, rank), *i = kl_e_iv(a, axis);
    bool exclusive = kl_attr_int(n, "exclusive", 0), reverse = kl_attr_int(n, "reverse", 0);
    kl_binop keep = reverse ? (exclusive ? KL_GT : KL_GE) : (exclusive ? KL_LT : KL_LE);
    kl_expr **idx = kl_lower_ivs(L, rank);
    idx[axis] = j;
    int64_t neutral = reduce == KL_RED_PROD ? 1 : 0;
    k->value = kl_e_select(a, kl_e_binary(a, keep, j, i), kl_e_load(a, x, idx),
                           kl_move_const(a, x->dtype, (double)neutral, neutral));
    kl_move_add_kernel(L, k);
}

/* The axis given at run time: the result along every axis, then the given one's (an axis out
 * of range: KILN_E_SHAPE). */
static void lower_cumulative_any_axis(kl_lower *L, kl_node *n, kl_reduce reduce) {
    kl_arena *a = L->arena;
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    int rank = out->shape.rank;
    kl_expr *given = kl_lower_int_at(L, n, 1, 0);
    kl_expr *axis = kl_e_select(a, kl_e_binary(a, KL_LT, given, kl_e_idx(a, 0)),
                                kl_e_addc(a, given, rank), given);
    kl_lower_shape_check(L, n, kl_e_in_range(a, axis, rank));
    if (rank == 1) {
        lower_cumulative_along(L, n, reduce, 0, out);
        return;
    }
    kl_buffer *along[KL_MAX_RANK];
    for (int ax = 0; ax < rank; ax++) {
        along[ax] = kl_lower_temp(L, "cumulative", out->dtype, &out->shape);
        lower_cumulative_along(L, n, reduce, ax, along[ax]);
    }
    kl_kernel *k = kl_move_kernel(L, n, "cumulative_axis", out);
    kl_expr *v = kl_e_load(a, along[rank - 1], kl_lower_ivs(L, rank));
    for (int ax = rank - 2; ax >= 0; ax--)
        v = kl_e_select(a, kl_e_binary(a, KL_EQ, axis, kl_e_idx(a, ax)),
                        kl_e_load(a, along[ax], kl_lower_ivs(L, rank)), v);
    k->value = v;
    kl_move_add_kernel(L, k);
}

static bool lower_cumulative(kl_lower *L, kl_node *n, kl_diag *d, kl_reduce reduce) {
    if (kl_input_at_run_time(n, 1)) {
        lower_cumulative_any_axis(L, n, reduce);
        return true;
    }
    int axis;
    if (!cumsum_axis(n, &axis, d)) return false;
    lower_cumulative_along(L, n, reduce, axis, kl_lower_buffer(L, n->outputs[0]));
    return true;
}

static bool cumsum_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_cumulative(L, n, d, KL_RED_SUM);
}

static bool cumprod_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_cumulative(L, n, d, KL_RED_PROD);
}

/* ---------------------------------------------------------------- Trilu */

static const char *const trilu_attrs[] = {"upper", NULL};

/* k only moves the diagonal, not the shape: it may be a run-time scalar. */
static bool trilu_check_k(kl_node *n, kl_diag *d) {
    kl_value *k = kl_node_input(n, 1);
    if (!k) return true;
    if (!kl_infer_need_input(n, 1, d)) return false;
    if (kl_shape_numel(&k->shape) != 1) return kl_error(d, n, "k must be a scalar");
    if (!kl_dtype_is_signed_int(k->dtype) && !kl_dtype_is_unsigned_int(k->dtype))
        return kl_error(d, n, "k must be an integer, not %s", kl_dtype_name(k->dtype));
    return true;
}

static bool trilu_infer(kl_node *n, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d) || !trilu_check_k(n, d)) return false;
    if (n->inputs[0]->shape.rank < 2) return kl_error(d, n, "input must have rank 2 or more");
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
}

/* The diagonal offset as an int64 expression: 0 when absent, folded when constant. */
static kl_expr *trilu_k(kl_lower *L, kl_node *n) {
    kl_value *k = kl_node_input(n, 1);
    if (!k) return kl_e_idx(L->arena, 0);
    if (k->data) return kl_e_idx(L->arena, kl_value_const_int(k, 0));
    kl_buffer *b = kl_lower_buffer(L, k);
    kl_expr *zero[KL_MAX_RANK];
    for (int i = 0; i < b->shape.rank; i++) zero[i] = kl_e_idx(L->arena, 0);
    return kl_e_cast(L->arena, KL_I64, kl_e_load(L->arena, b, zero));
}

/* Keep x[..., i, j] where j - i >= k (upper) or j - i <= k (lower); zero elsewhere. */
static bool trilu_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    int rank = x->shape.rank;
    kl_kernel *k = kl_move_kernel(L, n, "trilu", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *diff = kl_e_add(a, kl_e_iv(a, rank - 1), kl_e_mulc(a, kl_e_iv(a, rank - 2), -1));
    kl_expr *keep = kl_e_binary(a, kl_attr_int(n, "upper", 1) ? KL_GE : KL_LE, diff, trilu_k(L, n));
    k->value = kl_e_select(a, keep, kl_e_load(a, x, kl_lower_ivs(L, rank)),
                           kl_move_const(a, x->dtype, 0.0, 0));
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- the family's table */

const kl_op kl_ops_indexing[] = {
    {"", "GatherElements", 11, KL_OPSET_LATEST, axis_attrs, gather_elements_infer,
     gather_elements_lower},
    {"", "GatherND", 11, KL_OPSET_LATEST, gather_nd_attrs, gather_nd_infer, gather_nd_lower},
    {"", "ScatterElements", 11, KL_OPSET_LATEST, scatter_elements_attrs, scatter_elements_infer,
     scatter_elements_lower},
    {"", "Scatter", 9, 10, axis_attrs, scatter_elements_infer, scatter_elements_lower},
    {"", "ScatterND", 11, KL_OPSET_LATEST, scatter_nd_attrs, scatter_nd_infer, scatter_nd_lower},
    {"", "OneHot", 9, KL_OPSET_LATEST, axis_attrs, one_hot_infer, one_hot_lower},
    {"", "CumSum", 11, KL_OPSET_LATEST, cumsum_attrs, cumsum_infer, cumsum_lower},
    {"", "CumProd", 26, KL_OPSET_LATEST, cumsum_attrs, cumsum_infer, cumprod_lower},
    {"", "Trilu", 14, KL_OPSET_LATEST, trilu_attrs, trilu_infer, trilu_lower},
    {"", "TensorScatter", 24, KL_OPSET_LATEST, tensor_scatter_attrs, tensor_scatter_infer,
     tensor_scatter_lower},
    {0},
};
