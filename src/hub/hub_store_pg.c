/*
 * hub_store_pg.c — the hub store on PostgreSQL (see hub_store.h), for a chain whose tills
 * outgrow one SQLite file: several stateless `duka hub` processes over one database.
 *
 * Seen through hub_store.h it behaves exactly as hub_store_sqlite.c: the same results, error
 * codes and messages, the same JSON. What differs is how it talks to the database:
 *
 * - A push is set-based, not one round trip per row. Inside a transaction the writes of a
 *   push (sales with lines and payments, conflicts, processed command ids, audit rows) are
 *   buffered in memory column by column (pg_rows.h: PostgreSQL binary arrays);
 *   command_find and sale_owner answer from what prefetch loaded
 *   for the batch (one round trip) plus that buffer, so a command id or a receipt number
 *   repeated inside one batch behaves as on SQLite; savepoint / release / rollback_to mark
 *   and truncate the buffer (no round trip). COMMIT flushes everything in ONE statement
 *   (data-modifying CTEs over unnest of those arrays), claiming the command ids first with
 *   INSERT … ON CONFLICT DO NOTHING RETURNING and writing the effects only for the ids it
 *   claimed. Fewer ids claimed (or fewer receipt numbers) than buffered means another hub
 *   process committed some of them first: ROLLBACK and DUKA_BUSY, and hub_push.c applies the
 *   batch again, where they answer "duplicate" (or "conflict").
 * - Row-level security: every table holding a business's rows is ENABLE + FORCE ROW LEVEL
 *   SECURITY with a policy on the per-transaction setting duka.business_id, which every
 *   operation that knows its business sets (set_config(…, true)) in its transaction. Two
 *   narrow, documented exceptions: token authentication (it knows only a device id) reads
 *   one devices row through duka_device_for_token(); and command_ids, the hub-wide set of
 *   command ids (nothing but the ids), tells a batch that an id is taken by another business.
 * - Roles: the tables' owner runs the migrations (duka hub init, create = true); the hub runs
 *   as the role duka_hub (DUKA_PG_APP_ROLE), which may read and write rows and nothing else.
 * - Reconnect: begin (and authentication) reset a connection the server dropped and retry
 *   once; a statement that fails mid-transaction is a storage error (the hub answers 503 with
 *   Retry-After and the till resends: nothing is lost). Statements are prepared once per
 *   connection, again after a reset.
 *
 * Workload: one connection per store, used by one thread at a time (the hub's store mutex).
 * A push is a handful of round trips whatever its size: BEGIN, the business setting, the
 * prefetch, the flush, COMMIT.
 */
#include "hub/hub_store_pg_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/uuid.h"
#include "hub/pg_rows.h"

/* The role `duka hub` runs as. The owner grants it what it needs in the migrations; any login
 * role that is a member of it (GRANT duka_hub TO …) works as well. */
#define DUKA_PG_APP_ROLE "duka_hub"
/* pg_advisory_xact_lock key serialising two `duka hub init` migrating one database ("duka"). */
#define DUKA_PG_MIGRATION_LOCK 0x64756b61LL
/* pg_advisory_xact_lock key serialising the commands that check a business's name against
 * the others before writing it ("dukaname", 0x64756b616e616d65; in decimal, for the SQL). */
#define DUKA_PG_BUSINESS_NAME_LOCK 7238810042275818853

/* ---- schema ---- */

/* Version 1 mirrors the SQLite schema (hub_store_sqlite.c): the same tables, columns, unique
 * constraints and indexes, BIGINT identity ids. Additions, each for row-level security:
 * sale_lines and payments carry their sale's business_id (a policy on the row itself instead
 * of a lookup of the sale per row, which a statement inserting sales and lines together could
 * not see); command_ids holds every command id the hub has processed, nothing else.
 *
 * The tables a push writes (sales, sale_lines, payments) have no foreign keys:
 * their only writer is flush_sql, which takes the sale ids from its own INSERT … RETURNING,
 * the business from the transaction's and the device from the authenticated token, and
 * devices and businesses are never deleted (a device is revoked). Checking those keys was a
 * third of the database's CPU per push (a SELECT … FOR KEY SHARE per row, from a trigger).
 * The admin tables (devices, products) keep theirs. */
static const char pg_schema_v1[] =
    "CREATE TABLE businesses ("
    "  id text PRIMARY KEY,"
    "  name text NOT NULL,"
    "  change_seq bigint NOT NULL DEFAULT 0," /* catalog change sequence, per business */
    "  created_ms bigint NOT NULL"
    ");"
    "CREATE TABLE devices ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  business_id text NOT NULL REFERENCES businesses(id),"
    "  terminal text NOT NULL,"
    "  token_hash text NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  revoked_ms bigint,"
    "  UNIQUE (business_id, terminal)"
    ");"
    "CREATE TABLE products ("
    "  business_id text NOT NULL REFERENCES businesses(id),"
    "  sku text NOT NULL,"
    "  name text NOT NULL,"
    "  price_cents bigint NOT NULL CHECK (price_cents >= 0),"
    "  tax_band text NOT NULL CHECK (tax_band IN ('A','B','C','D','E')),"
    "  category text NOT NULL DEFAULT '',"
    "  deleted integer NOT NULL DEFAULT 0,"
    "  change_seq bigint NOT NULL,"
    "  updated_ms bigint NOT NULL,"
    "  PRIMARY KEY (business_id, sku)"
    ");"
    "CREATE INDEX products_changes ON products(business_id, change_seq);"
    "CREATE TABLE sales ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  business_id text NOT NULL,"
    "  device_id bigint NOT NULL,"
    "  command_id text NOT NULL UNIQUE,"
    "  receipt_no text NOT NULL,"
    "  terminal text NOT NULL,"
    "  receipt_day integer NOT NULL,"
    "  receipt_seq bigint NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  received_ms bigint NOT NULL,"
    "  total_cents bigint NOT NULL,"
    "  tax_cents bigint NOT NULL,"
    "  UNIQUE (business_id, receipt_no)"
    ");"
    "CREATE INDEX sales_receipt_floor ON sales(business_id, terminal, receipt_day);"
    "CREATE TABLE sale_lines ("
    "  sale_id bigint NOT NULL,"
    "  line_no integer NOT NULL,"
    "  business_id text NOT NULL,"
    "  sku text NOT NULL,"
    "  name text NOT NULL,"
    "  qty_milli bigint NOT NULL,"
    "  unit_price_cents bigint NOT NULL,"
    "  tax_band text NOT NULL,"
    "  line_total_cents bigint NOT NULL,"
    "  tax_cents bigint NOT NULL,"
    "  PRIMARY KEY (sale_id, line_no)"
    ");"
    "CREATE TABLE payments ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  sale_id bigint NOT NULL,"
    "  business_id text NOT NULL,"
    "  method text NOT NULL,"
    "  amount_cents bigint NOT NULL,"
    "  reference text NOT NULL,"
    "  status text NOT NULL"
    ");"
    "CREATE TABLE stock_ledger ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  business_id text NOT NULL,"
    "  sku text NOT NULL,"
    "  delta_milli bigint NOT NULL,"
    "  reason text NOT NULL,"
    "  ref text NOT NULL,"
    "  created_ms bigint NOT NULL"
    ");"
    "CREATE INDEX stock_ledger_sku ON stock_ledger(business_id, sku);"
    "CREATE TABLE processed_commands ("
    "  command_id text PRIMARY KEY,"
    "  business_id text NOT NULL,"
    "  device_id bigint NOT NULL,"
    "  command_type text NOT NULL,"
    "  status text NOT NULL,"
    "  payload_hash text NOT NULL,"
    "  receipt_no text NOT NULL,"
    "  processed_ms bigint NOT NULL"
    ");"
    "CREATE TABLE command_ids (command_id text PRIMARY KEY);"
    "CREATE TABLE conflicts ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  business_id text NOT NULL,"
    "  device_id bigint NOT NULL,"
    "  kind text NOT NULL,"
    "  entity_id text NOT NULL,"
    "  command_id text NOT NULL,"
    "  existing_command_id text,"
    "  payload text NOT NULL,"
    "  detail text NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  resolved_ms bigint,"
    "  resolved_by text,"
    "  resolution text"
    ");"
    "CREATE INDEX conflicts_business ON conflicts(business_id);"
    "CREATE TABLE audit_log ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  created_ms bigint NOT NULL,"
    "  business_id text,"
    "  device_id bigint,"
    "  event text NOT NULL,"
    "  detail text NOT NULL"
    ");"
    "CREATE INDEX audit_log_business ON audit_log(business_id, id);";

static const char pg_schema_v1_security[] =
    /* Row-level security, forced on the owner too: a row is visible and writable only in a
     * transaction whose duka.business_id names its business. With nothing set,
     * current_setting(…, true) is NULL (or '' after a transaction that set it) and no row
     * matches. */
    "DO $$ DECLARE t text; BEGIN"
    "  FOREACH t IN ARRAY ARRAY['devices','products','sales','sale_lines','payments',"
    "      'stock_ledger','processed_commands','conflicts'] LOOP"
    "    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);"
    "    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);"
    "    EXECUTE format('CREATE POLICY %I ON %I"
    "        USING (business_id = current_setting(''duka.business_id'', true))"
    "        WITH CHECK (business_id = current_setting(''duka.business_id'', true))',"
    "        t || '_of_business', t);"
    "  END LOOP;"
    "END $$;"
    "ALTER TABLE businesses ENABLE ROW LEVEL SECURITY;"
    "ALTER TABLE businesses FORCE ROW LEVEL SECURITY;"
    "CREATE POLICY businesses_itself ON businesses"
    "  USING (id = current_setting('duka.business_id', true))"
    "  WITH CHECK (id = current_setting('duka.business_id', true));"
    /* Events no business could be named for (a malformed or unknown token) belong to all. */
    "ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;"
    "ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;"
    "CREATE POLICY audit_log_of_business ON audit_log"
    "  USING (business_id IS NULL OR business_id = current_setting('duka.business_id', true))"
    "  WITH CHECK (business_id IS NULL"
    "      OR business_id = current_setting('duka.business_id', true));"
    /* The exception for token authentication, which knows only the device id in the token:
     * while duka.auth_device_id is set — only inside duka_device_for_token(), which sets it,
     * reads, and clears it — that one devices row may be read (not written). It shows the
     * device's business, terminal and token hash; nothing of any other row. */
    "CREATE POLICY devices_token_check ON devices FOR SELECT"
    "  USING (id = nullif(current_setting('duka.auth_device_id', true), '')::bigint);"
    "CREATE FUNCTION duka_device_for_token(p_device_id bigint)"
    "  RETURNS TABLE (o_business_id text, o_terminal text, o_token_hash text)"
    "  LANGUAGE plpgsql AS $$"
    "BEGIN"
    "  PERFORM set_config('duka.auth_device_id', p_device_id::text, true);"
    "  RETURN QUERY SELECT d.business_id, d.terminal, d.token_hash FROM devices d"
    "    WHERE d.id = p_device_id AND d.revoked_ms IS NULL;"
    "  PERFORM set_config('duka.auth_device_id', '', true);"
    "END $$;";

static const char pg_schema_v1_grants[] =
    /* The hub's role: rows, never DDL; no DELETE anywhere (sales are facts, logs append). */
    "DO $$ BEGIN"
    "  EXECUTE format('GRANT USAGE ON SCHEMA %I TO " DUKA_PG_APP_ROLE "', current_schema());"
    "END $$;"
    "GRANT SELECT, INSERT, UPDATE ON businesses, devices, products TO " DUKA_PG_APP_ROLE ";"
    "GRANT SELECT, INSERT ON sales, sale_lines, payments, stock_ledger, processed_commands,"
    "  command_ids, conflicts, audit_log TO " DUKA_PG_APP_ROLE ";"
    "GRANT SELECT ON schema_migrations TO " DUKA_PG_APP_ROLE ";"
    "REVOKE ALL ON FUNCTION duka_device_for_token(bigint) FROM PUBLIC;"
    "GRANT EXECUTE ON FUNCTION duka_device_for_token(bigint) TO " DUKA_PG_APP_ROLE ";";

/* Version 2, for the cost of a push (a 100,000-sale catch-up spent most of the database's
 * time writing index entries):
 * - A sale's stock deltas are its lines. The ledger kept a row per sale line that repeated
 *   the line (sku, quantity, receipt), with two index entries: a quarter of the flush.
 *   stock_ledger now holds the other movements (imports), stock_movements shows every delta
 *   (sales' from their lines; security_invoker, so row-level security applies as to the
 *   tables), and a SKU's level is the sum of both (sale_lines_sku). The sale rows earlier
 *   pushes wrote to the ledger are what the view now derives, so they go — by the owner,
 *   with row security lifted for that one statement, since no business is set.
 * - sales.command_id is no longer UNIQUE. A command's effect is written once by the primary
 *   key of processed_commands: flush_sql writes a sale only for a command id its own INSERT …
 *   ON CONFLICT DO NOTHING claimed in the same statement, and the receipt number stays unique
 *   per business. Nothing looks a sale up by its command id. */
static const char pg_schema_v2[] =
    "ALTER TABLE sales DROP CONSTRAINT sales_command_id_key;"
    "CREATE INDEX sale_lines_sku ON sale_lines(business_id, sku);"
    "ALTER TABLE stock_ledger NO FORCE ROW LEVEL SECURITY;"
    "DELETE FROM stock_ledger WHERE reason = 'sale';"
    "ALTER TABLE stock_ledger FORCE ROW LEVEL SECURITY;"
    "CREATE VIEW stock_movements WITH (security_invoker = true) AS"
    "  SELECT business_id, sku, delta_milli, reason, ref, created_ms FROM stock_ledger"
    "  UNION ALL"
    "  SELECT l.business_id, l.sku, -l.qty_milli, 'sale', s.receipt_no, s.received_ms"
    "    FROM sale_lines l JOIN sales s ON s.id = l.sale_id;"
    "GRANT SELECT ON stock_movements TO " DUKA_PG_APP_ROLE ";";

/* Version 3 (issue 10, what a new user hit), as on SQLite: a business's KRA PIN, and a
 * device's till binding (till_id: the Duka-Till-Id of the one till database its token
 * belongs to, NULL until one is seen; till_bound_ms: since when). And two things only
 * PostgreSQL needs, for row-level security:
 *
 * - The business directory, the third narrow exception. The admin commands must list every
 *   business (duka business list, so a lost business id is found without SQL) and check a
 *   new name against all of them (duka hub init), which a transaction naming one business
 *   cannot see. While duka.directory is 'on' — only inside duka_business_directory(), which
 *   sets it, reads, and clears it — the businesses rows may be read (not written); the
 *   function returns their ids, names, KRA PINs and creation times, and for each its number
 *   of active devices, counted with duka.business_id set to that business in turn (no policy
 *   on devices changes). It reads nothing else: no catalog, no sale, no token hash. With
 *   p_lock it first takes a transaction-scoped advisory lock, so two `duka hub init` (or
 *   `business set`) checking the same name at once take turns. The HTTP API never calls it.
 * - Token authentication returns what a request needs besides the device, so a push, pull
 *   or whoami costs no round trip more than before: the device's till binding, and its
 *   business's name and KRA PIN (read with duka.business_id set to the device's business for
 *   that one read, then set back). The function keeps its name and its first three columns,
 *   so a hub of the version before, still serving while the owner migrates, goes on
 *   authenticating with it. */
