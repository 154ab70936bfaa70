/*
 * test_outbox.c — the transactional outbox engine (outbox/outbox.h) on a real till database:
 * claim order (priority, then FIFO by id), batch bounds (count and payload bytes, at least
 * one item), outcomes, attempts and failure, network releases that cost nothing, crash
 * recovery with stable command ids, and not-before times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/uuid.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/till_db.h"
#include "test_util.h"

#define T0 T_2026_11_21_NOON_MS
#define LATER(n) (T0 + (int64_t)(n) * 86400000LL) /* whole days later: past any backoff */

typedef struct fixture {
    test_dir dir;
    char path[300];
    sqlite3 *db;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_dir_make(&f->dir);
    test_dir_file(&f->dir, "till.db", f->path, sizeof(f->path));
    duka_err err = {0};
    assert_ok(duka_till_db_open(f->path, true, &f->db, &err), &err);
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

/* A payload of exactly `bytes` bytes (>= 20), tagged with label. */
static void make_payload(char *buf, size_t buflen, const char *label, size_t bytes)
{
    assert_true(bytes >= 20 && bytes < buflen);
    int n = snprintf(buf, buflen, "{\"n\":\"%s\",\"pad\":\"", label);
    assert_true(n > 0);
    size_t used = (size_t)n;
    while (used < bytes - 2)
        buf[used++] = 'x';
    buf[used++] = '"';
    buf[used++] = '}';
    buf[used] = '\0';
    assert_int_equal(strlen(buf), bytes);
}

typedef struct spec {
    const char *label; /* also the entity id */
    int priority;
    const char *stream;
    size_t bytes;
    int max_attempts;
} spec;

/* Enqueues items in ONE transaction (as checkout does), at now_ms. */
static void enqueue_all(sqlite3 *db, const spec *specs, int n, int64_t now_ms,
                        char ids[][DUKA_UUID_STR_LEN + 1])
{
    duka_err err = {0};
    assert_ok(duka_db_begin(db, &err), &err);
    for (int i = 0; i < n; i++) {
        char payload[1024];
        make_payload(payload, sizeof(payload), specs[i].label,
                     specs[i].bytes ? specs[i].bytes : 40);
        duka_outbox_new it = {
            .queue_type = "sale",
            .command_type = "sale.create",
            .entity_type = "sale",
            .entity_id = specs[i].label,
            .stream = specs[i].stream ? specs[i].stream : "T01",
            .payload = payload,
            .device_id = "T01",
            .priority = specs[i].priority ? specs[i].priority : DUKA_PRIORITY_SALE,
            .max_attempts = specs[i].max_attempts ? specs[i].max_attempts
                                                  : DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT,
        };
        char scratch[DUKA_UUID_STR_LEN + 1];
        assert_ok(duka_outbox_enqueue(db, &it, now_ms, ids ? ids[i] : scratch, &err), &err);
    }
    assert_ok(duka_db_commit(db, &err), &err);
}

static void claim(sqlite3 *db, int max_items, unsigned long budget, int64_t now_ms,
                  duka_outbox_batch *b)
{
    duka_err err = {0};
    assert_ok(duka_outbox_claim(db, max_items, budget, now_ms, b, &err), &err);
}

/* Asserts the batch holds exactly these entity ids, in order. */
static void assert_batch(const duka_outbox_batch *b, const char *const *labels, int n)
{
    if (b->count != n)
        fail_msg("batch of %d items, expected %d", b->count, n);
    for (int i = 0; i < n; i++)
        if (strcmp(b->items[i].entity_id, labels[i]) != 0)
            fail_msg("item %d is %s, expected %s", i, b->items[i].entity_id, labels[i]);
}

static int64_t attempts_of(sqlite3 *db, int64_t id)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT attempts FROM outbox WHERE id = %lld", (long long)id);
    return sql_int(db, sql);
}

static int64_t status_is(sqlite3 *db, int64_t id, const char *status)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE id = %lld AND status = ?1",
             (long long)id);
    return sql_int_text(db, sql, status);
}

/* ---- tests ---- */

static void test_status_names(void **state)
{
    (void)state;
    const char *names[] = {"pending", "processing", "done", "failed", "conflict"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(duka_outbox_status_name((duka_outbox_status)i), names[i]);
        assert_int_equal(duka_outbox_status_parse(names[i]), i);
    }
    assert_int_equal(duka_outbox_status_parse("PENDING"), -1);
    assert_int_equal(duka_outbox_status_parse(""), -1);
    assert_int_equal(duka_outbox_status_parse(NULL), -1);
    assert_string_equal(duka_outbox_status_name((duka_outbox_status)99), "unknown");
}

