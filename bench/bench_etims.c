/*
 * bench_etims.c — `duka-bench etims`: the eTIMS figures of issue 12 (see bench/README.md).
 *
 *   1. forward: a real `duka sim etims` (--latency-ms L, a fixed --seed) and a real `duka hub`
 *      (ETIMS_BASE_URL at the simulator, ETIMS_IN_FLIGHT F) on a fresh SQLite hub. One
 *      warm-up sale, with the service up, registers the device and takes invcNo 1 (a shop
 *      that ran before the outage). Then the simulator goes into an outage, N sales are pushed
 *      (batches of 500, as a till sends them) and the outage is held H seconds, until the
 *      forwarder's offline probe delay is at its cap (1, 2, 4, 8, 16 s, then 30 s: where a
 *      12-hour outage leaves it). Then the outage ends and the bench takes, from the hub's
 *      processed_ms and the simulator's received_ms (wall clocks of this machine):
 *        outage off -> first invoice the simulator accepted (detection: the next probe),
 *        outage off -> all N done at the hub,
 *      and checks that the simulator holds exactly N + 1 invoices of the PIN, invcNo 1..N+1
 *      with no gap, none refused as a duplicate, and that none failed at the hub.
 *      One request in flight at 100 ms or more of latency would take N x latency: it runs
 *      --slow-sales sales (200) and the time for N is extrapolated, labelled so.
 *   2. cost: in-process (dukacore, no HTTP), what the invoice adds to a push: batches of 500
 *      sales through duka_hub_push_apply on one scratch hub store (the push as it is now:
 *      sales, command ids, and the eTIMS jobs, one transaction), and on a second scratch store
 *      the eTIMS part alone for the same sales: a job row per sale (receipt number, terminal,
 *      no body: the forwarder builds it when it sends) + duka_hub_outbox_enqueue inside a
 *      transaction, as hub_push.c does it (the sales decoded outside the clock: the push
 *      decodes them anyway). Batches
 *      alternate between the two stores so both see the same noise; medians per sale. The
 *      ratio is part / (push - part). The part's own COMMIT is an upper bound of what the
 *      jobs add to the push's commit (there they share its fsync): both are printed.
 *      On PostgreSQL too when --pg-url, --pg-admin-url and --psql are given.
 *
 * --parts forward,cost picks; --latencies and --in-flight are lists (default 0,200 and
 * 1,16,32). Nothing here passes or fails on time: the exit code is 1 only when something is
 * WRONG. Every child is a child of this process (PR_SET_PDEATHSIG), on 127.0.0.1, stopped at
 * the end of its run; every file lives under --dir.
 */
#include "bench_etims.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "common/limits.h"
#include "common/uuid.h"
#include "hub/hub_push.h"
#include "hub/hub_store.h"
#include "net/http_client.h"
#include "outbox/hub_outbox.h"
#include "outbox/outbox.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "tax/etims/invoice.h"
#include "till/till_db.h"

extern char **environ;

#define ETIMS_SALES_DEFAULT 5000      /* a busy shop's day: the outage's backlog */
#define ETIMS_SLOW_SALES_DEFAULT 200  /* 1 in flight at >= ETIMS_SLOW_LATENCY_MS: extrapolated */
#define ETIMS_SLOW_LATENCY_MS 100
#define ETIMS_HOLD_DEFAULT 40         /* s of outage after the push: the probe delay at its cap */
#define ETIMS_HOLD_MAX 3600
#define ETIMS_PUSH_BATCH 500          /* a till's default batch */
#define ETIMS_COST_BATCHES_DEFAULT 20 /* per store and side: 10,000 sales */
#define ETIMS_TEMPLATES BENCH_PRODUCTS /* till_sell's item rotation repeats after this */
#define ETIMS_KRA_PIN "P051234567X"
#define ETIMS_SIM_SEED "12"
#define ETIMS_POLL_MS 50              /* how often the hub's outbox is counted */
#define ETIMS_WARMUP_WAIT_MS 60000
#define ETIMS_DONE_WAIT_MS (1800 * 1000)
#define ETIMS_HTTP_TIMEOUT_MS 120000
#define ETIMS_LIST_MAX 8
#define ETIMS_RUNS_MAX (ETIMS_LIST_MAX * ETIMS_LIST_MAX)
#define ETIMS_PROBE_CAP_S 30.0        /* DUKA_FORWARDER_PROBE_MAX_MS */

#define TARGET_FORWARD_S_MAX 60.0
#define TARGET_COST_PCT_MAX 10.0

enum { PART_FORWARD = 1u << 0, PART_COST = 1u << 1, PART_ALL = 3u };
enum { ST_SQLITE, ST_PG, ST_COUNT };
static const char *const st_names[ST_COUNT] = {"SQLite", "PostgreSQL"};

typedef struct etims_config {
    bench_config base; /* duka_bin, dir, results_path, keep */
    int sales, slow_sales, hold_s, cost_batches;
    int latencies[ETIMS_LIST_MAX], n_latencies;
    int in_flight[ETIMS_LIST_MAX], n_in_flight;
    unsigned parts;
    const char *pg_url, *pg_admin_url, *psql;
    char command[1024]; /* the command line, printed under the table */
} etims_config;

typedef struct forward_run {
    int latency_ms, in_flight, sales;
    bool done, extrapolated;
    double push_s;       /* pushing the sales during the outage */
    double offline_s;    /* how long the forwarder had been offline at outage off (-1: not) */
    double probe_s;      /* the gap between its last two probes then (attempt log; 0: unknown) */
    double detect_s;     /* outage off -> first invoice accepted */
    double all_s;        /* outage off -> all done at the hub */
    double rate;         /* sales / all_s */
    double rate_after;   /* sales / (last done - first accepted) */
    double full_s;       /* extrapolated: detect_s + cfg->sales / rate_after */
    int64_t invoices;    /* what the simulator holds for the PIN */
} forward_run;

typedef struct cost_figures {
    bool done;
    int batches;
    double push_us, part_us, part_nocommit_us, commit_us; /* per sale, medians */
    double push_min_us, push_max_us;
    double jobs_us, enqueue_us; /* of the part, per sale (all batches) */
} cost_figures;

