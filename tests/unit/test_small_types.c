/*
 * test_small_types.c — ONNX's float8, float4e2m1, int4/uint4 and int2/uint2 element types:
 * the conversions of runtime-min/kiln_minifloat.h (round to nearest even, saturation on and
 * off, NaN and Inf per kind, fnuz's missing -0, subnormals, float8e8m0's rounding modes),
 * TensorProto's packing (odd element counts), and that the interpreter (constant folding) and
 * the LLVM back end give the same bytes for the same casts.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln.h"
#include "kl.h"

static uint8_t enc(kl_dtype t, float x, unsigned mode) { return kl_f32_to_minifloat(t, x, mode); }
static float dec(kl_dtype t, uint8_t c) { return kl_minifloat_to_f32(t, c); }

static const kl_dtype minifloats[] = {KL_F8E4M3FN, KL_F8E4M3FNUZ, KL_F8E5M2, KL_F8E5M2FNUZ,
                                      KL_F4E2M1, KL_F8E8M0};

/* ---------------------------------------------------------------- conversions */

Test(minifloat, every_code_round_trips) {
    for (size_t k = 0; k < sizeof minifloats / sizeof minifloats[0]; k++) {
        kl_dtype t = minifloats[k];
        int codes = t == KL_F4E2M1 ? 16 : 256;
        for (int c = 0; c < codes; c++) {
            float v = dec(t, (uint8_t)c);
            if (isnan(v)) continue;
            cr_expect_eq(enc(t, v, KL_CAST_STORE), c, "%s code 0x%02x (%g) comes back as 0x%02x",
                         kl_dtype_name(t), c, v, enc(t, v, KL_CAST_STORE));
            if (t != KL_F8E8M0 && !isinf(v)) /* the default (saturating) is exact too */
                cr_expect_eq(enc(t, v, 0), c, "%s code 0x%02x saturating", kl_dtype_name(t), c);
        }
    }
}

Test(minifloat, known_values) {
    cr_expect_eq(dec(KL_F8E4M3FN, 0x7e), 448.0f);
    cr_expect_eq(dec(KL_F8E4M3FNUZ, 0x7f), 240.0f);
    cr_expect_eq(dec(KL_F8E5M2, 0x7b), 57344.0f);
    cr_expect_eq(dec(KL_F8E5M2FNUZ, 0x7f), 57344.0f);
    cr_expect_eq(dec(KL_F4E2M1, 0x7), 6.0f);
    cr_expect_eq(dec(KL_F4E2M1, 0xf), -6.0f);
    cr_expect_eq(dec(KL_F8E8M0, 0x7f), 1.0f);
    cr_expect_eq(dec(KL_F8E8M0, 0x00), ldexpf(1.0f, -127));
    cr_expect(isinf(dec(KL_F8E5M2, 0x7c)) && dec(KL_F8E5M2, 0xfc) < 0);
    cr_expect(isnan(dec(KL_F8E4M3FN, 0x7f)) && isnan(dec(KL_F8E4M3FN, 0xff)));
    cr_expect(isnan(dec(KL_F8E4M3FNUZ, 0x80)) && isnan(dec(KL_F8E5M2FNUZ, 0x80)));
    cr_expect(isnan(dec(KL_F8E5M2, 0x7d)) && isnan(dec(KL_F8E8M0, 0xff)));
}

