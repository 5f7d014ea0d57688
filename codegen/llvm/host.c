/*
 * codegen/llvm/host.c — resolving the "native" target descriptor.
 *
 * LLVM knows the host: its CPU name and the features the CPU reports (LLVMGetHostCPUName,
 * LLVMGetHostCPUFeatures). From the features follow the numbers the passes read: the widest
 * vector registers (AVX-512: 512 bits, 32 registers; AVX/AVX2: 256 bits, 16 registers; else
 * SSE's 128 bits), whether FMA exists, and the x86-64 ISA level the object will need. Cache
 * sizes come from Linux's sysfs when it is there, else the baseline descriptor's figures.
 */
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "kl.h"

/* Whether an LLVM feature string ("+sse2,-avx512f,...") enables `name`. */
static bool has_feature(const char *features, const char *name) {
    size_t n = strlen(name);
    for (const char *p = features; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n + 1 && p[0] == '+' && strncmp(p + 1, name, n) == 0) return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static bool has_all(const char *features, const char *const *names) {
    for (; *names; names++)
        if (!has_feature(features, *names)) return false;
    return true;
}

/* The x86-64 psABI microarchitecture level the features reach. */
static int isa_level(const char *f) {
    static const char *const v2[] = {"cx16", "sahf", "popcnt", "sse3", "sse4.1", "sse4.2",
                                     "ssse3", NULL};
    static const char *const v3[] = {"avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt",
                                     "movbe", "xsave", NULL};
    static const char *const v4[] = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl",
                                     NULL};
    if (!has_all(f, v2)) return 1;
    if (!has_all(f, v3)) return 2;
    return has_all(f, v4) ? 4 : 3;
}

/* Size in bytes of the data (or unified) cache of `level` of CPU 0, or 0 if unknown. */
static int cache_bytes(int level) {
    for (int i = 0; i < 8; i++) {
        char path[128], buf[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        int lv = fgets(buf, sizeof buf, f) ? atoi(buf) : 0;
        fclose(f);
        if (lv != level) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (!(f = fopen(path, "r"))) continue;
        bool instruction = fgets(buf, sizeof buf, f) && strncmp(buf, "Instruction", 11) == 0;
        fclose(f);
        if (instruction) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r"))) continue;
        long v = 0;
        char unit = 0;
        if (fgets(buf, sizeof buf, f)) sscanf(buf, "%ld%c", &v, &unit);
        fclose(f);
        return (int)(unit == 'K' ? v * 1024 : unit == 'M' ? v * 1048576 : v);
    }
    return 0;
}

const kl_target *kl_target_resolve(kl_arena *a, const kl_target *t, kl_diag *d) {
    if (!kl_target_is_native(t)) return t;
    if (strncmp(t->triple, "x86_64", 6) != 0) {
        kl_error(d, NULL, "target native: resolving the host is only implemented for x86-64");
        return NULL;
    }
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    kl_target *r = kl_alloc(a, sizeof *r);
    *r = *t;
    r->cpu = kl_strdup(a, cpu && *cpu ? cpu : "x86-64");
    r->features = kl_strdup(a, features ? features : "");
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    bool avx512 = has_feature(r->features, "avx512f");
    r->vector_bits = avx512 ? 512 : has_feature(r->features, "avx") ? 256 : 128;
    r->vector_registers = avx512 ? 32 : 16;
    r->fma = has_feature(r->features, "fma");
    r->isa_level = isa_level(r->features);
    int l1 = cache_bytes(1), l2 = cache_bytes(2);
    if (l1 > 0) r->l1_bytes = l1;
    if (l2 > 0) r->l2_bytes = l2;
    r->description = kl_sprintf(a, "the host: %s, %d-bit vectors, %d KiB L1d, %d KiB L2",
                                r->cpu, r->vector_bits, r->l1_bytes / 1024, r->l2_bytes / 1024);
    return r;
}

/* The variant of `t`'s run-time ISA dispatch (codegen/llvm/dispatch.c) that this host's CPU
 * would run, among the `n` an object carries; t itself when none, or when t is not x86-64. */
const kl_target *kl_target_host_variant(const kl_target *t, const kl_target *const *variants,
                                        int n) {
    if (n == 0 || strncmp(t->triple, "x86_64", 6) != 0) return t;
    char *features = LLVMGetHostCPUFeatures();
    int level = isa_level(features ? features : "");
    LLVMDisposeMessage(features);
    for (int i = 0; i < n; i++)
        if (variants[i]->isa_level <= level) return variants[i];
    return t;
}
