/*
 * elementwise.c — arithmetic, comparison, logic and math operators that map every output
 * element to a function of the input elements at the same (broadcast) position, plus Cast and
 * BitCast (the element's bits read as another type of the same width: kernel IR's bitcast).
 *
 * Each operator is one row of a small table (ONNX name -> kernel-IR operator), so that the
 * same infer/lower pair serves the whole family and every element type: the lowering loads
 * each input broadcast to the output (kl_lower_elementwise) and combines the loads with one
 * expression. Binary operators before opset 7 broadcast the old way (attributes `broadcast` and
 * `axis`: B matches a contiguous run of A's dimensions); that case builds its own loads.
 * Variadic Sum/Max/Min/Mean fold the binary operator over all inputs. Unary operators the
 * kernel IR has no operator for (Sign, Tan, the inverse trigonometric and hyperbolic functions,
 * BitShift's shifts) are
 * composed from the ones it has. float16/bfloat16 math runs in float32 and rounds once.
 */
#include <math.h>
#include <string.h>

#include "arith_util.h"

/* ---- the operator rows ---- */

typedef enum ew_kind {
    EW_ARITH,   /* result has the inputs' type */
    EW_COMPARE, /* result is bool */
    EW_LOGIC,   /* bool inputs, bool result */
    EW_BITWISE, /* integer inputs, result of their type */
    EW_SHIFT,   /* BitShift: unsigned inputs, x * 2^y or x / 2^y */
} ew_kind;

typedef struct ew_binary {
    const char *name;
    kl_binop op;
    ew_kind kind;
} ew_binary;

static const ew_binary binaries[] = {
    {"Add", KL_ADD, EW_ARITH},        {"Sub", KL_SUB, EW_ARITH},
    {"Mul", KL_MUL, EW_ARITH},        {"Div", KL_DIV, EW_ARITH},
    {"Pow", KL_POW, EW_ARITH},        {"Mod", KL_MOD, EW_ARITH},
    {"Equal", KL_EQ, EW_COMPARE},     {"Less", KL_LT, EW_COMPARE},
    {"Greater", KL_GT, EW_COMPARE},   {"LessOrEqual", KL_LE, EW_COMPARE},
    {"GreaterOrEqual", KL_GE, EW_COMPARE},
    {"And", KL_AND, EW_LOGIC},        {"Or", KL_OR, EW_LOGIC},
    {"Xor", KL_XOR, EW_LOGIC},
    {"BitwiseAnd", KL_AND, EW_BITWISE}, {"BitwiseOr", KL_OR, EW_BITWISE},
    {"BitwiseXor", KL_XOR, EW_BITWISE}, {"BitShift", KL_MUL, EW_SHIFT},
    {"Sum", KL_ADD, EW_ARITH},        {"Mean", KL_ADD, EW_ARITH},
    {"Max", KL_MAX, EW_ARITH},        {"Min", KL_MIN, EW_ARITH},
    {NULL, KL_ADD, EW_ARITH},
};

static const ew_binary *binary_of(const kl_node *n) {
    for (const ew_binary *b = binaries; b->name; b++)
        if (!strcmp(b->name, n->op_type)) return b;
    return NULL;
}

/* The kernel operator a node applies; Mod picks C fmod semantics with fmod=1. */
static kl_binop binop_of(const kl_node *n) {
    const ew_binary *b = binary_of(n);
    if (b->op == KL_MOD && kl_attr_int(n, "fmod", 0)) return KL_FMOD;
    return b->op;
}

/* ---- binary operators ---- */

/* Old-style broadcast (opset < 7 with broadcast=1): B's dimensions equal (or are 1 at) A's
 * dimensions starting at `axis` (default: B aligned to the right). */
static bool legacy_axis(kl_node *n, int *axis, kl_diag *d) {
    const kl_shape *a = &n->inputs[0]->shape, *b = &n->inputs[1]->shape;
    int64_t ax = kl_attr_int(n, "axis", a->rank - b->rank);
    if (ax < 0) ax += a->rank;
    if (ax < 0 || ax + b->rank > a->rank)
        return kl_error(d, n, "broadcast axis %lld does not fit B of rank %d into A of rank %d",
                        (long long)ax, b->rank, a->rank);
    for (int j = 0; j < b->rank; j++)
        if (b->dim[j] != 1 && b->dim[j] != a->dim[ax + j])
            return kl_error(d, n, "B dimension %d (%lld) does not match A dimension %d (%lld)", j,
                            (long long)b->dim[j], (int)ax + j, (long long)a->dim[ax + j]);
    *axis = (int)ax;
    return true;
}

