/*
 * fold.c — evaluate a node whose inputs are all constant at compile time, through the node's
 * own lowering run in the kernel interpreter (never a second implementation of the operator).
 * An output whose length depends on the data (NonZero, ...) gets its exact shape: its data is
 * dense at that shape (ops/data_dependent.c).
 */
#include "kl.h"

static void back_buffers(kl_program *p) {
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *b = p->buffers.items[i];
        if (b->view_of) continue;
        if (b->kind == KL_BUF_CONST) b->host = (void *)b->data;
        else b->host = kl_alloc(p->arena, (size_t)kl_buffer_bytes(b));
    }
}

bool kl_fold_node(kl_graph *g, kl_node *n, kl_diag *d) {
    kl_lower L = {.arena = g->arena, .prog = kl_program_new(g->arena), .n_values = g->values.n};
    L.buf_of_value = kl_alloc_array(g->arena, (size_t)g->values.n + 1, sizeof *L.buf_of_value);
    kl_buffer **outs = kl_alloc_array(g->arena, (size_t)n->n_outputs + 1, sizeof *outs);
    for (int i = 0; i < n->n_outputs; i++) {
        kl_value *v = n->outputs[i];
        if (!v || v->data) continue;
        /* a private buffer, whatever the value is in the graph; of the output kind, so that a
           data-dependent length is written densely at its exact shape, as for the caller
           (kl_lower_dd_store), not padded to the bound */
        outs[i] = kl_program_buffer(L.prog, v->name, KL_BUF_OUTPUT, v->dtype, &v->shape);
        L.buf_of_value[v->id] = outs[i];
    }
    if (!n->op->lower(&L, n, d)) return false;
    kl_program_strings_first(L.prog);
    back_buffers(L.prog);
    if (!kl_interp_program(L.prog, d)) return false;
    for (int i = 0; i < n->n_outputs; i++) {
        if (!outs[i]) continue;
        kl_value *v = n->outputs[i];
        v->data = outs[i]->host;
        if (outs[i]->dd_count) { /* a data-dependent length: now known, the shape is exact */
            v->shape.dim[v->dd_dim] = *(const int64_t *)kl_buffer_root(outs[i]->dd_count)->host;
            v->data_dependent = false;
        }
    }
    return true;
}
