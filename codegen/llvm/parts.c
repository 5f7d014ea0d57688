/*
 * codegen/llvm/parts.c — a large model compiled on several cores.
 *
 * LLVM's optimization and code generation take most of a compilation (resnet18: 1.3 of 1.9 s)
 * and run on one thread per module. So a model of many kernels is split: the main module keeps
 * the runtime, the entry points, the model table and its share of the kernels; each other part
 * is a module of its own (own LLVM context and target machine, the runtime linked in again for
 * the kernels that call it) holding the rest of the kernels, as hidden functions the entries
 * call by name (NAME.KERNEL.K: unique in a program that links several models). Kernels
 * take every buffer as a pointer argument, so a part needs nothing else from the main module.
 * The parts are optimized and emitted on their own threads at once, then `ld.lld -r` joins
 * their objects into one relocatable object (`ld -r`: GNU ld for x86-64, which keeps the ISA
 * level note, ld.lld for the other targets): the same interface, the same code per kernel.
 *
 * The number of parts depends only on the model and the options (MIN_KERNELS kernels or more,
 * optimized for speed: 2), never on the compiling machine, so an object is the same wherever it is built; without the linker a model
 * is compiled as one module. KILN_PARTS=1 turns the split off (tests, comparisons).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llvm_internal.h"

enum { N_PARTS = 2, MIN_KERNELS = 16 };

typedef struct part {
    kl_cg cg;
    kl_diag diag;                 /* its own while it runs on its thread */
    LLVMMemoryBufferRef code;
    bool ok;
} part;

typedef struct kl_cg_parts {
    int n;                        /* parts besides the main module */
    part *items;
    LLVMMemoryBufferRef main_code; /* the main module's, once emitted */
} kl_cg_parts;

static int parts_wanted(const kl_cg *cg) {
    const char *env = getenv("KILN_PARTS");
    if (env && *env) return atoi(env) > 1 ? N_PARTS : 1;
    if (cg->o->optimize_for == KL_FOR_SIZE) return 1; /* a part repeats the runtime it calls */
    return cg->p->kernels.n >= MIN_KERNELS ? N_PARTS : 1;
}

bool kl_cg_parts_open(kl_cg *cg) {
    int n = parts_wanted(cg);
    if (n <= 1 || !kl_relocatable_linker(cg->o->target->triple)) return true;
    kl_cg_parts *ps = kl_alloc(cg->arena, sizeof *ps);
    ps->n = n - 1;
    ps->items = kl_alloc_array(cg->arena, (size_t)ps->n, sizeof *ps->items);
    cg->parts = ps;
    for (int i = 0; i < ps->n; i++) {
        part *pt = &ps->items[i];
        pt->cg = (kl_cg){.arena = cg->arena, .d = cg->d, .p = cg->p, .g = cg->g, .o = cg->o,
                         .part_kernels = true};
        if (!kl_cg_open(&pt->cg) || !kl_cg_link_runtime(&pt->cg)) return false;
    }
    return true;
}

/* Round robin: neighbouring kernels (a convolution's region kernels) go to different parts. */
static int part_of(const kl_cg *cg, int k) { return k % (cg->parts->n + 1); }

/* The main module's declaration of a part's kernel: same name, same signature. */
static LLVMValueRef declare_in_main(kl_cg *cg, const char *name, int n_bufs) {
    LLVMTypeRef *params = kl_alloc_array(cg->arena, (size_t)n_bufs + 2, sizeof *params);
    for (int i = 0; i < n_bufs; i++) params[i] = cg->ptr;
    params[n_bufs] = params[n_bufs + 1] = cg->i64; /* task_begin, task_end */
    LLVMValueRef fn =
        LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->void_t, params, (unsigned)n_bufs + 2, 0));
    LLVMSetVisibility(fn, LLVMHiddenVisibility);
    kl_cg_add_fn_attr(cg, fn, "nounwind");
    return fn;
}

