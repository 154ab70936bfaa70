/* cmd_hub.c — hub-side commands: hub (serve), hub init, hub report, hub audit, business list
 * and set, device add, revoke and list, product import, archive and list, stock. Each takes
 * --db as a file (SQLite) or a postgres:// URL (PostgreSQL, hub_store_pg.c); a URL is never
 * printed as given: messages and logs show it without its password (duka_hub_store_redact).
 * Input is checked before the store is opened, so a refusal writes nothing. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "outbox/hub_outbox.h"
#include "payments/mpesa/mpesa_sender.h"
#include "common/clock.h"
#include "common/limits.h"
#include "hub/hub_business.h"
#include "hub/hub_report.h"
#include "hub/hub_server.h"
#include "hub/hub_store.h"
#include "hub/product_import.h"
#include "common/money.h"
#include "net/http_server.h"
#include "config/config.h"
#include "protocol/sale.h"

static void format_cents_field(const json_t *o, const char *key, char *buf, size_t n)
{
    duka_format_cents((int64_t)json_integer_value(json_object_get(o, key)), buf, n);
}

/* Reads a PEM file (at most 256 KiB) into a NUL-terminated buffer the caller frees. */
static duka_rc read_pem(const char *path, const char *what, char **out, duka_err *err)
{
    enum { PEM_MAX = 256 * 1024 };
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return duka_err_set(err, DUKA_NOTFOUND, "%s '%s' cannot be read", what, path);
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory reading %s", what);
    if (n == 0 || n > PEM_MAX || strstr((buf[n] = '\0', buf), "-----BEGIN ") == NULL) {
        free(buf);
        return duka_err_set(err, DUKA_INPUT, "%s '%s' is not a PEM file (at most %d KiB)", what,
                            path, PEM_MAX / 1024);
    }
    *out = buf;
    return DUKA_OK;
}

