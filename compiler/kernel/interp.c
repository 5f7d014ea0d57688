/*
 * interp.c — the reference interpreter of kernel IR.
 *
 * Constant folding runs operators through it, so an operator is written once and the folded
 * values are those the compiled code would compute. Semantics mirror the LLVM back end: float32
 * results are rounded to float after every operation, integer division by zero gives 0, Min/Max
 * propagate NaN. Out-of-range loads are reported instead of read.
 */
#include <math.h>
#include <string.h>

#include "kiln.h"
#include "kiln_regex.h"
#include "kiln_string.h"
#include "kl.h"

typedef union val {
    double f;
    int64_t i;
} val;

typedef struct interp {
    const kl_kernel *k;
    int64_t iv[KL_MAX_LOOPS];
    val acc;
    kl_diag *d;
    bool failed;
} interp;

/* ---- loads and stores ---- */
static val read_elem(const void *base, kl_dtype t, int64_t i) {
    val v = {0};
    switch (t) {
    case KL_F32: v.f = ((const float *)base)[i]; break;
    case KL_F64: v.f = ((const double *)base)[i]; break;
    case KL_F16: v.f = kl_f16_to_f32(((const uint16_t *)base)[i]); break;
    case KL_BF16: v.f = kl_bf16_to_f32(((const uint16_t *)base)[i]); break;
    case KL_I8: v.i = ((const int8_t *)base)[i]; break;
    case KL_I16: v.i = ((const int16_t *)base)[i]; break;
    case KL_I32: v.i = ((const int32_t *)base)[i]; break;
    case KL_I64: v.i = ((const int64_t *)base)[i]; break;
    case KL_U8: v.i = ((const uint8_t *)base)[i]; break;
    case KL_BOOL: v.i = ((const uint8_t *)base)[i] != 0; break;
    case KL_U16: v.i = ((const uint16_t *)base)[i]; break;
    case KL_U32: v.i = ((const uint32_t *)base)[i]; break;
    case KL_U64: v.i = (int64_t)((const uint64_t *)base)[i]; break;
    case KL_I4: case KL_I2: v.i = ((const int8_t *)base)[i]; break;
    case KL_U4: case KL_U2: v.i = ((const uint8_t *)base)[i]; break;
    case KL_STRING: v.i = (int64_t)(intptr_t)((const char *const *)base)[i]; break;
    default:
        if (kl_dtype_is_minifloat(t)) v.f = kl_minifloat_to_f32(t, ((const uint8_t *)base)[i]);
        break;
    }
    return v;
}

static void write_elem(void *base, kl_dtype t, int64_t i, val v) {
    switch (t) {
    case KL_F32: ((float *)base)[i] = (float)v.f; break;
    case KL_F64: ((double *)base)[i] = v.f; break;
    case KL_F16: ((uint16_t *)base)[i] = kl_f32_to_f16((float)v.f); break;
    case KL_BF16: ((uint16_t *)base)[i] = kl_f32_to_bf16((float)v.f); break;
    case KL_I8: case KL_U8: ((uint8_t *)base)[i] = (uint8_t)v.i; break;
    case KL_BOOL: ((uint8_t *)base)[i] = v.i != 0; break;
    case KL_I16: case KL_U16: ((uint16_t *)base)[i] = (uint16_t)v.i; break;
    case KL_I32: case KL_U32: ((uint32_t *)base)[i] = (uint32_t)v.i; break;
    case KL_I64: case KL_U64: ((int64_t *)base)[i] = v.i; break;
    case KL_I4: case KL_I2: case KL_U4: case KL_U2: ((uint8_t *)base)[i] = (uint8_t)v.i; break;
    case KL_STRING: ((const char **)base)[i] = (const char *)(intptr_t)v.i; break;
    default: /* minifloats hold representable values (fit): encoding them is exact */
        if (kl_dtype_is_minifloat(t))
            ((uint8_t *)base)[i] = kl_f32_to_minifloat(t, (float)v.f, KL_CAST_STORE);
        break;
    }
}

