/*
 * clock.h — the time source, injectable so tests never sleep for real time.
 * A NULL clock means the system clock. Receipt days use the till's local time zone (TZ).
 */
#ifndef DUKA_CLOCK_H
#define DUKA_CLOCK_H

#include <stdint.h>

typedef struct duka_clock {
    int64_t (*now_ms)(void *ctx); /* milliseconds since the Unix epoch */
    void *ctx;
} duka_clock;

/* Wall-clock now in ms (system clock when c is NULL). */
int64_t duka_clock_now_ms(const duka_clock *c);

/* Monotonic milliseconds for measuring durations (never goes backwards). */
int64_t duka_monotonic_ms(void);

/* Local calendar day of ms as YYYYMMDD (e.g. 20261121). */
int duka_clock_local_day(int64_t ms);

/* ms as ISO 8601 UTC with milliseconds, "2026-11-21T08:15:00.123Z"; buf >= 32 bytes. */
void duka_clock_format_iso(int64_t ms, char *buf, unsigned long buflen);

#endif
