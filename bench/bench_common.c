/*
 * bench_common.c — the helpers both parts of `duka-bench` use (see bench_common.h).
 *
 * Workload: a handful of calls per run (processes spawned, files written); nothing here is
 * on a measured path except now_us and till_sell, the sale being measured.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "bench_common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/http_client.h"
#include "store/db.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/till_db.h"

#define BENCH_CAPTURE_MAX (64u * 1024u * 1024u) /* stdout of a CLI command (hub report) */
#define BENCH_ARGS_MAX 20 /* argv of a duka command: the binary, its arguments, NULL */

volatile sig_atomic_t g_hub_pid = -1;
volatile sig_atomic_t g_till_pid[2] = {-1, -1};

/* ---- time, statistics, reporting ---- */

double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

void sleep_ms(long ms)
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

double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), compare_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

latency_summary summarize(double *samples, int n)
{
    qsort(samples, (size_t)n, sizeof(double), compare_double);
    latency_summary s = {percentile(samples, n, 0.50), percentile(samples, n, 0.99),
                         samples[n - 1]};
    return s;
}

void format_count(long long v, char *buf, size_t n)
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

int parse_count(const char *text, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

int fail(const char *what, const duka_err *err)
{
    fprintf(stderr, "duka-bench: %s: %s\n", what,
            err && err->msg[0] ? err->msg : (err ? duka_rc_message(err->rc) : "failed"));
    return -1;
}

/* ---- scratch files ---- */

int path_join(char *out, const char *dir, const char *name)
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
void remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "duka-bench: warning: could not remove %s\n", dir);
}

