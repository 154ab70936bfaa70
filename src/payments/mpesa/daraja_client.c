/* daraja_client.c — the hub's client of M-Pesa Daraja (see daraja_client.h). */
#include "payments/mpesa/daraja_client.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_limits.h"

#define NAIROBI_OFFSET_S (3 * 3600)

struct duka_daraja_client {
    duka_daraja_conf conf;
    pthread_mutex_t lock; /* the token, and one OAuth call at a time */
    char token[DUKA_DARAJA_TOKEN_MAX + 1];
    int64_t token_until_ms;
};

const char *duka_daraja_verdict_name(duka_daraja_verdict v)
{
    static const char *const names[] = {"OK", "PENDING", "RETRY", "REFUSED", "UNCLEAR",
                                        "OFFLINE"};
    return (int)v >= 0 && (int)v < 6 ? names[v] : "?";
}

/* ---- small helpers ---- */

static void set_msg(duka_daraja_answer *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_msg(duka_daraja_answer *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->message, sizeof(a->message), fmt, ap);
    va_end(ap);
    for (char *c = a->message; *c; c++) /* one line of printable ASCII */
        if (*c < ' ' || *c > '~')
            *c = ' ';
}

static void answer_init(duka_daraja_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->retry_after_s = -1;
    a->result_code = -1; /* never "paid" unless a query said so */
}

/* The body as one JSON object within the limits; NULL when it is not. */
static json_t *load_object(const char *body, size_t len, char *why, size_t why_len)
{
    if (body == NULL || len == 0) {
        snprintf(why, why_len, "the body is empty");
        return NULL;
    }
    if (len > DUKA_DARAJA_REPLY_MAX_BYTES) {
        snprintf(why, why_len, "the body is larger than %d bytes", DUKA_DARAJA_REPLY_MAX_BYTES);
        return NULL;
    }
    json_error_t jerr;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    duka_err err = {0};
    if (v == NULL) {
        snprintf(why, why_len, "the body is not JSON: %.100s", jerr.text);
        return NULL;
    }
    if (duka_json_depth_check(v, DUKA_JSON_DEPTH_MAX, "body", &err) != DUKA_OK ||
        !json_is_object(v)) {
        snprintf(why, why_len, "%s", err.msg[0] ? err.msg : "the body is not a JSON object");
        json_decref(v);
        return NULL;
    }
    return v;
}

/* A member as text: a string, or a whole number written out. */
static bool text_of(const json_t *o, const char *key, char *out, size_t n)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_string(v)) {
        if (json_string_length(v) >= n)
            return false;
        snprintf(out, n, "%s", json_string_value(v));
        return true;
    }
    if (json_is_integer(v)) {
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return true;
    }
    return false;
}

/* An amount in shillings as cents: a JSON number with at most 2 decimals, or a string of
 * digits with an optional '.' and 1 or 2 decimals ("100", "100.5", "100.00"); above zero and
 * at most DUKA_MPESA_AMOUNT_MAX_KES. False when not one. */
static bool cents_of(const json_t *v, int64_t *out)
{
    if (json_is_number(v)) {
        double d = json_number_value(v) * 100.0;
        if (!isfinite(d) || d < 1 || d > (double)DUKA_MPESA_AMOUNT_MAX_KES * 100 ||
            fabs(d - nearbyint(d)) > 1e-6)
            return false;
        *out = (int64_t)llround(d);
        return true;
    }
    const char *s = json_string_value(v);
    if (s == NULL)
        return false;
    int64_t whole = 0, frac = 0;
    int digits = 0, decimals = -1;
    for (; *s; s++) {
        if (*s == '.' && decimals < 0 && digits > 0) {
            decimals = 0;
        } else if (*s >= '0' && *s <= '9' && digits < 9 && decimals < 2) {
            if (decimals < 0) {
                whole = whole * 10 + (*s - '0');
                digits++;
            } else {
                frac = frac * 10 + (*s - '0');
                decimals++;
            }
        } else {
            return false;
        }
    }
    if (digits == 0 || decimals == 0)
        return false;
    if (decimals == 1)
        frac *= 10;
    *out = whole * 100 + frac;
    return *out > 0 && *out <= (int64_t)DUKA_MPESA_AMOUNT_MAX_KES * 100;
}

