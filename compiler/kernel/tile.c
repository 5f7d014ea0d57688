/*
 * tile.c — the tile pass: register blocking of every reduction kernel (kpass_tile).
 *
 * A contraction (Conv, MatMul, Gemm, their integer forms once they compute in float, pools,
 * whatever lowers to a reduction) is a loop nest whose innermost body updates one accumulator.
 * One accumulator per output element can never keep the FMA units busy: every FMA waits for
 * its loads. This pass rewrites such a kernel so that its innermost body updates a block of
 * accumulators held in vector registers:
 *
 *   1. Regions. A bounds test that guards a padded read (select(0 <= ih < H, X[ih], 0)) holds
 *      for all but a few border iterations of a parallel loop. The loop's range is split at
 *      those borders (index-set splitting) into kernels of their own; in the interior the
 *      tests fold away (kl_kernel_simplify), so the hot loop has no select and no clamp.
 *   2. The block. The VECTOR loop is the parallel loop that walks the output contiguously (its
 *      coefficient in the output's offset is 1) and that every operand reads contiguously or
 *      not at all (a broadcast); constants qualify whatever their layout, since step 4 repacks
 *      them. The UNROLL loop is another parallel loop chosen to share the most vector loads
 *      between its copies (a convolution's output column: the weights do not depend on it).
 *      Their sizes come from the target: nv vectors × R copies accumulators, within the vector
 *      registers less a few for operands.
 *   3. Split and reorder. Both loops are split into an outer loop and the block loop (their
 *      extents' remainders become kernels of their own, so every block is full but for masked
 *      lanes); the outer part of the VECTOR loop goes outermost, so a block of weights stays
 *      in cache for all the outputs it serves.
 *   4. Packing. A constant operand (weights) is laid out at compile time in the order the
 *      block reads it — outer loops, reduction loops, then the block loops — so the innermost
 *      loop streams it contiguously (pack.c). Identical packings are shared between the
 *      kernels of one contraction.
 *   5. Prefetch. A kernel whose weights outgrow L2 asks for the next panel of them while it
 *      works on the current one (prefetch.c); then it keeps its jammed block (no micro-kernel).
 *
 * Semantics never change: the kernels compute exactly what the original did (the interpreter
 * checks that in tests/unit/test_tile.c); only the back end's schedule does.
 */
#include <string.h>

#include "kl.h"

enum {
    MIN_VECTOR_EXTENT_DIV = 2, /* a VECTOR loop fills at least lanes / 2 lanes */
    MAX_VECTORS = 4,           /* vectors across the VECTOR loop in one block */
    MAX_VECTORS_ALONE = 8,     /* ... when nothing else can be unrolled (a GEMV) */
};

typedef struct tile_ctx {
    kl_program *p;
    const kl_target *t;
    kl_microkernels micro;
    kl_ptrvec packs;  /* packed constants made so far (pack.c shares identical ones) */
} tile_ctx;

/* ---------------------------------------------------------------- the loads of a kernel */

static void collect_loads(const kl_expr *e, kl_ptrvec *v, kl_arena *a, bool in_index) {
    if (!e) return;
    if (e->kind == KL_E_LOAD) {
        bool seen = false;
        for (int i = 0; i < v->n && !seen; i++) seen = v->items[i] == e;
        if (!seen && !in_index) kl_ptrvec_push(a, v, (void *)e);
        for (int d = 0; d < e->buf->shape.rank; d++) collect_loads(e->idx[d], v, a, true);
    }
    collect_loads(e->a, v, a, in_index);
    collect_loads(e->b, v, a, in_index);
    collect_loads(e->c, v, a, in_index);
}

static kl_ptrvec kernel_loads(kl_arena *a, const kl_kernel *k) {
    kl_ptrvec v = {0};
    collect_loads(k->init, &v, a, false);
    collect_loads(k->value, &v, a, false);
    collect_loads(k->result, &v, a, false);
    return v;
}