static bool uses_legacy_broadcast(const kl_node *n) {
    return n->opset < 7 && kl_attr_find(n, "broadcast");
}

static bool legacy_shape(kl_node *n, kl_shape *out, kl_diag *d) {
    if (kl_attr_int(n, "broadcast", 0)) {
        int axis;
        if (!legacy_axis(n, &axis, d)) return false;
    } else if (!kl_shape_equal(&n->inputs[0]->shape, &n->inputs[1]->shape)) {
        kl_arena *a = kl_arena_new();
        kl_error(d, n, "inputs of shapes %s and %s differ and broadcast is not set",
                 kl_shape_str(a, &n->inputs[0]->shape), kl_shape_str(a, &n->inputs[1]->shape));
        kl_arena_free(a);
        return false;
    }
    *out = n->inputs[0]->shape;
    return true;
}

static bool check_binary_types(kl_node *n, const ew_binary *b, kl_diag *d) {
    kl_dtype t = n->inputs[0]->dtype;
    if (b->kind == EW_LOGIC && t != KL_BOOL)
        return kl_error(d, n, "inputs must be bool, not %s", kl_dtype_name(t));
    if (b->kind == EW_BITWISE && !kl_dtype_is_signed_int(t) && !kl_dtype_is_unsigned_int(t))
        return kl_error(d, n, "inputs must be integers, not %s", kl_dtype_name(t));
    if (b->kind == EW_SHIFT && !kl_dtype_is_unsigned_int(t))
        return kl_error(d, n, "inputs must be unsigned integers, not %s", kl_dtype_name(t));
    if (b->op == KL_MOD && kl_dtype_is_float(t) && !kl_attr_int(n, "fmod", 0))
        return kl_error(d, n, "fmod must be 1 for floating-point inputs");
    /* Pow's exponent may have another type (opset 12+): it is converted to the base's type */
    if (b->op == KL_POW) return true;
    return kl_arith_same_dtype(n, 0, 1, d);
}

/* Equal also compares strings (opset 19): two string inputs, nothing else mixed with them. */
static bool compares_strings(const kl_node *n) {
    return !strcmp(n->op_type, "Equal") && n->opset >= 19 && n->inputs[0] && n->inputs[1] &&
           n->inputs[0]->dtype == KL_STRING && n->inputs[1]->dtype == KL_STRING;
}

static bool infer_binary(kl_node *n, kl_diag *d) {
    const ew_binary *b = binary_of(n);
    if (n->n_inputs >= 2 && compares_strings(n)) {
        kl_shape s;
        if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d) ||
            !kl_arith_broadcast(n, 0, 2, &s, d))
            return false;
        return kl_infer_set(n, 0, KL_BOOL, &s);
    }
    if (!kl_arith_need_input(n, 0, d) || !kl_arith_need_input(n, 1, d)) return false;
    if (!check_binary_types(n, b, d)) return false;
    kl_shape s;
    bool ok = uses_legacy_broadcast(n) ? legacy_shape(n, &s, d)
                                       : kl_arith_broadcast(n, 0, 2, &s, d);
    if (!ok) return false;
    bool to_bool = b->kind == EW_COMPARE || b->kind == EW_LOGIC;
    return kl_infer_set(n, 0, to_bool ? KL_BOOL : n->inputs[0]->dtype, &s);
}

/* x << y = x * 2^y and x >> y = x / 2^y (unsigned, wrapping); shifts by the width or more
 * give 0, where C would be undefined. */
static kl_expr *shift(kl_arena *a, const kl_node *n, kl_expr *x, kl_expr *y) {
    kl_dtype t = x->dtype;
    kl_expr *p = kl_e_binary(a, KL_POW, kl_arith_const(a, t, 2), y);
    bool left = !strcmp(kl_attr_string(n, "direction", ""), "LEFT");
    kl_expr *r = kl_e_binary(a, left ? KL_MUL : KL_DIV, x, p);
    kl_expr *too_far = kl_e_binary(a, KL_GE, y, kl_arith_const(a, t, 8.0 * kl_dtype_size(t)));
    return kl_e_select(a, too_far, kl_arith_const(a, t, 0), r);
}

