/* outbox.c — the transactional outbox engine (see outbox.h for the protocol). */
#include "outbox/outbox.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/uuid.h"
#include "store/db.h"

const char duka_outbox_schema_sql[] = DUKA_OUTBOX_SCHEMA_SQL;

/* Exponential backoff of an item that failed `attempts` times: 1 s, 2 s, 4 s, 8 s … up to
 * DUKA_OUTBOX_BACKOFF_MAX_MS, plus up to 20 % jitter so a fleet of tills does not retry in
 * step. Parameters: ?5 now, ?6 base ms, ?7 cap ms, ?8 jitter per mille. */
#define BACKOFF_SQL                                                                        \
    "(?5 + min(?6 * (1 << min(max(attempts - 1, 0), 20)), ?7) * (1000 + ?8) / 1000)"

static void bind_backoff(sqlite3_stmt *st, int first)
{
    sqlite3_bind_int64(st, first, DUKA_OUTBOX_BACKOFF_BASE_MS);
    sqlite3_bind_int64(st, first + 1, DUKA_OUTBOX_BACKOFF_MAX_MS);
    sqlite3_bind_int(st, first + 2, (int)randombytes_uniform(201));
}

static const char *const status_names[] = {"pending", "processing", "done", "failed",
                                           "conflict"};

const char *duka_outbox_status_name(duka_outbox_status s)
{
    return (unsigned)s < 5 ? status_names[s] : "unknown";
}

