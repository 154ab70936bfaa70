/*
 * fuzz_pull_reply.c — the till's side of GET /v1/pull under a fuzzer.
 *
 * Each input is a hub's reply body. It is taken apart as sync_client.c (pull_locked) does:
 * "changes" must be an array and "cursor" an integer, then the page goes to
 * duka_catalog_apply_page(), "receipt_floor" to duka_receipt_apply_floor() and "cashiers" to
 * duka_cashiers_apply_pull() (whole or nothing: a malformed member must change nothing),
 * "invoices" and "services" to duka_etims_apply_pull() (the same, checked on the eTIMS rows
 * and the invoice cursor; the database holds sales T01-20261203-00041..43 so signatures of
 * them are stored), on an
 * in-memory till database opened once per process (recreated every DUKA_FUZZ_RESET_EVERY
 * inputs so the catalog and receipt days stay bounded). The cursor check against the stored
 * one is skipped on purpose: the fuzzer should reach the appliers with any cursor.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>

#include "till/cashier.h"
#include "till/catalog.h"
#include "till/etims_receipt.h"
#include "till/receipt.h"
#include "till/till_db.h"

#define DUKA_FUZZ_RESET_EVERY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;
static unsigned inputs_since_open;

static void close_db(void)
{
    sqlite3_close(db);
    db = NULL;
}

static void open_db(void)
{
    duka_err err = {0};
    if (duka_till_db_open(":memory:", true, &db, &err) != DUKA_OK)
        abort();
    if (sqlite3_exec(db,
                     "INSERT INTO sales(receipt_no, created_ms, total_cents, tax_cents,"
                     " command_id) VALUES('T01-20261203-00041', 0, 100, 0, 'a'),"
                     " ('T01-20261203-00042', 0, 100, 0, 'b'), ('T01-20261203-00043', 0, 100,"
                     " 0, 'c')",
                     NULL, NULL, NULL) != SQLITE_OK)
        abort();
    inputs_since_open = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (db == NULL) {
        open_db();
        atexit(close_db);
    } else if (++inputs_since_open >= DUKA_FUZZ_RESET_EVERY) {
        close_db();
        open_db();
    }
    json_t *js = json_loadb((const char *)data, size, 0, NULL);
    if (js == NULL)
        return 0;
    const json_t *changes = json_object_get(js, "changes");
    const json_t *next = json_object_get(js, "cursor");
    if (json_is_array(changes) && json_is_integer(next)) {
        int applied = 0;
        duka_err err = {0};
        duka_rc rc = duka_catalog_apply_page(db, changes, (int64_t)json_integer_value(next),
                                             &applied, &err);
        if (rc == DUKA_OK)
            rc = duka_receipt_apply_floor(db, json_object_get(js, "receipt_floor"), &err);
        if (rc == DUKA_OK) {
            int64_t before = 0, after = 0;
            duka_cashiers_version(db, &before, NULL);
            rc = duka_cashiers_apply_pull(db, json_object_get(js, "cashiers"), &err);
            duka_cashiers_version(db, &after, NULL);
            if (rc == DUKA_PROTOCOL && after != before)
                abort(); /* a refused list changed the till's */
        }
        if (rc == DUKA_OK) {
            int64_t before = 0, after = 0, rows_before = 0, rows_after = 0;
            sqlite3_stmt *st = NULL;
            const char *count = "SELECT count(*) FROM etims_receipts";
            duka_etims_invoice_cursor(db, &before, NULL);
            if (sqlite3_prepare_v2(db, count, -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                rows_before = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
            rc = duka_etims_apply_pull(db, json_object_get(js, "invoices"),
                                       json_object_get(js, "services"), 1, NULL, &err);
            duka_etims_invoice_cursor(db, &after, NULL);
            if (sqlite3_step(st) == SQLITE_ROW)
                rows_after = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
            if (rc == DUKA_PROTOCOL && (after != before || rows_after != rows_before))
                abort(); /* a refused member changed the signatures or the cursor */
            if (after < before)
                abort(); /* the invoice cursor went back */
        }
        if (rc != DUKA_OK && err.rc == DUKA_OK)
            abort(); /* refused without saying why */
        /* A failed page must not leave a transaction open for the next one. */
        if (!sqlite3_get_autocommit(db))
            abort();
    }
    json_decref(js);
    return 0;
}
