/*
 * driver.c — the whole pipeline, written out in order:
 *   load -> graph passes -> lower -> kernel passes -> memory plan -> code generation -> header.
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

static bool run_passes(kl_graph *g, const kl_compile_opts *o, kl_diag *d) {
    for (const kl_pass *p = kl_passes; p->name; p++) {
        if (!p->run(g, d)) return false;
        if (o->dump_ir_after && !strcmp(o->dump_ir_after, p->name))
            kl_graph_dump(g, o->dump_to ? o->dump_to : stdout);
    }
    return true;
}

static bool run_kernel_passes(kl_program *p, const kl_target *t, const kl_compile_opts *o,
                              kl_diag *d) {
    kl_kernel_opts ko = {t, o->microkernels};
    for (const kl_kernel_pass *kp = kl_kernel_passes; kp->name; kp++) {
        if (!kp->run(p, &ko, d)) return false;
        if (o->dump_ir_after && !strcmp(o->dump_ir_after, kp->name))
            kl_program_dump(p, o->dump_to ? o->dump_to : stdout);
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

kl_program *kl_compile_graph(kl_arena *a, kl_graph *g, const kl_target *t,
                             const kl_compile_opts *o, kl_diag *d) {
    FILE *dump = o->dump_to ? o->dump_to : stdout;
    if (!run_passes(g, o, d)) return NULL;
    kl_program *p = kl_lower_graph(a, g, d);
    if (!p) return NULL;
    if (o->dump_ir_after && !strcmp(o->dump_ir_after, "lower")) kl_program_dump(p, dump);
    if (!run_kernel_passes(p, t, o, d)) return NULL;
    if (!kl_plan_memory(p, d)) return NULL;
    if (o->dump_ir_after && !strcmp(o->dump_ir_after, "plan")) kl_program_dump(p, dump);
    return kl_diag_failed(d) ? NULL : p;
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
    if (!cg.name) cg.name = kl_c_name_from_path(a, o->model_path);
    const char *header = o->header_path ? o->header_path : default_header_path(a, o->out_path, cg.name);
    bool ok = false;
    kl_graph *g = kl_onnx_load(a, o->model_path, o->bindings, o->n_bindings, d);
    if (!g || kl_diag_failed(d)) goto done;
    kl_program *p = kl_compile_graph(a, g, cg.target, o, d);
    if (!p) goto done;
    if (!kl_codegen_llvm(p, g, &cg, o->out_path, d)) goto done;
    if (!kl_write_header(p, g, &cg, header, d)) {
        unlink(o->out_path);
        goto done;
    }
    if (stats) {
        stats->workspace_size = p->workspace_size;
        stats->intermediates_total = p->intermediates_total;
        stats->n_kernels = p->kernels.n;
    }
    ok = true;
done:
    kl_arena_free(a);
    return ok && !kl_diag_failed(d);
}
