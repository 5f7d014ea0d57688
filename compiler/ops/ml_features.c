/*
 * ml_features.c — feature preprocessing of the ai.onnx.ml domain (opset 1), as ONNX Runtime
 * computes it: Scaler, Normalizer, Imputer, FeatureVectorizer, OneHotEncoder.
 *
 * Scaler: Y = (X - offset) * scale in float, offset and scale one value or one per feature (the
 * last axis). Normalizer: each row divided by its maximum (not its largest magnitude), its L1
 * or its L2 norm. Imputer: elements equal to the replaced value (NaN matches NaN) become the
 * imputed value of their feature (column of a 2-D X) or the one value; X keeps its type.
 * FeatureVectorizer: the inputs' rows (one element type for all), each flattened and cut or
 * zero-padded to its inputdimensions entry, side by side in one float row.
 * OneHotEncoder: Y has X's shape plus one axis of len(cats_int64s): Y[..., k] = 1 where X's element is
 * category k, else 0. As in ONNX Runtime, a float or double element is truncated toward zero
 * before the comparison (2.7 is category 2). With zeros = 0 an element of no category is an
 * error: predict returns KILN_E_INDEX_OUT_OF_RANGE (a check kernel sets the flag, as Gather's
 * index checks do), where ONNX Runtime fails the run. cats_strings needs string tensors, which
 * kiln does not hold yet.
 */
#include <string.h>

#include "kiln.h"
#include "ml_util.h"

#define ML KL_ML_DOMAIN

/* ---- Scaler: Y = (X - offset) * scale, per feature (the last axis) or one for all ---- */

static const char *const scaler_attrs[] = {"offset", "scale", NULL};

static bool scaler_table(kl_node *n, const char *name, const double **v, int *count, kl_diag *d) {
    *count = kl_ml_floats_attr(n, name, v);
    int64_t c = n->inputs[0]->shape.rank ? kl_ml_features(n->inputs[0]) : 1;
    if (*v && *count != 1 && *count != c)
        return kl_error(d, n, "%s has %d values: one, or one per feature (%lld)", name, *count,
                        (long long)c);
    return true;
}

static bool infer_scaler(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_dtype t = n->inputs[0]->dtype;
    if (!kl_dtype_is_float(t) && t != KL_I32 && t != KL_I64)
        return kl_error(d, n, "X must be float, double, int32 or int64, not %s", kl_dtype_name(t));
    const double *v;
    int count;
    if (!scaler_table(n, "offset", &v, &count, d) || !scaler_table(n, "scale", &v, &count, d))
        return false;
    return kl_infer_set(n, 0, KL_F32, &n->inputs[0]->shape);
}

/* offset or scale at the feature of the output element (absent: `none`). */
static kl_expr *per_feature(kl_lower *L, const kl_node *n, const char *name, double none) {
    kl_arena *a = L->arena;
    const double *v;
    int count = kl_ml_floats_attr(n, name, &v);
    if (!v) return kl_e_const_f(a, KL_F32, none);
    if (count == 1) return kl_e_const_f(a, KL_F32, (float)v[0]);
    kl_buffer *b = kl_ml_const_floats(L, n, name, v, count, (kl_shape){.rank = 1, .dim = {count}});
    kl_expr *f = kl_e_iv(a, n->inputs[0]->shape.rank - 1);
    return kl_e_load(a, b, &f);
}

static bool lower_scaler(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    kl_expr *v = kl_e_cast(a, KL_F32, kl_e_load(a, x, kl_lower_ivs(L, x->shape.rank)));
    kl_expr *shifted = kl_e_binary(a, KL_SUB, v, per_feature(L, n, "offset", 0));
    kl_arith_map(L, n, NULL, y, kl_e_binary(a, KL_MUL, shifted, per_feature(L, n, "scale", 1)));
    return true;
}

/* ---- Normalizer: each row divided by its max, L1 or L2 norm ---- */

static const char *const normalizer_attrs[] = {"norm", NULL};

typedef enum norm_kind { NORM_MAX, NORM_L1, NORM_L2 } norm_kind;