static kl_expr *combine_binary(kl_lower *L, const kl_node *n, kl_expr *x, kl_expr *y) {
    kl_arena *a = L->arena;
    if (binary_of(n)->kind == EW_SHIFT) return shift(a, n, x, y);
    kl_binop op = binop_of(n);
    if (x->dtype == KL_STRING) return kl_e_string(a, KL_STR_EQ, NULL, x, y); /* Equal */
    if (op != KL_POW) return kl_e_binary(a, op, x, y);
    /* both operands in the base's type (half types in float32); an integer base with a float
     * exponent in float64, truncated back like the reference implementation */
    kl_dtype t = x->dtype, u = kl_arith_compute_dtype(t);
    if (!kl_dtype_is_float(t) && kl_dtype_is_float(y->dtype)) u = KL_F64;
    return kl_e_cast(a, t, kl_e_binary(a, KL_POW, kl_e_cast(a, u, x), kl_e_cast(a, u, y)));
}

static kl_expr *fn_binary(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    return combine_binary(L, n, in[0], in[1]);
}

static bool lower_legacy_binary(kl_lower *L, kl_node *n, kl_diag *d) {
    int axis = 0;
    if (kl_attr_int(n, "broadcast", 0) && !legacy_axis(n, &axis, d)) return false;
    kl_buffer *a = kl_lower_buffer(L, n->inputs[0]), *b = kl_lower_buffer(L, n->inputs[1]);
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    kl_expr *idx[KL_MAX_RANK];
    for (int j = 0; j < b->shape.rank; j++)
        idx[j] = b->shape.dim[j] == 1 ? kl_e_idx(L->arena, 0) : kl_e_iv(L->arena, axis + j);
    kl_expr *x = kl_e_load(L->arena, a, kl_lower_ivs(L, a->shape.rank));
    kl_arith_map(L, n, NULL, out, combine_binary(L, n, x, kl_e_load(L->arena, b, idx)));
    return true;
}

static bool lower_binary(kl_lower *L, kl_node *n, kl_diag *d) {
    if (uses_legacy_broadcast(n)) return lower_legacy_binary(L, n, d);
    return kl_lower_elementwise(L, n, fn_binary);
}

/* ---- variadic operators: Sum Max Min Mean ---- */

static bool infer_variadic(kl_node *n, kl_diag *d) {
    if (n->n_inputs < 1) return kl_error(d, n, "needs at least one input");
    for (int i = 0; i < n->n_inputs; i++) {
        if (!kl_arith_need_input(n, i, d)) return false;
        if (!kl_arith_same_dtype(n, 0, i, d)) return false;
    }
    kl_shape s;
    if (!kl_arith_broadcast(n, 0, n->n_inputs, &s, d)) return false;
    if (!strcmp(n->op_type, "Mean") && !kl_dtype_is_float(n->inputs[0]->dtype))
        return kl_error(d, n, "inputs must be floating-point, not %s",
                        kl_dtype_name(n->inputs[0]->dtype));
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &s);
}

static kl_expr *fn_variadic(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    kl_arena *a = L->arena;
    kl_dtype t = in[0]->dtype, u = kl_arith_compute_dtype(t);
    kl_expr *r = kl_e_cast(a, u, in[0]);
    for (int i = 1; i < n_in; i++) r = kl_e_binary(a, binop_of(n), r, kl_e_cast(a, u, in[i]));
    if (!strcmp(n->op_type, "Mean") && n_in > 1)
        r = kl_e_binary(a, KL_DIV, r, kl_arith_const(a, u, n_in));
    return kl_e_cast(a, t, r);
}

static bool lower_variadic(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_elementwise(L, n, fn_variadic);
}

/* ---- unary operators ---- */

typedef enum un_domain { UN_NUMERIC, UN_FLOAT, UN_BOOL, UN_INT } un_domain;

/* Operators without a kernel-IR operator of their own are built from others. */
typedef kl_expr *(*un_build)(kl_arena *a, kl_expr *x);

static kl_expr *c_like(kl_arena *a, const kl_expr *x, double v) {
    return kl_arith_const(a, x->dtype, v);
}
static kl_expr *bin(kl_arena *a, kl_binop op, kl_expr *x, kl_expr *y) {
    return kl_e_binary(a, op, x, y);
}
static kl_expr *un(kl_arena *a, kl_unop op, kl_expr *x) { return kl_e_unary(a, op, x); }

