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
 * NVIDIA GPUs (targets cuda-sm80, cuda-sm89, cuda-sm90; kiln_model.device == KILN_DEVICE_CUDA):
 * the object embeds a cubin for the target's GPU (and PTX for newer ones) made when the model
 * was compiled, and its host side calls the CUDA driver API: link with -lcuda; nothing else is
 * needed at run time. Such a model NAME exports instead of predict/run:
 *   int NAME_cuda_load(NAME_cuda *state);     load the module, look its kernels up, copy the
 *                                              weights into the module's device memory
 *   int NAME_cuda_unload(NAME_cuda *state);
 *   int NAME_cuda_predict(<inputs as const T *>, <outputs as T *>, void *workspace,
 *                         void *stream, const NAME_cuda *state);
 *   int NAME_cuda_predict_host(<inputs>, <outputs> on the host, void *workspace, void *stream,
 *                              const NAME_cuda *state);
 * NAME_cuda is a caller-owned struct (the module handle and the kernels' function handles;
 * NAME_CUDA_STATE_SIZE bytes): the object has no global state, so one process may load a
 * model several times (one per context, say). load needs a current CUDA context and may
 * allocate device memory only as cuModuleLoadData does (the module's code and weights; unload
 * frees them). predict takes device pointers: inputs, outputs and a device workspace of
 * NAME_WORKSPACE_SIZE bytes (aligned to KILN_WORKSPACE_ALIGN; cuMemAlloc's are), and queues
 * the kernels on `stream` (a CUstream or cudaStream_t; NULL is the legacy default stream): it
 * returns once they are queued, allocates nothing, never synchronizes, and calls on different
 * streams with distinct workspaces may run at once. predict_host takes host pointers and a
 * device workspace of NAME_CUDA_HOST_WORKSPACE_SIZE bytes (the workspace, then room for every
 * input and output); it copies the inputs in, queues the kernels, copies the outputs back and
 * waits for the stream. Driver errors come back as KILN_E_CUDA - CUresult.
 *
 * Bounded dims (compiled with `--shape x:1x1..512`: a dim that varies at run time up to a
 * bound): the shapes in the tables are the upper bounds, the workspace is planned for them, and
 * the model also exports
 *   int NAME_predict_dynamic(const T *in0, const int64_t *in0_shape, ...,
 *                            T *out0, int64_t *out0_shape, ..., void *workspace);
 * which takes each input's run-time dims (rank values each; dense row-major data of that
 * shape), and writes each output's dims before returning KILN_OK (its data dense at that
 * shape); the dims of a scalar (rank 0) may be NULL. A dim outside its range, or sizes that disagree where the model needs them equal,
 * return KILN_E_SHAPE before anything is read or written. Buffers need only be as large as
 * their run-time shapes; predict() runs the model at the bounds.
 *
 * Data-dependent outputs (a length known only once the data is: NonZero, Compress, Unique,
 * NonMaxSuppression, Split by sizes given at run time, an If whose branches differ in length,
 * and what the nodes reading those compute from them): the tables' shapes hold the length's upper bound (the
 * header writes it `0..BOUND`), and the model exports NAME_predict_dynamic as above (inputs at
 * their compiled dims, which it checks) and run_dynamic, also without a bounded dim (bounded
 * stays 0). predict_dynamic writes each such output densely at its run-time shape into a buffer
 * that must hold the bound, and the shape into outK_shape. predict, predict_parallel and run
 * return KILN_E_DYNAMIC_OUTPUT for such a model, reading and writing nothing: without the
 * length the caller could not read the output.
 *
 * ABI history: 1 — predict, run and the model table; 2 — the parallel entry, the kernel table,
 * the profiling entry and the target fields; 3 — the device field and the CUDA entries;
 * 4 — bounded dims (predict_dynamic, run_dynamic, input_min_shapes); 5 — data-dependent output
 * lengths (KILN_E_DYNAMIC_OUTPUT; run_dynamic also where bounded is 0); 6 — the profiling entry
 * on the caller's threads (run_profiled_parallel).
 */
#ifndef KILN_H
#define KILN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_ABI_VERSION 6

/* Return codes of predict() / run(). */
#define KILN_OK 0
#define KILN_E_NULL_ARGUMENT (-1)    /* an input, output or the workspace pointer is NULL */
#define KILN_E_MISALIGNED (-2)       /* the workspace is not KILN_WORKSPACE_ALIGN-aligned */
#define KILN_E_INDEX_OUT_OF_RANGE (-3) /* a data-dependent index (Gather, ...) was out of range */
#define KILN_E_SHAPE (-4)            /* a shape-carrying input (e.g. Reduce's axes) given at run
                                        time asks for another shape than the model declares, an
                                        input holds another value than the one it was compiled
                                        for (kiln compile --value), or a run-time dim is outside
                                        its bounds (predict_dynamic) */
/* the inputs took a branch of an If that kiln could not compile for the bound shapes (the
 * header names it); the outputs are undefined */
#define KILN_E_UNCOMPILED_BRANCH (-5)
/* the strings a run builds (StringConcat, StringNormalizer's case change) need more bytes than
 * the model was compiled for (`kiln compile --string-bytes N`; NAME_STRING_BYTES in the
 * header); the outputs are undefined */
