/*
 * infer_util.c — shape-inference helpers shared by operator families.
 */
#include "kl.h"

bool kl_infer_set(kl_node *n, int out, kl_dtype t, const kl_shape *s) {
    kl_value *v = kl_node_output(n, out);
    if (!v) return true; /* omitted optional output */
    v->dtype = t;
    v->shape = *s;
    v->has_shape = true;
    return true;
}

bool kl_infer_need_input(kl_node *n, int i, kl_diag *d) {
    kl_value *v = kl_node_input(n, i);
    if (!v) return kl_error(d, n, "input %d is required", i);
    if (!v->has_shape) return kl_error(d, n, "input %d ('%s') has no known shape", i, v->name);
    return true;
}

bool kl_infer_need_const(kl_node *n, int i, kl_diag *d) {
    if (!kl_infer_need_input(n, i, d)) return false;
    kl_value *v = n->inputs[i];
    if (!v->data)
        return kl_error(d, n,
                        "input %d ('%s') must be a compile-time constant (data-dependent shapes "
                        "are not supported yet)",
                        i, v->name);
    return true;
}

bool kl_infer_same_as_input(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
}

bool kl_infer_broadcast(kl_node *n, kl_diag *d) {
    kl_shape s = {0};
    kl_dtype t = KL_UNDEFINED;
    bool first = true;
    for (int i = 0; i < n->n_inputs; i++) {
        kl_value *v = n->inputs[i];
        if (!v) continue;
        if (!kl_infer_need_input(n, i, d)) return false;
        if (first) {
            s = v->shape;
            t = v->dtype;
            first = false;
            continue;
        }
        if (v->dtype != t)
            return kl_error(d, n, "input %d ('%s') is %s but input 0 is %s", i, v->name,
                            kl_dtype_name(v->dtype), kl_dtype_name(t));
        kl_shape r;
        if (!kl_shape_broadcast(&s, &v->shape, &r)) {
            kl_arena *a = kl_arena_new();
            kl_error(d, n, "input shapes %s and %s cannot be broadcast", kl_shape_str(a, &s),
                     kl_shape_str(a, &v->shape));
            kl_arena_free(a);
            return false;
        }
        s = r;
    }
    if (first) return kl_error(d, n, "no inputs");
    return kl_infer_set(n, 0, t, &s);
}
