/*
 * codegen/header.c — NAME.h, the C face of a compiled model.
 *
 * The header is what a programmer reads first, so it documents every input and output (name
 * as in the model, element type, shape and how symbolic dimensions were bound) in comments
 * next to the macros and typed prototypes. Macros are spelled with the upper-cased prefix
 * (MNIST_WORKSPACE_SIZE, as in DESIGN.md); functions and the table with the prefix itself.
 * Parameter names are the ONNX names made into valid, unique C identifiers that are neither
 * keywords nor the type names the prototype itself uses. Text from the model (doc strings,
 * names) is sanitized so that it can never end a comment. Written atomically, like all
 * outputs.
 *
 * Also home of kl_write_file_atomic, used by every writer of output files.
 */
#ifndef _GNU_SOURCE /* mkstemp, fchmod, open_memstream under -std=c17 */
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln.h"
#include "kl.h"

/* ---------------------------------------------------------------- atomic files */

bool kl_write_file_atomic(const char *path, const void *data, size_t size, kl_diag *d) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return kl_error(d, NULL, "%s: out of memory", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp-XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        kl_error(d, NULL, "cannot write '%s': %s", path, strerror(errno));
        free(tmp);
        return false;
    }
    fchmod(fd, 0644); /* mkstemp's 0600 is wrong for a build product */
    const char *p = data;
    size_t left = size;
    bool ok = true;
    while (ok && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        if (ok) {
            p += w;
            left -= (size_t)w;
        }
    }
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) != 0) {
        saved = errno;
        ok = false;
    }
    if (!ok) {
        kl_error(d, NULL, "cannot write '%s': %s", path, strerror(saved ? saved : EIO));
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

/* ---------------------------------------------------------------- text helpers */

/* Model text made safe inside a C comment: printable ASCII, no comment terminator. */
static void put_comment_text(FILE *f, const char *s, const char *line_prefix) {
    char prev = 0;
    for (; s && *s; s++) {
        char c = *s;
        if (c == '\n') {
            fprintf(f, "\n%s", line_prefix);
            prev = 0;
            continue;
        }
        if (!isprint((unsigned char)c))
            c = '?';
        if (prev == '*' && c == '/')
            fputc(' ', f);
        fputc(c, f);
        prev = c;
    }
}

static const char *c_type(kl_dtype t) {
    switch (t) {
    case KL_F32: return "float";
    case KL_F64: return "double";
    case KL_I8: return "int8_t";
    case KL_I16: return "int16_t";
    case KL_I32: return "int32_t";
    case KL_I64: return "int64_t";
    case KL_U8: return "uint8_t";
    case KL_U16: return "uint16_t";
    case KL_U32: return "uint32_t";
    case KL_U64: return "uint64_t";
    case KL_BOOL: return "bool";
    case KL_F16: case KL_BF16: return "uint16_t"; /* raw bits */
    /* one byte an element (kiln.h): float8 / float4 bits, uint4 / uint2 values */
    case KL_F8E4M3FN: case KL_F8E4M3FNUZ: case KL_F8E5M2: case KL_F8E5M2FNUZ: case KL_F8E8M0:
    case KL_F4E2M1: case KL_U4: case KL_U2: return "uint8_t";
    case KL_I4: case KL_I2: return "int8_t"; /* sign extended */
    default: return "void";
    }
}

/* Words a parameter name must not be: C17/C23 keywords, and the names the header's types
 * use (a parameter named int64_t would shadow the type for the rest of the prototype). */
static bool reserved_word(const char *s) {
    static const char *const words[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
        "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
        "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
        "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Alignas",
        "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn",
        "_Static_assert", "_Thread_local", "alignas", "alignof", "bool", "constexpr", "false",
        "nullptr", "static_assert", "thread_local", "true", "typeof", "typeof_unqual",
        "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t",
        "uint64_t", "size_t", "kiln_model", "workspace", "NULL", "stream", "state"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strcmp(s, words[i]) == 0)
            return true;
    return false;
}

static char *c_identifier(kl_arena *a, const char *name) {
    if (!name || !*name)
        name = "t";
    size_t n = strlen(name);
    char *s = kl_alloc(a, n + 4);
    size_t j = 0;
    if (isdigit((unsigned char)name[0]) || name[0] == '_')
        s[j++] = 't'; /* no leading digit, and no reserved _X / __ names */
    for (size_t i = 0; i < n; i++)
        s[j++] = isalnum((unsigned char)name[i]) ? name[i] : '_';
    if (reserved_word(s))
        s[j++] = '_';
    s[j] = 0;
    return s;
}

/* Parameter names for inputs then outputs, unique among themselves. */
static char **parameter_names(kl_arena *a, const char **onnx_names, int n) {
    char **names = kl_alloc_array(a, (size_t)n + 1, sizeof *names);
    for (int i = 0; i < n; i++) {
        char *base = c_identifier(a, onnx_names[i]);
        names[i] = base;
        for (int suffix = 2;; suffix++) {
            bool taken = false;
            for (int j = 0; j < i && !taken; j++)
                taken = strcmp(names[j], names[i]) == 0;
            if (!taken)
                break;
            names[i] = kl_sprintf(a, "%s_%d", base, suffix);
        }
    }
    return names;
}

static char *upper(kl_arena *a, const char *s) {
    char *u = kl_strdup(a, s);
    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

/* ---------------------------------------------------------------- sections */

static const kl_value *graph_value(const kl_graph *g, bool output, int i) {
    if (!g)
        return NULL;
    const kl_ptrvec *v = output ? &g->outputs : &g->inputs;
    return i < v->n ? v->items[i] : NULL;
}

static void put_model_comment(FILE *f, const kl_graph *g, const kl_codegen_opts *o) {
    fprintf(f, "/*\n * %s.h — generated by kiln", o->name);
    if (g && g->file) {
        fputs(" from ", f);
        put_comment_text(f, g->file, " * ");
    }
    fputs("; do not edit.\n", f);
    if (!g) {
        fputs(" */\n", f);
        return;
    }
    const kl_model_meta *m = &g->meta;
    fputs(" *\n * producer: ", f);
    put_comment_text(f, m->producer_name && *m->producer_name ? m->producer_name : "(none)", " * ");
    if (m->producer_version && *m->producer_version) {
        fputc(' ', f);
        put_comment_text(f, m->producer_version, " * ");
    }
    fprintf(f, "\n * ir_version: %lld, model_version: %lld\n * opsets:", (long long)m->ir_version,
            (long long)m->model_version);
    for (int i = 0; i < m->n_opsets; i++) {
        fputc(' ', f);
        const char *dom = m->opsets[i].domain;
        put_comment_text(f, dom && *dom ? dom : "ai.onnx", " * ");
        fprintf(f, " %lld%s", (long long)m->opsets[i].version, i + 1 < m->n_opsets ? "," : "");
    }
    if (m->graph_name && *m->graph_name) {
        fputs("\n * graph: ", f);
        put_comment_text(f, m->graph_name, " * ");
    }
    if (m->doc_string && *m->doc_string) {
        fputs("\n *\n * ", f);
        put_comment_text(f, m->doc_string, " * ");
    }
    for (int i = 0; i < m->n_props; i++) {
        fputs("\n * ", f);
        put_comment_text(f, m->props[i].key, " * ");
        fputs(": ", f);
        put_comment_text(f, m->props[i].value, " * ");
    }
    fputs("\n */\n", f);
}

static bool has_strings(const kl_program *p) {
    for (int i = 0; i < p->inputs.n; i++)
        if (((const kl_buffer *)p->inputs.items[i])->dtype == KL_STRING) return true;
    for (int i = 0; i < p->outputs.n; i++)
        if (((const kl_buffer *)p->outputs.items[i])->dtype == KL_STRING) return true;
    return false;
}

/* One tensor parameter and ", ": a pointer to its elements, const for an input. A string
 * element is itself a `const char *` (kiln.h). */
static void put_param(FILE *f, kl_dtype t, bool input, const char *name) {
    if (t == KL_STRING)
        fprintf(f, "const char *%s*%s, ", input ? "const " : "", name);
    else
        fprintf(f, "%s%s *%s, ", input ? "const " : "", c_type(t), name);
}

/*   compiled for the value 10, 10, 3 (--value): predict returns KILN_E_SHAPE for another */
static void put_bound_value(FILE *f, const kl_value *c) {
    enum { SHOWN = 16 };
    int64_t n = kl_shape_numel(&c->shape);
    fputs("/*   compiled for the value ", f);
    for (int64_t i = 0; i < n && i < SHOWN; i++) {
        if (kl_dtype_is_float(c->dtype))
            fprintf(f, "%s%.9g", i ? ", " : "", kl_value_const_float(c, i));
        else
            fprintf(f, "%s%lld", i ? ", " : "", (long long)kl_value_const_int(c, i));
    }
    fprintf(f, "%s (--value): predict returns KILN_E_SHAPE for another */\n",
            n > SHOWN ? ", ..." : "");
}

/* input 0 "Input3": float32 [1,1,28,28] (dim 0 = 'N' bound to 1) */
static void put_tensor(FILE *f, const char *macro, const char *what, int i, const kl_buffer *b,
                       const char *name, const kl_value *v, const kl_program *p) {
    fprintf(f, "/* %s %d \"", what, i);
    put_comment_text(f, name, "   ");
    const char *tn = kl_dtype_name(b->dtype);
    fprintf(f, "\": %s [", tn ? tn : "?");
    for (int d = 0; d < b->shape.rank; d++) {
        fprintf(f, "%s", d ? "," : "");
        if (b->dyn_a && b->dyn_a[d]) /* a bounded dim: its range */
            fprintf(f, "%lld..", (long long)(b->dyn_a[d] * p->bounded_min + b->dyn_b[d]));
        if (kl_buffer_root((kl_buffer *)b)->dd_count && d == kl_buffer_root((kl_buffer *)b)->dd_dim)
            fputs("0..", f); /* a data-dependent length: at most the bound */
        fprintf(f, "%lld", (long long)b->shape.dim[d]);
    }
    fputc(']', f);
    bool first = true;
    for (int d = 0; v && d < b->shape.rank; d++) {
        if (!v->dim_param[d])
            continue;
        fprintf(f, "%sdim %d = '", first ? " (" : ", ", d);
        put_comment_text(f, v->dim_param[d], "   ");
        bool varies = (b->dyn_a && b->dyn_a[d]) ||
                      (kl_buffer_root((kl_buffer *)b)->dd_count && d == kl_buffer_root((kl_buffer *)b)->dd_dim);
        fprintf(f, varies ? "' at most %lld" : "' bound to %lld",
                (long long)b->shape.dim[d]);
        first = false;
    }
    fprintf(f, "%s */\n", first ? "" : ")");
    if (kl_buffer_root((kl_buffer *)b)->dd_count)
        fprintf(f, "/*   dim %d depends on the data: predict_dynamic writes it; the buffer holds "
                   "the bound */\n", kl_buffer_root((kl_buffer *)b)->dd_dim);
    if (v && v->bound_value) put_bound_value(f, v->bound_value);
    if (b->dtype >= KL_F8E4M3FN && b->dtype <= KL_I2)
        fprintf(f, "/*   one byte an element, not packed: %s (see kiln.h's kiln_dtype) */\n",
                kl_dtype_is_minifloat(b->dtype) ? "the bit pattern"
                : kl_dtype_is_signed_int(b->dtype) ? "the value, sign extended"
                                                   : "the value");
    fprintf(f, "#define %s_%s_%d_SIZE %lld /* elements */\n", macro, what[0] == 'i' ? "INPUT" : "OUTPUT",
            i, (long long)kl_shape_numel(&b->shape));
}

/* Sequences and optionals at the interface (passes/seqio.c): which tensors each one is.
 *   sequence output "seq": 3 tensors, outputs 0 .. 2, named after it: [0] .. [2]
 * with macros NAME_OUTPUT_SEQ_FIRST / _COUNT (the C identifier of the ONNX name, upper case)
 * so that a caller indexes the model table's outputs without counting. */
static void put_compound_io(FILE *f, kl_arena *a, const char *macro, const kl_graph *g) {
    for (int i = 0; g && i < g->compound_io.n; i++) {
        const kl_compound_io *io = g->compound_io.items[i];
        const char *what = io->input ? "input" : "output";
        fprintf(f, "/* %s%s %s \"", io->optional ? "optional" : "sequence",
                io->optional && io->sequence ? " of a sequence" : "", what);
        put_comment_text(f, io->name, "   ");
        if (io->optional && !io->present)
            fprintf(f, "\": empty, no tensor");
        else if (io->count == 0)
            fprintf(f, "\": 0 tensors");
        else
            fprintf(f, "\": %d tensor%s, %ss %d .. %d, named after it: [0] .. [%d]", io->count,
                    io->count == 1 ? "" : "s", what, io->first, io->first + io->count - 1,
                    io->count - 1);
        fputs(" */\n", f);
        const char *id = upper(a, c_identifier(a, io->name));
        fprintf(f, "#define %s_%s_%s_FIRST %d\n", macro, io->input ? "INPUT" : "OUTPUT", id,
                io->first);
        fprintf(f, "#define %s_%s_%s_COUNT %d\n", macro, io->input ? "INPUT" : "OUTPUT", id,
                io->count);
    }
}

/* What a CUDA object needs: the GPU and the driver. */
static void put_cuda_target(FILE *f, const kl_target *t) {
    fprintf(f, "/* Compiled for target %s: %s.\n", t->name, t->description);
    fprintf(f, " * The kernels are a cubin for sm_%d, plus PTX that the driver compiles when the GPU is\n"
               " * newer; the host code (%s) calls the CUDA driver API: link with -lcuda, nothing else\n"
               " * is needed at run time. See kiln.h for the calls' contract.\n */\n",
            t->sm, t->triple);
}

/* The faster variants the object carries (codegen/llvm/dispatch.c). */
static void put_variants(FILE *f, const kl_codegen_opts *o) {
    if (o->n_variants == 0)
        return;
    fputs(" * It also carries the model compiled for", f);
    for (int i = 0; i < o->n_variants; i++)
        fprintf(f, "%s %s", i == 0 ? "" : i == o->n_variants - 1 ? " and" : ",",
                o->variants[i].target->name);
    fputs(": each call runs the best one the\n"
          " * CPU supports (CPUID and XCR0, checked once per workspace and remembered in its last\n"
          " * 64 bytes), else the baseline code. `kiln compile --dispatch off` leaves them out.\n", f);
}

/* What the object needs from the CPU that runs it. */
static void put_target(FILE *f, const kl_codegen_opts *o, const char *name) {
    const kl_target *t = o->target;
    if (!t)
        return;
    if (t->backend == KL_BACKEND_CUDA) {
        put_cuda_target(f, t);
        return;
    }
    fprintf(f, "/* Compiled for target %s (%s; LLVM cpu %s).\n", t->name, t->triple, t->cpu);
    if (t->isa_level >= 2)
        fprintf(f, " * Requires an x86-64-v%d CPU; the object carries that ISA level in an ELF property\n"
                   " * note, so glibc refuses to start a program linked with GNU ld on an older CPU\n"
                   " * (\"CPU ISA level is lower than required\").%s\n",
                t->isa_level, !strcmp(t->name, "native") ? " Built for the compiling machine's CPU:" : "");
    if (!strcmp(t->name, "native"))
        fprintf(f, " * another CPU needs every feature listed in %s_model.cpu_features.\n", name);
    else if (t->isa_level == 1)
        fputs(" * Runs on every x86-64 CPU.\n", f);
    put_variants(f, o);
    fputs(" */\n", f);
}

/* The error codes the model's input data can cause (its check kernels), as a list to go on
 * "returns KILN_OK (0), or ...". */
static void put_data_errors(FILE *f, const kl_program *p) {
    bool index = false, shape = false, strings = false;
    for (int i = 0; i < p->kernels.n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        index = index || k->error_code == KILN_E_INDEX_OUT_OF_RANGE;
        shape = shape || k->error_code == KILN_E_SHAPE;
        strings = strings || k->error_code == KILN_E_STRING_BYTES;
    }
    if (strings)
        fputs(",\n * KILN_E_STRING_BYTES when the strings built need more than the string arena's bytes", f);
    if (index) fputs(",\n * KILN_E_INDEX_OUT_OF_RANGE when index data lies outside its axis", f);
    if (shape)
        fputs(",\n * KILN_E_SHAPE when a shape-carrying input asks for another shape than declared,"
              "\n * or an input holds another value than the one compiled for (--value)", f);
}

static void put_prototypes(FILE *f, kl_arena *a, const kl_program *p, const kl_codegen_opts *o,
                           const char **onnx_names) {
    int n_in = p->inputs.n, n = n_in + p->outputs.n;
    char **names = parameter_names(a, onnx_names, n);
    fputs("/* Runs the model: returns KILN_OK (0), or KILN_E_NULL_ARGUMENT / KILN_E_MISALIGNED", f);
    put_data_errors(f, p);
    fputs(".\n * Never allocates, prints or aborts; all mutable state lives in `workspace`. */\n", f);
    for (int i = 0; i < p->traps.n; i++) {
        char *why = kl_sprintf(a, "%s", ((const kl_trap *)p->traps.items[i])->why);
        for (char *c = why; *c; c++) /* it quotes the model's names: no "*" "/" ends the comment */
            if (c[0] == '*' && c[1] == '/') c[0] = '+';
        fprintf(f, "/* KILN_E_UNCOMPILED_BRANCH when the inputs take an If's branch that could not "
                   "be compiled\n * for the bound shapes: %s */\n", why);
    }

    fprintf(f, "int %s_predict(", o->name);
    for (int i = 0; i < n; i++) {
        const kl_buffer *b = i < n_in ? p->inputs.items[i] : p->outputs.items[i - n_in];
        put_param(f, b->dtype, i < n_in, names[i]);
    }
    fputs("void *workspace);\n\n", f);
    fprintf(f, "/* The same on the caller's threads: the heavy kernels go through par->parallel_for\n"
               " * (kiln.h; kiln_pool.h has a pthread pool). par NULL: as predict. */\n"
               "int %s_predict_parallel(", o->name);
    for (int i = 0; i < n; i++) {
        const kl_buffer *b = i < n_in ? p->inputs.items[i] : p->outputs.items[i - n_in];
        put_param(f, b->dtype, i < n_in, names[i]);
    }
    fputs("void *workspace,\n        const kiln_parallel *par);\n\n", f);
    fprintf(f, "/* The same, with inputs and outputs as arrays in the order above. */\n"
               "int %s_run(const void *const *inputs, void *const *outputs, void *workspace);\n\n",
            o->name);
    if (p->dims) {
        fputs("/* Bounded dim ", f);
        put_comment_text(f, p->bounded_name, " * ");
        fprintf(f, " in %lld..%lld: predict runs the model at the bounds (the shapes\n"
                   " * above); predict_dynamic at each input's run-time dims (NAME_shape: rank values),\n"
                   " * dense data of those shapes, and writes each output's dims. KILN_E_SHAPE when a\n"
                   " * dim is outside its range or the dims disagree. */\n"
                   "int %s_predict_dynamic(", (long long)p->bounded_min,
                (long long)p->bounded_max, o->name);
        for (int i = 0; i < n; i++) {
            const kl_buffer *b = i < n_in ? p->inputs.items[i] : p->outputs.items[i - n_in];
            put_param(f, b->dtype, i < n_in, names[i]);
            fprintf(f, "%sint64_t *%s_shape, ", i < n_in ? "const " : "", names[i]);
        }
        fputs("void *workspace);\n\n", f);
    } else if (kl_program_data_dependent(p)) {
        fprintf(f, "/* Some output's length depends on the data (marked 0..BOUND above): predict,\n"
                   " * predict_parallel and run return KILN_E_DYNAMIC_OUTPUT; predict_dynamic runs the\n"
                   " * model (inputs at the shapes above, NAME_shape: their rank dims, which must match),\n"
                   " * writes each output densely at its run-time shape and that shape into NAME_shape.\n"
                   " * Output buffers must hold the bound. */\n"
                   "int %s_predict_dynamic(", o->name);
        for (int i = 0; i < n; i++) {
            const kl_buffer *b = i < n_in ? p->inputs.items[i] : p->outputs.items[i - n_in];
            fprintf(f, "%s%s *%s, %sint64_t *%s_shape, ", i < n_in ? "const " : "",
                    c_type(b->dtype), names[i], i < n_in ? "const " : "", names[i]);
        }
        fputs("void *workspace);\n\n", f);
    }
    fprintf(f, "/* Names, types, shapes, metadata and the generic entry point. */\n"
               "extern const kiln_model %s_model;\n",
            o->name);
}

/* The tensors' typed parameters, then `tail`. */
static void put_params(FILE *f, const kl_program *p, char **names, const char *tail) {
    int n_in = p->inputs.n, n = n_in + p->outputs.n;
    for (int i = 0; i < n; i++) {
        const kl_buffer *b = i < n_in ? p->inputs.items[i] : p->outputs.items[i - n_in];
        put_param(f, b->dtype, i < n_in, names[i]);
    }
    fputs(tail, f);
}

static void put_cuda_prototypes(FILE *f, kl_arena *a, const kl_program *p,
                                const kl_codegen_opts *o, const char **onnx_names) {
    const char *n = o->name;
    char **names = parameter_names(a, onnx_names, p->inputs.n + p->outputs.n);
    fprintf(f, "/* Loads the module into the current CUDA context: looks the kernels up and copies the\n"
               " * weights into the module's device memory. KILN_OK, KILN_E_NULL_ARGUMENT, or\n"
               " * KILN_E_CUDA - CUresult (state->module is then NULL). */\n"
               "int %s_cuda_load(%s_cuda *state);\n"
               "int %s_cuda_unload(%s_cuda *state);\n\n", n, n, n, n);
    fprintf(f, "/* Queues the model on `stream` (a CUstream / cudaStream_t; NULL: the default stream).\n"
               " * Inputs, outputs and the workspace (%s_WORKSPACE_SIZE bytes) are device pointers.\n"
               " * Allocates nothing and does not wait: synchronize the stream before reading the\n"
               " * outputs. KILN_OK, KILN_E_NULL_ARGUMENT (also: state not loaded),\n"
               " * KILN_E_MISALIGNED or KILN_E_CUDA - CUresult. */\n"
               "int %s_cuda_predict(", upper(a, n), n);
    put_params(f, p, names, "void *workspace,\n        void *stream, const ");
    fprintf(f, "%s_cuda *state);\n\n", n);
    fprintf(f, "/* The same on host memory: copies the inputs into the device workspace\n"
               " * (%s_CUDA_HOST_WORKSPACE_SIZE bytes: predict's workspace, then room for every input\n"
               " * and output), runs, copies the outputs back and waits for the stream. */\n"
               "int %s_cuda_predict_host(", upper(a, n), n);
    put_params(f, p, names, "void *workspace,\n        void *stream, const ");
    fprintf(f, "%s_cuda *state);\n\n", n);
    fprintf(f, "/* Both with inputs and outputs as arrays in the order above. */\n"
               "int %s_cuda_run(const void *const *inputs, void *const *outputs, void *workspace,\n"
               "        void *stream, const %s_cuda *state);\n"
               "int %s_cuda_run_host(const void *const *inputs, void *const *outputs, void *workspace,\n"
               "        void *stream, const %s_cuda *state);\n\n", n, n, n, n);
    fprintf(f, "/* Names, types, shapes, metadata and the generic CUDA entries. */\n"
               "extern const kiln_model %s_model;\n", n);
}

/* A CUDA model's sizes and its caller-owned state. */
static void put_cuda_sizes(FILE *f, const kl_program *p, const kl_target *t, const char *macro,
                           const char *name) {
    kl_cuda_sizes s = {0};
    kl_diag scratch; /* the back end planned the same program before the header is written */
    kl_diag_init(&scratch, "");
    kl_cuda_sizes_of(p, t, &s, &scratch);
    kl_diag_free(&scratch);
    fprintf(f, "#define %s_WORKSPACE_SIZE %lld /* device bytes of predict's workspace */\n", macro,
            (long long)p->workspace_size);
    fprintf(f, "#define %s_WORKSPACE_ALIGN 64 /* bytes */\n", macro);
    fprintf(f, "#define %s_CUDA_HOST_WORKSPACE_SIZE %lld /* device bytes of predict_host's */\n",
            macro, (long long)s.host_workspace_size);
    fprintf(f, "#define %s_CUDA_FUNCTIONS %d /* launches of one prediction */\n\n", macro,
            s.n_functions);
    fprintf(f, "/* The loaded module: the caller's memory (no global state in the object). */\n"
               "typedef struct %s_cuda {\n    void *module;                 /* CUmodule */\n"
               "    void *functions[%d];         /* CUfunction of every launch */\n} %s_cuda;\n"
               "#define %s_CUDA_STATE_SIZE sizeof(%s_cuda)\n\n",
            name, s.n_functions > 0 ? s.n_functions : 1, name, macro, name);
}

bool kl_write_header(const kl_program *p, const kl_graph *g, const kl_codegen_opts *o,
                     const char *path, kl_diag *d) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return kl_error(d, NULL, "cannot write '%s': out of memory", path);
    kl_arena *a = p->arena;
    const char *macro = upper(a, o->name);
    int n_in = p->inputs.n, n = n_in + p->outputs.n;
    const char **onnx_names = kl_alloc_array(a, (size_t)n + 1, sizeof *onnx_names);

    put_model_comment(f, g, o);
    fprintf(f, "#ifndef %s_H\n#define %s_H\n\n#include <stdbool.h>\n#include <stdint.h>\n\n"
               "#include \"kiln.h\"\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
            macro, macro);
    put_target(f, o, o->name);
    bool cuda = o->target && o->target->backend == KL_BACKEND_CUDA;
    if (cuda) {
        put_cuda_sizes(f, p, o->target, macro, o->name);
    } else {
        fprintf(f, "#define %s_WORKSPACE_SIZE %lld /* bytes; the caller provides it */\n", macro,
                (long long)p->workspace_size);
        fprintf(f, "#define %s_WORKSPACE_ALIGN 64 /* bytes */\n\n", macro);
    }
    if (p->strings)
        fprintf(f, "/* Strings the model builds go into the workspace: at most this many bytes a run\n"
                   " * (terminating NULs included; kiln compile --string-bytes N), else predict returns\n"
                   " * KILN_E_STRING_BYTES. Output strings stay valid until the workspace is reused\n"
                   " * (kiln.h, KILN_STRING). */\n"
                   "#define %s_STRING_BYTES %lld\n\n", macro,
                (long long)kl_program_string_bytes(p));
    else if (has_strings(p))
        fputs("/* String elements are `const char *` (kiln.h, KILN_STRING): outputs point to the\n"
              " * inputs' strings or to constants of the model (read-only data). */\n\n", f);
    for (int i = 0; i < n; i++) {
        bool out = i >= n_in;
        int idx = out ? i - n_in : i;
        const kl_buffer *b = out ? p->outputs.items[idx] : p->inputs.items[idx];
        const kl_value *v = graph_value(g, out, idx);
        onnx_names[i] = v && v->name ? v->name : b->name;
        put_tensor(f, macro, out ? "output" : "input", idx, b, onnx_names[i], v, p);
    }
    put_compound_io(f, a, macro, g);
    fputc('\n', f);
    if (cuda)
        put_cuda_prototypes(f, a, p, o, onnx_names);
    else
        put_prototypes(f, a, p, o, onnx_names);
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n#endif /* %s_H */\n", macro);
    if (fclose(f) != 0 || !text) {
        free(text);
        return kl_error(d, NULL, "cannot write '%s': out of memory", path);
    }
    bool ok = kl_write_file_atomic(path, text, len, d);
    free(text);
    return ok;
}
