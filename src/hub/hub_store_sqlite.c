/*
 * hub_store_sqlite.c — the embedded hub store on one SQLite file (see hub_store.h).
 * WAL and synchronous=FULL as on the till: a push is answered only after its commit is on
 * disk. SQL is kept to what PostgreSQL also runs (ON CONFLICT, RETURNING, no SQLite-only
 * functions) so the PostgreSQL store can share its shape.
 */
#include "hub/hub_store_sqlite_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/uuid.h"
#include "store/db.h"


static const char hub_schema_v1[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE businesses ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  change_seq INTEGER NOT NULL DEFAULT 0," /* catalog change sequence, per business */
    "  created_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE devices ("
    "  id INTEGER PRIMARY KEY,"
    "  business_id TEXT NOT NULL REFERENCES businesses(id),"
    "  terminal TEXT NOT NULL,"
    "  token_hash TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER,"
    "  UNIQUE (business_id, terminal)"
    ");"
    "CREATE TABLE products ("
    "  business_id TEXT NOT NULL REFERENCES businesses(id),"
    "  sku TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  price_cents INTEGER NOT NULL CHECK (price_cents >= 0),"
    "  tax_band TEXT NOT NULL CHECK (tax_band IN ('A','B','C','D','E')),"
    "  category TEXT NOT NULL DEFAULT '',"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  change_seq INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (business_id, sku)"
    ");"
    "CREATE INDEX products_changes ON products(business_id, change_seq);"
    "CREATE TABLE sales ("
    "  id INTEGER PRIMARY KEY,"
    "  business_id TEXT NOT NULL REFERENCES businesses(id),"
    "  device_id INTEGER NOT NULL REFERENCES devices(id),"
    "  command_id TEXT NOT NULL UNIQUE,"
    "  receipt_no TEXT NOT NULL,"
    "  terminal TEXT NOT NULL,"
    "  receipt_day INTEGER NOT NULL," /* YYYYMMDD and sequence of the receipt number */
    "  receipt_seq INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  total_cents INTEGER NOT NULL,"
    "  tax_cents INTEGER NOT NULL,"
    "  UNIQUE (business_id, receipt_no)"
    ");"
    "CREATE INDEX sales_receipt_floor ON sales(business_id, terminal, receipt_day);"
    "CREATE TABLE sale_lines ("
    "  sale_id INTEGER NOT NULL REFERENCES sales(id),"
    "  line_no INTEGER NOT NULL,"
    "  sku TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  qty_milli INTEGER NOT NULL,"
    "  unit_price_cents INTEGER NOT NULL,"
    "  tax_band TEXT NOT NULL,"
    "  line_total_cents INTEGER NOT NULL,"
    "  tax_cents INTEGER NOT NULL,"
    "  PRIMARY KEY (sale_id, line_no)"
    ");"
    "CREATE TABLE payments ("
    "  id INTEGER PRIMARY KEY,"
    "  sale_id INTEGER NOT NULL REFERENCES sales(id),"
    "  method TEXT NOT NULL,"
    "  amount_cents INTEGER NOT NULL,"
    "  reference TEXT NOT NULL,"
    "  status TEXT NOT NULL"
    ");"
    /* Stock is a ledger of deltas (in thousandths); the level is their sum. It may go
     * negative: sales are facts and are never refused for stock. (Since version 2 the
     * sales' deltas are their lines: see stock_movements.) */
    "CREATE TABLE stock_ledger ("
    "  id INTEGER PRIMARY KEY,"
    "  business_id TEXT NOT NULL REFERENCES businesses(id),"
    "  sku TEXT NOT NULL,"
    "  delta_milli INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  ref TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX stock_ledger_sku ON stock_ledger(business_id, sku);"
    /* Every command id ever applied, written in the same transaction as its effect. */
    "CREATE TABLE processed_commands ("
    "  command_id TEXT PRIMARY KEY,"
    "  business_id TEXT NOT NULL,"
    "  device_id INTEGER NOT NULL,"
    "  command_type TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  payload_hash TEXT NOT NULL,"
    "  receipt_no TEXT NOT NULL,"
    "  processed_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE conflicts ("
    "  id INTEGER PRIMARY KEY,"
    "  business_id TEXT NOT NULL,"
    "  device_id INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  entity_id TEXT NOT NULL,"
    "  command_id TEXT NOT NULL,"
    "  existing_command_id TEXT,"
    "  payload TEXT NOT NULL,"
    "  detail TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  resolved_ms INTEGER,"
    "  resolved_by TEXT,"
    "  resolution TEXT"
    ");"
    "CREATE INDEX conflicts_business ON conflicts(business_id);"
    /* Who was refused what, and when: authentication failures and refused commands. */
    "CREATE TABLE audit_log ("
    "  id INTEGER PRIMARY KEY,"
    "  created_ms INTEGER NOT NULL,"
    "  business_id TEXT,"
    "  device_id INTEGER,"
    "  event TEXT NOT NULL,"
    "  detail TEXT NOT NULL"
    ");"
    "CREATE INDEX audit_log_business ON audit_log(business_id, id);";

/* Version 2: a sale's stock deltas are its lines. The ledger kept a row per sale line that
 * repeated the line (sku, quantity, receipt): a third of what a push wrote. stock_ledger now
 * holds the other movements (imports); stock_movements shows every delta, sales' from their
 * lines, and a SKU's level is the sum of both. Earlier databases' sale rows of the ledger are
 * what stock_movements now derives, so they go. */
static const char hub_schema_v2[] =
    "CREATE INDEX sale_lines_sku ON sale_lines(sku);"
    "DELETE FROM stock_ledger WHERE reason = 'sale';"
    "CREATE VIEW stock_movements(business_id, sku, delta_milli, reason, ref, created_ms) AS"
    "  SELECT business_id, sku, delta_milli, reason, ref, created_ms FROM stock_ledger"
    "  UNION ALL"
    "  SELECT s.business_id, l.sku, -l.qty_milli, 'sale', s.receipt_no, s.received_ms"
    "    FROM sale_lines l JOIN sales s ON s.id = l.sale_id;";

/* Version 3 (issue 10, what a new user hit): a business has a KRA PIN (printed on its tills'
 * receipts; '' until set), and a device's token is bound to the one till database that uses
 * it (till_id, the Duka-Till-Id it sent first; NULL until then, and again after a new token;
 * see till_binding.h). */
static const char hub_schema_v3[] =
    "ALTER TABLE businesses ADD COLUMN kra_pin TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE devices ADD COLUMN till_id TEXT;"
    "ALTER TABLE devices ADD COLUMN till_bound_ms INTEGER;";

/* Version 4 (issue 11): a business's cashiers, managed here and pulled by its tills (each
 * PIN only as its argon2id hash), and cashiers_version, raised by every change, which a pull
 * compares with the till's; each sale records its cashier as the till sent it ('' for
 * none). A name is unique per business ignoring ASCII case (lower() is ASCII on SQLite). */
static const char hub_schema_v4[] =
    "ALTER TABLE businesses ADD COLUMN cashiers_version INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE cashiers ("
    "  id TEXT PRIMARY KEY,"
    "  business_id TEXT NOT NULL REFERENCES businesses(id),"
    "  name TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('cashier','manager')),"
    "  pin_hash TEXT NOT NULL,"
    "  active INTEGER NOT NULL DEFAULT 1,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL"
    ");"
    "CREATE UNIQUE INDEX cashiers_name ON cashiers(business_id, lower(name));"
    "ALTER TABLE sales ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE sales ADD COLUMN cashier_name TEXT NOT NULL DEFAULT '';";

/* Version 5 (issue 12): the hub's outbox towards the outside world (outbox/hub_outbox.h):
 * jobs with a destination, a stream and their no-gap number in it (UNIQUE: a number is never
 * used twice), a lease, an attempt log; the number series; the results the tills pull back;
 * small per-business values (a service's device registration) and each service's health. */
static const char hub_schema_v5[] =
    "CREATE TABLE hub_outbox ("
    "  id INTEGER PRIMARY KEY,"
    "  business_id TEXT NOT NULL REFERENCES businesses(id),"
    "  destination TEXT NOT NULL,"
    "  stream TEXT NOT NULL,"
    "  seq_no INTEGER NOT NULL,"
    "  ref_no INTEGER NOT NULL DEFAULT 0,"
    "  command_type TEXT NOT NULL,"
    "  entity_id TEXT NOT NULL,"
    "  terminal TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"
    "    ('pending','processing','awaiting','done','failed')),"
    "  priority INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_attempts INTEGER NOT NULL,"
    "  next_attempt_ms INTEGER NOT NULL,"
    "  unclear INTEGER NOT NULL DEFAULT 0,"
    "  lease_owner TEXT,"
    "  lease_until_ms INTEGER,"
    "  last_error TEXT,"
    "  error_category TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  processed_ms INTEGER,"
    "  UNIQUE (stream, seq_no)"
    ");"
    "CREATE INDEX hub_outbox_due ON hub_outbox(destination, status, priority, stream, seq_no);"
    "CREATE INDEX hub_outbox_business ON hub_outbox(business_id, destination, status);"
    "CREATE TABLE hub_outbox_attempts ("
    "  id INTEGER PRIMARY KEY,"
    "  item_id INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  finished_ms INTEGER NOT NULL,"
    "  duration_ms INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  http_status INTEGER NOT NULL,"
    "  error TEXT"
    ");"
    "CREATE INDEX hub_outbox_attempts_item ON hub_outbox_attempts(item_id);"
    "CREATE TABLE outbox_sequences (stream TEXT PRIMARY KEY, last_no INTEGER NOT NULL);"
    "CREATE TABLE outbox_results ("
    "  business_id TEXT NOT NULL,"
    "  terminal TEXT NOT NULL,"
    "  destination TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  item_id INTEGER NOT NULL UNIQUE,"
    "  entity_id TEXT NOT NULL,"
    "  result TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (business_id, terminal, destination, seq)"
    ");"
    "CREATE TABLE hub_kv ("
    "  business_id TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (business_id, key)"
    ");"
    "CREATE TABLE service_health ("
    "  service TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL,"
    "  since_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  detail TEXT NOT NULL"
    ");";

/* Version 6 (issue 12, refunds): a refund is a receipt of a till like a sale (the till's
 * number series, so the receipt floor and the receipt_reused conflicts hold for it too), kept
 * in sales with kind 'refund', the sale it refunds and the eTIMS reason; each refund line names
 * the sale's line it gives back. Stock: a refund's lines come back (+qty). The indexes find a
 * sale's refunds, to check a new one within it, and a sale's signed invoice, which its credit
 * note names. */
static const char hub_schema_v6[] =
    "ALTER TABLE sales ADD COLUMN kind TEXT NOT NULL DEFAULT 'sale'"
    " CHECK (kind IN ('sale','refund'));"
    "ALTER TABLE sales ADD COLUMN original_receipt_no TEXT;"
    "ALTER TABLE sales ADD COLUMN refund_reason TEXT;"
    "ALTER TABLE sale_lines ADD COLUMN original_line INTEGER;"
    "CREATE INDEX sales_original ON sales(business_id, original_receipt_no)"
    " WHERE original_receipt_no IS NOT NULL;"
    "CREATE INDEX outbox_results_entity ON outbox_results(business_id, destination, entity_id);"
    "DROP VIEW stock_movements;"
    "CREATE VIEW stock_movements(business_id, sku, delta_milli, reason, ref, created_ms) AS"
    "  SELECT business_id, sku, delta_milli, reason, ref, created_ms FROM stock_ledger"
    "  UNION ALL"
    "  SELECT s.business_id, l.sku, CASE s.kind WHEN 'refund' THEN l.qty_milli"
    "    ELSE -l.qty_milli END, s.kind, s.receipt_no, s.received_ms"
    "    FROM sale_lines l JOIN sales s ON s.id = l.sale_id;";

/* Version 7 (issue 13, M-Pesa): the payments Safaricom reported to the hub, per business and
 * receipt number (hub/mpesa_receipts.h): kept once, credited to at most one sale. */
static const char hub_schema_v7[] =
    "CREATE TABLE mpesa_receipts ("
    "  business_id TEXT NOT NULL,"
    "  receipt TEXT NOT NULL CHECK (length(receipt) = 10),"
    "  source TEXT NOT NULL CHECK (source IN ('c2b','stk','status')),"
    "  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),"
    "  phone TEXT NOT NULL,"
    "  paid_ms INTEGER NOT NULL,"
    "  shortcode TEXT NOT NULL,"
    "  reference TEXT NOT NULL,"
    "  credited_to TEXT,"
    "  credited_ms INTEGER,"
    "  received_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (business_id, receipt)"
    ") WITHOUT ROWID;";

static const duka_migration hub_migrations[] = {{1, hub_schema_v1}, {2, hub_schema_v2},
                                                {3, hub_schema_v3}, {4, hub_schema_v4},
                                                {5, hub_schema_v5}, {6, hub_schema_v6},
                                                {7, hub_schema_v7}};

duka_rc duka_sq_stmt(sqlite_store *s, const char *sql, sqlite3_stmt **out, duka_err *err)
{
    return duka_stmt_cache_get(&s->stmts, s->db, sql, out, err);
}

/* Runs a cached statement with no parameters and no rows (transaction control). */
static duka_rc stmt_run(sqlite_store *s, const char *sql, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s, sql, &st, err) != DUKA_OK)
        return DUKA_STORE;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(s->db, sql, err);
    return DUKA_OK;
}

