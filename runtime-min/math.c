/*
 * runtime-min/math.c — freestanding elementary functions for generated kernels.
 *
 * Compiled with clang to bitcode per target and linked into every generated module, where the
 * functions become internal and inline into the kernels; so compiled objects never call libm.
 * No libc, no globals, no errors raised: special values (NaN, inf, signed zeros, denormals,
 * overflow) behave as C's libm says.
 *
 * Design: every function is computed in double precision; the float entry points convert,
 * call the double one and round once. Double arithmetic with ~1e-16 relative error is far below
 * float's half ulp (3e-8), so float results are correctly rounded in all but rare ties, and one
 * implementation serves both F32 and F64 kernels (F16/BF16 compute in float).
 *   exp    Cody-Waite reduction by ln2 (hi/lo split), Taylor polynomial of degree 13.
 *   log    x = m 2^e with m in [1/sqrt2, sqrt2); atanh series in s = (m-1)/(m+1).
 *   sin/cos reduction by pi/2 in three parts (exact for |x| < 2^19 pi/2; degrades beyond, and
 *          beyond 1e9 only stays bounded).
 *   tanh   expm1-based; erf by its power series (|x| < 3) or continued fraction of erfc.
 *   pow    C99 special cases; repeated squaring for integer |y| <= 64; else exp(y log|x|)
 *          (relative error ~|y log x| 1e-16).
 *   floor/ceil/round/fmod are exact (bit-level); round is half to even.
 *   sqrt   the FPU's where it has one, else an exact integer algorithm (no libm on bare metal).
 * Also: integer power (wrapping, never traps), float16 / bfloat16 <-> float conversions (LLVM
 * would otherwise call compiler-rt's __extendhfsf2 on targets without F16C), and the float8 /
 * float4 conversions of kiln_minifloat.h (shared with the compiler's constant folding), and
 * the string routines of kiln_string.h and the regex matcher of kiln_regex.h (likewise shared).
 */
#include <stdint.h>

#include "kiln_minifloat.h"
#include "kiln_regex.h"
#include "kiln_string.h"

#define SIGN64 0x8000000000000000ull
#define MANT64 0x000fffffffffffffull
#define IMPL64 0x0010000000000000ull
#define EXP64 0x7ff0000000000000ull

typedef union { double f; uint64_t u; } bits64;
typedef union { float f; uint32_t u; } bits32;

static inline uint64_t d2u(double x) { bits64 b = {x}; return b.u; }
static inline double u2d(uint64_t u) { bits64 b; b.u = u; return b.f; }
static inline uint32_t f2u(float x) { bits32 b = {x}; return b.u; }
static inline float u2f(uint32_t u) { bits32 b; b.u = u; return b.f; }
static inline double d_abs(double x) { return __builtin_fabs(x); }
static inline double d_copysign(double x, double s) { return __builtin_copysign(x, s); }
static inline int d_isnan(double x) { return x != x; }
static inline double d_inf(void) { return u2d(EXP64); }
static inline double d_nan(void) { return u2d(0x7ff8000000000000ull); }

/* ---- rounding to integers (exact; no SSE4.1 needed) ---- */

/* Toward zero. Values with |x| >= 2^52 (and inf/NaN) are already integers. */
static double d_trunc(double x) {
    if (!(d_abs(x) < 4503599627370496.0))
        return x;
    return d_copysign((double)(int64_t)x, x);
}

double kiln_rt_floor(double x) {
    double t = d_trunc(x);
    return t > x ? t - 1.0 : t;
}

double kiln_rt_ceil(double x) {
    double t = d_trunc(x);
    return t < x ? t + 1.0 : t;
}

/* Half to even: adding and removing 2^52 rounds in the current (nearest-even) mode. */
double kiln_rt_round(double x) {
    double a = d_abs(x);
    if (!(a < 4503599627370496.0))
        return x;
    double r = (a + 4503599627370496.0) - 4503599627370496.0;
    return d_copysign(r, x);
}

/* ---- fmod: exact remainder by binary long division of the significands ---- */

