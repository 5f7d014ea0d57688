/*
 * nonzero.c — NonZero (opsets 9, 13) and Compress (9, 11): the positions where a condition
 * holds, an output whose length depends on the data (ops/data_dependent.c).
 *
 * NonZero's output [rank, count] is bounded by the input's element count, Compress's axis by
 * the condition's length (at most the axis's). Both count the true elements, take prefix counts
 * and from them the k-th true position (data_dependent.c), then write the output densely at
 * [.., count, ..]: NonZero the coordinates of each position, Compress a gather along the axis.
 */
#include "arith_util.h"

static const char *const nonzero_attrs[] = {NULL};
static const char *const compress_attrs[] = {"axis", NULL};

/* ---------------------------------------------------------------- NonZero */

static bool infer_nonzero(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    kl_shape out = {.rank = 2, .dim = {x->rank, kl_shape_numel(x)}};
    return kl_infer_data_dependent(n, 0, KL_I64, &out, 1);
}

/* x[i] != 0 on the input read flat (bool, integers, any float type; NaN is nonzero). */
static kl_expr *is_nonzero(void *ctx, kl_arena *a, kl_expr *i) {
    kl_expr *x = kl_e_load(a, ctx, &i);
    if (x->dtype == KL_BOOL) return x;
    kl_dtype t = kl_dtype_is_float(x->dtype) && x->dtype != KL_F64 ? KL_F32 : x->dtype;
    x = kl_e_cast(a, t, x);
    return kl_e_binary(a, KL_NE, x, kl_arith_const(a, t, 0));
}

/* A buffer's elements as one row (a view, unless it is one already). */
static kl_buffer *flat(kl_lower *L, kl_buffer *b) {
    kl_shape s = {.rank = 1, .dim = {kl_shape_numel(&b->shape)}};
    return kl_shape_equal(&b->shape, &s) ? b : kl_program_view(L->prog, b, &s);
}

static bool lower_nonzero(kl_lower *L, kl_node *n, kl_diag *d) {
    (void)d;
    kl_arena *a = L->arena;
    kl_buffer *x = flat(L, kl_lower_buffer(L, n->inputs[0]));
    const kl_shape *xs = &n->inputs[0]->shape;
    int64_t len = x->shape.dim[0];
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    kl_buffer *count = kl_lower_dd_count(L, n);
    kl_lower_dd_mark(L, n->outputs[0], count);
    kl_lower_dd_count_kernel(L, n, count, len, is_nonzero(x, a, kl_e_iv(a, 1)));
    kl_buffer *pos = kl_lower_true_positions(L, n, len, is_nonzero, x);
    int64_t stride = len;
    for (int dim = 0; dim < xs->rank; dim++) { /* row dim: the coordinates along input dim */
        stride = xs->dim[dim] ? stride / xs->dim[dim] : 0;
        kl_kernel *k = kl_kernel_new(L->prog, n, kl_sprintf(a, "coord%d", dim));
        k->n_loops = k->n_par = 1;
        k->extent[0] = len;
        k->extent_expr[0] = kl_lower_dd_length(L, count);
        kl_expr *i = kl_e_iv(a, 0);
        kl_expr *p = kl_e_load(a, pos, &i);
        if (stride > 1) p = kl_e_binary(a, KL_DIV, p, kl_e_idx(a, stride));
        if (dim > 0) p = kl_e_binary(a, KL_MOD, p, kl_e_idx(a, xs->dim[dim]));
        k->value = p;
        kl_lower_dd_store(L, k, out, 1, count, (kl_expr *[]){kl_e_idx(a, dim), kl_e_iv(a, 0)});
        kl_program_add_kernel(L->prog, k);
    }
    return true;
}

/* ---------------------------------------------------------------- Compress */

typedef struct compress {
    int axis;            /* of the input read flat when the attribute is absent */
    int64_t length;      /* the condition's */
    kl_shape in, out;    /* the input (flat without an axis) and the output's bound */
} compress;

static bool compress_plan(kl_node *n, compress *c, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_value *x = n->inputs[0], *cond = n->inputs[1];
    if (cond->dtype != KL_BOOL || cond->shape.rank != 1)
        return kl_error(d, n, "the condition must be a 1-D bool tensor (it is %s of rank %d)",
                        kl_dtype_name(cond->dtype), cond->shape.rank);
    c->in = x->shape;
    c->axis = 0;
    if (kl_attr_find(n, "axis")) {
        int64_t axis = kl_attr_int(n, "axis", 0);
        if (!kl_axis_normalize(axis, x->shape.rank, &c->axis) || (n->opset < 11 && axis < 0))
            return kl_error(d, n, "axis %lld is out of range for rank %d", (long long)axis,
                            x->shape.rank);
    } else {
        c->in = (kl_shape){.rank = 1, .dim = {kl_shape_numel(&x->shape)}};
    }
    c->length = cond->shape.dim[0];
    if (c->length > c->in.dim[c->axis])
        return kl_error(d, n, "the condition has %lld elements, more than the %lld along axis %d",
                        (long long)c->length, (long long)c->in.dim[c->axis], c->axis);
    c->out = c->in;
    c->out.dim[c->axis] = c->length;
    return true;
}

static bool infer_compress(kl_node *n, kl_diag *d) {
    compress c;
    return compress_plan(n, &c, d) &&
           kl_infer_data_dependent(n, 0, n->inputs[0]->dtype, &c.out, c.axis);
}

static kl_expr *condition_holds(void *ctx, kl_arena *a, kl_expr *i) {
    return kl_e_load(a, ctx, &i);
}

static bool lower_compress(kl_lower *L, kl_node *n, kl_diag *d) {
    compress c;
    if (!compress_plan(n, &c, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    if (!kl_shape_equal(&x->shape, &c.in)) x = kl_program_view(L->prog, x, &c.in);
    kl_buffer *cond = kl_lower_buffer(L, n->inputs[1]);
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    kl_buffer *count = kl_lower_dd_count(L, n);
    kl_lower_dd_mark(L, n->outputs[0], count);
    kl_lower_dd_count_kernel(L, n, count, c.length, condition_holds(cond, a, kl_e_iv(a, 1)));
    kl_buffer *pos =
        kl_lower_true_positions(L, n, c.length, condition_holds, cond);
    kl_kernel *k = kl_kernel_new(L->prog, n, "gather");
    k->n_loops = k->n_par = c.out.rank;
    for (int i = 0; i < c.out.rank; i++) k->extent[i] = c.out.dim[i];
    k->extent_expr[c.axis] = kl_lower_dd_length(L, count);
    kl_expr **idx = kl_lower_ivs(L, c.out.rank);
    kl_expr *at = kl_e_iv(a, c.axis);
    kl_expr **src = kl_lower_ivs(L, c.out.rank);
    src[c.axis] = kl_e_load(a, pos, &at);
    k->value = kl_e_load(a, x, src);
    kl_lower_dd_store(L, k, out, c.axis, count, idx);
    kl_program_add_kernel(L->prog, k);
    return true;
}

const kl_op kl_ops_nonzero[] = {
    {"", "NonZero", 9, KL_OPSET_LATEST, nonzero_attrs, infer_nonzero, lower_nonzero},
    {"", "Compress", 9, KL_OPSET_LATEST, compress_attrs, infer_compress, lower_compress},
    {0},
};
