/*
 * pack.c — constant operands laid out at compile time in the order a kernel reads them.
 *
 * A blocked kernel (tile.c) runs its outer parallel loops, then its reduction loops, then the
 * block loops innermost (the back end jams the block into the reduction). A constant that is
 * read through an affine index, such as a convolution's weights W[m, c, kh, kw], is copied into
 * a new constant P whose dimensions are the loops the index depends on, in that order
 * (P[m_outer, kh, kw, c, m_inner]), and the load becomes P[i_l...]. The innermost loops then
 * walk P contiguously, the VECTOR loop's lanes are adjacent, and successive reduction steps
 * read successive vectors: the packing an AOT compiler can pay once, when the model compiles.
 *
 * A packing is skipped when the constant is already in that order, or when the loops would
 * read each element many times over (a broadcast: the copy would be larger than the original
 * by more than PACK_MAX_GROWTH). Kernels that read the same constant in the same order (the
 * regions and remainders of one contraction) share one packed copy.
 *
 * Memory: a model's weights should be held about once while it compiles, so a source that no
 * kernel reads any more once its packed copy exists is given back to the arena at once
 * (kl_pack_release_sources), rather than at the end: packing a 1 GB model then peaks at 1 GB
 * plus one layer, not 2 GB.
 */
#include <string.h>

#include "kl.h"

enum { PACK_MAX_GROWTH = 2 };

typedef struct packed {
    kl_buffer *src;      /* the original constant (root) */
    kl_buffer *buf;      /* its packed copy */
    /* buf[j...] = src[base + sum of stride[d] * j_d] where that is inside src */
    int64_t stride[KL_MAX_RANK], base;
    bool reusable;       /* read from src itself, with positive strides */
    int64_t work;        /* iterations of the kernel it was made for */
} packed;

/* The loops of k in the order the back end nests them: outer parallel, reduction, block. */
static int codegen_order(const kl_kernel *k, int *order) {
    int n = 0, first_block = k->n_par - k->n_block;
    for (int l = 0; l < first_block; l++) order[n++] = l;
    for (int l = k->n_par; l < k->n_loops; l++) order[n++] = l;
    for (int l = first_block; l < k->n_par; l++) order[n++] = l;
    return n;
}

static void collect_const_loads(const kl_expr *e, kl_ptrvec *v, kl_arena *a, bool in_index) {
    if (!e) return;
    if (e->kind == KL_E_LOAD) {
        bool seen = false;
        for (int i = 0; i < v->n && !seen; i++) seen = v->items[i] == e;
        if (!seen && !in_index && kl_buffer_root(e->buf)->kind == KL_BUF_CONST &&
            kl_buffer_root(e->buf)->data)
            kl_ptrvec_push(a, v, (void *)e);
        for (int d = 0; d < e->buf->shape.rank; d++) collect_const_loads(e->idx[d], v, a, true);
    }
    collect_const_loads(e->a, v, a, in_index);
    collect_const_loads(e->b, v, a, in_index);
    collect_const_loads(e->c, v, a, in_index);
}

/* Whether the offset already walks the buffer row-major over `dims` (no copy needed). */
static bool already_packed(const kl_affine *off, const kl_kernel *k, const int *dims, int n) {
    if (off->c != 0) return false;
    int64_t stride = 1;
    for (int i = n - 1; i >= 0; i--) {
        if (off->coef[dims[i]] != stride) return false;
        stride *= k->extent[dims[i]];
    }
    return true;
}

/* P[i...] = src[offset(i...)] over the loops `dims`, row-major; 0 outside the source. */
static void *pack_data(kl_arena *a, const kl_buffer *src, const kl_affine *off,
                       const kl_kernel *k, const int *dims, int n, int64_t count) {
    size_t es = kl_dtype_size(src->dtype);
    int64_t numel = kl_shape_numel(&src->shape);
    unsigned char *dst = kl_alloc(a, (size_t)count * es);
    const unsigned char *from = kl_buffer_root((kl_buffer *)src)->data;
    int64_t iv[KL_MAX_LOOPS] = {0};
    for (int64_t i = 0; i < count; i++) {
        int64_t o = off->c;
        for (int j = 0; j < n; j++) o += off->coef[dims[j]] * iv[j];
        if (o >= 0 && o < numel) memcpy(dst + (size_t)i * es, from + (size_t)o * es, es);
        for (int j = n - 1; j >= 0; j--) {
            if (++iv[j] < k->extent[dims[j]]) break;
            iv[j] = 0;
        }
    }
    return dst;
}

