/*
 * movement.c — operators that move elements to new positions:
 * Transpose Concat Split Slice Gather.
 *
 * Each lowers to kernels whose parallel loops walk the output (or, for Concat, each input) in
 * row-major order, so the innermost loop writes contiguous memory; the element read is an
 * index expression over those loops (a permutation, an offset, an affine start + iv * step,
 * or a loaded index for Gather). Nothing here looks at the element type: one lowering serves
 * every type kiln can hold.
 */
#include <string.h>

#include "move_util.h"

/* ---------------------------------------------------------------- Transpose */

static const char *const transpose_attrs[] = {"perm", NULL};

/* perm[i] = the input axis that becomes output axis i; reversed axes by default. */
static bool transpose_perm(kl_node *n, int rank, int perm[KL_MAX_RANK], kl_diag *d) {
    kl_int_list given = kl_int_list_from_attr(n, "perm");
    if (given.n < 0) {
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return true;
    }
    if (given.n != rank)
        return kl_error(d, n, "perm has %" PRId64 " entries but the input has rank %d", given.n,
                        rank);
    bool seen[KL_MAX_RANK] = {0};
    for (int i = 0; i < rank; i++) {
        int64_t p = kl_int_list_at(&given, i);
        if (p < 0 || p >= rank || seen[p])
            return kl_error(d, n, "perm is not a permutation of 0..%d (entry %d is %" PRId64 ")",
                            rank - 1, i, p);
        seen[p] = true;
        perm[i] = (int)p;
    }
    return true;
}

static bool transpose_infer(kl_node *n, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape;
    int perm[KL_MAX_RANK];
    if (!transpose_perm(n, in->rank, perm, d)) return false;
    kl_shape out = {.rank = in->rank};
    for (int i = 0; i < in->rank; i++) out.dim[i] = in->dim[perm[i]];
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

static bool transpose_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    int perm[KL_MAX_RANK];
    if (!transpose_perm(n, in->shape.rank, perm, d)) return false;
    kl_kernel *k = kl_move_kernel(L, n, "transpose", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < in->shape.rank; i++) idx[perm[i]] = kl_e_iv(L->arena, i);
    k->value = kl_e_load(L->arena, in, idx);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- Concat */

static const char *const axis_attrs[] = {"axis", NULL};

/* Concat's axis: default 1 in opset 1, required after; negative counts from the end. */
static bool concat_axis(kl_node *n, int rank, int *axis, kl_diag *d) {
    const kl_attr *a = kl_attr_find(n, "axis");
    if (!a && n->opset >= 4) return kl_error(d, n, "attribute 'axis' is required");
    int64_t given = a ? a->i : 1;
    if (!kl_axis_normalize(given, rank, axis))
        return kl_error(d, n, "axis %" PRId64 " is out of range for inputs of rank %d", given,
                        rank);
    return true;
}

static bool concat_infer(kl_node *n, kl_diag *d) {
    if (n->n_inputs < 1) return kl_error(d, n, "Concat needs at least one input");
    if (!kl_move_need_data(n, 0, d)) return false;
    const kl_value *first = n->inputs[0];
    int axis;
    if (!concat_axis(n, first->shape.rank, &axis, d)) return false;
    kl_shape out = first->shape;
    for (int i = 1; i < n->n_inputs; i++) {
        if (!kl_move_need_data(n, i, d)) return false;
        const kl_value *v = n->inputs[i];
        if (v->dtype != first->dtype)
            return kl_error(d, n, "input %d is %s but input 0 is %s", i, kl_dtype_name(v->dtype),
                            kl_dtype_name(first->dtype));
        bool same = v->shape.rank == out.rank;
        for (int k = 0; same && k < out.rank; k++) same = k == axis || v->shape.dim[k] == out.dim[k];
        if (!same)
            return kl_error(d, n, "input %d %s does not match input 0 %s outside axis %d", i,
                            KL_SHAPE_TEXT(&v->shape), KL_SHAPE_TEXT(&first->shape), axis);
        out.dim[axis] += v->shape.dim[axis];
    }
    return kl_infer_set(n, 0, first->dtype, &out);
}

/* One kernel per input, walking that input and writing its slab of the output. */
static bool concat_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    int axis;
    if (!concat_axis(n, out->shape.rank, &axis, d)) return false;
    int64_t offset = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        kl_buffer *in = kl_lower_buffer(L, n->inputs[i]);
        kl_kernel *k = kl_move_kernel(L, n, "concat", in);
        k->out = out;
        k->out_idx[axis] = kl_e_addc(L->arena, k->out_idx[axis], offset);
        k->value = kl_e_load(L->arena, in, kl_lower_ivs(L, in->shape.rank));
        kl_move_add_kernel(L, k);
        offset += in->shape.dim[axis];
    }
    return true;
}

