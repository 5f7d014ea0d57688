/*
 * reduce_axes.c — Reduce's axes given at run time (compiler/ops/reduce.c), and KILN_E_SHAPE.
 *
 * reduce_axes.onnx (make_reduce_axes_model.py) sums x[i][j][k] = 4 i + 2 j + k over axes that
 * arrive with the inputs, into outputs whose shapes the model declares. Axes that give the
 * declared shape compute the right sums (both readings of an ambiguous one, and negative axes);
 * any other axes (another shape, out of range) return KILN_E_SHAPE.
 */
#include <stdio.h>

#include "reduce_axes.h"

static int failed, passed;

static void expect(int cond, const char *what) {
    printf("%s %s\n", cond ? "PASS" : "FAIL", what);
    if (cond) passed++;
    else failed++;
}

static _Alignas(64) unsigned char workspace[REDUCE_AXES_WORKSPACE_SIZE + 64];
static float x[12], kept[6], dropped[6];

static int run(int64_t axis_kept, int64_t axis_dropped) {
    return reduce_axes_predict(x, &axis_kept, &axis_dropped, kept, dropped, workspace);
}

int main(void) {
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    expect(run(1, 1) == KILN_OK, "axes 1 and 1: KILN_OK");
    /* kept[i][0][k] = sum_j x[i][j][k] = 2 (4 i + k) + 2 */
    expect(kept[0] == 2 && kept[1] == 4 && kept[4] == 18 && kept[5] == 20, "kept: sums over axis 1");
    expect(dropped[0] == 2 && dropped[3] == 12, "dropped over axis 1");
    expect(run(-2, 2) == KILN_OK, "axes -2 and 2: KILN_OK");
    /* dropped[i][j] = sum_k x[i][j][k] = 2 (4 i + 2 j) + 1 */
    expect(kept[0] == 2 && dropped[0] == 1 && dropped[1] == 5 && dropped[5] == 21,
           "dropped over axis 2 (the other reading of the declared [3, 2])");
    expect(run(1, -1) == KILN_OK && dropped[1] == 5, "axis -1 is axis 2");
    expect(run(2, 1) == KILN_E_SHAPE, "kept over axis 2 would be [3, 2, 1]: KILN_E_SHAPE");
    expect(run(0, 1) == KILN_E_SHAPE, "kept over axis 0 would be [1, 2, 2]: KILN_E_SHAPE");
    expect(run(1, 0) == KILN_E_SHAPE, "dropped over axis 0 would be [2, 2]: KILN_E_SHAPE");
    expect(run(3, 1) == KILN_E_SHAPE, "axis 3 of rank 3: KILN_E_SHAPE");
    expect(run(1, -4) == KILN_E_SHAPE, "axis -4 of rank 3: KILN_E_SHAPE");
    expect(run(1, 2) == KILN_OK, "valid again: KILN_OK");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