typedef struct etims_report {
    forward_run runs[ETIMS_RUNS_MAX];
    int n_runs;
    cost_figures cost[ST_COUNT];
} etims_report;

/* ---- sales ---- */

typedef struct sale_set {
    duka_sale *tmpl[ETIMS_TEMPLATES];
    char date[9];
} sale_set;

static void sales_free(sale_set *ss)
{
    for (int k = 0; k < ETIMS_TEMPLATES; k++)
        duka_sale_free(ss->tmpl[k]);
    memset(ss, 0, sizeof(*ss));
}

/* ETIMS_TEMPLATES real 3-line sales from a scratch till (till_sell's rotation: every band). */
static int sales_make(const etims_config *cfg, sale_set *ss)
{
    char path[BENCH_PATH_MAX];
    sqlite3 *till = NULL;
    int result = -1;
    memset(ss, 0, sizeof(*ss));
    if (path_join(path, cfg->base.dir, "etims-template-till.db") ||
        till_create(path, "http://127.0.0.1:9", "none", &till))
        goto out;
    for (int k = 0; k < ETIMS_TEMPLATES; k++)
        if ((ss->tmpl[k] = duka_sale_new()) == NULL || till_sell(till, k, ss->tmpl[k]))
            goto out;
    const char *dash = strchr(ss->tmpl[0]->receipt_no, '-');
    snprintf(ss->date, sizeof(ss->date), "%.8s", dash ? dash + 1 : "20260101");
    result = 0;
out:
    duka_db_close(till);
    return result;
}

/* Sale number seq (1-based) of terminal BENCH_TERMINAL in *s. */
static void sale_nth(const sale_set *ss, int seq, duka_sale *s)
{
    *s = *ss->tmpl[(seq - 1) % ETIMS_TEMPLATES];
    snprintf(s->receipt_no, sizeof(s->receipt_no), "%s-%s-%05d", s->terminal, ss->date, seq);
}

/* A push body {"commands": [...]} of sales first..first+count-1, as a till sends it. */
static json_t *push_body(const sale_set *ss, duka_sale *s, int first, int count)
{
    json_t *commands = json_array();
    json_t *root = json_pack("{s:o}", "commands", commands);
    for (int i = 0; root != NULL && i < count; i++) {
        char id[DUKA_UUID_STR_LEN + 1];
        sale_nth(ss, first + i, s);
        duka_uuid_v7(s->created_ms, id);
        json_t *payload = duka_sale_to_json(s);
        json_t *cmd = payload ? json_pack("{s:s, s:s, s:s, s:o}", "id", id, "type",
                                          "sale.create", "entity_id", s->receipt_no, "payload",
                                          payload)
                              : NULL;
        if (cmd == NULL || json_array_append_new(commands, cmd) != 0) {
            json_decref(root);
            root = NULL;
        }
    }
    if (root == NULL)
        fprintf(stderr, "duka-bench: out of memory building a push body\n");
    return root;
}

/* The number of "applied" results of a push reply. */
static int applied_count(const json_t *reply)
{
    size_t i;
    const json_t *r;
    int n = 0;
    json_array_foreach(json_object_get(reply, "results"), i, r) {
        const char *st = json_string_value(json_object_get(r, "status"));
        n += st != NULL && strcmp(st, "applied") == 0;
    }
    return n;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- 1. forward ---- */

/* POSTs sales first..first+count-1 to the hub in batches of ETIMS_PUSH_BATCH; all applied. */
static int push_sales(const char *url, const char *token, const sale_set *ss, duka_sale *s,
                      int first, int count)
{
    for (int done = 0; done < count; done += ETIMS_PUSH_BATCH) {
        int n = count - done < ETIMS_PUSH_BATCH ? count - done : ETIMS_PUSH_BATCH;
        json_t *body = push_body(ss, s, first + done, n);
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (text == NULL)
            return -1;
        duka_http_reply reply = {0};
        duka_err err = {0};
        duka_rc rc = duka_http_request("POST", url, token, text, strlen(text),
                                       ETIMS_HTTP_TIMEOUT_MS, &reply, &err);
        free(text);
        json_t *js = rc == DUKA_OK && reply.status == 200 && reply.body
                         ? json_loadb(reply.body, reply.len, 0, NULL)
                         : NULL;
        int applied = js ? applied_count(js) : -1;
        json_decref(js);
        if (applied != n)
            fprintf(stderr, "duka-bench: push of %d sales: %s (HTTP %ld, %d applied) %.200s\n", n,
                    rc != DUKA_OK ? err.msg : "refused", reply.status, applied,
                    reply.body ? reply.body : "");
        duka_http_reply_free(&reply);
        if (applied != n)
            return -1;
    }
    return 0;
}

static int sim_faults(const char *sim_base, const char *knobs)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/_sim/faults", sim_base);
    duka_http_reply reply = {0};
    duka_err err = {0};
    duka_rc rc = duka_http_request("POST", url, NULL, knobs, strlen(knobs), 10000, &reply, &err);
    long status = rc == DUKA_OK ? reply.status : 0;
    if (status != 200)
        fprintf(stderr, "duka-bench: POST /_sim/faults %s: %s (HTTP %ld)\n", knobs,
                rc != DUKA_OK ? err.msg : "refused", status);
    duka_http_reply_free(&reply);
    return status == 200 ? 0 : -1;
}

/* One integer from a read-only query of the hub's database; -1 on failure. */
static int64_t db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "duka-bench: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

