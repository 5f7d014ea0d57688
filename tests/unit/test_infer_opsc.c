/*
 * test_infer_opsc.c — shape inference, error messages and constant folding of the ops-C
 * families (reshape, movement, indexing) through the real passes and op table, on graphs built
 * by hand. Folding runs the operators' own lowering in the interpreter, so the value tests check
 * the kernels too. The shape-chain test is the pattern exporters emit (Shape -> Gather ->
 * Unsqueeze -> Concat -> Reshape): it must fold away entirely at compile time.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "graph_fixture.h"
#include "kl.h"

static kl_value *ints(fixture *f, const char *name, int n, const int64_t *values) {
    return constant(f, name, KL_I64, (kl_shape){1, {n}}, values);
}

static kl_value *floats(fixture *f, const char *name, kl_shape s, const float *values) {
    return constant(f, name, KL_F32, s, values);
}

static void expect_floats(const kl_value *v, int n, const float *want) {
    const float *got = v->data;
    cr_assert(got != NULL, "output '%s' was not folded", v->name);
    for (int i = 0; i < n; i++)
        cr_expect(got[i] == want[i], "element %d: got %g want %g", i, got[i], want[i]);
}

static void expect_ints(const kl_value *v, int n, const int64_t *want) {
    cr_assert(v->data != NULL, "output '%s' was not folded", v->name);
    for (int i = 0; i < n; i++)
        cr_expect(kl_value_const_int(v, i) == want[i], "element %d: got %lld want %lld", i,
                  (long long)kl_value_const_int(v, i), (long long)want[i]);
}

/* ---- reshape family ---- */

Test(infer_opsc, reshape_zero_keeps_and_minus_one_infers) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){3, {2, 3, 4}}),
                       ints(&f, "s", 3, (int64_t[]){0, -1, 2})};
    kl_node *n = inner_node(&f, "Reshape", 14, 2, in, 1);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){3, {2, 6, 2}});
    done(&f);
}

Test(infer_opsc, reshape_allowzero_makes_zero_literal) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){2, {0, 3}}),
                       ints(&f, "s", 2, (int64_t[]){3, 0})};
    kl_node *n = inner_node(&f, "Reshape", 14, 2, in, 1);
    attr_int(&f, n, "allowzero", 1);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {3, 0}});
    done(&f);
}

Test(infer_opsc, reshape_attribute_form_before_opset_5) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){2, {2, 6}})};
    kl_node *n = inner_node(&f, "Reshape", 1, 1, in, 1);
    attr_ints(&f, n, "shape", 2, (int64_t[]){4, -1});
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {4, 3}});
    done(&f);
}

Test(infer_opsc, reshape_errors_name_the_problem) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){2, {2, 3}}),
                       ints(&f, "s", 2, (int64_t[]){4, 2})};
    inner_node(&f, "Reshape", 14, 2, in, 1);
    expect_error(&f, "cannot reshape [2,3] (6 elements) to [4,2] (8 elements)");
    done(&f);

    f = fx();
    kl_value *in2[2] = {input(&f, "x", KL_F32, (kl_shape){1, {6}}),
                        ints(&f, "s", 2, (int64_t[]){-1, -1})};
    inner_node(&f, "Reshape", 14, 2, in2, 1);
    expect_error(&f, "more than one -1");
    done(&f);

    f = fx();
    kl_value *in3[2] = {input(&f, "x", KL_F32, (kl_shape){1, {6}}),
                        input(&f, "s", KL_I64, (kl_shape){1, {2}})};
    inner_node(&f, "Reshape", 14, 2, in3, 1);
    expect_error(&f, "input 1 ('s') is given at run time: kiln needs it as a compile-time constant");
    done(&f);
}

/* The refusal names the graph inputs a run-time shape is computed from (once each), and records
 * them for `kiln check` to bind from a data set; a folded Shape of another input adds none. */
