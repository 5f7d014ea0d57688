/*
 * data_dependent_flow.c — a length that depends on the data (ops/data_dependent.c: NonZero,
 * Compress, Unique, NonMaxSuppression) flowing on through the nodes that read such a value.
 *
 * A node's output keeps the length where it varies with it one to one along one of its dims:
 * kl_follow_data_dependent finds that dim by inferring the node again with the length one
 * longer, so no operator has to say so itself (a Transpose, a Cast, arithmetic, a Gather at
 * data-dependent indices, a MatMul over the other dims all do). A node whose outputs do not keep
 * it (a reduction along it, a Gather into it) is refused with a message; Shape and Size read
 * the length as a value.
 *
 * The node's kernels are the operator's own, compiled at the bound; kl_lower_dd_follow then
 * makes every loop that runs along the varying dim, of an operand or of the result, run to the
 * count, so nothing past the length is read or computed, and a later kernel reading the value
 * never meets the padding. A kernel that reaches the dim any other way (at an offset, through
 * indices, through a view of its own) is refused. Intermediate values keep the padded layout of
 * the bound; a graph output is written densely for the caller, which that layout is only where
 * the varying dim leads (every dim before it 1). Where it does not (NonZero -> Cast, [2, n]),
 * the node computes into a padded workspace buffer and a kernel copies that densely into the
 * output (kl_lower_dd_pad_outputs); no other node may then read the output, and a view node
 * (which computes nothing) cannot be such an output.
 */
#include <stdio.h>
#include <stdlib.h>

#include "kl.h"


/* Every dim of v before its varying one is 1: the padded layout is the dense one. */
static bool dd_leads(const kl_value *v) {
    for (int d = 0; d < v->dd_dim; d++)
        if (v->shape.dim[d] != 1) return false;
    return true;
}

/* v, an output of a node that reads a length (not the node counting it), is a graph output
 * that needs a dense copy: its varying dim does not lead. */
static bool padded_graph_output(const kl_value *v) {
    return v && v->data_dependent && v->dd_source != v && v->output_index >= 0 && !dd_leads(v);
}

/* Where the varying length comes from ("output 'nz' of NonZero 'nz0'"), for messages. */
static const char *source_text(const kl_value *v, char *buf, size_t cap) {
    const kl_value *s = v->dd_source ? v->dd_source : v;
    snprintf(buf, cap, "output '%s' of %s '%s'", s->name, s->producer ? s->producer->op_type : "?",
             s->producer ? s->producer->name : "?");
    return buf;
}

/* The value counting the length n's inputs share (NULL: no such input). */
static bool shared_source(const kl_node *n, const kl_value **src, kl_diag *d) {
    char a[256], b[256];
    *src = NULL;
    for (int i = 0; i < n->n_inputs; i++) {
        const kl_value *v = n->inputs[i];
        if (!v || !v->data_dependent) continue;
        if (v->output_index >= 0 && !dd_leads(v) && !kl_node_reads_shape_only(n))
            return kl_error(d, n, "input %d ('%s') is a graph output whose length depends on the "
                            "data along dim %d, after a dim larger than 1: it is written densely "
                            "for the caller, so no other node can read it", i, v->name,
                            v->dd_dim);
        if (*src && *src != v->dd_source)
            return kl_error(d, n, "inputs '%s' and '%s' have lengths that depend on the data "
                            "through different nodes (%s; %s): kiln cannot tell they agree",
                            n->inputs[i]->name, v->name, source_text(*src, a, sizeof a),
                            source_text(v, b, sizeof b));
        *src = v->dd_source;
    }
    return true;
}

/* Output i's dim that grew by one when the varying inputs did, or -1 (none, or not one to
 * one); `grown` holds the outputs' shapes inferred with the longer length. */
static int following_dim(const kl_value *v, const kl_shape *grown) {
    int d = kl_shape_differing_dim(&v->shape, grown);
    return d >= 0 && grown->dim[d] == v->shape.dim[d] + 1 ? d : -1;
}

/* Input i has a data-dependent length and is not an earlier input again (Add(x, x)): the
 * one use through which it is made longer. */
static bool varying_first_use(const kl_node *n, int i) {
    const kl_value *v = n->inputs[i];
    if (!v || !v->data_dependent) return false;
    for (int j = 0; j < i; j++)
        if (n->inputs[j] == v) return false;
    return true;
}

