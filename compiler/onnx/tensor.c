/*
 * tensor.c — one ONNX TensorProto into a constant kl_value.
 *
 * A TensorProto keeps its values in one of four places, and kiln accepts all of them:
 *   - a typed repeated field (float_data, int32_data, int64_data, uint64_data, double_data);
 *     int32_data carries every type of 32 bits or less, float16/bfloat16 as their bit pattern;
 *   - raw_data, little endian whatever the host;
 *   - external data (data_location == EXTERNAL): a file named relative to the model's folder,
 *     read at `offset` for `length` bytes. The location comes from an untrusted file, so it
 *     must stay inside that folder: absolute paths, `..` that climbs out and symlinks that
 *     resolve outside are refused.
 * The result is always host layout, row-major, in the arena; the protobuf message is not kept.
 * Also here: kl_onnx_load_tensor_file (the test-data .pb files), reading whole files.
 */
#define _XOPEN_SOURCE 700 /* realpath, fseeko */
#include "onnx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files ---------------------------------------------------------------------------- */

/* fopen for reading that never blocks: O_NONBLOCK makes opening a FIFO (named by a model, or
 * given as a file) return at once, and the callers then refuse anything but a regular file;
 * `flags` adds e.g. O_NOFOLLOW. NULL with errno set on failure. */
static FILE *open_for_reading(const char *path, int flags)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | flags);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f && fd >= 0) {
        int err = errno;
        close(fd);
        errno = err;
    }
    return f;
}

bool kl_onnx_read_file(const char *path, const char *what, uint8_t **data, size_t *len,
                       kl_diag *d)
{
    *data = NULL;
    *len = 0;
    FILE *f = open_for_reading(path, 0);
    if (!f)
        return kl_error(d, NULL, "cannot open %s file '%s': %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return kl_error(d, NULL, "%s file '%s' is not a regular file", what, path);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        return kl_error(d, NULL, "%s file '%s' is too large to read (%zu bytes)", what, path,
                        size);
    }
    size_t got = fread(buf, 1, size, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed || got != size) {
        free(buf);
        return kl_error(d, NULL, "cannot read %s file '%s'", what, path);
    }
    *data = buf;
    *len = size;
    return true;
}

char *kl_onnx_dirname(kl_arena *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return kl_strdup(a, ".");
    if (slash == path)
        return kl_strdup(a, "/");
    return kl_strndup(a, path, (size_t)(slash - path));
}

/* ---- shape and size ------------------------------------------------------------------- */

static bool shape_from_dims(const Onnx__TensorProto *t, const kl_tensor_origin *o, kl_shape *s,
                            kl_diag *d)
{
    if (t->n_dims > KL_MAX_RANK)
        return kl_error(d, o->node, "%s has rank %zu; kiln supports at most %d", o->what,
                        t->n_dims, KL_MAX_RANK);
    s->rank = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return kl_error(d, o->node, "%s has a negative dimension (%lld)", o->what,
                            (long long)t->dims[i]);
        s->dim[i] = t->dims[i];
    }
    return true;
}

/* Element count, or -1 when it (or its size in bytes) would overflow. */
static int64_t checked_numel(const kl_shape *s, size_t elem_size)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dim[i] != 0 && n > INT64_MAX / s->dim[i])
            return -1;
        n *= s->dim[i];
    }
    if (elem_size && n > INT64_MAX / (int64_t)elem_size)
        return -1;
    return n;
}

static bool size_mismatch(kl_arena *a, const kl_tensor_origin *o, const kl_shape *s,
                          int64_t held, int64_t needed, kl_diag *d)
{
    return kl_error(d, o->node, "%s holds %lld values, its shape %s needs %lld", o->what,
                    (long long)held, kl_shape_str(a, s), (long long)needed);
}

/* ---- raw bytes ------------------------------------------------------------------------ */

