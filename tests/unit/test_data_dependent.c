/*
 * test_data_dependent.c — outputs whose length depends on the data (ops/data_dependent.c):
 * inference gives the bound and marks the dim; folding a node whose inputs are constant runs
 * its kernels in the interpreter (run-time extents included) and gives the output its exact
 * shape, so these tests check the kernels' values too; a reader keeps the length along the dim
 * that follows it (ops/data_dependent_flow.c), or is refused where none does.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "graph_fixture.h"
#include "kl.h"

static void expect_ints(const kl_value *v, int n, const int64_t *want) {
    cr_assert(v->data != NULL, "output '%s' was not folded", v->name);
    for (int i = 0; i < n; i++)
        cr_expect(kl_value_const_int(v, i) == want[i], "element %d: got %lld want %lld", i,
                  (long long)kl_value_const_int(v, i), (long long)want[i]);
}

Test(data_dependent, nonzero_of_an_input_is_bounded_and_marked) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){2, {3, 4}});
    kl_node *n = node(&f, "NonZero", 13, 1, &x, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {2, 12}});
    cr_expect(n->outputs[0]->data_dependent && n->outputs[0]->dd_dim == 1);
    done(&f);
}

/* x[:, :n] with n given at run time and no shape declared: at most the input along axis 1;
 * with a constant end it folds to the exact shape as before. */
Test(data_dependent, slice_with_a_run_time_end_is_bounded_by_its_input) {
    fixture f = fx();
    const int64_t zero = 0, one = 1;
    kl_value *in[4] = {input(&f, "x", KL_F32, (kl_shape){2, {4, 6}}),
                       constant(&f, "starts", KL_I64, (kl_shape){1, {1}}, &zero),
                       input(&f, "n", KL_I64, (kl_shape){1, {1}}),
                       constant(&f, "axes", KL_I64, (kl_shape){1, {1}}, &one)};
    kl_node *n = node(&f, "Slice", 13, 4, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {4, 6}});
    cr_expect(n->outputs[0]->data_dependent && n->outputs[0]->dd_dim == 1);
    done(&f);
}

/* Two axes listed with a run-time end: their lengths would both vary, which kiln does not
 * follow; the message asks for a declared shape. */
Test(data_dependent, slice_along_two_run_time_axes_is_refused) {
    fixture f = fx();
    const int64_t zeros[2] = {0, 0}, axes[2] = {0, 1};
    kl_value *in[4] = {input(&f, "x", KL_F32, (kl_shape){2, {4, 6}}),
                       constant(&f, "starts", KL_I64, (kl_shape){1, {2}}, zeros),
                       input(&f, "n", KL_I64, (kl_shape){1, {2}}),
                       constant(&f, "axes", KL_I64, (kl_shape){1, {2}}, axes)};
    node(&f, "Slice", 13, 4, in, 1);
    expect_error(&f, "input 2 ('n') is given at run time");
    done(&f);
}

Test(data_dependent, nonzero_of_a_constant_folds_to_its_exact_shape) {
    fixture f = fx();
    const float values[6] = {0, 1.5f, 0, -2, 0, 3};
    kl_value *c = constant(&f, "c", KL_F32, (kl_shape){2, {2, 3}}, values);
    kl_node *n = node(&f, "NonZero", 13, 1, &c, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {2, 3}});
    cr_expect(!n->outputs[0]->data_dependent);
    expect_ints(n->outputs[0], 6, (int64_t[]){0, 1, 1, 1, 0, 2});
    done(&f);
}

Test(data_dependent, compress_of_constants_folds_along_the_axis) {
    fixture f = fx();
    const float values[6] = {1, 2, 3, 4, 5, 6};
    const bool keep[2] = {false, true};
    kl_value *in[2] = {constant(&f, "x", KL_F32, (kl_shape){2, {3, 2}}, values),
                       constant(&f, "keep", KL_BOOL, (kl_shape){1, {2}}, keep)};
    kl_node *n = node(&f, "Compress", 11, 2, in, 1);
    attr_int(&f, n, "axis", 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {3, 1}});
    const float *got = n->outputs[0]->data;
    cr_assert(got != NULL);
    cr_expect(got[0] == 2 && got[1] == 4 && got[2] == 6, "got %g %g %g", got[0], got[1], got[2]);
    done(&f);
}

Test(data_dependent, unique_of_a_constant_folds_every_output) {
    fixture f = fx();
    const int64_t values[6] = {2, 1, 1, 3, 4, 3};
    kl_value *c = constant(&f, "c", KL_I64, (kl_shape){1, {6}}, values);
    kl_node *n = node(&f, "Unique", 11, 1, &c, 4);
    attr_int(&f, n, "sorted", 0);
    cr_assert(run_passes(&f), "%s", f.d.text);
    for (int o = 0; o < 4; o++) expect_shape(n->outputs[o], (kl_shape){1, {o == 2 ? 6 : 4}});
    expect_ints(n->outputs[0], 4, (int64_t[]){2, 1, 3, 4});
    expect_ints(n->outputs[1], 4, (int64_t[]){0, 1, 3, 4});
    expect_ints(n->outputs[2], 6, (int64_t[]){0, 1, 1, 2, 3, 2});
    expect_ints(n->outputs[3], 4, (int64_t[]){1, 2, 2, 1});
    done(&f);
}

Test(data_dependent, a_reader_keeps_the_length_along_the_dim_it_follows) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){2, {2, 3}});
    kl_node *nz = inner_node(&f, "NonZero", 13, 1, &x, 1);
    kl_node *t = inner_node(&f, "Transpose", 13, 1, nz->outputs, 1);
    kl_node *neg = node(&f, "Neg", 13, 1, t->outputs, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(neg->outputs[0], (kl_shape){2, {6, 2}});
    cr_expect(t->outputs[0]->data_dependent && t->outputs[0]->dd_dim == 0);
    cr_expect(neg->outputs[0]->data_dependent && neg->outputs[0]->dd_dim == 0);
    cr_expect(neg->outputs[0]->dd_source == nz->outputs[0]);
    done(&f);
}

Test(data_dependent, a_reader_whose_output_loses_the_length_is_refused) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){1, {5}});
    kl_node *nz = inner_node(&f, "NonZero", 13, 1, &x, 1);
    node(&f, "ReduceMax", 13, 1, nz->outputs, 1); /* keepdims over every axis: [1, 1] */
    expect_error(&f, "does not keep it as one of its dims");
    done(&f);
}

/* Shape reads the length as a value: computed at run time, not folded; a Shape that leaves the
 * varying dim out still folds. */
Test(data_dependent, shape_of_a_value_of_varying_length_is_computed) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){1, {5}});
    kl_node *nz = inner_node(&f, "NonZero", 13, 1, &x, 1);
    kl_node *all = node(&f, "Shape", 15, 1, nz->outputs, 1);
    kl_node *rows = node(&f, "Shape", 15, 1, nz->outputs, 1);
    attr_int(&f, rows, "end", 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(all->outputs[0], (kl_shape){1, {2}});
    cr_expect(all->outputs[0]->data == NULL && !all->outputs[0]->data_dependent);
    expect_ints(rows->outputs[0], 1, (int64_t[]){1});
    done(&f);
}