/* Whether any load appears inside an index (a gather: the block cannot follow it). */
static bool has_gather(const kl_expr *e, bool in_index) {
    if (!e) return false;
    if (e->kind == KL_E_LOAD) {
        if (in_index) return true;
        for (int d = 0; d < e->buf->shape.rank; d++)
            if (has_gather(e->idx[d], true)) return true;
    }
    return has_gather(e->a, in_index) || has_gather(e->b, in_index) ||
           has_gather(e->c, in_index);
}

/* ---------------------------------------------------------------- eligibility */

/* Element types whose vectors the back end computes without a call per lane (16-bit floats
 * convert through runtime-min, one lane at a time: no gain from a block). */
static bool vector_type(kl_dtype t) {
    return t == KL_F32 || t == KL_I32 || t == KL_I8 || t == KL_U8;
}

static bool loads_vector_types(const kl_expr *e) {
    if (!e) return true;
    if (e->kind == KL_E_LOAD && !vector_type(e->buf->dtype)) return false;
    return loads_vector_types(e->a) && loads_vector_types(e->b) && loads_vector_types(e->c);
}

/* float sums, and the int32 sums of the integer forms (ConvInteger, QLinearConv, ...) */
static bool eligible(const kl_kernel *k) {
    if (k->n_block != 0 || k->n_par < 1) return false;
    if (k->reduce != KL_RED_SUM && k->reduce != KL_RED_MAX && k->reduce != KL_RED_MIN)
        return false;
    if ((k->acc_dtype != KL_F32 && k->acc_dtype != KL_I32) || !vector_type(k->out->dtype))
        return false;
    if (!loads_vector_types(k->init) || !loads_vector_types(k->value) ||
        !loads_vector_types(k->result))
        return false;
    if (has_gather(k->init, false) || has_gather(k->value, false) ||
        has_gather(k->result, false))
        return false;
    for (int d = 0; d < k->out->shape.rank; d++)
        if (has_gather(k->out_idx[d], true)) return false;
    kl_affine a;
    return kl_affine_offset(k->out, k->out_idx, &a);
}

/* ---------------------------------------------------------------- 1. regions */