/* ONNX stores raw and external data little endian; swap element bytes on big-endian hosts. */
static void to_host_order(void *data, size_t bytes, size_t elem_size)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint8_t *p = data;
    for (size_t e = 0; e + elem_size <= bytes; e += elem_size)
        for (size_t i = 0; i < elem_size / 2; i++) {
            uint8_t tmp = p[e + i];
            p[e + i] = p[e + elem_size - 1 - i];
            p[e + elem_size - 1 - i] = tmp;
        }
#else
    (void)data, (void)bytes, (void)elem_size;
#endif
}

/* Booleans arrive as bytes that should be 0 or 1; anything else would surprise kernels. */
static void normalize_bools(kl_dtype t, uint8_t *data, int64_t n)
{
    if (t != KL_BOOL)
        return;
    for (int64_t i = 0; i < n; i++)
        data[i] = data[i] != 0;
}

/* Storage for the values, allocated only once their count is known to match the shape (a
 * corrupt shape must not turn into a huge allocation). Never NULL, even for an empty tensor:
 * non-NULL data is what marks a constant. */
static void alloc_data(kl_arena *a, kl_value *v, int64_t numel)
{
    size_t bytes = (size_t)numel * kl_dtype_size(v->dtype);
    v->data = kl_alloc(a, bytes ? bytes : 1);
}

/* ---- typed fields --------------------------------------------------------------------- */

/* Which repeated field holds values of a given type, and how many of them it has. Complex
 * types store two scalars per element. */
typedef enum typed_field { FIELD_NONE, FIELD_FLOAT, FIELD_INT32, FIELD_INT64, FIELD_UINT64,
                           FIELD_DOUBLE } typed_field;

static typed_field field_of(kl_dtype t)
{
    switch (t) {
    case KL_F32: case KL_C64: return FIELD_FLOAT;
    case KL_I32: case KL_I16: case KL_I8: case KL_U8: case KL_U16: case KL_BOOL: case KL_F16:
    case KL_BF16: case KL_F8E4M3FN: case KL_F8E4M3FNUZ: case KL_F8E5M2: case KL_F8E5M2FNUZ:
    case KL_F8E8M0: case KL_U4: case KL_I4: case KL_F4E2M1: case KL_U2: case KL_I2:
        return FIELD_INT32;
    case KL_I64: return FIELD_INT64;
    case KL_U32: case KL_U64: return FIELD_UINT64;
    case KL_F64: case KL_C128: return FIELD_DOUBLE;
    default: return FIELD_NONE;
    }
}

static size_t field_count(const Onnx__TensorProto *t, typed_field f)
{
    switch (f) {
    case FIELD_FLOAT: return t->n_float_data;
    case FIELD_INT32: return t->n_int32_data;
    case FIELD_INT64: return t->n_int64_data;
    case FIELD_UINT64: return t->n_uint64_data;
    case FIELD_DOUBLE: return t->n_double_data;
    default: return 0;
    }
}

static const char *field_name(typed_field f)
{
    static const char *const names[] = {"(none)", "float_data", "int32_data", "int64_data",
                                        "uint64_data", "double_data"};
    return names[f];
}

/* Store scalar i of the typed field into element i of dst (dst has the tensor's dtype). */
static void store_typed(const Onnx__TensorProto *t, typed_field f, kl_dtype type, void *dst,
                        size_t i)
{
    switch (f) {
    case FIELD_FLOAT: ((float *)dst)[i] = t->float_data[i]; return;
    case FIELD_DOUBLE: ((double *)dst)[i] = t->double_data[i]; return;
    case FIELD_INT64: ((int64_t *)dst)[i] = t->int64_data[i]; return;
    case FIELD_UINT64:
        if (type == KL_U32)
            ((uint32_t *)dst)[i] = (uint32_t)t->uint64_data[i];
        else
            ((uint64_t *)dst)[i] = t->uint64_data[i];
        return;
    case FIELD_INT32: {
        int32_t v = t->int32_data[i];
        switch (type) {
        case KL_I32: ((int32_t *)dst)[i] = v; return;
        case KL_I16: ((int16_t *)dst)[i] = (int16_t)v; return;
        case KL_I8: ((int8_t *)dst)[i] = (int8_t)v; return;
        case KL_U8: ((uint8_t *)dst)[i] = (uint8_t)v; return;
        case KL_BOOL: ((uint8_t *)dst)[i] = v != 0; return;
        /* float16 / bfloat16: the low 16 bits are the bit pattern */
        case KL_U16: case KL_F16: case KL_BF16: ((uint16_t *)dst)[i] = (uint16_t)v; return;
        /* the small types: one byte of their (packed) bits an entry */
        default: ((uint8_t *)dst)[i] = (uint8_t)v; return;
        }
    }
    default: return;
    }
}

