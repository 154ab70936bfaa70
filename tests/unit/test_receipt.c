/*
 * test_receipt.c — receipt numbers and the checkout transaction on a real till database.
 *
 * Receipt numbers are {terminal}-{YYYYMMDD}-{seq:05} of the LOCAL day (TZ=Africa/Nairobi,
 * UTC+3), unique whatever the clock does, widened (never wrapped) past 99,999, and taken in
 * the sale's transaction so a rollback gives the number back. duka_checkout_commit() writes
 * sale, lines, payment, outbox command and receipt counter together or not at all.
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
#include "common/uuid.h"
#include "outbox/outbox.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/receipt.h"
#include "till/till_db.h"
#include "test_util.h"

typedef struct fixture {
    test_dir dir;
    char path[300];
    sqlite3 *db;
    fake_clock clock;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_dir_make(&f->dir);
    f->db = test_till_db(&f->dir, f->path, sizeof(f->path), "T01");
    fake_clock_init(&f->clock, T_2026_11_21_NOON_MS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    duka_db_close(f->db);
    test_dir_remove(&f->dir);
    free(f);
    return 0;
}

/* Takes one number in its own committed transaction. */
static void take(sqlite3 *db, int64_t now_ms, char out[DUKA_RECEIPT_NO_MAX + 1])
{
    duka_err err = {0};
    assert_ok(duka_db_begin(db, &err), &err);
    assert_ok(duka_receipt_next(db, "T01", now_ms, out, &err), &err);
    assert_ok(duka_db_commit(db, &err), &err);
}

static void take_expect(sqlite3 *db, int64_t now_ms, const char *expected)
{
    char no[DUKA_RECEIPT_NO_MAX + 1];
    take(db, now_ms, no);
    assert_string_equal(no, expected);
}

/* ---- receipt numbers ---- */

