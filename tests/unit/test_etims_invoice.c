/*
 * test_etims_invoice.c — a sale as eTIMS's saveTrnsSalesOsdc body (tax/etims/invoice.h): the
 * exact text of the contract's example, amounts that dump as their exact decimals, the tax
 * rule per item and per band against hand-computed cases (rounding edges included), payment
 * types, and dates in Nairobi across UTC midnight whatever the process's time zone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/limits.h"
#include "common/money.h"
#include "tax/etims/invoice.h"
#include "test_util.h"

#define T_2026_12_03_1430_EAT_MS 1796297400000LL /* 11:30:00Z */
#define T_2026_12_03_2059_59Z_MS 1796331599000LL /* 23:59:59 EAT */
#define T_2026_12_03_2100Z_MS 1796331600000LL    /* 2026-12-04 00:00:00 EAT */
#define T_2028_02_28_2100Z_MS 1835384400000LL    /* 2028-02-29 00:00:00 EAT */

static char *dump(const json_t *j)
{
    char *s = json_dumps(j, DUKA_ETIMS_JSON_FLAGS);
    if (s == NULL)
        abort();
    return s;
}

static duka_sale *sale_of(const line_spec *lines, int n, int64_t created_ms)
{
    duka_sale *s = duka_sale_new();
    assert_non_null(s);
    sale_build(s, "T01", "T01-20261203-00042", created_ms, lines, n, "cash", NULL);
    duka_err err = {0};
    assert_ok(duka_sale_validate(s, &err), &err);
    return s;
}

/* ---- the contract's example, byte for byte ---- */

static void test_body_example_exact(void **state)
{
    (void)state;
    const line_spec lines[] = {{"SKU1", 2000, 5800, 'B'}};
    duka_sale *s = sale_of(lines, 1, T_2026_12_03_1430_EAT_MS);
    json_t *body = duka_etims_invoice_body(s, 'S', NULL, "Mama Duka");
    assert_non_null(body);
    char *text = dump(body);
    const char *expected =
        "{\"trdInvcNo\":\"T01-20261203-00042\",\"custTin\":\"\",\"custNm\":\"\","
        "\"salesTyCd\":\"N\",\"rcptTyCd\":\"S\",\"pmtTyCd\":\"01\",\"salesSttsCd\":\"02\","
        "\"cfmDt\":\"20261203143000\",\"salesDt\":\"20261203\",\"stockRlsDt\":null,"
        "\"cnclReqDt\":null,\"cnclDt\":null,\"rfdDt\":null,\"rfdRsnCd\":null,\"totItemCnt\":1,"
        "\"taxblAmtA\":0,\"taxblAmtB\":116.0,\"taxblAmtC\":0,\"taxblAmtD\":0,\"taxblAmtE\":0,"
        "\"taxRtA\":0,\"taxRtB\":16,\"taxRtC\":0,\"taxRtD\":0,\"taxRtE\":8,"
        "\"taxAmtA\":0,\"taxAmtB\":16.0,\"taxAmtC\":0,\"taxAmtD\":0,\"taxAmtE\":0,"
        "\"totTaxblAmt\":116.0,\"totTaxAmt\":16.0,\"totAmt\":116.0,"
        "\"prchrAcptcYn\":\"N\",\"remark\":null,\"regrId\":\"duka\",\"regrNm\":\"duka\","
        "\"modrId\":\"duka\",\"modrNm\":\"duka\","
        "\"receipt\":{\"custTin\":null,\"custMblNo\":null,\"rptNo\":null,"
        "\"trdeNm\":\"Mama Duka\",\"adrs\":null,\"topMsg\":\"Mama Duka\","
        "\"btmMsg\":\"Thank you\",\"prchrAcptcYn\":\"N\"},"
        "\"itemList\":[{\"itemSeq\":1,\"itemCd\":\"SKU1\",\"itemClsCd\":\"99000000\","
        "\"itemNm\":\"Product SKU1\",\"bcd\":null,\"pkgUnitCd\":\"NT\",\"pkg\":1,"
        "\"qtyUnitCd\":\"U\",\"qty\":2.0,\"prc\":58.0,\"splyAmt\":116.0,\"dcRt\":0,"
        "\"dcAmt\":0,\"isrccCd\":null,\"isrccNm\":null,\"isrcRt\":null,\"isrcAmt\":null,"
        "\"taxTyCd\":\"B\",\"taxblAmt\":116.0,\"taxAmt\":16.0,\"totAmt\":116.0}]}";
    assert_string_equal(text, expected);
    free(text);
    json_decref(body);
    duka_sale_free(s);
}

