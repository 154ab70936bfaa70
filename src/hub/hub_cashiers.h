/*
 * hub_cashiers.h — a business's cashiers at the hub (issue 11): the rules above the stores.
 *
 * A cashier has a name (unique in the business, ASCII case ignored), a role (cashier or
 * manager), a PIN of DUKA_PIN_LEN_MIN..DUKA_PIN_LEN_MAX digits kept only as its argon2id hash
 * (libsodium crypto_pwhash_str_alg, DUKA_PIN_HASH_OPSLIMIT / _MEMLIMIT; the string records its
 * parameters) and an active flag (a cashier who left is deactivated, never deleted: old sales
 * name them). Every change raises the business's cashier version, and the next pull of each
 * till brings the whole list (hub_server.c, sync_client.c). The plain PIN is never stored,
 * logged or sent anywhere.
 *
 * Workload: the admin commands (`duka cashier add|list|set`), a few times a month; each add
 * or PIN change costs one argon2id hash (~20 ms), made before the transaction opens.
 */
#ifndef DUKA_HUB_CASHIERS_H
#define DUKA_HUB_CASHIERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"
#include "hub/hub_store.h"

/* The argon2id hash string of a valid PIN (the caller checked it with duka_pin_valid).
 * DUKA_NOMEM when libsodium cannot get the memory. */
duka_rc duka_pin_hash(const char *pin, char out[DUKA_PIN_HASH_MAX + 1], duka_err *err);

/* Adds a cashier, active, in one transaction with the checks: name (trimmed of white space,
 * then duka_cashier_name_valid) free in the business, role, PIN, at most DUKA_CASHIERS_MAX in
 * the business. Errors name the option: DUKA_INPUT "--pin: 4 to 8 digits", "--name: …",
 * "--role: …"; DUKA_CONFLICT "--name: a cashier 'Amina' exists already in business …";
 * DUKA_LIMIT at the hundred and first; DUKA_NOTFOUND for an unknown business. Nothing is
 * written on any error. *out (may be NULL) gets the new cashier (its id a UUID v7). */
duka_rc duka_hub_cashier_add(duka_hub_store *s, const char *business_id, const char *name,
                             const char *role, const char *pin, int64_t now_ms,
                             duka_hub_cashier *out, duka_err *err);

/* Changes the cashier called name (ASCII case ignored): a new PIN, role, and/or active flag
 * (pin, role NULL and active < 0: unchanged; at least one given, else DUKA_USAGE). The same
 * checks and errors as add; DUKA_NOTFOUND "--name: no cashier 'x' in business …". */
duka_rc duka_hub_cashier_set(duka_hub_store *s, const char *business_id, const char *name,
                             const char *pin, const char *role, int active, int64_t now_ms,
                             duka_hub_cashier *out, duka_err *err);

/* {"cashiers": [{"cashier_id","name","role","active"}]} by name, inactive ones too; never a
 * hash. */
duka_rc duka_hub_cashier_listing(duka_hub_store *s, const char *business_id, json_t **out,
                                 duka_err *err);

#endif