/* Significand as an integer in [2^52, 2^53) and its exponent, for finite nonzero |x| bits. */
static uint64_t unpack_normalized(uint64_t u, int *e) {
    int ex = (int)(u >> 52);
    uint64_t m = u & MANT64;
    if (ex == 0) {
        ex = 1;
        while (m < IMPL64) {
            m <<= 1;
            ex--;
        }
    } else {
        m |= IMPL64;
    }
    *e = ex;
    return m;
}

double kiln_rt_fmod(double x, double y) {
    uint64_t ux = d2u(x), uy = d2u(y);
    uint64_t sx = ux & SIGN64;
    ux &= ~SIGN64;
    uy &= ~SIGN64;
    if (uy == 0 || ux >= EXP64 || uy > EXP64)
        return d_nan() + x + y; /* y == 0, x inf, or a NaN */
    if (ux < uy)
        return x; /* |x| < |y|, including y = inf */
    if (ux == uy)
        return u2d(sx);
    int ex, ey;
    uint64_t mx = unpack_normalized(ux, &ex);
    uint64_t my = unpack_normalized(uy, &ey);
    /* invariant: mx < 2 my */
    for (; ex > ey; ex--) {
        if (mx >= my)
            mx -= my;
        mx <<= 1;
    }
    if (mx >= my)
        mx -= my;
    if (mx == 0)
        return u2d(sx);
    while (mx < IMPL64) {
        mx <<= 1;
        ey--;
    }
    uint64_t r;
    if (ey >= 1)
        r = ((uint64_t)ey << 52) | (mx & MANT64);
    else
        r = mx >> (1 - ey); /* exact: the remainder is representable */
    return u2d(r | sx);
}

/* ---- exp / log ---- */

#define LN2_HI 6.93147180369123816490e-01 /* low 21 bits zero: k * LN2_HI is exact */
#define LN2_LO 1.90821492927058770002e-10
#define INV_LN2 1.44269504088896338700e+00

/* x * 2^k for k within about +-1100; two steps so each factor is a normal double. */
static double scale_pow2(double x, int k) {
    int k1 = k / 2, k2 = k - k1;
    return x * u2d((uint64_t)(k1 + 1023) << 52) * u2d((uint64_t)(k2 + 1023) << 52);
}

/* e^r - 1 for |r| <= 0.35 (Taylor, degree 13, without the leading 1). */
static double expm1_small(double r) {
    double p = 1.0 / 6227020800.0;            /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    return r + r * r * p;
}

double kiln_rt_exp(double x) {
    if (d_isnan(x))
        return x + x;
    if (x > 709.782712893384)
        return d_inf();
    if (x < -745.2)
        return 0.0;
    double kf = x * INV_LN2;
    int k = (int)(kf + (kf >= 0 ? 0.5 : -0.5));
    double r = (x - k * LN2_HI) - k * LN2_LO;
    return scale_pow2(1.0 + expm1_small(r), k);
}

static double expm1_d(double x) {
    if (d_abs(x) <= 0.34)
        return expm1_small(x);
    return kiln_rt_exp(x) - 1.0;
}

#define SQRT2 1.41421356237309504880

double kiln_rt_log(double x) {
    if (d_isnan(x))
        return x + x;
    if (x < 0)
        return d_nan();
    if (x == 0)
        return -d_inf();
    if (x == d_inf())
        return x;
    int e = 0;
    uint64_t u = d2u(x);
    if (u < IMPL64) { /* subnormal */
        u = d2u(x * 18014398509481984.0); /* 2^54 */
        e = -54;
    }
    e += (int)(u >> 52) - 1023;
    double m = u2d((u & MANT64) | 0x3ff0000000000000ull);
    if (m > SQRT2) {
        m *= 0.5;
        e++;
    }
    double f = m - 1.0; /* exact (Sterbenz) */
    double s = f / (2.0 + f);
    double z = s * s;
    double p = 1.0 / 25;
    p = p * z + 1.0 / 23;
    p = p * z + 1.0 / 21;
    p = p * z + 1.0 / 19;
    p = p * z + 1.0 / 17;
    p = p * z + 1.0 / 15;
    p = p * z + 1.0 / 13;
    p = p * z + 1.0 / 11;
    p = p * z + 1.0 / 9;
    p = p * z + 1.0 / 7;
    p = p * z + 1.0 / 5;
    p = p * z + 1.0 / 3;
    double log_m = 2.0 * s + 2.0 * s * z * p;
    return e * LN2_HI + (log_m + e * LN2_LO);
}

