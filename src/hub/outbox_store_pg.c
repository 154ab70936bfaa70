/*
 * outbox_store_pg.c — the hub's outbox (outbox/hub_outbox.h) on PostgreSQL, where several
 * hubs share the tables: a claim locks the rows it takes with FOR UPDATE SKIP LOCKED (another
 * hub's claim skips them rather than waiting), marks them processing under its owner and a
 * deadline, and commits; a finish changes only rows still leased to its owner. A stream's
 * number series is one row of outbox_sequences, locked from the enqueue to the push's COMMIT,
 * so two hubs enqueueing for one business take their numbers in turn and none is lost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_store_pg_int.h"
#include "hub/pg_rows.h"
#include "outbox/outbox.h"

/* Runs sql with text parameters (NULL: SQL NULL); the result when its status is want (the
 * caller PQclears it), else NULL with err set. */
static PGresult *exec(duka_hub_store *s, const char *sql, int n, const char *const *values,
                      ExecStatusType want, const char *what, duka_err *err)
{
    PGresult *res = PQexecParams(duka_pg_conn(s), sql, n, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != want) {
        duka_pg_fail(s, res, what, err);
        PQclear(res);
        return NULL;
    }
    return res;
}

static int64_t num(const PGresult *res, int row, int col)
{
    return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%" PRId64, (int64_t)(v)), (buf))

static const char enqueue_sql[] =
    "WITH s AS ("
    "  INSERT INTO outbox_sequences(stream, last_no) VALUES($3, $4::bigint)"
    "  ON CONFLICT (stream) DO UPDATE SET last_no = outbox_sequences.last_no + excluded.last_no"
    "  RETURNING last_no - $4::bigint AS base"
    "), ins AS ("
    "  INSERT INTO hub_outbox(business_id, destination, stream, seq_no, ref_no, command_type,"
    "    entity_id, terminal, payload, priority, max_attempts, next_attempt_ms, created_ms)"
    "  SELECT $1, $2, $3, s.base + x.k, x.ref_no, x.command_type, x.entity_id, x.terminal,"
    "    x.payload, x.priority, x.max_attempts, $5::bigint, $5::bigint"
    "    FROM s, unnest($6::int8[], $7::text[], $8::text[], $9::text[], $10::text[],"
    "      $11::int4[], $12::int4[]) WITH ORDINALITY"
    "      AS x(ref_no, command_type, entity_id, terminal, payload, priority, max_attempts, k)"
    "  RETURNING 1"
    ")"
    " SELECT s.base + 1, (SELECT count(*) FROM ins) FROM s";

static const pg_col_type job_types[7] = {PG_COL_INT8, PG_COL_TEXT, PG_COL_TEXT, PG_COL_TEXT,
                                         PG_COL_TEXT, PG_COL_INT4, PG_COL_INT4};

void duka_pg_outbox_buffer_init(duka_pg_outbox_buffer *b)
{
    memset(b, 0, sizeof(*b));
    for (int i = 0; i < DUKA_PG_OUTBOX_STREAMS; i++)
        pg_rows_init(&b->s[i].rows, 7, job_types);
}

void duka_pg_outbox_buffer_clear(duka_pg_outbox_buffer *b)
{
    for (int i = 0; i < DUKA_PG_OUTBOX_STREAMS; i++)
        pg_rows_clear(&b->s[i].rows);
}

void duka_pg_outbox_buffer_free(duka_pg_outbox_buffer *b)
{
    for (int i = 0; i < DUKA_PG_OUTBOX_STREAMS; i++)
        pg_rows_free(&b->s[i].rows);
}

int duka_pg_outbox_buffer_count(const duka_pg_outbox_buffer *b)
{
    int n = 0;
    for (int i = 0; i < DUKA_PG_OUTBOX_STREAMS; i++)
        n += b->s[i].rows.count;
    return n;
}

/* Kept in the store until the transaction's COMMIT (duka_pg_outbox_flush), per stream: the
 * jobs of a stream already buffered, else the first free slot. */
duka_rc duka_pg_outbox_enqueue(duka_hub_store *s, const char *business_id,
                               const duka_hub_outbox_new *jobs, int n, int64_t now_ms,
                               duka_err *err)
{
    duka_pg_outbox_buffer *buf = duka_pg_outbox_buffer_of(s);
    if (!duka_pg_in_tx(s))
        return duka_err_set(err, DUKA_INTERNAL, "outbox: enqueue outside a transaction");
    duka_pg_outbox_stream *b = NULL;
    for (int i = 0; i < DUKA_PG_OUTBOX_STREAMS && b == NULL; i++) {
        duka_pg_outbox_stream *x = &buf->s[i];
        if (x->rows.count == 0 ||
            (strcmp(x->stream, jobs[0].stream) == 0 && strcmp(x->business_id, business_id) == 0))
            b = x;
    }
    if (b == NULL)
        return duka_err_set(err, DUKA_INTERNAL, "outbox: one transaction, at most %d streams",
                            DUKA_PG_OUTBOX_STREAMS);
    snprintf(b->business_id, sizeof(b->business_id), "%s", business_id);
    snprintf(b->destination, sizeof(b->destination), "%s", jobs[0].destination);
    snprintf(b->stream, sizeof(b->stream), "%s", jobs[0].stream);
    b->now_ms = now_ms;
    for (int i = 0; i < n; i++) {
        pg_rows_int(&b->rows, 0, jobs[i].ref_no);
        pg_rows_text(&b->rows, 1, jobs[i].command_type);
        pg_rows_text(&b->rows, 2, jobs[i].entity_id);
        pg_rows_text(&b->rows, 3, jobs[i].terminal);
        pg_rows_text(&b->rows, 4, jobs[i].payload);
        pg_rows_int(&b->rows, 5, jobs[i].priority);
        pg_rows_int(&b->rows, 6, jobs[i].max_attempts);
        if (!pg_rows_end_row(&b->rows))
            return duka_err_set(err, DUKA_NOMEM, "out of memory enqueueing outbox items");
    }
    return DUKA_OK;
}

/* Writes one stream's buffered jobs, numbered from its series. */
static duka_rc flush_stream(duka_hub_store *s, duka_pg_outbox_stream *b, duka_err *err)
{
    int n = b->rows.count;
    char count[24], now[24];
    const char *values[12] = {b->business_id, b->destination, b->stream, I64(count, n),
                              I64(now, b->now_ms)};
    int lengths[12] = {0}, formats[12] = {0};
    for (int c = 0; c < 7; c++) {
        formats[5 + c] = 1;
        if (!pg_rows_param(&b->rows, c, &values[5 + c], &lengths[5 + c]))
            return duka_err_set(err, DUKA_NOMEM, "out of memory enqueueing outbox items");
    }
    PGresult *res = PQexecParams(duka_pg_conn(s), enqueue_sql, 12, NULL, values, lengths,
                                 formats, 0);
    duka_rc rc = DUKA_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = duka_pg_fail(s, res, "enqueueing outbox items", err);
    else if (num(res, 0, 1) != n)
        rc = duka_err_set(err, DUKA_STORE, "PostgreSQL %s: %lld of %d outbox items written",
                          duka_pg_where(s), (long long)num(res, 0, 1), n);
    PQclear(res);
    pg_rows_clear(&b->rows);
    return rc;
}

/* The streams in the order they were first enqueued to (always the same order for a push:
 * invoices, then verifications), so two transactions lock the series rows in one order. */
duka_rc duka_pg_outbox_flush(duka_hub_store *s, duka_err *err)
{
    duka_pg_outbox_buffer *buf = duka_pg_outbox_buffer_of(s);
    duka_rc rc = DUKA_OK;
    for (int i = 0; i < DUKA_PG_OUTBOX_STREAMS; i++)
        if (buf->s[i].rows.count > 0) {
            if (rc == DUKA_OK)
                rc = flush_stream(s, &buf->s[i], err);
            else
                pg_rows_clear(&buf->s[i].rows);
        }
    return rc;
}

static const char recover_sql[] =
    "UPDATE hub_outbox SET status = 'pending', unclear = true, lease_owner = NULL,"
    " attempts = CASE WHEN status = 'processing' THEN greatest(attempts - 1, 0)"
    "   ELSE attempts END,"
    " lease_until_ms = NULL, next_attempt_ms = $2::bigint"
    " WHERE id IN (SELECT id FROM hub_outbox WHERE destination = $1"
    "   AND ((status = 'processing' AND (lease_until_ms < $2::bigint"
    "       OR lease_until_ms > $2::bigint + $3::bigint))"
    "     OR (status = 'awaiting' AND next_attempt_ms <= $2::bigint))"
    "   FOR UPDATE SKIP LOCKED)";

static const char claim_sql[] =
    "UPDATE hub_outbox o SET status = 'processing', attempts = o.attempts + 1,"
    " lease_owner = $1, lease_until_ms = $2::bigint"
    " FROM (SELECT id FROM hub_outbox WHERE destination = $3 AND status = 'pending'"
    "   AND (next_attempt_ms <= $4::bigint OR next_attempt_ms > $4::bigint + $5::bigint)"
    "   ORDER BY priority, stream, seq_no LIMIT $6::int FOR UPDATE SKIP LOCKED) c"
    " WHERE o.id = c.id"
    " RETURNING o.id, o.business_id, o.stream, o.command_type, o.entity_id, o.terminal,"
    " o.seq_no, o.ref_no, o.attempts, o.max_attempts, o.unclear, o.created_ms, o.payload";

duka_rc duka_pg_outbox_claim(duka_hub_store *s, const char *destination, const char *owner,
                             int max, int64_t lease_until_ms, int64_t now_ms,
                             duka_hub_outbox_claim *out, duka_err *err)
{
    out->count = 0;
    bool own = false;
    if (duka_pg_op_begin(s, NULL, &own, err) != DUKA_OK)
        return DUKA_STORE;
    char now[24], until[24], wait[24], limit[24], lease_max[24];
    const char *rv[3] = {destination, I64(now, now_ms),
                         I64(lease_max, DUKA_HUB_OUTBOX_LEASE_MAX_MS)};
    PGresult *res = exec(s, recover_sql, 3, rv, PGRES_COMMAND_OK,
                         "recovering expired outbox leases", err);
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    PQclear(res);
    if (rc == DUKA_OK) {
        const char *cv[6] = {owner, I64(until, lease_until_ms), destination, now,
                             I64(wait, duka_outbox_wait_max_ms()), I64(limit, max)};
        res = exec(s, claim_sql, 6, cv, PGRES_TUPLES_OK, "claiming outbox items", err);
        rc = res ? DUKA_OK : DUKA_STORE;
        for (int r = 0; res && r < PQntuples(res) && r < max; r++) {
            duka_hub_outbox_item *it = &out->items[out->count];
            memset(it, 0, sizeof(*it));
            it->id = num(res, r, 0);
            snprintf(it->business_id, sizeof(it->business_id), "%s", PQgetvalue(res, r, 1));
            snprintf(it->stream, sizeof(it->stream), "%s", PQgetvalue(res, r, 2));
            snprintf(it->command_type, sizeof(it->command_type), "%s", PQgetvalue(res, r, 3));
            snprintf(it->entity_id, sizeof(it->entity_id), "%s", PQgetvalue(res, r, 4));
            snprintf(it->terminal, sizeof(it->terminal), "%s", PQgetvalue(res, r, 5));
            it->seq_no = num(res, r, 6);
            it->ref_no = num(res, r, 7);
            it->attempts = (int)num(res, r, 8);
            it->max_attempts = (int)num(res, r, 9);
            it->unclear = PQgetvalue(res, r, 10)[0] == 't';
            it->created_ms = num(res, r, 11);
            it->payload = strdup(PQgetvalue(res, r, 12));
            out->count++;
            if (it->payload == NULL) {
                rc = duka_err_set(err, DUKA_NOMEM, "out of memory claiming outbox items");
                break;
            }
        }
        PQclear(res);
    }
    rc = duka_pg_op_end(s, own, rc, err);
    if (rc != DUKA_OK) {
        duka_hub_outbox_claim_free(out);
        return rc;
    }
    duka_hub_outbox_claim_sort(out);
    return DUKA_OK;
}

static const char finish_sql[] =
    "WITH up AS ("
    "  UPDATE hub_outbox SET status = $3, attempts = $4::int, next_attempt_ms = $5::bigint,"
    "    unclear = $6::boolean, lease_owner = NULL, lease_until_ms = NULL, last_error = $7,"
    "    error_category = $8,"
    "    processed_ms = CASE WHEN $9::boolean THEN $10::bigint ELSE processed_ms END"
    "  WHERE id = $1::bigint AND lease_owner = $2 AND status = 'processing'"
    "  RETURNING 1"
    "), log AS ("
    "  INSERT INTO hub_outbox_attempts(item_id, attempt, owner, finished_ms, duration_ms,"
    "    outcome, http_status, error)"
    "  SELECT $1::bigint, $11::int, $2, $10::bigint, $12::bigint,"
    "    CASE WHEN EXISTS (SELECT 1 FROM up) THEN $13 ELSE 'lease_lost' END, $14::int, $7"
    "  RETURNING 1"
    ")"
    " SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM log)";

static const char result_sql[] =
    "WITH s AS ("
    "  INSERT INTO outbox_sequences(stream, last_no) VALUES($2, 1)"
    "  ON CONFLICT (stream) DO UPDATE SET last_no = outbox_sequences.last_no + 1"
    "  RETURNING last_no"
    ")"
    " INSERT INTO outbox_results(business_id, terminal, destination, seq, item_id, entity_id,"
    "   result, created_ms)"
    " SELECT o.business_id, o.terminal, o.destination, s.last_no, o.id, o.entity_id, $3,"
    "   $4::bigint FROM hub_outbox o, s WHERE o.id = $1::bigint"
    " ON CONFLICT DO NOTHING";

static duka_rc finish_one(duka_hub_store *s, const char *owner, const duka_hub_outbox_item *it,
                          const duka_hub_outbox_outcome *o, const duka_hub_outbox_next *nx,
                          int64_t now_ms, bool *lost, duka_err *err)
{
    bool final = nx->status == DUKA_HUB_OUTBOX_DONE || nx->status == DUKA_HUB_OUTBOX_FAILED;
    char id[24], att[24], next[24], now[24], attempt[24], dur[24], http[24];
    const char *v[14] = {I64(id, it->id),
                         owner,
                         duka_hub_outbox_status_name(nx->status),
                         I64(att, nx->attempts),
                         I64(next, nx->next_attempt_ms),
                         nx->unclear ? "true" : "false",
                         o->error,
                         o->error_category,
                         final ? "true" : "false",
                         I64(now, now_ms),
                         I64(attempt, it->attempts),
                         I64(dur, o->duration_ms),
                         duka_hub_outbox_verdict_name(o->verdict),
                         I64(http, o->http_status)};
    PGresult *res = exec(s, finish_sql, 14, v, PGRES_TUPLES_OK, "recording an outbox outcome",
                         err);
    if (res == NULL)
        return DUKA_STORE;
    *lost = num(res, 0, 0) == 0;
    PQclear(res);
    if (*lost || o->verdict != DUKA_HUB_OUTBOX_SENT || o->result == NULL)
        return DUKA_OK;
    if (duka_pg_use_business(s, it->business_id, err) != DUKA_OK)
        return DUKA_STORE;
    char series[DUKA_HUB_OUTBOX_STREAM_MAX + 96];
    snprintf(series, sizeof(series), "results:%s:%s", it->business_id, it->terminal);
    const char *rv[4] = {id, series, o->result, now};
    res = exec(s, result_sql, 4, rv, PGRES_COMMAND_OK, "keeping an outbox result", err);
    if (res == NULL)
        return DUKA_STORE;
    PQclear(res);
    return DUKA_OK;
}

duka_rc duka_pg_outbox_finish(duka_hub_store *s, const char *owner,
                              const duka_hub_outbox_item *items,
                              const duka_hub_outbox_outcome *outcomes,
                              const duka_hub_outbox_next *next, int n, int64_t now_ms, int *lost,
                              duka_err *err)
{
    *lost = 0;
    bool own = false;
    if (duka_pg_op_begin(s, NULL, &own, err) != DUKA_OK)
        return DUKA_STORE;
    duka_rc rc = DUKA_OK;
    for (int i = 0; rc == DUKA_OK && i < n; i++) {
        bool l = false;
        rc = finish_one(s, owner, &items[i], &outcomes[i], &next[i], now_ms, &l, err);
        *lost += l;
    }
    return duka_pg_op_end(s, own, rc, err);
}

/* One statement in a transaction of its own; *changed gets the rows it changed. */
static duka_rc write_own(duka_hub_store *s, const char *business_id, const char *sql, int n,
                         const char *const *v, int64_t *changed, const char *what,
                         duka_err *err)
{
    bool own = false;
    if (duka_pg_op_begin(s, business_id, &own, err) != DUKA_OK)
        return DUKA_STORE;
    PGresult *res = exec(s, sql, n, v, PGRES_COMMAND_OK, what, err);
    if (res != NULL && changed)
        *changed = strtoll(PQcmdTuples(res), NULL, 10);
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    PQclear(res);
    return duka_pg_op_end(s, own, rc, err);
}

duka_rc duka_pg_outbox_wake(duka_hub_store *s, const char *destination, int64_t now_ms,
                            int64_t *woken, duka_err *err)
{
    char now[24];
    const char *v[2] = {destination, I64(now, now_ms)};
    return write_own(s, NULL,
                     "UPDATE hub_outbox SET next_attempt_ms = $2::bigint"
                     " WHERE destination = $1 AND status = 'pending'"
                     " AND next_attempt_ms > $2::bigint",
                     2, v, woken, "waking outbox items", err);
}

duka_rc duka_pg_outbox_retry(duka_hub_store *s, const char *business_id, int64_t id,
                             int64_t now_ms, int *retried, duka_err *err)
{
    char now[24], ids[24];
    const char *v[3] = {business_id, I64(now, now_ms), I64(ids, id)};
    int64_t k = 0;
    duka_rc rc = write_own(s, NULL,
                           "UPDATE hub_outbox SET status = 'pending', attempts = 0,"
                           " next_attempt_ms = $2::bigint, processed_ms = NULL"
                           " WHERE business_id = $1 AND status = 'failed'"
                           " AND ($3::bigint = 0 OR id = $3::bigint)",
                           3, v, &k, "retrying outbox items", err);
    *retried = (int)k;
    return rc;
}

duka_rc duka_pg_outbox_cleanup(duka_hub_store *s, int64_t done_before_ms, int64_t *deleted,
                               duka_err *err)
{
    char before[24], chunk[24];
    const char *v[2] = {I64(before, done_before_ms), I64(chunk, DUKA_OUTBOX_CLEANUP_CHUNK)};
    *deleted = 0;
    /* Bounded chunks, each its own transaction. */
    for (int round = 0; round < DUKA_OUTBOX_CLEANUP_ROUNDS_MAX; round++) {
        bool own = false;
        if (duka_pg_op_begin(s, NULL, &own, err) != DUKA_OK)
            return DUKA_STORE;
        PGresult *res = exec(s,
                             "WITH gone AS (DELETE FROM hub_outbox WHERE id IN"
                             "  (SELECT id FROM hub_outbox WHERE status = 'done'"
                             "   AND processed_ms < $1::bigint ORDER BY id LIMIT $2::int)"
                             "  RETURNING id),"
                             " logs AS (DELETE FROM hub_outbox_attempts"
                             "  WHERE item_id IN (SELECT id FROM gone) RETURNING 1)"
                             " SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM logs)",
                             2, v, PGRES_TUPLES_OK, "removing done outbox items", err);
        int64_t k = res ? num(res, 0, 0) : 0;
        duka_rc rc = duka_pg_op_end(s, own, res ? DUKA_OK : DUKA_STORE, err);
        PQclear(res);
        if (rc != DUKA_OK)
            return rc;
        *deleted += k;
        if (k < DUKA_OUTBOX_CLEANUP_CHUNK)
            break;
    }
    return DUKA_OK;
}

duka_rc duka_pg_outbox_count(duka_hub_store *s, const char *business_id,
                             const char *destination, bool with_done,
                             duka_hub_outbox_counts *out, duka_err *err)
{
    /* As outbox_store_sqlite.c: one statement per case, so a generic plan still reads only
     * the business's items (or the backlog), never every business's done items. */
    const char *v[2] = {destination, business_id};
    PGresult *res = exec(s, duka_hub_outbox_count_sql(business_id != NULL, with_done, '$'),
                         business_id != NULL ? 2 : 1, v, PGRES_TUPLES_OK,
                         "counting outbox items", err);
    if (res == NULL)
        return DUKA_STORE;
    for (int r = 0; r < PQntuples(res); r++) {
        int status = duka_hub_outbox_status_parse(PQgetvalue(res, r, 0));
        int64_t k = num(res, r, 1), oldest = num(res, r, 2);
        duka_hub_outbox_counts_add(out, status, k, oldest);
    }
    PQclear(res);
    return DUKA_OK;
}

static json_t *text_or_null(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? json_null() : duka_hub_json_text(PQgetvalue(res, r, c));
}

duka_rc duka_pg_outbox_list(duka_hub_store *s, const char *business_id, const char *status,
                            int limit, json_t **out, duka_err *err)
{
    char lim[24];
    const char *v[3] = {business_id, status, I64(lim, limit)};
    PGresult *res = exec(s,
                         "SELECT id, destination, command_type, entity_id, terminal, seq_no,"
                         " status, attempts, max_attempts, next_attempt_ms, last_error,"
                         " error_category, created_ms, processed_ms, unclear FROM hub_outbox"
                         " WHERE business_id = $1 AND ($2::text IS NULL OR status = $2)"
                         " ORDER BY id DESC LIMIT $3::int",
                         3, v, PGRES_TUPLES_OK, "listing outbox items", err);
    if (res == NULL)
        return DUKA_STORE;
    json_t *items = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(
            items,
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:o, s:o, s:I, s:o, s:b}",
                      "id", (json_int_t)num(res, r, 0), "destination", PQgetvalue(res, r, 1),
                      "command_type", PQgetvalue(res, r, 2), "entity_id", PQgetvalue(res, r, 3),
                      "terminal", PQgetvalue(res, r, 4), "seq_no", (json_int_t)num(res, r, 5),
                      "status", PQgetvalue(res, r, 6), "attempts", (json_int_t)num(res, r, 7),
                      "max_attempts", (json_int_t)num(res, r, 8), "next_attempt_ms",
                      (json_int_t)num(res, r, 9), "last_error", text_or_null(res, r, 10),
                      "error_category", text_or_null(res, r, 11), "created_ms",
                      (json_int_t)num(res, r, 12), "processed_ms",
                      PQgetisnull(res, r, 13) ? json_null() : json_integer(num(res, r, 13)),
                      "unclear", PQgetvalue(res, r, 14)[0] == 't'));
    PQclear(res);
    *out = json_pack("{s:o}", "items", items);
    return DUKA_OK;
}

