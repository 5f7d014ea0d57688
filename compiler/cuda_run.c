/*
 * cuda_run.c — the CUDA driver for kiln's harnesses (`kiln check`, `kiln bench`), loaded when
 * they run a CUDA model.
 *
 * kiln never links libcuda: a machine without an NVIDIA driver still runs every CPU command.
 * The harness dlopens the driver (libcuda.so.1, or the library KILN_LIBCUDA names: the test
 * suite's emulator, tests/cuda/fakecuda.c) with RTLD_GLOBAL before it loads the model's
 * library, whose host code then finds cuModuleLoadData, cuLaunchKernel, ... there. No driver,
 * a driver that finds no GPU, or no device at all is a reason to skip, returned as text for the
 * caller to print; anything that goes wrong after that is an error.
 *
 * A loaded model gets what its table asks for, as a careful program would provide it: the
 * NAME_cuda state (host memory of cuda_state_size bytes), cuda_load in device 0's primary
 * context, and one device allocation for cuda_run_host's workspace. Timing runs cuda_run on
 * device copies of the inputs (into the same allocation), each call followed by a stream
 * synchronization: the latency a caller sees, launches included.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kl.h"

typedef int cu_result;
typedef unsigned long long cu_ptr;

enum { CU_NO_DEVICE = 100, CU_ATTR_CC_MAJOR = 75, CU_ATTR_CC_MINOR = 76 };

struct kl_cuda_run {
    void *lib;
    cu_result (*init)(unsigned);
    cu_result (*device_count)(int *);
    cu_result (*device_get)(int *, int);
    cu_result (*device_name)(char *, int, int);
    cu_result (*device_attribute)(int *, int, int);
    cu_result (*ctx_retain)(void **, int);
    cu_result (*ctx_release)(int);
    cu_result (*ctx_set_current)(void *);
    cu_result (*mem_alloc)(cu_ptr *, size_t);
    cu_result (*mem_free)(cu_ptr);
    cu_result (*memcpy_htod)(cu_ptr, const void *, size_t);
    cu_result (*stream_sync)(void *);
    cu_result (*error_string)(cu_result, const char **);
    int device;
    void *ctx;
    int sm;
    char name[256];
    const kiln_model *model;
    void *state;
    cu_ptr workspace;
    bool loaded;
};

/* ---------------------------------------------------------------------------------------
 * The driver
 * --------------------------------------------------------------------------------------- */

static const char *cu_error(const kl_cuda_run *r, cu_result e) {
    const char *s = NULL;
    if (r->error_string && r->error_string(e, &s) == 0 && s) return s;
    return "unknown CUDA error";
}

static bool cu_check(const kl_cuda_run *r, cu_result e, const char *what, kl_diag *d) {
    if (e == 0) return true;
    return kl_error(d, NULL, "CUDA: %s failed: %s (%d)", what, cu_error(r, e), e);
}

/* Every driver function the harness uses; false when one is missing. */
static bool bind_driver(kl_cuda_run *r) {
    struct { void *slot; const char *name; } fns[] = {
        {&r->init, "cuInit"},
        {&r->device_count, "cuDeviceGetCount"},
        {&r->device_get, "cuDeviceGet"},
        {&r->device_name, "cuDeviceGetName"},
        {&r->device_attribute, "cuDeviceGetAttribute"},
        {&r->ctx_retain, "cuDevicePrimaryCtxRetain"},
        {&r->ctx_release, "cuDevicePrimaryCtxRelease_v2"},
        {&r->ctx_set_current, "cuCtxSetCurrent"},
        {&r->mem_alloc, "cuMemAlloc_v2"},
        {&r->mem_free, "cuMemFree_v2"},
        {&r->memcpy_htod, "cuMemcpyHtoD_v2"},
        {&r->stream_sync, "cuStreamSynchronize"},
        {&r->error_string, "cuGetErrorString"},
    };
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
        void *f = dlsym(r->lib, fns[i].name);
        if (!f) return false;
        memcpy(fns[i].slot, &f, sizeof f);
    }
    return true;
}

/* Device 0: its name, compute capability and primary context, made current. */
static bool open_device(kl_cuda_run *r, kl_diag *d) {
    int major = 0, minor = 0;
    if (!cu_check(r, r->device_get(&r->device, 0), "cuDeviceGet", d) ||
        !cu_check(r, r->device_name(r->name, (int)sizeof r->name, r->device), "cuDeviceGetName", d) ||
        !cu_check(r, r->device_attribute(&major, CU_ATTR_CC_MAJOR, r->device), "cuDeviceGetAttribute", d) ||
        !cu_check(r, r->device_attribute(&minor, CU_ATTR_CC_MINOR, r->device), "cuDeviceGetAttribute", d))
        return false;
    r->sm = 10 * major + minor;
    if (!cu_check(r, r->ctx_retain(&r->ctx, r->device), "cuDevicePrimaryCtxRetain", d))
        return false;
    return cu_check(r, r->ctx_set_current(r->ctx), "cuCtxSetCurrent", d);
}

