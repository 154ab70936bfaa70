/*
 * etims_sim.c — the eTIMS OSCU simulator (see etims_sim.h).
 *
 * Layout: the state file (schema; opened by sim_base.c), the knobs, the checks of a
 * saveTrnsSalesOsdc body (pure: a body in, cents and an error sentence out), the three
 * eTIMS endpoints, the /_sim control endpoints, and the server's start and stop.
 *
 * The tax rule is re-derived here on purpose, not taken from common/money.h: the simulator is
 * the independent check of duka's invoice builder, and a mistake shared by both would pass.
 */
#include "sim/etims_sim.h"
#include "sim/sim_base.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json_limits.h"
#include "common/limits.h"
#include "common/random.h"
#include "common/log.h"
#include "net/http_router.h"

#define SIM_SECRET_BYTES 32
#define SIM_NAIROBI_OFFSET_S (3 * 3600) /* eTIMS times are Kenyan (UTC+3, no DST) */
#define SIM_MSG_MAX 300
#define BANDS 5

static const char band_letters[BANDS] = {'A', 'B', 'C', 'D', 'E'};
static const int band_rates[BANDS] = {0, 16, 0, 0, 8};

typedef struct sim_knobs {
    long latency_ms;
    double fail_rate, timeout_after_accept;
    long outage_every_s, outage_for_s;
    long sequence_window;
    bool outage_forced;         /* POST /_sim/faults {"outage": true} */
    bool multiple_credit_notes; /* false: a second credit note of one invoice is 922 */
} sim_knobs;

struct duka_etims_sim {
    duka_sim_base base; /* its lock guards the knobs too */
    sim_knobs knobs;
    unsigned char secret[SIM_SECRET_BYTES];
    char taxpayer_name[DUKA_ETIMS_SIM_NAME_MAX + 1];
    const duka_clock *clock; /* NULL: the system's */
};

/* ------------------------------------------------------------------------------------------
 * the state file
 * ---------------------------------------------------------------------------------------- */

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    /* One row per installed device (selectInitOsdcInfo); its receipt counters. */
    "CREATE TABLE IF NOT EXISTS devices("
    " id INTEGER PRIMARY KEY, tin TEXT NOT NULL, bhf_id TEXT NOT NULL,"
    " dvc_srl_no TEXT NOT NULL, dvc_id TEXT NOT NULL, sdc_id TEXT NOT NULL UNIQUE,"
    " mrc_no TEXT NOT NULL, cmc_key TEXT NOT NULL UNIQUE, taxpr_nm TEXT NOT NULL,"
    " sales INTEGER NOT NULL DEFAULT 0, credit_notes INTEGER NOT NULL DEFAULT 0,"
    " receipts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
    " UNIQUE(tin, bhf_id, dvc_srl_no));"
    /* Accepted invoices, numbered per taxpayer branch (tin, bhfId), amounts in cents. */
    "CREATE TABLE IF NOT EXISTS invoices("
    " tin TEXT NOT NULL, bhf_id TEXT NOT NULL, invc_no INTEGER NOT NULL,"
    " device_id INTEGER NOT NULL REFERENCES devices(id), trd_invc_no TEXT NOT NULL,"
    " rcpt_ty_cd TEXT NOT NULL, org_invc_no INTEGER NOT NULL, tot_amt INTEGER NOT NULL,"
    " taxbl_a INTEGER NOT NULL, taxbl_b INTEGER NOT NULL, taxbl_c INTEGER NOT NULL,"
    " taxbl_d INTEGER NOT NULL, taxbl_e INTEGER NOT NULL, tax_a INTEGER NOT NULL,"
    " tax_b INTEGER NOT NULL, tax_c INTEGER NOT NULL, tax_d INTEGER NOT NULL,"
    " tax_e INTEGER NOT NULL, cur_rcpt_no INTEGER NOT NULL, tot_rcpt_no INTEGER NOT NULL,"
    " intrl_data TEXT NOT NULL, rcpt_sign TEXT NOT NULL, sdc_date_time TEXT NOT NULL,"
    " received_ms INTEGER NOT NULL, body TEXT NOT NULL,"
    " PRIMARY KEY(tin, bhf_id, invc_no));"
    "CREATE INDEX IF NOT EXISTS invoices_credited ON invoices(tin, bhf_id, org_invc_no)"
    " WHERE rcpt_ty_cd = 'R';"
    /* The highest number n of a branch such that 1..n are all accepted (the 921 window). */
    "CREATE TABLE IF NOT EXISTS sequences(tin TEXT NOT NULL, bhf_id TEXT NOT NULL,"
    " contiguous INTEGER NOT NULL, PRIMARY KEY(tin, bhf_id));"
    /* Answers to saves by result code ("000", "994", ...; "held": replies held). */
    "CREATE TABLE IF NOT EXISTS outcomes(tin TEXT NOT NULL, bhf_id TEXT NOT NULL,"
    " code TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(tin, bhf_id, code));";

/* Loads the signing secret, making it the first time (hex in meta 'secret'); inside the
 * state file's opening transaction. */
static duka_rc load_secret(void *ctx, duka_err *err)
{
    duka_etims_sim *sim = ctx;
    sqlite3_stmt *st = duka_sim_prepare(sim->base.db, "SELECT value FROM meta WHERE key = 'secret'");
    if (st == NULL)
        return duka_sim_fail(sim->base.db, "reading the secret", err);
    bool found = false;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(st, 0);
        size_t bin_len = 0;
        found = hex != NULL && sodium_hex2bin(sim->secret, sizeof(sim->secret), hex, strlen(hex),
                                              NULL, &bin_len, NULL) == 0 &&
                bin_len == sizeof(sim->secret);
        if (!found) {
            sqlite3_finalize(st);
            return duka_err_set(err, DUKA_STORE, "simulator state: its secret is damaged");
        }
    }
    sqlite3_finalize(st);
    if (found)
        return DUKA_OK;
    char hex[SIM_SECRET_BYTES * 2 + 1];
    /* The simulated KRA's signing key, not a secret of duka's: from duka_random, so that the
     * deterministic simulator (tests/sim), which seeds it, replays the same signatures. */
    duka_random_buf(sim->secret, sizeof(sim->secret));
    sodium_bin2hex(hex, sizeof(hex), sim->secret, sizeof(sim->secret));
    st = duka_sim_prepare(sim->base.db, "INSERT INTO meta(key, value) VALUES ('secret', ?1)");
    if (st == NULL)
        return duka_sim_fail(sim->base.db, "storing the secret", err);
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    sodium_memzero(hex, sizeof(hex));
    return rc == SQLITE_DONE ? DUKA_OK : duka_sim_fail(sim->base.db, "storing the secret", err);
}

/* ------------------------------------------------------------------------------------------
 * knobs, waits and fault draws
 * ---------------------------------------------------------------------------------------- */

static sim_knobs knobs_now(duka_etims_sim *sim)
{
    pthread_mutex_lock(&sim->base.lock);
    sim_knobs k = sim->knobs;
    pthread_mutex_unlock(&sim->base.lock);
    return k;
}

static bool outage_on(duka_etims_sim *sim, const sim_knobs *k)
{
    return duka_sim_outage_on(&sim->base, k->outage_forced, k->outage_every_s, k->outage_for_s);
}

/* ------------------------------------------------------------------------------------------
 * small helpers: times, signatures, replies
 * ---------------------------------------------------------------------------------------- */

