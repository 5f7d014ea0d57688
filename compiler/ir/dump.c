/*
 * dump.c — the graph as text, one node a line (for --dump-ir and for tests to read).
 *
 *   %conv1_out f32[1,64,112,112] = Conv(%input f32[1,3,224,224], %w const f32[64,3,7,7]) {strides=[2,2]}
 */
#include "kl.h"

static void value_str(const kl_value *v, FILE *f) {
    if (!v) {
        fputs("_", f);
        return;
    }
    fprintf(f, "%%%s %s%s[", v->name, v->data ? "const " : "", kl_dtype_name(v->dtype));
    if (v->has_shape)
        for (int i = 0; i < v->shape.rank; i++)
            fprintf(f, "%s%lld", i ? "," : "", (long long)v->shape.dim[i]);
    else
        fputs("?", f);
    fputs("]", f);
}

static void attr_str(const kl_attr *a, FILE *f) {
    fprintf(f, "%s=", a->name);
    switch (a->type) {
    case KL_ATTR_INT: fprintf(f, "%lld", (long long)a->i); break;
    case KL_ATTR_FLOAT: fprintf(f, "%g", a->f); break;
    case KL_ATTR_STRING: fprintf(f, "\"%s\"", a->s ? a->s : ""); break;
    case KL_ATTR_INTS:
        fputs("[", f);
        for (int i = 0; i < a->n; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)a->ints[i]);
        fputs("]", f);
        break;
    case KL_ATTR_FLOATS:
        fputs("[", f);
        for (int i = 0; i < a->n; i++) fprintf(f, "%s%g", i ? "," : "", a->floats[i]);
        fputs("]", f);
        break;
    case KL_ATTR_TENSOR: fputs("<tensor>", f); break;
    case KL_ATTR_GRAPH: fputs("<graph>", f); break;
    default: fputs("<...>", f); break;
    }
}

void kl_graph_dump(const kl_graph *g, FILE *f) {
    fprintf(f, "graph %s (%s)\n", g->meta.graph_name ? g->meta.graph_name : "", g->file);
    for (int i = 0; i < g->inputs.n; i++) {
        fputs("  input ", f);
        value_str(g->inputs.items[i], f);
        fputs("\n", f);
    }
    for (int i = 0; i < g->nodes.n; i++) {
        const kl_node *n = g->nodes.items[i];
        if (n->dead) continue;
        fputs("  ", f);
        for (int o = 0; o < n->n_outputs; o++) {
            if (o) fputs(", ", f);
            value_str(n->outputs[o], f);
        }
        fprintf(f, " = %s%s%s(", *n->domain ? n->domain : "", *n->domain ? "." : "", n->op_type);
        for (int in = 0; in < n->n_inputs; in++) {
            if (in) fputs(", ", f);
            value_str(n->inputs[in], f);
        }
        fputs(")", f);
        if (n->n_attrs) {
            fputs(" {", f);
            for (int a = 0; a < n->n_attrs; a++) {
                if (a) fputs(", ", f);
                attr_str(&n->attrs[a], f);
            }
            fputs("}", f);
        }
        for (const kl_guard *g = n->guard; g; g = g->outer) /* an If's branch: runs when */
            fprintf(f, " %s %s", g->when ? "if" : "unless", g->cond ? g->cond->name : "?");
        fprintf(f, "  # %s\n", n->name);
    }
    for (int i = 0; i < g->outputs.n; i++) {
        fputs("  output ", f);
        value_str(g->outputs.items[i], f);
        fputs("\n", f);
    }
}
