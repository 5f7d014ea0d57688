/*
 * regex_parse.c — an RE2 pattern parsed into a kl_re tree over Unicode code points.
 *
 * Implemented, as RE2 defines them: literal characters (the pattern is UTF-8), escapes (\n \t
 * \r \f \v \a, \x41 \x{10FFFF}, octal \0 \012, a backslash before any ASCII punctuation), `.`
 * (any character but \n; any at all with (?s)), classes [...] with ranges, negation [^...],
 * the Perl classes \d \s \w \D \S \W and POSIX ones [:alpha:] [:^alpha:] (ASCII, as in RE2),
 * alternation, groups (...) (?:...) (?P<name>...) (?<name>...), the repeats * + ? {n} {n,}
 * {n,m} and their lazy forms (laziness changes where a search stops, never whether a whole
 * string matches), the assertions ^ $ \A \z \b \B, \C (any byte), \Q...\E, and the flags m, s
 * and U in (?flags) and (?flags:...).
 *
 * Refused with a message naming the construct: Unicode classes \p{..} \P{..} and case folding
 * (?i), which need Unicode tables kiln does not carry, and whatever RE2 itself rejects
 * (backreferences, lookaround, stacked repeats like a**, counts past 1000, ...).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regex.h"

#define MAX_RUNE 0x10FFFFu

typedef struct flags {
    bool dot_nl;     /* (?s): `.` matches \n too */
    bool multi_line; /* (?m): ^ and $ match at line ends too */
} flags;

typedef struct parser {
    kl_arena *a;
    const char *pattern, *p, *end;
    const char *why; /* the first error; every parse function returns false once it is set */
    int depth;       /* groups open */
    kl_ptrvec names; /* the named groups seen (RE2 refuses a name twice) */
} parser;

static bool fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(parser *ps, const char *fmt, ...) {
    if (ps->why) return false;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ps->why = kl_strdup(ps->a, text);
    return false;
}

/* Where `at` lies in the pattern, for messages (a pattern may be long: no quoting all of it). */
static int offset(const parser *ps, const char *at) { return (int)(at - ps->pattern); }

/* The byte k places ahead, or 0 past the end (the pattern is NUL-terminated, but this never
 * reads past its end). */
static char peek(const parser *ps, int k) { return ps->p + k < ps->end ? ps->p[k] : 0; }