/* n's outputs inferred again with every varying input one longer: their shapes in grown. The
 * node's outputs (and inputs) are as they were afterwards. */
static bool infer_longer(kl_node *n, kl_shape *grown, kl_diag *why) {
    kl_value *saved = calloc((size_t)n->n_outputs + 1, sizeof *saved);
    if (!saved) return kl_error(why, n, "out of memory");
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i]) saved[i] = *n->outputs[i];
    for (int i = 0; i < n->n_inputs; i++)
        if (varying_first_use(n, i)) n->inputs[i]->shape.dim[n->inputs[i]->dd_dim]++;
    bool ok = n->op->infer(n, why);
    for (int i = 0; i < n->n_inputs; i++)
        if (varying_first_use(n, i)) n->inputs[i]->shape.dim[n->inputs[i]->dd_dim]--;
    for (int i = 0; i < n->n_outputs; i++) {
        if (!n->outputs[i]) continue;
        grown[i] = n->outputs[i]->shape;
        *n->outputs[i] = saved[i];
    }
    free(saved);
    return ok;
}

/* Output v keeps the length as dim `dim`: it varies with it. */
static bool follows(kl_node *n, kl_value *v, int i, int dim, const kl_value *src, const char *from,
                    kl_diag *d) {
    if (dim < 0)
        return kl_error(d, n, "an input's length depends on the data (%s), and output %d ('%s') "
                        "does not keep it as one of its dims: kiln follows such a length only "
                        "through operators that keep it (not along a reduction, an index or a "
                        "shape)", from, i, v->name);
    v->data_dependent = true;
    v->dd_dim = dim;
    v->dd_source = (kl_value *)src;
    if (padded_graph_output(v) && n->op->view && n->op->view(n))
        return kl_error(d, n, "output '%s' is a graph output whose length depends on the data "
                        "(%s) along dim %d, after a dim larger than 1, and the node is a view, "
                        "which computes nothing: kiln writes such an output densely from a node "
                        "that computes it (an Identity of a computed value is not one either)",
                        v->name, from, dim);
    return true;
}

bool kl_follow_data_dependent(kl_node *n, kl_diag *d) {
    const kl_value *src;
    if (!shared_source(n, &src, d)) return false;
    if (!src || kl_node_reads_shape_only(n)) return true; /* Shape, Size: the length as a value */
    char from[256];
    source_text(src, from, sizeof from);
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] && n->outputs[i]->data_dependent)
            return kl_error(d, n, "its output's length depends on the data, and so does an input's "
                            "(%s): kiln follows one such length at a time", from);
    kl_shape *grown = calloc((size_t)n->n_outputs + 1, sizeof *grown);
    if (!grown) return kl_error(d, n, "out of memory");
    kl_diag why;
    kl_diag_init(&why, d->file);
    bool ok = infer_longer(n, grown, &why);
    kl_diag_free(&why);
    if (!ok)
        kl_error(d, n, "an input's length depends on the data (%s), and the node's shapes do not "
                 "follow it (its inference fails for other lengths)", from);
    for (int i = 0; ok && i < n->n_outputs; i++)
        if (n->outputs[i])
            ok = follows(n, n->outputs[i], i, following_dim(n->outputs[i], &grown[i]), src, from, d);
    free(grown);
    return ok;
}

/* ---------------------------------------------------------------- kernels */

typedef struct follow {
    kl_kernel *k;
    kl_expr *length;  /* the count, as the run-time extent of the loops along the dim */
    const kl_node *n;
    kl_diag *d;
} follow;

/* The dim of b (a buffer of a value of data-dependent length, or a view the lowering made of
 * one) that varies, or -1 where b holds no such value; -2: a view of one whose dims kiln cannot
 * relate to the value's. */
static int varying_dim(const kl_buffer *b) {
    if (b->dd_count) return b->dd_dim;
    const kl_buffer *root = b->view_of;
    if (!root || !root->dd_count) return -1;
    return kl_shape_equal(&root->shape, &b->shape) ? root->dd_dim : -2;
}

