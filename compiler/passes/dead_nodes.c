/*
 * dead_nodes.c — drop nodes whose outputs were all folded to constants and nodes nothing uses.
 */
#include "kl.h"

static bool all_outputs_constant(const kl_node *n) {
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] && !n->outputs[i]->data) return false;
    return true;
}

bool pass_dead_nodes(kl_graph *g, kl_diag *d) {
    bool *needed = kl_alloc_array(g->arena, (size_t)g->values.n + 1, sizeof *needed);
    for (int i = 0; i < g->outputs.n; i++) needed[((kl_value *)g->outputs.items[i])->id] = true;
    /* a trap's condition (a Loop running past its declared length, say) is read after the
     * last kernel, by predict's return code */
    for (int i = 0; i < g->broken_guards.n; i++)
        for (const kl_guard *gd = g->broken_guards.items[i]; gd; gd = gd->outer)
            if (gd->cond) needed[gd->cond->id] = true;
    for (int i = g->nodes.n - 1; i >= 0; i--) {
        kl_node *n = g->nodes.items[i];
        if (n->dead) continue;
        bool used = false;
        for (int o = 0; o < n->n_outputs; o++)
            if (n->outputs[o] && needed[n->outputs[o]->id]) used = true;
        if (!used || all_outputs_constant(n)) {
            n->dead = true;
            continue;
        }
        for (int in = 0; in < n->n_inputs; in++)
            if (n->inputs[in]) needed[n->inputs[in]->id] = true;
        for (const kl_guard *gd = n->guard; gd; gd = gd->outer)
            if (gd->cond) needed[gd->cond->id] = true;
    }
    (void)d;
    return true;
}
