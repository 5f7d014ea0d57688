/*
 * check.c — `kiln check`: is the compiled model right on stored test data?
 *
 * The model goes through the very path a user's build takes: kl_compile() writes a shared
 * library (object + runtime-min, linked) into a private temporary folder, which we dlopen.
 * Nothing is interpreted here: the harness reaches the code only through the generic entry of
 * the model table (kiln.h `NAME_model.run`), exactly as any other program linking kiln output
 * would, so the table's names, types, shapes and workspace size are checked along the way.
 *
 * Data sets follow the ONNX backend-test layout: test_data_set_N/{input,output}_K.pb, inputs in
 * graph-input order, outputs in graph-output order. When the model has symbolic input dims and
 * the user bound none, the first data set's inputs bind them, so a dynamic model can be checked
 * without typing shapes.
 *
 * Comparison: |got - want| <= atol + rtol * |want| per element, NaN matches NaN, infinities must
 * be equal; every element type is compared as double (exact for integers up to 2^53 and bools).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, dirent */
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kiln.h"
#include "kl.h"

/* ---------------------------------------------------------------------------------------
 * Data-set discovery
 * --------------------------------------------------------------------------------------- */

static char *dir_of(kl_arena *a, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return kl_strdup(a, ".");
    if (slash == path) return kl_strdup(a, "/");
    return kl_strndup(a, path, (size_t)(slash - path));
}

static const char *base_of(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; /* "set_0/" names set_0 */
    const char *p = path + n;
    while (p > path && p[-1] != '/') p--;
    return p;
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Sort test_data_set_N by N (so that set_10 follows set_9), falling back to the name. */
static int compare_data_sets(const void *x, const void *y) {
    const char *a = base_of(*(const char *const *)x), *b = base_of(*(const char *const *)y);
    const char *da = strrchr(a, '_'), *db = strrchr(b, '_');
    if (da && db) {
        long na = strtol(da + 1, NULL, 10), nb = strtol(db + 1, NULL, 10);
        if (na != nb) return na < nb ? -1 : 1;
    }
    return strcmp(a, b);
}

static bool find_data_sets(kl_arena *a, const kl_check_opts *o, kl_ptrvec *sets, kl_diag *d) {
    if (o->n_data_dirs > 0) {
        for (int i = 0; i < o->n_data_dirs; i++) {
            if (!is_dir(o->data_dirs[i]))
                return kl_error(d, NULL, "data folder '%s' does not exist", o->data_dirs[i]);
            kl_ptrvec_push(a, sets, kl_strdup(a, o->data_dirs[i]));
        }
        return true;
    }
    const char *dir = dir_of(a, o->model_path);
    DIR *dp = opendir(dir);
    if (!dp) return kl_error(d, NULL, "cannot list folder '%s': %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(dp));) {
        if (strncmp(e->d_name, "test_data_set_", 14) != 0) continue;
        char *path = kl_sprintf(a, "%s/%s", dir, e->d_name);
        if (is_dir(path)) kl_ptrvec_push(a, sets, path);
    }
    closedir(dp);
    if (sets->n == 0)
        return kl_error(d, NULL, "no test_data_set_* folder beside the model in '%s' "
                        "(give --data DIR)", dir);
    qsort(sets->items, (size_t)sets->n, sizeof *sets->items, compare_data_sets);
    return true;
}

/* Count PREFIX_K.pb files in a folder (they must be numbered 0..n-1 without gaps). */
static bool count_tensor_files(kl_arena *a, const char *dir, const char *prefix, int *count,
                               kl_diag *d) {
    DIR *dp = opendir(dir);
    if (!dp) return kl_error(d, NULL, "cannot list data folder '%s': %s", dir, strerror(errno));
    size_t plen = strlen(prefix);
    int n = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        size_t len = strlen(e->d_name);
        if (len > plen + 4 && strncmp(e->d_name, prefix, plen) == 0 && e->d_name[plen] == '_' &&
            strcmp(e->d_name + len - 3, ".pb") == 0)
            n++;
    }
    closedir(dp);
    for (int k = 0; k < n; k++) {
        char *path = kl_sprintf(a, "%s/%s_%d.pb", dir, prefix, k);
        if (access(path, R_OK) != 0)
            return kl_error(d, NULL, "data folder '%s' has %d %s files but no readable %s_%d.pb",
                            dir, n, prefix, prefix, k);
    }
    *count = n;
    return true;
}