int duka_outbox_status_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (name != NULL && strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

duka_rc duka_outbox_enqueue(sqlite3 *db, const duka_outbox_new *item, int64_t now_ms,
                            char command_id_out[DUKA_UUID_STR_LEN + 1], duka_err *err)
{
    assert(!sqlite3_get_autocommit(db) && "enqueue only inside the caller's transaction");
    assert(item->payload != NULL && item->payload[0] == '{');
    assert(item->max_attempts > 0);
    duka_uuid_v7(now_ms, command_id_out);
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db,
                        "INSERT INTO outbox(command_id, queue_type, command_type, entity_type,"
                        " entity_id, stream, payload, priority, max_attempts, next_attempt_ms,"
                        " created_ms, device_id) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?10,?11)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, command_id_out);
    duka_db_bind_text(st, 2, item->queue_type);
    duka_db_bind_text(st, 3, item->command_type);
    duka_db_bind_text(st, 4, item->entity_type);
    duka_db_bind_text(st, 5, item->entity_id);
    duka_db_bind_text(st, 6, item->stream);
    duka_db_bind_text(st, 7, item->payload);
    sqlite3_bind_int(st, 8, item->priority);
    sqlite3_bind_int(st, 9, item->max_attempts);
    sqlite3_bind_int64(st, 10, now_ms);
    duka_db_bind_text(st, 11, item->device_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "queueing the sale for the hub", err);
    return DUKA_OK;
}

duka_rc duka_outbox_recover(sqlite3 *db, int *moved, duka_err *err)
{
    if (duka_db_begin(db, err) != DUKA_OK)
        return DUKA_STORE;
    if (duka_db_exec(db, "UPDATE outbox SET status = 'pending' WHERE status = 'processing'",
                     err) != DUKA_OK) {
        duka_db_rollback(db);
        return DUKA_STORE;
    }
    int n = sqlite3_changes(db);
    if (duka_db_commit(db, err) != DUKA_OK) {
        duka_db_rollback(db);
        return DUKA_STORE;
    }
    if (moved)
        *moved = n;
    return DUKA_OK;
}

void duka_outbox_batch_free(duka_outbox_batch *batch)
{
    if (batch == NULL)
        return;
    for (int i = 0; i < batch->count; i++)
        free(batch->items[i].payload);
    free(batch->items);
    batch->items = NULL;
    batch->count = 0;
    batch->payload_bytes = 0;
}

duka_rc duka_outbox_claim(sqlite3 *db, int max_items, unsigned long payload_budget,
                          int64_t now_ms, duka_outbox_batch *out, duka_err *err)
{
    assert(max_items > 0 && max_items <= DUKA_SYNC_BATCH_MAX);
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *sel = NULL, *upd = NULL;
    duka_rc result = DUKA_STORE;
    out->items = calloc((size_t)max_items, sizeof(*out->items));
    if (out->items == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory claiming %d outbox items", max_items);
    if (duka_db_begin(db, err) != DUKA_OK)
        goto out;
    /* Priority first, then FIFO (id) within it. A stream whose head is failed does not hold
     * back other streams: failed items are simply not pending. */
    if (duka_db_prepare(db,
                        "SELECT id, command_id, command_type, entity_id, payload, attempts"
                        " FROM outbox WHERE status = 'pending' AND next_attempt_ms <= ?1"
                        " ORDER BY priority, id LIMIT ?2",
                        &sel, err) != DUKA_OK ||
        duka_db_prepare(db,
                        "UPDATE outbox SET status = 'processing', attempts = attempts + 1"
                        " WHERE id = ?1 AND status = 'pending'",
                        &upd, err) != DUKA_OK)
        goto out;
    sqlite3_bind_int64(sel, 1, now_ms);
    sqlite3_bind_int(sel, 2, max_items);
    int rc;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        int bytes = sqlite3_column_bytes(sel, 4);
        if (out->count > 0 && out->payload_bytes + (unsigned long)bytes > payload_budget)
            break;
        duka_outbox_item *it = &out->items[out->count];
        it->id = sqlite3_column_int64(sel, 0);
        duka_db_column_copy(sel, 1, it->command_id, sizeof(it->command_id));
        duka_db_column_copy(sel, 2, it->command_type, sizeof(it->command_type));
        duka_db_column_copy(sel, 3, it->entity_id, sizeof(it->entity_id));
        it->payload = malloc((size_t)bytes + 1);
        if (it->payload == NULL) {
            duka_err_set(err, DUKA_NOMEM, "out of memory reading outbox item %lld",
                         (long long)it->id);
            goto out;
        }
        memcpy(it->payload, sqlite3_column_text(sel, 4), (size_t)bytes);
        it->payload[bytes] = '\0';
        it->attempts = sqlite3_column_int(sel, 5) + 1;
        assert(duka_uuid_valid(it->command_id));
        out->count++;
        out->payload_bytes += (unsigned long)bytes;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        duka_db_fail(db, "reading the outbox", err);
        goto out;
    }
    sqlite3_finalize(sel);
    sel = NULL;
    /* Marked after the scan: updating the index a cursor walks could skip or revisit rows. */
    for (int i = 0; i < out->count; i++) {
        sqlite3_reset(upd);
        sqlite3_bind_int64(upd, 1, out->items[i].id);
        if (sqlite3_step(upd) != SQLITE_DONE || sqlite3_changes(db) != 1) {
            duka_db_fail(db, "claiming outbox items", err);
            goto out;
        }
    }
    if (duka_db_commit(db, err) != DUKA_OK)
        goto out;
    result = DUKA_OK;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    if (result != DUKA_OK) {
        duka_db_rollback(db);
        duka_outbox_batch_free(out);
    }
    return result;
}

duka_rc duka_outbox_finish(sqlite3 *db, const duka_outbox_outcome *outcomes, int count,
                           int64_t now_ms, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    duka_rc result = DUKA_STORE;
    if (duka_db_begin(db, err) != DUKA_OK)
        return DUKA_STORE;
    if (duka_db_prepare(db,
                        "UPDATE outbox SET"
                        "  status = CASE WHEN ?2 = 'pending' AND attempts >= max_attempts"
                        "           THEN 'failed' ELSE ?2 END,"
                        "  last_error = ?3, error_category = ?4,"
                        "  processed_ms = CASE WHEN ?2 = 'pending' THEN processed_ms ELSE ?5 END,"
                        "  next_attempt_ms = CASE WHEN ?2 = 'pending' THEN " BACKOFF_SQL
                        "                    ELSE next_attempt_ms END"
                        " WHERE id = ?1 AND status = 'processing'",
                        &st, err) != DUKA_OK)
        goto out;
    for (int i = 0; i < count; i++) {
        const duka_outbox_outcome *o = &outcomes[i];
        assert(o->status != DUKA_OUTBOX_PROCESSING);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, o->id);
        duka_db_bind_text(st, 2, duka_outbox_status_name(o->status));
        duka_db_bind_text(st, 3, o->error);
        duka_db_bind_text(st, 4, o->error_category);
        sqlite3_bind_int64(st, 5, now_ms);
        bind_backoff(st, 6);
        if (sqlite3_step(st) != SQLITE_DONE) {
            duka_db_fail(db, "recording the hub's answer", err);
            goto out;
        }
    }
    if (duka_db_commit(db, err) != DUKA_OK)
        goto out;
    result = DUKA_OK;
out:
    sqlite3_finalize(st);
    if (result != DUKA_OK)
        duka_db_rollback(db);
    return result;
}

