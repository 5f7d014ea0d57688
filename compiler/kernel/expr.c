/*
 * expr.c — builders of kernel-IR expressions.
 *
 * Index helpers fold the trivial cases (x*1, x+0, constant arithmetic) as they build, so that
 * lowering code can write index arithmetic plainly and still hand back ends small expressions.
 */
#include <string.h>

#include "kl.h"

static kl_expr *expr_new(kl_arena *a, kl_expr_kind kind, kl_dtype t) {
    kl_expr *e = kl_alloc(a, sizeof *e);
    e->kind = kind;
    e->dtype = t;
    return e;
}

kl_expr *kl_e_const_f(kl_arena *a, kl_dtype t, double v) {
    kl_expr *e = expr_new(a, KL_E_CONST, t);
    if (kl_dtype_is_float(t)) {
        e->f = v;
    } else {
        e->i = kl_index_from_double(v); /* a model's float (NaN, 1e300) must not cast wild */
        e->f = v;
    }
    return e;
}

kl_expr *kl_e_const_i(kl_arena *a, kl_dtype t, int64_t v) {
    kl_expr *e = expr_new(a, KL_E_CONST, t);
    if (kl_dtype_is_float(t)) {
        e->f = (double)v;
    } else {
        e->i = t == KL_BOOL ? (v != 0) : v;
        e->f = (double)e->i;
    }
    return e;
}

kl_expr *kl_e_idx(kl_arena *a, int64_t v) { return kl_e_const_i(a, KL_I64, v); }

kl_expr *kl_e_iv(kl_arena *a, int loop) {
    kl_expr *e = expr_new(a, KL_E_IV, KL_I64);
    e->i = loop;
    return e;
}

kl_expr *kl_e_load(kl_arena *a, kl_buffer *b, kl_expr **idx) {
    kl_expr *e = expr_new(a, KL_E_LOAD, b->dtype);
    e->buf = b;
    int rank = b->shape.rank;
    e->idx = kl_alloc_array(a, rank ? (size_t)rank : 1, sizeof *e->idx);
    for (int i = 0; i < rank; i++) e->idx[i] = idx[i];
    return e;
}

kl_expr *kl_e_acc(kl_arena *a, kl_dtype t) { return expr_new(a, KL_E_ACC, t); }

kl_expr *kl_e_unary(kl_arena *a, kl_unop op, kl_expr *x) {
    kl_expr *e = expr_new(a, KL_E_UNARY, x->dtype);
    e->op = op;
    e->a = x;
    return e;
}

static bool is_compare(kl_binop op) {
    return op == KL_EQ || op == KL_NE || op == KL_LT || op == KL_LE || op == KL_GT || op == KL_GE;
}

kl_expr *kl_e_binary(kl_arena *a, kl_binop op, kl_expr *x, kl_expr *y) {
    kl_expr *e = expr_new(a, KL_E_BINARY, is_compare(op) ? KL_BOOL : x->dtype);
    e->op = op;
    e->a = x;
    e->b = y;
    return e;
}

kl_expr *kl_e_select(kl_arena *a, kl_expr *cond, kl_expr *x, kl_expr *y) {
    if (!cond) return x;
    if (cond->kind == KL_E_CONST) return cond->i ? x : y;
    kl_expr *e = expr_new(a, KL_E_SELECT, x->dtype);
    e->a = cond;
    e->b = x;
    e->c = y;
    return e;
}

kl_expr *kl_e_cast(kl_arena *a, kl_dtype t, kl_expr *x) {
    if (x->dtype == t) return x;
    kl_expr *e = expr_new(a, KL_E_CAST, t);
    e->a = x;
    return e;
}

kl_expr *kl_e_bitcast(kl_arena *a, kl_dtype t, kl_expr *x) {
    if (x->dtype == t) return x;
    kl_expr *e = expr_new(a, KL_E_BITCAST, t);
    e->a = x;
    return e;
}

bool kl_strop_uses_arena(kl_strop op) {
    return op != KL_STR_EQ && op != KL_STR_EQ_NOCASE && op != KL_STR_SPLIT_COUNT &&
           op != KL_STR_REGEX_MATCH;
}

