/*
 * model_builder.c — builds ONNX ModelProto messages with protobuf-c for tests.
 *
 * Every allocation goes into one pool owned by the model, so a test never frees piecewise.
 * Repeated fields grow by copying into a fresh pool array: models in tests are tiny, and the
 * simplicity beats a realloc scheme that would have to track which arrays moved.
 */
#include "model_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mb_model {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    void **pool;
    size_t n_pool, cap_pool;
};

/* ---- pool ----------------------------------------------------------------------------- */

static void *pool_alloc(mb_model *m, size_t bytes)
{
    if (m->n_pool == m->cap_pool) {
        m->cap_pool = m->cap_pool ? m->cap_pool * 2 : 64;
        m->pool = realloc(m->pool, m->cap_pool * sizeof *m->pool);
        if (!m->pool)
            abort(); /* test helper: out of memory is not a test outcome */
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p)
        abort();
    m->pool[m->n_pool++] = p;
    return p;
}

static char *pool_str(mb_model *m, const char *s)
{
    if (!s)
        return NULL;
    char *c = pool_alloc(m, strlen(s) + 1);
    memcpy(c, s, strlen(s) + 1);
    return c;
}

/* Append to a repeated field of pointers. */
#define PUSH(m, arr, n, item) \
    ((arr) = push_ptr((m), (void **)(arr), &(n), (item), sizeof *(arr)))

static void *push_ptr(mb_model *m, void **arr, size_t *n, void *item, size_t elem)
{
    void **grown = pool_alloc(m, (*n + 1) * elem);
    if (*n)
        memcpy(grown, arr, *n * elem);
    grown[(*n)++] = item;
    return grown;
}

/* Split "a,b,,c" into pool strings ("" for empty entries). */
static char **split_list(mb_model *m, const char *text, size_t *count)
{
    *count = 0;
    if (!text || !*text)
        return NULL;
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    char **items = pool_alloc(m, n * sizeof *items);
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        items[i] = pool_alloc(m, len + 1);
        memcpy(items[i], p, len);
        p += len + (end ? 1 : 0);
    }
    *count = n;
    return items;
}

/* ---- model ---------------------------------------------------------------------------- */

mb_model *mb_new(int64_t opset)
{
    mb_model *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    onnx__model_proto__init(&m->model);
    onnx__graph_proto__init(&m->graph);
    m->model.has_ir_version = 1;
    m->model.ir_version = 8;
    m->model.graph = &m->graph;
    m->graph.name = pool_str(m, "test_graph");
    mb_opset(m, "", opset);
    return m;
}

void mb_free(mb_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_pool; i++)
        free(m->pool[i]);
    free(m->pool);
    free(m);
}

