/*
 * shape_check.c — shape-carrying inputs given at run time, checked against declared shapes.
 *
 * Reshape's shape, Unsqueeze's axes, ConstantOfShape's shape and the like decide the shape of
 * what a node produces. kiln plans memory and loops for shapes known when compiling, so such
 * an input is normally a constant (exporters' Shape -> Gather -> Concat chains fold to one).
 * When it is given at run time instead, but the model declares the shape the node produces (a
 * graph output's type), that shape is what the compiled code produces; the value that arrives
 * is then checked by a kernel before the node's work: a value that would give another shape
 * makes predict return KILN_E_SHAPE (the same error-exit as KILN_E_INDEX_OUT_OF_RANGE:
 * kl_kernel.error_code). The interpreter reports it as a diagnostic instead.
 *
 * When neither holds, the message names the graph inputs the operand is computed from: the
 * user can compile for one value of each (`--value`, checked when predict runs), and `kiln
 * check` does so from its data set (kl_diag.needs_values).
 */
#include <stdio.h>
#include <string.h>

#include "kiln.h"
#include "kl.h"

/* ---- the graph inputs a run-time operand is computed from ------------------------------ */

enum { MAX_WALK = 512, MAX_NAMED = 4 };

/* Depth first through the producers, each value once (the walk stops after MAX_WALK). */
static int source_inputs(const kl_value *v, const kl_value **found, int cap) {
    const kl_value *stack[MAX_WALK], *seen[MAX_WALK];
    int n_stack = 0, n_seen = 0, n_found = 0;
    stack[n_stack++] = v;
    while (n_stack > 0 && n_seen < MAX_WALK) {
        const kl_value *x = stack[--n_stack];
        bool visited = false;
        for (int i = 0; i < n_seen && !visited; i++) visited = seen[i] == x;
        if (visited || x->data) continue;
        seen[n_seen++] = x;
        if (x->input_index >= 0 && !x->producer) {
            if (n_found < cap) found[n_found++] = x;
            continue;
        }
        const kl_node *p = x->producer;
        if (!p || kl_node_reads_shape_only(p)) continue; /* what flows in is no part of it */
        for (int i = 0; i < p->n_inputs && n_stack < MAX_WALK; i++)
            if (p->inputs[i]) stack[n_stack++] = p->inputs[i];
    }
    return n_found;
}

void kl_value_binding_hint(kl_diag *d, const kl_value *v, char *buf, size_t cap) {
    const kl_value *inputs[MAX_NAMED];
    int n = v ? source_inputs(v, inputs, MAX_NAMED) : 0;
    buf[0] = 0;
    if (n == 0) return;
    size_t len = (size_t)snprintf(buf, cap, "; %s graph input%s ", inputs[0] == v ? "it is" :
                                  "it is computed from", n > 1 ? "s" : "");
    for (int i = 0; i < n && len < cap; i++) {
        kl_diag_need_value(d, inputs[i]->name);
        len += (size_t)snprintf(buf + len, cap - len, "%s'%s'", i ? ", " : "", inputs[i]->name);
    }
    if (len < cap)
        snprintf(buf + len, cap - len, ": --value %s:V,... compiles for one value of %s, which "
                 "predict then checks (KILN_E_SHAPE for another)", inputs[0]->name,
                 n > 1 ? "each" : "it");
}

bool kl_input_at_run_time(kl_node *n, int i) {
    const kl_value *v = kl_node_input(n, i);
    return v && !v->data;
}

bool kl_infer_declared(kl_node *n, int input, kl_diag *d) {
    kl_value *y = n->outputs[0];
    if (!y->shape_declared && !y->has_shape) {
        char hint[512];
        kl_value_binding_hint(d, n->inputs[input], hint, sizeof hint);
        return kl_error(d, n, "input %d ('%s') is given at run time: kiln needs it as a "
                        "compile-time constant, or the model must declare the shape of output "
                        "'%s'%s", input, n->inputs[input]->name, y->name,
                        *hint ? hint : " (its value is data-dependent: shapes that depend on the "
                        "data are followed along one dim only)");
    }
    kl_shape declared = y->shape;
    kl_dtype t = y->dtype != KL_UNDEFINED ? y->dtype : n->inputs[0]->dtype;
    return kl_infer_set(n, 0, t, &declared);
}

