/*
 * test_sale_json.c — the sale as a fact (protocol/sale.h): its JSON form both ways, the
 * arithmetic and shape checks the till and the hub both make, and the identifier rules.
 * Every rejection must name the field it is about.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/money.h"
#include "protocol/sale.h"
#include "test_util.h"

static const line_spec base_lines[] = {
    {"SUGAR1KG", 2000, 23050, 'B'}, /* 461.00, VAT 63.59 */
    {"RICE", 500, 18000, 'E'},      /* 90.00, VAT 6.67 */
    {"MILK500", 1000, 6500, 'A'},   /* 65.00, exempt */
};

static duka_sale *base_sale(void)
{
    duka_sale *s = duka_sale_new();
    assert_non_null(s);
    sale_build(s, "T01", "T01-20261121-00042", T_2026_11_21_NOON_MS, base_lines, 3, "cash",
               NULL);
    return s;
}

static void assert_sales_equal(const duka_sale *a, const duka_sale *b)
{
    assert_string_equal(a->receipt_no, b->receipt_no);
    assert_string_equal(a->terminal, b->terminal);
    assert_int_equal(a->created_ms, b->created_ms);
    assert_int_equal(a->total_cents, b->total_cents);
    assert_int_equal(a->tax_cents, b->tax_cents);
    assert_int_equal(a->line_count, b->line_count);
    assert_int_equal(a->payment_count, b->payment_count);
    assert_string_equal(a->cashier_id, b->cashier_id);
    assert_string_equal(a->cashier_name, b->cashier_name);
    for (int i = 0; i < a->line_count; i++) {
        const duka_sale_line *x = &a->lines[i], *y = &b->lines[i];
        assert_string_equal(x->sku, y->sku);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->qty_milli, y->qty_milli);
        assert_int_equal(x->unit_price_cents, y->unit_price_cents);
        assert_int_equal(x->tax_band, y->tax_band);
        assert_int_equal(x->line_total_cents, y->line_total_cents);
        assert_int_equal(x->tax_cents, y->tax_cents);
    }
    for (int i = 0; i < a->payment_count; i++) {
        const duka_payment *x = &a->payments[i], *y = &b->payments[i];
        assert_string_equal(x->method, y->method);
        assert_int_equal(x->amount_cents, y->amount_cents);
        assert_string_equal(x->reference, y->reference);
        assert_string_equal(x->status, y->status);
    }
}

/* ---- round trip ---- */