static size_t other_fields_count(const Onnx__TensorProto *t, typed_field except)
{
    size_t n = 0;
    for (typed_field f = FIELD_FLOAT; f <= FIELD_DOUBLE; f++)
        if (f != except)
            n += field_count(t, f);
    return n;
}

/* int4/uint4/float4e2m1/int2/uint2 arrive packed (two or four a byte); kiln holds one a byte.
 * Unpacks `bytes` packed bytes into the value's storage. */
static void unpack_into_value(kl_arena *a, kl_value *v, const uint8_t *packed, int64_t numel)
{
    alloc_data(a, v, numel);
    kl_dtype_unpack(v->dtype, packed, v->data, numel);
}

/* Values a stored count of units (elements, or packed bytes) stands for, for messages. */
static int64_t held_elements(kl_dtype t, int64_t units)
{
    return kl_dtype_is_packed(t) ? units * (8 / kl_dtype_bits(t)) : units;
}

static bool read_typed(kl_arena *a, const Onnx__TensorProto *t, const kl_tensor_origin *o,
                       kl_value *v, int64_t numel, kl_diag *d)
{
    typed_field f = field_of(v->dtype);
    size_t per_element = (v->dtype == KL_C64 || v->dtype == KL_C128) ? 2 : 1;
    size_t have = field_count(t, f);
    if (have == 0 && numel > 0 && other_fields_count(t, f) > 0)
        return kl_error(d, o->node, "%s of type %s keeps its values in the wrong field (%s "
                        "expected)", o->what, kl_dtype_name(v->dtype), field_name(f));
    if (kl_dtype_is_packed(v->dtype)) {
        if ((int64_t)have != kl_dtype_packed_bytes(v->dtype, numel))
            return size_mismatch(a, o, &v->shape, held_elements(v->dtype, (int64_t)have), numel,
                                 d);
        uint8_t *packed = kl_alloc(a, have ? have : 1);
        for (size_t i = 0; i < have; i++)
            store_typed(t, f, v->dtype, packed, i);
        unpack_into_value(a, v, packed, numel);
        return true;
    }
    if (have != (size_t)numel * per_element)
        return size_mismatch(a, o, &v->shape, (int64_t)(have / per_element), numel, d);
    alloc_data(a, v, numel);
    for (size_t i = 0; i < have; i++)
        store_typed(t, f, v->dtype, v->data, i);
    return true;
}

/* ---- strings ------------------------------------------------------------------------- */

/* A string tensor's value holds one `const char *` an element (kl_dtype_size(KL_STRING)):
 * NUL-terminated copies in the arena, which is what the generated code's interface passes.
 * ONNX keeps strings in string_data only; a NUL byte inside one cannot pass as a C string. */
static bool read_strings(kl_arena *a, const Onnx__TensorProto *t, const kl_tensor_origin *o,
                         kl_value *v, int64_t numel, kl_diag *d)
{
    if ((t->has_data_location &&
         t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) || t->has_raw_data)
        return kl_error(d, o->node, "%s: a string tensor keeps its values in string_data, not "
                        "in raw or external data", o->what);
    if ((int64_t)t->n_string_data != numel)
        return size_mismatch(a, o, &v->shape, (int64_t)t->n_string_data, numel, d);
    alloc_data(a, v, numel);
    const char **out = v->data;
    for (int64_t i = 0; i < numel; i++) {
        const ProtobufCBinaryData *s = &t->string_data[i];
        if (s->len && memchr(s->data, 0, s->len))
            return kl_error(d, o->node, "%s: string element %lld holds a NUL byte, which a C "
                            "string cannot carry", o->what, (long long)i);
        out[i] = s->len ? kl_strndup(a, (const char *)s->data, s->len) : kl_strdup(a, "");
    }
    return true;
}

