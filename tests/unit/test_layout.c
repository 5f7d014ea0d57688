/*
 * test_layout.c — the layout pass on small graphs built by hand: convolutions and pools become
 * kiln's channels-last operators, transposes sink through element-wise operators, reductions,
 * Concat, Slice and Pad and cancel between convolutions, graph outputs keep their layout and
 * name, and a graph without convolutions is left alone. Every graph is also run through the
 * kernel interpreter with and without the pass (the same inputs): the results must agree, so the
 * rewrites are checked for exactness and the channels-last kernels against the ONNX ones.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph_fixture.h"
#include "kl.h"

/* ---- building ---------------------------------------------------------------------------------- */

/* Deterministic values in [-1, 1). */
static float *values(fixture *f, int n, unsigned seed) {
    float *v = kl_alloc_array(f->a, (size_t)n, sizeof *v);
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) % 2000) / 1000.0f - 1.0f;
    }
    return v;
}

static kl_value *weights(fixture *f, const char *name, kl_shape s, unsigned seed) {
    return constant(f, name, KL_F32, s, values(f, (int)kl_shape_numel(&s), seed));
}

static kl_node *op1(fixture *f, const char *op, kl_value *x) {
    kl_value *in[1] = {x};
    return inner_node(f, op, 13, 1, in, 1);
}

static kl_node *op2(fixture *f, const char *op, kl_value *x, kl_value *y) {
    kl_value *in[2] = {x, y};
    return inner_node(f, op, 13, 2, in, 1);
}

/* Conv from c to m channels, a k x k kernel, padding k/2, with bias. (Shapes are only inferred
 * later: the caller says how many channels x has.) */
static kl_value *conv(fixture *f, kl_value *x, int c, int m, int k, unsigned seed) {
    kl_value *in[3] = {x, weights(f, "w", (kl_shape){4, {m, c, k, k}}, seed),
                       weights(f, "b", (kl_shape){1, {m}}, seed + 1)};
    kl_node *n = inner_node(f, "Conv", 13, 3, in, 1);
    int64_t p = k / 2;
    attr_ints(f, n, "pads", 4, (int64_t[]){p, p, p, p});
    return n->outputs[0];
}

static kl_value *reshape_to(fixture *f, kl_value *x, int n, const int64_t *dims) {
    kl_value *in[2] = {x, constant(f, "shape", KL_I64, (kl_shape){1, {n}}, dims)};
    return inner_node(f, "Reshape", 13, 2, in, 1)->outputs[0];
}

/* ---- running ------------------------------------------------------------------------------------ */

static bool passes(fixture *f, bool layout) {
    return run_passes(f) && pass_fold_batchnorm(f->g, &f->d) &&
           (!layout || pass_layout(f->g, &f->d)) && pass_dead_nodes(f->g, &f->d);
}

/* Lower the graph and run it in the interpreter: graph input 0 gets `in`, graph output `which`
 * goes to `out`. */
static void run(fixture *f, const float *in, int which, float *out) {
    kl_program *p = kl_lower_graph(f->a, f->g, &f->d);
    cr_assert(p, "%s", f->d.text);
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *b = p->buffers.items[i];
        if (b->view_of) continue;
        if (b->kind == KL_BUF_CONST) b->host = (void *)b->data;
        else if (b->kind == KL_BUF_INPUT) b->host = (void *)in;
        else if (b->kind == KL_BUF_OUTPUT && b->index == which) b->host = out;
        else b->host = kl_alloc(f->a, (size_t)kl_buffer_bytes(b) + 1);
    }
    cr_assert(kl_interp_program(p, &f->d), "%s", f->d.text);
}

typedef kl_value *(*graph_fn)(fixture *f);

