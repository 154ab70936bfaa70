/*
 * test_config.c — the till's settings (config/config.h): defaults, values parsed per unit
 * (counts; durations with ms/s/m/h/d suffixes or bare numbers in the setting's own unit),
 * range limits, error messages that name key, value and source, the config file format, the
 * precedence environment > file > default, and the JSON that `duka config` prints.
 *
 * Every test starts with none of the settings' environment variables (nor DUKA_CONFIG) set
 * and the caller's environment is put back afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "config/config.h"
#include "test_util.h"

#define DAY_MS 86400000LL

/* The settings table, from the same X-macro the library uses. */
typedef struct setting_row {
    duka_setting_id id;
    const char *name;
    duka_setting_unit unit;
    int64_t def, lo, hi;
} setting_row;

static const setting_row rows[DUKA_SETTING_COUNT] = {
#define TEST_SETTING_ROW(id, name, unit, def, lo, hi, help)                                   \
    {DUKA_SETTING_##id, name, unit, def, lo, hi},
    DUKA_SETTINGS(TEST_SETTING_ROW)
#undef TEST_SETTING_ROW
#define TEST_TEXT_ROW(id, name, unit, def, help) {DUKA_SETTING_##id, name, unit, 0, 0, 0},
    DUKA_TEXT_SETTINGS(TEST_TEXT_ROW)
#undef TEST_TEXT_ROW
};

/* SHOP_TIMEZONE, ETIMS_BASE_URL, ETIMS_QR_BASE, and M-Pesa's two URLs, three secrets, the
 * initiator and the credential file. */
#define TEXT_SETTING_COUNT 10

static bool is_text(duka_setting_unit u)
{
    return u == DUKA_UNIT_TEXT || u == DUKA_UNIT_URL || u == DUKA_UNIT_WORD ||
           u == DUKA_UNIT_SECRET;
}

static bool is_duration(duka_setting_unit u)
{
    return u == DUKA_UNIT_MS || u == DUKA_UNIT_SECONDS || u == DUKA_UNIT_MINUTES ||
           u == DUKA_UNIT_DAYS;
}

/* ---- fixture: a temp dir and a clean environment ---- */

typedef struct fixture {
    test_dir dir;
    char *saved_env[DUKA_SETTING_COUNT + 1]; /* the last one is DUKA_CONFIG */
} fixture;

static const char *env_name(int i)
{
    return i < DUKA_SETTING_COUNT ? rows[i].name : "DUKA_CONFIG";
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_dir_make(&f->dir);
    for (int i = 0; i <= DUKA_SETTING_COUNT; i++) {
        const char *v = getenv(env_name(i));
        if (v != NULL) {
            f->saved_env[i] = strdup(v);
            assert_non_null(f->saved_env[i]);
        }
        unsetenv(env_name(i));
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i <= DUKA_SETTING_COUNT; i++) {
        if (f->saved_env[i] != NULL)
            setenv(env_name(i), f->saved_env[i], 1);
        else
            unsetenv(env_name(i));
        free(f->saved_env[i]);
    }
    test_dir_remove(&f->dir);
    free(f);
    return 0;
}

/* Writes text to dir/name and puts its path in path. */
static void write_file(const fixture *f, const char *name, const char *text, char *path,
                       size_t pathlen)
{
    test_dir_file(&f->dir, name, path, pathlen);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Sets name=value from the command line; returns the rc and leaves the message in err. */
static duka_rc set(duka_config *cfg, const char *name, const char *value, duka_err *err)
{
    memset(err, 0, sizeof(*err)); /* the first error wins: start clean each time */
    return duka_config_set(cfg, name, value, DUKA_SOURCE_FLAG, "--set", err);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    duka_config cfg;
    memset(&cfg, 0x5a, sizeof(cfg));
    duka_config_defaults(&cfg);
    /* The documented defaults (PRODUCT.md, the issue, limits.h). */
    const struct {
        duka_setting_id id;
        int64_t value;
    } expected[] = {
        {DUKA_SETTING_QUEUE_MAX_RETRIES, 5},
        {DUKA_SETTING_QUEUE_RETENTION, 7 * DAY_MS},
        {DUKA_SETTING_SYNC_INTERVAL, 30000},
        {DUKA_SETTING_SYNC_BATCH, 500},
        {DUKA_SETTING_SYNC_IN_FLIGHT, 3},
        {DUKA_SETTING_QUEUE_ALERT_PENDING, 100},
        {DUKA_SETTING_BACKOFF_BASE, 1000},
        {DUKA_SETTING_BACKOFF_MAX, 300000},
        {DUKA_SETTING_PROBE_INTERVAL, 30000},
        {DUKA_SETTING_PROBE_TIMEOUT, 5000},
        {DUKA_SETTING_OFFLINE_RECHECK_MAX, 4000},
        {DUKA_SETTING_DEGRADED_LATENCY, 2000},
        {DUKA_SETTING_DEGRADED_FAILURES, 3},
        {DUKA_SETTING_ALERT_OFFLINE_AFTER, 1800000},
        {DUKA_SETTING_PRIORITY_TAX, 10},
        {DUKA_SETTING_PRIORITY_SALE, 20},
        {DUKA_SETTING_PRIORITY_PAYMENT, 30},
        {DUKA_SETTING_PRIORITY_BACKUP, 60},
        {DUKA_SETTING_PRIORITY_BULK, 90},
        {DUKA_SETTING_RETRIES_SALE, 0},
        {DUKA_SETTING_SALE_LINE_MAX, 50000000},  /* KES 500,000 */
        {DUKA_SETTING_SALE_MAX, 100000000},      /* KES 1,000,000 */
        {DUKA_SETTING_TILL_SESSION_IDLE_TIMEOUT, 43200000}, /* 12 h */
        {DUKA_SETTING_ETIMS_TIMEOUT, 30000},
        {DUKA_SETTING_ETIMS_IN_FLIGHT, 16},
        {DUKA_SETTING_ETIMS_MAX_UNSENT, DAY_MS},
        {DUKA_SETTING_MPESA_TIMEOUT, 30000},
        {DUKA_SETTING_MPESA_IN_FLIGHT, 4},
        {DUKA_SETTING_MPESA_VERIFY_WINDOW, DAY_MS},
        {DUKA_SETTING_MPESA_MATCH_WINDOW, 3600000},
        {DUKA_SETTING_MPESA_STATUS_WAIT, 30000},
        {DUKA_SETTING_HUB_CONNECTION_TIMEOUT, 30000},
        {DUKA_SETTING_HUB_CONNECTIONS_PER_IP, 64},
    };
    assert_int_equal(sizeof(expected) / sizeof(expected[0]), DUKA_SETTING_COUNT - TEXT_SETTING_COUNT);
    assert_string_equal(duka_config_text(&cfg, DUKA_SETTING_SHOP_TIMEZONE), "Africa/Nairobi");
    assert_string_equal(duka_config_text(&cfg, DUKA_SETTING_ETIMS_BASE_URL), ""); /* off */
    assert_int_equal(cfg.problem_count, 0);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (duka_config_get(&cfg, expected[i].id) != expected[i].value)
            fail_msg("%s defaults to %lld, expected %lld", duka_setting_name(expected[i].id),
                     (long long)duka_config_get(&cfg, expected[i].id),
                     (long long)expected[i].value);
        assert_int_equal(cfg.source[expected[i].id], DUKA_SOURCE_DEFAULT);
    }
    assert_string_equal(cfg.file, "");
    /* Every default lies within its own range. */
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        if (is_text(rows[i].unit))
            continue;
        if (rows[i].def < rows[i].lo || rows[i].def > rows[i].hi)
            fail_msg("%s: default %lld outside %lld..%lld", rows[i].name,
                     (long long)rows[i].def, (long long)rows[i].lo, (long long)rows[i].hi);
        assert_int_equal(cfg.value[i], rows[i].def);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(duka_setting_name(DUKA_SETTING_QUEUE_MAX_RETRIES),
                        "OFFLINE_QUEUE_MAX_RETRIES");
    assert_string_equal(duka_setting_name(DUKA_SETTING_QUEUE_RETENTION),
                        "OFFLINE_QUEUE_RETENTION_DAYS");
    assert_string_equal(duka_setting_name(DUKA_SETTING_SYNC_INTERVAL),
                        "OFFLINE_QUEUE_PROCESS_INTERVAL");
    assert_string_equal(duka_setting_name(DUKA_SETTING_COUNT), "?");
    assert_string_equal(duka_setting_source_name(DUKA_SOURCE_DEFAULT), "default");
    assert_string_equal(duka_setting_source_name(DUKA_SOURCE_FILE), "file");
    assert_string_equal(duka_setting_source_name(DUKA_SOURCE_ENV), "environment");
    assert_string_equal(duka_setting_source_name(DUKA_SOURCE_FLAG), "command line");
    assert_string_equal(duka_setting_source_name((duka_setting_source)9), "?");
    /* Names are unique. */
    for (int i = 0; i < DUKA_SETTING_COUNT; i++)
        for (int j = i + 1; j < DUKA_SETTING_COUNT; j++)
            assert_string_not_equal(rows[i].name, rows[j].name);
}

/* ---- parsing per unit ---- */

static void test_set_parses_per_unit(void **state)
{
    (void)state;
    const struct {
        const char *name, *text;
        int64_t value;
    } cases[] = {
        /* counts */
        {"OFFLINE_QUEUE_MAX_RETRIES", "7", 7},
        {"OFFLINE_QUEUE_MAX_RETRIES", "007", 7},
        {"OFFLINE_QUEUE_BATCH_SIZE", "250", 250},
        {"QUEUE_SALE_PRIORITY", "0", 0},
        /* minutes: a bare number is minutes */
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "2", 120000},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "2m", 120000},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "2min", 120000},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "45s", 45000},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "1500ms", 1500},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "1h", 3600000},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "1d", DAY_MS},
        {"ALERT_OFFLINE_AFTER", "30", 1800000},
        /* days: a bare number is days */
        {"OFFLINE_QUEUE_RETENTION_DAYS", "7", 7 * DAY_MS},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "30d", 30 * DAY_MS},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "36h", 36 * 3600000LL},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "1440m", DAY_MS},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "86400s", DAY_MS},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "86400000ms", DAY_MS},
        /* seconds: a bare number is seconds */
        {"CONNECTIVITY_CHECK_INTERVAL", "30", 30000},
        {"CONNECTIVITY_CHECK_INTERVAL", "5s", 5000},
        {"CONNECTIVITY_CHECK_INTERVAL", "2m", 120000},
        {"CONNECTIVITY_CHECK_INTERVAL", "2500ms", 2500},
        {"CONNECTIVITY_CHECK_TIMEOUT", "5", 5000},
        {"CONNECTIVITY_OFFLINE_RECHECK_MAX", "8", 8000},
        {"OFFLINE_QUEUE_BACKOFF_MAX", "600", 600000},
        {"OFFLINE_QUEUE_BACKOFF_MAX", "10m", 600000},
        /* milliseconds: a bare number is ms */
        {"OFFLINE_QUEUE_BACKOFF_BASE", "250", 250},
        {"OFFLINE_QUEUE_BACKOFF_BASE", "2s", 2000},
        {"OFFLINE_QUEUE_BACKOFF_BASE", "250ms", 250},
        {"CONNECTIVITY_DEGRADED_LATENCY", "1500", 1500},
        {"CONNECTIVITY_DEGRADED_LATENCY", "1s", 1000},
        /* the hub's: a bare timeout is seconds */
        {"HUB_CONNECTION_TIMEOUT", "2", 2000},
        {"HUB_CONNECTION_TIMEOUT", "1500ms", 1500},
        {"HUB_CONNECTIONS_PER_IP", "0", 0},
        /* KES: up to 2 decimals, stored in cents */
        {"SALE_MAX_AMOUNT", "250000", 25000000},
        {"SALE_MAX_AMOUNT", "250000.5", 25000050},
        {"SALE_MAX_LINE_AMOUNT", "1.00", 100},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_config cfg;
        duka_config_defaults(&cfg);
        duka_err err;
        duka_rc rc = set(&cfg, cases[i].name, cases[i].text, &err);
        if (rc != DUKA_OK)
            fail_msg("%s=%s: rc %d (%s)", cases[i].name, cases[i].text, (int)rc, err.msg);
        int found = 0;
        for (int s = 0; s < DUKA_SETTING_COUNT; s++) {
            if (strcmp(rows[s].name, cases[i].name) != 0)
                continue;
            found = 1;
            if (cfg.value[s] != cases[i].value)
                fail_msg("%s=%s is %lld, expected %lld", cases[i].name, cases[i].text,
                         (long long)cfg.value[s], (long long)cases[i].value);
            assert_int_equal(cfg.source[s], DUKA_SOURCE_FLAG);
        }
        assert_int_equal(found, 1);
    }
}

