/*
 * multinomial.c — Multinomial: sample_size draws per batch row from a categorical
 * distribution given by unnormalized log-probabilities.
 *
 * Input x is [batch, classes]; row b gives class j the probability exp(x[b,j]) / sum_k
 * exp(x[b,k]) (a softmax, which ONNX leaves to the operator). Output y is [batch, sample_size]
 * of int32 (default) or int64 (`dtype`): each element is one class drawn by inverse CDF, as
 * ONNX Runtime samples:
 *     w[b,j]   = exp(x[b,j] - max_k x[b,k])                       (float64, no overflow)
 *     cdf[b,j] = w[b,0] + ... + w[b,j]
 *     y[b,s]   = the first j with cdf[b,j] > u[b,s] * cdf[b,classes-1], at most classes - 1
 *              = min(#{j : cdf[b,j] <= u[b,s] * cdf[b,classes-1]}, classes - 1)
 * u[b,s] are the uniform draws of RandomState(seed).random_sample((batch, sample_size)), in C
 * order. As for the other random operators (ops/random.c) the object keeps no writable state,
 * so they are drawn while compiling (ops/numpy_random.c) into a constant float64 table (at most
 * KL_MAX_BUILT_BYTES): every call with the same x gives the same y. `seed` is read as
 * int(seed), 0 when absent (ONNX asks for a fresh seed then, which kiln cannot draw at run
 * time). A row holding NaN or +Inf, or only -Inf, has no distribution: its draws are class 0.
 *
 * The kernel IR has no scan, so the cumulative sum is written "pull" style like CumSum's
 * (ops/indexing.c): each cdf[b,j] sums the w[b,k] with k <= j, classes^2 work per row.
 */
#include <inttypes.h>

#include "arith_util.h"
#include "move_util.h"
#include "numpy_random.h"

static const char *const multinomial_attrs[] = {"dtype", "sample_size", "seed", NULL};

/* ---------------------------------------------------------------- inference */

static bool multinomial_infer(kl_node *n, kl_diag *d) {
    uint32_t seed;
    if (!kl_infer_need_input(n, 0, d) || !kl_random_seed(n, &seed, d)) return false;
    const kl_value *x = n->inputs[0];
    if (!kl_random_float_dtype(x->dtype))
        return kl_error(d, n, "input 0 ('%s') holds log-probabilities: float16, float, double "
                        "or bfloat16, not %s", x->name, kl_dtype_name(x->dtype));
    if (x->shape.rank != 2 || x->shape.dim[1] < 1)
        return kl_error(d, n, "input 0 ('%s') must be [batch, classes] with at least one class, "
                        "not %s", x->name, KL_SHAPE_TEXT(&x->shape));
    int64_t samples = kl_attr_int(n, "sample_size", 1);
    if (samples < 1)
        return kl_error(d, n, "sample_size must be at least 1, not %" PRId64, samples);
    kl_dtype t = (kl_dtype)kl_attr_int(n, "dtype", KL_I32);
    if (t != KL_I32 && t != KL_I64)
        return kl_error(d, n, "output type %s (dtype %d) is not supported: Multinomial gives "
                        "int32 or int64", kl_dtype_name(t), (int)t);
    kl_shape out = {.rank = 2, .dim = {x->shape.dim[0], samples}};
    return kl_infer_set(n, 0, t, &out);
}

/* ---------------------------------------------------------------- lowering */

/* u for every output element: a float64 constant of y's shape (NULL after a diagnostic). */
static kl_buffer *draws(kl_lower *L, const kl_node *n, kl_diag *d) {
    uint32_t seed;
    if (!kl_random_seed(n, &seed, d)) return NULL;
    return kl_random_sample_table(L, n, seed, &n->outputs[0]->shape, "Multinomial draws one "
                                  "float64 per sample at compile time", d);
}

/* w[b,j] = exp(x[b,j] - max_k x[b,k]) in float64: the unnormalized probabilities, the largest
 * 1, so that no exp overflows. */
