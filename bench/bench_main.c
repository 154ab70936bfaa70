/*
 * bench_main.c — `duka-bench`: the two figures duka promises, measured against a baseline
 * taken in the same run on the same disk (see bench/README.md).
 *
 *   1. Durable sale commit on the till: p50/p99 latency of duka_checkout_commit (a 3-line
 *      cash sale) beside a bare SQLite baseline (WAL, synchronous=FULL, one INSERT per
 *      transaction) in the same folder, interleaved sale/baseline so both see the same noise.
 *   2. Catch-up: N sales committed offline on a fresh till, then a real `duka hub` process is
 *      started and one duka_sync_run pushes them all; sales/s, median of R runs, each checked
 *      with `duka hub report` (exactly N sales at the hub).
 *   3. Reconnect: a real `duka till` (default settings) serving with its hub down, sales
 *      waiting, left alone until its offline re-probe delay is at its cap; then the hub
 *      starts and the bench times hub-answering -> first batch / all sales in the hub's
 *      database (median and max of R runs, the hub's return spread over one probe period).
 *   4. Idle: two `duka till` processes with the hub down, one with 100,000 pending sales and
 *      one with none: CPU time (utime+stime), wake-ups and RSS over a quiet window, from
 *      /proc; then the hub comes back and the worker drains the 100,000 (sales/s).
 *
 * Workload: a shared, noisy 2-core box; so only medians, percentiles and ratios against the
 * in-run baseline are reported. Nothing here passes or fails on time: the exit code is 1
 * only when something is WRONG (an error, a lost or duplicated sale), never when it is slow.
 *
 * Every process started here is a child of this one, listens on 127.0.0.1 only, gets
 * SIGTERM at the end of its run (and if this process dies: PR_SET_PDEATHSIG), and every
 * file lives under --dir, which is removed at the end.
 *
 * `duka-bench scale` (the scale figures) is bench_scale.c, `duka-bench etims` (the eTIMS
 * figures) bench_etims.c; what they all use (processes, the hub,
 * /proc, medians, paths) is bench_common.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bench_common.h"
#include "bench_etims.h"
#include "bench_scale.h"
#include "common/error.h"
#include "common/limits.h"
#include "config/config.h"
#include "net/http_client.h"
#include "outbox/outbox.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "sync/sync_client.h"
#include "till/till_db.h"

/* ---- limits of the bench itself ---- */

#define BENCH_SALES_DEFAULT 2000      /* latency samples per side */
#define BENCH_WARMUP 100              /* commits per side before sampling starts */
#define BENCH_CATCHUP_DEFAULT 10000   /* sales pushed in one catch-up */
#define BENCH_RUNS_DEFAULT 3          /* catch-up repetitions (median reported) */
#define BENCH_RUNS_MAX 9
#define BENCH_BARE_PAYLOAD_BYTES 600  /* about the size of a 3-line sale's JSON */
#define BENCH_GROWTH_WINDOW 1000      /* first/last sales of a catch-up compared for slowdown */
#define BENCH_RECONNECT_RUNS_DEFAULT 5     /* hub comes back to a serving till (median, max) */
#define BENCH_RECONNECT_SALES_DEFAULT 1000 /* sales waiting on that till: two default batches */
#define BENCH_RECONNECT_IDLE_DEFAULT 20    /* s the till is left with the hub down (backoff at cap) */
#define BENCH_IDLE_PENDING_DEFAULT 100000  /* the queue of the idle measurement (the design point) */
#define BENCH_IDLE_SETTLE_DEFAULT 5        /* s after the tills start before the window opens */
#define BENCH_IDLE_WINDOW_DEFAULT 20       /* s over which idle CPU is measured */
#define BENCH_SECONDS_MAX 600
#define BENCH_HEALTH_POLL_MS 10       /* how often the bench asks a starting hub /v1/health */
#define BENCH_ARRIVAL_POLL_MS 20      /* how often it counts the hub's sales (reconnect) */
#define BENCH_DRAIN_POLL_MS 100       /* … and while 100,000 drain (count(*) is not free) */
#define BENCH_ARRIVAL_WAIT_MS 60000   /* a till that has not synced a minute after: wrong */
#define BENCH_STATUS_CALLS 5          /* GET /api/status samples with the large queue */
#define BENCH_STATUS_TIMEOUT_MS 30000

/* Targets (printed beside the figures; never enforced). */
#define TARGET_P99_RATIO_MAX 3.0
#define TARGET_CATCHUP_SALES_PER_S_MIN 5000.0
#define TARGET_RECONNECT_S_MAX 5.0
#define TARGET_IDLE_RSS_MB_MAX 10.0

extern char **environ;

typedef struct catchup_run {
    double commit_s;  /* committing the sales offline */
    double sync_s;    /* duka_sync_run pushing them all */
    double sales_per_s;
    double first_p50_us; /* commit p50 of the first BENCH_GROWTH_WINDOW sales (empty outbox) */
    double last_p50_us;  /* … and of the last ones (outbox holding N - window pending) */
    int64_t hub_sales;
} catchup_run;

/* ---- the bare baseline: one fsync'd INSERT per transaction ---- */

typedef struct bare_db {
    sqlite3 *db;
    sqlite3_stmt *begin, *insert, *commit;
    char payload[BENCH_BARE_PAYLOAD_BYTES + 1];
} bare_db;

static void bare_close(bare_db *b)
{
    sqlite3_finalize(b->begin);
    sqlite3_finalize(b->insert);
    sqlite3_finalize(b->commit);
    sqlite3_close(b->db);
    memset(b, 0, sizeof(*b));
}

