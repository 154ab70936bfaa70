/*
 * test_util.h — small header-only helpers shared by the unit tests: a throwaway directory
 * (mkdtemp, removed with everything in it at the end), an injectable fake clock, one-value
 * SQL queries and substring assertions that print both strings when they fail.
 *
 * Include after the cmocka headers. Everything here is `static inline` so a test file that
 * uses only part of it compiles without unused-function warnings.
 */
#ifndef DUKA_TEST_UTIL_H
#define DUKA_TEST_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "common/money.h"
#include "outbox/outbox.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "till/till_db.h"

/* ---- temp directory ---- */

typedef struct test_dir {
    char path[256];
} test_dir;

/* Creates a fresh directory under $TMPDIR (or /tmp). Fails the test on error. */
static inline void test_dir_make(test_dir *d)
{
    const char *base = getenv("TMPDIR");
    snprintf(d->path, sizeof(d->path), "%s/duka-unit-XXXXXX",
             base && base[0] ? base : "/tmp");
    if (mkdtemp(d->path) == NULL) {
        fprintf(stderr, "mkdtemp(%s) failed\n", d->path);
        abort();
    }
}

/* Writes dir/name into out. */
static inline void test_dir_file(const test_dir *d, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", d->path, name);
}

/* Removes every file in the directory (the tests create no subdirectories), then it. */
static inline void test_dir_remove(test_dir *d)
{
    DIR *dir = opendir(d->path);
    if (dir != NULL) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", d->path, e->d_name);
            unlink(p);
        }
        closedir(dir);
    }
    rmdir(d->path);
}

/* ---- fake clock ---- */

typedef struct fake_clock {
    int64_t now_ms;
    duka_clock clock;
} fake_clock;

static inline int64_t fake_clock_now(void *ctx)
{
    return ((const fake_clock *)ctx)->now_ms;
}

static inline void fake_clock_init(fake_clock *fc, int64_t now_ms)
{
    fc->now_ms = now_ms;
    fc->clock.now_ms = fake_clock_now;
    fc->clock.ctx = fc;
}

/* Local (Africa/Nairobi, UTC+3, no DST) instants used across tests. */
#define T_2026_11_20_NOON_MS 1795165200000LL /* 2026-11-20 12:00:00 EAT */
#define T_2026_11_21_MIDNIGHT_MS 1795208400000LL /* 2026-11-21 00:00:00 EAT (20th 21:00Z) */
#define T_2026_11_21_NOON_MS 1795251600000LL /* 2026-11-21 12:00:00 EAT */
#define T_2026_11_21_LAST_MS 1795294799999LL /* 2026-11-21 23:59:59.999 EAT */
#define T_2026_11_22_MIDNIGHT_MS 1795294800000LL /* 2026-11-22 00:00:00 EAT */

/* ---- SQL ---- */

/* The first column of the first row of sql as an integer; fails the test on SQL errors. */
static inline int64_t sql_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "prepare '%s': %s\n", sql, sqlite3_errmsg(db));
        abort();
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        fprintf(stderr, "step '%s': %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        abort();
    }
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Same, with one text parameter ?1. */
static inline int64_t sql_int_text(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "prepare '%s': %s\n", sql, sqlite3_errmsg(db));
        abort();
    }
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        fprintf(stderr, "step '%s': %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        abort();
    }
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Runs SQL that returns nothing; fails the test on error. */
static inline void sql_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "exec '%s': %s\n", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        abort();
    }
}

/* ---- sales with valid arithmetic ---- */

typedef struct line_spec {
    const char *sku;
    int64_t qty_milli;
    int64_t unit_price_cents;
    char tax_band;
} line_spec;

/* Fills s with a sale whose totals are computed as money.h does, paid in full by one
 * payment of `method` ("cash" captured, "mpesa" pending_verification with reference). */
