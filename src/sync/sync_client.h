/*
 * sync_client.h — the till's side of sync: push the outbox to the hub, pull catalog changes.
 *
 * Push: items are claimed from the outbox in FIFO order in batches, sent to POST /v1/push,
 * and marked from the hub's per-command answers only: "applied" and "duplicate" are done,
 * "conflict" is kept as a visible conflict, "rejected" fails the item with its reason.
 * Anything else — no reply, a lost reply, a 5xx — puts the batch back to pending with the
 * same command ids, so the next sync resends it and the hub answers "duplicate" for what it
 * already has. Pull: pages of GET /v1/pull, each page and the new cursor in one transaction.
 *
 * Only one sync runs per till database at a time (an advisory lock file beside it); a second
 * caller waits for the first to finish.
 */
#ifndef DUKA_SYNC_CLIENT_H
#define DUKA_SYNC_CLIENT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/limits.h"
#include "net/http_client.h"

/* How a sync's requests reach the hub (net/http_client.h). */
typedef duka_http_transport duka_sync_transport;

typedef struct duka_sync_options {
    int batch_size;          /* commands per push, 1..DUKA_SYNC_BATCH_MAX */
    int pipeline;            /* pushes in flight at once, 1..DUKA_SYNC_PIPELINE_MAX; 0: default */
    const duka_clock *clock; /* NULL: system clock */
    /* Called (once) when another sync of this database is running and this one must wait
     * for it; NULL to wait silently. */
    void (*on_wait)(void *ctx);
    void *on_wait_ctx;
    /* When set and it becomes true, the sync stops between batches and abandons a request
     * in flight (its batch goes back to pending). NULL: run to the end. */
    const atomic_bool *cancel;
    /* NULL: HTTP with libcurl (duka_http_send). The deterministic simulator (tests/sim)
     * passes its simulated network here. */
    duka_sync_transport transport;
    void *transport_ctx;
} duka_sync_options;

typedef struct duka_sync_result {
    int64_t pushed;     /* applied + duplicate */
    int64_t duplicates; /* of which the hub already had */
    int64_t pulled;
    int64_t failed;
    int64_t conflicts;
    int64_t duration_ms;
    const char *connectivity; /* "online" | "offline" */
    /* What the last exchange with the hub showed (feeds the connectivity monitor). */
    bool reached;          /* an HTTP answer came back */
    long http_status;      /* of the last answer */
    int64_t latency_ms;    /* of the last answer */
    long retry_after_s;    /* Retry-After of the last answer, -1 when none */
    int64_t waited_ms;     /* time spent waiting for another sync of this database */
} duka_sync_result;

/* Pushes everything pending, then pulls. DUKA_OFFLINE when the hub cannot be reached (or the
 * connection broke: nothing is lost, the next sync resends), DUKA_AUTH when it refused the
 * token, DUKA_PROTOCOL when it answered something that is not the duka protocol. res is
 * filled in every case. */
duka_rc duka_sync_run(sqlite3 *db, const duka_sync_options *opt, duka_sync_result *res,
                      duka_err *err);

/* The result as the JSON object of `duka sync --json` (new reference). */
json_t *duka_sync_result_json(const duka_sync_result *r);

/* Pulls catalog changes only (logged in the history; a success is the last sync). */
duka_rc duka_sync_pull(sqlite3 *db, int64_t *pulled, duka_err *err);

/* What GET /v1/whoami tells a till being set up about its business. */
typedef struct duka_hub_whoami {
    char business_name[DUKA_BUSINESS_NAME_MAX + 1];
    char kra_pin[DUKA_KRA_PIN_LEN + 1];
} duka_hub_whoami;

/* Asks hub_url who token belongs to and checks it is terminal (till init), presenting the
 * till database's id (till_id, may be NULL): the hub binds the token to it, or, with replace,
 * moves the binding from another database to this one. Errors: DUKA_OFFLINE unreachable,
 * DUKA_PROTOCOL "not a duka hub", DUKA_AUTH "token rejected", DUKA_CONFLICT when the token is
 * bound to another till database (the hub's sentence), DUKA_INPUT when the token belongs to
 * another terminal. ca_file: CAs for an https hub (NULL: the system's). who may be NULL. */
duka_rc duka_sync_check_hub(const char *hub_url, const char *token, const char *terminal,
                            const char *ca_file, const char *till_id, bool replace,
                            duka_hub_whoami *who, duka_err *err);

#endif
