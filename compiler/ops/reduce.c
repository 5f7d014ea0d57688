/*
 * reduce.c — ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
 * ReduceLogSum, ReduceLogSumExp, ReduceSumSquare, ArgMax, ArgMin.
 *
 * All of them are one reduction nest (kl_arith_reduce in arith_util.h): parallel loops over the
 * kept dimensions, reduction loops over the reduced ones. A row says how each element enters
 * the accumulator (x, |x|, x*x, exp(x - max)) and how the accumulator becomes the result
 * (acc, acc / N, sqrt, log), so every variant is one kernel except the two that need a
 * statistic first: LogSumExp subtracts the maximum (stable for large inputs), and
 * ArgMax/ArgMin find the extreme value, then the first (or last) index holding it.
 *
 * Axes come from the `axes` attribute before ReduceSum-13 / the others' opset 18, and from an
 * optional input since; empty or absent axes mean all axes, unless noop_with_empty_axes asks
 * for the input unchanged. An axes input given at run time is accepted where the model declares
 * the shape the node produces (a graph output's type): see "axes given at run time" below.
 */
#include <math.h>
#include <string.h>

#include "arith_util.h"

typedef enum red_kind {
    RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_L1, RED_L2, RED_LOG_SUM,
    RED_LOG_SUM_EXP, RED_SUM_SQUARE,
} red_kind;

typedef struct red_row {
    const char *name;
    red_kind kind;
    int axes_input_since; /* first opset where axes is an input */
    bool float_only;      /* the result goes through log / sqrt */
} red_row;

static const red_row rows[] = {
    {"ReduceSum", RED_SUM, 13, false},        {"ReduceMean", RED_MEAN, 18, false},
    {"ReduceMax", RED_MAX, 18, false},        {"ReduceMin", RED_MIN, 18, false},
    {"ReduceProd", RED_PROD, 18, false},      {"ReduceL1", RED_L1, 18, false},
    {"ReduceL2", RED_L2, 18, true},           {"ReduceLogSum", RED_LOG_SUM, 18, true},
    {"ReduceLogSumExp", RED_LOG_SUM_EXP, 18, true},
    {"ReduceSumSquare", RED_SUM_SQUARE, 18, false},
    {NULL, RED_SUM, 0, false},
};

static const red_row *row_of(const kl_node *n) {
    for (const red_row *r = rows; r->name; r++)
        if (!strcmp(r->name, n->op_type)) return r;
    return NULL;
}

/* ---- which axes ---- */

/* The axes list as given: from the attribute or the constant input. *count = -1 when absent. */
static bool axes_list(kl_node *n, const red_row *r, const int64_t **attr, const kl_value **in,
                      int64_t *count, kl_diag *d) {
    *attr = NULL;
    *in = NULL;
    *count = -1;
    if (n->opset < r->axes_input_since) {
        *count = kl_attr_ints(n, "axes", attr);
        return true;
    }
    if (kl_attr_find(n, "axes"))
        return kl_error(d, n, "axes is an input since opset %d, not an attribute",
                        r->axes_input_since);
    kl_value *v = kl_node_input(n, 1);
    if (!v) return true;
    if (!kl_infer_need_input(n, 1, d)) return false;
    if (v->shape.rank > 1) return kl_error(d, n, "axes must be a 1-D tensor");
    *count = kl_shape_numel(&v->shape);
    if (v->dtype != KL_I64) return kl_error(d, n, "axes must be int64, not %s", kl_dtype_name(v->dtype));
    *in = v;
    return true;
}

/* ---- axes given at run time ----
 *
 * When the model declares the shape the node produces, the axes sets of the given length that
 * lead to it are known when compiling. Sets that differ only in axes of size 1 (kept by
 * keepdims) compute the same values, so they form one group; kiln computes the reduction once
 * per group (at most MAX_AXES_GROUPS), and predict looks at the given axes first: the group
 * they belong to gives the result, and axes that belong to none (another shape, an axis out of
 * range, one listed twice) make it return KILN_E_SHAPE. */