duka_rc duka_pg_outbox_results(duka_hub_store *s, const char *business_id,
                               const char *terminal, const char *destination, int64_t cursor,
                               int limit, json_t **out, duka_err *err)
{
    bool own = false;
    if (duka_pg_op_begin(s, business_id, &own, err) != DUKA_OK)
        return DUKA_STORE;
    char cur[24], lim[24];
    const char *v[5] = {business_id, terminal, destination, I64(cur, cursor),
                        I64(lim, limit + 1)};
    PGresult *res = exec(s,
                         "SELECT seq, result FROM outbox_results"
                         " WHERE business_id = $1 AND terminal = $2 AND destination = $3"
                         " AND seq > $4::bigint ORDER BY seq LIMIT $5::int",
                         5, v, PGRES_TUPLES_OK, "reading outbox results", err);
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    json_t *list = json_array();
    bool more = false;
    int64_t last = cursor;
    for (int r = 0; res && r < PQntuples(res); r++) {
        if (r == limit) {
            more = true;
            break;
        }
        last = num(res, r, 0);
        json_t *o = json_loads(PQgetvalue(res, r, 1), 0, NULL);
        if (json_is_object(o)) {
            json_object_set_new(o, "seq", json_integer(last));
            json_array_append_new(list, o);
        } else {
            json_decref(o);
        }
    }
    PQclear(res);
    rc = duka_pg_op_end(s, own, rc, err);
    if (rc != DUKA_OK) {
        json_decref(list);
        return rc;
    }
    *out = json_pack("{s:I, s:b, s:o}", "cursor", (json_int_t)last, "more", more, "list", list);
    return DUKA_OK;
}