/* Round a computed value to what its dtype can hold (float32 rounding, integer wrap); `mode`
 * is a cast's KL_CAST_* bits for the float8 / float4 types. */
static val fit_mode(kl_dtype t, val v, unsigned mode) {
    switch (t) {
    case KL_F32: v.f = (float)v.f; break;
    case KL_F16: v.f = kl_f16_to_f32(kl_f32_to_f16((float)v.f)); break;
    case KL_BF16: v.f = kl_bf16_to_f32(kl_f32_to_bf16((float)v.f)); break;
    case KL_I8: v.i = (int8_t)v.i; break;
    case KL_I16: v.i = (int16_t)v.i; break;
    case KL_I32: v.i = (int32_t)v.i; break;
    case KL_U8: v.i = (uint8_t)v.i; break;
    case KL_U16: v.i = (uint16_t)v.i; break;
    case KL_U32: v.i = (uint32_t)v.i; break;
    case KL_BOOL: v.i = v.i != 0; break;
    case KL_I4: case KL_I2: case KL_U4: case KL_U2: v.i = kl_dtype_wrap_small_int(t, v.i); break;
    default:
        if (kl_dtype_is_minifloat(t))
            v.f = kl_minifloat_to_f32(t, kl_f32_to_minifloat(t, (float)v.f, mode));
        break;
    }
    return v;
}

static val fit(kl_dtype t, val v) { return fit_mode(t, v, 0); }

static val eval(interp *in, const kl_expr *e);


static int64_t linear_index(interp *in, const kl_buffer *b, kl_expr *const *idx, bool *ok) {
    int64_t lin = 0, stride = 1;
    for (int d = b->shape.rank - 1; d >= 0; d--) {
        int64_t x = eval(in, idx[d]).i;
        if (x < 0 || x >= b->shape.dim[d]) {
            *ok = false;
            return 0;
        }
        lin += x * stride;
        stride *= b->shape.dim[d];
    }
    *ok = true;
    return lin;
}

static void *storage(const kl_buffer *b) {
    return b->view_of ? b->view_of->host : b->host;
}

static val eval_load(interp *in, const kl_expr *e) {
    bool ok;
    int64_t lin = linear_index(in, e->buf, e->idx, &ok);
    val zero = {0};
    if (!ok) {
        if (!in->failed)
            kl_error(in->d, in->k->node, "index out of range reading '%s' in kernel %s",
                     e->buf->name, in->k->name);
        in->failed = true;
        return zero;
    }
    const void *base = storage(e->buf);
    if (!base) {
        if (!in->failed) kl_error(in->d, in->k->node, "buffer '%s' has no data", e->buf->name);
        in->failed = true;
        return zero;
    }
    return read_elem(base, e->buf->dtype, lin);
}

static double round_half_even(double x) {
    double r = nearbyint(x); /* default rounding mode is to-nearest-even */
    return r;
}

static val eval_unary(kl_unop op, kl_dtype t, val x) {
    val r = x;
    bool fl = kl_dtype_is_float(t);
    switch (op) {
    /* integers wrap, as in the generated code (computed unsigned: no undefined overflow) */
    case KL_NEG: if (fl) r.f = -x.f; else r.i = (int64_t)(0u - (uint64_t)x.i); break;
    case KL_ABS:
        if (fl) r.f = fabs(x.f);
        else r.i = x.i < 0 ? (int64_t)(0u - (uint64_t)x.i) : x.i;
        break;
    case KL_SQRT: r.f = sqrt(x.f); break;
    case KL_EXP: r.f = exp(x.f); break;
    case KL_LOG: r.f = log(x.f); break;
    case KL_TANH: r.f = tanh(x.f); break;
    case KL_ERF: r.f = erf(x.f); break;
    case KL_FLOOR: r.f = floor(x.f); break;
    case KL_CEIL: r.f = ceil(x.f); break;
    case KL_ROUND: r.f = round_half_even(x.f); break;
    case KL_NOT: r.i = fl ? x.f == 0 : (t == KL_BOOL ? !x.i : ~x.i); break;
    case KL_SIGMOID: r.f = 1.0 / (1.0 + exp(-x.f)); break;
    case KL_RECIP: if (fl) r.f = 1.0 / x.f; else r.i = x.i ? 1 / x.i : 0; break;
    case KL_SIN: r.f = sin(x.f); break;
    case KL_COS: r.f = cos(x.f); break;
    default: break;
    }
    return r;
}