kl_expr *kl_lower_int_at(kl_lower *L, kl_node *n, int input, int64_t i) {
    kl_buffer *b = kl_lower_buffer(L, n->inputs[input]);
    kl_expr *idx[KL_MAX_RANK];
    for (int d = 0; d < b->shape.rank; d++) idx[d] = kl_e_idx(L->arena, d == b->shape.rank - 1 ? i : 0);
    return kl_e_cast(L->arena, KL_I64, kl_e_load(L->arena, b, idx));
}

void kl_lower_shape_check(kl_lower *L, const kl_node *n, kl_expr *ok) {
    kl_arena *a = L->arena;
    kl_shape scalar = {.rank = 0};
    kl_kernel *k = kl_kernel_new(L->prog, n, "shape_check");
    k->out = kl_lower_temp(L, "shape_mismatch", KL_I32, &scalar);
    k->out_idx = kl_lower_ivs(L, 0);
    k->value = kl_e_select(a, ok ? ok : kl_e_const_i(a, KL_BOOL, 1), kl_e_const_i(a, KL_I32, 0),
                           kl_e_const_i(a, KL_I32, 1));
    k->error_code = KILN_E_SHAPE;
    kl_program_add_kernel(L->prog, k);
}

void kl_lower_bound_value_check(kl_lower *L, kl_value *input) {
    kl_arena *a = L->arena;
    kl_buffer *in = kl_lower_buffer(L, input), *want = kl_lower_buffer(L, input->bound_value);
    int rank = in->shape.rank;
    kl_dtype t = kl_dtype_is_float(in->dtype) ? KL_F64 : KL_I64;
    if (kl_shape_numel(&in->shape) == 0) return; /* nothing to differ */
    kl_expr **iv = kl_lower_ivs(L, rank);
    kl_expr *differs = kl_e_binary(a, KL_NE, kl_e_cast(a, t, kl_e_load(a, in, iv)),
                                   kl_e_cast(a, t, kl_e_load(a, want, iv)));
    kl_lower_check_any(L, NULL, "value_check", "value_mismatch", &in->shape, differs,
                       KILN_E_SHAPE);
}

void kl_lower_check_int_input(kl_lower *L, kl_node *n, int input, int64_t want) {
    kl_lower_shape_check(L, n, kl_e_binary(L->arena, KL_EQ, kl_lower_int_at(L, n, input, 0),
                                           kl_e_idx(L->arena, want)));
}

/* axes[i] of the axes input, negative values counted from the end of `rank` dimensions. */
static kl_expr *axis_at(kl_lower *L, kl_node *n, int input, int i, int rank) {
    kl_arena *a = L->arena;
    kl_expr *v = kl_lower_int_at(L, n, input, i);
    return kl_e_select(a, kl_e_binary(a, KL_LT, v, kl_e_idx(a, 0)), kl_e_addc(a, v, rank), v);
}

kl_expr *kl_lower_axes_are(kl_lower *L, kl_node *n, int input, int rank, unsigned mask) {
    kl_arena *a = L->arena;
    int count = (int)kl_shape_numel(&n->inputs[input]->shape);
    kl_expr *all = NULL;
    for (int ax = 0; ax < rank; ax++) {
        if (!((mask >> ax) & 1u)) continue;
        kl_expr *listed = NULL;
        for (int i = 0; i < count; i++) {
            kl_expr *is = kl_e_binary(a, KL_EQ, axis_at(L, n, input, i, rank), kl_e_idx(a, ax));
            listed = listed ? kl_e_binary(a, KL_OR, listed, is) : is;
        }
        all = kl_e_and(a, all, listed);
    }
    return all;
}
