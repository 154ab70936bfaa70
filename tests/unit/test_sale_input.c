/*
 * test_sale_input.c — what a cashier asks for, read and checked once for the command line and
 * the local API (till/sale_input.h), and what the checkout makes of it (till/checkout.h):
 *
 *   - JSON sale bodies: every type confusion refused naming the field, with the words the
 *     command line uses (qty 0.5 is half a unit, not one; qty true, "pay": 5, "SODA*5" as a
 *     SKU, unknown members are refused), and nothing written;
 *   - tenders: split payments, cash handed over with change, underpaid and overpaid, no
 *     payment dropped;
 *   - the sanity bounds per line and per sale, and confirming them;
 *   - an M-Pesa code used on this till before: sold, with a warning;
 *   - the receipt text (date and time in the shop's zone, unit price x quantity, the code,
 *     the change) and a sale read back;
 *   - the business day in the shop's time zone whatever TZ the process has, across midnight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "config/config.h"
#include "store/db.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/sale_input.h"
#include "till/sale_view.h"
#include "till/till_db.h"
#include "test_util.h"

typedef struct fixture {
    test_dir dir;
    char path[300];
    sqlite3 *db;
    fake_clock clock;
    duka_sale_input *in;
    duka_sale *sale;
} fixture;

static void load_catalog(sqlite3 *db)
{
    json_t *changes = json_loads(
        "["
        "{\"seq\":1,\"sku\":\"GAS6KG\",\"name\":\"Gas refill 6 kg\",\"price\":130000,\"tax\":\"B\","
        "\"category\":\"Fuel\",\"deleted\":false},"
        "{\"seq\":2,\"sku\":\"SODA500\",\"name\":\"Soda 500 ml\",\"price\":7000,\"tax\":\"B\","
        "\"category\":\"Drinks\",\"deleted\":false},"
        "{\"seq\":3,\"sku\":\"RICE\",\"name\":\"Pishori rice per kg\",\"price\":18000,"
        "\"tax\":\"E\",\"category\":\"Grains\",\"deleted\":false},"
        "{\"seq\":4,\"sku\":\"MILK500\",\"name\":\"Milk 500 ml\",\"price\":6500,\"tax\":\"A\","
        "\"category\":\"Dairy\",\"deleted\":false}"
        "]",
        0, NULL);
    assert_non_null(changes);
    duka_err err = {0};
    int applied = 0;
    assert_ok(duka_catalog_apply_page(db, changes, 4, &applied, &err), &err);
    json_decref(changes);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_dir_make(&f->dir);
    f->db = test_till_db(&f->dir, f->path, sizeof(f->path), "T01");
    load_catalog(f->db);
    fake_clock_init(&f->clock, T_2026_11_21_NOON_MS);
    f->in = duka_sale_input_new();
    f->sale = duka_sale_new();
    assert_non_null(f->in);
    assert_non_null(f->sale);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    duka_sale_input_free(f->in);
    duka_sale_free(f->sale);
    duka_db_close(f->db);
    test_dir_remove(&f->dir);
    free(f);
    return 0;
}

static int64_t sales_count(sqlite3 *db)
{
    return sql_int(db, "SELECT count(*) FROM sales") + sql_int(db, "SELECT count(*) FROM outbox");
}

/* Reads body into in; returns the rc and leaves the message in err. */
static duka_rc from_json(duka_sale_input *in, const char *body, duka_err *err)
{
    json_error_t jerr;
    json_t *js = json_loads(body, JSON_DECODE_ANY, &jerr);
    if (js == NULL)
        fail_msg("test body is not JSON: %s (%s)", body, jerr.text);
    memset(err, 0, sizeof(*err));
    duka_rc rc = duka_sale_input_from_json(js, in, err);
    json_decref(js);
    return rc;
}

/* ---- JSON: every type confusion refused, naming the field ---- */

