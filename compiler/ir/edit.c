/*
 * edit.c — rewriting the graph: new values and nodes, rewiring, topological re-sorting, and
 * snapshots that let a pass try a rewrite and take it back.
 *
 * The loader hands passes a topologically sorted node list. Passes that add nodes append them
 * and call kl_graph_sort once they are done, rather than inserting at the right place each time:
 * a rewrite that moves a node below its consumers (transpose sinking) would otherwise have to
 * move whole chains.
 *
 * Snapshots stay cheap because nothing here writes into a node's existing arrays (inputs,
 * outputs, attrs): every change allocates a fresh array, so saving a node is copying its struct.
 * The memory of a rolled-back rewrite stays in the arena until the compilation ends.
 */
#include <string.h>

#include "kl.h"

bool kl_node_live(const kl_node *n) {
    if (n->dead) return false;
    if (n->n_outputs == 0) return true;
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] && !n->outputs[i]->data) return true;
    return false;
}

void kl_value_consumers(const kl_graph *g, const kl_value *v, kl_ptrvec *out) {
    out->n = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        kl_node *n = g->nodes.items[i];
        if (!kl_node_live(n)) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v) {
                kl_ptrvec_push(g->arena, out, n);
                break;
            }
    }
}

kl_value *kl_value_make(kl_graph *g, const char *base, kl_dtype t, const kl_shape *s, void *data) {
    /* the value count makes the name unique: values are never removed from the list, except by
     * a snapshot restore, which also forgets every value made since. A value made from a made
     * value is named after the original (one "__N" suffix, not a growing chain). */
    size_t len = strlen(base), cut = len;
    while (cut > 0 && base[cut - 1] >= '0' && base[cut - 1] <= '9') cut--;
    if (cut < len && cut >= 2 && base[cut - 1] == '_' && base[cut - 2] == '_') len = cut - 2;
    kl_value *v = kl_value_new(g, kl_sprintf(g->arena, "%.*s__%d", (int)len, base, g->values.n));
    v->dtype = t;
    v->shape = *s;
    v->has_shape = true;
    v->data = data;
    return v;
}

kl_node *kl_node_add(kl_graph *g, const char *domain, const char *op_type, int opset,
                     const char *name, int n_in, kl_value *const *in, int n_out,
                     kl_value *const *out) {
    const kl_op *op = kl_op_find(domain, op_type, opset);
    if (!op) return NULL;
    kl_node *n = kl_node_new(g, op_type, domain, opset);
    if (name) n->name = kl_sprintf(g->arena, "%s", name);
    n->op = op;
    n->n_inputs = n_in;
    n->inputs = kl_alloc_array(g->arena, (size_t)n_in + 1, sizeof *n->inputs);
    for (int i = 0; i < n_in; i++) {
        n->inputs[i] = in[i];
        if (in[i]) in[i]->n_uses++;
    }
    n->n_outputs = n_out;
    n->outputs = kl_alloc_array(g->arena, (size_t)n_out + 1, sizeof *n->outputs);
    for (int i = 0; i < n_out; i++) {
        n->outputs[i] = out[i];
        if (out[i]) out[i]->producer = n;
    }
    return n;
}

/* A copy of `items` (n of them) with room for `want`, the rest NULL. */
static kl_value **grown(kl_graph *g, kl_value **items, int n, int want) {
    kl_value **r = kl_alloc_array(g->arena, (size_t)(want > n ? want : n) + 1, sizeof *r);
    if (n) memcpy(r, items, (size_t)n * sizeof *r);
    return r;
}

void kl_node_set_input(kl_graph *g, kl_node *n, int i, kl_value *v) {
    int count = i + 1 > n->n_inputs ? i + 1 : n->n_inputs;
    kl_value **in = grown(g, n->inputs, n->n_inputs, count);
    if (in[i]) in[i]->n_uses--;
    in[i] = v;
    if (v) v->n_uses++;
    n->inputs = in;
    n->n_inputs = count;
}

void kl_node_set_output(kl_graph *g, kl_node *n, int i, kl_value *v) {
    int count = i + 1 > n->n_outputs ? i + 1 : n->n_outputs;
    kl_value **out = grown(g, n->outputs, n->n_outputs, count);
    out[i] = v;
    if (v) v->producer = n;
    n->outputs = out;
    n->n_outputs = count;
}

void kl_node_set_attr(kl_graph *g, kl_node *n, const kl_attr *a) {
    kl_attr *attrs = kl_alloc_array(g->arena, (size_t)n->n_attrs + 1, sizeof *attrs);
    int count = 0;
    bool replaced = false;
    for (int i = 0; i < n->n_attrs; i++) {
        attrs[count] = n->attrs[i];
        if (!strcmp(n->attrs[i].name, a->name)) {
            attrs[count] = *a;
            replaced = true;
        }
        count++;
    }
    if (!replaced) attrs[count++] = *a;
    n->attrs = attrs;
    n->n_attrs = count;
}

void kl_node_set_attr_ints(kl_graph *g, kl_node *n, const char *name, int count,
                           const int64_t *v) {
    kl_attr a = {.name = kl_strdup(g->arena, name), .type = KL_ATTR_INTS, .n = count};
    a.ints = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *a.ints);
    if (count) memcpy(a.ints, v, (size_t)count * sizeof *a.ints);
    kl_node_set_attr(g, n, &a);
}

