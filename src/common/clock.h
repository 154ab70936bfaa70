/*
 * clock.h — the time source, injectable so tests never sleep for real time.
 * A NULL clock means the system clock. Receipt days and local times follow the process's
 * time zone, which every command sets from the shop's (SHOP_TIMEZONE, default Africa/Nairobi)
 * with duka_clock_use_zone before it starts a thread: never the machine's own, which on a
 * Debian default is UTC, where a sale at 00:30 in Nairobi would carry the previous day.
 */
#ifndef DUKA_CLOCK_H
#define DUKA_CLOCK_H

#include <stdbool.h>
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

/* The start of ms's local day (the shop's time zone), epoch ms. */
int64_t duka_clock_local_midnight_ms(int64_t ms);

/* True when zone is a time zone this machine can use: a name with a file under the zone
 * database ($TZDIR or /usr/share/zoneinfo; letters, digits, '/', '_', '-', '+' only, no
 * "..": "Africa/Nairobi"), "Africa/Nairobi" itself even without that database (below), or a
 * POSIX TZ of a fixed offset: 3 or more letters, an offset of hours[:minutes] west of UTC
 * ("EAT-3", "UTC0", "<+03>-3"). */
bool duka_clock_zone_known(const char *zone);

/* Makes local times follow zone (setenv TZ + tzset): call before threads start. Kenya has had
 * one offset all year since 1960, so "Africa/Nairobi" on a machine without tzdata becomes
 * the equivalent "EAT-3" instead of glibc's silent UTC. False (nothing changed) when
 * duka_clock_zone_known(zone) is false. */
bool duka_clock_use_zone(const char *zone);

/* ms in the process's time zone as "2026-11-21 14:02:05"; buf >= 32 bytes. */
void duka_clock_format_local(int64_t ms, char *buf, unsigned long buflen);

/* ms as ISO 8601 UTC with milliseconds, "2026-11-21T08:15:00.123Z"; buf >= 32 bytes. */
void duka_clock_format_iso(int64_t ms, char *buf, unsigned long buflen);

#endif
