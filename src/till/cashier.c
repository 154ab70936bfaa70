/* cashier.c — the till's cashiers, PIN logins and sessions (see cashier.h). */
#include "till/cashier.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/uuid.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "till/till_db.h"

static void cashier_from_row(sqlite3_stmt *st, int col, duka_cashier *c)
{
    memset(c, 0, sizeof(*c));
    duka_db_column_copy(st, col, c->id, sizeof(c->id));
    duka_db_column_copy(st, col + 1, c->name, sizeof(c->name));
    duka_db_column_copy(st, col + 2, c->role, sizeof(c->role));
}

duka_rc duka_cashier_list(sqlite3 *db, duka_cashier *out, int max, int *count, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    *count = 0;
    if (duka_db_stmt(db,
                     "SELECT id, name, role FROM cashiers WHERE active = 1"
                     " ORDER BY name COLLATE NOCASE, id",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *count < max)
        cashier_from_row(st, 0, &out[(*count)++]);
    bool failed = rc != SQLITE_ROW && rc != SQLITE_DONE;
    duka_db_stmt_done(db, st);
    if (failed)
        return duka_db_fail(db, "reading cashiers", err);
    return DUKA_OK;
}

duka_rc duka_cashier_find_by_name(sqlite3 *db, const char *name, duka_cashier *out,
                                  duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db,
                     "SELECT id, name, role FROM cashiers WHERE active = 1"
                     " AND name = ?1 COLLATE NOCASE ORDER BY id LIMIT 1",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        cashier_from_row(st, 0, out);
    duka_db_stmt_done(db, st);
    if (rc == SQLITE_ROW)
        return DUKA_OK;
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "reading cashiers", err);
    return duka_err_set(err, DUKA_NOTFOUND,
                        "--cashier: no active cashier '%s' on this till (duka cashier list on "
                        "the hub; a new one arrives with the next sync)",
                        name);
}

/* A session token's hash as stored: BLAKE2b-256 in hex. The token has 256 random bits, so a
 * fast hash is right (nothing to stretch), as for the hub's device tokens. */
