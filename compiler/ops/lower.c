/*
 * lower.c — turning the graph into a kernel program, and the helpers operators lower with.
 *
 * Every graph value gets one buffer: a constant becomes weights in the object, a graph input or
 * output a predict() argument, anything else a slot in the workspace. Graph outputs that no node
 * writes (a constant, an input, the same value listed twice) get a copy kernel so every output
 * argument is always written.
 */
#include <string.h>

#include "kl.h"

static kl_buffer_kind kind_of(const kl_value *v) {
    if (v->data) return KL_BUF_CONST;
    if (v->input_index >= 0) return KL_BUF_INPUT;
    if (v->output_index >= 0) return KL_BUF_OUTPUT;
    return KL_BUF_WORKSPACE;
}

kl_buffer *kl_lower_buffer(kl_lower *L, kl_value *v) {
    if (v->id < L->n_values && L->buf_of_value[v->id] && L->buf_of_value[v->id]->name)
        return L->buf_of_value[v->id];
    kl_buffer_kind kind = kind_of(v);
    kl_buffer *b = kl_program_buffer(L->prog, v->name, kind, v->dtype, &v->shape);
    if (kind == KL_BUF_CONST) b->data = v->data;
    if (kind == KL_BUF_INPUT) b->index = v->input_index;
    if (kind == KL_BUF_OUTPUT) b->index = v->output_index;
    if (v->id < L->n_values) L->buf_of_value[v->id] = b;
    return b;
}

kl_buffer *kl_lower_temp(kl_lower *L, const char *name, kl_dtype t, const kl_shape *s) {
    return kl_program_buffer(L->prog, name, KL_BUF_WORKSPACE, t, s);
}

kl_expr **kl_lower_ivs(kl_lower *L, int rank) {
    kl_expr **ivs = kl_alloc_array(L->arena, rank ? (size_t)rank : 1, sizeof *ivs);
    for (int i = 0; i < rank; i++) ivs[i] = kl_e_iv(L->arena, i);
    return ivs;
}

kl_expr *kl_lower_load_broadcast(kl_lower *L, kl_buffer *b, int out_rank) {
    kl_expr *idx[KL_MAX_RANK];
    int lead = out_rank - b->shape.rank;
    for (int d = 0; d < b->shape.rank; d++)
        idx[d] = b->shape.dim[d] == 1 ? kl_e_idx(L->arena, 0) : kl_e_iv(L->arena, lead + d);
    return kl_e_load(L->arena, b, idx);
}

/* A kernel whose parallel loops walk the whole of `out` in row-major order. */
static kl_kernel *kernel_over(kl_lower *L, const kl_node *n, const char *tag, kl_buffer *out) {
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_loops = k->n_par = out->shape.rank;
    for (int i = 0; i < out->shape.rank; i++) k->extent[i] = out->shape.dim[i];
    k->out = out;
    k->out_idx = kl_lower_ivs(L, out->shape.rank);
    return k;
}

bool kl_lower_elementwise(kl_lower *L, kl_node *n, kl_elementwise_fn fn) {
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    int rank = out->shape.rank;
    kl_expr *in[16];
    int n_in = n->n_inputs < 16 ? n->n_inputs : 16;
    for (int i = 0; i < n_in; i++)
        in[i] = n->inputs[i] ? kl_lower_load_broadcast(L, kl_lower_buffer(L, n->inputs[i]), rank)
                             : NULL;
    kl_kernel *k = kernel_over(L, n, NULL, out);
    k->value = fn(L, n, in, n_in);
    if (!k->value) return false;
    kl_program_add_kernel(L->prog, k);
    return true;
}

bool kl_lower_copy(kl_lower *L, const kl_node *n, kl_buffer *src, kl_buffer *dst) {
    int64_t count = kl_shape_numel(&dst->shape);
    kl_shape flat = {.rank = 1, .dim = {count}};
    kl_buffer *s = kl_shape_equal(&src->shape, &flat) ? src : kl_program_view(L->prog, src, &flat);
    kl_buffer *t = kl_shape_equal(&dst->shape, &flat) ? dst : kl_program_view(L->prog, dst, &flat);
    kl_kernel *k = kernel_over(L, n, "copy", t);
    kl_expr *i0 = kl_e_iv(L->arena, 0);
    k->value = kl_e_load(L->arena, s, &i0);
    kl_program_add_kernel(L->prog, k);
    return true;
}

static bool lower_outputs_not_written(kl_lower *L, kl_graph *g) {
    for (int i = 0; i < g->outputs.n; i++) {
        kl_value *v = g->outputs.items[i];
        kl_buffer *b = kl_lower_buffer(L, v);
        if (b->kind == KL_BUF_OUTPUT && b->index == i) continue;
        kl_buffer *out = kl_program_buffer(L->prog, v->name, KL_BUF_OUTPUT, v->dtype, &v->shape);
        out->index = i;
        kl_lower_copy(L, NULL, b, out);
        L->prog->outputs.items[i] = out;
    }
    return true;
}

static void collect_arguments(kl_lower *L, kl_graph *g) {
    for (int i = 0; i < g->inputs.n; i++)
        kl_ptrvec_push(L->arena, &L->prog->inputs, kl_lower_buffer(L, g->inputs.items[i]));
    for (int i = 0; i < g->outputs.n; i++)
        kl_ptrvec_push(L->arena, &L->prog->outputs, kl_lower_buffer(L, g->outputs.items[i]));
}

kl_program *kl_lower_graph(kl_arena *a, kl_graph *g, kl_diag *d) {
    kl_lower L = {.arena = a, .prog = kl_program_new(a), .n_values = g->values.n};
    L.buf_of_value = kl_alloc_array(a, (size_t)g->values.n + 1, sizeof *L.buf_of_value);
    collect_arguments(&L, g);
    for (int i = 0; i < g->nodes.n; i++) {
        kl_node *n = g->nodes.items[i];
        if (n->dead) continue;
        if (!n->op || !n->op->lower) {
            kl_error(d, n, "operator has no lowering");
            continue;
        }
        n->op->lower(&L, n, d);
    }
    if (kl_diag_failed(d)) return NULL;
    lower_outputs_not_written(&L, g);
    return L.prog;
}