/* Now in Nairobi time as "YYYYMMDDhhmmss". */
static void nairobi_now(const duka_etims_sim *sim, char out[15])
{
    time_t t = (time_t)(duka_clock_now_ms(sim->clock) / 1000) + SIM_NAIROBI_OFFSET_S;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 15, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "YYYYMMDDhhmmss" as selectInvoiceDetails writes it: "YYYY-MM-DD hh:mm:ss.0". */
static void dashed_datetime(const char *compact, char out[24])
{
    snprintf(out, 24, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s.0", compact, compact + 4, compact + 6,
             compact + 8, compact + 10, compact + 12);
}

/* chars characters of [A-Z2-7] (RFC 4648 base32) from the bits of bytes. */
static void base32(const unsigned char *bytes, size_t chars, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    for (size_t i = 0; i < chars; i++) {
        size_t bit = i * 5, byte = bit / 8, shift = bit % 8;
        unsigned v = (unsigned)bytes[byte] << 8 | (unsigned)bytes[byte + 1];
        out[i] = alphabet[(v >> (11 - shift)) & 31u];
    }
    out[chars] = '\0';
}

/* rcptSign (16 characters) and intrlData (26): a BLAKE2b keyed with the state's secret of
 * the receipt's identity and amount, each under its own label. */
static void sign_receipt(const duka_etims_sim *sim, const char *tin, const char *bhf_id,
                         int64_t invc_no, int64_t tot_amt_cents, char sign[17], char intrl[27])
{
    char msg[160];
    unsigned char h[32];
    snprintf(msg, sizeof(msg), "rcptSign|%s|%s|%" PRId64 "|%" PRId64, tin, bhf_id, invc_no,
             tot_amt_cents);
    crypto_generichash(h, sizeof(h), (const unsigned char *)msg, strlen(msg), sim->secret,
                       sizeof(sim->secret));
    base32(h, 16, sign);
    snprintf(msg, sizeof(msg), "intrlData|%s|%s|%" PRId64 "|%" PRId64, tin, bhf_id, invc_no,
             tot_amt_cents);
    crypto_generichash(h, sizeof(h), (const unsigned char *)msg, strlen(msg), sim->secret,
                       sizeof(sim->secret));
    base32(h, 26, intrl);
}

/* The eTIMS answer: HTTP 200 {"resultCd","resultMsg","resultDt","data"}; takes data. */
static void etims_reply(const duka_etims_sim *sim, duka_http_exchange *ex, const char *code,
                        const char *msg, json_t *data)
{
    char now[15];
    nairobi_now(sim, now);
    json_decref(ex->reply);
    ex->status = 200;
    ex->reply = json_pack("{s:s, s:s, s:s, s:o}", "resultCd", code, "resultMsg", msg,
                          "resultDt", now, "data", data ? data : json_null());
}

static void format_cents(int64_t cents, char *buf, size_t n)
{
    int64_t a = cents < 0 ? -cents : cents;
    snprintf(buf, n, "%s%" PRId64 ".%02" PRId64, cents < 0 ? "-" : "", a / 100, a % 100);
}

/* cents as the JSON number of KES the wire carries (116.0, 15.5). */
static json_t *kes(int64_t cents)
{
    return json_real((double)cents / 100.0);
}

/* ------------------------------------------------------------------------------------------
 * checking a saveTrnsSalesOsdc body
 * ---------------------------------------------------------------------------------------- */

typedef struct checked_item {
    int64_t taxbl, tax;
    int band;
} checked_item;

/* What a valid body comes to. */
typedef struct checked_sale {
    int64_t invc_no, org_invc_no;
    char rcpt_ty; /* 'S' or 'R' */
    char trd_invc_no[DUKA_ETIMS_SIM_TRD_INVC_NO_MAX + 1];
    int64_t taxbl[BANDS], tax[BANDS];
    int64_t tot_taxbl, tot_tax, tot_amt;
} checked_sale;

typedef struct checker {
    char msg[SIM_MSG_MAX]; /* the first problem; "" while none */
} checker;

static bool problem(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool problem(checker *c, const char *fmt, ...)
{
    if (c->msg[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
        va_end(ap);
    }
    return false;
}

/* A field's name for messages: "totAmt" or "itemList[3].taxAmt". */
static void field_name(char *buf, size_t n, const char *prefix, const char *key)
{
    snprintf(buf, n, "%s%s", prefix ? prefix : "", key);
}

/* A text member: present (required) or null/absent (optional), of 0..max bytes (1..max when
 * nonempty). *out gets the text or NULL. */
static bool get_text(checker *c, const json_t *o, const char *prefix, const char *key,
                     bool required, bool nonempty, size_t max, const char **out)
{
    char name[96];
    field_name(name, sizeof(name), prefix, key);
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return problem(c, "%s is missing", name);
        return true;
    }
    if (!json_is_string(v))
        return problem(c, "%s must be a string", name);
    size_t len = json_string_length(v);
    if (len > max)
        return problem(c, "%s is longer than %zu characters", name, max);
    if (nonempty && len == 0)
        return problem(c, "%s is empty", name);
    if (strlen(json_string_value(v)) != len)
        return problem(c, "%s holds a NUL character", name);
    *out = json_string_value(v);
    return true;
}

/* A text member that must be one of the words in choices (a NULL-terminated list). */
static bool get_code(checker *c, const json_t *o, const char *prefix, const char *key,
                     const char *const *choices, const char **out)
{
    char name[96];
    field_name(name, sizeof(name), prefix, key);
    if (!get_text(c, o, prefix, key, true, true, 8, out))
        return false;
    for (int i = 0; choices[i] != NULL; i++)
        if (strcmp(*out, choices[i]) == 0)
            return true;
    char list[96] = "";
    for (int i = 0; choices[i] != NULL; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"", i ? ", " : "",
                 choices[i]);
    return problem(c, "%s '%s' is not one of %s", name, *out, list);
}

/* A JSON number with at most `decimals` decimals (2 for amounts, 3 for quantities), >= 0 and
 * at most max in its smallest unit, into that unit (cents, thousandths). */
static bool get_fixed(checker *c, const json_t *o, const char *prefix, const char *key,
                      int decimals, int64_t max, int64_t *out)
{
    char name[96];
    field_name(name, sizeof(name), prefix, key);
    const json_t *v = json_object_get(o, key);
    int64_t scale = decimals == 3 ? 1000 : 100;
    if (v == NULL || json_is_null(v))
        return problem(c, "%s is missing", name);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return problem(c, "%s must not be negative", name);
        if (i > max / scale)
            return problem(c, "%s is above the simulator's limit", name);
        *out = (int64_t)i * scale;
        return true;
    }
    if (!json_is_real(v))
        return problem(c, "%s must be a number", name);
    double d = json_real_value(v);
    if (!isfinite(d) || d < 0)
        return problem(c, "%s must not be negative", name);
    double x = d * (double)scale;
    if (x > (double)max)
        return problem(c, "%s is above the simulator's limit", name);
    double r = nearbyint(x);
    if (fabs(x - r) > 1e-6 + fabs(x) * 1e-13)
        return problem(c, "%s %.17g has more than %d decimals", name, d, decimals);
    *out = (int64_t)r;
    return true;
}

/* A whole JSON number (an integer, or a real with no fraction) within [lo, hi]. */
static bool get_whole(checker *c, const json_t *o, const char *prefix, const char *key,
                      int64_t lo, int64_t hi, int64_t *out)
{
    char name[96];
    field_name(name, sizeof(name), prefix, key);
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return problem(c, "%s is missing", name);
    int64_t i;
    if (json_is_integer(v)) {
        i = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d != nearbyint(d) || fabs(d) > 9e15)
            return problem(c, "%s must be a whole number", name);
        i = (int64_t)d;
    } else {
        return problem(c, "%s must be a number", name);
    }
    if (i < lo || i > hi)
        return problem(c, "%s %" PRId64 " is not %" PRId64 "..%" PRId64, name, i, lo, hi);
    *out = i;
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return s[n] == '\0';
}

static int two(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* "YYYYMMDD" (with_time false) or "YYYYMMDDhhmmss", a real calendar day and time. */
static bool valid_stamp(const char *s, bool with_time)
{
    static const int days_in[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!all_digits(s, with_time ? 14 : 8))
        return false;
    int month = two(s + 4), day = two(s + 6);
    if (month < 1 || month > 12 || day < 1 || day > days_in[month - 1])
        return false;
    int year = two(s) * 100 + two(s + 2);
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap)
        return false;
    return !with_time || (two(s + 8) < 24 && two(s + 10) < 60 && two(s + 12) < 60);
}

static bool get_stamp(checker *c, const json_t *o, const char *key, bool required,
                      bool with_time)
{
    const char *s = NULL;
    if (!get_text(c, o, NULL, key, required, true, 14, &s))
        return false;
    if (s != NULL && !valid_stamp(s, with_time))
        return problem(c, "%s '%s' is not %s", key, s, with_time ? "YYYYMMDDhhmmss" : "YYYYMMDD");
    return true;
}