#define KILN_E_STRING_BYTES (-6)
/* predict(), predict_parallel() and run() of a model with a data-dependent output (NonZero,
 * Compress, Unique: its length is known only at run time): call predict_dynamic instead, which
 * reports each output's dims. Nothing is read or written. */
#define KILN_E_DYNAMIC_OUTPUT (-7)
/* CUDA models: a driver call failed with CUresult r > 0; the code is KILN_E_CUDA - r. */
#define KILN_E_CUDA (-1000)
#define KILN_CUDA_RESULT(code) ((code) < KILN_E_CUDA ? KILN_E_CUDA - (code) : 0)

/* Where a model computes (kiln_model.device). */
#define KILN_DEVICE_CPU 0
#define KILN_DEVICE_CUDA 1

#define KILN_WORKSPACE_ALIGN 64

/* Element types, numbered as ONNX's TensorProto.DataType.
 * The 8-, 4- and 2-bit types (17-26) take ONE BYTE PER ELEMENT at this interface, also the
 * sub-byte ones (not TensorProto's packing of two or four a byte): float8 and float4e2m1
 * elements are their bit patterns (float4e2m1 in the low 4 bits), uint4/uint2 their value
 * (0..15 / 0..3), int4/int2 their value sign extended to int8 (-8..7 / -2..1). */
typedef enum kiln_dtype {
    KILN_FLOAT32 = 1, KILN_UINT8 = 2, KILN_INT8 = 3, KILN_UINT16 = 4, KILN_INT16 = 5,
    KILN_INT32 = 6, KILN_INT64 = 7, KILN_STRING = 8, KILN_BOOL = 9, KILN_FLOAT16 = 10,
    KILN_FLOAT64 = 11, KILN_UINT32 = 12, KILN_UINT64 = 13, KILN_BFLOAT16 = 16,
    KILN_FLOAT8E4M3FN = 17, KILN_FLOAT8E4M3FNUZ = 18, KILN_FLOAT8E5M2 = 19,
    KILN_FLOAT8E5M2FNUZ = 20, KILN_UINT4 = 21, KILN_INT4 = 22, KILN_FLOAT4E2M1 = 23,
    KILN_FLOAT8E8M0 = 24, KILN_UINT2 = 25, KILN_INT2 = 26
} kiln_dtype;
/* KILN_STRING: an element is a `const char *` to NUL-terminated UTF-8 (8 bytes: string models
 * compile for 64-bit targets only), so a string tensor is an array of pointers. Inputs are the
 * caller's pointers, read during the call only. An output element points to one of:
 *   - an input string (Identity, Gather, Reshape, Where, ... select strings): valid as long as
 *     the caller keeps that input string;
 *   - a constant of the model (LabelEncoder / CategoryMapper values, string initializers): in
 *     read-only data, valid for ever;
 *   - a string the run built (StringConcat, StringNormalizer's case change): in the workspace,
 *     valid until the workspace is used again (the next call with it) or freed.
 * Copy the strings out before reusing the workspace when they must live longer. */

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
    /* Generic entry: inputs[i] / outputs[i] in the order of the tables above. NULL for CUDA
     * models (cuda_run below). */
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
    const char *cpu;                /* LLVM's CPU name for it (CUDA: the GPU's, "sm_90") */
    const char *cpu_features;       /* LLVM's feature string it was compiled with */
    /* ---- ABI 3 ---- */
    uint32_t device;                /* KILN_DEVICE_CPU or KILN_DEVICE_CUDA */
    uint32_t cuda_sm;               /* CUDA: compute capability x 10 of the cubin (90) */
    uint64_t cuda_state_size;       /* CUDA: bytes of the caller's NAME_cuda state */
    uint64_t cuda_host_workspace_size; /* CUDA: device workspace bytes of cuda_run_host */
    /* CUDA: the entries of kiln.h's CUDA section with inputs and outputs as arrays (device
     * pointers for cuda_run, host pointers for cuda_run_host); NULL for CPU models. */
    int (*cuda_load)(void *state);
    int (*cuda_unload)(void *state);
    int (*cuda_run)(const void *const *inputs, void *const *outputs, void *workspace,
                    void *stream, const void *state);
    int (*cuda_run_host)(const void *const *inputs, void *const *outputs, void *workspace,
                         void *stream, const void *state);
    /* ---- ABI 4 ---- */
    /* Bounded dims: nonzero when some input dim varies at run time (the tables' shapes are then
     * the upper bounds). input_min_shapes[i]: input i's smallest dims (rank values). */
    uint32_t bounded;
    const int64_t *const *input_min_shapes;    /* NULL unless bounded */
    /* NAME_predict_dynamic with arrays: input_shapes[i] holds input i's rank dims, and
     * output_shapes[i] receives output i's. NULL unless bounded or some output's length
     * depends on the data (ABI 5). */
    int (*run_dynamic)(const void *const *inputs, const int64_t *const *input_shapes,
                       void *const *outputs, int64_t *const *output_shapes, void *workspace);
    /* ---- ABI 6 ---- */
    /* run_profiled with run_parallel's threads: `fn` is called on the calling thread before and
     * after each kernel, whose tasks run on par; NULL unless compiled with --profile. */
    int (*run_profiled_parallel)(const void *const *inputs, void *const *outputs,
                                 void *workspace, kiln_profile_fn fn, void *ctx,
                                 const kiln_parallel *par);
} kiln_model;

#ifdef __cplusplus
}
#endif
#endif