/* The forwarder's view of the service (service_health): state into buf, since_ms returned. */
static int64_t health_state(sqlite3 *db, char *buf, size_t len)
{
    sqlite3_stmt *st = NULL;
    int64_t since = -1;
    snprintf(buf, len, "none");
    if (sqlite3_prepare_v2(db, "SELECT state, since_ms FROM service_health WHERE service = "
                           "'etims'", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
        since = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return since;
}

/* Waits until `want` eTIMS items are done at the hub; -1 when one failed or on timeout. */
static int wait_done(sqlite3 *db, int64_t want, long timeout_ms)
{
    double deadline = now_us() + (double)timeout_ms * 1e3;
    for (;;) {
        if (!child_alive(&g_hub_pid, "hub"))
            return -1;
        int64_t done = db_int(db, "SELECT count(*) FROM hub_outbox WHERE destination = 'etims'"
                                  " AND status = 'done'");
        int64_t failed = db_int(db, "SELECT count(*) FROM hub_outbox WHERE destination = "
                                    "'etims' AND status = 'failed'");
        if (done < 0 || failed < 0)
            return -1;
        if (failed > 0) {
            fprintf(stderr, "duka-bench: %lld eTIMS items failed at the hub\n", (long long)failed);
            return -1;
        }
        if (done >= want)
            return 0;
        if (now_us() > deadline) {
            fprintf(stderr, "duka-bench: %lld of %lld eTIMS items done after %ld s\n",
                    (long long)done, (long long)want, timeout_ms / 1000);
            return -1;
        }
        sleep_ms(ETIMS_POLL_MS);
    }
}

/* What the simulator holds for the PIN: count, no gap, no duplicate refused; the first and
 * last received_ms of invcNo >= from_no. */
static int sim_check(const char *sim_base, int64_t want, int64_t from_no, int64_t *first_ms,
                     int64_t *last_ms, int64_t *count)
{
    char url[160];
    snprintf(url, sizeof(url), "%s/_sim/invoices?tin=%s", sim_base, ETIMS_KRA_PIN);
    duka_http_reply reply = {0};
    duka_err err = {0};
    duka_rc rc = duka_http_request("GET", url, NULL, NULL, 0, ETIMS_HTTP_TIMEOUT_MS, &reply, &err);
    json_t *js = rc == DUKA_OK && reply.status == 200 && reply.body
                     ? json_loadb(reply.body, reply.len, 0, NULL)
                     : NULL;
    duka_http_reply_free(&reply);
    if (js == NULL) {
        fprintf(stderr, "duka-bench: GET /_sim/invoices: %s\n", rc != DUKA_OK ? err.msg : "failed");
        return -1;
    }
    const json_t *list = json_object_get(js, "invoices");
    size_t gaps = json_array_size(json_object_get(js, "gaps"));
    json_int_t dups = json_integer_value(json_object_get(js, "duplicates_refused"));
    *count = (int64_t)json_array_size(list);
    *first_ms = INT64_MAX;
    *last_ms = 0;
    int64_t max_no = 0;
    size_t i;
    const json_t *inv;
    json_array_foreach(list, i, inv) {
        int64_t no = json_integer_value(json_object_get(inv, "invcNo"));
        int64_t at = json_integer_value(json_object_get(inv, "received_ms"));
        max_no = no > max_no ? no : max_no;
        if (no >= from_no) {
            *first_ms = at < *first_ms ? at : *first_ms;
            *last_ms = at > *last_ms ? at : *last_ms;
        }
    }
    json_decref(js);
    if (*count != want || max_no != want || gaps != 0 || dups != 0) {
        fprintf(stderr, "duka-bench: the simulator holds %lld invoices of %s (highest invcNo "
                "%lld, %zu gaps, %lld duplicates refused); expected %lld, no gap\n",
                (long long)*count, ETIMS_KRA_PIN, (long long)max_no, gaps, (long long)dups,
                (long long)want);
        return -1;
    }
    return 0;
}

/* `duka sim etims` on a free port into g_till_pid[0] (stopped by on_signal), its base URL. */
static int sim_start(const etims_config *cfg, const char *state, const char *log_path,
                     int latency_ms, char *base, size_t base_len)
{
    char lat[16];
    snprintf(lat, sizeof(lat), "%d", latency_ms);
    for (int attempt = 0; attempt < BENCH_HUB_START_TRIES; attempt++) {
        int port = free_port();
        char listen[64], health[160];
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
        const char *args[] = {"sim", "etims", "--listen", listen, "--state", state,
                              "--latency-ms", lat, "--seed", ETIMS_SIM_SEED, NULL};
        pid_t pid = port > 0 ? spawn_duka(&cfg->base, args, log_path) : -1;
        if (pid < 0)
            continue;
        g_till_pid[0] = pid;
        snprintf(base, base_len, "http://127.0.0.1:%d", port);
        snprintf(health, sizeof(health), "%s/_sim/health", base);
        if (wait_http_200(health, &g_till_pid[0], "sim", 20, BENCH_HEALTH_WAIT_MS) >= 0)
            return 0;
        child_stop(&g_till_pid[0], "sim");
    }
    fprintf(stderr, "duka-bench: the simulator did not start (see %s)\n", log_path);
    return -1;
}

/* The gap between the forwarder's last two attempts before before_ms (the attempt log), in
 * s; 0 when it cannot tell. The delay it waits now is the next one (doubled, at most 30 s). */
static double probe_delay_s(sqlite3 *db, int64_t before_ms)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT finished_ms FROM hub_outbox_attempts WHERE finished_ms <"
             " %lld ORDER BY finished_ms DESC LIMIT 2", (long long)before_ms);
    sqlite3_stmt *st = NULL;
    int64_t t[2] = {0, 0};
    int n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK)
        while (n < 2 && sqlite3_step(st) == SQLITE_ROW)
            t[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n == 2 ? (double)(t[0] - t[1]) / 1e3 : 0;
}

