/*
 * unique.c — Unique (opset 11): the distinct elements (or slices along `axis`) of a tensor,
 * with the first occurrence of each (indices), where each input element went (inverse_indices)
 * and how often each occurs (counts). Y, indices and counts have a length that depends on the
 * data (ops/data_dependent.c), bounded by the axis's length (the element count without axis).
 *
 * The input is read as [outer, L, inner]: L candidates (slices; without axis the elements, L
 * the element count, outer = inner = 1), each of E = outer * inner elements. No sort and no
 * hash table, only counts (reductions, O(L^2 E)):
 *     diff[i, j]  = the first element where slices i and j differ, E if none (only when E > 1)
 *     first[i]    = the least j whose slice equals slice i: i is a first occurrence iff first[i] == i
 *     slot[i]     = #{first occurrences j that come before slice i}: its position in Y
 *                   (sorted: by value, lexicographically, NaN above every number as numpy
 *                   sorts; sorted=0: by first occurrence), which is inverse_indices
 *     count       = #{i : first[i] == i}
 *     index[k]    = the least i whose slot is k (the first occurrence), for k < count
 * and then Y[.., k, ..] = X[.., index[k], ..], indices = index, counts[k] = #{i : slot[i] == k}.
 * NaN equals NaN here (numpy's unique collapses them).
 */
#include "arith_util.h"

static const char *const unique_attrs[] = {"axis", "sorted", NULL};

typedef struct unique {
    bool has_axis, sorted;
    int axis;                /* of Y; 0 without axis */
    int64_t outer, len, inner;
    kl_shape y;              /* Y's bound */
} unique;

