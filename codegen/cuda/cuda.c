/*
 * codegen/cuda/cuda.c — the CUDA back end's entry: kl_program -> object (or source, PTX,
 * cubin, or the host side as assembly / LLVM IR).
 *
 * The steps, in order: the launch plan of every kernel and the weights' layout (launch.c),
 * the program as CUDA C (source.c), NVRTC's cubin and PTX for the target's sm (nvrtc.c), the
 * cubin's check (cubin.c), and the host object (host.c). Everything is decided here, when
 * the model is compiled; the object only loads what was made.
 *
 * With o->cuda_emulate (tests on machines without a GPU) the image is the CUDA source behind
 * a marker instead of a cubin, and NVRTC is not needed: tests/cuda/fakecuda.c, standing in
 * for libcuda, compiles and runs that source on the CPU.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define EMULATE_MARKER "KILN-CUDA-EMULATE\n"

/* The functions the host side will look up: one per launch. */
static const char **launched_names(const kl_cu_program *cp, int *n) {
    const char **names = kl_alloc_array(cp->arena, (size_t)cp->n_groups + 1, sizeof *names);
    for (int i = 0; i < cp->n_groups; i++)
        names[i] = cp->groups[i].name;
    *n = cp->n_groups;
    return names;
}

static bool compile_image(const kl_cu_program *cp, const char *src, size_t len,
                          const kl_codegen_opts *o, kl_cu_image *img, kl_diag *d) {
    memset(img, 0, sizeof *img);
    if (o->cuda_emulate) {
        size_t m = strlen(EMULATE_MARKER);
        unsigned char *image = kl_alloc(cp->arena, m + len + 1);
        memcpy(image, EMULATE_MARKER, m);
        memcpy(image + m, src, len + 1);
        img->cubin = image;
        img->cubin_size = m + len + 1;
        return true;
    }
    bool has_weights = cp->weights_size > 0;
    if (!kl_cu_nvrtc(cp->arena, src, cp->t->sm, has_weights, img, d))
        return false;
    int n = 0;
    const char **names = launched_names(cp, &n);
    return kl_cu_check_cubin(img->cubin, img->cubin_size, cp->t->sm, names, n,
                             has_weights ? img->weights_symbol : NULL, d);
}

static bool is_small(kl_dtype t) { return t >= KL_F8E4M3FN && t <= KL_I2; }

static bool expr_has_small_types(const kl_expr *e) {
    if (!e) return false;
    if (is_small(e->dtype)) return true;
    if (e->kind == KL_E_LOAD)
        for (int d = 0; d < e->buf->shape.rank; d++)
            if (expr_has_small_types(e->idx[d])) return true;
    return expr_has_small_types(e->a) || expr_has_small_types(e->b) ||
           expr_has_small_types(e->c);
}

/* Whether a program computes on the float8 / float4 / int4 / int2 types anywhere (a buffer,
 * or a value inside a fused expression): then its source carries their conversions. */
bool kl_cu_program_has_small_types(const kl_program *p) {
    for (int i = 0; i < p->buffers.n; i++)
        if (is_small(((const kl_buffer *)p->buffers.items[i])->dtype)) return true;
    for (int i = 0; i < p->kernels.n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        if (is_small(k->acc_dtype) || expr_has_small_types(k->init) ||
            expr_has_small_types(k->value) || expr_has_small_types(k->result))
            return true;
    }
    return false;
}

bool kl_codegen_cuda(const kl_program *p, const kl_graph *g, const kl_codegen_opts *o,
                     const char *out_path, kl_diag *d) {
    if (!o || !o->target || !o->name || !*o->name || o->target->backend != KL_BACKEND_CUDA)
        return kl_error(d, NULL, "codegen (CUDA): no CUDA target or model name given");
    if (o->cuda_emulate && (o->emit == KL_EMIT_PTX || o->emit == KL_EMIT_CUBIN))
        return kl_error(d, NULL, "--cuda-emulate makes no PTX or cubin");
    for (int i = 0; i < p->buffers.n; i++) {
        const kl_buffer *b = p->buffers.items[i];
        if (b->dtype == KL_STRING)
            return kl_error(d, NULL, "the CUDA back end does not compute on string tensors "
                            "('%s'); compile the model for a CPU target", b->name);
    }
    kl_cu_program cp;
    if (!kl_cu_plan(p, o->target, &cp, d))
        return false;
    size_t len = 0;
    char *src = kl_cu_source(&cp, &len, d);
    if (!src)
        return false;
    bool ok;
    kl_cu_image img;
    if (o->emit == KL_EMIT_CUDA)
        ok = kl_write_file_atomic(out_path, src, len, d);
    else if (!compile_image(&cp, src, len, o, &img, d))
        ok = false;
    else if (o->emit == KL_EMIT_PTX)
        ok = kl_write_file_atomic(out_path, img.ptx, img.ptx_size - 1, d);
    else if (o->emit == KL_EMIT_CUBIN)
        ok = kl_write_file_atomic(out_path, img.cubin, img.cubin_size, d);
    else
        ok = kl_cu_emit_host(&cp, g, o, &img, out_path, d);
    free(src);
    return ok;
}