void kl_node_set_attr_int(kl_graph *g, kl_node *n, const char *name, int64_t v) {
    kl_attr a = {.name = kl_strdup(g->arena, name), .type = KL_ATTR_INT, .i = v};
    kl_node_set_attr(g, n, &a);
}

void kl_node_remove_attr(kl_graph *g, kl_node *n, const char *name) {
    kl_attr *attrs = kl_alloc_array(g->arena, (size_t)n->n_attrs + 1, sizeof *attrs);
    int count = 0;
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name)) attrs[count++] = n->attrs[i];
    n->attrs = attrs;
    n->n_attrs = count;
}

void kl_node_kill(kl_node *n) {
    if (n->dead) return;
    n->dead = true;
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i]) n->inputs[i]->n_uses--;
}

void kl_value_replace_uses(kl_graph *g, kl_value *from, kl_value *to) {
    for (int i = 0; i < g->nodes.n; i++) {
        kl_node *n = g->nodes.items[i];
        if (!kl_node_live(n)) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == from) kl_node_set_input(g, n, k, to);
    }
}

/* ---- topological order ------------------------------------------------------------------- */

enum { UNSEEN, OPEN, PLACED };

/* Depth-first from each node in the present order, placing a node once every producer of its
 * inputs is placed. Nodes are numbered by position first (ids only name nodes). */
/* Input k of n's producer, or for k past the inputs the producer of a guard's condition
 * (which must run first too). */
static kl_node *guard_or_input(const kl_node *n, int k) {
    if (k < n->n_inputs) return n->inputs[k] ? n->inputs[k]->producer : NULL;
    const kl_guard *gd = n->guard;
    for (k -= n->n_inputs; k > 0; k--) gd = gd->outer;
    return gd->cond ? gd->cond->producer : NULL;
}

bool kl_graph_sort(kl_graph *g, kl_diag *d) {
    int count = g->nodes.n;
    kl_node **old = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *old);
    if (count) memcpy(old, g->nodes.items, (size_t)count * sizeof *old); /* items: NULL if none */
    for (int i = 0; i < count; i++) old[i]->id = i;
    unsigned char *state = kl_alloc_array(g->arena, (size_t)count + 1, 1);
    kl_node **stack = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *stack);
    int placed = 0;
    for (int i = 0; i < count; i++) {
        if (old[i]->dead || state[i] != UNSEEN) continue;
        int top = 0;
        stack[top++] = old[i];
        state[i] = OPEN;
        while (top) {
            kl_node *n = stack[top - 1];
            kl_node *next = NULL;
            int n_guards = 0;
            for (const kl_guard *gd = n->guard; gd; gd = gd->outer) n_guards++;
            for (int k = 0; k < n->n_inputs + n_guards && !next; k++) {
                kl_node *p = guard_or_input(n, k);
                if (!p || p->dead || p->id >= count || old[p->id] != p || state[p->id] == PLACED)
                    continue;
                if (state[p->id] == OPEN)
                    return kl_error(d, n, "internal error: a graph rewrite made a cycle");
                next = p;
            }
            if (next) {
                state[next->id] = OPEN;
                stack[top++] = next;
                continue;
            }
            state[n->id] = PLACED;
            g->nodes.items[placed++] = n;
            top--;
        }
    }
    g->nodes.n = placed;
    for (int i = 0; i < placed; i++) ((kl_node *)g->nodes.items[i])->id = i;
    return true;
}

/* ---- snapshots --------------------------------------------------------------------------- */

void kl_graph_snapshot_take(kl_graph *g, kl_graph_snapshot *s) {
    if (g->nodes.n > s->cap_nodes) {
        s->cap_nodes = g->nodes.n * 2;
        s->order = kl_alloc_array(g->arena, (size_t)s->cap_nodes, sizeof *s->order);
        s->nodes = kl_alloc_array(g->arena, (size_t)s->cap_nodes, sizeof *s->nodes);
    }
    if (g->values.n > s->cap_values) {
        s->cap_values = g->values.n * 2;
        s->producer = kl_alloc_array(g->arena, (size_t)s->cap_values, sizeof *s->producer);
        s->n_uses = kl_alloc_array(g->arena, (size_t)s->cap_values, sizeof *s->n_uses);
    }
    s->n_nodes = g->nodes.n;
    s->n_values = g->values.n;
    for (int i = 0; i < s->n_nodes; i++) {
        s->order[i] = g->nodes.items[i];
        s->nodes[i] = *s->order[i];
    }
    for (int i = 0; i < s->n_values; i++) {
        kl_value *v = g->values.items[i];
        s->producer[i] = v->producer;
        s->n_uses[i] = v->n_uses;
    }
}

void kl_graph_snapshot_restore(kl_graph *g, const kl_graph_snapshot *s) {
    g->nodes.n = s->n_nodes;
    for (int i = 0; i < s->n_nodes; i++) {
        g->nodes.items[i] = s->order[i];
        *s->order[i] = s->nodes[i];
    }
    g->values.n = s->n_values;
    for (int i = 0; i < s->n_values; i++) {
        kl_value *v = g->values.items[i];
        v->producer = s->producer[i];
        v->n_uses = s->n_uses[i];
    }
}
