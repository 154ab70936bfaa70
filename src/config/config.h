/*
 * config.h — the settings of the till (and the hub's HUB_* ones): defaults, a config file,
 * the environment.
 *
 * Precedence: environment over file over default. The file (`duka.conf` beside the database,
 * or the path in DUKA_CONFIG, or --config) has one `NAME=value` per line, `#` comments, and
 * uses the same names as the environment (the source documents' names where they exist:
 * OFFLINE_QUEUE_MAX_RETRIES, OFFLINE_QUEUE_RETENTION_DAYS, OFFLINE_QUEUE_PROCESS_INTERVAL …).
 * Durations take a unit suffix (ms, s, m, h, d); a bare number is in the setting's own unit.
 *
 * A typo must never stop a shop selling: loading never fails on a bad value or an unknown
 * name. The setting keeps its default (or the value from the file when only the environment's
 * is bad), and the problem — naming the key, the value and where it came from (file and line,
 * or the environment) — is recorded in the config, for every command to make loud: a warning
 * line on stderr, an alert in `duka status` and GET /api/status, the service's start line and
 * log, and `duka config`, which exits 1 while any remain. Only a --config FILE given on the
 * command line that cannot be read is an error (a flag is a usage mistake, seen at once).
 */
#ifndef DUKA_CONFIG_H
#define DUKA_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"

typedef enum duka_setting_unit {
    DUKA_UNIT_COUNT,
    DUKA_UNIT_MS,      /* a duration stored in ms; bare numbers are ms */
    DUKA_UNIT_SECONDS, /* a duration stored in ms; bare numbers are seconds */
    DUKA_UNIT_MINUTES, /* a duration stored in ms; bare numbers are minutes */
    DUKA_UNIT_DAYS,    /* a duration stored in ms; bare numbers are days */
    DUKA_UNIT_BOOL,    /* true/false, yes/no, 1/0, on/off */
    DUKA_UNIT_KES,     /* an amount in KES with up to 2 decimals ("500000.00"), stored in cents */
    DUKA_UNIT_TEXT,    /* a string (DUKA_TEXT_SETTINGS): a time zone */
    DUKA_UNIT_URL,     /* a string (DUKA_TEXT_SETTINGS): an http(s):// URL, or empty for off */
    DUKA_UNIT_WORD,    /* a string: printable ASCII without spaces (a name, a path), or empty */
    DUKA_UNIT_SECRET,  /* as WORD, never printed: `duka config` and errors show "(set)" */
} duka_setting_unit;

