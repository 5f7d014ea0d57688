/*
 * test_tile.c — the tile pass and the register-blocked code it asks the back end for.
 *
 * Each test builds a small program by hand (a channels-last convolution with padding, a
 * strided one, a depthwise one, a max pool, a matrix product with awkward extents), runs it in
 * the kernel interpreter as the reference, then tiles it for a target and checks that
 *   - the tiled program still interprets to the same numbers (the pass keeps semantics),
 *   - the kernels really are blocked (a VECTOR loop, an UNROLL loop where one pays, the padded
 *     interior free of selects), and
 *   - the code LLVM makes of it computes the same numbers, for every x86-64 level this CPU can
 *     run (the others are compiled, not run).
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln.h"
#include "kl.h"

/* ---------------------------------------------------------------- building programs */

typedef struct prog {
    kl_arena *a;
    kl_program *p;
    kl_buffer *in[4];
    int n_in;
    kl_buffer *out;
} prog;

static kl_shape shape(int rank, const int64_t *dims) {
    kl_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) s.dim[i] = dims[i];
    return s;
}

static unsigned next_random(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return (*state >> 8) & 0xffff;
}

static float *random_floats(kl_arena *a, int64_t n, unsigned seed) {
    float *v = kl_alloc(a, (size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)next_random(&seed) / 32768.0f - 1.0f;
    return v;
}

static kl_buffer *add_input(prog *g, const char *name, int rank, const int64_t *dims) {
    kl_shape s = shape(rank, dims);
    kl_buffer *b = kl_program_buffer(g->p, name, KL_BUF_INPUT, KL_F32, &s);
    b->index = g->n_in;
    kl_ptrvec_push(g->a, &g->p->inputs, b);
    g->in[g->n_in++] = b;
    return b;
}

static kl_buffer *add_const(prog *g, const char *name, int rank, const int64_t *dims,
                            unsigned seed) {
    kl_shape s = shape(rank, dims);
    kl_buffer *b = kl_program_buffer(g->p, name, KL_BUF_CONST, KL_F32, &s);
    b->data = b->host = random_floats(g->a, kl_shape_numel(&s), seed);
    return b;
}

static kl_buffer *add_output(prog *g, int rank, const int64_t *dims) {
    kl_shape s = shape(rank, dims);
    g->out = kl_program_buffer(g->p, "y", KL_BUF_OUTPUT, KL_F32, &s);
    kl_ptrvec_push(g->a, &g->p->outputs, g->out);
    return g->out;
}

static prog new_prog(void) {
    prog g = {0};
    g.a = kl_arena_new();
    g.p = kl_program_new(g.a);
    return g;
}

static kl_expr *iv(prog *g, int l) { return kl_e_iv(g->a, l); }

/* Y[n, oh, ow, m] = B[m] + sum over kh, kw, c of X[n, ih, iw, g*cg + c] * W[m, c, kh, kw]
 * (zero outside X), for `groups` groups; loops n, oh, ow, m | kh, kw, c. */
static prog conv_nhwc(int64_t h, int64_t w, int64_t c, int64_t m, int64_t k, int64_t stride,
                      int64_t pad, int64_t groups) {
    prog g = new_prog();
    kl_arena *a = g.a;
    int64_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    int64_t cg = c / groups, mg = m / groups;
    kl_buffer *x = add_input(&g, "x", 4, (int64_t[]){1, h, w, c});
    kl_buffer *wt = add_const(&g, "w", 4, (int64_t[]){m, cg, k, k}, 7);
    kl_buffer *b = add_const(&g, "b", 1, (int64_t[]){m}, 11);
    kl_buffer *y = add_output(&g, 4, (int64_t[]){1, oh, ow, m});
    kl_kernel *kn = kl_kernel_new(g.p, NULL, "conv");
    int64_t ext[7] = {1, oh, ow, m, k, k, cg};
    memcpy(kn->extent, ext, sizeof ext);
    kn->n_par = 4;
    kn->n_loops = 7;
    kl_expr *ih = kl_e_addc(a, kl_e_add(a, kl_e_mulc(a, iv(&g, 1), stride), iv(&g, 4)), -pad);
    kl_expr *iw = kl_e_addc(a, kl_e_add(a, kl_e_mulc(a, iv(&g, 2), stride), iv(&g, 5)), -pad);
    /* in channel = (m / mg) * cg + c: with groups, m is split as group-major */
    kl_expr *ch = iv(&g, 6);
    if (groups > 1) {
        /* depthwise-like: one input channel per group, m == c, cg == 1 */
        ch = iv(&g, 3);
    }
    kl_expr *xi[4] = {iv(&g, 0), ih, iw, ch};
    kl_expr *inside = kl_e_and(a, kl_e_in_range(a, ih, h), kl_e_in_range(a, iw, w));
    kl_expr *xe = kl_e_select(a, inside, kl_e_load(a, x, xi), kl_e_const_f(a, KL_F32, 0.0));
    kl_expr *wi[4] = {iv(&g, 3), iv(&g, 6), iv(&g, 4), iv(&g, 5)};
    kn->value = kl_e_binary(a, KL_MUL, xe, kl_e_load(a, wt, wi));
    kn->reduce = KL_RED_SUM;
    kn->acc_dtype = KL_F32;
    kl_expr *bi = iv(&g, 3);
    kn->init = kl_e_load(a, b, &bi);
    kn->out = y;
    kn->out_idx = kl_alloc_array(a, 4, sizeof *kn->out_idx);
    for (int i = 0; i < 4; i++) kn->out_idx[i] = iv(&g, i);
    (void)mg;
    kl_program_add_kernel(g.p, kn);
    return g;
}

/* Depthwise, channels first: Y[n, c, oh, ow] = sum over kh, kw of X[n, c, ih, iw] * W[c, kh, kw]
 * (zero outside X). The VECTOR loop is ow, so the padding test differs between lanes; with a
 * 5x5 window on 3 rows no row is inside, and at channel 0 row 0 the padded reads fall before
 * the buffer's start. */
static prog depthwise_nchw(void) {
    prog g = new_prog();
    kl_arena *a = g.a;
    int64_t h = 3, w = 10, c = 2, k = 5, pad = 2;
    kl_buffer *x = add_input(&g, "x", 4, (int64_t[]){1, c, h, w});
    kl_buffer *wt = add_const(&g, "w", 3, (int64_t[]){c, k, k}, 5);
    kl_buffer *y = add_output(&g, 4, (int64_t[]){1, c, h, w});
    kl_kernel *kn = kl_kernel_new(g.p, NULL, "dw");
    int64_t ext[6] = {1, c, h, w, k, k};
    memcpy(kn->extent, ext, sizeof ext);
    kn->n_par = 4;
    kn->n_loops = 6;
    kl_expr *ih = kl_e_addc(a, kl_e_add(a, iv(&g, 2), iv(&g, 4)), -pad);
    kl_expr *iw = kl_e_addc(a, kl_e_add(a, iv(&g, 3), iv(&g, 5)), -pad);
    kl_expr *xi[4] = {iv(&g, 0), iv(&g, 1), ih, iw};
    kl_expr *inside = kl_e_and(a, kl_e_in_range(a, ih, h), kl_e_in_range(a, iw, w));
    kl_expr *xe = kl_e_select(a, inside, kl_e_load(a, x, xi), kl_e_const_f(a, KL_F32, 0.0));
    kl_expr *wi[3] = {iv(&g, 1), iv(&g, 4), iv(&g, 5)};
    kn->value = kl_e_binary(a, KL_MUL, xe, kl_e_load(a, wt, wi));
    kn->reduce = KL_RED_SUM;
    kn->acc_dtype = KL_F32;
    kn->out = y;
    kn->out_idx = kl_alloc_array(a, 4, sizeof *kn->out_idx);
    for (int i = 0; i < 4; i++) kn->out_idx[i] = iv(&g, i);
    kl_program_add_kernel(g.p, kn);
    return g;
}

/* The integer forms' shape: int32 products summed in int32 (here of values scaled and
 * truncated from floats, so the float harness drives it), converted back at the end. */
static prog conv_int32(void) {
    prog g = conv_nhwc(6, 20, 8, 24, 3, 1, 1, 1);
    kl_arena *a = g.a;
    kl_kernel *k = g.p->kernels.items[0];
    kl_expr *x = k->value->a, *w = k->value->b; /* select(..., X, 0) * W */
    kl_expr *ten = kl_e_const_f(a, KL_F32, 10.0);
    kl_expr *xi = kl_e_cast(a, KL_I32, kl_e_binary(a, KL_MUL, x, ten));
    kl_expr *wi = kl_e_cast(a, KL_I32, kl_e_binary(a, KL_MUL, w, ten));
    k->value = kl_e_binary(a, KL_MUL, xi, wi);
    k->acc_dtype = KL_I32;
    k->init = kl_e_cast(a, KL_I32, kl_e_binary(a, KL_MUL, k->init, ten));
    k->result = kl_e_cast(a, KL_F32, kl_e_acc(a, KL_I32));
    return g;
}

/* Y[i, j] = relu(sum over k of A[i, k] * B[k, j]) with B constant. */
static prog matmul(int64_t mm, int64_t kk, int64_t nn) {
    prog g = new_prog();
    kl_arena *a = g.a;
    kl_buffer *x = add_input(&g, "a", 2, (int64_t[]){mm, kk});
    kl_buffer *b = add_const(&g, "b", 2, (int64_t[]){kk, nn}, 3);
    kl_buffer *y = add_output(&g, 2, (int64_t[]){mm, nn});
    kl_kernel *kn = kl_kernel_new(g.p, NULL, "matmul");
    kn->extent[0] = mm;
    kn->extent[1] = nn;
    kn->extent[2] = kk;
    kn->n_par = 2;
    kn->n_loops = 3;
    kl_expr *ai[2] = {iv(&g, 0), iv(&g, 2)}, *bi[2] = {iv(&g, 2), iv(&g, 1)};
    kn->value = kl_e_binary(a, KL_MUL, kl_e_load(a, x, ai), kl_e_load(a, b, bi));
    kn->reduce = KL_RED_SUM;
    kn->acc_dtype = KL_F32;
    kn->result = kl_e_binary(a, KL_MAX, kl_e_acc(a, KL_F32), kl_e_const_f(a, KL_F32, 0.0));
    kn->out = y;
    kn->out_idx = kl_alloc_array(a, 2, sizeof *kn->out_idx);
    kn->out_idx[0] = iv(&g, 0);
    kn->out_idx[1] = iv(&g, 1);
    kl_program_add_kernel(g.p, kn);
    return g;
}

/* Y[n, oh, ow, c] = max over the 3x3 window (stride 2, pad 1) of X, -inf outside. */
static prog maxpool_nhwc(int64_t h, int64_t w, int64_t c) {
    prog g = new_prog();
    kl_arena *a = g.a;
    int64_t oh = (h + 2 - 3) / 2 + 1, ow = (w + 2 - 3) / 2 + 1;
    kl_buffer *x = add_input(&g, "x", 4, (int64_t[]){1, h, w, c});
    kl_buffer *y = add_output(&g, 4, (int64_t[]){1, oh, ow, c});
    kl_kernel *kn = kl_kernel_new(g.p, NULL, "maxpool");
    int64_t ext[6] = {1, oh, ow, c, 3, 3};
    memcpy(kn->extent, ext, sizeof ext);
    kn->n_par = 4;
    kn->n_loops = 6;
    kl_expr *ih = kl_e_addc(a, kl_e_add(a, kl_e_mulc(a, iv(&g, 1), 2), iv(&g, 4)), -1);
    kl_expr *iw = kl_e_addc(a, kl_e_add(a, kl_e_mulc(a, iv(&g, 2), 2), iv(&g, 5)), -1);
    kl_expr *xi[4] = {iv(&g, 0), ih, iw, iv(&g, 3)};
    kl_expr *inside = kl_e_and(a, kl_e_in_range(a, ih, h), kl_e_in_range(a, iw, w));
    kn->value = kl_e_select(a, inside, kl_e_load(a, x, xi),
                            kl_e_const_f(a, KL_F32, -__builtin_inf()));
    kn->reduce = KL_RED_MAX;
    kn->acc_dtype = KL_F32;
    kn->out = y;
    kn->out_idx = kl_alloc_array(a, 4, sizeof *kn->out_idx);
    for (int i = 0; i < 4; i++) kn->out_idx[i] = iv(&g, i);
    kl_program_add_kernel(g.p, kn);
    return g;
}

/* ---------------------------------------------------------------- running */

static void bind_inputs(prog *g, float **data) {
    for (int i = 0; i < g->n_in; i++) g->in[i]->host = data[i];
}

/* Interpret g with its inputs bound; returns the output (arena memory of g). */
static float *interpret(prog *g, float **inputs) {
    bind_inputs(g, inputs);
    for (int i = 0; i < g->p->buffers.n; i++) {
        kl_buffer *b = g->p->buffers.items[i];
        if (b->view_of || b->kind == KL_BUF_INPUT || b->kind == KL_BUF_CONST) continue;
        b->host = kl_alloc(g->a, (size_t)kl_buffer_bytes(b));
    }
    for (int i = 0; i < g->p->buffers.n; i++) {
        kl_buffer *b = g->p->buffers.items[i];
        if (b->view_of) b->host = b->view_of->host;
    }
    kl_diag d;
    kl_diag_init(&d, "test");
    bool ok = kl_interp_program(g->p, &d);
    if (!ok) kl_diag_print(&d, stderr);
    cr_assert(ok, "interpreter failed");
    kl_diag_free(&d);
    return g->out->host;
}

static void expect_close(const float *got, const float *want, int64_t n, const char *what) {
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabsf(got[i] - want[i]) <= 1e-4f + 1e-4f * fabsf(want[i]),
                  "%s: element %lld is %g, expected %g", what, (long long)i, got[i], want[i]);
}

