/*
 * test_infer_opsa.c — shape inference, error messages and constant folding of the ops-A
 * families (elementwise, activation, reduce, norm) through the real passes and op table, on
 * graphs built by hand. Folding runs the operators' own lowering in the interpreter, so the
 * value tests here check the kernels too.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "graph_fixture.h"
#include "kl.h"

static kl_value *const_f32(fixture *f, const char *name, kl_shape s, const float *values) {
    return constant(f, name, KL_F32, s, values);
}

static kl_value *const_i64(fixture *f, const char *name, kl_shape s, const int64_t *values) {
    return constant(f, name, KL_I64, s, values);
}

static void expect_floats(const kl_value *v, int n, const float *want, float tol) {
    const float *got = v->data;
    cr_assert(got != NULL, "output was not folded");
    for (int i = 0; i < n; i++)
        cr_expect(fabsf(got[i] - want[i]) <= tol, "element %d: got %g want %g", i, got[i],
                  want[i]);
}

/* ---- elementwise ---- */

Test(infer_opsa, add_broadcasts_numpy_style) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){3, {2, 3, 1}}),
                       input(&f, "b", KL_F32, (kl_shape){1, {4}})};
    kl_node *n = node(&f, "Add", 14, 2, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){3, {2, 3, 4}});
    done(&f);
}

Test(infer_opsa, add_shapes_that_do_not_broadcast_are_an_error) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){2, {2, 3}}),
                       input(&f, "b", KL_F32, (kl_shape){2, {4, 5}})};
    node(&f, "Add", 14, 2, in, 1);
    expect_error(&f, "inputs of shapes [2,3] and [4,5] cannot be broadcast");
    done(&f);
}

Test(infer_opsa, add_mixed_types_is_an_error) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){1, {2}}),
                       input(&f, "b", KL_I64, (kl_shape){1, {2}})};
    node(&f, "Add", 14, 2, in, 1);
    expect_error(&f, "is int64 but input 0 ('a') is float32");
    done(&f);
}

Test(infer_opsa, legacy_broadcast_aligns_b_at_axis) {
    fixture f = fx();
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {10, 20};
    kl_value *in[2] = {const_f32(&f, "a", (kl_shape){2, {2, 3}}, a),
                       const_f32(&f, "b", (kl_shape){1, {2}}, b)};
    kl_node *n = node(&f, "Add", 6, 2, in, 1);
    attr_int(&f, n, "broadcast", 1);
    attr_int(&f, n, "axis", 0);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {2, 3}});
    expect_floats(n->outputs[0], 6, (float[]){11, 12, 13, 24, 25, 26}, 0);
    done(&f);
}

Test(infer_opsa, comparison_gives_bool) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_I64, (kl_shape){1, {3}}),
                       input(&f, "b", KL_I64, (kl_shape){0, {0}})};
    kl_node *n = node(&f, "Less", 13, 2, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    cr_expect_eq(n->outputs[0]->dtype, KL_BOOL);
    expect_shape(n->outputs[0], (kl_shape){1, {3}});
    done(&f);
}

Test(infer_opsa, mean_and_max_fold_over_all_inputs) {
    fixture f = fx();
    float a[2] = {1, 8}, b[2] = {3, 2}, c[1] = {5};
    kl_value *in[3] = {const_f32(&f, "a", (kl_shape){1, {2}}, a),
                       const_f32(&f, "b", (kl_shape){1, {2}}, b),
                       const_f32(&f, "c", (kl_shape){1, {1}}, c)};
    kl_node *mean = node(&f, "Mean", 13, 3, in, 1);
    kl_node *max = node(&f, "Max", 13, 3, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(mean->outputs[0], 2, (float[]){3, 5}, 1e-6f);
    expect_floats(max->outputs[0], 2, (float[]){5, 8}, 0);
    done(&f);
}

Test(infer_opsa, cast_reads_int_and_legacy_string_targets) {
    fixture f = fx();
    float a[3] = {1.7f, -2.5f, 0.25f};
    kl_value *in[1] = {const_f32(&f, "a", (kl_shape){1, {3}}, a)};
    kl_node *to_int = node(&f, "Cast", 13, 1, in, 1);
    attr_int(&f, to_int, "to", KL_I64);
    kl_node *to_bool = node(&f, "Cast", 1, 1, in, 1);
    attr_str(&f, to_bool, "to", "BOOL");
    cr_assert(run_passes(&f), "%s", f.d.text);
    cr_assert_eq(to_int->outputs[0]->dtype, KL_I64);
    const int64_t *i = to_int->outputs[0]->data;
    cr_expect(i[0] == 1 && i[1] == -2 && i[2] == 0);
    cr_assert_eq(to_bool->outputs[0]->dtype, KL_BOOL);
    const uint8_t *b = to_bool->outputs[0]->data;
    cr_expect(b[0] == 1 && b[1] == 1 && b[2] == 1, "0.25 is true too");
    done(&f);
}

Test(infer_opsa, cast_to_string_is_an_error) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "a", KL_F32, (kl_shape){1, {3}})};
    kl_node *n = node(&f, "Cast", 13, 1, in, 1);
    attr_int(&f, n, "to", KL_STRING);
    expect_error(&f, "casting to string");
    done(&f);
}

