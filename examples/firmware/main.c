/*
 * main.c — the firmware example: the digits classifier on a microcontroller, no OS, no C
 * library. Built for a Cortex-M4 (the main case), a Cortex-M0+ and an RV32 core.
 *
 * digits.o was compiled by `kiln compile digits.onnx --target T --weights-section
 * .kiln_weights` at build time (meson.build here, or kiln_add_model in CMakeLists.txt); the
 * linker script (cortex_m.ld, riscv32.ld) puts its weights in flash and this file gives it its
 * only RAM, a static workspace. The held-out images, their labels and PyTorch's logits (digits_samples.h, from
 * train.py) are constants in flash too. The program classifies every image, prints a few lines
 * and the totals through semihosting, and exits with failure unless the accuracy is at least
 * 95% and every result matches PyTorch's within the project's tolerance: the test suite runs
 * it under qemu-system-arm (mps2-an386, mps2-an385) or qemu-system-riscv32 (virt) and reads the
 * exit status.
 *
 * No malloc, no printf, no libm: numbers are printed by the small helpers below.
 */
#include <stdbool.h>
#include <stdint.h>

#ifndef MODEL_HEADER /* the header kiln wrote for this target's object */
#define MODEL_HEADER "digits.h"
#endif
#include MODEL_HEADER
#include "digits_samples.h"
#include "semihost.h"

#ifndef FIRMWARE_TARGET
#define FIRMWARE_TARGET "a microcontroller"
#endif

enum { N_CLASSES = 10, SHOWN_LINES = 5 };
static const float LOGIT_RTOL = 1e-3f, LOGIT_ATOL = 1e-4f;

/* The model's whole working memory: static, aligned as the header asks. */
static _Alignas(DIGITS_WORKSPACE_ALIGN) unsigned char
    workspace[DIGITS_WORKSPACE_SIZE > 0 ? DIGITS_WORKSPACE_SIZE : 1];

/* ---- printing without printf ---- */

static char line[160];
static int line_len;

static void put(const char *s) {
    while (*s && line_len < (int)sizeof line - 1) line[line_len++] = *s++;
}

static void put_uint(uint32_t v) {
    char digits[11];
    int n = 0;
    do digits[n++] = (char)('0' + v % 10); while ((v /= 10) && n < 10);
    while (n) {
        char c[2] = {digits[--n], 0};
        put(c);
    }
}

/* v >= 0 as d.dde-XX (enough to show an error's size) */
static void put_small(float v) {
    int e = 0;
    if (v > 0) {
        while (v >= 10.0f) { v /= 10.0f; e++; }
        while (v < 1.0f) { v *= 10.0f; e--; }
    }
    uint32_t hundredths = (uint32_t)(v * 100.0f + 0.5f);
    put_uint(hundredths / 100);
    put(".");
    put_uint(hundredths / 10 % 10);
    put_uint(hundredths % 10);
    put(e < 0 ? "e-" : "e+");
    put_uint((uint32_t)(e < 0 ? -e : e));
}

static void flush(void) {
    line[line_len] = 0;
    semihost_write(line);
    line_len = 0;
}

/* ---- the work ---- */

static int argmax(const float *v) {
    int best = 0;
    for (int i = 1; i < N_CLASSES; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static float absf(float x) { return x < 0 ? -x : x; }

int main(void) {
    put("firmware: digits on " FIRMWARE_TARGET ", workspace ");
    put_uint(DIGITS_WORKSPACE_SIZE);
    put(" bytes (static RAM), weights in flash\n");
    flush();
    int correct = 0, agree = 0;
    bool within = true;
    float max_err = 0;
    for (int s = 0; s < DIGITS_N_SAMPLES; s++) {
        float image[64], logits[N_CLASSES];
        for (int i = 0; i < 64; i++) image[i] = digits_sample_pixels[s][i] / 16.0f;
        int rc = digits_predict(image, logits, workspace);
        if (rc != KILN_OK) {
            put("digits_predict failed with code ");
            put_uint((uint32_t)-rc);
            put("\n");
            flush();
            return 1;
        }
        int predicted = argmax(logits), truth = digits_sample_labels[s];
        correct += predicted == truth;
        agree += predicted == argmax(digits_torch_logits[s]);
        for (int i = 0; i < N_CLASSES; i++) {
            float want = digits_torch_logits[s][i], err = absf(logits[i] - want);
            if (err > max_err) max_err = err;
            if (!(err <= LOGIT_ATOL + LOGIT_RTOL * absf(want))) within = false;
        }
        if (s < SHOWN_LINES || predicted != truth) {
            put("image ");
            put_uint((uint32_t)s);
            put(": predicted ");
            put_uint((uint32_t)predicted);
            put("  true ");
            put_uint((uint32_t)truth);
            put(predicted == truth ? "\n" : "   <- wrong\n");
            flush();
        }
    }
    put("accuracy ");
    put_uint((uint32_t)correct);
    put("/");
    put_uint(DIGITS_N_SAMPLES);
    put("; same class as PyTorch on ");
    put_uint((uint32_t)agree);
    put("; max |logit - PyTorch's| = ");
    put_small(max_err);
    put(within ? " (within tolerance)\n" : " (OUTSIDE tolerance)\n");
    flush();
    bool pass = correct * 100 >= 95 * DIGITS_N_SAMPLES && agree == DIGITS_N_SAMPLES && within;
    put(pass ? "PASS\n" : "FAIL\n");
    flush();
    return pass ? 0 : 1;
}
