/*
 * fuzz_sale_input.c — reading a POST /api/sales body (the till's local API).
 *
 * The input is JSON text given to json_loads() (it stops at the first NUL byte), then
 * duka_sale_input_from_json() reads it into one heap input. Contracts checked: a body that is
 * read must validate again and hold 1..500 items with positive quantities in range, valid
 * SKUs and at most 8 tenders; a refusal always says why, naming a field.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sale.h"
#include "till/sale_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    json_t *body = json_loads(text, JSON_DECODE_ANY, NULL);
    free(text);
    if (body == NULL)
        return 0;
    duka_sale_input *in = duka_sale_input_new();
    if (in == NULL) {
        json_decref(body);
        return 0;
    }
    duka_err err = {0};
    if (duka_sale_input_from_json(body, in, &err) == DUKA_OK) {
        duka_err verr = {0};
        if (duka_sale_input_validate(in, &verr) != DUKA_OK)
            abort();
        if (in->item_count < 1 || in->item_count > DUKA_SALE_LINES_MAX ||
            in->payment_count < 0 || in->payment_count > DUKA_SALE_PAYMENTS_MAX)
            abort();
        for (int i = 0; i < in->item_count; i++)
            if (!duka_sku_valid(in->items[i].sku) || in->items[i].qty_milli < 1 ||
                in->items[i].qty_milli > DUKA_QTY_MILLI_MAX)
                abort();
        for (int i = 0; i < in->payment_count; i++)
            if (!duka_payment_method_valid(in->payments[i].method) ||
                in->payments[i].amount_cents < 0 ||
                !duka_payment_reference_valid(in->payments[i].reference))
                abort();
    } else if (err.rc == DUKA_OK || err.msg[0] == '\0') {
        abort(); /* refused without saying why */
    }
    duka_sale_input_free(in);
    json_decref(body);
    return 0;
}
