/*
 * bernoulli.c — Bernoulli: y = 1 with probability p, 0 otherwise, p the input element.
 *
 *     y = (u < p) in the output type,   u = RandomState(seed).random_sample(x.shape)
 *
 * One uniform draw u in [0, 1) per element, in C order, and 1 where u < p: an event of
 * probability p. As for the other random operators (ops/random.c) the object keeps no writable
 * state, so the draws are made while compiling (ops/numpy_random.c) into a constant float64
 * table of x's shape (at most KL_MAX_BUILT_BYTES), compared with x at run time: every call with
 * the same x gives the same y. `seed` is read as int(seed), 0 when absent (ONNX asks for a
 * fresh seed then, which kiln cannot draw at run time).
 *
 * The ONNX reference computes numpy's binomial(1, p) instead, which draws the same u but sets
 * 1 where u > 1 - p (p <= 0.5) or u <= p (p > 0.5), up to rounding, and draws nothing where p
 * is 0 (and a second time in rare cases of rounding): how many draws an element takes depends
 * on the data, which a table made before the data is known cannot follow. Both have the
 * distribution ONNX asks for; the backend tests' expected data, drawn from numpy's global
 * state after their inputs, no implementation reproduces.
 *
 * The output type is `dtype`, or the input's when absent (float16, float, double, bfloat16,
 * the integer types of 8 to 64 bits, or bool).
 */
#include "arith_util.h"
#include "numpy_random.h"

static const char *const bernoulli_attrs[] = {"dtype", "seed", NULL};

/* The types ONNX allows for y (T2). */
static bool output_type_allowed(kl_dtype t) {
    switch (t) {
    case KL_F16: case KL_F32: case KL_F64: case KL_BF16:
    case KL_U8: case KL_U16: case KL_U32: case KL_U64:
    case KL_I8: case KL_I16: case KL_I32: case KL_I64:
    case KL_BOOL:
        return true;
    default:
        return false;
    }
}

static bool bernoulli_infer(kl_node *n, kl_diag *d) {
    uint32_t seed;
    if (!kl_infer_need_input(n, 0, d) || !kl_random_seed(n, &seed, d)) return false;
    const kl_value *x = n->inputs[0];
    if (!kl_random_float_dtype(x->dtype))
        return kl_error(d, n, "input 0 ('%s') holds probabilities: float16, float, double or "
                        "bfloat16, not %s", x->name, kl_dtype_name(x->dtype));
    kl_dtype t = (kl_dtype)kl_attr_int(n, "dtype", KL_UNDEFINED);
    if (t == KL_UNDEFINED) t = x->dtype; /* 0 reads as absent, as in the reference */
    if (!output_type_allowed(t))
        return kl_error(d, n, "output type %s (dtype %d) is not supported: Bernoulli gives a "
                        "float, integer or bool tensor", kl_dtype_name(t), (int)t);
    return kl_infer_set(n, 0, t, &x->shape);
}

/* u for every element of x: a float64 constant of x's shape (NULL after a diagnostic). */
static kl_buffer *draws(kl_lower *L, const kl_node *n, kl_diag *d) {
    uint32_t seed;
    if (!kl_random_seed(n, &seed, d)) return NULL;
    return kl_random_sample_table(L, n, seed, &n->inputs[0]->shape, "Bernoulli draws one "
                                  "float64 per element of its input at compile time", d);
}

static bool bernoulli_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *u_table = draws(L, n, d);
    if (!u_table) return false;
    kl_value *x = n->inputs[0];
    int rank = x->shape.rank;
    kl_expr *p = kl_e_cast(a, KL_F64, kl_e_load(a, kl_lower_buffer(L, x), kl_lower_ivs(L, rank)));
    kl_expr *u = kl_e_load(a, u_table, kl_lower_ivs(L, rank));
    kl_expr *one = kl_e_binary(a, KL_LT, u, p);
    kl_dtype t = n->outputs[0]->dtype;
    kl_expr *y = t == KL_BOOL ? one : kl_e_select(a, one, kl_arith_const(a, t, 1),
                                                  kl_arith_const(a, t, 0));
    kl_arith_map(L, n, NULL, kl_lower_buffer(L, n->outputs[0]), y);
    return true;
}

/* Version 22 only added bfloat16 to the types. */
const kl_op kl_ops_bernoulli[] = {
    {"", "Bernoulli", 15, KL_OPSET_LATEST, bernoulli_attrs, bernoulli_infer, bernoulli_lower},
    {0},
};