static void test_json_refuses_type_confusions(void **state)
{
    fixture *f = *state;
    const struct {
        const char *body;
        const char *says;
    } bad[] = {
        {"[]", "body: must be an object"},
        {"{}", "items: must be an array of 1 to 500 items, not missing"},
        {"{\"items\":[]}", "items: must be an array of 1 to 500 items, not 0 items"},
        {"{\"items\":\"GAS6KG\"}", "items: must be an array"},
        {"{\"items\":[\"GAS6KG\"]}", "items[0]: must be an object"},
        {"{\"items\":[{\"qty\":1}]}", "items[0].sku: must be a string, not missing"},
        {"{\"items\":[{\"sku\":42}]}", "items[0].sku: must be a string, not 42"},
        {"{\"items\":[{\"sku\":\"SODA500*5\"}]}", "items[0].sku: 'SODA500*5' is not a SKU"},
        {"{\"items\":[{\"sku\":\"SODA 500\"}]}", "items[0].sku"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":true}]}",
         "items[0].qty: must be a positive number with at most 3 decimals, at most 1000000, not true"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":\"0.5\"}]}", "items[0].qty: must be a positive "
                                                           "number with at most 3 decimals, at "
                                                           "most 1000000, not the string \"0.5\""},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":-0.5}]}", "items[0].qty"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":0}]}", "items[0].qty"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":null}]}", "items[0].qty"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":0.0005}]}", "with at most 3 decimals"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":1.2345}]}", "with at most 3 decimals"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":1000001}]}", "at most 1000000"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":1e300}]}", "items[0].qty"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":[1]}]}", "not an array"},
        {"{\"items\":[{\"sku\":\"GAS6KG\",\"quantity\":2}]}",
         "items[0].quantity: unknown member (expected sku, qty)"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":5}", "pay[0]: must be a string like"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":null}", "pay[0]: must be a string"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":{\"method\":\"cash\"}}", "pay[0]"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":\"bitcoin\"}",
         "pay[0]: 'bitcoin' is not cash, mpesa:CODE or card:REF"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":[]}", "pay: must hold 1 to 8 payments, not 0"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":[\"cash\",7]}", "pay[1]: must be a string"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":\"mpesa:qk12ab34cd\"}",
         "pay[0]: M-Pesa code 'qk12ab34cd' is not 10 capital letters"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"paymnt\":\"mpesa:QK12AB34CD\"}",
         "paymnt: unknown member (expected items, pay, confirm_amount)"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"confirm_amount\":\"yes\"}",
         "confirm_amount: must be true or false"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":[\"cash\",\"mpesa:QK12AB34CD\"]}",
         "already pays the rest"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":[\"cash:100\",\"cash:200\"]}",
         "pay[1]: a second cash payment"},
        {"{\"items\":[{\"sku\":\"GAS6KG\"}],\"pay\":[\"mpesa:QK12AB34CD:10\",\"mpesa:QK12AB34CD\"]}",
         "pay[1]: M-Pesa code QK12AB34CD is already pay[0]"},
    };
    int64_t before = sales_count(f->db);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        duka_err err;
        duka_rc rc = from_json(f->in, bad[i].body, &err);
        if (rc != DUKA_INPUT)
            fail_msg("%s accepted (rc %d)", bad[i].body, (int)rc);
        if (strstr(err.msg, bad[i].says) == NULL)
            fail_msg("%s: message '%s' lacks '%s'", bad[i].body, err.msg, bad[i].says);
        if (strstr(err.msg, "--pay") != NULL)
            fail_msg("%s: an API message names the CLI flag: %s", bad[i].body, err.msg);
    }
    assert_int_equal(sales_count(f->db), before);
}

