/*
 * codegen/llvm/xsmm.c — fp32 GEMM micro-kernels from libxsmm's code generator, embedded in the
 * object as machine code.
 *
 * libxsmm (Debian's libxsmm-dev 1.17: libxsmmgen.a, libxsmm_generator.h) writes a kernel for one
 * exact M, N, K, leading dimensions, beta and ISA. We run its generator while kiln compiles and
 * put the bytes into .text, so the object needs no libxsmm, no JIT, no executable memory and no
 * malloc at run time. The facts this file relies on, read from the 1.17 generator's sources
 * (generator_gemm*.c, generator_x86_instructions.c) and checked on every kernel it generates:
 *
 * - API: libxsmm_sgemm_descriptor_init(blob, m, n, k, lda, ldb, ldc, alpha, beta, flags,
 *   prefetch) builds the descriptor (NULL unless alpha == 1 and beta is 0 or 1: the generator
 *   has no other alpha/beta; beta == 0 sets LIBXSMM_GEMM_FLAG_BETA_0, so C is written without
 *   being read). libxsmm_generator_gemm_kernel(&generated, desc) with generated.code_type = 2
 *   (binary; 0 is inline-asm C text, 1 the .s text, whose prologue 1.17 ends with a stray
 *   `retq`) and generated.arch = LIBXSMM_X86_AVX2 ("hsw") or LIBXSMM_X86_AVX512_CORE ("skx")
 *   appends the code to generated.generated_code and reports failures in last_error.
 *   Flags are 0: no transposes, and no LIBXSMM_GEMM_FLAG_ALIGN_A/_C, which would make the
 *   kernel use aligned moves (vmovaps) — with 0, A, B and C need only float (4-byte) alignment.
 *   Prefetch is LIBXSMM_GEMM_PREFETCH_NONE: the kernel takes exactly three arguments.
 * - Calling convention: System V AMD64. A in %rdi, B in %rsi, C in %rdx (prefetch variants
 *   would add %rcx/%r8). The kernel advances %rdi/%rsi/%rdx itself, uses %r10-%r12 as loop
 *   counters and %r15 (the AVX-512 remainder mask, through %k1) and %rbx as helpers, and
 *   clobbers every vector register (zmm0-31 / ymm0-15) and %k1: all caller-saved under SysV
 *   except %rbx and %r12-%r15, which it saves: the code always begins with push %rbx, %r12,
 *   %r13, %r14, %r15 (9 bytes) and ends with the matching pops and a ret (10 bytes). It keeps
 *   no stack frame beyond those pushes, needs no particular stack alignment, calls nothing and
 *   leaves MXCSR and the direction flag alone.
 * - Position independence: for fp32 the code addresses memory only through the three argument
 *   pointers plus constant displacements (an AVX-512 remainder mask is built from an immediate;
 *   libxsmm's constants-in-code trick is used only by int8 kernels). It needs no relocation, so
 *   it can sit in .text of an object, a PIE or a shared library. Since a later libxsmm could
 *   differ, every kernel is disassembled (LLVM's disassembler) before it is accepted: each
 *   instruction must decode, address memory only through a general register (no %rip, no
 *   absolute address, no %rsp/%rbp, no segment override), branch only to instruction starts
 *   inside its own body, and must not call, return, push, pop, trap or make a system call;
 *   anything else rejects the kernel with a diagnostic.
 * - Upper vector state: libxsmm returns with dirty upper ymm/zmm halves. LLVM assumes every
 *   callee returns with them clean (its own code runs vzeroupper before returning), and
 *   SSE code after a dirty return pays transition penalties (the x86-64 target is baseline
 *   SSE2), so a vzeroupper (c5 f8 77) is put between the last pop and the ret. The code that
 *   kl_xsmm_generate returns already has it; no branch targets the epilogue (checked).
 *
 * Embedding: module-level inline asm defines a local ELF function symbol in .text (64-byte
 * aligned) with .byte directives, plus CFI describing the pushes and pops so debuggers and
 * profilers unwind through it; an IR declaration with hidden visibility (so calls are direct,
 * not through the PLT) and precise attributes (memory only through its arguments, A and B
 * read-only, nounwind) lets LLVM call it like any internal function. The symbol carries the
 * gemm in its name, which makes identical gemms share one function, and stays local: it never
 * appears among the object's exports. `--emit asm` shows it too, as LLVM re-prints module asm
 * through its assembler: one byte a line, in decimal.
 *
 * libxsmm's own reporting: on a failure it also prints "LIBXSMM ERROR ..." to stderr (it stays
 * quiet only when its global libxsmm_ninit says libxsmm was initialized, global state we leave
 * alone), so every error it could report for a sane request is checked here first; its
 * internal consistency checks call exit(), which only a bug in libxsmm can reach.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <libxsmm_cpuid.h>
#include <libxsmm_generator.h>
#include <llvm-c/Disassembler.h>

#include "llvm_internal.h"

/* As LIBXSMM_CODE_MAXSIZE in libxsmm's own JIT: loops keep kernels far below it (64x64x64 on
 * AVX-512 is 2.6 KB). */
