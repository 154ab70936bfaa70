/* till_server.c — the till's local API and periodic sync (see till_server.h). */
#include "till/till_server.h"

#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

static void handle_sale(till_app *app, sqlite3 *db, duka_http_exchange *ex)
{
    json_t *body = parse_body(ex);
    const json_t *items = json_object_get(body, "items");
    const char *pay = json_string_value(json_object_get(body, "pay"));
    duka_err err = {0};
    duka_checkout_item *lines = NULL;
    duka_sale *sale = NULL;
    if (body == NULL)
        goto out;
    size_t n = json_array_size(items);
    if (!json_is_array(items) || n < 1 || n > DUKA_SALE_LINES_MAX) {
        duka_http_error(ex, 400, "invalid_sale", "items: expected 1 to %d items", DUKA_SALE_LINES_MAX);
        goto out;
    }
    lines = calloc(n, sizeof(*lines));
    sale = duka_sale_new();
    if (lines == NULL || sale == NULL) {
        duka_http_error(ex, 500, "internal", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(items, i);
        const char *sku = json_string_value(json_object_get(it, "sku"));
        const json_t *q = json_object_get(it, "qty");
        char text[DUKA_SKU_MAX + 40];
        if (json_is_string(q))
            snprintf(text, sizeof(text), "%s*%s", sku ? sku : "", json_string_value(q));
        else if (json_is_integer(q))
            snprintf(text, sizeof(text), "%s*%lld", sku ? sku : "", (long long)json_integer_value(q));
        else
            snprintf(text, sizeof(text), "%s", sku ? sku : "");
        if (duka_checkout_parse_item(text, (int)i + 1, &lines[i], &err) != DUKA_OK)
            break;
    }
    duka_checkout_payment payment;
    char command_id[DUKA_UUID_STR_LEN + 1];
    if (err.rc == DUKA_OK)
        duka_checkout_parse_payment(pay ? pay : "cash", &payment, &err);
    if (err.rc == DUKA_OK)
        duka_checkout_commit(db, NULL, lines, (int)n, &payment, sale, command_id, &err);
    if (err.rc != DUKA_OK) {
        duka_http_error(ex, status_of(err.rc), "sale_refused", "%s", err.msg);
        goto out;
    }
    duka_sync_worker_request_sync(app->worker); /* forward it soon if the hub is reachable */
    ex->status = 201;
    ex->reply = json_pack("{s:s, s:I, s:I, s:s, s:s}", "receipt_no", sale->receipt_no, "total",
                          (json_int_t)sale->total_cents, "tax", (json_int_t)sale->tax_cents,
                          "sync", "pending", "command_id", command_id);
out:
    json_decref(body);
    free(lines);
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

duka_rc duka_till_serve(const duka_till_server_options *opt, duka_err *err)
{
    till_app app = {
        .opt = opt,
        .alerts = {.pending_threshold = duka_config_get(opt->config, DUKA_SETTING_QUEUE_ALERT_PENDING),
                   .offline_after_ms = duka_config_get(opt->config, DUKA_SETTING_ALERT_OFFLINE_AFTER)},
    };
    duka_sync_worker_options wo = {.db_path = opt->db, .config = opt->config,
                                   .start_offline = opt->start_offline};
    duka_block_stop_signals();
    duka_rc rc = duka_sync_worker_start(&wo, &app.worker, err);
    if (rc != DUKA_OK)
        return rc;
    duka_http_server *srv = NULL;
    rc = duka_http_server_start(opt->listen, TILL_API_BODY_MAX, handle, &app, &srv, err);
    if (rc == DUKA_OK) {
        duka_log(DUKA_LOG_INFO, "till", "serving %s on http://%s (sync every %lld s%s)", opt->db,
                 opt->listen,
                 (long long)(duka_config_get(opt->config, DUKA_SETTING_SYNC_INTERVAL) / 1000),
                 opt->start_offline ? ", switched offline" : "");
        int sig = duka_wait_for_stop_signal();
        duka_log(DUKA_LOG_INFO, "till", "signal %d: stopping", sig);
        duka_http_server_stop(srv);
    }
    duka_sync_worker_stop(app.worker);
    return rc;
}
