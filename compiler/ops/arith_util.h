/*
 * arith_util.h — helpers shared by the arithmetic families (elementwise.c, activation.c,
 * reduce.c, norm.c).
 *
 * Those operators are written once for every element type, so constants are built in the
 * type of the data they meet; elementwise work is "one kernel over the output, loads
 * broadcast"; and every reduction (ReduceX, Softmax's max and sum, normalization statistics)
 * is the same nest: one parallel loop per input dimension (extent 1 on the reduced ones, so
 * the result can be stored either with kept dimensions or without them) and one reduction
 * loop per reduced dimension, innermost. A statistic stored with kept dimensions can then be
 * read by any kernel over the input's shape through kl_lower_load_broadcast.
 * Header-only (static inline) so that the family files stay the only translation units.
 */
#ifndef KIL_ARITH_UTIL_H
#define KIL_ARITH_UTIL_H

#include <math.h>

#include "ops.h"

/* v truncated toward zero and saturated to the range of integer type t; NaN gives 0. An
 * attribute such as Shrink's lambd may be an infinity or 1e30 on an int16 input, and a plain
 * cast of those is undefined behaviour in C. */
static inline int64_t kl_arith_saturate_int(kl_dtype t, double v) {
    if (v != v) return 0;
    int bits = t == KL_BOOL ? 1 : kl_dtype_bits(t);
    if (bits < 1 || bits > 64) bits = 64;
    double hi, lo;
    if (kl_dtype_is_unsigned_int(t) || t == KL_BOOL) {
        lo = 0;
        hi = bits == 64 ? 18446744073709551615.0 : (double)((UINT64_C(1) << bits) - 1);
    } else {
        lo = -ldexp(1.0, bits - 1);
        hi = bits == 64 ? 9223372036854775807.0 : ldexp(1.0, bits - 1) - 1;
    }
    if (v <= lo) return bits == 64 && lo < 0 ? INT64_MIN : (int64_t)lo;
    if (v >= hi) return bits == 64 ? (lo < 0 ? INT64_MAX : (int64_t)UINT64_MAX) : (int64_t)hi;
    return (int64_t)v;
}

/* A constant of element type t: floats keep v, integers and bool truncate it (saturating). */
static inline kl_expr *kl_arith_const(kl_arena *a, kl_dtype t, double v) {
    return kl_dtype_is_float(t) ? kl_e_const_f(a, t, v)
                                : kl_e_const_i(a, t, kl_arith_saturate_int(t, v));
}

/* The type arithmetic on t runs in: float16 and bfloat16 compute in float32 and round once at
 * the end, as ONNX's reference implementations do (rounding after every step of exp, a sum or
 * a normalization loses several bits). */
static inline kl_dtype kl_arith_compute_dtype(kl_dtype t) {
    return t == KL_F16 || t == KL_BF16 ? KL_F32 : t;
}

static inline bool kl_arith_is_numeric(kl_dtype t) {
    return kl_dtype_supported(t) && t != KL_STRING;
}

/* Input i present, with a known shape and an element type kernels compute on. */
static inline bool kl_arith_need_input(kl_node *n, int i, kl_diag *d) {
    if (!kl_infer_need_input(n, i, d)) return false;
    kl_dtype t = n->inputs[i]->dtype;
    if (!kl_arith_is_numeric(t))
        return kl_error(d, n, "input %d ('%s') has element type %s, which %s does not support", i,
                        n->inputs[i]->name, kl_dtype_name(t), n->op_type);
    return true;
}

/* Input i must be a floating-point tensor (the operator is only defined on those). */
static inline bool kl_arith_need_float(kl_node *n, int i, kl_diag *d) {
    if (!kl_arith_need_input(n, i, d)) return false;
    if (!kl_dtype_is_float(n->inputs[i]->dtype))
        return kl_error(d, n, "input %d ('%s') must be a floating-point tensor, not %s", i,
                        n->inputs[i]->name, kl_dtype_name(n->inputs[i]->dtype));
    return true;
}

