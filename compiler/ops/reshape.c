/*
 * reshape.c — operators that change a tensor's shape or make a tensor from shapes:
 * Reshape Flatten Squeeze Unsqueeze Identity Shape Size Constant ConstantOfShape Expand,
 * and the generators Range and EyeLike.
 *
 * Most of them keep the elements in row-major order and only relabel the dimensions, so their
 * output is a view of the input's storage (kl_lower_view: no kernel at all), or a flat copy where
 * a view is not legal (a graph output fed by a graph input, say). The
 * interesting work is shape inference: every shape-carrying input (Reshape's shape, Unsqueeze's
 * axes, Expand's shape, ...) must be a compile-time constant, which is what makes exporters'
 * Shape -> Gather -> Concat -> Reshape chains fold away before code generation.
 *
 * Shape and Constant know their outputs without computing anything, so their inference sets the
 * output's `data` and they need no kernel. Inference has no arena, so such data points at memory
 * the graph already owns (the input's shape, the attribute's tensor); forms that would need a
 * conversion (Constant value_float(s)) are instead lowered to a copy from a constant buffer,
 * which constant folding evaluates.
 */
#include <math.h>
#include <string.h>

#include "move_util.h"

/* ---------------------------------------------------------------- shared: views */

/* Output 0 holds input 0's elements in the same order. */
static bool lower_as_view(kl_lower *L, kl_node *n, kl_diag *d) {
    return kl_lower_view(L, n, n->inputs[0], n->outputs[0]);
}

static bool always_view(const kl_node *n) { return true; }

/* ---------------------------------------------------------------- Reshape */

static const char *const reshape_attrs[] = {"shape", "consumed_inputs", "allowzero", NULL};

/* The requested shape: the `shape` attribute before opset 5, the constant input after. */
static bool reshape_target(kl_node *n, kl_int_list *target, kl_diag *d) {
    if (n->opset < 5) {
        *target = kl_int_list_from_attr(n, "shape");
        if (target->n < 0) return kl_error(d, n, "attribute 'shape' is required");
        return true;
    }
    if (!kl_node_input(n, 1)) return kl_error(d, n, "input 1 (shape) is required");
    return kl_int_list_from_input(n, 1, "shape", target, d);
}

static bool reshape_shape_at_run_time(kl_node *n) {
    return n->opset >= 5 && kl_input_at_run_time(n, 1);
}

/* The shape given at run time gives the declared one: the element counts agree, and it has
 * the declared rank (the rest is checked by the kernel of reshape_check). */
static bool reshape_infer_declared(kl_node *n, kl_diag *d) {
    const kl_value *shape = n->inputs[1];
    if (!kl_dtype_is_signed_int(shape->dtype) || shape->shape.rank != 1)
        return kl_error(d, n, "input 1 (shape) must be a 1-D integer tensor");
    if (!kl_infer_declared(n, 1, d)) return false;
    const kl_shape *out = &n->outputs[0]->shape;
    if (kl_shape_numel(out) != kl_shape_numel(&n->inputs[0]->shape) ||
        shape->shape.dim[0] != out->rank)
        return kl_error(d, n, "the declared output %s cannot be a reshape of %s by %lld "
                        "dimensions", KL_SHAPE_TEXT(out), KL_SHAPE_TEXT(&n->inputs[0]->shape),
                        (long long)shape->shape.dim[0]);
    return true;
}

