/*
 * test_plan.c — the memory planner: liveness, reuse, alignment, views.
 */
#include <criterion/criterion.h>

#include "kl.h"

/* A chain x -> t0 -> t1 -> ... -> y of copies; returns the temps. */
static kl_program *chain(kl_arena *a, int n_temps, const int64_t *sizes, kl_buffer **temps) {
    kl_program *p = kl_program_new(a);
    kl_shape s = {.rank = 1, .dim = {sizes[0]}};
    kl_buffer *prev = kl_program_buffer(p, "x", KL_BUF_INPUT, KL_F32, &s);
    kl_ptrvec_push(a, &p->inputs, prev);
    for (int i = 0; i <= n_temps; i++) {
        kl_shape si = {.rank = 1, .dim = {sizes[i]}};
        kl_buffer *b = i < n_temps ? kl_program_buffer(p, kl_sprintf(a, "t%d", i), KL_BUF_WORKSPACE,
                                                       KL_F32, &si)
                                   : kl_program_buffer(p, "y", KL_BUF_OUTPUT, KL_F32, &si);
        if (i < n_temps) temps[i] = b;
        else kl_ptrvec_push(a, &p->outputs, b);
        kl_kernel *k = kl_kernel_new(p, NULL, "step");
        k->n_loops = k->n_par = 1;
        k->extent[0] = sizes[i];
        k->out = b;
        kl_expr *iv = kl_e_iv(a, 0);
        k->out_idx = kl_alloc(a, sizeof(kl_expr *));
        k->out_idx[0] = iv;
        kl_expr *src_idx = kl_e_idx(a, 0); /* read element 0: keeps every shape legal */
        k->value = kl_e_load(a, prev, &src_idx);
        kl_program_add_kernel(p, k);
        prev = b;
    }
    return p;
}

static bool overlap_bytes(const kl_buffer *a, const kl_buffer *b) {
    return a->offset < b->offset + kl_buffer_bytes(b) && b->offset < a->offset + kl_buffer_bytes(a);
}

Test(plan, chain_reuses_dead_buffers) {
    kl_arena *a = kl_arena_new();
    int64_t sizes[] = {1000, 1000, 1000, 1000, 1000};
    kl_buffer *t[4];
    kl_program *p = chain(a, 4, sizes, t);
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d));
    /* t0 dies when t1 is made: two slots suffice for the whole chain */
    cr_expect_eq(p->intermediates_total, 4 * 4032);
    cr_expect_eq(p->workspace_size, 2 * 4032);
    for (int i = 0; i < 3; i++) cr_expect_not(overlap_bytes(t[i], t[i + 1]), "t%d overlaps t%d", i, i + 1);
    kl_arena_free(a);
}

Test(plan, offsets_are_64_byte_aligned_and_lifetimes_right) {
    kl_arena *a = kl_arena_new();
    int64_t sizes[] = {3, 17, 5, 129, 7};
    kl_buffer *t[4];
    kl_program *p = chain(a, 4, sizes, t);
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d));
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(t[i]->offset % 64, 0);
        cr_expect_eq(t[i]->first_kernel, i);
        cr_expect_eq(t[i]->last_kernel, i + 1);
        cr_expect_leq(t[i]->offset + kl_buffer_bytes(t[i]), p->workspace_size);
    }
    kl_arena_free(a);
}

Test(plan, buffers_alive_together_never_overlap) {
    /* k0 writes t0, k1 writes t1, k2 writes t2 reading t0 and t1: all three alive at k2 */
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_shape s = {.rank = 1, .dim = {100}};
    kl_buffer *t[3], *y = kl_program_buffer(p, "y", KL_BUF_OUTPUT, KL_F32, &s);
    for (int i = 0; i < 3; i++) t[i] = kl_program_buffer(p, kl_sprintf(a, "t%d", i), KL_BUF_WORKSPACE, KL_F32, &s);
    kl_buffer *outs[4] = {t[0], t[1], t[2], y};
    for (int i = 0; i < 4; i++) {
        kl_kernel *k = kl_kernel_new(p, NULL, "k");
        k->n_loops = k->n_par = 1;
        k->extent[0] = 100;
        k->out = outs[i];
        k->out_idx = kl_alloc(a, sizeof(kl_expr *));
        k->out_idx[0] = kl_e_iv(a, 0);
        kl_expr *iv = kl_e_iv(a, 0);
        if (i == 2) k->value = kl_e_binary(a, KL_ADD, kl_e_load(a, t[0], &iv), kl_e_load(a, t[1], &iv));
        else if (i == 3) k->value = kl_e_load(a, t[2], &iv);
        else k->value = kl_e_const_f(a, KL_F32, 1.0);
        kl_program_add_kernel(p, k);
    }
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d));
    cr_expect_not(overlap_bytes(t[0], t[1]));
    cr_expect_not(overlap_bytes(t[0], t[2]));
    cr_expect_not(overlap_bytes(t[1], t[2]));
    cr_expect_eq(p->workspace_size, 3 * 448);
    kl_arena_free(a);
}

Test(plan, views_extend_their_roots_lifetime) {
    kl_arena *a = kl_arena_new();
    int64_t sizes[] = {64, 64, 64, 64};
    kl_buffer *t[3];
    kl_program *p = chain(a, 3, sizes, t);
    /* read t0 through a 2-D view in the last kernel: t0 must stay alive to the end */
    kl_shape v2 = {.rank = 2, .dim = {8, 8}};
    kl_buffer *view = kl_program_view(p, t[0], &v2);
    kl_kernel *last = p->kernels.items[p->kernels.n - 1];
    kl_expr *idx[2] = {kl_e_idx(a, 0), kl_e_idx(a, 1)};
    last->value = kl_e_binary(a, KL_ADD, last->value, kl_e_load(a, view, idx));
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d));
    cr_expect_eq(t[0]->last_kernel, p->kernels.n - 1);
    cr_expect_eq(view->offset, t[0]->offset);
    for (int i = 1; i < 3; i++) cr_expect_not(overlap_bytes(t[0], t[i]));
    kl_arena_free(a);
}
