/* etims_sender.c — eTIMS on the hub's forwarder (see etims_sender.h). */
#include "tax/etims/etims_sender.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "hub/hub_store.h"
#include "outbox/outbox.h"
#include "tax/etims/etims_client.h"
#include "tax/etims/etims_forward.h"
#include "tax/etims/invoice.h"

#define DEVICE_KEY "etims.device." DUKA_ETIMS_BRANCH_DEFAULT

_Static_assert(3 * DUKA_ETIMS_TIMEOUT_MAX_MS + 30000 <= DUKA_HUB_OUTBOX_LEASE_MAX_MS,
               "an eTIMS lease (3 timeouts and a margin) fits the outbox's longest lease");
/* How long a business's KRA PIN is trusted before it is read again. */
#define BUSINESS_CACHE_MS 10000
/* A business with no KRA PIN (or no device yet, eTIMS unreachable) is looked at again after
 * this long; no attempt is used. */
#define WAIT_MS 10000
/* After a failed device registration, the business's items wait this long before the next
 * try (one try, not one per item claimed meanwhile). */
#define INIT_RETRY_MS 5000

typedef struct business_entry {
    char id[DUKA_BUSINESS_ID_LEN + 1];
    char kra_pin[DUKA_KRA_PIN_LEN + 1];
    char name[DUKA_BUSINESS_NAME_MAX + 1];
    int64_t read_ms;
    bool has_device;
    duka_etims_device device;
    int64_t init_retry_ms;                 /* no new registration attempt before this */
    char init_error[DUKA_ERR_MSG_MAX];     /* why the last one failed */
} business_entry;

struct duka_etims_sender {
    duka_etims_conf conf;
    atomic_bool stopping; /* conf.cancel: requests in flight are abandoned (unclear) */
    char qr_base[DUKA_SETTING_TEXT_MAX + 1];
    const duka_clock *clock;
    /* The forwarder thread's (prepare runs there only): the cache, and a sale to load. */
    duka_sale *sale;
    business_entry *biz;
    size_t biz_n, biz_cap;
};

static business_entry *biz_find(duka_etims_sender *s, const char *id)
{
    for (size_t i = 0; i < s->biz_n; i++)
        if (strcmp(s->biz[i].id, id) == 0)
            return &s->biz[i];
    return NULL;
}

/* The business's KRA PIN as the store holds it now (read again after BUSINESS_CACHE_MS). */
static business_entry *biz_get(duka_etims_sender *s, duka_hub_store *store, const char *id,
                               int64_t now, duka_err *err)
{
    business_entry *e = biz_find(s, id);
    if (e != NULL && now - e->read_ms < BUSINESS_CACHE_MS)
        return e;
    json_t *list = NULL;
    if (duka_hub_business_list(store, false, &list, err) != DUKA_OK)
        return NULL;
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(list, "businesses"), i, b)
    {
        const char *bid = json_string_value(json_object_get(b, "business_id"));
        const char *pin = json_string_value(json_object_get(b, "kra_pin"));
        if (bid == NULL || strlen(bid) > DUKA_BUSINESS_ID_LEN)
            continue;
        business_entry *x = biz_find(s, bid);
        if (x == NULL) {
            if (s->biz_n == s->biz_cap) {
                size_t cap = s->biz_cap ? 2 * s->biz_cap : 16;
                business_entry *grown = realloc(s->biz, cap * sizeof(*grown));
                if (grown == NULL)
                    break;
                s->biz = grown;
                s->biz_cap = cap;
            }
            x = &s->biz[s->biz_n++];
            memset(x, 0, sizeof(*x));
            snprintf(x->id, sizeof(x->id), "%s", bid);
        }
        if (strcmp(x->kra_pin, pin ? pin : "") != 0)
            x->has_device = false; /* another taxpayer: another registration */
        snprintf(x->kra_pin, sizeof(x->kra_pin), "%s", pin ? pin : "");
        const char *name = json_string_value(json_object_get(b, "name"));
        snprintf(x->name, sizeof(x->name), "%s", name ? name : "");
        x->read_ms = now;
    }
    json_decref(list);
    e = biz_find(s, id);
    if (e == NULL)
        duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found", id);
    return e;
}