static bool host_runs(const kl_target *t) {
    if (kl_target_is_emulated(t)) return false; /* Arm, RISC-V: compiled only (QEMU runs them in
                                                  the conformance and model tests) */
    __builtin_cpu_init();
    if (t->isa_level >= 4) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (t->isa_level >= 3) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return true;
}

/* Compile g for t into a shared library, run it on `inputs`, return its output. */
static float *run_compiled(prog *g, const kl_target *t, float **inputs, int64_t out_n) {
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(g->p, &d));
    char dir[] = "/tmp/kiln-test-tile-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[128];
    bool so = host_runs(t);
    snprintf(path, sizeof path, "%s/t.%s", dir, so ? "so" : "o");
    kl_codegen_opts o = {t, "t", 2, so ? KL_EMIT_SO : KL_EMIT_OBJ};
    bool ok = kl_codegen_llvm(g->p, NULL, &o, path, &d);
    if (!ok) kl_diag_print(&d, stderr);
    cr_assert(ok, "codegen failed for %s", t->name);
    kl_diag_free(&d);
    float *out = kl_alloc(g->a, (size_t)out_n * sizeof *out);
    if (so) {
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        cr_assert(lib, "dlopen: %s", dlerror());
        const kiln_model *m = dlsym(lib, "t_model");
        cr_assert(m);
        void *ws = aligned_alloc(64, (size_t)(m->workspace_size + 64) / 64 * 64);
        void *const outs[1] = {out};
        cr_assert_eq(m->run((const void *const *)inputs, outs, ws), KILN_OK);
        free(ws);
        dlclose(lib);
    } else {
        out = NULL;
    }
    unlink(path);
    rmdir(dir);
    return out;
}