/* ---- activations ---- */

Test(infer_opsa, clip_bounds_from_attributes_and_inputs) {
    fixture f = fx();
    float x[4] = {-3, -0.5f, 0.5f, 3}, lo[1] = {-1}, hi[1] = {1};
    kl_value *xv = const_f32(&f, "x", (kl_shape){1, {4}}, x);
    kl_node *old = node(&f, "Clip", 6, 1, (kl_value *[]){xv}, 1);
    attr_float(&f, old, "min", 0);
    kl_value *in[3] = {xv, const_f32(&f, "lo", (kl_shape){0, {0}}, lo),
                       const_f32(&f, "hi", (kl_shape){0, {0}}, hi)};
    kl_node *new = node(&f, "Clip", 13, 3, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(old->outputs[0], 4, (float[]){0, 0, 0.5f, 3}, 0);
    expect_floats(new->outputs[0], 4, (float[]){-1, -0.5f, 0.5f, 1}, 0);
    done(&f);
}

Test(infer_opsa, prelu_slope_must_broadcast_to_x) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){2, {2, 3}}),
                       input(&f, "s", KL_F32, (kl_shape){2, {4, 3}})};
    node(&f, "PRelu", 16, 2, in, 1);
    cr_assert_not(run_passes(&f));
    done(&f);
}

/* ---- reductions ---- */

Test(infer_opsa, reduce_sum_axes_input_and_keepdims) {
    fixture f = fx();
    int64_t axes[1] = {-1};
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){3, {2, 3, 4}}),
                       const_i64(&f, "axes", (kl_shape){1, {1}}, axes)};
    kl_node *n = node(&f, "ReduceSum", 13, 2, in, 1);
    attr_int(&f, n, "keepdims", 0);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {2, 3}});
    done(&f);
}

Test(infer_opsa, reduce_mean_axes_attribute_before_opset_18) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){3, {2, 3, 4}})};
    kl_node *n = node(&f, "ReduceMean", 13, 1, in, 1);
    attr_ints(&f, n, "axes", 2, (int64_t[]){0, 2});
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){3, {1, 3, 1}});
    done(&f);
}

Test(infer_opsa, reduce_without_axes_reduces_everything_or_nothing) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){2, {2, 3}});
    kl_node *all = node(&f, "ReduceMax", 18, 1, (kl_value *[]){x}, 1);
    kl_node *noop = node(&f, "ReduceMax", 18, 1, (kl_value *[]){x}, 1);
    attr_int(&f, noop, "noop_with_empty_axes", 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(all->outputs[0], (kl_shape){2, {1, 1}});
    expect_shape(noop->outputs[0], (kl_shape){2, {2, 3}});
    done(&f);
}

Test(infer_opsa, reduce_axes_errors) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){2, {2, 3}})};
    kl_node *n = node(&f, "ReduceSum", 11, 1, in, 1);
    attr_ints(&f, n, "axes", 2, (int64_t[]){1, -1});
    expect_error(&f, "axis -1 is listed twice");
    done(&f);

    f = fx();
    kl_value *in2[2] = {input(&f, "x", KL_F32, (kl_shape){2, {2, 3}}),
                        input(&f, "axes", KL_I64, (kl_shape){1, {1}})};
    node(&f, "ReduceSum", 13, 2, in2, 1);
    expect_error(&f, "needs it as a compile-time constant, or the model must declare the shape");
    done(&f);
}

