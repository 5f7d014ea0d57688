/*
 * tasks.c — the tasks pass: which loop of a kernel threads may split (kpass_tasks).
 *
 * The parallel entry (kiln.h: NAME_predict_parallel) hands a kernel to the caller's
 * parallel-for as independent slices of one parallel loop, its task loop. A slice must be a
 * whole number of iterations of an outer loop (never inside the register block), big enough to
 * pay for waking a thread: kernels with little work keep running on the calling thread. Of the
 * loops with enough iterations to feed a few tasks per thread, the one that steps furthest
 * through the output is chosen (an image's rows, not its channel blocks), so each task writes a
 * contiguous range of the output, and consecutive kernels, split alike, leave each thread's
 * share of an activation in its own cache for the next (the thread pool gives a thread the
 * same share of every kernel): mobilenet_v2's depthwise convolutions, split by channel blocks
 * after a 1x1 convolution split by rows, ran slower on 2 threads than on one. Where the weights
 * are large (more than a quarter of the L2 cache), the loop over blocks of output channels is
 * preferred even with only a few iterations: each thread then streams its share of the weights
 * through its own cache instead of every thread streaming all of them.
 */
#include "kl.h"

enum {
    MIN_TASK_WORK = 1 << 15,  /* loop iterations (all loops) below which threads do not pay */
    MIN_TASK_EXTENT = 8,      /* a loop with this many iterations feeds 2 threads x 4 tasks */
};

static int64_t work(const kl_kernel *k) {
    int64_t w = 1;
    for (int l = 0; l < k->n_loops; l++) /* a whole nest's trip count may pass int64 */
        w = kl_mul_saturate(w, k->extent[l] > 0 ? k->extent[l] : 0);
    return w;
}

static bool reads_constants_along(const kl_expr *e, int l) {
    if (!e) return false;
    if (e->kind == KL_E_LOAD && kl_buffer_root(e->buf)->kind == KL_BUF_CONST &&
        kl_buffer_bytes(e->buf) > 0) {
        kl_affine off;
        if (kl_affine_offset(e->buf, e->idx, &off) && off.coef[l] != 0) return true;
    }
    return reads_constants_along(e->a, l) || reads_constants_along(e->b, l) ||
           reads_constants_along(e->c, l);
}

static int64_t constant_bytes(const kl_expr *e) {
    if (!e) return 0;
    int64_t n = e->kind == KL_E_LOAD && kl_buffer_root(e->buf)->kind == KL_BUF_CONST
                    ? kl_buffer_bytes(e->buf) : 0;
    return n + constant_bytes(e->a) + constant_bytes(e->b) + constant_bytes(e->c);
}

/* How far apart in the output two neighbouring iterations of loop l write; 0 when unknown. */
static int64_t output_stride(const kl_kernel *k, int l) {
    kl_affine off;
    if (!k->out || !k->out_idx || !kl_affine_offset(k->out, k->out_idx, &off)) return 0;
    return off.coef[l] < 0 ? -off.coef[l] : off.coef[l];
}

static int task_loop(const kl_kernel *k, const kl_target *t) {
    int outer = k->n_par - k->n_block, widest = -1, coarsest = -1;
    if (outer > 0 && k->extent[0] >= 2 && constant_bytes(k->value) > t->l2_bytes / 4 &&
        reads_constants_along(k->value, 0))
        return 0;
    for (int l = 0; l < outer; l++) {
        if (k->extent[l] >= MIN_TASK_EXTENT &&
            (coarsest < 0 || output_stride(k, l) > output_stride(k, coarsest)))
            coarsest = l;
        if (k->extent[l] >= 2 && (widest < 0 || k->extent[l] > k->extent[widest])) widest = l;
    }
    return coarsest >= 0 ? coarsest : widest;
}

bool kpass_tasks(kl_program *p, const kl_kernel_opts *o, kl_diag *d) {
    (void)d;
    for (int i = 0; i < p->kernels.n; i++) {
        kl_kernel *k = p->kernels.items[i];
        /* a GPU target's kernels are spread over the grid by its back end instead */
        bool threads = o->target->hosted && o->target->backend == KL_BACKEND_LLVM;
        /* (a bounded dim's kernels run alone: their extents are known only at run time) */
        bool split = threads && work(k) >= MIN_TASK_WORK && !kl_kernel_bounded(p, k) &&
                     /* builders share the string arena's cursor: one thread */
                     !kl_kernel_uses_string_arena(p, k);
        k->task_loop = split ? task_loop(k, o->target) : -1;
    }
    return true;
}