static const char pg_schema_v3[] =
    "ALTER TABLE businesses ADD COLUMN kra_pin text NOT NULL DEFAULT '';"
    "ALTER TABLE devices ADD COLUMN till_id text, ADD COLUMN till_bound_ms bigint;"
    "CREATE POLICY businesses_directory ON businesses FOR SELECT"
    "  USING (current_setting('duka.directory', true) = 'on');"
    "CREATE FUNCTION duka_business_directory(p_lock boolean)"
    "  RETURNS TABLE (o_id text, o_name text, o_kra_pin text, o_created_ms bigint,"
    "                 o_devices bigint)"
    "  LANGUAGE plpgsql AS $$"
    "DECLARE"
    "  saved text := coalesce(current_setting('duka.business_id', true), '');"
    "  ids text[]; names text[]; pins text[]; created bigint[];"
    "BEGIN"
    "  IF p_lock THEN"
    "    PERFORM pg_advisory_xact_lock(" DUKA_STRINGIFY(DUKA_PG_BUSINESS_NAME_LOCK) ");"
    "  END IF;"
    "  PERFORM set_config('duka.directory', 'on', true);"
    "  SELECT coalesce(array_agg(b.id ORDER BY b.created_ms, b.id COLLATE \"C\"), '{}'),"
    "         coalesce(array_agg(b.name ORDER BY b.created_ms, b.id COLLATE \"C\"), '{}'),"
    "         coalesce(array_agg(b.kra_pin ORDER BY b.created_ms, b.id COLLATE \"C\"), '{}'),"
    "         coalesce(array_agg(b.created_ms ORDER BY b.created_ms, b.id COLLATE \"C\"), '{}')"
    "    INTO ids, names, pins, created FROM businesses b;"
    "  PERFORM set_config('duka.directory', '', true);"
    "  FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP"
    "    PERFORM set_config('duka.business_id', ids[i], true);"
    "    o_id := ids[i]; o_name := names[i]; o_kra_pin := pins[i]; o_created_ms := created[i];"
    "    SELECT count(*) INTO o_devices FROM devices d"
    "     WHERE d.business_id = ids[i] AND d.revoked_ms IS NULL;"
    "    RETURN NEXT;"
    "  END LOOP;"
    "  PERFORM set_config('duka.business_id', saved, true);"
    "END $$;"
    "REVOKE ALL ON FUNCTION duka_business_directory(boolean) FROM PUBLIC;"
    "GRANT EXECUTE ON FUNCTION duka_business_directory(boolean) TO " DUKA_PG_APP_ROLE ";";

static const char pg_schema_v3_auth[] =
    "DROP FUNCTION duka_device_for_token(bigint);"
    "CREATE FUNCTION duka_device_for_token(p_device_id bigint)"
    "  RETURNS TABLE (o_business_id text, o_terminal text, o_token_hash text, o_till_id text,"
    "                 o_till_bound_ms bigint, o_business_name text, o_kra_pin text)"
    "  LANGUAGE plpgsql AS $$"
    "DECLARE"
    "  saved text := coalesce(current_setting('duka.business_id', true), '');"
    "BEGIN"
    "  PERFORM set_config('duka.auth_device_id', p_device_id::text, true);"
    "  SELECT d.business_id, d.terminal, d.token_hash, d.till_id, d.till_bound_ms"
    "    INTO o_business_id, o_terminal, o_token_hash, o_till_id, o_till_bound_ms"
    "    FROM devices d WHERE d.id = p_device_id AND d.revoked_ms IS NULL;"
    "  PERFORM set_config('duka.auth_device_id', '', true);"
    "  IF o_business_id IS NULL THEN"
    "    RETURN;"
    "  END IF;"
    "  PERFORM set_config('duka.business_id', o_business_id, true);"
    "  SELECT b.name, b.kra_pin INTO o_business_name, o_kra_pin"
    "    FROM businesses b WHERE b.id = o_business_id;"
    "  PERFORM set_config('duka.business_id', saved, true);"
    "  RETURN NEXT;"
    "END $$;"
    "REVOKE ALL ON FUNCTION duka_device_for_token(bigint) FROM PUBLIC;"
    "GRANT EXECUTE ON FUNCTION duka_device_for_token(bigint) TO " DUKA_PG_APP_ROLE ";";

/* Version 4 (issue 11), as on SQLite: a business's cashiers (each PIN only as its argon2id
 * hash) with their own row-level security policy like every business table, the business's
 * cashiers_version (raised by every change; a pull compares it with the till's), and each
 * sale's cashier. The name is unique per business ignoring case (lower(), which on PostgreSQL
 * folds more than ASCII: stricter than the check above it, never looser). */
static const char pg_schema_v4[] =
    "ALTER TABLE businesses ADD COLUMN cashiers_version bigint NOT NULL DEFAULT 0;"
    "CREATE TABLE cashiers ("
    "  id text PRIMARY KEY,"
    "  business_id text NOT NULL REFERENCES businesses(id),"
    "  name text NOT NULL,"
    "  role text NOT NULL CHECK (role IN ('cashier','manager')),"
    "  pin_hash text NOT NULL,"
    "  active boolean NOT NULL DEFAULT true,"
    "  created_ms bigint NOT NULL,"
    "  updated_ms bigint NOT NULL"
    ");"
    "CREATE UNIQUE INDEX cashiers_name ON cashiers(business_id, lower(name));"
    "ALTER TABLE cashiers ENABLE ROW LEVEL SECURITY;"
    "ALTER TABLE cashiers FORCE ROW LEVEL SECURITY;"
    "CREATE POLICY cashiers_of_business ON cashiers"
    "  USING (business_id = current_setting('duka.business_id', true))"
    "  WITH CHECK (business_id = current_setting('duka.business_id', true));"
    "GRANT SELECT, INSERT, UPDATE ON cashiers TO " DUKA_PG_APP_ROLE ";"
    "ALTER TABLE sales ADD COLUMN cashier_id text NOT NULL DEFAULT '',"
    "  ADD COLUMN cashier_name text NOT NULL DEFAULT '';";

/* Version 5 (issue 12): the hub's outbox towards the outside world (outbox/hub_outbox.h; the
 * SQLite store's version 5 says what each table is). hub_outbox, its attempts, the number
 * series and the services' health are the hub's own work queue: the forwarder claims across
 * businesses and no device request reads them, so they carry no row-level security (a pull
 * counts a business's items by its id). The results the tills pull and the per-business
 * values (eTIMS device keys) do. Retention may delete done items and their attempts. */
static const char pg_schema_v5[] =
    "CREATE TABLE hub_outbox ("
    "  id bigserial PRIMARY KEY,"
    "  business_id text NOT NULL REFERENCES businesses(id),"
    "  destination text NOT NULL,"
    "  stream text NOT NULL,"
    "  seq_no bigint NOT NULL,"
    "  ref_no bigint NOT NULL DEFAULT 0,"
    "  command_type text NOT NULL,"
    "  entity_id text NOT NULL,"
    "  terminal text NOT NULL,"
    "  payload text NOT NULL,"
    "  status text NOT NULL DEFAULT 'pending' CHECK (status IN"
    "    ('pending','processing','awaiting','done','failed')),"
    "  priority integer NOT NULL,"
    "  attempts integer NOT NULL DEFAULT 0,"
    "  max_attempts integer NOT NULL,"
    "  next_attempt_ms bigint NOT NULL,"
    "  unclear boolean NOT NULL DEFAULT false,"
    "  lease_owner text,"
    "  lease_until_ms bigint,"
    "  last_error text,"
    "  error_category text,"
    "  created_ms bigint NOT NULL,"
    "  processed_ms bigint,"
    "  UNIQUE (stream, seq_no)"
    ");"
    "CREATE INDEX hub_outbox_due ON hub_outbox(destination, status, priority, stream, seq_no);"
    "CREATE INDEX hub_outbox_business ON hub_outbox(business_id, destination, status);"
    "CREATE TABLE hub_outbox_attempts ("
    "  id bigserial PRIMARY KEY,"
    "  item_id bigint NOT NULL,"
    "  attempt integer NOT NULL,"
    "  owner text NOT NULL,"
    "  finished_ms bigint NOT NULL,"
    "  duration_ms bigint NOT NULL,"
    "  outcome text NOT NULL,"
    "  http_status integer NOT NULL,"
    "  error text"
    ");"
    "CREATE INDEX hub_outbox_attempts_item ON hub_outbox_attempts(item_id);"
    "CREATE TABLE outbox_sequences (stream text PRIMARY KEY, last_no bigint NOT NULL);"
    "CREATE TABLE outbox_results ("
    "  business_id text NOT NULL,"
    "  terminal text NOT NULL,"
    "  destination text NOT NULL,"
    "  seq bigint NOT NULL,"
    "  item_id bigint NOT NULL UNIQUE,"
    "  entity_id text NOT NULL,"
    "  result text NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  PRIMARY KEY (business_id, terminal, destination, seq)"
    ");"
    "CREATE TABLE hub_kv ("
    "  business_id text NOT NULL,"
    "  key text NOT NULL,"
    "  value text NOT NULL,"
    "  updated_ms bigint NOT NULL,"
    "  PRIMARY KEY (business_id, key)"
    ");"
    "CREATE TABLE service_health ("
    "  service text PRIMARY KEY,"
    "  state text NOT NULL,"
    "  since_ms bigint NOT NULL,"
    "  updated_ms bigint NOT NULL,"
    "  detail text NOT NULL"
    ");";
static const char pg_schema_v5_security[] =
    "DO $$ DECLARE t text; BEGIN"
    "  FOREACH t IN ARRAY ARRAY['outbox_results','hub_kv'] LOOP"
    "    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);"
    "    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);"
    "    EXECUTE format('CREATE POLICY %I ON %I"
    "        USING (business_id = current_setting(''duka.business_id'', true))"
    "        WITH CHECK (business_id = current_setting(''duka.business_id'', true))',"
    "        t || '_of_business', t);"
    "  END LOOP;"
    "END $$;"
    "GRANT SELECT, INSERT, UPDATE, DELETE ON hub_outbox, hub_outbox_attempts TO " DUKA_PG_APP_ROLE ";"
    "GRANT SELECT, INSERT, UPDATE ON outbox_sequences, outbox_results, hub_kv, service_health"
    "  TO " DUKA_PG_APP_ROLE ";"
    "GRANT USAGE ON SEQUENCE hub_outbox_id_seq, hub_outbox_attempts_id_seq TO " DUKA_PG_APP_ROLE ";";

/* Version 6 (issue 12, refunds), as on SQLite: a refund is a receipt in sales with kind
 * 'refund', its sale and the eTIMS reason; each refund line names the sale's line it gives
 * back (original_line, NULL on a sale's line — which is how the stock queries, reading
 * sale_lines alone, tell a refund's line: it comes back to stock). sales and sale_lines keep
 * their row-level security. Indexes: a sale's refunds; a sale's signed invoice, which its
 * credit note names. */
static const char pg_schema_v6[] =
    "ALTER TABLE sales ADD COLUMN kind text NOT NULL DEFAULT 'sale'"
    "  CHECK (kind IN ('sale','refund'));"
    "ALTER TABLE sales ADD COLUMN original_receipt_no text;"
    "ALTER TABLE sales ADD COLUMN refund_reason text;"
    "ALTER TABLE sale_lines ADD COLUMN original_line integer;"
    "CREATE INDEX sales_original ON sales(business_id, original_receipt_no)"
    "  WHERE original_receipt_no IS NOT NULL;"
    "CREATE INDEX outbox_results_entity ON outbox_results(business_id, destination, entity_id);"
    "CREATE OR REPLACE VIEW stock_movements WITH (security_invoker = true) AS"
    "  SELECT business_id, sku, delta_milli, reason, ref, created_ms FROM stock_ledger"
    "  UNION ALL"
    "  SELECT l.business_id, l.sku, CASE WHEN l.original_line IS NULL THEN -l.qty_milli"
    "    ELSE l.qty_milli END, CASE WHEN l.original_line IS NULL THEN 'sale' ELSE 'refund' END,"
    "    s.receipt_no, s.received_ms"
    "    FROM sale_lines l JOIN sales s ON s.id = l.sale_id;";

/* Version 7 (issue 13, M-Pesa), as on SQLite: the payments Safaricom reported, per business
 * and receipt number, credited to at most one sale; under row-level security like hub_kv. */
static const char pg_schema_v7[] =
    "CREATE TABLE mpesa_receipts ("
    "  business_id text NOT NULL REFERENCES businesses(id),"
    "  receipt text NOT NULL CHECK (length(receipt) = 10),"
    "  source text NOT NULL CHECK (source IN ('c2b','stk','status')),"
    "  amount_cents bigint NOT NULL CHECK (amount_cents > 0),"
    "  phone text NOT NULL,"
    "  paid_ms bigint NOT NULL,"
    "  shortcode text NOT NULL,"
    "  reference text NOT NULL,"
    "  credited_to text,"
    "  credited_ms bigint,"
    "  received_ms bigint NOT NULL,"
    "  PRIMARY KEY (business_id, receipt)"
    ");"
    "ALTER TABLE mpesa_receipts ENABLE ROW LEVEL SECURITY;"
    "ALTER TABLE mpesa_receipts FORCE ROW LEVEL SECURITY;"
    "CREATE POLICY mpesa_receipts_of_business ON mpesa_receipts"
    "  USING (business_id = current_setting('duka.business_id', true))"
    "  WITH CHECK (business_id = current_setting('duka.business_id', true));"
    "GRANT SELECT, INSERT, UPDATE ON mpesa_receipts TO " DUKA_PG_APP_ROLE ";";

/* A version's SQL comes in parts (a C string literal is kept under 4,095 characters), all
 * run in the version's one transaction. */
#define PG_MIGRATION_PARTS_MAX 4
typedef struct pg_migration {
    int version;
    const char *sql[PG_MIGRATION_PARTS_MAX]; /* NULL-terminated when shorter */
} pg_migration;

/* Applied in order, each in its own transaction with its row in schema_migrations. Never
 * edit one that shipped: add the next version. */
static const pg_migration pg_migrations[] = {
    {1, {pg_schema_v1, pg_schema_v1_security, pg_schema_v1_grants, NULL}},
    {2, {pg_schema_v2, NULL}},
    {3, {pg_schema_v3, pg_schema_v3_auth, NULL}},
    {4, {pg_schema_v4, NULL}},
    {5, {pg_schema_v5, pg_schema_v5_security, NULL}},
    {6, {pg_schema_v6, NULL}},
    {7, {pg_schema_v7, NULL}},
};
#define PG_SCHEMA_VERSION 7

/* ---- statements, prepared once per connection ---- */

