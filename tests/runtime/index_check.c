/*
 * index_check.c — KILN_E_INDEX_OUT_OF_RANGE for index data out of range (ops/index_check.c).
 *
 * gathers.onnx (make_gather_model.py) reads table[r][c] = 10 r + c by Gather, GatherND and
 * ScatterElements, each with its own run-time index input, and one-hot encodes codes by
 * OneHotEncoder (categories 4 and 8, zeros = 0). Valid indices (negative ones count from the
 * end) and codes give the right values and KILN_OK; one index past either end of its axis, in
 * any of the three, or a code of no category gives KILN_E_INDEX_OUT_OF_RANGE, through predict
 * and the parallel entry.
 */
#include <stdio.h>
#include <string.h>

#include "gathers.h"

static int failed, passed;

static void expect(int cond, const char *what) {
    printf("%s %s\n", cond ? "PASS" : "FAIL", what);
    if (cond) passed++;
    else failed++;
}

static _Alignas(64) unsigned char workspace[GATHERS_WORKSPACE_SIZE + 64];

static const int64_t good_codes[3] = {8, 4, 8};
static const int64_t *codes = good_codes;
static float onehot[6];

static int run(const int64_t rows[2], const int64_t cells[4], const int32_t targets[3],
               float picked[6], float cells_out[2], float scattered[15], int parallel) {
    if (parallel)
        return gathers_predict_parallel(rows, cells, targets, codes, picked, cells_out,
                                        scattered, onehot, workspace, NULL);
    return gathers_predict(rows, cells, targets, codes, picked, cells_out, scattered, onehot,
                           workspace);
}

int main(void) {
    float picked[6], cells_out[2], scattered[15];
    const int64_t rows[2] = {1, -1}, cells[4] = {4, 2, -5, 0};
    const int32_t targets[3] = {0, -1, 2};
    int rc = run(rows, cells, targets, picked, cells_out, scattered, 0);
    expect(rc == KILN_OK, "valid indices: KILN_OK");
    expect(picked[0] == 10 && picked[2] == 12 && picked[3] == 40 && picked[5] == 42,
           "Gather rows 1 and -1");
    expect(cells_out[0] == 42 && cells_out[1] == 0, "GatherND cells (4, 2) and (-5, 0)");
    expect(scattered[0] == 100 && scattered[13] == 100 && scattered[8] == 100 &&
               scattered[1] == 1 && scattered[14] == 42,
           "ScatterElements into rows 0, 4 and 2");
    expect(onehot[0] == 0 && onehot[1] == 1 && onehot[2] == 1 && onehot[3] == 0 &&
               onehot[4] == 0 && onehot[5] == 1,
           "OneHotEncoder codes 8, 4, 8");

    for (int parallel = 0; parallel < 2; parallel++) {
        const char *entry = parallel ? " (parallel entry)" : "";
        char what[128];
        const int64_t bad_rows[2] = {1, 5}, low_rows[2] = {-6, 0};
        snprintf(what, sizeof what, "Gather row 5 of 5: out of range%s", entry);
        expect(run(bad_rows, cells, targets, picked, cells_out, scattered, parallel) ==
                   KILN_E_INDEX_OUT_OF_RANGE, what);
        snprintf(what, sizeof what, "Gather row -6 of 5: out of range%s", entry);
        expect(run(low_rows, cells, targets, picked, cells_out, scattered, parallel) ==
                   KILN_E_INDEX_OUT_OF_RANGE, what);
        const int64_t bad_cells[4] = {0, 3, 0, 0};
        snprintf(what, sizeof what, "GatherND column 3 of 3: out of range%s", entry);
        expect(run(rows, bad_cells, targets, picked, cells_out, scattered, parallel) ==
                   KILN_E_INDEX_OUT_OF_RANGE, what);
        const int32_t bad_targets[3] = {0, 0, -7};
        snprintf(what, sizeof what, "ScatterElements row -7 of 5: out of range%s", entry);
        expect(run(rows, cells, bad_targets, picked, cells_out, scattered, parallel) ==
                   KILN_E_INDEX_OUT_OF_RANGE, what);
        const int64_t unknown_codes[3] = {4, 5, 8};
        codes = unknown_codes;
        snprintf(what, sizeof what, "OneHotEncoder code 5, no category (zeros 0)%s", entry);
        expect(run(rows, cells, targets, picked, cells_out, scattered, parallel) ==
                   KILN_E_INDEX_OUT_OF_RANGE, what);
        codes = good_codes;
    }
    expect(run(rows, cells, targets, picked, cells_out, scattered, 0) == KILN_OK,
           "valid again after errors: KILN_OK");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
