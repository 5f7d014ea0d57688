/*
 * rewrite.c — the algebra the kernel passes transform loop nests with.
 *
 * Affine forms: an integer index expression over the loop variables is, where it is built only
 * from constants, loop variables, +, -, negation and products by constants, c + Σ coef[l]·i_l.
 * The tile pass reads strides, guards and footprints from these forms, and the interval of a
 * form over the loops' ranges decides whether a bounds test is always true.
 *
 * Substitution: replacing loop variables by expressions (a split loop i = o·b + j, a range
 * moved by an offset i = i' + lo, loops renumbered by a reordering) rebuilds the expression DAG
 * once, keeping shared subexpressions shared.
 */
#include <string.h>

#include "kl.h"

/* ---------------------------------------------------------------- affine forms */

static bool int_type(kl_dtype t) {
    return !kl_dtype_is_float(t) && t != KL_BOOL && t != KL_STRING && kl_dtype_size(t) > 0;
}

bool kl_affine_of(const kl_expr *e, kl_affine *out) {
    memset(out, 0, sizeof *out);
    if (!e || !int_type(e->dtype)) return false;
    kl_affine x, y;
    switch (e->kind) {
    case KL_E_CONST:
        out->c = e->i;
        return true;
    case KL_E_IV:
        if (e->i < 0 || e->i >= KL_MAX_LOOPS) return false;
        out->coef[e->i] = 1;
        return true;
    case KL_E_CAST:
        /* a widening of a signed (or a same-size) integer keeps the value */
        if (!int_type(e->a->dtype) || kl_dtype_bits(e->dtype) < kl_dtype_bits(e->a->dtype))
            return false;
        if (kl_dtype_bits(e->dtype) > kl_dtype_bits(e->a->dtype) &&
            !kl_dtype_is_signed_int(e->a->dtype))
            return false;
        return kl_affine_of(e->a, out);
    case KL_E_UNARY:
        if (e->op != KL_NEG || !kl_affine_of(e->a, &x)) return false;
        for (int l = 0; l < KL_MAX_LOOPS; l++)
            if (!kl_mul_checked(x.coef[l], -1, &out->coef[l])) return false;
        return kl_mul_checked(x.c, -1, &out->c);
    case KL_E_BINARY:
        if (e->op != KL_ADD && e->op != KL_SUB && e->op != KL_MUL) return false;
        if (!kl_affine_of(e->a, &x) || !kl_affine_of(e->b, &y)) return false;
        if (e->op == KL_MUL) {
            bool x_const = true, y_const = true;
            for (int l = 0; l < KL_MAX_LOOPS; l++) {
                x_const = x_const && x.coef[l] == 0;
                y_const = y_const && y.coef[l] == 0;
            }
            if (!x_const && !y_const) return false;
            /* a form whose numbers overflow is no affine form kiln can reason about */
            const kl_affine *v = x_const ? &y : &x;
            int64_t k = x_const ? x.c : y.c;
            for (int l = 0; l < KL_MAX_LOOPS; l++)
                if (!kl_mul_checked(v->coef[l], k, &out->coef[l])) return false;
            return kl_mul_checked(v->c, k, &out->c);
        }
        int64_t sign = e->op == KL_SUB ? -1 : 1, t;
        for (int l = 0; l < KL_MAX_LOOPS; l++)
            if (!kl_mul_checked(sign, y.coef[l], &t) ||
                !kl_add_checked(x.coef[l], t, &out->coef[l]))
                return false;
        return kl_mul_checked(sign, y.c, &t) && kl_add_checked(x.c, t, &out->c);
    default:
        return false;
    }
}

bool kl_affine_offset(const kl_buffer *b, kl_expr *const *idx, kl_affine *out) {
    memset(out, 0, sizeof *out);
    int64_t stride = 1;
    for (int d = b->shape.rank - 1; d >= 0; d--) {
        kl_affine a;
        if (!idx || !idx[d] || !kl_affine_of(idx[d], &a)) return false;
        int64_t t;
        for (int l = 0; l < KL_MAX_LOOPS; l++)
            if (!kl_mul_checked(a.coef[l], stride, &t) ||
                !kl_add_checked(out->coef[l], t, &out->coef[l]))
                return false;
        if (!kl_mul_checked(a.c, stride, &t) || !kl_add_checked(out->c, t, &out->c)) return false;
        /* within KL_MAX_BYTES for a buffer with data, but an empty one's other dims are not
         * bounded (fuzz: 2^32 x 2^32 x 0): past int64 the offset is unknown */
        if (!kl_mul_checked(stride, b->shape.dim[d], &stride)) return false;
    }
    return true;
}

