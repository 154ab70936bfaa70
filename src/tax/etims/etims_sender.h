/*
 * etims_sender.h — eTIMS on the hub's forwarder (outbox/hub_forwarder.h): the prepare and
 * send functions for destination "etims".
 *
 * prepare (the forwarder's thread, with its store): the business's KRA PIN (its tin) and
 * its device registration for branch 00 — read from hub_kv ("etims.device.00"), or made on
 * first use with selectInitOsdcInfo and kept there in its own write, so a crash after the
 * init and before the write only means a second init, which eTIMS answers 902 with the same
 * registration. A business without a KRA PIN waits (a minute at a time, no attempt used)
 * until `duka business set --kra-pin` gives it one.
 * It also builds the invoice body from the sale as the store holds it (the push enqueues the
 * job with no body, so its path stays a row insert).
 * send (a worker thread): duka_etims_forward with the item's invcNo (its seq_no), and on
 * success the signature as the result the till pulls (docs/PROTOCOL.md, "invoices").
 */
#ifndef DUKA_ETIMS_SENDER_H
#define DUKA_ETIMS_SENDER_H

#include "common/clock.h"
#include "common/error.h"
#include "config/config.h"
#include "net/http_client.h"
#include "outbox/hub_forwarder.h"

typedef struct duka_etims_sender duka_etims_sender;

/* From ETIMS_BASE_URL, ETIMS_TIMEOUT, ETIMS_QR_BASE, ETIMS_IN_FLIGHT, ETIMS_MAX_UNSENT and the
 * queue retention; fills *svc for duka_forwarder_start. NULL *out when ETIMS_BASE_URL is
 * empty (eTIMS off). */
duka_rc duka_etims_sender_new(const duka_config *cfg, const duka_clock *clock,
                              duka_etims_sender **out, duka_forwarder_service *svc,
                              duka_err *err);
/* Sends eTIMS requests through transport (NULL: HTTP, the default) — the deterministic
 * simulator's network. Before the first send. */
void duka_etims_sender_set_transport(duka_etims_sender *s, duka_http_transport transport,
                                     void *ctx);
/* The hub is stopping: requests in flight are abandoned soon (their invoices unclear, asked
 * about at the next start) instead of waiting out ETIMS_TIMEOUT. Call before
 * duka_forwarder_stop. */
void duka_etims_sender_cancel(duka_etims_sender *s);
void duka_etims_sender_free(duka_etims_sender *s);

#endif