/* idx, b's index along its varying dim `dim`, is a loop of f's kernel, which runs to the count. */
static bool runs_to_count(follow *f, const kl_buffer *b, int dim, const kl_expr *idx) {
    kl_kernel *k = f->k;
    if (dim == -2 || idx->kind != KL_E_IV)
        return kl_error(f->d, f->n, "kernel %s reads '%s', whose length depends on the data, "
                        "other than along one of its loops (at an offset, through indices or a "
                        "view): kiln cannot keep it within the run-time length", k->name,
                        b->name);
    int l = (int)idx->i;
    if (k->extent[l] != b->shape.dim[dim] ||
        (k->extent_expr[l] && k->extent_expr[l] != f->length))
        return kl_error(f->d, f->n, "kernel %s runs along the data-dependent dim of '%s' in a "
                        "loop of another length", k->name, b->name);
    k->extent_expr[l] = f->length;
    return true;
}

static bool follow_expr(follow *f, const kl_expr *e) {
    if (!e) return true;
    if (e->kind == KL_E_LOAD) {
        int dim = varying_dim(e->buf);
        if (dim != -1 && !runs_to_count(f, e->buf, dim, dim >= 0 ? e->idx[dim] : e))
            return false;
        for (int i = 0; i < e->buf->shape.rank; i++)
            if (!follow_expr(f, e->idx[i])) return false;
    }
    return follow_expr(f, e->a) && follow_expr(f, e->b) && follow_expr(f, e->c);
}

static bool follow_kernel(follow *f) {
    kl_kernel *k = f->k;
    int dim = varying_dim(k->out);
    if (dim != -1 && !runs_to_count(f, k->out, dim, dim >= 0 ? k->out_idx[dim] : k->value))
        return false;
    for (int i = 0; i < k->out->shape.rank; i++)
        if (!follow_expr(f, k->out_idx[i])) return false;
    return follow_expr(f, k->init) && follow_expr(f, k->value) && follow_expr(f, k->result);
}

void kl_lower_dd_pad_outputs(kl_lower *L, kl_node *n) {
    for (int i = 0; i < n->n_outputs; i++) {
        kl_value *v = n->outputs[i];
        if (padded_graph_output(v) && v->id < L->n_values)
            L->buf_of_value[v->id] = kl_lower_temp(L, kl_sprintf(L->arena, "%s_padded", v->name),
                                                   v->dtype, &v->shape);
    }
}

/* The padded value of graph output v copied densely into its output buffer, which it is from
 * now on (no node reads it: shared_source). */
static void copy_out_dense(kl_lower *L, const kl_node *n, kl_value *v, kl_buffer *count) {
    kl_buffer *padded = kl_lower_buffer(L, v), *out = L->prog->outputs.items[v->output_index];
    int rank = v->shape.rank;
    kl_kernel *k = kl_kernel_new(L->prog, n, "dense_output");
    k->n_loops = k->n_par = rank;
    for (int i = 0; i < rank; i++) k->extent[i] = v->shape.dim[i];
    k->extent_expr[v->dd_dim] = kl_lower_dd_length(L, count);
    k->value = kl_e_load(L->arena, padded, kl_lower_ivs(L, rank));
    kl_lower_dd_store(L, k, out, v->dd_dim, count, kl_lower_ivs(L, rank));
    kl_program_add_kernel(L->prog, k);
    kl_buffer *root = kl_buffer_root(out);
    root->dd_count = count;
    root->dd_dim = v->dd_dim;
    L->buf_of_value[v->id] = out;
}

bool kl_lower_dd_follow(kl_lower *L, kl_node *n, int first, kl_diag *d) {
    const kl_value *src = NULL;
    for (int i = 0; i < n->n_inputs && !src; i++)
        if (n->inputs[i] && n->inputs[i]->data_dependent) src = n->inputs[i]->dd_source;
    if (!src) return true;
    kl_buffer *count = kl_buffer_root(kl_lower_buffer(L, (kl_value *)src))->dd_count;
    if (!count) return kl_error(d, n, "internal error: '%s' has no count", src->name);
    for (int i = 0; i < n->n_outputs; i++) {
        kl_value *v = n->outputs[i];
        if (!v || !v->data_dependent) continue;
        kl_buffer *b = kl_lower_buffer(L, v);
        b->dd_count = count;
        b->dd_dim = v->dd_dim;
    }
    follow f = {.length = kl_lower_dd_length(L, count), .n = n, .d = d};
    for (int i = first; i < L->prog->kernels.n; i++) {
        f.k = L->prog->kernels.items[i];
        if (!follow_kernel(&f)) return false;
    }
    for (int i = 0; i < n->n_outputs; i++)
        if (padded_graph_output(n->outputs[i])) copy_out_dense(L, n, n->outputs[i], count);
    return true;
}
