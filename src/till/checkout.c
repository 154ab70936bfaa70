/* checkout.c — the sale transaction (see checkout.h). */
#include "till/checkout.h"

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/catalog.h"
#include "till/receipt.h"
#include "till/till_db.h"

const char *duka_checkout_payment_status(const char *method)
{
    if (strcmp(method, "mpesa") == 0)
        return "pending_verification"; /* verified against Daraja when online */
    if (strcmp(method, "card") == 0)
        return "pending_capture"; /* captured through the hub when online */
    return "captured";
}

duka_rc duka_checkout_refuse(duka_checkout_result *res, const char *code, duka_err *err,
                             duka_rc rc, const char *fmt, ...)
{
    char msg[DUKA_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (res->refusal == NULL)
        res->refusal = code;
    return duka_err_set(err, rc, "%s", msg);
}

#define CONFIRM_HINT                                                                        \
    "check it, or confirm the amount (duka sell --confirm-amount; API: \"confirm_amount\": " \
    "true)"

/* The bounds of opt, unless the cashier confirmed the amount. */
static duka_rc check_bounds(const duka_sale *sale, const duka_checkout_options *opt,
                            bool confirmed, duka_checkout_result *res, duka_err *err)
{
    if (opt == NULL || confirmed)
        return DUKA_OK;
    char amount[48], bound[48], qty[32];
    for (int i = 0; i < sale->line_count; i++) {
        const duka_sale_line *l = &sale->lines[i];
        if (opt->line_max_cents <= 0 || l->line_total_cents <= opt->line_max_cents)
            continue;
        duka_format_cents_grouped(l->line_total_cents, amount, sizeof(amount));
        duka_format_cents_grouped(opt->line_max_cents, bound, sizeof(bound));
        duka_format_qty(l->qty_milli, qty, sizeof(qty));
        return duka_checkout_refuse(res, "amount_above_limit", err, DUKA_LIMIT,
                      "items[%d]: %s x %s comes to KES %s, above SALE_MAX_LINE_AMOUNT (KES %s); "
                      CONFIRM_HINT,
                      i, qty, l->sku, amount, bound);
    }
    if (opt->sale_max_cents > 0 && sale->total_cents > opt->sale_max_cents) {
        duka_format_cents_grouped(sale->total_cents, amount, sizeof(amount));
        duka_format_cents_grouped(opt->sale_max_cents, bound, sizeof(bound));
        return duka_checkout_refuse(res, "amount_above_limit", err, DUKA_LIMIT,
                      "total: KES %s is above SALE_MAX_AMOUNT (KES %s); " CONFIRM_HINT, amount,
                      bound);
    }
    return DUKA_OK;
}

static const char *method_name(const char *method)
{
    return strcmp(method, "mpesa") == 0 ? "M-Pesa" : strcmp(method, "card") == 0 ? "card" : "cash";
}

/* Spreads the tenders over the sale's total (see sale_input.h): M-Pesa and card amounts
 * first, then cash handed over (its excess is the change), then the one tender without an
 * amount takes what is left. Each tender must pay something and together exactly the total. */
static duka_rc allocate_tenders(const duka_checkout_payment *pays, int n, duka_sale *sale,
                                duka_checkout_result *res, duka_err *err)
{
    static const duka_checkout_payment cash_for_all = {.method = "cash"};
    if (n == 0) {
        pays = &cash_for_all;
        n = 1;
    }
    int64_t due = sale->total_cents;
    int64_t applied[DUKA_SALE_PAYMENTS_MAX] = {0};
    int rest = -1;
    char a[48], b[48];
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            const duka_checkout_payment *p = &pays[i];
            bool cash = strcmp(p->method, "cash") == 0;
            if (p->amount_cents == 0) {
                rest = i;
                continue;
            }
            if (cash != (pass == 1))
                continue; /* M-Pesa and card in the first pass, cash in the second */
            if (!cash && p->amount_cents > due) {
                duka_format_cents_grouped(p->amount_cents, a, sizeof(a));
                duka_format_cents_grouped(due, b, sizeof(b));
                return duka_checkout_refuse(res, "overpaid", err, DUKA_INPUT,
                              "pay[%d]: KES %s by %s is more than the KES %s left to pay (only "
                              "cash gives change)",
                              i, a, method_name(p->method), b);
            }
            applied[i] = p->amount_cents < due ? p->amount_cents : due;
            if (applied[i] == 0)
                return duka_checkout_refuse(res, "overpaid", err, DUKA_INPUT,
                              "pay[%d]: nothing is left to pay by %s", i, method_name(p->method));
            due -= applied[i];
        }
    }
    if (rest >= 0) {
        if (due == 0 && sale->total_cents > 0)
            return duka_checkout_refuse(res, "overpaid", err, DUKA_INPUT,
                          "pay[%d]: nothing is left to pay by %s", rest,
                          method_name(pays[rest].method));
        applied[rest] = due;
        due = 0;
    }
    if (due > 0) {
        duka_format_cents_grouped(due, a, sizeof(a));
        duka_format_cents_grouped(sale->total_cents, b, sizeof(b));
        return duka_checkout_refuse(res, "underpaid", err, DUKA_INPUT,
                      "pay: KES %s short of the total KES %s (add a payment without an amount to "
                      "pay the rest, e.g. --pay cash)",
                      a, b);
    }
    sale->payment_count = n;
    for (int i = 0; i < n; i++) {
        duka_payment *sp = &sale->payments[i];
        snprintf(sp->method, sizeof(sp->method), "%s", pays[i].method);
        snprintf(sp->reference, sizeof(sp->reference), "%s", pays[i].reference);
        snprintf(sp->status, sizeof(sp->status), "%s", duka_checkout_payment_status(pays[i].method));
        sp->amount_cents = applied[i];
        sp->tendered_cents = applied[i];
        if (strcmp(pays[i].method, "cash") == 0 && pays[i].amount_cents > applied[i]) {
            sp->tendered_cents = pays[i].amount_cents;
            res->change_cents = pays[i].amount_cents - applied[i];
        }
    }
    return DUKA_OK;
}

