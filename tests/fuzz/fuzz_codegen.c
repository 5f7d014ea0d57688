/*
 * fuzz_codegen.c — libFuzzer target: small valid models with mutated attributes and shapes,
 * through the whole pipeline including the LLVM back end (an object at -O0, written into the
 * private folder, and the header beside it).
 *
 * Flipping bytes of a model mostly breaks its protobuf encoding, and the loader rejects it long
 * before code generation. So this target brings its own mutator (LLVMFuzzerCustomMutator): it
 * decodes the model, changes one number that means something, and encodes it again:
 *   - an INT attribute, or one element of an INTS attribute (axis, group, pads, kernel_shape,
 *     strides, perm ...), to a boundary value (0, +-1, 2^31, INT64_MAX, ...) or a small one;
 *   - a dimension of a graph input (the shapes everything downstream is inferred from);
 *   - a FLOAT attribute (alpha, epsilon ...) to NaN, an infinity, a denormal or a large value;
 *   - a STRING attribute (auto_pad, mode ...) to another spelling operators accept;
 *   - an element type of a graph input.
 * One time in eight, and whenever the bytes do not decode as a model, libFuzzer's own byte
 * mutation runs instead. Seeds: small backend-test models kiln compiles
 * (scripts/fuzz_seeds.py).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "onnx.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* ---- the mutator ---------------------------------------------------------------------- */

static uint64_t next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int64_t interesting_int(uint64_t *s) {
    static const int64_t values[] = {
        0, 1, -1, 2, -2, 3, 4, 7, 8, 16, 64, 255, 1000, INT32_MAX, (int64_t)INT32_MAX + 1,
        INT32_MIN, (int64_t)1 << 32, (int64_t)1 << 40, (int64_t)1 << 47, (int64_t)1 << 62,
        INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1, INT64_MAX / 2};
    uint64_t r = next(s);
    if (r % 3 == 0) return (int64_t)(next(s) % 9) - 2; /* small: -2 .. 6 */
    return values[next(s) % (sizeof values / sizeof *values)];
}

static float interesting_float(uint64_t *s) {
    static const float values[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1e-45f, 1e-38f, 3e38f, -3e38f,
                                   __builtin_inff(), -__builtin_inff(), __builtin_nanf(""),
                                   2.0f, 1e9f, -1e9f};
    return values[next(s) % (sizeof values / sizeof *values)];
}

static const char *interesting_string(uint64_t *s) {
    static const char *const values[] = {
        "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "", "constant", "reflect", "edge",
        "wrap", "nearest", "linear", "cubic", "DCR", "CRD", "half_pixel", "asymmetric",
        "align_corners", "tanh", "none", "mean", "sum", "round_prefer_floor", "floor", "ceil"};
    return values[next(s) % (sizeof values / sizeof *values)];
}

/* Pick one of `n` things, or -1 when there are none. */
static long pick(uint64_t *s, size_t n) { return n ? (long)(next(s) % n) : -1; }

static Onnx__AttributeProto *pick_attribute(Onnx__GraphProto *g, uint64_t *s) {
    long ni = pick(s, g->n_node);
    if (ni < 0) return NULL;
    Onnx__NodeProto *n = g->node[ni];
    long ai = pick(s, n->n_attribute);
    return ai < 0 ? NULL : n->attribute[ai];
}

/* Change one attribute's value; false when the picked node has none that can change. */
static bool mutate_attribute(Onnx__GraphProto *g, uint64_t *s) {
    Onnx__AttributeProto *at = pick_attribute(g, s);
    if (!at) return false;
    if (at->n_ints) {
        at->ints[next(s) % at->n_ints] = interesting_int(s);
    } else if (at->has_i || at->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) {
        at->i = interesting_int(s);
        at->has_i = 1;
    } else if (at->has_f || at->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) {
        at->f = interesting_float(s);
        at->has_f = 1;
    } else if (at->n_floats) {
        at->floats[next(s) % at->n_floats] = interesting_float(s);
    } else if (at->has_s) {
        /* the string lives in the decoded message's allocation: point at a literal instead,
           and put the old pointer back before the message is freed (see mutate_model) */
        return false;
    } else {
        return false;
    }
    return true;
}