Test(infer_opsa, reduce_values_fold) {
    fixture f = fx();
    float x[6] = {1, 2, 3, 4, 5, 6};
    kl_value *xv = const_f32(&f, "x", (kl_shape){2, {2, 3}}, x);
    kl_node *l2 = node(&f, "ReduceL2", 13, 1, (kl_value *[]){xv}, 1);
    attr_ints(&f, l2, "axes", 1, (int64_t[]){1});
    kl_node *lse = node(&f, "ReduceLogSumExp", 13, 1, (kl_value *[]){xv}, 1);
    attr_ints(&f, lse, "axes", 1, (int64_t[]){0});
    attr_int(&f, lse, "keepdims", 0);
    kl_node *arg = node(&f, "ArgMin", 13, 1, (kl_value *[]){xv}, 1);
    attr_int(&f, arg, "axis", 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(l2->outputs[0], 2, (float[]){sqrtf(14), sqrtf(77)}, 1e-5f);
    expect_floats(lse->outputs[0], 3,
                  (float[]){logf(expf(1) + expf(4)), logf(expf(2) + expf(5)),
                            logf(expf(3) + expf(6))},
                  1e-5f);
    const int64_t *idx = arg->outputs[0]->data;
    cr_expect(idx[0] == 0 && idx[1] == 0);
    expect_shape(arg->outputs[0], (kl_shape){2, {2, 1}});
    done(&f);
}

Test(infer_opsa, argmax_select_last_index) {
    fixture f = fx();
    float x[4] = {2, 7, 7, 1};
    kl_value *xv = const_f32(&f, "x", (kl_shape){1, {4}}, x);
    kl_node *first = node(&f, "ArgMax", 13, 1, (kl_value *[]){xv}, 1);
    kl_node *last = node(&f, "ArgMax", 13, 1, (kl_value *[]){xv}, 1);
    attr_int(&f, last, "select_last_index", 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    cr_expect_eq(((const int64_t *)first->outputs[0]->data)[0], 1);
    cr_expect_eq(((const int64_t *)last->outputs[0]->data)[0], 2);
    done(&f);
}

/* ---- normalization ---- */

Test(infer_opsa, softmax_before_13_coerces_to_2d) {
    fixture f = fx();
    float x[4] = {0, 0, 0, 0};
    kl_value *xv = const_f32(&f, "x", (kl_shape){3, {1, 2, 2}}, x);
    kl_node *old = node(&f, "Softmax", 11, 1, (kl_value *[]){xv}, 1);
    kl_node *new = node(&f, "Softmax", 13, 1, (kl_value *[]){xv}, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(old->outputs[0], 4, (float[]){0.25f, 0.25f, 0.25f, 0.25f}, 1e-6f);
    expect_floats(new->outputs[0], 4, (float[]){0.5f, 0.5f, 0.5f, 0.5f}, 1e-6f);
    done(&f);
}

Test(infer_opsa, log_softmax_is_stable_for_large_inputs) {
    fixture f = fx();
    float x[2] = {10000, 10001};
    kl_value *xv = const_f32(&f, "x", (kl_shape){1, {2}}, x);
    kl_node *n = node(&f, "LogSoftmax", 13, 1, (kl_value *[]){xv}, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    float l = logf(1 + expf(-1));
    expect_floats(n->outputs[0], 2, (float[]){-1 - l, -l}, 1e-5f);
    done(&f);
}

Test(infer_opsa, softmax_axis_out_of_range) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){2, {2, 3}})};
    kl_node *n = node(&f, "Softmax", 13, 1, in, 1);
    attr_int(&f, n, "axis", 2);
    expect_error(&f, "axis 2 is out of range for rank 2");
    done(&f);
}

Test(infer_opsa, batchnorm_inference_folds) {
    fixture f = fx();
    float x[4] = {1, 2, 3, 4}, s[2] = {1, 2}, b[2] = {0, 1}, m[2] = {1, 2}, v[2] = {4, 1};
    kl_value *in[5] = {const_f32(&f, "x", (kl_shape){3, {1, 2, 2}}, x),
                       const_f32(&f, "s", (kl_shape){1, {2}}, s),
                       const_f32(&f, "b", (kl_shape){1, {2}}, b),
                       const_f32(&f, "m", (kl_shape){1, {2}}, m),
                       const_f32(&f, "v", (kl_shape){1, {2}}, v)};
    kl_node *n = node(&f, "BatchNormalization", 15, 5, in, 1);
    attr_float(&f, n, "epsilon", 0);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(n->outputs[0], 4, (float[]){0, 0.5f, 3, 5}, 1e-6f);
    done(&f);
}

Test(infer_opsa, layernorm_statistics_shapes) {
    fixture f = fx();
    kl_value *in[3] = {input(&f, "x", KL_F32, (kl_shape){3, {2, 3, 4}}),
                       input(&f, "s", KL_F32, (kl_shape){2, {3, 4}}),
                       input(&f, "b", KL_F32, (kl_shape){1, {4}})};
    kl_node *n = node(&f, "LayerNormalization", 17, 3, in, 3);
    attr_int(&f, n, "axis", 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){3, {2, 3, 4}});
    expect_shape(n->outputs[1], (kl_shape){3, {2, 1, 1}});
    expect_shape(n->outputs[2], (kl_shape){3, {2, 1, 1}});
    done(&f);
}
