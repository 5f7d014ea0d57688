/*
 * test_regex.c — RegexFullMatch's pattern compiler (ops/regex_*.c): the DFA table it builds,
 * walked by runtime-min's matcher (kiln_regex.h) exactly as the generated code walks it.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kiln_regex.h"
#include "ops/regex.h"

/* Whether each string matches `pattern` as a whole: "1"/"0" per string, or "error" when the
 * pattern does not compile. */
static char *matches(const char *pattern, const char *const *strings, int n) {
    static char out[64];
    kl_arena *a = kl_arena_new();
    kl_regex_table t;
    const char *why = NULL;
    if (!kl_regex_compile(a, pattern, &t, &why)) {
        strcpy(out, "error");
    } else {
        for (int i = 0; i < n; i++)
            out[i] = (char)('0' + kiln_regex_full_match(t.words, strings[i]));
        out[n] = 0;
    }
    kl_arena_free(a);
    return out;
}

#define MATCHES(pattern, ...)                                                              \
    matches(pattern, (const char *const[]){__VA_ARGS__},                                   \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* The message for a pattern that does not compile ("" when it does). */
static const char *error_of(kl_arena *a, const char *pattern) {
    kl_regex_table t;
    const char *why = NULL;
    return kl_regex_compile(a, pattern, &t, &why) ? "" : why;
}

Test(regex, table_layout) {
    kl_arena *a = kl_arena_new();
    kl_regex_table t;
    const char *why = NULL;
    cr_assert(kl_regex_compile(a, "[a-z]+", &t, &why));
    cr_expect_eq(t.n_states, 3, "dead, start, after a letter");
    cr_expect_eq(t.n_classes, 2, "the letters, and every other byte");
    cr_expect_eq(t.words[KILN_REGEX_N_STATES], 3);
    cr_expect_eq(t.words[KILN_REGEX_START], 1);
    cr_expect_eq(t.n_words, KILN_REGEX_NEXT + 3 + 3 * 2);
    cr_expect_eq(t.words[KILN_REGEX_CLASS_OF + 'a'], t.words[KILN_REGEX_CLASS_OF + 'z']);
    cr_expect_neq(t.words[KILN_REGEX_CLASS_OF + 'a'], t.words[KILN_REGEX_CLASS_OF + '{']);
    cr_expect_eq(t.words[KILN_REGEX_NEXT + 0], 0, "the dead state never accepts");
    const uint16_t *dead_row = t.words + KILN_REGEX_NEXT + 3;
    cr_expect(dead_row[0] == 0 && dead_row[1] == 0, "and is never left");
    kl_arena_free(a);
}

Test(regex, subset_construction_state_count) {
    /* the (k+1)-th letter from the end is an a: 2^(k+1) sets, and the dead state */
    kl_arena *a = kl_arena_new();
    kl_regex_table t;
    const char *why = NULL;
    cr_assert(kl_regex_compile(a, "(a|b)*a(a|b){4}", &t, &why));
    cr_expect_eq(t.n_states, 32 + 1);
    cr_expect_str_eq(MATCHES("(a|b)*a(a|b){4}", "abbbb", "babbbb", "bbbbb", "aaaab", ""),
                     "11010");
    kl_arena_free(a);
}

Test(regex, state_cap_is_an_error) {
    kl_arena *a = kl_arena_new();
    cr_expect(strstr(error_of(a, "(a|b)*a(a|b){11}"), "more than 4096 states"));
    cr_expect_str_eq(error_of(a, "(a|b)*a(a|b){10}"), "");
    kl_arena_free(a);
}

Test(regex, classes_repeats_alternation) {
    cr_expect_str_eq(MATCHES("[^0-9x]{2,3}|\\d+", "ab", "abcd", "a1", "x1", "123", ""), "100010");
    cr_expect_str_eq(MATCHES("(?:ab){2}c?", "abab", "ababc", "ab", "ababcc"), "1100");
    cr_expect_str_eq(MATCHES("[[:alpha:]_][[:^space:]]*", "_x1", "a b", "9"), "100");
    cr_expect_str_eq(MATCHES("a.+?b|\\Q.*\\E", "axxb", "ab", ".*", "x"), "1010");
}

Test(regex, anchors_and_word_boundaries_on_transitions) {
    /* ^ and $ inside alternations, \b decided by the byte before and the byte after */
    cr_expect_str_eq(MATCHES("(\\W|^)x(\\W|$)", "x", " x ", "ax", "x!", "xa"), "11010");
    cr_expect_str_eq(MATCHES(".*\\bcom\\b.*", "a.com", "acom", "com!", "comx", "com"), "10101");
    cr_expect_str_eq(MATCHES("a\\Bb|\\B", "ab", "a", ""), "101");
    cr_expect_str_eq(MATCHES("(?m)a$\\n^b", "a\nb", "ab"), "10");
    cr_expect_str_eq(MATCHES("a^b", "ab"), "0");
}

Test(regex, dot_reads_utf8_characters) {
    /* é is 2 bytes, 中 3, 😀 4; \xff is no character; \n is not matched by . without (?s) */
    cr_expect_str_eq(MATCHES("...", "a\xc3\xa9\xe4\xb8\xad", "\xf0\x9f\x98\x80" "ab", "\xff" "ab",
                             "a\nb"),
                     "1100");
    cr_expect_str_eq(MATCHES("(?s:...)", "a\nb"), "1");
    cr_expect_str_eq(
        MATCHES("[\\x{e9}-\\x{4e2d}]", "\xc3\xa9", "\xe4\xb8\xad", "\xe4\xb8\xae", "a"), "1100");
}

Test(regex, invalid_and_unsupported_patterns) {
    kl_arena *a = kl_arena_new();
    cr_expect(strstr(error_of(a, "(ab"), "missing ')'"));
    cr_expect(strstr(error_of(a, "ab)"), "unmatched ')'"));
    cr_expect(strstr(error_of(a, "a**"), "bad repetition operator '**'"));
    cr_expect(strstr(error_of(a, "a{1001}"), "bad repetition operator"));
    cr_expect(strstr(error_of(a, "(a{100}){100}"), "multiply past 1000"));
    cr_expect(strstr(error_of(a, "[z-a]"), "invalid character class range 'z-a'"));
    cr_expect(strstr(error_of(a, "(a)\\1"), "backreferences"));
    cr_expect(strstr(error_of(a, "\\p{Greek}"), "not supported"));
    cr_expect(strstr(error_of(a, "(?i)a"), "not supported"));
    cr_expect(strstr(error_of(a, "(?=a)"), "lookaround"));
    cr_expect(strstr(error_of(a, "\xff"), "invalid UTF-8"));
    kl_arena_free(a);
}
