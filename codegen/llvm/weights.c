/*
 * codegen/llvm/weights.c — large weights kept out of LLVM and written straight into the object.
 *
 * A constant handed to LLVM as an initializer is copied into LLVM's constant pool, again into
 * the assembler's section fragment and again into the emitted buffer: a model of W bytes of
 * weights needed about 4W of memory to compile. So constants of at least BLOB_MIN_BYTES are
 * not given to LLVM. The kernels address them as offsets into one external, hidden array
 * NAME_weights (laid out here, in first-use order, each 64-byte aligned, as LLVM would have
 * aligned them); after LLVM has emitted the code, libelf appends a section that holds the
 * array, with its data read from kiln's own buffers, and defines the symbol there. Memory stays
 * near the weights' size, and the object is the same as one with the weights inline.
 *
 * Small constants stay in LLVM, where the optimizer can fold loads from them. Only ELF objects
 * (every kiln target) get the blob; assembly and LLVM IR outputs keep everything inline.
 *
 * Addressing: on x86-64 an array of BLOB_LARGE_BYTES or more goes into .lrodata, flagged
 * SHF_X86_64_LARGE: LLVM then reaches it with 64-bit addresses whatever the code model, and
 * linkers place it after the small sections, so weights past 2 GiB link. Other targets reach
 * their data PC-relative within +-2 GiB, so larger weights are an error there.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "llvm_internal.h"

enum { BLOB_ALIGN = 64 };
#define BLOB_MIN_BYTES ((int64_t)4096)
#define BLOB_LARGE_BYTES ((int64_t)256 << 20)
#define BLOB_PC_RELATIVE_MAX (((int64_t)2 << 30) - ((int64_t)64 << 20)) /* leave room for code */

#ifndef SHF_X86_64_LARGE
#define SHF_X86_64_LARGE 0x10000000
#endif

struct kl_cg_blob {
    LLVMValueRef placeholder; /* [0 x i8] while offsets are handed out; replaced at the end */
    LLVMValueRef global;      /* the final external [bytes x i8] declaration */
    const char *symbol, *section;
    bool large;
    const kl_buffer **bufs;
    int64_t *offsets;
    int n, cap;
    int64_t bytes;
};

static bool is_x86_64(const kl_cg *cg) { return !strncmp(cg->o->target->triple, "x86_64", 6); }

void kl_cg_blob_enable(kl_cg *cg) {
    kl_cg_blob *b = kl_alloc(cg->arena, sizeof *b);
    b->symbol = kl_sprintf(cg->arena, "%s_weights", cg->o->name);
    b->placeholder = LLVMAddGlobal(cg->mod, LLVMArrayType2(cg->i8, 0), "kiln.weights.placeholder");
    cg->blob = b;
}

static void blob_push(kl_cg *cg, kl_cg_blob *b, const kl_buffer *buf, int64_t offset) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        const kl_buffer **bufs = kl_alloc_array(cg->arena, (size_t)cap, sizeof *bufs);
        int64_t *offsets = kl_alloc_array(cg->arena, (size_t)cap, sizeof *offsets);
        if (b->n) {
            memcpy(bufs, b->bufs, (size_t)b->n * sizeof *bufs);
            memcpy(offsets, b->offsets, (size_t)b->n * sizeof *offsets);
        }
        b->bufs = bufs, b->offsets = offsets, b->cap = cap;
    }
    b->bufs[b->n] = buf;
    b->offsets[b->n++] = offset;
}

