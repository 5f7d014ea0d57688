/*
 * fuzz_tensor.c — libFuzzer target: TensorProto bytes as `kiln check` reads a data set's
 * input_K.pb / output_K.pb: decoded (kl_onnx_load_tensor_bytes, external data included), then
 * matched against a compiled input's descriptor and copied into a run buffer the way
 * kl_run_buffers_set_inputs feeds predict, and printed as check prints shapes.
 *
 * The descriptor is made from the tensor itself (what a model compiled for it would declare),
 * so the copy is exercised on every tensor that decodes; ASan then checks that the bytes the
 * loader claims to hold are really there.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "kiln.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A one-input model table whose input is declared as `v` is. */
static void describe(const kl_value *v, kiln_tensor_desc *t, int64_t *shape) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < v->shape.rank; i++) shape[i] = v->shape.dim[i];
    t->name = v->name;
    t->dtype = (int32_t)v->dtype;
    t->rank = v->shape.rank;
    t->shape = shape;
    t->size_bytes = (int64_t)kl_value_bytes(v);
}

static void feed(kl_arena *a, const kl_value *v) {
    int64_t shape[KL_MAX_RANK];
    kiln_tensor_desc t;
    describe(v, &t, shape);
    if (!kl_desc_fits_value(&t, v)) abort(); /* a tensor must fit its own description */
    (void)kl_desc_shape_str(a, &t);
    kiln_model m = {.n_inputs = 1, .inputs = &t, .workspace_size = 64};
    kl_run_buffers b = {.n_inputs = 1};
    void *input = malloc(t.size_bytes ? (size_t)t.size_bytes : 1);
    if (!input) return;
    b.inputs = &input;
    kl_ptrvec values = {0};
    kl_ptrvec_push(a, &values, (void *)v);
    const char *why = NULL;
    if (!kl_run_buffers_set_inputs(a, &m, &b, &values, &why)) abort();
    free(input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("input_0.pb");
    kl_diag d;
    kl_diag_init(&d, path);
    kl_arena *a = kl_arena_new();
    kl_value *v = kl_onnx_load_tensor_bytes(a, path, data, size, &d);
    fuzz_expect(v != NULL, &d, "decoding the tensor");
    if (v) feed(a, v);
    kl_arena_free(a);
    kl_diag_free(&d);
    return 0;
}