/* A KRA PIN: A (a person) or P (any other taxpayer), 9 digits, a letter. */
static bool is_kra_pin(const char *s)
{
    if (strlen(s) != 11 || (s[0] != 'A' && s[0] != 'P') || s[10] < 'A' || s[10] > 'Z')
        return false;
    for (int i = 1; i <= 9; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* round_half_up(a * b / 1000) for a, b >= 0 without overflowing: a*b = a*hi*1000 + a*lo.
 * False when the result would pass DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX. */
static bool times_milli(int64_t a, int64_t b, int64_t *out)
{
    int64_t hi = b / 1000, lo = b % 1000;
    if (hi > 0 && a > DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX / hi)
        return false;
    *out = a * hi + (a * lo + 500) / 1000;
    return *out <= DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX;
}

/* The VAT in a VAT-inclusive amount at rate percent, rounded half up: the rule of the
 * contract, written out again here. */
static int64_t vat_of_gross(int64_t gross_cents, int rate)
{
    if (rate == 0)
        return 0;
    int64_t num = gross_cents * rate, den = 100 + rate;
    return (2 * num + den) / (2 * den);
}

static bool band_of(const char *code, int *band)
{
    for (int b = 0; b < BANDS; b++)
        if (code[0] == band_letters[b] && code[1] == '\0') {
            *band = b;
            return true;
        }
    return false;
}

/* One item of itemList (index i): its fields, and its arithmetic. */
static bool check_item(checker *c, const json_t *it, size_t i, checked_item *out)
{
    char p[32];
    snprintf(p, sizeof(p), "itemList[%zu].", i);
    if (!json_is_object(it))
        return problem(c, "itemList[%zu] must be an object", i);
    const char *s = NULL;
    int64_t seq, pkg, qty, prc, sply, dc_rt, dc_amt, taxbl, tax, tot;
    if (!get_whole(c, it, p, "itemSeq", 1, DUKA_ETIMS_SIM_ITEMS_MAX, &seq))
        return false;
    if (seq != (int64_t)i + 1)
        return problem(c, "%sitemSeq %" PRId64 " is not %zu", p, seq, i + 1);
    if (!get_text(c, it, p, "itemCd", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, it, p, "itemClsCd", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, it, p, "itemNm", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, it, p, "bcd", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, it, p, "pkgUnitCd", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_fixed(c, it, p, "pkg", 3, DUKA_ETIMS_SIM_QTY_MILLI_MAX, &pkg) ||
        !get_text(c, it, p, "qtyUnitCd", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_fixed(c, it, p, "qty", 3, DUKA_ETIMS_SIM_QTY_MILLI_MAX, &qty) ||
        !get_fixed(c, it, p, "prc", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &prc) ||
        !get_fixed(c, it, p, "splyAmt", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &sply) ||
        !get_fixed(c, it, p, "dcRt", 2, 10000, &dc_rt) ||
        !get_fixed(c, it, p, "dcAmt", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &dc_amt) ||
        !get_text(c, it, p, "isrccCd", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, it, p, "isrccNm", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, it, p, "taxTyCd", true, true, 1, &s))
        return false;
    if (!band_of(s, &out->band))
        return problem(c, "%staxTyCd '%s' is not one of A, B, C, D, E", p, s);
    if (!get_fixed(c, it, p, "taxblAmt", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &taxbl) ||
        !get_fixed(c, it, p, "taxAmt", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &tax) ||
        !get_fixed(c, it, p, "totAmt", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &tot))
        return false;
    /* isrcRt / isrcAmt (insurance): null or a number. */
    const json_t *ir = json_object_get(it, "isrcRt"), *ia = json_object_get(it, "isrcAmt");
    if (ir != NULL && !json_is_null(ir) && !json_is_number(ir))
        return problem(c, "%sisrcRt must be a number or null", p);
    if (ia != NULL && !json_is_null(ia) && !json_is_number(ia))
        return problem(c, "%sisrcAmt must be a number or null", p);
    if (qty == 0)
        return problem(c, "%sqty must be above 0", p);
    char a[32], b[32];
    int64_t line;
    if (!times_milli(prc, qty, &line))
        return problem(c, "%sprc × qty is above the simulator's limit", p);
    if (sply != line) {
        format_cents(sply, a, sizeof(a));
        format_cents(line, b, sizeof(b));
        return problem(c, "%ssplyAmt %s is not prc × qty %s", p, a, b);
    }
    if (dc_amt > sply || taxbl != sply - dc_amt) {
        format_cents(taxbl, a, sizeof(a));
        format_cents(sply - dc_amt, b, sizeof(b));
        return problem(c, "%staxblAmt %s is not splyAmt - dcAmt %s", p, a, b);
    }
    if (tot != taxbl) {
        format_cents(tot, a, sizeof(a));
        format_cents(taxbl, b, sizeof(b));
        return problem(c, "%stotAmt %s is not taxblAmt %s (prices are VAT inclusive)", p, a, b);
    }
    int rate = band_rates[out->band];
    int64_t want = vat_of_gross(taxbl, rate);
    if (tax != want) {
        format_cents(tax, a, sizeof(a));
        format_cents(want, b, sizeof(b));
        return problem(c, "%staxAmt %s is not the VAT in taxblAmt at %d%% %s", p, a, rate, b);
    }
    out->taxbl = taxbl;
    out->tax = tax;
    return true;
}

static bool check_receipt(checker *c, const json_t *body)
{
    const json_t *r = json_object_get(body, "receipt");
    if (r == NULL || json_is_null(r))
        return problem(c, "receipt is missing");
    if (!json_is_object(r))
        return problem(c, "receipt must be an object");
    static const char *const yn[] = {"Y", "N", NULL};
    const char *s;
    return get_text(c, r, "receipt.", "custTin", false, false, 11, &s) &&
           get_text(c, r, "receipt.", "custMblNo", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) &&
           get_text(c, r, "receipt.", "rptNo", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) &&
           get_text(c, r, "receipt.", "trdeNm", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) &&
           get_text(c, r, "receipt.", "adrs", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) &&
           get_text(c, r, "receipt.", "topMsg", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) &&
           get_text(c, r, "receipt.", "btmMsg", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) &&
           get_code(c, r, "receipt.", "prchrAcptcYn", yn, &s);
}

/* Compares a stated amount with the one derived; false with a sentence when they differ. */
static bool same_amount(checker *c, const char *field, int64_t stated, int64_t derived,
                        const char *what)
{
    if (stated == derived)
        return true;
    char a[32], b[32];
    format_cents(stated, a, sizeof(a));
    format_cents(derived, b, sizeof(b));
    return problem(c, "%s %s is not %s %s", field, a, what, b);
}

/* Checks every field of a saveTrnsSalesOsdc body and its arithmetic; fills out. */
static bool check_sale(checker *c, const json_t *body, checked_sale *out)
{
    static const char *const sales_ty[] = {"N", NULL}, *const rcpt_ty[] = {"S", "R", NULL},
                             *const pmt_ty[] = {"01", "02", "03", "04", "05", "06", "07", NULL},
                             *const stts[] = {"02", NULL}, *const yn[] = {"Y", "N", NULL},
                             *const rfd[] = {"01", "02", "03", "04", "05", "06", NULL};
    if (!json_is_object(body))
        return problem(c, "the body must be a JSON object");
    memset(out, 0, sizeof(*out));
    const char *s = NULL, *rcpt = NULL;
    if (!get_whole(c, body, NULL, "invcNo", 1, DUKA_ETIMS_SIM_INVC_NO_MAX, &out->invc_no) ||
        !get_whole(c, body, NULL, "orgInvcNo", 0, DUKA_ETIMS_SIM_INVC_NO_MAX, &out->org_invc_no) ||
        !get_text(c, body, NULL, "trdInvcNo", true, true, DUKA_ETIMS_SIM_TRD_INVC_NO_MAX, &s))
        return false;
    snprintf(out->trd_invc_no, sizeof(out->trd_invc_no), "%s", s);
    if (!get_text(c, body, NULL, "custTin", false, false, 11, &s))
        return false;
    if (s != NULL && s[0] != '\0' && !is_kra_pin(s))
        return problem(c, "custTin '%s' is not a KRA PIN", s);
    if (!get_text(c, body, NULL, "custNm", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_code(c, body, NULL, "salesTyCd", sales_ty, &s) ||
        !get_code(c, body, NULL, "rcptTyCd", rcpt_ty, &rcpt) ||
        !get_code(c, body, NULL, "pmtTyCd", pmt_ty, &s) ||
        !get_code(c, body, NULL, "salesSttsCd", stts, &s) ||
        !get_stamp(c, body, "cfmDt", true, true) || !get_stamp(c, body, "salesDt", true, false) ||
        !get_stamp(c, body, "stockRlsDt", false, true) ||
        !get_stamp(c, body, "cnclReqDt", false, true) ||
        !get_stamp(c, body, "cnclDt", false, true) || !get_stamp(c, body, "rfdDt", false, true))
        return false;
    out->rcpt_ty = rcpt[0];
    if (out->rcpt_ty == 'S') {
        if (out->org_invc_no != 0)
            return problem(c, "orgInvcNo must be 0 for a sale (rcptTyCd S)");
        if (!get_text(c, body, NULL, "rfdRsnCd", false, false, 2, &s))
            return false;
        if (s != NULL)
            return problem(c, "rfdRsnCd must be null for a sale (rcptTyCd S)");
    } else {
        if (out->org_invc_no == 0)
            return problem(c, "orgInvcNo is missing: a credit note (rcptTyCd R) names the "
                              "original invoice");
        if (out->org_invc_no == out->invc_no)
            return problem(c, "orgInvcNo is the credit note's own invcNo");
        if (!get_code(c, body, NULL, "rfdRsnCd", rfd, &s))
            return false;
    }
    if (!get_code(c, body, NULL, "prchrAcptcYn", yn, &s) ||
        !get_text(c, body, NULL, "remark", false, false, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, body, NULL, "regrId", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, body, NULL, "regrNm", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, body, NULL, "modrId", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !get_text(c, body, NULL, "modrNm", true, true, DUKA_ETIMS_SIM_TEXT_MAX, &s) ||
        !check_receipt(c, body))
        return false;
    int64_t stated_taxbl[BANDS], stated_tax[BANDS], item_count;
    for (int b = 0; b < BANDS; b++) {
        char key[16];
        int64_t rate;
        snprintf(key, sizeof(key), "taxRt%c", band_letters[b]);
        if (!get_whole(c, body, NULL, key, 0, 100, &rate))
            return false;
        if (rate != band_rates[b])
            return problem(c, "%s %" PRId64 " is not %d", key, rate, band_rates[b]);
        snprintf(key, sizeof(key), "taxblAmt%c", band_letters[b]);
        if (!get_fixed(c, body, NULL, key, 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &stated_taxbl[b]))
            return false;
        snprintf(key, sizeof(key), "taxAmt%c", band_letters[b]);
        if (!get_fixed(c, body, NULL, key, 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &stated_tax[b]))
            return false;
    }
    if (!get_fixed(c, body, NULL, "totTaxblAmt", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX,
                   &out->tot_taxbl) ||
        !get_fixed(c, body, NULL, "totTaxAmt", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX,
                   &out->tot_tax) ||
        !get_fixed(c, body, NULL, "totAmt", 2, DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX, &out->tot_amt) ||
        !get_whole(c, body, NULL, "totItemCnt", 0, DUKA_ETIMS_SIM_INVC_NO_MAX, &item_count))
        return false;
    const json_t *items = json_object_get(body, "itemList");
    if (items == NULL || json_is_null(items))
        return problem(c, "itemList is missing");
    if (!json_is_array(items))
        return problem(c, "itemList must be an array");
    size_t n = json_array_size(items);
    if (n == 0)
        return problem(c, "itemList is empty");
    if (n > DUKA_ETIMS_SIM_ITEMS_MAX)
        return problem(c, "itemList has %zu items, more than %d", n, DUKA_ETIMS_SIM_ITEMS_MAX);
    if (item_count != (int64_t)n)
        return problem(c, "totItemCnt %" PRId64 " is not the number of items %zu", item_count, n);
    int64_t sum_taxbl[BANDS] = {0}, sum_tax[BANDS] = {0};
    for (size_t i = 0; i < n; i++) {
        checked_item it = {0, 0, 0};
        if (!check_item(c, json_array_get(items, i), i, &it))
            return false;
        sum_taxbl[it.band] += it.taxbl;
        sum_tax[it.band] += it.tax;
    }
    int64_t all_taxbl = 0, all_tax = 0;
    for (int b = 0; b < BANDS; b++) {
        char key[16];
        snprintf(key, sizeof(key), "taxblAmt%c", band_letters[b]);
        if (!same_amount(c, key, stated_taxbl[b], sum_taxbl[b], "the sum of items' taxblAmt"))
            return false;
        snprintf(key, sizeof(key), "taxAmt%c", band_letters[b]);
        if (!same_amount(c, key, stated_tax[b], sum_tax[b], "the sum of items' taxAmt"))
            return false;
        out->taxbl[b] = stated_taxbl[b];
        out->tax[b] = stated_tax[b];
        all_taxbl += stated_taxbl[b];
        all_tax += stated_tax[b];
    }
    return same_amount(c, "totTaxblAmt", out->tot_taxbl, all_taxbl, "the sum of taxblAmtA..E") &&
           same_amount(c, "totTaxAmt", out->tot_tax, all_tax, "the sum of taxAmtA..E") &&
           same_amount(c, "totAmt", out->tot_amt, out->tot_taxbl,
                       "totTaxblAmt (prices are VAT inclusive)");
}

/* ------------------------------------------------------------------------------------------
 * the eTIMS endpoints
 * ---------------------------------------------------------------------------------------- */

typedef struct sim_device {
    int64_t id;
    char tin[16], bhf_id[8];
} sim_device;

/* Parses ex's body as one JSON value; NULL with a 910 reply set when it is not JSON. */
static json_t *parse_body(const duka_etims_sim *sim, duka_http_exchange *ex)
{
    json_error_t jerr;
    json_t *v = json_loadb(ex->body, ex->body_len, JSON_REJECT_DUPLICATES, &jerr);
    char msg[SIM_MSG_MAX];
    if (v == NULL) {
        snprintf(msg, sizeof(msg), "the body is not valid JSON: %s (line %d, column %d)",
                 jerr.text, jerr.line, jerr.column);
        etims_reply(sim, ex, "910", msg, NULL);
        return NULL;
    }
    duka_err err = {0};
    if (duka_json_depth_check(v, DUKA_JSON_DEPTH_MAX, "body", &err) != DUKA_OK) {
        etims_reply(sim, ex, "910", err.msg, NULL);
        json_decref(v);
        return NULL;
    }
    if (!json_is_object(v)) {
        etims_reply(sim, ex, "910", "the body must be a JSON object", NULL);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Counts one answer to a save (code "000", "910", ...) for the branch; its own statement in
 * the caller's transaction, or alone. */
static void count_outcome(duka_etims_sim *sim, const char *tin, const char *bhf_id,
                          const char *code)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "INSERT INTO outcomes(tin, bhf_id, code, n) VALUES (?1, ?2, ?3, 1)"
                 " ON CONFLICT(tin, bhf_id, code) DO UPDATE SET n = n + 1");
    if (st == NULL)
        return;
    sqlite3_bind_text(st, 1, tin ? tin : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, bhf_id ? bhf_id : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, code, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        duka_log(DUKA_LOG_ERROR, "sim", "counting an answer: %s", sqlite3_errmsg(sim->base.db));
    sqlite3_finalize(st);
}

static void count_outcome_alone(duka_etims_sim *sim, const char *tin, const char *bhf_id,
                                const char *code)
{
    pthread_mutex_lock(&sim->base.lock);
    count_outcome(sim, tin, bhf_id, code);
    pthread_mutex_unlock(&sim->base.lock);
}

/* The installed device the headers tin, bhfId and cmcKey name; false when none. Called with
 * the lock held. */
static bool find_device(duka_etims_sim *sim, const duka_http_exchange *ex, sim_device *dev)
{
    const char *tin = duka_http_header(ex, "tin"), *bhf = duka_http_header(ex, "bhfId"),
               *key = duka_http_header(ex, "cmcKey");
    if (tin == NULL || bhf == NULL || key == NULL)
        return false;
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT id, tin, bhf_id FROM devices WHERE cmc_key = ?1 AND tin = ?2 AND "
                 "bhf_id = ?3");
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, tin, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, bhf, -1, SQLITE_TRANSIENT);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        dev->id = sqlite3_column_int64(st, 0);
        snprintf(dev->tin, sizeof(dev->tin), "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(dev->bhf_id, sizeof(dev->bhf_id), "%s", (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
    return found;
}

static void reply_not_installed(const duka_etims_sim *sim, duka_http_exchange *ex)
{
    etims_reply(sim, ex, "901", "It is not valid device: the tin, bhfId and cmcKey headers name no "
                           "installed device (selectInitOsdcInfo first)", NULL);
}

/* data.info of a device row (columns tin, taxpr_nm, bhf_id, dvc_id, sdc_id, mrc_no, cmc_key). */
static json_t *device_info(sqlite3_stmt *st)
{
    const char *bhf = (const char *)sqlite3_column_text(st, 2);
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}", "info", "tin",
                     (const char *)sqlite3_column_text(st, 0), "taxprNm",
                     (const char *)sqlite3_column_text(st, 1), "bhfId", bhf, "bhfNm",
                     strcmp(bhf, "00") == 0 ? "Headquarter" : "Branch", "dvcId",
                     (const char *)sqlite3_column_text(st, 3), "sdcId",
                     (const char *)sqlite3_column_text(st, 4), "mrcNo",
                     (const char *)sqlite3_column_text(st, 5), "cmcKey",
                     (const char *)sqlite3_column_text(st, 6));
}

static const char device_columns_sql[] =
    "SELECT tin, taxpr_nm, bhf_id, dvc_id, sdc_id, mrc_no, cmc_key FROM devices"
    " WHERE tin = ?1 AND bhf_id = ?2 AND dvc_srl_no = ?3";

/* selectInitOsdcInfo {tin, bhfId, dvcSrlNo}: installs a device (000) or answers 902 with the
 * same info for a serial installed before. */
static void route_init(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_etims_sim *sim = app;
    (void)ctx;
    json_t *body = parse_body(sim, ex);
    if (body == NULL)
        return;
    checker c = {{0}};
    const char *tin = NULL, *bhf = NULL, *serial = NULL;
    if (get_text(&c, body, NULL, "tin", true, true, 11, &tin) && !is_kra_pin(tin))
        problem(&c, "tin '%s' is not a KRA PIN (A or P, 9 digits, a letter)", tin);
    if (c.msg[0] == '\0' && get_text(&c, body, NULL, "bhfId", true, true, 2, &bhf) &&
        !all_digits(bhf, 2))
        problem(&c, "bhfId '%s' is not two digits", bhf);
    if (c.msg[0] == '\0')
        get_text(&c, body, NULL, "dvcSrlNo", true, true, DUKA_ETIMS_SIM_SERIAL_MAX, &serial);
    if (c.msg[0] != '\0') {
        etims_reply(sim, ex, "910", c.msg, NULL);
        json_decref(body);
        return;
    }
    pthread_mutex_lock(&sim->base.lock);
    duka_err err = {0};
    json_t *data = NULL;
    bool existed = false;
    sqlite3_stmt *st = NULL;
    if (duka_sim_exec(sim->base.db, "BEGIN IMMEDIATE", &err) != DUKA_OK)
        goto out;
    st = duka_sim_prepare(sim->base.db, device_columns_sql);
    if (st == NULL)
        goto out;
    sqlite3_bind_text(st, 1, tin, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, bhf, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, serial, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        existed = true;
        data = device_info(st);
    } else {
        int64_t n = duka_sim_scalar_int(sim->base.db, "SELECT coalesce(max(id), 0) + 1 FROM devices", 1);
        char sdc[32], mrc[32], dvc[32], key[65];
        unsigned char raw[32];
        snprintf(sdc, sizeof(sdc), "KRACU01%08" PRId64, n);
        snprintf(mrc, sizeof(mrc), "WIS%08" PRId64, n);
        snprintf(dvc, sizeof(dvc), "99999%011" PRId64, n);
        duka_random_buf(raw, sizeof(raw));
        sodium_bin2hex(key, sizeof(key), raw, sizeof(raw));
        sqlite3_stmt *ins = duka_sim_prepare(
            sim->base.db, "INSERT INTO devices(id, tin, bhf_id, dvc_srl_no, dvc_id, sdc_id, mrc_no,"
                     " cmc_key, taxpr_nm, created_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
        if (ins == NULL)
            goto out;
        sqlite3_bind_int64(ins, 1, n);
        sqlite3_bind_text(ins, 2, tin, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 3, bhf, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 4, serial, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 5, dvc, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 6, sdc, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 7, mrc, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 8, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 9, sim->taxpayer_name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 10, duka_clock_now_ms(sim->clock));
        int rc = sqlite3_step(ins);
        sqlite3_finalize(ins);
        if (rc != SQLITE_DONE)
            goto out;
        sqlite3_reset(st);
        if (sqlite3_step(st) != SQLITE_ROW)
            goto out;
        data = device_info(st);
    }
    if (data == NULL || duka_sim_exec(sim->base.db, "COMMIT", &err) != DUKA_OK) {
        json_decref(data);
        data = NULL;
    }
out:
    sqlite3_finalize(st);
    if (data == NULL) {
        duka_sim_rollback(sim->base.db);
        duka_log(DUKA_LOG_ERROR, "sim", "installing a device: %s",
                 err.msg[0] ? err.msg : sqlite3_errmsg(sim->base.db));
    }
    pthread_mutex_unlock(&sim->base.lock);
    if (data == NULL)
        etims_reply(sim, ex, "999", "the simulator's state file failed (see its log)", NULL);
    else if (existed)
        etims_reply(sim, ex, "902", "This device is installed", data);
    else
        etims_reply(sim, ex, "000", "It is succeeded", data);
    json_decref(body);
}

/* The outcome of a save's transaction. */
typedef struct save_result {
    const char *code; /* "000", "994", "921", "922"; NULL: the state failed */
    char msg[SIM_MSG_MAX];
    int64_t cur_rcpt_no, tot_rcpt_no;
    char sign[17], intrl[27], sdc_date_time[15];
} save_result;

static int64_t branch_int(sqlite3 *db, const char *sql, const sim_device *d, int64_t arg,
                          int64_t fallback)
{
    sqlite3_stmt *st = duka_sim_prepare(db, sql);
    int64_t v = fallback;
    if (st == NULL)
        return fallback;
    sqlite3_bind_text(st, 1, d->tin, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, d->bhf_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, arg);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* 994, 921 and 922: the checks that need what is already kept. Called in the transaction.
 * True when the invoice may be kept; otherwise r says why. */
static bool sequencing_allows(duka_etims_sim *sim, const sim_device *d, const checked_sale *s,
                              const sim_knobs *k, save_result *r)
{
    if (branch_int(sim->base.db, "SELECT 1 FROM invoices WHERE tin=?1 AND bhf_id=?2 AND invc_no=?3",
                   d, s->invc_no, 0)) {
        r->code = "994";
        snprintf(r->msg, sizeof(r->msg), "Overlapped data");
        return false;
    }
    if (k->sequence_window > 0) {
        int64_t contiguous = branch_int(
            sim->base.db, "SELECT contiguous FROM sequences WHERE tin=?1 AND bhf_id=?2 AND ?3=?3", d,
            0, 0);
        if (s->invc_no > contiguous + k->sequence_window) {
            r->code = "921";
            snprintf(r->msg, sizeof(r->msg),
                     "invcNo %" PRId64 " is out of sequence: %" PRId64 " is the highest number "
                     "with none missing before it (window %ld)",
                     s->invc_no, contiguous, k->sequence_window);
            return false;
        }
    }
    if (s->rcpt_ty != 'R')
        return true;
    int64_t org_total = branch_int(sim->base.db,
                                   "SELECT tot_amt FROM invoices WHERE tin=?1 AND bhf_id=?2 AND "
                                   "invc_no=?3 AND rcpt_ty_cd='S'",
                                   d, s->org_invc_no, -1);
    r->code = "922";
    if (org_total < 0) {
        snprintf(r->msg, sizeof(r->msg),
                 "orgInvcNo %" PRId64 " is not an accepted sale of this taxpayer branch",
                 s->org_invc_no);
        return false;
    }
    int64_t notes = branch_int(sim->base.db,
                               "SELECT count(*) FROM invoices WHERE tin=?1 AND bhf_id=?2 AND "
                               "rcpt_ty_cd='R' AND org_invc_no=?3",
                               d, s->org_invc_no, 0);
    int64_t credited = branch_int(sim->base.db,
                                  "SELECT sum(tot_amt) FROM invoices WHERE tin=?1 AND bhf_id=?2 "
                                  "AND rcpt_ty_cd='R' AND org_invc_no=?3",
                                  d, s->org_invc_no, 0);
    if (notes > 0 && !k->multiple_credit_notes) {
        snprintf(r->msg, sizeof(r->msg),
                 "invoice %" PRId64 " already has a credit note (one is allowed)", s->org_invc_no);
        return false;
    }
    if (credited + s->tot_amt > org_total) {
        char a[32], b[32], t[32];
        format_cents(s->tot_amt, a, sizeof(a));
        format_cents(credited, b, sizeof(b));
        format_cents(org_total, t, sizeof(t));
        snprintf(r->msg, sizeof(r->msg),
                 "credit note totAmt %s with %s credited before goes beyond invoice %" PRId64
                 "'s totAmt %s",
                 a, b, s->org_invc_no, t);
        return false;
    }
    r->code = NULL;
    return true;
}

/* Keeps an accepted invoice: its row, the device's counters, the branch's contiguous number. */
static bool keep_invoice(duka_etims_sim *sim, const sim_device *d, const checked_sale *s,
                         const char *body_text, save_result *r)
{
    const char *counter = s->rcpt_ty == 'S' ? "sales" : "credit_notes";
    char sql[160];
    snprintf(sql, sizeof(sql),
             "UPDATE devices SET %s = %s + 1, receipts = receipts + 1 WHERE id = ?1"
             " RETURNING %s, receipts",
             counter, counter, counter);
    sqlite3_stmt *st = duka_sim_prepare(sim->base.db, sql);
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, d->id);
    bool ok = sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        r->cur_rcpt_no = sqlite3_column_int64(st, 0);
        r->tot_rcpt_no = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (!ok)
        return false;
    sign_receipt(sim, d->tin, d->bhf_id, s->invc_no, s->tot_amt, r->sign, r->intrl);
    nairobi_now(sim, r->sdc_date_time);
    st = duka_sim_prepare(sim->base.db,
                     "INSERT INTO invoices(tin, bhf_id, invc_no, device_id, trd_invc_no,"
                     " rcpt_ty_cd, org_invc_no, tot_amt, taxbl_a, taxbl_b, taxbl_c, taxbl_d,"
                     " taxbl_e, tax_a, tax_b, tax_c, tax_d, tax_e, cur_rcpt_no, tot_rcpt_no,"
                     " intrl_data, rcpt_sign, sdc_date_time, received_ms, body) VALUES"
                     " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,"
                     "?21,?22,?23,?24,?25)");
    if (st == NULL)
        return false;
    char ty[2] = {s->rcpt_ty, '\0'};
    sqlite3_bind_text(st, 1, d->tin, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, d->bhf_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, s->invc_no);
    sqlite3_bind_int64(st, 4, d->id);
    sqlite3_bind_text(st, 5, s->trd_invc_no, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, ty, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 7, s->org_invc_no);
    sqlite3_bind_int64(st, 8, s->tot_amt);
    for (int b = 0; b < BANDS; b++) {
        sqlite3_bind_int64(st, 9 + b, s->taxbl[b]);
        sqlite3_bind_int64(st, 14 + b, s->tax[b]);
    }
    sqlite3_bind_int64(st, 19, r->cur_rcpt_no);
    sqlite3_bind_int64(st, 20, r->tot_rcpt_no);
    sqlite3_bind_text(st, 21, r->intrl, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 22, r->sign, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 23, r->sdc_date_time, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 24, duka_clock_now_ms(sim->clock));
    sqlite3_bind_text(st, 25, body_text, -1, SQLITE_TRANSIENT);
    ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    if (!ok)
        return false;
    /* Advance the branch's contiguous number over this one and any kept beyond it. */
    int64_t contiguous = branch_int(
        sim->base.db, "SELECT contiguous FROM sequences WHERE tin=?1 AND bhf_id=?2 AND ?3=?3", d, 0,
        0);
    while (branch_int(sim->base.db, "SELECT 1 FROM invoices WHERE tin=?1 AND bhf_id=?2 AND invc_no=?3",
                      d, contiguous + 1, 0))
        contiguous++;
    st = duka_sim_prepare(sim->base.db, "INSERT INTO sequences(tin, bhf_id, contiguous) VALUES (?1,?2,?3)"
                              " ON CONFLICT(tin, bhf_id) DO UPDATE SET contiguous = ?3");
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, d->tin, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, d->bhf_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, contiguous);
    ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    return ok;
}

/* One save's transaction: sequencing checks, then keeping it; counts the outcome. */
static void save_transaction(duka_etims_sim *sim, const sim_device *d, const checked_sale *s,
                             const char *body_text, const sim_knobs *k, save_result *r)
{
    duka_err err = {0};
    r->code = NULL;
    if (duka_sim_exec(sim->base.db, "BEGIN IMMEDIATE", &err) != DUKA_OK) {
        duka_log(DUKA_LOG_ERROR, "sim", "%s", err.msg);
        return;
    }
    if (sequencing_allows(sim, d, s, k, r)) {
        if (!keep_invoice(sim, d, s, body_text, r)) {
            duka_log(DUKA_LOG_ERROR, "sim", "keeping invoice %" PRId64 ": %s", s->invc_no,
                     sqlite3_errmsg(sim->base.db));
            duka_sim_rollback(sim->base.db);
            return;
        }
        r->code = "000";
        snprintf(r->msg, sizeof(r->msg), "It is succeeded");
    }
    count_outcome(sim, d->tin, d->bhf_id, r->code);
    if (duka_sim_exec(sim->base.db, "COMMIT", &err) != DUKA_OK) {
        duka_log(DUKA_LOG_ERROR, "sim", "%s", err.msg);
        duka_sim_rollback(sim->base.db);
        r->code = NULL;
    }
}

/* saveTrnsSalesOsdc. */
static void route_save(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_etims_sim *sim = app;
    (void)ctx;
    sim_knobs k = knobs_now(sim);
    sim_device dev;
    pthread_mutex_lock(&sim->base.lock);
    bool installed = find_device(sim, ex, &dev);
    pthread_mutex_unlock(&sim->base.lock);
    if (!installed) {
        count_outcome_alone(sim, duka_http_header(ex, "tin"), duka_http_header(ex, "bhfId"),
                            "901");
        reply_not_installed(sim, ex);
        return;
    }
    if (duka_sim_draw(&sim->base, k.fail_rate)) {
        count_outcome_alone(sim, dev.tin, dev.bhf_id, "999");
        etims_reply(sim, ex, "999", "An unknown error occurred (simulated failure, nothing kept)",
                    NULL);
        return;
    }
    json_t *body = parse_body(sim, ex);
    if (body == NULL) {
        count_outcome_alone(sim, dev.tin, dev.bhf_id, "910");
        return;
    }
    checker c = {{0}};
    checked_sale s;
    if (!check_sale(&c, body, &s)) {
        json_decref(body);
        count_outcome_alone(sim, dev.tin, dev.bhf_id, "910");
        duka_log(DUKA_LOG_INFO, "sim", "save refused with 910: %s", c.msg);
        etims_reply(sim, ex, "910", c.msg, NULL);
        return;
    }
    json_decref(body);
    save_result r;
    memset(&r, 0, sizeof(r));
    pthread_mutex_lock(&sim->base.lock);
    save_transaction(sim, &dev, &s, ex->body, &k, &r);
    pthread_mutex_unlock(&sim->base.lock);
    if (r.code == NULL) {
        etims_reply(sim, ex, "999", "the simulator's state file failed (see its log)", NULL);
        return;
    }
    if (strcmp(r.code, "000") != 0) {
        duka_log(DUKA_LOG_INFO, "sim", "save of invcNo %" PRId64 " (%s) refused with %s: %s",
                 s.invc_no, s.trd_invc_no, r.code, r.msg);
        etims_reply(sim, ex, r.code, r.msg, NULL);
        return;
    }
    if (duka_sim_draw(&sim->base, k.timeout_after_accept)) {
        duka_log(DUKA_LOG_INFO, "sim", "invcNo %" PRId64 " kept; holding its reply", s.invc_no);
        count_outcome_alone(sim, dev.tin, dev.bhf_id, "held");
        duka_sim_hold_reply(&sim->base, ex, DUKA_ETIMS_SIM_HOLD_MS);
    }
    etims_reply(sim, ex, "000", r.msg,
                json_pack("{s:I, s:I, s:s, s:s, s:s}", "curRcptNo", (json_int_t)r.cur_rcpt_no,
                          "totRcptNo", (json_int_t)r.tot_rcpt_no, "intrlData", r.intrl,
                          "rcptSign", r.sign, "sdcDateTime", r.sdc_date_time));
}

/* selectInvoiceDetails {invcNo}. */
static void route_select(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_etims_sim *sim = app;
    (void)ctx;
    sim_device dev;
    pthread_mutex_lock(&sim->base.lock);
    bool installed = find_device(sim, ex, &dev);
    pthread_mutex_unlock(&sim->base.lock);
    if (!installed) {
        reply_not_installed(sim, ex);
        return;
    }
    json_t *body = parse_body(sim, ex);
    if (body == NULL)
        return;
    checker c = {{0}};
    int64_t invc_no = 0;
    bool ok = get_whole(&c, body, NULL, "invcNo", 1, DUKA_ETIMS_SIM_INVC_NO_MAX, &invc_no);
    json_decref(body);
    if (!ok) {
        etims_reply(sim, ex, "910", c.msg, NULL);
        return;
    }
    json_t *data = NULL;
    bool failed = false;
    pthread_mutex_lock(&sim->base.lock);
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT invc_no, trd_invc_no, rcpt_ty_cd, tot_amt, cur_rcpt_no, tot_rcpt_no,"
                 " intrl_data, rcpt_sign, sdc_date_time, org_invc_no FROM invoices"
                 " WHERE tin = ?1 AND bhf_id = ?2 AND invc_no = ?3");
    if (st == NULL) {
        failed = true;
    } else {
        sqlite3_bind_text(st, 1, dev.tin, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, dev.bhf_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, invc_no);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            char dashed[24];
            dashed_datetime((const char *)sqlite3_column_text(st, 8), dashed);
            data = json_pack(
                "{s:[{s:I, s:I, s:s, s:s, s:o, s:{s:I, s:I, s:s, s:s, s:s}}]}", "salesList",
                "invcNo", (json_int_t)sqlite3_column_int64(st, 0), "orgInvcNo",
                (json_int_t)sqlite3_column_int64(st, 9), "trdInvcNo",
                (const char *)sqlite3_column_text(st, 1), "rcptTyCd",
                (const char *)sqlite3_column_text(st, 2), "totAmt",
                kes(sqlite3_column_int64(st, 3)), "receipt", "curRcptNo",
                (json_int_t)sqlite3_column_int64(st, 4), "totRcptNo",
                (json_int_t)sqlite3_column_int64(st, 5), "intrlData",
                (const char *)sqlite3_column_text(st, 6), "rcptSign",
                (const char *)sqlite3_column_text(st, 7), "sdcDateTime", dashed);
            failed = data == NULL;
        } else if (rc != SQLITE_DONE) {
            failed = true;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sim->base.lock);
    if (failed)
        etims_reply(sim, ex, "999", "the simulator's state file failed (see its log)", NULL);
    else if (data == NULL)
        etims_reply(sim, ex, "001", "There is no search result", NULL);
    else
        etims_reply(sim, ex, "000", "It is succeeded", data);
}

/* ------------------------------------------------------------------------------------------
 * the control endpoints (loopback only)
 * ---------------------------------------------------------------------------------------- */

static json_t *knobs_json(duka_etims_sim *sim)
{
    sim_knobs k = knobs_now(sim);
    pthread_mutex_lock(&sim->base.lock);
    long held = sim->base.held;
    pthread_mutex_unlock(&sim->base.lock);
    return json_pack("{s:b, s:b, s:f, s:I, s:f, s:I, s:I, s:I, s:b, s:I}", "outage",
                     outage_on(sim, &k), "outage_forced", k.outage_forced, "fail_rate",
                     k.fail_rate, "latency_ms", (json_int_t)k.latency_ms,
                     "timeout_after_accept", k.timeout_after_accept, "sequence_window",
                     (json_int_t)k.sequence_window, "outage_every_s",
                     (json_int_t)k.outage_every_s, "outage_for_s", (json_int_t)k.outage_for_s,
                     "multiple_credit_notes", k.multiple_credit_notes, "held_now",
                     (json_int_t)held);
}

static void route_faults_get(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)ctx;
    ex->status = 200;
    ex->reply = knobs_json(app);
}

/* POST /_sim/faults: changes the knobs the body names, all or none; answers the knobs. */
static void route_faults_post(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_etims_sim *sim = app;
    (void)ctx;
    json_t *body = duka_sim_body_object(ex);
    if (body == NULL)
        return;
    sim_knobs k = knobs_now(sim);
    bool reschedule = false;
    const char *key;
    json_t *v;
    double d = 0;
    json_object_foreach(body, key, v) {
        bool ok = true;
        if (strcmp(key, "outage") == 0 || strcmp(key, "multiple_credit_notes") == 0) {
            if (!json_is_boolean(v)) {
                duka_http_error(ex, 400, "invalid_knob", "%s must be true or false", key);
                ok = false;
            } else if (key[0] == 'o') {
                /* Off also ends a schedule: "no outage now" means none. */
                k.outage_forced = json_is_true(v);
                if (!k.outage_forced)
                    k.outage_every_s = k.outage_for_s = 0;
            } else {
                k.multiple_credit_notes = json_is_true(v);
            }
        } else if (strcmp(key, "fail_rate") == 0) {
            if ((ok = duka_sim_knob_number(ex, key, v, 0, 1, false, &d)))
                k.fail_rate = d;
        } else if (strcmp(key, "timeout_after_accept") == 0) {
            if ((ok = duka_sim_knob_number(ex, key, v, 0, 1, false, &d)))
                k.timeout_after_accept = d;
        } else if (strcmp(key, "latency_ms") == 0) {
            if ((ok = duka_sim_knob_number(ex, key, v, 0, DUKA_ETIMS_SIM_LATENCY_MS_MAX, true, &d)))
                k.latency_ms = (long)d;
        } else if (strcmp(key, "sequence_window") == 0) {
            if ((ok = duka_sim_knob_number(ex, key, v, 0, DUKA_ETIMS_SIM_WINDOW_MAX, true, &d)))
                k.sequence_window = (long)d;
        } else if (strcmp(key, "outage_every_s") == 0 || strcmp(key, "outage_for_s") == 0) {
            if ((ok = duka_sim_knob_number(ex, key, v, 0, DUKA_ETIMS_SIM_OUTAGE_S_MAX, true, &d))) {
                *(key[7] == 'e' ? &k.outage_every_s : &k.outage_for_s) = (long)d;
                reschedule = true;
            }
        } else {
            duka_http_error(ex, 400, "unknown_knob",
                            "unknown knob '%.60s' (outage, fail_rate, latency_ms, "
                            "timeout_after_accept, sequence_window, outage_every_s, "
                            "outage_for_s, multiple_credit_notes)",
                            key);
            ok = false;
        }
        if (!ok) {
            json_decref(body);
            return;
        }
    }
    json_decref(body);
    if (k.outage_every_s > 0 && k.outage_for_s >= k.outage_every_s) {
        duka_http_error(ex, 400, "invalid_knob", "outage_for_s must be less than outage_every_s");
        return;
    }
    pthread_mutex_lock(&sim->base.lock);
    sim->knobs = k;
    pthread_mutex_unlock(&sim->base.lock);
    if (reschedule)
        duka_sim_outage_reschedule(&sim->base);
    duka_log(DUKA_LOG_INFO, "sim", "knobs changed: %.*s", (int)ex->body_len, ex->body);
    ex->status = 200;
    ex->reply = knobs_json(sim);
}

static void route_health(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)app;
    (void)ctx;
    ex->status = 200;
    ex->reply = json_pack("{s:b}", "ok", 1);
}

/* Adds the invoice row's missing predecessors to gaps (bounded). */
static void add_gaps(json_t *gaps, int64_t from, int64_t to, bool *truncated)
{
    for (int64_t n = from; n < to; n++) {
        if (json_array_size(gaps) >= DUKA_ETIMS_SIM_GAPS_MAX) {
            *truncated = true;
            return;
        }
        json_array_append_new(gaps, json_integer((json_int_t)n));
    }
}

/* The statistics of saves: {"saves","accepted","held","refused_by_code":{...}} and the 994s. */
static json_t *outcome_stats(duka_etims_sim *sim, const char *tin, const char *bhf,
                             int64_t *duplicates)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT code, sum(n) FROM outcomes WHERE (?1 IS NULL OR tin = ?1) AND"
                 " (?2 IS NULL OR bhf_id = ?2) GROUP BY code ORDER BY code");
    json_t *by_code = json_object();
    int64_t saves = 0, accepted = 0, held = 0;
    *duplicates = 0;
    if (st == NULL || by_code == NULL) {
        sqlite3_finalize(st);
        json_decref(by_code);
        return NULL;
    }
    sqlite3_bind_text(st, 1, tin, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, bhf, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *code = (const char *)sqlite3_column_text(st, 0);
        int64_t n = sqlite3_column_int64(st, 1);
        if (strcmp(code, "held") == 0) {
            held = n;
            continue;
        }
        saves += n;
        if (strcmp(code, "000") == 0) {
            accepted = n;
            continue;
        }
        if (strcmp(code, "994") == 0)
            *duplicates = n;
        json_object_set_new(by_code, code, json_integer((json_int_t)n));
    }
    sqlite3_finalize(st);
    return json_pack("{s:I, s:I, s:I, s:o}", "saves", (json_int_t)saves, "accepted",
                     (json_int_t)accepted, "held", (json_int_t)held, "refused_by_code", by_code);
}