static bool at(const parser *ps, const char *text) {
    size_t n = strlen(text);
    return (size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, text, n);
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* The length of the sequence a lead byte starts, 0 for a byte that starts none. */
static int utf8_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

/* Decodes the code point at s (before end): its byte count, or 0 when the bytes are not valid
 * UTF-8 (truncated, overlong, a surrogate, past U+10FFFF). */
static int decode_utf8(const char *s, const char *end, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    int len = utf8_length(u[0]);
    if (!len || end - s < len) return 0;
    uint32_t c = len == 1 ? u[0] : u[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (u[i] & 0x3F);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < least[len] || c > MAX_RUNE || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

static bool next_rune(parser *ps, uint32_t *cp) {
    int len = decode_utf8(ps->p, ps->end, cp);
    if (!len) return fail(ps, "invalid UTF-8 at byte %d of the pattern", offset(ps, ps->p));
    ps->p += len;
    return true;
}

/* ---- sets of code points ---------------------------------------------------------------- */

typedef struct rangeset {
    kl_re_range *r;
    int n, cap;
} rangeset;

static void rs_add(kl_arena *a, rangeset *s, uint32_t lo, uint32_t hi) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        kl_re_range *r = kl_alloc_array(a, (size_t)cap, sizeof *r);
        if (s->n) memcpy(r, s->r, (size_t)s->n * sizeof *r);
        s->r = r;
        s->cap = cap;
    }
    s->r[s->n++] = (kl_re_range){lo, hi};
}

static int by_lo(const void *x, const void *y) {
    uint32_t a = ((const kl_re_range *)x)->lo, b = ((const kl_re_range *)y)->lo;
    return a < b ? -1 : a > b;
}

/* Sorted, with overlapping and adjacent ranges merged. */
static void rs_normalize(rangeset *s) {
    if (s->n < 2) return;
    qsort(s->r, (size_t)s->n, sizeof *s->r, by_lo);
    int out = 0;
    for (int i = 1; i < s->n; i++) {
        if (s->r[i].lo <= s->r[out].hi + 1) {
            if (s->r[i].hi > s->r[out].hi) s->r[out].hi = s->r[i].hi;
        } else {
            s->r[++out] = s->r[i];
        }
    }
    s->n = out + 1;
}

/* Adds the code points in [0, U+10FFFF] that `r` (sorted, disjoint) leaves out. */
static void rs_add_complement(kl_arena *a, rangeset *s, const kl_re_range *r, int n) {
    uint32_t next = 0;
    for (int i = 0; i < n; i++) {
        if (next < r[i].lo) rs_add(a, s, next, r[i].lo - 1);
        next = r[i].hi + 1;
    }
    if (next <= MAX_RUNE) rs_add(a, s, next, MAX_RUNE);
}

static void rs_negate(kl_arena *a, rangeset *s) {
    rs_normalize(s);
    rangeset c = {0};
    rs_add_complement(a, &c, s->r, s->n);
    *s = c;
}

/* ---- named classes: Perl's and POSIX's, ASCII only as in RE2 ---------------------------- */

typedef struct char_group {
    const char *name;
    const kl_re_range *r;
    int n;
} char_group;

#define GROUP(name, ...)                                                                    \
    {name, (const kl_re_range[]){__VA_ARGS__},                                             \
     sizeof((const kl_re_range[]){__VA_ARGS__}) / sizeof(kl_re_range)}

static const char_group perl_groups[] = {
    GROUP("d", {'0', '9'}),
    GROUP("s", {'\t', '\n'}, {'\f', '\r'}, {' ', ' '}), /* RE2's \s has no \v */
    GROUP("w", {'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}),
};

static const char_group posix_groups[] = {
    GROUP("alnum", {'0', '9'}, {'A', 'Z'}, {'a', 'z'}),
    GROUP("alpha", {'A', 'Z'}, {'a', 'z'}),
    GROUP("ascii", {0, 0x7F}),
    GROUP("blank", {'\t', '\t'}, {' ', ' '}),
    GROUP("cntrl", {0, 0x1F}, {0x7F, 0x7F}),
    GROUP("digit", {'0', '9'}),
    GROUP("graph", {'!', '~'}),
    GROUP("lower", {'a', 'z'}),
    GROUP("print", {' ', '~'}),
    GROUP("punct", {'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}),
    GROUP("space", {'\t', '\r'}, {' ', ' '}),
    GROUP("upper", {'A', 'Z'}),
    GROUP("word", {'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}),
    GROUP("xdigit", {'0', '9'}, {'A', 'F'}, {'a', 'f'}),
};

static void rs_add_group(kl_arena *a, rangeset *s, const char_group *g, bool negated) {
    if (negated) {
        rs_add_complement(a, s, g->r, g->n);
        return;
    }
    for (int i = 0; i < g->n; i++) rs_add(a, s, g->r[i].lo, g->r[i].hi);
}

/* \d \s \w (lower case) or their negations (upper case) at p: consumed and added. */
static bool take_perl_class(parser *ps, rangeset *s) {
    char c = peek(ps, 1);
    if (peek(ps, 0) != '\\' || !c || !strchr("dDsSwW", c)) return false;
    char lower = (char)(c | 0x20);
    for (size_t i = 0; i < sizeof perl_groups / sizeof *perl_groups; i++)
        if (perl_groups[i].name[0] == lower) rs_add_group(ps->a, s, &perl_groups[i], c != lower);
    ps->p += 2;
    return true;
}

/* ---- tree nodes ------------------------------------------------------------------------- */

static kl_re *new_node(parser *ps, kl_re_kind kind) {
    kl_re *re = kl_alloc(ps->a, sizeof *re);
    re->kind = kind;
    return re;
}

static kl_re *chars_node(parser *ps, const rangeset *s) {
    kl_re *re = new_node(ps, KL_RE_CHARS);
    re->ranges = s->r;
    re->n = s->n;
    return re;
}

static kl_re *literal_node(parser *ps, uint32_t c) {
    rangeset s = {0};
    rs_add(ps->a, &s, c, c);
    return chars_node(ps, &s);
}

static kl_re *assert_node(parser *ps, kl_re_assert what) {
    kl_re *re = new_node(ps, KL_RE_ASSERT);
    re->assertion = what;
    return re;
}

/* A list of nodes being gathered (a branch's items, a group's branches). */
typedef struct node_list {
    kl_re **items;
    int n, cap;
} node_list;

static void push(kl_arena *a, node_list *l, kl_re *re) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        kl_re **items = kl_alloc_array(a, (size_t)cap, sizeof *items);
        if (l->n) memcpy(items, l->items, (size_t)l->n * sizeof *items);
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = re;
}

/* CONCAT or ALTERNATE of the list; its one item alone; EMPTY for none. */
static kl_re *join(parser *ps, kl_re_kind kind, const node_list *l) {
    if (l->n == 0) return new_node(ps, KL_RE_EMPTY);
    if (l->n == 1) return l->items[0];
    kl_re *re = new_node(ps, kind);
    re->subs = l->items;
    re->n = l->n;
    return re;
}

/* ---- escapes ---------------------------------------------------------------------------- */

static int hex_value(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* An escape RE2 does not accept, shown from its backslash (`begin`) over `len` bytes. */
static bool bad_escape(parser *ps, const char *begin, int len, const char *hint) {
    if (len > (int)(ps->end - begin)) len = (int)(ps->end - begin);
    return fail(ps, "invalid escape sequence '%.*s'%s", len, begin, hint);
}

/* \x41 or \x{10FFFF}; p is past the x. */
static bool hex_escape(parser *ps, const char *begin, uint32_t *cp) {
    if (peek(ps, 0) != '{') {
        int hi = hex_value(peek(ps, 0)), lo = hex_value(peek(ps, 1));
        if (hi < 0 || lo < 0) return bad_escape(ps, begin, 4, "");
        ps->p += 2;
        *cp = (uint32_t)(hi * 16 + lo);
        return true;
    }
    const char *close = memchr(begin, '}', (size_t)(ps->end - begin));
    int shown = close ? (int)(close - begin) + 1 : (int)(ps->end - begin);
    uint32_t v = 0;
    int digits = 0;
    for (ps->p++; hex_value(peek(ps, 0)) >= 0; ps->p++, digits++) {
        v = v * 16 + (uint32_t)hex_value(peek(ps, 0));
        if (v > MAX_RUNE) return bad_escape(ps, begin, shown, ": past U+10FFFF");
    }
    if (!digits || peek(ps, 0) != '}') return bad_escape(ps, begin, shown, "");
    ps->p++;
    *cp = v;
    return true;
}

/* A backslash escape that stands for one character (p at the backslash). */
static bool char_escape(parser *ps, uint32_t *cp) {
    const char *begin = ps->p;
    if (ps->p + 1 >= ps->end) return fail(ps, "trailing backslash at the end of the pattern");
    unsigned char c = (unsigned char)ps->p[1];
    ps->p += 2;
    if (c >= '1' && c <= '7' && !(peek(ps, 0) >= '0' && peek(ps, 0) <= '7'))
        return bad_escape(ps, begin, 2, ": backreferences are not RE2 syntax");
    if (c >= '0' && c <= '7') { /* octal: up to three digits */
        uint32_t v = c - '0';
        for (int i = 0; i < 2 && peek(ps, 0) >= '0' && peek(ps, 0) <= '7'; i++, ps->p++)
            v = v * 8 + (uint32_t)(peek(ps, 0) - '0');
        *cp = v;
        return true;
    }
    static const char simple[] = "n\nr\rt\ta\af\fv\v";
    for (int i = 0; simple[i]; i += 2)
        if (c == (unsigned char)simple[i]) {
            *cp = (unsigned char)simple[i + 1];
            return true;
        }
    if (c == 'x') return hex_escape(ps, begin, cp);
    bool alnum = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    if (c < 0x80 && !alnum) { /* escaped punctuation is itself (RE2 allows \_ too) */
        *cp = c;
        return true;
    }
    if (c >= 0x80) { /* a backslash before a non-ASCII character: shown whole */
        ps->p = begin + 1;
        if (!next_rune(ps, cp)) return false;
        return bad_escape(ps, begin, (int)(ps->p - begin), "");
    }
    return bad_escape(ps, begin, 2, "");
}

/* \pL, \p{Greek}, \P...: p at the backslash. */
static bool refuse_unicode_class(parser *ps) {
    const char *begin = ps->p, *brace_end = peek(ps, 2) == '{' ? strchr(begin, '}') : NULL;
    int len = brace_end ? (int)(brace_end - begin) + 1 : 3;
    if (len > (int)(ps->end - begin)) len = (int)(ps->end - begin);
    return fail(ps, "Unicode character classes ('%.*s') are not supported by kiln", len, begin);
}

/* ---- character classes ------------------------------------------------------------------ */

/* [:alpha:] or [:^alpha:] at p: 1 when added, 0 when p does not start one (then '[' is a
 * literal), -1 on error. */
static int posix_class(parser *ps, rangeset *s) {
    if (!at(ps, "[:")) return 0;
    const char *close = NULL;
    for (const char *q = ps->p + 2; q + 1 < ps->end && !close; q++)
        if (q[0] == ':' && q[1] == ']') close = q;
    if (!close) return 0;
    const char *name = ps->p + 2;
    bool negated = *name == '^';
    if (negated) name++;
    for (size_t i = 0; i < sizeof posix_groups / sizeof *posix_groups; i++) {
        const char *g = posix_groups[i].name;
        if ((size_t)(close - name) == strlen(g) && !memcmp(name, g, strlen(g))) {
            rs_add_group(ps->a, s, &posix_groups[i], negated);
            ps->p = close + 2;
            return 1;
        }
    }
    fail(ps, "invalid POSIX character class '%.*s'", (int)(close + 2 - ps->p), ps->p);
    return -1;
}

static bool class_char(parser *ps, uint32_t *cp) {
    return peek(ps, 0) == '\\' ? char_escape(ps, cp) : next_rune(ps, cp);
}

/* One item of a class: a character, a range a-z, a Perl or POSIX class. */
static bool class_item(parser *ps, rangeset *s) {
    int posix = posix_class(ps, s);
    if (posix) return posix > 0;
    if (peek(ps, 0) == '\\' && (peek(ps, 1) == 'p' || peek(ps, 1) == 'P'))
        return refuse_unicode_class(ps);
    if (take_perl_class(ps, s)) return true;
    const char *begin = ps->p;
    uint32_t lo, hi;
    if (!class_char(ps, &lo)) return false;
    hi = lo;
    if (peek(ps, 0) == '-' && peek(ps, 1) && peek(ps, 1) != ']') { /* [a-] holds a and - */
        ps->p++;
        if (!class_char(ps, &hi)) return false;
        if (hi < lo)
            return fail(ps, "invalid character class range '%.*s'", (int)(ps->p - begin), begin);
    }
    rs_add(ps->a, s, lo, hi);
    return true;
}

/* [...] or [^...] (a ] first is a literal). A negated class matches \n too, as in RE2. */
static kl_re *parse_class(parser *ps) {
    const char *begin = ps->p++;
    rangeset s = {0};
    bool negated = peek(ps, 0) == '^';
    if (negated) ps->p++;
    for (bool first = true; ps->p < ps->end && (peek(ps, 0) != ']' || first); first = false)
        if (!class_item(ps, &s)) return NULL;
    if (ps->p >= ps->end) {
        fail(ps, "missing ']' to close the class that opens at byte %d", offset(ps, begin));
        return NULL;
    }
    ps->p++;
    if (negated) rs_negate(ps->a, &s);
    else rs_normalize(&s);
    return chars_node(ps, &s);
}

/* ---- repeats ---------------------------------------------------------------------------- */

/* A decimal count without leading zeros (RE2 reads {01} as literal text), below 10^8. */
static bool count(parser *ps, int *v) {
    if (!(peek(ps, 0) >= '0' && peek(ps, 0) <= '9')) return false;
    if (peek(ps, 0) == '0' && peek(ps, 1) >= '0' && peek(ps, 1) <= '9') return false;
    *v = 0;
    for (; peek(ps, 0) >= '0' && peek(ps, 0) <= '9'; ps->p++) {
        if (*v >= 100000000) return false;
        *v = *v * 10 + (peek(ps, 0) - '0');
    }
    return true;
}

/* {n} {n,} {n,m} at p: consumed, or false with p unchanged (the '{' is then a literal). */
static bool counted_repeat(parser *ps, int *min, int *max) {
    const char *begin = ps->p;
    ps->p++;
    bool ok = count(ps, min);
    if (ok && peek(ps, 0) == ',') {
        ps->p++;
        *max = -1;
        ok = peek(ps, 0) == '}' || count(ps, max);
    } else {
        *max = *min;
    }
    if (ok && peek(ps, 0) == '}') {
        ps->p++;
        return true;
    }
    ps->p = begin;
    return false;
}

/* A repeat operator at p (* + ? or a count, then an optional lazy ?): consumed, or false. */
static bool repeat_op(parser *ps, int *min, int *max) {
    switch (peek(ps, 0)) {
    case '*': *min = 0, *max = -1; ps->p++; break;
    case '+': *min = 1, *max = -1; ps->p++; break;
    case '?': *min = 0, *max = 1; ps->p++; break;
    case '{':
        if (!counted_repeat(ps, min, max)) return false;
        break;
    default: return false;
    }
    if (peek(ps, 0) == '?') ps->p++; /* lazy: the same set of whole-string matches */
    return true;
}

/* Applies the repeat that ends at p (it began at op) to the branch's last item. */
static bool apply_repeat(parser *ps, node_list *items, const char *op, const char *prev_op,
                         int min, int max) {
    int len = (int)(ps->p - op);
    if (prev_op)
        return fail(ps, "bad repetition operator '%.*s': RE2 does not stack repeats",
                    (int)(ps->p - prev_op), prev_op);
    if (!items->n) return fail(ps, "missing argument to repetition operator '%.*s'", len, op);
    if ((max >= 0 && max < min) || min > KL_REGEX_MAX_REPEAT || max > KL_REGEX_MAX_REPEAT)
        return fail(ps, "bad repetition operator '%.*s': counts go up to %d, the first no larger "
                    "than the second", len, op, KL_REGEX_MAX_REPEAT);
    kl_re *re = new_node(ps, KL_RE_REPEAT);
    re->subs = kl_alloc(ps->a, sizeof *re->subs);
    re->subs[0] = items->items[items->n - 1];
    re->n = 1;
    re->min = min;
    re->max = max;
    items->items[items->n - 1] = re;
    return true;
}

/* RE2 refuses repeats nested so that their counts multiply past 1000 ((a{100}){100}); its
 * rule divides 1000 by each count met on the way down (a bound, or the least when unbounded). */
static bool nested_counts_fit(const kl_re *re, int budget) {
    if (re->kind == KL_RE_REPEAT) {
        int m = re->max >= 0 ? re->max : re->min;
        if (m > 0) budget /= m;
        if (budget == 0) return false;
    }
    if (re->kind == KL_RE_CONCAT || re->kind == KL_RE_ALTERNATE || re->kind == KL_RE_REPEAT)
        for (int i = 0; i < re->n; i++)
            if (!nested_counts_fit(re->subs[i], budget)) return false;
    return true;
}

/* ---- groups ----------------------------------------------------------------------------- */

static kl_re *parse_alternation(parser *ps, flags *f);

/* (?P<name> or (?<name>: p past the <; the name ([A-Za-z0-9_]+, new) and its > consumed. */
static bool group_name(parser *ps, const char *begin) {
    const char *name = ps->p;
    while (ps->p < ps->end && *ps->p != '>') ps->p++;
    int len = (int)(ps->p - name);
    bool valid = ps->p < ps->end && len > 0;
    for (int i = 0; i < len && valid; i++)
        valid = name[i] == '_' || (name[i] >= '0' && name[i] <= '9') ||
                ((name[i] | 0x20) >= 'a' && (name[i] | 0x20) <= 'z');
    if (!valid)
        return fail(ps, "invalid named capture group '%.*s'",
                    (int)(ps->p - begin) + (ps->p < ps->end), begin);
    char *copy = kl_strndup(ps->a, name, (size_t)len);
    for (int i = 0; i < ps->names.n; i++)
        if (!strcmp(ps->names.items[i], copy))
            return fail(ps, "duplicate capture group name '%s'", copy);
    kl_ptrvec_push(ps->a, &ps->names, copy);
    ps->p++;
    return true;
}

/* The flags of (?flags) or (?flags: with p past the ?: applied to *f; *opens_group tells
 * which of the two it was. */
static bool group_flags(parser *ps, const char *begin, flags *f, bool *opens_group) {
    bool negated = false, any = false;
    for (;;) {
        char c = peek(ps, 0);
        if (!c) return fail(ps, "missing ')' after '(?' at byte %d", offset(ps, begin));
        ps->p++;
        switch (c) {
        case 'i':
            if (!negated)
                return fail(ps, "case-insensitive matching ('%.*s') is not supported by kiln",
                            (int)(ps->p - begin), begin);
            any = true;
            break;
        case 'm': f->multi_line = !negated, any = true; break;
        case 's': f->dot_nl = !negated, any = true; break;
        case 'U': any = true; break; /* greediness: the same whole-string matches */
        case '-':
            if (negated) goto bad;
            negated = true;
            any = false;
            break;
        case ':':
        case ')':
            if (negated && !any) goto bad;
            *opens_group = c == ':';
            return true;
        default: goto bad;
        }
    }
bad:
    return fail(ps, "invalid or unsupported Perl syntax '%.*s'", (int)(ps->p - begin), begin);
}

/* What follows "(?": a name, flags, or one of the constructs RE2 does not have. The group's
 * flags start from the enclosing ones; (?flags) alone changes the enclosing group's. */
static bool group_prefix(parser *ps, const char *begin, flags *f, flags *inner, bool *group) {
    ps->p += 2;
    *group = true;
    if (at(ps, "P<") || (at(ps, "<") && peek(ps, 1) != '=' && peek(ps, 1) != '!')) {
        ps->p += peek(ps, 0) == 'P' ? 2 : 1;
        return group_name(ps, begin);
    }
    if (at(ps, "P=") || at(ps, "P>"))
        return fail(ps, "backreferences ('%.*s') are not RE2 syntax", 4, begin);
    if (at(ps, "=") || at(ps, "!") || at(ps, "<=") || at(ps, "<!"))
        return fail(ps, "lookaround assertions ('%.*s') are not RE2 syntax",
                    (int)(ps->p - begin) + 1 + (peek(ps, 0) == '<'), begin);
    if (!group_flags(ps, begin, inner, group)) return false;
    if (!*group) *f = *inner;
    return true;
}

/* (...) at p: its contents pushed as one item; (?flags) pushes nothing. */
static bool parse_group(parser *ps, flags *f, node_list *items) {
    const char *begin = ps->p;
    if (++ps->depth > KL_REGEX_MAX_NESTING)
        return fail(ps, "groups nest deeper than %d", KL_REGEX_MAX_NESTING);
    flags inner = *f;
    bool group = true;
    if (peek(ps, 1) == '?') {
        if (!group_prefix(ps, begin, f, &inner, &group)) return false;
    } else {
        ps->p++;
    }
    if (group) {
        kl_re *re = parse_alternation(ps, &inner);
        if (!re) return false;
        if (peek(ps, 0) != ')')
            return fail(ps, "missing ')' to close the group that opens at byte %d",
                        offset(ps, begin));
        ps->p++;
        push(ps->a, items, re);
    }
    ps->depth--;
    return true;
}

/* ---- atoms, branches, alternations ------------------------------------------------------ */

static kl_re *dot_node(parser *ps, const flags *f) {
    rangeset s = {0};
    if (f->dot_nl) {
        rs_add(ps->a, &s, 0, MAX_RUNE);
    } else {
        rs_add(ps->a, &s, 0, '\n' - 1);
        rs_add(ps->a, &s, '\n' + 1, MAX_RUNE);
    }
    return chars_node(ps, &s);
}

/* \Q...\E: every character up to \E (or the end) a literal. */
static bool quoted_text(parser *ps, node_list *items) {
    ps->p += 2;
    while (ps->p < ps->end && !at(ps, "\\E")) {
        uint32_t c;
        if (!next_rune(ps, &c)) return false;
        push(ps->a, items, literal_node(ps, c));
    }
    if (at(ps, "\\E")) ps->p += 2;
    return true;
}

/* A backslash sequence outside a class. */
static bool parse_backslash(parser *ps, node_list *items) {
    static const struct { char c; kl_re_assert what; } asserts[] = {
        {'b', KL_RE_WORD_BOUNDARY}, {'B', KL_RE_NOT_WORD_BOUNDARY},
        {'A', KL_RE_BEGIN_TEXT}, {'z', KL_RE_END_TEXT},
    };
    char c = peek(ps, 1);
    for (size_t i = 0; i < sizeof asserts / sizeof *asserts; i++)
        if (c == asserts[i].c) {
            ps->p += 2;
            push(ps->a, items, assert_node(ps, asserts[i].what));
            return true;
        }
    if (c == 'C') {
        ps->p += 2;
        push(ps->a, items, new_node(ps, KL_RE_ANY_BYTE));
        return true;
    }
    if (c == 'Q') return quoted_text(ps, items);
    if (c == 'p' || c == 'P') return refuse_unicode_class(ps);
    rangeset s = {0};
    if (take_perl_class(ps, &s)) {
        rs_normalize(&s);
        push(ps->a, items, chars_node(ps, &s));
        return true;
    }
    uint32_t cp;
    if (!char_escape(ps, &cp)) return false;
    push(ps->a, items, literal_node(ps, cp));
    return true;
}

/* One atom at p, pushed onto the branch's items (\Q..\E pushes several, (?flags) none). */
static bool parse_atom(parser *ps, flags *f, node_list *items) {
    switch (peek(ps, 0)) {
    case '(': return parse_group(ps, f, items);
    case '[': {
        kl_re *re = parse_class(ps);
        if (re) push(ps->a, items, re);
        return re != NULL;
    }
    case '.':
        ps->p++;
        push(ps->a, items, dot_node(ps, f));
        return true;
    case '^':
        ps->p++;
        push(ps->a, items, assert_node(ps, f->multi_line ? KL_RE_BEGIN_LINE : KL_RE_BEGIN_TEXT));
        return true;
    case '$':
        ps->p++;
        push(ps->a, items, assert_node(ps, f->multi_line ? KL_RE_END_LINE : KL_RE_END_TEXT));
        return true;
    case '\\': return parse_backslash(ps, items);
    default: {
        uint32_t c;
        if (!next_rune(ps, &c)) return false;
        push(ps->a, items, literal_node(ps, c));
        return true;
    }
    }
}

/* One branch: atoms and their repeats up to | or ) or the end. */
static kl_re *parse_branch(parser *ps, flags *f) {
    node_list items = {0};
    const char *prev_op = NULL; /* the repeat just before, if the last token was one */
    while (ps->p < ps->end && peek(ps, 0) != '|' && peek(ps, 0) != ')') {
        const char *op = ps->p;
        int min, max;
        if (repeat_op(ps, &min, &max)) {
            if (!apply_repeat(ps, &items, op, prev_op, min, max)) return NULL;
            prev_op = op;
            continue;
        }
        prev_op = NULL;
        if (!parse_atom(ps, f, &items)) return NULL;
    }
    return join(ps, KL_RE_CONCAT, &items);
}

static kl_re *parse_alternation(parser *ps, flags *f) {
    node_list branches = {0};
    for (;;) {
        kl_re *re = parse_branch(ps, f);
        if (!re) return NULL;
        push(ps->a, &branches, re);
        if (peek(ps, 0) != '|') break;
        ps->p++;
    }
    return join(ps, KL_RE_ALTERNATE, &branches);
}

kl_re *kl_re_parse(kl_arena *a, const char *pattern, const char **why) {
    parser ps = {.a = a, .pattern = pattern, .p = pattern, .end = pattern + strlen(pattern)};
    flags f = {0};
    kl_re *re = parse_alternation(&ps, &f);
    if (re && ps.p < ps.end) /* parse_alternation stops only at the end or at a ')' */
        fail(&ps, "unmatched ')' at byte %d of the pattern", offset(&ps, ps.p));
    if (re && !ps.why && !nested_counts_fit(re, KL_REGEX_MAX_REPEAT))
        fail(&ps, "bad repetition operator: nested repeat counts multiply past %d",
             KL_REGEX_MAX_REPEAT);
    *why = ps.why;
    return ps.why ? NULL : re;
}
