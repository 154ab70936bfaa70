/* hub_server.c — HTTP endpoints of the hub (see hub_server.h). */
#include "hub/hub_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json_arena.h"
#include "common/limits.h"
#include "common/log.h"
#include "hub/hub_push.h"
#include "hub/hub_store.h"
#include "hub/till_binding.h"
#include "net/http_router.h"
#include "net/http_server.h"
#include "outbox/hub_forwarder.h"
#include "outbox/hub_outbox.h"
#include "sync/sync_worker.h"
#include "payments/mpesa/mpesa_sender.h"
#include "tax/etims/etims_sender.h"

#define DUKA_VERSION_STRING "0.1.0"

/* How far back the receipt floor sent with each pull reaches (a clock moved back further than
 * this is beyond what the hub protects against). */
#define RECEIPT_FLOOR_DAYS 400

/* The stores requests use: one for SQLite (one writer; requests take turns), DUKA_HUB_PG_CONNECTIONS
 * for PostgreSQL (each its own connection; the database arbitrates). Every HTTP connection
 * has its own thread (net/http_server.h); a request borrows a free store while it needs one
 * (a push twice: to authenticate, then to apply, not while its body is parsed and hashed),
 * waiting for one when all are lent, and gives it back. */
typedef struct duka_hub_app {
    duka_hub_store *stores[DUKA_HUB_STORE_POOL_MAX];
    bool busy[DUKA_HUB_STORE_POOL_MAX];
    int count;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    /* Pushes being parsed and hashed with no store held: at most one more than the stores,
     * so that one is ready when a store frees up, and the bodies parsed at once (memory,
     * CPU) stay bounded however many connections wait. */
    int preparing;
    pthread_cond_t prepare_freed;
    const duka_clock *clock; /* NULL: the system clock */
    duka_forwarder *etims;   /* kicked after a push; NULL when eTIMS is off */
    duka_forwarder *mpesa;   /* kicked after a push and a payment reported; NULL when off */
} hub_app;

static duka_hub_store *borrow_store(hub_app *app)
{
    pthread_mutex_lock(&app->lock);
    for (;;) {
        for (int i = 0; i < app->count; i++) {
            if (!app->busy[i]) {
                app->busy[i] = true;
                pthread_mutex_unlock(&app->lock);
                return app->stores[i];
            }
        }
        pthread_cond_wait(&app->freed, &app->lock);
    }
}

static void prepare_enter(hub_app *app)
{
    pthread_mutex_lock(&app->lock);
    while (app->preparing > app->count)
        pthread_cond_wait(&app->prepare_freed, &app->lock);
    app->preparing++;
    pthread_mutex_unlock(&app->lock);
}

static void prepare_leave(hub_app *app)
{
    pthread_mutex_lock(&app->lock);
    app->preparing--;
    pthread_cond_signal(&app->prepare_freed);
    pthread_mutex_unlock(&app->lock);
}

static void return_store(hub_app *app, duka_hub_store *store)
{
    pthread_mutex_lock(&app->lock);
    for (int i = 0; i < app->count; i++)
        if (app->stores[i] == store)
            app->busy[i] = false;
    pthread_cond_signal(&app->freed);
    pthread_mutex_unlock(&app->lock);
}

/* Audits a refused token: the device it names (when it names one) and the path, never the
 * secret part. */
static void audit_auth_failure(hub_app *app, duka_hub_store *store,
                               const duka_http_exchange *ex, const char *token)
{
    long long device = 0;
    if (token != NULL)
        sscanf(token, "duka1.%lld.", &device);
    char detail[160];
    snprintf(detail, sizeof(detail), "%s %s: %s", ex->method, ex->path,
             token == NULL ? "no token" : device > 0 ? "wrong or revoked token for device"
                                                      : "malformed token");
    duka_hub_audit(store, NULL, device > 0 ? device : 0,
                   "auth_failed", detail, duka_clock_now_ms(app->clock), NULL);
}