/* Build the graph twice, with and without the pass, run both on the same input, compare. */
static void same_results(graph_fn build, fixture *with) {
    fixture plain = fx();
    kl_value *out0 = build(&plain);
    mark_output(&plain, out0);
    cr_assert(passes(&plain, false), "%s", plain.d.text);
    kl_value *out1 = build(with);
    mark_output(with, out1);
    cr_assert(passes(with, true), "%s", with->d.text);
    const kl_value *x = plain.g->inputs.items[0];
    int n_in = (int)kl_shape_numel(&x->shape), n_out = (int)kl_shape_numel(&out0->shape);
    float *in = values(&plain, n_in, 7);
    float *want = kl_alloc_array(plain.a, (size_t)n_out, sizeof *want);
    float *got = kl_alloc_array(with->a, (size_t)n_out, sizeof *got);
    run(&plain, in, out0->output_index, want);
    run(with, in, out1->output_index, got);
    cr_assert(kl_shape_equal(&out0->shape, &out1->shape));
    for (int i = 0; i < n_out; i++)
        cr_expect(fabsf(got[i] - want[i]) <= 1e-5f * (1 + fabsf(want[i])),
                  "element %d: %.9g with the pass, %.9g without", i, got[i], want[i]);
    done(&plain);
}

/* ---- looking at the result ---------------------------------------------------------------------- */

static int count_ops(const kl_graph *g, const char *op) {
    int c = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        const kl_node *n = g->nodes.items[i];
        if (!n->dead && !strcmp(n->op_type, op)) c++;
    }
    return c;
}

/* The dump, as --dump-ir layout prints it. */
static char *dump(fixture *f) {
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    kl_graph_dump(f->g, m);
    fclose(m);
    char *copy = kl_strdup(f->a, text);
    free(text);
    return copy;
}

static int occurrences(const char *text, const char *what) {
    int c = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) c++;
    return c;
}

/* The live node producing v. */
static const kl_node *producer(const kl_value *v) { return v->producer; }

/* ---- graphs ------------------------------------------------------------------------------------- */

/* x [1,3,6,6] -> Conv 3x3 -> BatchNormalization -> Relu -> MaxPool 2x2 -> Conv 1x1 -> Add(the
 * pool output) -> Relu -> GlobalAveragePool -> Flatten: a residual block in miniature. */
static kl_value *residual(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 3, 6, 6}});
    kl_value *c1 = conv(f, x, 3, 4, 3, 11);
    kl_value *bn_in[5] = {c1, weights(f, "s", (kl_shape){1, {4}}, 21),
                          weights(f, "beta", (kl_shape){1, {4}}, 22),
                          weights(f, "mean", (kl_shape){1, {4}}, 23),
                          constant(f, "var", KL_F32, (kl_shape){1, {4}},
                                   (float[]){0.5f, 1, 2, 0.25f})};
    kl_value *bn = inner_node(f, "BatchNormalization", 15, 5, bn_in, 1)->outputs[0];
    kl_value *r = op1(f, "Relu", bn)->outputs[0];
    kl_node *mp = op1(f, "MaxPool", r);
    attr_ints(f, mp, "kernel_shape", 2, (int64_t[]){2, 2});
    attr_ints(f, mp, "strides", 2, (int64_t[]){2, 2});
    kl_value *c2 = conv(f, mp->outputs[0], 4, 4, 1, 31);
    kl_value *sum = op2(f, "Add", c2, mp->outputs[0])->outputs[0];
    kl_value *r2 = op1(f, "Relu", sum)->outputs[0];
    kl_value *gap = op1(f, "GlobalAveragePool", r2)->outputs[0];
    return op1(f, "Flatten", gap)->outputs[0];
}

Test(layout, residual_block_keeps_activations_channels_last) {
    fixture f = fx();
    same_results(residual, &f);
    cr_expect_eq(count_ops(f.g, "BatchNormalization"), 0);
    cr_expect_eq(count_ops(f.g, "ConvNHWC"), 2);
    cr_expect_eq(count_ops(f.g, "MaxPoolNHWC"), 1);
    cr_expect_eq(count_ops(f.g, "Conv") + count_ops(f.g, "MaxPool"), 0);
    cr_expect_eq(count_ops(f.g, "GlobalAveragePool"), 0);
    /* the input's conversion only: the mean's result [1,1,1,4] is flattened as it is */
    char *text = dump(&f);
    cr_expect_eq(occurrences(text, "= Transpose("), 1, "%s", text);
    cr_expect(strstr(text, "float32[1,4] = Reshape(%GlobalAveragePool") != NULL, "%s", text);
    cr_expect(strstr(text, "float32[1,6,6,4] = kiln.ConvNHWC(") != NULL, "%s", text);
    cr_expect(strstr(text, "= ReduceMean(") && strstr(text, "{axes=[1,2], keepdims=1}"), "%s",
              text);
    done(&f);
}

