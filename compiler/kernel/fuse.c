/*
 * fuse.c — the fuse pass: fewer passes over memory (kpass_fuse).
 *
 * Lowering gives every operator its own kernel, so a convolution followed by a bias, a batch
 * norm's leftover scale, a Relu, a Clip, a residual Add or a HardSwish walks its output once per
 * operator. Two rewrites merge them, each exact (the same expression is computed, only where it
 * is computed changes):
 *
 *   Inlining (producer into consumer). An elementwise kernel P (no reduction) that writes Y
 *   element by element is substituted for every load of Y: the consumer computes P's value
 *   itself, at the index it loads. P is inlined only into consumers without a reduction (an
 *   elementwise chain collapses into one kernel) unless P is a pure copy (a transpose, a slice,
 *   a padding copy), which costs nothing to recompute and may be read anywhere. P disappears
 *   once no load of Y is left.
 *
 *   Epilogues (consumer into producer). An elementwise consumer C of Y, the only reader of Y,
 *   that walks Y element by element (reading each where it stands), becomes the producer's
 *   result: P computes C's value from its own result while the block is still in registers and
 *   writes it where C did; C disappears. C's other operands (a bias, the residual of an Add)
 *   are read at P's output index. C may write anywhere: a Concat's copy of Y into a slice of
 *   its output becomes the producer writing that slice directly. When several kernels write Y
 *   between them (ConvTranspose's phases, the inputs of a Concat), each of them takes C, unless
 *   C calls the runtime (see try_epilogue).
 *
 * Both keep the order of effects: the kernels between producer and consumer must not write
 * what the moved computation reads, nor touch what it writes. Neither moves work across an
 * If's guard (kl_kernel_guard): an inlined producer is unguarded or has its consumer's guard,
 * an epilogue's consumer has its producer's, and a buffer a guard tests stays a buffer. Graph outputs and buffers read
 * through another shape (a view) stay as they are.
 */
#include <string.h>

#include "kl.h"

enum { MAX_INLINE_USES = 4 };

/* ---------------------------------------------------------------- who reads what */


static kl_buffer *written(const kl_kernel *k) { return kl_buffer_root(k->out); }

/* Every root buffer e reads, appended to v (no duplicates). */
static void roots_read(const kl_expr *e, kl_ptrvec *v, kl_arena *a) {
    if (!e) return;
    if (e->kind == KL_E_LOAD) {
        kl_buffer *r = kl_buffer_root(e->buf);
        bool seen = false;
        for (int i = 0; i < v->n && !seen; i++) seen = v->items[i] == r;
        if (!seen) kl_ptrvec_push(a, v, r);
        for (int d = 0; d < e->buf->shape.rank; d++) roots_read(e->idx[d], v, a);
    }
    roots_read(e->a, v, a);
    roots_read(e->b, v, a);
    roots_read(e->c, v, a);
}

static void kernel_roots_read(const kl_kernel *k, kl_ptrvec *v, kl_arena *a) {
    roots_read(k->init, v, a);
    roots_read(k->value, v, a);
    roots_read(k->result, v, a);
    for (int d = 0; d < k->out->shape.rank; d++) roots_read(k->out_idx[d], v, a);
}

/* Whether the kernels strictly between positions i and j leave `reads` unwritten and `out`
 * (may be NULL) untouched. */
static bool quiet_between(const kl_ptrvec *ks, int i, int j, const kl_ptrvec *reads,
                          const kl_buffer *out) {
    for (int x = i + 1; x < j; x++) {
        const kl_kernel *k = ks->items[x];
        kl_buffer *w = written(k);
        for (int r = 0; r < reads->n; r++)
            if (reads->items[r] == w) return false;
        if (out && (w == out || kl_kernel_reads(k, out))) return false;
    }
    return true;
}

/* ---------------------------------------------------------------- shapes of nests */

/* idx[d] is loop d for every dim (or 0 where the dim has one element: broadcasting lowers a
 * size-1 dim to index 0). */
