/*
 * control.c — control flow: If.
 *
 * The loader inlines both branches of an If into the graph (onnx/load.c): their nodes run under
 * a guard, and the If node that stays behind only chooses, with inputs
 * [cond, then outputs..., else outputs...]. Two cases:
 *   - the condition folded to a constant (shapes bound, or a constant in the model): the other
 *     branch's nodes were killed by shape inference, kl_if_settle drops its outputs from the
 *     If's inputs, and each output is the taken branch's value (a view, or folded);
 *   - the condition is a run-time value: both branches are compiled, the generated code runs
 *     only the kernels of the branch the condition picks, and each output is a select of the two
 *     branches' values. Both branches must then agree on element types. Where their shapes
 *     differ along one dim, the output's length there depends on the data (the condition:
 *     ops/data_dependent.c), bounded by the longer branch's: a count kernel picks the length,
 *     and each branch's value is copied in by a kernel whose loop along the dim runs to its
 *     length when the condition picks it and not at all otherwise.
 */
#include <stdio.h>

#include "ops.h"

static const char *const if_attrs[] = {"then_branch", "else_branch", NULL};

/* The condition's value when it is a compile-time constant: 1 or 0; -1 otherwise. */
static int constant_condition(const kl_node *n) {
    const kl_value *c = kl_node_input(n, 0);
    if (!c || !c->data || !c->has_shape || kl_shape_numel(&c->shape) != 1) return -1;
    return kl_value_const_int(c, 0) != 0;
}

/* The branch of n's `side` left out by shape inference, or NULL. */
static const kl_guard *broken_side(const kl_graph *g, const kl_node *n, bool side) {
    for (int i = 0; i < g->broken_guards.n; i++) {
        const kl_guard *gd = g->broken_guards.items[i];
        if (gd->cond == n->inputs[0] && gd->when == side) return gd;
    }
    return NULL;
}

static void drop_side(kl_graph *g, kl_node *n, bool side) {
    int k = n->n_outputs;
    for (int i = 0; i < k; i++) kl_node_set_input(g, n, side ? 1 + i : 1 + k + i, NULL);
}

bool kl_if_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    int k = n->n_outputs;
    if (n->n_inputs != 1 + 2 * k || !n->inputs[0]) return true; /* if_infer says what is wrong */
    int taken = constant_condition(n);
    if (taken >= 0) {
        drop_side(g, n, !taken);
        return true;
    }
    const kl_guard *then_out = broken_side(g, n, true), *else_out = broken_side(g, n, false);
    if (then_out && else_out)
        return kl_error(d, n, "neither branch can be compiled for the bound shapes: then_branch: "
                        "%s; else_branch: %s", then_out->broken, else_out->broken);
    if (then_out) drop_side(g, n, true);
    if (else_out) drop_side(g, n, false);
    return true;
}

