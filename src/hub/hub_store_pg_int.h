/*
 * hub_store_pg_int.h — the PostgreSQL hub store's insides, for the files that implement parts
 * of it (hub_store_pg.c: connection, schema and the sync tables; outbox_store_pg.c: the
 * outbox to the outside world). Private to src/hub.
 */
#ifndef DUKA_HUB_STORE_PG_INT_H
#define DUKA_HUB_STORE_PG_INT_H

#include <libpq-fe.h>

#include "hub/hub_store_impl.h"
#include "hub/pg_rows.h"

PGconn *duka_pg_conn(duka_hub_store *s);
/* The URL without its password, for messages. */
const char *duka_pg_where(duka_hub_store *s);
/* err from a failed result (DUKA_BUSY for a serialization failure or deadlock). */
duka_rc duka_pg_fail(duka_hub_store *s, const PGresult *res, const char *what, duka_err *err);
/* An operation outside the caller's transaction runs in its own (see hub_store_pg.c's
 * op_begin): begin it, setting duka.business_id when business_id is not NULL; end it,
 * committing on DUKA_OK. */
duka_rc duka_pg_op_begin(duka_hub_store *s, const char *business_id, bool *own, duka_err *err);
duka_rc duka_pg_op_end(duka_hub_store *s, bool own, duka_rc rc, duka_err *err);
/* Sets duka.business_id for the rest of the open transaction. */
duka_rc duka_pg_use_business(duka_hub_store *s, const char *business_id, duka_err *err);

bool duka_pg_in_tx(duka_hub_store *s);

/* The outbox jobs a transaction enqueued, kept in the store until its COMMIT (one stream). */
/* One stream's jobs of the open transaction. */
typedef struct duka_pg_outbox_stream {
    pg_rows rows;
    char business_id[DUKA_BUSINESS_ID_LEN + 1];
    char destination[DUKA_HUB_OUTBOX_DEST_MAX + 1];
    char stream[DUKA_HUB_OUTBOX_STREAM_MAX + 1];
    int64_t now_ms;
} duka_pg_outbox_stream;
/* Streams one transaction may enqueue to: a push's invoices and its M-Pesa verifications. */
#define DUKA_PG_OUTBOX_STREAMS 2
typedef struct duka_pg_outbox_buffer {
    duka_pg_outbox_stream s[DUKA_PG_OUTBOX_STREAMS];
} duka_pg_outbox_buffer;
void duka_pg_outbox_buffer_init(duka_pg_outbox_buffer *b);
void duka_pg_outbox_buffer_clear(duka_pg_outbox_buffer *b);
void duka_pg_outbox_buffer_free(duka_pg_outbox_buffer *b);
int duka_pg_outbox_buffer_count(const duka_pg_outbox_buffer *b);
duka_pg_outbox_buffer *duka_pg_outbox_buffer_of(duka_hub_store *s);
/* Writes the buffered jobs with their numbers (called by the commit, in its transaction). */
duka_rc duka_pg_outbox_flush(duka_hub_store *s, duka_err *err);

/* The outbox part of the ops table (outbox_store_pg.c). */
duka_rc duka_pg_outbox_enqueue(duka_hub_store *s, const char *business_id,
                               const duka_hub_outbox_new *jobs, int n, int64_t now_ms,
                               duka_err *err);
duka_rc duka_pg_outbox_claim(duka_hub_store *s, const char *destination, const char *owner,
                             int max, int64_t lease_until_ms, int64_t now_ms,
                             duka_hub_outbox_claim *out, duka_err *err);
duka_rc duka_pg_outbox_finish(duka_hub_store *s, const char *owner,
                              const duka_hub_outbox_item *items,
                              const duka_hub_outbox_outcome *outcomes,
                              const duka_hub_outbox_next *next, int n, int64_t now_ms, int *lost,
                              duka_err *err);
duka_rc duka_pg_outbox_wake(duka_hub_store *s, const char *destination, int64_t now_ms,
                            int64_t *woken, duka_err *err);
