/*
 * tfidf.c — TfIdfVectorizer (opset 9) on integer tokens.
 *
 * The vocabulary is the node's attributes: pool_int64s holds the n-grams, 1-grams first, then
 * 2-grams, ... (ngram_counts[k - 1] is where the k-grams start), and the i-th n-gram of the
 * pool (numbered across all sizes) is counted in column ngram_indexes[i] of each output row.
 * An n-gram of n tokens at start p with skip s reads x[p], x[p + s + 1], ..., and counts when
 * it equals a pool n-gram with min_gram_length <= n <= max_gram_length; unigrams count once,
 * the longer ones once for every skip 0..max_skip_count (as ONNX's reference walks its trie;
 * when the pool holds one n-gram twice, the later entry is the one that counts).
 *
 * Everything about the vocabulary is known when compiling, so the lowering turns it into
 * constant tables and two kernels:
 *   counts[b, g]  = sum over skip s and start p of [n-gram g matches row b at (p, s)]
 *                   (g: the pool n-grams that can count; tokens tok[g, k] padded to the
 *                   longest, their lengths len[g])
 *   Y[b, c]       = the counts of the n-grams of column c (a table of up to m per column,
 *                   -1 padded), weighted by mode: TF the count, IDF weight (or 1) where the
 *                   count is nonzero, TFIDF weight times the count.
 * Every number in the attributes is checked here, so a model cannot make a table index
 * outside its table. Token reads past the row are clamped and masked.
 * The string pools (pool_strings) need string tensors, which kernels do not hold: refused.
 */
#include <stdlib.h>
#include <string.h>

#include "arith_util.h"

typedef enum tfidf_mode { TFIDF_TF, TFIDF_IDF, TFIDF_TFIDF } tfidf_mode;

/* The vocabulary, as the kernels read it. */
typedef struct vocab {
    tfidf_mode mode;
    int64_t n_grams;          /* n-grams that can count */
    int64_t max_len;          /* longest of them */
    int64_t *tok;             /* [n_grams, max_len] */
    int64_t *len;             /* [n_grams] */
    int64_t cols;             /* output columns: max(ngram_indexes) + 1 */
    int64_t per_col;          /* most n-grams that share one column */
    int64_t *col_grams;       /* [cols, per_col]: n-gram numbers, -1 padded */
    const double *weights;    /* NULL: none given */
} vocab;

static const char *tfidf_attrs[] = {"max_gram_length", "max_skip_count", "min_gram_length",
                                    "mode", "ngram_counts", "ngram_indexes", "pool_int64s",
                                    "pool_strings", "weights", NULL};

typedef struct gram_ref {
    const int64_t *tok;
    int64_t len, id;
} gram_ref;

