/*
 * regex_dfa.c — an NFA over bytes made deterministic (subset construction), as the table that
 * runtime-min/kiln_regex.h walks; and kl_regex_compile, the whole way from a pattern.
 *
 * A DFA state is a set of NFA states: the ones that read a byte (BYTES), MATCH, and the
 * assertions that look at the next byte (end of text or line, \b, \B), which cannot be decided
 * until that byte is read. The assertions that only look back (^, \A) are decided as soon as a
 * set is formed. Deciding \b on a transition needs to know whether the byte before was a word
 * character, and a look-back assertion reached through it needs to know whether that byte was
 * \n or there was none: the state carries those facts (`context`), as RE2's DFA does, but only
 * while its set holds an assertion (otherwise they change nothing and would only split states).
 *
 * Transition on byte c: decide the set's pending assertions with c as the next byte, take the
 * BYTES states that accept c, and close over SPLITs and decidable assertions behind them. A
 * state accepts when deciding its assertions with "end of text" as the next byte reaches MATCH.
 * Bytes that no state and no assertion tells apart share one class, so a table row has a
 * column per class rather than per byte.
 */
#include <stdlib.h>
#include <string.h>

#include "kiln_regex.h"
#include "regex.h"

/* What is known of a position: the byte before it, and (while deciding) the byte after it. */
enum { AT_BEGIN = 1, AFTER_WORD = 2, AFTER_NEWLINE = 4 };
enum { NEXT_UNKNOWN = -1, NEXT_END = 256 };

typedef struct position {
    unsigned context; /* AT_BEGIN | AFTER_WORD | AFTER_NEWLINE */
    int next;         /* a byte, NEXT_END, or NEXT_UNKNOWN */
} position;

typedef struct dstate {
    int *set; /* NFA states, sorted */
    int n;
    bool pending;     /* the set holds an assertion that the next byte decides */
    unsigned context; /* 0 unless pending */
} dstate;

typedef struct dfa_builder {
    kl_arena *a;
    const kl_nfa *nfa;
    const char *why;
    unsigned context_mask; /* the facts some assertion of the NFA needs */
    /* byte classes */
    uint8_t class_of[256];
    int n_classes;
    int first_byte[256]; /* a byte of each class */
    /* the states found so far, and where each (set, context) is: a hash table of indices */
    dstate *states;
    int n_states, cap_states;
    int *slots; /* state index + 1; 0 = free */
    int n_slots;
    /* transitions, a row of n_classes per state, and whether each state accepts */
    uint16_t *next;
    uint8_t *accepts;
    /* closure scratch: a mark per NFA state (== stamp: visited), a stack, three sets */
    unsigned *mark, stamp;
    int *stack, *expanded, *seeds, *reached;
    int64_t work;
} dfa_builder;

static bool is_word_byte(int c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           c == '_';
}

/* 1 or 0, or -1 when the assertion needs the next byte and it is not known yet. */
static int decide(kl_re_assert what, const position *p) {
    bool begin = p->context & AT_BEGIN;
    if (what == KL_RE_BEGIN_TEXT) return begin;
    if (what == KL_RE_BEGIN_LINE) return begin || (p->context & AFTER_NEWLINE);
    if (p->next == NEXT_UNKNOWN) return -1;
    bool end = p->next == NEXT_END;
    bool word_boundary = !(p->context & AFTER_WORD) != !(!end && is_word_byte(p->next));
    switch (what) {
    case KL_RE_END_TEXT: return end;
    case KL_RE_END_LINE: return end || p->next == '\n';
    case KL_RE_WORD_BOUNDARY: return word_boundary;
    case KL_RE_NOT_WORD_BOUNDARY: return !word_boundary;
    default: return 0;
    }
}

/* The states reachable from `from` without reading a byte, at position p: SPLITs and the
 * assertions that hold are passed through; BYTES, MATCH and undecided assertions are kept
 * (into `out`, in the order met). Returns how many; counts the work. */