static void sq_store_close(duka_hub_store *hs)
{
    sqlite_store *s = sq(hs);
    duka_stmt_cache_clear(&s->stmts);
    duka_db_close(s->db);
    free(s);
}

static duka_rc sq_store_begin(duka_hub_store *hs, duka_err *err)
{
    sqlite_store *s = sq(hs);
    return stmt_run(s, "BEGIN IMMEDIATE", err);
}
static void sq_store_checkpoint(duka_hub_store *hs)
{
    sqlite_store *s = sq(hs);
    duka_db_checkpoint(s->db);
}

static duka_rc sq_store_commit(duka_hub_store *hs, duka_err *err)
{
    sqlite_store *s = sq(hs);
    return stmt_run(s, "COMMIT", err);
}
static void sq_store_rollback(duka_hub_store *hs)
{
    sqlite_store *s = sq(hs);
    if (!sqlite3_get_autocommit(s->db))
        stmt_run(s, "ROLLBACK", NULL);
}
static duka_rc sq_store_savepoint(duka_hub_store *hs, duka_err *err)
{
    sqlite_store *s = sq(hs);
    return stmt_run(s, "SAVEPOINT cmd", err);
}
static duka_rc sq_store_release(duka_hub_store *hs, duka_err *err)
{
    sqlite_store *s = sq(hs);
    return stmt_run(s, "RELEASE cmd", err);
}
static void sq_store_rollback_to(duka_hub_store *hs)
{
    sqlite_store *s = sq(hs);
    stmt_run(s, "ROLLBACK TO cmd", NULL);
    stmt_run(s, "RELEASE cmd", NULL);
}

