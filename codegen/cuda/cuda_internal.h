/*
 * codegen/cuda/cuda_internal.h — what the files of the CUDA back end share.
 *
 *   cuda.c      the back end's entry: plan, source, NVRTC, validation, host object
 *   launch.c    how every kernel maps onto the grid (the launch plan) and where constants go
 *   source.c    the whole program as one CUDA C translation unit
 *   kernel.c    one kl_kernel as one __global__ function
 *   expr.c      kernel IR expressions as CUDA C statements, with their exact semantics
 *   facts.c     what the printer knows about an expression: types, block dependence, ranges
 *   prelude.c   the device helpers every program starts with
 *   nvrtc.c     CUDA C -> cubin + PTX with NVRTC (nvrtc_none.c where kiln has no NVRTC)
 *   cubin.c     checks a cubin: a CUDA ELF for the right sm that defines every kernel
 *   host.c      the host side as an LLVM module: load, unload, predict, the model table
 *
 * One kl_cu_program lives for one kl_codegen_cuda call; everything comes from the program's
 * arena.
 */
#ifndef KIL_CUDA_INTERNAL_H
#define KIL_CUDA_INTERNAL_H

#include <stdio.h>

#include "kl.h"

/* ---------------------------------------------------------------- launch.c */

/* How one kernel runs on the GPU. Thread number t (over the whole grid) splits into
 *     lane = t % lanes                    (the VECTOR loop's element within a chunk)
 *     part = (t / lanes) % split          (its share of the reduction)
 *     group = t / (lanes * split)         (one iteration of the outer parallel loops)
 * and the thread computes every point of the register block (chunks x UNROLL copies) of its
 * group: points accumulators in registers. lanes * split divides 32, so the threads of one
 * group sit in one warp and combine their parts with shuffles. */
typedef struct kl_cu_launch {
    bool skip;            /* a parallel loop of extent 0: nothing to compute, no launch */
    bool serial;          /* iterations depend on each other: one thread runs the nest in order */
    int first_block;      /* the register block's first loop (n_par when there is none) */
    int vloop;            /* its VECTOR loop, or -1 */
    int lanes;            /* threads along the VECTOR loop (1 without one) */
    int chunks;           /* VECTOR chunks each thread computes (1 without one) */
    int points;           /* accumulators a thread keeps: chunks x UNROLL copies */
    int split;            /* threads sharing one group's reduction (a power of 2) */
    int64_t groups;       /* iterations of the outer parallel loops */
    int threads;          /* threads per block (a multiple of 32) */
    int64_t blocks;       /* blocks of the grid */
    bool wide;            /* thread numbers need 64 bits */
    int n_params;
    kl_buffer **params;   /* root buffers handed over as pointers, in parameter order */
} kl_cu_launch;

/* One cuLaunchKernel: consecutive launched kernels run as one grid, each member on its own
 * range of blocks (`blocks` of them, one after the other). Only light kernels share a launch:
 * no reduction, no register block, independent of each other (none reads what another
 * writes, and two write one buffer only as fills of the same constant: the halo pass's
 * borders). A launch saves microseconds; a batch-1 model has dozens of such small kernels. */
typedef struct kl_cu_group {
    int first, count;         /* its kernels (skipped kernels never belong to one) */
    int threads;              /* threads per block: the members' largest */
    int64_t blocks;           /* the members' blocks together */
    const char *name;         /* its __global__ function */
    int n_params;
    kl_buffer **params;       /* the members' parameters, member after member */
} kl_cu_group;

typedef struct kl_cu_program {
    const kl_program *p;
    const kl_target *t;
    kl_arena *arena;
    kl_cu_launch *launch;     /* one per kernel */
    const char **names;       /* one per kernel: its device function (kernel names repeat
                                 where the tile pass split one into pieces) */
    kl_cu_group *groups;      /* the launches, in order */
    int n_groups;
    int64_t *const_offset;    /* per buffer id: byte offset in the weights, -1 when absent */
    int64_t weights_size;     /* bytes of every constant a kernel reads (256-byte aligned) */
} kl_cu_program;

/* Weights are placed at multiples of this (the driver's own allocation granule). */
enum { KL_CU_WEIGHT_ALIGN = 256 };

bool kl_cu_plan(const kl_program *p, const kl_target *t, kl_cu_program *cp, kl_diag *d);
/* The weights as one blob of cp->weights_size bytes (arena memory). */
unsigned char *kl_cu_weights(const kl_cu_program *cp);
/* The symbol of the weights in the CUDA module. */
#define KL_CU_WEIGHTS "kl_weights"

/* ---------------------------------------------------------------- source.c, prelude.c */

extern const char kl_cu_prelude[];
extern const char kl_cu_minifloat_h[]; /* runtime-min/kiln_minifloat.h, embedded at build time */
bool kl_cu_program_has_small_types(const kl_program *p);
/* The program as CUDA C (malloc'd text, NUL-terminated; *len without the NUL). */
char *kl_cu_source(const kl_cu_program *cp, size_t *len, kl_diag *d);

/* ---------------------------------------------------------------- kernel.c, expr.c */

/* A printed value: a C expression (a temporary, a literal or a loop variable). */
typedef struct cu_val {
    const char *s;
    kl_dtype t;           /* its IR type */
    bool narrow;          /* an int64 held in a 32-bit int: its range fits */
} cu_val;

typedef struct cu_memo {
    const kl_expr *e;
    cu_val v;
    int scope;            /* nesting depth it was declared at */
    const char *key;      /* the block loops' values it was computed at (NULL: any point) */
} cu_memo;

typedef struct cu_cache cu_cache; /* expr.c: per-node facts (ranges, block dependence) */

