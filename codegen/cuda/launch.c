/*
 * codegen/cuda/launch.c — how every kernel maps onto the GPU (the launch plan), and where the
 * constants sit in the module's weights.
 *
 * A kernel's outer parallel loops (those before its register block) are its groups; the tile
 * pass's register block is what one thread computes: every UNROLL copy, and along the VECTOR
 * loop one element per chunk, the chunk's `lanes` elements going to `lanes` neighbouring
 * threads (so that a warp reads and writes the output's contiguous dimension in runs).
 * Where the groups alone would leave the GPU idle and the innermost reduction loop is long,
 * `split` threads share a group's reduction (each takes every split-th iteration of that loop)
 * and combine their sums with warp shuffles: a reassociation of the sum, as on the CPU.
 *
 * Kernels whose iterations are not independent run on one thread, in the interpreter's order:
 *  - the stored element is not a one-to-one function of the parallel loops (a scatter through
 *    loaded indices, or several iterations writing one element: the last one wins on a CPU);
 *  - the kernel reads its own output anywhere but at the element it writes.
 * Such kernels are rare (ScatterND and its kind); everything else runs in parallel.
 */
#include <string.h>

#include "cuda_internal.h"

enum {
    MAX_THREADS = 256,      /* threads per block */
    WARP = 32,
    MIN_SPLIT_ITERS = 8,    /* a split thread runs at least this many reduction iterations */
};

static bool skipped(const kl_kernel *k);

/* ---------------------------------------------------------------- buffers */

static bool seen(const kl_ptrvec *v, const void *x) {
    for (int i = 0; i < v->n; i++)
        if (v->items[i] == x)
            return true;
    return false;
}

static void collect(kl_arena *a, kl_ptrvec *v, const kl_expr *e) {
    if (!e)
        return;
    if (e->kind == KL_E_LOAD) {
        kl_buffer *root = kl_buffer_root(e->buf);
        if (!seen(v, root))
            kl_ptrvec_push(a, v, root);
        for (int d = 0; d < e->buf->shape.rank; d++)
            collect(a, v, e->idx[d]);
    }
    collect(a, v, e->a);
    collect(a, v, e->b);
    collect(a, v, e->c);
}

/* Every root buffer the kernel touches, the output's last unless it is also read. */
static kl_ptrvec kernel_buffers(kl_arena *a, const kl_kernel *k) {
    kl_ptrvec v = {0};
    collect(a, &v, k->init);
    collect(a, &v, k->value);
    collect(a, &v, k->result);
    for (int d = 0; d < k->out->shape.rank; d++)
        collect(a, &v, k->out_idx[d]);
    kl_buffer *out = kl_buffer_root(k->out);
    if (!seen(&v, out))
        kl_ptrvec_push(a, &v, out);
    return v;
}

/* ---------------------------------------------------------------- independence */

static bool has_load(const kl_expr *e) {
    if (!e)
        return false;
    return e->kind == KL_E_LOAD || has_load(e->a) || has_load(e->b) || has_load(e->c);
}

