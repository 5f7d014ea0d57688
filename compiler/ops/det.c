/*
 * det.c — Det (opset 11 and later): the determinant of each square matrix in X [..., n, n].
 *
 * Gaussian elimination with partial pivoting, the LU factorization numpy's det runs (LAPACK
 * getrf), unrolled over the n columns at compile time: step k picks the row of the largest
 * |a[i][k]| for i >= k (the first one on ties), swaps it with row k and eliminates below it,
 * each a small kernel (the pivot's magnitude, the pivot row, the next matrix). The determinant
 * is the product of the pivots, negated once per real swap. Everything runs in float64 and
 * rounds once. Each step keeps its own matrix, so the workspace grows as n^3 per matrix; n is
 * limited to 64.
 */
#include <math.h>

#include "arith_util.h"
#include "move_util.h"

static const char *const no_attrs[] = {NULL};

static bool infer_det(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    if (x->rank < 2 || x->dim[x->rank - 1] != x->dim[x->rank - 2])
        return kl_error(d, n, "X must be [..., n, n], not %s", KL_SHAPE_TEXT(x));
    if (x->dim[x->rank - 1] > 64)
        return kl_error(d, n, "matrices of size %lld: Det unrolls its elimination and takes "
                        "n <= 64", (long long)x->dim[x->rank - 1]);
    kl_shape s = *x;
    s.rank -= 2;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &s);
}

typedef struct det {
    kl_lower *L;
    kl_arena *a;
    kl_node *n;
    int nb;              /* batch dimensions */
    int64_t size;
    kl_shape batch;
} det;

/* m[b..., row, col] as float64 (the batch indices are loops 0..nb-1) */
static kl_expr *at(const det *D, kl_buffer *m, kl_expr *row, kl_expr *col) {
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < D->nb; i++) idx[i] = kl_e_iv(D->a, i);
    idx[D->nb] = row;
    idx[D->nb + 1] = col;
    return kl_e_cast(D->a, KL_F64, kl_e_load(D->a, m, idx));
}

static kl_expr *batch_load(const det *D, kl_buffer *b) {
    return kl_e_load(D->a, b, kl_lower_ivs(D->L, D->nb));
}

/* A kernel over the batch with one reduction loop over the rows (loop nb). */
static kl_kernel *row_reduction(const det *D, const char *tag, kl_buffer *out, kl_reduce red,
                                kl_dtype acc) {
    kl_kernel *k = kl_kernel_new(D->L->prog, D->n, tag);
    k->n_par = D->nb;
    k->n_loops = D->nb + 1;
    for (int i = 0; i < D->nb; i++) k->extent[i] = D->batch.dim[i];
    k->extent[D->nb] = D->size;
    k->out = out;
    k->out_idx = kl_lower_ivs(D->L, D->nb);
    k->reduce = red;
    k->acc_dtype = acc;
    return k;
}

/* Step `col`: the pivot row of matrix m, then the next matrix. Returns the pivot row buffer. */
static kl_buffer *eliminate(const det *D, int64_t col, kl_buffer *m, kl_buffer *next) {
    kl_arena *a = D->a;
    kl_expr *i = kl_e_iv(a, D->nb), *c = kl_e_idx(a, col);
    kl_expr *below = kl_e_binary(a, KL_GE, i, c);
    kl_expr *mag = kl_e_unary(a, KL_ABS, at(D, m, i, c));
    kl_buffer *best = kl_lower_temp(D->L, "pivot_abs", KL_F64, &D->batch);
    kl_kernel *k = row_reduction(D, "pivot_abs", best, KL_RED_MAX, KL_F64);
    k->value = kl_e_select(a, below, mag, kl_e_const_f(a, KL_F64, -1));
    kl_program_add_kernel(D->L->prog, k);

    kl_buffer *piv = kl_lower_temp(D->L, "pivot_row", KL_I64, &D->batch);
    k = row_reduction(D, "pivot_row", piv, KL_RED_MIN, KL_I64);
    kl_expr *hit = kl_e_and(a, below, kl_e_binary(a, KL_EQ, mag, batch_load(D, best)));
    k->value = kl_e_select(a, hit, i, kl_e_idx(a, D->size));
    kl_program_add_kernel(D->L->prog, k);

    /* next[i][j]: rows col and p swapped, then rows below col minus their multiple of row col */
    kl_kernel *e = kl_kernel_new(D->L->prog, D->n, "eliminate");
    int r = D->nb + 2;
    e->n_loops = e->n_par = r;
    for (int x = 0; x < D->nb; x++) e->extent[x] = D->batch.dim[x];
    e->extent[D->nb] = e->extent[D->nb + 1] = D->size;
    e->out = next;
    e->out_idx = kl_lower_ivs(D->L, r);
    kl_expr *row = kl_e_iv(a, D->nb), *j = kl_e_iv(a, D->nb + 1);
    kl_expr *p = kl_e_binary(a, KL_MIN, batch_load(D, piv), kl_e_idx(a, D->size - 1));
    kl_expr *src = kl_e_select(a, kl_e_binary(a, KL_EQ, row, c), p,
                               kl_e_select(a, kl_e_binary(a, KL_EQ, row, p), c, row));
    kl_expr *pivot = at(D, m, p, c);
    kl_expr *zero = kl_e_const_f(a, KL_F64, 0);
    /* a zero pivot means a zero column below it: nothing to eliminate (and det is 0) */
    kl_expr *mult = kl_e_select(a, kl_e_binary(a, KL_EQ, pivot, zero), zero,
                                kl_e_binary(a, KL_DIV, at(D, m, src, c), pivot));
    kl_expr *v = at(D, m, src, j);
    kl_expr *reduced = kl_e_binary(a, KL_SUB, v, kl_e_binary(a, KL_MUL, mult, at(D, m, p, j)));
    e->value = kl_e_select(a, kl_e_binary(a, KL_GT, row, c), reduced, v);
    kl_program_add_kernel(D->L->prog, e);
    return piv;
}

static bool lower_det(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *out = kl_lower_buffer(L, n->outputs[0]);
    det D = {.L = L, .a = a, .n = n, .nb = x->shape.rank - 2,
             .size = x->shape.dim[x->shape.rank - 1], .batch = out->shape};
    kl_expr *result = kl_e_const_f(a, KL_F64, 1);
    kl_buffer *m = x;
    for (int64_t col = 0; col < D.size; col++) {
        kl_shape ms = x->shape;
        kl_buffer *next = kl_lower_temp(L, "lu", KL_F64, &ms);
        kl_buffer *piv = eliminate(&D, col, m, next);
        kl_expr *c = kl_e_idx(a, col);
        kl_expr *swapped = kl_e_binary(a, KL_NE, batch_load(&D, piv), c);
        kl_expr *sign = kl_e_select(a, swapped, kl_e_const_f(a, KL_F64, -1),
                                    kl_e_const_f(a, KL_F64, 1));
        result = kl_e_binary(a, KL_MUL, result, kl_e_binary(a, KL_MUL, at(&D, next, c, c), sign));
        m = next;
    }
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, out->dtype, result));
    return true;
}

const kl_op kl_ops_det[] = {
    {"", "Det", 11, KL_OPSET_LATEST, no_attrs, infer_det, lower_det},
    {0},
};