/* GET /_sim/invoices[?tin=…&bhfId=…]: everything kept, with the numbers missing. */
static void route_invoices(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_etims_sim *sim = app;
    (void)ctx;
    const char *tin = duka_http_query(ex, "tin"), *bhf = duka_http_query(ex, "bhfId");
    json_t *list = json_array(), *gaps = json_array(), *stats = NULL;
    bool truncated = false, failed = list == NULL || gaps == NULL;
    int64_t duplicates = 0;
    pthread_mutex_lock(&sim->base.lock);
    sqlite3_stmt *st = failed ? NULL : duka_sim_prepare(
        sim->base.db, "SELECT tin, bhf_id, invc_no, trd_invc_no, rcpt_ty_cd, org_invc_no, tot_amt,"
                 " taxbl_a, taxbl_b, taxbl_c, taxbl_d, taxbl_e, tax_a, tax_b, tax_c, tax_d,"
                 " tax_e, rcpt_sign, intrl_data, cur_rcpt_no, tot_rcpt_no, received_ms"
                 " FROM invoices WHERE (?1 IS NULL OR tin = ?1) AND (?2 IS NULL OR bhf_id = ?2)"
                 " ORDER BY tin, bhf_id, invc_no");
    failed = failed || st == NULL;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, tin, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, bhf, -1, SQLITE_TRANSIENT);
        char prev_branch[32] = "";
        int64_t prev = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            char branch[32];
            snprintf(branch, sizeof(branch), "%s/%s", (const char *)sqlite3_column_text(st, 0),
                     (const char *)sqlite3_column_text(st, 1));
            if (strcmp(branch, prev_branch) != 0) {
                snprintf(prev_branch, sizeof(prev_branch), "%s", branch);
                prev = 0;
            }
            int64_t n = sqlite3_column_int64(st, 2);
            add_gaps(gaps, prev + 1, n, &truncated);
            prev = n;
            json_t *o = json_pack(
                "{s:s, s:s, s:I, s:s, s:s, s:I, s:o, s:I, s:s, s:s, s:I, s:I, s:I}", "tin",
                (const char *)sqlite3_column_text(st, 0), "bhfId",
                (const char *)sqlite3_column_text(st, 1), "invcNo", (json_int_t)n, "trdInvcNo",
                (const char *)sqlite3_column_text(st, 3), "rcptTyCd",
                (const char *)sqlite3_column_text(st, 4), "orgInvcNo",
                (json_int_t)sqlite3_column_int64(st, 5), "totAmt",
                kes(sqlite3_column_int64(st, 6)), "totAmt_cents",
                (json_int_t)sqlite3_column_int64(st, 6), "rcptSign",
                (const char *)sqlite3_column_text(st, 17), "intrlData",
                (const char *)sqlite3_column_text(st, 18), "curRcptNo",
                (json_int_t)sqlite3_column_int64(st, 19), "totRcptNo",
                (json_int_t)sqlite3_column_int64(st, 20), "received_ms",
                (json_int_t)sqlite3_column_int64(st, 21));
            for (int b = 0; o != NULL && b < BANDS; b++) {
                char key[16];
                snprintf(key, sizeof(key), "taxblAmt%c", band_letters[b]);
                json_object_set_new(o, key, kes(sqlite3_column_int64(st, 7 + b)));
                snprintf(key, sizeof(key), "taxAmt%c", band_letters[b]);
                json_object_set_new(o, key, kes(sqlite3_column_int64(st, 12 + b)));
            }
            if (o == NULL || json_array_append_new(list, o) != 0) {
                failed = true;
                break;
            }
        }
        failed = failed || (rc != SQLITE_ROW && rc != SQLITE_DONE);
        sqlite3_finalize(st);
    }
    if (!failed)
        failed = (stats = outcome_stats(sim, tin, bhf, &duplicates)) == NULL;
    pthread_mutex_unlock(&sim->base.lock);
    if (failed) {
        json_decref(list);
        json_decref(gaps);
        json_decref(stats);
        duka_http_error(ex, 500, "state", "reading the simulator's state failed");
        return;
    }
    ex->status = 200;
    ex->reply = json_pack("{s:o, s:I, s:o, s:b, s:o}", "invoices", list, "duplicates_refused",
                          (json_int_t)duplicates, "gaps", gaps, "gaps_truncated", truncated,
                          "stats", stats);
}