bool kl_cg_parts_emit_kernel(kl_cg *cg, int k, kl_cg_kernel *out) {
    const kl_kernel *kernel = cg->p->kernels.items[k];
    int at = part_of(cg, k);
    if (at == 0) return kl_cg_emit_kernel(cg, kernel, out);
    kl_cg *pcg = &cg->parts->items[at - 1].cg;
    kl_cg_kernel in_part;
    if (!kl_cg_emit_kernel(pcg, kernel, &in_part)) return false;
    const char *name = kl_sprintf(cg->arena, "%s.%s.%d", cg->o->name,
                                  kernel->name ? kernel->name : "kernel", k);
    LLVMSetValueName2(in_part.fn, name, strlen(name));
    LLVMSetLinkage(in_part.fn, LLVMExternalLinkage);
    LLVMSetVisibility(in_part.fn, LLVMHiddenVisibility);
    *out = in_part;
    out->fn = declare_in_main(cg, name, in_part.n_bufs);
    out->fn_type = LLVMGlobalGetValueType(out->fn);
    return true;
}

bool kl_cg_parts_finish(kl_cg *cg) {
    for (int i = 0; i < cg->parts->n; i++) {
        kl_cg *pcg = &cg->parts->items[i].cg;
        kl_cg_internalize(pcg);
        if (!kl_cg_verify(pcg)) return false;
    }
    return true;
}

/* ---------------------------------------------------------------- in parallel */

static bool optimize_and_emit(kl_cg *cg, LLVMMemoryBufferRef *code) {
    return kl_cg_optimize(cg) && kl_cg_emit_buffer(cg, LLVMObjectFile, code);
}

static void *run_part(void *arg) {
    part *pt = arg;
    pt->ok = optimize_and_emit(&pt->cg, &pt->code);
    return NULL;
}

/* A part's messages, recorded on its own thread, into the compilation's diagnostics. */
static void collect_messages(kl_cg *cg, part *pt) {
    if (pt->diag.n_errors && pt->diag.text) kl_error(cg->d, NULL, "%s", pt->diag.text);
    kl_diag_free(&pt->diag);
}

bool kl_cg_parts_write(kl_cg *cg, const char *path) {
    kl_cg_parts *ps = cg->parts;
    kl_phase(cg->o->phases, "LLVM optimization + emission, in parallel");
    pthread_t *threads = kl_alloc_array(cg->arena, (size_t)ps->n, sizeof *threads);
    bool *started = kl_alloc_array(cg->arena, (size_t)ps->n, sizeof *started);
    for (int i = 0; i < ps->n; i++) {
        part *pt = &ps->items[i];
        kl_diag_init(&pt->diag, cg->d->file);
        pt->cg.d = &pt->diag;
        started[i] = pthread_create(&threads[i], NULL, run_part, pt) == 0;
        if (!started[i]) run_part(pt); /* no thread: here, one after the other */
    }
    bool ok = optimize_and_emit(cg, &ps->main_code);
    for (int i = 0; i < ps->n; i++) {
        if (started[i]) pthread_join(threads[i], NULL);
        ps->items[i].cg.d = cg->d;
        ok = ps->items[i].ok && ok;
        collect_messages(cg, &ps->items[i]);
    }
    if (cg->o->sizes) cg->o->sizes->weights = kl_cg_weights_bytes(cg);
    kl_phase(cg->o->phases, "object emission");
    return ok && kl_cg_emit_output(cg, path); /* which comes back to kl_cg_parts_emit */
}

bool kl_cg_parts_emit(kl_cg *cg, const char *file) {
    kl_cg_parts *ps = cg->parts;
    const char **files = kl_alloc_array(cg->arena, (size_t)ps->n + 1, sizeof *files);
    int n = 0;
    bool ok = true;
    for (int i = -1; ok && i < ps->n; i++) {
        LLVMMemoryBufferRef code = i < 0 ? ps->main_code : ps->items[i].code;
        char *f = kl_cg_temp_beside(cg, file, ".o");
        ok = f && kl_cg_write_code(cg, code, f);
        if (f) files[n++] = f;
    }
    ok = ok && kl_link_relocatable(cg->o->target->triple, files, n, file, cg->d);
    for (int i = 0; i < n; i++) unlink(files[i]);
    return ok;
}

void kl_cg_parts_close(kl_cg *cg) {
    if (!cg->parts) return;
    if (cg->parts->main_code) LLVMDisposeMemoryBuffer(cg->parts->main_code);
    for (int i = 0; i < cg->parts->n; i++) {
        part *pt = &cg->parts->items[i];
        if (pt->code) LLVMDisposeMemoryBuffer(pt->code);
        kl_cg_close(&pt->cg);
    }
    cg->parts = NULL;
}