static void test_set_rejects_malformed(void **state)
{
    (void)state;
    const struct {
        const char *name, *text;
    } cases[] = {
        {"OFFLINE_QUEUE_MAX_RETRIES", ""},
        {"OFFLINE_QUEUE_MAX_RETRIES", "five"},
        {"OFFLINE_QUEUE_MAX_RETRIES", "-1"},
        {"OFFLINE_QUEUE_MAX_RETRIES", "+5"},
        {"OFFLINE_QUEUE_MAX_RETRIES", " 5"},
        {"OFFLINE_QUEUE_MAX_RETRIES", "5 "},
        {"OFFLINE_QUEUE_MAX_RETRIES", "5x"},
        {"OFFLINE_QUEUE_MAX_RETRIES", "2.5"},
        {"OFFLINE_QUEUE_MAX_RETRIES", "0x10"},
        {"OFFLINE_QUEUE_MAX_RETRIES", "5s"}, /* a count takes no unit */
        {"OFFLINE_QUEUE_MAX_RETRIES", "99999999999999999999999"},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "2 m"},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "2M"},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "2w"},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "1.5m"},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "m"},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "-2m"},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "7 days"},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "7dd"},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "1e3"},
        {"SALE_MAX_AMOUNT", "1,000"},
        {"SALE_MAX_AMOUNT", "10.001"},
        {"SALE_MAX_AMOUNT", "KES 500"},
        {"SALE_MAX_AMOUNT", "0.99"}, /* below its minimum of 1.00 */
        {"SHOP_TIMEZONE", ""},
        {"SHOP_TIMEZONE", "Mars/Olympus_Mons"},
        {"SHOP_TIMEZONE", "../../etc/passwd"},
        {"SHOP_TIMEZONE", "/usr/share/zoneinfo/UTC"},
        {"SHOP_TIMEZONE", "EAT-3 rm -rf"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_config cfg;
        memset(&cfg, 0, sizeof(cfg)); /* compared bytewise below: no uninitialised padding */
        duka_config_defaults(&cfg);
        duka_config before = cfg;
        duka_err err;
        duka_rc rc = set(&cfg, cases[i].name, cases[i].text, &err);
        if (rc != DUKA_INPUT)
            fail_msg("%s='%s' accepted (rc %d), expected DUKA_INPUT", cases[i].name,
                     cases[i].text, (int)rc);
        assert_int_equal(err.rc, DUKA_INPUT);
        char quoted[128];
        snprintf(quoted, sizeof(quoted), "%s='%s'", cases[i].name, cases[i].text);
        assert_contains(err.msg, quoted);
        assert_contains(err.msg, "--set");
        /* Nothing changes on an error. */
        assert_memory_equal(&cfg, &before, sizeof(cfg));
    }
}

