/*
 * hub_forwarder.h — the hub's sender towards one external service: claims due items of its
 * destination from the hub outbox (hub_outbox.h) under a lease, sends up to `in_flight` at
 * once on worker threads, records every outcome, and keeps the service's health.
 *
 * The service plugs in two functions (the transport seam): prepare, on the forwarder's own
 * thread with its own store connection (what a send needs from the store: eTIMS' device
 * registration), and send, on a worker thread with no store (one HTTP attempt). eTIMS is the
 * first (tax/etims/etims_sender.c); M-Pesa and card capture come next on the same seam.
 *
 * Health (online / degraded / offline), per service, shared by every hub on the store
 * (service_health) and sent to the tills with each pull:
 *   - offline: the last attempt could not reach the service (nothing delivered), or 3 in a
 *     row timed out; only one probe item is sent, after 1, 2, 4 … up to 10 s;
 *   - degraded: 3 server errors in a row, or a successful answer slower than 2 s;
 *   - online: otherwise. Coming back from offline or degraded wakes every item the outage
 *     had backed off, so a day's invoices go as soon as the service answers again.
 */
#ifndef DUKA_HUB_FORWARDER_H
#define DUKA_HUB_FORWARDER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/clock.h"
#include "common/error.h"
#include "outbox/hub_outbox.h"

#define DUKA_FORWARDER_IN_FLIGHT_MAX DUKA_HUB_OUTBOX_CLAIM_MAX
/* While a service is offline one probe goes after 1, 2, 4 … up to this: a return is noticed
 * within 10 s, at the cost of one request every 10 s to a service that is down. */
#define DUKA_FORWARDER_PROBE_MAX_MS 10000
#define DUKA_FORWARDER_IDLE_POLL_MS 1000
#define DUKA_FORWARDER_HEARTBEAT_MS 15000
#define DUKA_FORWARDER_DEGRADED_LATENCY_MS 2000
#define DUKA_FORWARDER_FAILURES_TO_DEGRADE 3
/* A service whose health no forwarder confirmed for this long is reported offline: nothing
 * is forwarding to it. */
#define DUKA_FORWARDER_HEALTH_STALE_MS 60000

typedef struct duka_forwarder_service {
    const char *destination;
    int in_flight;          /* 1..DUKA_FORWARDER_IN_FLIGHT_MAX */
    long lease_ms;          /* > the longest attempt: the send timeout and a margin */
    int64_t retention_ms;   /* done items kept this long */
    int64_t max_unsent_ms;  /* an item not done after this long raises an alert (log, health) */
    /* Forwarder thread, with the store: false when the item cannot be sent now (*out filled:
     * DEFER, RETRY or REFUSED with a message in errbuf). *prepared is passed to send and
     * freed with free() afterwards. */
    bool (*prepare)(void *ctx, duka_hub_store *store, const duka_hub_outbox_item *item,
                    void **prepared, duka_hub_outbox_outcome *out, char *errbuf, size_t errlen);
    /* Worker thread, no store: one attempt. On SENT, *result may get a malloc'd JSON text
     * for the till (freed by the forwarder). Messages go in errbuf. */
    void (*send)(void *ctx, const duka_hub_outbox_item *item, void *prepared,
                 duka_hub_outbox_outcome *out, char **result, char *errbuf, size_t errlen);
    void *ctx;
} duka_forwarder_service;

typedef struct duka_forwarder duka_forwarder;

/* Opens its own store connection at location and starts the forwarder's threads. */
duka_rc duka_forwarder_start(const char *location, const duka_forwarder_service *svc,
                             const duka_clock *clock, duka_forwarder **out, duka_err *err);
/* Something new may be due (a push committed): look now rather than at the next poll. */
void duka_forwarder_kick(duka_forwarder *f);
/* Stops the threads (an attempt in flight is finished first, at most its timeout) and frees. */
void duka_forwarder_stop(duka_forwarder *f);

/* The outcome to record for an item's attempt (prepare's or send's *o): with the item's id,
 * and when not SENT the message in errbuf ("failed" when empty) and category server when
 * none; result for the till. The forwarder's, and the deterministic simulator's, which steps
 * a forwarder by hand (tests/sim). */
duka_hub_outbox_outcome duka_forwarder_outcome(const duka_hub_outbox_item *item,
                                               const duka_hub_outbox_outcome *o,
                                               const char *errbuf, const char *result);

/* The state to report for a service from what the store holds: "off" when no forwarder ever
 * wrote it, "offline" when it is stale (DUKA_FORWARDER_HEALTH_STALE_MS), else as written. */
const char *duka_forwarder_reported_state(const duka_service_health *h, bool found,
                                          int64_t now_ms);

#endif
