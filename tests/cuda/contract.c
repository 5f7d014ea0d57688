/*
 * tests/cuda/contract.c — the run-time contract of a CUDA object, through its header.
 *
 * The digits example compiled twice: for the CPU (digits.o, the example's) and for cuda-sm90
 * as an emulator object (dgpu.o, --cuda-emulate), linked with the emulator standing in for
 * libcuda (fakecuda.c). Checks: the model table (device, sm, sizes, no CPU entries), the
 * return codes (NULL arguments, a state not loaded, a misaligned workspace), that predict_host
 * and predict on "device" memory both give the CPU's results, that a result does not depend on
 * what the workspace held, and that unload is idempotent. Prints one line per check and
 * "N passed, M failed"; exit status 1 if any failed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgpu.h"
#include "digits.h"

/* the emulator's driver calls (fakecuda.c), as libcuda's */
int cuMemAlloc_v2(unsigned long long *p, size_t bytes);
int cuMemFree_v2(unsigned long long p);
int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t bytes);
int cuMemcpyDtoHAsync_v2(void *dst, unsigned long long src, size_t bytes, void *stream);
int cuStreamSynchronize(void *stream);

static int passed, failed;

static void report(int ok, const char *what) {
    printf("%s - %s\n", ok ? "ok  " : "FAIL", what);
    if (ok)
        passed++;
    else
        failed++;
}

static float max_diff(const float *a, const float *b, int n) {
    float m = 0;
    for (int i = 0; i < n; i++)
        m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

static void fill_image(float *img, unsigned seed) {
    for (int i = 0; i < DGPU_INPUT_0_SIZE; i++) {
        seed = seed * 1103515245u + 12345u;
        img[i] = (float)((seed >> 16) % 17);
    }
}

static void check_table(void) {
    const kiln_model *m = &dgpu_model;
    report(m->abi_version == KILN_ABI_VERSION, "model table abi_version is KILN_ABI_VERSION");
    report(m->device == KILN_DEVICE_CUDA && m->cuda_sm == 90, "device CUDA, sm_90");
    report(m->cuda_state_size == DGPU_CUDA_STATE_SIZE, "cuda_state_size is sizeof(dgpu_cuda)");
    report(m->cuda_host_workspace_size == DGPU_CUDA_HOST_WORKSPACE_SIZE,
           "cuda_host_workspace_size is the header's");
    report(m->workspace_size == DGPU_WORKSPACE_SIZE, "workspace_size is the header's");
    report(!m->run && !m->run_parallel && m->cuda_load && m->cuda_run && m->cuda_run_host,
           "CUDA entries only");
    report(!strcmp(m->target, "cuda-sm90") && !strcmp(m->cpu, "sm_90"), "target cuda-sm90, cpu sm_90");
}

static void check_codes(dgpu_cuda *state, void *ws) {
    static float img[DGPU_INPUT_0_SIZE], out[DGPU_OUTPUT_0_SIZE];
    report(dgpu_cuda_load(NULL) == KILN_E_NULL_ARGUMENT, "load(NULL): KILN_E_NULL_ARGUMENT");
    report(dgpu_cuda_predict_host(img, out, ws, NULL, state) == KILN_E_NULL_ARGUMENT,
           "predict before load: KILN_E_NULL_ARGUMENT");
    report(dgpu_cuda_load(state) == KILN_OK && state->module, "load: KILN_OK, a module");
    report(dgpu_cuda_predict_host(NULL, out, ws, NULL, state) == KILN_E_NULL_ARGUMENT,
           "predict_host(NULL input): KILN_E_NULL_ARGUMENT");
    report(dgpu_cuda_predict_host(img, out, NULL, NULL, state) == KILN_E_NULL_ARGUMENT,
           "predict_host(NULL workspace): KILN_E_NULL_ARGUMENT");
    report(dgpu_cuda_predict_host(img, out, (char *)ws + 4, NULL, state) == KILN_E_MISALIGNED,
           "predict_host(misaligned workspace): KILN_E_MISALIGNED");
    report(dgpu_cuda_predict(img, out, ws, NULL, NULL) == KILN_E_NULL_ARGUMENT,
           "predict(NULL state): KILN_E_NULL_ARGUMENT");
}

/* predict_host against the CPU object, on a few images, the workspace refilled between calls */
static void check_host(dgpu_cuda *state, void *ws) {
    static _Alignas(64) unsigned char cpu_ws[DIGITS_WORKSPACE_SIZE + 1];
    float img[DGPU_INPUT_0_SIZE], want[DGPU_OUTPUT_0_SIZE], got[DGPU_OUTPUT_0_SIZE];
    float worst = 0;
    int ok = 1;
    for (unsigned s = 1; s <= 4; s++) {
        fill_image(img, s);
        ok = ok && digits_predict(img, want, cpu_ws) == KILN_OK;
        memset(ws, (int)(s * 37), DGPU_CUDA_HOST_WORKSPACE_SIZE);
        ok = ok && dgpu_cuda_predict_host(img, got, ws, NULL, state) == KILN_OK;
        worst = fmaxf(worst, max_diff(want, got, DGPU_OUTPUT_0_SIZE));
    }
    report(ok, "predict_host: KILN_OK");
    char what[96];
    snprintf(what, sizeof what, "predict_host gives the CPU's logits (max diff %.2g)", worst);
    report(ok && worst < 1e-3f, what);
}

/* predict on device pointers, then the outputs copied back after the stream */
static void check_device(dgpu_cuda *state) {
    unsigned long long in = 0, out = 0, ws = 0;
    float img[DGPU_INPUT_0_SIZE], want[DGPU_OUTPUT_0_SIZE], got[DGPU_OUTPUT_0_SIZE];
    static _Alignas(64) unsigned char cpu_ws[DIGITS_WORKSPACE_SIZE + 1];
    fill_image(img, 9);
    int ok = digits_predict(img, want, cpu_ws) == KILN_OK &&
             cuMemAlloc_v2(&in, sizeof img) == 0 && cuMemAlloc_v2(&out, sizeof got) == 0 &&
             cuMemAlloc_v2(&ws, DGPU_WORKSPACE_SIZE + 1) == 0 &&
             cuMemcpyHtoD_v2(in, img, sizeof img) == 0;
    ok = ok && dgpu_cuda_predict((const float *)(uintptr_t)in, (float *)(uintptr_t)out,
                                 (void *)(uintptr_t)ws, NULL, state) == KILN_OK;
    ok = ok && cuMemcpyDtoHAsync_v2(got, out, sizeof got, NULL) == 0 && cuStreamSynchronize(NULL) == 0;
    report(ok && max_diff(want, got, DGPU_OUTPUT_0_SIZE) < 1e-3f,
           "predict on device pointers gives the CPU's logits");
    cuMemFree_v2(in);
    cuMemFree_v2(out);
    cuMemFree_v2(ws);
}

int main(void) {
    check_table();
    dgpu_cuda state;
    memset(&state, 0, sizeof state);
    void *ws = aligned_alloc(256, (DGPU_CUDA_HOST_WORKSPACE_SIZE + 255) / 256 * 256);
    check_codes(&state, ws);
    check_host(&state, ws);
    check_device(&state);
    report(dgpu_cuda_unload(&state) == KILN_OK && !state.module, "unload: KILN_OK, no module");
    report(dgpu_cuda_unload(&state) == KILN_OK, "unload again: KILN_OK");
    free(ws);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
