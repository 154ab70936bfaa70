/*
 * outbox_store_sqlite.c — the hub's outbox (outbox/hub_outbox.h) on the embedded SQLite store.
 * One hub process owns a SQLite file, so a lease never meets another hub here; it still
 * carries the owner and deadline, so a forwarder that died mid-send (kill -9) is recovered
 * the same way as on PostgreSQL: its lease runs out and the item is claimed again, unclear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_store_sqlite_int.h"
#include "outbox/outbox.h"

static const char *col_text(sqlite3_stmt *st, int c)
{
    const char *t = (const char *)sqlite3_column_text(st, c);
    return t ? t : "";
}

static duka_rc run_plain(sqlite_store *s, const char *sql, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s, sql, &st, err) != DUKA_OK)
        return DUKA_STORE;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DUKA_OK : duka_db_fail(s->db, sql, err);
}

/* Takes count numbers of a series, in the caller's transaction: *last_out is the last one. */
static duka_rc series_take(sqlite_store *s, const char *stream, int64_t count, int64_t *last_out,
                           duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "INSERT INTO outbox_sequences(stream, last_no) VALUES(?1, ?2)"
                     " ON CONFLICT(stream) DO UPDATE SET last_no = last_no + ?2"
                     " RETURNING last_no",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, stream);
    sqlite3_bind_int64(st, 2, count);
    int rc = sqlite3_step(st);
    *last_out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? DUKA_OK : duka_db_fail(s->db, "numbering outbox items", err);
}

duka_rc duka_sq_outbox_enqueue(duka_hub_store *hs, const char *business_id,
                               const duka_hub_outbox_new *jobs, int n, int64_t now_ms,
                               duka_err *err)
{
    sqlite_store *s = sq(hs);
    int64_t last = 0;
    if (series_take(s, jobs[0].stream, n, &last, err) != DUKA_OK)
        return DUKA_STORE;
    int64_t first = last - n + 1;
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "INSERT INTO hub_outbox(business_id, destination, stream, seq_no, ref_no,"
                     " command_type, entity_id, terminal, payload, priority, max_attempts,"
                     " next_attempt_ms, created_ms)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    for (int i = 0; i < n; i++) {
        const duka_hub_outbox_new *j = &jobs[i];
        duka_db_bind_text(st, 1, business_id);
        duka_db_bind_text(st, 2, j->destination);
        duka_db_bind_text(st, 3, j->stream);
        sqlite3_bind_int64(st, 4, first + i);
        sqlite3_bind_int64(st, 5, j->ref_no);
        duka_db_bind_text(st, 6, j->command_type);
        duka_db_bind_text(st, 7, j->entity_id);
        duka_db_bind_text(st, 8, j->terminal);
        duka_db_bind_text(st, 9, j->payload);
        sqlite3_bind_int(st, 10, j->priority);
        sqlite3_bind_int(st, 11, j->max_attempts);
        sqlite3_bind_int64(st, 12, now_ms);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return duka_db_fail(s->db, "enqueueing an outbox item", err);
    }
    return DUKA_OK;
}

