/*
 * shape_inputs.c — inputs that decide an output's shape, given at run time where the model
 * declares that shape (compiler/ops/topk.c, signal.c, col2im.c, affine_grid.c), and
 * KILN_E_SHAPE.
 *
 * shape_inputs.onnx (make_shape_inputs_model.py) holds one TopK, HannWindow, Col2Im, STFT and
 * AffineGrid. Values that give the declared shapes compute what a direct computation here
 * gives (both readings of Col2Im's block [1, 5] / [5, 1] and of STFT's length 4 / 5, TopK's
 * NaN above every number and ties by index); any value that asks another shape returns
 * KILN_E_SHAPE.
 */
#include <math.h>
#include <stdio.h>

#include "shape_inputs.h"

static int failed, passed;

static void expect(int cond, const char *what) {
    printf("%s %s\n", cond ? "PASS" : "FAIL", what);
    if (cond) passed++;
    else failed++;
}

static int close_to(double got, double want) { return fabs(got - want) <= 1e-5 * (1 + fabs(want)); }

static _Alignas(64) unsigned char workspace[SHAPE_INPUTS_WORKSPACE_SIZE + 64];
static float x[10], cols[25], signal[16], theta[6] = {1, 2, 3, 4, 5, 6};
static float values[6], window[4], image[25], spectrum[24], grid[12];
static int64_t indices[6];

typedef struct given {
    int64_t k, size, block[2], step, length, grid_size[4];
} given;

static given valid(void) {
    return (given){.k = 3, .size = 4, .block = {1, 5}, .step = 4, .length = 4,
                   .grid_size = {1, 7, 2, 3}};
}

static int run(given g) {
    return shape_inputs_predict(x, &g.k, &g.size, cols, g.block, signal, &g.step, &g.length, theta,
                                g.grid_size, values, indices, window, image, spectrum, grid,
                                workspace);
}

/* Col2Im of cols with a b0 x b1 block (stride 1, no padding) into a 5 x 5 image */
static int image_is(int b0, int b1) {
    double want[25] = {0};
    int l0 = 5 - b0 + 1, l1 = 5 - b1 + 1;
    for (int i = 0; i < b0; i++)
        for (int j = 0; j < b1; j++)
            for (int p = 0; p < l0; p++)
                for (int q = 0; q < l1; q++)
                    want[(p + i) * 5 + q + j] += cols[(i * b1 + j) * 5 + p * l1 + q];
    for (int i = 0; i < 25; i++)
        if (!close_to(image[i], want[i])) return 0;
    return 1;
}

/* the 4 frames' 3 bins of a length-`len` DFT, frames `step` apart */
static int spectrum_is(int len, int step) {
    const double pi = 3.14159265358979323846;
    for (int f = 0; f < 4; f++)
        for (int k = 0; k < 3; k++) {
            double re = 0, im = 0;
            for (int m = 0; m < len; m++) {
                double t = -2 * pi * (double)(k * m % len) / len;
                re += signal[f * step + m] * cos(t);
                im += signal[f * step + m] * sin(t);
            }
            const float *got = &spectrum[(f * 3 + k) * 2];
            if (!close_to(got[0], re) || !close_to(got[1], im)) return 0;
        }
    return 1;
}

int main(void) {
    const float row0[5] = {1, NAN, 3, 3, -2}, row1[5] = {5, 4, 5, 6, 4};
    for (int i = 0; i < 5; i++) x[i] = row0[i], x[5 + i] = row1[i];
    for (int i = 0; i < 25; i++) cols[i] = (float)(i + 1);
    for (int i = 0; i < 16; i++) signal[i] = (float)((i * 7) % 5 - 2);

    given g = valid();
    expect(run(g) == KILN_OK, "valid shape inputs: KILN_OK");
    expect(isnan(values[0]) && values[1] == 3 && values[2] == 3 && indices[0] == 1 &&
           indices[1] == 2 && indices[2] == 3, "TopK: NaN first, equal values by index");
    expect(values[3] == 6 && values[4] == 5 && values[5] == 5 && indices[3] == 3 &&
           indices[4] == 0 && indices[5] == 2, "TopK: the three largest of row 1");
    expect(close_to(window[0], 0) && close_to(window[1], 0.5) && close_to(window[2], 1) &&
           close_to(window[3], 0.5), "HannWindow: periodic, 4 samples");
    expect(image_is(1, 5), "Col2Im: block [1, 5]");
    expect(spectrum_is(4, 4), "STFT: length 4, step 4");
    const float xs[3] = {-1, 0, 1}, ys[2] = {-1, 1};
    int grid_ok = 1;
    for (int h = 0; h < 2; h++)
        for (int w = 0; w < 3; w++)
            for (int j = 0; j < 2; j++)
                grid_ok &= close_to(grid[(h * 3 + w) * 2 + j], theta[3 * j] * xs[w] +
                                                                    theta[3 * j + 1] * ys[h] +
                                                                    theta[3 * j + 2]);
    expect(grid_ok, "AffineGrid: align_corners, 2 x 3");

    g.block[0] = 5, g.block[1] = 1;
    g.step = 3, g.length = 5;
    expect(run(g) == KILN_OK && image_is(5, 1) && spectrum_is(5, 3),
           "the other readings: Col2Im block [5, 1], STFT length 5 step 3");

    g = valid(), g.k = 2;
    expect(run(g) == KILN_E_SHAPE, "TopK k 2 for a declared 3: KILN_E_SHAPE");
    g = valid(), g.size = 5;
    expect(run(g) == KILN_E_SHAPE, "HannWindow size 5 for a declared 4: KILN_E_SHAPE");
    g = valid(), g.block[1] = 4;
    expect(run(g) == KILN_E_SHAPE, "Col2Im block [1, 4] (4 of 5 rows): KILN_E_SHAPE");
    g = valid(), g.block[0] = 0, g.block[1] = 0;
    expect(run(g) == KILN_E_SHAPE, "Col2Im block [0, 0]: KILN_E_SHAPE");
    g = valid(), g.block[0] = -1, g.block[1] = -5;
    expect(run(g) == KILN_E_SHAPE, "Col2Im block [-1, -5] (product 5): KILN_E_SHAPE");
    g = valid(), g.block[0] = (int64_t)1 << 62, g.block[1] = 5;
    expect(run(g) == KILN_E_SHAPE, "Col2Im block [2^62, 5]: KILN_E_SHAPE");
    g = valid(), g.step = 3;
    expect(run(g) == KILN_E_SHAPE, "STFT step 3 with length 4 (5 frames): KILN_E_SHAPE");
    g = valid(), g.step = 0;
    expect(run(g) == KILN_E_SHAPE, "STFT step 0: KILN_E_SHAPE");
    g = valid(), g.length = 6, g.step = 3;
    expect(run(g) == KILN_E_SHAPE, "STFT length 6 (4 bins): KILN_E_SHAPE");
    g = valid(), g.grid_size[3] = 4;
    expect(run(g) == KILN_E_SHAPE, "AffineGrid width 4 for a declared 3: KILN_E_SHAPE");
    expect(run(valid()) == KILN_OK, "valid again: KILN_OK");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