/* Warns when an M-Pesa code of this sale was taken by an earlier sale on this till: a
 * customer showing an old confirmation SMS. The sale stands (it is verified at the hub, which
 * refuses a code twice); the cashier must see it now. */
static duka_rc check_mpesa_codes(sqlite3 *db, const duka_sale *sale, duka_checkout_result *res,
                                 duka_err *err)
{
    for (int i = 0; i < sale->payment_count; i++) {
        const duka_payment *p = &sale->payments[i];
        if (strcmp(p->method, "mpesa") != 0)
            continue;
        sqlite3_stmt *st = NULL;
        if (duka_db_stmt(db,
                         "SELECT s.receipt_no FROM payments p JOIN sales s ON s.id = p.sale_id"
                         " WHERE p.method = 'mpesa' AND p.reference = ?1 ORDER BY p.id LIMIT 1",
                         &st, err) != DUKA_OK)
            return DUKA_STORE;
        duka_db_bind_text(st, 1, p->reference);
        int rc = sqlite3_step(st);
        char earlier[DUKA_RECEIPT_NO_MAX + 1] = "";
        if (rc == SQLITE_ROW)
            duka_db_column_copy(st, 0, earlier, sizeof(earlier));
        duka_db_stmt_done(db, st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return duka_db_fail(db, "looking up the M-Pesa code", err);
        if (rc == SQLITE_ROW && res->warning_count < DUKA_CHECKOUT_WARNINGS_MAX) {
            duka_checkout_warning *w = &res->warnings[res->warning_count++];
            snprintf(w->code, sizeof(w->code), "mpesa_code_reused");
            snprintf(w->message, sizeof(w->message),
                     "M-Pesa code %s was already used on sale %s: check the customer's "
                     "confirmation SMS (its amount and time) before handing over the goods",
                     p->reference, earlier);
        }
    }
    return DUKA_OK;
}

/* Fills sale lines from the catalog; fails on an unknown or archived SKU. */
static duka_rc price_items(sqlite3 *db, const duka_checkout_item *items, int n, duka_sale *sale,
                           duka_checkout_result *res, duka_err *err)
{
    for (int i = 0; i < n; i++) {
        duka_product p;
        duka_rc rc = duka_catalog_find(db, items[i].sku, &p, err);
        if (rc == DUKA_NOTFOUND)
            return duka_checkout_refuse(res, "unknown_sku", err, DUKA_INPUT,
                          "items[%d]: unknown SKU '%s': not in this till's catalog", i,
                          items[i].sku);
        if (rc != DUKA_OK)
            return rc;
        if (p.deleted)
            return duka_checkout_refuse(res, "archived_sku", err, DUKA_INPUT,
                          "items[%d]: SKU '%s' is archived and no longer sold", i, items[i].sku);
        duka_sale_line *l = &sale->lines[i];
        snprintf(l->sku, sizeof(l->sku), "%s", p.sku);
        snprintf(l->name, sizeof(l->name), "%s", p.name);
        l->qty_milli = items[i].qty_milli;
        l->unit_price_cents = p.price_cents;
        l->tax_band = p.tax_band;
        l->line_total_cents = duka_line_total(p.price_cents, items[i].qty_milli);
        l->tax_cents = duka_tax_of_gross(l->line_total_cents, (duka_tax_band)p.tax_band);
        sale->total_cents += l->line_total_cents;
        sale->tax_cents += l->tax_cents;
        sale->line_count++;
    }
    return DUKA_OK;
}

static duka_rc insert_sale(sqlite3 *db, const duka_sale *s, const char *command_id,
                           duka_err *err)
{
    sqlite3_stmt *st = NULL;
    duka_rc result = DUKA_STORE;
    bool refund = s->kind == DUKA_KIND_REFUND;
    if (duka_db_stmt(db,
                        "INSERT INTO sales(receipt_no, created_ms, total_cents, tax_cents,"
                        " command_id, cashier_id, cashier_name, kind, original_receipt_no,"
                        " refund_reason) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 8, duka_receipt_kind_name(s->kind));
    if (refund) {
        duka_db_bind_text(st, 9, s->original_receipt_no);
        duka_db_bind_text(st, 10, s->reason);
    } else {
        sqlite3_bind_null(st, 9);
        sqlite3_bind_null(st, 10);
    }
    duka_db_bind_text(st, 1, s->receipt_no);
    sqlite3_bind_int64(st, 2, s->created_ms);
    sqlite3_bind_int64(st, 3, s->total_cents);
    sqlite3_bind_int64(st, 4, s->tax_cents);
    duka_db_bind_text(st, 5, command_id);
    duka_db_bind_text(st, 6, s->cashier_id);
    duka_db_bind_text(st, 7, s->cashier_name);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_int64 sale_id = sqlite3_last_insert_rowid(db);
    duka_db_stmt_done(db, st);
    st = NULL;
    if (duka_db_stmt(db,
                        "INSERT INTO sale_lines(sale_id, line_no, sku, name, qty_milli,"
                        " unit_price_cents, tax_band, line_total_cents, tax_cents, original_line)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    for (int i = 0; i < s->line_count; i++) {
        const duka_sale_line *l = &s->lines[i];
        char band[2] = {l->tax_band, '\0'};
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, sale_id);
        sqlite3_bind_int(st, 2, i + 1);
        duka_db_bind_text(st, 3, l->sku);
        duka_db_bind_text(st, 4, l->name);
        sqlite3_bind_int64(st, 5, l->qty_milli);
        sqlite3_bind_int64(st, 6, l->unit_price_cents);
        duka_db_bind_text(st, 7, band);
        sqlite3_bind_int64(st, 8, l->line_total_cents);
        sqlite3_bind_int64(st, 9, l->tax_cents);
        if (refund)
            sqlite3_bind_int(st, 10, l->original_line);
        else
            sqlite3_bind_null(st, 10);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
    }
    duka_db_stmt_done(db, st);
    st = NULL;
    if (duka_db_stmt(db,
                        "INSERT INTO payments(sale_id, method, amount_cents, reference, status,"
                        " created_ms, updated_ms, tendered_cents) VALUES(?1,?2,?3,?4,?5,?6,?6,?7)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    for (int i = 0; i < s->payment_count; i++) {
        const duka_payment *p = &s->payments[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, sale_id);
        duka_db_bind_text(st, 2, p->method);
        sqlite3_bind_int64(st, 3, p->amount_cents);
        duka_db_bind_text(st, 4, p->reference);
        duka_db_bind_text(st, 5, p->status);
        sqlite3_bind_int64(st, 6, s->created_ms);
        if (strcmp(p->method, "cash") == 0 && p->tendered_cents > 0)
            sqlite3_bind_int64(st, 7, p->tendered_cents);
        else
            sqlite3_bind_null(st, 7);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
    }
    result = DUKA_OK;
fail:
    if (result != DUKA_OK)
        duka_db_fail(db, "writing the sale", err);
    duka_db_stmt_done(db, st);
    return result;
}

duka_rc duka_checkout_record(sqlite3 *db, const duka_till_identity *id,
                             const duka_cashier *cashier, duka_sale *sale,
                             duka_checkout_result *res, duka_err *err)
{
    if (cashier != NULL) {
        snprintf(sale->cashier_id, sizeof(sale->cashier_id), "%s", cashier->id);
        snprintf(sale->cashier_name, sizeof(sale->cashier_name), "%s", cashier->name);
    }
    duka_rc rc = duka_receipt_next(db, id->terminal, sale->created_ms, sale->receipt_no, err);
    if (rc != DUKA_OK)
        return rc;
    /* What the till writes must be what the hub will accept: check before committing. */
    if ((rc = duka_sale_validate(sale, err)) != DUKA_OK) {
        res->refusal = sale->kind == DUKA_KIND_REFUND ? "invalid_refund" : "invalid_sale";
        return rc;
    }
    char *command_id_out = res->command_id;
    json_t *js = duka_sale_to_json(sale);
    char *payload = js ? json_dumps(js, JSON_COMPACT) : NULL;
    json_decref(js);
    if (payload == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory encoding %s %s",
                            duka_receipt_kind_name(sale->kind), sale->receipt_no);
    /* A refund travels in the sales' queue and stream: after the sale it refunds. */
    const duka_queue_type *sale_type = duka_outbox_queue_type("sale");
    duka_outbox_new cmd = {
        .queue_type = "sale",
        .command_type = duka_receipt_command_type(sale->kind),
        .entity_type = duka_receipt_kind_name(sale->kind),
        .entity_id = sale->receipt_no,
        .stream = id->terminal,
        .payload = payload,
        .device_id = id->terminal,
        .priority = sale_type ? sale_type->priority : DUKA_PRIORITY_SALE,
        .max_attempts = sale_type ? sale_type->max_attempts : DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT,
    };
    rc = duka_outbox_enqueue(db, &cmd, sale->created_ms, command_id_out, err);
    free(payload);
    if (rc == DUKA_OK)
        rc = insert_sale(db, sale, command_id_out, err);
    if (rc != DUKA_OK)
        return rc;
    rc = duka_db_commit(db, err);
    if (rc != DUKA_OK) {
        /* The disk failed while making the receipt durable. SQLite may already have written it
         * to the write-ahead log, where the next open finds it (tests/storage showed this with
         * an fsync that fails during COMMIT). "Nothing was written" would be a lie that makes
         * a cashier ring the purchase again: name the receipt and say it may exist. */
        char cause[DUKA_ERR_MSG_MAX];
        snprintf(cause, sizeof(cause), "%s", err ? err->msg : "storage error");
        if (err != NULL)
            *err = (duka_err){0}; /* the first error wins otherwise: this one replaces it */
        duka_err_set(err, DUKA_STORE,
                     "%s %s may have been saved (its commit failed: %s); check `duka queue` "
                     "before %s it again",
                     duka_receipt_kind_name(sale->kind), sale->receipt_no, cause,
                     sale->kind == DUKA_KIND_REFUND ? "refunding" : "selling");
    }
    return rc;
}

/* The sale transaction: items priced, bounds, tenders, receipt number, outbox, rows. */
static duka_rc checkout(sqlite3 *db, const duka_clock *clock, const duka_checkout_item *items,
                        int item_count, const duka_checkout_payment *pays, int pay_count,
                        bool confirmed, const duka_checkout_options *opt, duka_sale *sale,
                        duka_checkout_result *res, duka_err *err)
{
    duka_rc rc;
    memset(sale, 0, offsetof(duka_sale, lines));
    if (item_count < 1 || item_count > DUKA_SALE_LINES_MAX)
        return duka_checkout_refuse(res, "invalid_sale", err, DUKA_INPUT, "items: a sale needs 1 to %d items, not %d",
                      DUKA_SALE_LINES_MAX, item_count);
    if ((rc = duka_db_begin(db, err)) != DUKA_OK) {
        res->refusal = "store";
        return rc;
    }
    duka_till_identity id;
    if ((rc = duka_till_identity_load(db, &id, err)) != DUKA_OK) {
        res->refusal = rc == DUKA_NOTFOUND ? "not_initialised" : "store";
        goto out;
    }
    if ((rc = price_items(db, items, item_count, sale, res, err)) != DUKA_OK ||
        (rc = check_bounds(sale, opt, confirmed, res, err)) != DUKA_OK ||
        (rc = allocate_tenders(pays, pay_count, sale, res, err)) != DUKA_OK ||
        (rc = check_mpesa_codes(db, sale, res, err)) != DUKA_OK)
        goto out;
    sale->created_ms = duka_clock_now_ms(clock);
    snprintf(sale->terminal, sizeof(sale->terminal), "%s", id.terminal);
    rc = duka_checkout_record(db, &id, opt != NULL ? opt->cashier : NULL, sale, res, err);
out:
    if (rc != DUKA_OK) {
        if (res->refusal == NULL)
            res->refusal = "store";
        duka_db_rollback(db);
    }
    return rc;
}

duka_rc duka_checkout_sell(sqlite3 *db, const duka_clock *clock, const duka_sale_input *in,
                           const duka_checkout_options *opt, duka_sale *sale,
                           duka_checkout_result *res, duka_err *err)
{
    memset(res, 0, sizeof(*res));
    if (duka_sale_input_validate(in, err) != DUKA_OK) {
        res->refusal = "invalid_sale";
        return DUKA_INPUT;
    }
    return checkout(db, clock, in->items, in->item_count, in->payments, in->payment_count,
                    in->confirm_amount, opt, sale, res, err);
}

duka_rc duka_checkout_commit(sqlite3 *db, const duka_clock *clock,
                             const duka_checkout_item *items, int item_count,
                             const duka_checkout_payment *pay, duka_sale *sale,
                             char command_id_out[DUKA_UUID_STR_LEN + 1], duka_err *err)
{
    duka_checkout_result res;
    memset(&res, 0, sizeof(res));
    duka_rc rc = checkout(db, clock, items, item_count, pay, pay != NULL ? 1 : 0, true, NULL,
                          sale, &res, err);
    if (rc == DUKA_OK)
        memcpy(command_id_out, res.command_id, sizeof(res.command_id));
    return rc;
}
