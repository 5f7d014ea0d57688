/*
 * load.c — an ONNX ModelProto file into the graph IR.
 *
 * The model is decoded by protobuf-c (code generated from onnx.proto at build time) and then
 * copied into arena-allocated IR, so the protobuf message is freed before returning. The order:
 *   1. decode and sanity-check (empty, undecodable, no graph, no opset: likely truncated);
 *   2. metadata and opset imports;
 *   3. values: initializers (constants), graph inputs (typed, shapes bound by --shape),
 *      node outputs; names resolve through a hash map since graphs have thousands of values;
 *   4. node inputs, value_info, graph outputs;
 *   5. a topological sort (Kahn), which also finds cycles.
 * Independent errors accumulate (every dangling input, every unbound dimension) so the user
 * fixes the model once, not once per error; the loader stops only at the end of a phase.
 */
#include "onnx_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- name table: value name -> kl_value (open addressing, FNV-1a) --------------------- */

typedef struct name_slot {
    const char *name;
    kl_value *value;
} name_slot;

typedef struct name_table {
    name_slot *slots;
    size_t cap, n;     /* cap is a power of two, kept at most half full */
} name_table;

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static name_slot *find_slot(name_slot *slots, size_t cap, const char *name)
{
    size_t i = hash_name(name) & (cap - 1);
    while (slots[i].name && strcmp(slots[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static void names_grow(kl_arena *a, name_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 256;
    name_slot *slots = kl_alloc_array(a, cap, sizeof *slots);
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].name)
            *find_slot(slots, cap, t->slots[i].name) = t->slots[i];
    t->slots = slots;
    t->cap = cap;
}

static kl_value *names_get(const name_table *t, const char *name)
{
    return t->cap ? find_slot(t->slots, t->cap, name)->value : NULL;
}

/* v under `name` (a subgraph's values are found by their names in the model, which need not
 * be the names they get in the graph). */
static void names_put_as(kl_arena *a, name_table *t, const char *name, kl_value *v)
{
    if (2 * (t->n + 1) > t->cap)
        names_grow(a, t);
    name_slot *s = find_slot(t->slots, t->cap, name);
    if (!s->name)
        t->n++;
    s->name = name;
    s->value = v;
}

static void names_put(kl_arena *a, name_table *t, kl_value *v)
{
    names_put_as(a, t, v->name, v);
}

/* ---- the loader's state --------------------------------------------------------------- */

/* The values of one subgraph (an If's branch) by their names in the model; lookups fall back
 * to the enclosing graphs, which is how a branch reads outer values. */
typedef struct scope {
    name_table names;
    struct scope *parent;      /* NULL: the main graph's (loader.names) */
} scope;

typedef struct loader {
    kl_arena *a;
    kl_graph *g;
    kl_diag *d;
    const char *base_dir;      /* external data is relative to the model's folder */
    name_table names;          /* the main graph's values */
    name_table all;            /* every value's graph name, so that inlined ones stay unique */
    scope *sc;                 /* the subgraph being inlined; NULL: the main graph */
    kl_guard *guard;           /* what the nodes being loaded run under (NULL: always) */
    const Onnx__GraphProto *main_graph; /* its outputs' declared shapes, read before they load */
    int unrolling;             /* > 0: inside a Loop or Scan body, which is read once a step */
    int64_t steps_inlined;     /* bodies inlined so far, nested ones included */
    int next_suffix;           /* for renamed values: one counter, so that no search grows */
} loader;

/* A value name as the node being loaded sees it: its own subgraph's first, then outward. */
static kl_value *lookup(const loader *L, const char *name)
{
    for (const scope *sc = L->sc; sc; sc = sc->parent) {
        kl_value *v = names_get(&sc->names, name);
        if (v)
            return v;
    }
    return names_get(&L->names, name);
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

/* The ONNX default domain has two spellings; the IR uses "". */
static const char *normalize_domain(const char *domain)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        return "";
    return domain;
}

/* What defines a value, for "defined twice" messages. */
static const char *describe_definer(loader *L, const kl_value *v)
{
    if (v->producer)
        return kl_sprintf(L->a, "node '%s' (%s)", v->producer->name, v->producer->op_type);
    if (v->input_index >= 0)
        return "a graph input";
    return "an initializer";
}

/* A new named value, or NULL (with a diagnostic) when the name is already taken. `by` is the
 * node defining it, or NULL with `what` saying what does ("an initializer"). */
static kl_value *define_value(loader *L, const char *name, const kl_node *by, const char *what)
{
    name_table *own = L->sc ? &L->sc->names : &L->names;
    kl_value *old = names_get(own, name);
    if (old) {
        const char *now = by ? kl_sprintf(L->a, "node '%s' (%s)", by->name, by->op_type) : what;
        kl_error(L->d, by, "value '%s' is defined twice: by %s and by %s", name,
                 describe_definer(L, old), now);
        return NULL;
    }
    /* a subgraph may reuse a name of another scope (both branches of an If often do) */
    const char *unique = name;
    while (names_get(&L->all, unique))
        unique = kl_sprintf(L->a, "%s__sub%d", name, ++L->next_suffix);
    kl_value *v = kl_value_new(L->g, unique);
    names_put_as(L->a, own, name, v);
    names_put(L->a, &L->all, v);
    return v;
}

/* ---- decoding ------------------------------------------------------------------------- */

static Onnx__ModelProto *decode_model(const uint8_t *bytes, size_t len, kl_diag *d)
{
    if (len == 0) {
        kl_error(d, NULL, "not an ONNX model (the file is empty)");
        return NULL;
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, bytes);
    if (!m) {
        kl_error(d, NULL, "not an ONNX model (protobuf decoding failed; the file may be "
                 "truncated or not a model at all)");
        return NULL;
    }
    /* A file cut at a field boundary still decodes; what is missing then tells. The graph
       (field 7) precedes the opset imports (field 8) in every serializer's output. */
    const char *missing = !m->graph ? "no graph"
                        : (m->n_opset_import == 0 && (!m->has_ir_version || m->ir_version >= 3))
                              ? "no opset import"
                              : NULL;
    if (missing) {
        onnx__model_proto__free_unpacked(m, NULL);
        kl_error(d, NULL, "not a complete ONNX model (%s; the file may be truncated)", missing);
        return NULL;
    }
    return m;
}

/* ---- metadata ------------------------------------------------------------------------- */

static void read_meta(loader *L, const Onnx__ModelProto *m)
{
    kl_model_meta *meta = &L->g->meta;
    meta->producer_name = kl_strdup(L->a, str_or_empty(m->producer_name));
    meta->producer_version = kl_strdup(L->a, str_or_empty(m->producer_version));
    meta->domain = kl_strdup(L->a, str_or_empty(m->domain));
    meta->doc_string = kl_strdup(L->a, str_or_empty(m->doc_string));
    meta->graph_name = kl_strdup(L->a, str_or_empty(m->graph->name));
    meta->graph_doc_string = kl_strdup(L->a, str_or_empty(m->graph->doc_string));
    meta->model_version = m->has_model_version ? m->model_version : 0;
    meta->ir_version = m->has_ir_version ? m->ir_version : 0;

    /* IR version < 3 predates opset imports: such models use ai.onnx opset 1 */
    size_t n_opsets = m->n_opset_import ? m->n_opset_import : 1;
    meta->opsets = kl_alloc_array(L->a, n_opsets, sizeof *meta->opsets);
    meta->n_opsets = (int)n_opsets;
    meta->opsets[0] = (kl_opset_import){"", 1};
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        meta->opsets[i].domain = kl_strdup(L->a, normalize_domain(o->domain));
        meta->opsets[i].version = o->has_version ? o->version : 1;
    }

    meta->n_props = (int)m->n_metadata_props;
    meta->props = kl_alloc_array(L->a, m->n_metadata_props + 1, sizeof *meta->props);
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        meta->props[i].key = kl_strdup(L->a, str_or_empty(m->metadata_props[i]->key));
        meta->props[i].value = kl_strdup(L->a, str_or_empty(m->metadata_props[i]->value));
    }
}

/* The imported version of a domain, or -1. */
static int64_t opset_of(const kl_model_meta *meta, const char *domain)
{
    for (int i = 0; i < meta->n_opsets; i++)
        if (strcmp(meta->opsets[i].domain, domain) == 0)
            return meta->opsets[i].version;
    return -1;
}

/* ---- initializers --------------------------------------------------------------------- */

static void load_initializers(loader *L, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
        const Onnx__SparseTensorProto *s = gp->sparse_initializer[i];
        const char *name = s->values && s->values->name ? s->values->name : "?";
        kl_error(L->d, NULL, "sparse initializer '%s' is not supported", name);
    }
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *t = gp->initializer[i];
        const char *name = str_or_empty(t->name);
        if (!*name) {
            kl_error(L->d, NULL, "initializer %zu has no name", i);
            continue;
        }
        kl_value *v = define_value(L, name, NULL, "an initializer");
        if (!v)
            continue;
        kl_tensor_origin origin = {
            .what = kl_sprintf(L->a, "initializer '%s'", name),
            .node = NULL,
            .base_dir = L->base_dir,
            .keep = L->unrolling > 0,
        };
        kl_onnx_tensor_to_value(L->a, t, &origin, v, L->d);
    }
}

/* ---- graph inputs and their shapes ---------------------------------------------------- */

/* A declared shape as the user reads it: "[N,3,224,224]", "?" for unknown dims. */
static char *declared_shape_str(kl_arena *a, const kl_value *v)
{
    char *s = kl_strdup(a, "[");
    for (int i = 0; i < v->shape.rank; i++) {
        const char *sep = i ? "," : "";
        if (v->shape.dim[i] >= 0)
            s = kl_sprintf(a, "%s%s%lld", s, sep, (long long)v->shape.dim[i]);
        else
            s = kl_sprintf(a, "%s%s%s", s, sep, v->dim_param[i] ? v->dim_param[i] : "?");
    }
    return kl_sprintf(a, "%s]", s);
}

static const char *type_kind_name(Onnx__TypeProto__ValueCase c)
{
    switch (c) {
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: return "a sequence";
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: return "a map";
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: return "an optional";
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: return "a sparse tensor";
    default: return "of no type";
    }
}

/* Element type and declared shape; unknown dims are -1 with dim_param naming symbolic ones.
 * `rank_known` is false when the model gives no shape at all. */
