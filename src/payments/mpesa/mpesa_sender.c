/* mpesa_sender.c — M-Pesa on the hub's forwarder (see mpesa_sender.h). */
#include "payments/mpesa/mpesa_sender.h"

#include <ctype.h>
#include <stdarg.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "hub/hub_store.h"
#include "hub/mpesa_receipts.h"
#include "outbox/hub_outbox.h"
#include "outbox/outbox.h"
#include "payments/mpesa/daraja_client.h"
#include "protocol/sale.h"

#define KV_ASKED_PREFIX "mpesa.asked."
#define REASON_MAX 200
#define PATH_KINDS 5

/* What the forwarder's thread decided for one item, for the worker that sends. */
typedef enum { PREP_DECIDED, PREP_QUERY, PREP_REGISTER } prep_kind;

typedef struct prepared_send {
    prep_kind kind;
    char *result;                                    /* DECIDED: the till's result */
    char shortcode[8];
    char sale[DUKA_RECEIPT_NO_MAX + 1];
    int codes;                                       /* QUERY: the codes to ask about */
    char code[DUKA_SALE_PAYMENTS_MAX][DUKA_MPESA_RECEIPT_LEN + 1];
    char url_a[DUKA_URL_MAX + 1], url_b[DUKA_URL_MAX + 1]; /* result/timeout, confirm/validate */
} prepared_send;

struct duka_mpesa_sender {
    duka_daraja_conf conf;
    duka_daraja_client *client;
    atomic_bool stopping;
    char callback_base[DUKA_URL_MAX + 1];
    int64_t verify_window_ms, match_window_ms, status_wait_ms;
    const duka_clock *clock;
    duka_sale *sale; /* the forwarder thread's */
};

static int64_t now_of(const duka_mpesa_sender *s)
{
    return duka_clock_now_ms(s->clock);
}

/* ------------------------------------------------------------------------------------------
 * the business's shortcode and callback URLs
 * ---------------------------------------------------------------------------------------- */

duka_rc duka_mpesa_callback_secret(duka_hub_store *store, const char *business_id,
                                   int64_t now_ms, char out[DUKA_MPESA_SECRET_HEX + 1],
                                   duka_err *err)
{
    bool found = false;
    duka_rc rc = duka_hub_kv_get(store, business_id, DUKA_MPESA_KV_SECRET, out,
                                 DUKA_MPESA_SECRET_HEX + 1, &found, err);
    if (rc != DUKA_OK || (found && strlen(out) == DUKA_MPESA_SECRET_HEX))
        return rc;
    unsigned char raw[DUKA_MPESA_SECRET_HEX / 2];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(out, DUKA_MPESA_SECRET_HEX + 1, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    return duka_hub_kv_put(store, business_id, DUKA_MPESA_KV_SECRET, out, now_ms, err);
}

/* <base>/v1/mpesa/<business>.<secret>/<kind>; false when it does not fit. */
static bool callback_url(const duka_mpesa_sender *s, const char *business_id,
                         const char *secret, const char *kind, char out[DUKA_URL_MAX + 1])
{
    int n = snprintf(out, DUKA_URL_MAX + 1, "%s/v1/mpesa/%s.%s/%s", s->callback_base,
                     business_id, secret, kind);
    return n > 0 && n <= DUKA_URL_MAX;
}

static bool shortcode_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 5 || n > 7)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