/* Whether every iteration of the parallel loops stores a different element. */
static bool stores_one_to_one(const kl_kernel *k) {
    for (int d = 0; d < k->out->shape.rank; d++)
        if (has_load(k->out_idx[d]))
            return false;
    kl_affine af;
    if (!kl_affine_offset(k->out, k->out_idx, &af))
        return false;
    /* loops with more than one iteration, by |coefficient|; each must step past everything the
     * smaller ones reach */
    int order[KL_MAX_LOOPS], n = 0;
    for (int l = 0; l < k->n_par; l++) {
        if (k->extent[l] <= 1)
            continue;
        if (af.coef[l] == 0)
            return false;
        order[n++] = l;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int64_t ci = af.coef[order[i]] < 0 ? -af.coef[order[i]] : af.coef[order[i]];
            int64_t cj = af.coef[order[j]] < 0 ? -af.coef[order[j]] : af.coef[order[j]];
            if (cj < ci) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
    __int128 reach = 0;
    for (int i = 0; i < n; i++) {
        int l = order[i];
        __int128 c = af.coef[l] < 0 ? -(__int128)af.coef[l] : af.coef[l];
        if (c <= reach)
            return false;
        reach += c * (k->extent[l] - 1);
    }
    return true;
}

/* Whether some load reads the output's storage anywhere but the element being written. */
static bool reads_output_elsewhere(const kl_expr *e, const kl_buffer *out_root,
                                   const kl_affine *store) {
    if (!e)
        return false;
    if (e->kind == KL_E_LOAD) {
        if (kl_buffer_root(e->buf) == out_root) {
            kl_affine af;
            if (!store || !kl_affine_offset(e->buf, e->idx, &af) || af.c != store->c ||
                memcmp(af.coef, store->coef, sizeof af.coef) != 0)
                return true;
        }
        for (int d = 0; d < e->buf->shape.rank; d++)
            if (reads_output_elsewhere(e->idx[d], out_root, store))
                return true;
    }
    return reads_output_elsewhere(e->a, out_root, store) ||
           reads_output_elsewhere(e->b, out_root, store) ||
           reads_output_elsewhere(e->c, out_root, store);
}

static bool needs_serial(const kl_kernel *k) {
    if (!stores_one_to_one(k))
        return true;
    kl_affine store;
    bool affine = kl_affine_offset(k->out, k->out_idx, &store);
    const kl_buffer *root = kl_buffer_root(k->out);
    return reads_output_elsewhere(k->init, root, affine ? &store : NULL) ||
           reads_output_elsewhere(k->value, root, affine ? &store : NULL) ||
           reads_output_elsewhere(k->result, root, affine ? &store : NULL);
}

/* ---------------------------------------------------------------- the grid */

/* Accumulator types whose partial sums combine through a warp shuffle. */
static bool splittable(const kl_kernel *k) {
    if (k->reduce != KL_RED_SUM && k->reduce != KL_RED_MAX && k->reduce != KL_RED_MIN)
        return false;
    kl_dtype t = k->acc_dtype;
    return t == KL_F32 || t == KL_F64 || t == KL_I32 || t == KL_U32 || t == KL_I64 ||
           t == KL_U64 || t == KL_I8 || t == KL_U8 || t == KL_I16 || t == KL_U16;
}

static int choose_split(const kl_kernel *k, const kl_cu_launch *L, int64_t busy) {
    if (L->serial || k->n_loops <= k->n_par || !splittable(k) || WARP % L->lanes != 0)
        return 1;
    int64_t inner = k->extent[k->n_loops - 1];
    int split = 1;
    while (L->lanes * split * 2 <= WARP && L->groups * L->lanes * split < busy &&
           inner >= (int64_t)MIN_SPLIT_ITERS * split * 2)
        split *= 2;
    return split;
}

static void plan_block(const kl_kernel *k, kl_cu_launch *L) {
    L->first_block = k->n_par;
    L->vloop = -1;
    L->lanes = L->chunks = L->points = 1;
    if (L->serial || k->n_block <= 0)
        return;
    L->first_block = k->n_par - k->n_block;
    for (int l = L->first_block; l < k->n_par; l++) {
        if (k->kind[l] == KL_LOOP_VECTOR) {
            L->vloop = l;
            L->lanes = k->lanes > 0 ? k->lanes : 1;
            L->chunks = (int)((k->extent[l] + L->lanes - 1) / L->lanes);
            L->points *= L->chunks;
        } else {
            L->points *= (int)k->extent[l];
        }
    }
}

static bool plan_kernel(kl_arena *a, const kl_kernel *k, const kl_target *t, kl_cu_launch *L,
                        kl_diag *d) {
    memset(L, 0, sizeof *L);
    L->skip = skipped(k);
    L->serial = needs_serial(k);
    plan_block(k, L);
    if (L->points > 4096 || L->lanes > WARP)
        return kl_error(d, k->node, "codegen (CUDA): kernel '%s': register block too large",
                        k->name);
    L->groups = 1;
    for (int l = 0; l < L->first_block && !L->serial; l++)
        L->groups *= k->extent[l] > 0 ? k->extent[l] : 0;
    L->split = choose_split(k, L, kl_target_busy_threads(t));
    int64_t total = L->skip ? 0 : L->serial ? 1 : L->groups * L->lanes * L->split;
    int64_t threads = (total + WARP - 1) / WARP * WARP;
    L->threads = (int)(threads < WARP ? WARP : threads < MAX_THREADS ? threads : MAX_THREADS);
    if (L->serial)
        L->threads = 1;
    L->blocks = (total + L->threads - 1) / L->threads;
    L->wide = L->blocks * L->threads > INT32_MAX;
    if (L->blocks > INT32_MAX)
        return kl_error(d, k->node, "codegen (CUDA): kernel '%s' needs more than 2^31 blocks",
                        k->name);
    kl_ptrvec bufs = kernel_buffers(a, k);
    L->params = kl_alloc_array(a, (size_t)bufs.n + 1, sizeof *L->params);
    for (int i = 0; i < bufs.n; i++) {
        kl_buffer *b = bufs.items[i];
        if (b->kind != KL_BUF_CONST)
            L->params[L->n_params++] = b;
    }
    return true;
}

/* ---------------------------------------------------------------- constants */

static void place_constants(kl_cu_program *cp) {
    const kl_program *p = cp->p;
    cp->const_offset = kl_alloc_array(cp->arena, (size_t)p->buffers.n + 1, sizeof *cp->const_offset);
    for (int i = 0; i < p->buffers.n; i++)
        cp->const_offset[i] = -1;
    cp->weights_size = 0;
    for (int i = 0; i < p->kernels.n; i++) {
        kl_ptrvec bufs = kernel_buffers(cp->arena, p->kernels.items[i]);
        for (int j = 0; j < bufs.n; j++) {
            const kl_buffer *b = bufs.items[j];
            if (b->kind != KL_BUF_CONST || cp->const_offset[b->id] >= 0)
                continue;
            cp->const_offset[b->id] = cp->weights_size;
            int64_t bytes = kl_buffer_bytes(b);
            cp->weights_size += (bytes + KL_CU_WEIGHT_ALIGN - 1) / KL_CU_WEIGHT_ALIGN * KL_CU_WEIGHT_ALIGN;
        }
    }
}

unsigned char *kl_cu_weights(const kl_cu_program *cp) {
    const kl_program *p = cp->p;
    unsigned char *w = kl_alloc(cp->arena, (size_t)cp->weights_size + 1);
    for (int i = 0; i < p->buffers.n; i++) {
        const kl_buffer *b = p->buffers.items[i];
        int64_t bytes = kl_buffer_bytes(b);
        if (cp->const_offset[i] >= 0 && bytes > 0 && b->data)
            memcpy(w + cp->const_offset[i], b->data, (size_t)bytes);
    }
    return w;
}

/* ---------------------------------------------------------------- sizes for the caller */

static bool skipped(const kl_kernel *k) {
    for (int l = 0; l < k->n_par; l++)
        if (k->extent[l] <= 0)
            return true;
    return false;
}

static int64_t round_up(int64_t x) {
    return (x + KL_CU_WEIGHT_ALIGN - 1) / KL_CU_WEIGHT_ALIGN * KL_CU_WEIGHT_ALIGN;
}

int64_t kl_cuda_host_offset(const kl_program *p, bool output, int i) {
    int64_t off = round_up(p->workspace_size);
    for (int j = 0; j < p->inputs.n && (output || j < i); j++)
        off += round_up(kl_buffer_bytes(p->inputs.items[j]));
    for (int j = 0; output && j < i; j++)
        off += round_up(kl_buffer_bytes(p->outputs.items[j]));
    return off;
}

bool kl_cuda_sizes_of(const kl_program *p, const kl_target *t, kl_cuda_sizes *s, kl_diag *d) {
    kl_cu_program cp;
    if (!kl_cu_plan(p, t, &cp, d))
        return false;
    s->n_functions = cp.n_groups;
    /* void *module; void *functions[n] (at least one, as the header declares it) */
    s->state_size = 8 * (1 + (int64_t)(s->n_functions > 0 ? s->n_functions : 1));
    s->host_workspace_size = kl_cuda_host_offset(p, true, p->outputs.n);
    return true;
}

/* ---------------------------------------------------------------- launches */

enum { MAX_GROUP = 16, MAX_GROUP_PARAMS = 64 };

/* Roots a kernel reads (constants excluded: nothing writes them). */
static kl_ptrvec read_roots(kl_arena *a, const kl_kernel *k) {
    kl_ptrvec v = {0}, all = {0};
    collect(a, &all, k->init);
    collect(a, &all, k->value);
    collect(a, &all, k->result);
    for (int d = 0; d < k->out->shape.rank; d++)
        collect(a, &all, k->out_idx[d]);
    for (int i = 0; i < all.n; i++)
        if (((kl_buffer *)all.items[i])->kind != KL_BUF_CONST)
            kl_ptrvec_push(a, &v, all.items[i]);
    return v;
}

/* A fill with one constant (the halo pass's borders). */
static bool constant_fill(const kl_kernel *k) {
    return k->reduce == KL_RED_NONE && !k->result && k->value && k->value->kind == KL_E_CONST;
}

static bool same_fill(const kl_kernel *x, const kl_kernel *y) {
    const kl_expr *a = x->value, *b = y->value;
    return constant_fill(x) && constant_fill(y) && a->dtype == b->dtype &&
           memcmp(&a->f, &b->f, sizeof a->f) == 0 && a->i == b->i;
}

/* A kernel that may share a launch: no reduction, no block, no shuffles, not serial. */
static bool light(const kl_kernel *k, const kl_cu_launch *L) {
    return !L->skip && !L->serial && k->reduce == KL_RED_NONE && L->first_block == k->n_par &&
           L->split == 1;
}

/* Whether k may run at the same time as member m of a launch. */
static bool independent(kl_arena *a, const kl_kernel *k, const kl_kernel *m) {
    kl_buffer *kw = kl_buffer_root(k->out), *mw = kl_buffer_root(m->out);
    kl_ptrvec kr = read_roots(a, k), mr = read_roots(a, m);
    if (seen(&kr, mw) || seen(&mr, kw))
        return false;
    return kw != mw || same_fill(k, m);
}

static bool joins(const kl_cu_program *cp, const kl_cu_group *g, int i) {
    const kl_program *p = cp->p;
    const kl_kernel *k = p->kernels.items[i];
    if (!light(k, &cp->launch[i]) || g->count >= MAX_GROUP ||
        g->n_params + cp->launch[i].n_params > MAX_GROUP_PARAMS ||
        g->blocks + cp->launch[i].blocks > INT32_MAX)
        return false;
    for (int j = g->first; j < g->first + g->count; j++)
        if (!cp->launch[j].skip && (!light(p->kernels.items[j], &cp->launch[j]) ||
                                    !independent(cp->arena, k, p->kernels.items[j])))
            return false;
    return true;
}

static void add_member(const kl_cu_program *cp, kl_cu_group *g, int i) {
    const kl_cu_launch *L = &cp->launch[i];
    if (g->count == 0)
        g->first = i;
    g->count = i - g->first + 1; /* skipped kernels in between are members that never run */
    g->blocks += L->blocks;
    if (L->threads > g->threads)
        g->threads = L->threads;
    kl_buffer **params = kl_alloc_array(cp->arena, (size_t)(g->n_params + L->n_params) + 1,
                                        sizeof *params);
    if (g->n_params)
        memcpy(params, g->params, (size_t)g->n_params * sizeof *params);
    memcpy(params + g->n_params, L->params, (size_t)L->n_params * sizeof *params);
    g->params = params;
    g->n_params += L->n_params;
}

static void plan_groups(kl_cu_program *cp) {
    int n = cp->p->kernels.n;
    cp->groups = kl_alloc_array(cp->arena, (size_t)n + 1, sizeof *cp->groups);
    cp->n_groups = 0;
    kl_cu_group *g = NULL;
    for (int i = 0; i < n; i++) {
        if (cp->launch[i].skip)
            continue;
        if (!g || !joins(cp, g, i))
            g = &cp->groups[cp->n_groups++];
        add_member(cp, g, i);
    }
    for (int i = 0; i < cp->n_groups; i++) {
        g = &cp->groups[i];
        int members = 0;
        for (int j = g->first; j < g->first + g->count; j++)
            members += !cp->launch[j].skip;
        g->name = members == 1 ? kl_sprintf(cp->arena, "%s_launch", cp->names[g->first])
                               : kl_sprintf(cp->arena, "%s_and_%d", cp->names[g->first], members - 1);
    }
}

/* ---------------------------------------------------------------- the program */

bool kl_cu_plan(const kl_program *p, const kl_target *t, kl_cu_program *cp, kl_diag *d) {
    memset(cp, 0, sizeof *cp);
    cp->p = p;
    cp->t = t;
    cp->arena = p->arena;
    int n = p->kernels.n;
    cp->launch = kl_alloc_array(p->arena, (size_t)n + 1, sizeof *cp->launch);
    cp->names = kl_alloc_array(p->arena, (size_t)n + 1, sizeof *cp->names);
    bool ok = true;
    if (p->traps.n)
        return kl_error(d, NULL, "codegen (CUDA): the model has a branch of an If left out for "
                        "the bound shapes, which the CUDA back end does not support yet");
    for (int i = 0; i < n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        if (!k->out || (!k->value && !k->result)) {
            ok = kl_error(d, k->node, "codegen (CUDA): kernel '%s' has no output or value", k->name);
            continue;
        }
        if (k->guard) { /* the host stub launches every kernel: it cannot skip one yet */
            ok = kl_error(d, k->node, "codegen (CUDA): this node belongs to a branch of an If "
                          "whose condition is only known at run time, which the CUDA back end "
                          "does not support yet (compile for a CPU target, or bind the inputs "
                          "that decide the condition)");
            break;
        }
        ok = plan_kernel(p->arena, k, t, &cp->launch[i], d) && ok;
        cp->names[i] = kl_sprintf(p->arena, "%s_%d", k->name ? k->name : "kernel", i);
    }
    for (int i = 0; i < p->buffers.n; i++) {
        const kl_buffer *b = p->buffers.items[i];
        if (b->kind == KL_BUF_CONST && kl_buffer_bytes(b) > 0 && !b->data && !b->view_of &&
            b->first_kernel >= 0) /* a dead constant's memory may have been released */
            ok = kl_error(d, NULL, "codegen (CUDA): constant buffer '%s' has no data", b->name);
    }
    place_constants(cp);
    if (ok)
        plan_groups(cp);
    return ok;
}
