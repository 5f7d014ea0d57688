/*
 * driver.c — the whole pipeline, written out in order:
 *   load -> graph passes -> lower -> kernel passes -> memory plan -> code generation -> header.
 * The size-or-speed preference (the user's, else the target's) is resolved here once: passes
 * marked speed-only are skipped for size, and the back end picks LLVM's size pipeline.
 * Code generation is the target's back end: LLVM for CPUs, CUDA (NVRTC) for NVIDIA GPUs.
 * Each phase stops the compilation when it reports an error; nothing is left on disk then.
 * kl_compile_graph is the middle (graph to planned program) on its own, for callers that load
 * the model from memory (the fuzz targets).
 */
#include <ctype.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

#include "kl.h"

char *kl_c_name_from_path(kl_arena *a, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *r = kl_alloc(a, n + 2);
    size_t j = 0;
    if (n == 0 || isdigit((unsigned char)base[0])) r[j++] = '_';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)base[i];
        r[j++] = isalnum(c) ? (char)tolower(c) : '_';
    }
    r[j] = 0;
    return r;
}

static bool run_passes(kl_graph *g, const kl_compile_opts *o, kl_optimize_for goal,
                       kl_diag *d) {
    for (const kl_pass *p = kl_passes; p->name; p++) {
        if (p->speed_only && goal == KL_FOR_SIZE) continue;
        if (!p->run(g, d)) return false;
        if (o->dump_ir_after && !strcmp(o->dump_ir_after, p->name))
            kl_graph_dump(g, o->dump_to ? o->dump_to : stdout);
    }
    return true;
}

static bool known_dump_point(const char *name) {
    if (!strcmp(name, "lower") || !strcmp(name, "plan")) return true;
    for (const kl_pass *p = kl_passes; p->name; p++)
        if (!strcmp(p->name, name)) return true;
    for (const kl_kernel_pass *p = kl_kernel_passes; p->name; p++)
        if (!strcmp(p->name, name)) return true;
    return false;
}

static char *default_header_path(kl_arena *a, const char *out, const char *name) {
    char *copy = kl_strdup(a, out);
    return kl_sprintf(a, "%s/%s.h", dirname(copy), name);
}

/* "resolve, infer, ..., lower, fold, ..., plan": every name --dump-ir accepts, from the pass
 * lists. */
static void dump_points(char *buf, size_t size) {
    size_t used = 0;
    buf[0] = 0;
    for (const kl_pass *p = kl_passes; p->name && used < size; p++)
        used += (size_t)snprintf(buf + used, size - used, "%s, ", p->name);
    if (used < size) used += (size_t)snprintf(buf + used, size - used, "lower, ");
    for (const kl_kernel_pass *p = kl_kernel_passes; p->name && used < size; p++)
        used += (size_t)snprintf(buf + used, size - used, "%s, ", p->name);
    if (used < size) snprintf(buf + used, size - used, "plan");
}

/* What a target can be compiled to, before any work is done. */
static bool check_target(const kl_codegen_opts *cg, kl_diag *d) {
    const kl_target *t = cg->target;
    bool cuda = t->backend == KL_BACKEND_CUDA;
    bool cuda_output = cg->emit == KL_EMIT_CUDA || cg->emit == KL_EMIT_PTX || cg->emit == KL_EMIT_CUBIN;
    if (cuda_output && !cuda)
        return kl_error(d, NULL, "--emit cuda, ptx and cubin need a CUDA target (cuda-sm80, "
                        "cuda-sm89, cuda-sm90), not '%s'", t->name);
    if (cg->cuda_emulate && !cuda)
        return kl_error(d, NULL, "--cuda-emulate needs a CUDA target, not '%s'", t->name);
    if (cg->emit == KL_EMIT_SO && !t->hosted)
        return kl_error(d, NULL, "--emit so: target '%s' is bare metal, which has no shared "
                        "libraries (emit an object and link it into the firmware)", t->name);
    if (cuda && !cg->cuda_emulate && cg->emit != KL_EMIT_CUDA && !kl_target_available(t))
        return kl_error(d, NULL, "target '%s': this kiln was built without NVRTC (no CUDA "
                        "toolkit was found when it was configured), so it cannot compile for "
                        "NVIDIA GPUs", t->name);
    return true;
}