static bool is_identity_index(kl_expr *const *idx, const kl_shape *s) {
    for (int d = 0; d < s->rank; d++) {
        if (!idx[d]) return false;
        if (idx[d]->kind == KL_E_IV && idx[d]->i == d) continue;
        if (s->dim[d] == 1 && idx[d]->kind == KL_E_CONST && idx[d]->i == 0) continue;
        return false;
    }
    return true;
}

/* A kernel with no reduction whose loops are exactly its output's dims, written in order. */
static bool is_elementwise(const kl_kernel *k) {
    if (k->reduce != KL_RED_NONE || k->result || k->n_loops != k->n_par || k->n_block != 0)
        return false;
    const kl_shape *s = &k->out->shape;
    if (k->n_par != s->rank) return false;
    for (int d = 0; d < s->rank; d++)
        if (k->extent[d] != s->dim[d]) return false;
    return is_identity_index(k->out_idx, s);
}

static bool has_load(const kl_expr *e) {
    return e && (e->kind == KL_E_LOAD || has_load(e->a) || has_load(e->b) || has_load(e->c));
}

/* A kernel with no reduction whose loops walk shape s, one loop a dim in order, whatever it
 * writes where (a copy into a slice of a Concat's output writes at an offset). */
static bool walks_shape(const kl_kernel *k, const kl_shape *s) {
    if (k->reduce != KL_RED_NONE || k->result || k->n_loops != k->n_par || k->n_block != 0 ||
        k->n_par != s->rank)
        return false;
    for (int d = 0; d < s->rank; d++)
        if (k->extent[d] != s->dim[d] || has_load(k->out_idx[d])) return false;
    return true;
}

/* A value that only moves data: a load, possibly guarded by a select with a constant. */
static bool is_pure_copy(const kl_expr *v) {
    if (v->kind == KL_E_CAST) v = v->a;
    if (v->kind == KL_E_LOAD) return true;
    return v->kind == KL_E_SELECT &&
           ((v->b->kind == KL_E_LOAD && v->c->kind == KL_E_CONST) ||
            (v->c->kind == KL_E_LOAD && v->b->kind == KL_E_CONST));
}

/* Calls into runtime-min (exp, tanh, ...) make a value too dear to compute twice. */
static bool is_dear(const kl_expr *e) {
    if (!e) return false;
    if (e->kind == KL_E_UNARY && e->op != KL_NEG && e->op != KL_ABS && e->op != KL_NOT &&
        e->op != KL_SQRT && e->op != KL_RECIP)
        return true;
    if (e->kind == KL_E_BINARY && (e->op == KL_POW || e->op == KL_MOD || e->op == KL_FMOD))
        return true;
    return is_dear(e->a) || is_dear(e->b) || is_dear(e->c);
}

/* ---------------------------------------------------------------- counting loads */

typedef struct load_count {
    const kl_buffer *root;
    const kl_shape *shape;  /* loads through another shape do not count as plain */
    int plain, other;       /* loads through `shape`, through any other shape */
} load_count;

static void count_loads(const kl_expr *e, load_count *c, bool *seen_dup) {
    if (!e) return;
    if (e->kind == KL_E_LOAD) {
        if (kl_buffer_root(e->buf) == c->root) {
            if (kl_shape_equal(&e->buf->shape, c->shape)) c->plain++;
            else c->other++;
        }
        for (int d = 0; d < e->buf->shape.rank; d++) count_loads(e->idx[d], c, seen_dup);
    }
    count_loads(e->a, c, seen_dup);
    count_loads(e->b, c, seen_dup);
    count_loads(e->c, c, seen_dup);
}

