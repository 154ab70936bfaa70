/* cmd_hub.c — hub-side commands: hub (serve), hub init, hub report, hub audit, device add and
 * revoke, product import and archive. Each takes --db as a file (SQLite) or a postgres:// URL
 * (PostgreSQL, hub_store_pg.c); a URL is never printed as given: messages and logs show it
 * without its password (duka_hub_store_redact). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/limits.h"
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

#define OPTS(...)                                                                          \
    cli_option opts[] = {__VA_ARGS__};                                                     \
    cli_args args = {.options = opts, .option_count = (int)(sizeof(opts) / sizeof(opts[0]))}

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
    duka_http_server_set_reuse_port(cli_get(&args, "reuse-port") != NULL);
    rc = duka_hub_serve(db, listen, cert, key, &cfg, &err);
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
static int open_store(const char *cmd, const char *db, bool create, duka_hub_store **store)
{
    duka_err err = {0};
    if (duka_hub_store_open(db, create, store, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

int cmd_hub_init(int argc, char **argv)
{
    const char *cmd = "hub init";
    OPTS({"db", true, NULL}, {"business", true, NULL});
    const char *db = NULL, *name = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &name))
        return 2;
    if (strlen(name) > DUKA_BUSINESS_NAME_MAX)
        return cli_usage_error(cmd, "--business name longer than %d characters",
                               DUKA_BUSINESS_NAME_MAX);
    duka_hub_store *store = NULL;
    if (open_store(cmd, db, true, &store))
        return 1;
    duka_err err = {0};
    char id[DUKA_BUSINESS_ID_LEN + 1];
    duka_rc rc = duka_hub_business_create(store, name, id, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(json_pack("{s:s, s:s}", "business_id", id, "name", name));
    else
        printf("%s\n", id);
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
    if (open_store(cmd, db, false, &store))
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
    if (open_store(cmd, db, false, &store))
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
    if (open_store(cmd, db, false, &store))
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
    if (open_store(cmd, db, false, &store))
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
    printf("sales: %lld   total: KES %s   VAT: KES %s   conflicts: %lld\n",
           (long long)json_integer_value(json_object_get(report, "sales")), total, tax,
           (long long)json_integer_value(json_object_get(report, "conflicts")));
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
    if (open_store(cmd, db, false, &store))
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
    if (open_store(cmd, db, false, &store))
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