static int bare_open(const char *path, bare_db *b)
{
    memset(b, 0, sizeof(*b));
    memset(b->payload, 'x', BENCH_BARE_PAYLOAD_BYTES);
    if (sqlite3_open(path, &b->db) != SQLITE_OK ||
        sqlite3_exec(b->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE rows(id INTEGER PRIMARY KEY, created_us INTEGER NOT NULL,"
                     " payload TEXT NOT NULL);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(b->db, "BEGIN IMMEDIATE", -1, &b->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(b->db, "INSERT INTO rows(created_us, payload) VALUES(?1, ?2)", -1,
                           &b->insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(b->db, "COMMIT", -1, &b->commit, NULL) != SQLITE_OK) {
        fprintf(stderr, "duka-bench: baseline database %s: %s\n", path,
                b->db ? sqlite3_errmsg(b->db) : "cannot open");
        bare_close(b);
        return -1;
    }
    return 0;
}

static int bare_insert(bare_db *b)
{
    sqlite3_reset(b->begin);
    sqlite3_reset(b->insert);
    sqlite3_reset(b->commit);
    sqlite3_bind_int64(b->insert, 1, (sqlite3_int64)now_us());
    sqlite3_bind_text(b->insert, 2, b->payload, BENCH_BARE_PAYLOAD_BYTES, SQLITE_STATIC);
    if (sqlite3_step(b->begin) != SQLITE_DONE || sqlite3_step(b->insert) != SQLITE_DONE ||
        sqlite3_step(b->commit) != SQLITE_DONE) {
        fprintf(stderr, "duka-bench: baseline insert: %s\n", sqlite3_errmsg(b->db));
        return -1;
    }
    return 0;
}

/* ---- 1. commit latency: sale vs bare, interleaved ---- */

static int bench_commit_latency(const bench_config *cfg, latency_summary *sale_out,
                                latency_summary *bare_out)
{
    char dir[BENCH_PATH_MAX], till_path[BENCH_PATH_MAX], bare_path[BENCH_PATH_MAX];
    sqlite3 *till = NULL;
    bare_db bare = {0};
    duka_sale *sale = duka_sale_new();
    double *sale_us = calloc((size_t)cfg->sales, sizeof(double));
    double *bare_us = calloc((size_t)cfg->sales, sizeof(double));
    int result = -1;
    if (sale == NULL || sale_us == NULL || bare_us == NULL) {
        fprintf(stderr, "duka-bench: out of memory\n");
        goto out;
    }
    if (path_join(dir, cfg->dir, "latency") || make_dir(dir) ||
        path_join(till_path, dir, "till.db") || path_join(bare_path, dir, "bare.db"))
        goto out;
    /* No hub: the URL is a closed port; checkout never touches the network anyway. */
    if (till_create(till_path, "http://127.0.0.1:9", "bench-offline-token", &till) ||
        bare_open(bare_path, &bare))
        goto out;
    int total = BENCH_WARMUP + cfg->sales;
    for (int i = 0; i < total; i++) {
        /* Alternate which side goes first so neither always follows the other's fsync. */
        for (int side = 0; side < 2; side++) {
            bool do_sale = (side == 0) == (i % 2 == 0);
            double t0 = now_us();
            if (do_sale ? till_sell(till, i, sale) : bare_insert(&bare))
                goto out;
            double dt = now_us() - t0;
            if (i >= BENCH_WARMUP)
                (do_sale ? sale_us : bare_us)[i - BENCH_WARMUP] = dt;
            /* As in `duka till`: till connections never checkpoint inside a sale; the sync
             * worker, woken by the sale, checkpoints after it (untimed here, as there). The
             * bare baseline keeps SQLite's automatic checkpoints, inside its commits. */
            if (do_sale)
                duka_db_checkpoint(till);
        }
    }
    *sale_out = summarize(sale_us, cfg->sales);
    *bare_out = summarize(bare_us, cfg->sales);
    result = 0;
out:
    bare_close(&bare);
    duka_db_close(till);
    duka_sale_free(sale);
    free(sale_us);
    free(bare_us);
    if (!cfg->keep)
        remove_tree(dir);
    return result;
}

/* ---- 2. catch-up: N offline sales, then a hub, then one sync ---- */

static int bench_catchup_once(const bench_config *cfg, int run, catchup_run *out)
{
    char dir[BENCH_PATH_MAX], name[32], csv[BENCH_PATH_MAX], hub_db[BENCH_PATH_MAX];
    char till_db[BENCH_PATH_MAX], hub_log[BENCH_PATH_MAX];
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1], hub_url[64];
    sqlite3 *till = NULL;
    duka_sale *sale = duka_sale_new();
    double *commit_us = calloc((size_t)cfg->catchup, sizeof(double));
    int window = cfg->catchup / 2 < BENCH_GROWTH_WINDOW ? cfg->catchup / 2 : BENCH_GROWTH_WINDOW;
    int result = -1;
    memset(out, 0, sizeof(*out));
    if (commit_us == NULL) {
        fprintf(stderr, "duka-bench: out of memory\n");
        goto out;
    }
    snprintf(name, sizeof(name), "catchup-%d", run + 1);
    if (sale == NULL || path_join(dir, cfg->dir, name) || make_dir(dir) ||
        path_join(csv, dir, "products.csv") || path_join(hub_db, dir, "hub.db") ||
        path_join(till_db, dir, "till.db") || path_join(hub_log, dir, "hub.log"))
        goto out;
    if (write_catalog_csv(csv) ||
        hub_prepare(cfg, hub_db, hub_db, csv, BENCH_PRODUCTS, business, sizeof(business), token,
                    sizeof(token), NULL))
        goto out;
    /* The hub's address is fixed before the till sells (as `till init --offline` would);
     * the hub process itself starts only once the sales are on the till. */
    int port = free_port();
    if (port <= 0)
        goto out;
    snprintf(hub_url, sizeof(hub_url), "http://127.0.0.1:%d", port);
    if (till_create(till_db, hub_url, token, &till))
        goto out;
    double t0 = now_us();
    for (int i = 0; i < cfg->catchup; i++) {
        double s0 = now_us();
        if (till_sell(till, i, sale))
            goto out;
        commit_us[i] = now_us() - s0;
    }
    out->commit_s = (now_us() - t0) / 1e6;
    if (window > 0) {
        out->first_p50_us = summarize(commit_us, window).p50_us;
        out->last_p50_us = summarize(commit_us + cfg->catchup - window, window).p50_us;
    }
    /* Start the hub on that port (another process may have taken it meanwhile: then a new
     * port, and the till's hub_url follows it, as `till init` would be re-run). */
    int hub_port = 0;
    if (hub_start_once(cfg, hub_db, hub_log, port) != 0) {
        if (hub_start(cfg, hub_db, hub_log, &hub_port))
            goto out;
        duka_err err = {0};
        snprintf(hub_url, sizeof(hub_url), "http://127.0.0.1:%d", hub_port);
        if (duka_db_begin(till, &err) || duka_meta_set(till, DUKA_META_HUB_URL, hub_url, &err) ||
            duka_db_commit(till, &err)) {
            duka_db_rollback(till);
            fail("moving the till to the hub's new port", &err);
            goto out;
        }
    }
    duka_sync_options opt = {.batch_size = 0 /* default */, .clock = NULL};
    duka_sync_result res;
    duka_err err = {0};
    t0 = now_us();
    duka_rc rc = duka_sync_run(till, &opt, &res, &err);
    out->sync_s = (now_us() - t0) / 1e6;
    if (rc != DUKA_OK) {
        fail("duka_sync_run", &err);
        goto out;
    }
    if (res.pushed != cfg->catchup || res.duplicates != 0 || res.failed != 0 ||
        res.conflicts != 0) {
        fprintf(stderr,
                "duka-bench: sync pushed %lld (duplicates %lld, failed %lld, conflicts %lld), "
                "expected %d applied\n",
                (long long)res.pushed, (long long)res.duplicates, (long long)res.failed,
                (long long)res.conflicts, cfg->catchup);
        goto out;
    }
    out->sales_per_s = out->sync_s > 0 ? cfg->catchup / out->sync_s : 0;
    /* Checked while the hub still serves the database (the CLI promises that is safe). */
    out->hub_sales = hub_report_sales(cfg, hub_db, business, cfg->catchup);
    if (out->hub_sales != cfg->catchup)
        goto out;
    result = 0;
out:
    hub_stop();
    duka_db_close(till);
    duka_sale_free(sale);
    free(commit_us);
    if (result != 0)
        fprintf(stderr, "duka-bench: catch-up run %d failed (hub log: %s, kept)\n", run + 1,
                hub_log);
    else if (!cfg->keep)
        remove_tree(dir);
    return result;
}

/* ---- 3 and 4: the till's background worker (`duka till`) ---- */

/* True once something accepts TCP connections on 127.0.0.1:port (no HTTP request: waiting for
 * a till must not make it read its database). */
static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts `duka till --db db --listen 127.0.0.1:PORT` on a free port (log in log_path) into
 * *slot and waits until the port accepts connections — a TCP connect only, so the wait does
 * not make the till read its database. */
static int till_spawn(const bench_config *cfg, const char *db, const char *log_path,
                      volatile sig_atomic_t *slot, int *port_out)
{
    for (int attempt = 0; attempt < BENCH_HUB_START_TRIES; attempt++) {
        int port = free_port();
        char listen[64];
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
        const char *args[] = {"till", "--db", db, "--listen", listen, NULL};
        pid_t pid = port > 0 ? spawn_duka(cfg, args, log_path) : -1;
        if (pid < 0)
            continue;
        *slot = pid;
        for (int waited = 0; waited < BENCH_HEALTH_WAIT_MS; waited += 10) {
            if (!child_alive(slot, "till"))
                break;
            if (port_accepts(port)) {
                *port_out = port;
                return 0;
            }
            sleep_ms(10);
        }
        child_stop(slot, "till");
    }
    fprintf(stderr, "duka-bench: the till did not start (see %s)\n", log_path);
    return -1;
}

/* Sleeps until the monotonic time until_us, checking every 100 ms that the till still runs. */
static int idle_until(double until_us, volatile sig_atomic_t *slot)
{
    for (;;) {
        if (!child_alive(slot, "till"))
            return -1;
        double left_ms = (until_us - now_us()) / 1e3;
        if (left_ms <= 0)
            return 0;
        sleep_ms(left_ms < 100 ? (long)left_ms + 1 : 100);
    }
}

/* Unsets every setting the till reads from the environment (DUKA_*, and the names of
 * config.h: OFFLINE_QUEUE_*, CONNECTIVITY_*, QUEUE_*, ALERT_*), so the tills started here run
 * with the defaults; then checks that the effective configuration of db_path is all
 * defaults. Returns the number of settings that are not (0: all defaults). */
static int default_settings(const char *db_path, int64_t *recheck_max_ms)
{
    char names[64][128];
    int n = 0;
    for (char **e = environ; e != NULL && *e != NULL && n < 64; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (len == 0 || len >= sizeof(names[0]))
            continue;
        bool drop = strncmp(*e, "DUKA_", 5) == 0;
        for (int id = 0; !drop && id < DUKA_SETTING_COUNT; id++) {
            const char *s = duka_setting_name((duka_setting_id)id);
            drop = strlen(s) == len && strncmp(*e, s, len) == 0;
        }
        if (drop) {
            memcpy(names[n], *e, len);
            names[n++][len] = '\0';
        }
    }
    for (int i = 0; i < n; i++)
        unsetenv(names[i]);
    duka_config c;
    duka_err err = {0};
    if (duka_config_load(&c, db_path, NULL, &err) != DUKA_OK) {
        fail("reading the till's configuration", &err);
        return -1;
    }
    int changed = 0;
    for (int id = 0; id < DUKA_SETTING_COUNT; id++) {
        if (c.source[id] != DUKA_SOURCE_DEFAULT) {
            fprintf(stderr, "duka-bench: warning: %s comes from %s, not the default\n",
                    duka_setting_name((duka_setting_id)id),
                    duka_setting_source_name(c.source[id]));
            changed++;
        }
    }
    *recheck_max_ms = duka_config_get(&c, DUKA_SETTING_OFFLINE_RECHECK_MAX);
    return changed;
}

/* A read connection to the hub's database: how many sales it holds, polled while it runs. */
typedef struct hub_counter {
    sqlite3 *db;
    sqlite3_stmt *count;
} hub_counter;

static void hub_counter_close(hub_counter *c)
{
    sqlite3_finalize(c->count);
    sqlite3_close(c->db);
    memset(c, 0, sizeof(*c));
}

static int hub_counter_open(const char *path, hub_counter *c)
{
    memset(c, 0, sizeof(*c));
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(c->db, 2000) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sales", -1, &c->count, NULL) !=
            SQLITE_OK) {
        fprintf(stderr, "duka-bench: hub database %s: %s\n", path,
                c->db ? sqlite3_errmsg(c->db) : "cannot open");
        hub_counter_close(c);
        return -1;
    }
    return 0;
}