static void count_kernel_loads(const kl_kernel *k, load_count *c) {
    bool dup = false;
    count_loads(k->init, c, &dup);
    count_loads(k->value, c, &dup);
    count_loads(k->result, c, &dup);
    for (int d = 0; d < k->out->shape.rank; d++) count_loads(k->out_idx[d], c, &dup);
    /* a run-time extent (a count another kernel wrote) must stay a load of that buffer: the
       rewrites below substitute values in the loop body only */
    load_count extents = {c->root, c->shape, 0, 0};
    for (int l = 0; l < k->n_loops; l++) count_loads(k->extent_expr[l], &extents, &dup);
    c->other += extents.plain + extents.other;
}

/* ---------------------------------------------------------------- inlining */

typedef struct inline_ctx {
    const kl_kernel *p;  /* the producer */
    kl_buffer *root;     /* what it writes */
} inline_ctx;

/* A load of the producer's output, replaced by the producer's value at the loaded index. */
static kl_expr *inline_load(void *ctx, kl_arena *a, const kl_expr *load) {
    inline_ctx *c = ctx;
    if (load->kind != KL_E_LOAD || kl_buffer_root(load->buf) != c->root) return NULL;
    kl_expr *map[KL_MAX_LOOPS] = {0};
    for (int d = 0; d < c->p->n_par; d++) map[d] = load->idx[d];
    return kl_expr_subst(a, c->p->value, map);
}

static bool counted_loops(const kl_program *p, const kl_kernel *k);

/* Try to inline kernel i into all its readers; true if it was (and is gone from ks). A kernel
 * whose loops run to a count computed at run time may write only part of its buffer (one
 * branch's value into an If's output of the length the condition picks), and a data-dependent
 * length's count is read by the generated entry: both stay. */
static bool try_inline(kl_program *p, kl_ptrvec *ks, int i) {
    kl_arena *a = p->arena;
    kl_kernel *pk = ks->items[i];
    kl_buffer *y = written(pk);
    if (y->kind != KL_BUF_WORKSPACE || !is_elementwise(pk) || kl_kernel_reads(pk, y) ||
        counted_loops(p, pk) || y->is_count)
        return false;
    bool copy = is_pure_copy(pk->value);
    kl_ptrvec reads = {0};
    kernel_roots_read(pk, &reads, a);
    int uses = 0, last = -1;
    for (int j = i + 1; j < ks->n; j++) {
        kl_kernel *ck = ks->items[j];
        load_count c = {y, &pk->out->shape, 0, 0};
        count_kernel_loads(ck, &c);
        if (written(ck) == y) return false; /* written again: not a plain value */
        if (kl_guard_reads(ck->guard, y)) return false; /* a condition stays a buffer */
        if (c.plain + c.other == 0) continue;
        /* P's work may move under a guard, never out from under one */
        if (pk->guard && ck->guard != pk->guard) return false;
        if (c.other || (!copy && ck->reduce != KL_RED_NONE)) return false;
        if (!quiet_between(ks, i, j, &reads, NULL)) return false;
        uses += c.plain;
        last = j;
    }
    if (last < 0 || (is_dear(pk->value) && uses > 1) || uses > MAX_INLINE_USES) return false;
    inline_ctx c = {pk, y};
    kl_expr *none[KL_MAX_LOOPS] = {0};
    for (int j = i + 1; j <= last; j++) {
        kl_kernel *ck = ks->items[j];
        if (kl_kernel_reads(ck, y)) kl_kernel_rewrite(a, ck, none, inline_load, &c);
    }
    memmove(&ks->items[i], &ks->items[i + 1], (size_t)(ks->n - i - 1) * sizeof *ks->items);
    ks->n--;
    return true;
}

/* ---------------------------------------------------------------- epilogues */

typedef struct epilogue_ctx {
    kl_buffer *root;
    kl_expr *base;       /* the producer's result at its own point */
} epilogue_ctx;

static kl_expr *epilogue_load(void *ctx, kl_arena *a, const kl_expr *load) {
    (void)a;
    epilogue_ctx *c = ctx;
    return load->kind == KL_E_LOAD && kl_buffer_root(load->buf) == c->root ? c->base : NULL;
}