/* Load PREFIX_0.pb .. PREFIX_{n-1}.pb of a data set. */
static bool load_tensors(kl_arena *a, const char *dir, const char *prefix, kl_ptrvec *out,
                         kl_diag *d) {
    int n = 0;
    if (!count_tensor_files(a, dir, prefix, &n, d)) return false;
    for (int k = 0; k < n; k++) {
        char *path = kl_sprintf(a, "%s/%s_%d.pb", dir, prefix, k);
        kl_value *v = kl_onnx_load_tensor_file(a, path, d); /* its message names the file */
        if (!v) return false;
        kl_ptrvec_push(a, out, v);
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Binding symbolic input dims from the first data set
 * --------------------------------------------------------------------------------------- */

/* Does the model load without bindings? The loader refuses a symbolic input dim that nothing
 * binds, so a model that loads is static; its messages go to a scratch diag because a model that
 * fails here for another reason fails again, with the same message, when it is compiled. */
static bool loads_without_bindings(const char *model_path) {
    kl_diag scratch;
    kl_diag_init(&scratch, model_path);
    kl_arena *ga = kl_arena_new();
    bool ok = kl_onnx_load(ga, model_path, NULL, 0, &scratch) != NULL;
    kl_arena_free(ga);
    kl_diag_free(&scratch);
    return ok;
}

/* Bind every input to the shape of its tensor in the first data set. The tensors are matched by
 * name (a test data file carries its graph input's name), since a model with unbound symbolic
 * dims does not load, so its inputs cannot be listed first. */
static bool bind_from_data(kl_arena *a, const char *first_set, FILE *out,
                           const kl_shape_binding **bindings, int *n_bindings, kl_diag *d) {
    kl_ptrvec inputs = {0};
    if (!load_tensors(a, first_set, "input", &inputs, d)) return false;
    kl_shape_binding *b = kl_alloc_array(a, (size_t)inputs.n + 1, sizeof *b);
    int n = 0;
    const char *listing = "";
    for (int i = 0; i < inputs.n; i++) {
        const kl_value *v = inputs.items[i];
        if (!v->name || !*v->name) continue; /* unnamed: the loader will ask for --shape */
        b[n].input = v->name;
        b[n].shape = v->shape;
        listing = kl_sprintf(a, "%s%s%s:%s", listing, n ? ", " : "", v->name,
                             kl_shape_str(a, &v->shape));
        n++;
    }
    if (n > 0) fprintf(out, "inputs bound from %s: %s\n", base_of(first_set), listing);
    *bindings = b;
    *n_bindings = n;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Compiling into a private temporary folder
 * --------------------------------------------------------------------------------------- */

typedef struct compiled {
    char dir[64];       /* mkdtemp result; empty when none */
    const char *so_path;
    void *handle;       /* dlopen handle */
    const kiln_model *model;
} compiled;

static void remove_temp_dir(const char *dir) {
    DIR *dp = opendir(dir);
    if (dp) {
        for (struct dirent *e; (e = readdir(dp));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(dp);
    }
    rmdir(dir);
}

static void release_compiled(compiled *c) {
    if (c->handle) dlclose(c->handle);
    if (c->dir[0]) remove_temp_dir(c->dir);
    memset(c, 0, sizeof *c);
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

static bool make_temp_dir(compiled *c, kl_diag *d) {
    const char *tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof c->dir, "%s/kiln-check-XXXXXX",
             tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (mkdtemp(c->dir)) return true;
    c->dir[0] = 0;
    return kl_error(d, NULL, "cannot create a temporary folder: %s", strerror(errno));
}

static bool compile_to_library(kl_arena *a, const kl_check_opts *o,
                               const kl_shape_binding *bindings, int n_bindings, FILE *out,
                               compiled *c, kl_diag *d) {
    c->so_path = kl_sprintf(a, "%s/model.so", c->dir);
    kl_compile_opts co = {0};
    co.model_path = o->model_path;
    co.out_path = c->so_path;
    co.header_path = kl_sprintf(a, "%s/model.h", c->dir);
    co.cg.target = o->target ? o->target : kl_target_default();
    co.cg.name = "model";
    co.cg.opt_level = o->opt_level;
    co.cg.emit = KL_EMIT_SO;
    co.microkernels = o->microkernels;
    co.bindings = bindings;
    co.n_bindings = n_bindings;
    kl_compile_stats stats = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!kl_compile(&co, &stats, d)) return false;
    fprintf(out, "compiled in %.2f s: %d kernels, workspace %lld bytes\n", seconds_since(&t0),
            stats.n_kernels, (long long)stats.workspace_size);
    return true;
}

/* Hand a scratch diag's messages to the caller's diag (which holds none yet at this point). */
static void adopt_messages(kl_diag *d, kl_diag *scratch) {
    if (d->len == 0) {
        free(d->text);
        d->text = scratch->text;
        d->len = scratch->len;
        d->cap = scratch->cap;
        d->n_errors += scratch->n_errors;
        scratch->text = NULL;
    } else {
        kl_error(d, NULL, "%s", scratch->text ? scratch->text : "compilation failed");
    }
    kl_diag_free(scratch);
}

/* Compile with the user's bindings; with none, compile the model as it is, and only when it
 * does not load unbound (symbolic input dims) bind its inputs from the first data set and
 * compile again. Static models, nearly all, are thus loaded once. */
static bool compile_model(kl_arena *a, const kl_check_opts *o, const char *first_set, FILE *out,
                          compiled *c, kl_diag *d) {
    if (o->n_bindings > 0)
        return compile_to_library(a, o, o->bindings, o->n_bindings, out, c, d);
    kl_diag first;
    kl_diag_init(&first, d->file);
    if (compile_to_library(a, o, NULL, 0, out, c, &first)) {
        kl_diag_free(&first);
        return true;
    }
    if (loads_without_bindings(o->model_path)) { /* failed for another reason: report it */
        adopt_messages(d, &first);
        return false;
    }
    kl_diag_free(&first);
    const kl_shape_binding *bindings = NULL;
    int n_bindings = 0;
    return bind_from_data(a, first_set, out, &bindings, &n_bindings, d) &&
           compile_to_library(a, o, bindings, n_bindings, out, c, d);
}

static bool open_library(compiled *c, kl_diag *d) {
    c->handle = dlopen(c->so_path, RTLD_NOW | RTLD_LOCAL);
    if (!c->handle) return kl_error(d, NULL, "cannot load the compiled library: %s", dlerror());
    c->model = dlsym(c->handle, "model_model");
    if (!c->model)
        return kl_error(d, NULL, "the compiled library exports no 'model_model' table");
    if (c->model->abi_version != KILN_ABI_VERSION)
        return kl_error(d, NULL, "the compiled model table has ABI version %u, expected %d",
                        c->model->abi_version, KILN_ABI_VERSION);
    if (!c->model->run) return kl_error(d, NULL, "the compiled model table has no run entry");
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
    default: return false;
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

static char *desc_shape_str(kl_arena *a, const kiln_tensor_desc *t) {
    kl_shape s = {.rank = t->rank};
    for (int i = 0; i < t->rank && i < KL_MAX_RANK; i++) s.dim[i] = t->shape[i];
    return kl_shape_str(a, &s);
}

static bool desc_matches_value(const kiln_tensor_desc *t, const kl_value *v) {
    if (t->rank != v->shape.rank) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] != v->shape.dim[i]) return false;
    return true;
}

/* Compare one output; prints its line; false on mismatch (no diag: a mismatch is a result). */
static bool check_output(kl_arena *a, const char *set_name, const kiln_tensor_desc *t,
                         const void *got, const kl_value *want, const kl_check_opts *o,
                         FILE *out) {
    const char *dtype = kl_dtype_name((kl_dtype)t->dtype);
    const char *shape = desc_shape_str(a, t);
    fprintf(out, "%s output '%s' %s%s: ", set_name, t->name, dtype, shape);
    if ((kl_dtype)t->dtype != want->dtype) {
        fprintf(out, "expected element type %s FAIL\n", kl_dtype_name(want->dtype));
        return false;
    }
    int64_t n = kl_shape_numel(&want->shape);
    size_t esize = kl_dtype_size(want->dtype);
    if (esize == 0 || (int64_t)esize * n != t->size_bytes) {
        fprintf(out, "expected %lld elements %s FAIL\n", (long long)n,
                kl_shape_str(a, &want->shape));
        return false;
    }
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
    if (!desc_matches_value(t, want))
        fprintf(out, "  note: expected shape %s, compiled %s\n", kl_shape_str(a, &want->shape),
                shape);
    return pass;
}

/* ---------------------------------------------------------------------------------------
 * Running one data set
 * --------------------------------------------------------------------------------------- */

static void *alloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded ? rounded : 64);
    return p;
}

static bool check_inputs(const char *set, const kiln_model *m, const kl_ptrvec *inputs,
                         kl_arena *a, kl_diag *d) {
    if ((uint32_t)inputs->n != m->n_inputs)
        return kl_error(d, NULL, "data set '%s' has %d inputs, the compiled model takes %u", set,
                        inputs->n, m->n_inputs);
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const kiln_tensor_desc *t = &m->inputs[i];
        const kl_value *v = inputs->items[i];
        if ((kl_dtype)t->dtype != v->dtype || !desc_matches_value(t, v))
            return kl_error(d, NULL,
                            "data set '%s': input_%u.pb is %s%s, but input '%s' is compiled "
                            "as %s%s",
                            set, i, kl_dtype_name(v->dtype), kl_shape_str(a, &v->shape), t->name,
                            kl_dtype_name((kl_dtype)t->dtype), desc_shape_str(a, t));
    }
    return true;
}

