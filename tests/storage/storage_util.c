/* storage_util.c — workloads and checks shared by the storage harness (see storage_util.h). */
#include "storage_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/money.h"
#include "common/uuid.h"
#include "hub/hub_push.h"
#include "hub/product_import.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/till_db.h"

#ifdef DUKA_HAVE_CHECKER
#include "checker.h"
#endif

char st_context[256] = "setup";
static char work_dir[512]; /* kept on failure, for a look at the databases */

void st_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAILED (%s) at %s:%d: ", st_context, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (work_dir[0] != '\0')
        fprintf(stderr, "the databases are kept in %s\n", work_dir);
    fflush(stderr);
    exit(1);
}

int64_t st_env_int(const char *name, int64_t def, int64_t lo, int64_t hi)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return def;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 0);
    ST_CHECK(errno == 0 && end != v && *end == '\0' && x >= lo && x <= hi,
             "%s=%s: expected an integer from %lld to %lld", name, v, (long long)lo,
             (long long)hi);
    return (int64_t)x;
}

/* ---- files ---- */

/* Where scratch directories go: $DUKA_STORAGE_DIR, else /dev/shm when it is a writable
 * directory (a RAM filesystem: the VFS simulates durability, and on a disk busy with other
 * programs' fsyncs every create and unlink here would wait for its journal), else $TMPDIR,
 * else /tmp. */
static const char *scratch_base(void)
{
    const char *base = getenv("DUKA_STORAGE_DIR");
    if (base != NULL && base[0] != '\0')
        return base;
    if (access("/dev/shm", W_OK | X_OK) == 0)
        return "/dev/shm";
    base = getenv("TMPDIR");
    return base != NULL && base[0] != '\0' ? base : "/tmp";
}

void st_dir_make(char *out, size_t outlen, const char *prefix)
{
    snprintf(out, outlen, "%s/%s-XXXXXX", scratch_base(), prefix);
    ST_CHECK(mkdtemp(out) != NULL, "mkdtemp(%s): %s", out, strerror(errno));
    snprintf(work_dir, sizeof(work_dir), "%s", out);
}

void st_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    if (strcmp(dir, work_dir) == 0)
        work_dir[0] = '\0';
}

void st_db_remove(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[1024];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        if (unlink(p) != 0 && errno != ENOENT)
            ST_FAIL("unlink(%s): %s", p, strerror(errno));
    }
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    ST_CHECK(in != NULL, "open %s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    ST_CHECK(out != NULL, "create %s: %s", to, strerror(errno));
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ST_CHECK(fwrite(buf, 1, n, out) == n, "write %s: %s", to, strerror(errno));
    ST_CHECK(!ferror(in), "read %s", from);
    fclose(in);
    ST_CHECK(fclose(out) == 0, "close %s: %s", to, strerror(errno));
}

void st_db_copy(const char *from, const char *to)
{
    char a[1024], b[1024];
    st_db_remove(to);
    copy_file(from, to);
    snprintf(a, sizeof(a), "%s-wal", from);
    snprintf(b, sizeof(b), "%s-wal", to);
    if (access(a, F_OK) == 0)
        copy_file(a, b);
}

/* ---- SQL ---- */

/* Runs sql with up to two text parameters and copies up to n integer columns of its first
 * row into out. False on any error or no row. */
static bool sql_ints(sqlite3 *db, const char *sql, const char *a1, const char *a2, int64_t *out,
                     int n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return false;
    if (a1 != NULL)
        sqlite3_bind_text(st, 1, a1, -1, SQLITE_TRANSIENT);
    if (a2 != NULL)
        sqlite3_bind_text(st, 2, a2, -1, SQLITE_TRANSIENT);
    bool ok = sqlite3_step(st) == SQLITE_ROW;
    for (int i = 0; ok && i < n; i++)
        out[i] = sqlite3_column_int64(st, i);
    sqlite3_finalize(st);
    return ok;
}

