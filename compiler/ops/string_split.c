/*
 * string_split.c — StringSplit: each string cut into substrings, as Python's str.split does.
 *
 * With a delimiter, every occurrence cuts (consecutive ones leave "" between them); without
 * one (or with ""), runs of ASCII whitespace cut and leading / trailing whitespace is dropped.
 * maxsplit bounds the cuts from the left; the rest of the string is the last substring.
 *
 * Output 0 is X's shape plus one dim, the most substrings of any element, which depends on the
 * data: kiln takes it from the shape the model declares for that output and predict returns
 * KILN_E_SHAPE when the data give another number (an empty X needs none: the dim is 0). Shorter
 * rows are padded with "". Output 1 holds each element's count. Substrings are built in the
 * string arena (--string-bytes); empty ones are the constant "".
 */
#include "kl.h"
#include "move_util.h"
#include "ops.h"

static const char *const split_attrs[] = {"delimiter", "maxsplit", NULL};

/* maxsplit, or -1 when the attribute is absent (no limit). */
static int64_t max_splits(const kl_node *n) {
    return kl_attr_find(n, "maxsplit") ? kl_attr_int(n, "maxsplit", 0) : -1;
}

/* The most substrings of any element: what the model declares for output 0's last dim. */
static bool declared_width(kl_node *n, int64_t *width, kl_diag *d) {
    const kl_shape *x = &n->inputs[0]->shape;
    const kl_value *y = n->outputs[0];
    if (kl_shape_numel(x) == 0) {
        *width = 0;
        return true;
    }
    if (!y->shape_declared || y->shape.rank != x->rank + 1 || y->shape.dim[x->rank] < 0)
        return kl_error(d, n, "how many substrings a string holds depends on the data: the "
                        "model must declare output '%s' as X's shape %s plus its last dim, the "
                        "most substrings of any element", y->name, KL_SHAPE_TEXT(x));
    *width = y->shape.dim[x->rank];
    int64_t m = max_splits(n);
    if (m >= 0 && *width > m + 1)
        return kl_error(d, n, "output '%s' is declared with %lld substrings an element, more "
                        "than maxsplit %lld allows", y->name, (long long)*width, (long long)m);
    return true;
}

static bool infer_string_split(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_strings(n, 0, d)) return false;
    const kl_attr *delim = kl_attr_find(n, "delimiter");
    if (delim && delim->type != KL_ATTR_STRING)
        return kl_error(d, n, "delimiter must be a string");
    if (kl_attr_find(n, "maxsplit") && max_splits(n) < 0)
        return kl_error(d, n, "maxsplit %lld must not be negative", (long long)max_splits(n));
    const kl_shape *x = &n->inputs[0]->shape;
    if (x->rank >= KL_MAX_RANK)
        return kl_error(d, n, "input rank %d leaves no room for the substrings' dim", x->rank);
    int64_t width = 0;
    if (!declared_width(n, &width, d)) return false;
    kl_shape s = *x;
    s.dim[s.rank++] = width;
    return kl_infer_set(n, 0, KL_STRING, &s) && (!kl_node_output(n, 1) ||
                                                  kl_infer_set(n, 1, KL_I64, x));
}

/* predict returns KILN_E_SHAPE unless the most substrings of any element is `width`. */
static void check_width(kl_lower *L, const kl_node *n, kl_buffer *counts, int64_t width) {
    kl_arena *a = L->arena;
    kl_shape scalar = {.rank = 0};
    kl_buffer *most = kl_lower_temp(L, "most_substrings", KL_I64, &scalar);
    kl_kernel *k = kl_kernel_new(L->prog, n, "most_substrings");
    k->n_loops = counts->shape.rank;
    for (int i = 0; i < counts->shape.rank; i++) k->extent[i] = counts->shape.dim[i];
    k->reduce = KL_RED_MAX;
    k->acc_dtype = KL_I64;
    k->init = kl_e_const_i(a, KL_I64, 0);
    k->out = most;
    k->out_idx = kl_lower_ivs(L, 0);
    k->value = kl_e_load(a, counts, kl_lower_ivs(L, counts->shape.rank));
    kl_program_add_kernel(L->prog, k);
    kl_expr *got = kl_e_load(a, most, kl_lower_ivs(L, 0));
    kl_lower_shape_check(L, n, kl_e_binary(a, KL_EQ, got, kl_e_idx(a, width)));
}

static bool lower_string_split(kl_lower *L, kl_node *n, kl_diag *d) {
    (void)d;
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    kl_value *count_v = kl_node_output(n, 1);
    kl_buffer *counts = count_v ? kl_lower_buffer(L, count_v)
                                : kl_lower_temp(L, "substrings", KL_I64, &x->shape);
    if (kl_shape_numel(&x->shape) == 0) return true;
    int rank = x->shape.rank;
    int64_t maxsplit = max_splits(n), width = y->shape.dim[rank];
    kl_expr *delim = kl_lower_string_const(L, "delimiter", kl_attr_string(n, "delimiter", ""));
    kl_expr *s = kl_e_load(a, x, kl_lower_ivs(L, rank));
    kl_kernel *count = kl_move_kernel(L, n, "count", counts);
    count->value = kl_e_string_split(a, NULL, s, delim, maxsplit, NULL);
    kl_program_add_kernel(L->prog, count);
    check_width(L, n, counts, width);
    kl_kernel *pieces = kl_move_kernel(L, n, NULL, y);
    pieces->value = kl_e_string_split(a, kl_lower_string_arena(L), s, delim, maxsplit,
                                      kl_e_iv(a, rank));
    kl_program_add_kernel(L->prog, pieces);
    kl_lower_string_check(L, n);
    return true;
}

const kl_op kl_ops_string_split[] = {
    {"", "StringSplit", 20, KL_OPSET_LATEST, split_attrs, infer_string_split, lower_string_split},
    {0},
};
