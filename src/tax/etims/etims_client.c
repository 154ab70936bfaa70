/* etims_client.c — requests to KRA eTIMS and the judging of their answers (see
 * etims_client.h). One request at a time per call, a few per invoice; a reply is at most
 * DUKA_ETIMS_REPLY_MAX_BYTES and is parsed once. */
#include "tax/etims/etims_client.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/json_limits.h"
#include "net/http_client.h"
#include "tax/etims/invoice.h"

#define PATH_INIT "/selectInitOsdcInfo"
#define PATH_SAVE "/saveTrnsSalesOsdc"
#define PATH_SELECT "/selectInvoiceDetails"

typedef enum reply_kind { KIND_INIT, KIND_SAVE, KIND_SELECT } reply_kind;

static const char *kind_name(reply_kind k)
{
    switch (k) {
    case KIND_INIT:
        return "selectInitOsdcInfo";
    case KIND_SAVE:
        return "saveTrnsSalesOsdc";
    case KIND_SELECT:
        return "selectInvoiceDetails";
    }
    return "?";
}

const char *duka_etims_verdict_name(duka_etims_verdict v)
{
    switch (v) {
    case DUKA_ETIMS_OK:
        return "OK";
    case DUKA_ETIMS_DUPLICATE:
        return "DUPLICATE";
    case DUKA_ETIMS_NOT_FOUND:
        return "NOT_FOUND";
    case DUKA_ETIMS_RETRY:
        return "RETRY";
    case DUKA_ETIMS_REFUSED:
        return "REFUSED";
    case DUKA_ETIMS_UNCLEAR:
        return "UNCLEAR";
    case DUKA_ETIMS_OFFLINE:
        return "OFFLINE";
    }
    return "UNKNOWN";
}

static void answer_reset(duka_etims_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->verdict = DUKA_ETIMS_RETRY;
    a->retry_after_s = -1;
    a->found_invc_no = -1;
    a->found_tot_amt_cents = -1;
}

/* Sets the verdict and its one-line message: anything but printable ASCII (a reply's bytes
 * quoted in it, a newline) becomes '?'. */
static void verdict(duka_etims_answer *a, duka_etims_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verdict(duka_etims_answer *a, duka_etims_verdict v, const char *fmt, ...)
{
    a->verdict = v;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->message, sizeof(a->message), fmt, ap);
    va_end(ap);
    for (char *p = a->message; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    if (a->message[0] == '\0')
        snprintf(a->message, sizeof(a->message), "eTIMS: %s", duka_etims_verdict_name(v));
}

/* Copies up to max bytes of s (n bytes) into out for quoting: non-printable bytes become '?',
 * and "..." marks a cut. */
static void quote(char *out, size_t out_len, const char *s, size_t n, size_t max)
{
    size_t k = 0;
    assert(out_len >= 4);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--; /* a body's last newline is no part of what it said */
    for (size_t i = 0; i < n && i < max && k + 4 < out_len; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[k++] = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
    }
    if (n > max || k + 4 >= out_len) {
        if (n > k) {
            memcpy(out + k, "...", 3);
            k += 3;
        }
    }
    out[k] = '\0';
}

/* True when s is 1..max characters, each printable ASCII other than space (a signature, a
 * key that goes into a header, a device id). */
static bool graphic_ascii(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* ---- dates ---- */

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* "YYYYMMDDhhmmss" (save) or "YYYY-MM-DD hh:mm:ss" with an optional fraction ".S…" of 1..9
 * digits (select) into "YYYY-MM-DD HH:MM:SS" (out >= 20 bytes). False on anything else,
 * including impossible dates and years outside 1970..9999. */
static bool datetime_normalise(const char *s, char *out, size_t out_len)
{
    int y, mo, d, h, mi, se;
    size_t n = strlen(s);
    if (n == 14) {
        if (!digits(s, 4, &y) || !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d) ||
            !digits(s + 8, 2, &h) || !digits(s + 10, 2, &mi) || !digits(s + 12, 2, &se))
            return false;
    } else if (n >= 19) {
        if (s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':')
            return false;
        if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
            !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
            return false;
        if (n > 19) {
            int frac;
            if (s[19] != '.' || n < 21 || n > 29 || !digits(s + 20, (int)(n - 20), &frac))
                return false;
        }
    } else {
        return false;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || se > 59)
        return false;
    snprintf(out, out_len, "%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, se);
    return true;
}

/* ---- members of a reply ---- */

/* An integer member >= min, or false with a RETRY naming it (where: "data.curRcptNo"). */
static bool get_int(const json_t *o, const char *key, const char *where, int64_t min,
                    int64_t *out, duka_etims_answer *a, const char *what)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < min) {
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: %s %s", what, where,
                v == NULL ? "is missing"
                          : json_is_integer(v) ? "is out of range" : "is not an integer");
        return false;
    }
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* A string member of 1..max graphic ASCII characters copied into out. */
static bool get_token(const json_t *o, const char *key, const char *where, size_t max, char *out,
                      size_t out_len, duka_etims_answer *a, const char *what)
{
    assert(max < out_len);
    (void)out_len;
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) {
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: %s %s", what, where,
                v == NULL ? "is missing" : "is not a string");
        return false;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n != strlen(s) || !graphic_ascii(s, max)) {
        char q[80];
        quote(q, sizeof(q), s, n, 40);
        verdict(a, DUKA_ETIMS_RETRY,
                "eTIMS %s reply: %s '%s' is not 1 to %zu printable ASCII characters", what,
                where, q, max);
        return false;
    }
    memcpy(out, s, n + 1);
    return true;
}

