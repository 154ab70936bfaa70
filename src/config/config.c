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

#include "common/clock.h"
#include "common/money.h"
#include "common/text.h"
#include "net/http_client.h"

typedef struct setting_def {
    const char *name;
    duka_setting_unit unit;
    int64_t def, lo, hi;
    const char *help;
    const char *text_def; /* DUKA_UNIT_TEXT only */
} setting_def;

static const setting_def defs[DUKA_SETTING_COUNT] = {
#define DUKA_SETTING_DEF(id, name, unit, def, lo, hi, help) {name, unit, def, lo, hi, help, NULL},
    DUKA_SETTINGS(DUKA_SETTING_DEF)
#undef DUKA_SETTING_DEF
#define DUKA_TEXT_SETTING_DEF(id, name, unit, def, help) {name, unit, 0, 0, 0, help, def},
    DUKA_TEXT_SETTINGS(DUKA_TEXT_SETTING_DEF)
#undef DUKA_TEXT_SETTING_DEF
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

const char *duka_config_text(const duka_config *cfg, duka_setting_id id)
{
    return (unsigned)id < DUKA_SETTING_COUNT ? cfg->text[id] : "";
}

void duka_config_defaults(duka_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        cfg->value[i] = defs[i].def;
        cfg->source[i] = DUKA_SOURCE_DEFAULT;
        if (defs[i].text_def != NULL)
            snprintf(cfg->text[i], sizeof(cfg->text[i]), "%s", defs[i].text_def);
    }
}

/* Records a problem (kept up to DUKA_CONFIG_PROBLEMS_MAX, counted beyond). */
static void add_problem(duka_config *cfg, const char *msg)
{
    if (cfg->problem_count < DUKA_CONFIG_PROBLEMS_MAX)
        snprintf(cfg->problems[cfg->problem_count], sizeof(cfg->problems[0]), "%s", msg);
    cfg->problem_count++;
}

