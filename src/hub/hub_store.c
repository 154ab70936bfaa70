/*
 * hub_store.c — the public hub store functions (hub_store.h), forwarding to the store's
 * implementation (hub_store_impl.h): SQLite for a file path, PostgreSQL for a postgres:// URL.
 */
#include "hub/hub_store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

bool duka_hub_store_is_postgres(const char *location)
{
    return location != NULL && (strncmp(location, "postgres://", 11) == 0 ||
                                strncmp(location, "postgresql://", 13) == 0);
}

duka_rc duka_hub_store_open(const char *location, bool create, duka_hub_store **out,
                            duka_err *err)
{
    duka_rc rc = duka_hub_store_is_postgres(location)
                     ? duka_hub_store_pg_open(location, create, out, err)
                     : duka_hub_store_sqlite_open(location, create, out, err);
    if (rc == DUKA_OK)
        duka_hub_store_redact(location, (*out)->location, sizeof((*out)->location));
    return rc;
}

const char *duka_hub_store_location(const duka_hub_store *s)
{
    return s->location;
}

/* A file path is shown as it is. A URL loses its password: "postgres://user:secret@host/db?
 * password=x&a=b" becomes "postgres://user@host/db?a=b" (the user part ends at the first '@'
 * before any '/', as libpq reads it). */
void duka_hub_store_redact(const char *location, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    if (!duka_hub_store_is_postgres(location)) {
        snprintf(out, outlen, "%s", location ? location : "");
        return;
    }
    size_t n = 0;
/* PUT's argument must have no side effect: it is not evaluated once the output is full. */
#define PUT(c)                                                                                   \
    do {                                                                                         \
        if (n + 1 < outlen)                                                                      \
            out[n++] = (c);                                                                      \
    } while (0)
    const char *p = location;
    const char *scheme_end = strstr(location, "://") + 3;
    for (; p < scheme_end; p++)
        PUT(*p);
    const char *at = p;
    while (*at && *at != '@' && *at != '/')
        at++;
    if (*at == '@') {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        for (const char *q = p; q < (colon ? colon : at); q++)
            PUT(*q);
        p = at; /* the '@' is copied below */
    }
    for (; *p && *p != '?'; p++)
        PUT(*p);
    if (*p == '?') {
        bool first = true;
        p++;
        while (*p) {
            const char *end = strchr(p, '&');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (!(len >= 9 && strncmp(p, "password=", 9) == 0)) {
                PUT(first ? '?' : '&');
                first = false;
                for (size_t i = 0; i < len; i++)
                    PUT(p[i]);
            }
            p += len;
            if (*p == '&')
                p++;
        }
    }
#undef PUT
    out[n] = '\0';
}

json_t *duka_hub_json_text(const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (v != NULL)
        return v;
    char *copy = strdup(s);
    if (copy == NULL)
        return NULL;
    v = json_string(duka_utf8_sanitize(copy));
    free(copy);
    return v;
}

const char *duka_hub_store_kind(const duka_hub_store *s)
{
    return s->ops->name;
}