/* ---- hyperbolic, logistic, error function ---- */

double kiln_rt_tanh(double x) {
    if (d_isnan(x))
        return x + x;
    double a = d_abs(x);
    if (a > 22.0)
        return d_copysign(1.0, x);
    double e = expm1_d(2.0 * a);
    return d_copysign(e / (e + 2.0), x);
}

double kiln_rt_sigmoid(double x) {
    if (x >= 0)
        return 1.0 / (1.0 + kiln_rt_exp(-x));
    double e = kiln_rt_exp(x); /* also carries NaN */
    return e / (1.0 + e);
}

#define TWO_OVER_SQRTPI 1.12837916709551257390
#define INV_SQRTPI 0.56418958354775628695

double kiln_rt_erf(double x) {
    if (d_isnan(x))
        return x + x;
    double a = d_abs(x);
    if (a >= 6.0)
        return d_copysign(1.0, x);
    double a2 = a * a;
    double r;
    if (a < 3.0) {
        /* erf(a) = 2/sqrt(pi) e^-a^2 sum 2^n a^(2n+1) / (2n+1)!!  (positive terms) */
        double term = a, sum = a;
        for (int n = 0; n < 60; n++) {
            term *= 2.0 * a2 / (2 * n + 3);
            sum += term;
        }
        r = TWO_OVER_SQRTPI * kiln_rt_exp(-a2) * sum;
    } else {
        /* erfc(a) = e^-a^2 / sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))) */
        double t = a;
        for (int k = 50; k >= 1; k--)
            t = a + (k * 0.5) / t;
        r = 1.0 - kiln_rt_exp(-a2) * INV_SQRTPI / t;
    }
    return d_copysign(r, x);
}

/* ---- sin / cos ---- */

#define PIO2_1 1.57079632673412561417e+00  /* first 33 bits of pi/2 */
#define PIO2_2 6.07710050630396597660e-11  /* next 33 bits */
#define PIO2_3 2.02226624871116645580e-21  /* the rest */
#define TWO_OVER_PI 6.36619772367581382433e-01

static double sin_poly(double r) { /* |r| <= pi/4 */
    double z = r * r;
    double p = -1.0 / 355687428096000.0;   /* -1/17! */
    p = p * z + 1.0 / 1307674368000.0;
    p = p * z - 1.0 / 6227020800.0;
    p = p * z + 1.0 / 39916800.0;
    p = p * z - 1.0 / 362880.0;
    p = p * z + 1.0 / 5040.0;
    p = p * z - 1.0 / 120.0;
    p = p * z + 1.0 / 6.0;
    return r - r * z * p;
}

static double cos_poly(double r) {
    double z = r * r;
    double p = 1.0 / 6402373705728000.0;   /* 1/18! */
    p = p * z - 1.0 / 20922789888000.0;
    p = p * z + 1.0 / 87178291200.0;
    p = p * z - 1.0 / 479001600.0;
    p = p * z + 1.0 / 3628800.0;
    p = p * z - 1.0 / 40320.0;
    p = p * z + 1.0 / 720.0;
    p = p * z - 1.0 / 24.0;
    p = p * z + 0.5;
    return 1.0 - z * p;
}

/* r = x - k pi/2 with |r| <= pi/4; returns the quadrant k mod 4. */
static int reduce_pio2(double x, double *r) {
    if (d_abs(x) > 1e9) /* keeps the result bounded; accuracy is lost this far out */
        x = kiln_rt_fmod(x, 6.28318530717958647692);
    double k = kiln_rt_round(x * TWO_OVER_PI);
    *r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    double q = k - 4.0 * kiln_rt_floor(k * 0.25);
    return (int)q;
}

