/*
 * plan.c — the memory plan: every intermediate gets an offset in one workspace.
 *
 * Liveness is measured in kernel indices: a buffer lives from the first kernel that touches it
 * to the last. Buffers are then placed greedily, largest first, at the lowest 64-byte aligned
 * offset that does not overlap any already placed buffer whose lifetime intersects its own (the
 * "greedy by size" strategy of TFLite Micro's planner). Views share their root's storage, so the
 * root's lifetime covers every use of its views.
 */
#include <stdlib.h>

#include "kl.h"

#define ALIGN 64

static void touch(kl_buffer *b, int k) {
    b = kl_buffer_root(b);
    if (b->first_kernel < 0 || k < b->first_kernel) b->first_kernel = k;
    if (k > b->last_kernel) b->last_kernel = k;
}

static void touch_expr(const kl_expr *e, int k) {
    if (!e) return;
    if (e->kind == KL_E_LOAD) {
        touch(e->buf, k);
        for (int i = 0; i < e->buf->shape.rank; i++) touch_expr(e->idx[i], k);
    }
    if (e->kind == KL_E_STRING && e->buf) touch(e->buf, k);
    touch_expr(e->a, k);
    touch_expr(e->b, k);
    touch_expr(e->c, k);
}

static void liveness(kl_program *p) {
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *b = p->buffers.items[i];
        b->first_kernel = b->last_kernel = -1;
    }
    for (int k = 0; k < p->kernels.n; k++) {
        const kl_kernel *kn = p->kernels.items[k];
        touch(kn->out, k);
        for (const kl_kernel_guard *g = kn->guard; g; g = g->outer) touch(g->cond, k);
        for (int i = 0; i < kn->out->shape.rank; i++) touch_expr(kn->out_idx[i], k);
        touch_expr(kn->init, k);
        touch_expr(kn->value, k);
        touch_expr(kn->result, k);
        for (int l = 0; l < kn->n_loops; l++) touch_expr(kn->extent_expr[l], k);
    }
    if (p->dims) { /* the entries write it before the first kernel */
        p->dims->first_kernel = 0;
        p->dims->last_kernel = p->kernels.n > 0 ? p->kernels.n - 1 : 0;
    }
    if (p->strings && p->strings->first_kernel >= 0) /* outputs point into it: to the end */
        p->strings->last_kernel = p->kernels.n - 1;
    for (int i = 0; i < p->outputs.n; i++) { /* predict_dynamic reads it after the last kernel */
        kl_buffer *count = kl_buffer_root(p->outputs.items[i])->dd_count;
        if (count) count->last_kernel = p->kernels.n > 0 ? p->kernels.n - 1 : 0;
    }
    for (int i = 0; i < p->traps.n; i++) /* tested after the last kernel */
        for (const kl_kernel_guard *g = ((const kl_trap *)p->traps.items[i])->guard; g; g = g->outer)
            touch(g->cond, p->kernels.n > 0 ? p->kernels.n - 1 : 0);
}

static int64_t aligned(int64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int by_size_desc(const void *x, const void *y) {
    const kl_buffer *a = *(kl_buffer *const *)x, *b = *(kl_buffer *const *)y;
    int64_t sa = kl_buffer_bytes(a), sb = kl_buffer_bytes(b);
    if (sa != sb) return sa > sb ? -1 : 1;
    return a->first_kernel - b->first_kernel; /* deterministic */
}

static bool lifetimes_overlap(const kl_buffer *a, const kl_buffer *b) {
    return a->first_kernel <= b->last_kernel && b->first_kernel <= a->last_kernel;
}

/* Lowest offset for `b` clear of every placed buffer alive at the same time. */
static int64_t lowest_fit(kl_buffer *b, kl_buffer **placed, int n_placed) {
    int64_t size = aligned(kl_buffer_bytes(b)), offset = 0;
    bool moved = true;
    while (moved) {
        moved = false;
        for (int i = 0; i < n_placed; i++) {
            kl_buffer *o = placed[i];
            if (!lifetimes_overlap(b, o)) continue;
            int64_t o_end = o->offset + aligned(kl_buffer_bytes(o));
            if (offset < o_end && o->offset < offset + size) {
                offset = o_end;
                moved = true;
            }
        }
    }
    return offset;
}

/* Every buffer the program passes to predict or plans is within KL_MAX_BYTES (the passes
 * after shape inference make padded and packed buffers of their own: checked here, once). */
static bool check_buffer_sizes(kl_program *p, kl_diag *d) {
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *b = p->buffers.items[i];
        int64_t bytes;
        if (!kl_shape_bytes_checked(&b->shape, b->dtype, &bytes))
            return kl_check_tensor_size(p->arena, &b->shape, b->dtype, NULL,
                                        kl_sprintf(p->arena, "buffer '%s'", b->name), d);
    }
    return true;
}

bool kl_plan_memory(kl_program *p, kl_diag *d) {
    if (!check_buffer_sizes(p, d)) return false;
    liveness(p);
    kl_buffer **ws = kl_alloc_array(p->arena, (size_t)p->buffers.n + 1, sizeof *ws);
    int n = 0;
    int64_t total = 0;
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *b = p->buffers.items[i];
        if (b->kind != KL_BUF_WORKSPACE || b->view_of || b->first_kernel < 0) continue;
        ws[n++] = b;
        total = kl_add_checked(total, aligned(kl_buffer_bytes(b)), &total) ? total : INT64_MAX;
    }
    p->intermediates_total = total;
    qsort(ws, (size_t)n, sizeof *ws, by_size_desc);
    /* no offset exceeds the sum of the sizes placed before it, so below KL_MAX_BYTES of total
       nothing can overflow; above it the plan may still fit, so it is made and then judged */
    p->workspace_size = 0;
    for (int i = 0; i < n && p->workspace_size <= KL_MAX_BYTES; i++) {
        ws[i]->offset = lowest_fit(ws[i], ws, i);
        int64_t end = ws[i]->offset + aligned(kl_buffer_bytes(ws[i]));
        if (end > p->workspace_size) p->workspace_size = end;
    }
    if (p->workspace_size > KL_MAX_BYTES)
        return kl_error(d, NULL, "the workspace would need more than %lld bytes, the most kiln "
                        "plans (its intermediates add up to %lld bytes)",
                        (long long)KL_MAX_BYTES, (long long)total);
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *b = p->buffers.items[i];
        if (b->view_of) b->offset = b->view_of->offset;
    }
    return true;
}
