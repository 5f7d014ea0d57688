/*
 * fuzz_model.c — libFuzzer target: model bytes through the loader, the graph passes, lowering,
 * the kernel passes and the memory plan (everything but the LLVM back end, which fuzz_codegen.c
 * covers on models that get that far; leaving it out keeps this target at thousands of
 * executions a second).
 *
 * Seeds: the backend tests' model.onnx files (scripts/fuzz_seeds.py). The target compiles for
 * one of the x86-64 levels, chosen by a hash of the input, so that the tile pass's choices for
 * SSE2, AVX2 and AVX-512 all get fuzzed.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("model.onnx");
    kl_diag d;
    kl_diag_init(&d, path);
    kl_arena *a = kl_arena_new();
    kl_graph *g = kl_onnx_load_bytes(a, path, data, size, NULL, 0, &d);
    fuzz_expect(g != NULL, &d, "loading");
    if (g) {
        kl_compile_opts o = {.model_path = path};
        kl_program *p = kl_compile_graph(a, g, fuzz_target_for(data, size), &o, &d);
        fuzz_expect(p != NULL, &d, "compiling");
    }
    kl_arena_free(a);
    kl_diag_free(&d);
    return 0;
}