/* Steps a prepared statement expected to finish with no rows. */
static duka_rc step_done(sqlite_store *s, sqlite3_stmt *st, const char *what, duka_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(s->db, what, err);
    return DUKA_OK;
}

static duka_rc sq_business_create(duka_hub_store *hs, const char *name, const char *kra_pin,
                                  char id_out[DUKA_BUSINESS_ID_LEN + 1], duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    duka_random_hex(id_out, DUKA_BUSINESS_ID_LEN);
    if (duka_sq_stmt(s,
                 "INSERT INTO businesses(id, name, kra_pin, created_ms) VALUES(?1, ?2, ?3, ?4)",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, id_out);
    duka_db_bind_text(st, 2, name);
    duka_db_bind_text(st, 3, kra_pin);
    sqlite3_bind_int64(st, 4, duka_clock_now_ms(NULL));
    return step_done(s, st, "creating the business", err);
}

/* Every business, oldest first. The caller's BEGIN IMMEDIATE already holds the one write
 * lock, so lock needs nothing more here. */
static duka_rc sq_business_list(duka_hub_store *hs, bool lock, json_t **out, duka_err *err)
{
    (void)lock;
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                 "SELECT b.id, b.name, b.kra_pin, b.created_ms,"
                 " (SELECT count(*) FROM devices d WHERE d.business_id = b.id"
                 "   AND d.revoked_ms IS NULL)"
                 " FROM businesses b ORDER BY b.created_ms, b.id",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char iso[40];
        duka_clock_format_iso(sqlite3_column_int64(st, 3), iso, sizeof(iso));
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:o, s:s, s:I}", "business_id",
                           (const char *)sqlite3_column_text(st, 0), "name",
                           duka_hub_json_text((const char *)sqlite3_column_text(st, 1)),
                           "kra_pin",
                           duka_hub_json_text((const char *)sqlite3_column_text(st, 2)),
                           "created", iso, "devices", (json_int_t)sqlite3_column_int64(st, 4)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(s->db, "reading businesses", err);
    }
    *out = json_pack("{s:o}", "businesses", arr);
    return DUKA_OK;
}

static duka_rc sq_business_update(duka_hub_store *hs, const char *business_id, const char *name,
                                  const char *kra_pin, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                 "UPDATE businesses SET name = coalesce(?2, name),"
                 " kra_pin = coalesce(?3, kra_pin) WHERE id = ?1",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, name);
    duka_db_bind_text(st, 3, kra_pin);
    if (step_done(s, st, "changing the business", err) != DUKA_OK)
        return DUKA_STORE;
    if (sqlite3_changes(s->db) == 0)
        return duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found (see: duka hub init)",
                            business_id);
    return DUKA_OK;
}

static duka_rc sq_business_check(duka_hub_store *hs, const char *business_id, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s, "SELECT 1 FROM businesses WHERE id = ?1", &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return DUKA_OK;
    if (rc == SQLITE_DONE)
        return duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found (see: duka hub init)",
                            business_id);
    return duka_db_fail(s->db, "reading businesses", err);
}

/* Tokens are "duka1.<device id>.<64 hex secret>"; the hub keeps BLAKE2b(secret) in hex. The
 * secret has 256 random bits, so a fast hash is right (no password stretching needed). */
static void hash_secret(const char *secret, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)secret, strlen(secret), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static duka_rc sq_device_add(duka_hub_store *hs, const char *business_id, const char *terminal,
                            char token_out[DUKA_TOKEN_MAX + 1], duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    char secret[65], hash[65];
    duka_random_hex(secret, 64);
    hash_secret(secret, hash);
    /* A revoked terminal gets a new token on the same device row: the commands it sent
     * before stay its own (a resend after a lost reply is still a duplicate, not foreign).
     * The new token is bound to no till database yet: the first one to use it. */
    if (duka_sq_stmt(s,
                 "INSERT INTO devices(business_id, terminal, token_hash, created_ms)"
                 " VALUES(?1, ?2, ?3, ?4)"
                 " ON CONFLICT(business_id, terminal) DO UPDATE SET token_hash = excluded.token_hash,"
                 "   revoked_ms = NULL, till_id = NULL, till_bound_ms = NULL"
                 "   WHERE devices.revoked_ms IS NOT NULL"
                 " RETURNING id",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, terminal);
    duka_db_bind_text(st, 3, hash);
    sqlite3_bind_int64(st, 4, duka_clock_now_ms(NULL));
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE) /* the upsert's WHERE refused: an active device has it */
            return duka_err_set(err, DUKA_CONFLICT,
                                "terminal '%s' is already registered in business %s (revoke it "
                                "first to issue a new token: duka device revoke)",
                                terminal, business_id);
        return duka_db_fail(s->db, "registering the device", err);
    }
    snprintf(token_out, DUKA_TOKEN_MAX + 1, "duka1.%lld.%s", (long long)id, secret);
    return DUKA_OK;
}

