/*
 * fuzz_sale_json.c — decoding a sale ("sale.create" payload) from JSON text.
 *
 * The input is JSON text given to json_loads() (so it stops at the first NUL byte, as a C
 * string would), then duka_sale_from_json() decodes and validates it into one heap sale.
 * A sale that decodes must also validate and encode again: the decoder promises both.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sale.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    json_t *obj = json_loads(text, 0, NULL);
    free(text);
    if (obj == NULL)
        return 0;
    duka_sale *sale = duka_sale_new();
    if (sale == NULL) {
        json_decref(obj);
        return 0;
    }
    duka_err err = {0};
    if (duka_sale_from_json(obj, sale, &err) == DUKA_OK) {
        duka_err verr = {0};
        if (duka_sale_validate(sale, &verr) != DUKA_OK)
            abort(); /* decoded but not valid: the decoder broke its contract */
        json_t *again = duka_sale_to_json(sale);
        if (again == NULL)
            abort();
        json_decref(again);
    } else if (err.rc == DUKA_OK) {
        abort(); /* refused without saying why */
    }
    duka_sale_free(sale);
    json_decref(obj);
    return 0;
}
