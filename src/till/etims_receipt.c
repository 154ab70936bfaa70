/* etims_receipt.c — eTIMS signatures pulled from the hub (see etims_receipt.h). */
#include "till/etims_receipt.h"

#include <qrencode.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "till/till_db.h"

/* ---- checking a member ---- */

static bool upper_alnum(const char *s, size_t lo, size_t hi)
{
    size_t n = strlen(s);
    if (n < lo || n > hi)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* A receipt number as the till makes them: TERMINAL-YYYYMMDD-NNNNN (receipt.h). */
static bool receipt_no_valid(const char *s)
{
    size_t n = strlen(s);
    const char *dash = strchr(s, '-');
    if (n > DUKA_RECEIPT_NO_MAX || dash == NULL || dash == s ||
        (size_t)(dash - s) > DUKA_TERMINAL_ID_MAX)
        return false;
    for (const char *p = s; p < dash; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    const char *day = dash + 1;
    size_t rest = n - (size_t)(day - s);
    return rest >= 14 && digits(day, 8) && day[8] == '-' && digits(day + 9, rest - 9);
}

/* "YYYY-MM-DD HH:MM:SS" with fields in range. */
static bool datetime_valid(const char *s)
{
    if (strlen(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' ||
        s[16] != ':' || !digits(s, 4) || !digits(s + 5, 2) || !digits(s + 8, 2) ||
        !digits(s + 11, 2) || !digits(s + 14, 2) || !digits(s + 17, 2))
        return false;
    int mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    int h = (s[11] - '0') * 10 + (s[12] - '0'), mi = (s[14] - '0') * 10 + (s[15] - '0');
    int se = (s[17] - '0') * 10 + (s[18] - '0');
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && se <= 59;
}

/* An http(s) URL of printable ASCII with no spaces that ends with the signature it proves. */
static bool qr_url_valid(const char *url, const char *rcpt_sign)
{
    size_t n = strlen(url), k = strlen(rcpt_sign);
    if (n > DUKA_ETIMS_QR_URL_MAX || n <= k ||
        (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        return false;
    for (const char *p = url; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return strcmp(url + n - k, rcpt_sign) == 0;
}

static duka_rc bad_field(duka_err *err, size_t i, const char *field)
{
    return duka_err_set(err, DUKA_PROTOCOL,
                        "hub pull reply: invoices.list[%zu].%s is missing or not valid", i, field);
}

/* A string member copied into buf (at most buflen - 1 bytes, no NUL inside). */
static bool take_text(const json_t *o, const char *key, char *buf, size_t buflen)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) >= buflen ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* An integer member in lo..DUKA_ETIMS_NUMBER_MAX. */
static bool take_int(const json_t *o, const char *key, int64_t lo, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > DUKA_ETIMS_NUMBER_MAX)
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

static duka_rc parse_entry(const json_t *o, size_t i, duka_etims_receipt *r, duka_err *err)
{
    memset(r, 0, sizeof(*r));
    if (!json_is_object(o))
        return duka_err_set(err, DUKA_PROTOCOL, "hub pull reply: invoices.list[%zu] is not an object",
                            i);
    if (!take_int(o, "seq", 1, &r->seq))
        return bad_field(err, i, "seq");
    if (!take_text(o, "receipt_no", r->receipt_no, sizeof(r->receipt_no)) ||
        !receipt_no_valid(r->receipt_no))
        return bad_field(err, i, "receipt_no");
    if (!take_text(o, "kind", r->kind, sizeof(r->kind)) ||
        (strcmp(r->kind, "sale") != 0 && strcmp(r->kind, "credit_note") != 0))
        return bad_field(err, i, "kind");
    if (!take_text(o, "sdc_id", r->sdc_id, sizeof(r->sdc_id)) ||
        !upper_alnum(r->sdc_id, 1, DUKA_ETIMS_ID_MAX))
        return bad_field(err, i, "sdc_id");
    if (!take_int(o, "invc_no", 1, &r->invc_no))
        return bad_field(err, i, "invc_no");
    char expect[DUKA_ETIMS_CU_INVOICE_NO_MAX + 1];
    snprintf(expect, sizeof(expect), "%s/%lld", r->sdc_id, (long long)r->invc_no);
    if (!take_text(o, "cu_invoice_no", r->cu_invoice_no, sizeof(r->cu_invoice_no)) ||
        strcmp(r->cu_invoice_no, expect) != 0)
        return bad_field(err, i, "cu_invoice_no");
    if (!take_int(o, "rcpt_no", 1, &r->rcpt_no))
        return bad_field(err, i, "rcpt_no");
    if (!take_int(o, "tot_rcpt_no", 1, &r->tot_rcpt_no) || r->tot_rcpt_no < r->rcpt_no)
        return bad_field(err, i, "tot_rcpt_no");
    if (!take_text(o, "intrl_data", r->intrl_data, sizeof(r->intrl_data)) ||
        !upper_alnum(r->intrl_data, 1, DUKA_ETIMS_CODE_MAX))
        return bad_field(err, i, "intrl_data");
    if (!take_text(o, "rcpt_sign", r->rcpt_sign, sizeof(r->rcpt_sign)) ||
        !upper_alnum(r->rcpt_sign, 1, DUKA_ETIMS_CODE_MAX))
        return bad_field(err, i, "rcpt_sign");
    if (!take_text(o, "signed_at", r->signed_at, sizeof(r->signed_at)) ||
        !datetime_valid(r->signed_at))
        return bad_field(err, i, "signed_at");
    if (!take_text(o, "mrc_no", r->mrc_no, sizeof(r->mrc_no)) ||
        !upper_alnum(r->mrc_no, 1, DUKA_ETIMS_ID_MAX))
        return bad_field(err, i, "mrc_no");
    if (!take_text(o, "qr_url", r->qr_url, sizeof(r->qr_url)) ||
        !qr_url_valid(r->qr_url, r->rcpt_sign))
        return bad_field(err, i, "qr_url");
    return DUKA_OK;
}

/* The invoices member whole: entries into list (DUKA_ETIMS_PULL_LIST_MAX of them). */
static duka_rc parse_invoices(const json_t *m, int64_t stored_cursor, duka_etims_receipt *list,
                              size_t *n, int64_t *cursor, bool *more, duka_err *err)
{
    const json_t *l = json_object_get(m, "list");
    const json_t *mo = json_object_get(m, "more");
    if (!json_is_object(m) || !take_int(m, "cursor", 0, cursor))
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: invoices.cursor is missing or not valid");
    if (*cursor < stored_cursor)
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: invoices.cursor %lld is behind this till's %lld",
                            (long long)*cursor, (long long)stored_cursor);
    if (!json_is_boolean(mo))
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: invoices.more is missing or not valid");
    if (!json_is_array(l) || json_array_size(l) > DUKA_ETIMS_PULL_LIST_MAX)
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: invoices.list is not an array of at most %d",
                            DUKA_ETIMS_PULL_LIST_MAX);
    *more = json_is_true(mo);
    *n = json_array_size(l);
    for (size_t i = 0; i < *n; i++) {
        if (parse_entry(json_array_get(l, i), i, &list[i], err) != DUKA_OK)
            return DUKA_PROTOCOL;
        if ((i > 0 && list[i].seq <= list[i - 1].seq) || list[i].seq > *cursor)
            return duka_err_set(err, DUKA_PROTOCOL,
                                "hub pull reply: invoices.list[%zu].seq %lld is out of order",
                                i, (long long)list[i].seq);
    }
    return DUKA_OK;
}

static duka_rc parse_services(const json_t *m, duka_etims_service *s, bool *present,
                              duka_err *err)
{
    memset(s, 0, sizeof(*s));
    *present = false;
    if (m == NULL)
        return DUKA_OK;
    const json_t *e = json_object_get(m, "etims");
    if (!json_is_object(m))
        return duka_err_set(err, DUKA_PROTOCOL, "hub pull reply: services is not an object");
    if (e == NULL)
        return DUKA_OK; /* a hub with other services and no word on eTIMS */
    const char *state = json_string_value(json_object_get(e, "state"));
    int64_t oldest = 0;
    if (!json_is_object(e) || state == NULL ||
        (strcmp(state, "online") != 0 && strcmp(state, "degraded") != 0 &&
         strcmp(state, "offline") != 0 && strcmp(state, "off") != 0))
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: services.etims.state is missing or not valid");
    if (!take_int(e, "since_ms", 0, &s->since_ms))
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: services.etims.since_ms is missing or not valid");
    if (!take_int(e, "pending", 0, &s->pending))
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: services.etims.pending is missing or not valid");
    if (json_object_get(e, "oldest_pending_ms") != NULL &&
        !take_int(e, "oldest_pending_ms", 0, &oldest))
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: services.etims.oldest_pending_ms is not valid");
    snprintf(s->state, sizeof(s->state), "%s", state);
    s->known = true;
    *present = true;
    return DUKA_OK;
}

/* ---- storing ---- */

static duka_rc meta_int(sqlite3 *db, const char *key, int64_t v, duka_err *err)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)v);
    return duka_meta_set(db, key, text, err);
}