#define PG_STATEMENTS(X)                                                                         \
    X(SET_BUSINESS, "SELECT set_config('duka.business_id', $1, true)")                          \
    X(BUSINESS_CREATE,                                                                           \
      "INSERT INTO businesses(id, name, kra_pin, created_ms) VALUES($1, $2, $3, $4)")          \
    X(BUSINESS_CHECK, "SELECT 1 FROM businesses WHERE id = $1")                                  \
    X(BUSINESS_LIST,                                                                             \
      "SELECT o_id, o_name, o_kra_pin, o_created_ms, o_devices"                                 \
      " FROM duka_business_directory($1::boolean)")                                             \
    X(BUSINESS_UPDATE,                                                                           \
      "UPDATE businesses SET name = coalesce($2, name), kra_pin = coalesce($3, kra_pin)"       \
      " WHERE id = $1")                                                                          \
    X(DEVICE_ADD,                                                                                \
      "INSERT INTO devices(business_id, terminal, token_hash, created_ms) VALUES($1, $2, $3, $4)" \
      " ON CONFLICT (business_id, terminal) DO UPDATE SET token_hash = excluded.token_hash,"    \
      "   revoked_ms = NULL, till_id = NULL, till_bound_ms = NULL"                             \
      "   WHERE devices.revoked_ms IS NOT NULL"                                                 \
      " RETURNING id")                                                                          \
    X(DEVICE_AUTH,                                                                               \
      "SELECT o_business_id, o_terminal, o_token_hash, o_till_id, o_till_bound_ms,"            \
      " o_business_name, o_kra_pin FROM duka_device_for_token($1)")                             \
    X(DEVICE_REVOKE,                                                                             \
      "UPDATE devices SET revoked_ms = $3"                                                       \
      " WHERE business_id = $1 AND terminal = $2 AND revoked_ms IS NULL")                       \
    X(DEVICE_LIST,                                                                               \
      "SELECT terminal, id, revoked_ms IS NULL, created_ms, till_id IS NOT NULL FROM devices"  \
      " WHERE business_id = $1 ORDER BY terminal COLLATE \"C\", id")                            \
    X(DEVICE_BIND,                                                                               \
      "UPDATE devices SET till_id = $3, till_bound_ms = $4::bigint"                             \
      " WHERE id = $1::bigint AND business_id = $2 AND revoked_ms IS NULL"                     \
      "   AND coalesce(till_id, '') = $5")                                                       \
    X(DEVICE_BINDING,                                                                            \
      "SELECT till_id, till_bound_ms FROM devices"                                               \
      " WHERE id = $1::bigint AND business_id = $2 AND revoked_ms IS NULL")                     \
    X(AUDIT,                                                                                     \
      "INSERT INTO audit_log(created_ms, business_id, device_id, event, detail)"                \
      " VALUES($1, $2, $3, $4, $5)")                                                             \
    X(AUDIT_LIST,                                                                                \
      "SELECT created_ms, business_id, device_id, event, detail FROM audit_log"                 \
      " WHERE $1::text IS NULL OR business_id = $1 OR business_id IS NULL"                      \
      " ORDER BY id DESC LIMIT $2")                                                              \
    X(PRODUCT_UPSERT, product_upsert_sql)                                                        \
    X(PRODUCT_ARCHIVE,                                                                           \
      "WITH arch AS (UPDATE products SET deleted = 1, change_seq = $4::bigint, updated_ms = $3" \
      "          WHERE business_id = $1 AND sku = $2 AND deleted = 0 RETURNING 1)"              \
      " SELECT 1, (SELECT count(*) FROM arch)")                                                 \
    X(SEQ_TAKE,                                                                                  \
      "UPDATE businesses SET change_seq = change_seq + 1 WHERE id = $1 RETURNING change_seq")  \
    X(SEQ_STORE, "UPDATE businesses SET change_seq = $2::bigint WHERE id = $1")                 \
    X(CHANGES,                                                                                   \
      "SELECT sku, name, price_cents, tax_band, category, deleted, change_seq"                  \
      " FROM products WHERE business_id = $1 AND change_seq > $2"                               \
      " ORDER BY change_seq LIMIT $3")                                                           \
    X(PRODUCT_LIST, product_list_sql)                                                            \
    X(STOCK_LEVELS, stock_levels_sql)                                                            \
    X(CONFLICT_PAGE,                                                                             \
      "SELECT c.id, c.kind, c.entity_id, c.command_id, c.existing_command_id,"                  \
      " coalesce(d.terminal, ''), c.payload, c.created_ms"                                       \
      " FROM conflicts c LEFT JOIN devices d ON d.id = c.device_id"                              \
      " WHERE c.business_id = $1 AND ($2::bigint = 0 OR c.id < $2::bigint)"                    \
      " ORDER BY c.id DESC LIMIT $3")                                                            \
    X(COMMAND_FIND,                                                                              \
      "SELECT p.device_id, p.status, p.payload_hash, p.receipt_no"                              \
      " FROM command_ids r LEFT JOIN processed_commands p ON p.command_id = r.command_id"      \
      " WHERE r.command_id = $1")                                                                \
    X(SALE_OWNER, "SELECT command_id FROM sales WHERE business_id = $1 AND receipt_no = $2")     \
    X(PREFETCH, prefetch_sql)                                                                    \
    X(FLUSH, flush_sql)                                                                          \
    X(RECEIPT_FLOOR,                                                                             \
      "SELECT receipt_day, max(receipt_seq) FROM sales"                                         \
      " WHERE business_id = $1 AND terminal = $2 AND receipt_day >= $3 GROUP BY receipt_day")   \
    X(REPORT_TOTALS,                                                                             \
      "SELECT count(*) FILTER (WHERE kind = 'sale'),"                                           \
      " coalesce(sum(total_cents) FILTER (WHERE kind = 'sale'), 0)::text,"                       \
      " coalesce(sum(tax_cents) FILTER (WHERE kind = 'sale'), 0)::text,"                         \
      " (SELECT count(*) FROM conflicts WHERE business_id = $1),"                                \
      " count(*) FILTER (WHERE kind = 'refund'),"                                                \
      " coalesce(sum(total_cents) FILTER (WHERE kind = 'refund'), 0)::text,"                     \
      " coalesce(sum(tax_cents) FILTER (WHERE kind = 'refund'), 0)::text"                        \
      " FROM sales WHERE business_id = $1")                                                      \
    X(CASHIER_LIST,                                                                              \
      "SELECT b.cashiers_version, c.id, c.name, c.role, c.pin_hash, c.active"                   \
      " FROM businesses b LEFT JOIN cashiers c"                                                  \
      "   ON c.business_id = b.id AND b.cashiers_version <> $2::bigint"                        \
      " WHERE b.id = $1 ORDER BY lower(c.name) COLLATE \"C\", c.id COLLATE \"C\"")               \
    X(CASHIER_INSERT,                                                                            \
      "INSERT INTO cashiers(id, business_id, name, role, pin_hash, active, created_ms,"         \
      " updated_ms) VALUES($1, $2, $3, $4, $5, $6::boolean, $7::bigint, $7::bigint)")          \
    X(CASHIER_UPDATE,                                                                            \
      "UPDATE cashiers SET name = $3, role = $4, pin_hash = $5, active = $6::boolean,"          \
      " updated_ms = $7::bigint WHERE id = $1 AND business_id = $2")                            \
    X(CASHIERS_BUMP,                                                                             \
      "UPDATE businesses SET cashiers_version = cashiers_version + 1 WHERE id = $1")            \
    X(REPORT_CASHIERS,                                                                           \
      "SELECT cashier_id, max(cashier_name), count(*), sum(total_cents)::text FROM sales"      \
      " WHERE business_id = $1 AND kind = 'sale' GROUP BY cashier_id"                                              \
      " ORDER BY lower(max(cashier_name)) COLLATE \"C\", cashier_id COLLATE \"C\"")              \
    X(REPORT_RECEIPTS,                                                                           \
      "SELECT receipt_no FROM sales WHERE business_id = $1 AND kind = 'sale'"                  \
      " ORDER BY receipt_no COLLATE \"C\"")

/* A product change in one round trip: the product is written with the change number
 * next_change_seq() handed out, and when the CSV gave a stock level the ledger gets the
 * difference to the level (the ledger's movements less the quantities sold). */
static const char product_upsert_sql[] =
    "WITH seq AS (SELECT $10::bigint AS change_seq),"
    " up AS (INSERT INTO products(business_id, sku, name, price_cents, tax_band, category,"
    "          deleted, change_seq, updated_ms)"
    "        SELECT $1, $2, $3, $4, $5, $6, 0, change_seq, $7 FROM seq"
    "        ON CONFLICT (business_id, sku) DO UPDATE SET name = excluded.name,"
    "          price_cents = excluded.price_cents, tax_band = excluded.tax_band,"
    "          category = excluded.category, deleted = 0, change_seq = excluded.change_seq,"
    "          updated_ms = excluded.updated_ms"
    "        RETURNING 1),"
    " level AS (SELECT ((SELECT coalesce(sum(delta_milli), 0) FROM stock_ledger"
    "                    WHERE business_id = $1 AND sku = $2)"
    "                 - (SELECT coalesce(sum(CASE WHEN original_line IS NULL THEN qty_milli"
    "                      ELSE -qty_milli END), 0) FROM sale_lines"
    "                    WHERE business_id = $1 AND sku = $2))::bigint AS milli),"
    " ledger AS (INSERT INTO stock_ledger(business_id, sku, delta_milli, reason, ref, created_ms)"
    "            SELECT $1, $2, $8::bigint - level.milli, 'import', '', $7 FROM level, seq"
    "            WHERE $9::boolean AND level.milli <> $8::bigint RETURNING 1)"
    " SELECT (SELECT count(*) FROM seq), (SELECT count(*) FROM up), (SELECT count(*) FROM ledger)";

/* The catalog with each product's level: its ledger movements less the quantities sold
 * (stock_movements, taken apart so each half probes its index by business and SKU). */
static const char product_list_sql[] =
    "SELECT p.sku, p.name, p.price_cents, p.tax_band, p.category, p.deleted,"
    " ((SELECT coalesce(sum(g.delta_milli), 0) FROM stock_ledger g"
    "    WHERE g.business_id = p.business_id AND g.sku = p.sku)"
    "  - (SELECT coalesce(sum(CASE WHEN l.original_line IS NULL THEN l.qty_milli"
    "      ELSE -l.qty_milli END), 0) FROM sale_lines l"
    "    WHERE l.business_id = p.business_id AND l.sku = p.sku))::bigint"
    " FROM products p WHERE p.business_id = $1 AND ($2::boolean OR p.deleted = 0)"
    " ORDER BY p.sku COLLATE \"C\"";

/* Every SKU of the catalog not archived and every SKU with movements, with its level. */
static const char stock_levels_sql[] =
    "SELECT v.sku, coalesce(p.name, ''), sum(v.milli)::bigint FROM ("
    "   SELECT sku, delta_milli AS milli FROM stock_movements WHERE business_id = $1"
    "   UNION ALL"
    "   SELECT sku, 0 FROM products WHERE business_id = $1 AND deleted = 0) v"
    " LEFT JOIN products p ON p.business_id = $1 AND p.sku = v.sku"
    " GROUP BY v.sku, p.name ORDER BY v.sku COLLATE \"C\"";

/* What a batch will look up, in one round trip: for each command id, whether the hub has it
 * (command_ids) and, when it is this business's, its outcome (processed_commands: another
 * business's row is hidden by row-level security, so its columns come back NULL); and the
 * command that owns each receipt number.
 *
 * Every lookup is a LATERAL subquery with LIMIT 1 (which the planner cannot flatten into a
 * join), so the plan is a loop over the batch's keys with one unique-index probe each,
 * whatever the tables held when the plan was made. As a plain join, the generic plan built
 * on a new connection while the tables were nearly empty was a hash join over a scan of the
 * whole table, kept for the life of the connection: a catch-up of 100,000 sales read every
 * command id and every sale again for each batch (16 ms a batch by its end, a third of the
 * database's time; test_hub_push: test_lookups_probe_the_indexes). */
static const char prefetch_sql[] =
    "SELECT 'c', r.command_id, p.device_id, p.status, p.payload_hash, p.receipt_no"
    "  FROM unnest($1::text[]) AS q(id)"
    "  CROSS JOIN LATERAL (SELECT r.command_id FROM command_ids r"
    "                       WHERE r.command_id = q.id LIMIT 1) r"
    "  LEFT JOIN LATERAL (SELECT p.device_id, p.status, p.payload_hash, p.receipt_no"
    "                       FROM processed_commands p"
    "                      WHERE p.command_id = r.command_id LIMIT 1) p ON true"
    " UNION ALL "
    "SELECT 'r', s.receipt_no, NULL, s.command_id, NULL, NULL"
    "  FROM unnest($3::text[]) AS q(receipt_no)"
    "  CROSS JOIN LATERAL (SELECT s.receipt_no, s.command_id FROM sales s"
    "                       WHERE s.business_id = $2 AND s.receipt_no = q.receipt_no"
    "                       LIMIT 1) s";

/* The whole push in one statement. $1 is the business; then each buffered table (pg_rows.h)
 * column by column as binary arrays, turned back into rows by unnest: the commands $2-$8,
 * the sales $9-$24, their lines $25-$34 and payments $35-$39 (each naming its sale by the
 * sale's row number), conflicts $40-$47, audit rows $48-$52. The command ids are claimed
 * first (in id order, so two hubs claiming overlapping batches wait for each other instead of
 * deadlocking); a sale or conflict is written only when its command id was claimed (or has no
 * command in this flush); sales skip a receipt number another hub stored first. The caller
 * compares the two counts with what it buffered. */
static const char flush_sql[] =
    "WITH cmd AS ("
    " SELECT * FROM unnest($2::text[], $3::int8[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::int8[]) AS x(command_id, device_id, command_type, status,"
    " payload_hash, receipt_no, processed_ms)"
    "), claimed AS ("
    " INSERT INTO processed_commands(command_id, business_id, device_id, command_type, status,"
    " payload_hash, receipt_no, processed_ms)"
    " SELECT command_id, $1, device_id, command_type, status, payload_hash, receipt_no,"
    " processed_ms FROM cmd ORDER BY command_id"
    " ON CONFLICT (command_id) DO NOTHING"
    " RETURNING command_id"
    "), registered AS ("
    " INSERT INTO command_ids(command_id) SELECT command_id FROM claimed"
    " ON CONFLICT DO NOTHING RETURNING 1"
    "), sale_in AS ("
    " SELECT * FROM unnest($9::int4[], $10::text[], $11::int8[], $12::text[], $13::text[],"
    " $14::int4[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::int8[],"
    " $20::text[], $21::text[], $22::text[], $23::text[], $24::text[])"
    " AS x(sale_no, command_id, device_id, receipt_no, terminal, receipt_day, receipt_seq,"
    " created_ms, received_ms, total_cents, tax_cents, cashier_id, cashier_name, kind,"
    " original_receipt_no, refund_reason)"
    "), sale_new AS ("
    " INSERT INTO sales(business_id, device_id, command_id, receipt_no, terminal, receipt_day,"
    " receipt_seq, created_ms, received_ms, total_cents, tax_cents, cashier_id,"
    " cashier_name, kind, original_receipt_no, refund_reason)"
    " SELECT $1, s.device_id, s.command_id, s.receipt_no, s.terminal, s.receipt_day,"
    " s.receipt_seq, s.created_ms, s.received_ms, s.total_cents, s.tax_cents, s.cashier_id,"
    " s.cashier_name, s.kind, nullif(s.original_receipt_no, ''), nullif(s.refund_reason, '')"
    " FROM sale_in s"
    " WHERE s.command_id IN (SELECT command_id FROM claimed)"
    " OR s.command_id NOT IN (SELECT command_id FROM cmd)"
    " ORDER BY s.receipt_no"
    " ON CONFLICT DO NOTHING"
    " RETURNING id, command_id"
    "), stored AS ("
    " SELECT n.id, s.sale_no, s.receipt_no, s.received_ms"
    " FROM sale_new n JOIN sale_in s ON s.command_id = n.command_id"
    "), line_in AS ("
    " SELECT * FROM unnest($25::int4[], $26::int4[], $27::text[], $28::text[], $29::int8[],"
    " $30::int8[], $31::text[], $32::int8[], $33::int8[], $34::int4[]) AS l(sale_no, line_no,"
    " sku, name, qty_milli, unit_price_cents, tax_band, line_total_cents, tax_cents,"
    " original_line)"
    "), line_new AS ("
    " INSERT INTO sale_lines(sale_id, line_no, business_id, sku, name, qty_milli,"
    " unit_price_cents, tax_band, line_total_cents, tax_cents, original_line)"
    " SELECT n.id, l.line_no, $1, l.sku, l.name, l.qty_milli, l.unit_price_cents, l.tax_band,"
    " l.line_total_cents, l.tax_cents, nullif(l.original_line, 0)"
    " FROM stored n JOIN line_in l ON l.sale_no = n.sale_no"
    " RETURNING 1"
    "), payment_new AS ("
    " INSERT INTO payments(sale_id, business_id, method, amount_cents, reference, status)"
    " SELECT n.id, $1, p.method, p.amount_cents, p.reference, p.status"
    " FROM stored n JOIN unnest($35::int4[], $36::text[], $37::int8[], $38::text[],"
    " $39::text[]) WITH ORDINALITY AS p(sale_no, method, amount_cents, reference, status,"
    " k) ON p.sale_no = n.sale_no"
    " ORDER BY p.k"
    " RETURNING 1"
    "), conflict_new AS ("
    " INSERT INTO conflicts(business_id, device_id, kind, entity_id, command_id,"
    " existing_command_id, payload, detail, created_ms)"
    " SELECT $1, c.device_id, c.kind, c.entity_id, c.command_id, c.existing_command_id,"
    " c.payload, c.detail, c.created_ms"
    " FROM unnest($40::int8[], $41::text[], $42::text[], $43::text[], $44::text[],"
    " $45::text[], $46::text[], $47::int8[]) WITH ORDINALITY AS c(device_id, kind,"
    " entity_id, command_id, existing_command_id, payload, detail, created_ms, k)"
    " WHERE c.command_id IN (SELECT command_id FROM claimed)"
    " OR c.command_id NOT IN (SELECT command_id FROM cmd)"
    " ORDER BY c.k"
    " RETURNING 1"
    "), audit_new AS ("
    " INSERT INTO audit_log(created_ms, business_id, device_id, event, detail)"
    " SELECT a.created_ms, a.business_id, a.device_id, a.event, a.detail"
    " FROM unnest($48::int8[], $49::text[], $50::int8[], $51::text[], $52::text[])"
    " WITH ORDINALITY AS a(created_ms, business_id, device_id, event, detail, k)"
    " ORDER BY a.k"
    " RETURNING 1"
    ")"
    " SELECT (SELECT count(*) FROM claimed), (SELECT count(*) FROM sale_new)";

