/* till_status.c — status and queue views (see till_status.h). */
#include "till/till_status.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/till_db.h"

duka_rc duka_till_status_json(sqlite3 *db, json_t **out, duka_err *err)
{
    *out = NULL;
    duka_outbox_counts c;
    char last_ms[32], state[16], last_error[DUKA_ERR_MSG_MAX], terminal[32], hub[DUKA_URL_MAX + 1];
    bool has_ms = false, has_state = false;
    if (duka_outbox_count(db, &c, err) ||
        duka_meta_get(db, DUKA_META_LAST_SYNC_MS, last_ms, sizeof(last_ms), &has_ms, err) ||
        duka_meta_get(db, DUKA_META_LAST_SYNC_STATE, state, sizeof(state), &has_state, err) ||
        duka_meta_get(db, DUKA_META_LAST_ERROR, last_error, sizeof(last_error), NULL, err) ||
        duka_meta_get(db, DUKA_META_TERMINAL, terminal, sizeof(terminal), NULL, err) ||
        duka_meta_get(db, DUKA_META_HUB_URL, hub, sizeof(hub), NULL, err))
        return DUKA_STORE;
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db,
                        "SELECT queue_type, count(*) FROM outbox"
                        " WHERE status IN ('pending','processing') GROUP BY queue_type",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    json_t *by_type = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_object_set_new(by_type, (const char *)sqlite3_column_text(st, 0),
                            json_integer(sqlite3_column_int64(st, 1)));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(by_type);
        return duka_db_fail(db, "reading the outbox", err);
    }
    json_t *last_sync = json_null();
    if (has_ms) {
        char iso[40];
        duka_clock_format_iso(strtoll(last_ms, NULL, 10), iso, sizeof(iso));
        json_decref(last_sync);
        last_sync = json_string(iso);
    }
    *out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:s, s:o, s:s, s:s}", "connectivity",
                     has_state ? state : "unknown", "pending",
                     (json_int_t)(c.pending + c.processing), "processing",
                     (json_int_t)c.processing, "failed", (json_int_t)c.failed, "conflicts",
                     (json_int_t)c.conflict, "done", (json_int_t)c.done, "last_sync", last_sync,
                     "last_error", last_error, "pending_by_type", by_type, "terminal", terminal,
                     "hub", hub);
    return DUKA_OK;
}

duka_rc duka_till_queue_json(sqlite3 *db, const char *status_filter, int limit, json_t **out,
                             duka_err *err)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db,
                        "SELECT id, command_id, queue_type, command_type, entity_type, entity_id,"
                        " status, priority, attempts, max_attempts, next_attempt_ms, last_error,"
                        " error_category, created_ms, processed_ms, device_id FROM outbox"
                        " WHERE ?1 IS NULL OR status = ?1 ORDER BY id LIMIT ?2",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, status_filter);
    sqlite3_bind_int(st, 2, limit);
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *it = json_pack(
            "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I}", "id",
            (json_int_t)sqlite3_column_int64(st, 0), "command_id", sqlite3_column_text(st, 1),
            "queue_type", sqlite3_column_text(st, 2), "type", sqlite3_column_text(st, 3),
            "entity_type", sqlite3_column_text(st, 4), "entity_id", sqlite3_column_text(st, 5),
            "status", sqlite3_column_text(st, 6), "priority", sqlite3_column_int(st, 7),
            "attempts", sqlite3_column_int(st, 8), "max_attempts", sqlite3_column_int(st, 9),
            "next_attempt_ms", (json_int_t)sqlite3_column_int64(st, 10), "created_ms",
            (json_int_t)sqlite3_column_int64(st, 13));
        const unsigned char *e = sqlite3_column_text(st, 11);
        const unsigned char *ec = sqlite3_column_text(st, 12);
        json_object_set_new(it, "last_error", e ? json_string((const char *)e) : json_null());
        json_object_set_new(it, "error_category", ec ? json_string((const char *)ec) : json_null());
        json_object_set_new(it, "processed_ms", sqlite3_column_type(st, 14) == SQLITE_NULL
                                                    ? json_null()
                                                    : json_integer(sqlite3_column_int64(st, 14)));
        json_object_set_new(it, "device_id", json_string((const char *)sqlite3_column_text(st, 15)));
        json_array_append_new(items, it);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return duka_db_fail(db, "reading the outbox", err);
    }
    *out = json_pack("{s:o}", "items", items);
    return DUKA_OK;
}