static bool read_tensor_type(loader *L, const Onnx__TypeProto *tp, kl_value *v, bool *rank_known)
{
    *rank_known = false;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return kl_error(L->d, NULL, "input '%s' is %s: unsupported input type (kiln takes "
                        "tensors only)", v->name,
                        type_kind_name(tp ? tp->value_case : ONNX__TYPE_PROTO__VALUE__NOT_SET));
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    v->dtype = tt->has_elem_type ? (kl_dtype)tt->elem_type : KL_UNDEFINED;
    if (!tt->has_elem_type || tt->elem_type == KL_UNDEFINED)
        return kl_error(L->d, NULL, "input '%s' has no element type", v->name);
    if (tt->elem_type < 0 || tt->elem_type > KL_I2 || kl_dtype_size(v->dtype) == 0)
        return kl_error(L->d, NULL, "input '%s' has element type %s: unsupported input type",
                        v->name, tt->elem_type > KL_I2
                                     ? kl_sprintf(L->a, "%d", (int)tt->elem_type)
                                     : kl_dtype_name(v->dtype));
    if (!tt->shape)
        return true;
    if (tt->shape->n_dim > KL_MAX_RANK)
        return kl_error(L->d, NULL, "input '%s' has rank %zu; kiln supports at most %d", v->name,
                        tt->shape->n_dim, KL_MAX_RANK);
    *rank_known = true;
    v->shape.rank = (int)tt->shape->n_dim;
    for (int i = 0; i < v->shape.rank; i++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[i];
        v->shape.dim[i] = -1;
        /* -1 is how some exporters say "unknown" (left to --shape); other negatives are wrong */
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            dim->dim_value < -1)
            return kl_error(L->d, NULL, "input '%s' has a negative dimension (%lld at %d)",
                            v->name, (long long)dim->dim_value, i);
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            dim->dim_value >= 0)
            v->shape.dim[i] = dim->dim_value;
        else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                 dim->dim_param && *dim->dim_param)
            v->dim_param[i] = kl_strdup(L->a, dim->dim_param);
    }
    return true;
}

/* Replace the declared shape by a --shape binding; rank and fixed dims must agree. */
static bool apply_binding(loader *L, kl_value *v, bool rank_known, const kl_shape *bound)
{
    bool agrees = !rank_known || v->shape.rank == bound->rank;
    for (int i = 0; agrees && rank_known && i < bound->rank; i++)
        if (v->shape.dim[i] >= 0 && v->shape.dim[i] != bound->dim[i])
            agrees = false;
    if (!agrees)
        return kl_error(L->d, NULL, "shape mismatch: --shape binds input '%s' to %s, but the "
                        "model declares %s", v->name, kl_shape_str(L->a, bound),
                        declared_shape_str(L->a, v));
    for (int i = bound->rank; i < KL_MAX_RANK; i++)
        v->dim_param[i] = NULL;
    v->shape = *bound;
    v->has_shape = true;
    return true;
}

/* An example binding for an input: fixed dims as declared, the others 1. */
static char *binding_example(loader *L, const kl_value *v)
{
    char *s = kl_sprintf(L->a, "%s:", v->name);
    for (int i = 0; i < v->shape.rank; i++)
        s = kl_sprintf(L->a, "%s%s%lld", s, i ? "x" : "",
                       (long long)(v->shape.dim[i] >= 0 ? v->shape.dim[i] : 1));
    return s;
}

/* Every dim still unknown after bindings: one message per input, all inputs reported. */
static bool require_static_shape(loader *L, kl_value *v, bool rank_known)
{
    if (!rank_known)
        return kl_error(L->d, NULL, "input '%s' has no declared shape: bind it with --shape "
                        "%s:DIMxDIM...", v->name, v->name);
    char *which = NULL;
    int n_unknown = 0;
    for (int i = 0; i < v->shape.rank; i++) {
        if (v->shape.dim[i] >= 0)
            continue;
        const char *dim = v->dim_param[i]
                              ? kl_sprintf(L->a, "%d ('%s')", i, v->dim_param[i])
                              : kl_sprintf(L->a, "%d (unnamed)", i);
        which = which ? kl_sprintf(L->a, "%s, %s", which, dim) : (char *)dim;
        n_unknown++;
    }
    if (!n_unknown) {
        v->has_shape = true;
        return true;
    }
    return kl_error(L->d, NULL, "input '%s' dimension%s %s %s symbolic: bind it with --shape "
                    "%s:DIMxDIM... (e.g. --shape %s)", v->name, n_unknown > 1 ? "s" : "", which,
                    n_unknown > 1 ? "are" : "is", v->name, binding_example(L, v));
}

static const kl_shape_binding *binding_for(const char *name, const kl_shape_binding *b, int n)
{
    for (int i = 0; i < n; i++)
        if (b[i].kind == KL_BIND_SHAPE && b[i].input && strcmp(b[i].input, name) == 0)
            return &b[i];
    return NULL;
}

/* ---- sequence and optional graph inputs ------------------------------------------------
 *
 * Their structure is bound when compiling (--sequence s:N, --optional o:present|absent, or
 * what a data set's SequenceProto / OptionalProto holds): each tensor becomes a graph input of
 * its own, NAME[0], NAME[1], ... (an optional's tensor NAME[0]; for an optional of a sequence
 * the sequence's tensors), and the value NAME a compound holding them (ops/sequence.c). */

enum { MAX_INPUT_SEQUENCE = 4096 }; /* tensors of one sequence input */

static kl_dtype declared_dtype(const Onnx__TypeProto *tp);

static const kl_shape_binding *structure_for(const char *name, kl_binding_kind kind,
                                             const kl_shape_binding *b, int n)
{
    for (int i = n - 1; i >= 0; i--) /* the last one given wins, as for a repeated option */
        if (b[i].kind == kind && b[i].input && strcmp(b[i].input, name) == 0)
            return &b[i];
    return NULL;
}

/* Tensor K of the sequence or optional NAME: a graph input of its own. */
static kl_value *element_input(loader *L, const char *name, int64_t k, const Onnx__TypeProto *tp,
                               const kl_shape_binding *b, int n_bindings)
{
    const char *ename = kl_sprintf(L->a, "%s[%lld]", name, (long long)k);
    kl_value *v = define_value(L, ename, NULL, "a graph input");
    if (!v)
        return NULL;
    v->input_index = L->g->inputs.n;
    kl_ptrvec_push(L->a, &L->g->inputs, v);
    bool rank_known;
    if (!read_tensor_type(L, tp, v, &rank_known))
        return NULL;
    const kl_shape_binding *bound = binding_for(ename, b, n_bindings);
    bool shaped = bound ? apply_binding(L, v, rank_known, &bound->shape)
                        : require_static_shape(L, v, rank_known);
    if (!shaped || !kl_check_tensor_size(L->a, &v->shape, v->dtype, NULL,
                                         kl_sprintf(L->a, "input '%s'", v->name), L->d))
        return NULL;
    return v;
}

static kl_compound *input_compound(loader *L, bool optional, int64_t n, kl_dtype elem)
{
    kl_compound *c = kl_alloc(L->a, sizeof *c);
    c->optional = optional;
    c->n = n;
    c->elem = elem;
    c->items = kl_alloc_array(L->a, (size_t)n + 1, sizeof *c->items);
    return c;
}

/* The tensors of a sequence input (type tp) of `count` tensors, as a compound. */
static kl_compound *sequence_input(loader *L, const char *name, const Onnx__TypeProto *tp,
                                   int64_t count, const kl_shape_binding *b, int n_bindings)
{
    const Onnx__TypeProto *elem = tp->sequence_type ? tp->sequence_type->elem_type : NULL;
    if (!elem || elem->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        kl_error(L->d, NULL, "input '%s' is a sequence whose elements are each %s; kiln takes "
                 "sequences of tensors", name, elem ? type_kind_name(elem->value_case)
                                                     : "of no type");
        return NULL;
    }
    if (count < 0 || count > MAX_INPUT_SEQUENCE) {
        kl_error(L->d, NULL, "input '%s': a sequence of %lld tensors (kiln takes 0 to %d)", name,
                 (long long)count, MAX_INPUT_SEQUENCE);
        return NULL;
    }
    kl_compound *c = input_compound(L, false, count, declared_dtype(elem));
    for (int64_t k = 0; k < count; k++)
        if (!(c->items[k] = element_input(L, name, k, elem, b, n_bindings)))
            return NULL;
    return c;
}

static bool load_compound_input(loader *L, kl_value *v, const Onnx__TypeProto *tp,
                                const kl_shape_binding *b, int n_bindings)
{
    const char *name = v->name;
    bool optional = tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE;
    kl_compound_io *io = kl_alloc(L->a, sizeof *io);
    io->name = name;
    io->input = true;
    io->optional = optional;
    io->first = L->g->inputs.n;
    kl_ptrvec_push(L->a, &L->g->compound_io, io); /* also when it fails: its bindings are used */
    const Onnx__TypeProto *inner = optional && tp->optional_type
                                       ? tp->optional_type->elem_type : optional ? NULL : tp;
    bool sequence = inner && inner->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    if (!inner || (!sequence && inner->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE))
        return kl_error(L->d, NULL, "input '%s' is an optional whose value is %s; kiln takes "
                        "optionals of a tensor or of a sequence of tensors", name,
                        inner ? type_kind_name(inner->value_case) : "of no type");
    bool present = true;
    if (optional) {
        const kl_shape_binding *o = structure_for(name, KL_BIND_OPTIONAL, b, n_bindings);
        if (!o)
            return kl_error(L->d, NULL, "input '%s' is an optional: say whether it holds a value "
                            "with --optional %s:present (its tensor%s then input%s '%s[0]'%s) or "
                            "--optional %s:absent", name, name, sequence ? "s are" : " is",
                            sequence ? "s" : "", name, sequence ? "..." : "", name);
        present = o->count > 0;
    }
    kl_compound *seq = NULL;
    if (sequence && present) {
        const kl_shape_binding *s = structure_for(name, KL_BIND_SEQUENCE, b, n_bindings);
        if (!s)
            return kl_error(L->d, NULL, "input '%s' is %s: bind its length with --sequence "
                            "%s:N, and each tensor's shape as input '%s[K]' (--shape "
                            "%s[0]:DIMS ...) where the model does not fix it", name,
                            optional ? "an optional of a sequence" : "a sequence", name, name,
                            name);
        if (!(seq = sequence_input(L, name, inner, s->count, b, n_bindings)))
            return false;
    }
    io->sequence = sequence;
    io->present = present;
    io->count = L->g->inputs.n - io->first;
    if (!optional) {
        v->compound = seq;
        return true;
    }
    kl_dtype elem = seq ? seq->elem : declared_dtype(inner);
    kl_compound *c = input_compound(L, true, present ? 1 : 0, elem);
    if (seq) {
        c->items[0] = kl_value_new(L->g, kl_sprintf(L->a, "%s__sequence", name));
        c->items[0]->compound = seq;
    } else if (present && !(c->items[0] = element_input(L, name, 0, inner, b, n_bindings))) {
        return false;
    }
    io->count = L->g->inputs.n - io->first;
    v->compound = c;
    return true;
}

