/*
 * hub_business.h — a business's identity at the hub: its name, unique on the hub unless the
 * operator asks otherwise, and its KRA PIN, which its tills print on every receipt.
 *
 * Written once, above the stores (hub_store.h): what a duplicate name is, what a KRA PIN
 * looks like, and the transactions that check a name against every other business before
 * writing it (duka hub init, duka business set). The stores only list, create and update.
 *
 * Workload: the admin commands, a few times in a shop's life; nothing here is on the sale,
 * push or pull path.
 */
#ifndef DUKA_HUB_BUSINESS_H
#define DUKA_HUB_BUSINESS_H

#include <stdbool.h>

#include "common/error.h"
#include "common/limits.h"
#include "hub/hub_store.h"

/* A KRA PIN as typed (P051234567x) into its printed form (P051234567X): one letter A or P,
 * 9 digits, one letter; letters of either case, no spaces. False, out untouched, when pin is
 * not one. */
bool duka_kra_pin_normalize(const char *pin, char out[DUKA_KRA_PIN_LEN + 1]);

/* A business name as given on the command line into the name stored: white space trimmed
 * at both ends, then 1..DUKA_BUSINESS_NAME_MAX bytes of UTF-8 without control characters.
 * DUKA_USAGE naming `what` (e.g. "--business") otherwise. */
duka_rc duka_business_name_clean(const char *name, const char *what,
                                 char out[DUKA_BUSINESS_NAME_MAX + 1], duka_err *err);

/* Whether two business names are the same name: compared with white space trimmed at both
 * ends and ASCII letters in either case ("Test", " test " and "TEST" are one name). Only
 * ASCII is folded — the same on both stores whatever their collation. */
bool duka_business_names_equal(const char *a, const char *b);

/* Creates a business with a cleaned name and a normalized KRA PIN ("" for none), in one
 * transaction with the check that no other business already has that name (unless
 * allow_duplicate). A name taken: DUKA_CONFLICT, "a business named 'Test' already exists
 * (business id 3f2a…); use that id, or pass --allow-duplicate-name" (the name as the
 * oldest business with it spells it, and its id), nothing written. */
duka_rc duka_hub_business_register(duka_hub_store *s, const char *name, const char *kra_pin,
                                   bool allow_duplicate, char id_out[DUKA_BUSINESS_ID_LEN + 1],
                                   duka_err *err);

/* Changes a business's name and/or KRA PIN (NULL: unchanged; "" clears the PIN), in one
 * transaction, with the same duplicate-name rule (the business's own name is not a
 * duplicate of itself). DUKA_NOTFOUND for an unknown business. */
duka_rc duka_hub_business_change(duka_hub_store *s, const char *business_id, const char *name,
                                 const char *kra_pin, bool allow_duplicate, duka_err *err);

#endif
