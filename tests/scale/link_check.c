/*
 * link_check.c — a program that links a compiled model with one float input and one float
 * output (compiled with --name big, header big.h) and compares predict's output with a raw
 * float32 reference. Used by tests/scale/large_weights.sh on weights past 2 GiB, where the
 * weights must link and be addressed correctly.
 *
 * usage: link_check INPUT.f32 REFERENCE.f32   (exit 0: every element within tolerance)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "big.h"

static float *read_floats(const char *path, size_t n) {
    float *v = malloc(n * sizeof *v);
    FILE *f = fopen(path, "rb");
    size_t got = f && v ? fread(v, sizeof *v, n, f) : 0;
    if (f) fclose(f);
    if (got != n) {
        fprintf(stderr, "link_check: cannot read %zu floats from %s\n", n, path);
        free(v);
        return NULL;
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: link_check INPUT.f32 REFERENCE.f32\n");
        return 2;
    }
    float *x = read_floats(argv[1], BIG_INPUT_0_SIZE);
    float *want = read_floats(argv[2], BIG_OUTPUT_0_SIZE);
    float *y = malloc(BIG_OUTPUT_0_SIZE * sizeof *y);
    void *ws = aligned_alloc(BIG_WORKSPACE_ALIGN, (BIG_WORKSPACE_SIZE + BIG_WORKSPACE_ALIGN - 1) /
                                                      BIG_WORKSPACE_ALIGN * BIG_WORKSPACE_ALIGN);
    if (!x || !want || !y || !ws) return 2;
    int rc = big_predict(x, y, ws);
    if (rc != 0) {
        fprintf(stderr, "link_check: predict returned %d\n", rc);
        return 1;
    }
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < BIG_OUTPUT_0_SIZE; i++) {
        double err = fabs((double)y[i] - want[i]);
        if (err > worst) worst = err;
        if (!(err <= 1e-4 + 1e-3 * fabs(want[i]))) bad++;
    }
    printf("link_check: %d elements, max abs err %.3g, %d outside tolerance\n",
           BIG_OUTPUT_0_SIZE, worst, bad);
    return bad ? 1 : 0;
}
