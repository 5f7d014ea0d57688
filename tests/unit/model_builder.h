/*
 * model_builder.h — small ONNX models built from C with protobuf-c, for tests.
 *
 * Tests describe a model in a few calls and write it to a file; the loader then reads it back
 * like any model. Shapes are written as text: "1,3,N,?" means dim_value 1 and 3, dim_param
 * "N", and an unknown dim; "" is a scalar; NULL means no shape at all. Value lists of nodes
 * are comma-separated names, an empty entry being an omitted optional input or output.
 * Everything a builder allocates is freed by mb_free.
 */
#ifndef KIL_MODEL_BUILDER_H
#define KIL_MODEL_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

typedef struct mb_model mb_model;
typedef Onnx__NodeProto mb_node;
typedef Onnx__TensorProto mb_tensor;

/* A model with ir_version 8 importing ai.onnx at `opset`. */
mb_model *mb_new(int64_t opset);
void mb_free(mb_model *m);
void mb_opset(mb_model *m, const char *domain, int64_t version);
void mb_producer(mb_model *m, const char *name, const char *version);
void mb_doc(mb_model *m, const char *doc_string);
void mb_metadata(mb_model *m, const char *key, const char *value);

/* Graph inputs, outputs and value_info; elem_type numbered as TensorProto.DataType. */
void mb_input(mb_model *m, const char *name, int elem_type, const char *dims);
void mb_output(mb_model *m, const char *name, int elem_type, const char *dims);
void mb_value_info(mb_model *m, const char *name, int elem_type, const char *dims);
/* A graph input of sequence type (for the unsupported-input test). */
void mb_input_sequence(mb_model *m, const char *name, int elem_type);

/* Tensors: create, then give them values one way or another. */
mb_tensor *mb_tensor_new(mb_model *m, const char *name, int elem_type, const char *dims);
void mb_tensor_floats(mb_model *m, mb_tensor *t, size_t n, const float *v);
void mb_tensor_int64s(mb_model *m, mb_tensor *t, size_t n, const int64_t *v);
void mb_tensor_int32s(mb_model *m, mb_tensor *t, size_t n, const int32_t *v);
void mb_tensor_raw(mb_model *m, mb_tensor *t, const void *bytes, size_t len);
/* string_data: n strings of lens[i] bytes each (which may hold NUL bytes) */
void mb_tensor_strings(mb_model *m, mb_tensor *t, size_t n, const char *const *v,
                       const size_t *lens);
/* External data; offset / length < 0 leave the key out. */
void mb_tensor_external(mb_model *m, mb_tensor *t, const char *location, int64_t offset,
                        int64_t length);
void mb_initializer(mb_model *m, mb_tensor *t);
/* A sparse initializer (values and indices empty: only its presence matters to tests). */
void mb_sparse_initializer(mb_model *m, const char *name);

/* Nodes, in the order given (which need not be topological). */
mb_node *mb_node_add(mb_model *m, const char *op_type, const char *name, const char *inputs,
                     const char *outputs);
void mb_node_domain(mb_model *m, mb_node *n, const char *domain);
void mb_attr_int(mb_model *m, mb_node *n, const char *name, int64_t v);
void mb_attr_float(mb_model *m, mb_node *n, const char *name, float v);
void mb_attr_string(mb_model *m, mb_node *n, const char *name, const char *v);
void mb_attr_ints(mb_model *m, mb_node *n, const char *name, size_t count, const int64_t *v);
void mb_attr_floats(mb_model *m, mb_node *n, const char *name, size_t count, const float *v);
void mb_attr_strings(mb_model *m, mb_node *n, const char *name, size_t count,
                     const char *const *v);
void mb_attr_tensor(mb_model *m, mb_node *n, const char *name, mb_tensor *t);
void mb_attr_graph(mb_model *m, mb_node *n, const char *name);

/* Serialize. mb_bytes returns a malloc'd buffer (caller frees). */
uint8_t *mb_bytes(mb_model *m, size_t *len);
bool mb_write(mb_model *m, const char *path);
/* Write only the first `keep` bytes (a truncated file). */
bool mb_write_truncated(mb_model *m, const char *path, size_t keep);
/* Serialize a tensor alone (test data files). */
bool mb_write_tensor(const mb_tensor *t, const char *path);
/* Write raw bytes to a file (external data, garbage). */
bool mb_write_file(const char *path, const void *bytes, size_t len);

#endif
