/*
 * bench_scale.c — `duka-bench scale`: the scale figures of issue 5 (see bench/README.md),
 * on a SQLite hub and on a PostgreSQL hub, each a real `duka hub` process:
 *
 *   1. catch-up: one till with 100,000 queued sales runs `duka sync` (a real process, whose
 *      peak RSS is its rusage) against a fresh hub; sales/s, median of R runs.
 *   2. fan-in: 1,000 devices registered at a fresh hub, each pushing its own terminal's 100
 *      sales (built with src/protocol/sale.c, the JSON a till sends) with its own token, one
 *      request per device on a new connection, from a pool of client threads; drain time,
 *      push latency p50/p99, and exactly 100,000 sales at the hub (a re-push of some batches
 *      must come back as duplicates and change nothing).
 *   3. catalog: 100,000 products imported at the hub, then a fresh till's first `duka sync`
 *      (initial pull; median of R fresh tills), then 100 changed products and a pull (R times).
 *   4. PouchDB beside it: bench/pouchdb_bench.js (node) replicating the same 100,000 sale
 *      documents to an express-pouchdb server on 127.0.0.1, when run.sh could install it.
 *
 * --parts LIST runs a subset of the four (catchup, fanin, catalog, pouch; default all).
 *
 * Workload: minutes of child processes and loopback HTTP; what it shares with the first
 * table (processes, hub start/stop, /proc, medians, paths) is bench_common.c.
 */
#include "bench_scale.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_common.h"
#include "common/limits.h"
#include "common/uuid.h"
#include "hub/hub_store.h"
#include "net/http_client.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "till/till_db.h"

#define SCALE_CATCHUP_DEFAULT 100000
#define SCALE_DEVICES_DEFAULT 1000
#define SCALE_DEVICE_SALES_DEFAULT 100
#define SCALE_THREADS_DEFAULT 32   /* the hub allows 64 connections per IP by default */
#define SCALE_THREADS_MAX 60
#define SCALE_PRODUCTS_DEFAULT 100000
#define SCALE_CHANGES_DEFAULT 100
#define SCALE_REPUSH_DEVICES 10    /* batches pushed a second time: must all be duplicates */
#define SCALE_PUSH_TIMEOUT_MS 120000
#define SCALE_RUNS_MAX 9
#define SCALE_PUSH_ATTEMPTS 5  /* a push the hub drops is sent again, at most this often */

#define TARGET_PG_CATCHUP_MIN 20000.0
#define TARGET_FANIN_DRAIN_S_MAX 20.0
#define TARGET_PULL_S_MAX 2.0
#define TARGET_POUCH_RATIO_MIN 5.0

enum { STORE_SQLITE, STORE_PG, STORE_COUNT };

/* The four parts, in the order they run (--parts LIST picks some). */
enum { PART_COUNT = 4 };
enum { PART_CATCHUP = 1u << 0, PART_FANIN = 1u << 1, PART_CATALOG = 1u << 2, PART_POUCH = 1u << 3,
       PART_ALL = (1u << PART_COUNT) - 1 };
static const char *const part_names[PART_COUNT] = {"catchup", "fanin", "catalog", "pouch"};
static const char *const store_names[STORE_COUNT] = {"SQLite", "PostgreSQL"};

typedef struct scale_config {
    bench_config base;      /* duka_bin, dir, results_path, keep */
    int runs;
    int pouch_runs;         /* PouchDB replications (each takes a minute or more) */
    int catchup;
    int devices, device_sales, threads;
    int products, changes;
    const char *pg_url, *pg_admin_url, *psql; /* NULL: no PostgreSQL figures */
    const char *node, *pouch_script, *pouch_na; /* pouch_na: why there is no PouchDB figure */
    bool only_pg;           /* skip the SQLite hub (quick runs) */
    unsigned parts;         /* PART_* mask: what --parts asked for (default all) */
} scale_config;

typedef struct scale_store_figures {
    bool catchup_done, fanin_done, catalog_done;
    int catchup_n, fanin_n, catalog_n;
    double catchup_rate[SCALE_RUNS_MAX], catchup_s[SCALE_RUNS_MAX];
    double catchup_till_mb[SCALE_RUNS_MAX], catchup_hub_mb[SCALE_RUNS_MAX];
    double fanin_drain_s[SCALE_RUNS_MAX], fanin_p50_ms[SCALE_RUNS_MAX];
    double fanin_p99_ms[SCALE_RUNS_MAX], fanin_hub_mb[SCALE_RUNS_MAX];
    double fanin_setup_s;
    int64_t fanin_sales[SCALE_RUNS_MAX];
    int fanin_retries[SCALE_RUNS_MAX]; /* pushes the hub dropped (sent again) */
    double import_s, pull_s[SCALE_RUNS_MAX], incr_ms[SCALE_RUNS_MAX];
    double pull_till_mb, catalog_hub_mb;
} scale_store_figures;

typedef struct pouch_figures {
    bool done;
    int runs;
    double median_s, min_s, max_s;
    char adapter[32];
    char why[256];
} pouch_figures;

typedef struct scale_report {
    scale_store_figures store[STORE_COUNT];
    bool store_on[STORE_COUNT];
    pouch_figures pouch;
    double fill_s;
    size_t sale_json_bytes;
} scale_report;

/* VmHWM of the running hub in MB (0 when unreadable). */
static double hub_hwm_mb(void)
{
    proc_usage u;
    if (g_hub_pid <= 0 || proc_read(g_hub_pid, &u) != 0)
        return 0;
    return (double)u.hwm_kb / 1024.0;
}

/* ---- where a hub lives: a SQLite file or a fresh PostgreSQL schema ---- */

typedef struct hub_loc {
    int store;
    char db[BENCH_PATH_MAX];      /* what `duka hub` and the admin commands get */
    char init_db[BENCH_PATH_MAX]; /* what `duka hub init` gets (PostgreSQL: the owner) */
    char schema[64];
} hub_loc;

static int psql_exec(const scale_config *cfg, const char *sql)
{
    const char *argv[] = {cfg->psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                          cfg->pg_admin_url, "-c", sql, NULL};
    int status = run_prog(argv, NULL, NULL);
    if (status != 0)
        fprintf(stderr, "duka-bench: psql `%s` failed (exit %d)\n", sql, status);
    return status == 0 ? 0 : -1;
}

