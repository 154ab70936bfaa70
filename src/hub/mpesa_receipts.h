/*
 * mpesa_receipts.h — the M-Pesa payments Safaricom told the hub about, per business, by
 * receipt number (MpesaReceiptNumber = TransID): C2B confirmations, STK callbacks and
 * transaction status results. A receipt is kept once however often it is reported (the same
 * payment can come as an STK callback and as a C2B confirmation, and either can come twice),
 * and is credited to at most one sale: the typed-code verification (payments/mpesa/
 * mpesa_sender.c) credits it, and a second sale naming it is flagged.
 *
 * Both hub stores (SQLite, PostgreSQL with row-level security per business) hold the table;
 * each call is one statement, in the caller's transaction or its own.
 */
#ifndef DUKA_HUB_MPESA_RECEIPTS_H
#define DUKA_HUB_MPESA_RECEIPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"
#include "hub/hub_store.h"
#include "payments/mpesa/daraja_client.h"

typedef struct duka_mpesa_receipt {
    duka_mpesa_payment p;
    char source[12];                                /* "c2b" | "stk" | "status" */
    char credited_to[DUKA_RECEIPT_NO_MAX + 1];      /* the sale it pays; "" when none */
    int64_t credited_ms, received_ms;
} duka_mpesa_receipt;

/* Keeps the payment p reported by source unless the business has its receipt already
 * (*inserted false then, and nothing changes: the first report stands). */
duka_rc duka_hub_mpesa_receipt_put(duka_hub_store *s, const char *business_id,
                                   const duka_mpesa_payment *p, const char *source,
                                   int64_t now_ms, bool *inserted, duka_err *err);
/* The business's receipt; *found false when it has none. */
duka_rc duka_hub_mpesa_receipt_get(duka_hub_store *s, const char *business_id,
                                   const char *receipt, duka_mpesa_receipt *out, bool *found,
                                   duka_err *err);
/* Credits receipt to sale_receipt_no unless it is credited to another sale already; holder
 * gets the sale it is credited to after the call (sale_receipt_no when this call or an
 * earlier one for the same sale credited it). DUKA_NOTFOUND when the business has no such
 * receipt. */
duka_rc duka_hub_mpesa_receipt_credit(duka_hub_store *s, const char *business_id,
                                      const char *receipt, const char *sale_receipt_no,
                                      int64_t now_ms, char holder[DUKA_RECEIPT_NO_MAX + 1],
                                      duka_err *err);

#endif
