/*
 * diag.c — diagnostics as values.
 *
 * Errors accumulate in one text buffer so a phase can report everything wrong at once (all
 * unsupported operators, all unbound inputs) before the driver stops at the phase boundary.
 */
#include <stdlib.h>
#include <string.h>

#include "kl.h"

void kl_diag_init(kl_diag *d, const char *file) {
    memset(d, 0, sizeof *d);
    d->file = file;
}

void kl_diag_free(kl_diag *d) {
    free(d->text);
    free(d->needs_values);
    d->text = d->needs_values = NULL;
    d->len = d->cap = 0;
}

bool kl_diag_failed(const kl_diag *d) { return d->n_errors > 0; }

static void append(kl_diag *d, const char *s, size_t n) {
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 256;
        while (cap < d->len + n + 1) cap *= 2;
        char *t = realloc(d->text, cap);
        if (!t) return; /* keep what we have: the error count still says it failed */
        d->text = t;
        d->cap = cap;
    }
    memcpy(d->text + d->len, s, n);
    d->len += n;
    d->text[d->len] = 0;
}

bool kl_verror(kl_diag *d, const kl_node *node, const char *fmt, va_list ap) {
    char head[1024], body[4096];
    if (node)
        snprintf(head, sizeof head, "%s: node '%s' (%s%s%s, opset %d): ", d->file ? d->file : "kiln",
                 node->name ? node->name : "?", node->domain && *node->domain ? node->domain : "",
                 node->domain && *node->domain ? "." : "", node->op_type ? node->op_type : "?",
                 node->opset);
    else
        snprintf(head, sizeof head, "%s: ", d->file ? d->file : "kiln");
    vsnprintf(body, sizeof body, fmt, ap);
    append(d, head, strlen(head));
    append(d, body, strlen(body));
    append(d, "\n", 1);
    d->n_errors++;
    return false;
}

bool kl_error(kl_diag *d, const kl_node *node, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    kl_verror(d, node, fmt, ap);
    va_end(ap);
    return false;
}

static size_t needs_length(const char *list) { /* up to, not counting, the final NUL */
    size_t n = 0;
    while (list && list[n]) n += strlen(list + n) + 1;
    return n;
}

void kl_diag_need_value(kl_diag *d, const char *input) {
    for (const char *s = d->needs_values; s && *s; s += strlen(s) + 1)
        if (!strcmp(s, input)) return;
    size_t have = needs_length(d->needs_values), add = strlen(input) + 1;
    char *t = realloc(d->needs_values, have + add + 1);
    if (!t) return; /* a hint only: the error itself is recorded */
    memcpy(t + have, input, add);
    t[have + add] = 0;
    d->needs_values = t;
}

void kl_diag_take(kl_diag *d, kl_diag *from) {
    for (const char *s = from->needs_values; s && *s; s += strlen(s) + 1)
        kl_diag_need_value(d, s);
    if (from->text) append(d, from->text, from->len);
    d->n_errors += from->n_errors;
    kl_diag_free(from);
    from->n_errors = 0;
}

void kl_diag_print(const kl_diag *d, FILE *f) {
    if (d->text) fputs(d->text, f);
}