/* ---- external data -------------------------------------------------------------------- */

typedef struct external_ref {
    const char *location;
    int64_t offset;
    int64_t length;      /* -1: not given */
} external_ref;

static bool parse_int_key(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_external_keys(const Onnx__TensorProto *t, const kl_tensor_origin *o,
                                external_ref *ref, kl_diag *d)
{
    ref->location = NULL;
    ref->offset = 0;
    ref->length = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const char *key = t->external_data[i]->key ? t->external_data[i]->key : "";
        const char *val = t->external_data[i]->value ? t->external_data[i]->value : "";
        if (strcmp(key, "location") == 0)
            ref->location = val;
        else if (strcmp(key, "offset") == 0 && !parse_int_key(val, &ref->offset))
            return kl_error(d, o->node, "%s: external data offset '%s' is not a byte count",
                            o->what, val);
        else if (strcmp(key, "length") == 0 && !parse_int_key(val, &ref->length))
            return kl_error(d, o->node, "%s: external data length '%s' is not a byte count",
                            o->what, val);
    }
    if (!ref->location || !*ref->location)
        return kl_error(d, o->node, "%s: external data has no location", o->what);
    return true;
}

/* Lexical check: relative, and no `..` climbing above the starting folder. */
static bool location_stays_inside(const char *location)
{
    if (location[0] == '/')
        return false;
    int depth = 0;
    const char *p = location;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return false;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

static bool path_is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (strncmp(path, dir, n) != 0)
        return false;
    return path[n] == '/' || (n > 0 && dir[n - 1] == '/');
}

/* Resolve the location to a real path inside base_dir (symlinks followed), or diagnose. */
static char *resolve_external_path(kl_arena *a, const external_ref *ref,
                                   const kl_tensor_origin *o, kl_diag *d)
{
    if (!location_stays_inside(ref->location)) {
        kl_error(d, o->node, "%s: external data location '%s' escapes the model's folder",
                 o->what, ref->location);
        return NULL;
    }
    char *joined = kl_sprintf(a, "%s/%s", o->base_dir, ref->location);
    char real_dir[PATH_MAX], real_file[PATH_MAX];
    if (!realpath(o->base_dir, real_dir)) {
        kl_error(d, o->node, "%s: cannot resolve the model's folder '%s': %s", o->what,
                 o->base_dir, strerror(errno));
        return NULL;
    }
    if (!realpath(joined, real_file)) {
        kl_error(d, o->node, "%s: external data file '%s' cannot be opened (%s): %s", o->what,
                 ref->location, joined, strerror(errno));
        return NULL;
    }
    if (!path_is_under(real_file, real_dir)) {
        kl_error(d, o->node, "%s: external data location '%s' escapes the model's folder "
                 "(it resolves to '%s')", o->what, ref->location, real_file);
        return NULL;
    }
    return kl_strdup(a, real_file);
}