/* x -> Conv -> Relu -> Conv: the only transposes left are at the graph's edges. */
static kl_value *two_convs(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 5, 4}});
    kl_value *r = op1(f, "Relu", conv(f, x, 2, 3, 3, 41))->outputs[0];
    return conv(f, r, 3, 2, 3, 51);
}

Test(layout, transposes_cancel_between_convolutions) {
    fixture f = fx();
    same_results(two_convs, &f);
    cr_expect_eq(count_ops(f.g, "Transpose"), 2);
    kl_value *out = f.g->outputs.items[0];
    /* the output keeps its value, name and ONNX layout, made by the last transpose */
    cr_expect_str_eq(producer(out)->op_type, "Transpose");
    cr_expect(strstr(out->name, "Conv") != NULL);
    cr_expect_eq(out->shape.dim[1], 2);
    const kl_node *second = producer(producer(out)->inputs[0]);
    cr_expect_str_eq(second->op_type, "ConvNHWC");
    cr_expect_str_eq(producer(second->inputs[0])->op_type, "Relu");
    cr_expect_str_eq(producer(producer(second->inputs[0])->inputs[0])->op_type, "ConvNHWC");
    done(&f);
}

/* Conv -> Add of a constant [2,1,3] (not per channel: no fold) -> Relu -> Conv. */
static kl_value *add_constant(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 1, 4, 3}});
    kl_value *c = conv(f, x, 1, 2, 1, 61);
    kl_value *k = constant(f, "k", KL_F32, (kl_shape){3, {2, 1, 3}}, (float[]){1, 2, 3, 4, 5, 6});
    kl_value *r = op1(f, "Relu", op2(f, "Add", c, k)->outputs[0])->outputs[0];
    return conv(f, r, 2, 1, 1, 71);
}

Test(layout, constant_operand_transposed_at_compile_time) {
    fixture f = fx();
    same_results(add_constant, &f);
    cr_expect_eq(count_ops(f.g, "Transpose"), 2);
    const kl_node *add = NULL;
    for (int i = 0; i < f.g->nodes.n; i++)
        if (!strcmp(((kl_node *)f.g->nodes.items[i])->op_type, "Add")) add = f.g->nodes.items[i];
    cr_assert(add);
    const kl_value *k = add->inputs[1];
    /* [2,1,3] -> [1,2,1,3] -> channels-last [1,1,3,2]: k'[0,0,w,c] = k[c,0,w] */
    cr_assert_eq(k->shape.rank, 4);
    cr_expect(k->shape.dim[2] == 3 && k->shape.dim[3] == 2);
    const float *v = k->data;
    const float want[6] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++) cr_expect_eq(v[i], want[i], "element %d", i);
    done(&f);
}

/* Conv -> ReduceMean over H and W without keepdims: reads the channels-last value directly. */
static kl_value *mean_no_keepdims(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {2, 3, 4, 4}});
    kl_node *m = op1(f, "ReduceMean", conv(f, x, 3, 5, 3, 81));
    attr_ints(f, m, "axes", 2, (int64_t[]){2, 3});
    attr_int(f, m, "keepdims", 0);
    return m->outputs[0];
}

Test(layout, reduction_without_keepdims_needs_no_transpose_after) {
    fixture f = fx();
    same_results(mean_no_keepdims, &f);
    cr_expect_eq(count_ops(f.g, "Transpose"), 1); /* the input's */
    char *text = dump(&f);
    cr_expect(strstr(text, "{axes=[1,2], keepdims=0}") != NULL, "%s", text);
    done(&f);
}

