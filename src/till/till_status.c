/* till_status.c — status and queue views (see till_status.h). */
#include "till/till_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>

#include "common/clock.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/etims_receipt.h"
#include "till/mpesa_verify.h"
#include "till/till_db.h"

/* Appends an alert (beyond DUKA_STATUS_ALERTS_MAX they are dropped: the counts still say). */
static void alert(duka_till_status *s, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void alert(duka_till_status *s, const char *code, const char *fmt, ...)
{
    if (s->alert_count == DUKA_STATUS_ALERTS_MAX)
        return;
    snprintf(s->alerts[s->alert_count].code, sizeof(s->alerts[0].code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->alerts[s->alert_count].message, sizeof(s->alerts[0].message), fmt, ap);
    va_end(ap);
    s->alert_count++;
}

static int64_t meta_ms(const char *text, bool has)
{
    return has && text[0] != '\0' ? strtoll(text, NULL, 10) : 0;
}

/* Pending and processing items by queue type. */
static duka_rc load_by_type(sqlite3 *db, duka_till_status *s, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db,
                        "SELECT queue_type, count(*) FROM outbox"
                        " WHERE status IN ('pending','processing') GROUP BY queue_type"
                        " ORDER BY queue_type",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int i = s->type_count < DUKA_STATUS_TYPES_MAX ? s->type_count++ : DUKA_STATUS_TYPES_MAX - 1;
        if (i == DUKA_STATUS_TYPES_MAX - 1 && s->pending_by_type[i].type[0] != '\0')
            snprintf(s->pending_by_type[i].type, sizeof(s->pending_by_type[i].type), "other");
        else
            snprintf(s->pending_by_type[i].type, sizeof(s->pending_by_type[i].type), "%s",
                     (const char *)sqlite3_column_text(st, 0));
        s->pending_by_type[i].count += sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "reading the outbox", err);
    return DUKA_OK;
}

duka_rc duka_till_status_load(sqlite3 *db, const duka_alert_settings *as, duka_till_status *s,
                              duka_err *err)
{
    memset(s, 0, sizeof(*s));
    s->now_ms = duka_clock_now_ms(NULL);
    duka_outbox_counts c;
    char last_ms[32], since[32], forced[8], seen[32];
    bool has_ms = false, has_state = false, has_since = false, has_seen = false;
    bool has_oldest = false;
    if (duka_outbox_count(db, &c, err) ||
        duka_outbox_oldest_pending(db, &s->oldest_pending_ms, &has_oldest, err) ||
        duka_meta_get(db, DUKA_META_LAST_SYNC_MS, last_ms, sizeof(last_ms), &has_ms, err) ||
        duka_meta_get(db, DUKA_META_LAST_SYNC_STATE, s->connectivity, sizeof(s->connectivity),
                      &has_state, err) ||
        duka_meta_get(db, DUKA_META_CONNECTIVITY_SINCE, since, sizeof(since), &has_since, err) ||
        duka_meta_get(db, DUKA_META_CONNECTIVITY_SEEN, seen, sizeof(seen), &has_seen, err) ||
        duka_meta_get(db, DUKA_META_FORCED_OFFLINE, forced, sizeof(forced), NULL, err) ||
        duka_meta_get(db, DUKA_META_LAST_ERROR, s->last_error, sizeof(s->last_error), NULL, err) ||
        duka_meta_get(db, DUKA_META_TERMINAL, s->terminal, sizeof(s->terminal), NULL, err) ||
        duka_meta_get(db, DUKA_META_HUB_URL, s->hub, sizeof(s->hub), NULL, err))
        return DUKA_STORE;
    if (!has_state)
        snprintf(s->connectivity, sizeof(s->connectivity), "unknown");
    if (!has_oldest)
        s->oldest_pending_ms = 0;
    s->connectivity_since_ms = meta_ms(since, has_since);
    s->connectivity_seen_ms = meta_ms(seen, has_seen);
    s->last_sync_ms = meta_ms(last_ms, has_ms);
    s->offline_switch = strcmp(forced, "1") == 0;
    s->pending = c.pending + c.processing;
    s->processing = c.processing;
    s->failed = c.failed;
    s->conflicts = c.conflict;
    s->done = c.done;
    if (load_by_type(db, s, err) != DUKA_OK)
        return DUKA_STORE;
    duka_etims_service svc;
    if (duka_etims_unsigned_count(db, &s->etims_pending, err) != DUKA_OK ||
        duka_etims_service_load(db, &svc, err) != DUKA_OK)
        return DUKA_STORE;
    if (svc.known) {
        snprintf(s->etims_state, sizeof(s->etims_state), "%s", svc.state);
        s->etims_since_ms = svc.since_ms;
        s->etims_hub_pending = svc.pending;
    }
    duka_mpesa_counts mc;
    if (duka_mpesa_counts_load(db, &mc, err) != DUKA_OK)
        return DUKA_STORE;
    s->mpesa_pending = mc.pending_verification;
    s->mpesa_flagged = mc.flagged;
    snprintf(s->mpesa_state, sizeof(s->mpesa_state), "%s", mc.hub_state);
    if (as != NULL && s->mpesa_flagged > 0)
        alert(s, "mpesa_flagged", "%lld M-Pesa %s flagged by the hub: check them with the owner",
              (long long)s->mpesa_flagged, s->mpesa_flagged == 1 ? "payment" : "payments");
    if (as != NULL && s->pending > as->pending_threshold)
        alert(s, "queue_backlog", "%lld items waiting for the hub (alert above %lld)",
              (long long)s->pending, (long long)as->pending_threshold);
    if (as != NULL && strcmp(s->connectivity, "offline") == 0 && s->connectivity_since_ms > 0 &&
        s->now_ms - s->connectivity_since_ms > as->offline_after_ms)
        alert(s, "offline_long", "offline for %lld min (alert after %lld min)",
              (long long)((s->now_ms - s->connectivity_since_ms) / 60000),
              (long long)(as->offline_after_ms / 60000));
    if (c.failed > 0)
        alert(s, "items_failed",
              "%lld items failed; see duka queue --status failed, retry with duka queue retry",
              (long long)c.failed);
    if (c.conflict > 0)
        alert(s, "conflicts", "%lld items are conflicts logged at the hub", (long long)c.conflict);
    if (as != NULL && as->config_problems != NULL && as->config_problems[0] != '\0')
        alert(s, "config_invalid", "%s; see duka config", as->config_problems);
    duka_till_status_light(s);
    return DUKA_OK;
}

void duka_till_status_light(duka_till_status *s)
{
    const char *light = "green";
    char why[sizeof(s->light_reason)];
    const char *sales = s->pending == 1 ? "item waits" : "items wait";
    if (strcmp(s->connectivity, "offline") == 0 || strcmp(s->connectivity, "unknown") == 0) {
        light = "red";
        snprintf(why, sizeof(why), "%s; selling continues, %lld %s for the hub",
                 s->offline_switch ? "switched offline" : "hub not reachable",
                 (long long)s->pending, sales);
    } else if (s->failed > 0) {
        light = "yellow";
        snprintf(why, sizeof(why), "%lld %s failed and need a retry (Sync screen)",
                 (long long)s->failed, s->failed == 1 ? "item" : "items");
    } else if (s->pending > 0) {
        light = "yellow";
        snprintf(why, sizeof(why), "%lld %s to be synced", (long long)s->pending, sales);
    } else if (strcmp(s->connectivity, "degraded") == 0) {
        light = "yellow";
        snprintf(why, sizeof(why), "hub slow or answering with errors%s%s",
                 s->last_error[0] ? ": " : "", s->last_error);
    } else if (strcmp(s->etims_state, "offline") == 0) {
        light = "yellow";
        snprintf(why, sizeof(why), "eTIMS unreachable from the hub: %lld %s",
                 (long long)s->etims_hub_pending,
                 s->etims_hub_pending == 1 ? "invoice waits" : "invoices wait");
    } else if (strcmp(s->etims_state, "degraded") == 0) {
        light = "yellow";
        snprintf(why, sizeof(why), "eTIMS is slow or failing at the hub");
    } else {
        snprintf(why, sizeof(why), "online; everything is at the hub");
    }
    snprintf(s->light, sizeof(s->light), "%s", light);
    snprintf(s->light_reason, sizeof(s->light_reason), "%s", why);
}

static json_t *iso_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char iso[40];
    duka_clock_format_iso(ms, iso, sizeof(iso));
    return json_string(iso);
}