void kl_affine_range(const kl_affine *a, const int64_t *extent, int n_loops, int64_t *lo,
                     int64_t *hi) {
    /* saturating: a range past int64 is as good as unbounded to every caller */
    *lo = *hi = a->c;
    for (int l = 0; l < n_loops; l++) {
        if (a->coef[l] == 0) continue;
        int64_t last = kl_mul_saturate(a->coef[l], extent[l] - 1);
        if (last > 0 && !kl_add_checked(*hi, last, hi)) *hi = INT64_MAX;
        if (last < 0 && !kl_add_checked(*lo, last, lo)) *lo = INT64_MIN;
    }
}

/* ---------------------------------------------------------------- substitution */

/* A map from old expression nodes to rebuilt ones (open addressing on the pointer). */
typedef struct subst_memo {
    const kl_expr **from;
    kl_expr **to;
    size_t cap, n;
    kl_rewrite_hook hook; /* may replace a rebuilt node */
    void *ctx;
} subst_memo;

static size_t slot_of(const subst_memo *m, const kl_expr *e) {
    size_t h = ((uintptr_t)e >> 4) * 0x9E3779B97F4A7C15ull;
    size_t i = h & (m->cap - 1);
    while (m->from[i] && m->from[i] != e) i = (i + 1) & (m->cap - 1);
    return i;
}

static void memo_grow(kl_arena *a, subst_memo *m) {
    subst_memo g = {kl_alloc_array(a, m->cap * 2, sizeof *g.from),
                    kl_alloc_array(a, m->cap * 2, sizeof *g.to), m->cap * 2, 0, m->hook, m->ctx};
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->from[i]) continue;
        size_t s = slot_of(&g, m->from[i]);
        g.from[s] = m->from[i];
        g.to[s] = m->to[i];
        g.n++;
    }
    *m = g;
}

static kl_expr *subst(kl_arena *a, const kl_expr *e, kl_expr *const *iv_map, subst_memo *m) {
    if (!e) return NULL;
    size_t s = slot_of(m, e);
    if (m->from[s]) return m->to[s];
    kl_expr *r;
    if (e->kind == KL_E_IV && e->i >= 0 && e->i < KL_MAX_LOOPS && iv_map[e->i]) {
        r = iv_map[e->i];
    } else {
        r = kl_alloc(a, sizeof *r);
        *r = *e;
        if (e->kind == KL_E_LOAD) {
            int rank = e->buf->shape.rank;
            r->idx = kl_alloc_array(a, rank ? (size_t)rank : 1, sizeof *r->idx);
            for (int d = 0; d < rank; d++) r->idx[d] = subst(a, e->idx[d], iv_map, m);
        }
        r->a = subst(a, e->a, iv_map, m);
        r->b = subst(a, e->b, iv_map, m);
        r->c = subst(a, e->c, iv_map, m);
        if (m->hook) {
            kl_expr *x = m->hook(m->ctx, a, r);
            if (x) r = x;
        }
    }
    if (2 * (m->n + 1) > m->cap) {
        memo_grow(a, m);
        s = slot_of(m, e);
    }
    m->from[s] = e;
    m->to[s] = r;
    m->n++;
    return r;
}

static void memo_init(kl_arena *a, subst_memo *m) {
    m->cap = 64;
    m->n = 0;
    m->hook = NULL;
    m->ctx = NULL;
    m->from = kl_alloc_array(a, m->cap, sizeof *m->from);
    m->to = kl_alloc_array(a, m->cap, sizeof *m->to);
}

kl_expr *kl_expr_subst(kl_arena *a, const kl_expr *e, kl_expr *const *iv_map) {
    subst_memo m;
    memo_init(a, &m);
    return subst(a, e, iv_map, &m);
}

void kl_kernel_subst(kl_arena *a, kl_kernel *k, kl_expr *const *iv_map) {
    kl_kernel_rewrite(a, k, iv_map, NULL, NULL);
}