LLVMValueRef kl_cg_blob_place(kl_cg *cg, const kl_buffer *buf) {
    kl_cg_blob *b = cg->blob;
    int64_t bytes = kl_buffer_bytes(buf);
    if (!b || bytes < BLOB_MIN_BYTES || !buf->data) return NULL;
    int64_t offset = (b->bytes + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
    blob_push(cg, b, buf, offset);
    b->bytes = offset + bytes;
    LLVMValueRef at = LLVMConstInt(cg->i64, (unsigned long long)offset, 0);
    return LLVMConstGEP2(cg->i8, b->placeholder, &at, 1);
}

/* The array's final declaration, now that its size is known: every GEP made on the
 * placeholder is moved to it. */
bool kl_cg_blob_declare(kl_cg *cg) {
    kl_cg_blob *b = cg->blob;
    if (!b) return true;
    if (b->n == 0) {
        LLVMDeleteGlobal(b->placeholder);
        cg->blob = NULL;
        return true;
    }
    b->large = is_x86_64(cg) && b->bytes >= BLOB_LARGE_BYTES;
    if (!b->large && b->bytes > BLOB_PC_RELATIVE_MAX)
        return kl_error(cg->d, NULL,
                        "the weights take %lld bytes; code for %s reaches at most %lld bytes of "
                        "data (only x86-64 places larger weights in a large data section)",
                        (long long)b->bytes, cg->o->target->name, (long long)BLOB_PC_RELATIVE_MAX);
    const char *own = cg->o->weights_section && *cg->o->weights_section ? cg->o->weights_section
                                                                        : NULL;
    b->section = b->large ? kl_sprintf(cg->arena, ".lrodata.%s", b->symbol)
                 : own    ? own
                          : kl_sprintf(cg->arena, ".rodata.%s", b->symbol);
    b->global = LLVMAddGlobal(cg->mod, LLVMArrayType2(cg->i8, (uint64_t)b->bytes), b->symbol);
    LLVMSetLinkage(b->global, LLVMExternalLinkage);
    LLVMSetVisibility(b->global, LLVMHiddenVisibility);
    LLVMSetGlobalConstant(b->global, 1);
    LLVMSetAlignment(b->global, BLOB_ALIGN);
    if (b->large) LLVMSetSection(b->global, b->section); /* tells LLVM to use 64-bit addresses */
    LLVMReplaceAllUsesWith(b->placeholder, b->global);
    LLVMDeleteGlobal(b->placeholder);
    b->placeholder = NULL;
    return true;
}

int64_t kl_cg_blob_bytes(const kl_cg *cg) { return cg->blob ? cg->blob->bytes : 0; }

void kl_cg_blob_describe(const kl_cg *cg, kl_size_stats *sizes) {
    if (!cg->blob) return;
    sizes->rodata += cg->blob->bytes;
    snprintf(sizes->weights_section, sizeof sizes->weights_section, "%s", cg->blob->section);
    sizes->weights_large = cg->blob->large;
}

/* ---------------------------------------------------------------- the object, through libelf */

static bool elf_failed(kl_cg *cg, const char *path, const char *what) {
    return kl_error(cg->d, NULL, "cannot add the weights to '%s': %s: %s", path, what,
                    elf_errmsg(-1));
}

static bool add_data(Elf_Scn *scn, const void *bytes, size_t size) {
    Elf_Data *data = elf_newdata(scn);
    if (!data) return false;
    data->d_buf = (void *)bytes; /* libelf writes it out and never modifies it */
    data->d_size = size;
    data->d_type = ELF_T_BYTE;
    data->d_align = 1;
    data->d_version = EV_CURRENT;
    return true;
}

/* The section name, appended to the section-name string table; its offset there. */
static bool add_section_name(Elf *e, const char *name, size_t *offset) {
    size_t shstrndx;
    GElf_Shdr sh;
    if (elf_getshdrstrndx(e, &shstrndx) != 0) return false;
    Elf_Scn *strtab = elf_getscn(e, shstrndx);
    if (!strtab || !gelf_getshdr(strtab, &sh)) return false;
    *offset = (size_t)sh.sh_size;
    return add_data(strtab, name, strlen(name) + 1);
}

/* Padding and kiln's buffers, in blob order, as the data of the new section (no copies). */
static bool add_weights_section(kl_cg *cg, Elf *e, size_t *index) {
    static const unsigned char zeros[BLOB_ALIGN];
    kl_cg_blob *b = cg->blob;
    size_t name;
    if (!add_section_name(e, b->section, &name)) return false;
    Elf_Scn *scn = elf_newscn(e);
    if (!scn) return false;
    int64_t at = 0;
    for (int i = 0; i < b->n; i++) {
        if (b->offsets[i] > at && !add_data(scn, zeros, (size_t)(b->offsets[i] - at)))
            return false;
        int64_t bytes = kl_buffer_bytes(b->bufs[i]);
        if (!add_data(scn, b->bufs[i]->data, (size_t)bytes)) return false;
        at = b->offsets[i] + bytes;
    }
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) return false;
    sh.sh_name = name;
    sh.sh_type = SHT_PROGBITS;
    sh.sh_flags = SHF_ALLOC | (b->large ? SHF_X86_64_LARGE : 0);
    sh.sh_addralign = BLOB_ALIGN;
    *index = elf_ndxscn(scn);
    return gelf_update_shdr(scn, &sh) != 0;
}

