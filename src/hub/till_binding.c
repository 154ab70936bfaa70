/* till_binding.c — a device token bound to one till database (see till_binding.h). */
#include "hub/till_binding.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"

/* Rebinding attempts when other requests keep changing the binding under this one: each
 * lost attempt means another request bound the token meanwhile, so this is a bound on a
 * race between tills, not a retry of failures. */
#define TILL_BIND_ATTEMPTS 3

bool duka_till_id_valid(const char *till_id)
{
    if (till_id == NULL || strlen(till_id) != DUKA_TILL_ID_LEN)
        return false;
    for (int i = 0; i < DUKA_TILL_ID_LEN; i++) {
        char c = till_id[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* "2026-12-03T09:00:00Z": the time a binding was made, to the second, for sentences. */
static void format_since(int64_t ms, char out[40])
{
    duka_clock_format_iso(ms, out, 40);
    char *dot = strchr(out, '.');
    if (dot != NULL)
        snprintf(dot, 2, "Z");
}

/* Binds dev to till_id in one transaction with its audit event, if dev is still bound to
 * what it was read with. *changed false: another request changed it first (dev now holds
 * that binding). */
static duka_rc bind(duka_hub_store *s, duka_hub_device *dev, const char *till_id,
                    const char *request, int64_t now_ms, bool *changed, duka_err *err)
{
    char old[DUKA_TILL_ID_LEN + 1], since[40], detail[DUKA_ERR_MSG_MAX];
    snprintf(old, sizeof(old), "%s", dev->till_id);
    format_since(dev->till_bound_ms, since);
    duka_rc rc = duka_hub_store_begin(s, err);
    if (rc == DUKA_OK)
        rc = duka_hub_device_bind_till(s, dev, till_id, now_ms, changed, err);
    if (rc == DUKA_OK && *changed) {
        if (old[0] == '\0')
            snprintf(detail, sizeof(detail), "%s: terminal %s bound to till %s", request,
                     dev->terminal, till_id);
        else
            snprintf(detail, sizeof(detail),
                     "%s: terminal %s moved from till %s (bound since %s) to till %s", request,
                     dev->terminal, old, since, till_id);
        rc = duka_hub_audit(s, dev->business_id, dev->id,
                            old[0] == '\0' ? "till_bound" : "till_replaced", detail, now_ms, err);
    }
    if (rc == DUKA_OK)
        rc = duka_hub_store_commit(s, err);
    if (rc != DUKA_OK)
        duka_hub_store_rollback(s);
    return rc;
}

duka_rc duka_hub_till_check(duka_hub_store *s, duka_hub_device *dev, const char *till_id,
                            bool replace, const char *request, int64_t now_ms,
                            duka_till_outcome *outcome, duka_err *err)
{
    *outcome = DUKA_TILL_SAME;
    if (request == NULL)
        request = "request";
    if (!duka_till_id_valid(till_id))
        return duka_err_set(err, DUKA_INPUT,
                            DUKA_TILL_ID_HEADER ": '%.40s%s' is not a till id (a UUID: 8-4-4-4-12 "
                            "lowercase hex digits joined by dashes)",
                            till_id ? till_id : "", till_id && strlen(till_id) > 40 ? "..." : "");
    for (int attempt = 0; attempt < TILL_BIND_ATTEMPTS; attempt++) {
        if (strcmp(dev->till_id, till_id) == 0)
            return DUKA_OK;
        bool unbound = dev->till_id[0] == '\0';
        if (!unbound && !replace) {
            char since[40], detail[DUKA_ERR_MSG_MAX];
            format_since(dev->till_bound_ms, since);
            snprintf(detail, sizeof(detail),
                     "%s from till %s refused: the token of terminal %s is bound to till %s "
                     "(since %s)",
                     request, till_id, dev->terminal, dev->till_id, since);
            /* Best effort, as an authentication failure's: the refusal stands whatever. */
            duka_hub_audit(s, dev->business_id, dev->id, "token_in_use", detail, now_ms, NULL);
            return duka_err_set(err, DUKA_CONFLICT,
                                "the token of terminal %s is in use by another till database "
                                "(since %s): run duka till init --replace on the till that "
                                "should keep it, or issue a new token (duka device revoke, then "
                                "duka device add)",
                                dev->terminal, since);
        }
        bool changed = false;
        duka_rc rc = bind(s, dev, till_id, request, now_ms, &changed, err);
        if (rc != DUKA_OK)
            return rc;
        if (changed) {
            *outcome = unbound ? DUKA_TILL_BOUND : DUKA_TILL_REPLACED;
            return DUKA_OK;
        }
        /* Another request changed the binding first: dev holds its binding; decide again. */
    }
    return duka_err_set(err, DUKA_BUSY,
                        "the till binding of terminal %s changed %d times while this request "
                        "tried to set it",
                        dev->terminal, TILL_BIND_ATTEMPTS);
}