/* Whether some kernel of p has the block the pass should give it. */
static bool has_block(const kl_program *p, bool with_unroll) {
    for (int i = 0; i < p->kernels.n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        if (k->n_block == 0 || k->kind[k->n_par - 1] != KL_LOOP_VECTOR) continue;
        if (!with_unroll || (k->n_block >= 2 && k->kind[k->n_par - 2] == KL_LOOP_UNROLL))
            return true;
    }
    return false;
}

static bool expr_has_select(const kl_expr *e) {
    if (!e) return false;
    return e->kind == KL_E_SELECT || expr_has_select(e->a) || expr_has_select(e->b) ||
           expr_has_select(e->c);
}

/* Whether the largest blocked kernel (the interior) is free of selects. */
static bool interior_unguarded(const kl_program *p) {
    const kl_kernel *best = NULL;
    int64_t best_n = 0;
    for (int i = 0; i < p->kernels.n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        int64_t n = 1;
        for (int l = 0; l < k->n_par; l++) n *= k->extent[l];
        if (k->n_block && n > best_n) {
            best = k;
            best_n = n;
        }
    }
    return best && !expr_has_select(best->value);
}

typedef prog (*maker)(void);

static int count_micro(const kl_program *p) {
    int n = 0;
    for (int i = 0; i < p->kernels.n; i++) n += ((const kl_kernel *)p->kernels.items[i])->micro != NULL;
    return n;
}

