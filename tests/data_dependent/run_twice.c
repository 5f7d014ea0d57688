/*
 * run_twice.c — one object, two calls of predict_dynamic with different data: a NonZero and a
 * Compress output (make_model.py) must report their run-time dims each time and hold their
 * data densely at those dims, in buffers of the bound. Also: predict returns
 * KILN_E_DYNAMIC_OUTPUT and touches nothing; the header and model table say what kiln.h says.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
/* the header of the object (a cross build names its own) */
#ifdef MODEL_HEADER
#include MODEL_HEADER
#else
#include "dd_model.h"
#endif

static int failures;

static void expect(int ok, const char *what) {
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}

/* NonZero and Compress computed here the obvious way, for x [3,4] and keep [4]. */
static int64_t reference(const float *x, const unsigned char *keep, int64_t *nz, float *cz,
                         int64_t *kept) {
    int64_t count = 0;
    for (int i = 0; i < 12; i++)
        if (x[i] != 0) count++;
    int64_t k = 0;
    for (int i = 0; i < 12; i++)
        if (x[i] != 0) {
            nz[k] = i / 4;
            nz[count + k] = i % 4;
            k++;
        }
    *kept = 0;
    for (int j = 0; j < 4; j++) *kept += keep[j] != 0;
    for (int r = 0, at = 0; r < 3; r++)
        for (int j = 0; j < 4; j++)
            if (keep[j]) cz[at++] = x[r * 4 + j];
    return count;
}

static void run_once(const char *name, const float *x, const unsigned char *keep, void *ws) {
    /* buffers of the bound, filled with a marker so that a write past the run-time size shows */
    int64_t nz[DD_MODEL_OUTPUT_0_SIZE], want_nz[DD_MODEL_OUTPUT_0_SIZE];
    float cz[DD_MODEL_OUTPUT_1_SIZE + 4], want_cz[DD_MODEL_OUTPUT_1_SIZE];
    for (int i = 0; i < DD_MODEL_OUTPUT_0_SIZE; i++) nz[i] = -7;
    for (int i = 0; i < DD_MODEL_OUTPUT_1_SIZE + 4; i++) cz[i] = -7.0f;
    int64_t nz_shape[2] = {-1, -1}, cz_shape[2] = {-1, -1};
    const int64_t x_shape[2] = {3, 4}, keep_shape[1] = {4};
    int rc = dd_model_predict_dynamic(x, x_shape, (const bool *)keep, keep_shape, nz, nz_shape,
                                      cz, cz_shape, ws);
    int64_t kept, count = reference(x, keep, want_nz, want_cz, &kept);
    char what[160];
    snprintf(what, sizeof what, "%s: predict_dynamic returns KILN_OK", name);
    expect(rc == KILN_OK, what);
    snprintf(what, sizeof what, "%s: nz's dims are [2, %lld] (got [%lld, %lld])", name,
             (long long)count, (long long)nz_shape[0], (long long)nz_shape[1]);
    expect(nz_shape[0] == 2 && nz_shape[1] == count, what);
    snprintf(what, sizeof what, "%s: cz's dims are [3, %lld] (got [%lld, %lld])", name,
             (long long)kept, (long long)cz_shape[0], (long long)cz_shape[1]);
    expect(cz_shape[0] == 3 && cz_shape[1] == kept, what);
    snprintf(what, sizeof what, "%s: nz holds the coordinates densely, nothing after them", name);
    int ok = memcmp(nz, want_nz, (size_t)(2 * count) * sizeof *nz) == 0;
    for (int64_t i = 2 * count; i < DD_MODEL_OUTPUT_0_SIZE; i++) ok = ok && nz[i] == -7;
    expect(ok, what);
    snprintf(what, sizeof what, "%s: cz holds the kept columns densely, nothing after them", name);
    ok = memcmp(cz, want_cz, (size_t)(3 * kept) * sizeof *cz) == 0;
    for (int64_t i = 3 * kept; i < DD_MODEL_OUTPUT_1_SIZE + 4; i++) ok = ok && cz[i] == -7.0f;
    expect(ok, what);
}

int main(void) {
    void *ws = aligned_alloc(KILN_WORKSPACE_ALIGN, (DD_MODEL_WORKSPACE_SIZE + 63) / 64 * 64 + 64);
    if (!ws) return 1;
    const kiln_model *m = &dd_model_model;
    expect(m->bounded == 0 && m->run_dynamic != NULL, "model table: run_dynamic, not bounded");
    expect(m->outputs[0].shape[1] == 12 && m->outputs[1].shape[1] == 4,
           "model table: the outputs' shapes are the bounds [2,12] and [3,4]");

    const float x1[12] = {0, 1, 0, 2, 3, 0, 0, 0, 0, 4, 5, 0};
    const unsigned char keep1[4] = {1, 0, 1, 1};
    run_once("first call", x1, keep1, ws);
    const float x2[12] = {7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1};
    const unsigned char keep2[4] = {0, 1, 0, 0};
    run_once("second call", x2, keep2, ws);
    const float x3[12] = {0};
    const unsigned char keep3[4] = {0, 0, 0, 0};
    run_once("nothing selected", x3, keep3, ws);

    int64_t nz[DD_MODEL_OUTPUT_0_SIZE];
    float cz[DD_MODEL_OUTPUT_1_SIZE];
    for (int i = 0; i < DD_MODEL_OUTPUT_0_SIZE; i++) nz[i] = -7;
    int rc = dd_model_predict(x1, (const bool *)keep1, nz, cz, ws);
    expect(rc == KILN_E_DYNAMIC_OUTPUT && nz[0] == -7,
           "predict returns KILN_E_DYNAMIC_OUTPUT and writes nothing");
    const int64_t bad_shape[2] = {4, 3}, keep_shape[1] = {4};
    int64_t nz_shape[2], cz_shape[2];
    rc = dd_model_predict_dynamic(x1, bad_shape, (const bool *)keep1, keep_shape, nz, nz_shape,
                                  cz, cz_shape, ws);
    expect(rc == KILN_E_SHAPE, "predict_dynamic with another input shape returns KILN_E_SHAPE");
    free(ws);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures != 0;
}