/* Authenticates the request's bearer token; on failure fills a 401 and returns false. */
static bool authenticate(hub_app *app, duka_hub_store *store, duka_http_exchange *ex,
                         duka_hub_device *dev)
{
    duka_err err = {0};
    const char *token = duka_http_bearer(ex);
    if (token == NULL) {
        audit_auth_failure(app, store, ex, NULL);
        duka_http_error(ex, 401, "unauthorized", "missing Authorization: Bearer token");
        return false;
    }
    duka_rc rc = duka_hub_device_authenticate(store, token, dev, &err);
    if (rc == DUKA_AUTH) {
        duka_log(DUKA_LOG_WARN, "hub", "auth failure path=%s", ex->path);
        audit_auth_failure(app, store, ex, token);
        duka_http_error(ex, 401, "unauthorized", "token rejected");
        return false;
    }
    if (rc != DUKA_OK) {
        duka_http_error(ex, 503, "store_unavailable", "%s", err.msg);
        ex->retry_after_s = 1;
        return false;
    }
    return true;
}

/* The till database a request comes from (till_binding.h): a request naming none is not
 * checked (older tills, raw tools); one naming another than the token's is refused, on
 * every endpoint, before anything is applied. On refusal fills the reply and returns false.
 * The common request — the bound till — compares two strings: authentication returned the
 * binding with the device. */
static bool check_till(hub_app *app, duka_hub_store *store, duka_http_exchange *ex,
                       duka_hub_device *dev, bool whoami)
{
    const char *till_id = duka_http_header(ex, DUKA_TILL_ID_HEADER);
    if (till_id == NULL)
        return true;
    const char *replace = whoami ? duka_http_header(ex, DUKA_TILL_REPLACE_HEADER) : NULL;
    char request[64];
    snprintf(request, sizeof(request), "%s %s", ex->method, ex->path);
    duka_err err = {0};
    duka_till_outcome outcome = DUKA_TILL_SAME;
    duka_rc rc = duka_hub_till_check(store, dev, till_id, replace && strcmp(replace, "1") == 0,
                                     request, duka_clock_now_ms(app->clock), &outcome, &err);
    switch (rc) {
    case DUKA_OK:
        if (outcome != DUKA_TILL_SAME)
            duka_log(DUKA_LOG_INFO, "hub", "business=%s terminal=%s: token %s till %s",
                     dev->business_id, dev->terminal,
                     outcome == DUKA_TILL_BOUND ? "bound to" : "moved to", till_id);
        return true;
    case DUKA_INPUT:
        duka_http_error(ex, 400, "invalid_till_id", "%s", err.msg);
        return false;
    case DUKA_CONFLICT:
        duka_log(DUKA_LOG_WARN, "hub", "business=%s terminal=%s: %s refused: token in use by "
                 "till %s, not %s", dev->business_id, dev->terminal, request, dev->till_id,
                 till_id);
        duka_http_error(ex, 409, "token_in_use", "%s", err.msg);
        return false;
    case DUKA_AUTH:
        duka_http_error(ex, 401, "unauthorized", "token rejected");
        return false;
    default:
        duka_http_error(ex, 503, "store_unavailable", "%s", err.msg);
        ex->retry_after_s = 1;
        return false;
    }
}

/* What a till prints on its receipts of the business: in every pull reply, so a change
 * (duka business set) reaches the tills with their next pull. */
static json_t *business_of(const duka_hub_device *dev)
{
    return json_pack("{s:o, s:o}", "name", duka_hub_json_text(dev->business_name), "kra_pin",
                     duka_hub_json_text(dev->kra_pin));
}

/* A push holds a store only to apply: the body is parsed, checked and its payloads hashed
 * before one is borrowed (the caller gave back the one it authenticated with). On a SQLite
 * hub, with its single store, the next push is thus made ready while one is applied. */