static bool is_unsigned(kl_dtype t) { return kl_dtype_is_unsigned_int(t) || t == KL_BOOL; }

static val eval_int_binary(kl_binop op, kl_dtype t, int64_t a, int64_t b) {
    val r = {0};
    bool u = is_unsigned(t);
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (op) {
    case KL_ADD: r.i = (int64_t)(ua + ub); break;
    case KL_SUB: r.i = (int64_t)(ua - ub); break;
    case KL_MUL: r.i = (int64_t)(ua * ub); break;
    case KL_DIV:
        if (!b) r.i = 0;
        else if (u) r.i = (int64_t)(ua / ub);
        else if (a == INT64_MIN && b == -1) r.i = a;
        else r.i = a / b;
        break;
    case KL_MOD:
        if (!b) r.i = 0;
        else if (u) r.i = (int64_t)(ua % ub);
        else if (b == -1) r.i = 0;
        else {
            r.i = a % b;
            if (r.i && ((r.i < 0) != (b < 0))) r.i += b;
        }
        break;
    case KL_FMOD:
        if (!b) r.i = 0;
        else if (u) r.i = (int64_t)(ua % ub);
        else r.i = b == -1 ? 0 : a % b;
        break;
    case KL_MIN: r.i = u ? (int64_t)(ua < ub ? ua : ub) : (a < b ? a : b); break;
    case KL_MAX: r.i = u ? (int64_t)(ua > ub ? ua : ub) : (a > b ? a : b); break;
    case KL_POW: {
        int64_t e = b;
        uint64_t res = 1, base = (uint64_t)a; /* wrapping, like the generated code */
        if (e < 0) {
            res = (a == 1) ? 1 : (a == -1) ? ((e & 1) ? (uint64_t)-1 : 1) : 0;
        } else {
            while (e) {
                if (e & 1) res *= base;
                base *= base;
                e >>= 1;
            }
        }
        r.i = (int64_t)res;
        break;
    }
    case KL_EQ: r.i = a == b; break;
    case KL_NE: r.i = a != b; break;
    case KL_LT: r.i = u ? ua < ub : a < b; break;
    case KL_LE: r.i = u ? ua <= ub : a <= b; break;
    case KL_GT: r.i = u ? ua > ub : a > b; break;
    case KL_GE: r.i = u ? ua >= ub : a >= b; break;
    case KL_AND: r.i = a & b; break;
    case KL_OR: r.i = a | b; break;
    case KL_XOR: r.i = a ^ b; break;
    default: break;
    }
    return r;
}

static val eval_float_binary(kl_binop op, double a, double b) {
    val r = {0};
    switch (op) {
    case KL_ADD: r.f = a + b; break;
    case KL_SUB: r.f = a - b; break;
    case KL_MUL: r.f = a * b; break;
    case KL_DIV: r.f = a / b; break;
    case KL_MIN: r.f = isnan(a) || isnan(b) ? NAN : (a < b ? a : b); break;
    case KL_MAX: r.f = isnan(a) || isnan(b) ? NAN : (a > b ? a : b); break;
    case KL_POW: r.f = pow(a, b); break;
    case KL_MOD: {
        double m = fmod(a, b);
        if (m != 0 && ((m < 0) != (b < 0))) m += b;
        r.f = m;
        break;
    }
    case KL_FMOD: r.f = fmod(a, b); break;
    case KL_EQ: r.i = a == b; break;
    case KL_NE: r.i = a != b; break;
    case KL_LT: r.i = a < b; break;
    case KL_LE: r.i = a <= b; break;
    case KL_GT: r.i = a > b; break;
    case KL_GE: r.i = a >= b; break;
    default: break;
    }
    return r;
}

