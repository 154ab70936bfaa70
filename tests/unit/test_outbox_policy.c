/*
 * test_outbox_policy.c — the outbox's queue semantics (outbox/outbox.h) on a real till
 * database: the process-wide policy (backoff and named queue types with priority and max
 * attempts), the backoff schedule and the delay actually applied, Retry-After (not-before
 * times), priorities that checkout stores, FIFO per stream under mixed priorities, max
 * attempts to failed and the manual retry, restart with items left processing, retention
 * cleanup in chunks, and the next-due / oldest-pending queries.
 *
 * Every test that changes the policy gets the one it found back in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/uuid.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/till_db.h"
#include "test_util.h"

#define T0 T_2026_11_21_NOON_MS
#define DAY_MS 86400000LL
#define LATER(n) (T0 + (int64_t)(n) * DAY_MS) /* whole days later: past any backoff */

typedef struct fixture {
    test_dir dir;
    char path[300];
    sqlite3 *db;
    fake_clock clock;
    duka_outbox_policy saved_policy;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->saved_policy = *duka_outbox_get_policy();
    test_dir_make(&f->dir);
    test_dir_file(&f->dir, "till.db", f->path, sizeof(f->path));
    duka_err err = {0};
    assert_ok(duka_till_db_open(f->path, true, &f->db, &err), &err);
    fake_clock_init(&f->clock, T0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    duka_outbox_set_policy(&f->saved_policy);
    duka_db_close(f->db);
    test_dir_remove(&f->dir);
    free(f);
    return 0;
}

/* ---- policy helpers ---- */

/* The type named name in p (fails the test when absent). */
static duka_queue_type *type_in(duka_outbox_policy *p, const char *name)
{
    for (int i = 0; i < p->type_count; i++)
        if (strcmp(p->types[i].name, name) == 0)
            return &p->types[i];
    fail_msg("no queue type '%s' in the policy", name);
    abort(); /* not reached: fail_msg does not return */
}

/* Sets the default policy with another backoff and every type's max attempts. */
static void set_backoff_policy(int64_t base_ms, int64_t max_ms, int max_attempts)
{
    duka_outbox_policy p = *duka_outbox_get_policy();
    p.backoff_base_ms = base_ms;
    p.backoff_max_ms = max_ms;
    for (int i = 0; i < p.type_count; i++)
        p.types[i].max_attempts = max_attempts;
    duka_outbox_set_policy(&p);
}

/* ---- queue helpers ---- */

/* Enqueues one item of queue type `type` (priority and max attempts from the policy, as
 * checkout does) in its own transaction at now_ms; the command id goes to id_out. */
static void enqueue_typed(sqlite3 *db, const char *label, const char *type, const char *stream,
                          int64_t now_ms, char id_out[DUKA_UUID_STR_LEN + 1])
{
    const duka_queue_type *t = duka_outbox_queue_type(type);
    if (t == NULL)
        fail_msg("unknown queue type '%s'", type);
    char payload[96];
    snprintf(payload, sizeof(payload), "{\"n\":\"%s\"}", label);
    duka_outbox_new it = {
        .queue_type = type,
        .command_type = "sale.create",
        .entity_type = "sale",
        .entity_id = label,
        .stream = stream,
        .payload = payload,
        .device_id = stream,
        .priority = t->priority,
        .max_attempts = t->max_attempts,
    };
    char scratch[DUKA_UUID_STR_LEN + 1];
    duka_err err = {0};
    assert_ok(duka_db_begin(db, &err), &err);
    assert_ok(duka_outbox_enqueue(db, &it, now_ms, id_out ? id_out : scratch, &err), &err);
    assert_ok(duka_db_commit(db, &err), &err);
}

static void enqueue_sale(sqlite3 *db, const char *label, int64_t now_ms)
{
    enqueue_typed(db, label, "sale", "T01", now_ms, NULL);
}

static void claim(sqlite3 *db, int max_items, int64_t now_ms, duka_outbox_batch *b)
{
    duka_err err = {0};
    assert_ok(duka_outbox_claim(db, max_items, 1UL << 20, now_ms, b, &err), &err);
}

/* Claims exactly one item at now_ms and returns its id (the batch is freed). */
static int64_t claim_one(sqlite3 *db, int64_t now_ms, int expected_attempts)
{
    duka_outbox_batch b;
    claim(db, 1, now_ms, &b);
    if (b.count != 1)
        fail_msg("claim at %lld: %d items, expected 1", (long long)now_ms, b.count);
    assert_int_equal(b.items[0].attempts, expected_attempts);
    int64_t id = b.items[0].id;
    duka_outbox_batch_free(&b);
    return id;
}

static int claimable(sqlite3 *db, int64_t now_ms)
{
    duka_outbox_batch b;
    duka_err err = {0};
    /* Claims for real; tests call it only where claiming is what happens next anyway, or
     * where the answer is 0. */
    assert_ok(duka_outbox_claim(db, DUKA_SYNC_BATCH_MAX, 1UL << 20, now_ms, &b, &err), &err);
    int n = b.count;
    duka_outbox_batch_free(&b);
    return n;
}

static void finish_one(sqlite3 *db, int64_t id, duka_outbox_status status, const char *error,
                       const char *category, int64_t now_ms)
{
    duka_outbox_outcome oc = {id, status, error, category};
    duka_err err = {0};
    assert_ok(duka_outbox_finish(db, &oc, 1, now_ms, &err), &err);
}

static int64_t column_of(sqlite3 *db, const char *column, int64_t id)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT %s FROM outbox WHERE id = %lld", column, (long long)id);
    return sql_int(db, sql);
}

static int64_t status_is(sqlite3 *db, int64_t id, const char *status)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE id = %lld AND status = ?1",
             (long long)id);
    return sql_int_text(db, sql, status);
}

static int64_t id_of(sqlite3 *db, const char *label)
{
    return sql_int_text(db, "SELECT id FROM outbox WHERE entity_id = ?1", label);
}

/* ---- the policy ---- */

