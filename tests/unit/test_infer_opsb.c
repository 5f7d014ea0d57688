/*
 * test_infer_opsb.c — shape inference, error messages and constant folding of the ops-B family
 * (MatMul, Gemm, Conv, ConvTranspose, pools) through the real passes and op table, on graphs
 * built by hand. Folding runs the operators' own lowering in the interpreter, so the value
 * tests here check the kernels too.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "graph_fixture.h"
#include "kl.h"

/* A float32 constant filled with 1, 2, 3, ... (or `fill` everywhere when fill != 0). */
static kl_value *const_f32(fixture *f, const char *name, kl_shape s, float fill) {
    kl_value *v = kl_value_new(f->g, name);
    v->dtype = KL_F32;
    v->shape = s;
    v->has_shape = true;
    int64_t n = kl_shape_numel(&s);
    float *data = kl_alloc(f->a, (size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) data[i] = fill != 0 ? fill : (float)(i + 1);
    v->data = data;
    return v;
}

/* ---- MatMul / Gemm ---- */

Test(infer_opsb, matmul_1d_times_3d_drops_the_added_dim) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){1, {4}}),
                       input(&f, "b", KL_F32, (kl_shape){3, {2, 4, 1}})};
    kl_node *n = node(&f, "MatMul", 13, 2, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {2, 1}});
    done(&f);
}

Test(infer_opsb, matmul_broadcasts_batch_dims) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){4, {3, 1, 3, 4}}),
                       input(&f, "b", KL_F32, (kl_shape){4, {1, 2, 4, 2}})};
    kl_node *n = node(&f, "MatMul", 13, 2, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {3, 2, 3, 2}});
    done(&f);
}

Test(infer_opsb, matmul_inner_mismatch_is_an_error) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){2, {3, 4}}),
                       input(&f, "b", KL_F32, (kl_shape){2, {5, 2}})};
    node(&f, "MatMul", 13, 2, in, 1);
    cr_assert_not(run_passes(&f));
    cr_expect(strstr(f.d.text, "A has K = 4, B has K = 5") != NULL, "%s", f.d.text);
    done(&f);
}

Test(infer_opsb, matmul_folds_with_constant_operands) {
    fixture f = fx();
    /* [[1,2,3],[4,5,6]] x [[1,2],[3,4],[5,6]] = [[22,28],[49,64]] (B goes through the
     * transposed-weights path) */
    kl_value *in[2] = {const_f32(&f, "a", (kl_shape){2, {2, 3}}, 0),
                       const_f32(&f, "b", (kl_shape){2, {3, 2}}, 0)};
    kl_node *n = node(&f, "MatMul", 13, 2, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    const float *y = n->outputs[0]->data;
    cr_assert(y != NULL);
    cr_expect(y[0] == 22 && y[1] == 28 && y[2] == 49 && y[3] == 64, "%g %g %g %g", y[0], y[1],
              y[2], y[3]);
    done(&f);
}

Test(infer_opsb, gemm_transposes_and_checks_c) {
    fixture f = fx();
    kl_value *in[3] = {input(&f, "a", KL_F32, (kl_shape){2, {4, 3}}),
                       input(&f, "b", KL_F32, (kl_shape){2, {5, 4}}),
                       input(&f, "c", KL_F32, (kl_shape){2, {1, 5}})};
    kl_node *n = node(&f, "Gemm", 13, 3, in, 1);
    attr_int(&f, n, "transA", 1);
    attr_int(&f, n, "transB", 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {3, 5}});
    done(&f);
}

Test(infer_opsb, gemm_c_that_does_not_broadcast_is_an_error) {
    fixture f = fx();
    kl_value *in[3] = {input(&f, "a", KL_F32, (kl_shape){2, {2, 3}}),
                       input(&f, "b", KL_F32, (kl_shape){2, {3, 4}}),
                       input(&f, "c", KL_F32, (kl_shape){1, {3}})};
    node(&f, "Gemm", 13, 3, in, 1);
    cr_assert_not(run_passes(&f));
    cr_expect(strstr(f.d.text, "C of shape [3] cannot be broadcast to [2,4]") != NULL, "%s",
              f.d.text);
    done(&f);
}

/* ---- Conv / ConvTranspose ---- */