duka_rc duka_mpesa_set_shortcode(duka_hub_store *store, const char *business_id,
                                 const char *shortcode, int64_t now_ms, duka_err *err)
{
    if (!shortcode_valid(shortcode))
        return duka_err_set(err, DUKA_INPUT,
                            "--mpesa-shortcode '%.20s' is not an M-Pesa shortcode (5 to 7 digits)",
                            shortcode);
    char stream[DUKA_HUB_OUTBOX_STREAM_MAX + 1];
    snprintf(stream, sizeof(stream), "mpesa.register:%s", business_id);
    const duka_queue_type *q = duka_outbox_queue_type("payment");
    duka_hub_outbox_new job = {
        .destination = DUKA_DEST_MPESA,
        .stream = stream,
        .command_type = "mpesa.register",
        .entity_id = shortcode,
        .terminal = "",
        .payload = "",
        .priority = q ? q->priority : DUKA_PRIORITY_PAYMENT,
        .max_attempts = q ? q->max_attempts : DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT,
    };
    duka_rc rc = duka_hub_business_check(store, business_id, err);
    if (rc == DUKA_OK)
        rc = duka_hub_store_begin(store, err);
    if (rc != DUKA_OK)
        return rc;
    rc = duka_hub_kv_put(store, business_id, DUKA_MPESA_KV_SHORTCODE, shortcode, now_ms, err);
    if (rc == DUKA_OK)
        rc = duka_hub_outbox_enqueue(store, business_id, &job, 1, now_ms, err);
    if (rc == DUKA_OK)
        rc = duka_hub_store_commit(store, err);
    if (rc != DUKA_OK)
        duka_hub_store_rollback(store);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * deciding a typed code (the forwarder's thread, with the store)
 * ---------------------------------------------------------------------------------------- */

typedef enum { CODE_VERIFIED, CODE_FLAGGED, CODE_QUERY, CODE_WAIT } code_state;

typedef struct code_decision {
    code_state state;
    char code[DUKA_PAYMENT_REF_MAX + 1]; /* as typed, upper-cased */
    char reason[REASON_MAX];
    int64_t paid_ms;
    int64_t wait_until_ms; /* CODE_WAIT */
    char source[12];
} code_decision;

/* How long after its n-th status query a code is asked about again. */
static int64_t status_wait(const duka_mpesa_sender *s, int64_t n)
{
    int64_t w = s->status_wait_ms;
    for (int64_t i = 1; i < n && w < DUKA_MPESA_STATUS_WAIT_MAX_MS; i++)
        w *= 2;
    return w < DUKA_MPESA_STATUS_WAIT_MAX_MS ? w : DUKA_MPESA_STATUS_WAIT_MAX_MS;
}

/* The status queries made for code so far and when the last went; 0, 0 when none. */
static duka_rc asked_get(duka_hub_store *store, const char *business_id, const char *code,
                         int64_t *n, int64_t *last_ms, duka_err *err)
{
    char key[64], value[64];
    snprintf(key, sizeof(key), KV_ASKED_PREFIX "%s", code);
    bool found = false;
    *n = *last_ms = 0;
    duka_rc rc = duka_hub_kv_get(store, business_id, key, value, sizeof(value), &found, err);
    long long a = 0, b = 0;
    if (rc == DUKA_OK && found && sscanf(value, "%lld %lld", &a, &b) == 2) {
        *n = a;
        *last_ms = b;
    }
    return rc;
}

static duka_rc asked_put(duka_hub_store *store, const char *business_id, const char *code,
                         int64_t n, int64_t now_ms, duka_err *err)
{
    char key[64], value[64];
    snprintf(key, sizeof(key), KV_ASKED_PREFIX "%s", code);
    snprintf(value, sizeof(value), "%" PRId64 " %" PRId64, n, now_ms);
    return duka_hub_kv_put(store, business_id, key, value, now_ms, err);
}

static void flag(code_decision *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flag(code_decision *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
    d->state = CODE_FLAGGED;
}

/* A duration as a person says it: "45 s", "30 min", "24 h", "3 days". */
static void duration_text(int64_t ms, char *out, size_t n)
{
    int64_t s = ms / 1000;
    if (s < 120)
        snprintf(out, n, "%" PRId64 " s", s);
    else if (s < 2 * 3600)
        snprintf(out, n, "%" PRId64 " min", s / 60);
    else if (s < 3 * 86400)
        snprintf(out, n, "%" PRId64 " h", s / 3600);
    else
        snprintf(out, n, "%" PRId64 " days", s / 86400);
}

static void kes(int64_t cents, char *out, size_t n)
{
    snprintf(out, n, "%" PRId64 ".%02d", cents / 100, (int)(cents % 100));
}

/* Decides one payment of the sale (see mpesa_sender.h). */
static duka_rc decide_code(duka_mpesa_sender *s, duka_hub_store *store, const char *business_id,
                           const duka_sale *sale, const duka_payment *p, const char *shortcode,
                           int64_t now, code_decision *d, duka_err *err)
{
    memset(d, 0, sizeof(*d));
    size_t n = strlen(p->reference);
    for (size_t i = 0; i < n && i < DUKA_PAYMENT_REF_MAX; i++)
        d->code[i] = (char)toupper((unsigned char)p->reference[i]);
    if (!duka_mpesa_receipt_valid(d->code)) {
        flag(d, "'%s' is not an M-Pesa code (10 letters and digits)", d->code);
        return DUKA_OK;
    }
    duka_mpesa_receipt r;
    bool found = false;
    duka_rc rc = duka_hub_mpesa_receipt_get(store, business_id, d->code, &r, &found, err);
    if (rc != DUKA_OK)
        return rc;
    char want[32], got[32];
    if (found) {
        d->paid_ms = r.p.paid_ms;
        snprintf(d->source, sizeof(d->source), "%s", r.source);
        int64_t apart = r.p.paid_ms - sale->created_ms;
        if (apart < 0)
            apart = -apart;
        kes(p->amount_cents, want, sizeof(want));
        kes(r.p.amount_cents, got, sizeof(got));
        if (r.p.amount_cents != p->amount_cents) {
            flag(d, "M-Pesa reports KES %s paid with %s; the sale's payment is KES %s", got,
                 d->code, want);
        } else if (r.p.shortcode[0] != '\0' && strcmp(r.p.shortcode, shortcode) != 0) {
            flag(d, "%s was paid to shortcode %s, not the shop's %s", d->code, r.p.shortcode,
                 shortcode);
        } else if (r.p.paid_ms > 0 && apart > s->match_window_ms) {
            char gap[32];
            duration_text(apart, gap, sizeof(gap));
            flag(d, "%s was paid %s %s the sale (more than MPESA_MATCH_WINDOW)", d->code, gap,
                 r.p.paid_ms < sale->created_ms ? "before" : "after");
        } else {
            char holder[DUKA_RECEIPT_NO_MAX + 1];
            rc = duka_hub_mpesa_receipt_credit(store, business_id, d->code, sale->receipt_no,
                                               now, holder, err);
            if (rc != DUKA_OK)
                return rc;
            if (strcmp(holder, sale->receipt_no) != 0)
                flag(d, "%s was already used for sale %s", d->code, holder);
            else
                d->state = CODE_VERIFIED;
        }
        return DUKA_OK;
    }
    if (now - sale->created_ms > s->verify_window_ms) {
        char window[32];
        duration_text(s->verify_window_ms, window, sizeof(window));
        flag(d, "%s was not confirmed by M-Pesa within %s of the sale (MPESA_VERIFY_WINDOW)",
             d->code, window);
        return DUKA_OK;
    }
    int64_t asked = 0, last = 0;
    rc = asked_get(store, business_id, d->code, &asked, &last, err);
    if (rc != DUKA_OK)
        return rc;
    if (asked > 0 && now < last + status_wait(s, asked)) {
        d->state = CODE_WAIT;
        d->wait_until_ms = last + status_wait(s, asked);
    } else {
        d->state = CODE_QUERY;
    }
    return DUKA_OK;
}

static const char *state_name(code_state st)
{
    return st == CODE_VERIFIED ? "verified" : "flagged";
}

/* The result the till pulls: {"receipt_no", "payments": [{"code", "status", "reason",
 * "paid_ms", "source"}]} (docs/PROTOCOL.md, "mpesa"). */
static char *result_json(const char *receipt_no, const code_decision *d, int n)
{
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "code", d[i].code, "status",
                              state_name(d[i].state), "reason", d[i].reason, "paid_ms",
                              (json_int_t)d[i].paid_ms, "source", d[i].source);
        if (o == NULL || json_array_append_new(list, o) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    json_t *r = list ? json_pack("{s:s, s:o}", "receipt_no", receipt_no, "payments", list) : NULL;
    char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    if (text != NULL && strlen(text) > DUKA_HUB_OUTBOX_RESULT_MAX) {
        free(text);
        return NULL;
    }
    return text;
}

static bool not_ready(duka_hub_outbox_outcome *out, duka_hub_outbox_verdict v,
                      int64_t not_before_ms, const char *category, char *errbuf, size_t errlen,
                      const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static bool not_ready(duka_hub_outbox_outcome *out, duka_hub_outbox_verdict v,
                      int64_t not_before_ms, const char *category, char *errbuf, size_t errlen,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    out->verdict = v;
    out->not_before_ms = not_before_ms;
    out->error_category = category;
    return false;
}

/* mpesa.verify: every typed code of the sale decided, or the ones to ask Daraja about. */
static bool prepare_verify(duka_mpesa_sender *s, duka_hub_store *store,
                           const duka_hub_outbox_item *item, prepared_send *ps,
                           duka_hub_outbox_outcome *out, char *errbuf, size_t errlen)
{
    int64_t now = now_of(s);
    duka_err err = {0};
    bool found = false;
    if (duka_hub_kv_get(store, item->business_id, DUKA_MPESA_KV_SHORTCODE, ps->shortcode,
                        sizeof(ps->shortcode), &found, &err) != DUKA_OK)
        return not_ready(out, DUKA_HUB_OUTBOX_DEFER, 0, DUKA_OUTBOX_ERR_SERVER, errbuf, errlen,
                         "%s", err.msg);
    if (!found)
        return not_ready(out, DUKA_HUB_OUTBOX_WAIT, now + DUKA_MPESA_NO_SHORTCODE_WAIT_MS,
                         DUKA_OUTBOX_ERR_VALIDATION, errbuf, errlen,
                         "the business has no M-Pesa shortcode yet (duka business set "
                         "--mpesa-shortcode)");
    duka_rc rc = duka_hub_sale_load(store, item->business_id, item->entity_id, s->sale, &err);
    if (rc != DUKA_OK)
        return not_ready(out, rc == DUKA_NOTFOUND ? DUKA_HUB_OUTBOX_REFUSED : DUKA_HUB_OUTBOX_DEFER,
                         0, DUKA_OUTBOX_ERR_SERVER, errbuf, errlen, "%s", err.msg);
    code_decision d[DUKA_SALE_PAYMENTS_MAX];
    int n = 0, waiting = 0;
    int64_t wake = 0;
    ps->codes = 0;
    for (int i = 0; i < s->sale->payment_count; i++) {
        const duka_payment *p = &s->sale->payments[i];
        if (strcmp(p->method, "mpesa") != 0 || strcmp(p->status, "pending_verification") != 0)
            continue;
        code_decision *x = &d[n++];
        rc = decide_code(s, store, item->business_id, s->sale, p, ps->shortcode, now, x, &err);
        if (rc != DUKA_OK)
            return not_ready(out, DUKA_HUB_OUTBOX_DEFER, 0, DUKA_OUTBOX_ERR_SERVER, errbuf,
                             errlen, "%s", err.msg);
        /* One code twice in one sale pays once: the second is flagged. */
        for (int k = 0; k < n - 1; k++)
            if (strcmp(d[k].code, x->code) == 0 && x->state != CODE_FLAGGED)
                flag(x, "%s is given twice in this sale", x->code);
        if (x->state == CODE_QUERY) {
            bool listed = false;
            for (int k = 0; k < ps->codes; k++)
                listed = listed || strcmp(ps->code[k], x->code) == 0;
            if (!listed)
                snprintf(ps->code[ps->codes++], sizeof(ps->code[0]), "%s", x->code);
        } else if (x->state == CODE_WAIT) {
            waiting++;
            wake = wake == 0 || x->wait_until_ms < wake ? x->wait_until_ms : wake;
        }
    }
    snprintf(ps->sale, sizeof(ps->sale), "%s", item->entity_id);
    if (ps->codes > 0) {
        /* Counted before the query is sent: a crash after sending waits as if answered. */
        char secret[DUKA_MPESA_SECRET_HEX + 1];
        if (duka_mpesa_callback_secret(store, item->business_id, now, secret, &err) != DUKA_OK)
            return not_ready(out, DUKA_HUB_OUTBOX_DEFER, 0, DUKA_OUTBOX_ERR_SERVER, errbuf,
                             errlen, "%s", err.msg);
        for (int k = 0; k < ps->codes; k++) {
            int64_t asked = 0, last = 0;
            if (asked_get(store, item->business_id, ps->code[k], &asked, &last, &err) != DUKA_OK ||
                asked_put(store, item->business_id, ps->code[k], asked + 1, now, &err) != DUKA_OK)
                return not_ready(out, DUKA_HUB_OUTBOX_DEFER, 0, DUKA_OUTBOX_ERR_SERVER, errbuf,
                                 errlen, "%s", err.msg);
        }
        if (!callback_url(s, item->business_id, secret, "status-result", ps->url_a) ||
            !callback_url(s, item->business_id, secret, "status-timeout", ps->url_b))
            return not_ready(out, DUKA_HUB_OUTBOX_REFUSED, 0, DUKA_OUTBOX_ERR_VALIDATION, errbuf,
                             errlen, "MPESA_CALLBACK_BASE_URL is too long for a callback URL");
        ps->kind = PREP_QUERY;
        return true;
    }
    if (waiting > 0)
        return not_ready(out, DUKA_HUB_OUTBOX_WAIT, wake, DUKA_OUTBOX_ERR_SERVER, errbuf, errlen,
                         "waiting for M-Pesa's transaction status result");
    /* Every code decided: each decision audited, then the result for the till. */
    for (int i = 0; i < n; i++) {
        char detail[DUKA_ERR_MSG_MAX];
        snprintf(detail, sizeof(detail), "sale %s: %s %s%s%s", item->entity_id, d[i].code,
                 state_name(d[i].state), d[i].reason[0] ? ": " : "", d[i].reason);
        if (duka_hub_audit(store, item->business_id, 0,
                           d[i].state == CODE_VERIFIED ? "mpesa_verified" : "mpesa_flagged", detail,
                           now, &err) != DUKA_OK)
            return not_ready(out, DUKA_HUB_OUTBOX_DEFER, 0, DUKA_OUTBOX_ERR_SERVER, errbuf,
                             errlen, "%s", err.msg);
        duka_log(d[i].state == CODE_VERIFIED ? DUKA_LOG_INFO : DUKA_LOG_WARN, "mpesa",
                 "business=%s %s", item->business_id, detail);
    }
    ps->result = result_json(item->entity_id, d, n);
    if (ps->result == NULL)
        return not_ready(out, DUKA_HUB_OUTBOX_REFUSED, 0, DUKA_OUTBOX_ERR_SERVER, errbuf, errlen,
                         "out of memory building the verification result");
    ps->kind = PREP_DECIDED;
    return true;
}

/* mpesa.register: the business's C2B URLs. */
static bool prepare_register(duka_mpesa_sender *s, duka_hub_store *store,
                             const duka_hub_outbox_item *item, prepared_send *ps,
                             duka_hub_outbox_outcome *out, char *errbuf, size_t errlen)
{
    duka_err err = {0};
    char secret[DUKA_MPESA_SECRET_HEX + 1];
    if (duka_mpesa_callback_secret(store, item->business_id, now_of(s), secret, &err) != DUKA_OK)
        return not_ready(out, DUKA_HUB_OUTBOX_DEFER, 0, DUKA_OUTBOX_ERR_SERVER, errbuf, errlen,
                         "%s", err.msg);
    snprintf(ps->shortcode, sizeof(ps->shortcode), "%s", item->entity_id);
    if (!callback_url(s, item->business_id, secret, "c2b-confirmation", ps->url_a) ||
        !callback_url(s, item->business_id, secret, "c2b-validation", ps->url_b))
        return not_ready(out, DUKA_HUB_OUTBOX_REFUSED, 0, DUKA_OUTBOX_ERR_VALIDATION, errbuf,
                         errlen, "MPESA_CALLBACK_BASE_URL is too long for a callback URL");
    ps->kind = PREP_REGISTER;
    return true;
}

static bool sender_prepare(void *ctx, duka_hub_store *store, const duka_hub_outbox_item *item,
                           void **prepared, duka_hub_outbox_outcome *out, char *errbuf,
                           size_t errlen)
{
    duka_mpesa_sender *s = ctx;
    prepared_send *ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return not_ready(out, DUKA_HUB_OUTBOX_DEFER, 0, DUKA_OUTBOX_ERR_SERVER, errbuf, errlen,
                         "out of memory");
    bool ready;
    if (strcmp(item->command_type, "mpesa.verify") == 0)
        ready = prepare_verify(s, store, item, ps, out, errbuf, errlen);
    else if (strcmp(item->command_type, "mpesa.register") == 0)
        ready = prepare_register(s, store, item, ps, out, errbuf, errlen);
    else
        ready = not_ready(out, DUKA_HUB_OUTBOX_REFUSED, 0, DUKA_OUTBOX_ERR_VALIDATION, errbuf,
                          errlen, "unknown M-Pesa job '%.40s'", item->command_type);
    if (!ready) {
        free(ps->result);
        free(ps);
        return false;
    }
    *prepared = ps;
    return true;
}

/* ------------------------------------------------------------------------------------------
 * sending (a worker thread, no store)
 * ---------------------------------------------------------------------------------------- */

/* The outbox verdict of a Daraja answer to a request that is safe to repeat (a query, a
 * registration): a timeout is one more try, not a risk. */
static duka_hub_outbox_verdict verdict_of(const duka_daraja_answer *a)
{
    switch (a->verdict) {
    case DUKA_DARAJA_OK:
    case DUKA_DARAJA_PENDING: return DUKA_HUB_OUTBOX_SENT;
    case DUKA_DARAJA_OFFLINE: return DUKA_HUB_OUTBOX_DEFER;
    case DUKA_DARAJA_UNCLEAR: return DUKA_HUB_OUTBOX_UNCLEAR;
    case DUKA_DARAJA_REFUSED: return DUKA_HUB_OUTBOX_REFUSED;
    case DUKA_DARAJA_RETRY: break;
    }
    return a->http_status >= 502 && a->http_status <= 504 ? DUKA_HUB_OUTBOX_DEFER
                                                          : DUKA_HUB_OUTBOX_RETRY;
}

static void send_query(duka_mpesa_sender *s, const prepared_send *ps,
                       duka_hub_outbox_outcome *out, char *errbuf, size_t errlen)
{
    duka_daraja_answer a;
    out->verdict = DUKA_HUB_OUTBOX_WAIT;
    for (int k = 0; k < ps->codes; k++) {
        memset(&a, 0, sizeof(a));
        duka_err err = {0};
        if (duka_daraja_transaction_status(s->client, ps->shortcode, ps->code[k], ps->url_a,
                                           ps->url_b, ps->sale, &a, &err) != DUKA_OK) {
            snprintf(errbuf, errlen, "%s", err.msg);
            out->verdict = DUKA_HUB_OUTBOX_REFUSED;
            out->error_category = DUKA_OUTBOX_ERR_VALIDATION;
            return;
        }
        out->http_status = a.http_status;
        duka_hub_outbox_verdict v = verdict_of(&a);
        if (v != DUKA_HUB_OUTBOX_SENT && v != DUKA_HUB_OUTBOX_UNCLEAR) {
            /* A refused query is our configuration (initiator, credential): it uses attempts
             * and ends failed, visible, rather than flagging codes nobody could check. */
            out->verdict = v == DUKA_HUB_OUTBOX_REFUSED ? DUKA_HUB_OUTBOX_RETRY : v;
            out->error_category = v == DUKA_HUB_OUTBOX_DEFER ? DUKA_OUTBOX_ERR_NETWORK
                                                             : DUKA_OUTBOX_ERR_SERVER;
            if (a.retry_after_s > 0)
                out->not_before_ms = now_of(s) + a.retry_after_s * 1000LL;
            snprintf(errbuf, errlen, "transaction status of %s: %s", ps->code[k], a.message);
            return;
        }
    }
    /* Asked: the results come to the status-result URL; look again after the wait. */
    out->not_before_ms = now_of(s) + s->status_wait_ms;
    out->error_category = DUKA_OUTBOX_ERR_SERVER;
    snprintf(errbuf, errlen, "asked M-Pesa about %s%s; waiting for the result", ps->code[0],
             ps->codes > 1 ? " and more" : "");
}

static void send_register(duka_mpesa_sender *s, const prepared_send *ps,
                          duka_hub_outbox_outcome *out, char *errbuf, size_t errlen)
{
    duka_daraja_answer a;
    memset(&a, 0, sizeof(a));
    duka_err err = {0};
    if (duka_daraja_register_c2b(s->client, ps->shortcode, ps->url_a, ps->url_b, &a, &err) !=
        DUKA_OK) {
        snprintf(errbuf, errlen, "%s", err.msg);
        out->verdict = DUKA_HUB_OUTBOX_REFUSED;
        out->error_category = DUKA_OUTBOX_ERR_VALIDATION;
        return;
    }
    out->http_status = a.http_status;
    out->verdict = verdict_of(&a);
    if (out->verdict == DUKA_HUB_OUTBOX_UNCLEAR)
        out->verdict = DUKA_HUB_OUTBOX_RETRY; /* registering again is harmless */
    if (out->verdict != DUKA_HUB_OUTBOX_SENT) {
        out->error_category = out->verdict == DUKA_HUB_OUTBOX_DEFER   ? DUKA_OUTBOX_ERR_NETWORK
                              : out->verdict == DUKA_HUB_OUTBOX_REFUSED ? DUKA_OUTBOX_ERR_VALIDATION
                                                                        : DUKA_OUTBOX_ERR_SERVER;
        snprintf(errbuf, errlen, "registering C2B URLs of %s: %s", ps->shortcode, a.message);
    } else {
        duka_log(DUKA_LOG_INFO, "mpesa", "C2B URLs of shortcode %s registered: %s", ps->shortcode,
                 ps->url_a);
    }
}

static void sender_send(void *ctx, const duka_hub_outbox_item *item, void *prepared,
                        duka_hub_outbox_outcome *out, char **result, char *errbuf,
                        size_t errlen)
{
    duka_mpesa_sender *s = ctx;
    prepared_send *ps = prepared;
    (void)item;
    switch (ps->kind) {
    case PREP_DECIDED:
        out->verdict = DUKA_HUB_OUTBOX_SENT;
        *result = ps->result;
        ps->result = NULL;
        break;
    case PREP_QUERY: send_query(s, ps, out, errbuf, errlen); break;
    case PREP_REGISTER: send_register(s, ps, out, errbuf, errlen); break;
    }
}

/* ------------------------------------------------------------------------------------------
 * what Safaricom posts to the hub
 * ---------------------------------------------------------------------------------------- */

static void accepted(duka_http_exchange *ex)
{
    ex->status = 200;
    ex->reply = json_pack("{s:i, s:s}", "ResultCode", 0, "ResultDesc", "Accepted");
}

/* The business of a callback key "<business id>.<secret>", when the secret is its own. */
static bool callback_business(duka_hub_store *store, const char *key,
                              char business[DUKA_BUSINESS_ID_LEN + 1])
{
    const char *dot = strrchr(key, '.');
    if (dot == NULL || dot == key || (size_t)(dot - key) > DUKA_BUSINESS_ID_LEN ||
        strlen(dot + 1) != DUKA_MPESA_SECRET_HEX)
        return false;
    memcpy(business, key, (size_t)(dot - key));
    business[dot - key] = '\0';
    char secret[DUKA_MPESA_SECRET_HEX + 1];
    bool found = false;
    duka_err err = {0};
    return duka_hub_kv_get(store, business, DUKA_MPESA_KV_SECRET, secret, sizeof(secret), &found,
                           &err) == DUKA_OK &&
           found && strlen(secret) == DUKA_MPESA_SECRET_HEX &&
           sodium_memcmp(secret, dot + 1, DUKA_MPESA_SECRET_HEX) == 0;
}

/* Keeps a payment a notification reported (its shortcode the business's when it names none). */
static void keep(duka_hub_store *store, const char *business, duka_mpesa_payment *p,
                 const char *source, duka_http_exchange *ex, int64_t now_ms)
{
    duka_err err = {0};
    bool found = false, inserted = false;
    if (p->shortcode[0] == '\0' &&
        duka_hub_kv_get(store, business, DUKA_MPESA_KV_SHORTCODE, p->shortcode,
                        sizeof(p->shortcode), &found, &err) != DUKA_OK) {
        duka_http_error(ex, 503, "store_unavailable", "%s", err.msg);
        return;
    }
    if (duka_hub_mpesa_receipt_put(store, business, p, source, now_ms, &inserted, &err) !=
        DUKA_OK) {
        duka_log(DUKA_LOG_ERROR, "mpesa", "keeping %s receipt %s: %s", source, p->receipt,
                 err.msg);
        duka_http_error(ex, err.rc == DUKA_INPUT ? 400 : 503, "not_kept", "%s", err.msg);
        return;
    }
    duka_log(DUKA_LOG_INFO, "mpesa", "business=%s %s receipt %s KES %" PRId64 ".%02d%s", business,
             source, p->receipt, p->amount_cents / 100, (int)(p->amount_cents % 100),
             inserted ? "" : " (already known)");
    accepted(ex);
}

void duka_mpesa_callback(duka_hub_store *store, const char *kind, duka_http_exchange *ex,
                         int64_t now_ms)
{
    char business[DUKA_BUSINESS_ID_LEN + 1];
    if (!callback_business(store, ex->param, business)) {
        duka_log(DUKA_LOG_WARN, "mpesa", "refused a %s callback with an unknown key", kind);
        duka_http_error(ex, 404, "not_found", "no such path");
        return;
    }
    char why[DUKA_ERR_MSG_MAX] = "";
    if (strcmp(kind, "c2b-validation") == 0) {
        /* Every payment to the shop's shortcode is welcome; what it pays is decided when a
         * sale names its code. */
        ex->status = 200;
        ex->reply = json_pack("{s:s, s:s}", "ResultCode", "0", "ResultDesc", "Accepted");
    } else if (strcmp(kind, "c2b-confirmation") == 0) {
        duka_mpesa_payment p;
        if (duka_daraja_parse_c2b(ex->body, ex->body_len, &p, why, sizeof(why)))
            keep(store, business, &p, "c2b", ex, now_ms);
    } else if (strcmp(kind, "stk-callback") == 0) {
        duka_daraja_stk_callback cb;
        if (duka_daraja_parse_stk_callback(ex->body, ex->body_len, &cb, why, sizeof(why))) {
            if (cb.result_code == 0)
                keep(store, business, &cb.payment, "stk", ex, now_ms);
            else
                accepted(ex);
        }
    } else if (strcmp(kind, "status-result") == 0) {
        duka_daraja_status_result r;
        if (duka_daraja_parse_status_result(ex->body, ex->body_len, &r, why, sizeof(why))) {
            if (r.found) {
                keep(store, business, &r.payment, "status", ex, now_ms);
            } else {
                duka_log(DUKA_LOG_INFO, "mpesa", "business=%s M-Pesa has no %s: %s %s",
                         business, r.trans_id, r.result_code, r.result_desc);
                accepted(ex);
            }
        }
    } else { /* status-timeout: Daraja gave up on a query; the job asks again later */
        duka_log(DUKA_LOG_WARN, "mpesa", "business=%s a transaction status query timed out",
                 business);
        accepted(ex);
    }
    if (why[0] != '\0') {
        duka_log(DUKA_LOG_WARN, "mpesa", "business=%s refused a malformed %s: %s", business, kind,
                 why);
        duka_http_error(ex, 400, "invalid_body", "%s", why);
    }
}

/* ------------------------------------------------------------------------------------------
 * start and stop
 * ---------------------------------------------------------------------------------------- */

/* The SecurityCredential from its file: one line of base64. */
static duka_rc read_credential(const char *path, char *out, size_t n, duka_err *err)
{
    out[0] = '\0';
    if (path[0] == '\0')
        return DUKA_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return duka_err_set(err, DUKA_INPUT, "MPESA_SECURITY_CREDENTIAL_FILE '%s' cannot be read",
                            path);
    size_t got = fread(out, 1, n - 1, f);
    bool longer = got == n - 1 && fgetc(f) != EOF;
    fclose(f);
    out[got] = '\0';
    while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == '\r' || out[got - 1] == ' '))
        out[--got] = '\0';
    if (longer || got == 0)
        return duka_err_set(err, DUKA_INPUT,
                            "MPESA_SECURITY_CREDENTIAL_FILE '%s' must hold one credential of 1 to "
                            "%zu characters",
                            path, n - 1);
    return DUKA_OK;
}

duka_rc duka_mpesa_sender_new(const duka_config *cfg, const duka_clock *clock,
                              duka_mpesa_sender **out, duka_forwarder_service *svc,
                              duka_err *err)
{
    *out = NULL;
    const char *base = duka_config_text(cfg, DUKA_SETTING_MPESA_BASE_URL);
    if (base[0] == '\0')
        return DUKA_OK;
    const char *callback = duka_config_text(cfg, DUKA_SETTING_MPESA_CALLBACK_BASE_URL);
    if (callback[0] == '\0')
        return duka_err_set(err, DUKA_INPUT,
                            "MPESA_BASE_URL is set but MPESA_CALLBACK_BASE_URL is not: Safaricom "
                            "needs this hub's address to post results to");
    duka_mpesa_sender *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting M-Pesa");
    duka_daraja_conf *c = &s->conf;
    snprintf(c->base_url, sizeof(c->base_url), "%s", base);
    snprintf(s->callback_base, sizeof(s->callback_base), "%s", callback);
    for (char *u = c->base_url; *u && u[strlen(u) - 1] == '/';)
        u[strlen(u) - 1] = '\0';
    for (char *u = s->callback_base; *u && u[strlen(u) - 1] == '/';)
        u[strlen(u) - 1] = '\0';
    snprintf(c->consumer_key, sizeof(c->consumer_key), "%s",
             duka_config_text(cfg, DUKA_SETTING_MPESA_CONSUMER_KEY));
    snprintf(c->consumer_secret, sizeof(c->consumer_secret), "%s",
             duka_config_text(cfg, DUKA_SETTING_MPESA_CONSUMER_SECRET));
    snprintf(c->passkey, sizeof(c->passkey), "%s",
             duka_config_text(cfg, DUKA_SETTING_MPESA_PASSKEY));
    snprintf(c->initiator, sizeof(c->initiator), "%s",
             duka_config_text(cfg, DUKA_SETTING_MPESA_INITIATOR));
    duka_rc rc = read_credential(duka_config_text(cfg, DUKA_SETTING_MPESA_SECURITY_CREDENTIAL_FILE),
                                 c->security_credential, sizeof(c->security_credential), err);
    c->timeout_ms = (long)duka_config_get(cfg, DUKA_SETTING_MPESA_TIMEOUT);
    atomic_init(&s->stopping, false);
    c->cancel = &s->stopping;
    c->clock = clock;
    s->clock = clock;
    s->verify_window_ms = duka_config_get(cfg, DUKA_SETTING_MPESA_VERIFY_WINDOW);
    s->match_window_ms = duka_config_get(cfg, DUKA_SETTING_MPESA_MATCH_WINDOW);
    s->status_wait_ms = duka_config_get(cfg, DUKA_SETTING_MPESA_STATUS_WAIT);
    if (rc == DUKA_OK) {
        s->sale = duka_sale_new();
        s->client = duka_daraja_new(c);
        if (s->sale == NULL || s->client == NULL)
            rc = duka_err_set(err, DUKA_NOMEM, "out of memory starting M-Pesa");
    }
    if (rc != DUKA_OK) {
        duka_mpesa_sender_free(s);
        return rc;
    }
    memset(svc, 0, sizeof(*svc));
    svc->destination = DUKA_DEST_MPESA;
    svc->in_flight = (int)duka_config_get(cfg, DUKA_SETTING_MPESA_IN_FLIGHT);
    /* An attempt is an OAuth call and a request per code of a sale (at most 8, usually one):
     * the lease covers three timeouts. A longer attempt may see another hub ask about the
     * same codes too: status queries and registrations are safe to repeat. */
    svc->lease_ms = 3 * c->timeout_ms + 30000;
    svc->retention_ms = duka_config_get(cfg, DUKA_SETTING_QUEUE_RETENTION);
    svc->max_unsent_ms = s->verify_window_ms + DUKA_MPESA_STATUS_WAIT_MAX_MS;
    svc->prepare = sender_prepare;
    svc->send = sender_send;
    svc->ctx = s;
    *out = s;
    return DUKA_OK;
}

void duka_mpesa_sender_set_transport(duka_mpesa_sender *s, duka_http_transport transport,
                                     void *ctx)
{
    s->conf.transport = transport;
    s->conf.transport_ctx = ctx;
    duka_daraja_client *c = duka_daraja_new(&s->conf);
    if (c != NULL) {
        duka_daraja_free(s->client);
        s->client = c;
    }
}

void duka_mpesa_sender_cancel(duka_mpesa_sender *s)
{
    if (s != NULL)
        atomic_store(&s->stopping, true);
}

void duka_mpesa_sender_free(duka_mpesa_sender *s)
{
    if (s == NULL)
        return;
    duka_daraja_free(s->client);
    duka_sale_free(s->sale);
    sodium_memzero(&s->conf, sizeof(s->conf));
    free(s);
}