static void test_base_sale_is_valid(void **state)
{
    (void)state;
    duka_sale *s = base_sale();
    assert_int_equal(s->total_cents, 61600);
    assert_int_equal(s->tax_cents, 7026);
    duka_err err = {0};
    assert_ok(duka_sale_validate(s, &err), &err);
    duka_sale_free(s);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    duka_sale *s = base_sale();
    /* Split payment: cash and M-Pesa, with a name that needs escaping. */
    s->payments[0].amount_cents = 50000;
    s->payment_count = 2;
    snprintf(s->payments[1].method, sizeof(s->payments[1].method), "mpesa");
    snprintf(s->payments[1].reference, sizeof(s->payments[1].reference), "QK12AB34CD");
    snprintf(s->payments[1].status, sizeof(s->payments[1].status), "pending_verification");
    s->payments[1].amount_cents = 11600;
    snprintf(s->lines[0].name, sizeof(s->lines[0].name), "Sugar \"Mumias\", 1 kg \\ bag");
    duka_err err = {0};
    assert_ok(duka_sale_validate(s, &err), &err);

    json_t *js = duka_sale_to_json(s);
    assert_non_null(js);
    assert_string_equal(json_string_value(json_object_get(js, "receipt_no")),
                        "T01-20261121-00042");
    assert_string_equal(json_string_value(json_object_get(js, "terminal")), "T01");
    assert_int_equal(json_integer_value(json_object_get(js, "created_ms")), T_2026_11_21_NOON_MS);
    assert_int_equal(json_integer_value(json_object_get(js, "total_cents")), 61600);
    assert_int_equal(json_integer_value(json_object_get(js, "tax_cents")), 7026);
    assert_int_equal(json_array_size(json_object_get(js, "lines")), 3);
    assert_int_equal(json_array_size(json_object_get(js, "payments")), 2);
    const json_t *l1 = json_array_get(json_object_get(js, "lines"), 1);
    assert_string_equal(json_string_value(json_object_get(l1, "tax_band")), "E");
    assert_int_equal(json_integer_value(json_object_get(l1, "qty_milli")), 500);
    assert_int_equal(json_integer_value(json_object_get(l1, "line_total_cents")), 9000);
    assert_int_equal(json_integer_value(json_object_get(l1, "tax_cents")), 667);
    assert_int_equal(json_integer_value(json_object_get(l1, "unit_price_cents")), 18000);

    /* Through text, as on the wire. */
    char *text = json_dumps(js, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(text);
    json_decref(js);
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(back);
    duka_sale *d = duka_sale_new();
    assert_non_null(d);
    memset(d, 0x5a, sizeof(*d)); /* from_json must not depend on a zeroed struct */
    assert_ok(duka_sale_from_json(back, d, &err), &err);
    assert_sales_equal(s, d);
    json_decref(back);
    duka_sale_free(d);
    duka_sale_free(s);
}

static void test_json_round_trip_max_lines(void **state)
{
    (void)state;
    static line_spec lines[DUKA_SALE_LINES_MAX];
    static char skus[DUKA_SALE_LINES_MAX][16];
    for (int i = 0; i < DUKA_SALE_LINES_MAX; i++) {
        snprintf(skus[i], sizeof(skus[i]), "SKU%03d", i);
        lines[i] = (line_spec){skus[i], 1 + i * 7, 100 + i * 13, (char)('A' + i % 5)};
    }
    duka_sale *s = duka_sale_new();
    assert_non_null(s);
    sale_build(s, "T01", "T01-20261121-100000", T_2026_11_21_NOON_MS, lines,
               DUKA_SALE_LINES_MAX, "cash", NULL);
    duka_err err = {0};
    assert_ok(duka_sale_validate(s, &err), &err);
    json_t *js = duka_sale_to_json(s);
    duka_sale *d = duka_sale_new();
    assert_non_null(d);
    assert_ok(duka_sale_from_json(js, d, &err), &err);
    assert_sales_equal(s, d);
    json_decref(js);
    duka_sale_free(d);
    duka_sale_free(s);
}

/* ---- the cashier of a sale ---- */

#define CASHIER_ID "01a23c44-f77d-7c0d-89ca-4d6dc6bc2690"

static duka_sale *cashier_sale(const char *id, const char *name)
{
    duka_sale *s = duka_sale_new();
    sale_build(s, "T01", "T01-20261121-00042", T_2026_11_21_NOON_MS, base_lines, 3, "cash", NULL);
    snprintf(s->cashier_id, sizeof(s->cashier_id), "%s", id);
    snprintf(s->cashier_name, sizeof(s->cashier_name), "%s", name);
    return s;
}

/* With a cashier the payload carries "cashier": {"id","name"} and decodes back to it; with
 * none the member is absent (a payload byte for byte as before cashiers), and absent or null
 * decodes to none. */
static void test_json_round_trip_cashier(void **state)
{
    (void)state;
    duka_err err = {0};
    duka_sale *s = cashier_sale(CASHIER_ID, "Zoë Wanjiru");
    assert_ok(duka_sale_validate(s, &err), &err);
    json_t *js = duka_sale_to_json(s);
    const json_t *c = json_object_get(js, "cashier");
    assert_string_equal(json_string_value(json_object_get(c, "id")), CASHIER_ID);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "Zoë Wanjiru");
    char *text = json_dumps(js, JSON_COMPACT);
    json_t *back = json_loads(text, 0, NULL);
    free(text);
    duka_sale *d = duka_sale_new();
    memset(d, 0x5a, sizeof(*d));
    assert_ok(duka_sale_from_json(back, d, &err), &err);
    assert_sales_equal(s, d);
    json_decref(back);
    json_decref(js);

    duka_sale *none = cashier_sale("", "");
    js = duka_sale_to_json(none);
    assert_null(json_object_get(js, "cashier"));
    memset(d, 0x5a, sizeof(*d));
    assert_ok(duka_sale_from_json(js, d, &err), &err);
    assert_string_equal(d->cashier_id, "");
    assert_string_equal(d->cashier_name, "");
    json_object_set_new(js, "cashier", json_null());
    assert_ok(duka_sale_from_json(js, d, &err), &err);
    assert_string_equal(d->cashier_id, "");
    json_decref(js);
    duka_sale_free(none);
    duka_sale_free(d);
    duka_sale_free(s);
}

