/*
 * mpesa_sender.h — M-Pesa on the hub's forwarder (outbox/hub_forwarder.h): the prepare and send
 * functions for destination "mpesa", and the callback URLs Safaricom posts to.
 *
 * mpesa.verify (one job per sale paid with typed codes, enqueued by the push that applied the
 * sale): each of the sale's M-Pesa payments in pending_verification is decided in prepare,
 * with the store, from what Safaricom told the hub (hub/mpesa_receipts.h):
 *   - the code is not 10 of [A-Z0-9]                          → flagged ("not an M-Pesa code");
 *   - the hub holds the receipt: amount differs               → flagged (both amounts);
 *                                paid outside MPESA_MATCH_WINDOW of the sale → flagged;
 *                                credited to another sale     → flagged ("used for T02-…");
 *                                else credited to this sale   → verified;
 *   - not held, the sale older than MPESA_VERIFY_WINDOW       → flagged ("not confirmed");
 *   - not held: a transaction status query for it (its asking counted in hub_kv before it is
 *     sent), whose Result comes to the hub's status-result URL and is kept as a receipt; the
 *     job waits MPESA_STATUS_WAIT, then doubling up to an hour, and looks again.
 * When every payment is decided the job is done and its result — each code's verdict and
 * why — goes back to the till by pull. Nothing is ever dropped or accepted unseen: a code is
 * verified only against a payment Safaricom reported with the sale's amount and time, and
 * credited to one sale only; anything else ends flagged for the owner, with the reason.
 * Every decision is in the hub's audit log (mpesa_verified, mpesa_flagged).
 *
 * mpesa.register (enqueued by `duka business set --mpesa-shortcode`): registers the
 * business's C2B confirmation and validation URLs with Daraja.
 *
 * Callback URLs: <MPESA_CALLBACK_BASE_URL>/v1/mpesa/<business id>.<secret>/<kind>, kind one of
 * c2b-validation, c2b-confirmation, status-result, status-timeout, stk-callback; the secret
 * (32 hex, hub_kv mpesa.callback_secret) is made on first use. duka_mpesa_callback handles a
 * POST to one: a wrong secret changes nothing (404), a malformed body nothing (400).
 */
#ifndef DUKA_MPESA_SENDER_H
#define DUKA_MPESA_SENDER_H

#include <jansson.h>

#include "common/clock.h"
#include "common/error.h"
#include "config/config.h"
#include "hub/hub_store.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "outbox/hub_forwarder.h"

#define DUKA_MPESA_SECRET_HEX 32      /* the callback URL's secret */
#define DUKA_MPESA_STATUS_WAIT_MAX_MS 3600000L /* a code is looked at again at least hourly */
#define DUKA_MPESA_NO_SHORTCODE_WAIT_MS 60000L /* a business without a shortcode waits */
#define DUKA_MPESA_KV_SHORTCODE "mpesa.shortcode"
#define DUKA_MPESA_KV_SECRET "mpesa.callback_secret"

typedef struct duka_mpesa_sender duka_mpesa_sender;

/* From MPESA_BASE_URL, the Daraja credentials, MPESA_CALLBACK_BASE_URL, MPESA_TIMEOUT,
 * MPESA_IN_FLIGHT, the windows and the queue retention; fills *svc for duka_forwarder_start.
 * NULL *out when MPESA_BASE_URL is empty (M-Pesa off: the jobs wait). An unreadable
 * MPESA_SECURITY_CREDENTIAL_FILE or a missing MPESA_CALLBACK_BASE_URL is an error naming it. */
duka_rc duka_mpesa_sender_new(const duka_config *cfg, const duka_clock *clock,
                              duka_mpesa_sender **out, duka_forwarder_service *svc,
                              duka_err *err);
/* Daraja through transport (NULL: HTTP) — the deterministic simulator's network. */
void duka_mpesa_sender_set_transport(duka_mpesa_sender *s, duka_http_transport transport,
                                     void *ctx);
/* The hub is stopping: requests in flight are abandoned soon. Before duka_forwarder_stop. */
void duka_mpesa_sender_cancel(duka_mpesa_sender *s);
void duka_mpesa_sender_free(duka_mpesa_sender *s);

/* The business's secret of its callback URLs, made (and kept in hub_kv) when it has none. */
duka_rc duka_mpesa_callback_secret(duka_hub_store *store, const char *business_id,
                                   int64_t now_ms, char out[DUKA_MPESA_SECRET_HEX + 1],
                                   duka_err *err);

/* Sets a business's M-Pesa shortcode (5 to 7 digits) and enqueues the registration of its C2B
 * URLs, in one transaction. */
duka_rc duka_mpesa_set_shortcode(duka_hub_store *store, const char *business_id,
                                 const char *shortcode, int64_t now_ms, duka_err *err);

/* A POST from Safaricom to /v1/mpesa/<key>/<kind> (key = ex->param, kind the last segment):
 * checks the key, parses the body by kind, keeps a payment it reports (idempotent on the
 * receipt), and answers as Daraja expects ({"ResultCode":0,"ResultDesc":"Accepted"}). */
void duka_mpesa_callback(duka_hub_store *store, const char *kind, duka_http_exchange *ex,
                         int64_t now_ms);

#endif
