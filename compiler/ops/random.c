/*
 * random.c — the generators: RandomUniform RandomNormal RandomUniformLike RandomNormalLike.
 *
 * ONNX's generators draw new numbers on every run. A kiln object keeps no writable state, so
 * kiln draws them once, while compiling (ops/numpy_random.c), and the output is a constant of
 * the object: every call gives the same values. They are numpy's legacy RandomState(seed)
 * draws, what the ONNX reference computes for a seeded node, in C order:
 *     RandomUniform(Like):  RandomState(seed).uniform(low, high, shape)
 *     RandomNormal(Like):   RandomState(seed).normal(mean, scale, shape)
 * computed in float64 and rounded once to the output type. `seed` is a FLOAT attribute, read
 * as int(seed); without it ONNX asks for a fresh seed, which kiln cannot draw at run time: it
 * takes 0, so an unseeded node gives RandomState(0)'s numbers, the same in every object.
 *
 * RandomUniform and RandomNormal take their shape from the `shape` attribute and their type
 * from `dtype` (float when absent); the Like forms take the shape of their input (never its
 * values) and its type unless `dtype` names one. The output must be float16, float, double or
 * bfloat16. The draws are a constant table of the output's type (at most KL_MAX_BUILT_BYTES),
 * which becomes the output itself (kl_lower_constant): readers load it, no kernel runs, and
 * constant folding makes a node without inputs an ordinary graph constant.
 */
#include <inttypes.h>

#include "numpy_random.h"

static const char *const uniform_attrs[] = {"dtype", "high", "low", "seed", "shape", NULL};
static const char *const normal_attrs[] = {"dtype", "mean", "scale", "seed", "shape", NULL};
static const char *const uniform_like_attrs[] = {"dtype", "high", "low", "seed", NULL};
static const char *const normal_like_attrs[] = {"dtype", "mean", "scale", "seed", NULL};

/* ---------------------------------------------------------------- inference */

static bool need_float_output(kl_node *n, kl_dtype t, kl_diag *d) {
    if (!kl_random_float_dtype(t))
        return kl_error(d, n, "output type %s (dtype %d) is not supported: %s draws float16, "
                        "float, double or bfloat16", kl_dtype_name(t), (int)t, n->op_type);
    return true;
}

/* The `shape` attribute (required), checked: at most KL_MAX_RANK dims, none negative. */
static bool shape_from_attr(kl_node *n, kl_shape *s, kl_diag *d) {
    const int64_t *dims = NULL;
    int rank = kl_attr_ints(n, "shape", &dims);
    if (rank < 0) return kl_error(d, n, "attribute 'shape' is required");
    if (rank > KL_MAX_RANK)
        return kl_error(d, n, "attribute 'shape' has rank %d; kiln supports at most %d", rank,
                        KL_MAX_RANK);
    *s = (kl_shape){.rank = rank};
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return kl_error(d, n, "attribute 'shape' has a negative dimension (%" PRId64 ")",
                            dims[i]);
        s->dim[i] = dims[i];
    }
    return true;
}

static bool generator_infer(kl_node *n, kl_diag *d) {
    uint32_t seed;
    kl_shape s;
    kl_dtype t = (kl_dtype)kl_attr_int(n, "dtype", KL_F32);
    if (!kl_random_seed(n, &seed, d) || !need_float_output(n, t, d) || !shape_from_attr(n, &s, d))
        return false;
    return kl_infer_set(n, 0, t, &s);
}

static bool like_infer(kl_node *n, kl_diag *d) {
    uint32_t seed;
    if (!kl_infer_need_input(n, 0, d) || !kl_random_seed(n, &seed, d)) return false;
    const kl_value *x = n->inputs[0];
    kl_dtype t = (kl_dtype)kl_attr_int(n, "dtype", KL_UNDEFINED);
    if (t == KL_UNDEFINED) t = x->dtype; /* 0 reads as absent, as in the reference */
    if (!need_float_output(n, t, d)) return false;
    return kl_infer_set(n, 0, t, &x->shape);
}

/* ---------------------------------------------------------------- lowering */

/* The output's values, drawn now into a constant table that becomes the output. */
static bool lower_draws(kl_lower *L, kl_node *n, bool normal, kl_diag *d) {
    uint32_t seed;
    if (!kl_random_seed(n, &seed, d)) return false;
    kl_value *out = n->outputs[0];
    kl_buffer *table = kl_random_table(L, n, "draws", "its output is drawn at compile time "
                                       "into a constant", out->dtype, &out->shape, d);
    if (!table) return false;
    /* the attributes' defaults are ONNX's: low 0, high 1; mean 0, scale 1 */
    double a = kl_attr_float(n, normal ? "mean" : "low", 0.0);
    double b = kl_attr_float(n, normal ? "scale" : "high", 1.0);
    kl_numpy_rng r;
    kl_numpy_seed(&r, seed);
    for (int64_t i = 0, count = kl_shape_numel(&out->shape); i < count; i++)
        kl_random_store(out->dtype, table->host, i,
                        normal ? kl_numpy_normal(&r, a, b) : kl_numpy_uniform(&r, a, b));
    return kl_lower_constant(L, n, out, table);
}

static bool uniform_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_draws(L, n, false, d);
}

static bool normal_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    return lower_draws(L, n, true, d);
}

/* Every opset from 1 on: version 22 only added bfloat16 to the types. */
const kl_op kl_ops_random[] = {
    {"", "RandomUniform", 1, KL_OPSET_LATEST, uniform_attrs, generator_infer, uniform_lower},
    {"", "RandomNormal", 1, KL_OPSET_LATEST, normal_attrs, generator_infer, normal_lower},
    {"", "RandomUniformLike", 1, KL_OPSET_LATEST, uniform_like_attrs, like_infer, uniform_lower},
    {"", "RandomNormalLike", 1, KL_OPSET_LATEST, normal_like_attrs, like_infer, normal_lower},
    {0},
};