typedef struct kl_cu_printer {
    FILE *f;
    kl_arena *a;
    kl_diag *d;
    const kl_cu_program *cp;
    const kl_kernel *k;
    const kl_cu_launch *L;
    int indent;
    int tmp;                          /* temporaries so far */
    const char *iv[KL_MAX_LOOPS];     /* each loop variable's C value in scope (NULL outside) */
    bool iv_narrow[KL_MAX_LOOPS];     /* held in an int */
    bool block_loop[KL_MAX_LOOPS];    /* in the register block: its value differs per point */
    bool iv_is_const[KL_MAX_LOOPS];   /* an UNROLL loop at a point: the value is iv_const */
    int64_t iv_const[KL_MAX_LOOPS];
    int point;                        /* the block point being printed, -1 outside points */
    int scope;
    const char *acc;                  /* the current point's accumulator */
    int guarded;                      /* > 0 while printing the arms of a select */
    cu_memo *memo;
    int n_memo, cap_memo;
    cu_cache *cache;
} kl_cu_printer;

bool kl_cu_print_kernel(FILE *f, const kl_cu_program *cp, int index, kl_diag *d);
/* "T *__restrict__ pI" as kernel k declares buffer b (const unless it writes it). */
void kl_cu_print_param(FILE *f, const kl_kernel *k, const kl_buffer *b, int i);

/* facts.c — types, block dependence and ranges of expressions */
bool kl_cu_is_float(kl_dtype t);
bool kl_cu_is_signed(kl_dtype t);
bool kl_cu_is_half(kl_dtype t);
bool kl_cu_is_64(kl_dtype t);
/* The register type of t ("float" for 16-bit floats, "bool", "long long", ...), NULL if none;
 * the memory type (bools are bytes, 16-bit floats their bits); a value's C type. */
const char *kl_cu_reg_type(kl_dtype t);
const char *kl_cu_mem_type(kl_dtype t);
const char *kl_cu_ctype(cu_val v);
/* The unsigned type integer arithmetic of t wraps in. */
const char *kl_cu_wrap_type(kl_dtype t);
bool kl_cu_fits_int(__int128 lo, __int128 hi);
/* The full range of an integer type; false for types whose range int64 cannot hold. */
bool kl_cu_type_range(kl_dtype t, int64_t *lo, int64_t *hi);
/* Whether e depends on a loop of the register block; the values of those loops at the
 * current point (NULL: none), which points sharing e's value agree on. */
bool kl_cu_on_block(kl_cu_printer *pr, const kl_expr *e);
const char *kl_cu_point_key(kl_cu_printer *pr, const kl_expr *e);
/* The value range of an integer expression over the loops' whole ranges; false when unknown. */
bool kl_cu_range(kl_cu_printer *pr, const kl_expr *e, int64_t *lo, int64_t *hi);
/* Whether e = x op y (ADD, SUB, MUL) provably stays within t (within int with in_int). */
bool kl_cu_arith_fits(kl_cu_printer *pr, const kl_expr *e, kl_dtype t, bool in_int);

/* expr.c */
bool kl_cu_expr(kl_cu_printer *pr, const kl_expr *e, cu_val *out);
/* out[out_idx] = v for the current point. */
bool kl_cu_store(kl_cu_printer *pr, cu_val v);
/* v fitted to a float8 / float4 (rounded, `mode` a cast's KL_CAST_* bits) or sub-byte integer
 * type t (wrapped); other types unchanged. */
cu_val kl_cu_fit_small(kl_cu_printer *pr, kl_dtype t, cu_val v, unsigned mode);
/* acc (op) v, as a C expression of acc's register type. */
const char *kl_cu_combine(kl_cu_printer *pr, kl_reduce r, kl_dtype t, const char *acc,
                          const char *v);
const char *kl_cu_identity(kl_cu_printer *pr, kl_reduce r, kl_dtype t);
/* A constant literal of type t. */
const char *kl_cu_literal(kl_cu_printer *pr, kl_dtype t, double f, int64_t i);
/* printf to the kernel's text at the current indentation, with a newline. */
void kl_cu_line(kl_cu_printer *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kl_cu_open(kl_cu_printer *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kl_cu_close(kl_cu_printer *pr);
bool kl_cu_fail(kl_cu_printer *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kl_cu_printer_init(kl_cu_printer *pr, FILE *f, const kl_cu_program *cp, int index,
                        kl_diag *d);

/* ---------------------------------------------------------------- nvrtc.c, cubin.c */

typedef struct kl_cu_image {
    const unsigned char *cubin;
    size_t cubin_size;
    const char *ptx;          /* NUL-terminated */
    size_t ptx_size;          /* with the NUL */
    const char *weights_symbol; /* the weights' name in the module as the driver knows it */
} kl_cu_image;
/* Compile `source` for sm_<sm> (arena memory in *img); false with NVRTC's log otherwise. */
bool kl_cu_nvrtc(kl_arena *a, const char *source, int sm, bool has_weights, kl_cu_image *img,
                 kl_diag *d);
/* The cubin is an executable CUDA ELF for sm_<sm> that defines every kernel in `names` as a
 * function with code (and the weights' object when `weights` is given). */
bool kl_cu_check_cubin(const unsigned char *cubin, size_t size, int sm, const char *const *names,
                       int n_names, const char *weights, kl_diag *d);

/* ---------------------------------------------------------------- host.c */

bool kl_cu_emit_host(const kl_cu_program *cp, const kl_graph *g, const kl_codegen_opts *o,
                     const kl_cu_image *img, const char *path, kl_diag *d);

#endif
