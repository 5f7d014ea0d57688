/*
 * test_halo.c — the halo and fold kernel passes on hand-built programs: what they rewrite,
 * what they must leave alone, and that the interpreter gives the same numbers before and after.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kl.h"

typedef struct prog {
    kl_arena *a;
    kl_program *p;
    kl_buffer *x, *y;
} prog;

static float *values(kl_arena *a, int64_t n, int seed) {
    float *v = kl_alloc(a, (size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)((i * 7 + seed * 13) % 23) / 11.0f - 1.0f;
    return v;
}

static kl_buffer *buffer(prog *g, const char *name, kl_buffer_kind kind, int rank,
                         const int64_t *dims) {
    kl_shape s = {.rank = rank};
    if (rank > 0) memcpy(s.dim, dims, (size_t)rank * sizeof *dims);
    kl_buffer *b = kl_program_buffer(g->p, name, kind, KL_F32, &s);
    if (kind == KL_BUF_CONST) b->data = values(g->a, kl_shape_numel(&s), b->id);
    if (kind == KL_BUF_INPUT) kl_ptrvec_push(g->a, &g->p->inputs, b);
    if (kind == KL_BUF_OUTPUT) kl_ptrvec_push(g->a, &g->p->outputs, b);
    return b;
}

static kl_expr *iv(prog *g, int l) { return kl_e_iv(g->a, l); }

/* out[n, oh, ow, c] = reduce over kh, kw of in[n, oh + kh - 1, ow + kw - 1, c] (outside: fill),
 * times w[c, kh, kw] for a sum; a depthwise 3x3 "same" window, channels last. */
static kl_kernel *window_k(prog *g, kl_buffer *in, kl_buffer *out, kl_reduce r, double fill,
                           int64_t ks) {
    kl_arena *a = g->a;
    const kl_shape *s = &in->shape;
    kl_kernel *k = kl_kernel_new(g->p, NULL, r == KL_RED_SUM ? "dw" : "pool");
    int64_t ext[6] = {s->dim[0], s->dim[1], s->dim[2], s->dim[3], ks, ks};
    memcpy(k->extent, ext, sizeof ext);
    k->n_par = 4;
    k->n_loops = 6;
    kl_expr *ih = kl_e_addc(a, kl_e_add(a, iv(g, 1), iv(g, 4)), -ks / 2);
    kl_expr *iw = kl_e_addc(a, kl_e_add(a, iv(g, 2), iv(g, 5)), -ks / 2);
    kl_expr *xi[4] = {iv(g, 0), ih, iw, iv(g, 3)};
    kl_expr *inside = kl_e_and(a, kl_e_in_range(a, ih, s->dim[1]), kl_e_in_range(a, iw, s->dim[2]));
    kl_expr *x = kl_e_select(a, inside, kl_e_load(a, in, xi), kl_e_const_f(a, KL_F32, fill));
    if (r == KL_RED_SUM) {
        kl_buffer *w = buffer(g, "w", KL_BUF_CONST, 3, (int64_t[]){s->dim[3], ks, ks});
        kl_expr *wi[3] = {iv(g, 3), iv(g, 4), iv(g, 5)};
        x = kl_e_binary(a, KL_MUL, x, kl_e_load(a, w, wi));
    }
    k->value = x;
    k->reduce = r;
    k->acc_dtype = KL_F32;
    k->out = out;
    k->out_idx = kl_alloc_array(a, 4, sizeof *k->out_idx);
    for (int i = 0; i < 4; i++) k->out_idx[i] = iv(g, i);
    kl_program_add_kernel(g->p, k);
    return k;
}

static kl_kernel *window(prog *g, kl_buffer *in, kl_buffer *out, kl_reduce r, double fill) {
    return window_k(g, in, out, r, fill, 3);
}