static int forward_once(const etims_config *cfg, const sale_set *ss, int latency_ms,
                        int in_flight, forward_run *out)
{
    char dir[BENCH_PATH_MAX], name[64], csv[BENCH_PATH_MAX], hub_db[BENCH_PATH_MAX];
    char hub_log[BENCH_PATH_MAX], sim_db[BENCH_PATH_MAX], sim_log[BENCH_PATH_MAX];
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    char sim_base[64], etims_url[96], push_url[96], nflight[16];
    sqlite3 *ro = NULL;
    duka_sale *s = duka_sale_new();
    int result = -1, port = 0;
    bool slow = in_flight == 1 && latency_ms >= ETIMS_SLOW_LATENCY_MS && cfg->slow_sales < cfg->sales;
    memset(out, 0, sizeof(*out));
    out->latency_ms = latency_ms;
    out->in_flight = in_flight;
    out->sales = slow ? cfg->slow_sales : cfg->sales;
    out->extrapolated = slow;
    snprintf(name, sizeof(name), "etims-forward-%dms-%d", latency_ms, in_flight);
    if (s == NULL || path_join(dir, cfg->base.dir, name) || make_dir(dir) ||
        path_join(csv, dir, "products.csv") || path_join(hub_db, dir, "hub.db") ||
        path_join(hub_log, dir, "hub.log") || path_join(sim_db, dir, "sim.db") ||
        path_join(sim_log, dir, "sim.log"))
        goto out;
    if (write_catalog_csv(csv) ||
        hub_prepare(&cfg->base, hub_db, hub_db, csv, BENCH_PRODUCTS, business, sizeof(business),
                    token, sizeof(token), NULL))
        goto out;
    const char *set[] = {cfg->base.duka_bin, "business", "set", "--db", hub_db, "--business",
                         business, "--kra-pin", ETIMS_KRA_PIN, NULL};
    char *set_out = NULL;
    int set_rc = run_prog(set, &set_out, NULL);
    free(set_out);
    if (set_rc != 0) {
        fprintf(stderr, "duka-bench: duka business set --kra-pin failed (exit %d)\n", set_rc);
        goto out;
    }
    if (sim_start(cfg, sim_db, sim_log, latency_ms, sim_base, sizeof(sim_base)))
        goto out;
    snprintf(etims_url, sizeof(etims_url), "%s/etims-api", sim_base);
    snprintf(nflight, sizeof(nflight), "%d", in_flight);
    setenv("ETIMS_BASE_URL", etims_url, 1);
    setenv("ETIMS_IN_FLIGHT", nflight, 1);
    int started = hub_start(&cfg->base, hub_db, hub_log, &port);
    unsetenv("ETIMS_BASE_URL");
    unsetenv("ETIMS_IN_FLIGHT");
    if (started)
        goto out;
    snprintf(push_url, sizeof(push_url), "http://127.0.0.1:%d/v1/push", port);
    if (sqlite3_open_v2(hub_db, &ro, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "duka-bench: opening %s read-only: %s\n", hub_db, sqlite3_errmsg(ro));
        goto out;
    }
    sqlite3_busy_timeout(ro, 5000);
    /* The shop ran before the outage: its device is registered and invcNo 1 is signed. */
    if (push_sales(push_url, token, ss, s, 1, 1) || wait_done(ro, 1, ETIMS_WARMUP_WAIT_MS))
        goto out;
    if (sim_faults(sim_base, "{\"outage\":true}"))
        goto out;
    double t0 = now_us();
    if (push_sales(push_url, token, ss, s, 2, out->sales))
        goto out;
    out->push_s = (now_us() - t0) / 1e6;
    double hold_end = t0 + cfg->hold_s * 1e6;
    while (now_us() < hold_end) {
        if (!child_alive(&g_hub_pid, "hub"))
            goto out;
        sleep_ms(200);
    }
    char state[16];
    int64_t since = health_state(ro, state, sizeof(state));
    int64_t off_ms = wall_ms();
    out->offline_s = strcmp(state, "offline") == 0 ? (double)(off_ms - since) / 1e3 : -1;
    out->probe_s = probe_delay_s(ro, off_ms);
    if (out->offline_s < 0)
        fprintf(stderr, "duka-bench:   the forwarder was '%s', not offline, when the outage "
                "ended\n", state);
    double off_us = now_us();
    if (sim_faults(sim_base, "{\"outage\":false}") ||
        wait_done(ro, 1 + out->sales, ETIMS_DONE_WAIT_MS))
        goto out;
    double polled_s = (now_us() - off_us) / 1e6;
    int64_t last_done = db_int(ro, "SELECT max(processed_ms) FROM hub_outbox WHERE destination ="
                                   " 'etims' AND status = 'done' AND seq_no > 1");
    int64_t first_ms = 0, last_ms = 0;
    if (last_done < 0 ||
        sim_check(sim_base, 1 + out->sales, 2, &first_ms, &last_ms, &out->invoices))
        goto out;
    out->detect_s = (double)(first_ms - off_ms) / 1e3;
    out->all_s = (double)(last_done - off_ms) / 1e3;
    if (out->all_s <= 0 || out->all_s > polled_s + 1)
        out->all_s = polled_s; /* clocks that disagree: the bench's own poll */
    out->rate = out->sales / out->all_s;
    double after = (double)(last_done - first_ms) / 1e3;
    out->rate_after = after > 0 ? out->sales / after : out->rate;
    out->full_s = slow ? out->detect_s + cfg->sales / out->rate_after : out->all_s;
    out->done = true;
    fprintf(stderr, "duka-bench:   %d ms, %d in flight: %d invoices done %.1f s after the outage "
            "ended (first accepted at %.1f s; %.0f/s after it); forwarder offline %.0f s "
            "(last gap between its probes %.0f s)\n", latency_ms, in_flight, out->sales, out->all_s,
            out->detect_s, out->rate_after, out->offline_s, out->probe_s);
    result = 0;
out:
    if (ro != NULL)
        sqlite3_close(ro);
    hub_stop();
    child_stop(&g_till_pid[0], "sim");
    duka_sale_free(s);
    if (result != 0)
        fprintf(stderr, "duka-bench: eTIMS forward run (%d ms, %d in flight) failed (logs in "
                "%s, kept)\n", latency_ms, in_flight, dir);
    else if (!cfg->base.keep)
        remove_tree(dir);
    return result;
}

/* ---- 2. cost ---- */

typedef struct cost_loc {
    int store;
    char db[BENCH_PATH_MAX], init_db[BENCH_PATH_MAX], schema[64];
} cost_loc;

static int psql_exec(const etims_config *cfg, const char *sql)
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

