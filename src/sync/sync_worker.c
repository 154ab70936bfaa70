/* sync_worker.c — the till's background sync worker (see sync_worker.h). */
#include "sync/sync_worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/limits.h"
#include "common/random.h"
#include "common/log.h"
#include "net/http_client.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/till_db.h"
#include "till/cashier.h"
#include "till/till_status.h"

#define NEVER INT64_MAX
#define CLEANUP_EVERY_MS (24LL * 3600 * 1000)

struct duka_sync_worker {
    duka_sync_worker_options opt;
    duka_config config;
    duka_monitor *monitor;
    sqlite3 *db;
    duka_till_identity id;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_bool cancel; /* set by stop: a running sync ends after its batch */
    /* guarded by lock */
    bool stopping;
    bool sync_requested;
    bool came_back;     /* the hub just became reachable: sync at once */
    bool state_dirty;   /* persist the monitor's state */
    int64_t next_sync_ms;   /* periodic */
    int64_t retry_at_ms;    /* hub-level backoff after a failed sync */
    int64_t items_due_ms;   /* earliest pending item in backoff */
    int64_t next_cleanup_ms;
    int hub_failures;
    /* All *_ms above are on the monotonic clock (see monotonic_clock). */
};

/* The worker and its monitor schedule on the monotonic clock: a wall clock set back by an
 * hour (NTP, a dead RTC battery) must not postpone the next probe by an hour. Wall-clock
 * times are only for what is stored and shown. */
static int64_t monotonic_now(void *ctx)
{
    (void)ctx;
    return duka_monotonic_ms();
}

static const duka_clock monotonic_clock = {monotonic_now, NULL};

/* A monotonic instant as wall-clock ms (0 stays 0: "never"). */
static int64_t to_wall(int64_t mono_ms)
{
    if (mono_ms == 0 || mono_ms == NEVER)
        return mono_ms;
    return duka_clock_now_ms(NULL) - (duka_monotonic_ms() - mono_ms);
}

void duka_sync_apply_config(const duka_config *cfg)
{
    duka_outbox_policy p = *duka_outbox_get_policy();
    p.backoff_base_ms = duka_config_get(cfg, DUKA_SETTING_BACKOFF_BASE);
    p.backoff_max_ms = duka_config_get(cfg, DUKA_SETTING_BACKOFF_MAX);
    if (p.backoff_max_ms < p.backoff_base_ms)
        p.backoff_max_ms = p.backoff_base_ms;
    int retries = (int)duka_config_get(cfg, DUKA_SETTING_QUEUE_MAX_RETRIES);
    int sale_retries = (int)duka_config_get(cfg, DUKA_SETTING_RETRIES_SALE);
    for (int i = 0; i < p.type_count; i++) {
        duka_queue_type *t = &p.types[i];
        t->max_attempts = retries;
        if (strcmp(t->name, "tax") == 0)
            t->priority = (int)duka_config_get(cfg, DUKA_SETTING_PRIORITY_TAX);
        else if (strcmp(t->name, "sale") == 0) {
            t->priority = (int)duka_config_get(cfg, DUKA_SETTING_PRIORITY_SALE);
            if (sale_retries > 0)
                t->max_attempts = sale_retries;
        } else if (strcmp(t->name, "payment") == 0)
            t->priority = (int)duka_config_get(cfg, DUKA_SETTING_PRIORITY_PAYMENT);
        else if (strcmp(t->name, "backup") == 0)
            t->priority = (int)duka_config_get(cfg, DUKA_SETTING_PRIORITY_BACKUP);
        else if (strcmp(t->name, "bulk") == 0)
            t->priority = (int)duka_config_get(cfg, DUKA_SETTING_PRIORITY_BULK);
    }
    duka_outbox_set_policy(&p);
}

static bool reachable(duka_conn_state s)
{
    return s == DUKA_CONN_ONLINE || s == DUKA_CONN_DEGRADED;
}

