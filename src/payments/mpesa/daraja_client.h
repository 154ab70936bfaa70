/*
 * daraja_client.h — the hub's client of Safaricom's M-Pesa Daraja API: an OAuth token cached
 * for its life, STK push and query, C2B URL registration and the transaction status query
 * over duka_http_send, and the pure parsers of what Daraja answers and of what it posts to
 * the hub (STK callbacks, C2B validations and confirmations, transaction status results).
 *
 * Nothing received is trusted: a body above DUKA_DARAJA_REPLY_MAX_BYTES, malformed JSON,
 * duplicate keys, nesting beyond DUKA_JSON_DEPTH_MAX, a missing or ill-typed member, a receipt
 * number that is not 10 of [A-Z0-9] all end as a verdict with a one-line message naming what
 * was wrong (a reply: RETRY; a notification: the parser returns false).
 *
 * Classification of a reply (docs/PROTOCOL.md, "M-Pesa Daraja"):
 *   HTTP 200 with ResponseCode "0" → OK (a query's ResultCode is then in the answer); a
 *     push accepted without a CheckoutRequestID → UNCLEAR (the customer may be prompted);
 *   500 with errorCode 500.001.1001 → PENDING from an STK query when "being processed", else
 *     REFUSED ("wrong credentials", "unable to lock subscriber": nothing sent);
 *   500 with errorCode 500.003.02 (spike arrest), other 5xx, 429 → RETRY (Retry-After kept);
 *   404 with 404.001.03 or 401 (token refused) → the cached token is dropped and the call made
 *     once more with a new one; refused again → RETRY;
 *   other 4xx (400.002.02 bad request …) → REFUSED;
 *   no answer: nothing delivered (refused, DNS, TLS) → OFFLINE; delivered, then no answer
 *   (timeout, dropped, cancelled) → UNCLEAR. The OAuth call failing is OFFLINE, RETRY or (the
 *   key and secret refused) REFUSED as its own answer says: nothing of the real request was
 *   sent, so its UNCLEAR is OFFLINE. result_code is -1 unless a query answered one.
 *
 * Thread safe: one client is shared by the forwarder's workers (the token under a mutex; at
 * most one OAuth call at a time). Each call blocks up to the conf's timeout twice (OAuth, then
 * the request). curl_global_init() must have run.
 */
#ifndef DUKA_DARAJA_CLIENT_H
#define DUKA_DARAJA_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/limits.h"
#include "net/http_client.h"

#define DUKA_DARAJA_REPLY_MAX_BYTES (64 * 1024)
#define DUKA_DARAJA_SECRET_MAX 256      /* a consumer key or secret, a passkey */
#define DUKA_DARAJA_CREDENTIAL_MAX 1024 /* SecurityCredential: base64 of RSA-4096 is 684 */
#define DUKA_DARAJA_TOKEN_MAX 256
/* A token is used until this long before Daraja said it expires (clocks differ). */
#define DUKA_DARAJA_TOKEN_MARGIN_MS 60000
#define DUKA_DARAJA_ID_MAX 64 /* CheckoutRequestID, MerchantRequestID, conversation ids */
#define DUKA_MPESA_RECEIPT_LEN 10 /* MpesaReceiptNumber = TransID */
#define DUKA_MPESA_PHONE_MAX 72   /* 12 digits, "2547****149", or a 64-hex SHA-256 */
#define DUKA_MPESA_ACCOUNT_REF_MAX 12
#define DUKA_MPESA_DESC_MAX 13
#define DUKA_MPESA_REFERENCE_MAX 100 /* BillRefNumber as a notification carries it */
#define DUKA_MPESA_AMOUNT_MAX_KES 250000
/* One request's timeout (setting MPESA_TIMEOUT, 1..120 s). The customer's phone shows the
 * prompt while the push is still being answered, so a short timeout makes UNCLEAR pushes; a
 * long one holds a worker: 2 minutes at most. */
#define DUKA_MPESA_TIMEOUT_DEFAULT_MS 30000L
#define DUKA_MPESA_TIMEOUT_MAX_MS 120000L

