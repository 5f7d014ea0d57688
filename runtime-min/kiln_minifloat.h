/*
 * kiln_minifloat.h — ONNX's 8- and 4-bit floats <-> float32, written once.
 *
 * Included by runtime-min/math.c (bitcode linked into generated code, where the kind and mode
 * are constants and everything folds), by the compiler (compiler/util/dtype.c: constant
 * folding through the kernel interpreter, `kiln check`, unit tests), and as text into the CUDA
 * programs that use these types (codegen/cuda/source.c, with KILN_MF_FN a device function), so
 * generated code and the compiler cannot disagree. Freestanding: <stdint.h> only, no globals.
 *
 * Kinds are ONNX's TensorProto numbers:
 *   17 float8e4m3fn    bias 7,  no infinity, NaN S.1111.111, max 448, -0 exists
 *   18 float8e4m3fnuz  bias 8,  no infinity, one NaN 0x80 (the "negative zero"), max 240
 *   19 float8e5m2      bias 15, IEEE-like: infinities 0x7c/0xfc, NaNs above, max 57344
 *   20 float8e5m2fnuz  bias 16, no infinity, one NaN 0x80, max 57344
 *   23 float4e2m1      bias 1,  no infinity, no NaN, max 6 (a 4-bit code, sign in bit 3)
 *   24 float8e8m0      2^(e-127), no sign, no zero, 0xff NaN
 * Encoding rounds to nearest even (float8e8m0: the round mode below), following ONNX Cast:
 *   saturate (the default): +-Inf and finite values past the largest rounded to +-max;
 *   not saturate: they become Inf (e5m2) or NaN (the others). float4e2m1 always saturates.
 *   NaN becomes NaN (float4e2m1 has none: ONNX's test data, made with ml_dtypes, give 0x8).
 *   fnuz kinds have no -0: a negative value that rounds to zero gives 0x00.
 * Mode bits: KILN_MF_NO_SATURATE, and for float8e8m0 the rounding KILN_MF_ROUND_*.
 */
#ifndef KILN_MINIFLOAT_H
#define KILN_MINIFLOAT_H

#ifndef KILN_MF_NO_STDINT /* NVRTC has no <stdint.h>: the CUDA prelude defines the types */
#include <stdint.h>
#endif

#ifndef KILN_MF_FN
#define KILN_MF_FN static inline
#endif

#define KILN_MF_NO_SATURATE 1u
#define KILN_MF_ROUND_UP 0u      /* float8e8m0: away from zero (ONNX's default) */
#define KILN_MF_ROUND_DOWN 2u    /* float8e8m0: toward zero */
#define KILN_MF_ROUND_NEAREST 4u /* float8e8m0: nearest, ties up */
#define KILN_MF_ROUND_MASK 6u

typedef struct kiln_mf_format {
    uint32_t man_bits, bias, sign_bit, max_code; /* max_code: largest finite, positive */
    uint32_t ieee;                               /* 1: e5m2's Inf and NaN codes */
    uint32_t fnuz;                               /* 1: NaN is 0x80, no -0, no Inf */
} kiln_mf_format;

KILN_MF_FN kiln_mf_format kiln_mf_format_of(uint32_t kind) {
    kiln_mf_format f = {3, 7, 0x80u, 0x7eu, 0, 0};
    switch (kind) {
    case 18: f.bias = 8; f.max_code = 0x7fu; f.fnuz = 1; break;
    case 19: f.man_bits = 2; f.bias = 15; f.max_code = 0x7bu; f.ieee = 1; break;
    case 20: f.man_bits = 2; f.bias = 16; f.max_code = 0x7fu; f.fnuz = 1; break;
    case 23: f.man_bits = 1; f.bias = 1; f.sign_bit = 0x8u; f.max_code = 0x7u; break;
    default: break; /* 17 */
    }
    return f;
}

KILN_MF_FN float kiln_mf_u2f(uint32_t u) {
    union { uint32_t u; float f; } c;
    c.u = u;
    return c.f;
}

KILN_MF_FN uint32_t kiln_mf_f2u(float f) {
    union { uint32_t u; float f; } c;
    c.f = f;
    return c.u;
}

KILN_MF_FN float kiln_mf_e8m0_to_f32(uint32_t code) {
    code &= 0xffu;
    if (code == 0xffu) return kiln_mf_u2f(0x7fc00000u);
    return kiln_mf_u2f(code ? code << 23 : 0x00400000u); /* 2^-127 is a float32 subnormal */
}