static duka_rc sq_device_authenticate(duka_hub_store *hs, const char *token,
                                     duka_hub_device *out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    char secret[65], want[65], have[65];
    long long id = 0;
    int used = 0;
    if (token == NULL || strlen(token) > DUKA_TOKEN_MAX ||
        sscanf(token, "duka1.%lld.%64[0-9a-f]%n", &id, secret, &used) != 2 ||
        (size_t)used != strlen(token) || strlen(secret) != 64)
        return duka_err_set(err, DUKA_AUTH, "token rejected: malformed token");
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    if (duka_sq_stmt(s,
                 "SELECT d.business_id, d.terminal, d.token_hash, d.till_id, d.till_bound_ms,"
                 " b.name, b.kra_pin FROM devices d JOIN businesses b ON b.id = d.business_id"
                 " WHERE d.id = ?1 AND d.revoked_ms IS NULL",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->id = id;
        duka_db_column_copy(st, 0, out->business_id, sizeof(out->business_id));
        duka_db_column_copy(st, 1, out->terminal, sizeof(out->terminal));
        duka_db_column_copy(st, 2, want, sizeof(want));
        duka_db_column_copy(st, 3, out->till_id, sizeof(out->till_id));
        out->till_bound_ms = sqlite3_column_int64(st, 4);
        duka_db_column_copy(st, 5, out->business_name, sizeof(out->business_name));
        duka_db_column_copy(st, 6, out->kra_pin, sizeof(out->kra_pin));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(s->db, "reading devices", err);
    hash_secret(secret, have);
    if (rc != SQLITE_ROW) /* compare anyway: unknown and wrong tokens take the same time */
        memcpy(want, "x", 2);
    if (rc != SQLITE_ROW || strlen(want) != 64 || sodium_memcmp(want, have, 64) != 0)
        return duka_err_set(err, DUKA_AUTH, "token rejected");
    return DUKA_OK;
}

static duka_rc sq_device_list(duka_hub_store *hs, const char *business_id, json_t **out,
                              duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                 "SELECT terminal, id, revoked_ms IS NULL, created_ms, till_id IS NOT NULL"
                 " FROM devices WHERE business_id = ?1 ORDER BY terminal, id",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char iso[40];
        duka_clock_format_iso(sqlite3_column_int64(st, 3), iso, sizeof(iso));
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:s, s:s, s:b}", "terminal",
                           (const char *)sqlite3_column_text(st, 0), "device_id",
                           (json_int_t)sqlite3_column_int64(st, 1), "status",
                           sqlite3_column_int(st, 2) ? "active" : "revoked", "created", iso,
                           "till_bound", sqlite3_column_int(st, 4)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(s->db, "reading devices", err);
    }
    *out = json_pack("{s:o}", "devices", arr);
    return DUKA_OK;
}

/* A compare-and-set on the binding dev was read with; when another request changed it first,
 * the binding it left is read back into dev. */
static duka_rc sq_device_bind_till(duka_hub_store *hs, duka_hub_device *dev,
                                   const char *till_id, int64_t now_ms, bool *changed,
                                   duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *changed = false;
    if (duka_sq_stmt(s,
                 "UPDATE devices SET till_id = ?3, till_bound_ms = ?4"
                 " WHERE id = ?1 AND business_id = ?2 AND revoked_ms IS NULL"
                 "   AND coalesce(till_id, '') = ?5",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, dev->id);
    duka_db_bind_text(st, 2, dev->business_id);
    duka_db_bind_text(st, 3, till_id);
    sqlite3_bind_int64(st, 4, now_ms);
    duka_db_bind_text(st, 5, dev->till_id);
    if (step_done(s, st, "binding the till", err) != DUKA_OK)
        return DUKA_STORE;
    if (sqlite3_changes(s->db) == 1) {
        *changed = true;
        snprintf(dev->till_id, sizeof(dev->till_id), "%s", till_id);
        dev->till_bound_ms = now_ms;
        return DUKA_OK;
    }
    if (duka_sq_stmt(s,
                 "SELECT till_id, till_bound_ms FROM devices"
                 " WHERE id = ?1 AND business_id = ?2 AND revoked_ms IS NULL",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, dev->id);
    duka_db_bind_text(st, 2, dev->business_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        duka_db_column_copy(st, 0, dev->till_id, sizeof(dev->till_id));
        dev->till_bound_ms = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return duka_err_set(err, DUKA_AUTH, "token rejected");
    if (rc != SQLITE_ROW)
        return duka_db_fail(s->db, "reading devices", err);
    return DUKA_OK;
}

/* Next value of the business's catalog change sequence (inside the caller's transaction). */
static duka_rc next_change_seq(sqlite_store *s, const char *business_id, int64_t *seq,
                               duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                        "UPDATE businesses SET change_seq = change_seq + 1 WHERE id = ?1"
                        " RETURNING change_seq",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *seq = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return DUKA_OK;
    if (rc == SQLITE_DONE)
        return duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found", business_id);
    return duka_db_fail(s->db, "advancing the change sequence", err);
}

static duka_rc stock_level(sqlite_store *s, const char *business_id, const char *sku,
                           int64_t *level, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                        "SELECT (SELECT coalesce(sum(delta_milli), 0) FROM stock_ledger"
                        "         WHERE business_id = ?1 AND sku = ?2)"
                        "     - (SELECT coalesce(sum(CASE s.kind WHEN 'refund' THEN -l.qty_milli ELSE l.qty_milli END), 0) FROM sale_lines l"
                        "         JOIN sales s ON s.id = l.sale_id"
                        "        WHERE l.sku = ?2 AND s.business_id = ?1)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, sku);
    int rc = sqlite3_step(st);
    *level = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return duka_db_fail(s->db, "reading stock", err);
    return DUKA_OK;
}

static duka_rc ledger_add(sqlite_store *s, const char *business_id, const char *sku,
                          int64_t delta, const char *reason, const char *ref, int64_t now_ms,
                          duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                        "INSERT INTO stock_ledger(business_id, sku, delta_milli, reason, ref,"
                        " created_ms) VALUES(?1,?2,?3,?4,?5,?6)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, sku);
    sqlite3_bind_int64(st, 3, delta);
    duka_db_bind_text(st, 4, reason);
    duka_db_bind_text(st, 5, ref);
    sqlite3_bind_int64(st, 6, now_ms);
    return step_done(s, st, "writing the stock ledger", err);
}

static duka_rc sq_product_upsert(duka_hub_store *hs, const char *business_id,
                                const duka_hub_product *p, int64_t now_ms, duka_err *err)
{
    sqlite_store *s = sq(hs);
    int64_t seq = 0;
    char band[2] = {p->tax_band, '\0'};
    if (next_change_seq(s, business_id, &seq, err) != DUKA_OK)
        return err ? err->rc : DUKA_STORE;
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                        "INSERT INTO products(business_id, sku, name, price_cents, tax_band,"
                        " category, deleted, change_seq, updated_ms)"
                        " VALUES(?1,?2,?3,?4,?5,?6,0,?7,?8)"
                        " ON CONFLICT(business_id, sku) DO UPDATE SET name = excluded.name,"
                        " price_cents = excluded.price_cents, tax_band = excluded.tax_band,"
                        " category = excluded.category, deleted = 0,"
                        " change_seq = excluded.change_seq, updated_ms = excluded.updated_ms",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, p->sku);
    duka_db_bind_text(st, 3, p->name);
    sqlite3_bind_int64(st, 4, p->price_cents);
    duka_db_bind_text(st, 5, band);
    duka_db_bind_text(st, 6, p->category);
    sqlite3_bind_int64(st, 7, seq);
    sqlite3_bind_int64(st, 8, now_ms);
    if (step_done(s, st, "writing the product", err) != DUKA_OK)
        return DUKA_STORE;
    if (!p->has_stock)
        return DUKA_OK;
    int64_t level = 0;
    if (stock_level(s, business_id, p->sku, &level, err) != DUKA_OK)
        return DUKA_STORE;
    if (level == p->stock_milli)
        return DUKA_OK;
    return ledger_add(s, business_id, p->sku, p->stock_milli - level, "import", "", now_ms, err);
}

static duka_rc sq_product_archive(duka_hub_store *hs, const char *business_id, const char *sku,
                                 int64_t now_ms, duka_err *err)
{
    sqlite_store *s = sq(hs);
    int64_t seq = 0;
    if (next_change_seq(s, business_id, &seq, err) != DUKA_OK)
        return err ? err->rc : DUKA_STORE;
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                        "UPDATE products SET deleted = 1, change_seq = ?3, updated_ms = ?4"
                        " WHERE business_id = ?1 AND sku = ?2 AND deleted = 0",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, sku);
    sqlite3_bind_int64(st, 3, seq);
    sqlite3_bind_int64(st, 4, now_ms);
    if (step_done(s, st, "archiving the product", err) != DUKA_OK)
        return DUKA_STORE;
    if (sqlite3_changes(s->db) == 0)
        return duka_err_set(err, DUKA_NOTFOUND, "product '%s' not found in business %s", sku,
                            business_id);
    return DUKA_OK;
}

static duka_rc sq_changes_since(duka_hub_store *hs, const char *business_id, int64_t cursor,
                               int limit, json_t **out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                        "SELECT sku, name, price_cents, tax_band, category, deleted, change_seq"
                        " FROM products WHERE business_id = ?1 AND change_seq > ?2"
                        " ORDER BY change_seq LIMIT ?3",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    sqlite3_bind_int64(st, 2, cursor);
    sqlite3_bind_int(st, 3, limit + 1); /* one more than asked tells whether there is more */
    json_t *changes = json_array();
    int rc, n = 0;
    bool more = false;
    int64_t last = cursor;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            more = true;
            break;
        }
        last = sqlite3_column_int64(st, 6);
        json_array_append_new(
            changes, json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:b}", "seq", (json_int_t)last,
                               "sku", sqlite3_column_text(st, 0), "name",
                               sqlite3_column_text(st, 1), "price",
                               (json_int_t)sqlite3_column_int64(st, 2), "tax",
                               sqlite3_column_text(st, 3), "category",
                               sqlite3_column_text(st, 4), "deleted",
                               sqlite3_column_int(st, 5)));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(changes);
        return duka_db_fail(s->db, "reading catalog changes", err);
    }
    *out = json_pack("{s:o, s:I, s:b}", "changes", changes, "cursor", (json_int_t)last, "more",
                     more);
    return DUKA_OK;
}

