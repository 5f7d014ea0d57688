/*
 * tests/cuda/fakecuda.c — a stand-in for libcuda that runs CUDA models on the CPU, so that the
 * CUDA back end's generated code is executed, not only compiled, on machines without a GPU.
 *
 * kiln check loads it instead of the driver (KILN_LIBCUDA=.../libkiln_fakecuda.so) and runs
 * an object compiled with --cuda-emulate, whose image is the model's CUDA source. Everything
 * else is the real path: the object's host code (LLVM) calls cuModuleLoadData, looks the
 * kernels up, copies the weights into the module's global and launches every kernel with the
 * grid, block size and parameter array it computed; this library answers as the driver
 * would:
 *  - cuModuleLoadData compiles the source as C++ with tests/cuda/emu.h in front (clang) into a
 *    shared library in a private folder and loads it; any other image is CUDA_ERROR_INVALID_IMAGE;
 *  - cuModuleGetFunction finds the kernel's trampoline kl_emu_NAME (source.c writes one per
 *    kernel under KL_EMULATE); cuModuleGetGlobal the weights' array and its size;
 *  - "device" memory is host memory; cuMemAlloc fills it with 0xff bytes (NaN as floats), so a
 *    kernel that reads what no one wrote shows;
 *  - cuLaunchKernel runs every block, and in it every thread, in order. A thread runs as a
 *    fiber (its own stack) as soon as the block's first thread calls exchange (a warp shuffle):
 *    each exchange is two barriers of the whole block (write your value, wait; read your
 *    partner's, wait), so the threads' values meet as on the GPU. A block whose threads do not
 *    all take part in the same exchanges is an error (CUDA_ERROR_LAUNCH_FAILED), never a hang.
 * Device properties: "kiln CUDA emulator", compute capability from KILN_CUDA_EMULATE_SM
 * (default 90). Not thread-safe; the harness calls from one thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr1, mkdtemp */
#endif
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef KL_EMU_CC
#define KL_EMU_CC "clang-19"
#endif
#ifndef KL_EMU_HEADER
#define KL_EMU_HEADER "emu.h"
#endif

#define MARKER "KILN-CUDA-EMULATE\n"

enum {
    OK = 0, ERR_INVALID_VALUE = 1, ERR_OUT_OF_MEMORY = 2, ERR_INVALID_IMAGE = 200,
    ERR_INVALID_HANDLE = 400, ERR_NOT_FOUND = 500, ERR_LAUNCH_FAILED = 719,
    STACK = 1 << 17, MAX_SLOT = 16,
};

extern char **environ;

/* The thread the emulated kernel code reads (emu.h's kl_emu_self). */
typedef struct dim3 {
    unsigned x, y, z;
} dim3;
typedef struct emu_thread {
    dim3 thread, block, block_dim, grid_dim;
    void (*exchange)(void *value, size_t size, unsigned lane_xor);
} emu_thread;
emu_thread *kl_emu_self;

typedef struct module {
    void *handle;
    char dir[64];
} module;

typedef void (*kernel_fn)(void **params);

/* ---------------------------------------------------------------- context, devices, memory */

int cuInit(unsigned flags) { (void)flags; return OK; }
int cuDeviceGetCount(int *n) { *n = 1; return OK; }
int cuDeviceGet(int *dev, int ordinal) { *dev = 0; return ordinal == 0 ? OK : ERR_INVALID_VALUE; }
int cuDeviceGetName(char *name, int len, int dev) {
    (void)dev;
    snprintf(name, (size_t)len, "kiln CUDA emulator (CPU)");
    return OK;
}

static int emulated_sm(void) {
    const char *s = getenv("KILN_CUDA_EMULATE_SM");
    return s && atoi(s) > 0 ? atoi(s) : 90;
}

int cuDeviceGetAttribute(int *v, int attr, int dev) {
    (void)dev;
    *v = attr == 75 ? emulated_sm() / 10 : attr == 76 ? emulated_sm() % 10 : 0;
    return OK;
}

int cuDevicePrimaryCtxRetain(void **ctx, int dev) { (void)dev; *ctx = (void *)1; return OK; }
int cuDevicePrimaryCtxRelease_v2(int dev) { (void)dev; return OK; }
int cuCtxSetCurrent(void *ctx) { (void)ctx; return OK; }
int cuStreamSynchronize(void *stream) { (void)stream; return OK; }

int cuGetErrorString(int e, const char **s) {
    static char text[64];
    snprintf(text, sizeof text, "emulated CUDA error %d", e);
    *s = text;
    return OK;
}

int cuMemAlloc_v2(unsigned long long *p, size_t bytes) {
    size_t n = (bytes + 255) / 256 * 256;
    void *m = aligned_alloc(256, n ? n : 256);
    if (!m) return ERR_OUT_OF_MEMORY;
    memset(m, 0xff, n ? n : 256);
    *p = (unsigned long long)(uintptr_t)m;
    return OK;
}

