/* mpesa_verify.c — the hub's verdicts on typed M-Pesa codes, on the till (see mpesa_verify.h). */
#include "till/mpesa_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "store/db.h"
#include "till/till_db.h"

typedef struct verdict {
    const char *receipt_no, *code, *status, *reason;
} verdict;

static duka_rc bad(duka_err *err, const char *field)
{
    return duka_err_set(err, DUKA_PROTOCOL, "hub pull reply: mpesa.%s is missing or not valid",
                        field);
}

static bool whole(const json_t *v, int64_t lo)
{
    return json_is_integer(v) && json_integer_value(v) >= lo;
}

/* Checks the member whole; the verdicts point into it. */
static duka_rc parse(const json_t *m, int64_t stored, verdict *list, size_t max, size_t *n,
                     int64_t *cursor, bool *more, duka_err *err)
{
    *n = 0;
    const json_t *items = json_object_get(m, "list"), *c = json_object_get(m, "cursor");
    if (!json_is_object(m) || !json_is_array(items) || !whole(c, 0) ||
        json_array_size(items) > DUKA_MPESA_PULL_LIST_MAX)
        return bad(err, "list or cursor");
    int64_t prev = stored;
    size_t i;
    const json_t *e;
    char field[96];
    json_array_foreach(items, i, e) {
        const json_t *seq = json_object_get(e, "seq"), *pays = json_object_get(e, "payments");
        const char *receipt = json_string_value(json_object_get(e, "receipt_no"));
        snprintf(field, sizeof(field), "list[%zu]", i);
        if (!json_is_object(e) || !whole(seq, 1) || json_integer_value(seq) <= prev ||
            receipt == NULL || strlen(receipt) > DUKA_RECEIPT_NO_MAX || !json_is_array(pays) ||
            json_array_size(pays) > DUKA_SALE_PAYMENTS_MAX)
            return bad(err, field);
        prev = json_integer_value(seq);
        size_t k;
        const json_t *p;
        json_array_foreach(pays, k, p) {
            const char *code = json_string_value(json_object_get(p, "code"));
            const char *status = json_string_value(json_object_get(p, "status"));
            const char *reason = json_string_value(json_object_get(p, "reason"));
            snprintf(field, sizeof(field), "list[%zu].payments[%zu]", i, k);
            if (code == NULL || strlen(code) > DUKA_PAYMENT_REF_MAX || status == NULL ||
                (strcmp(status, "verified") != 0 && strcmp(status, "flagged") != 0) ||
                (reason != NULL && strlen(reason) > DUKA_PAYMENT_NOTE_MAX) || *n == max)
                return bad(err, field);
            list[(*n)++] = (verdict){receipt, code, status, reason ? reason : ""};
        }
    }
    if (json_integer_value(c) < prev)
        return bad(err, "cursor");
    *cursor = json_integer_value(c) > stored ? json_integer_value(c) : stored;
    *more = json_is_true(json_object_get(m, "more"));
    return DUKA_OK;
}

duka_rc duka_mpesa_cursor(sqlite3 *db, int64_t *cursor, duka_err *err)
{
    char text[32];
    bool found = false;
    *cursor = 0;
    if (duka_meta_get(db, DUKA_META_MPESA_CURSOR, text, sizeof(text), &found, err) != DUKA_OK)
        return DUKA_STORE;
    if (found)
        *cursor = strtoll(text, NULL, 10);
    return DUKA_OK;
}

static duka_rc meta_int(sqlite3 *db, const char *key, int64_t v, duka_err *err)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)v);
    return duka_meta_set(db, key, text, err);
}

/* Sets the verdict on the sale's payments of that code still pending (codes compared without
 * case: the cashier may have typed it in lower case). */