/* The whole check for one program shape on one target and micro-kernel policy; returns how
 * many kernels got a micro-kernel. */
static int check_tiled_with(maker make, const kl_target *t, kl_microkernels policy,
                            bool expect_unroll, bool padded);
static bool require_block = true;

static int check_tiled_with(maker make, const kl_target *t, kl_microkernels policy,
                            bool expect_unroll, bool padded) {
    prog ref = make();
    float *inputs[4];
    for (int i = 0; i < ref.n_in; i++)
        inputs[i] = random_floats(ref.a, kl_shape_numel(&ref.in[i]->shape), 100u + (unsigned)i);
    int64_t n = kl_shape_numel(&ref.out->shape);
    const float *want = interpret(&ref, inputs);

    prog g = make();
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kpass_tile(g.p, &(kl_kernel_opts){t, policy}, &d));
    kl_diag_free(&d);
    cr_assert(!require_block || has_block(g.p, expect_unroll), "%s: no register block", t->name);
    int micro = count_micro(g.p);
    if (padded) cr_assert(interior_unguarded(g.p), "%s: padding test left in the interior", t->name);
    expect_close(interpret(&g, inputs), want, n, "tiled, interpreted");
    float *got = run_compiled(&g, t, inputs, n);
    if (got) expect_close(got, want, n, t->name);
    kl_arena_free(g.a);
    kl_arena_free(ref.a);
    return micro;
}