/* ---- amounts ---- */

/* The decimal of cents as eTIMS should read it: "116.0", "1160.5", "0.01". */
static void decimal_of(int64_t cents, char *buf, size_t len)
{
    int64_t frac = cents % 100;
    if (frac == 0)
        snprintf(buf, len, "%" PRId64 ".0", cents / 100);
    else if (frac % 10 == 0)
        snprintf(buf, len, "%" PRId64 ".%" PRId64, cents / 100, frac / 10);
    else
        snprintf(buf, len, "%" PRId64 ".%02" PRId64, cents / 100, frac);
}

static void check_amount(int64_t cents)
{
    json_t *j = duka_etims_amount_json(cents);
    assert_non_null(j);
    char *got = json_dumps(j, DUKA_ETIMS_JSON_FLAGS | JSON_ENCODE_ANY);
    char want[48];
    decimal_of(cents, want, sizeof(want));
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%" PRId64 " cents dumped as %s, expected %s", cents, got ? got : "(null)",
                 want);
    free(got);
    json_decref(j);
}

static void test_amount_dumps_exactly(void **state)
{
    (void)state;
    check_amount(11600);
    check_amount(116050);
    check_amount(1);
    check_amount(7);
    check_amount(30); /* 0.3, the classic 0.1 + 0.2 */
    check_amount(0);
    /* jansson's default precision (17) writes 0.07 as 0.070000000000000007: the flags
     * matter. */
    json_t *j = duka_etims_amount_json(7);
    char *dflt = json_dumps(j, JSON_ENCODE_ANY);
    assert_string_equal(dflt, "0.070000000000000007");
    free(dflt);
    json_decref(j);
    for (int64_t c = 0; c <= 300000; c++)
        check_amount(c);
    /* Up to the limit: a spread of magnitudes and every last two digits. */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int digits = 3 + i % 13; /* 3..15 digits */
        int64_t mod = 1;
        for (int k = 0; k < digits; k++)
            mod *= 10;
        check_amount((int64_t)(x % (uint64_t)mod));
    }
    check_amount(DUKA_ETIMS_AMOUNT_CENTS_MAX);
    check_amount(DUKA_ETIMS_AMOUNT_CENTS_MAX - 1);
    check_amount(DUKA_ETIMS_AMOUNT_CENTS_MAX - 90);
}

/* ---- the tax rule ---- */

static int64_t cents_at(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return (int64_t)llround(json_number_value(v) * 100.0);
}

/* Checks the body against the bands: each band total, the totals, and every item's own
 * amounts adding up to its band. */
