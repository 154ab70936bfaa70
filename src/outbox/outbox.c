/* outbox.c — the transactional outbox engine (see outbox.h for the protocol). */
#include "outbox/outbox.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>


#include "common/random.h"
#include "common/uuid.h"
#include "store/db.h"

const char duka_outbox_schema_sql[] = DUKA_OUTBOX_SCHEMA_SQL;

/* Exponential backoff of an item that failed `attempts` times: 1 s, 2 s, 4 s, 8 s … up to
 * DUKA_OUTBOX_BACKOFF_MAX_MS, plus up to 20 % jitter so a fleet of tills does not retry in
 * step. Parameters: ?5 now, ?6 base ms, ?7 cap ms, ?8 jitter per mille. The base is at most
 * 3,600,000 (< 2^22), so base << 40 still fits in 63 bits. */
#define BACKOFF_SQL                                                                        \
    "(?5 + min(?6 * (1 << min(max(attempts - 1, 0), 40)), ?7) * (1000 + ?8) / 1000)"

/* The process's policy, set once at start from configuration (duka_outbox_configure). */
static duka_outbox_policy policy = {
    .backoff_base_ms = DUKA_OUTBOX_BACKOFF_BASE_MS,
    .backoff_max_ms = DUKA_OUTBOX_BACKOFF_MAX_MS,
    .types = {{"tax", DUKA_PRIORITY_TAX, DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT},
              {"sale", DUKA_PRIORITY_SALE, DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT},
              {"payment", DUKA_PRIORITY_PAYMENT, DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT},
              {"backup", DUKA_PRIORITY_BACKUP, DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT},
              {"bulk", DUKA_PRIORITY_BULK, DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT}},
    .type_count = 5,
};

void duka_outbox_set_policy(const duka_outbox_policy *p)
{
    assert(p->backoff_base_ms > 0 && p->backoff_max_ms >= p->backoff_base_ms);
    assert(p->type_count >= 0 && p->type_count <= DUKA_QUEUE_TYPES_MAX);
    policy = *p;
}

const duka_outbox_policy *duka_outbox_get_policy(void)
{
    return &policy;
}

const duka_queue_type *duka_outbox_queue_type(const char *name)
{
    for (int i = 0; i < policy.type_count; i++)
        if (strcmp(policy.types[i].name, name) == 0)
            return &policy.types[i];
    return NULL;
}

int64_t duka_outbox_backoff_ms(int attempts)
{
    int64_t d = policy.backoff_base_ms;
    for (int i = 1; i < attempts && d < policy.backoff_max_ms; i++)
        d *= 2;
    return d < policy.backoff_max_ms ? d : policy.backoff_max_ms;
}

int64_t duka_outbox_wait_max_ms(void)
{
    int64_t backoff = policy.backoff_max_ms + policy.backoff_max_ms / 5; /* with jitter */
    return backoff > DUKA_OUTBOX_RETRY_AFTER_MAX_MS ? backoff : DUKA_OUTBOX_RETRY_AFTER_MAX_MS;
}

