/*
 * regex_nfa.c — a kl_re tree as an NFA over bytes (Thompson's construction).
 *
 * The matcher reads a string's bytes, so a character of the tree (a set of code points) becomes
 * the UTF-8 byte sequences that encode it: each code point range is cut into pieces whose
 * encodings run over one byte range per position (U+0800-U+FFFF is E0-EF 80-BF 80-BF only once
 * the pieces whose first byte is E0 are cut off, whose second byte starts at A0). A string
 * that is not valid UTF-8 matches no character there, as in RE2.
 *
 * The NFA is built back to front: compiling a node takes the state that follows it and returns
 * the state that starts it, so a concatenation needs no patch lists and a loop is a SPLIT whose
 * body leads back to it. Repeats with counts are copies of their body.
 */
#include <string.h>

#include "regex.h"

typedef struct builder {
    kl_arena *a;
    kl_nfa *nfa;
    const char *why; /* set once the NFA would pass KL_REGEX_MAX_NFA states */
} builder;

/* A new state (index); 0 once the NFA is too large (building then only unwinds). */
static int new_state(builder *b, kl_nfa_kind kind, int out) {
    kl_nfa *nfa = b->nfa;
    if (b->why) return 0;
    if (nfa->n == KL_REGEX_MAX_NFA) {
        b->why = kl_sprintf(b->a, "the pattern needs more than %d NFA states", KL_REGEX_MAX_NFA);
        return 0;
    }
    if (nfa->n == nfa->cap) {
        int cap = nfa->cap ? 2 * nfa->cap : 64;
        kl_nfa_state *states = kl_alloc_array(b->a, (size_t)cap, sizeof *states);
        if (nfa->n) memcpy(states, nfa->states, (size_t)nfa->n * sizeof *states);
        nfa->states = states;
        nfa->cap = cap;
    }
    kl_nfa_state *s = &nfa->states[nfa->n];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->out = out;
    s->out1 = -1;
    return nfa->n++;
}

static int split(builder *b, int x, int y) {
    int s = new_state(b, KL_NFA_SPLIT, x);
    if (!b->why) b->nfa->states[s].out1 = y;
    return s;
}

/* x, or x or the alternatives built so far (`alt` < 0: none yet). */
static int either(builder *b, int x, int alt) { return alt < 0 ? x : split(b, x, alt); }

/* A BYTES state for bytes lo..hi. */
static int byte_range(builder *b, unsigned lo, unsigned hi, int out) {
    int s = new_state(b, KL_NFA_BYTES, out);
    if (b->why) return 0;
    for (unsigned c = lo; c <= hi; c++) b->nfa->states[s].bytes[c / 64] |= 1ull << (c % 64);
    return s;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

static int utf8_encode(uint32_t c, unsigned char *out) {
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        return 1;
    }
    int len = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    for (int i = len - 1; i > 0; i--, c >>= 6) out[i] = (unsigned char)(0x80 | (c & 0x3F));
    out[0] = (unsigned char)((0xF00u >> len) | c); /* 110xxxxx, 1110xxxx, 11110xxx */
    return len;
}

/* Where the code points of `lo`..`hi` go: single bytes into one set (one state for all the
 * ASCII of a class), longer sequences as chains of states joined into `alt`. */
typedef struct utf8_sink {
    uint64_t ascii[4];
    int alt;
    int next;
} utf8_sink;

