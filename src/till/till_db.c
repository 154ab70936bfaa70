/* till_db.c — till schema and identity (see till_db.h). */
#include "till/till_db.h"

#include <stdio.h>

#include "outbox/outbox.h"
#include "store/db.h"

static const char till_schema_v1[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE products ("
    "  sku TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  price_cents INTEGER NOT NULL CHECK (price_cents >= 0),"
    "  tax_band TEXT NOT NULL CHECK (tax_band IN ('A','B','C','D','E')),"
    "  category TEXT NOT NULL DEFAULT '',"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  change_seq INTEGER NOT NULL DEFAULT 0"
    ");"
    /* One row per calendar day ever used: the next number of a day is last_seq + 1, so a
     * clock that moves back to a day already used continues that day, never repeats it. */
    "CREATE TABLE receipt_days (day INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL);"
    "CREATE TABLE sales ("
    "  id INTEGER PRIMARY KEY,"
    "  receipt_no TEXT NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  total_cents INTEGER NOT NULL,"
    "  tax_cents INTEGER NOT NULL,"
    "  command_id TEXT NOT NULL" /* unique through outbox.command_id, same transaction */
    ");"
    "CREATE TABLE sale_lines ("
    "  sale_id INTEGER NOT NULL REFERENCES sales(id),"
    "  line_no INTEGER NOT NULL,"
    "  sku TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  qty_milli INTEGER NOT NULL CHECK (qty_milli > 0),"
    "  unit_price_cents INTEGER NOT NULL,"
    "  tax_band TEXT NOT NULL,"
    "  line_total_cents INTEGER NOT NULL,"
    "  tax_cents INTEGER NOT NULL,"
    "  PRIMARY KEY (sale_id, line_no)"
    ") WITHOUT ROWID;" /* one b-tree, not a table plus its key index: fewer pages per sale */
    /* Fits cash now, M-Pesa and card later: method, a reference (M-Pesa code, card auth
     * reference — never a card number), a status with its own lifecycle, and who approved. */
    "CREATE TABLE payments ("
    "  id INTEGER PRIMARY KEY,"
    "  sale_id INTEGER NOT NULL REFERENCES sales(id),"
    "  method TEXT NOT NULL CHECK (method IN ('cash','mpesa','card')),"
    "  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),"
    "  reference TEXT NOT NULL DEFAULT '',"
    "  status TEXT NOT NULL,"
    "  provider_ref TEXT,"
    "  approved_by TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX payments_sale ON payments(sale_id);"
    "CREATE TABLE sync_log ("
    "  id INTEGER PRIMARY KEY,"
    "  started_ms INTEGER NOT NULL,"
    "  direction TEXT NOT NULL,"
    "  items INTEGER NOT NULL,"
    "  ok INTEGER NOT NULL,"
    "  duplicates INTEGER NOT NULL,"
    "  failed INTEGER NOT NULL,"
    "  conflicts INTEGER NOT NULL,"
    "  http_status INTEGER NOT NULL,"
    "  duration_ms INTEGER NOT NULL,"
    "  error TEXT"
    ");" DUKA_OUTBOX_SCHEMA_SQL;

/* Version 2 (issue 10):
 * - payments.tendered_cents: the cash a customer handed over (the change is tendered minus the
 *   amount); NULL for other methods and for sales made before;
 * - an index of M-Pesa codes, so a code typed twice on this till is noticed at checkout;
 * - sync_log.repeats / last_ms: consecutive empty pulls fold into one row with a count;
 * - meta till_id: a random id of this database, sent to the hub with every request, which
 *   binds a device token to one till database (a second database with the same token is
 *   refused instead of selling receipt numbers that collide). A copy of the file (a restored
 *   backup) is the same till and keeps it. */
static const char till_schema_v2[] =
    "ALTER TABLE payments ADD COLUMN tendered_cents INTEGER;"
    "CREATE INDEX payments_mpesa_code ON payments(reference) WHERE method = 'mpesa';"
    "ALTER TABLE sync_log ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE sync_log ADD COLUMN last_ms INTEGER;"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('" DUKA_META_TILL_ID "',"
    " lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||"
    " substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1) ||"
    " substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))));";

/* Version 3 (issue 11):
 * - cashiers: the business's cashiers as the last pull left them (the whole list, inactive
 *   ones too, each with its argon2id PIN hash; never a plain PIN), replaced in one transaction
 *   with meta cashiers_version;
 * - login_failures: wrong PINs in a row per cashier and until when the cashier is locked, apart
 *   from the pulled list so that a pull (which replaces every cashiers row) resets no lockout;
 * - sessions: a cashier logged in on this till, by the BLAKE2b hash of its token (the token
 *   itself is only in the browser's cookie), so a session survives a till restart;
 * - sales.cashier_id / cashier_name: who rang the sale up, as they were then ('' for none);
 * - connectivity_log: the connectivity state changes over the day, for the sync screen. */
static const char till_schema_v3[] =
    "CREATE TABLE cashiers ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('cashier','manager')),"
    "  pin_hash TEXT NOT NULL,"
    "  active INTEGER NOT NULL CHECK (active IN (0, 1))"
    ");"
    "CREATE TABLE login_failures ("
    "  cashier_id TEXT PRIMARY KEY,"
    "  failures INTEGER NOT NULL,"
    "  locked_until_ms INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE sessions ("
    "  token_hash TEXT PRIMARY KEY,"
    "  cashier_id TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX sessions_cashier ON sessions(cashier_id);"
    "ALTER TABLE sales ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE sales ADD COLUMN cashier_name TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE connectivity_log (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL, error TEXT);";

/* Version 4 (issue 12, KRA eTIMS):
 * - etims_receipts: the control unit's signature of each receipt of this till, as the hub's
 *   pull brought it (till/etims_receipt.h): one row per receipt, never made up on the till.
 *   The lengths and shapes are checked before the insert (etims_receipt.c) and again here, so
 *   a row that is in the table is one a receipt can print. References the sale: a signature
 *   of a receipt this till does not hold is not kept.
 * - meta etims_invoice_cursor (the last `seq` of the pull's invoices member stored) and
 *   etims_state / etims_since_ms / etims_pending / etims_seen_ms (the hub's view of eTIMS, its
 *   services.etims member), written with them in one transaction. */
static const char till_schema_v4[] =
    "CREATE TABLE etims_receipts ("
    "  receipt_no TEXT PRIMARY KEY REFERENCES sales(receipt_no),"
    "  seq INTEGER NOT NULL CHECK (seq > 0),"
    "  kind TEXT NOT NULL CHECK (kind IN ('sale','credit_note')),"
    "  cu_invoice_no TEXT NOT NULL CHECK (length(cu_invoice_no) BETWEEN 3 AND 64),"
    "  sdc_id TEXT NOT NULL CHECK (length(sdc_id) BETWEEN 1 AND 32),"
    "  invc_no INTEGER NOT NULL CHECK (invc_no > 0),"
    "  rcpt_no INTEGER NOT NULL CHECK (rcpt_no > 0),"
    "  tot_rcpt_no INTEGER NOT NULL CHECK (tot_rcpt_no >= rcpt_no),"
    "  intrl_data TEXT NOT NULL CHECK (length(intrl_data) BETWEEN 1 AND 64),"
    "  rcpt_sign TEXT NOT NULL CHECK (length(rcpt_sign) BETWEEN 1 AND 64),"
    "  signed_at TEXT NOT NULL CHECK (length(signed_at) = 19),"
    "  mrc_no TEXT NOT NULL CHECK (length(mrc_no) BETWEEN 1 AND 32),"
    "  qr_url TEXT NOT NULL CHECK (length(qr_url) BETWEEN 8 AND 512),"
    "  received_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;";

/* Version 5 (issue 12, refunds): a refund is a receipt of this till like a sale — the next
 * number of its series, in sales with its lines and payments — with kind 'refund', the sale
 * it refunds and the eTIMS reason; each refund line names the sale's line it gives back
 * (original_line; NULL for a sale's line). The index finds a sale's refunds (what is left to
 * refund). */
static const char till_schema_v5[] =
    "ALTER TABLE sales ADD COLUMN kind TEXT NOT NULL DEFAULT 'sale'"
    " CHECK (kind IN ('sale','refund'));"
    "ALTER TABLE sales ADD COLUMN original_receipt_no TEXT;"
    "ALTER TABLE sales ADD COLUMN refund_reason TEXT;"
    "ALTER TABLE sale_lines ADD COLUMN original_line INTEGER;"
    "CREATE INDEX sales_original ON sales(original_receipt_no)"
    " WHERE original_receipt_no IS NOT NULL;";

/* Version 6 (issue 13, M-Pesa): a payment's note — why a typed M-Pesa code was flagged, as
 * the hub's verification said it (till/mpesa_verify.h); the index finds the payments still
 * waiting for it. */
static const char till_schema_v6[] =
    "ALTER TABLE payments ADD COLUMN note TEXT;"
    "CREATE INDEX payments_unverified ON payments(status)"
    " WHERE method = 'mpesa' AND status IN ('pending_verification', 'flagged');";

duka_rc duka_till_db_open(const char *path, bool create, sqlite3 **out, duka_err *err)
{
    const duka_migration migrations[] = {
        {1, till_schema_v1}, {2, till_schema_v2}, {3, till_schema_v3}, {4, till_schema_v4},
        {5, till_schema_v5}, {6, till_schema_v6}};
    return duka_db_open(path, DUKA_DB_TILL, create, migrations,
                        (int)(sizeof(migrations) / sizeof(migrations[0])), out, err);
}

duka_rc duka_till_identity_load(sqlite3 *db, duka_till_identity *id, duka_err *err)
{
    bool f1 = false, f2 = false, f3 = false;
    if (duka_meta_get(db, DUKA_META_TERMINAL, id->terminal, sizeof(id->terminal), &f1, err) ||
        duka_meta_get(db, DUKA_META_HUB_URL, id->hub_url, sizeof(id->hub_url), &f2, err) ||
        duka_meta_get(db, DUKA_META_TOKEN, id->token, sizeof(id->token), &f3, err))
        return DUKA_STORE;
    if (duka_meta_get(db, DUKA_META_CA_FILE, id->ca_file, sizeof(id->ca_file), NULL, err) ||
        duka_meta_get(db, DUKA_META_TILL_ID, id->till_id, sizeof(id->till_id), NULL, err))
        return DUKA_STORE;
    if (!f1 || !f2 || !f3)
        return duka_err_set(err, DUKA_NOTFOUND,
                            "this till is not initialised (run: duka till init)");
    return DUKA_OK;
}
