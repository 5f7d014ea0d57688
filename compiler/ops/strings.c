/*
 * strings.c — the string operators StringConcat and StringNormalizer, the string arena the
 * operators that build strings share, and string constants (StringSplit: string_split.c).
 *
 * A string element is a `const char *` (kiln.h). Selecting strings (Identity, Gather, Where,
 * LabelEncoder's values, StringNormalizer without a case change) copies pointers. Building one
 * (StringConcat, a case change) writes its bytes into the string arena, a workspace buffer of
 * the capacity the compile options give (--string-bytes): the program's first kernel resets
 * it, and after every kernel that builds strings a check returns KILN_E_STRING_BYTES when it
 * ran out (kiln_string.h never writes past it).
 *
 * StringNormalizer removes its stopwords, so its output's length depends on the data: with
 * stopwords it takes the length the model declares for its output, and predict returns
 * KILN_E_SHAPE when the words kept are another number (ONNX keeps one "" when none is left).
 * Its kernels: a flag per word (a stopword or not), each word's place among the kept ones (a
 * running count), the position of the j-th kept word, and the copy (with the case change).
 * Case mapping and case-insensitive matching are ASCII only (`locale` is accepted and ignored).
 */
#include <string.h>

#include "kiln.h"
#include "arith_util.h"

/* ---- the string arena ------------------------------------------------------------------ */

kl_buffer *kl_lower_string_arena(kl_lower *L) {
    kl_program *p = L->prog;
    if (p->strings) return p->strings;
    kl_shape s = {.rank = 1, .dim = {2 + KL_STRING_BYTES_DEFAULT / 8}};
    p->strings = kl_lower_temp(L, "string_arena", KL_I64, &s);
    /* reset: words 0 (bytes used) and 1 (failed); the kernel goes first (kl_lower_graph) */
    kl_shape state = {.rank = 1, .dim = {2}};
    kl_kernel *k = kl_kernel_new(p, NULL, "string_arena_reset");
    k->n_loops = k->n_par = 1;
    k->extent[0] = 2;
    k->out = kl_program_view(p, p->strings, &state);
    k->out_idx = kl_lower_ivs(L, 1);
    k->value = kl_e_const_i(L->arena, KL_I64, 0);
    p->strings_reset = k;
    return p->strings;
}

void kl_lower_string_check(kl_lower *L, const kl_node *n) {
    kl_shape scalar = {.rank = 0};
    kl_kernel *k = kl_kernel_new(L->prog, n, "string_bytes_check");
    k->out = kl_lower_temp(L, "string_arena_full", KL_I32, &scalar);
    k->out_idx = kl_lower_ivs(L, 0);
    k->value = kl_e_string(L->arena, KL_STR_FAILED, L->prog->strings, NULL, NULL);
    k->error_code = KILN_E_STRING_BYTES;
    kl_program_add_kernel(L->prog, k);
}

/* ---- StringConcat ---------------------------------------------------------------------- */

static const char *const no_attrs[] = {NULL};

bool kl_infer_need_strings(kl_node *n, int i, kl_diag *d) {
    if (!kl_infer_need_input(n, i, d)) return false;
    if (n->inputs[i]->dtype != KL_STRING)
        return kl_error(d, n, "input %d ('%s') must be a string tensor, not %s", i,
                        n->inputs[i]->name, kl_dtype_name(n->inputs[i]->dtype));
    return true;
}

static bool infer_string_concat(kl_node *n, kl_diag *d) {
    kl_shape s;
    if (!kl_infer_need_strings(n, 0, d) || !kl_infer_need_strings(n, 1, d) ||
        !kl_arith_broadcast(n, 0, 2, &s, d))
        return false;
    return kl_infer_set(n, 0, KL_STRING, &s);
}

static kl_expr *fn_concat(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    (void)n;
    (void)n_in;
    return kl_e_string(L->arena, KL_STR_CONCAT, kl_lower_string_arena(L), in[0], in[1]);
}

static bool lower_string_concat(kl_lower *L, kl_node *n, kl_diag *d) {
    (void)d;
    if (!kl_lower_elementwise(L, n, fn_concat)) return false;
    if (L->prog->strings) kl_lower_string_check(L, n);
    return true;
}

/* ---- StringNormalizer ------------------------------------------------------------------ */

static const char *const normalizer_attrs[] = {"case_change_action", "is_case_sensitive",
                                               "locale", "stopwords", NULL};

/* KL_STR_LOWER / KL_STR_UPPER, or -1 for NONE; -2 for a value ONNX does not define. */
static int case_change(const kl_node *n) {
    const char *c = kl_attr_string(n, "case_change_action", "NONE");
    if (!strcmp(c, "NONE")) return -1;
    if (!strcmp(c, "LOWER")) return KL_STR_LOWER;
    if (!strcmp(c, "UPPER")) return KL_STR_UPPER;
    return -2;
}

