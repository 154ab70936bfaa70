/* checkout.c — the sale transaction (see checkout.h). */
#include "till/checkout.h"

#include <assert.h>
#include <stddef.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/catalog.h"
#include "till/receipt.h"
#include "till/till_db.h"

static bool all_alnum_upper(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]))
            return false;
    return true;
}

duka_rc duka_checkout_parse_payment(const char *text, duka_checkout_payment *out, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || strcmp(text, "cash") == 0) {
        snprintf(out->method, sizeof(out->method), "cash");
        return DUKA_OK;
    }
    if (strncmp(text, "mpesa:", 6) == 0) {
        const char *code = text + 6;
        /* M-Pesa confirmation codes are 10 upper-case letters and digits, e.g. QK12AB34CD. */
        if (strlen(code) != 10 || !all_alnum_upper(code, 10))
            return duka_err_set(err, DUKA_INPUT,
                                "--pay: M-Pesa code '%s' is not 10 capital letters and digits "
                                "like QK12AB34CD",
                                code);
        snprintf(out->method, sizeof(out->method), "mpesa");
        snprintf(out->reference, sizeof(out->reference), "%s", code);
        return DUKA_OK;
    }
    if (strncmp(text, "card:", 5) == 0) {
        const char *ref = text + 5;
        if (ref[0] == '\0' || strlen(ref) > DUKA_PAYMENT_REF_MAX)
            return duka_err_set(err, DUKA_INPUT, "--pay: card reference must be 1 to %d characters",
                                DUKA_PAYMENT_REF_MAX);
        if (!duka_payment_reference_valid(ref))
            return duka_err_set(err, DUKA_INPUT,
                                "--pay: card reference '%.*s…' must be the terminal's approval "
                                "reference (letters, digits, '-'), never the card number",
                                4, ref);
        snprintf(out->method, sizeof(out->method), "card");
        snprintf(out->reference, sizeof(out->reference), "%s", ref);
        return DUKA_OK;
    }
    return duka_err_set(err, DUKA_INPUT, "--pay: '%s' is not cash, mpesa:CODE or card:REF", text);
}

duka_rc duka_checkout_parse_item(const char *text, int position, duka_checkout_item *out,
                                 duka_err *err)
{
    memset(out, 0, sizeof(*out));
    const char *star = strchr(text, '*');
    size_t sku_len = star ? (size_t)(star - text) : strlen(text);
    if (sku_len == 0 || sku_len > DUKA_SKU_MAX)
        return duka_err_set(err, DUKA_INPUT, "item %d: '%s' is not SKU or SKU*QTY", position,
                            text);
    memcpy(out->sku, text, sku_len);
    out->sku[sku_len] = '\0';
    if (!duka_sku_valid(out->sku))
        return duka_err_set(err, DUKA_INPUT, "item %d: '%s' is not a SKU", position, out->sku);
    if (star == NULL) {
        out->qty_milli = 1000;
        return DUKA_OK;
    }
    char what[DUKA_SKU_MAX + 32];
    snprintf(what, sizeof(what), "item %d (%s)", position, out->sku);
    return duka_parse_qty(star + 1, &out->qty_milli, what, err);
}

static const char *payment_status(const char *method)
{
    if (strcmp(method, "mpesa") == 0)
        return "pending_verification"; /* verified against Daraja when online */
    if (strcmp(method, "card") == 0)
        return "pending_capture"; /* captured through the hub when online */
    return "captured";
}

