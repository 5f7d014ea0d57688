/*
 * signal.c — the window functions HannWindow, HammingWindow, BlackmanWindow (opset 17).
 *
 * Each is a sum of cosines over n < size,
 *     w[n] = a0 - a1 cos(2 pi n / D) + a2 cos(4 pi n / D)
 * with D = size (periodic, the default) or size - 1 (symmetric), computed in float64 and
 * rounded once to output_datatype (any numeric type; float32 by default). One kernel over the
 * output. The size is input 0, a scalar: a constant, or given at run time where the model
 * declares the output's shape, and a kernel checks that the size that arrives is that length
 * (KILN_E_SHAPE).
 */
#include <string.h>

#include "arith_util.h"

typedef struct window_fn {
    double a0, a1, a2;
} window_fn;

/* The coefficients, as ONNX defines them (Hamming's a0 is 25/46, not 0.54). */
static window_fn window_coefficients(const kl_node *n) {
    if (!strcmp(n->op_type, "HannWindow")) return (window_fn){0.5, 0.5, 0};
    if (!strcmp(n->op_type, "HammingWindow")) return (window_fn){25.0 / 46, 21.0 / 46, 0};
    return (window_fn){0.42, 0.5, 0.08}; /* BlackmanWindow */
}

typedef struct window_plan {
    int64_t size;
    kl_dtype out;
    bool at_run_time;
} window_plan;

static bool window_plan_of(kl_node *n, window_plan *w, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    const kl_value *size = n->inputs[0];
    if ((size->dtype != KL_I32 && size->dtype != KL_I64) || kl_shape_numel(&size->shape) != 1)
        return kl_error(d, n, "size must be an int32 or int64 scalar");
    int64_t t = kl_attr_int(n, "output_datatype", KL_F32);
    if (t < 0 || t > INT32_MAX || !kl_arith_is_numeric((kl_dtype)t) || (kl_dtype)t == KL_BOOL)
        return kl_error(d, n, "output_datatype %lld is not a numeric element type",
                        (long long)t);
    w->out = (kl_dtype)t;
    w->at_run_time = kl_input_at_run_time(n, 0);
    if (w->at_run_time) {
        const kl_value *y = n->outputs[0];
        if (!y->shape_declared && !y->has_shape) return kl_infer_declared(n, 0, d);
        if (y->shape.rank != 1)
            return kl_error(d, n, "the declared output must be 1-D, not rank %d", y->shape.rank);
        w->size = y->shape.dim[0];
    } else {
        w->size = kl_value_const_int(size, 0);
    }
    if (w->size < 0 || w->size > KL_MAX_BYTES)
        return kl_error(d, n, "size %lld is out of range", (long long)w->size);
    return true;
}

static bool infer_window(kl_node *n, kl_diag *d) {
    window_plan w;
    if (!window_plan_of(n, &w, d)) return false;
    kl_shape s = {.rank = 1, .dim = {w.size}};
    return kl_infer_set(n, 0, w.out, &s);
}

static bool lower_window(kl_lower *L, kl_node *n, kl_diag *d) {
    window_plan w;
    if (!window_plan_of(n, &w, d)) return false;
    kl_arena *a = L->arena;
    if (w.at_run_time)
        kl_lower_shape_check(L, n, kl_e_binary(a, KL_EQ, kl_lower_int_at(L, n, 0, 0),
                                               kl_e_idx(a, w.size)));
    window_fn c = window_coefficients(n);
    bool periodic = kl_attr_int(n, "periodic", 1) != 0;
    /* a symmetric window of one sample divides 0 by 0, as the definition does (NaN) */
    double span = (double)(periodic ? w.size : w.size - 1);
    kl_expr *m = kl_e_cast(a, KL_F64, kl_e_iv(a, 0));
    kl_expr *angle = kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_MUL, m,
                                                        kl_e_const_f(a, KL_F64, 2 * 3.14159265358979323846)),
                                 kl_e_const_f(a, KL_F64, span));
    kl_expr *v = kl_e_binary(a, KL_SUB, kl_e_const_f(a, KL_F64, c.a0),
                             kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F64, c.a1),
                                         kl_e_unary(a, KL_COS, angle)));
    if (c.a2 != 0) {
        kl_expr *twice = kl_e_binary(a, KL_MUL, angle, kl_e_const_f(a, KL_F64, 2));
        v = kl_e_binary(a, KL_ADD, v, kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F64, c.a2),
                                                  kl_e_unary(a, KL_COS, twice)));
    }
    kl_arith_map(L, n, NULL, kl_lower_buffer(L, n->outputs[0]), kl_e_cast(a, w.out, v));
    return true;
}

static const char *const window_attrs[] = {"output_datatype", "periodic", NULL};

const kl_op kl_ops_signal[] = {
    {"", "HannWindow", 17, KL_OPSET_LATEST, window_attrs, infer_window, lower_window},
    {"", "HammingWindow", 17, KL_OPSET_LATEST, window_attrs, infer_window, lower_window},
    {"", "BlackmanWindow", 17, KL_OPSET_LATEST, window_attrs, infer_window, lower_window},
    {0},
};
