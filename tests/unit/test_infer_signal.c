/*
 * test_infer_signal.c — shape inference, error messages and constant folding of TopK, the
 * window functions, STFT, Col2Im and AffineGrid (ops/topk.c, signal.c, col2im.c,
 * affine_grid.c), through the real passes and op table on graphs built by hand. Folding runs
 * each operator's lowering in the interpreter, so the value tests check the kernels too.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

#include "graph_fixture.h"
#include "kl.h"

static kl_value *ints(fixture *f, const char *name, int n, const int64_t *values) {
    return constant(f, name, KL_I64, (kl_shape){1, {n}}, values);
}

static void expect_floats(const kl_value *v, int n, const float *want) {
    const float *got = v->data;
    cr_assert(got != NULL, "output '%s' was not folded", v->name);
    for (int i = 0; i < n; i++)
        cr_expect(fabsf(got[i] - want[i]) <= 1e-6f || (isnan(got[i]) && isnan(want[i])),
                  "element %d: got %g want %g", i, got[i], want[i]);
}

static void expect_ints(const kl_value *v, int n, const int64_t *want) {
    cr_assert(v->data != NULL, "output '%s' was not folded", v->name);
    for (int i = 0; i < n; i++)
        cr_expect(kl_value_const_int(v, i) == want[i], "element %d: got %lld want %lld", i,
                  (long long)kl_value_const_int(v, i), (long long)want[i]);
}

/* A graph output whose shape the model declares (as a graph output's type does). */
static void declare(kl_value *v, kl_dtype t, kl_shape s) {
    v->dtype = t;
    v->shape = s;
    v->shape_declared = true;
}

Test(infer_signal, topk_folds_nan_first_and_ties_by_index) {
    fixture f = fx();
    const float x[8] = {2, NAN, 5, 2, 7, 7, -1, 0};
    kl_value *in[2] = {constant(&f, "x", KL_F32, (kl_shape){2, {2, 4}}, x),
                       ints(&f, "k", 1, (int64_t[]){2})};
    kl_node *n = node(&f, "TopK", 11, 2, in, 2);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){2, {2, 2}});
    expect_floats(n->outputs[0], 4, (float[]){NAN, 5, 7, 7});
    expect_ints(n->outputs[1], 4, (int64_t[]){1, 2, 0, 1});
    done(&f);
}

Test(infer_signal, topk_smallest_along_axis_0_and_the_attribute_form) {
    fixture f = fx();
    const float x[6] = {3, 1, 3, 0, 2, 1};
    kl_value *in[2] = {constant(&f, "x", KL_F32, (kl_shape){2, {3, 2}}, x),
                       ints(&f, "k", 1, (int64_t[]){2})};
    kl_node *n = node(&f, "TopK", 11, 2, in, 2);
    attr_int(&f, n, "axis", 0);
    attr_int(&f, n, "largest", 0);
    kl_node *old = node(&f, "TopK", 1, 1, in, 2);
    attr_int(&f, old, "k", 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(n->outputs[0], 4, (float[]){2, 0, 3, 1});
    expect_ints(n->outputs[1], 4, (int64_t[]){2, 1, 0, 0});
    expect_shape(old->outputs[0], (kl_shape){2, {3, 1}});
    expect_ints(old->outputs[1], 3, (int64_t[]){0, 0, 0});
    done(&f);
}

Test(infer_signal, topk_k_past_the_axis_is_an_error) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){2, {2, 4}}),
                       ints(&f, "k", 1, (int64_t[]){5})};
    node(&f, "TopK", 11, 2, in, 2);
    expect_error(&f, "k = 5 is outside [0, 4]");
    done(&f);
}

Test(infer_signal, topk_run_time_k_takes_the_declared_shape) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "x", KL_F32, (kl_shape){2, {2, 4}}),
                       input(&f, "k", KL_I64, (kl_shape){1, {1}})};
    kl_node *n = inner_node(&f, "TopK", 11, 2, in, 2);
    declare(n->outputs[0], KL_F32, (kl_shape){2, {2, 3}});
    mark_output(&f, n->outputs[0]);
    mark_output(&f, n->outputs[1]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[1], (kl_shape){2, {2, 3}});
    cr_expect(n->outputs[1]->dtype == KL_I64);
    done(&f);
}