/* The receipt members shared by save's data and select's salesList[0].receipt. */
static bool get_receipt(const json_t *o, const char *prefix, duka_etims_answer *a,
                        const char *what)
{
    char where[64];
    snprintf(where, sizeof(where), "%scurRcptNo", prefix);
    if (!get_int(o, "curRcptNo", where, 1, &a->cur_rcpt_no, a, what))
        return false;
    snprintf(where, sizeof(where), "%stotRcptNo", prefix);
    if (!get_int(o, "totRcptNo", where, 1, &a->tot_rcpt_no, a, what))
        return false;
    snprintf(where, sizeof(where), "%sintrlData", prefix);
    if (!get_token(o, "intrlData", where, DUKA_ETIMS_SIGNATURE_MAX, a->intrl_data,
                   sizeof(a->intrl_data), a, what))
        return false;
    snprintf(where, sizeof(where), "%srcptSign", prefix);
    if (!get_token(o, "rcptSign", where, DUKA_ETIMS_SIGNATURE_MAX, a->rcpt_sign,
                   sizeof(a->rcpt_sign), a, what))
        return false;
    const json_t *dt = json_object_get(o, "sdcDateTime");
    if (!json_is_string(dt) ||
        !datetime_normalise(json_string_value(dt), a->sdc_datetime, sizeof(a->sdc_datetime))) {
        char q[80] = "";
        if (json_is_string(dt))
            quote(q, sizeof(q), json_string_value(dt), json_string_length(dt), 40);
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: bad sdcDateTime%s%s%s", what,
                dt == NULL ? " (missing)" : json_is_string(dt) ? " '" : " (not a string)", q,
                json_is_string(dt) ? "'" : "");
        a->sdc_datetime[0] = '\0';
        return false;
    }
    return true;
}

/* ---- the common part of every answer ---- */

/* Judges the status and the envelope. Returns the parsed reply (the caller's) with
 * a->result_cd set and resultMsg quoted into msg, or NULL with the verdict set. */