duka_rc duka_pg_sale_load(duka_hub_store *s, const char *business_id, const char *receipt_no,
                          duka_sale *out, duka_err *err)
{
    bool own = false;
    if (duka_pg_op_begin(s, business_id, &own, err) != DUKA_OK)
        return DUKA_STORE;
    const char *v[2] = {business_id, receipt_no};
    PGresult *res = exec(s,
                         "SELECT id, terminal, created_ms, total_cents, tax_cents, cashier_id,"
                         " cashier_name, kind, coalesce(original_receipt_no, ''),"
                         " coalesce(refund_reason, '') FROM sales"
                         " WHERE business_id = $1 AND receipt_no = $2",
                         2, v, PGRES_TUPLES_OK, "reading a sale", err);
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    char id[24] = "";
    if (res && PQntuples(res) == 1) {
        snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
        snprintf(out->receipt_no, sizeof(out->receipt_no), "%s", receipt_no);
        snprintf(out->terminal, sizeof(out->terminal), "%s", PQgetvalue(res, 0, 1));
        out->created_ms = num(res, 0, 2);
        out->total_cents = num(res, 0, 3);
        out->tax_cents = num(res, 0, 4);
        snprintf(out->cashier_id, sizeof(out->cashier_id), "%s", PQgetvalue(res, 0, 5));
        snprintf(out->cashier_name, sizeof(out->cashier_name), "%s", PQgetvalue(res, 0, 6));
        out->kind = strcmp(PQgetvalue(res, 0, 7), "refund") == 0 ? DUKA_KIND_REFUND
                                                                 : DUKA_KIND_SALE;
        snprintf(out->original_receipt_no, sizeof(out->original_receipt_no), "%s",
                 PQgetvalue(res, 0, 8));
        snprintf(out->reason, sizeof(out->reason), "%s", PQgetvalue(res, 0, 9));
    } else if (res) {
        rc = duka_err_set(err, DUKA_NOTFOUND, "sale %s not found", receipt_no);
    }
    PQclear(res);
    const char *iv[1] = {id};
    if (rc == DUKA_OK) {
        res = exec(s,
                   "SELECT sku, name, qty_milli, unit_price_cents, tax_band, line_total_cents,"
                   " tax_cents, coalesce(original_line, 0) FROM sale_lines"
                   " WHERE sale_id = $1::bigint ORDER BY line_no",
                   1, iv, PGRES_TUPLES_OK, "reading a sale's lines", err);
        rc = res ? DUKA_OK : DUKA_STORE;
        for (int r = 0; res && r < PQntuples(res) && out->line_count < DUKA_SALE_LINES_MAX; r++) {
            duka_sale_line *l = &out->lines[out->line_count++];
            snprintf(l->sku, sizeof(l->sku), "%s", PQgetvalue(res, r, 0));
            snprintf(l->name, sizeof(l->name), "%s", PQgetvalue(res, r, 1));
            l->qty_milli = num(res, r, 2);
            l->unit_price_cents = num(res, r, 3);
            l->tax_band = PQgetvalue(res, r, 4)[0];
            l->line_total_cents = num(res, r, 5);
            l->tax_cents = num(res, r, 6);
            l->original_line = (int)num(res, r, 7);
        }
        PQclear(res);
    }
    if (rc == DUKA_OK) {
        res = exec(s,
                   "SELECT method, amount_cents, reference, status FROM payments"
                   " WHERE sale_id = $1::bigint ORDER BY id",
                   1, iv, PGRES_TUPLES_OK, "reading a sale's payments", err);
        rc = res ? DUKA_OK : DUKA_STORE;
        for (int r = 0; res && r < PQntuples(res) && out->payment_count < DUKA_SALE_PAYMENTS_MAX;
             r++) {
            duka_payment *p = &out->payments[out->payment_count++];
            snprintf(p->method, sizeof(p->method), "%s", PQgetvalue(res, r, 0));
            p->amount_cents = num(res, r, 1);
            snprintf(p->reference, sizeof(p->reference), "%s", PQgetvalue(res, r, 2));
            snprintf(p->status, sizeof(p->status), "%s", PQgetvalue(res, r, 3));
        }
        PQclear(res);
    }
    return duka_pg_op_end(s, own, rc, err);
}

