/*
 * test_hub_outbox.c — the hub's outbox towards the outside world (outbox/hub_outbox.h) on
 * the store a test runs on (SQLite; PostgreSQL with DUKA_TEST_HUB_STORE=pg, tests/pg):
 *   - a push enqueues one eTIMS invoice per applied sale, numbered 1, 2, 3 … in the push's
 *     own transaction: a duplicate or a rejected command takes no number, a failed commit
 *     takes none either (the next push gets the number it would have had);
 *   - claims lease items to one owner; a second owner never gets them; a finish by anyone
 *     but the owner changes nothing; a lease that ran out is claimed again, unclear;
 *   - attempts: retry uses one and fails at the maximum, a deferral and an unclear outcome
 *     use none; a failed item is retried by hand; wake makes backed-off items due;
 *   - results go back per terminal, in order, pageable; retention removes only done items;
 *   - counts: a business's own items only; the unsent count (every pull asks it) leaves the
 *     done items out, and on SQLite reads through an index, never the whole table;
 *   - M-Pesa receipts (hub/mpesa_receipts.h): kept once however often reported, credited to
 *     one sale only — a second store connection (a second hub) crediting another sale gets
 *     the first's number back — and a business never sees another's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/uuid.h"
#include "hub/hub_push.h"
#include "hub/hub_store.h"
#include "hub/hub_store_impl.h"
#include "hub/mpesa_receipts.h"
#include "outbox/hub_outbox.h"
#include "outbox/outbox.h"
#include "protocol/sale.h"
#include "test_util.h"
#include "test_hub_db.h"

#define T0 T_2026_11_21_NOON_MS
#define LEASE 60000

typedef struct fixture {
    hub_db db;
    duka_hub_store *store, *other; /* other: a second connection, as a second hub */
    char business[DUKA_BUSINESS_ID_LEN + 1];
    duka_hub_device t01, t02;
    duka_sale *sale;
    int next_id;
} fixture;

static bool fail_commit(void *ctx)
{
    (void)ctx;
    return true;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    hub_db_make(&f->db);
    duka_err err = {0};
    char tok1[DUKA_TOKEN_MAX + 1], tok2[DUKA_TOKEN_MAX + 1];
    assert_ok(duka_hub_store_open(f->db.url, true, &f->store, &err), &err);
    assert_ok(duka_hub_store_open(f->db.url, false, &f->other, &err), &err);
    assert_ok(duka_hub_business_create_with_pin(f->store, "Duka ya Mama", "P051234567X",
                                                f->business, &err),
              &err);
    assert_ok(duka_hub_device_add(f->store, f->business, "T01", tok1, &err), &err);
    assert_ok(duka_hub_device_add(f->store, f->business, "T02", tok2, &err), &err);
    assert_ok(duka_hub_device_authenticate(f->store, tok1, &f->t01, &err), &err);
    assert_ok(duka_hub_device_authenticate(f->store, tok2, &f->t02, &err), &err);
    /* On PostgreSQL the tests share one schema (test_hub_db.h), and a claim takes due items of
     * every business: start each test with the earlier tests' items gone. */
    if (f->db.pg)
        hub_db_pg_exec(f->db.admin_url, "DELETE FROM hub_outbox_attempts; DELETE FROM hub_outbox");
    f->sale = duka_sale_new();
    assert_non_null(f->sale);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    duka_sale_free(f->sale);
    duka_hub_store_close(f->other);
    duka_hub_store_close(f->store);
    hub_db_remove(&f->db);
    free(f);
    return 0;
}

static const line_spec lines[] = {
    {"SUGAR1KG", 2000, 23050, 'B'},
    {"RICE", 500, 18000, 'E'},
};

/* A push of `count` sales of dev's terminal from sequence `first` (ids fresh unless
 * reuse_id_of_first). Returns the reply's statuses joined ("applied,duplicate"). */