enum { MAX_AXES_GROUPS = 8, MAX_AXES_MEMBERS = 1 << KL_MAX_RANK };

typedef struct axes_group {
    unsigned key;                      /* what the group reduces (bit d: axis d) */
    int n_members;
    unsigned members[MAX_AXES_MEMBERS]; /* the axes sets (bit masks) that belong to it */
} axes_group;

typedef struct runtime_axes {
    int count;                         /* entries of the axes input */
    int n_groups;
    axes_group groups[MAX_AXES_GROUPS];
} runtime_axes;

static bool axes_runtime(kl_node *n, const red_row *r) {
    const kl_value *v = n->opset >= r->axes_input_since ? kl_node_input(n, 1) : NULL;
    return v && !v->data && kl_shape_numel(&v->shape) > 0;
}

static void mask_to_reduced(unsigned mask, bool reduced[KL_MAX_RANK]) {
    for (int d = 0; d < KL_MAX_RANK; d++) reduced[d] = (mask >> d) & 1u;
}

static bool add_member(kl_node *n, runtime_axes *ra, unsigned mask, unsigned key, kl_diag *d) {
    int g = 0;
    while (g < ra->n_groups && ra->groups[g].key != key) g++;
    if (g == MAX_AXES_GROUPS)
        return kl_error(d, n, "axes given at run time: over %d different reductions give the "
                        "declared shape; give axes as a constant", MAX_AXES_GROUPS);
    if (g == ra->n_groups) ra->groups[ra->n_groups++] = (axes_group){.key = key};
    ra->groups[g].members[ra->groups[g].n_members++] = mask;
    return true;
}

/* The groups of axes sets of the input's length that give the declared output shape. */
static bool runtime_axes_of(kl_node *n, runtime_axes *ra, kl_diag *d) {
    const kl_value *x = n->inputs[0], *axes = n->inputs[1], *y = n->outputs[0];
    if (!y->shape_declared && !y->has_shape) {
        char hint[512];
        kl_value_binding_hint(d, axes, hint, sizeof hint);
        return kl_error(d, n, "input 1 ('%s', the axes) is given at run time: kiln needs it as a "
                        "compile-time constant, or the model must declare the shape of output "
                        "'%s'%s", axes->name, y->name, hint);
    }
    int rank = x->shape.rank;
    bool keepdims = kl_attr_int(n, "keepdims", 1) != 0;
    unsigned ones = 0;
    for (int i = 0; i < rank; i++) ones |= x->shape.dim[i] == 1 ? 1u << i : 0;
    *ra = (runtime_axes){.count = (int)kl_shape_numel(&axes->shape)};
    for (unsigned mask = 1; mask < 1u << rank; mask++) {
        bool reduced[KL_MAX_RANK];
        mask_to_reduced(mask, reduced);
        kl_shape s = kl_arith_reduced_shape(&x->shape, reduced, keepdims);
        if (__builtin_popcount(mask) != ra->count || !kl_shape_equal(&s, &y->shape)) continue;
        if (!add_member(n, ra, mask, keepdims ? mask & ~ones : mask, d)) return false;
    }
    if (ra->n_groups == 0) {
        kl_arena *a = kl_arena_new();
        kl_error(d, n, "no %d axes of input %s give the declared output shape %s", ra->count,
                 kl_shape_str(a, &x->shape), kl_shape_str(a, &y->shape));
        kl_arena_free(a);
        return false;
    }
    return true;
}

