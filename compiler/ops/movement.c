/*
 * movement.c — operators that move elements to new positions:
 * Transpose Concat Split Slice Gather Tile Pad DepthToSpace SpaceToDepth ReverseSequence.
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
static bool transpose_perm(const kl_node *n, int rank, int perm[KL_MAX_RANK], kl_diag *d) {
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

/* A transpose that keeps every dim of size > 1 in its order moves no element: the bytes are the
 * same, only the shape is new (passes/layout.c leaves such ones after reductions). */
static bool transpose_is_view(const kl_node *n) {
    const kl_value *x = kl_node_input(n, 0);
    int perm[KL_MAX_RANK], last = -1;
    kl_diag quiet;
    kl_diag_init(&quiet, "");
    bool ok = x && x->has_shape && transpose_perm(n, x->shape.rank, perm, &quiet);
    kl_diag_free(&quiet);
    if (!ok) return false;
    for (int i = 0; i < x->shape.rank; i++) {
        if (x->shape.dim[perm[i]] == 1) continue;
        if (perm[i] < last) return false;
        last = perm[i];
    }
    return true;
}

static bool transpose_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    if (transpose_is_view(n)) return kl_lower_view(L, n, n->inputs[0], n->outputs[0]);
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
        for (int k = 0; same && k < out.rank; k++)
            same = k == axis || v->shape.dim[k] == out.dim[k];
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
    const kl_node *declared; /* sizes given at run time: the declared outputs' sizes (checked) */
    bool counted;         /* sizes given at run time, no output declared: each output's length
                             depends on the data (ops/data_dependent.c), up to the axis's */
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
        if (!a)
            return kl_error(d, n, "either input 'split' or attribute 'num_outputs' is required");
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

/* Sizes given at run time: every output must have a declared shape, the input's but along the
 * axis, and those sizes add up to the axis. */
static bool split_plan_declared(kl_node *n, split_plan *p, kl_diag *d) {
    const kl_value *sizes = n->inputs[1];
    if (sizes->shape.rank != 1 || sizes->shape.dim[0] != n->n_outputs ||
        !kl_dtype_is_signed_int(sizes->dtype))
        return kl_error(d, n, "split must be a 1-D integer tensor of %d sizes", n->n_outputs);
    bool any_declared = false;
    for (int i = 0; i < n->n_outputs; i++)
        any_declared |= n->outputs[i] && (n->outputs[i]->shape_declared ||
                                          (n->outputs[i]->has_shape && !n->outputs[i]->data_dependent));
    if (!any_declared) {
        p->counted = true;
        return true;
    }
    int64_t total = 0;
    for (int i = 0; i < n->n_outputs; i++) {
        const kl_value *y = n->outputs[i];
        if (!y) return kl_error(d, n, "split sizes given at run time need every output");
        if (!y->shape_declared && !y->has_shape) {
            char hint[512];
            kl_value_binding_hint(d, sizes, hint, sizeof hint);
            return kl_error(d, n, "input 1 ('%s', the split sizes) is given at run time: kiln "
                            "needs it as a compile-time constant, or the model must declare the "
                            "shape of output '%s'%s", sizes->name, y->name, hint);
        }
        kl_shape expect = n->inputs[0]->shape;
        expect.dim[p->axis] = y->shape.dim[p->axis];
        if (y->shape.rank != expect.rank || !kl_shape_equal(&y->shape, &expect))
            return kl_error(d, n, "declared output '%s' is not a part of the input along axis %d",
                            y->name, p->axis);
        total += y->shape.dim[p->axis];
    }
    if (total != p->dim)
        return kl_error(d, n, "the declared outputs add up to %" PRId64 " along axis %d of "
                        "size %" PRId64, total, p->axis, p->dim);
    p->declared = n;
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
    p->declared = NULL;
    p->counted = false;
    if (n->opset >= 13 && kl_input_at_run_time(n, 1)) return split_plan_declared(n, p, d);
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
    if (p->declared) return p->declared->outputs[i]->shape.dim[p->axis];
    if (p->sizes.n >= 0) return kl_int_list_at(&p->sizes, i);
    return i < n_outputs - 1 ? p->chunk : p->dim - p->chunk * (n_outputs - 1);
}

static bool split_infer(kl_node *n, kl_diag *d) {
    split_plan p;
    if (!split_make_plan(n, &p, d)) return false;
    for (int i = 0; i < n->n_outputs; i++) {
        kl_shape s = n->inputs[0]->shape;
        if (p.counted) { /* each part at most the whole axis */
            if (!kl_infer_data_dependent(n, i, n->inputs[0]->dtype, &s, p.axis)) return false;
            continue;
        }
        s.dim[p.axis] = split_size(&p, i, n->n_outputs);
        if (!kl_infer_set(n, i, n->inputs[0]->dtype, &s)) return false;
    }
    return true;
}

/* Sizes given at run time for outputs of data-dependent length: each part's length is its
 * size (a count of its own), read at the offset the sizes before it add up to; sizes that are
 * negative or do not add up to the axis make predict return KILN_E_SHAPE first. */
