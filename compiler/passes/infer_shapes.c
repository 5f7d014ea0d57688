/*
 * infer_shapes.c — shape inference and constant folding, node by node in topological order.
 *
 * The two run together because each needs the other: Reshape's output shape is only known once
 * the Shape -> Gather -> Concat chain feeding it has been folded to a constant, and folding a
 * node needs its inferred output shapes.
 */
#include "kl.h"

/* Folding runs in the interpreter; beyond this many output elements the node is left for the
 * compiled code, which is always correct, just not precomputed. */
#define FOLD_MAX_ELEMENTS (1 << 24)

/* Also true for a node without inputs: every supported such operator (Constant's forms) is
 * deterministic, so computing it at compile time is exact. */
static bool all_inputs_constant(const kl_node *n) {
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && !n->inputs[i]->data) return false;
    return true;
}

static bool outputs_known(kl_arena *a, const kl_node *n, bool *all_const, int64_t *elements,
                          kl_diag *d) {
    *all_const = true;
    *elements = 0;
    for (int i = 0; i < n->n_outputs; i++) {
        kl_value *v = n->outputs[i];
        if (!v) continue;
        if (!v->has_shape) return kl_error(d, n, "output %d ('%s') has no inferred shape", i, v->name);
        if (!kl_dtype_supported(v->dtype))
            return kl_error(d, n, "output '%s' has element type %s, which kiln does not support",
                            v->name, kl_dtype_name(v->dtype));
        /* the one place every inferred shape passes: nothing downstream sees a size that
           overflows or exceeds what kiln compiles */
        int64_t bytes;
        if (!kl_shape_bytes_checked(&v->shape, v->dtype, &bytes))
            return kl_check_tensor_size(a, &v->shape, v->dtype, n,
                                        kl_sprintf(a, "output '%s'", v->name), d);
        if (!v->data) *all_const = false;
        *elements += kl_shape_numel(&v->shape);
    }
    return true;
}

static bool infer_node(kl_graph *g, kl_node *n, kl_diag *d) {
    /* every operator kiln has defines output 0 (later outputs may be optional); checked once
       here, so that no operator reads an omitted one */
    if ((n->n_outputs < 1 || !n->outputs[0]) && !n->op->out0_optional)
        return kl_error(d, n, "output 0 is missing (the operator requires it)");
    if (n->n_outputs < 1 || !n->outputs[0]) { /* omitted where allowed: an unread value */
        kl_shape none = {0};
        kl_node_set_output(g, n, 0, kl_value_make(g, kl_sprintf(g->arena, "%s_out0", n->name),
                                                  KL_UNDEFINED, &none, NULL));
    }
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && !n->inputs[i]->has_shape)
            return kl_error(d, n, "input '%s' has no known shape", n->inputs[i]->name);
    if (!n->op->infer(n, d)) {
        if (!kl_diag_failed(d)) kl_error(d, n, "shape inference failed");
        return false;
    }
    bool all_const;
    int64_t elements;
    if (!outputs_known(g->arena, n, &all_const, &elements, d)) return false;
    if (!all_const && all_inputs_constant(n) && elements <= FOLD_MAX_ELEMENTS && n->op->lower)
        return kl_fold_node(g, n, d);
    return true;
}

bool pass_infer_shapes(kl_graph *g, kl_diag *d) {
    for (int i = 0; i < g->nodes.n; i++) {
        kl_node *n = g->nodes.items[i];
        if (n->dead) continue;
        if (!infer_node(g, n, d)) return false;
    }
    return true;
}