static duka_rc meta_int_get(sqlite3 *db, const char *key, int64_t *v, bool *found, duka_err *err)
{
    char text[32];
    bool f = false;
    *v = 0;
    if (duka_meta_get(db, key, text, sizeof(text), &f, err) != DUKA_OK)
        return DUKA_STORE;
    if (f)
        *v = strtoll(text, NULL, 10);
    if (found != NULL)
        *found = f;
    return DUKA_OK;
}

duka_rc duka_etims_invoice_cursor(sqlite3 *db, int64_t *cursor, duka_err *err)
{
    return meta_int_get(db, DUKA_META_ETIMS_INVOICE_CURSOR, cursor, NULL, err);
}

/* One entry: skipped (counted) unless the till holds the receipt, of the entry's kind (a sale's
 * invoice, a refund's credit note), and it has no signature of the other kind; else inserted
 * or replaced. */
static duka_rc store_entry(sqlite3 *db, const duka_etims_receipt *r, int64_t now_ms,
                           duka_etims_pull_result *res, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db,
                     "SELECT (SELECT kind FROM sales WHERE receipt_no = ?1),"
                     " (SELECT kind FROM etims_receipts WHERE receipt_no = ?1)",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, r->receipt_no);
    int rc = sqlite3_step(st);
    const unsigned char *receipt_kind = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    bool held = receipt_kind != NULL &&
                strcmp((const char *)receipt_kind,
                       strcmp(r->kind, "credit_note") == 0 ? "refund" : "sale") == 0;
    const unsigned char *kind = rc == SQLITE_ROW ? sqlite3_column_text(st, 1) : NULL;
    bool other_kind = kind != NULL && strcmp((const char *)kind, r->kind) != 0;
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW)
        return duka_db_fail(db, "reading the sale of a signature", err);
    if (!held || other_kind) {
        res->ignored++;
        return DUKA_OK;
    }
    if (duka_db_stmt(db,
                     "INSERT INTO etims_receipts(receipt_no, seq, kind, cu_invoice_no, sdc_id,"
                     " invc_no, rcpt_no, tot_rcpt_no, intrl_data, rcpt_sign, signed_at, mrc_no,"
                     " qr_url, received_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
                     " ON CONFLICT(receipt_no) DO UPDATE SET seq = excluded.seq,"
                     " cu_invoice_no = excluded.cu_invoice_no, sdc_id = excluded.sdc_id,"
                     " invc_no = excluded.invc_no, rcpt_no = excluded.rcpt_no,"
                     " tot_rcpt_no = excluded.tot_rcpt_no, intrl_data = excluded.intrl_data,"
                     " rcpt_sign = excluded.rcpt_sign, signed_at = excluded.signed_at,"
                     " mrc_no = excluded.mrc_no, qr_url = excluded.qr_url,"
                     " received_ms = excluded.received_ms WHERE excluded.seq >= seq",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, r->receipt_no);
    sqlite3_bind_int64(st, 2, r->seq);
    duka_db_bind_text(st, 3, r->kind);
    duka_db_bind_text(st, 4, r->cu_invoice_no);
    duka_db_bind_text(st, 5, r->sdc_id);
    sqlite3_bind_int64(st, 6, r->invc_no);
    sqlite3_bind_int64(st, 7, r->rcpt_no);
    sqlite3_bind_int64(st, 8, r->tot_rcpt_no);
    duka_db_bind_text(st, 9, r->intrl_data);
    duka_db_bind_text(st, 10, r->rcpt_sign);
    duka_db_bind_text(st, 11, r->signed_at);
    duka_db_bind_text(st, 12, r->mrc_no);
    duka_db_bind_text(st, 13, r->qr_url);
    sqlite3_bind_int64(st, 14, now_ms);
    rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "storing an eTIMS signature", err);
    res->stored += sqlite3_changes(db) > 0;
    return DUKA_OK;
}

