/*
 * dump.c — kernel IR as text, in the notation of DESIGN.md:
 *
 *   kernel k3_conv  (node 'conv1' Conv)
 *     for i0<1, i1<64, i2<112, i3<112:
 *       acc = 0 (sum)
 *       for i4<3, i5<7, i6<7:
 *         acc += ...
 *       y[i0,i1,i2,i3] = acc
 */
#include "kl.h"

static const char *const unop_names[] = {
    [KL_NEG] = "neg", [KL_ABS] = "abs", [KL_SQRT] = "sqrt", [KL_EXP] = "exp", [KL_LOG] = "log",
    [KL_TANH] = "tanh", [KL_ERF] = "erf", [KL_FLOOR] = "floor", [KL_CEIL] = "ceil",
    [KL_ROUND] = "round", [KL_NOT] = "not", [KL_SIGMOID] = "sigmoid", [KL_RECIP] = "recip",
    [KL_SIN] = "sin", [KL_COS] = "cos",
};
static const char *const binop_names[] = {
    [KL_ADD] = "+", [KL_SUB] = "-", [KL_MUL] = "*", [KL_DIV] = "/", [KL_MIN] = "min",
    [KL_MAX] = "max", [KL_POW] = "pow", [KL_MOD] = "mod", [KL_FMOD] = "fmod", [KL_EQ] = "==",
    [KL_NE] = "!=", [KL_LT] = "<", [KL_LE] = "<=", [KL_GT] = ">", [KL_GE] = ">=", [KL_AND] = "&&",
    [KL_OR] = "||", [KL_XOR] = "^",
};
static const char *const reduce_names[] = {
    [KL_RED_NONE] = "none", [KL_RED_SUM] = "sum", [KL_RED_PROD] = "prod", [KL_RED_MAX] = "max",
    [KL_RED_MIN] = "min",
};

static void expr(const kl_expr *e, FILE *f) {
    if (!e) { /* only a broken kernel has one; the dump is how one finds it */
        fputs("<null>", f);
        return;
    }
    switch (e->kind) {
    case KL_E_CONST:
        if (kl_dtype_is_float(e->dtype)) fprintf(f, "%g", e->f);
        else fprintf(f, "%lld", (long long)e->i);
        break;
    case KL_E_IV: fprintf(f, "i%lld", (long long)e->i); break;
    case KL_E_ACC: fputs("acc", f); break;
    case KL_E_LOAD:
        fprintf(f, "%s[", e->buf->name);
        for (int i = 0; i < e->buf->shape.rank; i++) {
            if (i) fputs(",", f);
            expr(e->idx[i], f);
        }
        fputs("]", f);
        break;
    case KL_E_STRING: {
        static const char *const names[] = {"str_eq", "str_eq_nocase", "str_concat",
                                            "str_lower", "str_upper", "str_failed",
                                            "str_split_count", "str_split_piece",
                                            "str_regex_match"};
        fprintf(f, "%s(", names[e->op]);
        if (e->buf) fprintf(f, "%s%s", e->buf->name, e->a ? ", " : "");
        if (e->a) expr(e->a, f);
        if (e->b) {
            fputs(", ", f);
            expr(e->b, f);
        }
        if (e->op == KL_STR_SPLIT_COUNT || e->op == KL_STR_SPLIT_PIECE)
            fprintf(f, ", maxsplit %lld", (long long)e->i);
        if (e->c) {
            fputs(", ", f);
            expr(e->c, f);
        }
        fputs(")", f);
        break;
    }
    case KL_E_UNARY:
        fprintf(f, "%s(", unop_names[e->op]);
        expr(e->a, f);
        fputs(")", f);
        break;
    case KL_E_BINARY:
        if (e->op == KL_MIN || e->op == KL_MAX || e->op == KL_POW || e->op == KL_MOD ||
            e->op == KL_FMOD) {
            fprintf(f, "%s(", binop_names[e->op]);
            expr(e->a, f);
            fputs(", ", f);
            expr(e->b, f);
            fputs(")", f);
        } else {
            fputs("(", f);
            expr(e->a, f);
            fprintf(f, " %s ", binop_names[e->op]);
            expr(e->b, f);
            fputs(")", f);
        }
        break;
    case KL_E_SELECT:
        fputs("select(", f);
        expr(e->a, f);
        fputs(", ", f);
        expr(e->b, f);
        fputs(", ", f);
        expr(e->c, f);
        fputs(")", f);
        break;
    case KL_E_BITCAST:
        fprintf(f, "bits_as_%s(", kl_dtype_name(e->dtype));
        expr(e->a, f);
        fputs(")", f);
        break;
    case KL_E_CAST:
        fprintf(f, "%s(", kl_dtype_name(e->dtype));
        expr(e->a, f);
        if (e->op & KL_CAST_NO_SATURATE) fputs(", no_saturate", f);
        if (e->op & KL_CAST_ROUND_DOWN) fputs(", round_down", f);
        if (e->op & KL_CAST_ROUND_NEAREST) fputs(", round_nearest", f);
        fputs(")", f);
        break;
    }
}