int make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0) {
        fprintf(stderr, "duka-bench: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the catalog, the same on hub (CSV) and till (a pulled page), and the till ---- */

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

int write_catalog_csv(const char *path)
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

int till_open_pointed(const char *path, bool create, const char *hub_url, const char *token,
                      sqlite3 **out)
{
    duka_err err = {0};
    sqlite3 *db = NULL;
    *out = NULL;
    if (duka_till_db_open(path, create, &db, &err) != DUKA_OK)
        return fail(create ? "creating the till database" : "opening the till", &err);
    if (duka_db_begin(db, &err) != DUKA_OK ||
        (create && duka_meta_set(db, DUKA_META_TERMINAL, BENCH_TERMINAL, &err) != DUKA_OK) ||
        duka_meta_set(db, DUKA_META_HUB_URL, hub_url, &err) != DUKA_OK ||
        duka_meta_set(db, DUKA_META_TOKEN, token, &err) != DUKA_OK ||
        duka_db_commit(db, &err) != DUKA_OK) {
        duka_db_rollback(db);
        duka_db_close(db);
        return fail("pointing the till at the hub", &err);
    }
    *out = db;
    return 0;
}

/* Creates a till database at path with its identity and the bench catalog. */
int till_create(const char *path, const char *hub_url, const char *token, sqlite3 **out)
{
    duka_err err = {0};
    sqlite3 *db = NULL;
    json_t *changes = NULL;
    int applied = 0;
    *out = NULL;
    if (till_open_pointed(path, true, hub_url, token, &db))
        return -1;
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
int till_sell(sqlite3 *db, int i, duka_sale *sale)
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

/* Commits n sales on a fresh till with synchronous=OFF on this connection only: the same
 * transactions as a cashier's, just not each fsync'd (a crash would lose the file; we only
 * need the queue). Then back to FULL, and a checkpoint, so the till starts from the state
 * a till that has run a while is in. */
int fill_queue(sqlite3 *till, int n, double *seconds)
{
    duka_sale *sale = duka_sale_new();
    duka_err err = {0};
    int result = -1;
    double t0 = now_us();
    if (sale == NULL || duka_db_exec(till, "PRAGMA synchronous=OFF", &err) != DUKA_OK)
        goto out;
    for (int i = 0; i < n; i++)
        if (till_sell(till, i, sale))
            goto out;
    if (duka_db_exec(till, "PRAGMA synchronous=FULL; PRAGMA wal_checkpoint(TRUNCATE);", &err) !=
        DUKA_OK)
        goto out;
    *seconds = (now_us() - t0) / 1e6;
    result = 0;
out:
    if (result != 0 && err.rc != DUKA_OK)
        fail("filling the queue", &err);
    duka_sale_free(sale);
    return result;
}

/* ---- child processes: the duka CLI ---- */

/* Reads fd to its end into a NUL-terminated malloc'd string; NULL when out of memory or
 * longer than BENCH_CAPTURE_MAX (the rest is still drained so the writer never blocks). */
char *read_all(int fd)
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

/* Runs argv to completion (stdout into *out when out is not NULL; stderr passes through),
 * with its resource usage (peak RSS) in *ru. Returns its exit status, -1 when it could not
 * run, 128+signal when killed. */
int run_prog(const char *const *argv, char **out, struct rusage *ru)
{
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
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    char *buf = read_all(fds[0]);
    close(fds[0]);
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof(usage));
    while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    if (ru != NULL)
        *ru = usage;
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* argv = {the duka binary, args…, NULL}; the bench's commands are short (at most
 * BENCH_ARGS_MAX - 2 arguments are kept). */
static void duka_argv(const bench_config *cfg, const char *const *args, const char **argv)
{
    int argc = 0;
    argv[argc++] = cfg->duka_bin;
    for (int i = 0; args[i] != NULL && argc < BENCH_ARGS_MAX - 1; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
}

/* `duka ARGS… --json` as a timed child: its JSON reply, wall time and peak RSS (MB). */
json_t *run_duka_json_timed(const bench_config *cfg, const char *const *args, double *secs,
                            double *peak_mb)
{
    const char *argv[BENCH_ARGS_MAX];
    duka_argv(cfg, args, argv);
    char *out = NULL;
    struct rusage ru;
    double t0 = now_us();
    int status = run_prog(argv, &out, &ru);
    if (secs != NULL)
        *secs = (now_us() - t0) / 1e6;
    if (peak_mb != NULL)
        *peak_mb = (double)ru.ru_maxrss / 1024.0; /* KB on Linux */
    json_t *js = (status == 0 && out != NULL) ? json_loads(out, 0, NULL) : NULL;
    if (js == NULL)
        fprintf(stderr, "duka-bench: `duka %s %s` failed (exit %d)\n", args[0],
                args[1] ? args[1] : "", status);
    free(out);
    return js;
}

json_t *run_duka_json(const bench_config *cfg, const char *const *args)
{
    return run_duka_json_timed(cfg, args, NULL, NULL);
}

/* A port on 127.0.0.1 that was free a moment ago (the hub may lose a race for it: retried). */
int free_port(void)
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

/* Starts `duka ARGS…` in the background: stdin from /dev/null, stdout and stderr appended to
 * log_path. It never outlives the bench (PR_SET_PDEATHSIG). Returns its pid, -1 on failure. */
pid_t spawn_duka(const bench_config *cfg, const char *const *args, const char *log_path)
{
    const char *argv[BENCH_ARGS_MAX];
    duka_argv(cfg, args, argv);
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
        /* execv takes char *const[]; the strings are not modified. */
        execv(cfg->duka_bin, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    return pid;
}

/* True while the child in *slot runs; reaps it (and clears the slot) when it has exited. */
bool child_alive(volatile sig_atomic_t *slot, const char *what)
{
    pid_t pid = *slot;
    int status = 0;
    if (pid <= 0)
        return false;
    if (waitpid(pid, &status, WNOHANG) != pid)
        return true;
    *slot = -1;
    if (WIFSIGNALED(status))
        fprintf(stderr, "duka-bench: %s %d died of signal %d\n", what, (int)pid, WTERMSIG(status));
    else
        fprintf(stderr, "duka-bench: %s %d exited with status %d\n", what, (int)pid,
                WEXITSTATUS(status));
    return false;
}

/* SIGTERM the child in *slot and reap it (SIGKILL after a grace period). Returns 0 when it
 * stopped cleanly (exit 0 after SIGTERM), -1 otherwise (a warning says why). */
int child_stop(volatile sig_atomic_t *slot, const char *what)
{
    pid_t pid = *slot;
    if (pid <= 0)
        return 0;
    kill(pid, SIGTERM);
    int status = 0;
    for (int waited = 0; waited < BENCH_STOP_WAIT_MS; waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            goto reaped;
        sleep_ms(20);
    }
    fprintf(stderr, "duka-bench: %s %d ignored SIGTERM for %d ms; killing it\n", what, (int)pid,
            BENCH_STOP_WAIT_MS);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    *slot = -1;
    return -1;
reaped:
    *slot = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        fprintf(stderr, "duka-bench: warning: %s exited with status %d after SIGTERM\n", what,
                WEXITSTATUS(status));
        return -1;
    }
    return 0;
}

/* GET url once: the HTTP status, 0 when nothing answered. */
long http_get_status(const char *url, long timeout_ms)
{
    duka_http_reply reply = {0};
    duka_err err = {0};
    duka_rc rc = duka_http_request("GET", url, NULL, NULL, 0, timeout_ms, &reply, &err);
    long status = rc == DUKA_OK ? reply.status : 0;
    duka_http_reply_free(&reply);
    return status;
}

/* Polls GET url every interval_ms until it answers 200. Returns the monotonic time (us) of
 * that first 200 answer, or -1 when the child in *slot died or timeout_ms passed. */
double wait_http_200(const char *url, volatile sig_atomic_t *slot, const char *what,
                            long interval_ms, long timeout_ms)
{
    double deadline = now_us() + (double)timeout_ms * 1e3;
    while (now_us() < deadline) {
        if (!child_alive(slot, what))
            return -1;
        if (http_get_status(url, 1000) == 200)
            return now_us();
        sleep_ms(interval_ms);
    }
    return -1;
}

void on_signal(int sig)
{
    pid_t pids[3] = {g_hub_pid, g_till_pid[0], g_till_pid[1]};
    for (int i = 0; i < 3; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- the hub ---- */

int hub_prepare(const bench_config *cfg, const char *init_db, const char *db, const char *csv,
                int products, char *business, size_t business_len, char *token,
                size_t token_len, double *import_s)
{
    int result = -1;
    const char *init[] = {"hub", "init", "--db", init_db, "--business", "Bench Duka", "--json",
                          NULL};
    json_t *js = run_duka_json(cfg, init);
    const char *id = json_string_value(json_object_get(js, "business_id"));
    if (id == NULL)
        goto out;
    snprintf(business, business_len, "%s", id);
    json_decref(js);
    const char *import[] = {"product", "import", "--db", db, "--business", business, "--json",
                            csv, NULL};
    js = run_duka_json_timed(cfg, import, import_s, NULL);
    if (json_integer_value(json_object_get(js, "imported")) != products) {
        fprintf(stderr, "duka-bench: product import did not import %d products\n", products);
        goto out;
    }
    json_decref(js);
    const char *add[] = {"device", "add", "--db", db, "--business", business, "--terminal",
                         BENCH_TERMINAL, "--json", NULL};
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

/* Starts `duka hub --db db --listen 127.0.0.1:port` (log in log_path) without waiting. */
int hub_spawn(const bench_config *cfg, const char *db, const char *log_path, int port)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    const char *args[] = {"hub", "--db", db, "--listen", listen, NULL};
    pid_t pid = spawn_duka(cfg, args, log_path);
    if (pid < 0)
        return -1;
    g_hub_pid = pid;
    return 0;
}

/* Starts the hub and waits for GET /v1/health. Returns 0 when it answers, -1 when the process
 * died or never answered. */
int hub_start_once(const bench_config *cfg, const char *db, const char *log_path,
                          int port)
{
    char health[96];
    snprintf(health, sizeof(health), "http://127.0.0.1:%d/v1/health", port);
    if (hub_spawn(cfg, db, log_path, port) != 0)
        return -1;
    if (wait_http_200(health, &g_hub_pid, "hub", 20, BENCH_HEALTH_WAIT_MS) < 0) {
        hub_stop();
        return -1;
    }
    return 0;
}

int hub_start(const bench_config *cfg, const char *db, const char *log_path,
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

void hub_stop(void)
{
    child_stop(&g_hub_pid, "hub");
}

/* `duka hub report --json`: the number of sales the hub holds, and it must hold exactly
 * `expected`, each with a distinct receipt number. -1 on any failure. */
int64_t hub_report_sales(const bench_config *cfg, const char *hub_db,
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

/* ---- /proc ---- */

/* Reads "Name:   value" lines of a /proc status file. */
static long status_field(const char *text, const char *field)
{
    const char *p = strstr(text, field);
    return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

static int read_text(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t len = read(fd, buf, n - 1);
    close(fd);
    if (len < 0)
        return -1;
    buf[len] = '\0';
    return 0;
}

int proc_read(pid_t pid, proc_usage *u)
{
    char path[64], buf[4096];
    memset(u, 0, sizeof(*u));
    /* utime and stime are fields 14 and 15 of /proc/PID/stat, counted after the ')' that
     * ends the command name (field 2): the 12th and 13th there. Both cover all threads. */
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    const char *p = read_text(path, buf, sizeof(buf)) == 0 ? strrchr(buf, ')') : NULL;
    if (p == NULL)
        return -1;
    unsigned long long ticks[2] = {0, 0};
    int field = 2;
    for (p++; *p != '\0' && field < 15;) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        if (++field >= 14)
            ticks[field - 14] = strtoull(p, NULL, 10);
        while (*p != ' ' && *p != '\0')
            p++;
    }
    if (field < 15)
        return -1;
    u->cpu_s = (double)(ticks[0] + ticks[1]) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (read_text(path, buf, sizeof(buf)) != 0)
        return -1;
    u->rss_kb = status_field(buf, "VmRSS:");
    u->hwm_kb = status_field(buf, "VmHWM:");
    u->anon_kb = status_field(buf, "RssAnon:");
    u->file_kb = status_field(buf, "RssFile:");
    /* Context switches are per thread: sum /proc/PID/task/TID/status. */
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char tpath[BENCH_PATH_MAX];
        if (e->d_name[0] == '.')
            continue;
        snprintf(tpath, sizeof(tpath), "/proc/%d/task/%s/status", (int)pid, e->d_name);
        if (read_text(tpath, buf, sizeof(buf)) != 0)
            continue;
        long v = status_field(buf, "\nvoluntary_ctxt_switches:");
        long nv = status_field(buf, "nonvoluntary_ctxt_switches:");
        u->switches += (v > 0 ? v : 0) + (nv > 0 ? nv : 0);
        u->threads++;
    }
    closedir(d);
    return 0;
}