typedef enum pg_stmt {
#define PG_STMT_ENUM(name, sql) ST_##name,
    PG_STATEMENTS(PG_STMT_ENUM)
#undef PG_STMT_ENUM
        ST_COUNT
} pg_stmt;

static const char *const stmt_sql[] = {
#define PG_STMT_SQL(name, sql) sql,
    PG_STATEMENTS(PG_STMT_SQL)
#undef PG_STMT_SQL
};

static const char *const stmt_name[] = {
#define PG_STMT_NAME(name, sql) "duka_" #name,
    PG_STATEMENTS(PG_STMT_NAME)
#undef PG_STMT_NAME
};

_Static_assert(sizeof(stmt_sql) / sizeof(stmt_sql[0]) == ST_COUNT, "one SQL text per statement");

bool duka_hub_store_pg_statement(int i, const char **name, const char **sql)
{
    if (i < 0 || i >= ST_COUNT)
        return false;
    *name = stmt_name[i];
    *sql = stmt_sql[i];
    return true;
}

/* ---- the store ---- */

/* The push buffer's tables, in the order of flush_sql's parameters ($2 on), and their
 * columns. */
enum { BUF_COMMANDS, BUF_SALES, BUF_LINES, BUF_PAYMENTS, BUF_CONFLICTS, BUF_AUDIT, BUF_COUNT };
enum { CMD_ID, CMD_DEVICE, CMD_TYPE, CMD_STATUS, CMD_HASH, CMD_RECEIPT, CMD_PROCESSED, CMD_COLS };
enum {
    SALE_NO, SALE_COMMAND, SALE_DEVICE, SALE_RECEIPT, SALE_TERMINAL, SALE_DAY, SALE_SEQ,
    SALE_CREATED, SALE_RECEIVED, SALE_TOTAL, SALE_TAX, SALE_CASHIER_ID, SALE_CASHIER_NAME,
    SALE_KIND, SALE_ORIGINAL, SALE_REASON, SALE_COLS
};
enum {
    LINE_SALE, LINE_NO, LINE_SKU, LINE_NAME, LINE_QTY, LINE_PRICE, LINE_BAND, LINE_TOTAL,
    LINE_TAX, LINE_ORIGINAL, LINE_COLS
};
enum { PAY_SALE, PAY_METHOD, PAY_AMOUNT, PAY_REFERENCE, PAY_STATUS, PAY_COLS };
enum {
    CONFLICT_DEVICE, CONFLICT_KIND, CONFLICT_ENTITY, CONFLICT_COMMAND, CONFLICT_EXISTING,
    CONFLICT_PAYLOAD, CONFLICT_DETAIL, CONFLICT_CREATED, CONFLICT_COLS
};
enum { AUDIT_CREATED, AUDIT_BUSINESS, AUDIT_DEVICE, AUDIT_EVENT, AUDIT_DETAIL, AUDIT_COLS };

#define T PG_COL_TEXT
#define I8 PG_COL_INT8
#define I4 PG_COL_INT4
static const pg_col_type cmd_types[CMD_COLS] = {T, I8, T, T, T, T, I8};
static const pg_col_type sale_types[SALE_COLS] = {I4, T, I8, T, T, I4, I8, I8,
                                                  I8, I8, I8, T, T, T, T, T};
static const pg_col_type line_types[LINE_COLS] = {I4, I4, T, T, I8, I8, T, I8, I8, I4};
static const pg_col_type pay_types[PAY_COLS] = {I4, T, I8, T, T};
static const pg_col_type conflict_types[CONFLICT_COLS] = {I8, T, T, T, T, T, T, I8};
static const pg_col_type audit_types[AUDIT_COLS] = {I8, T, I8, T, T};
#undef T
#undef I8
#undef I4

static const struct {
    int ncols;
    const pg_col_type *types;
} buf_layout[BUF_COUNT] = {
    [BUF_COMMANDS] = {CMD_COLS, cmd_types},       [BUF_SALES] = {SALE_COLS, sale_types},
    [BUF_LINES] = {LINE_COLS, line_types},        [BUF_PAYMENTS] = {PAY_COLS, pay_types},
    [BUF_CONFLICTS] = {CONFLICT_COLS, conflict_types}, [BUF_AUDIT] = {AUDIT_COLS, audit_types},
};

/* The flush's parameters: the business, then every column of every buffer. */
#define FLUSH_PARAMS (1 + CMD_COLS + SALE_COLS + LINE_COLS + PAY_COLS + CONFLICT_COLS + AUDIT_COLS)
_Static_assert(FLUSH_PARAMS == 52, "flush_sql numbers its parameters $1..$52");

/* A cache entry a savepoint changed: put back (old, or removed when NULL) on rollback_to.
 * A command writes at most a command id and a receipt number. */
#define PG_UNDO_MAX 4
typedef struct pg_undo {
    bool receipt; /* receipt_cache, else cmd_cache */
    char key[DUKA_RECEIPT_NO_MAX + 1];
    json_t *old; /* a reference, or NULL */
} pg_undo;

typedef struct pg_store {
    duka_hub_store base; /* first: the interface (hub_store_impl.h) */
    PGconn *conn;
    char where[DUKA_URL_MAX + 1]; /* the URL without its password: every message names it */
    bool prepared[ST_COUNT];      /* on this connection (cleared by a reset) */
    bool in_tx;
    /* duka.business_id as set in the open transaction ("" when not set, or not cacheable). */
    char tx_business[DUKA_BUSINESS_ID_LEN + 1];

    /* The push buffer, alive from begin to commit/rollback (see the file comment).
     * cmd_cache: command id -> index into known[] (its outcome), or null when prefetched and
     * absent. receipt_cache: receipt number -> owning command id, or null when prefetched
     * and absent. buf[]: the rows the flush writes, column by column (pg_rows.h). */
    json_t *cmd_cache, *receipt_cache;
    duka_hub_command *known;
    size_t known_n, known_cap;
    pg_rows buf[BUF_COUNT];
    char buf_business[DUKA_BUSINESS_ID_LEN + 1]; /* the business every buffered row is of */
    /* The open savepoint: the buffers' marks when it was taken, and the cache entries
     * changed since, to put back on rollback_to. */
    bool savepoint_open;
    pg_rows_mark mark[BUF_COUNT];
    size_t mark_known;
    pg_undo undo[PG_UNDO_MAX];
    int undo_n;

    /* The hub outbox jobs the open transaction enqueued, written at its COMMIT after the
     * push's flush (outbox_store_pg.c). */
    duka_pg_outbox_buffer outbox;

    /* The catalog change numbers of the open transaction (next_change_seq). */
    bool seq_held;
    char seq_business[DUKA_BUSINESS_ID_LEN + 1];
    int64_t seq_last, seq_stored;
} pg_store;

static pg_store *pgs(duka_hub_store *hs)
{
    return (pg_store *)hs;
}

/* ---- messages ---- */

/* The first line of a libpq or server message, without its trailing newline. */
static void first_line(const char *msg, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", msg ? msg : "");
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0')
        snprintf(out, outlen, "no message from the server");
}

/* Sets err from a failed statement (res may be NULL) and returns the code: DUKA_BUSY for the
 * outcomes of a race with another hub (a serialization failure or deadlock, and when
 * busy_on_unique, a unique violation), DUKA_STORE for everything else (a lost connection, a
 * timeout, a permission refused). */
static duka_rc pg_fail(pg_store *s, const PGresult *res, const char *what, bool busy_on_unique,
                       duka_err *err)
{
    char line[DUKA_ERR_MSG_MAX];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    first_line(primary ? primary : PQerrorMessage(s->conn), line, sizeof(line));
    if (PQstatus(s->conn) == CONNECTION_BAD)
        return duka_err_set(err, DUKA_STORE, "PostgreSQL %s: %s: connection lost (%s)", s->where,
                            what, line);
    if (state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                          (busy_on_unique && strcmp(state, "23505") == 0)))
        return duka_err_set(err, DUKA_BUSY, "PostgreSQL %s: %s: another hub wrote the same rows "
                            "at the same time (%s)", s->where, what, line);
    return duka_err_set(err, DUKA_STORE, "PostgreSQL %s: %s: %s", s->where, what, line);
}

/* ---- connection ---- */

/* Settings every connection gets, first thing and again after a reset. synchronous_commit
 * is said explicitly: a push is answered only after its COMMIT is durable on the server,
 * whatever the server's or the role's default. Generic plans: every statement here is keyed
 * by a business and ids, never by a value whose frequency changes the plan, and planning the
 * flush anew for each push (the first five executions, by default) costs more than running
 * it. */
static duka_rc session_setup(pg_store *s, duka_err *err)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SET synchronous_commit = on; SET statement_timeout = %d;"
             " SET idle_in_transaction_session_timeout = %d;"
             " SET plan_cache_mode = force_generic_plan",
             DUKA_PG_STATEMENT_TIMEOUT_MS, DUKA_PG_IDLE_IN_TRANSACTION_TIMEOUT_MS);
    PGresult *res = PQexec(s->conn, sql);
    duka_rc rc = DUKA_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(s, res, "setting up the session", false, err);
    PQclear(res);
    memset(s->prepared, 0, sizeof(s->prepared));
    return rc;
}

/* The server dropped the connection (a restart, a failover): connect again with the same
 * parameters (at most the connect timeout) and set the session up. */
static duka_rc reconnect(pg_store *s, duka_err *err)
{
    PQreset(s->conn);
    memset(s->prepared, 0, sizeof(s->prepared));
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char line[DUKA_ERR_MSG_MAX];
        first_line(PQerrorMessage(s->conn), line, sizeof(line));
        return duka_err_set(err, DUKA_STORE, "PostgreSQL %s: connection lost, reconnecting "
                            "failed: %s", s->where, line);
    }
    duka_log(DUKA_LOG_WARN, "hub", "PostgreSQL %s: the connection was lost; reconnected",
             s->where);
    return session_setup(s, err);
}

/* Executes a prepared statement (preparing it on first use on this connection), with
 * parameters in text or binary format (lengths and formats as PQexecPrepared's; NULL: all
 * text). Returns the result when its status is want (the caller PQclears it), else NULL with
 * err set. */
static PGresult *run_stmt_bin(pg_store *s, pg_stmt id, int nparams, const char *const *values,
                              const int *lengths, const int *formats, ExecStatusType want,
                              const char *what, duka_err *err)
{
    /* The lookups into sales that every push and pull make are planned at each execution,
     * never from the cached generic plan: one made on a connection's first push, when the
     * tables were empty, chose scans that were right for 0 rows and stayed until an
     * autoanalyze; at 20,000 sales each batch's prefetch took 0.4-0.6 s of CPU (catch-up fell
     * from 16,000 to 1,500 sales/s, found by sampling pg_stat_activity). Planned with the
     * tables as they are, it takes a few ms, planning included. */
    if (id == ST_PREFETCH || id == ST_RECEIPT_FLOOR) {
        PGresult *res = PQexecParams(s->conn, stmt_sql[id], nparams, NULL, values, lengths,
                                     formats, 0);
        if (PQresultStatus(res) != want) {
            pg_fail(s, res, what, false, err);
            PQclear(res);
            return NULL;
        }
        return res;
    }
    if (!s->prepared[id]) {
        PGresult *p = PQprepare(s->conn, stmt_name[id], stmt_sql[id], 0, NULL);
        if (PQresultStatus(p) != PGRES_COMMAND_OK) {
            pg_fail(s, p, what, false, err);
            PQclear(p);
            return NULL;
        }
        PQclear(p);
        s->prepared[id] = true;
    }
    PGresult *res = PQexecPrepared(s->conn, stmt_name[id], nparams, values, lengths, formats, 0);
    if (PQresultStatus(res) != want) {
        pg_fail(s, res, what,
                id == ST_FLUSH || id == ST_CASHIER_INSERT || id == ST_CASHIER_UPDATE, err);
        PQclear(res);
        return NULL;
    }
    return res;
}

static PGresult *run_stmt(pg_store *s, pg_stmt id, int nparams, const char *const *values,
                          ExecStatusType want, const char *what, duka_err *err)
{
    return run_stmt_bin(s, id, nparams, values, NULL, NULL, want, what, err);
}

/* Runs a statement with no result rows wanted through the simple protocol (BEGIN, COMMIT). */
static duka_rc run_simple(pg_store *s, const char *sql, const char *what, duka_err *err)
{
    PGresult *res = PQexec(s->conn, sql);
    duka_rc rc = DUKA_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pg_fail(s, res, what, false, err);
    PQclear(res);
    return rc;
}

static int64_t value_int(const PGresult *res, int row, int col)
{
    return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void value_copy(const PGresult *res, int row, int col, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", PQgetvalue(res, row, col));
}

/* ---- transactions and the push buffer ---- */

static void undo_clear(pg_store *s)
{
    for (int i = 0; i < s->undo_n; i++)
        json_decref(s->undo[i].old);
    s->undo_n = 0;
}

static void buffer_clear(pg_store *s)
{
    json_object_clear(s->cmd_cache);
    json_object_clear(s->receipt_cache);
    s->known_n = 0;
    for (int b = 0; b < BUF_COUNT; b++)
        pg_rows_clear(&s->buf[b]);
    duka_pg_outbox_buffer_clear(&s->outbox);
    undo_clear(s);
    s->buf_business[0] = '\0';
    s->savepoint_open = false;
}

/* The buffered rows only (after a flush inside the transaction): the caches, the outcomes
 * they point at, the outbox jobs (written at COMMIT) and the business stay. */
static void buffer_rows_clear(pg_store *s)
{
    for (int b = 0; b < BUF_COUNT; b++)
        pg_rows_clear(&s->buf[b]);
    undo_clear(s);
}

static bool buffer_empty(const pg_store *s)
{
    for (int b = 0; b < BUF_COUNT; b++)
        if (s->buf[b].count > 0)
            return false;
    return true;
}

static duka_rc pg_begin(duka_hub_store *hs, duka_err *err)
{
    pg_store *s = pgs(hs);
    if (s->in_tx)
        return duka_err_set(err, DUKA_INTERNAL, "PostgreSQL %s: BEGIN inside a transaction",
                            s->where);
    /* A connection the server dropped while it was idle shows up here, on the first statement
     * of the next transaction: reset it and try once more. */
    for (int attempt = 0;; attempt++) {
        if (PQstatus(s->conn) != CONNECTION_OK && reconnect(s, err) != DUKA_OK)
            return DUKA_STORE;
        PGresult *res = PQexec(s->conn, "BEGIN");
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            break;
        }
        if (PQstatus(s->conn) != CONNECTION_BAD || attempt > 0) {
            duka_rc rc = pg_fail(s, res, "BEGIN", false, err);
            PQclear(res);
            return rc;
        }
        PQclear(res);
    }
    s->in_tx = true;
    s->tx_business[0] = '\0';
    s->seq_held = false;
    buffer_clear(s);
    return DUKA_OK;
}

