/*
 * check.c — `kiln check`: is the compiled model right on stored test data?
 *
 * The model goes through the very path a user's build takes (library.c: compiled into a shared
 * library in a private temporary folder and dlopened). Nothing is interpreted here: the harness
 * reaches the code only through the generic entry of the model table (kiln.h `NAME_model.run`),
 * exactly as any other program linking kiln output would, so the table's names, types, shapes
 * and workspace size are checked along the way.
 *
 * Data sets (dataset.c) are the --data folders or every test_data_set_* beside the model. When
 * the model has symbolic input dims and the user bound none, the first data set's inputs bind
 * them, so a dynamic model can be checked without typing shapes.
 *
 * A target the host cannot run (kl_target_is_emulated) goes through emulate/ instead: the
 * object is linked with a generic driver for that target and run under its emulator, which
 * writes the outputs with their names, types and shapes from the target's own model table;
 * the comparisons below are the same.
 *
 * CUDA targets run through the GPU (cuda_run.c): the model's cuda_run_host on the same host
 * buffers. Without a driver or a GPU the check is skipped (KL_CHECK_SKIPPED, with a line saying
 * why), never passed.
 *
 * Comparison: |got - want| <= atol + rtol * |want| per element, NaN matches NaN, infinities must
 * be equal; every element type is compared as double (exact for integers up to 2^53 and bools).
 */
#include <math.h>
#include <string.h>

#include "kiln.h"
#include "kl.h"

/* ---------------------------------------------------------------------------------------
 * Data sets and the compiled library
 * --------------------------------------------------------------------------------------- */

static bool find_data_sets(kl_arena *a, const kl_check_opts *o, kl_ptrvec *sets, kl_diag *d) {
    if (o->n_data_dirs > 0) {
        for (int i = 0; i < o->n_data_dirs; i++) {
            if (!kl_path_is_dir(o->data_dirs[i]))
                return kl_error(d, NULL, "data folder '%s' does not exist", o->data_dirs[i]);
            kl_ptrvec_push(a, sets, kl_strdup(a, o->data_dirs[i]));
        }
        return true;
    }
    if (!kl_dataset_find_beside(a, o->model_path, sets, d)) return false;
    if (sets->n == 0)
        return kl_error(d, NULL, "no test_data_set_* folder beside the model in '%s' "
                        "(give --data DIR)", kl_path_dir(a, o->model_path));
    return true;
}

static bool open_library(kl_arena *a, const kl_check_opts *o, const char *first_set, FILE *out,
                         kl_library *lib, kl_diag *d) {
    kl_library_opts lo = {.model_path = o->model_path, .bindings = o->bindings,
                          .n_bindings = o->n_bindings, .bind_from = first_set,
                          .target = o->target, .opt_level = o->opt_level,
                          .microkernels = o->microkernels, .no_dispatch = o->no_dispatch, .purpose = "check", .out = out,
                          .cuda_emulate = o->cuda_emulate, .optimize_for = o->optimize_for,
                          .sanitize = o->sanitize, .string_bytes = o->string_bytes};
    if (!kl_library_open(a, &lo, lib, d)) return false;
    fprintf(out, "compiled in %.2f s: %d kernels, workspace %lld bytes\n", lib->compile_seconds,
            lib->stats.n_kernels, (long long)lib->stats.workspace_size);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Comparing tensors
 * --------------------------------------------------------------------------------------- */

static double half_to_double(uint16_t h) {
    int exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exp == 0) return sign * ldexp(frac, -24);
    if (exp == 31) return frac ? NAN : sign * INFINITY;
    return sign * ldexp(frac + 1024, exp - 25);
}