duka_rc duka_pg_refunds_of(duka_hub_store *s, const char *business_id, const char *receipt_no,
                           duka_hub_refunded *out, duka_err *err)
{
    bool own = false;
    if (duka_pg_op_begin(s, business_id, &own, err) != DUKA_OK)
        return DUKA_STORE;
    const char *v[2] = {business_id, receipt_no};
    PGresult *res = exec(s,
                         "SELECT r.id, l.original_line, l.qty_milli, l.line_total_cents"
                         " FROM sales r JOIN sale_lines l ON l.sale_id = r.id"
                         " WHERE r.business_id = $1 AND r.original_receipt_no = $2"
                         " AND r.kind = 'refund' ORDER BY r.id",
                         2, v, PGRES_TUPLES_OK, "reading a sale's refunds", err);
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    int64_t last = -1;
    for (int r = 0; res && r < PQntuples(res); r++) {
        int64_t id = num(res, r, 0), line = num(res, r, 1);
        out->count += id != last;
        last = id;
        if (line >= 1 && line <= DUKA_SALE_LINES_MAX) {
            out->qty_milli[line - 1] += num(res, r, 2);
            out->cents[line - 1] += num(res, r, 3);
        }
    }
    PQclear(res);
    return duka_pg_op_end(s, own, rc, err);
}