int cuMemFree_v2(unsigned long long p) { free((void *)(uintptr_t)p); return OK; }

int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t n) {
    memcpy((void *)(uintptr_t)dst, src, n);
    return OK;
}
int cuMemcpyHtoDAsync_v2(unsigned long long dst, const void *src, size_t n, void *stream) {
    (void)stream;
    return cuMemcpyHtoD_v2(dst, src, n);
}
int cuMemcpyDtoHAsync_v2(void *dst, unsigned long long src, size_t n, void *stream) {
    (void)stream;
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return OK;
}

/* ---------------------------------------------------------------- modules */

static int run(const char *const *argv) {
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0) return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void remove_module_files(const module *m) {
    char path[128];
    snprintf(path, sizeof path, "%s/kernels.cu", m->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/kernels.so", m->dir);
    unlink(path);
    rmdir(m->dir);
}

/* The image's source compiled (emu.h in front) and loaded. */
static int compile_module(module *m, const char *source) {
    char src[128], so[128];
    snprintf(src, sizeof src, "%s/kernels.cu", m->dir);
    snprintf(so, sizeof so, "%s/kernels.so", m->dir);
    FILE *f = fopen(src, "w");
    if (!f) return ERR_INVALID_IMAGE;
    fputs(source, f);
    if (fclose(f) != 0) return ERR_INVALID_IMAGE;
    const char *cc = getenv("KILN_EMU_CC");
    const char *argv[] = {cc && *cc ? cc : KL_EMU_CC, "-x", "c++", "-std=c++17", "-O1", "-march=native", "-w",
                          "-fPIC", "-shared", "-include", KL_EMU_HEADER, "-o", so, src, NULL};
    if (run(argv) != 0) {
        fprintf(stderr, "fakecuda: %s could not compile the model's CUDA source (%s)\n", argv[0], src);
        return ERR_INVALID_IMAGE;
    }
    m->handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle) {
        fprintf(stderr, "fakecuda: %s\n", dlerror());
        return ERR_INVALID_IMAGE;
    }
    return OK;
}

int cuModuleLoadData(void **out, const void *image) {
    if (!image || strncmp(image, MARKER, strlen(MARKER)) != 0) return ERR_INVALID_IMAGE;
    module *m = calloc(1, sizeof *m);
    if (!m) return ERR_OUT_OF_MEMORY;
    const char *tmp = getenv("TMPDIR");
    snprintf(m->dir, sizeof m->dir, "%s/kiln-emu-XXXXXX", tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(m->dir)) {
        free(m);
        return ERR_OUT_OF_MEMORY;
    }
    int r = compile_module(m, (const char *)image + strlen(MARKER));
    if (r != OK) {
        if (m->handle) dlclose(m->handle);
        remove_module_files(m);
        free(m);
        return r;
    }
    *out = m;
    return OK;
}

int cuModuleUnload(void *mod) {
    module *m = mod;
    if (!m) return ERR_INVALID_HANDLE;
    dlclose(m->handle);
    remove_module_files(m);
    free(m);
    return OK;
}

int cuModuleGetFunction(void **f, void *mod, const char *name) {
    module *m = mod;
    if (!m) return ERR_INVALID_HANDLE;
    char sym[512];
    snprintf(sym, sizeof sym, "kl_emu_%s", name);
    void *p = dlsym(m->handle, sym);
    if (!p) return ERR_NOT_FOUND;
    *f = p;
    return OK;
}

