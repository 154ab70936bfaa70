/*
 * etims_receipt.h — the KRA eTIMS signatures of this till's receipts (issue 12).
 *
 * The till never talks to eTIMS: the hub forwards each sale to the control unit and hands the
 * signature back in the pull (docs/PROTOCOL.md, "invoices" and "services"). This file applies
 * those two members, keeps one signature per receipt (table etims_receipts, schema version 4)
 * and reads it back for the receipt (sale_view.h), the sale's JSON, its QR code and the status.
 * A receipt without a row is "eTIMS: pending": nothing here ever makes a signature up.
 *
 * Workload: a page of at most DUKA_ETIMS_PULL_LIST_MAX signatures, checked whole and written
 * in one transaction (a few ms); a receipt reads one row by its key; the status counts the
 * sales and the signatures once a second (two count(*) of b-trees).
 *
 * Every function takes the till's connection and keeps no pointer to its arguments.
 */
#ifndef DUKA_ETIMS_RECEIPT_H
#define DUKA_ETIMS_RECEIPT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"

/* Bounds of what a pull may carry (each also a CHECK of etims_receipts). */
#define DUKA_ETIMS_PULL_LIST_MAX 500   /* invoices per page: the hub sends at most 500 */
#define DUKA_ETIMS_ID_MAX 32           /* sdc_id "KRACU0100000001", mrc_no "WIS00000001" */
#define DUKA_ETIMS_CU_INVOICE_NO_MAX 64 /* "<sdc_id>/<invc_no>" */
#define DUKA_ETIMS_CODE_MAX 64         /* intrl_data (26 in OSCU), rcpt_sign (16) */
#define DUKA_ETIMS_QR_URL_MAX 512      /* the verification URL the QR code holds */
#define DUKA_ETIMS_NUMBER_MAX 9007199254740991LL /* 2^53 - 1: a JSON number stays exact */
_Static_assert(DUKA_ETIMS_CU_INVOICE_NO_MAX >= DUKA_ETIMS_ID_MAX + 1 + 16,
               "a CU invoice number is the SCU id, '/', and a number of up to 16 digits");

/* One receipt's signature, as stored. Strings are NUL-terminated ASCII. */
typedef struct duka_etims_receipt {
    char receipt_no[DUKA_RECEIPT_NO_MAX + 1];
    int64_t seq;                /* the hub's invoice sequence it came with */
    char kind[12];              /* "sale" | "credit_note" */
    char cu_invoice_no[DUKA_ETIMS_CU_INVOICE_NO_MAX + 1];
    char sdc_id[DUKA_ETIMS_ID_MAX + 1];
    int64_t invc_no, rcpt_no, tot_rcpt_no; /* rcpt_no: curRcptNo, tot_rcpt_no: totRcptNo */
    char intrl_data[DUKA_ETIMS_CODE_MAX + 1];
    char rcpt_sign[DUKA_ETIMS_CODE_MAX + 1];
    char signed_at[20];         /* "YYYY-MM-DD HH:MM:SS", the control unit's date and time */
    char mrc_no[DUKA_ETIMS_ID_MAX + 1];
    char qr_url[DUKA_ETIMS_QR_URL_MAX + 1];
    int64_t received_ms;        /* when this till stored it */
    /* A credit note's original: the CU invoice number of the refunded sale's signature, as
     * this till holds it (read with the credit note, "" when none). */
    char org_cu_invoice_no[DUKA_ETIMS_CU_INVOICE_NO_MAX + 1];
} duka_etims_receipt;

/* What one page's members did. */
typedef struct duka_etims_pull_result {
    int stored;          /* signatures written (new or replaced by a later seq) */
    int ignored;         /* of receipts this till does not hold (or held with another kind) */
    int64_t cursor;      /* the invoice cursor after the page */
    bool more;           /* invoices.more: ask again */
    bool services_seen;  /* a services.etims member was there (and stored) */
} duka_etims_pull_result;