static void push_sales(fixture *f, const duka_hub_device *dev, int first, int count,
                       const char *id0, bool expect_ok)
{
    json_t *cmds = json_array();
    for (int i = 0; i < count; i++) {
        char receipt[DUKA_RECEIPT_NO_MAX + 1], id[DUKA_UUID_STR_LEN + 1];
        snprintf(receipt, sizeof(receipt), "%s-20261121-%05d", dev->terminal, first + i);
        sale_build(f->sale, dev->terminal, receipt, T0 + first + i, lines, 2, "cash", NULL);
        if (i == 0 && id0 != NULL)
            snprintf(id, sizeof(id), "%s", id0);
        else
            duka_uuid_v7(T0 + 1000 * f->next_id++, id);
        json_array_append_new(cmds, json_pack("{s:s, s:s, s:s, s:o}", "id", id, "type",
                                              "sale.create", "entity_id", receipt, "payload",
                                              duka_sale_to_json(f->sale)));
    }
    json_t *body = json_pack("{s:o}", "commands", cmds), *reply = NULL;
    duka_err err = {0};
    duka_rc rc = duka_hub_push_apply(f->store, dev, body, T0, &reply, &err);
    json_decref(body);
    json_decref(reply);
    if (expect_ok)
        assert_ok(rc, &err);
    else
        assert_int_not_equal(rc, DUKA_OK);
}

static duka_hub_outbox_counts counts(fixture *f)
{
    duka_hub_outbox_counts k;
    duka_err err = {0};
    assert_ok(duka_hub_outbox_count(f->store, f->business, DUKA_DEST_ETIMS, &k, &err), &err);
    return k;
}

static void claim(duka_hub_store *s, const char *owner, int max, int64_t now,
                  duka_hub_outbox_claim *c)
{
    duka_err err = {0};
    assert_ok(duka_hub_outbox_claim_due(s, DUKA_DEST_ETIMS, owner, max, now + LEASE, now, c,
                                        &err),
              &err);
}

static void finish_all(duka_hub_store *s, const char *owner, duka_hub_outbox_claim *c,
                       duka_hub_outbox_verdict v, int64_t now, int *lost)
{
    duka_hub_outbox_outcome o[DUKA_HUB_OUTBOX_CLAIM_MAX];
    char results[DUKA_HUB_OUTBOX_CLAIM_MAX][128];
    for (int i = 0; i < c->count; i++) {
        memset(&o[i], 0, sizeof(o[i]));
        o[i].id = c->items[i].id;
        o[i].verdict = v;
        if (v == DUKA_HUB_OUTBOX_SENT) {
            snprintf(results[i], sizeof(results[i]), "{\"receipt_no\":\"%s\",\"invc_no\":%lld}",
                     c->items[i].entity_id, (long long)c->items[i].seq_no);
            o[i].result = results[i];
        } else {
            o[i].error = "eTIMS said no";
            o[i].error_category = DUKA_OUTBOX_ERR_SERVER;
        }
    }
    duka_err err = {0};
    assert_ok(duka_hub_outbox_finish(s, owner, c->items, o, c->count, now, lost, &err), &err);
}