Test(infer_opsb, conv_stride_and_pads) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 3, 224, 224}}),
                       const_f32(&f, "w", (kl_shape){4, {64, 3, 7, 7}}, 1)};
    kl_node *n = node(&f, "Conv", 11, 2, in, 1);
    attr_ints(&f, n, "strides", 2, (int64_t[]){2, 2});
    attr_ints(&f, n, "pads", 4, (int64_t[]){3, 3, 3, 3});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {1, 64, 112, 112}});
    done(&f);
}

Test(infer_opsb, conv_same_lower_and_depthwise) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 8, 15, 15}}),
                       const_f32(&f, "w", (kl_shape){4, {16, 1, 3, 3}}, 1)};
    kl_node *n = node(&f, "Conv", 11, 2, in, 1);
    attr_int(&f, n, "group", 8);
    attr_str(&f, n, "auto_pad", "SAME_LOWER");
    attr_ints(&f, n, "strides", 2, (int64_t[]){2, 2});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {1, 16, 8, 8}});
    done(&f);
}

Test(infer_opsb, conv_channel_mismatch_is_an_error) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 3, 8, 8}}),
                       const_f32(&f, "w", (kl_shape){4, {4, 2, 3, 3}}, 1)};
    node(&f, "Conv", 11, 2, in, 1);
    cr_assert_not(run_passes(&f));
    cr_expect(strstr(f.d.text, "X has 3 channels but W expects 2 x group 1") != NULL, "%s",
              f.d.text);
    done(&f);
}

Test(infer_opsb, conv_folds_with_padding) {
    fixture f = fx();
    /* 3x3 input 1..9, 2x2 kernel of ones, pads 1: corners are single values, centre sums */
    kl_value *in[2] = {const_f32(&f, "x", (kl_shape){4, {1, 1, 3, 3}}, 0),
                       const_f32(&f, "w", (kl_shape){4, {1, 1, 2, 2}}, 1)};
    kl_node *n = node(&f, "Conv", 11, 2, in, 1);
    attr_ints(&f, n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {1, 1, 4, 4}});
    const float *y = n->outputs[0]->data;
    cr_assert(y != NULL);
    cr_expect(y[0] == 1 && y[3] == 3 && y[5] == 12 && y[15] == 9, "%g %g %g %g", y[0], y[3], y[5],
              y[15]);
    done(&f);
}

Test(infer_opsb, convtranspose_output_shape_sets_the_pads) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 1, 3, 3}}),
                       const_f32(&f, "w", (kl_shape){4, {1, 2, 3, 3}}, 1)};
    kl_node *n = node(&f, "ConvTranspose", 11, 2, in, 1);
    attr_ints(&f, n, "strides", 2, (int64_t[]){3, 2});
    attr_ints(&f, n, "output_shape", 2, (int64_t[]){10, 8});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {1, 2, 10, 8}});
    done(&f);
}

/* ---- pools ---- */

Test(infer_opsb, maxpool_ceil_mode_and_indices) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 1, 4, 4}})};
    kl_node *n = node(&f, "MaxPool", 12, 1, in, 2);
    attr_int(&f, n, "ceil_mode", 1);
    attr_ints(&f, n, "kernel_shape", 2, (int64_t[]){3, 3});
    attr_ints(&f, n, "strides", 2, (int64_t[]){2, 2});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {1, 1, 2, 2}});
    cr_expect_eq(n->outputs[1]->dtype, KL_I64);
    done(&f);
}

Test(infer_opsb, ceil_mode_drops_a_window_starting_in_the_end_padding) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 1, 2, 2}})};
    kl_node *n = node(&f, "MaxPool", 12, 1, in, 1);
    attr_int(&f, n, "ceil_mode", 1);
    attr_ints(&f, n, "kernel_shape", 2, (int64_t[]){1, 1});
    attr_ints(&f, n, "strides", 2, (int64_t[]){2, 2});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {1, 1, 1, 1}});
    done(&f);
}

Test(infer_opsb, pool_without_kernel_shape_is_an_error) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 1, 4, 4}})};
    node(&f, "AveragePool", 11, 1, in, 1);
    cr_assert_not(run_passes(&f));
    cr_expect(strstr(f.d.text, "attribute kernel_shape is required") != NULL, "%s", f.d.text);
    done(&f);
}