static int64_t hub_counter_get(hub_counter *c)
{
    sqlite3_reset(c->count);
    int64_t n = sqlite3_step(c->count) == SQLITE_ROW ? sqlite3_column_int64(c->count, 0) : -1;
    sqlite3_reset(c->count); /* end the read transaction: never hold a snapshot between polls */
    if (n < 0)
        fprintf(stderr, "duka-bench: counting the hub's sales: %s\n", sqlite3_errmsg(c->db));
    return n;
}

typedef struct arrival {
    double first_us; /* monotonic time the first sales were seen at the hub */
    double all_us;   /* … and all `expected` */
} arrival;

/* Polls the hub's sales count every interval_ms until it reaches expected (the till in *till
 * must stay alive). -1 when it did not within timeout_ms, or holds more than expected. */
static int wait_arrival(hub_counter *hc, int64_t expected, volatile sig_atomic_t *till,
                        long interval_ms, long timeout_ms, arrival *out)
{
    double deadline = now_us() + (double)timeout_ms * 1e3;
    int64_t n = 0;
    out->first_us = out->all_us = -1;
    while (now_us() < deadline) {
        n = hub_counter_get(hc);
        double t = now_us();
        if (n < 0)
            return -1;
        if (n > 0 && out->first_us < 0)
            out->first_us = t;
        if (n >= expected) {
            out->all_us = t;
            if (n > expected) {
                fprintf(stderr, "duka-bench: the hub holds %lld sales, expected %lld\n",
                        (long long)n, (long long)expected);
                return -1;
            }
            return 0;
        }
        if (!child_alive(till, "till"))
            return -1;
        sleep_ms(interval_ms);
    }
    fprintf(stderr, "duka-bench: only %lld of %lld sales reached the hub within %ld s of it "
            "coming back\n", (long long)n, (long long)expected, timeout_ms / 1000);
    return -1;
}