/* ---- inputs bound to one value (--value) ----------------------------------------------
 *
 * A tensor input whose value sets shapes or structure (CenterCropPad's target shape, a Loop's
 * trip count, an If's condition) may be bound to one value when compiling. Every node then
 * reads a constant in its place, so inference folds what follows from it; the input stays an
 * argument of predict, and the lowering checks that it holds that value (KILN_E_SHAPE). */

enum { MAX_BOUND_VALUE = 4096 }; /* elements of one bound value */

/* Element i of the binding's value stored as type t at dst; false when it does not fit. */
static bool store_bound_element(const kl_shape_binding *b, int64_t i, kl_dtype t, void *dst)
{
    bool from_int = b->value_dtype == KL_I64;
    int64_t x = from_int ? ((const int64_t *)b->value_data)[i] : 0;
    double f = from_int ? (double)x : ((const double *)b->value_data)[i];
    if (t == KL_F32) { *(float *)dst = (float)f; return true; }
    if (t == KL_F64) { *(double *)dst = f; return true; }
    if (!from_int) { /* a whole number among fractions is still one; a fraction is refused */
        if (!(f >= -0x1p63 && f < 0x1p63) || f != (double)(int64_t)f) return false;
        x = (int64_t)f;
    }
    switch (t) {
    case KL_BOOL: *(uint8_t *)dst = x != 0; return x == 0 || x == 1;
    case KL_I8: *(int8_t *)dst = (int8_t)x; return x == (int8_t)x;
    case KL_U8: *(uint8_t *)dst = (uint8_t)x; return x == (uint8_t)x;
    case KL_I16: *(int16_t *)dst = (int16_t)x; return x == (int16_t)x;
    case KL_U16: *(uint16_t *)dst = (uint16_t)x; return x == (uint16_t)x;
    case KL_I32: *(int32_t *)dst = (int32_t)x; return x == (int32_t)x;
    case KL_U32: *(uint32_t *)dst = (uint32_t)x; return x == (uint32_t)x;
    case KL_I64: *(int64_t *)dst = x; return true;
    case KL_U64: *(uint64_t *)dst = (uint64_t)x; return x >= 0;
    default: return false;
    }
}

static bool bind_value(loader *L, kl_value *v, const kl_shape_binding *b)
{
    int64_t count = kl_shape_numel(&v->shape);
    if (count != b->count || count > MAX_BOUND_VALUE)
        return kl_error(L->d, NULL, "--value %s: %lld element%s given, but the input is %s %s "
                        "(kiln binds values of up to %d elements)", v->name, (long long)b->count,
                        b->count == 1 ? "" : "s", kl_dtype_name(v->dtype),
                        kl_shape_str(L->a, &v->shape), MAX_BOUND_VALUE);
    kl_value *c = kl_value_new(L->g, kl_sprintf(L->a, "%s__value", v->name));
    c->dtype = v->dtype;
    c->shape = v->shape;
    c->has_shape = true;
    c->data = kl_alloc(L->a, kl_value_bytes(c) + 1);
    if (b->value_dtype == v->dtype) {
        memcpy(c->data, b->value_data, kl_value_bytes(c));
    } else {
        size_t size = kl_dtype_size(v->dtype);
        for (int64_t i = 0; i < count; i++)
            if (!store_bound_element(b, i, v->dtype, (char *)c->data + (size_t)i * size))
                return kl_error(L->d, NULL, "--value %s: element %lld does not fit the input's "
                                "type %s (kiln binds values of integer, bool, float and double "
                                "inputs)", v->name, (long long)i, kl_dtype_name(v->dtype));
    }
    names_put_as(L->a, &L->names, v->name, c); /* what the nodes read from now on */
    names_put(L->a, &L->all, c);
    v->bound_value = c;
    return true;
}

static void load_input(loader *L, const Onnx__ValueInfoProto *vi, const kl_shape_binding *b,
                       int n_bindings)
{
    const char *name = str_or_empty(vi->name);
    kl_value *v = names_get(&L->names, name);
    if (v && !v->producer && v->input_index < 0)
        return; /* also an initializer (IR < 4 models list weights as inputs): a constant */
    if (!*name) {
        kl_error(L->d, NULL, "graph input %d has no name", L->g->inputs.n);
        return;
    }
    v = define_value(L, name, NULL, "a graph input");
    if (!v)
        return;
    if (vi->type && (vi->type->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ||
                     vi->type->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE)) {
        load_compound_input(L, v, vi->type, b, n_bindings);
        return;
    }
    v->input_index = L->g->inputs.n;
    kl_ptrvec_push(L->a, &L->g->inputs, v);
    bool rank_known;
    if (!read_tensor_type(L, vi->type, v, &rank_known))
        return;
    const kl_shape_binding *bound = binding_for(name, b, n_bindings);
    bool shaped = bound ? apply_binding(L, v, rank_known, &bound->shape)
                        : require_static_shape(L, v, rank_known);
    /* every size downstream is computed from these dims: bound them before anything uses them */
    if (!shaped || !kl_check_tensor_size(L->a, &v->shape, v->dtype, NULL,
                                         kl_sprintf(L->a, "input '%s'", v->name), L->d))
        return;
    const kl_shape_binding *value = structure_for(name, KL_BIND_VALUE, b, n_bindings);
    if (value && bound && kl_bindings_bounded(bound, 1))
        kl_error(L->d, NULL, "--value %s: the input has a bounded dim (--shape %s:...LO..HI); "
                 "a value is bound for one shape only", name, name);
    else if (value)
        bind_value(L, v, value);
}

static bool compound_input_named(const loader *L, const char *name)
{
    for (int i = 0; i < L->g->compound_io.n; i++)
        if (!strcmp(((const kl_compound_io *)L->g->compound_io.items[i])->name, name))
            return true;
    return false;
}

static const kl_value *tensor_input_named(const loader *L, const char *name)
{
    for (int i = 0; i < L->g->inputs.n; i++)
        if (!strcmp(((const kl_value *)L->g->inputs.items[i])->name, name))
            return L->g->inputs.items[i];
    return NULL;
}

/* A binding must name a real input: a typo would otherwise be silently ignored. */
static void check_bindings_used(loader *L, const kl_shape_binding *b, int n)
{
    for (int i = 0; i < n; i++) {
        const char *name = str_or_empty(b[i].input);
        kl_value *v = names_get(&L->names, name);
        if (b[i].kind == KL_BIND_VALUE) {
            const kl_value *in = tensor_input_named(L, name);
            if (!in)
                kl_error(L->d, NULL, "--value names '%s', which is not a tensor input of the "
                         "model", name);
            else if (!in->bound_value && !kl_diag_failed(L->d))
                kl_error(L->d, NULL, "--value names '%s', a tensor of a sequence or optional "
                         "input: kiln binds the values of tensor inputs only", name);
            continue;
        }
        if (tensor_input_named(L, name) || (v && compound_input_named(L, name)))
            continue; /* a tensor input, or a sequence or optional one (its structure) */
        if (b[i].kind != KL_BIND_SHAPE) {
            kl_error(L->d, NULL, "--%s names '%s', which is not a sequence or optional input "
                     "of the model", b[i].kind == KL_BIND_SEQUENCE ? "sequence" : "optional",
                     name);
            continue;
        }
        char *inputs = kl_strdup(L->a, "");
        for (int k = 0; k < L->g->inputs.n; k++)
            inputs = kl_sprintf(L->a, "%s%s'%s'", inputs, k ? ", " : "",
                                ((kl_value *)L->g->inputs.items[k])->name);
        kl_error(L->d, NULL, "--shape names '%s', which is not an input of the model (%s: %s)",
                 name, v ? "it is an initializer; inputs" : "inputs",
                 L->g->inputs.n ? inputs : "none");
    }
}

static void load_inputs(loader *L, const Onnx__GraphProto *gp, const kl_shape_binding *b,
                        int n_bindings)
{
    for (size_t i = 0; i < gp->n_input; i++)
        load_input(L, gp->input[i], b, n_bindings);
    check_bindings_used(L, b, n_bindings);
}

/* ---- attributes ----------------------------------------------------------------------- */

/* Models from IR version 1 may omit the type; the field that is set tells it. */
static int attr_type_of(const Onnx__AttributeProto *p)
{
    if (p->has_type)
        return p->type;
    if (p->n_floats) return KL_ATTR_FLOATS;
    if (p->n_ints) return KL_ATTR_INTS;
    if (p->n_strings) return KL_ATTR_STRINGS;
    if (p->t) return KL_ATTR_TENSOR;
    if (p->g) return KL_ATTR_GRAPH;
    if (p->has_s) return KL_ATTR_STRING;
    if (p->has_i) return KL_ATTR_INT;
    if (p->has_f) return KL_ATTR_FLOAT;
    return KL_ATTR_UNDEFINED;
}

/* protobuf `bytes` as a NUL-terminated string (an empty field has no data pointer). */
static const char *bytes_to_str(kl_arena *a, const ProtobufCBinaryData *b)
{
    return b->len ? kl_strndup(a, (const char *)b->data, b->len) : kl_strdup(a, "");
}

static bool load_tensor_attr(loader *L, const kl_node *n, const Onnx__AttributeProto *p,
                             kl_attr *out)
{
    if (!p->t)
        return kl_error(L->d, n, "attribute '%s' is a TENSOR without a tensor", out->name);
    kl_value *v = kl_alloc(L->a, sizeof *v);  /* a constant outside g->values */
    v->name = kl_strdup(L->a, p->t->name && *p->t->name ? p->t->name : out->name);
    v->input_index = v->output_index = v->id = -1;
    kl_tensor_origin origin = {
        .what = kl_sprintf(L->a, "attribute '%s'", out->name),
        .node = n,
        .base_dir = L->base_dir,
        .keep = L->unrolling > 0,
    };
    out->t = v;
    return kl_onnx_tensor_to_value(L->a, p->t, &origin, v, L->d);
}

