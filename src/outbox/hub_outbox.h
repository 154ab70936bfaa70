/*
 * hub_outbox.h — the hub's outbox towards the outside world (eTIMS now; M-Pesa, card capture,
 * Conexxus next): the second hop of the one outbox engine (outbox.h is the first, till -> hub).
 *
 * Both hops share the policy (outbox.h: queue priorities, max attempts, backoff 1-2-4-8 s
 * with jitter, the wall-clock guard) and the life of an item:
 *
 *   pending --claim--> processing --answer--> done
 *      ^                  |  |                 (its result kept for the till: outbox_results)
 *      |   retry later    |  +--> awaiting  (an answer arrives later: a callback) --> done
 *      +------------------+  +--> failed    (attempts used up, or refused: visible, retried
 *                                            by hand: duka hub outbox retry)
 *
 * What the hub hop adds, because several hubs may share one PostgreSQL:
 *   - a destination per item ("etims"), and a worker per destination;
 *   - a lease taken in the database: a claimed item carries the claiming hub's id and a
 *     deadline; no other hub takes it before the deadline; a hub that died holding it (kill -9
 *     between send and record) lets the lease run out, and the next claim marks the item
 *     `unclear` (it may have reached the service: ask before resending);
 *   - FIFO per stream: items are claimed in (priority, stream, seq_no) order; seq_no is a
 *     NO-GAP number per stream handed out in the transaction that enqueues (eTIMS' invcNo);
 *   - every attempt logged (hub_outbox_attempts); results the till needs back (a signed
 *     invoice) kept for good in outbox_results, numbered per terminal for the pull.
 *
 * Enqueue runs inside the caller's transaction (the push that applies the sale): the sale and
 * the invoice job commit together or not at all. Claim and finish run in their own.
 */
#ifndef DUKA_HUB_OUTBOX_H
#define DUKA_HUB_OUTBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"
#include "protocol/sale.h"

typedef struct duka_hub_store duka_hub_store;

#define DUKA_DEST_ETIMS "etims"
#define DUKA_DEST_MPESA "mpesa"
#define DUKA_HUB_OUTBOX_DEST_MAX 16
#define DUKA_HUB_OUTBOX_STREAM_MAX 64
#define DUKA_HUB_OUTBOX_TYPE_MAX 32
#define DUKA_HUB_OUTBOX_OWNER_LEN 32 /* a hub instance id: 32 hex characters */
/* A lease is at most this long (duka_forwarder_start checks a service's lease_ms): eTIMS's
 * is 3 x ETIMS_TIMEOUT (at most 300 s) + 30 s. A lease that ends further ahead than this was
 * taken before the clock was set back, and is taken as run out — else a hub clock corrected
 * backwards by hours holds what it had leased for hours (the deterministic simulator found
 * it). */
#define DUKA_HUB_OUTBOX_LEASE_MAX_MS (3 * DUKA_ETIMS_TIMEOUT_MAX_MS + 60000L)
/* A claim takes at most this many items (one transaction); the forwarder's window. */
#define DUKA_HUB_OUTBOX_CLAIM_MAX 64
/* An item's result for the till (a signed invoice) is at most this long as JSON text. */
#define DUKA_HUB_OUTBOX_RESULT_MAX 2048

typedef enum duka_hub_outbox_status {
    DUKA_HUB_OUTBOX_PENDING,
    DUKA_HUB_OUTBOX_PROCESSING,
    DUKA_HUB_OUTBOX_AWAITING,
    DUKA_HUB_OUTBOX_DONE,
    DUKA_HUB_OUTBOX_FAILED,
} duka_hub_outbox_status;
const char *duka_hub_outbox_status_name(duka_hub_outbox_status s);
int duka_hub_outbox_status_parse(const char *name); /* -1 when unknown */

/* One job to enqueue. */
typedef struct duka_hub_outbox_new {
    const char *destination;  /* DUKA_DEST_ETIMS */
    const char *stream;       /* FIFO key and no-gap number series, e.g. "etims:<business>:00" */
    const char *command_type; /* "etims.sale" */
    const char *entity_id;    /* the receipt number */
    const char *terminal;     /* whose till gets the result back by pull */
    const char *payload;      /* opaque to the engine (the invoice body) */
    int64_t ref_no;           /* a number the job refers to (a credit note's original), or 0 */
    int priority;
    int max_attempts;
} duka_hub_outbox_new;

/* Appends n jobs of one business inside the caller's open transaction. Each stream's jobs
 * take the next n numbers of its series in order (seq_no), so numbers are never skipped
 * (the series advances only when the enqueue commits) nor reused (the series' row is locked
 * until then). On PostgreSQL the jobs are kept in the store and written, numbered, last
 * thing before the COMMIT, so the series' row is locked as briefly as can be. */
duka_rc duka_hub_outbox_enqueue(duka_hub_store *s, const char *business_id,
                                const duka_hub_outbox_new *jobs, int n, int64_t now_ms, duka_err *err);