/* ---------------------------------------------------------------- Split */

static const char *const split_attrs[] = {"axis", "split", "num_outputs", NULL};

/* Where the output sizes come from: an explicit list (the `split` input in opset 1 and from 13,
 * the attribute in between), or equal parts. */
typedef struct split_plan {
    int axis;
    int64_t dim;          /* size of the input along axis */
    kl_int_list sizes;    /* explicit sizes, or n = -1 */
    int64_t chunk;        /* equal parts: every output but the last */
} split_plan;

static bool split_sizes_given(kl_node *n, kl_int_list *sizes, kl_diag *d) {
    if (n->opset >= 2 && n->opset < 13) {
        *sizes = kl_int_list_from_attr(n, "split");
        return true;
    }
    if (!kl_int_list_from_input(n, 1, "split", sizes, d)) return false;
    if (sizes->n < 0 && n->opset < 2) *sizes = kl_int_list_from_attr(n, "split");
    return true;
}

/* Equal parts: before opset 18 they must divide the axis; from 18 the last may be smaller. */
static bool split_equal(kl_node *n, split_plan *p, kl_diag *d) {
    int64_t parts = n->n_outputs;
    if (n->opset >= 18) {
        const kl_attr *a = kl_attr_find(n, "num_outputs");
        if (!a) return kl_error(d, n, "either input 'split' or attribute 'num_outputs' is required");
        if (a->i != parts)
            return kl_error(d, n, "num_outputs is %" PRId64 " but the node has %" PRId64
                                  " outputs", a->i, parts);
        p->chunk = (p->dim + parts - 1) / parts;
        if (p->chunk * (parts - 1) > p->dim)
            return kl_error(d, n, "axis %d of size %" PRId64 " cannot be split into %" PRId64
                                  " parts", p->axis, p->dim, parts);
        return true;
    }
    if (p->dim % parts != 0)
        return kl_error(d, n, "axis %d of size %" PRId64 " cannot be split into %" PRId64
                              " equal parts", p->axis, p->dim, parts);
    p->chunk = p->dim / parts;
    return true;
}

static bool split_make_plan(kl_node *n, split_plan *p, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape;
    int64_t given = kl_attr_int(n, "axis", 0);
    if (!kl_axis_normalize(given, in->rank, &p->axis))
        return kl_error(d, n, "axis %" PRId64 " is out of range for input %s", given,
                        KL_SHAPE_TEXT(in));
    p->dim = in->dim[p->axis];
    p->sizes = (kl_int_list){.n = -1};
    if (!split_sizes_given(n, &p->sizes, d)) return false;
    if (p->sizes.n < 0) return split_equal(n, p, d);
    if (p->sizes.n != n->n_outputs)
        return kl_error(d, n, "split has %" PRId64 " sizes but the node has %d outputs",
                        p->sizes.n, n->n_outputs);
    int64_t total = 0;
    for (int64_t i = 0; i < p->sizes.n; i++) {
        int64_t s = kl_int_list_at(&p->sizes, i);
        if (s < 0) return kl_error(d, n, "split[%" PRId64 "] = %" PRId64 " is negative", i, s);
        total += s;
    }
    if (total != p->dim)
        return kl_error(d, n, "split sizes add up to %" PRId64 " but axis %d has size %" PRId64,
                        total, p->axis, p->dim);
    return true;
}

static int64_t split_size(const split_plan *p, int64_t i, int64_t n_outputs) {
    if (p->sizes.n >= 0) return kl_int_list_at(&p->sizes, i);
    return i < n_outputs - 1 ? p->chunk : p->dim - p->chunk * (n_outputs - 1);
}

static bool split_infer(kl_node *n, kl_diag *d) {
    split_plan p;
    if (!split_make_plan(n, &p, d)) return false;
    for (int i = 0; i < n->n_outputs; i++) {
        kl_shape s = n->inputs[0]->shape;
        s.dim[p.axis] = split_size(&p, i, n->n_outputs);
        if (!kl_infer_set(n, i, n->inputs[0]->dtype, &s)) return false;
    }
    return true;
}