/* A product's level: its ledger movements less the quantities sold (stock_movements, taken
 * apart so each half probes its index). */
static duka_rc sq_product_list(duka_hub_store *hs, const char *business_id, bool archived,
                               json_t **out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                 "SELECT p.sku, p.name, p.price_cents, p.tax_band, p.category, p.deleted,"
                 " (SELECT coalesce(sum(g.delta_milli), 0) FROM stock_ledger g"
                 "   WHERE g.business_id = p.business_id AND g.sku = p.sku)"
                 " - (SELECT coalesce(sum(CASE x.kind WHEN 'refund' THEN -l.qty_milli"
                 "   ELSE l.qty_milli END), 0) FROM sale_lines l"
                 "   JOIN sales x ON x.id = l.sale_id"
                 "   WHERE l.sku = p.sku AND x.business_id = p.business_id)"
                 " FROM products p WHERE p.business_id = ?1 AND (?2 OR p.deleted = 0)"
                 " ORDER BY p.sku",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    sqlite3_bind_int(st, 2, archived ? 1 : 0);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:I, s:s, s:o, s:b, s:I}", "sku",
                           (const char *)sqlite3_column_text(st, 0), "name",
                           duka_hub_json_text((const char *)sqlite3_column_text(st, 1)),
                           "price", (json_int_t)sqlite3_column_int64(st, 2), "tax",
                           (const char *)sqlite3_column_text(st, 3), "category",
                           duka_hub_json_text((const char *)sqlite3_column_text(st, 4)),
                           "archived",
                           sqlite3_column_int(st, 5), "stock_milli",
                           (json_int_t)sqlite3_column_int64(st, 6)));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(s->db, "reading products", err);
    }
    *out = json_pack("{s:o}", "products", arr);
    return DUKA_OK;
}

static duka_rc sq_stock_levels(duka_hub_store *hs, const char *business_id, json_t **out,
                               duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                 "SELECT v.sku, coalesce(p.name, ''), sum(v.milli) FROM ("
                 "   SELECT sku, delta_milli AS milli FROM stock_movements"
                 "    WHERE business_id = ?1"
                 "   UNION ALL"
                 "   SELECT sku, 0 FROM products WHERE business_id = ?1 AND deleted = 0) v"
                 " LEFT JOIN products p ON p.business_id = ?1 AND p.sku = v.sku"
                 " GROUP BY v.sku, p.name ORDER BY v.sku",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:I}", "sku", (const char *)sqlite3_column_text(st, 0),
                           "name", duka_hub_json_text((const char *)sqlite3_column_text(st, 1)),
                           "stock_milli", (json_int_t)sqlite3_column_int64(st, 2)));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(s->db, "reading stock levels", err);
    }
    *out = json_pack("{s:o}", "products", arr);
    return DUKA_OK;
}

