/*
 * hub_store.h — the hub's storage, behind one narrow interface.
 *
 * Everything the hub keeps goes through these functions: businesses, devices (token hashes),
 * the catalog with its change sequence, sales with lines and payments, the stock ledger,
 * processed command ids and conflicts. The embedded implementation is SQLite
 * (hub_store_sqlite.c); PostgreSQL implements the same interface for deployments at scale.
 * The logic above it is written once: what a push means, what is a duplicate or a conflict
 * (hub_push.c); a business's name and KRA PIN (hub_business.c); a token's till database
 * (till_binding.c); the report's conflicts and the stock flags (hub_report.c).
 *
 * Threads: a store is one connection; the server serialises access with its own mutex.
 * Transactions: duka_hub_store_begin/commit/rollback; a push wraps each command in a
 * savepoint so one rejected command leaves the others of its batch intact.
 */
#ifndef DUKA_HUB_STORE_H
#define DUKA_HUB_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"
#include "protocol/sale.h"

typedef struct duka_hub_store duka_hub_store;

/* Opens the hub store at location: a file path (SQLite) or a postgres:// URL (PostgreSQL).
 * create: make it (the file, or the schema) if missing. */
duka_rc duka_hub_store_open(const char *location, bool create, duka_hub_store **out,
                            duka_err *err);
/* True when location is a postgres:// or postgresql:// URL. */
bool duka_hub_store_is_postgres(const char *location);
/* Where the store is, fit for messages and logs: a file path as it is, a URL without its
 * password. Owned by the store. */
const char *duka_hub_store_location(const duka_hub_store *s);
/* Writes location into out (outlen bytes, truncated) without any password it carries
 * (postgres://user:secret@host/db -> postgres://user@host/db; a password= parameter is
 * dropped). Never print a --db as given: print this. */
void duka_hub_store_redact(const char *location, char *out, size_t outlen);
/* A JSON string of s for a listing or a reply: names in the store before names were checked
 * (a business's, a product's from a CSV) may not be UTF-8, and jansson refuses such a string;
 * here every byte that is not UTF-8 becomes '?', so the row is shown rather than dropped. */
json_t *duka_hub_json_text(const char *s);

/* "sqlite" or "postgres". */
const char *duka_hub_store_kind(const duka_hub_store *s);
void duka_hub_store_close(duka_hub_store *store);

duka_rc duka_hub_store_begin(duka_hub_store *s, duka_err *err);
/* Moves committed work from the write-ahead log into the database file (after a push). */
void duka_hub_store_checkpoint(duka_hub_store *s);
duka_rc duka_hub_store_commit(duka_hub_store *s, duka_err *err);
void duka_hub_store_rollback(duka_hub_store *s);
/* The simulator's storage faults (tests/sim): hook runs before every commit and, when it
 * returns true, the commit fails as a storage error (the transaction is rolled back and
 * DUKA_STORE returned). NULL removes it. Never set outside tests. */
void duka_hub_store_set_commit_fault(duka_hub_store *s, bool (*hook)(void *ctx), void *ctx);
/* Before applying a batch, inside its transaction: lets a store that talks over a network load
 * what the batch will look up — the processed command ids and the owners of the receipt
 * numbers — in one round trip, so command_find and sale_owner cost none. Others do nothing. */
duka_rc duka_hub_store_prefetch(duka_hub_store *s, const char *business_id,
                                const char *const *command_ids, const char *const *receipt_nos,
                                int n, duka_err *err);
duka_rc duka_hub_store_savepoint(duka_hub_store *s, duka_err *err);
duka_rc duka_hub_store_release(duka_hub_store *s, duka_err *err);
void duka_hub_store_rollback_to(duka_hub_store *s);

/* ---- businesses and devices ---- */

/* Creates a business with no KRA PIN. The primitive, with no check of its name: duka hub init
 * goes through duka_hub_business_register (hub_business.h), which refuses a name already
 * used. */
duka_rc duka_hub_business_create(duka_hub_store *s, const char *name,
                                 char id_out[DUKA_BUSINESS_ID_LEN + 1], duka_err *err);