/* int32 scalar: 1 + the group the given axes belong to, 0 for none. */
static kl_buffer *which_group(kl_lower *L, kl_node *n, const runtime_axes *ra) {
    kl_arena *a = L->arena;
    int rank = n->inputs[0]->shape.rank;
    kl_shape scalar = {.rank = 0};
    kl_buffer *which = kl_lower_temp(L, "axes_group", KL_I32, &scalar);
    kl_expr *v = kl_e_const_i(a, KL_I32, 0);
    for (int g = ra->n_groups - 1; g >= 0; g--)
        for (int m = 0; m < ra->groups[g].n_members; m++)
            v = kl_e_select(a, kl_lower_axes_are(L, n, 1, rank, ra->groups[g].members[m]),
                            kl_e_const_i(a, KL_I32, g + 1), v);
    kl_kernel *k = kl_kernel_new(L->prog, n, "axes_group");
    k->out = which;
    k->out_idx = kl_lower_ivs(L, 0);
    k->value = v;
    kl_program_add_kernel(L->prog, k);

    kl_lower_shape_check(L, n, kl_e_binary(a, KL_NE, kl_e_load(a, which, kl_lower_ivs(L, 0)),
                                           kl_e_const_i(a, KL_I32, 0)));
    return which;
}

/* Marks the reduced dimensions of input 0; *noop when the node passes its input through. */
static bool reduced_axes(kl_node *n, const red_row *r, bool reduced[KL_MAX_RANK], bool *noop,
                         kl_diag *d) {
    int rank = n->inputs[0]->shape.rank;
    const int64_t *attr;
    const kl_value *in;
    int64_t count;
    memset(reduced, 0, KL_MAX_RANK * sizeof reduced[0]);
    *noop = false;
    if (!axes_list(n, r, &attr, &in, &count, d)) return false;
    if (count <= 0) {
        if (n->opset >= r->axes_input_since && kl_attr_int(n, "noop_with_empty_axes", 0)) {
            *noop = true;
            return true;
        }
        for (int i = 0; i < rank; i++) reduced[i] = true;
        return true;
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t axis = attr ? attr[i] : kl_value_const_int(in, i);
        if (!kl_arith_mark_axis(n, axis, rank, reduced, d)) return false;
    }
    return true;
}

/* ---- ReduceX ---- */

static bool infer_reduce(kl_node *n, kl_diag *d) {
    const red_row *r = row_of(n);
    if (!(r->float_only ? kl_arith_need_float(n, 0, d) : kl_arith_need_input(n, 0, d)))
        return false;
    const kl_value *x = n->inputs[0];
    if (axes_runtime(n, r)) {
        runtime_axes ra;
        const int64_t *attr;
        const kl_value *in;
        int64_t count;
        if (!axes_list(n, r, &attr, &in, &count, d) || !runtime_axes_of(n, &ra, d)) return false;
        kl_shape declared = n->outputs[0]->shape;
        return kl_infer_set(n, 0, x->dtype, &declared);
    }
    bool reduced[KL_MAX_RANK], noop;
    if (!reduced_axes(n, r, reduced, &noop, d)) return false;
    if (noop) return kl_infer_set(n, 0, x->dtype, &x->shape);
    bool keepdims = kl_attr_int(n, "keepdims", 1) != 0;
    kl_shape s = kl_arith_reduced_shape(&x->shape, reduced, keepdims);
    return kl_infer_set(n, 0, x->dtype, &s);
}

/* How each element enters the accumulator. */
static kl_expr *reduce_value(kl_arena *a, red_kind kind, kl_expr *x) {
    switch (kind) {
    case RED_L1: return kl_e_unary(a, KL_ABS, x);
    case RED_L2: case RED_SUM_SQUARE: return kl_e_binary(a, KL_MUL, x, x);
    default: return x;
    }
}

static kl_reduce reduce_op(red_kind kind) {
    switch (kind) {
    case RED_MAX: return KL_RED_MAX;
    case RED_MIN: return KL_RED_MIN;
    case RED_PROD: return KL_RED_PROD;
    default: return KL_RED_SUM;
    }
}

/* How the accumulator becomes the stored value (NULL: the accumulator itself). */
static kl_expr *reduce_result(kl_arena *a, red_kind kind, kl_dtype t, int64_t count) {
    kl_expr *acc = kl_e_acc(a, t);
    switch (kind) {
    case RED_MEAN: return kl_e_binary(a, KL_DIV, acc, kl_arith_const(a, t, (double)count));
    case RED_L2: return kl_e_unary(a, KL_SQRT, acc);
    case RED_LOG_SUM: return kl_e_unary(a, KL_LOG, acc);
    default: return NULL;
    }
}