/* A claimed item. payload is owned by the claim. */
typedef struct duka_hub_outbox_item {
    int64_t id;
    char business_id[DUKA_BUSINESS_ID_LEN + 1];
    char stream[DUKA_HUB_OUTBOX_STREAM_MAX + 1];
    char command_type[DUKA_HUB_OUTBOX_TYPE_MAX + 1];
    char entity_id[DUKA_RECEIPT_NO_MAX + 1];
    char terminal[DUKA_TERMINAL_ID_MAX + 1];
    int64_t seq_no, ref_no;
    int attempts; /* including this one */
    int max_attempts;
    bool unclear; /* an earlier attempt may have reached the service */
    int64_t created_ms;
    char *payload;
} duka_hub_outbox_item;

typedef struct duka_hub_outbox_claim {
    duka_hub_outbox_item items[DUKA_HUB_OUTBOX_CLAIM_MAX];
    int count;
} duka_hub_outbox_claim;
void duka_hub_outbox_claim_free(duka_hub_outbox_claim *c);

/* Claims up to max (<= DUKA_HUB_OUTBOX_CLAIM_MAX) due items of destination, in priority,
 * stream, seq_no order, leasing them to owner until lease_until_ms. Due: pending with its
 * next attempt come (or impossibly far ahead: duka_outbox_wait_max_ms), awaiting past its
 * deadline, or processing under a lease that ran out or ends impossibly far ahead
 * (DUKA_HUB_OUTBOX_LEASE_MAX_MS: the clock went back) (then marked unclear, and the attempt
 * its dead claimer counted given back: a hub's crash is not the item's failure). Own
 * transaction; on PostgreSQL rows another hub is claiming are skipped, never waited for. */
duka_rc duka_hub_outbox_claim_due(duka_hub_store *s, const char *destination,
                                  const char *owner, int max, int64_t lease_until_ms,
                                  int64_t now_ms, duka_hub_outbox_claim *out, duka_err *err);

/* What became of one attempt. */
typedef enum duka_hub_outbox_verdict {
    DUKA_HUB_OUTBOX_SENT,     /* done; result (may be NULL) goes back to the till */
    DUKA_HUB_OUTBOX_RETRY,    /* failed, uses an attempt; failed when none is left */
    DUKA_HUB_OUTBOX_DEFER,    /* not sent (service offline): no attempt used */
    DUKA_HUB_OUTBOX_UNCLEAR,  /* may have arrived: ask first next time; no attempt used */
    DUKA_HUB_OUTBOX_AWAIT,    /* sent, the answer comes later (until not_before_ms) */
    DUKA_HUB_OUTBOX_REFUSED,  /* the service refused it for good: failed now */
    DUKA_HUB_OUTBOX_WAIT,     /* the service answered "not yet" (eTIMS 921/922: out of
                               * sequence, the original not there yet): no attempt used */
} duka_hub_outbox_verdict;

typedef struct duka_hub_outbox_outcome {
    int64_t id;
    duka_hub_outbox_verdict verdict;
    const char *error;          /* one line; NULL on SENT */
    const char *error_category; /* DUKA_OUTBOX_ERR_* (outbox.h); NULL on SENT */
    long http_status;           /* for the attempt log; 0 when none */
    int64_t duration_ms;        /* of the attempt */
    int64_t not_before_ms;      /* a Retry-After, an await deadline; 0 when none */
    const char *result;         /* SENT: JSON text for the till (<= DUKA_HUB_OUTBOX_RESULT_MAX) */
} duka_hub_outbox_outcome;

/* Records the outcomes of items claimed by owner, with an attempt log row each, and each
 * SENT result in outbox_results under the next number of its terminal's series. One
 * transaction. An item whose lease owner is no longer owner (the lease ran out and another
 * hub took it) is left alone and counted in *lost (may be NULL). */
duka_rc duka_hub_outbox_finish(duka_hub_store *s, const char *owner,
                               const duka_hub_outbox_item *items,
                               const duka_hub_outbox_outcome *outcomes, int n, int64_t now_ms,
                               int *lost, duka_err *err);

/* At a forwarder's start, on a store only this process writes (the embedded SQLite hub):
 * every item of destination left processing by this process's previous life is pending
 * again, unclear, at once, instead of after its lease. On PostgreSQL it does nothing: other
 * hubs may hold those leases. *recovered (may be NULL) gets the count. */
duka_rc duka_hub_outbox_recover_own(duka_hub_store *s, const char *destination, int64_t now_ms,
                                    int64_t *recovered, duka_err *err);

/* The service came back: every pending item of destination deferred by a network error is
 * due now (the backoff it was given while the service was down no longer applies). */
duka_rc duka_hub_outbox_wake(duka_hub_store *s, const char *destination, int64_t now_ms,
                             int64_t *woken, duka_err *err);

/* Manual retry: failed items of a business (one by id, or all when id is 0) back to pending,
 * attempts reset, due now. One transaction. */
