/* hub_cashiers.c — cashiers at the hub: validation, PIN hashing (see hub_cashiers.h). */
#include "hub/hub_cashiers.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/text.h"
#include "common/uuid.h"
#include "protocol/sale.h"

_Static_assert(DUKA_PIN_HASH_MAX + 1 == crypto_pwhash_STRBYTES,
               "a PIN hash string fits its buffer");

duka_rc duka_pin_hash(const char *pin, char out[DUKA_PIN_HASH_MAX + 1], duka_err *err)
{
    if (crypto_pwhash_str_alg(out, pin, strlen(pin), DUKA_PIN_HASH_OPSLIMIT,
                              DUKA_PIN_HASH_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return duka_err_set(err, DUKA_NOMEM, "out of memory hashing the PIN");
    return DUKA_OK;
}

/* The name as stored: white space trimmed, then the rules of duka_cashier_name_valid. */
static duka_rc name_clean(const char *name, char out[DUKA_CASHIER_NAME_MAX + 1], duka_err *err)
{
    char buf[DUKA_CASHIER_NAME_MAX * 4 + 2];
    snprintf(buf, sizeof(buf), "%s", name ? name : "");
    const char *t = duka_trim(buf);
    if (strlen(name ? name : "") >= sizeof(buf) - 1 || strlen(t) > DUKA_CASHIER_NAME_MAX)
        return duka_err_set(err, DUKA_INPUT, "--name: longer than %d bytes",
                            DUKA_CASHIER_NAME_MAX);
    if (!duka_cashier_name_valid(t))
        return duka_err_set(err, DUKA_INPUT,
                            "--name: 1 to %d bytes of UTF-8 text with no control characters",
                            DUKA_CASHIER_NAME_MAX);
    snprintf(out, DUKA_CASHIER_NAME_MAX + 1, "%s", t);
    return DUKA_OK;
}

static duka_rc pin_check(const char *pin, duka_err *err)
{
    if (!duka_pin_valid(pin))
        return duka_err_set(err, DUKA_INPUT, "--pin: %d to %d digits", DUKA_PIN_LEN_MIN,
                            DUKA_PIN_LEN_MAX);
    return DUKA_OK;
}

static duka_rc role_check(const char *role, duka_err *err)
{
    if (!duka_cashier_role_valid(role))
        return duka_err_set(err, DUKA_INPUT, "--role: '%s' is not cashier or manager", role);
    return DUKA_OK;
}

/* The cashier of list (the store's listing) called name, ASCII case ignored; NULL if none. */
static const json_t *find_by_name(const json_t *list, const char *name)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(list, "list"), i, c)
    {
        const char *n = json_string_value(json_object_get(c, "name"));
        if (n != NULL && strcasecmp(n, name) == 0)
            return c;
    }
    return NULL;
}

static void cashier_from_json(const json_t *c, duka_hub_cashier *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", json_string_value(json_object_get(c, "id")));
    snprintf(out->name, sizeof(out->name), "%s", json_string_value(json_object_get(c, "name")));
    snprintf(out->role, sizeof(out->role), "%s", json_string_value(json_object_get(c, "role")));
    snprintf(out->pin_hash, sizeof(out->pin_hash), "%s",
             json_string_value(json_object_get(c, "pin_hash")));
    out->active = json_is_true(json_object_get(c, "active"));
}