static void pg_rollback(duka_hub_store *hs)
{
    pg_store *s = pgs(hs);
    if (!s->in_tx)
        return;
    s->in_tx = false;
    s->seq_held = false;
    buffer_clear(s);
    if (PQstatus(s->conn) == CONNECTION_OK) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
    }
}

/* Sets duka.business_id for the rest of the open transaction (once per business). */
static duka_rc use_business(pg_store *s, const char *business_id, duka_err *err)
{
    if (s->tx_business[0] != '\0' && strcmp(s->tx_business, business_id) == 0)
        return DUKA_OK;
    const char *v[1] = {business_id};
    PGresult *res = run_stmt(s, ST_SET_BUSINESS, 1, v, PGRES_TUPLES_OK, "setting the business",
                             err);
    if (res == NULL)
        return DUKA_STORE;
    PQclear(res);
    /* An id too long to be a business id is set but not remembered (it matches nothing). */
    snprintf(s->tx_business, sizeof(s->tx_business), "%s",
             strlen(business_id) <= DUKA_BUSINESS_ID_LEN ? business_id : "");
    return DUKA_OK;
}

/* An operation called outside a transaction runs in one of its own: op_begin opens it (and
 * sets the business when given), op_end commits it on success or rolls it back. Inside the
 * caller's transaction both only set the business. */
static duka_rc op_begin(pg_store *s, const char *business_id, bool *own, duka_err *err)
{
    *own = !s->in_tx;
    if (*own && pg_begin(&s->base, err) != DUKA_OK)
        return err && err->rc ? err->rc : DUKA_STORE;
    if (business_id != NULL && use_business(s, business_id, err) != DUKA_OK) {
        if (*own)
            pg_rollback(&s->base);
        return DUKA_STORE;
    }
    return DUKA_OK;
}

static duka_rc pg_commit(duka_hub_store *hs, duka_err *err);

/* Catalog change numbers. Every catalog change of a business takes the next number of
 * businesses.change_seq, and the row stays locked until COMMIT, so numbers are handed out in
 * commit order and a pull cursor can never pass a change that commits later. Within one
 * transaction the row is updated once: the first change locks it and takes a number, the
 * next ones count on in memory, and the last number is stored just before COMMIT. (Updating
 * it once per product left a chain of 100,000 row versions in one import, each update walking
 * it: 347 s for 100,000 products.) */
static duka_rc seq_store(pg_store *s, duka_err *err)
{
    if (!s->seq_held || s->seq_last == s->seq_stored)
        return DUKA_OK;
    if (use_business(s, s->seq_business, err) != DUKA_OK)
        return DUKA_STORE;
    char last[24];
    snprintf(last, sizeof(last), "%lld", (long long)s->seq_last);
    const char *v[2] = {s->seq_business, last};
    PGresult *res = run_stmt(s, ST_SEQ_STORE, 2, v, PGRES_COMMAND_OK,
                             "advancing the change sequence", err);
    if (res == NULL)
        return DUKA_STORE;
    PQclear(res);
    s->seq_stored = s->seq_last;
    return DUKA_OK;
}

static duka_rc next_change_seq(pg_store *s, const char *business_id, int64_t *seq,
                               duka_err *err)
{
    if (s->seq_held && strcmp(s->seq_business, business_id) == 0) {
        *seq = ++s->seq_last;
        return DUKA_OK;
    }
    if (seq_store(s, err) != DUKA_OK || use_business(s, business_id, err) != DUKA_OK)
        return DUKA_STORE;
    const char *v[1] = {business_id};
    PGresult *res = run_stmt(s, ST_SEQ_TAKE, 1, v, PGRES_TUPLES_OK,
                             "advancing the change sequence", err);
    if (res == NULL)
        return DUKA_STORE;
    bool found = PQntuples(res) == 1;
    *seq = found ? value_int(res, 0, 0) : 0;
    PQclear(res);
    if (!found)
        return duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found", business_id);
    s->seq_held = true;
    snprintf(s->seq_business, sizeof(s->seq_business), "%s", business_id);
    s->seq_last = s->seq_stored = *seq;
    return DUKA_OK;
}

static duka_rc op_end(pg_store *s, bool own, duka_rc rc, duka_err *err)
{
    if (!own)
        return rc;
    if (rc == DUKA_OK)
        return pg_commit(&s->base, err);
    pg_rollback(&s->base);
    return rc;
}

/* Writes everything buffered in one statement. DUKA_BUSY when another hub claimed one of the
 * command ids or stored one of the receipt numbers first. */
static duka_rc flush(pg_store *s, duka_err *err)
{
    if (use_business(s, s->buf_business, err) != DUKA_OK)
        return DUKA_STORE;
    const char *values[FLUSH_PARAMS];
    int lengths[FLUSH_PARAMS], formats[FLUSH_PARAMS];
    values[0] = s->buf_business;
    lengths[0] = 0;
    formats[0] = 0;
    int k = 1;
    for (int b = 0; b < BUF_COUNT; b++)
        for (int c = 0; c < s->buf[b].ncols; c++, k++) {
            formats[k] = 1;
            if (!pg_rows_param(&s->buf[b], c, &values[k], &lengths[k]))
                return duka_err_set(err, DUKA_NOMEM, "out of memory writing a push");
        }
    PGresult *res = run_stmt_bin(s, ST_FLUSH, FLUSH_PARAMS, values, lengths, formats,
                                 PGRES_TUPLES_OK, "writing the push", err);
    if (res == NULL)
        return err && err->rc ? err->rc : DUKA_STORE;
    int64_t claimed = value_int(res, 0, 0), stored = value_int(res, 0, 1);
    int want_claimed = s->buf[BUF_COMMANDS].count, want_stored = s->buf[BUF_SALES].count;
    PQclear(res);
    duka_rc rc = DUKA_OK;
    if (claimed != want_claimed)
        rc = duka_err_set(err, DUKA_BUSY,
                          "PostgreSQL %s: another hub applied %lld of these %d command ids first",
                          s->where, (long long)(want_claimed - claimed), want_claimed);
    else if (stored != want_stored)
        rc = duka_err_set(err, DUKA_BUSY,
                          "PostgreSQL %s: another hub stored %lld of these %d receipt numbers "
                          "first",
                          s->where, (long long)(want_stored - stored), want_stored);
    if (rc == DUKA_BUSY)
        duka_log(DUKA_LOG_INFO, "hub", "%s; the batch is applied again (race with another hub)",
                 err ? err->msg : "another hub applied part of this batch first");
    return rc;
}

/* Writes what the push buffered so far, inside the open transaction, so that the
 * transaction's own queries see it (a refund checked against a sale, or another refund, of
 * the same batch). The caches stay: they describe the same rows. */
static duka_rc pg_sync_writes(duka_hub_store *hs, duka_err *err)
{
    pg_store *s = pgs(hs);
    if (!s->in_tx || s->savepoint_open)
        return duka_err_set(err, DUKA_INTERNAL,
                            "PostgreSQL %s: writes are synced between a push's commands only",
                            s->where);
    if (buffer_empty(s))
        return DUKA_OK;
    duka_rc rc = flush(s, err);
    if (rc == DUKA_OK)
        buffer_rows_clear(s);
    return rc;
}

static duka_rc pg_commit(duka_hub_store *hs, duka_err *err)
{
    pg_store *s = pgs(hs);
    if (!s->in_tx)
        return duka_err_set(err, DUKA_INTERNAL, "PostgreSQL %s: COMMIT outside a transaction",
                            s->where);
    duka_rc rc = DUKA_OK;
    if (!buffer_empty(s))
        rc = flush(s, err);
    if (rc == DUKA_OK)
        rc = seq_store(s, err);
    /* Last before COMMIT: the outbox jobs lock their number series' row, held only from here
     * to the COMMIT, so pushes of one business queue for it as briefly as can be. */
    if (rc == DUKA_OK && duka_pg_outbox_buffer_count(&s->outbox) > 0)
        rc = duka_pg_outbox_flush(hs, err);
    if (rc == DUKA_OK)
        rc = run_simple(s, "COMMIT", "COMMIT", err);
    if (rc != DUKA_OK) {
        pg_rollback(hs);
        return rc;
    }
    s->in_tx = false;
    s->seq_held = false;
    buffer_clear(s);
    return DUKA_OK;
}

/* Savepoints live in the buffer: the only writes between savepoint and release are buffered
 * ones, so a mark and a truncate are the whole story (no round trip). */
static duka_rc pg_savepoint(duka_hub_store *hs, duka_err *err)
{
    pg_store *s = pgs(hs);
    if (!s->in_tx || s->savepoint_open)
        return duka_err_set(err, DUKA_INTERNAL,
                            "PostgreSQL %s: a savepoint needs a transaction and none open",
                            s->where);
    s->savepoint_open = true;
    for (int b = 0; b < BUF_COUNT; b++)
        pg_rows_mark_get(&s->buf[b], &s->mark[b]);
    s->mark_known = s->known_n;
    undo_clear(s);
    return DUKA_OK;
}

static duka_rc pg_release(duka_hub_store *hs, duka_err *err)
{
    pg_store *s = pgs(hs);
    if (!s->savepoint_open)
        return duka_err_set(err, DUKA_INTERNAL, "PostgreSQL %s: release without a savepoint",
                            s->where);
    s->savepoint_open = false;
    undo_clear(s);
    return DUKA_OK;
}

static void pg_rollback_to(duka_hub_store *hs)
{
    pg_store *s = pgs(hs);
    if (!s->savepoint_open)
        return;
    for (int b = 0; b < BUF_COUNT; b++)
        pg_rows_truncate(&s->buf[b], &s->mark[b]);
    s->known_n = s->mark_known;
    for (int i = s->undo_n; i-- > 0;) {
        const pg_undo *u = &s->undo[i];
        json_t *map = u->receipt ? s->receipt_cache : s->cmd_cache;
        if (u->old != NULL)
            json_object_set(map, u->key, u->old);
        else
            json_object_del(map, u->key);
    }
    undo_clear(s);
    s->savepoint_open = false;
}

/* Sets map[key] = value (taking its reference), remembering the old entry for rollback_to. */
static duka_rc cache_set(pg_store *s, json_t *map, const char *key, json_t *value, duka_err *err)
{
    if (value == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
    if (s->savepoint_open) {
        if (s->undo_n == PG_UNDO_MAX || strlen(key) >= sizeof(s->undo[0].key)) {
            json_decref(value);
            return duka_err_set(err, DUKA_INTERNAL,
                                "PostgreSQL %s: a savepoint changes at most %d cache entries "
                                "of at most %zu characters",
                                s->where, PG_UNDO_MAX, sizeof(s->undo[0].key) - 1);
        }
        pg_undo *u = &s->undo[s->undo_n++];
        u->receipt = map == s->receipt_cache;
        snprintf(u->key, sizeof(u->key), "%s", key);
        u->old = json_incref(json_object_get(map, key));
    }
    if (json_object_set_new(map, key, value) != 0)
        return duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
    return DUKA_OK;
}

/* Remembers a command's outcome in known[]; the cache maps its id to the index. */
static json_t *known_add(pg_store *s, const duka_hub_command *c)
{
    if (s->known_n == s->known_cap) {
        size_t cap = s->known_cap ? 2 * s->known_cap : 64;
        duka_hub_command *k = realloc(s->known, cap * sizeof(*k));
        if (k == NULL)
            return NULL;
        s->known = k;
        s->known_cap = cap;
    }
    s->known[s->known_n] = *c;
    return json_integer((json_int_t)s->known_n++);
}

/* Every buffered row of a transaction is of one business (a push is one device's). */
static duka_rc buffer_business(pg_store *s, const char *business_id, duka_err *err)
{
    if (s->buf_business[0] == '\0') {
        snprintf(s->buf_business, sizeof(s->buf_business), "%s", business_id);
        return DUKA_OK;
    }
    if (strcmp(s->buf_business, business_id) != 0)
        return duka_err_set(err, DUKA_INTERNAL,
                            "PostgreSQL %s: one transaction writes the rows of one business "
                            "(%s, then %s)",
                            s->where, s->buf_business, business_id);
    return DUKA_OK;
}

/* Completes the row being appended to buffer b. */
static duka_rc buffer_row(pg_store *s, int b, duka_err *err)
{
    if (!pg_rows_end_row(&s->buf[b]))
        return duka_err_set(err, DUKA_NOMEM, "PostgreSQL %s: out of memory buffering a push",
                            s->where);
    return DUKA_OK;
}

/* Writes outside a transaction run in one of their own, whose commit is the flush. */
static duka_rc buffered_begin(pg_store *s, bool *own, duka_err *err)
{
    *own = !s->in_tx;
    if (*own && pg_begin(&s->base, err) != DUKA_OK)
        return DUKA_STORE;
    return DUKA_OK;
}

static duka_rc pg_prefetch(duka_hub_store *hs, const char *business_id,
                           const char *const *command_ids, const char *const *receipt_nos,
                           int n, duka_err *err)
{
    pg_store *s = pgs(hs);
    if (!s->in_tx)
        return duka_err_set(err, DUKA_INTERNAL, "PostgreSQL %s: prefetch outside a transaction",
                            s->where);
    if (use_business(s, business_id, err) != DUKA_OK)
        return DUKA_STORE;
    /* The caches and the buffer of this transaction are of this business from now on. */
    if (buffer_business(s, business_id, err) != DUKA_OK)
        return DUKA_INTERNAL;
    if (n == 0)
        return DUKA_OK;
    /* Two text[] parameters (binary, so nothing needs quoting) of the non-NULL items. */
    static const pg_col_type text_col[1] = {PG_COL_TEXT};
    pg_rows ids, receipts;
    pg_rows_init(&ids, 1, text_col);
    pg_rows_init(&receipts, 1, text_col);
    for (int i = 0; i < n; i++) {
        if (command_ids[i] != NULL) {
            pg_rows_text(&ids, 0, command_ids[i]);
            pg_rows_end_row(&ids);
        }
        if (receipt_nos[i] != NULL) {
            pg_rows_text(&receipts, 0, receipt_nos[i]);
            pg_rows_end_row(&receipts);
        }
    }
    const char *values[3] = {NULL, business_id, NULL};
    int lengths[3] = {0, 0, 0}, formats[3] = {1, 0, 1};
    duka_rc rc = DUKA_OK;
    PGresult *res = NULL;
    if (!pg_rows_param(&ids, 0, &values[0], &lengths[0]) ||
        !pg_rows_param(&receipts, 0, &values[2], &lengths[2])) {
        rc = duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
        goto out;
    }
    res = run_stmt_bin(s, ST_PREFETCH, 3, values, lengths, formats, PGRES_TUPLES_OK,
                       "looking up the batch", err);
    if (res == NULL) {
        rc = DUKA_STORE;
        goto out;
    }
    /* Everything asked for is known from now on: absent unless a row says otherwise. */
    for (int i = 0; i < n; i++) {
        if (command_ids[i] != NULL)
            json_object_set_new(s->cmd_cache, command_ids[i], json_null());
        if (receipt_nos[i] != NULL)
            json_object_set_new(s->receipt_cache, receipt_nos[i], json_null());
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *key = PQgetvalue(res, r, 1);
        if (PQgetvalue(res, r, 0)[0] == 'r') {
            json_object_set_new(s->receipt_cache, key, json_string(PQgetvalue(res, r, 3)));
            continue;
        }
        /* A command id of another business: its row is hidden; all the batch may learn is
         * that the id is taken, by a device that is not the pushing one (device 0). */
        duka_hub_command c = {0};
        if (!PQgetisnull(res, r, 2)) {
            c.device_id = value_int(res, r, 2);
            value_copy(res, r, 3, c.status, sizeof(c.status));
            value_copy(res, r, 4, c.payload_hash, sizeof(c.payload_hash));
            value_copy(res, r, 5, c.receipt_no, sizeof(c.receipt_no));
        }
        json_t *index = known_add(s, &c);
        if (index == NULL || json_object_set_new(s->cmd_cache, key, index) != 0) {
            rc = duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
            goto out;
        }
    }
out:
    PQclear(res);
    pg_rows_free(&ids);
    pg_rows_free(&receipts);
    return rc;
}

/* ---- operations ---- */

static duka_rc pg_business_create(duka_hub_store *hs, const char *name, const char *kra_pin,
                                  char id_out[DUKA_BUSINESS_ID_LEN + 1], duka_err *err)
{
    pg_store *s = pgs(hs);
    duka_random_hex(id_out, DUKA_BUSINESS_ID_LEN);
    bool own = false;
    duka_rc rc = op_begin(s, id_out, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)duka_clock_now_ms(NULL));
    const char *v[4] = {id_out, name, kra_pin, now};
    PGresult *res = run_stmt(s, ST_BUSINESS_CREATE, 4, v, PGRES_COMMAND_OK,
                             "creating the business", err);
    rc = res ? DUKA_OK : DUKA_STORE;
    PQclear(res);
    return op_end(s, own, rc, err);
}