static void split_counted_lower(kl_lower *L, kl_node *n, const split_plan *p) {
    kl_arena *a = L->arena;
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    kl_expr *ok = NULL, *offset = kl_e_idx(a, 0);
    for (int i = 0; i < n->n_outputs; i++) {
        kl_expr *size = kl_lower_int_at(L, n, 1, i);
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_GE, size, kl_e_idx(a, 0)));
        offset = kl_e_add(a, offset, size);
    }
    kl_lower_shape_check(L, n, kl_e_and(a, ok, kl_e_binary(a, KL_EQ, offset, kl_e_idx(a, p->dim))));
    offset = kl_e_idx(a, 0);
    for (int i = 0; i < n->n_outputs; i++) {
        kl_value *y = n->outputs[i];
        kl_expr *size = kl_lower_int_at(L, n, 1, i);
        if (y) {
            kl_buffer *count = kl_lower_dd_set_length(L, n, y, size);
            kl_buffer *out = kl_lower_buffer(L, y);
            kl_kernel *k = kl_move_kernel(L, n, "split", out);
            k->extent_expr[p->axis] = kl_lower_dd_length(L, count);
            kl_expr **idx = kl_lower_ivs(L, in->shape.rank);
            kl_lower_dd_store(L, k, out, p->axis, count, idx);
            idx = kl_lower_ivs(L, in->shape.rank);
            idx[p->axis] = kl_e_add(a, idx[p->axis], offset);
            k->value = kl_e_load(a, in, idx);
            kl_move_add_kernel(L, k);
        }
        offset = kl_e_add(a, offset, size);
    }
}