static json_t *parse_envelope(reply_kind kind, long status, const char *body, size_t len,
                              duka_etims_answer *a, char *msg, size_t msg_len)
{
    const char *what = kind_name(kind);
    a->http_status = status;
    msg[0] = '\0';
    if (len > DUKA_ETIMS_REPLY_MAX_BYTES) {
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply too large: %zu bytes (limit %u)", what, len,
                DUKA_ETIMS_REPLY_MAX_BYTES);
        return NULL;
    }
    if (body == NULL) {
        body = "";
        len = 0;
    }
    if (status != 200) {
        char q[96];
        quote(q, sizeof(q), body, len, 60);
        if (status == 429)
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s: HTTP 429, too many requests", what);
        else if (status >= 400 && status < 500)
            verdict(a, DUKA_ETIMS_REFUSED, "eTIMS %s refused the request: HTTP %ld; it said %s", what,
                    status, q);
        else if (status >= 500 && status < 600)
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s failed: HTTP %ld; it said %s", what, status, q);
        else
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s answered an unexpected HTTP %ld", what,
                    status);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char q[96];
        quote(q, sizeof(q), jerr.text, strlen(jerr.text), 80);
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply is not JSON: %s (byte %d)", what, q,
                jerr.position);
        return NULL;
    }
    duka_err derr = {0};
    if (duka_json_depth_check(root, DUKA_ETIMS_REPLY_DEPTH_MAX, "reply", &derr) != DUKA_OK) {
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s %s", what, derr.msg);
        json_decref(root);
        return NULL;
    }
    if (!json_is_object(root)) {
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply is not a JSON object", what);
        json_decref(root);
        return NULL;
    }
    const json_t *cd = json_object_get(root, "resultCd");
    const char *cds = json_string_value(cd);
    size_t cdn = json_string_length(cd);
    bool code_ok = cds != NULL && cdn >= 1 && cdn <= 7;
    for (size_t i = 0; code_ok && i < cdn; i++)
        code_ok = cds[i] >= '0' && cds[i] <= '9';
    if (!code_ok) {
        char q[48] = "";
        if (cds != NULL)
            quote(q, sizeof(q), cds, cdn, 20);
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: resultCd %s%s%s", what,
                cd == NULL ? "is missing"
                           : cds == NULL ? "is not a string" : "is not a code: '",
                q, cds != NULL ? "'" : "");
        json_decref(root);
        return NULL;
    }
    memcpy(a->result_cd, cds, cdn + 1);
    const json_t *rm = json_object_get(root, "resultMsg");
    if (json_is_string(rm))
        quote(msg, msg_len, json_string_value(rm), json_string_length(rm),
              DUKA_ETIMS_RESULT_MSG_QUOTE_MAX);
    return root;
}

/* The verdict of a code that means the same for every request; false for 000, 001, 902, 994
 * (which the caller judges). */
static bool common_code(const char *cd, const char *msg, duka_etims_answer *a, const char *what)
{
    if (strcmp(cd, "910") == 0 || strcmp(cd, "901") == 0 ||
        (strlen(cd) == 3 && cd[0] == '8' && cd[1] == '9')) {
        verdict(a, DUKA_ETIMS_REFUSED, "eTIMS %s refused (%s): %s", what, cd, msg);
        return true;
    }
    if (strcmp(cd, "922") == 0) {
        verdict(a, DUKA_ETIMS_RETRY,
                "eTIMS %s sequencing (922, the original may not be accepted yet): %s", what,
                msg);
        return true;
    }
    if (strcmp(cd, "921") == 0) {
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s sequencing (921): %s", what, msg);
        return true;
    }
    if (strcmp(cd, "999") == 0) {
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s failed (999): %s", what, msg);
        return true;
    }
    return false;
}

static void unknown_code(const char *cd, const char *msg, duka_etims_answer *a, const char *what)
{
    verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s answered an unknown resultCd %s: %s", what, cd, msg);
}

/* ---- the three parsers ---- */

void duka_etims_parse_save(long http_status, const char *body, size_t len, duka_etims_answer *a)
{
    answer_reset(a);
    const char *what = kind_name(KIND_SAVE);
    char msg[DUKA_ETIMS_RESULT_MSG_QUOTE_MAX + 8];
    json_t *root = parse_envelope(KIND_SAVE, http_status, body, len, a, msg, sizeof(msg));
    if (root == NULL)
        return;
    const char *cd = a->result_cd;
    if (strcmp(cd, "000") == 0) {
        const json_t *data = json_object_get(root, "data");
        if (!json_is_object(data))
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: 000 without a data object", what);
        else if (get_receipt(data, "data.", a, what))
            verdict(a, DUKA_ETIMS_OK, "eTIMS signed: receipt %" PRId64 "/%" PRId64 " at %s",
                    a->cur_rcpt_no, a->tot_rcpt_no, a->sdc_datetime);
    } else if (strcmp(cd, "994") == 0) {
        verdict(a, DUKA_ETIMS_DUPLICATE, "eTIMS already has this invcNo (994): %s", msg);
    } else if (!common_code(cd, msg, a, what)) {
        unknown_code(cd, msg, a, what);
    }
    if (a->verdict != DUKA_ETIMS_OK) {
        a->cur_rcpt_no = a->tot_rcpt_no = 0;
        a->intrl_data[0] = a->rcpt_sign[0] = a->sdc_datetime[0] = '\0';
    }
    json_decref(root);
}