/* The back end the target names. */
static bool codegen(const kl_program *p, const kl_graph *g, const kl_codegen_opts *cg,
                    const char *out, kl_diag *d) {
    if (cg->target->backend == KL_BACKEND_CUDA)
        return kl_codegen_cuda(p, g, cg, out, d);
    return kl_codegen_llvm(p, g, cg, out, d);
}

/* Whether some live constant buffer reads bytes inside [block, block + size). */
static bool block_in_use(const kl_program *p, const unsigned char *block, size_t size) {
    for (int i = 0; i < p->buffers.n; i++) {
        const kl_buffer *b = p->buffers.items[i];
        const unsigned char *d = b->data;
        if (b->kind == KL_BUF_CONST && kl_buffer_root((kl_buffer *)b)->first_kernel >= 0 && d &&
            d >= block && d < block + size)
            return true;
    }
    return false;
}

/* Frees the block at `data` and clears every value and buffer pointing into it. */
static void release_block(kl_graph *g, kl_program *p, const void *data, size_t size) {
    const unsigned char *lo = data, *hi = lo + size;
    for (int i = 0; i < g->values.n; i++) {
        kl_value *v = g->values.items[i];
        if ((const unsigned char *)v->data >= lo && (const unsigned char *)v->data < hi)
            v->data = NULL;
    }
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *b = p->buffers.items[i];
        if ((const unsigned char *)b->data >= lo && (const unsigned char *)b->data < hi)
            b->data = NULL;
    }
    kl_arena_release(p->arena, data);
}

/* The weights the passes replaced (folded, packed) give their memory back before code
 * generation, so that a model's weights are held about once: every large constant block that no
 * kernel reads any more (liveness from the memory plan) is freed, and what pointed into it is
 * cleared (after lowering nothing reads a graph value's data, and a dead buffer's only users
 * are gone). */
static void release_dead_constants(kl_graph *g, kl_program *p) {
    for (int i = 0; i < g->values.n; i++) {
        const void *data = ((kl_value *)g->values.items[i])->data;
        size_t size = kl_arena_block_size(p->arena, data);
        if (size && !block_in_use(p, data, size)) release_block(g, p, data, size);
    }
    for (int i = 0; i < p->buffers.n; i++) {
        const kl_buffer *b = p->buffers.items[i];
        size_t size = b->kind == KL_BUF_CONST ? kl_arena_block_size(p->arena, b->data) : 0;
        if (size && !block_in_use(p, b->data, size)) release_block(g, p, b->data, size);
    }
}

/* The user's size-or-speed preference, else the target's. */
static kl_optimize_for resolve_goal(kl_optimize_for asked, const kl_target *t) {
    if (asked != KL_FOR_TARGET) return asked;
    return t->optimize_for == KL_FOR_SIZE ? KL_FOR_SIZE : KL_FOR_SPEED;
}

/* The model loaded again with other sizes of its bounded dim, through the same graph passes
 * (kernel/bounded.c compares the programs). */
typedef struct probe_ctx {
    const kl_compile_opts *o;
    kl_optimize_for goal;
} probe_ctx;

static kl_graph *load_for_probe(void *ctx, kl_arena *a, const kl_shape_binding *b, int n,
                                kl_diag *d) {
    const probe_ctx *pc = ctx;
    kl_compile_opts o = *pc->o;
    o.dump_ir_after = NULL;
    kl_graph *g = kl_onnx_load(a, o.model_path, b, n, d);
    if (!g || kl_diag_failed(d)) return NULL;
    return run_passes(g, &o, pc->goal, d) ? g : NULL;
}

/* The graph (after its passes) to a planned program for target t. With keep_sources the
 * graph's weights stay intact, so that it can be lowered again for another target; with `ph`
 * NULL the phases are not reported, and --dump-ir prints only when `dump` says so. */