duka_rc duka_outbox_release(sqlite3 *db, const duka_outbox_batch *batch, const char *error,
                            const char *error_category, int64_t now_ms, duka_err *err)
{
    /* A network or authentication failure is not the item's fault: it goes back to pending
     * without using up an attempt, so hours offline or a revoked token never turn a sale into
     * a failed item. Other failures (the receiver refused the batch as malformed) count. */
    bool network = error_category && (strcmp(error_category, DUKA_OUTBOX_ERR_NETWORK) == 0 ||
                                      strcmp(error_category, DUKA_OUTBOX_ERR_AUTH) == 0);
    sqlite3_stmt *st = NULL;
    duka_rc result = DUKA_STORE;
    if (duka_db_begin(db, err) != DUKA_OK)
        return DUKA_STORE;
    /* SQLite evaluates every SET expression on the old row, so attempts below is the count
     * the claim made. An uncounted failure stays due now: the next sync retries it. */
    if (duka_db_prepare(db,
                        "UPDATE outbox SET attempts = attempts - ?2,"
                        "  status = CASE WHEN ?2 = 0 AND attempts >= max_attempts"
                        "           THEN 'failed' ELSE 'pending' END,"
                        "  last_error = ?3, error_category = ?4,"
                        "  next_attempt_ms = CASE WHEN ?2 = 1 THEN next_attempt_ms"
                        "                    ELSE " BACKOFF_SQL " END"
                        " WHERE id = ?1 AND status = 'processing'",
                        &st, err) != DUKA_OK)
        goto out;
    for (int i = 0; i < batch->count; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, batch->items[i].id);
        sqlite3_bind_int(st, 2, network ? 1 : 0);
        duka_db_bind_text(st, 3, error);
        duka_db_bind_text(st, 4, error_category);
        sqlite3_bind_int64(st, 5, now_ms);
        bind_backoff(st, 6);
        if (sqlite3_step(st) != SQLITE_DONE) {
            duka_db_fail(db, "returning items to the queue", err);
            goto out;
        }
    }
    if (duka_db_commit(db, err) != DUKA_OK)
        goto out;
    result = DUKA_OK;
out:
    sqlite3_finalize(st);
    if (result != DUKA_OK)
        duka_db_rollback(db);
    return result;
}

duka_rc duka_outbox_count(sqlite3 *db, duka_outbox_counts *out, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db, "SELECT status, count(*) FROM outbox GROUP BY status", &st, err) !=
        DUKA_OK)
        return DUKA_STORE;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        int64_t n = sqlite3_column_int64(st, 1);
        switch (duka_outbox_status_parse(s)) {
        case DUKA_OUTBOX_PENDING: out->pending = n; break;
        case DUKA_OUTBOX_PROCESSING: out->processing = n; break;
        case DUKA_OUTBOX_DONE: out->done = n; break;
        case DUKA_OUTBOX_FAILED: out->failed = n; break;
        case DUKA_OUTBOX_CONFLICT: out->conflict = n; break;
        default: break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "counting the outbox", err);
    return DUKA_OK;
}