static void test_push_numbers_invoices_without_gaps(void **state)
{
    fixture *f = *state;
    push_sales(f, &f->t01, 1, 3, NULL, true);
    assert_int_equal(counts(f).pending, 3);
    /* The same command again: a duplicate, no new invoice, no number. */
    char id[DUKA_UUID_STR_LEN + 1];
    duka_uuid_v7(T0 + 999999, id);
    push_sales(f, &f->t01, 4, 1, id, true);
    push_sales(f, &f->t01, 4, 1, id, true);
    assert_int_equal(counts(f).pending, 4);
    /* A push whose commit fails keeps nothing and takes no number. */
    duka_hub_store_set_commit_fault(f->store, fail_commit, NULL);
    push_sales(f, &f->t02, 1, 2, NULL, false);
    duka_hub_store_set_commit_fault(f->store, NULL, NULL);
    assert_int_equal(counts(f).pending, 4);
    push_sales(f, &f->t02, 1, 2, NULL, true);
    duka_hub_outbox_claim c = {0};
    claim(f->store, "A", 64, T0, &c);
    assert_int_equal(c.count, 6);
    for (int i = 0; i < c.count; i++) {
        assert_int_equal(c.items[i].seq_no, i + 1); /* 1..6: no gap, no repeat */
        assert_string_equal(c.items[i].command_type, "etims.sale");
        assert_int_equal(c.items[i].attempts, 1);
        assert_false(c.items[i].unclear);
        /* No body at the push (kept off its path): the sender builds it from the sale the
         * store holds, read back whole. */
        assert_string_equal(c.items[i].payload, "");
        duka_err err = {0};
        assert_ok(duka_hub_sale_load(f->other, f->business, c.items[i].entity_id, f->sale, &err),
                  &err);
        assert_string_equal(f->sale->receipt_no, c.items[i].entity_id);
        assert_int_equal(f->sale->line_count, 2);
        assert_int_equal(f->sale->payment_count, 1);
        assert_ok(duka_sale_validate(f->sale, &err), &err); /* it adds up as the till's did */
    }
    assert_string_equal(c.items[0].entity_id, "T01-20261121-00001");
    assert_string_equal(c.items[5].entity_id, "T02-20261121-00002");
    assert_string_equal(c.items[5].terminal, "T02");
    duka_hub_outbox_claim_free(&c);
    duka_err err = {0};
    assert_int_equal(duka_hub_sale_load(f->store, f->business, "T09-20261121-00001", f->sale,
                                        &err),
                     DUKA_NOTFOUND);
}

static void test_leases(void **state)
{
    fixture *f = *state;
    push_sales(f, &f->t01, 1, 3, NULL, true);
    duka_hub_outbox_claim a = {0}, b = {0};
    claim(f->store, "A", 2, T0, &a);
    claim(f->other, "B", 64, T0, &b); /* another hub: only what A did not take */
    assert_int_equal(a.count, 2);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.items[0].seq_no, 3);
    /* B may not record A's items. */
    int lost = 0;
    finish_all(f->other, "B", &a, DUKA_HUB_OUTBOX_SENT, T0 + 10, &lost);
    assert_int_equal(lost, 2);
    assert_int_equal(counts(f).processing, 3);
    finish_all(f->store, "A", &a, DUKA_HUB_OUTBOX_SENT, T0 + 20, &lost);
    assert_int_equal(lost, 0);
    assert_int_equal(counts(f).done, 2);
    /* B dies holding item 3: nobody takes it before its lease ends, then it comes back
     * unclear (it may have reached eTIMS: ask before resending). */
    duka_hub_outbox_claim c = {0};
    claim(f->store, "A", 64, T0 + LEASE - 1, &c);
    assert_int_equal(c.count, 0);
    claim(f->store, "A", 64, T0 + LEASE + 1, &c);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.items[0].seq_no, 3);
    assert_true(c.items[0].unclear);
    assert_int_equal(c.items[0].attempts, 1); /* B's death used no attempt (chaos found it) */
    /* B's late answer changes nothing; A's does. */
    finish_all(f->other, "B", &b, DUKA_HUB_OUTBOX_SENT, T0 + LEASE + 2, &lost);
    assert_int_equal(lost, 1);
    finish_all(f->store, "A", &c, DUKA_HUB_OUTBOX_SENT, T0 + LEASE + 3, &lost);
    assert_int_equal(lost, 0);
    assert_int_equal(counts(f).done, 3);
    duka_hub_outbox_claim_free(&a);
    duka_hub_outbox_claim_free(&b);
    duka_hub_outbox_claim_free(&c);
}

/* The hub's clock is corrected backwards by two hours while A holds an item: its lease now
 * ends two hours ahead, further than any lease can (DUKA_HUB_OUTBOX_LEASE_MAX_MS), so it is
 * taken as run out — the item comes back unclear at once instead of in two hours. A lease
 * that ends within the longest lease is still respected. */
