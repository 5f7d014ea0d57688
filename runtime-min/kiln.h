/*
 * kiln.h — the contract between kiln-compiled models and the programs that link them.
 *
 * Versioned as if it were a schema: a field is never moved or reused; new fields go at the end
 * of a struct and raise KILN_ABI_VERSION. Every compiled object states the version it was built
 * for in `kiln_model.abi_version`; a harness checks it before touching anything else.
 *
 * Each compiled model NAME exports exactly:
 *   int NAME_predict(<inputs as const T *>, <outputs as T *>, void *workspace);
 *   int NAME_predict_parallel(<inputs>, <outputs>, void *workspace, const kiln_parallel *par);
 *   int NAME_run(const void *const *inputs, void *const *outputs, void *workspace);
 *   extern const kiln_model NAME_model;
 * and its header NAME.h defines NAME_WORKSPACE_SIZE / NAME_WORKSPACE_ALIGN.
 *
 * predict() and run() never allocate, print or abort: all mutable state lives in the caller's
 * workspace, so concurrent calls with distinct workspaces are safe. Inputs, outputs and the
 * workspace must not overlap. They return KILN_OK or a negative KILN_E_* code. They run on the
 * calling thread only and make no OS call: the same object works on bare metal.
 *
 * Threads: the parallel entry takes a parallel-for from the caller (kiln_parallel) and hands it
 * the heavy kernels' work as independent tasks; it still creates no thread, allocates nothing
 * and keeps its state in the workspace. kiln_pool.h offers a small pthread pool for hosted
 * targets; any other scheduler (OpenMP, a game engine's job system, an RTOS) fits the same
 * struct.
 *
 * ABI history: 1 — predict, run and the model table; 2 — the parallel entry, the kernel table,
 * the profiling entry and the target fields.
 */
#ifndef KILN_H
#define KILN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_ABI_VERSION 2

/* Return codes of predict() / run(). */
#define KILN_OK 0
#define KILN_E_NULL_ARGUMENT (-1)    /* an input, output or the workspace pointer is NULL */
#define KILN_E_MISALIGNED (-2)       /* the workspace is not KILN_WORKSPACE_ALIGN-aligned */
#define KILN_E_INDEX_OUT_OF_RANGE (-3) /* a data-dependent index (Gather, ...) was out of range */

#define KILN_WORKSPACE_ALIGN 64

/* Element types, numbered as ONNX's TensorProto.DataType. */
typedef enum kiln_dtype {
    KILN_FLOAT32 = 1, KILN_UINT8 = 2, KILN_INT8 = 3, KILN_UINT16 = 4, KILN_INT16 = 5,
    KILN_INT32 = 6, KILN_INT64 = 7, KILN_STRING = 8, KILN_BOOL = 9, KILN_FLOAT16 = 10,
    KILN_FLOAT64 = 11, KILN_UINT32 = 12, KILN_UINT64 = 13, KILN_BFLOAT16 = 16
} kiln_dtype;

/* One input or output (what ONNX Runtime's NodeArg answers). */
typedef struct kiln_tensor_desc {
    const char *name;
    int32_t dtype;                  /* kiln_dtype */
    int32_t rank;
    const int64_t *shape;           /* rank dims, as compiled (symbolic dims bound) */
    const char *const *dim_names;   /* rank entries: the model's symbolic name or NULL */
    int64_t size_bytes;             /* bytes of the whole tensor */
} kiln_tensor_desc;

typedef struct kiln_opset {
    const char *domain;             /* "" = ai.onnx */
    int64_t version;
} kiln_opset;

typedef struct kiln_metadata_prop {
    const char *key;
    const char *value;
} kiln_metadata_prop;

/* A parallel-for supplied by the caller: run task(arg, i) once for every i in [0, n), in any
 * order, on any of its threads (the calling one included), and return when all have returned.
 * Tasks of one call never write the same memory. `threads` is how many run at once at most;
 * the model splits a kernel into a few tasks per thread. */
typedef void (*kiln_task_fn)(void *arg, int64_t i);
typedef struct kiln_parallel {
    void (*parallel_for)(void *ctx, int64_t n, kiln_task_fn task, void *arg);
    void *ctx;
    int32_t threads;
} kiln_parallel;

/* One kernel of the compiled program, in execution order (for profilers). */
typedef struct kiln_kernel_info {
    const char *name;               /* the kernel, e.g. "k12_conv_in1_in2" */
    const char *node;               /* the ONNX node it computes ("" if none) */
    const char *op_type;            /* that node's operator ("" if none) */
    int64_t flops;                  /* 2 x multiply-adds of a contraction, else 0 */
} kiln_kernel_info;

/* Called before (phase 0) and after (phase 1) each kernel by the profiling entry. */
typedef void (*kiln_profile_fn)(void *ctx, int32_t kernel, int32_t phase);

/* The model table (what get_inputs(), get_outputs() and get_modelmeta() answer). */
typedef struct kiln_model {
    uint32_t abi_version;           /* KILN_ABI_VERSION this object was built for */
    const char *name;               /* the C prefix */
    uint32_t n_inputs, n_outputs;
    const kiln_tensor_desc *inputs;
    const kiln_tensor_desc *outputs;
    uint64_t workspace_size;        /* bytes */
    uint32_t workspace_align;       /* bytes */
    /* ModelProto metadata */
    const char *producer_name;
    const char *producer_version;
    const char *domain;
    const char *description;        /* ModelProto.doc_string */
    const char *graph_name;
    const char *graph_description;  /* GraphProto.doc_string */
    int64_t model_version;
    int64_t ir_version;
    uint32_t n_opsets;
    const kiln_opset *opsets;
    uint32_t n_metadata;
    const kiln_metadata_prop *metadata; /* metadata_props */
    /* Generic entry: inputs[i] / outputs[i] in the order of the tables above. */
    int (*run)(const void *const *inputs, void *const *outputs, void *workspace);
    /* ---- ABI 2 ---- */
    /* The same on the caller's threads (par NULL or par->threads <= 1: the calling thread). */
    int (*run_parallel)(const void *const *inputs, void *const *outputs, void *workspace,
                        const kiln_parallel *par);
    uint32_t n_kernels;
    const kiln_kernel_info *kernels;
    int64_t flops;                  /* sum of the kernels' flops: one inference */
    /* Serial run that calls `fn` around every kernel; NULL unless compiled with --profile. */
    int (*run_profiled)(const void *const *inputs, void *const *outputs, void *workspace,
                        kiln_profile_fn fn, void *ctx);
    const char *target;             /* the target it was compiled for, e.g. "x86-64-v4" */
    const char *cpu;                /* LLVM's CPU name for it */
    const char *cpu_features;       /* LLVM's feature string it was compiled with */
} kiln_model;

#ifdef __cplusplus
}
#endif
#endif