static void url_in_schema(char *out, size_t n, const char *url, const char *schema)
{
    snprintf(out, n, "%s%soptions=-csearch_path%%3D%s", url, strchr(url, '?') ? "&" : "?",
             schema);
}

static int hub_loc_make(const scale_config *cfg, int store, const char *dir, const char *tag,
                        hub_loc *h)
{
    memset(h, 0, sizeof(*h));
    h->store = store;
    if (store == STORE_SQLITE) {
        if (path_join(h->db, dir, "hub.db"))
            return -1;
        snprintf(h->init_db, sizeof(h->init_db), "%s", h->db);
        return 0;
    }
    char sql[128];
    snprintf(h->schema, sizeof(h->schema), "bench_%s_%d", tag, (int)getpid());
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", h->schema,
             h->schema);
    if (psql_exec(cfg, sql))
        return -1;
    url_in_schema(h->db, sizeof(h->db), cfg->pg_url, h->schema);
    url_in_schema(h->init_db, sizeof(h->init_db), cfg->pg_admin_url, h->schema);
    return 0;
}

static void hub_loc_drop(const scale_config *cfg, const hub_loc *h)
{
    if (h->store == STORE_PG && !cfg->base.keep) {
        char sql[160];
        snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s "
                 "CASCADE", h->schema);
        psql_exec(cfg, sql);
    }
}

/* A catalog CSV of n products; `round` changes every price (0: the initial catalog). Only
 * the first `rows` products are written. */
static int write_big_csv(const char *path, int rows, int round)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "duka-bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "sku,name,price,tax,stock,category\n");
    for (int i = 0; i < rows; i++) {
        long cents = 5000 + (long)(i % 9973) * 7 + round * 100;
        fprintf(f, "P%06d,Bench product number %d,%ld.%02ld,%c,%d,Category %d\n", i, i,
                cents / 100, cents % 100, "ABCE"[i % 4], 100 + i % 50, i % 40);
    }
    if (fclose(f) != 0)
        return -1;
    return 0;
}

/* Points the till database at path at a hub; create: a new till with its identity and no
 * catalog (for the pull figures), else an existing one (the catch-up's copy). */
static int till_point(const char *path, bool create, const char *hub_url, const char *token)
{
    sqlite3 *db = NULL;
    if (till_open_pointed(path, create, hub_url, token, &db))
        return -1;
    duka_db_close(db);
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = in >= 0 ? open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    int result = in >= 0 && out >= 0 ? 0 : -1;
    static char buf[1 << 20];
    while (result == 0) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            result = n == 0 ? 0 : -1;
            break;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                result = -1;
                break;
            }
            done += w;
        }
    }
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        result = -1;
    if (result != 0)
        fprintf(stderr, "duka-bench: copying %s to %s failed\n", from, to);
    return result;
}

/* `duka sync --db till --json` as a child: checks pushed/pulled, returns its wall time. */
static int till_sync(const scale_config *cfg, const char *till_db, int64_t want_pushed,
                     int64_t want_pulled, double *secs, double *peak_mb)
{
    const char *args[] = {"sync", "--db", till_db, "--json", NULL};
    /* What the steps before left in the page cache (a hub's import, the part before) goes
     * to disk first: the figure is this sync's own writes, not theirs. */
    sync();
    json_t *js = run_duka_json_timed(&cfg->base, args, secs, peak_mb);
    if (js == NULL)
        return -1;
    json_int_t pushed = json_integer_value(json_object_get(js, "pushed"));
    json_int_t pulled = json_integer_value(json_object_get(js, "pulled"));
    json_int_t dup = json_integer_value(json_object_get(js, "duplicates"));
    json_int_t failed = json_integer_value(json_object_get(js, "failed"));
    json_int_t conflicts = json_integer_value(json_object_get(js, "conflicts"));
    json_decref(js);
    if (pushed != want_pushed || dup != 0 || failed != 0 || conflicts != 0 ||
        (want_pulled >= 0 && pulled != want_pulled)) {
        fprintf(stderr,
                "duka-bench: duka sync pushed %lld (duplicates %lld, failed %lld, conflicts "
                "%lld) and pulled %lld; expected %lld pushed and %lld pulled\n",
                (long long)pushed, (long long)dup, (long long)failed, (long long)conflicts,
                (long long)pulled, (long long)want_pushed, (long long)want_pulled);
        return -1;
    }
    return 0;
}

/* ---- 1. catch-up ---- */

static int scale_catchup_once(const scale_config *cfg, int store, int run, const char *template,
                              scale_store_figures *f)
{
    char dir[BENCH_PATH_MAX], name[64], csv[BENCH_PATH_MAX], till_db[BENCH_PATH_MAX];
    char hub_log[BENCH_PATH_MAX], hub_url[64], tag[32];
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    hub_loc h;
    int result = -1, port = 0;
    bool have_loc = false;
    snprintf(name, sizeof(name), "scale-catchup-%s-%d", store == STORE_PG ? "pg" : "sqlite",
             run + 1);
    snprintf(tag, sizeof(tag), "catchup%d", run + 1);
    if (path_join(dir, cfg->base.dir, name) || make_dir(dir) ||
        path_join(csv, dir, "products.csv") || path_join(till_db, dir, "till.db") ||
        path_join(hub_log, dir, "hub.log"))
        goto out;
    if (write_catalog_csv(csv) || hub_loc_make(cfg, store, dir, tag, &h))
        goto out;
    have_loc = true;
    double import_s = 0;
    if (hub_prepare(&cfg->base, h.init_db, h.db, csv, BENCH_PRODUCTS, business, sizeof(business),
                    token, sizeof(token), &import_s) ||
        copy_file(template, till_db) || hub_start(&cfg->base, h.db, hub_log, &port))
        goto out;
    snprintf(hub_url, sizeof(hub_url), "http://127.0.0.1:%d", port);
    if (till_point(till_db, false, hub_url, token))
        goto out;
    double secs = 0, till_mb = 0;
    if (till_sync(cfg, till_db, cfg->catchup, -1, &secs, &till_mb))
        goto out;
    f->catchup_s[run] = secs;
    f->catchup_rate[run] = cfg->catchup / secs;
    f->catchup_till_mb[run] = till_mb;
    f->catchup_hub_mb[run] = hub_hwm_mb();
    if (hub_report_sales(&cfg->base, h.db, business, cfg->catchup) != cfg->catchup)
        goto out;
    fprintf(stderr, "duka-bench:   %s: %d sales pushed in %.2f s (%.0f sales/s); peak RSS till "
            "%.1f MB, hub %.1f MB\n", store_names[store], cfg->catchup, secs,
            f->catchup_rate[run], till_mb, f->catchup_hub_mb[run]);
    result = 0;
out:
    hub_stop();
    if (have_loc)
        hub_loc_drop(cfg, &h);
    if (result != 0)
        fprintf(stderr, "duka-bench: catch-up (%s) run %d failed (hub log: %s, kept)\n",
                store_names[store], run + 1, hub_log);
    else if (!cfg->base.keep)
        remove_tree(dir);
    return result;
}