static void test_lease_from_before_the_clock_went_back(void **state)
{
    fixture *f = *state;
    push_sales(f, &f->t01, 1, 2, NULL, true);
    duka_hub_outbox_claim a = {0}, b = {0}, c = {0};
    claim(f->store, "A", 1, T0, &a);
    assert_int_equal(a.count, 1);
    int64_t back = T0 - 2 * 3600000LL;
    /* B, on the set-back clock, claims item 1 (unclear) and item 2. */
    claim(f->other, "B", 64, back, &b);
    assert_int_equal(b.count, 2);
    assert_int_equal(b.items[0].seq_no, 1);
    assert_true(b.items[0].unclear);
    assert_int_equal(b.items[0].attempts, 1); /* A's lost lease used no attempt */
    assert_false(b.items[1].unclear);
    /* B's leases (taken on the new clock) hold, even just under the longest lease ahead. */
    claim(f->store, "A", 64, back + LEASE - DUKA_HUB_OUTBOX_LEASE_MAX_MS + 1, &c);
    assert_int_equal(c.count, 0);
    claim(f->store, "A", 64, back + LEASE - 1, &c);
    assert_int_equal(c.count, 0);
    int lost = 0;
    finish_all(f->store, "A", &a, DUKA_HUB_OUTBOX_SENT, back + 10, &lost);
    assert_int_equal(lost, 1); /* A's late answer changes nothing */
    finish_all(f->other, "B", &b, DUKA_HUB_OUTBOX_SENT, back + 20, &lost);
    assert_int_equal(lost, 0);
    assert_int_equal(counts(f).done, 2);
    duka_hub_outbox_claim_free(&a);
    duka_hub_outbox_claim_free(&b);
    duka_hub_outbox_claim_free(&c);
}

static void test_attempts_failure_and_manual_retry(void **state)
{
    fixture *f = *state;
    push_sales(f, &f->t01, 1, 1, NULL, true);
    duka_hub_outbox_claim c = {0};
    int64_t t = T0;
    /* Deferred (eTIMS down) and unclear (no answer): no attempt used, however often. */
    for (int i = 0; i < 10; i++) {
        t += 3600000; /* far past any backoff */
        claim(f->store, "A", 1, t, &c);
        assert_int_equal(c.count, 1);
        assert_int_equal(c.items[0].attempts, 1);
        finish_all(f->store, "A", &c,
                   i % 2 ? DUKA_HUB_OUTBOX_DEFER : DUKA_HUB_OUTBOX_UNCLEAR, t, NULL);
        assert_true(i == 0 || c.items[0].unclear);
        duka_hub_outbox_claim_free(&c);
    }
    /* Server errors use attempts: failed at the maximum, and it stays visible. */
    int max = 0;
    for (int i = 0; i < 100 && counts(f).failed == 0; i++) {
        t += 3600000;
        claim(f->store, "A", 1, t, &c);
        assert_int_equal(c.count, 1);
        max = c.items[0].max_attempts;
        assert_int_equal(c.items[0].attempts, i + 1);
        assert_true(c.items[0].unclear); /* still: an earlier attempt may have arrived */
        finish_all(f->store, "A", &c, DUKA_HUB_OUTBOX_RETRY, t, NULL);
        duka_hub_outbox_claim_free(&c);
    }
    assert_int_equal(counts(f).failed, 1);
    assert_true(max >= 1);
    claim(f->store, "A", 1, t + 86400000LL, &c);
    assert_int_equal(c.count, 0); /* failed is never claimed */
    json_t *list = NULL;
    duka_err err = {0};
    assert_ok(duka_hub_outbox_list(f->store, f->business, "failed", 10, &list, &err), &err);
    json_t *item = json_array_get(json_object_get(list, "items"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "last_error")), "eTIMS said no");
    assert_int_equal(json_integer_value(json_object_get(item, "attempts")), max);
    json_decref(list);
    assert_int_equal(duka_hub_outbox_list(f->store, f->business, "lost", 10, &list, &err),
                     DUKA_INPUT);
    int retried = 0;
    assert_ok(duka_hub_outbox_retry(f->store, f->business, 0, t, &retried, &err), &err);
    assert_int_equal(retried, 1);
    claim(f->store, "A", 1, t, &c);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.items[0].attempts, 1);
    duka_hub_outbox_claim_free(&c);
}