/* Two branches -> Concat on channels -> Slice of channels -> Pad -> AveragePool -> Conv. */
static kl_value *concat_slice_pad(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 4, 4}});
    kl_value *a = op1(f, "Sigmoid", conv(f, x, 2, 3, 1, 91))->outputs[0];
    kl_value *b = op1(f, "Tanh", conv(f, x, 2, 2, 3, 101))->outputs[0];
    kl_node *cat = op2(f, "Concat", a, b);
    attr_int(f, cat, "axis", 1);
    kl_value *s_in[4] = {cat->outputs[0], constant(f, "st", KL_I64, (kl_shape){1, {1}}, (int64_t[]){1}),
                         constant(f, "en", KL_I64, (kl_shape){1, {1}}, (int64_t[]){5}),
                         constant(f, "ax", KL_I64, (kl_shape){1, {1}}, (int64_t[]){1})};
    kl_value *sl = inner_node(f, "Slice", 13, 4, s_in, 1)->outputs[0];
    kl_value *p_in[2] = {sl, constant(f, "pads", KL_I64, (kl_shape){1, {8}},
                                      (int64_t[]){0, 0, 1, 0, 0, 0, 0, 2})};
    kl_value *pad = inner_node(f, "Pad", 13, 2, p_in, 1)->outputs[0];
    kl_node *ap = op1(f, "AveragePool", pad);
    attr_ints(f, ap, "kernel_shape", 2, (int64_t[]){2, 2});
    attr_ints(f, ap, "pads", 4, (int64_t[]){1, 1, 0, 0});
    return conv(f, ap->outputs[0], 4, 2, 1, 111);
}

Test(layout, concat_slice_pad_and_pool_stay_channels_last) {
    fixture f = fx();
    same_results(concat_slice_pad, &f);
    cr_expect_eq(count_ops(f.g, "AveragePoolNHWC"), 1);
    char *text = dump(&f);
    /* one conversion of x (shared by both convolutions), one of the result */
    cr_expect_eq(occurrences(text, "= Transpose("), 2, "%s", text);
    cr_expect(strstr(text, "{axis=3}") != NULL, "%s", text);
    done(&f);
}

/* Softmax over channels after a convolution, opset 13: the axis follows the channels. */
static kl_value *softmax_channels(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 3}});
    kl_node *s = op1(f, "Softmax", conv(f, x, 2, 4, 3, 121));
    attr_int(f, s, "axis", 1);
    return conv(f, s->outputs[0], 4, 2, 1, 131);
}

Test(layout, softmax_axis_remapped) {
    fixture f = fx();
    same_results(softmax_channels, &f);
    cr_expect_eq(count_ops(f.g, "Transpose"), 2);
    char *text = dump(&f);
    cr_expect(strstr(text, "= Softmax(") && strstr(text, "{axis=3}"), "%s", text);
    done(&f);
}

/* A transpose read twice, once by a graph output: sinking it through the Relu would leave two
 * transposes where there was one, so the pass keeps it where it is. */
static kl_value *fan_out(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 3}});
    kl_value *c = conv(f, x, 2, 2, 1, 141);
    kl_value *e = op1(f, "Exp", c)->outputs[0];
    mark_output(f, op1(f, "Neg", e)->outputs[0]);
    return op1(f, "Sigmoid", e)->outputs[0];
}

Test(layout, never_more_transposes) {
    fixture f = fx();
    same_results(fan_out, &f);
    /* x's conversion, then one conversion back before Exp's two readers (sunk through Exp and
     * then through both, it would take two) */
    cr_expect_eq(count_ops(f.g, "Transpose"), 2);
    done(&f);
}

/* No convolution, no pool: the pass changes nothing, even with transposes to cancel. */
Test(layout, graph_without_convolutions_is_left_alone) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){3, {2, 3, 4}});
    kl_node *t1 = op1(&f, "Transpose", x);
    attr_ints(&f, t1, "perm", 3, (int64_t[]){2, 0, 1});
    kl_node *t2 = op1(&f, "Transpose", t1->outputs[0]);
    attr_ints(&f, t2, "perm", 3, (int64_t[]){1, 2, 0});
    kl_value *y = op1(&f, "Relu", t2->outputs[0])->outputs[0];
    mark_output(&f, y);
    cr_assert(run_passes(&f), "%s", f.d.text);
    char *before = dump(&f);
    cr_assert(pass_layout(f.g, &f.d), "%s", f.d.text);
    cr_expect_str_eq(dump(&f), before);
    done(&f);
}