static duka_rc pg_business_check(duka_hub_store *hs, const char *business_id, duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[1] = {business_id};
    PGresult *res =
        run_stmt(s, ST_BUSINESS_CHECK, 1, v, PGRES_TUPLES_OK, "reading businesses", err);
    if (res == NULL)
        rc = DUKA_STORE;
    else if (PQntuples(res) == 0)
        rc = duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found (see: duka hub init)",
                          business_id);
    PQclear(res);
    return op_end(s, own, rc, err);
}

/* Every business, through the directory exception (duka_business_directory, schema v3):
 * no business is set for it, and lock takes the names' advisory lock for the rest of the
 * caller's transaction. */
static duka_rc pg_business_list(duka_hub_store *hs, bool lock, json_t **out, duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, NULL, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[1] = {lock ? "true" : "false"};
    PGresult *res =
        run_stmt(s, ST_BUSINESS_LIST, 1, v, PGRES_TUPLES_OK, "reading businesses", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        char iso[40];
        duka_clock_format_iso(value_int(res, r, 3), iso, sizeof(iso));
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:o, s:s, s:I}", "business_id", PQgetvalue(res, r, 0),
                           "name", duka_hub_json_text(PQgetvalue(res, r, 1)), "kra_pin",
                           duka_hub_json_text(PQgetvalue(res, r, 2)), "created", iso,
                           "devices", (json_int_t)value_int(res, r, 4)));
    }
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "businesses", arr);
    return DUKA_OK;
}

static duka_rc pg_business_update(duka_hub_store *hs, const char *business_id, const char *name,
                                  const char *kra_pin, duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[3] = {business_id, name, kra_pin};
    PGresult *res =
        run_stmt(s, ST_BUSINESS_UPDATE, 3, v, PGRES_COMMAND_OK, "changing the business", err);
    if (res == NULL)
        rc = DUKA_STORE;
    else if (strcmp(PQcmdTuples(res), "0") == 0)
        rc = duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found (see: duka hub init)",
                          business_id);
    PQclear(res);
    return op_end(s, own, rc, err);
}

/* Tokens are "duka1.<device id>.<64 hex secret>"; the hub keeps BLAKE2b(secret) in hex, as
 * the SQLite store does (the secret has 256 random bits: a fast hash is right). */
static void hash_secret(const char *secret, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)secret, strlen(secret), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static duka_rc pg_device_add(duka_hub_store *hs, const char *business_id, const char *terminal,
                             char token_out[DUKA_TOKEN_MAX + 1], duka_err *err)
{
    pg_store *s = pgs(hs);
    char secret[65], hash[65], now[24];
    duka_random_hex(secret, 64);
    hash_secret(secret, hash);
    snprintf(now, sizeof(now), "%lld", (long long)duka_clock_now_ms(NULL));
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    /* A revoked terminal gets a new token on the same device row: the commands it sent
     * before stay its own (a resend after a lost reply is still a duplicate, not foreign). */
    const char *v[4] = {business_id, terminal, hash, now};
    PGresult *res =
        run_stmt(s, ST_DEVICE_ADD, 4, v, PGRES_TUPLES_OK, "registering the device", err);
    if (res == NULL) {
        rc = DUKA_STORE;
    } else if (PQntuples(res) == 0) { /* the upsert's WHERE refused: an active device has it */
        rc = duka_err_set(err, DUKA_CONFLICT,
                          "terminal '%s' is already registered in business %s (revoke it "
                          "first to issue a new token: duka device revoke)",
                          terminal, business_id);
    } else {
        snprintf(token_out, DUKA_TOKEN_MAX + 1, "duka1.%lld.%s",
                 (long long)value_int(res, 0, 0), secret);
    }
    PQclear(res);
    sodium_memzero(secret, sizeof(secret));
    return op_end(s, own, rc, err);
}

static duka_rc pg_device_authenticate(duka_hub_store *hs, const char *token,
                                      duka_hub_device *out, duka_err *err)
{
    pg_store *s = pgs(hs);
    char secret[65], want[65], have[65];
    long long id = 0;
    int used = 0;
    if (token == NULL || strlen(token) > DUKA_TOKEN_MAX ||
        sscanf(token, "duka1.%lld.%64[0-9a-f]%n", &id, secret, &used) != 2 ||
        (size_t)used != strlen(token) || strlen(secret) != 64)
        return duka_err_set(err, DUKA_AUTH, "token rejected: malformed token");
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%lld", id);
    const char *v[1] = {idtext};
    /* One statement (the token's exception to row-level security, duka_device_for_token):
     * outside a transaction it is its own, and a connection the server dropped is reset and
     * the read tried once more, as begin does. Inside one it runs in the caller's. */
    PGresult *res = NULL;
    for (int attempt = 0;; attempt++) {
        if (!s->in_tx && PQstatus(s->conn) != CONNECTION_OK && reconnect(s, err) != DUKA_OK)
            return DUKA_STORE;
        bool may_retry = attempt == 0 && !s->in_tx;
        duka_err first = {0};
        res = run_stmt(s, ST_DEVICE_AUTH, 1, v, PGRES_TUPLES_OK, "reading devices",
                       may_retry ? &first : err);
        if (res != NULL)
            break;
        if (!may_retry || PQstatus(s->conn) != CONNECTION_BAD) {
            if (may_retry)
                duka_err_set(err, first.rc, "%s", first.msg);
            return DUKA_STORE;
        }
    }
    bool found = PQntuples(res) == 1;
    memset(out, 0, sizeof(*out));
    if (found) {
        out->id = id;
        value_copy(res, 0, 0, out->business_id, sizeof(out->business_id));
        value_copy(res, 0, 1, out->terminal, sizeof(out->terminal));
        value_copy(res, 0, 2, want, sizeof(want));
        value_copy(res, 0, 3, out->till_id, sizeof(out->till_id)); /* NULL reads "" */
        out->till_bound_ms = value_int(res, 0, 4);
        value_copy(res, 0, 5, out->business_name, sizeof(out->business_name));
        value_copy(res, 0, 6, out->kra_pin, sizeof(out->kra_pin));
    }
    PQclear(res);
    hash_secret(secret, have);
    sodium_memzero(secret, sizeof(secret));
    if (!found) /* compare anyway: unknown and wrong tokens take the same time */
        memcpy(want, "x", 2);
    if (!found || strlen(want) != 64 || sodium_memcmp(want, have, 64) != 0)
        return duka_err_set(err, DUKA_AUTH, "token rejected");
    return DUKA_OK;
}

static duka_rc pg_device_list(duka_hub_store *hs, const char *business_id, json_t **out,
                              duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[1] = {business_id};
    PGresult *res = run_stmt(s, ST_DEVICE_LIST, 1, v, PGRES_TUPLES_OK, "reading devices", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        char iso[40];
        duka_clock_format_iso(value_int(res, r, 3), iso, sizeof(iso));
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:s, s:s, s:b}", "terminal", PQgetvalue(res, r, 0),
                           "device_id", (json_int_t)value_int(res, r, 1), "status",
                           PQgetvalue(res, r, 2)[0] == 't' ? "active" : "revoked", "created",
                           iso, "till_bound", PQgetvalue(res, r, 4)[0] == 't'));
    }
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "devices", arr);
    return DUKA_OK;
}

/* A compare-and-set on the binding dev was read with. When it finds the binding changed, the
 * binding another request left is read back by a statement of its own: under READ COMMITTED
 * a new statement sees what committed while the update waited for the row, where the
 * update's own snapshot might not. A rare write (a till's first request, a replacement): the
 * common request never comes here. */
static duka_rc pg_device_bind_till(duka_hub_store *hs, duka_hub_device *dev,
                                   const char *till_id, int64_t now_ms, bool *changed,
                                   duka_err *err)
{
    pg_store *s = pgs(hs);
    *changed = false;
    bool own = false;
    duka_rc rc = op_begin(s, dev->business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char id[24], now[24];
    snprintf(id, sizeof(id), "%lld", (long long)dev->id);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *v[5] = {id, dev->business_id, till_id, now, dev->till_id};
    PGresult *res =
        run_stmt(s, ST_DEVICE_BIND, 5, v, PGRES_COMMAND_OK, "binding the till", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    *changed = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (*changed) {
        snprintf(dev->till_id, sizeof(dev->till_id), "%s", till_id);
        dev->till_bound_ms = now_ms;
        return op_end(s, own, DUKA_OK, err);
    }
    res = run_stmt(s, ST_DEVICE_BINDING, 2, v, PGRES_TUPLES_OK, "reading devices", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    if (PQntuples(res) == 1) {
        value_copy(res, 0, 0, dev->till_id, sizeof(dev->till_id));
        dev->till_bound_ms = value_int(res, 0, 1);
    } else {
        rc = duka_err_set(err, DUKA_AUTH, "token rejected");
    }
    PQclear(res);
    return op_end(s, own, rc, err);
}

static duka_rc pg_device_revoke(duka_hub_store *hs, const char *business_id,
                                const char *terminal, int64_t now_ms, duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *v[3] = {business_id, terminal, now};
    PGresult *res =
        run_stmt(s, ST_DEVICE_REVOKE, 3, v, PGRES_COMMAND_OK, "revoking the device", err);
    if (res == NULL)
        rc = DUKA_STORE;
    else if (strcmp(PQcmdTuples(res), "0") == 0)
        rc = duka_err_set(err, DUKA_NOTFOUND, "no active device for terminal '%s' in business %s",
                          terminal, business_id);
    PQclear(res);
    return op_end(s, own, rc, err);
}

static duka_rc pg_audit(duka_hub_store *hs, const char *business_id, int64_t device_id,
                        const char *event, const char *detail, int64_t now_ms, duka_err *err)
{
    pg_store *s = pgs(hs);
    if (s->in_tx && business_id != NULL) {
        /* Inside a push: written with the batch, at its commit. */
        if (buffer_business(s, business_id, err) != DUKA_OK)
            return DUKA_INTERNAL;
        pg_rows *a = &s->buf[BUF_AUDIT];
        pg_rows_int(a, AUDIT_CREATED, now_ms);
        pg_rows_text(a, AUDIT_BUSINESS, business_id);
        if (device_id > 0)
            pg_rows_int(a, AUDIT_DEVICE, device_id);
        else
            pg_rows_null(a, AUDIT_DEVICE);
        pg_rows_text(a, AUDIT_EVENT, event);
        pg_rows_text(a, AUDIT_DETAIL, detail);
        return buffer_row(s, BUF_AUDIT, err);
    }
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char now[24], dev[24];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(dev, sizeof(dev), "%lld", (long long)device_id);
    const char *v[5] = {now, business_id, device_id > 0 ? dev : NULL, event, detail};
    PGresult *res = run_stmt(s, ST_AUDIT, 5, v, PGRES_COMMAND_OK, "writing the audit log", err);
    rc = res ? DUKA_OK : DUKA_STORE;
    PQclear(res);
    return op_end(s, own, rc, err);
}

/* With a business: its events and those no business could be named for. Without one, only
 * the latter: row-level security shows a business's rows only to a transaction naming it
 * (on SQLite, every business's events). */
static duka_rc pg_audit_list(duka_hub_store *hs, const char *business_id, int limit,
                             json_t **out, duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *v[2] = {business_id, lim};
    PGresult *res =
        run_stmt(s, ST_AUDIT_LIST, 2, v, PGRES_TUPLES_OK, "reading the audit log", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        char iso[40];
        duka_clock_format_iso(value_int(res, r, 0), iso, sizeof(iso));
        json_t *business = PQgetisnull(res, r, 1) ? json_null()
                                                  : json_string(PQgetvalue(res, r, 1));
        json_t *device = PQgetisnull(res, r, 2) ? json_null()
                                                : json_integer(value_int(res, r, 2));
        json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:s, s:s}", "time", iso,
                                             "business_id", business, "device_id", device,
                                             "event", PQgetvalue(res, r, 3), "detail",
                                             PQgetvalue(res, r, 4)));
    }
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "events", arr);
    return DUKA_OK;
}

/* Catalog change sequence. The first change of a transaction takes the next number of its
 * business with UPDATE businesses … RETURNING change_seq, which row-locks that business's row
 * until the transaction ends (next_change_seq; later changes of the transaction count on in
 * memory). A second change of the same business (another CLI, another hub) waits on
 * that lock and gets the next number only after the first committed (or rolled back). So per
 * business the numbers are handed out in commit order, and a pull that has seen number N has
 * seen every change numbered below N: a change committed late can never be skipped by a
 * cursor that already moved past it. (A SEQUENCE would not do: nextval() is not
 * transactional, so number 8 can commit while number 7 is still open — a cursor at 8 would
 * then never see 7.) Pushes do not take this lock (the tables a push writes have no foreign
 * key to businesses). */
static duka_rc pg_product_upsert(duka_hub_store *hs, const char *business_id,
                                 const duka_hub_product *p, int64_t now_ms, duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    int64_t change = 0;
    rc = next_change_seq(s, business_id, &change, err);
    if (rc != DUKA_OK)
        return op_end(s, own, rc, err);
    char price[24], now[24], stock[24], seq[24], band[2] = {p->tax_band, '\0'};
    snprintf(price, sizeof(price), "%lld", (long long)p->price_cents);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(stock, sizeof(stock), "%lld", (long long)p->stock_milli);
    snprintf(seq, sizeof(seq), "%lld", (long long)change);
    const char *v[10] = {business_id, p->sku,      p->name, price,
                         band,        p->category, now,     stock,
                         p->has_stock ? "true" : "false", seq};
    PGresult *res =
        run_stmt(s, ST_PRODUCT_UPSERT, 10, v, PGRES_TUPLES_OK, "writing the product", err);
    if (res == NULL)
        rc = DUKA_STORE;
    PQclear(res);
    return op_end(s, own, rc, err);
}

