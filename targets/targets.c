/*
 * targets/targets.c — the list of target descriptors and lookup by name.
 *
 * Adding a target means adding one descriptor (data) and one line in kl_targets; the first entry
 * is the default: the portable baseline of the host architecture kiln is built for. The CUDA
 * targets are always listed; compiling for them needs a kiln built with NVRTC
 * (kl_target_available).
 */
#include <string.h>

#include "kl.h"

extern const kl_target kl_target_x86_64, kl_target_x86_64_v2, kl_target_x86_64_v3,
    kl_target_x86_64_v4, kl_target_native, kl_target_aarch64_linux,
    kl_target_aarch64_linux_dotprod, kl_target_riscv64_linux, kl_target_riscv64_linux_v,
    kl_target_cortex_m4, kl_target_cortex_m7, kl_target_cortex_m55, kl_target_cortex_m0plus,
    kl_target_riscv32, kl_target_riscv32_f, kl_target_cuda_sm80,
    kl_target_cuda_sm89, kl_target_cuda_sm90;

const kl_target *const kl_targets[] = {
    &kl_target_x86_64, &kl_target_x86_64_v2, &kl_target_x86_64_v3, &kl_target_x86_64_v4,
    &kl_target_native, &kl_target_aarch64_linux, &kl_target_aarch64_linux_dotprod,
    &kl_target_riscv64_linux, &kl_target_riscv64_linux_v, &kl_target_cortex_m4,
    &kl_target_cortex_m7, &kl_target_cortex_m55, &kl_target_cortex_m0plus, &kl_target_riscv32,
    &kl_target_riscv32_f, &kl_target_cuda_sm80, &kl_target_cuda_sm89, &kl_target_cuda_sm90, NULL,
};

const kl_target *kl_target_find(const char *name) {
    for (int i = 0; kl_targets[i]; i++)
        if (name && strcmp(kl_targets[i]->name, name) == 0)
            return kl_targets[i];
    return NULL;
}

const kl_target *kl_target_default(void) { return kl_targets[0]; }

bool kl_target_is_native(const kl_target *t) {
    return t && t->cpu && strcmp(t->cpu, KL_TARGET_NATIVE) == 0;
}

bool kl_target_is_emulated(const kl_target *t) { return t && t->run && *t->run; }

bool kl_target_available(const kl_target *t) {
    return t && (t->backend != KL_BACKEND_CUDA || kl_cuda_available());
}

int64_t kl_target_busy_threads(const kl_target *t) {
    if (!t || t->backend != KL_BACKEND_CUDA) return 0;
    return (int64_t)t->sm_count * t->threads_per_sm / 4;
}

int kl_target_lanes(const kl_target *t, kl_dtype elem) {
    size_t bytes = kl_dtype_size(elem);
    if (!t || bytes == 0) return 1;
    int lanes = t->vector_bits / (int)(8 * bytes);
    return lanes > 0 ? lanes : 1;
}
