/*
 * test_interp.c — the kernel interpreter (the reference that constant folding relies on).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kl.h"

static kl_buffer *buf(kl_program *p, const char *name, kl_dtype t, kl_shape s, void *host) {
    kl_buffer *b = kl_program_buffer(p, name, KL_BUF_WORKSPACE, t, &s);
    b->host = host;
    return b;
}

/* y[i] = sum_j x[i, j] * 2, then result = acc / 3 (a mean of doubled values) */
Test(interp, reduction_with_result_expression) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    float x[6] = {1, 2, 3, 4, 5, 6}, y[2] = {0};
    kl_buffer *bx = buf(p, "x", KL_F32, (kl_shape){2, {2, 3}}, x);
    kl_buffer *by = buf(p, "y", KL_F32, (kl_shape){1, {2}}, y);
    kl_kernel *k = kl_kernel_new(p, NULL, "mean");
    k->n_loops = 2;
    k->n_par = 1;
    k->extent[0] = 2;
    k->extent[1] = 3;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_F32;
    kl_expr *idx[2] = {kl_e_iv(a, 0), kl_e_iv(a, 1)};
    k->value = kl_e_binary(a, KL_MUL, kl_e_load(a, bx, idx), kl_e_const_f(a, KL_F32, 2));
    k->result = kl_e_binary(a, KL_DIV, kl_e_acc(a, KL_F32), kl_e_const_f(a, KL_F32, 3));
    k->out = by;
    k->out_idx = idx; /* only idx[0] is used: y is rank 1 */
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_assert(kl_interp_kernel(k, &d));
    cr_expect_float_eq(y[0], 4.0f, 1e-6);
    cr_expect_float_eq(y[1], 10.0f, 1e-6);
    kl_arena_free(a);
}

Test(interp, max_reduction_propagates_nan_and_starts_at_identity) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    float x[4] = {-5, -7, NAN, 1}, y[2];
    kl_buffer *bx = buf(p, "x", KL_F32, (kl_shape){2, {2, 2}}, x);
    kl_buffer *by = buf(p, "y", KL_F32, (kl_shape){1, {2}}, y);
    kl_kernel *k = kl_kernel_new(p, NULL, "max");
    k->n_loops = 2;
    k->n_par = 1;
    k->extent[0] = k->extent[1] = 2;
    k->reduce = KL_RED_MAX;
    k->acc_dtype = KL_F32;
    kl_expr *idx[2] = {kl_e_iv(a, 0), kl_e_iv(a, 1)};
    k->value = kl_e_load(a, bx, idx);
    k->out = by;
    k->out_idx = idx;
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_assert(kl_interp_kernel(k, &d));
    cr_expect_float_eq(y[0], -5.0f, 0);
    cr_expect(isnan(y[1]));
    kl_arena_free(a);
}

Test(interp, integer_semantics_division_by_zero_and_python_mod) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    int64_t x[3] = {7, -7, 7}, z[3] = {0, 3, -3}, q[3], m[3];
    kl_buffer *bx = buf(p, "x", KL_I64, (kl_shape){1, {3}}, x);
    kl_buffer *bz = buf(p, "z", KL_I64, (kl_shape){1, {3}}, z);
    kl_buffer *bq = buf(p, "q", KL_I64, (kl_shape){1, {3}}, q);
    kl_buffer *bm = buf(p, "m", KL_I64, (kl_shape){1, {3}}, m);
    kl_binop ops[2] = {KL_DIV, KL_MOD};
    kl_buffer *outs[2] = {bq, bm};
    kl_diag d;
    kl_diag_init(&d, "t");
    for (int o = 0; o < 2; o++) {
        kl_kernel *k = kl_kernel_new(p, NULL, "int");
        k->n_loops = k->n_par = 1;
        k->extent[0] = 3;
        kl_expr *i0 = kl_e_iv(a, 0);
        k->value = kl_e_binary(a, ops[o], kl_e_load(a, bx, &i0), kl_e_load(a, bz, &i0));
        k->out = outs[o];
        k->out_idx = kl_alloc(a, sizeof(kl_expr *));
        k->out_idx[0] = i0;
        cr_assert(kl_interp_kernel(k, &d));
    }
    cr_expect_eq(q[0], 0); /* no trap: division by zero gives 0 */
    cr_expect_eq(q[1], -2);
    cr_expect_eq(q[2], -2);
    cr_expect_eq(m[1], 2);  /* -7 mod 3 = 2 (sign of divisor) */
    cr_expect_eq(m[2], -2); /*  7 mod -3 = -2 */
    kl_arena_free(a);
}

