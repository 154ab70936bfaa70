/* till_server.c — the till's local API and periodic sync (see till_server.h). */
#include "till/till_server.h"

#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json_limits.h"
#include "common/limits.h"
#include "common/log.h"
#include "store/db.h"
#include "net/http_server.h"
#include "sync/sync_client.h"
#include "sync/sync_worker.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/till_db.h"
#include "till/sale_input.h"
#include "till/sale_view.h"
#include "till/till_service.h"
#include "till/till_status.h"

#define TILL_API_BODY_MAX (256u * 1024u)

typedef struct till_app {
    const duka_till_server_options *opt;
    duka_sync_worker *worker;
    duka_alert_settings alerts;
} till_app;

static unsigned status_of(duka_rc rc)
{
    switch (rc) {
    case DUKA_INPUT: case DUKA_USAGE: case DUKA_LIMIT: return 400;
    case DUKA_NOTFOUND: return 404;
    case DUKA_OFFLINE: case DUKA_AUTH: case DUKA_PROTOCOL: return 502;
    case DUKA_BUSY: return 409;
    default: return 500;
    }
}

/* Parses a request body of the local API. NULL, with the 400 reply set, when it is not JSON
 * (invalid_json) or nests deeper than DUKA_JSON_DEPTH_MAX (invalid_body). */
static json_t *parse_body(duka_http_exchange *ex)
{
    json_error_t jerr;
    json_t *body = json_loadb(ex->body, ex->body_len, 0, &jerr);
    if (body == NULL) {
        duka_http_error(ex, 400, "invalid_json", "body is not valid JSON: %s", jerr.text);
        return NULL;
    }
    duka_err err = {0};
    if (duka_json_depth_check(body, DUKA_JSON_DEPTH_MAX, "body", &err) != DUKA_OK) {
        json_decref(body);
        duka_http_error(ex, 400, "invalid_body", "%s", err.msg);
        return NULL;
    }
    return body;
}

/* The HTTP status of a refused sale: the cashier's mistakes are 400, the till's own trouble
 * (not set up, its disk) is 409 / 503. */
static unsigned refusal_status(const char *refusal)
{
    if (refusal == NULL)
        return 500;
    if (strcmp(refusal, "not_initialised") == 0)
        return 409;
    if (strcmp(refusal, "store") == 0)
        return 503;
    return 400;
}

static void handle_sale(till_app *app, sqlite3 *db, duka_http_exchange *ex)
{
    json_t *body = parse_body(ex);
    duka_err err = {0};
    duka_sale_input *in = NULL;
    duka_sale *sale = NULL;
    if (body == NULL)
        goto out;
    in = duka_sale_input_new();
    sale = duka_sale_new();
    if (in == NULL || sale == NULL) {
        duka_http_error(ex, 500, "internal", "out of memory");
        goto out;
    }
    /* The same reader and checks as `duka sell` (till/sale_input.h): the same sales pass. */
    if (duka_sale_input_from_json(body, in, &err) != DUKA_OK) {
        duka_http_error(ex, 400, "invalid_sale", "%s", err.msg);
        goto out;
    }
    duka_checkout_result res;
    duka_checkout_options co = {
        .line_max_cents = duka_config_get(app->opt->config, DUKA_SETTING_SALE_LINE_MAX),
        .sale_max_cents = duka_config_get(app->opt->config, DUKA_SETTING_SALE_MAX),
    };
    if (duka_checkout_sell(db, NULL, in, &co, sale, &res, &err) != DUKA_OK) {
        duka_http_error(ex, refusal_status(res.refusal), res.refusal ? res.refusal : "internal",
                        "%s", err.msg);
        goto out;
    }
    for (int i = 0; i < res.warning_count; i++)
        duka_log(DUKA_LOG_WARN, "till", "sale %s: %s", sale->receipt_no, res.warnings[i].message);
    duka_sync_worker_request_sync(app->worker); /* forward it soon if the hub is reachable */
    ex->status = 201;
    ex->reply = duka_sale_reply_json(sale, &res);
out:
    json_decref(body);
    duka_sale_input_free(in);
    duka_sale_free(sale);
}

/* The status with the monitor's live view laid over what the database recorded. */
static duka_rc live_status(till_app *app, sqlite3 *db, json_t **out, duka_err *err)
{
    duka_rc rc = duka_till_status_json(db, &app->alerts, out, err);
    if (rc != DUKA_OK)
        return rc;
    duka_monitor_snapshot snap;
    duka_sync_worker_connectivity(app->worker, &snap);
    char iso[40];
    duka_clock_format_iso(snap.since_ms, iso, sizeof(iso));
    json_object_set_new(*out, "connectivity", json_string(duka_conn_state_name(snap.state)));
    json_object_set_new(*out, "connectivity_since", json_string(iso));
    json_object_set_new(*out, "offline_switch", json_boolean(snap.forced_offline));
    json_object_set_new(*out, "last_error", json_string(snap.last_error));
    return DUKA_OK;
}

static void handle_offline(till_app *app, sqlite3 *db, duka_http_exchange *ex)
{
    json_t *body = parse_body(ex);
    if (body == NULL)
        return;
    const json_t *v = json_object_get(body, "offline");
    if (!json_is_boolean(v)) {
        json_decref(body);
        duka_http_error(ex, 400, "invalid_body", "expected {\"offline\": true|false}");
        return;
    }
    duka_sync_worker_set_offline(app->worker, json_is_true(v));
    json_decref(body);
    duka_err err = {0};
    json_t *st = NULL;
    if (live_status(app, db, &st, &err) != DUKA_OK) {
        duka_http_error(ex, 500, "error", "%s", err.msg);
        return;
    }
    ex->status = 200;
    ex->reply = st;
}