static inline void sale_build(duka_sale *s, const char *terminal, const char *receipt_no,
                              int64_t created_ms, const line_spec *lines, int n,
                              const char *method, const char *reference)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->terminal, sizeof(s->terminal), "%s", terminal);
    snprintf(s->receipt_no, sizeof(s->receipt_no), "%s", receipt_no);
    s->created_ms = created_ms;
    for (int i = 0; i < n; i++) {
        duka_sale_line *l = &s->lines[i];
        snprintf(l->sku, sizeof(l->sku), "%s", lines[i].sku);
        snprintf(l->name, sizeof(l->name), "Product %s", lines[i].sku);
        l->qty_milli = lines[i].qty_milli;
        l->unit_price_cents = lines[i].unit_price_cents;
        l->tax_band = lines[i].tax_band;
        l->line_total_cents = duka_line_total(l->unit_price_cents, l->qty_milli);
        l->tax_cents = duka_tax_of_gross(l->line_total_cents, (duka_tax_band)l->tax_band);
        s->total_cents += l->line_total_cents;
        s->tax_cents += l->tax_cents;
    }
    s->line_count = n;
    s->payment_count = 1;
    snprintf(s->payments[0].method, sizeof(s->payments[0].method), "%s", method);
    snprintf(s->payments[0].reference, sizeof(s->payments[0].reference), "%s",
             reference ? reference : "");
    snprintf(s->payments[0].status, sizeof(s->payments[0].status), "%s",
             strcmp(method, "mpesa") == 0 ? "pending_verification" : "captured");
    s->payments[0].amount_cents = s->total_cents;
}

/* ---- assertions ---- */

/* Fails the test (printing both) unless needle occurs in haystack. */
#define assert_contains(haystack, needle)                                                    \
    do {                                                                                     \
        const char *h_ = (haystack);                                                         \
        const char *n_ = (needle);                                                           \
        if (h_ == NULL || strstr(h_, n_) == NULL)                                            \
            fail_msg("expected \"%s\" to contain \"%s\"", h_ ? h_ : "(null)", n_);           \
    } while (0)

#define assert_not_contains(haystack, needle)                                                \
    do {                                                                                     \
        const char *h_ = (haystack);                                                         \
        const char *n_ = (needle);                                                           \
        if (h_ != NULL && strstr(h_, n_) != NULL)                                            \
            fail_msg("expected \"%s\" not to contain \"%s\"", h_, n_);                       \
    } while (0)

/* Asserts rc with the error's message in the failure output. */
#define assert_rc(rc, expected, err)                                                         \
    do {                                                                                     \
        int rc_ = (int)(rc);                                                                 \
        int ex_ = (int)(expected);                                                           \
        if (rc_ != ex_)                                                                      \
            fail_msg("rc %d, expected %d (err: %s)", rc_, ex_, (err)->msg);                  \
    } while (0)

#define assert_ok(rc, err) assert_rc(rc, 0, err)

/* Outbox counts by status. */
static inline duka_outbox_counts outbox_counts(sqlite3 *db)
{
    duka_outbox_counts c;
    duka_err err = {0};
    assert_ok(duka_outbox_count(db, &c, &err), &err);
    return c;
}

/* Fails unless the outbox holds exactly these counts by status. */
static inline void assert_counts(sqlite3 *db, int64_t pending, int64_t processing, int64_t done,
                          int64_t failed, int64_t conflict)
{
    duka_outbox_counts c = outbox_counts(db);
    if (c.pending != pending || c.processing != processing || c.done != done ||
        c.failed != failed || c.conflict != conflict)
        fail_msg("counts pending %lld processing %lld done %lld failed %lld conflict %lld,"
                 " expected %lld %lld %lld %lld %lld",
                 (long long)c.pending, (long long)c.processing, (long long)c.done,
                 (long long)c.failed, (long long)c.conflict, (long long)pending,
                 (long long)processing, (long long)done, (long long)failed,
                 (long long)conflict);
}

/* ---- a till database ---- */

/* Creates dir/till.db (its path into path) as a till of terminal, pointed at a hub that is
 * never reached; terminal NULL leaves it uninitialised. Fails the test on error. */
static inline sqlite3 *test_till_db(const test_dir *d, char *path, size_t pathlen,
                                    const char *terminal)
{
    sqlite3 *db = NULL;
    duka_err err = {0};
    test_dir_file(d, "till.db", path, pathlen);
    assert_ok(duka_till_db_open(path, true, &db, &err), &err);
    if (terminal != NULL) {
        assert_ok(duka_meta_set(db, DUKA_META_TERMINAL, terminal, &err), &err);
        assert_ok(duka_meta_set(db, DUKA_META_HUB_URL, "http://127.0.0.1:1", &err), &err);
        assert_ok(duka_meta_set(db, DUKA_META_TOKEN, "duka1.1.x", &err), &err);
    }
    return db;
}

#endif