static void utf8_range(builder *b, utf8_sink *sink, uint32_t lo, uint32_t hi) {
    static const uint32_t last_of_length[3] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++) /* first, pieces whose code points all have one length */
        if (lo <= last_of_length[i] && hi > last_of_length[i]) {
            utf8_range(b, sink, lo, last_of_length[i]);
            utf8_range(b, sink, last_of_length[i] + 1, hi);
            return;
        }
    if (hi < 0x80) {
        for (uint32_t c = lo; c <= hi; c++) sink->ascii[c / 64] |= 1ull << (c % 64);
        return;
    }
    /* then pieces where, for each count k of trailing bytes, lo and hi either agree above
     * them or span them entirely (lo's are all 80, hi's all BF): each position is a range */
    for (int k = 1; k < 4; k++) {
        uint32_t low_bits = (1u << (6 * k)) - 1;
        if ((lo & ~low_bits) == (hi & ~low_bits)) continue;
        if (lo & low_bits) {
            utf8_range(b, sink, lo, lo | low_bits);
            utf8_range(b, sink, (lo | low_bits) + 1, hi);
            return;
        }
        if ((hi & low_bits) != low_bits) {
            utf8_range(b, sink, lo, (hi & ~low_bits) - 1);
            utf8_range(b, sink, hi & ~low_bits, hi);
            return;
        }
    }
    unsigned char first[4], last[4];
    int len = utf8_encode(lo, first);
    utf8_encode(hi, last);
    int s = sink->next;
    for (int i = len - 1; i >= 0; i--) s = byte_range(b, first[i], last[i], s);
    sink->alt = either(b, s, sink->alt);
}

/* One character of `ranges` (an empty class: a state that no byte leaves). */
static int compile_chars(builder *b, const kl_re *re, int next) {
    utf8_sink sink = {.alt = -1, .next = next};
    for (int i = 0; i < re->n; i++) utf8_range(b, &sink, re->ranges[i].lo, re->ranges[i].hi);
    bool any_ascii = sink.ascii[0] | sink.ascii[1];
    if (any_ascii || sink.alt < 0) {
        int s = new_state(b, KL_NFA_BYTES, next);
        if (!b->why) memcpy(b->nfa->states[s].bytes, sink.ascii, sizeof sink.ascii);
        sink.alt = either(b, s, sink.alt);
    }
    return sink.alt;
}

/* ---- the tree --------------------------------------------------------------------------- */

static int compile(builder *b, const kl_re *re, int next);

/* x{min,max}: min copies, then max - min optional ones nested (x(x(x)?)?)?, or a loop. */
static int compile_repeat(builder *b, const kl_re *re, int next) {
    const kl_re *x = re->subs[0];
    int tail = next;
    if (re->max < 0) {
        int loop = split(b, -1, next);
        int body = compile(b, x, loop);
        if (b->why) return 0;
        b->nfa->states[loop].out = body;
        tail = loop;
    } else {
        for (int k = 0; k < re->max - re->min && !b->why; k++)
            tail = split(b, compile(b, x, tail), next);
    }
    for (int k = 0; k < re->min && !b->why; k++) tail = compile(b, x, tail);
    return tail;
}

static int compile(builder *b, const kl_re *re, int next) {
    if (b->why) return 0;
    switch (re->kind) {
    case KL_RE_EMPTY: return next;
    case KL_RE_CHARS: return compile_chars(b, re, next);
    case KL_RE_ANY_BYTE: return byte_range(b, 0, 255, next);
    case KL_RE_ASSERT: {
        int s = new_state(b, KL_NFA_ASSERT, next);
        if (!b->why) b->nfa->states[s].assertion = re->assertion;
        b->nfa->asserts |= 1u << re->assertion;
        return s;
    }
    case KL_RE_CONCAT:
        for (int i = re->n - 1; i >= 0; i--) next = compile(b, re->subs[i], next);
        return next;
    case KL_RE_ALTERNATE: {
        int alt = -1;
        for (int i = re->n - 1; i >= 0; i--) alt = either(b, compile(b, re->subs[i], next), alt);
        return alt;
    }
    case KL_RE_REPEAT: return compile_repeat(b, re, next);
    }
    return next;
}

bool kl_nfa_build(kl_arena *a, const kl_re *re, kl_nfa *out, const char **why) {
    memset(out, 0, sizeof *out);
    builder b = {.a = a, .nfa = out};
    int match = new_state(&b, KL_NFA_MATCH, -1);
    out->start = compile(&b, re, match);
    *why = b.why;
    return !b.why;
}