kl_expr *kl_expr_rewrite(kl_arena *a, const kl_expr *e, kl_expr *const *iv_map, kl_rewrite_hook hook,
                         void *ctx) {
    subst_memo m;
    memo_init(a, &m);
    m.hook = hook;
    m.ctx = ctx;
    return subst(a, e, iv_map, &m);
}

void kl_kernel_rewrite(kl_arena *a, kl_kernel *k, kl_expr *const *iv_map, kl_rewrite_hook hook,
                       void *ctx) {
    subst_memo m;
    memo_init(a, &m);
    m.hook = hook;
    m.ctx = ctx;
    k->init = subst(a, k->init, iv_map, &m);
    k->value = subst(a, k->value, iv_map, &m);
    k->result = subst(a, k->result, iv_map, &m);
    k->prefetch_at = subst(a, k->prefetch_at, iv_map, &m);
    int rank = k->out->shape.rank;
    kl_expr **idx = kl_alloc_array(a, rank ? (size_t)rank : 1, sizeof *idx);
    for (int d = 0; d < rank; d++) idx[d] = subst(a, k->out_idx[d], iv_map, &m);
    k->out_idx = idx;
}

kl_kernel *kl_kernel_clone(kl_program *p, const kl_kernel *k, const char *suffix) {
    kl_kernel *c = kl_alloc(p->arena, sizeof *c);
    *c = *k;
    c->name = kl_sprintf(p->arena, "%s_%s", k->name, suffix);
    kl_expr *none[KL_MAX_LOOPS] = {0};
    kl_kernel_subst(p->arena, c, none); /* a deep copy: the clone's expressions are its own */
    return c;
}

/* ---------------------------------------------------------------- loop surgery */

void kl_kernel_offset_loop(kl_arena *a, kl_kernel *k, int l, int64_t begin, int64_t extent) {
    kl_expr *map[KL_MAX_LOOPS] = {0};
    if (begin != 0) map[l] = kl_e_addc(a, kl_e_iv(a, l), begin);
    kl_kernel_subst(a, k, map);
    k->extent[l] = extent;
}

bool kl_kernel_split_loop(kl_arena *a, kl_kernel *k, int l, int64_t inner) {
    if (k->n_loops >= KL_MAX_LOOPS || inner <= 0 || k->extent[l] % inner != 0 ||
        k->extent_expr[l])
        return false; /* (a run-time extent is not a multiple of anything) */
    /* loops after l move up by one; l becomes the outer loop, l + 1 the inner */
    kl_expr *map[KL_MAX_LOOPS] = {0};
    for (int j = l + 1; j < k->n_loops; j++) map[j] = kl_e_iv(a, j + 1);
    map[l] = kl_e_add(a, kl_e_mulc(a, kl_e_iv(a, l), inner), kl_e_iv(a, l + 1));
    kl_kernel_subst(a, k, map);
    for (int j = k->n_loops; j > l + 1; j--) {
        k->extent[j] = k->extent[j - 1];
        k->extent_expr[j] = k->extent_expr[j - 1];
        k->kind[j] = k->kind[j - 1];
    }
    k->extent_expr[l + 1] = NULL;
    k->extent[l + 1] = inner;
    k->extent[l] /= inner;
    k->kind[l + 1] = k->kind[l];
    k->n_loops++;
    if (l < k->n_par) k->n_par++;
    if (k->task_loop > l) k->task_loop++;
    return true;
}

void kl_kernel_permute_loops(kl_arena *a, kl_kernel *k, const int *order) {
    /* order[new position] = old loop */
    kl_expr *map[KL_MAX_LOOPS] = {0};
    int64_t extent[KL_MAX_LOOPS];
    kl_expr *extent_expr[KL_MAX_LOOPS] = {0};
    kl_loop_kind kind[KL_MAX_LOOPS];
    int task = -1;
    for (int i = 0; i < k->n_loops; i++) {
        map[order[i]] = kl_e_iv(a, i);
        extent[i] = k->extent[order[i]];
        extent_expr[i] = k->extent_expr[order[i]];
        kind[i] = k->kind[order[i]];
        if (order[i] == k->task_loop) task = i;
    }
    kl_kernel_subst(a, k, map);
    memcpy(k->extent, extent, sizeof extent);
    memcpy(k->extent_expr, extent_expr, sizeof extent_expr);
    memcpy(k->kind, kind, sizeof kind);
    k->task_loop = task;
}

