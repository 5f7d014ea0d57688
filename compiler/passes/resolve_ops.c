/*
 * resolve_ops.c — bind every node to its op-table entry and check its attributes.
 *
 * All unsupported operators are gathered into one message, so a user learns in one run everything
 * a model needs, not one operator per attempt.
 */
#include <string.h>

#include "kl.h"

typedef struct missing_op {
    const kl_node *first;   /* first node with this (domain, op, opset) */
    int count;
} missing_op;

static bool same_missing(const kl_node *a, const kl_node *b) {
    return !strcmp(a->op_type, b->op_type) && !strcmp(a->domain, b->domain) && a->opset == b->opset;
}

static void append(char *buf, size_t cap, const char *s) {
    size_t n = strlen(buf);
    if (n + 1 < cap) snprintf(buf + n, cap - n, "%s", s);
}

static void report_missing(kl_graph *g, missing_op *m, int n_missing, kl_diag *d) {
    char msg[4096] = "";
    for (int i = 0; i < n_missing; i++) {
        const kl_node *n = m[i].first;
        char item[512];
        bool known = kl_op_known(n->domain, n->op_type);
        snprintf(item, sizeof item, "%s%s%s%s (opset %d%s; node '%s'%s)", i ? ", " : "",
                 *n->domain ? n->domain : "", *n->domain ? "." : "", n->op_type, n->opset,
                 known ? ", a version kiln does not support" : "", n->name,
                 m[i].count > 1 ? kl_sprintf(g->arena, " and %d more", m[i].count - 1) : "");
        append(msg, sizeof msg, item);
    }
    kl_error(d, NULL, "unsupported operator%s: %s", n_missing > 1 ? "s" : "", msg);
}

static bool attr_allowed(const kl_op *op, const char *name) {
    if (!op->attrs) return true;
    for (const char *const *a = op->attrs; *a; a++)
        if (!strcmp(*a, name)) return true;
    return false;
}

static void check_attributes(const kl_node *n, kl_diag *d) {
    for (int i = 0; i < n->n_attrs; i++)
        if (!attr_allowed(n->op, n->attrs[i].name))
            kl_error(d, n, "attribute '%s' is not part of %s's definition (or not supported)",
                     n->attrs[i].name, n->op_type);
}

bool pass_resolve_ops(kl_graph *g, kl_diag *d) {
    missing_op *missing = kl_alloc_array(g->arena, (size_t)g->nodes.n + 1, sizeof *missing);
    int n_missing = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        kl_node *n = g->nodes.items[i];
        n->op = kl_op_find(n->domain, n->op_type, n->opset);
        if (n->op) {
            check_attributes(n, d);
            continue;
        }
        int j = 0;
        while (j < n_missing && !same_missing(missing[j].first, n)) j++;
        if (j == n_missing) missing[n_missing++] = (missing_op){n, 0};
        missing[j].count++;
    }
    if (n_missing) report_missing(g, missing, n_missing, d);
    return !kl_diag_failed(d);
}
