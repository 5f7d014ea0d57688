/*
 * seqio.c — sequence and optional graph outputs become tensors of the generated interface.
 *
 * kiln compiles sequences and optionals away (ops/sequence.c): once shape inference has settled
 * them, an output that is a sequence of N tensors is N outputs NAME[0] .. NAME[N-1], an optional
 * holding a tensor is one output NAME[0] (of a sequence: the sequence's tensors), an empty
 * optional is none. Each is an Identity of the tensor, so that an output's buffer is its own
 * even when the same tensor is also another output or a graph input. The loader does the same
 * for inputs (onnx/load.c); g->compound_io records both, for the header and the model table.
 */
#include "kl.h"

/* The tensors o holds, in order: *tensors and *count (an empty optional: none). */
static bool tensors_of(kl_graph *g, kl_value *o, kl_compound_io *io, kl_value ***tensors,
                       int64_t *count, kl_diag *d) {
    kl_compound *c = o->compound;
    io->optional = c->optional;
    io->present = !c->optional || c->n > 0;
    if (c->optional && c->n > 0 && c->items[0]->compound) c = c->items[0]->compound;
    io->sequence = !c->optional;
    if (c->optional) { /* an optional of a tensor, or an empty one */
        *tensors = c->items;
        *count = c->n;
        return true;
    }
    *tensors = kl_sequence_items(g, c, d);
    *count = c->n;
    return *tensors != NULL;
}

/* Output K of o: an Identity of t named NAME[K]. */
static kl_value *output_tensor(kl_graph *g, kl_value *o, int64_t k, kl_value *t, kl_diag *d) {
    if (t->compound)
        return kl_error(d, NULL, "graph output '%s' holds %s; the generated interface gives "
                        "sequences and optionals of tensors only", o->name,
                        t->compound->optional ? "an optional" : "a sequence"),
               NULL;
    kl_value *y = kl_value_new(g, kl_sprintf(g->arena, "%s[%lld]", o->name, (long long)k));
    kl_node *n = kl_node_add(g, "", "Identity", 13,
                             kl_sprintf(g->arena, "%s/output_%lld", o->name, (long long)k), 1,
                             &t, 1, &y);
    if (!n)
        return kl_error(d, NULL, "internal error: no Identity in the op table"), NULL;
    return y;
}

bool kl_flatten_compound_outputs(kl_graph *g, kl_diag *d) {
    bool any = false;
    for (int o = 0; o < g->outputs.n; o++) any |= ((kl_value *)g->outputs.items[o])->compound != 0;
    if (!any) return true;
    kl_ptrvec flat = {0};
    for (int o = 0; o < g->outputs.n; o++) {
        kl_value *v = g->outputs.items[o];
        if (!v->compound) {
            kl_ptrvec_push(g->arena, &flat, v);
            continue;
        }
        kl_compound_io *io = kl_alloc(g->arena, sizeof *io);
        io->name = v->name;
        io->first = flat.n;
        kl_value **tensors;
        int64_t count;
        if (!tensors_of(g, v, io, &tensors, &count, d)) return false;
        for (int64_t k = 0; k < count; k++) {
            kl_value *y = output_tensor(g, v, k, tensors[k], d);
            if (!y) return false;
            kl_ptrvec_push(g->arena, &flat, y);
        }
        io->count = (int)count;
        v->output_index = -1;
        kl_ptrvec_push(g->arena, &g->compound_io, io);
    }
    for (int i = 0; i < flat.n; i++) ((kl_value *)flat.items[i])->output_index = -1;
    for (int i = flat.n - 1; i >= 0; i--) /* the first place of a value listed twice */
        ((kl_value *)flat.items[i])->output_index = i;
    g->outputs = flat;
    return true;
}
