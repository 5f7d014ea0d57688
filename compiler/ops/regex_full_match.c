/*
 * regex_full_match.c — RegexFullMatch (opset 20): whether each string of X matches the RE2
 * pattern as a whole; Y is bool, X's shape.
 *
 * The pattern is an attribute, so it is compiled with the model: regex.h turns it into a DFA
 * table, constant data of the object, and the kernel calls runtime-min's matcher
 * (kiln_regex.h) on each element with that table. Inference compiles the pattern once to
 * report a pattern kiln cannot take (invalid RE2, a construct not implemented, a DFA past the
 * limits) before anything is lowered; lowering compiles it again into the program.
 */
#include <string.h>

#include "kl.h"
#include "move_util.h"
#include "ops.h"
#include "regex.h"

static const char *const regex_attrs[] = {"pattern", NULL};

/* The node's pattern as a DFA table in arena a, or a diagnostic naming the node. */
static bool pattern_table(kl_arena *a, const kl_node *n, kl_regex_table *t, kl_diag *d) {
    const kl_attr *p = kl_attr_find(n, "pattern");
    if (!p || p->type != KL_ATTR_STRING)
        return kl_error(d, n, "needs the string attribute 'pattern'");
    const char *why = NULL;
    if (kl_regex_compile(a, p->s, t, &why)) return true;
    int shown = strlen(p->s) > 60 ? 57 : 60; /* a long pattern: its start, then "..." */
    return kl_error(d, n, "pattern \"%.*s%s\": %s", shown, p->s, shown < 60 ? "..." : "", why);
}

static bool infer_regex_full_match(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_strings(n, 0, d)) return false;
    kl_arena *scratch = kl_arena_new();
    kl_regex_table t;
    bool ok = pattern_table(scratch, n, &t, d);
    kl_arena_free(scratch);
    return ok && kl_infer_set(n, 0, KL_BOOL, &n->inputs[0]->shape);
}

static bool lower_regex_full_match(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_regex_table t;
    if (!pattern_table(L->arena, n, &t, d)) return false;
    kl_shape s = {.rank = 1, .dim = {t.n_words}};
    kl_buffer *dfa = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_dfa", n->name),
                                       KL_BUF_CONST, KL_U16, &s);
    dfa->data = dfa->host = t.words; /* the interpreter reads constants through `host` */
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    kl_kernel *k = kl_move_kernel(L, n, NULL, y);
    k->value = kl_e_regex_match(L->arena, dfa, kl_e_load(L->arena, x, k->out_idx));
    kl_move_add_kernel(L, k);
    return true;
}

const kl_op kl_ops_regex_full_match[] = {
    {"", "RegexFullMatch", 20, KL_OPSET_LATEST, regex_attrs, infer_regex_full_match,
     lower_regex_full_match},
    {0},
};