/* Every setting exactly at its min and max is accepted; one below or above is not. */
static void test_range_limits_of_every_setting(void **state)
{
    (void)state;
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        const setting_row *r = &rows[i];
        if (is_text(r->unit))
            continue; /* no range: test_timezone_setting, test_url_settings */
        /* Durations written in ms so every bound is exact. */
        const char *suffix = is_duration(r->unit) ? "ms" : "";
        const struct {
            int64_t v;
            bool ok;
        } probes[] = {{r->lo, true}, {r->hi, true}, {r->lo - 1, false}, {r->hi + 1, false}};
        for (int p = 0; p < 4; p++) {
            if (probes[p].v < 0)
                continue; /* "-1" is malformed, tested elsewhere */
            char text[40];
            if (r->unit == DUKA_UNIT_KES) /* in KES: cents as whole.hundredths */
                snprintf(text, sizeof(text), "%lld.%02lld", (long long)(probes[p].v / 100),
                         (long long)(probes[p].v % 100));
            else
                snprintf(text, sizeof(text), "%lld%s", (long long)probes[p].v, suffix);
            duka_config cfg;
            duka_config_defaults(&cfg);
            duka_err err;
            duka_rc rc = set(&cfg, r->name, text, &err);
            if (probes[p].ok) {
                if (rc != DUKA_OK)
                    fail_msg("%s=%s (its %s) refused: %s", r->name, text,
                             p == 0 ? "minimum" : "maximum", err.msg);
                assert_int_equal(cfg.value[i], probes[p].v);
            } else {
                if (rc != DUKA_INPUT)
                    fail_msg("%s=%s (one %s its %s) accepted", r->name, text,
                             p == 2 ? "below" : "above", p == 2 ? "minimum" : "maximum");
                assert_contains(err.msg, r->name);
                assert_contains(err.msg, text);
                assert_int_equal(cfg.value[i], r->def);
            }
        }
    }
}

