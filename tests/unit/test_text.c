/*
 * test_text.c — display columns of UTF-8 text (common/text.h): what `duka catalog` pads its
 * columns with. printf pads by bytes, so "Café Touba" (11 bytes, 10 columns) came out one
 * column short and "Sukuma wiki 🌿" three; duka_text_fit pads and cuts by columns, never
 * inside a character, and keeps a combining mark with the letter it belongs to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/text.h"

#define EM_DASH "\xe2\x80\x94"         /* U+2014, one column */
#define ELLIPSIS "\xe2\x80\xa6"        /* U+2026, marks a cut */
#define HERB "\xf0\x9f\x8c\xbf"        /* U+1F33F, an emoji: two columns */
#define ACUTE "\xcc\x81"               /* U+0301 COMBINING ACUTE ACCENT: none */
#define E_ACUTE "\xc3\xa9"             /* U+00E9, precomposed */

static const char *const names[] = {
    "Mandazi ya nazi " EM_DASH " 6 pcs",
    "Caf" E_ACUTE " Touba",
    "Cafe" ACUTE " Touba",
    "Sukuma wiki " HERB,
    HERB HERB HERB,
    "Jogoo Maize Flour 2kg",
    "",
};

/* True when s is valid UTF-8 (no cut character, no stray continuation byte). */
static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
        if (n < 0)
            return 0;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return 0;
    }
    return 1;
}

static void test_width_counts_columns_not_bytes(void **state)
{
    (void)state;
    assert_int_equal(duka_text_width(names[0]), 23);
    assert_int_equal(duka_text_width(names[1]), 10);
    assert_int_equal(duka_text_width(names[2]), 10); /* the accent takes no column */
    assert_int_equal(duka_text_width(names[3]), 14); /* the herb takes two */
    assert_int_equal(duka_text_width(names[4]), 6);
    assert_int_equal(duka_text_width(""), 0);
    assert_int_equal(duka_text_width("A\xff" "B"), 3); /* an invalid byte is one column */
}

static void test_fit_pads_to_columns(void **state)
{
    (void)state;
    char out[128];
    duka_text_fit(out, sizeof(out), names[1], 12);
    assert_string_equal(out, "Caf" E_ACUTE " Touba  ");
    duka_text_fit(out, sizeof(out), names[3], 16);
    assert_string_equal(out, "Sukuma wiki " HERB "  ");
    duka_text_fit(out, sizeof(out), names[3], 14); /* exactly its width: as it is */
    assert_string_equal(out, names[3]);
    duka_text_fit(out, sizeof(out), "", 3);
    assert_string_equal(out, "   ");
}

static void test_fit_cuts_at_a_character_with_an_ellipsis(void **state)
{
    (void)state;
    char out[128];
    duka_text_fit(out, sizeof(out), names[0], 10);
    assert_string_equal(out, "Mandazi y" ELLIPSIS);
    duka_text_fit(out, sizeof(out), names[0], 17); /* the dash is the last column kept */
    assert_string_equal(out, "Mandazi ya nazi " ELLIPSIS);
    duka_text_fit(out, sizeof(out), names[0], 18);
    assert_string_equal(out, "Mandazi ya nazi " EM_DASH ELLIPSIS);
    duka_text_fit(out, sizeof(out), names[3], 13); /* no room for the herb */
    assert_string_equal(out, "Sukuma wiki " ELLIPSIS);
    duka_text_fit(out, sizeof(out), names[4], 4); /* half a herb is never shown: a space */
    assert_string_equal(out, HERB ELLIPSIS " ");
    duka_text_fit(out, sizeof(out), names[2], 5); /* the accent stays with its e */
    assert_string_equal(out, "Cafe" ACUTE ELLIPSIS);
    duka_text_fit(out, sizeof(out), names[0], 1);
    assert_string_equal(out, ELLIPSIS);
    duka_text_fit(out, sizeof(out), names[0], 0);
    assert_string_equal(out, "");
}

static void test_fit_replaces_invalid_bytes(void **state)
{
    (void)state;
    char out[64];
    duka_text_fit(out, sizeof(out), "A\xff" "B\xe2\x80", 6); /* a cut U+2026 at the end */
    assert_string_equal(out, "A?B?? ");
    duka_text_fit(out, sizeof(out), "\xc0\xaf" "x", 3); /* an overlong '/' is not a '/' */
    assert_string_equal(out, "??x");
    duka_text_fit(out, sizeof(out), "tab\there", 8); /* a control would break the column */
    assert_string_equal(out, "tab?here");
}

/* Every name at every width: valid UTF-8 of exactly that many columns, and its bytes fit a
 * buffer of 4 bytes a column (the most a column can take, a cut mark included) plus the NUL. */
static void test_fit_is_exact_for_every_width(void **state)
{
    (void)state;
    char out[4 * 40 + 1];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        for (int cols = 0; cols <= 40; cols++) {
            size_t n = duka_text_fit(out, 4 * (size_t)cols + 1, names[i], cols);
            assert_int_equal(n, strlen(out));
            assert_true(valid_utf8(out));
            assert_int_equal(duka_text_width(out), cols);
        }
}

/* A buffer too small for the columns asked: never a cut character, always NUL-terminated. */
static void test_fit_small_buffer_never_cuts_a_character(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        for (size_t size = 1; size < 24; size++) {
            char out[24];
            memset(out, 'Z', sizeof(out));
            size_t n = duka_text_fit(out, size, names[i], 30);
            assert_true(n < size);
            assert_int_equal(out[n], '\0');
            assert_true(valid_utf8(out));
            assert_true(duka_text_width(out) <= 30);
        }
    assert_int_equal(duka_text_fit(NULL, 0, names[0], 10), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_width_counts_columns_not_bytes),
        cmocka_unit_test(test_fit_pads_to_columns),
        cmocka_unit_test(test_fit_cuts_at_a_character_with_an_ellipsis),
        cmocka_unit_test(test_fit_replaces_invalid_bytes),
        cmocka_unit_test(test_fit_is_exact_for_every_width),
        cmocka_unit_test(test_fit_small_buffer_never_cuts_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