static void test_json_numbers_are_quantities(void **state)
{
    fixture *f = *state;
    const struct {
        const char *qty;
        int64_t milli;
    } good[] = {
        {"0.5", 500}, {"2", 2000}, {"2.0", 2000}, {"3.7", 3700}, {"1e2", 100000},
        {"0.001", 1}, {"1000000", 1000000000}, {"0.125", 125}, {"1.10", 1100},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char body[160];
        snprintf(body, sizeof(body), "{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":%s}],\"pay\":\"cash\"}",
                 good[i].qty);
        duka_err err;
        assert_ok(from_json(f->in, body, &err), &err);
        assert_int_equal(f->in->item_count, 1);
        if (f->in->items[0].qty_milli != good[i].milli)
            fail_msg("qty %s read as %lld thousandths, expected %lld", good[i].qty,
                     (long long)f->in->items[0].qty_milli, (long long)good[i].milli);
    }
    /* And priced as such: half a gas refill of 1,300.00 is 650.00, not 1,300.00. */
    duka_err err;
    assert_ok(from_json(f->in, "{\"items\":[{\"sku\":\"GAS6KG\",\"qty\":0.5}],\"pay\":\"cash\"}",
                        &err),
              &err);
    duka_checkout_result res;
    assert_ok(duka_checkout_sell(f->db, &f->clock.clock, f->in, NULL, f->sale, &res, &err), &err);
    assert_int_equal(f->sale->total_cents, 65000);
    assert_int_equal(f->sale->lines[0].qty_milli, 500);
}

/* The command line and the API read the same sale the same way. */
static void test_text_and_json_agree(void **state)
{
    fixture *f = *state;
    duka_sale_input *text = duka_sale_input_new();
    assert_non_null(text);
    duka_err err = {0};
    assert_ok(duka_sale_input_add_item(text, "RICE*0.5", &err), &err);
    assert_ok(duka_sale_input_add_item(text, "SODA500*3", &err), &err);
    assert_ok(duka_sale_input_add_item(text, "MILK500", &err), &err);
    assert_ok(duka_sale_input_add_payment(text, "mpesa:QK12AB34CD:100", &err), &err);
    assert_ok(duka_sale_input_add_payment(text, "cash:500", &err), &err);
    assert_ok(duka_sale_input_validate(text, &err), &err);
    assert_ok(from_json(f->in,
                        "{\"items\":[{\"sku\":\"RICE\",\"qty\":0.5},{\"sku\":\"SODA500\",\"qty\":3},"
                        "{\"sku\":\"MILK500\"}],\"pay\":[\"mpesa:QK12AB34CD:100\",\"cash:500\"]}",
                        &err),
              &err);
    assert_int_equal(text->item_count, f->in->item_count);
    assert_int_equal(text->payment_count, f->in->payment_count);
    assert_memory_equal(text->items, f->in->items, sizeof(text->items[0]) * 3);
    assert_memory_equal(text->payments, f->in->payments, sizeof(text->payments[0]) * 2);
    duka_sale_input_free(text);
}

/* ---- tenders ---- */

static void sell_with(fixture *f, const char *const *items, const char *const *pays,
                      duka_checkout_result *res, duka_rc want, const char *says)
{
    duka_err err = {0};
    f->in->item_count = f->in->payment_count = 0;
    f->in->confirm_amount = false;
    for (int i = 0; items[i] != NULL; i++)
        assert_ok(duka_sale_input_add_item(f->in, items[i], &err), &err);
    for (int i = 0; pays != NULL && pays[i] != NULL; i++)
        assert_ok(duka_sale_input_add_payment(f->in, pays[i], &err), &err);
    int64_t before = sales_count(f->db);
    duka_rc rc = duka_checkout_sell(f->db, &f->clock.clock, f->in, NULL, f->sale, res, &err);
    if (rc != want)
        fail_msg("rc %d, expected %d (%s)", (int)rc, (int)want, err.msg);
    if (want != DUKA_OK) {
        assert_contains(err.msg, says);
        assert_int_equal(sales_count(f->db), before);
        assert_non_null(res->refusal);
    } else {
        assert_int_equal(sales_count(f->db), before + 2);
    }
}