double kiln_rt_sin(double x) {
    if (!(d_abs(x) < d_inf()))
        return x - x;
    double r;
    switch (reduce_pio2(x, &r)) {
    case 0: return sin_poly(r);
    case 1: return cos_poly(r);
    case 2: return -sin_poly(r);
    default: return -cos_poly(r);
    }
}

double kiln_rt_cos(double x) {
    if (!(d_abs(x) < d_inf()))
        return x - x;
    double r;
    switch (reduce_pio2(x, &r)) {
    case 0: return cos_poly(r);
    case 1: return -sin_poly(r);
    case 2: return -cos_poly(r);
    default: return sin_poly(r);
    }
}

/* ---- pow ---- */

static int is_integer(double y) { return d_trunc(y) == y; }
static int is_odd_integer(double y) {
    return d_abs(y) < 9007199254740992.0 && is_integer(y) && ((int64_t)y & 1);
}

/* ---- square root ----
 * Where the FPU has one (KILN_RT_HW_SQRT64 / 32, set per target by runtime-min/meson.build) the
 * builtin is its instruction. Elsewhere LLVM would turn it into a call of libm's sqrt, which
 * bare-metal objects must not need: digit-by-digit integer square root of the significand,
 * one result bit a step, rounded to nearest (exact, so correctly rounded; ties cannot occur). */
#if !KILN_RT_HW_SQRT64
static double soft_sqrt(double x) {
    uint64_t u = d2u(x);
    if (d_isnan(x) || x == 0 || x == d_inf())
        return x;
    if (u & SIGN64)
        return d_nan();
    int ex = (int)(u >> 52);
    uint64_t m = u & MANT64;
    if (ex == 0) { /* subnormal: normalize */
        ex = 1;
        while (!(m & IMPL64)) {
            m <<= 1;
            ex--;
        }
    } else {
        m |= IMPL64;
    }
    int e = ex - 1075; /* x = m 2^e, m in [2^52, 2^53) */
    if (e & 1) {
        m <<= 1;
        e--;
    }
    /* q = floor(sqrt(m 2^52)): 53 bits, two bits of m 2^52 brought in a step */
    uint64_t q = 0, rem = 0;
    for (int i = 52; i >= 0; i--) {
        int b = 2 * i - 52;
        rem = (rem << 2) | (b >= 0 ? (m >> b) & 3u : 0u);
        uint64_t t = (q << 2) | 1u;
        if (rem >= t) {
            rem -= t;
            q = (q << 1) | 1u;
        } else {
            q <<= 1;
        }
    }
    if (rem > q) /* sqrt >= q + 1/2 exactly when m 2^52 - q^2 > q */
        q++;
    int k = (e - 52) / 2; /* result = q 2^k; q = 2^53 carries into the exponent */
    return u2d(((uint64_t)(k + 1075) << 52) + (q - IMPL64));
}
#endif

double kiln_rt_sqrt(double x) {
#if KILN_RT_HW_SQRT64
    return __builtin_sqrt(x);
#else
    return soft_sqrt(x);
#endif
}

/* sqrt in double rounded to float is correctly rounded (53 >= 2 * 24 + 2 bits). */
float kiln_rt_sqrtf(float x) {
#if KILN_RT_HW_SQRT32
    return __builtin_sqrtf(x);
#else
    return (float)kiln_rt_sqrt(x);
#endif
}

/* x^n for integer |n| <= 64 by repeated squaring. */
static double int_pow(double x, double y) {
    int n = (int)d_abs(y);
    double r = 1.0, b = x;
    while (n) {
        if (n & 1)
            r *= b;
        b *= b;
        n >>= 1;
    }
    return y < 0 ? 1.0 / r : r;
}