void duka_config_problems_summary(const duka_config *cfg, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    buf[0] = '\0';
    if (cfg->problem_count == 0)
        return;
    size_t n = (size_t)snprintf(buf, buflen, "%d setting%s ignored (defaults used): ",
                                cfg->problem_count, cfg->problem_count == 1 ? "" : "s");
    int kept = cfg->problem_count < DUKA_CONFIG_PROBLEMS_MAX ? cfg->problem_count
                                                             : DUKA_CONFIG_PROBLEMS_MAX;
    for (int i = 0; i < kept && n < buflen; i++)
        n += (size_t)snprintf(buf + n, buflen - n, "%s%s", i ? "; " : "", cfg->problems[i]);
    if (cfg->problem_count > kept && n < buflen)
        snprintf(buf + n, buflen - n, "; and %d more", cfg->problem_count - kept);
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
    if (d->unit == DUKA_UNIT_KES)
        return duka_parse_amount(text, d->hi, out, d->name, NULL) == DUKA_OK;
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

/* Whether a unit's values are text (cfg->text) rather than numbers. */
static bool is_text(duka_setting_unit u)
{
    return u == DUKA_UNIT_TEXT || u == DUKA_UNIT_URL || u == DUKA_UNIT_WORD ||
           u == DUKA_UNIT_SECRET;
}

static void describe_range(const setting_def *d, char *buf, size_t n)
{
    if (d->unit == DUKA_UNIT_BOOL)
        snprintf(buf, n, "true or false");
    else if (d->unit == DUKA_UNIT_KES) {
        char lo[48], hi[48];
        duka_format_cents_grouped(d->lo, lo, sizeof(lo));
        duka_format_cents_grouped(d->hi, hi, sizeof(hi));
        snprintf(buf, n, "an amount in KES from %s to %s, like 250000.00", lo, hi);
    } else if (d->unit == DUKA_UNIT_TEXT)
        snprintf(buf, n, "a time zone name such as Africa/Nairobi, or POSIX such as EAT-3");
    else if (d->unit == DUKA_UNIT_URL)
        snprintf(buf, n, "an http:// or https:// URL of at most %d characters, or nothing (off)",
                 DUKA_SETTING_TEXT_MAX);
    else if (d->unit == DUKA_UNIT_WORD || d->unit == DUKA_UNIT_SECRET)
        snprintf(buf, n, "at most %d printable characters without spaces, or nothing",
                 DUKA_SETTING_TEXT_MAX);
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

/* Parses value for setting i into *v (or, for a text setting, checks it); false when bad. */
static bool value_ok(int i, const char *value, int64_t *v)
{
    if (defs[i].unit == DUKA_UNIT_TEXT)
        return strlen(value) <= DUKA_SETTING_TEXT_MAX && duka_clock_zone_known(value);
    if (defs[i].unit == DUKA_UNIT_URL)
        return value[0] == '\0' ||
               (strlen(value) <= DUKA_SETTING_TEXT_MAX && duka_http_url_valid(value));
    if (defs[i].unit == DUKA_UNIT_WORD || defs[i].unit == DUKA_UNIT_SECRET) {
        if (strlen(value) > DUKA_SETTING_TEXT_MAX)
            return false;
        for (const char *c = value; *c; c++)
            if (*c <= ' ' || *c > '~')
                return false;
        return true;
    }
    return parse_value(&defs[i], value, v) && *v >= defs[i].lo && *v <= defs[i].hi;
}

duka_rc duka_config_set(duka_config *cfg, const char *name, const char *value,
                        duka_setting_source source, const char *what, duka_err *err)
{
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        if (strcmp(defs[i].name, name) != 0)
            continue;
        int64_t v = 0;
        if (!value_ok(i, value, &v)) {
            char range[160];
            describe_range(&defs[i], range, sizeof(range));
            /* A secret is never echoed, not even a wrong one: it may be the right one
             * pasted with a space. */
            return duka_err_set(err, DUKA_INPUT, "invalid setting %s='%s' (%s): expected %s", name,
                                defs[i].unit == DUKA_UNIT_SECRET ? "(hidden)" : value, what,
                                range);
        }
        if (is_text(defs[i].unit))
            snprintf(cfg->text[i], sizeof(cfg->text[i]), "%s", value);
        else
            cfg->value[i] = v;
        cfg->source[i] = source;
        return DUKA_OK;
    }
    return duka_err_set(err, DUKA_INPUT, "unknown setting '%s' (%s)", name, what);
}

/* As duka_config_set, recording a failure as a problem instead of returning it. */
static void set_or_note(duka_config *cfg, const char *name, const char *value,
                        duka_setting_source source, const char *what)
{
    duka_err err = {0};
    if (duka_config_set(cfg, name, value, source, what, &err) != DUKA_OK)
        add_problem(cfg, err.msg);
}

/* Reads NAME=value lines; every bad line is a problem and the rest still count. */
static void load_file(duka_config *cfg, FILE *f, const char *path)
{
    char line[DUKA_CONFIG_LINE_MAX + 2];
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char what[DUKA_CONFIG_PATH_MAX + 32], msg[DUKA_ERR_MSG_MAX];
        lineno++;
        snprintf(what, sizeof(what), "%s line %d", path, lineno);
        if (lineno > DUKA_CONFIG_LINES_MAX) {
            snprintf(msg, sizeof(msg), "%s: more than %d lines; the rest is not read", path,
                     DUKA_CONFIG_LINES_MAX);
            add_problem(cfg, msg);
            return;
        }
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(msg, sizeof(msg), "%s: longer than %d characters; the line is ignored", what,
                     DUKA_CONFIG_LINE_MAX);
            add_problem(cfg, msg);
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {
            }
            continue;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *t = duka_trim(line);
        if (*t == '\0')
            continue;
        char *eq = strchr(t, '=');
        if (eq == NULL) {
            snprintf(msg, sizeof(msg), "%s: expected NAME=value, not '%.60s'", what, t);
            add_problem(cfg, msg);
            continue;
        }
        *eq = '\0';
        set_or_note(cfg, duka_trim(t), duka_trim(eq + 1), DUKA_SOURCE_FILE, what);
    }
}