static void test_default_policy(void **state)
{
    (void)state;
    const duka_outbox_policy *p = duka_outbox_get_policy();
    assert_int_equal(p->backoff_base_ms, 1000);
    assert_int_equal(p->backoff_max_ms, 300000);
    const struct {
        const char *name;
        int priority;
    } types[] = {{"tax", DUKA_PRIORITY_TAX},
                 {"sale", DUKA_PRIORITY_SALE},
                 {"payment", DUKA_PRIORITY_PAYMENT},
                 {"backup", DUKA_PRIORITY_BACKUP},
                 {"bulk", DUKA_PRIORITY_BULK}};
    for (int i = 0; i < 5; i++) {
        const duka_queue_type *t = duka_outbox_queue_type(types[i].name);
        if (t == NULL)
            fail_msg("no default queue type '%s'", types[i].name);
        assert_int_equal(t->priority, types[i].priority);
        assert_int_equal(t->max_attempts, DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT);
        assert_int_equal(DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT, 5);
    }
    /* Tax and payment work before backup before bulk data (lower goes first). */
    assert_true(DUKA_PRIORITY_TAX < DUKA_PRIORITY_PAYMENT);
    assert_true(DUKA_PRIORITY_PAYMENT < DUKA_PRIORITY_BACKUP);
    assert_true(DUKA_PRIORITY_BACKUP < DUKA_PRIORITY_BULK);
    assert_null(duka_outbox_queue_type("no-such-type"));
    assert_null(duka_outbox_queue_type(""));
    assert_null(duka_outbox_queue_type("SALE"));
}

static void test_set_policy_round_trip(void **state)
{
    (void)state; /* the fixture restores the policy */
    duka_outbox_policy p;
    memset(&p, 0, sizeof(p));
    p.backoff_base_ms = 250;
    p.backoff_max_ms = 8000;
    p.types[0] = (duka_queue_type){"sale", 7, 3};
    p.types[1] = (duka_queue_type){"etims", 1, 10};
    p.type_count = 2;
    duka_outbox_set_policy(&p);
    const duka_outbox_policy *got = duka_outbox_get_policy();
    assert_int_equal(got->backoff_base_ms, 250);
    assert_int_equal(got->backoff_max_ms, 8000);
    assert_int_equal(got->type_count, 2);
    /* The policy is a copy: changing ours afterwards changes nothing. */
    p.types[0].priority = 99;
    const duka_queue_type *sale = duka_outbox_queue_type("sale");
    assert_non_null(sale);
    assert_int_equal(sale->priority, 7);
    assert_int_equal(sale->max_attempts, 3);
    const duka_queue_type *etims = duka_outbox_queue_type("etims");
    assert_non_null(etims);
    assert_int_equal(etims->priority, 1);
    assert_int_equal(etims->max_attempts, 10);
    assert_null(duka_outbox_queue_type("tax")); /* not in this policy */
    assert_int_equal(duka_outbox_backoff_ms(1), 250);
    assert_int_equal(duka_outbox_backoff_ms(6), 8000);
}

/* ---- backoff ---- */