static void test_split_tender_and_change(void **state)
{
    fixture *f = *state;
    duka_checkout_result res;
    /* 3 sodas = 210.00: 100.00 by M-Pesa, 500.00 cash handed over -> 110.00 cash, 390 change. */
    const char *items[] = {"SODA500*3", NULL};
    const char *split[] = {"mpesa:QK12AB34CD:100", "cash:500", NULL};
    sell_with(f, items, split, &res, DUKA_OK, NULL);
    assert_int_equal(f->sale->payment_count, 2);
    assert_string_equal(f->sale->payments[0].method, "mpesa");
    assert_int_equal(f->sale->payments[0].amount_cents, 10000);
    assert_string_equal(f->sale->payments[0].status, "pending_verification");
    assert_string_equal(f->sale->payments[1].method, "cash");
    assert_int_equal(f->sale->payments[1].amount_cents, 11000);
    assert_int_equal(f->sale->payments[1].tendered_cents, 50000);
    assert_int_equal(res.change_cents, 39000);
    assert_int_equal(sql_int(f->db, "SELECT sum(amount_cents) FROM payments"), 21000);
    assert_int_equal(sql_int(f->db, "SELECT tendered_cents FROM payments WHERE method='cash'"),
                     50000);
    /* The reply says it all: both payments, the change, the overall status. */
    json_t *reply = duka_sale_reply_json(f->sale, &res);
    assert_int_equal(json_array_size(json_object_get(reply, "payments")), 2);
    assert_int_equal(json_integer_value(json_object_get(reply, "change")), 39000);
    assert_string_equal(json_string_value(json_object_get(reply, "payment_status")),
                        "pending_verification");
    json_decref(reply);

    /* The one without an amount pays the rest, whatever its place. */
    const char *rest_first[] = {"card:AUTH-9", "cash:10", NULL};
    sell_with(f, items, rest_first, &res, DUKA_OK, NULL);
    assert_string_equal(f->sale->payments[0].method, "card");
    assert_int_equal(f->sale->payments[0].amount_cents, 20000);
    assert_int_equal(f->sale->payments[1].amount_cents, 1000);
    assert_int_equal(res.change_cents, 0);

    /* Exactly the total in cash: no change. */
    const char *exact[] = {"cash:210", NULL};
    sell_with(f, items, exact, &res, DUKA_OK, NULL);
    assert_int_equal(res.change_cents, 0);
    /* No tender: cash for the whole. */
    sell_with(f, items, NULL, &res, DUKA_OK, NULL);
    assert_int_equal(f->sale->payment_count, 1);
    assert_string_equal(f->sale->payments[0].method, "cash");
    assert_int_equal(f->sale->payments[0].amount_cents, 21000);

    /* Refused, nothing written: short, M-Pesa or card above what is left, nothing left. */
    const char *short_cash[] = {"cash:200", NULL};
    sell_with(f, items, short_cash, &res, DUKA_INPUT, "KES 10.00 short of the total KES 210.00");
    assert_string_equal(res.refusal, "underpaid");
    const char *short_split[] = {"mpesa:QK12AB34CE:50", "card:R-1:60", NULL};
    sell_with(f, items, short_split, &res, DUKA_INPUT, "KES 100.00 short");
    const char *too_much_mpesa[] = {"mpesa:QK12AB34CF:300", NULL};
    sell_with(f, items, too_much_mpesa, &res, DUKA_INPUT,
              "pay[0]: KES 300.00 by M-Pesa is more than the KES 210.00 left to pay");
    assert_string_equal(res.refusal, "overpaid");
    const char *nothing_left[] = {"mpesa:QK12AB34CG:210", "cash", NULL};
    sell_with(f, items, nothing_left, &res, DUKA_INPUT, "pay[1]: nothing is left to pay by cash");
    const char *cash_after_all[] = {"card:R-2:210", "cash:100", NULL};
    sell_with(f, items, cash_after_all, &res, DUKA_INPUT, "pay[1]: nothing is left to pay by cash");
}