/* by length, then tokens, then pool position: equal n-grams end up adjacent, latest last */
static int gram_cmp(const void *pa, const void *pb) {
    const gram_ref *a = pa, *b = pb;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    for (int64_t k = 0; k < a->len; k++)
        if (a->tok[k] != b->tok[k]) return a->tok[k] < b->tok[k] ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static bool tfidf_mode_of(kl_node *n, tfidf_mode *m, kl_diag *d) {
    const char *s = kl_attr_string(n, "mode", NULL);
    if (!s) return kl_error(d, n, "attribute 'mode' is required");
    if (!strcmp(s, "TF")) *m = TFIDF_TF;
    else if (!strcmp(s, "IDF")) *m = TFIDF_IDF;
    else if (!strcmp(s, "TFIDF")) *m = TFIDF_TFIDF;
    else return kl_error(d, n, "mode '%s' is not TF, IDF or TFIDF", s);
    return true;
}

/* The pool n-grams that can count (length in [lo, hi], the last of equal ones), in `grams`. */
static bool collect_grams(kl_node *n, kl_arena *a, gram_ref **out, int64_t *count,
                          int64_t *n_indexes, kl_diag *d) {
    const int64_t *pool, *starts, *indexes;
    int64_t P = kl_attr_ints(n, "pool_int64s", &pool);
    int64_t S = kl_attr_ints(n, "ngram_counts", &starts);
    *n_indexes = kl_attr_ints(n, "ngram_indexes", &indexes);
    int64_t lo = kl_attr_int(n, "min_gram_length", 0), hi = kl_attr_int(n, "max_gram_length", 0);
    if (lo < 1 || hi < lo)
        return kl_error(d, n, "min_gram_length (%lld) and max_gram_length (%lld) must satisfy "
                        "1 <= min <= max", (long long)lo, (long long)hi);
    if (S < 1) return kl_error(d, n, "attribute 'ngram_counts' is required");
    for (int64_t i = 0; i < S; i++)
        if (starts[i] < (i ? starts[i - 1] : 0) || starts[i] > P)
            return kl_error(d, n, "ngram_counts[%lld] = %lld is out of order or past the pool "
                            "of %lld", (long long)i, (long long)starts[i], (long long)P);
    gram_ref *g = kl_alloc_array(a, (size_t)P + 1, sizeof *g);
    int64_t c = 0, id = 0;
    for (int64_t k = 1; k <= S; k++) {
        int64_t begin = starts[k - 1], end = k < S ? starts[k] : P;
        for (int64_t j = 0; j < (end - begin) / k; j++, id++) {
            if (k < lo || k > hi) continue;
            if (id >= *n_indexes)
                return kl_error(d, n, "n-gram %lld of the pool has no entry in ngram_indexes "
                                "(%lld entries)", (long long)id, (long long)*n_indexes);
            g[c++] = (gram_ref){pool + begin + j * k, k, id};
        }
    }
    /* keep the last of equal n-grams */
    qsort(g, (size_t)c, sizeof *g, gram_cmp);
    int64_t kept = 0;
    for (int64_t i = 0; i < c; i++) {
        bool same_next = i + 1 < c && g[i].len == g[i + 1].len &&
                         !memcmp(g[i].tok, g[i + 1].tok, (size_t)g[i].len * sizeof *g[i].tok);
        if (!same_next) g[kept++] = g[i];
    }
    *out = g;
    *count = kept;
    return true;
}

static bool build_vocab(kl_node *n, kl_arena *a, vocab *v, kl_diag *d) {
    memset(v, 0, sizeof *v);
    if (kl_attr_find(n, "pool_strings"))
        return kl_error(d, n, "pool_strings needs string tensors, which kiln does not support");
    if (!kl_attr_find(n, "pool_int64s")) return kl_error(d, n, "pool_int64s is required");
    if (!tfidf_mode_of(n, &v->mode, d)) return false;
    if (kl_attr_int(n, "max_skip_count", -1) < 0)
        return kl_error(d, n, "max_skip_count must be given and >= 0");
    const int64_t *indexes;
    int64_t n_idx = kl_attr_ints(n, "ngram_indexes", &indexes);
    if (n_idx < 1) return kl_error(d, n, "attribute 'ngram_indexes' is required");
    int64_t maxc = -1;
    for (int64_t i = 0; i < n_idx; i++) {
        if (indexes[i] < 0 || indexes[i] >= KL_MAX_BUILT_BYTES / 8)
            return kl_error(d, n, "ngram_indexes[%lld] = %lld is out of range", (long long)i,
                            (long long)indexes[i]);
        if (indexes[i] > maxc) maxc = indexes[i];
    }
    v->cols = maxc + 1;
    const kl_attr *w = kl_attr_find(n, "weights");
    if (w && w->n > 0) {
        if (w->type != KL_ATTR_FLOATS || w->n < v->cols)
            return kl_error(d, n, "weights has %d entries, fewer than the %lld output columns",
                            w->n, (long long)v->cols);
        v->weights = w->floats;
    }
    gram_ref *g = NULL;
    if (!collect_grams(n, a, &g, &v->n_grams, &n_idx, d)) return false;
    int64_t *per = kl_alloc_array(a, (size_t)v->cols, sizeof *per);
    for (int64_t i = 0; i < v->n_grams; i++) {
        if (g[i].len > v->max_len) v->max_len = g[i].len;
        int64_t c = ++per[indexes[g[i].id]];
        if (c > v->per_col) v->per_col = c;
    }
    int64_t tok_cells, col_cells;
    if (!kl_mul_checked(v->n_grams, v->max_len, &tok_cells) ||
        !kl_mul_checked(v->cols, v->per_col, &col_cells) ||
        tok_cells > KL_MAX_BUILT_BYTES / 8 || col_cells > KL_MAX_BUILT_BYTES / 8)
        return kl_error(d, n, "the n-gram tables would exceed %lld bytes",
                        (long long)KL_MAX_BUILT_BYTES);
    v->tok = kl_alloc_array(a, (size_t)tok_cells + 1, sizeof *v->tok);
    v->len = kl_alloc_array(a, (size_t)v->n_grams + 1, sizeof *v->len);
    v->col_grams = kl_alloc_array(a, (size_t)col_cells + 1, sizeof *v->col_grams);
    for (int64_t i = 0; i < col_cells; i++) v->col_grams[i] = -1;
    memset(per, 0, (size_t)v->cols * sizeof *per);
    for (int64_t i = 0; i < v->n_grams; i++) {
        memcpy(v->tok + i * v->max_len, g[i].tok, (size_t)g[i].len * sizeof *v->tok);
        v->len[i] = g[i].len;
        int64_t c = indexes[g[i].id];
        v->col_grams[c * v->per_col + per[c]++] = i;
    }
    return true;
}

static bool tfidf_input(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    if (x->dtype != KL_I32 && x->dtype != KL_I64)
        return kl_error(d, n, "X is %s; TfIdfVectorizer takes int32 or int64 tokens here",
                        kl_dtype_name(x->dtype));
    if (x->shape.rank != 1 && x->shape.rank != 2)
        return kl_error(d, n, "X must be [C] or [N, C], not rank %d", x->shape.rank);
    return true;
}

static bool infer_tfidf(kl_node *n, kl_diag *d) {
    if (!tfidf_input(n, d)) return false;
    kl_arena *a = kl_arena_new();
    vocab v;
    bool ok = build_vocab(n, a, &v, d);
    kl_arena_free(a);
    if (!ok) return false;
    kl_value *x = n->inputs[0];
    kl_shape s = x->shape.rank == 1 ? (kl_shape){.rank = 1, .dim = {v.cols}}
                                    : (kl_shape){.rank = 2, .dim = {x->shape.dim[0], v.cols}};
    return kl_infer_set(n, 0, KL_F32, &s);
}

static kl_buffer *table(kl_lower *L, const kl_node *n, const char *what, int64_t *data,
                        kl_shape s) {
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_%s", n->name, what),
                                     KL_BUF_CONST, KL_I64, &s);
    b->data = data;
    b->host = data; /* the interpreter reads it when folding */
    return b;
}