duka_rc duka_sq_outbox_claim(duka_hub_store *hs, const char *destination, const char *owner,
                             int max, int64_t lease_until_ms, int64_t now_ms,
                             duka_hub_outbox_claim *out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    out->count = 0;
    if (run_plain(s, "BEGIN IMMEDIATE", err) != DUKA_OK)
        return DUKA_STORE;
    /* What a dead forwarder held, and answers that never came: due again, asked first. */
    sqlite3_stmt *st = NULL;
    duka_rc rc = duka_sq_stmt(s,
                              "UPDATE hub_outbox SET status = 'pending', unclear = 1,"
                              " attempts = CASE WHEN status = 'processing'"
                              "   THEN max(attempts - 1, 0) ELSE attempts END,"
                              " lease_owner = NULL, lease_until_ms = NULL, next_attempt_ms = ?2"
                              " WHERE destination = ?1 AND ((status = 'processing'"
                              "   AND (lease_until_ms < ?2 OR lease_until_ms > ?2 + ?3))"
                              "   OR (status = 'awaiting' AND next_attempt_ms <= ?2))",
                              &st, err);
    if (rc == DUKA_OK) {
        duka_db_bind_text(st, 1, destination);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_int64(st, 3, DUKA_HUB_OUTBOX_LEASE_MAX_MS);
        int r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            rc = duka_db_fail(s->db, "recovering expired outbox leases", err);
    }
    if (rc == DUKA_OK)
        rc = duka_sq_stmt(s,
                          "UPDATE hub_outbox SET status = 'processing', attempts = attempts + 1,"
                          " lease_owner = ?1, lease_until_ms = ?2"
                          " WHERE id IN (SELECT id FROM hub_outbox"
                          "   WHERE destination = ?3 AND status = 'pending'"
                          "     AND (next_attempt_ms <= ?4 OR next_attempt_ms > ?4 + ?5)"
                          "   ORDER BY priority, stream, seq_no LIMIT ?6)"
                          " RETURNING id, business_id, stream, command_type, entity_id, terminal,"
                          " seq_no, ref_no, attempts, max_attempts, unclear, created_ms, payload",
                          &st, err);
    if (rc == DUKA_OK) {
        duka_db_bind_text(st, 1, owner);
        sqlite3_bind_int64(st, 2, lease_until_ms);
        duka_db_bind_text(st, 3, destination);
        sqlite3_bind_int64(st, 4, now_ms);
        sqlite3_bind_int64(st, 5, duka_outbox_wait_max_ms());
        sqlite3_bind_int(st, 6, max);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW && out->count < max) {
            duka_hub_outbox_item *it = &out->items[out->count];
            memset(it, 0, sizeof(*it));
            it->id = sqlite3_column_int64(st, 0);
            snprintf(it->business_id, sizeof(it->business_id), "%s", col_text(st, 1));
            snprintf(it->stream, sizeof(it->stream), "%s", col_text(st, 2));
            snprintf(it->command_type, sizeof(it->command_type), "%s", col_text(st, 3));
            snprintf(it->entity_id, sizeof(it->entity_id), "%s", col_text(st, 4));
            snprintf(it->terminal, sizeof(it->terminal), "%s", col_text(st, 5));
            it->seq_no = sqlite3_column_int64(st, 6);
            it->ref_no = sqlite3_column_int64(st, 7);
            it->attempts = sqlite3_column_int(st, 8);
            it->max_attempts = sqlite3_column_int(st, 9);
            it->unclear = sqlite3_column_int(st, 10) != 0;
            it->created_ms = sqlite3_column_int64(st, 11);
            it->payload = strdup(col_text(st, 12));
            out->count++;
            if (it->payload == NULL) {
                r = SQLITE_NOMEM;
                break;
            }
        }
        sqlite3_reset(st);
        if (r != SQLITE_DONE && r != SQLITE_ROW)
            rc = r == SQLITE_NOMEM ? duka_err_set(err, DUKA_NOMEM, "out of memory claiming")
                                   : duka_db_fail(s->db, "claiming outbox items", err);
    }
    if (rc == DUKA_OK)
        rc = run_plain(s, "COMMIT", err);
    if (rc != DUKA_OK) {
        if (!sqlite3_get_autocommit(s->db))
            run_plain(s, "ROLLBACK", NULL);
        duka_hub_outbox_claim_free(out);
        return rc;
    }
    duka_hub_outbox_claim_sort(out);
    return DUKA_OK;
}