/* sign(x) = (x > 0) - (x < 0), written as selects so it holds for every type */
static kl_expr *sign_of(kl_arena *a, kl_expr *x) {
    kl_expr *zero = c_like(a, x, 0);
    kl_expr *neg = kl_e_select(a, bin(a, KL_LT, x, zero), c_like(a, x, -1), zero);
    return kl_e_select(a, bin(a, KL_GT, x, zero), c_like(a, x, 1), neg);
}
static kl_expr *sinh_of(kl_arena *a, kl_expr *x) {
    kl_expr *d = bin(a, KL_SUB, un(a, KL_EXP, x), un(a, KL_EXP, un(a, KL_NEG, x)));
    return bin(a, KL_MUL, d, c_like(a, x, 0.5));
}
static kl_expr *cosh_of(kl_arena *a, kl_expr *x) {
    kl_expr *s = bin(a, KL_ADD, un(a, KL_EXP, x), un(a, KL_EXP, un(a, KL_NEG, x)));
    return bin(a, KL_MUL, s, c_like(a, x, 0.5));
}
static kl_expr *tan_of(kl_arena *a, kl_expr *x) {
    return bin(a, KL_DIV, un(a, KL_SIN, x), un(a, KL_COS, x));
}
/* asinh(x) = sign(x) log(|x| + sqrt(x^2 + 1)): odd, so no cancellation for negative x */
static kl_expr *asinh_of(kl_arena *a, kl_expr *x) {
    kl_expr *ax = un(a, KL_ABS, x);
    kl_expr *r = un(a, KL_SQRT, bin(a, KL_ADD, bin(a, KL_MUL, x, x), c_like(a, x, 1)));
    kl_expr *mag = un(a, KL_LOG, bin(a, KL_ADD, ax, r));
    return kl_e_select(a, bin(a, KL_LT, x, c_like(a, x, 0)), un(a, KL_NEG, mag), mag);
}
static kl_expr *acosh_of(kl_arena *a, kl_expr *x) {
    kl_expr *r = un(a, KL_SQRT, bin(a, KL_SUB, bin(a, KL_MUL, x, x), c_like(a, x, 1)));
    return un(a, KL_LOG, bin(a, KL_ADD, x, r));
}
static kl_expr *atanh_of(kl_arena *a, kl_expr *x) {
    kl_expr *q = bin(a, KL_DIV, bin(a, KL_ADD, c_like(a, x, 1), x),
                     bin(a, KL_SUB, c_like(a, x, 1), x));
    return bin(a, KL_MUL, un(a, KL_LOG, q), c_like(a, x, 0.5));
}

/* atan(x): the IR has no arctangent, so reduce and sum a series. |x| > 1 uses
 * atan(z) = pi/2 - atan(1/z); z > tan(pi/12) uses atan(z) = pi/6 + atan((z sqrt3 - 1) /
 * (z + sqrt3)); what is left has |w| <= tan(pi/12) = 0.268, where the Taylor series to w^15
 * errs by under |w|^17 / 17 < 3e-11, below float64's need for these tests and far below
 * float32's rounding. */
static kl_expr *atan_of(kl_arena *a, kl_expr *x) {
    const double pi = 3.14159265358979323846, sqrt3 = 1.73205080756887729353;
    kl_expr *ax = un(a, KL_ABS, x), *one = c_like(a, x, 1);
    kl_expr *inv = bin(a, KL_GT, ax, one);
    kl_expr *z = kl_e_select(a, inv, bin(a, KL_DIV, one, ax), ax);
    kl_expr *far = bin(a, KL_GT, z, c_like(a, x, 0.26794919243112270));
    kl_expr *s3 = c_like(a, x, sqrt3);
    kl_expr *shifted = bin(a, KL_DIV, bin(a, KL_SUB, bin(a, KL_MUL, z, s3), one),
                           bin(a, KL_ADD, z, s3));
    kl_expr *w = kl_e_select(a, far, shifted, z);
    kl_expr *w2 = bin(a, KL_MUL, w, w);
    kl_expr *poly = c_like(a, x, -1.0 / 15); /* Horner in w^2: sum (-1)^k w^(2k+1) / (2k+1) */
    for (int k = 6; k >= 0; k--)
        poly = bin(a, KL_ADD, bin(a, KL_MUL, poly, w2),
                   c_like(a, x, (k % 2 ? -1.0 : 1.0) / (2 * k + 1)));
    kl_expr *r = bin(a, KL_MUL, poly, w);
    r = kl_e_select(a, far, bin(a, KL_ADD, r, c_like(a, x, pi / 6)), r);
    r = kl_e_select(a, inv, bin(a, KL_SUB, c_like(a, x, pi / 2), r), r);
    return kl_e_select(a, bin(a, KL_LT, x, c_like(a, x, 0)), un(a, KL_NEG, r), r);
}
/* asin(x) = atan(x / sqrt((1 - x)(1 + x))): the factored form keeps its digits near |x| = 1,
 * where x / 0 = inf gives pi/2, and |x| > 1 gives NaN from the square root. */