/* Whether every load of root in e reads element [iv_0, ..., iv_{rank-1}]. */
static bool loads_at_own_element(const kl_expr *e, const kl_buffer *root) {
    if (!e) return true;
    if (e->kind == KL_E_LOAD) {
        if (kl_buffer_root(e->buf) == root && !is_identity_index(e->idx, &e->buf->shape))
            return false;
        for (int d = 0; d < e->buf->shape.rank; d++)
            if (!loads_at_own_element(e->idx[d], root)) return false;
    }
    return loads_at_own_element(e->a, root) && loads_at_own_element(e->b, root) &&
           loads_at_own_element(e->c, root);
}

/* The kernels writing what ks[i] writes, if ks[i] is the first of them and together they
 * write as many points as the buffer has (one kernel writing all of it, or the pieces a lowering
 * splits an output into: ConvTranspose's phases, Concat's inputs), into *writers; the position
 * of its only reader, after the last writer, or -1. A point written twice is no harm: the
 * consumer's value of the last write lands last either way. */
static int only_reader(const kl_ptrvec *ks, int i, kl_ptrvec *writers, kl_arena *a) {
    kl_buffer *y = written(ks->items[i]);
    int64_t points = 0;
    int found = -1;
    writers->n = 0;
    for (int j = 0; j < ks->n; j++) {
        const kl_kernel *k = ks->items[j];
        if (written(k) == y) {
            if (j < i || found >= 0) return -1;
            int64_t n = 1;
            for (int l = 0; l < k->n_par; l++) n = kl_mul_saturate(n, k->extent[l]);
            if (!kl_add_checked(points, n, &points)) return -1;
            kl_ptrvec_push(a, writers, (void *)k);
            continue;
        }
        if (!kl_kernel_reads(k, y)) continue;
        if (found >= 0 || j < i) return -1;
        found = j;
    }
    return points == kl_shape_numel(&y->shape) ? found : -1;
}

/* Whether writer pk of y may take consumer ck (at j) as its epilogue: nothing in between
 * writes what ck reads or touches what ck writes. */
static bool epilogue_fits(const kl_ptrvec *ks, int i, int j, kl_arena *a) {
    const kl_kernel *pk = ks->items[i], *ck = ks->items[j];
    kl_buffer *y = written(pk), *z = written(ck);
    if (y->kind != KL_BUF_WORKSPACE || pk->n_block != 0 || kl_kernel_reads(pk, y)) return false;
    if (kl_kernel_reads(pk, z) || z == y) return false;
    kl_ptrvec reads = {0};
    kernel_roots_read(ck, &reads, a);
    for (int r = 0; r < reads.n; r++)
        if (reads.items[r] == y) reads.items[r] = NULL; /* the value itself moves with P */
    return quiet_between(ks, i, j, &reads, z);
}

/* Writer pk computes ck's value from its own result and writes ck's output. */
static void take_epilogue(kl_arena *a, kl_kernel *pk, const kl_kernel *ck) {
    int rank = pk->out->shape.rank;
    kl_expr *base = pk->reduce == KL_RED_NONE ? (pk->result ? pk->result : pk->value)
                                              : (pk->result ? pk->result : kl_e_acc(a, pk->acc_dtype));
    epilogue_ctx ctx = {written(pk), base};
    kl_expr *map[KL_MAX_LOOPS] = {0};
    for (int d = 0; d < rank; d++) map[d] = pk->out_idx[d];
    kl_expr *e = kl_expr_rewrite(a, ck->value, map, epilogue_load, &ctx);
    /* ck's output may have another rank than y (a recurrence writes row s of its state) */
    int out_rank = ck->out->shape.rank;
    kl_expr **idx = kl_alloc_array(a, (size_t)out_rank + 1, sizeof *idx);
    for (int d = 0; d < out_rank; d++) idx[d] = kl_expr_subst(a, ck->out_idx[d], map);
    if (pk->reduce == KL_RED_NONE) {
        pk->value = e;
        pk->result = NULL;
    } else {
        pk->result = e;
    }
    pk->out = ck->out;
    pk->out_idx = idx;
    if (ck->error_code) pk->error_code = ck->error_code;
}