static duka_rc finish_one(sqlite_store *s, const char *owner, const duka_hub_outbox_item *it,
                          const duka_hub_outbox_outcome *o, const duka_hub_outbox_next *nx,
                          int64_t now_ms, bool *lost, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    bool final = nx->status == DUKA_HUB_OUTBOX_DONE || nx->status == DUKA_HUB_OUTBOX_FAILED;
    if (duka_sq_stmt(s,
                     "UPDATE hub_outbox SET status = ?3, attempts = ?4, next_attempt_ms = ?5,"
                     " unclear = ?6, lease_owner = NULL, lease_until_ms = NULL,"
                     " last_error = ?7, error_category = ?8,"
                     " processed_ms = CASE WHEN ?9 THEN ?10 ELSE processed_ms END"
                     " WHERE id = ?1 AND lease_owner = ?2 AND status = 'processing'",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, it->id);
    duka_db_bind_text(st, 2, owner);
    duka_db_bind_text(st, 3, duka_hub_outbox_status_name(nx->status));
    sqlite3_bind_int(st, 4, nx->attempts);
    sqlite3_bind_int64(st, 5, nx->next_attempt_ms);
    sqlite3_bind_int(st, 6, nx->unclear);
    duka_db_bind_text(st, 7, o->error);
    duka_db_bind_text(st, 8, o->error_category);
    sqlite3_bind_int(st, 9, final);
    sqlite3_bind_int64(st, 10, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(s->db, "recording an outbox outcome", err);
    *lost = sqlite3_changes(s->db) == 0;
    if (duka_sq_stmt(s,
                     "INSERT INTO hub_outbox_attempts(item_id, attempt, owner, finished_ms,"
                     " duration_ms, outcome, http_status, error)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, it->id);
    sqlite3_bind_int(st, 2, it->attempts);
    duka_db_bind_text(st, 3, owner);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_int64(st, 5, o->duration_ms);
    duka_db_bind_text(st, 6, *lost ? "lease_lost" : duka_hub_outbox_verdict_name(o->verdict));
    sqlite3_bind_int64(st, 7, o->http_status);
    duka_db_bind_text(st, 8, o->error);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(s->db, "logging an outbox attempt", err);
    if (*lost || o->verdict != DUKA_HUB_OUTBOX_SENT || o->result == NULL)
        return DUKA_OK;
    char series[DUKA_HUB_OUTBOX_STREAM_MAX + 96];
    snprintf(series, sizeof(series), "results:%s:%s", it->business_id, it->terminal);
    int64_t seq = 0;
    if (series_take(s, series, 1, &seq, err) != DUKA_OK)
        return DUKA_STORE;
    if (duka_sq_stmt(s,
                     "INSERT INTO outbox_results(business_id, terminal, destination, seq,"
                     " item_id, entity_id, result, created_ms)"
                     " SELECT business_id, terminal, destination, ?2, id, entity_id, ?3, ?4"
                     " FROM hub_outbox WHERE id = ?1"
                     " ON CONFLICT DO NOTHING",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, it->id);
    sqlite3_bind_int64(st, 2, seq);
    duka_db_bind_text(st, 3, o->result);
    sqlite3_bind_int64(st, 4, now_ms);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DUKA_OK : duka_db_fail(s->db, "keeping an outbox result", err);
}

duka_rc duka_sq_outbox_finish(duka_hub_store *hs, const char *owner,
                              const duka_hub_outbox_item *items,
                              const duka_hub_outbox_outcome *outcomes,
                              const duka_hub_outbox_next *next, int n, int64_t now_ms, int *lost,
                              duka_err *err)
{
    sqlite_store *s = sq(hs);
    *lost = 0;
    duka_rc rc = run_plain(s, "BEGIN IMMEDIATE", err);
    for (int i = 0; rc == DUKA_OK && i < n; i++) {
        bool l = false;
        rc = finish_one(s, owner, &items[i], &outcomes[i], &next[i], now_ms, &l, err);
        *lost += l;
    }
    if (rc == DUKA_OK)
        rc = run_plain(s, "COMMIT", err);
    if (rc != DUKA_OK && !sqlite3_get_autocommit(s->db))
        run_plain(s, "ROLLBACK", NULL);
    return rc;
}

/* Runs one write with parameters ?1 text, ?2 and ?3 int64 (those the SQL names; binding one
 * it does not name is a harmless SQLITE_RANGE) and reports the rows it changed. */
static duka_rc write_count(sqlite_store *s, const char *sql, const char *text, int64_t a,
                           int64_t b, int64_t *changed, const char *what, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s, sql, &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, text);
    sqlite3_bind_int64(st, 2, a);
    sqlite3_bind_int64(st, 3, b);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(s->db, what, err);
    if (changed)
        *changed = sqlite3_changes(s->db);
    return DUKA_OK;
}

duka_rc duka_sq_outbox_wake(duka_hub_store *hs, const char *destination, int64_t now_ms,
                            int64_t *woken, duka_err *err)
{
    return write_count(sq(hs),
                       "UPDATE hub_outbox SET next_attempt_ms = ?2"
                       " WHERE destination = ?1 AND status = 'pending' AND next_attempt_ms > ?2",
                       destination, now_ms, 0, woken, "waking outbox items", err);
}

duka_rc duka_sq_outbox_recover_own(duka_hub_store *hs, const char *destination, int64_t now_ms,
                                   int64_t *recovered, duka_err *err)
{
    return write_count(sq(hs),
                       "UPDATE hub_outbox SET status = 'pending', unclear = 1, lease_owner = NULL,"
                       " attempts = max(attempts - 1, 0), lease_until_ms = NULL,"
                       " next_attempt_ms = ?2"
                       " WHERE destination = ?1 AND status = 'processing'",
                       destination, now_ms, 0, recovered, "recovering outbox items", err);
}

duka_rc duka_sq_outbox_retry(duka_hub_store *hs, const char *business_id, int64_t id,
                             int64_t now_ms, int *retried, duka_err *err)
{
    int64_t k = 0;
    duka_rc rc = write_count(sq(hs),
                             "UPDATE hub_outbox SET status = 'pending', attempts = 0,"
                             " next_attempt_ms = ?2, processed_ms = NULL"
                             " WHERE business_id = ?1 AND status = 'failed'"
                             " AND (?3 = 0 OR id = ?3)",
                             business_id, now_ms, id, &k, "retrying outbox items", err);
    *retried = (int)k;
    return rc;
}

duka_rc duka_sq_outbox_cleanup(duka_hub_store *hs, int64_t done_before_ms, int64_t *deleted,
                               duka_err *err)
{
    sqlite_store *s = sq(hs);
    *deleted = 0;
    /* Bounded chunks, each its own transaction, so a first cleanup of a year's items never
     * holds the writer for long. */
    for (int round = 0; round < DUKA_OUTBOX_CLEANUP_ROUNDS_MAX; round++) {
        int64_t k = 0;
        duka_rc rc = run_plain(s, "BEGIN IMMEDIATE", err);
        if (rc == DUKA_OK)
            rc = write_count(s,
                             "DELETE FROM hub_outbox_attempts WHERE item_id IN"
                             " (SELECT id FROM hub_outbox WHERE status = 'done'"
                             "  AND processed_ms < ?2 ORDER BY id LIMIT ?3)",
                             NULL, done_before_ms, DUKA_OUTBOX_CLEANUP_CHUNK, NULL,
                             "removing outbox attempts", err);
        if (rc == DUKA_OK)
            rc = write_count(s,
                             "DELETE FROM hub_outbox WHERE id IN"
                             " (SELECT id FROM hub_outbox WHERE status = 'done'"
                             "  AND processed_ms < ?2 ORDER BY id LIMIT ?3)",
                             NULL, done_before_ms, DUKA_OUTBOX_CLEANUP_CHUNK, &k,
                             "removing done outbox items", err);
        if (rc == DUKA_OK)
            rc = run_plain(s, "COMMIT", err);
        if (rc != DUKA_OK) {
            if (!sqlite3_get_autocommit(s->db))
                run_plain(s, "ROLLBACK", NULL);
            return rc;
        }
        *deleted += k;
        if (k < DUKA_OUTBOX_CLEANUP_CHUNK)
            break;
    }
    return DUKA_OK;
}

duka_rc duka_sq_outbox_count(duka_hub_store *hs, const char *business_id,
                             const char *destination, bool with_done,
                             duka_hub_outbox_counts *out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    /* One statement per case, each with its statuses spelled out, so that the planner takes
     * hub_outbox_business (or hub_outbox_due for every business) and reads only those rows:
     * "?1 IS NULL OR business_id = ?1" read every business's items, done ones too. */
    if (duka_sq_stmt(s, duka_hub_outbox_count_sql(business_id != NULL, with_done, '?'), &st,
                     err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, destination);
    if (business_id != NULL)
        duka_db_bind_text(st, 2, business_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int status = duka_hub_outbox_status_parse(col_text(st, 0));
        int64_t k = sqlite3_column_int64(st, 1), oldest = sqlite3_column_int64(st, 2);
        duka_hub_outbox_counts_add(out, status, k, oldest);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DUKA_OK : duka_db_fail(s->db, "counting outbox items", err);
}

duka_rc duka_sq_outbox_list(duka_hub_store *hs, const char *business_id, const char *status,
                            int limit, json_t **out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "SELECT id, destination, command_type, entity_id, terminal, seq_no, status,"
                     " attempts, max_attempts, next_attempt_ms, last_error, error_category,"
                     " created_ms, processed_ms, unclear FROM hub_outbox"
                     " WHERE business_id = ?1 AND (?2 IS NULL OR status = ?2)"
                     " ORDER BY id DESC LIMIT ?3",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, status);
    sqlite3_bind_int(st, 3, limit);
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_pack(
            "{s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:i, s:i, s:I, s:o, s:o, s:I, s:o, s:b}", "id",
            (json_int_t)sqlite3_column_int64(st, 0), "destination", col_text(st, 1),
            "command_type", col_text(st, 2), "entity_id", col_text(st, 3), "terminal",
            col_text(st, 4), "seq_no", (json_int_t)sqlite3_column_int64(st, 5), "status",
            col_text(st, 6), "attempts", sqlite3_column_int(st, 7), "max_attempts",
            sqlite3_column_int(st, 8), "next_attempt_ms",
            (json_int_t)sqlite3_column_int64(st, 9), "last_error",
            sqlite3_column_type(st, 10) == SQLITE_NULL ? json_null()
                                                       : duka_hub_json_text(col_text(st, 10)),
            "error_category",
            sqlite3_column_type(st, 11) == SQLITE_NULL ? json_null()
                                                       : json_string(col_text(st, 11)),
            "created_ms", (json_int_t)sqlite3_column_int64(st, 12), "processed_ms",
            sqlite3_column_type(st, 13) == SQLITE_NULL
                ? json_null()
                : json_integer(sqlite3_column_int64(st, 13)),
            "unclear", sqlite3_column_int(st, 14) != 0);
        json_array_append_new(items, o);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return duka_db_fail(s->db, "listing outbox items", err);
    }
    *out = json_pack("{s:o}", "items", items);
    return DUKA_OK;
}

duka_rc duka_sq_outbox_results(duka_hub_store *hs, const char *business_id,
                               const char *terminal, const char *destination, int64_t cursor,
                               int limit, json_t **out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "SELECT seq, result FROM outbox_results"
                     " WHERE business_id = ?1 AND terminal = ?2 AND destination = ?3"
                     " AND seq > ?4 ORDER BY seq LIMIT ?5",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, terminal);
    duka_db_bind_text(st, 3, destination);
    sqlite3_bind_int64(st, 4, cursor);
    sqlite3_bind_int(st, 5, limit + 1);
    json_t *list = json_array();
    int rc, n = 0;
    bool more = false;
    int64_t last = cursor;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            more = true;
            break;
        }
        last = sqlite3_column_int64(st, 0);
        json_t *r = json_loads(col_text(st, 1), 0, NULL);
        if (json_is_object(r)) {
            json_object_set_new(r, "seq", json_integer(last));
            json_array_append_new(list, r);
        } else {
            json_decref(r);
        }
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(list);
        return duka_db_fail(s->db, "reading outbox results", err);
    }
    *out = json_pack("{s:I, s:b, s:o}", "cursor", (json_int_t)last, "more", more, "list", list);
    return DUKA_OK;
}

duka_rc duka_sq_sale_load(duka_hub_store *hs, const char *business_id, const char *receipt_no,
                          duka_sale *out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "SELECT id, terminal, created_ms, total_cents, tax_cents, cashier_id,"
                     " cashier_name, kind, coalesce(original_receipt_no, ''),"
                     " coalesce(refund_reason, '') FROM sales"
                     " WHERE business_id = ?1 AND receipt_no = ?2",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, receipt_no);
    int rc = sqlite3_step(st);
    int64_t id = 0;
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        snprintf(out->receipt_no, sizeof(out->receipt_no), "%s", receipt_no);
        snprintf(out->terminal, sizeof(out->terminal), "%s", col_text(st, 1));
        out->created_ms = sqlite3_column_int64(st, 2);
        out->total_cents = sqlite3_column_int64(st, 3);
        out->tax_cents = sqlite3_column_int64(st, 4);
        snprintf(out->cashier_id, sizeof(out->cashier_id), "%s", col_text(st, 5));
        snprintf(out->cashier_name, sizeof(out->cashier_name), "%s", col_text(st, 6));
        out->kind = strcmp(col_text(st, 7), "refund") == 0 ? DUKA_KIND_REFUND : DUKA_KIND_SALE;
        snprintf(out->original_receipt_no, sizeof(out->original_receipt_no), "%s",
                 col_text(st, 8));
        snprintf(out->reason, sizeof(out->reason), "%s", col_text(st, 9));
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return duka_err_set(err, DUKA_NOTFOUND, "sale %s not found", receipt_no);
    if (rc != SQLITE_ROW)
        return duka_db_fail(s->db, "reading a sale", err);
    if (duka_sq_stmt(s,
                     "SELECT sku, name, qty_milli, unit_price_cents, tax_band, line_total_cents,"
                     " tax_cents, coalesce(original_line, 0) FROM sale_lines WHERE sale_id = ?1"
                     " ORDER BY line_no",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->line_count < DUKA_SALE_LINES_MAX) {
        duka_sale_line *l = &out->lines[out->line_count++];
        snprintf(l->sku, sizeof(l->sku), "%s", col_text(st, 0));
        snprintf(l->name, sizeof(l->name), "%s", col_text(st, 1));
        l->qty_milli = sqlite3_column_int64(st, 2);
        l->unit_price_cents = sqlite3_column_int64(st, 3);
        l->tax_band = col_text(st, 4)[0];
        l->line_total_cents = sqlite3_column_int64(st, 5);
        l->tax_cents = sqlite3_column_int64(st, 6);
        l->original_line = sqlite3_column_int(st, 7);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return duka_db_fail(s->db, "reading a sale's lines", err);
    if (duka_sq_stmt(s,
                     "SELECT method, amount_cents, reference, status FROM payments"
                     " WHERE sale_id = ?1 ORDER BY id",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->payment_count < DUKA_SALE_PAYMENTS_MAX) {
        duka_payment *p = &out->payments[out->payment_count++];
        snprintf(p->method, sizeof(p->method), "%s", col_text(st, 0));
        p->amount_cents = sqlite3_column_int64(st, 1);
        snprintf(p->reference, sizeof(p->reference), "%s", col_text(st, 2));
        snprintf(p->status, sizeof(p->status), "%s", col_text(st, 3));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return duka_db_fail(s->db, "reading a sale's payments", err);
    return DUKA_OK;
}

duka_rc duka_sq_refunds_of(duka_hub_store *hs, const char *business_id, const char *receipt_no,
                           duka_hub_refunded *out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "SELECT r.id, l.original_line, l.qty_milli, l.line_total_cents"
                     " FROM sales r JOIN sale_lines l ON l.sale_id = r.id"
                     " WHERE r.business_id = ?1 AND r.original_receipt_no = ?2"
                     " AND r.kind = 'refund' ORDER BY r.id",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, receipt_no);
    int rc;
    int64_t last = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int line = sqlite3_column_int(st, 1);
        out->count += id != last;
        last = id;
        if (line >= 1 && line <= DUKA_SALE_LINES_MAX) {
            out->qty_milli[line - 1] += sqlite3_column_int64(st, 2);
            out->cents[line - 1] += sqlite3_column_int64(st, 3);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(s->db, "reading a sale's refunds", err);
    return DUKA_OK;
}

duka_rc duka_sq_outbox_result_of(duka_hub_store *hs, const char *business_id,
                              const char *destination, const char *entity_id,
                                 char *result, size_t result_len, bool *found,
                                 duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "SELECT result FROM outbox_results WHERE business_id = ?1"
                     " AND destination = ?2 AND entity_id = ?3 ORDER BY seq DESC LIMIT 1",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, destination);
    duka_db_bind_text(st, 3, entity_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(result, result_len, "%s", col_text(st, 0));
        *found = true;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(s->db, "reading an outbox result", err);
    return DUKA_OK;
}

duka_rc duka_sq_kv_get(duka_hub_store *hs, const char *business_id, const char *key,
                       char *value, size_t value_len, bool *found, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s, "SELECT value FROM hub_kv WHERE business_id = ?1 AND key = ?2", &st,
                     err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        snprintf(value, value_len, "%s", col_text(st, 0));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? DUKA_OK
                                                 : duka_db_fail(s->db, "reading hub_kv", err);
}

duka_rc duka_sq_kv_put(duka_hub_store *hs, const char *business_id, const char *key,
                       const char *value, int64_t now_ms, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "INSERT INTO hub_kv(business_id, key, value, updated_ms)"
                     " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(business_id, key)"
                     " DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, key);
    duka_db_bind_text(st, 3, value);
    sqlite3_bind_int64(st, 4, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DUKA_OK : duka_db_fail(s->db, "writing hub_kv", err);
}

duka_rc duka_sq_health_get(duka_hub_store *hs, const char *service, duka_service_health *out,
                           bool *found, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "SELECT state, since_ms, updated_ms, detail FROM service_health"
                     " WHERE service = ?1",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, service);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        snprintf(out->state, sizeof(out->state), "%s", col_text(st, 0));
        out->since_ms = sqlite3_column_int64(st, 1);
        out->updated_ms = sqlite3_column_int64(st, 2);
        snprintf(out->detail, sizeof(out->detail), "%s", col_text(st, 3));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? DUKA_OK
               : duka_db_fail(s->db, "reading a service's health", err);
}

duka_rc duka_sq_health_put(duka_hub_store *hs, const char *service,
                           const duka_service_health *h, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "INSERT INTO service_health(service, state, since_ms, updated_ms, detail)"
                     " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(service) DO UPDATE SET"
                     " state = excluded.state, since_ms = excluded.since_ms,"
                     " updated_ms = excluded.updated_ms, detail = excluded.detail",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, service);
    duka_db_bind_text(st, 2, h->state);
    sqlite3_bind_int64(st, 3, h->since_ms);
    sqlite3_bind_int64(st, 4, h->updated_ms);
    duka_db_bind_text(st, 5, h->detail);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DUKA_OK
                             : duka_db_fail(s->db, "writing a service's health", err);
}

duka_rc duka_sq_mpesa_receipt_put(duka_hub_store *hs, const char *business_id,
                                  const duka_mpesa_payment *p, const char *source,
                                  int64_t now_ms, bool *inserted, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "INSERT INTO mpesa_receipts(business_id, receipt, source, amount_cents, phone,"
                     " paid_ms, shortcode, reference, received_ms)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                     " ON CONFLICT(business_id, receipt) DO NOTHING",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, p->receipt);
    duka_db_bind_text(st, 3, source);
    sqlite3_bind_int64(st, 4, p->amount_cents);
    duka_db_bind_text(st, 5, p->phone);
    sqlite3_bind_int64(st, 6, p->paid_ms);
    duka_db_bind_text(st, 7, p->shortcode);
    duka_db_bind_text(st, 8, p->reference);
    sqlite3_bind_int64(st, 9, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(s->db, "keeping an M-Pesa receipt", err);
    *inserted = sqlite3_changes(s->db) == 1;
    return DUKA_OK;
}

duka_rc duka_sq_mpesa_receipt_get(duka_hub_store *hs, const char *business_id,
                                  const char *receipt, duka_mpesa_receipt *out, bool *found,
                                  duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                     "SELECT source, amount_cents, phone, paid_ms, shortcode, reference,"
                     " coalesce(credited_to, ''), coalesce(credited_ms, 0), received_ms"
                     " FROM mpesa_receipts WHERE business_id = ?1 AND receipt = ?2",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, receipt);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        snprintf(out->p.receipt, sizeof(out->p.receipt), "%s", receipt);
        snprintf(out->source, sizeof(out->source), "%s", col_text(st, 0));
        out->p.amount_cents = sqlite3_column_int64(st, 1);
        snprintf(out->p.phone, sizeof(out->p.phone), "%s", col_text(st, 2));
        out->p.paid_ms = sqlite3_column_int64(st, 3);
        snprintf(out->p.shortcode, sizeof(out->p.shortcode), "%s", col_text(st, 4));
        snprintf(out->p.reference, sizeof(out->p.reference), "%s", col_text(st, 5));
        snprintf(out->credited_to, sizeof(out->credited_to), "%s", col_text(st, 6));
        out->credited_ms = sqlite3_column_int64(st, 7);
        out->received_ms = sqlite3_column_int64(st, 8);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? DUKA_OK
               : duka_db_fail(s->db, "reading an M-Pesa receipt", err);
}

duka_rc duka_sq_mpesa_receipt_credit(duka_hub_store *hs, const char *business_id,
                                     const char *receipt, const char *sale_receipt_no,
                                     int64_t now_ms, char *holder, size_t holder_len,
                                     bool *found, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    /* One statement: credits it when free, and answers who holds it either way. */
    if (duka_sq_stmt(s,
                     "UPDATE mpesa_receipts SET"
                     " credited_ms = CASE WHEN credited_to IS NULL THEN ?4 ELSE credited_ms END,"
                     " credited_to = coalesce(credited_to, ?3)"
                     " WHERE business_id = ?1 AND receipt = ?2 RETURNING credited_to",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, receipt);
    duka_db_bind_text(st, 3, sale_receipt_no);
    sqlite3_bind_int64(st, 4, now_ms);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        snprintf(holder, holder_len, "%s", col_text(st, 0));
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DUKA_OK : duka_db_fail(s->db, "crediting an M-Pesa receipt", err);
}
