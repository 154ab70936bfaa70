/* hub_business.c — business names and KRA PINs (see hub_business.h). */
#include "hub/hub_business.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/text.h"

bool duka_kra_pin_normalize(const char *pin, char out[DUKA_KRA_PIN_LEN + 1])
{
    if (pin == NULL || strlen(pin) != DUKA_KRA_PIN_LEN)
        return false;
    char up[DUKA_KRA_PIN_LEN + 1];
    for (int i = 0; i < DUKA_KRA_PIN_LEN; i++)
        up[i] = (char)toupper((unsigned char)pin[i]);
    up[DUKA_KRA_PIN_LEN] = '\0';
    if (up[0] != 'A' && up[0] != 'P')
        return false;
    for (int i = 1; i <= 9; i++)
        if (up[i] < '0' || up[i] > '9')
            return false;
    if (up[10] < 'A' || up[10] > 'Z')
        return false;
    memcpy(out, up, sizeof(up));
    return true;
}

duka_rc duka_business_name_clean(const char *name, const char *what,
                                 char out[DUKA_BUSINESS_NAME_MAX + 1], duka_err *err)
{
    const char *start = name ? name : "";
    while (isspace((unsigned char)*start))
        start++;
    size_t len = strlen(start);
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        len--;
    if (len == 0)
        return duka_err_set(err, DUKA_USAGE, "%s: a business needs a name", what);
    if (len > DUKA_BUSINESS_NAME_MAX)
        return duka_err_set(err, DUKA_USAGE, "%s: name longer than %d characters", what,
                            DUKA_BUSINESS_NAME_MAX);
    for (size_t i = 0; i < len;) {
        const unsigned char *c = (const unsigned char *)start + i;
        if (*c < 0x20 || *c == 0x7f)
            return duka_err_set(err, DUKA_USAGE,
                                "%s: the name has a control character at byte %zu", what, i + 1);
        size_t n = duka_utf8_sequence((const char *)c);
        if (n == 0 || i + n > len)
            return duka_err_set(err, DUKA_USAGE, "%s: the name is not UTF-8 at byte %zu", what,
                                i + 1);
        i += n;
    }
    memcpy(out, start, len);
    out[len] = '\0';
    return DUKA_OK;
}

bool duka_business_names_equal(const char *a, const char *b)
{
    while (isspace((unsigned char)*a))
        a++;
    while (isspace((unsigned char)*b))
        b++;
    size_t na = strlen(a), nb = strlen(b);
    while (na > 0 && isspace((unsigned char)a[na - 1]))
        na--;
    while (nb > 0 && isspace((unsigned char)b[nb - 1]))
        nb--;
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        /* ASCII only: bytes of a multi-byte UTF-8 character are >= 0x80 and compared as
         * they are. */
        if (x < 0x80)
            x = (unsigned char)tolower(x);
        if (y < 0x80)
            y = (unsigned char)tolower(y);
        if (x != y)
            return false;
    }
    return true;
}

/* Looks the name up among every business but `self` (NULL: none), holding the list for the
 * open transaction. DUKA_CONFLICT naming the first (oldest) business with that name, unless
 * allow_duplicate; *self_found says whether `self` is a business at all. */
static duka_rc check_name(duka_hub_store *s, const char *name, const char *self,
                          bool allow_duplicate, bool *self_found, duka_err *err)
{
    json_t *list = NULL;
    duka_rc rc = duka_hub_business_list(s, true, &list, err);
    if (rc != DUKA_OK)
        return rc;
    *self_found = false;
    const char *taken_by = NULL, *taken_name = NULL;
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(list, "businesses"), i, b) {
        const char *id = json_string_value(json_object_get(b, "business_id"));
        const char *other = json_string_value(json_object_get(b, "name"));
        if (id == NULL || other == NULL)
            continue;
        if (self != NULL && strcmp(id, self) == 0) {
            *self_found = true;
            continue;
        }
        if (taken_by == NULL && name != NULL && duka_business_names_equal(name, other)) {
            taken_by = id;
            taken_name = other;
        }
    }
    if (taken_by != NULL && !allow_duplicate)
        rc = duka_err_set(err, DUKA_CONFLICT,
                          "a business named '%s' already exists (business id %s); use that id, "
                          "or pass --allow-duplicate-name",
                          taken_name, taken_by);
    json_decref(list);
    return rc;
}

duka_rc duka_hub_business_register(duka_hub_store *s, const char *name, const char *kra_pin,
                                   bool allow_duplicate, char id_out[DUKA_BUSINESS_ID_LEN + 1],
                                   duka_err *err)
{
    bool unused = false;
    duka_rc rc = duka_hub_store_begin(s, err);
    if (rc == DUKA_OK)
        rc = check_name(s, name, NULL, allow_duplicate, &unused, err);
    if (rc == DUKA_OK)
        rc = duka_hub_business_create_with_pin(s, name, kra_pin ? kra_pin : "", id_out, err);
    if (rc == DUKA_OK)
        rc = duka_hub_store_commit(s, err);
    if (rc != DUKA_OK)
        duka_hub_store_rollback(s);
    return rc;
}

duka_rc duka_hub_business_change(duka_hub_store *s, const char *business_id, const char *name,
                                 const char *kra_pin, bool allow_duplicate, duka_err *err)
{
    bool found = false;
    duka_rc rc = duka_hub_store_begin(s, err);
    if (rc == DUKA_OK)
        rc = check_name(s, name, business_id, allow_duplicate, &found, err);
    if (rc == DUKA_OK && !found)
        rc = duka_err_set(err, DUKA_NOTFOUND, "business '%s' not found (see: duka business list)",
                          business_id);
    if (rc == DUKA_OK)
        rc = duka_hub_business_update(s, business_id, name, kra_pin, err);
    if (rc == DUKA_OK) {
        char detail[DUKA_BUSINESS_NAME_MAX + 96];
        snprintf(detail, sizeof(detail), "%s%s%s%s%s%s", name ? "name set to '" : "",
                 name ? name : "", name ? "'" : "", name && kra_pin ? ", " : "",
                 kra_pin ? "KRA PIN set to " : "",
                 kra_pin ? (kra_pin[0] ? kra_pin : "none") : "");
        rc = duka_hub_audit(s, business_id, 0, "business_changed", detail,
                            duka_clock_now_ms(NULL), err);
    }
    if (rc == DUKA_OK)
        rc = duka_hub_store_commit(s, err);
    if (rc != DUKA_OK)
        duka_hub_store_rollback(s);
    return rc;
}