/* An existing packed copy of src with the same contents, or NULL. */
static kl_buffer *find_packed(kl_ptrvec *packs, const kl_buffer *src, const kl_shape *s,
                              const void *data) {
    for (int i = 0; i < packs->n; i++) {
        packed *p = packs->items[i];
        if (p->src != src || !kl_shape_equal(&p->buf->shape, s)) continue;
        if (memcmp(p->buf->data, data, (size_t)kl_buffer_bytes(p->buf)) == 0) return p->buf;
    }
    return NULL;
}

/* ---------------------------------------------------------------- reading an existing copy */

static int vector_loop(const kl_kernel *k) {
    for (int l = 0; l < k->n_par; l++)
        if (k->kind[l] == KL_LOOP_VECTOR) return l;
    return -1;
}

/* The indices into r->buf that read, at every iteration of k, the element of src at offset
 * `off`; false when r's layout cannot give them with in-range indices and with k's VECTOR loop
 * walking r's innermost dim contiguously. Each loop's coefficient is carried by the dim of
 * the largest stride dividing it, so that the remainder kernels of a contraction (blocked
 * differently from its main kernel, e.g. 2x16 channels instead of 16 channels x 2 pixels) read
 * the main kernel's copy instead of a second copy of the whole weight. */
static bool express_in(kl_arena *a, const packed *r, const kl_affine *off, const kl_kernel *k,
                       kl_expr ***idx_out) {
    const kl_shape *ps = &r->buf->shape;
    kl_affine part[KL_MAX_RANK];
    memset(part, 0, sizeof part);
    for (int l = 0; l < k->n_loops; l++) {
        if (off->coef[l] == 0) continue;
        int best = -1;
        for (int d = 0; d < ps->rank; d++)
            if (off->coef[l] % r->stride[d] == 0 && off->coef[l] / r->stride[d] > 0 &&
                (best < 0 || r->stride[d] > r->stride[best]))
                best = d;
        if (best < 0) return false;
        part[best].coef[l] = off->coef[l] / r->stride[best];
    }
    int64_t rest = off->c - r->base;
    if (rest < 0) return false;
    for (int pass = 0; pass < ps->rank; pass++) { /* the constant: largest strides first */
        int d = -1;
        for (int e = 0; e < ps->rank; e++)
            if (!part[e].c && (d < 0 || r->stride[e] > r->stride[d]) && r->stride[e] <= rest &&
                rest / r->stride[e] > 0)
                d = e;
        if (d < 0) break;
        part[d].c = rest / r->stride[d];
        rest -= part[d].c * r->stride[d];
    }
    if (rest != 0) return false;
    for (int d = 0; d < ps->rank; d++) {
        int64_t lo, hi;
        kl_affine_range(&part[d], k->extent, k->n_loops, &lo, &hi);
        if (lo < 0 || hi >= ps->dim[d]) return false;
    }
    int v = vector_loop(k);
    if (v >= 0 && off->coef[v] != 0 && part[ps->rank - 1].coef[v] != 1) return false;
    kl_expr **idx = kl_alloc_array(a, (size_t)ps->rank, sizeof *idx);
    for (int d = 0; d < ps->rank; d++) {
        kl_expr *e = kl_e_idx(a, part[d].c);
        for (int l = 0; l < k->n_loops; l++)
            if (part[d].coef[l]) e = kl_e_add(a, e, kl_e_mulc(a, kl_e_iv(a, l), part[d].coef[l]));
        idx[d] = e;
    }
    *idx_out = idx;
    return true;
}

/* A copy of src made for a kernel at least as heavy as k, read through new indices: a
 * remainder kernel never costs a second copy, nor imposes its layout on the main kernel. */
static bool reuse_packed(kl_arena *a, kl_ptrvec *packs, kl_kernel *k, kl_expr *ld,
                         const kl_affine *off) {
    kl_buffer *src = kl_buffer_root(ld->buf);
    if (ld->buf != src) return false;
    int64_t work = kl_kernel_iterations(k);
    for (int i = 0; i < packs->n; i++) {
        packed *r = packs->items[i];
        kl_expr **idx;
        if (r->src != src || !r->reusable || r->work < work) continue;
        if (!express_in(a, r, off, k, &idx)) continue;
        ld->buf = r->buf;
        ld->idx = idx;
        return true;
    }
    return false;
}

