/* sim_base.c — what the `duka sim` simulators share (see sim_base.h). */
#include "sim/sim_base.h"

#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"
#include "net/http_router.h"

#define SIM_WAIT_SLICE_MS 200 /* how often a held reply looks at its client */

void duka_sim_base_init(duka_sim_base *b, uint64_t seed)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &attr);
    pthread_condattr_destroy(&attr);
    b->rng = seed;
    b->outage_epoch_ms = duka_monotonic_ms();
}

void duka_sim_base_destroy(duka_sim_base *b)
{
    sqlite3_close(b->db);
    b->db = NULL;
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
}

duka_rc duka_sim_fail(sqlite3 *db, const char *what, duka_err *err)
{
    return duka_err_set(err, DUKA_STORE, "simulator state: %s: %s", what,
                        db ? sqlite3_errmsg(db) : "no database");
}

duka_rc duka_sim_exec(sqlite3 *db, const char *sql, duka_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        duka_err_set(err, DUKA_STORE, "simulator state: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return DUKA_STORE;
    }
    return DUKA_OK;
}

void duka_sim_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *duka_sim_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        duka_log(DUKA_LOG_ERROR, "sim", "preparing a query: %s", sqlite3_errmsg(db));
        return NULL;
    }
    return st;
}

int64_t duka_sim_scalar_int(sqlite3 *db, const char *sql, int64_t fallback)
{
    sqlite3_stmt *st = duka_sim_prepare(db, sql);
    int64_t v = fallback;
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

duka_rc duka_sim_state_open(duka_sim_base *b, const char *path, const char *schema,
                            duka_rc (*init)(void *ctx, duka_err *err), void *ctx,
                            duka_err *err)
{
    if (sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        duka_err_set(err, DUKA_STORE, "--state '%s' cannot be opened: %s", path,
                     b->db ? sqlite3_errmsg(b->db) : "out of memory");
        return DUKA_STORE;
    }
    sqlite3_busy_timeout(b->db, DUKA_DB_BUSY_TIMEOUT_MS);
    int64_t app_id = duka_sim_scalar_int(b->db, "PRAGMA application_id", -1);
    int64_t tables = duka_sim_scalar_int(b->db, "SELECT count(*) FROM sqlite_master", -1);
    if (app_id < 0 || tables < 0)
        return duka_err_set(err, DUKA_INPUT, "--state '%s' is not a SQLite database", path);
    if (app_id != DUKA_SIM_APP_ID && (app_id != 0 || tables > 0))
        return duka_err_set(err, DUKA_INPUT,
                            "--state '%s' is not a simulator state file (a till or hub "
                            "database?)",
                            path);
    /* WAL with synchronous=NORMAL: a committed request survives the simulator being killed
     * (what the tests and chaos runs do to it), though not a power cut; a simulator need not
     * pay an fsync per request on a machine its clients share. */
    if (duka_sim_exec(b->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err) !=
        DUKA_OK)
        return DUKA_STORE;
    if (duka_sim_exec(b->db, "BEGIN IMMEDIATE", err) != DUKA_OK)
        return DUKA_STORE;
    duka_rc rc = duka_sim_exec(b->db, schema, err);
    if (rc == DUKA_OK)
        rc = duka_sim_exec(b->db, "PRAGMA application_id = " DUKA_STRINGIFY(DUKA_SIM_APP_ID),
                           err);
    if (rc == DUKA_OK && init != NULL)
        rc = init(ctx, err);
    if (rc == DUKA_OK)
        rc = duka_sim_exec(b->db, "COMMIT", err);
    if (rc != DUKA_OK)
        duka_sim_rollback(b->db);
    return rc;
}

/* splitmix64: small, seedable, good enough to draw faults and simulated identifiers. */
uint64_t duka_sim_next_u64(duka_sim_base *b)
{
    uint64_t z = (b->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double duka_sim_draw_unit(duka_sim_base *b)
{
    return (double)(duka_sim_next_u64(b) >> 11) * 0x1.0p-53;
}

bool duka_sim_draw(duka_sim_base *b, double p)
{
    if (p <= 0.0)
        return false;
    if (p >= 1.0)
        return true;
    pthread_mutex_lock(&b->lock);
    bool hit = duka_sim_draw_unit(b) < p;
    pthread_mutex_unlock(&b->lock);
    return hit;
}

bool duka_sim_outage_on(duka_sim_base *b, bool forced, long every_s, long for_s)
{
    if (forced)
        return true;
    if (every_s <= 0 || for_s <= 0)
        return false;
    pthread_mutex_lock(&b->lock);
    int64_t t = duka_monotonic_ms() - b->outage_epoch_ms;
    pthread_mutex_unlock(&b->lock);
    int64_t every = (int64_t)every_s * 1000;
    return t >= every && t % every < (int64_t)for_s * 1000;
}

void duka_sim_outage_reschedule(duka_sim_base *b)
{
    pthread_mutex_lock(&b->lock);
    b->outage_epoch_ms = duka_monotonic_ms();
    pthread_mutex_unlock(&b->lock);
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void duka_sim_wait_ms(duka_sim_base *b, long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_mutex_lock(&b->lock);
    while (!b->stopping)
        if (pthread_cond_timedwait(&b->wake, &b->lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&b->lock);
}

bool duka_sim_client_gone(const duka_http_exchange *ex)
{
    if (ex->conn == NULL)
        return false;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(ex->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return true;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return true;
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void duka_sim_hold_reply(duka_sim_base *b, const duka_http_exchange *ex, int64_t max_ms)
{
    int64_t end = duka_monotonic_ms() + max_ms;
    pthread_mutex_lock(&b->lock);
    b->held++;
    while (!b->stopping && duka_monotonic_ms() < end) {
        struct timespec ts;
        deadline_in(&ts, SIM_WAIT_SLICE_MS);
        pthread_cond_timedwait(&b->wake, &b->lock, &ts);
        pthread_mutex_unlock(&b->lock);
        bool gone = duka_sim_client_gone(ex);
        pthread_mutex_lock(&b->lock);
        if (gone)
            break;
    }
    b->held--;
    pthread_mutex_unlock(&b->lock);
}

void duka_sim_wake_all(duka_sim_base *b)
{
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_broadcast(&b->wake);
    pthread_mutex_unlock(&b->lock);
}

bool duka_sim_stopping(duka_sim_base *b)
{
    pthread_mutex_lock(&b->lock);
    bool s = b->stopping;
    pthread_mutex_unlock(&b->lock);
    return s;
}

bool duka_sim_control_allowed(duka_http_exchange *ex)
{
    if (duka_http_peer_is_loopback(ex))
        return true;
    duka_http_error(ex, 403, "forbidden", "the simulator's control is loopback only");
    return false;
}

bool duka_sim_knob_number(duka_http_exchange *ex, const char *key, const json_t *v, double lo,
                          double hi, bool whole, double *out)
{
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    if (!isfinite(d) || d < lo || d > hi || (whole && d != nearbyint(d))) {
        duka_http_error(ex, 400, "invalid_knob", "%s must be %s %g..%g", key,
                        whole ? "a whole number" : "a number", lo, hi);
        return false;
    }
    *out = d;
    return true;
}

json_t *duka_sim_body_object(duka_http_exchange *ex)
{
    json_error_t jerr;
    json_t *body = json_loadb(ex->body, ex->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        duka_http_error(ex, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return body;
}

void duka_sim_reply_as_text(duka_http_exchange *ex)
{
    if (ex->reply == NULL)
        return;
    char *text = json_dumps(ex->reply, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (text != NULL)
        duka_http_reply_bytes(ex, ex->status, "application/json", text, strlen(text), true);
}

duka_rc duka_sim_serve(duka_sim_base *b, const duka_sim_run *run, duka_err *err)
{
    duka_http_server *srv = NULL;
    duka_block_stop_signals();
    duka_http_server_options http = {
        .max_body_bytes = run->max_body_bytes,
        .have_listen_fd = true,
        .listen_fd = run->listen_fd,
    };
    pthread_t thread;
    bool started = false;
    duka_rc rc = duka_http_server_start_opts(run->listen, &http, run->handler, run->app, &srv,
                                             err);
    if (rc == DUKA_OK && run->worker != NULL) {
        started = pthread_create(&thread, NULL, run->worker, run->app) == 0;
        if (!started)
            rc = duka_err_set(err, DUKA_INTERNAL, "cannot start the simulator's worker thread");
    }
    if (rc == DUKA_OK) {
        printf("%s\n", run->banner);
        fflush(stdout);
        int sig = duka_wait_for_stop_signal();
        duka_log(DUKA_LOG_INFO, "sim", "signal %d: stopping", sig);
    }
    duka_sim_wake_all(b);
    duka_http_server_stop(srv);
    if (started)
        pthread_join(thread, NULL);
    return rc;
}
