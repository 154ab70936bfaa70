/*
 * etims_client.h — the hub's client of KRA eTIMS (OSCU): device init, saveTrnsSalesOsdc and
 * selectInvoiceDetails over duka_http_send (contract 12, sections 1 and 3), and the pure
 * parsers that turn any answer — or none — into one verdict with a one-line message.
 *
 * Nothing in a reply is trusted: a body above DUKA_ETIMS_REPLY_MAX_BYTES, malformed JSON,
 * duplicate keys, nesting beyond DUKA_ETIMS_REPLY_DEPTH_MAX, a missing or ill-typed member, a
 * signature that is not 1..DUKA_ETIMS_SIGNATURE_MAX printable ASCII characters or a date of
 * neither format all end as DUKA_ETIMS_RETRY with a message naming what was wrong.
 *
 * Classification (the HTTP status first, then resultCd of an HTTP 200):
 *   HTTP 429 (retry_after_s from Retry-After), 5xx, other non-200 non-4xx → RETRY;
 *   other 4xx → REFUSED.
 *   000 → OK; 902 with data.info → OK (init only); 994 → DUPLICATE (save); 001 → NOT_FOUND
 *   (select); 910, 890..899, 901 → REFUSED; 999, 921, 922, any other code → RETRY.
 *   No answer: nothing sent (refused, DNS, TLS) → OFFLINE; sent, then no answer (timeout,
 *   connection dropped, cancelled) → UNCLEAR.
 *
 * Thread safe (no globals; libcurl via duka_http_send). curl_global_init() must have run.
 * Each call blocks up to the conf's timeout (plus the connect timeout).
 */
#ifndef DUKA_ETIMS_CLIENT_H
#define DUKA_ETIMS_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"
#include "net/http_client.h"

typedef struct duka_etims_conf {
    char base_url[DUKA_URL_MAX + 1]; /* ETIMS_BASE_URL, e.g. http://127.0.0.1:8090/etims-api */
    long timeout_ms;                 /* ETIMS_TIMEOUT; 0: DUKA_ETIMS_TIMEOUT_DEFAULT_MS (30 s) */
    /* Added to the contract: when it becomes true a request in flight is abandoned soon after
     * (then UNCLEAR: it may have arrived), so a hub stops without waiting out a timeout.
     * NULL: never. */
    const atomic_bool *cancel;
    /* NULL: HTTP with libcurl (duka_http_send). The deterministic simulator (tests/sim)
     * passes its simulated network, with the eTIMS simulator called in-process behind it. */
    duka_http_transport transport;
    void *transport_ctx;
} duka_etims_conf;

typedef struct duka_etims_device {
    char tin[16], bhf_id[4], dvc_srl_no[64], sdc_id[32], mrc_no[32], cmc_key[128];
} duka_etims_device;

typedef enum duka_etims_verdict {
    DUKA_ETIMS_OK,         /* 000 (and 902 with info for init) */
    DUKA_ETIMS_DUPLICATE,  /* 994: that invcNo is already there */
    DUKA_ETIMS_NOT_FOUND,  /* 001 from selectInvoiceDetails */
    DUKA_ETIMS_RETRY,      /* 999, 921/922 sequencing, 5xx, 429, unknown code, malformed reply */
    DUKA_ETIMS_REFUSED,    /* 910, 89x, 901, 4xx other than 429: our request is wrong */
    DUKA_ETIMS_UNCLEAR,    /* the request may have arrived and no answer came (timeout) */
    DUKA_ETIMS_OFFLINE,    /* nothing was delivered (connection refused, DNS) */
} duka_etims_verdict;

typedef struct duka_etims_answer {
    duka_etims_verdict verdict;
    char result_cd[8];              /* "000", … or "" when none */
    char message[DUKA_ERR_MSG_MAX]; /* one line of printable ASCII, for the item's last_error */
    long http_status;               /* 0 when none */
    long retry_after_s;             /* -1 when none */
    /* on OK (save or select): */
    int64_t cur_rcpt_no, tot_rcpt_no;
    char intrl_data[64], rcpt_sign[64];
    char sdc_datetime[20]; /* normalised "YYYY-MM-DD HH:MM:SS" from either format */
    /* Added to the contract — on OK from select, what salesList[0] says it is, so a caller
     * can tell its own invoice from another one under the same number: -1 / "" when the
     * reply does not say. */
    int64_t found_invc_no;
    int64_t found_tot_amt_cents;
    char found_trd_invc_no[DUKA_RECEIPT_NO_MAX + 8];
    char found_rcpt_ty_cd[4];
} duka_etims_answer;

/* A verdict's name ("OK", "DUPLICATE", …), for logs and tests. */
const char *duka_etims_verdict_name(duka_etims_verdict v);

/* The functions below return DUKA_OK whenever an answer (or a classified failure) was
 * produced, a filled in *a; only out of memory (DUKA_NOMEM) or a conf/device that cannot make
 * a request (DUKA_INPUT: no http(s) base URL, a header value with a control character) is an
 * error, with err set and *a REFUSED with the same message. */

/* POST /selectInitOsdcInfo {tin, bhfId, dvcSrlNo}. On OK *out holds tin, bhf_id, dvc_srl_no
 * as given and sdc_id, mrc_no, cmc_key from data.info (each checked: printable ASCII that
 * fits; the cmcKey also goes into headers). *out is untouched unless OK. */
duka_rc duka_etims_init_device(const duka_etims_conf *c, const char *tin, const char *bhf_id,
                               const char *dvc_srl_no, duka_etims_device *out,
                               duka_etims_answer *a, duka_err *err);

/* POST /saveTrnsSalesOsdc: body_json (duka_etims_invoice_body's text) with "invcNo": invc_no
 * (>= 1) and "orgInvcNo": org_invc_no (>= 0) put first; headers tin, bhfId, cmcKey. */
duka_rc duka_etims_save(const duka_etims_conf *c, const duka_etims_device *d,
                        const char *body_json, int64_t invc_no, int64_t org_invc_no,
                        duka_etims_answer *a, duka_err *err);

/* POST /selectInvoiceDetails {"invcNo": invc_no}; an OK whose salesList[0].invcNo is another
 * number is RETRY. */
duka_rc duka_etims_select(const duka_etims_conf *c, const duka_etims_device *d,
                          int64_t invc_no, duka_etims_answer *a, duka_err *err);

/* Pure parsers (fuzzed): any status, any bytes (body need not be NUL-terminated; NULL with
 * len 0 is an empty body) → *a fully set, never a crash. */
void duka_etims_parse_save(long http_status, const char *body, size_t len, duka_etims_answer *a);
void duka_etims_parse_select(long http_status, const char *body, size_t len,
                             duka_etims_answer *a);
/* Added to the contract: selectInitOsdcInfo's answer; on OK, dev's sdc_id, mrc_no and cmc_key
 * are set (the rest of dev untouched). */
void duka_etims_parse_init(long http_status, const char *body, size_t len, duka_etims_answer *a,
                           duka_etims_device *dev);

#endif
