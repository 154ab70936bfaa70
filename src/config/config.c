/* config.c — settings from defaults, file and environment (see config.h). */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/text.h"

typedef struct setting_def {
    const char *name;
    duka_setting_unit unit;
    int64_t def, lo, hi;
    const char *help;
} setting_def;

static const setting_def defs[DUKA_SETTING_COUNT] = {
#define DUKA_SETTING_DEF(id, name, unit, def, lo, hi, help) {name, unit, def, lo, hi, help},
    DUKA_SETTINGS(DUKA_SETTING_DEF)
#undef DUKA_SETTING_DEF
};

static const char *const source_names[] = {"default", "file", "environment", "command line"};

const char *duka_setting_name(duka_setting_id id)
{
    return (unsigned)id < DUKA_SETTING_COUNT ? defs[id].name : "?";
}

const char *duka_setting_source_name(duka_setting_source src)
{
    return (unsigned)src < 4 ? source_names[src] : "?";
}

int64_t duka_config_get(const duka_config *cfg, duka_setting_id id)
{
    return cfg->value[id];
}

void duka_config_defaults(duka_config *cfg)
{
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        cfg->value[i] = defs[i].def;
        cfg->source[i] = DUKA_SOURCE_DEFAULT;
    }
    cfg->file[0] = '\0';
}

static bool is_duration(duka_setting_unit u)
{
    return u == DUKA_UNIT_MS || u == DUKA_UNIT_SECONDS || u == DUKA_UNIT_MINUTES ||
           u == DUKA_UNIT_DAYS;
}

static int64_t unit_ms(duka_setting_unit u)
{
    switch (u) {
    case DUKA_UNIT_SECONDS: return 1000;
    case DUKA_UNIT_MINUTES: return 60000;
    case DUKA_UNIT_DAYS: return 86400000;
    default: return 1;
    }
}

/* Parses value per unit; false on anything malformed. */
static bool parse_value(const setting_def *d, const char *text, int64_t *out)
{
    if (d->unit == DUKA_UNIT_BOOL) {
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcmp(text, "1") ||
            !strcasecmp(text, "on"))
            *out = 1;
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") || !strcmp(text, "0") ||
                 !strcasecmp(text, "off"))
            *out = 0;
        else
            return false;
        return true;
    }
    if (!isdigit((unsigned char)text[0]))
        return false;
    errno = 0;
    char *end = NULL;
    long long n = strtoll(text, &end, 10);
    if (errno != 0 || n < 0 || n > 1000000000000LL)
        return false;
    if (!is_duration(d->unit)) {
        if (*end != '\0')
            return false;
        *out = n;
        return true;
    }
    int64_t mul;
    if (*end == '\0')
        mul = unit_ms(d->unit);
    else if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s"))
        mul = 1000;
    else if (!strcmp(end, "m") || !strcmp(end, "min"))
        mul = 60000;
    else if (!strcmp(end, "h"))
        mul = 3600000;
    else if (!strcmp(end, "d"))
        mul = 86400000;
    else
        return false;
    if (n > INT64_MAX / mul)
        return false;
    *out = (int64_t)n * mul;
    return true;
}

static void describe_range(const setting_def *d, char *buf, size_t n)
{
    if (d->unit == DUKA_UNIT_BOOL)
        snprintf(buf, n, "true or false");
    else if (is_duration(d->unit))
        snprintf(buf, n, "a duration from %lldms to %lldms (units: ms, s, m, h, d; bare number: %s)",
                 (long long)d->lo, (long long)d->hi,
                 d->unit == DUKA_UNIT_MS        ? "ms"
                 : d->unit == DUKA_UNIT_SECONDS ? "seconds"
                 : d->unit == DUKA_UNIT_MINUTES ? "minutes"
                                                : "days");
    else
        snprintf(buf, n, "a whole number %lld..%lld", (long long)d->lo, (long long)d->hi);
}

