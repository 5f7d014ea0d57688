/*
 * encoders.c — the ai.onnx.ml lookups LabelEncoder (opsets 1-4) and CategoryMapper (opset 1):
 * each element of X is looked up among constant keys and replaced by the value at the same
 * place, or by a default when no key equals it. Keys and values are strings, int64s or floats
 * (opset 4: tensors of any type kiln holds); a string value is a pointer to a constant of the
 * model in read-only data (kiln.h).
 *
 * Both are one mapping (keys, values, default) lowered by one routine: a kernel finds the
 * first matching key's index (a min over the keys, the key count when none matches), a second
 * reads the value there or the default. Float keys match by ==, so a NaN key matches nothing.
 */
#include <string.h>

#include "arith_util.h"

#define ML "ai.onnx.ml"

/* A list of constants of one type: `data` holds `n` elements of kl_dtype_size(dtype). */
typedef struct list {
    kl_dtype dtype;
    int64_t n;
    const void *data;
} list;

typedef struct mapping {
    list keys, values, dflt; /* dflt: one element of the values' type */
} mapping;

/* ---- constants from attributes --------------------------------------------------------- */

static list from_attr(kl_arena *a, const kl_attr *at) {
    list l = {KL_UNDEFINED, 0, NULL};
    if (!at) return l;
    switch (at->type) {
    case KL_ATTR_STRINGS: return (list){KL_STRING, at->n, at->strings};
    case KL_ATTR_INTS: return (list){KL_I64, at->n, at->ints};
    case KL_ATTR_FLOATS: {
        float *f = kl_alloc_array(a, (size_t)at->n + 1, sizeof *f);
        for (int i = 0; i < at->n; i++) f[i] = (float)at->floats[i];
        return (list){KL_F32, at->n, f};
    }
    case KL_ATTR_STRING: return (list){KL_STRING, 1, &at->s};
    case KL_ATTR_INT: return (list){KL_I64, 1, &at->i};
    case KL_ATTR_FLOAT: {
        float *f = kl_alloc(a, sizeof *f);
        *f = (float)at->f;
        return (list){KL_F32, 1, f};
    }
    case KL_ATTR_TENSOR:
        if (at->t && at->t->data)
            return (list){at->t->dtype, kl_shape_numel(&at->t->shape), at->t->data};
        return l;
    default: return l;
    }
}

/* The one of `names` (attributes of the same role, one per type) the node has; NULL if none,
 * a diagnostic if more than one. */
static const kl_attr *one_of(const kl_node *n, const char *const *names, const char *role,
                             bool *twice, kl_diag *d) {
    const kl_attr *found = NULL;
    for (int i = 0; names[i]; i++) {
        const kl_attr *at = kl_attr_find(n, names[i]);
        if (!at) continue;
        if (found) {
            *twice = true;
            kl_error(d, n, "%s given twice: '%s' and '%s'", role, found->name, at->name);
            return NULL;
        }
        found = at;
    }
    return found;
}

/* ONNX's defaults: "_Unused", -1, -0.0 (LabelEncoder), by the values' type. */
static list default_of(kl_arena *a, const kl_node *n, kl_dtype t) {
    static const char *const unused = "_Unused";
    const kl_attr *at = kl_attr_find(n, "default_tensor");
    if (at) return from_attr(a, at);
    if (t == KL_STRING) {
        at = kl_attr_find(n, "default_string");
        return at ? from_attr(a, at) : (list){KL_STRING, 1, &unused};
    }
    if (t == KL_I64) {
        at = kl_attr_find(n, "default_int64");
        if (at) return from_attr(a, at);
        int64_t *v = kl_alloc(a, sizeof *v);
        *v = -1;
        return (list){KL_I64, 1, v};
    }
    at = kl_attr_find(n, "default_float");
    if (at) return from_attr(a, at);
    float *f = kl_alloc(a, sizeof *f);
    *f = -0.0f;
    return (list){KL_F32, 1, f};
}

