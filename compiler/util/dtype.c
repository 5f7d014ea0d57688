/*
 * dtype.c — facts about element types. Numbering follows ONNX so no translation table is
 * needed between the model, the IR and the generated interface.
 */
#include <stdint.h>
#include <string.h>

#include "kl.h"
#include "kiln_minifloat.h"

size_t kl_dtype_size(kl_dtype t) {
    switch (t) {
    case KL_F32: case KL_I32: case KL_U32: return 4;
    case KL_U8: case KL_I8: case KL_BOOL: return 1;
    /* one byte an element inside kiln, packed only in TensorProto and at the interface */
    case KL_F8E4M3FN: case KL_F8E4M3FNUZ: case KL_F8E5M2: case KL_F8E5M2FNUZ: case KL_F8E8M0:
    case KL_U4: case KL_I4: case KL_F4E2M1: case KL_U2: case KL_I2: return 1;
    case KL_U16: case KL_I16: case KL_F16: case KL_BF16: return 2;
    case KL_I64: case KL_U64: case KL_F64: return 8;
    /* a pointer to a NUL-terminated UTF-8 string (kiln.h); string models need 64-bit
     * pointers (the LLVM back end refuses other targets) */
    case KL_STRING: return 8;
    default: return 0;
    }
}

const char *kl_dtype_name(kl_dtype t) {
    switch (t) {
    case KL_F32: return "float32";
    case KL_U8: return "uint8";
    case KL_I8: return "int8";
    case KL_U16: return "uint16";
    case KL_I16: return "int16";
    case KL_I32: return "int32";
    case KL_I64: return "int64";
    case KL_STRING: return "string";
    case KL_BOOL: return "bool";
    case KL_F16: return "float16";
    case KL_F64: return "float64";
    case KL_U32: return "uint32";
    case KL_U64: return "uint64";
    case KL_C64: return "complex64";
    case KL_C128: return "complex128";
    case KL_BF16: return "bfloat16";
    case KL_F8E4M3FN: return "float8e4m3fn";
    case KL_F8E4M3FNUZ: return "float8e4m3fnuz";
    case KL_F8E5M2: return "float8e5m2";
    case KL_F8E5M2FNUZ: return "float8e5m2fnuz";
    case KL_U4: return "uint4";
    case KL_I4: return "int4";
    case KL_F4E2M1: return "float4e2m1";
    case KL_F8E8M0: return "float8e8m0";
    case KL_U2: return "uint2";
    case KL_I2: return "int2";
    default: return "undefined";
    }
}

const char *kl_dtype_ctype(kl_dtype t) {
    switch (t) {
    case KL_F32: return "float";
    case KL_F64: return "double";
    case KL_U8: return "uint8_t";
    case KL_I8: return "int8_t";
    case KL_F8E4M3FN: case KL_F8E4M3FNUZ: case KL_F8E5M2: case KL_F8E5M2FNUZ: case KL_F8E8M0:
    case KL_U4: case KL_I4: case KL_F4E2M1: case KL_U2: case KL_I2: return "uint8_t";
    case KL_U16: case KL_F16: case KL_BF16: return "uint16_t";
    case KL_I16: return "int16_t";
    case KL_I32: return "int32_t";
    case KL_I64: return "int64_t";
    case KL_U32: return "uint32_t";
    case KL_U64: return "uint64_t";
    case KL_BOOL: return "bool";
    case KL_STRING: return "const char *";
    default: return "void";
    }
}

bool kl_dtype_is_minifloat(kl_dtype t) {
    return t == KL_F8E4M3FN || t == KL_F8E4M3FNUZ || t == KL_F8E5M2 || t == KL_F8E5M2FNUZ ||
           t == KL_F8E8M0 || t == KL_F4E2M1;
}

bool kl_dtype_is_float(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16 || kl_dtype_is_minifloat(t);
}

bool kl_dtype_is_signed_int(kl_dtype t) {
    return t == KL_I8 || t == KL_I16 || t == KL_I32 || t == KL_I64 || t == KL_I4 || t == KL_I2;
}