static void check_body_arithmetic(const duka_sale *s, const json_t *body)
{
    duka_etims_bands b;
    duka_etims_sale_bands(s, &b);
    int64_t items_taxbl[5] = {0}, items_tax[5] = {0};
    const json_t *items = json_object_get(body, "itemList");
    assert_int_equal(json_array_size(items), (size_t)s->line_count);
    assert_int_equal(json_integer_value(json_object_get(body, "totItemCnt")), s->line_count);
    for (size_t i = 0; i < json_array_size(items); i++) {
        const json_t *it = json_array_get(items, i);
        assert_int_equal(json_integer_value(json_object_get(it, "itemSeq")), (json_int_t)i + 1);
        int band = json_string_value(json_object_get(it, "taxTyCd"))[0] - 'A';
        assert_int_equal(cents_at(it, "splyAmt"), cents_at(it, "taxblAmt"));
        assert_int_equal(cents_at(it, "totAmt"), cents_at(it, "taxblAmt"));
        assert_int_equal(cents_at(it, "taxblAmt"), s->lines[i].line_total_cents);
        items_taxbl[band] += cents_at(it, "taxblAmt");
        items_tax[band] += cents_at(it, "taxAmt");
    }
    int64_t taxbl = 0, tax = 0;
    for (int k = 0; k < 5; k++) {
        char key[16];
        snprintf(key, sizeof(key), "taxblAmt%c", 'A' + k);
        assert_int_equal(cents_at(body, key), b.taxbl_cents[k]);
        assert_int_equal(items_taxbl[k], b.taxbl_cents[k]);
        snprintf(key, sizeof(key), "taxAmt%c", 'A' + k);
        assert_int_equal(cents_at(body, key), b.tax_cents[k]);
        assert_int_equal(items_tax[k], b.tax_cents[k]);
        taxbl += b.taxbl_cents[k];
        tax += b.tax_cents[k];
    }
    assert_int_equal(cents_at(body, "totTaxblAmt"), taxbl);
    assert_int_equal(cents_at(body, "totTaxAmt"), tax);
    assert_int_equal(cents_at(body, "totAmt"), taxbl);
    assert_int_equal(taxbl, s->total_cents);
    assert_int_equal(tax, s->tax_cents);
}

