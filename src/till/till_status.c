/* till_status.c — status and queue views (see till_status.h). */
#include "till/till_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "common/clock.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/till_db.h"

/* Appends {"code","message"} to alerts. */
static void alert(json_t *alerts, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void alert(json_t *alerts, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(alerts, json_pack("{s:s, s:s}", "code", code, "message", msg));
}

static json_t *iso_or_null(bool has, const char *ms_text)
{
    if (!has || ms_text[0] == '\0')
        return json_null();
    char iso[40];
    duka_clock_format_iso(strtoll(ms_text, NULL, 10), iso, sizeof(iso));
    return json_string(iso);
}

duka_rc duka_till_status_json(sqlite3 *db, const duka_alert_settings *as, json_t **out,
                              duka_err *err)
{
    *out = NULL;
    duka_outbox_counts c;
    char last_ms[32], state[16], since[32], forced[8], last_error[DUKA_ERR_MSG_MAX];
    char terminal[32], hub[DUKA_URL_MAX + 1], seen[32];
    bool has_ms = false, has_state = false, has_since = false, has_seen = false;
    int64_t oldest = 0, now = duka_clock_now_ms(NULL);
    bool has_oldest = false;
    if (duka_outbox_count(db, &c, err) ||
        duka_outbox_oldest_pending(db, &oldest, &has_oldest, err) ||
        duka_meta_get(db, DUKA_META_LAST_SYNC_MS, last_ms, sizeof(last_ms), &has_ms, err) ||
        duka_meta_get(db, DUKA_META_LAST_SYNC_STATE, state, sizeof(state), &has_state, err) ||
        duka_meta_get(db, DUKA_META_CONNECTIVITY_SINCE, since, sizeof(since), &has_since, err) ||
        duka_meta_get(db, DUKA_META_CONNECTIVITY_SEEN, seen, sizeof(seen), &has_seen, err) ||
        duka_meta_get(db, DUKA_META_FORCED_OFFLINE, forced, sizeof(forced), NULL, err) ||
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
    int64_t pending = c.pending + c.processing;
    json_t *alerts = json_array();
    if (as != NULL && pending > as->pending_threshold)
        alert(alerts, "queue_backlog", "%lld items waiting for the hub (alert above %lld)",
              (long long)pending, (long long)as->pending_threshold);
    if (as != NULL && has_state && strcmp(state, "offline") == 0 && has_since &&
        now - strtoll(since, NULL, 10) > as->offline_after_ms)
        alert(alerts, "offline_long", "offline for %lld min (alert after %lld min)",
              (long long)((now - strtoll(since, NULL, 10)) / 60000),
              (long long)(as->offline_after_ms / 60000));
    if (c.failed > 0)
        alert(alerts, "items_failed",
              "%lld items failed; see duka queue --status failed, retry with duka queue retry",
              (long long)c.failed);
    if (c.conflict > 0)
        alert(alerts, "conflicts", "%lld items are conflicts logged at the hub",
              (long long)c.conflict);
    if (as != NULL && as->config_problems != NULL && as->config_problems[0] != '\0')
        alert(alerts, "config_invalid", "%s; see duka config", as->config_problems);
    *out = json_pack("{s:s, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:s, s:o, s:o, s:o, s:s, s:s}",
                     "connectivity", has_state ? state : "unknown", "connectivity_since",
                     iso_or_null(has_since, since), "offline_switch", strcmp(forced, "1") == 0,
                     "pending", (json_int_t)pending, "processing", (json_int_t)c.processing,
                     "failed", (json_int_t)c.failed, "conflicts", (json_int_t)c.conflict, "done",
                     (json_int_t)c.done, "last_sync", iso_or_null(has_ms, last_ms),
                     "last_error", last_error, "oldest_pending_age_s",
                     has_oldest ? json_integer((now - oldest) / 1000) : json_null(),
                     "pending_by_type", by_type, "alerts", alerts, "terminal", terminal, "hub",
                     hub);
    if (*out == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory building the status");
    /* When the connectivity was last observed (a sync or the worker), and how long ago. */
    json_object_set_new(*out, "connectivity_seen", iso_or_null(has_seen, seen));
    json_object_set_new(*out, "connectivity_age_s",
                        has_seen && seen[0] ? json_integer((now - strtoll(seen, NULL, 10)) / 1000)
                                            : json_null());
    return DUKA_OK;
}

duka_rc duka_till_record_connectivity(sqlite3 *db, const char *state, int64_t since_ms,
                                      bool forced_offline, const char *last_error,
                                      duka_err *err)
{
    char old[16], since[32];
    bool has = false;
    if (duka_db_begin(db, err) != DUKA_OK)
        return DUKA_STORE;
    duka_rc rc = duka_meta_get(db, DUKA_META_LAST_SYNC_STATE, old, sizeof(old), &has, err);
    snprintf(since, sizeof(since), "%lld", (long long)since_ms);
    if (rc == DUKA_OK && (!has || strcmp(old, state) != 0))
        rc = duka_meta_set(db, DUKA_META_CONNECTIVITY_SINCE, since, err);
    if (rc == DUKA_OK)
        rc = duka_meta_set(db, DUKA_META_LAST_SYNC_STATE, state, err);
    char seen[32];
    snprintf(seen, sizeof(seen), "%lld", (long long)duka_clock_now_ms(NULL));
    if (rc == DUKA_OK)
        rc = duka_meta_set(db, DUKA_META_CONNECTIVITY_SEEN, seen, err);
    if (rc == DUKA_OK)
        rc = duka_meta_set(db, DUKA_META_FORCED_OFFLINE, forced_offline ? "1" : "0", err);
    if (rc == DUKA_OK && last_error != NULL)
        rc = duka_meta_set(db, DUKA_META_LAST_ERROR, last_error, err);
    if (rc == DUKA_OK)
        rc = duka_db_commit(db, err);
    if (rc != DUKA_OK)
        duka_db_rollback(db);
    return rc;
}

duka_rc duka_till_history_json(sqlite3 *db, int limit, json_t **out, duka_err *err)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db,
                        "SELECT started_ms, direction, items, ok, duplicates, failed, conflicts,"
                        " http_status, duration_ms, error, repeats, coalesce(last_ms, started_ms)"
                        " FROM sync_log ORDER BY id DESC LIMIT ?1",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int(st, 1, limit);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char iso[40];
        duka_clock_format_iso(sqlite3_column_int64(st, 0), iso, sizeof(iso));
        const unsigned char *e = sqlite3_column_text(st, 9);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "started", iso,
                           "direction", sqlite3_column_text(st, 1), "items",
                           (json_int_t)sqlite3_column_int64(st, 2), "ok",
                           (json_int_t)sqlite3_column_int64(st, 3), "duplicates",
                           (json_int_t)sqlite3_column_int64(st, 4), "failed",
                           (json_int_t)sqlite3_column_int64(st, 5), "conflicts",
                           (json_int_t)sqlite3_column_int64(st, 6), "http_status",
                           (json_int_t)sqlite3_column_int64(st, 7), "duration_ms",
                           (json_int_t)sqlite3_column_int64(st, 8), "error",
                           e ? json_string((const char *)e) : json_null()));
        char last[40];
        duka_clock_format_iso(sqlite3_column_int64(st, 11), last, sizeof(last));
        json_t *row = json_array_get(arr, json_array_size(arr) - 1);
        json_object_set_new(row, "repeats", json_integer(sqlite3_column_int64(st, 10)));
        json_object_set_new(row, "last", json_string(last));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(db, "reading the sync history", err);
    }
    *out = json_pack("{s:o}", "attempts", arr);
    return DUKA_OK;
}