static bool load_attr(loader *L, const kl_node *n, const Onnx__AttributeProto *p, kl_attr *out)
{
    out->name = kl_strdup(L->a, str_or_empty(p->name));
    /* Types the IR has no member for (TENSORS, GRAPHS, SPARSE_TENSOR, TYPE_PROTO...) keep
       their ONNX number, so that the operator needing one can say it is unsupported. */
    out->type = (kl_attr_type)attr_type_of(p);
    switch (out->type) {
    case KL_ATTR_FLOAT: out->f = p->f; break;
    case KL_ATTR_INT: out->i = p->i; break;
    case KL_ATTR_STRING: out->s = bytes_to_str(L->a, &p->s); break;
    case KL_ATTR_TENSOR: return load_tensor_attr(L, n, p, out);
    case KL_ATTR_GRAPH: out->g = NULL; break; /* subgraphs: issue 3 */
    case KL_ATTR_FLOATS:
        out->n = (int)p->n_floats;
        out->floats = kl_alloc_array(L->a, p->n_floats + 1, sizeof *out->floats);
        for (size_t i = 0; i < p->n_floats; i++)
            out->floats[i] = p->floats[i];
        break;
    case KL_ATTR_INTS:
        out->n = (int)p->n_ints;
        out->ints = kl_alloc_array(L->a, p->n_ints + 1, sizeof *out->ints);
        if (p->n_ints) /* an INTS attribute may have none, and then no array */
            memcpy(out->ints, p->ints, p->n_ints * sizeof *p->ints);
        break;
    case KL_ATTR_STRINGS:
        out->n = (int)p->n_strings;
        out->strings = kl_alloc_array(L->a, p->n_strings + 1, sizeof *out->strings);
        for (size_t i = 0; i < p->n_strings; i++)
            out->strings[i] = bytes_to_str(L->a, &p->strings[i]);
        break;
    default: break;
    }
    return true;
}

/* ---- nodes ---------------------------------------------------------------------------- */

/* Create the node with its attributes and define its outputs (inputs come later, once every
 * value of the graph is known, since the model's node order need not be topological). */
static kl_node *load_node(loader *L, const Onnx__NodeProto *p)
{
    const char *domain = normalize_domain(p->domain);
    const char *op_type = str_or_empty(p->op_type);
    int64_t opset = opset_of(&L->g->meta, domain);
    kl_node *n = kl_node_new(L->g, op_type, domain, opset > 0 ? (int)opset : 0);
    n->guard = L->guard;
    if (p->name && *p->name)
        n->name = kl_strdup(L->a, p->name);
    if (opset < 0)
        kl_error(L->d, n, "the model imports no opset for domain '%s'",
                 *domain ? domain : "ai.onnx");

    n->n_attrs = (int)p->n_attribute;
    n->attrs = kl_alloc_array(L->a, p->n_attribute + 1, sizeof *n->attrs);
    for (size_t i = 0; i < p->n_attribute; i++)
        load_attr(L, n, p->attribute[i], &n->attrs[i]);

    n->n_outputs = (int)p->n_output;
    n->outputs = kl_alloc_array(L->a, p->n_output + 1, sizeof *n->outputs);
    for (size_t i = 0; i < p->n_output; i++) {
        const char *name = str_or_empty(p->output[i]);
        if (!*name)
            continue; /* omitted optional output */
        kl_value *v = define_value(L, name, n, NULL);
        if (v)
            v->producer = n;
        n->outputs[i] = v;
    }
    return n;
}

static void link_inputs(loader *L, kl_node *n, const Onnx__NodeProto *p)
{
    n->n_inputs = (int)p->n_input;
    n->inputs = kl_alloc_array(L->a, p->n_input + 1, sizeof *n->inputs);
    for (size_t i = 0; i < p->n_input; i++) {
        const char *name = str_or_empty(p->input[i]);
        if (!*name)
            continue; /* omitted optional input */
        kl_value *v = lookup(L, name);
        if (!v) {
            kl_error(L->d, n, "input '%s' of this node is not produced by any node, graph input "
                     "or initializer", name);
            continue;
        }
        n->inputs[i] = v;
        v->n_uses++;
    }
}

static void inline_branches(loader *L, kl_node *n, const Onnx__NodeProto *p);
static void unroll_scan(loader *L, kl_node *n, const Onnx__NodeProto *p);
static void unroll_loop(loader *L, kl_node *n, const Onnx__NodeProto *p);
static void unroll_sequence_map(loader *L, kl_node *n, const Onnx__NodeProto *p);
static void expand_flex_attention(loader *L, kl_node *n, const Onnx__NodeProto *p);

/* The nodes of the graph being loaded (the main graph or an inlined subgraph), then the
 * branches of its If nodes, inlined once every value they may read is defined. */
static void load_nodes(loader *L, const Onnx__GraphProto *gp)
{
    kl_node **nodes = kl_alloc_array(L->a, gp->n_node + 1, sizeof *nodes);
    for (size_t i = 0; i < gp->n_node; i++)
        nodes[i] = load_node(L, gp->node[i]);
    for (size_t i = 0; i < gp->n_node; i++)
        link_inputs(L, nodes[i], gp->node[i]);
    for (size_t i = 0; i < gp->n_node; i++) {
        if (!strcmp(nodes[i]->domain, "ai.onnx.preview") &&
            !strcmp(nodes[i]->op_type, "FlexAttention"))
            expand_flex_attention(L, nodes[i], gp->node[i]);
        if (*nodes[i]->domain)
            continue;
        if (!strcmp(nodes[i]->op_type, "If"))
            inline_branches(L, nodes[i], gp->node[i]);
        else if (!strcmp(nodes[i]->op_type, "Scan"))
            unroll_scan(L, nodes[i], gp->node[i]);
        else if (!strcmp(nodes[i]->op_type, "Loop"))
            unroll_loop(L, nodes[i], gp->node[i]);
        else if (!strcmp(nodes[i]->op_type, "SequenceMap"))
            unroll_sequence_map(L, nodes[i], gp->node[i]);
    }
}

/* ---- If: both branches inlined into the graph ------------------------------------------
 *
 * A branch's nodes join the graph under a guard (the If's condition, and which value of it
 * runs the branch; nested Ifs chain their guards), its values are renamed where they clash
 * with others, and it reads outer values by name. The If node is left choosing between the
 * branches' outputs: its inputs become [cond, then outputs..., else outputs...]
 * (ops/control.c infers and lowers that form). */

static const Onnx__GraphProto *branch_proto(loader *L, const kl_node *n,
                                            const Onnx__NodeProto *p, const char *name)
{
    for (size_t i = 0; i < p->n_attribute; i++)
        if (p->attribute[i]->name && !strcmp(p->attribute[i]->name, name)) {
            if (p->attribute[i]->g)
                return p->attribute[i]->g;
            break;
        }
    kl_error(L->d, n, "attribute '%s' (a graph) is missing", name);
    return NULL;
}

static void load_value_info(loader *L, const Onnx__GraphProto *gp);

/* The branch's nodes into the graph under `guard`; its outputs into out[0..n_out). */
static bool inline_branch(loader *L, kl_node *n, const Onnx__GraphProto *gp, const char *side,
                          kl_guard *guard, kl_value **out)
{
    if (gp->n_input)
        return kl_error(L->d, n, "%s has %zu inputs; an If branch takes none", side,
                        gp->n_input);
    if ((int)gp->n_output != n->n_outputs)
        return kl_error(L->d, n, "%s has %zu outputs but the node has %d", side, gp->n_output,
                        n->n_outputs);
    scope inner = {.parent = L->sc};
    scope *saved_scope = L->sc;
    kl_guard *saved_guard = L->guard;
    L->sc = &inner;
    L->guard = guard;
    int errors_before = L->d->n_errors;
    load_initializers(L, gp);
    load_nodes(L, gp);
    load_value_info(L, gp);
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = str_or_empty(gp->output[i]->name);
        out[i] = lookup(L, name);
        if (!out[i])
            kl_error(L->d, n, "output '%s' of %s is not produced by any node, input or "
                     "initializer", name, side);
    }
    L->sc = saved_scope;
    L->guard = saved_guard;
    return L->d->n_errors == errors_before;
}

static void inline_branches(loader *L, kl_node *n, const Onnx__NodeProto *p)
{
    kl_value *cond = kl_node_input(n, 0);
    if (!cond) {
        kl_error(L->d, n, "input 0 (the condition) is missing");
        return;
    }
    const Onnx__GraphProto *then_g = branch_proto(L, n, p, "then_branch");
    const Onnx__GraphProto *else_g = branch_proto(L, n, p, "else_branch");
    if (!then_g || !else_g)
        return;
    int k = n->n_outputs;
    kl_value **in = kl_alloc_array(L->a, 2 * (size_t)k + 1, sizeof *in);
    in[0] = cond;
    kl_guard *on_true = kl_alloc(L->a, sizeof *on_true);
    kl_guard *on_false = kl_alloc(L->a, sizeof *on_false);
    *on_true = (kl_guard){cond, true, L->guard, NULL};
    *on_false = (kl_guard){cond, false, L->guard, NULL};
    if (!inline_branch(L, n, then_g, "then_branch", on_true, in + 1) ||
        !inline_branch(L, n, else_g, "else_branch", on_false, in + 1 + k))
        return;
    for (int i = 0; i < 2 * k; i++)
        in[1 + i]->n_uses++;
    n->n_inputs = 1 + 2 * k;
    n->inputs = in;
}

/* ---- value_info and graph outputs ----------------------------------------------------- */

static kl_dtype declared_dtype(const Onnx__TypeProto *tp)
{
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !tp->tensor_type->has_elem_type)
        return KL_UNDEFINED;
    return (kl_dtype)tp->tensor_type->elem_type;
}

/* ---- Scan: the body unrolled over the sequence -----------------------------------------
 *
 * The sequence length is a dim of the scan inputs, so it must be known when the model loads
 * (a graph input bound by --shape, or a constant). Every step inlines the body once (its inputs
 * bound to the state values and to the step's slice of each scan input, a Gather at the step's
 * index), and the Scan's outputs become the last states and the steps' outputs stacked
 * (Unsqueeze + Concat). Opset 8's batch dim is unrolled the same way. At most
 * SCAN_MAX_STEPS steps (batch x sequence), like the recurrent operators' unrolling. */
enum { SCAN_MAX_STEPS = 256 };
/* All bodies inlined in one model, nested Loops and Scans multiplying: beyond this the model's
 * code would grow past reason (and a crafted model could make it grow exponentially). */
enum { MAX_STEPS_INLINED = 4096 };

static kl_value *fresh_value(loader *L, const char *base)
{
    const char *unique = base;
    while (names_get(&L->all, unique))
        unique = kl_sprintf(L->a, "%s__%d", base, ++L->next_suffix);
    kl_value *v = kl_value_new(L->g, unique);
    names_put(L->a, &L->all, v);
    return v;
}