/* A bad cashier member is refused naming its field. */
static void test_from_json_bad_cashier(void **state)
{
    (void)state;
    char long_name[DUKA_CASHIER_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name));
    long_name[DUKA_CASHIER_NAME_MAX + 1] = '\0';
    struct {
        json_t *cashier;
        const char *field;
    } bad[] = {
        {json_string("Amina"), "cashier: not an object"},
        {json_pack("{s:s}", "name", "Amina"), "cashier.id"},
        {json_pack("{s:s}", "id", CASHIER_ID), "cashier.name"},
        {json_pack("{s:s, s:s}", "id", "not-a-uuid", "name", "Amina"), "cashier.id"},
        {json_pack("{s:s, s:s}", "id", "", "name", "Amina"), "cashier.id"},
        {json_pack("{s:s, s:s}", "id", CASHIER_ID, "name", ""), "cashier.name"},
        {json_pack("{s:s, s:s}", "id", CASHIER_ID, "name", "A\nB"), "cashier.name"},
        {json_pack("{s:s, s:s}", "id", CASHIER_ID, "name", long_name), "cashier.name"},
        {json_pack("{s:s, s:i}", "id", CASHIER_ID, "name", 7), "cashier.name"},
    };
    duka_sale *s = cashier_sale("", "");
    duka_sale *d = duka_sale_new();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *js = duka_sale_to_json(s);
        json_object_set_new(js, "cashier", bad[i].cashier);
        duka_err err = {0};
        assert_rc(duka_sale_from_json(js, d, &err), DUKA_INPUT, &err);
        assert_contains(err.msg, bad[i].field);
        json_decref(js);
    }
    /* at the edge: a 40-byte name */
    long_name[DUKA_CASHIER_NAME_MAX] = '\0';
    duka_sale *edge = cashier_sale(CASHIER_ID, long_name);
    duka_err err = {0};
    json_t *js = duka_sale_to_json(edge);
    assert_ok(duka_sale_from_json(js, d, &err), &err);
    assert_string_equal(d->cashier_name, long_name);
    json_decref(js);
    duka_sale_free(edge);
    duka_sale_free(d);
    duka_sale_free(s);
}

/* ---- validate ---- */