/* One kernel per output, reading its slab of the input. */
static bool split_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    split_plan p;
    if (!split_make_plan(n, &p, d)) return false;
    if (p.counted) {
        split_counted_lower(L, n, &p);
        return true;
    }
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    if (p.declared) {
        kl_expr *ok = NULL;
        for (int i = 0; i < n->n_outputs; i++)
            ok = kl_e_and(L->arena, ok, kl_e_binary(L->arena, KL_EQ, kl_lower_int_at(L, n, 1, i),
                                                    kl_e_idx(L->arena, split_size(&p, i, n->n_outputs))));
        kl_lower_shape_check(L, n, ok);
    }
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
    /* ceil(span / |step|) without adding the step first: a model's step may be near
       INT64_MAX or INT64_MIN, and any |step| >= span takes one element */
    if (step > 0) {
        start = clamp64(start, 0, dim);
        end = clamp64(end, 0, dim);
        int64_t span = end - start;
        *count = span > 0 ? span / step + (span % step != 0) : 0;
    } else {
        start = clamp64(start, 0, dim - 1);
        end = clamp64(end, -1, dim - 1);
        int64_t span = start - end, s = step < -dim ? dim : -step;
        *count = span > 0 ? span / s + (span % s != 0) : 0;
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

/* ---- starts, ends, axes or steps given at run time, where the output's shape is declared:
 * the kernel reads from positions computed from the given values (numpy's rules, as
 * slice_axis), and a check holds their lengths to the declared shape (KILN_E_SHAPE).
 * Where no shape is declared (kl_value.none_declared) and the Slice lists one axis, with the
 * axes a constant, the output's length along it depends on the data (ops/data_dependent.c):
 * at most the input's, as `x[:, :n]` exports. */

static bool slice_at_run_time(kl_node *n) {
    if (n->opset < 10) return false;
    for (int i = 1; i <= 4; i++)
        if (kl_input_at_run_time(n, i)) return true;
    return false;
}

/* The axis of a Slice given at run time whose output's length along it depends on the data,
 * or -1 (see above). */
static int slice_counted_axis(const kl_node *n) {
    const kl_value *y = n->outputs[0], *starts = kl_node_input(n, 1), *axes = kl_node_input(n, 3);
    bool counted = y->none_declared || (y->data_dependent && y->dd_source == y);
    if (!counted || !starts || kl_shape_numel(&starts->shape) != 1 || (axes && !axes->data) ||
        (axes && kl_shape_numel(&axes->shape) != 1))
        return -1;
    int axis, rank = n->inputs[0]->shape.rank;
    return kl_axis_normalize(axes ? kl_value_const_int(axes, 0) : 0, rank, &axis) ? axis : -1;
}

static bool slice_infer_declared(kl_node *n, kl_diag *d) {
    const kl_value *starts = kl_node_input(n, 1);
    if (!starts || starts->shape.rank != 1) return kl_error(d, n, "starts must be a 1-D tensor");
    for (int i = 1; i <= 4; i++) {
        const kl_value *v = kl_node_input(n, i);
        if (v && (v->shape.rank != 1 || v->shape.dim[0] != starts->shape.dim[0] ||
                  !kl_dtype_is_signed_int(v->dtype)))
            return kl_error(d, n, "starts, ends, axes and steps must be integer 1-D tensors of "
                            "one length");
    }
    if (starts->shape.dim[0] > n->inputs[0]->shape.rank)
        return kl_error(d, n, "%lld slice entries for %d axes", (long long)starts->shape.dim[0],
                        n->inputs[0]->shape.rank);
    int counted = slice_counted_axis(n);
    if (counted >= 0) /* at most the whole axis */
        return kl_infer_data_dependent(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape, counted);
    int at = 1;
    while (at < 4 && !kl_input_at_run_time(n, at)) at++;
    if (!kl_infer_declared(n, at, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape, *out = &n->outputs[0]->shape;
    for (int i = 0; i < in->rank; i++)
        if (out->rank != in->rank || out->dim[i] > in->dim[i])
            return kl_error(d, n, "the declared output %s is no slice of %s", KL_SHAPE_TEXT(out),
                            KL_SHAPE_TEXT(in));
    return true;
}

/* Entry k of input i (a run-time or constant int list), or `absent` without the input. */
static kl_expr *slice_entry(kl_lower *L, kl_node *n, int i, int k, int64_t absent) {
    const kl_value *v = kl_node_input(n, i);
    if (!v) return kl_e_idx(L->arena, absent);
    if (v->data) return kl_e_idx(L->arena, kl_value_const_int(v, k));
    return kl_lower_int_at(L, n, i, k);
}

static kl_expr *clamp_e(kl_arena *a, kl_expr *x, int64_t lo, int64_t hi) {
    return kl_e_binary(a, KL_MIN, kl_e_binary(a, KL_MAX, x, kl_e_idx(a, lo)), kl_e_idx(a, hi));
}

/* ceil(span / step) for span > 0, else 0 (step > 0) */
static kl_expr *ceil_count(kl_arena *a, kl_expr *span, kl_expr *step) {
    kl_expr *z = kl_e_idx(a, 0);
    kl_expr *q = kl_e_add(a, kl_e_binary(a, KL_DIV, span, step),
                          kl_e_select(a, kl_e_binary(a, KL_NE, kl_e_binary(a, KL_MOD, span, step), z),
                                      kl_e_idx(a, 1), z));
    return kl_e_select(a, kl_e_binary(a, KL_GT, span, z), q, z);
}

static void slice_lower_run_time(kl_lower *L, kl_node *n) {
    kl_arena *a = L->arena;
    int counted = slice_counted_axis(n);
    kl_expr *length = NULL; /* along the counted axis */
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    const kl_shape *out = &n->outputs[0]->shape;
    int rank = in->shape.rank, m = (int)n->inputs[1]->shape.dim[0];
    kl_expr *z = kl_e_idx(a, 0), *ok = NULL, *idx[KL_MAX_RANK];
    kl_expr *axis[KL_MAX_RANK];
    for (int k = 0; k < m; k++) {
        kl_expr *given = slice_entry(L, n, 3, k, k);
        axis[k] = kl_e_select(a, kl_e_binary(a, KL_LT, given, z), kl_e_addc(a, given, rank), given);
        ok = kl_e_and(a, ok, kl_e_in_range(a, axis[k], rank));
    }
    for (int dd = 0; dd < rank; dd++) {
        int64_t dim = in->shape.dim[dd];
        kl_expr *start = z, *end = kl_e_idx(a, dim), *step = kl_e_idx(a, 1), *times = z;
        for (int k = m - 1; k >= 0; k--) {
            kl_expr *hit = kl_e_binary(a, KL_EQ, axis[k], kl_e_idx(a, dd));
            start = kl_e_select(a, hit, slice_entry(L, n, 1, k, 0), start);
            end = kl_e_select(a, hit, slice_entry(L, n, 2, k, 0), end);
            step = kl_e_select(a, hit, slice_entry(L, n, 4, k, 1), step);
            times = kl_e_add(a, times, kl_e_select(a, hit, kl_e_idx(a, 1), z));
        }
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_LE, times, kl_e_idx(a, 1))); /* sliced once */
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_NE, step, z));
        if (dim == 0) {
            ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, kl_e_idx(a, out->dim[dd]), z));
            idx[dd] = kl_e_iv(a, dd);
            if (dd == counted) length = z;
            continue;
        }
        start = kl_e_select(a, kl_e_binary(a, KL_LT, start, z), kl_e_addc(a, start, dim), start);
        end = kl_e_select(a, kl_e_binary(a, KL_LT, end, z), kl_e_addc(a, end, dim), end);
        kl_expr *forward = kl_e_binary(a, KL_GT, step, z);
        kl_expr *sf = clamp_e(a, start, 0, dim), *ef = clamp_e(a, end, 0, dim);
        kl_expr *sb = clamp_e(a, start, 0, dim - 1), *eb = clamp_e(a, end, -1, dim - 1);
        kl_expr *safe = kl_e_select(a, forward, step, kl_e_idx(a, 1));
        /* |step| without negating INT64_MIN: any step below -dim takes one element */
        kl_expr *back = kl_e_select(a, kl_e_binary(a, KL_LT, step, kl_e_idx(a, -dim)),
                                    kl_e_idx(a, dim),
                                    kl_e_select(a, forward, kl_e_idx(a, 1),
                                                kl_e_binary(a, KL_SUB, z, step)));
        kl_expr *count = kl_e_select(a, forward,
                                     ceil_count(a, kl_e_binary(a, KL_SUB, ef, sf), safe),
                                     ceil_count(a, kl_e_binary(a, KL_SUB, sb, eb), back));
        if (dd == counted) length = count;
        else ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, count, kl_e_idx(a, out->dim[dd])));
        kl_expr *first = kl_e_select(a, forward, sf, sb);
        idx[dd] = kl_e_add(a, first, kl_e_binary(a, KL_MUL, kl_e_iv(a, dd), step));
    }
    kl_lower_shape_check(L, n, ok);
    kl_buffer *y = kl_lower_buffer(L, n->outputs[0]);
    kl_kernel *k = kl_move_kernel(L, n, "slice", y);
    k->value = kl_e_load(a, in, idx);
    if (counted >= 0) { /* its loop along the axis runs to the length; stored densely */
        kl_buffer *count = kl_lower_dd_set_length(L, n, n->outputs[0], length);
        k->extent_expr[counted] = kl_lower_dd_length(L, count);
        kl_lower_dd_store(L, k, y, counted, count, kl_lower_ivs(L, rank));
    }
    kl_move_add_kernel(L, k);
}

