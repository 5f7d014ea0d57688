/*
 * library.c — a model compiled through the real path into a shared library and loaded, for the
 * harnesses that run compiled code in process (`kiln check`, `kiln bench`).
 *
 * kl_compile() writes the shared library (object + runtime-min, linked) into a private
 * temporary folder, which we dlopen. The harness reaches the code only through the model table
 * (kiln.h `model_model`), exactly as any other program linking kiln output would, so the
 * table's ABI version and entries are checked before anything runs. A CUDA model's library
 * needs the CUDA driver's symbols: the harness loads the driver first (cuda_driver.c), with
 * RTLD_GLOBAL, so that kiln itself never links libcuda. Closing removes the folder
 * with everything in it (the harness may put more files there, e.g. `kiln bench`'s peak probe).
 *
 * The harnesses also share how a call is fed: 64-byte aligned buffers for every input, output
 * and the workspace, and a data set's input tensors copied in once they are known to fit.
 *
 * kl_library_compile stops before loading: it is how a model for another machine (an object for
 * an emulated target, emulate/) gets the same folder and the same binding of shapes.
 *
 * Shapes: with the user's bindings the model is compiled once with them. With none it is
 * compiled as it is, and only when it does not load unbound (symbolic input dims) are its inputs
 * bound from a data set (`bind_from`) and it is compiled again: static models, nearly all, are
 * thus loaded once, and a dynamic model runs without typing shapes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, dirent */
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln.h"
#include "kl.h"

/* ---------------------------------------------------------------------------------------
 * Binding symbolic input dims from a data set
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

/* Bind every input to the shape of its tensor in the data set. The tensors are matched by name
 * (a test data file carries its graph input's name), since a model with unbound symbolic dims
 * does not load, so its inputs cannot be listed first. */