json_t *duka_till_status_to_json(const duka_till_status *s)
{
    json_t *by_type = json_object();
    for (int i = 0; i < s->type_count; i++)
        json_object_set_new(by_type, s->pending_by_type[i].type,
                            json_integer(s->pending_by_type[i].count));
    json_t *alerts = json_array();
    for (int i = 0; i < s->alert_count; i++)
        json_array_append_new(alerts, json_pack("{s:s, s:s}", "code", s->alerts[i].code,
                                                "message", s->alerts[i].message));
    json_t *o = json_pack(
        "{s:s, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:s, s:o, s:o, s:o, s:s, s:s}",
        "connectivity", s->connectivity, "connectivity_since",
        iso_or_null(s->connectivity_since_ms), "offline_switch", s->offline_switch, "pending",
        (json_int_t)s->pending, "processing", (json_int_t)s->processing, "failed",
        (json_int_t)s->failed, "conflicts", (json_int_t)s->conflicts, "done", (json_int_t)s->done,
        "last_sync", iso_or_null(s->last_sync_ms), "last_error", s->last_error,
        "oldest_pending_age_s",
        s->oldest_pending_ms > 0 ? json_integer((s->now_ms - s->oldest_pending_ms) / 1000)
                                 : json_null(),
        "pending_by_type", by_type, "alerts", alerts, "terminal", s->terminal, "hub", s->hub);
    if (o == NULL)
        return NULL;
    /* When the connectivity was last observed (a sync or the worker), and how long ago. */
    json_object_set_new(o, "connectivity_seen", iso_or_null(s->connectivity_seen_ms));
    json_object_set_new(o, "connectivity_age_s",
                        s->connectivity_seen_ms > 0
                            ? json_integer((s->now_ms - s->connectivity_seen_ms) / 1000)
                            : json_null());
    json_object_set_new(o, "last_sync_ms",
                        s->last_sync_ms > 0 ? json_integer(s->last_sync_ms) : json_null());
    json_object_set_new(o, "now_ms", json_integer(s->now_ms));
    /* The shop's offset from UTC now, so a screen shows times as the receipts print them. */
    time_t t = (time_t)(s->now_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    json_object_set_new(o, "utc_offset_min", json_integer(tm.tm_gmtoff / 60));
    json_object_set_new(o, "light", json_string(s->light));
    json_object_set_new(o, "light_reason", json_string(s->light_reason));
    json_object_set_new(o, "etims_pending", json_integer(s->etims_pending));
    json_object_set_new(o, "mpesa",
                        json_pack("{s:I, s:I, s:s}", "pending_verification",
                                  (json_int_t)s->mpesa_pending, "flagged",
                                  (json_int_t)s->mpesa_flagged, "state",
                                  s->mpesa_state[0] ? s->mpesa_state : "unknown"));
    bool known = s->etims_state[0] != '\0';
    json_object_set_new(o, "etims",
                        json_pack("{s:s, s:o, s:o}", "state", known ? s->etims_state : "unknown",
                                  "since_ms", known ? json_integer(s->etims_since_ms) : json_null(),
                                  "pending",
                                  known ? json_integer(s->etims_hub_pending) : json_null()));
    return o;
}

duka_rc duka_till_status_json(sqlite3 *db, const duka_alert_settings *as, json_t **out,
                              duka_err *err)
{
    *out = NULL;
    duka_till_status *s = malloc(sizeof(*s));
    if (s == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory building the status");
    duka_rc rc = duka_till_status_load(db, as, s, err);
    if (rc == DUKA_OK && (*out = duka_till_status_to_json(s)) == NULL)
        rc = duka_err_set(err, DUKA_NOMEM, "out of memory building the status");
    free(s);
    return rc;
}

/* One row of connectivity_log per change of state (the Sync screen's "over the day"). */
static duka_rc log_connectivity_change(sqlite3 *db, int64_t at_ms, const char *state,
                                       const char *error, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    /* "unknown" is a till starting, not a state of the link; a state the log already ends
     * with (online, a restart, online) is no change. */
    if (strcmp(state, "unknown") == 0)
        return DUKA_OK;
    if (duka_db_prepare(db,
                        "INSERT INTO connectivity_log(at_ms, state, error) SELECT ?1, ?2, ?3"
                        " WHERE NOT EXISTS (SELECT 1 FROM connectivity_log WHERE"
                        " id = (SELECT max(id) FROM connectivity_log) AND state = ?2)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, at_ms);
    duka_db_bind_text(st, 2, state);
    if (error != NULL && error[0] != '\0')
        duka_db_bind_text(st, 3, error);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "recording a connectivity change", err);
    return DUKA_OK;
}

duka_rc duka_till_connectivity_log_json(sqlite3 *db, int64_t since_ms, int limit, json_t **out,
                                        duka_err *err)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db,
                        "SELECT at_ms, state, error FROM connectivity_log WHERE at_ms >= ?1"
                        " ORDER BY id DESC LIMIT ?2",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, since_ms);
    sqlite3_bind_int(st, 2, limit + 1);
    json_t *arr = json_array();
    int rc, n = 0;
    bool more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == limit) {
            more = true;
            break;
        }
        const unsigned char *e = sqlite3_column_text(st, 2);
        json_array_append_new(arr, json_pack("{s:o, s:I, s:s, s:o}", "at",
                                             iso_or_null(sqlite3_column_int64(st, 0)), "at_ms",
                                             (json_int_t)sqlite3_column_int64(st, 0), "state",
                                             (const char *)sqlite3_column_text(st, 1), "error",
                                             e ? json_string((const char *)e) : json_null()));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(db, "reading the connectivity log", err);
    }
    *out = json_pack("{s:o, s:b}", "changes", arr, "more", more);
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
    bool changed = !has || strcmp(old, state) != 0;
    if (rc == DUKA_OK && changed)
        rc = duka_meta_set(db, DUKA_META_CONNECTIVITY_SINCE, since, err);
    if (rc == DUKA_OK && changed)
        rc = log_connectivity_change(db, since_ms, state, last_error, err);
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