static void token_hash(const char *token, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static bool token_shape_valid(const char *token)
{
    if (token == NULL || strlen(token) != DUKA_SESSION_TOKEN_LEN)
        return false;
    for (const char *p = token; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

/* A cashier by id with its PIN hash; *found false when the till has no such cashier. */
static duka_rc cashier_load(sqlite3 *db, const char *id, duka_cashier *c,
                            char hash[DUKA_PIN_HASH_MAX + 1], bool *active, bool *found,
                            duka_err *err)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    if (duka_db_stmt(db, "SELECT id, name, role, pin_hash, active FROM cashiers WHERE id = ?1",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        cashier_from_row(st, 0, c);
        duka_db_column_copy(st, 3, hash, DUKA_PIN_HASH_MAX + 1);
        *active = sqlite3_column_int(st, 4) == 1;
    }
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(db, "reading cashiers", err);
    return DUKA_OK;
}

static duka_rc failures_load(sqlite3 *db, const char *id, int64_t *failures,
                             int64_t *locked_until_ms, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    *failures = 0;
    *locked_until_ms = 0;
    if (duka_db_stmt(db,
                     "SELECT failures, locked_until_ms FROM login_failures WHERE cashier_id = ?1",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *failures = sqlite3_column_int64(st, 0);
        *locked_until_ms = sqlite3_column_int64(st, 1);
    }
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(db, "reading login failures", err);
    return DUKA_OK;
}

static duka_rc locked_message(const duka_cashier *c, int64_t locked_until_ms, int64_t now_ms,
                              duka_err *err)
{
    long long minutes = (long long)((locked_until_ms - now_ms + 59999) / 60000);
    if (minutes < 1)
        minutes = 1;
    return duka_err_set(err, DUKA_BUSY, "%s is locked after %d wrong PINs; try again in %lld min",
                        c->name, DUKA_LOGIN_FAILURES_MAX, minutes);
}

/* Counts a wrong PIN in its own transaction (it must stay counted although the login fails). */
static duka_rc failure_record(sqlite3 *db, const duka_cashier *c, int64_t now_ms, duka_err *err)
{
    int64_t failures = 0, locked_until = 0;
    sqlite3_stmt *st = NULL;
    if (duka_db_begin(db, err) != DUKA_OK)
        return DUKA_STORE;
    if (failures_load(db, c->id, &failures, &locked_until, err) != DUKA_OK)
        goto fail;
    if (locked_until != 0 && locked_until <= now_ms)
        failures = 0; /* the lock ran out: a fresh set of tries */
    failures++;
    locked_until = failures >= DUKA_LOGIN_FAILURES_MAX ? now_ms + DUKA_LOGIN_LOCK_MS : 0;
    if (duka_db_stmt(db,
                     "INSERT INTO login_failures(cashier_id, failures, locked_until_ms)"
                     " VALUES(?1, ?2, ?3) ON CONFLICT(cashier_id) DO UPDATE SET"
                     " failures = excluded.failures, locked_until_ms = excluded.locked_until_ms",
                     &st, err) != DUKA_OK)
        goto fail;
    duka_db_bind_text(st, 1, c->id);
    sqlite3_bind_int64(st, 2, failures);
    sqlite3_bind_int64(st, 3, locked_until);
    int rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE) {
        duka_db_fail(db, "recording a wrong PIN", err);
        goto fail;
    }
    if (duka_db_commit(db, err) != DUKA_OK)
        goto fail;
    if (locked_until != 0)
        return locked_message(c, locked_until, now_ms, err);
    int64_t left = DUKA_LOGIN_FAILURES_MAX - failures;
    return duka_err_set(err, DUKA_AUTH, "wrong PIN for %s (%lld %s left)", c->name,
                        (long long)left, left == 1 ? "try" : "tries");
fail:
    duka_db_rollback(db);
    return DUKA_STORE;
}

/* The good PIN: the count goes, the session is stored (by its token's hash). */
static duka_rc session_open(sqlite3 *db, const duka_cashier *c, int64_t now_ms,
                            char token[DUKA_SESSION_TOKEN_LEN + 1], duka_err *err)
{
    unsigned char raw[32];
    char hash[65];
    sqlite3_stmt *st = NULL;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(token, DUKA_SESSION_TOKEN_LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    token_hash(token, hash);
    if (duka_db_begin(db, err) != DUKA_OK)
        return DUKA_STORE;
    if (duka_db_stmt(db, "DELETE FROM login_failures WHERE cashier_id = ?1", &st, err) !=
        DUKA_OK)
        goto fail;
    duka_db_bind_text(st, 1, c->id);
    int rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE) {
        duka_db_fail(db, "clearing login failures", err);
        goto fail;
    }
    if (duka_db_stmt(db,
                     "INSERT INTO sessions(token_hash, cashier_id, created_ms, last_seen_ms)"
                     " VALUES(?1, ?2, ?3, ?3)",
                     &st, err) != DUKA_OK)
        goto fail;
    duka_db_bind_text(st, 1, hash);
    duka_db_bind_text(st, 2, c->id);
    sqlite3_bind_int64(st, 3, now_ms);
    rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE) {
        duka_db_fail(db, "storing the session", err);
        goto fail;
    }
    if (duka_db_commit(db, err) != DUKA_OK)
        goto fail;
    return DUKA_OK;
fail:
    duka_db_rollback(db);
    token[0] = '\0';
    return DUKA_STORE;
}

duka_rc duka_session_login(sqlite3 *db, const duka_clock *clock, const char *cashier_id,
                           const char *pin, int64_t idle_ms,
                           char token[DUKA_SESSION_TOKEN_LEN + 1], duka_session *s,
                           duka_err *err)
{
    (void)idle_ms;
    duka_cashier c;
    char hash[DUKA_PIN_HASH_MAX + 1] = "";
    bool found = false, active = false;
    token[0] = '\0';
    if (cashier_id == NULL || !duka_uuid_valid(cashier_id))
        return duka_err_set(err, DUKA_NOTFOUND, "no cashier %s on this till",
                            cashier_id ? cashier_id : "(none)");
    if (cashier_load(db, cashier_id, &c, hash, &active, &found, err) != DUKA_OK)
        return DUKA_STORE;
    if (!found || !active)
        return duka_err_set(err, DUKA_NOTFOUND, "no cashier %s on this till", cashier_id);
    if (!duka_pin_valid(pin))
        return duka_err_set(err, DUKA_INPUT, "PIN: %d to %d digits", DUKA_PIN_LEN_MIN,
                            DUKA_PIN_LEN_MAX);
    int64_t now = duka_clock_now_ms(clock);
    int64_t failures = 0, locked_until = 0;
    if (failures_load(db, cashier_id, &failures, &locked_until, err) != DUKA_OK)
        return DUKA_STORE;
    if (locked_until > now)
        return locked_message(&c, locked_until, now, err);
    if (crypto_pwhash_str_verify(hash, pin, strlen(pin)) != 0)
        return failure_record(db, &c, now, err);
    if (session_open(db, &c, now, token, err) != DUKA_OK)
        return DUKA_STORE;
    if (s != NULL)
        *s = (duka_session){.cashier = c, .created_ms = now, .last_seen_ms = now};
    return DUKA_OK;
}

static duka_rc session_delete(sqlite3 *db, const char *hash, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db, "DELETE FROM sessions WHERE token_hash = ?1", &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, hash);
    int rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "ending the session", err);
    return DUKA_OK;
}