static void check_tiled(maker make, const kl_target *t, bool expect_unroll, bool padded) {
    cr_assert_eq(check_tiled_with(make, t, KL_MICRO_IR, expect_unroll, padded), 0);
}

static void check_all_targets(maker make, bool expect_unroll, bool padded) {
    const char *names[] = {"x86-64", "x86-64-v3", "x86-64-v4"};
    for (int i = 0; i < 3; i++) check_tiled(make, kl_target_find(names[i]), expect_unroll, padded);
}

/* ---------------------------------------------------------------- tests */

static prog conv_3x3_pad(void) { return conv_nhwc(9, 11, 5, 40, 3, 1, 1, 1); }
static prog conv_3x3_stride2(void) { return conv_nhwc(10, 13, 3, 20, 3, 2, 1, 1); }
static prog conv_1x1_wide(void) { return conv_nhwc(4, 30, 16, 72, 1, 1, 0, 1); }
static prog depthwise(void) { return conv_nhwc(8, 9, 24, 24, 3, 1, 1, 24); }
static prog pool(void) { return maxpool_nhwc(9, 12, 20); }
static prog mm_odd(void) { return matmul(13, 37, 45); }
static prog gemv(void) { return matmul(1, 50, 100); }

Test(tile, conv_padded_interior_is_blocked) { check_all_targets(conv_3x3_pad, true, true); }
Test(tile, conv_strided) { check_all_targets(conv_3x3_stride2, true, true); }
Test(tile, conv_1x1_with_remainders) { check_all_targets(conv_1x1_wide, true, false); }
Test(tile, depthwise_vector_loads) { check_all_targets(depthwise, true, true); }
Test(tile, max_pool) { check_all_targets(pool, true, true); }
Test(tile, integer_sums) { check_all_targets(conv_int32, true, true); }
/* Baseline x86-64 (4 lanes) vectorizes the 2-column border regions, where the test differs
 * between lanes; wider targets leave them scalar, and must still be right. */