/* NAME_weights in the symbol table, where LLVM left it undefined (data NULL: LLVM dropped
 * every use, and the weights are not needed). */
typedef struct symbol_at {
    Elf_Data *data;
    int index;
    GElf_Sym sym;
} symbol_at;

static bool find_symbol(kl_cg *cg, Elf *e, symbol_at *at) {
    at->data = NULL;
    for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn));) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) return false;
        if (sh.sh_type != SHT_SYMTAB) continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !sh.sh_entsize) return false;
        for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
            if (!gelf_getsym(data, (int)i, &at->sym)) return false;
            const char *name = elf_strptr(e, sh.sh_link, at->sym.st_name);
            if (name && !strcmp(name, cg->blob->symbol) && at->sym.st_shndx == SHN_UNDEF) {
                at->data = data;
                at->index = (int)i;
                return true;
            }
        }
    }
    return true;
}

/* Define the symbol at the start of the section. */
static bool define_symbol(kl_cg *cg, symbol_at *at, size_t section) {
    at->sym.st_shndx = (Elf64_Section)section;
    at->sym.st_value = 0;
    at->sym.st_size = (uint64_t)cg->blob->bytes;
    at->sym.st_info = GELF_ST_INFO(GELF_ST_BIND(at->sym.st_info), STT_OBJECT);
    return gelf_update_sym(at->data, at->index, &at->sym) &&
           elf_flagdata(at->data, ELF_C_SET, ELF_F_DIRTY);
}

static bool append_to(kl_cg *cg, Elf *e, const char *path) {
    symbol_at at;
    if (!find_symbol(cg, e, &at)) return elf_failed(cg, path, "symbol table");
    if (!at.data) return true;
    size_t section;
    if (!add_weights_section(cg, e, &section)) return elf_failed(cg, path, "new section");
    if (section >= SHN_LORESERVE)
        return kl_error(cg->d, NULL, "cannot add the weights to '%s': too many sections", path);
    if (!define_symbol(cg, &at, section)) return elf_failed(cg, path, "symbol table");
    if (elf_update(e, ELF_C_WRITE) < 0) return elf_failed(cg, path, "write");
    return true;
}

bool kl_cg_blob_append(kl_cg *cg, const char *path) {
    if (!cg->blob) return true;
    if (elf_version(EV_CURRENT) == EV_NONE) return elf_failed(cg, path, "libelf");
    int fd = open(path, O_RDWR);
    if (fd < 0) return kl_error(cg->d, NULL, "cannot open '%s': %s", path, strerror(errno));
    Elf *e = elf_begin(fd, ELF_C_RDWR, NULL);
    bool ok = e ? append_to(cg, e, path) : elf_failed(cg, path, "not an ELF object");
    if (e) elf_end(e);
    if (close(fd) != 0 && ok)
        ok = kl_error(cg->d, NULL, "cannot write '%s': %s", path, strerror(errno));
    return ok;
}