static void test_backoff_schedule_table(void **state)
{
    (void)state;
    set_backoff_policy(1000, 300000, 5);
    /* 1 s, 2 s, 4 s … doubling until the 5-minute cap, then the cap. */
    const int64_t expected[25] = {1000,   2000,   4000,   8000,   16000,  32000,  64000,
                                  128000, 256000, 300000, 300000, 300000, 300000, 300000,
                                  300000, 300000, 300000, 300000, 300000, 300000, 300000,
                                  300000, 300000, 300000, 300000};
    for (int k = 1; k <= 25; k++)
        if (duka_outbox_backoff_ms(k) != expected[k - 1])
            fail_msg("backoff after %d failures: %lld ms, expected %lld", k,
                     (long long)duka_outbox_backoff_ms(k), (long long)expected[k - 1]);
    assert_int_equal(duka_outbox_backoff_ms(INT_MAX), 300000); /* no overflow */

    /* Other policies: the base and the cap are the policy's. */
    const struct {
        int64_t base, max;
        int k;
        int64_t delay;
    } cases[] = {
        {250, 1000, 1, 250},      {250, 1000, 2, 500},       {250, 1000, 3, 1000},
        {250, 1000, 4, 1000},     {5000, 5000, 1, 5000},     {5000, 5000, 9, 5000},
        {1000, 3000, 2, 2000},    {1000, 3000, 3, 3000},     {10, 86400000, 1, 10},
        {10, 86400000, 21, 10485760}, {10, 86400000, 25, 86400000},
        {3600000, 86400000, 5, 57600000}, {3600000, 86400000, 6, 86400000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_backoff_policy(cases[i].base, cases[i].max, 5);
        int64_t got = duka_outbox_backoff_ms(cases[i].k);
        if (got != cases[i].delay)
            fail_msg("base %lld, max %lld, after %d failures: %lld ms, expected %lld",
                     (long long)cases[i].base, (long long)cases[i].max, cases[i].k,
                     (long long)got, (long long)cases[i].delay);
    }
}

typedef enum retry_path {
    VIA_FINISH_PENDING, /* the hub answered "try again" for the item */
    VIA_RELEASE_VALIDATION,
    VIA_RELEASE_SERVER,
} retry_path;

/* Fails an item `rounds` times along path and checks each applied next attempt time lies in
 * [now + backoff(k), now + backoff(k) * 1.2], and that the item is not claimable before it. */
static void assert_applied_backoff(fixture *f, retry_path path, int rounds)
{
    enqueue_sale(f->db, "s", T0);
    int64_t now = T0;
    bool jittered = false;
    duka_err err = {0};
    for (int k = 1; k <= rounds; k++) {
        duka_outbox_batch b;
        claim(f->db, 10, now, &b);
        if (b.count != 1)
            fail_msg("round %d: %d items claimed at the due time", k, b.count);
        assert_int_equal(b.items[0].attempts, k);
        int64_t id = b.items[0].id;
        if (path == VIA_FINISH_PENDING) {
            finish_one(f->db, id, DUKA_OUTBOX_PENDING, "try again", DUKA_OUTBOX_ERR_SERVER, now);
        } else {
            const char *category = path == VIA_RELEASE_VALIDATION ? DUKA_OUTBOX_ERR_VALIDATION
                                                                  : DUKA_OUTBOX_ERR_SERVER;
            assert_ok(duka_outbox_release(f->db, &b, "refused", category, now, &err), &err);
        }
        duka_outbox_batch_free(&b);
        assert_int_equal(status_is(f->db, id, "pending"), 1);
        int64_t next = column_of(f->db, "next_attempt_ms", id);
        int64_t delay = duka_outbox_backoff_ms(k);
        int64_t lo = now + delay, hi = now + delay + delay / 5;
        if (next < lo || next > hi)
            fail_msg("after failure %d: next attempt in %lld ms, expected %lld..%lld", k,
                     (long long)(next - now), (long long)delay, (long long)(delay + delay / 5));
        if (next > lo)
            jittered = true;
        /* Not a millisecond early. */
        assert_int_equal(claimable(f->db, next - 1), 0);
        now = next;
    }
    /* 201 possible jitters per round: all zero by chance is (1/201)^rounds. */
    assert_true(jittered);
}

static void test_applied_backoff_after_finish_pending(void **state)
{
    set_backoff_policy(1000, 300000, 30);
    assert_applied_backoff(*state, VIA_FINISH_PENDING, 14);
}

static void test_applied_backoff_after_release_validation(void **state)
{
    set_backoff_policy(1000, 300000, 30);
    assert_applied_backoff(*state, VIA_RELEASE_VALIDATION, 14);
}

static void test_applied_backoff_after_release_server(void **state)
{
    set_backoff_policy(250, 4000, 30);
    assert_applied_backoff(*state, VIA_RELEASE_SERVER, 8);
}

/*
 * The delay applied must be the one duka_outbox_backoff_ms documents, for every policy the
 * configuration accepts (OFFLINE_QUEUE_BACKOFF_BASE down to 10 ms, _MAX up to 1 day,
 * OFFLINE_QUEUE_MAX_RETRIES up to 100). outbox.c BACKOFF_SQL saturates the shift at 2^20, so
 * with base 10 ms the applied delay stops at 10 * 2^20 ms (~2.9 h) from the 22nd failure on
 * while the documented schedule goes on doubling to the 1-day cap.
 */
static void test_applied_backoff_matches_the_schedule_for_a_small_base(void **state)
{
    set_backoff_policy(10, 86400000, 100);
    assert_applied_backoff(*state, VIA_FINISH_PENDING, 25);
}

/* A backed-off item, then the wall clock set back by hours (a wrong clock corrected): the
 * item must not wait for the clock to catch up with the time it was scheduled by. Found by
 * the simulator (tests/sim): without this a correction of two hours held sales for two hours. */
static void test_clock_set_back_does_not_hold_items(void **state)
{
    fixture *f = *state;
    set_backoff_policy(1000, 300000, 5);
    duka_err err = {0};
    const int64_t t = LATER(0);
    enqueue_sale(f->db, "back", t);
    duka_outbox_batch b;
    claim(f->db, 10, t, &b);
    assert_int_equal(b.count, 1);
    int64_t id = b.items[0].id;
    assert_ok(duka_outbox_release_until(f->db, &b, "503 busy", DUKA_OUTBOX_ERR_SERVER, t,
                                        t + 60000, &err),
              &err);
    duka_outbox_batch_free(&b);
    const int64_t wait_max = duka_outbox_wait_max_ms();
    assert_true(wait_max >= 300000 + 60000 && wait_max >= DUKA_OUTBOX_RETRY_AFTER_MAX_MS);
    /* Shortly after: not due (the Retry-After holds it). */
    assert_int_equal(claimable(f->db, t + 1000), 0);
    /* The clock goes back, but by less than any wait could be: still held. */
    assert_int_equal(claimable(f->db, t + 60000 - wait_max), 0);
    /* Back by two hours: the schedule came from a clock that was wrong; due now. */
    assert_int_equal(claim_one(f->db, t - 2 * 3600 * 1000LL, 2), id);
    /* And the worker's next due time is judged the same way (next_due reports the raw time;
     * the worker treats anything beyond wait_max as now). */
    bool got = false;
    int64_t due = 0;
    assert_ok(duka_outbox_next_due(f->db, &due, &got, &err), &err);
    assert_false(got); /* the item is processing now */
}

static void test_release_until_honours_not_before(void **state)
{
    fixture *f = *state;
    set_backoff_policy(1000, 300000, 5);
    duka_err err = {0};
    const struct {
        const char *category;
        int64_t not_before_ms; /* relative to the release at T0 */
        int64_t due_min, due_max;
        int attempts_after;
    } cases[] = {
        /* Retry-After longer than the backoff: Retry-After wins, exactly. */
        {DUKA_OUTBOX_ERR_SERVER, 60000, 60000, 60000, 1},
        /* Shorter than the backoff (1 s .. 1.2 s): the backoff wins. */
        {DUKA_OUTBOX_ERR_SERVER, 10, 1000, 1200, 1},
        /* A network failure costs no attempt and is otherwise due now: Retry-After holds it. */
        {DUKA_OUTBOX_ERR_NETWORK, 30000, 30000, 30000, 0},
        {DUKA_OUTBOX_ERR_AUTH, 5000, 5000, 5000, 0},
        /* A not-before in the past changes nothing. */
        {DUKA_OUTBOX_ERR_VALIDATION, -DAY_MS, 1000, 1200, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char label[16];
        snprintf(label, sizeof(label), "r%zu", i);
        const int64_t t = LATER(i); /* each case a day apart, alone in the queue */
        enqueue_sale(f->db, label, t);
        duka_outbox_batch b;
        claim(f->db, 10, t, &b);
        assert_int_equal(b.count, 1);
        int64_t id = b.items[0].id;
        assert_ok(duka_outbox_release_until(f->db, &b, "503 busy", cases[i].category, t,
                                            t + cases[i].not_before_ms, &err),
                  &err);
        duka_outbox_batch_free(&b);
        assert_int_equal(status_is(f->db, id, "pending"), 1);
        assert_int_equal(column_of(f->db, "attempts", id), cases[i].attempts_after);
        int64_t due = column_of(f->db, "next_attempt_ms", id) - t;
        if (due < cases[i].due_min || due > cases[i].due_max)
            fail_msg("case %zu (%s, not before +%lld): due in %lld ms, expected %lld..%lld", i,
                     cases[i].category, (long long)cases[i].not_before_ms, (long long)due,
                     (long long)cases[i].due_min, (long long)cases[i].due_max);
        assert_int_equal(claimable(f->db, t + due - 1), 0);
        assert_int_equal(claim_one(f->db, t + due, cases[i].attempts_after + 1), id);
        finish_one(f->db, id, DUKA_OUTBOX_DONE, NULL, NULL, t + due);
    }
}

static void test_release_until_out_of_attempts_still_fails(void **state)
{
    fixture *f = *state;
    set_backoff_policy(1000, 300000, 2);
    enqueue_sale(f->db, "s", T0);
    duka_err err = {0};
    for (int k = 1; k <= 2; k++) {
        duka_outbox_batch b;
        claim(f->db, 10, LATER(k), &b);
        assert_int_equal(b.count, 1);
        assert_ok(duka_outbox_release_until(f->db, &b, "503 busy", DUKA_OUTBOX_ERR_SERVER,
                                            LATER(k), LATER(k) + 60000, &err),
                  &err);
        duka_outbox_batch_free(&b);
    }
    assert_counts(f->db, 0, 0, 0, 1, 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox WHERE status='failed'"
                                    " AND last_error='503 busy' AND error_category='server'"),
                     1);
}

/* ---- priorities and FIFO ---- */

static void set_identity(sqlite3 *db, const char *terminal)
{
    duka_err err = {0};
    assert_ok(duka_meta_set(db, DUKA_META_TERMINAL, terminal, &err), &err);
    assert_ok(duka_meta_set(db, DUKA_META_HUB_URL, "http://127.0.0.1:1", &err), &err);
    assert_ok(duka_meta_set(db, DUKA_META_TOKEN, "duka1.1.x", &err), &err);
}

static void load_catalog(sqlite3 *db)
{
    json_error_t jerr;
    json_t *changes = json_loads(
        "[{\"seq\":1,\"sku\":\"SUGAR1KG\",\"name\":\"Sugar 1 kg\",\"price\":23050,\"tax\":\"B\","
        "\"category\":\"Groceries\",\"deleted\":false}]",
        0, &jerr);
    assert_non_null(changes);
    duka_err err = {0};
    int applied = -1;
    assert_ok(duka_catalog_apply_page(db, changes, 1, &applied, &err), &err);
    assert_int_equal(applied, 1);
    json_decref(changes);
}

/* Commits a cash sale of one bag of sugar at the fixture's clock; the command id to cmd. */
static void commit_sale(fixture *f, char cmd[DUKA_UUID_STR_LEN + 1])
{
    duka_err err = {0};
    duka_checkout_payment pay;
    assert_ok(duka_checkout_parse_payment("cash", 0, &pay, &err), &err);
    duka_checkout_item items[1];
    memset(items, 0, sizeof(items));
    snprintf(items[0].sku, sizeof(items[0].sku), "SUGAR1KG");
    items[0].qty_milli = 1000;
    duka_sale *sale = duka_sale_new();
    assert_non_null(sale);
    assert_ok(duka_checkout_commit(f->db, &f->clock.clock, items, 1, &pay, sale, cmd, &err),
              &err);
    duka_sale_free(sale);
}

static void test_checkout_stores_the_policys_priority_and_max_attempts(void **state)
{
    fixture *f = *state;
    set_identity(f->db, "T01");
    load_catalog(f->db);

    /* With the default policy: the sale type's defaults. */
    char cmd0[DUKA_UUID_STR_LEN + 1];
    commit_sale(f, cmd0);
    assert_int_equal(sql_int_text(f->db, "SELECT priority FROM outbox WHERE command_id=?1", cmd0),
                     DUKA_PRIORITY_SALE);
    assert_int_equal(
        sql_int_text(f->db, "SELECT max_attempts FROM outbox WHERE command_id=?1", cmd0),
        DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT);

    /* A policy with sale priority 7 and 3 attempts: what the next sale stores. */
    duka_outbox_policy p = *duka_outbox_get_policy();
    type_in(&p, "sale")->priority = 7;
    type_in(&p, "sale")->max_attempts = 3;
    duka_outbox_set_policy(&p);
    f->clock.now_ms += 1000;
    char cmd[DUKA_UUID_STR_LEN + 1];
    commit_sale(f, cmd);
    assert_int_equal(sql_int_text(f->db, "SELECT priority FROM outbox WHERE command_id=?1", cmd),
                     7);
    assert_int_equal(
        sql_int_text(f->db, "SELECT max_attempts FROM outbox WHERE command_id=?1", cmd), 3);
    assert_int_equal(sql_int_text(f->db, "SELECT count(*) FROM outbox WHERE command_id=?1"
                                         " AND queue_type='sale' AND status='pending'"
                                         " AND attempts=0 AND stream='T01'",
                                  cmd),
                     1);
    /* Items already queued keep what they were stored with. */
    assert_int_equal(sql_int_text(f->db, "SELECT priority FROM outbox WHERE command_id=?1", cmd0),
                     DUKA_PRIORITY_SALE);

    /* Priority 7 is ahead of a tax item (10) queued before it. */
    enqueue_typed(f->db, "x1", "tax", "T01", f->clock.now_ms, NULL);
    duka_outbox_batch b;
    claim(f->db, 10, f->clock.now_ms, &b);
    assert_int_equal(b.count, 3);
    assert_string_equal(b.items[0].command_id, cmd);
    assert_string_equal(b.items[1].entity_id, "x1");
    assert_string_equal(b.items[2].command_id, cmd0);
    duka_outbox_batch_free(&b);
}

static void test_max_attempts_then_manual_retry(void **state)
{
    fixture *f = *state;
    set_identity(f->db, "T01");
    load_catalog(f->db);
    duka_outbox_policy p = *duka_outbox_get_policy();
    type_in(&p, "sale")->priority = 7;
    type_in(&p, "sale")->max_attempts = 3;
    duka_outbox_set_policy(&p);
    char cmd[DUKA_UUID_STR_LEN + 1];
    commit_sale(f, cmd);
    /* Another stream keeps flowing while this item fails. */
    enqueue_typed(f->db, "other", "sale", "T02", T0, NULL);
    finish_one(f->db, claim_one(f->db, T0, 1), DUKA_OUTBOX_PENDING, "502 bad gateway",
               DUKA_OUTBOX_ERR_SERVER, T0); /* the sale, claimed first (lower id) */

    for (int k = 2; k <= 3; k++) {
        int64_t id = claim_one(f->db, LATER(k), k);
        assert_int_equal(id, sql_int_text(f->db, "SELECT id FROM outbox WHERE command_id=?1",
                                          cmd));
        finish_one(f->db, id, DUKA_OUTBOX_PENDING, "502 bad gateway", DUKA_OUTBOX_ERR_SERVER,
                   LATER(k));
    }
    /* Three attempts: failed, visible with its error, and never claimed again… */
    assert_int_equal(sql_int_text(f->db, "SELECT count(*) FROM outbox WHERE command_id=?1"
                                         " AND status='failed' AND attempts=3"
                                         " AND last_error='502 bad gateway'"
                                         " AND error_category='server'",
                                  cmd),
                     1);
    /* …while the other stream's item goes through. */
    duka_outbox_batch b;
    claim(f->db, 10, LATER(10), &b);
    assert_int_equal(b.count, 1);
    assert_string_equal(b.items[0].entity_id, "other");
    finish_one(f->db, b.items[0].id, DUKA_OUTBOX_DONE, NULL, NULL, LATER(10));
    duka_outbox_batch_free(&b);
    assert_int_equal(claimable(f->db, LATER(20)), 0);

    /* By hand: pending, attempts reset, error cleared, due now, same command id. */
    int retried = -1;
    duka_err err = {0};
    assert_ok(duka_outbox_retry(f->db, cmd, LATER(21), &retried, &err), &err);
    assert_int_equal(retried, 1);
    assert_int_equal(sql_int_text(f->db, "SELECT count(*) FROM outbox WHERE command_id=?1"
                                         " AND status='pending' AND attempts=0"
                                         " AND last_error IS NULL AND error_category IS NULL",
                                  cmd),
                     1);
    assert_int_equal(sql_int_text(f->db, "SELECT next_attempt_ms FROM outbox WHERE command_id=?1",
                                  cmd),
                     LATER(21));
    claim(f->db, 10, LATER(21), &b);
    assert_int_equal(b.count, 1);
    assert_string_equal(b.items[0].command_id, cmd);
    assert_int_equal(b.items[0].attempts, 1);
    int64_t id = b.items[0].id;
    duka_outbox_batch_free(&b);
    /* It has its full three attempts again. */
    finish_one(f->db, id, DUKA_OUTBOX_PENDING, "502 bad gateway", DUKA_OUTBOX_ERR_SERVER,
               LATER(21));
    for (int k = 2; k <= 3; k++) {
        assert_int_equal(claim_one(f->db, LATER(20 + k), k), id);
        finish_one(f->db, id, DUKA_OUTBOX_PENDING, "502 bad gateway", DUKA_OUTBOX_ERR_SERVER,
                   LATER(20 + k));
        assert_int_equal(status_is(f->db, id, k < 3 ? "pending" : "failed"), 1);
    }
}

/* A small deterministic generator (no rand(): the sequence is the same everywhere). */
static uint32_t next_random(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

typedef struct model_item {
    int64_t id;
    char label[16];
    const char *type;
    const char *stream;
    int priority;
    bool claimed;
} model_item;

#define FIFO_ITEMS_MAX 80

/* The model's next `n` items: pending ones by (priority, id). */
static int model_claim(model_item *items, int count, int n, int *out)
{
    int got = 0;
    while (got < n) {
        int best = -1;
        for (int i = 0; i < count; i++) {
            if (items[i].claimed)
                continue;
            if (best < 0 || items[i].priority < items[best].priority ||
                (items[i].priority == items[best].priority && items[i].id < items[best].id))
                best = i;
        }
        if (best < 0)
            break;
        items[best].claimed = true;
        out[got++] = best;
    }
    return got;
}

static int model_enqueue(fixture *f, model_item *items, int count, int n, uint32_t *seed,
                         int64_t now_ms)
{
    static const char *const types[] = {"sale", "tax", "payment", "backup", "bulk"};
    static const char *const streams[] = {"T01", "T02", "T03"};
    for (int i = 0; i < n; i++) {
        model_item *m = &items[count];
        assert_true(count < FIFO_ITEMS_MAX);
        m->type = types[next_random(seed) % 5];
        m->stream = streams[next_random(seed) % 3];
        snprintf(m->label, sizeof(m->label), "%s-%s-%d", m->stream, m->type, count);
        m->priority = duka_outbox_queue_type(m->type)->priority;
        m->claimed = false;
        enqueue_typed(f->db, m->label, m->type, m->stream, now_ms, NULL);
        m->id = id_of(f->db, m->label);
        count++;
    }
    return count;
}

static void test_fifo_per_stream_under_mixed_priorities(void **state)
{
    fixture *f = *state;
    model_item items[FIFO_ITEMS_MAX];
    memset(items, 0, sizeof(items));
    uint32_t seed = 20261121;
    int count = model_enqueue(f, items, 0, 40, &seed, T0);
    int order[FIFO_ITEMS_MAX]; /* indices into items, in the order they were sent */
    int claimed = 0;
    for (int round = 0; claimed < count; round++) {
        if (round == 4) /* more work arrives mid-drain, some of it more urgent */
            count = model_enqueue(f, items, count, 20, &seed, T0 + 1);
        duka_outbox_batch b;
        claim(f->db, 3, T0 + 1, &b);
        int expected[3];
        int n = model_claim(items, count, 3, expected);
        if (b.count != n)
            fail_msg("round %d: %d items, expected %d", round, b.count, n);
        duka_outbox_outcome oc[3];
        for (int i = 0; i < n; i++) {
            if (b.items[i].id != items[expected[i]].id)
                fail_msg("round %d item %d: %s, expected %s", round, i, b.items[i].entity_id,
                         items[expected[i]].label);
            order[claimed++] = expected[i];
            oc[i] = (duka_outbox_outcome){b.items[i].id, DUKA_OUTBOX_DONE, NULL, NULL};
        }
        duka_err err = {0};
        assert_ok(duka_outbox_finish(f->db, oc, n, T0 + 1, &err), &err);
        duka_outbox_batch_free(&b);
    }
    assert_int_equal(claimed, 60);
    assert_counts(f->db, 0, 0, 60, 0, 0);
    /* Within a stream and type, sends follow the enqueue order. */
    for (int a = 0; a < claimed; a++)
        for (int c = a + 1; c < claimed; c++) {
            const model_item *x = &items[order[a]], *y = &items[order[c]];
            if (strcmp(x->stream, y->stream) == 0 && x->priority == y->priority && x->id > y->id)
                fail_msg("%s was sent before %s, queued earlier in the same stream", x->label,
                         y->label);
        }
}

/* ---- restart ---- */

static void test_restart_with_processing_items(void **state)
{
    fixture *f = *state;
    const struct {
        const char *label, *type, *stream;
    } specs[] = {{"s1", "sale", "T01"}, {"k1", "backup", "T01"}, {"x1", "tax", "T02"},
                 {"s2", "sale", "T02"}, {"p1", "payment", "T01"}, {"s3", "sale", "T01"},
                 {"b1", "bulk", "T03"}, {"x2", "tax", "T01"}};
    for (int i = 0; i < 8; i++)
        enqueue_typed(f->db, specs[i].label, specs[i].type, specs[i].stream, T0 + i, NULL);

    /* One batch sent and done; the next one in flight when the process dies. */
    duka_outbox_batch done, inflight;
    claim(f->db, 2, T0 + 10, &done);
    const char *first[] = {"x1", "x2"};
    for (int i = 0; i < 2; i++)
        assert_string_equal(done.items[i].entity_id, first[i]);
    duka_outbox_outcome oc[2] = {{done.items[0].id, DUKA_OUTBOX_DONE, NULL, NULL},
                                 {done.items[1].id, DUKA_OUTBOX_DONE, NULL, NULL}};
    duka_err err = {0};
    assert_ok(duka_outbox_finish(f->db, oc, 2, T0 + 10, &err), &err);
    claim(f->db, 3, T0 + 10, &inflight);
    const char *second[] = {"s1", "s2", "s3"};
    for (int i = 0; i < 3; i++)
        assert_string_equal(inflight.items[i].entity_id, second[i]);

    duka_db_close(f->db);
    assert_ok(duka_till_db_open(f->path, false, &f->db, &err), &err);
    assert_counts(f->db, 3, 3, 2, 0, 0);
    int moved = -1;
    assert_ok(duka_outbox_recover(f->db, &moved, &err), &err);
    assert_int_equal(moved, 3);
    assert_counts(f->db, 6, 0, 2, 0, 0);

    /* The same items, in the same order, with the same command ids and payloads; then the
     * rest by priority. The crashed attempt was counted. */
    duka_outbox_batch again;
    claim(f->db, 10, T0 + 20, &again);
    const char *all[] = {"s1", "s2", "s3", "p1", "k1", "b1"};
    assert_int_equal(again.count, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(again.items[i].entity_id, all[i]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(again.items[i].id, inflight.items[i].id);
        assert_string_equal(again.items[i].command_id, inflight.items[i].command_id);
        assert_string_equal(again.items[i].payload, inflight.items[i].payload);
        assert_int_equal(again.items[i].attempts, 2);
    }
    assert_int_equal(again.items[3].attempts, 1);
    /* The done ones stay done. */
    assert_int_equal(status_is(f->db, done.items[0].id, "done"), 1);
    assert_int_equal(status_is(f->db, done.items[1].id, "done"), 1);
    duka_outbox_batch_free(&done);
    duka_outbox_batch_free(&inflight);
    duka_outbox_batch_free(&again);
}

/* ---- manual retry ---- */

static void test_retry_by_id_by_command_id_and_all(void **state)
{
    fixture *f = *state;
    const char *labels[] = {"f1", "f2", "f3", "done", "conf", "proc", "pend"};
    char cmd[7][DUKA_UUID_STR_LEN + 1];
    for (int i = 0; i < 7; i++)
        enqueue_typed(f->db, labels[i], "sale", "T01", T0, cmd[i]);
    duka_outbox_batch b;
    claim(f->db, 6, T0, &b); /* all but "pend" */
    assert_int_equal(b.count, 6);
    duka_outbox_outcome oc[5] = {
        {b.items[0].id, DUKA_OUTBOX_FAILED, "lines[0]: bad", DUKA_OUTBOX_ERR_VALIDATION},
        {b.items[1].id, DUKA_OUTBOX_FAILED, "lines[0]: bad", DUKA_OUTBOX_ERR_VALIDATION},
        {b.items[2].id, DUKA_OUTBOX_FAILED, "lines[0]: bad", DUKA_OUTBOX_ERR_VALIDATION},
        {b.items[3].id, DUKA_OUTBOX_DONE, NULL, NULL},
        {b.items[4].id, DUKA_OUTBOX_CONFLICT, "receipt reused", DUKA_OUTBOX_ERR_CONFLICT},
    };
    duka_err err = {0};
    assert_ok(duka_outbox_finish(f->db, oc, 5, T0 + 100, &err), &err);
    duka_outbox_batch_free(&b);
    assert_counts(f->db, 1, 1, 1, 3, 1);
    const int64_t now = T0 + 5000;

    /* By outbox id. */
    char id_text[32];
    snprintf(id_text, sizeof(id_text), "%lld", (long long)id_of(f->db, "f1"));
    int retried = -1;
    assert_ok(duka_outbox_retry(f->db, id_text, now, &retried, &err), &err);
    assert_int_equal(retried, 1);
    int64_t f1 = id_of(f->db, "f1");
    assert_int_equal(status_is(f->db, f1, "pending"), 1);
    assert_int_equal(column_of(f->db, "attempts", f1), 0);
    assert_int_equal(column_of(f->db, "next_attempt_ms", f1), now);
    assert_int_equal(column_of(f->db, "last_error IS NULL AND error_category IS NULL", f1), 1);

    /* By command id. */
    retried = -1;
    assert_ok(duka_outbox_retry(f->db, cmd[1], now, &retried, &err), &err);
    assert_int_equal(retried, 1);
    assert_int_equal(status_is(f->db, id_of(f->db, "f2"), "pending"), 1);
    /* Again: it is no longer failed. */
    assert_ok(duka_outbox_retry(f->db, cmd[1], now, &retried, &err), &err);
    assert_int_equal(retried, 0);

    /* Never a done, conflict, processing or pending item, by either id; unknown ids: 0. */
    const char *untouchable[] = {"done", "conf", "proc", "pend"};
    for (int i = 0; i < 4; i++) {
        snprintf(id_text, sizeof(id_text), "%lld", (long long)id_of(f->db, untouchable[i]));
        retried = -1;
        assert_ok(duka_outbox_retry(f->db, id_text, now, &retried, &err), &err);
        assert_int_equal(retried, 0);
        assert_ok(duka_outbox_retry(f->db, cmd[3 + i], now, &retried, &err), &err);
        assert_int_equal(retried, 0);
    }
    const char *unknown[] = {"999999", "0", "-1", "", "01a1fd55-7a80-7000-8000-000000000000",
                             "f3"};
    for (int i = 0; i < 6; i++) {
        retried = -1;
        assert_ok(duka_outbox_retry(f->db, unknown[i], now, &retried, &err), &err);
        if (retried != 0)
            fail_msg("retry '%s' retried %d items", unknown[i], retried);
    }
    assert_counts(f->db, 3, 1, 1, 1, 1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox WHERE entity_id='conf'"
                                    " AND last_error='receipt reused'"),
                     1);

    /* NULL: every failed item (f3 is the one left). NULL retried pointer is allowed. */
    assert_ok(duka_outbox_retry(f->db, NULL, now, &retried, &err), &err);
    assert_int_equal(retried, 1);
    assert_ok(duka_outbox_retry(f->db, NULL, now, NULL, &err), &err);
    assert_ok(duka_outbox_retry(f->db, NULL, now, &retried, &err), &err);
    assert_int_equal(retried, 0);
    assert_counts(f->db, 4, 1, 1, 0, 1);

    /* All four pending items are due now, in FIFO order. */
    claim(f->db, 10, now, &b);
    const char *order[] = {"f1", "f2", "f3", "pend"};
    assert_int_equal(b.count, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(b.items[i].entity_id, order[i]);
        assert_int_equal(b.items[i].attempts, 1);
    }
    duka_outbox_batch_free(&b);
}

static void test_retry_all_failed_of_many(void **state)
{
    fixture *f = *state;
    set_backoff_policy(1000, 300000, 1);
    enum { N = 120 };
    for (int i = 0; i < N; i++) {
        char label[16];
        snprintf(label, sizeof(label), "s%03d", i);
        enqueue_sale(f->db, label, T0);
    }
    duka_outbox_batch b;
    claim(f->db, N, T0, &b);
    assert_int_equal(b.count, N);
    duka_err err = {0};
    assert_ok(duka_outbox_release(f->db, &b, "400 bad batch", DUKA_OUTBOX_ERR_VALIDATION, T0,
                                  &err),
              &err);
    duka_outbox_batch_free(&b);
    assert_counts(f->db, 0, 0, 0, N, 0);
    int retried = -1;
    assert_ok(duka_outbox_retry(f->db, NULL, T0 + 1, &retried, &err), &err);
    assert_int_equal(retried, N);
    assert_counts(f->db, N, 0, 0, 0, 0);
    assert_int_equal(claimable(f->db, T0 + 1), N);
}

/* ---- retention ---- */

/* Inserts n done items processed at processed_ms - i (i = 0 .. n-1), in one transaction.
 * tag keeps command and entity ids unique across calls. */
static void insert_done(sqlite3 *db, int n, int64_t processed_ms, const char *tag)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < %d)"
             " INSERT INTO outbox(command_id, queue_type, command_type, entity_type, entity_id,"
             " stream, payload, status, priority, attempts, max_attempts, next_attempt_ms,"
             " created_ms, processed_ms, device_id)"
             " SELECT printf('%s-cmd-%%d', i), 'sale', 'sale.create', 'sale',"
             " printf('%s-%%d', i), 'T01', '{}', 'done', 20, 1, 5, %lld, %lld, %lld - i, 'T01'"
             " FROM k",
             n - 1, tag, tag, (long long)(processed_ms - DAY_MS),
             (long long)(processed_ms - DAY_MS), (long long)processed_ms);
    sql_exec(db, "BEGIN");
    sql_exec(db, sql);
    sql_exec(db, "COMMIT");
}