Test(tile, padding_test_differs_between_lanes) {
    check_tiled(depthwise_nchw, kl_target_find("x86-64"), true, false);
    require_block = false;
    check_all_targets(depthwise_nchw, true, false);
}
Test(tile, matmul_odd_extents_and_epilogue) { check_all_targets(mm_odd, true, false); }
Test(tile, gemv_vectors_only) { check_all_targets(gemv, false, false); }

/* The schedule the pass chose must fit the target's registers (NEON's 32, Helium's 8 too). */
Test(tile, block_fits_registers) {
    const char *names[] = {"x86-64", "x86-64-v3", "x86-64-v4", "aarch64-linux",
                           "riscv64-linux-v", "cortex-m55"};
    for (int i = 0; i < 6; i++) {
        const kl_target *t = kl_target_find(names[i]);
        prog g = conv_3x3_pad();
        kl_diag d;
        kl_diag_init(&d, "test");
        cr_assert(kpass_tile(g.p, &(kl_kernel_opts){t, KL_MICRO_IR}, &d));
        kl_diag_free(&d);
        for (int j = 0; j < g.p->kernels.n; j++) {
            const kl_kernel *k = g.p->kernels.items[j];
            int64_t acc = 1, vectors = 1;
            for (int l = k->n_par - k->n_block; l < k->n_par; l++) {
                int64_t n = k->kind[l] == KL_LOOP_VECTOR ? (k->extent[l] + k->lanes - 1) / k->lanes
                                                         : k->extent[l];
                acc *= n;
                if (k->kind[l] == KL_LOOP_VECTOR && k->n_block > 1) vectors = n;
            }
            /* accumulators, the operand vectors reused across the unrolled copies (none
             * without an UNROLL loop) and a broadcast */
            cr_assert(acc + vectors + 1 <= t->vector_registers, "%s: %lld accumulators",
                      t->name, (long long)acc);
            if (k->n_block) cr_assert_eq(k->lanes, t->vector_bits / 32);
        }
        kl_arena_free(g.a);
    }
}

/* libxsmm micro-kernels where the block is a plain GEMM (AVX2 and AVX-512 targets only), with
 * the same numbers; the padded convolution's borders keep the register block. */
static void check_micro(maker make, bool expect_unroll, bool padded) {
    cr_assert_eq(check_tiled_with(make, kl_target_find("x86-64"), KL_MICRO_LIBXSMM, expect_unroll,
                                  padded), 0, "no micro-kernels for baseline x86-64");
    const char *names[] = {"x86-64-v3", "x86-64-v4"};
    for (int i = 0; i < 2; i++)
        cr_assert_gt(check_tiled_with(make, kl_target_find(names[i]), KL_MICRO_LIBXSMM,
                                      expect_unroll, padded), 0, "%s: no micro-kernel", names[i]);
}

Test(tile, micro_conv_1x1) { check_micro(conv_1x1_wide, true, false); }
Test(tile, micro_conv_padded) { check_micro(conv_3x3_pad, true, true); }
Test(tile, micro_matmul) { check_micro(mm_odd, true, false); }
Test(tile, micro_gemv) { check_micro(gemv, false, false); }

