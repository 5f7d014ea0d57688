/*
 * kernel/bounded_io.c — a bounded model's inputs and outputs whose varying dim sits behind a
 * dim larger than 1 ([4, n], [1, 8, n]).
 *
 * Inside the program every buffer keeps its layout at the bound (kernel/bounded.c), so such a
 * tensor's rows are padded there; the caller's is dense at the run-time shape. The model's
 * kernels then work on a workspace copy in the padded layout: a kernel before the first copies
 * each such input in, one after the last copies each such output out, both over the run-time
 * extents with the dense offsets computed from the run-time dims. (The fuse pass may inline the
 * copy-in into its readers, which then read the caller's tensor directly.)
 *
 * A view whose padded layout is not its root's ([4, n] read as [4n]) gets the same treatment
 * inside the program: a buffer of its own, filled from the root in dense order before its
 * first reader, and copied back after its last writer.
 */
#include <string.h>

#include "kl.h"

/* Dim d of b at run time: an int64 expression over the program's dims slot. */
static kl_expr *dim_at_run_time(kl_program *p, const kl_buffer *b, int d) {
    if (!b->dyn_a[d]) return kl_e_idx(p->arena, b->shape.dim[d]);
    return kl_bounded_affine(p, b->dyn_a[d], b->dyn_b[d]);
}

/* The dense row-major offset of element (iv_0, ..., iv_{rank-1}) at the run-time shape. */
static kl_expr *dense_offset(kl_program *p, const kl_buffer *b) {
    kl_arena *a = p->arena;
    kl_expr *off = kl_e_idx(a, 0);
    for (int d = 0; d < b->shape.rank; d++)
        off = kl_e_add(a, kl_e_mul(a, off, dim_at_run_time(p, b, d)), kl_e_iv(a, d));
    return off;
}

/* A copy kernel over b's dims at their run-time extents. */
static kl_kernel *copy_kernel(kl_program *p, const kl_buffer *b, const char *tag) {
    kl_kernel *k = kl_kernel_new(p, NULL, tag);
    k->n_loops = k->n_par = b->shape.rank;
    for (int d = 0; d < b->shape.rank; d++) {
        k->extent[d] = b->shape.dim[d];
        if (b->dyn_a[d]) k->extent_expr[d] = dim_at_run_time(p, b, d);
    }
    return k;
}

static kl_expr **ivs(kl_arena *a, int rank) {
    kl_expr **v = kl_alloc_array(a, (size_t)rank + 1, sizeof *v);
    for (int d = 0; d < rank; d++) v[d] = kl_e_iv(a, d);
    return v;
}

/* b, which the kernels address, becomes the padded workspace copy; a new buffer takes its
 * place at the interface, and a flat view of it is what the copy kernel indexes. */
static kl_buffer *move_to_workspace(kl_program *p, kl_buffer *b, kl_ptrvec *list, int at,
                                    kl_buffer **flat) {
    kl_buffer *outside = kl_program_buffer(p, b->name, b->kind, b->dtype, &b->shape);
    outside->index = b->index;
    outside->dyn_a = b->dyn_a, outside->dyn_b = b->dyn_b;
    list->items[at] = outside;
    for (int i = 0; i < p->buffers.n; i++) { /* its views follow it into the workspace */
        kl_buffer *v = p->buffers.items[i];
        if (v->view_of == b) v->kind = KL_BUF_WORKSPACE;
    }
    b->kind = KL_BUF_WORKSPACE;
    b->name = kl_sprintf(p->arena, "%s_padded", b->name);
    kl_shape all = {.rank = 1, .dim = {kl_shape_numel(&b->shape)}};
    *flat = kl_program_view(p, outside, &all);
    return outside;
}

/* ---------------------------------------------------------------- views */

/* The index of root's element at dense position `at` of its run-time shape. */
static kl_expr **root_index(kl_program *p, const kl_buffer *root, kl_expr *at) {
    kl_arena *a = p->arena;
    int rank = root->shape.rank;
    kl_expr **idx = kl_alloc_array(a, (size_t)rank + 1, sizeof *idx);
    for (int d = rank - 1; d > 0; d--) {
        kl_expr *dim = dim_at_run_time(p, root, d);
        idx[d] = kl_e_binary(a, KL_MOD, at, dim);
        at = kl_e_binary(a, KL_DIV, at, dim);
    }
    if (rank > 0) idx[0] = at;
    return idx;
}

typedef struct swap_ctx {
    const kl_buffer *from;
    kl_buffer *to;
} swap_ctx;

static kl_expr *swap_load(void *ctx, kl_arena *a, const kl_expr *e) {
    const swap_ctx *c = ctx;
    return e->kind == KL_E_LOAD && e->buf == c->from ? kl_e_load(a, c->to, e->idx) : NULL;
}