Test(minifloat, rounds_to_nearest_even) {
    /* e4m3fn: 1.0 = 0x38, 1.125 = 0x39, 1.25 = 0x3a */
    cr_expect_eq(enc(KL_F8E4M3FN, 1.0625f, 0), 0x38); /* tie: down to the even code */
    cr_expect_eq(enc(KL_F8E4M3FN, 1.1875f, 0), 0x3a); /* tie: up to the even code */
    cr_expect_eq(enc(KL_F8E4M3FN, 1.0626f, 0), 0x39); /* past the tie */
    cr_expect_eq(enc(KL_F8E4M3FN, -1.0625f, 0), 0xb8);
    /* a carry out of the mantissa moves to the next binade: 1.9375 -> 2.0 */
    cr_expect_eq(dec(KL_F8E4M3FN, enc(KL_F8E4M3FN, 1.9375f, 0)), 2.0f);
    /* e5m2: 1.0 = 0x3c, 1.25 = 0x3d; 1.125 ties to 1.0, 1.375 to 1.5 */
    cr_expect_eq(enc(KL_F8E5M2, 1.125f, 0), 0x3c);
    cr_expect_eq(enc(KL_F8E5M2, 1.375f, 0), 0x3e);
    /* float4e2m1: 0.25 ties to 0, 0.75 to 1.0, 2.5 to 2, 3.5 to 4, 5 to 4 */
    cr_expect_eq(enc(KL_F4E2M1, 0.25f, 0), 0x0);
    cr_expect_eq(enc(KL_F4E2M1, 0.75f, 0), 0x2);
    cr_expect_eq(enc(KL_F4E2M1, 2.5f, 0), 0x4);
    cr_expect_eq(enc(KL_F4E2M1, 3.5f, 0), 0x6);
    cr_expect_eq(enc(KL_F4E2M1, -5.0f, 0), 0xe);
}

Test(minifloat, subnormals) {
    /* smallest subnormals: e4m3fn 2^-9, e4m3fnuz 2^-10, e5m2 2^-16, e5m2fnuz 2^-17 */
    cr_expect_eq(dec(KL_F8E4M3FN, 0x01), ldexpf(1, -9));
    cr_expect_eq(dec(KL_F8E4M3FNUZ, 0x01), ldexpf(1, -10));
    cr_expect_eq(dec(KL_F8E5M2, 0x01), ldexpf(1, -16));
    cr_expect_eq(dec(KL_F8E5M2FNUZ, 0x01), ldexpf(1, -17));
    cr_expect_eq(dec(KL_F8E4M3FN, 0x07), 7 * ldexpf(1, -9));
    cr_expect_eq(enc(KL_F8E4M3FN, ldexpf(1, -10), 0), 0x00);        /* half the smallest: tie, even */
    cr_expect_eq(enc(KL_F8E4M3FN, 1.5f * ldexpf(1, -10), 0), 0x01); /* past the tie */
    cr_expect_eq(enc(KL_F8E4M3FN, 3 * ldexpf(1, -10), 0), 0x02);    /* 1.5 steps: tie, even */
    cr_expect_eq(enc(KL_F8E4M3FN, -ldexpf(1, -9), 0), 0x81);
    cr_expect_eq(enc(KL_F8E4M3FN, 1e-30f, 0), 0x00);
    cr_expect_eq(enc(KL_F8E4M3FN, 1e-42f, 0), 0x00); /* a float32 subnormal */
    /* the largest subnormal rounds up into the smallest normal: e4m3fn 0x07 -> 0x08 */
    cr_expect_eq(enc(KL_F8E4M3FN, 7.75f * ldexpf(1, -9), 0), 0x08);
    cr_expect_eq(enc(KL_F4E2M1, 0.5f, 0), 0x1); /* float4's only subnormal */
}