void duka_hub_store_close(duka_hub_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

void duka_hub_store_checkpoint(duka_hub_store *s)
{
    if (s->ops->checkpoint != NULL)
        s->ops->checkpoint(s);
}

/* The simulator's storage faults: the commit fails, the transaction is rolled back. */
duka_rc duka_hub_store_commit(duka_hub_store *s, duka_err *err)
{
    if (s->commit_fault != NULL && s->commit_fault(s->commit_fault_ctx)) {
        s->ops->rollback(s);
        return duka_err_set(err, DUKA_STORE, "committing: disk I/O error (injected)");
    }
    return s->ops->commit(s, err);
}

void duka_hub_store_set_commit_fault(duka_hub_store *s, bool (*hook)(void *ctx), void *ctx)
{
    s->commit_fault = hook;
    s->commit_fault_ctx = ctx;
}

duka_rc duka_hub_store_prefetch(duka_hub_store *s, const char *business_id,
                                const char *const *command_ids, const char *const *receipt_nos,
                                int n, duka_err *err)
{
    if (s->ops->prefetch == NULL)
        return DUKA_OK;
    return s->ops->prefetch(s, business_id, command_ids, receipt_nos, n, err);
}

duka_rc duka_hub_store_begin(duka_hub_store *s, duka_err *err)
{
    return s->ops->begin(s, err);
}

void duka_hub_store_rollback(duka_hub_store *s)
{
    s->ops->rollback(s);
}

duka_rc duka_hub_store_savepoint(duka_hub_store *s, duka_err *err)
{
    return s->ops->savepoint(s, err);
}

duka_rc duka_hub_store_release(duka_hub_store *s, duka_err *err)
{
    return s->ops->release(s, err);
}

void duka_hub_store_rollback_to(duka_hub_store *s)
{
    s->ops->rollback_to(s);
}

duka_rc duka_hub_business_create(duka_hub_store *s, const char *name,
                                 char id_out[DUKA_BUSINESS_ID_LEN + 1], duka_err *err)
{
    return s->ops->business_create(s, name, "", id_out, err);
}

duka_rc duka_hub_business_create_with_pin(duka_hub_store *s, const char *name,
                                          const char *kra_pin,
                                          char id_out[DUKA_BUSINESS_ID_LEN + 1], duka_err *err)
{
    return s->ops->business_create(s, name, kra_pin ? kra_pin : "", id_out, err);
}

duka_rc duka_hub_business_check(duka_hub_store *s, const char *business_id, duka_err *err)
{
    return s->ops->business_check(s, business_id, err);
}

duka_rc duka_hub_business_list(duka_hub_store *s, bool lock, json_t **out, duka_err *err)
{
    return s->ops->business_list(s, lock, out, err);
}

duka_rc duka_hub_business_update(duka_hub_store *s, const char *business_id, const char *name,
                                 const char *kra_pin, duka_err *err)
{
    return s->ops->business_update(s, business_id, name, kra_pin, err);
}

duka_rc duka_hub_device_list(duka_hub_store *s, const char *business_id, json_t **out,
                             duka_err *err)
{
    return s->ops->device_list(s, business_id, out, err);
}

duka_rc duka_hub_device_bind_till(duka_hub_store *s, duka_hub_device *dev, const char *till_id,
                                  int64_t now_ms, bool *changed, duka_err *err)
{
    return s->ops->device_bind_till(s, dev, till_id, now_ms, changed, err);
}

duka_rc duka_hub_product_list(duka_hub_store *s, const char *business_id, bool archived,
                              json_t **out, duka_err *err)
{
    return s->ops->product_list(s, business_id, archived, out, err);
}

duka_rc duka_hub_stock_levels(duka_hub_store *s, const char *business_id, json_t **out,
                              duka_err *err)
{
    return s->ops->stock_levels(s, business_id, out, err);
}

duka_rc duka_hub_conflict_page(duka_hub_store *s, const char *business_id, int64_t before_id,
                               int limit, json_t **out, duka_err *err)
{
    return s->ops->conflict_page(s, business_id, before_id, limit, out, err);
}

duka_rc duka_hub_device_add(duka_hub_store *s, const char *business_id, const char *terminal,
                            char token_out[DUKA_TOKEN_MAX + 1], duka_err *err)
{
    return s->ops->device_add(s, business_id, terminal, token_out, err);
}

duka_rc duka_hub_device_revoke(duka_hub_store *s, const char *business_id, const char *terminal,
                               int64_t now_ms, duka_err *err)
{
    return s->ops->device_revoke(s, business_id, terminal, now_ms, err);
}

duka_rc duka_hub_audit(duka_hub_store *s, const char *business_id, int64_t device_id,
                       const char *event, const char *detail, int64_t now_ms, duka_err *err)
{
    return s->ops->audit(s, business_id, device_id, event, detail, now_ms, err);
}

duka_rc duka_hub_audit_list(duka_hub_store *s, const char *business_id, int limit, json_t **out,
                            duka_err *err)
{
    return s->ops->audit_list(s, business_id, limit, out, err);
}

duka_rc duka_hub_device_authenticate(duka_hub_store *s, const char *token, duka_hub_device *out,
                                     duka_err *err)
{
    return s->ops->device_authenticate(s, token, out, err);
}

duka_rc duka_hub_product_upsert(duka_hub_store *s, const char *business_id,
                                const duka_hub_product *p, int64_t now_ms, duka_err *err)
{
    return s->ops->product_upsert(s, business_id, p, now_ms, err);
}

duka_rc duka_hub_product_archive(duka_hub_store *s, const char *business_id, const char *sku,
                                 int64_t now_ms, duka_err *err)
{
    return s->ops->product_archive(s, business_id, sku, now_ms, err);
}

duka_rc duka_hub_changes_since(duka_hub_store *s, const char *business_id, int64_t cursor,
                               int limit, json_t **out, duka_err *err)
{
    return s->ops->changes_since(s, business_id, cursor, limit, out, err);
}

duka_rc duka_hub_command_find(duka_hub_store *s, const char *command_id, duka_hub_command *out,
                              bool *found, duka_err *err)
{
    return s->ops->command_find(s, command_id, out, found, err);
}

duka_rc duka_hub_command_record(duka_hub_store *s, const char *command_id,
                                const duka_hub_device *dev, const char *command_type,
                                const duka_hub_command *outcome, int64_t now_ms, duka_err *err)
{
    return s->ops->command_record(s, command_id, dev, command_type, outcome, now_ms, err);
}

duka_rc duka_hub_sale_owner(duka_hub_store *s, const char *business_id, const char *receipt_no,
                            char command_id_out[DUKA_UUID_STR_LEN + 1], bool *found, duka_err *err)
{
    return s->ops->sale_owner(s, business_id, receipt_no, command_id_out, found, err);
}

duka_rc duka_hub_sale_insert(duka_hub_store *s, const duka_hub_device *dev, const char *command_id,
                             const duka_sale *sale, int64_t now_ms, duka_err *err)
{
    return s->ops->sale_insert(s, dev, command_id, sale, now_ms, err);
}

duka_rc duka_hub_refunds_of(duka_hub_store *s, const char *business_id, const char *receipt_no,
                            duka_hub_refunded *out, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    return s->ops->refunds_of(s, business_id, receipt_no, out, err);
}

duka_rc duka_hub_store_sync_writes(duka_hub_store *s, duka_err *err)
{
    return s->ops->sync_writes ? s->ops->sync_writes(s, err) : DUKA_OK;
}

duka_rc duka_hub_conflict_insert(duka_hub_store *s, const duka_hub_device *dev, const char *kind,
                                 const char *entity_id, const char *command_id,
                                 const char *existing_command_id, const char *payload,
                                 const char *detail, int64_t now_ms, duka_err *err)
{
    return s->ops->conflict_insert(s, dev, kind, entity_id, command_id, existing_command_id,
                                   payload, detail, now_ms, err);
}

duka_rc duka_hub_receipt_floor(duka_hub_store *s, const char *business_id, const char *terminal,
                               int since_day, json_t **out, duka_err *err)
{
    return s->ops->receipt_floor(s, business_id, terminal, since_day, out, err);
}


duka_rc duka_hub_cashier_list(duka_hub_store *s, const char *business_id, int64_t known_version,
                              json_t **out, duka_err *err)
{
    return s->ops->cashier_list(s, business_id, known_version, out, err);
}

duka_rc duka_hub_cashier_put(duka_hub_store *s, const char *business_id,
                             const duka_hub_cashier *c, bool insert, int64_t now_ms,
                             duka_err *err)
{
    return s->ops->cashier_put(s, business_id, c, insert, now_ms, err);
}

duka_rc duka_hub_report_cashiers(duka_hub_store *s, const char *business_id, json_t **out,
                                 duka_err *err)
{
    return s->ops->report_cashiers(s, business_id, out, err);
}

#define COUNT_SQL(M, BY, STATUSES)                                                                 \
    "SELECT status, count(*), min(created_ms) FROM hub_outbox WHERE destination = " M "1" BY    \
    " AND status IN (" STATUSES ") GROUP BY status"
#define UNSENT "'pending', 'processing', 'awaiting', 'failed'"

const char *duka_hub_outbox_count_sql(bool by_business, bool with_done, char mark)
{
    static const char *const sql[2][2][2] = {
        {{COUNT_SQL("?", "", UNSENT), COUNT_SQL("?", "", UNSENT ", 'done'")},
         {COUNT_SQL("?", " AND business_id = ?2", UNSENT),
          COUNT_SQL("?", " AND business_id = ?2", UNSENT ", 'done'")}},
        {{COUNT_SQL("$", "", UNSENT), COUNT_SQL("$", "", UNSENT ", 'done'")},
         {COUNT_SQL("$", " AND business_id = $2", UNSENT),
          COUNT_SQL("$", " AND business_id = $2", UNSENT ", 'done'")}}};
    return sql[mark == '$'][by_business][with_done];
}