/* Whether a loop of k runs to a count computed at run time (a data-dependent output's
 * kernels, ops/data_dependent.c): its loops are not the producer's, so it stays apart. */
static bool counted_loops(const kl_program *p, const kl_kernel *k) {
    for (int l = 0; l < k->n_loops; l++)
        if (k->extent_expr[l] && !(p->dims && kl_kernel_reads(k, p->dims))) return true;
    return false;
}

static bool try_epilogue(kl_program *p, kl_ptrvec *ks, int i) {
    kl_arena *a = p->arena;
    kl_kernel *pk = ks->items[i];
    kl_buffer *y = written(pk);
    if (y->kind != KL_BUF_WORKSPACE || counted_loops(p, pk) || y->is_count) return false;
    kl_ptrvec writers = {0};
    int j = only_reader(ks, i, &writers, a);
    if (j < 0) return false;
    kl_kernel *ck = ks->items[j];
    if (counted_loops(p, ck) || !walks_shape(ck, &pk->out->shape)) return false;
    for (int w = 0; w < writers.n; w++) { /* C's work runs exactly when it did */
        const kl_kernel *wk = writers.items[w];
        if (wk->guard != ck->guard) return false;
        /* a check (C writes the flag predict tests) moves its error code to P: P must have none */
        if (ck->error_code && wk->error_code) return false;
    }
    load_count c = {y, &pk->out->shape, 0, 0};
    count_kernel_loads(ck, &c);
    if (c.other || !loads_at_own_element(ck->value, y)) return false;
    /* pieces of a split output are often strided, so the tile pass may find no vector loop in
     * them: a runtime call there runs once per scalar point and breaks up the independent
     * reduction chains the core overlaps (ppocr_det's ConvTranspose -> Sigmoid: 0.8 -> 2.1 ms) */
    if (writers.n > 1 && is_dear(ck->value)) return false;
    for (int w = 0, at = i; w < writers.n; w++, at++) {
        while (ks->items[at] != writers.items[w]) at++;
        if (!epilogue_fits(ks, at, j, a)) return false;
    }
    for (int w = 0; w < writers.n; w++) take_epilogue(a, writers.items[w], ck);
    memmove(&ks->items[j], &ks->items[j + 1], (size_t)(ks->n - j - 1) * sizeof *ks->items);
    ks->n--;
    return true;
}

/* ---------------------------------------------------------------- the pass */

/* Whether a trap tests what k writes (which must then stay a buffer). */
static bool tests_trap(const kl_program *p, const kl_kernel *k) {
    for (int t = 0; t < p->traps.n; t++)
        if (kl_guard_reads(((const kl_trap *)p->traps.items[t])->guard, written(k))) return true;
    return false;
}

bool kpass_fuse(kl_program *p, const kl_kernel_opts *o, kl_diag *d) {
    (void)o;
    (void)d;
    kl_ptrvec *ks = &p->kernels;
    for (bool changed = true; changed;) {
        changed = false;
        /* a kernel that builds strings or tests the arena keeps its place: inlined into
           several readers it would build its strings again, and a check must stay after
           the builders it checks */
        for (int i = 0; i < ks->n; i++)
            if (!tests_trap(p, ks->items[i]) && !kl_kernel_uses_string_arena(p, ks->items[i]) &&
                try_inline(p, ks, i)) {
                changed = true;
                i--;
            }
        for (int i = 0; i < ks->n; i++)
            while (!tests_trap(p, ks->items[i]) && !kl_kernel_uses_string_arena(p, ks->items[i]) &&
                   try_epilogue(p, ks, i))
                changed = true;
    }
    return true;
}