/* A scratch hub location: a file in dir, or a fresh schema (as bench_scale.c's hub_loc). */
static int cost_loc_make(const etims_config *cfg, int store, const char *dir, const char *tag,
                         cost_loc *h)
{
    memset(h, 0, sizeof(*h));
    h->store = store;
    if (store == ST_SQLITE) {
        char file[64];
        snprintf(file, sizeof(file), "%s.db", tag);
        if (path_join(h->db, dir, file))
            return -1;
        snprintf(h->init_db, sizeof(h->init_db), "%s", h->db);
        return 0;
    }
    char sql[256];
    snprintf(h->schema, sizeof(h->schema), "bench_etims_%s_%d", tag, (int)getpid());
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s "
             "CASCADE; CREATE SCHEMA %s", h->schema, h->schema);
    if (psql_exec(cfg, sql))
        return -1;
    url_in_schema(h->db, sizeof(h->db), cfg->pg_url, h->schema);
    url_in_schema(h->init_db, sizeof(h->init_db), cfg->pg_admin_url, h->schema);
    return 0;
}

static void cost_loc_drop(const etims_config *cfg, const cost_loc *h)
{
    if (h->store == ST_PG && h->schema[0] && !cfg->base.keep) {
        char sql[160];
        snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s "
                 "CASCADE", h->schema);
        psql_exec(cfg, sql);
    }
}

/* A scratch hub (init, catalog, device T01) opened in-process, its device in *dev. */
static int cost_hub(const etims_config *cfg, const cost_loc *h, const char *csv,
                    duka_hub_store **store, duka_hub_device *dev)
{
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    duka_err err = {0};
    if (hub_prepare(&cfg->base, h->init_db, h->db, csv, BENCH_PRODUCTS, business,
                    sizeof(business), token, sizeof(token), NULL))
        return -1;
    if (duka_hub_store_open(h->db, false, store, &err) != DUKA_OK)
        return fail("opening the hub store", &err);
    if (duka_hub_device_authenticate(*store, token, dev, &err) != DUKA_OK)
        return fail("authenticating the bench device", &err);
    return 0;
}

/* The eTIMS part of a push for the sales of body, as hub_push.c does it now (invoice_job_add
 * and the enqueue before its COMMIT): per sale a job row with its receipt number and
 * terminal and no body (the forwarder builds the body from the stored sale when it sends),
 * in its own transaction on store. Decoding the sales is not timed. Times in us: *work
 * (begin, jobs, enqueue) and *commit; split[0..1] gets the time of making the jobs and of the
 * enqueue. */
static int cost_part(duka_hub_store *store, const duka_hub_device *dev, const json_t *body,
                     duka_sale *sale, double *work, double *commit, double split[2])
{
    const json_t *commands = json_object_get(body, "commands");
    int n = (int)json_array_size(commands);
    duka_hub_outbox_new *jobs = calloc((size_t)n, sizeof(*jobs));
    char **owned = calloc((size_t)n, sizeof(*owned));
    char stream[DUKA_HUB_OUTBOX_STREAM_MAX + 1];
    duka_err err = {0};
    int result = -1, made = 0;
    double acc = 0;
    if (jobs == NULL || owned == NULL) {
        fprintf(stderr, "duka-bench: out of memory\n");
        goto out;
    }
    double t = now_us();
    if (duka_hub_store_begin(store, &err) != DUKA_OK) {
        fail("BEGIN", &err);
        goto out;
    }
    acc += now_us() - t;
    for (int i = 0; i < n; i++) {
        duka_err verr = {0};
        if (duka_sale_from_json(json_object_get(json_array_get(commands, (size_t)i), "payload"),
                                sale, &verr) != DUKA_OK) {
            fail("decoding a bench sale", &verr);
            goto rollback;
        }
        t = now_us();
        size_t rlen = strlen(sale->receipt_no) + 1, tlen = strlen(sale->terminal) + 1;
        char *receipt = malloc(rlen + tlen);
        if (receipt == NULL) {
            fprintf(stderr, "duka-bench: out of memory making an invoice job\n");
            goto rollback;
        }
        memcpy(receipt, sale->receipt_no, rlen);
        memcpy(receipt + rlen, sale->terminal, tlen);
        owned[i] = receipt;
        made = i + 1;
        duka_hub_outbox_new *job = &jobs[i];
        job->destination = DUKA_DEST_ETIMS;
        job->command_type = "etims.sale";
        job->entity_id = receipt;
        job->terminal = receipt + rlen;
        job->payload = "";
        const duka_queue_type *tax = duka_outbox_queue_type("tax");
        job->priority = tax ? tax->priority : DUKA_PRIORITY_TAX;
        job->max_attempts = tax ? tax->max_attempts : DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT;
        double dt = now_us() - t;
        acc += dt;
        split[0] += dt;
    }
    t = now_us();
    snprintf(stream, sizeof(stream), "etims:%s:%s", dev->business_id, DUKA_ETIMS_BRANCH_DEFAULT);
    for (int i = 0; i < n; i++)
        jobs[i].stream = stream;
    if (duka_hub_outbox_enqueue(store, dev->business_id, jobs, n, wall_ms(), &err) != DUKA_OK) {
        fail("duka_hub_outbox_enqueue", &err);
        goto rollback;
    }
    double t1 = now_us();
    acc += t1 - t;
    split[1] += t1 - t;
    if (duka_hub_store_commit(store, &err) != DUKA_OK) {
        fail("COMMIT", &err);
        goto rollback;
    }
    *commit = now_us() - t1;
    *work = acc;
    result = 0;
    goto out;
rollback:
    duka_hub_store_rollback(store);
out:
    for (int i = 0; i < made; i++)
        free(owned[i]);
    free(owned);
    free(jobs);
    return result;
}