static bool read_external(kl_arena *a, const Onnx__TensorProto *t, const kl_tensor_origin *o,
                          kl_value *v, int64_t numel, kl_diag *d)
{
    external_ref ref;
    if (!parse_external_keys(t, o, &ref, d))
        return false;
    size_t elem = kl_dtype_size(v->dtype);
    bool packed = kl_dtype_is_packed(v->dtype);
    int64_t needed = kl_dtype_packed_bytes(v->dtype, numel);
    if (ref.length >= 0 && ref.length != needed)
        return size_mismatch(a, o, &v->shape,
                             packed ? held_elements(v->dtype, ref.length)
                                    : ref.length / (int64_t)elem, numel, d);
    char *path = resolve_external_path(a, &ref, o, d);
    if (!path)
        return false;
    /* `path` is resolved already: a symlink there now means it changed since the check */
    FILE *f = open_for_reading(path, O_NOFOLLOW);
    if (!f)
        return kl_error(d, o->node, "%s: external data file '%s' cannot be opened: %s", o->what,
                        ref.location, strerror(errno));
    struct stat st;
    bool ok = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    if (!ok) {
        fclose(f);
        return kl_error(d, o->node, "%s: external data file '%s' is not a regular file",
                        o->what, ref.location);
    }
    if (ref.offset > st.st_size || needed > st.st_size - ref.offset) {
        fclose(f);
        return kl_error(d, o->node, "%s: external data file '%s' is too short: %lld bytes "
                        "needed at offset %lld, the file has %lld", o->what, ref.location,
                        (long long)needed, (long long)ref.offset, (long long)st.st_size);
    }
    /* read in place: the weights are held once (packed ones are unpacked after) */
    uint8_t *dst = packed ? kl_alloc(a, needed ? (size_t)needed : 1) : NULL;
    if (!packed) {
        alloc_data(a, v, numel);
        dst = v->data;
    }
    ok = needed == 0 || (fseeko(f, (off_t)ref.offset, SEEK_SET) == 0 &&
                         fread(dst, 1, (size_t)needed, f) == (size_t)needed);
    fclose(f);
    if (ok && packed)
        unpack_into_value(a, v, dst, numel);
    if (ok) {
        to_host_order(v->data, (size_t)needed, elem);
        normalize_bools(v->dtype, v->data, numel);
    }
    if (!ok)
        return kl_error(d, o->node, "%s: short read from external data file '%s'", o->what,
                        ref.location);
    return true;
}

/* ---- the tensor ----------------------------------------------------------------------- */

static bool check_dtype(const Onnx__TensorProto *t, const kl_tensor_origin *o, kl_dtype *out,
                        kl_diag *d)
{
    if (!t->has_data_type || t->data_type == KL_UNDEFINED)
        return kl_error(d, o->node, "%s has no element type", o->what);
    kl_dtype type = (kl_dtype)t->data_type;
    if (t->data_type < 0 || t->data_type > KL_I2 || kl_dtype_size(type) == 0)
        return kl_error(d, o->node, "%s has element type %d, which kiln cannot hold", o->what,
                        (int)t->data_type);
    *out = type;
    return true;
}

/* raw_data's own buffer becomes the value's (protobuf-c allocates it with malloc, the default
 * allocator of every unpack here): the weights are not copied a second time. */
static void take_raw_data(kl_arena *a, Onnx__TensorProto *t, kl_value *v, size_t elem)
{
    v->data = t->raw_data.data;
    kl_arena_adopt(a, v->data, t->raw_data.len);
    t->raw_data.data = NULL;
    t->raw_data.len = 0;
    t->has_raw_data = 0;
    to_host_order(v->data, (size_t)kl_shape_numel(&v->shape) * elem, elem);
}