static json_t *device_json(const duka_etims_device *d)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "tin", d->tin, "bhf_id", d->bhf_id,
                     "dvc_srl_no", d->dvc_srl_no, "sdc_id", d->sdc_id, "mrc_no", d->mrc_no,
                     "cmc_key", d->cmc_key);
}

static bool device_from_json(const char *text, duka_etims_device *d)
{
    json_t *o = json_loads(text, 0, NULL);
    struct {
        const char *key;
        char *out;
        size_t len;
    } f[] = {{"tin", d->tin, sizeof(d->tin)},
             {"bhf_id", d->bhf_id, sizeof(d->bhf_id)},
             {"dvc_srl_no", d->dvc_srl_no, sizeof(d->dvc_srl_no)},
             {"sdc_id", d->sdc_id, sizeof(d->sdc_id)},
             {"mrc_no", d->mrc_no, sizeof(d->mrc_no)},
             {"cmc_key", d->cmc_key, sizeof(d->cmc_key)}};
    bool ok = json_is_object(o);
    for (size_t i = 0; ok && i < sizeof(f) / sizeof(f[0]); i++) {
        const char *v = json_string_value(json_object_get(o, f[i].key));
        ok = v != NULL && strlen(v) < f[i].len;
        if (ok)
            snprintf(f[i].out, f[i].len, "%s", v);
    }
    json_decref(o);
    return ok;
}

static void wait_outcome(duka_etims_sender *s, duka_hub_outbox_outcome *out,
                         const char *category)
{
    out->verdict = DUKA_HUB_OUTBOX_DEFER;
    out->error_category = category;
    out->not_before_ms = duka_clock_now_ms(s->clock) + WAIT_MS;
}

/* The business's registration: cached, else stored, else made now (selectInitOsdcInfo). */
static bool ensure_device(duka_etims_sender *s, duka_hub_store *store, business_entry *e,
                          duka_hub_outbox_outcome *out, char *errbuf, size_t errlen)
{
    if (e->has_device && strcmp(e->device.tin, e->kra_pin) == 0)
        return true;
    duka_err err = {0};
    char text[1024];
    bool found = false;
    if (duka_hub_kv_get(store, e->id, DEVICE_KEY, text, sizeof(text), &found, &err) != DUKA_OK) {
        snprintf(errbuf, errlen, "reading the eTIMS device: %s", err.msg);
        wait_outcome(s, out, DUKA_OUTBOX_ERR_SERVER);
        return false;
    }
    if (found && device_from_json(text, &e->device) && strcmp(e->device.tin, e->kra_pin) == 0) {
        e->has_device = true;
        return true;
    }
    int64_t now = duka_clock_now_ms(s->clock);
    if (now < e->init_retry_ms) {
        snprintf(errbuf, errlen, "%s", e->init_error);
        wait_outcome(s, out, DUKA_OUTBOX_ERR_NETWORK);
        out->not_before_ms = e->init_retry_ms;
        return false;
    }
    char serial[64];
    snprintf(serial, sizeof(serial), "DUKA-%.16s-%s", e->id, DUKA_ETIMS_BRANCH_DEFAULT);
    duka_etims_device d;
    duka_etims_answer a;
    memset(&d, 0, sizeof(d));
    memset(&a, 0, sizeof(a));
    if (duka_etims_init_device(&s->conf, e->kra_pin, DUKA_ETIMS_BRANCH_DEFAULT, serial, &d, &a,
                               &err) != DUKA_OK ||
        a.verdict != DUKA_ETIMS_OK) {
        snprintf(errbuf, errlen, "eTIMS device initialisation for %s: %s", e->kra_pin,
                 err.msg[0] ? err.msg : a.message);
        snprintf(e->init_error, sizeof(e->init_error), "%s", errbuf);
        e->init_retry_ms = now + INIT_RETRY_MS;
        if (a.verdict == DUKA_ETIMS_REFUSED) {
            out->verdict = DUKA_HUB_OUTBOX_REFUSED;
            out->error_category = DUKA_OUTBOX_ERR_VALIDATION;
        } else {
            wait_outcome(s, out, DUKA_OUTBOX_ERR_NETWORK);
            out->not_before_ms = e->init_retry_ms;
        }
        return false;
    }
    json_t *j = device_json(&d);
    char *dump = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    duka_rc rc = dump ? duka_hub_kv_put(store, e->id, DEVICE_KEY, dump,
                                        duka_clock_now_ms(s->clock), &err)
                      : duka_err_set(&err, DUKA_NOMEM, "out of memory");
    free(dump);
    if (rc != DUKA_OK) {
        snprintf(errbuf, errlen, "keeping the eTIMS device: %s", err.msg);
        wait_outcome(s, out, DUKA_OUTBOX_ERR_SERVER);
        return false;
    }
    duka_log(DUKA_LOG_INFO, "etims", "business %s: device %s initialised (SCU %s)", e->id,
             serial, d.sdc_id);
    e->device = d;
    e->has_device = true;
    return true;
}