static int closure(dfa_builder *b, const int *from, int n_from, const position *p, int *out) {
    const kl_nfa_state *st = b->nfa->states;
    int n_out = 0, top = 0;
    b->stamp++;
    for (int i = n_from - 1; i >= 0; i--) b->stack[top++] = from[i];
    while (top) {
        int s = b->stack[--top];
        if (s < 0 || b->mark[s] == b->stamp) continue;
        b->mark[s] = b->stamp;
        b->work++;
        switch (st[s].kind) {
        case KL_NFA_SPLIT:
            b->stack[top++] = st[s].out1;
            b->stack[top++] = st[s].out;
            break;
        case KL_NFA_ASSERT: {
            int holds = decide(st[s].assertion, p);
            if (holds > 0) b->stack[top++] = st[s].out;
            else if (holds < 0) out[n_out++] = s;
            break;
        }
        default: out[n_out++] = s; break;
        }
    }
    return n_out;
}

/* ---- byte classes ----------------------------------------------------------------------- */

static bool has_byte(const uint64_t *set, int c) { return set[c / 64] >> (c % 64) & 1; }

/* Splits every class into its bytes in `set` and those not. */
static void refine(dfa_builder *b, const uint64_t *set) {
    int renumber[512];
    memset(renumber, -1, sizeof renumber);
    int n = 0;
    for (int c = 0; c < 256; c++) {
        int key = b->class_of[c] * 2 + has_byte(set, c);
        if (renumber[key] < 0) renumber[key] = n++;
        b->class_of[c] = (uint8_t)renumber[key];
    }
    b->n_classes = n;
}

/* Splits the classes by whether `in` holds for a byte. */
static void refine_by(dfa_builder *b, bool (*in)(int c)) {
    uint64_t set[4] = {0};
    for (int c = 0; c < 256; c++)
        if (in(c)) set[c / 64] |= 1ull << (c % 64);
    refine(b, set);
}

static bool is_newline(int c) { return c == '\n'; }

static void byte_classes(dfa_builder *b) {
    b->n_classes = 1;
    for (int s = 0; s < b->nfa->n; s++)
        if (b->nfa->states[s].kind == KL_NFA_BYTES) refine(b, b->nfa->states[s].bytes);
    if (b->context_mask & AFTER_WORD) refine_by(b, is_word_byte);
    if (b->context_mask & AFTER_NEWLINE) refine_by(b, is_newline);
    for (int c = 255; c >= 0; c--) b->first_byte[b->class_of[c]] = c;
}

/* ---- the set of states ------------------------------------------------------------------ */

static uint32_t hash_state(const int *set, int n, unsigned context) {
    uint32_t h = 2166136261u ^ context;
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)set[i]) * 16777619u;
    return h;
}

static bool same_state(const dstate *d, const int *set, int n, unsigned context) {
    return d->n == n && d->context == context && !memcmp(d->set, set, (size_t)n * sizeof *set);
}

static void grow_slots(dfa_builder *b) {
    int n = b->n_slots ? 2 * b->n_slots : 256;
    int *slots = kl_alloc_array(b->a, (size_t)n, sizeof *slots);
    for (int i = 0; i < b->n_states; i++) {
        const dstate *d = &b->states[i];
        uint32_t h = hash_state(d->set, d->n, d->context) & (uint32_t)(n - 1);
        while (slots[h]) h = (h + 1) & (uint32_t)(n - 1);
        slots[h] = i + 1;
    }
    b->slots = slots;
    b->n_slots = n;
}

static void grow_states(dfa_builder *b) {
    int cap = b->cap_states ? 2 * b->cap_states : 64;
    dstate *states = kl_alloc_array(b->a, (size_t)cap, sizeof *states);
    uint16_t *next = kl_alloc_array(b->a, (size_t)cap * (size_t)b->n_classes, sizeof *next);
    uint8_t *accepts = kl_alloc_array(b->a, (size_t)cap, sizeof *accepts);
    if (b->n_states) {
        memcpy(states, b->states, (size_t)b->n_states * sizeof *states);
        memcpy(next, b->next, (size_t)b->n_states * (size_t)b->n_classes * sizeof *next);
        memcpy(accepts, b->accepts, (size_t)b->n_states);
    }
    b->states = states;
    b->next = next;
    b->accepts = accepts;
    b->cap_states = cap;
}