static void handle_push(hub_app *app, duka_http_exchange *ex, const duka_hub_device *dev)
{
    json_error_t jerr;
    prepare_enter(app); /* left once a store is borrowed (or the push refused) */
    /* The body's values live in an arena until the push is answered (json_arena.h): only the
     * parse runs in it; what the store keeps past the request is allocated after _pause. */
    duka_json_arena arena = {0};
    duka_json_arena_begin(&arena);
    json_t *body = json_loadb(ex->body, ex->body_len, JSON_REJECT_DUPLICATES, &jerr);
    duka_json_arena_pause(&arena);
    if (body == NULL) {
        duka_json_arena_end(&arena);
        prepare_leave(app);
        duka_http_error(ex, 400, "invalid_json", "body is not valid JSON: %s (line %d, column %d)",
                        jerr.text, jerr.line, jerr.column);
        return;
    }
    duka_err err = {0};
    json_t *reply = NULL;
    duka_hub_push_batch batch;
    duka_rc rc = duka_hub_push_prepare(body, &batch, &err);
    int64_t t0 = duka_monotonic_ms();
    if (rc != DUKA_OK)
        prepare_leave(app);
    if (rc == DUKA_OK) {
        duka_hub_store *store = borrow_store(app);
        prepare_leave(app);
        rc = duka_hub_push_apply_prepared(store, dev, &batch, duka_clock_now_ms(app->clock),
                                          &reply, &err);
        if (rc == DUKA_OK)
            duka_hub_store_checkpoint(store); /* still borrowed: after the commit */
        return_store(app, store);
        if (rc == DUKA_OK)
        {
            duka_forwarder_kick(app->etims); /* the batch's invoices are due now */
            duka_forwarder_kick(app->mpesa); /* and its typed codes */
        }
    }
    duka_hub_push_batch_free(&batch);
    json_decref(body);
    duka_json_arena_end(&arena);
    if (rc == DUKA_INPUT || rc == DUKA_LIMIT) {
        duka_http_error(ex, rc == DUKA_LIMIT ? 413 : 400,
                        rc == DUKA_LIMIT ? "batch_too_large" : "invalid_body", "%s", err.msg);
        return;
    }
    if (rc != DUKA_OK) {
        duka_log(DUKA_LOG_ERROR, "hub", "push failed business=%s terminal=%s: %s",
                 dev->business_id, dev->terminal, err.msg);
        duka_http_error(ex, 503, "store_unavailable", "%s", err.msg);
        ex->retry_after_s = 1;
        return;
    }
    duka_log(DUKA_LOG_INFO, "hub", "push business=%s terminal=%s commands=%zu ms=%lld",
             dev->business_id, dev->terminal, json_array_size(json_object_get(reply, "results")),
             (long long)(duka_monotonic_ms() - t0));
    ex->status = 200;
    ex->reply = reply;
}