static val eval_cast(kl_dtype to, kl_dtype from, val x, unsigned mode) {
    val r = {0};
    bool ff = kl_dtype_is_float(from), tf = kl_dtype_is_float(to);
    if (to == KL_BOOL) {
        r.i = ff ? x.f != 0 : x.i != 0;
    } else if (ff && tf) {
        r.f = x.f;
    } else if (ff) {
        double t = trunc(x.f);
        if (isnan(t)) r.i = is_unsigned(to) ? 0 : INT64_MIN;
        else if (is_unsigned(to) && t >= 0) r.i = t >= 18446744073709551616.0 ? -1 : (int64_t)(uint64_t)t;
        else if (t >= 9223372036854775808.0) r.i = INT64_MAX;
        else if (t < -9223372036854775808.0) r.i = INT64_MIN;
        else r.i = (int64_t)t;
    } else if (tf) {
        r.f = is_unsigned(from) ? (double)(uint64_t)x.i : (double)x.i;
    } else {
        r.i = x.i;
    }
    return fit_mode(to, r, mode);
}

/* x's bits as `to`: stored in `from`'s layout, read back in `to`'s (bool reads nonzero as true). */
static val eval_bitcast(kl_dtype to, kl_dtype from, val x) {
    unsigned char bytes[8] = {0};
    write_elem(bytes, from, 0, x);
    return read_elem(bytes, to, 0);
}

static const char *as_string(val v) { return (const char *)(intptr_t)v.i; }

/* A string routine (kiln_string.h, as runtime-min runs it). */
static val eval_string(interp *in, const kl_expr *e) {
    val r = {0};
    int64_t *arena = NULL, cap = 0;
    if (e->buf) {
        arena = storage(e->buf);
        cap = (kl_buffer_bytes(e->buf) - 16);
        if (!arena) {
            if (!in->failed) kl_error(in->d, in->k->node, "the string arena has no storage");
            in->failed = true;
            return r;
        }
    }
    switch ((kl_strop)e->op) {
    case KL_STR_EQ:
    case KL_STR_EQ_NOCASE:
        r.i = kiln_str_eq(as_string(eval(in, e->a)), as_string(eval(in, e->b)),
                          e->op == KL_STR_EQ_NOCASE);
        break;
    case KL_STR_CONCAT:
        r.i = (int64_t)(intptr_t)kiln_str_concat(arena, cap, as_string(eval(in, e->a)),
                                                 as_string(eval(in, e->b)));
        break;
    case KL_STR_LOWER:
    case KL_STR_UPPER:
        r.i = (int64_t)(intptr_t)kiln_str_case(arena, cap, as_string(eval(in, e->a)),
                                               e->op == KL_STR_UPPER);
        break;
    case KL_STR_FAILED: r.i = arena[1] != 0; break;
    case KL_STR_SPLIT_COUNT:
        r.i = kiln_str_split_count(as_string(eval(in, e->a)), as_string(eval(in, e->b)), e->i);
        break;
    case KL_STR_SPLIT_PIECE:
        r.i = (int64_t)(intptr_t)kiln_str_split_piece(arena, cap, as_string(eval(in, e->a)),
                                                      as_string(eval(in, e->b)), e->i,
                                                      eval(in, e->c).i);
        break;
    case KL_STR_REGEX_MATCH: /* `buf` is the DFA table here, not the arena */
        r.i = kiln_regex_full_match((const uint16_t *)storage(e->buf),
                                    as_string(eval(in, e->a)));
        break;
    }
    return r;
}