static duka_rc sq_command_find(duka_hub_store *hs, const char *command_id, duka_hub_command *out,
                              bool *found, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *found = false;
    if (duka_sq_stmt(s,
                        "SELECT device_id, status, payload_hash, receipt_no FROM"
                        " processed_commands WHERE command_id = ?1",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, command_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        out->device_id = sqlite3_column_int64(st, 0);
        duka_db_column_copy(st, 1, out->status, sizeof(out->status));
        duka_db_column_copy(st, 2, out->payload_hash, sizeof(out->payload_hash));
        duka_db_column_copy(st, 3, out->receipt_no, sizeof(out->receipt_no));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(s->db, "reading processed commands", err);
    return DUKA_OK;
}

static duka_rc sq_command_record(duka_hub_store *hs, const char *command_id,
                                const duka_hub_device *dev, const char *command_type,
                                const duka_hub_command *o, int64_t now_ms, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                        "INSERT INTO processed_commands(command_id, business_id, device_id,"
                        " command_type, status, payload_hash, receipt_no, processed_ms)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, command_id);
    duka_db_bind_text(st, 2, dev->business_id);
    sqlite3_bind_int64(st, 3, dev->id);
    duka_db_bind_text(st, 4, command_type);
    duka_db_bind_text(st, 5, o->status);
    duka_db_bind_text(st, 6, o->payload_hash);
    duka_db_bind_text(st, 7, o->receipt_no);
    sqlite3_bind_int64(st, 8, now_ms);
    return step_done(s, st, "recording the command id", err);
}

static duka_rc sq_sale_owner(duka_hub_store *hs, const char *business_id, const char *receipt_no,
                            char command_id_out[DUKA_UUID_STR_LEN + 1], bool *found,
                            duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *found = false;
    if (duka_sq_stmt(s,
                        "SELECT command_id FROM sales WHERE business_id = ?1 AND receipt_no = ?2",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, receipt_no);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        duka_db_column_copy(st, 0, command_id_out, DUKA_UUID_STR_LEN + 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(s->db, "reading sales", err);
    return DUKA_OK;
}

static duka_rc sq_sale_insert(duka_hub_store *hs, const duka_hub_device *dev,
                             const char *command_id, const duka_sale *sale, int64_t now_ms,
                             duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                        "INSERT INTO sales(business_id, device_id, command_id, receipt_no,"
                        " terminal, created_ms, received_ms, total_cents, tax_cents,"
                        " receipt_day, receipt_seq, cashier_id, cashier_name, kind,"
                        " original_receipt_no, refund_reason)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)"
                        " RETURNING id",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, dev->business_id);
    sqlite3_bind_int64(st, 2, dev->id);
    duka_db_bind_text(st, 3, command_id);
    duka_db_bind_text(st, 4, sale->receipt_no);
    duka_db_bind_text(st, 5, sale->terminal);
    sqlite3_bind_int64(st, 6, sale->created_ms);
    sqlite3_bind_int64(st, 7, now_ms);
    sqlite3_bind_int64(st, 8, sale->total_cents);
    sqlite3_bind_int64(st, 9, sale->tax_cents);
    /* The receipt number was validated as {terminal}-{YYYYMMDD}-{seq}. */
    const char *day = sale->receipt_no + strlen(sale->terminal) + 1;
    sqlite3_bind_int64(st, 10, strtoll(day, NULL, 10));
    sqlite3_bind_int64(st, 11, strtoll(day + 9, NULL, 10));
    duka_db_bind_text(st, 12, sale->cashier_id);
    duka_db_bind_text(st, 13, sale->cashier_name);
    bool refund = sale->kind == DUKA_KIND_REFUND;
    duka_db_bind_text(st, 14, duka_receipt_kind_name(sale->kind));
    if (refund) {
        duka_db_bind_text(st, 15, sale->original_receipt_no);
        duka_db_bind_text(st, 16, sale->reason);
    } else {
        sqlite3_bind_null(st, 15);
        sqlite3_bind_null(st, 16);
    }
    int rc = sqlite3_step(st);
    int64_t sale_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return duka_db_fail(s->db, "storing the sale", err);

    if (duka_sq_stmt(s,
                        "INSERT INTO sale_lines(sale_id, line_no, sku, name, qty_milli,"
                        " unit_price_cents, tax_band, line_total_cents, tax_cents, original_line)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    for (int i = 0; i < sale->line_count; i++) {
        const duka_sale_line *l = &sale->lines[i];
        char band[2] = {l->tax_band, '\0'};
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, sale_id);
        sqlite3_bind_int(st, 2, i + 1);
        duka_db_bind_text(st, 3, l->sku);
        duka_db_bind_text(st, 4, l->name);
        sqlite3_bind_int64(st, 5, l->qty_milli);
        sqlite3_bind_int64(st, 6, l->unit_price_cents);
        duka_db_bind_text(st, 7, band);
        sqlite3_bind_int64(st, 8, l->line_total_cents);
        sqlite3_bind_int64(st, 9, l->tax_cents);
        if (refund)
            sqlite3_bind_int(st, 10, l->original_line);
        else
            sqlite3_bind_null(st, 10);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_reset(st);
            return duka_db_fail(s->db, "storing sale lines", err);
        }
    }
    sqlite3_reset(st);
    if (duka_sq_stmt(s,
                        "INSERT INTO payments(sale_id, method, amount_cents, reference, status)"
                        " VALUES(?1,?2,?3,?4,?5)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    for (int i = 0; i < sale->payment_count; i++) {
        const duka_payment *p = &sale->payments[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, sale_id);
        duka_db_bind_text(st, 2, p->method);
        sqlite3_bind_int64(st, 3, p->amount_cents);
        duka_db_bind_text(st, 4, p->reference);
        duka_db_bind_text(st, 5, p->status);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_reset(st);
            return duka_db_fail(s->db, "storing payments", err);
        }
    }
    sqlite3_reset(st);
    /* The lines are the sale's stock deltas (stock_movements). */
    return DUKA_OK;
}

static duka_rc sq_conflict_insert(duka_hub_store *hs, const duka_hub_device *dev,
                                 const char *kind, const char *entity_id,
                                 const char *command_id, const char *existing_command_id,
                                 const char *payload, const char *detail, int64_t now_ms,
                                 duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                        "INSERT INTO conflicts(business_id, device_id, kind, entity_id,"
                        " command_id, existing_command_id, payload, detail, created_ms)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, dev->business_id);
    sqlite3_bind_int64(st, 2, dev->id);
    duka_db_bind_text(st, 3, kind);
    duka_db_bind_text(st, 4, entity_id);
    duka_db_bind_text(st, 5, command_id);
    duka_db_bind_text(st, 6, existing_command_id);
    duka_db_bind_text(st, 7, payload);
    duka_db_bind_text(st, 8, detail);
    sqlite3_bind_int64(st, 9, now_ms);
    return step_done(s, st, "logging the conflict", err);
}

static duka_rc query_int(sqlite_store *s, const char *sql, const char *business_id,
                         int64_t *out, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s, sql, &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return duka_db_fail(s->db, "reading the report", err);
    return DUKA_OK;
}

/* A sum of the sales' column for the report. Each sale is bounded, but enough of the largest
 * add up past int64 (19 of them); SQLite's sum() then fails rather than wrap, and that is
 * said in a sentence (DUKA_LIMIT) rather than as a storage error. */
static duka_rc query_sum(sqlite_store *s, const char *sql, const char *column,
                         const char *business_id, int64_t *out, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s, sql, &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    bool overflow = rc != SQLITE_ROW && strstr(sqlite3_errmsg(s->db), "integer overflow") != NULL;
    sqlite3_reset(st);
    if (overflow)
        return duka_err_set(err, DUKA_LIMIT,
                            "report of business %s: its sales' %s add up to more than %lld, "
                            "which a report cannot show",
                            business_id, column, (long long)INT64_MAX);
    if (rc != SQLITE_ROW)
        return duka_db_fail(s->db, "reading the report", err);
    return DUKA_OK;
}

static duka_rc sq_report(duka_hub_store *hs, const char *business_id, json_t **out,
                        duka_err *err)
{
    sqlite_store *s = sq(hs);
    int64_t sales = 0, conflicts = 0, total = 0, tax = 0, refunds = 0, rtotal = 0, rtax = 0;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    duka_rc qrc;
    /* Sales and refunds apart: a refund is not a sale, its money went the other way. */
    if ((qrc = query_int(s, "SELECT count(*) FROM sales WHERE business_id = ?1 AND kind = 'sale'",
                         business_id, &sales, err)) != DUKA_OK ||
        (qrc = query_sum(s,
                         "SELECT coalesce(sum(total_cents),0) FROM sales WHERE business_id = ?1"
                         " AND kind = 'sale'",
                         "total_cents", business_id, &total, err)) != DUKA_OK ||
        (qrc = query_sum(s,
                         "SELECT coalesce(sum(tax_cents),0) FROM sales WHERE business_id = ?1"
                         " AND kind = 'sale'",
                         "tax_cents", business_id, &tax, err)) != DUKA_OK ||
        (qrc = query_int(s,
                         "SELECT count(*) FROM sales WHERE business_id = ?1 AND kind = 'refund'",
                         business_id, &refunds, err)) != DUKA_OK ||
        (qrc = query_sum(s,
                         "SELECT coalesce(sum(total_cents),0) FROM sales WHERE business_id = ?1"
                         " AND kind = 'refund'",
                         "refund total_cents", business_id, &rtotal, err)) != DUKA_OK ||
        (qrc = query_sum(s,
                         "SELECT coalesce(sum(tax_cents),0) FROM sales WHERE business_id = ?1"
                         " AND kind = 'refund'",
                         "refund tax_cents", business_id, &rtax, err)) != DUKA_OK ||
        (qrc = query_int(s, "SELECT count(*) FROM conflicts WHERE business_id = ?1", business_id,
                         &conflicts, err)) != DUKA_OK)
        return qrc;
    if (duka_sq_stmt(s,
                        "SELECT receipt_no FROM sales WHERE business_id = ?1 AND kind = 'sale'"
                        " ORDER BY receipt_no",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    json_t *receipts = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(receipts, json_string((const char *)sqlite3_column_text(st, 0)));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(receipts);
        return duka_db_fail(s->db, "reading the report", err);
    }
    *out = json_pack("{s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "sales", (json_int_t)sales,
                     "receipts", receipts, "conflicts", (json_int_t)conflicts, "total_cents",
                     (json_int_t)total, "tax_cents", (json_int_t)tax, "refunds",
                     (json_int_t)refunds, "refund_cents", (json_int_t)rtotal, "refund_tax_cents",
                     (json_int_t)rtax);
    return DUKA_OK;
}

static duka_rc sq_conflict_page(duka_hub_store *hs, const char *business_id, int64_t before_id,
                                int limit, json_t **out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                 "SELECT c.id, c.kind, c.entity_id, c.command_id, c.existing_command_id,"
                 " coalesce(d.terminal, ''), c.payload, c.created_ms"
                 " FROM conflicts c LEFT JOIN devices d ON d.id = c.device_id"
                 " WHERE c.business_id = ?1 AND (?2 = 0 OR c.id < ?2)"
                 " ORDER BY c.id DESC LIMIT ?3",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    sqlite3_bind_int64(st, 2, before_id);
    sqlite3_bind_int(st, 3, limit);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *existing = sqlite3_column_text(st, 4);
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:s, s:I}", "id",
                           (json_int_t)sqlite3_column_int64(st, 0), "kind",
                           (const char *)sqlite3_column_text(st, 1), "receipt_no",
                           (const char *)sqlite3_column_text(st, 2), "command_id",
                           (const char *)sqlite3_column_text(st, 3), "existing_command_id",
                           existing ? json_string((const char *)existing) : json_null(),
                           "terminal", (const char *)sqlite3_column_text(st, 5), "payload",
                           (const char *)sqlite3_column_text(st, 6), "detected",
                           (json_int_t)sqlite3_column_int64(st, 7)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(s->db, "reading conflicts", err);
    }
    *out = json_pack("{s:o}", "conflicts", arr);
    return DUKA_OK;
}

static duka_rc sq_receipt_floor(duka_hub_store *hs, const char *business_id, const char *terminal,
                               int since_day, json_t **out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                 "SELECT receipt_day, max(receipt_seq) FROM sales"
                 " WHERE business_id = ?1 AND terminal = ?2 AND receipt_day >= ?3"
                 " GROUP BY receipt_day",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, terminal);
    sqlite3_bind_int(st, 3, since_day);
    json_t *floor = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char day[16];
        snprintf(day, sizeof(day), "%lld", (long long)sqlite3_column_int64(st, 0));
        json_object_set_new(floor, day, json_integer(sqlite3_column_int64(st, 1)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(floor);
        return duka_db_fail(s->db, "reading receipt numbers", err);
    }
    *out = floor;
    return DUKA_OK;
}

static duka_rc sq_device_revoke(duka_hub_store *hs, const char *business_id, const char *terminal,
                               int64_t now_ms, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                 "UPDATE devices SET revoked_ms = ?3"
                 " WHERE business_id = ?1 AND terminal = ?2 AND revoked_ms IS NULL",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    duka_db_bind_text(st, 2, terminal);
    sqlite3_bind_int64(st, 3, now_ms);
    if (step_done(s, st, "revoking the device", err) != DUKA_OK)
        return DUKA_STORE;
    if (sqlite3_changes(s->db) == 0)
        return duka_err_set(err, DUKA_NOTFOUND,
                            "no active device for terminal '%s' in business %s", terminal,
                            business_id);
    return DUKA_OK;
}

static duka_rc sq_audit(duka_hub_store *hs, const char *business_id, int64_t device_id,
                       const char *event, const char *detail, int64_t now_ms, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                 "INSERT INTO audit_log(created_ms, business_id, device_id, event, detail)"
                 " VALUES(?1, ?2, ?3, ?4, ?5)",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, now_ms);
    duka_db_bind_text(st, 2, business_id);
    if (device_id > 0)
        sqlite3_bind_int64(st, 3, device_id);
    else
        sqlite3_bind_null(st, 3);
    duka_db_bind_text(st, 4, event);
    duka_db_bind_text(st, 5, detail);
    return step_done(s, st, "writing the audit log", err);
}