static kl_program *lower_and_plan(kl_arena *a, kl_graph *g, const kl_target *t,
                                  const kl_compile_opts *o, kl_optimize_for goal,
                                  bool keep_sources, kl_phases *ph, bool dump, kl_diag *d) {
    FILE *to = o->dump_to ? o->dump_to : stdout;
    const char *dump_after = dump ? o->dump_ir_after : NULL;
    kl_phase(ph, "lowering");
    kl_program *p = kl_lower_graph(a, g, d);
    if (!p) return NULL;
    if (o->string_bytes && !kl_program_size_strings(p, o->string_bytes, d)) return NULL;
    if (kl_bindings_bounded(o->bindings, o->n_bindings)) {
        if (kl_program_data_dependent(p)) {
            kl_error(d, NULL, "a model with a bounded dim and an output whose length depends on "
                     "the data (NonZero, Compress, Unique) is not supported yet: bind the dim "
                     "to one size");
            return NULL;
        }
        kl_phase(ph, "bounded dims");
        probe_ctx pc = {o, goal};
        if (!kl_bounded_annotate(p, o->bindings, o->n_bindings, load_for_probe, &pc, d))
            return NULL;
    }
    if (dump_after && !strcmp(dump_after, "lower")) kl_program_dump(p, to);
    kl_phase(ph, "kernel passes");
    kl_kernel_opts ko = {t, o->microkernels, goal, keep_sources};
    for (const kl_kernel_pass *kp = kl_kernel_passes; kp->name; kp++) {
        if (kp->speed_only && goal == KL_FOR_SIZE) continue;
        if (!kp->run(p, &ko, d)) return NULL;
        if (dump_after && !strcmp(dump_after, kp->name)) kl_program_dump(p, to);
    }
    kl_phase(ph, "memory plan");
    if (!kl_plan_memory(p, d)) return NULL;
    if (dump_after && !strcmp(dump_after, "plan")) kl_program_dump(p, to);
    return kl_diag_failed(d) ? NULL : p;
}

kl_program *kl_compile_graph(kl_arena *a, kl_graph *g, const kl_target *t,
                             const kl_compile_opts *o, kl_diag *d) {
    kl_optimize_for goal = resolve_goal(o->cg.optimize_for, t);
    kl_phase(o->cg.phases, "graph passes");
    if (!run_passes(g, o, goal, d)) return NULL;
    return lower_and_plan(a, g, t, o, goal, false, o->cg.phases, true, d);
}

/* ---------------------------------------------------------------- run-time ISA dispatch */

/* A baseline object carries faster variants (targets' `dispatch`) only where they pay: for
 * speed, as an ELF object that `ld -r` can join, for a model with real work (the variant check
 * costs CPUID calls the first time a workspace is used), and for weights small enough that
 * holding one packed copy per variant is no burden. */
enum { DISPATCH_MIN_FLOPS = 10 * 1000 * 1000 };
#define DISPATCH_MAX_WEIGHT_BYTES ((size_t)64 << 20)

/* The constants the graph still reads (those that folding replaced are not counted). */
static size_t graph_weight_bytes(const kl_graph *g) {
    size_t total = 0;
    for (int i = 0; i < g->values.n; i++) {
        const kl_value *v = g->values.items[i];
        if (v->data && (v->n_uses > 0 || v->output_index >= 0)) total += kl_value_bytes(v);
    }
    return total;
}

static bool dispatch_possible(const kl_graph *g, const kl_codegen_opts *cg,
                              const kl_compile_opts *o) {
    const kl_target *t = cg->target;
    /* a bounded model's variants would need their own probes: it stays one program */
    return t->dispatch && t->dispatch[0] && !o->no_dispatch && cg->optimize_for == KL_FOR_SPEED &&
           !kl_bindings_bounded(o->bindings, o->n_bindings) &&
           (cg->emit == KL_EMIT_OBJ || cg->emit == KL_EMIT_SO) &&
           kl_relocatable_linker(t->triple) && graph_weight_bytes(g) <= DISPATCH_MAX_WEIGHT_BYTES;
}

static int64_t program_flops(const kl_program *p) {
    int64_t total = 0;
    for (int k = 0; k < p->kernels.n; k++)
        if (!kl_add_checked(total, kl_kernel_flops(p->kernels.items[k]), &total)) return INT64_MAX;
    return total;
}

/* The model lowered again for each of the target's dispatch variants (into cg->variants), and
 * the workspace grown to the largest plan plus the cache of the CPU check. */