Test(infer_opsb, averagepool_folds_excluding_pads) {
    fixture f = fx();
    /* 2x2 input 1..4, kernel 2, pads 1 (count_include_pad 0): each corner window holds one
     * value, so the output equals the input's corners */
    kl_value *in[1] = {const_f32(&f, "x", (kl_shape){4, {1, 1, 2, 2}}, 0)};
    kl_node *n = node(&f, "AveragePool", 11, 1, in, 1);
    attr_ints(&f, n, "kernel_shape", 2, (int64_t[]){2, 2});
    attr_ints(&f, n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {1, 1, 3, 3}});
    const float *y = n->outputs[0]->data;
    cr_assert(y != NULL);
    cr_expect(y[0] == 1 && y[2] == 2 && y[4] == 2.5f && y[8] == 4, "%g %g %g %g", y[0], y[2],
              y[4], y[8]);
    done(&f);
}

Test(infer_opsb, global_pools_keep_rank) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){5, {2, 3, 4, 5, 6}})};
    kl_node *n = node(&f, "GlobalAveragePool", 1, 1, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){5, {2, 3, 1, 1, 1}});
    done(&f);
}

Test(infer_opsb, maxpool_indices_fold_to_the_argmax) {
    fixture f = fx();
    /* 4x4 input 1..16, 2x2 windows of stride 2: maxima 6 8 14 16 at flat 5 7 13 15 */
    kl_value *in[1] = {const_f32(&f, "x", (kl_shape){4, {1, 1, 4, 4}}, 0)};
    kl_node *n = node(&f, "MaxPool", 12, 1, in, 2);
    attr_ints(&f, n, "kernel_shape", 2, (int64_t[]){2, 2});
    attr_ints(&f, n, "strides", 2, (int64_t[]){2, 2});
    cr_assert(run_passes(&f), "%s", f.d.text);
    const float *y = n->outputs[0]->data;
    const int64_t *ind = n->outputs[1]->data;
    cr_assert(y != NULL && ind != NULL);
    cr_expect(y[0] == 6 && y[1] == 8 && y[2] == 14 && y[3] == 16);
    cr_expect(ind[0] == 5 && ind[1] == 7 && ind[2] == 13 && ind[3] == 15, "%lld %lld %lld %lld",
              (long long)ind[0], (long long)ind[1], (long long)ind[2], (long long)ind[3]);
    done(&f);
}

Test(infer_opsb, maxunpool_default_output_shape) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 2, 2, 3}}),
                       input(&f, "i", KL_I64, (kl_shape){4, {1, 2, 2, 3}})};
    kl_node *n = node(&f, "MaxUnpool", 11, 2, in, 1);
    attr_ints(&f, n, "kernel_shape", 2, (int64_t[]){2, 2});
    attr_ints(&f, n, "strides", 2, (int64_t[]){2, 2});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {1, 2, 4, 6}});
    done(&f);
}

Test(infer_opsb, deform_conv_checks_the_offset_shape) {
    fixture f = fx();
    kl_value *in[3] = {input(&f, "x", KL_F32, (kl_shape){4, {1, 1, 3, 3}}),
                       input(&f, "w", KL_F32, (kl_shape){4, {1, 1, 2, 2}}),
                       input(&f, "offset", KL_F32, (kl_shape){4, {1, 4, 2, 2}})};
    node(&f, "DeformConv", 19, 3, in, 1);
    cr_assert_not(run_passes(&f));
    cr_expect(strstr(f.d.text, "offset must be [1,8,2,2]") != NULL, "%s", f.d.text);
    done(&f);
}

Test(infer_opsb, qlinear_matmul_infers_the_output_type) {
    fixture f = fx();
    kl_value *in[8] = {input(&f, "a", KL_U8, (kl_shape){2, {2, 4}}),
                       input(&f, "as", KL_F32, (kl_shape){0, {0}}),
                       input(&f, "az", KL_U8, (kl_shape){0, {0}}),
                       input(&f, "b", KL_U8, (kl_shape){2, {4, 3}}),
                       input(&f, "bs", KL_F32, (kl_shape){0, {0}}),
                       input(&f, "bz", KL_U8, (kl_shape){0, {0}}),
                       input(&f, "ys", KL_F32, (kl_shape){0, {0}}),
                       input(&f, "yz", KL_I8, (kl_shape){0, {0}})};
    kl_node *n = node(&f, "QLinearMatMul", 21, 8, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {2, 3}});
    cr_expect_eq(n->outputs[0]->dtype, KL_I8);
    done(&f);
}
