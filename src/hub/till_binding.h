/*
 * till_binding.h — a device token belongs to one till database.
 *
 * Two till databases initialised with the same token both sell as the same terminal, and
 * their receipt numbers collide (each becomes a conflict at the hub). So every till database
 * makes itself a random id once and sends it on every authenticated request
 * (`Duka-Till-Id: <UUID>`, docs/PROTOCOL.md). The hub binds the token to the first id it
 * sees and from then on answers another id with 409 `token_in_use`, on push and pull too
 * (nothing applied); `duka till init --replace` moves the token to a new database
 * (`Duka-Till-Replace: 1` on GET /v1/whoami). A request without the header is not checked
 * (older tills, raw tools). A new token for the terminal (`duka device add` after
 * `device revoke`) starts unbound.
 *
 * Written once, above the stores: authentication returns the device with its binding
 * (duka_hub_device.till_id), so the common case — a bound till sending its own id — is a
 * string comparison, no round trip; binding (a till's first request) and replacing are rare
 * writes, each one transaction with its audit event.
 */
#ifndef DUKA_TILL_BINDING_H
#define DUKA_TILL_BINDING_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "hub/hub_store.h"

/* The request headers (case-insensitive, as all of HTTP's). */
#define DUKA_TILL_ID_HEADER "Duka-Till-Id"
#define DUKA_TILL_REPLACE_HEADER "Duka-Till-Replace"

/* A till id as sent: 36 characters, lowercase hex digits in groups of 8-4-4-4-12 joined by
 * dashes. */
bool duka_till_id_valid(const char *till_id);

/* What a request's till id did to the binding. */
typedef enum duka_till_outcome {
    DUKA_TILL_SAME,     /* the token is bound to this till database: nothing written */
    DUKA_TILL_BOUND,    /* it was bound to none; now to this one (audit till_bound) */
    DUKA_TILL_REPLACED, /* it was bound to another; now to this one (audit till_replaced) */
} duka_till_outcome;

/* Checks till_id (not NULL) against dev's binding, as authentication read it, and binds or
 * rebinds as the rules say; dev's till_id and till_bound_ms are updated. replace: the request
 * asked to move the token here (whoami only). request names it in the audit events
 * ("POST /v1/push"; NULL: "request"). Returns
 *   DUKA_OK with *outcome;
 *   DUKA_INPUT when till_id is malformed (err names the header; nothing written);
 *   DUKA_CONFLICT when the token is in use by another till database: err holds the sentence
 *     for the 409 ("the token of terminal T01 is in use by another till database (since …):
 *     …"), and an audit event token_in_use was written;
 *   DUKA_AUTH when the device was revoked meanwhile; DUKA_STORE when storage failed.
 * Two requests binding one token at once: one wins, the other finds the winner's id
 * (DUKA_OK if it is its own, else DUKA_CONFLICT). */
duka_rc duka_hub_till_check(duka_hub_store *s, duka_hub_device *dev, const char *till_id,
                            bool replace, const char *request, int64_t now_ms,
                            duka_till_outcome *outcome, duka_err *err);

#endif