static duka_rc pg_product_archive(duka_hub_store *hs, const char *business_id, const char *sku,
                                  int64_t now_ms, duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    int64_t change = 0;
    rc = next_change_seq(s, business_id, &change, err);
    if (rc != DUKA_OK)
        return op_end(s, own, rc, err);
    char now[24], seq[24];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(seq, sizeof(seq), "%lld", (long long)change);
    const char *v[4] = {business_id, sku, now, seq};
    PGresult *res =
        run_stmt(s, ST_PRODUCT_ARCHIVE, 4, v, PGRES_TUPLES_OK, "archiving the product", err);
    if (res == NULL)
        rc = DUKA_STORE;
    else if (value_int(res, 0, 0) == 0)
        rc = duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found", business_id);
    else if (value_int(res, 0, 1) == 0)
        rc = duka_err_set(err, DUKA_NOTFOUND, "product '%s' not found in business %s", sku,
                          business_id);
    PQclear(res);
    return op_end(s, own, rc, err);
}

static duka_rc pg_changes_since(duka_hub_store *hs, const char *business_id, int64_t cursor,
                                int limit, json_t **out, duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char cur[24], lim[16];
    snprintf(cur, sizeof(cur), "%lld", (long long)cursor);
    snprintf(lim, sizeof(lim), "%d", limit + 1); /* one more than asked tells whether more */
    const char *v[3] = {business_id, cur, lim};
    PGresult *res =
        run_stmt(s, ST_CHANGES, 3, v, PGRES_TUPLES_OK, "reading catalog changes", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *changes = json_array();
    int rows = PQntuples(res);
    bool more = rows > limit;
    int64_t last = cursor;
    for (int r = 0; r < rows && r < limit; r++) {
        last = value_int(res, r, 6);
        json_array_append_new(
            changes,
            json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:b}", "seq", (json_int_t)last, "sku",
                      PQgetvalue(res, r, 0), "name", PQgetvalue(res, r, 1), "price",
                      (json_int_t)value_int(res, r, 2), "tax", PQgetvalue(res, r, 3), "category",
                      PQgetvalue(res, r, 4), "deleted", value_int(res, r, 5) != 0));
    }
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(changes);
        return rc;
    }
    *out = json_pack("{s:o, s:I, s:b}", "changes", changes, "cursor", (json_int_t)last, "more",
                     more);
    return DUKA_OK;
}

static duka_rc pg_product_list(duka_hub_store *hs, const char *business_id, bool archived,
                               json_t **out, duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[2] = {business_id, archived ? "true" : "false"};
    PGresult *res =
        run_stmt(s, ST_PRODUCT_LIST, 2, v, PGRES_TUPLES_OK, "reading products", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:I, s:s, s:o, s:b, s:I}", "sku", PQgetvalue(res, r, 0),
                           "name", duka_hub_json_text(PQgetvalue(res, r, 1)), "price",
                           (json_int_t)value_int(res, r, 2), "tax", PQgetvalue(res, r, 3),
                           "category", duka_hub_json_text(PQgetvalue(res, r, 4)), "archived",
                           value_int(res, r, 5) != 0, "stock_milli",
                           (json_int_t)value_int(res, r, 6)));
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "products", arr);
    return DUKA_OK;
}

static duka_rc pg_stock_levels(duka_hub_store *hs, const char *business_id, json_t **out,
                               duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[1] = {business_id};
    PGresult *res =
        run_stmt(s, ST_STOCK_LEVELS, 1, v, PGRES_TUPLES_OK, "reading stock levels", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(arr, json_pack("{s:s, s:o, s:I}", "sku", PQgetvalue(res, r, 0),
                                             "name", duka_hub_json_text(PQgetvalue(res, r, 1)),
                                             "stock_milli", (json_int_t)value_int(res, r, 2)));
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "products", arr);
    return DUKA_OK;
}

/* From the batch's prefetch or this transaction's buffer when known there; else one round
 * trip, in the business of the open transaction (prefetch set it). */
static duka_rc pg_command_find(duka_hub_store *hs, const char *command_id, duka_hub_command *out,
                               bool *found, duka_err *err)
{
    pg_store *s = pgs(hs);
    *found = false;
    const json_t *known = json_object_get(s->cmd_cache, command_id);
    if (known != NULL) {
        json_int_t i = json_integer_value(known);
        if (json_is_integer(known) && i >= 0 && (size_t)i < s->known_n) {
            *found = true;
            *out = s->known[i];
        }
        return DUKA_OK;
    }
    bool own = false;
    duka_rc rc = op_begin(s, NULL, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[1] = {command_id};
    PGresult *res = run_stmt(s, ST_COMMAND_FIND, 1, v, PGRES_TUPLES_OK,
                             "reading processed commands", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    if (PQntuples(res) == 1) {
        *found = true;
        memset(out, 0, sizeof(*out));
        if (!PQgetisnull(res, 0, 0)) { /* else another business's: device 0, as prefetch */
            out->device_id = value_int(res, 0, 0);
            value_copy(res, 0, 1, out->status, sizeof(out->status));
            value_copy(res, 0, 2, out->payload_hash, sizeof(out->payload_hash));
            value_copy(res, 0, 3, out->receipt_no, sizeof(out->receipt_no));
        }
    }
    PQclear(res);
    return op_end(s, own, DUKA_OK, err);
}

static duka_rc pg_sale_owner(duka_hub_store *hs, const char *business_id, const char *receipt_no,
                             char command_id_out[DUKA_UUID_STR_LEN + 1], bool *found,
                             duka_err *err)
{
    pg_store *s = pgs(hs);
    *found = false;
    const json_t *known = json_object_get(s->receipt_cache, receipt_no);
    if (known != NULL && strcmp(s->buf_business, business_id) == 0) {
        if (json_is_string(known)) {
            *found = true;
            snprintf(command_id_out, DUKA_UUID_STR_LEN + 1, "%s", json_string_value(known));
        }
        return DUKA_OK;
    }
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[2] = {business_id, receipt_no};
    PGresult *res = run_stmt(s, ST_SALE_OWNER, 2, v, PGRES_TUPLES_OK, "reading sales", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    if (PQntuples(res) == 1) {
        *found = true;
        value_copy(res, 0, 0, command_id_out, DUKA_UUID_STR_LEN + 1);
    }
    PQclear(res);
    return op_end(s, own, DUKA_OK, err);
}

static duka_rc pg_command_record(duka_hub_store *hs, const char *command_id,
                                 const duka_hub_device *dev, const char *command_type,
                                 const duka_hub_command *o, int64_t now_ms, duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    if (buffered_begin(s, &own, err) != DUKA_OK)
        return DUKA_STORE;
    duka_rc rc = buffer_business(s, dev->business_id, err);
    if (rc == DUKA_OK) {
        pg_rows *c = &s->buf[BUF_COMMANDS];
        pg_rows_text(c, CMD_ID, command_id);
        pg_rows_int(c, CMD_DEVICE, dev->id);
        pg_rows_text(c, CMD_TYPE, command_type);
        pg_rows_text(c, CMD_STATUS, o->status);
        pg_rows_text(c, CMD_HASH, o->payload_hash);
        pg_rows_text(c, CMD_RECEIPT, o->receipt_no);
        pg_rows_int(c, CMD_PROCESSED, now_ms);
        rc = buffer_row(s, BUF_COMMANDS, err);
    }
    if (rc == DUKA_OK) {
        duka_hub_command known = *o;
        known.device_id = dev->id;
        rc = cache_set(s, s->cmd_cache, command_id, known_add(s, &known), err);
    }
    return op_end(s, own, rc, err);
}

static duka_rc pg_sale_insert(duka_hub_store *hs, const duka_hub_device *dev,
                              const char *command_id, const duka_sale *sale, int64_t now_ms,
                              duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    if (buffered_begin(s, &own, err) != DUKA_OK)
        return DUKA_STORE;
    duka_rc rc = buffer_business(s, dev->business_id, err);
    /* Lines and payments name their sale by its row number in this flush (its ordinality in
     * flush_sql's unnest); rows are only ever removed from the end (rollback_to). */
    int sale_no = s->buf[BUF_SALES].count + 1;
    pg_rows *r = &s->buf[BUF_LINES];
    for (int i = 0; rc == DUKA_OK && i < sale->line_count; i++) {
        const duka_sale_line *l = &sale->lines[i];
        char band[2] = {l->tax_band, '\0'};
        pg_rows_int(r, LINE_SALE, sale_no);
        pg_rows_int(r, LINE_NO, i + 1);
        pg_rows_text(r, LINE_SKU, l->sku);
        pg_rows_text(r, LINE_NAME, l->name);
        pg_rows_int(r, LINE_QTY, l->qty_milli);
        pg_rows_int(r, LINE_PRICE, l->unit_price_cents);
        pg_rows_text(r, LINE_BAND, band);
        pg_rows_int(r, LINE_TOTAL, l->line_total_cents);
        pg_rows_int(r, LINE_TAX, l->tax_cents);
        pg_rows_int(r, LINE_ORIGINAL, l->original_line); /* 0 for a sale's: NULL */
        rc = buffer_row(s, BUF_LINES, err);
    }
    r = &s->buf[BUF_PAYMENTS];
    for (int i = 0; rc == DUKA_OK && i < sale->payment_count; i++) {
        const duka_payment *p = &sale->payments[i];
        pg_rows_int(r, PAY_SALE, sale_no);
        pg_rows_text(r, PAY_METHOD, p->method);
        pg_rows_int(r, PAY_AMOUNT, p->amount_cents);
        pg_rows_text(r, PAY_REFERENCE, p->reference);
        pg_rows_text(r, PAY_STATUS, p->status);
        rc = buffer_row(s, BUF_PAYMENTS, err);
    }
    if (rc == DUKA_OK) {
        /* The receipt number was validated as {terminal}-{YYYYMMDD}-{seq}. */
        const char *day = sale->receipt_no + strlen(sale->terminal) + 1;
        r = &s->buf[BUF_SALES];
        pg_rows_int(r, SALE_NO, sale_no);
        pg_rows_text(r, SALE_COMMAND, command_id);
        pg_rows_int(r, SALE_DEVICE, dev->id);
        pg_rows_text(r, SALE_RECEIPT, sale->receipt_no);
        pg_rows_text(r, SALE_TERMINAL, sale->terminal);
        pg_rows_int(r, SALE_DAY, strtoll(day, NULL, 10));
        pg_rows_int(r, SALE_SEQ, strtoll(day + 9, NULL, 10));
        pg_rows_int(r, SALE_CREATED, sale->created_ms);
        pg_rows_int(r, SALE_RECEIVED, now_ms);
        pg_rows_int(r, SALE_TOTAL, sale->total_cents);
        pg_rows_int(r, SALE_TAX, sale->tax_cents);
        pg_rows_text(r, SALE_CASHIER_ID, sale->cashier_id);
        pg_rows_text(r, SALE_CASHIER_NAME, sale->cashier_name);
        pg_rows_text(r, SALE_KIND, duka_receipt_kind_name(sale->kind));
        pg_rows_text(r, SALE_ORIGINAL, sale->original_receipt_no); /* '' for a sale: NULL */
        pg_rows_text(r, SALE_REASON, sale->reason);
        rc = buffer_row(s, BUF_SALES, err);
    }
    if (rc == DUKA_OK)
        rc = cache_set(s, s->receipt_cache, sale->receipt_no, json_string(command_id), err);
    return op_end(s, own, rc, err);
}

static duka_rc pg_conflict_insert(duka_hub_store *hs, const duka_hub_device *dev,
                                  const char *kind, const char *entity_id,
                                  const char *command_id, const char *existing_command_id,
                                  const char *payload, const char *detail, int64_t now_ms,
                                  duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    if (buffered_begin(s, &own, err) != DUKA_OK)
        return DUKA_STORE;
    duka_rc rc = buffer_business(s, dev->business_id, err);
    if (rc == DUKA_OK) {
        pg_rows *c = &s->buf[BUF_CONFLICTS];
        pg_rows_int(c, CONFLICT_DEVICE, dev->id);
        pg_rows_text(c, CONFLICT_KIND, kind);
        pg_rows_text(c, CONFLICT_ENTITY, entity_id);
        pg_rows_text(c, CONFLICT_COMMAND, command_id);
        pg_rows_text(c, CONFLICT_EXISTING, existing_command_id);
        pg_rows_text(c, CONFLICT_PAYLOAD, payload);
        pg_rows_text(c, CONFLICT_DETAIL, detail);
        pg_rows_int(c, CONFLICT_CREATED, now_ms);
        rc = buffer_row(s, BUF_CONFLICTS, err);
    }
    return op_end(s, own, rc, err);
}

static duka_rc pg_receipt_floor(duka_hub_store *hs, const char *business_id,
                                const char *terminal, int since_day, json_t **out,
                                duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char since[16];
    snprintf(since, sizeof(since), "%d", since_day);
    const char *v[3] = {business_id, terminal, since};
    PGresult *res =
        run_stmt(s, ST_RECEIPT_FLOOR, 3, v, PGRES_TUPLES_OK, "reading receipt numbers", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *floor = json_object();
    for (int r = 0; r < PQntuples(res); r++)
        json_object_set_new(floor, PQgetvalue(res, r, 0), json_integer(value_int(res, r, 1)));
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(floor);
        return rc;
    }
    *out = floor;
    return DUKA_OK;
}

static duka_rc pg_conflict_page(duka_hub_store *hs, const char *business_id, int64_t before_id,
                                int limit, json_t **out, duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char before[24], lim[16];
    snprintf(before, sizeof(before), "%lld", (long long)before_id);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *v[3] = {business_id, before, lim};
    PGresult *res =
        run_stmt(s, ST_CONFLICT_PAGE, 3, v, PGRES_TUPLES_OK, "reading conflicts", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:s, s:I}", "id",
                           (json_int_t)value_int(res, r, 0), "kind", PQgetvalue(res, r, 1),
                           "receipt_no", PQgetvalue(res, r, 2), "command_id",
                           PQgetvalue(res, r, 3), "existing_command_id",
                           PQgetisnull(res, r, 4) ? json_null()
                                                  : json_string(PQgetvalue(res, r, 4)),
                           "terminal", PQgetvalue(res, r, 5), "payload", PQgetvalue(res, r, 6),
                           "detected", (json_int_t)value_int(res, r, 7)));
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "conflicts", arr);
    return DUKA_OK;
}

/* A sum of the sales' column for the report: PostgreSQL adds bigints as numeric, so a sum
 * past int64 arrives as text too long for it — said in a sentence (DUKA_LIMIT), as SQLite's
 * integer overflow is. */
static duka_rc report_sum(pg_store *s, const char *text, const char *column,
                          const char *business_id, int64_t *out, duka_err *err)
{
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno == ERANGE)
        return duka_err_set(err, DUKA_LIMIT,
                            "report of business %s: its sales' %s add up to more than %lld, "
                            "which a report cannot show",
                            business_id, column, (long long)INT64_MAX);
    if (end == text || *end != '\0')
        return duka_err_set(err, DUKA_STORE, "PostgreSQL %s: reading the report: sum '%s'",
                            s->where, text);
    *out = v;
    return DUKA_OK;
}