/* As duka_hub_business_create, with a KRA PIN ("" for none; the caller validated it). */
duka_rc duka_hub_business_create_with_pin(duka_hub_store *s, const char *name,
                                          const char *kra_pin,
                                          char id_out[DUKA_BUSINESS_ID_LEN + 1], duka_err *err);
/* DUKA_NOTFOUND ("business 'x' not found") when absent. */
duka_rc duka_hub_business_check(duka_hub_store *s, const char *business_id, duka_err *err);

/* Every business of the hub, oldest first: {"businesses":[{"business_id","name","kra_pin",
 * "created" (ISO 8601 UTC),"devices" (active ones)}]} (a new reference in *out). For the
 * admin commands only: on PostgreSQL, row-level security shows a transaction one business's
 * rows, and this reads all of them through the one narrow exception made for it
 * (duka_business_directory(): names, PINs, creation times and device counts, nothing else).
 * lock: the caller is about to add or rename a business in its open transaction; the list is
 * then held until that transaction ends, so two of them cannot both find a name free. */
duka_rc duka_hub_business_list(duka_hub_store *s, bool lock, json_t **out, duka_err *err);

/* Sets a business's name and/or KRA PIN (NULL: unchanged; the caller validated them).
 * DUKA_NOTFOUND when absent. The primitive: duka_hub_business_change (hub_business.h) checks
 * the name against the others. */
duka_rc duka_hub_business_update(duka_hub_store *s, const char *business_id, const char *name,
                                 const char *kra_pin, duka_err *err);

/* A device as authentication finds it, with what a request needs of its business and its
 * till binding: one read, so the common request (a bound till, the same till id) costs no
 * round trip more than the token check. */
typedef struct duka_hub_device {
    int64_t id;
    char business_id[DUKA_BUSINESS_ID_LEN + 1];
    char terminal[DUKA_TERMINAL_ID_MAX + 1];
    /* The till database the token is bound to ("" until a request names one; see
     * till_binding.h) and since when (0 when unbound). */
    char till_id[DUKA_TILL_ID_LEN + 1];
    int64_t till_bound_ms;
    /* The business's name and KRA PIN ("" when none), for whoami and every pull reply. */
    char business_name[DUKA_BUSINESS_NAME_MAX + 1];
    char kra_pin[DUKA_KRA_PIN_LEN + 1];
} duka_hub_device;

/* Registers a terminal and returns its token (shown once; only its hash is stored). A
 * revoked terminal gets a new token on the same device row, and its till binding is cleared:
 * the first till database to use the new token is bound to it. */
duka_rc duka_hub_device_add(duka_hub_store *s, const char *business_id, const char *terminal,
                            char token_out[DUKA_TOKEN_MAX + 1], duka_err *err);

/* Revokes the active device of a terminal: its token gets 401 from then on (the till keeps
 * its queue). DUKA_NOTFOUND when there is none. */
duka_rc duka_hub_device_revoke(duka_hub_store *s, const char *business_id, const char *terminal,
                               int64_t now_ms, duka_err *err);

/* The devices of a business, by terminal: {"devices":[{"terminal","device_id","status"
 * ("active"|"revoked"),"created","till_bound"}]}. */
duka_rc duka_hub_device_list(duka_hub_store *s, const char *business_id, json_t **out,
                             duka_err *err);

/* Binds dev's token to till_id if it is still bound to what dev->till_id says ("": unbound),
 * in the caller's transaction (or one of its own): a compare-and-set, so of two requests
 * binding at once one wins. *changed says whether this call bound it; either way dev's
 * till_id and till_bound_ms are the binding after the call (the winner's when another request
 * bound it first). DUKA_AUTH when the device was revoked meanwhile. */
duka_rc duka_hub_device_bind_till(duka_hub_store *s, duka_hub_device *dev, const char *till_id,
                                  int64_t now_ms, bool *changed, duka_err *err);

/* Appends to the audit log (authentication failures, refused commands). business_id may be
 * NULL and device_id 0 when unknown (a malformed token). */
duka_rc duka_hub_audit(duka_hub_store *s, const char *business_id, int64_t device_id,
                       const char *event, const char *detail, int64_t now_ms, duka_err *err);

/* {"events":[{"time","business_id","device_id","event","detail"}]}, newest first; a business
 * sees its own events and those no business could be named for. */