static kl_expr *asin_of(kl_arena *a, kl_expr *x) {
    kl_expr *one = c_like(a, x, 1);
    kl_expr *r = un(a, KL_SQRT, bin(a, KL_MUL, bin(a, KL_SUB, one, x), bin(a, KL_ADD, one, x)));
    return atan_of(a, bin(a, KL_DIV, x, r));
}
/* acos(x) = 2 atan(sqrt((1 - x) / (1 + x))): no cancellation near x = 1, unlike pi/2 - asin */
static kl_expr *acos_of(kl_arena *a, kl_expr *x) {
    kl_expr *one = c_like(a, x, 1);
    kl_expr *q = un(a, KL_SQRT, bin(a, KL_DIV, bin(a, KL_SUB, one, x), bin(a, KL_ADD, one, x)));
    return bin(a, KL_MUL, atan_of(a, q), c_like(a, x, 2));
}

typedef struct ew_unary {
    const char *name;
    kl_unop op;     /* the kernel operator, unless `build` composes the result */
    un_build build;
    un_domain domain;
} ew_unary;

static const ew_unary unaries[] = {
    {"Neg", KL_NEG, NULL, UN_NUMERIC},       {"Abs", KL_ABS, NULL, UN_NUMERIC},
    {"Sqrt", KL_SQRT, NULL, UN_FLOAT},       {"Exp", KL_EXP, NULL, UN_FLOAT},
    {"Log", KL_LOG, NULL, UN_FLOAT},         {"Erf", KL_ERF, NULL, UN_NUMERIC},
    {"Reciprocal", KL_RECIP, NULL, UN_FLOAT}, {"Floor", KL_FLOOR, NULL, UN_FLOAT},
    {"Ceil", KL_CEIL, NULL, UN_FLOAT},       {"Round", KL_ROUND, NULL, UN_FLOAT},
    {"Sin", KL_SIN, NULL, UN_FLOAT},         {"Cos", KL_COS, NULL, UN_FLOAT},
    {"Not", KL_NOT, NULL, UN_BOOL},          {"BitwiseNot", KL_NOT, NULL, UN_INT},
    {"Sign", KL_NEG, sign_of, UN_NUMERIC},   {"Tan", KL_NEG, tan_of, UN_FLOAT},
    {"Sinh", KL_NEG, sinh_of, UN_FLOAT},     {"Cosh", KL_NEG, cosh_of, UN_FLOAT},
    {"Asinh", KL_NEG, asinh_of, UN_FLOAT},   {"Acosh", KL_NEG, acosh_of, UN_FLOAT},
    {"Atanh", KL_NEG, atanh_of, UN_FLOAT},   {"Atan", KL_NEG, atan_of, UN_FLOAT},
    {"Asin", KL_NEG, asin_of, UN_FLOAT},     {"Acos", KL_NEG, acos_of, UN_FLOAT},
    {NULL, KL_NEG, NULL, UN_NUMERIC},
};

static const ew_unary *unary_of(const kl_node *n) {
    for (const ew_unary *u = unaries; u->name; u++)
        if (!strcmp(u->name, n->op_type)) return u;
    return NULL;
}

static bool infer_unary(kl_node *n, kl_diag *d) {
    const ew_unary *u = unary_of(n);
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_dtype t = n->inputs[0]->dtype;
    if (u->domain == UN_FLOAT && !kl_dtype_is_float(t))
        return kl_error(d, n, "input must be floating-point, not %s", kl_dtype_name(t));
    if (u->domain == UN_BOOL && t != KL_BOOL)
        return kl_error(d, n, "input must be bool, not %s", kl_dtype_name(t));
    if (u->domain == UN_INT && !kl_dtype_is_signed_int(t) && !kl_dtype_is_unsigned_int(t))
        return kl_error(d, n, "input must be an integer tensor, not %s", kl_dtype_name(t));
    return kl_infer_same_as_input(n, d);
}