int64_t st_sql_int(sqlite3 *db, const char *sql, const char *text_arg, bool *ok)
{
    int64_t v = 0;
    bool good = sql_ints(db, sql, text_arg, NULL, &v, 1);
    if (ok != NULL)
        *ok = good;
    return good ? v : 0;
}

/* Like st_sql_int but fails the program on error (the database must be readable). */
static int64_t must_int(sqlite3 *db, const char *sql, const char *arg)
{
    bool ok = false;
    int64_t v = st_sql_int(db, sql, arg, &ok);
    ST_CHECK(ok, "query '%s': %s", sql, sqlite3_errmsg(db));
    return v;
}

bool st_integrity_ok(sqlite3 *db, char *msg, size_t msglen)
{
    sqlite3_stmt *st = NULL;
    snprintf(msg, msglen, "cannot run integrity_check");
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "integrity_check: %s", sqlite3_errmsg(db));
        return false;
    }
    bool ok = false;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(msg, msglen, "%s", t ? (const char *)t : "(null)");
        ok = t != NULL && strcmp((const char *)t, "ok") == 0;
    } else {
        snprintf(msg, msglen, "integrity_check: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return ok;
}

/* ---- the till ---- */

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return ST_NOW_MS;
}

const duka_clock *st_clock(void)
{
    static const duka_clock c = {fixed_now, NULL};
    return &c;
}

void st_till_template(const char *path)
{
    st_db_remove(path);
    sqlite3 *db = NULL;
    duka_err err = {0};
    ST_CHECK(duka_till_db_open(path, true, &db, &err) == DUKA_OK, "till template: %s", err.msg);
    ST_CHECK(duka_meta_set(db, DUKA_META_TERMINAL, ST_TERMINAL, &err) == DUKA_OK &&
                 duka_meta_set(db, DUKA_META_HUB_URL, "http://127.0.0.1:1", &err) == DUKA_OK &&
                 duka_meta_set(db, DUKA_META_TOKEN, "duka1.1.x", &err) == DUKA_OK,
             "till identity: %s", err.msg);
    json_error_t jerr;
    json_t *changes = json_loads(
        "["
        "{\"seq\":1,\"sku\":\"SUGAR1KG\",\"name\":\"Sugar 1 kg\",\"price\":23050,\"tax\":\"B\","
        "\"category\":\"Groceries\",\"deleted\":false},"
        "{\"seq\":2,\"sku\":\"RICE\",\"name\":\"Rice (per kg)\",\"price\":18000,\"tax\":\"E\","
        "\"category\":\"Groceries\",\"deleted\":false},"
        "{\"seq\":3,\"sku\":\"MILK500\",\"name\":\"Milk 500 ml\",\"price\":6500,\"tax\":\"A\","
        "\"category\":\"Dairy\",\"deleted\":false},"
        "{\"seq\":4,\"sku\":\"BREAD400\",\"name\":\"Bread 400 g\",\"price\":6000,\"tax\":\"C\","
        "\"category\":\"Bakery\",\"deleted\":false}"
        "]",
        0, &jerr);
    ST_CHECK(changes != NULL, "catalog JSON: %s", jerr.text);
    int applied = 0;
    ST_CHECK(duka_catalog_apply_page(db, changes, 4, &applied, &err) == DUKA_OK && applied == 4,
             "till catalog: %s", err.msg);
    json_decref(changes);
    duka_db_close(db);
}

duka_rc st_till_open(const char *path, bool normal_sync, sqlite3 **out, duka_err *err)
{
    duka_rc rc = duka_till_db_open(path, false, out, err);
    if (rc == DUKA_OK && normal_sync)
        rc = duka_db_exec(*out, "PRAGMA synchronous=NORMAL", err);
    return rc;
}

