/*
 * center_crop_pad.c — CenterCropPad (opset 18): each named axis cropped or zero-padded to a
 * target length, centred (the odd element goes to the end, as ONNX's reference slices).
 *
 * The target shape is input 1: a compile-time constant (an initializer or a folded value),
 * since it is the output's shape, or given at run time where the model declares the output's
 * shape (then a kernel checks that it asks for that shape: ops/shape_check.c). One kernel over the output: on an axis the output
 * shortens, index o reads x[o + (dim - len) / 2]; on one it lengthens, x[o - (len - dim) / 2]
 * where that is inside x, else 0.
 */
#include "arith_util.h"

typedef struct ccp {
    kl_shape out;
    int64_t in_off[KL_MAX_RANK];  /* crop: first input index kept */
    int64_t out_off[KL_MAX_RANK]; /* pad: first output index written from x */
    int axes[KL_MAX_RANK], n_axes;
    bool at_run_time;             /* the target shape is given at run time */
} ccp;

static bool ccp_shapes(kl_node *n, ccp *c, kl_diag *d) {
    c->at_run_time = kl_input_at_run_time(n, 1);
    if (!kl_arith_need_input(n, 0, d) || (!c->at_run_time && !kl_infer_need_const(n, 1, d)))
        return false;
    const kl_value *y = n->outputs[0];
    if (c->at_run_time && !y->shape_declared && !y->has_shape) return kl_infer_declared(n, 1, d);
    const kl_shape *in = &n->inputs[0]->shape;
    kl_value *shape = n->inputs[1];
    if (!kl_dtype_is_signed_int(shape->dtype) || shape->shape.rank != 1)
        return kl_error(d, n, "shape must be a 1-D integer tensor");
    int64_t count = shape->shape.dim[0];
    int *axes = c->axes;
    const int64_t *given;
    int n_axes = kl_attr_ints(n, "axes", &given);
    if (!kl_attr_find(n, "axes")) {
        n_axes = in->rank;
        for (int i = 0; i < n_axes; i++) axes[i] = i;
    } else {
        if (n_axes > in->rank) return kl_error(d, n, "more axes than the input's rank");
        for (int i = 0; i < n_axes; i++) {
            if (!kl_axis_normalize(given[i], in->rank, &axes[i]))
                return kl_error(d, n, "axes[%d] = %lld is out of range for rank %d", i,
                                (long long)given[i], in->rank);
            for (int j = 0; j < i; j++)
                if (axes[j] == axes[i]) return kl_error(d, n, "axis %d is named twice", axes[i]);
        }
    }
    if (count != n_axes)
        return kl_error(d, n, "shape has %lld entries for %d axes", (long long)count, n_axes);
    c->out = *in;
    for (int i = 0; i < KL_MAX_RANK; i++) c->in_off[i] = c->out_off[i] = 0;
    for (int i = 0; i < n_axes; i++) {
        int a = axes[i];
        int64_t len = c->at_run_time ? y->shape.dim[a] : kl_value_const_int(shape, i);
        int64_t dim = in->dim[a];
        if (len < 0) return kl_error(d, n, "shape[%d] = %lld is negative", i, (long long)len);
        c->out.dim[a] = len;
        if (len < dim) c->in_off[a] = (dim - len) / 2;
        else c->out_off[a] = (len - dim) / 2;
    }
    c->n_axes = n_axes;
    if (c->at_run_time && !kl_shape_equal(&c->out, &y->shape))
        return kl_error(d, n, "the declared output shape changes an axis CenterCropPad keeps");
    return true;
}

static bool infer_center_crop_pad(kl_node *n, kl_diag *d) {
    ccp c;
    return ccp_shapes(n, &c, d) && kl_infer_set(n, 0, n->inputs[0]->dtype, &c.out);
}

static bool lower_center_crop_pad(kl_lower *L, kl_node *n, kl_diag *d) {
    ccp c;
    if (!ccp_shapes(n, &c, d)) return false;
    kl_arena *a = L->arena;
    if (c.at_run_time) {
        kl_expr *ok = NULL;
        for (int i = 0; i < c.n_axes; i++)
            ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, kl_lower_int_at(L, n, 1, i),
                                             kl_e_idx(a, c.out.dim[c.axes[i]])));
        kl_lower_shape_check(L, n, ok);
    }
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    kl_expr *idx[KL_MAX_RANK], *inside = NULL;
    for (int i = 0; i < x->shape.rank; i++) {
        idx[i] = kl_e_addc(a, kl_e_iv(a, i), c.in_off[i] - c.out_off[i]);
        if (c.out.dim[i] > x->shape.dim[i])
            inside = kl_e_and(a, inside, kl_e_in_range(a, idx[i], x->shape.dim[i]));
    }
    kl_expr *v = kl_e_load(a, x, idx);
    if (inside) v = kl_e_select(a, inside, v, kl_arith_const(a, x->dtype, 0));
    kl_arith_map(L, n, NULL, y, v);
    return true;
}

static const char *const ccp_attrs[] = {"axes", NULL};

const kl_op kl_ops_center_crop_pad[] = {
    {"", "CenterCropPad", 18, KL_OPSET_LATEST, ccp_attrs, infer_center_crop_pad,
     lower_center_crop_pad},
    {0},
};
