/*
 * test_convtranspose.c — ConvTranspose lowered phase by phase (ops/conv_variants.c), checked
 * against a naive scatter written here: every input element times every tap, added where it
 * lands. That reference shares no code with kiln, so geometry, phases and padding are checked
 * together.
 *
 * Each case runs four ways, all through the kernel interpreter: ONNX's layout with W constant,
 * with W a graph input (no compile-time copy), channels-last (kiln.ConvTransposeNHWC made by the
 * layout pass), and channels-last after the kernel passes for an AVX-512 and an AVX2 target
 * (halo, tile: the blocked kernels must compute the same). The cases cover overlapping taps
 * (kernel > stride), strides larger than the kernel (phases no tap reaches: bias alone),
 * stride 1, dilations that share a factor with the stride, groups, output_padding, negative
 * pads from output_shape, auto_pad, and 1-D and 3-D. One more test checks that the phases of a
 * ppocr-like layer (24 -> 24 channels, kernel 2, stride 2) come out register-blocked.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "graph_fixture.h"
#include "kl.h"

/* ---- the cases ---------------------------------------------------------------------------- */

typedef struct ct_case {
    int nsp;
    int64_t batch, c, m, group;   /* m: output channels in all */
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6], out_pad[3];  /* begins, then ends */
    int64_t out_shape[3];         /* output_shape when out_shape[0] > 0 */
    const char *auto_pad;         /* NULL: not given */
    bool bias;
} ct_case;

/* Deterministic values in [-1, 1). */
static float *values(fixture *f, int64_t n, unsigned seed) {
    float *v = kl_alloc_array(f->a, (size_t)n + 1, sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) % 2000) / 1000.0f - 1.0f;
    }
    return v;
}

static int64_t span(const ct_case *t, int i) { return (t->k[i] - 1) * t->d[i] + 1; }
static int64_t full_size(const ct_case *t, int i) {
    return t->s[i] * (t->in[i] - 1) + t->out_pad[i] + span(t, i);
}

/* ONNX's rule for the pads: explicit, or total = full - output_shape split (SAME_UPPER puts the
 * odd one at the end). */
static void geometry(const ct_case *t, int64_t *pad_begin, int64_t *out) {
    bool upper = t->auto_pad && !strcmp(t->auto_pad, "SAME_UPPER");
    bool same = upper || (t->auto_pad && !strcmp(t->auto_pad, "SAME_LOWER"));
    for (int i = 0; i < t->nsp; i++) {
        if (t->out_shape[0] > 0 || same) {
            out[i] = t->out_shape[0] > 0 ? t->out_shape[i] : t->in[i] * t->s[i];
            int64_t total = full_size(t, i) - out[i];
            int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
            pad_begin[i] = upper ? half : total - half;
        } else {
            pad_begin[i] = t->pads[i];
            out[i] = full_size(t, i) - t->pads[i] - t->pads[i + t->nsp];
        }
    }
}

static int64_t numel(int nsp, const int64_t *d) {
    int64_t n = 1;
    for (int i = 0; i < nsp; i++) n *= d[i];
    return n;
}

/* Position `flat` of a box of sizes `d` as coordinates. */
static void unflatten(int nsp, const int64_t *d, int64_t flat, int64_t *at) {
    for (int i = nsp - 1; i >= 0; i--) {
        at[i] = flat % d[i];
        flat /= d[i];
    }
}