static void test_claim_priority_then_fifo(void **state)
{
    fixture *f = *state;
    const spec specs[] = {
        {"s1", DUKA_PRIORITY_SALE, "T01", 0, 0},   {"x1", DUKA_PRIORITY_TAX, "T02", 0, 0},
        {"s2", DUKA_PRIORITY_SALE, "T02", 0, 0},   {"b1", DUKA_PRIORITY_BULK, "T01", 0, 0},
        {"x2", DUKA_PRIORITY_TAX, "T01", 0, 0},    {"p1", DUKA_PRIORITY_PAYMENT, "T01", 0, 0},
        {"s3", DUKA_PRIORITY_SALE, "T01", 0, 0},   {"k1", DUKA_PRIORITY_BACKUP, "T03", 0, 0},
    };
    char ids[8][DUKA_UUID_STR_LEN + 1];
    enqueue_all(f->db, specs, 8, T0, ids);
    assert_counts(f->db, 8, 0, 0, 0, 0);

    duka_outbox_batch b;
    claim(f->db, 100, 1UL << 20, T0, &b);
    const char *order[] = {"x1", "x2", "s1", "s2", "s3", "p1", "k1", "b1"};
    assert_batch(&b, order, 8);
    for (int i = 0; i < b.count; i++) {
        assert_int_equal(b.items[i].attempts, 1);
        assert_string_equal(b.items[i].command_type, "sale.create");
        assert_true(duka_uuid_valid(b.items[i].command_id));
        assert_int_equal(status_is(f->db, b.items[i].id, "processing"), 1);
        assert_int_equal(attempts_of(f->db, b.items[i].id), 1);
        assert_int_equal(b.items[i].payload[0], '{');
        assert_int_equal(strlen(b.items[i].payload), 40);
    }
    /* The command ids are the ones handed out at enqueue. */
    assert_string_equal(b.items[0].command_id, ids[1]);
    assert_string_equal(b.items[7].command_id, ids[3]);
    assert_int_equal(b.payload_bytes, 8 * 40);
    assert_counts(f->db, 0, 8, 0, 0, 0);
    duka_outbox_batch_free(&b);
    assert_null(b.items);
    assert_int_equal(b.count, 0);

    /* Nothing left to claim: an empty batch is not an error. */
    claim(f->db, 100, 1UL << 20, T0, &b);
    assert_int_equal(b.count, 0);
    duka_outbox_batch_free(&b);
}

static void test_claim_respects_max_items(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"a", 0, 0, 0, 0}, {"b", 0, 0, 0, 0}, {"c", 0, 0, 0, 0},
                          {"d", 0, 0, 0, 0}, {"e", 0, 0, 0, 0}};
    enqueue_all(f->db, specs, 5, T0, NULL);
    duka_outbox_batch b;
    const char *first[] = {"a", "b"}, *second[] = {"c", "d"}, *third[] = {"e"};
    claim(f->db, 2, 1UL << 20, T0, &b);
    assert_batch(&b, first, 2);
    duka_outbox_batch_free(&b);
    assert_counts(f->db, 3, 2, 0, 0, 0);
    claim(f->db, 2, 1UL << 20, T0, &b);
    assert_batch(&b, second, 2);
    duka_outbox_batch_free(&b);
    claim(f->db, 10, 1UL << 20, T0, &b);
    assert_batch(&b, third, 1);
    duka_outbox_batch_free(&b);
    claim(f->db, 1, 1UL << 20, T0, &b);
    assert_int_equal(b.count, 0);
    duka_outbox_batch_free(&b);
    assert_counts(f->db, 0, 5, 0, 0, 0);
}