static void test_range_limits_in_the_settings_units(void **state)
{
    (void)state;
    const struct {
        const char *name, *text;
        bool ok;
    } cases[] = {
        {"OFFLINE_QUEUE_MAX_RETRIES", "1", true},
        {"OFFLINE_QUEUE_MAX_RETRIES", "100", true},
        {"OFFLINE_QUEUE_MAX_RETRIES", "0", false},
        {"OFFLINE_QUEUE_MAX_RETRIES", "101", false},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "1", true},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "3650", true},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "0", false},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "3651", false},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "24h", true},
        {"OFFLINE_QUEUE_RETENTION_DAYS", "23h", false},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "1s", true},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "999ms", false},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "1440", true}, /* minutes: one day */
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "1441", false},
        {"OFFLINE_QUEUE_PROCESS_INTERVAL", "0", false},
        {"OFFLINE_QUEUE_BACKOFF_MAX", "86400", true}, /* seconds: one day */
        {"OFFLINE_QUEUE_BACKOFF_MAX", "86401", false},
        {"OFFLINE_QUEUE_BACKOFF_BASE", "10", true}, /* ms */
        {"OFFLINE_QUEUE_BACKOFF_BASE", "9", false},
        {"CONNECTIVITY_CHECK_INTERVAL", "1", true},
        {"CONNECTIVITY_CHECK_INTERVAL", "3600", true},
        {"CONNECTIVITY_CHECK_INTERVAL", "3601", false},
        {"CONNECTIVITY_DEGRADED_FAILURES", "1000", true},
        {"CONNECTIVITY_DEGRADED_FAILURES", "1001", false},
        {"HUB_CONNECTION_TIMEOUT", "1", true},
        {"HUB_CONNECTION_TIMEOUT", "999ms", false},
        {"HUB_CONNECTION_TIMEOUT", "3600", true},
        {"HUB_CONNECTION_TIMEOUT", "3601", false},
        {"HUB_CONNECTIONS_PER_IP", "256", true},
        {"HUB_CONNECTIONS_PER_IP", "257", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_config cfg;
        duka_config_defaults(&cfg);
        duka_err err;
        duka_rc rc = set(&cfg, cases[i].name, cases[i].text, &err);
        if (cases[i].ok && rc != DUKA_OK)
            fail_msg("%s=%s refused: %s", cases[i].name, cases[i].text, err.msg);
        if (!cases[i].ok && rc != DUKA_INPUT)
            fail_msg("%s=%s accepted", cases[i].name, cases[i].text);
    }
}

static void test_error_messages(void **state)
{
    (void)state;
    duka_config cfg;
    duka_config_defaults(&cfg);
    duka_err err = {0};
    assert_rc(duka_config_set(&cfg, "OFFLINE_QUEUE_RETENTION_DAYS", "0", DUKA_SOURCE_FILE,
                              "/etc/duka.conf line 12", &err),
              DUKA_INPUT, &err);
    assert_contains(err.msg, "OFFLINE_QUEUE_RETENTION_DAYS");
    assert_contains(err.msg, "'0'");
    assert_contains(err.msg, "/etc/duka.conf line 12");
    assert_contains(err.msg, "days"); /* says what a bare number means */

    memset(&err, 0, sizeof(err));
    assert_rc(duka_config_set(&cfg, "OFFLINE_QUEUE_MAX_RETRIES", "lots", DUKA_SOURCE_ENV,
                              "environment", &err),
              DUKA_INPUT, &err);
    assert_contains(err.msg, "OFFLINE_QUEUE_MAX_RETRIES='lots'");
    assert_contains(err.msg, "environment");
    assert_contains(err.msg, "1..100");

    memset(&err, 0, sizeof(err));
    assert_rc(duka_config_set(&cfg, "OFFLINE_QUEUE_MAX_RETRY", "5", DUKA_SOURCE_FILE,
                              "duka.conf line 3", &err),
              DUKA_INPUT, &err);
    assert_contains(err.msg, "OFFLINE_QUEUE_MAX_RETRY");
    assert_contains(err.msg, "unknown");
    assert_contains(err.msg, "duka.conf line 3");

    /* Names are case-sensitive, as environment variables are. */
    memset(&err, 0, sizeof(err));
    assert_rc(duka_config_set(&cfg, "offline_queue_max_retries", "5", DUKA_SOURCE_FILE, "x",
                              &err),
              DUKA_INPUT, &err);
    assert_contains(err.msg, "offline_queue_max_retries");

    /* Nothing was changed by the failures. */
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        assert_int_equal(cfg.value[i], rows[i].def);
        assert_int_equal(cfg.source[i], DUKA_SOURCE_DEFAULT);
    }
}

/* ---- the file ---- */

static void test_load_file_format(void **state)
{
    fixture *f = *state;
    char path[300];
    write_file(f, "duka.conf",
               "# duka settings\n"
               "\n"
               "OFFLINE_QUEUE_MAX_RETRIES=8\n"
               "   # an indented comment\n"
               "  OFFLINE_QUEUE_RETENTION_DAYS   =   14   \n"
               "OFFLINE_QUEUE_PROCESS_INTERVAL=2 # two minutes\n"
               "\t\n"
               "CONNECTIVITY_CHECK_INTERVAL =\t45s\r\n"
               "OFFLINE_QUEUE_BACKOFF_BASE=500\n"
               "OFFLINE_QUEUE_BACKOFF_BASE=750\n" /* the last one wins */
               "QUEUE_SALE_PRIORITY=5", /* no newline at the end */
               path, sizeof(path));
    duka_config cfg;
    duka_err err = {0};
    assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
    assert_string_equal(cfg.file, path);
    const struct {
        duka_setting_id id;
        int64_t value;
    } expected[] = {
        {DUKA_SETTING_QUEUE_MAX_RETRIES, 8},
        {DUKA_SETTING_QUEUE_RETENTION, 14 * DAY_MS},
        {DUKA_SETTING_SYNC_INTERVAL, 120000},
        {DUKA_SETTING_PROBE_INTERVAL, 45000},
        {DUKA_SETTING_BACKOFF_BASE, 750},
        {DUKA_SETTING_PRIORITY_SALE, 5},
    };
    bool from_file[DUKA_SETTING_COUNT] = {false};
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (duka_config_get(&cfg, expected[i].id) != expected[i].value)
            fail_msg("%s is %lld, expected %lld", duka_setting_name(expected[i].id),
                     (long long)duka_config_get(&cfg, expected[i].id),
                     (long long)expected[i].value);
        from_file[expected[i].id] = true;
    }
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        if (from_file[i]) {
            assert_int_equal(cfg.source[i], DUKA_SOURCE_FILE);
        } else {
            assert_int_equal(cfg.source[i], DUKA_SOURCE_DEFAULT);
            assert_int_equal(cfg.value[i], rows[i].def);
        }
    }
}

