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
 */
#include "kiln.h"
#include "kl.h"

bool kl_input_at_run_time(kl_node *n, int i) {
    const kl_value *v = kl_node_input(n, i);
    return v && !v->data;
}

bool kl_infer_declared(kl_node *n, int input, kl_diag *d) {
    kl_value *y = n->outputs[0];
    if (!y->shape_declared && !y->has_shape)
        return kl_error(d, n, "input %d ('%s') is given at run time: kiln needs it as a "
                        "compile-time constant, or the model must declare the shape of output "
                        "'%s' (data-dependent shapes are not supported yet)",
                        input, n->inputs[input]->name, y->name);
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
