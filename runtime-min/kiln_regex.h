/*
 * kiln_regex.h — RegexFullMatch's matcher: a DFA table, built from the pattern when compiling
 * (compiler/ops/regex_dfa.c), walked over a string's bytes. Written once for runtime-min
 * (linked into every model as bitcode) and for the compiler's kernel interpreter (constant
 * folding, `kiln check --interp`), so that both answer the same. Freestanding: no libc, no
 * globals, no allocation; the table is constant data of the object.
 *
 * The table, uint16 words:
 *   [KILN_REGEX_N_STATES]   S, the states; state 0 is dead (no match from it, never left)
 *   [KILN_REGEX_N_CLASSES]  C, the byte classes (bytes no state tells apart share a class)
 *   [KILN_REGEX_START]      the state before the first byte
 *   [KILN_REGEX_CLASS_OF + b]         the class of byte b, for b in 0..255
 *   [KILN_REGEX_NEXT + s]             1 when a string that ends in state s matches
 *   [KILN_REGEX_NEXT + S + s * C + k] the state after state s reads a byte of class k
 * Assertions (^ $ \b \B) are resolved in the table: a state knows what its last byte was, and
 * the acceptance of a state already looks at "the end of the string" as the next byte.
 */
#ifndef KILN_REGEX_H
#define KILN_REGEX_H

#include <stdint.h>

#define KILN_REGEX_N_STATES 0
#define KILN_REGEX_N_CLASSES 1
#define KILN_REGEX_START 2
#define KILN_REGEX_CLASS_OF 3
#define KILN_REGEX_NEXT (KILN_REGEX_CLASS_OF + 256)

/* 1 when the whole NUL-terminated string s matches the table's pattern, else 0. */
static inline int32_t kiln_regex_full_match(const uint16_t *dfa, const char *s) {
    uint32_t n_states = dfa[KILN_REGEX_N_STATES], n_classes = dfa[KILN_REGEX_N_CLASSES];
    const uint16_t *class_of = dfa + KILN_REGEX_CLASS_OF;
    const uint16_t *accepts = dfa + KILN_REGEX_NEXT, *next = accepts + n_states;
    uint32_t state = dfa[KILN_REGEX_START];
    for (const unsigned char *p = (const unsigned char *)s; *p && state; p++)
        state = next[state * n_classes + class_of[*p]];
    return accepts[state];
}

#endif
