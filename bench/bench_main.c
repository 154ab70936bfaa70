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
 *
 * Workload: a shared, noisy 2-core box; so only medians, percentiles and ratios against the
 * in-run baseline are reported. Nothing here passes or fails on time: the exit code is 1
 * only when something is WRONG (an error, a lost or duplicated sale), never when it is slow.
 *
 * Every process started here is a child of this one, listens on 127.0.0.1 only, gets
 * SIGTERM at the end of its run (and if this process dies: PR_SET_PDEATHSIG), and every
 * file lives under --dir, which is removed at the end.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/error.h"
#include "common/limits.h"
#include "net/http_client.h"
#include "store/db.h"
#include "sync/sync_client.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/till_db.h"

/* ---- limits of the bench itself ---- */

#define BENCH_SALES_DEFAULT 2000      /* latency samples per side */
#define BENCH_WARMUP 100              /* commits per side before sampling starts */
#define BENCH_CATCHUP_DEFAULT 10000   /* sales pushed in one catch-up */
#define BENCH_RUNS_DEFAULT 3          /* catch-up repetitions (median reported) */
#define BENCH_RUNS_MAX 9
#define BENCH_COUNT_MAX 1000000
#define BENCH_PRODUCTS 20             /* catalog size on hub and till */
#define BENCH_TERMINAL "T01"
#define BENCH_PATH_MAX 1024
#define BENCH_CAPTURE_MAX (64u * 1024u * 1024u) /* stdout of a CLI command (hub report) */
#define BENCH_HEALTH_WAIT_MS 15000    /* hub start-up, generous for a loaded box */
#define BENCH_STOP_WAIT_MS 10000      /* SIGTERM grace before SIGKILL */
#define BENCH_HUB_START_TRIES 3       /* a free port can be taken between probe and bind */
#define BENCH_BARE_PAYLOAD_BYTES 600  /* about the size of a 3-line sale's JSON */
#define BENCH_GROWTH_WINDOW 1000      /* first/last sales of a catch-up compared for slowdown */

/* Targets (printed beside the figures; never enforced). */
#define TARGET_P99_RATIO_MAX 3.0
#define TARGET_CATCHUP_SALES_PER_S_MIN 5000.0

/* The hub child, for the signal handler and for cleanup. */
static volatile sig_atomic_t g_hub_pid = -1;

typedef struct bench_config {
    const char *duka_bin;
    const char *dir;
    const char *results_path;
    int sales;
    int catchup;
    int runs;
    bool keep; /* leave the scratch files (hub.log, till.db with its sync_log) to inspect */
} bench_config;

typedef struct latency_summary {
    double p50_us;
    double p99_us;
    double max_us;
} latency_summary;

typedef struct catchup_run {
    double commit_s;  /* committing the sales offline */
    double sync_s;    /* duka_sync_run pushing them all */
    double sales_per_s;
    double first_p50_us; /* commit p50 of the first BENCH_GROWTH_WINDOW sales (empty outbox) */
    double last_p50_us;  /* … and of the last ones (outbox holding N - window pending) */
    int64_t hub_sales;
} catchup_run;

/* ---- small helpers ---- */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array (q in 0..1). */
static double percentile(const double *sorted, int n, double q)
{
    int rank = (int)ceil(q * n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static latency_summary summarize(double *samples, int n)
{
    qsort(samples, (size_t)n, sizeof(double), compare_double);
    latency_summary s = {percentile(samples, n, 0.50), percentile(samples, n, 0.99),
                         samples[n - 1]};
    return s;
}

static int fail(const char *what, const duka_err *err)
{
    fprintf(stderr, "duka-bench: %s: %s\n", what,
            err && err->msg[0] ? err->msg : (err ? duka_rc_message(err->rc) : "failed"));
    return -1;
}

static int path_join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, BENCH_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= BENCH_PATH_MAX) {
        fprintf(stderr, "duka-bench: path too long: %s/%s\n", dir, name);
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf dir (best effort; run.sh removes the parent too). */
static void remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "duka-bench: warning: could not remove %s\n", dir);
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0) {
        fprintf(stderr, "duka-bench: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the catalog, the same on hub (CSV) and till (a pulled page) ---- */

static int64_t product_price_cents(int i)
{
    return 5000 + (int64_t)i * 1725; /* KES 50.00, 67.25, 84.50 … */
}

static char product_band(int i)
{
    static const char bands[] = {'B', 'B', 'A', 'E', 'C'};
    return bands[i % 5];
}

static void product_sku(int i, char *buf, size_t n)
{
    snprintf(buf, n, "BENCH-%03d", i + 1);
}

static json_t *catalog_changes(void)
{
    json_t *arr = json_array();
    for (int i = 0; arr != NULL && i < BENCH_PRODUCTS; i++) {
        char sku[32], name[64], band[2] = {product_band(i), '\0'};
        product_sku(i, sku, sizeof(sku));
        snprintf(name, sizeof(name), "Bench item %d", i + 1);
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:b}", "seq",
                                             (json_int_t)(i + 1), "sku", sku, "name", name,
                                             "price", (json_int_t)product_price_cents(i),
                                             "tax", band, "category", "bench", "deleted", 0));
    }
    return arr;
}

