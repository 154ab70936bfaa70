/* till_server.c — the till's local API and periodic sync (see till_server.h). */
#include "till/till_server.h"

#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "store/db.h"
#include "net/http_server.h"
#include "sync/sync_client.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/till_db.h"
#include "till/till_status.h"

#define TILL_API_BODY_MAX (256u * 1024u)

typedef struct till_app {
    const duka_till_server_options *opt;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    bool sync_requested;
} till_app;

static unsigned status_of(duka_rc rc)
{
    switch (rc) {
    case DUKA_INPUT: case DUKA_USAGE: case DUKA_LIMIT: return 400;
    case DUKA_NOTFOUND: return 404;
    case DUKA_OFFLINE: case DUKA_AUTH: case DUKA_PROTOCOL: return 502;
    default: return 500;
    }
}

static void handle_sale(sqlite3 *db, duka_http_exchange *ex)
{
    json_error_t jerr;
    json_t *body = json_loadb(ex->body, ex->body_len, 0, &jerr);
    const json_t *items = json_object_get(body, "items");
    const char *pay = json_string_value(json_object_get(body, "pay"));
    duka_err err = {0};
    duka_checkout_item *lines = NULL;
    duka_sale *sale = NULL;
    if (body == NULL) {
        duka_http_error(ex, 400, "invalid_json", "body is not valid JSON: %s", jerr.text);
        goto out;
    }
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
    ex->status = 201;
    ex->reply = json_pack("{s:s, s:I, s:I, s:s, s:s}", "receipt_no", sale->receipt_no, "total",
                          (json_int_t)sale->total_cents, "tax", (json_int_t)sale->tax_cents,
                          "sync", "pending", "command_id", command_id);
out:
    json_decref(body);
    free(lines);
    duka_sale_free(sale);
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
        if (duka_till_status_json(db, &reply, &err) == DUKA_OK) {
            ex->status = 200;
            ex->reply = reply;
        }
    } else if (get && strcmp(ex->path, "/api/catalog") == 0) {
        if (duka_catalog_list(db, &reply, &err) == DUKA_OK) {
            ex->status = 200;
            ex->reply = reply;
        }
    } else if (post && strcmp(ex->path, "/api/sales") == 0) {
        handle_sale(db, ex);
    } else if (post && strcmp(ex->path, "/api/sync") == 0) {
        duka_sync_options so = {.batch_size = app->opt->batch_size};
        duka_sync_result res;
        duka_rc rc = duka_sync_run(db, &so, &res, &err);
        ex->status = rc == DUKA_OK ? 200 : status_of(rc);
        ex->reply = duka_sync_result_json(&res);
        if (rc != DUKA_OK)
            json_object_set_new(ex->reply, "error", json_string(err.msg));
    } else {
        duka_http_error(ex, 404, "not_found", "no endpoint %s %s", ex->method, ex->path);
    }
    if (ex->reply == NULL && err.rc != DUKA_OK)
        duka_http_error(ex, status_of(err.rc), "error", "%s", err.msg);
    duka_db_close(db);
}

static void *sync_loop(void *cls)
{
    till_app *app = cls;
    sqlite3 *db = NULL;
    duka_err err = {0};
    if (duka_till_db_open(app->opt->db, false, &db, &err) != DUKA_OK) {
        duka_log(DUKA_LOG_ERROR, "till", "sync worker cannot open %s: %s", app->opt->db, err.msg);
        return NULL;
    }
    pthread_mutex_lock(&app->lock);
    while (!app->stopping) {
        pthread_mutex_unlock(&app->lock);
        duka_sync_options so = {.batch_size = app->opt->batch_size};
        duka_sync_result res;
        duka_err_clear(&err);
        duka_rc rc = duka_sync_run(db, &so, &res, &err);
        if (rc == DUKA_OK && (res.pushed || res.pulled || res.failed || res.conflicts))
            duka_log(DUKA_LOG_INFO, "till", "synced pushed=%lld duplicates=%lld pulled=%lld "
                     "failed=%lld conflicts=%lld ms=%lld", (long long)res.pushed,
                     (long long)res.duplicates, (long long)res.pulled, (long long)res.failed,
                     (long long)res.conflicts, (long long)res.duration_ms);
        else if (rc != DUKA_OK)
            duka_log(DUKA_LOG_WARN, "till", "sync: %s", err.msg);
        pthread_mutex_lock(&app->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += app->opt->sync_interval_s;
        while (!app->stopping && !app->sync_requested)
            if (pthread_cond_timedwait(&app->wake, &app->lock, &until) == ETIMEDOUT)
                break;
        app->sync_requested = false;
    }
    pthread_mutex_unlock(&app->lock);
    duka_db_close(db);
    return NULL;
}

duka_rc duka_till_serve(const duka_till_server_options *opt, duka_err *err)
{
    till_app app = {.opt = opt};
    sqlite3 *db = NULL;
    duka_till_identity id;
    /* Refuse to serve a database that is missing or not initialised. */
    duka_rc rc = duka_till_db_open(opt->db, false, &db, err);
    if (rc == DUKA_OK)
        rc = duka_till_identity_load(db, &id, err);
    duka_db_close(db);
    if (rc != DUKA_OK)
        return rc;
    pthread_mutex_init(&app.lock, NULL);
    pthread_cond_init(&app.wake, NULL);
    duka_block_stop_signals();
    duka_http_server *srv = NULL;
    rc = duka_http_server_start(opt->listen, TILL_API_BODY_MAX, handle, &app, &srv, err);
    pthread_t worker;
    bool worker_started = false;
    if (rc == DUKA_OK && opt->sync_interval_s > 0)
        worker_started = pthread_create(&worker, NULL, sync_loop, &app) == 0;
    if (rc == DUKA_OK) {
        duka_log(DUKA_LOG_INFO, "till", "terminal %s serving %s on http://%s (hub %s, sync every %d s)",
                 id.terminal, opt->db, opt->listen, id.hub_url, opt->sync_interval_s);
        int sig = duka_wait_for_stop_signal();
        duka_log(DUKA_LOG_INFO, "till", "signal %d: stopping", sig);
        pthread_mutex_lock(&app.lock);
        app.stopping = true;
        pthread_cond_broadcast(&app.wake);
        pthread_mutex_unlock(&app.lock);
        duka_http_server_stop(srv);
        if (worker_started)
            pthread_join(worker, NULL);
    }
    pthread_cond_destroy(&app.wake);
    pthread_mutex_destroy(&app.lock);
    return rc;
}
