/*
 * sim.c — the deterministic simulator of duka's sync (in the spirit of TigerBeetle's VOPR).
 *
 * One process runs several tills (real till databases, the real checkout, outbox and sync
 * client) and the hub (the real store and request handler, called in-process), joined by a
 * simulated network, on a simulated clock, all decisions drawn from one seed:
 *
 *   network   requests dropped, replies lost after the hub committed, requests duplicated,
 *             requests delayed and delivered late (after the till resent them: reordering),
 *             partitions of a till for a while;
 *   crashes   a till crashing before it sends, after the hub answered but before it recorded
 *             the answer, right after a sale committed (before the cashier saw it), or between
 *             operations; the hub crashing between its commit and its reply, or between
 *             operations. A crash drops the connection with every commit after the crash point
 *             refused (nothing more reaches the disk), then reopens from the durable state;
 *   storage   a till commit or a hub commit failing (a disk error);
 *   clock     time moving on by seconds to hours, across midnight, and sometimes backwards;
 *   catalog   prices changed and products archived at the hub while tills sell;
 *   refunds   part or all of a till's own sale given back (duka_refund_commit);
 *   eTIMS     the hub's eTIMS forwarders (one hub, or two as on one PostgreSQL) stepped by
 *             hand — claim under a lease, prepare, send, record — through the real sender and
 *             client to the real eTIMS simulator called in-process: eTIMS down for minutes or
 *             hours, requests and replies lost, resends (994), 429/503, 999, broken replies,
 *             the hub killed between claim and send and between send and record, one of two
 *             hubs killed alone.
 *
 * Each seed draws its own fault rates (swarm testing: some seeds calm, some stormy). After
 * the commands the network heals and the queue of every till must drain within a bound
 * (liveness); then the shared checker (tests/checker) judges the databases against every sale
 * the cashier was shown: lost = duplicated = unexpected = 0, totals and lines identical,
 * receipts gap-free per till and day, stock ledger = sales, every queue empty, every refund
 * within its sale; with the eTIMS simulator's state, every sale and refund invoiced exactly
 * once (after the hubs forwarded to a healed eTIMS), invcNo without gap or repeat, band
 * totals equal, every till receipt signed; and every till's catalog must equal the hub's.
 * The same seed replays the same run: every decision, id and timestamp comes from the seed
 * (the run's trace hash is printed; --twice checks it).
 *
 *   duka-sim [--seed S] [--seeds N] [--commands M] [--tills K] [--dir DIR] [--twice] [-v]
 */
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checker.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/uuid.h"
#include "config/config.h"
#include "hub/hub_business.h"
#include "hub/hub_server.h"
#include "hub/hub_store.h"
#include "outbox/hub_forwarder.h"
#include "outbox/hub_outbox.h"
#include "outbox/outbox.h"
#include "sim/etims_sim.h"
#include "store/db.h"
#include "sync/sync_client.h"
#include "tax/etims/etims_sender.h"
#include "till/checkout.h"
#include "till/refund.h"
#include "till/till_db.h"

#define SIM_TILLS_MAX 8
#define SIM_SKUS 12
#define SIM_DELAYED_MAX 16
#define SIM_HEAL_ROUNDS_MAX 40   /* liveness: syncs per till allowed to drain after healing */
#define SIM_PATH_MAX 512
#define SIM_START_MS 1795248000000LL /* 2026-11-21 00:00 UTC; each seed starts later */
/* eTIMS: two hubs forward (as two hub processes on one PostgreSQL would), each claiming up
 * to SIM_FWD_WINDOW invoices at a time; after healing every invoice must be accepted within
 * SIM_ETIMS_HEAL_ROUNDS_MAX rounds of forwarding (liveness). */
#define SIM_FORWARDERS 2
#define SIM_FWD_WINDOW 8
#define SIM_ETIMS_HEAL_ROUNDS_MAX 200
#define SIM_KRA_PIN "P051234567Z"
#define SIM_ETIMS_URL "http://sim.kra/etims-api"

/* Fault and event kinds, counted per run and in total. */
#define SIM_EVENTS(X)                                                                        \
    X(sale_ok) X(sale_refused) X(sync_ok) X(sync_failed) X(net_drop) X(net_partitioned)     \
    X(net_lost_reply) X(net_duplicate) X(net_delayed) X(net_late_delivery) X(till_crash)    \
    X(till_crash_in_sync) X(till_crash_after_sale) X(hub_crash) X(hub_crash_after_commit)   \
    X(till_storage_fault) X(hub_storage_fault) X(clock_jump) X(clock_back) X(catalog_change) \
    X(partition) X(refund_ok) X(refund_refused) X(etims_claimed) X(etims_sent)                \
    X(etims_signed) X(etims_outage) X(etims_unreachable) X(etims_lost_request)                \
    X(etims_lost_reply) X(etims_duplicate) X(etims_http_error) X(etims_999)                    \
    X(etims_bad_reply) X(etims_lease_lost) X(hub_crash_after_claim) X(hub_crash_after_send)    \
    X(forwarder_crash) X(etims_retried_by_hand)

typedef enum sim_event {
#define X(name) EV_##name,
    SIM_EVENTS(X)
#undef X
        EV_COUNT
} sim_event;

static const char *const event_names[EV_COUNT] = {
#define X(name) #name,
    SIM_EVENTS(X)
#undef X
};

typedef struct sim_till {
    char path[SIM_PATH_MAX];
    char terminal[8];
    sqlite3 *db;
    bool crashed;          /* from the crash point on, every commit is refused */
    bool fail_next_commit; /* a storage fault on the next commit */
    int rung;              /* sales asked for: picks each sale's cashier, with no draw */
    int64_t partition_until_ms;
} sim_till;

typedef struct sim_msg {
    int till;
    char *body;
    size_t len;
} sim_msg;

typedef struct sim_rates { /* per-mille chances, drawn per seed */
    int drop, lost_reply, duplicate, delay, hub_crash_after_commit, till_crash_in_sync,
        till_crash_after_sale, storage;
    /* hub -> eTIMS */
    int etims_lost_request, etims_lost_reply, etims_duplicate, etims_http_error, etims_999,
        etims_bad_reply, hub_crash_after_claim, hub_crash_after_send;
} sim_rates;

/* An invoice a forwarder claimed: prepared, then sent (its outcome known), then recorded. */
typedef struct sim_fwd_item {
    duka_hub_outbox_item item; /* owns item.payload */
    bool ready;                /* prepared; else its outcome is prepare's */
    bool sent;
    duka_hub_outbox_outcome outcome;
    void *prepared;
    char *result;
    char err[DUKA_ERR_MSG_MAX];
} sim_fwd_item;

/* One hub's eTIMS forwarder, stepped by hand: hub_forwarder.c's claim / send / record, one
 * request at a time, in an order the seed picks. */
typedef struct sim_forwarder {
    char owner[DUKA_HUB_OUTBOX_OWNER_LEN + 1];
    duka_etims_sender *sender; /* its own cache (the device), lost when its hub dies */
    duka_forwarder_service svc;
    sim_fwd_item items[SIM_FWD_WINDOW];
    int count; /* claimed and not yet recorded */
} sim_forwarder;