enum { GENERATOR_BUFFER = 131072 };

/* The registers the prologue saves, in push order: push opcode bytes; each pop is the push
 * opcode + 8. */
typedef struct saved_reg {
    unsigned char push[2];
    int len;
    const char *name; /* for CFI */
} saved_reg;
static const saved_reg saved_regs[] = {
    {{0x53}, 1, "%rbx"},       {{0x41, 0x54}, 2, "%r12"}, {{0x41, 0x55}, 2, "%r13"},
    {{0x41, 0x56}, 2, "%r14"}, {{0x41, 0x57}, 2, "%r15"},
};
enum {
    N_SAVED = sizeof saved_regs / sizeof *saved_regs,
    SAVE_BYTES = 9,  /* the pushes; the pops take as many */
    TAIL_BYTES = 4,  /* vzeroupper; ret — in the code kl_xsmm_generate returns */
};
static const unsigned char tail[TAIL_BYTES] = {0xc5, 0xf8, 0x77, 0xc3};

/* ---------------------------------------------------------------- requests */

static const char *isa_name(int isa) {
    return isa == KL_XSMM_AVX2 ? "avx2" : isa == KL_XSMM_AVX512 ? "avx512" : "unknown";
}

/* What a message is about ("libxsmm gemm m=64 n=6 ..."), named in every message. */
static const char *describe(kl_arena *a, const kl_xsmm_gemm *g) {
    return kl_sprintf(a, "libxsmm gemm m=%d n=%d k=%d lda=%d ldb=%d ldc=%d beta=%d isa=%s", g->m,
                      g->n, g->k, g->lda, g->ldb, g->ldc, g->beta, isa_name(g->isa));
}

__attribute__((format(printf, 3, 4)))
static bool fail(kl_diag *d, const char *who, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return kl_error(d, NULL, "codegen: %s: %s", who, why);
}

/* Everything libxsmm would reject (or print about), checked first. Displacements and pointer
 * steps in the code are 32-bit immediates, hence the bound on each operand's span in bytes. */
static bool check_gemm(const kl_xsmm_gemm *g, const char *who, kl_diag *d) {
    if (g->isa != KL_XSMM_AVX2 && g->isa != KL_XSMM_AVX512)
        return fail(d, who, "unknown ISA (KL_XSMM_AVX2 or KL_XSMM_AVX512)");
    if (g->m < 1 || g->n < 1 || g->k < 1)
        return fail(d, who, "m, n and k must be at least 1");
    if (g->lda < g->m || g->ldb < g->k || g->ldc < g->m)
        return fail(d, who, "leading dimensions must be lda >= m, ldb >= k, ldc >= m");
    if (g->beta != 0 && g->beta != 1)
        return fail(d, who, "beta must be 0 or 1");
    const int64_t limit = INT32_MAX / (int64_t)sizeof(float);
    if ((int64_t)g->lda * g->k > limit || (int64_t)g->ldb * g->n > limit ||
        (int64_t)g->ldc * g->n > limit)
        return fail(d, who, "an operand spans more than 2 GiB");
    return true;
}