duka_rc duka_config_set(duka_config *cfg, const char *name, const char *value,
                        duka_setting_source source, const char *what, duka_err *err)
{
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        if (strcmp(defs[i].name, name) != 0)
            continue;
        int64_t v = 0;
        if (!parse_value(&defs[i], value, &v) || v < defs[i].lo || v > defs[i].hi) {
            char range[160];
            describe_range(&defs[i], range, sizeof(range));
            return duka_err_set(err, DUKA_INPUT, "invalid setting %s='%s' (%s): expected %s", name,
                                value, what, range);
        }
        cfg->value[i] = v;
        cfg->source[i] = source;
        return DUKA_OK;
    }
    return duka_err_set(err, DUKA_INPUT, "unknown setting '%s' (%s)", name, what);
}

static duka_rc load_file(duka_config *cfg, const char *path, duka_err *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return duka_err_set(err, DUKA_NOTFOUND, "cannot read config file '%s': %s", path,
                            strerror(errno));
    char line[DUKA_CONFIG_LINE_MAX + 2];
    int lineno = 0;
    duka_rc rc = DUKA_OK;
    while (rc == DUKA_OK && fgets(line, sizeof(line), f) != NULL) {
        char what[DUKA_CONFIG_PATH_MAX + 32];
        lineno++;
        snprintf(what, sizeof(what), "%s line %d", path, lineno);
        if (lineno > DUKA_CONFIG_LINES_MAX) {
            rc = duka_err_set(err, DUKA_INPUT, "%s: more than %d lines", path,
                              DUKA_CONFIG_LINES_MAX);
            break;
        }
        if (strchr(line, '\n') == NULL && !feof(f)) {
            rc = duka_err_set(err, DUKA_INPUT, "%s: longer than %d characters", what,
                              DUKA_CONFIG_LINE_MAX);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *t = duka_trim(line);
        if (*t == '\0')
            continue;
        char *eq = strchr(t, '=');
        if (eq == NULL) {
            rc = duka_err_set(err, DUKA_INPUT, "%s: expected NAME=value", what);
            break;
        }
        *eq = '\0';
        rc = duka_config_set(cfg, duka_trim(t), duka_trim(eq + 1), DUKA_SOURCE_FILE, what, err);
    }
    fclose(f);
    return rc;
}

duka_rc duka_config_load(duka_config *cfg, const char *db_path, const char *file, duka_err *err)
{
    duka_config_defaults(cfg);
    char path[DUKA_CONFIG_PATH_MAX];
    path[0] = '\0';
    if (file != NULL) {
        snprintf(path, sizeof(path), "%s", file);
    } else if (getenv("DUKA_CONFIG") != NULL && getenv("DUKA_CONFIG")[0] != '\0') {
        snprintf(path, sizeof(path), "%s", getenv("DUKA_CONFIG"));
    } else if (db_path != NULL) {
        const char *slash = strrchr(db_path, '/');
        struct stat sb;
        if (slash)
            snprintf(path, sizeof(path), "%.*s/duka.conf", (int)(slash - db_path), db_path);
        else
            snprintf(path, sizeof(path), "duka.conf");
        if (stat(path, &sb) != 0)
            path[0] = '\0';
    }
    if (path[0] != '\0') {
        duka_rc rc = load_file(cfg, path, err);
        if (rc != DUKA_OK)
            return rc;
        snprintf(cfg->file, sizeof(cfg->file), "%s", path);
    }
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        const char *v = getenv(defs[i].name);
        if (v == NULL)
            continue;
        duka_rc rc = duka_config_set(cfg, defs[i].name, v, DUKA_SOURCE_ENV, "environment", err);
        if (rc != DUKA_OK)
            return rc;
    }
    return DUKA_OK;
}

json_t *duka_config_json(const duka_config *cfg)
{
    json_t *arr = json_array();
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        const setting_def *d = &defs[i];
        const char *unit = d->unit == DUKA_UNIT_COUNT ? "count"
                           : d->unit == DUKA_UNIT_BOOL ? "bool"
                                                       : "ms";
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:s, s:s}", "name", d->name, "value",
                                             (json_int_t)cfg->value[i], "unit", unit, "source",
                                             source_names[cfg->source[i]], "help", d->help));
    }
    return json_pack("{s:s, s:o}", "file", cfg->file, "settings", arr);
}