static double bfloat16_to_double(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Element i of a host-layout tensor as a double (false for types that have no number). */
static bool element_as_double(const void *data, kl_dtype t, int64_t i, double *out) {
    switch (t) {
    case KL_F32: *out = ((const float *)data)[i]; return true;
    case KL_F64: *out = ((const double *)data)[i]; return true;
    case KL_F16: *out = half_to_double(((const uint16_t *)data)[i]); return true;
    case KL_BF16: *out = bfloat16_to_double(((const uint16_t *)data)[i]); return true;
    case KL_U8: *out = ((const uint8_t *)data)[i]; return true;
    case KL_I8: *out = ((const int8_t *)data)[i]; return true;
    case KL_U16: *out = ((const uint16_t *)data)[i]; return true;
    case KL_I16: *out = ((const int16_t *)data)[i]; return true;
    case KL_I32: *out = ((const int32_t *)data)[i]; return true;
    case KL_I64: *out = (double)((const int64_t *)data)[i]; return true;
    case KL_U32: *out = ((const uint32_t *)data)[i]; return true;
    case KL_U64: *out = (double)((const uint64_t *)data)[i]; return true;
    case KL_BOOL: *out = ((const uint8_t *)data)[i] != 0; return true;
    /* the small types, one byte an element (kiln.h) */
    case KL_I4: case KL_I2: *out = ((const int8_t *)data)[i]; return true;
    case KL_U4: case KL_U2: *out = ((const uint8_t *)data)[i]; return true;
    default:
        if (!kl_dtype_is_minifloat(t)) return false;
        *out = kl_minifloat_to_f32(t, ((const uint8_t *)data)[i]);
        return true;
    }
}

typedef struct comparison {
    double max_abs, max_rel;
    int64_t n_bad, first_bad;
    double first_got, first_want;
} comparison;

static bool element_matches(double got, double want, double rtol, double atol) {
    if (isnan(want) || isnan(got)) return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got)) return got == want;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

static void compare_elements(const void *got, const void *want, kl_dtype t, int64_t n, double rtol,
                             double atol, comparison *c) {
    memset(c, 0, sizeof *c);
    c->first_bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double g = 0, w = 0;
        element_as_double(got, t, i, &g);
        element_as_double(want, t, i, &w);
        if (!element_matches(g, w, rtol, atol)) {
            if (c->n_bad++ == 0) {
                c->first_bad = i;
                c->first_got = g;
                c->first_want = w;
            }
        }
        if (isfinite(g) && isfinite(w)) {
            double abs_err = fabs(g - w);
            if (abs_err > c->max_abs) c->max_abs = abs_err;
            if (w != 0 && abs_err / fabs(w) > c->max_rel) c->max_rel = abs_err / fabs(w);
        }
    }
}

/* String outputs match byte for byte (the model computes them exactly); the first mismatch is
 * printed with its strings (a NULL element, which no run should leave, is a mismatch too). */
static bool check_strings(const void *got, const void *want, int64_t n, FILE *out) {
    const char *const *g = got, *const *w = want;
    int64_t n_bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (!g[i] || strcmp(g[i], w[i]) != 0) {
            if (n_bad++ == 0) first = i;
        }
    fprintf(out, "strings %s\n", n_bad ? "FAIL" : "PASS");
    if (n_bad)
        fprintf(out, "  %lld of %lld strings differ; first at flat index %lld: got \"%s\", "
                "want \"%s\"\n", (long long)n_bad, (long long)n, (long long)first,
                g[first] ? g[first] : "(null)", w[first]);
    return n_bad == 0;
}

/* Compare one output; prints its line; false on mismatch (no diag: a mismatch is a result).
 * `run_shape`: the shape a bounded model wrote for it (NULL: the compiled one). */
