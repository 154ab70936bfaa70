/*
 * sale_view.h — what the cashier and the customer see of a committed sale: the reply of
 * `duka sell --json` and POST /api/sales (one builder, so both say the same), the printed
 * receipt (plain text, 40 columns: 80 mm thermal paper at 12 cpi, and what `duka receipt`
 * reprints), and reading a sale back from the till's database.
 */
#ifndef DUKA_SALE_VIEW_H
#define DUKA_SALE_VIEW_H

#include <jansson.h>
#include <sqlite3.h>

#include "common/error.h"
#include "protocol/sale.h"
#include "till/checkout.h"
#include "till/etims_receipt.h"

#define DUKA_RECEIPT_WIDTH 40
#define DUKA_RECEIPT_TEXT_MAX (64 * 1024) /* 500 lines of two rows each fit */

/* The header of a receipt: the shop as the hub knows it ("" until the first pull brings it). */
typedef struct duka_receipt_shop {
    char name[DUKA_BUSINESS_NAME_MAX + 1];
    char kra_pin[16];
} duka_receipt_shop;

/* Reads the shop's name and KRA PIN the till last pulled (empty strings when none yet). */
duka_rc duka_receipt_shop_load(sqlite3 *db, duka_receipt_shop *out, duka_err *err);

/* The state of a sale's payments as one word: flagged when the hub flagged any M-Pesa code,
 * else pending_verification when any M-Pesa payment is, else pending_capture when any card
 * payment is, else captured (verified M-Pesa payments count as captured). */
const char *duka_sale_payment_status(const duka_sale *sale);

/* {"receipt_no","total","tax","sync":"pending","command_id","payment_status","change",
 *  "payments":[{"method","amount","reference","status"[,"tendered"][,"note"]}],"warnings":[{"code",
 *  "message"}],"cashier":{"id","name"}|null} — amounts in cents. res may be NULL (a reprint: no change, no warnings). */
json_t *duka_sale_reply_json(const duka_sale *sale, const duka_checkout_result *res);

/* What the web UI's receipt shows besides the reply: {"lines":[{"sku","name","qty_milli",
 * "unit_price","tax_band","total","tax"}],"bands":[{"band","rate","gross","tax"}],"created",
 * "created_ms","terminal","etims"} (cents). "etims" is the receipt's control-unit signature
 * (duka_etims_receipt_json) or null while it is pending (etims NULL). */
json_t *duka_sale_detail_json(const duka_sale *sale, const duka_etims_receipt *etims);

/* The receipt as text into buf (NUL-terminated, truncated to buflen). Times in the process's
 * time zone (the shop's: duka_config_apply_timezone). Under the date "Cashier: NAME" when the
 * sale has one. Lines: unit price x quantity and the
 * line total with its band, the total, VAT per band, each payment (M-Pesa code, card
 * reference, cash tendered and change), warnings, then "eTIMS: pending" and sync_state (the
 * sale's outbox status: "pending", "done" …; NULL leaves it out). Never a signature: a
 * signed receipt is duka_receipt_text_etims. */
void duka_receipt_text(const duka_sale *sale, const duka_receipt_shop *shop,
                       const duka_checkout_result *res, const char *sync_state, char *buf,
                       size_t buflen);

/* The same receipt with its eTIMS control-unit block when etims is not NULL: in place of
 * "eTIMS: pending", "eTIMS: signed" and the block (the document, "CU invoice no:
 * KRACU0100000001/17", "SCU ID:", "CU date/time:", "Receipt no: 17/17" — curRcptNo/totRcptNo
 * —, "MRC no:", "Internal data:" and "Receipt signature:" in groups of 4, then the
 * verification URL the QR code holds, cut into lines of DUKA_RECEIPT_WIDTH). etims NULL is
 * duka_receipt_text exactly. */
void duka_receipt_text_etims(const duka_sale *sale, const duka_receipt_shop *shop,
                             const duka_checkout_result *res, const char *sync_state,
                             const duka_etims_receipt *etims, char *buf, size_t buflen);

/* The outbox status of the command that forwards the sale receipt_no ("pending", "done",
 * "failed" …) into out; "unknown" when the till no longer keeps it (retention). */
duka_rc duka_till_sale_sync_state(sqlite3 *db, const char *receipt_no, char *out, size_t n,
                                  duka_err *err);

/* Loads the committed sale with receipt_no from the till's database. DUKA_NOTFOUND when it
 * has none. */
duka_rc duka_till_sale_load(sqlite3 *db, const char *receipt_no, duka_sale *out, duka_err *err);

#endif