static int write_catalog_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "duka-bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "sku,name,price,tax,stock,category\n");
    for (int i = 0; i < BENCH_PRODUCTS; i++) {
        char sku[32];
        product_sku(i, sku, sizeof(sku));
        int64_t c = product_price_cents(i);
        fprintf(f, "%s,Bench item %d,%lld.%02lld,%c,1000000,bench\n", sku, i + 1,
                (long long)(c / 100), (long long)(c % 100), product_band(i));
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- the till ---- */

/* Creates a till database at path with its identity and the bench catalog. */
static int till_create(const char *path, const char *hub_url, const char *token, sqlite3 **out)
{
    duka_err err = {0};
    sqlite3 *db = NULL;
    json_t *changes = NULL;
    int applied = 0;
    *out = NULL;
    if (duka_till_db_open(path, true, &db, &err) != DUKA_OK)
        return fail("creating the till database", &err);
    if (duka_db_begin(db, &err) != DUKA_OK ||
        duka_meta_set(db, DUKA_META_TERMINAL, BENCH_TERMINAL, &err) != DUKA_OK ||
        duka_meta_set(db, DUKA_META_HUB_URL, hub_url, &err) != DUKA_OK ||
        duka_meta_set(db, DUKA_META_TOKEN, token, &err) != DUKA_OK ||
        duka_db_commit(db, &err) != DUKA_OK) {
        duka_db_rollback(db);
        goto fail;
    }
    changes = catalog_changes();
    /* Cursor 0: the first pull after the push re-reads the hub's (identical) catalog. */
    if (changes == NULL || duka_catalog_apply_page(db, changes, 0, &applied, &err) != DUKA_OK ||
        applied != BENCH_PRODUCTS) {
        duka_err_set(&err, DUKA_INTERNAL, "catalog applied %d of %d products", applied,
                     BENCH_PRODUCTS);
        goto fail;
    }
    json_decref(changes);
    *out = db;
    return 0;
fail:
    json_decref(changes);
    duka_db_close(db);
    return fail("initialising the till", &err);
}

/* One 3-line cash sale (items rotate through the catalog). */
static int till_sell(sqlite3 *db, int i, duka_sale *sale)
{
    static const int64_t qty_milli[3] = {1000, 2000, 500};
    duka_checkout_item items[3];
    duka_checkout_payment pay = {.method = "cash", .reference = ""};
    char command_id[DUKA_UUID_STR_LEN + 1];
    duka_err err = {0};
    for (int k = 0; k < 3; k++) {
        memset(&items[k], 0, sizeof(items[k]));
        product_sku((i + k * 7) % BENCH_PRODUCTS, items[k].sku, sizeof(items[k].sku));
        items[k].qty_milli = qty_milli[k];
    }
    if (duka_checkout_commit(db, NULL, items, 3, &pay, sale, command_id, &err) != DUKA_OK)
        return fail("duka_checkout_commit", &err);
    return 0;
}

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

/* ---- child processes: the duka CLI and the hub ---- */

/* Reads fd to its end into a NUL-terminated malloc'd string; NULL when out of memory or
 * longer than BENCH_CAPTURE_MAX (the rest is still drained so the writer never blocks). */
static char *read_all(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    bool overflow = buf == NULL;
    for (;;) {
        if (!overflow && len + 1 == cap) {
            char *bigger = cap < BENCH_CAPTURE_MAX ? realloc(buf, cap * 2) : NULL;
            if (bigger == NULL)
                overflow = true;
            else {
                buf = bigger;
                cap *= 2;
            }
        }
        char sink[4096];
        ssize_t n = overflow ? read(fd, sink, sizeof(sink)) : read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!overflow)
            len += (size_t)n;
    }
    if (overflow) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* Runs `duka ARGS…` to completion, its stdout captured into *out (malloc'd, NUL-ended) when
 * out is not NULL; stderr passes through. Returns the exit status, -1 on a spawn failure. */
static int run_duka(const bench_config *cfg, const char *const *args, char **out)
{
    const char *argv[16];
    int argc = 0;
    argv[argc++] = cfg->duka_bin;
    for (int i = 0; args[i] != NULL && argc < 15; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        /* execv takes char *const[]; the strings are not modified. */
        execv(cfg->duka_bin, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    char *buf = read_all(fds[0]);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Runs a `--json` duka command and returns its one JSON object (NULL on any failure). */
static json_t *run_duka_json(const bench_config *cfg, const char *const *args)
{
    char *out = NULL;
    int status = run_duka(cfg, args, &out);
    json_t *js = (status == 0 && out != NULL) ? json_loads(out, 0, NULL) : NULL;
    if (js == NULL)
        fprintf(stderr, "duka-bench: `duka %s %s` failed (exit %d)\n", args[0],
                args[1] ? args[1] : "", status);
    free(out);
    return js;
}

/* A port on 127.0.0.1 that was free a moment ago (the hub may lose a race for it: retried). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* SIGTERM the hub and reap it (SIGKILL after a grace period). */
static void hub_stop(void)
{
    pid_t pid = g_hub_pid;
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    int status = 0;
    for (int waited = 0; waited < BENCH_STOP_WAIT_MS; waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            goto reaped;
        sleep_ms(20);
    }
    fprintf(stderr, "duka-bench: hub %d ignored SIGTERM for %d ms; killing it\n", (int)pid,
            BENCH_STOP_WAIT_MS);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
reaped:
    g_hub_pid = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fprintf(stderr, "duka-bench: warning: hub exited with status %d after SIGTERM\n",
                WEXITSTATUS(status));
}

/* Starts `duka hub --db db --listen 127.0.0.1:port` (log in log_path) and waits for
 * GET /v1/health. Returns 0 when it answers, -1 when the process died or never answered. */
static int hub_start_once(const bench_config *cfg, const char *db, const char *log_path,
                          int port)
{
    char listen[64], health[96];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(health, sizeof(health), "http://127.0.0.1:%d/v1/health", port);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Never outlive the bench, whatever kills it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDONLY);
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        if (log >= 0) {
            dup2(log, STDOUT_FILENO);
            dup2(log, STDERR_FILENO);
        }
        execl(cfg->duka_bin, cfg->duka_bin, "hub", "--db", db, "--listen", listen, (char *)NULL);
        _exit(127);
    }
    g_hub_pid = pid;
    for (int waited = 0; waited < BENCH_HEALTH_WAIT_MS; waited += 20) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            g_hub_pid = -1;
            return -1;
        }
        duka_http_reply reply = {0};
        duka_err err = {0};
        duka_rc rc = duka_http_request("GET", health, NULL, NULL, 0, 1000, &reply, &err);
        long http_status = reply.status;
        duka_http_reply_free(&reply);
        if (rc == DUKA_OK && http_status == 200)
            return 0;
        sleep_ms(20);
    }
    hub_stop();
    return -1;
}

static int hub_start(const bench_config *cfg, const char *db, const char *log_path,
                     int *port_out)
{
    for (int attempt = 0; attempt < BENCH_HUB_START_TRIES; attempt++) {
        int port = free_port();
        if (port > 0 && hub_start_once(cfg, db, log_path, port) == 0) {
            *port_out = port;
            return 0;
        }
    }
    fprintf(stderr, "duka-bench: the hub did not start (see %s)\n", log_path);
    return -1;
}

/* ---- 2. catch-up: N offline sales, then a hub, then one sync ---- */

/* hub init + product import + device add. */
static int hub_prepare(const bench_config *cfg, const char *hub_db, const char *csv,
                       char *business, size_t business_len, char *token, size_t token_len)
{
    int result = -1;
    const char *init[] = {"hub", "init", "--db", hub_db, "--business", "Bench Duka", "--json",
                          NULL};
    json_t *js = run_duka_json(cfg, init);
    const char *id = json_string_value(json_object_get(js, "business_id"));
    if (id == NULL)
        goto out;
    snprintf(business, business_len, "%s", id);
    json_decref(js);
    const char *import[] = {"product", "import", "--db", hub_db, "--business", business,
                            "--json", csv, NULL};
    js = run_duka_json(cfg, import);
    if (json_integer_value(json_object_get(js, "imported")) != BENCH_PRODUCTS) {
        fprintf(stderr, "duka-bench: product import did not import %d products\n",
                BENCH_PRODUCTS);
        goto out;
    }
    json_decref(js);
    const char *add[] = {"device", "add", "--db", hub_db, "--business", business,
                         "--terminal", BENCH_TERMINAL, "--json", NULL};
    js = run_duka_json(cfg, add);
    const char *tok = json_string_value(json_object_get(js, "token"));
    if (tok == NULL || strlen(tok) >= token_len)
        goto out;
    snprintf(token, token_len, "%s", tok);
    result = 0;
out:
    json_decref(js);
    return result;
}

/* `duka hub report --json`: the number of sales the hub holds, and it must hold exactly
 * `expected`, each with a distinct receipt number. -1 on any failure. */
static int64_t hub_report_sales(const bench_config *cfg, const char *hub_db,
                                const char *business, int64_t expected)
{
    const char *report[] = {"hub", "report", "--db", hub_db, "--business", business, "--json",
                            NULL};
    json_t *js = run_duka_json(cfg, report);
    const json_t *sales = json_object_get(js, "sales");
    const json_t *receipts = json_object_get(js, "receipts");
    int64_t n = json_is_integer(sales) ? (int64_t)json_integer_value(sales) : -1;
    if (n != expected)
        fprintf(stderr, "duka-bench: hub report shows %lld sales, expected %lld\n",
                (long long)n, (long long)expected);
    else if (json_is_array(receipts) && (int64_t)json_array_size(receipts) != expected)
        fprintf(stderr, "duka-bench: hub report lists %zu receipts for %lld sales\n",
                json_array_size(receipts), (long long)n);
    json_decref(js);
    return n;
}

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
        hub_prepare(cfg, hub_db, csv, business, sizeof(business), token, sizeof(token)))
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