/* The float32 value of a code (exact: every one of these values is a float32). */
KILN_MF_FN float kiln_mf_to_f32(uint32_t kind, uint32_t code) {
    if (kind == 24) return kiln_mf_e8m0_to_f32(code);
    kiln_mf_format f = kiln_mf_format_of(kind);
    code &= f.sign_bit | (f.sign_bit - 1u);
    uint32_t sign = code & f.sign_bit, mag = code & (f.sign_bit - 1u);
    uint32_t man = mag & ((1u << f.man_bits) - 1u), exp = mag >> f.man_bits;
    uint32_t sign32 = sign ? 0x80000000u : 0u;
    if (f.fnuz && code == 0x80u) return kiln_mf_u2f(0x7fc00000u);
    if (f.ieee && exp == 31u) return kiln_mf_u2f(sign32 | 0x7f800000u | (man ? 0x400000u : 0u));
    if (!f.fnuz && !f.ieee && f.sign_bit == 0x80u && mag == 0x7fu)
        return kiln_mf_u2f(sign32 | 0x7fc00000u);
    float v;
    if (exp == 0) /* subnormal: man * 2^(1 - bias - man_bits), a power of two times man */
        v = (float)man * kiln_mf_u2f((127u + 1u - f.bias - f.man_bits) << 23);
    else
        v = kiln_mf_u2f(((exp + 127u - f.bias) << 23) | (man << (23u - f.man_bits)));
    return sign ? -v : v;
}

KILN_MF_FN uint32_t kiln_mf_f32_to_e8m0(float x, uint32_t mode) {
    uint32_t u = kiln_mf_f2u(x), exp = (u >> 23) & 0xffu, round_up = 0;
    if (exp == 0xffu) return 0xffu;
    if ((mode & KILN_MF_ROUND_MASK) == KILN_MF_ROUND_NEAREST) {
        uint32_t guard = (u >> 22) & 1u, rest = (u & 0x3fffffu) != 0;
        round_up = guard && (rest || exp > 0);
    } else if ((mode & KILN_MF_ROUND_MASK) == KILN_MF_ROUND_UP) {
        round_up = (u & 0x7fffffu) != 0;
    }
    if (round_up && exp == 0xfeu && !(mode & KILN_MF_NO_SATURATE)) round_up = 0;
    return exp + round_up;
}

/* The code of x, rounded to nearest even (see the top of the file for the special values). */
KILN_MF_FN uint32_t kiln_mf_from_f32(uint32_t kind, float x, uint32_t mode) {
    if (kind == 24) return kiln_mf_f32_to_e8m0(x, mode);
    kiln_mf_format f = kiln_mf_format_of(kind);
    uint32_t u = kiln_mf_f2u(x), abs = u & 0x7fffffffu;
    uint32_t sign = (u >> 31) ? f.sign_bit : 0u;
    uint32_t saturate = f.sign_bit == 0x8u || !(mode & KILN_MF_NO_SATURATE);
    uint32_t overflow = saturate ? f.max_code : f.ieee ? 0x7cu : f.fnuz ? 0x80u : 0x7fu;
    if (abs > 0x7f800000u) /* NaN */
        return f.sign_bit == 0x8u ? 0x8u : f.fnuz ? 0x80u : sign | 0x7fu;
    if (abs == 0x7f800000u) return overflow == 0x80u ? 0x80u : sign | overflow;
    uint32_t exp32 = abs >> 23, code = 0;
    if (exp32 != 0) { /* float32 subnormals are far below every minifloat's smallest: zero */
        uint32_t sig = (abs & 0x7fffffu) | 0x800000u;
        int32_t e = (int32_t)exp32 - 127, emin = 1 - (int32_t)f.bias;
        uint32_t shift = 23u - f.man_bits + (e < emin ? (uint32_t)(emin - e) : 0u);
        if (shift < 26u) {
            uint32_t q = sig >> shift, rem = sig & ((1u << shift) - 1u), half = 1u << (shift - 1u);
            uint32_t inc = rem > half || (rem == half && (q & 1u));
            /* q holds the implicit bit at man_bits for normals; adding the carry may move the
             * value into the next binade, which the sum handles */
            code = (e >= emin ? (uint32_t)(e - emin) << f.man_bits : 0u) + q + inc;
        }
    }
    if (code > f.max_code) return overflow == 0x80u ? 0x80u : sign | overflow;
    if (code == 0 && f.fnuz) return 0;
    return sign | code;
}

/* Round x through the format: the float32 value that storing x would give back. */
KILN_MF_FN float kiln_mf_round_f32(uint32_t kind, float x, uint32_t mode) {
    return kiln_mf_to_f32(kind, kiln_mf_from_f32(kind, x, mode));
}

#endif
