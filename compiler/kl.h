/*
 * kl.h — the one internal header of libkiln.
 *
 * Sectioned by the file (or folder) that exports each part, in pipeline order:
 *   util/      arena, diagnostics, dtypes, shapes
 *   ir/        graph IR: values, nodes, attributes, the graph
 *   onnx/      loading ModelProto / TensorProto (protobuf-c)
 *   ops/       the op table: one entry per ONNX operator
 *   kernel/    kernel IR: loop nests over buffers, builders, interpreter
 *   passes/    graph passes (one file each, one entry point each)
 *   plan/      memory plan of the workspace
 *   targets/   target descriptors (data)
 *   codegen/   back ends (LLVM) and the header writer
 *   driver.c   the whole pipeline in order
 *   dataset.c, library.c, check.c, bench*.c   harnesses that run compiled code in process
 *
 * Every prefix says where a symbol lives: kl_ for everything compiler-side; the generated code
 * only ever exports NAME_* symbols (NAME = the model's C prefix).
 * Memory: everything compiler-side comes from a kl_arena freed at once. No global mutable state.
 * Errors: functions that can fail return bool (or NULL) and record a message in a kl_diag.
 */
#ifndef KIL_KL_H
#define KIL_KL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ======================================================================================
 * util/arena.c — bump allocator; all compiler memory, freed at once
 * ====================================================================================== */
typedef struct kl_arena kl_arena;
kl_arena *kl_arena_new(void);
void kl_arena_free(kl_arena *a);
void *kl_alloc(kl_arena *a, size_t bytes);        /* zeroed, 64-byte aligned; never NULL (aborts
                                                     only if the OS is out of memory at compile time) */
void *kl_alloc_array(kl_arena *a, size_t n, size_t size); /* zeroed; overflow-checked */
/* The arena takes a malloc'd block of `size` bytes over: freed with the arena (NULL: nothing). */
void kl_arena_adopt(kl_arena *a, void *block, size_t size);
/* Large blocks (a request's own chunk, or an adopted block) can be given back early, for the
 * weights that passes replaced: the size of the block that starts at p (0: p starts none, or a
 * small allocation that cannot be freed alone), and freeing it. */