static int n_stopwords(const kl_node *n) {
    const kl_attr *a = kl_attr_find(n, "stopwords");
    return a && a->type == KL_ATTR_STRINGS ? a->n : 0;
}

/* [C] or [1, C]: the words lie along the last axis. */
static bool infer_string_normalizer(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_strings(n, 0, d)) return false;
    if (case_change(n) == -2)
        return kl_error(d, n, "case_change_action '%s' is not LOWER, UPPER or NONE",
                        kl_attr_string(n, "case_change_action", ""));
    const kl_attr *sw = kl_attr_find(n, "stopwords");
    if (sw && sw->type != KL_ATTR_STRINGS)
        return kl_error(d, n, "stopwords must be a list of strings");
    const kl_shape *x = &n->inputs[0]->shape;
    if (!(x->rank == 1 || (x->rank == 2 && x->dim[0] == 1)))
        return kl_error(d, n, "input must have shape [C] or [1, C], not rank %d%s", x->rank,
                        x->rank == 2 ? " with a first dim other than 1" : "");
    if (n_stopwords(n) == 0) return kl_infer_set(n, 0, KL_STRING, x);
    kl_value *y = n->outputs[0];
    if (!y->shape_declared)
        return kl_error(d, n, "with stopwords the output's length depends on the data: the model "
                        "must declare the shape of output '%s' (kiln has no data-dependent "
                        "shapes here)", y->name);
    int64_t c = y->shape.rank == x->rank ? y->shape.dim[y->shape.rank - 1] : -1;
    if (c < 1 || c > (x->dim[x->rank - 1] > 0 ? x->dim[x->rank - 1] : 1) ||
        (x->rank == 2 && y->shape.dim[0] != 1))
        return kl_error(d, n, "the declared output shape does not fit: %s words at most, along "
                        "the last axis of a tensor of rank %d", x->rank == 2 ? "[1, C]" : "C",
                        x->rank);
    kl_shape s = y->shape;
    return kl_infer_set(n, 0, KL_STRING, &s);
}

kl_buffer *kl_lower_string_table(kl_lower *L, const char *name, const char *const *items, int n) {
    kl_shape s = {.rank = 1, .dim = {n}};
    kl_buffer *b = kl_program_buffer(L->prog, name, KL_BUF_CONST, KL_STRING, &s);
    const char **data = kl_alloc_array(L->arena, (size_t)n + 1, sizeof *data);
    for (int i = 0; i < n; i++) data[i] = items[i];
    b->data = data;
    return b;
}

/* Index of a word along the last axis of X (rank 1 or [1, C]). */
static kl_expr *word(kl_lower *L, kl_buffer *x, kl_expr *i) {
    kl_expr *idx[2] = {x->shape.rank == 2 ? kl_e_idx(L->arena, 0) : i, i};
    return kl_e_load(L->arena, x, x->shape.rank == 2 ? idx : idx + 1);
}

static kl_kernel *row_kernel(kl_lower *L, const kl_node *n, const char *tag, kl_buffer *out,
                             int64_t extent) {
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_loops = k->n_par = 1;
    k->extent[0] = extent;
    k->out = out;
    k->out_idx = kl_lower_ivs(L, 1);
    return k;
}

/* stop[i] = 1 when word i is a stopword: a max over the stopwords. */
static kl_buffer *lower_stop_flags(kl_lower *L, const kl_node *n, kl_buffer *x, int64_t c) {
    kl_arena *a = L->arena;
    const kl_attr *sw = kl_attr_find(n, "stopwords");
    kl_buffer *table = kl_lower_string_table(L, "stopwords", sw->strings, sw->n);
    kl_shape s = {.rank = 1, .dim = {c}};
    kl_buffer *stop = kl_lower_temp(L, "stopword", KL_I64, &s);
    kl_kernel *k = row_kernel(L, n, "stopwords", stop, c);
    k->n_loops = 2;
    k->extent[1] = sw->n;
    k->reduce = KL_RED_MAX;
    k->acc_dtype = KL_I64;
    k->init = kl_e_const_i(a, KL_I64, 0);
    kl_expr *j[1] = {kl_e_iv(a, 1)};
    bool exact = kl_attr_int(n, "is_case_sensitive", 0) != 0;
    kl_expr *eq = kl_e_string(a, exact ? KL_STR_EQ : KL_STR_EQ_NOCASE, NULL,
                              word(L, x, kl_e_iv(a, 0)), kl_e_load(a, table, j));
    k->value = kl_e_select(a, eq, kl_e_const_i(a, KL_I64, 1), kl_e_const_i(a, KL_I64, 0));
    kl_program_add_kernel(L->prog, k);
    return stop;
}