static void test_load_file_errors_name_the_line(void **state)
{
    fixture *f = *state;
    const struct {
        const char *text;
        const char *needles[3];
    } cases[] = {
        {"# comment\nOFFLINE_QUEUE_MAX_RETRIES=4\nNO_SUCH_SETTING=1\n",
         {"line 3", "NO_SUCH_SETTING", "unknown"}},
        {"OFFLINE_QUEUE_MAX_RETRIES=4\n\nOFFLINE_QUEUE_BATCH_SIZE\n",
         {"line 3", "NAME=value", NULL}},
        {"OFFLINE_QUEUE_MAX_RETRIES=0\n", {"line 1", "OFFLINE_QUEUE_MAX_RETRIES='0'", NULL}},
        {"\n\n\n\nOFFLINE_QUEUE_RETENTION_DAYS=soon\n",
         {"line 5", "OFFLINE_QUEUE_RETENTION_DAYS='soon'", NULL}},
        {"=5\n", {"line 1", "unknown", NULL}},
    };
    /* A typo must never stop a shop selling: the file still loads, the line is a problem
     * naming the file, the line and the key, and every good line still counts. */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[300];
        write_file(f, "bad.conf", cases[i].text, path, sizeof(path));
        duka_config cfg;
        duka_err err = {0};
        assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
        assert_int_equal(cfg.problem_count, 1);
        assert_contains(cfg.problems[0], path);
        for (int n = 0; n < 3 && cases[i].needles[n] != NULL; n++)
            assert_contains(cfg.problems[0], cases[i].needles[n]);
        if (strstr(cases[i].text, "OFFLINE_QUEUE_MAX_RETRIES=4") != NULL) {
            assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_MAX_RETRIES), 4);
        } else {
            /* the bad setting kept its default */
            assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_MAX_RETRIES), 5);
            assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_RETENTION), 7 * DAY_MS);
        }
        char summary[1024];
        duka_config_problems_summary(&cfg, summary, sizeof(summary));
        assert_contains(summary, "1 setting ignored (defaults used): ");
        assert_contains(summary, cases[i].needles[0]);
    }
}

/* A file of many typos: every one counted, the first DUKA_CONFIG_PROBLEMS_MAX kept. */
static void test_problems_are_bounded(void **state)
{
    fixture *f = *state;
    char text[2048] = "", path[300];
    for (int i = 0; i < DUKA_CONFIG_PROBLEMS_MAX + 3; i++) {
        char line[64];
        snprintf(line, sizeof(line), "NO_SUCH_SETTING_%d=1\n", i);
        strcat(text, line);
    }
    strcat(text, "OFFLINE_QUEUE_BATCH_SIZE=42\n");
    write_file(f, "typos.conf", text, path, sizeof(path));
    duka_config cfg;
    duka_err err = {0};
    assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
    assert_int_equal(cfg.problem_count, DUKA_CONFIG_PROBLEMS_MAX + 3);
    assert_contains(cfg.problems[DUKA_CONFIG_PROBLEMS_MAX - 1], "NO_SUCH_SETTING_7");
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_SYNC_BATCH), 42);
    char summary[4096];
    duka_config_problems_summary(&cfg, summary, sizeof(summary));
    assert_contains(summary, "11 settings ignored");
    assert_contains(summary, "and 3 more");
    json_t *js = duka_config_json(&cfg);
    assert_int_equal(json_array_size(json_object_get(js, "problems")), DUKA_CONFIG_PROBLEMS_MAX);
    assert_int_equal(json_integer_value(json_object_get(js, "problem_count")),
                     DUKA_CONFIG_PROBLEMS_MAX + 3);
    json_decref(js);
}

/* The shop's day follows SHOP_TIMEZONE, whatever the machine's TZ says: on Debian's default
 * (UTC, or TZ unset) a sale at 00:30 in Nairobi must carry Nairobi's date. */
/* URL settings (ETIMS_BASE_URL …): empty (off) or an http(s) URL up to the text limit;
 * anything else refused naming the setting, and nothing changes. */