/* ------------------------------------------------------------------------------------------
 * dispatch, open, close, serve
 * ---------------------------------------------------------------------------------------- */

enum { ROUTE_CONTROL = 1u << 0 };

static const duka_http_route sim_routes[] = {
    {"POST", "/etims-api/selectInitOsdcInfo", route_init, 0},
    {"POST", "/etims-api/saveTrnsSalesOsdc", route_save, 0},
    {"POST", "/etims-api/selectInvoiceDetails", route_select, 0},
    {"GET", "/_sim/faults", route_faults_get, ROUTE_CONTROL},
    {"POST", "/_sim/faults", route_faults_post, ROUTE_CONTROL},
    {"GET", "/_sim/invoices", route_invoices, ROUTE_CONTROL},
    {"GET", "/_sim/health", route_health, ROUTE_CONTROL},
};

static void dispatch(duka_etims_sim *sim, duka_http_exchange *ex);

void duka_etims_sim_handle(duka_etims_sim *sim, duka_http_exchange *ex)
{
    dispatch(sim, ex);
    duka_sim_reply_as_text(ex);
}

static void dispatch(duka_etims_sim *sim, duka_http_exchange *ex)
{
    const duka_http_route *r =
        duka_http_route_find(sim_routes, sizeof(sim_routes) / sizeof(sim_routes[0]), ex);
    if (r == NULL)
        return; /* 404 / 405 set */
    if (r->flags & ROUTE_CONTROL) {
        if (duka_sim_control_allowed(ex))
            r->fn(sim, NULL, ex);
        return;
    }
    sim_knobs k = knobs_now(sim);
    duka_sim_wait_ms(&sim->base, k.latency_ms);
    if (outage_on(sim, &k)) {
        static const char down[] = "503 Service Unavailable (simulated eTIMS outage)\n";
        duka_http_reply_bytes(ex, 503, "text/plain; charset=utf-8", down, sizeof(down) - 1,
                              false);
        return;
    }
    r->fn(sim, NULL, ex);
}