Test(interp, casts_truncate_and_round_float32) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    double x[3] = {-2.7, 3.9, 0.1};
    int32_t yi[3];
    float yf[3];
    kl_buffer *bx = buf(p, "x", KL_F64, (kl_shape){1, {3}}, x);
    kl_buffer *outs[2] = {buf(p, "yi", KL_I32, (kl_shape){1, {3}}, yi),
                          buf(p, "yf", KL_F32, (kl_shape){1, {3}}, yf)};
    kl_diag d;
    kl_diag_init(&d, "t");
    for (int o = 0; o < 2; o++) {
        kl_kernel *k = kl_kernel_new(p, NULL, "cast");
        k->n_loops = k->n_par = 1;
        k->extent[0] = 3;
        kl_expr *i0 = kl_e_iv(a, 0);
        k->value = kl_e_cast(a, outs[o]->dtype, kl_e_load(a, bx, &i0));
        k->out = outs[o];
        k->out_idx = &i0;
        cr_assert(kl_interp_kernel(k, &d));
    }
    cr_expect_eq(yi[0], -2);
    cr_expect_eq(yi[1], 3);
    cr_expect_eq(yf[2], 0.1f);
    kl_arena_free(a);
}

Test(interp, out_of_range_load_is_an_error_not_a_crash) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    float x[2] = {1, 2}, y[3];
    kl_buffer *bx = buf(p, "x", KL_F32, (kl_shape){1, {2}}, x);
    kl_buffer *by = buf(p, "y", KL_F32, (kl_shape){1, {3}}, y);
    kl_kernel *k = kl_kernel_new(p, NULL, "oob");
    k->n_loops = k->n_par = 1;
    k->extent[0] = 3;
    kl_expr *i0 = kl_e_iv(a, 0);
    k->value = kl_e_load(a, bx, &i0);
    k->out = by;
    k->out_idx = &i0;
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_expect_not(kl_interp_kernel(k, &d));
    cr_expect(strstr(d.text, "index out of range reading 'x'") != NULL);
    kl_diag_free(&d);
    kl_arena_free(a);
}

Test(expr, index_builders_fold_trivial_arithmetic) {
    kl_arena *a = kl_arena_new();
    kl_expr *iv = kl_e_iv(a, 2);
    cr_expect_eq(kl_e_mulc(a, iv, 1), iv);
    cr_expect_eq(kl_e_addc(a, iv, 0), iv);
    kl_expr *c = kl_e_add(a, kl_e_idx(a, 3), kl_e_idx(a, 4));
    cr_expect_eq(c->kind, KL_E_CONST);
    cr_expect_eq(c->i, 7);
    kl_expr *r = kl_e_in_range(a, kl_e_idx(a, 5), 3);
    cr_expect_eq(r->kind, KL_E_CONST);
    cr_expect_eq(r->i, 0);
    cr_expect_eq(kl_e_and(a, NULL, iv), iv);
    kl_arena_free(a);
}

/* ---- strings (kiln_string.h through KL_E_STRING) ---- */

/* y[i] = concat(x[i], s) into an arena of `cap` bytes; then the arena's failed flag. */
static int concat_into(const char **x, int n, const char **y, int64_t cap, int64_t *arena,
                       int32_t *failed) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    static const char *suffix[1] = {"s"};
    kl_buffer *bx = buf(p, "x", KL_STRING, (kl_shape){1, {n}}, x);
    kl_buffer *bs = buf(p, "s", KL_STRING, (kl_shape){1, {1}}, suffix);
    kl_buffer *by = buf(p, "y", KL_STRING, (kl_shape){1, {n}}, y);
    kl_buffer *ar = buf(p, "arena", KL_I64, (kl_shape){1, {2 + cap / 8}}, arena);
    kl_buffer *bf = buf(p, "failed", KL_I32, (kl_shape){0, {0}}, failed);
    kl_kernel *k = kl_kernel_new(p, NULL, "concat");
    k->n_loops = k->n_par = 1;
    k->extent[0] = n;
    kl_expr *i[1] = {kl_e_iv(a, 0)}, *zero[1] = {kl_e_idx(a, 0)};
    k->value = kl_e_string(a, KL_STR_CONCAT, ar, kl_e_load(a, bx, i), kl_e_load(a, bs, zero));
    k->out = by;
    k->out_idx = i;
    kl_kernel *c = kl_kernel_new(p, NULL, "failed");
    c->value = kl_e_string(a, KL_STR_FAILED, ar, NULL, NULL);
    c->out = bf;
    c->out_idx = i;
    kl_diag d;
    kl_diag_init(&d, "t");
    int ok = kl_interp_kernel(k, &d) && kl_interp_kernel(c, &d);
    kl_diag_free(&d);
    kl_arena_free(a);
    return ok;
}