static kl_expr *fn_unary(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    kl_arena *a = L->arena;
    const ew_unary *u = unary_of(n);
    kl_expr *x = in[0];
    kl_dtype t = x->dtype;
    if (u->op == KL_ABS && (kl_dtype_is_unsigned_int(t) || t == KL_BOOL)) return x;
    /* integer Erf is computed in float and truncated; half types compute in float32 */
    kl_dtype c = u->op == KL_ERF && !kl_dtype_is_float(t) ? KL_F32 : kl_arith_compute_dtype(t);
    kl_expr *xc = kl_e_cast(a, c, x);
    return kl_e_cast(a, t, u->build ? u->build(a, xc) : kl_e_unary(a, u->op, xc));
}

static bool lower_unary(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_elementwise(L, n, fn_unary);
}

/* ---- IsNaN, IsInf: float in, bool out ---- */

static bool infer_is_class(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d)) return false;
    return kl_infer_set(n, 0, KL_BOOL, &n->inputs[0]->shape);
}

static kl_expr *fn_is_class(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    kl_arena *a = L->arena;
    kl_expr *x = in[0];
    if (!strcmp(n->op_type, "IsNaN")) return bin(a, KL_NE, x, x);
    kl_expr *pos = bin(a, KL_EQ, x, kl_e_const_f(a, x->dtype, INFINITY));
    kl_expr *neg = bin(a, KL_EQ, x, kl_e_const_f(a, x->dtype, -INFINITY));
    bool want_pos = kl_attr_int(n, "detect_positive", 1);
    bool want_neg = kl_attr_int(n, "detect_negative", 1);
    if (want_pos && want_neg) return bin(a, KL_OR, pos, neg);
    if (want_pos) return pos;
    if (want_neg) return neg;
    return kl_e_const_i(a, KL_BOOL, 0);
}

static bool lower_is_class(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_elementwise(L, n, fn_is_class);
}

/* ---- Where ---- */

static bool infer_where(kl_node *n, kl_diag *d) {
    /* a selection: strings too (the pointers are selected) */
    for (int i = 0; i < 3; i++)
        if (!(i > 0 && n->inputs[i] && n->inputs[i]->dtype == KL_STRING
                  ? kl_infer_need_input(n, i, d)
                  : kl_arith_need_input(n, i, d)))
            return false;
    if (n->inputs[0]->dtype != KL_BOOL)
        return kl_error(d, n, "condition must be bool, not %s", kl_dtype_name(n->inputs[0]->dtype));
    if (!kl_arith_same_dtype(n, 1, 2, d)) return false;
    kl_shape s;
    if (!kl_arith_broadcast(n, 0, 3, &s, d)) return false;
    return kl_infer_set(n, 0, n->inputs[1]->dtype, &s);
}

static kl_expr *fn_where(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    return kl_e_select(L->arena, in[0], in[1], in[2]);
}

static bool lower_where(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_elementwise(L, n, fn_where);
}

/* ---- Cast ---- */

/* Opset 1 names the target type as a string ("FLOAT", "INT64", ...). */
static kl_dtype dtype_from_name(const char *s) {
    static const struct {
        const char *name;
        kl_dtype t;
    } names[] = {
        {"FLOAT", KL_F32},  {"UINT8", KL_U8},    {"INT8", KL_I8},     {"UINT16", KL_U16},
        {"INT16", KL_I16},  {"INT32", KL_I32},   {"INT64", KL_I64},   {"STRING", KL_STRING},
        {"BOOL", KL_BOOL},  {"FLOAT16", KL_F16}, {"DOUBLE", KL_F64},  {"UINT32", KL_U32},
        {"UINT64", KL_U64}, {"BFLOAT16", KL_BF16},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i].name, s)) return names[i].t;
    return KL_UNDEFINED;
}

static bool cast_target(kl_node *n, kl_dtype *to, kl_diag *d) {
    const kl_attr *a = kl_attr_find(n, "to");
    if (!a) return kl_error(d, n, "attribute 'to' is required");
    if (a->type == KL_ATTR_STRING) {
        *to = dtype_from_name(a->s);
        if (*to == KL_UNDEFINED) return kl_error(d, n, "unknown target type '%s'", a->s);
    } else {
        *to = (kl_dtype)a->i;
    }
    if (!kl_arith_is_numeric(*to))
        return kl_error(d, n, "casting to %s (type %d) is not supported",
                        kl_dtype_name(*to), (int)*to);
    return true;
}