typedef struct duka_daraja_conf {
    char base_url[DUKA_URL_MAX + 1]; /* MPESA_BASE_URL, e.g. https://api.safaricom.co.ke */
    char consumer_key[DUKA_DARAJA_SECRET_MAX + 1];
    char consumer_secret[DUKA_DARAJA_SECRET_MAX + 1];
    char passkey[DUKA_DARAJA_SECRET_MAX + 1];           /* Lipa na M-Pesa Online */
    char initiator[DUKA_DARAJA_SECRET_MAX + 1];         /* transaction status */
    char security_credential[DUKA_DARAJA_CREDENTIAL_MAX + 1];
    long timeout_ms;         /* per request; 0: DUKA_MPESA_TIMEOUT_DEFAULT_MS */
    const atomic_bool *cancel; /* true: a request in flight is abandoned (UNCLEAR); NULL: never */
    const duka_clock *clock;   /* token lives and Timestamps; NULL: the system's */
    /* NULL: HTTP with libcurl (duka_http_send); the deterministic simulator passes its own. */
    duka_http_transport transport;
    void *transport_ctx;
} duka_daraja_conf;

typedef enum duka_daraja_verdict {
    DUKA_DARAJA_OK,
    DUKA_DARAJA_PENDING,  /* STK query: the customer has not answered yet */
    DUKA_DARAJA_RETRY,    /* spike arrest, 5xx, 429, a malformed reply: nothing happened */
    DUKA_DARAJA_REFUSED,  /* our request is wrong (4xx, wrong credentials): do not resend */
    DUKA_DARAJA_UNCLEAR,  /* delivered, no answer: it may have been done */
    DUKA_DARAJA_OFFLINE,  /* nothing was delivered */
} duka_daraja_verdict;

const char *duka_daraja_verdict_name(duka_daraja_verdict v);

typedef struct duka_daraja_answer {
    duka_daraja_verdict verdict;
    long http_status;               /* 0 when none */
    long retry_after_s;             /* -1 when none */
    char error_code[32];            /* Daraja's errorCode ("500.003.02"), "" when none */
    char message[DUKA_ERR_MSG_MAX]; /* one line of printable ASCII */
    /* STK push (OK): */
    char merchant_request_id[DUKA_DARAJA_ID_MAX + 1];
    char checkout_request_id[DUKA_DARAJA_ID_MAX + 1];
    /* STK query (OK): the customer's answer (0 paid, 1032 cancelled …) */
    int result_code;
    char result_desc[DUKA_ERR_MSG_MAX];
    /* Transaction status (OK): Daraja's ids of the query, whose result comes to ResultURL */
    char conversation_id[DUKA_DARAJA_ID_MAX + 1];
    char originator_conversation_id[DUKA_DARAJA_ID_MAX + 1];
} duka_daraja_answer;

typedef struct duka_daraja_client duka_daraja_client;

/* NULL on out of memory. The conf is copied. */
duka_daraja_client *duka_daraja_new(const duka_daraja_conf *conf);
void duka_daraja_free(duka_daraja_client *c); /* wipes the secrets and the token; NULL fine */

/* One STK push: Password = base64(shortcode + passkey + Timestamp), Timestamp now in Nairobi,
 * TransactionType CustomerPayBillOnline (party_b = shortcode) or CustomerBuyGoodsOnline (a
 * till number as party_b). amount_kes 1..DUKA_MPESA_AMOUNT_MAX_KES; phone 2547…/2541… (12
 * digits); account_ref 1..12, desc 1..13 characters. */
typedef struct duka_daraja_stk {
    const char *shortcode, *party_b;
    bool buy_goods;
    int64_t amount_kes;
    const char *phone;
    const char *callback_url;
    const char *account_ref, *desc;
} duka_daraja_stk;

/* The functions below return DUKA_OK whenever an answer (or a classified failure) was
 * produced in *a; only out of memory (DUKA_NOMEM) or a request that cannot be made (DUKA_INPUT:
 * no http(s) base URL, a field out of its bounds) is an error, with err set and *a REFUSED
 * with the same message. */
duka_rc duka_daraja_stk_push(duka_daraja_client *c, const duka_daraja_stk *req,
                             duka_daraja_answer *a, duka_err *err);
duka_rc duka_daraja_stk_query(duka_daraja_client *c, const char *shortcode,
                              const char *checkout_request_id, duka_daraja_answer *a,
                              duka_err *err);
/* POST /mpesa/c2b/v1/registerurl {ShortCode, ResponseType: "Completed", ConfirmationURL,
 * ValidationURL}. */