/* An int64 constant: a scalar (rank 0) or a one-element list (rank 1). */
static kl_value *const_i64(loader *L, const kl_node *n, int rank, int64_t x)
{
    kl_value *c = fresh_value(L, kl_sprintf(L->a, "%s/k", n->name));
    int64_t *data = kl_alloc(L->a, sizeof *data);
    *data = x;
    c->dtype = KL_I64;
    c->shape.rank = rank;
    c->shape.dim[0] = 1;
    c->has_shape = true;
    c->data = data;
    return c;
}

/* A node of the unrolled Scan writing a fresh value, with the attribute `axis` when has_axis.
 * The forms are opset 13's whatever the model imports (Unsqueeze takes its axes as an input). */
static kl_value *scan_node(loader *L, const kl_node *n, const char *op, int n_in, kl_value **in,
                           int64_t axis, bool has_axis)
{
    kl_node *m = kl_node_new(L->g, op, "", 13);
    m->guard = L->guard;
    m->name = kl_sprintf(L->a, "%s/%s_%d", n->name, op, m->id);
    m->n_inputs = n_in;
    m->inputs = kl_alloc_array(L->a, (size_t)n_in + 1, sizeof *m->inputs);
    for (int i = 0; i < n_in; i++) {
        m->inputs[i] = in[i];
        in[i]->n_uses++;
    }
    if (has_axis) {
        m->n_attrs = 1;
        m->attrs = kl_alloc_array(L->a, 1, sizeof *m->attrs);
        m->attrs[0] = (kl_attr){.name = "axis", .type = KL_ATTR_INT, .i = axis};
    }
    m->n_outputs = 1;
    m->outputs = kl_alloc_array(L->a, 2, sizeof *m->outputs);
    m->outputs[0] = fresh_value(L, kl_sprintf(L->a, "%s/%s_out", n->name, op));
    m->outputs[0]->producer = m;
    return m->outputs[0];
}

/* x[..., index, ...] along axis, the axis removed */
static kl_value *take(loader *L, const kl_node *n, kl_value *x, int64_t axis, int64_t index)
{
    kl_value *in[2] = {x, const_i64(L, n, 0, index)};
    return scan_node(L, n, "Gather", 2, in, axis, true);
}

/* The values stacked along a new axis (in reverse order when `reverse`). */
static kl_value *stack(loader *L, const kl_node *n, kl_value **v, int count, int64_t axis,
                       bool reverse)
{
    kl_value **parts = kl_alloc_array(L->a, (size_t)count + 1, sizeof *parts);
    for (int i = 0; i < count; i++) {
        kl_value *in[2] = {v[reverse ? count - 1 - i : i], const_i64(L, n, 1, axis)};
        parts[i] = scan_node(L, n, "Unsqueeze", 2, in, 0, false);
    }
    return scan_node(L, n, "Concat", count, parts, axis, true);
}

/* The graph attribute `body` of a Scan, Loop or SequenceMap; NULL after a diagnostic. */
static const Onnx__GraphProto *body_of(loader *L, const kl_node *n, const Onnx__NodeProto *p)
{
    for (size_t a = 0; a < p->n_attribute; a++)
        if (p->attribute[a]->name && !strcmp(p->attribute[a]->name, "body") && p->attribute[a]->g)
            return p->attribute[a]->g;
    kl_error(L->d, n, "attribute 'body' (a graph) is missing");
    return NULL;
}

/* The body inlined once with its inputs bound to in[]; its outputs into out[]. */
static bool inline_body(loader *L, kl_node *n, const Onnx__GraphProto *body, kl_value **in,
                        int n_in, kl_value **out, int n_out)
{
    if ((int)body->n_input != n_in || (int)body->n_output != n_out)
        return kl_error(L->d, n, "the body has %zu inputs and %zu outputs; the node needs %d and "
                        "%d", body->n_input, body->n_output, n_in, n_out);
    if (++L->steps_inlined > MAX_STEPS_INLINED)
        return kl_error(L->d, n, "more than %d steps of Loop and Scan bodies in all (nested ones "
                        "multiply): kiln unrolls them, and this model would grow too large",
                        MAX_STEPS_INLINED);
    scope inner = {.parent = L->sc};
    scope *saved = L->sc;
    L->sc = &inner;
    L->unrolling++;
    int errors_before = L->d->n_errors;
    for (int i = 0; i < n_in; i++)
        names_put_as(L->a, &inner.names, kl_strdup(L->a, str_or_empty(body->input[i]->name)),
                     in[i]);
    load_initializers(L, body);
    load_nodes(L, body);
    load_value_info(L, body);
    for (int i = 0; i < n_out; i++) {
        const char *name = str_or_empty(body->output[i]->name);
        if (!(out[i] = lookup(L, name)))
            kl_error(L->d, n, "output '%s' of the body is not produced by any node, input or "
                     "initializer", name);
    }
    L->unrolling--;
    L->sc = saved;
    return L->d->n_errors == errors_before;
}

typedef struct scan_form {
    const Onnx__GraphProto *body;
    int n_state, n_scan_in, n_scan_out;
    int64_t in_axis[KL_MAX_RANK * 4], out_axis[KL_MAX_RANK * 4];
    bool in_rev[KL_MAX_RANK * 4], out_rev[KL_MAX_RANK * 4];
} scan_form;

/* One sequence: states and scan inputs (whole sequences) in; last states and stacked scan
 * outputs out. */
static bool scan_sequence(loader *L, kl_node *n, const scan_form *f, kl_value **state,
                          kl_value **xs, int64_t steps, kl_value **last, kl_value **stacked)
{
    int n_in = f->n_state + f->n_scan_in, n_out = f->n_state + f->n_scan_out;
    kl_value **cur = kl_alloc_array(L->a, (size_t)n_in + 1, sizeof *cur);
    kl_value **res = kl_alloc_array(L->a, (size_t)n_out + 1, sizeof *res);
    kl_value **per_step = kl_alloc_array(L->a, (size_t)(steps * f->n_scan_out) + 1, sizeof *res);
    for (int i = 0; i < f->n_state; i++)
        cur[i] = state[i];
    for (int64_t t = 0; t < steps; t++) {
        for (int j = 0; j < f->n_scan_in; j++)
            cur[f->n_state + j] = take(L, n, xs[j], f->in_axis[j], f->in_rev[j] ? steps - 1 - t : t);
        if (!inline_body(L, n, f->body, cur, n_in, res, n_out))
            return false;
        for (int i = 0; i < f->n_state; i++)
            cur[i] = res[i];
        for (int k = 0; k < f->n_scan_out; k++)
            per_step[k * steps + t] = res[f->n_state + k];
    }
    for (int i = 0; i < f->n_state; i++)
        last[i] = cur[i];
    for (int k = 0; k < f->n_scan_out; k++)
        stacked[k] = stack(L, n, per_step + k * steps, (int)steps, f->out_axis[k], f->out_rev[k]);
    return true;
}

/* INTS attribute `name` into out[0..count) (default `def`); false if it has another length. */
static bool scan_ints(loader *L, const kl_node *n, const Onnx__NodeProto *p, const char *name,
                      int count, int64_t def, int64_t *out)
{
    for (int i = 0; i < count; i++)
        out[i] = def;
    for (size_t a = 0; a < p->n_attribute; a++) {
        if (!p->attribute[a]->name || strcmp(p->attribute[a]->name, name))
            continue;
        if ((int)p->attribute[a]->n_ints != count)
            return kl_error(L->d, n, "attribute '%s' has %zu values; the node needs %d", name,
                            p->attribute[a]->n_ints, count);
        for (int i = 0; i < count; i++)
            out[i] = p->attribute[a]->ints[i];
    }
    return true;
}

static int64_t scan_int(const Onnx__NodeProto *p, const char *name, int64_t def)
{
    for (size_t a = 0; a < p->n_attribute; a++)
        if (p->attribute[a]->name && !strcmp(p->attribute[a]->name, name))
            return p->attribute[a]->i;
    return def;
}

/* What v holds, inferred now where a node of the graph computes it (a sequence: its compound). */
static void infer_now(loader *L, kl_value *v)
{
    if (v->compound || v->has_shape || v->data || !v->producer)
        return;
    kl_diag scratch;
    kl_diag_init(&scratch, L->d->file);
    kl_infer_value_now(L->g, v, &scratch);
    kl_diag_free(&scratch);
}

/* The length of dim `axis` of x, which must be known now; -1 after a diagnostic. */
static int64_t known_dim(loader *L, const kl_node *n, kl_value *x, int64_t axis)
{
    int a;
    infer_now(L, x); /* computed: infer what computes it now */
    if (!x->has_shape && !x->data)
        return kl_error(L->d, n, "input '%s' has no shape known when the model is loaded: kiln "
                        "unrolls Scan over inputs whose shapes follow from the graph inputs "
                        "(bound with --shape) and constants",
                        x->name) - 1;
    if (!kl_axis_normalize(axis, x->shape.rank, &a))
        return kl_error(L->d, n, "axis %lld is out of range for input '%s' of rank %d",
                        (long long)axis, x->name, x->shape.rank) - 1;
    return x->shape.dim[a];
}

/* The Scan node leaves the graph: its outputs are made by the unrolled nodes. */
static void drop_node(loader *L, kl_node *n)
{
    kl_ptrvec *v = &L->g->nodes;
    for (int i = 0; i < v->n; i++)
        if (v->items[i] == n) {
            memmove(&v->items[i], &v->items[i + 1], (size_t)(v->n - i - 1) * sizeof *v->items);
            v->n--;
            break;
        }
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i])
            n->inputs[i]->n_uses--;
}

/* Output i of n := v (an Identity, so that the value keeps its name and place). */
static void produce(loader *L, kl_node *n, int i, kl_value *v)
{
    kl_value *out = n->outputs[i];
    if (!out)
        return;
    kl_value *copy = scan_node(L, n, "Identity", 1, &v, 0, false);
    kl_node *m = copy->producer;
    copy->producer = NULL; /* made for nothing: the node writes the Scan's output instead */
    m->outputs[0] = out;
    out->producer = m;
}