static val eval(interp *in, const kl_expr *e) {
    val r = {0};
    switch (e->kind) {
    case KL_E_CONST:
        if (kl_dtype_is_float(e->dtype)) r.f = e->f;
        else r.i = e->i;
        return fit(e->dtype, r);
    case KL_E_IV: r.i = in->iv[e->i]; return r;
    case KL_E_LOAD: return eval_load(in, e);
    case KL_E_ACC: return in->acc;
    case KL_E_UNARY: return fit(e->dtype, eval_unary((kl_unop)e->op, e->dtype, eval(in, e->a)));
    case KL_E_BINARY: {
        val a = eval(in, e->a), b = eval(in, e->b);
        kl_dtype t = e->a->dtype;
        r = kl_dtype_is_float(t) ? eval_float_binary((kl_binop)e->op, a.f, b.f)
                                 : eval_int_binary((kl_binop)e->op, t, a.i, b.i);
        return fit(e->dtype, r);
    }
    case KL_E_SELECT: return eval(in, e->a).i ? eval(in, e->b) : eval(in, e->c);
    case KL_E_CAST: return eval_cast(e->dtype, e->a->dtype, eval(in, e->a), (unsigned)e->op);
    case KL_E_BITCAST: return eval_bitcast(e->dtype, e->a->dtype, eval(in, e->a));
    case KL_E_STRING: return eval_string(in, e);
    }
    return r;
}

static val identity(kl_reduce red, kl_dtype t) {
    val v = {0};
    bool fl = kl_dtype_is_float(t);
    switch (red) {
    case KL_RED_PROD: if (fl) v.f = 1; else v.i = 1; break;
    case KL_RED_MAX:
        if (fl) v.f = -INFINITY;
        else v.i = is_unsigned(t) ? 0 : INT64_MIN;
        break;
    case KL_RED_MIN:
        if (fl) v.f = INFINITY;
        else v.i = is_unsigned(t) ? -1 : INT64_MAX;
        break;
    default: break;
    }
    if (kl_dtype_is_minifloat(t)) return v; /* +-Inf, as the back ends start; every step fits */
    if (t == KL_I4 || t == KL_U4 || t == KL_I2 || t == KL_U2) { /* the type's own bounds */
        int64_t b = kl_dtype_bits(t), sgn = kl_dtype_is_signed_int(t);
        if (red == KL_RED_MAX) v.i = sgn ? -((int64_t)1 << (b - 1)) : 0;
        if (red == KL_RED_MIN) v.i = sgn ? ((int64_t)1 << (b - 1)) - 1 : ((int64_t)1 << b) - 1;
    }
    return fit(t, v);
}

static val combine(kl_reduce red, kl_dtype t, val acc, val x) {
    switch (red) {
    case KL_RED_SUM: return fit(t, kl_dtype_is_float(t) ? eval_float_binary(KL_ADD, acc.f, x.f)
                                                        : eval_int_binary(KL_ADD, t, acc.i, x.i));
    case KL_RED_PROD: return fit(t, kl_dtype_is_float(t) ? eval_float_binary(KL_MUL, acc.f, x.f)
                                                         : eval_int_binary(KL_MUL, t, acc.i, x.i));
    case KL_RED_MAX: return fit(t, kl_dtype_is_float(t) ? eval_float_binary(KL_MAX, acc.f, x.f)
                                                        : eval_int_binary(KL_MAX, t, acc.i, x.i));
    case KL_RED_MIN: return fit(t, kl_dtype_is_float(t) ? eval_float_binary(KL_MIN, acc.f, x.f)
                                                        : eval_int_binary(KL_MIN, t, acc.i, x.i));
    default: return x;
    }
}

/* Advance the odometer over loops [lo, hi); false when it wraps around. */
static bool next(int64_t *iv, const int64_t *extent, int lo, int hi) {
    for (int l = hi - 1; l >= lo; l--) {
        if (++iv[l] < extent[l]) return true;
        iv[l] = 0;
    }
    return false;
}

static bool empty(const int64_t *extent, int lo, int hi) {
    for (int l = lo; l < hi; l++)
        if (extent[l] <= 0) return true;
    return false;
}