Test(infer_opsc, run_time_shape_names_the_inputs_it_comes_from) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){1, {6}});
    kl_value *s = input(&f, "s", KL_I64, (kl_shape){1, {1}});
    kl_node *shape = inner_node(&f, "Shape", 13, 1, (kl_value *[]){x}, 1);
    kl_node *twice = inner_node(&f, "Add", 14, 2, (kl_value *[]){s, s}, 1);
    kl_node *cat = inner_node(&f, "Concat", 13, 2,
                              (kl_value *[]){shape->outputs[0], twice->outputs[0]}, 1);
    attr_int(&f, cat, "axis", 0);
    inner_node(&f, "Reshape", 14, 2, (kl_value *[]){x, cat->outputs[0]}, 1);
    expect_error(&f, "it is computed from graph input 's': --value s:V,... compiles for one "
                     "value of it");
    cr_assert_not_null(f.d.needs_values);
    cr_assert_str_eq(f.d.needs_values, "s");
    cr_assert_eq(f.d.needs_values[2], 0, "one name only");
    done(&f);
}

Test(infer_opsc, flatten_negative_axis) {
    fixture f = fx();
    kl_value *in[1] = {input(&f, "x", KL_F32, (kl_shape){4, {2, 3, 4, 5}})};
    kl_node *n = inner_node(&f, "Flatten", 13, 1, in, 1);
    attr_int(&f, n, "axis", -1);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {24, 5}});
    done(&f);
}

Test(infer_opsc, squeeze_and_unsqueeze_both_forms) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){3, {1, 3, 1}});
    kl_node *sq = inner_node(&f, "Squeeze", 11, 1, (kl_value *[]){x}, 1); /* no axes: all 1s */
    kl_node *un = inner_node(&f, "Unsqueeze", 13, 2,
                       (kl_value *[]){sq->outputs[0], ints(&f, "ax", 2, (int64_t[]){-1, 0})}, 1);
    mark_output(&f, un->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(sq->outputs[0], (kl_shape){1, {3}});
    expect_shape(un->outputs[0], (kl_shape){3, {1, 3, 1}});
    done(&f);
}

Test(infer_opsc, squeeze_of_a_dimension_not_1_is_an_error) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){2, {1, 3}}),
                       ints(&f, "ax", 1, (int64_t[]){1})};
    inner_node(&f, "Squeeze", 13, 2, in, 1);
    expect_error(&f, "cannot squeeze axis 1 of input [1,3]: its size is 3, not 1");
    done(&f);
}

Test(infer_opsc, shape_gather_unsqueeze_concat_reshape_folds) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){4, {1, 8, 4, 4}});
    kl_node *shape = inner_node(&f, "Shape", 13, 1, (kl_value *[]){x}, 1);
    kl_value *zero = constant(&f, "zero", KL_I64, (kl_shape){0}, (int64_t[]){0});
    kl_node *batch = inner_node(&f, "Gather", 13, 2, (kl_value *[]){shape->outputs[0], zero}, 1);
    kl_node *unsq = inner_node(&f, "Unsqueeze", 13, 2,
                         (kl_value *[]){batch->outputs[0], ints(&f, "a0", 1, (int64_t[]){0})}, 1);
    kl_node *cat = inner_node(&f, "Concat", 13, 2,
                        (kl_value *[]){unsq->outputs[0], ints(&f, "m1", 1, (int64_t[]){-1})}, 1);
    attr_int(&f, cat, "axis", 0);
    kl_node *reshape = inner_node(&f, "Reshape", 13, 2, (kl_value *[]){x, cat->outputs[0]}, 1);
    mark_output(&f, reshape->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_ints(shape->outputs[0], 4, (int64_t[]){1, 8, 4, 4});
    expect_ints(cat->outputs[0], 2, (int64_t[]){1, -1});
    expect_shape(reshape->outputs[0], (kl_shape){2, {1, 128}});
    cr_expect(shape->dead && batch->dead && unsq->dead && cat->dead, "shape chain left in graph");
    done(&f);
}

Test(infer_opsc, shape_start_end_clamp) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){3, {2, 3, 4}});
    kl_node *n = inner_node(&f, "Shape", 15, 1, (kl_value *[]){x}, 1);
    attr_int(&f, n, "start", -2);
    attr_int(&f, n, "end", 10);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_ints(n->outputs[0], 2, (int64_t[]){3, 4});
    done(&f);
}

