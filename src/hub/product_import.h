/*
 * product_import.h — loading a catalog CSV into the hub.
 *
 * Format: a header line `sku,name,price,tax,stock[,category]`, then one product per line.
 * price: KES with up to 2 decimals (120.00); tax: eTIMS band A-E; stock: a whole number,
 * the level to set. Fields may be quoted ("Sugar, 1 kg"). The whole file is checked first
 * and written in ONE transaction: a bad row names its line and field and nothing is written.
 */
#ifndef DUKA_PRODUCT_IMPORT_H
#define DUKA_PRODUCT_IMPORT_H

#include <stdio.h>

#include "common/error.h"
#include "hub/hub_store.h"

typedef struct duka_product_list {
    duka_hub_product *items;
    int count;
} duka_product_list;

/* Parses CSV text from f (name for messages). On error nothing is returned. */
duka_rc duka_product_csv_parse(FILE *f, const char *name, duka_product_list *out, duka_err *err);
void duka_product_list_free(duka_product_list *list);

/* Parses path and upserts every product into business_id in one transaction. */
duka_rc duka_product_import_file(duka_hub_store *store, const char *business_id,
                                 const char *path, int *imported, duka_err *err);

#endif
