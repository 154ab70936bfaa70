/*
 * checker.c — the shared judge of the harnesses (see checker.h).
 *
 * Everything is read into temporary tables of one in-memory SQLite connection, the tills'
 * and the hub's databases attached read-only one at a time, and compared with SQL; receipt
 * sequences are checked in C. Sales are identified by receipt number (unique per business
 * by construction) and compared by command id, totals and a signature of their lines and payments.
 */
#include "checker.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A sale's cashier (id and name: who rang it up must reach the hub as the till recorded it),
 * its lines, then its payments (method, amount, reference: a split tender must reach the hub
 * as it was taken), as one comparable string, each in its order. */
#define LINES_SIG(alias, schema)                                                             \
    "(" alias ".cashier_id || ':' || " alias ".cashier_name || '|' ||"                    \
    " (SELECT group_concat(x, ';') FROM (SELECT line_no || ':' || sku || ':' || qty_milli ||" \
    " ':' || unit_price_cents || ':' || tax_band || ':' || line_total_cents || ':' ||"       \
    " tax_cents AS x FROM " schema ".sale_lines WHERE sale_id = " alias ".id"              \
    " ORDER BY line_no)) || '|' || coalesce((SELECT group_concat(x, ';') FROM (SELECT"      \
    " method || ':' || amount_cents || ':' || reference AS x FROM " schema ".payments"      \
    " WHERE sale_id = " alias ".id ORDER BY id)), ''))"

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

static duka_rc load_till(sqlite3 *db, int index, const char *path, duka_check_report *rep,
                         duka_err *err)
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
    if (sqlite3_exec(db, "DETACH t", NULL, NULL, NULL) != SQLITE_OK && rc == DUKA_OK)
        rc = fail_sql(db, "detaching a till", err);
    return rc;
}

static duka_rc load_hub(sqlite3 *db, const duka_check_input *in, duka_check_report *rep,
                        duka_err *err)
{
    duka_rc rc = attach(db, in->hub_db, "h", err);
    if (rc != DUKA_OK)
        return rc;
    const char *b = in->business_id;
    rc = run1(db,
              "INSERT INTO hsale SELECT s.receipt_no, s.command_id, s.total_cents, s.tax_cents, "
              LINES_SIG("s", "h") " FROM h.sales s WHERE ?1 IS NULL OR s.business_id = ?1",
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
                    "   WHERE reason = 'sale' AND (?1 IS NULL OR business_id = ?1)"
                    "   GROUP BY business_id, sku) mov"
                    " FULL JOIN ("
                    "  SELECT s.business_id, l.sku, -sum(l.qty_milli) AS d FROM h.sale_lines l"
                    "   JOIN h.sales s ON s.id = l.sale_id WHERE ?1 IS NULL OR s.business_id = ?1"
                    "   GROUP BY s.business_id, l.sku) sal"
                    " USING (business_id, sku) WHERE coalesce(mov.d, 0) <> coalesce(sal.d, 0)",
                    b, &rep->stock_mismatch, err);
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
                      "CREATE TABLE ack (receipt_no TEXT PRIMARY KEY, total INTEGER);",
                      "creating work tables", err);
    for (int i = 0; rc == DUKA_OK && i < in->till_count; i++)
        rc = load_till(db, i, in->till_dbs[i], rep, err);
    if (rc == DUKA_OK && in->hub_db != NULL)
        rc = load_hub(db, in, rep, err);
    if (rc == DUKA_OK)
        rc = load_acks(db, in, rep, err);
    if (rc == DUKA_OK)
        rc = compare(db, in, rep, err);
    if (rc == DUKA_OK)
        rc = check_receipts(db, rep, err);
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
    if (rep->stock_mismatch > 0)
        problem(rep, "%lld SKUs whose stock movements at the hub differ from their sales",
                (long long)rep->stock_mismatch);
    if (in->expect_no_conflicts && rep->conflicts > 0)
        problem(rep, "%lld conflicts logged at the hub", (long long)rep->conflicts);
    rep->ok = rep->lost == 0 && rep->duplicated == 0 && rep->unexpected == 0 &&
              rep->mismatched == 0 && rep->receipt_gaps == 0 && rep->receipt_dupes == 0 &&
              rep->orphan_sales == 0 && rep->stock_mismatch == 0 && rep->queue_not_empty == 0 &&
              (!in->expect_no_conflicts || rep->conflicts == 0);
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
    X(queue_not_empty) X(conflicts)

json_t *duka_check_report_json(const duka_check_report *rep)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_boolean(rep->ok));
#define X(f) json_object_set_new(o, #f, json_integer((json_int_t)rep->f));
    REPORT_FIELDS(X)
#undef X
    json_object_set_new(o, "first_problem", json_string(rep->first_problem));
    return o;
}

void duka_check_print(FILE *f, const duka_check_report *rep)
{
    fprintf(f, "check: %s", rep->ok ? "ok" : "FAILED");
#define X(field) fprintf(f, " %s=%lld", #field, (long long)rep->field);
    REPORT_FIELDS(X)
#undef X
    if (!rep->ok)
        fprintf(f, " — %s", rep->first_problem);
    fputc('\n', f);
}