duka_rc duka_daraja_register_c2b(duka_daraja_client *c, const char *shortcode,
                                 const char *confirmation_url, const char *validation_url,
                                 duka_daraja_answer *a, duka_err *err);
/* POST /mpesa/transactionstatus/v1/query for trans_id (a receipt number) received by
 * shortcode (IdentifierType 4); the result is posted to result_url later. occasion (<= 100)
 * comes back in the result's ReferenceData. */
duka_rc duka_daraja_transaction_status(duka_daraja_client *c, const char *shortcode,
                                       const char *trans_id, const char *result_url,
                                       const char *timeout_url, const char *occasion,
                                       duka_daraja_answer *a, duka_err *err);

/* Pure parsers of replies (fuzzed): any status, any bytes (body need not be NUL-terminated;
 * NULL with len 0 is an empty body) → *a fully set, never a crash. */
void duka_daraja_parse_stk_push(long http_status, const char *body, size_t len,
                                duka_daraja_answer *a);
void duka_daraja_parse_stk_query(long http_status, const char *body, size_t len,
                                 duka_daraja_answer *a);
void duka_daraja_parse_accepted(long http_status, const char *body, size_t len,
                                duka_daraja_answer *a); /* register, transaction status */

/* ---- what Daraja posts to the hub ---- */

/* A payment as a notification reports it. */
typedef struct duka_mpesa_payment {
    char receipt[DUKA_MPESA_RECEIPT_LEN + 1]; /* MpesaReceiptNumber / TransID / ReceiptNo */
    int64_t amount_cents;                     /* whole shillings x 100 */
    char phone[DUKA_MPESA_PHONE_MAX + 1];     /* as sent: digits, masked or hashed; "" unknown */
    int64_t paid_ms;                          /* its Nairobi time as epoch ms; 0 unknown */
    char shortcode[8];                        /* BusinessShortCode (C2B); "" unknown */
    char reference[DUKA_MPESA_REFERENCE_MAX + 1]; /* BillRefNumber; "" none */
} duka_mpesa_payment;

/* Body.stkCallback: its ids and ResultCode; on ResultCode 0 the payment from
 * CallbackMetadata (Amount, MpesaReceiptNumber, TransactionDate, PhoneNumber; Balance and
 * unknown items ignored). */
typedef struct duka_daraja_stk_callback {
    char merchant_request_id[DUKA_DARAJA_ID_MAX + 1];
    char checkout_request_id[DUKA_DARAJA_ID_MAX + 1];
    int result_code;
    char result_desc[DUKA_ERR_MSG_MAX];
    duka_mpesa_payment payment; /* result_code 0 only */
} duka_daraja_stk_callback;

/* Result of a transaction status query: found (ResultCode 0 with ReceiptNo and Amount) and
 * the payment, or not (any other ResultCode, string or number: "does not exist"). */
typedef struct duka_daraja_status_result {
    char trans_id[DUKA_DARAJA_ID_MAX + 1]; /* TransactionID as asked */
    char result_code[16];                  /* as sent, as text */
    char result_desc[DUKA_ERR_MSG_MAX];
    char occasion[DUKA_MPESA_REFERENCE_MAX + 1]; /* ReferenceData Occasion, "" when none */
    bool found;
    duka_mpesa_payment payment; /* found only; phone from DebitPartyName's "2547… - Name" */
} duka_daraja_status_result;

/* Each returns false with a one-line reason in why (naming the member) when body is not a
 * well-formed notification of its kind; *out is then zeroed. */
bool duka_daraja_parse_stk_callback(const char *body, size_t len, duka_daraja_stk_callback *out,
                                    char *why, size_t why_len);
bool duka_daraja_parse_c2b(const char *body, size_t len, duka_mpesa_payment *out, char *why,
                           size_t why_len);
bool duka_daraja_parse_status_result(const char *body, size_t len,
                                     duka_daraja_status_result *out, char *why, size_t why_len);

/* "YYYYMMDDHHmmss" in Nairobi time (UTC+3, no DST) as epoch ms; -1 when not such a stamp. */
int64_t duka_daraja_time_ms(const char *stamp);
/* now (epoch ms) as a Nairobi "YYYYMMDDHHmmss" (out: 15 bytes). */
void duka_daraja_stamp(int64_t ms, char out[15]);
/* True for a receipt number: 10 of [A-Z0-9]. */
bool duka_mpesa_receipt_valid(const char *s);

#endif