/* With a convolution present, Transpose(Transpose(x)) composing to the identity goes away. */
static kl_value *inverse_pair(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 4}});
    kl_node *t1 = op1(f, "Transpose", x);
    attr_ints(f, t1, "perm", 4, (int64_t[]){0, 2, 3, 1});
    kl_node *t2 = op1(f, "Transpose", op1(f, "Relu", t1->outputs[0])->outputs[0]);
    attr_ints(f, t2, "perm", 4, (int64_t[]){0, 3, 1, 2});
    return conv(f, t2->outputs[0], 2, 2, 1, 151);
}

Test(layout, inverse_transposes_cancel) {
    fixture f = fx();
    same_results(inverse_pair, &f);
    /* the pair cancels through the Relu; x's conversion to channels-last is left, and the
     * result's conversion back */
    cr_expect_eq(count_ops(f.g, "Transpose"), 2);
    done(&f);
}

/* A model's own Transpose after a convolution folds into the conversion back. */
static kl_value *merged_pair(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 4}});
    kl_node *t = op1(f, "Transpose", conv(f, x, 2, 3, 1, 161));
    attr_ints(f, t, "perm", 4, (int64_t[]){0, 2, 1, 3});
    return t->outputs[0];
}

Test(layout, transposes_in_a_row_merge) {
    fixture f = fx();
    same_results(merged_pair, &f);
    cr_expect_eq(count_ops(f.g, "Transpose"), 2);
    const kl_node *last = producer(f.g->outputs.items[0]);
    const int64_t *perm;
    cr_assert_eq(kl_attr_ints(last, "perm", &perm), 4);
    /* NHWC [n,h,w,c] to [n,h,c,w]: (0,2,1,3) after (0,3,1,2) */
    cr_expect(perm[0] == 0 && perm[1] == 1 && perm[2] == 3 && perm[3] == 2);
    done(&f);
}

/* ReduceMax over H alone without keepdims: the result [N,C,W] comes back from [N,W,C] through a
 * transpose of its own. */
static kl_value *max_over_h(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 4}});
    kl_node *m = op1(f, "ReduceMax", conv(f, x, 2, 3, 3, 171));
    attr_ints(f, m, "axes", 1, (int64_t[]){2});
    attr_int(f, m, "keepdims", 0);
    return m->outputs[0];
}

Test(layout, reduction_of_one_axis_without_keepdims) {
    fixture f = fx();
    same_results(max_over_h, &f);
    const kl_node *last = producer(f.g->outputs.items[0]);
    cr_assert_str_eq(last->op_type, "Transpose");
    const int64_t *perm;
    cr_assert_eq(kl_attr_ints(last, "perm", &perm), 3);
    cr_expect(perm[0] == 0 && perm[1] == 2 && perm[2] == 1);
    done(&f);
}

/* Conv -> Split on channels -> one half upsampled by Resize (scales) and cropped back by Slice,
 * the other Relu -> Concat -> Conv. */
static kl_value *split_resize(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 4}});
    kl_value *s_in[2] = {conv(f, x, 2, 4, 1, 181),
                         constant(f, "split", KL_I64, (kl_shape){1, {2}}, (int64_t[]){1, 3})};
    kl_node *sp = inner_node(f, "Split", 13, 2, s_in, 2);
    attr_int(f, sp, "axis", 1);
    kl_value *r_in[3] = {sp->outputs[0], constant(f, "roi", KL_F32, (kl_shape){1, {0}}, (float[]){0}),
                         constant(f, "scales", KL_F32, (kl_shape){1, {4}},
                                  (float[]){1, 1, 2, 2})};
    kl_node *rs = inner_node(f, "Resize", 13, 3, r_in, 1);
    attr_str(f, rs, "mode", "linear");
    kl_value *c_in[5] = {rs->outputs[0],
                         constant(f, "st", KL_I64, (kl_shape){1, {2}}, (int64_t[]){0, 1}),
                         constant(f, "en", KL_I64, (kl_shape){1, {2}}, (int64_t[]){6, 5}),
                         constant(f, "ax", KL_I64, (kl_shape){1, {2}}, (int64_t[]){2, -1}),
                         constant(f, "steps", KL_I64, (kl_shape){1, {2}}, (int64_t[]){2, 1})};
    kl_value *crop = inner_node(f, "Slice", 13, 5, c_in, 1)->outputs[0];
    kl_value *relu = op1(f, "Relu", sp->outputs[1])->outputs[0];
    kl_node *cat = op2(f, "Concat", crop, relu);
    attr_int(f, cat, "axis", -3);
    return conv(f, cat->outputs[0], 4, 2, 1, 191);
}