static int cost_store(const etims_config *cfg, int store, const sale_set *ss, cost_figures *f)
{
    char dir[BENCH_PATH_MAX], csv[BENCH_PATH_MAX];
    cost_loc la, lb;
    bool have_a = false, have_b = false;
    duka_hub_store *sa = NULL, *sb = NULL;
    duka_hub_device da, db;
    duka_sale *s = duka_sale_new();
    int nb = cfg->cost_batches, result = -1;
    double *push = calloc((size_t)nb, sizeof(double)), *part = calloc((size_t)nb, sizeof(double));
    double *work = calloc((size_t)nb, sizeof(double)), *com = calloc((size_t)nb, sizeof(double));
    double split[2] = {0, 0};
    memset(f, 0, sizeof(*f));
    if (s == NULL || push == NULL || part == NULL || work == NULL || com == NULL ||
        path_join(dir, cfg->base.dir, store == ST_PG ? "etims-cost-pg" : "etims-cost-sqlite") ||
        make_dir(dir) || path_join(csv, dir, "products.csv") || write_catalog_csv(csv))
        goto out;
    if (cost_loc_make(cfg, store, dir, "push", &la))
        goto out;
    have_a = true;
    if (cost_loc_make(cfg, store, dir, "part", &lb))
        goto out;
    have_b = true;
    if (cost_hub(cfg, &la, csv, &sa, &da) || cost_hub(cfg, &lb, csv, &sb, &db))
        goto out;
    for (int b = 0; b < nb; b++) {
        json_t *body = push_body(ss, s, b * ETIMS_PUSH_BATCH + 1, ETIMS_PUSH_BATCH);
        if (body == NULL)
            goto out;
        /* Alternate which side goes first, so neither always follows the other's fsync. */
        for (int side = 0; side < 2; side++) {
            bool do_push = (side == 0) == (b % 2 == 0);
            if (do_push) {
                json_t *reply = NULL;
                duka_err err = {0};
                double t0 = now_us();
                duka_rc rc = duka_hub_push_apply(sa, &da, body, wall_ms(), &reply, &err);
                push[b] = (now_us() - t0) / ETIMS_PUSH_BATCH;
                int applied = rc == DUKA_OK ? applied_count(reply) : -1;
                json_decref(reply);
                if (rc != DUKA_OK) {
                    json_decref(body);
                    fail("duka_hub_push_apply", &err);
                    goto out;
                }
                if (applied != ETIMS_PUSH_BATCH) {
                    json_decref(body);
                    fprintf(stderr, "duka-bench: push applied %d of %d\n", applied,
                            ETIMS_PUSH_BATCH);
                    goto out;
                }
                duka_hub_store_checkpoint(sa);
            } else {
                double w = 0, c = 0;
                if (cost_part(sb, &db, body, s, &w, &c, split)) {
                    json_decref(body);
                    goto out;
                }
                work[b] = w / ETIMS_PUSH_BATCH;
                com[b] = c / ETIMS_PUSH_BATCH;
                part[b] = (w + c) / ETIMS_PUSH_BATCH;
                duka_hub_store_checkpoint(sb);
            }
        }
        json_decref(body);
    }
    /* Every sale and every job is there: the push's in its sales and its outbox, the part's
     * in its outbox (counted through the store's own API). */
    duka_hub_outbox_counts ka, kb;
    duka_err err = {0};
    int64_t want = (int64_t)nb * ETIMS_PUSH_BATCH;
    if (duka_hub_outbox_count(sa, da.business_id, DUKA_DEST_ETIMS, &ka, &err) != DUKA_OK ||
        duka_hub_outbox_count(sb, db.business_id, DUKA_DEST_ETIMS, &kb, &err) != DUKA_OK) {
        fail("counting the outbox", &err);
        goto out;
    }
    if (ka.pending != want || kb.pending != want) {
        fprintf(stderr, "duka-bench: %lld and %lld invoice jobs queued, expected %lld each\n",
                (long long)ka.pending, (long long)kb.pending, (long long)want);
        goto out;
    }
    f->batches = nb;
    f->push_us = median(push, nb); /* sorts: min and max after */
    f->push_min_us = push[0];
    f->push_max_us = push[nb - 1];
    f->part_us = median(part, nb);
    f->part_nocommit_us = median(work, nb);
    f->commit_us = median(com, nb);
    f->jobs_us = split[0] / (double)want;
    f->enqueue_us = split[1] / (double)want;
    f->done = true;
    fprintf(stderr, "duka-bench:   %s: push %.1f us/sale; eTIMS part %.1f us/sale (%.1f without "
            "its commit); part / (push - part) = %.1f %%\n", st_names[store], f->push_us,
            f->part_us, f->part_nocommit_us, 100.0 * f->part_us / (f->push_us - f->part_us));
    result = 0;
out:
    duka_hub_store_close(sa);
    duka_hub_store_close(sb);
    if (have_a)
        cost_loc_drop(cfg, &la);
    if (have_b)
        cost_loc_drop(cfg, &lb);
    duka_sale_free(s);
    free(push);
    free(part);
    free(work);
    free(com);
    if (result == 0 && !cfg->base.keep)
        remove_tree(dir);
    return result;
}

/* ---- the table ---- */

static void etims_row(FILE *f, const char *label, const char *value, const char *target)
{
    if (target[0] != '\0')
        fprintf(f, "%-62s %-44s %s\n", label, value, target);
    else
        fprintf(f, "%-62s %s\n", label, value);
}

