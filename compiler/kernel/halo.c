/*
 * halo.c — the halo pass: padded buffers instead of bounds tests (kpass_halo).
 *
 * A convolution or pool with padding reads its input through a test,
 * select(0 <= ih < H && 0 <= iw < W, X[n, ih, iw, c], 0), which the tile pass can only move to
 * the borders (regions of their own, still tested per element). When X is an intermediate, it
 * is cheaper never to test: X is laid out with a halo of the padding's width on each side,
 * the halo holds the value the tests would give (0 for a convolution, -inf for a max pool), its
 * producers write the interior, and every reader indexes past the halo without a test. Each
 * inference fills the halo first (a few small kernels over its slabs: workspace contents are
 * undefined on entry), which costs the perimeter, not the area.
 *
 * A buffer gets a halo when it is a workspace intermediate without views, every read that
 * leaves its bounds is guarded by exactly those bounds tests with one and the same fill value,
 * and no read of it is data-dependent (a gather). A graph input is the caller's memory: when a
 * heavy kernel (a network's first convolution) reads it past its bounds, a padded copy is made
 * first and read instead, which costs one pass over the input and saves the border regions.
 */
#include <string.h>

#include "kl.h"

typedef struct halo {
    kl_buffer *buf;          /* the original buffer (root) */
    int64_t lo[KL_MAX_RANK], hi[KL_MAX_RANK]; /* padding per dim */
    bool padded;             /* some dim needs padding */
    bool ok;                 /* every read qualifies */
    bool has_fill;
    double fill;
    bool copy;               /* a graph input: read through a padded copy made first */
    int64_t heaviest;        /* most reduction steps of a kernel reading past the bounds */
    kl_buffer *wide;         /* the padded buffer */
} halo;

/* ---------------------------------------------------------------- reading the reads */

/* Whether comparison c bounds index expression x of extent n from below (x >= 0) or above
 * (x < n): the form kl_e_in_range builds, compared as affine forms. */
static bool bounds_test_of(const kl_expr *c, const kl_affine *x, int64_t n, bool *lower) {
    if (c->kind != KL_E_BINARY || (c->op != KL_GE && c->op != KL_LT)) return false;
    kl_affine a, b;
    if (!kl_affine_of(c->a, &a) || !kl_affine_of(c->b, &b)) return false;
    for (int l = 0; l < KL_MAX_LOOPS; l++)
        if (b.coef[l] != 0 || a.coef[l] != x->coef[l]) return false;
    int64_t bound = b.c - (a.c - x->c); /* the test compares x with `bound` */
    if (c->op == KL_GE && bound == 0) {
        *lower = true;
        return true;
    }
    if (c->op == KL_LT && bound == n) {
        *lower = false;
        return true;
    }
    return false;
}

/* Which bounds of index x (of extent n) the condition (an and-tree) tests: bit 0 lower,
 * bit 1 upper. */
static int tested_bounds(const kl_expr *cond, const kl_affine *x, int64_t n) {
    if (!cond) return 0;
    if (cond->kind == KL_E_BINARY && cond->op == KL_AND)
        return tested_bounds(cond->a, x, n) | tested_bounds(cond->b, x, n);
    bool lower;
    if (!bounds_test_of(cond, x, n, &lower)) return 0;
    return lower ? 1 : 2;
}

static bool const_value(const kl_expr *e, double *v) {
    if (e->kind != KL_E_CONST) return false;
    *v = kl_dtype_is_float(e->dtype) ? e->f : (double)e->i;
    return true;
}

/* One read of h->buf: how far it leaves the bounds, and whether its guard covers that. */
static void note_read(halo *h, const kl_kernel *k, const kl_expr *load, const kl_expr *cond,
                      const kl_expr *other) {
    const kl_shape *s = &load->buf->shape;
    bool out = false;
    for (int d = 0; d < s->rank; d++) {
        kl_affine x;
        if (!kl_affine_of(load->idx[d], &x)) {
            h->ok = false;
            return;
        }
        int64_t lo, hi;
        kl_affine_range(&x, k->extent, k->n_loops, &lo, &hi);
        int need = (lo < 0 ? 1 : 0) | (hi > s->dim[d] - 1 ? 2 : 0);
        if (!need) continue;
        /* a halo wider than any buffer could be (huge pads or dilations): keep the guard, and
           keep the padded sizes below from overflowing */
        if (lo < -KL_MAX_BYTES || hi > KL_MAX_BYTES) {
            h->ok = false;
            return;
        }
        if ((tested_bounds(cond, &x, s->dim[d]) & need) != need) {
            h->ok = false;
            return;
        }
        out = true;
        if (-lo > h->lo[d]) h->lo[d] = -lo;
        if (hi - (s->dim[d] - 1) > h->hi[d]) h->hi[d] = hi - (s->dim[d] - 1);
    }
    if (!out) return;
    int64_t steps = 1;
    for (int l = k->n_par; l < k->n_loops; l++) steps = kl_mul_saturate(steps, k->extent[l]);
    if (steps > h->heaviest) h->heaviest = steps;
    double v;
    if (!other || !const_value(other, &v) || (h->has_fill && v != h->fill)) {
        h->ok = false;
        return;
    }
    h->has_fill = true;
    h->fill = v;
    h->padded = true;
}