/* The invoice cursor to send (`invoice_cursor=K`): 0 before the first page. */
duka_rc duka_etims_invoice_cursor(sqlite3 *db, int64_t *cursor, duka_err *err);

/* Applies a pull reply's `invoices` ({"cursor","more","list":[…]}, docs/PROTOCOL.md) and
 * `services` ({"etims":{"state","since_ms","pending"[,"oldest_pending_ms"]}}) members in ONE
 * transaction: the signatures, the cursor and the eTIMS state together or not at all. Either
 * may be NULL (absent: nothing of it changes; both absent: no transaction at all).
 *
 * Both are checked whole before anything is written: every field of every entry (types,
 * lengths, character sets, cu_invoice_no = sdc_id "/" invc_no, 1 <= rcpt_no <= tot_rcpt_no,
 * signed_at "YYYY-MM-DD HH:MM:SS", qr_url http(s) ending in rcpt_sign, seq strictly rising,
 * cursor >= every seq and >= the stored cursor). A malformed member is DUKA_PROTOCOL naming
 * the field ("hub pull reply: invoices.list[3].rcpt_sign is missing or not valid") and
 * nothing changes. A well-formed entry for a receipt this till does not hold is skipped and
 * counted in out->ignored (so is one whose receipt already has a signature of the other kind);
 * the cursor still moves past it. Applying the same page again changes nothing but
 * received_ms. now_ms stamps received_ms and etims_seen_ms. out may be NULL. */
duka_rc duka_etims_apply_pull(sqlite3 *db, const json_t *invoices, const json_t *services,
                              int64_t now_ms, duka_etims_pull_result *out, duka_err *err);

/* The signature of receipt_no into *out; *found false (and *out zeroed) when it has none. */
duka_rc duka_etims_receipt_load(sqlite3 *db, const char *receipt_no, duka_etims_receipt *out,
                                bool *found, duka_err *err);

/* {"kind","cu_invoice_no","sdc_id","invc_no","rcpt_no","tot_rcpt_no","intrl_data",
 *  "rcpt_sign","signed_at","mrc_no","qr_url","received_ms"}; json null for NULL r. The caller
 * owns the reference. */
json_t *duka_etims_receipt_json(const duka_etims_receipt *r);

/* text in groups of 4 joined by '-' ("ABCD-EFGH-IJ") into out (NUL-terminated, truncated to
 * n), as the control-unit block prints intrl_data and rcpt_sign. */
void duka_etims_group4(const char *text, char *out, size_t n);

/* The QR code of text (the verification URL) as an SVG document: libqrencode, error
 * correction M, one dark path, a 4-module quiet zone, 4 user units per module. *svg is
 * malloc'ed (the caller frees it), *len its length; *modules (may be NULL) the symbol's width
 * in modules without the quiet zone (17 + 4 x version). DUKA_INPUT when text cannot be
 * encoded (empty or too long), DUKA_NOMEM. */
duka_rc duka_etims_qr_svg(const char *text, char **svg, size_t *len, int *modules,
                          duka_err *err);

/* The same QR code for a terminal: lines of Unicode half blocks (UTF-8), two module rows per
 * line, light modules drawn so it reads dark on light on a dark terminal (`duka demo`).
 * *out is malloc'ed. */
duka_rc duka_etims_qr_terminal(const char *text, char **out, duka_err *err);

/* The hub's view of eTIMS, as the last services.etims member said it. */
typedef struct duka_etims_service {
    bool known;          /* false until a pull brought one: state "" */
    char state[12];      /* "online" | "degraded" | "offline" | "off" */
    int64_t since_ms;    /* since when */
    int64_t pending;     /* the business's invoices not signed yet, at the hub */
    int64_t seen_ms;     /* when the till received it */
} duka_etims_service;

duka_rc duka_etims_service_load(sqlite3 *db, duka_etims_service *out, duka_err *err);

/* This till's sales with no signature (all of them until the first arrives). */
duka_rc duka_etims_unsigned_count(sqlite3 *db, int64_t *count, duka_err *err);

#endif
