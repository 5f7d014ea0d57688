/*
 * regex.h — RegexFullMatch's pattern compiler: an RE2 pattern, known when compiling, becomes a
 * DFA table that runtime-min/kiln_regex.h walks over a string's bytes. No regex library can go
 * into an object that runs on bare metal without malloc; a table and a loop of a few lines can.
 *
 * Three steps, one file each:
 *   regex_parse.c  RE2 syntax -> syntax tree over Unicode code points (kl_re)
 *   regex_nfa.c    syntax tree -> NFA over bytes: code point ranges become UTF-8 byte sequences
 *   regex_dfa.c    NFA -> DFA by subset construction -> the table; kl_regex_compile runs all three
 *
 * Every step returns its error as a value (a message in the arena), never exits. The limits
 * below keep a pathological pattern from taking the compiler's memory or time.
 */
#ifndef KL_REGEX_H
#define KL_REGEX_H

#include <stdint.h>

#include "kl.h"

#define KL_REGEX_MAX_REPEAT 1000    /* RE2's bound on a count, and on nested counts' product */
#define KL_REGEX_MAX_NESTING 1000   /* groups and repeats inside each other (RE2's bound) */
#define KL_REGEX_MAX_NFA 50000      /* NFA states */
#define KL_REGEX_MAX_STATES 4096    /* DFA states (the table holds uint16 state numbers) */
#define KL_REGEX_MAX_WORK (1 << 24) /* NFA states visited while building the DFA */

/* ---- regex_parse.c: the syntax tree ----------------------------------------------------- */

typedef struct kl_re_range {
    uint32_t lo, hi; /* code points, inclusive */
} kl_re_range;

/* Empty-width assertions. The first two depend on what came before the position only; the
 * others also on what comes after it (the DFA resolves those on its next transition). */
typedef enum kl_re_assert {
    KL_RE_BEGIN_TEXT,        /* ^ (without m), \A */
    KL_RE_BEGIN_LINE,        /* ^ with (?m): at the start or after \n */
    KL_RE_END_TEXT,          /* $ (without m), \z */
    KL_RE_END_LINE,          /* $ with (?m): at the end or before \n */
    KL_RE_WORD_BOUNDARY,     /* \b: one side is an ASCII word character, the other not */
    KL_RE_NOT_WORD_BOUNDARY, /* \B */
} kl_re_assert;

typedef enum kl_re_kind {
    KL_RE_EMPTY,     /* matches "" */
    KL_RE_CHARS,     /* one character: a code point in `ranges` (sorted, disjoint, not adjacent) */
    KL_RE_ANY_BYTE,  /* \C: any one byte */
    KL_RE_ASSERT,    /* `assertion`, matching "" */
    KL_RE_CONCAT,    /* subs[0] then subs[1] ... */
    KL_RE_ALTERNATE, /* one of subs */
    KL_RE_REPEAT,    /* subs[0], min to max times (max -1: no bound) */
} kl_re_kind;

typedef struct kl_re kl_re;
struct kl_re {
    kl_re_kind kind;
    int n;               /* CHARS: ranges; CONCAT, ALTERNATE, REPEAT: subs */
    kl_re_range *ranges;
    kl_re **subs;
    int min, max;
    kl_re_assert assertion;
};

/* The syntax tree of `pattern` (RE2 syntax), or NULL with *why set: the pattern is not valid
 * RE2, or uses a construct kiln does not implement (Unicode classes \p, case folding (?i)). */
kl_re *kl_re_parse(kl_arena *a, const char *pattern, const char **why);

/* ---- regex_nfa.c: the NFA over bytes ---------------------------------------------------- */

typedef enum kl_nfa_kind {
    KL_NFA_BYTES,  /* one byte in `bytes`, then `out` */
    KL_NFA_SPLIT,  /* `out` or `out1`, consuming nothing */
    KL_NFA_ASSERT, /* `assertion` holds here, then `out` */
    KL_NFA_MATCH,  /* the pattern matched */
} kl_nfa_kind;

typedef struct kl_nfa_state {
    kl_nfa_kind kind;
    kl_re_assert assertion;
    int out, out1;
    uint64_t bytes[4]; /* a set of bytes: bit b%64 of word b/64 */
} kl_nfa_state;

typedef struct kl_nfa {
    kl_nfa_state *states;
    int n, cap;
    int start;
    unsigned asserts;  /* bit (1 << kl_re_assert) for each assertion the NFA holds */
} kl_nfa;

/* The NFA of `re` (a match of the whole string starts at `start` and ends at a MATCH state);
 * false with *why set when it would pass KL_REGEX_MAX_NFA states. */
bool kl_nfa_build(kl_arena *a, const kl_re *re, kl_nfa *out, const char **why);

/* ---- regex_dfa.c: the DFA table --------------------------------------------------------- */

/* The table runtime-min/kiln_regex.h reads (uint16 words; that header describes the layout). */
typedef struct kl_regex_table {
    uint16_t *words;
    int64_t n_words;
    int n_states, n_classes;
} kl_regex_table;

/* The DFA of an NFA, in arena a; false with *why set past KL_REGEX_MAX_STATES states or
 * KL_REGEX_MAX_WORK steps. */
bool kl_dfa_build(kl_arena *a, const kl_nfa *nfa, kl_regex_table *out, const char **why);

/* All three steps: `pattern` as a table allocated in `a` (its scratch memory goes to a
 * temporary arena), or false with *why (a message in `a`). */
bool kl_regex_compile(kl_arena *a, const char *pattern, kl_regex_table *out, const char **why);

#endif
