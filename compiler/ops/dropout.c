/*
 * dropout.c — Dropout.
 *
 * At inference (the usual case: no training_mode input, or a constant false one; and every
 * opset before 12, where `is_test` defaulting to 0 still meant inference in every exported
 * graph, as ONNX Runtime reads it) Dropout is the identity: a view, and an all-true mask.
 *
 * In training mode (training_mode true, or given at run time) each element is kept when a
 * uniform draw u in [0, 1) is at least the ratio r, and the kept ones are scaled by 1 / (1 - r):
 *     y = keep * x * (1 / (1 - r)),  mask = keep   (y = x and mask = true when not training)
 * The draws are the reference's: numpy's legacy generator seeded with the `seed` attribute
 * (RandomState(seed).uniform, ops/numpy_random.c), one per element in C order.
 * The object keeps no writable state, so they are drawn here, at compile time, into a
 * constant float64 table of x's shape: every call drops the same elements. Without `seed` the
 * reference draws a fresh seed; kiln takes 0.
 */
#include <stdint.h>

#include "arith_util.h"
#include "move_util.h"
#include "numpy_random.h"

static const char *const dropout_attrs[] = {"ratio", "is_test", "consumed_inputs", "seed", NULL};

/* ---------------------------------------------------------------- inference or training */

/* Training mode is possible: opset 12 on, with a training_mode input that is not a constant
 * false. */
static bool may_train(const kl_node *n) {
    const kl_value *mode = n->opset >= 12 ? kl_node_input(n, 2) : NULL;
    return mode && !(mode->data && kl_value_const_int(mode, 0) == 0);
}

static bool dropout_is_view(const kl_node *n) { return !may_train(n); }

/* The optional mask: bool from opset 10 on, the data's type before. */
static kl_dtype dropout_mask_dtype(const kl_node *n) {
    return n->opset >= 10 ? KL_BOOL : n->inputs[0]->dtype;
}

/* The seed as numpy takes it: 0 <= seed < 2^32. */
static bool dropout_seed(const kl_node *n, uint32_t *seed, kl_diag *d) {
    int64_t s = kl_attr_int(n, "seed", 0);
    if (s < 0 || s > (int64_t)UINT32_MAX)
        return kl_error(d, n, "seed %lld is out of range (0 to 2^32 - 1)", (long long)s);
    *seed = (uint32_t)s;
    return true;
}

static bool check_training_inputs(kl_node *n, kl_diag *d) {
    uint32_t seed = 0;
    if (!kl_arith_need_float(n, 0, d) || !dropout_seed(n, &seed, d)) return false;
    const kl_value *ratio = kl_node_input(n, 1), *mode = n->inputs[2];
    if (ratio && (!kl_dtype_is_float(ratio->dtype) || kl_shape_numel(&ratio->shape) != 1))
        return kl_error(d, n, "input 1 (ratio) must be a float scalar");
    if (mode->dtype != KL_BOOL || kl_shape_numel(&mode->shape) != 1)
        return kl_error(d, n, "input 2 (training_mode) must be a bool scalar");
    return true;
}

static bool dropout_infer(kl_node *n, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d)) return false;
    if (may_train(n) && !check_training_inputs(n, d)) return false;
    const kl_value *x = n->inputs[0];
    if (!kl_infer_set(n, 0, x->dtype, &x->shape)) return false;
    if (kl_node_output(n, 1) && !kl_infer_set(n, 1, dropout_mask_dtype(n), &x->shape))
        return false;
    return true;
}

/* Nothing is dropped at inference: y is a view of x, the mask all true (all ones before
 * opset 10). */
static bool lower_inference(kl_lower *L, kl_node *n, kl_diag *d) {
    if (!kl_lower_view(L, n, n->inputs[0], n->outputs[0])) return false;
    kl_value *mask = kl_node_output(n, 1);
    if (!mask) return true;
    kl_kernel *k = kl_move_kernel(L, n, "mask", kl_lower_buffer(L, mask));
    k->value = kl_move_const(L->arena, mask->dtype, 1.0, 1);
    kl_move_add_kernel(L, k);
    return true;
}

/* numpy's draws for every element of x, a float64 constant of x's shape; NULL (with an error)
 * past the size of a constant kiln builds. */
static kl_buffer *draws(kl_lower *L, const kl_node *n, uint32_t seed, kl_diag *d) {
    return kl_random_sample_table(L, n, seed, &n->inputs[0]->shape,
                                  "training mode draws one float64 per element of x", d);
}

static bool lower_training(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    uint32_t seed = 0;
    if (!dropout_seed(n, &seed, d)) return false;
    kl_value *xv = n->inputs[0], *ratio_v = kl_node_input(n, 1);
    int rank = xv->shape.rank;
    kl_dtype t = xv->dtype, rt = ratio_v ? ratio_v->dtype : KL_F32;
    kl_expr *x = kl_e_load(a, kl_lower_buffer(L, xv), kl_lower_ivs(L, rank));
    kl_buffer *u_table = draws(L, n, seed, d);
    if (!u_table) return false;
    kl_expr *u = kl_e_load(a, u_table, kl_lower_ivs(L, rank));
    kl_expr *r = ratio_v ? kl_lower_load_broadcast(L, kl_lower_buffer(L, ratio_v), rank)
                         : kl_arith_const(a, rt, 0.5);
    kl_expr *training = kl_lower_load_broadcast(L, kl_lower_buffer(L, n->inputs[2]), rank);
    kl_expr *keep = kl_e_binary(a, KL_GE, u, kl_e_cast(a, KL_F64, r));
    /* numpy: (mask * x) * (1 / (1 - r)), the scale in the ratio's type */
    kl_expr *scale = kl_e_binary(a, KL_DIV, kl_arith_const(a, rt, 1),
                                 kl_e_binary(a, KL_SUB, kl_arith_const(a, rt, 1), r));
    kl_expr *kept = kl_e_binary(a, KL_MUL, kl_e_select(a, keep, kl_arith_const(a, t, 1),
                                                       kl_arith_const(a, t, 0)), x);
    kl_expr *y = kl_e_binary(a, KL_MUL, kept, kl_e_cast(a, t, scale));
    kl_arith_map(L, n, NULL, kl_lower_buffer(L, n->outputs[0]), kl_e_select(a, training, y, x));
    kl_value *mask = kl_node_output(n, 1);
    if (mask) {
        kl_expr *m = kl_e_select(a, training, keep, kl_e_const_i(a, KL_BOOL, 1));
        kl_arith_map(L, n, "mask", kl_lower_buffer(L, mask), m);
    }
    return true;
}

static bool dropout_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    return may_train(n) ? lower_training(L, n, d) : lower_inference(L, n, d);
}

const kl_op kl_ops_dropout[] = {
    {"", "Dropout", 1, KL_OPSET_LATEST, dropout_attrs, dropout_infer, dropout_lower,
     dropout_is_view},
    {0},
};