/* Fills sale lines from the catalog; fails on an unknown or archived SKU. */
static duka_rc price_items(sqlite3 *db, const duka_checkout_item *items, int n, duka_sale *sale,
                           duka_err *err)
{
    for (int i = 0; i < n; i++) {
        duka_product p;
        duka_rc rc = duka_catalog_find(db, items[i].sku, &p, err);
        if (rc == DUKA_NOTFOUND)
            return duka_err_set(err, DUKA_INPUT, "unknown SKU '%s' (item %d): not in this till's catalog",
                                items[i].sku, i + 1);
        if (rc != DUKA_OK)
            return rc;
        if (p.deleted)
            return duka_err_set(err, DUKA_INPUT, "SKU '%s' (item %d) is archived and no longer sold",
                                items[i].sku, i + 1);
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
    if (duka_db_stmt(db,
                        "INSERT INTO sales(receipt_no, created_ms, total_cents, tax_cents,"
                        " command_id) VALUES(?1,?2,?3,?4,?5)",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, s->receipt_no);
    sqlite3_bind_int64(st, 2, s->created_ms);
    sqlite3_bind_int64(st, 3, s->total_cents);
    sqlite3_bind_int64(st, 4, s->tax_cents);
    duka_db_bind_text(st, 5, command_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_int64 sale_id = sqlite3_last_insert_rowid(db);
    duka_db_stmt_done(db, st);
    st = NULL;
    if (duka_db_stmt(db,
                        "INSERT INTO sale_lines(sale_id, line_no, sku, name, qty_milli,"
                        " unit_price_cents, tax_band, line_total_cents, tax_cents)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
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
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
    }
    duka_db_stmt_done(db, st);
    st = NULL;
    if (duka_db_stmt(db,
                        "INSERT INTO payments(sale_id, method, amount_cents, reference, status,"
                        " created_ms, updated_ms) VALUES(?1,?2,?3,?4,?5,?6,?6)",
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

duka_rc duka_checkout_commit(sqlite3 *db, const duka_clock *clock,
                             const duka_checkout_item *items, int item_count,
                             const duka_checkout_payment *pay, duka_sale *sale,
                             char command_id_out[DUKA_UUID_STR_LEN + 1], duka_err *err)
{
    char *payload = NULL;
    duka_rc rc;
    if (item_count < 1 || item_count > DUKA_SALE_LINES_MAX)
        return duka_err_set(err, DUKA_INPUT, "a sale needs 1 to %d items, not %d",
                            DUKA_SALE_LINES_MAX, item_count);
    memset(sale, 0, offsetof(duka_sale, lines));
    if ((rc = duka_db_begin(db, err)) != DUKA_OK)
        return rc;
    duka_till_identity id;
    if ((rc = duka_till_identity_load(db, &id, err)) != DUKA_OK)
        goto out;
    if ((rc = price_items(db, items, item_count, sale, err)) != DUKA_OK)
        goto out;
    sale->created_ms = duka_clock_now_ms(clock);
    snprintf(sale->terminal, sizeof(sale->terminal), "%s", id.terminal);
    duka_payment *p = &sale->payments[0];
    snprintf(p->method, sizeof(p->method), "%s", pay->method);
    snprintf(p->reference, sizeof(p->reference), "%s", pay->reference);
    snprintf(p->status, sizeof(p->status), "%s", payment_status(pay->method));
    p->amount_cents = sale->total_cents;
    sale->payment_count = 1;
    if ((rc = duka_receipt_next(db, id.terminal, sale->created_ms, sale->receipt_no, err)) !=
        DUKA_OK)
        goto out;
    /* What the till writes must be what the hub will accept: check before committing. */
    if ((rc = duka_sale_validate(sale, err)) != DUKA_OK)
        goto out;
    json_t *js = duka_sale_to_json(sale);
    payload = js ? json_dumps(js, JSON_COMPACT) : NULL;
    json_decref(js);
    if (payload == NULL) {
        rc = duka_err_set(err, DUKA_NOMEM, "out of memory encoding the sale");
        goto out;
    }
    const duka_queue_type *sale_type = duka_outbox_queue_type("sale");
    duka_outbox_new cmd = {
        .queue_type = "sale",
        .command_type = "sale.create",
        .entity_type = "sale",
        .entity_id = sale->receipt_no,
        .stream = id.terminal,
        .payload = payload,
        .device_id = id.terminal,
        .priority = sale_type ? sale_type->priority : DUKA_PRIORITY_SALE,
        .max_attempts = sale_type ? sale_type->max_attempts : DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT,
    };
    if ((rc = duka_outbox_enqueue(db, &cmd, sale->created_ms, command_id_out, err)) != DUKA_OK)
        goto out;
    if ((rc = insert_sale(db, sale, command_id_out, err)) != DUKA_OK)
        goto out;
    rc = duka_db_commit(db, err);
    if (rc != DUKA_OK) {
        /* The disk failed while making the sale durable. SQLite may already have written it
         * to the write-ahead log, where the next open finds it (tests/storage showed this with
         * an fsync that fails during COMMIT). "Nothing was written" would be a lie that makes
         * a cashier ring the purchase again: name the receipt and say it may exist. */
        char cause[DUKA_ERR_MSG_MAX];
        snprintf(cause, sizeof(cause), "%s", err ? err->msg : "storage error");
        if (err != NULL)
            *err = (duka_err){0}; /* the first error wins otherwise: this one replaces it */
        duka_err_set(err, DUKA_STORE,
                     "sale %s may have been saved (its commit failed: %s); check `duka queue` "
                     "before selling it again",
                     sale->receipt_no, cause);
    }
out:
    if (rc != DUKA_OK)
        duka_db_rollback(db);
    free(payload);
    return rc;
}
