/*
 * bench_common.h — what both parts of `duka-bench` use (bench_main.c, the first table, and
 * bench_scale.c, `duka-bench scale`): timing and medians, scratch paths, the 20-product
 * catalog and a till that sells from it, child processes (the duka CLI, a real `duka hub`
 * started on a free port and stopped), and /proc figures of a process.
 *
 * The bench is one program, not a library: these helpers keep the short names both files
 * read with (now_us, path_join, hub_start …) instead of a duka_ prefix. Nothing in dukacore
 * has those names; the link would fail if it did.
 *
 * Ownership: strings returned through `char **out` and JSON returned by run_duka_json* belong
 * to the caller (free / json_decref). Every child started here never outlives the bench
 * (PR_SET_PDEATHSIG) and on_signal stops the hub and tills in the slots below.
 */
#ifndef DUKA_BENCH_COMMON_H
#define DUKA_BENCH_COMMON_H

#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "common/error.h"
#include "protocol/sale.h"

#define BENCH_COUNT_MAX 1000000
#define BENCH_PRODUCTS 20             /* catalog size on hub and till */
#define BENCH_TERMINAL "T01"
#define BENCH_PATH_MAX 1024
#define BENCH_HEALTH_WAIT_MS 15000    /* hub start-up, generous for a loaded box */
#define BENCH_STOP_WAIT_MS 10000      /* SIGTERM grace before SIGKILL */
#define BENCH_HUB_START_TRIES 3       /* a free port can be taken between probe and bind */

/* What a run of duka-bench was asked for. `duka-bench scale` uses duka_bin, dir,
 * results_path and keep (its own knobs are in bench_scale.c); the rest is the first table's. */
typedef struct bench_config {
    const char *duka_bin;
    const char *dir;
    const char *results_path;
    int sales;
    int catchup;
    int runs;
    int reconnect_runs;     /* 0 skips the reconnect figures */
    int reconnect_sales;
    int reconnect_idle_s;
    double recheck_max_s;   /* the till's offline re-probe cap, from its (default) settings */
    int idle_pending;       /* 0 skips the idle figures */
    int idle_settle_s;
    int idle_window_s;
    bool drain;             /* after the idle window, start the hub and time the drain */
    bool keep; /* leave the scratch files (hub.log, till.db with its sync_log) to inspect */
} bench_config;

typedef struct latency_summary {
    double p50_us;
    double p99_us;
    double max_us;
} latency_summary;

/* What /proc says about one process: CPU time and context switches of all its threads,
 * resident memory now and at its peak, and what of it is the process's own (anonymous:
 * heap, stacks, copied-on-write pages) rather than pages of mapped files (the executable and
 * shared libraries, shared with every other process using them). */
typedef struct proc_usage {
    double cpu_s;
    long long switches;
    long rss_kb, hwm_kb, anon_kb, file_kb;
    int threads;
} proc_usage;

/* The hub and till children, for the signal handler and for cleanup (-1: none). */
extern volatile sig_atomic_t g_hub_pid;
extern volatile sig_atomic_t g_till_pid[2];

/* ---- time, statistics, reporting ---- */

double now_us(void); /* monotonic */
void sleep_ms(long ms);
/* Median of v[0..n) (sorts v). */
double median(double *v, int n);
/* p50, p99 and max of samples[0..n) (sorts samples; any unit in, the same unit out). */
latency_summary summarize(double *samples, int n);
/* 10000 -> "10,000". */
void format_count(long long v, char *buf, size_t n);
/* Parses a decimal integer in min..max into *out: 0, or -1 when it is not one. */
int parse_count(const char *text, int min, int max, int *out);
/* Prints "duka-bench: what: why" (err's message) and returns -1. */
int fail(const char *what, const duka_err *err);

/* ---- scratch files ---- */

/* out = dir/name (BENCH_PATH_MAX bytes); -1 when too long (said on stderr). */
int path_join(char *out, const char *dir, const char *name);
/* rm -rf dir (best effort; run.sh removes the parent too). */
void remove_tree(const char *dir);
int make_dir(const char *path);

/* ---- the catalog and the till ---- */