static void print_etims_table(FILE *f, const etims_config *cfg, const etims_report *r)
{
    char label[160], value[160], n1[32], n2[32];
    etims_row(f, "metric (eTIMS, issue 12)", "value", "target");
    format_count(cfg->sales, n1, sizeof(n1));
    for (int i = 0; i < r->n_runs; i++) {
        const forward_run *x = &r->runs[i];
        if (!x->done)
            continue;
        if (x->extrapolated) {
            format_count(x->sales, n2, sizeof(n2));
            snprintf(label, sizeof(label), "backlog %s, %d ms, %d in flight: EXTRAPOLATED (s)",
                     n1, x->latency_ms, x->in_flight);
            snprintf(value, sizeof(value), "~%.0f (%s run: %.1f s, detect %.1f, %.1f/s)",
                     x->full_s, n2, x->all_s, x->detect_s, x->rate_after);
        } else {
            snprintf(label, sizeof(label), "backlog %s, %d ms, %d in flight: outage off -> all "
                     "(s)", n1, x->latency_ms, x->in_flight);
            snprintf(value, sizeof(value), "%.1f = detect %.1f + %.1f (%.0f/s; %.0f/s overall)",
                     x->all_s, x->detect_s, x->all_s - x->detect_s, x->rate_after, x->rate);
        }
        etims_row(f, label, value, "<= 60");
    }
    bool any_run = false;
    double off_min = 1e300, off_max = -1;
    for (int i = 0; i < r->n_runs; i++)
        if (r->runs[i].done) {
            any_run = true;
            off_min = r->runs[i].offline_s < off_min ? r->runs[i].offline_s : off_min;
            off_max = r->runs[i].offline_s > off_max ? r->runs[i].offline_s : off_max;
        }
    if (any_run) {
        snprintf(label, sizeof(label), "  forwarder offline when the outage ended (s)");
        snprintf(value, sizeof(value), "%.0f..%.0f (probes at its cap, every %.0f s: detect "
                 "<= %.0f)", off_min, off_max, ETIMS_PROBE_CAP_S, ETIMS_PROBE_CAP_S);
        etims_row(f, label, value, "");
        snprintf(label, sizeof(label), "  invoices at the simulator (invcNo 1..N+1, no gap)");
        snprintf(value, sizeof(value), "backlog + 1 warm-up in each of %d runs, 0 refused",
                 r->n_runs);
        etims_row(f, label, value, "");
    }
    for (int st = 0; st < ST_COUNT; st++) {
        const cost_figures *c = &r->cost[st];
        if (!c->done)
            continue;
        format_count((long long)c->batches * ETIMS_PUSH_BATCH, n2, sizeof(n2));
        snprintf(label, sizeof(label), "push of %d-sale batches, %s (us/sale, %s sales)",
                 ETIMS_PUSH_BATCH, st_names[st], n2);
        snprintf(value, sizeof(value), "%.1f (batches %.1f..%.1f)", c->push_us, c->push_min_us,
                 c->push_max_us);
        etims_row(f, label, value, "");
        snprintf(label, sizeof(label), "  eTIMS part alone: jobs+enqueue+commit (us/sale)");
        snprintf(value, sizeof(value), "%.1f (without its own commit %.1f)", c->part_us,
                 c->part_nocommit_us);
        etims_row(f, label, value, "");
        snprintf(label, sizeof(label), "    of which jobs / enqueue / commit (us)");
        snprintf(value, sizeof(value), "%.1f / %.1f / %.1f (means)", c->jobs_us, c->enqueue_us,
                 c->commit_us);
        etims_row(f, label, value, "");
        snprintf(label, sizeof(label), "  eTIMS part / push without it, %s", st_names[st]);
        double rest = c->push_us - c->part_us, rest2 = c->push_us - c->part_nocommit_us;
        snprintf(value, sizeof(value), "%.1f %% (%.1f %% without its commit)",
                 rest > 0 ? 100.0 * c->part_us / rest : 0,
                 rest2 > 0 ? 100.0 * c->part_nocommit_us / rest2 : 0);
        etims_row(f, label, value, "<= 10 %");
    }
    if (!(cfg->parts & PART_COST) || !r->cost[ST_PG].done)
        fprintf(f, "PostgreSQL cost: %s\n", (cfg->parts & PART_COST)
                    ? "n/a (no --pg-url/--pg-admin-url/--psql)" : "not run");
    if (any_run)
        fprintf(f, "latency is added by `duka sim etims --latency-ms` to every request; outage "
                "held %d s after the push; detect = outage off -> first invoice accepted\n",
                cfg->hold_s);
    fprintf(f, "reproduce: %s\n", cfg->command);
}

static int append_etims_results(const etims_config *cfg, const etims_report *r)
{
    FILE *f = fopen(cfg->base.results_path, "a");
    if (f == NULL) {
        fprintf(stderr, "duka-bench: cannot append to %s: %s\n", cfg->base.results_path,
                strerror(errno));
        return -1;
    }
    fprintf(f, "\neTIMS figures (issue 12): a real `duka hub` forwarding to `duka sim etims` after "
            "an outage; the push's added cost in-process (what each figure means: "
            "[README.md](README.md#the-etims-figures-issue-12)).\n\n```\n");
    print_etims_table(f, cfg, r);
    fprintf(f, "```\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- main of `duka-bench etims` ---- */

static int etims_usage(void)
{
    fprintf(stderr,
            "usage: duka-bench etims --duka PATH --dir DIR [--results FILE] [--parts LIST]\n"
            "         [--sales N] [--slow-sales N] [--latencies LIST] [--in-flight LIST]\n"
            "         [--hold S] [--cost-batches N] [--pg-url URL --pg-admin-url URL --psql PATH]\n"
            "         [--keep]\n"
            "  --parts LIST      forward,cost (default both)\n"
            "  --sales N         the outage's backlog (default %d)\n"
            "  --slow-sales N    sales of a run with 1 in flight at >= %d ms (default %d;\n"
            "                    the time for --sales is extrapolated)\n"
            "  --latencies LIST  simulator latencies in ms (default 0,200)\n"
            "  --in-flight LIST  ETIMS_IN_FLIGHT values (default 1,16,32)\n"
            "  --hold S          seconds of outage after the push (default %d)\n"
            "  --cost-batches N  500-sale batches per side of the cost figure (default %d)\n",
            ETIMS_SALES_DEFAULT, ETIMS_SLOW_LATENCY_MS, ETIMS_SLOW_SALES_DEFAULT,
            ETIMS_HOLD_DEFAULT, ETIMS_COST_BATCHES_DEFAULT);
    return 2;
}

static int parse_list(const char *text, int lo, int hi, int *out, int *n)
{
    *n = 0;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == ETIMS_LIST_MAX || parse_count(tok, lo, hi, &out[*n]))
            return -1;
        (*n)++;
    }
    return *n > 0 ? 0 : -1;
}

