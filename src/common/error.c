/* error.c — message tables and the error context (see error.h). */
#include "common/error.h"

#include <stdio.h>
#include <string.h>

static const char *const rc_names[] = {
#define DUKA_ERR_NAME(name, msg, code) #name,
    DUKA_ERRNO_MAP(DUKA_ERR_NAME)
#undef DUKA_ERR_NAME
};

static const char *const rc_messages[] = {
#define DUKA_ERR_TEXT(name, msg, code) msg,
    DUKA_ERRNO_MAP(DUKA_ERR_TEXT)
#undef DUKA_ERR_TEXT
};

static const char *const rc_codes[] = {
#define DUKA_ERR_CODE(name, msg, code) code,
    DUKA_ERRNO_MAP(DUKA_ERR_CODE)
#undef DUKA_ERR_CODE
};

_Static_assert(sizeof(rc_names) / sizeof(rc_names[0]) == DUKA_RC_COUNT, "name table");
_Static_assert(sizeof(rc_codes) / sizeof(rc_codes[0]) == DUKA_RC_COUNT, "code table");

const char *duka_rc_name(duka_rc rc)
{
    return (rc >= 0 && rc < DUKA_RC_COUNT) ? rc_names[rc] : "UNKNOWN";
}

const char *duka_rc_code(duka_rc rc)
{
    return (rc >= 0 && rc < DUKA_RC_COUNT) ? rc_codes[rc] : "internal";
}

const char *duka_rc_message(duka_rc rc)
{
    return (rc >= 0 && rc < DUKA_RC_COUNT) ? rc_messages[rc] : "unknown error";
}

duka_rc duka_err_set(duka_err *err, duka_rc rc, const char *fmt, ...)
{
    if (err == NULL || err->rc != DUKA_OK || rc == DUKA_OK)
        return rc;
    err->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    /* One line only: the CLI prints this as its single stderr line. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return rc;
}

void duka_err_clear(duka_err *err)
{
    if (err == NULL)
        return;
    err->rc = DUKA_OK;
    err->msg[0] = '\0';
}