/* 0, 1, ..., n-1 as int64 (LabelEncoder opset 1 and its classes' indices). */
static list indices(kl_arena *a, int64_t n) {
    int64_t *v = kl_alloc_array(a, (size_t)n + 1, sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = i;
    return (list){KL_I64, n, v};
}

/* LabelEncoder 1: `classes_strings` maps a string to its index, or an int64 to the string at
 * it; the defaults are default_int64 / default_string. */
static bool mapping_v1(kl_arena *a, const kl_node *n, kl_dtype x, mapping *m, kl_diag *d) {
    list classes = from_attr(a, kl_attr_find(n, "classes_strings"));
    if (classes.dtype != KL_STRING)
        return kl_error(d, n, "classes_strings (a list of strings) is required");
    if (x == KL_STRING) *m = (mapping){classes, indices(a, classes.n), default_of(a, n, KL_I64)};
    else *m = (mapping){indices(a, classes.n), classes, default_of(a, n, KL_STRING)};
    return true;
}

static bool mapping_of(kl_arena *a, const kl_node *n, kl_dtype x, mapping *m, kl_diag *d) {
    if (!strcmp(n->op_type, "CategoryMapper")) {
        list strs = from_attr(a, kl_attr_find(n, "cats_strings"));
        list ints = from_attr(a, kl_attr_find(n, "cats_int64s"));
        if (strs.dtype != KL_STRING || ints.dtype != KL_I64 || strs.n != ints.n)
            return kl_error(d, n, "cats_strings and cats_int64s must be lists of one length");
        if (x == KL_STRING) *m = (mapping){strs, ints, default_of(a, n, KL_I64)};
        else *m = (mapping){ints, strs, default_of(a, n, KL_STRING)};
        return true;
    }
    if (n->opset < 2) return mapping_v1(a, n, x, m, d);
    static const char *const keys[] = {"keys_strings", "keys_int64s", "keys_floats",
                                       "keys_tensor", NULL};
    static const char *const values[] = {"values_strings", "values_int64s", "values_floats",
                                         "values_tensor", NULL};
    bool twice = false;
    const kl_attr *k = one_of(n, keys, "keys", &twice, d);
    const kl_attr *v = twice ? NULL : one_of(n, values, "values", &twice, d);
    if (twice) return false;
    if (!k || !v) return kl_error(d, n, "needs one keys_* and one values_* attribute");
    m->keys = from_attr(a, k);
    m->values = from_attr(a, v);
    if (m->keys.dtype == KL_UNDEFINED || m->values.dtype == KL_UNDEFINED)
        return kl_error(d, n, "keys and values must be lists or constant tensors");
    m->dflt = default_of(a, n, m->values.dtype);
    return true;
}

static bool check_mapping(const kl_node *n, kl_dtype x, const mapping *m, kl_diag *d) {
    if (m->keys.n != m->values.n)
        return kl_error(d, n, "%lld keys but %lld values", (long long)m->keys.n,
                        (long long)m->values.n);
    if (m->keys.dtype != x)
        return kl_error(d, n, "input is %s but the keys are %s", kl_dtype_name(x),
                        kl_dtype_name(m->keys.dtype));
    if (m->dflt.n != 1 || m->dflt.dtype != m->values.dtype)
        return kl_error(d, n, "the default must be one %s", kl_dtype_name(m->values.dtype));
    if (!kl_dtype_supported(m->values.dtype) || kl_dtype_is_packed(m->values.dtype) ||
        kl_dtype_is_packed(x))
        return kl_error(d, n, "values of type %s are not supported",
                        kl_dtype_name(m->values.dtype));
    return true;
}

/* ---- inference and lowering ------------------------------------------------------------ */

static const char *const label_encoder_attrs[] = {
    "classes_strings", "default_int64", "default_string", "default_float", "default_tensor",
    "keys_strings", "keys_int64s", "keys_floats", "keys_tensor", "values_strings",
    "values_int64s", "values_floats", "values_tensor", NULL};
static const char *const category_mapper_attrs[] = {"cats_int64s", "cats_strings",
                                                    "default_int64", "default_string", NULL};

static bool infer_encoder(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    kl_arena *a = kl_arena_new();
    mapping m;
    bool ok = mapping_of(a, n, x->dtype, &m, d) && check_mapping(n, x->dtype, &m, d);
    kl_dtype t = m.values.dtype;
    kl_arena_free(a);
    return ok && kl_infer_set(n, 0, t, &x->shape);
}

static kl_buffer *const_list(kl_lower *L, const char *name, const list *l) {
    kl_shape s = {.rank = 1, .dim = {l->n}};
    kl_buffer *b = kl_program_buffer(L->prog, name, KL_BUF_CONST, l->dtype, &s);
    size_t bytes = (size_t)l->n * kl_dtype_size(l->dtype);
    void *copy = kl_alloc(L->arena, bytes ? bytes : 1);
    if (bytes) memcpy(copy, l->data, bytes);
    b->data = copy;
    return b;
}

static kl_expr *equal(kl_arena *a, kl_expr *x, kl_expr *key) {
    if (x->dtype == KL_STRING) return kl_e_string(a, KL_STR_EQ, NULL, x, key);
    return kl_e_binary(a, KL_EQ, x, key);
}

static bool lower_encoder(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    mapping m;
    if (!mapping_of(a, n, x->dtype, &m, d)) return false;
    int rank = x->shape.rank;
    kl_expr *zero[1] = {kl_e_idx(a, 0)};
    kl_expr *dflt = kl_e_load(a, const_list(L, "encoder_default", &m.dflt), zero);
    if (m.keys.n == 0) {
        kl_arith_map(L, n, NULL, y, dflt);
        return true;
    }
    kl_buffer *keys = const_list(L, "encoder_keys", &m.keys);
    kl_buffer *values = const_list(L, "encoder_values", &m.values);
    /* found = the first j with keys[j] == x, or the key count */
    kl_buffer *found = kl_lower_temp(L, "encoder_match", KL_I64, &x->shape);
    kl_kernel *k = kl_kernel_new(L->prog, n, "encoder_match");
    k->n_par = rank;
    k->n_loops = rank + 1;
    for (int i = 0; i < rank; i++) k->extent[i] = x->shape.dim[i];
    k->extent[rank] = m.keys.n;
    k->reduce = KL_RED_MIN;
    k->acc_dtype = KL_I64;
    k->init = kl_e_idx(a, m.keys.n);
    kl_expr *j[1] = {kl_e_iv(a, rank)};
    kl_expr *hit = equal(a, kl_e_load(a, x, kl_lower_ivs(L, rank)), kl_e_load(a, keys, j));
    k->value = kl_e_select(a, hit, kl_e_iv(a, rank), kl_e_idx(a, m.keys.n));
    k->out = found;
    k->out_idx = kl_lower_ivs(L, rank);
    kl_program_add_kernel(L->prog, k);
    kl_expr *at = kl_e_load(a, found, kl_lower_ivs(L, rank));
    kl_expr *clamped[1] = {kl_e_binary(a, KL_MIN, at, kl_e_idx(a, m.keys.n - 1))};
    kl_expr *hit_any = kl_e_binary(a, KL_LT, at, kl_e_idx(a, m.keys.n));
    kl_arith_map(L, n, NULL, y, kl_e_select(a, hit_any, kl_e_load(a, values, clamped), dflt));
    return true;
}

const kl_op kl_ops_encoders[] = {
    {ML, "LabelEncoder", 1, KL_ML_OPSET_LATEST, label_encoder_attrs, infer_encoder, lower_encoder},
    {ML, "CategoryMapper", 1, KL_ML_OPSET_LATEST, category_mapper_attrs, infer_encoder, lower_encoder},
    {0},
};