static bool infer_cast(kl_node *n, kl_diag *d) {
    kl_dtype to = KL_UNDEFINED;
    if (!kl_arith_need_input(n, 0, d) || !cast_target(n, &to, d)) return false;
    return kl_infer_set(n, 0, to, &n->inputs[0]->shape);
}

/* CastLike: the target type is that of input 1 (only its type is read). */
static bool infer_cast_like(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d) || !kl_arith_need_input(n, 1, d)) return false;
    return kl_infer_set(n, 0, n->inputs[1]->dtype, &n->inputs[0]->shape);
}

/* The KL_CAST_* bits of `saturate` (float8 targets; float4e2m1 always saturates) and
 * `round_mode` (float8e8m0 only), or -1 when an attribute has no meaning (lower_cast says). */
static int cast_mode(const kl_node *n) {
    int64_t saturate = kl_attr_int(n, "saturate", 1);
    const char *round = kl_attr_string(n, "round_mode", "up");
    if (saturate != 0 && saturate != 1) return -1;
    int mode = saturate ? 0 : KL_CAST_NO_SATURATE;
    if (!strcmp(round, "down")) return mode | KL_CAST_ROUND_DOWN;
    if (!strcmp(round, "nearest")) return mode | KL_CAST_ROUND_NEAREST;
    return strcmp(round, "up") ? -1 : mode;
}

static kl_expr *fn_cast(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    kl_dtype to = n->outputs[0]->dtype;
    kl_expr *x = in[0];
    if (to == KL_BOOL && x->dtype != KL_BOOL) /* any nonzero value is true, also 0.5 */
        return kl_e_binary(L->arena, KL_NE, x, kl_arith_const(L->arena, x->dtype, 0));
    kl_expr *e = kl_e_cast(L->arena, to, x);
    if (e->kind == KL_E_CAST && kl_dtype_is_minifloat(to)) e->op = cast_mode(n);
    return e;
}

static bool lower_cast(kl_lower *L, kl_node *n, kl_diag *d) {
    if (cast_mode(n) < 0)
        return kl_error(d, n, "saturate must be 0 or 1 and round_mode \"up\", \"down\" or "
                        "\"nearest\" (saturate %lld, round_mode \"%s\")",
                        (long long)kl_attr_int(n, "saturate", 1),
                        kl_attr_string(n, "round_mode", "up"));
    return kl_lower_elementwise(L, n, fn_cast);
}

/* ---- BitCast (opset 26): the same bytes read as another type of the same width ---- */

static bool bitcast_target(kl_node *n, kl_dtype *to, kl_diag *d) {
    const kl_attr *a = kl_attr_find(n, "to");
    if (!a || a->type != KL_ATTR_INT) return kl_error(d, n, "integer attribute 'to' is required");
    *to = (kl_dtype)a->i;
    if (a->i == KL_STRING) return kl_error(d, n, "BitCast to string is not defined");
    if (a->i < 0 || a->i > 64 || !kl_arith_is_numeric(*to))
        return kl_error(d, n, "bitcasting to %s (type %lld) is not supported",
                        a->i >= 0 && a->i <= 64 ? kl_dtype_name((kl_dtype)a->i) : "?",
                        (long long)a->i);
    return true;
}

static bool infer_bitcast(kl_node *n, kl_diag *d) {
    kl_dtype to = KL_UNDEFINED;
    if (!kl_arith_need_input(n, 0, d) || !bitcast_target(n, &to, d)) return false;
    kl_dtype from = n->inputs[0]->dtype;
    size_t fw = kl_dtype_size(from), tw = kl_dtype_size(to);
    if (fw != tw)
        return kl_error(d, n, "BitCast from %s (%zu bits) to %s (%zu bits): the widths differ",
                        kl_dtype_name(from), 8 * fw, kl_dtype_name(to), 8 * tw);
    return kl_infer_set(n, 0, to, &n->inputs[0]->shape);
}

static kl_expr *fn_bitcast(kl_lower *L, const kl_node *n, kl_expr **in, int n_in) {
    return kl_e_bitcast(L->arena, n->outputs[0]->dtype, in[0]);
}

