/*
 * resize_pad.c — Resize's scales and Pad's pads given at run time (compiler/ops/resize.c,
 * movement.c), and KILN_E_SHAPE.
 *
 * resize_pad.onnx (make_resize_pad_model.py) resizes and reflect-pads x = [[1, 2], [3, 4]] into
 * outputs whose shapes the model declares. Scales whose floor(2 * scale) is 4 resize with the
 * given scale (2 and 2.4 interpolate differently: half_pixel divides by the scale); pads that
 * give [4, 5] pad by the given amounts; any other values return KILN_E_SHAPE. The expected
 * values are numpy's (np.pad) and the ONNX linear half_pixel rule worked out by hand.
 */
#include <math.h>
#include <stdio.h>

#include "resize_pad.h"

static int failed, passed;

static void expect(int cond, const char *what) {
    printf("%s %s\n", cond ? "PASS" : "FAIL", what);
    if (cond) passed++;
    else failed++;
}

static _Alignas(64) unsigned char workspace[RESIZE_PAD_WORKSPACE_SIZE + 64];
static const float x[4] = {1, 2, 3, 4};
static float resized[16], padded[20];

static int run(float scale_h, float scale_w, int64_t top, int64_t left, int64_t bottom,
               int64_t right) {
    const float scales[4] = {1, 1, scale_h, scale_w};
    const int64_t pads[8] = {0, 0, top, left, 0, 0, bottom, right};
    return resize_pad_predict(x, scales, pads, resized, padded, workspace);
}

static int close_to(const float *got, const double *want, int n) {
    for (int i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 1e-5) return 0;
    return 1;
}

static int equal_to(const float *got, const float *want, int n) {
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) return 0;
    return 1;
}

int main(void) {
    static const double by2[16] = {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5,
                                   2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0};
    static const double by2_4[16] = {
        1.0,       1.1249999, 1.5416666, 1.9583333, 1.2499999, 1.3749999, 1.7916666, 2.2083332,
        2.0833333, 2.2083332, 2.6249999, 3.0416665, 2.9166666, 3.0416665, 3.4583332, 3.8749998};
    static const float pad_1_1_1_2[20] = {4, 3, 4, 3, 4, 2, 1, 2, 1, 2,
                                          4, 3, 4, 3, 4, 2, 1, 2, 1, 2};
    static const float pad_2_1_0_2[20] = {2, 1, 2, 1, 2, 4, 3, 4, 3, 4,
                                          2, 1, 2, 1, 2, 4, 3, 4, 3, 4};
    expect(run(2, 2, 1, 1, 1, 2) == KILN_OK, "scales 2, pads 1 1 1 2: KILN_OK");
    expect(close_to(resized, by2, 16), "resized by 2");
    expect(equal_to(padded, pad_1_1_1_2, 20), "padded by 1 1 1 2");
    expect(run(2.4f, 2.4f, 2, 1, 0, 2) == KILN_OK, "scales 2.4, pads 2 1 0 2: KILN_OK");
    expect(close_to(resized, by2_4, 16), "resized by 2.4: the run-time scale, not 4 / 2");
    expect(equal_to(padded, pad_2_1_0_2, 20), "padded by 2 1 0 2");
    expect(run(3, 2, 1, 1, 1, 2) == KILN_E_SHAPE, "scale 3 would give 6 rows: KILN_E_SHAPE");
    expect(run(1.9f, 2, 1, 1, 1, 2) == KILN_E_SHAPE, "scale 1.9 would give 3 rows: KILN_E_SHAPE");
    expect(run(0, 2, 1, 1, 1, 2) == KILN_E_SHAPE, "scale 0: KILN_E_SHAPE");
    expect(run(NAN, 2, 1, 1, 1, 2) == KILN_E_SHAPE, "scale NaN: KILN_E_SHAPE");
    expect(run(2, 2, 1, 1, 1, 1) == KILN_E_SHAPE, "pads would give 4 columns: KILN_E_SHAPE");
    expect(run(2, 2, 3, 1, -1, 2) == KILN_OK, "pads 3 and -1 (crop) give 4 rows: KILN_OK");
    expect(run(2, 2, INT64_MIN, 1, INT64_MIN + 2, 2) == KILN_E_SHAPE,
           "pads whose sum wraps to the declared length: KILN_E_SHAPE");
    expect(run(2, 2, 1, 1, 1, 2) == KILN_OK && equal_to(padded, pad_1_1_1_2, 20),
           "valid again: KILN_OK");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