/* Inputs i and j have the same element type. */
static inline bool kl_arith_same_dtype(kl_node *n, int i, int j, kl_diag *d) {
    kl_value *a = n->inputs[i], *b = n->inputs[j];
    if (a->dtype != b->dtype)
        return kl_error(d, n, "input %d ('%s') is %s but input %d ('%s') is %s", j, b->name,
                        kl_dtype_name(b->dtype), i, a->name, kl_dtype_name(a->dtype));
    return true;
}

/* Numpy (multidirectional) broadcast of every present input in [first, first + count). */
static inline bool kl_arith_broadcast(kl_node *n, int first, int count, kl_shape *out,
                                      kl_diag *d) {
    bool have = false;
    for (int i = first; i < first + count && i < n->n_inputs; i++) {
        kl_value *v = n->inputs[i];
        if (!v) continue;
        if (!have) {
            *out = v->shape;
            have = true;
            continue;
        }
        kl_shape r;
        if (!kl_shape_broadcast(out, &v->shape, &r)) {
            kl_arena *a = kl_arena_new();
            kl_error(d, n, "inputs of shapes %s and %s cannot be broadcast", kl_shape_str(a, out),
                     kl_shape_str(a, &v->shape));
            kl_arena_free(a);
            return false;
        }
        *out = r;
    }
    if (!have) return kl_error(d, n, "no inputs");
    return true;
}

/* A kernel that stores `value` (over loop variables 0..rank-1) into every element of `out`. */
static inline kl_kernel *kl_arith_map(kl_lower *L, const kl_node *n, const char *tag,
                                      kl_buffer *out, kl_expr *value) {
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_loops = k->n_par = out->shape.rank;
    for (int i = 0; i < out->shape.rank; i++) k->extent[i] = out->shape.dim[i];
    k->out = out;
    k->out_idx = kl_lower_ivs(L, out->shape.rank);
    k->value = value;
    kl_program_add_kernel(L->prog, k);
    return k;
}

/* The shape of `s` with reduced dimensions set to 1 (keepdims) or dropped. */
static inline kl_shape kl_arith_reduced_shape(const kl_shape *s, const bool *reduced,
                                              bool keepdims) {
    kl_shape r = {0};
    for (int d = 0; d < s->rank; d++) {
        if (!reduced[d]) r.dim[r.rank++] = s->dim[d];
        else if (keepdims) r.dim[r.rank++] = 1;
    }
    return r;
}

/* Product of the reduced dimensions of `s`. */
static inline int64_t kl_arith_reduced_count(const kl_shape *s, const bool *reduced) {
    int64_t c = 1;
    for (int d = 0; d < s->rank; d++)
        if (reduced[d]) c *= s->dim[d];
    return c;
}

/* A reduction of `in` over the dimensions marked in `reduced` into `out`, whose shape is in's
 * with those dimensions kept as 1 or dropped. Loop variables: iv(d) for input dimension d
 * (extent 1 when reduced), then one reduction loop per reduced dimension in order. `value` is
 * the load of `in`; callers wrap it, set `result`, and add the kernel to the program. */
static inline kl_kernel *kl_arith_reduce(kl_lower *L, const kl_node *n, const char *tag,
                                         kl_buffer *in, const bool *reduced, kl_buffer *out,
                                         kl_reduce red) {
    kl_arena *a = L->arena;
    int rank = in->shape.rank, n_red = 0;
    bool keepdims = out->shape.rank == rank;
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    kl_expr *load_idx[KL_MAX_RANK];
    k->out_idx = kl_alloc_array(a, (size_t)rank + 1, sizeof *k->out_idx);
    int o = 0;
    for (int d = 0; d < rank; d++) {
        if (reduced[d]) {
            k->extent[d] = 1;
            k->extent[rank + n_red] = in->shape.dim[d];
            load_idx[d] = kl_e_iv(a, rank + n_red++);
            if (keepdims) k->out_idx[o++] = kl_e_idx(a, 0);
        } else {
            k->extent[d] = in->shape.dim[d];
            load_idx[d] = kl_e_iv(a, d);
            k->out_idx[o++] = kl_e_iv(a, d);
        }
    }
    k->n_par = rank;
    k->n_loops = rank + n_red;
    k->reduce = red;
    k->acc_dtype = in->dtype;
    k->out = out;
    k->value = kl_e_load(a, in, load_idx);
    return k;
}