/* What prepare hands to send, in one allocation (freed with free()). */
typedef struct prepared_send {
    duka_etims_device device;
    int64_t org_invc_no; /* a credit note's original invoice number; 0 for a sale */
    char body[];         /* the saveTrnsSalesOsdc body without invcNo */
} prepared_send;

/* How long a credit note waits before looking again for its original's signature. */
#define ORIGINAL_WAIT_MS 2000

/* A credit note's orgInvcNo: the invcNo of its sale's accepted invoice (the hub's result for
 * it). eTIMS takes a credit note only for an invoice it already has, so until the sale's
 * invoice is signed the credit note waits (no attempt used). false with out and errbuf set
 * then, or when the store failed. */
static bool original_invoice(duka_etims_sender *s, duka_hub_store *store,
                             const duka_hub_outbox_item *item, const duka_sale *refund,
                             int64_t *org_invc_no, duka_hub_outbox_outcome *out, char *errbuf,
                             size_t errlen)
{
    duka_err err = {0};
    char text[DUKA_HUB_OUTBOX_RESULT_MAX + 1];
    bool found = false;
    if (duka_hub_outbox_result_of(store, item->business_id, DUKA_DEST_ETIMS,
                                  refund->original_receipt_no, text, sizeof(text), &found,
                                  &err) != DUKA_OK) {
        snprintf(errbuf, errlen, "reading the invoice of %s: %s", refund->original_receipt_no,
                 err.msg);
        wait_outcome(s, out, DUKA_OUTBOX_ERR_SERVER);
        return false;
    }
    json_t *j = found ? json_loads(text, 0, NULL) : NULL;
    json_int_t no = json_integer_value(json_object_get(j, "invc_no"));
    bool sale = json_is_string(json_object_get(j, "kind")) &&
                strcmp(json_string_value(json_object_get(j, "kind")), "sale") == 0;
    json_decref(j);
    if (!found || !sale || no < 1) {
        snprintf(errbuf, errlen,
                 "credit note of %s waits for the invoice of sale %s to be accepted by eTIMS",
                 item->entity_id, refund->original_receipt_no);
        out->verdict = DUKA_HUB_OUTBOX_DEFER;
        out->error_category = DUKA_OUTBOX_ERR_VALIDATION;
        out->not_before_ms = duka_clock_now_ms(s->clock) + ORIGINAL_WAIT_MS;
        return false;
    }
    *org_invc_no = no;
    return true;
}

