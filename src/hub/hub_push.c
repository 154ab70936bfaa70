/* hub_push.c — exactly-once application of pushed commands (see hub_push.h). */
#include "hub/hub_push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_limits.h"
#include "common/limits.h"
#include "common/uuid.h"
#include "hub/payload_hash.h"
#include "outbox/hub_outbox.h"
#include "outbox/outbox.h"

/* A refund whose sale has not arrived yet: answered "retry" (docs/PROTOCOL.md). */
#define DUKA_PUSH_ORIGINAL_PENDING "original_not_received"

/* The hub outbox jobs of a batch's applied sales — each one's eTIMS invoice, and the
 * verification of its typed M-Pesa codes when it has any — enqueued together before its
 * COMMIT. At most JOBS_PER_COMMAND per command. */
#define JOBS_PER_COMMAND 2
typedef struct invoice_jobs {
    duka_hub_outbox_new *jobs;
    char **owned; /* per job: its receipt number and terminal, in one allocation */
    int n;
    char etims_stream[DUKA_HUB_OUTBOX_STREAM_MAX + 1];
    char mpesa_stream[DUKA_HUB_OUTBOX_STREAM_MAX + 1];
} invoice_jobs;

static void invoice_jobs_clear(invoice_jobs *j)
{
    for (int i = 0; i < j->n; i++)
        free(j->owned[i]);
    j->n = 0;
}

/* The streams of a business's jobs: its invoices — one branch ("00") per business for now,
 * so one no-gap invcNo series per taxpayer (docs/ARCHITECTURE.md, "eTIMS") — and its M-Pesa
 * verifications. */
static void set_streams(invoice_jobs *j, const char *business_id)
{
    snprintf(j->etims_stream, sizeof(j->etims_stream), "etims:%s:%s", business_id,
             DUKA_ETIMS_BRANCH_DEFAULT);
    snprintf(j->mpesa_stream, sizeof(j->mpesa_stream), "mpesa:%s", business_id);
}

/* Enqueues the invoice job of an applied sale (a credit note for a refund): its receipt number
 * and terminal (copied: the sale struct is reused by the next command), no body. The body is
 * built by the forwarder from the stored receipt when it sends (etims_sender.c): the push's
 * path stays a row insert. A credit note shares its sales' stream: one no-gap invcNo series
 * per taxpayer branch for both (EXTERNAL_APIS.md). */
/* A job for the applied sale: its receipt number and terminal copied (the sale struct is
 * reused by the next command), no payload — the sender reads the sale as the hub stored it
 * when it sends, so the push's path stays a row insert. */
