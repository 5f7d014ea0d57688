/*
 * test_bnfold.c — the bnfold pass: BatchNormalization and per-channel Mul / Add / Sub folded
 * into the Conv before them, with the arithmetic checked against values worked out by hand, and
 * the cases that must be left alone (the conv output read twice or a graph output, a constant
 * that is not per channel, training mode).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "graph_fixture.h"
#include "kl.h"

/* X [1,2,3,3] -> Conv(W [2,2,1,1], B [2]) -> conv output; returns the conv node. */
static kl_node *conv_1x1(fixture *f, bool with_bias) {
    static const float w[4] = {1, 2, 3, 4};
    static const float b[2] = {0.5f, -1};
    kl_value *in[3] = {input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 3}}),
                       constant(f, "w", KL_F32, (kl_shape){4, {2, 2, 1, 1}}, w),
                       with_bias ? constant(f, "b", KL_F32, (kl_shape){1, {2}}, b) : NULL};
    return inner_node(f, "Conv", 13, with_bias ? 3 : 2, in, 1);
}

static kl_node *batchnorm(fixture *f, kl_value *x, double eps) {
    static const float scale[2] = {2, 0.5f}, beta[2] = {1, 0}, mean[2] = {0.5f, 2},
                       var[2] = {3, 0.25f};
    kl_value *in[5] = {x, constant(f, "scale", KL_F32, (kl_shape){1, {2}}, scale),
                       constant(f, "beta", KL_F32, (kl_shape){1, {2}}, beta),
                       constant(f, "mean", KL_F32, (kl_shape){1, {2}}, mean),
                       constant(f, "var", KL_F32, (kl_shape){1, {2}}, var)};
    kl_node *n = inner_node(f, "BatchNormalization", 15, 5, in, 1);
    attr_float(f, n, "epsilon", eps);
    return n;
}

static int live_count(const kl_graph *g, const char *op) {
    int c = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        const kl_node *n = g->nodes.items[i];
        if (!n->dead && !strcmp(n->op_type, op)) c++;
    }
    return c;
}

static bool fold(fixture *f) {
    return run_passes(f) && pass_fold_batchnorm(f->g, &f->d) && pass_dead_nodes(f->g, &f->d);
}

static void expect_near(float got, double want) {
    cr_expect(fabs(got - want) <= 1e-6 * (1 + fabs(want)), "got %.9g want %.9g", got, want);
}

