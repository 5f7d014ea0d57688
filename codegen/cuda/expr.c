/*
 * codegen/cuda/expr.c — kernel IR expressions as CUDA C statements.
 *
 * Every node becomes a `const T tN = ...;` statement (loop variables and constants stay
 * literals), memoized per block point so that a load the points share is read once, the way
 * the LLVM back end's block shares it. The meaning of every operation is the LLVM back end's
 * (codegen/llvm/kernel_expr.c), with the help of the prelude (prelude.c):
 *  - both arms of a select are computed (no branches), so a load inside an arm — a padding
 *    read guarded by 0 <= ih < H — and a load whose index is itself loaded (Gather) have their
 *    linear offset clamped into the buffer, unless its range already lies inside;
 *  - integer arithmetic wraps: where the operands' ranges do not prove that it stays within
 *    its type, it is computed in the unsigned type of the same width (signed overflow is
 *    undefined in C, not in LLVM);
 *  - int64 values whose range fits in 32 bits (loop variables, offsets, index arithmetic) are
 *    computed in `int`: 64-bit integer arithmetic costs several instructions on a GPU, and
 *    the value is the same;
 *  - float16 rounds to its precision after every operation, bfloat16 only when cast or stored;
 *    both are bits in memory and float in registers;
 *  - float products that feed a sum's accumulator use fmaf (llvm.fmuladd); NVRTC runs with
 *    --fmad=false, so no other multiply-add is fused.
 * Ranges come from the loops' extents (interval arithmetic over the expression), the same for
 * every block point, so a kernel's choice of int or long long never varies between points.
 */
#ifndef _GNU_SOURCE /* vasprintf under -std=c17 */
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

/* ---------------------------------------------------------------- printing */

bool kl_cu_fail(kl_cu_printer *pr, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kl_error(pr->d, pr->k->node, "codegen (CUDA): kernel '%s': %s", pr->k->name, msg);
}

