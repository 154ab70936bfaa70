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
#include "net/http_router.h"
#include "net/http_server.h"
#include "sync/sync_client.h"
#include "sync/sync_worker.h"
#include "outbox/outbox.h"
#include "till/cashier.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/etims_receipt.h"
#include "till/till_db.h"
#include "till/sale_input.h"
#include "till/refund.h"
#include "till/sale_view.h"
#include "till/till_service.h"
#include "till/till_status.h"
#include "till/web_assets.h"

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
    if (strcmp(refusal, "not_found") == 0)
        return 404;
    if (strcmp(refusal, "refund_exceeds_sale") == 0 || strcmp(refusal, "too_many_refunds") == 0)
        return 409;
    return 400;
}

/* ---- who may call what (docs/SECURITY.md, "The till's local API") ---- */

/* Route flags. ROUTE_ASSET: the embedded UI, open to all (it holds no data). ROUTE_READ: open
 * to a loopback client whose Host names this machine (the status bar, the login screen), else a
 * session. ROUTE_WRITE: a session. ROUTE_MANAGER: a manager's session. ROUTE_LOGIN: open. */
enum {
    ROUTE_ASSET = 1u << 0,
    ROUTE_READ = 1u << 1,
    ROUTE_WRITE = 1u << 2,
    ROUTE_MANAGER = 1u << 3,
    ROUTE_LOGIN = 1u << 4,
};

#define SESSION_COOKIE "duka_session"

typedef struct request_ctx {
    sqlite3 *db;
    bool has_session;
    char token[DUKA_SESSION_TOKEN_LEN + 1];
    duka_session session;
} request_ctx;

/* True when the Host header names this machine ("localhost", 127.x.x.x, [::1], with any port):
 * a page of another site that a DNS trick pointed at 127.0.0.1 sends its own name and is not
 * served the open reads. */
static bool host_is_local(const duka_http_exchange *ex)
{
    if (ex->conn == NULL)
        return true;
    const char *h = duka_http_header(ex, "Host");
    if (h == NULL)
        return false;
    char host[128];
    snprintf(host, sizeof(host), "%s", h);
    if (host[0] == '[')
        return strncmp(host, "[::1]", 5) == 0 && (host[5] == '\0' || host[5] == ':');
    char *colon = strchr(host, ':');
    if (colon != NULL)
        *colon = '\0';
    if (strcmp(host, "localhost") == 0)
        return true;
    unsigned a, b, c, d;
    char tail;
    return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256;
}

/* The session token of the request: the cookie the UI holds, or a bearer token (scripts). */
static const char *request_token(const duka_http_exchange *ex)
{
    const char *t = duka_http_bearer(ex);
    return t != NULL ? t : duka_http_cookie(ex, SESSION_COOKIE);
}

static int64_t session_idle_ms(const till_app *app)
{
    return duka_config_get(app->opt->config, DUKA_SETTING_TILL_SESSION_IDLE_TIMEOUT);
}

/* Checks the route's flags against the request; false with the 401 / 403 reply set. */
static bool authorise(till_app *app, request_ctx *ctx, unsigned flags, duka_http_exchange *ex)
{
    const char *token = request_token(ex);
    duka_err err = {0};
    if (token != NULL && strlen(token) <= DUKA_SESSION_TOKEN_LEN &&
        duka_session_check(ctx->db, NULL, token, session_idle_ms(app), &ctx->session, &err) ==
            DUKA_OK) {
        ctx->has_session = true;
        snprintf(ctx->token, sizeof(ctx->token), "%s", token);
    }
    if (flags & ROUTE_LOGIN)
        return true;
    if ((flags & ROUTE_READ) && (ctx->has_session ||
                                 (duka_http_peer_is_loopback(ex) && host_is_local(ex))))
        return true;
    if (!ctx->has_session) {
        duka_http_error(ex, 401, "unauthorized", "%s",
                        token != NULL ? "the session has ended: log in again"
                                      : "log in first: this needs a cashier's session");
        return false;
    }
    if ((flags & ROUTE_MANAGER) && strcmp(ctx->session.cashier.role, "manager") != 0) {
        duka_http_error(ex, 403, "manager_only", "only a manager may do this (%s is a %s)",
                        ctx->session.cashier.name, ctx->session.cashier.role);
        return false;
    }
    return true;
}