const char *kl_xsmm_name(kl_arena *a, const kl_xsmm_gemm *g) {
    return kl_sprintf(a, "kl_xsmm_sgemm_m%d_n%d_k%d_lda%d_ldb%d_ldc%d_beta%d_%s", g->m, g->n,
                      g->k, g->lda, g->ldb, g->ldc, g->beta, isa_name(g->isa));
}

/* ---------------------------------------------------------------- generation */

/* libxsmm's bytes for the gemm into buf; false with a diagnostic. */
static bool run_generator(const kl_xsmm_gemm *g, const char *who, unsigned char *buf, size_t cap,
                          size_t *size, kl_diag *d) {
    libxsmm_descriptor_blob blob;
    const libxsmm_gemm_descriptor *desc = libxsmm_sgemm_descriptor_init(
        &blob, g->m, g->n, g->k, g->lda, g->ldb, g->ldc, 1.0f, (float)g->beta,
        LIBXSMM_GEMM_FLAG_NONE, LIBXSMM_GEMM_PREFETCH_NONE);
    if (!desc)
        return fail(d, who, "libxsmm has no descriptor for it");
    libxsmm_generated_code gen = {
        .generated_code = buf,
        .buffer_size = (unsigned int)cap,
        .code_type = 2, /* binary */
        .arch = g->isa == KL_XSMM_AVX512 ? LIBXSMM_X86_AVX512_CORE : LIBXSMM_X86_AVX2,
    };
    libxsmm_generator_gemm_kernel(&gen, desc);
    if (gen.last_error != 0)
        return fail(d, who, "libxsmm's generator failed: %s", libxsmm_strerror(gen.last_error));
    *size = gen.code_size;
    return true;
}

/* ---------------------------------------------------------------- checking the code */

/* The fixed frame: the pushes first, then (at the end) the pops in reverse order and a ret. */
static bool check_frame(const char *who, const unsigned char *code, size_t size, kl_diag *d) {
    if (size < 2 * SAVE_BYTES + 1)
        return fail(d, who, "the code is only %zu bytes long", size);
    size_t at = 0, end = size - SAVE_BYTES - 1;
    for (int i = 0; i < N_SAVED; i++) {
        const saved_reg *r = &saved_regs[i], *back = &saved_regs[N_SAVED - 1 - i];
        bool push_ok = memcmp(code + at, r->push, (size_t)r->len) == 0;
        bool pop_ok = memcmp(code + end, back->push, (size_t)back->len - 1) == 0 &&
                      code[end + (size_t)back->len - 1] == back->push[back->len - 1] + 8;
        if (!push_ok || !pop_ok)
            return fail(d, who, "the code does not %s %s as expected", push_ok ? "restore" : "save",
                        push_ok ? back->name : r->name);
        at += (size_t)r->len;
        end += (size_t)back->len;
    }
    if (code[size - 1] != 0xc3)
        return fail(d, who, "the code does not end with a ret");
    return true;
}

/* Mnemonics a kernel body must not contain: control leaves or enters otherwise than by its
 * own branches, the stack changes, or an absolute 64-bit address is loaded. */