kl_cuda_run *kl_cuda_run_open(kl_arena *a, const char **skip, kl_diag *d) {
    *skip = NULL;
    const char *path = getenv("KILN_LIBCUDA");
    if (!path || !*path) path = "libcuda.so.1";
    kl_cuda_run *r = kl_alloc(a, sizeof *r);
    r->lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!r->lib) {
        *skip = kl_sprintf(a, "no CUDA driver on this machine (%s cannot be loaded)", path);
        return NULL;
    }
    if (!bind_driver(r)) {
        *skip = kl_sprintf(a, "the CUDA driver %s lacks functions kiln needs (too old?)", path);
        dlclose(r->lib);
        return NULL;
    }
    cu_result e = r->init(0);
    int n = 0;
    if (e == 0) e = r->device_count(&n);
    if (e != 0 || n == 0) {
        *skip = e == CU_NO_DEVICE || n == 0
                    ? "the CUDA driver finds no GPU on this machine"
                    : kl_sprintf(a, "the CUDA driver does not start: %s (%d)", cu_error(r, e), e);
        dlclose(r->lib);
        return NULL;
    }
    if (!open_device(r, d)) {
        kl_cuda_run_close(r);
        return NULL;
    }
    return r;
}

const char *kl_cuda_run_device(kl_arena *a, const kl_cuda_run *r) {
    return kl_sprintf(a, "%s (sm_%d)", r->name, r->sm);
}

/* ---------------------------------------------------------------------------------------
 * A model on the device
 * --------------------------------------------------------------------------------------- */

bool kl_cuda_run_load(kl_cuda_run *r, const kiln_model *m, kl_diag *d) {
    if (m->device != KILN_DEVICE_CUDA)
        return kl_error(d, NULL, "the compiled model is not a CUDA model");
    if ((int)m->cuda_sm / 10 > r->sm / 10 || (int)m->cuda_sm > r->sm)
        return kl_error(d, NULL, "the model is compiled for sm_%u, the GPU %s is sm_%d: compile "
                        "for the GPU's target", m->cuda_sm, r->name, r->sm);
    r->model = m;
    r->state = calloc(1, (size_t)m->cuda_state_size);
    if (!r->state) return kl_error(d, NULL, "out of memory for the CUDA state");
    int rc = m->cuda_load(r->state);
    if (rc != KILN_OK)
        return kl_error(d, NULL, "%s_cuda_load returned %d%s%s", m->name, rc,
                        rc <= KILN_E_CUDA ? ": " : "",
                        rc <= KILN_E_CUDA ? cu_error(r, KILN_CUDA_RESULT(rc)) : "");
    r->loaded = true;
    size_t ws = (size_t)(m->cuda_host_workspace_size ? m->cuda_host_workspace_size : 256);
    return cu_check(r, r->mem_alloc(&r->workspace, ws), "cuMemAlloc (the workspace)", d);
}

static bool run_result(const kl_cuda_run *r, int rc, const char *entry, kl_diag *d) {
    if (rc == KILN_OK) return true;
    return kl_error(d, NULL, "%s_%s returned %d%s%s", r->model->name, entry, rc,
                    rc <= KILN_E_CUDA ? ": " : "",
                    rc <= KILN_E_CUDA ? cu_error(r, KILN_CUDA_RESULT(rc)) : "");
}

bool kl_cuda_run_host(kl_cuda_run *r, const kl_run_buffers *b, kl_diag *d) {
    int rc = r->model->cuda_run_host((const void *const *)b->inputs, b->outputs,
                                     (void *)(uintptr_t)r->workspace, NULL, r->state);
    return run_result(r, rc, "cuda_run_host", d);
}

/* Device pointers of the inputs and outputs inside the workspace, where cuda_run_host puts
 * them (the table's sizes, each at a multiple of 256 bytes after the workspace). */
static void device_tensors(const kl_cuda_run *r, void **in, void **out) {
    const kiln_model *m = r->model;
    uint64_t off = (m->workspace_size + 255) / 256 * 256;
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        in[i] = (void *)(uintptr_t)(r->workspace + off);
        off += ((uint64_t)m->inputs[i].size_bytes + 255) / 256 * 256;
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        out[i] = (void *)(uintptr_t)(r->workspace + off);
        off += ((uint64_t)m->outputs[i].size_bytes + 255) / 256 * 256;
    }
}

bool kl_cuda_run_time(kl_cuda_run *r, const kl_run_buffers *b, int warmup, int runs, double *ms,
                      kl_diag *d) {
    const kiln_model *m = r->model;
    void **in = calloc(m->n_inputs + 1u, sizeof *in), **out = calloc(m->n_outputs + 1u, sizeof *out);
    bool ok = in && out;
    if (ok) device_tensors(r, in, out);
    for (uint32_t i = 0; ok && i < m->n_inputs; i++)
        ok = cu_check(r, r->memcpy_htod((cu_ptr)(uintptr_t)in[i], b->inputs[i],
                                        (size_t)m->inputs[i].size_bytes), "cuMemcpyHtoD", d);
    void *ws = (void *)(uintptr_t)r->workspace;
    for (int i = 0; ok && i < warmup + runs; i++) {
        double t0 = kl_now();
        ok = run_result(r, m->cuda_run((const void *const *)in, out, ws, NULL, r->state),
                        "cuda_run", d) &&
             cu_check(r, r->stream_sync(NULL), "cuStreamSynchronize", d);
        if (i >= warmup) ms[i - warmup] = (kl_now() - t0) * 1e3;
    }
    free(in);
    free(out);
    return ok;
}

void kl_cuda_run_unload(kl_cuda_run *r) {
    if (r->workspace) r->mem_free(r->workspace);
    r->workspace = 0;
    if (r->loaded) r->model->cuda_unload(r->state);
    r->loaded = false;
    free(r->state);
    r->state = NULL;
    r->model = NULL;
}

void kl_cuda_run_close(kl_cuda_run *r) {
    if (!r) return;
    kl_cuda_run_unload(r);
    if (r->ctx) r->ctx_release(r->device);
    /* the driver stays loaded: a model library may still refer to it until it is closed, and
     * libcuda is not meant to be unloaded */
}