double kiln_rt_pow(double x, double y) {
    if (y == 0 || x == 1.0)
        return 1.0;
    if (d_isnan(x) || d_isnan(y))
        return x + y;
    double ax = d_abs(x);
    if (d_abs(y) == d_inf()) {
        if (ax == 1.0)
            return 1.0;
        return (ax < 1.0) == (y < 0) ? d_inf() : 0.0;
    }
    int odd = is_odd_integer(y);
    if (x == 0 || ax == d_inf()) {
        /* 0^y and inf^y: 0 or inf; the sign survives only for odd integer y */
        double mag = ((x == 0) == (y < 0)) ? d_inf() : 0.0;
        return (odd && (d2u(x) & SIGN64)) ? -mag : mag;
    }
    if (x < 0 && !is_integer(y))
        return d_nan();
    if (is_integer(y) && d_abs(y) <= 64) /* exact where the result is (2^3 = 8) */
        return int_pow(x, y);
    if (y == 0.5) /* correctly rounded; x < 0 and x = +-0, +-inf were handled above */
        return kiln_rt_sqrt(x);
    double r = kiln_rt_exp(y * kiln_rt_log(ax));
    return (x < 0 && odd) ? -r : r;
}

/* Integer power with wrapping; negative exponents truncate like 1/x^-y. */
int64_t kiln_rt_ipow(int64_t base, int64_t e) {
    if (e < 0) {
        if (base == 1)
            return 1;
        if (base == -1)
            return (e & 1) ? -1 : 1;
        return 0;
    }
    uint64_t r = 1, b = (uint64_t)base, n = (uint64_t)e;
    while (n) {
        if (n & 1)
            r *= b;
        b *= b;
        n >>= 1;
    }
    return (int64_t)r;
}

/* ---- float entry points: compute in double, round once ---- */

/* ---- branch-free float entries: exp, sigmoid, tanh ----
 * A kernel's loop over these vectorizes only when the call inlines into it as straight-line
 * code (an LSTM's gates spend most of their time here otherwise). They compute in double like
 * the entries above and round once at the end, but without a branch: the argument is clamped
 * where the float result has saturated, the power of two comes from the bits of the rounding
 * constant, and a NaN flows through the arithmetic (every clamp compares false on it). */

/* (clang builds the bitcode; GCC compiles this file for the unit tests, where it may decide) */
#if defined(__clang__)
#define INLINE_INTO_KERNELS __attribute__((always_inline))
#else
#define INLINE_INTO_KERNELS
#endif

#define ROUND_SHIFT 6755399441055744.0 /* 1.5 * 2^52: t = v + it holds round(v) in its low bits */

/* e^x for |x| <= 700. */
static inline double exp_straight(double x) {
    double t = x * INV_LN2 + ROUND_SHIFT;
    double k = t - ROUND_SHIFT;
    double r = (x - k * LN2_HI) - k * LN2_LO;
    /* t's low mantissa bits are 2^51 + k: adding the bias and shifting leaves k + 1023 in
       the exponent field (k is within +-1022 here) */
    double scale = u2d((d2u(t) + 1023) << 52);
    return (1.0 + expm1_small(r)) * scale;
}

static inline double clamp_above(double x, double hi) { return x > hi ? hi : x; }
static inline double clamp_below(double x, double lo) { return x < lo ? lo : x; }

INLINE_INTO_KERNELS float kiln_rt_expf(float x) {
    /* below -110 the float result is 0, above 90 infinite */
    return (float)exp_straight(clamp_above(clamp_below(x, -110.0), 90.0));
}

INLINE_INTO_KERNELS float kiln_rt_sigmoidf(float x) {
    double a = clamp_above(d_abs(x), 120.0); /* sigmoid(-120) is 0 in float */
    double e = exp_straight(-a);
    return (float)(x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
}

INLINE_INTO_KERNELS float kiln_rt_tanhf(float x) {
    double a = clamp_above(d_abs(x), 10.0); /* tanh(10) is 1 in float */
    double a2 = a * a; /* |x| < 2^-10: Taylor to a^5, relative error below 2^-72 */
    double small = a + a * a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0));
    double e = exp_straight(2.0 * a) - 1.0;
    double t = a < 0x1p-10 ? small : e / (e + 2.0);
    return (float)d_copysign(t, x);
}