/* A contraction's remainder kernels (here the last pixel of each 7-pixel row, and the
 * padded borders) are blocked differently from its main kernel, but read the main kernel's
 * packed weights through their own indices: the weights are held once, not once per block
 * shape (resnet18's layer4 held each 9.4 MB weight twice at x86-64). */
static prog conv_7x7_remainders(void) { return conv_nhwc(9, 9, 8, 64, 3, 1, 0, 1); }

static int64_t const_bytes(const kl_program *p, const char *prefix) {
    int64_t bytes = 0;
    for (int i = 0; i < p->buffers.n; i++) {
        const kl_buffer *b = p->buffers.items[i];
        if (b->kind == KL_BUF_CONST && strncmp(b->name, prefix, strlen(prefix)) == 0 &&
            strstr(b->name, "_packed"))
            bytes += kl_buffer_bytes(b);
    }
    return bytes;
}

Test(tile, remainders_share_packed_weights) {
    const char *names[] = {"x86-64", "x86-64-v3"};
    for (int i = 0; i < 2; i++) {
        const kl_target *t = kl_target_find(names[i]);
        check_tiled(conv_7x7_remainders, t, false, false);
        prog g = conv_7x7_remainders();
        int64_t weight_bytes = 64 * 8 * 3 * 3 * 4;
        kl_diag d;
        kl_diag_init(&d, "test");
        cr_assert(kpass_tile(g.p, &(kl_kernel_opts){t, KL_MICRO_IR}, &d));
        kl_diag_free(&d);
        int pieces = 0;
        for (int j = 0; j < g.p->kernels.n; j++)
            pieces += ((const kl_kernel *)g.p->kernels.items[j])->n_block > 0;
        cr_assert_gt(pieces, 1, "%s: no remainder or border kernel to share with", names[i]);
        cr_assert_leq(const_bytes(g.p, "w"), weight_bytes, "%s: %lld bytes of packed weights",
                      names[i], (long long)const_bytes(g.p, "w"));
        kl_arena_free(g.a);
    }
}

/* A contraction whose weights outgrow L2 (here 1.2 MB for a 1 MB L2) reads each panel of
 * them (a block of output channels) once per output row. Its main kernel asks the cache for
 * the next panel while it works on the current one: over the rows and reduction steps of
 * panel i0 the prefetched elements cover panel i0 + 1 with no gap of a cache line, and go no
 * further than the prefetch's own stride past it. It then keeps the jammed block (a
 * micro-kernel has no room for the hint), and its numbers stay right. Small weights get none. */
static prog conv_large_weights(void) { return conv_nhwc(6, 6, 256, 128, 3, 1, 0, 1); }

static const kl_kernel *heaviest_blocked(const kl_program *p) {
    const kl_kernel *best = NULL;
    for (int i = 0; i < p->kernels.n; i++) {
        const kl_kernel *k = p->kernels.items[i];
        if (k->n_block && (!best || kl_kernel_iterations(k) > kl_kernel_iterations(best))) best = k;
    }
    return best;
}