static bool reshape_infer(kl_node *n, kl_diag *d) {
    kl_int_list target = {.n = -1};
    if (!kl_move_need_data(n, 0, d)) return false;
    if (reshape_shape_at_run_time(n)) return reshape_infer_declared(n, d);
    if (!reshape_target(n, &target, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape;
    bool allowzero = n->opset >= 14 && kl_attr_int(n, "allowzero", 0) != 0;
    if (target.n > KL_MAX_RANK)
        return kl_error(d, n, "target shape has rank %" PRId64 "; kiln supports up to %d",
                        target.n, KL_MAX_RANK);

    kl_shape out = {.rank = (int)target.n};
    int inferred = -1;      /* the dimension given as -1 */
    int64_t known = 1;      /* product of the other dimensions */
    for (int i = 0; i < out.rank; i++) {
        int64_t v = kl_int_list_at(&target, i);
        if (v == -1) {
            if (inferred >= 0)
                return kl_error(d, n, "target shape has more than one -1 (dimensions %d and %d)",
                                inferred, i);
            inferred = i;
            continue;
        }
        if (v == 0 && !allowzero) {
            /* 0 copies the input's dimension at the same position */
            if (i >= in->rank)
                return kl_error(d, n, "target shape[%d] is 0 (keep the input's dimension) but "
                                      "the input %s has only %d dimensions",
                                i, KL_SHAPE_TEXT(in), in->rank);
            v = in->dim[i];
        }
        if (v < 0) return kl_error(d, n, "target shape[%d] = %" PRId64 " is negative", i, v);
        out.dim[i] = v;
        if (__builtin_mul_overflow(known, v, &known))
            return kl_error(d, n, "target shape %s is too large", KL_SHAPE_TEXT(&out));
    }

    int64_t numel = kl_shape_numel(in);
    if (inferred >= 0) {
        if (known == 0 || numel % known != 0)
            return kl_error(d, n, "cannot reshape %s (%" PRId64 " elements): the other target "
                                  "dimensions multiply to %" PRId64 ", which does not divide it",
                            KL_SHAPE_TEXT(in), numel, known);
        out.dim[inferred] = numel / known;
    } else if (known != numel) {
        return kl_error(d, n, "cannot reshape %s (%" PRId64 " elements) to %s (%" PRId64
                              " elements)",
                        KL_SHAPE_TEXT(in), numel, KL_SHAPE_TEXT(&out), known);
    }
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* Each given dimension is the declared one, or 0 where the input's dimension there is the
 * declared one (unless allowzero), or the one -1. */
static kl_expr *reshape_given_ok(kl_lower *L, kl_node *n) {
    kl_arena *a = L->arena;
    const kl_shape *in = &n->inputs[0]->shape, *out = &n->outputs[0]->shape;
    bool allowzero = n->opset >= 14 && kl_attr_int(n, "allowzero", 0) != 0;
    kl_expr *ok = NULL, *minus_ones = kl_e_idx(a, 0);
    for (int i = 0; i < out->rank; i++) {
        kl_expr *v = kl_lower_int_at(L, n, 1, i);
        kl_expr *is_minus_one = kl_e_binary(a, KL_EQ, v, kl_e_idx(a, -1));
        kl_expr *fits = kl_e_binary(a, KL_OR, kl_e_binary(a, KL_EQ, v, kl_e_idx(a, out->dim[i])),
                                    is_minus_one);
        if (!allowzero && i < in->rank && in->dim[i] == out->dim[i])
            fits = kl_e_binary(a, KL_OR, fits, kl_e_binary(a, KL_EQ, v, kl_e_idx(a, 0)));
        ok = kl_e_and(a, ok, fits);
        minus_ones = kl_e_add(a, minus_ones, kl_e_select(a, is_minus_one, kl_e_idx(a, 1), kl_e_idx(a, 0)));
    }
    return kl_e_and(a, ok, kl_e_binary(a, KL_LE, minus_ones, kl_e_idx(a, 1)));
}

static bool reshape_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    if (reshape_shape_at_run_time(n)) kl_lower_shape_check(L, n, reshape_given_ok(L, n));
    return lower_as_view(L, n, d);
}

/* ---------------------------------------------------------------- Flatten */

static const char *const flatten_attrs[] = {"axis", NULL};

static bool flatten_infer(kl_node *n, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape;
    int64_t axis = kl_attr_int(n, "axis", 1);
    /* axis may equal the rank (everything in the outer dimension); negative since opset 11 */
    if (axis < 0 && n->opset >= 11) axis += in->rank;
    if (axis < 0 || axis > in->rank)
        return kl_error(d, n, "axis %" PRId64 " is out of range for input %s",
                        kl_attr_int(n, "axis", 1), KL_SHAPE_TEXT(in));
    kl_shape out = {.rank = 2, .dim = {1, 1}};
    for (int i = 0; i < in->rank; i++) out.dim[i < axis ? 0 : 1] *= in->dim[i];
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* ---------------------------------------------------------------- Squeeze */

static const char *const squeeze_attrs[] = {"axes", NULL};

/* Axes of Squeeze / Unsqueeze: the attribute before opset 13, the input from 13 on. */
static bool squeeze_axes(kl_node *n, kl_int_list *axes, kl_diag *d) {
    if (n->opset < 13) {
        *axes = kl_int_list_from_attr(n, "axes");
        return true;
    }
    return kl_int_list_from_input(n, 1, "axes", axes, d);
}

/* ---- axes given at run time (opset 13 on), where the output's shape is declared ---- */

static bool axes_at_run_time(kl_node *n) {
    return n->opset >= 13 && kl_input_at_run_time(n, 1) &&
           kl_shape_numel(&n->inputs[1]->shape) > 0;
}

/* The sets of `count` positions of `longer` that, taken out, leave `shorter` (and hold 1s). */
static int removable_sets(const kl_shape *longer, const kl_shape *shorter, int count,
                          unsigned *masks) {
    int n = 0;
    for (unsigned mask = 0; mask < 1u << longer->rank; mask++) {
        if (__builtin_popcount(mask) != count) continue;
        kl_shape rest = {0};
        bool ones = true;
        for (int i = 0; i < longer->rank; i++) {
            if ((mask >> i) & 1u) ones = ones && longer->dim[i] == 1;
            else rest.dim[rest.rank++] = longer->dim[i];
        }
        if (ones && kl_shape_equal(&rest, shorter)) masks[n++] = mask;
    }
    return n;
}

/* Squeeze (input is the longer shape) or Unsqueeze (output is): some reading of the given axes
 * takes the declared shape to the other. */
static bool axes_infer_declared(kl_node *n, bool squeeze, kl_diag *d) {
    if (n->inputs[1]->dtype != KL_I64) return kl_error(d, n, "axes must be int64");
    if (!kl_infer_declared(n, 1, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape, *out = &n->outputs[0]->shape;
    unsigned masks[1u << KL_MAX_RANK];
    int count = (int)kl_shape_numel(&n->inputs[1]->shape);
    if (removable_sets(squeeze ? in : out, squeeze ? out : in, count, masks) == 0)
        return kl_error(d, n, "no %d axes take %s to the declared %s", count, KL_SHAPE_TEXT(in),
                        KL_SHAPE_TEXT(out));
    return true;
}

static bool axes_lower_checked(kl_lower *L, kl_node *n, bool squeeze, kl_diag *d) {
    if (axes_at_run_time(n)) {
        const kl_shape *in = &n->inputs[0]->shape, *out = &n->outputs[0]->shape;
        const kl_shape *longer = squeeze ? in : out;
        unsigned masks[1u << KL_MAX_RANK];
        int count = (int)kl_shape_numel(&n->inputs[1]->shape);
        int m = removable_sets(longer, squeeze ? out : in, count, masks);
        kl_expr *ok = NULL;
        for (int i = 0; i < m; i++) {
            kl_expr *is = kl_lower_axes_are(L, n, 1, longer->rank, masks[i]);
            ok = ok ? kl_e_binary(L->arena, KL_OR, ok, is) : is;
        }
        kl_lower_shape_check(L, n, ok);
    }
    return lower_as_view(L, n, d);
}

static bool squeeze_lower(kl_lower *L, kl_node *n, kl_diag *d) { return axes_lower_checked(L, n, true, d); }
static bool unsqueeze_lower(kl_lower *L, kl_node *n, kl_diag *d) { return axes_lower_checked(L, n, false, d); }

static bool squeeze_infer(kl_node *n, kl_diag *d) {
    kl_int_list axes = {.n = -1};
    if (!kl_move_need_data(n, 0, d)) return false;
    if (axes_at_run_time(n)) return axes_infer_declared(n, true, d);
    if (!squeeze_axes(n, &axes, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape;
    bool drop[KL_MAX_RANK] = {0};
    if (axes.n < 0) {
        /* no axes: every dimension of size 1 goes */
        for (int i = 0; i < in->rank; i++) drop[i] = in->dim[i] == 1;
    }
    for (int64_t k = 0; k < axes.n; k++) {
        int axis;
        if (!kl_axis_normalize(kl_int_list_at(&axes, k), in->rank, &axis))
            return kl_error(d, n, "axis %" PRId64 " is out of range for input %s",
                            kl_int_list_at(&axes, k), KL_SHAPE_TEXT(in));
        if (in->dim[axis] != 1)
            return kl_error(d, n, "cannot squeeze axis %d of input %s: its size is %" PRId64
                                  ", not 1",
                            axis, KL_SHAPE_TEXT(in), in->dim[axis]);
        drop[axis] = true;
    }
    kl_shape out = {0};
    for (int i = 0; i < in->rank; i++)
        if (!drop[i]) out.dim[out.rank++] = in->dim[i];
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* ---------------------------------------------------------------- Unsqueeze */

static bool unsqueeze_infer(kl_node *n, kl_diag *d) {
    kl_int_list axes = {.n = -1};
    if (!kl_move_need_data(n, 0, d)) return false;
    if (axes_at_run_time(n)) return axes_infer_declared(n, false, d);
    if (!squeeze_axes(n, &axes, d)) return false;
    if (axes.n < 0)
        return kl_error(d, n, n->opset < 13 ? "attribute 'axes' is required"
                                            : "input 1 (axes) is required");
    const kl_shape *in = &n->inputs[0]->shape;
    if (in->rank + axes.n > KL_MAX_RANK)
        return kl_error(d, n, "result would have rank %" PRId64 "; kiln supports up to %d",
                        in->rank + axes.n, KL_MAX_RANK);
    kl_shape out = {.rank = in->rank + (int)axes.n};
    bool inserted[KL_MAX_RANK] = {0};
    for (int64_t k = 0; k < axes.n; k++) {
        int axis;
        /* axes index the output */
        if (!kl_axis_normalize(kl_int_list_at(&axes, k), out.rank, &axis))
            return kl_error(d, n, "axis %" PRId64 " is out of range for a result of rank %d",
                            kl_int_list_at(&axes, k), out.rank);
        if (inserted[axis]) return kl_error(d, n, "axis %d is given twice", axis);
        inserted[axis] = true;
    }
    for (int i = 0, j = 0; i < out.rank; i++) out.dim[i] = inserted[i] ? 1 : in->dim[j++];
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* ---------------------------------------------------------------- Identity */

static bool identity_infer(kl_node *n, kl_diag *d) {
    if (!kl_move_need_data(n, 0, d)) return false;
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
}

/* ---------------------------------------------------------------- Shape */

static const char *const shape_attrs[] = {"start", "end", NULL};

/* Clamp a start/end attribute of Shape (opset 15) to [0, rank], counting negatives from the end. */
static int shape_bound(int64_t v, int rank) {
    if (v < 0) v += rank;
    return v < 0 ? 0 : v > rank ? rank : (int)v;
}

static bool shape_infer(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    int rank = x->shape.rank;
    int start = 0, end = rank;
    if (n->opset >= 15) {
        start = shape_bound(kl_attr_int(n, "start", 0), rank);
        end = shape_bound(kl_attr_int(n, "end", rank), rank);
    }
    int len = end > start ? end - start : 0;
    kl_shape out = {.rank = 1, .dim = {len}};
    if (!kl_infer_set(n, 0, KL_I64, &out)) return false;
    if (x->data_dependent && x->dd_dim >= start && x->dd_dim < end)
        return true; /* one dim is a run-time length: computed (shape_lower) */
    /* The result is the input's dimensions themselves: kl_shape.dim is int64 row-major, which is
     * exactly an int64 tensor, and the input value lives as long as the graph. */
    n->outputs[0]->data = &x->shape.dim[start];
    return true;
}

/* Only for an input whose length along one dim depends on the data: that entry is its count. */
static bool shape_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_value *x = n->inputs[0];
    int start = n->opset >= 15 ? shape_bound(kl_attr_int(n, "start", 0), x->shape.rank) : 0;
    kl_kernel *k = kl_move_kernel(L, n, "shape", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *at = kl_e_iv(L->arena, 0), *value = kl_lower_dd_length_of(L, x);
    for (int i = 0; i < n->outputs[0]->shape.dim[0]; i++)
        if (start + i != x->dd_dim)
            value = kl_e_select(L->arena, kl_e_binary(L->arena, KL_EQ, at, kl_e_idx(L->arena, i)),
                                kl_e_idx(L->arena, x->shape.dim[start + i]), value);
    k->value = value;
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- Size */

/* The count is known once the input's shape is, so the output is a constant, as Shape's is: a
 * condition on it folds (AffineGrid's expansion branches on Size(size) == 4). */
static bool size_infer(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    kl_shape scalar = {0};
    if (!kl_infer_set(n, 0, KL_I64, &scalar)) return false;
    kl_value *y = n->outputs[0];
    if (n->inputs[0]->data_dependent) return true; /* computed from the run-time length */
    y->known_scalar = kl_shape_numel(&n->inputs[0]->shape);
    y->data = &y->known_scalar;
    return true;
}

/* Inference makes the output a constant, so this runs only where the value is a graph output
 * (a one-element kernel stores the count), or where the input's length along one dim depends
 * on the data (the other dims times it). */
static bool size_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_value *x = n->inputs[0];
    kl_kernel *k = kl_move_kernel(L, n, "size", kl_lower_buffer(L, n->outputs[0]));
    if (x->data_dependent) {
        kl_shape others = x->shape;
        others.dim[x->dd_dim] = 1;
        k->value = kl_e_mulc(L->arena, kl_lower_dd_length_of(L, x), kl_shape_numel(&others));
    } else {
        k->value = kl_e_const_i(L->arena, KL_I64, kl_shape_numel(&x->shape));
    }
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- Constant */

static const char *const constant_attrs[] = {
    "value",     "sparse_value", "value_float",  "value_floats",
    "value_int", "value_ints",   "value_string", "value_strings", NULL,
};

/* The one value* attribute (ONNX requires exactly one). */
static kl_attr *constant_attr(kl_node *n, kl_diag *d) {
    kl_attr *found = NULL;
    for (int i = 0; i < n->n_attrs; i++) {
        if (strncmp(n->attrs[i].name, "value", 5) && strcmp(n->attrs[i].name, "sparse_value"))
            continue;
        if (found) {
            kl_error(d, n, "attributes '%s' and '%s' both give the value; exactly one may",
                     found->name, n->attrs[i].name);
            return NULL;
        }
        found = &n->attrs[i];
    }
    if (!found) kl_error(d, n, "no value attribute (value, value_float(s), value_int(s), ...)");
    return found;
}

static bool constant_infer(kl_node *n, kl_diag *d) {
    kl_attr *a = constant_attr(n, d);
    if (!a) return false;
    const char *name = a->name;
    if (!strcmp(name, "sparse_value"))
        return kl_error(d, n, "sparse constants (sparse_value) are not supported");
    if (!strcmp(name, "value_string") || !strcmp(name, "value_strings"))
        return kl_error(d, n, "string constants (%s) are not supported", name);
    kl_value *out = n->outputs[0];
    if (!strcmp(name, "value")) {
        if (a->type != KL_ATTR_TENSOR || !a->t)
            return kl_error(d, n, "attribute 'value' must be a tensor");
        if (kl_dtype_size(a->t->dtype) == 0)
            return kl_error(d, n, "constant of element type %s is not supported",
                            kl_dtype_name(a->t->dtype));
        if (!kl_infer_set(n, 0, a->t->dtype, &a->t->shape)) return false;
        out->data = a->t->data;
        return true;
    }
    bool is_list = !strcmp(name, "value_floats") || !strcmp(name, "value_ints");
    bool is_float = !strncmp(name, "value_float", 11);
    /* the name promises a type; a model may still store another (then the array read below
       would be absent) */
    kl_attr_type want = is_float ? (is_list ? KL_ATTR_FLOATS : KL_ATTR_FLOAT)
                                 : (is_list ? KL_ATTR_INTS : KL_ATTR_INT);
    if (a->type != want)
        return kl_error(d, n, "attribute '%s' has type %d, not %s", name, (int)a->type,
                        is_float ? (is_list ? "FLOATS" : "FLOAT") : (is_list ? "INTS" : "INT"));
    kl_shape shape = {.rank = is_list ? 1 : 0, .dim = {a->n}};
    if (!kl_infer_set(n, 0, is_float ? KL_F32 : KL_I64, &shape)) return false;
    /* int64 attributes are stored as int64 already; floats are doubles and are converted by
     * the lowering below */
    if (!is_float) out->data = is_list ? (void *)a->ints : (void *)&a->i;
    return true;
}

/* value_float(s): a float32 constant buffer made from the attribute's doubles, copied out. */
static bool constant_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_value *out = n->outputs[0];
    const kl_attr *a = kl_attr_find(n, "value_float");
    if (!a) a = kl_attr_find(n, "value_floats");
    if (!a) return kl_error(d, n, "constant has no float attribute to lower");
    int64_t count = kl_shape_numel(&out->shape);
    float *data = kl_alloc_array(L->arena, (size_t)(count ? count : 1), sizeof(float));
    for (int64_t i = 0; i < count; i++)
        data[i] = (float)(a->type == KL_ATTR_FLOAT ? a->f : a->floats[i]);
    kl_buffer *src = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_value", out->name),
                                       KL_BUF_CONST, KL_F32, &out->shape);
    src->data = data;
    src->host = data; /* the interpreter reads constants through `host` */
    return kl_lower_copy(L, n, src, kl_lower_buffer(L, out));
}

/* ---------------------------------------------------------------- ConstantOfShape */

static const char *const constant_of_shape_attrs[] = {"value", NULL};

/* The fill value: a one-element tensor attribute, float32 0 by default. */
static bool constant_of_shape_fill(kl_node *n, const kl_value **fill, kl_diag *d) {
    const kl_attr *a = kl_attr_find(n, "value");
    *fill = NULL;
    if (!a) return true;
    if (a->type != KL_ATTR_TENSOR || !a->t)
        return kl_error(d, n, "attribute 'value' must be a tensor");
    if (kl_shape_numel(&a->t->shape) != 1)
        return kl_error(d, n, "attribute 'value' must hold exactly one element, not %" PRId64,
                        kl_shape_numel(&a->t->shape));
    if (kl_dtype_size(a->t->dtype) == 0 || a->t->dtype == KL_STRING)
        return kl_error(d, n, "fill value of element type %s is not supported",
                        kl_dtype_name(a->t->dtype));
    *fill = a->t;
    return true;
}

/* A shape given at run time (1-D integer, of the declared rank) must be the declared one. */
static bool given_shape_infer(kl_node *n, int input, kl_diag *d) {
    const kl_value *v = n->inputs[input];
    if (!kl_dtype_is_signed_int(v->dtype) || v->shape.rank != 1)
        return kl_error(d, n, "input %d (shape) must be a 1-D integer tensor", input);
    return kl_infer_declared(n, input, d);
}

static bool constant_of_shape_infer(kl_node *n, kl_diag *d) {
    kl_int_list dims = {.n = -1};
    const kl_value *fill;
    if (!kl_node_input(n, 0)) return kl_error(d, n, "input 0 (shape) is required");
    if (kl_input_at_run_time(n, 0)) {
        if (!constant_of_shape_fill(n, &fill, d)) return false;
        n->outputs[0]->dtype = fill ? fill->dtype : KL_F32;
        if (!given_shape_infer(n, 0, d)) return false;
        if (n->inputs[0]->shape.dim[0] != n->outputs[0]->shape.rank)
            return kl_error(d, n, "shape has %lld entries, the declared output rank %d",
                            (long long)n->inputs[0]->shape.dim[0], n->outputs[0]->shape.rank);
        return true;
    }
    if (!kl_int_list_from_input(n, 0, "shape", &dims, d) || !constant_of_shape_fill(n, &fill, d))
        return false;
    if (dims.n > KL_MAX_RANK)
        return kl_error(d, n, "shape has rank %" PRId64 "; kiln supports up to %d", dims.n,
                        KL_MAX_RANK);
    kl_shape out = {.rank = (int)dims.n};
    for (int i = 0; i < out.rank; i++) {
        out.dim[i] = kl_int_list_at(&dims, i);
        if (out.dim[i] < 0)
            return kl_error(d, n, "shape[%d] = %" PRId64 " is negative", i, out.dim[i]);
    }
    return kl_infer_set(n, 0, fill ? fill->dtype : KL_F32, &out);
}

/* Each given dimension is the declared one. */
static kl_expr *shape_is_declared(kl_lower *L, kl_node *n, int input) {
    const kl_shape *out = &n->outputs[0]->shape;
    kl_expr *ok = NULL;
    for (int i = 0; i < out->rank; i++)
        ok = kl_e_and(L->arena, ok, kl_e_binary(L->arena, KL_EQ, kl_lower_int_at(L, n, input, i),
                                                kl_e_idx(L->arena, out->dim[i])));
    return ok;
}

static bool constant_of_shape_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    const kl_value *fill;
    if (!constant_of_shape_fill(n, &fill, d)) return false;
    if (kl_input_at_run_time(n, 0)) kl_lower_shape_check(L, n, shape_is_declared(L, n, 0));
    kl_value *out = n->outputs[0];
    kl_kernel *k = kl_move_kernel(L, n, "fill", kl_lower_buffer(L, out));
    k->value = fill ? kl_move_const(L->arena, out->dtype, kl_value_const_float(fill, 0),
                                    kl_value_const_int(fill, 0))
                    : kl_e_const_f(L->arena, KL_F32, 0.0);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- Expand */

static bool expand_infer(kl_node *n, kl_diag *d) {
    kl_int_list dims = {.n = -1};
    if (!kl_move_need_data(n, 0, d)) return false;
    if (!kl_node_input(n, 1)) return kl_error(d, n, "input 1 (shape) is required");
    if (kl_input_at_run_time(n, 1)) {
        if (!given_shape_infer(n, 1, d)) return false;
        kl_shape out = n->outputs[0]->shape, given = {0};
        int64_t given_rank = n->inputs[1]->shape.dim[0]; /* checked before it becomes an int */
        if (given_rank <= out.rank) given.rank = (int)given_rank;
        for (int i = 0; i < given.rank && i < KL_MAX_RANK; i++) given.dim[i] = 1;
        if (given_rank > out.rank || !kl_shape_broadcast(&n->inputs[0]->shape, &given, &given) ||
            given.rank != out.rank)
            return kl_error(d, n, "input %s and %lld given dimensions cannot expand to the "
                            "declared %s", KL_SHAPE_TEXT(&n->inputs[0]->shape),
                            (long long)n->inputs[1]->shape.dim[0], KL_SHAPE_TEXT(&out));
        return true;
    }
    if (!kl_int_list_from_input(n, 1, "shape", &dims, d)) return false;
    if (dims.n > KL_MAX_RANK)
        return kl_error(d, n, "shape has rank %" PRId64 "; kiln supports up to %d", dims.n,
                        KL_MAX_RANK);
    kl_shape target = {.rank = (int)dims.n}, out;
    for (int i = 0; i < target.rank; i++) target.dim[i] = kl_int_list_at(&dims, i);
    const kl_shape *in = &n->inputs[0]->shape;
    /* bidirectional: a 1 in the requested shape keeps the input's dimension */
    if (!kl_shape_broadcast(in, &target, &out))
        return kl_error(d, n, "input %s cannot be expanded to %s", KL_SHAPE_TEXT(in),
                        KL_SHAPE_TEXT(&target));
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* Expand's given shape, aligned right with the input's, broadcasts to the declared one:
 * where the input has 1 the given size is the declared size (or 1 when that is 1); elsewhere it
 * is the input's size or 1. Dimensions the shape does not reach are the input's. */
static kl_expr *expand_given_ok(kl_lower *L, kl_node *n) {
    kl_arena *a = L->arena;
    const kl_shape *in = &n->inputs[0]->shape, *out = &n->outputs[0]->shape;
    int given = (int)n->inputs[1]->shape.dim[0];
    kl_expr *ok = NULL;
    for (int g = 0; g < given; g++) {
        int o = out->rank - given + g, i = in->rank - given + g;
        int64_t in_dim = i >= 0 ? in->dim[i] : 1;
        kl_expr *v = kl_lower_int_at(L, n, 1, g);
        kl_expr *fits = in_dim == 1
                            ? kl_e_binary(a, KL_EQ, v, kl_e_idx(a, out->dim[o]))
                            : kl_e_binary(a, KL_OR, kl_e_binary(a, KL_EQ, v, kl_e_idx(a, in_dim)),
                                          kl_e_binary(a, KL_EQ, v, kl_e_idx(a, 1)));
        if (in_dim == 1 && out->dim[o] == 1) fits = kl_e_binary(a, KL_EQ, v, kl_e_idx(a, 1));
        if (in_dim != 1 && in_dim != out->dim[o]) fits = kl_e_const_i(a, KL_BOOL, 0);
        ok = kl_e_and(a, ok, fits);
    }
    return ok;
}

static bool expand_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    if (kl_input_at_run_time(n, 1)) kl_lower_shape_check(L, n, expand_given_ok(L, n));
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    kl_kernel *k = kl_move_kernel(L, n, "expand", out);
    k->value = kl_lower_load_broadcast(L, kl_lower_buffer(L, n->inputs[0]), out->shape.rank);
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- Range */

static const char *const range_attrs[] = {"stash_type", NULL};

/* start, limit and delta decide the output's length, so all three must be constant scalars. */
static bool range_at_run_time(kl_node *n) {
    return kl_input_at_run_time(n, 0) || kl_input_at_run_time(n, 1) || kl_input_at_run_time(n, 2);
}

static bool range_inputs(kl_node *n, kl_diag *d) {
    static const char *const what[3] = {"start", "limit", "delta"};
    for (int i = 0; i < 3; i++) {
        if (!range_at_run_time(n) && !kl_infer_need_const(n, i, d)) return false;
        if (!kl_infer_need_input(n, i, d)) return false;
        const kl_value *v = n->inputs[i];
        if (kl_shape_numel(&v->shape) != 1)
            return kl_error(d, n, "input %d (%s) must be a scalar", i, what[i]);
        if (v->dtype != n->inputs[0]->dtype)
            return kl_error(d, n, "input %d (%s) is %s but start is %s", i, what[i],
                            kl_dtype_name(v->dtype), kl_dtype_name(n->inputs[0]->dtype));
    }
    return true;
}

/* max(ceil((limit - start) / delta), 0), exactly for integers. */
static bool range_length(kl_node *n, int64_t *len, kl_diag *d) {
    const kl_value *s = n->inputs[0], *l = n->inputs[1], *dl = n->inputs[2];
    if (kl_dtype_is_float(s->dtype)) {
        double delta = kl_value_const_float(dl, 0);
        if (delta == 0) return kl_error(d, n, "delta is 0");
        double count = ceil((kl_value_const_float(l, 0) - kl_value_const_float(s, 0)) / delta);
        if (!(count < (double)INT64_MAX)) return kl_error(d, n, "the range is not finite");
        *len = count > 0 ? (int64_t)count : 0;
        return true;
    }
    int64_t delta = kl_value_const_int(dl, 0), span;
    if (delta == 0) return kl_error(d, n, "delta is 0");
    if (__builtin_sub_overflow(kl_value_const_int(l, 0), kl_value_const_int(s, 0), &span) ||
        (delta == -1 && span == INT64_MIN)) /* INT64_MIN / -1 overflows too */
        return kl_error(d, n, "the range is too long");
    int64_t count = span / delta + (span % delta != 0 && (span < 0) == (delta < 0));
    *len = count > 0 ? count : 0;
    return true;
}

static bool range_infer(kl_node *n, kl_diag *d) {
    int64_t len = 0;
    if (!range_inputs(n, d)) return false;
    if (range_at_run_time(n)) { /* the declared length, checked by range_length_check */
        int at = kl_input_at_run_time(n, 0) ? 0 : kl_input_at_run_time(n, 1) ? 1 : 2;
        n->outputs[0]->dtype = n->inputs[0]->dtype;
        if (!kl_infer_declared(n, at, d)) return false;
        if (n->outputs[0]->shape.rank != 1) return kl_error(d, n, "the declared output must be 1-D");
        return true;
    }
    if (!range_length(n, &len, d)) return false;
    kl_shape out = {.rank = 1, .dim = {len}};
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &out);
}

/* out[i] = start + i * delta, computed in float32 for the half types (stash_type 1, the only
 * precision ONNX Runtime offers) */
/* Input i (a scalar) in the type `work`: its constant, or its value at run time. */
static kl_expr *range_scalar(kl_lower *L, kl_node *n, int i, kl_dtype work) {
    const kl_value *v = n->inputs[i];
    if (v->data) return kl_move_const(L->arena, work, kl_value_const_float(v, 0), kl_value_const_int(v, 0));
    kl_buffer *b = kl_lower_buffer(L, n->inputs[i]);
    kl_expr *idx[KL_MAX_RANK];
    for (int k = 0; k < b->shape.rank; k++) idx[k] = kl_e_idx(L->arena, 0);
    return kl_e_cast(L->arena, work, kl_e_load(L->arena, b, idx));
}

/* The given start, limit and delta make the declared length: max(ceil((limit - start) /
 * delta), 0), in double for floats and exactly for integers, and delta is not 0. */
static void range_length_check(kl_lower *L, kl_node *n) {
    kl_arena *a = L->arena;
    bool is_float = kl_dtype_is_float(n->inputs[0]->dtype);
    kl_dtype w = is_float ? KL_F64 : KL_I64;
    kl_expr *s = range_scalar(L, n, 0, w), *l = range_scalar(L, n, 1, w), *dl = range_scalar(L, n, 2, w);
    kl_expr *zero = is_float ? kl_e_const_f(a, w, 0) : kl_e_idx(a, 0);
    kl_expr *nonzero = kl_e_binary(a, KL_NE, dl, zero);
    kl_expr *span = kl_e_binary(a, KL_SUB, l, s), *count;
    if (is_float) {
        count = kl_e_unary(a, KL_CEIL, kl_e_binary(a, KL_DIV, span, kl_e_select(a, nonzero, dl, kl_e_const_f(a, w, 1))));
    } else {
        kl_expr *safe = kl_e_select(a, nonzero, dl, kl_e_idx(a, 1));
        kl_expr *rest = kl_e_binary(a, KL_NE, kl_e_binary(a, KL_MOD, span, safe), zero);
        kl_expr *same_sign = kl_e_binary(a, KL_EQ, kl_e_binary(a, KL_LT, span, zero),
                                         kl_e_binary(a, KL_LT, safe, zero));
        count = kl_e_add(a, kl_e_binary(a, KL_DIV, span, safe),
                         kl_e_select(a, kl_e_and(a, rest, same_sign), kl_e_idx(a, 1), kl_e_idx(a, 0)));
    }
    count = kl_e_binary(a, KL_MAX, count, zero);
    int64_t len = n->outputs[0]->shape.dim[0];
    kl_expr *want = is_float ? kl_e_const_f(a, w, (double)len) : kl_e_idx(a, len);
    kl_lower_shape_check(L, n, kl_e_and(a, nonzero, kl_e_binary(a, KL_EQ, count, want)));
}

static bool range_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_dtype t = n->outputs[0]->dtype;
    kl_dtype work = t == KL_F16 || t == KL_BF16 ? KL_F32 : t;
    if (range_at_run_time(n)) range_length_check(L, n);
    kl_expr *start = range_scalar(L, n, 0, work);
    kl_expr *delta = range_scalar(L, n, 2, work);
    kl_kernel *k = kl_move_kernel(L, n, "range", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *step = kl_e_binary(a, KL_MUL, kl_e_cast(a, work, kl_e_iv(a, 0)), delta);
    k->value = kl_e_cast(a, t, kl_e_binary(a, KL_ADD, start, step));
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- EyeLike */

static const char *const eye_like_attrs[] = {"dtype", "k", NULL};

static bool eye_like_infer(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    const kl_shape *in = &n->inputs[0]->shape;
    if (in->rank != 2) return kl_error(d, n, "input must be 2-D, not %s", KL_SHAPE_TEXT(in));
    kl_dtype t = (kl_dtype)kl_attr_int(n, "dtype", n->inputs[0]->dtype);
    if (kl_dtype_size(t) == 0 || t == KL_STRING)
        return kl_error(d, n, "element type %s is not supported", kl_dtype_name(t));
    return kl_infer_set(n, 0, t, in);
}

/* out[i, j] = (j == i + k); the input's values are never read, only its shape */
static bool eye_like_lower(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_dtype t = n->outputs[0]->dtype;
    kl_kernel *k = kl_move_kernel(L, n, "eye", kl_lower_buffer(L, n->outputs[0]));
    kl_expr *diagonal = kl_e_binary(a, KL_EQ, kl_e_iv(a, 1),
                                    kl_e_addc(a, kl_e_iv(a, 0), kl_attr_int(n, "k", 0)));
    k->value = kl_e_select(a, diagonal, kl_move_const(a, t, 1.0, 1), kl_move_const(a, t, 0.0, 0));
    kl_move_add_kernel(L, k);
    return true;
}

/* ---------------------------------------------------------------- the family's table */

static const char *const no_attrs[] = {NULL};

const kl_op kl_ops_reshape[] = {
    {"", "Reshape", 1, KL_OPSET_LATEST, reshape_attrs, reshape_infer, reshape_lower, always_view},
    {"", "Flatten", 1, KL_OPSET_LATEST, flatten_attrs, flatten_infer, lower_as_view, always_view},
    {"", "Squeeze", 1, KL_OPSET_LATEST, squeeze_attrs, squeeze_infer, squeeze_lower, always_view},
    {"", "Unsqueeze", 1, KL_OPSET_LATEST, squeeze_attrs, unsqueeze_infer, unsqueeze_lower,
     always_view},
    {"", "Identity", 1, KL_OPSET_LATEST, no_attrs, identity_infer, lower_as_view, always_view},
    {"", "Shape", 1, KL_OPSET_LATEST, shape_attrs, shape_infer, shape_lower},
    {"", "Size", 1, KL_OPSET_LATEST, no_attrs, size_infer, size_lower},
    {"", "Constant", 1, KL_OPSET_LATEST, constant_attrs, constant_infer, constant_lower},
    {"", "ConstantOfShape", 9, KL_OPSET_LATEST, constant_of_shape_attrs,
     constant_of_shape_infer, constant_of_shape_lower},
    {"", "Expand", 8, KL_OPSET_LATEST, no_attrs, expand_infer, expand_lower},
    {"", "Range", 11, KL_OPSET_LATEST, range_attrs, range_infer, range_lower},
    {"", "EyeLike", 9, KL_OPSET_LATEST, eye_like_attrs, eye_like_infer, eye_like_lower},
    {0},
};