static json_t *cashier_json(const duka_cashier *c)
{
    return json_pack("{s:s, s:s, s:s}", "id", c->id, "name", c->name, "role", c->role);
}

/* ---- handlers ---- */

static void route_asset(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    (void)vctx;
    const duka_web_asset *a = duka_web_asset_find(ex->path);
    if (a == NULL) {
        duka_http_error(ex, 404, "not_found", "no page %.200s", ex->path);
        return;
    }
    /* Revalidated on every load (a new till binary brings a new UI at once), answered 304
     * when unchanged. */
    duka_http_reply_header(ex, "Cache-Control", "no-cache");
    duka_http_reply_header(ex, "ETag", a->etag);
    duka_http_reply_header(ex, "X-Content-Type-Options", "nosniff");
    const char *inm = duka_http_header(ex, "If-None-Match");
    if (inm != NULL && strcmp(inm, a->etag) == 0) {
        duka_http_reply_bytes(ex, 304, a->content_type, "", 0, false);
        return;
    }
    if (strcmp(a->path, "/index.html") == 0) {
        duka_http_reply_header(ex, "Content-Security-Policy",
                               "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    }
    duka_http_reply_bytes(ex, 200, a->content_type, a->data, a->len, false);
}

/* The reply of `duka sell` with what the UI's receipt shows besides (lines, VAT per band, the
 * eTIMS signature or null). */
static json_t *sale_reply(const duka_sale *sale, const duka_checkout_result *res,
                          const duka_etims_receipt *etims)
{
    json_t *o = duka_sale_reply_json(sale, res);
    json_t *detail = duka_sale_detail_json(sale, etims);
    if (o != NULL && detail != NULL)
        json_object_update(o, detail);
    json_decref(detail);
    return o;
}

static void route_sale(void *cls, void *vctx, duka_http_exchange *ex)
{
    till_app *app = cls;
    request_ctx *ctx = vctx;
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
        .cashier = &ctx->session.cashier, /* a session is required: ROUTE_WRITE */
    };
    if (duka_checkout_sell(ctx->db, NULL, in, &co, sale, &res, &err) != DUKA_OK) {
        duka_http_error(ex, refusal_status(res.refusal), res.refusal ? res.refusal : "internal",
                        "%s", err.msg);
        goto out;
    }
    for (int i = 0; i < res.warning_count; i++)
        duka_log(DUKA_LOG_WARN, "till", "sale %s: %s", sale->receipt_no, res.warnings[i].message);
    duka_sync_worker_request_sync(app->worker); /* forward it soon if the hub is reachable */
    ex->status = 201;
    ex->reply = sale_reply(sale, &res, NULL); /* just made: never signed yet */
out:
    json_decref(body);
    duka_sale_input_free(in);
    duka_sale_free(sale);
}

/* POST /api/refunds: gives back (part of) a sale of this till (till/refund.h), offline. */
static void route_refund(void *cls, void *vctx, duka_http_exchange *ex)
{
    till_app *app = cls;
    request_ctx *ctx = vctx;
    json_t *body = parse_body(ex);
    duka_err err = {0};
    duka_refund_input *in = NULL;
    duka_sale *refund = NULL;
    if (body == NULL)
        goto out;
    in = duka_refund_input_new();
    refund = duka_sale_new();
    if (in == NULL || refund == NULL) {
        duka_http_error(ex, 500, "internal", "out of memory");
        goto out;
    }
    if (duka_refund_input_from_json(body, in, &err) != DUKA_OK) {
        duka_http_error(ex, 400, "invalid_refund", "%s", err.msg);
        goto out;
    }
    duka_checkout_result res;
    if (duka_refund_commit(ctx->db, NULL, in, &ctx->session.cashier, refund, &res, &err) !=
        DUKA_OK) {
        duka_http_error(ex, refusal_status(res.refusal), res.refusal ? res.refusal : "internal",
                        "%s", err.msg);
        goto out;
    }
    duka_log(DUKA_LOG_INFO, "till", "refund %s of sale %s: %lld cents by %s",
             refund->receipt_no, refund->original_receipt_no, (long long)refund->total_cents,
             refund->cashier_name[0] ? refund->cashier_name : "no cashier");
    duka_sync_worker_request_sync(app->worker);
    ex->status = 201;
    ex->reply = sale_reply(refund, &res, NULL);
out:
    json_decref(body);
    duka_refund_input_free(in);
    duka_sale_free(refund);
}

/* GET /api/sales/<receipt_no>[/receipt.txt]: a sale again, as JSON or as its printed text. */
static void sale_lookup(request_ctx *ctx, duka_http_exchange *ex, bool text)
{
    duka_err err = {0};
    duka_sale *sale = duka_sale_new();
    char *buf = text ? malloc(DUKA_RECEIPT_TEXT_MAX) : NULL;
    if (sale == NULL || (text && buf == NULL)) {
        duka_http_error(ex, 500, "internal", "out of memory");
        goto out;
    }
    duka_rc rc = duka_till_sale_load(ctx->db, ex->param, sale, &err);
    if (rc != DUKA_OK) {
        duka_http_error(ex, rc == DUKA_NOTFOUND ? 404 : 500,
                        rc == DUKA_NOTFOUND ? "not_found" : "store", "%s", err.msg);
        goto out;
    }
    char state[32];
    duka_etims_receipt etims;
    bool signed_ = false;
    if (duka_till_sale_sync_state(ctx->db, sale->receipt_no, state, sizeof(state), &err) !=
            DUKA_OK ||
        duka_etims_receipt_load(ctx->db, sale->receipt_no, &etims, &signed_, &err) != DUKA_OK) {
        duka_http_error(ex, 500, "store", "%s", err.msg);
        goto out;
    }
    if (text) {
        duka_receipt_shop shop;
        if (duka_receipt_shop_load(ctx->db, &shop, &err) != DUKA_OK) {
            duka_http_error(ex, 500, "store", "%s", err.msg);
            goto out;
        }
        duka_receipt_text_etims(sale, &shop, NULL, state, signed_ ? &etims : NULL, buf,
                                DUKA_RECEIPT_TEXT_MAX);
        duka_http_reply_bytes(ex, 200, "text/plain; charset=utf-8", buf, strlen(buf), true);
        buf = NULL;
    } else {
        ex->status = 200;
        ex->reply = sale_reply(sale, NULL, signed_ ? &etims : NULL);
        json_object_set_new(ex->reply, "sync", json_string(state));
        if (sale->kind == DUKA_KIND_SALE) { /* what is left to give back, per line */
            duka_refund_state *st = malloc(sizeof(*st));
            if (st == NULL || duka_refund_state_load(ctx->db, sale->receipt_no, st, &err) !=
                                  DUKA_OK) {
                free(st);
                json_decref(ex->reply);
                ex->reply = NULL;
                duka_http_error(ex, 500, "store", "%s", st ? err.msg : "out of memory");
                goto out;
            }
            duka_refund_state_json(st, ex->reply);
            free(st);
        }
    }
out:
    free(buf);
    duka_sale_free(sale);
}

static void route_sale_get(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    sale_lookup(vctx, ex, false);
}

static void route_receipt_text(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    sale_lookup(vctx, ex, true);
}

/* GET /api/sales/<receipt_no>/qr.svg: the QR code of the receipt's eTIMS verification URL,
 * drawn by libqrencode; 404 while the receipt has no signature (never a code of nothing). */
static void route_qr_svg(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    request_ctx *ctx = vctx;
    duka_err err = {0};
    duka_etims_receipt etims;
    bool found = false;
    char *svg = NULL;
    size_t len = 0;
    if (duka_etims_receipt_load(ctx->db, ex->param, &etims, &found, &err) != DUKA_OK) {
        duka_http_error(ex, 500, "store", "%s", err.msg);
        return;
    }
    if (!found) {
        duka_http_error(ex, 404, "not_found", "receipt '%.60s' has no eTIMS signature (yet)",
                        ex->param);
        return;
    }
    duka_rc rc = duka_etims_qr_svg(etims.qr_url, &svg, &len, NULL, &err);
    if (rc != DUKA_OK) {
        duka_http_error(ex, 500, rc == DUKA_NOMEM ? "internal" : "qr", "%s", err.msg);
        return;
    }
    /* A signature never changes once there: the browser may keep the image a day. */
    duka_http_reply_header(ex, "Cache-Control", "private, max-age=86400");
    duka_http_reply_header(ex, "X-Content-Type-Options", "nosniff");
    duka_http_reply_bytes(ex, 200, "image/svg+xml", svg, len, true);
}

/* The status with the monitor's live view laid over what the database recorded. */
static duka_rc live_status(till_app *app, sqlite3 *db, json_t **out, duka_err *err)
{
    duka_till_status *st = malloc(sizeof(*st));
    if (st == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory building the status");
    duka_rc rc = duka_till_status_load(db, &app->alerts, st, err);
    if (rc == DUKA_OK) {
        duka_monitor_snapshot snap;
        duka_sync_worker_connectivity(app->worker, &snap);
        snprintf(st->connectivity, sizeof(st->connectivity), "%s",
                 duka_conn_state_name(snap.state));
        st->connectivity_since_ms = snap.since_ms;
        st->offline_switch = snap.forced_offline;
        snprintf(st->last_error, sizeof(st->last_error), "%s", snap.last_error);
        duka_till_status_light(st);
        if ((*out = duka_till_status_to_json(st)) == NULL)
            rc = duka_err_set(err, DUKA_NOMEM, "out of memory building the status");
    }
    free(st);
    if (rc != DUKA_OK)
        return rc;
    duka_receipt_shop shop;
    if (duka_receipt_shop_load(db, &shop, err) == DUKA_OK)
        json_object_set_new(*out, "shop", json_pack("{s:s, s:s}", "name", shop.name, "kra_pin",
                                                    shop.kra_pin));
    return DUKA_OK;
}

static void route_status(void *cls, void *vctx, duka_http_exchange *ex)
{
    request_ctx *ctx = vctx;
    duka_err err = {0};
    json_t *reply = NULL;
    if (live_status(cls, ctx->db, &reply, &err) != DUKA_OK) {
        duka_http_error(ex, status_of(err.rc), "error", "%s", err.msg);
        return;
    }
    ex->status = 200;
    ex->reply = reply;
}

static void route_offline(void *cls, void *vctx, duka_http_exchange *ex)
{
    till_app *app = cls;
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
    route_status(cls, vctx, ex);
}

/* A query argument that must be an integer in lo..hi when given; false with a 400 set. */
static bool query_int(duka_http_exchange *ex, const char *key, long long lo, long long hi,
                      long long *v)
{
    const char *t = duka_http_query(ex, key);
    if (t == NULL)
        return true;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(t, &end, 10);
    if (end == t || *end != '\0' || errno != 0 || n < lo || n > hi) {
        duka_http_error(ex, 400, "invalid_query", "%s: '%.40s' is not a whole number %lld..%lld",
                        key, t, lo, hi);
        return false;
    }
    *v = n;
    return true;
}

/* Sets the reply from a JSON view function's result. */
static void json_view(duka_http_exchange *ex, duka_rc rc, json_t *reply, const duka_err *err)
{
    if (rc != DUKA_OK) {
        json_decref(reply);
        duka_http_error(ex, status_of(rc), "error", "%s", err->msg);
        return;
    }
    ex->status = 200;
    ex->reply = reply;
}

static void route_history(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    request_ctx *ctx = vctx;
    long long limit = 50, offset = 0;
    if (!query_int(ex, "limit", 1, DUKA_API_PAGE_MAX, &limit) ||
        !query_int(ex, "offset", 0, INT64_MAX, &offset))
        return;
    duka_err err = {0};
    json_t *reply = NULL;
    duka_rc rc = duka_till_history_json(ctx->db, (int)limit, offset, &reply, &err);
    json_view(ex, rc, reply, &err);
}

static void route_queue(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    request_ctx *ctx = vctx;
    long long limit = 100, offset = 0;
    const char *status = duka_http_query(ex, "status");
    if (!query_int(ex, "limit", 1, DUKA_API_PAGE_MAX, &limit) ||
        !query_int(ex, "offset", 0, INT64_MAX, &offset))
        return;
    if (status != NULL && duka_outbox_status_parse(status) < 0) {
        duka_http_error(ex, 400, "invalid_query",
                        "status: '%.40s' is not one of pending, processing, done, failed, "
                        "conflict", status);
        return;
    }
    duka_err err = {0};
    json_t *reply = NULL;
    duka_rc rc = duka_till_queue_json(ctx->db, status, (int)limit, offset, &reply, &err);
    json_view(ex, rc, reply, &err);
}

static void route_connectivity(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    request_ctx *ctx = vctx;
    /* The day: from the shop's last midnight (the process runs in the shop's time zone). */
    int64_t now = duka_clock_now_ms(NULL);
    int64_t since = duka_clock_local_midnight_ms(now);
    duka_err err = {0};
    json_t *reply = NULL;
    duka_rc rc = duka_till_connectivity_log_json(ctx->db, since, DUKA_API_PAGE_MAX, &reply, &err);
    json_view(ex, rc, reply, &err);
}

static void route_catalog(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    request_ctx *ctx = vctx;
    duka_err err = {0};
    json_t *reply = NULL;
    duka_rc rc = duka_catalog_list(ctx->db, &reply, &err);
    json_view(ex, rc, reply, &err);
}

static void route_retry(void *cls, void *vctx, duka_http_exchange *ex)
{
    till_app *app = cls;
    request_ctx *ctx = vctx;
    json_t *body = parse_body(ex);
    if (body == NULL)
        return;
    const char *id = json_string_value(json_object_get(body, "command_id"));
    bool all = json_is_true(json_object_get(body, "all"));
    if ((id == NULL) == !all || json_object_size(body) != 1) {
        json_decref(body);
        duka_http_error(ex, 400, "invalid_body",
                        "expected {\"command_id\": \"…\"} or {\"all\": true}");
        return;
    }
    duka_err err = {0};
    int retried = 0;
    duka_rc rc = duka_outbox_retry(ctx->db, all ? NULL : id, duka_clock_now_ms(NULL), &retried,
                                   &err);
    if (rc == DUKA_OK && !all && retried == 0) /* as `duka queue retry ID` says it */
        rc = duka_err_set(&err, DUKA_NOTFOUND, "no failed item '%.60s' in the queue", id);
    if (rc == DUKA_OK)
        duka_log(DUKA_LOG_INFO, "till", "retry of %.60s by %s: %d items",
                 all ? "every failed item" : id, ctx->session.cashier.name, retried);
    json_decref(body); /* id pointed into it */
    if (rc != DUKA_OK) {
        duka_http_error(ex, rc == DUKA_NOTFOUND ? 404 : status_of(rc),
                        rc == DUKA_NOTFOUND ? "not_found" : "error", "%s", err.msg);
        return;
    }
    duka_sync_worker_request_sync(app->worker);
    ex->status = 200;
    ex->reply = json_pack("{s:i}", "retried", retried);
}

static void route_sync(void *cls, void *vctx, duka_http_exchange *ex)
{
    till_app *app = cls;
    (void)vctx;
    duka_err err = {0};
    duka_sync_result res;
    duka_rc rc = duka_sync_worker_sync_now(app->worker, &res, &err);
    ex->status = rc == DUKA_OK ? 200 : status_of(rc);
    ex->reply = duka_sync_result_json(&res);
    if (rc != DUKA_OK)
        json_object_set_new(ex->reply, "error", json_string(err.msg));
}

static void route_cashiers(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    request_ctx *ctx = vctx;
    duka_cashier *list = calloc(DUKA_CASHIERS_MAX, sizeof(*list));
    int n = 0;
    duka_err err = {0};
    if (list == NULL) {
        duka_http_error(ex, 500, "internal", "out of memory");
        return;
    }
    if (duka_cashier_list(ctx->db, list, DUKA_CASHIERS_MAX, &n, &err) != DUKA_OK) {
        free(list);
        duka_http_error(ex, 500, "store", "%s", err.msg);
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, cashier_json(&list[i]));
    free(list);
    ex->status = 200;
    ex->reply = json_pack("{s:o}", "cashiers", arr);
}

static void route_session(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    request_ctx *ctx = vctx;
    if (!ctx->has_session) {
        duka_http_error(ex, 401, "unauthorized", "no session: log in");
        return;
    }
    ex->status = 200;
    ex->reply = json_pack("{s:o}", "cashier", cashier_json(&ctx->session.cashier));
}

static void route_login(void *cls, void *vctx, duka_http_exchange *ex)
{
    till_app *app = cls;
    request_ctx *ctx = vctx;
    json_t *body = parse_body(ex);
    if (body == NULL)
        return;
    /* The login screen sends the id of the button pressed; a script may name the cashier. */
    const char *id = json_string_value(json_object_get(body, "cashier_id"));
    const char *name = json_string_value(json_object_get(body, "cashier"));
    const char *pin = json_string_value(json_object_get(body, "pin"));
    if ((id == NULL) == (name == NULL) || pin == NULL || json_object_size(body) != 2) {
        json_decref(body);
        duka_http_error(ex, 400, "invalid_body",
                        "expected {\"cashier_id\": \"…\" or \"cashier\": \"name\", "
                        "\"pin\": \"digits\"}");
        return;
    }
    duka_err err = {0};
    duka_cashier named;
    if (name != NULL) {
        duka_rc frc = duka_cashier_find_by_name(ctx->db, name, &named, &err);
        if (frc != DUKA_OK) {
            if (frc == DUKA_NOTFOUND)
                duka_http_error(ex, 404, "unknown_cashier",
                                "cashier: no active cashier '%.*s' on this till", 60, name);
            else
                duka_http_error(ex, 500, "store", "%s", err.msg);
            json_decref(body); /* name pointed into it */
            return;
        }
        id = named.id;
    }
    char token[DUKA_SESSION_TOKEN_LEN + 1];
    duka_session s;
    duka_rc rc = duka_session_login(ctx->db, NULL, id, pin, session_idle_ms(app), token, &s, &err);
    json_decref(body);
    switch (rc) {
    case DUKA_OK:
        break;
    case DUKA_NOTFOUND: duka_http_error(ex, 404, "unknown_cashier", "%s", err.msg); return;
    case DUKA_INPUT: duka_http_error(ex, 400, "invalid_pin", "%s", err.msg); return;
    case DUKA_AUTH: duka_http_error(ex, 401, "wrong_pin", "%s", err.msg); return;
    case DUKA_BUSY: duka_http_error(ex, 423, "locked", "%s", err.msg); return;
    default: duka_http_error(ex, 500, "store", "%s", err.msg); return;
    }
    /* A session cookie (no expiry: gone when the browser closes; the idle timeout ends it on
     * the till). SameSite=Strict: no other site's page can make the browser send it. */
    char cookie[DUKA_SESSION_TOKEN_LEN + 96];
    snprintf(cookie, sizeof(cookie), SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
             token);
    duka_http_reply_header(ex, "Set-Cookie", cookie);
    duka_log(DUKA_LOG_INFO, "till", "login: %s (%s)", s.cashier.name, s.cashier.role);
    ex->status = 200;
    ex->reply = json_pack("{s:o, s:s}", "cashier", cashier_json(&s.cashier), "token", token);
}

static void route_logout(void *cls, void *vctx, duka_http_exchange *ex)
{
    (void)cls;
    request_ctx *ctx = vctx;
    duka_err err = {0};
    if (duka_session_logout(ctx->db, ctx->token, &err) != DUKA_OK) {
        duka_http_error(ex, 500, "store", "%s", err.msg);
        return;
    }
    duka_log(DUKA_LOG_INFO, "till", "logout: %s", ctx->session.cashier.name);
    duka_http_reply_header(ex, "Set-Cookie",
                           SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ex->status = 200;
    ex->reply = json_pack("{s:b}", "logged_out", 1);
}

/* The till's endpoints (docs/PROTOCOL.md, "The till's local API"). */
static const duka_http_route routes[] = {
    {"GET", "/", route_asset, ROUTE_ASSET},
    {"GET", "/index.html", route_asset, ROUTE_ASSET},
    {"GET", "/app.js", route_asset, ROUTE_ASSET},
    {"GET", "/app.css", route_asset, ROUTE_ASSET},
    {"GET", "/favicon.svg", route_asset, ROUTE_ASSET},
    {"GET", "/api/status", route_status, ROUTE_READ},
    {"GET", "/api/catalog", route_catalog, ROUTE_READ},
    {"GET", "/api/history", route_history, ROUTE_READ},
    {"GET", "/api/queue", route_queue, ROUTE_READ},
    {"GET", "/api/connectivity", route_connectivity, ROUTE_READ},
    {"GET", "/api/cashiers", route_cashiers, ROUTE_READ},
    {"GET", "/api/session", route_session, ROUTE_LOGIN},
    {"GET", "/api/sales/*", route_sale_get, ROUTE_READ},
    {"GET", "/api/sales/*/receipt.txt", route_receipt_text, ROUTE_READ},
    {"GET", "/api/sales/*/qr.svg", route_qr_svg, ROUTE_READ},
    {"POST", "/api/login", route_login, ROUTE_LOGIN},
    {"POST", "/api/logout", route_logout, ROUTE_WRITE},
    {"POST", "/api/sales", route_sale, ROUTE_WRITE},
    {"POST", "/api/refunds", route_refund, ROUTE_WRITE},
    {"POST", "/api/sync", route_sync, ROUTE_WRITE},
    {"POST", "/api/queue/retry", route_retry, ROUTE_WRITE},
    {"POST", "/api/offline", route_offline, ROUTE_WRITE | ROUTE_MANAGER},
};

static void handle(void *cls, duka_http_exchange *ex)
{
    till_app *app = cls;
    const duka_http_route *r =
        duka_http_route_find(routes, sizeof(routes) / sizeof(routes[0]), ex);
    if (r == NULL)
        return; /* 404 / 405 set */
    if (r->flags & ROUTE_ASSET) {
        r->fn(app, NULL, ex); /* no database for the page itself */
        return;
    }
    duka_err err = {0};
    request_ctx ctx = {0};
    if (duka_till_db_open(app->opt->db, false, &ctx.db, &err) != DUKA_OK) {
        duka_http_error(ex, 503, "store_unavailable", "%s", err.msg);
        return;
    }
    if (authorise(app, &ctx, r->flags, ex))
        r->fn(app, &ctx, ex);
    duka_db_close(ctx.db);
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
