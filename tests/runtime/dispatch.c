/*
 * dispatch.c — which code a portable object ran on this CPU, and what it computed
 * (tests/runtime/dispatch.sh runs it natively and under qemu-x86_64 with older CPUs).
 *
 * The object remembers the CPU's ISA level in the last 64 bytes of the workspace (a tag, then
 * the level: codegen/llvm/dispatch.c); the workspace starts full of other bytes, as a caller's
 * reused buffer would, so the first call must check the CPU. A second call reuses the answer
 * and must compute the same bits. Prints "level N" and the outputs, one per line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convnet_portable.h"

static void *zalloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (p) memset(p, 0, bytes);
    return p;
}

int main(void) {
    const kiln_model *m = &convnet_portable_model;
    size_t ws = (size_t)m->workspace_size, in_n = CONVNET_PORTABLE_INPUT_0_SIZE,
           out_n = CONVNET_PORTABLE_OUTPUT_0_SIZE;
    unsigned char *w = zalloc(ws);
    float *x = zalloc(in_n * sizeof *x), *y = zalloc(out_n * sizeof *y),
          *again = zalloc(out_n * sizeof *again);
    if (!w || !x || !y || !again) return 2;
    for (size_t i = 0; i < in_n; i++) x[i] = sinf(0.37f * (float)i);
    memset(w, 0xa5, ws);
    if (convnet_portable_predict(x, y, w) != KILN_OK) return 1;
    int level;
    memcpy(&level, w + ws - 64 + 8, sizeof level);
    if (convnet_portable_predict(x, again, w) != KILN_OK) return 1;
    if (memcmp(y, again, out_n * sizeof *y) != 0) {
        printf("the second call (remembered CPU level) computed different bits\n");
        return 1;
    }
    printf("level %d\n", level);
    for (size_t i = 0; i < out_n; i++) printf("%.9g\n", y[i]);
    free(w);
    free(x);
    free(y);
    free(again);
    return 0;
}
