/*
 * codegen/cuda/nvrtc.c — CUDA C to a cubin and PTX with NVRTC, while kiln compiles.
 *
 * One NVRTC program per model, for one real architecture (--gpu-architecture=sm_XX gives both
 * the cubin and the PTX it was made from). The options pin down the floating-point meaning the
 * kernels were printed for: no contraction of a * b + c unless the source asks (fmaf), IEEE
 * division and square root, denormals kept. The weights' name is asked for through a name
 * expression, so the host side looks the global up under the name the driver knows.
 *
 * Built only where meson finds NVRTC (the `cuda` feature); nvrtc_none.c stands in elsewhere.
 */
#include <nvrtc.h>
#include <string.h>

#include "cuda_internal.h"

enum { MAX_LOG = 4000 }; /* characters of NVRTC's log quoted in a diagnostic */

bool kl_cuda_available(void) { return true; }

const char *kl_cuda_nvrtc_version(kl_arena *a) {
    int major = 0, minor = 0;
    if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS)
        return NULL;
    return kl_sprintf(a, "%d.%d", major, minor);
}

static bool failed(kl_diag *d, const char *what, nvrtcResult r) {
    return kl_error(d, NULL, "codegen (CUDA): NVRTC %s failed: %s", what, nvrtcGetErrorString(r));
}

static void report_log(nvrtcProgram prog, kl_arena *a, kl_diag *d) {
    size_t n = 0;
    if (nvrtcGetProgramLogSize(prog, &n) != NVRTC_SUCCESS || n <= 1) {
        kl_error(d, NULL, "codegen (CUDA): NVRTC could not compile the kernels (no log)");
        return;
    }
    char *log = kl_alloc(a, n + 1);
    nvrtcGetProgramLog(prog, log);
    if (n > MAX_LOG)
        strcpy(log + MAX_LOG, "\n...");
    kl_error(d, NULL, "codegen (CUDA): NVRTC could not compile the kernels (an internal error "
             "of kiln's CUDA back end):\n%s", log);
}

static bool fetch_outputs(nvrtcProgram prog, kl_arena *a, bool has_weights, kl_cu_image *img,
                          kl_diag *d) {
    nvrtcResult r;
    size_t n = 0;
    if ((r = nvrtcGetCUBINSize(prog, &n)) != NVRTC_SUCCESS)
        return failed(d, "cubin size", r);
    unsigned char *cubin = kl_alloc(a, n + 1);
    if ((r = nvrtcGetCUBIN(prog, (char *)cubin)) != NVRTC_SUCCESS)
        return failed(d, "cubin", r);
    img->cubin = cubin;
    img->cubin_size = n;
    if ((r = nvrtcGetPTXSize(prog, &n)) != NVRTC_SUCCESS)
        return failed(d, "PTX size", r);
    char *ptx = kl_alloc(a, n + 1);
    if ((r = nvrtcGetPTX(prog, ptx)) != NVRTC_SUCCESS)
        return failed(d, "PTX", r);
    img->ptx = ptx;
    img->ptx_size = strlen(ptx) + 1;
    img->weights_symbol = NULL;
    if (has_weights) {
        const char *lowered = NULL;
        if ((r = nvrtcGetLoweredName(prog, "&" KL_CU_WEIGHTS, &lowered)) != NVRTC_SUCCESS)
            return failed(d, "lowered name of the weights", r);
        img->weights_symbol = kl_strdup(a, lowered);
    }
    return true;
}

bool kl_cu_nvrtc(kl_arena *a, const char *source, int sm, bool has_weights, kl_cu_image *img,
                 kl_diag *d) {
    memset(img, 0, sizeof *img);
    nvrtcProgram prog;
    nvrtcResult r = nvrtcCreateProgram(&prog, source, "kiln.cu", 0, NULL, NULL);
    if (r != NVRTC_SUCCESS)
        return failed(d, "program creation", r);
    bool ok = true;
    if (has_weights && (r = nvrtcAddNameExpression(prog, "&" KL_CU_WEIGHTS)) != NVRTC_SUCCESS)
        ok = failed(d, "name expression", r);
    const char *arch = kl_sprintf(a, "--gpu-architecture=sm_%d", sm);
    const char *opts[] = {arch, "--fmad=false", "--prec-div=true", "--prec-sqrt=true",
                          "--ftz=false"};
    if (ok && (r = nvrtcCompileProgram(prog, (int)(sizeof opts / sizeof *opts), opts)) !=
                  NVRTC_SUCCESS) {
        report_log(prog, a, d);
        ok = false;
    }
    ok = ok && fetch_outputs(prog, a, has_weights, img, d);
    nvrtcDestroyProgram(&prog);
    return ok;
}