static bool slice_infer(kl_node *n, kl_diag *d) {
    slice_plan p;
    if (slice_at_run_time(n)) return kl_move_need_data(n, 0, d) && slice_infer_declared(n, d);
    if (!slice_make_plan(n, &p, d)) return false;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &p.out);
}

static bool slice_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    slice_plan p;
    if (slice_at_run_time(n)) {
        slice_lower_run_time(L, n);
        return true;
    }
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
    if (!gather_axis(n, data->shape.rank, &axis, d) ||
        !kl_lower_index_check(L, n, ind, &data->shape.dim[axis], 1, d))
        return false;
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

/* ---------------------------------------------------------------- index helpers */

/* max(min(x, n - 1), 0): keeps a computed read inside its axis, whatever the data says. */
static kl_expr *clamp_index(kl_arena *a, kl_expr *x, int64_t n) {
    x = kl_e_binary(a, KL_MIN, x, kl_e_idx(a, n - 1));
    return kl_e_binary(a, KL_MAX, x, kl_e_idx(a, 0));
}

/* ---------------------------------------------------------------- Tile */

static bool tile_repeats(kl_node *n, kl_int_list *reps, kl_diag *d) {
    if (!kl_node_input(n, 1)) return kl_error(d, n, "input 1 (repeats) is required");
    if (!kl_int_list_from_input(n, 1, "repeats", reps, d)) return false;
    if (reps->n != n->inputs[0]->shape.rank)
        return kl_error(d, n, "repeats has %" PRId64 " entries but the input has rank %d",
                        reps->n, n->inputs[0]->shape.rank);
    return true;
}

/* Repeats given at run time: the declared output is a whole number of copies on each axis
 * (the kernel of tile_lower checks the given repeats are those numbers; an empty axis any). */