static void test_wake_after_an_outage(void **state)
{
    fixture *f = *state;
    push_sales(f, &f->t01, 1, 5, NULL, true);
    duka_hub_outbox_claim c = {0};
    claim(f->store, "A", 64, T0, &c);
    finish_all(f->store, "A", &c, DUKA_HUB_OUTBOX_DEFER, T0, NULL);
    duka_hub_outbox_claim_free(&c);
    claim(f->store, "A", 64, T0 + 10, &c);
    assert_int_equal(c.count, 0); /* backed off */
    int64_t woken = 0;
    duka_err err = {0};
    assert_ok(duka_hub_outbox_wake(f->store, DUKA_DEST_ETIMS, T0 + 10, &woken, &err), &err);
    assert_int_equal(woken, 5);
    claim(f->store, "A", 64, T0 + 10, &c);
    assert_int_equal(c.count, 5);
    duka_hub_outbox_claim_free(&c);
}

static void test_results_per_terminal_and_retention(void **state)
{
    fixture *f = *state;
    push_sales(f, &f->t01, 1, 3, NULL, true);
    push_sales(f, &f->t02, 1, 2, NULL, true);
    duka_hub_outbox_claim c = {0};
    claim(f->store, "A", 64, T0, &c);
    assert_int_equal(c.count, 5);
    finish_all(f->store, "A", &c, DUKA_HUB_OUTBOX_SENT, T0 + 5, NULL);
    duka_hub_outbox_claim_free(&c);
    duka_err err = {0};
    json_t *page = NULL;
    assert_ok(duka_hub_outbox_results(f->store, f->business, "T01", DUKA_DEST_ETIMS, 0, 2, &page,
                                      &err),
              &err);
    json_t *list = json_object_get(page, "list");
    assert_int_equal(json_array_size(list), 2);
    assert_true(json_is_true(json_object_get(page, "more")));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(list, 0), "receipt_no")),
        "T01-20261121-00001");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "seq")), 1);
    int64_t cursor = json_integer_value(json_object_get(page, "cursor"));
    json_decref(page);
    assert_ok(duka_hub_outbox_results(f->store, f->business, "T01", DUKA_DEST_ETIMS, cursor, 2,
                                      &page, &err),
              &err);
    assert_int_equal(json_array_size(json_object_get(page, "list")), 1);
    assert_false(json_is_true(json_object_get(page, "more")));
    json_decref(page);
    assert_ok(duka_hub_outbox_results(f->store, f->business, "T02", DUKA_DEST_ETIMS, 0, 10,
                                      &page, &err),
              &err);
    assert_int_equal(json_array_size(json_object_get(page, "list")), 2); /* its own only */
    json_decref(page);
    /* Retention: the done items go, the results the tills pull stay. */
    push_sales(f, &f->t01, 4, 1, NULL, true); /* pending: never removed */
    int64_t deleted = 0;
    assert_ok(duka_hub_outbox_cleanup(f->store, T0 + 6, &deleted, &err), &err);
    assert_int_equal(deleted, 5);
    duka_hub_outbox_counts k = counts(f);
    assert_int_equal(k.done, 0);
    assert_int_equal(k.pending, 1);
    assert_ok(duka_hub_outbox_results(f->store, f->business, "T01", DUKA_DEST_ETIMS, 0, 10,
                                      &page, &err),
              &err);
    assert_int_equal(json_array_size(json_object_get(page, "list")), 3);
    json_decref(page);
}