static bool mutate_input(Onnx__GraphProto *g, uint64_t *s) {
    long ii = pick(s, g->n_input);
    if (ii < 0) return false;
    Onnx__TypeProto *tp = g->input[ii]->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return false;
    Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (next(s) % 6 == 0) {
        tt->elem_type = (int32_t)(next(s) % 18);
        tt->has_elem_type = 1;
        return true;
    }
    if (!tt->shape) return false;
    long di = pick(s, tt->shape->n_dim);
    if (di < 0) return false;
    Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[di];
    if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) return false;
    dim->dim_value = next(s) % 2 ? (int64_t)(next(s) % 40) : interesting_int(s);
    return true;
}

/* A STRING attribute set to another spelling; the old bytes are restored into *undo so that
 * protobuf-c frees what it allocated. */
static bool mutate_string(Onnx__GraphProto *g, uint64_t *s, Onnx__AttributeProto **undo_at,
                          ProtobufCBinaryData *undo) {
    Onnx__AttributeProto *at = pick_attribute(g, s);
    if (!at || !at->has_s) return false;
    const char *v = interesting_string(s);
    *undo_at = at;
    *undo = at->s;
    at->s.data = (uint8_t *)v;
    at->s.len = strlen(v);
    return true;
}

static size_t mutate_model(Onnx__ModelProto *m, uint8_t *data, size_t max_size, uint64_t *s) {
    Onnx__AttributeProto *undo_at = NULL;
    ProtobufCBinaryData undo = {0};
    bool changed = false;
    for (int tries = 0; tries < 8 && !changed; tries++) {
        switch (next(s) % 5) {
        case 0: case 1: changed = mutate_attribute(m->graph, s); break;
        case 2: case 3: changed = mutate_input(m->graph, s); break;
        default: changed = mutate_string(m->graph, s, &undo_at, &undo); break;
        }
    }
    size_t size = 0;
    if (changed && onnx__model_proto__get_packed_size(m) <= max_size)
        size = onnx__model_proto__pack(m, data);
    if (undo_at) undo_at->s = undo;
    return size;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint64_t s = seed;
    Onnx__ModelProto *m = next(&s) % 8 ? onnx__model_proto__unpack(NULL, size, data) : NULL;
    if (!m || !m->graph) {
        if (m) onnx__model_proto__free_unpacked(m, NULL);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    size_t out = mutate_model(m, data, max_size, &s);
    onnx__model_proto__free_unpacked(m, NULL);
    return out ? out : LLVMFuzzerMutate(data, size, max_size);
}

/* ---- the target ----------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *model = fuzz_path("model.onnx");
    kl_diag d;
    kl_diag_init(&d, model);
    kl_arena *a = kl_arena_new();
    kl_graph *g = kl_onnx_load_bytes(a, model, data, size, NULL, 0, &d);
    fuzz_expect(g != NULL, &d, "loading");
    const kl_target *t = g ? kl_target_resolve(a, fuzz_target_for(data, size), &d) : NULL;
    kl_compile_opts o = {.model_path = model};
    kl_program *p = t ? kl_compile_graph(a, g, t, &o, &d) : NULL;
    if (g) fuzz_expect(p != NULL, &d, "compiling");
    if (p) {
        char *out = kl_strdup(a, fuzz_path("model.o"));
        char *header = kl_strdup(a, fuzz_path("model.h"));
        kl_codegen_opts cg = {.target = t, .name = "fuzz", .opt_level = 0, .emit = KL_EMIT_OBJ};
        bool ok = kl_codegen_llvm(p, g, &cg, out, &d) && kl_write_header(p, g, &cg, header, &d);
        fuzz_expect(ok, &d, "code generation");
        unlink(out);
        unlink(header);
    }
    kl_arena_free(a);
    kl_diag_free(&d);
    return 0;
}