static void unroll_scan(loader *L, kl_node *n, const Onnx__NodeProto *p)
{
    scan_form f = {0};
    bool batched = n->opset < 9; /* opset 8: [batch, sequence, ...], sequence_lens first */
    int first = batched ? 1 : 0;
    int64_t m = scan_int(p, "num_scan_inputs", -1);
    int n_vals = n->n_inputs - first;
    if (!(f.body = body_of(L, n, p)))
        return;
    if (m < 1 || m > n_vals || m > KL_MAX_RANK * 4 || n->n_outputs - (n_vals - m) < 0 ||
        n->n_outputs - (n_vals - m) > KL_MAX_RANK * 4) {
        kl_error(L->d, n, "num_scan_inputs %lld does not fit the node's %d inputs and %d outputs",
                 (long long)m, n->n_inputs, n->n_outputs);
        return;
    }
    if (batched && kl_node_input(n, 0)) {
        kl_error(L->d, n, "input 'sequence_lens' is not supported (sequences of equal length "
                 "only)");
        return;
    }
    f.n_scan_in = (int)m;
    f.n_state = n_vals - f.n_scan_in;
    f.n_scan_out = n->n_outputs - f.n_state;
    int64_t dirs[KL_MAX_RANK * 4];
    if (!scan_ints(L, n, p, batched ? "directions" : "scan_input_directions", f.n_scan_in, 0,
                   dirs) ||
        !scan_ints(L, n, p, "scan_input_axes", f.n_scan_in, 0, f.in_axis) ||
        !scan_ints(L, n, p, "scan_output_axes", f.n_scan_out, 0, f.out_axis))
        return;
    for (int j = 0; j < f.n_scan_in; j++)
        f.in_rev[j] = dirs[j] != 0;
    if (!scan_ints(L, n, p, "scan_output_directions", f.n_scan_out, 0, dirs))
        return;
    for (int k = 0; k < f.n_scan_out; k++)
        f.out_rev[k] = dirs[k] != 0;
    kl_value **state = n->inputs + first, **xs = n->inputs + first + f.n_state;
    for (int i = 0; i < n_vals; i++)
        if (!state[i]) {
            kl_error(L->d, n, "input %d is missing", first + i);
            return;
        }
    int64_t batch = 1, steps = -1;
    for (int j = 0; j < f.n_scan_in; j++) {
        int64_t len = known_dim(L, n, xs[j], batched ? 1 : f.in_axis[j]);
        if (len < 0)
            return;
        if (steps >= 0 && len != steps) {
            kl_error(L->d, n, "the scan inputs have sequences of %lld and %lld steps",
                     (long long)steps, (long long)len);
            return;
        }
        steps = len;
        if (batched)
            batch = known_dim(L, n, xs[j], 0);
    }
    /* a model refused already (a scan input's shape, or a graph input it comes from, said what
     * is wrong) is not unrolled: its steps would only repeat that */
    if (kl_diag_failed(L->d))
        return;
    /* (a fuzzed model's dims can make the product pass int64) */
    int64_t total = kl_mul_saturate(steps, batch);
    if (steps < 1 || batch < 1 || total > SCAN_MAX_STEPS) {
        kl_error(L->d, n, "%lld steps: kiln unrolls Scan over 1 to %d steps (batch x sequence)",
                 (long long)total, SCAN_MAX_STEPS);
        return;
    }
    kl_value **last = kl_alloc_array(L->a, (size_t)f.n_state + 1, sizeof *last);
    kl_value **stacked = kl_alloc_array(L->a, (size_t)f.n_scan_out + 1, sizeof *stacked);
    if (!batched) {
        if (!scan_sequence(L, n, &f, state, xs, steps, last, stacked))
            return;
    } else {
        /* each batch entry is a sequence of its own; results stacked along the batch axis */
        for (int j = 0; j < f.n_scan_in; j++)
            f.in_axis[j] = 0; /* the sequence axis once the batch axis is taken */
        for (int k = 0; k < f.n_scan_out; k++)
            f.out_axis[k] = 0;
        kl_value **per_b = kl_alloc_array(L->a, (size_t)(batch * n->n_outputs) + 1, sizeof *per_b);
        kl_value **bs = kl_alloc_array(L->a, (size_t)n_vals + 1, sizeof *bs);
        for (int64_t b = 0; b < batch; b++) {
            for (int i = 0; i < n_vals; i++)
                bs[i] = take(L, n, state[i], 0, b);
            if (!scan_sequence(L, n, &f, bs, bs + f.n_state, steps, last, stacked))
                return;
            for (int i = 0; i < f.n_state; i++)
                per_b[i * batch + b] = last[i];
            for (int k = 0; k < f.n_scan_out; k++)
                per_b[(f.n_state + k) * batch + b] = stacked[k];
        }
        for (int i = 0; i < f.n_state; i++)
            last[i] = stack(L, n, per_b + i * batch, (int)batch, 0, false);
        for (int k = 0; k < f.n_scan_out; k++)
            stacked[k] = stack(L, n, per_b + (f.n_state + k) * batch, (int)batch, 0, false);
    }
    for (int i = 0; i < f.n_state; i++)
        produce(L, n, i, last[i]);
    for (int k = 0; k < f.n_scan_out; k++)
        produce(L, n, f.n_state + k, stacked[k]);
    drop_node(L, n);
}

/* ---- FlexAttention with score_mod / prob_mod: the stages, the subgraphs between ---------
 *
 * FlexAttention(Q, K, V) becomes S = kiln.FlexScores(Q, K, V); S = score_mod(S);
 * P = kiln.FlexSoftmax(S); P = prob_mod(P); Y = kiln.FlexOutput(P, Q, K, V), each subgraph
 * inlined once with its one input bound (ops/attention.c has the stages). */

/* A graph attribute of the node, or NULL when absent (not an error: the mods are optional). */
static const Onnx__GraphProto *optional_graph(const Onnx__NodeProto *p, const char *name)
{
    for (size_t i = 0; i < p->n_attribute; i++)
        if (p->attribute[i]->name && !strcmp(p->attribute[i]->name, name))
            return p->attribute[i]->g;
    return NULL;
}

/* A stage node of domain kiln with the FlexAttention's scale and softmax_precision. */
static kl_value *flex_stage(loader *L, kl_node *n, const char *op, int n_in, kl_value **in)
{
    kl_node *m = kl_node_new(L->g, op, "kiln", 1);
    m->guard = L->guard;
    m->name = kl_sprintf(L->a, "%s/%s", n->name, op);
    m->n_inputs = n_in;
    m->inputs = kl_alloc_array(L->a, (size_t)n_in + 1, sizeof *m->inputs);
    for (int i = 0; i < n_in; i++) {
        m->inputs[i] = in[i];
        in[i]->n_uses++;
    }
    m->attrs = kl_alloc_array(L->a, (size_t)n->n_attrs + 1, sizeof *m->attrs);
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, "scale") || !strcmp(n->attrs[i].name, "softmax_precision"))
            m->attrs[m->n_attrs++] = n->attrs[i];
    m->n_outputs = 1;
    m->outputs = kl_alloc_array(L->a, 2, sizeof *m->outputs);
    m->outputs[0] = fresh_value(L, kl_sprintf(L->a, "%s/%s_out", n->name, op));
    m->outputs[0]->producer = m;
    return m->outputs[0];
}

static void expand_flex_attention(loader *L, kl_node *n, const Onnx__NodeProto *p)
{
    const Onnx__GraphProto *score_mod = optional_graph(p, "score_mod");
    const Onnx__GraphProto *prob_mod = optional_graph(p, "prob_mod");
    if (!score_mod && !prob_mod)
        return; /* the fused operator */
    if (n->n_inputs != 3 || n->n_outputs != 1 || !n->inputs[0] || !n->inputs[1] ||
        !n->inputs[2]) {
        kl_error(L->d, n, "FlexAttention takes three inputs (Q, K, V) and has one output");
        return;
    }
    kl_value *qkv[3] = {n->inputs[0], n->inputs[1], n->inputs[2]};
    kl_value *s = flex_stage(L, n, "FlexScores", 3, qkv), *modded;
    if (score_mod) {
        if (!inline_body(L, n, score_mod, &s, 1, &modded, 1))
            return;
        s = modded;
    }
    kl_value *prob = flex_stage(L, n, "FlexSoftmax", 1, &s);
    if (prob_mod) {
        if (!inline_body(L, n, prob_mod, &prob, 1, &modded, 1))
            return;
        prob = modded;
    }
    kl_value *in[4] = {prob, qkv[0], qkv[1], qkv[2]};
    produce(L, n, 0, flex_stage(L, n, "FlexOutput", 4, in));
    drop_node(L, n);
}

/* ---- Loop: the body unrolled over a trip count known when the model loads --------------
 *
 * Iteration i runs under the guard of the condition it starts with (cond_i), so that a
 * condition the body computes at run time ends the loop: the iteration's nodes are skipped,
 * and an If node (the inlined form, see above) carries cond_{i+1} and the loop values on as
 * cond_i ? (body's) : (false, the values unchanged). Conditions that fold (the usual "true"
 * passed through) leave straight-line code. Scan outputs stack every iteration's values, so
 * their length must not depend on the inputs: when the loop may end early, a trap (a branch
 * left out, KILN_E_UNCOMPILED_BRANCH) catches it at run time.
 * A trip count M given at run time is taken from the scan outputs instead, where the model
 * declares their length N (graph outputs of a fixed shape): N iterations are unrolled, each
 * running while t < M and its condition holds, and traps catch a loop that ends before N
 * iterations or would run past them. */

/* The value of an int64 scalar known when the model loads (an initializer or a Constant
 * node's tensor), or false. */
static bool load_time_int(const kl_value *v, int64_t *out)
{
    const void *data = v ? v->data : NULL;
    const kl_value *t = v;
    if (!data && v && v->producer && !strcmp(v->producer->op_type, "Constant")) {
        const kl_attr *a = kl_attr_find(v->producer, "value");
        if (a && a->type == KL_ATTR_TENSOR && a->t && a->t->data) {
            t = a->t;
            data = a->t->data;
        }
    }
    if (!data || t->dtype != KL_I64 || kl_shape_numel(&t->shape) != 1)
        return false;
    *out = *(const int64_t *)data;
    return true;
}

/* The fixed leading dim that the main graph declares for value `name` (among its outputs
 * and value_info), or for what a Cast or Identity makes of it, which has its shape; -1: none. */