/* salesList[0]'s own members (what it says it is), each optional but typed when present. */
static bool get_found(const json_t *inv, duka_etims_answer *a, const char *what)
{
    const json_t *v = json_object_get(inv, "invcNo");
    if (v != NULL && !get_int(inv, "invcNo", "data.salesList[0].invcNo", 1, &a->found_invc_no, a,
                              what))
        return false;
    v = json_object_get(inv, "trdInvcNo");
    if (v != NULL && !get_token(inv, "trdInvcNo", "data.salesList[0].trdInvcNo",
                                sizeof(a->found_trd_invc_no) - 1, a->found_trd_invc_no,
                                sizeof(a->found_trd_invc_no), a, what))
        return false;
    v = json_object_get(inv, "rcptTyCd");
    if (v != NULL && !get_token(inv, "rcptTyCd", "data.salesList[0].rcptTyCd",
                                sizeof(a->found_rcpt_ty_cd) - 1, a->found_rcpt_ty_cd,
                                sizeof(a->found_rcpt_ty_cd), a, what))
        return false;
    v = json_object_get(inv, "totAmt");
    if (v != NULL) {
        double amt = json_number_value(v);
        if (!json_is_number(v) || !(amt >= 0.0) ||
            amt * 100.0 > (double)DUKA_ETIMS_AMOUNT_CENTS_MAX) {
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: data.salesList[0].totAmt %s", what,
                    json_is_number(v) ? "is out of range" : "is not a number");
            return false;
        }
        a->found_tot_amt_cents = (int64_t)llround(amt * 100.0);
    }
    return true;
}

void duka_etims_parse_select(long http_status, const char *body, size_t len,
                             duka_etims_answer *a)
{
    answer_reset(a);
    const char *what = kind_name(KIND_SELECT);
    char msg[DUKA_ETIMS_RESULT_MSG_QUOTE_MAX + 8];
    json_t *root = parse_envelope(KIND_SELECT, http_status, body, len, a, msg, sizeof(msg));
    if (root == NULL)
        return;
    const char *cd = a->result_cd;
    if (strcmp(cd, "000") == 0) {
        const json_t *data = json_object_get(root, "data");
        const json_t *list = json_object_get(data, "salesList");
        const json_t *inv = json_array_get(list, 0);
        const json_t *rcpt = json_object_get(inv, "receipt");
        if (!json_is_object(data))
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: 000 without a data object", what);
        else if (!json_is_array(list))
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: data.salesList %s", what,
                    list == NULL ? "is missing" : "is not an array");
        else if (inv == NULL)
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: 000 with an empty data.salesList",
                    what);
        else if (!json_is_object(inv))
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: data.salesList[0] is not an object",
                    what);
        else if (!json_is_object(rcpt))
            verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: data.salesList[0].receipt %s", what,
                    rcpt == NULL ? "is missing" : "is not an object");
        else if (get_found(inv, a, what) &&
                 get_receipt(rcpt, "data.salesList[0].receipt.", a, what))
            verdict(a, DUKA_ETIMS_OK, "eTIMS has it: receipt %" PRId64 "/%" PRId64 " at %s",
                    a->cur_rcpt_no, a->tot_rcpt_no, a->sdc_datetime);
    } else if (strcmp(cd, "001") == 0) {
        verdict(a, DUKA_ETIMS_NOT_FOUND, "eTIMS has no such invoice (001): %s", msg);
    } else if (!common_code(cd, msg, a, what)) {
        unknown_code(cd, msg, a, what);
    }
    if (a->verdict != DUKA_ETIMS_OK) {
        a->cur_rcpt_no = a->tot_rcpt_no = 0;
        a->intrl_data[0] = a->rcpt_sign[0] = a->sdc_datetime[0] = '\0';
        a->found_invc_no = a->found_tot_amt_cents = -1;
        a->found_trd_invc_no[0] = a->found_rcpt_ty_cd[0] = '\0';
    }
    json_decref(root);
}

