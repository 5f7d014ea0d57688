/*
 * program.c — a lowered model: buffers and kernels in execution order.
 */
#include <string.h>

#include "kl.h"

static bool expr_reads(const kl_expr *e, const kl_buffer *root) {
    if (!e) return false;
    if (e->kind == KL_E_STRING && e->buf && kl_buffer_root(e->buf) == root) return true;
    if (e->kind == KL_E_LOAD) {
        if (kl_buffer_root(e->buf) == root) return true;
        for (int d = 0; d < e->buf->shape.rank; d++)
            if (expr_reads(e->idx[d], root)) return true;
    }
    return expr_reads(e->a, root) || expr_reads(e->b, root) || expr_reads(e->c, root);
}

bool kl_guard_reads(const kl_kernel_guard *g, const kl_buffer *root) {
    for (; g; g = g->outer)
        if (kl_buffer_root(g->cond) == root) return true;
    return false;
}

bool kl_kernel_reads(const kl_kernel *k, const kl_buffer *root) {
    if (kl_guard_reads(k->guard, root)) return true;
    if (expr_reads(k->init, root) || expr_reads(k->value, root) || expr_reads(k->result, root))
        return true;
    for (int d = 0; d < k->out->shape.rank; d++)
        if (expr_reads(k->out_idx[d], root)) return true;
    for (int l = 0; l < k->n_loops; l++) /* a run-time extent (a count an earlier kernel wrote) */
        if (expr_reads(k->extent_expr[l], root)) return true;
    return false;
}

bool kl_kernel_bounded(const kl_program *p, const kl_kernel *k) {
    for (int l = 0; l < k->n_loops; l++)
        if (k->extent_expr[l]) return true;
    return p->dims && kl_kernel_reads(k, p->dims);
}

bool kl_program_data_dependent(const kl_program *p) {
    for (int i = 0; i < p->outputs.n; i++)
        if (kl_buffer_root(p->outputs.items[i])->dd_count) return true;
    return false;
}

kl_program *kl_program_new(kl_arena *a) {
    kl_program *p = kl_alloc(a, sizeof *p);
    p->arena = a;
    return p;
}

int64_t kl_buffer_bytes(const kl_buffer *b) {
    return kl_shape_numel(&b->shape) * (int64_t)kl_dtype_size(b->dtype);
}

kl_buffer *kl_program_buffer(kl_program *p, const char *name, kl_buffer_kind kind, kl_dtype t,
                             const kl_shape *s) {
    kl_buffer *b = kl_alloc(p->arena, sizeof *b);
    b->name = kl_strdup(p->arena, name);
    b->kind = kind;
    b->dtype = t;
    b->shape = *s;
    b->first_kernel = -1;
    b->last_kernel = -1;
    b->id = p->buffers.n;
    kl_ptrvec_push(p->arena, &p->buffers, b);
    return b;
}

/* Kernel names become symbol names in the object: keep them C identifiers. */
static char *c_ident(kl_arena *a, const char *s) {
    char *r = kl_strdup(a, s);
    for (char *c = r; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            *c = '_';
    return r;
}

kl_kernel *kl_kernel_new(kl_program *p, const kl_node *node, const char *tag) {
    kl_kernel *k = kl_alloc(p->arena, sizeof *k);
    k->node = node;
    k->task_loop = -1;
    k->name = c_ident(p->arena, kl_sprintf(p->arena, "k%d_%s", p->kernels.n,
                                           tag ? tag : node ? node->op_type : "kernel"));
    return k;
}

void kl_program_add_kernel(kl_program *p, kl_kernel *k) {
    /* the index in the name is assigned at creation; keep it meaningful if kernels were made
     * out of order */
    kl_ptrvec_push(p->arena, &p->kernels, k);
}

kl_buffer *kl_program_view(kl_program *p, kl_buffer *base, const kl_shape *s) {
    kl_buffer *root = kl_buffer_root(base);
    kl_buffer *v = kl_program_buffer(p, kl_sprintf(p->arena, "%s_view", root->name), root->kind,
                                     root->dtype, s);
    v->index = root->index;
    v->data = root->data;
    v->view_of = root;
    return v;
}

int64_t kl_kernel_iterations(const kl_kernel *k) {
    /* every extent is a tensor's dim, but their product over a whole nest need not fit:
       saturate (the figure only ranks and informs) */
    int64_t points = 1;
    for (int l = 0; l < k->n_loops; l++)
        points = kl_mul_saturate(points, k->extent[l] > 0 ? k->extent[l] : 0);
    return points;
}

int64_t kl_kernel_flops(const kl_kernel *k) {
    const kl_expr *v = k->value;
    if (k->reduce != KL_RED_SUM || !v || v->kind != KL_E_BINARY || v->op != KL_MUL) return 0;
    return kl_mul_saturate(2, kl_kernel_iterations(k));
}

/* ---------------------------------------------------------------- the string arena */

int64_t kl_program_string_bytes(const kl_program *p) {
    return p->strings ? kl_buffer_bytes(p->strings) - 16 : 0;
}

bool kl_program_size_strings(kl_program *p, int64_t bytes, kl_diag *d) {
    if (!p->strings) return true;
    if (bytes < 1 || bytes > KL_MAX_BYTES)
        return kl_error(d, NULL, "--string-bytes %lld is out of range [1, %lld]",
                        (long long)bytes, (long long)KL_MAX_BYTES);
    p->strings->shape.dim[0] = 2 + (bytes + 7) / 8;
    return true;
}

static bool uses_arena(const kl_expr *e, const kl_buffer *arena) {
    if (!e) return false;
    if (e->kind == KL_E_STRING && kl_strop_uses_arena((kl_strop)e->op)) return true;
    if (e->kind == KL_E_LOAD) {
        if (kl_buffer_root(e->buf) == arena) return true;
        for (int d = 0; d < e->buf->shape.rank; d++)
            if (uses_arena(e->idx[d], arena)) return true;
    }
    return uses_arena(e->a, arena) || uses_arena(e->b, arena) || uses_arena(e->c, arena);
}

bool kl_kernel_uses_string_arena(const kl_program *p, const kl_kernel *k) {
    if (!p->strings) return false;
    return kl_buffer_root(k->out) == p->strings || uses_arena(k->init, p->strings) ||
           uses_arena(k->value, p->strings) || uses_arena(k->result, p->strings);
}

void kl_program_strings_first(kl_program *p) {
    kl_kernel *reset = p->strings_reset;
    if (!reset || (p->kernels.n > 0 && p->kernels.items[0] == reset)) return;
    kl_ptrvec_push(p->arena, &p->kernels, reset);
    for (int i = p->kernels.n - 1; i > 0; i--) p->kernels.items[i] = p->kernels.items[i - 1];
    p->kernels.items[0] = reset;
}