duka_rc duka_etims_sim_open(const duka_etims_sim_options *opt, duka_etims_sim **out,
                            duka_err *err)
{
    *out = NULL;
    duka_etims_sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting the simulator");
    duka_sim_base_init(&sim->base, opt->seed);
    sim->knobs = (sim_knobs){
        .latency_ms = opt->latency_ms,
        .fail_rate = opt->fail_rate,
        .timeout_after_accept = opt->timeout_after_accept,
        .outage_every_s = opt->outage_every_s,
        .outage_for_s = opt->outage_for_s,
        .sequence_window = opt->sequence_window,
        .multiple_credit_notes = !opt->single_credit_note,
    };
    sim->clock = opt->clock;
    snprintf(sim->taxpayer_name, sizeof(sim->taxpayer_name), "%s",
             opt->taxpayer_name ? opt->taxpayer_name : "duka simulated taxpayer");
    duka_rc rc =
        duka_sim_state_open(&sim->base, opt->state_path, schema_sql, load_secret, sim, err);
    if (rc != DUKA_OK) {
        duka_etims_sim_close(sim);
        return rc;
    }
    *out = sim;
    return DUKA_OK;
}

void duka_etims_sim_wake_all(duka_etims_sim *sim)
{
    duka_sim_wake_all(&sim->base);
}

