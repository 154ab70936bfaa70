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

typedef struct duka_checkout_item {
    char sku[DUKA_SKU_MAX + 1];
    int64_t qty_milli;
} duka_checkout_item;

typedef struct duka_checkout_payment {
    char method[8];                           /* cash | mpesa | card */
    char reference[DUKA_PAYMENT_REF_MAX + 1]; /* M-Pesa code or card reference */
} duka_checkout_payment;

/* Parses "cash", "mpesa:QK12AB34CD" or "card:REF" (the --pay argument). */
duka_rc duka_checkout_parse_payment(const char *text, duka_checkout_payment *out, duka_err *err);

/* Parses "SKU" or "SKU*QTY" (argument position `position` for messages). */
duka_rc duka_checkout_parse_item(const char *text, int position, duka_checkout_item *out,
                                 duka_err *err);

/* Commits a sale of items paid by pay. On success *sale_out (caller-allocated with
 * duka_sale_new) holds the committed sale and command_id_out its outbox command id. On any
 * error before COMMIT nothing is written. If COMMIT itself fails (the disk failed while making
 * the sale durable), the sale may still be on disk — SQLite can have written it to the WAL,
 * where the next open recovers it — so the error (DUKA_STORE) says "sale <receipt> may have
 * been saved" instead of pretending nothing happened (tests/storage/test_storage_faults). */
duka_rc duka_checkout_commit(sqlite3 *db, const duka_clock *clock,
                             const duka_checkout_item *items, int item_count,
                             const duka_checkout_payment *pay, duka_sale *sale_out,
                             char command_id_out[DUKA_UUID_STR_LEN + 1], duka_err *err);

#endif