/* ---- 2. fan-in ---- */

typedef struct fanin_device {
    char terminal[DUKA_TERMINAL_ID_MAX + 1];
    char token[DUKA_TOKEN_MAX + 1];
    char *body;
    size_t len;
    double latency_ms;
    int applied, duplicates, other;
    long status;
} fanin_device;

typedef struct fanin_job {
    fanin_device *dev;
    int count;
    const char *url;
    atomic_int next;
    atomic_int errors;
    atomic_int retries;
} fanin_job;

/* Counts the results of one push reply into d. */
static void fanin_count(fanin_device *d, const duka_http_reply *reply)
{
    json_t *js = reply->body ? json_loadb(reply->body, reply->len, 0, NULL) : NULL;
    const json_t *results = json_object_get(js, "results");
    size_t i;
    const json_t *r;
    d->applied = d->duplicates = d->other = 0;
    json_array_foreach(results, i, r) {
        const char *st = json_string_value(json_object_get(r, "status"));
        if (st != NULL && strcmp(st, "applied") == 0)
            d->applied++;
        else if (st != NULL && strcmp(st, "duplicate") == 0)
            d->duplicates++;
        else
            d->other++;
    }
    json_decref(js);
}

static void *fanin_worker(void *arg)
{
    fanin_job *job = arg;
    for (;;) {
        int k = atomic_fetch_add(&job->next, 1);
        if (k >= job->count)
            break;
        fanin_device *d = &job->dev[k];
        /* A push the hub did not answer is sent again, the same body (as a till's outbox
         * would, sooner): counted as a retry, and exactly-once is checked at the end. */
        double t0 = now_us();
        for (int attempt = 0; attempt < SCALE_PUSH_ATTEMPTS; attempt++) {
            duka_http_reply reply = {0};
            duka_err err = {0};
            duka_rc rc = duka_http_request("POST", job->url, d->token, d->body, d->len,
                                           SCALE_PUSH_TIMEOUT_MS, &reply, &err);
            d->status = rc == DUKA_OK ? reply.status : 0;
            bool ok = rc == DUKA_OK && reply.status == 200;
            if (ok)
                fanin_count(d, &reply);
            else if (atomic_fetch_add(&job->retries, 1) < 5)
                fprintf(stderr, "duka-bench: push of %s (attempt %d): %s (HTTP %ld) %.200s\n",
                        d->terminal, attempt + 1, rc != DUKA_OK ? err.msg : "refused",
                        reply.status, reply.body ? reply.body : "");
            duka_http_reply_free(&reply);
            if (ok)
                break;
            if (attempt + 1 == SCALE_PUSH_ATTEMPTS)
                atomic_fetch_add(&job->errors, 1);
            else
                sleep_ms(100);
        }
        d->latency_ms = (now_us() - t0) / 1e3;
    }
    return NULL;
}

/* Pushes every device's batch once from cfg->threads threads; the wall time in *secs. */
static int fanin_push(const scale_config *cfg, fanin_device *dev, int count, const char *url,
                      double *secs, int *retries)
{
    fanin_job job = {.dev = dev, .count = count, .url = url};
    atomic_init(&job.next, 0);
    atomic_init(&job.errors, 0);
    atomic_init(&job.retries, 0);
    int nthreads = cfg->threads < count ? cfg->threads : count;
    pthread_t th[SCALE_THREADS_MAX];
    int started = 0;
    double t0 = now_us();
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, fanin_worker, &job) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    *secs = (now_us() - t0) / 1e6;
    *retries = atomic_load(&job.retries);
    if (started == 0) {
        fprintf(stderr, "duka-bench: cannot start the push threads\n");
        return -1;
    }
    return atomic_load(&job.errors) == 0 ? 0 : -1;
}

/* The push body of one device: its terminal's `sales` sales, from the template sale. */
static char *fanin_body(const duka_sale *tmpl, duka_sale *s, const char *terminal, int sales,
                        size_t *len)
{
    json_t *commands = json_array();
    json_t *root = json_pack("{s:o}", "commands", commands);
    char date[9];
    const char *dash = strchr(tmpl->receipt_no, '-');
    snprintf(date, sizeof(date), "%.8s", dash ? dash + 1 : "20260101");
    for (int i = 0; root != NULL && i < sales; i++) {
        char id[DUKA_UUID_STR_LEN + 1];
        *s = *tmpl;
        snprintf(s->terminal, sizeof(s->terminal), "%s", terminal);
        snprintf(s->receipt_no, sizeof(s->receipt_no), "%s-%s-%05d", terminal, date, i + 1);
        duka_uuid_v7(s->created_ms, id);
        json_t *payload = duka_sale_to_json(s);
        json_t *cmd = payload ? json_pack("{s:s, s:s, s:s, s:o}", "id", id, "type",
                                          "sale.create", "entity_id", s->receipt_no, "payload",
                                          payload)
                              : NULL;
        if (cmd == NULL || json_array_append_new(commands, cmd) != 0) {
            json_decref(root);
            return NULL;
        }
    }
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text != NULL)
        *len = strlen(text);
    return text;
}