static int by_value(const void *x, const void *y) {
    int a = *(const int *)x, c = *(const int *)y;
    return a < c ? -1 : a > c;
}

/* The DFA state of `set` (any order; sorted here) at a position whose context is `context`:
 * found, or added; -1 past the limits. */
static int state_of(dfa_builder *b, int *set, int n, unsigned context) {
    qsort(set, (size_t)n, sizeof *set, by_value);
    bool pending = false; /* an assertion that the next byte decides */
    for (int i = 0; i < n && !pending; i++)
        pending = b->nfa->states[set[i]].kind == KL_NFA_ASSERT;
    context = pending ? context & b->context_mask : 0;
    if (2 * (b->n_states + 1) > b->n_slots) grow_slots(b);
    uint32_t h = hash_state(set, n, context) & (uint32_t)(b->n_slots - 1);
    for (; b->slots[h]; h = (h + 1) & (uint32_t)(b->n_slots - 1))
        if (same_state(&b->states[b->slots[h] - 1], set, n, context)) return b->slots[h] - 1;
    if (b->n_states == KL_REGEX_MAX_STATES) {
        b->why = kl_sprintf(b->a, "the pattern's DFA needs more than %d states (kiln's limit)",
                            KL_REGEX_MAX_STATES);
        return -1;
    }
    if (b->n_states == b->cap_states) grow_states(b);
    dstate *d = &b->states[b->n_states];
    d->set = kl_alloc_array(b->a, n ? (size_t)n : 1, sizeof *set);
    memcpy(d->set, set, (size_t)n * sizeof *set);
    d->n = n;
    d->pending = pending;
    d->context = context;
    b->work += n;
    b->slots[h] = b->n_states + 1;
    return b->n_states++;
}

/* ---- transitions ------------------------------------------------------------------------ */

/* The state reached from state s by byte c; -1 past the limits. */
static int step(dfa_builder *b, int s, int c) {
    const kl_nfa_state *st = b->nfa->states;
    const dstate *from = &b->states[s];
    const int *candidates = from->set; /* the states that may read c */
    int n = from->n;
    if (from->pending) { /* assertions the next byte decides: decide them */
        position here = {from->context, c};
        n = closure(b, from->set, from->n, &here, b->expanded);
        candidates = b->expanded;
    }
    int n_seeds = 0;
    for (int i = 0; i < n; i++)
        if (st[candidates[i]].kind == KL_NFA_BYTES && has_byte(st[candidates[i]].bytes, c))
            b->seeds[n_seeds++] = st[candidates[i]].out;
    b->work += n;
    position after = {(is_word_byte(c) ? AFTER_WORD : 0u) | (c == '\n' ? AFTER_NEWLINE : 0u),
                      NEXT_UNKNOWN};
    int m = closure(b, b->seeds, n_seeds, &after, b->reached);
    return m ? state_of(b, b->reached, m, after.context) : 0; /* 0: the dead state */
}

/* Whether the whole string matches when it ends in state s. */
static bool accepts_at_end(dfa_builder *b, int s) {
    position end = {b->states[s].context, NEXT_END};
    int n = closure(b, b->states[s].set, b->states[s].n, &end, b->expanded);
    for (int i = 0; i < n; i++)
        if (b->nfa->states[b->expanded[i]].kind == KL_NFA_MATCH) return true;
    return false;
}

static bool too_much_work(dfa_builder *b) {
    if (b->work <= KL_REGEX_MAX_WORK) return false;
    b->why = kl_sprintf(b->a, "the pattern's DFA takes more than %d steps to build (kiln's "
                        "limit)", KL_REGEX_MAX_WORK);
    return true;
}

/* State 0 is the dead one (the empty set: no match from there, never left), then the start
 * and every state reached from it, in the order found. */