void kl_cu_line(kl_cu_printer *pr, const char *fmt, ...) {
    fprintf(pr->f, "%*s", 4 * pr->indent, "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(pr->f, fmt, ap);
    va_end(ap);
    fputc('\n', pr->f);
}

void kl_cu_open(kl_cu_printer *pr, const char *fmt, ...) {
    char head[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    fprintf(pr->f, "%*s%s%s{\n", 4 * pr->indent, "", head, head[0] ? " " : "");
    pr->indent++;
    pr->scope++;
}

void kl_cu_close(kl_cu_printer *pr) {
    while (pr->n_memo > 0 && pr->memo[pr->n_memo - 1].scope >= pr->scope)
        pr->n_memo--; /* temporaries declared inside are gone */
    pr->scope--;
    pr->indent--;
    kl_cu_line(pr, "}");
}

static cu_val val(const char *s, kl_dtype t, bool narrow) {
    cu_val v = {s, t, narrow};
    return v;
}

/* const CTYPE tN = <text>; */
static cu_val tmp(kl_cu_printer *pr, kl_dtype t, bool narrow, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cu_val tmp(kl_cu_printer *pr, kl_dtype t, bool narrow, const char *fmt, ...) {
    char *text;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    cu_val v = val(kl_sprintf(pr->a, "t%d", pr->tmp++), t, narrow);
    kl_cu_line(pr, "const %s %s = %s;", kl_cu_ctype(v), v.s, text ? text : "0");
    free(text);
    return v;
}

/* An int64 value as long long. */
static const char *wide(kl_cu_printer *pr, cu_val v) {
    return v.narrow ? kl_sprintf(pr->a, "((long long)%s)", v.s) : v.s;
}

static bool same_key(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static cu_val *memo_get(kl_cu_printer *pr, const kl_expr *e) {
    const char *key = NULL;
    bool keyed = false;
    for (int i = pr->n_memo - 1; i >= 0; i--) {
        if (pr->memo[i].e != e)
            continue;
        if (!keyed) {
            key = kl_cu_point_key(pr, e);
            keyed = true;
        }
        if (same_key(pr->memo[i].key, key))
            return &pr->memo[i].v;
    }
    return NULL;
}

static void memo_put(kl_cu_printer *pr, const kl_expr *e, cu_val v) {
    if (pr->n_memo == pr->cap_memo) {
        int cap = pr->cap_memo ? 2 * pr->cap_memo : 64;
        cu_memo *m = kl_alloc_array(pr->a, (size_t)cap, sizeof *m);
        if (pr->n_memo)
            memcpy(m, pr->memo, (size_t)pr->n_memo * sizeof *m);
        pr->memo = m;
        pr->cap_memo = cap;
    }
    cu_memo m = {e, v, pr->scope, kl_cu_point_key(pr, e)};
    pr->memo[pr->n_memo++] = m;
}

/* ---------------------------------------------------------------- literals */

const char *kl_cu_literal(kl_cu_printer *pr, kl_dtype t, double f, int64_t i) {
    kl_arena *a = pr->a;
    if (t == KL_F64) {
        if (isnan(f)) return "KL_NAN64";
        if (isinf(f)) return f > 0 ? "KL_INF64" : "(-KL_INF64)";
        return kl_sprintf(a, "%.17e", f);
    }
    if (kl_cu_is_float(t)) {
        float x = (float)f; /* rounded to nearest, as LLVMConstReal does */
        if (isnan(x)) return "KL_NAN";
        if (isinf(x)) return x > 0 ? "KL_INF" : "(-KL_INF)";
        return kl_sprintf(a, "%.9ef", (double)x);
    }
    switch (t) {
    case KL_BOOL: return i ? "true" : "false";
    case KL_I8: return kl_sprintf(a, "((signed char)%d)", (int)(int8_t)i);
    case KL_U8: return kl_sprintf(a, "((unsigned char)%u)", (unsigned)(uint8_t)i);
    case KL_I16: return kl_sprintf(a, "((short)%d)", (int)(int16_t)i);
    case KL_U16: return kl_sprintf(a, "((unsigned short)%u)", (unsigned)(uint16_t)i);
    case KL_I32:
        return (int32_t)i == INT32_MIN ? "(-2147483647 - 1)" : kl_sprintf(a, "%d", (int)(int32_t)i);
    case KL_U32: return kl_sprintf(a, "%uu", (unsigned)(uint32_t)i);
    case KL_I64:
        return i == INT64_MIN ? "(-9223372036854775807ll - 1)" : kl_sprintf(a, "%lldll", (long long)i);
    case KL_U64: return kl_sprintf(a, "%lluull", (unsigned long long)i);
    default: return NULL;
    }
}

static bool emit_const(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    if (e->dtype == KL_I64 && e->i >= INT32_MIN && e->i <= INT32_MAX) {
        *out = val(kl_cu_literal(pr, KL_I32, 0, e->i), KL_I64, true);
        return true;
    }
    const char *s = kl_cu_literal(pr, e->dtype, e->f, e->i);
    if (!s)
        return kl_cu_fail(pr, "constant of unsupported type %s", kl_dtype_name(e->dtype));
    *out = val(s, e->dtype, false);
    return true;
}

const char *kl_cu_identity(kl_cu_printer *pr, kl_reduce r, kl_dtype t) {
    if (kl_cu_is_float(t)) {
        double v = r == KL_RED_PROD ? 1.0 : r == KL_RED_MAX ? -INFINITY : r == KL_RED_MIN ? INFINITY : 0.0;
        return kl_cu_literal(pr, t, v, 0);
    }
    int64_t lo = 0, hi = 0;
    if (t == KL_U64) {
        lo = 0;
        hi = -1; /* all ones */
    } else {
        kl_cu_type_range(t, &lo, &hi);
    }
    int64_t v = r == KL_RED_PROD ? 1 : r == KL_RED_MAX ? lo : r == KL_RED_MIN ? hi : 0;
    return kl_cu_literal(pr, t, 0, v);
}

/* ---------------------------------------------------------------- arithmetic */

static const char *minmax_fn(kl_dtype t, bool is_max) {
    if (t == KL_F64) return is_max ? "kl_maxd" : "kl_mind";
    return is_max ? "kl_maxf" : "kl_minf";
}

const char *kl_cu_combine(kl_cu_printer *pr, kl_reduce r, kl_dtype t, const char *acc,
                          const char *v) {
    kl_arena *a = pr->a;
    const char *ct = kl_cu_reg_type(t);
    if (kl_cu_is_float(t)) {
        switch (r) {
        case KL_RED_SUM: return kl_sprintf(a, "%s + %s", acc, v);
        case KL_RED_PROD: return kl_sprintf(a, "%s * %s", acc, v);
        default: return kl_sprintf(a, "%s(%s, %s)", minmax_fn(t, r == KL_RED_MAX), acc, v);
        }
    }
    switch (r) {
    case KL_RED_SUM:
        return kl_sprintf(a, "(%s)((%s)%s + (%s)%s)", ct, kl_cu_wrap_type(t), acc, kl_cu_wrap_type(t), v);
    case KL_RED_PROD:
        return kl_sprintf(a, "(%s)((%s)%s * (%s)%s)", ct, kl_cu_wrap_type(t), acc, kl_cu_wrap_type(t), v);
    case KL_RED_MAX: return kl_sprintf(a, "(%s > %s ? %s : %s)", v, acc, v, acc);
    default: return kl_sprintf(a, "(%s < %s ? %s : %s)", v, acc, v, acc);
    }
}

static bool float_binop(kl_cu_printer *pr, const kl_expr *e, cu_val x, cu_val y, cu_val *out) {
    kl_dtype t = e->a->dtype;
    bool dbl = t == KL_F64;
    const char *s = NULL;
    switch (e->op) {
    case KL_ADD: s = kl_sprintf(pr->a, "%s + %s", x.s, y.s); break;
    case KL_SUB: s = kl_sprintf(pr->a, "%s - %s", x.s, y.s); break;
    case KL_MUL: s = kl_sprintf(pr->a, "%s * %s", x.s, y.s); break;
    case KL_DIV: s = kl_sprintf(pr->a, "%s / %s", x.s, y.s); break;
    case KL_MIN: case KL_MAX:
        s = kl_sprintf(pr->a, "%s(%s, %s)", minmax_fn(t, e->op == KL_MAX), x.s, y.s);
        break;
    case KL_POW: s = kl_sprintf(pr->a, "%s(%s, %s)", dbl ? "pow" : "powf", x.s, y.s); break;
    case KL_FMOD: s = kl_sprintf(pr->a, "%s(%s, %s)", dbl ? "fmod" : "fmodf", x.s, y.s); break;
    case KL_MOD: s = kl_sprintf(pr->a, "%s(%s, %s)", dbl ? "kl_fmod_py" : "kl_fmodf_py", x.s, y.s); break;
    case KL_EQ: s = kl_sprintf(pr->a, "%s == %s", x.s, y.s); break;
    case KL_NE: s = kl_sprintf(pr->a, "%s != %s", x.s, y.s); break;
    case KL_LT: s = kl_sprintf(pr->a, "%s < %s", x.s, y.s); break;
    case KL_LE: s = kl_sprintf(pr->a, "%s <= %s", x.s, y.s); break;
    case KL_GT: s = kl_sprintf(pr->a, "%s > %s", x.s, y.s); break;
    case KL_GE: s = kl_sprintf(pr->a, "%s >= %s", x.s, y.s); break;
    default: return kl_cu_fail(pr, "binary operator %d is not defined on floats", e->op);
    }
    *out = tmp(pr, e->dtype, false, "%s", s);
    return true;
}

/* Division-like operations: the prelude's helpers, in 32 or 64 bits. */
static const char *divrem(kl_cu_printer *pr, int op, kl_dtype t, bool in_int, const char *x,
                          const char *y) {
    bool sgn = kl_cu_is_signed(t) || in_int, w64 = kl_cu_is_64(t) && !in_int;
    const char *kind = op == KL_DIV ? "div" : op == KL_FMOD || !sgn ? "rem" : "mod";
    const char *cast = sgn ? (w64 ? "(long long)" : "(int)") : (w64 ? "(unsigned long long)" : "(unsigned)");
    return kl_sprintf(pr->a, "kl_%s%s%s(%s%s, %s%s)", sgn ? "s" : "u", kind, w64 ? "64" : "32",
                      cast, x, cast, y);
}

/* ADD, SUB, MUL of int64 values that may sit in ints. */
static cu_val int64_arith(kl_cu_printer *pr, const kl_expr *e, cu_val x, cu_val y) {
    static const char ops[] = {[KL_ADD] = '+', [KL_SUB] = '-', [KL_MUL] = '*'};
    char op = ops[e->op];
    if (x.narrow && y.narrow && kl_cu_arith_fits(pr, e, KL_I64, true))
        return tmp(pr, KL_I64, true, "%s %c %s", x.s, op, y.s);
    if (kl_cu_arith_fits(pr, e, KL_I64, false))
        return tmp(pr, KL_I64, false, "%s %c %s", wide(pr, x), op, wide(pr, y));
    return tmp(pr, KL_I64, false, "(long long)((unsigned long long)%s %c (unsigned long long)%s)",
               wide(pr, x), op, wide(pr, y));
}

/* An int64 operation computed in 32 bits when both operands sit in ints and the divisor is
 * positive (index arithmetic: i / C, i % C). */
static bool int64_div_in_int(kl_cu_printer *pr, const kl_expr *e, cu_val x, cu_val y) {
    int64_t lo, hi;
    return e->a->dtype == KL_I64 && x.narrow && y.narrow && kl_cu_range(pr, e->b, &lo, &hi) && lo > 0;
}

static bool int_binop(kl_cu_printer *pr, const kl_expr *e, cu_val x, cu_val y, cu_val *out) {
    kl_dtype t = e->a->dtype;
    const char *ct = kl_cu_reg_type(t);
    static const char *const cmp[] = {[KL_EQ] = "==", [KL_NE] = "!=", [KL_LT] = "<",
                                      [KL_LE] = "<=", [KL_GT] = ">", [KL_GE] = ">="};
    bool both_narrow = x.narrow && y.narrow;
    const char *xs = both_narrow ? x.s : wide(pr, x), *ys = both_narrow ? y.s : wide(pr, y);
    switch (e->op) {
    case KL_ADD: case KL_SUB: case KL_MUL: {
        if (t == KL_I64) {
            *out = int64_arith(pr, e, x, y);
            return true;
        }
        char op = e->op == KL_ADD ? '+' : e->op == KL_SUB ? '-' : '*';
        if (kl_cu_arith_fits(pr, e, t, false))
            *out = tmp(pr, t, false, "(%s)(%s %c %s)", ct, xs, op, ys);
        else
            *out = tmp(pr, t, false, "(%s)((%s)%s %c (%s)%s)", ct, kl_cu_wrap_type(t), xs, op,
                       kl_cu_wrap_type(t), ys);
        return true;
    }
    case KL_DIV: case KL_FMOD: case KL_MOD: {
        bool in_int = int64_div_in_int(pr, e, x, y);
        const char *s = divrem(pr, e->op, t, in_int, in_int ? x.s : xs, in_int ? y.s : ys);
        *out = in_int ? tmp(pr, KL_I64, true, "%s", s) : tmp(pr, t, false, "(%s)%s", ct, s);
        return true;
    }
    case KL_MIN: case KL_MAX:
        *out = tmp(pr, t, both_narrow, "%s %s %s ? %s : %s", xs, e->op == KL_MIN ? "<" : ">", ys,
                   xs, ys);
        return true;
    case KL_POW:
        *out = tmp(pr, t, false, "(%s)kl_ipow((long long)%s, (long long)%s)", ct, xs, ys);
        return true;
    case KL_EQ: case KL_NE: case KL_LT: case KL_LE: case KL_GT: case KL_GE:
        *out = tmp(pr, KL_BOOL, false, "%s %s %s", xs, cmp[e->op], ys);
        return true;
    case KL_AND: case KL_OR: case KL_XOR:
        if (t == KL_BOOL) {
            const char *op = e->op == KL_AND ? "&&" : e->op == KL_OR ? "||" : "!=";
            *out = tmp(pr, t, false, "%s %s %s", xs, op, ys);
        } else {
            char op = e->op == KL_AND ? '&' : e->op == KL_OR ? '|' : '^';
            *out = tmp(pr, t, false, "(%s)(%s %c %s)", ct, xs, op, ys);
        }
        return true;
    default:
        return kl_cu_fail(pr, "unknown binary operator %d", e->op);
    }
}

static bool emit_binary(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    cu_val x, y;
    if (!kl_cu_expr(pr, e->a, &x) || !kl_cu_expr(pr, e->b, &y))
        return false;
    if (e->a->dtype != e->b->dtype)
        return kl_cu_fail(pr, "binary operands of different types %s and %s",
                          kl_dtype_name(e->a->dtype), kl_dtype_name(e->b->dtype));
    return kl_cu_is_float(e->a->dtype) ? float_binop(pr, e, x, y, out) : int_binop(pr, e, x, y, out);
}

static bool emit_unary(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    cu_val x;
    if (!kl_cu_expr(pr, e->a, &x))
        return false;
    kl_dtype t = e->a->dtype;
    if (kl_cu_is_float(t)) {
        bool dbl = t == KL_F64;
        static const char *const fn[KL_UNOP_COUNT] = {
            [KL_ABS] = "fabs", [KL_SQRT] = "sqrt", [KL_EXP] = "exp", [KL_LOG] = "log",
            [KL_TANH] = "tanh", [KL_ERF] = "erf", [KL_FLOOR] = "floor", [KL_CEIL] = "ceil",
            [KL_ROUND] = "rint", [KL_SIN] = "sin", [KL_COS] = "cos"};
        if (e->op == KL_NEG)
            *out = tmp(pr, t, false, "-%s", x.s);
        else if (e->op == KL_RECIP)
            *out = tmp(pr, t, false, "%s / %s", dbl ? "1.0" : "1.0f", x.s);
        else if (e->op == KL_SIGMOID)
            *out = tmp(pr, t, false, "%s(%s)", dbl ? "kl_sigmoid" : "kl_sigmoidf", x.s);
        else if (e->op >= 0 && e->op < KL_UNOP_COUNT && fn[e->op])
            *out = tmp(pr, t, false, "%s%s(%s)", fn[e->op], dbl ? "" : "f", x.s);
        else
            return kl_cu_fail(pr, "unary operator %d is not defined on floats", e->op);
        return true;
    }
    const char *ct = kl_cu_reg_type(t);
    switch (e->op) {
    case KL_NEG: {
        int64_t lo, hi;
        if (x.narrow && kl_cu_range(pr, e->a, &lo, &hi) && lo > INT32_MIN)
            *out = tmp(pr, t, true, "-%s", x.s);
        else
            *out = tmp(pr, t, false, "(%s)(0u - (%s)%s)", ct, kl_cu_wrap_type(t), wide(pr, x));
        return true;
    }
    case KL_ABS:
        if (!kl_cu_is_signed(t)) {
            *out = x;
            return true;
        }
        *out = tmp(pr, t, false, "%s < 0 ? (%s)(0u - (%s)%s) : %s", wide(pr, x), ct, kl_cu_wrap_type(t),
                   wide(pr, x), wide(pr, x));
        return true;
    case KL_NOT:
        if (t == KL_BOOL)
            *out = tmp(pr, t, false, "!%s", x.s);
        else
            *out = tmp(pr, t, false, "(%s)~%s", ct, wide(pr, x));
        return true;
    case KL_FLOOR: case KL_CEIL: case KL_ROUND:
        *out = x;
        return true;
    case KL_RECIP:
        *out = tmp(pr, t, false, "(%s)%s", ct, divrem(pr, KL_DIV, t, false, "1", wide(pr, x)));
        return true;
    default:
        return kl_cu_fail(pr, "unary operator %d is not defined on %s", e->op, kl_dtype_name(t));
    }
}

/* ---------------------------------------------------------------- casts */

static const char *float_to_int(kl_cu_printer *pr, const char *x, kl_dtype from, kl_dtype to) {
    const char *f = from == KL_F64 ? "" : "f";
    const char *ct = kl_cu_reg_type(to);
    switch (to) {
    case KL_I64: return kl_sprintf(pr->a, "kl_f2i64%s(%s)", f, x);
    case KL_U64: return kl_sprintf(pr->a, "kl_f2u64%s(%s)", f, x);
    /* like the LLVM back end on x86-64: to i64, keep the low bits */
    case KL_U32: return kl_sprintf(pr->a, "(unsigned)kl_f2i64%s(%s)", f, x);
    default: return kl_sprintf(pr->a, "(%s)kl_f2i32%s(%s)", ct, f, x);
    }
}

static bool emit_cast(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    cu_val x;
    if (!kl_cu_expr(pr, e->a, &x))
        return false;
    kl_dtype from = e->a->dtype, to = e->dtype;
    const char *ct = kl_cu_reg_type(to);
    if (!ct || !kl_cu_reg_type(from))
        return kl_cu_fail(pr, "unsupported cast %s -> %s", kl_dtype_name(from), kl_dtype_name(to));
    if (kl_cu_is_float(from) && kl_cu_is_float(to)) {
        *out = strcmp(kl_cu_reg_type(from), ct) ? tmp(pr, to, false, "(%s)%s", ct, x.s) : val(x.s, to, false);
        return true;
    }
    if (kl_cu_is_float(from)) {
        if (to == KL_BOOL)
            *out = tmp(pr, to, false, "%s != 0", x.s);
        else
            *out = tmp(pr, to, false, "%s", float_to_int(pr, x.s, from, to));
        return true;
    }
    if (kl_cu_is_float(to)) {
        *out = tmp(pr, to, false, "(%s)%s", ct, x.s);
        return true;
    }
    if (to == KL_BOOL) {
        *out = from == KL_BOOL ? x : tmp(pr, to, false, "%s != 0", x.s);
        return true;
    }
    int64_t lo, hi;
    if (to == KL_I64 && (x.narrow || (kl_cu_range(pr, e->a, &lo, &hi) && kl_cu_fits_int(lo, hi) &&
                                      strcmp(kl_cu_ctype(x), "int") == 0))) {
        *out = val(x.s, to, true); /* an int widened: it stays an int */
        return true;
    }
    if (!strcmp(kl_cu_ctype(x), ct)) {
        *out = val(x.s, to, false);
        return true;
    }
    *out = tmp(pr, to, false, "(%s)%s", ct, x.s);
    return true;
}

/* x's bits as another type of the same size. 16-bit floats are floats in registers: their bits
 * come from (go to) the prelude's exact conversions; bools are 0 or 1. */
static bool emit_bitcast(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    cu_val x;
    kl_dtype from = e->a->dtype, to = e->dtype;
    const char *ct = kl_cu_reg_type(to);
    if (!ct || !kl_cu_reg_type(from) || kl_dtype_size(from) != kl_dtype_size(to))
        return kl_cu_fail(pr, "unsupported bitcast %s -> %s", kl_dtype_name(from),
                          kl_dtype_name(to));
    if (!kl_cu_expr(pr, e->a, &x))
        return false;
    const char *s = wide(pr, x);
    if (to == KL_BOOL) {
        *out = tmp(pr, to, false, "%s != 0", s);
        return true;
    }
    if (kl_cu_is_half(from))
        s = kl_sprintf(pr->a, "%s(%s)", from == KL_BF16 ? "kl_f2bf" : "kl_f2h", s);
    if (kl_cu_is_half(to))
        *out = tmp(pr, to, false, "%s((unsigned short)%s)", to == KL_BF16 ? "kl_bf2f" : "kl_h2f", s);
    else if (from == KL_F32)
        *out = tmp(pr, to, false, "(%s)__float_as_uint(%s)", ct, s);
    else if (to == KL_F32)
        *out = tmp(pr, to, false, "__uint_as_float((unsigned)%s)", s);
    else if (from == KL_F64)
        *out = tmp(pr, to, false, "(%s)__double_as_longlong(%s)", ct, s);
    else if (to == KL_F64)
        *out = tmp(pr, to, false, "__longlong_as_double((long long)%s)", s);
    else /* integers of one width: the conversion keeps the bits */
        *out = tmp(pr, to, false, "(%s)%s", ct, s);
    return true;
}

/* ---------------------------------------------------------------- offsets, loads, stores */

static bool contains_load(const kl_expr *e) {
    if (!e)
        return false;
    return e->kind == KL_E_LOAD || contains_load(e->a) || contains_load(e->b) ||
           contains_load(e->c);
}

/* One term coef * iv of an affine offset, in ints or long longs. */
static const char *affine_term(kl_cu_printer *pr, int l, int64_t coef, bool in_int) {
    const char *iv = in_int || !pr->iv_narrow[l] ? pr->iv[l] : kl_sprintf(pr->a, "(long long)%s", pr->iv[l]);
    if (coef == 1)
        return iv;
    return kl_sprintf(pr->a, "%lld%s * %s", (long long)coef, in_int ? "" : "ll", iv);
}

/* The linear element offset of buf[idx...] as an affine form over the loops in scope. */
static bool affine_offset(kl_cu_printer *pr, const kl_buffer *buf, kl_expr *const *idx,
                          bool clamp, cu_val *off) {
    kl_affine af;
    if (!kl_affine_offset(buf, idx, &af))
        return false;
    const kl_kernel *k = pr->k;
    __int128 lo = af.c, hi = af.c, c = af.c;
    for (int l = 0; l < k->n_loops; l++) {
        if (!af.coef[l])
            continue;
        if (!pr->iv[l])
            return false; /* not in scope: the general path reports it */
        __int128 e = k->extent[l] > 0 ? k->extent[l] - 1 : 0, span = (__int128)af.coef[l] * e;
        if (span < 0) lo += span; else hi += span;
        if (pr->iv_is_const[l])
            c += (__int128)af.coef[l] * pr->iv_const[l];
    }
    int64_t last = kl_shape_numel(&buf->shape) - 1;
    bool in_int = kl_cu_fits_int(lo, hi) && c >= INT32_MIN && c <= INT32_MAX;
    for (int l = 0; l < k->n_loops && in_int; l++)
        in_int = !af.coef[l] || pr->iv_is_const[l] || pr->iv_narrow[l];
    const char *s = kl_sprintf(pr->a, "%lld%s", (long long)c, in_int ? "" : "ll");
    bool only_const = true;
    for (int l = 0; l < k->n_loops; l++) {
        if (!af.coef[l] || pr->iv_is_const[l])
            continue;
        const char *term = affine_term(pr, l, af.coef[l], in_int);
        s = only_const && c == 0 ? term : kl_sprintf(pr->a, "%s + %s", s, term);
        only_const = false;
    }
    if (clamp && (lo < 0 || hi > last) && last >= 0)
        s = in_int && last <= INT32_MAX ? kl_sprintf(pr->a, "kl_clamp32(%s, %lld)", s, (long long)last)
                                        : kl_sprintf(pr->a, "kl_clamp64(%s, %lldll)", s, (long long)last);
    *off = val(s, KL_I64, in_int);
    return true;
}

/* The general case: sum of idx[d] * stride[d], wrapping (a loaded index may be anything). */
static bool general_offset(kl_cu_printer *pr, const kl_buffer *buf, kl_expr *const *idx,
                           bool clamp, cu_val *off) {
    const char *s = "0ull";
    int64_t stride = 1;
    for (int d = buf->shape.rank - 1; d >= 0; d--) {
        if (!idx || !idx[d])
            return kl_cu_fail(pr, "missing index expression of buffer %s", buf->name);
        cu_val i;
        if (!kl_cu_expr(pr, idx[d], &i))
            return false;
        if (kl_cu_is_float(idx[d]->dtype) || idx[d]->dtype == KL_BOOL)
            return kl_cu_fail(pr, "non-integer index expression");
        s = kl_sprintf(pr->a, "%s + (unsigned long long)(long long)%s * %lldull", s, i.s,
                       (long long)stride);
        clamp = clamp || contains_load(idx[d]);
        stride *= buf->shape.dim[d];
    }
    s = kl_sprintf(pr->a, "(long long)(%s)", s);
    if (clamp && buf->shape.rank > 0)
        s = kl_sprintf(pr->a, "kl_clamp64(%s, %lldll)", s, (long long)(stride > 0 ? stride - 1 : 0));
    *off = tmp(pr, KL_I64, false, "%s", s);
    return true;
}

static bool element_offset(kl_cu_printer *pr, const kl_buffer *buf, kl_expr *const *idx,
                           bool clamp, cu_val *off) {
    for (int d = 0; d < buf->shape.rank; d++)
        clamp = clamp || contains_load(idx[d]);
    if (affine_offset(pr, buf, idx, clamp, off))
        return true;
    return general_offset(pr, buf, idx, clamp, off);
}

/* The pointer a kernel reads or writes buf through: a parameter or the weights. */
static const char *buffer_base(kl_cu_printer *pr, const kl_buffer *buf) {
    const kl_buffer *root = kl_buffer_root((kl_buffer *)buf);
    const kl_cu_program *cp = pr->cp;
    const char *mt = kl_cu_mem_type(buf->dtype);
    if (root->kind == KL_BUF_CONST) {
        int64_t at = cp->const_offset[root->id];
        if (at < 0)
            return NULL;
        return kl_sprintf(pr->a, "((const %s *)(%s + %lld))", mt, KL_CU_WEIGHTS, (long long)at);
    }
    for (int i = 0; i < pr->L->n_params; i++)
        if (pr->L->params[i] == root)
            return kl_sprintf(pr->a, "p%d", i);
    return NULL;
}

static bool emit_load(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    const kl_buffer *buf = e->buf;
    if (!kl_cu_reg_type(buf->dtype))
        return kl_cu_fail(pr, "unsupported element type %s", kl_dtype_name(buf->dtype));
    const char *base = buffer_base(pr, buf);
    if (!base)
        return kl_cu_fail(pr, "buffer %s is not among the kernel's parameters", buf->name);
    cu_val off;
    if (!element_offset(pr, buf, e->idx, pr->guarded > 0, &off))
        return false;
    bool is_const = kl_buffer_root((kl_buffer *)buf)->kind == KL_BUF_CONST;
    const char *x = is_const ? kl_sprintf(pr->a, "KL_LDG(%s + %s)", base, off.s)
                             : kl_sprintf(pr->a, "%s[%s]", base, off.s);
    if (buf->dtype == KL_BOOL)
        *out = tmp(pr, KL_BOOL, false, "%s != 0", x);
    else if (buf->dtype == KL_F16)
        *out = tmp(pr, KL_F16, false, "kl_h2f(%s)", x);
    else if (buf->dtype == KL_BF16)
        *out = tmp(pr, KL_BF16, false, "kl_bf2f(%s)", x);
    else if (kl_dtype_is_minifloat(buf->dtype))
        *out = tmp(pr, buf->dtype, false, "kl_mf2f(%du, %s)", (int)buf->dtype, x);
    else
        *out = tmp(pr, buf->dtype, false, "%s", x);
    return true;
}

cu_val kl_cu_fit_small(kl_cu_printer *pr, kl_dtype t, cu_val v, unsigned mode) {
    if (kl_dtype_is_minifloat(t))
        return tmp(pr, t, false, "kl_rmf(%du, %s, %uu)", (int)t, v.s, mode);
    int shift = 32 - kl_dtype_bits(t);
    if (t == KL_I4 || t == KL_I2)
        return tmp(pr, t, false, "(signed char)((int)((unsigned)(%s) << %d) >> %d)", v.s, shift,
                   shift);
    if (t == KL_U4 || t == KL_U2)
        return tmp(pr, t, false, "(unsigned char)((unsigned)(%s) & %du)", v.s,
                   (1 << kl_dtype_bits(t)) - 1);
    return v;
}

bool kl_cu_store(kl_cu_printer *pr, cu_val v) {
    const kl_kernel *k = pr->k;
    kl_dtype t = k->out->dtype;
    if (!kl_cu_reg_type(t) || strcmp(kl_cu_reg_type(v.t), kl_cu_reg_type(t)))
        return kl_cu_fail(pr, "stored value does not match the type of buffer %s", k->out->name);
    const char *base = buffer_base(pr, k->out);
    if (!base)
        return kl_cu_fail(pr, "output buffer %s is not among the kernel's parameters", k->out->name);
    cu_val off;
    if (!element_offset(pr, k->out, k->out_idx, false, &off))
        return false;
    const char *x = v.s;
    if (t == KL_BOOL)
        x = kl_sprintf(pr->a, "(unsigned char)%s", v.s);
    else if (t == KL_F16)
        x = kl_sprintf(pr->a, "kl_f2h(%s)", v.s);
    else if (t == KL_BF16)
        x = kl_sprintf(pr->a, "kl_f2bf(%s)", v.s);
    else if (kl_dtype_is_minifloat(t)) /* a value the type holds: exact */
        x = kl_sprintf(pr->a, "kl_f2mf(%du, %s, %du)", (int)t, v.s, KL_CAST_STORE);
    else if (v.narrow)
        x = wide(pr, v);
    kl_cu_line(pr, "%s[%s] = %s;", base, off.s, x);
    return true;
}

/* ---------------------------------------------------------------- expressions */

static bool emit_iv(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    int l = (int)e->i;
    if (l < 0 || l >= pr->k->n_loops || !pr->iv[l])
        return kl_cu_fail(pr, "loop variable out of scope");
    if (kl_cu_is_float(e->dtype) || e->dtype == KL_BOOL || !kl_cu_reg_type(e->dtype))
        return kl_cu_fail(pr, "loop variable of non-integer type %s", kl_dtype_name(e->dtype));
    if (e->dtype == KL_I64) {
        *out = val(pr->iv[l], KL_I64, pr->iv_narrow[l]);
        return true;
    }
    *out = tmp(pr, e->dtype, false, "(%s)%s", kl_cu_reg_type(e->dtype), pr->iv[l]);
    return true;
}

static bool emit_select(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    cu_val c, x, y;
    if (!kl_cu_expr(pr, e->a, &c))
        return false;
    if (e->a->dtype != KL_BOOL)
        return kl_cu_fail(pr, "select condition is not bool");
    pr->guarded++;
    bool ok = kl_cu_expr(pr, e->b, &x) && kl_cu_expr(pr, e->c, &y);
    pr->guarded--;
    if (!ok)
        return false;
    if (strcmp(kl_cu_reg_type(x.t), kl_cu_reg_type(y.t)))
        return kl_cu_fail(pr, "select arms of different types");
    bool narrow = x.narrow && y.narrow;
    *out = tmp(pr, e->dtype, narrow, "%s ? %s : %s", c.s, narrow ? x.s : wide(pr, x),
               narrow ? y.s : wide(pr, y));
    return true;
}

static bool emit_uncached(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    switch (e->kind) {
    case KL_E_CONST: return emit_const(pr, e, out);
    case KL_E_IV: return emit_iv(pr, e, out);
    case KL_E_LOAD: return emit_load(pr, e, out);
    case KL_E_ACC:
        if (!pr->acc)
            return kl_cu_fail(pr, "accumulator used outside a reduction's result");
        *out = val(pr->acc, pr->k->acc_dtype, false);
        return true;
    case KL_E_UNARY: return emit_unary(pr, e, out);
    case KL_E_BINARY: return emit_binary(pr, e, out);
    case KL_E_SELECT: return emit_select(pr, e, out);
    case KL_E_CAST: return emit_cast(pr, e, out);
    case KL_E_BITCAST: return emit_bitcast(pr, e, out);
    case KL_E_STRING: return kl_cu_fail(pr, "string routines have no CUDA form");
    }
    return kl_cu_fail(pr, "unknown expression kind %d", (int)e->kind);
}

bool kl_cu_expr(kl_cu_printer *pr, const kl_expr *e, cu_val *out) {
    if (!e)
        return kl_cu_fail(pr, "missing expression");
    cu_val *m = e->kind == KL_E_ACC ? NULL : memo_get(pr, e);
    if (m) {
        *out = *m;
        return true;
    }
    if (!emit_uncached(pr, e, out))
        return false;
    /* float16 rounds after every operation (numpy, ONNX Runtime); bfloat16 only when cast */
    bool round_op = e->dtype == KL_F16 &&
                    (e->kind == KL_E_CONST || e->kind == KL_E_UNARY || e->kind == KL_E_BINARY);
    bool round_cast = kl_cu_is_half(e->dtype) && e->kind == KL_E_CAST && e->a->dtype != e->dtype;
    if (round_op || round_cast)
        *out = tmp(pr, e->dtype, false, "%s(%s)", e->dtype == KL_BF16 ? "kl_rbf" : "kl_rh", out->s);
    /* float8 / float4 and the sub-byte integers fit their type after every step, as the
     * interpreter and the LLVM back end do (a cast with its saturate / round_mode bits) */
    bool computed = e->kind == KL_E_CONST || e->kind == KL_E_UNARY || e->kind == KL_E_BINARY ||
                    (e->kind == KL_E_CAST && e->a->dtype != e->dtype);
    if (computed)
        *out = kl_cu_fit_small(pr, e->dtype, *out, e->kind == KL_E_CAST ? (unsigned)e->op : 0u);
    if (e->kind != KL_E_ACC)
        memo_put(pr, e, *out);
    return true;
}