void duka_etims_parse_init(long http_status, const char *body, size_t len, duka_etims_answer *a,
                           duka_etims_device *dev)
{
    answer_reset(a);
    const char *what = kind_name(KIND_INIT);
    char msg[DUKA_ETIMS_RESULT_MSG_QUOTE_MAX + 8];
    json_t *root = parse_envelope(KIND_INIT, http_status, body, len, a, msg, sizeof(msg));
    if (root == NULL)
        return;
    const char *cd = a->result_cd;
    bool installed = strcmp(cd, "902") == 0;
    if (strcmp(cd, "000") == 0 || installed) {
        const json_t *info = json_object_get(json_object_get(root, "data"), "info");
        char sdc[sizeof(dev->sdc_id)], mrc[sizeof(dev->mrc_no)], key[sizeof(dev->cmc_key)];
        if (!json_is_object(info)) {
            if (installed)
                verdict(a, DUKA_ETIMS_REFUSED,
                        "eTIMS %s: this device is installed (902) but the reply carries no "
                        "data.info with its cmcKey: %s",
                        what, msg);
            else
                verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply: 000 without data.info", what);
        } else if (get_token(info, "sdcId", "data.info.sdcId", sizeof(sdc) - 1, sdc, sizeof(sdc),
                             a, what) &&
                   get_token(info, "mrcNo", "data.info.mrcNo", sizeof(mrc) - 1, mrc, sizeof(mrc),
                             a, what) &&
                   get_token(info, "cmcKey", "data.info.cmcKey", sizeof(key) - 1, key,
                             sizeof(key), a, what)) {
            /* The strings, not the buffers: their tails were never written (valgrind). */
            snprintf(dev->sdc_id, sizeof(dev->sdc_id), "%s", sdc);
            snprintf(dev->mrc_no, sizeof(dev->mrc_no), "%s", mrc);
            snprintf(dev->cmc_key, sizeof(dev->cmc_key), "%s", key);
            verdict(a, DUKA_ETIMS_OK, "eTIMS device %s (%s)%s", sdc, mrc,
                    installed ? ", already installed (902)" : "");
        }
    } else if (!common_code(cd, msg, a, what)) {
        unknown_code(cd, msg, a, what);
    }
    json_decref(root);
}

/* ---- requests ---- */

/* The part of duka_http_send's message after the URL ("Connection refused"), or all of it. */
static const char *transport_reason(const char *msg, const char *url)
{
    const char *p = strstr(msg, url);
    if (p == NULL)
        return msg;
    p += strlen(url);
    return strncmp(p, ": ", 2) == 0 ? p + 2 : p;
}