static bool explore(dfa_builder *b, int *start) {
    int none[1];
    state_of(b, none, 0, 0);
    position begin = {AT_BEGIN, NEXT_UNKNOWN};
    int n = closure(b, &b->nfa->start, 1, &begin, b->reached);
    *start = n ? state_of(b, b->reached, n, AT_BEGIN) : 0;
    for (int s = 1; s < b->n_states; s++) {
        b->accepts[s] = accepts_at_end(b, s);
        for (int k = 0; k < b->n_classes; k++) {
            int t = step(b, s, b->first_byte[k]);
            if (t < 0 || too_much_work(b)) return false;
            b->next[(size_t)s * (size_t)b->n_classes + (size_t)k] = (uint16_t)t;
        }
    }
    return true;
}

static void write_table(const dfa_builder *b, int start, kl_arena *a, kl_regex_table *out) {
    int64_t s = b->n_states, c = b->n_classes;
    out->n_words = KILN_REGEX_NEXT + s + s * c;
    out->words = kl_alloc_array(a, (size_t)out->n_words, sizeof *out->words);
    out->words[KILN_REGEX_N_STATES] = (uint16_t)s;
    out->words[KILN_REGEX_N_CLASSES] = (uint16_t)c;
    out->words[KILN_REGEX_START] = (uint16_t)start;
    for (int i = 0; i < 256; i++) out->words[KILN_REGEX_CLASS_OF + i] = b->class_of[i];
    for (int64_t i = 0; i < s; i++) out->words[KILN_REGEX_NEXT + i] = b->accepts[i];
    memcpy(out->words + KILN_REGEX_NEXT + s, b->next, (size_t)(s * c) * sizeof *b->next);
    out->n_states = (int)s;
    out->n_classes = (int)c;
}

static unsigned context_needed(unsigned asserts) {
    unsigned m = 0;
    if (asserts & (1u << KL_RE_BEGIN_TEXT | 1u << KL_RE_BEGIN_LINE)) m |= AT_BEGIN;
    if (asserts & (1u << KL_RE_BEGIN_LINE | 1u << KL_RE_END_LINE)) m |= AFTER_NEWLINE;
    if (asserts & (1u << KL_RE_WORD_BOUNDARY | 1u << KL_RE_NOT_WORD_BOUNDARY)) m |= AFTER_WORD;
    return m;
}

bool kl_dfa_build(kl_arena *a, const kl_nfa *nfa, kl_regex_table *out, const char **why) {
    dfa_builder b = {.a = a, .nfa = nfa, .context_mask = context_needed(nfa->asserts)};
    size_t n = (size_t)nfa->n;
    b.mark = kl_alloc_array(a, n, sizeof *b.mark);
    b.stack = kl_alloc_array(a, 3 * n + 2, sizeof *b.stack); /* pushes: the seeds, 2 a state */
    b.expanded = kl_alloc_array(a, n, sizeof *b.expanded);
    b.seeds = kl_alloc_array(a, n, sizeof *b.seeds);
    b.reached = kl_alloc_array(a, n, sizeof *b.reached);
    byte_classes(&b);
    int start = 0;
    bool ok = explore(&b, &start);
    if (ok) write_table(&b, start, a, out);
    *why = b.why;
    return ok;
}

bool kl_regex_compile(kl_arena *a, const char *pattern, kl_regex_table *out, const char **why) {
    kl_arena *scratch = kl_arena_new();
    kl_nfa nfa;
    kl_regex_table table;
    const char *fault = NULL;
    kl_re *re = kl_re_parse(scratch, pattern, &fault);
    bool ok = re && kl_nfa_build(scratch, re, &nfa, &fault) &&
              kl_dfa_build(scratch, &nfa, &table, &fault);
    if (ok) {
        *out = table;
        out->words = kl_alloc_array(a, (size_t)table.n_words, sizeof *out->words);
        memcpy(out->words, table.words, (size_t)table.n_words * sizeof *out->words);
    }
    *why = ok ? NULL : kl_strdup(a, fault);
    kl_arena_free(scratch);
    return ok;
}