/* Loads of X at [b, i] (or [i] for 1-D X). */
static kl_expr *token(kl_arena *a, kl_buffer *x, kl_expr *b, kl_expr *i) {
    kl_expr *t = x->shape.rank == 1 ? kl_e_load(a, x, &i) : kl_e_load(a, x, (kl_expr *[]){b, i});
    return kl_e_cast(a, KL_I64, t);
}

/* counts[b, g]: loops b, g parallel; s (skip), p (start) reduced. */
static kl_buffer *lower_counts(kl_lower *L, kl_node *n, const vocab *v, kl_buffer *x,
                               int64_t rows, int64_t C) {
    kl_arena *a = L->arena;
    kl_buffer *tok = table(L, n, "tokens", v->tok, (kl_shape){2, {v->n_grams, v->max_len}});
    kl_buffer *len = table(L, n, "lengths", v->len, (kl_shape){1, {v->n_grams}});
    kl_shape cs = {.rank = 2, .dim = {rows, v->n_grams}};
    kl_buffer *counts = kl_lower_temp(L, "ngram_counts", KL_I64, &cs);
    /* a skip past the row never fits an n-gram of two or more */
    int64_t skips = kl_attr_int(n, "max_skip_count", 0);
    if (skips > C - 1) skips = C > 0 ? C - 1 : 0;
    kl_kernel *k = kl_kernel_new(L->prog, n, "ngram_counts");
    k->n_par = 2;
    k->n_loops = 4;
    k->extent[0] = rows;
    k->extent[1] = v->n_grams;
    k->extent[2] = skips + 1;
    k->extent[3] = C;
    k->out = counts;
    k->out_idx = kl_lower_ivs(L, 2);
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_expr *b = kl_e_iv(a, 0), *g = kl_e_iv(a, 1), *s = kl_e_iv(a, 2), *p = kl_e_iv(a, 3);
    kl_expr *glen = kl_e_load(a, len, &g);
    /* unigrams once (skip 0 only) */
    kl_expr *match = kl_e_binary(a, KL_OR, kl_e_binary(a, KL_GT, glen, kl_e_idx(a, 1)),
                                 kl_e_binary(a, KL_EQ, s, kl_e_idx(a, 0)));
    kl_expr *step = kl_e_addc(a, s, 1);
    for (int64_t j = 0; j < v->max_len; j++) {
        kl_expr *at = kl_e_add(a, p, kl_e_mul(a, step, kl_e_idx(a, j)));
        kl_expr *inside = kl_e_binary(a, KL_LT, at, kl_e_idx(a, C));
        kl_expr *clamped = kl_e_binary(a, KL_MIN, at, kl_e_idx(a, C - 1));
        kl_expr *same = kl_e_binary(a, KL_EQ, token(a, x, b, clamped),
                                    kl_e_load(a, tok, (kl_expr *[]){g, kl_e_idx(a, j)}));
        kl_expr *past_end = kl_e_binary(a, KL_LE, glen, kl_e_idx(a, j));
        match = kl_e_and(a, match, kl_e_binary(a, KL_OR, past_end, kl_e_and(a, inside, same)));
    }
    k->value = kl_e_select(a, match, kl_e_idx(a, 1), kl_e_idx(a, 0));
    kl_program_add_kernel(L->prog, k);
    return counts;
}