Test(infer_opsc, expand_is_bidirectional) {
    fixture f = fx();
    float x[3] = {1, 2, 3};
    kl_value *in[2] = {floats(&f, "x", (kl_shape){2, {3, 1}}, x),
                       ints(&f, "s", 3, (int64_t[]){2, 1, 2})};
    kl_node *n = inner_node(&f, "Expand", 13, 2, in, 1);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){3, {2, 3, 2}});
    expect_floats(n->outputs[0], 12, (float[]){1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
    done(&f);
}

Test(infer_opsc, constant_of_shape_takes_the_value_type) {
    fixture f = fx();
    kl_value *shape = ints(&f, "s", 2, (int64_t[]){2, 2});
    kl_node *n = inner_node(&f, "ConstantOfShape", 20, 1, (kl_value *[]){shape}, 1);
    kl_attr *v = attr(&f, n, "value", KL_ATTR_TENSOR);
    v->t = constant(&f, "v", KL_I64, (kl_shape){1, {1}}, (int64_t[]){7});
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    cr_expect_eq(n->outputs[0]->dtype, KL_I64);
    expect_ints(n->outputs[0], 4, (int64_t[]){7, 7, 7, 7});
    done(&f);
}

Test(infer_opsc, dropout_training_mode_must_be_a_bool_scalar) {
    fixture f = fx();
    kl_value *in[3] = {input(&f, "x", KL_F32, (kl_shape){1, {4}}), NULL,
                       constant(&f, "t", KL_I32, (kl_shape){0}, (int32_t[]){1})};
    inner_node(&f, "Dropout", 13, 3, in, 2);
    expect_error(&f, "input 2 (training_mode) must be a bool scalar");
    done(&f);
}

/* ---- movement family ---- */

Test(infer_opsc, transpose_folds_with_default_perm) {
    fixture f = fx();
    float x[6] = {1, 2, 3, 4, 5, 6};
    kl_node *n = inner_node(&f, "Transpose", 13, 1,
                      (kl_value *[]){floats(&f, "x", (kl_shape){2, {2, 3}}, x)}, 1);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {3, 2}});
    expect_floats(n->outputs[0], 6, (float[]){1, 4, 2, 5, 3, 6});
    done(&f);
}

Test(infer_opsc, concat_mismatch_is_an_error) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){2, {2, 3}}),
                       input(&f, "b", KL_F32, (kl_shape){2, {3, 3}})};
    kl_node *n = inner_node(&f, "Concat", 13, 2, in, 1);
    attr_int(&f, n, "axis", 1);
    expect_error(&f, "input 1 [3,3] does not match input 0 [2,3] outside axis 1");
    done(&f);
}

Test(infer_opsc, split_opset18_last_chunk_smaller) {
    fixture f = fx();
    float x[5] = {1, 2, 3, 4, 5};
    kl_value *in = floats(&f, "x", (kl_shape){1, {5}}, x);
    kl_node *n = inner_node(&f, "Split", 18, 1, (kl_value *[]){in}, 3);
    attr_int(&f, n, "num_outputs", 3);
    for (int i = 0; i < 3; i++) mark_output(&f, n->outputs[i]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(n->outputs[0], 2, (float[]){1, 2});
    expect_floats(n->outputs[1], 2, (float[]){3, 4});
    expect_floats(n->outputs[2], 1, (float[]){5});
    done(&f);
}

Test(infer_opsc, slice_negative_step_and_int64_max_end) {
    fixture f = fx();
    float x[5] = {0, 1, 2, 3, 4};
    kl_value *in[5] = {floats(&f, "x", (kl_shape){1, {5}}, x),
                       ints(&f, "st", 1, (int64_t[]){-1}),
                       ints(&f, "en", 1, (int64_t[]){INT64_MIN}),
                       ints(&f, "ax", 1, (int64_t[]){0}),
                       ints(&f, "sp", 1, (int64_t[]){-2})};
    kl_node *back = inner_node(&f, "Slice", 13, 5, in, 1);
    kl_value *in2[3] = {in[0], ints(&f, "st2", 1, (int64_t[]){1}),
                        ints(&f, "en2", 1, (int64_t[]){INT64_MAX})};
    kl_node *fwd = inner_node(&f, "Slice", 13, 3, in2, 1);
    mark_output(&f, back->outputs[0]);
    mark_output(&f, fwd->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(back->outputs[0], 3, (float[]){4, 2, 0});
    expect_floats(fwd->outputs[0], 4, (float[]){1, 2, 3, 4});
    done(&f);
}

Test(infer_opsc, gather_wraps_negative_indices_and_checks_constant_ones) {
    fixture f = fx();
    float x[3] = {10, 20, 30};
    kl_value *data = floats(&f, "x", (kl_shape){1, {3}}, x);
    kl_node *n = inner_node(&f, "Gather", 13, 2,
                      (kl_value *[]){data, ints(&f, "i", 2, (int64_t[]){-1, 0})}, 1);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(n->outputs[0], 2, (float[]){30, 10});
    done(&f);

    f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){1, {3}}),
                       ints(&f, "i", 1, (int64_t[]){3})};
    inner_node(&f, "Gather", 13, 2, in, 1);
    expect_error(&f, "index 3 is out of range [-3, 3)");
    done(&f);
}