/* Mark reduced dimensions from a list of possibly negative axes; errors name the bad axis. */
static inline bool kl_arith_mark_axis(kl_node *n, int64_t axis, int rank, bool *reduced,
                                      kl_diag *d) {
    int ax;
    if (!kl_axis_normalize(axis, rank, &ax))
        return kl_error(d, n, "axis %lld is out of range for rank %d", (long long)axis, rank);
    if (reduced[ax]) return kl_error(d, n, "axis %lld is listed twice", (long long)axis);
    reduced[ax] = true;
    return true;
}

static inline bool kl_arith_reads_only_constants(const kl_expr *e) {
    if (!e) return true;
    if (e->kind == KL_E_LOAD) {
        if (kl_buffer_root(e->buf)->kind != KL_BUF_CONST) return false;
        for (int i = 0; i < e->buf->shape.rank; i++)
            if (!kl_arith_reads_only_constants(e->idx[i])) return false;
        return true;
    }
    return kl_arith_reads_only_constants(e->a) && kl_arith_reads_only_constants(e->b) &&
           kl_arith_reads_only_constants(e->c);
}

/* Adds kernel k (without reduction) to the program, unless it reads only weights: then it runs
 * now in the interpreter and its output becomes weights too, so that per-channel factors of
 * constant parameters (BatchNormalization's scale / sqrt(var + eps)) cost nothing at run
 * time. The same kernel serves both paths, so the folded values are those the code would
 * compute. */
static inline bool kl_arith_add_or_fold(kl_lower *L, kl_kernel *k, kl_diag *d) {
    if (k->reduce != KL_RED_NONE || k->out->view_of || !kl_arith_reads_only_constants(k->value)) {
        kl_program_add_kernel(L->prog, k);
        return true;
    }
    for (int i = 0; i < L->prog->buffers.n; i++) {
        kl_buffer *b = L->prog->buffers.items[i];
        if (b->kind == KL_BUF_CONST && !b->view_of) b->host = (void *)b->data;
    }
    k->out->host = kl_alloc(L->arena, (size_t)kl_buffer_bytes(k->out) + 1);
    if (!kl_interp_kernel(k, d)) return false;
    k->out->kind = KL_BUF_CONST;
    k->out->data = k->out->host;
    return true;
}

/* Softmax (or, with `log`, LogSoftmax) of x over the reduced dimensions into out: the slice
 * maximum m, then sum(exp(x - m)), then exp(x - m) / sum or (x - m) - log(sum). Subtracting
 * the maximum keeps exp from overflowing; half types compute in float32. */
static inline void kl_arith_softmax(kl_lower *L, const kl_node *n, kl_buffer *x,
                                    const bool *reduced, kl_buffer *out, bool log) {
    kl_arena *a = L->arena;
    int rank = x->shape.rank;
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    kl_shape ks = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *m = kl_lower_temp(L, "max", x->dtype, &ks);
    kl_program_add_kernel(L->prog, kl_arith_reduce(L, n, "max", x, reduced, m, KL_RED_MAX));

    kl_buffer *sum = kl_lower_temp(L, "sum", u, &ks);
    kl_kernel *k = kl_arith_reduce(L, n, "sum", x, reduced, sum, KL_RED_SUM);
    kl_expr *max = kl_e_cast(a, u, kl_lower_load_broadcast(L, m, rank));
    k->value = kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_SUB, kl_e_cast(a, u, k->value), max));
    k->acc_dtype = u;
    kl_program_add_kernel(L->prog, k);

    kl_expr *xv = kl_e_cast(a, u, kl_e_load(a, x, kl_lower_ivs(L, rank)));
    kl_expr *shifted = kl_e_binary(a, KL_SUB, xv, max);
    kl_expr *s = kl_lower_load_broadcast(L, sum, rank);
    kl_expr *y = log ? kl_e_binary(a, KL_SUB, shifted, kl_e_unary(a, KL_LOG, s))
                     : kl_e_binary(a, KL_DIV, kl_e_unary(a, KL_EXP, shifted), s);
    kl_arith_map(L, n, NULL, out, kl_e_cast(a, x->dtype, y));
}

#endif