/* The till's own outbox: every one of expected items done, nothing pending, failed or in
 * conflict. The hub commits a batch before the till records its answer (and with several
 * pushes in flight, the later answers come later still): polled for up to BENCH_STOP_WAIT_MS, and
 * what was left is printed only when it never got there. */
static int till_all_done(sqlite3 *till, int64_t expected)
{
    duka_outbox_counts c;
    for (int waited = 0;; waited += 100) {
        duka_err err = {0};
        if (duka_outbox_count(till, &c, &err) != DUKA_OK)
            return fail("counting the till's outbox", &err);
        if (c.done == expected && !c.pending && !c.processing && !c.failed && !c.conflict)
            return 0;
        if (waited >= BENCH_STOP_WAIT_MS)
            break;
        sleep_ms(100);
    }
    fprintf(stderr, "duka-bench: till outbox after the sync: done %lld of %lld, pending %lld, "
            "processing %lld, failed %lld, conflict %lld\n", (long long)c.done,
            (long long)expected, (long long)c.pending, (long long)c.processing,
            (long long)c.failed, (long long)c.conflict);
    return -1;
}

/* The till's sync_log: when (wall clock, ms) its first push started; -1 when none. */
static int64_t first_push_ms(sqlite3 *till)
{
    sqlite3_stmt *st = NULL;
    int64_t ms = -1;
    if (sqlite3_prepare_v2(till, "SELECT min(started_ms) FROM sync_log WHERE direction = 'push'"
                           " AND items > 0", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        ms = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return ms;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The till's answer to GET /api/status: its connectivity (into state), 0 when it answered. */
static int till_connectivity(int port, char *state, size_t n)
{
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/status", port);
    duka_http_reply reply = {0};
    duka_err err = {0};
    duka_rc rc = duka_http_request("GET", url, NULL, NULL, 0, 10000, &reply, &err);
    json_t *js = rc == DUKA_OK && reply.status == 200 ? json_loadb(reply.body, reply.len, 0, NULL)
                                                      : NULL;
    const char *s = json_string_value(json_object_get(js, "connectivity"));
    snprintf(state, n, "%s", s ? s : "?");
    json_decref(js);
    duka_http_reply_free(&reply);
    return s ? 0 : -1;
}

/* ---- 3. reconnect: a till serving offline, the hub comes back ---- */

typedef struct reconnect_run {
    double idle_s;       /* the till left alone with the hub down before the hub started */
    double spawn_up_s;   /* hub process started -> its first 200 on /v1/health */
    double push_start_s; /* hub answering -> the till's first push began (its sync_log);
                          * may be a few ms below 0 (the till saw the hub before we did);
                          * NAN when its sync_log has no push */
    double first_s;      /* hub answering -> the first batch in the hub's database */
    double all_s;        /* hub answering -> all the sales there */
} reconnect_run;

static int bench_reconnect_once(const bench_config *cfg, int run, reconnect_run *out)
{
    char dir[BENCH_PATH_MAX], name[32], csv[BENCH_PATH_MAX], hub_db[BENCH_PATH_MAX];
    char till_db[BENCH_PATH_MAX], hub_log[BENCH_PATH_MAX], till_log[BENCH_PATH_MAX];
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1], hub_url[64];
    char health[96], state[32];
    sqlite3 *till = NULL;
    hub_counter hc = {0};
    duka_sale *sale = duka_sale_new();
    int result = -1, till_port = 0;
    memset(out, 0, sizeof(*out));
    snprintf(name, sizeof(name), "reconnect-%d", run + 1);
    if (sale == NULL || path_join(dir, cfg->dir, name) || make_dir(dir) ||
        path_join(csv, dir, "products.csv") || path_join(hub_db, dir, "hub.db") ||
        path_join(till_db, dir, "till.db") || path_join(hub_log, dir, "hub.log") ||
        path_join(till_log, dir, "till.log"))
        goto out;
    if (write_catalog_csv(csv) ||
        hub_prepare(cfg, hub_db, hub_db, csv, BENCH_PRODUCTS, business, sizeof(business), token,
                    sizeof(token), NULL))
        goto out;
    int port = free_port();
    if (port <= 0)
        goto out;
    snprintf(hub_url, sizeof(hub_url), "http://127.0.0.1:%d", port);
    snprintf(health, sizeof(health), "%s/v1/health", hub_url);
    if (till_create(till_db, hub_url, token, &till) ||
        till_spawn(cfg, till_db, till_log, &g_till_pid[0], &till_port))
        goto out;
    double t_till = now_us();
    /* The cashier sells while the hub is down (committed on our connection: the same
     * transaction the till's POST /api/sales makes). */
    for (int i = 0; i < cfg->reconnect_sales; i++)
        if (till_sell(till, i, sale))
            goto out;
    /* Left alone until its offline re-probe delay is at its cap. The idle time is spread
     * over one cap period across the runs, so the hub comes back at a different point of
     * the till's probe cycle each time (median and max then mean something). */
    out->idle_s = cfg->reconnect_idle_s +
                  (cfg->reconnect_runs > 1 ? cfg->recheck_max_s * run / cfg->reconnect_runs : 0);
    if (idle_until(t_till + out->idle_s * 1e6, &g_till_pid[0]))
        goto out;
    if (till_connectivity(till_port, state, sizeof(state)) == 0 && strcmp(state, "offline") != 0)
        fprintf(stderr, "duka-bench: warning: the till says '%s' with the hub down\n", state);
    if (hub_counter_open(hub_db, &hc))
        goto out;
    double t_spawn = now_us();
    if (hub_spawn(cfg, hub_db, hub_log, port))
        goto out;
    double t_up = wait_http_200(health, &g_hub_pid, "hub", BENCH_HEALTH_POLL_MS,
                                BENCH_HEALTH_WAIT_MS);
    int64_t up_wall_ms = wall_ms();
    if (t_up < 0) {
        fprintf(stderr, "duka-bench: the hub did not answer on port %d (see %s)\n", port,
                hub_log);
        goto out;
    }
    arrival a;
    if (wait_arrival(&hc, cfg->reconnect_sales, &g_till_pid[0], BENCH_ARRIVAL_POLL_MS,
                     BENCH_ARRIVAL_WAIT_MS, &a))
        goto out;
    out->spawn_up_s = (t_up - t_spawn) / 1e6;
    out->first_s = (a.first_us - t_up) / 1e6;
    out->all_s = (a.all_us - t_up) / 1e6;
    /* Nothing lost, nothing twice: the hub's own report, and the till's outbox all done. */
    if (hub_report_sales(cfg, hub_db, business, cfg->reconnect_sales) != cfg->reconnect_sales)
        goto out;
    if (till_all_done(till, cfg->reconnect_sales) != 0)
        goto out;
    int64_t push_ms = first_push_ms(till);
    out->push_start_s = push_ms > 0 ? (double)(push_ms - up_wall_ms) / 1e3 : NAN;
    if (child_stop(&g_till_pid[0], "till") != 0)
        goto out;
    result = 0;
out:
    child_stop(&g_till_pid[0], "till");
    hub_stop();
    hub_counter_close(&hc);
    duka_db_close(till);
    duka_sale_free(sale);
    if (result != 0)
        fprintf(stderr, "duka-bench: reconnect run %d failed (logs kept: %s, %s)\n", run + 1,
                till_log, hub_log);
    else if (!cfg->keep)
        remove_tree(dir);
    return result;
}

/* ---- 4. idle cost of a till serving offline with a large queue ---- */

typedef struct idle_side {
    double cpu_pct;      /* CPU time over the window, in % of one core */
    double wakeups_s;    /* context switches per second over the window */
    double rss_mb, hwm_mb, anon_mb, file_mb;
    int threads;
} idle_side;

typedef struct idle_figures {
    bool done;
    double fill_s;          /* committing the pending sales (synchronous=OFF) */
    idle_side side[2];      /* [0] the large queue, [1] the empty queue */
    double status_ms;       /* GET /api/status with the large queue, median */
    bool drained;
    double drain_first_s;   /* hub answering -> first batch at the hub */
    double drain_all_s;     /* hub answering -> all there */
    double drain_rate;      /* sales/s from the first batch to the last */
    double drain_rss_mb, drain_hwm_mb, drain_anon_mb;
} idle_figures;

static const char *const idle_names[2] = {"full", "empty"};

static double status_call_ms(int port)
{
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/status", port);
    double t0 = now_us();
    long st = http_get_status(url, BENCH_STATUS_TIMEOUT_MS);
    return st == 200 ? (now_us() - t0) / 1e3 : -1;
}

static int bench_idle(const bench_config *cfg, idle_figures *out)
{
    char dir[BENCH_PATH_MAX], csv[BENCH_PATH_MAX], hub_db[BENCH_PATH_MAX];
    char till_db[2][BENCH_PATH_MAX], till_log[2][BENCH_PATH_MAX], hub_log[BENCH_PATH_MAX];
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1], hub_url[64];
    char health[96];
    sqlite3 *till[2] = {NULL, NULL};
    hub_counter hc = {0};
    int result = -1, till_port[2] = {0, 0};
    memset(out, 0, sizeof(*out));
    if (path_join(dir, cfg->dir, "idle") || make_dir(dir) ||
        path_join(csv, dir, "products.csv") || path_join(hub_db, dir, "hub.db") ||
        path_join(till_db[0], dir, "till-full.db") || path_join(till_db[1], dir, "till-empty.db") ||
        path_join(till_log[0], dir, "till-full.log") ||
        path_join(till_log[1], dir, "till-empty.log") || path_join(hub_log, dir, "hub.log"))
        goto out;
    if (write_catalog_csv(csv) ||
        hub_prepare(cfg, hub_db, hub_db, csv, BENCH_PRODUCTS, business, sizeof(business), token,
                    sizeof(token), NULL))
        goto out;
    int port = free_port();
    if (port <= 0)
        goto out;
    snprintf(hub_url, sizeof(hub_url), "http://127.0.0.1:%d", port);
    snprintf(health, sizeof(health), "%s/v1/health", hub_url);
    for (int k = 0; k < 2; k++)
        if (till_create(till_db[k], hub_url, token, &till[k]))
            goto out;
    if (fill_queue(till[0], cfg->idle_pending, &out->fill_s))
        goto out;
    fprintf(stderr, "duka-bench:   %d sales queued in %.1f s; both tills serving, hub down\n",
            cfg->idle_pending, out->fill_s);
    /* Both tills side by side, so both windows see the same noise. */
    for (int k = 0; k < 2; k++)
        if (till_spawn(cfg, till_db[k], till_log[k], &g_till_pid[k], &till_port[k]))
            goto out;
    if (idle_until(now_us() + cfg->idle_settle_s * 1e6, &g_till_pid[0]))
        goto out;
    proc_usage u0[2], u1[2];
    for (int k = 0; k < 2; k++)
        if (proc_read(g_till_pid[k], &u0[k]) != 0)
            goto out;
    double w0 = now_us();
    if (idle_until(w0 + cfg->idle_window_s * 1e6, &g_till_pid[0]) ||
        !child_alive(&g_till_pid[1], "till"))
        goto out;
    for (int k = 0; k < 2; k++)
        if (proc_read(g_till_pid[k], &u1[k]) != 0)
            goto out;
    double window_s = (now_us() - w0) / 1e6;
    for (int k = 0; k < 2; k++) {
        idle_side *s = &out->side[k];
        s->cpu_pct = (u1[k].cpu_s - u0[k].cpu_s) / window_s * 100.0;
        s->wakeups_s = (double)(u1[k].switches - u0[k].switches) / window_s;
        s->rss_mb = (double)u1[k].rss_kb / 1024.0;
        s->hwm_mb = (double)u1[k].hwm_kb / 1024.0;
        s->anon_mb = (double)u1[k].anon_kb / 1024.0;
        s->file_mb = (double)u1[k].file_kb / 1024.0;
        s->threads = u1[k].threads;
        fprintf(stderr, "duka-bench:   %s queue: CPU %.3f %%, %.1f wake-ups/s, RSS %.1f MB "
                "(peak %.1f; anon %.1f, files %.1f), %d threads\n", idle_names[k], s->cpu_pct,
                s->wakeups_s, s->rss_mb, s->hwm_mb, s->anon_mb, s->file_mb, s->threads);
    }
    out->done = true;
    /* What the main screen's status costs with that queue (after the window: not idle). */
    double st_ms[BENCH_STATUS_CALLS];
    for (int i = 0; i < BENCH_STATUS_CALLS; i++)
        if ((st_ms[i] = status_call_ms(till_port[0])) < 0)
            goto out;
    out->status_ms = median(st_ms, BENCH_STATUS_CALLS);
    if (child_stop(&g_till_pid[1], "till") != 0)
        goto out;
    if (!cfg->drain) {
        result = 0;
        goto out;
    }
    /* The hub comes back: the worker drains the queue on its own. */
    if (hub_counter_open(hub_db, &hc) || hub_spawn(cfg, hub_db, hub_log, port))
        goto out;
    double t_up = wait_http_200(health, &g_hub_pid, "hub", BENCH_HEALTH_POLL_MS,
                                BENCH_HEALTH_WAIT_MS);
    if (t_up < 0) {
        fprintf(stderr, "duka-bench: the hub did not answer on port %d (see %s)\n", port,
                hub_log);
        goto out;
    }
    arrival a;
    long timeout_ms = BENCH_ARRIVAL_WAIT_MS + (long)cfg->idle_pending; /* + 1 ms per sale */
    if (wait_arrival(&hc, cfg->idle_pending, &g_till_pid[0], BENCH_DRAIN_POLL_MS, timeout_ms,
                     &a))
        goto out;
    out->drain_first_s = (a.first_us - t_up) / 1e6;
    out->drain_all_s = (a.all_us - t_up) / 1e6;
    out->drain_rate = a.all_us > a.first_us ? cfg->idle_pending / ((a.all_us - a.first_us) / 1e6)
                                            : 0;
    if (hub_report_sales(cfg, hub_db, business, cfg->idle_pending) != cfg->idle_pending)
        goto out;
    if (till_all_done(till[0], cfg->idle_pending) != 0)
        goto out;
    proc_usage ud;
    if (proc_read(g_till_pid[0], &ud) != 0)
        goto out;
    out->drain_rss_mb = (double)ud.rss_kb / 1024.0;
    out->drain_hwm_mb = (double)ud.hwm_kb / 1024.0;
    out->drain_anon_mb = (double)ud.anon_kb / 1024.0;
    out->drained = true;
    if (child_stop(&g_till_pid[0], "till") != 0)
        goto out;
    result = 0;
out:
    for (int k = 0; k < 2; k++) {
        child_stop(&g_till_pid[k], "till");
        duka_db_close(till[k]);
    }
    hub_stop();
    hub_counter_close(&hc);
    if (result != 0)
        fprintf(stderr, "duka-bench: idle run failed (logs kept in %s)\n", dir);
    else if (!cfg->keep)
        remove_tree(dir);
    return result;
}

/* ---- the report ---- */

typedef struct bench_report {
    latency_summary sale, bare;
    catchup_run runs[BENCH_RUNS_MAX];
    int runs_done;
    reconnect_run reconnect[BENCH_RUNS_MAX];
    int reconnect_done;
    idle_figures idle;
} bench_report;

/* One table row; target may be NULL (a figure with no target). */
static void print_row(FILE *f, const char *label, const char *value, const char *target)
{
    if (target != NULL)
        fprintf(f, "%-46s %-28s %s\n", label, value, target);
    else
        fprintf(f, "%-46s %s\n", label, value);
}

typedef enum reconnect_field { RECONNECT_FIRST, RECONNECT_ALL, RECONNECT_PUSH } reconnect_field;

/* "1.9 median, 4.1 max" of one figure of the reconnect runs. */
static void median_max(const bench_report *r, reconnect_field which, char *buf, size_t n)
{
    double v[BENCH_RUNS_MAX], hi = -HUGE_VAL;
    int k = 0;
    for (int i = 0; i < r->reconnect_done; i++) {
        const reconnect_run *run = &r->reconnect[i];
        double x = which == RECONNECT_FIRST ? run->first_s
                   : which == RECONNECT_ALL ? run->all_s
                                            : run->push_start_s;
        if (isnan(x))
            continue; /* not known for this run */
        v[k++] = x;
        hi = x > hi ? x : hi;
    }
    if (k == 0)
        snprintf(buf, n, "n/a");
    else
        snprintf(buf, n, "%.1f median, %.1f max", median(v, k), hi);
}

static void print_worker_rows(FILE *f, const bench_config *cfg, const bench_report *r)
{
    char label[96], value[96], target[32], count[32];
    if (r->reconnect_done > 0) {
        format_count(cfg->reconnect_sales, count, sizeof(count));
        snprintf(label, sizeof(label), "reconnect: hub up -> first batch (s, n=%d)",
                 r->reconnect_done);
        median_max(r, RECONNECT_FIRST, value, sizeof(value));
        snprintf(target, sizeof(target), "<= %.0f", TARGET_RECONNECT_S_MAX);
        print_row(f, label, value, target);
        snprintf(label, sizeof(label), "reconnect: hub up -> all %s sales (s)", count);
        median_max(r, RECONNECT_ALL, value, sizeof(value));
        print_row(f, label, value, NULL);
        median_max(r, RECONNECT_PUSH, value, sizeof(value));
        print_row(f, "reconnect: hub up -> till starts pushing (s)", value, NULL);
    }
    const idle_figures *id = &r->idle;
    if (!id->done)
        return;
    format_count(cfg->idle_pending, count, sizeof(count));
    snprintf(label, sizeof(label), "idle CPU, %s pending, hub down (%%)", count);
    snprintf(value, sizeof(value), "%.2f (empty queue %.2f)", id->side[0].cpu_pct,
             id->side[1].cpu_pct);
    print_row(f, label, value, "~0");
    snprintf(label, sizeof(label), "idle wake-ups/s, %s pending (empty)", count);
    snprintf(value, sizeof(value), "%.1f (%.1f)", id->side[0].wakeups_s, id->side[1].wakeups_s);
    print_row(f, label, value, NULL);
    snprintf(label, sizeof(label), "till RSS, %s pending (MB)", count);
    snprintf(value, sizeof(value), "%.1f (peak %.1f; empty %.1f)", id->side[0].rss_mb,
             id->side[0].hwm_mb, id->side[1].rss_mb);
    snprintf(target, sizeof(target), "<= %.0f", TARGET_IDLE_RSS_MB_MAX);
    print_row(f, label, value, target);
    snprintf(value, sizeof(value), "%.1f / %.1f (empty %.1f / %.1f)", id->side[0].anon_mb,
             id->side[0].file_mb, id->side[1].anon_mb, id->side[1].file_mb);
    print_row(f, "  of which own / library pages (MB)", value, NULL);
    snprintf(label, sizeof(label), "GET /api/status, %s pending (ms)", count);
    snprintf(value, sizeof(value), "%.0f", id->status_ms);
    print_row(f, label, value, NULL);
    if (!id->drained)
        return;
    char rate[32];
    format_count(llround(id->drain_rate), rate, sizeof(rate));
    snprintf(label, sizeof(label), "drain %s through the worker (sales/s)", count);
    snprintf(value, sizeof(value), "%s (first %.1f s, all %.1f s)", rate, id->drain_first_s,
             id->drain_all_s);
    print_row(f, label, value, NULL);
    snprintf(value, sizeof(value), "%.1f (peak %.1f; own %.1f)", id->drain_rss_mb,
             id->drain_hwm_mb, id->drain_anon_mb);
    print_row(f, "till RSS after the drain (MB)", value, NULL);
}

static void print_table(FILE *f, const bench_config *cfg, const bench_report *r,
                        const char *date, const char *machine, long cores)
{
    char label[96], value[96], target[32], n_sales[32], n_catchup[32];
    format_count(cfg->sales, n_sales, sizeof(n_sales));
    format_count(cfg->catchup, n_catchup, sizeof(n_catchup));
    fprintf(f, "duka bench (%s, %ld cores, %s)\n", date, cores, machine);
    print_row(f, "metric", "value", "target");
    snprintf(label, sizeof(label), "sale commit p50 / p99 (us, n=%s)", n_sales);
    snprintf(value, sizeof(value), "%.0f / %.0f", r->sale.p50_us, r->sale.p99_us);
    print_row(f, label, value, NULL);
    snprintf(label, sizeof(label), "bare fsync'd INSERT p50 / p99 (us, n=%s)", n_sales);
    snprintf(value, sizeof(value), "%.0f / %.0f", r->bare.p50_us, r->bare.p99_us);
    print_row(f, label, value, NULL);
    snprintf(value, sizeof(value), "%.1fx", r->sale.p50_us / r->bare.p50_us);
    print_row(f, "sale p50 / bare p50", value, NULL);
    snprintf(value, sizeof(value), "%.1fx", r->sale.p99_us / r->bare.p99_us);
    snprintf(target, sizeof(target), "<= %.0fx", TARGET_P99_RATIO_MAX);
    print_row(f, "sale p99 / bare p99", value, target);
    if (r->runs_done == 0) {
        print_worker_rows(f, cfg, r);
        return;
    }
    int n = r->runs_done;
    double rate[BENCH_RUNS_MAX], sync_s[BENCH_RUNS_MAX], commit[BENCH_RUNS_MAX];
    double first[BENCH_RUNS_MAX], last[BENCH_RUNS_MAX];
    double lo = 1e300, hi = 0;
    for (int i = 0; i < n; i++) {
        rate[i] = r->runs[i].sales_per_s;
        sync_s[i] = r->runs[i].sync_s;
        commit[i] = r->runs[i].commit_s > 0 ? cfg->catchup / r->runs[i].commit_s : 0;
        first[i] = r->runs[i].first_p50_us;
        last[i] = r->runs[i].last_p50_us;
        lo = rate[i] < lo ? rate[i] : lo;
        hi = rate[i] > hi ? rate[i] : hi;
    }
    char med[32], lo_s[32], hi_s[32];
    format_count(llround(median(rate, n)), med, sizeof(med));
    format_count(llround(lo), lo_s, sizeof(lo_s));
    format_count(llround(hi), hi_s, sizeof(hi_s));
    snprintf(label, sizeof(label), "catch-up %s sales (sales/s, median of %d)", n_catchup, n);
    snprintf(value, sizeof(value), n > 1 ? "%s (%s..%s)" : "%s", med, lo_s, hi_s);
    format_count(llround(TARGET_CATCHUP_SALES_PER_S_MIN), med, sizeof(med));
    snprintf(target, sizeof(target), ">= %s", med);
    print_row(f, label, value, target);
    snprintf(value, sizeof(value), "%.2f", median(sync_s, n));
    print_row(f, "catch-up sync duration (s, median)", value, NULL);
    format_count(llround(median(commit, n)), med, sizeof(med));
    snprintf(label, sizeof(label), "offline commit of those %s (sales/s)", n_catchup);
    print_row(f, label, med, NULL);
    int window = cfg->catchup / 2 < BENCH_GROWTH_WINDOW ? cfg->catchup / 2 : BENCH_GROWTH_WINDOW;
    if (window > 0) {
        format_count(window, lo_s, sizeof(lo_s));
        snprintf(label, sizeof(label), "offline commit p50, first / last %s (us)", lo_s);
        snprintf(value, sizeof(value), "%.0f / %.0f", median(first, n), median(last, n));
        print_row(f, label, value, NULL);
    }
    snprintf(value, sizeof(value), "%s in each of %d runs", n_catchup, n);
    print_row(f, "sales at the hub (duka hub report)", value, NULL);
    print_worker_rows(f, cfg, r);
}

static int write_results(const bench_config *cfg, const bench_report *r, const char *date,
                         const char *machine, long cores)
{
    FILE *f = fopen(cfg->results_path, "w");
    if (f == NULL) {
        fprintf(stderr, "duka-bench: cannot write %s: %s\n", cfg->results_path, strerror(errno));
        return -1;
    }
    fprintf(f, "# duka bench results\n\n");
    fprintf(f, "Last `make bench` run: %s on `%s` with %ld cores (`uname -m` / `nproc`).\n",
            date, machine, cores);
    fprintf(f, "Overwritten by every run; what each figure means: [README.md](README.md).\n\n");
    fprintf(f, "```\n");
    print_table(f, cfg, r, date, machine, cores);
    fprintf(f, "```\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- main ---- */

static int usage(void)
{
    fprintf(stderr,
            "usage: duka-bench --duka PATH --dir DIR [--results FILE] [--sales N]"
            " [--catchup N] [--runs R]\n"
            "                  [--reconnect-runs R] [--reconnect-sales N] [--reconnect-idle S]\n"
            "                  [--idle-pending N] [--idle-settle S] [--idle-window S]"
            " [--no-drain] [--keep]\n"
            "  --duka     the duka binary (for hub init, device add, hub, hub report)\n"
            "  --dir      an existing empty scratch folder (what the bench writes there is removed)\n"
            "  --results  also write the table to FILE (markdown)\n"
            "  --sales    latency samples per side (default %d)\n"
            "  --catchup  sales per catch-up run (default %d)\n"
            "  --runs     catch-up runs, median reported (default %d, max %d; 0 skips)\n"
            "  --reconnect-runs   hub-back-to-a-serving-till runs (default %d, max %d; 0 skips)\n"
            "  --reconnect-sales  sales waiting on that till (default %d)\n"
            "  --reconnect-idle   seconds the till is left with the hub down (default %d)\n"
            "  --idle-pending     queue of the idle measurement (default %d; 0 skips)\n"
            "  --idle-settle      seconds after the tills start before measuring (default %d)\n"
            "  --idle-window      seconds of idle measurement (default %d)\n"
            "  --no-drain         skip draining that queue through the worker afterwards\n"
            "  --keep     leave the databases and logs in DIR for inspection\n",
            BENCH_SALES_DEFAULT, BENCH_CATCHUP_DEFAULT, BENCH_RUNS_DEFAULT, BENCH_RUNS_MAX,
            BENCH_RECONNECT_RUNS_DEFAULT, BENCH_RUNS_MAX, BENCH_RECONNECT_SALES_DEFAULT,
            BENCH_RECONNECT_IDLE_DEFAULT, BENCH_IDLE_PENDING_DEFAULT, BENCH_IDLE_SETTLE_DEFAULT,
            BENCH_IDLE_WINDOW_DEFAULT);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "scale") == 0)
        return scale_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "etims") == 0)
        return etims_main(argc - 1, argv + 1);
    bench_config cfg = {.sales = BENCH_SALES_DEFAULT,
                        .catchup = BENCH_CATCHUP_DEFAULT,
                        .runs = BENCH_RUNS_DEFAULT,
                        .reconnect_runs = BENCH_RECONNECT_RUNS_DEFAULT,
                        .reconnect_sales = BENCH_RECONNECT_SALES_DEFAULT,
                        .reconnect_idle_s = BENCH_RECONNECT_IDLE_DEFAULT,
                        .idle_pending = BENCH_IDLE_PENDING_DEFAULT,
                        .idle_settle_s = BENCH_IDLE_SETTLE_DEFAULT,
                        .idle_window_s = BENCH_IDLE_WINDOW_DEFAULT,
                        .drain = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--keep") == 0 || strcmp(a, "--no-drain") == 0) {
            if (a[2] == 'k')
                cfg.keep = true;
            else
                cfg.drain = false;
            continue;
        }
        if (v == NULL)
            return usage();
        if (strcmp(a, "--duka") == 0)
            cfg.duka_bin = v;
        else if (strcmp(a, "--dir") == 0)
            cfg.dir = v;
        else if (strcmp(a, "--results") == 0)
            cfg.results_path = v;
        else if (strcmp(a, "--sales") == 0 ? parse_count(v, 10, BENCH_COUNT_MAX, &cfg.sales)
                 : strcmp(a, "--catchup") == 0
                     ? parse_count(v, 1, BENCH_COUNT_MAX, &cfg.catchup)
                 : strcmp(a, "--runs") == 0 ? parse_count(v, 0, BENCH_RUNS_MAX, &cfg.runs)
                 : strcmp(a, "--reconnect-runs") == 0
                     ? parse_count(v, 0, BENCH_RUNS_MAX, &cfg.reconnect_runs)
                 : strcmp(a, "--reconnect-sales") == 0
                     ? parse_count(v, 1, BENCH_COUNT_MAX, &cfg.reconnect_sales)
                 : strcmp(a, "--reconnect-idle") == 0
                     ? parse_count(v, 0, BENCH_SECONDS_MAX, &cfg.reconnect_idle_s)
                 : strcmp(a, "--idle-pending") == 0
                     ? parse_count(v, 0, BENCH_COUNT_MAX, &cfg.idle_pending)
                 : strcmp(a, "--idle-settle") == 0
                     ? parse_count(v, 0, BENCH_SECONDS_MAX, &cfg.idle_settle_s)
                 : strcmp(a, "--idle-window") == 0
                     ? parse_count(v, 1, BENCH_SECONDS_MAX, &cfg.idle_window_s)
                                            : -1)
            return usage();
        i++;
    }
    if (cfg.duka_bin == NULL || cfg.dir == NULL)
        return usage();
    if (access(cfg.duka_bin, X_OK) != 0) {
        fprintf(stderr, "duka-bench: %s is not an executable duka binary\n", cfg.duka_bin);
        return 1;
    }
    /* Loopback only: libcurl (here and in the hub) must not route 127.0.0.1 via a proxy. */
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

    char date[16];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    struct utsname un;
    const char *machine = uname(&un) == 0 ? un.machine : "unknown";
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    bench_report report;
    memset(&report, 0, sizeof(report));
    int rc = 0;
    /* The tills started here run with the defaults: no DUKA_* or setting in the environment. */
    char probe_db[BENCH_PATH_MAX];
    int64_t recheck_max_ms = 0;
    if (path_join(probe_db, cfg.dir, "till.db") ||
        default_settings(probe_db, &recheck_max_ms) < 0) {
        curl_global_cleanup();
        return 1;
    }
    cfg.recheck_max_s = (double)recheck_max_ms / 1e3;
    fprintf(stderr, "duka-bench: 1/4 sale commit vs bare INSERT, %d each (interleaved)\n",
            cfg.sales);
    if (bench_commit_latency(&cfg, &report.sale, &report.bare) != 0) {
        curl_global_cleanup();
        return 1;
    }
    for (int run = 0; run < cfg.runs; run++) {
        fprintf(stderr, "duka-bench: 2/4 catch-up run %d of %d: %d offline sales, then sync\n",
                run + 1, cfg.runs, cfg.catchup);
        if (bench_catchup_once(&cfg, run, &report.runs[report.runs_done]) != 0) {
            rc = 1;
            break;
        }
        const catchup_run *c = &report.runs[report.runs_done];
        fprintf(stderr, "duka-bench:   committed in %.2f s, pushed in %.2f s (%.0f sales/s)\n",
                c->commit_s, c->sync_s, c->sales_per_s);
        report.runs_done++;
    }
    for (int run = 0; run < cfg.reconnect_runs; run++) {
        fprintf(stderr, "duka-bench: 3/4 reconnect run %d of %d: `duka till` serving, hub down, "
                "%d sales, hub back after %.1f s (re-probe cap %.1f s)\n", run + 1,
                cfg.reconnect_runs, cfg.reconnect_sales,
                cfg.reconnect_idle_s + (cfg.reconnect_runs > 1
                                            ? cfg.recheck_max_s * run / cfg.reconnect_runs
                                            : 0),
                cfg.recheck_max_s);
        reconnect_run *c = &report.reconnect[report.reconnect_done];
        if (bench_reconnect_once(&cfg, run, c) != 0) {
            rc = 1;
            break;
        }
        fprintf(stderr, "duka-bench:   hub answered %.2f s after start; then first push began "
                "%.2f s, first batch at hub %.2f s, all %.2f s\n", c->spawn_up_s,
                c->push_start_s, c->first_s, c->all_s);
        report.reconnect_done++;
    }
    if (cfg.idle_pending > 0) {
        fprintf(stderr, "duka-bench: 4/4 idle: tills with %d and 0 pending sales serving, hub "
                "down; %d s settle, %d s window%s\n", cfg.idle_pending, cfg.idle_settle_s,
                cfg.idle_window_s, cfg.drain ? "; then the hub comes back" : "");
        if (bench_idle(&cfg, &report.idle) != 0)
            rc = 1;
        else if (report.idle.drained)
            fprintf(stderr, "duka-bench:   drained: first batch %.2f s after the hub answered, "
                    "all %.2f s (%.0f sales/s)\n", report.idle.drain_first_s,
                    report.idle.drain_all_s, report.idle.drain_rate);
    }
    printf("\n");
    print_table(stdout, &cfg, &report, date, machine, cores);
    fflush(stdout);
    if (rc == 0 && cfg.results_path != NULL && write_results(&cfg, &report, date, machine, cores))
        rc = 1;
    curl_global_cleanup();
    return rc;
}
