/*
 * kiln_string.h — the string routines of generated code, written once for runtime-min (linked
 * into every model as bitcode) and for the compiler's kernel interpreter (constant folding,
 * `kiln check --interp`), so that both compute the same strings.
 *
 * A string is a `const char *` to NUL-terminated UTF-8. Comparisons read their operands up to
 * the NUL. The builders write a new string into the string arena, a region of the caller's
 * workspace: int64 words [0] bytes used, [1] failed flag, then `cap` bytes. A string that does
 * not fit is not written: the builder sets the failed flag and yields "" (the generated code
 * then returns KILN_E_STRING_BYTES); nothing is ever written past the arena's end.
 *
 * Case mapping and whitespace are ASCII only (A-Z <-> a-z; Python's ASCII spaces); every other
 * byte, UTF-8 sequences included, is copied unchanged. Freestanding: no libc, no globals.
 */
#ifndef KILN_STRING_H
#define KILN_STRING_H

#include <stdint.h>

static inline uint64_t kiln_str_len(const char *s) {
    uint64_t n = 0;
    while (s[n])
        n++;
    return n;
}

static inline char kiln_str_lower_ascii(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static inline char kiln_str_upper_ascii(char c) {
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static inline int32_t kiln_str_eq(const char *a, const char *b, int32_t nocase) {
    for (;; a++, b++) {
        char x = *a, y = *b;
        if (nocase) {
            x = kiln_str_lower_ascii(x);
            y = kiln_str_lower_ascii(y);
        }
        if (x != y)
            return 0;
        if (!x)
            return 1;
    }
}

/* Room for n bytes (n > 0) in the arena: their place, or NULL (the failed flag set). */
static inline char *kiln_str_reserve(int64_t *arena, int64_t cap, uint64_t n) {
    uint64_t used = (uint64_t)arena[0];
    if (arena[1] || used > (uint64_t)cap || n > (uint64_t)cap - used) {
        arena[1] = 1;
        return 0;
    }
    arena[0] = (int64_t)(used + n);
    return (char *)(arena + 2) + used;
}

/* a then b, as a new string. */
static inline const char *kiln_str_concat(int64_t *arena, int64_t cap, const char *a,
                                          const char *b) {
    uint64_t na = kiln_str_len(a), nb = kiln_str_len(b);
    char *out = kiln_str_reserve(arena, cap, na + nb + 1);
    if (!out)
        return "";
    for (uint64_t i = 0; i < na; i++)
        out[i] = a[i];
    for (uint64_t i = 0; i < nb; i++)
        out[na + i] = b[i];
    out[na + nb] = 0;
    return out;
}

/* s with its ASCII letters raised (upper != 0) or lowered, as a new string. */
static inline const char *kiln_str_case(int64_t *arena, int64_t cap, const char *s,
                                        int32_t upper) {
    uint64_t n = kiln_str_len(s);
    char *out = kiln_str_reserve(arena, cap, n + 1);
    if (!out)
        return "";
    for (uint64_t i = 0; i < n; i++)
        out[i] = upper ? kiln_str_upper_ascii(s[i]) : kiln_str_lower_ascii(s[i]);
    out[n] = 0;
    return out;
}

/* Python's str.isspace on ASCII: the space, \t \n \v \f \r, and \x1c-\x1f. */
static inline int kiln_str_is_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

/* The first occurrence of delim (dl > 0 bytes) in s, or s's terminating NUL. */
static inline const char *kiln_str_find(const char *s, const char *delim, uint64_t dl) {
    for (; *s; s++) {
        uint64_t i = 0;
        while (i < dl && s[i] == delim[i])
            i++;
        if (i == dl)
            return s;
    }
    return s;
}

/* The pieces of s as Python's s.split(delim, maxsplit) cuts them, or s.split(None, maxsplit)
 * (runs of ASCII whitespace) when delim is "" (maxsplit < 0: no limit). Walks them up to piece
 * `want` and returns 1 with its bounds, or 0 when there is no such piece; with want < 0 walks
 * them all and returns how many there are. */
static inline int64_t kiln_str_split_walk(const char *s, const char *delim, int64_t maxsplit,
                                          int64_t want, const char **begin, const char **end) {
    uint64_t dl = kiln_str_len(delim);
    const char *p = s;
    for (int64_t k = 0;; k++) {
        if (!dl) {
            while (*p && kiln_str_is_space(*p))
                p++;
            if (!*p)
                return want < 0 ? k : 0;
        }
        const char *e = p;
        if (maxsplit >= 0 && k == maxsplit) /* the rest, delimiters and all */
            e = p + kiln_str_len(p);
        else if (dl)
            e = kiln_str_find(p, delim, dl);
        else
            while (*e && !kiln_str_is_space(*e))
                e++;
        if (k == want) {
            *begin = p;
            *end = e;
            return 1;
        }
        if (!*e)
            return want < 0 ? k + 1 : 0;
        p = e + dl;
    }
}

/* How many pieces s.split cuts (above). */
static inline int64_t kiln_str_split_count(const char *s, const char *delim, int64_t maxsplit) {
    const char *b = 0, *e = 0;
    return kiln_str_split_walk(s, delim, maxsplit, -1, &b, &e);
}

/* Piece j of s.split (above) as a new string; "" (not in the arena) when the piece is empty
 * or s has fewer pieces. */
static inline const char *kiln_str_split_piece(int64_t *arena, int64_t cap, const char *s,
                                               const char *delim, int64_t maxsplit, int64_t j) {
    const char *b = 0, *e = 0;
    if (j < 0 || !kiln_str_split_walk(s, delim, maxsplit, j, &b, &e) || b == e)
        return "";
    uint64_t n = (uint64_t)(e - b);
    char *out = kiln_str_reserve(arena, cap, n + 1);
    if (!out)
        return "";
    for (uint64_t i = 0; i < n; i++)
        out[i] = b[i];
    out[n] = 0;
    return out;
}

#endif
