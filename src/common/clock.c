/* clock.c — system and injectable clocks (see clock.h). */
#include "common/clock.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ZONE_NAME_MAX 64
#define ZONE_DEFAULT "Africa/Nairobi"
#define ZONE_DEFAULT_POSIX "EAT-3"

int64_t duka_clock_now_ms(const duka_clock *c)
{
    if (c != NULL && c->now_ms != NULL)
        return c->now_ms(c->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t duka_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int duka_clock_local_day(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

int64_t duka_clock_local_midnight_ms(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000;
}

void duka_clock_format_iso(int64_t ms, char *buf, unsigned long buflen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* NAME[+-]H[H][:MM], or <+HH[MM]>[+-]H[H][:MM]: a fixed offset, no daylight saving rule. */
static bool posix_fixed_zone(const char *z)
{
    const char *p = z;
    if (*p == '<') {
        const char *close = strchr(p, '>');
        if (close == NULL || close - p < 2 || close - p > 8)
            return false;
        for (const char *q = p + 1; q < close; q++)
            if (!isalnum((unsigned char)*q) && *q != '+' && *q != '-')
                return false;
        p = close + 1;
    } else {
        int letters = 0;
        while (isalpha((unsigned char)*p)) {
            p++;
            letters++;
        }
        if (letters < 3 || letters > 6)
            return false;
    }
    if (*p == '+' || *p == '-')
        p++;
    int digits = 0;
    while (isdigit((unsigned char)*p) && digits < 3) {
        p++;
        digits++;
    }
    if (digits == 0 || digits > 2)
        return false;
    if (*p == ':') {
        p++;
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
            return false;
        p += 2;
    }
    return *p == '\0';
}

/* A name from the zone database: its file exists and is a regular file. */
static bool zone_file_exists(const char *z)
{
    size_t n = strlen(z);
    if (n == 0 || n > ZONE_NAME_MAX || z[0] == '/' || strstr(z, "..") != NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)z[i]) && strchr("/_-+", z[i]) == NULL)
            return false;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", z);
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

bool duka_clock_zone_known(const char *zone)
{
    if (zone == NULL || zone[0] == '\0' || strlen(zone) > ZONE_NAME_MAX)
        return false;
    return strcmp(zone, ZONE_DEFAULT) == 0 || strcmp(zone, "UTC") == 0 ||
           zone_file_exists(zone) || posix_fixed_zone(zone);
}

bool duka_clock_use_zone(const char *zone)
{
    if (!duka_clock_zone_known(zone))
        return false;
    const char *tz = zone;
    if (strcmp(zone, ZONE_DEFAULT) == 0 && !zone_file_exists(zone))
        tz = ZONE_DEFAULT_POSIX;
    else if (strcmp(zone, "UTC") == 0 && !zone_file_exists(zone))
        tz = "UTC0";
    setenv("TZ", tz, 1);
    tzset();
    return true;
}

void duka_clock_format_local(int64_t ms, char *buf, unsigned long buflen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    snprintf(buf, buflen, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