static void pack_load(kl_program *p, kl_kernel *k, kl_expr *ld, kl_ptrvec *packs) {
    kl_arena *a = p->arena;
    kl_affine off;
    if (!kl_affine_offset(ld->buf, ld->idx, &off)) return;
    int order[KL_MAX_LOOPS], dims[KL_MAX_LOOPS], n = 0;
    int n_order = codegen_order(k, order);
    int64_t count = 1;
    bool fits = true;
    for (int i = 0; i < n_order && n < KL_MAX_LOOPS; i++) {
        if (off.coef[order[i]] == 0) continue;
        dims[n++] = order[i];
        fits = fits && kl_mul_checked(count, k->extent[order[i]], &count);
    }
    kl_buffer *src = kl_buffer_root(ld->buf);
    /* the copy's size comes from loop extents, which a broadcast can make far larger than the
       constant: a copy that overflows, or outgrows the original, is not made */
    if (!fits || n == 0 || n > KL_MAX_RANK || already_packed(&off, k, dims, n) ||
        count > PACK_MAX_GROWTH * kl_shape_numel(&src->shape) + 64 ||
        count * (int64_t)kl_dtype_size(src->dtype) > KL_MAX_BUILT_BYTES)
        return;
    if (reuse_packed(a, packs, k, ld, &off)) return;
    kl_shape ps = {.rank = n};
    for (int i = 0; i < n; i++) ps.dim[i] = k->extent[dims[i]];
    void *data = pack_data(a, ld->buf, &off, k, dims, n, count);
    kl_buffer *pb = find_packed(packs, src, &ps, data);
    if (pb) kl_arena_release(a, data); /* the same copy exists: this one was only compared */
    if (!pb) {
        pb = kl_program_buffer(p, kl_sprintf(a, "%s_packed%d", src->name, packs->n), KL_BUF_CONST,
                               src->dtype, &ps);
        pb->data = data;
        pb->host = data; /* readable by the interpreter */
        packed *rec = kl_alloc(a, sizeof *rec);
        *rec = (packed){.src = src, .buf = pb, .base = off.c, .work = kl_kernel_iterations(k),
                        .reusable = ld->buf == src};
        for (int i = 0; i < n; i++) {
            rec->stride[i] = off.coef[dims[i]];
            rec->reusable = rec->reusable && rec->stride[i] > 0;
        }
        kl_ptrvec_push(a, packs, rec);
    }
    kl_expr **idx = kl_alloc_array(a, (size_t)n, sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = kl_e_iv(a, dims[i]);
    ld->buf = pb;
    ld->idx = idx;
}

void kl_pack_constants(kl_program *p, kl_kernel *k, kl_ptrvec *packs) {
    kl_expr *none[KL_MAX_LOOPS] = {0};
    kl_kernel_subst(p->arena, k, none); /* the loads rewritten below are this kernel's own */
    kl_ptrvec loads = {0};
    collect_const_loads(k->init, &loads, p->arena, false);
    collect_const_loads(k->value, &loads, p->arena, false);
    collect_const_loads(k->result, &loads, p->arena, false);
    for (int i = 0; i < loads.n; i++) pack_load(p, k, loads.items[i], packs);
}

/* ---------------------------------------------------------------- giving sources back */

/* Whether any of the kernels reads root's bytes, or writes them. */
static bool any_touches(kl_kernel *const *ks, int n, const kl_buffer *root) {
    for (int i = 0; i < n; i++)
        if (kl_buffer_root(ks[i]->out) == root || kl_kernel_reads(ks[i], root)) return true;
    return false;
}

void kl_pack_release_sources(kl_program *p, kl_ptrvec *packs, const kl_ptrvec *done,
                             int next_pending) {
    for (int i = 0; i < packs->n; i++) {
        kl_buffer *src = ((packed *)packs->items[i])->src;
        size_t size = kl_arena_block_size(p->arena, src->data);
        if (!size || any_touches((kl_kernel *const *)done->items, done->n, src) ||
            any_touches((kl_kernel *const *)p->kernels.items + next_pending,
                      p->kernels.n - next_pending, src))
            continue;
        const unsigned char *lo = src->data, *hi = lo + size;
        for (int b = 0; b < p->buffers.n; b++) { /* src, its views, what aliases its bytes */
            kl_buffer *buf = p->buffers.items[b];
            if ((const unsigned char *)buf->data >= lo && (const unsigned char *)buf->data < hi)
                buf->data = buf->host = NULL;
        }
        kl_arena_release(p->arena, lo);
    }
}