static bool lower_tfidf(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    vocab v;
    if (!tfidf_input(n, d) || !build_vocab(n, a, &v, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    bool batched = x->shape.rank == 2;
    int64_t rows = batched ? x->shape.dim[0] : 1, C = x->shape.dim[x->shape.rank - 1];
    kl_shape ys = {.rank = 2, .dim = {rows, v.cols}};
    kl_buffer *y = batched ? out : kl_program_view(L->prog, out, &ys);
    if (v.n_grams == 0 || C == 0) { /* nothing can count */
        kl_arith_map(L, n, NULL, y, kl_e_const_f(a, KL_F32, 0));
        return true;
    }
    kl_buffer *counts = lower_counts(L, n, &v, x, rows, C);
    kl_buffer *cg = table(L, n, "column_ngrams", v.col_grams, (kl_shape){2, {v.cols, v.per_col}});
    kl_kernel *k = kl_kernel_new(L->prog, n, "tfidf");
    k->n_par = 2;
    k->n_loops = 3;
    k->extent[0] = rows;
    k->extent[1] = v.cols;
    k->extent[2] = v.per_col;
    k->out = y;
    k->out_idx = kl_lower_ivs(L, 2);
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_expr *b = kl_e_iv(a, 0), *c = kl_e_iv(a, 1), *r = kl_e_iv(a, 2);
    kl_expr *gi = kl_e_load(a, cg, (kl_expr *[]){c, r});
    kl_expr *cnt = kl_e_load(a, counts, (kl_expr *[]){b, kl_e_binary(a, KL_MAX, gi,
                                                                      kl_e_idx(a, 0))});
    k->value = kl_e_select(a, kl_e_binary(a, KL_GE, gi, kl_e_idx(a, 0)), cnt, kl_e_idx(a, 0));
    kl_expr *count = kl_e_cast(a, KL_F32, kl_e_acc(a, KL_I64));
    kl_expr *w = NULL;
    if (v.weights) {
        float *wf = kl_alloc_array(a, (size_t)v.cols, sizeof *wf);
        for (int64_t i = 0; i < v.cols; i++) wf[i] = (float)v.weights[i];
        kl_buffer *wb = kl_program_buffer(L->prog, kl_sprintf(a, "%s_weights", n->name),
                                          KL_BUF_CONST, KL_F32, &(kl_shape){1, {v.cols}});
        wb->data = wb->host = wf;
        w = kl_e_load(a, wb, &c);
    }
    kl_expr *one = kl_e_const_f(a, KL_F32, 1), *zero = kl_e_const_f(a, KL_F32, 0);
    switch (v.mode) {
    case TFIDF_TF: k->result = count; break;
    case TFIDF_IDF:
        k->result = kl_e_select(a, kl_e_binary(a, KL_GT, kl_e_acc(a, KL_I64), kl_e_idx(a, 0)),
                                w ? w : one, zero);
        break;
    case TFIDF_TFIDF: k->result = w ? kl_e_binary(a, KL_MUL, w, count) : count; break;
    }
    kl_program_add_kernel(L->prog, k);
    return true;
}

const kl_op kl_ops_tfidf[] = {
    {"", "TfIdfVectorizer", 9, KL_OPSET_LATEST, tfidf_attrs, infer_tfidf, lower_tfidf},
    {0},
};