/* Walk e noting every read of h->buf; `cond`/`other`: the enclosing select's test and the
 * value it gives otherwise, when e is that select's chosen arm. */
static void scan(halo *h, const kl_kernel *k, const kl_expr *e, bool in_index) {
    if (!e || !h->ok) return;
    if (e->kind == KL_E_SELECT && e->b && e->b->kind == KL_E_LOAD &&
        kl_buffer_root(e->b->buf) == h->buf) {
        scan(h, k, e->a, in_index);
        if (in_index) h->ok = false;
        else note_read(h, k, e->b, e->a, e->c);
        for (int d = 0; d < e->b->buf->shape.rank; d++) scan(h, k, e->b->idx[d], true);
        scan(h, k, e->c, in_index);
        return;
    }
    if (e->kind == KL_E_LOAD) {
        if (kl_buffer_root(e->buf) == h->buf) {
            if (in_index || e->buf != h->buf) h->ok = false;
            else note_read(h, k, e, NULL, NULL);
        }
        for (int d = 0; d < e->buf->shape.rank; d++) scan(h, k, e->idx[d], true);
    }
    scan(h, k, e->a, in_index);
    scan(h, k, e->b, in_index);
    scan(h, k, e->c, in_index);
}

static bool has_views(const kl_program *p, const kl_buffer *b) {
    for (int i = 0; i < p->buffers.n; i++)
        if (((kl_buffer *)p->buffers.items[i])->view_of == b) return true;
    return false;
}

/* A graph input is the caller's memory: it gets a padded copy when a kernel that tests its
 * bounds does enough work per output (a first convolution's taps) to repay the copy. */
enum { MIN_STEPS_FOR_COPY = 27 };

static void survey(const kl_program *p, halo *h) {
    h->copy = h->buf->kind == KL_BUF_INPUT;
    h->ok = (h->buf->kind == KL_BUF_WORKSPACE || h->copy) && !h->buf->view_of &&
            !has_views(p, h->buf) && h->buf->shape.rank >= 2 && kl_dtype_is_float(h->buf->dtype);
    for (int i = 0; h->ok && i < p->kernels.n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        if (kl_buffer_root(k->out) == h->buf && k->out != h->buf) h->ok = false;
        for (int d = 0; d < k->out->shape.rank; d++) scan(h, k, k->out_idx[d], true);
        scan(h, k, k->init, false);
        scan(h, k, k->value, false);
        scan(h, k, k->result, false);
    }
}

/* ---------------------------------------------------------------- rewriting */

typedef struct rewrite_ctx {
    const halo *h;
} rewrite_ctx;

/* The and-tree cond without the bounds tests of the padded dims of `wide_load` (a load already
 * moved past the halo: its original index is the new one less the halo). NULL: none left. */
static kl_expr *drop_tests(kl_arena *a, const halo *h, kl_expr *cond, const kl_expr *wide_load) {
    if (!cond) return NULL;
    if (cond->kind == KL_E_BINARY && cond->op == KL_AND)
        return kl_e_and(a, drop_tests(a, h, cond->a, wide_load),
                        drop_tests(a, h, cond->b, wide_load));
    for (int d = 0; d < h->buf->shape.rank; d++) {
        kl_affine x;
        if (!(h->lo[d] || h->hi[d]) || !kl_affine_of(wide_load->idx[d], &x)) continue;
        x.c -= h->lo[d];
        if (tested_bounds(cond, &x, h->buf->shape.dim[d])) return NULL;
    }
    return cond;
}

/* The load moved into the padded buffer (past the halo). */
static kl_expr *widen_load(kl_arena *a, const halo *h, const kl_expr *load) {
    kl_expr *r = kl_alloc(a, sizeof *r);
    *r = *load;
    int rank = load->buf->shape.rank;
    r->buf = h->wide;
    r->idx = kl_alloc_array(a, (size_t)rank, sizeof *r->idx);
    for (int d = 0; d < rank; d++) r->idx[d] = kl_e_addc(a, load->idx[d], h->lo[d]);
    return r;
}

static kl_expr *rewrite_node(void *ctx, kl_arena *a, const kl_expr *e) {
    const halo *h = ((rewrite_ctx *)ctx)->h;
    /* operands come rebuilt: the arm is already the moved load */
    if (e->kind == KL_E_SELECT && e->b->kind == KL_E_LOAD && e->b->buf == h->wide) {
        return kl_e_select(a, drop_tests(a, h, e->a, e->b), e->b, e->c);
    }
    if (e->kind == KL_E_LOAD && e->buf == h->buf) return widen_load(a, h, e);
    return NULL;
}

/* Writes go to the interior of the padded buffer. */
static void widen_writes(kl_program *p, kl_kernel *k, const halo *h) {
    int rank = h->buf->shape.rank;
    kl_expr **idx = kl_alloc_array(p->arena, (size_t)rank, sizeof *idx);
    for (int d = 0; d < rank; d++) idx[d] = kl_e_addc(p->arena, k->out_idx[d], h->lo[d]);
    k->out = h->wide;
    k->out_idx = idx;
}