/* Sets *a REFUSED and err to DUKA_INPUT with the same sentence. */
static duka_rc request_invalid(duka_etims_answer *a, duka_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static duka_rc request_invalid(duka_etims_answer *a, duka_err *err, const char *fmt, ...)
{
    char m[DUKA_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    verdict(a, DUKA_ETIMS_REFUSED, "%s", m);
    return duka_err_set(err, DUKA_INPUT, "%s", a->message);
}

/* POSTs body to the conf's base URL + path (with the device's headers when d is not NULL),
 * then judges the answer with the parser of kind. */
static duka_rc post(const duka_etims_conf *c, const duka_etims_device *d, reply_kind kind,
                    const char *path, const char *body, duka_etims_answer *a,
                    duka_etims_device *init_out, duka_err *err)
{
    const char *what = kind_name(kind);
    char url[DUKA_URL_MAX + 64];
    size_t base_len = strnlen(c->base_url, sizeof(c->base_url));
    while (base_len > 0 && c->base_url[base_len - 1] == '/')
        base_len--;
    snprintf(url, sizeof(url), "%.*s%s", (int)base_len, c->base_url, path);
    if (base_len == sizeof(c->base_url) || !duka_http_url_valid(url))
        return request_invalid(a, err, "eTIMS %s: ETIMS_BASE_URL '%.*s' is not an http(s) URL",
                               what, (int)(base_len > 200 ? 200 : base_len), c->base_url);
    char h_tin[64], h_bhf[32], h_key[192];
    duka_http_options opt = {0};
    if (d != NULL) {
        if (!graphic_ascii(d->tin, sizeof(d->tin) - 1) ||
            !graphic_ascii(d->bhf_id, sizeof(d->bhf_id) - 1) ||
            !graphic_ascii(d->cmc_key, sizeof(d->cmc_key) - 1))
            return request_invalid(a, err,
                                   "eTIMS %s: the device's tin, bhfId or cmcKey is empty or "
                                   "holds a character not allowed in a header (init the device)",
                                   what);
        snprintf(h_tin, sizeof(h_tin), "tin: %s", d->tin);
        snprintf(h_bhf, sizeof(h_bhf), "bhfId: %s", d->bhf_id);
        snprintf(h_key, sizeof(h_key), "cmcKey: %s", d->cmc_key);
        opt.headers[0] = h_tin;
        opt.headers[1] = h_bhf;
        opt.headers[2] = h_key;
    }
    opt.timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : DUKA_ETIMS_TIMEOUT_DEFAULT_MS;
    if (opt.timeout_ms > DUKA_ETIMS_TIMEOUT_MAX_MS)
        opt.timeout_ms = DUKA_ETIMS_TIMEOUT_MAX_MS;
    opt.cancel = c->cancel;

    duka_http_reply rep;
    duka_err herr = {0};
    memset(&rep, 0, sizeof(rep));
    duka_rc hrc = c->transport != NULL
                      ? c->transport(c->transport_ctx, "POST", url, NULL, body, strlen(body),
                                     &opt, &rep, &herr)
                      : duka_http_send("POST", url, NULL, body, strlen(body), &opt, &rep, &herr);
    if (hrc == DUKA_OK) {
        if (kind == KIND_SAVE)
            duka_etims_parse_save(rep.status, rep.body, rep.len, a);
        else if (kind == KIND_SELECT)
            duka_etims_parse_select(rep.status, rep.body, rep.len, a);
        else
            duka_etims_parse_init(rep.status, rep.body, rep.len, a, init_out);
        if (a->verdict == DUKA_ETIMS_RETRY && rep.retry_after_s >= 0) {
            size_t n = strlen(a->message);
            a->retry_after_s = rep.retry_after_s;
            snprintf(a->message + n, sizeof(a->message) - n, " (Retry-After %ld s)",
                     rep.retry_after_s);
        }
        duka_http_reply_free(&rep);
        return DUKA_OK;
    }
    answer_reset(a);
    const char *why = transport_reason(herr.msg, url);
    switch (hrc) {
    case DUKA_NOMEM:
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s: out of memory", what);
        return duka_err_set(err, DUKA_NOMEM, "%s", a->message);
    case DUKA_OFFLINE:
        if (rep.maybe_delivered)
            verdict(a, DUKA_ETIMS_UNCLEAR,
                    "no answer from eTIMS at %s (it may have arrived): %s", url, why);
        else
            verdict(a, DUKA_ETIMS_OFFLINE, "eTIMS unreachable at %s: %s", url, why);
        return DUKA_OK;
    case DUKA_AUTH: /* TLS failed before the request was sent */
        verdict(a, DUKA_ETIMS_OFFLINE, "eTIMS at %s: %s", url, why);
        return DUKA_OK;
    case DUKA_PROTOCOL: /* a reply beyond the HTTP client's own limit */
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS %s reply too large: more than %u bytes", what,
                DUKA_HTTP_REPLY_MAX_BYTES);
        return DUKA_OK;
    default:
        return request_invalid(a, err, "eTIMS %s: %s", what, herr.msg);
    }
}

duka_rc duka_etims_init_device(const duka_etims_conf *c, const char *tin, const char *bhf_id,
                               const char *dvc_srl_no, duka_etims_device *out,
                               duka_etims_answer *a, duka_err *err)
{
    answer_reset(a);
    duka_etims_device dev;
    memset(&dev, 0, sizeof(dev));
    if (!graphic_ascii(tin, sizeof(dev.tin) - 1) || !graphic_ascii(bhf_id, sizeof(dev.bhf_id) - 1) ||
        !graphic_ascii(dvc_srl_no, sizeof(dev.dvc_srl_no) - 1))
        return request_invalid(a, err,
                               "eTIMS selectInitOsdcInfo: tin, bhfId or the device serial is "
                               "empty, too long or not printable ASCII");
    snprintf(dev.tin, sizeof(dev.tin), "%s", tin);
    snprintf(dev.bhf_id, sizeof(dev.bhf_id), "%s", bhf_id);
    snprintf(dev.dvc_srl_no, sizeof(dev.dvc_srl_no), "%s", dvc_srl_no);
    char *body = NULL;
    json_t *o = json_pack("{s:s, s:s, s:s}", "tin", tin, "bhfId", bhf_id, "dvcSrlNo", dvc_srl_no);
    if (o != NULL)
        body = json_dumps(o, DUKA_ETIMS_JSON_FLAGS);
    json_decref(o);
    if (body == NULL) {
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS selectInitOsdcInfo: out of memory");
        return duka_err_set(err, DUKA_NOMEM, "%s", a->message);
    }
    duka_rc rc = post(c, NULL, KIND_INIT, PATH_INIT, body, a, &dev, err);
    free(body);
    if (rc == DUKA_OK && a->verdict == DUKA_ETIMS_OK)
        *out = dev;
    return rc;
}

/* body_json with invcNo and orgInvcNo first, as text (the caller's to free), or NULL. */
static char *numbered_body(const char *body_json, int64_t invc_no, int64_t org_invc_no,
                           bool *not_object)
{
    *not_object = false;
    json_error_t jerr;
    json_t *in = json_loads(body_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(in)) {
        *not_object = in != NULL || json_error_code(&jerr) != json_error_out_of_memory;
        json_decref(in);
        return NULL;
    }
    json_t *out = json_object();
    bool ok = out != NULL && json_object_set_new(out, "invcNo", json_integer(invc_no)) == 0 &&
              json_object_set_new(out, "orgInvcNo", json_integer(org_invc_no)) == 0;
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        if (!ok)
            break;
        if (strcmp(key, "invcNo") == 0 || strcmp(key, "orgInvcNo") == 0)
            continue;
        ok = json_object_set(out, key, v) == 0;
    }
    char *text = ok ? json_dumps(out, DUKA_ETIMS_JSON_FLAGS) : NULL;
    json_decref(out);
    json_decref(in);
    return text;
}