static void m_line_total(duka_sale *s) { s->lines[1].line_total_cents += 1; }
static void m_line_tax(duka_sale *s) { s->lines[0].tax_cents += 1; }
static void m_line_tax_exempt(duka_sale *s) { s->lines[2].tax_cents = 1; }
static void m_total(duka_sale *s)
{
    s->total_cents += 100;
    s->payments[0].amount_cents += 100;
}
static void m_tax(duka_sale *s) { s->tax_cents -= 1; }
static void m_paid_short(duka_sale *s) { s->payments[0].amount_cents -= 1; }
static void m_paid_over(duka_sale *s) { s->payments[0].amount_cents = s->total_cents + 1; }
static void m_paid_negative(duka_sale *s)
{
    s->payment_count = 2;
    s->payments[1] = s->payments[0];
    s->payments[0].amount_cents = -5;
    s->payments[1].amount_cents = s->total_cents + 5;
}
static void m_paid_split_short(duka_sale *s)
{
    s->payment_count = 2;
    s->payments[1] = s->payments[0];
    s->payments[0].amount_cents = 30000;
    s->payments[1].amount_cents = 31599;
}
static void m_method(duka_sale *s) { snprintf(s->payments[0].method, 8, "bitcoin"); }
static void m_band_f(duka_sale *s) { s->lines[0].tax_band = 'F'; }
static void m_band_lower(duka_sale *s) { s->lines[1].tax_band = 'e'; }
static void m_band_nul(duka_sale *s) { s->lines[2].tax_band = '\0'; }
static void m_qty_zero(duka_sale *s) { s->lines[0].qty_milli = 0; }
static void m_qty_negative(duka_sale *s) { s->lines[2].qty_milli = -1000; }
static void m_qty_over(duka_sale *s) { s->lines[0].qty_milli = DUKA_QTY_MILLI_MAX + 1; }
static void m_price_negative(duka_sale *s) { s->lines[0].unit_price_cents = -1; }
static void m_price_over(duka_sale *s) { s->lines[1].unit_price_cents = DUKA_PRICE_CENTS_MAX + 1; }
static void m_created_negative(duka_sale *s) { s->created_ms = -1; }
static void m_created_over(duka_sale *s) { s->created_ms = DUKA_TIME_MS_MAX + 1; }
static void m_sku_empty(duka_sale *s) { s->lines[1].sku[0] = '\0'; }
static void m_sku_space(duka_sale *s) { snprintf(s->lines[0].sku, DUKA_SKU_MAX + 1, "SU GAR"); }
static void m_no_lines(duka_sale *s) { s->line_count = 0; }
static void m_too_many_lines(duka_sale *s) { s->line_count = DUKA_SALE_LINES_MAX + 1; }
static void m_no_payments(duka_sale *s) { s->payment_count = 0; }
static void m_too_many_payments(duka_sale *s) { s->payment_count = DUKA_SALE_PAYMENTS_MAX + 1; }
static void m_receipt_other_terminal(duka_sale *s)
{
    snprintf(s->receipt_no, DUKA_RECEIPT_NO_MAX + 1, "T02-20261121-00042");
}
static void m_receipt_prefix_terminal(duka_sale *s)
{
    snprintf(s->receipt_no, DUKA_RECEIPT_NO_MAX + 1, "T010-20261121-00042");
}
static void m_receipt_short_date(duka_sale *s)
{
    snprintf(s->receipt_no, DUKA_RECEIPT_NO_MAX + 1, "T01-2026112-00042");
}
static void m_receipt_short_seq(duka_sale *s)
{
    snprintf(s->receipt_no, DUKA_RECEIPT_NO_MAX + 1, "T01-20261121-0042");
}
static void m_receipt_trailing(duka_sale *s)
{
    snprintf(s->receipt_no, DUKA_RECEIPT_NO_MAX + 1, "T01-20261121-00042x");
}
static void m_receipt_empty(duka_sale *s) { s->receipt_no[0] = '\0'; }
static void m_terminal_bad(duka_sale *s)
{
    snprintf(s->terminal, DUKA_TERMINAL_ID_MAX + 1, "T-1");
    snprintf(s->receipt_no, DUKA_RECEIPT_NO_MAX + 1, "T-1-20261121-00042");
}
static void m_terminal_lower_case_other(duka_sale *s)
{
    snprintf(s->receipt_no, DUKA_RECEIPT_NO_MAX + 1, "t01-20261121-00042");
}