static int64_t div_floor(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static int64_t div_ceil(int64_t a, int64_t b) { return -div_floor(-a, b); }

/* Narrow [*lo, *hi) to the values of i for which a·i + rest >= 0 for every value of rest in
 * [rest_lo, rest_hi]: a·i >= -rest_lo. */
static void narrow_nonnegative(int64_t a, int64_t rest_lo, int64_t *lo, int64_t *hi) {
    int64_t b = -rest_lo;
    if (a > 0) {
        int64_t m = div_ceil(b, a);
        if (m > *lo) *lo = m;
    } else if (a < 0) {
        int64_t m = div_floor(b, a) + 1; /* i <= b / a */
        if (m < *hi) *hi = m;
    }
}

typedef struct interior {
    int64_t lo, hi;   /* [lo, hi): every bounds test on the loop holds */
    bool tested;      /* some test depends on the loop */
} interior;

/* The interior of parallel loop l with respect to one comparison x OP y over affine forms
 * that involves no other parallel loop. */
static void interior_of_compare(const kl_kernel *k, const kl_expr *e, int l, interior *in) {
    kl_affine x, y;
    if (!kl_affine_of(e->a, &x) || !kl_affine_of(e->b, &y)) return;
    kl_affine d = x; /* d = x - y, turned into "d' >= 0" form below */
    for (int j = 0; j < KL_MAX_LOOPS; j++) d.coef[j] -= y.coef[j];
    d.c -= y.c;
    if (d.coef[l] == 0) return;
    for (int j = 0; j < k->n_par; j++)
        if (j != l && d.coef[j] != 0) return;
    int sign;          /* the test is sign·d + bias >= 0 */
    int64_t bias;
    switch (e->op) {
    case KL_GE: sign = 1; bias = 0; break;
    case KL_GT: sign = 1; bias = -1; break;
    case KL_LE: sign = -1; bias = 0; break;
    case KL_LT: sign = -1; bias = -1; break;
    default: return;
    }
    int64_t a = sign * d.coef[l];
    kl_affine rest = d;
    rest.coef[l] = 0;
    int64_t rlo, rhi;
    kl_affine_range(&rest, k->extent, k->n_loops, &rlo, &rhi);
    /* sign·rest ranges over [sign>0 ? rlo : -rhi, ...]; its minimum matters */
    int64_t rest_min = sign > 0 ? rlo : -rhi;
    in->tested = true;
    narrow_nonnegative(a, rest_min + bias, &in->lo, &in->hi);
}

static void interior_walk(const kl_kernel *k, const kl_expr *e, int l, interior *in) {
    if (!e) return;
    if (e->kind == KL_E_BINARY && e->dtype == KL_BOOL && e->a && !kl_dtype_is_float(e->a->dtype) &&
        e->a->dtype != KL_BOOL)
        interior_of_compare(k, e, l, in);
    interior_walk(k, e->a, l, in);
    interior_walk(k, e->b, l, in);
    interior_walk(k, e->c, l, in);
}

/* The pieces of k split along its parallel loops from `l` on, appended to out. */
static void split_regions(tile_ctx *c, kl_kernel *k, int l, kl_ptrvec *out) {
    kl_arena *a = c->p->arena;
    for (; l < k->n_par; l++) {
        if (k->extent_expr[l]) continue; /* a bounded dim's loop stays whole */
        interior in = {0, k->extent[l], false};
        interior_walk(k, k->value, l, &in);
        interior_walk(k, k->init, l, &in);
        if (!in.tested || in.lo >= in.hi || (in.lo <= 0 && in.hi >= k->extent[l])) continue;
        int64_t cut[4] = {0, in.lo > 0 ? in.lo : 0, in.hi < k->extent[l] ? in.hi : k->extent[l],
                          k->extent[l]};
        static const char *const names[3] = {"lo", "in", "hi"};
        for (int r = 0; r < 3; r++) {
            if (cut[r + 1] <= cut[r]) continue;
            kl_kernel *piece = kl_kernel_clone(c->p, k, kl_sprintf(a, "%s%d", names[r], l));
            kl_kernel_offset_loop(a, piece, l, cut[r], cut[r + 1] - cut[r]);
            kl_kernel_simplify(a, piece);
            split_regions(c, piece, l + 1, out);
        }
        return;
    }
    kl_ptrvec_push(a, out, k);
}

/* ---------------------------------------------------------------- 2. the block */

/* The register block: up to two UNROLL loops (outermost first) and the VECTOR loop, each with
 * the extent of one block of it. */
enum { MAX_BLOCK_LOOPS = 3 };
typedef struct block_plan {
    int lanes;
    int n;                           /* block loops; loop[n - 1] is the VECTOR loop */
    int loop[MAX_BLOCK_LOOPS];
    int64_t size[MAX_BLOCK_LOOPS];
} block_plan;

/* Coefficient of loop l in the offset of a load (or the store); 0 if not affine. */
static int64_t load_coef(const kl_expr *ld, int l, bool *affine) {
    kl_affine off;
    *affine = kl_affine_offset(ld->buf, ld->idx, &off);
    return *affine ? off.coef[l] : 0;
}

/* Whether loop v can be the VECTOR loop: the output is contiguous along it and every operand
 * either ignores it or is contiguous along it (constants: after packing). */
static bool vector_candidate(const kl_kernel *k, const kl_ptrvec *loads, int v) {
    kl_affine out;
    if (!kl_affine_offset(k->out, k->out_idx, &out) || out.coef[v] != 1) return false;
    for (int i = 0; i < loads->n; i++) {
        const kl_expr *ld = loads->items[i];
        bool affine;
        int64_t s = load_coef(ld, v, &affine);
        if (kl_buffer_root(ld->buf)->kind == KL_BUF_CONST) continue;
        if (!affine || (s != 0 && s != 1)) return false;
    }
    return true;
}

/* How much unrolling loop u shares between its copies: vector loads (along v) that do not
 * depend on u count double, broadcasts that depend on u (reused by every vector) once. */
static int sharing_score(const kl_ptrvec *loads, int v, int u) {
    int n = 0;
    for (int i = 0; i < loads->n; i++) {
        const kl_expr *ld = loads->items[i];
        bool affine;
        int64_t sv = load_coef(ld, v, &affine), su = load_coef(ld, u, &affine);
        if (!affine) continue;
        if (sv != 0 && su == 0) n += 2;
        if (sv == 0 && su != 0) n += 1;
    }
    return n;
}

/* What the cost of a block depends on in the target. */
typedef struct core_model {
    bool fma;            /* fused multiply-add: one instruction a product */
    bool broadcast_load; /* a load that broadcasts (AVX): no shuffle to spread a scalar */
} core_model;

/* Cycles of one reduction step of a block of nv vectors x r copies, as a modern out-of-order
 * core runs it: the vector arithmetic, the loads (nv operand vectors and r broadcasts) or the
 * latency of the chains of dependent additions, whichever is longest, plus the loop's own
 * bookkeeping.
 *  - With FMA (x86-64-v3, v4), two FMA pipes: nv·r FMAs take nv·r / 2 cycles.
 *  - Without (SSE2), a product is a multiply and an add, and spreading a scalar across a vector
 *    costs a shuffle (SSE has no broadcasting load): 2·nv·r + r operations share about three
 *    ports. Measured on a 56x56x64 3x3 convolution at x86-64: 4 vectors x 2 copies (the model's
 *    choice) 7.7 ms, 2 x 6 8.4 ms, 1 x 14 10.3 ms.
 * The latency is taken at 1.5 times its nominal 4 cycles: with exactly as many chains as pipes
 * x latency, any stall in the out-of-order core shows. */
static double step_cycles(const core_model *m, int64_t nv, int64_t r) {
    double arith = m->fma ? (double)(nv * r) / 2.0
                          : (double)(2 * nv * r + (m->broadcast_load ? 0 : r)) / 3.0;
    double loads = (double)(nv + r) / 2.0, latency = 6.0;
    double t = arith > loads ? arith : loads;
    return (t > latency ? t : latency) + 0.5;
}

/* Blocks of one loop: `full` of `size` and one remainder of `rem` (0: none). */
typedef struct parts {
    int64_t full, size, rem;
} parts;

static parts parts_of(int64_t extent, int64_t size) {
    parts p = {extent / size, size, extent % size};
    return p;
}

/* Cycles per reduction step over the whole block space, remainders counted as the smaller
 * blocks they become. nv counts vectors; u1/u2 copies. */
static double blocking_cycles(const core_model *m, parts v, int lanes, parts u1, parts u2) {
    double t = 0;
    for (int a = 0; a < 2; a++) {
        int64_t nv_blocks = a ? (v.rem ? 1 : 0) : v.full;
        int64_t nv = a ? (v.rem + lanes - 1) / lanes : v.size / lanes;
        for (int b = 0; b < 2 && nv_blocks; b++) {
            int64_t b1 = b ? (u1.rem ? 1 : 0) : u1.full, r1 = b ? u1.rem : u1.size;
            for (int c = 0; c < 2 && b1; c++) {
                int64_t b2 = c ? (u2.rem ? 1 : 0) : u2.full, r2 = c ? u2.rem : u2.size;
                if (b2) t += (double)(nv_blocks * b1 * b2) * step_cycles(m, nv, r1 * r2);
            }
        }
    }
    return t;
}

/* Threads a GPU grid has when each computes one block of nv vectors x r1 x r2 copies: one per
 * lane of every block of the whole iteration space. */
static int64_t gpu_threads(const kl_kernel *k, const block_plan *bp, int64_t vb, int64_t r1,
                           int64_t r2) {
    int nu = bp->n - 1;
    int64_t n = bp->lanes;
    for (int l = 0; l < k->n_par; l++) {
        int64_t e = k->extent[l], size = 1;
        if (l == bp->loop[nu]) size = vb;
        else if (nu >= 1 && l == bp->loop[nu - 1]) size = r1;
        else if (nu >= 2 && l == bp->loop[0]) size = r2;
        n *= (e + size - 1) / size;
    }
    return n;
}

/* The block sizes with the fewest cycles within the registers: nv·r1·r2 accumulators, nv
 * operand vectors and a broadcast (and, without FMA, a product on its way to its sum). Ties go
 * to fewer remainder kernels. On a GPU a block is one thread's work and a VECTOR chunk one
 * element per lane-thread; a larger block means fewer threads, so blocks grow only while the
 * grid keeps the GPU busy (kl_target_busy_threads): a thread-starved GPU runs slower than one
 * that reloads operands. */
static void choose_block_size(const kl_kernel *k, const kl_target *tg, block_plan *bp) {
    core_model m = {tg->fma, tg->vector_bits >= 256};
    int regs = tg->vector_registers, spare = tg->fma ? 1 : 2;
    int lanes = bp->lanes, nu = bp->n - 1;
    int64_t ev = k->extent[bp->loop[nu]];
    int64_t e1 = nu >= 1 ? k->extent[bp->loop[nu - 1]] : 1, e2 = nu >= 2 ? k->extent[bp->loop[0]] : 1;
    int64_t chunks = (ev + lanes - 1) / lanes, max_nv = nu ? MAX_VECTORS : MAX_VECTORS_ALONE;
    double best = -1;
    int best_rest = 0;
    for (int64_t nv = 1; nv <= chunks && nv <= max_nv && nv <= regs - 2; nv++) {
        int64_t budget = nu ? (regs - nv - spare) / nv : 1;
        for (int64_t r1 = 1; r1 <= e1 && r1 <= budget; r1++) {
            for (int64_t r2 = 1; r2 <= e2 && r1 * r2 <= budget; r2++) {
                int64_t vb = nv * lanes < ev ? nv * lanes : ev;
                int64_t busy = kl_target_busy_threads(tg);
                if (busy > 0 && nv * r1 * r2 > 1 && gpu_threads(k, bp, vb, r1, r2) < busy)
                    continue;
                double t =
                    blocking_cycles(&m, parts_of(ev, vb), lanes, parts_of(e1, r1), parts_of(e2, r2));
                /* a second UNROLL loop spreads the broadcasts over more rows and cache lines
                 * (measured: slower where the cycle count ties); it must win clearly */
                if (r2 > 1) t *= 1.10;
                int rest = (ev % vb != 0) + (e1 % r1 != 0) + (e2 % r2 != 0) + (r2 > 1);
                if (best < 0 || t < best - 1e-9 || (t < best + 1e-9 && rest < best_rest)) {
                    best = t;
                    best_rest = rest;
                    bp->size[nu] = vb;
                    if (nu >= 1) bp->size[nu - 1] = r1;
                    if (nu >= 2) bp->size[0] = r2;
                }
            }
        }
    }
}

static bool plan_block(const tile_ctx *c, const kl_kernel *k, const kl_ptrvec *loads,
                       block_plan *bp) {
    int lanes = kl_target_lanes(c->t, k->acc_dtype);
    if (lanes < 2) return false;
    bp->lanes = lanes;
    /* the innermost qualifying parallel loop */
    int v = -1;
    /* (a bounded dim's loop runs to a run-time extent: never part of the block) */
    for (int l = k->n_par - 1; l >= 0 && v < 0; l--)
        if (!k->extent_expr[l] && k->extent[l] * MIN_VECTOR_EXTENT_DIV >= lanes &&
            vector_candidate(k, loads, l))
            v = l;
    if (v < 0) return false;
    /* the loops whose unrolling shares the most, best first */
    int u[2] = {-1, -1}, score[2] = {0, 0};
    for (int l = k->n_par - 1; l >= 0; l--) {
        if (l == v || k->extent[l] < 2 || k->extent_expr[l]) continue;
        int s = sharing_score(loads, v, l);
        if (s > score[0]) {
            u[1] = u[0];
            score[1] = score[0];
            u[0] = l;
            score[0] = s;
        } else if (s > score[1]) {
            u[1] = l;
            score[1] = s;
        }
    }
    /* nothing to share: unroll the innermost other loop anyway, for independent chains */
    for (int l = k->n_par - 1; l >= 0 && u[0] < 0; l--)
        if (l != v && k->extent[l] >= 2 && !k->extent_expr[l]) u[0] = l;
    bp->n = 0;
    if (u[1] >= 0) bp->loop[bp->n++] = u[1];
    if (u[0] >= 0) bp->loop[bp->n++] = u[0];
    bp->loop[bp->n++] = v;
    choose_block_size(k, c->t, bp);
    if (bp->n == 3 && bp->size[0] == 1) { /* the second UNROLL loop did not pay */
        bp->loop[0] = bp->loop[1];
        bp->size[0] = bp->size[1];
        bp->loop[1] = bp->loop[2];
        bp->size[1] = bp->size[2];
        bp->n = 2;
    }
    return true;
}

/* ---------------------------------------------------------------- 3. split and reorder */

/* Split loop l of k at `block`: the full blocks stay in k (loop l becomes outer × block when
 * there is more than one), the remainder (if any) becomes a kernel appended to `rest`. Returns
 * whether loop l was split in two (the block loop is then l + 1, else l itself). */
static bool split_block(tile_ctx *c, kl_kernel *k, int l, int64_t block, kl_ptrvec *rest,
                        const char *tag) {
    kl_arena *a = c->p->arena;
    int64_t e = k->extent[l];
    if (e <= block) return false;
    int64_t full = e / block * block;
    if (full < e) {
        kl_kernel *tail = kl_kernel_clone(c->p, k, tag);
        kl_kernel_offset_loop(a, tail, l, full, e - full);
        kl_ptrvec_push(a, rest, tail);
        k->extent[l] = full;
    }
    return full > block && kl_kernel_split_loop(a, k, l, block);
}

/* Order: the VECTOR loop's outer part first, the other parallel loops as they were, then the
 * block (UNROLL loops, VECTOR loop), then the reduction loops. */
static void reorder(tile_ctx *c, kl_kernel *k, int vouter, const int *block, int n_block) {
    int order[KL_MAX_LOOPS], n = 0;
    if (vouter >= 0) order[n++] = vouter;
    for (int l = 0; l < k->n_par; l++) {
        bool in_block = l == vouter;
        for (int b = 0; b < n_block; b++) in_block = in_block || l == block[b];
        if (!in_block) order[n++] = l;
    }
    for (int b = 0; b < n_block; b++) order[n++] = block[b];
    for (int l = k->n_par; l < k->n_loops; l++) order[n++] = l;
    kl_kernel_permute_loops(c->p->arena, k, order);
    k->n_block = n_block;
    for (int b = 0; b < n_block; b++)
        k->kind[k->n_par - n_block + b] = b == n_block - 1 ? KL_LOOP_VECTOR : KL_LOOP_UNROLL;
}

/* Block one kernel (no remainder left in it); remainders go to `rest` unblocked. */
static bool block_kernel(tile_ctx *c, kl_kernel *k, kl_ptrvec *rest) {
    kl_ptrvec loads = kernel_loads(c->p->arena, k);
    block_plan bp;
    if (!plan_block(c, k, &loads, &bp)) return false;
    k->lanes = bp.lanes;
    /* where each block loop (and the VECTOR loop's outer part) ends up: splitting loop l moves
     * every loop after it up by one, so split from the highest-numbered loop down */
    int at[MAX_BLOCK_LOOPS], vouter = -1, order[MAX_BLOCK_LOOPS];
    for (int b = 0; b < bp.n; b++) {
        at[b] = bp.loop[b];
        order[b] = b;
    }
    for (int i = 0; i < bp.n; i++) /* order: block loops by decreasing loop index */
        for (int j = i + 1; j < bp.n; j++)
            if (bp.loop[order[j]] > bp.loop[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    static const char *const tags[MAX_BLOCK_LOOPS] = {"tu2", "tu", "tv"};
    for (int i = 0; i < bp.n; i++) {
        int b = order[i], l = bp.loop[b];
        const char *tag = b == bp.n - 1 ? "tv" : tags[MAX_BLOCK_LOOPS - bp.n + b];
        if (!split_block(c, k, l, bp.size[b], rest, tag)) continue;
        for (int j = 0; j < bp.n; j++) /* loops above l shift; l's block is its inner part */
            if (at[j] > l || j == b) at[j]++;
        if (vouter > l) vouter++;
        if (b == bp.n - 1) vouter = l;
    }
    reorder(c, k, vouter, at, bp.n);
    return true;
}

/* ---------------------------------------------------------------- 6. micro-kernels */

/* The x86 ISA a libxsmm kernel may use on the target, or 0. */
static int micro_isa(const kl_target *t) {
    if (t->backend != KL_BACKEND_LLVM || strncmp(t->triple, "x86_64", 6) != 0 || !t->fma) return 0;
    return t->vector_bits >= 512 ? 2 : t->vector_bits >= 256 ? 1 : 0;
}

static const kl_expr *strip_cast(const kl_expr *e) {
    return e->kind == KL_E_CAST && e->dtype == e->a->dtype ? e->a : e;
}

/* Whether the blocked kernel k is C += A * B in the shape a GEMM micro-kernel computes; fills
 * mk. The VECTOR loop is the gemm's m (A and C contiguous along it), the UNROLL loop its n,
 * and the innermost reduction loops whose strides nest (A: lda, lda*K1, ...; B: 1, K1, ...)
 * its k. */
static bool match_micro(const kl_kernel *k, kl_micro *mk) {
    if (k->reduce != KL_RED_SUM || k->acc_dtype != KL_F32 || k->n_block < 1 || k->n_block > 2)
        return false;
    for (int l = k->n_par; l < k->n_loops; l++) /* its k is fixed in the generated code */
        if (k->extent_expr[l]) return false;
    const kl_expr *v = k->value;
    if (v->kind != KL_E_BINARY || v->op != KL_MUL) return false;
    const kl_expr *x = strip_cast(v->a), *y = strip_cast(v->b);
    if (x->kind != KL_E_LOAD || y->kind != KL_E_LOAD || x->dtype != KL_F32 || y->dtype != KL_F32)
        return false;
    int vl = k->n_par - 1, ul = k->n_block == 2 ? k->n_par - 2 : -1;
    kl_affine ax, ay, ac;
    if (!kl_affine_offset(x->buf, x->idx, &ax) || !kl_affine_offset(y->buf, y->idx, &ay) ||
        !kl_affine_offset(k->out, k->out_idx, &ac))
        return false;
    if (ay.coef[vl] == 1 && ax.coef[vl] == 0) { /* A is the second operand */
        const kl_expr *t = x;
        x = y;
        y = t;
        kl_affine s = ax;
        ax = ay;
        ay = s;
    }
    if (ax.coef[vl] != 1 || ay.coef[vl] != 0 || ac.coef[vl] != 1) return false;
    if (ul >= 0 && ax.coef[ul] != 0) return false;
    memset(mk, 0, sizeof *mk);
    mk->a = x;
    mk->b = y;
    mk->m = (int)k->extent[vl];
    mk->n = ul >= 0 ? (int)k->extent[ul] : 1;
    mk->ldc = ul >= 0 ? (int)ac.coef[ul] : mk->m;
    mk->ldb = ul >= 0 ? (int)ay.coef[ul] : 0;
    int inner = k->n_loops - 1;
    if (inner < k->n_par || ay.coef[inner] != 1 || ax.coef[inner] < mk->m) return false;
    mk->lda = (int)ax.coef[inner];
    /* merge while the strides nest, and (the columns of B must not overlap, as libxsmm
     * requires) while k stays within ldb */
    int64_t kk = 1;
    for (int l = inner; l >= k->n_par; l--) {
        if (ay.coef[l] != kk || ax.coef[l] != mk->lda * kk) break;
        if (ul >= 0 && kk * k->extent[l] > mk->ldb) break;
        kk *= k->extent[l];
        mk->merged++;
    }
    if (mk->merged == 0) return false;
    mk->k = (int)kk;
    if (ul < 0) mk->ldb = mk->k;
    return mk->ldb >= mk->k && mk->ldc >= mk->m && mk->k >= 1 && kk < (1 << 24);
}

/* Use a micro-kernel for k where the policy asks for one and it applies. Where it is left to
 * the pass (auto), the micro-kernel pays when its reduction is long enough that reading and
 * writing the block in memory around each call stays small next to the FMAs. */
enum { MICRO_AUTO_MIN_K = 256 };

static void choose_micro(tile_ctx *c, kl_kernel *k) {
    if (c->micro == KL_MICRO_IR || !micro_isa(c->t)) return;
    kl_micro mk;
    if (!match_micro(k, &mk)) return;
    /* a kernel that prefetches its next panel of weights keeps the jammed block: the
     * micro-kernel's own loop has no place for the hint */
    if (c->micro == KL_MICRO_AUTO && (mk.k < MICRO_AUTO_MIN_K || k->prefetch_at)) return;
    k->micro = kl_alloc(c->p->arena, sizeof *k->micro);
    *k->micro = mk;
    k->prefetch_buf = NULL;
    k->prefetch_at = NULL;
}

/* ---------------------------------------------------------------- the pass */

/* Heaviest first; equal ones keep their order (an insertion sort: a handful of pieces). */
static void sort_by_work(kl_ptrvec *v) {
    for (int i = 1; i < v->n; i++) {
        void *x = v->items[i];
        int64_t w = kl_kernel_iterations(x);
        int j = i;
        for (; j > 0 && kl_kernel_iterations(v->items[j - 1]) < w; j--) v->items[j] = v->items[j - 1];
        v->items[j] = x;
    }
}

static void tile_kernel(tile_ctx *c, kl_kernel *k, kl_ptrvec *out) {
    kl_arena *a = c->p->arena;
    if (!eligible(k)) {
        kl_ptrvec_push(a, out, k);
        return;
    }
    kl_kernel_simplify(a, k); /* bounds tests the loops' ranges already settle */
    kl_ptrvec regions = {0}, blocked = {0};
    split_regions(c, k, 0, &regions);
    for (int i = 0; i < regions.n; i++) {
        kl_ptrvec todo = {0};
        kl_ptrvec_push(a, &todo, regions.items[i]);
        /* a remainder is blocked in turn (its own remainders are smaller) */
        for (int j = 0; j < todo.n; j++) {
            kl_kernel *piece = todo.items[j];
            if (block_kernel(c, piece, &todo)) kl_ptrvec_push(a, &blocked, piece);
            kl_ptrvec_push(a, out, piece);
        }
    }
    /* the heaviest piece packs the weights in its order first; the lighter ones (borders,
       remainders) then read that copy where they can, instead of a copy of their own */
    sort_by_work(&blocked);
    for (int i = 0; i < blocked.n; i++) {
        kl_pack_constants(c->p, blocked.items[i], &c->packs);
        kl_plan_prefetch(c->p, blocked.items[i], c->t);
        choose_micro(c, blocked.items[i]);
    }
}

bool kpass_tile(kl_program *p, const kl_kernel_opts *o, kl_diag *d) {
    (void)d;
    tile_ctx c = {.p = p, .t = o->target, .micro = o->microkernels};
    kl_ptrvec out = {0};
    for (int i = 0; i < p->kernels.n; i++) {
        tile_kernel(&c, p->kernels.items[i], &out);
        if (!o->keep_sources) kl_pack_release_sources(p, &c.packs, &out, i + 1);
    }
    p->kernels = out;
    return true;
}