static duka_rc sq_audit_list(duka_hub_store *hs, const char *business_id, int limit, json_t **out,
                            duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                 "SELECT created_ms, business_id, device_id, event, detail FROM audit_log"
                 " WHERE ?1 IS NULL OR business_id = ?1 OR business_id IS NULL"
                 " ORDER BY id DESC LIMIT ?2",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    sqlite3_bind_int(st, 2, limit);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char iso[40];
        duka_clock_format_iso(sqlite3_column_int64(st, 0), iso, sizeof(iso));
        const unsigned char *b = sqlite3_column_text(st, 1);
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:o, s:s, s:s}", "time", iso, "business_id",
                           b ? json_string((const char *)b) : json_null(), "device_id",
                           sqlite3_column_type(st, 2) == SQLITE_NULL
                               ? json_null()
                               : json_integer(sqlite3_column_int64(st, 2)),
                           "event", sqlite3_column_text(st, 3), "detail",
                           sqlite3_column_text(st, 4)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(s->db, "reading the audit log", err);
    }
    *out = json_pack("{s:o}", "events", arr);
    return DUKA_OK;
}

static duka_rc sq_cashier_list(duka_hub_store *hs, const char *business_id,
                               int64_t known_version, json_t **out, duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    /* One read: the version, and the rows only when it is not the one the till knows. */
    if (duka_sq_stmt(s,
                 "SELECT b.cashiers_version, c.id, c.name, c.role, c.pin_hash, c.active"
                 " FROM businesses b LEFT JOIN cashiers c"
                 "   ON c.business_id = b.id AND b.cashiers_version <> ?2"
                 " WHERE b.id = ?1 ORDER BY lower(c.name), c.id",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    sqlite3_bind_int64(st, 2, known_version);
    json_t *list = json_array();
    int64_t version = -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        version = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            continue;
        json_array_append_new(
            list, json_pack("{s:s, s:o, s:s, s:s, s:b}", "id", sqlite3_column_text(st, 1), "name",
                            duka_hub_json_text((const char *)sqlite3_column_text(st, 2)), "role",
                            sqlite3_column_text(st, 3), "pin_hash", sqlite3_column_text(st, 4),
                            "active", sqlite3_column_int(st, 5)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(list);
        return duka_db_fail(s->db, "reading cashiers", err);
    }
    if (version < 0) {
        json_decref(list);
        return duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found (see: duka hub init)",
                            business_id);
    }
    if (version == known_version) {
        json_decref(list);
        return DUKA_OK;
    }
    *out = json_pack("{s:I, s:o}", "version", (json_int_t)version, "list", list);
    return DUKA_OK;
}

static duka_rc sq_cashier_put(duka_hub_store *hs, const char *business_id,
                              const duka_hub_cashier *c, bool insert, int64_t now_ms,
                              duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    if (duka_sq_stmt(s,
                 insert ? "INSERT INTO cashiers(id, business_id, name, role, pin_hash, active,"
                          " created_ms, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
                        : "UPDATE cashiers SET name = ?3, role = ?4, pin_hash = ?5, active = ?6,"
                          " updated_ms = ?7 WHERE id = ?1 AND business_id = ?2",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, c->id);
    duka_db_bind_text(st, 2, business_id);
    duka_db_bind_text(st, 3, c->name);
    duka_db_bind_text(st, 4, c->role);
    duka_db_bind_text(st, 5, c->pin_hash);
    sqlite3_bind_int(st, 6, c->active ? 1 : 0);
    sqlite3_bind_int64(st, 7, now_ms);
    int rc = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(s->db);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        if (ext == SQLITE_CONSTRAINT_UNIQUE)
            return duka_err_set(err, DUKA_CONFLICT, "--name: a cashier '%s' exists already in "
                                "business %s", c->name, business_id);
        return duka_db_fail(s->db, "writing the cashier", err);
    }
    if (sqlite3_changes(s->db) == 0)
        return duka_err_set(err, DUKA_NOTFOUND, "no cashier %s in business %s", c->id,
                            business_id);
    if (duka_sq_stmt(s,
                 "UPDATE businesses SET cashiers_version = cashiers_version + 1 WHERE id = ?1",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    if (step_done(s, st, "raising the cashier version", err) != DUKA_OK)
        return DUKA_STORE;
    if (sqlite3_changes(s->db) == 0)
        return duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found (see: duka hub init)",
                            business_id);
    return DUKA_OK;
}

static duka_rc sq_report_cashiers(duka_hub_store *hs, const char *business_id, json_t **out,
                                  duka_err *err)
{
    sqlite_store *s = sq(hs);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_sq_stmt(s,
                 "SELECT cashier_id, max(cashier_name), count(*), sum(total_cents) FROM sales"
                 " WHERE business_id = ?1 AND kind = 'sale' GROUP BY cashier_id ORDER BY lower(max(cashier_name)),"
                 " cashier_id",
                 &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, business_id);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:I, s:I}", "cashier_id", sqlite3_column_text(st, 0),
                           "name", duka_hub_json_text((const char *)sqlite3_column_text(st, 1)),
                           "sales", (json_int_t)sqlite3_column_int64(st, 2), "total_cents",
                           (json_int_t)sqlite3_column_int64(st, 3)));
    bool overflow = rc != SQLITE_DONE && strstr(sqlite3_errmsg(s->db), "integer overflow") != NULL;
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        if (overflow)
            return duka_err_set(err, DUKA_LIMIT, "report of business %s: a cashier's sales add "
                                "up to more than a report can show", business_id);
        return duka_db_fail(s->db, "reading the report", err);
    }
    *out = json_pack("{s:o}", "cashiers", arr);
    return DUKA_OK;
}

