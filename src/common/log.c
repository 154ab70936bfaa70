/* log.c — structured stderr logging (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The level below which nothing is logged; "off" silences everything (the simulator). */
static int threshold(void)
{
    const char *v = getenv("DUKA_LOG_LEVEL");
    if (v != NULL && strcmp(v, "off") == 0)
        return DUKA_LOG_ERROR + 1;
    for (int i = 0; v && i < 4; i++)
        if (strcmp(v, level_names[i]) == 0)
            return i;
    return DUKA_LOG_INFO;
}

void duka_log(duka_log_level level, const char *component, const char *fmt, ...)
{
    if ((int)level < threshold())
        return;
    char ts[40], msg[1024];
    duka_clock_format_iso(duka_clock_now_ms(NULL), ts, sizeof(ts));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* one write per line so lines from threads do not interleave */
    fprintf(stderr, "%s %s %s: %s\n", ts, level_names[level], component, msg);
}
