/*
 * refund.h — giving back (part of) a sale on the till: a refund receipt, offline like a sale.
 *
 * The cashier names a sale of this till by its receipt number and, per line to give back,
 * the line (1-based, as printed) and the quantity. duka_refund_commit() checks it against the
 * sale and the refunds already made of it (never more than sold, per line, in quantity and
 * in money), and writes in ONE transaction, as checkout.h writes a sale: the next receipt
 * number of the till's series, the refund (kind 'refund' in sales, its lines, the money given
 * back as a payment of status "refunded") and its "refund.create" outbox command, which
 * follows the sale to the hub in the same stream. No network: the till holds its own sales.
 *
 * A refund line gives back the sale's line at the sale's unit price and tax band; its amount
 * is unit price x quantity, except that it never exceeds what is left of the line's total, so
 * the parts of a line add up to at most the line (rounding can leave a cent that a last part
 * of a fractional quantity cannot give back). The hub checks the same within the original
 * with every till's refunds (hub_push.c) and eTIMS gets a credit note (rcptTyCd R).
 */
#ifndef DUKA_REFUND_H
#define DUKA_REFUND_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "protocol/sale.h"
#include "till/cashier.h"
#include "till/checkout.h"

typedef struct duka_refund_line_input {
    int line;          /* the sale's line, 1-based */
    int64_t qty_milli; /* 1..DUKA_QTY_MILLI_MAX */
} duka_refund_line_input;

typedef struct duka_refund_input {
    char receipt_no[DUKA_RECEIPT_NO_MAX + 1]; /* the sale */
    char reason[3];                           /* "01".."06"; "" = DUKA_REFUND_REASON_DEFAULT */
    char refund_to[8];                        /* cash | mpesa | card; "" = cash */
    int line_count;
    duka_refund_line_input lines[DUKA_SALE_LINES_MAX];
} duka_refund_input;

/* Heap allocation (zeroed); NULL on out of memory. */
duka_refund_input *duka_refund_input_new(void);
void duka_refund_input_free(duka_refund_input *in);

/* Appends "LINE" or "LINE*QTY" (QTY as for `duka sell`; absent: the whole of what is left of
 * the line) from the command line. DUKA_INPUT naming lines[index] when malformed. */
duka_rc duka_refund_input_add_line(duka_refund_input *in, const char *text, duka_err *err);

/* Reads a POST /api/refunds body: {"receipt_no", "lines": [{"line": 1, "qty": 1 | "0.5"}],
 * "reason": "06", "refund_to": "cash"} (qty absent: what is left of the line; reason and
 * refund_to may be absent). Unknown members are refused naming the field. */
duka_rc duka_refund_input_from_json(const json_t *body, duka_refund_input *out, duka_err *err);

/* What has been refunded of a sale on this till: per line (index = line - 1) the quantity
 * and the money given back, and the refunds' receipt numbers in order. */
typedef struct duka_refund_state {
    int64_t qty_milli[DUKA_SALE_LINES_MAX];
    int64_t cents[DUKA_SALE_LINES_MAX];
    int refund_count;
    char refunds[DUKA_REFUNDS_PER_SALE_MAX][DUKA_RECEIPT_NO_MAX + 1];
} duka_refund_state;

duka_rc duka_refund_state_load(sqlite3 *db, const char *receipt_no, duka_refund_state *out,
                               duka_err *err);

/* Commits the refund `in` asks for (above). On success *refund (caller-allocated with
 * duka_sale_new) is the committed refund and res->command_id its outbox command. Refused,
 * with nothing written and res->refusal one of invalid_refund (the input, or no line to give
 * back), not_found (no such sale on this till), not_a_sale (the receipt is a refund),
 * refund_exceeds_sale (a line asked beyond what is left of it; the message names the line and
 * what is left), too_many_refunds, not_initialised, store. cashier: who gives it back (NULL:
 * none). */
duka_rc duka_refund_commit(sqlite3 *db, const duka_clock *clock, const duka_refund_input *in,
                           const duka_cashier *cashier, duka_sale *refund,
                           duka_checkout_result *res, duka_err *err);

/* The JSON of a receipt's refund state for the API and `duka receipt --json`: for a sale,
 * "refunds": [numbers] and per line of detail's "lines" "refunded_qty_milli"/"refunded". */
void duka_refund_state_json(const duka_refund_state *st, json_t *detail);

#endif
