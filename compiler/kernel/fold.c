/*
 * fold.c — the fold pass: algebra that is exact, applied to kernel expressions (kpass_fold).
 *
 * Lowering reads every operand from a buffer, even a one-element constant such as the 2 of
 * Pow(x, 2) or the eps of a LayerNorm: that costs a load per element and hides the value from
 * the back end. The pass turns loads of one-element constants into immediates, then rewrites
 * what is exactly equal:
 *   pow(x, 2) -> x * x    (both round the exact product once: the same bits, and no call)
 *   pow(x, 1) -> x
 * Nothing that changes a result is done (x / c stays a division: x * (1 / c) may round
 * differently).
 */
#include "kl.h"

static bool is_scalar_const_buffer(const kl_buffer *b) {
    const kl_buffer *r = kl_buffer_root((kl_buffer *)b);
    return r->kind == KL_BUF_CONST && r->data && kl_shape_numel(&b->shape) == 1;
}

static kl_expr *immediate(kl_arena *a, const kl_buffer *b) {
    const void *p = kl_buffer_root((kl_buffer *)b)->data;
    switch (b->dtype) {
    case KL_F32: return kl_e_const_f(a, KL_F32, *(const float *)p);
    case KL_F64: return kl_e_const_f(a, KL_F64, *(const double *)p);
    case KL_I64: return kl_e_const_i(a, KL_I64, *(const int64_t *)p);
    case KL_I32: return kl_e_const_i(a, KL_I32, *(const int32_t *)p);
    default: return NULL;
    }
}

static kl_expr *fold_load(void *ctx, kl_arena *a, const kl_expr *load) {
    (void)ctx;
    return load->kind == KL_E_LOAD && is_scalar_const_buffer(load->buf) ? immediate(a, load->buf)
                                                                        : NULL;
}

/* pow(x, c) for the exponents whose result is exact without the call. */
static kl_expr *fold_pow(kl_arena *a, kl_expr *e) {
    if (!e) return e;
    e->a = fold_pow(a, e->a);
    e->b = fold_pow(a, e->b);
    e->c = fold_pow(a, e->c);
    if (e->kind == KL_E_LOAD)
        for (int d = 0; d < e->buf->shape.rank; d++) e->idx[d] = fold_pow(a, e->idx[d]);
    if (e->kind != KL_E_BINARY || e->op != KL_POW || !kl_dtype_is_float(e->dtype) ||
        e->b->kind != KL_E_CONST || e->b->dtype != e->dtype)
        return e;
    if (e->b->f == 2.0) return kl_e_binary(a, KL_MUL, e->a, e->a);
    if (e->b->f == 1.0) return e->a;
    return e;
}

bool kpass_fold(kl_program *p, const kl_kernel_opts *o, kl_diag *d) {
    (void)o;
    (void)d;
    kl_expr *none[KL_MAX_LOOPS] = {0};
    for (int i = 0; i < p->kernels.n; i++) {
        kl_kernel *k = p->kernels.items[i];
        kl_kernel_rewrite(p->arena, k, none, fold_load, NULL); /* also makes the DAG k's own */
        k->init = fold_pow(p->arena, k->init);
        k->value = fold_pow(p->arena, k->value);
        k->result = fold_pow(p->arena, k->result);
    }
    return true;
}