static void test_claim_respects_payload_budget(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"a", 0, 0, 100, 0}, {"b", 0, 0, 100, 0}, {"c", 0, 0, 100, 0},
                          {"d", 0, 0, 500, 0}, {"e", 0, 0, 100, 0}, {"f", 0, 0, 100, 0}};
    enqueue_all(f->db, specs, 6, T0, NULL);
    duka_outbox_batch b;

    /* 250 bytes: a and b fit (200), c would make 300. */
    claim(f->db, 100, 250, T0, &b);
    const char *ab[] = {"a", "b"};
    assert_batch(&b, ab, 2);
    assert_int_equal(b.payload_bytes, 200);
    duka_outbox_batch_free(&b);

    /* A budget smaller than the first item still claims that one item (never stuck). */
    claim(f->db, 100, 1, T0, &b);
    const char *c[] = {"c"};
    assert_batch(&b, c, 1);
    assert_int_equal(b.payload_bytes, 100);
    duka_outbox_batch_free(&b);

    /* d alone (500) is over 300, but it is first: claimed alone; e is not added. */
    claim(f->db, 100, 300, T0, &b);
    const char *d[] = {"d"};
    assert_batch(&b, d, 1);
    assert_int_equal(b.payload_bytes, 500);
    duka_outbox_batch_free(&b);

    /* Exactly at the budget is within it. */
    claim(f->db, 100, 200, T0, &b);
    const char *ef[] = {"e", "f"};
    assert_batch(&b, ef, 2);
    assert_int_equal(b.payload_bytes, 200);
    duka_outbox_batch_free(&b);
    assert_counts(f->db, 0, 6, 0, 0, 0);
}

static void test_finish_outcomes(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"done", 0, 0, 0, 0}, {"conf", 0, 0, 0, 0}, {"fail", 0, 0, 0, 0},
                          {"again", 0, 0, 0, 0}, {"untouched", 0, 0, 0, 0}};
    enqueue_all(f->db, specs, 5, T0, NULL);
    duka_outbox_batch b;
    claim(f->db, 4, 1UL << 20, T0, &b);
    assert_int_equal(b.count, 4);
    const int64_t t = T0 + 5000;
    duka_outbox_outcome oc[] = {
        {b.items[0].id, DUKA_OUTBOX_DONE, NULL, NULL},
        {b.items[1].id, DUKA_OUTBOX_CONFLICT, "receipt reused", DUKA_OUTBOX_ERR_CONFLICT},
        {b.items[2].id, DUKA_OUTBOX_FAILED, "lines[0].qty_milli: 0", DUKA_OUTBOX_ERR_VALIDATION},
        {b.items[3].id, DUKA_OUTBOX_PENDING, "hub did not answer", DUKA_OUTBOX_ERR_SERVER},
    };
    duka_err err = {0};
    assert_ok(duka_outbox_finish(f->db, oc, 4, t, &err), &err);
    assert_counts(f->db, 2, 0, 1, 1, 1);

    assert_int_equal(status_is(f->db, b.items[0].id, "done"), 1);
    assert_int_equal(sql_int(f->db, "SELECT processed_ms FROM outbox WHERE entity_id='done'"
                                    " AND last_error IS NULL AND error_category IS NULL"),
                     t);
    assert_int_equal(sql_int(f->db, "SELECT processed_ms FROM outbox WHERE entity_id='conf'"
                                    " AND status='conflict' AND last_error='receipt reused'"
                                    " AND error_category='conflict'"),
                     t);
    assert_int_equal(sql_int(f->db, "SELECT processed_ms FROM outbox WHERE entity_id='fail'"
                                    " AND status='failed' AND error_category='validation'"
                                    " AND last_error='lines[0].qty_milli: 0'"),
                     t);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox WHERE entity_id='again'"
                                    " AND status='pending' AND attempts=1"
                                    " AND processed_ms IS NULL AND error_category='server'"),
                     1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox WHERE entity_id='untouched'"
                                    " AND status='pending' AND attempts=0"),
                     1);

    /* An outcome for an item that is not processing changes nothing (a late answer). */
    duka_outbox_outcome late = {b.items[0].id, DUKA_OUTBOX_FAILED, "late", "server"};
    assert_ok(duka_outbox_finish(f->db, &late, 1, t + 1, &err), &err);
    assert_int_equal(status_is(f->db, b.items[0].id, "done"), 1);
    assert_counts(f->db, 2, 0, 1, 1, 1);
    duka_outbox_batch_free(&b);

    /* Failed and conflict items are never claimed again; the retry and the rest are. */
    claim(f->db, 100, 1UL << 20, LATER(1), &b);
    const char *rest[] = {"again", "untouched"};
    assert_batch(&b, rest, 2);
    assert_int_equal(b.items[0].attempts, 2);
    assert_int_equal(b.items[1].attempts, 1);
    duka_outbox_batch_free(&b);
}