static bool plan_variants(kl_arena *a, kl_graph *g, kl_program *p, kl_codegen_opts *cg,
                          const kl_compile_opts *o, kl_diag *d) {
    const kl_target *const *ts = cg->target->dispatch;
    int n = 0;
    while (ts[n]) n++;
    kl_isa_variant *vs = kl_alloc_array(a, (size_t)n, sizeof *vs);
    kl_phase(cg->phases, "ISA variants");
    int64_t ws = p->workspace_size;
    for (int i = 0; i < n; i++) {
        vs[i].target = ts[i];
        vs[i].p = lower_and_plan(a, g, ts[i], o, cg->optimize_for, true, NULL, false, d);
        if (!vs[i].p) return false;
        if (vs[i].p->workspace_size > ws) ws = vs[i].p->workspace_size;
    }
    ws = (ws + 63) / 64 * 64;
    cg->cpu_cache_offset = ws;
    p->workspace_size = ws + 64;
    cg->variants = vs;
    cg->n_variants = n;
    return true;
}

static const char *first_data_dependent(const kl_program *p) {
    for (int i = 0; i < p->outputs.n; i++) {
        const kl_buffer *b = p->outputs.items[i];
        if (kl_buffer_root((kl_buffer *)b)->dd_count) return b->name;
    }
    return "?";
}

bool kl_compile(const kl_compile_opts *o, kl_compile_stats *stats, kl_diag *d) {
    if (o->dump_ir_after && !known_dump_point(o->dump_ir_after)) {
        char names[256];
        dump_points(names, sizeof names);
        return kl_error(d, NULL, "--dump-ir: no pass named '%s' (passes: %s)", o->dump_ir_after,
                        names);
    }
    kl_arena *a = kl_arena_new();
    kl_codegen_opts cg = o->cg;
    if (!cg.target) cg.target = kl_target_default();
    cg.target = kl_target_resolve(a, cg.target, d);
    if (!cg.target) {
        kl_arena_free(a);
        return false;
    }
    if (!check_target(&cg, d)) {
        kl_arena_free(a);
        return false;
    }
    if (!cg.name) cg.name = kl_c_name_from_path(a, o->model_path);
    cg.optimize_for = resolve_goal(cg.optimize_for, cg.target);
    const char *header = o->header_path ? o->header_path : default_header_path(a, o->out_path, cg.name);
    bool ok = false;
    kl_phase(cg.phases, "load");
    kl_graph *g = kl_onnx_load(a, o->model_path, o->bindings, o->n_bindings, d);
    if (!g || kl_diag_failed(d)) goto done;
    kl_phase(cg.phases, "graph passes");
    if (!run_passes(g, o, cg.optimize_for, d)) goto done;
    bool dispatch = dispatch_possible(g, &cg, o);
    kl_program *p = lower_and_plan(a, g, cg.target, o, cg.optimize_for, dispatch, cg.phases,
                                   true, d);
    if (!p) goto done;
    if (p->dims && cg.target->backend == KL_BACKEND_CUDA) {
        kl_error(d, NULL, "bounded dim %s: the CUDA back end compiles fixed shapes only for now "
                 "(bind the dim to one size, or compile for a CPU target)", p->bounded_name);
        goto done;
    }
    if (kl_program_data_dependent(p) && cg.target->backend == KL_BACKEND_CUDA) {
        kl_error(d, NULL, "output '%s': its length depends on the data (NonZero, Compress, "
                 "Unique); the CUDA back end compiles fixed shapes only for now (compile for a "
                 "CPU target)", first_data_dependent(p));
        goto done;
    }
    /* (the variants' entries would need predict_dynamic's sized entry too) */
    if (dispatch && !kl_program_data_dependent(p) && program_flops(p) >= DISPATCH_MIN_FLOPS) {
        if (!plan_variants(a, g, p, &cg, o, d)) goto done;
    } else {
        release_dead_constants(g, p); /* (the variants' weights would be released with it) */
    }
    if (!codegen(p, g, &cg, o->out_path, d)) goto done;
    kl_phase(cg.phases, "header");
    if (!kl_write_header(p, g, &cg, header, d)) {
        unlink(o->out_path);
        goto done;
    }
    if (stats) {
        stats->workspace_size = p->workspace_size;
        stats->intermediates_total = p->intermediates_total;
        stats->n_kernels = p->kernels.n;
        stats->optimize_for = cg.optimize_for;
        stats->n_variants = 0;
        for (int i = 0; i < cg.n_variants && i < 4; i++)
            stats->variants[stats->n_variants++] = cg.variants[i].target;
    }
    ok = true;
done:
    kl_phase(cg.phases, "cleanup");
    kl_arena_free(a);
    kl_phases_end(cg.phases);
    return ok && !kl_diag_failed(d);
}