int cmd_hub_serve(int argc, char **argv)
{
    const char *cmd = "hub";
    OPTS({"db", true, NULL}, {"listen", true, NULL}, {"tls-cert", true, NULL},
         {"tls-key", true, NULL}, {"config", true, NULL}, {"reuse-port", false, NULL});
    const char *db = NULL, *listen = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "listen", &listen))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    const char *cert_path = cli_get(&args, "tls-cert"), *key_path = cli_get(&args, "tls-key");
    if ((cert_path == NULL) != (key_path == NULL))
        return cli_usage_error(cmd, "--tls-cert and --tls-key go together");
    duka_err err = {0};
    /* HUB_CONNECTION_TIMEOUT, HUB_CONNECTIONS_PER_IP: duka.conf beside DB (or $DUKA_CONFIG,
     * or --config), then the environment. A PostgreSQL URL has no folder beside it. */
    duka_config cfg;
    if (duka_config_load(&cfg, duka_hub_store_is_postgres(db) ? NULL : db,
                         cli_get(&args, "config"), &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    /* The business day (the pull's receipt floor) in the shop's zone, as on the till. A bad
     * setting never stops the hub either: the default is used, and said at start. */
    duka_config_apply_timezone(&cfg);
    if (cfg.problem_count > 0) {
        char summary[1024];
        duka_config_problems_summary(&cfg, summary, sizeof(summary));
        fprintf(stderr, "duka %s: warning: %s (see: duka config)\n", cmd, summary);
    }
    char *cert = NULL, *key = NULL;
    duka_rc rc = DUKA_OK;
    if (cert_path != NULL && ((rc = read_pem(cert_path, "--tls-cert", &cert, &err)) != DUKA_OK ||
                              (rc = read_pem(key_path, "--tls-key", &key, &err)) != DUKA_OK)) {
        free(cert);
        free(key);
        return cli_fail(cmd, &err);
    }
    /* Several hubs on one port only when each of them asks (SO_REUSEPORT): stateless hubs
     * over one PostgreSQL database. Without it a busy port is refused with one line. */
    rc = duka_hub_serve(db, listen, cert, key, &cfg, cli_get(&args, "reuse-port") != NULL,
                        &err);
    free(cert);
    if (key != NULL)
        sodium_memzero(key, strlen(key));
    free(key);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

/* Opens the hub store named by --db (must exist unless create: a file is created, a
 * PostgreSQL schema created or migrated by its owner). */
int cli_hub_open(const char *cmd, const char *db, bool create, duka_hub_store **store)
{
    duka_err err = {0};
    if (duka_hub_store_open(db, create, store, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

/* --kra-pin's value in its printed form; "" stays "" when allow_empty (clearing it). */
static int kra_pin_arg(const char *cmd, const char *pin, bool allow_empty,
                       char out[DUKA_KRA_PIN_LEN + 1])
{
    if (allow_empty && pin[0] == '\0') {
        out[0] = '\0';
        return 0;
    }
    if (!duka_kra_pin_normalize(pin, out))
        return cli_usage_error(cmd,
                               "--kra-pin '%.40s' is not a KRA PIN (A or P, 9 digits, a letter: "
                               "P051234567X)",
                               pin);
    return 0;
}

/* The businesses entry of business_id in a duka_hub_business_list result, or NULL. */
static const json_t *business_entry(const json_t *list, const char *business_id)
{
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(list, "businesses"), i, b)
        if (strcmp(json_string_value(json_object_get(b, "business_id")), business_id) == 0)
            return b;
    return NULL;
}

int cmd_hub_init(int argc, char **argv)
{
    const char *cmd = "hub init";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"kra-pin", true, NULL},
         {"allow-duplicate-name", false, NULL});
    const char *db = NULL, *given = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &given))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    duka_err err = {0};
    char name[DUKA_BUSINESS_NAME_MAX + 1], pin[DUKA_KRA_PIN_LEN + 1] = "";
    if (duka_business_name_clean(given, "--business", name, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    const char *given_pin = cli_get(&args, "kra-pin");
    if (given_pin != NULL && kra_pin_arg(cmd, given_pin, false, pin))
        return 2;
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, true, &store))
        return 1;
    char id[DUKA_BUSINESS_ID_LEN + 1];
    duka_rc rc = duka_hub_business_register(store, name, pin,
                                            cli_get(&args, "allow-duplicate-name") != NULL, id,
                                            &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(
            json_pack("{s:s, s:s, s:s}", "business_id", id, "name", name, "kra_pin", pin));
    else
        printf("%s\n", id);
    return 0;
}

/* ---- tables ---- */

/* The row being printed: cells are appended, row_end prints it without trailing blanks. */
static char row[1024];
static size_t row_used;

static void row_text(const char *s)
{
    size_t n = strlen(s), room = sizeof(row) - 1 - row_used;
    memcpy(row + row_used, s, n < room ? n : room);
    row_used += n < room ? n : room;
}

/* Appends s in a column width characters wide (UTF-8 characters, not bytes, so a name with
 * accents lines up), then the gap; right: aligned to the right. */
static void cell(const char *s, int width, bool right)
{
    int chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        chars += (*p & 0xc0) != 0x80;
    int pad = width > chars ? width - chars : 0;
    char text[512];
    snprintf(text, sizeof(text), "%*s%s%*s  ", right ? pad : 0, "", s, right ? 0 : pad, "");
    row_text(text);
}

static void row_end(void)
{
    while (row_used > 0 && row[row_used - 1] == ' ')
        row_used--;
    row[row_used] = '\0';
    printf("%s\n", row);
    row_used = 0;
}

static const char *str_of(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

int cmd_business_list(int argc, char **argv)
{
    const char *cmd = "business list";
    OPTS({"db", true, NULL});
    const char *db = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    json_t *list = NULL;
    duka_rc rc = duka_hub_business_list(store, false, &list, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(list);
        return 0;
    }
    cell("BUSINESS ID", DUKA_BUSINESS_ID_LEN, false);
    cell("NAME", 32, false);
    cell("KRA PIN", DUKA_KRA_PIN_LEN, false);
    cell("DEVICES", 7, true);
    row_text("CREATED");
    row_end();
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(list, "businesses"), i, b) {
        char devices[24];
        snprintf(devices, sizeof(devices), "%lld",
                 (long long)json_integer_value(json_object_get(b, "devices")));
        cell(str_of(b, "business_id"), DUKA_BUSINESS_ID_LEN, false);
        cell(str_of(b, "name"), 32, false);
        cell(str_of(b, "kra_pin")[0] ? str_of(b, "kra_pin") : "-", DUKA_KRA_PIN_LEN, false);
        cell(devices, 7, true);
        row_text(str_of(b, "created"));
        row_end();
    }
    json_decref(list);
    return 0;
}

int cmd_business_set(int argc, char **argv)
{
    const char *cmd = "business set";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"name", true, NULL},
         {"kra-pin", true, NULL}, {"mpesa-shortcode", true, NULL},
         {"allow-duplicate-name", false, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    const char *given_name = cli_get(&args, "name"), *given_pin = cli_get(&args, "kra-pin");
    const char *shortcode = cli_get(&args, "mpesa-shortcode");
    if (given_name == NULL && given_pin == NULL && shortcode == NULL)
        return cli_usage_error(cmd, "nothing to set: give --name NAME, --kra-pin PIN and/or "
                                    "--mpesa-shortcode N");
    duka_err err = {0};
    char name[DUKA_BUSINESS_NAME_MAX + 1], pin[DUKA_KRA_PIN_LEN + 1];
    if (given_name != NULL &&
        duka_business_name_clean(given_name, "--name", name, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    if (given_pin != NULL && kra_pin_arg(cmd, given_pin, true, pin))
        return 2;
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    json_t *list = NULL;
    duka_rc rc = DUKA_OK;
    if (given_name != NULL || given_pin != NULL)
        rc = duka_hub_business_change(store, biz, given_name ? name : NULL,
                                      given_pin ? pin : NULL,
                                      cli_get(&args, "allow-duplicate-name") != NULL, &err);
    /* The shortcode's C2B URLs are registered with Daraja by the hub's M-Pesa worker. */
    if (rc == DUKA_OK && shortcode != NULL)
        rc = duka_mpesa_set_shortcode(store, biz, shortcode, duka_clock_now_ms(NULL), &err);
    char now_shortcode[16] = "";
    bool has_shortcode = false;
    if (rc == DUKA_OK)
        rc = duka_hub_kv_get(store, biz, DUKA_MPESA_KV_SHORTCODE, now_shortcode,
                             sizeof(now_shortcode), &has_shortcode, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_business_list(store, false, &list, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    const json_t *b = business_entry(list, biz);
    if (args.json) {
        json_t *o = b ? json_deep_copy(b) : json_object();
        json_object_set_new(o, "mpesa_shortcode", json_string(now_shortcode));
        cli_print_json(o);
    } else {
        const char *now_pin = str_of(b, "kra_pin");
        printf("business %s: name '%s', KRA PIN %s, M-Pesa shortcode %s\n", biz,
               str_of(b, "name"), now_pin[0] ? now_pin : "none",
               now_shortcode[0] ? now_shortcode : "none");
    }
    json_decref(list);
    return 0;
}

int cmd_device_add(int argc, char **argv)
{
    const char *cmd = "device add";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"terminal", true, NULL});
    const char *db = NULL, *biz = NULL, *terminal = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz) ||
        cli_require(cmd, &args, "terminal", &terminal))
        return 2;
    if (!duka_terminal_id_valid(terminal))
        return cli_usage_error(cmd, "--terminal '%s' must be 1-%d letters, digits or '_'",
                               terminal, DUKA_TERMINAL_ID_MAX);
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    char token[DUKA_TOKEN_MAX + 1];
    duka_rc rc = duka_hub_business_check(store, biz, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_device_add(store, biz, terminal, token, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(json_pack("{s:s, s:s}", "token", token, "terminal", terminal));
    else
        printf("%s\n", token);
    return 0;
}

int cmd_product_import(int argc, char **argv)
{
    const char *cmd = "product import";
    OPTS({"db", true, NULL}, {"business", true, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count != 1)
        return cli_usage_error(cmd, "expected one FILE.csv");
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    int imported = 0;
    duka_rc rc = duka_product_import_file(store, biz, args.positional[0], &imported, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(json_pack("{s:i}", "imported", imported));
    else
        printf("imported %d products\n", imported);
    return 0;
}

int cmd_product_archive(int argc, char **argv)
{
    const char *cmd = "product archive";
    OPTS({"db", true, NULL}, {"business", true, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count != 1)
        return cli_usage_error(cmd, "expected one SKU");
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    duka_rc rc = duka_hub_store_begin(store, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_business_check(store, biz, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_product_archive(store, biz, args.positional[0], duka_clock_now_ms(NULL),
                                      &err);
    if (rc == DUKA_OK)
        rc = duka_hub_store_commit(store, &err);
    if (rc != DUKA_OK)
        duka_hub_store_rollback(store);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(json_pack("{s:s, s:b}", "sku", args.positional[0], "archived", 1));
    else
        printf("archived %s\n", args.positional[0]);
    return 0;
}

/* The report's conflicts, one line each: they are not in the totals above and cannot be
 * resolved yet, so they are shown rather than left to be found. */
static void print_conflicts(const json_t *report, long long conflicts)
{
    char total[32];
    format_cents_field(report, "conflict_total_cents", total, sizeof(total));
    printf("conflicts: %lld (not in the totals above, KES %s):\n", conflicts, total);
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(report, "conflict_details"), i, c) {
        char amount[40] = "KES ?";
        const json_t *t = json_object_get(c, "total_cents");
        if (json_is_integer(t)) {
            char cents[32];
            duka_format_cents((int64_t)json_integer_value(t), cents, sizeof(cents));
            snprintf(amount, sizeof(amount), "KES %s", cents);
        }
        printf("  %s %s %s terminal %s detected %s command %s (the sale kept: command %s)\n",
               str_of(c, "receipt_no"), str_of(c, "kind"), amount, str_of(c, "terminal"),
               str_of(c, "detected"), str_of(c, "command_id"),
               str_of(c, "existing_command_id")[0] ? str_of(c, "existing_command_id") : "-");
    }
    long long omitted =
        (long long)json_integer_value(json_object_get(report, "conflict_details_omitted"));
    if (omitted > 0)
        printf("  and %lld older conflict%s not listed here (the newest %d are)\n", omitted,
               omitted == 1 ? "" : "s", DUKA_REPORT_CONFLICTS_MAX);
}

/* The report's sales per cashier, once any sale has one (a hub whose tills sell with no
 * cashier prints what it printed before). */
static void print_cashiers(const json_t *report)
{
    const json_t *all = json_object_get(report, "cashiers");
    size_t i;
    const json_t *c;
    bool any = false;
    json_array_foreach(all, i, c)
        any = any || json_string_length(json_object_get(c, "cashier_id")) > 0;
    if (!any)
        return;
    json_array_foreach(all, i, c)
    {
        char total[32];
        format_cents_field(c, "total_cents", total, sizeof(total));
        const char *name = json_string_value(json_object_get(c, "name"));
        printf("  cashier %-20s sales: %lld   total: KES %s\n",
               name && name[0] ? name : "(none)",
               (long long)json_integer_value(json_object_get(c, "sales")), total);
    }
}

int cmd_hub_report(int argc, char **argv)
{
    const char *cmd = "hub report";
    OPTS({"db", true, NULL}, {"business", true, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    json_t *report = NULL;
    duka_rc rc = duka_hub_business_check(store, biz, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_report(store, biz, &report, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(report);
        return 0;
    }
    char total[32], tax[32];
    format_cents_field(report, "total_cents", total, sizeof(total));
    format_cents_field(report, "tax_cents", tax, sizeof(tax));
    long long conflicts = (long long)json_integer_value(json_object_get(report, "conflicts"));
    printf("sales: %lld   total: KES %s   VAT: KES %s   conflicts: %lld\n",
           (long long)json_integer_value(json_object_get(report, "sales")), total, tax,
           conflicts);
    print_cashiers(report);
    if (conflicts > 0)
        print_conflicts(report, conflicts);
    json_decref(report);
    return 0;
}

int cmd_device_revoke(int argc, char **argv)
{
    const char *cmd = "device revoke";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"terminal", true, NULL});
    const char *db = NULL, *biz = NULL, *terminal = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz) ||
        cli_require(cmd, &args, "terminal", &terminal))
        return 2;
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    duka_rc rc = duka_hub_business_check(store, biz, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_device_revoke(store, biz, terminal, duka_clock_now_ms(NULL), &err);
    if (rc == DUKA_OK) {
        char detail[96];
        snprintf(detail, sizeof(detail), "terminal %s revoked by hand", terminal);
        duka_hub_audit(store, biz, 0, "device_revoked", detail, duka_clock_now_ms(NULL), NULL);
    }
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(json_pack("{s:s, s:b}", "terminal", terminal, "revoked", 1));
    else
        printf("terminal %s revoked: its token is refused from now on; its sales already at the "
               "hub stand\n",
               terminal);
    return 0;
}

int cmd_hub_audit(int argc, char **argv)
{
    const char *cmd = "hub audit";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"limit", true, NULL});
    const char *db = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db))
        return 2;
    const char *l = cli_get(&args, "limit");
    char *end = NULL;
    long limit = l ? strtol(l, &end, 10) : 100;
    if (l != NULL && (end == l || *end != '\0' || limit < 1 || limit > 100000))
        return cli_usage_error(cmd, "--limit '%s' must be a whole number 1..100000", l);
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    json_t *events = NULL;
    duka_rc rc = duka_hub_audit_list(store, cli_get(&args, "business"), (int)limit, &events, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(events);
        return 0;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(events, "events"), i, e)
        printf("%s %-20s %s\n", json_string_value(json_object_get(e, "time")),
               json_string_value(json_object_get(e, "event")),
               json_string_value(json_object_get(e, "detail")));
    json_decref(events);
    return 0;
}

/* Opens --db and checks --business: the shared start of the listing commands. */
static int open_business(const char *cmd, const char *db, const char *biz,
                         duka_hub_store **store)
{
    if (cli_hub_open(cmd, db, false, store))
        return 1;
    duka_err err = {0};
    if (duka_hub_business_check(*store, biz, &err) != DUKA_OK) {
        duka_hub_store_close(*store);
        *store = NULL;
        return cli_fail(cmd, &err);
    }
    return 0;
}

int cmd_device_list(int argc, char **argv)
{
    const char *cmd = "device list";
    OPTS({"db", true, NULL}, {"business", true, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    duka_hub_store *store = NULL;
    if (open_business(cmd, db, biz, &store))
        return 1;
    duka_err err = {0};
    json_t *list = NULL;
    duka_rc rc = duka_hub_device_list(store, biz, &list, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(list);
        return 0;
    }
    cell("TERMINAL", DUKA_TERMINAL_ID_MAX, false);
    cell("DEVICE", 6, true);
    cell("STATUS", 7, false);
    cell("TILL", 7, false);
    row_text("CREATED");
    row_end();
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(list, "devices"), i, d) {
        char id[24];
        snprintf(id, sizeof(id), "%lld",
                 (long long)json_integer_value(json_object_get(d, "device_id")));
        cell(str_of(d, "terminal"), DUKA_TERMINAL_ID_MAX, false);
        cell(id, 6, true);
        cell(str_of(d, "status"), 7, false);
        cell(json_is_true(json_object_get(d, "till_bound")) ? "bound" : "unbound", 7, false);
        row_text(str_of(d, "created"));
        row_end();
    }
    json_decref(list);
    return 0;
}

int cmd_product_list(int argc, char **argv)
{
    const char *cmd = "product list";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"archived", false, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    duka_hub_store *store = NULL;
    if (open_business(cmd, db, biz, &store))
        return 1;
    duka_err err = {0};
    json_t *list = NULL;
    duka_rc rc = duka_hub_product_list(store, biz, cli_get(&args, "archived") != NULL, &list,
                                       &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(list);
        return 0;
    }
    cell("SKU", 16, false);
    cell("NAME", 32, false);
    cell("PRICE KES", 12, true);
    cell("TAX", 3, false);
    cell("CATEGORY", 16, false);
    cell("STOCK", 10, true);
    row_end();
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(list, "products"), i, p) {
        char price[32], stock[40];
        format_cents_field(p, "price", price, sizeof(price));
        duka_format_qty((int64_t)json_integer_value(json_object_get(p, "stock_milli")), stock,
                     sizeof(stock));
        cell(str_of(p, "sku"), 16, false);
        cell(str_of(p, "name"), 32, false);
        cell(price, 12, true);
        cell(str_of(p, "tax"), 3, false);
        cell(str_of(p, "category"), 16, false);
        cell(stock, 10, true);
        if (json_is_true(json_object_get(p, "archived")))
            row_text("archived");
        row_end();
    }
    json_decref(list);
    return 0;
}

int cmd_stock(int argc, char **argv)
{
    const char *cmd = "stock";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"negative", false, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    duka_hub_store *store = NULL;
    if (open_business(cmd, db, biz, &store))
        return 1;
    duka_err err = {0};
    json_t *stock = NULL;
    duka_rc rc = duka_hub_stock(store, biz, cli_get(&args, "negative") != NULL, &stock, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(stock);
        return 0;
    }
    cell("SKU", 16, false);
    cell("NAME", 32, false);
    cell("STOCK", 12, true);
    row_end();
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(stock, "products"), i, p) {
        char level[40];
        duka_format_qty((int64_t)json_integer_value(json_object_get(p, "stock_milli")), level,
                     sizeof(level));
        cell(str_of(p, "sku"), 16, false);
        cell(str_of(p, "name"), 32, false);
        cell(level, 12, true);
        if (json_is_true(json_object_get(p, "negative")))
            row_text("NEGATIVE");
        row_end();
    }
    long long negative = (long long)json_integer_value(json_object_get(stock, "negative"));
    if (negative == 0)
        printf("0 products below zero\n");
    else
        printf("%lld product%s below zero: reconcile %s (sales are never refused for stock)\n",
               negative, negative == 1 ? "" : "s", negative == 1 ? "it" : "them");
    json_decref(stock);
    return 0;
}