static int scale_fanin_once(const scale_config *cfg, int store, int run, const duka_sale *tmpl,
                            scale_store_figures *f)
{
    char dir[BENCH_PATH_MAX], name[64], csv[BENCH_PATH_MAX], hub_log[BENCH_PATH_MAX];
    char url[96], tag[32];
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    hub_loc h;
    int result = -1, port = 0;
    bool have_loc = false;
    int n = cfg->devices;
    int64_t expected = (int64_t)n * cfg->device_sales;
    fanin_device *dev = calloc((size_t)n, sizeof(*dev));
    double *lat = calloc((size_t)n, sizeof(double));
    duka_sale *s = duka_sale_new();
    duka_hub_store *hs = NULL;
    snprintf(name, sizeof(name), "scale-fanin-%s-%d", store == STORE_PG ? "pg" : "sqlite",
             run + 1);
    snprintf(tag, sizeof(tag), "fanin%d", run + 1);
    if (dev == NULL || lat == NULL || s == NULL || path_join(dir, cfg->base.dir, name) ||
        make_dir(dir) || path_join(csv, dir, "products.csv") ||
        path_join(hub_log, dir, "hub.log"))
        goto out;
    if (write_catalog_csv(csv) || hub_loc_make(cfg, store, dir, tag, &h))
        goto out;
    have_loc = true;
    if (hub_prepare(&cfg->base, h.init_db, h.db, csv, BENCH_PRODUCTS, business, sizeof(business),
                    token, sizeof(token), NULL))
        goto out;
    /* 1,000 devices through the store's own device_add (what `duka device add` runs), and
     * their push bodies: not timed. */
    double t0 = now_us();
    duka_err err = {0};
    if (duka_hub_store_open(h.db, false, &hs, &err) != DUKA_OK) {
        fail("opening the hub store", &err);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        snprintf(dev[i].terminal, sizeof(dev[i].terminal), "F%04d", i + 1);
        if (duka_hub_device_add(hs, business, dev[i].terminal, dev[i].token, &err) != DUKA_OK) {
            fail("adding a device", &err);
            goto out;
        }
        dev[i].body = fanin_body(tmpl, s, dev[i].terminal, cfg->device_sales, &dev[i].len);
        if (dev[i].body == NULL) {
            fprintf(stderr, "duka-bench: out of memory building push bodies\n");
            goto out;
        }
    }
    duka_hub_store_close(hs);
    hs = NULL;
    f->fanin_setup_s = (now_us() - t0) / 1e6;
    if (hub_start(&cfg->base, h.db, hub_log, &port))
        goto out;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/push", port);
    double secs = 0;
    int retries = 0, again_retries = 0;
    sync(); /* the setup's writes (1,000 devices) are not the fan-in's: flushed first */
    if (fanin_push(cfg, dev, n, url, &secs, &retries))
        goto out;
    int64_t applied = 0, dups = 0, other = 0;
    for (int i = 0; i < n; i++) {
        applied += dev[i].applied;
        dups += dev[i].duplicates;
        other += dev[i].other;
        lat[i] = dev[i].latency_ms;
    }
    /* A retried push the hub had applied before dropping the connection answers duplicate. */
    if (applied + dups != expected || other != 0 || (retries == 0 && dups != 0)) {
        fprintf(stderr, "duka-bench: fan-in: %lld applied, %lld duplicates, %lld other; "
                "expected %lld applied\n", (long long)applied, (long long)dups,
                (long long)other, (long long)expected);
        goto out;
    }
    latency_summary ls = summarize(lat, n); /* ms in, ms out */
    f->fanin_drain_s[run] = secs;
    f->fanin_p50_ms[run] = ls.p50_us;
    f->fanin_p99_ms[run] = ls.p99_us;
    f->fanin_retries[run] = retries;
    /* A retry storm in miniature: the first devices push the same batches again; every one
     * must come back `duplicate` and the hub must still hold exactly `expected`. */
    int again = n < SCALE_REPUSH_DEVICES ? n : SCALE_REPUSH_DEVICES;
    double again_s = 0;
    if (fanin_push(cfg, dev, again, url, &again_s, &again_retries))
        goto out;
    for (int i = 0; i < again; i++) {
        if (dev[i].duplicates != cfg->device_sales || dev[i].applied != 0) {
            fprintf(stderr, "duka-bench: fan-in re-push of %s: %d applied, %d duplicates\n",
                    dev[i].terminal, dev[i].applied, dev[i].duplicates);
            goto out;
        }
    }
    f->fanin_hub_mb[run] = hub_hwm_mb();
    f->fanin_sales[run] = hub_report_sales(&cfg->base, h.db, business, expected);
    if (f->fanin_sales[run] != expected)
        goto out;
    fprintf(stderr, "duka-bench:   %s: %lld sales from %d devices at the hub in %.2f s; push "
            "p50 %.0f ms, p99 %.0f ms; hub peak RSS %.1f MB (setup %.1f s)\n",
            store_names[store], (long long)expected, n, secs, ls.p50_us, ls.p99_us,
            f->fanin_hub_mb[run], f->fanin_setup_s);
    result = 0;
out:
    hub_stop();
    duka_hub_store_close(hs);
    if (have_loc)
        hub_loc_drop(cfg, &h);
    if (dev != NULL)
        for (int i = 0; i < n; i++)
            free(dev[i].body);
    free(dev);
    free(lat);
    duka_sale_free(s);
    if (result != 0)
        fprintf(stderr, "duka-bench: fan-in (%s) run %d failed (hub log: %s, kept)\n",
                store_names[store], run + 1, hub_log);
    else if (!cfg->base.keep)
        remove_tree(dir);
    return result;
}

/* ---- 3. catalog pull ---- */

/* A new token for the bench's terminal (duka device revoke, then device add): the token of a
 * revoked terminal is bound to no till database. */
static int new_token(const scale_config *cfg, const char *db, const char *business, char *token,
                     size_t n)
{
    const char *revoke[] = {"device", "revoke", "--db", db, "--business", business,
                            "--terminal", BENCH_TERMINAL, "--json", NULL};
    const char *add[] = {"device", "add", "--db", db, "--business", business, "--terminal",
                         BENCH_TERMINAL, "--json", NULL};
    json_t *js = run_duka_json(&cfg->base, revoke);
    json_decref(js);
    js = js ? run_duka_json(&cfg->base, add) : NULL;
    const char *t = json_string_value(json_object_get(js, "token"));
    int result = t != NULL && strlen(t) < n ? 0 : -1;
    if (result == 0)
        snprintf(token, n, "%s", t);
    else
        fprintf(stderr, "duka-bench: a new token for %s failed\n", BENCH_TERMINAL);
    json_decref(js);
    return result;
}