static bool parse_int_arg(const char *text, long long lo, long long hi, long long *out)
{
    if (text == NULL)
        return false;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* The pull's M-Pesa member: the verifications of the till's own typed codes since its cursor
 * (docs/PROTOCOL.md, "mpesa"), and what the business still has waiting; added to services. */
static duka_rc add_mpesa(hub_app *app, duka_hub_store *store, const duka_hub_device *dev,
                         long long cursor, json_t *reply, duka_err *err)
{
    json_t *list = NULL;
    duka_service_health h;
    bool found = false;
    duka_hub_outbox_counts k;
    if (duka_hub_outbox_results(store, dev->business_id, dev->terminal, DUKA_DEST_MPESA, cursor,
                                DUKA_PULL_INVOICES_MAX, &list, err) != DUKA_OK ||
        duka_hub_health_get(store, DUKA_DEST_MPESA, &h, &found, err) != DUKA_OK ||
        duka_hub_outbox_count_unsent(store, dev->business_id, DUKA_DEST_MPESA, &k, err) !=
            DUKA_OK) {
        json_decref(list);
        return err->rc ? err->rc : DUKA_STORE;
    }
    json_object_set_new(reply, "mpesa", list);
    json_t *services = json_object_get(reply, "services");
    if (services == NULL) {
        services = json_object();
        json_object_set_new(reply, "services", services);
    }
    json_object_set_new(
        services, "mpesa",
        json_pack("{s:s, s:I, s:I, s:I}", "state",
                  duka_forwarder_reported_state(&h, found, duka_clock_now_ms(app->clock)),
                  "since_ms", (json_int_t)(found ? h.since_ms : 0), "pending",
                  (json_int_t)(k.pending + k.processing + k.awaiting + k.failed),
                  "oldest_pending_ms", (json_int_t)k.oldest_unsent_ms));
    return DUKA_OK;
}

/* The pull's eTIMS members: the signed invoices of the till's own receipts since its cursor,
 * and the service's health with what the business still has waiting. */
static duka_rc add_invoices(hub_app *app, duka_hub_store *store, const duka_hub_device *dev,
                            long long cursor, json_t *reply, duka_err *err)
{
    json_t *invoices = NULL;
    duka_service_health h;
    bool found = false;
    duka_hub_outbox_counts k;
    if (duka_hub_outbox_results(store, dev->business_id, dev->terminal, DUKA_DEST_ETIMS, cursor,
                                DUKA_PULL_INVOICES_MAX, &invoices, err) != DUKA_OK ||
        duka_hub_health_get(store, DUKA_DEST_ETIMS, &h, &found, err) != DUKA_OK ||
        duka_hub_outbox_count_unsent(store, dev->business_id, DUKA_DEST_ETIMS, &k, err) != DUKA_OK) {
        json_decref(invoices);
        return err->rc ? err->rc : DUKA_STORE;
    }
    int64_t now = duka_clock_now_ms(app->clock);
    json_object_set_new(reply, "invoices", invoices);
    json_object_set_new(
        reply, "services",
        json_pack("{s:{s:s, s:I, s:I, s:I}}", "etims", "state",
                  duka_forwarder_reported_state(&h, found, now), "since_ms",
                  (json_int_t)(found ? h.since_ms : 0), "pending",
                  (json_int_t)(k.pending + k.processing + k.awaiting + k.failed),
                  "oldest_pending_ms", (json_int_t)k.oldest_unsent_ms));
    return DUKA_OK;
}

static void handle_pull(hub_app *app, duka_hub_store *store, duka_http_exchange *ex,
                        const duka_hub_device *dev)
{
    long long cursor = 0, limit = DUKA_PULL_PAGE_DEFAULT;
    const char *c = duka_http_query(ex, "cursor");
    const char *l = duka_http_query(ex, "limit");
    /* The till's cashier version (0 before its first list); absent from a till that predates
     * cashiers, which gets no cashiers member. */
    const char *cv = duka_http_query(ex, "cashiers_version");
    long long cashiers_version = -1;
    if (cv != NULL && !parse_int_arg(cv, 0, INT64_MAX, &cashiers_version)) {
        duka_http_error(ex, 400, "invalid_cashiers_version",
                        "cashiers_version '%s' is not a non-negative integer", cv);
        return;
    }
    if (c != NULL && !parse_int_arg(c, 0, INT64_MAX, &cursor)) {
        duka_http_error(ex, 400, "invalid_cursor", "cursor '%s' is not a non-negative integer", c);
        return;
    }
    /* The till's eTIMS cursor (issue 12); a till that predates it gets no invoices. */
    const char *ic = duka_http_query(ex, "invoice_cursor");
    long long invoice_cursor = -1;
    if (ic != NULL && !parse_int_arg(ic, 0, INT64_MAX, &invoice_cursor)) {
        duka_http_error(ex, 400, "invalid_invoice_cursor",
                        "invoice_cursor '%s' is not a non-negative integer", ic);
        return;
    }
    /* The till's M-Pesa cursor (issue 13); a till that predates it gets no mpesa member. */
    const char *mc = duka_http_query(ex, "mpesa_cursor");
    long long mpesa_cursor = -1;
    if (mc != NULL && !parse_int_arg(mc, 0, INT64_MAX, &mpesa_cursor)) {
        duka_http_error(ex, 400, "invalid_mpesa_cursor",
                        "mpesa_cursor '%s' is not a non-negative integer", mc);
        return;
    }
    if (l != NULL && !parse_int_arg(l, 1, DUKA_PULL_PAGE_MAX, &limit)) {
        duka_http_error(ex, 400, "invalid_limit", "limit '%s' is not 1..%d", l, DUKA_PULL_PAGE_MAX);
        return;
    }
    duka_err err = {0};
    json_t *reply = NULL;
    json_t *floor = NULL;
    json_t *cashiers = NULL; /* the whole list, when the till's version is not the hub's */
    int since_day =
        duka_clock_local_day(duka_clock_now_ms(app->clock) - RECEIPT_FLOOR_DAYS * 86400000LL);
    if (duka_hub_changes_since(store, dev->business_id, cursor, (int)limit, &reply, &err) !=
            DUKA_OK ||
        duka_hub_receipt_floor(store, dev->business_id, dev->terminal, since_day, &floor, &err) !=
            DUKA_OK ||
        (cashiers_version >= 0 &&
         duka_hub_cashier_list(store, dev->business_id, cashiers_version, &cashiers, &err) !=
             DUKA_OK)) {
        json_decref(reply);
        json_decref(floor);
        duka_http_error(ex, 503, "store_unavailable", "%s", err.msg);
        ex->retry_after_s = 1;
        return;
    }
    json_object_set_new(reply, "receipt_floor", floor);
    json_object_set_new(reply, "business", business_of(dev));
    if (cashiers != NULL)
        json_object_set_new(reply, "cashiers", cashiers);
    if ((invoice_cursor >= 0 &&
         add_invoices(app, store, dev, invoice_cursor, reply, &err) != DUKA_OK) ||
        (mpesa_cursor >= 0 && add_mpesa(app, store, dev, mpesa_cursor, reply, &err) != DUKA_OK)) {
        json_decref(reply);
        duka_http_error(ex, 503, "store_unavailable", "%s", err.msg);
        ex->retry_after_s = 1;
        return;
    }
    ex->status = 200;
    ex->reply = reply;
}

duka_rc duka_hub_app_new(duka_hub_store *store, duka_hub_app **out, duka_err *err)
{
    hub_app *app = calloc(1, sizeof(*app));
    if (app == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting the hub");
    app->stores[0] = store;
    app->count = 1;
    pthread_mutex_init(&app->lock, NULL);
    pthread_cond_init(&app->freed, NULL);
    pthread_cond_init(&app->prepare_freed, NULL);
    *out = app;
    return DUKA_OK;
}

duka_rc duka_hub_app_add_store(duka_hub_app *app, duka_hub_store *store, duka_err *err)
{
    pthread_mutex_lock(&app->lock);
    bool full = app->count == DUKA_HUB_STORE_POOL_MAX;
    if (!full)
        app->stores[app->count++] = store;
    pthread_mutex_unlock(&app->lock);
    if (full)
        return duka_err_set(err, DUKA_LIMIT, "at most %d store connections per hub",
                            DUKA_HUB_STORE_POOL_MAX);
    return DUKA_OK;
}

void duka_hub_app_free(duka_hub_app *app)
{
    if (app == NULL)
        return;
    pthread_cond_destroy(&app->freed);
    pthread_cond_destroy(&app->prepare_freed);
    pthread_mutex_destroy(&app->lock);
    free(app);
}

void duka_hub_app_set_clock(duka_hub_app *app, const duka_clock *clock)
{
    app->clock = clock;
}

static void handle(void *cls, duka_http_exchange *ex)
{
    duka_hub_handle(cls, ex);
}

/* What a device route works with: the store borrowed for it (NULL once given back) and the
 * device its token authenticated. */
typedef struct hub_request {
    duka_hub_store *store;
    duka_hub_device dev;
} hub_request;

static void route_health(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)app;
    (void)ctx;
    ex->status = 200;
    ex->reply = json_pack("{s:s, s:s, s:s}", "status", "ok", "service", "duka-hub", "version",
                          DUKA_VERSION_STRING);
}

/* A push gives back the store it authenticated with: it prepares its batch before borrowing
 * one to apply it (handle_push). */
static void route_push(void *app, void *ctx, duka_http_exchange *ex)
{
    hub_request *rq = ctx;
    return_store(app, rq->store);
    rq->store = NULL;
    handle_push(app, ex, &rq->dev);
}

static void route_pull(void *app, void *ctx, duka_http_exchange *ex)
{
    hub_request *rq = ctx;
    handle_pull(app, rq->store, ex, &rq->dev);
}

static void route_whoami(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)app;
    const duka_hub_device *dev = &((hub_request *)ctx)->dev;
    ex->status = 200;
    ex->reply = json_pack("{s:s, s:s, s:I, s:o, s:o, s:b}", "business_id", dev->business_id,
                          "terminal", dev->terminal, "device_id", (json_int_t)dev->id,
                          "business_name", duka_hub_json_text(dev->business_name), "kra_pin",
                          duka_hub_json_text(dev->kra_pin), "till_bound", dev->till_id[0] != '\0');
}