/* A kernel writing `fill` over the slab of the padded buffer where dim d is in
 * [begin, begin + size). */
static kl_kernel *fill_slab(kl_program *p, const halo *h, int d, int64_t begin, int64_t size) {
    kl_arena *a = p->arena;
    kl_kernel *k = kl_kernel_new(p, NULL, kl_sprintf(a, "halo_%s", h->buf->name));
    const kl_shape *s = &h->wide->shape;
    k->n_loops = k->n_par = s->rank;
    k->out = h->wide;
    k->out_idx = kl_alloc_array(a, (size_t)s->rank, sizeof *k->out_idx);
    for (int i = 0; i < s->rank; i++) {
        k->extent[i] = i == d ? size : s->dim[i];
        k->out_idx[i] = i == d ? kl_e_addc(a, kl_e_iv(a, i), begin) : kl_e_iv(a, i);
    }
    k->value = kl_e_const_f(a, h->buf->dtype, h->fill);
    return k;
}

/* wide[interior] = buf: the padded copy of a graph input. */
static kl_kernel *copy_into_interior(kl_program *p, const halo *h) {
    kl_arena *a = p->arena;
    const kl_shape *s = &h->buf->shape;
    kl_kernel *k = kl_kernel_new(p, NULL, kl_sprintf(a, "pad_%s", h->buf->name));
    k->n_loops = k->n_par = s->rank;
    k->out = h->wide;
    k->out_idx = kl_alloc_array(a, (size_t)s->rank, sizeof *k->out_idx);
    kl_expr **idx = kl_alloc_array(a, (size_t)s->rank, sizeof *idx);
    for (int i = 0; i < s->rank; i++) {
        k->extent[i] = s->dim[i];
        idx[i] = kl_e_iv(a, i);
        k->out_idx[i] = kl_e_addc(a, kl_e_iv(a, i), h->lo[i]);
    }
    k->value = kl_e_load(a, h->buf, idx);
    return k;
}

static void fill_halo(kl_program *p, const halo *h, kl_ptrvec *out) {
    const kl_shape *ws = &h->wide->shape;
    for (int d = 0; d < ws->rank; d++) {
        if (h->lo[d]) kl_ptrvec_push(p->arena, out, fill_slab(p, h, d, 0, h->lo[d]));
        if (h->hi[d])
            kl_ptrvec_push(p->arena, out, fill_slab(p, h, d, ws->dim[d] - h->hi[d], h->hi[d]));
    }
}

/* The padded copy must be a buffer kiln can hold; when it is not, the reads keep their guards
 * (the halo is only an optimization, it must never make a model fail to compile). */
static bool fits(const halo *h) {
    kl_shape ws = h->buf->shape;
    int64_t bytes;
    for (int d = 0; d < ws.rank; d++) ws.dim[d] += h->lo[d] + h->hi[d]; /* each < 2^41 */
    return kl_shape_bytes_checked(&ws, h->buf->dtype, &bytes);
}

static void apply(kl_program *p, halo *h) {
    kl_arena *a = p->arena;
    kl_shape ws = h->buf->shape;
    for (int d = 0; d < ws.rank; d++) ws.dim[d] += h->lo[d] + h->hi[d];
    h->wide = kl_program_buffer(p, kl_sprintf(a, "%s_halo", h->buf->name), KL_BUF_WORKSPACE,
                                h->buf->dtype, &ws);
    rewrite_ctx ctx = {h};
    kl_expr *none[KL_MAX_LOOPS] = {0};
    kl_ptrvec out = {0};
    if (h->copy) {
        fill_halo(p, h, &out);
        kl_ptrvec_push(a, &out, copy_into_interior(p, h));
    }
    bool filled = h->copy;
    for (int i = 0; i < p->kernels.n; i++) {
        kl_kernel *k = p->kernels.items[i];
        if (k->out == h->buf && !filled) {
            int first = out.n;
            fill_halo(p, h, &out);
            for (int f = first; f < out.n; f++) /* filled when (if) the producer runs */
                ((kl_kernel *)out.items[f])->guard = k->guard;
            filled = true;
        }
        kl_kernel_rewrite(a, k, none, rewrite_node, &ctx);
        kl_kernel_simplify(a, k);
        if (k->out == h->buf) widen_writes(p, k, h);
        kl_ptrvec_push(a, &out, k);
    }
    p->kernels = out;
}

bool kpass_halo(kl_program *p, const kl_kernel_opts *o, kl_diag *d) {
    (void)o;
    (void)d;
    if (p->dims) return true; /* the borders move with a bounded dim */
    int n_buffers = p->buffers.n; /* buffers made here are not candidates */
    for (int i = 0; i < n_buffers; i++) {
        halo h = {.buf = p->buffers.items[i]};
        survey(p, &h);
        if (h.ok && h.padded && (!h.copy || h.heaviest >= MIN_STEPS_FOR_COPY) && fits(&h))
            apply(p, &h);
    }
    return true;
}
