/*
 * test_till_status.c — what the till says about its queue and itself (till/till_status.h):
 *
 *   - `duka queue` lists what needs attention first and pages: with 1,000 synced items and a
 *     few pending or failed, those are on the first page (they were invisible behind the
 *     first 1,000 by id), and paging reaches every item exactly once;
 *   - the status raises config_invalid when settings were ignored, and says when the
 *     connectivity it shows was seen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox/outbox.h"
#include "store/db.h"
#include "till/till_db.h"
#include "till/till_status.h"
#include "test_util.h"

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
    f->db = test_till_db(&f->dir, f->path, sizeof(f->path), NULL);
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

/* n outbox items in one transaction, entity ids "<prefix>-<i>". */
static void enqueue(sqlite3 *db, const char *prefix, int n)
{
    duka_err err = {0};
    assert_ok(duka_db_begin(db, &err), &err);
    for (int i = 0; i < n; i++) {
        char entity[48], cmd[DUKA_UUID_STR_LEN + 1];
        snprintf(entity, sizeof(entity), "%s-%05d", prefix, i);
        duka_outbox_new it = {.queue_type = "sale", .command_type = "sale.create",
                              .entity_type = "sale", .entity_id = entity, .stream = "T01",
                              .payload = "{}", .device_id = "T01", .priority = 20,
                              .max_attempts = 5};
        assert_ok(duka_outbox_enqueue(db, &it, 1000 + i, cmd, &err), &err);
    }
    assert_ok(duka_db_commit(db, &err), &err);
}

static void test_queue_shows_what_needs_attention_first(void **state)
{
    fixture *f = *state;
    enqueue(f->db, "OLD", 1000);
    sql_exec(f->db, "UPDATE outbox SET status = 'done', processed_ms = 5000");
    enqueue(f->db, "NEW", 5);
    sql_exec(f->db, "UPDATE outbox SET status = 'failed', last_error = 'refused'"
                    " WHERE entity_id = 'NEW-00003'");
    duka_err err = {0};
    json_t *q = NULL;
    /* The default page (100): the failed one first, then the pending in FIFO order. */
    assert_ok(duka_till_queue_json(f->db, NULL, 100, 0, &q, &err), &err);
    json_t *items = json_object_get(q, "items");
    assert_int_equal(json_array_size(items), 100);
    assert_int_equal(json_integer_value(json_object_get(q, "total")), 1005);
    assert_true(json_is_true(json_object_get(q, "more")));
    const char *order[] = {"NEW-00003", "NEW-00000", "NEW-00001", "NEW-00002", "NEW-00004",
                           "OLD-00999", "OLD-00998"};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(items, i),
                                                              "entity_id")),
                            order[i]);
    json_decref(q);
    /* Every item exactly once across the pages. */
    int seen = 0;
    bool more = true;
    for (int64_t offset = 0; more; offset += 300) {
        assert_ok(duka_till_queue_json(f->db, NULL, 300, offset, &q, &err), &err);
        seen += (int)json_array_size(json_object_get(q, "items"));
        more = json_is_true(json_object_get(q, "more"));
        assert_int_equal(json_integer_value(json_object_get(q, "offset")), offset);
        json_decref(q);
        assert_true(offset < 2000);
    }
    assert_int_equal(seen, 1005);
    assert_int_equal(sql_int(f->db, "SELECT count(DISTINCT entity_id) FROM outbox"), 1005);
    /* A filter pages too. */
    assert_ok(duka_till_queue_json(f->db, "pending", 2, 2, &q, &err), &err);
    assert_int_equal(json_integer_value(json_object_get(q, "total")), 4);
    assert_int_equal(json_array_size(json_object_get(q, "items")), 2);
    assert_false(json_is_true(json_object_get(q, "more")));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(q, "items"), 1), "entity_id")),
                        "NEW-00004");
    json_decref(q);
}

static void test_status_names_ignored_settings_and_age(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    assert_ok(duka_till_record_connectivity(f->db, "online", 1000, false, "", &err), &err);
    duka_alert_settings as = {.pending_threshold = 100, .offline_after_ms = 1800000,
                              .config_problems = "1 setting ignored (defaults used): x"};
    json_t *st = NULL;
    assert_ok(duka_till_status_json(f->db, &as, &st, &err), &err);
    json_t *alerts = json_object_get(st, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(alerts, 0), "code")),
                        "config_invalid");
    assert_true(json_is_string(json_object_get(st, "connectivity_seen")));
    json_int_t age = json_integer_value(json_object_get(st, "connectivity_age_s"));
    assert_true(age >= 0 && age < 60);
    json_decref(st);
    as.config_problems = "";
    assert_ok(duka_till_status_json(f->db, &as, &st, &err), &err);
    assert_int_equal(json_array_size(json_object_get(st, "alerts")), 0);
    json_decref(st);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_shows_what_needs_attention_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_names_ignored_settings_and_age, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
