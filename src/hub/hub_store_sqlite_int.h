/*
 * hub_store_sqlite_int.h — the SQLite hub store's insides, for the files that implement parts
 * of it (hub_store_sqlite.c: the sync tables; outbox_store_sqlite.c: the outbox to the
 * outside world). Private to src/hub.
 */
#ifndef DUKA_HUB_STORE_SQLITE_INT_H
#define DUKA_HUB_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "hub/hub_store_impl.h"
#include "store/db.h"

typedef struct sqlite_store {
    duka_hub_store base; /* first: the interface (hub_store_impl.h) */
    sqlite3 *db;
    duka_stmt_cache stmts; /* every statement is prepared once per connection */
} sqlite_store;

static inline sqlite_store *sq(duka_hub_store *hs)
{
    return (sqlite_store *)hs;
}

/* A cached prepared statement (see duka_stmt_cache): reset after use, never finalized. */
duka_rc duka_sq_stmt(sqlite_store *s, const char *sql, sqlite3_stmt **out, duka_err *err);

/* The outbox part of the ops table (outbox_store_sqlite.c). */
duka_rc duka_sq_outbox_enqueue(duka_hub_store *s, const char *business_id,
                               const duka_hub_outbox_new *jobs, int n, int64_t now_ms,
                               duka_err *err);
duka_rc duka_sq_outbox_claim(duka_hub_store *s, const char *destination, const char *owner,
                             int max, int64_t lease_until_ms, int64_t now_ms,
                             duka_hub_outbox_claim *out, duka_err *err);
duka_rc duka_sq_outbox_finish(duka_hub_store *s, const char *owner,
                              const duka_hub_outbox_item *items,
                              const duka_hub_outbox_outcome *outcomes,
                              const duka_hub_outbox_next *next, int n, int64_t now_ms, int *lost,
                              duka_err *err);
duka_rc duka_sq_outbox_wake(duka_hub_store *s, const char *destination, int64_t now_ms,
                            int64_t *woken, duka_err *err);
duka_rc duka_sq_outbox_recover_own(duka_hub_store *s, const char *destination, int64_t now_ms,
                                   int64_t *recovered, duka_err *err);
duka_rc duka_sq_outbox_retry(duka_hub_store *s, const char *business_id, int64_t id,
                             int64_t now_ms, int *retried, duka_err *err);
duka_rc duka_sq_outbox_cleanup(duka_hub_store *s, int64_t done_before_ms, int64_t *deleted,
                               duka_err *err);
duka_rc duka_sq_outbox_count(duka_hub_store *s, const char *business_id,
                             const char *destination, bool with_done,
                             duka_hub_outbox_counts *out, duka_err *err);
duka_rc duka_sq_outbox_list(duka_hub_store *s, const char *business_id, const char *status,
                            int limit, json_t **out, duka_err *err);
duka_rc duka_sq_outbox_results(duka_hub_store *s, const char *business_id,
                               const char *terminal, const char *destination, int64_t cursor,
                               int limit, json_t **out, duka_err *err);
duka_rc duka_sq_sale_load(duka_hub_store *s, const char *business_id, const char *receipt_no,
                          duka_sale *out, duka_err *err);
duka_rc duka_sq_refunds_of(duka_hub_store *s, const char *business_id, const char *receipt_no,
                           duka_hub_refunded *out, duka_err *err);
duka_rc duka_sq_outbox_result_of(duka_hub_store *s, const char *business_id,
                              const char *destination, const char *entity_id,
                                 char *result, size_t result_len, bool *found,
                                 duka_err *err);
duka_rc duka_sq_kv_get(duka_hub_store *s, const char *business_id, const char *key,
                       char *value, size_t value_len, bool *found, duka_err *err);
duka_rc duka_sq_kv_put(duka_hub_store *s, const char *business_id, const char *key,
                       const char *value, int64_t now_ms, duka_err *err);
duka_rc duka_sq_health_get(duka_hub_store *s, const char *service, duka_service_health *out,
                           bool *found, duka_err *err);
duka_rc duka_sq_health_put(duka_hub_store *s, const char *service,
                           const duka_service_health *h, duka_err *err);

duka_rc duka_sq_mpesa_receipt_put(duka_hub_store *s, const char *business_id,
                                  const duka_mpesa_payment *p, const char *source,
                                  int64_t now_ms, bool *inserted, duka_err *err);
duka_rc duka_sq_mpesa_receipt_get(duka_hub_store *s, const char *business_id,
                                  const char *receipt, duka_mpesa_receipt *out, bool *found,
                                  duka_err *err);
duka_rc duka_sq_mpesa_receipt_credit(duka_hub_store *s, const char *business_id,
                                     const char *receipt, const char *sale_receipt_no,
                                     int64_t now_ms, char *holder, size_t holder_len,
                                     bool *found, duka_err *err);

#define DUKA_SQ_OUTBOX_OPS                                                                     \
    .outbox_enqueue = duka_sq_outbox_enqueue, .outbox_claim = duka_sq_outbox_claim,            \
    .outbox_finish = duka_sq_outbox_finish, .outbox_wake = duka_sq_outbox_wake,                \
    .outbox_recover_own = duka_sq_outbox_recover_own, .outbox_retry = duka_sq_outbox_retry, .outbox_cleanup = duka_sq_outbox_cleanup,            \
    .outbox_count = duka_sq_outbox_count, .outbox_list = duka_sq_outbox_list,                  \
    .outbox_results = duka_sq_outbox_results, .kv_get = duka_sq_kv_get, .sale_load = duka_sq_sale_load, .refunds_of = duka_sq_refunds_of, .outbox_result_of = duka_sq_outbox_result_of,                        \
    .kv_put = duka_sq_kv_put, .health_get = duka_sq_health_get,                                \
    .health_put = duka_sq_health_put, .mpesa_receipt_put = duka_sq_mpesa_receipt_put,         \
    .mpesa_receipt_get = duka_sq_mpesa_receipt_get,                                            \
    .mpesa_receipt_credit = duka_sq_mpesa_receipt_credit

#endif