bool duka_mpesa_receipt_valid(const char *s)
{
    if (s == NULL || strlen(s) != DUKA_MPESA_RECEIPT_LEN)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

int64_t duka_daraja_time_ms(const char *stamp)
{
    if (stamp == NULL || strlen(stamp) != 14)
        return -1;
    int f[6], widths[6] = {4, 2, 2, 2, 2, 2}, pos = 0;
    for (int i = 0; i < 6; i++) {
        f[i] = 0;
        for (int k = 0; k < widths[i]; k++, pos++) {
            if (stamp[pos] < '0' || stamp[pos] > '9')
                return -1;
            f[i] = f[i] * 10 + (stamp[pos] - '0');
        }
    }
    static const int days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (f[0] < 2000 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > days[f[1] - 1] ||
        f[3] > 23 || f[4] > 59 || f[5] > 59)
        return -1;
    bool leap = (f[0] % 4 == 0 && f[0] % 100 != 0) || f[0] % 400 == 0;
    if (f[1] == 2 && f[2] == 29 && !leap)
        return -1;
    struct tm tm = {.tm_year = f[0] - 1900, .tm_mon = f[1] - 1, .tm_mday = f[2],
                    .tm_hour = f[3], .tm_min = f[4], .tm_sec = f[5]};
    return ((int64_t)timegm(&tm) - NAIROBI_OFFSET_S) * 1000;
}

void duka_daraja_stamp(int64_t ms, char out[15])
{
    time_t t = (time_t)(ms / 1000) + NAIROBI_OFFSET_S;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 15, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- reply parsers ---- */

/* The common part: HTTP status and Daraja's error shape into a verdict. true when the reply
 * is a 200 whose object (*obj, the caller's) is to be read further. */
static bool classify(long status, const char *body, size_t len, duka_daraja_answer *a,
                     json_t **obj)
{
    answer_init(a);
    a->http_status = status;
    *obj = NULL;
    char why[DUKA_ERR_MSG_MAX] = "";
    json_t *o = load_object(body, len, why, sizeof(why));
    const char *code = o ? json_string_value(json_object_get(o, "errorCode")) : NULL;
    const char *msg = o ? json_string_value(json_object_get(o, "errorMessage")) : NULL;
    char text[160];
    snprintf(text, sizeof(text), "%s", msg ? msg : "(no message)");
    if (code != NULL)
        snprintf(a->error_code, sizeof(a->error_code), "%.31s", code);
    if (status == 200 && o != NULL && code == NULL) {
        *obj = o;
        return true;
    }
    json_decref(o);
    code = a->error_code; /* o is gone: the copies from here on */
    if (status == 200) {
        a->verdict = DUKA_DARAJA_RETRY;
        set_msg(a, "Daraja answered 200 with %s", why[0] ? why : "an error");
    } else if (status == 429 || status >= 500) {
        a->verdict = DUKA_DARAJA_RETRY;
        set_msg(a, "Daraja HTTP %ld %s: %s", status, code, text);
    } else {
        a->verdict = DUKA_DARAJA_REFUSED;
        set_msg(a, "Daraja refused (HTTP %ld %s): %s", status, code, text);
    }
    return false;
}

static bool response_ok(json_t *o, duka_daraja_answer *a)
{
    char rc[16] = "";
    if (!text_of(o, "ResponseCode", rc, sizeof(rc)) || strcmp(rc, "0") != 0) {
        a->verdict = DUKA_DARAJA_RETRY;
        set_msg(a, "Daraja's reply has ResponseCode '%s', not \"0\"", rc);
        return false;
    }
    return true;
}

void duka_daraja_parse_stk_push(long http_status, const char *body, size_t len,
                                duka_daraja_answer *a)
{
    json_t *o = NULL;
    if (!classify(http_status, body, len, a, &o)) {
        if (strcmp(a->error_code, "500.001.1001") == 0)
            a->verdict = DUKA_DARAJA_REFUSED; /* wrong credentials / subscriber locked */
        return;
    }
    if (response_ok(o, a) &&
        (!text_of(o, "CheckoutRequestID", a->checkout_request_id,
                  sizeof(a->checkout_request_id)) ||
         !text_of(o, "MerchantRequestID", a->merchant_request_id,
                  sizeof(a->merchant_request_id)) ||
         a->checkout_request_id[0] == '\0')) {
        /* Accepted, but nothing to follow it by: the customer may be prompted. Never resent. */
        a->verdict = DUKA_DARAJA_UNCLEAR;
        set_msg(a, "Daraja accepted the STK push without a CheckoutRequestID or "
                   "MerchantRequestID");
    } else if (a->verdict == DUKA_DARAJA_OK) {
        set_msg(a, "prompt sent (%s)", a->checkout_request_id);
    }
    json_decref(o);
}

void duka_daraja_parse_stk_query(long http_status, const char *body, size_t len,
                                 duka_daraja_answer *a)
{
    json_t *o = NULL;
    if (!classify(http_status, body, len, a, &o)) {
        /* 500.001.1001 is overloaded: "being processed" is the customer not answered yet;
         * "wrong credentials" is our Password. */
        if (strcmp(a->error_code, "500.001.1001") == 0 && strstr(a->message, "processed")) {
            a->verdict = DUKA_DARAJA_PENDING;
            set_msg(a, "the customer has not answered yet");
        } else if (strcmp(a->error_code, "500.001.1001") == 0) {
            a->verdict = DUKA_DARAJA_REFUSED;
        }
        return;
    }
    char code[16] = "";
    char *end = NULL;
    if (response_ok(o, a)) {
        if (!text_of(o, "ResultCode", code, sizeof(code)) || code[0] == '\0' ||
            (a->result_code = (int)strtol(code, &end, 10), *end != '\0')) {
            a->verdict = DUKA_DARAJA_RETRY;
            set_msg(a, "Daraja's STK query reply has no ResultCode");
        } else {
            const char *desc = json_string_value(json_object_get(o, "ResultDesc"));
            snprintf(a->result_desc, sizeof(a->result_desc), "%s", desc ? desc : "");
            set_msg(a, "ResultCode %d: %.150s", a->result_code, a->result_desc);
        }
    }
    json_decref(o);
}

void duka_daraja_parse_accepted(long http_status, const char *body, size_t len,
                                duka_daraja_answer *a)
{
    json_t *o = NULL;
    if (!classify(http_status, body, len, a, &o))
        return;
    if (response_ok(o, a)) {
        text_of(o, "ConversationID", a->conversation_id, sizeof(a->conversation_id));
        text_of(o, "OriginatorConversationID", a->originator_conversation_id,
                sizeof(a->originator_conversation_id));
        set_msg(a, "accepted");
    }
    json_decref(o);
}

/* ---- requests ---- */

duka_daraja_client *duka_daraja_new(const duka_daraja_conf *conf)
{
    duka_daraja_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->conf = *conf;
    if (c->conf.timeout_ms <= 0)
        c->conf.timeout_ms = DUKA_MPESA_TIMEOUT_DEFAULT_MS;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void duka_daraja_free(duka_daraja_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

static int64_t now_ms(const duka_daraja_client *c)
{
    return duka_clock_now_ms(c->conf.clock);
}

/* One HTTP exchange; transport errors become OFFLINE or UNCLEAR in *a (DUKA_OK returned). */
static duka_rc exchange(duka_daraja_client *c, const char *method, const char *path,
                        const char *bearer, const char *basic, const char *body,
                        duka_http_reply *reply, duka_daraja_answer *a)
{
    char url[DUKA_URL_MAX + 128];
    snprintf(url, sizeof(url), "%s%s", c->conf.base_url, path);
    duka_http_options o = {.timeout_ms = c->conf.timeout_ms, .cancel = c->conf.cancel};
    /* Both kinds in a header of ours: a Daraja token may be longer than duka's own. */
    char auth[DUKA_DARAJA_SECRET_MAX * 2 + DUKA_DARAJA_TOKEN_MAX + 64];
    if (basic != NULL || bearer != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: %s %s", basic ? "Basic" : "Bearer",
                 basic ? basic : bearer);
        o.headers[0] = auth;
    }
    duka_err err = {0};
    size_t len = body ? strlen(body) : 0;
    duka_rc rc = c->conf.transport
                     ? c->conf.transport(c->conf.transport_ctx, method, url, NULL, body, len, &o,
                                         reply, &err)
                     : duka_http_send(method, url, NULL, body, len, &o, reply, &err);
    sodium_memzero(auth, sizeof(auth));
    if (rc != DUKA_OK) {
        answer_init(a);
        a->verdict = reply->maybe_delivered ? DUKA_DARAJA_UNCLEAR : DUKA_DARAJA_OFFLINE;
        set_msg(a, "%s", err.msg);
        return rc == DUKA_NOMEM ? rc : DUKA_OFFLINE;
    }
    return DUKA_OK;
}

/* The cached token, or a new one from OAuth; false with *a set when none could be had. */
static bool get_token(duka_daraja_client *c, char out[DUKA_DARAJA_TOKEN_MAX + 1],
                      duka_daraja_answer *a)
{
    pthread_mutex_lock(&c->lock);
    if (c->token[0] != '\0' && now_ms(c) < c->token_until_ms) {
        snprintf(out, DUKA_DARAJA_TOKEN_MAX + 1, "%s", c->token);
        pthread_mutex_unlock(&c->lock);
        return true;
    }
    char pair[2 * DUKA_DARAJA_SECRET_MAX + 2], basic[sizeof(pair) * 4 / 3 + 8];
    int n = snprintf(pair, sizeof(pair), "%s:%s", c->conf.consumer_key, c->conf.consumer_secret);
    sodium_bin2base64(basic, sizeof(basic), (const unsigned char *)pair, (size_t)n,
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(pair, sizeof(pair));
    duka_http_reply reply = {0};
    bool ok = false;
    if (exchange(c, "GET", "/oauth/v1/generate?grant_type=client_credentials", NULL, basic, NULL,
                 &reply, a) == DUKA_OK) {
        json_t *o = NULL;
        if (classify(reply.status, reply.body, reply.len, a, &o)) {
            char life[24] = "";
            const char *tok = json_string_value(json_object_get(o, "access_token"));
            long long secs = text_of(o, "expires_in", life, sizeof(life)) ? atoll(life) : 0;
            if (tok == NULL || tok[0] == '\0' || strlen(tok) > DUKA_DARAJA_TOKEN_MAX || secs <= 0) {
                a->verdict = DUKA_DARAJA_RETRY;
                set_msg(a, "Daraja OAuth reply lacks access_token or expires_in");
            } else {
                snprintf(c->token, sizeof(c->token), "%s", tok);
                c->token_until_ms = now_ms(c) + secs * 1000 - DUKA_DARAJA_TOKEN_MARGIN_MS;
                if (c->token_until_ms <= now_ms(c))
                    c->token_until_ms = now_ms(c) + secs * 500; /* a short life: half of it */
                snprintf(out, DUKA_DARAJA_TOKEN_MAX + 1, "%s", tok);
                ok = true;
            }
            json_decref(o);
        } else {
            /* OAuth refused: nothing of the real request was sent. */
            if (a->verdict == DUKA_DARAJA_REFUSED)
                set_msg(a, "Daraja OAuth refused the consumer key and secret (HTTP %ld)",
                        reply.status);
        }
    } else if (a->verdict == DUKA_DARAJA_UNCLEAR) {
        a->verdict = DUKA_DARAJA_OFFLINE; /* a lost OAuth reply sent no request */
    }
    sodium_memzero(basic, sizeof(basic));
    duka_http_reply_free(&reply);
    pthread_mutex_unlock(&c->lock);
    return ok;
}

static void drop_token(duka_daraja_client *c, const char *token)
{
    pthread_mutex_lock(&c->lock);
    if (strcmp(c->token, token) == 0) {
        sodium_memzero(c->token, sizeof(c->token));
        c->token_until_ms = 0;
    }
    pthread_mutex_unlock(&c->lock);
}

typedef void (*reply_parser)(long, const char *, size_t, duka_daraja_answer *);

/* POSTs body to path with a token, once more with a new token when it is refused. */
static duka_rc call(duka_daraja_client *c, const char *path, json_t *body, reply_parser parse,
                    duka_daraja_answer *a, duka_err *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        answer_init(a);
        a->verdict = DUKA_DARAJA_REFUSED;
        set_msg(a, "out of memory building a Daraja request");
        return duka_err_set(err, DUKA_NOMEM, "%s", a->message);
    }
    duka_rc rc = DUKA_OK;
    for (int round = 0; round < 2; round++) {
        char token[DUKA_DARAJA_TOKEN_MAX + 1];
        if (!get_token(c, token, a))
            break;
        duka_http_reply reply = {0};
        rc = exchange(c, "POST", path, token, NULL, text, &reply, a);
        if (rc == DUKA_NOMEM) {
            duka_http_reply_free(&reply);
            rc = duka_err_set(err, DUKA_NOMEM, "%s", a->message);
            break;
        }
        rc = DUKA_OK;
        if (reply.status == 0) { /* a transport failure, classified by exchange */
            duka_http_reply_free(&reply);
            break;
        }
        parse(reply.status, reply.body, reply.len, a);
        a->retry_after_s = reply.retry_after_s;
        bool token_refused = reply.status == 401 || strcmp(a->error_code, "404.001.03") == 0;
        duka_http_reply_free(&reply);
        if (!token_refused)
            break;
        drop_token(c, token);
        a->verdict = DUKA_DARAJA_RETRY; /* refused twice: try again later */
    }
    sodium_memzero(text, strlen(text));
    free(text);
    return rc;
}

static bool digits(const char *s, size_t lo, size_t hi)
{
    size_t n = s ? strlen(s) : 0;
    if (n < lo || n > hi)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static duka_rc refuse(duka_daraja_answer *a, duka_err *err, const char *what)
{
    answer_init(a);
    a->verdict = DUKA_DARAJA_REFUSED;
    set_msg(a, "cannot make the Daraja request: %s", what);
    return duka_err_set(err, DUKA_INPUT, "%s", a->message);
}

static bool base_ok(const duka_daraja_client *c)
{
    return duka_http_url_valid(c->conf.base_url);
}

/* Password = base64(shortcode + passkey + timestamp), timestamp now in Nairobi. */
static void password(const duka_daraja_client *c, const char *shortcode, char stamp[15],
                     char *out, size_t n)
{
    duka_daraja_stamp(now_ms(c), stamp);
    char plain[DUKA_DARAJA_SECRET_MAX + 32];
    int len = snprintf(plain, sizeof(plain), "%s%s%s", shortcode, c->conf.passkey, stamp);
    sodium_bin2base64(out, n, (const unsigned char *)plain, (size_t)len,
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(plain, sizeof(plain));
}

duka_rc duka_daraja_stk_push(duka_daraja_client *c, const duka_daraja_stk *r,
                             duka_daraja_answer *a, duka_err *err)
{
    if (!base_ok(c))
        return refuse(a, err, "MPESA_BASE_URL is not an http(s) URL");
    if (!digits(r->shortcode, 5, 7) || !digits(r->party_b, 5, 7) || !digits(r->phone, 12, 12) ||
        r->amount_kes < 1 || r->amount_kes > DUKA_MPESA_AMOUNT_MAX_KES || r->account_ref == NULL ||
        strlen(r->account_ref) < 1 || strlen(r->account_ref) > DUKA_MPESA_ACCOUNT_REF_MAX ||
        r->desc == NULL || strlen(r->desc) < 1 || strlen(r->desc) > DUKA_MPESA_DESC_MAX ||
        !duka_http_url_valid(r->callback_url))
        return refuse(a, err, "an STK push field is out of its bounds");
    char stamp[15], pw[(DUKA_DARAJA_SECRET_MAX + 32) * 4 / 3 + 8];
    password(c, r->shortcode, stamp, pw, sizeof(pw));
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "BusinessShortCode",
        r->shortcode, "Password", pw, "Timestamp", stamp, "TransactionType",
        r->buy_goods ? "CustomerBuyGoodsOnline" : "CustomerPayBillOnline", "Amount",
        (json_int_t)r->amount_kes, "PartyA", r->phone, "PartyB", r->party_b, "PhoneNumber",
        r->phone, "CallBackURL", r->callback_url, "AccountReference", r->account_ref,
        "TransactionDesc", r->desc);
    sodium_memzero(pw, sizeof(pw));
    return call(c, "/mpesa/stkpush/v1/processrequest", body, duka_daraja_parse_stk_push, a, err);
}

duka_rc duka_daraja_stk_query(duka_daraja_client *c, const char *shortcode,
                              const char *checkout_request_id, duka_daraja_answer *a,
                              duka_err *err)
{
    if (!base_ok(c))
        return refuse(a, err, "MPESA_BASE_URL is not an http(s) URL");
    if (!digits(shortcode, 5, 7) || checkout_request_id == NULL ||
        strlen(checkout_request_id) < 1 || strlen(checkout_request_id) > DUKA_DARAJA_ID_MAX)
        return refuse(a, err, "an STK query field is out of its bounds");
    char stamp[15], pw[(DUKA_DARAJA_SECRET_MAX + 32) * 4 / 3 + 8];
    password(c, shortcode, stamp, pw, sizeof(pw));
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "BusinessShortCode", shortcode, "Password",
                             pw, "Timestamp", stamp, "CheckoutRequestID", checkout_request_id);
    sodium_memzero(pw, sizeof(pw));
    return call(c, "/mpesa/stkpushquery/v1/query", body, duka_daraja_parse_stk_query, a, err);
}

duka_rc duka_daraja_register_c2b(duka_daraja_client *c, const char *shortcode,
                                 const char *confirmation_url, const char *validation_url,
                                 duka_daraja_answer *a, duka_err *err)
{
    if (!base_ok(c))
        return refuse(a, err, "MPESA_BASE_URL is not an http(s) URL");
    if (!digits(shortcode, 5, 7) || !duka_http_url_valid(confirmation_url) ||
        !duka_http_url_valid(validation_url))
        return refuse(a, err, "a C2B registration field is out of its bounds");
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "ShortCode", shortcode, "ResponseType",
                             "Completed", "ConfirmationURL", confirmation_url, "ValidationURL",
                             validation_url);
    return call(c, "/mpesa/c2b/v1/registerurl", body, duka_daraja_parse_accepted, a, err);
}

duka_rc duka_daraja_transaction_status(duka_daraja_client *c, const char *shortcode,
                                       const char *trans_id, const char *result_url,
                                       const char *timeout_url, const char *occasion,
                                       duka_daraja_answer *a, duka_err *err)
{
    if (!base_ok(c))
        return refuse(a, err, "MPESA_BASE_URL is not an http(s) URL");
    if (!digits(shortcode, 5, 7) || !duka_mpesa_receipt_valid(trans_id) ||
        !duka_http_url_valid(result_url) || !duka_http_url_valid(timeout_url) ||
        (occasion != NULL && strlen(occasion) > DUKA_MPESA_REFERENCE_MAX))
        return refuse(a, err, "a transaction status field is out of its bounds");
    if (c->conf.initiator[0] == '\0' || c->conf.security_credential[0] == '\0')
        return refuse(a, err,
                      "MPESA_INITIATOR and MPESA_SECURITY_CREDENTIAL_FILE are needed to query a "
                      "transaction's status");
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Initiator", c->conf.initiator,
        "SecurityCredential", c->conf.security_credential, "CommandID", "TransactionStatusQuery",
        "TransactionID", trans_id, "PartyA", shortcode, "IdentifierType", "4", "ResultURL",
        result_url, "QueueTimeOutURL", timeout_url, "Remarks", "duka verification", "Occasion",
        occasion ? occasion : "");
    return call(c, "/mpesa/transactionstatus/v1/query", body, duka_daraja_parse_accepted, a, err);
}

/* ---- notifications ---- */

static bool fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return false;
}