static void insert_kernel(kl_program *p, kl_kernel *k, int at) {
    kl_ptrvec *ks = &p->kernels;
    kl_program_add_kernel(p, k); /* grows the vector; then moved into place */
    memmove(&ks->items[at + 1], &ks->items[at], (size_t)(ks->n - 1 - at) * sizeof *ks->items);
    ks->items[at] = k;
}

void kl_bounded_materialize_view(kl_program *p, kl_buffer *v) {
    kl_arena *a = p->arena;
    kl_buffer *root = v->view_of;
    kl_buffer *own = kl_program_buffer(p, kl_sprintf(a, "%s_dense", v->name), KL_BUF_WORKSPACE,
                                       v->dtype, &v->shape);
    own->dyn_a = v->dyn_a, own->dyn_b = v->dyn_b;
    swap_ctx c = {v, own};
    kl_expr *none[KL_MAX_LOOPS] = {0};
    int first_reader = -1, last_writer = -1;
    for (int i = 0; i < p->kernels.n; i++) {
        kl_kernel *k = p->kernels.items[i];
        if (k->out == v) {
            k->out = own;
            last_writer = i;
        }
        kl_kernel_rewrite(a, k, none, swap_load, &c);
        if (first_reader < 0 && kl_kernel_reads(k, own)) first_reader = i;
    }
    kl_expr *at = dense_offset(p, v);
    if (first_reader >= 0) { /* own = the root's elements in dense order */
        kl_kernel *k = copy_kernel(p, v, kl_sprintf(a, "dense_%s", v->name));
        k->value = kl_e_load(a, root, root_index(p, root, at));
        k->out = own;
        k->out_idx = ivs(a, v->shape.rank);
        insert_kernel(p, k, first_reader);
        if (last_writer >= first_reader) last_writer++;
    }
    if (last_writer >= 0) { /* and back, after the last kernel that wrote through the view */
        kl_kernel *k = copy_kernel(p, v, kl_sprintf(a, "undense_%s", v->name));
        k->value = kl_e_load(a, own, ivs(a, v->shape.rank));
        k->out = root;
        k->out_idx = root_index(p, root, at);
        insert_kernel(p, k, last_writer + 1);
    }
}

/* Whether b's dense layout at a run-time shape differs from its padded one: some varying dim
 * comes after its first dim that is not 1. */
static bool padded_differs(const kl_buffer *b) {
    bool past_first = false;
    for (int d = 0; d < b->shape.rank; d++) {
        if (b->dyn_a[d] && past_first) return true;
        past_first = past_first || b->dyn_a[d] || b->shape.dim[d] != 1;
    }
    return false;
}

bool kl_bounded_copy_io(kl_program *p, kl_diag *d) {
    (void)d;
    kl_arena *a = p->arena;
    kl_ptrvec before = {0}, after = {0};
    for (int i = 0; i < p->inputs.n; i++) {
        kl_buffer *b = p->inputs.items[i], *flat;
        if (!padded_differs(b)) continue;
        move_to_workspace(p, b, &p->inputs, i, &flat);
        kl_kernel *k = copy_kernel(p, b, kl_sprintf(a, "copy_in%d", i));
        k->value = kl_e_load(a, flat, (kl_expr *[]){dense_offset(p, b)});
        k->out = b;
        k->out_idx = ivs(a, b->shape.rank);
        kl_program_add_kernel(p, k);
        kl_ptrvec_push(a, &before, k);
    }
    for (int i = 0; i < p->outputs.n; i++) {
        kl_buffer *b = p->outputs.items[i], *flat;
        if (!padded_differs(b)) continue;
        move_to_workspace(p, b, &p->outputs, i, &flat);
        kl_kernel *k = copy_kernel(p, b, kl_sprintf(a, "copy_out%d", i));
        k->value = kl_e_load(a, b, ivs(a, b->shape.rank));
        k->out = flat;
        k->out_idx = kl_alloc_array(a, 1, sizeof *k->out_idx);
        k->out_idx[0] = dense_offset(p, b);
        kl_program_add_kernel(p, k);
        kl_ptrvec_push(a, &after, k);
    }
    if (before.n + after.n == 0) return true;
    /* the copies-in first, the model's kernels, then the copies-out */
    kl_ptrvec order = {0};
    for (int i = 0; i < before.n; i++) kl_ptrvec_push(a, &order, before.items[i]);
    for (int i = 0; i < p->kernels.n; i++) {
        kl_kernel *k = p->kernels.items[i];
        bool copy = false;
        for (int j = 0; j < before.n && !copy; j++) copy = before.items[j] == k;
        for (int j = 0; j < after.n && !copy; j++) copy = after.items[j] == k;
        if (!copy) kl_ptrvec_push(a, &order, k);
    }
    for (int i = 0; i < after.n; i++) kl_ptrvec_push(a, &order, after.items[i]);
    p->kernels = order;
    return true;
}