Test(minifloat, saturation_on_and_off) {
    /* saturate (the default): past max and Inf go to +-max */
    cr_expect_eq(enc(KL_F8E4M3FN, 1e6f, 0), 0x7e);
    cr_expect_eq(enc(KL_F8E4M3FN, -INFINITY, 0), 0xfe);
    cr_expect_eq(enc(KL_F8E4M3FN, 464.0f, 0), 0x7e); /* rounds to 448 (tie, even) */
    cr_expect_eq(enc(KL_F8E5M2, INFINITY, 0), 0x7b);
    cr_expect_eq(enc(KL_F8E4M3FNUZ, -1e6f, 0), 0xff);
    cr_expect_eq(enc(KL_F8E5M2FNUZ, INFINITY, 0), 0x7f);
    /* not saturating: e5m2 gets Inf, the others NaN (fnuz: the one NaN 0x80) */
    unsigned ns = KL_CAST_NO_SATURATE;
    cr_expect_eq(enc(KL_F8E4M3FN, 1e6f, ns), 0x7f);
    cr_expect_eq(enc(KL_F8E4M3FN, -1e6f, ns), 0xff);
    cr_expect_eq(enc(KL_F8E4M3FN, 480.0f, ns), 0x7f); /* 480 rounds past 448 */
    cr_expect_eq(enc(KL_F8E4M3FN, 464.0f, ns), 0x7e); /* 464 rounds to 448: in range */
    cr_expect_eq(enc(KL_F8E5M2, 1e6f, ns), 0x7c);
    cr_expect_eq(enc(KL_F8E5M2, -INFINITY, ns), 0xfc);
    cr_expect_eq(enc(KL_F8E4M3FNUZ, INFINITY, ns), 0x80);
    cr_expect_eq(enc(KL_F8E5M2FNUZ, -1e6f, ns), 0x80);
    /* float4e2m1 has no Inf or NaN: it always saturates */
    cr_expect_eq(enc(KL_F4E2M1, 9.0f, ns), 0x7);
    cr_expect_eq(enc(KL_F4E2M1, -INFINITY, 0), 0xf);
}

Test(minifloat, nan_and_signed_zero) {
    cr_expect_eq(enc(KL_F8E4M3FN, NAN, 0), 0x7f);
    cr_expect_eq(enc(KL_F8E4M3FN, -NAN, 0), 0xff);
    cr_expect(isnan(dec(KL_F8E5M2, enc(KL_F8E5M2, NAN, 0))));
    cr_expect_eq(enc(KL_F8E4M3FNUZ, NAN, 0), 0x80);
    cr_expect_eq(enc(KL_F8E5M2FNUZ, -NAN, KL_CAST_NO_SATURATE), 0x80);
    cr_expect_eq(enc(KL_F4E2M1, NAN, 0), 0x8); /* as ONNX's test data (ml_dtypes) have it */
    cr_expect_eq(enc(KL_F8E8M0, NAN, 0), 0xff);
    /* -0 exists in e4m3fn / e5m2 / float4, not in the fnuz kinds (0x80 is their NaN) */
    cr_expect_eq(enc(KL_F8E4M3FN, -0.0f, 0), 0x80);
    cr_expect_eq(enc(KL_F8E5M2, -1e-30f, 0), 0x80);
    cr_expect_eq(enc(KL_F4E2M1, -0.0f, 0), 0x8);
    cr_expect_eq(enc(KL_F8E4M3FNUZ, -0.0f, 0), 0x00);
    cr_expect_eq(enc(KL_F8E5M2FNUZ, -1e-30f, 0), 0x00);
}

Test(minifloat, e8m0_rounding_modes) {
    unsigned down = KL_CAST_ROUND_DOWN, nearest = KL_CAST_ROUND_NEAREST;
    cr_expect_eq(enc(KL_F8E8M0, 1.1f, 0), 0x80); /* up (the default): 2 */
    cr_expect_eq(enc(KL_F8E8M0, 1.1f, down), 0x7f);
    cr_expect_eq(enc(KL_F8E8M0, 1.1f, nearest), 0x7f);
    cr_expect_eq(enc(KL_F8E8M0, 1.5f, nearest), 0x80);
    cr_expect_eq(enc(KL_F8E8M0, 0.124f, 0), 0x7c);
    cr_expect_eq(enc(KL_F8E8M0, 4.0f, 0), 0x81); /* exact powers of two in every mode */
    cr_expect_eq(enc(KL_F8E8M0, 4.0f, down), 0x81);
    cr_expect_eq(enc(KL_F8E8M0, 4.0f, nearest), 0x81);
    /* the largest binade: saturating stays at 2^127, not saturating rounds into NaN */
    cr_expect_eq(enc(KL_F8E8M0, 3e38f, 0), 0xfe);
    cr_expect_eq(enc(KL_F8E8M0, 3e38f, KL_CAST_NO_SATURATE), 0xff);
    cr_expect_eq(enc(KL_F8E8M0, INFINITY, 0), 0xff);
}