/* The 12 digits of a phone written as a number or a string; "" when not one. */
static void phone_of(const json_t *v, char *out, size_t n)
{
    out[0] = '\0';
    if (json_is_integer(v) && json_integer_value(v) > 0)
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_string(v) && json_string_length(v) < n)
        snprintf(out, n, "%s", json_string_value(v));
}

bool duka_daraja_parse_stk_callback(const char *body, size_t len, duka_daraja_stk_callback *out,
                                    char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load_object(body, len, why, why_len);
    if (root == NULL)
        return false;
    const json_t *cb = json_object_get(json_object_get(root, "Body"), "stkCallback");
    const json_t *code = json_object_get(cb, "ResultCode");
    bool ok = false;
    char codetext[16] = "";
    char *end = NULL;
    if (!json_is_object(cb))
        fail(why, why_len, "Body.stkCallback is missing");
    else if (!text_of(cb, "CheckoutRequestID", out->checkout_request_id,
                      sizeof(out->checkout_request_id)) ||
             out->checkout_request_id[0] == '\0')
        fail(why, why_len, "Body.stkCallback.CheckoutRequestID is missing or not valid");
    else if (!text_of(cb, "ResultCode", codetext, sizeof(codetext)) || codetext[0] == '\0' ||
             (out->result_code = (int)strtol(codetext, &end, 10), *end != '\0') || code == NULL)
        fail(why, why_len, "Body.stkCallback.ResultCode is missing or not a number");
    else
        ok = true;
    if (ok) {
        text_of(cb, "MerchantRequestID", out->merchant_request_id,
                sizeof(out->merchant_request_id));
        const char *desc = json_string_value(json_object_get(cb, "ResultDesc"));
        snprintf(out->result_desc, sizeof(out->result_desc), "%s", desc ? desc : "");
    }
    if (ok && out->result_code == 0) {
        const json_t *items = json_object_get(json_object_get(cb, "CallbackMetadata"), "Item");
        size_t i;
        const json_t *it;
        duka_mpesa_payment *p = &out->payment;
        json_array_foreach(items, i, it) {
            const char *name = json_string_value(json_object_get(it, "Name"));
            const json_t *v = json_object_get(it, "Value");
            if (name == NULL)
                continue;
            if (strcmp(name, "Amount") == 0)
                cents_of(v, &p->amount_cents);
            else if (strcmp(name, "MpesaReceiptNumber") == 0 && json_is_string(v) &&
                     json_string_length(v) < sizeof(p->receipt))
                snprintf(p->receipt, sizeof(p->receipt), "%s", json_string_value(v));
            else if (strcmp(name, "TransactionDate") == 0) {
                char stamp[24] = "";
                if (json_is_integer(v))
                    snprintf(stamp, sizeof(stamp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                else if (json_is_string(v) && json_string_length(v) < sizeof(stamp))
                    snprintf(stamp, sizeof(stamp), "%s", json_string_value(v));
                int64_t t = duka_daraja_time_ms(stamp);
                p->paid_ms = t > 0 ? t : 0;
            } else if (strcmp(name, "PhoneNumber") == 0)
                phone_of(v, p->phone, sizeof(p->phone));
        }
        if (!duka_mpesa_receipt_valid(p->receipt))
            ok = fail(why, why_len, "CallbackMetadata's MpesaReceiptNumber is missing or not valid");
        else if (p->amount_cents <= 0)
            ok = fail(why, why_len, "CallbackMetadata's Amount is missing or not valid");
    }
    json_decref(root);
    if (!ok)
        memset(out, 0, sizeof(*out));
    return ok;
}

bool duka_daraja_parse_c2b(const char *body, size_t len, duka_mpesa_payment *out, char *why,
                           size_t why_len)
{
    memset(out, 0, sizeof(*out));
    json_t *o = load_object(body, len, why, why_len);
    if (o == NULL)
        return false;
    char stamp[24] = "";
    bool ok = false;
    if (!text_of(o, "TransID", out->receipt, sizeof(out->receipt)) ||
        !duka_mpesa_receipt_valid(out->receipt))
        fail(why, why_len, "TransID is missing or not 10 of A-Z 0-9");
    else if (!cents_of(json_object_get(o, "TransAmount"), &out->amount_cents))
        fail(why, why_len, "TransAmount is missing or not an amount");
    else if (!text_of(o, "TransTime", stamp, sizeof(stamp)) || duka_daraja_time_ms(stamp) < 0)
        fail(why, why_len, "TransTime is missing or not YYYYMMDDHHmmss");
    else if (!text_of(o, "BusinessShortCode", out->shortcode, sizeof(out->shortcode)) ||
             !digits(out->shortcode, 5, 7))
        fail(why, why_len, "BusinessShortCode is missing or not 5 to 7 digits");
    else
        ok = true;
    if (ok) {
        out->paid_ms = duka_daraja_time_ms(stamp);
        phone_of(json_object_get(o, "MSISDN"), out->phone, sizeof(out->phone));
        const char *ref = json_string_value(json_object_get(o, "BillRefNumber"));
        snprintf(out->reference, sizeof(out->reference), "%s", ref ? ref : "");
    }
    json_decref(o);
    if (!ok)
        memset(out, 0, sizeof(*out));
    return ok;
}

bool duka_daraja_parse_status_result(const char *body, size_t len,
                                     duka_daraja_status_result *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load_object(body, len, why, why_len);
    if (root == NULL)
        return false;
    const json_t *r = json_object_get(root, "Result");
    bool ok = false;
    if (!json_is_object(r))
        fail(why, why_len, "Result is missing");
    else if (!text_of(r, "ResultCode", out->result_code, sizeof(out->result_code)) ||
             out->result_code[0] == '\0')
        fail(why, why_len, "Result.ResultCode is missing");
    else if (!text_of(r, "TransactionID", out->trans_id, sizeof(out->trans_id)))
        fail(why, why_len, "Result.TransactionID is missing or not valid");
    else
        ok = true;
    if (ok) {
        const char *desc = json_string_value(json_object_get(r, "ResultDesc"));
        snprintf(out->result_desc, sizeof(out->result_desc), "%s", desc ? desc : "");
        const json_t *ref = json_object_get(json_object_get(r, "ReferenceData"), "ReferenceItem");
        const char *occ = json_string_value(json_object_get(ref, "Value"));
        if (occ != NULL && strlen(occ) < sizeof(out->occasion))
            snprintf(out->occasion, sizeof(out->occasion), "%s", occ);
    }
    if (ok && strcmp(out->result_code, "0") == 0) {
        const json_t *params = json_object_get(json_object_get(r, "ResultParameters"),
                                               "ResultParameter");
        duka_mpesa_payment *p = &out->payment;
        bool completed = true;
        size_t n = json_is_array(params) ? json_array_size(params) : json_is_object(params);
        for (size_t i = 0; i < n; i++) {
            const json_t *it = json_is_array(params) ? json_array_get(params, i) : params;
            const char *key = json_string_value(json_object_get(it, "Key"));
            const json_t *v = json_object_get(it, "Value");
            char text[DUKA_MPESA_REFERENCE_MAX + 1] = "";
            if (key == NULL)
                continue;
            if (strcmp(key, "ReceiptNo") == 0)
                text_of(it, "Value", p->receipt, sizeof(p->receipt));
            else if (strcmp(key, "Amount") == 0)
                cents_of(v, &p->amount_cents);
            else if (strcmp(key, "TransactionStatus") == 0 && json_is_string(v))
                completed = strcmp(json_string_value(v), "Completed") == 0;
            else if ((strcmp(key, "FinalisedTime") == 0 ||
                      (strcmp(key, "InitiatedTime") == 0 && p->paid_ms == 0)) &&
                     text_of(it, "Value", text, sizeof(text))) {
                int64_t t = duka_daraja_time_ms(text);
                if (t > 0)
                    p->paid_ms = t;
            } else if (strcmp(key, "DebitPartyName") == 0 && json_is_string(v)) {
                const char *s = json_string_value(v), *dash = strstr(s, " - ");
                size_t k = dash ? (size_t)(dash - s) : strlen(s);
                if (k < sizeof(p->phone))
                    snprintf(p->phone, sizeof(p->phone), "%.*s", (int)k, s);
            }
        }
        out->found = completed && duka_mpesa_receipt_valid(p->receipt) && p->amount_cents > 0;
        if (!out->found)
            memset(p, 0, sizeof(*p));
    }
    json_decref(root);
    if (!ok)
        memset(out, 0, sizeof(*out));
    return ok;
}
