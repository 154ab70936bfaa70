/*
 * test_money.c — amounts, quantities and VAT (common/money.h).
 *
 * Rounding is half up everywhere. For line totals (price x qty / 1000) an exact .5 happens
 * and is tested directly. For VAT an exact .5 can never happen: for band B the tax is
 * 16g/116 = 4g/29, and a fraction of exactly 1/2 would need 8g/29 to be an odd integer, but
 * 29 | 8g forces 29 | g and then 8g/29 is even; the same argument holds for E (2g/27). So
 * VAT is tested at the remainders closest to one half from below and from above (14/29 and
 * 15/29 for B, 13/27 and 14/27 for E), and exhaustively against an independent reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/error.h"
#include "common/limits.h"
#include "common/money.h"
#include "test_util.h"

/* ---- tax bands ---- */

static void test_tax_band_valid_and_rate(void **state)
{
    (void)state;
    const struct {
        int band;
        bool valid;
        int rate;
    } cases[] = {
        {'A', true, 0}, {'B', true, 16}, {'C', true, 0}, {'D', true, 0}, {'E', true, 8},
        {'@', false, 0}, {'F', false, 0}, {'a', false, 0}, {'b', false, 0}, {0, false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(duka_tax_band_valid(cases[i].band), cases[i].valid);
        if (cases[i].valid)
            assert_int_equal(duka_tax_band_rate((duka_tax_band)cases[i].band), cases[i].rate);
    }
}

static void test_tax_of_gross_table(void **state)
{
    (void)state;
    const struct {
        int64_t gross;
        char band;
        int64_t tax;
    } cases[] = {
        /* exempt, zero-rated and non-VAT bands never carry tax */
        {11600, 'A', 0}, {11600, 'C', 0}, {11600, 'D', 0}, {1, 'A', 0},
        {999999999, 'C', 0}, {123457, 'D', 0},
        /* zero gross */
        {0, 'B', 0}, {0, 'E', 0},
        /* B, 16 % inclusive: exact amounts */
        {116, 'B', 16}, {11600, 'B', 1600}, {23200, 'B', 3200},
        /* B: 4g/29, below and above one half */
        {3, 'B', 0},   /* 0.4138 */
        {4, 'B', 1},   /* 0.5517 */
        {18, 'B', 2},  /* 2.4828: remainder 14/29, closest below .5 -> down */
        {11, 'B', 2},  /* 1.5172: remainder 15/29, closest above .5 -> up */
        {100, 'B', 14},     /* 13.79 */
        {100018, 'B', 13796}, /* 13795.586 */
        /* E, 8 % inclusive */
        {108, 'E', 8}, {10800, 'E', 800},
        {20, 'E', 1},  /* 1.4815: remainder 13/27, closest below .5 -> down */
        {7, 'E', 1},   /* 0.5185: remainder 14/27, closest above .5 -> up */
        {6, 'E', 0},   /* 0.4444 */
        {100, 'E', 7}, /* 7.407 */
        {11600, 'E', 859}, /* 859.26 */
        /* the largest line total a sale can hold */
        {1000000000000000LL, 'B', 137931034482759LL}, /* 137931034482758.62 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = duka_tax_of_gross(cases[i].gross, (duka_tax_band)cases[i].band);
        if (got != cases[i].tax)
            fail_msg("tax of %lld band %c: %lld, expected %lld", (long long)cases[i].gross,
                     cases[i].band, (long long)got, (long long)cases[i].tax);
    }
}

/* round_half_up(n / d) computed another way: quotient plus one when 2 * remainder >= d. */
static int64_t reference_round(int64_t n, int64_t d)
{
    int64_t q = n / d, r = n % d;
    return q + (2 * r >= d ? 1 : 0);
}

static void test_tax_of_gross_exhaustive(void **state)
{
    (void)state;
    int64_t exact_half = 0;
    for (int64_t g = 0; g <= 200000; g++) {
        int64_t b = duka_tax_of_gross(g, DUKA_TAX_B);
        int64_t e = duka_tax_of_gross(g, DUKA_TAX_E);
        if (b != reference_round(g * 16, 116))
            fail_msg("band B gross %lld: %lld", (long long)g, (long long)b);
        if (e != reference_round(g * 8, 108))
            fail_msg("band E gross %lld: %lld", (long long)g, (long long)e);
        exact_half += (2 * ((g * 16) % 116) == 116) + (2 * ((g * 8) % 108) == 108);
    }
    /* The premise of the table above: no VAT amount ever ends in exactly half a cent. */
    assert_int_equal(exact_half, 0);
}

/* ---- line totals ---- */

static void test_line_total_table(void **state)
{
    (void)state;
    const struct {
        int64_t price, qty_milli, total;
    } cases[] = {
        {23050, 500, 11525},  /* 0.5 kg at 230.50 */
        {100, 333, 33},       /* 0.333 of 1.00 = 33.3 cents */
        {100, 335, 34},       /* 33.5 -> up */
        {100, 334, 33},       /* 33.4 */
        {1, 500, 1},          /* exactly half a cent -> up */
        {1, 499, 0},          /* just below half */
        {1, 501, 1},          /* just above half */
        {99, 500, 50},        /* 49.5 -> 50 */
        {101, 500, 51},       /* 50.5 -> 51 */
        {333, 1500, 500},     /* 499.5 -> 500 */
        {499, 1, 0},          /* 0.499 */
        {500, 1, 1},          /* 0.500 */
        {999, 1, 1},          /* 0.999 */
        {12000, 1000, 12000}, /* one unit */
        {12000, 2000, 24000},
        {12000, 1250, 15000},
        {0, 5000, 0},         /* free item */
        {DUKA_PRICE_CENTS_MAX, DUKA_QTY_MILLI_MAX, 1000000000000000LL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = duka_line_total(cases[i].price, cases[i].qty_milli);
        if (got != cases[i].total)
            fail_msg("line total %lld x %lld milli: %lld, expected %lld",
                     (long long)cases[i].price, (long long)cases[i].qty_milli, (long long)got,
                     (long long)cases[i].total);
    }
}

/* ---- parsing ---- */

static void test_parse_price_accepts(void **state)
{
    (void)state;
    const struct {
        const char *text;
        int64_t cents;
    } cases[] = {
        {"120", 12000},         {"120.5", 12050},     {"120.50", 12050},
        {"120.05", 12005},      {"0", 0},             {"0.01", 1},
        {"0.1", 10},            {"007", 700},         {"10000000", DUKA_PRICE_CENTS_MAX},
        {"10000000.00", DUKA_PRICE_CENTS_MAX},        {"9999999.99", DUKA_PRICE_CENTS_MAX - 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_err err = {0};
        int64_t cents = -7;
        duka_rc rc = duka_parse_price(cases[i].text, &cents, "price", &err);
        if (rc != DUKA_OK)
            fail_msg("'%s' rejected: %s", cases[i].text, err.msg);
        if (cents != cases[i].cents)
            fail_msg("'%s': %lld cents, expected %lld", cases[i].text, (long long)cents,
                     (long long)cases[i].cents);
        assert_int_equal(err.rc, DUKA_OK);
    }
}

static void test_parse_price_rejects(void **state)
{
    (void)state;
    const char *cases[] = {
        "abc", "", "1.234", "-5", "1e3", " 1", "1 ", "1.", ".5", ".", "+5", "1,000", "12a",
        "0x10", "10000000.01", "10000001", "99999999999", "9999999999999999999999",
        "1.2.3", "KES 5", "\t1",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_err err = {0};
        int64_t cents = -7;
        duka_rc rc = duka_parse_price(cases[i], &cents, "products.csv line 9, field price", &err);
        if (rc != DUKA_INPUT)
            fail_msg("'%s' accepted (rc %d, %lld cents)", cases[i], rc, (long long)cents);
        assert_int_equal(err.rc, DUKA_INPUT);
        assert_int_equal(cents, -7); /* nothing written on error */
        /* The sentence names what was being parsed, and the offending text. */
        assert_contains(err.msg, "products.csv line 9, field price");
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "'%s'", cases[i]);
        assert_contains(err.msg, quoted);
    }
    duka_err err = {0};
    int64_t cents = -7;
    assert_int_equal(duka_parse_price(NULL, &cents, "price of item 1", &err), DUKA_INPUT);
    assert_contains(err.msg, "price of item 1");
    assert_int_equal(cents, -7);
}

static void test_parse_qty_accepts(void **state)
{
    (void)state;
    const struct {
        const char *text;
        int64_t milli;
    } cases[] = {
        {"2", 2000},   {"0.5", 500},      {"1.250", 1250},           {"1.25", 1250},
        {"0.001", 1},  {"12.3", 12300},   {"1000000", DUKA_QTY_MILLI_MAX},
        {"999999.999", DUKA_QTY_MILLI_MAX - 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_err err = {0};
        int64_t milli = -7;
        duka_rc rc = duka_parse_qty(cases[i].text, &milli, "qty", &err);
        if (rc != DUKA_OK)
            fail_msg("'%s' rejected: %s", cases[i].text, err.msg);
        if (milli != cases[i].milli)
            fail_msg("'%s': %lld milli, expected %lld", cases[i].text, (long long)milli,
                     (long long)cases[i].milli);
    }
}

static void test_parse_qty_rejects(void **state)
{
    (void)state;
    const struct {
        const char *text;
        const char *says; /* a word the sentence must contain */
    } cases[] = {
        {"0", "zero"},          {"0.000", "zero"},    {"0.0", "zero"},
        {"-1", "negative"},     {"-0.5", "negative"}, {"1.2345", "at most 3 decimals"},
        {"x", "not a number"},  {"", "not a number"}, {".5", "not a number"},
        {"1.", "not a number"}, {"2 ", "not a number"}, {"1e3", "not a number"},
        {"1000000.001", "not a number"}, {"+1", "not a number"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_err err = {0};
        int64_t milli = -7;
        duka_rc rc = duka_parse_qty(cases[i].text, &milli, "item 2 (SUGAR1KG)", &err);
        if (rc != DUKA_INPUT)
            fail_msg("'%s' accepted (rc %d, %lld milli)", cases[i].text, rc, (long long)milli);
        assert_int_equal(milli, -7);
        assert_contains(err.msg, "item 2 (SUGAR1KG)");
        assert_contains(err.msg, cases[i].says);
    }
}

/* The first error recorded wins: later failures keep the first sentence. */
static void test_first_error_wins(void **state)
{
    (void)state;
    duka_err err = {0};
    int64_t v = 0;
    assert_int_equal(duka_parse_qty("0", &v, "first", &err), DUKA_INPUT);
    assert_int_equal(duka_parse_price("x", &v, "second", &err), DUKA_INPUT);
    assert_contains(err.msg, "first");
    assert_not_contains(err.msg, "second");
    duka_err_clear(&err);
    assert_int_equal(err.rc, DUKA_OK);
    assert_string_equal(err.msg, "");
    /* A NULL err is allowed and still returns the code. */
    assert_int_equal(duka_parse_price("x", &v, "p", NULL), DUKA_INPUT);
    assert_string_equal(duka_rc_name(DUKA_INPUT), "INPUT");
    assert_string_equal(duka_rc_message(DUKA_NOTFOUND), "not found");
}

/* ---- formatting ---- */

static void test_format_cents(void **state)
{
    (void)state;
    const struct {
        int64_t cents;
        const char *text;
    } cases[] = {
        {0, "0.00"},          {5, "0.05"},          {50, "0.50"},
        {100, "1.00"},        {12050, "120.50"},    {123456, "1234.56"},
        {DUKA_PRICE_CENTS_MAX, "10000000.00"},      {-5, "-0.05"},
        {-12345, "-123.45"},  {1000000000000000LL, "10000000000000.00"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        memset(buf, 'z', sizeof(buf));
        duka_format_cents(cases[i].cents, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
}

static void test_format_qty(void **state)
{
    (void)state;
    const struct {
        int64_t milli;
        const char *text;
    } cases[] = {
        {2000, "2"},   {500, "0.5"},   {1250, "1.25"}, {1, "0.001"},  {1010, "1.01"},
        {100, "0.1"},  {0, "0"},       {1000, "1"},    {999, "0.999"},
        {DUKA_QTY_MILLI_MAX, "1000000"}, {12300, "12.3"},
        /* a stock level below zero: one sign ("-2.-500" before) */
        {-2500, "-2.5"}, {-1000, "-1"}, {-1, "-0.001"}, {INT64_MIN, "-9223372036854775.808"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        duka_format_qty(cases[i].milli, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
}

/* What is formatted parses back to the same value. */
static void test_format_parse_round_trip(void **state)
{
    (void)state;
    const int64_t amounts[] = {0, 1, 9, 10, 99, 100, 12050, 99999, DUKA_PRICE_CENTS_MAX};
    for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
        char buf[32];
        int64_t back = -1;
        duka_err err = {0};
        duka_format_cents(amounts[i], buf, sizeof(buf));
        assert_ok(duka_parse_price(buf, &back, "price", &err), &err);
        assert_int_equal(back, amounts[i]);
    }
    const int64_t qtys[] = {1, 10, 100, 500, 1000, 1250, 999999, DUKA_QTY_MILLI_MAX};
    for (size_t i = 0; i < sizeof(qtys) / sizeof(qtys[0]); i++) {
        char buf[32];
        int64_t back = -1;
        duka_err err = {0};
        duka_format_qty(qtys[i], buf, sizeof(buf));
        assert_ok(duka_parse_qty(buf, &back, "qty", &err), &err);
        assert_int_equal(back, qtys[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tax_band_valid_and_rate),
        cmocka_unit_test(test_tax_of_gross_table),
        cmocka_unit_test(test_tax_of_gross_exhaustive),
        cmocka_unit_test(test_line_total_table),
        cmocka_unit_test(test_parse_price_accepts),
        cmocka_unit_test(test_parse_price_rejects),
        cmocka_unit_test(test_parse_qty_accepts),
        cmocka_unit_test(test_parse_qty_rejects),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_format_cents),
        cmocka_unit_test(test_format_qty),
        cmocka_unit_test(test_format_parse_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
