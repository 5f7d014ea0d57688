/*
 * data_file.c — one test data file (input_K.pb / output_K.pb) as the tensors it holds.
 *
 * A TensorProto is one tensor. A SequenceProto or OptionalProto (onnx_data.proto) is the
 * tensors it holds, in order, named NAME[0], NAME[1], ... after the proto's name: that is how
 * the generated interface takes and gives a sequence or optional (passes/seqio.c, the loader's
 * graph inputs). The file does not say which message it holds, and an optional holding a
 * tensor is byte for byte a sequence of one tensor, so the structure is read as what it binds:
 * the length of a sequence (also "present" for an optional of a tensor) and, for an optional
 * of a sequence (OptionalProto elem_type SEQUENCE), "present" plus its sequence's length. The
 * loader takes from those bindings what the model declares the input to be.
 */
#include <stdlib.h>
#include <string.h>

#include "onnx_data.pb-c.h"
#include "onnx_internal.h"

enum { ELEM_UNDEFINED = 0, ELEM_TENSOR = 1, ELEM_SEQUENCE = 3 }; /* ONNX's DataType numbers */

static kl_value *tensor_value(kl_arena *a, const char *path, const char *name, int k,
                              Onnx__TensorProto *t, kl_diag *d) {
    if (!kl_onnx_looks_like_a_tensor(t)) {
        kl_error(d, NULL, "'%s': tensor %d of '%s' is not a valid tensor", path, k, name);
        return NULL;
    }
    kl_value *v = kl_alloc(a, sizeof *v);
    v->name = kl_sprintf(a, "%s[%d]", name, k);
    v->input_index = -1;
    v->output_index = -1;
    v->id = -1;
    kl_tensor_origin origin = {
        .what = kl_sprintf(a, "tensor '%s' in '%s'", v->name, path),
        .base_dir = kl_onnx_dirname(a, path),
    };
    return kl_onnx_tensor_to_value(a, t, &origin, v, d) ? v : NULL;
}

static void add_binding(kl_arena *a, kl_ptrvec *structure, const char *name, kl_binding_kind kind,
                        int64_t count) {
    if (!structure) return;
    kl_shape_binding *b = kl_alloc(a, sizeof *b);
    b->input = name;
    b->kind = kind;
    b->count = count;
    kl_ptrvec_push(a, structure, b);
}

/* The tensors of a sequence of tensors, appended to out. */
static bool sequence_tensors(kl_arena *a, const char *path, const char *name,
                             const Onnx__SequenceProto *s, kl_ptrvec *out, kl_diag *d) {
    if (s->n_sequence_values || s->n_optional_values || (s->has_elem_type &&
                                                         s->elem_type != ELEM_TENSOR))
        return kl_error(d, NULL, "'%s' holds a sequence of sequences, maps or optionals; kiln "
                        "takes sequences of tensors", path);
    for (size_t k = 0; k < s->n_tensor_values; k++) {
        kl_value *v = tensor_value(a, path, name, (int)k, s->tensor_values[k], d);
        if (!v) return false;
        kl_ptrvec_push(a, out, v);
    }
    return true;
}

static bool compound_tensors(kl_arena *a, const char *path, const uint8_t *bytes, size_t len,
                             kl_ptrvec *out, kl_ptrvec *structure, kl_diag *d) {
    Onnx__SequenceProto *s = onnx__sequence_proto__unpack(NULL, len, bytes);
    if (s && !s->has_elem_type) { /* both messages always say what they hold */
        onnx__sequence_proto__free_unpacked(s, NULL);
        s = NULL;
    }
    if (!s)
        return kl_error(d, NULL, "'%s' is not a serialized ONNX tensor, sequence or optional",
                        path);
    const char *name = kl_strdup(a, s->name ? s->name : "");
    bool ok = true;
    int elem = s->has_elem_type ? s->elem_type : ELEM_UNDEFINED;
    if (elem == ELEM_UNDEFINED && !s->n_tensor_values) { /* an empty optional (or sequence) */
        add_binding(a, structure, name, KL_BIND_OPTIONAL, 0);
        add_binding(a, structure, name, KL_BIND_SEQUENCE, 0);
    } else if (elem == ELEM_SEQUENCE && s->n_sequence_values == 1) {
        /* an optional holding a sequence: OptionalProto's sequence_value is field 5, as
           SequenceProto's sequence_values */
        ok = sequence_tensors(a, path, name, s->sequence_values[0], out, d);
        add_binding(a, structure, name, KL_BIND_OPTIONAL, 1);
        add_binding(a, structure, name, KL_BIND_SEQUENCE,
                    (int64_t)s->sequence_values[0]->n_tensor_values);
    } else {
        ok = sequence_tensors(a, path, name, s, out, d);
        add_binding(a, structure, name, KL_BIND_SEQUENCE, (int64_t)s->n_tensor_values);
        add_binding(a, structure, name, KL_BIND_OPTIONAL, s->n_tensor_values ? 1 : 0);
    }
    onnx__sequence_proto__free_unpacked(s, NULL);
    return ok;
}

bool kl_onnx_load_data_file(kl_arena *a, const char *path, kl_ptrvec *out, kl_ptrvec *structure,
                            kl_diag *d) {
    uint8_t *bytes;
    size_t len;
    if (!kl_onnx_read_file(path, "tensor", &bytes, &len, d)) return false;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, bytes);
    bool is_tensor = t && kl_onnx_looks_like_a_tensor(t);
    if (t) onnx__tensor_proto__free_unpacked(t, NULL);
    bool ok;
    if (is_tensor) {
        kl_value *v = kl_onnx_load_tensor_bytes(a, path, bytes, len, d);
        if (v) kl_ptrvec_push(a, out, v);
        ok = v != NULL;
    } else {
        ok = compound_tensors(a, path, bytes, len, out, structure, d);
    }
    free(bytes);
    return ok;
}
