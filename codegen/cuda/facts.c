/*
 * codegen/cuda/facts.c — what the CUDA printer knows about an expression before printing it:
 * its C types, which loops of the register block it depends on (so that block points which
 * agree on those loops share its value), and the range of an integer expression over the
 * loops' whole ranges (interval arithmetic), which decides whether integer arithmetic can be
 * written plainly (it provably stays in range: no wrap, no undefined signed overflow in C) and
 * whether an int64 can live in a 32-bit int. Facts are cached per node for one kernel.
 */
#include <string.h>

#include "cuda_internal.h"

/* ---------------------------------------------------------------- per-node facts */

typedef struct cu_fact {
    const kl_expr *e;
    signed char on_block;   /* -1 not yet known */
    uint32_t block_loops;   /* the register block's loops it depends on (bit l: loop l) */
    signed char has_range;  /* -1 not yet known */
    int64_t lo, hi;
} cu_fact;

struct cu_cache {
    size_t cap, n;
    cu_fact *slot;
};

static cu_fact *fact(kl_cu_printer *pr, const kl_expr *e) {
    cu_cache *c = pr->cache;
    if (!c) {
        c = pr->cache = kl_alloc(pr->a, sizeof *c);
        c->cap = 256;
        c->slot = kl_alloc_array(pr->a, c->cap, sizeof *c->slot);
    }
    if (2 * (c->n + 1) > c->cap) { /* grow: rehash every entry */
        cu_fact *old = c->slot;
        size_t old_cap = c->cap;
        c->cap *= 2;
        c->slot = kl_alloc_array(pr->a, c->cap, sizeof *c->slot);
        c->n = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].e) {
                cu_fact *f = fact(pr, old[i].e);
                *f = old[i];
            }
    }
    size_t h = ((uintptr_t)e >> 4) * 0x9e3779b97f4a7c15ull;
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        if (c->slot[i].e == e)
            return &c->slot[i];
        if (!c->slot[i].e) {
            c->slot[i].e = e;
            c->slot[i].on_block = -1;
            c->slot[i].has_range = -1;
            c->n++;
            return &c->slot[i];
        }
    }
}

/* The block loops e depends on, as a bit set. */
static uint32_t block_loops(kl_cu_printer *pr, const kl_expr *e) {
    if (!e)
        return 0;
    cu_fact *f = fact(pr, e);
    if (f->on_block >= 0)
        return f->block_loops;
    uint32_t m = 0;
    if (e->kind == KL_E_IV && e->i >= 0 && e->i < KL_MAX_LOOPS && pr->block_loop[e->i])
        m |= 1u << e->i;
    if (e->kind == KL_E_LOAD)
        for (int d = 0; d < e->buf->shape.rank; d++)
            m |= block_loops(pr, e->idx[d]);
    m |= block_loops(pr, e->a) | block_loops(pr, e->b) | block_loops(pr, e->c);
    f = fact(pr, e); /* the table may have grown */
    f->on_block = m != 0;
    f->block_loops = m;
    return m;
}

bool kl_cu_on_block(kl_cu_printer *pr, const kl_expr *e) { return block_loops(pr, e) != 0; }

/* What e's value depends on at the current point: the values of the block loops it reads
 * (points that agree on those share the value, e.g. every UNROLL copy the same weights). */
const char *kl_cu_point_key(kl_cu_printer *pr, const kl_expr *e) {
    uint32_t m = block_loops(pr, e);
    if (!m)
        return NULL;
    const char *key = "";
    for (int l = 0; l < KL_MAX_LOOPS; l++)
        if (m & (1u << l))
            key = kl_sprintf(pr->a, "%s%d=%s;", key, l, pr->iv[l] ? pr->iv[l] : "?");
    return key;
}

/* ---------------------------------------------------------------- types */

bool kl_cu_is_float(kl_dtype t) { return kl_dtype_is_float(t); } /* float8/float4 included */
bool kl_cu_is_signed(kl_dtype t) { return kl_dtype_is_signed_int(t); } /* int4/int2 too */
bool kl_cu_is_half(kl_dtype t) { return t == KL_F16 || t == KL_BF16; }
bool kl_cu_is_64(kl_dtype t) { return t == KL_I64 || t == KL_U64; }

const char *kl_cu_reg_type(kl_dtype t) {
    switch (t) {
    case KL_BOOL: return "bool";
    case KL_I8: return "signed char";
    case KL_U8: return "unsigned char";
    case KL_I16: return "short";
    case KL_U16: return "unsigned short";
    case KL_I32: return "int";
    case KL_U32: return "unsigned";
    case KL_I64: return "long long";
    case KL_U64: return "unsigned long long";
    case KL_F16: case KL_BF16: case KL_F32: return "float";
    case KL_F64: return "double";
    case KL_I4: case KL_I2: return "signed char";   /* wrapped to the type after every step */
    case KL_U4: case KL_U2: return "unsigned char";
    default: return kl_dtype_is_minifloat(t) ? "float" : NULL; /* bits in memory */
    }
}

const char *kl_cu_mem_type(kl_dtype t) {
    if (t == KL_BOOL || kl_dtype_is_minifloat(t))
        return "unsigned char";
    if (kl_cu_is_half(t))
        return "unsigned short";
    return kl_cu_reg_type(t);
}

const char *kl_cu_ctype(cu_val v) { return v.narrow ? "int" : kl_cu_reg_type(v.t); }

/* The unsigned type integer arithmetic of t wraps in (C promotes narrower types to int). */
const char *kl_cu_wrap_type(kl_dtype t) {
    return kl_cu_is_64(t) ? "unsigned long long" : "unsigned";
}