static const duka_hub_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_store_close,
    .begin = sq_store_begin,
    .commit = sq_store_commit,
    .rollback = sq_store_rollback,
    .checkpoint = sq_store_checkpoint,
    .savepoint = sq_store_savepoint,
    .release = sq_store_release,
    .rollback_to = sq_store_rollback_to,
    .prefetch = NULL, /* lookups are in-process: nothing to gain */
    .business_create = sq_business_create,
    .business_check = sq_business_check,
    .business_list = sq_business_list,
    .business_update = sq_business_update,
    .device_add = sq_device_add,
    .device_revoke = sq_device_revoke,
    .device_authenticate = sq_device_authenticate,
    .device_list = sq_device_list,
    .device_bind_till = sq_device_bind_till,
    .audit = sq_audit,
    .audit_list = sq_audit_list,
    .product_upsert = sq_product_upsert,
    .product_archive = sq_product_archive,
    .changes_since = sq_changes_since,
    .product_list = sq_product_list,
    .stock_levels = sq_stock_levels,
    .command_find = sq_command_find,
    .command_record = sq_command_record,
    .sale_owner = sq_sale_owner,
    .sale_insert = sq_sale_insert,
    .conflict_insert = sq_conflict_insert,
    .receipt_floor = sq_receipt_floor,
    .conflict_page = sq_conflict_page,
    .report = sq_report,
    .cashier_list = sq_cashier_list,
    .cashier_put = sq_cashier_put,
    .report_cashiers = sq_report_cashiers,
    DUKA_SQ_OUTBOX_OPS,
};

duka_rc duka_hub_store_sqlite_open(const char *path, bool create, duka_hub_store **out,
                                   duka_err *err)
{
    *out = NULL;
    sqlite_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory opening the hub store");
    duka_rc rc = duka_db_open(path, DUKA_DB_HUB, create, hub_migrations,
                              (int)(sizeof(hub_migrations) / sizeof(hub_migrations[0])), &s->db,
                              err);
    if (rc != DUKA_OK) {
        free(s);
        return rc;
    }
    s->base.ops = &sqlite_ops;
    *out = &s->base;
    return DUKA_OK;
}