/* log(sum(exp(x - m))) + m with m the maximum (0 where it is -inf, so that an all -inf or empty
 * slice gives -inf instead of NaN). */
static void lower_log_sum_exp(kl_lower *L, kl_node *n, kl_buffer *x, const bool *reduced,
                              kl_buffer *out) {
    kl_arena *a = L->arena;
    kl_shape ms = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *m = kl_lower_temp(L, "max", x->dtype, &ms);
    kl_program_add_kernel(L->prog, kl_arith_reduce(L, n, "max", x, reduced, m, KL_RED_MAX));

    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    kl_kernel *k = kl_arith_reduce(L, n, "logsumexp", x, reduced, out, KL_RED_SUM);
    kl_expr *mv = kl_e_cast(a, u, kl_lower_load_broadcast(L, m, x->shape.rank));
    kl_expr *is_inf = kl_e_binary(a, KL_EQ, mv, kl_e_const_f(a, u, -INFINITY));
    kl_expr *shift = kl_e_select(a, is_inf, kl_e_const_f(a, u, 0), mv);
    k->value = kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_SUB, kl_e_cast(a, u, k->value), shift));
    k->acc_dtype = u;
    k->result = kl_e_cast(a, x->dtype,
                          kl_e_binary(a, KL_ADD, kl_e_unary(a, KL_LOG, kl_e_acc(a, u)), shift));
    kl_program_add_kernel(L->prog, k);
}

/* The reduction of x over `reduced` into out. */
static void lower_reduce_into(kl_lower *L, kl_node *n, const red_row *r, kl_buffer *x,
                              const bool *reduced, kl_buffer *out) {
    if (r->kind == RED_LOG_SUM_EXP) {
        lower_log_sum_exp(L, n, x, reduced, out);
        return;
    }
    kl_arena *a = L->arena;
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    kl_kernel *k = kl_arith_reduce(L, n, NULL, x, reduced, out, reduce_op(r->kind));
    k->value = reduce_value(a, r->kind, kl_e_cast(a, u, k->value));
    k->acc_dtype = u;
    kl_expr *res = reduce_result(a, r->kind, u, kl_arith_reduced_count(&x->shape, reduced));
    k->result = kl_e_cast(a, x->dtype, res ? res : kl_e_acc(a, u));
    kl_program_add_kernel(L->prog, k);
}