static void test_cleanup_removes_only_old_done_items(void **state)
{
    fixture *f = *state;
    const int64_t cutoff = T0 - 7 * DAY_MS;
    /* More than two chunks of done items, all processed before the cutoff. */
    const int old_done = 2 * DUKA_OUTBOX_CLEANUP_CHUNK + 17;
    insert_done(f->db, old_done, cutoff - 1, "old");
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox"), old_done);

    /* Everything else was created 30 days ago; none of it is done before the cutoff. */
    const int64_t long_ago = T0 - 30 * DAY_MS;
    const char *labels[] = {"failed", "conflict", "processing", "done-at-cutoff",
                            "done-recent", "pending"};
    for (int i = 0; i < 6; i++)
        enqueue_sale(f->db, labels[i], long_ago);
    duka_outbox_batch b;
    claim(f->db, 5, long_ago, &b); /* all but "pending" */
    assert_int_equal(b.count, 5);
    assert_string_equal(b.items[4].entity_id, "done-recent");
    finish_one(f->db, b.items[0].id, DUKA_OUTBOX_FAILED, "bad", DUKA_OUTBOX_ERR_VALIDATION,
               long_ago);
    finish_one(f->db, b.items[1].id, DUKA_OUTBOX_CONFLICT, "reused", DUKA_OUTBOX_ERR_CONFLICT,
               long_ago);
    /* "processing" stays claimed. Done exactly at the cutoff is not before it. */
    finish_one(f->db, b.items[3].id, DUKA_OUTBOX_DONE, NULL, NULL, cutoff);
    finish_one(f->db, b.items[4].id, DUKA_OUTBOX_DONE, NULL, NULL, T0 - DAY_MS);
    duka_outbox_batch_free(&b);
    assert_counts(f->db, 1, 1, old_done + 2, 1, 1);

    int64_t deleted = -1;
    duka_err err = {0};
    assert_ok(duka_outbox_cleanup(f->db, cutoff, &deleted, &err), &err);
    assert_int_equal(deleted, old_done);
    assert_counts(f->db, 1, 1, 2, 1, 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(sql_int_text(f->db, "SELECT count(*) FROM outbox WHERE entity_id=?1",
                                      labels[i]),
                         1);

    /* Nothing more to remove; a later cutoff takes the two remaining done items only. */
    assert_ok(duka_outbox_cleanup(f->db, cutoff, &deleted, &err), &err);
    assert_int_equal(deleted, 0);
    assert_ok(duka_outbox_cleanup(f->db, T0 + 1, &deleted, &err), &err);
    assert_int_equal(deleted, 2);
    assert_counts(f->db, 1, 1, 0, 1, 1);
}

static void test_cleanup_exactly_one_chunk(void **state)
{
    fixture *f = *state;
    insert_done(f->db, DUKA_OUTBOX_CLEANUP_CHUNK, T0 - DAY_MS, "one");
    int64_t deleted = -1;
    duka_err err = {0};
    assert_ok(duka_outbox_cleanup(f->db, T0, &deleted, &err), &err);
    assert_int_equal(deleted, DUKA_OUTBOX_CLEANUP_CHUNK);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox"), 0);
    /* An empty outbox: nothing, no error. */
    assert_ok(duka_outbox_cleanup(f->db, T0, &deleted, &err), &err);
    assert_int_equal(deleted, 0);
}

/* ---- next due, oldest pending ---- */

static void assert_next_due(sqlite3 *db, bool found, int64_t due_ms)
{
    int64_t due = -1;
    bool got = !found;
    duka_err err = {0};
    assert_ok(duka_outbox_next_due(db, &due, &got, &err), &err);
    if (got != found || (found && due != due_ms))
        fail_msg("next due: found %d at %lld, expected found %d at %lld", (int)got,
                 (long long)due, (int)found, (long long)due_ms);
}

static void assert_oldest(sqlite3 *db, bool found, int64_t created_ms)
{
    int64_t created = -1;
    bool got = !found;
    duka_err err = {0};
    assert_ok(duka_outbox_oldest_pending(db, &created, &got, &err), &err);
    if (got != found || (found && created != created_ms))
        fail_msg("oldest pending: found %d at %lld, expected found %d at %lld", (int)got,
                 (long long)created, (int)found, (long long)created_ms);
}

static void test_next_due_and_oldest_pending(void **state)
{
    fixture *f = *state;
    set_backoff_policy(1000, 300000, 5);
    assert_next_due(f->db, false, 0);
    assert_oldest(f->db, false, 0);

    enqueue_sale(f->db, "a", T0);
    enqueue_sale(f->db, "b", T0 + 10);
    enqueue_sale(f->db, "c", T0 + 20);
    assert_next_due(f->db, true, T0);
    assert_oldest(f->db, true, T0);

    /* a in flight: not due (it is not pending), but still the oldest to send. */
    int64_t a = claim_one(f->db, T0 + 100, 1);
    assert_next_due(f->db, true, T0 + 10);
    assert_oldest(f->db, true, T0);

    /* a failed: neither due nor waiting to be sent. */
    finish_one(f->db, a, DUKA_OUTBOX_FAILED, "bad", DUKA_OUTBOX_ERR_VALIDATION, T0 + 100);
    assert_next_due(f->db, true, T0 + 10);
    assert_oldest(f->db, true, T0 + 10);

    /* b backing off: c is due first. */
    int64_t b = claim_one(f->db, T0 + 100, 1);
    finish_one(f->db, b, DUKA_OUTBOX_PENDING, "try again", DUKA_OUTBOX_ERR_SERVER, T0 + 100);
    int64_t b_due = column_of(f->db, "next_attempt_ms", b);
    assert_true(b_due >= T0 + 1100 && b_due <= T0 + 1300);
    assert_next_due(f->db, true, T0 + 20);
    assert_oldest(f->db, true, T0 + 10);

    /* c done: b's backoff is next. */
    int64_t c = claim_one(f->db, T0 + 100, 1);
    finish_one(f->db, c, DUKA_OUTBOX_DONE, NULL, NULL, T0 + 100);
    assert_next_due(f->db, true, b_due);
    assert_oldest(f->db, true, T0 + 10);

    /* b done: nothing to send (a failed one does not count). */
    finish_one(f->db, claim_one(f->db, b_due, 2), DUKA_OUTBOX_DONE, NULL, NULL, b_due);
    assert_next_due(f->db, false, 0);
    assert_oldest(f->db, false, 0);
    assert_counts(f->db, 0, 0, 2, 1, 0);
}

int main(void)
{
    setenv("TZ", "Africa/Nairobi", 1);
    tzset();
    if (sodium_init() < 0)
        return 1;
#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_default_policy),
        TEST(test_set_policy_round_trip),
        TEST(test_backoff_schedule_table),
        TEST(test_applied_backoff_after_finish_pending),
        TEST(test_applied_backoff_after_release_validation),
        TEST(test_applied_backoff_after_release_server),
        TEST(test_applied_backoff_matches_the_schedule_for_a_small_base),
        TEST(test_release_until_honours_not_before),
        TEST(test_clock_set_back_does_not_hold_items),
        TEST(test_release_until_out_of_attempts_still_fails),
        TEST(test_checkout_stores_the_policys_priority_and_max_attempts),
        TEST(test_max_attempts_then_manual_retry),
        TEST(test_fifo_per_stream_under_mixed_priorities),
        TEST(test_restart_with_processing_items),
        TEST(test_retry_by_id_by_command_id_and_all),
        TEST(test_retry_all_failed_of_many),
        TEST(test_cleanup_removes_only_old_done_items),
        TEST(test_cleanup_exactly_one_chunk),
        TEST(test_next_due_and_oldest_pending),
    };
#undef TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