Test(bnfold, batchnorm_into_conv_weights_and_bias) {
    fixture f = fx();
    kl_node *conv = conv_1x1(&f, true);
    kl_node *bn = batchnorm(&f, conv->outputs[0], 1e-3);
    mark_output(&f, bn->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_expect_eq(live_count(f.g, "BatchNormalization"), 0);
    cr_expect_eq(live_count(f.g, "Conv"), 1);
    /* the conv now produces the graph output under its own name */
    cr_assert_eq(conv->outputs[0], bn->outputs[0]);
    cr_expect_eq(bn->outputs[0]->producer, conv);
    const float *w = conv->inputs[1]->data, *b = conv->inputs[2]->data;
    double s0 = 2 / sqrt(3 + 1e-3), s1 = 0.5 / sqrt(0.25 + 1e-3);
    expect_near(w[0], 1 * s0);
    expect_near(w[1], 2 * s0);
    expect_near(w[2], 3 * s1);
    expect_near(w[3], 4 * s1);
    expect_near(b[0], (0.5 - 0.5) * s0 + 1);
    expect_near(b[1], (-1 - 2) * s1 + 0);
    done(&f);
}

Test(bnfold, conv_without_bias_gets_one) {
    fixture f = fx();
    kl_node *conv = conv_1x1(&f, false);
    kl_node *bn = batchnorm(&f, conv->outputs[0], 1e-5);
    mark_output(&f, bn->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_assert_eq(conv->n_inputs, 3);
    const float *b = conv->inputs[2]->data;
    expect_near(b[0], -0.5 * 2 / sqrt(3 + 1e-5) + 1);
    expect_near(b[1], -2 * 0.5 / sqrt(0.25 + 1e-5));
    done(&f);
}

/* Conv -> Mul [2,1,1] -> Add [1,2,1,1] -> Sub scalar: all three fold, in order. */
Test(bnfold, mul_add_sub_chain) {
    fixture f = fx();
    kl_node *conv = conv_1x1(&f, true);
    kl_value *m_in[2] = {constant(&f, "c", KL_F32, (kl_shape){3, {2, 1, 1}}, (float[]){3, -2}),
                         conv->outputs[0]};
    kl_node *mul = inner_node(&f, "Mul", 13, 2, m_in, 1);
    kl_value *a_in[2] = {mul->outputs[0],
                         constant(&f, "d", KL_F32, (kl_shape){4, {1, 2, 1, 1}}, (float[]){1, 10})};
    kl_node *add = inner_node(&f, "Add", 13, 2, a_in, 1);
    kl_value *s_in[2] = {add->outputs[0], constant(&f, "e", KL_F32, (kl_shape){0, {0}},
                                                   (float[]){0.25f})};
    kl_node *sub = inner_node(&f, "Sub", 13, 2, s_in, 1);
    mark_output(&f, sub->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_expect_eq(live_count(f.g, "Mul") + live_count(f.g, "Add") + live_count(f.g, "Sub"), 0);
    cr_assert_eq(conv->outputs[0], sub->outputs[0]);
    const float *w = conv->inputs[1]->data, *b = conv->inputs[2]->data;
    expect_near(w[0], 3);
    expect_near(w[1], 6);
    expect_near(w[2], -6);
    expect_near(w[3], -8);
    expect_near(b[0], 0.5 * 3 + 1 - 0.25);
    expect_near(b[1], -1 * -2 + 10 - 0.25);
    done(&f);
}

Test(bnfold, float16_weights_rounded_once) {
    fixture f = fx();
    uint16_t w[2] = {kl_f32_to_f16(1.0f), kl_f32_to_f16(3.0f)};
    kl_value *in[2] = {input(&f, "x", KL_F16, (kl_shape){4, {1, 1, 2, 2}}),
                       constant(&f, "w", KL_F16, (kl_shape){4, {2, 1, 1, 1}}, w)};
    kl_node *conv = inner_node(&f, "Conv", 13, 2, in, 1);
    uint16_t c[2] = {kl_f32_to_f16(0.1f), kl_f32_to_f16(2.0f)};
    kl_value *m_in[2] = {conv->outputs[0], constant(&f, "c", KL_F16, (kl_shape){3, {2, 1, 1}}, c)};
    kl_node *mul = inner_node(&f, "Mul", 13, 2, m_in, 1);
    mark_output(&f, mul->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_assert_eq(conv->outputs[0], mul->outputs[0]);
    const uint16_t *wf = conv->inputs[1]->data;
    cr_expect_eq(wf[0], kl_f32_to_f16((float)(1.0 * kl_f16_to_f32(c[0]))));
    cr_expect_eq(wf[1], kl_f32_to_f16(6.0f));
    done(&f);
}

Test(bnfold, conv_output_read_twice_stays) {
    fixture f = fx();
    kl_node *conv = conv_1x1(&f, true);
    kl_node *bn = batchnorm(&f, conv->outputs[0], 1e-5);
    kl_value *r_in[1] = {conv->outputs[0]};
    kl_node *relu = inner_node(&f, "Relu", 13, 1, r_in, 1);
    mark_output(&f, bn->outputs[0]);
    mark_output(&f, relu->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_expect_eq(live_count(f.g, "BatchNormalization"), 1);
    done(&f);
}

Test(bnfold, conv_output_that_is_a_graph_output_stays) {
    fixture f = fx();
    kl_node *conv = conv_1x1(&f, true);
    kl_node *bn = batchnorm(&f, conv->outputs[0], 1e-5);
    mark_output(&f, conv->outputs[0]);
    mark_output(&f, bn->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_expect_eq(live_count(f.g, "BatchNormalization"), 1);
    done(&f);
}

Test(bnfold, constant_not_per_channel_stays) {
    fixture f = fx();
    kl_node *conv = conv_1x1(&f, true);
    float c[3] = {1, 2, 3};
    kl_value *m_in[2] = {conv->outputs[0], constant(&f, "c", KL_F32, (kl_shape){1, {3}}, c)};
    kl_node *mul = inner_node(&f, "Mul", 13, 2, m_in, 1);
    mark_output(&f, mul->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_expect_eq(live_count(f.g, "Mul"), 1);
    done(&f);
}

Test(bnfold, training_mode_stays) {
    fixture f = fx();
    kl_node *conv = conv_1x1(&f, true);
    kl_node *bn = batchnorm(&f, conv->outputs[0], 1e-5);
    attr_int(&f, bn, "training_mode", 1);
    mark_output(&f, bn->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_expect_eq(live_count(f.g, "BatchNormalization"), 1);
    done(&f);
}

/* ConvTranspose keeps output channels in W's second dim, per group: W [C, M/group, k..] with
 * C = 4, group 2, M = 6: W[c, j] belongs to output channel (c / 2) * 3 + j. */
Test(bnfold, conv_transpose_channels_per_group) {
    fixture f = fx();
    float w[4 * 3 * 2] = {0};
    for (int i = 0; i < 24; i++) w[i] = 1;
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 4, 2, 2}}),
                       constant(&f, "w", KL_F32, (kl_shape){4, {4, 3, 2, 1}}, w)};
    kl_node *ct = inner_node(&f, "ConvTranspose", 13, 2, in, 1);
    attr_int(&f, ct, "group", 2);
    float c[6] = {1, 2, 3, 4, 5, 6};
    kl_value *m_in[2] = {ct->outputs[0], constant(&f, "c", KL_F32, (kl_shape){3, {6, 1, 1}}, c)};
    kl_node *mul = inner_node(&f, "Mul", 13, 2, m_in, 1);
    kl_value *a_in[2] = {mul->outputs[0], constant(&f, "d", KL_F32, (kl_shape){4, {1, 6, 1, 1}}, c)};
    kl_node *add = inner_node(&f, "Add", 13, 2, a_in, 1);
    mark_output(&f, add->outputs[0]);
    cr_assert(fold(&f), "%s", f.d.text);
    cr_assert_eq(ct->outputs[0], add->outputs[0]);
    const float *wf = ct->inputs[1]->data, *b = ct->inputs[2]->data;
    for (int ch = 0; ch < 4; ch++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++)
                expect_near(wf[(ch * 3 + j) * 2 + k], c[(ch / 2) * 3 + j]);
    for (int m = 0; m < 6; m++) expect_near(b[m], c[m]);
    done(&f);
}
