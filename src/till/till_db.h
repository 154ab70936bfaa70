/*
 * till_db.h — the till's SQLite database: schema, migrations and its identity.
 *
 * Tables: meta (identity, pull cursor, last sync, the shop's name and KRA PIN), products (the catalog cache pulled from
 * the hub), receipt_days (the receipt counter, one row per calendar day ever used), sales,
 * sale_lines, payments, outbox (see outbox/outbox.h), sync_log, cashiers, sessions and
 * etims_receipts (the eTIMS signatures pulled from the hub: till/etims_receipt.h).
 */
#ifndef DUKA_TILL_DB_H
#define DUKA_TILL_DB_H

#include <sqlite3.h>
#include <stdbool.h>

#include "common/error.h"
#include "common/limits.h"

/* Opens an existing till database (create false: "not found" if missing) or creates one. */
duka_rc duka_till_db_open(const char *path, bool create, sqlite3 **out, duka_err *err);

/* Who this till is: read from meta. */
typedef struct duka_till_identity {
    char terminal[DUKA_TERMINAL_ID_MAX + 1];
    char hub_url[DUKA_URL_MAX + 1];
    char token[DUKA_TOKEN_MAX + 1];
    char ca_file[DUKA_URL_MAX + 1]; /* CAs to trust for an https hub; "" for the system's */
    char till_id[DUKA_UUID_STR_LEN + 1]; /* this database's own id (Duka-Till-Id) */
} duka_till_identity;

/* Loads the identity; DUKA_NOTFOUND ("not initialised") when till init never finished. */
duka_rc duka_till_identity_load(sqlite3 *db, duka_till_identity *out, duka_err *err);

/* Meta keys. */
#define DUKA_META_TERMINAL "terminal"
#define DUKA_META_HUB_URL "hub_url"
#define DUKA_META_TOKEN "token"
#define DUKA_META_CA_FILE "ca_file"
#define DUKA_META_PULL_CURSOR "pull_cursor"
#define DUKA_META_LAST_SYNC_MS "last_sync_ms"
#define DUKA_META_LAST_SYNC_STATE "connectivity"        /* unknown|online|degraded|offline */
#define DUKA_META_CONNECTIVITY_SINCE "connectivity_since_ms" /* when that state began */
#define DUKA_META_FORCED_OFFLINE "forced_offline"      /* "1" while the offline switch is on */
#define DUKA_META_LAST_ERROR "last_error"
#define DUKA_META_CONNECTIVITY_SEEN "connectivity_seen_ms" /* when it was last observed */
#define DUKA_META_TILL_ID "till_id"             /* made by schema version 2, never changed */
#define DUKA_META_SHOP_NAME "shop_name"         /* the business's name, from the hub */
#define DUKA_META_KRA_PIN "kra_pin"             /* the business's KRA PIN, from the hub */
#define DUKA_META_CASHIERS_VERSION "cashiers_version" /* of the list in cashiers, from the hub */
#define DUKA_META_ETIMS_INVOICE_CURSOR "etims_invoice_cursor" /* last invoices seq stored */
#define DUKA_META_ETIMS_STATE "etims_state"       /* services.etims.state as the hub said it */
#define DUKA_META_ETIMS_SINCE_MS "etims_since_ms" /* since when the hub says it is so */
#define DUKA_META_ETIMS_PENDING "etims_pending"   /* the business's invoices the hub holds unsigned */
#define DUKA_META_ETIMS_SEEN_MS "etims_seen_ms"   /* when the till last received that member */
#define DUKA_META_MPESA_CURSOR "mpesa_cursor"     /* last mpesa (verifications) seq stored */
#define DUKA_META_MPESA_STATE "mpesa_state"       /* services.mpesa.state as the hub said it */
#define DUKA_META_MPESA_PENDING "mpesa_pending"   /* the business's M-Pesa jobs the hub holds */

#endif