static bool sender_prepare(void *ctx, duka_hub_store *store, const duka_hub_outbox_item *item,
                           void **prepared, duka_hub_outbox_outcome *out, char *errbuf,
                           size_t errlen)
{
    duka_etims_sender *s = ctx;
    duka_err err = {0};
    business_entry *e = biz_get(s, store, item->business_id, duka_clock_now_ms(s->clock), &err);
    if (e == NULL) {
        snprintf(errbuf, errlen, "%s", err.msg);
        wait_outcome(s, out, DUKA_OUTBOX_ERR_SERVER);
        return false;
    }
    if (e->kra_pin[0] == '\0') {
        snprintf(errbuf, errlen,
                 "the business has no KRA PIN: set it (duka business set --kra-pin); the "
                 "invoice waits");
        wait_outcome(s, out, DUKA_OUTBOX_ERR_VALIDATION);
        return false;
    }
    if (!ensure_device(s, store, e, out, errbuf, errlen))
        return false;
    /* The invoice body, from the sale as the hub stored it (a job enqueued with its body, by
     * a hub before this one, brings its own). */
    const char *body = item->payload;
    char *built = NULL;
    int64_t org_invc_no = item->ref_no;
    bool credit = strcmp(item->command_type, "etims.credit_note") == 0;
    if (body[0] == '\0') {
        duka_rc rc = duka_hub_sale_load(store, item->business_id, item->entity_id, s->sale, &err);
        if (rc == DUKA_OK && credit &&
            !original_invoice(s, store, item, s->sale, &org_invc_no, out, errbuf, errlen))
            return false;
        json_t *j = rc == DUKA_OK ? duka_etims_invoice_body(s->sale, credit ? 'R' : 'S',
                                                            credit ? s->sale->reason : NULL,
                                                            e->name)
                                  : NULL;
        built = j ? json_dumps(j, DUKA_ETIMS_JSON_FLAGS) : NULL;
        json_decref(j);
        if (built == NULL) {
            snprintf(errbuf, errlen, "building the invoice of %s: %s", item->entity_id,
                     rc != DUKA_OK ? err.msg : "out of memory");
            wait_outcome(s, out, DUKA_OUTBOX_ERR_SERVER);
            return false;
        }
        body = built;
    }
    size_t len = strlen(body);
    prepared_send *p = malloc(sizeof(*p) + len + 1);
    if (p == NULL) {
        free(built);
        snprintf(errbuf, errlen, "out of memory");
        wait_outcome(s, out, DUKA_OUTBOX_ERR_SERVER);
        return false;
    }
    p->device = e->device;
    p->org_invc_no = org_invc_no;
    memcpy(p->body, body, len + 1);
    free(built);
    *prepared = p;
    return true;
}

/* The signature as the till pulls it (docs/PROTOCOL.md). */
static char *result_json(const duka_etims_sender *s, const duka_hub_outbox_item *item,
                         const duka_etims_device *d, const duka_etims_answer *a)
{
    char cu[96], qr[DUKA_SETTING_TEXT_MAX + 128];
    snprintf(cu, sizeof(cu), "%s/%lld", d->sdc_id, (long long)item->seq_no);
    snprintf(qr, sizeof(qr), "%s?Data=%s%s%s", s->qr_base, d->tin, d->bhf_id, a->rcpt_sign);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "receipt_no",
        item->entity_id, "kind",
        strcmp(item->command_type, "etims.credit_note") == 0 ? "credit_note" : "sale",
        "cu_invoice_no", cu, "sdc_id", d->sdc_id, "invc_no", (json_int_t)item->seq_no, "rcpt_no",
        (json_int_t)a->cur_rcpt_no, "tot_rcpt_no", (json_int_t)a->tot_rcpt_no, "intrl_data",
        a->intrl_data, "rcpt_sign", a->rcpt_sign, "signed_at", a->sdc_datetime, "mrc_no",
        d->mrc_no, "qr_url", qr);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static void sender_send(void *ctx, const duka_hub_outbox_item *item, void *prepared,
                        duka_hub_outbox_outcome *out, char **result, char *errbuf,
                        size_t errlen)
{
    duka_etims_sender *s = ctx;
    const prepared_send *p = prepared;
    const duka_etims_device *d = &p->device;
    duka_etims_job job = {.invc_no = item->seq_no,
                          .org_invc_no = p->org_invc_no,
                          .body_json = p->body,
                          .unclear = item->unclear};
    duka_etims_decision dec;
    memset(&dec, 0, sizeof(dec));
    duka_err err = {0};
    if (duka_etims_forward(&s->conf, d, &job, &dec, &err) != DUKA_OK) {
        snprintf(errbuf, errlen, "%s", err.msg);
        out->verdict = DUKA_HUB_OUTBOX_UNCLEAR; /* we cannot tell what was sent */
        out->error_category = DUKA_OUTBOX_ERR_SERVER;
        return;
    }
    out->http_status = dec.answer.http_status;
    if (dec.answer.retry_after_s > 0)
        out->not_before_ms = duka_clock_now_ms(s->clock) + dec.answer.retry_after_s * 1000LL;
    out->error_category = dec.error_category;
    snprintf(errbuf, errlen, "%s", dec.answer.message);
    switch (dec.kind) {
    case DUKA_FWD_DONE:
        out->verdict = DUKA_HUB_OUTBOX_SENT;
        out->error_category = NULL;
        errbuf[0] = '\0';
        *result = result_json(s, item, d, &dec.answer);
        break;
    case DUKA_FWD_RETRY:
        /* 502/503/504: the service is down, not our invoice wrong: no attempt used. 921/922:
         * out of sequence (invoices sent at once arrive in any order) or the original not
         * there yet: it will be right later, so no attempt either. */
        if (dec.answer.http_status >= 502 && dec.answer.http_status <= 504)
            out->verdict = DUKA_HUB_OUTBOX_DEFER;
        else if (strcmp(dec.answer.result_cd, "921") == 0 ||
                 strcmp(dec.answer.result_cd, "922") == 0)
            out->verdict = DUKA_HUB_OUTBOX_WAIT;
        else
            out->verdict = DUKA_HUB_OUTBOX_RETRY;
        break;
    case DUKA_FWD_UNCLEAR: out->verdict = DUKA_HUB_OUTBOX_UNCLEAR; break;
    case DUKA_FWD_FAILED: out->verdict = DUKA_HUB_OUTBOX_REFUSED; break;
    case DUKA_FWD_OFFLINE: out->verdict = DUKA_HUB_OUTBOX_DEFER; break;
    }
    if (out->error_category == NULL && out->verdict != DUKA_HUB_OUTBOX_SENT)
        out->error_category = out->verdict == DUKA_HUB_OUTBOX_DEFER ? DUKA_OUTBOX_ERR_NETWORK
                                                                    : DUKA_OUTBOX_ERR_SERVER;
}

