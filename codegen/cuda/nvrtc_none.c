/*
 * codegen/cuda/nvrtc_none.c — stands in for nvrtc.c where kiln is built without NVRTC (the
 * meson feature `cuda` found no CUDA toolkit): the CUDA targets are listed but cannot be
 * compiled for, and say why. Objects for the emulator (--cuda-emulate) need no NVRTC.
 */
#include "cuda_internal.h"

bool kl_cuda_available(void) { return false; }

const char *kl_cuda_nvrtc_version(kl_arena *a) {
    (void)a;
    return NULL;
}

bool kl_cu_nvrtc(kl_arena *a, const char *source, int sm, bool has_weights, kl_cu_image *img,
                 kl_diag *d) {
    (void)a, (void)source, (void)sm, (void)has_weights, (void)img;
    return kl_error(d, NULL, "this kiln was built without NVRTC (no CUDA toolkit was found when "
                    "it was configured), so it cannot compile for CUDA targets; reconfigure "
                    "with the toolkit installed (meson setup -Dcuda=enabled)");
}