/* ---- the report ---- */

static void format_count(long long v, char *buf, size_t n)
{
    /* 10000 -> "10,000" */
    char digits[32];
    snprintf(digits, sizeof(digits), "%lld", v < 0 ? -v : v);
    size_t len = strlen(digits), o = 0;
    if (v < 0 && o + 1 < n)
        buf[o++] = '-';
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), compare_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct bench_report {
    latency_summary sale, bare;
    catchup_run runs[BENCH_RUNS_MAX];
    int runs_done;
} bench_report;

/* One table row; target may be NULL (a figure with no target). */
static void print_row(FILE *f, const char *label, const char *value, const char *target)
{
    if (target != NULL)
        fprintf(f, "%-46s %-22s %s\n", label, value, target);
    else
        fprintf(f, "%-46s %s\n", label, value);
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
    if (r->runs_done == 0)
        return;
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

static void on_signal(int sig)
{
    pid_t pid = g_hub_pid;
    if (pid > 0)
        kill(pid, SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int parse_count(const char *text, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: duka-bench --duka PATH --dir DIR [--results FILE] [--sales N]"
            " [--catchup N] [--runs R] [--keep]\n"
            "  --duka     the duka binary (for hub init, device add, hub, hub report)\n"
            "  --dir      an existing empty scratch folder (what the bench writes there is removed)\n"
            "  --results  also write the table to FILE (markdown)\n"
            "  --sales    latency samples per side (default %d)\n"
            "  --catchup  sales per catch-up run (default %d)\n"
            "  --runs     catch-up runs, median reported (default %d, max %d; 0 skips)\n"
            "  --keep     leave the databases and hub.log in DIR for inspection\n",
            BENCH_SALES_DEFAULT, BENCH_CATCHUP_DEFAULT, BENCH_RUNS_DEFAULT, BENCH_RUNS_MAX);
    return 2;
}

int main(int argc, char **argv)
{
    bench_config cfg = {.sales = BENCH_SALES_DEFAULT,
                        .catchup = BENCH_CATCHUP_DEFAULT,
                        .runs = BENCH_RUNS_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--keep") == 0) {
            cfg.keep = true;
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
    fprintf(stderr, "duka-bench: 1/2 sale commit vs bare INSERT, %d each (interleaved)\n",
            cfg.sales);
    if (bench_commit_latency(&cfg, &report.sale, &report.bare) != 0) {
        curl_global_cleanup();
        return 1;
    }
    for (int run = 0; run < cfg.runs; run++) {
        fprintf(stderr, "duka-bench: 2/2 catch-up run %d of %d: %d offline sales, then sync\n",
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
    printf("\n");
    print_table(stdout, &cfg, &report, date, machine, cores);
    fflush(stdout);
    if (rc == 0 && cfg.results_path != NULL && write_results(&cfg, &report, date, machine, cores))
        rc = 1;
    curl_global_cleanup();
    return rc;
}