static void test_bands_hand_computed(void **state)
{
    (void)state;
    const line_spec one_cent[] = {{"C1", 1000, 1, 'B'}};
    const line_spec four_cents[] = {{"C4", 1000, 4, 'B'}};
    const line_spec seven_e[] = {{"E7", 1000, 7, 'E'}};
    const line_spec five_lines[] = {{"L1", 1000, 3333, 'B'}, {"L2", 1000, 3333, 'B'},
                                    {"L3", 1000, 3333, 'B'}, {"L4", 1000, 3333, 'B'},
                                    {"L5", 1000, 3333, 'B'}};
    const line_spec five_qty[] = {{"Q5", 5000, 3333, 'B'}};
    const line_spec mixed[] = {{"A1", 1000, 10000, 'A'}, {"B1", 1000, 11600, 'B'},
                               {"C1", 1000, 5000, 'C'},  {"D1", 1000, 2000, 'D'},
                               {"E1", 1000, 10800, 'E'}, {"B2", 1500, 1999, 'B'}};
    const struct {
        const char *what;
        const line_spec *lines;
        int n;
        int64_t taxbl[5], tax[5];
    } cases[] = {
        /* 0.01 in B: 16/116 of a cent rounds to nothing */
        {"0.01 B", one_cent, 1, {0, 1, 0, 0, 0}, {0, 0, 0, 0, 0}},
        /* 0.04 in B: 0.5517 cents rounds up */
        {"0.04 B", four_cents, 1, {0, 4, 0, 0, 0}, {0, 1, 0, 0, 0}},
        /* 0.07 in E: 8/108 of 7 = 0.5185 rounds up */
        {"0.07 E", seven_e, 1, {0, 0, 0, 0, 7}, {0, 0, 0, 0, 1}},
        /* five items of 33.33: 4.5972 each rounds to 4.60, so the band is 23.00 — per item,
         * not 22.99 as the band total 166.65 would give */
        {"5 x 33.33", five_lines, 5, {0, 16665, 0, 0, 0}, {0, 2300, 0, 0, 0}},
        /* one item of 5 x 33.33 = 166.65: 22.986 rounds to 22.99 */
        {"33.33 qty 5", five_qty, 1, {0, 16665, 0, 0, 0}, {0, 2299, 0, 0, 0}},
        /* every band: 116.00 B carries 16.00, 108.00 E 8.00, 1.5 x 19.99 = 29.985 -> 29.99
         * (half up) in B carries 4.1366 -> 4.14 */
        {"mixed", mixed, 6, {10000, 11600 + 2999, 5000, 2000, 10800},
         {0, 1600 + 414, 0, 0, 800}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_sale *s = sale_of(cases[i].lines, cases[i].n, T_2026_12_03_1430_EAT_MS);
        duka_etims_bands b;
        duka_etims_sale_bands(s, &b);
        for (int k = 0; k < 5; k++)
            if (b.taxbl_cents[k] != cases[i].taxbl[k] || b.tax_cents[k] != cases[i].tax[k])
                fail_msg("%s band %c: taxbl %" PRId64 " tax %" PRId64 ", expected %" PRId64
                         " %" PRId64,
                         cases[i].what, 'A' + k, b.taxbl_cents[k], b.tax_cents[k],
                         cases[i].taxbl[k], cases[i].tax[k]);
        json_t *body = duka_etims_invoice_body(s, 'S', NULL, "Shop");
        assert_non_null(body);
        check_body_arithmetic(s, body);
        json_decref(body);
        duka_sale_free(s);
    }
}

static void test_mixed_bands_text(void **state)
{
    (void)state;
    const line_spec lines[] = {{"A1", 1000, 10000, 'A'}, {"B1", 1000, 11600, 'B'},
                               {"E1", 500, 10850, 'E'}};
    duka_sale *s = sale_of(lines, 3, T_2026_12_03_1430_EAT_MS);
    json_t *body = duka_etims_invoice_body(s, 'S', NULL, "Shop");
    char *text = dump(body);
    /* E: 0.5 x 108.50 = 54.25, tax 54.25 x 8/108 = 4.0185 -> 4.02 */
    assert_contains(text, "\"taxblAmtA\":100.0,\"taxblAmtB\":116.0,\"taxblAmtC\":0,"
                          "\"taxblAmtD\":0,\"taxblAmtE\":54.25,");
    assert_contains(text, "\"taxAmtA\":0.0,\"taxAmtB\":16.0,\"taxAmtC\":0,\"taxAmtD\":0,"
                          "\"taxAmtE\":4.02,");
    assert_contains(text, "\"totTaxblAmt\":270.25,\"totTaxAmt\":20.02,\"totAmt\":270.25,");
    assert_contains(text, "\"qty\":0.5,\"prc\":108.5,\"splyAmt\":54.25,");
    free(text);
    json_decref(body);
    duka_sale_free(s);
}

static void test_500_lines(void **state)
{
    (void)state;
    static line_spec lines[DUKA_SALE_LINES_MAX];
    static char skus[DUKA_SALE_LINES_MAX][16];
    for (int i = 0; i < DUKA_SALE_LINES_MAX; i++) {
        snprintf(skus[i], sizeof(skus[i]), "S%03d", i);
        lines[i].sku = skus[i];
        lines[i].qty_milli = 1000 + 37 * i;
        lines[i].unit_price_cents = 1 + 3333 * (i % 7) + i;
        lines[i].tax_band = "ABCDEB"[i % 6];
    }
    duka_sale *s = sale_of(lines, DUKA_SALE_LINES_MAX, T_2026_12_03_1430_EAT_MS);
    json_t *body = duka_etims_invoice_body(s, 'S', NULL, "Shop");
    assert_non_null(body);
    check_body_arithmetic(s, body);
    /* And again from the text, as eTIMS reads it. */
    char *text = dump(body);
    json_t *back = json_loads(text, 0, NULL);
    assert_non_null(back);
    check_body_arithmetic(s, back);
    assert_not_contains(text, "e+");
    assert_not_contains(text, "e-");
    /* No number with more than 3 decimals (amounts 2, quantities 3). */
    for (const char *p = text; *p != '\0'; p++) {
        if (*p != '.' || p == text || p[-1] < '0' || p[-1] > '9')
            continue;
        size_t decimals = strspn(p + 1, "0123456789");
        if (decimals > 3)
            fail_msg("a number with %zu decimals: %.40s", decimals, p - 8);
    }
    free(text);
    json_decref(back);
    json_decref(body);
    duka_sale_free(s);
}

/* ---- payments, dates, credit notes ---- */

static const char *pmt_of(duka_sale *s)
{
    static char code[8];
    json_t *body = duka_etims_invoice_body(s, 'S', NULL, "Shop");
    assert_non_null(body);
    snprintf(code, sizeof(code), "%s", json_string_value(json_object_get(body, "pmtTyCd")));
    json_decref(body);
    return code;
}

static void set_payments(duka_sale *s, const char *a, const char *b)
{
    s->payment_count = b ? 2 : 1;
    snprintf(s->payments[0].method, sizeof(s->payments[0].method), "%s", a);
    s->payments[0].amount_cents = b ? s->total_cents / 2 : s->total_cents;
    if (b) {
        snprintf(s->payments[1].method, sizeof(s->payments[1].method), "%s", b);
        s->payments[1].amount_cents = s->total_cents - s->total_cents / 2;
    }
}

static void test_payment_types(void **state)
{
    (void)state;
    const line_spec lines[] = {{"P1", 1000, 10000, 'B'}};
    duka_sale *s = sale_of(lines, 1, T_2026_12_03_1430_EAT_MS);
    const struct {
        const char *a, *b, *code;
    } cases[] = {
        {"cash", NULL, "01"},    {"card", NULL, "05"},     {"mpesa", NULL, "06"},
        {"cash", "mpesa", "07"}, {"card", "cash", "07"},   {"mpesa", "card", "07"},
        {"cash", "cash", "01"},  {"mpesa", "mpesa", "06"}, {"card", "card", "05"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_payments(s, cases[i].a, cases[i].b);
        if (strcmp(pmt_of(s), cases[i].code) != 0)
            fail_msg("%s+%s: pmtTyCd %s, expected %s", cases[i].a,
                     cases[i].b ? cases[i].b : "-", pmt_of(s), cases[i].code);
    }
    s->payment_count = 0;
    assert_string_equal(pmt_of(s), "01");
    duka_sale_free(s);
}

static void check_dates(int64_t ms, const char *cfm, const char *day)
{
    const line_spec lines[] = {{"D1", 1000, 100, 'A'}};
    duka_sale *s = sale_of(lines, 1, ms);
    json_t *body = duka_etims_invoice_body(s, 'S', NULL, "Shop");
    assert_string_equal(json_string_value(json_object_get(body, "cfmDt")), cfm);
    assert_string_equal(json_string_value(json_object_get(body, "salesDt")), day);
    json_decref(body);
    duka_sale_free(s);
}

static void test_dates_in_nairobi(void **state)
{
    (void)state;
    /* The process's zone must not matter: try it in three. */
    const char *zones[] = {"UTC0", "EST5EDT", "EAT-3"};
    for (size_t z = 0; z < 3; z++) {
        setenv("TZ", zones[z], 1);
        tzset();
        check_dates(T_2026_12_03_1430_EAT_MS, "20261203143000", "20261203");
        check_dates(T_2026_12_03_2059_59Z_MS, "20261203235959", "20261203");
        check_dates(T_2026_12_03_2059_59Z_MS + 999, "20261203235959", "20261203");
        check_dates(T_2026_12_03_2100Z_MS, "20261204000000", "20261204");
        check_dates(T_2028_02_28_2100Z_MS, "20280229000000", "20280229");
        check_dates(0, "19700101030000", "19700101");
    }
    unsetenv("TZ");
    tzset();
}

static void test_credit_note(void **state)
{
    (void)state;
    const line_spec lines[] = {{"R1", 1000, 11600, 'B'}};
    duka_sale *s = sale_of(lines, 1, T_2026_12_03_1430_EAT_MS);
    json_t *body = duka_etims_invoice_body(s, 'R', "03", "Shop");
    assert_string_equal(json_string_value(json_object_get(body, "rcptTyCd")), "R");
    assert_string_equal(json_string_value(json_object_get(body, "rfdRsnCd")), "03");
    assert_int_equal(cents_at(body, "totAmt"), 11600); /* positive */
    assert_null(json_object_get(body, "invcNo"));
    assert_null(json_object_get(body, "orgInvcNo"));
    json_decref(body);
    duka_sale_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_example_exact), cmocka_unit_test(test_amount_dumps_exactly),
        cmocka_unit_test(test_bands_hand_computed), cmocka_unit_test(test_mixed_bands_text),
        cmocka_unit_test(test_500_lines),          cmocka_unit_test(test_payment_types),
        cmocka_unit_test(test_dates_in_nairobi),   cmocka_unit_test(test_credit_note),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