/* ---- sanity bounds ---- */

static void test_bounds_refuse_or_confirm(void **state)
{
    fixture *f = *state;
    duka_checkout_options opt = {.line_max_cents = DUKA_SALE_LINE_MAX_CENTS_DEFAULT,
                                 .sale_max_cents = DUKA_SALE_MAX_CENTS_DEFAULT};
    duka_err err = {0};
    duka_checkout_result res;
    /* 142,308 gas refills: KES 185,000,400.00 — a typo, not a sale. */
    assert_ok(duka_sale_input_add_item(f->in, "GAS6KG*142308", &err), &err);
    int64_t before = sales_count(f->db);
    assert_rc(duka_checkout_sell(f->db, &f->clock.clock, f->in, &opt, f->sale, &res, &err),
              DUKA_LIMIT, &err);
    assert_string_equal(res.refusal, "amount_above_limit");
    assert_contains(err.msg, "items[0]: 142308 x GAS6KG comes to KES 185,000,400.00");
    assert_contains(err.msg, "SALE_MAX_LINE_AMOUNT (KES 500,000.00)");
    assert_contains(err.msg, "confirm");
    assert_int_equal(sales_count(f->db), before);
    /* Confirmed by the cashier: sold. */
    f->in->confirm_amount = true;
    memset(&err, 0, sizeof(err));
    assert_ok(duka_checkout_sell(f->db, &f->clock.clock, f->in, &opt, f->sale, &res, &err), &err);
    assert_int_equal(f->sale->total_cents, 18500040000LL);

    /* Each line within its bound, the sale above its own: refused on the total. */
    f->in->item_count = 0;
    f->in->confirm_amount = false;
    assert_ok(duka_sale_input_add_item(f->in, "GAS6KG*380", &err), &err); /* 494,000.00 */
    assert_ok(duka_sale_input_add_item(f->in, "GAS6KG*380", &err), &err);
    assert_ok(duka_sale_input_add_item(f->in, "GAS6KG*380", &err), &err);
    memset(&err, 0, sizeof(err));
    assert_rc(duka_checkout_sell(f->db, &f->clock.clock, f->in, &opt, f->sale, &res, &err),
              DUKA_LIMIT, &err);
    assert_contains(err.msg, "total: KES 1,482,000.00 is above SALE_MAX_AMOUNT (KES 1,000,000.00)");
    /* At the bound exactly: sold without asking. */
    opt.sale_max_cents = 148200000;
    memset(&err, 0, sizeof(err));
    assert_ok(duka_checkout_sell(f->db, &f->clock.clock, f->in, &opt, f->sale, &res, &err), &err);
}

/* ---- an M-Pesa code used twice ---- */

static void test_mpesa_code_reused_warns(void **state)
{
    fixture *f = *state;
    duka_checkout_result res;
    const char *items[] = {"SODA500", NULL};
    const char *code[] = {"mpesa:QK12AB34CD", NULL};
    sell_with(f, items, code, &res, DUKA_OK, NULL);
    assert_int_equal(res.warning_count, 0);
    char first[DUKA_RECEIPT_NO_MAX + 1];
    snprintf(first, sizeof(first), "%s", f->sale->receipt_no);
    const char *cash[] = {"cash", NULL};
    sell_with(f, items, cash, &res, DUKA_OK, NULL);
    assert_int_equal(res.warning_count, 0);
    /* The same code on another sale: sold (verification will settle it), but said. */
    sell_with(f, items, code, &res, DUKA_OK, NULL);
    assert_int_equal(res.warning_count, 1);
    assert_string_equal(res.warnings[0].code, "mpesa_code_reused");
    assert_contains(res.warnings[0].message, "QK12AB34CD");
    assert_contains(res.warnings[0].message, first);
    json_t *reply = duka_sale_reply_json(f->sale, &res);
    json_t *w = json_array_get(json_object_get(reply, "warnings"), 0);
    assert_string_equal(json_string_value(json_object_get(w, "code")), "mpesa_code_reused");
    json_decref(reply);
}