/* The naive scatter: Y [N, M, out..] (ONNX's layout). */
static double *reference(fixture *f, const ct_case *t, const float *x, const float *w,
                         const float *b) {
    int64_t pb[3], out[3];
    geometry(t, pb, out);
    int nsp = t->nsp;
    int64_t cg = t->c / t->group, mg = t->m / t->group;
    int64_t n_in = numel(nsp, t->in), n_out = numel(nsp, out), n_k = numel(nsp, t->k);
    double *y = kl_alloc_array(f->a, (size_t)(t->batch * t->m * n_out) + 1, sizeof *y);
    for (int64_t n = 0; n < t->batch; n++)
        for (int64_t m = 0; m < t->m; m++)
            for (int64_t o = 0; o < n_out; o++) y[(n * t->m + m) * n_out + o] = b ? b[m] : 0;
    for (int64_t n = 0; n < t->batch; n++)
        for (int64_t c = 0; c < t->c; c++)
            for (int64_t i = 0; i < n_in; i++)
                for (int64_t mm = 0; mm < mg; mm++)
                    for (int64_t k = 0; k < n_k; k++) {
                        int64_t ip[3], kp[3], o = 0;
                        unflatten(nsp, t->in, i, ip);
                        unflatten(nsp, t->k, k, kp);
                        bool inside = true;
                        for (int j = 0; j < nsp; j++) {
                            int64_t at = ip[j] * t->s[j] + kp[j] * t->d[j] - pb[j];
                            inside = inside && at >= 0 && at < out[j];
                            o = o * out[j] + at;
                        }
                        if (!inside) continue;
                        int64_t oc = c / cg * mg + mm;
                        y[(n * t->m + oc) * n_out + o] += (double)x[(n * t->c + c) * n_in + i] *
                                                          w[(c * mg + mm) * n_k + k];
                    }
    return y;
}

/* ---- the graph ---------------------------------------------------------------------------- */

typedef struct built {
    kl_value *y;
    float *x, *w, *b;  /* b: NULL without a bias */
} built;

static built build(fixture *f, const ct_case *t, bool w_const) {
    int nsp = t->nsp;
    kl_shape xs = {nsp + 2, {t->batch, t->c}}, ws = {nsp + 2, {t->c, t->m / t->group}};
    for (int i = 0; i < nsp; i++) {
        xs.dim[i + 2] = t->in[i];
        ws.dim[i + 2] = t->k[i];
    }
    built r = {.x = values(f, kl_shape_numel(&xs), 7), .w = values(f, kl_shape_numel(&ws), 13)};
    kl_value *in[3] = {input(f, "x", KL_F32, xs), NULL, NULL};
    in[1] = w_const ? constant(f, "w", KL_F32, ws, r.w) : input(f, "w", KL_F32, ws);
    if (t->bias) {
        r.b = values(f, t->m, 29);
        in[2] = constant(f, "b", KL_F32, (kl_shape){1, {t->m}}, r.b);
    }
    kl_node *n = inner_node(f, "ConvTranspose", 11, t->bias ? 3 : 2, in, 1);
    attr_ints(f, n, "kernel_shape", nsp, t->k);
    attr_ints(f, n, "strides", nsp, t->s);
    attr_ints(f, n, "dilations", nsp, t->d);
    if (t->group > 1) attr_int(f, n, "group", t->group);
    if (t->out_shape[0] > 0) attr_ints(f, n, "output_shape", nsp, t->out_shape);
    else if (!t->auto_pad) attr_ints(f, n, "pads", 2 * nsp, t->pads);
    if (t->auto_pad) attr_str(f, n, "auto_pad", t->auto_pad);
    bool any_out_pad = false;
    for (int i = 0; i < nsp; i++) any_out_pad = any_out_pad || t->out_pad[i];
    if (any_out_pad) attr_ints(f, n, "output_padding", nsp, t->out_pad);
    r.y = n->outputs[0];
    mark_output(f, r.y);
    return r;
}

/* Lower (and, with a target, run the kernel passes), then interpret on x (and w). */
static float *run(fixture *f, const built *b, const kl_target *target) {
    kl_program *p = kl_lower_graph(f->a, f->g, &f->d);
    cr_assert(p, "%s", f->d.text);
    if (target) {
        kl_kernel_opts o = {target, KL_MICRO_IR};
        for (const kl_kernel_pass *kp = kl_kernel_passes; kp->name; kp++)
            cr_assert(kp->run(p, &o, &f->d), "%s: %s", kp->name, f->d.text);
    }
    float *y = kl_alloc_array(f->a, (size_t)kl_shape_numel(&b->y->shape) + 1, sizeof *y);
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *buf = p->buffers.items[i];
        if (buf->view_of) continue;
        if (buf->kind == KL_BUF_CONST) buf->host = (void *)buf->data;
        else if (buf->kind == KL_BUF_INPUT) buf->host = buf->index == 0 ? b->x : b->w;
        else if (buf->kind == KL_BUF_OUTPUT) buf->host = y;
        else buf->host = kl_alloc(f->a, (size_t)kl_buffer_bytes(buf) + 1);
    }
    cr_assert(kl_interp_program(p, &f->d), "%s", f->d.text);
    return y;
}

