/*
 * hub_store_impl.h — what a hub store implementation provides (private to src/hub).
 *
 * hub_store.c holds the public functions of hub_store.h and forwards each to the store's ops;
 * hub_store_sqlite.c (one SQLite file) and hub_store_pg.c (PostgreSQL) fill the table. Each
 * implementation's struct starts with a duka_hub_store (the base), so a pointer to it is a
 * pointer to the base. Generic behaviour — the simulator's injected commit faults — lives
 * in hub_store.c, once; what a command means over several operations (a business's name
 * checked against the others, a till binding, the report's conflicts) lives above the stores
 * (hub_business.c, till_binding.c, hub_report.c), once.
 */
#ifndef DUKA_HUB_STORE_IMPL_H
#define DUKA_HUB_STORE_IMPL_H

#include "hub/hub_store.h"
#include "hub/mpesa_receipts.h"
#include "outbox/hub_outbox.h"

typedef struct duka_hub_store_ops {
    const char *name; /* "sqlite" | "postgres" */
    void (*close)(duka_hub_store *s);
    duka_rc (*begin)(duka_hub_store *s, duka_err *err);
    duka_rc (*commit)(duka_hub_store *s, duka_err *err);
    void (*rollback)(duka_hub_store *s);
    void (*checkpoint)(duka_hub_store *s); /* NULL: nothing to do */
    duka_rc (*savepoint)(duka_hub_store *s, duka_err *err);
    duka_rc (*release)(duka_hub_store *s, duka_err *err);
    void (*rollback_to)(duka_hub_store *s);
    /* NULL: lookups are cheap enough one by one. */
    duka_rc (*prefetch)(duka_hub_store *s, const char *business_id,
                        const char *const *command_ids, const char *const *receipt_nos, int n,
                        duka_err *err);
    duka_rc (*business_create)(duka_hub_store *s, const char *name, const char *kra_pin,
                               char id_out[DUKA_BUSINESS_ID_LEN + 1], duka_err *err);
    duka_rc (*business_check)(duka_hub_store *s, const char *business_id, duka_err *err);
    duka_rc (*business_list)(duka_hub_store *s, bool lock, json_t **out, duka_err *err);
    duka_rc (*business_update)(duka_hub_store *s, const char *business_id, const char *name,
                               const char *kra_pin, duka_err *err);
    duka_rc (*device_add)(duka_hub_store *s, const char *business_id, const char *terminal,
                          char token_out[DUKA_TOKEN_MAX + 1], duka_err *err);
    duka_rc (*device_revoke)(duka_hub_store *s, const char *business_id, const char *terminal,
                             int64_t now_ms, duka_err *err);
    duka_rc (*device_authenticate)(duka_hub_store *s, const char *token, duka_hub_device *out,
                                   duka_err *err);
    duka_rc (*device_list)(duka_hub_store *s, const char *business_id, json_t **out,
                           duka_err *err);
    duka_rc (*device_bind_till)(duka_hub_store *s, duka_hub_device *dev, const char *till_id,
                                int64_t now_ms, bool *changed, duka_err *err);
    duka_rc (*audit)(duka_hub_store *s, const char *business_id, int64_t device_id,
                     const char *event, const char *detail, int64_t now_ms, duka_err *err);
    duka_rc (*audit_list)(duka_hub_store *s, const char *business_id, int limit, json_t **out,
                          duka_err *err);
    duka_rc (*product_upsert)(duka_hub_store *s, const char *business_id,
                              const duka_hub_product *p, int64_t now_ms, duka_err *err);
    duka_rc (*product_archive)(duka_hub_store *s, const char *business_id, const char *sku,
                               int64_t now_ms, duka_err *err);
    duka_rc (*changes_since)(duka_hub_store *s, const char *business_id, int64_t cursor,
                             int limit, json_t **out, duka_err *err);
    duka_rc (*product_list)(duka_hub_store *s, const char *business_id, bool archived,
                            json_t **out, duka_err *err);
    duka_rc (*stock_levels)(duka_hub_store *s, const char *business_id, json_t **out,
                            duka_err *err);
    duka_rc (*command_find)(duka_hub_store *s, const char *command_id, duka_hub_command *out,
                            bool *found, duka_err *err);
    duka_rc (*command_record)(duka_hub_store *s, const char *command_id,
                              const duka_hub_device *dev, const char *command_type,
                              const duka_hub_command *outcome, int64_t now_ms, duka_err *err);
    duka_rc (*sale_owner)(duka_hub_store *s, const char *business_id, const char *receipt_no,
                          char command_id_out[DUKA_UUID_STR_LEN + 1], bool *found,
                          duka_err *err);
    duka_rc (*sale_insert)(duka_hub_store *s, const duka_hub_device *dev,
                           const char *command_id, const duka_sale *sale, int64_t now_ms,
                           duka_err *err);
    duka_rc (*refunds_of)(duka_hub_store *s, const char *business_id, const char *receipt_no,
                          duka_hub_refunded *out, duka_err *err);
    /* NULL: the store's writes are readable at once (SQLite). */
    duka_rc (*sync_writes)(duka_hub_store *s, duka_err *err);
    duka_rc (*conflict_insert)(duka_hub_store *s, const duka_hub_device *dev, const char *kind,
                               const char *entity_id, const char *command_id,
                               const char *existing_command_id, const char *payload,
                               const char *detail, int64_t now_ms, duka_err *err);
    duka_rc (*receipt_floor)(duka_hub_store *s, const char *business_id, const char *terminal,
                             int since_day, json_t **out, duka_err *err);
    duka_rc (*conflict_page)(duka_hub_store *s, const char *business_id, int64_t before_id,
                             int limit, json_t **out, duka_err *err);
    duka_rc (*cashier_list)(duka_hub_store *s, const char *business_id, int64_t known_version,
                            json_t **out, duka_err *err);
    duka_rc (*cashier_put)(duka_hub_store *s, const char *business_id,
                           const duka_hub_cashier *c, bool insert, int64_t now_ms,
                           duka_err *err);
    duka_rc (*report_cashiers)(duka_hub_store *s, const char *business_id, json_t **out,
                               duka_err *err);
    /* The hub's outbox (outbox/hub_outbox.h; the policy lives there, the SQL here). */
    duka_rc (*outbox_enqueue)(duka_hub_store *s, const char *business_id,
                              const duka_hub_outbox_new *jobs, int n, int64_t now_ms,
                              duka_err *err);
    duka_rc (*outbox_claim)(duka_hub_store *s, const char *destination, const char *owner,
                            int max, int64_t lease_until_ms, int64_t now_ms,
                            duka_hub_outbox_claim *out, duka_err *err);
    /* Writes each item's next state (decided by duka_hub_outbox_decide) and its attempt row,
     * and the SENT results; one transaction. */
    duka_rc (*outbox_finish)(duka_hub_store *s, const char *owner,
                             const duka_hub_outbox_item *items,
                             const duka_hub_outbox_outcome *outcomes,
                             const duka_hub_outbox_next *next, int n, int64_t now_ms, int *lost,
                             duka_err *err);
    duka_rc (*outbox_wake)(duka_hub_store *s, const char *destination, int64_t now_ms,
                           int64_t *woken, duka_err *err);
    /* NULL: the store is shared with other hubs (PostgreSQL). */
    duka_rc (*outbox_recover_own)(duka_hub_store *s, const char *destination, int64_t now_ms,
                                  int64_t *recovered, duka_err *err);
    duka_rc (*outbox_retry)(duka_hub_store *s, const char *business_id, int64_t id,
                            int64_t now_ms, int *retried, duka_err *err);
    duka_rc (*outbox_cleanup)(duka_hub_store *s, int64_t done_before_ms, int64_t *deleted,
                              duka_err *err);
    duka_rc (*outbox_count)(duka_hub_store *s, const char *business_id, const char *destination,
                            bool with_done, duka_hub_outbox_counts *out, duka_err *err);
    duka_rc (*outbox_list)(duka_hub_store *s, const char *business_id, const char *status,
                           int limit, json_t **out, duka_err *err);
    duka_rc (*outbox_results)(duka_hub_store *s, const char *business_id, const char *terminal,
                              const char *destination, int64_t cursor, int limit, json_t **out,
                              duka_err *err);
    duka_rc (*sale_load)(duka_hub_store *s, const char *business_id, const char *receipt_no,
                         duka_sale *out, duka_err *err);
    duka_rc (*outbox_result_of)(duka_hub_store *s, const char *business_id,
                             const char *destination, const char *entity_id,
                                char *result, size_t result_len, bool *found,
                                duka_err *err);
    duka_rc (*kv_get)(duka_hub_store *s, const char *business_id, const char *key, char *value,
                      size_t value_len, bool *found, duka_err *err);
    duka_rc (*kv_put)(duka_hub_store *s, const char *business_id, const char *key,
                      const char *value, int64_t now_ms, duka_err *err);
    duka_rc (*mpesa_receipt_put)(duka_hub_store *s, const char *business_id,
                                 const duka_mpesa_payment *p, const char *source,
                                 int64_t now_ms, bool *inserted, duka_err *err);
    duka_rc (*mpesa_receipt_get)(duka_hub_store *s, const char *business_id,
                                 const char *receipt, duka_mpesa_receipt *out, bool *found,
                                 duka_err *err);
    duka_rc (*mpesa_receipt_credit)(duka_hub_store *s, const char *business_id,
                                    const char *receipt, const char *sale_receipt_no,
                                    int64_t now_ms, char *holder, size_t holder_len,
                                    bool *found, duka_err *err);
    duka_rc (*health_get)(duka_hub_store *s, const char *service, duka_service_health *out,
                          bool *found, duka_err *err);
    duka_rc (*health_put)(duka_hub_store *s, const char *service, const duka_service_health *h,
                          duka_err *err);
    /* The report's totals: {"sales","receipts","conflicts","total_cents","tax_cents"}
     * (hub_report.c adds the conflicts). */
    duka_rc (*report)(duka_hub_store *s, const char *business_id, json_t **out, duka_err *err);
} duka_hub_store_ops;

struct duka_hub_store {
    const duka_hub_store_ops *ops;
    bool (*commit_fault)(void *ctx); /* the simulator's storage faults; NULL normally */
    void *commit_fault_ctx;
    /* Where the store is, fit to print: the path, or the URL without its password
     * (duka_hub_store_redact); set by duka_hub_store_open. */
    char location[DUKA_URL_MAX + 1];
};

/* The count of outbox_count for both stores: by_business adds "AND business_id = ?2", with_done
 * counts done items too; mark '?' (SQLite) or '$' (PostgreSQL) numbers the parameters
 * (destination first). */
const char *duka_hub_outbox_count_sql(bool by_business, bool with_done, char mark);

duka_rc duka_hub_store_sqlite_open(const char *path, bool create, duka_hub_store **out,
                                   duka_err *err);
duka_rc duka_hub_store_pg_open(const char *url, bool create, duka_hub_store **out,
                               duka_err *err);

/* The PostgreSQL store's prepared statements, for the test that looks at their plans:
 * statement i's name (as prepared, "duka_…") and SQL text; false past the last. */
bool duka_hub_store_pg_statement(int i, const char **name, const char **sql);

#endif