size_t kl_arena_block_size(kl_arena *a, const void *p);
void kl_arena_release(kl_arena *a, const void *p);
char *kl_strdup(kl_arena *a, const char *s);
char *kl_strndup(kl_arena *a, const char *s, size_t n);
char *kl_sprintf(kl_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Growable array of pointers backed by an arena (old storage is simply abandoned). */
typedef struct kl_ptrvec {
    void **items;
    int n, cap;
} kl_ptrvec;
void kl_ptrvec_push(kl_arena *a, kl_ptrvec *v, void *item);

/* ======================================================================================
 * util/diag.c — diagnostics travel up as values
 *
 * A message reads   FILE: node 'NAME' (OP, opset N): what went wrong
 * or                FILE: what went wrong            (no node involved)
 * Errors accumulate (so that e.g. all unsupported operators are listed at once); callers
 * check kl_diag_failed() at phase boundaries.
 * ====================================================================================== */
struct kl_node;
typedef struct kl_diag {
    const char *file;   /* the model file being compiled (for every message) */
    char *text;         /* all messages, one a line, malloc'd (freed by kl_diag_free) */
    size_t len, cap;
    int n_errors;
    /* Graph inputs whose values would let a refused compilation go on (a shape, a trip count,
     * a position computed from them): "a\0b\0\0", malloc'd; NULL: none. `kiln check` binds
     * them from its data set (--value) and compiles again. */
    char *needs_values;
} kl_diag;
void kl_diag_init(kl_diag *d, const char *file);
void kl_diag_free(kl_diag *d);
bool kl_diag_failed(const kl_diag *d);
/* Record that the value of graph input `input` is needed (once per name). */
void kl_diag_need_value(kl_diag *d, const char *input);
/* Record an error; `node` may be NULL. Always returns false so callers can `return kl_error(...)`. */
bool kl_error(kl_diag *d, const struct kl_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool kl_verror(kl_diag *d, const struct kl_node *node, const char *fmt, va_list ap);
/* Move `from`'s messages (and error count) to the end of d's; `from` is left empty. */
void kl_diag_take(kl_diag *d, kl_diag *from);
void kl_diag_print(const kl_diag *d, FILE *f);

/* util/clock.c — seconds on the monotonic clock (only differences mean anything) */
double kl_now(void);

/* ======================================================================================
 * util/dtype.c — element types (numbered as ONNX's TensorProto.DataType)
 * ====================================================================================== */
typedef enum kl_dtype {
    KL_UNDEFINED = 0,
    KL_F32 = 1, KL_U8 = 2, KL_I8 = 3, KL_U16 = 4, KL_I16 = 5, KL_I32 = 6, KL_I64 = 7,
    KL_STRING = 8, KL_BOOL = 9, KL_F16 = 10, KL_F64 = 11, KL_U32 = 12, KL_U64 = 13,
    KL_C64 = 14, KL_C128 = 15, KL_BF16 = 16,
    /* The small types (see README "Element types"): one byte per element inside kiln
     * (workspace, constants, interpreter); float8/float4 bits as stored, int4/int2 sign
     * extended, uint4/uint2 zero extended; computed in float32 / in an 8-bit integer that
     * wraps to the type's width. runtime-min/kiln_minifloat.h converts the floats. */
    KL_F8E4M3FN = 17, KL_F8E4M3FNUZ = 18, KL_F8E5M2 = 19, KL_F8E5M2FNUZ = 20,
    KL_U4 = 21, KL_I4 = 22, KL_F4E2M1 = 23, KL_F8E8M0 = 24, KL_U2 = 25, KL_I2 = 26,
} kl_dtype;
size_t kl_dtype_size(kl_dtype t);          /* 0 for types kiln cannot hold */
const char *kl_dtype_name(kl_dtype t);     /* "float32", "int64", ... (ORT's spelling minus tensor()) */
const char *kl_dtype_ctype(kl_dtype t);    /* "float", "int64_t", "bool", ... */
bool kl_dtype_is_float(kl_dtype t);
bool kl_dtype_is_signed_int(kl_dtype t);
bool kl_dtype_is_unsigned_int(kl_dtype t); /* includes BOOL? no: bool is its own class */
bool kl_dtype_supported(kl_dtype t);       /* what kernels can compute on today */
bool kl_dtype_is_minifloat(kl_dtype t);    /* float8 kinds and float4e2m1 (also is_float) */
int kl_dtype_bits(kl_dtype t);             /* 4 / 2 for the sub-byte types, else 8 * size */
/* int4/uint4/int2/uint2: the value wrapped to the type's width (two's complement / modulo). */
int64_t kl_dtype_wrap_small_int(kl_dtype t, int64_t v);
/* TensorProto's packing of the sub-byte types (4-bit: two a byte, 2-bit: four a byte, the
 * first element in the lowest bits, the last byte padded with zero bits). For every other
 * type packed bytes = numel * size and pack/unpack copy. Unpacked int4/int2 are sign extended
 * bytes, the others zero extended codes; packing keeps each element's low bits only. */
bool kl_dtype_is_packed(kl_dtype t);
int64_t kl_dtype_packed_bytes(kl_dtype t, int64_t numel); /* -1 on overflow */
void kl_dtype_unpack(kl_dtype t, const uint8_t *packed, uint8_t *out, int64_t numel);
void kl_dtype_pack(kl_dtype t, const uint8_t *in, uint8_t *packed, int64_t numel);
/* float8 kinds, float4e2m1: code <-> float32 (runtime-min/kiln_minifloat.h; mode is its
 * KILN_MF_* bits: saturation, float8e8m0's rounding). */
float kl_minifloat_to_f32(kl_dtype t, uint8_t code);
uint8_t kl_f32_to_minifloat(kl_dtype t, float x, unsigned mode);
float kl_f16_to_f32(uint16_t h);
uint16_t kl_f32_to_f16(float f);          /* round to nearest even */
float kl_bf16_to_f32(uint16_t h);
uint16_t kl_f32_to_bf16(float f);         /* round to nearest even */

/* ======================================================================================
 * util/shape.c — static shapes
 * ====================================================================================== */
#define KL_MAX_RANK 8
typedef struct kl_shape {
    int rank;
    int64_t dim[KL_MAX_RANK];
} kl_shape;
int64_t kl_shape_numel(const kl_shape *s);
bool kl_shape_equal(const kl_shape *a, const kl_shape *b);
/* The one dim along which a and b (of one rank) differ; -1 when none does, when several do,
 * or when the ranks differ. */
int kl_shape_differing_dim(const kl_shape *a, const kl_shape *b);
/* Multidirectional (numpy) broadcast; false (no diag) if incompatible. */
bool kl_shape_broadcast(const kl_shape *a, const kl_shape *b, kl_shape *out);
void kl_shape_strides(const kl_shape *s, int64_t strides[KL_MAX_RANK]); /* row-major, elements */
char *kl_shape_str(kl_arena *a, const kl_shape *s);                   /* "[1,3,224,224]" */
/* Normalize a possibly negative axis against rank; false if out of [-rank, rank). */
bool kl_axis_normalize(int64_t axis, int rank, int *out);

/* ======================================================================================
 * util/size.c — checked size arithmetic (models are untrusted: their numbers can overflow)
 *
 * Every value and buffer is at most KL_MAX_BYTES, checked where it is made (loader, shape
 * inference, planner); below that, one tensor's counts and strides cannot overflow int64.
 * Constants kiln builds itself from shapes (tables, packed copies) stay under
 * KL_MAX_BUILT_BYTES so that compile-time memory stays bounded by the model's own size.
 * ====================================================================================== */
#define KL_MAX_BYTES ((int64_t)1 << 40)        /* 1 TiB: one tensor, or the workspace */
#define KL_MAX_BUILT_BYTES ((int64_t)1 << 28)  /* 256 MiB: a constant kiln builds */
bool kl_mul_checked(int64_t a, int64_t b, int64_t *out);  /* false on overflow */
bool kl_add_checked(int64_t a, int64_t b, int64_t *out);
int64_t kl_mul_saturate(int64_t a, int64_t b);            /* INT64_MAX / MIN on overflow */
/* A computed size (a scale times a dim) as a dim: false unless 0 <= x <= KL_MAX_BYTES; NaN and
 * infinities are false too. (A double past int64 converted to int64 is undefined.) */
bool kl_dim_from_double(double x, int64_t *out);
/* A computed coordinate as an integer, saturated to +-2^62 (NaN: 0), for indices that are
 * clamped into a tensor afterwards. */
int64_t kl_index_from_double(double x);
/* Byte size of a tensor: false when a dim is negative, the rank is out of range or the size
 * (or any one dim) exceeds KL_MAX_BYTES. */
bool kl_shape_bytes_checked(const kl_shape *s, kl_dtype t, int64_t *bytes);
/* The same with one diagnostic naming `what` ("output 'y'", "input 'x'") and the shape. */
bool kl_check_tensor_size(kl_arena *a, const kl_shape *s, kl_dtype t, const struct kl_node *node,
                          const char *what, kl_diag *d);

/* ======================================================================================
 * ir/graph.c — the graph IR
 *
 * Values are SSA: one producer (a node) or none (graph input, initializer/constant).
 * After the shape-inference pass, every live value has dtype and a static shape. A value whose
 * `data` is non-NULL is a compile-time constant (initializer, Constant node, or folded).
 * ====================================================================================== */
typedef struct kl_node kl_node;
typedef struct kl_graph kl_graph;

/* A sequence or an optional whose structure is known when compiling (ops/sequence.c compiles
 * them away during shape inference): which tensors it holds, in order. */
struct kl_value;
typedef struct kl_compound {
    bool optional;             /* an optional: n is 0 (empty) or 1; else a sequence of n */
    int64_t n;
    struct kl_value **items;   /* n tensors (an optional's item may be a sequence value);
                                  NULL while `split` is pending */
    struct kl_node *split;     /* a SplitToSequence whose pieces are built when first read
                                  (SequenceLength needs only their count) */
    kl_dtype elem;             /* element type (SequenceEmpty's dtype for an empty one) */
} kl_compound;

typedef struct kl_value {
    const char *name;
    kl_dtype dtype;
    kl_shape shape;
    bool has_shape;                            /* shape known (always true after inference) */
    bool shape_declared;                       /* before inference: `shape` is the fixed shape
                                                  the model declares for this computed output */
    const char *dim_param[KL_MAX_RANK];        /* symbolic dims of graph inputs/outputs, or NULL */
    void *data;                                /* constant contents (row-major, host layout) */
    kl_node *producer;                         /* NULL for graph inputs and constants */
    int n_uses;                                /* number of node inputs referring to it */
    int input_index;                           /* index among graph inputs, or -1 */
    int output_index;                          /* index among graph outputs (first), or -1 */
    kl_compound *compound;                     /* non-NULL: a sequence or optional, no tensor */
    int id;
    /* Data-dependent shape (NonZero, Compress, Unique, NonMaxSuppression): dim dd_dim's length
     * is known only at run time; `shape` holds its upper bound. Such a value may only be a
     * graph output (ops/data_dependent.c); folding it to a constant makes it static again. */
    bool data_dependent;
    int dd_dim;
    struct kl_value *dd_source; /* the value whose node counts that length (values it flows to
                                   share it) */
    /* Shape inference found no declared shape for this output, on it or downstream, where its
     * node needed one (a shape operand given at run time): the operator may then give it a
     * length that depends on the data instead (Slice along one axis). */
    bool none_declared;
    /* Storage for a one-element int64 `data` that inference knows from shapes alone (Size),
     * where there is no arena to allocate it in. */
    int64_t known_scalar;
    /* A graph input whose value a --value binding gives: the constant every node reads in its
     * place; the lowering checks at run time that the input holds it (KILN_E_SHAPE). */
    struct kl_value *bound_value;
} kl_value;

typedef enum kl_attr_type {
    KL_ATTR_UNDEFINED = 0, KL_ATTR_FLOAT = 1, KL_ATTR_INT = 2, KL_ATTR_STRING = 3,
    KL_ATTR_TENSOR = 4, KL_ATTR_GRAPH = 5, KL_ATTR_FLOATS = 6, KL_ATTR_INTS = 7,
    KL_ATTR_STRINGS = 8, /* numbered as ONNX's AttributeProto.AttributeType */
} kl_attr_type;

typedef struct kl_attr {
    const char *name;
    kl_attr_type type;
    int64_t i;
    double f;
    const char *s;        /* STRING (NUL-terminated copy) */
    int n;                /* element count for FLOATS / INTS / STRINGS */
    int64_t *ints;
    double *floats;
    const char **strings;
    kl_value *t;          /* TENSOR: a constant value (not in the graph's value list) */
    kl_graph *g;          /* GRAPH: subgraph (loaded but not yet compiled; issue 3) */
} kl_attr;

/* A guard: the node runs only when every level holds (cond's one bool element == when).
 * The loader inlines an If's branches into the graph and gives each branch's nodes the guard
 * of its side (nested Ifs chain through `outer`); shape inference kills the nodes of a side
 * whose condition folded to the other value, and what stays guarded by a run-time condition
 * is lowered to kernels the generated code skips (kl_kernel.guard). */
typedef struct kl_guard {
    kl_value *cond;
    bool when;
    struct kl_guard *outer;
    /* Set by shape inference when a node of this branch (condition decided at run time) cannot
     * be inferred for the bound shapes: the message. The branch is then left out, and the
     * generated code returns KILN_E_UNCOMPILED_BRANCH when the inputs take it (a run-time error,
     * as in ONNX Runtime, which runs only the branch taken). */
    const char *broken;
} kl_guard;
/* Whether g or an outer level of it is broken. */
bool kl_guard_broken(const kl_guard *g);
/* -1: some level's condition is a constant that fails (the node never runs); 1: every level
 * is a constant that holds (NULL too); 0: some level depends on a run-time value. */
int kl_guard_state(const kl_guard *g);

struct kl_op;
struct kl_node {
    const char *name;     /* never NULL: the model's name, or "<op_type>_<index>" when empty */
    const char *op_type;
    const char *domain;   /* "" for ai.onnx */
    int opset;            /* the model's opset version for this node's domain */
    int n_inputs;
    kl_value **inputs;    /* NULL entries for omitted optional inputs */
    int n_outputs;
    kl_value **outputs;   /* NULL entries for omitted optional outputs */
    int n_attrs;
    kl_attr *attrs;
    const struct kl_op *op; /* resolved by the op table; NULL until then */
    bool dead;            /* removed by a pass (folded or unused) */
    kl_guard *guard;      /* NULL: always runs (see kl_guard) */
    int id;
};

typedef struct kl_opset_import {
    const char *domain;
    int64_t version;
} kl_opset_import;

typedef struct kl_meta_prop {
    const char *key, *value;
} kl_meta_prop;

typedef struct kl_model_meta {
    const char *producer_name, *producer_version, *domain, *doc_string, *graph_name,
        *graph_doc_string;
    int64_t model_version, ir_version;
    int n_opsets;
    kl_opset_import *opsets;
    int n_props;
    kl_meta_prop *props;
} kl_model_meta;

struct kl_graph {
    kl_arena *arena;
    const char *file;       /* path of the model (diagnostics) */
    kl_ptrvec nodes;        /* kl_node*, topologically sorted by the loader */
    kl_ptrvec values;       /* kl_value*, every value of the graph */
    kl_ptrvec inputs;       /* kl_value*, real inputs (initializers excluded) */
    kl_ptrvec outputs;      /* kl_value*, graph outputs in order */
    kl_ptrvec broken_guards; /* kl_guard*, the branches left out (kl_guard.broken) */
    kl_ptrvec compound_io;  /* kl_compound_io*, sequences/optionals at the interface (seqio.c) */
    bool looking_downstream; /* shape inference is looking for a declared shape downstream */
    kl_model_meta meta;
};

kl_graph *kl_graph_new(kl_arena *a, const char *file);
kl_value *kl_value_new(kl_graph *g, const char *name);      /* added to g->values */
kl_node *kl_node_new(kl_graph *g, const char *op_type, const char *domain, int opset);
/* Attribute lookups; `def` is returned when absent. */
const kl_attr *kl_attr_find(const kl_node *n, const char *name);
int64_t kl_attr_int(const kl_node *n, const char *name, int64_t def);
double kl_attr_float(const kl_node *n, const char *name, double def);
const char *kl_attr_string(const kl_node *n, const char *name, const char *def);
/* INTS attribute: returns its count and sets *out, or -1 when absent. */
int kl_attr_ints(const kl_node *n, const char *name, const int64_t **out);
/* Input i if present (non-NULL and i < n_inputs), else NULL. */
kl_value *kl_node_input(const kl_node *n, int i);
kl_value *kl_node_output(const kl_node *n, int i);
/* Read element i of a constant integer tensor (any int dtype) as int64. */
int64_t kl_value_const_int(const kl_value *v, int64_t i);
/* Shape or Size (ONNX domain): reads only its input's shape, never its values. */
bool kl_node_reads_shape_only(const kl_node *n);
double kl_value_const_float(const kl_value *v, int64_t i);
size_t kl_value_bytes(const kl_value *v);

/* ir/dump.c — human-readable listing (for --dump-ir and tests) */
void kl_graph_dump(const kl_graph *g, FILE *f);

/* ir/edit.c — rewriting the graph in passes.
 * Passes that replace nodes go through these helpers so that producers, use counts and the
 * graph order stay consistent. They never write into a node's existing inputs, outputs or attrs
 * array: a change gives the node a fresh array, which is what lets a pass snapshot the graph
 * (kl_graph_snapshot) and roll a rewrite back when it did not pay. New nodes are appended;
 * kl_graph_sort restores a topological order afterwards. */
bool kl_node_live(const kl_node *n);      /* not dead, and some output not a folded constant */
/* The live nodes reading v (a node reading it twice is listed once), in graph order, into *out
 * (reset first). */
void kl_value_consumers(const kl_graph *g, const kl_value *v, kl_ptrvec *out);
/* A fresh value (its name made unique with a counter) of type t and shape s; with `data`, a
 * constant holding it. */
kl_value *kl_value_make(kl_graph *g, const char *base, kl_dtype t, const kl_shape *s, void *data);
/* A node bound to its op-table entry, outputs' producer set; NULL if the op table has no such
 * operator. The node is appended: the graph order is restored by kl_graph_sort. */
kl_node *kl_node_add(kl_graph *g, const char *domain, const char *op_type, int opset,
                     const char *name, int n_in, kl_value *const *in, int n_out,
                     kl_value *const *out);
void kl_node_set_input(kl_graph *g, kl_node *n, int i, kl_value *v); /* i may grow the list */
void kl_node_set_output(kl_graph *g, kl_node *n, int i, kl_value *v); /* v's producer := n */
/* Replace (or append) the attribute of a->name: the node gets a new array. */
void kl_node_set_attr(kl_graph *g, kl_node *n, const kl_attr *a);
void kl_node_set_attr_ints(kl_graph *g, kl_node *n, const char *name, int count,
                           const int64_t *v);
void kl_node_set_attr_int(kl_graph *g, kl_node *n, const char *name, int64_t v);
void kl_node_remove_attr(kl_graph *g, kl_node *n, const char *name);
void kl_node_kill(kl_node *n);            /* dead; its inputs lose a use */
/* Every live node reading `from` reads `to` instead. */
void kl_value_replace_uses(kl_graph *g, kl_value *from, kl_value *to);
/* Live nodes in a topological order that keeps the present order where it can (a producer
 * moves just before its first consumer); dead nodes leave the list. False (diagnostic) on a
 * cycle, which would be a bug in the pass that made it. */
bool kl_graph_sort(kl_graph *g, kl_diag *d);
/* What a rewrite may change, saved to be put back: the node list, every node's struct, every
 * value's producer and use count, and the number of values. Reused between takes. */
typedef struct kl_graph_snapshot {
    int n_nodes, n_values, cap_nodes, cap_values;
    kl_node **order;
    kl_node *nodes;
    kl_node **producer;
    int *n_uses;
} kl_graph_snapshot;
void kl_graph_snapshot_take(kl_graph *g, kl_graph_snapshot *s);
void kl_graph_snapshot_restore(kl_graph *g, const kl_graph_snapshot *s);

/* ======================================================================================
 * onnx/load.c, onnx/tensor.c — the front end (protobuf-c)
 * ====================================================================================== */
/* Load an ONNX model file into a graph (values typed where the model says; shapes of graph
 * inputs bound with `bindings`). Resolves external data inside the model's folder only, checks
 * for cycles and sorts nodes topologically. NULL on error (diagnostic recorded). */
/* What a binding binds: a tensor input's shape (`--shape`), the structure of a sequence
 * (`--sequence s:N`: N tensors) or an optional (`--optional o:present|absent`) graph input, or
 * the value of a tensor input that sets shapes or structure (`--value n:3,4`). */
typedef enum kl_binding_kind {
    KL_BIND_SHAPE = 0, KL_BIND_SEQUENCE, KL_BIND_OPTIONAL, KL_BIND_VALUE
} kl_binding_kind;
typedef struct kl_shape_binding {
    const char *input;     /* graph input name */
    kl_shape shape;        /* full shape (a bounded dim: its upper bound) */
    /* Bounded dims (`--shape x:1x1..512`): dim d varies at run time in [min_dim[d],
     * shape.dim[d]] when bounded[d]. */
    bool bounded[KL_MAX_RANK];
    int64_t min_dim[KL_MAX_RANK];
    kl_binding_kind kind;  /* KL_BIND_SHAPE unless a structure binding */
    int64_t count;         /* a sequence's length; an optional's 1 (present) or 0 (absent);
                              KL_BIND_VALUE: how many elements value_data holds */
    /* KL_BIND_VALUE (`--value n:3,4`): the one value the input may hold, in this element type
     * (KL_I64 or KL_F64 from the command line, the tensor's own from a data set). */
    kl_dtype value_dtype;
    const void *value_data;
} kl_shape_binding;
/* Whether any binding has a bounded dim. */
bool kl_bindings_bounded(const kl_shape_binding *b, int n);
kl_graph *kl_onnx_load(kl_arena *a, const char *path, const kl_shape_binding *bindings,
                       int n_bindings, kl_diag *d);
/* The same from the file's bytes (the fuzz targets feed them): `path` names the model in
 * messages, and its folder is where external data is looked for. */
kl_graph *kl_onnx_load_bytes(kl_arena *a, const char *path, const void *bytes, size_t len,
                             const kl_shape_binding *bindings, int n_bindings, kl_diag *d);
/* Decode a serialized TensorProto (e.g. input_0.pb of a test data set) into a constant value.
 */
kl_value *kl_onnx_load_tensor_file(kl_arena *a, const char *path, kl_diag *d);
/* A test data file as the tensors it holds (onnx/data_file.c): a TensorProto is one, a
 * SequenceProto or OptionalProto its tensors in order, named NAME[K]; for those, `structure`
 * (may be NULL) gets kl_shape_binding*s saying what they bind (a sequence's length, whether an
 * optional holds a value). False after a diagnostic naming the file. */
bool kl_onnx_load_data_file(kl_arena *a, const char *path, kl_ptrvec *out, kl_ptrvec *structure,
                            kl_diag *d);
/* The same from the file's bytes; `path` as for kl_onnx_load_bytes. */
kl_value *kl_onnx_load_tensor_bytes(kl_arena *a, const char *path, const void *bytes,
                                    size_t len, kl_diag *d);

/* ======================================================================================
 * kernel/ — kernel IR: the one representation every back end consumes
 *
 * A kernel is a loop nest over buffers:
 *     for iv[0] < extent[0], ..., iv[n_par-1] < extent[n_par-1]:        (parallel loops)
 *         acc = init                                                    (if reduce != NONE)
 *         for iv[n_par] < extent[n_par], ..., iv[n_loops-1]:             (reduction loops)
 *             acc = acc (+|*|max|min) value
 *         out[out_idx...] = result     (result reads acc; with reduce == NONE, result = value)
 * Index expressions are integer (int64) expressions over loop variables; loads may appear inside
 * index expressions (Gather). Everything is generic over element type: each expression carries
 * its dtype and back ends pick instructions from it.
 * ====================================================================================== */
#define KL_MAX_LOOPS 16

typedef enum kl_buffer_kind {
    KL_BUF_INPUT,      /* graph input: a predict() argument */
    KL_BUF_OUTPUT,     /* graph output: a predict() argument */
    KL_BUF_CONST,      /* weights: constant data in the object */
    KL_BUF_WORKSPACE,  /* intermediate: an offset in the caller's workspace */
} kl_buffer_kind;

typedef struct kl_buffer {
    const char *name;
    kl_buffer_kind kind;
    kl_dtype dtype;
    kl_shape shape;
    int index;          /* INPUT / OUTPUT: argument position */
    const void *data;   /* CONST: contents */
    int64_t offset;     /* WORKSPACE: byte offset, set by the planner */
    int first_kernel;   /* liveness, set by the planner (kernel indices) */
    int last_kernel;
    void *host;         /* interpreter only: memory that backs the buffer */
    struct kl_buffer *view_of; /* non-NULL: no storage of its own; the same bytes as that
                                  buffer (itself not a view), read/written with this shape.
                                  Back ends take the pointer of view_of; the planner gives
                                  view_of the union of both lifetimes. */
    int id;
    /* Bounded models (kl_program.dims), every buffer the lowering made: dim d is dyn_a[d] * n
     * + dyn_b[d] at run time, n being the bounded dim's value (dyn_a[d] == 0: fixed). NULL for
     * every buffer of a static model. */
    const int64_t *dyn_a, *dyn_b;
    /* A data-dependent output (ops/data_dependent.c): non-NULL, dim dd_dim's run-time length is
     * the int64 in this one-element workspace buffer (written by the node's kernels; the data
     * is dense at the run-time shape). shape.dim[dd_dim] is its bound. */
    struct kl_buffer *dd_count;
    int dd_dim;
    bool is_count;   /* some buffer's dd_count: the entry reads it, so its kernel stays */
} kl_buffer;
int64_t kl_buffer_bytes(const kl_buffer *b);
/* The buffer that owns the storage (b itself unless b is a view). */
static inline kl_buffer *kl_buffer_root(kl_buffer *b) { return b->view_of ? b->view_of : b; }

typedef enum kl_expr_kind {
    KL_E_CONST,   /* constant scalar: f (floats) or i (integers, bool) */
    KL_E_IV,      /* loop variable number `iv` (int64) */
    KL_E_LOAD,    /* buf[idx[0], ..., idx[rank-1]] (indices int64) */
    KL_E_ACC,     /* the accumulator (only in `result`) */
    KL_E_UNARY,
    KL_E_BINARY,
    KL_E_SELECT,  /* a ? b : c  (a is bool) */
    KL_E_CAST,    /* convert a to dtype (ONNX Cast semantics: float->int truncates); `op`
                     holds KL_CAST_* bits for float8/float4 targets (0: ONNX's default) */
    KL_E_BITCAST, /* a's bits read as dtype, of the same byte size (ONNX BitCast); bool is a
                     byte: to an integer 0 or 1, from one true where nonzero */
    KL_E_STRING,  /* a string routine (kl_strop `op`) of runtime-min/kiln_string.h on string
                     operands a (and b; the split routines also c and i); the builders and
                     KL_STR_FAILED use the program's string arena `buf` (kl_program.strings),
                     KL_STR_REGEX_MATCH reads its DFA table `buf` (kiln_regex.h) */
} kl_expr_kind;

/* KL_E_STRING's routines. A string value is a `const char *` (NUL-terminated UTF-8). The
 * builders write a new string into the arena and yield it; when the arena is full they yield
 * "" and mark the arena failed, which the check after their kernel turns into
 * KILN_E_STRING_BYTES (kl_lower_string_check). Case mapping is ASCII only. */
typedef enum kl_strop {
    KL_STR_EQ,        /* bool: a equals b, byte for byte */
    KL_STR_EQ_NOCASE, /* bool: a equals b ignoring ASCII case */
    KL_STR_CONCAT,    /* string: a then b (builder) */
    KL_STR_LOWER,     /* string: a with ASCII A-Z lowered (builder) */
    KL_STR_UPPER,     /* string: a with ASCII a-z raised (builder) */
    KL_STR_FAILED,    /* int32: 1 when a builder ran out of arena since the last reset */
    KL_STR_SPLIT_COUNT, /* int64: how many pieces Python's a.split(b or None, i) cuts (the
                           expression's `i` holds maxsplit, < 0: no limit) */
    KL_STR_SPLIT_PIECE, /* string: piece c (int64) of that split, "" past the last (builder) */
    KL_STR_REGEX_MATCH, /* bool: the whole of a matches the pattern whose DFA table (uint16,
                           runtime-min/kiln_regex.h) is the constant buffer `buf` */
} kl_strop;

/* KL_E_CAST's op to a float8 / float4 type (the values of runtime-min/kiln_minifloat.h's
 * KILN_MF_* bits). Every other expression of such a type rounds as the default does. */
#define KL_CAST_NO_SATURATE 1     /* out of range -> Inf (float8e5m2) or NaN, not +-max */
#define KL_CAST_ROUND_DOWN 2      /* float8e8m0: toward zero (default: away from zero) */
#define KL_CAST_ROUND_NEAREST 4   /* float8e8m0: to nearest (ONNX's reference rule) */
/* Storing a value already rounded to its type: exact (e8m0's 2^-127 is a float32 subnormal
 * that rounding up would move). */
#define KL_CAST_STORE (KL_CAST_NO_SATURATE | KL_CAST_ROUND_DOWN)

typedef enum kl_unop {
    KL_NEG, KL_ABS, KL_SQRT, KL_EXP, KL_LOG, KL_TANH, KL_ERF, KL_FLOOR, KL_CEIL,
    KL_ROUND,   /* half to even */
    KL_NOT,     /* bool */
    KL_SIGMOID, KL_RECIP, KL_SIN, KL_COS,
    KL_UNOP_COUNT
} kl_unop;

typedef enum kl_binop {
    KL_ADD, KL_SUB, KL_MUL, KL_DIV,   /* integer DIV truncates toward zero */
    KL_MIN, KL_MAX,                   /* float: NaN-propagating like ONNX Runtime */
    KL_POW,
    KL_MOD,                           /* integer remainder with the sign of the divisor (ONNX Mod fmod=0) */
    KL_FMOD,                          /* C fmod semantics (sign of dividend) */
    KL_EQ, KL_NE, KL_LT, KL_LE, KL_GT, KL_GE,   /* result dtype BOOL */
    KL_AND, KL_OR, KL_XOR,            /* bool or integer bitwise */
    KL_BINOP_COUNT
} kl_binop;

typedef struct kl_expr kl_expr;
struct kl_expr {
    kl_expr_kind kind;
    kl_dtype dtype;     /* type of the result */
    int op;             /* kl_unop / kl_binop */
    double f;           /* CONST (float types) */
    int64_t i;          /* CONST (integer / bool types); IV: loop number */
    kl_buffer *buf;     /* LOAD */
    kl_expr **idx;      /* LOAD: buf->shape.rank index expressions */
    kl_expr *a, *b, *c; /* operands */
};
/* Whether a string expression writes into or reads the state of the string arena. */
bool kl_strop_uses_arena(kl_strop op);
/* KL_STR_SPLIT_COUNT (piece NULL) or KL_STR_SPLIT_PIECE of string s cut at delim (a string;
 * "" for runs of whitespace), at most maxsplit times (< 0: no limit). */
kl_expr *kl_e_string_split(kl_arena *a, kl_buffer *arena, kl_expr *s, kl_expr *delim,
                           int64_t maxsplit, kl_expr *piece);
/* KL_STR_REGEX_MATCH of string s against the DFA table `dfa` (ops/regex.h builds it). */
kl_expr *kl_e_regex_match(kl_arena *a, kl_buffer *dfa, kl_expr *s);

typedef enum kl_reduce {
    KL_RED_NONE, KL_RED_SUM, KL_RED_PROD, KL_RED_MAX, KL_RED_MIN,
} kl_reduce;

/* How a back end runs a loop (the schedule). Semantics never depend on it: the interpreter
 * ignores it, and every schedule computes the same values (up to the reassociation of sums). */
typedef enum kl_loop_kind {
    KL_LOOP_SERIAL = 0,  /* an ordinary loop */
    KL_LOOP_UNROLL,      /* fully unrolled: a copy of the body per iteration (register block) */
    KL_LOOP_VECTOR,      /* SIMD: ceil(extent / lanes) vectors, the last one masked if partial */
} kl_loop_kind;

/* A GEMM micro-kernel that replaces a blocked kernel's jammed reduction (the tile pass asks
 * for one where the back end has them: libxsmm's on x86-64 with AVX2 or AVX-512). Column-major:
 * C[m x n] += A[m x k] * B[k x n], where C is the block of the output (m along the VECTOR
 * loop, n along the UNROLL loop, ldc apart), A the load in `value` that walks the VECTOR loop,
 * B the one that walks the UNROLL loop, and k the innermost `merged` reduction loops; the outer
 * reduction loops call the micro-kernel once per iteration. The block's init is stored into C
 * first and its result computed from C afterwards. */
typedef struct kl_micro {
    int m, n, k, lda, ldb, ldc;  /* elements */
    const kl_expr *a, *b;        /* the operand loads (nodes of the kernel's value) */
    int merged;
} kl_micro;

/* A kernel's guard: it runs only when the one bool element of every level's `cond` equals
 * `when` (the run-time levels of its node's kl_guard; constant levels are settled before
 * lowering). Back ends test it before the kernel; passes never move work across guards. */
typedef struct kl_kernel_guard {
    struct kl_buffer *cond;
    bool when;
    const struct kl_kernel_guard *outer;
} kl_kernel_guard;

typedef struct kl_kernel {
    const char *name;        /* unique C identifier, e.g. "k12_conv1" */
    const kl_kernel_guard *guard; /* NULL: always runs */
    const kl_node *node;     /* the node it came from (diagnostics, dumps) */
    int n_loops, n_par;      /* loops [0, n_par) parallel, [n_par, n_loops) reduction */
    int64_t extent[KL_MAX_LOOPS];
    /* NULL, or loop l's extent at run time, an int64 expression over the program's `dims`
     * buffer (bounded models) or over a count a kernel before computed (data-dependent
     * outputs); never above extent[l], the extent at the bound; it may be 0. */
    kl_expr *extent_expr[KL_MAX_LOOPS];
    /* Schedule, set by the tile pass (kernel/tile.c). The last n_block parallel loops form the
     * register block: each is UNROLL or VECTOR (at most one VECTOR), and the back end jams them
     * into the reduction, so the innermost body updates one accumulator per point of the
     * block (a vector per VECTOR chunk) and every load that does not depend on a block loop is
     * shared by all of them. Reduction loops and the outer parallel loops stay SERIAL. */
    kl_loop_kind kind[KL_MAX_LOOPS];
    int n_block;
    int lanes;               /* SIMD lanes of the VECTOR loop's vectors */
    kl_micro *micro;         /* NULL: the back end jams the block itself */
    /* The parallel loop that threads split (parallel entry point), or -1: outer, not in the
     * block. Set by the tile pass; kernels too small to be worth a thread keep -1. */
    int task_loop;
    kl_reduce reduce;
    kl_dtype acc_dtype;
    kl_expr *init;           /* accumulator start (over parallel ivs); NULL = identity of reduce */
    kl_expr *value;          /* per innermost iteration */
    kl_expr *result;         /* stored value; may use KL_E_ACC; NULL = acc (or value if NONE) */
    kl_buffer *out;
    kl_expr **out_idx;       /* out->shape.rank index expressions over parallel ivs */
    /* Nonzero: a check (ops/index_check.c): right after the kernel, a nonzero first element
     * of `out` makes predict return this KILN_E_* code (the interpreter: a diagnostic). */
    int error_code;
    /* Software prefetch (kernel/prefetch.c), or NULL: in each step of the reduction the back end
     * asks the cache for element prefetch_at of prefetch_buf (an int64 expression over the loops
     * outside the register block; clamped to the buffer, a hint that never changes results). */
    kl_buffer *prefetch_buf;
    kl_expr *prefetch_at;
} kl_kernel;

/* A branch left out of the program (kl_guard.broken): after the last kernel, predict returns
 * KILN_E_UNCOMPILED_BRANCH when `guard` holds (its conditions stay live to the end). */
typedef struct kl_trap {
    const kl_kernel_guard *guard;
    const char *why;         /* the If node and what failed, for the header */
} kl_trap;

/* A lowered model: kernels in execution order over buffers. */
typedef struct kl_program {
    kl_arena *arena;
    kl_ptrvec kernels;       /* kl_kernel* */
    kl_ptrvec buffers;       /* kl_buffer* (all kinds) */
    kl_ptrvec inputs;        /* kl_buffer* in graph-input order */
    kl_ptrvec outputs;       /* kl_buffer* in graph-output order */
    kl_ptrvec traps;         /* kl_trap* */
    int64_t workspace_size;  /* set by the planner */
    int64_t intermediates_total; /* sum of all workspace buffers (no reuse), set by the planner */
    /* A model with a bounded dim (kernel/bounded.c): `dims` is the int64 workspace slot that
     * holds its run-time value (entries write it before the first kernel, kernels read it);
     * NULL for a static model. */
    kl_buffer *dims;
    const char *bounded_name;   /* the dim's name for messages and the header */
    int64_t bounded_min, bounded_max;
    /* A model whose operators build strings (StringConcat, StringNormalizer's case change):
     * the workspace buffer their bytes go to (int64 [2 + capacity / 8]: bytes used, a failed
     * flag, then the bytes), reset by the program's first kernel and alive to the end (the
     * outputs point into it). NULL when no operator builds strings. */
    kl_buffer *strings;
    kl_kernel *strings_reset;   /* the kernel that resets it (kl_program_strings_first) */
} kl_program;
/* Bytes of new strings a run may build when the compile options say nothing (--string-bytes) */
#define KL_STRING_BYTES_DEFAULT 65536
/* The string arena's capacity in bytes (0 without one). */
int64_t kl_program_string_bytes(const kl_program *p);
/* Give the string arena (if any) `bytes` bytes of capacity (rounded up to 8); false with a
 * diagnostic when that is not a size kiln plans. */
bool kl_program_size_strings(kl_program *p, int64_t bytes, kl_diag *d);
/* Put the string arena's reset kernel (if any) first, once every operator is lowered. */
void kl_program_strings_first(kl_program *p);
/* Whether k builds strings or reads or resets the arena's state: such a kernel keeps its place
 * and its serial loops (no fusion, no threads). */
bool kl_kernel_uses_string_arena(const kl_program *p, const kl_kernel *k);
/* Whether some output of p has a data-dependent dim (kl_buffer.dd_count). */
bool kl_program_data_dependent(const kl_program *p);
/* Whether k depends on the run-time value of a bounded dim (an extent or a load of p->dims):
 * the kernel passes that reshape loops leave such kernels alone. */
bool kl_kernel_bounded(const kl_program *p, const kl_kernel *k);

/* kernel/bounded.c — a bounded dim's run-time value through the program. `load` loads the
 * model with the given bindings and runs the graph passes (the driver's first phases); the
 * program p, lowered at the bound, gets its extents, constants and interface dims as
 * expressions of the run-time value, and its `dims` slot. */
typedef kl_graph *(*kl_probe_fn)(void *ctx, kl_arena *a, const kl_shape_binding *b, int n,
                                 kl_diag *d);
bool kl_bounded_annotate(kl_program *p, const kl_shape_binding *b, int n, kl_probe_fn load,
                         void *ctx, kl_diag *d);
/* a * n + b as an int64 expression, n the bounded dim's run-time value (p->dims). */
kl_expr *kl_bounded_affine(kl_program *p, int64_t a, int64_t b);
/* kernel/bounded_io.c — inputs and outputs whose dense layout differs from the padded one get
 * a padded workspace copy and copy kernels (called by kl_bounded_annotate). */
bool kl_bounded_copy_io(kl_program *p, kl_diag *d);
/* A view whose padded layout differs from its root's becomes a buffer of its own: a kernel
 * copies the root in (dense order) before its first reader, and back after its last writer. */
void kl_bounded_materialize_view(kl_program *p, kl_buffer *view);

/* kernel/expr.c — builders (all allocate from the arena) */
kl_expr *kl_e_const_f(kl_arena *a, kl_dtype t, double v);
kl_expr *kl_e_const_i(kl_arena *a, kl_dtype t, int64_t v);
kl_expr *kl_e_idx(kl_arena *a, int64_t v);               /* int64 constant, for indices */
kl_expr *kl_e_iv(kl_arena *a, int loop);
kl_expr *kl_e_load(kl_arena *a, kl_buffer *b, kl_expr **idx); /* copies idx[0..rank) */
kl_expr *kl_e_acc(kl_arena *a, kl_dtype t);
kl_expr *kl_e_unary(kl_arena *a, kl_unop op, kl_expr *x);
kl_expr *kl_e_binary(kl_arena *a, kl_binop op, kl_expr *x, kl_expr *y); /* same dtype operands */
kl_expr *kl_e_select(kl_arena *a, kl_expr *cond, kl_expr *x, kl_expr *y);
kl_expr *kl_e_cast(kl_arena *a, kl_dtype t, kl_expr *x);  /* returns x when already of type t */
/* x's bits as type t (sizes must match: kl_dtype_size(t) == kl_dtype_size(x->dtype)). */
kl_expr *kl_e_bitcast(kl_arena *a, kl_dtype t, kl_expr *x);
/* A string routine (kl_strop) on x (and y for the two-operand ones; else NULL); `arena` is the
 * program's string arena for the ones that use it (kl_strop_uses_arena), else NULL. */
kl_expr *kl_e_string(kl_arena *a, kl_strop op, kl_buffer *arena, kl_expr *x, kl_expr *y);
/* Index arithmetic with constant folding of trivial cases (x*1, x+0, ...). */
kl_expr *kl_e_add(kl_arena *a, kl_expr *x, kl_expr *y);
kl_expr *kl_e_mul(kl_arena *a, kl_expr *x, kl_expr *y);
kl_expr *kl_e_addc(kl_arena *a, kl_expr *x, int64_t c);
kl_expr *kl_e_mulc(kl_arena *a, kl_expr *x, int64_t c);
/* 0 <= x < n as a bool expression */
kl_expr *kl_e_in_range(kl_arena *a, kl_expr *x, int64_t n);
kl_expr *kl_e_and(kl_arena *a, kl_expr *x, kl_expr *y); /* bool and; NULL operand = true */

/* kernel/program.c — building a program during lowering */
kl_program *kl_program_new(kl_arena *a);
kl_buffer *kl_program_buffer(kl_program *p, const char *name, kl_buffer_kind kind, kl_dtype t,
                             const kl_shape *s);
/* A view of `base` (or of base's root) with another shape of the same byte size. */
kl_buffer *kl_program_view(kl_program *p, kl_buffer *base, const kl_shape *s);
kl_kernel *kl_kernel_new(kl_program *p, const kl_node *node, const char *tag);
/* Iterations of k's whole loop nest (saturating). */
int64_t kl_kernel_iterations(const kl_kernel *k);
/* Floating-point work of a kernel as profilers count it: 2 x multiply-adds of a sum of
 * products (a contraction), 0 for any other kernel. */
int64_t kl_kernel_flops(const kl_kernel *k);
/* Whether k loads from root's storage anywhere (values, indices, its guard's conditions;
 * root: a buffer, not a view). */
bool kl_kernel_reads(const kl_kernel *k, const kl_buffer *root);
/* Whether some level of g tests root's storage. */
bool kl_guard_reads(const kl_kernel_guard *g, const kl_buffer *root);
void kl_program_add_kernel(kl_program *p, kl_kernel *k);
void kl_kernel_dump(const kl_kernel *k, FILE *f);
void kl_program_dump(const kl_program *p, FILE *f);

/* kernel/rewrite.c — the algebra kernel passes transform loop nests with */
typedef struct kl_affine {
    int64_t coef[KL_MAX_LOOPS];  /* c + sum of coef[l] * i_l */
    int64_t c;
} kl_affine;
/* e as an affine form over the loop variables; false if it is not one. */
bool kl_affine_of(const kl_expr *e, kl_affine *out);
/* The linear element offset of b[idx...] as an affine form. */
bool kl_affine_offset(const kl_buffer *b, kl_expr *const *idx, kl_affine *out);
/* Smallest and largest value of a over loops [0, n_loops) of the given extents. */
void kl_affine_range(const kl_affine *a, const int64_t *extent, int n_loops, int64_t *lo,
                     int64_t *hi);
/* e with loop variable l replaced by iv_map[l] wherever iv_map[l] is non-NULL (the DAG's
 * sharing is kept). */
kl_expr *kl_expr_subst(kl_arena *a, const kl_expr *e, kl_expr *const *iv_map);
void kl_kernel_subst(kl_arena *a, kl_kernel *k, kl_expr *const *iv_map);
/* The same, and every rebuilt node (its operands and indices already rebuilt and substituted)
 * is offered to `hook`, which returns its replacement or NULL to keep it. */
typedef kl_expr *(*kl_rewrite_hook)(void *ctx, kl_arena *a, const kl_expr *node);
kl_expr *kl_expr_rewrite(kl_arena *a, const kl_expr *e, kl_expr *const *iv_map, kl_rewrite_hook hook,
                         void *ctx);
void kl_kernel_rewrite(kl_arena *a, kl_kernel *k, kl_expr *const *iv_map, kl_rewrite_hook hook,
                       void *ctx);
/* A deep copy of k named NAME_suffix (not added to the program). */
kl_kernel *kl_kernel_clone(kl_program *p, const kl_kernel *k, const char *suffix);
/* Loop l runs over [begin, begin + extent) of its old range, renumbered from 0. */
void kl_kernel_offset_loop(kl_arena *a, kl_kernel *k, int l, int64_t begin, int64_t extent);
/* Loop l (extent a multiple of inner) becomes loops l (outer) and l + 1 (inner, extent inner);
 * false when it cannot be split. */
bool kl_kernel_split_loop(kl_arena *a, kl_kernel *k, int l, int64_t inner);
/* Reorder the loops: order[new position] = old loop (a permutation that keeps the parallel
 * loops before the reduction loops). */
void kl_kernel_permute_loops(kl_arena *a, kl_kernel *k, const int *order);
/* Fold the integer comparisons the loops' ranges decide (bounds tests that always hold) and
 * the selects, ands and ors they settle. */
void kl_kernel_simplify(kl_arena *a, kl_kernel *k);

/* kernel/interp.c — the reference interpreter (constant folding, `kiln check --interp`).
 * Every buffer a kernel touches must have `host` set. */
bool kl_interp_kernel(const kl_kernel *k, kl_diag *d);
bool kl_interp_program(const kl_program *p, kl_diag *d);

/* ======================================================================================
 * ops/ — the op table
 *
 * One entry per operator: domain, name, supported opset range, attribute schema, shape
 * inference and lowering. Lowering builds kernels through kl_lower (ops/lower.c).
 * ====================================================================================== */
typedef struct kl_lower kl_lower;

typedef struct kl_op {
    const char *domain;      /* "" = ai.onnx */
    const char *name;
    int since, until;        /* supported opset versions of the domain, inclusive */
    const char *const *attrs;/* NULL-terminated list of accepted attribute names */
    /* Set dtype and shape of every present output from the inputs (and attributes). May also
     * set outputs' `data` directly when the value is known without computing (Shape). */
    bool (*infer)(kl_node *n, kl_diag *d);
    /* Emit kernels computing the outputs from the inputs. */
    bool (*lower)(kl_lower *L, kl_node *n, kl_diag *d);
    /* Non-NULL and true for this node: output 0 holds input 0's bytes in the same order (Reshape
     * and its kind), and the lowering goes through kl_lower_view, which aliases the two buffers
     * where that is legal. kl_lower_graph also reads it to alias the other way (see lower.c). */
    bool (*view)(const kl_node *n);
    /* Output 0 may be omitted (RNN, GRU, LSTM: Y): infer gives the node a fresh value for it,
     * so no pass ever meets a NULL output 0. */
    bool out0_optional;
    /* Compile-time structure (sequences, optionals: ops/sequence.c): shape inference calls it
     * instead of infer. It records the structure of the outputs or rewrites the node into
     * tensor operators (new nodes, which inference takes next), and kills the node. */
    bool (*settle)(kl_graph *g, kl_node *n, kl_diag *d);
} kl_op;

/* ops/table.c */
const kl_op *kl_op_find(const char *domain, const char *name, int opset);
/* true if some opset of the op exists in the table (to tell "unsupported opset" from
 * "unknown operator"). */
bool kl_op_known(const char *domain, const char *name);

/* ops/lower.c — the lowering context */
struct kl_lower {
    kl_arena *arena;
    kl_program *prog;
    kl_buffer **buf_of_value;  /* indexed by kl_value.id */
    int n_values;
};
/* The buffer holding a value (created on first request: CONST for constants, INPUT/OUTPUT for
 * graph inputs/outputs, WORKSPACE otherwise). */
kl_buffer *kl_lower_buffer(kl_lower *L, kl_value *v);
/* A scratch buffer in the workspace (e.g. Softmax's running max). */
kl_buffer *kl_lower_temp(kl_lower *L, const char *name, kl_dtype t, const kl_shape *s);
/* ops/index_check.c — before a kernel that reads at positions given by the run-time index
 * buffer `ind`: a check that every index lies in [-limit, limit), else predict returns
 * KILN_E_INDEX_OUT_OF_RANGE. One limit for all indices (n_limits 1), or one per position
 * along the last axis of `ind` (index tuples). Constant indices are checked at once (false:
 * a diagnostic). */
/* A check kernel: a reduction over the loops of `over` whose one-element flag (`flag_name`) is
 * 1 where the bool expression `bad` holds at any point; predict then returns `error_code`
 * (kl_kernel.error_code). */
void kl_lower_check_any(kl_lower *L, const kl_node *n, const char *tag, const char *flag_name,
                        const kl_shape *over, kl_expr *bad, int error_code);
bool kl_lower_index_check(kl_lower *L, const kl_node *n, kl_buffer *ind, const int64_t *limits,
                          int n_limits, kl_diag *d);
/* ops/shape_check.c — a shape-carrying input given at run time where the model declares the
 * output's shape: whether input i is such an input; inference (output 0 takes its declared
 * shape, else a diagnostic naming input i); element i of the (1-D or scalar) integer input as
 * int64; and the check that makes predict return KILN_E_SHAPE unless `ok` (bool) holds. */
bool kl_input_at_run_time(kl_node *n, int i);
bool kl_infer_declared(kl_node *n, int input, kl_diag *d);
/* For a message saying run-time value v would need to be known when compiling: "; it is
 * computed from graph input 'x': --value ..." naming the graph inputs it comes from (each also
 * recorded by kl_diag_need_value), or "" when it comes from none. */
void kl_value_binding_hint(kl_diag *d, const kl_value *v, char *buf, size_t cap);
kl_expr *kl_lower_int_at(kl_lower *L, kl_node *n, int input, int64_t i);
void kl_lower_shape_check(kl_lower *L, const kl_node *n, kl_expr *ok);
/* The check of a graph input bound to one value (kl_value.bound_value): KILN_E_SHAPE when the
 * input holds another. */
void kl_lower_bound_value_check(kl_lower *L, kl_value *input);
/* The check that the scalar (or first element of) integer input `input` is `want`. */
void kl_lower_check_int_input(kl_lower *L, kl_node *n, int input, int64_t want);
/* The axes input (`input`, counted against `rank` dimensions) lists exactly the axes of `mask`
 * (bit d: axis d): its length must be the mask's size, so that none is listed twice. */
kl_expr *kl_lower_axes_are(kl_lower *L, kl_node *n, int input, int rank, unsigned mask);
/* Load of `b` broadcast to a result of rank `out_rank` indexed by loop variables 0..out_rank-1
 * (numpy broadcasting: b's dims align right; size-1 dims read index 0). */
kl_expr *kl_lower_load_broadcast(kl_lower *L, kl_buffer *b, int out_rank);
/* Store index list for a full-rank output indexed by loops 0..rank-1. */
kl_expr **kl_lower_ivs(kl_lower *L, int rank);
/* Elementwise helper: one kernel over the output shape, each present input loaded with
 * broadcasting, combined by `fn`. */
typedef kl_expr *(*kl_elementwise_fn)(kl_lower *L, const kl_node *n, kl_expr **in, int n_in);
bool kl_lower_elementwise(kl_lower *L, kl_node *n, kl_elementwise_fn fn);
/* ops/strings.c — the string arena: created (with the kernel that resets it, placed first) by
 * the first operator that builds strings; and the check after a kernel that built strings,
 * which makes predict return KILN_E_STRING_BYTES when the arena ran out. */
kl_buffer *kl_lower_string_arena(kl_lower *L);
void kl_lower_string_check(kl_lower *L, const kl_node *n);
/* Inference: input i is present and a string tensor (else a diagnostic). */
bool kl_infer_need_strings(kl_node *n, int i, kl_diag *d);
/* A constant string tensor [n] of the object's read-only data, and one string (a load). */
kl_buffer *kl_lower_string_table(kl_lower *L, const char *name, const char *const *items, int n);
kl_expr *kl_lower_string_const(kl_lower *L, const char *name, const char *text);
/* Copy a whole buffer into another of the same element count. */
bool kl_lower_copy(kl_lower *L, const kl_node *n, kl_buffer *src, kl_buffer *dst);
/* `out` holds `in`'s bytes in the same order (Reshape & co.): its buffer becomes a view of in's
 * storage, or, where that is not legal (out is a graph output, or already has a buffer of its
 * own), a copy kernel is emitted. */
bool kl_lower_view(kl_lower *L, const kl_node *n, kl_value *in, kl_value *out);
/* `out` is the constant buffer `table` that the lowering made (the random generators' draws):
 * readers load the weights themselves. Where out needs storage of its own (a graph output, a
 * buffer it has already, as when folding), a copy kernel fills it from the table instead. */
bool kl_lower_constant(kl_lower *L, const kl_node *n, kl_value *out, kl_buffer *table);
/* ops/data_dependent.c — outputs whose length depends on the data (NonZero, Compress,
 * Unique). Inference sets output `out` to type t and the `bound` shape, its dim `dim` varying
 * at run time up to the bound. */
bool kl_infer_data_dependent(kl_node *n, int out, kl_dtype t, const kl_shape *bound, int dim);
/* After a node is inferred: its inputs of data-dependent length must share one, and the
 * outputs that keep that length get it (shape inference calls it on every node; a node whose
 * outputs do not keep it is refused with a message). */
bool kl_follow_data_dependent(kl_node *n, kl_diag *d);
/* Before n is lowered: a graph output of n that the length reaches after a dim larger than 1
 * is computed into a workspace buffer of the padded layout instead (kl_lower_dd_follow then
 * copies it densely into the output). */
void kl_lower_dd_pad_outputs(kl_lower *L, kl_node *n);
/* After n (reading a value of data-dependent length) is lowered into kernels [first, end):
 * their loops along the varying dim run to the count (a message where a kernel reads it any
 * other way than along a loop), and the outputs kl_lower_dd_pad_outputs padded are copied. */
bool kl_lower_dd_follow(kl_lower *L, kl_node *n, int first, kl_diag *d);
/* The node's run-time length: a one-element int64 workspace buffer; kl_lower_dd_mark tells
 * the data-dependent output value v (NULL: omitted) that its varying dim is that length. */
kl_buffer *kl_lower_dd_count(kl_lower *L, const kl_node *n);
/* Output v's length as an int64 expression of the node's operands (a Split size, an If's
 * choice): a count of v's own, which a one-element kernel writes; v is marked with it. */
kl_buffer *kl_lower_dd_set_length(kl_lower *L, const kl_node *n, kl_value *v, kl_expr *length);
void kl_lower_dd_mark(kl_lower *L, kl_value *v, kl_buffer *count);
/* count[0] as an int64 expression (a run-time extent). */
kl_expr *kl_lower_dd_length(kl_lower *L, kl_buffer *count);
/* The run-time length of value v along its data-dependent dim (v already lowered). */
kl_expr *kl_lower_dd_length_of(kl_lower *L, kl_value *v);
/* count[0] = #{i < extent : cond}, cond over loop variable 1. */
kl_kernel *kl_lower_dd_count_kernel(kl_lower *L, const kl_node *n, kl_buffer *count,
                                    int64_t extent, kl_expr *cond);
/* A condition on position i (an int64 expression) of some sequence. */
typedef kl_expr *(*kl_cond_fn)(void *ctx, kl_arena *a, kl_expr *i);
/* positions[k] = the k-th j < len (from 0) where cond(j) holds, for k below the number of
 * them (int64 [len]; the entries after it hold len). O(len^1.5). */
kl_buffer *kl_lower_true_positions(kl_lower *L, const kl_node *n, int64_t len, kl_cond_fn cond,
                                   void *ctx);
/* k's store into data-dependent output `out` (varying dim `dim`, length in count) at the
 * element idx[0..rank) of its run-time shape, written densely at that shape. */
void kl_lower_dd_store(kl_lower *L, kl_kernel *k, kl_buffer *out, int dim, kl_buffer *count,
                       kl_expr *const *idx);
/* Lower a whole graph (after passes) to a program. */
kl_program *kl_lower_graph(kl_arena *a, kl_graph *g, kl_diag *d);

/* ops/control.c — an If whose condition folded to a constant drops the other branch's
 * outputs from its inputs (shape inference calls it before inferring the node). */
bool kl_if_settle(kl_graph *g, kl_node *n, kl_diag *d);
/* ops/sequence.c — an If whose branches give sequences or optionals becomes an If over their
 * tensors, an Identity of one passes it on (n killed, a replacement added; nothing to do:
 * n stays as it is). Shape inference calls it before inferring an If or an Identity. */
bool kl_sequence_settle_carrier(kl_graph *g, kl_node *n, kl_diag *d);
/* The tensors of a sequence (a pending SplitToSequence's pieces built first); NULL after a
 * diagnostic. */
kl_value **kl_sequence_items(kl_graph *g, kl_compound *c, kl_diag *d);

/* passes/seqio.c — sequences and optionals at the graph interface. Each becomes tensors of the
 * generated interface, NAME[0], NAME[1], ...: an input's are made by the loader, an output's
 * here (after inference: an Identity of each tensor, named so, replaces the output; an empty
 * optional gives none). g->compound_io records where each one's tensors are. */
typedef struct kl_compound_io {
    const char *name;      /* the ONNX input or output */
    bool input;            /* a graph input (else an output) */
    bool optional;         /* an optional (else a sequence) */
    bool sequence;         /* a sequence, or an optional of one */
    bool present;          /* an optional holds a value */
    int first, count;      /* its tensors: inputs/outputs first .. first+count-1 */
} kl_compound_io;
bool kl_flatten_compound_outputs(kl_graph *g, kl_diag *d);

/* ops/infer_util.c — shared shape-inference helpers */
bool kl_infer_same_as_input(kl_node *n, kl_diag *d);       /* out0 = in0 type & shape */
bool kl_infer_broadcast(kl_node *n, kl_diag *d);           /* multidirectional over all inputs */
bool kl_infer_set(kl_node *n, int out, kl_dtype t, const kl_shape *s);
/* Require input i present with a known shape (error otherwise). */
bool kl_infer_need_input(kl_node *n, int i, kl_diag *d);
/* Require input i to be a compile-time constant (error naming the input otherwise). */
bool kl_infer_need_const(kl_node *n, int i, kl_diag *d);

/* ======================================================================================
 * passes/ — graph passes: bool pass_NAME(kl_graph *, kl_diag *)
 * ====================================================================================== */
typedef struct kl_pass {
    const char *name;
    bool (*run)(kl_graph *g, kl_diag *d);
    bool speed_only;   /* trades workspace or code for speed: skipped when optimizing for size */
} kl_pass;
extern const kl_pass kl_passes[];     /* the pass list, in order, NULL-terminated by name */
bool pass_resolve_ops(kl_graph *g, kl_diag *d);   /* bind op table entries, list unsupported */
bool pass_infer_shapes(kl_graph *g, kl_diag *d);  /* infer + fold constants, node by node */
/* For the loader: the unguarded nodes that compute v inferred (and folded) now, ahead of the
 * pass, so that a Scan over a computed tensor knows its length when it is unrolled. False,
 * with diagnostics in d, when they cannot be yet; the pass infers them again either way. */
bool kl_infer_value_now(kl_graph *g, kl_value *v, kl_diag *d);
bool pass_dead_nodes(kl_graph *g, kl_diag *d);    /* drop folded and unused nodes */
/* fold BatchNormalization / per-channel Mul, Add, Sub into the Conv before them */
bool pass_fold_batchnorm(kl_graph *g, kl_diag *d);
/* channels-last convolutions and pools, transposes sunk and cancelled (passes/layout.c) */
bool pass_layout(kl_graph *g, kl_diag *d);
/* Evaluate one node whose inputs are all constant through its lowering and the interpreter,
 * storing the results in the outputs' `data`. (passes/fold.c) */
bool kl_fold_node(kl_graph *g, kl_node *n, kl_diag *d);

/* ======================================================================================
 * plan/plan.c — the memory plan
 * ====================================================================================== */
/* Liveness over kernel order, then greedy-by-size offsets (64-byte aligned) in one workspace. */
bool kl_plan_memory(kl_program *p, kl_diag *d);

/* ======================================================================================
 * targets/ — target descriptors (data only)
 * ====================================================================================== */
/* What lowering optimizes for: speed (register blocks, unrolling, channels-last copies), or
 * size (the forms needing no extra workspace and no code multiplied by blocks/regions), which
 * microcontrollers prefer because RAM and flash are what they lack. */
typedef enum kl_optimize_for {
    KL_FOR_TARGET = 0,         /* as the target descriptor says (a descriptor's 0: speed) */
    KL_FOR_SPEED,
    KL_FOR_SIZE,
} kl_optimize_for;
/* Who writes a target's kernels. The host code (entry points, the model table) is always LLVM
 * code for the descriptor's triple. */
typedef enum kl_backend {
    KL_BACKEND_LLVM = 0,       /* CPUs: kernels are LLVM functions in the object */
    KL_BACKEND_CUDA,           /* NVIDIA GPUs: kernels are CUDA C compiled by NVRTC into a cubin
                                  embedded in the object; the host side launches them */
} kl_backend;

/* One CPUID test: the bits of register `reg` (0 eax, 1 ebx, 2 ecx, 3 edx) of leaf `leaf`
 * (sub-leaf 0) that must all be set. */
typedef struct kl_cpuid_bits {
    uint32_t leaf;
    int reg;
    uint32_t bits;
} kl_cpuid_bits;
typedef struct kl_target {
    const char *name;          /* "x86-64-v3" */
    const char *triple;        /* LLVM triple (of the host code, for a GPU target) */
    const char *cpu;           /* LLVM CPU name (KL_TARGET_NATIVE: the host's, resolved) */
    const char *features;      /* LLVM feature string (KL_TARGET_NATIVE: the host's) */
    const char *description;   /* one line for `kiln targets` */
    int vector_bits;           /* SIMD register width the tile pass vectorizes for */
    int vector_registers;      /* SIMD registers (the register block's budget) */
    int l1_bytes, l2_bytes;
    const char *float_abi;     /* "hard", "soft", "" (default) */
    bool hosted;               /* has an OS, threads, libc */
    const char *runtime_bitcode; /* name of the embedded runtime-min bitcode for this target */
    int isa_level;             /* x86-64 psABI level the code needs (1 = baseline .. 4); 0 if
                                  the target is not x86-64 */
    bool fma;                  /* fused multiply-add in hardware */
    /* ---- run-time ISA dispatch (x86-64) ---- */
    /* Faster variants an object for this target may also carry, best first (NULL-terminated;
     * NULL: none): the model compiled for each of them, chosen per call by the CPU's answer to
     * CPUID (codegen/llvm/dispatch.c). */
    const struct kl_target *const *dispatch;
    /* What a CPU must report to run this target's code: CPUID bits, and the state components
     * the OS must have enabled in XCR0 (0: none; then XGETBV is not used). */
    const kl_cpuid_bits *cpuid_needs;
    int n_cpuid_needs;
    uint64_t xcr0_needs;
    /* ---- edge targets (issue 11) ---- */
    const char *abi;           /* LLVM ABI name where the triple leaves a choice ("lp64d",
                                  "ilp32f"); "" or NULL: the triple's default */
    int float_bits;            /* widest float type the FPU computes: 0 (none), 32 or 64; a
                                  wider type is computed by runtime-min or the compiler's
                                  support library (libgcc / compiler-rt), never by libm */
    kl_optimize_for optimize_for; /* the preference when the user gives none (0: speed) */
    /* How a program for this target is built and run when it is not the host (kiln check
     * --target T, the tests). NULL for targets whose code the host runs in process. */
    const char *link;          /* compiler command (words split on spaces) that compiles the
                                  test driver with the model's object into a program; kiln
                                  appends "driver.c model.o -o model.elf" */
    const char *run;           /* emulator command; kiln appends the program's path and runs
                                  it in the folder holding its input and output files */
    /* GPU targets (backend KL_BACKEND_CUDA). There vector_bits / element size is the number of
     * threads that share a register block's VECTOR loop (a coalesced run of the output), and
     * vector_registers the registers a thread's block may take. */
    kl_backend backend;
    int sm;                    /* compute capability x 10: 80, 89, 90 (0 for CPUs) */
    int shared_bytes;          /* shared memory one block may use statically */
    int sm_count;              /* multiprocessors of the reference GPU (grid sizing) */
    int threads_per_sm;        /* resident threads per multiprocessor */
} kl_target;
#define KL_TARGET_NATIVE "native"
const kl_target *kl_target_find(const char *name);
const kl_target *kl_target_default(void);
extern const kl_target *const kl_targets[]; /* NULL-terminated */
bool kl_target_is_native(const kl_target *t);
/* Code for t runs under an emulator (t->run), not in kiln's process. */
bool kl_target_is_emulated(const kl_target *t);
/* Whether kiln was built with this target's back end (CUDA needs NVRTC at build time). */
bool kl_target_available(const kl_target *t);
/* GPU targets: how many threads a kernel's grid should have before the tile pass lets a
 * thread compute more outputs (a quarter of the reference GPU's resident threads); 0 for CPUs. */
int64_t kl_target_busy_threads(const kl_target *t);
/* Vector lanes of `elem` in one SIMD register of the target (1 when it has none). */
int kl_target_lanes(const kl_target *t, kl_dtype elem);
/* codegen/llvm/host.c — the "native" descriptor filled in from the host CPU (LLVM's answer);
 * any other target is returned as it is. */
const kl_target *kl_target_resolve(kl_arena *a, const kl_target *t, kl_diag *d);
/* The one of an object's `n` ISA variants (best first; the driver's choice of t->dispatch) that
 * this host runs, t itself when none (kiln bench measures the peak of the code that runs). */
const kl_target *kl_target_host_variant(const kl_target *t, const kl_target *const *variants,
                                        int n);

/* ======================================================================================
 * kernel passes: bool kpass_NAME(kl_program *, const kl_target *, kl_diag *)
 * They run between lowering and the memory plan, in the order of kl_kernel_passes, and only
 * ever change how a kernel computes, never what (the interpreter is the judge).
 * ====================================================================================== */
/* Who computes a blocked contraction's reduction: the back end's own register block (ir), a
 * generated micro-kernel where one applies (libxsmm), or the choice the tile pass makes per
 * kernel (auto). */
typedef enum kl_microkernels { KL_MICRO_AUTO = 0, KL_MICRO_IR, KL_MICRO_LIBXSMM } kl_microkernels;
typedef struct kl_kernel_opts {
    const kl_target *target;
    kl_microkernels microkernels;
    kl_optimize_for optimize_for; /* resolved: KL_FOR_SPEED or KL_FOR_SIZE */
    bool keep_sources;            /* keep a packed weight's source: the graph is lowered again
                                     (for another ISA variant, codegen/llvm/dispatch.c) */
} kl_kernel_opts;
typedef struct kl_kernel_pass {
    const char *name;
    bool (*run)(kl_program *p, const kl_kernel_opts *o, kl_diag *d);
    bool speed_only;   /* trades workspace or code for speed: skipped when optimizing for size */
} kl_kernel_pass;
extern const kl_kernel_pass kl_kernel_passes[]; /* NULL-terminated by name */
bool kpass_fold(kl_program *p, const kl_kernel_opts *o, kl_diag *d);  /* kernel/fold.c */
bool kpass_fuse(kl_program *p, const kl_kernel_opts *o, kl_diag *d);  /* kernel/fuse.c */
bool kpass_halo(kl_program *p, const kl_kernel_opts *o, kl_diag *d);  /* kernel/halo.c */
bool kpass_tile(kl_program *p, const kl_kernel_opts *o, kl_diag *d);  /* kernel/tile.c */
bool kpass_tasks(kl_program *p, const kl_kernel_opts *o, kl_diag *d); /* kernel/tasks.c */
/* kernel/pack.c — constants a blocked kernel reads, copied into the order it reads them;
 * `packs` remembers the copies made so that identical ones are shared. */
void kl_pack_constants(kl_program *p, kl_kernel *k, kl_ptrvec *packs);
/* Give back the memory of packed sources that no kernel reads any more: neither the kernels
 * done so far nor p->kernels from index next_pending on (the ones still to be rewritten). */
void kl_pack_release_sources(kl_program *p, kl_ptrvec *packs, const kl_ptrvec *done,
                             int next_pending);
/* kernel/prefetch.c — for a blocked kernel that reuses panels of weights too large for the
 * cache: prefetch the next panel while the current one is in use (sets prefetch_buf/_at). */
bool kl_plan_prefetch(kl_program *p, kl_kernel *k, const kl_target *t);

/* ======================================================================================
 * codegen/ — back ends
 * ====================================================================================== */
typedef enum kl_emit_kind {
    KL_EMIT_OBJ, KL_EMIT_SO, KL_EMIT_ASM, KL_EMIT_LLVM_IR,
    KL_EMIT_CUDA,              /* CUDA targets: the kernels as CUDA C (what NVRTC compiles) */
    KL_EMIT_PTX,               /* CUDA targets: NVRTC's PTX */
    KL_EMIT_CUBIN,             /* CUDA targets: NVRTC's cubin for the target's sm */
} kl_emit_kind;

/* Sizes of the emitted object (codegen/llvm/sizes.c; `kiln compile --stats`), in bytes, as
 * `size` would count its sections. Runtime-min's share of the code is what stays in its own
 * functions (kiln_rt_*); what LLVM inlined into a kernel counts as the model's. */
typedef struct kl_size_stats {
    bool measured;             /* false for assembly / IR output */
    int64_t text;              /* all code */
    int64_t text_runtime;      /* of which runtime-min's functions */
    int64_t rodata;            /* constant data, the weights section included */
    int64_t weights;           /* of which the weights */
    int64_t data, bss;         /* writable data: 0 for every kiln object */
    char weights_section[96];  /* where the large weights went ("": .rodata, inline) */
    bool weights_large;        /* in x86-64's large data section, reached with 64-bit addresses */
    int variants;              /* ISA variants joined in (--dispatch), counted in the figures */
    int64_t variant_weights;   /* of the weights, the variants' own packed copies */
} kl_size_stats;
/* Testing only (--sanitize): the generated code instrumented by LLVM's AddressSanitizer or
 * ThreadSanitizer. Such an object calls __asan_* / __tsan_* and runs only in a process that
 * has that run-time (a program built with -fsanitize=address or thread). */
typedef enum kl_sanitizer {
    KL_SANITIZE_NONE, KL_SANITIZE_ADDRESS, KL_SANITIZE_THREAD
} kl_sanitizer;

typedef struct kl_codegen_opts {
    const kl_target *target;
    const char *name;          /* C prefix of every exported symbol */
    int opt_level;             /* 0..3 */
    kl_emit_kind emit;
    bool profile;              /* also emit the profiling entry (kiln_model.run_profiled) */
    kl_optimize_for optimize_for; /* KL_FOR_TARGET until the driver resolves it */
    const char *weights_section; /* ELF section of the weights; NULL: .rodata */
    kl_size_stats *sizes;      /* filled when non-NULL */
    /* CUDA targets, for tests on machines without a GPU: embed the CUDA C source instead of
     * a cubin (NVRTC is not called); tests/cuda/fakecuda.c, a stand-in for libcuda, compiles
     * and runs it on the CPU. Such an object is useless with the real driver. */
    bool cuda_emulate;
    kl_sanitizer sanitize;     /* testing only, see kl_sanitizer */
    struct kl_phases *phases;  /* time and memory per phase, progress (NULL: not measured) */
    /* Run-time ISA dispatch (x86-64, codegen/llvm/dispatch.c): the same model compiled for
     * faster targets, best first; the object runs the best one the CPU supports. */
    const struct kl_isa_variant *variants;
    int n_variants;
    int64_t cpu_cache_offset;  /* the workspace bytes that remember the CPU's answer */
    /* Set on a variant's own compilation: its entries are hidden, it has no model table. */
    bool is_variant;
    int profile_kernel_base;   /* its kernels' numbers in the profile start here */
} kl_codegen_opts;
typedef struct kl_isa_variant {
    const kl_program *p;
    const kl_target *target;
} kl_isa_variant;

/* codegen/llvm/ — write the program (and the model table) as an object / asm / IR file. For
 * KL_EMIT_SO an object is written to a temporary file and linked (codegen/link.c). */
bool kl_codegen_llvm(const kl_program *p, const kl_graph *g, const kl_codegen_opts *o,
                     const char *out_path, kl_diag *d);
/* codegen/cuda/ — the CUDA back end: the kernels as CUDA C compiled by NVRTC into a cubin (and
 * PTX) for the target's sm, embedded in an object whose host side (LLVM, x86-64) loads and
 * launches them through the CUDA driver API. Emits what o->emit says (for KL_EMIT_ASM and
 * KL_EMIT_LLVM_IR: the host side). */
bool kl_codegen_cuda(const kl_program *p, const kl_graph *g, const kl_codegen_opts *o,
                     const char *out_path, kl_diag *d);
/* codegen/cuda/launch.c — what a CUDA model's header and table state: the caller's NAME_cuda
 * state (the module handle and one function handle per launch) and the device workspace of
 * predict_host (the workspace, then every input, then every output, each at a multiple of 256
 * bytes). False (diagnostic) when the program cannot be planned for the target. */
typedef struct kl_cuda_sizes {
    int n_functions;
    int64_t state_size, host_workspace_size;
} kl_cuda_sizes;
bool kl_cuda_sizes_of(const kl_program *p, const kl_target *t, kl_cuda_sizes *s, kl_diag *d);
/* Byte offset of input i (of output i when `output`) in predict_host's device workspace. */
int64_t kl_cuda_host_offset(const kl_program *p, bool output, int i);
/* codegen/cuda/nvrtc.c — whether kiln was built with NVRTC, and its version ("13.0"; NULL
 * without). */
bool kl_cuda_available(void);
const char *kl_cuda_nvrtc_version(kl_arena *a);
/* codegen/llvm/peak.c — a shared library that measures the floating-point peak of code for
 * `t` (resolved here when native): independent multiply-add chains on the target's vectors.
 * It exports KL_PEAK_RUN and KL_PEAK_INFO. */
#define KL_PEAK_RUN "kiln_peak_run"   /* float (int64_t iterations): the work, >= 1 iteration */
#define KL_PEAK_INFO "kiln_peak_info" /* const int64_t[3]: flops per iteration, chains, lanes */
bool kl_codegen_peak(kl_arena *a, const kl_target *t, const char *so_path, kl_diag *d);
/* codegen/header.c — write NAME.h */
bool kl_write_header(const kl_program *p, const kl_graph *g, const kl_codegen_opts *o,
                     const char *path, kl_diag *d);
/* codegen/link.c — link an object into a shared library (ld.lld) */
bool kl_link_shared(const char *obj, const char *so, kl_diag *d);
/* The relocatable linker for objects of `triple` on PATH (GNU ld for x86-64, ld.lld for the
 * others), or NULL; and objects joined into one with it. */
const char *kl_relocatable_linker(const char *triple);
bool kl_link_relocatable(const char *triple, const char *const *objs, int n_objs,
                         const char *out_path, kl_diag *d);
/* codegen/header.c — write a whole file through a temporary beside it and a rename (no partial
 * file is ever left at `path`). */
bool kl_write_file_atomic(const char *path, const void *data, size_t size, kl_diag *d);

/* ======================================================================================
 * driver.c — the pipeline, written out in order
 * ====================================================================================== */
typedef struct kl_compile_opts {
    const char *model_path;
    const char *out_path;
    const char *header_path;   /* NULL: NAME.h beside out_path */
    kl_codegen_opts cg;
    const kl_shape_binding *bindings;
    int n_bindings;
    const char *dump_ir_after; /* pass name, "lower" or NULL */
    FILE *dump_to;
    kl_microkernels microkernels;
    bool no_dispatch;          /* --dispatch off: no run-time ISA variants */
    int64_t string_bytes;      /* --string-bytes: the string arena's capacity (0: the default,
                                  KL_STRING_BYTES_DEFAULT) */
} kl_compile_opts;
/* util/phase.c — time and peak memory per compilation phase (--stats), progress on stderr. */
typedef enum kl_progress_mode {
    KL_PROGRESS_AUTO = 0,      /* after 2 s, when stderr is a terminal */
    KL_PROGRESS_ALWAYS,        /* --progress */
    KL_PROGRESS_NEVER,
} kl_progress_mode;
#define KL_MAX_PHASES 16
typedef struct kl_phase_stat {
    const char *name;          /* "load", "LLVM optimization", ... (a string literal) */
    double seconds;
    int64_t peak_bytes;        /* the process's peak RSS during the phase */
} kl_phase_stat;
typedef struct kl_phases {
    kl_phase_stat items[KL_MAX_PHASES];
    int n, open;               /* open: the running phase's index, -1 between phases */
    double started, phase_started, last_progress, total_seconds;
    int64_t peak_bytes;        /* the whole compilation's peak RSS */
    bool per_phase_peaks;      /* false: each phase's peak is the peak so far */
    kl_progress_mode progress;
    bool terminal, shown_on_terminal;
} kl_phases;
/* per_phase_peaks: reset the high-water mark at each phase (which hides the process's peak
 * from getrusage and /usr/bin/time; kl_phases_end restores it in peak_bytes). */
void kl_phases_init(kl_phases *ph, kl_progress_mode mode, bool per_phase_peaks);
/* End the running phase (if any) and start `name` (a literal; a name seen before accumulates).
 * Every kl_phase* call accepts ph == NULL and then does nothing. */
void kl_phase(kl_phases *ph, const char *name);
void kl_phase_progress(kl_phases *ph, int done, int total); /* within the running phase */
void kl_phases_end(kl_phases *ph);

typedef struct kl_compile_stats {
    int64_t workspace_size, intermediates_total;
    int n_kernels;
    kl_optimize_for optimize_for;  /* what the compilation optimized for */
    const kl_target *variants[4];  /* the run-time ISA variants the object carries, best first */
    int n_variants;
} kl_compile_stats;
/* The middle of the pipeline: graph passes, lowering, kernel passes and the memory plan (with
 * o's dump options and size-or-speed goal; t resolved). NULL after a diagnostic. */
kl_program *kl_compile_graph(kl_arena *a, kl_graph *g, const kl_target *t,
                             const kl_compile_opts *o, kl_diag *d);
/* Compile a model file to out_path + header. On failure no output file is left behind. */
bool kl_compile(const kl_compile_opts *o, kl_compile_stats *stats, kl_diag *d);
/* A valid C identifier from a file name ("models/ResNet-18.onnx" -> "resnet_18"). */
char *kl_c_name_from_path(kl_arena *a, const char *path);

/* ======================================================================================
 * dataset.c — test data sets (ONNX backend-test layout: test_data_set_N/{input,output}_K.pb)
 * ====================================================================================== */
char *kl_path_dir(kl_arena *a, const char *path);   /* "a/b/m.onnx" -> "a/b"; "m.onnx" -> "." */
const char *kl_path_base(const char *path);         /* last component, trailing '/' ignored */
bool kl_path_is_dir(const char *path);
/* Append the test_data_set_* folders beside the model to `sets`, in numeric order (none found
 * is not an error; an unreadable folder is). */
bool kl_dataset_find_beside(kl_arena *a, const char *model_path, kl_ptrvec *sets, kl_diag *d);
/* Load PREFIX_0.pb .. PREFIX_{n-1}.pb ("input" or "output") of a data set as constant values. */
/* A SequenceProto or OptionalProto file gives the tensors it holds (kl_onnx_load_data_file), so
 * `out` lists tensors in the order of the generated interface. */
bool kl_dataset_load(kl_arena *a, const char *dir, const char *prefix, kl_ptrvec *out,
                     kl_diag *d);
/* The same, also appending to `structure` the sequence/optional bindings the files say. */
bool kl_dataset_load_structured(kl_arena *a, const char *dir, const char *prefix, kl_ptrvec *out,
                                kl_ptrvec *structure, kl_diag *d);

/* ======================================================================================
 * library.c — a model compiled (kl_compile, --emit so) into a private temporary folder,
 * dlopened, its table checked; what `kiln check` and `kiln bench` run
 * ====================================================================================== */
struct kiln_model;
typedef struct kl_library_opts {
    const char *model_path;
    const kl_shape_binding *bindings; /* none: compile as is, or bind from `bind_from` */
    int n_bindings;
    const char *bind_from;     /* data set whose inputs bind symbolic dims; NULL: none */
    const kl_target *target;   /* NULL: the default */
    int opt_level;
    bool profile;              /* also emit (and require) the profiling entry */
    kl_microkernels microkernels;
    bool no_dispatch;          /* no run-time ISA variants (kl_compile_opts) */
    bool cuda_emulate;         /* CUDA targets: an emulator object (kl_codegen_opts) */
    kl_sanitizer sanitize;     /* see kl_codegen_opts */
    const char *purpose;       /* names the folder: TMPDIR/kiln-PURPOSE-XXXXXX */
    FILE *out;                 /* "inputs bound from ..." goes here; NULL: silent */
    kl_optimize_for optimize_for;
    int64_t string_bytes;      /* see kl_compile_opts */
} kl_library_opts;
typedef struct kl_library {
    char dir[256];             /* the private folder; empty when none */
    const char *so_path;       /* what was compiled (the shared library, or the object) */
    kl_emit_kind emit;
    void *handle;              /* dlopen handle */
    const struct kiln_model *model;
    kl_compile_stats stats;
    double compile_seconds;    /* kl_compile alone: load to linked library */
} kl_library;
/* false with a diagnostic; kl_library_close must be called either way. */
bool kl_library_open(kl_arena *a, const kl_library_opts *o, kl_library *lib, kl_diag *d);
/* Only the compilation, into the private folder as `file` (no loading): how a model for an
 * emulated target is built. kl_library_close cleans up. */
bool kl_library_compile(kl_arena *a, const kl_library_opts *o, kl_emit_kind emit,
                        const char *file, kl_library *lib, kl_diag *d);
/* DIR/file inside the library's folder (removed with it). */
char *kl_library_path(kl_arena *a, const kl_library *lib, const char *file);
void kl_library_close(kl_library *lib);
/* Zeroed, 64-byte aligned memory for one call of a model: every input, output, the workspace. */
typedef struct kl_run_buffers {
    void **inputs, **outputs;
    void *workspace;
    uint32_t n_inputs, n_outputs;
} kl_run_buffers;
bool kl_run_buffers_alloc(const struct kiln_model *m, kl_run_buffers *b, kl_diag *d);
void kl_run_buffers_free(kl_run_buffers *b);
/* Copy a data set's input values into b->inputs when each has its compiled input's element
 * type and shape; otherwise false and *why says which does not fit (nothing copied). */
bool kl_run_buffers_set_inputs(kl_arena *a, const struct kiln_model *m, kl_run_buffers *b,
                               const kl_ptrvec *values, const char **why);
struct kiln_tensor_desc;
/* Whether a value has the element type and shape of a compiled input or output. */
bool kl_desc_fits_value(const struct kiln_tensor_desc *t, const kl_value *v);
char *kl_desc_shape_str(kl_arena *a, const struct kiln_tensor_desc *t); /* "[1,3,224,224]" */

/* ======================================================================================
 * emulate/ — a model for a target the host cannot run (kl_target_is_emulated): its object
 * linked with a generic driver (emulate/driver.c) into a program for the target, which the
 * target's emulator runs on one data set at a time. `kiln check --target T` uses it.
 * ====================================================================================== */
typedef struct kl_emulated {
    kl_library lib;            /* the private folder and the compiled object (not loaded) */
    const kl_target *target;
    const char *program;       /* the linked program */
} kl_emulated;
typedef struct kl_emulated_result {
    int rc;                    /* KILN_OK, predict's error code, or 1 (see message) */
    const char *message;       /* "" when rc is KILN_OK */
    uint32_t n_outputs;
    struct kiln_tensor_desc *outputs; /* names, types, shapes from the target's model table */
    void **data;               /* each output's bytes */
} kl_emulated_result;
/* false with a diagnostic; kl_emulated_close must be called either way. */
bool kl_emulated_open(kl_arena *a, const kl_library_opts *o, kl_emulated *e, kl_diag *d);
/* Run the program on one data set's input values. false: it could not run (diag); a run that
 * the driver refused (wrong input shape, predict's error) is true with r->rc != 0. */
bool kl_emulated_run(kl_arena *a, kl_emulated *e, const kl_ptrvec *inputs,
                     kl_emulated_result *r, kl_diag *d);
void kl_emulated_close(kl_emulated *e);

/* ======================================================================================
 * cuda_run.c — the CUDA driver for the harnesses, loaded at run time (kiln never links
 * libcuda); a CUDA model's library must be loaded after it and closed before it
 * ====================================================================================== */
typedef struct kl_cuda_run kl_cuda_run;
/* Load the driver (KILN_LIBCUDA, else libcuda.so.1) and make device 0's primary context
 * current. NULL with *skip saying why when there is no driver or no GPU (not an error); NULL
 * with a diagnostic when something else fails. */
kl_cuda_run *kl_cuda_run_open(kl_arena *a, const char **skip, kl_diag *d);
const char *kl_cuda_run_device(kl_arena *a, const kl_cuda_run *r); /* "NVIDIA H200 (sm_90)" */
/* cuda_load the model and allocate its device workspace (cuda_host_workspace_size). */
bool kl_cuda_run_load(kl_cuda_run *r, const struct kiln_model *m, kl_diag *d);
/* One cuda_run_host on the host buffers b (inputs in, outputs back). */
bool kl_cuda_run_host(kl_cuda_run *r, const kl_run_buffers *b, kl_diag *d);
/* b's inputs copied to the device once; then warmup + runs calls of cuda_run, each followed by
 * a stream synchronization; the timed ones' milliseconds into ms[0..runs). */
bool kl_cuda_run_time(kl_cuda_run *r, const kl_run_buffers *b, int warmup, int runs, double *ms,
                      kl_diag *d);
void kl_cuda_run_unload(kl_cuda_run *r);  /* cuda_unload, free the workspace and the state */
void kl_cuda_run_close(kl_cuda_run *r);   /* unload, release the context (NULL: nothing) */

/* ======================================================================================
 * check.c — `kiln check`: compile through the real path (object linked into a shared library),
 * run on stored test data, compare with expected outputs
 * ====================================================================================== */
typedef struct kl_check_opts {
    const char *model_path;
    const char *const *data_dirs;  /* test_data_set_* folders; none: all beside the model */
    int n_data_dirs;
    const kl_shape_binding *bindings; /* none: symbolic inputs are bound from the first data set */
    int n_bindings;
    double rtol, atol;             /* |got - want| <= atol + rtol * |want| */
    const kl_target *target;
    int opt_level;
    kl_microkernels microkernels;
    bool no_dispatch;              /* no run-time ISA variants (kl_compile_opts) */
    kl_optimize_for optimize_for;
    bool cuda_emulate;             /* CUDA targets: an emulator object (kl_codegen_opts) */
    kl_sanitizer sanitize;         /* see kl_codegen_opts */
    FILE *out;                     /* report */
    int64_t string_bytes;          /* see kl_compile_opts */
} kl_check_opts;
/* 0: every output of every data set within tolerance; 1: a mismatch or an error (diag);
 * KL_CHECK_SKIPPED: a CUDA target and no CUDA driver or GPU to run it on (said in the report). */
#define KL_CHECK_SKIPPED 77
int kl_check(const kl_check_opts *o, kl_diag *d);

/* ======================================================================================
 * bench.c, bench_peak.c, bench_profile.c — `kiln bench`: compile through the real path (the
 * library above), time predict, measure the target's peak, profile kernel by kernel
 * ====================================================================================== */
typedef struct kl_bench_opts {
    const char *model_path;
    const char *data_dir;          /* inputs from here; NULL: the first test_data_set_* beside
                                      the model when there is one, else pseudo-random values */
    const kl_shape_binding *bindings;
    int n_bindings;
    const kl_target *target;       /* NULL: the default */
    int opt_level;
    int threads;                   /* 1: model->run; more: run_parallel on a kiln_pool */
    int runs;                      /* timed runs; 0: 30, or 10 when one run takes over 250 ms */
    int warmup;                    /* untimed runs first */
    bool profile;                  /* also time every kernel through the profiling entry */
    bool profile_kernels;          /* list kernels one by one instead of summing per node */
    kl_microkernels microkernels;
    bool no_dispatch;              /* no run-time ISA variants (kl_compile_opts) */
    bool cuda_emulate;             /* CUDA targets: an emulator object (kl_codegen_opts) */
    FILE *out;                     /* the report */
} kl_bench_opts;
/* 0: measured and reported; 1: an error (diag); KL_CHECK_SKIPPED: a CUDA target and no GPU. */
int kl_bench(const kl_bench_opts *o, kl_diag *d);

struct kiln_parallel;
/* bench_peak.c — the peak of the target's floating-point code on this machine, from the probe
 * of codegen/llvm/peak.c built into the library's folder and timed for about 0.2 s: on the
 * calling thread, and with `par` (threads > 1) on every thread of the caller's parallel-for at
 * once. */
typedef struct kl_peak {
    double gflops_1t;              /* one thread */
    double gflops;                 /* all `threads` threads together (= gflops_1t for one) */
    int threads, chains, lanes;
} kl_peak;
bool kl_bench_peak(kl_arena *a, const kl_library *lib, const kl_target *t,
                   const struct kiln_parallel *par, kl_peak *out, kl_diag *d);
/* bench_profile.c — `runs` calls of the profiling entry on the buffers, a timestamp at every
 * callback; prints the table of the slowest nodes (or kernels) and the total against
 * `predict_ms` (the unprofiled median). */
typedef struct kl_profile_opts {
    int runs;
    bool per_kernel;
    double predict_ms;
    FILE *out;
    const struct kiln_parallel *par; /* NULL: one thread */
} kl_profile_opts;
bool kl_bench_profile(const struct kiln_model *m, const kl_run_buffers *b,
                      const kl_profile_opts *o, kl_diag *d);

#endif