/* ---------------------------------------------------------------- sub-byte integers, packing */

Test(small_int, wrap) {
    cr_expect_eq(kl_dtype_wrap_small_int(KL_I4, 8), -8);
    cr_expect_eq(kl_dtype_wrap_small_int(KL_I4, -9), 7);
    cr_expect_eq(kl_dtype_wrap_small_int(KL_U4, -3), 13);
    cr_expect_eq(kl_dtype_wrap_small_int(KL_U4, 31), 15);
    cr_expect_eq(kl_dtype_wrap_small_int(KL_I2, 2), -2);
    cr_expect_eq(kl_dtype_wrap_small_int(KL_I2, -3), 1);
    cr_expect_eq(kl_dtype_wrap_small_int(KL_U2, -3), 1);
    cr_expect_eq(kl_dtype_bits(KL_I4), 4);
    cr_expect_eq(kl_dtype_bits(KL_U2), 2);
    cr_expect_eq(kl_dtype_bits(KL_F8E5M2), 8);
}

Test(packing, odd_counts_low_bits_first) {
    cr_expect_eq(kl_dtype_packed_bytes(KL_I4, 3), 2);
    cr_expect_eq(kl_dtype_packed_bytes(KL_F4E2M1, 4), 2);
    cr_expect_eq(kl_dtype_packed_bytes(KL_U2, 5), 2);
    cr_expect_eq(kl_dtype_packed_bytes(KL_I2, 4), 1);
    cr_expect_eq(kl_dtype_packed_bytes(KL_U2, 0), 0);
    cr_expect_eq(kl_dtype_packed_bytes(KL_F8E4M3FN, 3), 3);
    cr_expect_eq(kl_dtype_packed_bytes(KL_I4, INT64_MAX), INT64_MAX / 2 + 1);

    int8_t i4[3] = {-8, 7, -1};
    uint8_t packed[2], back[3];
    kl_dtype_pack(KL_I4, (const uint8_t *)i4, packed, 3);
    cr_expect_eq(packed[0], 0x78);
    cr_expect_eq(packed[1], 0x0f); /* the padding nibble is zero */
    kl_dtype_unpack(KL_I4, packed, back, 3);
    cr_expect_eq(memcmp(back, i4, 3), 0);

    uint8_t u2[5] = {0, 1, 2, 3, 1}, p2[2], b2[5];
    kl_dtype_pack(KL_U2, u2, p2, 5);
    cr_expect_eq(p2[0], 0xe4);
    cr_expect_eq(p2[1], 0x01);
    kl_dtype_unpack(KL_U2, p2, b2, 5);
    cr_expect_eq(memcmp(b2, u2, 5), 0);

    uint8_t i2_packed = 0x9c, i2[4]; /* 0b10_01_11_00: 0, -1, 1, -2 */
    kl_dtype_unpack(KL_I2, &i2_packed, i2, 4);
    cr_expect_eq((int8_t)i2[0], 0);
    cr_expect_eq((int8_t)i2[1], -1);
    cr_expect_eq((int8_t)i2[2], 1);
    cr_expect_eq((int8_t)i2[3], -2);

    uint8_t f4_packed = 0xe2, f4[2]; /* float4 keeps its codes: 1.0, -4.0 */
    kl_dtype_unpack(KL_F4E2M1, &f4_packed, f4, 2);
    cr_expect_eq(f4[0], 0x2);
    cr_expect_eq(f4[1], 0xe);
}

/* ---------------------------------------------------------------- interpreter = LLVM */

