/*
 * codegen/llvm/sizes.c — how big the emitted object is (`kiln compile --stats`).
 *
 * On a microcontroller flash and RAM are the budget, so kiln reports what `size` would: code
 * (.text*), constant data (.rodata*, and the weights' own section when --weights-section moved
 * them), and writable data (.data*, .bss*, which kiln never emits: all mutable state is the
 * caller's workspace). The object is read back through LLVM's object API from the buffer just
 * written, so the figures are the bytes that link, not an estimate. Code is split by symbol:
 * runtime-min's functions (kiln_rt_*) that survived inlining are its share; everything else,
 * including runtime code inlined into kernels, is the model's. The weights are the constant
 * globals kiln made for them (const.*), counted after LLVM merged duplicates.
 */
#include <string.h>

#include <llvm-c/Object.h>

#include "llvm_internal.h"

int64_t kl_cg_weights_bytes(kl_cg *cg) {
    int64_t n = 0;
    for (LLVMValueRef g = LLVMGetFirstGlobal(cg->mod); g; g = LLVMGetNextGlobal(g)) {
        const char *name = LLVMGetValueName(g);
        if (strncmp(name, "const.", 6) == 0 && !LLVMIsDeclaration(g))
            n += (int64_t)LLVMABISizeOfType(cg->td, LLVMGlobalGetValueType(g));
    }
    return n + kl_cg_blob_bytes(cg);
}

typedef enum section_kind { SEC_OTHER, SEC_TEXT, SEC_RODATA, SEC_DATA, SEC_BSS } section_kind;

static bool starts(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static section_kind kind_of(const char *name, const char *weights_section) {
    if (!name) return SEC_OTHER;
    if (starts(name, ".text")) return SEC_TEXT;
    if (starts(name, ".rodata") || (weights_section && !strcmp(name, weights_section)))
        return SEC_RODATA;
    if (starts(name, ".data") || starts(name, ".sdata")) return SEC_DATA;
    if (starts(name, ".bss") || starts(name, ".sbss")) return SEC_BSS;
    return SEC_OTHER;
}

static void sum_sections(LLVMBinaryRef bin, const char *weights_section, kl_size_stats *out) {
    LLVMSectionIteratorRef sec = LLVMObjectFileCopySectionIterator(bin);
    for (; !LLVMObjectFileIsSectionIteratorAtEnd(bin, sec); LLVMMoveToNextSection(sec)) {
        int64_t size = (int64_t)LLVMGetSectionSize(sec);
        switch (kind_of(LLVMGetSectionName(sec), weights_section)) {
        case SEC_TEXT: out->text += size; break;
        case SEC_RODATA: out->rodata += size; break;
        case SEC_DATA: out->data += size; break;
        case SEC_BSS: out->bss += size; break;
        case SEC_OTHER: break;
        }
    }
    LLVMDisposeSectionIterator(sec);
}

static void sum_runtime_code(LLVMBinaryRef bin, kl_size_stats *out) {
    LLVMSymbolIteratorRef sym = LLVMObjectFileCopySymbolIterator(bin);
    LLVMSectionIteratorRef sec = LLVMObjectFileCopySectionIterator(bin);
    for (; !LLVMObjectFileIsSymbolIteratorAtEnd(bin, sym); LLVMMoveToNextSymbol(sym)) {
        const char *name = LLVMGetSymbolName(sym);
        if (!name || !starts(name, "kiln_rt_")) continue;
        LLVMMoveToContainingSection(sec, sym);
        if (!LLVMObjectFileIsSectionIteratorAtEnd(bin, sec) &&
            kind_of(LLVMGetSectionName(sec), NULL) == SEC_TEXT)
            out->text_runtime += (int64_t)LLVMGetSymbolSize(sym);
    }
    LLVMDisposeSectionIterator(sec);
    LLVMDisposeSymbolIterator(sym);
}

void kl_cg_measure_object(LLVMMemoryBufferRef obj, const char *weights_section,
                          kl_size_stats *out) {
    char *err = NULL;
    LLVMBinaryRef bin = LLVMCreateBinary(obj, NULL, &err);
    LLVMDisposeMessage(err);
    if (!bin) return;
    sum_sections(bin, weights_section, out);
    sum_runtime_code(bin, out);
    out->measured = true;
    LLVMDisposeBinary(bin);
}