duka_rc duka_pg_outbox_retry(duka_hub_store *s, const char *business_id, int64_t id,
                             int64_t now_ms, int *retried, duka_err *err);
duka_rc duka_pg_outbox_cleanup(duka_hub_store *s, int64_t done_before_ms, int64_t *deleted,
                               duka_err *err);
duka_rc duka_pg_outbox_count(duka_hub_store *s, const char *business_id,
                             const char *destination, bool with_done,
                             duka_hub_outbox_counts *out, duka_err *err);
duka_rc duka_pg_outbox_list(duka_hub_store *s, const char *business_id, const char *status,
                            int limit, json_t **out, duka_err *err);
duka_rc duka_pg_outbox_results(duka_hub_store *s, const char *business_id,
                               const char *terminal, const char *destination, int64_t cursor,
                               int limit, json_t **out, duka_err *err);
duka_rc duka_pg_sale_load(duka_hub_store *s, const char *business_id, const char *receipt_no,
                          duka_sale *out, duka_err *err);
duka_rc duka_pg_refunds_of(duka_hub_store *s, const char *business_id, const char *receipt_no,
                           duka_hub_refunded *out, duka_err *err);
duka_rc duka_pg_outbox_result_of(duka_hub_store *s, const char *business_id,
                              const char *destination, const char *entity_id,
                                 char *result, size_t result_len, bool *found,
                                 duka_err *err);
duka_rc duka_pg_kv_get(duka_hub_store *s, const char *business_id, const char *key,
                       char *value, size_t value_len, bool *found, duka_err *err);
duka_rc duka_pg_kv_put(duka_hub_store *s, const char *business_id, const char *key,
                       const char *value, int64_t now_ms, duka_err *err);
duka_rc duka_pg_health_get(duka_hub_store *s, const char *service, duka_service_health *out,
                           bool *found, duka_err *err);
duka_rc duka_pg_health_put(duka_hub_store *s, const char *service,
                           const duka_service_health *h, duka_err *err);

duka_rc duka_pg_mpesa_receipt_put(duka_hub_store *s, const char *business_id,
                                  const duka_mpesa_payment *p, const char *source,
                                  int64_t now_ms, bool *inserted, duka_err *err);
duka_rc duka_pg_mpesa_receipt_get(duka_hub_store *s, const char *business_id,
                                  const char *receipt, duka_mpesa_receipt *out, bool *found,
                                  duka_err *err);
duka_rc duka_pg_mpesa_receipt_credit(duka_hub_store *s, const char *business_id,
                                     const char *receipt, const char *sale_receipt_no,
                                     int64_t now_ms, char *holder, size_t holder_len,
                                     bool *found, duka_err *err);

#define DUKA_PG_OUTBOX_OPS                                                                     \
    .outbox_enqueue = duka_pg_outbox_enqueue, .outbox_claim = duka_pg_outbox_claim,            \
    .outbox_finish = duka_pg_outbox_finish, .outbox_wake = duka_pg_outbox_wake,                \
    .outbox_retry = duka_pg_outbox_retry, .outbox_cleanup = duka_pg_outbox_cleanup,            \
    .outbox_count = duka_pg_outbox_count, .outbox_list = duka_pg_outbox_list,                  \
    .outbox_results = duka_pg_outbox_results, .kv_get = duka_pg_kv_get, .sale_load = duka_pg_sale_load, .refunds_of = duka_pg_refunds_of, .outbox_result_of = duka_pg_outbox_result_of,                        \
    .kv_put = duka_pg_kv_put, .health_get = duka_pg_health_get,                                \
    .health_put = duka_pg_health_put, .mpesa_receipt_put = duka_pg_mpesa_receipt_put,         \
    .mpesa_receipt_get = duka_pg_mpesa_receipt_get,                                            \
    .mpesa_receipt_credit = duka_pg_mpesa_receipt_credit

#endif