/* Words (no spaces) and secrets: a secret is "(set)" in the JSON and never in an error. */
static void test_word_and_secret_settings(void **state)
{
    (void)state;
    duka_config cfg;
    duka_config_defaults(&cfg);
    duka_err err = {0};
    assert_ok(set(&cfg, "MPESA_INITIATOR", "testapi", &err), &err);
    assert_string_equal(duka_config_text(&cfg, DUKA_SETTING_MPESA_INITIATOR), "testapi");
    assert_int_equal(set(&cfg, "MPESA_INITIATOR", "two words", &err), DUKA_INPUT);
    assert_contains(err.msg, "MPESA_INITIATOR");
    assert_string_equal(duka_config_text(&cfg, DUKA_SETTING_MPESA_INITIATOR), "testapi");
    assert_ok(set(&cfg, "MPESA_CONSUMER_SECRET", "s3cr3t-value", &err), &err);
    assert_int_equal(set(&cfg, "MPESA_CONSUMER_SECRET", "s3cr3t value", &err), DUKA_INPUT);
    assert_contains(err.msg, "MPESA_CONSUMER_SECRET");
    assert_true(strstr(err.msg, "s3cr3t") == NULL);
    char longer[DUKA_SETTING_TEXT_MAX + 2];
    memset(longer, 'k', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(set(&cfg, "MPESA_CONSUMER_KEY", longer, &err), DUKA_INPUT);
    longer[DUKA_SETTING_TEXT_MAX] = '\0';
    assert_ok(set(&cfg, "MPESA_CONSUMER_KEY", longer, &err), &err);
    json_t *js = duka_config_json(&cfg);
    char *text = json_dumps(js, 0);
    assert_non_null(text);
    assert_true(strstr(text, "s3cr3t") == NULL);
    assert_true(strstr(text, "\"(set)\"") != NULL);
    free(text);
    json_decref(js);
}

static void test_url_settings(void **state)
{
    (void)state;
    duka_config cfg;
    duka_config_defaults(&cfg);
    duka_err err = {0};
    assert_ok(set(&cfg, "ETIMS_BASE_URL", "http://127.0.0.1:8090/etims-api", &err), &err);
    assert_string_equal(duka_config_text(&cfg, DUKA_SETTING_ETIMS_BASE_URL),
                        "http://127.0.0.1:8090/etims-api");
    assert_ok(set(&cfg, "ETIMS_BASE_URL", "", &err), &err);
    assert_string_equal(duka_config_text(&cfg, DUKA_SETTING_ETIMS_BASE_URL), "");
    char longest[DUKA_SETTING_TEXT_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    memcpy(longest, "https://", 8);
    longest[DUKA_SETTING_TEXT_MAX] = '\0';
    assert_ok(set(&cfg, "ETIMS_QR_BASE", longest, &err), &err);
    longest[DUKA_SETTING_TEXT_MAX] = 'a';
    longest[DUKA_SETTING_TEXT_MAX + 1] = '\0';
    const char *bad[] = {"ftp://x", "etims-api.kra.go.ke", "http//x", longest};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        duka_config before = cfg;
        assert_int_equal(set(&cfg, "ETIMS_BASE_URL", bad[i], &err), DUKA_INPUT);
        assert_non_null(strstr(err.msg, "ETIMS_BASE_URL"));
        assert_non_null(strstr(err.msg, "URL"));
        assert_memory_equal(&cfg, &before, sizeof(cfg));
    }
}

static void test_timezone_setting(void **state)
{
    (void)state;
    const char *known[] = {"Africa/Nairobi", "UTC", "EAT-3", "UTC0", "<+03>-3", "Africa/Kampala",
                           "America/New_York"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!duka_clock_zone_known(known[i]))
            fail_msg("zone %s refused", known[i]);
    const char *unknown[] = {"", "Nowhere/Atlantis", "../../etc/passwd", "EA-3", "EAT-333",
                             "/etc/localtime", "Africa/Nairobi "};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        if (duka_clock_zone_known(unknown[i]))
            fail_msg("zone '%s' accepted", unknown[i]);

    /* 2026-11-21 21:30:00 UTC is 00:30 on the 22nd in Nairobi (UTC+3, all year). */
    const int64_t t = 1795296600000LL;
    const char *machine[] = {"UTC", NULL, "America/New_York"};
    for (int m = 0; m < 3; m++) {
        if (machine[m])
            setenv("TZ", machine[m], 1);
        else
            unsetenv("TZ");
        tzset();
        duka_config cfg;
        duka_config_defaults(&cfg);
        duka_config_apply_timezone(&cfg);
        assert_int_equal(cfg.problem_count, 0);
        assert_int_equal(duka_clock_local_day(t), 20261122);
        assert_int_equal(duka_clock_local_day(t - 1800001), 20261121); /* 23:59:59.999 */
        char when[40];
        duka_clock_format_local(t, when, sizeof(when));
        assert_string_equal(when, "2026-11-22 00:30:00");
    }
    /* Another zone, set in the file or the environment, moves the day with it. */
    duka_config cfg;
    duka_config_defaults(&cfg);
    duka_err err = {0};
    assert_ok(duka_config_set(&cfg, "SHOP_TIMEZONE", "UTC", DUKA_SOURCE_ENV, "environment", &err),
              &err);
    duka_config_apply_timezone(&cfg);
    assert_int_equal(duka_clock_local_day(t), 20261121);
    /* Without the zone database, Africa/Nairobi is still Nairobi (EAT-3), never UTC. */
    setenv("TZDIR", "/nonexistent-zoneinfo", 1);
    assert_true(duka_clock_zone_known("Africa/Nairobi"));
    assert_false(duka_clock_zone_known("Africa/Kampala"));
    assert_true(duka_clock_use_zone("Africa/Nairobi"));
    assert_int_equal(duka_clock_local_day(t), 20261122);
    unsetenv("TZDIR");
    setenv("TZ", "Africa/Nairobi", 1);
    tzset();
}

static void test_load_file_limits(void **state)
{
    fixture *f = *state;
    char path[300];
    /* A line longer than DUKA_CONFIG_LINE_MAX is an error, not silently split. */
    char *text = malloc(DUKA_CONFIG_LINE_MAX + 64);
    assert_non_null(text);
    int n = snprintf(text, DUKA_CONFIG_LINE_MAX + 64, "OFFLINE_QUEUE_MAX_RETRIES=5 #");
    memset(text + n, 'x', (size_t)(DUKA_CONFIG_LINE_MAX + 10 - n));
    text[DUKA_CONFIG_LINE_MAX + 10] = '\n';
    text[DUKA_CONFIG_LINE_MAX + 11] = '\0';
    write_file(f, "long.conf", text, path, sizeof(path));
    free(text);
    duka_config cfg;
    duka_err err = {0};
    assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
    assert_int_equal(cfg.problem_count, 1);
    assert_contains(cfg.problems[0], "line 1");
    assert_contains(cfg.problems[0], "longer than");

    /* More than DUKA_CONFIG_LINES_MAX lines: the rest is not read, and that is said. */
    size_t size = (size_t)(DUKA_CONFIG_LINES_MAX + 1) * 2 + 1;
    text = malloc(size);
    assert_non_null(text);
    for (int i = 0; i <= DUKA_CONFIG_LINES_MAX; i++) {
        text[2 * i] = '#';
        text[2 * i + 1] = '\n';
    }
    text[size - 1] = '\0';
    write_file(f, "many.conf", text, path, sizeof(path));
    free(text);
    memset(&err, 0, sizeof(err));
    assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
    assert_int_equal(cfg.problem_count, 1);
    assert_contains(cfg.problems[0], "lines");

    /* Exactly DUKA_CONFIG_LINES_MAX lines is fine. */
    text = malloc(size);
    assert_non_null(text);
    for (int i = 0; i < DUKA_CONFIG_LINES_MAX; i++) {
        text[2 * i] = '#';
        text[2 * i + 1] = '\n';
    }
    text[2 * DUKA_CONFIG_LINES_MAX] = '\0';
    write_file(f, "enough.conf", text, path, sizeof(path));
    free(text);
    memset(&err, 0, sizeof(err));
    assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
    assert_int_equal(cfg.problem_count, 0);
}

static void test_missing_explicit_file_is_notfound(void **state)
{
    fixture *f = *state;
    char path[300];
    test_dir_file(&f->dir, "nope.conf", path, sizeof(path));
    duka_config cfg;
    duka_err err = {0};
    assert_rc(duka_config_load(&cfg, NULL, path, &err), DUKA_NOTFOUND, &err);
    assert_contains(err.msg, path);

    /* A DUKA_CONFIG that names a missing file is a problem, not a stop: the shop sells. */
    assert_int_equal(setenv("DUKA_CONFIG", path, 1), 0);
    memset(&err, 0, sizeof(err));
    assert_ok(duka_config_load(&cfg, NULL, NULL, &err), &err);
    assert_int_equal(cfg.problem_count, 1);
    assert_contains(cfg.problems[0], path);
    assert_contains(cfg.problems[0], "DUKA_CONFIG");
}

static void test_no_file_is_all_defaults(void **state)
{
    fixture *f = *state;
    char db[300];
    test_dir_file(&f->dir, "till.db", db, sizeof(db));
    duka_config cfg;
    duka_err err = {0};
    /* No duka.conf beside the database: not an error. */
    assert_ok(duka_config_load(&cfg, db, NULL, &err), &err);
    assert_string_equal(cfg.file, "");
    assert_ok(duka_config_load(&cfg, NULL, NULL, &err), &err);
    assert_string_equal(cfg.file, "");
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        assert_int_equal(cfg.value[i], rows[i].def);
        assert_int_equal(cfg.source[i], DUKA_SOURCE_DEFAULT);
    }
}