float kiln_rt_logf(float x) { return (float)kiln_rt_log(x); }
float kiln_rt_erff(float x) { return (float)kiln_rt_erf(x); }
float kiln_rt_sinf(float x) { return (float)kiln_rt_sin(x); }
float kiln_rt_cosf(float x) { return (float)kiln_rt_cos(x); }
float kiln_rt_powf(float x, float y) { return (float)kiln_rt_pow(x, y); }
float kiln_rt_floorf(float x) { return (float)kiln_rt_floor(x); }
float kiln_rt_ceilf(float x) { return (float)kiln_rt_ceil(x); }
float kiln_rt_roundf(float x) { return (float)kiln_rt_round(x); }
float kiln_rt_fmodf(float x, float y) { return (float)kiln_rt_fmod(x, y); }

/* ---- 16-bit floats (bits passed as uint32_t: no extension attributes in the ABI) ---- */

float kiln_rt_h2f(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) { /* zero or subnormal: m 2^-24 */
        float v = (float)m * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (e == 31)
        return u2f(sign | 0x7f800000u | (m << 13));
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

uint32_t kiln_rt_f2h(float f) {
    uint32_t u = f2u(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    u &= 0x7fffffffu;
    if (u >= 0x7f800000u) /* inf, or NaN kept quiet */
        return sign | (u > 0x7f800000u ? 0x7e00u | ((u >> 13) & 0x3ffu) : 0x7c00u);
    if (u >= 0x477ff000u) /* rounds beyond 65504 */
        return sign | 0x7c00u;
    if (u < 0x38800000u) { /* half subnormal: let float addition round to 2^-24 steps */
        float s = u2f(u) + 0.5f;
        return sign | (f2u(s) - 0x3f000000u);
    }
    uint32_t rounded = u + 0x0fffu + ((u >> 13) & 1u);
    return sign | ((rounded >> 13) - (112u << 10));
}

float kiln_rt_bf2f(uint32_t h) { return u2f((h & 0xffffu) << 16); }

uint32_t kiln_rt_f2bf(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return ((u >> 16) & 0xffffu) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

/* ---- float8 / float4 (ONNX kinds 17-20, 23, 24; codes passed as uint32_t) ---- */

float kiln_rt_mf2f(uint32_t kind, uint32_t code) { return kiln_mf_to_f32(kind, code); }
uint32_t kiln_rt_f2mf(uint32_t kind, float x, uint32_t mode) {
    return kiln_mf_from_f32(kind, x, mode);
}
float kiln_rt_mfround(uint32_t kind, float x, uint32_t mode) {
    return kiln_mf_round_f32(kind, x, mode);
}

/* ---- strings (kiln_string.h, shared with the compiler's interpreter) ---- */

int32_t kiln_rt_str_eq(const char *a, const char *b) { return kiln_str_eq(a, b, 0); }

int32_t kiln_rt_str_eq_nocase(const char *a, const char *b) { return kiln_str_eq(a, b, 1); }

const char *kiln_rt_str_concat(int64_t *arena, int64_t cap, const char *a, const char *b) {
    return kiln_str_concat(arena, cap, a, b);
}

const char *kiln_rt_str_case(int64_t *arena, int64_t cap, const char *s, int32_t upper) {
    return kiln_str_case(arena, cap, s, upper);
}

int32_t kiln_rt_str_failed(const int64_t *arena) { return arena[1] != 0; }

int64_t kiln_rt_str_split_count(const char *s, const char *delim, int64_t maxsplit) {
    return kiln_str_split_count(s, delim, maxsplit);
}

const char *kiln_rt_str_split_piece(int64_t *arena, int64_t cap, const char *s, const char *delim,
                                    int64_t maxsplit, int64_t j) {
    return kiln_str_split_piece(arena, cap, s, delim, maxsplit, j);
}

int32_t kiln_rt_regex_full_match(const uint16_t *dfa, const char *s) {
    return kiln_regex_full_match(dfa, s);
}