static int64_t declared_length(const Onnx__GraphProto *gp, const char *name, int depth)
{
    for (size_t i = 0; gp && name && i < gp->n_output + gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi =
            i < gp->n_output ? gp->output[i] : gp->value_info[i - gp->n_output];
        const Onnx__TypeProto *tp = vi->type;
        /* tensor_type shares a union with the other kinds: read it only when it is the one */
        if (vi->name && !strcmp(vi->name, name) && tp &&
            tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type &&
            tp->tensor_type->shape && tp->tensor_type->shape->n_dim >= 1 &&
            tp->tensor_type->shape->dim[0]->value_case ==
                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            return tp->tensor_type->shape->dim[0]->dim_value;
    }
    for (size_t i = 0; gp && name && depth > 0 && i < gp->n_node; i++) {
        const Onnx__NodeProto *p = gp->node[i];
        if (p->n_input >= 1 && p->n_output == 1 && p->input[0] && !strcmp(p->input[0], name) &&
            (!p->domain || !*p->domain) && p->op_type &&
            (!strcmp(p->op_type, "Cast") || !strcmp(p->op_type, "Identity"))) {
            int64_t len = declared_length(gp, p->output[0], depth - 1);
            if (len >= 0)
                return len;
        }
    }
    return -1;
}

/* The length N of the Loop's scan outputs as the main graph declares them; false with a
 * diagnostic when none is declared or two disagree. */
static bool declared_trips(loader *L, const kl_node *n, int first_scan, int64_t *trips)
{
    const char *from = NULL;
    for (int k = first_scan; k < n->n_outputs; k++) {
        const char *name = n->outputs[k] ? n->outputs[k]->name : NULL;
        int64_t len = declared_length(L->main_graph, name, 4);
        if (len < 0)
            continue;
        if (from && len != *trips)
            return kl_error(L->d, n, "scan outputs '%s' and '%s' are declared %lld and %lld "
                            "long: one trip count cannot give both", from, name,
                            (long long)*trips, (long long)len);
        from = name;
        *trips = len;
    }
    if (!from) {
        char hint[512];
        kl_value_binding_hint(L->d, n->inputs[0], hint, sizeof hint);
        return kl_error(L->d, n, "the trip count M is given at run time and no scan output "
                        "declares its length: kiln unrolls Loop, so it needs M known when the "
                        "model loads (a constant, or computed from constants and bound "
                        "sequences) or a scan output of a fixed declared length%s", hint);
    }
    return true;
}

static kl_value *const_bool(loader *L, const kl_node *n, bool x)
{
    kl_value *c = fresh_value(L, kl_sprintf(L->a, "%s/%s", n->name, x ? "true" : "false"));
    bool *data = kl_alloc(L->a, sizeof *data);
    *data = x;
    c->dtype = KL_BOOL;
    c->has_shape = true;
    c->data = data;
    return c;
}

/* out = If(cond) in the inlined form: then[i] when cond, else[i] otherwise. */
static void carry_on(loader *L, const kl_node *n, kl_value *cond, kl_value **then_v,
                     kl_value **else_v, int count, kl_value **out)
{
    kl_node *m = kl_node_new(L->g, "If", "", 13);
    m->guard = L->guard;
    m->name = kl_sprintf(L->a, "%s/carry_%d", n->name, m->id);
    m->n_inputs = 1 + 2 * count;
    m->inputs = kl_alloc_array(L->a, (size_t)m->n_inputs + 1, sizeof *m->inputs);
    m->inputs[0] = cond;
    for (int i = 0; i < count; i++) {
        m->inputs[1 + i] = then_v[i];
        m->inputs[1 + count + i] = else_v[i];
    }
    for (int i = 0; i < m->n_inputs; i++)
        m->inputs[i]->n_uses++;
    m->n_outputs = count;
    m->outputs = kl_alloc_array(L->a, (size_t)count + 1, sizeof *m->outputs);
    for (int i = 0; i < count; i++) {
        out[i] = m->outputs[i] = fresh_value(L, kl_sprintf(L->a, "%s/carried", n->name));
        out[i]->producer = m;
    }
}

/* ---- SequenceMap: the body inlined once per position ------------------------------------
 *
 * The length of the sequences must be known when the model loads: a graph input bound with
 * --sequence, or a sequence the graph builds from what is known then (inferred now, like a
 * Scan's computed input). Step i binds the body's inputs to tensor i of each sequence input
 * and to each tensor input as it is; output k becomes the sequence of the steps' outputs k, a
 * SequenceConstruct (an empty sequence: SequenceEmpty of float, ONNX's default), which
 * ops/sequence.c compiles away like any other. */

/* The tensors of sequence input v (*count of them), known now; NULL after a diagnostic. */
static kl_value **known_sequence(loader *L, const kl_node *n, const kl_value *v, int64_t *count)
{
    kl_compound *c = v->compound;
    if (!c && L->d->n_errors > 0)
        return NULL; /* an unbound sequence input, say: already reported */
    if (!c || c->optional) {
        kl_error(L->d, n, "input '%s': kiln unrolls SequenceMap over sequences whose tensors are "
                 "known when the model loads (graph inputs bound with --sequence, or sequences "
                 "built from them and from constants)", v->name);
        return NULL;
    }
    *count = c->n;
    return c->n ? kl_sequence_items(L->g, c, L->d) : kl_alloc(L->a, sizeof(kl_value *));
}

static void unroll_sequence_map(loader *L, kl_node *n, const Onnx__NodeProto *p)
{
    const Onnx__GraphProto *body = body_of(L, n, p);
    if (!body)
        return;
    if (n->n_inputs < 1 || !n->inputs[0]) {
        kl_error(L->d, n, "input 0 (the sequence) is missing");
        return;
    }
    kl_value ***seq = kl_alloc_array(L->a, (size_t)n->n_inputs, sizeof *seq);
    int64_t count = -1, len;
    for (int j = 0; j < n->n_inputs; j++) {
        kl_value *v = n->inputs[j];
        if (!v) {
            kl_error(L->d, n, "input %d is missing", j);
            return;
        }
        infer_now(L, v);
        if (j > 0 && !v->compound)
            continue; /* a tensor input: every step reads it whole */
        if (!(seq[j] = known_sequence(L, n, v, &len)))
            return;
        if (count >= 0 && len != count) {
            kl_error(L->d, n, "input '%s' holds %lld tensors, input '%s' %lld: the sequences of a "
                     "SequenceMap must have one length", v->name, (long long)len,
                     n->inputs[0]->name, (long long)count);
            return;
        }
        count = len;
    }
    kl_value **in = kl_alloc_array(L->a, (size_t)n->n_inputs + 1, sizeof *in);
    kl_value **res = kl_alloc_array(L->a, (size_t)n->n_outputs + 1, sizeof *res);
    kl_value **steps = kl_alloc_array(L->a, (size_t)(count * n->n_outputs) + 1, sizeof *steps);
    for (int64_t i = 0; i < count; i++) {
        for (int j = 0; j < n->n_inputs; j++)
            in[j] = seq[j] ? seq[j][i] : n->inputs[j];
        if (!inline_body(L, n, body, in, n->n_inputs, res, n->n_outputs))
            return;
        for (int k = 0; k < n->n_outputs; k++)
            steps[k * count + i] = res[k];
    }
    for (int k = 0; k < n->n_outputs; k++) {
        kl_value *out = scan_node(L, n, count ? "SequenceConstruct" : "SequenceEmpty", (int)count,
                                  steps + k * count, 0, false);
        produce(L, n, k, out);
    }
    drop_node(L, n);
}

/* cond and t < m: whether iteration t runs, for a trip count m given at run time. */
static kl_value *below_trip_count(loader *L, const kl_node *n, kl_value *cond, int64_t t,
                                  kl_value *m)
{
    kl_value *less_in[2] = {const_i64(L, n, 0, t), m};
    kl_value *and_in[2] = {cond, scan_node(L, n, "Less", 2, less_in, 0, false)};
    return scan_node(L, n, "And", 2, and_in, 0, false);
}

static void unroll_loop(loader *L, kl_node *n, const Onnx__NodeProto *p)
{
    const Onnx__GraphProto *body = body_of(L, n, p);
    if (!body)
        return;
    int64_t trips = 0;
    kl_value *m = kl_node_input(n, 0), *run_time_m = NULL;
    if (m) /* computed from what is known now (a SequenceLength) */
        infer_now(L, m);
    int n_vals = n->n_inputs - 2, n_scan = n->n_outputs - (n->n_inputs - 2);
    if (n_vals < 0 || n_scan < 0) {
        kl_error(L->d, n, "%d inputs and %d outputs do not make a Loop", n->n_inputs,
                 n->n_outputs);
        return;
    }
    if (!load_time_int(m, &trips)) {
        if (!m) {
            kl_error(L->d, n, "the trip count M is missing: kiln unrolls Loop over a trip count "
                     "known when the model loads");
            return;
        }
        if (!declared_trips(L, n, n_vals, &trips))
            return;
        run_time_m = m;
    }
    if (trips < 0 || trips > SCAN_MAX_STEPS || (trips == 0 && n_scan > 0)) {
        kl_error(L->d, n, "trip count %lld: kiln unrolls Loop over 0 to %d iterations (at "
                 "least 1 with scan outputs)", (long long)trips, SCAN_MAX_STEPS);
        return;
    }
    for (int i = 0; i < n_vals; i++)
        if (!n->inputs[2 + i]) {
            kl_error(L->d, n, "input %d is missing", 2 + i);
            return;
        }
    kl_value *cond = kl_node_input(n, 1) ? n->inputs[1] : const_bool(L, n, true);
    kl_value *no = const_bool(L, n, false);
    int n_in = 2 + n_vals, n_out = 1 + n_vals + n_scan;
    kl_value **v = kl_alloc_array(L->a, (size_t)n_vals + 2, sizeof *v);
    kl_value **in = kl_alloc_array(L->a, (size_t)n_in + 1, sizeof *in);
    kl_value **res = kl_alloc_array(L->a, (size_t)n_out + 1, sizeof *res);
    kl_value **kept = kl_alloc_array(L->a, (size_t)n_vals + 2, sizeof *kept);
    kl_value **per_step = kl_alloc_array(L->a, (size_t)(trips * n_scan) + 1, sizeof *per_step);
    for (int i = 0; i < n_vals; i++)
        v[i] = n->inputs[2 + i];
    kl_guard *outer = L->guard;
    for (int64_t t = 0; t < trips; t++) {
        if (run_time_m)
            cond = below_trip_count(L, n, cond, t, run_time_m);
        kl_guard *runs = kl_alloc(L->a, sizeof *runs);
        *runs = (kl_guard){cond, true, outer, NULL};
        if (n_scan > 0) { /* ending early would make the scan outputs shorter */
            kl_guard *ends = kl_alloc(L->a, sizeof *ends);
            *ends = (kl_guard){cond, false, outer, NULL};
            ends->broken = kl_sprintf(L->a, "node '%s' (Loop): the loop ends after %lld of %lld "
                                      "iterations, and scan outputs shorter than the trip "
                                      "count are not supported", n->name, (long long)t,
                                      (long long)trips);
            kl_ptrvec_push(L->a, &L->g->broken_guards, ends);
        }
        in[0] = const_i64(L, n, 0, t);
        in[1] = cond;
        for (int i = 0; i < n_vals; i++)
            in[2 + i] = v[i];
        L->guard = runs;
        bool ok = inline_body(L, n, body, in, n_in, res, n_out);
        L->guard = outer;
        if (!ok)
            return;
        for (int k = 0; k < n_scan; k++)
            per_step[k * trips + t] = res[1 + n_vals + k];
        /* then: the body's condition and values; else: stopped, the values as they were */
        kept[0] = no;
        for (int i = 0; i < n_vals; i++)
            kept[1 + i] = v[i];
        kl_value **next = kl_alloc_array(L->a, (size_t)n_vals + 2, sizeof *next);
        carry_on(L, n, cond, res, kept, 1 + n_vals, next);
        cond = next[0];
        for (int i = 0; i < n_vals; i++)
            v[i] = next[1 + i];
    }
    if (run_time_m) { /* running on past the declared length */
        kl_guard *more = kl_alloc(L->a, sizeof *more);
        *more = (kl_guard){below_trip_count(L, n, cond, trips, run_time_m), true, outer, NULL};
        more->broken = kl_sprintf(L->a, "node '%s' (Loop): the loop runs past the %lld "
                                  "iterations its scan outputs are declared to hold", n->name,
                                  (long long)trips);
        kl_ptrvec_push(L->a, &L->g->broken_guards, more);
    }
    for (int i = 0; i < n_vals; i++)
        produce(L, n, i, v[i]);
    for (int k = 0; k < n_scan; k++)
        produce(L, n, n_vals + k, stack(L, n, per_step + k * trips, (int)trips, 0, false));
    drop_node(L, n);
}

static void load_value_info(loader *L, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_value_info; i++) {
        kl_value *v = lookup(L, str_or_empty(gp->value_info[i]->name));
        if (v && v->producer && v->dtype == KL_UNDEFINED)
            v->dtype = declared_dtype(gp->value_info[i]->type);
    }
}