/* ---- the receipt ---- */

static void test_receipt_text_and_reprint(void **state)
{
    fixture *f = *state;
    duka_checkout_result res;
    const char *items[] = {"SODA500*3", "RICE*0.5", NULL};
    const char *split[] = {"mpesa:QK12AB34CD:100", "cash:500", NULL};
    sell_with(f, items, split, &res, DUKA_OK, NULL);
    duka_receipt_shop shop = {.name = "Mama Njeri's Duka", .kra_pin = "P051234567X"};
    char text[4096];
    duka_receipt_text(f->sale, &shop, &res, "pending", text, sizeof(text));
    assert_contains(text, "Mama Njeri's Duka");
    assert_contains(text, "KRA PIN P051234567X");
    assert_contains(text, "Receipt T01-20261121-00001");
    assert_contains(text, "2026-11-21 12:00:00"); /* EAT, the fixture's noon */
    assert_contains(text, "  3 x 70.00");         /* the unit price, not the line total */
    assert_contains(text, "210.00 B");
    assert_contains(text, "  0.5 x 180.00");
    assert_contains(text, "M-Pesa QK12AB34CD");
    assert_contains(text, "tendered                        500.00");
    assert_contains(text, "CHANGE                          300.00"); /* 300.00 - 100.00 M-Pesa */
    assert_contains(text, "B 16% on 210.00");
    assert_contains(text, "eTIMS: pending; sync: pending");
    assert_not_contains(text, "3 x 210.00");
    /* Every line fits 40 columns. */
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > DUKA_RECEIPT_WIDTH)
            fail_msg("receipt line of %zu columns: %.*s", len, (int)len, p);
        p = nl ? nl + 1 : p + len;
    }
    /* Read back from the database: the same receipt (warnings aside). */
    duka_sale *again = duka_sale_new();
    assert_non_null(again);
    duka_err err = {0};
    assert_ok(duka_till_sale_load(f->db, f->sale->receipt_no, again, &err), &err);
    char text2[4096];
    duka_receipt_text(again, &shop, &res, "pending", text2, sizeof(text2));
    assert_string_equal(text, text2);
    char state_text[24];
    assert_ok(duka_till_sale_sync_state(f->db, f->sale->receipt_no, state_text,
                                        sizeof(state_text), &err),
              &err);
    assert_string_equal(state_text, "pending");
    assert_rc(duka_till_sale_load(f->db, "T01-20261121-00999", again, &err), DUKA_NOTFOUND, &err);
    duka_sale_free(again);
}

/* The cashier of the options is stored with the sale in its transaction, sent in its payload,
 * shown by the reply and the receipt, and read back; with none, the reply says null. */