static void test_pending_outcome_fails_at_max_attempts(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"s", 0, 0, 0, 3}};
    enqueue_all(f->db, specs, 1, T0, NULL);
    duka_err err = {0};
    for (int attempt = 1; attempt <= 3; attempt++) {
        duka_outbox_batch b;
        claim(f->db, 10, 1UL << 20, LATER(attempt), &b);
        assert_int_equal(b.count, 1);
        assert_int_equal(b.items[0].attempts, attempt);
        duka_outbox_outcome oc = {b.items[0].id, DUKA_OUTBOX_PENDING, "no answer", "server"};
        assert_ok(duka_outbox_finish(f->db, &oc, 1, LATER(attempt), &err), &err);
        if (attempt < 3)
            assert_counts(f->db, 1, 0, 0, 0, 0);
        else
            assert_counts(f->db, 0, 0, 0, 1, 0);
        duka_outbox_batch_free(&b);
    }
    assert_int_equal(sql_int(f->db, "SELECT attempts FROM outbox WHERE status='failed'"
                                    " AND last_error='no answer'"),
                     3);
    /* A failed item stays visible and is not claimed. */
    duka_outbox_batch b;
    claim(f->db, 10, 1UL << 20, LATER(30), &b);
    assert_int_equal(b.count, 0);
    duka_outbox_batch_free(&b);
}

/* "Not yet" from the receiver for one item (the hub's "retry": a refund ahead of its sale)
 * is not the item's fault: pending again with its attempt given back, however often. */
static void test_pending_network_outcome_costs_nothing(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"s", 0, 0, 0, 2}};
    enqueue_all(f->db, specs, 1, T0, NULL);
    duka_err err = {0};
    for (int round = 1; round <= 5; round++) {
        duka_outbox_batch b;
        claim(f->db, 10, 1UL << 20, LATER(10 * round), &b);
        assert_int_equal(b.count, 1);
        assert_int_equal(b.items[0].attempts, 1);
        duka_outbox_outcome oc = {b.items[0].id, DUKA_OUTBOX_PENDING, "its sale is on its way",
                                  DUKA_OUTBOX_ERR_NETWORK};
        assert_ok(duka_outbox_finish(f->db, &oc, 1, LATER(10 * round), &err), &err);
        assert_counts(f->db, 1, 0, 0, 0, 0);
        duka_outbox_batch_free(&b);
    }
    assert_int_equal(sql_int(f->db, "SELECT attempts FROM outbox WHERE status='pending'"
                                    " AND last_error='its sale is on its way'"
                                    " AND error_category='network'"),
                     0);
}

/* Released for a reason that is not the items' fault (network, auth): never an attempt. */
static void release_costs_nothing(fixture *f, const char *category, const char *error)
{
    const spec specs[] = {{"a", 0, 0, 0, 2}, {"b", 0, 0, 0, 2}};
    enqueue_all(f->db, specs, 2, T0, NULL);
    duka_err err = {0};
    /* Many more failures than max_attempts (offline for a day, a revoked token). */
    for (int round = 1; round <= 12; round++) {
        duka_outbox_batch b;
        claim(f->db, 10, 1UL << 20, LATER(round), &b);
        assert_int_equal(b.count, 2);
        assert_int_equal(b.items[0].attempts, 1);
        assert_int_equal(b.items[1].attempts, 1);
        assert_ok(duka_outbox_release(f->db, &b, error, category, LATER(round), &err), &err);
        assert_int_equal(attempts_of(f->db, b.items[0].id), 0);
        assert_int_equal(attempts_of(f->db, b.items[1].id), 0);
        assert_counts(f->db, 2, 0, 0, 0, 0);
        duka_outbox_batch_free(&b);
    }
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE status='pending' AND attempts=0"
             " AND last_error='%s' AND error_category=?1",
             error);
    assert_int_equal(sql_int_text(f->db, sql, category), 2);
}

static void test_release_network_costs_nothing(void **state)
{
    release_costs_nothing(*state, DUKA_OUTBOX_ERR_NETWORK, "connection refused");
}

static void test_release_auth_costs_nothing(void **state)
{
    release_costs_nothing(*state, DUKA_OUTBOX_ERR_AUTH, "token rejected");
}