static void handle(void *cls, duka_http_exchange *ex)
{
    till_app *app = cls;
    duka_err err = {0};
    sqlite3 *db = NULL;
    if (duka_till_db_open(app->opt->db, false, &db, &err) != DUKA_OK) {
        duka_http_error(ex, 503, "store_unavailable", "%s", err.msg);
        return;
    }
    bool get = strcmp(ex->method, "GET") == 0, post = strcmp(ex->method, "POST") == 0;
    json_t *reply = NULL;
    if (get && strcmp(ex->path, "/api/status") == 0) {
        if (live_status(app, db, &reply, &err) == DUKA_OK) {
            ex->status = 200;
            ex->reply = reply;
        }
    } else if (get && strcmp(ex->path, "/api/catalog") == 0) {
        if (duka_catalog_list(db, &reply, &err) == DUKA_OK) {
            ex->status = 200;
            ex->reply = reply;
        }
    } else if (get && strcmp(ex->path, "/api/history") == 0) {
        const char *l = duka_http_query(ex, "limit");
        long limit = l ? strtol(l, NULL, 10) : 100;
        if (limit < 1 || limit > 10000)
            limit = 100;
        if (duka_till_history_json(db, (int)limit, &reply, &err) == DUKA_OK) {
            ex->status = 200;
            ex->reply = reply;
        }
    } else if (post && strcmp(ex->path, "/api/sales") == 0) {
        handle_sale(app, db, ex);
    } else if (post && strcmp(ex->path, "/api/sync") == 0) {
        duka_sync_result res;
        duka_rc rc = duka_sync_worker_sync_now(app->worker, &res, &err);
        ex->status = rc == DUKA_OK ? 200 : status_of(rc);
        ex->reply = duka_sync_result_json(&res);
        if (rc != DUKA_OK)
            json_object_set_new(ex->reply, "error", json_string(err.msg));
    } else if (post && strcmp(ex->path, "/api/offline") == 0) {
        handle_offline(app, db, ex);
    } else {
        duka_http_error(ex, 404, "not_found", "no endpoint %s %s", ex->method, ex->path);
    }
    if (ex->reply == NULL && err.rc != DUKA_OK)
        duka_http_error(ex, status_of(err.rc), "error", "%s", err.msg);
    duka_db_close(db);
}

/* Waits for SIGINT or SIGTERM; a SIGUSR1 in between (a sale or a retry made from the command
 * line on this database: till_service.h) asks the worker for a sync and waits on. */
static int serve_until_stopped(till_app *app)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig != SIGUSR1)
            return sig;
        duka_sync_worker_request_sync(app->worker);
    }
}

duka_rc duka_till_serve(const duka_till_server_options *opt, duka_err *err)
{
    char problems[1024];
    duka_config_problems_summary(opt->config, problems, sizeof(problems));
    till_app app = {
        .opt = opt,
        .alerts = {.pending_threshold = duka_config_get(opt->config, DUKA_SETTING_QUEUE_ALERT_PENDING),
                   .offline_after_ms = duka_config_get(opt->config, DUKA_SETTING_ALERT_OFFLINE_AFTER),
                   .config_problems = problems},
    };
    /* One service per till database, held for the process's life (till_service.h), taken
     * before the worker recovers what a crash left half-sent — and only for a database that
     * is one (a missing or foreign file gets no lock file beside it). */
    sqlite3 *check = NULL;
    duka_rc rc = duka_till_db_open(opt->db, false, &check, err);
    duka_db_close(check);
    if (rc != DUKA_OK)
        return rc;
    int lock = -1;
    rc = duka_till_service_lock(opt->db, &lock, err);
    if (rc != DUKA_OK)
        return rc;
    /* The port next, before any thread acts: a busy port stops the till before its worker
     * probed or synced anything. */
    int listen_fd = -1;
    rc = duka_http_listen_open(opt->listen, false, &listen_fd, err);
    if (rc != DUKA_OK) {
        duka_till_service_unlock(lock);
        return rc;
    }
    duka_sync_worker_options wo = {.db_path = opt->db, .config = opt->config,
                                   .start_offline = opt->start_offline};
    /* Every thread started from here on inherits these blocked: only sigwait sees them. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    duka_block_stop_signals();
    rc = duka_sync_worker_start(&wo, &app.worker, err);
    if (rc != DUKA_OK) {
        close(listen_fd);
        duka_till_service_unlock(lock);
        return rc;
    }
    duka_http_server *srv = NULL;
    duka_http_server_options http = {.max_body_bytes = TILL_API_BODY_MAX,
                                      .have_listen_fd = true, .listen_fd = listen_fd};
    rc = duka_http_server_start_opts(opt->listen, &http, handle, &app, &srv, err);
    if (rc == DUKA_OK) {
        duka_log(DUKA_LOG_INFO, "till", "serving %s on http://%s (sync every %lld s%s; time zone %s)%s%s",
                 opt->db, opt->listen,
                 (long long)(duka_config_get(opt->config, DUKA_SETTING_SYNC_INTERVAL) / 1000),
                 opt->start_offline ? ", switched offline" : "",
                 duka_config_text(opt->config, DUKA_SETTING_SHOP_TIMEZONE),
                 problems[0] ? "; WARNING: " : "", problems);
        int sig = serve_until_stopped(&app);
        duka_log(DUKA_LOG_INFO, "till", "signal %d: stopping", sig);
        duka_http_server_stop(srv);
    }
    duka_sync_worker_stop(app.worker);
    duka_till_service_unlock(lock);
    return rc;
}