#define N 24
static const float cast_inputs[N] = {
    0.0f, -0.0f, 1.0625f, 1.1875f, -3.5f, 0.48f, 448.0f, 464.0f, 500.0f, 1e6f, -1e6f,
    57344.0f, 61440.0f, 1e-7f, -1e-7f, 0.0029296875f, INFINITY, -INFINITY, NAN, 0.124f,
    1.1f, 9.0f, -9.0f, 15.7f};

typedef struct cast_case {
    kl_dtype t;
    unsigned mode;
} cast_case;

static const cast_case cases[] = {
    {KL_F8E4M3FN, 0},   {KL_F8E4M3FN, KL_CAST_NO_SATURATE},   {KL_F8E4M3FNUZ, 0},
    {KL_F8E4M3FNUZ, KL_CAST_NO_SATURATE}, {KL_F8E5M2, 0}, {KL_F8E5M2, KL_CAST_NO_SATURATE},
    {KL_F8E5M2FNUZ, 0}, {KL_F8E5M2FNUZ, KL_CAST_NO_SATURATE}, {KL_F4E2M1, 0},
    {KL_F8E8M0, 0},     {KL_F8E8M0, KL_CAST_ROUND_DOWN},      {KL_F8E8M0, KL_CAST_ROUND_NEAREST},
    {KL_I4, 0},         {KL_U4, 0},                           {KL_I2, 0},
    {KL_U2, 0},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

/* One output per case: out[i] = cast(x[i]) with the case's mode, and a second output per case
 * that adds the value to itself in its own type (rounding / wrapping after the operation) and
 * converts it back to float32 through a load. */
static kl_program *cast_program(kl_arena *a, kl_buffer **outs, kl_buffer **sums) {
    kl_program *p = kl_program_new(a);
    kl_shape s = {.rank = 1, .dim = {N}};
    kl_buffer *x = kl_program_buffer(p, "x", KL_BUF_INPUT, KL_F32, &s);
    x->index = 0;
    kl_ptrvec_push(a, &p->inputs, x);
    kl_expr *i0 = kl_e_iv(a, 0);
    for (int c = 0; c < N_CASES; c++) {
        kl_buffer *o = kl_program_buffer(p, kl_sprintf(a, "o%d", c), KL_BUF_OUTPUT, cases[c].t, &s);
        o->index = p->outputs.n;
        kl_ptrvec_push(a, &p->outputs, o);
        kl_kernel *k = kl_kernel_new(p, NULL, "cast");
        k->n_loops = k->n_par = 1;
        k->extent[0] = N;
        k->out = o;
        k->out_idx = kl_alloc_array(a, 1, sizeof *k->out_idx);
        k->out_idx[0] = i0;
        k->value = kl_e_cast(a, cases[c].t, kl_e_load(a, x, &i0));
        k->value->op = (int)cases[c].mode;
        kl_program_add_kernel(p, k);
        outs[c] = o;

        kl_buffer *f = kl_program_buffer(p, kl_sprintf(a, "s%d", c), KL_BUF_OUTPUT, KL_F32, &s);
        f->index = p->outputs.n;
        kl_ptrvec_push(a, &p->outputs, f);
        kl_kernel *k2 = kl_kernel_new(p, NULL, "sum");
        k2->n_loops = k2->n_par = 1;
        k2->extent[0] = N;
        k2->out = f;
        k2->out_idx = k->out_idx;
        kl_expr *v = kl_e_load(a, o, &i0);
        k2->value = kl_e_cast(a, KL_F32, kl_e_binary(a, KL_ADD, v, v));
        kl_program_add_kernel(p, k2);
        sums[c] = f;
    }
    return p;
}

Test(small_types, interpreter_and_llvm_agree) {
    kl_arena *a = kl_arena_new();
    kl_buffer *outs[N_CASES], *sums[N_CASES];
    kl_program *p = cast_program(a, outs, sums);
    /* the interpreter, on host memory */
    uint8_t ref[N_CASES][N];
    float ref_sum[N_CASES][N];
    ((kl_buffer *)p->inputs.items[0])->host = (void *)cast_inputs;
    for (int c = 0; c < N_CASES; c++) {
        outs[c]->host = ref[c];
        sums[c]->host = ref_sum[c];
    }
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_interp_program(p, &d));
    /* spot checks against ONNX's tables */
    cr_expect_eq(ref[0][9], 0x7e);  /* e4m3fn 1e6 saturates */
    cr_expect_eq(ref[1][9], 0x7f);  /* ... or is NaN */
    cr_expect_eq(ref[5][16], 0x7c); /* e5m2 Inf stays Inf without saturation */
    cr_expect_eq(ref[2][14], 0x00); /* fnuz: -1e-7 is +0 */
    cr_expect_eq((int8_t)ref[12][21], -7); /* int4: 9 wraps */
    cr_expect_eq(ref[13][23], 15);         /* uint4: 15.7 truncates */
    cr_expect_eq(ref_sum[0][6], 448.0f);   /* 448 + 448 saturates in e4m3fn */
    cr_expect_eq(ref_sum[12][21], 2.0f);   /* int4: -7 + -7 wraps to 2 */

    /* the LLVM back end: a shared library, run through the generic entry */
    cr_assert(kl_plan_memory(p, &d));
    char dir[] = "/tmp/kiln-test-small-XXXXXX", path[128];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/small.so", dir);
    kl_codegen_opts o = {kl_target_default(), "small", 2, KL_EMIT_SO};
    bool ok = kl_codegen_llvm(p, NULL, &o, path, &d);
    if (!ok) kl_diag_print(&d, stderr);
    cr_assert(ok);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(so, "dlopen: %s", dlerror());
    typedef int (*run_fn)(const void *const *, void *const *, void *);
    run_fn run = (run_fn)dlsym(so, "small_run");
    cr_assert(run);
    uint8_t got[N_CASES][N];
    float got_sum[N_CASES][N];
    void *outputs[2 * N_CASES];
    for (int c = 0; c < N_CASES; c++) {
        outputs[2 * c] = got[c];
        outputs[2 * c + 1] = got_sum[c];
    }
    const void *inputs[1] = {cast_inputs};
    void *ws = aligned_alloc(64, p->workspace_size > 0 ? (size_t)(p->workspace_size + 63) / 64 * 64 : 64);
    cr_assert_eq(run(inputs, outputs, ws), 0);
    for (int c = 0; c < N_CASES; c++)
        for (int i = 0; i < N; i++) {
            cr_expect_eq(got[c][i], ref[c][i], "%s mode %u, x = %g: LLVM 0x%02x, interpreter 0x%02x",
                         kl_dtype_name(cases[c].t), cases[c].mode, cast_inputs[i], got[c][i],
                         ref[c][i]);
            bool same = got_sum[c][i] == ref_sum[c][i] ||
                        (isnan(got_sum[c][i]) && isnan(ref_sum[c][i]));
            cr_expect(same, "%s: x + x for x = %g: LLVM %g, interpreter %g",
                      kl_dtype_name(cases[c].t), cast_inputs[i], got_sum[c][i], ref_sum[c][i]);
        }
    free(ws);
    dlclose(so);
    unlink(path);
    rmdir(dir);
    kl_diag_free(&d);
    kl_arena_free(a);
}