static bool tile_infer_declared(kl_node *n, kl_diag *d) {
    const kl_value *reps = n->inputs[1];
    if (reps->shape.rank != 1 || reps->shape.dim[0] != n->inputs[0]->shape.rank)
        return kl_error(d, n, "repeats must be a 1-D tensor of one entry per input axis");
    if (!kl_infer_declared(n, 1, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape, *out = &n->outputs[0]->shape;
    for (int i = 0; i < in->rank; i++)
        if (out->rank != in->rank || (in->dim[i] ? out->dim[i] % in->dim[i] : out->dim[i]))
            return kl_error(d, n, "the declared output %s is no tiling of %s", KL_SHAPE_TEXT(out),
                            KL_SHAPE_TEXT(in));
    return true;
}

static bool tile_infer(kl_node *n, kl_diag *d) {
    kl_int_list reps = {.n = -1};
    if (!kl_move_need_data(n, 0, d)) return false;
    if (kl_input_at_run_time(n, 1)) return tile_infer_declared(n, d);
    if (!tile_repeats(n, &reps, d)) return false;
    kl_shape out = n->inputs[0]->shape;
    for (int i = 0; i < out.rank; i++) {
        int64_t r = kl_int_list_at(&reps, i);
        if (r < 0) return kl_error(d, n, "repeats[%d] = %" PRId64 " is negative", i, r);
        if (__builtin_mul_overflow(out.dim[i], r, &out.dim[i]))
            return kl_error(d, n, "repeats[%d] = %" PRId64 " makes the result too large", i, r);
    }
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* out[i] = in[i mod dim] along every axis */
static bool tile_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    if (kl_input_at_run_time(n, 1)) {
        kl_expr *ok = NULL;
        for (int i = 0; i < in->shape.rank; i++)
            if (in->shape.dim[i] > 0)
                ok = kl_e_and(L->arena, ok, kl_e_binary(L->arena, KL_EQ, kl_lower_int_at(L, n, 1, i),
                    kl_e_idx(L->arena, n->outputs[0]->shape.dim[i] / in->shape.dim[i])));
        kl_lower_shape_check(L, n, ok);
    }
    kl_kernel *k = kl_move_kernel(L, n, "tile", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < in->shape.rank; i++) {
        int64_t dim = in->shape.dim[i];
        kl_expr *iv = kl_e_iv(L->arena, i);
        idx[i] = k->extent[i] == dim ? iv
                 : dim == 1          ? kl_e_idx(L->arena, 0)
                                     : kl_e_binary(L->arena, KL_MOD, iv, kl_e_idx(L->arena, dim));
    }
    k->value = kl_e_load(L->arena, in, idx);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- Pad */

static const char *const pad_attrs[] = {"mode", "pads", "paddings", "value", NULL};

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

typedef struct pad_plan {
    pad_mode mode;
    int64_t begin[KL_MAX_RANK], end[KL_MAX_RANK];
    kl_shape out;
} pad_plan;

static bool pad_mode_of(kl_node *n, pad_mode *mode, kl_diag *d) {
    const char *m = kl_attr_string(n, "mode", "constant");
    if (!strcmp(m, "constant")) *mode = PAD_CONSTANT;
    else if (!strcmp(m, "reflect")) *mode = PAD_REFLECT;
    else if (!strcmp(m, "edge")) *mode = PAD_EDGE;
    else if (!strcmp(m, "wrap") && n->opset >= 19) *mode = PAD_WRAP;
    else return kl_error(d, n, "unknown mode '%s'", m);
    return true;
}

/* The pads list ([x1_begin, x2_begin, ..., x1_end, x2_end, ...]) and the axes it covers: an
 * attribute (`paddings` in opset 1, `pads` up to 10), constant inputs from opset 11 (axes from
 * 18). */
static bool pad_lists(kl_node *n, kl_int_list *pads, kl_int_list *axes, kl_diag *d) {
    *axes = (kl_int_list){.n = -1};
    if (n->opset < 11) {
        *pads = kl_int_list_from_attr(n, n->opset < 2 ? "paddings" : "pads");
        if (pads->n < 0) return kl_error(d, n, "attribute 'pads' is required");
        return true;
    }
    if (!kl_node_input(n, 1)) return kl_error(d, n, "input 1 (pads) is required");
    if (!kl_int_list_from_input(n, 1, "pads", pads, d)) return false;
    return n->opset < 18 || kl_int_list_from_input(n, 3, "axes", axes, d);
}

static bool pad_make_plan(kl_node *n, pad_plan *p, kl_diag *d) {
    kl_int_list pads = {.n = -1}, axes = {.n = -1};
    if (!kl_move_need_data(n, 0, d) || !pad_mode_of(n, &p->mode, d) ||
        !pad_lists(n, &pads, &axes, d))
        return false;
    const kl_shape *in = &n->inputs[0]->shape;
    int64_t n_axes = axes.n >= 0 ? axes.n : in->rank;
    if (pads.n != 2 * n_axes)
        return kl_error(d, n, "pads has %" PRId64 " entries; %" PRId64 " axes need %" PRId64,
                        pads.n, n_axes, 2 * n_axes);
    p->out = *in;
    memset(p->begin, 0, sizeof p->begin);
    memset(p->end, 0, sizeof p->end);
    for (int64_t k = 0; k < n_axes; k++) {
        int64_t given = axes.n >= 0 ? kl_int_list_at(&axes, k) : k;
        int axis;
        if (!kl_axis_normalize(given, in->rank, &axis))
            return kl_error(d, n, "axis %" PRId64 " is out of range for input %s", given,
                            KL_SHAPE_TEXT(in));
        p->begin[axis] = kl_int_list_at(&pads, k);
        p->end[axis] = kl_int_list_at(&pads, k + n_axes);
        /* pads are the model's numbers: their sum may overflow before the size check */
        if (!kl_add_checked(in->dim[axis], p->begin[axis], &p->out.dim[axis]) ||
            !kl_add_checked(p->out.dim[axis], p->end[axis], &p->out.dim[axis]))
            return kl_error(d, n, "pads %" PRId64 " and %" PRId64 " of axis %d are out of range",
                            p->begin[axis], p->end[axis], axis);
        if (p->out.dim[axis] < 0)
            return kl_error(d, n, "pads remove more than the %" PRId64 " elements of axis %d",
                            in->dim[axis], axis);
        if (p->mode != PAD_CONSTANT && in->dim[axis] == 0 && p->out.dim[axis] > 0)
            return kl_error(d, n, "cannot pad the empty axis %d in this mode", axis);
    }
    return true;
}

/* Where output position `iv` of an axis reads from, for the modes that always read. */
static kl_expr *pad_source(kl_arena *a, pad_mode mode, kl_expr *src, int64_t dim) {
    if (mode == PAD_EDGE) return clamp_index(a, src, dim);
    if (mode == PAD_WRAP) return kl_e_binary(a, KL_MOD, src, kl_e_idx(a, dim));
    /* reflect: mirror on the first and last elements, period 2 * (dim - 1) */
    if (dim == 1) return kl_e_idx(a, 0);
    int64_t period = 2 * (dim - 1);
    kl_expr *m = kl_e_binary(a, KL_MOD, src, kl_e_idx(a, period));
    kl_expr *beyond = kl_e_binary(a, KL_GE, m, kl_e_idx(a, dim));
    return kl_e_select(a, beyond, kl_e_add(a, kl_e_idx(a, period), kl_e_mulc(a, m, -1)), m);
}

/* The fill value of constant mode: the `value` attribute before opset 11, the optional
 * constant_value input (read at run time) after, else zero. */
static kl_expr *pad_fill(kl_lower *L, kl_node *n, kl_dtype t) {
    if (n->opset < 11) {
        double v = kl_attr_float(n, "value", 0.0);
        return kl_move_const(L->arena, t, v, kl_index_from_double(v));
    }
    kl_value *cv = kl_node_input(n, 2);
    if (!cv || kl_shape_numel(&cv->shape) == 0) return kl_move_const(L->arena, t, 0.0, 0);
    kl_buffer *b = kl_lower_buffer(L, cv);
    kl_expr *zero[KL_MAX_RANK];
    for (int i = 0; i < b->shape.rank; i++) zero[i] = kl_e_idx(L->arena, 0);
    return kl_e_load(L->arena, b, zero);
}

/* ---- pads or axes given at run time (opset 11 on), where the output's shape is declared: the
 * index expressions read the pad amounts from the pads buffer, and a check holds the lengths
 * they give to the declared shape (KILN_E_SHAPE). Every read is clamped (or wrapped) into the
 * input, so values the check refuses never read outside it. */

static bool pad_at_run_time(kl_node *n) {
    return n->opset >= 11 && (kl_input_at_run_time(n, 1) || kl_input_at_run_time(n, 3));
}

static bool pad_infer_declared(kl_node *n, kl_diag *d) {
    pad_mode mode;
    if (!kl_move_need_data(n, 0, d) || !pad_mode_of(n, &mode, d)) return false;
    const kl_value *pads = kl_node_input(n, 1);
    const kl_value *axes = n->opset >= 18 ? kl_node_input(n, 3) : NULL;
    const kl_shape *in = &n->inputs[0]->shape;
    if (!pads) return kl_error(d, n, "input 1 (pads) is required");
    if (pads->shape.rank != 1 || !kl_dtype_is_signed_int(pads->dtype) ||
        (axes && (axes->shape.rank != 1 || !kl_dtype_is_signed_int(axes->dtype))))
        return kl_error(d, n, "pads and axes must be 1-D integer tensors");
    int64_t n_axes = axes ? axes->shape.dim[0] : in->rank;
    if (n_axes > in->rank || pads->shape.dim[0] != 2 * n_axes)
        return kl_error(d, n, "pads has %" PRId64 " entries; %" PRId64 " axes need %" PRId64,
                        pads->shape.dim[0], n_axes, 2 * n_axes);
    if (!kl_infer_declared(n, kl_input_at_run_time(n, 1) ? 1 : 3, d)) return false;
    const kl_shape *out = &n->outputs[0]->shape;
    if (out->rank != in->rank)
        return kl_error(d, n, "the declared output %s does not have the rank of the input %s",
                        KL_SHAPE_TEXT(out), KL_SHAPE_TEXT(in));
    for (int i = 0; i < in->rank; i++)
        if (mode != PAD_CONSTANT && in->dim[i] == 0 && out->dim[i] > 0)
            return kl_error(d, n, "cannot pad the empty axis %d in this mode", i);
    return true;
}

/* Entry k of the integer input i, constant or read at run time. */
static kl_expr *pad_entry(kl_lower *L, kl_node *n, int i, int64_t k) {
    const kl_value *v = kl_node_input(n, i);
    if (v->data) return kl_e_idx(L->arena, kl_value_const_int(v, k));
    return kl_lower_int_at(L, n, i, k);
}

/* -bound <= v <= bound */
static kl_expr *pad_bounded(kl_arena *a, kl_expr *v, int64_t bound) {
    return kl_e_and(a, kl_e_binary(a, KL_GE, v, kl_e_idx(a, -bound)),
                    kl_e_binary(a, KL_LE, v, kl_e_idx(a, bound)));
}

static bool pad_lower_declared(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    pad_mode mode;
    if (!pad_mode_of(n, &mode, d)) return false;
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    const kl_shape *out = &n->outputs[0]->shape;
    int rank = in->shape.rank;
    bool has_axes = n->opset >= 18 && kl_node_input(n, 3);
    int64_t m = has_axes ? n->inputs[3]->shape.dim[0] : rank;
    /* the model's pads may be anything: bounded before their sum, which must not overflow */
    const int64_t bound = INT64_C(1) << 40;
    kl_expr *z = kl_e_idx(a, 0), *ok = NULL, *inside = NULL;
    kl_expr *axis[KL_MAX_RANK], *idx[KL_MAX_RANK];
    for (int64_t k = 0; k < m; k++) {
        kl_expr *given = has_axes ? pad_entry(L, n, 3, k) : kl_e_idx(a, k);
        kl_expr *negative = kl_e_binary(a, KL_LT, given, z);
        axis[k] = kl_e_select(a, negative, kl_e_addc(a, given, rank), given);
        ok = kl_e_and(a, ok, kl_e_in_range(a, axis[k], rank));
    }
    for (int dd = 0; dd < rank; dd++) {
        int64_t dim = in->shape.dim[dd];
        kl_expr *begin = z, *end = z, *times = z;
        for (int64_t k = 0; k < m; k++) {
            kl_expr *hit = kl_e_binary(a, KL_EQ, axis[k], kl_e_idx(a, dd));
            begin = kl_e_select(a, hit, pad_entry(L, n, 1, k), begin);
            end = kl_e_select(a, hit, pad_entry(L, n, 1, k + m), end);
            times = kl_e_add(a, times, kl_e_select(a, hit, kl_e_idx(a, 1), z));
        }
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_LE, times, kl_e_idx(a, 1))); /* named once */
        ok = kl_e_and(a, ok, pad_bounded(a, begin, bound));
        ok = kl_e_and(a, ok, pad_bounded(a, end, bound));
        kl_expr *length = kl_e_addc(a, kl_e_add(a, begin, end), dim);
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, length, kl_e_idx(a, out->dim[dd])));
        kl_expr *src = kl_e_binary(a, KL_SUB, kl_e_iv(a, dd), begin);
        if (dim == 0) {
            idx[dd] = z; /* constant mode only (inference): every position is fill */
            inside = kl_e_and(a, inside, kl_e_const_i(a, KL_BOOL, 0));
        } else if (mode == PAD_CONSTANT) {
            inside = kl_e_and(a, inside, kl_e_in_range(a, src, dim));
            idx[dd] = clamp_index(a, src, dim);
        } else {
            idx[dd] = pad_source(a, mode, src, dim);
        }
    }
    kl_lower_shape_check(L, n, ok);
    kl_kernel *k = kl_move_kernel(L, n, "pad", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *x = kl_e_load(a, in, idx);
    k->value = inside ? kl_e_select(a, inside, x, pad_fill(L, n, in->dtype)) : x;
    kl_move_add_kernel(L, k);
    return true;
}

