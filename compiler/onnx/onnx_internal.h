/*
 * onnx_internal.h — what load.c and tensor.c share inside the front end.
 *
 * The protobuf-c types (Onnx__*) stay behind this header: the rest of the compiler only sees
 * kl_graph / kl_value. tensor.c turns one TensorProto into a constant value (typed fields,
 * raw_data, external data); load.c turns a ModelProto into a graph and uses tensor.c for
 * initializers and TENSOR attributes.
 */
#ifndef KIL_ONNX_INTERNAL_H
#define KIL_ONNX_INTERNAL_H

#include "kl.h"
#include "onnx.pb-c.h"

/* The whole content of a file, malloc'd (free with free()). False after a diagnostic naming
 * the file (`what` says what the file was meant to be, e.g. "model"). */
bool kl_onnx_read_file(const char *path, const char *what, uint8_t **data, size_t *len,
                       kl_diag *d);

/* The folder of a file path, arena-allocated ("." when the path has no slash). */
char *kl_onnx_dirname(kl_arena *a, const char *path);

/* Where a TensorProto comes from, for diagnostics: "initializer 'W'", "attribute 'value'" ... */
typedef struct kl_tensor_origin {
    const char *what;        /* e.g. "initializer 'W'" */
    const kl_node *node;     /* the node owning the tensor (attribute), or NULL */
    const char *base_dir;    /* folder that external data locations are relative to */
    bool keep;               /* the tensor is read again (a Loop or Scan body, once a step):
                                raw_data is copied, not taken over */
} kl_tensor_origin;

/* Fill `v` (dtype, shape, has_shape, data) from a TensorProto. The name is not touched. Every
 * failure records a diagnostic naming the tensor and returns false. raw_data is taken over, not
 * copied: v->data becomes protobuf-c's buffer (the arena frees it) and t->raw_data is emptied,
 * so a model's weights are held once. */
bool kl_onnx_tensor_to_value(kl_arena *a, Onnx__TensorProto *t,
                             const kl_tensor_origin *origin, kl_value *v, kl_diag *d);

/* Whether a decoded TensorProto is plausibly one (a SequenceProto or OptionalProto decodes as a
 * TensorProto too, with no type or a shape its values do not fill). */
bool kl_onnx_looks_like_a_tensor(const Onnx__TensorProto *t);

#endif
