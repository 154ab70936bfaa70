/*
 * log.h — structured one-line logs on stderr: time, level, component, then key=value text.
 * DUKA_LOG_LEVEL=debug|info|warn|error|off (default info) filters them.
 */
#ifndef DUKA_LOG_H
#define DUKA_LOG_H

typedef enum duka_log_level {
    DUKA_LOG_DEBUG,
    DUKA_LOG_INFO,
    DUKA_LOG_WARN,
    DUKA_LOG_ERROR,
} duka_log_level;

void duka_log(duka_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