static bool parse_norm(kl_node *n, norm_kind *k, kl_diag *d) {
    const char *s = kl_attr_string(n, "norm", "MAX");
    if (!strcmp(s, "MAX")) *k = NORM_MAX;
    else if (!strcmp(s, "L1")) *k = NORM_L1;
    else if (!strcmp(s, "L2")) *k = NORM_L2;
    else return kl_error(d, n, "norm '%s' is not MAX, L1 or L2", s);
    return true;
}

static bool infer_normalizer(kl_node *n, kl_diag *d) {
    norm_kind k;
    if (!kl_ml_need_features(n, d) || !parse_norm(n, &k, d)) return false;
    return kl_infer_set(n, 0, KL_F32, &n->inputs[0]->shape);
}

static bool lower_normalizer(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    norm_kind kind;
    if (!parse_norm(n, &kind, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    int rank = x->shape.rank;
    bool reduced[KL_MAX_RANK] = {0};
    reduced[rank - 1] = true;
    kl_shape ns = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *norm = kl_lower_temp(L, "norm", KL_F32, &ns);
    kl_kernel *k = kl_arith_reduce(L, n, "norm", x, reduced, norm,
                                   kind == NORM_MAX ? KL_RED_MAX : KL_RED_SUM);
    kl_expr *v = kl_e_cast(a, KL_F32, k->value);
    k->value = kind == NORM_MAX ? v : kind == NORM_L1 ? kl_e_unary(a, KL_ABS, v)
                                                       : kl_e_binary(a, KL_MUL, v, v);
    k->acc_dtype = KL_F32;
    if (kind == NORM_L2) k->result = kl_e_unary(a, KL_SQRT, kl_e_acc(a, KL_F32));
    kl_program_add_kernel(L->prog, k);
    kl_expr *xv = kl_e_cast(a, KL_F32, kl_e_load(a, x, kl_lower_ivs(L, rank)));
    kl_arith_map(L, n, NULL, y, kl_e_binary(a, KL_DIV, xv, kl_lower_load_broadcast(L, norm, rank)));
    return true;
}


static const char *const one_hot_encoder_attrs[] = {"cats_int64s", "cats_strings", "zeros", NULL};

static bool infer_one_hot_encoder(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    if (!kl_dtype_is_float(x->dtype) && x->dtype != KL_I32 && x->dtype != KL_I64)
        return kl_error(d, n, "X must be int64, int32, float or double, not %s",
                        kl_dtype_name(x->dtype));
    if (kl_attr_find(n, "cats_strings"))
        return kl_error(d, n, "cats_strings: string categories need string tensors, which kiln "
                        "does not support yet (use cats_int64s)");
    const int64_t *cats;
    int k = kl_attr_ints(n, "cats_int64s", &cats);
    if (k < 1) return kl_error(d, n, "cats_int64s is missing or empty");
    if (x->shape.rank >= KL_MAX_RANK)
        return kl_error(d, n, "X has rank %d; Y would need rank %d", x->shape.rank,
                        x->shape.rank + 1);
    kl_shape s = x->shape;
    s.dim[s.rank++] = k;
    return kl_infer_set(n, 0, KL_F32, &s);
}

/* X's element, compared as ONNX Runtime does: integers as they are, floats truncated. */
static kl_expr *category_key(kl_arena *a, kl_expr *x) {
    if (!kl_dtype_is_float(x->dtype)) return kl_e_cast(a, KL_I64, x);
    kl_expr *v = kl_e_cast(a, KL_F64, x);
    kl_expr *neg = kl_e_binary(a, KL_LT, v, kl_e_const_f(a, KL_F64, 0));
    return kl_e_select(a, neg, kl_e_unary(a, KL_CEIL, v), kl_e_unary(a, KL_FLOOR, v));
}

static kl_expr *category_value(kl_arena *a, const kl_expr *key, kl_expr *cat) {
    return key->dtype == KL_F64 ? kl_e_cast(a, KL_F64, cat) : cat;
}

/* 1 where X's element (loops 0..rank-1) is category `loop rank` of the table, else 0. */
static kl_expr *is_category(kl_lower *L, kl_buffer *x, kl_buffer *cats, kl_dtype t) {
    kl_arena *a = L->arena;
    int rank = x->shape.rank;
    kl_expr *key = category_key(a, kl_e_load(a, x, kl_lower_ivs(L, rank)));
    kl_expr *ci = kl_e_iv(a, rank);
    kl_expr *hit = kl_e_binary(a, KL_EQ, key, category_value(a, key, kl_e_load(a, cats, &ci)));
    return kl_e_select(a, hit, kl_arith_const(a, t, 1), kl_arith_const(a, t, 0));
}

/* With zeros = 0: the number of categories each element matches, then a flag set when some
 * element matches none, which makes predict return KILN_E_INDEX_OUT_OF_RANGE. */
static void no_category_check(kl_lower *L, const kl_node *n, kl_buffer *x, kl_buffer *cats) {
    kl_arena *a = L->arena;
    int rank = x->shape.rank;
    kl_buffer *matches = kl_lower_temp(L, "matches", KL_I32, &x->shape);
    kl_kernel *m = kl_kernel_new(L->prog, n, "matches");
    m->n_par = rank;
    m->n_loops = rank + 1;
    for (int i = 0; i < rank; i++) m->extent[i] = x->shape.dim[i];
    m->extent[rank] = cats->shape.dim[0];
    m->out = matches;
    m->out_idx = kl_lower_ivs(L, rank);
    m->reduce = KL_RED_SUM;
    m->acc_dtype = KL_I32;
    m->value = is_category(L, x, cats, KL_I32);
    kl_program_add_kernel(L->prog, m);

    kl_shape scalar = {.rank = 0};
    kl_kernel *c = kl_kernel_new(L->prog, n, "no_category");
    c->n_par = 0;
    c->n_loops = rank;
    for (int i = 0; i < rank; i++) c->extent[i] = x->shape.dim[i];
    c->reduce = KL_RED_MAX;
    c->acc_dtype = KL_I32;
    c->init = kl_e_const_i(a, KL_I32, 0);
    kl_expr *none = kl_e_binary(a, KL_EQ, kl_e_load(a, matches, kl_lower_ivs(L, rank)),
                                kl_e_const_i(a, KL_I32, 0));
    c->value = kl_e_select(a, none, kl_e_const_i(a, KL_I32, 1), kl_e_const_i(a, KL_I32, 0));
    c->out = kl_lower_temp(L, "no_category", KL_I32, &scalar);
    c->out_idx = kl_lower_ivs(L, 0);
    c->error_code = KILN_E_INDEX_OUT_OF_RANGE;
    kl_program_add_kernel(L->prog, c);
}

static bool lower_one_hot_encoder(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    const int64_t *cat_values;
    int k = kl_attr_ints(n, "cats_int64s", &cat_values);
    int64_t *data = kl_alloc_array(a, (size_t)k, sizeof *data);
    for (int i = 0; i < k; i++) data[i] = cat_values[i];
    kl_shape cs = {.rank = 1, .dim = {k}};
    kl_buffer *cats = kl_program_buffer(L->prog, kl_sprintf(a, "%s_cats", n->name), KL_BUF_CONST,
                                        KL_I64, &cs);
    cats->data = cats->host = data;
    if (kl_attr_int(n, "zeros", 1) == 0) no_category_check(L, n, x, cats);
    kl_arith_map(L, n, NULL, y, is_category(L, x, cats, KL_F32));
    return true;
}

/* ---- Imputer ---- */

static const char *const imputer_attrs[] = {"imputed_value_floats", "imputed_value_int64s",
                                            "replaced_value_float", "replaced_value_int64", NULL};

/* The imputed values, as doubles, and their count; false (with a diagnostic) unless exactly
 * one list of X's kind is given. */
static bool imputed_values(kl_node *n, const double **floats, const int64_t **ints, int *count,
                           kl_diag *d) {
    int nf = kl_ml_floats_attr(n, "imputed_value_floats", floats);
    int ni = kl_attr_ints(n, "imputed_value_int64s", ints);
    if (ni < 0) ni = 0;
    if ((nf > 0) == (ni > 0))
        return kl_error(d, n, "give exactly one of imputed_value_floats and imputed_value_int64s");
    bool is_float = kl_dtype_is_float(n->inputs[0]->dtype);
    if (is_float != (nf > 0))
        return kl_error(d, n, "X is %s: the imputed values must be %s",
                        kl_dtype_name(n->inputs[0]->dtype),
                        is_float ? "imputed_value_floats" : "imputed_value_int64s");
    *count = nf > 0 ? nf : ni;
    return true;
}

static bool infer_imputer(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    if (x->dtype != KL_F32 && x->dtype != KL_F64 && x->dtype != KL_I32 && x->dtype != KL_I64)
        return kl_error(d, n, "X must be float, double, int32 or int64, not %s",
                        kl_dtype_name(x->dtype));
    if (x->shape.rank < 1 || x->shape.rank > 2)
        return kl_error(d, n, "X must be [N, F] or [F], not rank %d", x->shape.rank);
    const double *f;
    const int64_t *i;
    int count;
    if (!imputed_values(n, &f, &i, &count, d)) return false;
    return kl_infer_same_as_input(n, d);
}

static bool lower_imputer(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    const double *f;
    const int64_t *iv;
    int count;
    if (!imputed_values(n, &f, &iv, &count, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    int rank = x->shape.rank;
    kl_dtype t = x->dtype;
    int64_t features = x->shape.dim[rank - 1];
    kl_expr *value;
    if (count == features && count > 1) { /* one per feature */
        kl_shape s = {.rank = 1, .dim = {count}};
        kl_buffer *table = kl_program_buffer(L->prog, kl_sprintf(a, "%s_imputed", n->name),
                                             KL_BUF_CONST, t, &s);
        void *data = kl_alloc_array(a, (size_t)count, kl_dtype_size(t));
        for (int k = 0; k < count; k++) {
            if (t == KL_F32) ((float *)data)[k] = (float)f[k];
            else if (t == KL_F64) ((double *)data)[k] = f[k];
            else if (t == KL_I32) ((int32_t *)data)[k] = (int32_t)iv[k];
            else ((int64_t *)data)[k] = iv[k];
        }
        table->data = table->host = data;
        kl_expr *col = kl_e_iv(a, rank - 1);
        value = kl_e_load(a, table, &col);
    } else {
        value = f ? kl_e_const_f(a, t, f[0]) : kl_e_const_i(a, t, iv[0]);
    }
    kl_expr *xv = kl_e_load(a, x, kl_lower_ivs(L, rank));
    kl_expr *hit;
    if (f) {
        double r = kl_attr_float(n, "replaced_value_float", 0);
        hit = r != r ? kl_e_binary(a, KL_NE, xv, xv) /* NaN matches NaN */
                     : kl_e_binary(a, KL_EQ, xv, kl_e_const_f(a, t, r));
    } else {
        hit = kl_e_binary(a, KL_EQ, xv,
                          kl_e_const_i(a, t, kl_attr_int(n, "replaced_value_int64", 0)));
    }
    kl_arith_map(L, n, NULL, y, kl_e_select(a, hit, value, kl_e_load(a, x, kl_lower_ivs(L, rank))));
    return true;
}

/* ---- FeatureVectorizer ---- */

static const char *const vectorizer_attrs[] = {"inputdimensions", NULL};

static int64_t row_size(const kl_value *v) {
    int64_t s = 1;
    for (int i = v->shape.rank == 1 ? 0 : 1; i < v->shape.rank; i++) s *= v->shape.dim[i];
    return s;
}

static bool infer_vectorizer(kl_node *n, kl_diag *d) {
    const int64_t *dims;
    int nd = kl_attr_ints(n, "inputdimensions", &dims);
    if (nd != n->n_inputs)
        return kl_error(d, n, "inputdimensions has %d entries for %d inputs", nd < 0 ? 0 : nd,
                        n->n_inputs);
    int64_t total = 0, rows = -1;
    for (int i = 0; i < n->n_inputs; i++) {
        if (!kl_arith_need_input(n, i, d)) return false;
        kl_value *x = n->inputs[i];
        if (x->dtype != KL_F32 && x->dtype != KL_F64 && x->dtype != KL_I32 && x->dtype != KL_I64)
            return kl_error(d, n, "input %d must be float, double, int32 or int64, not %s", i,
                            kl_dtype_name(x->dtype));
        if (x->dtype != n->inputs[0]->dtype)
            return kl_error(d, n, "input %d is %s but input 0 is %s: the inputs share one type",
                            i, kl_dtype_name(x->dtype), kl_dtype_name(n->inputs[0]->dtype));
        if (x->shape.rank < 1) return kl_error(d, n, "input %d is a scalar", i);
        int64_t r = x->shape.rank == 1 ? 1 : x->shape.dim[0];
        if (rows >= 0 && r != rows)
            return kl_error(d, n, "input %d has %lld rows, input 0 has %lld", i, (long long)r,
                            (long long)rows);
        rows = r;
        if (dims[i] < 0 || dims[i] > KL_MAX_BYTES)
            return kl_error(d, n, "inputdimensions[%d] = %lld is out of range", i,
                            (long long)dims[i]);
        total += dims[i];
    }
    kl_shape s = {.rank = 2, .dim = {rows, total}};
    return kl_infer_set(n, 0, KL_F32, &s);
}

/* Column j of X's flattened row r (loops 0 and 1), for j < size. */
static kl_expr *flat_element(kl_arena *a, kl_buffer *x, int64_t size) {
    kl_expr *j = kl_e_binary(a, KL_MIN, kl_e_iv(a, 1), kl_e_idx(a, size - 1)), *idx[KL_MAX_RANK];
    int first = x->shape.rank == 1 ? 0 : 1;
    if (first) idx[0] = kl_e_iv(a, 0);
    int64_t stride = 1;
    for (int dd = x->shape.rank - 1; dd >= first; dd--) {
        kl_expr *q = stride > 1 ? kl_e_binary(a, KL_DIV, j, kl_e_idx(a, stride)) : j;
        idx[dd] = dd > first ? kl_e_binary(a, KL_MOD, q, kl_e_idx(a, x->shape.dim[dd])) : q;
        stride *= x->shape.dim[dd];
    }
    return kl_e_cast(a, KL_F32, kl_e_load(a, x, idx));
}

/* Y[r, offset + j] = X's flattened row r at j, for j below the row's size, else 0. */
static void vectorize_input(kl_lower *L, const kl_node *n, kl_value *xv, int64_t width,
                            int64_t offset, kl_buffer *y) {
    kl_arena *a = L->arena;
    int64_t size = row_size(xv);
    kl_kernel *k = kl_kernel_new(L->prog, n, "vectorize");
    k->n_loops = k->n_par = 2;
    k->extent[0] = y->shape.dim[0];
    k->extent[1] = width;
    k->out = y;
    k->out_idx = kl_alloc_array(a, 2, sizeof *k->out_idx);
    k->out_idx[0] = kl_e_iv(a, 0);
    k->out_idx[1] = kl_e_addc(a, kl_e_iv(a, 1), offset);
    kl_expr *zero = kl_e_const_f(a, KL_F32, 0);
    if (size == 0) {
        k->value = zero;
    } else {
        kl_expr *v = flat_element(a, kl_lower_buffer(L, xv), size);
        k->value = width > size
                       ? kl_e_select(a, kl_e_binary(a, KL_LT, kl_e_iv(a, 1), kl_e_idx(a, size)), v,
                                     zero)
                       : v;
    }
    kl_program_add_kernel(L->prog, k);
}

static bool lower_vectorizer(kl_lower *L, kl_node *n, kl_diag *d) {
    const int64_t *dims;
    kl_attr_ints(n, "inputdimensions", &dims);
    kl_buffer *y = kl_lower_buffer(L, n->outputs[0]);
    int64_t offset = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        if (dims[i] > 0 && y->shape.dim[0] > 0)
            vectorize_input(L, n, n->inputs[i], dims[i], offset, y);
        offset += dims[i];
    }
    return true;
}

const kl_op kl_ops_ml_features[] = {
    {ML, "Scaler", 1, KL_ML_OPSET_LATEST, scaler_attrs, infer_scaler, lower_scaler},
    {ML, "Normalizer", 1, KL_ML_OPSET_LATEST, normalizer_attrs, infer_normalizer, lower_normalizer},
    {ML, "Imputer", 1, KL_ML_OPSET_LATEST, imputer_attrs, infer_imputer, lower_imputer},
    {ML, "FeatureVectorizer", 1, KL_ML_OPSET_LATEST, vectorizer_attrs, infer_vectorizer, lower_vectorizer},
    {ML, "OneHotEncoder", 1, KL_ML_OPSET_LATEST, one_hot_encoder_attrs, infer_one_hot_encoder,
     lower_one_hot_encoder},
    {0},
};