duka_rc duka_till_history_cleanup(sqlite3 *db, int64_t before_ms, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db, "DELETE FROM sync_log WHERE started_ms < ?1", &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, before_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "cleaning the sync history", err);
    return DUKA_OK;
}

duka_rc duka_till_queue_json(sqlite3 *db, const char *status_filter, int limit, int64_t offset,
                             json_t **out, duka_err *err)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int64_t total = 0;
    if (duka_db_prepare(db, "SELECT count(*) FROM outbox WHERE ?1 IS NULL OR status = ?1", &st,
                        err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, status_filter);
    int crc = sqlite3_step(st);
    if (crc == SQLITE_ROW)
        total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (crc != SQLITE_ROW)
        return duka_db_fail(db, "counting the outbox", err);
    if (duka_db_prepare(db,
                        "SELECT id, command_id, queue_type, command_type, entity_type, entity_id,"
                        " status, priority, attempts, max_attempts, next_attempt_ms, last_error,"
                        " error_category, created_ms, processed_ms, device_id FROM outbox"
                        " WHERE ?1 IS NULL OR status = ?1"
                        " ORDER BY CASE status WHEN 'failed' THEN 0 WHEN 'conflict' THEN 1"
                        " WHEN 'processing' THEN 2 WHEN 'pending' THEN 3 ELSE 4 END,"
                        " CASE WHEN status = 'done' THEN -id ELSE id END LIMIT ?2 OFFSET ?3",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, status_filter);
    sqlite3_bind_int(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
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
    size_t shown = json_array_size(items);
    *out = json_pack("{s:o, s:I, s:I, s:i, s:b}", "items", items, "total", (json_int_t)total,
                     "offset", (json_int_t)offset, "limit", limit, "more",
                     offset + (int64_t)shown < total);
    return *out ? DUKA_OK : duka_err_set(err, DUKA_NOMEM, "out of memory listing the queue");
}