/* x (input) -> window -> t (workspace) -> window -> y (output) */
static prog two_windows(kl_reduce first, double fill1, kl_reduce second, double fill2) {
    prog g = {kl_arena_new(), NULL, NULL, NULL};
    g.p = kl_program_new(g.a);
    int64_t dims[4] = {1, 5, 6, 4};
    g.x = buffer(&g, "x", KL_BUF_INPUT, 4, dims);
    kl_buffer *t = buffer(&g, "t", KL_BUF_WORKSPACE, 4, dims);
    g.y = buffer(&g, "y", KL_BUF_OUTPUT, 4, dims);
    window(&g, g.x, t, first, fill1);
    window(&g, t, g.y, second, fill2);
    return g;
}

static float *run(prog *g, const float *x) {
    for (int i = 0; i < g->p->buffers.n; i++) {
        kl_buffer *b = g->p->buffers.items[i];
        if (b->kind == KL_BUF_CONST) b->host = (void *)b->data;
        else if (b->kind == KL_BUF_INPUT) b->host = (void *)x;
        else b->host = kl_alloc(g->a, (size_t)kl_buffer_bytes(b));
        /* garbage in the workspace: the halo must be filled every time */
        if (b->kind == KL_BUF_WORKSPACE)
            for (int64_t j = 0; j < kl_shape_numel(&b->shape); j++) ((float *)b->host)[j] = NAN;
    }
    kl_diag d;
    kl_diag_init(&d, "test");
    bool ok = kl_interp_program(g->p, &d);
    if (!ok) kl_diag_print(&d, stderr);
    cr_assert(ok);
    kl_diag_free(&d);
    return g->y->host;
}

static void halo(prog *g) {
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kpass_halo(g->p, &(kl_kernel_opts){kl_target_default(), KL_MICRO_AUTO}, &d));
    kl_diag_free(&d);
}

static bool has_select(const kl_expr *e) {
    return e && (e->kind == KL_E_SELECT || has_select(e->a) || has_select(e->b) || has_select(e->c));
}

static const kl_kernel *reader_of_y(const prog *g) {
    for (int i = 0; i < g->p->kernels.n; i++) {
        const kl_kernel *k = g->p->kernels.items[i];
        if (k->out == g->y) return k;
    }
    return NULL;
}

static void same(const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++) cr_assert_float_eq(got[i], want[i], 1e-6, "element %lld", (long long)i);
}

/* conv -> conv: the intermediate gets a zero halo, the second window loses its test. */
Test(halo, intermediate_gets_a_halo) {
    prog g = two_windows(KL_RED_SUM, 0.0, KL_RED_SUM, 0.0);
    float *x = values(g.a, 120, 1);
    float want[120];
    memcpy(want, run(&g, x), sizeof want);
    int before = g.p->kernels.n;
    halo(&g);
    cr_assert_gt(g.p->kernels.n, before, "no halo fill kernels");
    cr_assert(!has_select(reader_of_y(&g)->value), "the second window still tests its bounds");
    const kl_kernel *first = NULL;
    for (int i = 0; i < g.p->kernels.n && !first; i++)
        if (((kl_kernel *)g.p->kernels.items[i])->reduce != KL_RED_NONE) first = g.p->kernels.items[i];
    cr_assert(first && has_select(first->value), "the graph input must keep its test");
    same(run(&g, x), want, 120);
    kl_arena_free(g.a);
}

/* A max pool reading a sum's output: the halo holds -inf, what its test gave. */
Test(halo, fill_value_follows_the_reader) {
    prog g = two_windows(KL_RED_SUM, 0.0, KL_RED_MAX, -INFINITY);
    float *x = values(g.a, 120, 2);
    float want[120];
    memcpy(want, run(&g, x), sizeof want);
    halo(&g);
    cr_assert(!has_select(reader_of_y(&g)->value));
    same(run(&g, x), want, 120);
    kl_arena_free(g.a);
}