duka_rc duka_etims_save(const duka_etims_conf *c, const duka_etims_device *d,
                        const char *body_json, int64_t invc_no, int64_t org_invc_no,
                        duka_etims_answer *a, duka_err *err)
{
    assert(invc_no >= 1 && org_invc_no >= 0);
    answer_reset(a);
    bool not_object = false;
    char *body = numbered_body(body_json, invc_no, org_invc_no, &not_object);
    if (body == NULL) {
        if (not_object)
            return request_invalid(a, err, "eTIMS saveTrnsSalesOsdc: invoice %" PRId64
                                   " has a stored body that is not a JSON object", invc_no);
        verdict(a, DUKA_ETIMS_RETRY, "eTIMS saveTrnsSalesOsdc: out of memory");
        return duka_err_set(err, DUKA_NOMEM, "%s", a->message);
    }
    duka_rc rc = post(c, d, KIND_SAVE, PATH_SAVE, body, a, NULL, err);
    free(body);
    return rc;
}

duka_rc duka_etims_select(const duka_etims_conf *c, const duka_etims_device *d,
                          int64_t invc_no, duka_etims_answer *a, duka_err *err)
{
    assert(invc_no >= 1);
    answer_reset(a);
    char body[64];
    snprintf(body, sizeof(body), "{\"invcNo\":%" PRId64 "}", invc_no);
    duka_rc rc = post(c, d, KIND_SELECT, PATH_SELECT, body, a, NULL, err);
    if (rc == DUKA_OK && a->verdict == DUKA_ETIMS_OK && a->found_invc_no >= 0 &&
        a->found_invc_no != invc_no) {
        int64_t found = a->found_invc_no;
        answer_reset(a);
        a->http_status = 200;
        snprintf(a->result_cd, sizeof(a->result_cd), "000");
        verdict(a, DUKA_ETIMS_RETRY,
                "eTIMS selectInvoiceDetails for invcNo %" PRId64 " answered invcNo %" PRId64,
                invc_no, found);
    }
    return rc;
}
