/*
 * catalog.h — the till's copy of the hub's catalog. Prices here are what a sale uses (the
 * price at the time of sale counts, whatever the hub changes later). Updated only by pull.
 */
#ifndef DUKA_CATALOG_H
#define DUKA_CATALOG_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"

typedef struct duka_product {
    char sku[DUKA_SKU_MAX + 1];
    char name[DUKA_PRODUCT_NAME_MAX + 1];
    int64_t price_cents;
    char tax_band;
    char category[DUKA_CATEGORY_MAX + 1];
    bool deleted;
} duka_product;

/* Finds a product by SKU; DUKA_NOTFOUND when absent (deleted products are found, flagged). */
duka_rc duka_catalog_find(sqlite3 *db, const char *sku, duka_product *out, duka_err *err);

/* Applies one pulled page of changes (the hub's JSON "changes" array) and stores new_cursor,
 * in ONE transaction. Each change is validated; a bad one rejects the whole page. */
duka_rc duka_catalog_apply_page(sqlite3 *db, const json_t *changes, int64_t new_cursor,
                                int *applied, duka_err *err);

/* The catalog as JSON {"products":[{"sku","name","price","tax","category"}]} (live ones). */
duka_rc duka_catalog_list(sqlite3 *db, json_t **out, duka_err *err);

#endif