/* The bench's BENCH_PRODUCTS products as a CSV for `duka product import`. */
int write_catalog_csv(const char *path);
/* Opens the till database at path and points it at a hub (meta hub_url and token), in one
 * transaction; create: a new one, with terminal BENCH_TERMINAL and no catalog. *out: the
 * caller closes it. */
int till_open_pointed(const char *path, bool create, const char *hub_url, const char *token,
                      sqlite3 **out);
/* The same with the bench catalog applied, as a till that has pulled it. */
int till_create(const char *path, const char *hub_url, const char *token, sqlite3 **out);
/* One 3-line cash sale (items rotate through the catalog), the sale in *sale. */
int till_sell(sqlite3 *db, int i, duka_sale *sale);
/* Commits n sales with synchronous=OFF on this connection only, then FULL again and a
 * checkpoint; the time taken in *seconds. */
int fill_queue(sqlite3 *till, int n, double *seconds);

/* ---- child processes ---- */

/* Reads fd to its end into a NUL-terminated malloc'd string; NULL when out of memory or
 * longer than the bench captures (the rest is still drained so the writer never blocks). */
char *read_all(int fd);
/* Runs argv to completion (stdout into *out when out is not NULL; stderr passes through),
 * its resource usage (peak RSS) in *ru when ru is not NULL. Returns its exit status, -1 when
 * it could not run, 128+signal when killed. */
int run_prog(const char *const *argv, char **out, struct rusage *ru);
/* `duka ARGS…` (a --json command) and its one JSON object; NULL on any failure (said). */
json_t *run_duka_json(const bench_config *cfg, const char *const *args);
/* The same, timed from fork to exit (*secs) with the child's peak RSS in MB (*peak_mb);
 * either may be NULL. */
json_t *run_duka_json_timed(const bench_config *cfg, const char *const *args, double *secs,
                            double *peak_mb);
/* A port on 127.0.0.1 that was free a moment ago (-1 when none). */
int free_port(void);
/* Starts `duka ARGS…` in the background, stdout and stderr appended to log_path. */
pid_t spawn_duka(const bench_config *cfg, const char *const *args, const char *log_path);
/* True while the child in *slot runs; reaps it (and clears the slot) when it has exited. */
bool child_alive(volatile sig_atomic_t *slot, const char *what);
/* SIGTERM the child in *slot and reap it (SIGKILL after BENCH_STOP_WAIT_MS); 0 when it
 * exited 0. */
int child_stop(volatile sig_atomic_t *slot, const char *what);
/* GET url once: the HTTP status, 0 when nothing answered. */
long http_get_status(const char *url, long timeout_ms);
/* Polls GET url every interval_ms until 200: the monotonic time (us) of that answer, or -1
 * when the child in *slot died or timeout_ms passed. */
double wait_http_200(const char *url, volatile sig_atomic_t *slot, const char *what,
                     long interval_ms, long timeout_ms);
/* SIGINT/SIGTERM/SIGHUP handler: stops the children, then dies of the signal. */
void on_signal(int sig);

/* ---- the hub ---- */

/* `duka hub init` (on init_db: for PostgreSQL the owner's URL, for SQLite the file),
 * `duka product import` of csv (must import `products`; its time in *import_s when not
 * NULL) and `duka device add` for BENCH_TERMINAL on db. */
int hub_prepare(const bench_config *cfg, const char *init_db, const char *db, const char *csv,
                int products, char *business, size_t business_len, char *token,
                size_t token_len, double *import_s);
/* Starts `duka hub --db db --listen 127.0.0.1:port` into g_hub_pid without waiting. */
int hub_spawn(const bench_config *cfg, const char *db, const char *log_path, int port);
/* Starts the hub on port and waits for GET /v1/health: 0 when it answers. */
int hub_start_once(const bench_config *cfg, const char *db, const char *log_path, int port);
/* The same on a free port (tried BENCH_HUB_START_TRIES times), the port in *port_out. */
int hub_start(const bench_config *cfg, const char *db, const char *log_path, int *port_out);
void hub_stop(void);
/* `duka hub report --json`: the sales the hub holds, which must be exactly `expected` with
 * as many receipts (said otherwise); -1 on any failure. */
int64_t hub_report_sales(const bench_config *cfg, const char *hub_db, const char *business,
                         int64_t expected);

/* ---- /proc ---- */

int proc_read(pid_t pid, proc_usage *u);

#endif