/* Runs one data set. Returns 0 pass, 1 mismatch, -1 error (diag recorded). */
static int run_data_set(kl_arena *a, const char *dir, const kiln_model *m,
                        const kl_check_opts *o, FILE *out, kl_diag *d) {
    const char *set = base_of(dir);
    kl_ptrvec inputs = {0}, expected = {0};
    if (!load_tensors(a, dir, "input", &inputs, d) || !load_tensors(a, dir, "output", &expected, d))
        return -1;
    if (!check_inputs(set, m, &inputs, a, d)) return -1;
    if ((uint32_t)expected.n != m->n_outputs) {
        kl_error(d, NULL, "data set '%s' has %d outputs, the compiled model gives %u", set,
                 expected.n, m->n_outputs);
        return -1;
    }

    static const uint8_t empty[64] __attribute__((aligned(64))); /* stands in for 0-element data */
    const void **in_ptrs = kl_alloc_array(a, inputs.n + 1u, sizeof *in_ptrs);
    for (int i = 0; i < inputs.n; i++) {
        const kl_value *v = inputs.items[i];
        in_ptrs[i] = v->data ? v->data : empty;
    }
    void **out_ptrs = kl_alloc_array(a, m->n_outputs + 1u, sizeof *out_ptrs);
    void *workspace = alloc_aligned((size_t)m->workspace_size);
    bool ok = workspace != NULL;
    for (uint32_t i = 0; ok && i < m->n_outputs; i++)
        ok = (out_ptrs[i] = alloc_aligned((size_t)m->outputs[i].size_bytes)) != NULL;
    int result = -1;
    if (!ok) {
        kl_error(d, NULL, "out of memory for the workspace (%llu bytes) or outputs",
                 (unsigned long long)m->workspace_size);
    } else {
        int rc = m->run(in_ptrs, out_ptrs, workspace);
        if (rc != KILN_OK) {
            kl_error(d, NULL, "data set '%s': predict returned error code %d", set, rc);
        } else {
            result = 0;
            for (uint32_t i = 0; i < m->n_outputs; i++)
                if (!check_output(a, set, &m->outputs[i], out_ptrs[i], expected.items[i], o, out))
                    result = 1;
        }
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) free(out_ptrs[i]);
    free(workspace);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * Entry point
 * --------------------------------------------------------------------------------------- */

int kl_check(const kl_check_opts *o, kl_diag *d) {
    FILE *out = o->out ? o->out : stdout;
    kl_arena *a = kl_arena_new();
    compiled c = {0};
    kl_ptrvec sets = {0};
    bool ok = find_data_sets(a, o, &sets, d) && make_temp_dir(&c, d) &&
              compile_model(a, o, sets.items[0], out, &c, d) && open_library(&c, d);
    int failures = 0;
    for (int i = 0; ok && i < sets.n; i++) {
        int r = run_data_set(a, sets.items[i], c.model, o, out, d);
        if (r < 0) ok = false;
        failures += r != 0;
    }
    release_compiled(&c);
    kl_arena_free(a);
    bool pass = ok && failures == 0;
    fprintf(out, "%s\n", pass ? "PASS" : "FAIL");
    fflush(out);
    return pass ? 0 : 1;
}