static int scale_catalog(const scale_config *cfg, int store, scale_store_figures *f)
{
    char dir[BENCH_PATH_MAX], csv[BENCH_PATH_MAX], hub_log[BENCH_PATH_MAX];
    char hub_url[64], till_db[BENCH_PATH_MAX], pull_till[BENCH_PATH_MAX], name[64];
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    hub_loc h;
    int result = -1, port = 0;
    bool have_loc = false;
    snprintf(name, sizeof(name), "scale-catalog-%s", store == STORE_PG ? "pg" : "sqlite");
    if (path_join(dir, cfg->base.dir, name) || make_dir(dir) ||
        path_join(csv, dir, "products.csv") || path_join(hub_log, dir, "hub.log"))
        goto out;
    if (write_big_csv(csv, cfg->products, 0) || hub_loc_make(cfg, store, dir, "catalog", &h))
        goto out;
    have_loc = true;
    if (hub_prepare(&cfg->base, h.init_db, h.db, csv, cfg->products, business, sizeof(business),
                    token, sizeof(token), &f->import_s) ||
        hub_start(&cfg->base, h.db, hub_log, &port))
        goto out;
    snprintf(hub_url, sizeof(hub_url), "http://127.0.0.1:%d", port);
    for (int r = 0; r < cfg->runs; r++) {
        char tname[32];
        double mb = 0;
        snprintf(tname, sizeof(tname), "till-%d.db", r + 1);
        /* Each run is a new till: a token serves one till database, so the terminal gets a
         * new one (revoke, add) before each run but the first — outside the timed sync. */
        if (r > 0 && new_token(cfg, h.db, business, token, sizeof(token)))
            goto out;
        if (path_join(till_db, dir, tname) || till_point(till_db, true, hub_url, token) ||
            till_sync(cfg, till_db, 0, cfg->products, &f->pull_s[r], &mb))
            goto out;
        if (mb > f->pull_till_mb)
            f->pull_till_mb = mb;
        /* The incremental pulls go to the last one: its token is the one not revoked. */
        snprintf(pull_till, sizeof(pull_till), "%s", till_db);
        fprintf(stderr, "duka-bench:   %s: initial pull of %d products in %.2f s (till peak RSS "
                "%.1f MB)\n", store_names[store], cfg->products, f->pull_s[r], mb);
    }
    for (int r = 0; r < cfg->runs; r++) {
        char ccsv[BENCH_PATH_MAX];
        double secs = 0;
        if (path_join(ccsv, dir, "changes.csv") || write_big_csv(ccsv, cfg->changes, r + 1))
            goto out;
        const char *import[] = {"product", "import", "--db", h.db, "--business", business,
                                "--json", ccsv, NULL};
        json_t *js = run_duka_json(&cfg->base, import);
        json_int_t imported = json_integer_value(json_object_get(js, "imported"));
        json_decref(js);
        if (imported != cfg->changes) {
            fprintf(stderr, "duka-bench: importing %d changes imported %lld\n", cfg->changes,
                    (long long)imported);
            goto out;
        }
        if (till_sync(cfg, pull_till, 0, cfg->changes, &secs, NULL))
            goto out;
        f->incr_ms[r] = secs * 1e3;
    }
    f->catalog_hub_mb = hub_hwm_mb();
    fprintf(stderr, "duka-bench:   %s: import %.2f s; incremental pull of %d: %.0f ms (run 1)\n",
            store_names[store], f->import_s, cfg->changes, f->incr_ms[0]);
    result = 0;
out:
    hub_stop();
    if (have_loc)
        hub_loc_drop(cfg, &h);
    if (result != 0)
        fprintf(stderr, "duka-bench: catalog (%s) failed (hub log: %s, kept)\n",
                store_names[store], hub_log);
    else if (!cfg->base.keep)
        remove_tree(dir);
    return result;
}

/* ---- 4. PouchDB ---- */

static void scale_pouch(const scale_config *cfg, const char *sample, pouch_figures *p)
{
    char out[BENCH_PATH_MAX], dir[BENCH_PATH_MAX], nbuf[16], rbuf[16];
    memset(p, 0, sizeof(*p));
    if (cfg->pouch_script == NULL) {
        snprintf(p->why, sizeof(p->why), "%s", cfg->pouch_na ? cfg->pouch_na : "not run");
        return;
    }
    if (path_join(out, cfg->base.dir, "pouchdb.json") || path_join(dir, cfg->base.dir, "pouchdb")) {
        snprintf(p->why, sizeof(p->why), "path too long");
        return;
    }
    snprintf(nbuf, sizeof(nbuf), "%d", cfg->catchup);
    snprintf(rbuf, sizeof(rbuf), "%d", cfg->pouch_runs);
    const char *argv[] = {cfg->node ? cfg->node : "node", cfg->pouch_script, "--sample", sample,
                          "--n", nbuf, "--runs", rbuf, "--dir", dir, "--out", out, NULL};
    int status = run_prog(argv, NULL, NULL);
    json_t *js = json_load_file(out, 0, NULL);
    if (status != 0 || js == NULL) {
        snprintf(p->why, sizeof(p->why), "node %s exited %d without a result", cfg->pouch_script,
                 status);
    } else if (!json_is_true(json_object_get(js, "ok"))) {
        snprintf(p->why, sizeof(p->why), "%s",
                 json_string_value(json_object_get(js, "reason")) ? json_string_value(json_object_get(js, "reason")) : "failed");
    } else {
        const json_t *runs = json_object_get(js, "runs");
        size_t i;
        const json_t *v;
        p->min_s = 1e300;
        json_array_foreach(runs, i, v) {
            double s = json_number_value(v);
            p->min_s = s < p->min_s ? s : p->min_s;
            p->max_s = s > p->max_s ? s : p->max_s;
        }
        p->runs = (int)json_array_size(runs);
        p->median_s = json_number_value(json_object_get(js, "median_s"));
        snprintf(p->adapter, sizeof(p->adapter), "%s",
                 json_string_value(json_object_get(js, "adapter")) ? json_string_value(json_object_get(js, "adapter")) : "?");
        p->done = p->runs > 0 && p->median_s > 0;
    }
    json_decref(js);
    if (!cfg->base.keep)
        remove_tree(dir);
}

/* ---- the table ---- */

/* One row of the scale table (its labels are wider than the first table's). */
static void scale_row(FILE *f, const char *label, const char *value, const char *target)
{
    if (target[0] != '\0')
        fprintf(f, "%-60s %-30s %s\n", label, value, target);
    else
        fprintf(f, "%-60s %s\n", label, value);
}