typedef enum way { ONNX_CONST_W, ONNX_INPUT_W, NHWC, NHWC_AVX512, NHWC_AVX2 } way;
static const char *const way_names[] = {"ONNX layout, constant W", "ONNX layout, W an input",
                                        "channels-last", "channels-last, tiled for x86-64-v4",
                                        "channels-last, tiled for x86-64-v3"};

static void check_way(const ct_case *t, way how) {
    fixture f = fx();
    built b = build(&f, t, how != ONNX_INPUT_W);
    cr_assert(run_passes(&f), "%s", f.d.text);
    if (how >= NHWC) {
        cr_assert(pass_layout(f.g, &f.d) && pass_dead_nodes(f.g, &f.d), "%s", f.d.text);
        bool converted = false;
        for (int i = 0; i < f.g->nodes.n; i++) {
            const kl_node *n = f.g->nodes.items[i];
            converted = converted || (!n->dead && !strcmp(n->op_type, "ConvTransposeNHWC"));
        }
        cr_assert(converted, "no kiln.ConvTransposeNHWC after the layout pass");
    }
    const kl_target *target = how == NHWC_AVX512 ? kl_target_find("x86-64-v4")
                              : how == NHWC_AVX2 ? kl_target_find("x86-64-v3")
                                                 : NULL;
    float *got = run(&f, &b, target);
    double *want = reference(&f, t, b.x, b.w, b.b);
    int64_t count = kl_shape_numel(&b.y->shape);
    int64_t pb[3], out[3];
    geometry(t, pb, out);
    cr_assert_eq(count, t->batch * t->m * numel(t->nsp, out), "output shape");
    int bad = 0;
    for (int64_t i = 0; i < count && bad < 5; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])))) {
            cr_expect(false, "%s: element %lld is %.9g, want %.9g", way_names[how], (long long)i,
                      got[i], want[i]);
            bad++;
        }
    done(&f);
}

static void check(const ct_case *t) {
    for (way how = ONNX_CONST_W; how <= NHWC_AVX2; how++) check_way(t, how);
}

/* ---- phases ------------------------------------------------------------------------------- */

Test(convtranspose, kernel_equal_to_stride) {
    ct_case t = {.nsp = 2, .batch = 1, .c = 3, .m = 4, .group = 1, .in = {5, 4}, .k = {2, 2},
                 .s = {2, 2}, .d = {1, 1}, .bias = true};
    check(&t);
}

Test(convtranspose, kernel_larger_than_stride_overlaps) {
    ct_case t = {.nsp = 2, .batch = 2, .c = 2, .m = 3, .group = 1, .in = {4, 5}, .k = {3, 4},
                 .s = {2, 3}, .d = {1, 1}, .pads = {1, 0, 1, 2}, .out_pad = {1, 0},
                 .bias = true};
    check(&t);
}

Test(convtranspose, kernel_smaller_than_stride_leaves_bias_phases) {
    ct_case t = {.nsp = 2, .batch = 1, .c = 2, .m = 2, .group = 1, .in = {3, 3}, .k = {1, 2},
                 .s = {3, 3}, .d = {1, 1}, .out_pad = {2, 1}, .bias = true};
    check(&t);
    t.bias = false; /* those phases are 0 */
    check(&t);
}

Test(convtranspose, stride_one) {
    ct_case t = {.nsp = 2, .batch = 1, .c = 3, .m = 2, .group = 1, .in = {4, 4}, .k = {3, 3},
                 .s = {1, 1}, .d = {1, 1}, .pads = {1, 1, 1, 1}, .bias = true};
    check(&t);
}

Test(convtranspose, dilations_sharing_a_factor_with_the_stride) {
    /* d = 2, s = 2: odd phases get no tap at all; d = 3, s = 2: taps two apart */
    ct_case t = {.nsp = 2, .batch = 1, .c = 2, .m = 2, .group = 1, .in = {3, 4}, .k = {3, 3},
                 .s = {2, 2}, .d = {2, 3}, .pads = {1, 2, 0, 1}, .bias = true};
    check(&t);
}