/* One kernel per output, reading its slab of the input. */
static bool split_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    split_plan p;
    if (!split_make_plan(n, &p, d)) return false;
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    int64_t offset = 0;
    for (int i = 0; i < n->n_outputs; i++) {
        int64_t size = split_size(&p, i, n->n_outputs);
        if (n->outputs[i]) {
            kl_kernel *k = kl_move_kernel(L, n, "split", kl_lower_buffer(L, n->outputs[i]));
            kl_expr **idx = kl_lower_ivs(L, in->shape.rank);
            idx[p.axis] = kl_e_addc(L->arena, idx[p.axis], offset);
            k->value = kl_e_load(L->arena, in, idx);
            kl_move_add_kernel(L, k);
        }
        offset += size;
    }
    return true;
}

/* ---------------------------------------------------------------- Slice */

static const char *const slice_attrs[] = {"starts", "ends", "axes", NULL};

/* What a Slice reads along each input axis: start + i * step for i < the output's size. */
typedef struct slice_plan {
    int64_t start[KL_MAX_RANK], step[KL_MAX_RANK];
    kl_shape out;
} slice_plan;

/* starts, ends, axes, steps: attributes before opset 10 (no steps), constant inputs after. */
static bool slice_lists(kl_node *n, kl_int_list l[4], kl_diag *d) {
    if (n->opset < 10) {
        l[0] = kl_int_list_from_attr(n, "starts");
        l[1] = kl_int_list_from_attr(n, "ends");
        l[2] = kl_int_list_from_attr(n, "axes");
        l[3] = (kl_int_list){.n = -1};
    } else {
        static const char *const what[4] = {"starts", "ends", "axes", "steps"};
        for (int i = 0; i < 4; i++)
            if (!kl_int_list_from_input(n, i + 1, what[i], &l[i], d)) return false;
    }
    if (l[0].n < 0 || l[1].n < 0) return kl_error(d, n, "starts and ends are required");
    if (l[1].n != l[0].n || (l[2].n >= 0 && l[2].n != l[0].n) || (l[3].n >= 0 && l[3].n != l[0].n))
        return kl_error(d, n, "starts, ends, axes and steps must have the same length");
    return true;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* numpy's rules: negative positions count from the end, then positions are clamped to the
 * axis (to [0, dim] going forward, [-1, dim-1] going backward) so out-of-range ends such as
 * INT64_MAX mean "to the end". */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first,
                       int64_t *count) {
    *first = 0;
    *count = 0;
    if (dim == 0) return;
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
        start = clamp64(start, 0, dim);
        end = clamp64(end, 0, dim);
        *count = end > start ? (end - start + step - 1) / step : 0;
    } else {
        start = clamp64(start, 0, dim - 1);
        end = clamp64(end, -1, dim - 1);
        *count = start > end ? (start - end - step - 1) / -step : 0;
    }
    *first = start;
}

