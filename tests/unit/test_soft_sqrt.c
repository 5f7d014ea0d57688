/*
 * test_soft_sqrt.c — runtime-min's square root for FPUs that lack one (Cortex-M0+/M4 doubles,
 * RV32 without D), checked on the host against the C library bit for bit.
 *
 * math.c is included with the hardware switches off, so the integer algorithm is what runs here;
 * on the targets it is compiled to bitcode the same way. IEEE square root is correctly rounded,
 * so every result must equal libm's exactly: normal and subnormal inputs, exact squares, the
 * largest and smallest values, zeros of both signs, infinities, NaN and negatives.
 */
#undef KILN_RT_HW_SQRT32
#undef KILN_RT_HW_SQRT64
#include "../../runtime-min/math.c"

#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>

static uint64_t bits(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static double from_bits(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void expect_same(double x) {
    double got = kiln_rt_sqrt(x), want = sqrt(x);
    if (isnan(want)) cr_assert(isnan(got), "sqrt(%a) = %a, want NaN", x, got);
    else cr_assert_eq(bits(got), bits(want), "sqrt(%a) = %a, want %a", x, got, want);
}

Test(soft_sqrt, special_values) {
    const double v[] = {0.0, -0.0, 1.0, 4.0, 2.0, 0.25, INFINITY, -INFINITY, NAN, -1.0, -1e-300,
                        DBL_MAX, DBL_MIN, DBL_TRUE_MIN, 0x1p-1070, 0x1.fffffffffffffp-1023};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) expect_same(v[i]);
}

Test(soft_sqrt, exact_squares) {
    for (int64_t i = 1; i < 100000; i += 7) expect_same((double)i * (double)i);
}

Test(soft_sqrt, random_bit_patterns) {
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 300000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17; /* xorshift64 */
        expect_same(from_bits(s & 0x7fffffffffffffffull));
    }
}

Test(soft_sqrt, subnormals) {
    for (uint64_t m = 1; m < (1ull << 52); m = m * 3 + 1) expect_same(from_bits(m));
}

Test(soft_sqrt, float_entry_rounds_once) {
    uint32_t s = 12345u;
    for (int i = 0; i < 200000; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        float x;
        uint32_t u = s & 0x7fffffffu;
        memcpy(&x, &u, sizeof x);
        float got = kiln_rt_sqrtf(x), want = sqrtf(x);
        if (isnan(want)) cr_assert(isnan(got));
        else cr_assert_eq(got, want, "sqrtf(%a) = %a, want %a", (double)x, (double)got,
                          (double)want);
    }
}