duka_rc duka_config_load(duka_config *cfg, const char *db_path, const char *file, duka_err *err)
{
    duka_config_defaults(cfg);
    char path[DUKA_CONFIG_PATH_MAX];
    path[0] = '\0';
    bool required = file != NULL;
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
        FILE *f = fopen(path, "r");
        if (f == NULL && required)
            return duka_err_set(err, DUKA_NOTFOUND, "cannot read config file '%s': %s", path,
                                strerror(errno));
        if (f == NULL) {
            char msg[DUKA_ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "cannot read config file '%s' (DUKA_CONFIG): %s", path,
                     strerror(errno));
            add_problem(cfg, msg);
        } else {
            load_file(cfg, f, path);
            fclose(f);
            snprintf(cfg->file, sizeof(cfg->file), "%s", path);
        }
    }
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        const char *v = getenv(defs[i].name);
        if (v != NULL)
            set_or_note(cfg, defs[i].name, v, DUKA_SOURCE_ENV, "environment");
    }
    return DUKA_OK;
}

void duka_config_apply_timezone(duka_config *cfg)
{
    const char *zone = cfg->text[DUKA_SETTING_SHOP_TIMEZONE];
    if (duka_clock_use_zone(zone))
        return;
    /* Checked when it was set, so only a zone file gone since can land here. */
    char msg[DUKA_ERR_MSG_MAX];
    snprintf(msg, sizeof(msg), "SHOP_TIMEZONE='%s' cannot be used on this machine; using %s",
             zone, defs[DUKA_SETTING_SHOP_TIMEZONE].text_def);
    add_problem(cfg, msg);
    snprintf(cfg->text[DUKA_SETTING_SHOP_TIMEZONE], sizeof(cfg->text[0]), "%s",
             defs[DUKA_SETTING_SHOP_TIMEZONE].text_def);
    cfg->source[DUKA_SETTING_SHOP_TIMEZONE] = DUKA_SOURCE_DEFAULT;
    duka_clock_use_zone(defs[DUKA_SETTING_SHOP_TIMEZONE].text_def);
}

json_t *duka_config_json(const duka_config *cfg)
{
    json_t *arr = json_array();
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        const setting_def *d = &defs[i];
        const char *unit = d->unit == DUKA_UNIT_COUNT    ? "count"
                           : d->unit == DUKA_UNIT_BOOL   ? "bool"
                           : d->unit == DUKA_UNIT_KES    ? "cents"
                           : d->unit == DUKA_UNIT_TEXT   ? "text"
                           : d->unit == DUKA_UNIT_URL    ? "url"
                           : d->unit == DUKA_UNIT_WORD   ? "text"
                           : d->unit == DUKA_UNIT_SECRET ? "secret"
                                                         : "ms";
        json_t *value = !is_text(d->unit) ? json_integer((json_int_t)cfg->value[i])
                        : d->unit != DUKA_UNIT_SECRET ? json_string(cfg->text[i])
                        : json_string(cfg->text[i][0] ? "(set)" : "");
        json_array_append_new(arr, json_pack("{s:s, s:o, s:s, s:s, s:s}", "name", d->name,
                                             "value", value, "unit", unit, "source",
                                             source_names[cfg->source[i]], "help", d->help));
    }
    json_t *problems = json_array();
    int kept = cfg->problem_count < DUKA_CONFIG_PROBLEMS_MAX ? cfg->problem_count
                                                             : DUKA_CONFIG_PROBLEMS_MAX;
    for (int i = 0; i < kept; i++)
        json_array_append_new(problems, json_string(cfg->problems[i]));
    return json_pack("{s:s, s:o, s:o, s:i}", "file", cfg->file, "settings", arr, "problems",
                     problems, "problem_count", cfg->problem_count);
}