duka_rc duka_etims_apply_pull(sqlite3 *db, const json_t *invoices, const json_t *services,
                              int64_t now_ms, duka_etims_pull_result *out, duka_err *err)
{
    duka_etims_pull_result res = {0};
    duka_etims_receipt *list = NULL;
    duka_etims_service svc;
    size_t n = 0;
    bool svc_present = false;
    duka_rc result = duka_etims_invoice_cursor(db, &res.cursor, err);
    if (out != NULL)
        *out = res;
    if (result != DUKA_OK)
        return result;
    if (invoices == NULL && services == NULL)
        return DUKA_OK;
    if (invoices != NULL &&
        (list = calloc(DUKA_ETIMS_PULL_LIST_MAX, sizeof(*list))) == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory reading the eTIMS signatures");
    if (invoices != NULL &&
        (result = parse_invoices(invoices, res.cursor, list, &n, &res.cursor, &res.more, err)) !=
            DUKA_OK)
        goto out;
    if ((result = parse_services(services, &svc, &svc_present, err)) != DUKA_OK)
        goto out;
    res.services_seen = svc_present;
    result = DUKA_STORE;
    if (duka_db_begin(db, err) != DUKA_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (store_entry(db, &list[i], now_ms, &res, err) != DUKA_OK)
            goto rollback;
    if (invoices != NULL && meta_int(db, DUKA_META_ETIMS_INVOICE_CURSOR, res.cursor, err))
        goto rollback;
    if (svc_present && (duka_meta_set(db, DUKA_META_ETIMS_STATE, svc.state, err) ||
                        meta_int(db, DUKA_META_ETIMS_SINCE_MS, svc.since_ms, err) ||
                        meta_int(db, DUKA_META_ETIMS_PENDING, svc.pending, err) ||
                        meta_int(db, DUKA_META_ETIMS_SEEN_MS, now_ms, err)))
        goto rollback;
    if (duka_db_commit(db, err) != DUKA_OK)
        goto rollback;
    result = DUKA_OK;
    if (out != NULL)
        *out = res;
    goto out;
rollback:
    duka_db_rollback(db);
out:
    free(list);
    return result;
}

/* ---- reading ---- */

duka_rc duka_etims_receipt_load(sqlite3 *db, const char *receipt_no, duka_etims_receipt *r,
                                bool *found, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    memset(r, 0, sizeof(*r));
    *found = false;
    if (duka_db_stmt(db,
                     "SELECT e.receipt_no, e.seq, e.kind, e.cu_invoice_no, e.sdc_id, e.invc_no,"
                     " e.rcpt_no, e.tot_rcpt_no, e.intrl_data, e.rcpt_sign, e.signed_at,"
                     " e.mrc_no, e.qr_url, e.received_ms, coalesce((SELECT o.cu_invoice_no"
                     "   FROM sales r JOIN etims_receipts o ON o.receipt_no = r.original_receipt_no"
                     "  WHERE r.receipt_no = e.receipt_no), '')"
                     " FROM etims_receipts e WHERE e.receipt_no = ?1",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, receipt_no);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        duka_db_column_copy(st, 0, r->receipt_no, sizeof(r->receipt_no));
        r->seq = sqlite3_column_int64(st, 1);
        duka_db_column_copy(st, 2, r->kind, sizeof(r->kind));
        duka_db_column_copy(st, 3, r->cu_invoice_no, sizeof(r->cu_invoice_no));
        duka_db_column_copy(st, 4, r->sdc_id, sizeof(r->sdc_id));
        r->invc_no = sqlite3_column_int64(st, 5);
        r->rcpt_no = sqlite3_column_int64(st, 6);
        r->tot_rcpt_no = sqlite3_column_int64(st, 7);
        duka_db_column_copy(st, 8, r->intrl_data, sizeof(r->intrl_data));
        duka_db_column_copy(st, 9, r->rcpt_sign, sizeof(r->rcpt_sign));
        duka_db_column_copy(st, 10, r->signed_at, sizeof(r->signed_at));
        duka_db_column_copy(st, 11, r->mrc_no, sizeof(r->mrc_no));
        duka_db_column_copy(st, 12, r->qr_url, sizeof(r->qr_url));
        r->received_ms = sqlite3_column_int64(st, 13);
        duka_db_column_copy(st, 14, r->org_cu_invoice_no, sizeof(r->org_cu_invoice_no));
    }
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(db, "reading an eTIMS signature", err);
    return DUKA_OK;
}

json_t *duka_etims_receipt_json(const duka_etims_receipt *r)
{
    if (r == NULL)
        return json_null();
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:I}", "kind", r->kind,
        "cu_invoice_no", r->cu_invoice_no, "sdc_id", r->sdc_id, "invc_no", (json_int_t)r->invc_no,
        "rcpt_no", (json_int_t)r->rcpt_no, "tot_rcpt_no", (json_int_t)r->tot_rcpt_no,
        "intrl_data", r->intrl_data, "rcpt_sign", r->rcpt_sign, "signed_at", r->signed_at,
        "mrc_no", r->mrc_no, "qr_url", r->qr_url, "received_ms", (json_int_t)r->received_ms);
    if (o != NULL && r->org_cu_invoice_no[0] != '\0')
        json_object_set_new(o, "org_cu_invoice_no", json_string(r->org_cu_invoice_no));
    return o;
}

