/*
 * checker.c — the shared judge of the harnesses (see checker.h).
 *
 * Everything is read into temporary tables of one in-memory SQLite connection, the tills'
 * and the hub's databases attached read-only one at a time, and compared with SQL; receipt
 * sequences are checked in C. Sales are identified by receipt number (unique per business
 * by construction) and compared by command id, totals and a signature of their lines and payments.
 */
#include "checker.h"

#include "common/limits.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A sale's cashier (id and name: who rang it up must reach the hub as the till recorded it),
 * its lines, then its payments (method, amount, reference: a split tender must reach the hub
 * as it was taken), as one comparable string, each in its order. lines and pays name the
 * tables (the hub's payments are copied into hpay first: the hub has no index on sale_id). */
#define LINES_SIG_OF(alias, lines, pays)                                                     \
    "(" alias ".cashier_id || ':' || " alias ".cashier_name || '|' ||"                    \
    " (SELECT group_concat(x, ';') FROM (SELECT line_no || ':' || sku || ':' || qty_milli ||" \
    " ':' || unit_price_cents || ':' || tax_band || ':' || line_total_cents || ':' ||"       \
    " tax_cents AS x FROM " lines " WHERE sale_id = " alias ".id"                          \
    " ORDER BY line_no)) || '|' || coalesce((SELECT group_concat(x, ';') FROM (SELECT"      \
    " method || ':' || amount_cents || ':' || reference AS x FROM " pays                    \
    " WHERE sale_id = " alias ".id ORDER BY id)), ''))"
#define LINES_SIG(alias, schema) LINES_SIG_OF(alias, schema ".sale_lines", schema ".payments")

static duka_rc fail_sql(sqlite3 *db, const char *what, duka_err *err)
{
    return duka_err_set(err, DUKA_STORE, "checker: %s: %s", what, sqlite3_errmsg(db));
}

static duka_rc exec(sqlite3 *db, const char *sql, const char *what, duka_err *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail_sql(db, what, err);
    return DUKA_OK;
}

/* Runs a query with optional text parameter ?1 and returns its first column as an integer. */
static duka_rc scalar(sqlite3 *db, const char *sql, const char *param, int64_t *out,
                      duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail_sql(db, sql, err);
    if (param != NULL)
        sqlite3_bind_text(st, 1, param, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail_sql(db, sql, err);
    return DUKA_OK;
}

/* Runs a statement with optional text parameter ?1 to the end. */
static duka_rc run1(sqlite3 *db, const char *sql, const char *param, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail_sql(db, sql, err);
    if (param != NULL)
        sqlite3_bind_text(st, 1, param, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return fail_sql(db, sql, err);
    return DUKA_OK;
}

static duka_rc attach(sqlite3 *db, const char *path, const char *alias, duka_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return duka_err_set(err, DUKA_NOTFOUND, "checker: database '%s' not found", path);
    fclose(f);
    char *uri = sqlite3_mprintf("file:%s?mode=ro", path);
    char *sql = sqlite3_mprintf("ATTACH %Q AS %s", uri, alias);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_free(sql);
    sqlite3_free(uri);
    if (rc != SQLITE_OK)
        return duka_err_set(err, DUKA_STORE, "checker: cannot open '%s': %s", path,
                            sqlite3_errmsg(db));
    return DUKA_OK;
}

/* Records the first problem found (later ones only count). */
static void problem(duka_check_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(duka_check_report *rep, const char *fmt, ...)
{
    if (rep->first_problem[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->first_problem, sizeof(rep->first_problem), fmt, ap);
    va_end(ap);
}

/* Names one example row of a query (its first column) in the report's first problem. */
static void example(sqlite3 *db, duka_check_report *rep, const char *what, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (rep->first_problem[0] != '\0' || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(st) == SQLITE_ROW)
        problem(rep, "%s: %s", what, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static duka_rc load_till(sqlite3 *db, int index, const char *path, bool etims,
                         duka_check_report *rep, duka_err *err)
{
    duka_rc rc = attach(db, path, "t", err);
    if (rc != DUKA_OK)
        return rc;
    char idx[16];
    snprintf(idx, sizeof(idx), "%d", index);
    rc = run1(db,
              "INSERT INTO tsale SELECT CAST(?1 AS INTEGER), s.receipt_no, s.command_id,"
              " s.total_cents, s.tax_cents, " LINES_SIG("s", "t") ","
              " EXISTS (SELECT 1 FROM t.outbox o WHERE o.command_id = s.command_id)"
              " FROM t.sales s",
              idx, err);
    int64_t open_items = 0;
    if (rc == DUKA_OK)
        rc = scalar(db, "SELECT count(*) FROM t.outbox WHERE status <> 'done'", NULL,
                    &open_items, err);
    rep->queue_not_empty += open_items; /* counted only when drain is required */
    /* The signatures the till got back from the hub (a till schema before etims_receipts
     * has none: its sales count as unsigned when invoices are required). */
    if (rc == DUKA_OK && etims) {
        int64_t has = 0;
        rc = scalar(db, "SELECT count(*) FROM t.sqlite_master WHERE type = 'table'"
                        " AND name = 'etims_receipts'", NULL, &has, err);
        if (rc == DUKA_OK)
            rc = run1(db, has ? "INSERT INTO ttill VALUES(CAST(?1 AS INTEGER), 1)"
                              : "INSERT INTO ttill VALUES(CAST(?1 AS INTEGER), 0)",
                      idx, err);
        if (rc == DUKA_OK && has)
            rc = run1(db,
                      "INSERT INTO tsig SELECT CAST(?1 AS INTEGER), receipt_no, kind, invc_no,"
                      " rcpt_no, tot_rcpt_no, sdc_id, cu_invoice_no, intrl_data, rcpt_sign"
                      " FROM t.etims_receipts",
                      idx, err);
    }
    /* Its M-Pesa payments (every till schema has payments). */
    if (rc == DUKA_OK)
        rc = run1(db,
                  "INSERT INTO tpay SELECT CAST(?1 AS INTEGER), s.receipt_no, upper(p.reference),"
                  " p.amount_cents, p.status FROM t.payments p JOIN t.sales s ON s.id = p.sale_id"
                  " WHERE p.method = 'mpesa' AND s.kind = 'sale'",
                  idx, err);
    if (sqlite3_exec(db, "DETACH t", NULL, NULL, NULL) != SQLITE_OK && rc == DUKA_OK)
        rc = fail_sql(db, "detaching a till", err);
    return rc;
}

/* Band sums of a sale's lines at the hub, A..E: what its invoice must carry. */
#define BAND_SUMS(col)                                                                       \
    " sum(CASE l.tax_band WHEN 'A' THEN l." col " ELSE 0 END),"                             \
    " sum(CASE l.tax_band WHEN 'B' THEN l." col " ELSE 0 END),"                             \
    " sum(CASE l.tax_band WHEN 'C' THEN l." col " ELSE 0 END),"                             \
    " sum(CASE l.tax_band WHEN 'D' THEN l." col " ELSE 0 END),"                             \
    " sum(CASE l.tax_band WHEN 'E' THEN l." col " ELSE 0 END)"

/* The eTIMS side of the hub (attached as h): the businesses' KRA PINs, each sale's band
 * totals, the eTIMS outbox items (a hub database from before the outbox has none). */
static duka_rc load_hub_etims(sqlite3 *db, const char *b, duka_err *err)
{
    duka_rc rc = run1(db,
                      "INSERT INTO hbiz SELECT id, kra_pin FROM h.businesses"
                      " WHERE ?1 IS NULL OR id = ?1",
                      b, err);
    if (rc == DUKA_OK)
        rc = run1(db,
                  "INSERT INTO hband SELECT s.receipt_no, s.business_id, b.kra_pin,"
                  " coalesce(sum(l.line_total_cents), 0)," BAND_SUMS("line_total_cents") ","
                  BAND_SUMS("tax_cents") ", CASE s.kind WHEN 'refund' THEN 'R' ELSE 'S' END,"
                  " coalesce(s.original_receipt_no, '')"
                  " FROM h.sales s JOIN h.businesses b ON b.id = s.business_id"
                  " LEFT JOIN h.sale_lines l ON l.sale_id = s.id"
                  " WHERE ?1 IS NULL OR s.business_id = ?1 GROUP BY s.id",
                  b, err);
    int64_t has = 0;
    if (rc == DUKA_OK)
        rc = scalar(db, "SELECT count(*) FROM h.sqlite_master WHERE type = 'table'"
                        " AND name = 'hub_outbox'", NULL, &has, err);
    if (rc == DUKA_OK && has)
        rc = run1(db,
                  "INSERT INTO hjob SELECT business_id, entity_id, command_type, seq_no, status,"
                  " coalesce(last_error, '') FROM h.hub_outbox WHERE destination = 'etims'"
                  " AND (?1 IS NULL OR business_id = ?1)",
                  b, err);
    return rc;
}

static duka_rc load_hub(sqlite3 *db, const duka_check_input *in, duka_check_report *rep,
                        duka_err *err)
{
    duka_rc rc = attach(db, in->hub_db, "h", err);
    if (rc != DUKA_OK)
        return rc;
    const char *b = in->business_id;
    rc = exec(db,
              "CREATE TEMP TABLE hpay AS SELECT id, sale_id, method, amount_cents, reference"
              " FROM h.payments;"
              "CREATE INDEX temp.hpay_sale ON hpay(sale_id, id);",
              "copying the hub's payments", err);
    if (rc == DUKA_OK)
        rc = run1(db,
                  "INSERT INTO hsale SELECT s.receipt_no, s.command_id, s.total_cents,"
                  " s.tax_cents, " LINES_SIG_OF("s", "h.sale_lines", "temp.hpay")
                  " FROM h.sales s WHERE ?1 IS NULL OR s.business_id = ?1",
                  b, err);
    if (rc == DUKA_OK)
        rc = scalar(db,
                    "SELECT count(*) FROM h.sale_lines l JOIN h.sales s ON s.id = l.sale_id"
                    " WHERE ?1 IS NULL OR s.business_id = ?1",
                    b, &rep->hub_lines, err);
    if (rc == DUKA_OK)
        rc = scalar(db, "SELECT count(*) FROM h.conflicts WHERE ?1 IS NULL OR business_id = ?1",
                    b, &rep->conflicts, err);
    /* The hub's stock movements of sales (stock_movements), per business and SKU, against its
     * sales' lines: a sale moves stock by its lines, once. */
    if (rc == DUKA_OK)
        rc = scalar(db,
                    "SELECT count(*) FROM ("
                    "  SELECT business_id, sku, sum(delta_milli) AS d FROM h.stock_movements"
                    "   WHERE reason IN ('sale', 'refund') AND (?1 IS NULL OR business_id = ?1)"
                    "   GROUP BY business_id, sku) mov"
                    " FULL JOIN ("
                    "  SELECT s.business_id, l.sku, sum(CASE s.kind WHEN 'refund' THEN l.qty_milli"
                    "   ELSE -l.qty_milli END) AS d FROM h.sale_lines l"
                    "   JOIN h.sales s ON s.id = l.sale_id WHERE ?1 IS NULL OR s.business_id = ?1"
                    "   GROUP BY s.business_id, l.sku) sal"
                    " USING (business_id, sku) WHERE coalesce(mov.d, 0) <> coalesce(sal.d, 0)",
                    b, &rep->stock_mismatch, err);
    /* Every refund within its sale at the hub: per line of the sale, what its refunds gave
     * back adds up to at most the line's quantity and total, and the sale is there. */
    if (rc == DUKA_OK)
        rc = scalar(db,
                    "SELECT count(*) FROM (SELECT r.business_id AS b, r.original_receipt_no AS o,"
                    "  l.original_line AS n, sum(l.qty_milli) AS q, sum(l.line_total_cents) AS c"
                    "  FROM h.sales r JOIN h.sale_lines l ON l.sale_id = r.id"
                    "  WHERE r.kind = 'refund' AND (?1 IS NULL OR r.business_id = ?1)"
                    "  GROUP BY 1, 2, 3) x"
                    " LEFT JOIN h.sales s ON s.business_id = x.b AND s.receipt_no = x.o"
                    "  AND s.kind = 'sale'"
                    " LEFT JOIN h.sale_lines sl ON sl.sale_id = s.id AND sl.line_no = x.n"
                    " WHERE sl.sale_id IS NULL OR x.q > sl.qty_milli OR x.c > sl.line_total_cents",
                    b, &rep->refund_exceeds, err);
    if (rc == DUKA_OK && in->etims_state != NULL)
        rc = load_hub_etims(db, b, err);
    if (sqlite3_exec(db, "DETACH h", NULL, NULL, NULL) != SQLITE_OK && rc == DUKA_OK)
        rc = fail_sql(db, "detaching the hub", err);
    return rc;
}

/* Splits "T01-20261121-00042" into the part before the last '-' and the sequence. */
typedef struct receipt_ref {
    char prefix[64];
    long long seq;
} receipt_ref;

static bool split_receipt(const char *r, receipt_ref *out)
{
    const char *dash = strrchr(r, '-');
    if (dash == NULL || (size_t)(dash - r) >= sizeof(out->prefix) || dash[1] == '\0')
        return false;
    char *end = NULL;
    out->seq = strtoll(dash + 1, &end, 10);
    if (*end != '\0' || out->seq <= 0)
        return false;
    memcpy(out->prefix, r, (size_t)(dash - r));
    out->prefix[dash - r] = '\0';
    return true;
}

static int receipt_cmp(const void *a, const void *b)
{
    const receipt_ref *x = a, *y = b;
    int c = strcmp(x->prefix, y->prefix);
    if (c != 0)
        return c;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Receipt numbers the tills issued, per terminal and day, must be exactly 1..N. */
static duka_rc check_receipts(sqlite3 *db, duka_check_report *rep, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT receipt_no FROM tsale", -1, &st, NULL) != SQLITE_OK)
        return fail_sql(db, "reading receipts", err);
    receipt_ref *v = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        receipt_ref x;
        if (r == NULL || !split_receipt(r, &x)) {
            rep->receipt_gaps++;
            problem(rep, "receipt number '%s' is not TERMINAL-YYYYMMDD-SEQ", r ? r : "(null)");
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            receipt_ref *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                free(v);
                sqlite3_finalize(st);
                return duka_err_set(err, DUKA_NOMEM, "checker: out of memory");
            }
            v = nv;
        }
        v[n++] = x;
    }
    sqlite3_finalize(st);
    if (n > 0)
        qsort(v, n, sizeof(*v), receipt_cmp);
    for (size_t i = 0; i < n;) {
        long long expect = 1;
        size_t j = i;
        for (; j < n && strcmp(v[j].prefix, v[i].prefix) == 0; j++) {
            if (v[j].seq < expect) {
                rep->receipt_dupes++;
                problem(rep, "receipt %s-%05lld issued twice", v[j].prefix, v[j].seq);
                continue;
            }
            if (v[j].seq > expect) {
                rep->receipt_gaps += v[j].seq - expect;
                problem(rep, "receipt %s-%05lld missing (the next one is %05lld)", v[j].prefix,
                        expect, v[j].seq);
            }
            expect = v[j].seq + 1;
        }
        i = j;
    }
    free(v);
    return DUKA_OK;
}

/* Two acknowledgements of one receipt number: two customers were shown the same number. */
static duka_rc load_acks(sqlite3 *db, const duka_check_input *in, duka_check_report *rep,
                         duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO ack VALUES(?1, ?2)", -1, &st, NULL) != SQLITE_OK)
        return fail_sql(db, "loading acknowledgements", err);
    for (int i = 0; i < in->acked_count; i++) {
        sqlite3_bind_text(st, 1, in->acked[i].receipt_no, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, in->acked[i].total_cents);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_CONSTRAINT) {
            rep->receipt_dupes++;
            problem(rep, "receipt %s acknowledged twice", in->acked[i].receipt_no);
            continue;
        }
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return fail_sql(db, "loading acknowledgements", err);
        }
    }
    sqlite3_finalize(st);
    return DUKA_OK;
}

/* Adds the count of a query to *field and names its first row when it is not zero. */
static duka_rc count_into(sqlite3 *db, duka_check_report *rep, int64_t *field,
                          const char *what, const char *count_sql, const char *example_sql,
                          duka_err *err)
{
    int64_t n = 0;
    duka_rc rc = scalar(db, count_sql, NULL, &n, err);
    if (rc != DUKA_OK)
        return rc;
    *field += n;
    if (n > 0)
        example(db, rep, what, example_sql);
    return DUKA_OK;
}

static duka_rc compare(sqlite3 *db, const duka_check_input *in, duka_check_report *rep,
                       duka_err *err)
{
    bool hub = in->hub_db != NULL;
    duka_rc rc = DUKA_OK;
#define COUNT(field, what, where_sql)                                                       \
    if (rc == DUKA_OK)                                                                       \
        rc = count_into(db, rep, &rep->field, what, "SELECT count(*) FROM " where_sql,      \
                        "SELECT receipt_no FROM " where_sql " LIMIT 1", err)
    if (hub) {
        COUNT(lost, "lost: acknowledged at a till, not at the hub",
              "ack WHERE receipt_no NOT IN (SELECT receipt_no FROM hsale)");
        if (in->require_drained)
            COUNT(lost, "lost: committed at a till, never reached the hub",
                  "tsale WHERE receipt_no NOT IN (SELECT receipt_no FROM hsale)"
                  " AND receipt_no NOT IN (SELECT receipt_no FROM ack)");
        COUNT(duplicated, "duplicated: a till sale at the hub under another command id",
              "tsale t JOIN hsale h USING (receipt_no) WHERE t.command_id <> h.command_id");
        if (rc == DUKA_OK) {
            int64_t rows = 0, distinct = 0;
            rc = scalar(db, "SELECT count(*) FROM hsale", NULL, &rows, err);
            if (rc == DUKA_OK)
                rc = scalar(db, "SELECT count(DISTINCT receipt_no) FROM hsale", NULL, &distinct,
                            err);
            if (rows > distinct) {
                rep->duplicated += rows - distinct;
                problem(rep, "duplicated: %lld receipt numbers at the hub more than once",
                        (long long)(rows - distinct));
            }
        }
        if (in->till_count > 0)
            COUNT(unexpected, "unexpected: at the hub, never committed by a till",
                  "hsale WHERE receipt_no NOT IN (SELECT receipt_no FROM tsale)");
        COUNT(mismatched, "mismatched: totals or lines differ between till and hub",
              "tsale t JOIN hsale h USING (receipt_no) WHERE t.total <> h.total"
              " OR t.tax <> h.tax OR coalesce(t.sig, '') <> coalesce(h.sig, '')");
    } else {
        COUNT(lost, "lost: acknowledged, not in the till's database",
              "ack WHERE receipt_no NOT IN (SELECT receipt_no FROM tsale)");
    }
    if (in->till_count > 0)
        COUNT(mismatched, "mismatched: the acknowledged total differs from the till's",
              "ack a JOIN tsale t USING (receipt_no) WHERE a.total >= 0 AND a.total <> t.total");
    COUNT(orphan_sales, "a till sale with no outbox command",
          "tsale WHERE has_outbox = 0 AND receipt_no NOT IN (SELECT receipt_no FROM hsale)");
#undef COUNT
    return rc;
}

/* The invoices the eTIMS simulator accepted for the businesses' KRA PINs (its state file,
 * attached read-only as e), with the signing device's sdcId. */
static duka_rc load_etims(sqlite3 *db, const char *path, duka_err *err)
{
    duka_rc rc = attach(db, path, "e", err);
    if (rc != DUKA_OK)
        return rc;
    rc = run1(db,
              "INSERT INTO einv SELECT i.tin, i.bhf_id, i.invc_no, i.trd_invc_no, i.rcpt_ty_cd,"
              " i.tot_amt, i.taxbl_a, i.taxbl_b, i.taxbl_c, i.taxbl_d, i.taxbl_e, i.tax_a,"
              " i.tax_b, i.tax_c, i.tax_d, i.tax_e, i.cur_rcpt_no, i.tot_rcpt_no, i.intrl_data,"
              " i.rcpt_sign, d.sdc_id, i.org_invc_no FROM e.invoices i LEFT JOIN e.devices d ON d.id = i.device_id"
              " WHERE i.tin IN (SELECT tin FROM hbiz WHERE tin <> '')",
              NULL, err);
    if (sqlite3_exec(db, "DETACH e", NULL, NULL, NULL) != SQLITE_OK && rc == DUKA_OK)
        rc = fail_sql(db, "detaching the eTIMS simulator's state", err);
    return rc;
}

/* Per KRA PIN (branch 00), N = max(its business's hub sales, the highest invcNo accepted):
 * the numbers 1..N, for the no-gap check. */
#define INVC_SERIES                                                                          \
    "WITH RECURSIVE z(tin, n) AS (SELECT b.tin, max((SELECT count(*) FROM hband h"            \
    "   WHERE h.tin = b.tin), coalesce((SELECT max(invc_no) FROM einv e WHERE e.tin = b.tin"  \
    "   AND e.bhf_id = '" DUKA_ETIMS_BRANCH_DEFAULT "'), 0))"                                 \
    "   FROM (SELECT DISTINCT tin FROM hbiz WHERE tin <> '') b),"                             \
    " k(tin, i, n) AS (SELECT tin, 1, n FROM z WHERE n >= 1"                                  \
    "   UNION ALL SELECT tin, i + 1, n FROM k WHERE i < n)"                                   \
    " SELECT %s FROM k WHERE NOT EXISTS (SELECT 1 FROM einv e WHERE e.tin = k.tin"            \
    "   AND e.bhf_id = '" DUKA_ETIMS_BRANCH_DEFAULT "' AND e.invc_no = k.i)"

/* The invoice of a hub receipt: its KRA PIN and receipt number, a sale's (S) or a refund's
 * credit note (R). */
#define INVOICE_OF_SALE "einv e JOIN hband h ON h.tin = e.tin AND h.receipt_no = e.trd_invc_no" \
                        " WHERE e.rcpt_ty_cd = h.ty"

/* The hub outbox's job type of a receipt's invoice. */
#define JOB_TYPE "CASE h.ty WHEN 'R' THEN 'etims.credit_note' ELSE 'etims.sale' END"
/* A credit note e of refund h whose orgInvcNo is not the invcNo of h's sale's invoice. */
#define ORG_WRONG                                                                            \
    "NOT EXISTS (SELECT 1 FROM einv o WHERE o.tin = e.tin AND o.trd_invc_no = h.org"         \
    " AND o.rcpt_ty_cd = 'S' AND o.invc_no = e.org_invc_no)"

static duka_rc compare_etims(sqlite3 *db, const duka_check_input *in, duka_check_report *rep,
                             duka_err *err)
{
    bool req = in->require_invoiced;
    duka_rc rc = DUKA_OK;
#define COUNT2(field, what, count_sql, example_sql)                                         \
    if (rc == DUKA_OK)                                                                       \
        rc = count_into(db, rep, &rep->field, what, count_sql, example_sql, err)
    if (req)
        COUNT2(uninvoiced, "uninvoiced: a hub sale (refund) eTIMS never accepted an invoice "
               "(credit note) of",
               "SELECT count(*) FROM hband h WHERE NOT EXISTS (SELECT 1 FROM einv e"
               " WHERE e.tin = h.tin AND e.trd_invc_no = h.receipt_no AND e.rcpt_ty_cd = h.ty)",
               "SELECT h.receipt_no || coalesce(' (hub outbox: invcNo ' || (SELECT seq_no || ' '"
               " || status || coalesce(' ' || nullif(last_error, ''), '') FROM hjob j"
               " WHERE j.business_id = h.business_id AND j.receipt_no = h.receipt_no LIMIT 1)"
               " || ')', ' (no eTIMS item at the hub)') FROM hband h WHERE NOT EXISTS (SELECT 1"
               " FROM einv e WHERE e.tin = h.tin AND e.trd_invc_no = h.receipt_no"
               " AND e.rcpt_ty_cd = h.ty) LIMIT 1");
    COUNT2(double_invoiced, "double_invoiced: a hub sale accepted by eTIMS more than once",
           "SELECT count(*) FROM (SELECT 1 FROM " INVOICE_OF_SALE
           " GROUP BY h.tin, h.receipt_no HAVING count(*) > 1)",
           "SELECT h.receipt_no || ' as invcNo ' || group_concat(e.invc_no, ' and ') FROM "
           INVOICE_OF_SALE " GROUP BY h.tin, h.receipt_no HAVING count(*) > 1 LIMIT 1");
    COUNT2(invoice_unexpected, "invoice_unexpected: accepted by eTIMS, no hub sale of it",
           "SELECT count(*) FROM einv e WHERE NOT EXISTS (SELECT 1 FROM hband h"
           " WHERE h.tin = e.tin AND h.receipt_no = e.trd_invc_no AND h.ty = e.rcpt_ty_cd)",
           "SELECT e.tin || '/' || e.bhf_id || ' invcNo ' || e.invc_no || ' trdInvcNo '"
           " || e.trd_invc_no || ' rcptTyCd ' || e.rcpt_ty_cd FROM einv e WHERE NOT EXISTS"
           " (SELECT 1 FROM hband h WHERE h.tin = e.tin AND h.receipt_no = e.trd_invc_no"
           " AND h.ty = e.rcpt_ty_cd) LIMIT 1");
    COUNT2(invc_dupes, "invc_dupes: one invcNo accepted twice",
           "SELECT coalesce(sum(n - d), 0) FROM (SELECT count(*) AS n,"
           " count(DISTINCT invc_no) AS d FROM einv GROUP BY tin, bhf_id)",
           "SELECT tin || '/' || bhf_id || ' invcNo ' || invc_no FROM einv"
           " GROUP BY tin, bhf_id, invc_no HAVING count(*) > 1 LIMIT 1");
    if (req) {
        char count_sql[2048], example_sql[2048];
        snprintf(count_sql, sizeof(count_sql), INVC_SERIES, "count(*)");
        snprintf(example_sql, sizeof(example_sql), INVC_SERIES " LIMIT 1",
                 "tin || '/" DUKA_ETIMS_BRANCH_DEFAULT " invcNo ' || i || ' of 1..' || n");
        COUNT2(invc_gaps, "invc_gaps: an invcNo eTIMS never accepted", count_sql, example_sql);
    }
    COUNT2(invoice_mismatch, "invoice_mismatch: band totals differ from the sale's lines",
           "SELECT count(*) FROM " INVOICE_OF_SALE " AND (e.tot <> h.tot"
           " OR e.taxbl_a <> h.taxbl_a OR e.taxbl_b <> h.taxbl_b OR e.taxbl_c <> h.taxbl_c"
           " OR e.taxbl_d <> h.taxbl_d OR e.taxbl_e <> h.taxbl_e OR e.tax_a <> h.tax_a"
           " OR e.tax_b <> h.tax_b OR e.tax_c <> h.tax_c OR e.tax_d <> h.tax_d"
           " OR e.tax_e <> h.tax_e)",
           "SELECT h.receipt_no || ' (invcNo ' || e.invc_no || '): totAmt ' || e.tot"
           " || ' taxbl ' || e.taxbl_a || '/' || e.taxbl_b || '/' || e.taxbl_c || '/'"
           " || e.taxbl_d || '/' || e.taxbl_e || ' tax ' || e.tax_a || '/' || e.tax_b || '/'"
           " || e.tax_c || '/' || e.tax_d || '/' || e.tax_e || ' cents; the hub''s lines: '"
           " || h.tot || ' taxbl ' || h.taxbl_a || '/' || h.taxbl_b || '/' || h.taxbl_c || '/'"
           " || h.taxbl_d || '/' || h.taxbl_e || ' tax ' || h.tax_a || '/' || h.tax_b || '/'"
           " || h.tax_c || '/' || h.tax_d || '/' || h.tax_e FROM " INVOICE_OF_SALE
           " AND (e.tot <> h.tot OR e.taxbl_a <> h.taxbl_a OR e.taxbl_b <> h.taxbl_b"
           " OR e.taxbl_c <> h.taxbl_c OR e.taxbl_d <> h.taxbl_d OR e.taxbl_e <> h.taxbl_e"
           " OR e.tax_a <> h.tax_a OR e.tax_b <> h.tax_b OR e.tax_c <> h.tax_c"
           " OR e.tax_d <> h.tax_d OR e.tax_e <> h.tax_e) LIMIT 1");
    COUNT2(invoice_mismatch, "invoice_mismatch: accepted under another invcNo than the hub's",
           "SELECT count(*) FROM " INVOICE_OF_SALE " AND EXISTS (SELECT 1 FROM hjob j"
           " WHERE j.business_id = h.business_id AND j.receipt_no = h.receipt_no"
           " AND j.command_type = " JOB_TYPE " AND j.seq_no <> e.invc_no)",
           "SELECT h.receipt_no || ' accepted as invcNo ' || e.invc_no || ', the hub''s is '"
           " || (SELECT group_concat(seq_no) FROM hjob j WHERE j.business_id = h.business_id"
           " AND j.receipt_no = h.receipt_no AND j.command_type = " JOB_TYPE ") FROM "
           INVOICE_OF_SALE " AND EXISTS (SELECT 1 FROM hjob j WHERE j.business_id ="
           " h.business_id AND j.receipt_no = h.receipt_no AND j.command_type = " JOB_TYPE
           " AND j.seq_no <> e.invc_no) LIMIT 1");
    /* A credit note names the invoice of the sale its refund gives back (orgInvcNo). */
    COUNT2(invoice_mismatch, "invoice_mismatch: a credit note's orgInvcNo is not its sale's invcNo",
           "SELECT count(*) FROM " INVOICE_OF_SALE " AND h.ty = 'R' AND " ORG_WRONG,
           "SELECT h.receipt_no || ' (invcNo ' || e.invc_no || ') credits orgInvcNo '"
           " || e.org_invc_no || ', the invoice of ' || h.org || ' is '"
           " || coalesce((SELECT group_concat(o.invc_no) FROM einv o WHERE o.tin = e.tin"
           " AND o.trd_invc_no = h.org AND o.rcpt_ty_cd = 'S'), 'none') FROM " INVOICE_OF_SALE
           " AND h.ty = 'R' AND " ORG_WRONG " LIMIT 1");
    if (req)
        COUNT2(etims_not_done, "etims_not_done: a hub eTIMS item not done at the end",
               "SELECT count(*) FROM hjob WHERE status <> 'done'",
               "SELECT receipt_no || ' (invcNo ' || seq_no || ') ' || status"
               " || coalesce(': ' || nullif(last_error, ''), '') FROM hjob"
               " WHERE status <> 'done' ORDER BY seq_no LIMIT 1");
#define SIG_MATCHES                                                                          \
    " NOT EXISTS (SELECT 1 FROM einv e WHERE e.tin = (SELECT h.tin FROM hband h"             \
    "   WHERE h.receipt_no = s.receipt_no LIMIT 1) AND e.trd_invc_no = s.receipt_no"        \
    "   AND e.rcpt_ty_cd = CASE s.kind WHEN 'sale' THEN 'S' ELSE 'R' END"                    \
    "   AND e.invc_no = s.invc_no AND e.rcpt_sign = s.rcpt_sign"                             \
    "   AND e.intrl_data = s.intrl_data AND e.cur_rcpt_no = s.rcpt_no"                       \
    "   AND e.tot_rcpt_no = s.tot_rcpt_no AND e.sdc_id = s.sdc_id"                           \
    "   AND s.cu_invoice_no = e.sdc_id || '/' || e.invc_no)"
    COUNT2(signature_mismatch,
           "signature_mismatch: a till's signature is not the one eTIMS gave the receipt",
           "SELECT count(*) FROM tsig s WHERE" SIG_MATCHES,
           "SELECT 'till #' || (s.till + 1) || ' ' || s.receipt_no || ' ' || s.cu_invoice_no"
           " || ' rcptSign ' || s.rcpt_sign || coalesce(', eTIMS: invcNo ' || (SELECT"
           " group_concat(e.invc_no || ' rcptSign ' || e.rcpt_sign, '; ') FROM einv e"
           " WHERE e.trd_invc_no = s.receipt_no), ', eTIMS has no such invoice')"
           " FROM tsig s WHERE" SIG_MATCHES " LIMIT 1");
#undef SIG_MATCHES
    if (req)
        COUNT2(unsigned_sales, "unsigned: a till sale whose signature never came back",
               "SELECT count(*) FROM tsale t WHERE NOT EXISTS (SELECT 1 FROM tsig s"
               " WHERE s.till = t.till AND s.receipt_no = t.receipt_no)",
               "SELECT 'till #' || (t.till + 1) || ' ' || t.receipt_no || CASE WHEN (SELECT"
               " has_sig FROM ttill WHERE till = t.till) = 0 THEN ' (the till''s database has"
               " no etims_receipts)' ELSE '' END FROM tsale t WHERE NOT EXISTS (SELECT 1"
               " FROM tsig s WHERE s.till = t.till AND s.receipt_no = t.receipt_no) LIMIT 1");
#undef COUNT2
    if (rc == DUKA_OK)
        rc = scalar(db, "SELECT count(*) FROM einv", NULL, &rep->invoices, err);
    if (rc == DUKA_OK)
        rc = scalar(db, "SELECT count(*) FROM tsig", NULL, &rep->till_signed, err);
    return rc;
}

/* The payments the M-Pesa simulator holds (its state file, attached read-only as m), in
 * cents, and the tills' M-Pesa payments judged against them. */
static duka_rc check_mpesa(sqlite3 *db, const duka_check_input *in, duka_check_report *rep,
                           duka_err *err)
{
    duka_rc rc = attach(db, in->mpesa_state, "m", err);
    if (rc != DUKA_OK)
        return rc;
    rc = exec(db, "INSERT INTO mpay SELECT receipt, amount * 100 FROM m.payments",
              "reading the M-Pesa simulator's payments", err);
    if (sqlite3_exec(db, "DETACH m", NULL, NULL, NULL) != SQLITE_OK && rc == DUKA_OK)
        rc = fail_sql(db, "detaching the M-Pesa simulator's state", err);
#define COUNT3(field, what, count_sql, example_sql)                                         \
    if (rc == DUKA_OK)                                                                       \
        rc = scalar(db, count_sql, NULL, &rep->field, err);                                  \
    if (rc == DUKA_OK && rep->field > 0)                                                     \
        example(db, rep, what, example_sql);
#define WRONG " FROM tpay t WHERE t.status = 'verified' AND NOT EXISTS (SELECT 1 FROM mpay m" \
              " WHERE m.receipt = t.code AND m.cents = t.cents)"
    COUNT3(mpesa_wrongly_verified, "mpesa_wrongly_verified: a code verified that M-Pesa does not "
                                   "hold with that amount",
           "SELECT count(*)" WRONG,
           "SELECT 'till #' || (t.till + 1) || ' ' || t.receipt_no || ' ' || t.code"
           " || ' KES ' || (t.cents / 100.0)" WRONG " LIMIT 1");
#undef WRONG
#define TWICE " FROM (SELECT code, count(DISTINCT receipt_no) n, group_concat(receipt_no) r" \
              " FROM tpay WHERE status = 'verified' GROUP BY code) WHERE n > 1"
    COUNT3(mpesa_double_credit, "mpesa_double_credit: one M-Pesa receipt verified on two sales",
           "SELECT count(*)" TWICE, "SELECT code || ' on ' || r" TWICE " LIMIT 1");
#undef TWICE
    if (in->require_mpesa_decided) {
        COUNT3(mpesa_undecided, "mpesa_undecided: a typed code still pending verification",
               "SELECT count(*) FROM tpay WHERE status = 'pending_verification'",
               "SELECT 'till #' || (till + 1) || ' ' || receipt_no || ' ' || code FROM tpay"
               " WHERE status = 'pending_verification' LIMIT 1");
    }
#undef COUNT3
    if (rc == DUKA_OK)
        rc = scalar(db, "SELECT count(*) FROM tpay WHERE status = 'verified'", NULL,
                    &rep->mpesa_verified, err);
    if (rc == DUKA_OK)
        rc = scalar(db, "SELECT count(*) FROM tpay WHERE status = 'flagged'", NULL,
                    &rep->mpesa_flagged, err);
    return rc;
}

duka_rc duka_check_run(const duka_check_input *in, duka_check_report *rep, duka_err *err)
{
    memset(rep, 0, sizeof(*rep));
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(":memory:", &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return duka_err_set(err, DUKA_STORE, "checker: cannot open a memory database");
    }
    duka_rc rc = exec(db,
                      "CREATE TABLE tsale (till INTEGER, receipt_no TEXT, command_id TEXT,"
                      " total INTEGER, tax INTEGER, sig TEXT, has_outbox INTEGER);"
                      "CREATE INDEX tsale_receipt ON tsale(receipt_no);"
                      "CREATE TABLE hsale (receipt_no TEXT, command_id TEXT, total INTEGER,"
                      " tax INTEGER, sig TEXT);"
                      "CREATE INDEX hsale_receipt ON hsale(receipt_no);"
                      "CREATE TABLE ack (receipt_no TEXT PRIMARY KEY, total INTEGER);"
                      /* eTIMS: the tills' signatures, the hub's businesses, sales' band
                       * totals and eTIMS items, the simulator's accepted invoices. */
                      "CREATE TABLE ttill (till INTEGER PRIMARY KEY, has_sig INTEGER);"
                      "CREATE TABLE tsig (till INTEGER, receipt_no TEXT, kind TEXT,"
                      " invc_no INTEGER, rcpt_no INTEGER, tot_rcpt_no INTEGER, sdc_id TEXT,"
                      " cu_invoice_no TEXT, intrl_data TEXT, rcpt_sign TEXT);"
                      "CREATE INDEX tsig_receipt ON tsig(till, receipt_no);"
                      "CREATE INDEX tsig_receipt_only ON tsig(receipt_no);"
                      "CREATE TABLE hbiz (business_id TEXT, tin TEXT);"
                      "CREATE TABLE hband (receipt_no TEXT, business_id TEXT, tin TEXT,"
                      " tot INTEGER, taxbl_a INTEGER, taxbl_b INTEGER, taxbl_c INTEGER,"
                      " taxbl_d INTEGER, taxbl_e INTEGER, tax_a INTEGER, tax_b INTEGER,"
                      " tax_c INTEGER, tax_d INTEGER, tax_e INTEGER, ty TEXT, org TEXT);"
                      "CREATE INDEX hband_tin ON hband(tin, receipt_no);"
                      "CREATE INDEX hband_receipt ON hband(receipt_no);"
                      "CREATE TABLE hjob (business_id TEXT, receipt_no TEXT, command_type TEXT,"
                      " seq_no INTEGER, status TEXT, last_error TEXT);"
                      "CREATE INDEX hjob_receipt ON hjob(business_id, receipt_no);"
                      "CREATE TABLE einv (tin TEXT, bhf_id TEXT, invc_no INTEGER,"
                      " trd_invc_no TEXT, rcpt_ty_cd TEXT, tot INTEGER, taxbl_a INTEGER,"
                      " taxbl_b INTEGER, taxbl_c INTEGER, taxbl_d INTEGER, taxbl_e INTEGER,"
                      " tax_a INTEGER, tax_b INTEGER, tax_c INTEGER, tax_d INTEGER,"
                      " tax_e INTEGER, cur_rcpt_no INTEGER, tot_rcpt_no INTEGER,"
                      " intrl_data TEXT, rcpt_sign TEXT, sdc_id TEXT, org_invc_no INTEGER);"
                      "CREATE INDEX einv_trd ON einv(tin, trd_invc_no);"
                      "CREATE INDEX einv_trd_only ON einv(trd_invc_no);"
                      "CREATE INDEX einv_no ON einv(tin, bhf_id, invc_no);"
                      /* M-Pesa: the tills' M-Pesa payments, the simulator's payments. */
                      "CREATE TABLE tpay (till INTEGER, receipt_no TEXT, code TEXT,"
                      " cents INTEGER, status TEXT);"
                      "CREATE TABLE mpay (receipt TEXT PRIMARY KEY, cents INTEGER);",
                      "creating work tables", err);
    if (rc == DUKA_OK && in->etims_state != NULL && in->hub_db == NULL)
        rc = duka_err_set(err, DUKA_INPUT,
                          "checker: the eTIMS checks need the hub's database (--hub)");
    for (int i = 0; rc == DUKA_OK && i < in->till_count; i++)
        rc = load_till(db, i, in->till_dbs[i], in->etims_state != NULL, rep, err);
    if (rc == DUKA_OK && in->hub_db != NULL)
        rc = load_hub(db, in, rep, err);
    if (rc == DUKA_OK)
        rc = load_acks(db, in, rep, err);
    if (rc == DUKA_OK)
        rc = compare(db, in, rep, err);
    if (rc == DUKA_OK)
        rc = check_receipts(db, rep, err);
    if (rc == DUKA_OK && in->etims_state != NULL)
        rc = load_etims(db, in->etims_state, err);
    if (rc == DUKA_OK && in->etims_state != NULL) {
        rep->etims_checked = true;
        rc = compare_etims(db, in, rep, err);
    }
    if (rc == DUKA_OK && in->mpesa_state != NULL) {
        rep->mpesa_checked = true;
        rc = check_mpesa(db, in, rep, err);
    }
    if (rc == DUKA_OK) {
        rep->acked = in->acked_count;
        rc = scalar(db, "SELECT count(*) FROM tsale", NULL, &rep->till_sales, err);
    }
    if (rc == DUKA_OK)
        rc = scalar(db, "SELECT count(*) FROM hsale", NULL, &rep->hub_sales, err);
    sqlite3_close(db);
    if (rc != DUKA_OK)
        return rc;
    if (!in->require_drained)
        rep->queue_not_empty = 0;
    else if (rep->queue_not_empty > 0)
        problem(rep, "%lld outbox items not done at the end", (long long)rep->queue_not_empty);
    if (rep->refund_exceeds > 0)
        problem(rep, "%lld sale lines refunded beyond what was sold (or refunds of no sale)",
                (long long)rep->refund_exceeds);
    if (rep->stock_mismatch > 0)
        problem(rep, "%lld SKUs whose stock movements at the hub differ from their sales",
                (long long)rep->stock_mismatch);
    if (in->expect_no_conflicts && rep->conflicts > 0)
        problem(rep, "%lld conflicts logged at the hub", (long long)rep->conflicts);
    rep->ok = rep->lost == 0 && rep->duplicated == 0 && rep->unexpected == 0 &&
              rep->mismatched == 0 && rep->receipt_gaps == 0 && rep->receipt_dupes == 0 &&
              rep->orphan_sales == 0 && rep->stock_mismatch == 0 && rep->queue_not_empty == 0 &&
              rep->refund_exceeds == 0 &&
              (!in->expect_no_conflicts || rep->conflicts == 0) && rep->uninvoiced == 0 &&
              rep->double_invoiced == 0 && rep->invoice_unexpected == 0 &&
              rep->invc_gaps == 0 && rep->invc_dupes == 0 && rep->invoice_mismatch == 0 &&
              rep->etims_not_done == 0 && rep->signature_mismatch == 0 &&
              rep->unsigned_sales == 0 && rep->mpesa_wrongly_verified == 0 &&
              rep->mpesa_double_credit == 0 && rep->mpesa_undecided == 0;
    return DUKA_OK;
}

duka_rc duka_check_read_acks(const char *path, duka_check_ack **out, int *count, duka_err *err)
{
    *out = NULL;
    *count = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return duka_err_set(err, DUKA_NOTFOUND, "acknowledgement file '%s' not found", path);
    duka_check_ack *v = NULL;
    int n = 0, cap = 0, lineno = 0;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char receipt[64];
        long long total = -1;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        int got = sscanf(line, "%63s %lld", receipt, &total);
        if (got < 1) {
            free(v);
            fclose(f);
            return duka_err_set(err, DUKA_INPUT, "%s line %d: expected RECEIPT_NO [TOTAL_CENTS]",
                                path, lineno);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            duka_check_ack *nv = realloc(v, (size_t)cap * sizeof(*v));
            if (nv == NULL) {
                free(v);
                fclose(f);
                return duka_err_set(err, DUKA_NOMEM, "out of memory reading %s", path);
            }
            v = nv;
        }
        snprintf(v[n].receipt_no, sizeof(v[n].receipt_no), "%s", receipt);
        v[n].total_cents = got == 2 ? total : -1;
        n++;
    }
    fclose(f);
    *out = v;
    *count = n;
    return DUKA_OK;
}

#define REPORT_FIELDS(X)                                                                     \
    X(acked) X(till_sales) X(hub_sales) X(hub_lines) X(lost) X(duplicated) X(unexpected)    \
    X(mismatched) X(receipt_gaps) X(receipt_dupes) X(orphan_sales) X(stock_mismatch)        \
    X(queue_not_empty) X(conflicts) X(refund_exceeds)
/* Only when etims_checked: (field, name in the report) */
#define ETIMS_FIELDS(Y)                                                                      \
    Y(invoices, "invoices") Y(till_signed, "till_signed") Y(uninvoiced, "uninvoiced")      \
    Y(double_invoiced, "double_invoiced") Y(invoice_unexpected, "invoice_unexpected")      \
    Y(invc_gaps, "invc_gaps") Y(invc_dupes, "invc_dupes")                                  \
    Y(invoice_mismatch, "invoice_mismatch") Y(etims_not_done, "etims_not_done")            \
    Y(signature_mismatch, "signature_mismatch") Y(unsigned_sales, "unsigned")
/* Only when mpesa_checked. */
#define MPESA_FIELDS(Y)                                                                      \
    Y(mpesa_verified, "mpesa_verified") Y(mpesa_flagged, "mpesa_flagged")                   \
    Y(mpesa_wrongly_verified, "mpesa_wrongly_verified")                                      \
    Y(mpesa_double_credit, "mpesa_double_credit") Y(mpesa_undecided, "mpesa_undecided")

json_t *duka_check_report_json(const duka_check_report *rep)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_boolean(rep->ok));
#define X(f) json_object_set_new(o, #f, json_integer((json_int_t)rep->f));
    REPORT_FIELDS(X)
#undef X
#define Y(f, name) json_object_set_new(o, name, json_integer((json_int_t)rep->f));
    if (rep->etims_checked) {
        ETIMS_FIELDS(Y)
    }
    if (rep->mpesa_checked) {
        MPESA_FIELDS(Y)
    }
#undef Y
    json_object_set_new(o, "first_problem", json_string(rep->first_problem));
    return o;
}

void duka_check_print(FILE *f, const duka_check_report *rep)
{
    fprintf(f, "check: %s", rep->ok ? "ok" : "FAILED");
#define X(field) fprintf(f, " %s=%lld", #field, (long long)rep->field);
    REPORT_FIELDS(X)
#undef X
#define Y(field, name) fprintf(f, " %s=%lld", name, (long long)rep->field);
    if (rep->etims_checked) {
        ETIMS_FIELDS(Y)
    }
    if (rep->mpesa_checked) {
        MPESA_FIELDS(Y)
    }
#undef Y
    if (!rep->ok)
        fprintf(f, " — %s", rep->first_problem);
    fputc('\n', f);
}