duka_rc duka_pg_outbox_result_of(duka_hub_store *s, const char *business_id,
                                 const char *destination, const char *entity_id,
                                 char *result, size_t result_len, bool *found,
                                 duka_err *err)
{
    bool own = false;
    if (duka_pg_op_begin(s, business_id, &own, err) != DUKA_OK)
        return DUKA_STORE;
    const char *v[3] = {business_id, destination, entity_id};
    PGresult *res = exec(s,
                         "SELECT result FROM outbox_results WHERE business_id = $1"
                         " AND destination = $2 AND entity_id = $3 ORDER BY seq DESC LIMIT 1",
                         3, v, PGRES_TUPLES_OK, "reading an outbox result", err);
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    if (res && PQntuples(res) == 1) {
        snprintf(result, result_len, "%s", PQgetvalue(res, 0, 0));
        *found = true;
    }
    PQclear(res);
    return duka_pg_op_end(s, own, rc, err);
}

duka_rc duka_pg_kv_get(duka_hub_store *s, const char *business_id, const char *key,
                       char *value, size_t value_len, bool *found, duka_err *err)
{
    bool own = false;
    if (duka_pg_op_begin(s, business_id, &own, err) != DUKA_OK)
        return DUKA_STORE;
    const char *v[2] = {business_id, key};
    PGresult *res = exec(s, "SELECT value FROM hub_kv WHERE business_id = $1 AND key = $2", 2,
                         v, PGRES_TUPLES_OK, "reading hub_kv", err);
    if (res && PQntuples(res) == 1) {
        *found = true;
        snprintf(value, value_len, "%s", PQgetvalue(res, 0, 0));
    }
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    PQclear(res);
    return duka_pg_op_end(s, own, rc, err);
}