void duka_etims_group4(const char *text, char *out, size_t n)
{
    size_t k = 0;
    if (n == 0)
        return;
    for (size_t i = 0; text[i] != '\0' && k + 1 < n; i++) {
        if (i > 0 && i % 4 == 0) {
            out[k++] = '-';
            if (k + 1 >= n)
                break;
        }
        out[k++] = text[i];
    }
    out[k] = '\0';
}

/* ---- the QR code ---- */

#define QR_QUIET_MODULES 4
#define QR_UNIT 4 /* user units per module: whole numbers everywhere, crisp at any scale */

typedef struct svg_buf {
    char *p;
    size_t n, cap;
    bool failed;
} svg_buf;

static void svg_put(svg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void svg_put(svg_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

duka_rc duka_etims_qr_svg(const char *text, char **svg, size_t *len, int *modules,
                          duka_err *err)
{
    *svg = NULL;
    *len = 0;
    if (text == NULL || text[0] == '\0' || strlen(text) > DUKA_ETIMS_QR_URL_MAX)
        return duka_err_set(err, DUKA_INPUT, "no text to put in a QR code");
    /* Version 0: the smallest symbol that holds the text; 8-bit mode, case kept. */
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL)
        return duka_err_set(err, DUKA_INPUT, "the text does not fit in a QR code");
    int w = qr->width, side = (w + 2 * QR_QUIET_MODULES) * QR_UNIT;
    svg_buf b = {malloc(8192), 0, 8192, false};
    b.failed = b.p == NULL;
    svg_put(&b,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 %d %d\""
            " width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\""
            " data-modules=\"%d\" data-version=\"%d\">\n"
            "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n<path fill=\"#000\" d=\"",
            side, side, side, side, w, qr->version, side, side);
    /* One horizontal run of dark modules per sub-path: a few hundred, not a rect each. */
    for (int y = 0; y < w; y++)
        for (int x = 0; x < w;) {
            if (!(qr->data[y * w + x] & 1)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < w && (qr->data[y * w + x + run] & 1))
                run++;
            svg_put(&b, "M%d %dh%dv%dh-%dz", (x + QR_QUIET_MODULES) * QR_UNIT,
                    (y + QR_QUIET_MODULES) * QR_UNIT, run * QR_UNIT, QR_UNIT, run * QR_UNIT);
            x += run;
        }
    svg_put(&b, "\"/>\n</svg>\n");
    if (modules != NULL)
        *modules = w;
    QRcode_free(qr);
    if (b.failed) {
        free(b.p);
        return duka_err_set(err, DUKA_NOMEM, "out of memory drawing a QR code");
    }
    *svg = b.p;
    *len = b.n;
    return DUKA_OK;
}

duka_rc duka_etims_qr_terminal(const char *text, char **out, duka_err *err)
{
    *out = NULL;
    if (text == NULL || text[0] == '\0' || strlen(text) > DUKA_ETIMS_QR_URL_MAX)
        return duka_err_set(err, DUKA_INPUT, "no text to put in a QR code");
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL)
        return duka_err_set(err, DUKA_INPUT, "the text does not fit in a QR code");
    /* Light modules are drawn (full block, upper or lower half), dark ones left blank: on a
     * dark terminal the symbol then reads dark-on-light, as a scanner wants. Two rows of
     * modules per line, a 2-module quiet zone. */
    const int q = 2, w = qr->width, side = w + 2 * q;
    size_t cap = (size_t)((side + 1) / 2) * ((size_t)side * 3 + 1) + 1;
    char *b = malloc(cap);
    if (b == NULL) {
        QRcode_free(qr);
        return duka_err_set(err, DUKA_NOMEM, "out of memory drawing a QR code");
    }
    size_t n = 0;
    for (int y = 0; y < side; y += 2) {
        for (int x = 0; x < side; x++) {
            int xm = x - q, y1 = y - q, y2 = y + 1 - q;
            bool top = xm >= 0 && xm < w && y1 >= 0 && y1 < w && (qr->data[y1 * w + xm] & 1);
            bool bottom = xm >= 0 && xm < w && y2 >= 0 && y2 < w && (qr->data[y2 * w + xm] & 1);
            const char *glyph = !top && !bottom ? "\xe2\x96\x88"   /* █ both light */
                                : !top          ? "\xe2\x96\x80"   /* ▀ top light */
                                : !bottom       ? "\xe2\x96\x84"   /* ▄ bottom light */
                                                : " ";
            size_t g = strlen(glyph);
            memcpy(b + n, glyph, g);
            n += g;
        }
        b[n++] = '\n';
    }
    b[n] = '\0';
    QRcode_free(qr);
    *out = b;
    return DUKA_OK;
}