static void test_release_validation_counts_and_fails(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"a", 0, 0, 0, 3}, {"b", 0, 0, 0, 5}};
    enqueue_all(f->db, specs, 2, T0, NULL);
    duka_err err = {0};
    for (int round = 1; round <= 3; round++) {
        duka_outbox_batch b;
        claim(f->db, 10, 1UL << 20, LATER(round), &b);
        assert_int_equal(b.count, 2);
        assert_ok(duka_outbox_release(f->db, &b, "400 invalid_json", DUKA_OUTBOX_ERR_VALIDATION,
                                      LATER(round), &err),
                  &err);
        assert_int_equal(attempts_of(f->db, b.items[0].id), round);
        assert_int_equal(attempts_of(f->db, b.items[1].id), round);
        if (round < 3)
            assert_counts(f->db, 2, 0, 0, 0, 0);
        duka_outbox_batch_free(&b);
    }
    /* a had 3 attempts and is failed; b (max 5) is still pending. */
    assert_counts(f->db, 1, 0, 0, 1, 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM outbox WHERE entity_id='a'"
                                    " AND status='failed' AND error_category='validation'"
                                    " AND last_error='400 invalid_json'"),
                     1);
    duka_outbox_batch b;
    claim(f->db, 10, 1UL << 20, LATER(10), &b);
    const char *only_b[] = {"b"};
    assert_batch(&b, only_b, 1);
    assert_int_equal(b.items[0].attempts, 4);
    duka_outbox_batch_free(&b);
}

static void test_recover_after_crash_same_order_same_ids(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"s1", DUKA_PRIORITY_SALE, 0, 0, 0}, {"x1", DUKA_PRIORITY_TAX, 0, 0, 0},
                          {"s2", DUKA_PRIORITY_SALE, 0, 0, 0}, {"s3", DUKA_PRIORITY_SALE, 0, 0, 0},
                          {"s4", DUKA_PRIORITY_SALE, 0, 0, 0}};
    enqueue_all(f->db, specs, 5, T0, NULL);
    duka_outbox_batch first;
    claim(f->db, 3, 1UL << 20, T0, &first);
    const char *claimed[] = {"x1", "s1", "s2"};
    assert_batch(&first, claimed, 3);

    /* The process dies here: the database is closed with the items 'processing'. */
    duka_db_close(f->db);
    duka_err err = {0};
    assert_ok(duka_till_db_open(f->path, false, &f->db, &err), &err);
    assert_counts(f->db, 2, 3, 0, 0, 0);

    int moved = -1;
    assert_ok(duka_outbox_recover(f->db, &moved, &err), &err);
    assert_int_equal(moved, 3);
    assert_counts(f->db, 5, 0, 0, 0, 0);
    /* recover does not touch attempts (the claim already counted one). */
    assert_int_equal(attempts_of(f->db, first.items[0].id), 1);

    duka_outbox_batch again;
    claim(f->db, 10, 1UL << 20, T0, &again);
    const char *all[] = {"x1", "s1", "s2", "s3", "s4"};
    assert_batch(&again, all, 5);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(again.items[i].id, first.items[i].id);
        assert_string_equal(again.items[i].command_id, first.items[i].command_id);
        assert_string_equal(again.items[i].payload, first.items[i].payload);
    }
    duka_outbox_batch_free(&first);
    duka_outbox_batch_free(&again);

    /* Nothing processing: recover moves nothing; NULL moved is allowed. */
    assert_ok(duka_outbox_recover(f->db, NULL, &err), &err);
    assert_ok(duka_outbox_recover(f->db, &moved, &err), &err);
    assert_int_equal(moved, 0);
}

static void test_not_before_time_is_honoured(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"a", 0, 0, 0, 0}, {"b", 0, 0, 0, 0}, {"c", 0, 0, 0, 0}};
    enqueue_all(f->db, specs, 3, T0, NULL);
    duka_outbox_batch b;
    /* Enqueued at T0: not due a millisecond before. */
    claim(f->db, 10, 1UL << 20, T0 - 1, &b);
    assert_int_equal(b.count, 0);
    duka_outbox_batch_free(&b);
    assert_counts(f->db, 3, 0, 0, 0, 0);

    /* b is backing off until T0 + 60 s: a and c are claimed, b does not hold them back. */
    sql_exec(f->db, "UPDATE outbox SET next_attempt_ms = next_attempt_ms + 60000"
                    " WHERE entity_id = 'b'");
    claim(f->db, 10, 1UL << 20, T0 + 59999, &b);
    const char *ac[] = {"a", "c"};
    assert_batch(&b, ac, 2);
    duka_outbox_batch_free(&b);
    claim(f->db, 10, 1UL << 20, T0 + 59999, &b);
    assert_int_equal(b.count, 0);
    duka_outbox_batch_free(&b);
    claim(f->db, 10, 1UL << 20, T0 + 60000, &b);
    const char *only_b[] = {"b"};
    assert_batch(&b, only_b, 1);
    duka_outbox_batch_free(&b);
}