duka_rc duka_etims_sender_new(const duka_config *cfg, const duka_clock *clock,
                              duka_etims_sender **out, duka_forwarder_service *svc,
                              duka_err *err)
{
    *out = NULL;
    const char *base = duka_config_text(cfg, DUKA_SETTING_ETIMS_BASE_URL);
    if (base[0] == '\0')
        return DUKA_OK;
    duka_etims_sender *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting eTIMS");
    snprintf(s->conf.base_url, sizeof(s->conf.base_url), "%s", base);
    size_t len = strlen(s->conf.base_url);
    while (len > 0 && s->conf.base_url[len - 1] == '/')
        s->conf.base_url[--len] = '\0';
    s->conf.timeout_ms = (long)duka_config_get(cfg, DUKA_SETTING_ETIMS_TIMEOUT);
    atomic_init(&s->stopping, false);
    s->conf.cancel = &s->stopping;
    snprintf(s->qr_base, sizeof(s->qr_base), "%s",
             duka_config_text(cfg, DUKA_SETTING_ETIMS_QR_BASE));
    s->clock = clock;
    s->sale = duka_sale_new();
    if (s->sale == NULL) {
        free(s);
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting eTIMS");
    }
    memset(svc, 0, sizeof(*svc));
    svc->destination = DUKA_DEST_ETIMS;
    svc->in_flight = (int)duka_config_get(cfg, DUKA_SETTING_ETIMS_IN_FLIGHT);
    /* An attempt is at most a select and a save (and a select after 994): three timeouts,
     * and a margin, before another hub may take the item. */
    svc->lease_ms = 3 * s->conf.timeout_ms + 30000;
    svc->retention_ms = duka_config_get(cfg, DUKA_SETTING_QUEUE_RETENTION);
    svc->max_unsent_ms = duka_config_get(cfg, DUKA_SETTING_ETIMS_MAX_UNSENT);
    svc->prepare = sender_prepare;
    svc->send = sender_send;
    svc->ctx = s;
    *out = s;
    return DUKA_OK;
}

void duka_etims_sender_set_transport(duka_etims_sender *s, duka_http_transport transport,
                                     void *ctx)
{
    s->conf.transport = transport;
    s->conf.transport_ctx = ctx;
}

void duka_etims_sender_cancel(duka_etims_sender *s)
{
    if (s != NULL)
        atomic_store(&s->stopping, true);
}

void duka_etims_sender_free(duka_etims_sender *s)
{
    if (s == NULL)
        return;
    free(s->biz);
    duka_sale_free(s->sale);
    free(s);
}
