/*
 * graph.c — construction of the graph IR and the small queries every pass and operator uses
 * (attribute lookups, optional inputs, reading constant tensors).
 */
#include <string.h>

#include "kl.h"

kl_graph *kl_graph_new(kl_arena *a, const char *file) {
    kl_graph *g = kl_alloc(a, sizeof *g);
    g->arena = a;
    g->file = kl_strdup(a, file);
    return g;
}

kl_value *kl_value_new(kl_graph *g, const char *name) {
    kl_value *v = kl_alloc(g->arena, sizeof *v);
    v->name = kl_strdup(g->arena, name ? name : "");
    v->input_index = -1;
    v->output_index = -1;
    v->id = g->values.n;
    kl_ptrvec_push(g->arena, &g->values, v);
    return v;
}

kl_node *kl_node_new(kl_graph *g, const char *op_type, const char *domain, int opset) {
    kl_node *n = kl_alloc(g->arena, sizeof *n);
    n->op_type = kl_strdup(g->arena, op_type);
    n->domain = kl_strdup(g->arena, domain ? domain : "");
    n->opset = opset;
    n->id = g->nodes.n;
    n->name = kl_sprintf(g->arena, "%s_%d", op_type, n->id);
    kl_ptrvec_push(g->arena, &g->nodes, n);
    return n;
}

const kl_attr *kl_attr_find(const kl_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t kl_attr_int(const kl_node *n, const char *name, int64_t def) {
    const kl_attr *a = kl_attr_find(n, name);
    return a && a->type == KL_ATTR_INT ? a->i : def;
}

double kl_attr_float(const kl_node *n, const char *name, double def) {
    const kl_attr *a = kl_attr_find(n, name);
    if (!a) return def;
    if (a->type == KL_ATTR_FLOAT) return a->f;
    if (a->type == KL_ATTR_INT) return (double)a->i;
    return def;
}

const char *kl_attr_string(const kl_node *n, const char *name, const char *def) {
    const kl_attr *a = kl_attr_find(n, name);
    return a && a->type == KL_ATTR_STRING ? a->s : def;
}

int kl_attr_ints(const kl_node *n, const char *name, const int64_t **out) {
    const kl_attr *a = kl_attr_find(n, name);
    if (!a || a->type != KL_ATTR_INTS) return -1;
    *out = a->ints;
    return a->n;
}

kl_value *kl_node_input(const kl_node *n, int i) {
    return i >= 0 && i < n->n_inputs ? n->inputs[i] : NULL;
}

kl_value *kl_node_output(const kl_node *n, int i) {
    return i >= 0 && i < n->n_outputs ? n->outputs[i] : NULL;
}

size_t kl_value_bytes(const kl_value *v) {
    return (size_t)kl_shape_numel(&v->shape) * kl_dtype_size(v->dtype);
}

int64_t kl_value_const_int(const kl_value *v, int64_t i) {
    const void *p = v->data;
    switch (v->dtype) {
    case KL_I64: return ((const int64_t *)p)[i];
    case KL_I32: return ((const int32_t *)p)[i];
    case KL_I16: return ((const int16_t *)p)[i];
    case KL_I8: return ((const int8_t *)p)[i];
    case KL_U64: return (int64_t)((const uint64_t *)p)[i];
    case KL_U32: return ((const uint32_t *)p)[i];
    case KL_U16: return ((const uint16_t *)p)[i];
    case KL_U8: case KL_BOOL: return ((const uint8_t *)p)[i];
    /* a float read as an integer: NaN and values past int64 must not reach a plain cast
       (undefined); saturated instead, the callers treat such values as out of range */
    case KL_F32: return kl_index_from_double(((const float *)p)[i]);
    case KL_F64: return kl_index_from_double(((const double *)p)[i]);
    case KL_F16: case KL_BF16: return kl_index_from_double(kl_value_const_float(v, i));
    default: return 0;
    }
}

double kl_value_const_float(const kl_value *v, int64_t i) {
    switch (v->dtype) {
    case KL_F32: return ((const float *)v->data)[i];
    case KL_F64: return ((const double *)v->data)[i];
    case KL_U64: return (double)((const uint64_t *)v->data)[i];
    case KL_F16: return kl_f16_to_f32(((const uint16_t *)v->data)[i]);
    case KL_BF16: return kl_bf16_to_f32(((const uint16_t *)v->data)[i]);
    default: return (double)kl_value_const_int(v, i);
    }
}

bool kl_node_reads_shape_only(const kl_node *n) {
    return !*n->domain && (!strcmp(n->op_type, "Shape") || !strcmp(n->op_type, "Size"));
}

bool kl_guard_broken(const kl_guard *g) {
    for (; g; g = g->outer)
        if (g->broken) return true;
    return false;
}

int kl_guard_state(const kl_guard *g) {
    int state = 1;
    for (; g; g = g->outer) {
        if (!g->cond || !g->cond->data || kl_shape_numel(&g->cond->shape) != 1) {
            state = 0; /* decided at run time, unless another level fails for sure */
            continue;
        }
        if ((kl_value_const_int(g->cond, 0) != 0) != g->when) return -1;
    }
    return state;
}