static bool unique_plan(kl_node *n, unique *u, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    u->sorted = kl_attr_int(n, "sorted", 1) != 0;
    u->has_axis = kl_attr_find(n, "axis") != NULL;
    u->outer = u->inner = 1;
    u->axis = 0;
    if (!u->has_axis) {
        u->len = kl_shape_numel(x);
        u->y = (kl_shape){.rank = 1, .dim = {u->len}};
        return true;
    }
    int64_t axis = kl_attr_int(n, "axis", 0);
    if (!kl_axis_normalize(axis, x->rank, &u->axis))
        return kl_error(d, n, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
    for (int i = 0; i < u->axis; i++) u->outer *= x->dim[i];
    for (int i = u->axis + 1; i < x->rank; i++) u->inner *= x->dim[i];
    u->len = x->dim[u->axis];
    u->y = *x;
    return true;
}

static bool infer_unique(kl_node *n, kl_diag *d) {
    unique u;
    if (!unique_plan(n, &u, d)) return false;
    kl_shape line = {.rank = 1, .dim = {u.len}};
    if (!kl_infer_data_dependent(n, 0, n->inputs[0]->dtype, &u.y, u.axis)) return false;
    if (kl_node_output(n, 1) && !kl_infer_data_dependent(n, 1, KL_I64, &line, 0)) return false;
    if (kl_node_output(n, 2) && !kl_infer_set(n, 2, KL_I64, &line)) return false;
    if (kl_node_output(n, 3) && !kl_infer_data_dependent(n, 3, KL_I64, &line, 0)) return false;
    return true;
}

/* ---------------------------------------------------------------- comparing candidates */

typedef struct cmp {
    kl_lower *L;
    const unique *u;
    kl_buffer *x;            /* the input as [outer, L, inner] */
    kl_buffer *diff;         /* [L, L], NULL when E == 1 */
} cmp;

static int64_t elements(const unique *u) { return u->outer * u->inner; }

/* Element e of candidate i, in the type comparisons run in. */
static kl_expr *element(const cmp *c, kl_expr *i, kl_expr *e) {
    kl_arena *a = c->L->arena;
    kl_expr *o = c->u->inner > 1 ? kl_e_binary(a, KL_DIV, e, kl_e_idx(a, c->u->inner)) : e;
    kl_expr *in = c->u->inner > 1 ? kl_e_binary(a, KL_MOD, e, kl_e_idx(a, c->u->inner))
                                  : kl_e_idx(a, 0);
    if (c->u->outer == 1) o = kl_e_idx(a, 0);
    kl_expr *v = kl_e_load(a, c->x, (kl_expr *[]){o, i, in});
    kl_dtype t = v->dtype == KL_BOOL ? KL_I32
                 : kl_dtype_is_float(v->dtype) && v->dtype != KL_F64 ? KL_F32 : v->dtype;
    return kl_e_cast(a, t, v);
}

static kl_expr *is_nan(kl_arena *a, kl_expr *x) { return kl_e_binary(a, KL_NE, x, x); }

static kl_expr *same_value(kl_arena *a, kl_expr *x, kl_expr *y) {
    kl_expr *eq = kl_e_binary(a, KL_EQ, x, y);
    if (!kl_dtype_is_float(x->dtype)) return eq;
    return kl_e_binary(a, KL_OR, eq, kl_e_and(a, is_nan(a, x), is_nan(a, y)));
}

/* x sorts before y: less, or a number before NaN. */
static kl_expr *below(kl_arena *a, kl_expr *x, kl_expr *y) {
    kl_expr *lt = kl_e_binary(a, KL_LT, x, y);
    if (!kl_dtype_is_float(x->dtype)) return lt;
    return kl_e_binary(a, KL_OR, lt, kl_e_and(a, kl_e_unary(a, KL_NOT, is_nan(a, x)), is_nan(a, y)));
}

static kl_expr *same(const cmp *c, kl_expr *i, kl_expr *j) {
    kl_arena *a = c->L->arena;
    kl_expr *zero = kl_e_idx(a, 0);
    if (!c->diff) return same_value(a, element(c, i, zero), element(c, j, zero));
    kl_expr *at = kl_e_load(a, c->diff, (kl_expr *[]){i, j});
    return kl_e_binary(a, KL_EQ, at, kl_e_idx(a, elements(c->u)));
}

/* Candidate j sorts before candidate i (lexicographically over their elements). */
static kl_expr *sorts_before(const cmp *c, kl_expr *j, kl_expr *i) {
    kl_arena *a = c->L->arena;
    if (!c->diff) {
        kl_expr *zero = kl_e_idx(a, 0);
        return below(a, element(c, j, zero), element(c, i, zero));
    }
    int64_t e = elements(c->u);
    kl_expr *at = kl_e_load(a, c->diff, (kl_expr *[]){j, i});
    kl_expr *safe = kl_e_binary(a, KL_MIN, at, kl_e_idx(a, e - 1)); /* equal slices: e */
    return kl_e_and(a, kl_e_binary(a, KL_LT, at, kl_e_idx(a, e)),
                    below(a, element(c, j, safe), element(c, i, safe)));
}

/* A [len] or [len, len] int64 reduction kernel: loops 0..n_par-1 parallel, then one reduction
 * loop over the candidates (or elements), of `value` under `red`. */
static kl_buffer *reduction(kl_lower *L, const kl_node *n, const char *tag, int n_par,
                            int64_t par_extent, int64_t red_extent, kl_reduce red,
                            kl_expr *value) {
    kl_shape s = {.rank = n_par, .dim = {par_extent, par_extent}};
    kl_buffer *b = kl_lower_temp(L, kl_sprintf(L->arena, "%s_%s", n->name, tag), KL_I64, &s);
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_par = n_par;
    k->n_loops = n_par + 1;
    for (int l = 0; l < n_par; l++) k->extent[l] = par_extent;
    k->extent[n_par] = red_extent;
    k->out = b;
    k->out_idx = kl_lower_ivs(L, n_par);
    k->value = value;
    k->reduce = red;
    k->acc_dtype = KL_I64;
    kl_program_add_kernel(L->prog, k);
    return b;
}

static kl_expr *pick(kl_arena *a, kl_expr *cond, kl_expr *x, int64_t otherwise) {
    return kl_e_select(a, cond, x, kl_e_idx(a, otherwise));
}

/* ---------------------------------------------------------------- lowering */

/* out[k] (k < count) of a 1-D data-dependent output, from `value` over loop 0 (k) and, with
 * red != NONE, a reduction loop 1 over the candidates. */
static void line_output(kl_lower *L, const kl_node *n, kl_value *v, kl_buffer *count,
                        int64_t len, kl_reduce red, kl_expr *value) {
    if (!v) return;
    kl_kernel *k = kl_kernel_new(L->prog, n, v->name);
    k->n_par = 1;
    k->n_loops = red == KL_RED_NONE ? 1 : 2;
    k->extent[0] = k->extent[1] = len;
    k->extent_expr[0] = kl_lower_dd_length(L, count);
    k->value = value;
    k->reduce = red;
    k->acc_dtype = KL_I64;
    kl_lower_dd_store(L, k, kl_lower_buffer(L, v), 0, count, (kl_expr *[]){kl_e_iv(L->arena, 0)});
    kl_program_add_kernel(L->prog, k);
}

static bool lower_unique(kl_lower *L, kl_node *n, kl_diag *d) {
    unique u;
    if (!unique_plan(n, &u, d)) return false;
    kl_arena *a = L->arena;
    kl_shape three = {.rank = 3, .dim = {u.outer, u.len, u.inner}};
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    cmp c = {L, &u, kl_shape_equal(&x->shape, &three) ? x : kl_program_view(L->prog, x, &three),
             NULL};
    kl_expr *i = kl_e_iv(a, 0), *j = kl_e_iv(a, 1), *r = kl_e_iv(a, 2);
    int64_t e = elements(&u);
    if (e > 1) /* diff[i, j]: loops i, j and the elements e */
        c.diff = reduction(L, n, "diff", 2, u.len, e, KL_RED_MIN,
                           pick(a, kl_e_unary(a, KL_NOT, same_value(a, element(&c, i, r),
                                                                     element(&c, j, r))),
                                r, e));
    kl_buffer *first = reduction(L, n, "first", 1, u.len, u.len, KL_RED_MIN,
                                 pick(a, same(&c, i, j), j, u.len));
    kl_expr *j_first = kl_e_binary(a, KL_EQ, kl_e_load(a, first, &j), j);
    kl_expr *before = u.sorted ? sorts_before(&c, j, i)
                               : kl_e_binary(a, KL_LT, j, kl_e_load(a, first, &i));
    kl_buffer *slot = reduction(L, n, "slot", 1, u.len, u.len, KL_RED_SUM,
                                pick(a, kl_e_and(a, j_first, before), kl_e_idx(a, 1), 0));
    kl_buffer *count = kl_lower_dd_count(L, n);
    kl_lower_dd_count_kernel(L, n, count, u.len,
                             kl_e_binary(a, KL_EQ, kl_e_load(a, first, &j), j));
    kl_expr *slot_j_is_i = kl_e_binary(a, KL_EQ, kl_e_load(a, slot, &j), i);
    kl_buffer *index = reduction(L, n, "index", 1, u.len, u.len, KL_RED_MIN,
                                 pick(a, slot_j_is_i, j, u.len));
    for (int o = 0; o < 4; o++)
        if (o != 2) kl_lower_dd_mark(L, kl_node_output(n, o), count);
    /* Y: X with the axis read through index */
    kl_buffer *y = kl_lower_buffer(L, n->outputs[0]);
    kl_kernel *k = kl_kernel_new(L->prog, n, "values");
    k->n_loops = k->n_par = u.y.rank;
    for (int l = 0; l < u.y.rank; l++) k->extent[l] = u.y.dim[l];
    k->extent_expr[u.axis] = kl_lower_dd_length(L, count);
    kl_buffer *xs = kl_lower_buffer(L, n->inputs[0]);
    if (!u.has_axis && xs->shape.rank != 1) xs = kl_program_view(L->prog, xs, &u.y);
    kl_expr **src = kl_lower_ivs(L, u.y.rank);
    kl_expr *at = kl_e_iv(a, u.axis);
    src[u.axis] = kl_e_load(a, index, &at);
    k->value = kl_e_load(a, xs, src);
    kl_lower_dd_store(L, k, y, u.axis, count, kl_lower_ivs(L, u.y.rank));
    kl_program_add_kernel(L->prog, k);
    line_output(L, n, kl_node_output(n, 1), count, u.len, KL_RED_NONE, kl_e_load(a, index, &i));
    if (kl_node_output(n, 2))
        kl_lower_copy(L, n, slot, kl_lower_buffer(L, kl_node_output(n, 2)));
    line_output(L, n, kl_node_output(n, 3), count, u.len, KL_RED_SUM,
                pick(a, kl_e_binary(a, KL_EQ, kl_e_load(a, slot, &j), i), kl_e_idx(a, 1), 0));
    return true;
}

const kl_op kl_ops_unique[] = {
    {"", "Unique", 11, KL_OPSET_LATEST, unique_attrs, infer_unique, lower_unique},
    {0},
};