static bool check_output(kl_arena *a, const char *set_name, const kiln_tensor_desc *t,
                         const int64_t *run_shape, const void *got, const kl_value *want,
                         const kl_check_opts *o, FILE *out) {
    const char *dtype = kl_dtype_name((kl_dtype)t->dtype);
    const char *shape = kl_desc_shape_str(a, t);
    int64_t bytes = t->size_bytes;
    if (run_shape) {
        kl_shape s = {.rank = t->rank};
        for (int i = 0; i < t->rank; i++) s.dim[i] = run_shape[i];
        shape = kl_shape_str(a, &s);
        bytes = kl_shape_numel(&s) * (int64_t)kl_dtype_size((kl_dtype)t->dtype);
    }
    fprintf(out, "%s output '%s' %s%s: ", set_name, t->name, dtype, shape);
    if ((kl_dtype)t->dtype != want->dtype) {
        fprintf(out, "expected element type %s FAIL\n", kl_dtype_name(want->dtype));
        return false;
    }
    int64_t n = kl_shape_numel(&want->shape);
    size_t esize = kl_dtype_size(want->dtype);
    if (esize == 0 || (int64_t)esize * n != bytes) {
        fprintf(out, "expected %lld elements %s FAIL\n", (long long)n,
                kl_shape_str(a, &want->shape));
        return false;
    }
    if (want->dtype == KL_STRING) return check_strings(got, want->data, n, out);
    double probe;
    if (n > 0 && !element_as_double(want->data, want->dtype, 0, &probe)) {
        fprintf(out, "cannot compare elements of type %s FAIL\n", dtype);
        return false;
    }
    comparison c;
    compare_elements(got, want->data, want->dtype, n, o->rtol, o->atol, &c);
    bool pass = c.n_bad == 0;
    fprintf(out, "max abs err %.1e, max rel err %.1e %s\n", c.max_abs, c.max_rel,
            pass ? "PASS" : "FAIL");
    if (!pass)
        fprintf(out,
                "  %lld of %lld elements differ; first at flat index %lld: got %.9g, want %.9g\n",
                (long long)c.n_bad, (long long)n, (long long)c.first_bad, c.first_got,
                c.first_want);
    if (!run_shape && !kl_desc_fits_value(t, want))
        fprintf(out, "  note: expected shape %s, compiled %s\n", kl_shape_str(a, &want->shape),
                shape);
    return pass;
}

/* ---------------------------------------------------------------------------------------
 * Running one data set
 * --------------------------------------------------------------------------------------- */

static bool predict_failed(const char *set, int rc, kl_diag *d) {
    return kl_error(d, NULL, "data set '%s': predict returned error code %d%s", set, rc,
                    rc == KILN_E_UNCOMPILED_BRANCH
                        ? " (KILN_E_UNCOMPILED_BRANCH: the inputs take an If's branch that could "
                          "not be compiled for the bound shapes; the header says which)"
                    : rc == KILN_E_SHAPE
                        ? " (KILN_E_SHAPE: the inputs' shapes are outside the compiled bounds, "
                          "a shape-carrying input asks for another shape than declared, or an "
                          "input holds another value than the one compiled for)"
                    : rc == KILN_E_STRING_BYTES
                        ? " (KILN_E_STRING_BYTES: the strings the run builds need more bytes than "
                          "the model was compiled for; raise --string-bytes)"
                        : "");
}

/* One call of the model on b: predict on the CPU, or through the GPU (gpu non-NULL). */
static bool run_model(const kiln_model *m, kl_cuda_run *gpu, kl_run_buffers *b, const char *set,
                      kl_diag *d) {
    if (gpu) return kl_cuda_run_host(gpu, b, d);
    int rc = m->run((const void *const *)b->inputs, b->outputs, b->workspace);
    return rc == KILN_OK || predict_failed(set, rc, d);
}

/* A bounded model, or one with data-dependent outputs (kiln.h's run_dynamic), at the data
 * set's own shapes: the inputs copied densely into the buffers (allocated for the bounds),
 * each output's shape into run_shapes. */
static bool run_bounded(kl_arena *a, const kiln_model *m, kl_run_buffers *b,
                        const kl_ptrvec *inputs, int64_t **run_shapes, const char *set,
                        kl_diag *d) {
    if ((uint32_t)inputs->n != m->n_inputs)
        return kl_error(d, NULL, "data set '%s' has %d inputs, the compiled model takes %u", set,
                        inputs->n, m->n_inputs);
    const int64_t **in_shapes = kl_alloc_array(a, m->n_inputs + 1, sizeof *in_shapes);
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const kiln_tensor_desc *t = &m->inputs[i];
        const kl_value *v = inputs->items[i];
        int64_t bytes = kl_shape_numel(&v->shape) * (int64_t)kl_dtype_size(v->dtype);
        if ((kl_dtype)t->dtype != v->dtype || t->rank != v->shape.rank || bytes > t->size_bytes)
            return kl_error(d, NULL, "data set '%s': input_%u.pb is %s%s, but input '%s' is "
                            "compiled as %s%s (at most)", set, i, kl_dtype_name(v->dtype),
                            kl_shape_str(a, &v->shape), t->name,
                            kl_dtype_name((kl_dtype)t->dtype), kl_desc_shape_str(a, t));
        if (v->data) memcpy(b->inputs[i], v->data, (size_t)bytes);
        in_shapes[i] = v->shape.dim;
    }
    for (uint32_t i = 0; i < m->n_outputs; i++)
        run_shapes[i] = kl_alloc_array(a, (size_t)m->outputs[i].rank + 1, sizeof **run_shapes);
    int rc = m->run_dynamic((const void *const *)b->inputs, in_shapes, b->outputs, run_shapes,
                            b->workspace);
    return rc == KILN_OK || predict_failed(set, rc, d);
}