static void test_validate_rejects(void **state)
{
    (void)state;
    const struct {
        const char *name;
        void (*mutate)(duka_sale *);
        const char *says[2];
    } cases[] = {
        {"wrong line total", m_line_total, {"lines[1].line_total_cents", "9001, expected 9000"}},
        {"wrong line tax", m_line_tax, {"lines[0].tax_cents", "6360, expected 6359"}},
        {"tax on exempt line", m_line_tax_exempt, {"lines[2].tax_cents", "1, expected 0"}},
        {"total not the sum", m_total, {"total_cents: 61700", "add up to 61600"}},
        {"tax not the sum", m_tax, {"tax_cents: 7025", "add up to 7026"}},
        {"paid short", m_paid_short, {"payments", "61599 paid for a total of 61600"}},
        {"paid over", m_paid_over, {"payments[0].amount_cents", "61601"}},
        {"negative payment", m_paid_negative, {"payments[0].amount_cents", "-5 out of range"}},
        {"split short", m_paid_split_short, {"payments", "61599 paid"}},
        {"bad method", m_method, {"payments[0].method", "bitcoin"}},
        {"band F", m_band_f, {"lines[0].tax_band", "A-E"}},
        {"band lower case", m_band_lower, {"lines[1].tax_band", "A-E"}},
        {"band NUL", m_band_nul, {"lines[2].tax_band", "A-E"}},
        {"qty 0", m_qty_zero, {"lines[0].qty_milli", "0 out of range"}},
        {"qty negative", m_qty_negative, {"lines[2].qty_milli", "-1000"}},
        {"qty over max", m_qty_over, {"lines[0].qty_milli", "1000000001"}},
        {"price negative", m_price_negative, {"lines[0].unit_price_cents", "-1"}},
        {"price over max", m_price_over, {"lines[1].unit_price_cents", "1000000001"}},
        {"created before 1970", m_created_negative, {"created_ms", "-1 out of range"}},
        {"created after 9999", m_created_over, {"created_ms", "253402300800000 out of range"}},
        {"sku empty", m_sku_empty, {"lines[1].sku", "not a SKU"}},
        {"sku space", m_sku_space, {"lines[0].sku", "SU GAR"}},
        {"no lines", m_no_lines, {"lines", "not 0"}},
        {"too many lines", m_too_many_lines, {"lines", "1 to 500 lines, not 501"}},
        {"no payments", m_no_payments, {"payments", "not 0"}},
        {"too many payments", m_too_many_payments, {"payments", "1 to 8 payments, not 9"}},
        {"receipt of another terminal", m_receipt_other_terminal, {"receipt_no", "T02-"}},
        {"receipt of T010", m_receipt_prefix_terminal, {"receipt_no", "terminal T01"}},
        {"receipt date 7 digits", m_receipt_short_date, {"receipt_no", "2026112-"}},
        {"receipt seq 4 digits", m_receipt_short_seq, {"receipt_no", "-0042'"}},
        {"receipt trailing", m_receipt_trailing, {"receipt_no", "00042x"}},
        {"receipt empty", m_receipt_empty, {"receipt_no", "''"}},
        {"receipt case", m_terminal_lower_case_other, {"receipt_no", "t01-"}},
        {"bad terminal", m_terminal_bad, {"terminal", "T-1"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_sale *s = base_sale();
        cases[i].mutate(s);
        duka_err err = {0};
        duka_rc rc = duka_sale_validate(s, &err);
        duka_sale_free(s);
        if (rc != DUKA_INPUT)
            fail_msg("%s: rc %d, expected DUKA_INPUT", cases[i].name, rc);
        if (strstr(err.msg, cases[i].says[0]) == NULL || strstr(err.msg, cases[i].says[1]) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\" / \"%s\"", cases[i].name, err.msg,
                     cases[i].says[0], cases[i].says[1]);
    }
}

static void test_validate_accepts_edges(void **state)
{
    (void)state;
    duka_err err = {0};
    duka_sale *s = duka_sale_new();
    assert_non_null(s);
    /* The largest line: 10 million KES x one million units. */
    const line_spec big[] = {{"BIG", DUKA_QTY_MILLI_MAX, DUKA_PRICE_CENTS_MAX, 'B'}};
    sale_build(s, "ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOP-20261121-999999999999", 1, big, 1,
               "card", "AUTH-1");
    assert_ok(duka_sale_validate(s, &err), &err);
    assert_int_equal(s->total_cents, 1000000000000000LL);
    /* The first and the last millisecond a sale may carry. */
    s->created_ms = 0;
    assert_ok(duka_sale_validate(s, &err), &err);
    s->created_ms = DUKA_TIME_MS_MAX;
    assert_ok(duka_sale_validate(s, &err), &err);
    /* A free item: total 0, paid 0. */
    const line_spec free_item[] = {{"GIFT", 1000, 0, 'A'}};
    sale_build(s, "T_1", "T_1-20261121-00001", 1, free_item, 1, "cash", NULL);
    assert_ok(duka_sale_validate(s, &err), &err);
    /* 13 sequence digits are more than a receipt number can have. */
    sale_build(s, "T01", "T01-20261121-1234567890123", 1, free_item, 1, "cash", NULL);
    assert_int_equal(duka_sale_validate(s, &err), DUKA_INPUT);
    assert_contains(err.msg, "receipt_no");
    duka_sale_free(s);
}

/* ---- from_json: missing or wrong fields name the field ---- */

/* Returns the object holding the field: the sale itself, or lines[i] / payments[i]. */
static json_t *holder(json_t *sale, const char *array, size_t index)
{
    if (array == NULL)
        return sale;
    json_t *h = json_array_get(json_object_get(sale, array), index);
    assert_non_null(h);
    return h;
}

static void expect_from_json_error(json_t *js, const char *field, const char *also)
{
    duka_sale *d = duka_sale_new();
    assert_non_null(d);
    duka_err err = {0};
    duka_rc rc = duka_sale_from_json(js, d, &err);
    duka_sale_free(d);
    if (rc != DUKA_INPUT)
        fail_msg("%s: rc %d, expected DUKA_INPUT", field, rc);
    if (strstr(err.msg, field) == NULL || (also && strstr(err.msg, also) == NULL))
        fail_msg("message \"%s\" does not name \"%s\"%s%s", err.msg, field, also ? " / " : "",
                 also ? also : "");
}

static void test_from_json_missing_fields(void **state)
{
    (void)state;
    const struct {
        const char *array;
        size_t index;
        const char *key;
        const char *names;
    } cases[] = {
        {NULL, 0, "receipt_no", "receipt_no"},
        {NULL, 0, "terminal", "terminal"},
        {NULL, 0, "created_ms", "created_ms"},
        {NULL, 0, "total_cents", "total_cents"},
        {NULL, 0, "tax_cents", "tax_cents"},
        {NULL, 0, "lines", "lines"},
        {NULL, 0, "payments", "payments"},
        {"lines", 0, "sku", "lines[0].sku"},
        {"lines", 0, "name", "lines[0].name"},
        {"lines", 0, "qty_milli", "lines[0].qty_milli"},
        {"lines", 0, "unit_price_cents", "lines[0].unit_price_cents"},
        {"lines", 0, "tax_band", "lines[0].tax_band"},
        {"lines", 0, "line_total_cents", "lines[0].line_total_cents"},
        {"lines", 0, "tax_cents", "lines[0].tax_cents"},
        {"lines", 2, "qty_milli", "lines[2].qty_milli"},
        {"lines", 1, "sku", "lines[1].sku"},
        {"payments", 0, "method", "payments[0].method"},
        {"payments", 0, "amount_cents", "payments[0].amount_cents"},
        {"payments", 0, "reference", "payments[0].reference"},
        {"payments", 0, "status", "payments[0].status"},
    };
    duka_sale *s = base_sale();
    json_t *good = duka_sale_to_json(s);
    duka_sale_free(s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *js = json_deep_copy(good);
        assert_int_equal(json_object_del(holder(js, cases[i].array, cases[i].index),
                                         cases[i].key),
                         0);
        expect_from_json_error(js, cases[i].names, NULL);
        json_decref(js);
    }
    json_decref(good);
}

static void test_from_json_wrong_types(void **state)
{
    (void)state;
    const struct {
        const char *array;
        size_t index;
        const char *key;
        const char *value; /* JSON text */
        const char *names;
        const char *also;
    } cases[] = {
        {"lines", 0, "qty_milli", "\"2000\"", "lines[0].qty_milli", "not an integer"},
        {"lines", 0, "qty_milli", "2000.0", "lines[0].qty_milli", "not an integer"},
        {"lines", 1, "qty_milli", "null", "lines[1].qty_milli", NULL},
        {"lines", 0, "qty_milli", "0", "lines[0].qty_milli", "out of range"},
        {"lines", 0, "sku", "42", "lines[0].sku", "not a string"},
        {"lines", 0, "tax_band", "\"F\"", "lines[0].tax_band", "'F'"},
        {"lines", 0, "tax_band", "\"BB\"", "lines[0].tax_band", "'BB'"},
        {"lines", 0, "tax_band", "\"\"", "lines[0].tax_band", NULL},
        {"lines", 0, "tax_band", "\"BBBB\"", "lines[0].tax_band", "longer than"},
        {"lines", 2, "line_total_cents", "6501", "lines[2].line_total_cents", "expected 6500"},
        {"payments", 0, "amount_cents", "\"61600\"", "payments[0].amount_cents", NULL},
        {"payments", 0, "method", "\"cheque\"", "payments[0].method", "cheque"},
        {NULL, 0, "total_cents", "61600.0", "total_cents", "not an integer"},
        {NULL, 0, "created_ms", "true", "created_ms", NULL},
        {NULL, 0, "terminal", "\"T02\"", "receipt_no", NULL},
        {NULL, 0, "terminal", "\"ABCDEFGHIJKLMNOPQ\"", "terminal", "longer than 16"},
        {NULL, 0, "lines", "{}", "lines", "array"},
        {NULL, 0, "lines", "[]", "lines", "1 to 500"},
        {NULL, 0, "payments", "[]", "payments", "1 to 8"},
        {NULL, 0, "payments", "null", "payments", NULL},
    };
    duka_sale *s = base_sale();
    json_t *good = duka_sale_to_json(s);
    duka_sale_free(s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *js = json_deep_copy(good);
        json_error_t jerr;
        json_t *v = json_loads(cases[i].value, JSON_DECODE_ANY, &jerr);
        assert_non_null(v);
        assert_int_equal(json_object_set_new(holder(js, cases[i].array, cases[i].index),
                                             cases[i].key, v),
                         0);
        expect_from_json_error(js, cases[i].names, cases[i].also);
        json_decref(js);
    }

    /* A SKU one character too long for the field. */
    char long_sku[DUKA_SKU_MAX + 2];
    memset(long_sku, 'S', DUKA_SKU_MAX + 1);
    long_sku[DUKA_SKU_MAX + 1] = '\0';
    json_t *js = json_deep_copy(good);
    json_object_set_new(holder(js, "lines", 1), "sku", json_string(long_sku));
    expect_from_json_error(js, "lines[1].sku", "longer than 64");
    json_decref(js);

    /* A NUL inside a string. */
    js = json_deep_copy(good);
    json_object_set_new(holder(js, "lines", 0), "name", json_stringn("Sug\0ar", 6));
    expect_from_json_error(js, "lines[0].name", "NUL");
    json_decref(js);

    /* Elements that are not objects. */
    js = json_deep_copy(good);
    json_array_set_new(json_object_get(js, "lines"), 1, json_string("RICE"));
    expect_from_json_error(js, "lines[1]", "not an object");
    json_decref(js);
    js = json_deep_copy(good);
    json_array_set_new(json_object_get(js, "payments"), 0, json_integer(61600));
    expect_from_json_error(js, "payments[0]", "not an object");
    json_decref(js);

    /* Too many lines on the wire. */
    js = json_deep_copy(good);
    json_t *lines = json_object_get(js, "lines");
    json_t *first = json_array_get(lines, 0);
    while (json_array_size(lines) < DUKA_SALE_LINES_MAX + 1)
        json_array_append(lines, first);
    expect_from_json_error(js, "lines", "1 to 500");
    json_decref(js);

    /* Nine payments. */
    js = json_deep_copy(good);
    json_t *pays = json_object_get(js, "payments");
    json_t *p0 = json_array_get(pays, 0);
    while (json_array_size(pays) < DUKA_SALE_PAYMENTS_MAX + 1)
        json_array_append(pays, p0);
    expect_from_json_error(js, "payments", "1 to 8");
    json_decref(js);

    /* Not an object at all. */
    json_t *arr = json_array();
    expect_from_json_error(arr, "payload", "not a JSON object");
    json_decref(arr);
    expect_from_json_error(NULL, "payload", NULL);
    json_decref(good);
}

/* ---- identifiers ---- */

static void test_sku_valid(void **state)
{
    (void)state;
    char at_max[DUKA_SKU_MAX + 1], over[DUKA_SKU_MAX + 2];
    memset(at_max, 'A', DUKA_SKU_MAX);
    at_max[DUKA_SKU_MAX] = '\0';
    memset(over, 'A', DUKA_SKU_MAX + 1);
    over[DUKA_SKU_MAX + 1] = '\0';
    const struct {
        const char *sku;
        int valid;
    } cases[] = {
        {"SUGAR1KG", 1}, {"a", 1},         {"SKU-1_x.y/z#2", 1}, {"~!@$%^&()", 1},
        {at_max, 1},     {over, 0},        {"", 0},              {NULL, 0},
        {"A B", 0},      {"A,B", 0},       {"A*B", 0},           {"A\"B", 0},
        {"A\tB", 0},     {"A\nB", 0},      {"\x7f", 0},          {"caf\xc3\xa9", 0},
        {" A", 0},       {"A ", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (duka_sku_valid(cases[i].sku) != cases[i].valid)
            fail_msg("duka_sku_valid(\"%s\") != %d", cases[i].sku ? cases[i].sku : "(null)",
                     cases[i].valid);
}

static void test_terminal_id_valid(void **state)
{
    (void)state;
    const struct {
        const char *id;
        int valid;
    } cases[] = {
        {"T01", 1},
        {"t01", 1},
        {"T_01", 1},
        {"1", 1},
        {"ABCDEFGHIJKLMNOP", 1},  /* exactly 16 */
        {"ABCDEFGHIJKLMNOPQ", 0}, /* 17 */
        {"", 0},
        {NULL, 0},
        {"T-01", 0},
        {"T 01", 0},
        {"T01 ", 0},
        {"T.01", 0},
        {"T\xc3\xa9", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (duka_terminal_id_valid(cases[i].id) != cases[i].valid)
            fail_msg("duka_terminal_id_valid(\"%s\") != %d", cases[i].id ? cases[i].id : "(null)",
                     cases[i].valid);
    assert_true(duka_payment_method_valid("cash"));
    assert_true(duka_payment_method_valid("mpesa"));
    assert_true(duka_payment_method_valid("card"));
    assert_false(duka_payment_method_valid("CASH"));
    assert_false(duka_payment_method_valid(""));
    assert_false(duka_payment_method_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_sale_is_valid),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_round_trip_max_lines),
        cmocka_unit_test(test_validate_rejects),
        cmocka_unit_test(test_validate_accepts_edges),
        cmocka_unit_test(test_from_json_missing_fields),
        cmocka_unit_test(test_from_json_wrong_types),
        cmocka_unit_test(test_sku_valid),
        cmocka_unit_test(test_json_round_trip_cashier),
        cmocka_unit_test(test_from_json_bad_cashier),
        cmocka_unit_test(test_terminal_id_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