static void test_command_ids_valid_and_unique(void **state)
{
    fixture *f = *state;
    enum { N = 300 };
    static spec specs[N];
    static char labels[N][8];
    static char ids[N][DUKA_UUID_STR_LEN + 1];
    for (int i = 0; i < N; i++) {
        snprintf(labels[i], sizeof(labels[i]), "e%03d", i);
        specs[i] = (spec){labels[i], 0, 0, 0, 0};
    }
    /* All at the same millisecond: uniqueness must come from the random bits. */
    enqueue_all(f->db, specs, N, T0, ids);
    for (int i = 0; i < N; i++) {
        assert_true(duka_uuid_valid(ids[i]));
        assert_int_equal(ids[i][14], '7');                  /* version 7 */
        assert_non_null(strchr("89ab", ids[i][19]));          /* RFC 9562 variant */
        assert_memory_equal(ids[i], "01a1fd55-7a80", 13); /* the 48-bit time prefix of T0 */
    }
    assert_int_equal(sql_int(f->db, "SELECT count(DISTINCT command_id) FROM outbox"), N);
    assert_counts(f->db, N, 0, 0, 0, 0);
}

/*
 * Backoff. PRODUCT.md: retries with exponential backoff (1 s, 2 s, 4 s, 8 s … with jitter).
 * The outbox has next_attempt_ms and claim honours it, so a retry that is not a network
 * failure must be scheduled in the future; otherwise the sync loop (sync_client.c push_batch,
 * which claims again until the queue is drained) re-claims the same item at once and burns
 * through all its attempts within one sync run.
 */
static void test_release_schedules_backoff(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"a", 0, 0, 0, 5}};
    enqueue_all(f->db, specs, 1, T0, NULL);
    duka_outbox_batch b;
    claim(f->db, 10, 1UL << 20, T0, &b);
    assert_int_equal(b.count, 1);
    duka_err err = {0};
    assert_ok(duka_outbox_release(f->db, &b, "502 bad gateway", DUKA_OUTBOX_ERR_SERVER, T0, &err),
              &err);
    duka_outbox_batch_free(&b);
    int64_t next = sql_int(f->db, "SELECT next_attempt_ms FROM outbox");
    if (next <= T0)
        fail_msg("after a server error at %lld the item is due again at %lld: no backoff",
                 (long long)T0, (long long)next);
    claim(f->db, 10, 1UL << 20, T0, &b);
    assert_int_equal(b.count, 0);
    duka_outbox_batch_free(&b);
}

static void test_finish_pending_schedules_backoff(void **state)
{
    fixture *f = *state;
    const spec specs[] = {{"a", 0, 0, 0, 5}};
    enqueue_all(f->db, specs, 1, T0, NULL);
    duka_outbox_batch b;
    claim(f->db, 10, 1UL << 20, T0, &b);
    assert_int_equal(b.count, 1);
    duka_outbox_outcome oc = {b.items[0].id, DUKA_OUTBOX_PENDING, "hub did not answer",
                              DUKA_OUTBOX_ERR_SERVER};
    duka_err err = {0};
    assert_ok(duka_outbox_finish(f->db, &oc, 1, T0, &err), &err);
    duka_outbox_batch_free(&b);
    /* What sync_client's loop does next: claim again at (almost) the same time. */
    claim(f->db, 10, 1UL << 20, T0 + 1, &b);
    int reclaimed = b.count;
    duka_outbox_batch_free(&b);
    if (reclaimed != 0)
        fail_msg("an item the hub did not answer for was re-claimed 1 ms later: no backoff");
}

int main(void)
{
    setenv("TZ", "Africa/Nairobi", 1);
    tzset();
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test_setup_teardown(test_claim_priority_then_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_respects_max_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_respects_payload_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_outcome_fails_at_max_attempts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pending_network_outcome_costs_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_release_network_costs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_auth_costs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_validation_counts_and_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recover_after_crash_same_order_same_ids, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_before_time_is_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_ids_valid_and_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_schedules_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_pending_schedules_backoff, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