duka_rc duka_hub_audit_list(duka_hub_store *s, const char *business_id, int limit, json_t **out,
                            duka_err *err);

/* Finds the device a token belongs to; DUKA_AUTH when unknown, revoked or wrong. Compares
 * the token's hash in constant time. */
duka_rc duka_hub_device_authenticate(duka_hub_store *s, const char *token,
                                     duka_hub_device *out, duka_err *err);

/* ---- catalog ---- */

typedef struct duka_hub_product {
    char sku[DUKA_SKU_MAX + 1];
    char name[DUKA_PRODUCT_NAME_MAX + 1];
    int64_t price_cents;
    char tax_band;
    char category[DUKA_CATEGORY_MAX + 1];
    int64_t stock_milli; /* the level to set (a ledger delta is written for the difference) */
    bool has_stock;
} duka_hub_product;

/* Inserts or updates products, each bumping the business's change sequence, inside the
 * caller's transaction. */
duka_rc duka_hub_product_upsert(duka_hub_store *s, const char *business_id,
                                const duka_hub_product *p, int64_t now_ms, duka_err *err);

/* Archives a product (a tombstone for pull); DUKA_NOTFOUND when absent. */
duka_rc duka_hub_product_archive(duka_hub_store *s, const char *business_id, const char *sku,
                                 int64_t now_ms, duka_err *err);

/* Changes with change_seq > cursor, at most limit, as the pull reply object
 * {"changes":[…],"cursor":N,"more":bool}. */
duka_rc duka_hub_changes_since(duka_hub_store *s, const char *business_id, int64_t cursor,
                               int limit, json_t **out, duka_err *err);

/* The catalog of a business by SKU, with each product's stock level (the sum of its
 * stock_movements): {"products":[{"sku","name","price","tax","category","archived",
 * "stock_milli"}]}; archived products only when archived is true. */
duka_rc duka_hub_product_list(duka_hub_store *s, const char *business_id, bool archived,
                              json_t **out, duka_err *err);

/* Stock levels by SKU: every SKU of the catalog not archived and every SKU with stock
 * movements (sold, imported, even if archived or never in the catalog):
 * {"products":[{"sku","name" ("" when not in the catalog),"stock_milli"}]}. The store part
 * of duka_hub_stock (hub_report.h), which flags the negative ones. */
duka_rc duka_hub_stock_levels(duka_hub_store *s, const char *business_id, json_t **out,
                              duka_err *err);

/* ---- cashiers (issue 11; the rules are in hub_cashiers.h) ---- */

/* A cashier as stored: the PIN only as its argon2id hash (crypto_pwhash_str). */
typedef struct duka_hub_cashier {
    char id[DUKA_UUID_STR_LEN + 1];
    char name[DUKA_CASHIER_NAME_MAX + 1];
    char role[8]; /* "cashier" | "manager" */
    char pin_hash[DUKA_PIN_HASH_MAX + 1];
    bool active;
} duka_hub_cashier;

/* The cashiers of a business, by name, inactive ones too, when the business's cashier version
 * differs from known_version (-1: always): {"version": V, "list": [{"id","name","role",
 * "pin_hash","active"}]}, the pull member as it is sent; *out NULL when the version is
 * known_version (the common pull: one read, nothing listed). DUKA_NOTFOUND when the business
 * is absent. */
duka_rc duka_hub_cashier_list(duka_hub_store *s, const char *business_id, int64_t known_version,
                              json_t **out, duka_err *err);

/* Inserts (insert true) or updates by id a cashier of a business, raising the business's
 * cashier version, inside the caller's transaction (or one of its own). The primitive, no
 * checks: duka_hub_cashier_add / _set (hub_cashiers.h) validate. DUKA_NOTFOUND when an update
 * finds no such cashier; DUKA_CONFLICT when the name is taken (ASCII case ignored: a unique
 * index backs the check above). */
duka_rc duka_hub_cashier_put(duka_hub_store *s, const char *business_id,
                             const duka_hub_cashier *c, bool insert, int64_t now_ms,
                             duka_err *err);

/* ---- commands and sales ---- */

typedef struct duka_hub_command {
    int64_t device_id;
    char status[16];            /* applied | conflict */
    char payload_hash[65];
    char receipt_no[DUKA_RECEIPT_NO_MAX + 1];
} duka_hub_command;