static bool lower_bitcast(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_elementwise(L, n, fn_bitcast);
}

/* ---- the table ---- */

/* Every attribute the covered opsets define; opset 1 carried `consumed_inputs`. */
static const char *const legacy_binary_attrs[] = {"broadcast", "axis", "consumed_inputs", NULL};
static const char *const legacy_unary_attrs[] = {"consumed_inputs", NULL};
static const char *const no_attrs[] = {NULL};
static const char *const mod_attrs[] = {"fmod", NULL};
static const char *const shift_attrs[] = {"direction", NULL};
static const char *const is_inf_attrs[] = {"detect_negative", "detect_positive", NULL};
static const char *const cast_attrs[] = {"to", "saturate", "round_mode", NULL};
static const char *const bitcast_attrs[] = {"to", NULL};

#define BINARY(name, since) \
    {"", name, since, KL_OPSET_LATEST, legacy_binary_attrs, infer_binary, lower_binary}
#define UNARY(name, since, attrs) \
    {"", name, since, KL_OPSET_LATEST, attrs, infer_unary, lower_unary}
#define VARIADIC(name) \
    {"", name, 1, KL_OPSET_LATEST, legacy_unary_attrs, infer_variadic, lower_variadic}

const kl_op kl_ops_elementwise[] = {
    BINARY("Add", 1), BINARY("Sub", 1), BINARY("Mul", 1), BINARY("Div", 1), BINARY("Pow", 1),
    BINARY("Equal", 1), BINARY("Less", 1), BINARY("Greater", 1), BINARY("LessOrEqual", 12),
    BINARY("GreaterOrEqual", 12), BINARY("And", 1), BINARY("Or", 1), BINARY("Xor", 1),
    {"", "Mod", 10, KL_OPSET_LATEST, mod_attrs, infer_binary, lower_binary},
    {"", "BitwiseAnd", 18, KL_OPSET_LATEST, no_attrs, infer_binary, lower_binary},
    {"", "BitwiseOr", 18, KL_OPSET_LATEST, no_attrs, infer_binary, lower_binary},
    {"", "BitwiseXor", 18, KL_OPSET_LATEST, no_attrs, infer_binary, lower_binary},
    {"", "BitShift", 11, KL_OPSET_LATEST, shift_attrs, infer_binary, lower_binary},
    UNARY("Neg", 1, legacy_unary_attrs), UNARY("Abs", 1, legacy_unary_attrs),
    UNARY("Sqrt", 1, legacy_unary_attrs), UNARY("Exp", 1, legacy_unary_attrs),
    UNARY("Log", 1, legacy_unary_attrs), UNARY("Erf", 9, no_attrs),
    UNARY("Reciprocal", 1, legacy_unary_attrs), UNARY("Floor", 1, legacy_unary_attrs),
    UNARY("Ceil", 1, legacy_unary_attrs), UNARY("Round", 11, no_attrs),
    UNARY("Sin", 7, no_attrs), UNARY("Cos", 7, no_attrs), UNARY("Not", 1, no_attrs),
    UNARY("Sign", 9, no_attrs), UNARY("BitwiseNot", 18, no_attrs), UNARY("Tan", 7, no_attrs),
    UNARY("Sinh", 9, no_attrs), UNARY("Cosh", 9, no_attrs), UNARY("Asinh", 9, no_attrs),
    UNARY("Acosh", 9, no_attrs), UNARY("Atanh", 9, no_attrs), UNARY("Atan", 7, no_attrs),
    UNARY("Asin", 7, no_attrs), UNARY("Acos", 7, no_attrs),
    {"", "IsNaN", 9, KL_OPSET_LATEST, no_attrs, infer_is_class, lower_is_class},
    {"", "IsInf", 10, KL_OPSET_LATEST, is_inf_attrs, infer_is_class, lower_is_class},
    VARIADIC("Sum"), VARIADIC("Max"), VARIADIC("Min"), VARIADIC("Mean"),
    {"", "Where", 9, KL_OPSET_LATEST, no_attrs, infer_where, lower_where},
    {"", "Cast", 1, KL_OPSET_LATEST, cast_attrs, infer_cast, lower_cast},
    {"", "CastLike", 15, KL_OPSET_LATEST, cast_attrs, infer_cast_like, lower_cast},
    {"", "BitCast", 26, KL_OPSET_LATEST, bitcast_attrs, infer_bitcast, lower_bitcast},
    {0},
};
