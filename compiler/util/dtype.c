/*
 * dtype.c — facts about element types. Numbering follows ONNX so no translation table is
 * needed between the model, the IR and the generated interface.
 */
#include "kl.h"

size_t kl_dtype_size(kl_dtype t) {
    switch (t) {
    case KL_F32: case KL_I32: case KL_U32: return 4;
    case KL_U8: case KL_I8: case KL_BOOL: return 1;
    case KL_U16: case KL_I16: case KL_F16: case KL_BF16: return 2;
    case KL_I64: case KL_U64: case KL_F64: return 8;
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
    default: return "undefined";
    }
}

const char *kl_dtype_ctype(kl_dtype t) {
    switch (t) {
    case KL_F32: return "float";
    case KL_F64: return "double";
    case KL_U8: return "uint8_t";
    case KL_I8: return "int8_t";
    case KL_U16: case KL_F16: case KL_BF16: return "uint16_t";
    case KL_I16: return "int16_t";
    case KL_I32: return "int32_t";
    case KL_I64: return "int64_t";
    case KL_U32: return "uint32_t";
    case KL_U64: return "uint64_t";
    case KL_BOOL: return "bool";
    default: return "void";
    }
}

bool kl_dtype_is_float(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16;
}

bool kl_dtype_is_signed_int(kl_dtype t) {
    return t == KL_I8 || t == KL_I16 || t == KL_I32 || t == KL_I64;
}

bool kl_dtype_is_unsigned_int(kl_dtype t) {
    return t == KL_U8 || t == KL_U16 || t == KL_U32 || t == KL_U64;
}

bool kl_dtype_supported(kl_dtype t) {
    return kl_dtype_size(t) > 0;
}