static void test_file_beside_the_database(void **state)
{
    fixture *f = *state;
    char conf[300], db[300];
    write_file(f, "duka.conf", "OFFLINE_QUEUE_MAX_RETRIES=9\n", conf, sizeof(conf));
    test_dir_file(&f->dir, "till.db", db, sizeof(db));
    duka_config cfg;
    duka_err err = {0};
    assert_ok(duka_config_load(&cfg, db, NULL, &err), &err);
    assert_string_equal(cfg.file, conf);
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_MAX_RETRIES), 9);
    assert_int_equal(cfg.source[DUKA_SETTING_QUEUE_MAX_RETRIES], DUKA_SOURCE_FILE);
}

static void test_duka_config_env_names_the_file(void **state)
{
    fixture *f = *state;
    char beside[300], other[300], explicit_file[300], db[300];
    write_file(f, "duka.conf", "OFFLINE_QUEUE_MAX_RETRIES=9\n", beside, sizeof(beside));
    write_file(f, "other.conf", "OFFLINE_QUEUE_MAX_RETRIES=11\n", other, sizeof(other));
    write_file(f, "explicit.conf", "OFFLINE_QUEUE_MAX_RETRIES=13\n", explicit_file,
               sizeof(explicit_file));
    test_dir_file(&f->dir, "till.db", db, sizeof(db));
    assert_int_equal(setenv("DUKA_CONFIG", other, 1), 0);

    /* DUKA_CONFIG wins over the file beside the database… */
    duka_config cfg;
    duka_err err = {0};
    assert_ok(duka_config_load(&cfg, db, NULL, &err), &err);
    assert_string_equal(cfg.file, other);
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_MAX_RETRIES), 11);
    assert_int_equal(cfg.source[DUKA_SETTING_QUEUE_MAX_RETRIES], DUKA_SOURCE_FILE);

    /* …and an explicit file (--config) wins over DUKA_CONFIG. */
    assert_ok(duka_config_load(&cfg, db, explicit_file, &err), &err);
    assert_string_equal(cfg.file, explicit_file);
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_MAX_RETRIES), 13);

    /* An empty DUKA_CONFIG is as if unset. */
    assert_int_equal(setenv("DUKA_CONFIG", "", 1), 0);
    assert_ok(duka_config_load(&cfg, db, NULL, &err), &err);
    assert_string_equal(cfg.file, beside);
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_MAX_RETRIES), 9);
}

static void test_precedence_env_file_default(void **state)
{
    fixture *f = *state;
    char path[300];
    write_file(f, "duka.conf",
               "OFFLINE_QUEUE_MAX_RETRIES=8\n"
               "OFFLINE_QUEUE_RETENTION_DAYS=14\n",
               path, sizeof(path));
    assert_int_equal(setenv("OFFLINE_QUEUE_MAX_RETRIES", "12", 1), 0);
    assert_int_equal(setenv("OFFLINE_QUEUE_PROCESS_INTERVAL", "3", 1), 0);
    duka_config cfg;
    duka_err err = {0};
    assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
    /* env over file */
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_MAX_RETRIES), 12);
    assert_int_equal(cfg.source[DUKA_SETTING_QUEUE_MAX_RETRIES], DUKA_SOURCE_ENV);
    /* file over default */
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_RETENTION), 14 * DAY_MS);
    assert_int_equal(cfg.source[DUKA_SETTING_QUEUE_RETENTION], DUKA_SOURCE_FILE);
    /* env over default, in the setting's unit (minutes) */
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_SYNC_INTERVAL), 180000);
    assert_int_equal(cfg.source[DUKA_SETTING_SYNC_INTERVAL], DUKA_SOURCE_ENV);
    /* default */
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_SYNC_BATCH), 500);
    assert_int_equal(cfg.source[DUKA_SETTING_SYNC_BATCH], DUKA_SOURCE_DEFAULT);
    assert_string_equal(cfg.file, path);

    /* The environment alone (no file). */
    assert_ok(duka_config_load(&cfg, NULL, NULL, &err), &err);
    assert_string_equal(cfg.file, "");
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_MAX_RETRIES), 12);
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_RETENTION), 7 * DAY_MS);
    assert_int_equal(cfg.source[DUKA_SETTING_QUEUE_RETENTION], DUKA_SOURCE_DEFAULT);
}