static void store(interp *in, val v) {
    const kl_kernel *k = in->k;
    bool ok;
    int64_t lin = linear_index(in, k->out, k->out_idx, &ok);
    if (!ok) {
        if (!in->failed)
            kl_error(in->d, k->node, "index out of range writing '%s' in kernel %s", k->out->name,
                     k->name);
        in->failed = true;
        return;
    }
    write_elem(storage(k->out), k->out->dtype, lin, v);
}

bool kl_interp_kernel(const kl_kernel *k, kl_diag *d) {
    interp in = {.k = k, .d = d};
    if (!storage(k->out)) return kl_error(d, k->node, "kernel %s: output has no data", k->name);
    /* run-time extents (a count computed by an earlier kernel), never past the bound */
    int64_t extent[KL_MAX_LOOPS];
    for (int l = 0; l < k->n_loops; l++) {
        extent[l] = k->extent[l];
        if (!k->extent_expr[l]) continue;
        int64_t e = eval(&in, k->extent_expr[l]).i;
        if (in.failed) return false;
        if (e < extent[l]) extent[l] = e < 0 ? 0 : e;
    }
    if (empty(extent, 0, k->n_par)) return true;
    do {
        val v;
        if (k->reduce == KL_RED_NONE) {
            v = eval(&in, k->result ? k->result : k->value);
        } else {
            in.acc = k->init ? eval(&in, k->init) : identity(k->reduce, k->acc_dtype);
            if (!empty(extent, k->n_par, k->n_loops)) {
                for (int l = k->n_par; l < k->n_loops; l++) in.iv[l] = 0;
                do {
                    in.acc = combine(k->reduce, k->acc_dtype, in.acc, eval(&in, k->value));
                } while (!in.failed && next(in.iv, extent, k->n_par, k->n_loops));
            }
            v = k->result ? eval(&in, k->result) : in.acc;
        }
        /* a float8 / float4 value is one its type holds already (a non-saturating cast's Inf
         * or NaN included): storing must not round it again */
        v = fit_mode(k->out->dtype, v, KL_CAST_STORE);
        store(&in, v);
    } while (!in.failed && next(in.iv, extent, 0, k->n_par));
    return !in.failed;
}

/* A check kernel's verdict (ops/index_check.c, ops/shape_check.c): what predict would return,
 * as a diagnostic. */
static bool check_passed(const kl_kernel *k, kl_diag *d) {
    const void *flag = storage(k->out);
    if (!k->error_code || !flag || read_elem(flag, k->out->dtype, 0).i == 0) return true;
    if (k->error_code == KILN_E_STRING_BYTES)
        return kl_error(d, k->node, "the strings built need more bytes than the string arena "
                        "holds (the compiled model would return error %d, KILN_E_STRING_BYTES)",
                        KILN_E_STRING_BYTES);
    if (k->error_code == KILN_E_SHAPE)
        return kl_error(d, k->node, "a shape input asks for another shape than the model "
                        "declares (the compiled model would return error -4, KILN_E_SHAPE)");
    return kl_error(d, k->node, "an index is out of range (the compiled model would return "
                    "error %d, KILN_E_INDEX_OUT_OF_RANGE)", k->error_code);
}

/* Whether every level of a kernel's guard holds (its conditions computed by then). */
static bool guard_holds(const kl_kernel_guard *g) {
    for (; g; g = g->outer) {
        const unsigned char *c = storage(g->cond);
        if (!c || (*c != 0) != g->when) return false;
    }
    return true;
}

bool kl_interp_program(const kl_program *p, kl_diag *d) {
    for (int i = 0; i < p->kernels.n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        if (guard_holds(k->guard) && (!kl_interp_kernel(k, d) || !check_passed(k, d)))
            return false;
    }
    for (int i = 0; i < p->traps.n; i++) {
        const kl_trap *t = p->traps.items[i];
        if (guard_holds(t->guard))
            return kl_error(d, NULL, "the inputs take a branch that was left out: %s", t->why);
    }
    return true;
}