/* "[1,512]" (inference has no arena to build strings in) */
static void shape_text(const kl_shape *s, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < s->rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? "," : "", (long long)s->dim[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Input of output i for `side` (1: then, 0: else). */
static kl_value *branch_value(const kl_node *n, int side, int i) {
    return kl_node_input(n, side ? 1 + i : 1 + n->n_outputs + i);
}

static bool if_infer(kl_node *n, kl_diag *d) {
    int k = n->n_outputs;
    if (n->n_inputs != 1 + 2 * k)
        return kl_error(d, n, "the node's branches were not inlined (%d inputs for %d outputs)",
                        n->n_inputs, k);
    if (!kl_infer_need_input(n, 0, d)) return false;
    const kl_value *c = n->inputs[0];
    if (c->dtype != KL_BOOL || kl_shape_numel(&c->shape) != 1)
        return kl_error(d, n, "the condition must be one bool element, not %s with %lld",
                        kl_dtype_name(c->dtype), (long long)kl_shape_numel(&c->shape));
    int taken = constant_condition(n);
    for (int i = 0; i < k; i++) {
        if (!n->outputs[i]) continue;
        kl_value *t = branch_value(n, 1, i), *e = branch_value(n, 0, i);
        /* a side without values: ruled out by a constant condition, or left out (settle) */
        const kl_value *from = taken == 0 || !t ? e : t;
        if (!from) return kl_error(d, n, "output %d: the branch gives no value", i);
        if (taken < 0 && t && e) {
            if (t->dtype != e->dtype)
                return kl_error(d, n, "output %d is %s in then_branch but %s in else_branch",
                                i, kl_dtype_name(t->dtype), kl_dtype_name(e->dtype));
            if (!kl_shape_equal(&t->shape, &e->shape)) {
                int dim = kl_shape_differing_dim(&t->shape, &e->shape);
                if (dim >= 0) {
                    kl_shape bound = t->shape;
                    if (e->shape.dim[dim] > bound.dim[dim]) bound.dim[dim] = e->shape.dim[dim];
                    if (!kl_infer_data_dependent(n, i, t->dtype, &bound, dim)) return false;
                    continue;
                }
                char ts[160], es[160];
                shape_text(&t->shape, ts, sizeof ts);
                shape_text(&e->shape, es, sizeof es);
                return kl_error(d, n, "output %d has shape %s in then_branch but %s in "
                                "else_branch, and the condition is only known at run time: kiln "
                                "follows a length that depends on the condition along one dim, "
                                "not a rank or several dims", i, ts, es);
            }
        }
        if (!kl_infer_set(n, i, from->dtype, &from->shape)) return false;
    }
    return true;
}

static kl_expr *scalar_load(kl_lower *L, kl_buffer *b) {
    kl_expr *idx[KL_MAX_RANK];
    for (int d = 0; d < b->shape.rank; d++) idx[d] = kl_e_idx(L->arena, 0);
    return kl_e_load(L->arena, b, idx);
}

/* Output i, whose branches differ in length along out->dd_dim: a count the condition picks. */
static void lower_by_length(kl_lower *L, kl_node *n, int i, kl_expr *cond) {
    kl_arena *a = L->arena;
    kl_value *out = n->outputs[i];
    int dim = out->dd_dim;
    kl_buffer *count = kl_lower_dd_set_length(
        L, n, out, kl_e_select(a, cond, kl_e_idx(a, branch_value(n, 1, i)->shape.dim[dim]),
                               kl_e_idx(a, branch_value(n, 0, i)->shape.dim[dim])));
    kl_buffer *ob = kl_lower_buffer(L, out);
    for (int side = 1; side >= 0; side--) {
        kl_buffer *from = kl_lower_buffer(L, branch_value(n, side, i));
        if (kl_shape_numel(&from->shape) == 0) continue;
        kl_kernel *k = kl_kernel_new(L->prog, n, side ? "if_then_copy" : "if_else_copy");
        k->n_loops = k->n_par = from->shape.rank;
        for (int l = 0; l < from->shape.rank; l++) k->extent[l] = from->shape.dim[l];
        kl_expr *len = kl_e_idx(a, from->shape.dim[dim]), *none = kl_e_idx(a, 0);
        k->extent_expr[dim] = side ? kl_e_select(a, cond, len, none)
                                   : kl_e_select(a, cond, none, len);
        kl_expr **idx = kl_lower_ivs(L, from->shape.rank);
        kl_lower_dd_store(L, k, ob, dim, count, idx);
        k->value = kl_e_load(a, from, kl_lower_ivs(L, from->shape.rank));
        kl_program_add_kernel(L->prog, k);
    }
}

static bool if_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    (void)d;
    for (int i = 0; i < n->n_outputs; i++) {
        kl_value *out = n->outputs[i];
        if (!out || out->data) continue;
        kl_value *t = branch_value(n, 1, i), *e = branch_value(n, 0, i);
        if (!t || !e) { /* one side only (see if_infer) */
            if (!kl_lower_view(L, n, t ? t : e, out)) return false;
            continue;
        }
        if (out->data_dependent) {
            lower_by_length(L, n, i, scalar_load(L, kl_lower_buffer(L, n->inputs[0])));
            continue;
        }
        kl_buffer *ob = kl_lower_buffer(L, out);
        kl_buffer *tb = kl_lower_buffer(L, branch_value(n, 1, i));
        kl_buffer *eb = kl_lower_buffer(L, branch_value(n, 0, i));
        kl_kernel *k = kl_kernel_new(L->prog, n, "if_select");
        k->n_loops = k->n_par = ob->shape.rank;
        for (int l = 0; l < ob->shape.rank; l++) k->extent[l] = ob->shape.dim[l];
        k->out = ob;
        k->out_idx = kl_lower_ivs(L, ob->shape.rank);
        k->value = kl_e_select(L->arena, scalar_load(L, kl_lower_buffer(L, n->inputs[0])),
                               kl_lower_load_broadcast(L, tb, ob->shape.rank),
                               kl_lower_load_broadcast(L, eb, ob->shape.rank));
        kl_program_add_kernel(L->prog, k);
    }
    return true;
}

const kl_op kl_ops_control[] = {
    {"", "If", 1, KL_OPSET_LATEST, if_attrs, if_infer, if_lower},
    {0},
};