int cuModuleGetGlobal_v2(unsigned long long *dptr, size_t *bytes, void *mod, const char *name) {
    module *m = mod;
    if (!m) return ERR_INVALID_HANDLE;
    void *p = dlsym(m->handle, name);
    const ElfW(Sym) *sym = NULL;
    Dl_info info;
    if (!p || !dladdr1(p, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym) return ERR_NOT_FOUND;
    *dptr = (unsigned long long)(uintptr_t)p;
    *bytes = sym->st_size;
    return OK;
}

/* ---------------------------------------------------------------- launches */

/* Switching between threads. On x86-64 a few instructions that save the callee-saved
 * registers on the old stack and restore them from the new one (glibc's swapcontext makes a
 * system call for the signal mask each time, which dominated the emulator's run time); a new
 * fiber's stack starts as if it had switched away just before fiber_main. Elsewhere ucontext. */
#if defined(__x86_64__)
typedef struct context {
    void *sp;
} context;

__attribute__((naked, noinline)) static void switch_to(context *from, context *to) {
    __asm__ volatile("push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
                     "mov %rsp, (%rdi)\n mov (%rsi), %rsp\n"
                     "pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n ret\n");
}

static void make_context(context *c, char *stack, size_t size, void (*entry)(void)) {
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = NULL;            /* fiber_main's return address slot: it never returns */
    *--sp = (void *)entry;   /* where switch_to's ret goes */
    for (int i = 0; i < 6; i++)
        *--sp = NULL;        /* rbp, rbx, r12..r15 */
    c->sp = sp;
}
#else
typedef ucontext_t context;

static void switch_to(context *from, context *to) { swapcontext(from, to); }

static void make_context(context *c, char *stack, size_t size, void (*entry)(void)) {
    getcontext(c);
    c->uc_stack.ss_sp = stack;
    c->uc_stack.ss_size = size;
    c->uc_link = NULL;
    makecontext(c, entry, 0);
}
#endif

typedef struct fiber {
    context ctx;
    emu_thread self;
    char *stack;
    int done;
    int exchanges;
} fiber;

/* One block in flight. */
static struct block {
    context main;
    fiber *f;
    unsigned n;
    kernel_fn fn;
    void **params;
    unsigned char slot[1024][MAX_SLOT];
    int failed;
} B;

/* The running thread: kl_emu_self points into its fiber. */
static unsigned current(void) {
    return (unsigned)(((char *)kl_emu_self - (char *)&B.f[0].self) / (ptrdiff_t)sizeof(fiber));
}

static void yield(unsigned t) { switch_to(&B.f[t].ctx, &B.main); }

/* Two barriers: every thread has written its value, then every thread has read. */
static void exchange(void *value, size_t size, unsigned lane_xor) {
    unsigned t = current(), other = t ^ lane_xor;
    if (size > MAX_SLOT || other >= B.n) {
        B.failed = 1;
        return;
    }
    B.f[t].exchanges++;
    memcpy(B.slot[t], value, size);
    yield(t);
    memcpy(value, B.slot[other], size);
    yield(t);
}

static void fiber_main(void) {
    unsigned t = current();
    B.fn(B.params);
    B.f[t].done = 1;
    switch_to(&B.f[t].ctx, &B.main);
}

static void start_fiber(unsigned t) {
    fiber *f = &B.f[t];
    f->done = 0;
    f->exchanges = 0;
    make_context(&f->ctx, f->stack, STACK, fiber_main);
}

static void resume(unsigned t) {
    kl_emu_self = &B.f[t].self;
    switch_to(&B.main, &B.f[t].ctx);
}

/* Every thread of the block to its end, round-robin from barrier to barrier. */
static int run_block(void) {
    start_fiber(0);
    resume(0);
    if (B.f[0].done && B.f[0].exchanges == 0) {
        /* no shuffles in this kernel: the other threads run straight through */
        for (unsigned t = 1; t < B.n; t++) {
            kl_emu_self = &B.f[t].self;
            B.fn(B.params);
        }
        return OK;
    }
    for (unsigned t = 1; t < B.n; t++) { /* up to the first barrier, where thread 0 waits */
        start_fiber(t);
        resume(t);
    }
    for (;;) {
        unsigned running = 0, done = 0;
        for (unsigned t = 0; t < B.n; t++) {
            if (B.f[t].done) {
                done++;
                continue;
            }
            resume(t);
            running++;
        }
        if (running == 0) break;
        if (done > 0 || B.failed) { /* some threads left while others wait at a barrier */
            fprintf(stderr, "fakecuda: the threads of a block did not all take part in a shuffle\n");
            return ERR_LAUNCH_FAILED;
        }
    }
    return B.failed ? ERR_LAUNCH_FAILED : OK;
}

int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, unsigned shared, void *stream, void **params, void **extra) {
    (void)shared, (void)stream, (void)extra;
    if (!f || gy != 1 || gz != 1 || by != 1 || bz != 1 || bx == 0 || bx > 1024)
        return ERR_INVALID_VALUE;
    B.fn = (kernel_fn)f;
    B.params = params;
    B.n = bx;
    B.failed = 0;
    B.f = calloc(bx, sizeof *B.f);
    char *stacks = malloc((size_t)bx * STACK);
    if (!B.f || !stacks) {
        free(B.f);
        free(stacks);
        return ERR_OUT_OF_MEMORY;
    }
    int r = OK;
    for (unsigned b = 0; b < gx && r == OK; b++) {
        for (unsigned t = 0; t < bx; t++) {
            emu_thread *s = &B.f[t].self;
            B.f[t].stack = stacks + (size_t)t * STACK;
            s->thread = (dim3){t, 0, 0};
            s->block = (dim3){b, 0, 0};
            s->block_dim = (dim3){bx, 1, 1};
            s->grid_dim = (dim3){gx, 1, 1};
            s->exchange = exchange;
        }
        r = run_block();
    }
    free(stacks);
    free(B.f);
    B.f = NULL;
    kl_emu_self = NULL;
    return r;
}