/* X(id, NAME, unit, default, min, max, what it does). Duration defaults/min/max are in ms. */
#define DUKA_SETTINGS(X)                                                                       \
    X(QUEUE_MAX_RETRIES, "OFFLINE_QUEUE_MAX_RETRIES", DUKA_UNIT_COUNT, 5, 1, 100,              \
      "attempts before an item the hub did not accept is failed (per type below when set)")    \
    X(QUEUE_RETENTION, "OFFLINE_QUEUE_RETENTION_DAYS", DUKA_UNIT_DAYS, 7 * 86400000LL,          \
      86400000LL, 3650 * 86400000LL, "how long synced (done) items are kept")                  \
    X(SYNC_INTERVAL, "OFFLINE_QUEUE_PROCESS_INTERVAL", DUKA_UNIT_MINUTES, 30000, 1000,          \
      86400000LL, "how often the worker syncs while online")                                  \
    X(SYNC_BATCH, "OFFLINE_QUEUE_BATCH_SIZE", DUKA_UNIT_COUNT, 500, 1, 1000,                    \
      "commands per push")                                                                     \
    X(SYNC_IN_FLIGHT, "OFFLINE_QUEUE_PUSHES_IN_FLIGHT", DUKA_UNIT_COUNT,                        \
      DUKA_SYNC_PIPELINE_DEFAULT, 1, DUKA_SYNC_PIPELINE_MAX,                                    \
      "pushes in flight: the next batch goes while the hub applies one (1: in turn)")        \
    X(QUEUE_ALERT_PENDING, "OFFLINE_QUEUE_ALERT_THRESHOLD", DUKA_UNIT_COUNT, 100, 1, 10000000, \
      "pending items above which status raises an alert (a sale is never refused)")           \
    X(BACKOFF_BASE, "OFFLINE_QUEUE_BACKOFF_BASE", DUKA_UNIT_MS, 1000, 10, 3600000,              \
      "first retry delay; doubles each attempt, with up to 20 % jitter")                      \
    X(BACKOFF_MAX, "OFFLINE_QUEUE_BACKOFF_MAX", DUKA_UNIT_SECONDS, 300000, 100, 86400000LL,     \
      "longest retry delay")                                                                   \
    X(PROBE_INTERVAL, "CONNECTIVITY_CHECK_INTERVAL", DUKA_UNIT_SECONDS, 30000, 1000,            \
      3600000, "how often the hub's health is probed while online")                           \
    X(PROBE_TIMEOUT, "CONNECTIVITY_CHECK_TIMEOUT", DUKA_UNIT_SECONDS, 5000, 100, 60000,         \
      "a probe slower than this counts as failed")                                             \
    X(OFFLINE_RECHECK_MAX, "CONNECTIVITY_OFFLINE_RECHECK_MAX", DUKA_UNIT_SECONDS, 4000, 100,    \
      3600000, "while offline, re-probe after 1 s, 2 s, 4 s … up to this (and the interval)")  \
    X(DEGRADED_LATENCY, "CONNECTIVITY_DEGRADED_LATENCY", DUKA_UNIT_MS, 2000, 1, 60000,          \
      "a hub slower than this to answer is degraded")                                         \
    X(DEGRADED_FAILURES, "CONNECTIVITY_DEGRADED_FAILURES", DUKA_UNIT_COUNT, 3, 1, 1000,         \
      "consecutive 5xx answers that make the hub degraded")                                   \
    X(ALERT_OFFLINE_AFTER, "ALERT_OFFLINE_AFTER", DUKA_UNIT_MINUTES, 1800000, 1000,             \
      86400000LL, "offline for longer than this raises an alert")                             \
    X(PRIORITY_TAX, "QUEUE_TAX_PRIORITY", DUKA_UNIT_COUNT, 10, 0, 1000,                         \
      "priority of tax invoices (lower goes first)")                                           \
    X(PRIORITY_SALE, "QUEUE_SALE_PRIORITY", DUKA_UNIT_COUNT, 20, 0, 1000, "priority of sales") \
    X(PRIORITY_PAYMENT, "QUEUE_PAYMENT_PRIORITY", DUKA_UNIT_COUNT, 30, 0, 1000,                 \
      "priority of payment verifications")                                                    \
    X(PRIORITY_BACKUP, "QUEUE_BACKUP_PRIORITY", DUKA_UNIT_COUNT, 60, 0, 1000,                   \
      "priority of backups")                                                                   \
    X(PRIORITY_BULK, "QUEUE_BULK_PRIORITY", DUKA_UNIT_COUNT, 90, 0, 1000,                       \
      "priority of bulk data")                                                                 \
    X(RETRIES_SALE, "QUEUE_SALE_MAX_RETRIES", DUKA_UNIT_COUNT, 0, 0, 100,                       \
      "attempts for sales (0: OFFLINE_QUEUE_MAX_RETRIES)")                                     \
    X(SALE_LINE_MAX, "SALE_MAX_LINE_AMOUNT", DUKA_UNIT_KES, DUKA_SALE_LINE_MAX_CENTS_DEFAULT,    \
      100, DUKA_SALE_BOUND_CENTS_MAX,                                                         \
      "a sale line above this many KES is refused unless the cashier confirms it")             \
    X(SALE_MAX, "SALE_MAX_AMOUNT", DUKA_UNIT_KES, DUKA_SALE_MAX_CENTS_DEFAULT, 100,              \
      DUKA_SALE_BOUND_CENTS_MAX,                                                               \
      "a sale above this many KES is refused unless the cashier confirms it")                  \
    X(TILL_SESSION_IDLE_TIMEOUT, "TILL_SESSION_IDLE_TIMEOUT", DUKA_UNIT_MS,                    \
      DUKA_SESSION_IDLE_DEFAULT_MS, DUKA_SESSION_IDLE_MIN_MS, DUKA_SESSION_IDLE_MAX_MS,          \
      "a cashier's session on the till ends after this long without a request (12h: a shift)") \
    X(ETIMS_TIMEOUT, "ETIMS_TIMEOUT", DUKA_UNIT_SECONDS, 30000, 1000, 300000,                   \
      "duka hub: an eTIMS request unanswered for this long is unclear (asked about, not resent)") \
    X(ETIMS_IN_FLIGHT, "ETIMS_IN_FLIGHT", DUKA_UNIT_COUNT, 16, 1, 64,                          \
      "duka hub: eTIMS requests in flight at once")                                            \
    X(ETIMS_MAX_UNSENT, "ETIMS_MAX_UNSENT", DUKA_UNIT_MINUTES, 86400000LL, 60000,               \
      30 * 86400000LL, "duka hub: an invoice not accepted by eTIMS after this long raises an "  \
      "alert")                                                                                 \
    X(MPESA_TIMEOUT, "MPESA_TIMEOUT", DUKA_UNIT_SECONDS, 30000, 1000, 120000,                   \
      "duka hub: a Daraja request unanswered for this long is unclear (never resent blindly)")  \
    X(MPESA_IN_FLIGHT, "MPESA_IN_FLIGHT", DUKA_UNIT_COUNT, 4, 1, 64,                           \
      "duka hub: Daraja requests in flight at once")                                           \
    X(MPESA_VERIFY_WINDOW, "MPESA_VERIFY_WINDOW", DUKA_UNIT_MINUTES, 86400000LL, 1000,          \
      30 * 86400000LL, "duka hub: a typed M-Pesa code not verified this long after its sale "   \
      "is flagged for the owner")                                                              \
    X(MPESA_MATCH_WINDOW, "MPESA_MATCH_WINDOW", DUKA_UNIT_MINUTES, 3600000LL, 60000,            \
      86400000LL, "duka hub: a typed code verifies only if M-Pesa's time of the payment is "    \
      "within this of the sale's")                                                             \
    X(MPESA_STATUS_WAIT, "MPESA_STATUS_WAIT", DUKA_UNIT_SECONDS, 30000, 1000, 3600000,          \
      "duka hub: how long a transaction status result is awaited before the code is looked "   \
      "at again")                                                                              \
    X(HUB_CONNECTION_TIMEOUT, "HUB_CONNECTION_TIMEOUT", DUKA_UNIT_SECONDS,                     \
      DUKA_HUB_CONNECTION_TIMEOUT_S * 1000LL, 1000, DUKA_HUB_CONNECTION_TIMEOUT_S_MAX * 1000LL, \
      "duka hub: close a connection on which nothing arrived for this long (whole seconds, "   \
      "rounded up)")                                                                           \
    X(HUB_CONNECTIONS_PER_IP, "HUB_CONNECTIONS_PER_IP", DUKA_UNIT_COUNT,                       \
      DUKA_HUB_CONNECTIONS_PER_IP_DEFAULT, 0, DUKA_HUB_CONNECTIONS_MAX,                         \
      "duka hub: connections from one address at once, of " DUKA_STRINGIFY(                   \
          DUKA_HUB_CONNECTIONS_MAX) " (0: no limit, for a hub behind a proxy, whose address "  \
                                    "every till then has)")