typedef struct sim {
    uint64_t seed;
    uint64_t rng;
    int64_t now_ms;
    duka_clock clock;
    char dir[SIM_PATH_MAX];
    char hub_path[SIM_PATH_MAX];
    duka_hub_store *hub;
    duka_hub_app *app;
    bool hub_fail_next_commit;
    /* eTIMS: the simulator (in-process behind etims_transport), the hubs' forwarders */
    char kra_path[SIM_PATH_MAX];
    duka_etims_sim *kra;
    int64_t kra_down_until_ms;
    int sequence_window;
    sim_forwarder fwd[SIM_FORWARDERS];
    int nfwd;
    duka_config cfg;
    int64_t etims_heal_rounds;
    char business[DUKA_BUSINESS_ID_LEN + 1];
    char tokens[SIM_TILLS_MAX][DUKA_TOKEN_MAX + 1];
    sim_till tills[SIM_TILLS_MAX];
    int ntills;
    sim_rates rates;
    bool healing; /* no faults */
    sim_msg delayed[SIM_DELAYED_MAX];
    int ndelayed;
    duka_check_ack *acks;
    int nacks, acks_cap;
    int64_t events[EV_COUNT];
    uint64_t trace; /* FNV-1a of everything observable, for replay checks */
    int64_t drain_rounds, drain_sim_ms;
    bool verbose;
} sim;

/* ---- randomness and trace ---- */