/* Runs one data set. Returns 0 pass, 1 mismatch, -1 error (diag recorded). */
static int run_data_set(kl_arena *a, const char *dir, const kiln_model *m, kl_cuda_run *gpu,
                        const kl_check_opts *o, FILE *out, kl_diag *d) {
    const char *set = kl_path_base(dir);
    kl_ptrvec inputs = {0}, expected = {0};
    if (!kl_dataset_load(a, dir, "input", &inputs, d) ||
        !kl_dataset_load(a, dir, "output", &expected, d))
        return -1;
    if ((uint32_t)expected.n != m->n_outputs) {
        kl_error(d, NULL, "data set '%s' has %d outputs, the compiled model gives %u", set,
                 expected.n, m->n_outputs);
        return -1;
    }
    kl_run_buffers b;
    if (!kl_run_buffers_alloc(m, &b, d)) return -1;
    /* bounded dims or data-dependent outputs: each output at the shape the model reports */
    bool dynamic = m->run_dynamic != NULL && !gpu;
    int64_t **run_shapes = dynamic ? kl_alloc_array(a, m->n_outputs + 1, sizeof *run_shapes)
                                   : NULL;
    const char *why = NULL;
    if (!dynamic && !kl_run_buffers_set_inputs(a, m, &b, &inputs, &why)) {
        kl_error(d, NULL, "data set '%s': %s", set, why);
        kl_run_buffers_free(&b);
        return -1;
    }
    int result = -1;
    bool ran = dynamic ? run_bounded(a, m, &b, &inputs, run_shapes, set, d)
                          : run_model(m, gpu, &b, set, d);
    if (ran) {
        result = 0;
        for (uint32_t i = 0; i < m->n_outputs; i++)
            if (!check_output(a, set, &m->outputs[i], run_shapes ? run_shapes[i] : NULL,
                              b.outputs[i], expected.items[i], o, out))
                result = 1;
    }
    kl_run_buffers_free(&b);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * Emulated targets: the same comparisons on outputs the target's program wrote
 * --------------------------------------------------------------------------------------- */

/* One data set through the emulator. Returns 0 pass, 1 mismatch, -1 error (diag recorded). */
static int run_emulated_set(kl_arena *a, const char *dir, kl_emulated *e,
                            const kl_check_opts *o, FILE *out, kl_diag *d) {
    const char *set = kl_path_base(dir);
    kl_ptrvec inputs = {0}, expected = {0};
    if (!kl_dataset_load(a, dir, "input", &inputs, d) ||
        !kl_dataset_load(a, dir, "output", &expected, d))
        return -1;
    kl_emulated_result r;
    if (!kl_emulated_run(a, e, &inputs, &r, d)) return -1;
    if (r.rc != KILN_OK) {
        kl_error(d, NULL, "data set '%s': %s", set, r.message);
        return -1;
    }
    if ((uint32_t)expected.n != r.n_outputs) {
        kl_error(d, NULL, "data set '%s' has %d outputs, the compiled model gives %u", set,
                 expected.n, r.n_outputs);
        return -1;
    }
    int result = 0;
    for (uint32_t i = 0; i < r.n_outputs; i++)
        if (!check_output(a, set, &r.outputs[i], NULL, r.data[i], expected.items[i], o, out))
            result = 1;
    return result;
}

static int check_emulated(kl_arena *a, const kl_check_opts *o, const kl_ptrvec *sets, FILE *out,
                          kl_diag *d) {
    kl_library_opts lo = {.model_path = o->model_path, .bindings = o->bindings,
                          .n_bindings = o->n_bindings, .bind_from = sets->items[0],
                          .target = o->target, .opt_level = o->opt_level,
                          .microkernels = o->microkernels, .no_dispatch = o->no_dispatch, .purpose = "check", .out = out,
                          .optimize_for = o->optimize_for, .string_bytes = o->string_bytes};
    if (kl_bindings_bounded(o->bindings, o->n_bindings))
        return kl_error(d, NULL, "kiln check runs a model with a bounded dim on the host's "
                        "targets only (the emulated targets' driver runs a model at its "
                        "compiled shapes); its object for '%s' works the same", o->target->name),
               1;
    kl_emulated e;
    bool ok = kl_emulated_open(a, &lo, &e, d);
    if (ok)
        fprintf(out, "compiled in %.2f s: %d kernels, workspace %lld bytes; target %s runs "
                "under %s\n", e.lib.compile_seconds, e.lib.stats.n_kernels,
                (long long)e.lib.stats.workspace_size, o->target->name, o->target->run);
    int failures = 0;
    for (int i = 0; ok && i < sets->n; i++) {
        int r = run_emulated_set(a, sets->items[i], &e, o, out, d);
        if (r < 0) ok = false;
        failures += r != 0;
    }
    kl_emulated_close(&e);
    return ok && failures == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------------------------
 * Entry point
 * --------------------------------------------------------------------------------------- */

/* For a CUDA target: the driver and the GPU, or why the check is skipped. */
static bool open_gpu(kl_arena *a, const kl_check_opts *o, FILE *out, kl_cuda_run **gpu,
                     bool *skipped, kl_diag *d) {
    *gpu = NULL;
    *skipped = false;
    if (!o->target || o->target->backend != KL_BACKEND_CUDA) return true;
    const char *skip = NULL;
    *gpu = kl_cuda_run_open(a, &skip, d);
    if (*gpu) {
        fprintf(out, "device: %s\n", kl_cuda_run_device(a, *gpu));
        return true;
    }
    if (!skip) return false;
    fprintf(out, "SKIP: %s; target %s needs an NVIDIA GPU and its driver to run\n", skip,
            o->target->name);
    *skipped = true;
    return false;
}

int kl_check(const kl_check_opts *o, kl_diag *d) {
    FILE *out = o->out ? o->out : stdout;
    if (kl_target_is_emulated(o->target)) {
        kl_arena *a = kl_arena_new();
        kl_ptrvec sets = {0};
        bool pass = find_data_sets(a, o, &sets, d) && check_emulated(a, o, &sets, out, d) == 0;
        kl_arena_free(a);
        fprintf(out, "%s\n", pass ? "PASS" : "FAIL");
        fflush(out);
        return pass ? 0 : 1;
    }
    kl_arena *a = kl_arena_new();
    kl_library lib = {0};
    kl_ptrvec sets = {0};
    kl_cuda_run *gpu = NULL;
    bool skipped = false;
    bool ok = find_data_sets(a, o, &sets, d) && open_gpu(a, o, out, &gpu, &skipped, d) &&
              open_library(a, o, sets.items[0], out, &lib, d);
    if (ok && gpu) ok = kl_cuda_run_load(gpu, lib.model, d);
    int failures = 0;
    for (int i = 0; ok && i < sets.n; i++) {
        int r = run_data_set(a, sets.items[i], lib.model, gpu, o, out, d);
        if (r < 0) ok = false;
        failures += r != 0;
    }
    if (gpu) kl_cuda_run_unload(gpu); /* before its library goes */
    kl_library_close(&lib);
    kl_cuda_run_close(gpu);
    kl_arena_free(a);
    if (skipped) {
        fflush(out);
        return KL_CHECK_SKIPPED;
    }
    bool pass = ok && failures == 0;
    fprintf(out, "%s\n", pass ? "PASS" : "FAIL");
    fflush(out);
    return pass ? 0 : 1;
}