/* Settings whose value is text: X(id, NAME, unit, default, what it does), unit DUKA_UNIT_TEXT
 * or DUKA_UNIT_URL. Their values are read with duka_config_text(). */
#define DUKA_TEXT_SETTINGS(X)                                                                  \
    X(SHOP_TIMEZONE, "SHOP_TIMEZONE", DUKA_UNIT_TEXT, "Africa/Nairobi",                        \
      "the shop's time zone: receipt dates, the business day and times on receipts follow it, " \
      "not the machine's (a zone name such as Africa/Nairobi, or POSIX such as EAT-3)")         \
    X(ETIMS_BASE_URL, "ETIMS_BASE_URL", DUKA_UNIT_URL, "",                                     \
      "duka hub: KRA eTIMS (OSCU) base URL, e.g. https://etims-api.kra.go.ke/etims-api; empty: " \
      "no invoices are sent (they wait in the hub's outbox)")                                  \
    X(ETIMS_QR_BASE, "ETIMS_QR_BASE", DUKA_UNIT_URL,                                           \
      "https://etims-sbx.kra.go.ke/common/link/etims/receipt/indexEtimsReceiptData",            \
      "duka hub: the receipt verification link printed as a QR (…?Data=<PIN><branch><sign>)")  \
    X(MPESA_BASE_URL, "MPESA_BASE_URL", DUKA_UNIT_URL, "",                                     \
      "duka hub: Safaricom Daraja base URL, e.g. https://api.safaricom.co.ke; empty: M-Pesa "   \
      "codes wait in the hub's outbox unverified")                                             \
    X(MPESA_CALLBACK_BASE_URL, "MPESA_CALLBACK_BASE_URL", DUKA_UNIT_URL, "",                   \
      "duka hub: this hub's address as Safaricom reaches it (callbacks, C2B confirmations, "    \
      "status results go to <it>/v1/mpesa/...)")                                               \
    X(MPESA_CONSUMER_KEY, "MPESA_CONSUMER_KEY", DUKA_UNIT_SECRET, "",                          \
      "duka hub: the Daraja app's consumer key")                                               \
    X(MPESA_CONSUMER_SECRET, "MPESA_CONSUMER_SECRET", DUKA_UNIT_SECRET, "",                    \
      "duka hub: the Daraja app's consumer secret")                                            \
    X(MPESA_PASSKEY, "MPESA_PASSKEY", DUKA_UNIT_SECRET, "",                                    \
      "duka hub: the Lipa na M-Pesa Online passkey (STK push)")                                \
    X(MPESA_INITIATOR, "MPESA_INITIATOR", DUKA_UNIT_WORD, "",                                  \
      "duka hub: the initiator name for transaction status queries")                           \
    X(MPESA_SECURITY_CREDENTIAL_FILE, "MPESA_SECURITY_CREDENTIAL_FILE", DUKA_UNIT_WORD, "",    \
      "duka hub: a file holding the initiator's SecurityCredential (base64, from Safaricom's "  \
      "portal); read at start")