static bool slice_make_plan(kl_node *n, slice_plan *p, kl_diag *d) {
    kl_int_list l[4];
    if (!kl_move_need_data(n, 0, d) || !slice_lists(n, l, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape;
    p->out = *in;
    for (int i = 0; i < in->rank; i++) p->start[i] = 0, p->step[i] = 1;
    bool seen[KL_MAX_RANK] = {0};
    for (int64_t k = 0; k < l[0].n; k++) {
        int64_t given = l[2].n >= 0 ? kl_int_list_at(&l[2], k) : k;
        int axis;
        if (!kl_axis_normalize(given, in->rank, &axis))
            return kl_error(d, n, "axis %" PRId64 " is out of range for input %s", given,
                            KL_SHAPE_TEXT(in));
        if (seen[axis]) return kl_error(d, n, "axis %d is sliced twice", axis);
        seen[axis] = true;
        int64_t step = l[3].n >= 0 ? kl_int_list_at(&l[3], k) : 1;
        if (step == 0) return kl_error(d, n, "step along axis %d is 0", axis);
        slice_axis(in->dim[axis], kl_int_list_at(&l[0], k), kl_int_list_at(&l[1], k), step,
                   &p->start[axis], &p->out.dim[axis]);
        p->step[axis] = step;
    }
    return true;
}

static bool slice_infer(kl_node *n, kl_diag *d) {
    slice_plan p;
    if (!slice_make_plan(n, &p, d)) return false;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &p.out);
}

static bool slice_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    slice_plan p;
    if (!slice_make_plan(n, &p, d)) return false;
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    kl_kernel *k = kl_move_kernel(L, n, "slice", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < in->shape.rank; i++)
        idx[i] = kl_e_addc(L->arena, kl_e_mulc(L->arena, kl_e_iv(L->arena, i), p.step[i]),
                           p.start[i]);
    k->value = kl_e_load(L->arena, in, idx);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- Gather */

static bool gather_axis(kl_node *n, int rank, int *axis, kl_diag *d) {
    int64_t given = kl_attr_int(n, "axis", 0);
    if (!kl_axis_normalize(given, rank, axis))
        return kl_error(d, n, "axis %" PRId64 " is out of range for data of rank %d", given, rank);
    return true;
}

/* Constant indices are checked here, so that compiled code never reads out of bounds. */
static bool gather_check_indices(kl_node *n, int64_t limit, kl_diag *d) {
    const kl_value *ind = n->inputs[1];
    if (!ind->data) return true;
    for (int64_t i = 0, count = kl_shape_numel(&ind->shape); i < count; i++) {
        int64_t v = kl_value_const_int(ind, i);
        if (v < -limit || v >= limit)
            return kl_error(d, n, "index %" PRId64 " is out of range [-%" PRId64 ", %" PRId64 ")",
                            v, limit, limit);
    }
    return true;
}

static bool gather_infer(kl_node *n, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_shape *data = &n->inputs[0]->shape, *ind = &n->inputs[1]->shape;
    kl_dtype it = n->inputs[1]->dtype;
    if (it != KL_I32 && it != KL_I64)
        return kl_error(d, n, "indices must be int32 or int64, not %s", kl_dtype_name(it));
    int axis;
    if (!gather_axis(n, data->rank, &axis, d)) return false;
    if (data->rank - 1 + ind->rank > KL_MAX_RANK)
        return kl_error(d, n, "result would have rank %d; kiln supports up to %d",
                        data->rank - 1 + ind->rank, KL_MAX_RANK);
    if (!gather_check_indices(n, data->dim[axis], d)) return false;
    /* data[:axis] + indices.shape + data[axis+1:] */
    kl_shape out = {.rank = data->rank - 1 + ind->rank};
    int r = 0;
    for (int i = 0; i < axis; i++) out.dim[r++] = data->dim[i];
    for (int i = 0; i < ind->rank; i++) out.dim[r++] = ind->dim[i];
    for (int i = axis + 1; i < data->rank; i++) out.dim[r++] = data->dim[i];
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* An index loaded at run time: negative values count from the end; values still out of
 * [0, limit) (invalid input) are clamped so that the read stays inside the buffer. */
static kl_expr *wrapped_index(kl_lower *L, kl_expr *index, int64_t limit, bool clamp) {
    kl_arena *a = L->arena;
    index = kl_e_cast(a, KL_I64, index);
    kl_expr *negative = kl_e_binary(a, KL_LT, index, kl_e_idx(a, 0));
    index = kl_e_select(a, negative, kl_e_addc(a, index, limit), index);
    if (!clamp) return index;
    index = kl_e_binary(a, KL_MAX, index, kl_e_idx(a, 0));
    return kl_e_binary(a, KL_MIN, index, kl_e_idx(a, limit - 1));
}

static bool gather_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_buffer *data = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *ind = kl_lower_buffer(L, n->inputs[1]);
    int axis, q = ind->shape.rank;
    if (!gather_axis(n, data->shape.rank, &axis, d)) return false;
    kl_kernel *k = kl_move_kernel(L, n, "gather", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *ind_idx[KL_MAX_RANK], *data_idx[KL_MAX_RANK];
    for (int i = 0; i < q; i++) ind_idx[i] = kl_e_iv(L->arena, axis + i);
    for (int i = 0; i < axis; i++) data_idx[i] = kl_e_iv(L->arena, i);
    data_idx[axis] = wrapped_index(L, kl_e_load(L->arena, ind, ind_idx), data->shape.dim[axis],
                                   n->inputs[1]->data == NULL);
    for (int i = axis + 1; i < data->shape.rank; i++)
        data_idx[i] = kl_e_iv(L->arena, i - 1 + q);
    k->value = kl_e_load(L->arena, data, data_idx);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- the family's table */

const kl_op kl_ops_movement[] = {
    {"", "Transpose", 1, KL_OPSET_LATEST, transpose_attrs, transpose_infer, transpose_lower},
    {"", "Concat", 1, KL_OPSET_LATEST, axis_attrs, concat_infer, concat_lower},
    {"", "Split", 1, KL_OPSET_LATEST, split_attrs, split_infer, split_lower},
    {"", "Slice", 1, KL_OPSET_LATEST, slice_attrs, slice_infer, slice_lower},
    {"", "Gather", 1, KL_OPSET_LATEST, axis_attrs, gather_infer, gather_lower},
    {0},
};