bool kl_dtype_is_unsigned_int(kl_dtype t) {
    return t == KL_U8 || t == KL_U16 || t == KL_U32 || t == KL_U64 || t == KL_U4 || t == KL_U2;
}

int kl_dtype_bits(kl_dtype t) {
    switch (t) {
    case KL_U4: case KL_I4: case KL_F4E2M1: return 4;
    case KL_U2: case KL_I2: return 2;
    default: return (int)kl_dtype_size(t) * 8;
    }
}

int64_t kl_dtype_wrap_small_int(kl_dtype t, int64_t v) {
    int bits = kl_dtype_bits(t);
    uint64_t mask = (UINT64_C(1) << bits) - 1, u = (uint64_t)v & mask;
    if (kl_dtype_is_signed_int(t) && (u >> (bits - 1))) return (int64_t)u - (int64_t)(mask + 1);
    return (int64_t)u;
}

bool kl_dtype_is_packed(kl_dtype t) { return kl_dtype_size(t) == 1 && kl_dtype_bits(t) < 8; }

int64_t kl_dtype_packed_bytes(kl_dtype t, int64_t numel) {
    int64_t size = (int64_t)kl_dtype_size(t);
    if (numel < 0 || (size && numel > INT64_MAX / size)) return -1;
    if (!kl_dtype_is_packed(t)) return numel * size;
    int64_t per_byte = 8 / kl_dtype_bits(t);
    return numel / per_byte + (numel % per_byte != 0);
}

void kl_dtype_unpack(kl_dtype t, const uint8_t *packed, uint8_t *out, int64_t numel) {
    if (!kl_dtype_is_packed(t)) {
        if (numel > 0) memcpy(out, packed, (size_t)numel * kl_dtype_size(t));
        return;
    }
    int bits = kl_dtype_bits(t), per_byte = 8 / bits;
    for (int64_t i = 0; i < numel; i++) {
        int64_t code = (packed[i / per_byte] >> (i % per_byte * bits)) & ((1 << bits) - 1);
        out[i] = (uint8_t)(t == KL_F4E2M1 ? code : kl_dtype_wrap_small_int(t, code));
    }
}

void kl_dtype_pack(kl_dtype t, const uint8_t *in, uint8_t *packed, int64_t numel) {
    if (!kl_dtype_is_packed(t)) {
        if (numel > 0) memcpy(packed, in, (size_t)numel * kl_dtype_size(t));
        return;
    }
    int bits = kl_dtype_bits(t), per_byte = 8 / bits;
    int64_t bytes = kl_dtype_packed_bytes(t, numel);
    memset(packed, 0, (size_t)bytes);
    for (int64_t i = 0; i < numel; i++)
        packed[i / per_byte] |= (uint8_t)((in[i] & ((1 << bits) - 1)) << (i % per_byte * bits));
}

_Static_assert(KL_CAST_NO_SATURATE == KILN_MF_NO_SATURATE &&
               KL_CAST_ROUND_DOWN == KILN_MF_ROUND_DOWN &&
               KL_CAST_ROUND_NEAREST == KILN_MF_ROUND_NEAREST,
               "KL_CAST_* are kiln_minifloat.h's mode bits");

float kl_minifloat_to_f32(kl_dtype t, uint8_t code) { return kiln_mf_to_f32((uint32_t)t, code); }

uint8_t kl_f32_to_minifloat(kl_dtype t, float x, unsigned mode) {
    return (uint8_t)kiln_mf_from_f32((uint32_t)t, x, mode);
}

bool kl_dtype_supported(kl_dtype t) {
    return kl_dtype_size(t) > 0;
}

/* float16 / bfloat16 storage: exact widening; narrowing rounds to nearest even (NaN stays NaN). */
float kl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (!man) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 1024));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 1023) << 13;
        }
    } else {
        bits = sign | (exp + 112) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t kl_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 255) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 255) == 255) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | (uint32_t)exp << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

float kl_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t kl_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