Test(layout, split_resize_slice_follow_the_channels) {
    fixture f = fx();
    same_results(split_resize, &f);
    cr_expect_eq(count_ops(f.g, "Transpose"), 2, "%s", dump(&f));
    done(&f);
}

/* A channel shuffle: Conv -> Reshape [N,2,C/2,H,W] -> Transpose(0,2,1,3,4) -> Reshape [N,C,H,W]
 * -> Conv. The shuffle itself stays, done channels-last; nothing else does. */
static kl_value *shuffle(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 3}});
    kl_value *split = reshape_to(f, conv(f, x, 2, 6, 3, 201), 5, (int64_t[]){1, 2, 3, 3, 3});
    kl_node *t = op1(f, "Transpose", split);
    attr_ints(f, t, "perm", 5, (int64_t[]){0, 2, 1, 3, 4});
    kl_value *merged = reshape_to(f, t->outputs[0], 4, (int64_t[]){1, 6, 3, 3});
    return conv(f, merged, 6, 2, 1, 211);
}

Test(layout, channel_shuffle_keeps_one_transpose) {
    fixture f = fx();
    same_results(shuffle, &f);
    char *text = dump(&f);
    cr_expect_eq(count_ops(f.g, "Transpose"), 3, "%s", text);
    cr_expect(strstr(text, "float32[1,3,3,3,2] = Transpose(") && strstr(text, "{perm=[0,1,2,4,3]}"),
              "%s", text);
    done(&f);
}

/* A decoder's upsampling: Conv -> Relu -> ConvTranspose (kernel 2, stride 2) -> Relu -> Conv.
 * The ConvTranspose becomes kiln.ConvTransposeNHWC and the activations stay channels-last
 * through it: the only transposes left are the graph's edges. */
static kl_value *upsampling(fixture *f) {
    kl_value *x = input(f, "x", KL_F32, (kl_shape){4, {1, 2, 3, 4}});
    kl_value *r = op1(f, "Relu", conv(f, x, 2, 4, 3, 221))->outputs[0];
    kl_value *in[3] = {r, weights(f, "wt", (kl_shape){4, {4, 3, 2, 2}}, 231),
                       weights(f, "bt", (kl_shape){1, {3}}, 241)};
    kl_node *ct = inner_node(f, "ConvTranspose", 13, 3, in, 1);
    attr_ints(f, ct, "strides", 2, (int64_t[]){2, 2});
    kl_value *r2 = op1(f, "Relu", ct->outputs[0])->outputs[0];
    return conv(f, r2, 3, 2, 3, 251);
}

Test(layout, convtranspose_stays_channels_last_between_convolutions) {
    fixture f = fx();
    same_results(upsampling, &f);
    char *text = dump(&f);
    cr_expect_eq(count_ops(f.g, "ConvTranspose"), 0, "%s", text);
    cr_expect_eq(count_ops(f.g, "ConvTransposeNHWC"), 1, "%s", text);
    cr_expect_eq(count_ops(f.g, "Transpose"), 2, "%s", text);
    cr_expect(strstr(text, "float32[1,6,8,3] = kiln.ConvTransposeNHWC(") != NULL, "%s", text);
    /* the edges only: x's conversion feeds the first convolution, the result's comes last */
    const kl_node *last = producer(f.g->outputs.items[0]);
    cr_assert_str_eq(last->op_type, "Transpose");
    const kl_node *conv2 = producer(last->inputs[0]);
    cr_expect_str_eq(conv2->op_type, "ConvNHWC");
    const kl_node *relu = producer(conv2->inputs[0]);
    cr_expect_str_eq(relu->op_type, "Relu");
    cr_expect_str_eq(producer(relu->inputs[0])->op_type, "ConvTransposeNHWC");
    done(&f);
}