/* Record what the model says of a computed output; inference recomputes the shape, so it is
 * kept only as a hint (has_shape stays false) along with the symbolic dim names. */
static void record_output_type(loader *L, kl_value *v, const Onnx__TypeProto *tp)
{
    if (!v->producer)
        return; /* an input or a constant passed through: already typed */
    if (v->dtype == KL_UNDEFINED)
        v->dtype = declared_dtype(tp);
    if (declared_dtype(tp) == KL_UNDEFINED || !tp->tensor_type->shape ||
        tp->tensor_type->shape->n_dim > KL_MAX_RANK)
        return;
    const Onnx__TensorShapeProto *s = tp->tensor_type->shape;
    v->shape.rank = (int)s->n_dim;
    v->shape_declared = true;
    for (size_t i = 0; i < s->n_dim; i++) {
        bool fixed = s->dim[i]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        v->shape.dim[i] = fixed ? s->dim[i]->dim_value : -1;
        if (!fixed || v->shape.dim[i] < 0) v->shape_declared = false;
        if (s->dim[i]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
            s->dim[i]->dim_param && *s->dim[i]->dim_param)
            v->dim_param[i] = kl_strdup(L->a, s->dim[i]->dim_param);
    }
}

static void load_outputs(loader *L, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = str_or_empty(gp->output[i]->name);
        kl_value *v = names_get(&L->names, name);
        if (!v) {
            kl_error(L->d, NULL, "graph output '%s' is not produced by any node, graph input or "
                     "initializer", name);
            continue;
        }
        if (v->output_index < 0)
            v->output_index = L->g->outputs.n;
        kl_ptrvec_push(L->a, &L->g->outputs, v);
        record_output_type(L, v, gp->output[i]->type);
    }
    if (gp->n_output == 0)
        kl_error(L->d, NULL, "the graph has no outputs");
}

/* ---- topological sort ----------------------------------------------------------------- */

/* Min-heap of node positions: Kahn's algorithm that always takes the earliest ready node, so
 * a model already in topological order keeps its order exactly. */
typedef struct index_heap {
    int *items;
    int n;
} index_heap;

static void heap_push(index_heap *h, int x)
{
    int i = h->n++;
    while (i > 0 && h->items[(i - 1) / 2] > x) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = x;
}

static int heap_pop(index_heap *h)
{
    int top = h->items[0], last = h->items[--h->n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->items[c + 1] < h->items[c])
            c++;
        if (last <= h->items[c])
            break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (h->n > 0)
        h->items[i] = last;
    return top;
}

/* Producer -> consumer edges in CSR form, one per input slot fed by a node. */
typedef struct edges {
    int *start;   /* consumers of node i are target[start[i] .. start[i+1]) */
    int *target;
} edges;

/* What node n waits for: input k < n_inputs, then the conditions of its guard. */
static int n_deps(const kl_node *n)
{
    int count = n->n_inputs;
    for (const kl_guard *g = n->guard; g; g = g->outer)
        count++;
    return count;
}

static const kl_node *dep_producer(const kl_node *n, int k)
{
    if (k < n->n_inputs)
        return n->inputs[k] ? n->inputs[k]->producer : NULL;
    const kl_guard *g = n->guard;
    for (k -= n->n_inputs; k > 0; k--)
        g = g->outer;
    return g->cond ? g->cond->producer : NULL;
}

static edges build_edges(kl_arena *a, kl_node **nodes, int n)
{
    edges e = {kl_alloc_array(a, (size_t)n + 1, sizeof(int)), NULL};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n_deps(nodes[i]); k++)
            if (dep_producer(nodes[i], k))
                e.start[dep_producer(nodes[i], k)->id + 1]++;
    for (int i = 0; i < n; i++)
        e.start[i + 1] += e.start[i];
    e.target = kl_alloc_array(a, (size_t)e.start[n] + 1, sizeof(int));
    int *fill = kl_alloc_array(a, (size_t)n + 1, sizeof(int));
    memcpy(fill, e.start, (size_t)n * sizeof(int));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n_deps(nodes[i]); k++)
            if (dep_producer(nodes[i], k))
                e.target[fill[dep_producer(nodes[i], k)->id]++] = i;
    return e;
}

/* Nodes left by Kahn's algorithm include those merely downstream of a cycle; walking back
 * through producers that are also left over must close a loop, which is what we report. */
static void report_cycle(loader *L, kl_node **nodes, const int *pending)
{
    int n = L->g->nodes.n, start = 0;
    while (pending[start] == 0)
        start++;
    int *seen_at = kl_alloc_array(L->a, (size_t)n, sizeof(int));
    int *path = kl_alloc_array(L->a, (size_t)n + 1, sizeof(int));
    int len = 0, cur = start;
    while (!seen_at[cur]) {
        path[len++] = cur;
        seen_at[cur] = len;
        kl_node *c = nodes[cur];
        for (int k = 0; k < c->n_inputs; k++) {
            kl_value *in = c->inputs[k];
            if (in && in->producer && pending[in->producer->id] > 0) {
                cur = in->producer->id;
                break;
            }
        }
    }
    /* path[first .. len) is the loop, each entry produced by the next: print it in data-flow
       order (descending positions), starting at the node that comes first in the model */
    int first = seen_at[cur] - 1, loop_len = len - first, head = first;
    for (int i = first; i < len; i++)
        if (path[i] < path[head])
            head = i;
    char *text = kl_strdup(L->a, "");
    for (int k = 0; k < loop_len; k++) {
        const kl_node *c = nodes[path[first + (head - first - k + loop_len) % loop_len]];
        text = kl_sprintf(L->a, "%s'%s' (%s) -> ", text, c->name, c->op_type);
    }
    text = kl_sprintf(L->a, "%sback to '%s'", text, nodes[path[head]]->name);
    kl_error(L->d, nodes[path[head]], "graph has a cycle through nodes %s", text);
}

static bool sort_nodes(loader *L)
{
    int n = L->g->nodes.n;
    kl_node **nodes = kl_alloc_array(L->a, (size_t)n + 1, sizeof *nodes);
    for (int i = 0; i < n; i++) {
        nodes[i] = L->g->nodes.items[i];
        nodes[i]->id = i;  /* positions in the model's order, for the edge arrays */
    }
    edges e = build_edges(L->a, nodes, n);
    int *pending = kl_alloc_array(L->a, (size_t)n + 1, sizeof(int));
    for (int i = 0; i < n; i++)
        for (int k = e.start[i]; k < e.start[i + 1]; k++)
            pending[e.target[k]]++;
    index_heap ready = {kl_alloc_array(L->a, (size_t)n + 1, sizeof(int)), 0};
    for (int i = 0; i < n; i++)
        if (pending[i] == 0)
            heap_push(&ready, i);
    int done = 0;
    while (ready.n > 0) {
        int i = heap_pop(&ready);
        L->g->nodes.items[done++] = nodes[i];
        for (int k = e.start[i]; k < e.start[i + 1]; k++)
            if (--pending[e.target[k]] == 0)
                heap_push(&ready, e.target[k]);
    }
    if (done < n) {
        /* leave the node list whole (model order) so that nothing is lost */
        for (int i = 0; i < n; i++)
            L->g->nodes.items[i] = nodes[i];
        report_cycle(L, nodes, pending);
        return false;
    }
    for (int i = 0; i < n; i++)
        ((kl_node *)L->g->nodes.items[i])->id = i; /* ids follow execution order */
    return true;
}

/* ---- entry point ---------------------------------------------------------------------- */

static bool load_graph(loader *L, const Onnx__ModelProto *m, const kl_shape_binding *bindings,
                       int n_bindings)
{
    const Onnx__GraphProto *gp = m->graph;
    int errors_before = L->d->n_errors;
    L->main_graph = gp;
    read_meta(L, m);
    load_initializers(L, gp);
    load_inputs(L, gp, bindings, n_bindings);
    load_nodes(L, gp);
    if (L->d->n_errors > errors_before)
        return false;
    load_value_info(L, gp);
    load_outputs(L, gp);
    if (L->d->n_errors > errors_before)
        return false;
    return sort_nodes(L);
}

kl_graph *kl_onnx_load_bytes(kl_arena *a, const char *path, const void *bytes, size_t len,
                             const kl_shape_binding *bindings, int n_bindings, kl_diag *d)
{
    Onnx__ModelProto *m = decode_model(bytes, len, d);
    if (!m)
        return NULL;
    loader L = {
        .a = a,
        .g = kl_graph_new(a, path),
        .d = d,
        .base_dir = kl_onnx_dirname(a, path),
    };
    bool ok = load_graph(&L, m, bindings, n_bindings);
    onnx__model_proto__free_unpacked(m, NULL);
    return ok ? L.g : NULL;
}

kl_graph *kl_onnx_load(kl_arena *a, const char *path, const kl_shape_binding *bindings,
                       int n_bindings, kl_diag *d)
{
    uint8_t *bytes;
    size_t len;
    if (!kl_onnx_read_file(path, "model", &bytes, &len, d))
        return NULL;
    kl_graph *g = kl_onnx_load_bytes(a, path, bytes, len, bindings, n_bindings, d);
    free(bytes);
    return g;
}