/* What Safaricom posts: /v1/mpesa/<business>.<secret>/<kind> (payments/mpesa/mpesa_sender.h).
 * No device token: the secret in the path is the credential. A payment reported wakes the
 * M-Pesa forwarder, so a code waiting for it is looked at now. */
static void route_mpesa(void *app_, void *ctx, duka_http_exchange *ex)
{
    hub_app *app = app_;
    (void)ctx;
    const char *kind = strrchr(ex->path, '/');
    duka_hub_store *store = borrow_store(app);
    duka_mpesa_callback(store, kind + 1, ex, duka_clock_now_ms(app->clock));
    return_store(app, store);
    if (ex->status == 200)
        duka_forwarder_kick(app->mpesa);
}

/* Route flags: ROUTE_DEVICE needs a till's token and its database id (check_till); with
 * ROUTE_WHOAMI that id may move the token to another database (Duka-Till-Replace). */
enum { ROUTE_DEVICE = 1u << 0, ROUTE_WHOAMI = 1u << 1 };

/* The hub's endpoints (docs/PROTOCOL.md). */
static const duka_http_route hub_routes[] = {
    {"GET", "/v1/health", route_health, 0},
    {"POST", "/v1/push", route_push, ROUTE_DEVICE},
    {"GET", "/v1/pull", route_pull, ROUTE_DEVICE},
    {"GET", "/v1/whoami", route_whoami, ROUTE_DEVICE | ROUTE_WHOAMI},
    {"POST", "/v1/mpesa/*/c2b-validation", route_mpesa, 0},
    {"POST", "/v1/mpesa/*/c2b-confirmation", route_mpesa, 0},
    {"POST", "/v1/mpesa/*/stk-callback", route_mpesa, 0},
    {"POST", "/v1/mpesa/*/status-result", route_mpesa, 0},
    {"POST", "/v1/mpesa/*/status-timeout", route_mpesa, 0},
};