/* prefetched offsets over every point of loops [1, n_loops) outside the block, at i0 = 0 */
static int64_t *prefetched_offsets(const kl_kernel *k, kl_affine *at, int64_t *n) {
    int64_t count = 1;
    for (int l = 1; l < k->n_loops; l++)
        if (l < k->n_par - k->n_block || l >= k->n_par) count *= k->extent[l];
    int64_t *v = malloc((size_t)count * sizeof *v);
    for (int64_t i = 0; i < count; i++) {
        int64_t rest = i, off = at->c;
        for (int l = k->n_loops - 1; l >= 1; l--) {
            if (l >= k->n_par - k->n_block && l < k->n_par) continue;
            off += at->coef[l] * (rest % k->extent[l]);
            rest /= k->extent[l];
        }
        v[i] = off;
    }
    *n = count;
    return v;
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

Test(tile, large_weights_prefetch_the_next_panel) {
    const kl_target *t = kl_target_find("x86-64-v4");
    check_tiled_with(conv_large_weights, t, KL_MICRO_AUTO, true, false);
    prog g = conv_large_weights();
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kpass_tile(g.p, &(kl_kernel_opts){t, KL_MICRO_AUTO}, &d));
    kl_diag_free(&d);
    const kl_kernel *k = heaviest_blocked(g.p);
    cr_assert(k && k->prefetch_at, "no prefetch in the main kernel");
    cr_assert(k->micro == NULL, "a micro-kernel beside the prefetch");
    kl_affine at, w;
    cr_assert(kl_affine_of(k->prefetch_at, &at));
    const kl_expr *load = k->value->b; /* x * w: the packed weights */
    cr_assert(load->kind == KL_E_LOAD && load->buf == k->prefetch_buf);
    cr_assert(kl_affine_offset(load->buf, load->idx, &w));
    int64_t panel = w.coef[0], n;
    cr_assert_eq(at.coef[0], panel);
    int64_t *off = prefetched_offsets(k, &at, &n);
    qsort(off, (size_t)n, sizeof *off, cmp_i64);
    int64_t line = 64 / 4;
    cr_assert_leq(off[0], w.c + panel + line, "first prefetch at %lld", (long long)off[0]);
    cr_assert_geq(off[n - 1], w.c + 2 * panel - line, "last prefetch at %lld", (long long)off[n - 1]);
    for (int64_t i = 1; i < n; i++)
        cr_assert_leq(off[i] - off[i - 1], line, "a gap after element %lld", (long long)off[i - 1]);
    free(off);
    kl_arena_free(g.a);

    prog small = conv_3x3_pad();
    kl_diag_init(&d, "test");
    cr_assert(kpass_tile(small.p, &(kl_kernel_opts){t, KL_MICRO_AUTO}, &d));
    kl_diag_free(&d);
    for (int i = 0; i < small.p->kernels.n; i++)
        cr_assert(((const kl_kernel *)small.p->kernels.items[i])->prefetch_at == NULL,
                  "a prefetch for weights the cache holds");
    kl_arena_free(small.a);
}

/* ---------------------------------------------------------------- edge targets */

/* NEON, RVV (as 128-bit vectors) and Helium get register blocks of 4 float lanes, right by the
 * interpreter and compiled for the target (QEMU runs the code in the conformance tests). */
Test(tile, simd_edge_targets_are_blocked) {
    const char *names[] = {"aarch64-linux", "riscv64-linux-v", "cortex-m55"};
    for (int i = 0; i < 3; i++) {
        check_tiled(conv_3x3_pad, kl_target_find(names[i]), false, true);
        check_tiled(mm_odd, kl_target_find(names[i]), false, false);
    }
}

/* Targets without SIMD for floats (vector width 0: one lane) get no register blocks, packed
 * weights or micro-kernels. Splitting off the padded borders still happens when they optimize
 * for speed: an interior without bounds tests pays on scalar code too (for size the driver
 * skips the pass). */
Test(tile, no_simd_no_blocks) {
    const char *names[] = {"riscv64-linux", "cortex-m4", "cortex-m7", "cortex-m0plus", "riscv32",
                           "riscv32-f"};
    for (int i = 0; i < 6; i++) {
        const kl_target *t = kl_target_find(names[i]);
        cr_assert_eq(kl_target_lanes(t, KL_F32), 1, "%s", names[i]);
        prog g = conv_3x3_pad();
        int consts = g.p->buffers.n;
        kl_diag d;
        kl_diag_init(&d, "test");
        cr_assert(kpass_tile(g.p, &(kl_kernel_opts){t, KL_MICRO_AUTO}, &d));
        kl_diag_free(&d);
        cr_assert_eq(g.p->buffers.n, consts, "%s: weights packed", names[i]);
        for (int j = 0; j < g.p->kernels.n; j++) {
            const kl_kernel *k = g.p->kernels.items[j];
            cr_assert_eq(k->n_block, 0, "%s: a register block", names[i]);
            cr_assert(k->micro == NULL, "%s: a micro-kernel", names[i]);
        }
        kl_arena_free(g.a);
    }
}
