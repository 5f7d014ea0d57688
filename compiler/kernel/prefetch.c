/*
 * prefetch.c — software prefetch of the next panel of weights (kl_plan_prefetch, from the tile
 * pass).
 *
 * After tiling, a contraction walks its packed weights one panel per iteration of its
 * outermost loop (a block of output channels), and reads that panel again for every iteration
 * of the parallel loops between it and the register block (the output rows): R reads of each
 * panel, the first from memory, the others from cache. When the weights are larger than the
 * cache, that first pass fetches a whole panel from DRAM in 1/R of the time the panel is used,
 * and the FMAs wait for it: a chain of six 512-channel 3x3 convolutions on a 7x7 image (9.4 MB
 * of weights each) ran at 166 GFLOP/s, one of them alone, its weights cached, at 212.
 *
 * So each reduction step also asks the cache for a slice of the next panel: the slices of the
 * R x S steps of one panel (S reduction steps per pass) cover the next panel once, evenly, and
 * the memory traffic overlaps all of the panel's FMAs instead of a seventh of them. The hint
 * never changes a result; the back end clamps its address to the buffer (the last panel's
 * "next" lies past the end) and a back end without prefetch ignores it.
 */
#include "kl.h"

/* The constant the kernel's reduction streams panel by panel along loop 0: the largest one
 * whose offset moves with loop 0 and with no other loop outside the register block. */
static const kl_expr *panel_operand(const kl_expr *e, const kl_kernel *k, const kl_expr *best) {
    if (!e) return best;
    if (e->kind == KL_E_LOAD && kl_buffer_root(e->buf)->kind == KL_BUF_CONST) {
        kl_affine a;
        bool ok = kl_affine_offset(e->buf, e->idx, &a) && a.coef[0] > 0;
        for (int l = 1; ok && l < k->n_par - k->n_block; l++) ok = a.coef[l] == 0;
        if (ok && (!best || kl_buffer_bytes(e->buf) > kl_buffer_bytes(best->buf))) best = e;
    }
    best = panel_operand(e->a, k, best);
    best = panel_operand(e->b, k, best);
    return panel_operand(e->c, k, best);
}

/* sum + scale x (the linear index of loops [lo, hi), the innermost fastest) */
static kl_expr *add_linear_index(kl_arena *a, const kl_kernel *k, int lo, int hi, int64_t scale,
                                 kl_expr *sum) {
    for (int l = hi - 1; l >= lo; l--) {
        sum = kl_e_add(a, sum, kl_e_mulc(a, kl_e_iv(a, l), scale));
        scale *= k->extent[l];
    }
    return sum;
}

bool kl_plan_prefetch(kl_program *p, kl_kernel *k, const kl_target *t) {
    int outer = k->n_par - k->n_block; /* loops outside the register block */
    if (k->n_block == 0 || outer < 2 || k->extent[0] < 2 || t->l2_bytes <= 0 ||
        k->n_loops == k->n_par)
        return false;
    for (int l = 0; l < k->n_loops; l++)
        if (k->extent_expr[l]) return false;
    const kl_expr *w = panel_operand(k->value, k, NULL);
    if (!w) return false;
    kl_affine off;
    kl_affine_offset(w->buf, w->idx, &off);
    int64_t panel = off.coef[0], reuse = 1;
    for (int l = 1; l < outer; l++) reuse *= k->extent[l];
    int64_t bytes = kl_buffer_bytes(w->buf);
    if (reuse < 2 || bytes <= t->l2_bytes) return false; /* the cache holds them anyway */
    /* element (i0 + 1) * panel + (r * S + s) * step at reuse pass r, reduction step s */
    kl_arena *a = p->arena;
    int64_t steps = 1;
    for (int l = k->n_par; l < k->n_loops; l++) steps *= k->extent[l];
    int64_t step = (panel + reuse * steps - 1) / (reuse * steps);
    kl_expr *at = kl_e_addc(a, kl_e_mulc(a, kl_e_iv(a, 0), panel), off.c + panel);
    at = add_linear_index(a, k, k->n_par, k->n_loops, step, at);
    at = add_linear_index(a, k, 1, outer, step * steps, at);
    k->prefetch_buf = w->buf;
    k->prefetch_at = at;
    return true;
}