duka_rc duka_hub_outbox_retry(duka_hub_store *s, const char *business_id, int64_t id,
                              int64_t now_ms, int *retried, duka_err *err);

/* Retention: done items processed before done_before_ms and attempt logs of removed items.
 * Results the tills pull are kept. */
duka_rc duka_hub_outbox_cleanup(duka_hub_store *s, int64_t done_before_ms, int64_t *deleted,
                                duka_err *err);

/* Counts of a business's items of destination (business_id NULL: every business). */
typedef struct duka_hub_outbox_counts {
    int64_t pending, processing, awaiting, done, failed;
    int64_t oldest_unsent_ms; /* created_ms of the oldest item not done, 0 when none */
} duka_hub_outbox_counts;
duka_rc duka_hub_outbox_count(duka_hub_store *s, const char *business_id,
                              const char *destination, duka_hub_outbox_counts *out,
                              duka_err *err);
/* The same without the done items (done stays 0): what every pull and the forwarder's
 * alert ask, so it reads the backlog only, never the days of done items retention keeps. */
duka_rc duka_hub_outbox_count_unsent(duka_hub_store *s, const char *business_id,
                                     const char *destination, duka_hub_outbox_counts *out,
                                     duka_err *err);

/* The items of a business, newest first, for `duka hub outbox`: {"items":[{"id",
 * "destination","command_type","entity_id","terminal","seq_no","status","attempts",
 * "max_attempts","next_attempt_ms","last_error","error_category","created_ms",
 * "processed_ms","unclear"}]}; status NULL for all. */
duka_rc duka_hub_outbox_list(duka_hub_store *s, const char *business_id, const char *status,
                             int limit, json_t **out, duka_err *err);

/* The results for a terminal of a business with number above cursor, oldest first, at most
 * limit: {"cursor": N, "more": bool, "list": [result objects with "seq" added]}. */
duka_rc duka_hub_outbox_results(duka_hub_store *s, const char *business_id,
                                const char *terminal, const char *destination, int64_t cursor,
                                int limit, json_t **out, duka_err *err);

/* The sale with receipt_no of a business as the hub stored it (lines in order, payments in
 * order), for a sender that builds its request from it at send time (eTIMS: the invoice
 * body, built off the push's path). DUKA_NOTFOUND when absent. */
duka_rc duka_hub_sale_load(duka_hub_store *s, const char *business_id, const char *receipt_no,
                           duka_sale *out, duka_err *err);

/* The result (DUKA_HUB_OUTBOX_RESULT_MAX) the service gave for entity_id at destination —
 * a sale's signed invoice, whose invc_no a credit note names (eTIMS orgInvcNo). Results are
 * kept past the jobs' retention. *found false while there is none. */
duka_rc duka_hub_outbox_result_of(duka_hub_store *s, const char *business_id,
                               const char *destination, const char *entity_id,
                                  char *result, size_t result_len, bool *found,
                                  duka_err *err);

/* A small durable value per business and key (a service's device registration: eTIMS'
 * cmcKey). *found false when absent. put: inside the caller's transaction or its own. */
duka_rc duka_hub_kv_get(duka_hub_store *s, const char *business_id, const char *key,
                        char *value, size_t value_len, bool *found, duka_err *err);
duka_rc duka_hub_kv_put(duka_hub_store *s, const char *business_id, const char *key,
                        const char *value, int64_t now_ms, duka_err *err);

/* A service's health as the forwarders last saw it, shared by every hub on the store:
 * state "online" | "degraded" | "offline", since when, and when last confirmed. *found false
 * when no forwarder ever wrote it. */
typedef struct duka_service_health {
    char state[12];
    int64_t since_ms, updated_ms;
    char detail[DUKA_ERR_MSG_MAX];
} duka_service_health;
duka_rc duka_hub_health_get(duka_hub_store *s, const char *service, duka_service_health *out,
                            bool *found, duka_err *err);
duka_rc duka_hub_health_put(duka_hub_store *s, const char *service,
                            const duka_service_health *h, duka_err *err);

/* For the stores, written once: a verdict's name in the attempt log ("sent", "retry" …);
 * a claim in stream then seq_no order; a status's count and oldest creation time added. */
const char *duka_hub_outbox_verdict_name(duka_hub_outbox_verdict v);
void duka_hub_outbox_claim_sort(duka_hub_outbox_claim *c);
void duka_hub_outbox_counts_add(duka_hub_outbox_counts *c, int status, int64_t count,
                                int64_t oldest_ms);

/* The next state of an item after an outcome: the policy, written once for both stores. */
typedef struct duka_hub_outbox_next {
    duka_hub_outbox_status status;
    int attempts;          /* attempts counted after this one */
    int64_t next_attempt_ms;
    bool unclear;
} duka_hub_outbox_next;
void duka_hub_outbox_decide(const duka_hub_outbox_item *item,
                            const duka_hub_outbox_outcome *o, int64_t now_ms,
                            duka_hub_outbox_next *next);

#endif