static void med_range(const double *v, int n, double scale, int decimals, char *buf,
                      size_t len)
{
    double tmp[SCALE_RUNS_MAX], lo = 1e300, hi = -1e300;
    for (int i = 0; i < n; i++) {
        tmp[i] = v[i] * scale;
        lo = tmp[i] < lo ? tmp[i] : lo;
        hi = tmp[i] > hi ? tmp[i] : hi;
    }
    char a[32], b[32], c[32];
    snprintf(a, sizeof(a), "%.*f", decimals, median(tmp, n));
    snprintf(b, sizeof(b), "%.*f", decimals, lo);
    snprintf(c, sizeof(c), "%.*f", decimals, hi);
    if (n > 1)
        snprintf(buf, len, "%s (%s..%s)", a, b, c);
    else
        snprintf(buf, len, "%s", a);
}

static double med_of(const double *v, int n)
{
    double tmp[SCALE_RUNS_MAX];
    memcpy(tmp, v, (size_t)n * sizeof(double));
    return median(tmp, n);
}

static double max_of(const double *v, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* "%.1f" of mb, or "-" when its part did not run. */
static void mb_or_dash(bool done, double mb, char *buf, size_t n)
{
    if (done)
        snprintf(buf, n, "%.1f", mb);
    else
        snprintf(buf, n, "-");
}

/* The PouchDB rows: its time, and how many times faster each hub's catch-up was. */
static void print_pouch_rows(FILE *f, const scale_report *r, const char *cnt)
{
    char label[128], value[128];
    const pouch_figures *p = &r->pouch;
    snprintf(label, sizeof(label), "PouchDB replicate.to %s sale docs (s)", cnt);
    if (p->done) {
        snprintf(value, sizeof(value), "%.1f (%.1f..%.1f, n=%d, %s)", p->median_s, p->min_s,
                 p->max_s, p->runs, p->adapter);
        scale_row(f, label, value, "");
    } else {
        scale_row(f, label, "n/a", "");
        fprintf(f, "  (%s)\n", p->why);
    }
    for (int st = 0; st < STORE_COUNT; st++) {
        const scale_store_figures *s = &r->store[st];
        if (!r->store_on[st] || !s->catchup_done)
            continue;
        double duka_s = med_of(s->catchup_s, s->catchup_n);
        snprintf(label, sizeof(label), "PouchDB time / duka catch-up time, %s hub",
                 store_names[st]);
        if (p->done)
            snprintf(value, sizeof(value), "%.1fx (%.1f s / %.2f s)", p->median_s / duka_s,
                     p->median_s, duka_s);
        else
            snprintf(value, sizeof(value), "n/a (duka %.2f s)", duka_s);
        scale_row(f, label, value, ">= 5x");
    }
}

static void print_scale_table(FILE *f, const scale_config *cfg, const scale_report *r)
{
    char label[128], value[128], cnt[32], n2[32];
    format_count(cfg->catchup, cnt, sizeof(cnt));
    scale_row(f, "metric (scale, issue 5)", "value", "target");
    for (int st = 0; st < STORE_COUNT; st++) {
        const scale_store_figures *s = &r->store[st];
        if (!r->store_on[st])
            continue;
        bool pg = st == STORE_PG;
        const char *nm = store_names[st];
        if (s->catchup_done) {
            snprintf(label, sizeof(label), "catch-up %s sales, %s hub (sales/s, n=%d)", cnt, nm,
                     s->catchup_n);
            med_range(s->catchup_rate, s->catchup_n, 1, 0, value, sizeof(value));
            scale_row(f, label, value, pg ? ">= 20,000" : "");
        }
        if (s->fanin_done) {
            format_count((long long)cfg->devices, n2, sizeof(n2));
            snprintf(label, sizeof(label), "fan-in %s tills x %d sales, %s: drain (s, n=%d)", n2,
                     cfg->device_sales, nm, s->fanin_n);
            med_range(s->fanin_drain_s, s->fanin_n, 1, 2, value, sizeof(value));
            scale_row(f, label, value, "<= 20");
            snprintf(label, sizeof(label), "  push latency p50 / p99 (ms, median of runs)");
            snprintf(value, sizeof(value), "%.0f / %.0f", med_of(s->fanin_p50_ms, s->fanin_n),
                     med_of(s->fanin_p99_ms, s->fanin_n));
            scale_row(f, label, value, "");
            int dropped = 0;
            for (int i = 0; i < s->fanin_n; i++)
                dropped += s->fanin_retries[i];
            snprintf(label, sizeof(label), "  pushes dropped by the hub and sent again (all runs)");
            snprintf(value, sizeof(value), "%d of %d", dropped, s->fanin_n * cfg->devices);
            scale_row(f, label, value, "");
            format_count((long long)s->fanin_sales[0], n2, sizeof(n2));
            snprintf(label, sizeof(label), "  sales at the hub (hub report; re-push = duplicate)");
            snprintf(value, sizeof(value), "%s in each of %d, 0 duplicated", n2, s->fanin_n);
            scale_row(f, label, value, "");
        }
        if (s->catalog_done) {
            format_count(cfg->products, n2, sizeof(n2));
            snprintf(label, sizeof(label), "catalog: initial pull of %s products, %s (s, n=%d)",
                     n2, nm, cfg->runs);
            med_range(s->pull_s, s->catalog_n, 1, 2, value, sizeof(value));
            scale_row(f, label, value, "<= 2");
            snprintf(label, sizeof(label), "  incremental pull of %d changes (ms, n=%d)",
                     cfg->changes, cfg->runs);
            med_range(s->incr_ms, s->catalog_n, 1, 0, value, sizeof(value));
            scale_row(f, label, value, "");
            snprintf(label, sizeof(label), "  product import of %s at the hub (s)", n2);
            snprintf(value, sizeof(value), "%.2f", s->import_s);
            scale_row(f, label, value, "");
        }
        if (!s->catchup_done && !s->fanin_done && !s->catalog_done)
            continue;
        char a[16], b[16], c[16]; /* "-" for a part that did not run */
        mb_or_dash(s->catchup_done, max_of(s->catchup_hub_mb, s->catchup_n), a, sizeof(a));
        mb_or_dash(s->fanin_done, max_of(s->fanin_hub_mb, s->fanin_n), b, sizeof(b));
        mb_or_dash(s->catalog_done, s->catalog_hub_mb, c, sizeof(c));
        snprintf(label, sizeof(label), "peak RSS, %s hub: catch-up / fan-in / catalog (MB)", nm);
        snprintf(value, sizeof(value), "%s / %s / %s", a, b, c);
        scale_row(f, label, value, "");
        if (!s->catchup_done && !s->catalog_done)
            continue; /* the fan-in has no till process */
        mb_or_dash(s->catchup_done, max_of(s->catchup_till_mb, s->catchup_n), a, sizeof(a));
        mb_or_dash(s->catalog_done, s->pull_till_mb, c, sizeof(c));
        snprintf(label, sizeof(label), "peak RSS, till (duka sync): push %s / pull (MB)", cnt);
        snprintf(value, sizeof(value), "%s / %s", a, c);
        scale_row(f, label, value, "");
    }
    if (cfg->parts & PART_POUCH)
        print_pouch_rows(f, r, cnt);
    if (r->sale_json_bytes == 0) /* the catalog alone: no sale made */
        return;
    fprintf(f, "sale JSON as pushed: %zu bytes", r->sale_json_bytes);
    if (cfg->parts & PART_FANIN)
        fprintf(f, "; %d client threads for the fan-in", cfg->threads);
    if (cfg->parts & PART_CATCHUP)
        fprintf(f, "; filling the %s-sale till took %.1f s", cnt, r->fill_s);
    fprintf(f, "\n");
}


static int append_scale_results(const scale_config *cfg, const scale_report *r)
{
    FILE *f = fopen(cfg->base.results_path, "a");
    if (f == NULL) {
        fprintf(stderr, "duka-bench: cannot append to %s: %s\n", cfg->base.results_path,
                strerror(errno));
        return -1;
    }
    fprintf(f, "\nScale figures (issue 5): SQLite and PostgreSQL hubs, each a real `duka hub`; "
            "PouchDB in the same run.");
    if (cfg->parts != PART_ALL) {
        fprintf(f, " Only the parts");
        for (int k = 0; k < PART_COUNT; k++)
            if (cfg->parts & (1u << k))
                fprintf(f, " `%s`", part_names[k]);
        fprintf(f, " (--parts).");
    }
    fprintf(f, "\n\n```\n");
    print_scale_table(f, cfg, r);
    fprintf(f, "```\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- main of `duka-bench scale` ---- */

static int scale_usage(void)
{
    fprintf(stderr,
            "usage: duka-bench scale --duka PATH --dir DIR [--results FILE] [--runs N] [--pouch-runs N]\n"
            "         [--parts LIST] [--catchup N] [--devices N] [--device-sales N] [--threads N]\n"
            "         [--products N] [--changes N] [--pg-url URL --pg-admin-url URL --psql PATH]\n"
            "         [--only-pg] [--node PATH --pouch-script FILE | --pouch-na REASON] [--keep]\n"
            "  --parts LIST  the parts to run, comma-separated: catchup,fanin,catalog,pouch\n"
            "                (default all of them, in that order)\n");
    return 2;
}

/* Parses --parts: a comma-separated, non-empty subset of part_names, into a PART_* mask. */
static int parse_parts(const char *list, unsigned *out)
{
    unsigned parts = 0;
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        int k = 0;
        while (k < PART_COUNT &&
               !(strlen(part_names[k]) == len && strncmp(p, part_names[k], len) == 0))
            k++;
        if (k == PART_COUNT) {
            fprintf(stderr, "duka-bench: --parts '%s': '%.*s' is not one of catchup, fanin, "
                    "catalog, pouch\n", list, (int)len, p);
            return -1;
        }
        parts |= 1u << k;
        p += len;
        if (*p == ',')
            p++;
    }
    if (parts == 0) {
        fprintf(stderr, "duka-bench: --parts names no part\n");
        return -1;
    }
    *out = parts;
    return 0;
}

/* Fills cfg from the command line: 0, or the usage's exit status. */
static int scale_parse_args(int argc, char **argv, scale_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--keep") == 0) {
            cfg->base.keep = true;
            continue;
        }
        if (strcmp(a, "--only-pg") == 0) {
            cfg->only_pg = true;
            continue;
        }
        if (v == NULL)
            return scale_usage();
        const char **sp = strcmp(a, "--duka") == 0           ? &cfg->base.duka_bin
                          : strcmp(a, "--dir") == 0          ? &cfg->base.dir
                          : strcmp(a, "--results") == 0      ? &cfg->base.results_path
                          : strcmp(a, "--pg-url") == 0       ? &cfg->pg_url
                          : strcmp(a, "--pg-admin-url") == 0 ? &cfg->pg_admin_url
                          : strcmp(a, "--psql") == 0         ? &cfg->psql
                          : strcmp(a, "--node") == 0         ? &cfg->node
                          : strcmp(a, "--pouch-script") == 0 ? &cfg->pouch_script
                          : strcmp(a, "--pouch-na") == 0     ? &cfg->pouch_na
                                                             : NULL;
        if (sp != NULL)
            *sp = v;
        else if (strcmp(a, "--parts") == 0 ? parse_parts(v, &cfg->parts)
                 : strcmp(a, "--runs") == 0 ? parse_count(v, 1, SCALE_RUNS_MAX, &cfg->runs)
                 : strcmp(a, "--pouch-runs") == 0
                     ? parse_count(v, 1, SCALE_RUNS_MAX, &cfg->pouch_runs)
                 : strcmp(a, "--catchup") == 0
                     ? parse_count(v, 1, BENCH_COUNT_MAX, &cfg->catchup)
                 : strcmp(a, "--devices") == 0 ? parse_count(v, 1, 100000, &cfg->devices)
                 : strcmp(a, "--device-sales") == 0
                     ? parse_count(v, 1, DUKA_SYNC_BATCH_MAX, &cfg->device_sales)
                 : strcmp(a, "--threads") == 0
                     ? parse_count(v, 1, SCALE_THREADS_MAX, &cfg->threads)
                 : strcmp(a, "--products") == 0
                     ? parse_count(v, 1, BENCH_COUNT_MAX, &cfg->products)
                 : strcmp(a, "--changes") == 0 ? parse_count(v, 1, 100000, &cfg->changes)
                                               : -1)
            return scale_usage();
        i++;
    }
    if (cfg->base.duka_bin == NULL || cfg->base.dir == NULL)
        return scale_usage();
    if (cfg->changes > cfg->products)
        cfg->changes = cfg->products;
    return 0;
}

