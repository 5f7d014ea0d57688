/*
 * codegen/cuda/cubin.c — checks the cubin NVRTC made before it goes into an object.
 *
 * A cubin is an ELF file. It must be a 64-bit little-endian executable for EM_CUDA (190),
 * built for the target's sm (e_flags: bits 8..15 for the CUDA ELF ABI version 8 and later,
 * bits 0..7 before), and define every kernel the host side will look up as a global function
 * whose code section (.text.NAME) is not empty, and the weights as an object of at least
 * their size. Every offset and size is checked against the file before it is followed, so a
 * truncated or foreign file gives a diagnostic, never a crash. (cuobjdump and nvdisasm, where
 * the toolkit has them, are run on cubins by the tests as a second opinion.)
 */
#include <elf.h>
#include <string.h>

#include "cuda_internal.h"

#ifndef EM_CUDA
#define EM_CUDA 190
#endif
enum { ELFOSABI_CUDA = 0x41, CUDA_ABI_V8 = 8 };

typedef struct cubin {
    const unsigned char *data;
    size_t size;
    const Elf64_Ehdr *eh;
    const Elf64_Shdr *sh;
    const Elf64_Sym *syms;
    size_t n_syms;
    const char *strtab;
    size_t strtab_size;
    const char *shstr;
    size_t shstr_size;
} cubin;

static bool in_file(const cubin *c, uint64_t off, uint64_t len) {
    return off <= c->size && len <= c->size - off;
}

static bool open_cubin(cubin *c, kl_diag *d) {
    if (c->size < sizeof(Elf64_Ehdr) || memcmp(c->data, ELFMAG, SELFMAG) != 0)
        return kl_error(d, NULL, "cubin check: not an ELF file (%zu bytes)", c->size);
    c->eh = (const Elf64_Ehdr *)c->data;
    const Elf64_Ehdr *eh = c->eh;
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return kl_error(d, NULL, "cubin check: not a 64-bit little-endian ELF file");
    if (eh->e_machine != EM_CUDA || eh->e_type != ET_EXEC)
        return kl_error(d, NULL, "cubin check: not a CUDA executable (machine %u, type %u)",
                        eh->e_machine, eh->e_type);
    if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_file(c, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) ||
        eh->e_shstrndx >= eh->e_shnum)
        return kl_error(d, NULL, "cubin check: section headers out of the file");
    c->sh = (const Elf64_Shdr *)(c->data + eh->e_shoff);
    const Elf64_Shdr *ss = &c->sh[eh->e_shstrndx];
    if (!in_file(c, ss->sh_offset, ss->sh_size))
        return kl_error(d, NULL, "cubin check: section names out of the file");
    c->shstr = (const char *)c->data + ss->sh_offset;
    c->shstr_size = ss->sh_size;
    return true;
}

static int cubin_sm(const Elf64_Ehdr *eh) {
    bool v8 = eh->e_ident[EI_OSABI] == ELFOSABI_CUDA && eh->e_ident[EI_ABIVERSION] >= CUDA_ABI_V8;
    return v8 ? (int)((eh->e_flags >> 8) & 0xff) : (int)(eh->e_flags & 0xff);
}

static const char *string_at(const char *tab, size_t size, uint32_t off) {
    if (off >= size || !memchr(tab + off, 0, size - off))
        return NULL;
    return tab + off;
}

static bool find_symtab(cubin *c, kl_diag *d) {
    for (int i = 0; i < c->eh->e_shnum; i++) {
        const Elf64_Shdr *s = &c->sh[i];
        if (s->sh_type != SHT_SYMTAB)
            continue;
        if (s->sh_entsize != sizeof(Elf64_Sym) || !in_file(c, s->sh_offset, s->sh_size) ||
            s->sh_link >= c->eh->e_shnum)
            return kl_error(d, NULL, "cubin check: bad symbol table");
        const Elf64_Shdr *st = &c->sh[s->sh_link];
        if (!in_file(c, st->sh_offset, st->sh_size))
            return kl_error(d, NULL, "cubin check: symbol names out of the file");
        c->syms = (const Elf64_Sym *)(c->data + s->sh_offset);
        c->n_syms = s->sh_size / sizeof(Elf64_Sym);
        c->strtab = (const char *)c->data + st->sh_offset;
        c->strtab_size = st->sh_size;
        return true;
    }
    return kl_error(d, NULL, "cubin check: no symbol table");
}

static const Elf64_Sym *find_symbol(const cubin *c, const char *name) {
    for (size_t i = 0; i < c->n_syms; i++) {
        const char *s = string_at(c->strtab, c->strtab_size, c->syms[i].st_name);
        if (s && strcmp(s, name) == 0)
            return &c->syms[i];
    }
    return NULL;
}

/* A global function with its own non-empty .text.NAME section. */
static bool check_kernel(const cubin *c, const char *name, kl_diag *d) {
    const Elf64_Sym *s = find_symbol(c, name);
    if (!s || ELF64_ST_TYPE(s->st_info) != STT_FUNC || ELF64_ST_BIND(s->st_info) != STB_GLOBAL)
        return kl_error(d, NULL, "cubin check: kernel '%s' is not a global function of the cubin",
                        name);
    if (s->st_shndx == SHN_UNDEF || s->st_shndx >= c->eh->e_shnum)
        return kl_error(d, NULL, "cubin check: kernel '%s' has no code section", name);
    const Elf64_Shdr *sec = &c->sh[s->st_shndx];
    const char *sec_name = string_at(c->shstr, c->shstr_size, sec->sh_name);
    if (!sec_name || strncmp(sec_name, ".text.", 6) != 0 || strcmp(sec_name + 6, name) != 0 ||
        sec->sh_size == 0 || !in_file(c, sec->sh_offset, sec->sh_size))
        return kl_error(d, NULL, "cubin check: kernel '%s' has no code", name);
    return true;
}

bool kl_cu_check_cubin(const unsigned char *data, size_t size, int sm, const char *const *names,
                       int n_names, const char *weights, kl_diag *d) {
    cubin c = {.data = data, .size = size};
    if (!open_cubin(&c, d))
        return false;
    int got = cubin_sm(c.eh);
    if (got != sm)
        return kl_error(d, NULL, "cubin check: built for sm_%d, not sm_%d", got, sm);
    if (!find_symtab(&c, d))
        return false;
    bool ok = true;
    for (int i = 0; i < n_names; i++)
        ok = check_kernel(&c, names[i], d) && ok;
    if (weights) {
        const Elf64_Sym *s = find_symbol(&c, weights);
        if (!s || ELF64_ST_TYPE(s->st_info) != STT_OBJECT)
            ok = kl_error(d, NULL, "cubin check: the weights '%s' are not an object of the cubin",
                          weights);
    }
    return ok;
}