static void test_invalid_env_value_is_a_problem(void **state)
{
    fixture *f = *state;
    assert_int_equal(setenv("OFFLINE_QUEUE_RETENTION_DAYS", "forever", 1), 0);
    duka_config cfg;
    duka_err err = {0};
    assert_ok(duka_config_load(&cfg, NULL, NULL, &err), &err);
    assert_int_equal(cfg.problem_count, 1);
    assert_contains(cfg.problems[0], "OFFLINE_QUEUE_RETENTION_DAYS");
    assert_contains(cfg.problems[0], "forever");
    assert_contains(cfg.problems[0], "environment");
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_RETENTION), 7 * DAY_MS);
    assert_int_equal(cfg.source[DUKA_SETTING_QUEUE_RETENTION], DUKA_SOURCE_DEFAULT);

    /* An env value out of range overrides nothing, not clamped: the file's value stays. */
    char path[300];
    write_file(f, "duka.conf", "OFFLINE_QUEUE_RETENTION_DAYS=14\n", path, sizeof(path));
    assert_int_equal(setenv("OFFLINE_QUEUE_RETENTION_DAYS", "0", 1), 0);
    assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
    assert_int_equal(cfg.problem_count, 1);
    assert_contains(cfg.problems[0], "OFFLINE_QUEUE_RETENTION_DAYS='0'");
    assert_int_equal(duka_config_get(&cfg, DUKA_SETTING_QUEUE_RETENTION), 14 * DAY_MS);
    assert_int_equal(cfg.source[DUKA_SETTING_QUEUE_RETENTION], DUKA_SOURCE_FILE);
}

/* ---- JSON ---- */

static void test_json_has_every_setting(void **state)
{
    fixture *f = *state;
    char path[300];
    write_file(f, "duka.conf", "OFFLINE_QUEUE_RETENTION_DAYS=3\n", path, sizeof(path));
    assert_int_equal(setenv("OFFLINE_QUEUE_MAX_RETRIES", "6", 1), 0);
    duka_config cfg;
    duka_err err = {0};
    assert_ok(duka_config_load(&cfg, NULL, path, &err), &err);
    json_t *js = duka_config_json(&cfg);
    assert_non_null(js);
    assert_string_equal(json_string_value(json_object_get(js, "file")), path);
    json_t *settings = json_object_get(js, "settings");
    assert_true(json_is_array(settings));
    assert_int_equal(json_array_size(settings), DUKA_SETTING_COUNT);
    for (int i = 0; i < DUKA_SETTING_COUNT; i++) {
        json_t *s = json_array_get(settings, (size_t)i);
        assert_true(json_is_object(s));
        assert_string_equal(json_string_value(json_object_get(s, "name")), rows[i].name);
        const char *unit = json_string_value(json_object_get(s, "unit"));
        assert_non_null(unit);
        if (is_text(rows[i].unit)) {
            assert_string_equal(unit, rows[i].unit == DUKA_UNIT_URL      ? "url"
                                      : rows[i].unit == DUKA_UNIT_SECRET ? "secret"
                                                                         : "text");
            if (rows[i].unit != DUKA_UNIT_SECRET)
                assert_string_equal(json_string_value(json_object_get(s, "value")), cfg.text[i]);
        } else {
            assert_true(json_is_integer(json_object_get(s, "value")));
            assert_int_equal(json_integer_value(json_object_get(s, "value")), cfg.value[i]);
            assert_string_equal(unit, is_duration(rows[i].unit)          ? "ms"
                                      : rows[i].unit == DUKA_UNIT_KES ? "cents"
                                                                      : "count");
        }
        assert_string_equal(json_string_value(json_object_get(s, "source")),
                            duka_setting_source_name(cfg.source[i]));
        const char *help = json_string_value(json_object_get(s, "help"));
        assert_non_null(help);
        assert_true(help[0] != '\0');
    }
    json_t *retries = json_array_get(settings, DUKA_SETTING_QUEUE_MAX_RETRIES);
    assert_int_equal(json_integer_value(json_object_get(retries, "value")), 6);
    assert_string_equal(json_string_value(json_object_get(retries, "source")), "environment");
    json_t *retention = json_array_get(settings, DUKA_SETTING_QUEUE_RETENTION);
    assert_int_equal(json_integer_value(json_object_get(retention, "value")), 3 * DAY_MS);
    assert_string_equal(json_string_value(json_object_get(retention, "source")), "file");
    json_t *batch = json_array_get(settings, DUKA_SETTING_SYNC_BATCH);
    assert_string_equal(json_string_value(json_object_get(batch, "source")), "default");
    json_decref(js);

    /* With no file, "file" is "". */
    duka_config_defaults(&cfg);
    js = duka_config_json(&cfg);
    assert_string_equal(json_string_value(json_object_get(js, "file")), "");
    json_decref(js);
}

/*
 * A huge duration must be refused, never wrapped. config.c parse_value() accepts up to
 * 10^12 before multiplying by the unit, and 10^12 days in ms does not fit in int64_t: the
 * product overflows (undefined behaviour; UBSan stops the process here) and can wrap into the
 * valid range. 213503982340 days wraps to about 5.4 days on two's complement.
 * Kept last in the run: under UBSan it ends the process.
 */
static void test_huge_duration_is_refused_not_wrapped(void **state)
{
    (void)state;
    const char *texts[] = {"213503982340", "213503982340d", "999999999999d"};
    for (int i = 0; i < 3; i++) {
        duka_config cfg;
        duka_config_defaults(&cfg);
        duka_err err;
        duka_rc rc = set(&cfg, "OFFLINE_QUEUE_RETENTION_DAYS", texts[i], &err);
        if (rc != DUKA_INPUT)
            fail_msg("OFFLINE_QUEUE_RETENTION_DAYS=%s accepted as %lld ms (%.1f days)",
                     texts[i], (long long)cfg.value[DUKA_SETTING_QUEUE_RETENTION],
                     (double)cfg.value[DUKA_SETTING_QUEUE_RETENTION] / (double)DAY_MS);
        assert_contains(err.msg, texts[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_set_parses_per_unit),
        cmocka_unit_test(test_set_rejects_malformed),
        cmocka_unit_test(test_range_limits_of_every_setting),
        cmocka_unit_test(test_range_limits_in_the_settings_units),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test_setup_teardown(test_load_file_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file_errors_name_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_explicit_file_is_notfound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_file_is_all_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_beside_the_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duka_config_env_names_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence_env_file_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_env_value_is_a_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_problems_are_bounded, setup, teardown),
        cmocka_unit_test(test_url_settings),
        cmocka_unit_test(test_word_and_secret_settings),
        cmocka_unit_test_setup_teardown(test_timezone_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_has_every_setting, setup, teardown),
        cmocka_unit_test(test_huge_duration_is_refused_not_wrapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