bool kl_onnx_tensor_to_value(kl_arena *a, Onnx__TensorProto *t,
                             const kl_tensor_origin *o, kl_value *v, kl_diag *d)
{
    if (!check_dtype(t, o, &v->dtype, d) || !shape_from_dims(t, o, &v->shape, d))
        return false;
    if (t->segment)
        return kl_error(d, o->node, "%s is a segment of a larger tensor, which kiln does not "
                        "support", o->what);
    size_t elem = kl_dtype_size(v->dtype);
    if (!kl_check_tensor_size(a, &v->shape, v->dtype, o->node, o->what, d))
        return false;
    int64_t numel = kl_shape_numel(&v->shape);
    v->has_shape = true;

    if (v->dtype == KL_STRING)
        return read_strings(a, t, o, v, numel, d);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return read_external(a, t, o, v, numel, d);
    if (t->has_raw_data && kl_dtype_is_packed(v->dtype)) {
        if ((int64_t)t->raw_data.len != kl_dtype_packed_bytes(v->dtype, numel))
            return size_mismatch(a, o, &v->shape,
                                 held_elements(v->dtype, (int64_t)t->raw_data.len), numel, d);
        unpack_into_value(a, v, t->raw_data.data, numel);
        return true;
    }
    if (t->has_raw_data) {
        if (t->raw_data.len != (size_t)numel * elem)
            return size_mismatch(a, o, &v->shape, (int64_t)(t->raw_data.len / elem), numel, d);
        if (numel > 0 && !o->keep) {
            take_raw_data(a, t, v, elem);
        } else {
            alloc_data(a, v, numel);
            if (numel > 0) {
                memcpy(v->data, t->raw_data.data, t->raw_data.len);
                to_host_order(v->data, t->raw_data.len, elem);
            }
        }
        normalize_bools(v->dtype, v->data, numel);
        return true;
    }
    return read_typed(a, t, o, v, numel, d);
}

/* ---- test data files ------------------------------------------------------------------ */

/* How many elements the tensor's inline values make, or -1 when that cannot be told here
 * (external data, element types kiln does not know). */
static int64_t inline_element_count(const Onnx__TensorProto *t)
{
    kl_dtype type = (kl_dtype)t->data_type;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return -1;
    if (type == KL_STRING)
        return (int64_t)t->n_string_data;
    size_t elem = kl_dtype_size(type);
    if (elem == 0)
        return -1;
    if (kl_dtype_is_packed(type))
        return -1; /* packed: the byte count allows two or four element counts */
    if (t->has_raw_data)
        return t->raw_data.len % elem ? -2 : (int64_t)(t->raw_data.len / elem);
    return (int64_t)field_count(t, field_of(type));
}

/* A SequenceProto, MapProto or OptionalProto often decodes as a TensorProto too: their fields
 * share numbers with dims (the name, read as packed varints), data_type, segment and
 * float_data. Such a "tensor" has no type, a segment, or a shape its values do not fill. */
bool kl_onnx_looks_like_a_tensor(const Onnx__TensorProto *t)
{
    if (!t->has_data_type || t->data_type == KL_UNDEFINED || t->segment ||
        t->n_dims > KL_MAX_RANK)
        return false;
    int64_t held = inline_element_count(t);
    if (held == -1)
        return true; /* later checks say what is wrong, if anything */
    kl_shape s = {.rank = (int)t->n_dims};
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return false;
        s.dim[i] = t->dims[i];
    }
    return held == checked_numel(&s, 1);
}

kl_value *kl_onnx_load_tensor_bytes(kl_arena *a, const char *path, const void *bytes,
                                    size_t len, kl_diag *d)
{
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, bytes);
    if (!t || !kl_onnx_looks_like_a_tensor(t)) {
        if (t)
            onnx__tensor_proto__free_unpacked(t, NULL);
        kl_error(d, NULL, "'%s' is not a serialized ONNX tensor (TensorProto decoding failed; "
                 "sequences, maps and optionals are not supported)", path);
        return NULL;
    }
    kl_value *v = kl_alloc(a, sizeof *v);
    v->name = kl_strdup(a, t->name ? t->name : "");
    v->input_index = -1;
    v->output_index = -1;
    v->id = -1;
    kl_tensor_origin origin = {
        .what = kl_sprintf(a, "tensor '%s' in '%s'", v->name, path),
        .node = NULL,
        .base_dir = kl_onnx_dirname(a, path),
    };
    bool ok = kl_onnx_tensor_to_value(a, t, &origin, v, d);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return ok ? v : NULL;
}

kl_value *kl_onnx_load_tensor_file(kl_arena *a, const char *path, kl_diag *d)
{
    uint8_t *bytes;
    size_t len;
    if (!kl_onnx_read_file(path, "tensor", &bytes, &len, d))
        return NULL;
    kl_value *v = kl_onnx_load_tensor_bytes(a, path, bytes, len, d);
    free(bytes);
    return v;
}