static bool pad_infer(kl_node *n, kl_diag *d) {
    pad_plan p;
    if (pad_at_run_time(n)) return pad_infer_declared(n, d);
    if (!pad_make_plan(n, &p, d)) return false;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &p.out);
}

static bool pad_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    pad_plan p;
    if (pad_at_run_time(n)) return pad_lower_declared(L, n, d);
    if (!pad_make_plan(n, &p, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    kl_kernel *k = kl_move_kernel(L, n, "pad", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *idx[KL_MAX_RANK], *inside = NULL;
    for (int i = 0; i < in->shape.rank; i++) {
        int64_t dim = in->shape.dim[i];
        kl_expr *src = kl_e_addc(a, kl_e_iv(a, i), -p.begin[i]);
        if (p.begin[i] <= 0 && p.end[i] <= 0) {
            idx[i] = src; /* only cropped: every read is inside */
        } else if (p.mode == PAD_CONSTANT) {
            inside = kl_e_and(a, inside, kl_e_in_range(a, src, dim));
            idx[i] = clamp_index(a, src, dim);
        } else {
            idx[i] = pad_source(a, p.mode, src, dim);
        }
    }
    kl_expr *x = kl_e_load(a, in, idx);
    k->value = inside ? kl_e_select(a, inside, x, pad_fill(L, n, in->dtype)) : x;
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- DepthToSpace, SpaceToDepth */

static const char *const depth_space_attrs[] = {"blocksize", "mode", NULL};

static bool block_size(kl_node *n, int64_t *b, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d)) return false;
    if (n->inputs[0]->shape.rank != 4)
        return kl_error(d, n, "input must be 4-D [N,C,H,W], not %s",
                        KL_SHAPE_TEXT(&n->inputs[0]->shape));
    *b = kl_attr_int(n, "blocksize", 0);
    if (*b <= 0) return kl_error(d, n, "attribute 'blocksize' must be positive");
    /* blocksize^2 divides or multiplies the channels: past 2^20 it would overflow int64 with a
       dim, and no tensor kiln holds has that many channels */
    if (*b > (1 << 20))
        return kl_error(d, n, "attribute 'blocksize' = %" PRId64 " is out of range (at most %d)",
                        *b, 1 << 20);
    return true;
}

/* DCR (the default) takes the block offset from the outer part of the channel, CRD from the
 * inner part. */
static bool depth_to_space_crd(kl_node *n, bool *crd, kl_diag *d) {
    const char *m = n->opset >= 11 ? kl_attr_string(n, "mode", "DCR") : "DCR";
    if (strcmp(m, "DCR") && strcmp(m, "CRD")) return kl_error(d, n, "unknown mode '%s'", m);
    *crd = !strcmp(m, "CRD");
    return true;
}

static bool depth_to_space_infer(kl_node *n, kl_diag *d) {
    int64_t b;
    bool crd;
    if (!block_size(n, &b, d) || !depth_to_space_crd(n, &crd, d)) return false;
    kl_shape out = n->inputs[0]->shape;
    if (out.dim[1] % (b * b))
        return kl_error(d, n, "%" PRId64 " channels are not a multiple of blocksize^2 = %" PRId64,
                        out.dim[1], b * b);
    out.dim[1] /= b * b;
    out.dim[2] *= b;
    out.dim[3] *= b;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

static kl_expr *div_c(kl_arena *a, kl_expr *x, int64_t c) {
    return c == 1 ? x : kl_e_binary(a, KL_DIV, x, kl_e_idx(a, c));
}
static kl_expr *mod_c(kl_arena *a, kl_expr *x, int64_t c) {
    return c == 1 ? kl_e_idx(a, 0) : kl_e_binary(a, KL_MOD, x, kl_e_idx(a, c));
}

/* out[n, c, y, x] = in[n, channel(c, y % b, x % b), y / b, x / b] */
static bool depth_to_space_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    int64_t b;
    bool crd;
    if (!block_size(n, &b, d) || !depth_to_space_crd(n, &crd, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_kernel *k = kl_move_kernel(L, n, "depth_to_space", out);
    kl_expr *c = kl_e_iv(a, 1), *y = kl_e_iv(a, 2), *x = kl_e_iv(a, 3);
    kl_expr *block = kl_e_add(a, kl_e_mulc(a, mod_c(a, y, b), b), mod_c(a, x, b));
    kl_expr *channel = crd ? kl_e_add(a, kl_e_mulc(a, c, b * b), block)
                           : kl_e_add(a, kl_e_mulc(a, block, out->shape.dim[1]), c);
    kl_expr *idx[4] = {kl_e_iv(a, 0), channel, div_c(a, y, b), div_c(a, x, b)};
    k->value = kl_e_load(a, in, idx);
    kl_move_add_kernel(L, k);
    return true;
}

static bool space_to_depth_infer(kl_node *n, kl_diag *d) {
    int64_t b;
    if (!block_size(n, &b, d)) return false;
    kl_shape out = n->inputs[0]->shape;
    if (out.dim[2] % b || out.dim[3] % b)
        return kl_error(d, n, "spatial size %" PRId64 "x%" PRId64 " is not a multiple of "
                              "blocksize %" PRId64, out.dim[2], out.dim[3], b);
    if (!kl_mul_checked(out.dim[1], b * b, &out.dim[1])) /* empty H or W: any b divides them */
        return kl_error(d, n, "blocksize %" PRId64 " makes the channels too many", b);
    out.dim[2] /= b;
    out.dim[3] /= b;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* out[n, (i * b + j) * C + c, h, w] = in[n, c, h * b + i, w * b + j] */
static bool space_to_depth_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    int64_t b;
    if (!block_size(n, &b, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]);
    int64_t channels = in->shape.dim[1];
    kl_kernel *k = kl_move_kernel(L, n, "space_to_depth", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *oc = kl_e_iv(a, 1), *block = div_c(a, oc, channels);
    kl_expr *idx[4] = {
        kl_e_iv(a, 0),
        mod_c(a, oc, channels),
        kl_e_add(a, kl_e_mulc(a, kl_e_iv(a, 2), b), div_c(a, block, b)),
        kl_e_add(a, kl_e_mulc(a, kl_e_iv(a, 3), b), mod_c(a, block, b)),
    };
    k->value = kl_e_load(a, in, idx);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- ReverseSequence */

static const char *const reverse_sequence_attrs[] = {"batch_axis", "time_axis", NULL};

static bool reverse_sequence_axes(kl_node *n, int *batch, int *time, kl_diag *d) {
    *batch = (int)kl_attr_int(n, "batch_axis", 1);
    *time = (int)kl_attr_int(n, "time_axis", 0);
    if (!((*batch == 0 && *time == 1) || (*batch == 1 && *time == 0)))
        return kl_error(d, n, "batch_axis and time_axis must be 0 and 1 (in either order)");
    return true;
}

static bool reverse_sequence_infer(kl_node *n, kl_diag *d) {
    int batch, time;
    if (!kl_move_need_data(n, 0, d) || !kl_infer_need_input(n, 1, d) ||
        !reverse_sequence_axes(n, &batch, &time, d))
        return false;
    const kl_shape *in = &n->inputs[0]->shape, *lens = &n->inputs[1]->shape;
    if (in->rank < 2) return kl_error(d, n, "input must have rank 2 or more");
    if (lens->rank != 1 || lens->dim[0] != in->dim[batch])
        return kl_error(d, n, "sequence_lens %s must be 1-D with one length per batch entry (%"
                              PRId64 ")", KL_SHAPE_TEXT(lens), in->dim[batch]);
    return kl_infer_set(n, 0, n->inputs[0]->dtype, in);
}

/* out[t, b] = in[t < len[b] ? len[b] - 1 - t : t, b] */
static bool reverse_sequence_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    int batch, time;
    if (!reverse_sequence_axes(n, &batch, &time, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *in = kl_lower_buffer(L, n->inputs[0]), *lens = kl_lower_buffer(L, n->inputs[1]);
    kl_kernel *k = kl_move_kernel(L, n, "reverse_sequence", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *b = kl_e_iv(a, batch), *t = kl_e_iv(a, time);
    kl_expr *len = kl_e_cast(a, KL_I64, kl_e_load(a, lens, &b));
    kl_expr *reversed = kl_e_add(a, kl_e_addc(a, len, -1), kl_e_mulc(a, t, -1));
    kl_expr *src = kl_e_select(a, kl_e_binary(a, KL_LT, t, len), reversed, t);
    kl_expr **idx = kl_lower_ivs(L, in->shape.rank);
    idx[time] = clamp_index(a, src, in->shape.dim[time]);
    k->value = kl_e_load(a, in, idx);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- the family's table */

static const char *const no_attrs[] = {NULL};

const kl_op kl_ops_movement[] = {
    {"", "Transpose", 1, KL_OPSET_LATEST, transpose_attrs, transpose_infer, transpose_lower,
     transpose_is_view},
    {"", "Concat", 1, KL_OPSET_LATEST, axis_attrs, concat_infer, concat_lower},
    {"", "Split", 1, KL_OPSET_LATEST, split_attrs, split_infer, split_lower},
    {"", "Slice", 1, KL_OPSET_LATEST, slice_attrs, slice_infer, slice_lower},
    {"", "Gather", 1, KL_OPSET_LATEST, axis_attrs, gather_infer, gather_lower},
    {"", "Tile", 6, KL_OPSET_LATEST, no_attrs, tile_infer, tile_lower},
    {"", "Pad", 1, KL_OPSET_LATEST, pad_attrs, pad_infer, pad_lower},
    {"", "DepthToSpace", 1, KL_OPSET_LATEST, depth_space_attrs, depth_to_space_infer,
     depth_to_space_lower},
    {"", "SpaceToDepth", 1, KL_OPSET_LATEST, depth_space_attrs, space_to_depth_infer,
     space_to_depth_lower},
    {"", "ReverseSequence", 10, KL_OPSET_LATEST, reverse_sequence_attrs, reverse_sequence_infer,
     reverse_sequence_lower},
    {0},
};