/* The template till: its first sale is the model of the fan-in's sales and of PouchDB's
 * documents (written to `sample` as a till pushes it); with the catch-up, its queue is then
 * filled to cfg->catchup sales once and copied for every run (each against a fresh hub, so
 * the same command ids are new to it). */
static int scale_template(const scale_config *cfg, const char *template, const char *sample,
                          duka_sale *tmpl, scale_report *r)
{
    bool catchup = cfg->parts & PART_CATCHUP;
    sqlite3 *till = NULL;
    json_t *cmd = NULL;
    char *text = NULL;
    int result = -1;
    if (catchup)
        fprintf(stderr, "duka-bench: scale 1/4 filling a till with %d sales (copied for each "
                "catch-up run)\n", cfg->catchup);
    if (till_create(template, "http://127.0.0.1:9", "none", &till) || till_sell(till, 0, tmpl) ||
        (catchup && fill_queue(till, cfg->catchup - 1, &r->fill_s)))
        goto out;
    char id[DUKA_UUID_STR_LEN + 1];
    duka_uuid_v7(tmpl->created_ms, id);
    cmd = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "type", "sale.create", "entity_id",
                    tmpl->receipt_no, "payload", duka_sale_to_json(tmpl));
    text = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
    r->sale_json_bytes = text ? strlen(text) : 0;
    if (cmd == NULL || json_dump_file(cmd, sample, JSON_COMPACT) != 0) {
        fprintf(stderr, "duka-bench: cannot write %s\n", sample);
        goto out;
    }
    result = 0;