static void test_kv_and_health(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    char v[64];
    bool found = true;
    assert_ok(duka_hub_kv_get(f->store, f->business, "etims.device.00", v, sizeof(v), &found,
                              &err),
              &err);
    assert_false(found);
    assert_ok(duka_hub_kv_put(f->store, f->business, "etims.device.00", "{\"a\":1}", T0, &err),
              &err);
    assert_ok(duka_hub_kv_put(f->store, f->business, "etims.device.00", "{\"a\":2}", T0, &err),
              &err);
    assert_ok(duka_hub_kv_get(f->other, f->business, "etims.device.00", v, sizeof(v), &found,
                              &err),
              &err);
    assert_true(found);
    assert_string_equal(v, "{\"a\":2}");
    duka_service_health h = {.since_ms = T0, .updated_ms = T0 + 1};
    snprintf(h.state, sizeof(h.state), "offline");
    snprintf(h.detail, sizeof(h.detail), "connection refused");
    assert_ok(duka_hub_health_put(f->store, DUKA_DEST_ETIMS, &h, &err), &err);
    duka_service_health g;
    assert_ok(duka_hub_health_get(f->other, DUKA_DEST_ETIMS, &g, &found, &err), &err);
    assert_true(found);
    assert_string_equal(g.state, "offline");
    assert_int_equal(g.updated_ms, T0 + 1);
}

/* The plan SQLite takes for sql (its details joined), read on the test's database file. */
static void sqlite_plan(const char *path, const char *sql, char *out, size_t outlen)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char q[1024];
    snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t n = strlen(out);
        snprintf(out + n, outlen - n, "%s; ", (const char *)sqlite3_column_text(st, 3));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_counts_read_only_what_they_count(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    char other_biz[DUKA_BUSINESS_ID_LEN + 1], tok[DUKA_TOKEN_MAX + 1];
    duka_hub_device other_t01;
    assert_ok(duka_hub_business_create_with_pin(f->store, "Duka ya Baba", "P051234568Y",
                                                other_biz, &err),
              &err);
    assert_ok(duka_hub_device_add(f->store, other_biz, "T01", tok, &err), &err);
    assert_ok(duka_hub_device_authenticate(f->store, tok, &other_t01, &err), &err);
    push_sales(f, &f->t01, 1, 2, NULL, true);
    duka_hub_outbox_claim c = {0};
    claim(f->store, "A", 64, T0, &c);
    assert_int_equal(c.count, 2);
    finish_all(f->store, "A", &c, DUKA_HUB_OUTBOX_SENT, T0 + 5, NULL);
    duka_hub_outbox_claim_free(&c);
    push_sales(f, &f->t01, 3, 1, NULL, true);
    push_sales(f, &other_t01, 1, 2, NULL, true);

    duka_hub_outbox_counts k = counts(f);
    assert_int_equal(k.done, 2);
    assert_int_equal(k.pending, 1); /* the other business's two are not this one's */
    assert_int_equal(k.oldest_unsent_ms, T0);
    assert_ok(duka_hub_outbox_count_unsent(f->store, f->business, DUKA_DEST_ETIMS, &k, &err),
              &err);
    assert_int_equal(k.done, 0);
    assert_int_equal(k.pending, 1);
    assert_int_equal(k.oldest_unsent_ms, T0);
    assert_ok(duka_hub_outbox_count_unsent(f->store, NULL, DUKA_DEST_ETIMS, &k, &err), &err);
    assert_int_equal(k.done, 0);
    assert_int_equal(k.pending, 3);

    if (f->db.pg)
        return;
    /* Days of done items stay for retention: a pull's count must not read them, nor the
     * other businesses' items. */
    char plan[1024];
    sqlite_plan(f->db.path, duka_hub_outbox_count_sql(true, false, '?'), plan, sizeof(plan));
    assert_non_null(strstr(plan, "USING INDEX hub_outbox_business (business_id=? AND "
                                 "destination=? AND status=?)"));
    sqlite_plan(f->db.path, duka_hub_outbox_count_sql(false, false, '?'), plan, sizeof(plan));
    assert_non_null(strstr(plan, "USING INDEX hub_outbox_due (destination=? AND status=?)"));
}