duka_rc duka_session_check(sqlite3 *db, const duka_clock *clock, const char *token,
                           int64_t idle_ms, duka_session *s, duka_err *err)
{
    char hash[65];
    sqlite3_stmt *st = NULL;
    if (!token_shape_valid(token))
        return duka_err_set(err, DUKA_AUTH, "not logged in");
    token_hash(token, hash);
    if (duka_db_stmt(db,
                     "SELECT c.id, coalesce(c.name, ''), coalesce(c.role, ''), s.created_ms,"
                     " s.last_seen_ms, coalesce(c.active, 0)"
                     " FROM sessions s LEFT JOIN cashiers c ON c.id = s.cashier_id"
                     " WHERE s.token_hash = ?1",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, hash);
    int rc = sqlite3_step(st);
    duka_session got;
    bool active = false;
    if (rc == SQLITE_ROW) {
        cashier_from_row(st, 0, &got.cashier);
        got.created_ms = sqlite3_column_int64(st, 3);
        got.last_seen_ms = sqlite3_column_int64(st, 4);
        active = sqlite3_column_int(st, 5) == 1;
    }
    duka_db_stmt_done(db, st);
    if (rc == SQLITE_DONE)
        return duka_err_set(err, DUKA_AUTH, "not logged in");
    if (rc != SQLITE_ROW)
        return duka_db_fail(db, "reading sessions", err);
    int64_t now = duka_clock_now_ms(clock);
    if (!active) {
        if (session_delete(db, hash, err) != DUKA_OK)
            return DUKA_STORE;
        if (got.cashier.name[0] != '\0')
            return duka_err_set(err, DUKA_AUTH, "%s is no longer a cashier of this till",
                                got.cashier.name);
        return duka_err_set(err, DUKA_AUTH, "this session's cashier is no longer on this till");
    }
    if (now - got.last_seen_ms > idle_ms) {
        if (session_delete(db, hash, err) != DUKA_OK)
            return DUKA_STORE;
        return duka_err_set(err, DUKA_AUTH, "session expired after %lld min idle: log in again",
                            (long long)(idle_ms / 60000));
    }
    if (now - got.last_seen_ms >= DUKA_SESSION_TOUCH_MS) {
        if (duka_db_stmt(db, "UPDATE sessions SET last_seen_ms = ?2 WHERE token_hash = ?1", &st,
                         err) != DUKA_OK)
            return DUKA_STORE;
        duka_db_bind_text(st, 1, hash);
        sqlite3_bind_int64(st, 2, now);
        rc = sqlite3_step(st);
        duka_db_stmt_done(db, st);
        if (rc != SQLITE_DONE)
            return duka_db_fail(db, "refreshing the session", err);
    }
    if (now > got.last_seen_ms)
        got.last_seen_ms = now;
    if (s != NULL)
        *s = got;
    return DUKA_OK;
}

duka_rc duka_session_logout(sqlite3 *db, const char *token, duka_err *err)
{
    char hash[65];
    if (!token_shape_valid(token))
        return DUKA_OK;
    token_hash(token, hash);
    return session_delete(db, hash, err);
}

duka_rc duka_session_cleanup(sqlite3 *db, int64_t idle_ms, int64_t now_ms, int64_t *deleted,
                             duka_err *err)
{
    sqlite3_stmt *st = NULL;
    *deleted = 0;
    if (duka_db_stmt(db, "DELETE FROM sessions WHERE last_seen_ms < ?1", &st, err) != DUKA_OK)
        return DUKA_STORE;
    /* last_seen_ms lags by up to DUKA_SESSION_TOUCH_MS: only what is surely over. */
    sqlite3_bind_int64(st, 1, now_ms - idle_ms - DUKA_SESSION_TOUCH_MS);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        *deleted = sqlite3_changes(db);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "removing ended sessions", err);
    return DUKA_OK;
}

duka_rc duka_cashiers_version(sqlite3 *db, int64_t *version, duka_err *err)
{
    char text[32];
    bool found = false;
    *version = 0;
    if (duka_meta_get(db, DUKA_META_CASHIERS_VERSION, text, sizeof(text), &found, err) !=
        DUKA_OK)
        return DUKA_STORE;
    if (found)
        *version = strtoll(text, NULL, 10);
    return DUKA_OK;
}

typedef struct pulled_cashier {
    duka_cashier c;
    char pin_hash[DUKA_PIN_HASH_MAX + 1];
    bool active;
} pulled_cashier;

