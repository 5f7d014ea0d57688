/*
 * tests/cuda/emu.h — the CUDA names the generated kernels use, defined for the host, so that
 * the emulator (fakecuda.c) compiles a model's CUDA source as C++ and runs it on the CPU.
 *
 * Included before the source (clang -include). Each CUDA thread is a call of the kernel with
 * threadIdx / blockIdx read from kl_emu_self, which fakecuda.c points at the running thread;
 * __shfl_xor_sync goes through kl_emu_self->exchange, where the threads of a block meet (as
 * fibers) to swap values. Saturating casts, clamps and the 16-bit float conversions are the
 * prelude's own code (codegen/cuda/prelude.c), so they run here exactly as on the GPU; only the
 * math library differs (the host's libm, not CUDA's), well within the tests' tolerances.
 */
#ifndef KIL_CUDA_EMU_H
#define KIL_CUDA_EMU_H

#define KL_EMULATE 1

/* libm's functions declared here rather than through <math.h>: in C++ that header pulls in
 * <cmath>, which costs most of the compile time of a small model. */
extern "C" {
#define KL_EMU_MATH(name) float name##f(float); double name(double);
KL_EMU_MATH(exp) KL_EMU_MATH(log) KL_EMU_MATH(tanh) KL_EMU_MATH(erf) KL_EMU_MATH(floor)
KL_EMU_MATH(ceil) KL_EMU_MATH(rint) KL_EMU_MATH(sin) KL_EMU_MATH(cos) KL_EMU_MATH(sqrt)
KL_EMU_MATH(fabs)
#undef KL_EMU_MATH
float powf(float, float); double pow(double, double);
float fmodf(float, float); double fmod(double, double);
float fmaf(float, float, float); double fma(double, double, double);
}
typedef __SIZE_TYPE__ size_t;
#define memcpy __builtin_memcpy

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))

#define KL_DEV static inline
#define KL_LDG(p) (*(p))
#define KL_FULL_WARP 0xffffffffu

struct kl_emu_dim3 {
    unsigned x, y, z;
};

struct kl_emu_thread {
    kl_emu_dim3 thread, block, block_dim, grid_dim;
    /* writes *value for the others, waits for the block, reads lane (own ^ lane_xor)'s */
    void (*exchange)(void *value, size_t size, unsigned lane_xor);
};

extern "C" kl_emu_thread *kl_emu_self; /* defined by fakecuda.c */

#define threadIdx (kl_emu_self->thread)
#define blockIdx (kl_emu_self->block)
#define blockDim (kl_emu_self->block_dim)
#define gridDim (kl_emu_self->grid_dim)

template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_xor) {
    (void)mask;
    kl_emu_self->exchange(&v, sizeof v, (unsigned)lane_xor);
    return v;
}

static inline float __int_as_float(int x) { float f; memcpy(&f, &x, sizeof f); return f; }
static inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, sizeof f); return f; }
static inline unsigned __float_as_uint(float f) { unsigned x; memcpy(&x, &f, sizeof x); return x; }
static inline double __longlong_as_double(long long x) {
    double f;
    memcpy(&f, &x, sizeof f);
    return f;
}
static inline long long __double_as_longlong(double f) {
    long long x;
    memcpy(&x, &f, sizeof x);
    return x;
}
#define KL_F2U(x) __float_as_uint(x)
#define KL_U2F(x) __uint_as_float(x)

#endif