Test(convtranspose, groups) {
    ct_case t = {.nsp = 2, .batch = 1, .c = 4, .m = 6, .group = 2, .in = {3, 4}, .k = {3, 3},
                 .s = {2, 2}, .d = {1, 1}, .pads = {1, 1, 1, 1}, .out_pad = {1, 1},
                 .bias = true};
    check(&t);
    ct_case dw = {.nsp = 2, .batch = 1, .c = 3, .m = 3, .group = 3, .in = {4, 4}, .k = {2, 2},
                  .s = {2, 2}, .d = {1, 1}};
    check(&dw);
}

Test(convtranspose, output_shape_larger_than_full_gives_negative_pads) {
    /* full = 2*2 + 3 = 7 per dim; output_shape 9 x 8: total padding -2 and -1 */
    ct_case t = {.nsp = 2, .batch = 1, .c = 2, .m = 2, .group = 1, .in = {3, 3}, .k = {3, 3},
                 .s = {2, 2}, .d = {1, 1}, .out_shape = {9, 8}, .bias = true};
    check(&t);
}

Test(convtranspose, auto_pad_same) {
    ct_case t = {.nsp = 2, .batch = 1, .c = 2, .m = 3, .group = 1, .in = {3, 4}, .k = {3, 2},
                 .s = {2, 3}, .d = {1, 1}, .auto_pad = "SAME_UPPER"};
    check(&t);
    t.auto_pad = "SAME_LOWER";
    check(&t);
}

Test(convtranspose, one_spatial_dim) {
    ct_case t = {.nsp = 1, .batch = 2, .c = 3, .m = 2, .group = 1, .in = {6}, .k = {4},
                 .s = {3}, .d = {1}, .pads = {1, 2}, .bias = true};
    check(&t);
}

Test(convtranspose, three_spatial_dims) {
    ct_case t = {.nsp = 3, .batch = 1, .c = 2, .m = 3, .group = 1, .in = {2, 3, 3},
                 .k = {2, 3, 2}, .s = {2, 1, 2}, .d = {1, 1, 2}, .pads = {0, 1, 1, 1, 0, 0},
                 .out_pad = {1, 0, 0}, .bias = true};
    check(&t);
}

/* ---- the schedule ------------------------------------------------------------------------- */

/* ppocr_det's decoder in small: 24 -> 24 channels, kernel 2, stride 2. Channels-last, every
 * phase is a 1x1 convolution the tile pass blocks: VECTOR over the output channels. */
Test(convtranspose, phases_are_register_blocked) {
    ct_case t = {.nsp = 2, .batch = 1, .c = 24, .m = 24, .group = 1, .in = {8, 8}, .k = {2, 2},
                 .s = {2, 2}, .d = {1, 1}, .bias = true};
    fixture f = fx();
    build(&f, &t, true);
    cr_assert(run_passes(&f) && pass_layout(f.g, &f.d) && pass_dead_nodes(f.g, &f.d), "%s",
              f.d.text);
    kl_program *p = kl_lower_graph(f.a, f.g, &f.d);
    cr_assert(p, "%s", f.d.text);
    kl_kernel_opts o = {kl_target_find("x86-64-v4"), KL_MICRO_IR};
    for (const kl_kernel_pass *kp = kl_kernel_passes; kp->name; kp++)
        cr_assert(kp->run(p, &o, &f.d), "%s", f.d.text);
    int phases = 0;
    for (int i = 0; i < p->kernels.n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        if (!k->node || strcmp(k->node->op_type, "ConvTransposeNHWC") || k->reduce == KL_RED_NONE)
            continue;
        phases++;
        cr_expect(k->n_block >= 1 && k->kind[k->n_par - 1] == KL_LOOP_VECTOR,
                  "kernel %s is not blocked", k->name);
        cr_expect(k->n_block < 2 || k->kind[k->n_par - 2] == KL_LOOP_UNROLL, "%s", k->name);
    }
    cr_expect_geq(phases, 4);
    done(&f);
}