/* Two readers wanting different fills: no halo, tests stay, numbers unchanged. */
Test(halo, conflicting_fills_keep_the_tests) {
    prog g = two_windows(KL_RED_SUM, 0.0, KL_RED_SUM, 0.0);
    kl_buffer *t = ((kl_kernel *)g.p->kernels.items[0])->out;
    kl_buffer *y2 = buffer(&g, "y2", KL_BUF_OUTPUT, 4, (int64_t[]){1, 5, 6, 4});
    window(&g, t, y2, KL_RED_MAX, -INFINITY);
    float *x = values(g.a, 120, 3);
    float want[120];
    memcpy(want, run(&g, x), sizeof want);
    int before = g.p->kernels.n;
    halo(&g);
    cr_assert_eq(g.p->kernels.n, before);
    cr_assert(has_select(reader_of_y(&g)->value));
    same(run(&g, x), want, 120);
    kl_arena_free(g.a);
}

/* fold: pow(x, 2) becomes x * x (exactly the same bits), a one-element constant an immediate. */
Test(fold, square_and_scalar_constants) {
    prog g = {kl_arena_new(), NULL, NULL, NULL};
    g.p = kl_program_new(g.a);
    int64_t dims[1] = {64};
    g.x = buffer(&g, "x", KL_BUF_INPUT, 1, dims);
    g.y = buffer(&g, "y", KL_BUF_OUTPUT, 1, dims);
    kl_buffer *two = buffer(&g, "two", KL_BUF_CONST, 0, NULL);
    *(float *)two->data = 2.0f;
    kl_kernel *k = kl_kernel_new(g.p, NULL, "pow");
    k->n_loops = k->n_par = 1;
    k->extent[0] = 64;
    kl_expr *i0 = iv(&g, 0);
    k->value = kl_e_binary(g.a, KL_POW, kl_e_load(g.a, g.x, &i0), kl_e_load(g.a, two, NULL));
    k->out = g.y;
    k->out_idx = kl_alloc_array(g.a, 1, sizeof *k->out_idx);
    k->out_idx[0] = i0;
    kl_program_add_kernel(g.p, k);
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)i * 0.37f - 11.3f;
    float want[64];
    memcpy(want, run(&g, x), sizeof want);
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kpass_fold(g.p, &(kl_kernel_opts){kl_target_default(), KL_MICRO_AUTO}, &d));
    kl_diag_free(&d);
    const kl_expr *v = ((kl_kernel *)g.p->kernels.items[0])->value;
    cr_assert(v->kind == KL_E_BINARY && v->op == KL_MUL && v->a == v->b, "pow(x, 2) is not x * x");
    float *got = run(&g, x);
    for (int i = 0; i < 64; i++) cr_assert(memcmp(&got[i], &want[i], sizeof *got) == 0, "bits differ at %d", i);
    kl_arena_free(g.a);
}

/* A heavy window (7 x 7 taps) on the graph input reads a padded copy of it instead. */
Test(halo, graph_input_gets_a_padded_copy) {
    prog g = {kl_arena_new(), NULL, NULL, NULL};
    g.p = kl_program_new(g.a);
    int64_t dims[4] = {1, 9, 10, 3};
    g.x = buffer(&g, "x", KL_BUF_INPUT, 4, dims);
    g.y = buffer(&g, "y", KL_BUF_OUTPUT, 4, dims);
    window_k(&g, g.x, g.y, KL_RED_SUM, 0.0, 7);
    float *x = values(g.a, 270, 4);
    float want[270];
    memcpy(want, run(&g, x), sizeof want);
    halo(&g);
    const kl_kernel *conv = reader_of_y(&g);
    cr_assert(!has_select(conv->value), "the window still tests the input's bounds");
    bool copied = false;
    for (int i = 0; i < g.p->kernels.n; i++) {
        const kl_kernel *k = g.p->kernels.items[i];
        copied = copied || (k->value->kind == KL_E_LOAD && k->value->buf == g.x);
    }
    cr_assert(copied, "no copy of the input");
    same(run(&g, x), want, 270);
    kl_arena_free(g.a);
}