/* i0<4, i1<7 unroll, i2<64 vector x16, i3<12 (run time: n[0]), ... (with the task loop marked
 * "tasks") */
static void loops(const kl_kernel *k, int lo, int hi, FILE *f) {
    for (int l = lo; l < hi; l++) {
        fprintf(f, "%si%d<%lld", l > lo ? ", " : "", l, (long long)k->extent[l]);
        if (k->extent_expr[l]) { /* the extent at run time (never above the one before) */
            fputs(" (run time: ", f);
            expr(k->extent_expr[l], f);
            fputc(')', f);
        }
        if (k->kind[l] == KL_LOOP_UNROLL) fputs(" unroll", f);
        if (k->kind[l] == KL_LOOP_VECTOR) fprintf(f, " vector x%d", k->lanes);
        if (l == k->task_loop) fputs(" tasks", f);
    }
}

void kl_kernel_dump(const kl_kernel *k, FILE *f) {
    fprintf(f, "kernel %s", k->name);
    if (k->node) fprintf(f, "  (node '%s' %s)", k->node->name, k->node->op_type);
    for (const kl_kernel_guard *g = k->guard; g; g = g->outer) /* skipped unless each holds */
        fprintf(f, " %s %s", g->when ? "if" : "unless", g->cond->name);
    fputs("\n", f);
    const char *ind = "  ";
    if (k->n_par) {
        fputs("  for ", f);
        loops(k, 0, k->n_par, f);
        fputs(":\n", f);
        ind = "    ";
    }
    if (k->reduce != KL_RED_NONE) {
        fprintf(f, "%sacc = ", ind);
        if (k->init) expr(k->init, f);
        else fputs("identity", f);
        fprintf(f, "  (%s, %s)\n%sfor ", reduce_names[k->reduce], kl_dtype_name(k->acc_dtype), ind);
        loops(k, k->n_par, k->n_loops, f);
        fprintf(f, ":\n%s  acc %s= ", ind, reduce_names[k->reduce]);
        expr(k->value, f);
        fputs("\n", f);
        if (k->prefetch_at) {
            fprintf(f, "%s  prefetch %s[", ind, k->prefetch_buf->name);
            expr(k->prefetch_at, f);
            fputs("]\n", f);
        }
    }
    fprintf(f, "%s%s[", ind, k->out->name);
    for (int i = 0; i < k->out->shape.rank; i++) {
        if (i) fputs(",", f);
        expr(k->out_idx[i], f);
    }
    fputs("] = ", f);
    if (k->result) expr(k->result, f);
    else if (k->reduce != KL_RED_NONE) fputs("acc", f);
    else expr(k->value, f);
    fputs("\n", f);
}

static const char *const kind_names[] = {"input", "output", "const", "ws"};

void kl_program_dump(const kl_program *p, FILE *f) {
    fprintf(f, "program: %d kernels, %d buffers, workspace %lld bytes (intermediates %lld)\n",
            p->kernels.n, p->buffers.n, (long long)p->workspace_size,
            (long long)p->intermediates_total);
    for (int i = 0; i < p->buffers.n; i++) {
        const kl_buffer *b = p->buffers.items[i];
        fprintf(f, "  buffer %s %s %s[", b->name, kind_names[b->kind], kl_dtype_name(b->dtype));
        for (int d = 0; d < b->shape.rank; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)b->shape.dim[d]);
        fputs("]", f);
        if (b->view_of) fprintf(f, " view of %s", b->view_of->name);
        else if (b->kind == KL_BUF_WORKSPACE)
            fprintf(f, " ws+%lld live %d..%d", (long long)b->offset, b->first_kernel, b->last_kernel);
        fputs("\n", f);
    }
    for (int i = 0; i < p->kernels.n; i++) kl_kernel_dump(p->kernels.items[i], f);
}