typedef enum duka_setting_id {
#define DUKA_SETTING_ENUM(id, name, unit, def, lo, hi, help) DUKA_SETTING_##id,
    DUKA_SETTINGS(DUKA_SETTING_ENUM)
#undef DUKA_SETTING_ENUM
#define DUKA_TEXT_SETTING_ENUM(id, name, unit, def, help) DUKA_SETTING_##id,
    DUKA_TEXT_SETTINGS(DUKA_TEXT_SETTING_ENUM)
#undef DUKA_TEXT_SETTING_ENUM
        DUKA_SETTING_COUNT
} duka_setting_id;

typedef enum duka_setting_source {
    DUKA_SOURCE_DEFAULT,
    DUKA_SOURCE_FILE,
    DUKA_SOURCE_ENV,
    DUKA_SOURCE_FLAG, /* a command-line option */
} duka_setting_source;

#define DUKA_CONFIG_PATH_MAX 1024
#define DUKA_CONFIG_LINE_MAX 1024
#define DUKA_CONFIG_LINES_MAX 1000
#define DUKA_SETTING_TEXT_MAX 256    /* the longest text value (a URL) */
/* Problems kept from one load; more are counted, not kept (a file of 1,000 typos must not
 * flood the status or the log). */
#define DUKA_CONFIG_PROBLEMS_MAX 8

typedef struct duka_config {
    int64_t value[DUKA_SETTING_COUNT];
    char text[DUKA_SETTING_COUNT][DUKA_SETTING_TEXT_MAX + 1]; /* text settings only */
    duka_setting_source source[DUKA_SETTING_COUNT];
    char file[DUKA_CONFIG_PATH_MAX]; /* the file read, or "" when none */
    /* What was wrong in the file or the environment, each a sentence naming the key, the
     * value and where; the setting concerned kept its earlier value. */
    int problem_count;               /* all of them, even beyond DUKA_CONFIG_PROBLEMS_MAX */
    char problems[DUKA_CONFIG_PROBLEMS_MAX][DUKA_ERR_MSG_MAX];
} duka_config;

/* All defaults, no file, no problems. */
void duka_config_defaults(duka_config *cfg);

/* Loads defaults, then the file (file when not NULL: it must exist, DUKA_NOTFOUND otherwise;
 * NULL: $DUKA_CONFIG if set, else `duka.conf` in db_path's folder if it exists), then the
 * environment. Bad values and unknown names are recorded as problems (above), never an error:
 * returns DUKA_OK unless the explicit file cannot be read. */
duka_rc duka_config_load(duka_config *cfg, const char *db_path, const char *file, duka_err *err);

/* Applies one NAME=value (what = "line 3 of FILE" or "environment", for messages). Strict:
 * DUKA_INPUT on a bad value or an unknown name, and nothing changes (command-line flags). */
duka_rc duka_config_set(duka_config *cfg, const char *name, const char *value,
                        duka_setting_source source, const char *what, duka_err *err);

int64_t duka_config_get(const duka_config *cfg, duka_setting_id id);

/* The value of a text setting (DUKA_TEXT_SETTINGS). */
const char *duka_config_text(const duka_config *cfg, duka_setting_id id);

/* The problems as one sentence for a single stderr line or an alert ("2 settings ignored
 * (defaults used): …; …"); "" when none. */
void duka_config_problems_summary(const duka_config *cfg, char *buf, size_t buflen);

/* Makes the process follow the configured time zone (SHOP_TIMEZONE): receipt days and local
 * times. Call once, before any thread starts (it sets TZ). A zone this machine does not know
 * is a problem recorded in cfg, and the default is used. */
void duka_config_apply_timezone(duka_config *cfg);

/* Name, unit and help of a setting; the name of a source. */
const char *duka_setting_name(duka_setting_id id);
const char *duka_setting_source_name(duka_setting_source src);

/* {"file": …, "settings": [{"name","value","unit","source","help"}], "problems": [...]}; a
 * text setting's value is its string, a KES one's its cents. */
json_t *duka_config_json(const duka_config *cfg);

#endif
