/* hub_outbox.c — the hub hop's policy, written once for both stores (see hub_outbox.h). */
#include "outbox/hub_outbox.h"

#include <stdlib.h>
#include <string.h>

#include "common/random.h"
#include "hub/hub_store_impl.h"
#include "outbox/outbox.h"

static const char *const status_names[] = {
    [DUKA_HUB_OUTBOX_PENDING] = "pending",     [DUKA_HUB_OUTBOX_PROCESSING] = "processing",
    [DUKA_HUB_OUTBOX_AWAITING] = "awaiting",   [DUKA_HUB_OUTBOX_DONE] = "done",
    [DUKA_HUB_OUTBOX_FAILED] = "failed",
};

const char *duka_hub_outbox_status_name(duka_hub_outbox_status s)
{
    return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

int duka_hub_outbox_status_parse(const char *name)
{
    for (int i = 0; name && i < (int)(sizeof(status_names) / sizeof(status_names[0])); i++)
        if (strcmp(status_names[i], name) == 0)
            return i;
    return -1;
}

void duka_hub_outbox_claim_free(duka_hub_outbox_claim *c)
{
    for (int i = 0; i < c->count; i++)
        free(c->items[i].payload);
    c->count = 0;
}

const char *duka_hub_outbox_verdict_name(duka_hub_outbox_verdict v)
{
    switch (v) {
    case DUKA_HUB_OUTBOX_SENT: return "sent";
    case DUKA_HUB_OUTBOX_RETRY: return "retry";
    case DUKA_HUB_OUTBOX_DEFER: return "deferred";
    case DUKA_HUB_OUTBOX_UNCLEAR: return "unclear";
    case DUKA_HUB_OUTBOX_AWAIT: return "awaiting";
    case DUKA_HUB_OUTBOX_REFUSED: return "refused";
    case DUKA_HUB_OUTBOX_WAIT: return "waiting";
    }
    return "?";
}

static int item_cmp(const void *a, const void *b)
{
    const duka_hub_outbox_item *x = a, *y = b;
    int c = strcmp(x->stream, y->stream);
    if (c != 0)
        return c;
    return x->seq_no < y->seq_no ? -1 : x->seq_no > y->seq_no;
}

void duka_hub_outbox_claim_sort(duka_hub_outbox_claim *c)
{
    qsort(c->items, (size_t)c->count, sizeof(c->items[0]), item_cmp);
}

void duka_hub_outbox_counts_add(duka_hub_outbox_counts *out, int status, int64_t k,
                                int64_t oldest)
{
    switch (status) {
    case DUKA_HUB_OUTBOX_PENDING: out->pending = k; break;
    case DUKA_HUB_OUTBOX_PROCESSING: out->processing = k; break;
    case DUKA_HUB_OUTBOX_AWAITING: out->awaiting = k; break;
    case DUKA_HUB_OUTBOX_DONE: out->done = k; break;
    case DUKA_HUB_OUTBOX_FAILED: out->failed = k; break;
    default: return;
    }
    if (status != DUKA_HUB_OUTBOX_DONE &&
        (out->oldest_unsent_ms == 0 || oldest < out->oldest_unsent_ms))
        out->oldest_unsent_ms = oldest;
}

/* The outbox policy's delay after `attempts` failures, with its up to 20 % jitter. */
static int64_t backoff_with_jitter(int attempts)
{
    int64_t d = duka_outbox_backoff_ms(attempts < 1 ? 1 : attempts);
    uint32_t span = (uint32_t)(d / 5 > 0 && d / 5 < UINT32_MAX ? d / 5 : 1);
    return d + (int64_t)duka_random_uniform(span + 1);
}

void duka_hub_outbox_decide(const duka_hub_outbox_item *item, const duka_hub_outbox_outcome *o,
                            int64_t now_ms, duka_hub_outbox_next *next)
{
    /* The claim counted this attempt already. */
    next->attempts = item->attempts;
    next->unclear = item->unclear;
    next->status = DUKA_HUB_OUTBOX_PENDING;
    next->next_attempt_ms = now_ms;
    switch (o->verdict) {
    case DUKA_HUB_OUTBOX_SENT:
        next->status = DUKA_HUB_OUTBOX_DONE;
        next->unclear = false;
        return;
    case DUKA_HUB_OUTBOX_REFUSED:
        next->status = DUKA_HUB_OUTBOX_FAILED;
        return;
    case DUKA_HUB_OUTBOX_AWAIT:
        next->status = DUKA_HUB_OUTBOX_AWAITING;
        next->next_attempt_ms = o->not_before_ms > now_ms ? o->not_before_ms : now_ms;
        return;
    case DUKA_HUB_OUTBOX_WAIT:
    case DUKA_HUB_OUTBOX_DEFER:
    case DUKA_HUB_OUTBOX_UNCLEAR:
        /* Not the item's fault (the service is down, or did not answer): the attempt is given
         * back, so hours of outage never fail an invoice; the health monitor wakes them. */
        next->attempts = item->attempts > 0 ? item->attempts - 1 : 0;
        next->unclear = item->unclear || o->verdict == DUKA_HUB_OUTBOX_UNCLEAR;
        next->next_attempt_ms = now_ms + backoff_with_jitter(next->attempts + 1);
        break;
    case DUKA_HUB_OUTBOX_RETRY:
        if (item->attempts >= item->max_attempts) {
            next->status = DUKA_HUB_OUTBOX_FAILED;
            return;
        }
        next->next_attempt_ms = now_ms + backoff_with_jitter(item->attempts);
        break;
    }
    if (o->not_before_ms > next->next_attempt_ms)
        next->next_attempt_ms = o->not_before_ms;
}

duka_rc duka_hub_outbox_enqueue(duka_hub_store *s, const char *business_id,
                                const duka_hub_outbox_new *jobs, int n, int64_t now_ms,
                                duka_err *err)
{
    if (n <= 0)
        return DUKA_OK;
    for (int i = 1; i < n; i++)
        if (strcmp(jobs[i].stream, jobs[0].stream) != 0)
            return duka_err_set(err, DUKA_INTERNAL, "outbox: one enqueue, one stream");
    return s->ops->outbox_enqueue(s, business_id, jobs, n, now_ms, err);
}

duka_rc duka_hub_outbox_claim_due(duka_hub_store *s, const char *destination,
                                  const char *owner, int max, int64_t lease_until_ms,
                                  int64_t now_ms, duka_hub_outbox_claim *out, duka_err *err)
{
    out->count = 0;
    if (max > DUKA_HUB_OUTBOX_CLAIM_MAX)
        max = DUKA_HUB_OUTBOX_CLAIM_MAX;
    if (max <= 0)
        return DUKA_OK;
    return s->ops->outbox_claim(s, destination, owner, max, lease_until_ms, now_ms, out, err);
}

duka_rc duka_hub_outbox_finish(duka_hub_store *s, const char *owner,
                               const duka_hub_outbox_item *items,
                               const duka_hub_outbox_outcome *outcomes, int n, int64_t now_ms,
                               int *lost, duka_err *err)
{
    if (lost)
        *lost = 0;
    if (n <= 0)
        return DUKA_OK;
    duka_hub_outbox_next *next = calloc((size_t)n, sizeof(*next));
    if (next == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory recording outbox outcomes");
    for (int i = 0; i < n; i++) {
        duka_hub_outbox_decide(&items[i], &outcomes[i], now_ms, &next[i]);
        const char *r = outcomes[i].result;
        if (r && strlen(r) > DUKA_HUB_OUTBOX_RESULT_MAX) {
            free(next);
            return duka_err_set(err, DUKA_LIMIT, "outbox item %lld: result of %zu bytes, at most %d",
                                (long long)items[i].id, strlen(r), DUKA_HUB_OUTBOX_RESULT_MAX);
        }
    }
    int lost_n = 0;
    duka_rc rc = s->ops->outbox_finish(s, owner, items, outcomes, next, n, now_ms, &lost_n, err);
    free(next);
    if (lost)
        *lost = lost_n;
    return rc;
}

duka_rc duka_hub_outbox_recover_own(duka_hub_store *s, const char *destination, int64_t now_ms,
                                    int64_t *recovered, duka_err *err)
{
    int64_t k = 0;
    duka_rc rc = s->ops->outbox_recover_own ? s->ops->outbox_recover_own(s, destination, now_ms,
                                                                          &k, err)
                                            : DUKA_OK;
    if (recovered)
        *recovered = k;
    return rc;
}

duka_rc duka_hub_outbox_wake(duka_hub_store *s, const char *destination, int64_t now_ms,
                             int64_t *woken, duka_err *err)
{
    int64_t k = 0;
    duka_rc rc = s->ops->outbox_wake(s, destination, now_ms, &k, err);
    if (woken)
        *woken = k;
    return rc;
}

duka_rc duka_hub_outbox_retry(duka_hub_store *s, const char *business_id, int64_t id,
                              int64_t now_ms, int *retried, duka_err *err)
{
    int k = 0;
    duka_rc rc = s->ops->outbox_retry(s, business_id, id, now_ms, &k, err);
    if (retried)
        *retried = k;
    return rc;
}

duka_rc duka_hub_outbox_cleanup(duka_hub_store *s, int64_t done_before_ms, int64_t *deleted,
                                duka_err *err)
{
    int64_t k = 0;
    duka_rc rc = s->ops->outbox_cleanup(s, done_before_ms, &k, err);
    if (deleted)
        *deleted = k;
    return rc;
}

duka_rc duka_hub_outbox_count(duka_hub_store *s, const char *business_id,
                              const char *destination, duka_hub_outbox_counts *out,
                              duka_err *err)
{
    memset(out, 0, sizeof(*out));
    return s->ops->outbox_count(s, business_id, destination, true, out, err);
}

duka_rc duka_hub_outbox_count_unsent(duka_hub_store *s, const char *business_id,
                                     const char *destination, duka_hub_outbox_counts *out,
                                     duka_err *err)
{
    memset(out, 0, sizeof(*out));
    return s->ops->outbox_count(s, business_id, destination, false, out, err);
}

duka_rc duka_hub_outbox_list(duka_hub_store *s, const char *business_id, const char *status,
                             int limit, json_t **out, duka_err *err)
{
    *out = NULL;
    if (status && duka_hub_outbox_status_parse(status) < 0)
        return duka_err_set(err, DUKA_INPUT,
                            "--status: '%s' is not pending, processing, awaiting, done or failed",
                            status);
    return s->ops->outbox_list(s, business_id, status, limit, out, err);
}

duka_rc duka_hub_outbox_results(duka_hub_store *s, const char *business_id,
                                const char *terminal, const char *destination, int64_t cursor,
                                int limit, json_t **out, duka_err *err)
{
    *out = NULL;
    return s->ops->outbox_results(s, business_id, terminal, destination, cursor, limit, out,
                                  err);
}

duka_rc duka_hub_sale_load(duka_hub_store *s, const char *business_id, const char *receipt_no,
                           duka_sale *out, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    return s->ops->sale_load(s, business_id, receipt_no, out, err);
}

duka_rc duka_hub_outbox_result_of(duka_hub_store *s, const char *business_id,
                               const char *destination, const char *entity_id,
                                  char *result, size_t result_len, bool *found,
                                  duka_err *err)
{
    *found = false;
    if (result_len > 0)
        result[0] = '\0';
    return s->ops->outbox_result_of(s, business_id, destination, entity_id, result, result_len,
                                    found, err);
}

duka_rc duka_hub_kv_get(duka_hub_store *s, const char *business_id, const char *key,
                        char *value, size_t value_len, bool *found, duka_err *err)
{
    *found = false;
    return s->ops->kv_get(s, business_id, key, value, value_len, found, err);
}

duka_rc duka_hub_kv_put(duka_hub_store *s, const char *business_id, const char *key,
                        const char *value, int64_t now_ms, duka_err *err)
{
    return s->ops->kv_put(s, business_id, key, value, now_ms, err);
}

duka_rc duka_hub_health_get(duka_hub_store *s, const char *service, duka_service_health *out,
                            bool *found, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    *found = false;
    return s->ops->health_get(s, service, out, found, err);
}

duka_rc duka_hub_health_put(duka_hub_store *s, const char *service,
                            const duka_service_health *h, duka_err *err)
{
    return s->ops->health_put(s, service, h, err);
}
