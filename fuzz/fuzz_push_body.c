/*
 * fuzz_push_body.c — the hub's push path under a fuzzer.
 *
 * Each input is a request body as it reaches POST /v1/push: parsed the way hub_server.c
 * parses it (json_loadb with JSON_REJECT_DUPLICATES), then applied with duka_hub_push_apply()
 * for device "T01" of one business, against an in-memory hub store opened once per process.
 * The store holds one product; every applied sale stays in it, so later inputs meet
 * duplicates and receipt conflicts too. To keep memory bounded over long runs the store is
 * recreated every DUKA_FUZZ_RESET_EVERY inputs.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_push.h"
#include "hub/hub_store.h"

#define DUKA_FUZZ_RESET_EVERY 4096
#define DUKA_FUZZ_NOW_MS 1795303769493LL /* 2026-11-21, the day of the corpus' receipts */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static duka_hub_store *store;
static duka_hub_device device;
static unsigned inputs_since_open;

static void close_store(void)
{
    duka_hub_store_close(store);
    store = NULL;
}

/* A fresh store with one business, one product and device T01; aborts on failure (the
 * harness itself is broken then, not the code under test). */
static void open_store(void)
{
    duka_err err = {0};
    char business[DUKA_BUSINESS_ID_LEN + 1];
    char token[DUKA_TOKEN_MAX + 1];
    duka_hub_product milk = {.sku = "MILK", .name = "Milk 500ml", .price_cents = 6500,
                             .tax_band = 'A', .category = "Dairy", .stock_milli = 100000,
                             .has_stock = true};
    if (duka_hub_store_open(":memory:", true, &store, &err) != DUKA_OK ||
        duka_hub_business_create(store, "Fuzz Shop", business, &err) != DUKA_OK ||
        duka_hub_store_begin(store, &err) != DUKA_OK ||
        duka_hub_product_upsert(store, business, &milk, DUKA_FUZZ_NOW_MS, &err) != DUKA_OK ||
        duka_hub_store_commit(store, &err) != DUKA_OK ||
        duka_hub_device_add(store, business, "T01", token, &err) != DUKA_OK ||
        duka_hub_device_authenticate(store, token, &device, &err) != DUKA_OK)
        abort();
    inputs_since_open = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (store == NULL) {
        if (sodium_init() < 0)
            abort();
        open_store();
        atexit(close_store);
    } else if (++inputs_since_open >= DUKA_FUZZ_RESET_EVERY) {
        close_store();
        open_store();
    }
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL)
        return 0;
    json_t *reply = NULL;
    duka_err err = {0};
    if (duka_hub_push_apply(store, &device, body, DUKA_FUZZ_NOW_MS, &reply, &err) == DUKA_OK) {
        /* One result per command, in order: a reply that breaks this is a bug. */
        if (!json_is_array(json_object_get(reply, "results")) ||
            json_array_size(json_object_get(reply, "results")) !=
                json_array_size(json_object_get(body, "commands")))
            abort();
    } else if (reply != NULL || err.rc == DUKA_OK) {
        abort(); /* a failure must leave no reply and say why */
    }
    json_decref(reply);
    json_decref(body);
    return 0;
}