/* ---------------------------------------------------------------- simplification */

static bool bool_const(const kl_expr *e, bool *v) {
    if (!e || e->kind != KL_E_CONST || e->dtype != KL_BOOL) return false;
    *v = e->i != 0;
    return true;
}

/* The truth of an integer comparison over the loops' ranges: 1 always, 0 never, -1 unknown. */
static int decide_compare(const kl_expr *e, const kl_kernel *k) {
    kl_affine x, y;
    if (!kl_affine_of(e->a, &x) || !kl_affine_of(e->b, &y)) return -1;
    for (int l = 0; l < KL_MAX_LOOPS; l++) x.coef[l] -= y.coef[l];
    x.c -= y.c;
    int64_t lo, hi;
    kl_affine_range(&x, k->extent, k->n_loops, &lo, &hi); /* range of a - b */
    switch (e->op) {
    case KL_LT: return hi < 0 ? 1 : lo >= 0 ? 0 : -1;
    case KL_LE: return hi <= 0 ? 1 : lo > 0 ? 0 : -1;
    case KL_GT: return lo > 0 ? 1 : hi <= 0 ? 0 : -1;
    case KL_GE: return lo >= 0 ? 1 : hi < 0 ? 0 : -1;
    case KL_EQ: return (lo == 0 && hi == 0) ? 1 : (hi < 0 || lo > 0) ? 0 : -1;
    case KL_NE: return (lo == 0 && hi == 0) ? 0 : (hi < 0 || lo > 0) ? 1 : -1;
    default: return -1;
    }
}

static kl_expr *simplify(kl_arena *a, const kl_expr *e, const kl_kernel *k, subst_memo *m) {
    if (!e) return NULL;
    size_t s = slot_of(m, e);
    if (m->from[s]) return m->to[s];
    kl_expr *r = kl_alloc(a, sizeof *r);
    *r = *e;
    if (e->kind == KL_E_LOAD) {
        int rank = e->buf->shape.rank;
        r->idx = kl_alloc_array(a, rank ? (size_t)rank : 1, sizeof *r->idx);
        for (int d = 0; d < rank; d++) r->idx[d] = simplify(a, e->idx[d], k, m);
    }
    r->a = simplify(a, e->a, k, m);
    r->b = simplify(a, e->b, k, m);
    r->c = simplify(a, e->c, k, m);
    bool x, y;
    if (r->kind == KL_E_BINARY && int_type(r->a->dtype)) {
        int t = decide_compare(r, k);
        if (t >= 0) r = kl_e_const_i(a, KL_BOOL, t);
    } else if (r->kind == KL_E_BINARY && r->dtype == KL_BOOL && r->op == KL_AND) {
        if (bool_const(r->a, &x)) r = x ? r->b : r->a;
        else if (bool_const(r->b, &y)) r = y ? r->a : r->b;
    } else if (r->kind == KL_E_BINARY && r->dtype == KL_BOOL && r->op == KL_OR) {
        if (bool_const(r->a, &x)) r = x ? r->a : r->b;
        else if (bool_const(r->b, &y)) r = y ? r->b : r->a;
    } else if (r->kind == KL_E_UNARY && r->op == KL_NOT && bool_const(r->a, &x)) {
        r = kl_e_const_i(a, KL_BOOL, !x);
    } else if (r->kind == KL_E_SELECT && bool_const(r->a, &x)) {
        r = x ? r->b : r->c;
    }
    if (2 * (m->n + 1) > m->cap) {
        memo_grow(a, m);
        s = slot_of(m, e);
    }
    m->from[s] = e;
    m->to[s] = r;
    m->n++;
    return r;
}

void kl_kernel_simplify(kl_arena *a, kl_kernel *k) {
    subst_memo m;
    memo_init(a, &m);
    k->init = simplify(a, k->init, k, &m);
    k->value = simplify(a, k->value, k, &m);
    k->result = simplify(a, k->result, k, &m);
    int rank = k->out->shape.rank;
    kl_expr **idx = kl_alloc_array(a, rank ? (size_t)rank : 1, sizeof *idx);
    for (int d = 0; d < rank; d++) idx[d] = simplify(a, k->out_idx[d], k, &m);
    k->out_idx = idx;
}