static void test_mpesa_receipts_once_and_credited_once(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    duka_mpesa_payment p = {.receipt = "UL8OALU9GQ", .amount_cents = 55100,
                            .phone = "254708374149", .paid_ms = T0, .shortcode = "600000",
                            .reference = "T01-20261121-00001"};
    bool inserted = false;
    assert_ok(duka_hub_mpesa_receipt_put(f->store, f->business, &p, "c2b", T0, &inserted, &err),
              &err);
    assert_true(inserted);
    duka_mpesa_payment again = p;
    again.amount_cents = 1; /* a second report (the STK callback of the same payment) */
    assert_ok(duka_hub_mpesa_receipt_put(f->store, f->business, &again, "stk", T0 + 5, &inserted,
                                         &err),
              &err);
    assert_false(inserted);
    duka_mpesa_receipt r;
    bool found = false;
    assert_ok(duka_hub_mpesa_receipt_get(f->store, f->business, "UL8OALU9GQ", &r, &found, &err),
              &err);
    assert_true(found);
    assert_int_equal(r.p.amount_cents, 55100); /* the first report stands */
    assert_string_equal(r.source, "c2b");
    assert_string_equal(r.p.phone, "254708374149");
    assert_int_equal(r.p.paid_ms, T0);
    assert_string_equal(r.credited_to, "");

    char holder[DUKA_RECEIPT_NO_MAX + 1];
    assert_ok(duka_hub_mpesa_receipt_credit(f->store, f->business, "UL8OALU9GQ",
                                            "T01-20261121-00001", T0 + 10, holder, &err),
              &err);
    assert_string_equal(holder, "T01-20261121-00001");
    /* Again for the same sale (a verification repeated after a crash): still its own. */
    assert_ok(duka_hub_mpesa_receipt_credit(f->store, f->business, "UL8OALU9GQ",
                                            "T01-20261121-00001", T0 + 20, holder, &err),
              &err);
    assert_string_equal(holder, "T01-20261121-00001");
    /* Another sale naming the same code, through another hub's connection: refused. */
    assert_ok(duka_hub_mpesa_receipt_credit(f->other, f->business, "UL8OALU9GQ",
                                            "T02-20261121-00007", T0 + 30, holder, &err),
              &err);
    assert_string_equal(holder, "T01-20261121-00001");
    assert_ok(duka_hub_mpesa_receipt_get(f->store, f->business, "UL8OALU9GQ", &r, &found, &err),
              &err);
    assert_int_equal(r.credited_ms, T0 + 10);

    /* Unknown receipt: not found, nothing made. Bad receipt: refused before the store. */
    assert_int_equal(duka_hub_mpesa_receipt_credit(f->store, f->business, "ZZZZZZZZZZ",
                                                   "T01-20261121-00002", T0, holder, &err),
                     DUKA_NOTFOUND);
    duka_mpesa_payment bad = p;
    snprintf(bad.receipt, sizeof(bad.receipt), "abc");
    assert_int_equal(duka_hub_mpesa_receipt_put(f->store, f->business, &bad, "c2b", T0,
                                                &inserted, &err),
                     DUKA_INPUT);

    /* Another business does not see it, and may keep the same number as its own. */
    char other[DUKA_BUSINESS_ID_LEN + 1];
    assert_ok(duka_hub_business_create(f->store, "Other shop", other, &err), &err);
    assert_ok(duka_hub_mpesa_receipt_get(f->store, other, "UL8OALU9GQ", &r, &found, &err), &err);
    assert_false(found);
    assert_ok(duka_hub_mpesa_receipt_put(f->store, other, &p, "c2b", T0, &inserted, &err), &err);
    assert_true(inserted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_numbers_invoices_without_gaps, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mpesa_receipts_once_and_credited_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_from_before_the_clock_went_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_attempts_failure_and_manual_retry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wake_after_an_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_per_terminal_and_retention, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kv_and_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_read_only_what_they_count, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