void duka_hub_handle(duka_hub_app *app, duka_http_exchange *ex)
{
    const duka_http_route *r =
        duka_http_route_find(hub_routes, sizeof(hub_routes) / sizeof(hub_routes[0]), ex);
    if (r == NULL)
        return; /* 404 / 405 set */
    if (!(r->flags & ROUTE_DEVICE)) {
        r->fn(app, NULL, ex);
        return;
    }
    hub_request rq = {.store = borrow_store(app)};
    if (authenticate(app, rq.store, ex, &rq.dev) &&
        check_till(app, rq.store, ex, &rq.dev, (r->flags & ROUTE_WHOAMI) != 0))
        r->fn(app, &rq, ex);
    if (rq.store != NULL)
        return_store(app, rq.store);
}

duka_rc duka_hub_serve(const char *db, const char *listen, const char *cert_pem,
                       const char *key_pem, const duka_config *cfg, bool reuse_port,
                       duka_err *err)
{
    duka_config defaults;
    if (cfg == NULL) {
        duka_config_defaults(&defaults);
        cfg = &defaults;
    }
    int64_t timeout_ms = duka_config_get(cfg, DUKA_SETTING_HUB_CONNECTION_TIMEOUT);
    duka_http_server_options http = {
        .max_body_bytes = DUKA_PUSH_BODY_MAX_BYTES,
        .cert_pem = cert_pem,
        .key_pem = key_pem,
        .connection_timeout_s = (unsigned)((timeout_ms + 999) / 1000),
        .connections_per_ip_max =
            (unsigned)duka_config_get(cfg, DUKA_SETTING_HUB_CONNECTIONS_PER_IP),
        .reuse_port = reuse_port,
    };
    hub_app *app = NULL;
    duka_hub_store *store = NULL;
    duka_http_server *srv = NULL;
    duka_rc rc = duka_hub_store_open(db, false, &store, err);
    if (rc != DUKA_OK)
        return rc;
    rc = duka_hub_app_new(store, &app, err);
    if (rc != DUKA_OK) {
        duka_hub_store_close(store);
        return rc;
    }
    /* PostgreSQL: DUKA_HUB_PG_CONNECTIONS connections, so that many pushes of different tills run at
     * once (the other requests wait for a free one). SQLite has one writer: more connections
     * would only queue on its lock. */
    int pool = duka_hub_store_is_postgres(db) ? DUKA_HUB_PG_CONNECTIONS : 1;
    for (int i = 1; rc == DUKA_OK && i < pool; i++) {
        duka_hub_store *more = NULL;
        rc = duka_hub_store_open(db, false, &more, err);
        if (rc == DUKA_OK && (rc = duka_hub_app_add_store(app, more, err)) != DUKA_OK)
            duka_hub_store_close(more);
    }
    duka_block_stop_signals();
    /* The store-and-forward towards eTIMS, on its own store connection and threads, under the
     * same outbox policy as the tills' (backoff, attempts, priorities from the settings). */
    duka_sync_apply_config(cfg);
    duka_etims_sender *etims = NULL;
    duka_forwarder_service etims_svc;
    if (rc == DUKA_OK)
        rc = duka_etims_sender_new(cfg, app->clock, &etims, &etims_svc, err);
    if (rc == DUKA_OK && etims != NULL) {
        rc = duka_forwarder_start(db, &etims_svc, app->clock, &app->etims, err);
        if (rc == DUKA_OK)
            duka_log(DUKA_LOG_INFO, "etims", "forwarding invoices to %s (%d in flight)",
                     duka_config_text(cfg, DUKA_SETTING_ETIMS_BASE_URL), etims_svc.in_flight);
    }
    duka_mpesa_sender *mpesa = NULL;
    duka_forwarder_service mpesa_svc;
    if (rc == DUKA_OK)
        rc = duka_mpesa_sender_new(cfg, app->clock, &mpesa, &mpesa_svc, err);
    if (rc == DUKA_OK && mpesa != NULL) {
        rc = duka_forwarder_start(db, &mpesa_svc, app->clock, &app->mpesa, err);
        if (rc == DUKA_OK)
            duka_log(DUKA_LOG_INFO, "mpesa", "verifying M-Pesa codes with %s (%d in flight)",
                     duka_config_text(cfg, DUKA_SETTING_MPESA_BASE_URL), mpesa_svc.in_flight);
    }
    if (rc == DUKA_OK)
        rc = duka_http_server_start_opts(listen, &http, handle, app, &srv, err);
    if (rc == DUKA_OK) {
        char per_ip[48] = "no limit per address";
        if (http.connections_per_ip_max > 0)
            snprintf(per_ip, sizeof(per_ip), "at most %u per address",
                     http.connections_per_ip_max);
        duka_log(DUKA_LOG_INFO, "hub",
                 "serving %s on %s://%s (connections: timeout %u s, %s, %d in all; %d store "
                 "connection%s)",
                 duka_hub_store_location(store), cert_pem ? "https" : "http", listen,
                 http.connection_timeout_s, per_ip, DUKA_HUB_CONNECTIONS_MAX, app->count,
                 app->count == 1 ? "" : "s");
        int sig = duka_wait_for_stop_signal();
        duka_log(DUKA_LOG_INFO, "hub", "signal %d: stopping", sig);
        duka_http_server_stop(srv);
    }
    duka_etims_sender_cancel(etims);
    duka_mpesa_sender_cancel(mpesa);
    duka_forwarder_stop(app->etims);
    duka_forwarder_stop(app->mpesa);
    app->etims = NULL;
    app->mpesa = NULL;
    duka_etims_sender_free(etims);
    duka_mpesa_sender_free(mpesa);
    for (int i = 0; i < app->count; i++)
        duka_hub_store_close(app->stores[i]);
    duka_hub_app_free(app);
    return rc;
}