out:
    free(text);
    json_decref(cmd);
    duka_db_close(till);
    return result;
}

/* Part 1 (each store, then the next), part 2 (PostgreSQL first), part 3: each as asked. */
static int scale_run_hubs(const scale_config *cfg, const char *template, const duka_sale *tmpl,
                          scale_report *r)
{
    for (int st = 0; st < STORE_COUNT && (cfg->parts & PART_CATCHUP); st++) {
        if (!r->store_on[st])
            continue;
        scale_store_figures *f = &r->store[st];
        for (int run = 0; run < cfg->runs; run++) {
            fprintf(stderr, "duka-bench: scale 1/4 catch-up, %s hub, run %d of %d\n",
                    store_names[st], run + 1, cfg->runs);
            if (scale_catchup_once(cfg, st, run, template, f))
                return -1;
            f->catchup_n++;
        }
        f->catchup_done = true;
    }
    for (int st = STORE_COUNT - 1; st >= 0 && (cfg->parts & PART_FANIN); st--) {
        if (!r->store_on[st])
            continue;
        scale_store_figures *f = &r->store[st];
        for (int run = 0; run < cfg->runs; run++) {
            fprintf(stderr, "duka-bench: scale 2/4 fan-in, %s hub, run %d of %d: %d devices x "
                    "%d sales, %d client threads\n", store_names[st], run + 1, cfg->runs,
                    cfg->devices, cfg->device_sales, cfg->threads);
            if (scale_fanin_once(cfg, st, run, tmpl, f))
                return -1;
            f->fanin_n++;
        }
        f->fanin_done = true;
    }
    for (int st = 0; st < STORE_COUNT && (cfg->parts & PART_CATALOG); st++) {
        if (!r->store_on[st])
            continue;
        fprintf(stderr, "duka-bench: scale 3/4 catalog, %s hub: %d products, then %d changes\n",
                store_names[st], cfg->products, cfg->changes);
        if (scale_catalog(cfg, st, &r->store[st]))
            return -1;
        r->store[st].catalog_n = cfg->runs;
        r->store[st].catalog_done = true;
    }
    return 0;
}

int scale_main(int argc, char **argv)
{
    scale_config cfg = {.runs = 3,
                        .pouch_runs = 1,
                        .parts = PART_ALL,
                        .catchup = SCALE_CATCHUP_DEFAULT,
                        .devices = SCALE_DEVICES_DEFAULT,
                        .device_sales = SCALE_DEVICE_SALES_DEFAULT,
                        .threads = SCALE_THREADS_DEFAULT,
                        .products = SCALE_PRODUCTS_DEFAULT,
                        .changes = SCALE_CHANGES_DEFAULT};
    int rc = scale_parse_args(argc, argv, &cfg);
    if (rc != 0)
        return rc;
    bool pg = cfg.pg_url != NULL && cfg.pg_admin_url != NULL && cfg.psql != NULL;
    static const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                    "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
        unsetenv(proxies[i]);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "duka-bench: cannot initialise libsodium / libcurl\n");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);

    static scale_report r;
    memset(&r, 0, sizeof(r));
    r.store_on[STORE_SQLITE] = !cfg.only_pg;
    r.store_on[STORE_PG] = pg;
    if (!pg)
        fprintf(stderr, "duka-bench: no PostgreSQL given (--pg-url, --pg-admin-url, --psql): "
                "SQLite hub only\n");
    char template[BENCH_PATH_MAX], sample[BENCH_PATH_MAX];
    duka_sale *tmpl = duka_sale_new();
    bool need_template = cfg.parts & (PART_CATCHUP | PART_FANIN | PART_POUCH);
    if (tmpl == NULL || path_join(template, cfg.base.dir, "till-template.db") ||
        path_join(sample, cfg.base.dir, "sale-command.json") ||
        (need_template && scale_template(&cfg, template, sample, tmpl, &r)) ||
        scale_run_hubs(&cfg, template, tmpl, &r)) {
        rc = 1;
    } else if (cfg.parts & PART_POUCH) {
        fprintf(stderr, "duka-bench: scale 4/4 PouchDB: %d sale documents, %d run(s)\n",
                cfg.catchup, cfg.pouch_runs);
        scale_pouch(&cfg, sample, &r.pouch);
        if (!r.pouch.done)
            fprintf(stderr, "duka-bench:   PouchDB: n/a (%s)\n", r.pouch.why);
    }
    printf("\n");
    print_scale_table(stdout, &cfg, &r);
    fflush(stdout);
    if (rc == 0 && cfg.base.results_path != NULL && append_scale_results(&cfg, &r))
        rc = 1;
    duka_sale_free(tmpl);
    curl_global_cleanup();
    return rc;
}