/* ---- the hub's view and the count ---- */

duka_rc duka_etims_service_load(sqlite3 *db, duka_etims_service *s, duka_err *err)
{
    bool found = false;
    memset(s, 0, sizeof(*s));
    if (duka_meta_get(db, DUKA_META_ETIMS_STATE, s->state, sizeof(s->state), &found, err) ||
        meta_int_get(db, DUKA_META_ETIMS_SINCE_MS, &s->since_ms, NULL, err) ||
        meta_int_get(db, DUKA_META_ETIMS_PENDING, &s->pending, NULL, err) ||
        meta_int_get(db, DUKA_META_ETIMS_SEEN_MS, &s->seen_ms, NULL, err))
        return DUKA_STORE;
    s->known = found && s->state[0] != '\0';
    return DUKA_OK;
}

duka_rc duka_etims_unsigned_count(sqlite3 *db, int64_t *count, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    *count = 0;
    /* Every row of etims_receipts references a receipt (foreign key, one per receipt: a sale's
     * invoice or a refund's credit note), so the difference of two counts is the unsigned
     * receipts: no join over the whole sales table. */
    if (duka_db_stmt(db,
                     "SELECT (SELECT count(*) FROM sales) - (SELECT count(*) FROM etims_receipts)",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW)
        return duka_db_fail(db, "counting the unsigned sales", err);
    return DUKA_OK;
}