static duka_rc job_add(invoice_jobs *j, const duka_sale *sale, const char *destination,
                       const char *stream, const char *command_type, const char *queue,
                       int default_priority, duka_err *err)
{
    size_t rlen = strlen(sale->receipt_no) + 1, tlen = strlen(sale->terminal) + 1;
    char *receipt = malloc(rlen + tlen);
    if (receipt == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory enqueueing a %s job", destination);
    memcpy(receipt, sale->receipt_no, rlen);
    memcpy(receipt + rlen, sale->terminal, tlen);
    j->owned[j->n] = receipt;
    duka_hub_outbox_new *job = &j->jobs[j->n];
    memset(job, 0, sizeof(*job));
    job->destination = destination;
    job->stream = stream;
    job->command_type = command_type;
    job->entity_id = receipt;
    job->terminal = receipt + rlen;
    job->payload = "";
    const duka_queue_type *q = duka_outbox_queue_type(queue);
    job->priority = q ? q->priority : default_priority;
    job->max_attempts = q ? q->max_attempts : DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT;
    j->n++;
    return DUKA_OK;
}

/* The invoice job of an applied sale (a credit note for a refund). A credit note shares its
 * sales' stream: one no-gap invcNo series per taxpayer branch for both (EXTERNAL_APIS.md). */
static duka_rc invoice_job_add(invoice_jobs *j, const duka_sale *sale, duka_err *err)
{
    return job_add(j, sale, DUKA_DEST_ETIMS, j->etims_stream,
                   sale->kind == DUKA_KIND_REFUND ? "etims.credit_note" : "etims.sale", "tax",
                   DUKA_PRIORITY_TAX, err);
}

/* The verification of a sale's typed M-Pesa codes (payments mpesa / pending_verification):
 * one job per sale, whatever the number of codes (payments/mpesa/mpesa_sender.h). */
static duka_rc mpesa_job_add(invoice_jobs *j, const duka_sale *sale, duka_err *err)
{
    for (int i = 0; i < sale->payment_count; i++)
        if (strcmp(sale->payments[i].method, "mpesa") == 0 &&
            strcmp(sale->payments[i].status, "pending_verification") == 0)
            return job_add(j, sale, DUKA_DEST_MPESA, j->mpesa_stream, "mpesa.verify", "payment",
                           DUKA_PRIORITY_PAYMENT, err);
    return DUKA_OK;
}

static json_t *result_obj(const char *id, const char *status, const char *receipt_no,
                          const char *code, const char *message)
{
    json_t *r = json_pack("{s:s, s:s}", "id", id ? id : "", "status", status);
    if (receipt_no && receipt_no[0])
        json_object_set_new(r, "receipt_no", json_string(receipt_no));
    if (code)
        json_object_set_new(r, "error", json_pack("{s:s, s:s}", "code", code, "message",
                                                  message ? message : ""));
    return r;
}

/* What apply_one needs besides the command: the decoded receipt, and for a refund its
 * original and what was refunded of it before (heap: a sale is ~120 KB). */
typedef struct push_scratch {
    duka_sale *sale, *original;
    duka_hub_refunded *refunded;
} push_scratch;

/* Whether the refund r stays within its original sale, with every refund the business stored
 * of it before (any till's: a refund is checked here against all of them, the till only
 * against its own). false with why set when not: the original is not at the hub, is itself a
 * refund, or a line gives back another line, more quantity or more money than is left. */
static duka_rc refund_within(duka_hub_store *store, const duka_hub_device *dev,
                             const duka_sale *r, push_scratch *x, bool *ok, const char **kind,
                             char *why, size_t whylen, duka_err *err)
{
    *ok = false;
    *kind = "refund_exceeds_sale";
    duka_err lerr = {0};
    duka_rc rc = duka_hub_sale_load(store, dev->business_id, r->original_receipt_no, x->original,
                                    &lerr);
    if (rc == DUKA_NOTFOUND) {
        /* Its sale is of the same till (sale.c checks) and still on its way: a batch before
         * this one was lost while this one got through. Not yet, rather than never. */
        *kind = DUKA_PUSH_ORIGINAL_PENDING;
        snprintf(why, whylen, "refund %s: its sale %s has not reached the hub yet", r->receipt_no,
                 r->original_receipt_no);
        return DUKA_OK;
    }
    if (rc == DUKA_OK && x->original->kind != DUKA_KIND_SALE) {
        *kind = "refund_original_unknown";
        snprintf(why, whylen, "refund %s: %s is not a sale at the hub", r->receipt_no,
                 r->original_receipt_no);
        return DUKA_OK;
    }
    if (rc != DUKA_OK) {
        if (err != NULL)
            *err = lerr;
        return rc;
    }
    if ((rc = duka_hub_refunds_of(store, dev->business_id, r->original_receipt_no, x->refunded,
                                  err)) != DUKA_OK)
        return rc;
    if (x->refunded->count >= DUKA_REFUNDS_PER_SALE_MAX) {
        snprintf(why, whylen, "refund %s: sale %s has %d refunds already, at most %d",
                 r->receipt_no, r->original_receipt_no, x->refunded->count,
                 DUKA_REFUNDS_PER_SALE_MAX);
        return DUKA_OK;
    }
    const duka_sale *o = x->original;
    for (int i = 0; i < r->line_count; i++) {
        const duka_sale_line *l = &r->lines[i];
        int n = l->original_line;
        if (n > o->line_count) {
            snprintf(why, whylen, "refund %s: lines[%d] gives back line %d of sale %s, which has %d",
                     r->receipt_no, i, n, o->receipt_no, o->line_count);
            return DUKA_OK;
        }
        const duka_sale_line *ol = &o->lines[n - 1];
        if (strcmp(ol->sku, l->sku) != 0 || ol->unit_price_cents != l->unit_price_cents ||
            ol->tax_band != l->tax_band) {
            snprintf(why, whylen,
                     "refund %s: lines[%d] is %s at %lld cents band %c, line %d of sale %s is "
                     "%s at %lld cents band %c",
                     r->receipt_no, i, l->sku, (long long)l->unit_price_cents, l->tax_band, n,
                     o->receipt_no, ol->sku, (long long)ol->unit_price_cents, ol->tax_band);
            return DUKA_OK;
        }
        int64_t left_qty = ol->qty_milli - x->refunded->qty_milli[n - 1];
        int64_t left_cents = ol->line_total_cents - x->refunded->cents[n - 1];
        if (l->qty_milli > left_qty || l->line_total_cents > left_cents) {
            snprintf(why, whylen,
                     "refund %s: lines[%d] gives back %lld thousandths and %lld cents of line %d "
                     "of sale %s, which has %lld and %lld left",
                     r->receipt_no, i, (long long)l->qty_milli, (long long)l->line_total_cents, n,
                     o->receipt_no, (long long)left_qty, (long long)left_cents);
            return DUKA_OK;
        }
    }
    *ok = true;
    return DUKA_OK;
}

/* Logs a conflict about the receipt as decoded (fields the hub does not know are dropped, as
 * for a stored sale, so a conflict row is bounded like a sale, not by the request body). */
static duka_rc receipt_conflict(duka_hub_store *store, const duka_hub_device *dev,
                                const duka_sale *sale, const char *kind, const char *id,
                                const char *existing, const char *msg, int64_t now_ms,
                                duka_err *err)
{
    json_t *decoded = duka_sale_to_json(sale);
    char *text = decoded ? json_dumps(decoded, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(decoded);
    duka_rc rc = duka_hub_conflict_insert(store, dev, kind, sale->receipt_no, id, existing,
                                          text ? text : "{}", msg, now_ms, err);
    free(text);
    return rc;
}

/* Whether a resent payload is the one its command id was stored with: its hash, or for an
 * id stored before duka_payload_hash, the hash of the sorted dump (payload_hash.h). */
static bool same_payload(const char *stored, const char *hash, const json_t *payload)
{
    if (strcmp(stored, hash) == 0)
        return true;
    char dump[DUKA_PAYLOAD_HASH_HEX_LEN + 1];
    duka_payload_hash_dump(payload, dump);
    return strcmp(stored, dump) == 0;
}

/* Applies one command inside the open savepoint. Returns the result object, or NULL with
 * err set when storage failed (the caller rolls the savepoint back). */
static json_t *apply_one(duka_hub_store *store, const duka_hub_device *dev, const json_t *cmd,
                         size_t index, const char *hash, push_scratch *x, invoice_jobs *inv,
                         int64_t now_ms, duka_err *err)
{
    char msg[DUKA_ERR_MSG_MAX];
    duka_sale *sale = x->sale;
    const char *id = json_string_value(json_object_get(cmd, "id"));
    const char *type = json_string_value(json_object_get(cmd, "type"));
    if (!json_is_object(cmd) || !duka_uuid_valid(id)) {
        snprintf(msg, sizeof(msg), "commands[%zu].id: missing or not a UUID", index);
        return result_obj(id, "rejected", NULL, "invalid_command", msg);
    }
    if (type == NULL || (strcmp(type, "sale.create") != 0 && strcmp(type, "refund.create") != 0)) {
        /* Quote at most 40 characters of it, so the sentence survives a long type. */
        snprintf(msg, sizeof(msg),
                 "commands[%zu].type: '%.40s%s' is not a known command (sale.create, "
                 "refund.create)",
                 index, type ? type : "", type && strlen(type) > 40 ? "..." : "");
        return result_obj(id, "rejected", NULL, "unknown_command", msg);
    }
    duka_hub_command prior;
    bool seen = false;
    if (duka_hub_command_find(store, id, &prior, &seen, err) != DUKA_OK)
        return NULL;
    if (seen) {
        if (prior.device_id != dev->id)
            return result_obj(id, "rejected", NULL, "foreign_command_id",
                              "this command id was applied for another device");
        if (!same_payload(prior.payload_hash, hash, json_object_get(cmd, "payload")))
            return result_obj(id, "rejected", NULL, "command_id_reused",
                              "this command id was applied with a different payload");
        json_t *r = result_obj(id, "duplicate", prior.receipt_no, NULL, NULL);
        json_object_set_new(r, "first_status", json_string(prior.status));
        return r;
    }
    duka_err verr = {0};
    bool refund = strcmp(type, "refund.create") == 0;
    if (duka_sale_from_json(json_object_get(cmd, "payload"), sale, &verr) != DUKA_OK) {
        snprintf(msg, sizeof(msg), "commands[%zu].payload.%s", index, verr.msg);
        return result_obj(id, "rejected", NULL, refund ? "invalid_refund" : "invalid_sale", msg);
    }
    if ((sale->kind == DUKA_KIND_REFUND) != refund) {
        snprintf(msg, sizeof(msg), "commands[%zu].payload.kind: a %s in a %s command", index,
                 duka_receipt_kind_name(sale->kind), type);
        return result_obj(id, "rejected", sale->receipt_no, refund ? "invalid_refund" : "invalid_sale",
                          msg);
    }
    if (strcmp(sale->terminal, dev->terminal) != 0) {
        snprintf(msg, sizeof(msg), "commands[%zu]: %s of terminal %s pushed by terminal %s",
                 index, duka_receipt_kind_name(sale->kind), sale->terminal, dev->terminal);
        return result_obj(id, "rejected", sale->receipt_no, "terminal_mismatch", msg);
    }
    duka_hub_command outcome = {.device_id = dev->id};
    snprintf(outcome.payload_hash, sizeof(outcome.payload_hash), "%s", hash);
    snprintf(outcome.receipt_no, sizeof(outcome.receipt_no), "%s", sale->receipt_no);
    char owner[DUKA_UUID_STR_LEN + 1];
    bool taken = false;
    if (duka_hub_sale_owner(store, dev->business_id, sale->receipt_no, owner, &taken, err) !=
        DUKA_OK)
        return NULL;
    const char *conflict = NULL;
    const char *existing = NULL;
    if (taken) {
        /* Same receipt number, different command id: a restored backup or a cloned till. Log
         * it with both versions; never a second sale, never a silent drop. */
        snprintf(msg, sizeof(msg), "receipt %s already recorded by command %s", sale->receipt_no,
                 owner);
        conflict = "receipt_reused";
        existing = owner;
    } else if (refund) {
        /* Given back beyond the sale (another till, a restored till): money went out of the
         * drawer, so the refund is kept as a conflict for the owner, never applied or dropped. */
        bool ok = false;
        if (refund_within(store, dev, sale, x, &ok, &conflict, msg, sizeof(msg), err) != DUKA_OK)
            return NULL;
        if (ok)
            conflict = NULL;
        else if (strcmp(conflict, DUKA_PUSH_ORIGINAL_PENDING) == 0)
            return result_obj(id, "retry", sale->receipt_no, conflict, msg); /* nothing kept */
    }
    json_t *r;
    if (conflict != NULL) {
        if (receipt_conflict(store, dev, sale, conflict, id, existing, msg, now_ms, err) !=
            DUKA_OK)
            return NULL;
        snprintf(outcome.status, sizeof(outcome.status), "conflict");
        r = result_obj(id, "conflict", sale->receipt_no, conflict, msg);
    } else {
        if (duka_hub_sale_insert(store, dev, id, sale, now_ms, err) != DUKA_OK ||
            invoice_job_add(inv, sale, err) != DUKA_OK || mpesa_job_add(inv, sale, err) != DUKA_OK)
            return NULL;
        snprintf(outcome.status, sizeof(outcome.status), "applied");
        r = result_obj(id, "applied", sale->receipt_no, NULL, NULL);
    }
    if (duka_hub_command_record(store, id, dev, type, &outcome, now_ms, err) != DUKA_OK) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* Lets the store load, in one round trip, every processed command id and receipt owner the
 * batch will look up (PostgreSQL; a no-op on SQLite). Malformed commands are simply skipped:
 * apply_one refuses them. */
static duka_rc prefetch(duka_hub_store *store, const duka_hub_device *dev,
                        const json_t *commands, size_t n, duka_err *err)
{
    const char **ids = calloc(n ? n : 1, sizeof(*ids));
    const char **receipts = calloc(n ? n : 1, sizeof(*receipts));
    duka_rc rc = DUKA_OK;
    if (ids == NULL || receipts == NULL) {
        rc = duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
    } else {
        int k = 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *cmd = json_array_get(commands, i);
            const char *id = json_string_value(json_object_get(cmd, "id"));
            if (!duka_uuid_valid(id))
                continue;
            ids[k] = id;
            receipts[k] = json_string_value(
                json_object_get(json_object_get(cmd, "payload"), "receipt_no"));
            k++;
        }
        rc = duka_hub_store_prefetch(store, dev->business_id, ids, receipts, k, err);
    }
    free(ids);
    free(receipts);
    return rc;
}

/* Enqueues the batch's jobs, one call per stream (the outbox numbers one stream per call):
 * the invoices in their order, then the verifications. The array is reordered so. */
static duka_rc enqueue_jobs(duka_hub_store *store, const char *business_id, invoice_jobs *inv,
                            int64_t now_ms, duka_err *err)
{
    int k = 0;
    for (int i = 0; i < inv->n; i++)
        if (inv->jobs[i].stream == inv->etims_stream) {
            duka_hub_outbox_new job = inv->jobs[i];
            char *owned = inv->owned[i];
            memmove(&inv->jobs[k + 1], &inv->jobs[k], (size_t)(i - k) * sizeof(*inv->jobs));
            memmove(&inv->owned[k + 1], &inv->owned[k], (size_t)(i - k) * sizeof(*inv->owned));
            inv->jobs[k] = job;
            inv->owned[k] = owned;
            k++;
        }
    duka_rc rc = DUKA_OK;
    if (k > 0)
        rc = duka_hub_outbox_enqueue(store, business_id, inv->jobs, k, now_ms, err);
    if (rc == DUKA_OK && inv->n > k)
        rc = duka_hub_outbox_enqueue(store, business_id, inv->jobs + k, inv->n - k, now_ms, err);
    return rc;
}

/* One attempt at the whole batch in one transaction; *results gets the per-command answers. */
static duka_rc apply_batch(duka_hub_store *store, const duka_hub_device *dev,
                           const duka_hub_push_batch *b, push_scratch *x, invoice_jobs *inv,
                           int64_t now_ms, json_t *results, duka_err *err)
{
    invoice_jobs_clear(inv);
    set_streams(inv, dev->business_id);
    duka_rc rc = duka_hub_store_begin(store, err);
    if (rc == DUKA_OK)
        rc = prefetch(store, dev, b->commands, b->count, err);
    for (size_t i = 0; rc == DUKA_OK && i < b->count; i++) {
        const json_t *cmd = json_array_get(b->commands, i);
        /* A refund is checked against the stored sale and refunds: the batch's own writes
         * before it must be readable first (PostgreSQL buffers them until COMMIT). */
        const char *type = json_string_value(json_object_get(cmd, "type"));
        if (type != NULL && strcmp(type, "refund.create") == 0 &&
            (rc = duka_hub_store_sync_writes(store, err)) != DUKA_OK)
            break;
        if ((rc = duka_hub_store_savepoint(store, err)) != DUKA_OK)
            break;
        json_t *r = apply_one(store, dev, cmd, i, b->hashes[i], x, inv, now_ms, err);
        if (r == NULL) {
            rc = err && err->rc ? err->rc : DUKA_STORE;
            break;
        }
        /* A rejected command must leave nothing behind — but the refusal is audited, in the
         * batch's transaction. */
        const char *status = json_string_value(json_object_get(r, "status"));
        if (strcmp(status, "retry") == 0) {
            duka_hub_store_rollback_to(store);
        } else if (strcmp(status, "rejected") == 0) {
            duka_hub_store_rollback_to(store);
            const json_t *e = json_object_get(r, "error");
            char detail[DUKA_ERR_MSG_MAX + 64];
            snprintf(detail, sizeof(detail), "command %s: %s",
                     json_string_value(json_object_get(r, "id")),
                     json_string_value(json_object_get(e, "message")));
            rc = duka_hub_audit(store, dev->business_id, dev->id,
                                json_string_value(json_object_get(e, "code")), detail, now_ms,
                                err);
        } else {
            rc = duka_hub_store_release(store, err);
        }
        json_array_append_new(results, r);
    }
    /* Every applied sale's tax invoice, with its invcNo, in the sale's own transaction: a
     * sale is never applied without its invoice job, nor an invcNo taken without its sale. */
    if (rc == DUKA_OK)
        rc = enqueue_jobs(store, dev->business_id, inv, now_ms, err);
    if (rc == DUKA_OK)
        rc = duka_hub_store_commit(store, err);
    if (rc != DUKA_OK)
        duka_hub_store_rollback(store);
    return rc;
}

duka_rc duka_hub_push_prepare(const json_t *body, duka_hub_push_batch *out, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    const json_t *commands = json_object_get(body, "commands");
    if (!json_is_object(body) || !json_is_array(commands))
        return duka_err_set(err, DUKA_INPUT, "body: expected {\"commands\": [...]}");
    duka_rc rc = duka_json_depth_check(body, DUKA_JSON_DEPTH_MAX, "body", err);
    if (rc != DUKA_OK)
        return rc;
    size_t n = json_array_size(commands);
    if (n > DUKA_SYNC_BATCH_MAX)
        return duka_err_set(err, DUKA_LIMIT, "commands: %zu in one push, at most %d", n,
                            DUKA_SYNC_BATCH_MAX);
    out->hashes = calloc(n ? n : 1, sizeof(*out->hashes));
    if (out->hashes == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
    out->commands = commands;
    out->count = n;
    for (size_t i = 0; i < n; i++)
        if (duka_payload_hash(json_object_get(json_array_get(commands, i), "payload"),
                              out->hashes[i]) != 0) {
            duka_hub_push_batch_free(out);
            return duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
        }
    return DUKA_OK;
}

void duka_hub_push_batch_free(duka_hub_push_batch *b)
{
    free(b->hashes);
    memset(b, 0, sizeof(*b));
}

duka_rc duka_hub_push_apply_prepared(duka_hub_store *store, const duka_hub_device *dev,
                                     const duka_hub_push_batch *b, int64_t now_ms,
                                     json_t **reply, duka_err *err)
{
    *reply = NULL;
    duka_sale *sale = duka_sale_new();
    /* A refund's original and sums: only a batch with a refund needs them. */
    bool refunds = false;
    for (size_t i = 0; i < b->count && !refunds; i++) {
        const char *t = json_string_value(
            json_object_get(json_array_get(b->commands, i), "type"));
        refunds = t != NULL && strcmp(t, "refund.create") == 0;
    }
    push_scratch x = {.sale = sale,
                      .original = refunds ? duka_sale_new() : NULL,
                      .refunded = refunds ? malloc(sizeof(duka_hub_refunded)) : NULL};
    size_t cap = (b->count ? b->count : 1) * JOBS_PER_COMMAND;
    invoice_jobs inv = {.jobs = calloc(cap, sizeof(*inv.jobs)),
                        .owned = calloc(cap, sizeof(*inv.owned))};
    if (sale == NULL || inv.jobs == NULL || inv.owned == NULL ||
        (refunds && (x.original == NULL || x.refunded == NULL))) {
        duka_sale_free(sale);
        duka_sale_free(x.original);
        free(x.refunded);
        free(inv.jobs);
        free(inv.owned);
        return duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
    }
    /* DUKA_BUSY from the store: another hub process committed some of these command ids (or
     * receipt numbers) while this batch was being applied, so nothing of it was kept. Apply it
     * again: what the other hub applied now answers "duplicate" (or "conflict"). */
    duka_rc rc = DUKA_OK;
    json_t *results = NULL;
    for (int attempt = 0; attempt <= DUKA_PUSH_RACE_RETRIES; attempt++) {
        json_decref(results);
        results = json_array();
        if (results == NULL) {
            rc = duka_err_set(err, DUKA_NOMEM, "out of memory applying a push");
            break;
        }
        rc = apply_batch(store, dev, b, &x, &inv, now_ms, results, err);
        if (rc != DUKA_BUSY)
            break;
    }
    duka_sale_free(sale);
    duka_sale_free(x.original);
    free(x.refunded);
    invoice_jobs_clear(&inv);
    free(inv.jobs);
    free(inv.owned);
    if (rc != DUKA_OK) {
        json_decref(results);
        return rc;
    }
    *reply = json_pack("{s:o}", "results", results);
    return DUKA_OK;
}

duka_rc duka_hub_push_apply(duka_hub_store *store, const duka_hub_device *dev,
                            const json_t *body, int64_t now_ms, json_t **reply, duka_err *err)
{
    *reply = NULL;
    duka_hub_push_batch b;
    duka_rc rc = duka_hub_push_prepare(body, &b, err);
    if (rc == DUKA_OK)
        rc = duka_hub_push_apply_prepared(store, dev, &b, now_ms, reply, err);
    duka_hub_push_batch_free(&b);
    return rc;
}
