/*
 * cashier.h — the till's cashiers and their sessions (issue 11).
 *
 * Cashiers are managed on the hub (`duka cashier add|set`, hub_cashiers.h) and arrive by pull:
 * the whole list with each cashier's argon2id PIN hash, replaced in one transaction
 * (duka_cashiers_apply_pull). Offline the till keeps the last list, so a cashier logs in with
 * no network. A login checks the PIN against the hash (crypto_pwhash_str_verify) and opens a
 * session: a random token the browser keeps in a cookie, stored here only as its hash, in the
 * till's SQLite, so a session survives a power cut. Wrong PINs count per cashier (persisted,
 * apart from the pulled list, so a pull resets no lockout); DUKA_LOGIN_FAILURES_MAX in a row
 * lock the cashier for DUKA_LOGIN_LOCK_MS.
 *
 * Workload: a login is one argon2id verification (~20 ms at DUKA_PIN_HASH_* parameters); a
 * session check, once per request of the UI, is one indexed read and at most one write every
 * DUKA_SESSION_TOUCH_MS.
 *
 * Every function takes the till's connection; none keeps a pointer to its arguments. Used by
 * the till's HTTP handlers (till_server.c) and `duka sell --cashier`.
 */
#ifndef DUKA_CASHIER_H
#define DUKA_CASHIER_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/limits.h"

typedef struct duka_cashier {
    char id[DUKA_UUID_STR_LEN + 1];
    char name[DUKA_CASHIER_NAME_MAX + 1];
    char role[8]; /* "cashier" | "manager" */
} duka_cashier;

/* Active cashiers, by name (case-insensitively, then by id): at most max into out, *count the
 * number written. DUKA_STORE on a storage error. */
duka_rc duka_cashier_list(sqlite3 *db, duka_cashier *out, int max, int *count, duka_err *err);

/* The active cashier called name (ASCII case ignored), for `duka sell --cashier NAME`.
 * DUKA_NOTFOUND "no active cashier 'x' on this till" when there is none (or only an inactive
 * one). */
duka_rc duka_cashier_find_by_name(sqlite3 *db, const char *name, duka_cashier *out,
                                  duka_err *err);

typedef struct duka_session {
    duka_cashier cashier;
    int64_t created_ms, last_seen_ms;
} duka_session;

#define DUKA_SESSION_TOKEN_LEN 43 /* base64url of 32 random bytes, no padding */
/* A session's last_seen_ms is written at most this often (a check within it reads only): the
 * status bar asks every second and each write is an fsync. A session thus ends between
 * idle_ms - DUKA_SESSION_TOUCH_MS and idle_ms after its last request. */
#define DUKA_SESSION_TOUCH_MS 30000LL

/* Checks the PIN of an active cashier (by id) and opens a session: a random token, stored on
 * the till only as its hash; token and *s are filled on success. Errors (err.msg a sentence
 * for the login screen):
 *   DUKA_NOTFOUND  "no cashier <id> on this till" (also for a deactivated one)
 *   DUKA_INPUT     "PIN: 4 to 8 digits" (not counted as a wrong PIN)
 *   DUKA_AUTH      "wrong PIN for Amina (2 tries left)"
 *   DUKA_BUSY      "Amina is locked after 5 wrong PINs; try again in 4 min" (the 5th wrong PIN
 *                  answers this too; while locked the PIN is not even checked)
 * A wrong PIN counts per cashier, persisted; a good one resets the count; once the lock has
 * run out the cashier has DUKA_LOGIN_FAILURES_MAX tries again. idle_ms is not used to open
 * the session (each check takes its own); it is accepted so the caller passes one setting. */
duka_rc duka_session_login(sqlite3 *db, const duka_clock *clock, const char *cashier_id,
                           const char *pin, int64_t idle_ms,
                           char token[DUKA_SESSION_TOKEN_LEN + 1], duka_session *s,
                           duka_err *err);

/* The session of a token, its last_seen refreshed. DUKA_AUTH ("not logged in", "session
 * expired: log in again", "Amina is no longer a cashier of this till") when absent, idle past
 * idle_ms, or its cashier deactivated/removed by a pull since; an expired or orphaned session
 * is deleted. s may be NULL. */
duka_rc duka_session_check(sqlite3 *db, const duka_clock *clock, const char *token,
                           int64_t idle_ms, duka_session *s, duka_err *err);

/* Ends the session of token (nothing when there is none: logging out twice is fine). */
duka_rc duka_session_logout(sqlite3 *db, const char *token, duka_err *err);

/* Retention: removes the sessions idle longer than idle_ms (and DUKA_SESSION_TOUCH_MS, by
 * which last_seen lags) at now_ms — a browser closed without logging out leaves one behind.
 * One statement; *deleted the count. */
duka_rc duka_session_cleanup(sqlite3 *db, int64_t idle_ms, int64_t now_ms, int64_t *deleted,
                             duka_err *err);

/* The version of the cashier list this till holds (0 before the first pull brought one). */
duka_rc duka_cashiers_version(sqlite3 *db, int64_t *version, duka_err *err);

/* Replaces the till's cashier list with a pull reply's member {"version": V, "list": [{"id",
 * "name", "role", "pin_hash", "active"}]} in one transaction with the version. NULL (absent:
 * the list did not change) does nothing. A malformed member is DUKA_PROTOCOL naming the
 * field, and nothing changes. Sessions of cashiers no longer active end at their next check;
 * login failures are kept. */
duka_rc duka_cashiers_apply_pull(sqlite3 *db, const json_t *member, duka_err *err);

#endif