Test(infer_signal, window_folds_in_the_output_type) {
    fixture f = fx();
    kl_value *in[1] = {constant(&f, "size", KL_I64, (kl_shape){0, {0}}, (int64_t[]){4})};
    kl_node *hann = node(&f, "HannWindow", 17, 1, in, 1);
    kl_node *sym = node(&f, "HammingWindow", 17, 1, in, 1);
    attr_int(&f, sym, "periodic", 0);
    kl_node *as_int = node(&f, "HannWindow", 17, 1, in, 1);
    attr_int(&f, as_int, "output_datatype", KL_I32);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_floats(hann->outputs[0], 4, (float[]){0, 0.5f, 1, 0.5f});
    /* 25/46 - 21/46 cos(2 pi n / 3) */
    expect_floats(sym->outputs[0], 4, (float[]){4.0f / 46, 71.0f / 92, 71.0f / 92, 4.0f / 46});
    cr_expect(as_int->outputs[0]->dtype == KL_I32);
    expect_ints(as_int->outputs[0], 4, (int64_t[]){0, 0, 1, 0});
    done(&f);
}

Test(infer_signal, stft_frames_and_bins) {
    fixture f = fx();
    kl_value *in[4] = {input(&f, "signal", KL_F32, (kl_shape){3, {2, 10, 1}}),
                       constant(&f, "step", KL_I64, (kl_shape){0, {0}}, (int64_t[]){2}), NULL,
                       constant(&f, "len", KL_I64, (kl_shape){0, {0}}, (int64_t[]){4})};
    kl_node *n = node(&f, "STFT", 17, 4, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){4, {2, 4, 3, 2}});
    done(&f);
}

Test(infer_signal, stft_window_and_length_must_agree) {
    fixture f = fx();
    kl_value *in[4] = {input(&f, "signal", KL_F32, (kl_shape){3, {1, 10, 1}}),
                       constant(&f, "step", KL_I64, (kl_shape){0, {0}}, (int64_t[]){2}),
                       input(&f, "w", KL_F32, (kl_shape){1, {5}}),
                       constant(&f, "len", KL_I64, (kl_shape){0, {0}}, (int64_t[]){4})};
    node(&f, "STFT", 17, 4, in, 1);
    expect_error(&f, "frame_length 4 differs from the window's length 5");
    done(&f);
}

Test(infer_signal, col2im_folds_overlapping_blocks) {
    fixture f = fx();
    /* a 1-D image of 4 from blocks of 2 at stride 1: 3 positions, the middle pixels twice */
    const float cols[6] = {1, 2, 3, 10, 20, 30};
    kl_value *in[3] = {constant(&f, "x", KL_F32, (kl_shape){3, {1, 2, 3}}, cols),
                       ints(&f, "image", 1, (int64_t[]){4}), ints(&f, "block", 1, (int64_t[]){2})};
    kl_node *n = node(&f, "Col2Im", 18, 3, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(n->outputs[0], (kl_shape){3, {1, 1, 4}});
    expect_floats(n->outputs[0], 4, (float[]){1, 12, 23, 30});
    done(&f);
}

Test(infer_signal, col2im_block_count_must_match_the_columns) {
    fixture f = fx();
    kl_value *in[3] = {input(&f, "x", KL_F32, (kl_shape){3, {1, 2, 4}}),
                       ints(&f, "image", 1, (int64_t[]){4}), ints(&f, "block", 1, (int64_t[]){2})};
    node(&f, "Col2Im", 18, 3, in, 1);
    expect_error(&f, "the blocks fit 3 times into the padded image, but the input has 4 columns");
    done(&f);
}

Test(infer_signal, affine_grid_folds_the_identity) {
    fixture f = fx();
    const float theta[6] = {1, 0, 0, 0, 1, 0};
    kl_value *in[2] = {constant(&f, "theta", KL_F32, (kl_shape){3, {1, 2, 3}}, theta),
                       ints(&f, "size", 4, (int64_t[]){1, 3, 1, 2})};
    kl_node *corners = node(&f, "AffineGrid", 20, 2, in, 1);
    attr_int(&f, corners, "align_corners", 1);
    kl_node *centres = node(&f, "AffineGrid", 20, 2, in, 1);
    cr_assert(run_passes(&f), "%s", f.d.text);
    expect_shape(corners->outputs[0], (kl_shape){4, {1, 1, 2, 2}});
    expect_floats(corners->outputs[0], 4, (float[]){-1, -1, 1, -1});
    expect_floats(centres->outputs[0], 4, (float[]){-0.5f, 0, 0.5f, 0});
    done(&f);
}