static duka_rc apply_one(sqlite3 *db, const verdict *v, int64_t now_ms, duka_mpesa_pull_result *r,
                         duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db,
                     "UPDATE payments SET status = ?3, note = nullif(?4, ''), updated_ms = ?5"
                     " WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?1)"
                     " AND method = 'mpesa' AND upper(reference) = upper(?2)"
                     " AND status = 'pending_verification'",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, v->receipt_no);
    duka_db_bind_text(st, 2, v->code);
    duka_db_bind_text(st, 3, v->status);
    duka_db_bind_text(st, 4, v->reason);
    sqlite3_bind_int64(st, 5, now_ms);
    int rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "storing an M-Pesa verdict", err);
    int changed = sqlite3_changes(db);
    r->updated += changed;
    r->ignored += changed == 0;
    return DUKA_OK;
}

duka_rc duka_mpesa_apply_pull(sqlite3 *db, const json_t *mpesa, const json_t *services,
                              int64_t now_ms, duka_mpesa_pull_result *out, duka_err *err)
{
    duka_mpesa_pull_result res = {0};
    if (out != NULL)
        *out = res;
    const json_t *svc = json_is_object(services) ? json_object_get(services, "mpesa") : NULL;
    if (mpesa == NULL && svc == NULL)
        return DUKA_OK;
    duka_rc rc = duka_mpesa_cursor(db, &res.cursor, err);
    if (rc != DUKA_OK)
        return rc;
    const char *state = svc ? json_string_value(json_object_get(svc, "state")) : NULL;
    const json_t *pending = svc ? json_object_get(svc, "pending") : NULL;
    if (svc != NULL && (state == NULL || strlen(state) > 11 || !whole(pending, 0)))
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: services.mpesa is missing its state or pending");
    verdict *list = NULL;
    size_t n = 0;
    if (mpesa != NULL) {
        list = calloc(DUKA_MPESA_PULL_LIST_MAX * DUKA_SALE_PAYMENTS_MAX, sizeof(*list));
        if (list == NULL)
            return duka_err_set(err, DUKA_NOMEM, "out of memory reading M-Pesa verdicts");
        rc = parse(mpesa, res.cursor, list, DUKA_MPESA_PULL_LIST_MAX * DUKA_SALE_PAYMENTS_MAX, &n,
                   &res.cursor, &res.more, err);
        if (rc != DUKA_OK) {
            free(list);
            return rc;
        }
    }
    rc = duka_db_begin(db, err);
    for (size_t i = 0; rc == DUKA_OK && i < n; i++)
        rc = apply_one(db, &list[i], now_ms, &res, err);
    if (rc == DUKA_OK && mpesa != NULL)
        rc = meta_int(db, DUKA_META_MPESA_CURSOR, res.cursor, err);
    if (rc == DUKA_OK && svc != NULL)
        rc = duka_meta_set(db, DUKA_META_MPESA_STATE, state, err) != DUKA_OK
                 ? DUKA_STORE
                 : meta_int(db, DUKA_META_MPESA_PENDING, json_integer_value(pending), err);
    if (rc == DUKA_OK)
        rc = duka_db_commit(db, err);
    if (rc != DUKA_OK)
        duka_db_rollback(db);
    free(list);
    if (rc == DUKA_OK && out != NULL)
        *out = res;
    return rc;
}

duka_rc duka_mpesa_counts_load(sqlite3 *db, duka_mpesa_counts *out, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db,
                     "SELECT count(*) FILTER (WHERE status = 'pending_verification'),"
                     " count(*) FILTER (WHERE status = 'flagged') FROM payments"
                     " WHERE method = 'mpesa' AND status IN ('pending_verification', 'flagged')",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->pending_verification = sqlite3_column_int64(st, 0);
        out->flagged = sqlite3_column_int64(st, 1);
    }
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW)
        return duka_db_fail(db, "counting M-Pesa payments", err);
    bool found = false;
    return duka_meta_get(db, DUKA_META_MPESA_STATE, out->hub_state, sizeof(out->hub_state), &found,
                         err);
}