duka_rc duka_till_history_json(sqlite3 *db, int limit, int64_t offset, json_t **out,
                               duka_err *err)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int64_t total = 0;
    if (duka_db_prepare(db, "SELECT count(*) FROM sync_log", &st, err) != DUKA_OK)
        return DUKA_STORE;
    if (sqlite3_step(st) == SQLITE_ROW)
        total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (duka_db_prepare(db,
                        "SELECT started_ms, direction, items, ok, duplicates, failed, conflicts,"
                        " http_status, duration_ms, error, repeats, coalesce(last_ms, started_ms)"
                        " FROM sync_log ORDER BY id DESC LIMIT ?1 OFFSET ?2",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
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
    *out = json_pack("{s:o, s:I, s:I, s:b}", "attempts", arr, "total", (json_int_t)total,
                     "offset", (json_int_t)offset,
                     "more", offset + (int64_t)json_array_size(arr) < total);
    return DUKA_OK;
}

duka_rc duka_till_history_cleanup(sqlite3 *db, int64_t before_ms, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *const sql[] = {"DELETE FROM sync_log WHERE started_ms < ?1",
                               "DELETE FROM connectivity_log WHERE at_ms < ?1"};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        if (duka_db_prepare(db, sql[i], &st, err) != DUKA_OK)
            return DUKA_STORE;
        sqlite3_bind_int64(st, 1, before_ms);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return duka_db_fail(db, "cleaning the sync history", err);
    }
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