static duka_rc pulled_text(const json_t *o, const char *key, char *buf, size_t buflen, size_t i,
                           duka_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) >= buflen ||
        strlen(json_string_value(v)) != json_string_length(v))
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: cashiers.list[%zu].%s is missing or not valid", i,
                            key);
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return DUKA_OK;
}

/* Checks the member whole before anything is written. */
static duka_rc pulled_parse(const json_t *member, int64_t *version, pulled_cashier *out,
                            size_t *n, duka_err *err)
{
    const json_t *v = json_object_get(member, "version");
    const json_t *list = json_object_get(member, "list");
    if (!json_is_object(member) || !json_is_integer(v) || json_integer_value(v) < 0)
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: cashiers.version is missing or not valid");
    if (!json_is_array(list) || json_array_size(list) > DUKA_CASHIERS_MAX)
        return duka_err_set(err, DUKA_PROTOCOL,
                            "hub pull reply: cashiers.list is not an array of at most %d",
                            DUKA_CASHIERS_MAX);
    *version = (int64_t)json_integer_value(v);
    *n = json_array_size(list);
    for (size_t i = 0; i < *n; i++) {
        const json_t *o = json_array_get(list, i);
        pulled_cashier *p = &out[i];
        memset(p, 0, sizeof(*p));
        if (!json_is_object(o))
            return duka_err_set(err, DUKA_PROTOCOL, "hub pull reply: cashiers.list[%zu] is not "
                                "an object", i);
        if (pulled_text(o, "id", p->c.id, sizeof(p->c.id), i, err) ||
            pulled_text(o, "name", p->c.name, sizeof(p->c.name), i, err) ||
            pulled_text(o, "role", p->c.role, sizeof(p->c.role), i, err) ||
            pulled_text(o, "pin_hash", p->pin_hash, sizeof(p->pin_hash), i, err))
            return DUKA_PROTOCOL;
        const json_t *active = json_object_get(o, "active");
        if (!duka_uuid_valid(p->c.id) || !duka_cashier_name_valid(p->c.name) ||
            !duka_cashier_role_valid(p->c.role) ||
            strncmp(p->pin_hash, "$argon2id$", 10) != 0 || !json_is_boolean(active))
            return duka_err_set(err, DUKA_PROTOCOL,
                                "hub pull reply: cashiers.list[%zu] is not a valid cashier", i);
        p->active = json_is_true(active);
        for (size_t j = 0; j < i; j++)
            if (strcmp(out[j].c.id, p->c.id) == 0)
                return duka_err_set(err, DUKA_PROTOCOL,
                                    "hub pull reply: cashiers.list[%zu] repeats cashier %s", i,
                                    p->c.id);
    }
    return DUKA_OK;
}

duka_rc duka_cashiers_apply_pull(sqlite3 *db, const json_t *member, duka_err *err)
{
    if (member == NULL)
        return DUKA_OK;
    pulled_cashier *list = calloc(DUKA_CASHIERS_MAX, sizeof(*list));
    if (list == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory reading the cashiers");
    int64_t version = 0;
    size_t n = 0;
    sqlite3_stmt *st = NULL;
    duka_rc result = pulled_parse(member, &version, list, &n, err);
    if (result != DUKA_OK)
        goto out;
    result = DUKA_STORE;
    if (duka_db_begin(db, err) != DUKA_OK)
        goto out;
    if (duka_db_exec(db, "DELETE FROM cashiers", err) != DUKA_OK)
        goto rollback;
    if (duka_db_stmt(db,
                     "INSERT INTO cashiers(id, name, role, pin_hash, active)"
                     " VALUES(?1, ?2, ?3, ?4, ?5)",
                     &st, err) != DUKA_OK)
        goto rollback;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        duka_db_bind_text(st, 1, list[i].c.id);
        duka_db_bind_text(st, 2, list[i].c.name);
        duka_db_bind_text(st, 3, list[i].c.role);
        duka_db_bind_text(st, 4, list[i].pin_hash);
        sqlite3_bind_int(st, 5, list[i].active ? 1 : 0);
        if (sqlite3_step(st) != SQLITE_DONE) {
            duka_db_fail(db, "storing the cashiers", err);
            duka_db_stmt_done(db, st);
            goto rollback;
        }
    }
    duka_db_stmt_done(db, st);
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)version);
    if (duka_meta_set(db, DUKA_META_CASHIERS_VERSION, text, err) != DUKA_OK ||
        duka_db_commit(db, err) != DUKA_OK)
        goto rollback;
    result = DUKA_OK;
    goto out;
rollback:
    duka_db_rollback(db);
out:
    free(list);
    return result;
}
