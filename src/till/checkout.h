/*
 * checkout.h — committing a sale on the till: the heart of "no sale is ever lost".
 *
 * duka_checkout_commit() writes, in ONE SQLite transaction (BEGIN IMMEDIATE ... COMMIT with
 * synchronous=FULL): the receipt counter, the sale, its lines, its payments and the outbox
 * command that forwards it to the hub. When it returns DUKA_OK the sale is on disk and will
 * reach the hub; only then may the receipt number be shown. It never touches the network.
 */
#ifndef DUKA_CHECKOUT_H
#define DUKA_CHECKOUT_H

#include <sqlite3.h>

#include "common/clock.h"
#include "common/error.h"
#include "protocol/sale.h"
#include "till/cashier.h"
#include "till/sale_input.h"
#include "till/till_db.h"

/* How a sale is checked before it commits (from the till's settings), and who rings it up. */
typedef struct duka_checkout_options {
    int64_t line_max_cents; /* SALE_MAX_LINE_AMOUNT: a line above it needs confirm; 0: none */
    int64_t sale_max_cents; /* SALE_MAX_AMOUNT: a total above it needs confirm; 0: none */
    /* The cashier of the sale (the session's, or `duka sell --cashier`'s), stored on the sale
     * in its transaction and sent with it; NULL: none. Not kept past the call. */
    const duka_cashier *cashier;
} duka_checkout_options;

#define DUKA_CHECKOUT_WARNINGS_MAX 4

/* Something the cashier must see although the sale went through. */
typedef struct duka_checkout_warning {
    char code[32];     /* mpesa_code_reused */
    char message[256]; /* a sentence for the receipt screen */
} duka_checkout_warning;

typedef struct duka_checkout_result {
    char command_id[DUKA_UUID_STR_LEN + 1]; /* the outbox command that forwards the sale */
    int64_t change_cents;                   /* cash to hand back */
    /* When refused: a stable code for the API — invalid_sale, unknown_sku, archived_sku,
     * amount_above_limit, underpaid, overpaid, not_initialised, store — with the sentence in
     * err. NULL on success. */
    const char *refusal;
    int warning_count;
    duka_checkout_warning warnings[DUKA_CHECKOUT_WARNINGS_MAX];
} duka_checkout_result;

/* Commits the sale `in` asks for. On success *sale (caller-allocated with duka_sale_new) is
 * the committed sale — prices from this till's catalog, the tenders allocated to its total
 * (tendered cash beyond what was left is change) — and res its command id, change and
 * warnings (an M-Pesa code this till has taken before: sold, but the cashier is told). On any
 * error before COMMIT nothing is written: malformed input, an unknown or archived SKU, a line
 * or total above the bounds of opt without in->confirm_amount, tenders that do not cover the
 * total or pay more than it by M-Pesa or card. If COMMIT itself fails (the disk failed while
 * making the sale durable), the sale may still be on disk — SQLite can have written it to the
 * WAL, where the next open recovers it — so the error (DUKA_STORE) says "sale <receipt> may
 * have been saved" instead of pretending nothing happened (tests/storage/test_storage_faults). */
duka_rc duka_checkout_sell(sqlite3 *db, const duka_clock *clock, const duka_sale_input *in,
                           const duka_checkout_options *opt, duka_sale *sale,
                           duka_checkout_result *res, duka_err *err);

/* duka_checkout_sell of items paid by one tender, with no sale bounds: the simulator's, the
 * benchmark's and the storage harness's sales. */
duka_rc duka_checkout_commit(sqlite3 *db, const duka_clock *clock,
                             const duka_checkout_item *items, int item_count,
                             const duka_checkout_payment *pay, duka_sale *sale_out,
                             char command_id_out[DUKA_UUID_STR_LEN + 1], duka_err *err);

/* The end of a receipt's transaction (a sale's or a refund's, its lines, payments and
 * created_ms made), opened by the caller with duka_db_begin: the cashier (NULL: none), the
 * till's next receipt number, the check the hub will make (duka_sale_validate; refused as
 * invalid_sale / invalid_refund in res), its outbox command (sale.create or refund.create, in
 * the sales' queue and stream) into res->command_id, its rows, COMMIT. On an error before
 * COMMIT the caller rolls back; when COMMIT itself fails the error says the receipt may have
 * been saved (above). */
duka_rc duka_checkout_record(sqlite3 *db, const duka_till_identity *id,
                             const duka_cashier *cashier, duka_sale *sale,
                             duka_checkout_result *res, duka_err *err);

/* Refuses: res->refusal = code (unless one is set already) and err = rc with the sentence. */
duka_rc duka_checkout_refuse(duka_checkout_result *res, const char *code, duka_err *err,
                             duka_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The status a payment of this method starts in: cash captured, M-Pesa pending verification,
 * card pending capture. */
const char *duka_checkout_payment_status(const char *method);

#endif