/* Axes given at run time: the check, one reduction per group, then the group's result. */
static bool lower_runtime_axes(kl_lower *L, kl_node *n, const red_row *r, kl_buffer *x,
                               kl_buffer *out, kl_diag *d) {
    runtime_axes ra;
    if (!runtime_axes_of(n, &ra, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *which = which_group(L, n, &ra);
    kl_buffer *results[MAX_AXES_GROUPS] = {0};
    for (int g = 0; g < ra.n_groups; g++) {
        bool reduced[KL_MAX_RANK];
        mask_to_reduced(ra.groups[g].key, reduced);
        results[g] = ra.n_groups == 1 ? out : kl_lower_temp(L, "reduced", out->dtype, &out->shape);
        lower_reduce_into(L, n, r, x, reduced, results[g]);
    }
    if (ra.n_groups == 1) return true;
    kl_expr *group = kl_e_load(a, which, kl_lower_ivs(L, 0));
    kl_expr *v = kl_e_load(a, results[ra.n_groups - 1], kl_lower_ivs(L, out->shape.rank));
    for (int g = ra.n_groups - 2; g >= 0; g--)
        v = kl_e_select(a, kl_e_binary(a, KL_EQ, group, kl_e_const_i(a, KL_I32, g + 1)),
                        kl_e_load(a, results[g], kl_lower_ivs(L, out->shape.rank)), v);
    if (kl_shape_numel(&out->shape) > 0) kl_arith_map(L, n, "axes_select", out, v);
    return true;
}

static bool lower_reduce(kl_lower *L, kl_node *n, kl_diag *d) {
    const red_row *r = row_of(n);
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    if (axes_runtime(n, r)) return lower_runtime_axes(L, n, r, x, out, d);
    bool reduced[KL_MAX_RANK], noop;
    if (!reduced_axes(n, r, reduced, &noop, d)) return false;
    if (noop) return kl_lower_copy(L, n, x, out);
    lower_reduce_into(L, n, r, x, reduced, out);
    return true;
}

/* ---- ArgMax / ArgMin ---- */

static bool arg_axis(kl_node *n, bool reduced[KL_MAX_RANK], kl_diag *d) {
    memset(reduced, 0, KL_MAX_RANK * sizeof reduced[0]);
    return kl_arith_mark_axis(n, kl_attr_int(n, "axis", 0), n->inputs[0]->shape.rank, reduced,
                              d);
}

static bool infer_arg(kl_node *n, kl_diag *d) {
    bool reduced[KL_MAX_RANK];
    if (!kl_arith_need_input(n, 0, d) || !arg_axis(n, reduced, d)) return false;
    bool keepdims = kl_attr_int(n, "keepdims", 1) != 0;
    kl_shape s = kl_arith_reduced_shape(&n->inputs[0]->shape, reduced, keepdims);
    return kl_infer_set(n, 0, KL_I64, &s);
}

/* First the extreme value m of each slice, then the smallest (or, with select_last_index, the
 * largest) index k where x == m: a MIN (MAX) reduction of select(x == m, k, past-the-end). */
static bool lower_arg(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK];
    if (!arg_axis(n, reduced, d)) return false;
    bool is_max = !strcmp(n->op_type, "ArgMax"), last = kl_attr_int(n, "select_last_index", 0);
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    int rank = x->shape.rank;

    kl_shape ms = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *m = kl_lower_temp(L, is_max ? "max" : "min", x->dtype, &ms);
    kl_program_add_kernel(L->prog, kl_arith_reduce(L, n, "extreme", x, reduced, m,
                                                   is_max ? KL_RED_MAX : KL_RED_MIN));

    kl_kernel *k = kl_arith_reduce(L, n, "index", x, reduced, out,
                                   last ? KL_RED_MAX : KL_RED_MIN);
    int axis = 0;
    while (!reduced[axis]) axis++;
    kl_expr *hit = kl_e_binary(a, KL_EQ, k->value, kl_lower_load_broadcast(L, m, rank));
    kl_expr *none = kl_e_idx(a, last ? -1 : x->shape.dim[axis]);
    k->value = kl_e_select(a, hit, kl_e_iv(a, rank), none);
    k->acc_dtype = KL_I64;
    kl_program_add_kernel(L->prog, k);
    return true;
}

/* ---- the table ---- */

static const char *const reduce_attrs[] = {"axes", "keepdims", "noop_with_empty_axes", NULL};
static const char *const arg_attrs[] = {"axis", "keepdims", "select_last_index", NULL};

#define REDUCE(name) {"", name, 1, KL_OPSET_LATEST, reduce_attrs, infer_reduce, lower_reduce}

const kl_op kl_ops_reduce[] = {
    REDUCE("ReduceSum"),    REDUCE("ReduceMean"),   REDUCE("ReduceMax"),
    REDUCE("ReduceMin"),    REDUCE("ReduceProd"),   REDUCE("ReduceL1"),
    REDUCE("ReduceL2"),     REDUCE("ReduceLogSum"), REDUCE("ReduceLogSumExp"),
    REDUCE("ReduceSumSquare"),
    {"", "ArgMax", 1, KL_OPSET_LATEST, arg_attrs, infer_arg, lower_arg},
    {"", "ArgMin", 1, KL_OPSET_LATEST, arg_attrs, infer_arg, lower_arg},
    {0},
};