static duka_rc pg_report(duka_hub_store *hs, const char *business_id, json_t **out,
                         duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[1] = {business_id};
    int64_t sales = 0, conflicts = 0, total = 0, tax = 0, refunds = 0, rtotal = 0, rtax = 0;
    json_t *receipts = NULL;
    PGresult *res =
        run_stmt(s, ST_REPORT_TOTALS, 1, v, PGRES_TUPLES_OK, "reading the report", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    sales = value_int(res, 0, 0);
    conflicts = value_int(res, 0, 3);
    rc = report_sum(s, PQgetvalue(res, 0, 1), "total_cents", business_id, &total, err);
    if (rc == DUKA_OK)
        rc = report_sum(s, PQgetvalue(res, 0, 2), "tax_cents", business_id, &tax, err);
    refunds = value_int(res, 0, 4);
    if (rc == DUKA_OK)
        rc = report_sum(s, PQgetvalue(res, 0, 5), "refund total_cents", business_id, &rtotal,
                        err);
    if (rc == DUKA_OK)
        rc = report_sum(s, PQgetvalue(res, 0, 6), "refund tax_cents", business_id, &rtax, err);
    PQclear(res);
    if (rc != DUKA_OK)
        return op_end(s, own, rc, err);
    res = run_stmt(s, ST_REPORT_RECEIPTS, 1, v, PGRES_TUPLES_OK, "reading the report", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    receipts = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(receipts, json_string(PQgetvalue(res, r, 0)));
    PQclear(res);
    rc = op_end(s, own, DUKA_OK, err);
    if (rc != DUKA_OK) {
        json_decref(receipts);
        return rc;
    }
    *out = json_pack("{s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "sales", (json_int_t)sales,
                     "receipts", receipts, "conflicts", (json_int_t)conflicts, "total_cents",
                     (json_int_t)total, "tax_cents", (json_int_t)tax, "refunds",
                     (json_int_t)refunds, "refund_cents", (json_int_t)rtotal, "refund_tax_cents",
                     (json_int_t)rtax);
    return DUKA_OK;
}

static duka_rc pg_cashier_list(duka_hub_store *hs, const char *business_id,
                               int64_t known_version, json_t **out, duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char known[24];
    snprintf(known, sizeof(known), "%lld", (long long)known_version);
    const char *v[2] = {business_id, known};
    PGresult *res = run_stmt(s, ST_CASHIER_LIST, 2, v, PGRES_TUPLES_OK, "reading cashiers", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    int n = PQntuples(res);
    int64_t version = n > 0 ? value_int(res, 0, 0) : -1;
    json_t *list = json_array();
    for (int r = 0; r < n; r++) {
        if (PQgetisnull(res, r, 1))
            continue;
        json_array_append_new(
            list, json_pack("{s:s, s:o, s:s, s:s, s:b}", "id", PQgetvalue(res, r, 1), "name",
                            duka_hub_json_text(PQgetvalue(res, r, 2)), "role",
                            PQgetvalue(res, r, 3), "pin_hash", PQgetvalue(res, r, 4), "active",
                            PQgetvalue(res, r, 5)[0] == 't'));
    }
    PQclear(res);
    if (version < 0)
        rc = duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found (see: duka hub init)",
                          business_id);
    rc = op_end(s, own, rc, err);
    if (rc != DUKA_OK || version == known_version) {
        json_decref(list);
        return rc;
    }
    *out = json_pack("{s:I, s:o}", "version", (json_int_t)version, "list", list);
    return DUKA_OK;
}

static duka_rc pg_cashier_put(duka_hub_store *hs, const char *business_id,
                              const duka_hub_cashier *c, bool insert, int64_t now_ms,
                              duka_err *err)
{
    pg_store *s = pgs(hs);
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *v[7] = {c->id, business_id, c->name, c->role, c->pin_hash,
                        c->active ? "true" : "false", now};
    PGresult *res = run_stmt(s, insert ? ST_CASHIER_INSERT : ST_CASHIER_UPDATE, 7, v, PGRES_COMMAND_OK,
                   "writing the cashier", err);
    if (res == NULL)
        return op_end(s, own, err && err->rc ? err->rc : DUKA_STORE, err);
    bool changed = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    if (!changed)
        return op_end(s, own,
                      duka_err_set(err, DUKA_NOTFOUND, "no cashier %s in business %s", c->id,
                                   business_id),
                      err);
    const char *b[1] = {business_id};
    res = run_stmt(s, ST_CASHIERS_BUMP, 1, b, PGRES_COMMAND_OK, "raising the cashier version",
                   err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    PQclear(res);
    return op_end(s, own, DUKA_OK, err);
}

static duka_rc pg_report_cashiers(duka_hub_store *hs, const char *business_id, json_t **out,
                                  duka_err *err)
{
    pg_store *s = pgs(hs);
    *out = NULL;
    bool own = false;
    duka_rc rc = op_begin(s, business_id, &own, err);
    if (rc != DUKA_OK)
        return rc;
    const char *v[1] = {business_id};
    PGresult *res =
        run_stmt(s, ST_REPORT_CASHIERS, 1, v, PGRES_TUPLES_OK, "reading the report", err);
    if (res == NULL)
        return op_end(s, own, DUKA_STORE, err);
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res) && rc == DUKA_OK; r++) {
        int64_t total = 0;
        rc = report_sum(s, PQgetvalue(res, r, 3), "total_cents", business_id, &total, err);
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:I, s:I}", "cashier_id", PQgetvalue(res, r, 0), "name",
                           duka_hub_json_text(PQgetvalue(res, r, 1)), "sales",
                           (json_int_t)value_int(res, r, 2), "total_cents", (json_int_t)total));
    }
    PQclear(res);
    rc = op_end(s, own, rc, err);
    if (rc != DUKA_OK) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "cashiers", arr);
    return DUKA_OK;
}

static void pg_close(duka_hub_store *hs)
{
    pg_store *s = pgs(hs);
    pg_rollback(hs);
    PQfinish(s->conn);
    json_decref(s->cmd_cache);
    json_decref(s->receipt_cache);
    undo_clear(s);
    for (int b = 0; b < BUF_COUNT; b++)
        pg_rows_free(&s->buf[b]);
    duka_pg_outbox_buffer_free(&s->outbox);
    free(s->known);
    free(s);
}

static const duka_hub_store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .checkpoint = NULL, /* the server checkpoints by itself */
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .prefetch = pg_prefetch,
    .business_create = pg_business_create,
    .business_check = pg_business_check,
    .business_list = pg_business_list,
    .business_update = pg_business_update,
    .device_add = pg_device_add,
    .device_revoke = pg_device_revoke,
    .device_authenticate = pg_device_authenticate,
    .device_list = pg_device_list,
    .device_bind_till = pg_device_bind_till,
    .audit = pg_audit,
    .audit_list = pg_audit_list,
    .product_upsert = pg_product_upsert,
    .product_archive = pg_product_archive,
    .changes_since = pg_changes_since,
    .product_list = pg_product_list,
    .stock_levels = pg_stock_levels,
    .command_find = pg_command_find,
    .command_record = pg_command_record,
    .sale_owner = pg_sale_owner,
    .sale_insert = pg_sale_insert,
    .sync_writes = pg_sync_writes,
    .conflict_insert = pg_conflict_insert,
    .receipt_floor = pg_receipt_floor,
    .conflict_page = pg_conflict_page,
    .report = pg_report,
    .cashier_list = pg_cashier_list,
    .cashier_put = pg_cashier_put,
    .report_cashiers = pg_report_cashiers,
    DUKA_PG_OUTBOX_OPS,
};

/* ---- migrations ---- */

/* One value of a one-row query run through the simple protocol, into out. */
static duka_rc query_value(pg_store *s, const char *sql, const char *what, char *out,
                           size_t outlen, duka_err *err)
{
    PGresult *res = PQexec(s->conn, sql);
    duka_rc rc = DUKA_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = pg_fail(s, res, what, false, err);
    else
        value_copy(res, 0, 0, out, outlen);
    PQclear(res);
    return rc;
}

/* The schema version applied here: 0 when there is no duka schema (no schema_migrations). */
static duka_rc schema_version(pg_store *s, int *version, duka_err *err)
{
    char v[32];
    *version = 0;
    if (query_value(s, "SELECT to_regclass('schema_migrations') IS NOT NULL", "reading the schema",
                    v, sizeof(v), err) != DUKA_OK)
        return DUKA_STORE;
    if (strcmp(v, "t") != 0)
        return DUKA_OK;
    if (query_value(s, "SELECT coalesce(max(version), 0) FROM schema_migrations",
                    "reading the schema version", v, sizeof(v), err) != DUKA_OK)
        return DUKA_STORE;
    *version = (int)strtol(v, NULL, 10);
    return DUKA_OK;
}

/* Applies every migration not yet applied, each in its own transaction with its version row,
 * under an advisory lock so two `duka hub init` at once apply each version once. Only the
 * tables' owner migrates: the hub's role may not run DDL, and must not own the tables (row
 * security and the grants are about it). */
static duka_rc migrate(pg_store *s, duka_err *err)
{
    char user[128];
    if (query_value(s, "SELECT current_user", "reading the role", user, sizeof(user), err) !=
        DUKA_OK)
        return DUKA_STORE;
    if (strcmp(user, DUKA_PG_APP_ROLE) == 0)
        return duka_err_set(err, DUKA_INPUT,
                            "PostgreSQL %s: role %s is the role duka hub runs as and may not "
                            "create or change the schema: run duka hub init as the tables' "
                            "owner (see README, PostgreSQL)",
                            s->where, user);
    char exists[8];
    if (query_value(s, "SELECT count(*) FROM pg_roles WHERE rolname = '" DUKA_PG_APP_ROLE "'",
                    "reading the roles", exists, sizeof(exists), err) != DUKA_OK)
        return DUKA_STORE;
    if (strcmp(exists, "0") == 0)
        return duka_err_set(err, DUKA_INPUT,
                            "PostgreSQL %s: there is no role " DUKA_PG_APP_ROLE " (the role duka "
                            "hub runs as, which the schema grants its rights to): create it "
                            "first, e.g. CREATE ROLE " DUKA_PG_APP_ROLE " LOGIN PASSWORD '...' "
                            "(see README, PostgreSQL)",
                            s->where);
    char lock[160];
    snprintf(lock, sizeof(lock),
             "BEGIN; SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(%lld)",
             DUKA_PG_MIGRATION_LOCK);
    if (run_simple(s, lock, "migrating: locking", err) != DUKA_OK)
        return DUKA_STORE;
    duka_rc rc = run_simple(s,
                            "CREATE TABLE IF NOT EXISTS schema_migrations ("
                            "  version integer PRIMARY KEY, applied_ms bigint NOT NULL)",
                            "migrating: creating schema_migrations", err);
    if (rc == DUKA_OK)
        rc = run_simple(s, "COMMIT", "migrating: COMMIT", err);
    if (rc != DUKA_OK) {
        run_simple(s, "ROLLBACK", "ROLLBACK", NULL);
        return rc;
    }
    for (size_t i = 0; i < sizeof(pg_migrations) / sizeof(pg_migrations[0]); i++) {
        const pg_migration *m = &pg_migrations[i];
        char what[64], check[128], done[160], v[8];
        snprintf(what, sizeof(what), "migrating to version %d", m->version);
        snprintf(check, sizeof(check),
                 "SELECT count(*) FROM schema_migrations WHERE version = %d", m->version);
        snprintf(done, sizeof(done),
                 "INSERT INTO schema_migrations(version, applied_ms) VALUES(%d, %lld); COMMIT",
                 m->version, (long long)duka_clock_now_ms(NULL));
        if (run_simple(s, lock, what, err) != DUKA_OK)
            return DUKA_STORE;
        rc = query_value(s, check, what, v, sizeof(v), err);
        if (rc == DUKA_OK && strcmp(v, "0") == 0) {
            for (int k = 0; rc == DUKA_OK && k < PG_MIGRATION_PARTS_MAX && m->sql[k]; k++)
                rc = run_simple(s, m->sql[k], what, err);
            if (rc == DUKA_OK)
                rc = run_simple(s, done, what, err);
            if (rc == DUKA_OK)
                duka_log(DUKA_LOG_INFO, "hub", "PostgreSQL %s: schema migrated to version %d",
                         s->where, m->version);
        } else if (rc == DUKA_OK) {
            rc = run_simple(s, "COMMIT", what, err);
        }
        if (rc != DUKA_OK) {
            run_simple(s, "ROLLBACK", "ROLLBACK", NULL);
            return rc;
        }
    }
    return DUKA_OK;
}

duka_rc duka_hub_store_pg_open(const char *url, bool create, duka_hub_store **out,
                               duka_err *err)
{
    *out = NULL;
    pg_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory opening the hub store");
    s->base.ops = &pg_ops;
    duka_hub_store_redact(url, s->where, sizeof(s->where));
    s->cmd_cache = json_object();
    s->receipt_cache = json_object();
    for (int b = 0; b < BUF_COUNT; b++)
        pg_rows_init(&s->buf[b], buf_layout[b].ncols, buf_layout[b].types);
    duka_pg_outbox_buffer_init(&s->outbox);
    duka_rc rc = DUKA_OK;
    if (s->cmd_cache == NULL || s->receipt_cache == NULL) {
        rc = duka_err_set(err, DUKA_NOMEM, "out of memory opening the hub store");
        goto fail;
    }
    if (strlen(url) > DUKA_URL_MAX) {
        rc = duka_err_set(err, DUKA_INPUT, "PostgreSQL URL longer than %d characters: %.60s...",
                          DUKA_URL_MAX, s->where);
        goto fail;
    }
    /* Keywords first, the URL last: what the URL says wins (expand_dbname). */
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", DUKA_PG_CONNECT_TIMEOUT_S);
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const values[] = {timeout, "duka-hub", url, NULL};
    s->conn = PQconnectdbParams(keys, values, 1);
    if (s->conn == NULL) {
        rc = duka_err_set(err, DUKA_NOMEM, "out of memory connecting to PostgreSQL");
        goto fail;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char line[DUKA_ERR_MSG_MAX];
        first_line(PQerrorMessage(s->conn), line, sizeof(line));
        rc = duka_err_set(err, DUKA_STORE, "PostgreSQL %s: cannot connect: %s", s->where, line);
        goto fail;
    }
    if ((rc = session_setup(s, err)) != DUKA_OK)
        goto fail;
    int version = 0;
    if ((rc = schema_version(s, &version, err)) != DUKA_OK)
        goto fail;
    if (create && version < PG_SCHEMA_VERSION) {
        if ((rc = migrate(s, err)) != DUKA_OK || (rc = schema_version(s, &version, err)) != DUKA_OK)
            goto fail;
    }
    if (version == 0) {
        rc = duka_err_set(err, DUKA_NOTFOUND,
                          "PostgreSQL %s: no duka hub schema here (create it with: duka hub init, "
                          "as the tables' owner)",
                          s->where);
        goto fail;
    }
    if (version < PG_SCHEMA_VERSION) {
        rc = duka_err_set(err, DUKA_STORE,
                          "PostgreSQL %s: the hub schema is at version %d, this duka needs %d "
                          "(migrate with: duka hub init, as the tables' owner)",
                          s->where, version, PG_SCHEMA_VERSION);
        goto fail;
    }
    if (version > PG_SCHEMA_VERSION) {
        rc = duka_err_set(err, DUKA_STORE,
                          "PostgreSQL %s: the hub schema is at version %d, newer than this duka "
                          "knows (%d): upgrade duka",
                          s->where, version, PG_SCHEMA_VERSION);
        goto fail;
    }
    *out = &s->base;
    return DUKA_OK;
fail:
    pg_close(&s->base);
    return rc;
}

/* ---- for the files that implement parts of this store (hub_store_pg_int.h) ---- */

PGconn *duka_pg_conn(duka_hub_store *hs)
{
    return pgs(hs)->conn;
}

const char *duka_pg_where(duka_hub_store *hs)
{
    return pgs(hs)->where;
}

duka_rc duka_pg_fail(duka_hub_store *hs, const PGresult *res, const char *what, duka_err *err)
{
    return pg_fail(pgs(hs), res, what, false, err);
}

duka_rc duka_pg_op_begin(duka_hub_store *hs, const char *business_id, bool *own, duka_err *err)
{
    return op_begin(pgs(hs), business_id, own, err);
}

duka_rc duka_pg_op_end(duka_hub_store *hs, bool own, duka_rc rc, duka_err *err)
{
    return op_end(pgs(hs), own, rc, err);
}

bool duka_pg_in_tx(duka_hub_store *hs)
{
    return pgs(hs)->in_tx;
}

duka_pg_outbox_buffer *duka_pg_outbox_buffer_of(duka_hub_store *hs)
{
    return &pgs(hs)->outbox;
}

duka_rc duka_pg_use_business(duka_hub_store *hs, const char *business_id, duka_err *err)
{
    return use_business(pgs(hs), business_id, err);
}