static void test_local_day(void **state)
{
    (void)state;
    const struct {
        int64_t ms;
        int day;
    } cases[] = {
        {T_2026_11_20_NOON_MS, 20261120},
        {T_2026_11_21_MIDNIGHT_MS - 1, 20261120}, /* 23:59:59.999 local */
        {T_2026_11_21_MIDNIGHT_MS, 20261121},     /* still the 20th in UTC */
        {T_2026_11_21_NOON_MS, 20261121},
        {T_2026_11_21_LAST_MS, 20261121},
        {T_2026_11_22_MIDNIGHT_MS, 20261122},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(duka_clock_local_day(cases[i].ms), cases[i].day);
}

static void test_format(void **state)
{
    (void)state;
    char out[DUKA_RECEIPT_NO_MAX + 1];
    const struct {
        const char *terminal;
        int day;
        int64_t seq;
        const char *text;
    } cases[] = {
        {"T01", 20261121, 1, "T01-20261121-00001"},
        {"T01", 20261121, 42, "T01-20261121-00042"},
        {"T01", 20261121, 99999, "T01-20261121-99999"},
        {"T01", 20261121, 100000, "T01-20261121-100000"},
        {"T01", 20261121, 1234567, "T01-20261121-1234567"},
        {"SHOP_2", 20270101, 7, "SHOP_2-20270101-00007"},
        {"ABCDEFGHIJKLMNOP", 20261121, 9223372036854775807LL,
         "ABCDEFGHIJKLMNOP-20261121-9223372036854775807"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_receipt_format(cases[i].terminal, cases[i].day, cases[i].seq, out);
        assert_string_equal(out, cases[i].text);
    }
}

static void test_sequential_numbers(void **state)
{
    fixture *f = *state;
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-00001");
    take_expect(f->db, T_2026_11_21_NOON_MS + 1, "T01-20261121-00002");
    take_expect(f->db, T_2026_11_21_NOON_MS + 60000, "T01-20261121-00003");
    /* Two numbers in one transaction are two numbers. */
    duka_err err = {0};
    char a[DUKA_RECEIPT_NO_MAX + 1], b[DUKA_RECEIPT_NO_MAX + 1];
    assert_ok(duka_db_begin(f->db, &err), &err);
    assert_ok(duka_receipt_next(f->db, "T01", T_2026_11_21_NOON_MS, a, &err), &err);
    assert_ok(duka_receipt_next(f->db, "T01", T_2026_11_21_NOON_MS, b, &err), &err);
    assert_ok(duka_db_commit(f->db, &err), &err);
    assert_string_equal(a, "T01-20261121-00004");
    assert_string_equal(b, "T01-20261121-00005");
    assert_int_equal(sql_int(f->db, "SELECT last_seq FROM receipt_days WHERE day=20261121"), 5);
    /* The counter is on disk: a reopened database continues it. */
    duka_db_close(f->db);
    assert_ok(duka_till_db_open(f->path, false, &f->db, &err), &err);
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-00006");
}

static void test_day_rollover(void **state)
{
    fixture *f = *state;
    take_expect(f->db, T_2026_11_21_MIDNIGHT_MS, "T01-20261121-00001");
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-00002");
    take_expect(f->db, T_2026_11_21_LAST_MS, "T01-20261121-00003");
    take_expect(f->db, T_2026_11_22_MIDNIGHT_MS, "T01-20261122-00001");
    take_expect(f->db, T_2026_11_22_MIDNIGHT_MS + 3600000, "T01-20261122-00002");
    take_expect(f->db, T_2026_11_22_MIDNIGHT_MS + 86400000, "T01-20261123-00001");
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM receipt_days"), 3);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_clock_backwards_never_repeats(void **state)
{
    fixture *f = *state;
    /* A clock that jumps about: forward a day, back to a used day, back to an unused earlier
     * day, and backwards within one day. */
    const struct {
        int64_t ms;
        const char *expected;
    } steps[] = {
        {T_2026_11_21_NOON_MS, "T01-20261121-00001"},
        {T_2026_11_21_NOON_MS + 1000, "T01-20261121-00002"},
        {T_2026_11_21_LAST_MS, "T01-20261121-00003"},
        {T_2026_11_21_MIDNIGHT_MS, "T01-20261121-00004"}, /* back within the day */
        {T_2026_11_22_MIDNIGHT_MS + 5000, "T01-20261122-00001"},
        {T_2026_11_22_MIDNIGHT_MS + 6000, "T01-20261122-00002"},
        {T_2026_11_21_NOON_MS, "T01-20261121-00005"}, /* back to a day already used */
        {T_2026_11_21_NOON_MS - 1000, "T01-20261121-00006"},
        {T_2026_11_20_NOON_MS, "T01-20261120-00001"}, /* back to a day never used */
        {T_2026_11_22_MIDNIGHT_MS + 1000, "T01-20261122-00003"}, /* forward again, earlier */
        {T_2026_11_20_NOON_MS - 3600000, "T01-20261120-00002"},
        {T_2026_11_21_MIDNIGHT_MS, "T01-20261121-00007"},
    };
    enum { N = sizeof(steps) / sizeof(steps[0]) };
    char issued[N + 40][DUKA_RECEIPT_NO_MAX + 1];
    int n = 0;
    for (int i = 0; i < N; i++) {
        take(f->db, steps[i].ms, issued[n]);
        assert_string_equal(issued[n], steps[i].expected);
        n++;
    }
    /* And a pseudo-random walk over three days (fixed seed, reproducible). */
    uint32_t x = 12345;
    for (int i = 0; i < 40; i++) {
        x = x * 1103515245u + 12345u;
        int64_t ms = T_2026_11_20_NOON_MS + (int64_t)(x % (3u * 86400u)) * 1000;
        take(f->db, ms, issued[n++]);
    }
    qsort(issued, (size_t)n, sizeof(issued[0]), cmp_str);
    for (int i = 1; i < n; i++)
        if (strcmp(issued[i - 1], issued[i]) == 0)
            fail_msg("receipt number %s issued twice", issued[i]);
    assert_int_equal(sql_int(f->db, "SELECT sum(last_seq) FROM receipt_days"), n);
}

static void test_widens_past_99999_never_wraps(void **state)
{
    fixture *f = *state;
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-00001");
    sql_exec(f->db, "UPDATE receipt_days SET last_seq = 99998 WHERE day = 20261121");
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-99999");
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-100000");
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-100001");
    /* The next day still starts at 00001; the widened day keeps widening. */
    take_expect(f->db, T_2026_11_22_MIDNIGHT_MS, "T01-20261122-00001");
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-100002");
    /* A widened number is a valid receipt number of its terminal. */
    duka_sale *s = duka_sale_new();
    assert_non_null(s);
    snprintf(s->receipt_no, sizeof(s->receipt_no), "T01-20261121-100000");
    snprintf(s->terminal, sizeof(s->terminal), "T01");
    s->line_count = 1;
    snprintf(s->lines[0].sku, sizeof(s->lines[0].sku), "X");
    s->lines[0].qty_milli = 1000;
    s->lines[0].unit_price_cents = 100;
    s->lines[0].tax_band = 'A';
    s->lines[0].line_total_cents = 100;
    s->total_cents = 100;
    s->payment_count = 1;
    snprintf(s->payments[0].method, sizeof(s->payments[0].method), "cash");
    s->payments[0].amount_cents = 100;
    snprintf(s->payments[0].status, sizeof(s->payments[0].status), "captured");
    duka_err err = {0};
    assert_ok(duka_sale_validate(s, &err), &err);
    duka_sale_free(s);
}

static void test_rollback_gives_number_back(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    char no[DUKA_RECEIPT_NO_MAX + 1];
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-00001");
    assert_ok(duka_db_begin(f->db, &err), &err);
    assert_ok(duka_receipt_next(f->db, "T01", T_2026_11_21_NOON_MS, no, &err), &err);
    assert_string_equal(no, "T01-20261121-00002");
    duka_db_rollback(f->db);
    take_expect(f->db, T_2026_11_21_NOON_MS, "T01-20261121-00002");
    /* A rolled-back first number of a new day leaves no row behind. */
    assert_ok(duka_db_begin(f->db, &err), &err);
    assert_ok(duka_receipt_next(f->db, "T01", T_2026_11_22_MIDNIGHT_MS, no, &err), &err);
    assert_string_equal(no, "T01-20261122-00001");
    duka_db_rollback(f->db);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM receipt_days WHERE day=20261122"), 0);
    take_expect(f->db, T_2026_11_22_MIDNIGHT_MS, "T01-20261122-00001");
}

/* ---- checkout ---- */

static void load_catalog(sqlite3 *db)
{
    json_error_t jerr;
    json_t *changes = json_loads(
        "["
        "{\"seq\":1,\"sku\":\"SUGAR1KG\",\"name\":\"Sugar 1 kg\",\"price\":23050,\"tax\":\"B\","
        "\"category\":\"Groceries\",\"deleted\":false},"
        "{\"seq\":2,\"sku\":\"RICE\",\"name\":\"Rice (per kg)\",\"price\":18000,\"tax\":\"E\","
        "\"category\":\"Groceries\",\"deleted\":false},"
        "{\"seq\":3,\"sku\":\"MILK500\",\"name\":\"Milk 500 ml\",\"price\":6500,\"tax\":\"A\","
        "\"category\":\"Dairy\",\"deleted\":false},"
        "{\"seq\":4,\"sku\":\"OLDSOAP\",\"name\":\"Old soap\",\"price\":5000,\"tax\":\"B\","
        "\"category\":\"\",\"deleted\":true}"
        "]",
        0, &jerr);
    assert_non_null(changes);
    duka_err err = {0};
    int applied = -1;
    assert_ok(duka_catalog_apply_page(db, changes, 4, &applied, &err), &err);
    assert_int_equal(applied, 4);
    json_decref(changes);
}

typedef struct row_counts {
    int64_t sales, lines, payments, outbox, receipt_days, seq_sum;
} row_counts;

static row_counts count_rows(sqlite3 *db)
{
    row_counts c;
    c.sales = sql_int(db, "SELECT count(*) FROM sales");
    c.lines = sql_int(db, "SELECT count(*) FROM sale_lines");
    c.payments = sql_int(db, "SELECT count(*) FROM payments");
    c.outbox = sql_int(db, "SELECT count(*) FROM outbox");
    c.receipt_days = sql_int(db, "SELECT count(*) FROM receipt_days");
    c.seq_sum = sql_int(db, "SELECT coalesce(sum(last_seq),0) FROM receipt_days");
    return c;
}

static void assert_counts_equal(row_counts a, row_counts b)
{
    assert_int_equal(a.sales, b.sales);
    assert_int_equal(a.lines, b.lines);
    assert_int_equal(a.payments, b.payments);
    assert_int_equal(a.outbox, b.outbox);
    assert_int_equal(a.receipt_days, b.receipt_days);
    assert_int_equal(a.seq_sum, b.seq_sum);
}

static duka_checkout_item item(const char *sku, int64_t qty_milli)
{
    duka_checkout_item it;
    memset(&it, 0, sizeof(it));
    snprintf(it.sku, sizeof(it.sku), "%s", sku);
    it.qty_milli = qty_milli;
    return it;
}

static void test_checkout_commits_everything(void **state)
{
    fixture *f = *state;
    load_catalog(f->db);
    duka_err err = {0};
    duka_checkout_payment pay;
    assert_ok(duka_checkout_parse_payment("cash", 0, &pay, &err), &err);
    duka_checkout_item items[] = {item("SUGAR1KG", 2000), item("RICE", 500),
                                  item("MILK500", 1000)};
    duka_sale *sale = duka_sale_new();
    assert_non_null(sale);
    char cmd[DUKA_UUID_STR_LEN + 1] = "";
    assert_ok(duka_checkout_commit(f->db, &f->clock.clock, items, 3, &pay, sale, cmd, &err),
              &err);

    /* 2 x 230.50 = 461.00 (VAT 16/116: 63.586 -> 63.59); 0.5 kg x 180.00 = 90.00 (VAT 8/108:
     * 6.667 -> 6.67); milk 65.00 exempt. */
    assert_string_equal(sale->receipt_no, "T01-20261121-00001");
    assert_string_equal(sale->terminal, "T01");
    assert_int_equal(sale->created_ms, T_2026_11_21_NOON_MS);
    assert_int_equal(sale->line_count, 3);
    assert_int_equal(sale->lines[0].line_total_cents, 46100);
    assert_int_equal(sale->lines[0].tax_cents, 6359);
    assert_int_equal(sale->lines[1].line_total_cents, 9000);
    assert_int_equal(sale->lines[1].tax_cents, 667);
    assert_int_equal(sale->lines[2].line_total_cents, 6500);
    assert_int_equal(sale->lines[2].tax_cents, 0);
    assert_int_equal(sale->total_cents, 61600);
    assert_int_equal(sale->tax_cents, 7026);
    assert_int_equal(sale->payment_count, 1);
    assert_string_equal(sale->payments[0].method, "cash");
    assert_string_equal(sale->payments[0].status, "captured");
    assert_int_equal(sale->payments[0].amount_cents, 61600);
    assert_true(duka_uuid_valid(cmd));

    /* Everything is on disk, in one piece. */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sales"), 1);
    assert_int_equal(sql_int_text(f->db,
                                  "SELECT total_cents FROM sales WHERE receipt_no="
                                  "'T01-20261121-00001' AND command_id=?1",
                                  cmd),
                     61600);
    assert_int_equal(sql_int(f->db, "SELECT tax_cents FROM sales"), 7026);
    assert_int_equal(sql_int(f->db, "SELECT created_ms FROM sales"), T_2026_11_21_NOON_MS);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sale_lines"), 3);
    assert_int_equal(sql_int(f->db,
                             "SELECT qty_milli FROM sale_lines WHERE line_no=2 AND sku='RICE'"
                             " AND tax_band='E' AND unit_price_cents=18000"),
                     500);
    assert_int_equal(sql_int(f->db, "SELECT sum(line_total_cents) FROM sale_lines"), 61600);
    assert_int_equal(sql_int(f->db, "SELECT sum(tax_cents) FROM sale_lines"), 7026);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM payments"), 1);
    assert_int_equal(sql_int(f->db,
                             "SELECT amount_cents FROM payments WHERE method='cash'"
                             " AND status='captured'"),
                     61600);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox"), 1);
    assert_int_equal(sql_int_text(f->db,
                                  "SELECT count(*) FROM outbox WHERE command_id=?1"
                                  " AND status='pending' AND command_type='sale.create'"
                                  " AND queue_type='sale' AND entity_type='sale'"
                                  " AND entity_id='T01-20261121-00001' AND stream='T01'"
                                  " AND device_id='T01' AND attempts=0 AND priority=20"
                                  " AND max_attempts=5",
                                  cmd),
                     1);
    assert_int_equal(sql_int(f->db, "SELECT last_seq FROM receipt_days WHERE day=20261121"), 1);

    /* The outbox payload is the sale, and it is valid for the hub. */
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT payload FROM outbox", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    json_error_t jerr;
    json_t *payload = json_loads((const char *)sqlite3_column_text(st, 0), 0, &jerr);
    sqlite3_finalize(st);
    assert_non_null(payload);
    duka_sale *decoded = duka_sale_new();
    assert_non_null(decoded);
    assert_ok(duka_sale_from_json(payload, decoded, &err), &err);
    assert_string_equal(decoded->receipt_no, "T01-20261121-00001");
    assert_int_equal(decoded->total_cents, 61600);
    assert_int_equal(decoded->tax_cents, 7026);
    assert_int_equal(decoded->line_count, 3);
    assert_string_equal(decoded->lines[0].name, "Sugar 1 kg");
    json_decref(payload);
    duka_sale_free(decoded);

    /* A second sale takes the next number and its own command id. */
    char cmd2[DUKA_UUID_STR_LEN + 1] = "";
    duka_checkout_payment mpesa;
    assert_ok(duka_checkout_parse_payment("mpesa:QK12AB34CD", 0, &mpesa, &err), &err);
    duka_checkout_item one[] = {item("MILK500", 1500)};
    f->clock.now_ms += 60000;
    assert_ok(duka_checkout_commit(f->db, &f->clock.clock, one, 1, &mpesa, sale, cmd2, &err),
              &err);
    assert_string_equal(sale->receipt_no, "T01-20261121-00002");
    assert_int_equal(sale->total_cents, 9750);
    assert_string_not_equal(cmd, cmd2);
    assert_int_equal(sql_int(f->db,
                             "SELECT count(*) FROM payments WHERE method='mpesa'"
                             " AND reference='QK12AB34CD' AND status='pending_verification'"
                             " AND amount_cents=9750"),
                     1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox"), 2);
    duka_sale_free(sale);
}

static void test_checkout_bad_input_writes_nothing(void **state)
{
    fixture *f = *state;
    load_catalog(f->db);
    duka_err err = {0};
    duka_checkout_payment pay;
    assert_ok(duka_checkout_parse_payment("cash", 0, &pay, &err), &err);
    duka_sale *sale = duka_sale_new();
    assert_non_null(sale);
    char cmd[DUKA_UUID_STR_LEN + 1];

    /* One good sale first, so "nothing changed" is checked against a non-empty database. */
    duka_checkout_item good[] = {item("SUGAR1KG", 1000)};
    assert_ok(duka_checkout_commit(f->db, &f->clock.clock, good, 1, &pay, sale, cmd, &err), &err);
    row_counts before = count_rows(f->db);
    assert_int_equal(before.sales, 1);

    const struct {
        duka_checkout_item items[2];
        int count;
        duka_rc rc;
        const char *says[2];
    } cases[] = {
        {{item("SUGAR1KG", 1000), item("NOPE", 1000)}, 2, DUKA_INPUT, {"unknown SKU", "NOPE"}},
        {{item("NOPE", 1000)}, 1, DUKA_INPUT, {"unknown SKU", "items[0]"}},
        {{item("MILK500", 0)}, 1, DUKA_INPUT, {"qty_milli", "0"}},
        {{item("SUGAR1KG", 1000), item("RICE", 0)}, 2, DUKA_INPUT, {"lines[1].qty_milli", "0"}},
        {{item("MILK500", -1000)}, 1, DUKA_INPUT, {"qty_milli", "-1000"}},
        {{item("OLDSOAP", 1000)}, 1, DUKA_INPUT, {"OLDSOAP", "archived"}},
        {{item("SUGAR1KG", 1000)}, 0, DUKA_INPUT, {"1 to 500 items", "not 0"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_err_clear(&err);
        duka_rc rc = duka_checkout_commit(f->db, &f->clock.clock, cases[i].items,
                                          cases[i].count, &pay, sale, cmd, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, expected %d (%s)", i, rc, cases[i].rc, err.msg);
        assert_contains(err.msg, cases[i].says[0]);
        assert_contains(err.msg, cases[i].says[1]);
        assert_counts_equal(count_rows(f->db), before);
        /* No transaction left open. */
        assert_int_not_equal(sqlite3_get_autocommit(f->db), 0);
    }
    /* The failed attempts consumed no receipt number. */
    duka_err_clear(&err);
    assert_ok(duka_checkout_commit(f->db, &f->clock.clock, good, 1, &pay, sale, cmd, &err), &err);
    assert_string_equal(sale->receipt_no, "T01-20261121-00002");
    duka_sale_free(sale);
}

static void test_checkout_uninitialised_till(void **state)
{
    fixture *f = *state;
    load_catalog(f->db);
    sql_exec(f->db, "DELETE FROM meta WHERE key='token'");
    duka_err err = {0};
    duka_checkout_payment pay;
    assert_ok(duka_checkout_parse_payment(NULL, 0, &pay, &err), &err);
    assert_string_equal(pay.method, "cash");
    duka_checkout_item items[] = {item("SUGAR1KG", 1000)};
    duka_sale *sale = duka_sale_new();
    assert_non_null(sale);
    char cmd[DUKA_UUID_STR_LEN + 1];
    row_counts before = count_rows(f->db);
    assert_int_equal(duka_checkout_commit(f->db, &f->clock.clock, items, 1, &pay, sale, cmd, &err),
                     DUKA_NOTFOUND);
    assert_contains(err.msg, "not initialised");
    assert_counts_equal(count_rows(f->db), before);
    duka_sale_free(sale);
}

static void test_checkout_parse_item_and_payment(void **state)
{
    (void)state;
    const struct {
        const char *text;
        duka_rc rc;
        const char *sku;
        int64_t qty_milli;
        const char *says;
    } items[] = {
        {"SUGAR1KG", DUKA_OK, "SUGAR1KG", 1000, NULL},
        {"RICE*0.5", DUKA_OK, "RICE", 500, NULL},
        {"RICE*2", DUKA_OK, "RICE", 2000, NULL},
        {"RICE*1.2500", DUKA_OK, "RICE", 1250, NULL}, /* zeros past 3 decimals change nothing */
        {"RICE*0", DUKA_INPUT, NULL, 0, "items[3].qty: must be a positive number"},
        {"RICE*", DUKA_INPUT, NULL, 0, "items[3].qty"},
        {"RICE*-0.5", DUKA_INPUT, NULL, 0, "items[3].qty"},
        {"RICE*0.0005", DUKA_INPUT, NULL, 0, "with at most 3 decimals"},
        {"RICE*1e2", DUKA_INPUT, NULL, 0, "items[3].qty"},
        {"RICE*1000001", DUKA_INPUT, NULL, 0, "at most 1000000"},
        {"*2", DUKA_INPUT, NULL, 0, "items[3]"},
        {"", DUKA_INPUT, NULL, 0, "items[3]"},
        {"SU GAR", DUKA_INPUT, NULL, 0, "items[3].sku: 'SU GAR' is not a SKU"},
    };
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        duka_err err = {0};
        duka_checkout_item it;
        duka_rc rc = duka_checkout_parse_item(items[i].text, 3, &it, &err);
        if (rc != items[i].rc)
            fail_msg("'%s': rc %d (%s)", items[i].text, rc, err.msg);
        if (rc == DUKA_OK) {
            assert_string_equal(it.sku, items[i].sku);
            assert_int_equal(it.qty_milli, items[i].qty_milli);
        } else {
            assert_contains(err.msg, items[i].says);
        }
    }
    const struct {
        const char *text;
        duka_rc rc;
        const char *method, *reference;
        int64_t amount_cents;
    } pays[] = {
        {"cash", DUKA_OK, "cash", "", 0},
        {"cash:500", DUKA_OK, "cash", "", 50000},
        {"cash:1250.5", DUKA_OK, "cash", "", 125050},
        {"cash:0", DUKA_INPUT, NULL, NULL, 0},
        {"cash:abc", DUKA_INPUT, NULL, NULL, 0},
        {"cash:-5", DUKA_INPUT, NULL, NULL, 0},
        {"mpesa:QK12AB34CD", DUKA_OK, "mpesa", "QK12AB34CD", 0},
        {"mpesa:QK12AB34CD:300", DUKA_OK, "mpesa", "QK12AB34CD", 30000},
        {"mpesa:QK12AB34CD:", DUKA_INPUT, NULL, NULL, 0},
        {"card:AUTH-1:99.99", DUKA_OK, "card", "AUTH-1", 9999},
        {"mpesa", DUKA_INPUT, NULL, NULL, 0},
        {"Cash", DUKA_INPUT, NULL, NULL, 0},
        {"mpesa:qk12ab34cd", DUKA_INPUT, NULL, NULL, 0},
        {"mpesa:QK12AB34C", DUKA_INPUT, NULL, NULL, 0},
        {"card:AUTH-123456", DUKA_OK, "card", "AUTH-123456", 0},
        {"card:4111111111111111", DUKA_INPUT, NULL, NULL, 0}, /* looks like a card number */
        {"card:", DUKA_INPUT, NULL, NULL, 0},
        {"bitcoin", DUKA_INPUT, NULL, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(pays) / sizeof(pays[0]); i++) {
        duka_err err = {0};
        duka_checkout_payment p;
        duka_rc rc = duka_checkout_parse_payment(pays[i].text, 2, &p, &err);
        if (rc != pays[i].rc)
            fail_msg("'%s': rc %d (%s)", pays[i].text, rc, err.msg);
        if (rc == DUKA_OK) {
            assert_string_equal(p.method, pays[i].method);
            assert_string_equal(p.reference, pays[i].reference);
            assert_int_equal(p.amount_cents, pays[i].amount_cents);
        } else {
            /* The field, never the command line's flag: the API says the same. */
            assert_contains(err.msg, "pay[2]");
            if (strstr(err.msg, "--pay") != NULL)
                fail_msg("'%s': message names the CLI flag: %s", pays[i].text, err.msg);
        }
    }
}

int main(void)
{
    setenv("TZ", "Africa/Nairobi", 1);
    tzset();
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_day),
        cmocka_unit_test(test_format),
        cmocka_unit_test_setup_teardown(test_sequential_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_day_rollover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_backwards_never_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_widens_past_99999_never_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_gives_number_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkout_commits_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkout_bad_input_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkout_uninitialised_till, setup, teardown),
        cmocka_unit_test(test_checkout_parse_item_and_payment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
