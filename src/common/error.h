/*
 * error.h — the one error type of duka.
 *
 * Every fallible function returns a duka_rc and, when given a duka_err, fills it with a
 * human sentence naming what failed and where ("unknown SKU 'XYZ' (argument 2)"). The CLI
 * prints that sentence as its single stderr line. The enum and its name/message tables are
 * generated from one X-macro so they cannot drift apart (as libuv does).
 */
#ifndef DUKA_ERROR_H
#define DUKA_ERROR_H

#include <stdarg.h>

/* X(NAME, generic message, code): the code is the stable lower-case name that machine-readable
 * output carries ({"error":{"code","message"}} of `duka … --json`, README "Errors"); once
 * published a code never changes meaning. */
#define DUKA_ERRNO_MAP(X)                                                   \
    X(OK, "ok", "ok")                                                       \
    X(USAGE, "bad usage", "usage")                                          \
    X(INPUT, "invalid input", "invalid_input")                              \
    X(NOTFOUND, "not found", "not_found")                                   \
    X(STORE, "storage error", "store")                                      \
    X(NOMEM, "out of memory", "nomem")                                      \
    X(OFFLINE, "hub unreachable", "offline")                                \
    X(AUTH, "token rejected", "auth")                                       \
    X(PROTOCOL, "protocol error", "protocol")                               \
    X(LIMIT, "limit exceeded", "limit")                                     \
    X(CONFLICT, "conflict", "conflict")                                     \
    X(BUSY, "busy", "busy")                                                 \
    X(INTERNAL, "internal error", "internal")

typedef enum duka_rc {
#define DUKA_ERR_ENUM(name, msg, code) DUKA_##name,
    DUKA_ERRNO_MAP(DUKA_ERR_ENUM)
#undef DUKA_ERR_ENUM
    DUKA_RC_COUNT
} duka_rc;

#define DUKA_ERR_MSG_MAX 320

/* Filled by the function that failed; the first error wins (later calls keep it). */
typedef struct duka_err {
    duka_rc rc;
    char msg[DUKA_ERR_MSG_MAX];
} duka_err;

/* Short name ("NOTFOUND"), generic message ("not found") and stable lower-case code
 * ("not_found") of a code; out-of-range values give "UNKNOWN", "unknown error", "internal". */
const char *duka_rc_name(duka_rc rc);
const char *duka_rc_message(duka_rc rc);
const char *duka_rc_code(duka_rc rc);

/* Records rc and a formatted sentence in err (when err is not NULL and has no error yet).
 * Returns rc so callers can write `return duka_err_set(err, DUKA_INPUT, "...")`. */
duka_rc duka_err_set(duka_err *err, duka_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to DUKA_OK / "". */
void duka_err_clear(duka_err *err);

#endif