void mb_opset(mb_model *m, const char *domain, int64_t version)
{
    Onnx__OperatorSetIdProto *o = pool_alloc(m, sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = pool_str(m, domain);
    o->has_version = 1;
    o->version = version;
    PUSH(m, m->model.opset_import, m->model.n_opset_import, o);
}

void mb_producer(mb_model *m, const char *name, const char *version)
{
    m->model.producer_name = pool_str(m, name);
    m->model.producer_version = pool_str(m, version);
}

void mb_doc(mb_model *m, const char *doc_string) { m->model.doc_string = pool_str(m, doc_string); }

void mb_metadata(mb_model *m, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = pool_alloc(m, sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = pool_str(m, key);
    e->value = pool_str(m, value);
    PUSH(m, m->model.metadata_props, m->model.n_metadata_props, e);
}

/* ---- types ---------------------------------------------------------------------------- */

static Onnx__TensorShapeProto *shape_proto(mb_model *m, const char *dims)
{
    Onnx__TensorShapeProto *s = pool_alloc(m, sizeof *s);
    onnx__tensor_shape_proto__init(s);
    size_t n;
    char **items = split_list(m, dims, &n);
    for (size_t i = 0; i < n; i++) {
        Onnx__TensorShapeProto__Dimension *d = pool_alloc(m, sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        char *end;
        long long v = strtoll(items[i], &end, 10);
        if (*items[i] && !*end) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = v;
        } else if (strcmp(items[i], "?") != 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = items[i];
        }
        PUSH(m, s->dim, s->n_dim, d);
    }
    return s;
}

static Onnx__ValueInfoProto *tensor_value_info(mb_model *m, const char *name, int elem_type,
                                               const char *dims)
{
    Onnx__TypeProto__Tensor *tt = pool_alloc(m, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    tt->shape = dims ? shape_proto(m, dims) : NULL;
    Onnx__TypeProto *tp = pool_alloc(m, sizeof *tp);
    onnx__type_proto__init(tp);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    Onnx__ValueInfoProto *vi = pool_alloc(m, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = pool_str(m, name);
    vi->type = tp;
    return vi;
}

void mb_input(mb_model *m, const char *name, int elem_type, const char *dims)
{
    PUSH(m, m->graph.input, m->graph.n_input, tensor_value_info(m, name, elem_type, dims));
}

void mb_output(mb_model *m, const char *name, int elem_type, const char *dims)
{
    PUSH(m, m->graph.output, m->graph.n_output, tensor_value_info(m, name, elem_type, dims));
}

void mb_value_info(mb_model *m, const char *name, int elem_type, const char *dims)
{
    PUSH(m, m->graph.value_info, m->graph.n_value_info,
         tensor_value_info(m, name, elem_type, dims));
}

void mb_input_sequence(mb_model *m, const char *name, int elem_type)
{
    Onnx__ValueInfoProto *elem = tensor_value_info(m, "", elem_type, NULL);
    Onnx__TypeProto__Sequence *seq = pool_alloc(m, sizeof *seq);
    onnx__type_proto__sequence__init(seq);
    seq->elem_type = elem->type;
    Onnx__TypeProto *tp = pool_alloc(m, sizeof *tp);
    onnx__type_proto__init(tp);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    tp->sequence_type = seq;
    Onnx__ValueInfoProto *vi = pool_alloc(m, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = pool_str(m, name);
    vi->type = tp;
    PUSH(m, m->graph.input, m->graph.n_input, vi);
}

/* ---- tensors -------------------------------------------------------------------------- */

mb_tensor *mb_tensor_new(mb_model *m, const char *name, int elem_type, const char *dims)
{
    mb_tensor *t = pool_alloc(m, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = pool_str(m, name);
    t->has_data_type = 1;
    t->data_type = elem_type;
    size_t n;
    char **items = split_list(m, dims, &n);
    t->n_dims = n;
    t->dims = pool_alloc(m, (n ? n : 1) * sizeof *t->dims);
    for (size_t i = 0; i < n; i++)
        t->dims[i] = strtoll(items[i], NULL, 10);
    return t;
}

void mb_tensor_floats(mb_model *m, mb_tensor *t, size_t n, const float *v)
{
    t->n_float_data = n;
    t->float_data = pool_alloc(m, n * sizeof *v);
    memcpy(t->float_data, v, n * sizeof *v);
}

void mb_tensor_int64s(mb_model *m, mb_tensor *t, size_t n, const int64_t *v)
{
    t->n_int64_data = n;
    t->int64_data = pool_alloc(m, n * sizeof *v);
    memcpy(t->int64_data, v, n * sizeof *v);
}

void mb_tensor_int32s(mb_model *m, mb_tensor *t, size_t n, const int32_t *v)
{
    t->n_int32_data = n;
    t->int32_data = pool_alloc(m, n * sizeof *v);
    memcpy(t->int32_data, v, n * sizeof *v);
}

void mb_tensor_strings(mb_model *m, mb_tensor *t, size_t n, const char *const *v,
                       const size_t *lens)
{
    t->n_string_data = n;
    t->string_data = pool_alloc(m, (n ? n : 1) * sizeof *t->string_data);
    for (size_t i = 0; i < n; i++) {
        t->string_data[i].len = lens[i];
        t->string_data[i].data = pool_alloc(m, lens[i] + 1);
        memcpy(t->string_data[i].data, v[i], lens[i]);
    }
}

void mb_tensor_raw(mb_model *m, mb_tensor *t, const void *bytes, size_t len)
{
    t->has_raw_data = 1;
    t->raw_data.len = len;
    t->raw_data.data = pool_alloc(m, len);
    memcpy(t->raw_data.data, bytes, len);
}

static void external_key(mb_model *m, mb_tensor *t, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = pool_alloc(m, sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = pool_str(m, key);
    e->value = pool_str(m, value);
    PUSH(m, t->external_data, t->n_external_data, e);
}

void mb_tensor_external(mb_model *m, mb_tensor *t, const char *location, int64_t offset,
                        int64_t length)
{
    char num[32];
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    external_key(m, t, "location", location);
    if (offset >= 0) {
        snprintf(num, sizeof num, "%lld", (long long)offset);
        external_key(m, t, "offset", num);
    }
    if (length >= 0) {
        snprintf(num, sizeof num, "%lld", (long long)length);
        external_key(m, t, "length", num);
    }
}

void mb_initializer(mb_model *m, mb_tensor *t)
{
    PUSH(m, m->graph.initializer, m->graph.n_initializer, t);
}

void mb_sparse_initializer(mb_model *m, const char *name)
{
    Onnx__SparseTensorProto *s = pool_alloc(m, sizeof *s);
    onnx__sparse_tensor_proto__init(s);
    s->values = mb_tensor_new(m, name, 1, "0");
    s->indices = mb_tensor_new(m, "", 7, "0");
    PUSH(m, m->graph.sparse_initializer, m->graph.n_sparse_initializer, s);
}

/* ---- nodes ---------------------------------------------------------------------------- */

mb_node *mb_node_add(mb_model *m, const char *op_type, const char *name, const char *inputs,
                     const char *outputs)
{
    mb_node *n = pool_alloc(m, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = pool_str(m, op_type);
    n->name = pool_str(m, name);
    n->input = split_list(m, inputs, &n->n_input);
    n->output = split_list(m, outputs, &n->n_output);
    PUSH(m, m->graph.node, m->graph.n_node, n);
    return n;
}

void mb_node_domain(mb_model *m, mb_node *n, const char *domain)
{
    n->domain = pool_str(m, domain);
}

static Onnx__AttributeProto *attr_new(mb_model *m, mb_node *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = pool_alloc(m, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = pool_str(m, name);
    a->has_type = 1;
    a->type = type;
    PUSH(m, n->attribute, n->n_attribute, a);
    return a;
}

void mb_attr_int(mb_model *m, mb_node *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr_new(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void mb_attr_float(mb_model *m, mb_node *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr_new(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void mb_attr_string(mb_model *m, mb_node *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a =
        attr_new(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)pool_str(m, v);
}

void mb_attr_ints(mb_model *m, mb_node *n, const char *name, size_t count, const int64_t *v)
{
    Onnx__AttributeProto *a = attr_new(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = count;
    a->ints = pool_alloc(m, count * sizeof *v);
    memcpy(a->ints, v, count * sizeof *v);
}

void mb_attr_floats(mb_model *m, mb_node *n, const char *name, size_t count, const float *v)
{
    Onnx__AttributeProto *a =
        attr_new(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = count;
    a->floats = pool_alloc(m, count * sizeof *v);
    memcpy(a->floats, v, count * sizeof *v);
}

void mb_attr_strings(mb_model *m, mb_node *n, const char *name, size_t count,
                     const char *const *v)
{
    Onnx__AttributeProto *a =
        attr_new(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = count;
    a->strings = pool_alloc(m, count * sizeof *a->strings);
    for (size_t i = 0; i < count; i++) {
        a->strings[i].len = strlen(v[i]);
        a->strings[i].data = (uint8_t *)pool_str(m, v[i]);
    }
}

void mb_attr_tensor(mb_model *m, mb_node *n, const char *name, mb_tensor *t)
{
    attr_new(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t = t;
}

void mb_attr_graph(mb_model *m, mb_node *n, const char *name)
{
    Onnx__GraphProto *g = pool_alloc(m, sizeof *g);
    onnx__graph_proto__init(g);
    g->name = pool_str(m, "body");
    attr_new(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH)->g = g;
}

/* ---- serialization -------------------------------------------------------------------- */

uint8_t *mb_bytes(mb_model *m, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(&m->model);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (!buf)
        abort();
    onnx__model_proto__pack(&m->model, buf);
    return buf;
}

bool mb_write_file(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(bytes, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

bool mb_write_truncated(mb_model *m, const char *path, size_t keep)
{
    size_t len;
    uint8_t *buf = mb_bytes(m, &len);
    bool ok = mb_write_file(path, buf, keep < len ? keep : len);
    free(buf);
    return ok;
}

bool mb_write(mb_model *m, const char *path) { return mb_write_truncated(m, path, SIZE_MAX); }

bool mb_write_tensor(const mb_tensor *t, const char *path)
{
    size_t len = onnx__tensor_proto__get_packed_size(t);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        abort();
    onnx__tensor_proto__pack(t, buf);
    bool ok = mb_write_file(path, buf, len);
    free(buf);
    return ok;
}