/* Runs the write of an add or a set in one transaction with the read its checks need. */
static duka_rc cashier_write(duka_hub_store *s, const char *business_id, duka_hub_cashier *c,
                             bool insert, const char *pin_hash, const char *role, int active,
                             int64_t now_ms, duka_err *err)
{
    json_t *list = NULL;
    duka_rc rc = duka_hub_store_begin(s, err);
    if (rc != DUKA_OK)
        return rc;
    rc = duka_hub_cashier_list(s, business_id, -1, &list, err);
    if (rc != DUKA_OK)
        goto out;
    const json_t *same = find_by_name(list, c->name);
    if (insert) {
        if (same != NULL) {
            rc = duka_err_set(err, DUKA_CONFLICT, "--name: a cashier '%s' exists already in "
                              "business %s (change it with: duka cashier set)",
                              json_string_value(json_object_get(same, "name")), business_id);
            goto out;
        }
        if (json_array_size(json_object_get(list, "list")) >= DUKA_CASHIERS_MAX) {
            rc = duka_err_set(err, DUKA_LIMIT,
                              "business %s has %d cashiers, the most it may have (deactivate "
                              "one with --active no and reuse its name, or ask for more)",
                              business_id, DUKA_CASHIERS_MAX);
            goto out;
        }
    } else {
        if (same == NULL) {
            rc = duka_err_set(err, DUKA_NOTFOUND, "--name: no cashier '%s' in business %s",
                              c->name, business_id);
            goto out;
        }
        cashier_from_json(same, c);
        if (role != NULL)
            snprintf(c->role, sizeof(c->role), "%s", role);
        if (active >= 0)
            c->active = active != 0;
    }
    if (pin_hash != NULL)
        snprintf(c->pin_hash, sizeof(c->pin_hash), "%s", pin_hash);
    rc = duka_hub_cashier_put(s, business_id, c, insert, now_ms, err);
    if (rc == DUKA_OK)
        rc = duka_hub_store_commit(s, err);
out:
    if (rc != DUKA_OK)
        duka_hub_store_rollback(s);
    json_decref(list);
    return rc;
}

duka_rc duka_hub_cashier_add(duka_hub_store *s, const char *business_id, const char *name,
                             const char *role, const char *pin, int64_t now_ms,
                             duka_hub_cashier *out, duka_err *err)
{
    duka_hub_cashier c;
    char hash[DUKA_PIN_HASH_MAX + 1];
    memset(&c, 0, sizeof(c));
    duka_rc rc;
    if ((rc = name_clean(name, c.name, err)) != DUKA_OK || (rc = role_check(role, err)) != DUKA_OK ||
        (rc = pin_check(pin, err)) != DUKA_OK)
        return rc;
    if ((rc = duka_pin_hash(pin, hash, err)) != DUKA_OK)
        return rc;
    duka_uuid_v7(now_ms, c.id);
    snprintf(c.role, sizeof(c.role), "%s", role);
    c.active = true;
    rc = cashier_write(s, business_id, &c, true, hash, NULL, -1, now_ms, err);
    sodium_memzero(hash, sizeof(hash));
    if (rc == DUKA_OK && out != NULL)
        *out = c;
    return rc;
}

duka_rc duka_hub_cashier_set(duka_hub_store *s, const char *business_id, const char *name,
                             const char *pin, const char *role, int active, int64_t now_ms,
                             duka_hub_cashier *out, duka_err *err)
{
    duka_hub_cashier c;
    char hash[DUKA_PIN_HASH_MAX + 1];
    memset(&c, 0, sizeof(c));
    duka_rc rc;
    if (pin == NULL && role == NULL && active < 0)
        return duka_err_set(err, DUKA_USAGE, "cashier set: give --pin, --role or --active");
    if ((rc = name_clean(name, c.name, err)) != DUKA_OK ||
        (role != NULL && (rc = role_check(role, err)) != DUKA_OK) ||
        (pin != NULL && (rc = pin_check(pin, err)) != DUKA_OK))
        return rc;
    if (pin != NULL && (rc = duka_pin_hash(pin, hash, err)) != DUKA_OK)
        return rc;
    rc = cashier_write(s, business_id, &c, false, pin ? hash : NULL, role, active, now_ms, err);
    sodium_memzero(hash, sizeof(hash));
    if (rc == DUKA_OK && out != NULL)
        *out = c;
    return rc;
}

duka_rc duka_hub_cashier_listing(duka_hub_store *s, const char *business_id, json_t **out,
                                 duka_err *err)
{
    json_t *list = NULL;
    *out = NULL;
    duka_rc rc = duka_hub_cashier_list(s, business_id, -1, &list, err);
    if (rc != DUKA_OK)
        return rc;
    json_t *arr = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(list, "list"), i, c)
    {
        json_array_append_new(
            arr, json_pack("{s:O, s:O, s:O, s:O}", "cashier_id", json_object_get(c, "id"), "name",
                           json_object_get(c, "name"), "role", json_object_get(c, "role"),
                           "active", json_object_get(c, "active")));
    }
    json_decref(list);
    *out = json_pack("{s:o}", "cashiers", arr);
    return DUKA_OK;
}