Test(infer_opsc, pad_reflect_and_constant) {
    fixture f = fx();
    float x[3] = {1, 2, 3};
    kl_value *data = floats(&f, "x", (kl_shape){1, {3}}, x);
    kl_value *pads = ints(&f, "p", 2, (int64_t[]){2, 2});
    kl_node *refl = inner_node(&f, "Pad", 13, 2, (kl_value *[]){data, pads}, 1);
    kl_attr *mode = attr(&f, refl, "mode", KL_ATTR_STRING);
    mode->s = "reflect";
    kl_node *cst = inner_node(&f, "Pad", 2, 1, (kl_value *[]){data}, 1);
    attr_ints(&f, cst, "pads", 2, (int64_t[]){1, 0});
    mark_output(&f, refl->outputs[0]);
    mark_output(&f, cst->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(refl->outputs[0], 7, (float[]){3, 2, 1, 2, 3, 2, 1});
    expect_floats(cst->outputs[0], 4, (float[]){0, 1, 2, 3});
    done(&f);
}

/* ---- indexing family ---- */

Test(infer_opsc, scatter_nd_last_duplicate_wins_and_add_accumulates) {
    fixture f = fx();
    float x[4] = {1, 2, 3, 4}, u[3] = {10, 20, 30};
    kl_value *data = floats(&f, "x", (kl_shape){1, {4}}, x);
    kl_value *ind = constant(&f, "i", KL_I64, (kl_shape){2, {3, 1}}, (int64_t[]){1, 3, 1});
    kl_value *upd = floats(&f, "u", (kl_shape){1, {3}}, u);
    kl_node *none = inner_node(&f, "ScatterND", 18, 3, (kl_value *[]){data, ind, upd}, 1);
    kl_node *add = inner_node(&f, "ScatterND", 18, 3, (kl_value *[]){data, ind, upd}, 1);
    kl_attr *r = attr(&f, add, "reduction", KL_ATTR_STRING);
    r->s = "add";
    mark_output(&f, none->outputs[0]);
    mark_output(&f, add->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(none->outputs[0], 4, (float[]){1, 30, 3, 20});
    expect_floats(add->outputs[0], 4, (float[]){1, 42, 3, 24});
    done(&f);
}

Test(infer_opsc, cumsum_exclusive_reverse) {
    fixture f = fx();
    float x[4] = {1, 2, 3, 4};
    kl_value *in[2] = {floats(&f, "x", (kl_shape){1, {4}}, x),
                       constant(&f, "ax", KL_I64, (kl_shape){0}, (int64_t[]){0})};
    kl_node *n = inner_node(&f, "CumSum", 14, 2, in, 1);
    attr_int(&f, n, "exclusive", 1);
    attr_int(&f, n, "reverse", 1);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(n->outputs[0], 4, (float[]){9, 7, 4, 0});
    done(&f);
}

/* ---- resize ---- */

Test(infer_opsc, resize_linear_half_pixel_and_nearest_asymmetric) {
    fixture f = fx();
    float x[2] = {0, 4};
    kl_value *data = floats(&f, "x", (kl_shape){1, {2}}, x);
    kl_value *scales = floats(&f, "s", (kl_shape){1, {1}}, (float[]){2});
    kl_node *lin = inner_node(&f, "Resize", 19, 3, (kl_value *[]){data, NULL, scales}, 1);
    attr(&f, lin, "mode", KL_ATTR_STRING)->s = "linear";
    kl_node *near = inner_node(&f, "Resize", 19, 3, (kl_value *[]){data, NULL, scales}, 1);
    attr(&f, near, "coordinate_transformation_mode", KL_ATTR_STRING)->s = "asymmetric";
    mark_output(&f, lin->outputs[0]);
    mark_output(&f, near->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    /* half_pixel: x_original = (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (edge-clamped) */
    expect_floats(lin->outputs[0], 4, (float[]){0, 1, 3, 4});
    expect_floats(near->outputs[0], 4, (float[]){0, 0, 4, 4});
    done(&f);
}