static bool forbidden_mnemonic(const char *m) {
    static const char *const prefixes[] = {"call", "ret", "lret", "iret", "push", "pop", "sys",
                                           "int", "ud", "hlt", "enter", "leave", "movabs",
                                           "ljmp", "lcall", "loop", "jrcxz", "jecxz", "xbegin"};
    if (strncmp(m, "popcnt", 6) == 0) /* plain arithmetic */
        return false;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(m, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* One operand (AT&T syntax, masks and broadcasts like {%k1} {z} {1to16} already cut off):
 * a register, an immediate, or memory through a base register that is not the stack. */
static const char *bad_operand(const char *op) {
    if (strstr(op, "%rip") || strstr(op, "%eip"))
        return "a %rip-relative address";
    if (strstr(op, "%rsp") || strstr(op, "%esp") || strstr(op, "%sp") || strstr(op, "%rbp") ||
        strstr(op, "%ebp") || strstr(op, "%bp"))
        return "a stack or frame register";
    if (strstr(op, "%fs:") || strstr(op, "%gs:") || strstr(op, "%cs:") || strstr(op, "%ds:") ||
        strstr(op, "%es:") || strstr(op, "%ss:"))
        return "a segment override";
    if (op[0] == '%' || op[0] == '$')
        return NULL;
    if (op[0] == '*')
        return "an indirect branch";
    const char *paren = strchr(op, '(');
    if (!paren || paren[1] != '%')
        return "an absolute address";
    return NULL;
}

/* The operand list of a disassembled instruction ("\tvmovups\t52(%rdi), %zmm1 {%k1} {z}"):
 * the first bad operand's reason, or NULL. */
static const char *bad_operands(char *ops) {
    int depth = 0;
    char *start = ops;
    for (char *p = ops;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if (*p && (*p != ',' || depth > 0))
            continue;
        bool last = *p == 0;
        *p = 0;
        while (*start == ' ' || *start == '\t')
            start++;
        char *cut = strchr(start, '{');
        if (cut)
            *cut = 0;
        size_t n = strlen(start);
        while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
            start[--n] = 0;
        const char *why = n ? bad_operand(start) : NULL;
        if (why || last)
            return why;
        start = p + 1;
    }
}

/* A relative branch's target offset from its bytes (jcc/jmp rel8 or rel32); false for any
 * other form (indirect, far, prefixed). */
static bool branch_target(const unsigned char *p, size_t len, size_t at, int64_t *target) {
    int64_t rel;
    if (len == 2 && ((p[0] >= 0x70 && p[0] <= 0x7f) || p[0] == 0xeb))
        rel = (int8_t)p[1];
    else if ((len == 5 && p[0] == 0xe9) ||
             (len == 6 && p[0] == 0x0f && p[1] >= 0x80 && p[1] <= 0x8f))
        rel = (int32_t)((uint32_t)p[len - 4] | (uint32_t)p[len - 3] << 8 |
                        (uint32_t)p[len - 2] << 16 | (uint32_t)p[len - 1] << 24);
    else
        return false;
    *target = (int64_t)(at + len) + rel;
    return true;
}

typedef struct body_walk {
    const char *who;
    const unsigned char *code;
    size_t begin, end;      /* the body: after the pushes, before the pops */
    bool *starts;           /* [end]: an instruction starts here */
    int64_t *targets;       /* branch targets seen */
    int n_targets;
    kl_diag *d;
} body_walk;

/* One instruction at `at` of length `len`, disassembled as `text`. */
static bool check_instruction(body_walk *w, size_t at, size_t len, char *text) {
    while (*text == '\t' || *text == ' ')
        text++;
    char *ops = text + strcspn(text, "\t ");
    if (*ops)
        *ops++ = 0;
    if (forbidden_mnemonic(text))
        return fail(w->d, w->who, "the code has '%s' at byte %zu", text, at);
    if (text[0] == 'j') {
        int64_t t;
        if (!branch_target(w->code + at, len, at, &t))
            return fail(w->d, w->who, "the code has an unexpected '%s' at byte %zu", text, at);
        if (t < (int64_t)w->begin || t >= (int64_t)w->end)
            return fail(w->d, w->who, "the code branches out of its body at byte %zu", at);
        w->targets[w->n_targets++] = t;
        return true;
    }
    const char *why = bad_operands(ops);
    if (why)
        return fail(w->d, w->who, "the code uses %s at byte %zu ('%s')", why, at, text);
    return true;
}

static bool walk_body(body_walk *w, LLVMDisasmContextRef dc) {
    for (size_t at = w->begin; at < w->end;) {
        char text[256];
        size_t len = LLVMDisasmInstruction(dc, (uint8_t *)w->code + at, w->end - at, at, text,
                                           sizeof text);
        if (len == 0)
            return fail(w->d, w->who, "the code cannot be decoded at byte %zu", at);
        w->starts[at] = true;
        if (!check_instruction(w, at, len, text))
            return false;
        at += len;
    }
    for (int i = 0; i < w->n_targets; i++)
        if (!w->starts[w->targets[i]])
            return fail(w->d, w->who, "the code branches into an instruction (byte %lld)",
                        (long long)w->targets[i]);
    return true;
}

/* Everything between the saves and the restores, instruction by instruction (see the top of
 * the file). */
static bool check_body(kl_arena *a, const char *who, const unsigned char *code, size_t size,
                       kl_diag *d) {
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86Disassembler();
    LLVMDisasmContextRef dc = LLVMCreateDisasm("x86_64-unknown-linux-gnu", NULL, 0, NULL, NULL);
    if (!dc)
        return fail(d, who, "LLVM has no x86-64 disassembler to check the code with");
    size_t end = size - SAVE_BYTES - 1;
    body_walk w = {.who = who, .code = code, .begin = SAVE_BYTES, .end = end, .d = d,
                   .starts = kl_alloc(a, end), .targets = kl_alloc_array(a, end, sizeof(int64_t))};
    bool ok = walk_body(&w, dc);
    LLVMDisasmDispose(dc);
    return ok;
}

bool kl_xsmm_check_code(kl_arena *a, const unsigned char *code, size_t size, const char *who,
                        kl_diag *d) {
    return check_frame(who, code, size, d) && check_body(a, who, code, size, d);
}

/* ---------------------------------------------------------------- kl_xsmm_generate */

bool kl_xsmm_generate(kl_arena *a, const kl_xsmm_gemm *g, const unsigned char **code,
                      size_t *size, kl_diag *d) {
    const char *who = describe(a, g);
    if (!check_gemm(g, who, d))
        return false;
    /* a scratch buffer, not arena memory: it would stay for as long as the arena */
    unsigned char *buf = malloc(GENERATOR_BUFFER);
    if (!buf)
        return fail(d, who, "out of memory");
    size_t n = 0;
    bool ok = run_generator(g, who, buf, GENERATOR_BUFFER, &n, d) &&
              kl_xsmm_check_code(a, buf, n, who, d);
    if (ok) {
        /* libxsmm's code up to its final ret, then vzeroupper; ret */
        unsigned char *out = kl_alloc(a, n - 1 + TAIL_BYTES);
        memcpy(out, buf, n - 1);
        memcpy(out + n - 1, tail, TAIL_BYTES);
        *code = out;
        *size = n - 1 + TAIL_BYTES;
    }
    free(buf);
    return ok;
}

/* ---------------------------------------------------------------- embedding */

/* Appends to a growing text (arena memory). */
typedef struct text {
    kl_arena *a;
    char *s;
    size_t len, cap;
} text;

__attribute__((format(printf, 2, 3)))
static void put(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = 2 * (t->len + (size_t)n + 1);
        char *s = kl_alloc(t->a, cap);
        memcpy(s, t->s, t->len);
        t->s = s;
        t->cap = cap;
        va_start(ap, fmt);
        vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

static void put_bytes(text *t, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        put(t, "%s0x%02x%s", i % 16 == 0 ? "\t.byte\t" : "", p[i],
            i + 1 == n || i % 16 == 15 ? "\n" : ",");
}

/* The function in assembly: the bytes, cut where the CFA moves so the unwind information is
 * exact at every instruction (CFA = %rsp + 8 at entry; each push moves it by 8). */
static const char *function_asm(kl_arena *a, const char *name, const unsigned char *code,
                                 size_t size) {
    text t = {a, kl_alloc(a, 8 * size + 1024), 0, 8 * size + 1024};
    put(&t, "\t.pushsection .text,\"ax\",@progbits\n\t.p2align 6\n\t.type %s,@function\n", name);
    put(&t, "%s:\n\t.cfi_startproc\n", name);
    size_t at = 0;
    for (int i = 0; i < N_SAVED; i++) {
        put_bytes(&t, code + at, (size_t)saved_regs[i].len);
        put(&t, "\t.cfi_adjust_cfa_offset 8\n\t.cfi_offset %s, %d\n", saved_regs[i].name,
            -16 - 8 * i);
        at += (size_t)saved_regs[i].len;
    }
    size_t pops = size - TAIL_BYTES - SAVE_BYTES;
    put_bytes(&t, code + at, pops - at);
    at = pops;
    for (int i = N_SAVED - 1; i >= 0; i--) {
        put_bytes(&t, code + at, (size_t)saved_regs[i].len);
        put(&t, "\t.cfi_adjust_cfa_offset -8\n\t.cfi_restore %s\n", saved_regs[i].name);
        at += (size_t)saved_regs[i].len;
    }
    put_bytes(&t, code + at, size - at); /* vzeroupper; ret */
    put(&t, "\t.cfi_endproc\n\t.size %s, .-%s\n\t.popsection\n", name, name);
    return t.s;
}

/* Whether the module's inline asm already defines `name` (a declaration may have been
 * removed as unused since). */
static bool asm_defines(kl_cg *cg, const char *name) {
    size_t len = 0;
    const char *s = LLVMGetModuleInlineAsm(cg->mod, &len);
    char *label = kl_sprintf(cg->arena, "\n%s:\n", name);
    size_t n = strlen(label);
    for (size_t i = 0; s && i + n <= len; i++)
        if (memcmp(s + i, label, n) == 0)
            return true;
    return false;
}

/* The IR side: a hidden declaration (direct calls, no PLT) that tells the optimizer the truth:
 * it touches memory only through its arguments, reads A and B, keeps no pointer, cannot
 * unwind, always returns. */
static LLVMValueRef declare(kl_cg *cg, const char *name) {
    LLVMTypeRef params[3] = {cg->ptr, cg->ptr, cg->ptr};
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->void_t, params, 3, 0));
    LLVMSetVisibility(fn, LLVMHiddenVisibility);
    static const char *const fn_attrs[] = {"nounwind", "nofree", "nosync", "willreturn"};
    for (size_t i = 0; i < sizeof fn_attrs / sizeof *fn_attrs; i++)
        kl_cg_add_fn_attr(cg, fn, fn_attrs[i]);
    /* memory(argmem: readwrite): ModRef (3) for location ArgMem (bits 0-1), none elsewhere */
    unsigned memory = LLVMGetEnumAttributeKindForName("memory", 6);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(cg->ctx, memory, 3));
    for (int p = 0; p < 3; p++) {
        kl_cg_add_param_attr(cg, fn, p, "nocapture", 0);
        kl_cg_add_param_attr(cg, fn, p, "noundef", 0);
        if (p < 2)
            kl_cg_add_param_attr(cg, fn, p, "readonly", 0);
    }
    return fn;
}

/* The bytes are x86-64 SysV code in ELF syntax: anything else cannot hold them. */
static bool target_fits(kl_cg *cg, const kl_xsmm_gemm *g) {
    const char *triple = LLVMGetTarget(cg->mod);
    if (strncmp(triple, "x86_64", 6) == 0 && (strstr(triple, "linux") || strstr(triple, "-elf")))
        return true;
    return fail(cg->d, describe(cg->arena, g),
                "target '%s' is not x86-64 ELF with the System V ABI", triple);
}

LLVMValueRef kl_cg_xsmm_function(kl_cg *cg, const kl_xsmm_gemm *g) {
    const char *name = kl_xsmm_name(cg->arena, g);
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
    if (fn)
        return fn;
    if (!asm_defines(cg, name)) {
        const unsigned char *code;
        size_t size;
        if (!target_fits(cg, g) || !kl_xsmm_generate(cg->arena, g, &code, &size, cg->d))
            return NULL;
        const char *text = function_asm(cg->arena, name, code, size);
        LLVMAppendModuleInlineAsm(cg->mod, text, strlen(text));
    }
    return declare(cg, name);
}