static void test_sale_records_its_cashier(void **state)
{
    fixture *f = *state;
    duka_cashier amina = {"01a23c44-f77d-7c0d-89ca-4d6dc6bc2690", "Amina", "cashier"};
    duka_checkout_options opt = {.cashier = &amina};
    duka_err err = {0};
    assert_ok(duka_sale_input_add_item(f->in, "SODA500*2", &err), &err);
    duka_checkout_result res;
    assert_ok(duka_checkout_sell(f->db, &f->clock.clock, f->in, &opt, f->sale, &res, &err), &err);
    assert_string_equal(f->sale->cashier_id, amina.id);
    assert_string_equal(f->sale->cashier_name, "Amina");
    json_t *reply = duka_sale_reply_json(f->sale, &res);
    const json_t *c = json_object_get(reply, "cashier");
    assert_string_equal(json_string_value(json_object_get(c, "id")), amina.id);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "Amina");
    json_decref(reply);
    char text[4096];
    duka_receipt_text(f->sale, NULL, &res, "pending", text, sizeof(text));
    assert_contains(text, "2026-11-21 12:00:00");
    assert_contains(text, "\nCashier: Amina\n");
    /* in the payload the hub gets */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox WHERE payload LIKE"
                                    " '%\"cashier\":{\"id\":\"01a23c44-f77d-7c0d-89ca-4d6dc6bc2690\","
                                    "\"name\":\"Amina\"}%'"),
                     1);
    duka_sale *again = duka_sale_new();
    assert_ok(duka_till_sale_load(f->db, f->sale->receipt_no, again, &err), &err);
    assert_string_equal(again->cashier_id, amina.id);
    assert_string_equal(again->cashier_name, "Amina");
    /* a name wider than the receipt's line is fitted to it */
    duka_cashier wide = {"01a23c44-f77d-7c0d-89ca-4d6dc6bc2690",
                         "Wanjiru Njeri Kamau Achieng Otieno Mwangi", "manager"};
    snprintf(again->cashier_name, sizeof(again->cashier_name), "%s", wide.name);
    duka_receipt_text(again, NULL, NULL, NULL, text, sizeof(text));
    const char *line = strstr(text, "Cashier: ");
    assert_non_null(line);
    assert_true(strcspn(line, "\n") <= DUKA_RECEIPT_WIDTH + 2); /* "…" is 3 bytes, 1 column */
    duka_sale_free(again);
    /* none */
    assert_ok(duka_checkout_sell(f->db, &f->clock.clock, f->in, NULL, f->sale, &res, &err), &err);
    reply = duka_sale_reply_json(f->sale, &res);
    assert_true(json_is_null(json_object_get(reply, "cashier")));
    json_decref(reply);
    duka_receipt_text(f->sale, NULL, &res, "pending", text, sizeof(text));
    assert_not_contains(text, "Cashier");
}

/* ---- the shop's day ---- */

static void test_business_day_follows_the_shop_zone(void **state)
{
    fixture *f = *state;
    /* The process runs in UTC (Debian's default), the shop in Nairobi. */
    setenv("TZ", "UTC", 1);
    tzset();
    duka_config cfg;
    duka_config_defaults(&cfg);
    duka_config_apply_timezone(&cfg);
    duka_checkout_result res;
    const char *items[] = {"MILK500", NULL};
    f->clock.now_ms = T_2026_11_22_MIDNIGHT_MS - 1; /* 23:59:59.999 EAT, 20:59 UTC */
    sell_with(f, items, NULL, &res, DUKA_OK, NULL);
    assert_string_equal(f->sale->receipt_no, "T01-20261121-00001");
    f->clock.now_ms = T_2026_11_22_MIDNIGHT_MS + 30 * 60000; /* 00:30 EAT, still the 21st UTC */
    sell_with(f, items, NULL, &res, DUKA_OK, NULL);
    assert_string_equal(f->sale->receipt_no, "T01-20261122-00001");
    char text[4096];
    duka_receipt_text(f->sale, NULL, &res, NULL, text, sizeof(text));
    assert_contains(text, "2026-11-22 00:30:00");
    /* With TZ unset too. */
    unsetenv("TZ");
    tzset();
    duka_config_apply_timezone(&cfg);
    f->clock.now_ms += 60000;
    sell_with(f, items, NULL, &res, DUKA_OK, NULL);
    assert_string_equal(f->sale->receipt_no, "T01-20261122-00002");
}

int main(void)
{
    setenv("TZ", "Africa/Nairobi", 1);
    tzset();
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_refuses_type_confusions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_numbers_are_quantities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_and_json_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_tender_and_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_refuse_or_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mpesa_code_reused_warns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipt_text_and_reprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sale_records_its_cashier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_business_day_follows_the_shop_zone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