duka_rc duka_pg_kv_put(duka_hub_store *s, const char *business_id, const char *key,
                       const char *value, int64_t now_ms, duka_err *err)
{
    char now[24];
    const char *v[4] = {business_id, key, value, I64(now, now_ms)};
    return write_own(s, business_id,
                     "INSERT INTO hub_kv(business_id, key, value, updated_ms)"
                     " VALUES($1, $2, $3, $4::bigint) ON CONFLICT (business_id, key)"
                     " DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                     4, v, NULL, "writing hub_kv", err);
}

duka_rc duka_pg_health_get(duka_hub_store *s, const char *service, duka_service_health *out,
                           bool *found, duka_err *err)
{
    const char *v[1] = {service};
    PGresult *res = exec(s,
                         "SELECT state, since_ms, updated_ms, detail FROM service_health"
                         " WHERE service = $1",
                         1, v, PGRES_TUPLES_OK, "reading a service's health", err);
    if (res == NULL)
        return DUKA_STORE;
    if (PQntuples(res) == 1) {
        *found = true;
        snprintf(out->state, sizeof(out->state), "%s", PQgetvalue(res, 0, 0));
        out->since_ms = num(res, 0, 1);
        out->updated_ms = num(res, 0, 2);
        snprintf(out->detail, sizeof(out->detail), "%s", PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return DUKA_OK;
}

duka_rc duka_pg_health_put(duka_hub_store *s, const char *service,
                           const duka_service_health *h, duka_err *err)
{
    char since[24], upd[24];
    const char *v[5] = {service, h->state, I64(since, h->since_ms), I64(upd, h->updated_ms),
                        h->detail};
    return write_own(s, NULL,
                     "INSERT INTO service_health(service, state, since_ms, updated_ms, detail)"
                     " VALUES($1, $2, $3::bigint, $4::bigint, $5) ON CONFLICT (service) DO"
                     " UPDATE SET state = excluded.state, since_ms = excluded.since_ms,"
                     " updated_ms = excluded.updated_ms, detail = excluded.detail",
                     5, v, NULL, "writing a service's health", err);
}

duka_rc duka_pg_mpesa_receipt_put(duka_hub_store *s, const char *business_id,
                                  const duka_mpesa_payment *p, const char *source,
                                  int64_t now_ms, bool *inserted, duka_err *err)
{
    char amount[24], paid[24], now[24];
    const char *v[9] = {business_id, p->receipt, source, I64(amount, p->amount_cents),
                        p->phone, I64(paid, p->paid_ms), p->shortcode, p->reference,
                        I64(now, now_ms)};
    int64_t changed = 0;
    duka_rc rc = write_own(s, business_id,
                           "INSERT INTO mpesa_receipts(business_id, receipt, source, amount_cents,"
                           " phone, paid_ms, shortcode, reference, received_ms)"
                           " VALUES($1, $2, $3, $4::bigint, $5, $6::bigint, $7, $8, $9::bigint)"
                           " ON CONFLICT (business_id, receipt) DO NOTHING",
                           9, v, &changed, "keeping an M-Pesa receipt", err);
    *inserted = rc == DUKA_OK && changed == 1;
    return rc;
}

duka_rc duka_pg_mpesa_receipt_get(duka_hub_store *s, const char *business_id,
                                  const char *receipt, duka_mpesa_receipt *out, bool *found,
                                  duka_err *err)
{
    bool own = false;
    if (duka_pg_op_begin(s, business_id, &own, err) != DUKA_OK)
        return DUKA_STORE;
    const char *v[2] = {business_id, receipt};
    PGresult *res = exec(s,
                         "SELECT source, amount_cents, phone, paid_ms, shortcode, reference,"
                         " coalesce(credited_to, ''), coalesce(credited_ms, 0), received_ms"
                         " FROM mpesa_receipts WHERE business_id = $1 AND receipt = $2",
                         2, v, PGRES_TUPLES_OK, "reading an M-Pesa receipt", err);
    if (res && PQntuples(res) == 1) {
        *found = true;
        snprintf(out->p.receipt, sizeof(out->p.receipt), "%s", receipt);
        snprintf(out->source, sizeof(out->source), "%s", PQgetvalue(res, 0, 0));
        out->p.amount_cents = num(res, 0, 1);
        snprintf(out->p.phone, sizeof(out->p.phone), "%s", PQgetvalue(res, 0, 2));
        out->p.paid_ms = num(res, 0, 3);
        snprintf(out->p.shortcode, sizeof(out->p.shortcode), "%s", PQgetvalue(res, 0, 4));
        snprintf(out->p.reference, sizeof(out->p.reference), "%s", PQgetvalue(res, 0, 5));
        snprintf(out->credited_to, sizeof(out->credited_to), "%s", PQgetvalue(res, 0, 6));
        out->credited_ms = num(res, 0, 7);
        out->received_ms = num(res, 0, 8);
    }
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    PQclear(res);
    return duka_pg_op_end(s, own, rc, err);
}

duka_rc duka_pg_mpesa_receipt_credit(duka_hub_store *s, const char *business_id,
                                     const char *receipt, const char *sale_receipt_no,
                                     int64_t now_ms, char *holder, size_t holder_len,
                                     bool *found, duka_err *err)
{
    bool own = false;
    if (duka_pg_op_begin(s, business_id, &own, err) != DUKA_OK)
        return DUKA_STORE;
    char now[24];
    const char *v[4] = {business_id, receipt, sale_receipt_no, I64(now, now_ms)};
    /* One statement (the row locked while it runs): credits it when free, and answers who
     * holds it either way — two hubs verifying two sales with one code credit one. */
    PGresult *res = exec(s,
                         "UPDATE mpesa_receipts SET"
                         " credited_ms = CASE WHEN credited_to IS NULL THEN $4::bigint"
                         "   ELSE credited_ms END,"
                         " credited_to = coalesce(credited_to, $3)"
                         " WHERE business_id = $1 AND receipt = $2 RETURNING credited_to",
                         4, v, PGRES_TUPLES_OK, "crediting an M-Pesa receipt", err);
    if (res && PQntuples(res) == 1) {
        *found = true;
        snprintf(holder, holder_len, "%s", PQgetvalue(res, 0, 0));
    }
    duka_rc rc = res ? DUKA_OK : DUKA_STORE;
    PQclear(res);
    return duka_pg_op_end(s, own, rc, err);
}