duka_rc st_sell(sqlite3 *db, int i, st_ack *ack, duka_err *err)
{
    static const char *const skus[] = {"SUGAR1KG", "RICE", "MILK500", "BREAD400"};
    duka_checkout_item items[3];
    int n = 1 + i % 3;
    memset(items, 0, sizeof(items));
    for (int k = 0; k < n; k++) {
        snprintf(items[k].sku, sizeof(items[k].sku), "%s", skus[(i + k) % 4]);
        items[k].qty_milli = (i + k) % 4 == 1 ? 500 : 1000 * (1 + (i + k) % 3);
    }
    duka_checkout_payment pay;
    memset(&pay, 0, sizeof(pay));
    if (i % 4 == 3) {
        snprintf(pay.method, sizeof(pay.method), "mpesa");
        snprintf(pay.reference, sizeof(pay.reference), "QK%08d", i % 100000000);
    } else {
        snprintf(pay.method, sizeof(pay.method), "cash");
    }
    duka_sale *sale = duka_sale_new();
    if (sale == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory");
    char command_id[DUKA_UUID_STR_LEN + 1] = "";
    duka_rc rc = duka_checkout_commit(db, st_clock(), items, n, &pay, sale, command_id, err);
    if (rc == DUKA_OK) {
        memset(ack, 0, sizeof(*ack));
        snprintf(ack->receipt_no, sizeof(ack->receipt_no), "%s", sale->receipt_no);
        snprintf(ack->command_id, sizeof(ack->command_id), "%s", command_id);
        ack->total_cents = sale->total_cents;
        ack->line_count = sale->line_count;
    }
    duka_sale_free(sale);
    return rc;
}

static int64_t receipt_seq(const char *receipt_no)
{
    size_t plen = strlen(ST_DAY_PREFIX);
    if (strncmp(receipt_no, ST_DAY_PREFIX, plen) != 0)
        return -1;
    return strtoll(receipt_no + plen, NULL, 10);
}

static void problem(st_till_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(st_till_report *rep, const char *fmt, ...)
{
    if (rep->first_problem[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->first_problem, sizeof(rep->first_problem), fmt, ap);
    va_end(ap);
}

static void check_acks(sqlite3 *db, const st_ack *acks, int ack_count, st_till_report *rep)
{
    static const char q[] =
        "SELECT s.total_cents,"
        " s.command_id = ?2,"
        " (SELECT count(*) FROM sale_lines l WHERE l.sale_id = s.id),"
        " (SELECT count(*) FROM payments p WHERE p.sale_id = s.id"
        "    AND p.amount_cents = s.total_cents),"
        " (SELECT count(*) FROM outbox o WHERE o.command_id = s.command_id"
        "    AND o.entity_id = s.receipt_no AND o.command_type = 'sale.create')"
        " FROM sales s WHERE s.receipt_no = ?1";
    for (int i = 0; i < ack_count; i++) {
        const st_ack *a = &acks[i];
        int64_t v[5];
        if (!sql_ints(db, q, a->receipt_no, a->command_id, v, 5)) {
            rep->lost++;
            problem(rep, "acknowledged sale %s (total %lld) is not in the database",
                    a->receipt_no, (long long)a->total_cents);
            continue;
        }
        if (v[0] != a->total_cents || v[1] != 1 || v[2] != a->line_count || v[3] != 1) {
            rep->mismatched++;
            problem(rep,
                    "sale %s: total %lld (acknowledged %lld), same command %lld, lines %lld "
                    "(acknowledged %d), payments %lld",
                    a->receipt_no, (long long)v[0], (long long)a->total_cents, (long long)v[1],
                    (long long)v[2], a->line_count, (long long)v[3]);
        }
        if (v[4] != 1) {
            rep->orphan_sales++;
            problem(rep, "acknowledged sale %s has no outbox command (%lld)", a->receipt_no,
                    (long long)v[4]);
        }
        int64_t seq = receipt_seq(a->receipt_no);
        if (seq > rep->max_acked_seq)
            rep->max_acked_seq = seq;
    }
}

static void check_all_sales(sqlite3 *db, int ack_count, st_till_report *rep)
{
    rep->sales = must_int(db, "SELECT count(*) FROM sales", NULL);
    rep->unacked = rep->sales - (ack_count - rep->lost);
    rep->half_sales = must_int(
        db,
        "SELECT count(*) FROM sales s WHERE"
        " (SELECT count(*) FROM sale_lines l WHERE l.sale_id = s.id) = 0"
        " OR (SELECT coalesce(sum(line_total_cents), 0) FROM sale_lines l"
        "     WHERE l.sale_id = s.id) != s.total_cents"
        " OR (SELECT count(*) FROM payments p WHERE p.sale_id = s.id) != 1",
        NULL);
    if (rep->half_sales)
        problem(rep, "%lld sales whose lines or payment do not add up", (long long)rep->half_sales);
    int64_t orphans = must_int(db,
                               "SELECT count(*) FROM sales s WHERE NOT EXISTS"
                               " (SELECT 1 FROM outbox o WHERE o.command_id = s.command_id)",
                               NULL);
    if (orphans > 0) {
        rep->orphan_sales += orphans;
        problem(rep, "%lld sales without an outbox command", (long long)orphans);
    }
    rep->orphan_commands = must_int(db,
                                    "SELECT count(*) FROM outbox o WHERE o.command_type ="
                                    " 'sale.create' AND NOT EXISTS (SELECT 1 FROM sales s"
                                    " WHERE s.command_id = o.command_id)",
                                    NULL);
    if (rep->orphan_commands)
        problem(rep, "%lld outbox commands without their sale", (long long)rep->orphan_commands);

    const char *like = ST_DAY_PREFIX "%";
    int64_t n = must_int(db, "SELECT count(*) FROM sales WHERE receipt_no LIKE ?1", like);
    int64_t distinct = must_int(db,
                                "SELECT count(DISTINCT CAST(substr(receipt_no, 14) AS INTEGER))"
                                " FROM sales WHERE receipt_no LIKE ?1",
                                like);
    int64_t max = must_int(db,
                           "SELECT coalesce(max(CAST(substr(receipt_no, 14) AS INTEGER)), 0)"
                           " FROM sales WHERE receipt_no LIKE ?1",
                           like);
    rep->last_seq = must_int(
        db, "SELECT coalesce((SELECT last_seq FROM receipt_days WHERE day = 20261121), 0)", NULL);
    rep->receipt_dupes = n - distinct;
    rep->receipt_gaps = max - distinct;
    if (rep->receipt_dupes || rep->receipt_gaps)
        problem(rep, "receipt numbers: %lld sales, %lld distinct, highest %lld", (long long)n,
                (long long)distinct, (long long)max);
    if (rep->last_seq < max) {
        rep->counter_behind = max - rep->last_seq;
        problem(rep, "receipt counter at %lld behind the highest sale %lld (numbers would be "
                     "reused)",
                (long long)rep->last_seq, (long long)max);
    } else if (rep->last_seq > max) {
        rep->counter_ahead = rep->last_seq - max;
        problem(rep, "receipt counter at %lld ahead of the highest sale %lld (a gap)",
                (long long)rep->last_seq, (long long)max);
    }
}

bool st_till_check(const char *path, const st_ack *acks, int ack_count, st_till_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    sqlite3 *db = NULL;
    duka_err err = {0};
    if (duka_till_db_open(path, false, &db, &err) != DUKA_OK) {
        snprintf(rep->first_problem, sizeof(rep->first_problem),
                 "the till database does not open: %s", err.msg);
        return false;
    }
    char msg[256];
    rep->integrity_ok = st_integrity_ok(db, msg, sizeof(msg));
    if (!rep->integrity_ok)
        problem(rep, "integrity_check: %s", msg);
    check_acks(db, acks, ack_count, rep);
    check_all_sales(db, ack_count, rep);
    duka_db_close(db);
    return true;
}

void st_till_next_sale(const char *path, st_till_report *rep, st_ack *ack)
{
    sqlite3 *db = NULL;
    duka_err err = {0};
    st_ack next;
    if (duka_till_db_open(path, false, &db, &err) != DUKA_OK ||
        st_sell(db, 100000, &next, &err) != DUKA_OK) {
        problem(rep, "the next sale failed: %s", err.msg);
        rep->reused++;
    } else {
        int64_t seq = receipt_seq(next.receipt_no);
        if (seq <= rep->max_acked_seq) {
            rep->reused++;
            problem(rep, "the next sale took %s, a number already shown to a customer",
                    next.receipt_no);
        } else if (seq != rep->last_seq + 1) {
            rep->receipt_gaps++;
            problem(rep, "the next sale took %s, expected sequence %lld", next.receipt_no,
                    (long long)rep->last_seq + 1);
        }
        if (ack != NULL)
            *ack = next;
    }
    duka_db_close(db);
}

bool st_till_report_clean(const st_till_report *r)
{
    return r->integrity_ok && r->lost == 0 && r->mismatched == 0 && r->receipt_gaps == 0 &&
           r->receipt_dupes == 0 && r->counter_behind == 0 && r->counter_ahead == 0 &&
           r->orphan_sales == 0 && r->orphan_commands == 0 && r->half_sales == 0 &&
           r->reused == 0;
}

bool st_checker_till(const char *path, const st_ack *acks, int ack_count, bool quiet,
                     int64_t *lost_out)
{
    *lost_out = -1;
#ifdef DUKA_HAVE_CHECKER
    duka_check_ack *ca = calloc((size_t)(ack_count > 0 ? ack_count : 1), sizeof(*ca));
    ST_CHECK(ca != NULL, "out of memory");
    for (int i = 0; i < ack_count; i++) {
        snprintf(ca[i].receipt_no, sizeof(ca[i].receipt_no), "%s", acks[i].receipt_no);
        ca[i].total_cents = acks[i].total_cents;
    }
    const char *tills[1] = {path};
    duka_check_input in;
    memset(&in, 0, sizeof(in));
    in.hub_db = NULL;
    in.till_dbs = tills;
    in.till_count = 1;
    in.acked = ca;
    in.acked_count = ack_count;
    duka_check_report rep;
    duka_err err = {0};
    duka_rc rc = duka_check_run(&in, &rep, &err);
    free(ca);
    ST_CHECK(rc == DUKA_OK, "checker: %s", err.msg);
    *lost_out = rep.lost;
    if (!rep.ok && !quiet) {
        fprintf(stderr, "(%s) ", st_context);
        duka_check_print(stderr, &rep);
    }
    return rep.ok;
#else
    (void)path;
    (void)acks;
    (void)ack_count;
    (void)quiet;
    return true;
#endif
}

/* ---- the hub ---- */

static void hub_sale(duka_sale *s, int seq)
{
    memset(s, 0, offsetof(duka_sale, lines) + 2 * sizeof(s->lines[0]));
    snprintf(s->terminal, sizeof(s->terminal), "%s", ST_TERMINAL);
    snprintf(s->receipt_no, sizeof(s->receipt_no), ST_DAY_PREFIX "%05d", seq);
    s->created_ms = ST_NOW_MS + seq;
    static const struct {
        const char *sku, *name;
        int64_t price;
        char band;
    } cat[2] = {{"SUGAR1KG", "Sugar 1 kg", 23050, 'B'}, {"RICE", "Rice (per kg)", 18000, 'E'}};
    for (int i = 0; i < 2; i++) {
        duka_sale_line *l = &s->lines[i];
        snprintf(l->sku, sizeof(l->sku), "%s", cat[i].sku);
        snprintf(l->name, sizeof(l->name), "%s", cat[i].name);
        l->qty_milli = i == 0 ? 1000 * (1 + seq % 3) : 500;
        l->unit_price_cents = cat[i].price;
        l->tax_band = cat[i].band;
        l->line_total_cents = duka_line_total(l->unit_price_cents, l->qty_milli);
        l->tax_cents = duka_tax_of_gross(l->line_total_cents, (duka_tax_band)l->tax_band);
        s->total_cents += l->line_total_cents;
        s->tax_cents += l->tax_cents;
    }
    s->line_count = 2;
    s->payment_count = 1;
    snprintf(s->payments[0].method, sizeof(s->payments[0].method), "cash");
    snprintf(s->payments[0].status, sizeof(s->payments[0].status), "captured");
    s->payments[0].amount_cents = s->total_cents;
}

void st_hub_fixture_make(st_hub_fixture *fx, const char *dir, int batches, int per_batch)
{
    memset(fx, 0, sizeof(*fx));
    fx->batches = batches;
    fx->per_batch = per_batch;
    fx->lines = 2;
    snprintf(fx->template_path, sizeof(fx->template_path), "%s/hub-template.db", dir);
    st_db_remove(fx->template_path);

    duka_hub_store *store = NULL;
    duka_err err = {0};
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    ST_CHECK(duka_hub_store_open(fx->template_path, true, &store, &err) == DUKA_OK,
             "hub template: %s", err.msg);
    ST_CHECK(duka_hub_business_create(store, "Duka ya Mama", business, &err) == DUKA_OK &&
                 duka_hub_device_add(store, business, ST_TERMINAL, token, &err) == DUKA_OK &&
                 duka_hub_device_authenticate(store, token, &fx->device, &err) == DUKA_OK,
             "hub business and device: %s", err.msg);
    char csv[600];
    snprintf(csv, sizeof(csv), "%s/catalog.csv", dir);
    FILE *f = fopen(csv, "w");
    ST_CHECK(f != NULL, "create %s: %s", csv, strerror(errno));
    fputs("sku,name,price,tax,stock,category\n"
          "SUGAR1KG,Sugar 1 kg,230.50,B,40,Groceries\n"
          "RICE,Rice (per kg),180.00,E,10,Groceries\n"
          "MILK500,Milk 500 ml,65.00,A,100,Dairy\n",
          f);
    ST_CHECK(fclose(f) == 0, "write %s", csv);
    int imported = 0;
    ST_CHECK(duka_product_import_file(store, business, csv, &imported, &err) == DUKA_OK &&
                 imported == 3,
             "hub catalog import: %s", err.msg);
    duka_hub_store_close(store);

    size_t total = (size_t)batches * (size_t)per_batch;
    fx->bodies = calloc((size_t)batches, sizeof(*fx->bodies));
    fx->command_ids = calloc(total, sizeof(*fx->command_ids));
    fx->receipts = calloc(total, sizeof(*fx->receipts));
    duka_sale *sale = duka_sale_new();
    ST_CHECK(fx->bodies && fx->command_ids && fx->receipts && sale, "out of memory");
    for (int b = 0; b < batches; b++) {
        json_t *commands = json_array();
        for (int k = 0; k < per_batch; k++) {
            int idx = b * per_batch + k;
            hub_sale(sale, idx + 1);
            ST_CHECK(duka_sale_validate(sale, &err) == DUKA_OK, "hub sale: %s", err.msg);
            duka_uuid_v7(ST_NOW_MS + idx, fx->command_ids[idx]);
            snprintf(fx->receipts[idx], sizeof(fx->receipts[idx]), "%s", sale->receipt_no);
            json_t *cmd = json_pack("{s:s, s:s, s:s, s:o}", "id", fx->command_ids[idx], "type",
                                    "sale.create", "entity_id", sale->receipt_no, "payload",
                                    duka_sale_to_json(sale));
            ST_CHECK(cmd != NULL && json_array_append_new(commands, cmd) == 0, "batch JSON");
        }
        fx->bodies[b] = json_pack("{s:o}", "commands", commands);
        ST_CHECK(fx->bodies[b] != NULL, "batch JSON");
    }
    duka_sale_free(sale);
}

void st_hub_fixture_free(st_hub_fixture *fx)
{
    for (int b = 0; fx->bodies != NULL && b < fx->batches; b++)
        json_decref(fx->bodies[b]);
    free(fx->bodies);
    free(fx->command_ids);
    free(fx->receipts);
    st_db_remove(fx->template_path);
    memset(fx, 0, sizeof(*fx));
}

duka_rc st_hub_push(duka_hub_store *store, const st_hub_fixture *fx, int b, bool only_applied,
                    int *applied, int *duplicate, duka_err *err)
{
    json_t *reply = NULL;
    duka_rc rc = duka_hub_push_apply(store, &fx->device, fx->bodies[b], ST_NOW_MS + 60000,
                                     &reply, err);
    if (rc != DUKA_OK)
        return rc;
    const json_t *results = json_object_get(reply, "results");
    if (json_array_size(results) != (size_t)fx->per_batch)
        rc = duka_err_set(err, DUKA_PROTOCOL, "push %d: %zu results for %d commands", b,
                          json_array_size(results), fx->per_batch);
    for (int k = 0; rc == DUKA_OK && k < fx->per_batch; k++) {
        const json_t *r = json_array_get(results, (size_t)k);
        const char *status = json_string_value(json_object_get(r, "status"));
        const char *id = json_string_value(json_object_get(r, "id"));
        bool is_applied = status && strcmp(status, "applied") == 0;
        bool is_duplicate = status && strcmp(status, "duplicate") == 0;
        if (!(is_applied || (is_duplicate && !only_applied)) || id == NULL ||
            strcmp(id, fx->command_ids[b * fx->per_batch + k]) != 0) {
            char *text = json_dumps(r, JSON_COMPACT);
            rc = duka_err_set(err, DUKA_PROTOCOL, "push %d, command %d: unexpected result %s", b,
                              k, text ? text : "?");
            free(text);
        }
        if (is_applied && applied)
            (*applied)++;
        if (is_duplicate && duplicate)
            (*duplicate)++;
    }
    json_decref(reply);
    return rc;
}

st_batch_state st_hub_batch_state(sqlite3 *db, const st_hub_fixture *fx, int b, char *why,
                                  size_t whylen)
{
    static const char q[] =
        "SELECT (SELECT count(*) FROM processed_commands WHERE command_id = ?1),"
        " (SELECT count(*) FROM sales WHERE command_id = ?1),"
        " (SELECT count(*) FROM sale_lines l JOIN sales s ON l.sale_id = s.id"
        "   WHERE s.command_id = ?1),"
        " (SELECT count(*) FROM payments p JOIN sales s ON p.sale_id = s.id"
        "   WHERE s.command_id = ?1),"
        " (SELECT count(*) FROM stock_movements WHERE reason = 'sale' AND ref = ?2)";
    int whole = 0, absent = 0;
    why[0] = '\0';
    for (int k = 0; k < fx->per_batch; k++) {
        int idx = b * fx->per_batch + k;
        int64_t v[5];
        if (!sql_ints(db, q, fx->command_ids[idx], fx->receipts[idx], v, 5)) {
            snprintf(why, whylen, "reading batch %d from the hub: %s", b, sqlite3_errmsg(db));
            return ST_BATCH_UNREADABLE;
        }
        if (v[0] == 1 && v[1] == 1 && v[2] == fx->lines && v[3] == 1 && v[4] == fx->lines)
            whole++;
        else if (v[0] == 0 && v[1] == 0 && v[2] == 0 && v[3] == 0 && v[4] == 0)
            absent++;
        else if (why[0] == '\0')
            snprintf(why, whylen,
                     "command %d (%s): processed %lld, sales %lld, lines %lld, payments %lld, "
                     "ledger rows %lld",
                     k, fx->receipts[idx], (long long)v[0], (long long)v[1], (long long)v[2],
                     (long long)v[3], (long long)v[4]);
    }
    if (whole == fx->per_batch)
        return ST_BATCH_PRESENT;
    if (absent == fx->per_batch)
        return ST_BATCH_ABSENT;
    if (why[0] == '\0')
        snprintf(why, whylen, "%d of %d commands there", whole, fx->per_batch);
    return ST_BATCH_HALF;
}

/* The shared checker on the hub alone: every sale of the fixture (all were pushed) there
 * once, the stock ledger equal to the lines, no conflict. True when it passes or is not
 * built in. */
static bool checker_hub(const char *path, const st_hub_fixture *fx)
{
#ifdef DUKA_HAVE_CHECKER
    int n = fx->batches * fx->per_batch;
    duka_check_ack *ca = calloc((size_t)n, sizeof(*ca));
    ST_CHECK(ca != NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        snprintf(ca[i].receipt_no, sizeof(ca[i].receipt_no), "%s", fx->receipts[i]);
        ca[i].total_cents = -1;
    }
    duka_check_input in;
    memset(&in, 0, sizeof(in));
    in.hub_db = path;
    in.acked = ca;
    in.acked_count = n;
    in.expect_no_conflicts = true;
    duka_check_report rep;
    duka_err err = {0};
    duka_rc rc = duka_check_run(&in, &rep, &err);
    free(ca);
    ST_CHECK(rc == DUKA_OK, "checker: %s", err.msg);
    if (!rep.ok) {
        fprintf(stderr, "(%s) ", st_context);
        duka_check_print(stderr, &rep);
    }
    return rep.ok;
#else
    (void)path;
    (void)fx;
    return true;
#endif
}

#define FINAL_CHECK(cond, ...)                                                               \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            snprintf(why, whylen, __VA_ARGS__);                                              \
            goto out;                                                                        \
        }                                                                                    \
    } while (0)

bool st_hub_check_final(const char *path, const st_hub_fixture *fx, char *why, size_t whylen)
{
    sqlite3 *db = NULL;
    bool ok = false, qok = true;
    char msg[256], batch_why[256];
    int64_t n = (int64_t)fx->batches * fx->per_batch;
    int64_t sales = 0, processed = 0, lines = 0, ledger = 0, conflicts = 0, stock_bad = 0;
    why[0] = '\0';
    FINAL_CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK,
                "opening the hub database %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
    FINAL_CHECK(st_integrity_ok(db, msg, sizeof(msg)), "hub integrity_check: %s", msg);
    for (int b = 0; b < fx->batches; b++)
        FINAL_CHECK(st_hub_batch_state(db, fx, b, batch_why, sizeof(batch_why)) ==
                        ST_BATCH_PRESENT,
                    "after re-pushing, batch %d is not whole at the hub: %s", b, batch_why);
    sales = st_sql_int(db, "SELECT count(*) FROM sales", NULL, &qok);
    if (qok)
        processed = st_sql_int(db, "SELECT count(*) FROM processed_commands", NULL, &qok);
    if (qok)
        lines = st_sql_int(db, "SELECT count(*) FROM sale_lines", NULL, &qok);
    if (qok)
        ledger = st_sql_int(db, "SELECT count(*) FROM stock_movements WHERE reason = 'sale'",
                            NULL, &qok);
    if (qok)
        conflicts = st_sql_int(db, "SELECT count(*) FROM conflicts", NULL, &qok);
    if (qok)
        stock_bad = st_sql_int(
            db,
            "SELECT count(*) FROM (SELECT sku, sum(delta_milli) AS d FROM stock_movements"
            " WHERE reason = 'sale' GROUP BY sku) x"
            " WHERE x.d != -(SELECT sum(qty_milli) FROM sale_lines l WHERE l.sku = x.sku)",
            NULL, &qok);
    FINAL_CHECK(qok, "reading the hub: %s", sqlite3_errmsg(db));
    FINAL_CHECK(sales == n && processed == n && lines == n * fx->lines &&
                    ledger == n * fx->lines && conflicts == 0,
                "hub holds sales %lld, processed commands %lld, lines %lld, ledger rows %lld, "
                "conflicts %lld; expected %lld sales each exactly once",
                (long long)sales, (long long)processed, (long long)lines, (long long)ledger,
                (long long)conflicts, (long long)n);
    FINAL_CHECK(stock_bad == 0, "%lld SKUs whose stock ledger differs from their sale lines",
                (long long)stock_bad);
    sqlite3_close(db);
    db = NULL;
    FINAL_CHECK(checker_hub(path, fx), "the shared checker failed the hub");
    ok = true;
out:
    sqlite3_close(db);
    return ok;
}
#undef FINAL_CHECK