void duka_etims_sim_close(duka_etims_sim *sim)
{
    if (sim == NULL)
        return;
    duka_sim_base_destroy(&sim->base);
    sodium_memzero(sim->secret, sizeof(sim->secret));
    free(sim);
}

static void handle(void *app, duka_http_exchange *ex)
{
    duka_etims_sim_handle(app, ex);
}

duka_rc duka_etims_sim_serve(const duka_etims_sim_options *opt, duka_err *err)
{
    duka_etims_sim *sim = NULL;
    int fd = -1;
    /* The address first: a busy port stops the command before the state file is made. */
    duka_rc rc = duka_http_listen_open(opt->listen, false, &fd, err);
    if (rc != DUKA_OK)
        return rc;
    rc = duka_etims_sim_open(opt, &sim, err);
    if (rc != DUKA_OK) {
        close(fd);
        return rc;
    }
    char banner[DUKA_URL_MAX * 2];
    snprintf(banner, sizeof(banner), "duka sim etims listening on http://%s/etims-api (state %s)",
             opt->listen, opt->state_path);
    duka_sim_run run = {
        .listen = opt->listen,
        .listen_fd = fd,
        .max_body_bytes = DUKA_ETIMS_SIM_BODY_MAX_BYTES,
        .handler = handle,
        .app = sim,
        .banner = banner,
    };
    rc = duka_sim_serve(&sim->base, &run, err);
    duka_etims_sim_close(sim);
    return rc;
}
