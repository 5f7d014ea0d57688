/*
 * lower.c — turning the graph into a kernel program, and the helpers operators lower with.
 *
 * Every graph value gets one buffer: a constant becomes weights in the object, a graph input or
 * output a predict() argument, anything else a slot in the workspace. Graph outputs that no node
 * writes (a constant, an input, the same value listed twice) get a copy kernel so every output
 * argument is always written.
 *
 * Views. Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout (at inference) and a Transpose that only moves
 * size-1 dims keep the bytes as they are (kl_op.view), so their output is a view of the input's
 * storage (kl_program_view) instead of a copy: nothing but the output's own producer writes a
 * value's storage, and every reader runs after it, so sharing is safe. A graph output cannot be
 * such a view (it must live in its predict() argument); when its input is an intermediate that a
 * node computes, the alias goes the other way before any node is lowered: the input's buffer
 * becomes a view of the output argument, so the producer writes straight into it. Otherwise
 * (the input is a graph input or a constant, or already aliased elsewhere) it stays a copy.
 * Views of views resolve to one root storage; the planner extends the root's lifetime over every
 * view's use, and the back end gives each storage one pointer (kernel.c's noalias logic is per
 * root).
 * A constant a lowering makes (the random generators' draws) becomes the value's buffer itself
 * in the same way (kl_lower_constant), unless the value needs storage of its own.
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

bool kl_lower_view(kl_lower *L, const kl_node *n, kl_value *in, kl_value *out) {
    kl_buffer *src = kl_lower_buffer(L, in);
    kl_buffer *own = out->id < L->n_values ? L->buf_of_value[out->id] : NULL;
    if (own && kl_buffer_root(own) == kl_buffer_root(src)) return true; /* aliased already */
    if (own || out->output_index >= 0 || out->data || out->id >= L->n_values)
        return kl_lower_copy(L, n, src, kl_lower_buffer(L, out));
    L->buf_of_value[out->id] = kl_program_view(L->prog, src, &out->shape);
    return true;
}

bool kl_lower_constant(kl_lower *L, const kl_node *n, kl_value *out, kl_buffer *table) {
    kl_buffer *own = out->id < L->n_values ? L->buf_of_value[out->id] : NULL;
    if (own || out->output_index >= 0 || out->data || out->id >= L->n_values)
        return kl_lower_copy(L, n, table, kl_lower_buffer(L, out));
    L->buf_of_value[out->id] = table;
    return true;
}

static bool is_view_node(const kl_node *n) {
    return !n->dead && n->op && n->op->view && n->n_inputs >= 1 && n->inputs[0] &&
           n->n_outputs >= 1 && n->outputs[0] && n->op->view(n);
}

/* A value that one of the graph's nodes computes into a workspace buffer of its own. */
static bool computed_intermediate(const kl_lower *L, const kl_value *v) {
    return !v->data && v->input_index < 0 && v->output_index < 0 && v->producer &&
           !v->producer->dead && v->producer->op && v->producer->op->lower &&
           v->id < L->n_values && !L->buf_of_value[v->id];
}

/* The reverse alias (see the top of the file), from the graph's end so that a chain of views in
 * front of an output all resolve into it. */
static void alias_into_outputs(kl_lower *L, kl_graph *g) {
    for (int i = g->nodes.n - 1; i >= 0; i--) {
        kl_node *n = g->nodes.items[i];
        if (!is_view_node(n)) continue;
        kl_value *in = n->inputs[0], *out = n->outputs[0];
        kl_buffer *ob = out->id < L->n_values ? L->buf_of_value[out->id] : NULL;
        if (!ob || kl_buffer_root(ob)->kind != KL_BUF_OUTPUT || !computed_intermediate(L, in))
            continue;
        L->buf_of_value[in->id] = kl_program_view(L->prog, ob, &in->shape);
    }
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

/* A node's guard as its kernels' guard: the run-time levels only (a constant level holds,
 * shape inference killed the nodes of those that fail). One kernel guard per graph guard, so
 * that the kernels of one branch share it and passes compare guards by pointer. */
typedef struct guard_memo {
    kl_ptrvec from, to;
} guard_memo;

static const kl_kernel_guard *kernel_guard(kl_lower *L, const kl_guard *g, guard_memo *m) {
    if (!g) return NULL;
    const kl_kernel_guard *outer = kernel_guard(L, g->outer, m);
    if (g->cond->data) return outer;
    for (int i = 0; i < m->from.n; i++)
        if (m->from.items[i] == g) return m->to.items[i];
    kl_kernel_guard *k = kl_alloc(L->arena, sizeof *k);
    *k = (kl_kernel_guard){kl_lower_buffer(L, g->cond), g->when, outer};
    kl_ptrvec_push(L->arena, &m->from, (void *)g);
    kl_ptrvec_push(L->arena, &m->to, k);
    return k;
}

kl_program *kl_lower_graph(kl_arena *a, kl_graph *g, kl_diag *d) {
    kl_lower L = {.arena = a, .prog = kl_program_new(a), .n_values = g->values.n};
    L.buf_of_value = kl_alloc_array(a, (size_t)g->values.n + 1, sizeof *L.buf_of_value);
    collect_arguments(&L, g);
    for (int i = 0; i < g->inputs.n; i++) /* first: a wrong value is refused before any work */
        if (((kl_value *)g->inputs.items[i])->bound_value)
            kl_lower_bound_value_check(&L, g->inputs.items[i]);
    alias_into_outputs(&L, g);
    guard_memo memo = {0};
    for (int i = 0; i < g->nodes.n; i++) {
        kl_node *n = g->nodes.items[i];
        if (n->dead) continue;
        if (!n->op || !n->op->lower) {
            kl_error(d, n, "operator has no lowering");
            continue;
        }
        int first = L.prog->kernels.n;
        kl_lower_dd_pad_outputs(&L, n);
        if (n->op->lower(&L, n, d)) kl_lower_dd_follow(&L, n, first, d);
        const kl_kernel_guard *guard = kernel_guard(&L, n->guard, &memo);
        for (int k = first; k < L.prog->kernels.n; k++)
            ((kl_kernel *)L.prog->kernels.items[k])->guard = guard;
    }
    if (kl_diag_failed(d)) return NULL;
    kl_program_strings_first(L.prog);
    for (int i = 0; i < g->outputs.n; i++) { /* a copy would not know the run-time length */
        const kl_value *v = g->outputs.items[i];
        if (v->data_dependent && v->output_index != i)
            return kl_error(d, v->producer, "output '%s' is listed twice among the graph's "
                            "outputs, and its length depends on the data (supported once only)",
                            v->name), NULL;
    }
    lower_outputs_not_written(&L, g);
    for (int i = 0; i < g->broken_guards.n; i++) {
        const kl_guard *gd = g->broken_guards.items[i];
        if (kl_guard_state(gd) < 0) continue; /* under a branch ruled out anyway */
        kl_trap *t = kl_alloc(a, sizeof *t);
        t->guard = kernel_guard(&L, gd, &memo);
        t->why = gd->broken;
        if (!t->guard) { /* every level a constant that holds: taken whatever the inputs */
            kl_error(d, NULL, "%s", gd->broken);
            return NULL;
        }
        kl_ptrvec_push(a, &L.prog->traps, t);
    }
    return L.prog;
}