/* Reductions accumulate in the small type: max over int4 rows (all negative: the start must be
 * the type's own minimum), sum over float8e4m3fn rows (rounded, and saturating, every step). */
Test(small_types, reductions_agree) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_shape s2 = {.rank = 2, .dim = {2, 4}}, s1 = {.rank = 1, .dim = {2}};
    kl_buffer *xi = kl_program_buffer(p, "xi", KL_BUF_INPUT, KL_I4, &s2);
    kl_buffer *xf = kl_program_buffer(p, "xf", KL_BUF_INPUT, KL_F8E4M3FN, &s2);
    xi->index = 0;
    xf->index = 1;
    kl_ptrvec_push(a, &p->inputs, xi);
    kl_ptrvec_push(a, &p->inputs, xf);
    kl_buffer *outs[2] = {kl_program_buffer(p, "mi", KL_BUF_OUTPUT, KL_I4, &s1),
                          kl_program_buffer(p, "sf", KL_BUF_OUTPUT, KL_F8E4M3FN, &s1)};
    kl_buffer *ins[2] = {xi, xf};
    kl_reduce reds[2] = {KL_RED_MAX, KL_RED_SUM};
    for (int i = 0; i < 2; i++) {
        outs[i]->index = i;
        kl_ptrvec_push(a, &p->outputs, outs[i]);
        kl_kernel *k = kl_kernel_new(p, NULL, "reduce");
        k->n_loops = 2;
        k->n_par = 1;
        k->extent[0] = 2;
        k->extent[1] = 4;
        k->reduce = reds[i];
        k->acc_dtype = ins[i]->dtype;
        kl_expr **idx = kl_alloc_array(a, 2, sizeof *idx);
        idx[0] = kl_e_iv(a, 0);
        idx[1] = kl_e_iv(a, 1);
        k->value = kl_e_load(a, ins[i], idx);
        k->out = outs[i];
        k->out_idx = idx;
        kl_program_add_kernel(p, k);
    }
    int8_t vi[8] = {-8, -3, -5, -4, 7, -8, 0, 1};
    uint8_t vf[8];
    float fv[8] = {1.0f, 0.0625f, 0.0625f, 0.0625f, 400.0f, 300.0f, -10.0f, 1.0f};
    for (int i = 0; i < 8; i++) vf[i] = kl_f32_to_minifloat(KL_F8E4M3FN, fv[i], 0);
    xi->host = vi;
    xf->host = vf;
    int8_t ref_i[2];
    uint8_t ref_f[2];
    outs[0]->host = ref_i;
    outs[1]->host = ref_f;
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_interp_program(p, &d));
    cr_expect_eq(ref_i[0], -3);
    cr_expect_eq(ref_i[1], 7);
    /* 1 + 1/16 ties to 1 (even) every step; 400 + 300 saturates at 448, 448 - 10 rounds back
     * to 448 (steps of 32 there), and + 1 too */
    cr_expect_eq(kl_minifloat_to_f32(KL_F8E4M3FN, ref_f[0]), 1.0f);
    cr_expect_eq(kl_minifloat_to_f32(KL_F8E4M3FN, ref_f[1]), 448.0f);

    cr_assert(kl_plan_memory(p, &d));
    char dir[] = "/tmp/kiln-test-small-XXXXXX", path[128];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/red.so", dir);
    kl_codegen_opts o = {kl_target_default(), "red", 2, KL_EMIT_SO};
    bool ok = kl_codegen_llvm(p, NULL, &o, path, &d);
    if (!ok) kl_diag_print(&d, stderr);
    cr_assert(ok);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(so, "dlopen: %s", dlerror());
    typedef int (*run_fn)(const void *const *, void *const *, void *);
    run_fn run = (run_fn)dlsym(so, "red_run");
    cr_assert(run);
    int8_t got_i[2];
    uint8_t got_f[2];
    const void *inputs[2] = {vi, vf};
    void *outputs[2] = {got_i, got_f};
    void *ws = aligned_alloc(64, p->workspace_size > 0 ? (size_t)(p->workspace_size + 63) / 64 * 64 : 64);
    cr_assert_eq(run(inputs, outputs, ws), 0);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(got_i[i], ref_i[i], "int4 max row %d: LLVM %d, interpreter %d", i, got_i[i],
                     ref_i[i]);
        cr_expect_eq(got_f[i], ref_f[i], "e4m3fn sum row %d: LLVM 0x%02x, interpreter 0x%02x", i,
                     got_f[i], ref_f[i]);
    }
    free(ws);
    dlclose(so);
    unlink(path);
    rmdir(dir);
    kl_diag_free(&d);
    kl_arena_free(a);
}
