/* receipt.c — the receipt counter (see receipt.h). */
#include "till/receipt.h"

#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "store/db.h"

void duka_receipt_format(const char *terminal, int day, int64_t seq,
                         char out[DUKA_RECEIPT_NO_MAX + 1])
{
    snprintf(out, DUKA_RECEIPT_NO_MAX + 1, "%s-%08d-%05" PRId64, terminal, day, seq);
}

duka_rc duka_receipt_next(sqlite3 *db, const char *terminal, int64_t now_ms,
                          char out[DUKA_RECEIPT_NO_MAX + 1], duka_err *err)
{
    assert(!sqlite3_get_autocommit(db) && "a receipt number is taken inside the sale's transaction");
    int day = duka_clock_local_day(now_ms);
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db,
                        "INSERT INTO receipt_days(day, last_seq) VALUES(?1, 1)"
                        " ON CONFLICT(day) DO UPDATE SET last_seq = last_seq + 1"
                        " RETURNING last_seq",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int(st, 1, day);
    int rc = sqlite3_step(st);
    int64_t seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW)
        return duka_db_fail(db, "taking the next receipt number", err);
    assert(seq >= 1);
    duka_receipt_format(terminal, day, seq, out);
    return DUKA_OK;
}

duka_rc duka_receipt_apply_floor(sqlite3 *db, const json_t *floor, duka_err *err)
{
    if (!json_is_object(floor) || json_object_size(floor) == 0)
        return DUKA_OK;
    sqlite3_stmt *st = NULL;
    duka_rc rc = duka_db_begin(db, err);
    if (rc != DUKA_OK)
        return rc;
    rc = duka_db_prepare(db,
                         "INSERT INTO receipt_days(day, last_seq) VALUES(?1, ?2)"
                         " ON CONFLICT(day) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
                         &st, err);
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)(uintptr_t)floor, key, value) {
        if (rc != DUKA_OK)
            break;
        char *end = NULL;
        long long day = strtoll(key, &end, 10);
        if (end == key || *end != '\0' || day < 19700101 || day > 99991231 ||
            !json_is_integer(value) || json_integer_value(value) < 1)
            continue;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, day);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)json_integer_value(value));
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = duka_db_fail(db, "raising the receipt counter", err);
    }
    sqlite3_finalize(st);
    if (rc == DUKA_OK)
        rc = duka_db_commit(db, err);
    if (rc != DUKA_OK)
        duka_db_rollback(db);
    return rc;
}
