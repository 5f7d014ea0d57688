/*
 * codegen/llvm/runtime.c — runtime-min, linked into every generated module as bitcode.
 *
 * The bitcode (runtime-min sources compiled by clang once per target triple) is embedded in kiln by
 * scripts/embed_bitcode.py as kl_runtime_bitcodes[], so a compiled object never needs a runtime
 * library. Linking happens before any kernel is emitted, so kernels call the real definitions.
 * The runtime's functions lose clang's per-function target attributes (the module's target
 * machine decides, and equal attributes keep them inlinable into our kernels); module.c later
 * gives everything but the exported entry points internal linkage, so unused functions vanish.
 */
#include <string.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/Linker.h>

#include "llvm_internal.h"

typedef struct kl_runtime_bitcode {
    const char *name;
    const unsigned char *data;
    size_t size;
} kl_runtime_bitcode;
extern const kl_runtime_bitcode kl_runtime_bitcodes[]; /* generated; NULL name ends it */

static const kl_runtime_bitcode *find_bitcode(const char *name) {
    for (int i = 0; kl_runtime_bitcodes[i].name; i++)
        if (strcmp(kl_runtime_bitcodes[i].name, name) == 0)
            return &kl_runtime_bitcodes[i];
    return NULL;
}

/* Attributes clang puts on every function that would make them differ from ours. */
static void strip_target_attrs(LLVMValueRef fn) {
    static const char *const attrs[] = {"target-cpu", "target-features", "tune-cpu",
                                        "no-builtins", "stack-protector-buffer-size"};
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++)
        LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, attrs[i],
                                         (unsigned)strlen(attrs[i]));
}

bool kl_cg_link_runtime(kl_cg *cg) {
    const char *name = cg->o->target->runtime_bitcode;
    const kl_runtime_bitcode *bc = name ? find_bitcode(name) : NULL;
    if (!bc)
        return kl_error(cg->d, NULL, "codegen: no runtime-min bitcode for target '%s'",
                        cg->o->target->name);
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange(
        (const char *)bc->data, bc->size, "runtime-min", 0);
    LLVMModuleRef rt = NULL;
    bool bad = LLVMParseBitcodeInContext2(cg->ctx, buf, &rt);
    LLVMDisposeMemoryBuffer(buf);
    if (bad || !rt)
        return kl_error(cg->d, NULL, "codegen: the embedded runtime-min bitcode '%s' is invalid",
                        name);
    LLVMSetTarget(rt, LLVMGetTarget(cg->mod));
    LLVMSetDataLayout(rt, LLVMGetDataLayoutStr(cg->mod));
    for (LLVMValueRef fn = LLVMGetFirstFunction(rt); fn; fn = LLVMGetNextFunction(fn))
        strip_target_attrs(fn);
    if (LLVMLinkModules2(cg->mod, rt)) /* consumes rt */
        return kl_error(cg->d, NULL, "codegen: linking runtime-min bitcode '%s' failed", name);
    return true;
}

LLVMValueRef kl_cg_runtime_fn(kl_cg *cg, const char *name) {
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
    if (!fn || LLVMIsDeclaration(fn)) {
        kl_error(cg->d, NULL, "codegen: runtime-min has no function '%s'", name);
        return NULL;
    }
    return fn;
}