static kl_dtype strop_dtype(kl_strop op) {
    switch (op) {
    case KL_STR_EQ:
    case KL_STR_EQ_NOCASE:
    case KL_STR_REGEX_MATCH: return KL_BOOL;
    case KL_STR_FAILED: return KL_I32;
    case KL_STR_SPLIT_COUNT: return KL_I64;
    default: return KL_STRING;
    }
}

kl_expr *kl_e_string(kl_arena *a, kl_strop op, kl_buffer *arena, kl_expr *x, kl_expr *y) {
    kl_expr *e = expr_new(a, KL_E_STRING, strop_dtype(op));
    e->op = (int)op;
    e->buf = kl_strop_uses_arena(op) ? arena : NULL;
    e->a = x;
    e->b = y;
    return e;
}

kl_expr *kl_e_string_split(kl_arena *a, kl_buffer *arena, kl_expr *s, kl_expr *delim,
                           int64_t maxsplit, kl_expr *piece) {
    kl_expr *e = kl_e_string(a, piece ? KL_STR_SPLIT_PIECE : KL_STR_SPLIT_COUNT, arena, s, delim);
    e->c = piece;
    e->i = maxsplit;
    return e;
}

kl_expr *kl_e_regex_match(kl_arena *a, kl_buffer *dfa, kl_expr *s) {
    kl_expr *e = kl_e_string(a, KL_STR_REGEX_MATCH, NULL, s, NULL);
    e->buf = dfa; /* not the string arena: a constant the kernel reads */
    return e;
}

static bool is_int_const(const kl_expr *e, int64_t *v) {
    if (e->kind != KL_E_CONST || kl_dtype_is_float(e->dtype)) return false;
    *v = e->i;
    return true;
}

kl_expr *kl_e_add(kl_arena *a, kl_expr *x, kl_expr *y) {
    int64_t cx, cy;
    bool kx = is_int_const(x, &cx), ky = is_int_const(y, &cy);
    if (kx && ky) return kl_e_const_i(a, x->dtype, cx + cy);
    if (kx && cx == 0) return y;
    if (ky && cy == 0) return x;
    return kl_e_binary(a, KL_ADD, x, y);
}

kl_expr *kl_e_mul(kl_arena *a, kl_expr *x, kl_expr *y) {
    int64_t cx, cy;
    bool kx = is_int_const(x, &cx), ky = is_int_const(y, &cy);
    if (kx && ky) return kl_e_const_i(a, x->dtype, cx * cy);
    if ((kx && cx == 0) || (ky && cy == 0)) return kl_e_const_i(a, x->dtype, 0);
    if (kx && cx == 1) return y;
    if (ky && cy == 1) return x;
    return kl_e_binary(a, KL_MUL, x, y);
}

kl_expr *kl_e_addc(kl_arena *a, kl_expr *x, int64_t c) {
    return kl_e_add(a, x, kl_e_const_i(a, x->dtype, c));
}

kl_expr *kl_e_mulc(kl_arena *a, kl_expr *x, int64_t c) {
    return kl_e_mul(a, x, kl_e_const_i(a, x->dtype, c));
}

kl_expr *kl_e_and(kl_arena *a, kl_expr *x, kl_expr *y) {
    if (!x) return y;
    if (!y) return x;
    if (x->kind == KL_E_CONST) return x->i ? y : x;
    if (y->kind == KL_E_CONST) return y->i ? x : y;
    return kl_e_binary(a, KL_AND, x, y);
}

kl_expr *kl_e_in_range(kl_arena *a, kl_expr *x, int64_t n) {
    int64_t c;
    if (is_int_const(x, &c)) return kl_e_const_i(a, KL_BOOL, c >= 0 && c < n);
    return kl_e_and(a, kl_e_binary(a, KL_GE, x, kl_e_const_i(a, x->dtype, 0)),
                    kl_e_binary(a, KL_LT, x, kl_e_const_i(a, x->dtype, n)));
}