Test(interp, string_concat_builds_into_the_arena) {
    const char *x[2] = {"cat", "dog"}, *y[2] = {0};
    int64_t arena[2 + 2] = {0}; /* 16 bytes: "cats" and "dogs" take 10 */
    int32_t failed = -1;
    cr_assert(concat_into(x, 2, y, 16, arena, &failed));
    cr_expect_str_eq(y[0], "cats");
    cr_expect_str_eq(y[1], "dogs");
    cr_expect_eq(arena[0], 10);
    cr_expect_eq(failed, 0);
    cr_expect((const char *)y[0] >= (const char *)(arena + 2) &&
              (const char *)y[1] + 5 <= (const char *)(arena + 4));
}

Test(interp, string_arena_full_fails_without_writing_past_it) {
    const char *x[3] = {"cat", "snake", "dog"}, *y[3] = {0};
    int64_t arena[2 + 1 + 1] = {0}; /* 8 bytes of room, then a guard word */
    arena[3] = 0x5a5a5a5a5a5a5a5a;
    int32_t failed = -1;
    cr_assert(concat_into(x, 3, y, 8, arena, &failed));
    cr_expect_str_eq(y[0], "cats");  /* 5 bytes fit */
    cr_expect_str_eq(y[1], "");      /* "snakes" does not: nothing written */
    cr_expect_str_eq(y[2], "");      /* nor anything after the arena failed */
    cr_expect_eq(failed, 1);
    cr_expect_eq(arena[0], 5);
    cr_expect_eq(arena[3], 0x5a5a5a5a5a5a5a5a);
}

Test(interp, string_compare_and_case) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    const char *x[3] = {"Monday", "monday", "Tuesday"}, *w[1] = {"monday"}, *up[3] = {0};
    bool eq[3], ieq[3];
    int64_t arena[2 + 8] = {0};
    kl_buffer *bx = buf(p, "x", KL_STRING, (kl_shape){1, {3}}, x);
    kl_buffer *bw = buf(p, "w", KL_STRING, (kl_shape){1, {1}}, w);
    kl_buffer *ar = buf(p, "arena", KL_I64, (kl_shape){1, {10}}, arena);
    kl_expr *i[1] = {kl_e_iv(a, 0)}, *zero[1] = {kl_e_idx(a, 0)};
    kl_expr *xi = kl_e_load(a, bx, i), *w0 = kl_e_load(a, bw, zero);
    struct { kl_expr *value; kl_buffer *out; } ks[3] = {
        {kl_e_string(a, KL_STR_EQ, NULL, xi, w0), buf(p, "eq", KL_BOOL, (kl_shape){1, {3}}, eq)},
        {kl_e_string(a, KL_STR_EQ_NOCASE, NULL, xi, w0),
         buf(p, "ieq", KL_BOOL, (kl_shape){1, {3}}, ieq)},
        {kl_e_string(a, KL_STR_UPPER, ar, xi, NULL),
         buf(p, "up", KL_STRING, (kl_shape){1, {3}}, up)},
    };
    kl_diag d;
    kl_diag_init(&d, "t");
    for (int j = 0; j < 3; j++) {
        kl_kernel *k = kl_kernel_new(p, NULL, "k");
        k->n_loops = k->n_par = 1;
        k->extent[0] = 3;
        k->value = ks[j].value;
        k->out = ks[j].out;
        k->out_idx = i;
        cr_assert(kl_interp_kernel(k, &d));
    }
    cr_expect(!eq[0] && eq[1] && !eq[2]);
    cr_expect(ieq[0] && ieq[1] && !ieq[2]);
    cr_expect_str_eq(up[0], "MONDAY");
    cr_expect_str_eq(up[2], "TUESDAY");
    kl_diag_free(&d);
    kl_arena_free(a);
}