static uint64_t next_u64(sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int below(sim *s, int n)
{
    return (int)(next_u64(s) % (uint64_t)n);
}

static bool chance(sim *s, int per_mille)
{
    return !s->healing && below(s, 1000) < per_mille;
}

static void trace(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(sim *s, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (const char *p = buf; *p; p++)
        s->trace = (s->trace ^ (unsigned char)*p) * 0x100000001b3ULL;
    s->trace = (s->trace ^ '\n') * 0x100000001b3ULL;
    if (s->verbose)
        fprintf(stderr, "  [%lld] %s\n", (long long)s->now_ms, buf);
}

static void count(sim *s, sim_event e)
{
    s->events[e]++;
}

static int64_t sim_now(void *ctx)
{
    return ((sim *)ctx)->now_ms;
}

static void die(const char *what, const duka_err *err)
{
    fprintf(stderr, "duka-sim: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

/* ---- the hub ---- */

static bool hub_commit_fault(void *ctx)
{
    sim *s = ctx;
    if (!s->hub_fail_next_commit)
        return false;
    s->hub_fail_next_commit = false;
    return true;
}

static duka_rc etims_transport(void *ctx, const char *method, const char *url,
                               const char *token, const char *body, size_t len,
                               const duka_http_options *opt, duka_http_reply *out,
                               duka_err *err);

/* A forwarder as its hub starts it: a new owner id and a sender with an empty cache. */
static void forwarder_start(sim *s, sim_forwarder *f)
{
    duka_err err = {0};
    memset(f, 0, sizeof(*f));
    duka_random_hex(f->owner, DUKA_HUB_OUTBOX_OWNER_LEN);
    if (duka_etims_sender_new(&s->cfg, &s->clock, &f->sender, &f->svc, &err) != DUKA_OK ||
        f->sender == NULL)
        die("starting an eTIMS sender", &err);
    duka_etims_sender_set_transport(f->sender, etims_transport, s);
}

/* Its hub died: what it had claimed stays processing under its lease in the store. */
static void forwarder_stop(sim_forwarder *f)
{
    for (int k = 0; k < f->count; k++) {
        free(f->items[k].item.payload);
        free(f->items[k].prepared);
        free(f->items[k].result);
    }
    duka_etims_sender_free(f->sender);
    memset(f, 0, sizeof(*f));
}

static void hub_open(sim *s, bool create)
{
    duka_err err = {0};
    if (duka_hub_store_open(s->hub_path, create, &s->hub, &err) != DUKA_OK)
        die("opening the hub", &err);
    if (duka_hub_app_new(s->hub, &s->app, &err) != DUKA_OK)
        die("starting the hub", &err);
    duka_hub_app_set_clock(s->app, &s->clock);
    duka_hub_store_set_commit_fault(s->hub, hub_commit_fault, s);
    /* As the embedded hub's forwarder does at its start (hub_forwarder.c): what the last
     * life was sending is due now, unclear (asked about before it is sent again). */
    int64_t recovered = 0;
    if (!create && duka_hub_outbox_recover_own(s->hub, DUKA_DEST_ETIMS, s->now_ms, &recovered,
                                               &err) != DUKA_OK)
        die("recovering the eTIMS outbox", &err);
    if (recovered > 0)
        trace(s, "hub restart: %lld invoices in flight due again", (long long)recovered);
    for (int k = 0; k < s->nfwd; k++)
        forwarder_start(s, &s->fwd[k]);
}

static void hub_close(sim *s)
{
    for (int k = 0; k < s->nfwd; k++)
        forwarder_stop(&s->fwd[k]);
    duka_hub_app_free(s->app);
    duka_hub_store_close(s->hub);
    s->app = NULL;
    s->hub = NULL;
}

/* The hub dies (what it committed stays: SQLite's WAL with synchronous=FULL) and restarts. */
static void hub_crash(sim *s, sim_event why)
{
    count(s, why);
    trace(s, "hub crash (%s)", event_names[why]);
    hub_close(s);
    s->hub_fail_next_commit = false;
    hub_open(s, false);
}

/* Runs one request through the hub's real handler. Returns the status; *reply_out gets the
 * body (malloc'ed) when wanted. */
static long hub_request(sim *s, const char *method, const char *url, const char *token,
                        const char *body, size_t len, char **reply_out, size_t *reply_len,
                        long *retry_after)
{
    /* url: http://sim.hub/v1/pull?cursor=0&limit=500 */
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    char p[256], q[256];
    snprintf(p, sizeof(p), "%s", path ? path : "/");
    q[0] = '\0';
    char *qm = strchr(p, '?');
    if (qm != NULL) {
        snprintf(q, sizeof(q), "%s", qm + 1);
        *qm = '\0';
    }
    const char *args[16] = {0};
    int na = 0;
    for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv != NULL && na < 14;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        args[na++] = kv;
        args[na++] = eq + 1;
    }
    char auth[DUKA_TOKEN_MAX + 16];
    snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
    const char *headers[] = {"Authorization", auth, NULL, NULL};
    duka_http_exchange ex = {.method = method, .path = p, .body = body ? body : "",
                             .body_len = len, .retry_after_s = -1, .local_args = args,
                             .local_headers = headers};
    duka_hub_handle(s->app, &ex);
    long status = (long)ex.status;
    if (retry_after)
        *retry_after = ex.retry_after_s;
    if (reply_out != NULL) {
        *reply_out = ex.reply ? json_dumps(ex.reply, JSON_COMPACT) : NULL;
        *reply_len = *reply_out ? strlen(*reply_out) : 0;
    }
    json_decref(ex.reply);
    return status;
}

/* ---- the network between the tills and the hub ---- */

typedef struct sim_link {
    sim *s;
    int till;
} sim_link;

static void delay_message(sim *s, int till, const char *body, size_t len)
{
    if (s->ndelayed == SIM_DELAYED_MAX)
        return;
    sim_msg *m = &s->delayed[s->ndelayed++];
    m->till = till;
    m->body = malloc(len + 1);
    if (m->body == NULL)
        die("out of memory", NULL);
    memcpy(m->body, body, len);
    m->body[len] = '\0';
    m->len = len;
}

/* A request that was held up in the network reaches the hub now; nobody hears the reply. */
static void deliver_late(sim *s)
{
    if (s->ndelayed == 0)
        return;
    int i = below(s, s->ndelayed);
    sim_msg m = s->delayed[i];
    s->delayed[i] = s->delayed[--s->ndelayed];
    count(s, EV_net_late_delivery);
    long st = hub_request(s, "POST", "http://sim.hub/v1/push", s->tokens[m.till], m.body, m.len,
                          NULL, NULL, NULL);
    trace(s, "late push from %s: %ld", s->tills[m.till].terminal, st);
    free(m.body);
}

static duka_rc transport(void *ctx, const char *method, const char *url, const char *token,
                         const char *body, size_t len, const duka_http_options *opt,
                         duka_http_reply *out, duka_err *err)
{
    (void)opt;
    sim_link *link = ctx;
    sim *s = link->s;
    sim_till *t = &s->tills[link->till];
    bool push = strcmp(method, "POST") == 0;
    memset(out, 0, sizeof(*out));
    out->retry_after_s = -1;
    if (!s->healing && s->now_ms < t->partition_until_ms) {
        count(s, EV_net_partitioned);
        return duka_err_set(err, DUKA_OFFLINE, "hub unreachable (partition)");
    }
    if (chance(s, s->rates.drop)) {
        count(s, EV_net_drop);
        return duka_err_set(err, DUKA_OFFLINE, "hub unreachable (dropped)");
    }
    if (push && chance(s, s->rates.till_crash_in_sync / 2)) {
        /* The till dies with the batch claimed, before sending it. */
        count(s, EV_till_crash_in_sync);
        t->crashed = true;
        return duka_err_set(err, DUKA_OFFLINE, "till crashed");
    }
    if (push && chance(s, s->rates.delay)) {
        /* Held up in the network: the till times out and will resend; this copy arrives
         * later, out of order. */
        count(s, EV_net_delayed);
        delay_message(s, link->till, body, len);
        out->maybe_delivered = true;
        return duka_err_set(err, DUKA_OFFLINE, "hub timed out");
    }
    if (push && chance(s, s->rates.duplicate)) {
        count(s, EV_net_duplicate);
        long st = hub_request(s, method, url, token, body, len, NULL, NULL, NULL);
        trace(s, "duplicated push from %s: %ld", t->terminal, st);
    }
    long retry_after = -1;
    char *reply = NULL;
    size_t reply_len = 0;
    long status = hub_request(s, method, url, token, body, len, &reply, &reply_len, &retry_after);
    if (push && status == 200 && chance(s, s->rates.hub_crash_after_commit)) {
        free(reply);
        hub_crash(s, EV_hub_crash_after_commit);
        out->maybe_delivered = true;
        return duka_err_set(err, DUKA_OFFLINE, "connection reset (hub crashed)");
    }
    if (chance(s, s->rates.lost_reply)) {
        free(reply);
        count(s, EV_net_lost_reply);
        out->maybe_delivered = true;
        return duka_err_set(err, DUKA_OFFLINE, "connection reset (reply lost)");
    }
    if (chance(s, s->rates.till_crash_in_sync / 2)) {
        /* The till dies after the hub answered (a push or a pull page), before it recorded
         * the answer. */
        count(s, EV_till_crash_in_sync);
        t->crashed = true;
    }
    out->status = status;
    out->body = reply;
    out->len = reply_len;
    out->retry_after_s = retry_after;
    return DUKA_OK;
}

/* ---- the network between the hub and eTIMS, and the simulator behind it ---- */

/* What a reply turns into on the way back: each a way eTIMS (or a proxy in front of it) has
 * been seen to answer, after the simulator already kept the invoice. */
static const char *const bad_replies[] = {
    "<html><body>502 Bad Gateway</body></html>",
    "{\"resultCd\":\"000\",\"resultMsg\":\"It is succeeded\",\"data\":{\"curRcptNo\":\"x\"}}",
    "{\"resultCd\":\"123\",\"resultMsg\":\"a code nobody documented\",\"data\":null}",
    "{\"resultCd\":000}",
    "",
};

/* One eTIMS request, in-process: the hub's eTIMS client (etims_client.c) calls this instead
 * of libcurl, and behind it the real simulator (src/sim/etims_sim.c) answers, with faults
 * from the seed around it. */
static duka_rc etims_transport(void *ctx, const char *method, const char *url,
                               const char *token, const char *body, size_t len,
                               const duka_http_options *opt, duka_http_reply *out,
                               duka_err *err)
{
    (void)token;
    sim *s = ctx;
    memset(out, 0, sizeof(*out));
    out->retry_after_s = -1;
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    const char *what = path ? strrchr(path, '/') + 1 : "?";
    if (!s->healing && s->now_ms < s->kra_down_until_ms) {
        count(s, EV_etims_unreachable);
        return duka_err_set(err, DUKA_OFFLINE, "Connection refused (eTIMS down)");
    }
    if (chance(s, s->rates.etims_lost_request)) {
        count(s, EV_etims_lost_request);
        return duka_err_set(err, DUKA_OFFLINE, "Could not resolve host (dropped)");
    }
    if (chance(s, s->rates.etims_http_error)) {
        /* A gateway in front of eTIMS answers for it; nothing reached the service. */
        count(s, EV_etims_http_error);
        bool busy = below(s, 2) == 0;
        out->status = busy ? 429 : 503;
        out->retry_after_s = busy ? 1 + below(s, 30) : -1;
        out->body = strdup(busy ? "Too Many Requests" : "Service Unavailable");
        out->len = out->body ? strlen(out->body) : 0;
        trace(s, "eTIMS %s: HTTP %ld", what, out->status);
        return out->body ? DUKA_OK : duka_err_set(err, DUKA_NOMEM, "out of memory");
    }
    if (chance(s, s->rates.etims_999)) {
        count(s, EV_etims_999);
        out->status = 200;
        out->body = strdup("{\"resultCd\":\"999\",\"resultMsg\":\"An unknown error occurred\","
                           "\"resultDt\":\"20261121120000\",\"data\":null}");
        out->len = out->body ? strlen(out->body) : 0;
        trace(s, "eTIMS %s: 999", what);
        return out->body ? DUKA_OK : duka_err_set(err, DUKA_NOMEM, "out of memory");
    }
    /* The request as the simulator's HTTP server would hand it over: its headers. */
    char names[DUKA_HTTP_EXTRA_HEADERS_MAX][64], values[DUKA_HTTP_EXTRA_HEADERS_MAX][200];
    const char *headers[2 * DUKA_HTTP_EXTRA_HEADERS_MAX + 2] = {0};
    int nh = 0;
    for (int k = 0; opt && k < DUKA_HTTP_EXTRA_HEADERS_MAX && opt->headers[k]; k++) {
        const char *colon = strchr(opt->headers[k], ':');
        if (colon == NULL)
            continue;
        snprintf(names[k], sizeof(names[k]), "%.*s", (int)(colon - opt->headers[k]),
                 opt->headers[k]);
        snprintf(values[k], sizeof(values[k]), "%s", colon[1] == ' ' ? colon + 2 : colon + 1);
        headers[nh++] = names[k];
        headers[nh++] = values[k];
    }
    int deliveries = chance(s, s->rates.etims_duplicate) ? 2 : 1;
    if (deliveries == 2)
        count(s, EV_etims_duplicate); /* a resend by a proxy: the second is answered 994 */
    duka_http_exchange ex = {0};
    for (int d = 0; d < deliveries; d++) {
        if (d > 0) {
            json_decref(ex.reply);
            if (ex.bytes_owned)
                free((void *)(uintptr_t)ex.bytes);
        }
        ex = (duka_http_exchange){.method = method, .path = path ? path : "/",
                                  .body = body ? body : "", .body_len = len,
                                  .retry_after_s = -1, .local_headers = headers};
        duka_etims_sim_handle(s->kra, &ex);
    }
    char *reply = NULL;
    if (ex.bytes != NULL) {
        reply = malloc(ex.bytes_len + 1);
        if (reply != NULL) {
            memcpy(reply, ex.bytes, ex.bytes_len);
            reply[ex.bytes_len] = '\0';
        }
    } else if (ex.reply != NULL) {
        reply = json_dumps(ex.reply, JSON_COMPACT);
    }
    json_decref(ex.reply);
    if (ex.bytes_owned)
        free((void *)(uintptr_t)ex.bytes);
    if (reply == NULL)
        die("out of memory", NULL);
    trace(s, "eTIMS %s: %u %.120s", what, ex.status, reply);
    if (chance(s, s->rates.etims_lost_reply)) {
        count(s, EV_etims_lost_reply); /* it arrived; the answer did not come back */
        free(reply);
        out->maybe_delivered = true;
        return duka_err_set(err, DUKA_OFFLINE, "Operation timed out (reply lost)");
    }
    if (chance(s, s->rates.etims_bad_reply)) {
        count(s, EV_etims_bad_reply);
        free(reply);
        int k = below(s, (int)(sizeof(bad_replies) / sizeof(bad_replies[0])) + 1);
        if (k == (int)(sizeof(bad_replies) / sizeof(bad_replies[0]))) {
            /* A huge body: beyond what the client reads of an eTIMS answer. */
            size_t n = DUKA_ETIMS_REPLY_MAX_BYTES + 1;
            reply = malloc(n + 1);
            if (reply == NULL)
                die("out of memory", NULL);
            memset(reply, ' ', n);
            reply[0] = '{';
            reply[n - 1] = '}';
            reply[n] = '\0';
        } else {
            reply = strdup(bad_replies[k]);
            if (reply == NULL)
                die("out of memory", NULL);
        }
    }
    out->status = ex.status;
    out->body = reply;
    out->len = strlen(reply);
    return DUKA_OK;
}

/* ---- the hub's eTIMS forwarders, one step at a time ---- */

static const char *verdict_name(duka_hub_outbox_verdict v)
{
    static const char *const names[] = {"sent", "retry", "defer", "unclear", "await",
                                        "refused", "wait"};
    return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

/* Claims up to window due invoices (under a lease of svc.lease_ms) and prepares each, as
 * hub_forwarder.c's fill_slots does. */
static void forwarder_claim(sim *s, sim_forwarder *f, int window)
{
    duka_hub_outbox_claim c;
    c.count = 0;
    duka_err err = {0};
    if (duka_hub_outbox_claim_due(s->hub, DUKA_DEST_ETIMS, f->owner, window,
                                  s->now_ms + f->svc.lease_ms, s->now_ms, &c, &err) != DUKA_OK) {
        trace(s, "eTIMS claim failed: %s", err.msg);
        return;
    }
    for (int k = 0; k < c.count; k++) {
        sim_fwd_item *it = &f->items[f->count++];
        memset(it, 0, sizeof(*it));
        it->item = c.items[k];
        c.items[k].payload = NULL;
        it->ready = f->svc.prepare(f->svc.ctx, s->hub, &it->item, &it->prepared, &it->outcome,
                                   it->err, sizeof(it->err));
        it->sent = !it->ready;
        count(s, EV_etims_claimed);
        trace(s, "eTIMS claim %s #%lld (%s) %s%s", it->item.entity_id,
              (long long)it->item.seq_no, it->item.command_type,
              it->item.unclear ? "unclear " : "", it->ready ? "ready" : it->err);
    }
}

/* Sends one claimed invoice (one attempt of the eTIMS protocol: etims_forward.c). */
static void forwarder_send(sim *s, sim_forwarder *f, sim_fwd_item *it)
{
    f->svc.send(f->svc.ctx, &it->item, it->prepared, &it->outcome, &it->result, it->err,
                sizeof(it->err));
    it->sent = true;
    count(s, EV_etims_sent);
    if (it->outcome.verdict == DUKA_HUB_OUTBOX_SENT)
        count(s, EV_etims_signed);
    trace(s, "eTIMS sent %s #%lld: %s %s", it->item.entity_id, (long long)it->item.seq_no,
          verdict_name(it->outcome.verdict), it->err);
}

/* Records every claimed invoice's outcome in one transaction (hub_forwarder.c's
 * record_done), then forgets them. */
static void forwarder_record(sim *s, sim_forwarder *f)
{
    duka_hub_outbox_item items[SIM_FWD_WINDOW];
    duka_hub_outbox_outcome outcomes[SIM_FWD_WINDOW];
    for (int k = 0; k < f->count; k++) {
        sim_fwd_item *it = &f->items[k];
        items[k] = it->item;
        outcomes[k] = duka_forwarder_outcome(&it->item, &it->outcome, it->err, it->result);
    }
    if (chance(s, s->rates.storage)) {
        s->hub_fail_next_commit = true;
        count(s, EV_hub_storage_fault);
    }
    int lost = 0;
    duka_err err = {0};
    duka_rc rc = duka_hub_outbox_finish(s->hub, f->owner, items, outcomes, f->count, s->now_ms,
                                        &lost, &err);
    s->hub_fail_next_commit = false;
    if (lost > 0)
        s->events[EV_etims_lease_lost] += lost;
    trace(s, "eTIMS record %d: rc=%d lost=%d", f->count, (int)rc, lost);
    for (int k = 0; k < f->count; k++) {
        free(f->items[k].item.payload);
        free(f->items[k].prepared);
        free(f->items[k].result);
    }
    f->count = 0;
}

/* One step of one hub's forwarder: claim when it holds nothing, else send the next claimed
 * invoice, else record what it sent. The hub may die between claim and send or between
 * send and record (kill -9: its leases stay in the store). */
static void forward_step(sim *s, int k, int window)
{
    sim_forwarder *f = &s->fwd[k];
    if (f->count == 0) {
        forwarder_claim(s, f, window);
        if (f->count > 0 && chance(s, s->rates.hub_crash_after_claim))
            hub_crash(s, EV_hub_crash_after_claim);
        return;
    }
    for (int j = 0; j < f->count; j++)
        if (!f->items[j].sent) {
            forwarder_send(s, f, &f->items[j]);
            if (chance(s, s->rates.hub_crash_after_send))
                hub_crash(s, EV_hub_crash_after_send);
            return;
        }
    forwarder_record(s, f);
}

/* One of the hubs dies alone (several hubs on one PostgreSQL): the other must not send its
 * invoices again before their leases run out, and then asks before it sends. */
static void forwarder_crash(sim *s)
{
    if (s->nfwd < 2)
        return;
    int k = below(s, s->nfwd);
    count(s, EV_forwarder_crash);
    trace(s, "hub %d dies with %d invoices claimed", k, s->fwd[k].count);
    forwarder_stop(&s->fwd[k]);
    forwarder_start(s, &s->fwd[k]);
}

/* The hub's eTIMS items not done: pending, processing, awaiting or failed. */
static int64_t etims_open(sim *s, int64_t *failed)
{
    duka_hub_outbox_counts c;
    duka_err err = {0};
    if (duka_hub_outbox_count(s->hub, s->business, DUKA_DEST_ETIMS, &c, &err) != DUKA_OK)
        die("counting the eTIMS outbox", &err);
    if (failed)
        *failed = c.failed;
    return c.pending + c.processing + c.awaiting + c.failed;
}

/* ---- tills ---- */

/* From a crash point on, nothing the till commits reaches the disk. */
static int till_commit_hook(void *ctx)
{
    sim_till *t = ctx;
    if (t->crashed)
        return 1;
    if (t->fail_next_commit) {
        t->fail_next_commit = false;
        return 1;
    }
    return 0;
}

static void till_open(sim *s, int i, bool create)
{
    duka_err err = {0};
    sim_till *t = &s->tills[i];
    if (duka_till_db_open(t->path, create, &t->db, &err) != DUKA_OK)
        die("opening a till", &err);
    t->crashed = false;
    t->fail_next_commit = false;
    sqlite3_commit_hook(t->db, till_commit_hook, t);
    (void)s;
}

static void till_crash(sim *s, int i, sim_event why)
{
    count(s, why);
    trace(s, "till %s crash (%s)", s->tills[i].terminal, event_names[why]);
    sqlite3_commit_hook(s->tills[i].db, NULL, NULL);
    duka_db_rollback(s->tills[i].db); /* an open transaction dies with the process */
    duka_db_close(s->tills[i].db);
    s->tills[i].db = NULL;
    till_open(s, i, false);
}

static void till_sync(sim *s, int i)
{
    sim_till *t = &s->tills[i];
    sim_link link = {s, i};
    duka_sync_options opt = {.clock = &s->clock, .transport = transport, .transport_ctx = &link,
                             .batch_size = 1 + below(s, 3) * 20};
    duka_sync_result res;
    duka_err err = {0};
    duka_rc rc = duka_sync_run(t->db, &opt, &res, &err);
    count(s, rc == DUKA_OK ? EV_sync_ok : EV_sync_failed);
    trace(s, "sync %s: rc=%d pushed=%lld dup=%lld failed=%lld conflicts=%lld pulled=%lld",
          t->terminal, (int)rc, (long long)res.pushed, (long long)res.duplicates,
          (long long)res.failed, (long long)res.conflicts, (long long)res.pulled);
    if (t->crashed)
        till_crash(s, i, EV_till_crash);
}

static void add_ack(sim *s, const duka_sale *sale)
{
    if (s->nacks == s->acks_cap) {
        s->acks_cap = s->acks_cap ? s->acks_cap * 2 : 256;
        duka_check_ack *n = realloc(s->acks, (size_t)s->acks_cap * sizeof(*n));
        if (n == NULL)
            die("out of memory", NULL);
        s->acks = n;
    }
    snprintf(s->acks[s->nacks].receipt_no, sizeof(s->acks[0].receipt_no), "%s", sale->receipt_no);
    s->acks[s->nacks].total_cents = sale->total_cents;
    s->nacks++;
}

static void till_sell(sim *s, int i)
{
    sim_till *t = &s->tills[i];
    /* The sale as the cashier asks for it (till/sale_input.h), through the checkout that
     * `duka sell` and POST /api/sales use: its tenders spread over the total. */
    duka_sale_input *in = duka_sale_input_new();
    duka_sale *sale = duka_sale_new();
    if (in == NULL || sale == NULL) {
        fprintf(stderr, "duka-sim: out of memory\n");
        exit(1);
    }
    in->item_count = 1 + below(s, 3);
    for (int k = 0; k < in->item_count; k++) {
        snprintf(in->items[k].sku, sizeof(in->items[k].sku), "SKU%02d", below(s, SIM_SKUS));
        in->items[k].qty_milli = (1 + below(s, 3)) * 1000;
    }
    int tender = below(s, 8);
    if (tender < 2) { /* M-Pesa for all */
        duka_checkout_payment *p = &in->payments[in->payment_count++];
        snprintf(p->method, sizeof(p->method), "mpesa");
        snprintf(p->reference, sizeof(p->reference), "QK%08d", below(s, 100000000));
    } else if (tender == 2) { /* split: KES 1.00 by M-Pesa, cash handed over with change */
        duka_checkout_payment *p = &in->payments[in->payment_count++];
        snprintf(p->method, sizeof(p->method), "mpesa");
        snprintf(p->reference, sizeof(p->reference), "QK%08d", below(s, 100000000));
        p->amount_cents = 100;
        p = &in->payments[in->payment_count++];
        snprintf(p->method, sizeof(p->method), "cash");
        p->amount_cents = 10000000; /* KES 100,000: more than any sale here comes to */
    } /* else cash for all */
    bool storage_fault = chance(s, s->rates.storage);
    if (storage_fault) {
        t->fail_next_commit = true;
        count(s, EV_till_storage_fault);
    }
    duka_err err = {0};
    duka_checkout_result res;
    /* Two cashiers take turns with sales made by none (`duka sell` without --cashier), so a
     * cashier lost or changed on the way to the hub is a mismatch for the checker. Chosen by
     * count, not drawn: a seed replays the run it replayed before cashiers. */
    static const duka_cashier cashiers[2] = {
        {"01a23c44-f77d-7c0d-89ca-4d6dc6bc2690", "Amina", "cashier"},
        {"01a23c44-f79b-760f-b73d-21b7f2c9502a", "Baraka Ochieng'", "manager"},
    };
    duka_checkout_options co = {0};
    int turn = t->rung++ % 3;
    co.cashier = turn < 2 ? &cashiers[turn] : NULL;
    duka_rc rc = duka_checkout_sell(t->db, &s->clock, in, &co, sale, &res, &err);
    duka_sale_input_free(in);
    bool fault_hit = storage_fault && !t->fail_next_commit; /* the hook consumed it */
    t->fail_next_commit = false;
    if (fault_hit && rc != DUKA_STORE) {
        /* A commit that failed must never be reported as a sale, nor as anything else. */
        fprintf(stderr, "duka-sim: seed %llu: a failed commit gave rc=%d (%s), not a storage "
                        "error\n", (unsigned long long)s->seed, (int)rc, err.msg);
        exit(1);
    }
    if (rc == DUKA_OK && chance(s, s->rates.till_crash_after_sale)) {
        /* Committed, but the till died before the cashier saw the receipt: not acknowledged,
         * and it must still reach the hub exactly once. */
        trace(s, "sale %s committed, unseen", sale->receipt_no);
        till_crash(s, i, EV_till_crash_after_sale);
    } else if (rc == DUKA_OK) {
        count(s, EV_sale_ok);
        add_ack(s, sale);
        trace(s, "sale %s total=%lld", sale->receipt_no, (long long)sale->total_cents);
    } else {
        count(s, EV_sale_refused);
        trace(s, "sale refused on %s: rc=%d", t->terminal, (int)rc);
    }
    duka_sale_free(sale);
}

/* A refund on till i of one of its sales (the seed picks which, which lines and how much):
 * the real refund path (till/refund.c), as `duka refund` runs it. Asking for more than is
 * left of a line is refused, and nothing is written. */
static void till_refund(sim *s, int i)
{
    sim_till *t = &s->tills[i];
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(t->db,
                           "SELECT receipt_no, (SELECT count(*) FROM sale_lines l WHERE"
                           " l.sale_id = s.id) FROM sales s WHERE kind = 'sale'"
                           " ORDER BY receipt_no LIMIT 1 OFFSET"
                           " (SELECT abs(?1) % max(count(*), 1) FROM sales WHERE kind = 'sale')",
                           -1, &st, NULL) != SQLITE_OK)
        die(sqlite3_errmsg(t->db), NULL);
    sqlite3_bind_int64(st, 1, below(s, 1000000));
    duka_refund_input *in = duka_refund_input_new();
    duka_sale *refund = duka_sale_new();
    if (in == NULL || refund == NULL)
        die("out of memory", NULL);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    int lines = found ? sqlite3_column_int(st, 1) : 0;
    if (found)
        snprintf(in->receipt_no, sizeof(in->receipt_no), "%s",
                 (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!found || lines == 0) {
        duka_refund_input_free(in);
        duka_sale_free(refund);
        return;
    }
    in->line_count = 1 + below(s, lines);
    int first = below(s, lines);
    for (int k = 0; k < in->line_count; k++) {
        in->lines[k].line = 1 + (first + k) % lines;
        in->lines[k].qty_milli = below(s, 2) ? 0 : 1000 * (1 + below(s, 2)); /* 0: the rest */
    }
    snprintf(in->reason, sizeof(in->reason), "0%d", 1 + below(s, 6));
    bool storage_fault = chance(s, s->rates.storage);
    if (storage_fault) {
        t->fail_next_commit = true;
        count(s, EV_till_storage_fault);
    }
    static const duka_cashier manager = {"01a23c44-f79b-760f-b73d-21b7f2c9502a",
                                         "Baraka Ochieng'", "manager"};
    duka_checkout_result res;
    duka_err err = {0};
    duka_rc rc = duka_refund_commit(t->db, &s->clock, in, &manager, refund, &res, &err);
    bool fault_hit = storage_fault && !t->fail_next_commit;
    t->fail_next_commit = false;
    if (fault_hit && rc == DUKA_OK) {
        fprintf(stderr, "duka-sim: seed %llu: a refund whose commit failed was reported as "
                        "done (%s)\n", (unsigned long long)s->seed, refund->receipt_no);
        exit(1);
    }
    if (rc == DUKA_OK) {
        count(s, EV_refund_ok);
        add_ack(s, refund);
        trace(s, "refund %s of %s total=%lld", refund->receipt_no, in->receipt_no,
              (long long)refund->total_cents);
    } else {
        count(s, EV_refund_refused);
        trace(s, "refund of %s refused: rc=%d", in->receipt_no, (int)rc);
    }
    duka_refund_input_free(in);
    duka_sale_free(refund);
}

/* ---- the hub's catalog changes ---- */

static void hub_catalog_change(sim *s)
{
    duka_err err = {0};
    int k = below(s, SIM_SKUS);
    char sku[16];
    snprintf(sku, sizeof(sku), "SKU%02d", k);
    duka_rc rc = duka_hub_store_begin(s->hub, &err);
    if (rc == DUKA_OK && k >= SIM_SKUS - 2 && below(s, 2) == 0) {
        rc = duka_hub_product_archive(s->hub, s->business, sku, s->now_ms, &err);
        if (rc == DUKA_NOTFOUND)
            rc = DUKA_OK;
    } else if (rc == DUKA_OK) {
        duka_hub_product p = {.price_cents = 100 + below(s, 100000), .tax_band = "ABCDE"[k % 5]};
        snprintf(p.sku, sizeof(p.sku), "%s", sku);
        snprintf(p.name, sizeof(p.name), "Product %d v%d", k, below(s, 100));
        rc = duka_hub_product_upsert(s->hub, s->business, &p, s->now_ms, &err);
    }
    if (rc == DUKA_OK)
        rc = duka_hub_store_commit(s->hub, &err);
    if (rc != DUKA_OK)
        duka_hub_store_rollback(s->hub);
    count(s, EV_catalog_change);
    trace(s, "catalog change %s: rc=%d", sku, (int)rc);
}

/* ---- one run ---- */

static void setup(sim *s)
{
    duka_err err = {0};
    snprintf(s->hub_path, sizeof(s->hub_path), "%s/hub.db", s->dir);
    snprintf(s->kra_path, sizeof(s->kra_path), "%s/etims-sim.db", s->dir);
    duka_config_defaults(&s->cfg);
    if (duka_config_set(&s->cfg, "ETIMS_BASE_URL", SIM_ETIMS_URL, DUKA_SOURCE_FLAG, "sim",
                        &err) != DUKA_OK)
        die("configuring eTIMS", &err);
    duka_etims_sim_options ko = {.state_path = s->kra_path, .seed = s->seed,
                                 .sequence_window = s->sequence_window, .clock = &s->clock};
    if (duka_etims_sim_open(&ko, &s->kra, &err) != DUKA_OK)
        die("starting the eTIMS simulator", &err);
    hub_open(s, true);
    if (duka_hub_business_register(s->hub, "Sim Duka", SIM_KRA_PIN, false, s->business,
                                   &err) != DUKA_OK)
        die("creating the business", &err);
    s->healing = true; /* the catalog goes in and out without faults */
    for (int k = 0; k < SIM_SKUS; k++) {
        duka_hub_product p = {.price_cents = 50 + 25 * k, .tax_band = "ABCDE"[k % 5],
                              .stock_milli = 100000, .has_stock = true};
        snprintf(p.sku, sizeof(p.sku), "SKU%02d", k);
        snprintf(p.name, sizeof(p.name), "Product %d", k);
        if (duka_hub_store_begin(s->hub, &err) != DUKA_OK ||
            duka_hub_product_upsert(s->hub, s->business, &p, s->now_ms, &err) != DUKA_OK ||
            duka_hub_store_commit(s->hub, &err) != DUKA_OK)
            die("adding a product", &err);
    }
    for (int i = 0; i < s->ntills; i++) {
        sim_till *t = &s->tills[i];
        char terminal[8];
        snprintf(terminal, sizeof(terminal), "T%02d", i + 1);
        memcpy(t->terminal, terminal, sizeof(terminal));
        snprintf(t->path, sizeof(t->path), "%s/till-%s.db", s->dir, terminal);
        if (duka_hub_device_add(s->hub, s->business, t->terminal, s->tokens[i], &err) != DUKA_OK)
            die("adding a device", &err);
        till_open(s, i, true);
        if (duka_db_begin(t->db, &err) != DUKA_OK ||
            duka_meta_set(t->db, DUKA_META_TERMINAL, t->terminal, &err) != DUKA_OK ||
            duka_meta_set(t->db, DUKA_META_HUB_URL, "http://sim.hub", &err) != DUKA_OK ||
            duka_meta_set(t->db, DUKA_META_TOKEN, s->tokens[i], &err) != DUKA_OK ||
            duka_meta_set(t->db, DUKA_META_CA_FILE, "", &err) != DUKA_OK ||
            duka_db_commit(t->db, &err) != DUKA_OK)
            die("initialising a till", &err);
        till_sync(s, i);
    }
    s->healing = false;
}

static void draw_rates(sim *s)
{
    /* Swarm testing: each seed its own mix, some faults off entirely. */
    int storm = below(s, 4); /* 0 calm … 3 stormy */
    int base = 20 + storm * 60;
    s->rates.drop = below(s, 3) ? below(s, base) : 0;
    s->rates.lost_reply = below(s, 3) ? below(s, base) : 0;
    s->rates.duplicate = below(s, 3) ? below(s, base / 2 + 1) : 0;
    s->rates.delay = below(s, 3) ? below(s, base / 2 + 1) : 0;
    s->rates.hub_crash_after_commit = below(s, 2) ? below(s, base / 3 + 1) : 0;
    s->rates.till_crash_in_sync = below(s, 2) ? below(s, base / 3 + 1) : 0;
    s->rates.till_crash_after_sale = below(s, 2) ? below(s, 30) : 0;
    s->rates.storage = below(s, 2) ? below(s, 40) : 0;
    /* eTIMS: a second hub forwarding at once in half the seeds; a sequencing window (921
     * beyond it) in a third. */
    s->nfwd = below(s, 2) ? 2 : 1;
    s->sequence_window = below(s, 3) == 0 ? 1 + below(s, 8) : 0;
    s->rates.etims_lost_request = below(s, 3) ? below(s, base) : 0;
    s->rates.etims_lost_reply = below(s, 3) ? below(s, base) : 0;
    s->rates.etims_duplicate = below(s, 3) ? below(s, base / 2 + 1) : 0;
    s->rates.etims_http_error = below(s, 3) ? below(s, base / 2 + 1) : 0;
    s->rates.etims_999 = below(s, 4) == 0 ? 200 + below(s, 600) : below(s, base / 2 + 1);
    s->rates.etims_bad_reply = below(s, 3) ? below(s, base / 3 + 1) : 0;
    s->rates.hub_crash_after_claim = below(s, 2) ? below(s, base / 3 + 1) : 0;
    s->rates.hub_crash_after_send = below(s, 2) ? below(s, base / 3 + 1) : 0;
}

static void step(sim *s)
{
    int r = below(s, 100);
    int i = below(s, s->ntills);
    if (r < 38) {
        till_sell(s, i);
    } else if (r < 41) {
        till_refund(s, i);
    } else if (r < 53) {
        forward_step(s, below(s, s->nfwd), 1 + below(s, SIM_FWD_WINDOW));
    } else if (r < 54) {
        forwarder_crash(s);
    } else if (r < 55) {
        /* eTIMS down: minutes, or the hours of a bad day */
        int64_t ms = below(s, 4) ? 60000LL * (1 + below(s, 30)) : 3600000LL * (1 + below(s, 12));
        s->kra_down_until_ms = s->now_ms + ms;
        count(s, EV_etims_outage);
        trace(s, "eTIMS down for %lld s", (long long)(ms / 1000));
    } else if (r < 70) {
        if (chance(s, s->rates.storage)) {
            s->hub_fail_next_commit = true;
            count(s, EV_hub_storage_fault);
        }
        till_sync(s, i);
        s->hub_fail_next_commit = false;
    } else if (r < 80) {
        int jump = below(s, 100);
        if (jump < 3) {
            s->now_ms -= 3600000LL * (1 + below(s, 3)); /* someone set the clock back */
            count(s, EV_clock_back);
        } else if (jump < 10) {
            s->now_ms += 3600000LL * (1 + below(s, 12)); /* hours offline, maybe past midnight */
            count(s, EV_clock_jump);
        } else {
            s->now_ms += 1000 + below(s, 600000);
        }
    } else if (r < 83) {
        till_crash(s, i, EV_till_crash);
    } else if (r < 86) {
        hub_crash(s, EV_hub_crash);
    } else if (r < 90) {
        s->tills[i].partition_until_ms = s->now_ms + 1000 * (1 + below(s, 1800));
        count(s, EV_partition);
        trace(s, "partition %s", s->tills[i].terminal);
    } else if (r < 93) {
        hub_catalog_change(s);
    } else {
        deliver_late(s);
    }
    s->now_ms += below(s, 2000); /* every step takes a little time */
}

/* Heals the network and drains every till: liveness. */
static bool heal_and_drain(sim *s)
{
    while (s->ndelayed > 0)
        deliver_late(s); /* stragglers arrive; they are duplicates by now */
    s->healing = true;
    int64_t t0 = s->now_ms;
    for (int round = 1; round <= SIM_HEAL_ROUNDS_MAX; round++) {
        s->now_ms += 6 * 60 * 1000; /* past the longest backoff */
        bool all_done = true;
        for (int i = 0; i < s->ntills; i++) {
            till_sync(s, i);
            duka_outbox_counts c;
            duka_err err = {0};
            if (duka_outbox_count(s->tills[i].db, &c, &err) != DUKA_OK)
                die("counting the outbox", &err);
            if (c.pending + c.processing + c.failed + c.conflict > 0)
                all_done = false;
        }
        if (all_done) {
            s->drain_rounds = round;
            s->drain_sim_ms = s->now_ms - t0;
            return true;
        }
    }
    return false;
}

/* eTIMS answers again: the hubs forward until every invoice is accepted (liveness), as an
 * operator would help — the failed ones (attempts used up by the storm) retried by hand
 * (`duka hub outbox retry`); then each till pulls its signatures. */
static bool heal_etims(sim *s)
{
    duka_err err = {0};
    int64_t woken = 0;
    /* What hub_forwarder.c does when the service answers again. */
    if (duka_hub_outbox_wake(s->hub, DUKA_DEST_ETIMS, s->now_ms, &woken, &err) != DUKA_OK)
        die("waking the eTIMS outbox", &err);
    bool done = false;
    for (int round = 1; round <= SIM_ETIMS_HEAL_ROUNDS_MAX && !done; round++) {
        for (int k = 0; k < s->nfwd; k++) {
            do /* claim, send each, record */
                forward_step(s, k, SIM_FWD_WINDOW);
            while (s->fwd[k].count > 0);
        }
        int64_t failed = 0;
        done = etims_open(s, &failed) == 0;
        if (failed > 0) {
            int retried = 0;
            if (duka_hub_outbox_retry(s->hub, s->business, 0, s->now_ms, &retried, &err) !=
                DUKA_OK)
                die("retrying failed invoices", &err);
            s->events[EV_etims_retried_by_hand] += retried;
        }
        s->now_ms += 20000; /* past a credit note's wait for its original, a backoff */
        s->etims_heal_rounds = round;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < s->ntills; i++)
            till_sync(s, i);
    return done;
}

static void remove_files(const char *dir)
{
    static const char *const names[] = {"hub.db", "till-T01.db", "till-T02.db", "till-T03.db",
                                        "till-T04.db", "till-T05.db", "till-T06.db",
                                        "till-T07.db", "till-T08.db", "etims-sim.db"};
    static const char *const suffixes[] = {"", "-wal", "-shm", ".sync-lock"};
    char p[SIM_PATH_MAX + 64];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        for (size_t k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
            snprintf(p, sizeof(p), "%s/%s%s", dir, names[i], suffixes[k]);
            unlink(p);
        }
}

/* After healing, every till's catalog is the hub's: the same SKUs, prices, tax bands and
 * archived flags (pull is resumable and loses no change, whatever crashed in between).
 * Returns the number of tills that differ; names the first in why. */
static int catalog_diverged(const sim *s, char *why, size_t cap)
{
    sqlite3 *db = NULL;
    int diverged = 0;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL) !=
        SQLITE_OK)
        die("opening a memory database", NULL);
    char *sql = sqlite3_mprintf("ATTACH 'file:%q?mode=ro' AS h", s->hub_path);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die("attaching the hub", NULL);
    sqlite3_free(sql);
    for (int i = 0; i < s->ntills; i++) {
        sql = sqlite3_mprintf("ATTACH 'file:%q?mode=ro' AS t", s->tills[i].path);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_free(sql);
        sqlite3_stmt *st = NULL;
        const char *diff =
            "SELECT count(*), min(sku) FROM ("
            " SELECT * FROM (SELECT sku, name, price_cents, tax_band, deleted FROM h.products"
            "  WHERE business_id = ?1 EXCEPT SELECT sku, name, price_cents, tax_band, deleted"
            "  FROM t.products)"
            " UNION ALL SELECT * FROM (SELECT sku, name, price_cents, tax_band, deleted"
            "  FROM t.products EXCEPT SELECT sku, name, price_cents, tax_band, deleted"
            "  FROM h.products WHERE business_id = ?1))";
        if (sqlite3_prepare_v2(db, diff, -1, &st, NULL) != SQLITE_OK)
            die(sqlite3_errmsg(db), NULL);
        sqlite3_bind_text(st, 1, s->business, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0) {
            if (diverged++ == 0)
                snprintf(why, cap, "catalog of %s differs from the hub's (%d rows, e.g. %s)",
                         s->tills[i].terminal, sqlite3_column_int(st, 0),
                         (const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
        sqlite3_exec(db, "DETACH t", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return diverged;
}

typedef struct run_result {
    bool ok;
    uint64_t trace;
    duka_check_report check;
    int64_t events[EV_COUNT];
    int64_t drain_rounds, drain_sim_ms, etims_heal_rounds;
    char why[DUKA_CHECK_PROBLEM_MAX + 64];
} run_result;

static void run_seed(uint64_t seed, int commands, int ntills, const char *dir, bool verbose,
                     run_result *out)
{
    sim *s = calloc(1, sizeof(*s));
    if (s == NULL)
        die("out of memory", NULL);
    s->seed = seed;
    s->rng = seed * 0x2545f4914f6cdd1dULL + 1;
    s->verbose = verbose;
    s->trace = 0xcbf29ce484222325ULL;
    s->ntills = ntills;
    s->now_ms = SIM_START_MS + (int64_t)(seed % 1000) * 86400000LL / 7;
    s->clock = (duka_clock){sim_now, s};
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    duka_random_seed_for_simulation(seed ^ 0x5eed5eed5eedULL);
    remove_files(dir);
    draw_rates(s);
    setup(s);
    for (int c = 0; c < commands; c++)
        step(s);
    bool drained = heal_and_drain(s);
    bool invoiced = drained && heal_etims(s);
    for (int i = 0; i < s->ntills; i++) {
        duka_db_close(s->tills[i].db);
        s->tills[i].db = NULL;
    }
    hub_close(s);
    duka_etims_sim_close(s->kra);
    s->kra = NULL;
    memset(out, 0, sizeof(*out));
    const char *tills[SIM_TILLS_MAX];
    for (int i = 0; i < s->ntills; i++)
        tills[i] = s->tills[i].path;
    duka_check_input in = {.hub_db = s->hub_path, .business_id = s->business, .till_dbs = tills,
                           .till_count = s->ntills, .acked = s->acks, .acked_count = s->nacks,
                           .require_drained = true, .expect_no_conflicts = true,
                           .etims_state = s->kra_path, .require_invoiced = true};
    duka_err err = {0};
    if (duka_check_run(&in, &out->check, &err) != DUKA_OK)
        die("running the checker", &err);
    char catalog_why[256] = "";
    int diverged = drained ? catalog_diverged(s, catalog_why, sizeof(catalog_why)) : 0;
    out->ok = drained && invoiced && out->check.ok && diverged == 0;
    if (drained && !invoiced)
        snprintf(out->why, sizeof(out->why),
                 "liveness: the hub's eTIMS outbox did not drain within %d rounds of "
                 "forwarding after healing", SIM_ETIMS_HEAL_ROUNDS_MAX);
    else if (diverged > 0)
        snprintf(out->why, sizeof(out->why), "%s", catalog_why);
    else if (!drained)
        snprintf(out->why, sizeof(out->why),
                 "liveness: the queues did not drain within %d syncs per till after healing",
                 SIM_HEAL_ROUNDS_MAX);
    else if (!out->check.ok)
        snprintf(out->why, sizeof(out->why), "%s", out->check.first_problem);
    out->trace = s->trace;
    memcpy(out->events, s->events, sizeof(out->events));
    out->drain_rounds = s->drain_rounds;
    out->etims_heal_rounds = s->etims_heal_rounds;
    out->drain_sim_ms = s->drain_sim_ms;
    for (int i = 0; i < s->ndelayed; i++)
        free(s->delayed[i].body);
    free(s->acks);
    free(s);
    if (out->ok)
        remove_files(dir);
}

static int usage(const char *msg)
{
    fprintf(stderr,
            "duka-sim: %s\n"
            "usage: duka-sim [--seed S] [--seeds N] [--commands M] [--tills K] [--dir DIR] "
            "[--twice] [-v]\n"
            "  runs N seeds from S (default: S from the time, N 1) of M commands (500) on K "
            "tills (3)\n",
            msg);
    return 2;
}

static bool parse_u64(const char *text, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (text == NULL || *text == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t seed = (uint64_t)time(NULL), seeds = 1, commands = 500, ntills = 3;
    const char *dir_arg = NULL;
    bool twice = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--seed") == 0)
            ok = parse_u64(v, 0, UINT64_MAX / 2, &seed), i++;
        else if (strcmp(a, "--seeds") == 0)
            ok = parse_u64(v, 1, 10000000, &seeds), i++;
        else if (strcmp(a, "--commands") == 0)
            ok = parse_u64(v, 1, 1000000, &commands), i++;
        else if (strcmp(a, "--tills") == 0)
            ok = parse_u64(v, 1, SIM_TILLS_MAX, &ntills), i++;
        else if (strcmp(a, "--dir") == 0 && v != NULL)
            dir_arg = v, i++;
        else if (strcmp(a, "--twice") == 0)
            twice = true;
        else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
            verbose = true;
        else
            return usage("unknown argument");
        if (!ok)
            return usage("bad value for an option");
    }
    if (!verbose)
        setenv("DUKA_LOG_LEVEL", "off", 1); /* injected faults would log thousands of errors */
    /* tmpfs when there is one: the simulator tests logic, not the disk (the power-loss
     * harness in tests/storage does), and fsyncs would dominate its time. */
    char dir[SIM_PATH_MAX];
    if (dir_arg != NULL) {
        snprintf(dir, sizeof(dir), "%s", dir_arg);
        mkdir(dir, 0700);
    } else {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0
                               ? "/dev/shm"
                               : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(dir, sizeof(dir), "%s/duka-sim-XXXXXX", base);
        if (mkdtemp(dir) == NULL)
            die("creating a work folder", NULL);
    }
    int64_t totals[EV_COUNT] = {0};
    int64_t acked = 0, hub_sales = 0, lost = 0, dup = 0, unexpected = 0, max_drain = 0;
    int64_t invoices = 0, max_etims_rounds = 0;
    int64_t t0 = duka_monotonic_ms();
    int failed = 0;
    for (uint64_t k = 0; k < seeds; k++) {
        uint64_t sd = seed + k;
        run_result r;
        run_seed(sd, (int)commands, (int)ntills, dir, verbose, &r);
        if (r.ok && twice && k == 0) {
            run_result again;
            run_seed(sd, (int)commands, (int)ntills, dir, false, &again);
            if (again.trace != r.trace) {
                fprintf(stderr, "duka-sim: seed %llu is not deterministic: trace %016llx then "
                                "%016llx\n", (unsigned long long)sd,
                        (unsigned long long)r.trace, (unsigned long long)again.trace);
                return 1;
            }
            printf("sim: seed %llu replayed identically (trace %016llx)\n",
                   (unsigned long long)sd, (unsigned long long)r.trace);
        }
        for (int e = 0; e < EV_COUNT; e++)
            totals[e] += r.events[e];
        acked += r.check.acked;
        hub_sales += r.check.hub_sales;
        lost += r.check.lost;
        dup += r.check.duplicated;
        unexpected += r.check.unexpected;
        if (r.drain_rounds > max_drain)
            max_drain = r.drain_rounds;
        invoices += r.check.invoices;
        if (r.etims_heal_rounds > max_etims_rounds)
            max_etims_rounds = r.etims_heal_rounds;
        if (!r.ok) {
            failed++;
            printf("sim: seed %llu FAILED: %s\n", (unsigned long long)sd, r.why);
            duka_check_print(stdout, &r.check);
            printf("sim: rerun: duka-sim --seed %llu --commands %llu --tills %llu -v "
                   "(files kept in %s)\n",
                   (unsigned long long)sd, (unsigned long long)commands,
                   (unsigned long long)ntills, dir);
            break;
        }
    }
    int64_t ms = duka_monotonic_ms() - t0;
    printf("sim: seeds %llu..%llu, %llu commands each on %llu tills, %lld ms\n",
           (unsigned long long)seed, (unsigned long long)(seed + seeds - 1),
           (unsigned long long)commands, (unsigned long long)ntills, (long long)ms);
    printf("sim: events:");
    for (int e = 0; e < EV_COUNT; e++)
        printf(" %s=%lld", event_names[e], (long long)totals[e]);
    printf("\nsim: acknowledged=%lld hub_sales=%lld lost=%lld duplicated=%lld unexpected=%lld "
           "max_drain_syncs=%lld invoices=%lld max_etims_heal_rounds=%lld\n",
           (long long)acked, (long long)hub_sales, (long long)lost, (long long)dup,
           (long long)unexpected, (long long)max_drain, (long long)invoices,
           (long long)max_etims_rounds);
    printf("sim: %s\n", failed ? "FAILED" : "ok");
    if (!failed && dir_arg == NULL)
        rmdir(dir);
    return failed ? 1 : 0;
}