static kl_buffer *weights(kl_lower *L, const kl_node *n, kl_buffer *x) {
    kl_arena *a = L->arena;
    const bool over_classes[2] = {false, true};
    kl_shape row = {.rank = 2, .dim = {x->shape.dim[0], 1}};
    kl_buffer *max = kl_lower_temp(L, "max", x->dtype, &row);
    kl_program_add_kernel(L->prog, kl_arith_reduce(L, n, "max", x, over_classes, max, KL_RED_MAX));
    kl_buffer *w = kl_lower_temp(L, "weights", KL_F64, &x->shape);
    kl_expr *xv = kl_e_cast(a, KL_F64, kl_e_load(a, x, kl_lower_ivs(L, 2)));
    kl_expr *m = kl_e_cast(a, KL_F64, kl_lower_load_broadcast(L, max, 2));
    kl_arith_map(L, n, "weights", w, kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_SUB, xv, m)));
    return w;
}

/* cdf[b,j] = sum of w[b,k] over k <= j (loops b, j; reduction loop k). */
static kl_buffer *cumulative(kl_lower *L, const kl_node *n, kl_buffer *w) {
    kl_arena *a = L->arena;
    kl_buffer *cdf = kl_lower_temp(L, "cdf", KL_F64, &w->shape);
    kl_kernel *k = kl_move_kernel(L, n, "cdf", cdf);
    k->n_loops = 3;
    k->extent[2] = w->shape.dim[1];
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_F64;
    kl_expr *b = kl_e_iv(a, 0), *j = kl_e_iv(a, 1), *kk = kl_e_iv(a, 2);
    kl_expr *at[2] = {b, kk};
    k->value = kl_e_select(a, kl_e_binary(a, KL_LE, kk, j), kl_e_load(a, w, at),
                           kl_e_const_f(a, KL_F64, 0.0));
    kl_move_add_kernel(L, k);
    return cdf;
}

/* y[b,s] = min(#{j : cdf[b,j] <= u[b,s] * cdf[b,classes-1]}, classes - 1) (loops b, s;
 * reduction loop j). */
static void sample(kl_lower *L, const kl_node *n, kl_buffer *cdf, kl_buffer *u, kl_buffer *y) {
    kl_arena *a = L->arena;
    int64_t classes = cdf->shape.dim[1];
    kl_kernel *k = kl_move_kernel(L, n, "sample", y);
    k->n_loops = 3;
    k->extent[2] = classes;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_expr *b = kl_e_iv(a, 0), *s = kl_e_iv(a, 1), *j = kl_e_iv(a, 2);
    kl_expr *at_j[2] = {b, j}, *at_last[2] = {b, kl_e_idx(a, classes - 1)}, *at_s[2] = {b, s};
    kl_expr *target = kl_e_binary(a, KL_MUL, kl_e_load(a, u, at_s), kl_e_load(a, cdf, at_last));
    kl_expr *below = kl_e_binary(a, KL_LE, kl_e_load(a, cdf, at_j), target);
    k->value = kl_e_select(a, below, kl_e_const_i(a, KL_I64, 1), kl_e_const_i(a, KL_I64, 0));
    /* u < 1, but u * cdf[b,classes-1] may round up to the whole sum: then every j counts,
       and the last class is the one drawn */
    kl_expr *last = kl_e_const_i(a, KL_I64, classes - 1);
    k->result = kl_e_cast(a, y->dtype, kl_e_binary(a, KL_MIN, kl_e_acc(a, KL_I64), last));
    kl_move_add_kernel(L, k);
}

static bool multinomial_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_buffer *u = draws(L, n, d);
    if (!u) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *cdf = cumulative(L, n, weights(L, n, x));
    sample(L, n, cdf, u, kl_lower_buffer(L, n->outputs[0]));
    return true;
}

/* Version 22 only added bfloat16 to the types. */
const kl_op kl_ops_multinomial[] = {
    {"", "Multinomial", 7, KL_OPSET_LATEST, multinomial_attrs, multinomial_infer,
     multinomial_lower},
    {0},
};