/* The full range of an integer type; false for types whose range int64 cannot hold. */
bool kl_cu_type_range(kl_dtype t, int64_t *lo, int64_t *hi) {
    switch (t) {
    case KL_BOOL: *lo = 0; *hi = 1; return true;
    case KL_I8: *lo = INT8_MIN; *hi = INT8_MAX; return true;
    case KL_U8: *lo = 0; *hi = UINT8_MAX; return true;
    case KL_I16: *lo = INT16_MIN; *hi = INT16_MAX; return true;
    case KL_U16: *lo = 0; *hi = UINT16_MAX; return true;
    case KL_I32: *lo = INT32_MIN; *hi = INT32_MAX; return true;
    case KL_U32: *lo = 0; *hi = UINT32_MAX; return true;
    case KL_I64: *lo = INT64_MIN; *hi = INT64_MAX; return true;
    case KL_I4: *lo = -8; *hi = 7; return true;
    case KL_U4: *lo = 0; *hi = 15; return true;
    case KL_I2: *lo = -2; *hi = 1; return true;
    case KL_U2: *lo = 0; *hi = 3; return true;
    default: return false;
    }
}

static bool fits(kl_dtype t, __int128 lo, __int128 hi) {
    int64_t tlo, thi;
    return kl_cu_type_range(t, &tlo, &thi) && lo >= tlo && hi <= thi;
}

bool kl_cu_fits_int(__int128 lo, __int128 hi) { return lo >= INT32_MIN && hi <= INT32_MAX; }

/* ---------------------------------------------------------------- ranges */

/* The mathematical range of x op y from the operands' ranges. */
static void op_range(int op, __int128 alo, __int128 ahi, __int128 blo, __int128 bhi,
                     __int128 *lo, __int128 *hi) {
    if (op == KL_ADD) {
        *lo = alo + blo;
        *hi = ahi + bhi;
    } else if (op == KL_SUB) {
        *lo = alo - bhi;
        *hi = ahi - blo;
    } else { /* KL_MUL */
        __int128 c[4] = {alo * blo, alo * bhi, ahi * blo, ahi * bhi};
        *lo = *hi = c[0];
        for (int i = 1; i < 4; i++) {
            if (c[i] < *lo) *lo = c[i];
            if (c[i] > *hi) *hi = c[i];
        }
    }
}

static bool is_arith(const kl_expr *e) {
    return e->kind == KL_E_BINARY && (e->op == KL_ADD || e->op == KL_SUB || e->op == KL_MUL);
}

static bool range_uncached(kl_cu_printer *pr, const kl_expr *e, int64_t *lo, int64_t *hi) {
    if (kl_cu_is_float(e->dtype) || !kl_cu_type_range(e->dtype, lo, hi))
        return false;
    int64_t alo, ahi, blo, bhi;
    switch (e->kind) {
    case KL_E_CONST:
        if (!fits(e->dtype, e->i, e->i))
            return true; /* truncated to the type: any value of it */
        *lo = *hi = e->dtype == KL_BOOL ? e->i != 0 : e->i;
        return true;
    case KL_E_IV: {
        int64_t n = e->i >= 0 && e->i < pr->k->n_loops ? pr->k->extent[e->i] : 1;
        *lo = 0;
        *hi = n > 0 ? n - 1 : 0;
        return true;
    }
    case KL_E_CAST:
        if (!kl_cu_is_float(e->a->dtype) && kl_cu_range(pr, e->a, &alo, &ahi) &&
            fits(e->dtype, alo, ahi)) {
            *lo = alo;
            *hi = ahi;
        }
        return true;
    case KL_E_BINARY:
        if (is_arith(e) && kl_cu_range(pr, e->a, &alo, &ahi) && kl_cu_range(pr, e->b, &blo, &bhi)) {
            __int128 rlo, rhi;
            op_range(e->op, alo, ahi, blo, bhi, &rlo, &rhi);
            if (fits(e->dtype, rlo, rhi)) {
                *lo = (int64_t)rlo;
                *hi = (int64_t)rhi;
            }
        } else if ((e->op == KL_MIN || e->op == KL_MAX) && kl_cu_range(pr, e->a, &alo, &ahi) &&
                   kl_cu_range(pr, e->b, &blo, &bhi)) {
            *lo = alo < blo ? alo : blo;
            *hi = ahi > bhi ? ahi : bhi;
        }
        return true;
    case KL_E_SELECT:
        if (kl_cu_range(pr, e->b, &alo, &ahi) && kl_cu_range(pr, e->c, &blo, &bhi)) {
            *lo = alo < blo ? alo : blo;
            *hi = ahi > bhi ? ahi : bhi;
        }
        return true;
    default:
        return true; /* the type's range */
    }
}

bool kl_cu_range(kl_cu_printer *pr, const kl_expr *e, int64_t *lo, int64_t *hi) {
    cu_fact *f = fact(pr, e);
    if (f->has_range < 0) {
        int64_t l = 0, h = 0;
        bool ok = range_uncached(pr, e, &l, &h);
        f = fact(pr, e);
        f->has_range = ok;
        f->lo = l;
        f->hi = h;
    }
    *lo = f->lo;
    *hi = f->hi;
    return f->has_range;
}

/* Whether x op y (ADD, SUB, MUL) of type t provably stays within t. */
bool kl_cu_arith_fits(kl_cu_printer *pr, const kl_expr *e, kl_dtype t, bool in_int) {
    int64_t alo, ahi, blo, bhi;
    if (!kl_cu_range(pr, e->a, &alo, &ahi) || !kl_cu_range(pr, e->b, &blo, &bhi))
        return false;
    __int128 lo, hi;
    op_range(e->op, alo, ahi, blo, bhi, &lo, &hi);
    return in_int ? kl_cu_fits_int(lo, hi) : fits(t, lo, hi);
}