static bool bind_from_data(kl_arena *a, const char *set, FILE *out,
                           const kl_shape_binding **bindings, int *n_bindings, kl_diag *d) {
    kl_ptrvec inputs = {0}, structure = {0};
    if (!kl_dataset_load_structured(a, set, "input", &inputs, &structure, d)) return false;
    kl_shape_binding *b = kl_alloc_array(a, (size_t)(inputs.n + structure.n) + 1, sizeof *b);
    int n = 0;
    const char *listing = "";
    /* sequences and optionals: what the files hold binds their structure (the loader takes
       the binding that fits the input's declared type) */
    for (int i = 0; i < structure.n; i++) {
        b[n] = *(const kl_shape_binding *)structure.items[i];
        if (b[n].kind == KL_BIND_SEQUENCE)
            listing = kl_sprintf(a, "%s%s%s:%lld tensors", listing, *listing ? ", " : "", b[n].input,
                                 (long long)b[n].count);
        n++;
    }
    for (int i = 0; i < inputs.n; i++) {
        const kl_value *v = inputs.items[i];
        if (!v->name || !*v->name) continue; /* unnamed: the loader will ask for --shape */
        b[n].input = v->name;
        b[n].shape = v->shape;
        listing = kl_sprintf(a, "%s%s%s:%s", listing, *listing ? ", " : "", v->name,
                             kl_shape_str(a, &v->shape));
        n++;
    }
    if (n > 0 && out) fprintf(out, "inputs bound from %s: %s\n", kl_path_base(set), listing);
    *bindings = b;
    *n_bindings = n;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Compiling into the private folder
 * --------------------------------------------------------------------------------------- */

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

static bool make_temp_dir(kl_library *lib, const char *purpose, kl_diag *d) {
    const char *tmp = getenv("TMPDIR");
    size_t room = sizeof lib->dir - strlen("/kiln--XXXXXX") - strlen(purpose) - 1;
    snprintf(lib->dir, sizeof lib->dir, "%s/kiln-%s-XXXXXX",
             tmp && *tmp && strlen(tmp) < room ? tmp : "/tmp", purpose);
    if (mkdtemp(lib->dir)) return true;
    lib->dir[0] = 0;
    return kl_error(d, NULL, "cannot create a temporary folder: %s", strerror(errno));
}

static bool compile_to_library(kl_arena *a, const kl_library_opts *o,
                               const kl_shape_binding *bindings, int n_bindings,
                               kl_library *lib, kl_diag *d) {
    kl_compile_opts co = {0};
    co.model_path = o->model_path;
    co.out_path = lib->so_path;
    co.header_path = kl_library_path(a, lib, "model.h");
    co.cg.target = o->target ? o->target : kl_target_default();
    co.cg.name = "model";
    co.cg.opt_level = o->opt_level;
    co.cg.emit = lib->emit;
    co.cg.optimize_for = o->optimize_for;
    co.cg.profile = o->profile;
    co.cg.sanitize = o->sanitize;
    co.microkernels = o->microkernels;
    co.no_dispatch = o->no_dispatch;
    co.string_bytes = o->string_bytes;
    co.cg.cuda_emulate = o->cuda_emulate;
    co.bindings = bindings;
    co.n_bindings = n_bindings;
    double t0 = kl_now();
    if (!kl_compile(&co, &lib->stats, d)) return false;
    lib->compile_seconds = kl_now() - t0;
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

/* The bindings plus a value binding (--value) for each input the failed compilation named in
 * `failed` (kl_diag.needs_values) that has none yet, from the data set's tensor of that name.
 * False when there is no new one to add. */
static bool bind_values_from_data(kl_arena *a, const char *set, const kl_diag *failed, FILE *out,
                                  const kl_shape_binding **bindings, int *n_bindings) {
    kl_diag scratch; /* a data set that does not load is reported by the check itself */
    kl_diag_init(&scratch, set);
    kl_ptrvec inputs = {0};
    bool loaded = kl_dataset_load(a, set, "input", &inputs, &scratch);
    kl_diag_free(&scratch);
    if (!loaded) return false;
    int n = *n_bindings, added = 0;
    kl_shape_binding *b = kl_alloc_array(a, (size_t)(n + inputs.n) + 1, sizeof *b);
    memcpy(b, *bindings, (size_t)n * sizeof *b);
    const char *listing = "";
    for (const char *name = failed->needs_values; name && *name; name += strlen(name) + 1) {
        bool bound = false;
        for (int i = 0; i < n && !bound; i++)
            bound = b[i].kind == KL_BIND_VALUE && !strcmp(b[i].input, name);
        for (int i = 0; i < inputs.n && !bound; i++) {
            const kl_value *v = inputs.items[i];
            if (!v->name || strcmp(v->name, name) || !v->data) continue;
            b[n] = (kl_shape_binding){.input = v->name, .kind = KL_BIND_VALUE,
                                      .count = kl_shape_numel(&v->shape),
                                      .value_dtype = v->dtype, .value_data = v->data};
            listing = kl_sprintf(a, "%s%s%s", listing, *listing ? ", " : "", v->name);
            n++;
            added++;
            bound = true;
        }
    }
    if (!added) return false;
    if (out)
        fprintf(out, "values bound from %s (predict checks them): %s\n", kl_path_base(set),
                listing);
    *bindings = b;
    *n_bindings = n;
    return true;
}

enum { MAX_COMPILE_ROUNDS = 8 }; /* each binds what the one before said it needs */

/* Compile with the user's bindings, or none. Where that fails for want of bindings, the data
 * set supplies them: shapes and structure when the model does not load unbound, and the value
 * of each input a message says the compilation needs (kl_diag.needs_values). */
static bool compile_model(kl_arena *a, const kl_library_opts *o, kl_library *lib, kl_diag *d) {
    const kl_shape_binding *bindings = o->bindings;
    int n_bindings = o->n_bindings;
    bool shapes_bound = n_bindings > 0;
    for (int round = 0; round < MAX_COMPILE_ROUNDS; round++) {
        kl_diag attempt;
        kl_diag_init(&attempt, d->file);
        if (compile_to_library(a, o, bindings, n_bindings, lib, &attempt)) {
            kl_diag_free(&attempt);
            return true;
        }
        if (!o->bind_from) {
            adopt_messages(d, &attempt);
            return false;
        }
        bool again = bind_values_from_data(a, o->bind_from, &attempt, o->out, &bindings,
                                           &n_bindings);
        if (!again && !shapes_bound && !loads_without_bindings(o->model_path)) {
            kl_diag_free(&attempt);
            const kl_shape_binding *from_data = NULL;
            int n_from_data = 0;
            if (!bind_from_data(a, o->bind_from, o->out, &from_data, &n_from_data, d))
                return false;
            kl_shape_binding *merged = kl_alloc_array(a, (size_t)(n_from_data + n_bindings) + 1,
                                                      sizeof *merged);
            memcpy(merged, from_data, (size_t)n_from_data * sizeof *merged);
            memcpy(merged + n_from_data, bindings, (size_t)n_bindings * sizeof *merged);
            bindings = merged;
            n_bindings += n_from_data;
            shapes_bound = true;
            continue;
        }
        if (!again) {
            adopt_messages(d, &attempt);
            return false;
        }
        kl_diag_free(&attempt);
    }
    return compile_to_library(a, o, bindings, n_bindings, lib, d);
}

/* dlopen the library and check the table before anything calls into it. */
static bool load_model_table(kl_library *lib, const kl_library_opts *o, kl_diag *d) {
    lib->handle = dlopen(lib->so_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle)
        return kl_error(d, NULL, "cannot load the compiled library: %s", dlerror());
    lib->model = dlsym(lib->handle, "model_model");
    if (!lib->model)
        return kl_error(d, NULL, "the compiled library exports no 'model_model' table");
    const kiln_model *m = lib->model;
    if (m->abi_version != KILN_ABI_VERSION)
        return kl_error(d, NULL, "the compiled model table has ABI version %u, expected %d",
                        m->abi_version, KILN_ABI_VERSION);
    if (m->device == KILN_DEVICE_CUDA) {
        if (!m->cuda_load || !m->cuda_unload || !m->cuda_run || !m->cuda_run_host)
            return kl_error(d, NULL, "the compiled model table lacks its CUDA entries");
    } else if (!m->run || !m->run_parallel) {
        return kl_error(d, NULL, "the compiled model table lacks its run entries");
    }
    if (o->profile && !m->run_profiled)
        return kl_error(d, NULL, "the compiled model table has no profiling entry");
    if (m->n_kernels > 0 && !m->kernels)
        return kl_error(d, NULL, "the compiled model table lists %u kernels but no kernel table",
                        m->n_kernels);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Entry points
 * --------------------------------------------------------------------------------------- */

char *kl_library_path(kl_arena *a, const kl_library *lib, const char *file) {
    return kl_sprintf(a, "%s/%s", lib->dir, file);
}

bool kl_library_compile(kl_arena *a, const kl_library_opts *o, kl_emit_kind emit,
                        const char *file, kl_library *lib, kl_diag *d) {
    memset(lib, 0, sizeof *lib);
    lib->emit = emit;
    if (!make_temp_dir(lib, o->purpose ? o->purpose : "run", d)) return false;
    lib->so_path = kl_library_path(a, lib, file);
    return compile_model(a, o, lib, d);
}

bool kl_library_open(kl_arena *a, const kl_library_opts *o, kl_library *lib, kl_diag *d) {
    return kl_library_compile(a, o, KL_EMIT_SO, "model.so", lib, d) &&
           load_model_table(lib, o, d);
}

void kl_library_close(kl_library *lib) {
    if (lib->handle) dlclose(lib->handle);
    if (lib->dir[0]) remove_temp_dir(lib->dir);
    memset(lib, 0, sizeof *lib);
}

/* ---------------------------------------------------------------------------------------
 * Memory for one call
 * --------------------------------------------------------------------------------------- */

/* Zeroed, 64-byte aligned, never of size 0 (a 0-element tensor still gets a valid pointer). */
static void *alloc_aligned(size_t bytes) {
    size_t rounded = bytes ? (bytes + 63) / 64 * 64 : 64;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

bool kl_run_buffers_alloc(const kiln_model *m, kl_run_buffers *b, kl_diag *d) {
    memset(b, 0, sizeof *b);
    b->inputs = calloc(m->n_inputs + 1u, sizeof *b->inputs);
    b->outputs = calloc(m->n_outputs + 1u, sizeof *b->outputs);
    b->n_inputs = m->n_inputs;
    b->n_outputs = m->n_outputs;
    b->workspace = alloc_aligned((size_t)m->workspace_size);
    bool ok = b->inputs && b->outputs && b->workspace;
    for (uint32_t i = 0; ok && i < m->n_inputs; i++)
        ok = (b->inputs[i] = alloc_aligned((size_t)m->inputs[i].size_bytes)) != NULL;
    for (uint32_t i = 0; ok && i < m->n_outputs; i++)
        ok = (b->outputs[i] = alloc_aligned((size_t)m->outputs[i].size_bytes)) != NULL;
    if (ok) return true;
    kl_run_buffers_free(b);
    return kl_error(d, NULL, "out of memory for the inputs, outputs or workspace (%llu bytes)",
                    (unsigned long long)m->workspace_size);
}

void kl_run_buffers_free(kl_run_buffers *b) {
    for (uint32_t i = 0; b->inputs && i < b->n_inputs; i++) free(b->inputs[i]);
    for (uint32_t i = 0; b->outputs && i < b->n_outputs; i++) free(b->outputs[i]);
    free(b->inputs);
    free(b->outputs);
    free(b->workspace);
    memset(b, 0, sizeof *b);
}

char *kl_desc_shape_str(kl_arena *a, const kiln_tensor_desc *t) {
    kl_shape s = {.rank = t->rank < KL_MAX_RANK ? t->rank : KL_MAX_RANK};
    for (int i = 0; i < s.rank; i++) s.dim[i] = t->shape[i];
    return kl_shape_str(a, &s);
}

bool kl_desc_fits_value(const kiln_tensor_desc *t, const kl_value *v) {
    if ((kl_dtype)t->dtype != v->dtype || t->rank != v->shape.rank) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] != v->shape.dim[i]) return false;
    return (int64_t)kl_dtype_size(v->dtype) * kl_shape_numel(&v->shape) == t->size_bytes;
}

bool kl_run_buffers_set_inputs(kl_arena *a, const kiln_model *m, kl_run_buffers *b,
                               const kl_ptrvec *values, const char **why) {
    if ((uint32_t)values->n != m->n_inputs) {
        *why = kl_sprintf(a, "it has %d inputs, the compiled model takes %u", values->n,
                          m->n_inputs);
        return false;
    }
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const kiln_tensor_desc *t = &m->inputs[i];
        const kl_value *v = values->items[i];
        if (!kl_desc_fits_value(t, v)) {
            *why = kl_sprintf(a, "input_%u.pb is %s%s, but input '%s' is compiled as %s%s", i,
                              kl_dtype_name(v->dtype), kl_shape_str(a, &v->shape), t->name,
                              kl_dtype_name((kl_dtype)t->dtype), kl_desc_shape_str(a, t));
            return false;
        }
    }
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const kl_value *v = values->items[i];
        if (v->data) memcpy(b->inputs[i], v->data, (size_t)m->inputs[i].size_bytes);
    }
    return true;
}