static void bind_backoff(sqlite3_stmt *st, int first)
{
    sqlite3_bind_int64(st, first, policy.backoff_base_ms);
    sqlite3_bind_int64(st, first + 1, policy.backoff_max_ms);
    sqlite3_bind_int(st, first + 2, (int)duka_random_uniform(201));
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
    if (duka_db_stmt(db,
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
    duka_db_stmt_done(db, st);
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
    if (duka_db_stmt(db,
                        "SELECT id, command_id, command_type, entity_id, payload, attempts"
                        " FROM outbox WHERE status = 'pending'"
                        " AND (next_attempt_ms <= ?1 OR next_attempt_ms > ?1 + ?3)"
                        " ORDER BY priority, id LIMIT ?2",
                        &sel, err) != DUKA_OK ||
        duka_db_stmt(db,
                        "UPDATE outbox SET status = 'processing', attempts = attempts + 1"
                        " WHERE id = ?1 AND status = 'pending'",
                        &upd, err) != DUKA_OK)
        goto out;
    sqlite3_bind_int64(sel, 1, now_ms);
    sqlite3_bind_int(sel, 2, max_items);
    sqlite3_bind_int64(sel, 3, duka_outbox_wait_max_ms());
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
    duka_db_stmt_done(db, sel);
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
    duka_db_stmt_done(db, sel);
    duka_db_stmt_done(db, upd);
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
    if (duka_db_stmt(db,
                        "UPDATE outbox SET"
                        "  status = CASE WHEN ?2 = 'pending' AND attempts >= max_attempts"
                        "           AND coalesce(?4, '') NOT IN ('network', 'auth')"
                        "           THEN 'failed' ELSE ?2 END,"
                        /* not the item's fault: its attempt given back (outbox.h) */
                        "  attempts = CASE WHEN ?2 = 'pending'"
                        "           AND coalesce(?4, '') IN ('network', 'auth')"
                        "           THEN max(attempts - 1, 0) ELSE attempts END,"
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
    duka_db_stmt_done(db, st);
    if (result != DUKA_OK)
        duka_db_rollback(db);
    return result;
}

duka_rc duka_outbox_release(sqlite3 *db, const duka_outbox_batch *batch, const char *error,
                            const char *error_category, int64_t now_ms, duka_err *err)
{
    return duka_outbox_release_until(db, batch, error, error_category, now_ms, 0, err);
}

duka_rc duka_outbox_release_until(sqlite3 *db, const duka_outbox_batch *batch, const char *error,
                                  const char *error_category, int64_t now_ms,
                                  int64_t not_before_ms, duka_err *err)
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
    if (duka_db_stmt(db,
                        "UPDATE outbox SET attempts = attempts - ?2,"
                        "  status = CASE WHEN ?2 = 0 AND attempts >= max_attempts"
                        "           THEN 'failed' ELSE 'pending' END,"
                        "  last_error = ?3, error_category = ?4,"
                        "  next_attempt_ms = max(?9, CASE WHEN ?2 = 1 THEN next_attempt_ms"
                        "                    ELSE " BACKOFF_SQL " END)"
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
        sqlite3_bind_int64(st, 9, not_before_ms);
        if (sqlite3_step(st) != SQLITE_DONE) {
            duka_db_fail(db, "returning items to the queue", err);
            goto out;
        }
    }
    if (duka_db_commit(db, err) != DUKA_OK)
        goto out;
    result = DUKA_OK;
out:
    duka_db_stmt_done(db, st);
    if (result != DUKA_OK)
        duka_db_rollback(db);
    return result;
}

duka_rc duka_outbox_count(sqlite3 *db, duka_outbox_counts *out, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db, "SELECT status, count(*) FROM outbox GROUP BY status", &st, err) !=
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
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "counting the outbox", err);
    return DUKA_OK;
}

/* Runs one UPDATE/DELETE with an optional text and an int64 parameter inside its own
 * transaction; *changed gets the number of rows. */
static duka_rc run_write(sqlite3 *db, const char *sql, const char *text, int64_t number,
                         int *changed, const char *what, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_begin(db, err) != DUKA_OK)
        return DUKA_STORE;
    if (duka_db_stmt(db, sql, &st, err) != DUKA_OK) {
        duka_db_rollback(db);
        return DUKA_STORE;
    }
    duka_db_bind_text(st, 1, text);
    sqlite3_bind_int64(st, 2, number);
    int rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    int n = sqlite3_changes(db);
    if (rc != SQLITE_DONE || duka_db_commit(db, err) != DUKA_OK) {
        duka_db_fail(db, what, err);
        duka_db_rollback(db);
        return DUKA_STORE;
    }
    if (changed)
        *changed = n;
    return DUKA_OK;
}

duka_rc duka_outbox_retry(sqlite3 *db, const char *id, int64_t now_ms, int *retried,
                          duka_err *err)
{
    /* By hand: the item starts over — attempts, schedule and error cleared. Only failed
     * items; ?1 NULL means all of them, else the outbox id or the command id. */
    return run_write(db,
                     "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_ms = ?2,"
                     " last_error = NULL, error_category = NULL"
                     " WHERE status = 'failed' AND (?1 IS NULL OR command_id = ?1"
                     "   OR CAST(id AS TEXT) = ?1)",
                     id, now_ms, retried, "retrying failed items", err);
}

duka_rc duka_outbox_cleanup(sqlite3 *db, int64_t done_before_ms, int64_t *deleted,
                            duka_err *err)
{
    /* Only done items: pending, processing, failed and conflict items are never removed.
     * Deleted in bounded chunks so a cashier's sale never waits behind a long delete. */
    *deleted = 0;
    for (int round = 0; round < DUKA_OUTBOX_CLEANUP_ROUNDS_MAX; round++) {
        int n = 0;
        if (run_write(db,
                      "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
                      " WHERE status = 'done' AND processed_ms < ?2 LIMIT "
                      DUKA_STRINGIFY(DUKA_OUTBOX_CLEANUP_CHUNK) ")",
                      NULL, done_before_ms, &n, "cleaning the outbox", err) != DUKA_OK)
            return DUKA_STORE;
        *deleted += n;
        if (n < DUKA_OUTBOX_CLEANUP_CHUNK)
            break;
    }
    return DUKA_OK;
}

/* Reads one nullable int64 aggregate. */
static duka_rc read_min(sqlite3 *db, const char *sql, int64_t *out, bool *found, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db, sql, &st, err) != DUKA_OK)
        return DUKA_STORE;
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    *out = *found ? sqlite3_column_int64(st, 0) : 0;
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW)
        return duka_db_fail(db, "reading the outbox", err);
    return DUKA_OK;
}

duka_rc duka_outbox_next_due(sqlite3 *db, int64_t *due_ms, bool *found, duka_err *err)
{
    return read_min(db, "SELECT min(next_attempt_ms) FROM outbox WHERE status = 'pending'", due_ms,
                    found, err);
}

duka_rc duka_outbox_oldest_pending(sqlite3 *db, int64_t *created_ms, bool *found, duka_err *err)
{
    return read_min(db,
                    "SELECT min(created_ms) FROM outbox WHERE status IN ('pending','processing')",
                    created_ms, found, err);
}