/* kept[i] = how many of words 0..i are kept (a running count). */
static kl_buffer *lower_kept_counts(kl_lower *L, const kl_node *n, kl_buffer *stop, int64_t c) {
    kl_arena *a = L->arena;
    kl_buffer *kept = kl_lower_temp(L, "kept_before", KL_I64, &stop->shape);
    kl_kernel *k = row_kernel(L, n, "kept_count", kept, c);
    k->n_loops = 2;
    k->extent[1] = c;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_expr *m[1] = {kl_e_iv(a, 1)};
    kl_expr *kept_m = kl_e_binary(a, KL_SUB, kl_e_idx(a, 1), kl_e_load(a, stop, m));
    k->value = kl_e_select(a, kl_e_binary(a, KL_LE, kl_e_iv(a, 1), kl_e_iv(a, 0)), kept_m,
                           kl_e_idx(a, 0));
    kl_program_add_kernel(L->prog, k);
    return kept;
}

/* src[j] = the position of the j-th kept word (0 when there is none). */
static kl_buffer *lower_sources(kl_lower *L, const kl_node *n, kl_buffer *stop, kl_buffer *kept,
                                int64_t c, int64_t out_c) {
    kl_arena *a = L->arena;
    kl_shape s = {.rank = 1, .dim = {out_c}};
    kl_buffer *src = kl_lower_temp(L, "kept_source", KL_I64, &s);
    kl_kernel *k = row_kernel(L, n, "kept_source", src, out_c);
    k->n_loops = 2;
    k->extent[1] = c;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_expr *i[1] = {kl_e_iv(a, 1)};
    kl_expr *is_kept = kl_e_binary(a, KL_EQ, kl_e_load(a, stop, i), kl_e_idx(a, 0));
    kl_expr *is_jth = kl_e_binary(a, KL_EQ, kl_e_load(a, kept, i), kl_e_addc(a, kl_e_iv(a, 0), 1));
    k->value = kl_e_select(a, kl_e_and(a, is_kept, is_jth), kl_e_iv(a, 1), kl_e_idx(a, 0));
    kl_program_add_kernel(L->prog, k);
    return src;
}

kl_expr *kl_lower_string_const(kl_lower *L, const char *name, const char *text) {
    const char **item = kl_alloc(L->arena, sizeof *item);
    *item = text;
    kl_expr *zero[1] = {kl_e_idx(L->arena, 0)};
    return kl_e_load(L->arena, kl_lower_string_table(L, name, item, 1), zero);
}

/* The constant "", what ONNX keeps when no word is left. */
static kl_expr *empty_string(kl_lower *L) { return kl_lower_string_const(L, "empty_string", ""); }

/* Output word j (the last loop of a kernel over Y): the j-th word that is not a stopword, or ""
 * when none is; predict returns KILN_E_SHAPE first when the kept words (at least the one "")
 * are not as many as Y declares. */
static kl_expr *kept_word(kl_lower *L, const kl_node *n, kl_buffer *x, kl_buffer *y) {
    kl_arena *a = L->arena;
    int rank = x->shape.rank;
    int64_t c = x->shape.dim[rank - 1], out_c = y->shape.dim[rank - 1];
    if (c == 0) return empty_string(L);
    kl_buffer *stop = lower_stop_flags(L, n, x, c);
    kl_buffer *kept = lower_kept_counts(L, n, stop, c);
    kl_buffer *src = lower_sources(L, n, stop, kept, c, out_c);
    kl_expr *last[1] = {kl_e_idx(a, c - 1)}, *j[1] = {kl_e_iv(a, rank - 1)};
    kl_expr *total = kl_e_load(a, kept, last);
    kl_expr *length = kl_e_binary(a, KL_MAX, total, kl_e_idx(a, 1));
    kl_lower_shape_check(L, n, kl_e_binary(a, KL_EQ, length, kl_e_idx(a, out_c)));
    kl_expr *none = kl_e_binary(a, KL_EQ, total, kl_e_idx(a, 0));
    return kl_e_select(a, none, empty_string(L), word(L, x, kl_e_load(a, src, j)));
}

static bool lower_string_normalizer(kl_lower *L, kl_node *n, kl_diag *d) {
    (void)d;
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    int rank = x->shape.rank, change = case_change(n);
    kl_expr *w = n_stopwords(n) > 0 ? kept_word(L, n, x, y)
                                    : word(L, x, kl_e_iv(a, rank - 1));
    if (change >= 0) w = kl_e_string(a, (kl_strop)change, kl_lower_string_arena(L), w, NULL);
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    k->n_loops = k->n_par = rank;
    for (int i = 0; i < rank; i++) k->extent[i] = y->shape.dim[i];
    k->out = y;
    k->out_idx = kl_lower_ivs(L, rank);
    k->value = w;
    kl_program_add_kernel(L->prog, k);
    if (change >= 0) kl_lower_string_check(L, n);
    return true;
}

const kl_op kl_ops_strings[] = {
    {"", "StringConcat", 20, KL_OPSET_LATEST, no_attrs, infer_string_concat, lower_string_concat},
    {"", "StringNormalizer", 10, KL_OPSET_LATEST, normalizer_attrs, infer_string_normalizer,
     lower_string_normalizer},
    {0},
};
