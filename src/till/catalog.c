/* catalog.c — the till's catalog cache (see catalog.h). */
#include "till/catalog.h"

#include <stdio.h>
#include <string.h>

#include "common/money.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "till/till_db.h"

duka_rc duka_catalog_find(sqlite3 *db, const char *sku, duka_product *p, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db,
                        "SELECT sku, name, price_cents, tax_band, category, deleted"
                        " FROM products WHERE sku = ?1",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, sku);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        duka_db_column_copy(st, 0, p->sku, sizeof(p->sku));
        duka_db_column_copy(st, 1, p->name, sizeof(p->name));
        p->price_cents = sqlite3_column_int64(st, 2);
        const unsigned char *band = sqlite3_column_text(st, 3);
        p->tax_band = band ? (char)band[0] : 'B';
        duka_db_column_copy(st, 4, p->category, sizeof(p->category));
        p->deleted = sqlite3_column_int(st, 5) != 0;
    }
    duka_db_stmt_done(db, st);
    if (rc == SQLITE_ROW)
        return DUKA_OK;
    if (rc == SQLITE_DONE)
        return DUKA_NOTFOUND;
    return duka_db_fail(db, "reading the catalog", err);
}

static duka_rc apply_change(sqlite3_stmt *up, const json_t *c, size_t i, duka_err *err)
{
    const char *sku = json_string_value(json_object_get(c, "sku"));
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *tax = json_string_value(json_object_get(c, "tax"));
    const char *category = json_string_value(json_object_get(c, "category"));
    const json_t *price = json_object_get(c, "price");
    const json_t *seq = json_object_get(c, "seq");
    const json_t *deleted = json_object_get(c, "deleted");
    if (!duka_sku_valid(sku) || name == NULL || strlen(name) > DUKA_PRODUCT_NAME_MAX ||
        tax == NULL || strlen(tax) != 1 || !duka_tax_band_valid(tax[0]) ||
        !json_is_integer(price) || json_integer_value(price) < 0 ||
        json_integer_value(price) > DUKA_PRICE_CENTS_MAX || !json_is_integer(seq) ||
        !json_is_boolean(deleted) || (category && strlen(category) > DUKA_CATEGORY_MAX))
        return duka_err_set(err, DUKA_PROTOCOL, "hub sent an invalid catalog change at index %zu",
                            i);
    sqlite3_reset(up);
    duka_db_bind_text(up, 1, sku);
    duka_db_bind_text(up, 2, name);
    sqlite3_bind_int64(up, 3, (sqlite3_int64)json_integer_value(price));
    duka_db_bind_text(up, 4, tax);
    duka_db_bind_text(up, 5, category ? category : "");
    sqlite3_bind_int(up, 6, json_is_true(deleted));
    sqlite3_bind_int64(up, 7, (sqlite3_int64)json_integer_value(seq));
    if (sqlite3_step(up) != SQLITE_DONE)
        return DUKA_STORE;
    return DUKA_OK;
}

duka_rc duka_catalog_apply_page(sqlite3 *db, const json_t *changes, int64_t new_cursor,
                                int *applied, duka_err *err)
{
    sqlite3_stmt *up = NULL;
    duka_rc result = DUKA_STORE;
    *applied = 0;
    if (duka_db_begin(db, err) != DUKA_OK)
        return DUKA_STORE;
    if (duka_db_prepare(db,
                        "INSERT INTO products(sku, name, price_cents, tax_band, category, deleted,"
                        " change_seq) VALUES(?1,?2,?3,?4,?5,?6,?7)"
                        " ON CONFLICT(sku) DO UPDATE SET name = excluded.name,"
                        " price_cents = excluded.price_cents, tax_band = excluded.tax_band,"
                        " category = excluded.category, deleted = excluded.deleted,"
                        " change_seq = excluded.change_seq",
                        &up, err) != DUKA_OK)
        goto out;
    for (size_t i = 0; i < json_array_size(changes); i++) {
        duka_rc rc = apply_change(up, json_array_get(changes, i), i, err);
        if (rc == DUKA_STORE)
            duka_db_fail(db, "writing the catalog", err);
        if (rc != DUKA_OK) {
            result = rc;
            goto out;
        }
        (*applied)++;
    }
    char cursor[32];
    snprintf(cursor, sizeof(cursor), "%lld", (long long)new_cursor);
    if (duka_meta_set(db, DUKA_META_PULL_CURSOR, cursor, err) != DUKA_OK ||
        duka_db_commit(db, err) != DUKA_OK)
        goto out;
    result = DUKA_OK;
out:
    sqlite3_finalize(up);
    if (result != DUKA_OK) {
        duka_db_rollback(db);
        *applied = 0;
    }
    return result;
}

duka_rc duka_catalog_list(sqlite3 *db, json_t **out, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (duka_db_prepare(db,
                        "SELECT sku, name, price_cents, tax_band, category FROM products"
                        " WHERE deleted = 0 ORDER BY category, name",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:I, s:s, s:s}", "sku", sqlite3_column_text(st, 0),
                           "name", sqlite3_column_text(st, 1), "price",
                           (json_int_t)sqlite3_column_int64(st, 2), "tax",
                           sqlite3_column_text(st, 3), "category", sqlite3_column_text(st, 4)));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return duka_db_fail(db, "reading the catalog", err);
    }
    *out = json_pack("{s:o}", "products", arr);
    return DUKA_OK;
}
