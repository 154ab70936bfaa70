/*
 * fuzz_csv_import.c — the hub's catalog CSV parser (duka hub import) under a fuzzer.
 *
 * The input is the whole file, read through fmemopen() by duka_product_csv_parse(). A parse
 * that succeeds returns products that must be freed; one that fails returns nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "hub/product_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen() refuses an empty buffer on older C libraries */
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "r");
    if (f == NULL)
        return 0;
    duka_product_list list = {0};
    duka_err err = {0};
    duka_rc rc = duka_product_csv_parse(f, "fuzz.csv", &list, &err);
    fclose(f);
    if (rc == DUKA_OK) {
        if (list.count < 0 || (list.count > 0 && list.items == NULL))
            abort();
    } else if (list.items != NULL || err.rc == DUKA_OK) {
        abort(); /* "on error nothing is returned", and the error says why */
    }
    duka_product_list_free(&list);
    return 0;
}