/* Monitor listener: runs in whichever thread reported; only flags work for the worker. */
static void on_state_change(void *ctx, duka_conn_state from, duka_conn_state to, int64_t at_ms)
{
    duka_sync_worker *w = ctx;
    (void)at_ms;
    duka_log(DUKA_LOG_INFO, "till", "connectivity %s -> %s", duka_conn_state_name(from),
             duka_conn_state_name(to));
    pthread_mutex_lock(&w->lock);
    w->state_dirty = true;
    if (reachable(to) && !reachable(from)) {
        w->came_back = true;
        w->retry_at_ms = 0;
        w->hub_failures = 0;
    }
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

/* GET /v1/health and feed the monitor. */
static void probe(duka_sync_worker *w)
{
    char url[DUKA_URL_MAX + 16];
    snprintf(url, sizeof(url), "%s/v1/health", w->id.hub_url);
    duka_http_reply reply = {0};
    duka_err err = {0};
    int64_t t0 = duka_monotonic_ms();
    duka_http_options ho = {
        .timeout_ms = (long)duka_config_get(&w->config, DUKA_SETTING_PROBE_TIMEOUT),
        .ca_file = w->id.ca_file,
    };
    duka_rc rc = duka_http_send("GET", url, NULL, NULL, 0, &ho, &reply, &err);
    duka_hub_outcome o = {.reached = rc == DUKA_OK, .http_status = reply.status,
                          .latency_ms = duka_monotonic_ms() - t0};
    char msg[DUKA_ERR_MSG_MAX];
    if (rc != DUKA_OK) {
        o.error = err.msg;
    } else {
        json_t *js = json_loadb(reply.body, reply.len, 0, NULL);
        const char *status = json_string_value(json_object_get(js, "status"));
        if (reply.status == 200 && status == NULL) {
            /* Something answers, but it is not a duka hub: unusable. */
            o.http_status = 502;
            snprintf(msg, sizeof(msg), "not a duka hub at %s", w->id.hub_url);
            o.error = msg;
        } else if (status != NULL && strcmp(status, "ok") != 0) {
            o.services_down = true;
            snprintf(msg, sizeof(msg), "hub reports status '%s'", status);
            o.error = msg;
        } else if (reply.status >= 500) {
            snprintf(msg, sizeof(msg), "hub health answered HTTP %ld", reply.status);
            o.error = msg;
        }
        json_decref(js);
    }
    duka_http_reply_free(&reply);
    duka_monitor_report(w->monitor, &o);
}

/* Feeds a sync's outcome to the monitor. */
static void report_sync(duka_monitor *m, duka_rc rc, const duka_sync_result *res,
                        const duka_err *err)
{
    duka_hub_outcome o = {.reached = res->reached, .http_status = res->http_status,
                          .latency_ms = res->latency_ms,
                          .error = rc == DUKA_OK ? NULL : err->msg};
    if (rc == DUKA_AUTH && !o.reached)
        o.reached = true;
    if (rc == DUKA_PROTOCOL && o.http_status < 500)
        o.http_status = 502; /* answered, but not usable */
    duka_monitor_report(m, &o);
    if (rc == DUKA_OK)
        duka_monitor_sync_succeeded(m);
}

/* One sync on the worker's connection; schedules what comes next. Called without the lock. */
static void run_sync(duka_sync_worker *w)
{
    duka_sync_options so = {.batch_size = (int)duka_config_get(&w->config, DUKA_SETTING_SYNC_BATCH),
                            .pipeline = (int)duka_config_get(&w->config, DUKA_SETTING_SYNC_IN_FLIGHT),
                            .cancel = &w->cancel};
    duka_sync_result res;
    duka_err err = {0};
    duka_rc rc = duka_sync_run(w->db, &so, &res, &err);
    if (atomic_load(&w->cancel))
        return; /* stopping: the items are pending again, sent at the next start */
    report_sync(w->monitor, rc, &res, &err);
    int64_t now = duka_monotonic_ms();
    int64_t due = 0;
    bool found = false;
    duka_outbox_next_due(w->db, &due, &found, NULL);
    if (rc == DUKA_OK && (res.pushed || res.pulled || res.failed || res.conflicts))
        duka_log(DUKA_LOG_INFO, "till",
                 "synced pushed=%lld duplicates=%lld pulled=%lld failed=%lld conflicts=%lld ms=%lld",
                 (long long)res.pushed, (long long)res.duplicates, (long long)res.pulled,
                 (long long)res.failed, (long long)res.conflicts, (long long)res.duration_ms);
    else if (rc != DUKA_OK)
        duka_log(DUKA_LOG_WARN, "till", "sync: %s", err.msg);
    /* next_attempt_ms in the outbox is wall-clock: bring it onto the monotonic scale. */
    int64_t due_mono = NEVER;
    if (found) {
        int64_t ahead = due - duka_clock_now_ms(NULL);
        if (ahead > duka_outbox_wait_max_ms())
            ahead = 0; /* scheduled by a clock since set back: due now (outbox.h) */
        due_mono = duka_monotonic_ms() + ahead;
    }
    pthread_mutex_lock(&w->lock);
    if (rc == DUKA_OK) {
        w->hub_failures = 0;
        w->retry_at_ms = 0;
        w->next_sync_ms = now + duka_config_get(&w->config, DUKA_SETTING_SYNC_INTERVAL);
    } else {
        w->hub_failures++;
        int64_t wait = duka_outbox_backoff_ms(w->hub_failures);
        wait += wait * (int64_t)duka_random_uniform(200) / 1000; /* jitter: a fleet does not retry in step */
        int64_t asked = res.retry_after_s > 0 ? res.retry_after_s * 1000 : 0;
        if (asked > DUKA_OUTBOX_RETRY_AFTER_MAX_MS)
            asked = DUKA_OUTBOX_RETRY_AFTER_MAX_MS;
        if (asked > wait)
            wait = asked;
        w->retry_at_ms = now + wait;
    }
    w->items_due_ms = due_mono;
    pthread_mutex_unlock(&w->lock);
}

static void persist_state(duka_sync_worker *w)
{
    duka_monitor_snapshot snap;
    duka_monitor_get(w->monitor, &snap);
    duka_err err = {0};
    if (duka_till_record_connectivity(w->db, duka_conn_state_name(snap.state),
                                      to_wall(snap.since_ms),
                                      snap.forced_offline, snap.last_error, &err) != DUKA_OK)
        duka_log(DUKA_LOG_WARN, "till", "cannot record connectivity: %s", err.msg);
}

static void cleanup(duka_sync_worker *w)
{
    int64_t now = duka_clock_now_ms(NULL);
    int64_t keep = duka_config_get(&w->config, DUKA_SETTING_QUEUE_RETENTION);
    int64_t deleted = 0;
    duka_err err = {0};
    if (duka_outbox_cleanup(w->db, now - keep, &deleted, &err) != DUKA_OK)
        duka_log(DUKA_LOG_WARN, "till", "retention cleanup: %s", err.msg);
    else if (deleted > 0)
        duka_log(DUKA_LOG_INFO, "till", "retention: removed %lld synced items older than %lld days",
                 (long long)deleted, (long long)(keep / 86400000));
    duka_till_history_cleanup(w->db, now - keep, NULL);
    int64_t ended = 0;
    if (duka_session_cleanup(w->db, duka_config_get(&w->config, DUKA_SETTING_TILL_SESSION_IDLE_TIMEOUT),
                             now, &ended, &err) != DUKA_OK)
        duka_log(DUKA_LOG_WARN, "till", "session cleanup: %s", err.msg);
}

static void wait_until(duka_sync_worker *w, int64_t wake_ms)
{
    int64_t now = duka_monotonic_ms();
    if (wake_ms <= now)
        return;
    int64_t ms = wake_ms - now;
    if (ms > 3600000)
        ms = 3600000; /* re-evaluate at least hourly */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->wake, &w->lock, &ts);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void *worker_main(void *cls)
{
    duka_sync_worker *w = cls;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        int64_t now = duka_monotonic_ms();
        duka_monitor_snapshot snap;
        duka_monitor_get(w->monitor, &snap);
        if (w->state_dirty) {
            w->state_dirty = false;
            pthread_mutex_unlock(&w->lock);
            persist_state(w);
            pthread_mutex_lock(&w->lock);
            continue;
        }
        if (!snap.forced_offline && now >= snap.next_probe_ms) {
            pthread_mutex_unlock(&w->lock);
            probe(w);
            pthread_mutex_lock(&w->lock);
            continue;
        }
        bool online = reachable(snap.state) && !snap.forced_offline;
        bool due = w->sync_requested || w->came_back || now >= w->next_sync_ms ||
                   now >= w->items_due_ms;
        if (online && due && (now >= w->retry_at_ms || w->came_back)) {
            w->sync_requested = false;
            w->came_back = false;
            pthread_mutex_unlock(&w->lock);
            run_sync(w);
            pthread_mutex_lock(&w->lock);
            continue;
        }
        if (now >= w->next_cleanup_ms) {
            w->next_cleanup_ms = now + CLEANUP_EVERY_MS;
            pthread_mutex_unlock(&w->lock);
            cleanup(w);
            pthread_mutex_lock(&w->lock);
            continue;
        }
        /* About to sleep: move the sales written since the last wake-up from the WAL into
         * the database file now, off the cashier's path (no extra wake-ups for it). */
        pthread_mutex_unlock(&w->lock);
        duka_db_checkpoint(w->db);
        pthread_mutex_lock(&w->lock);
        /* A sync asked for while the hub cannot be reached waits for its return (came_back
         * runs it): looping on it spun a core for as long as the till was offline. */
        if (w->stopping || w->state_dirty || w->came_back || (w->sync_requested && online))
            continue;
        int64_t wake = min64(snap.next_probe_ms, w->next_cleanup_ms);
        if (online) {
            int64_t next = min64(w->next_sync_ms, w->items_due_ms);
            if (w->sync_requested)
                next = now;
            if (next < w->retry_at_ms)
                next = w->retry_at_ms;
            wake = min64(wake, next);
        }
        wait_until(w, wake);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

duka_rc duka_sync_worker_start(const duka_sync_worker_options *opt, duka_sync_worker **out,
                               duka_err *err)
{
    *out = NULL;
    duka_sync_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting the sync worker");
    w->opt = *opt;
    w->config = *opt->config;
    atomic_init(&w->cancel, false);
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    w->items_due_ms = 0; /* look at the queue once at start */
    w->next_sync_ms = 0;
    duka_rc rc = duka_till_db_open(opt->db_path, false, &w->db, err);
    if (rc == DUKA_OK)
        rc = duka_till_identity_load(w->db, &w->id, err);
    if (rc == DUKA_OK)
        rc = duka_outbox_recover(w->db, NULL, err); /* what a crash left half-sent */
    duka_monitor_settings ms = {
        .probe_interval_ms = duka_config_get(&w->config, DUKA_SETTING_PROBE_INTERVAL),
        .offline_recheck_max_ms = duka_config_get(&w->config, DUKA_SETTING_OFFLINE_RECHECK_MAX),
        .degraded_latency_ms = duka_config_get(&w->config, DUKA_SETTING_DEGRADED_LATENCY),
        .degraded_failures = (int)duka_config_get(&w->config, DUKA_SETTING_DEGRADED_FAILURES),
    };
    if (rc == DUKA_OK && (w->monitor = duka_monitor_create(&ms, &monotonic_clock)) == NULL)
        rc = duka_err_set(err, DUKA_NOMEM, "out of memory starting the monitor");
    if (rc == DUKA_OK) {
        duka_monitor_subscribe(w->monitor, on_state_change, w);
        if (opt->start_offline)
            duka_monitor_force_offline(w->monitor, true);
        w->state_dirty = true;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            rc = duka_err_set(err, DUKA_INTERNAL, "cannot start the sync worker thread");
        else
            w->thread_started = true;
    }
    if (rc != DUKA_OK) {
        duka_sync_worker_stop(w);
        return rc;
    }
    *out = w;
    return DUKA_OK;
}

void duka_sync_worker_stop(duka_sync_worker *w)
{
    if (w == NULL)
        return;
    if (w->thread_started) {
        atomic_store(&w->cancel, true);
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_broadcast(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
    }
    duka_monitor_destroy(w->monitor);
    duka_db_close(w->db);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void duka_sync_worker_request_sync(duka_sync_worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->sync_requested = true;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

duka_rc duka_sync_worker_sync_now(duka_sync_worker *w, duka_sync_result *res, duka_err *err)
{
    memset(res, 0, sizeof(*res));
    res->connectivity = "offline";
    duka_monitor_snapshot snap;
    duka_monitor_get(w->monitor, &snap);
    if (snap.forced_offline)
        return duka_err_set(err, DUKA_BUSY,
                            "this till is switched offline; switch it back online to sync");
    sqlite3 *db = NULL;
    duka_rc rc = duka_till_db_open(w->opt.db_path, false, &db, err);
    if (rc != DUKA_OK)
        return rc;
    duka_sync_options so = {
        .batch_size = (int)duka_config_get(&w->config, DUKA_SETTING_SYNC_BATCH),
        .pipeline = (int)duka_config_get(&w->config, DUKA_SETTING_SYNC_IN_FLIGHT),
    };
    rc = duka_sync_run(db, &so, res, err);
    duka_db_close(db);
    report_sync(w->monitor, rc, res, err);
    return rc;
}

void duka_sync_worker_set_offline(duka_sync_worker *w, bool offline)
{
    duka_monitor_force_offline(w->monitor, offline);
    pthread_mutex_lock(&w->lock);
    w->state_dirty = true;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void duka_sync_worker_connectivity(duka_sync_worker *w, duka_monitor_snapshot *out)
{
    duka_monitor_get(w->monitor, out);
    out->since_ms = to_wall(out->since_ms);
    out->last_ok_ms = to_wall(out->last_ok_ms);
    out->last_sync_ms = to_wall(out->last_sync_ms);
    out->next_probe_ms = to_wall(out->next_probe_ms);
}