/* Looks up a processed command id; *found false when new. */
duka_rc duka_hub_command_find(duka_hub_store *s, const char *command_id, duka_hub_command *out,
                              bool *found, duka_err *err);

/* Records a processed command id with its outcome (same transaction as the effect). */
duka_rc duka_hub_command_record(duka_hub_store *s, const char *command_id,
                                const duka_hub_device *dev, const char *command_type,
                                const duka_hub_command *outcome, int64_t now_ms, duka_err *err);

/* The command id that created the sale with this receipt number, if any. */
duka_rc duka_hub_sale_owner(duka_hub_store *s, const char *business_id, const char *receipt_no,
                            char command_id_out[DUKA_UUID_STR_LEN + 1], bool *found,
                            duka_err *err);

/* Stores a sale, its lines, payments and its stock ledger deltas. */
duka_rc duka_hub_sale_insert(duka_hub_store *s, const duka_hub_device *dev,
                             const char *command_id, const duka_sale *sale, int64_t now_ms,
                             duka_err *err);

/* What the refunds a business stored of one sale gave back, per line of the sale (index =
 * line - 1): quantity and money; count: how many refunds. */
typedef struct duka_hub_refunded {
    int count;
    int64_t qty_milli[DUKA_SALE_LINES_MAX];
    int64_t cents[DUKA_SALE_LINES_MAX];
} duka_hub_refunded;

/* Sums the stored refunds of the sale receipt_no (inside the push's transaction: after
 * duka_hub_store_sync_writes, so the batch's own earlier refunds count). */
duka_rc duka_hub_refunds_of(duka_hub_store *s, const char *business_id, const char *receipt_no,
                            duka_hub_refunded *out, duka_err *err);

/* Makes what the open transaction wrote so far readable by its own queries (PostgreSQL
 * buffers a push's rows until COMMIT: hub_store_pg.c; a no-op on SQLite). Called between two
 * commands of a push, never inside a command's savepoint. DUKA_BUSY as for a commit when
 * another hub applied part of the batch first. */
duka_rc duka_hub_store_sync_writes(duka_hub_store *s, duka_err *err);

/* Logs a conflict with both versions' identities and the incoming payload. */
duka_rc duka_hub_conflict_insert(duka_hub_store *s, const duka_hub_device *dev,
                                 const char *kind, const char *entity_id,
                                 const char *command_id, const char *existing_command_id,
                                 const char *payload, const char *detail, int64_t now_ms,
                                 duka_err *err);

/* {"YYYYMMDD": highest sequence, …}: the receipt numbers the hub holds for a terminal, per
 * day since since_day. A till restored from an old backup continues above these. */
duka_rc duka_hub_receipt_floor(duka_hub_store *s, const char *business_id, const char *terminal,
                               int since_day, json_t **out, duka_err *err);

/* The conflicts of a business, newest first, at most limit of those with a row id below
 * before_id (0: from the newest): {"conflicts":[{"id","kind","receipt_no","command_id",
 * "existing_command_id","terminal","payload" (the text stored),"detected" (ms)}]}. Pages
 * with the last id of the page before. */
duka_rc duka_hub_conflict_page(duka_hub_store *s, const char *business_id, int64_t before_id,
                               int limit, json_t **out, duka_err *err);

/* {"cashiers": [{"cashier_id" ("" for none),"name","sales","total_cents"}]}: the sales of a
 * business per cashier of the sale (as the sale recorded it), by name. Conflict sales are not
 * counted (they are not stored as sales). */
duka_rc duka_hub_report_cashiers(duka_hub_store *s, const char *business_id, json_t **out,
                                 duka_err *err);

/* {"sales":N,"receipts":[…],"conflicts":N,"total_cents":N,"tax_cents":N,
 * "conflict_details":[…],"conflict_details_omitted":N,"conflict_total_cents":N} for a business
 * (hub_report.c: the store's totals, then its conflicts read page by page). Conflict sales
 * are not in the totals. DUKA_LIMIT when its sales add up past int64 cents (each sale is
 * bounded, their sum is not). */
duka_rc duka_hub_report(duka_hub_store *s, const char *business_id, json_t **out,
                        duka_err *err);

#endif