static int parse_parts(const char *text, unsigned *out)
{
    *out = 0;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "forward") == 0)
            *out |= PART_FORWARD;
        else if (strcmp(tok, "cost") == 0)
            *out |= PART_COST;
        else
            return -1;
    }
    return *out ? 0 : -1;
}

static int etims_parse_args(int argc, char **argv, etims_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--keep") == 0) {
            cfg->base.keep = true;
            continue;
        }
        if (v == NULL)
            return etims_usage();
        const char **sp = strcmp(a, "--duka") == 0           ? &cfg->base.duka_bin
                          : strcmp(a, "--dir") == 0          ? &cfg->base.dir
                          : strcmp(a, "--results") == 0      ? &cfg->base.results_path
                          : strcmp(a, "--pg-url") == 0       ? &cfg->pg_url
                          : strcmp(a, "--pg-admin-url") == 0 ? &cfg->pg_admin_url
                          : strcmp(a, "--psql") == 0         ? &cfg->psql
                                                             : NULL;
        if (sp != NULL)
            *sp = v;
        else if (strcmp(a, "--parts") == 0 ? parse_parts(v, &cfg->parts)
                 : strcmp(a, "--sales") == 0 ? parse_count(v, 1, 99998, &cfg->sales)
                 : strcmp(a, "--slow-sales") == 0 ? parse_count(v, 1, 99998, &cfg->slow_sales)
                 : strcmp(a, "--hold") == 0 ? parse_count(v, 0, ETIMS_HOLD_MAX, &cfg->hold_s)
                 : strcmp(a, "--cost-batches") == 0
                     ? parse_count(v, 1, 99999 / ETIMS_PUSH_BATCH, &cfg->cost_batches)
                 : strcmp(a, "--latencies") == 0
                     ? parse_list(v, 0, 600000, cfg->latencies, &cfg->n_latencies)
                 : strcmp(a, "--in-flight") == 0
                     ? parse_list(v, 1, DUKA_HUB_OUTBOX_CLAIM_MAX, cfg->in_flight,
                                  &cfg->n_in_flight)
                                                   : -1)
            return etims_usage();
        i++;
    }
    if (cfg->base.duka_bin == NULL || cfg->base.dir == NULL)
        return etims_usage();
    return 0;
}

int etims_main(int argc, char **argv)
{
    static etims_config cfg = {.sales = ETIMS_SALES_DEFAULT,
                               .slow_sales = ETIMS_SLOW_SALES_DEFAULT,
                               .hold_s = ETIMS_HOLD_DEFAULT,
                               .cost_batches = ETIMS_COST_BATCHES_DEFAULT,
                               .latencies = {0, 200},
                               .n_latencies = 2,
                               .in_flight = {1, 16, 32},
                               .n_in_flight = 3,
                               .parts = PART_ALL};
    int rc = etims_parse_args(argc, argv, &cfg);
    if (rc != 0)
        return rc;
    /* The command line as given (scratch paths and URLs replaced: they are this run's). */
    size_t at = (size_t)snprintf(cfg.command, sizeof(cfg.command), "duka-bench");
    for (int i = 0; i < argc && at < sizeof(cfg.command); i++) {
        const char *a = argv[i];
        bool scratch = i > 0 && (strcmp(argv[i - 1], "--dir") == 0 ||
                                 strcmp(argv[i - 1], "--pg-url") == 0 ||
                                 strcmp(argv[i - 1], "--pg-admin-url") == 0);
        at += (size_t)snprintf(cfg.command + at, sizeof(cfg.command) - at, " %s",
                               scratch ? "…" : a);
    }
    if (access(cfg.base.duka_bin, X_OK) != 0) {
        fprintf(stderr, "duka-bench: %s is not an executable duka binary\n", cfg.base.duka_bin);
        return 1;
    }
    bool pg = cfg.pg_url != NULL && cfg.pg_admin_url != NULL && cfg.psql != NULL;
    static const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                    "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
        unsetenv(proxies[i]);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    /* The hubs get ETIMS_BASE_URL and ETIMS_IN_FLIGHT from here and every other eTIMS setting
     * at its default: none of the caller's. */
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; *e != NULL; e++)
            if (strncmp(*e, "ETIMS_", 6) == 0) {
                char name[128];
                snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(name);
                again = true; /* environ changed under the loop: start over */
                break;
            }
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "duka-bench: cannot initialise libsodium / libcurl\n");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);

    static etims_report r;
    memset(&r, 0, sizeof(r));
    sale_set ss;
    if (sales_make(&cfg, &ss)) {
        sales_free(&ss);
        curl_global_cleanup();
        return 1;
    }
    if (cfg.parts & PART_COST) {
        for (int st = 0; rc == 0 && st < ST_COUNT; st++) {
            if (st == ST_PG && !pg)
                continue;
            fprintf(stderr, "duka-bench: etims cost, %s: %d batches of %d sales, push vs the "
                    "eTIMS part alone (interleaved)\n", st_names[st], cfg.cost_batches,
                    ETIMS_PUSH_BATCH);
            if (cost_store(&cfg, st, &ss, &r.cost[st]))
                rc = 1;
        }
    }
    if (cfg.parts & PART_FORWARD) {
        for (int li = 0; rc == 0 && li < cfg.n_latencies; li++)
            for (int fi = 0; rc == 0 && fi < cfg.n_in_flight; fi++) {
                int lat = cfg.latencies[li], nf = cfg.in_flight[fi];
                fprintf(stderr, "duka-bench: etims forward: %d ms latency, %d in flight: outage, "
                        "push, hold %d s, outage off\n", lat, nf, cfg.hold_s);
                if (forward_once(&cfg, &ss, lat, nf, &r.runs[r.n_runs]))
                    rc = 1;
                r.n_runs++;
            }
    }
    printf("\n");
    print_etims_table(stdout, &cfg, &r);
    fflush(stdout);
    if (rc == 0 && cfg.base.results_path != NULL && append_etims_results(&cfg, &r))
        rc = 1;
    sales_free(&ss);
    curl_global_cleanup();
    return rc;
}
