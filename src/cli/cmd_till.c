/* cmd_till.c — till-side commands: till (serve), till init, sell, sync, status, queue,
 * catalog. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/limits.h"
#include "common/money.h"
#include "net/http_client.h"
#include "outbox/outbox.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "sync/sync_client.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/till_db.h"
#include "till/till_server.h"
#include "till/till_status.h"

#define OPTS(...)                                                                          \
    cli_option opts[] = {__VA_ARGS__};                                                     \
    cli_args args = {.options = opts, .option_count = (int)(sizeof(opts) / sizeof(opts[0]))}

/* Parses an integer option within [lo, hi]; absent gives def. Returns -1 on a bad value
 * after printing a usage error. */
static int int_option(const char *cmd, const cli_args *args, const char *name, int lo, int hi,
                      int def, int *out)
{
    const char *v = cli_get(args, name);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < lo || n > hi) {
        cli_usage_error(cmd, "--%s '%s' must be a whole number %d..%d", name, v, lo, hi);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int open_till(const char *cmd, const char *path, sqlite3 **db)
{
    duka_err err = {0};
    if (duka_till_db_open(path, false, db, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

int cmd_till_init(int argc, char **argv)
{
    const char *cmd = "till init";
    OPTS({"db", true, NULL}, {"hub", true, NULL}, {"terminal", true, NULL},
         {"token", true, NULL}, {"offline", false, NULL});
    const char *path = NULL, *hub = NULL, *terminal = NULL, *token = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path) || cli_require(cmd, &args, "hub", &hub) ||
        cli_require(cmd, &args, "terminal", &terminal) || cli_require(cmd, &args, "token", &token))
        return 2;
    if (!duka_terminal_id_valid(terminal))
        return cli_usage_error(cmd, "--terminal '%s' must be 1-%d letters, digits or '_'",
                               terminal, DUKA_TERMINAL_ID_MAX);
    if (!duka_http_url_valid(hub))
        return cli_usage_error(cmd, "--hub '%s' is not an http:// or https:// URL", hub);
    if (strlen(token) > DUKA_TOKEN_MAX)
        return cli_usage_error(cmd, "--token is longer than %d characters", DUKA_TOKEN_MAX);
    char hub_url[DUKA_URL_MAX + 1];
    snprintf(hub_url, sizeof(hub_url), "%s", hub);
    size_t n = strlen(hub_url);
    while (n > 0 && hub_url[n - 1] == '/')
        hub_url[--n] = '\0';
    duka_err err = {0};
    bool offline = cli_get(&args, "offline") != NULL;
    /* Check the hub and token before writing anything. */
    if (!offline && duka_sync_check_hub(hub_url, token, terminal, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    sqlite3 *db = NULL;
    if (duka_till_db_open(path, true, &db, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    char existing[DUKA_TERMINAL_ID_MAX + 1];
    bool has = false;
    duka_rc rc = duka_meta_get(db, DUKA_META_TERMINAL, existing, sizeof(existing), &has, &err);
    if (rc == DUKA_OK && has && strcmp(existing, terminal) != 0)
        rc = duka_err_set(&err, DUKA_INPUT,
                          "'%s' belongs to terminal %s; a till database keeps its terminal id",
                          path, existing);
    if (rc == DUKA_OK)
        rc = duka_db_begin(db, &err);
    if (rc == DUKA_OK &&
        (duka_meta_set(db, DUKA_META_TERMINAL, terminal, &err) ||
         duka_meta_set(db, DUKA_META_HUB_URL, hub_url, &err) ||
         duka_meta_set(db, DUKA_META_TOKEN, token, &err) || duka_db_commit(db, &err)))
        rc = DUKA_STORE;
    if (rc != DUKA_OK)
        duka_db_rollback(db);
    int64_t pulled = 0;
    if (rc == DUKA_OK && !offline)
        rc = duka_sync_pull(db, &pulled, &err);
    duka_db_close(db);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(json_pack("{s:s, s:s, s:I, s:b}", "terminal", terminal, "hub", hub_url,
                                 "products", (json_int_t)pulled, "offline", offline));
    else
        printf("till %s ready: hub %s, %lld products%s\n", terminal, hub_url, (long long)pulled,
               offline ? " (offline: run duka sync to pull the catalog)" : "");
    return 0;
}

static void print_receipt(const duka_sale *s)
{
    char a[32], b[32], q[32];
    printf("Receipt %s\n", s->receipt_no);
    for (int i = 0; i < s->line_count; i++) {
        const duka_sale_line *l = &s->lines[i];
        duka_format_cents(l->line_total_cents, a, sizeof(a));
        duka_format_qty(l->qty_milli, q, sizeof(q));
        printf("  %-28.28s %6s x %10s  %c\n", l->name, q, a, l->tax_band);
    }
    duka_format_cents(s->total_cents, a, sizeof(a));
    duka_format_cents(s->tax_cents, b, sizeof(b));
    printf("  TOTAL KES %s   (VAT incl. %s)   paid: %s\n", a, b, s->payments[0].method);
    printf("  eTIMS pending; sync pending\n");
}

int cmd_sell(int argc, char **argv)
{
    const char *cmd = "sell";
    OPTS({"db", true, NULL}, {"pay", true, NULL});
    const char *path = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    if (args.positional_count < 1)
        return cli_usage_error(cmd, "expected at least one SKU[*QTY]");
    if (args.positional_count > DUKA_SALE_LINES_MAX)
        return cli_usage_error(cmd, "at most %d items in one sale", DUKA_SALE_LINES_MAX);
    duka_err err = {0};
    duka_checkout_item items[CLI_POSITIONAL_MAX];
    for (int i = 0; i < args.positional_count; i++)
        if (duka_checkout_parse_item(args.positional[i], i + 1, &items[i], &err) != DUKA_OK)
            return cli_fail(cmd, &err);
    duka_checkout_payment pay;
    if (duka_checkout_parse_payment(cli_get(&args, "pay"), &pay, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    sqlite3 *db = NULL;
    if (open_till(cmd, path, &db))
        return 1;
    duka_sale *sale = duka_sale_new();
    char command_id[DUKA_UUID_STR_LEN + 1];
    duka_rc rc = sale ? duka_checkout_commit(db, NULL, items, args.positional_count, &pay, sale,
                                             command_id, &err)
                      : duka_err_set(&err, DUKA_NOMEM, "out of memory");
    duka_db_close(db);
    if (rc != DUKA_OK) {
        duka_sale_free(sale);
        return cli_fail(cmd, &err);
    }
    if (args.json)
        cli_print_json(json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "receipt_no", sale->receipt_no,
                                 "total", (json_int_t)sale->total_cents, "tax",
                                 (json_int_t)sale->tax_cents, "sync", "pending", "command_id",
                                 command_id, "payment_status", sale->payments[0].status));
    else
        print_receipt(sale);
    duka_sale_free(sale);
    return 0;
}

int cmd_sync(int argc, char **argv)
{
    const char *cmd = "sync";
    OPTS({"db", true, NULL}, {"batch", true, NULL});
    const char *path = NULL;
    int batch = 0;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path) ||
        int_option(cmd, &args, "batch", 1, DUKA_SYNC_BATCH_MAX, DUKA_SYNC_BATCH_DEFAULT, &batch))
        return 2;
    sqlite3 *db = NULL;
    if (open_till(cmd, path, &db))
        return 1;
    duka_err err = {0};
    duka_sync_options so = {.batch_size = batch};
    duka_sync_result res;
    duka_rc rc = duka_sync_run(db, &so, &res, &err);
    duka_db_close(db);
    if (args.json) {
        json_t *o = duka_sync_result_json(&res);
        if (rc != DUKA_OK)
            json_object_set_new(o, "error", json_string(err.msg));
        cli_print_json(o);
    } else if (rc == DUKA_OK) {
        printf("pushed %lld (%lld already at the hub), pulled %lld, failed %lld, conflicts %lld in "
               "%lld ms\n",
               (long long)res.pushed, (long long)res.duplicates, (long long)res.pulled,
               (long long)res.failed, (long long)res.conflicts, (long long)res.duration_ms);
    }
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

int cmd_status(int argc, char **argv)
{
    const char *cmd = "status";
    OPTS({"db", true, NULL});
    const char *path = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    sqlite3 *db = NULL;
    if (open_till(cmd, path, &db))
        return 1;
    duka_err err = {0};
    json_t *st = NULL;
    duka_rc rc = duka_till_status_json(db, &st, &err);
    duka_db_close(db);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(st);
        return 0;
    }
    const json_t *ls = json_object_get(st, "last_sync");
    printf("terminal %s   hub %s\nconnectivity: %s   last sync: %s\n"
           "pending: %lld   failed: %lld   conflicts: %lld\n",
           json_string_value(json_object_get(st, "terminal")),
           json_string_value(json_object_get(st, "hub")),
           json_string_value(json_object_get(st, "connectivity")),
           json_is_string(ls) ? json_string_value(ls) : "never",
           (long long)json_integer_value(json_object_get(st, "pending")),
           (long long)json_integer_value(json_object_get(st, "failed")),
           (long long)json_integer_value(json_object_get(st, "conflicts")));
    const char *le = json_string_value(json_object_get(st, "last_error"));
    if (le && le[0])
        printf("last error: %s\n", le);
    json_decref(st);
    return 0;
}

int cmd_queue(int argc, char **argv)
{
    const char *cmd = "queue";
    OPTS({"db", true, NULL}, {"status", true, NULL}, {"limit", true, NULL});
    const char *path = NULL;
    int limit = 0;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path) ||
        int_option(cmd, &args, "limit", 1, 1000000, 1000, &limit))
        return 2;
    const char *status = cli_get(&args, "status");
    if (status && duka_outbox_status_parse(status) < 0)
        return cli_usage_error(cmd, "--status '%s' is not pending, processing, done, failed or "
                               "conflict", status);
    sqlite3 *db = NULL;
    if (open_till(cmd, path, &db))
        return 1;
    duka_err err = {0};
    json_t *q = NULL;
    duka_rc rc = duka_till_queue_json(db, status, limit, &q, &err);
    duka_db_close(db);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(q);
        return 0;
    }
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(q, "items"), i, it) {
        const char *le = json_string_value(json_object_get(it, "last_error"));
        printf("%-10s %-24s attempts %lld  %s  %s\n",
               json_string_value(json_object_get(it, "status")),
               json_string_value(json_object_get(it, "entity_id")),
               (long long)json_integer_value(json_object_get(it, "attempts")),
               json_string_value(json_object_get(it, "command_id")), le ? le : "");
    }
    json_decref(q);
    return 0;
}

int cmd_catalog(int argc, char **argv)
{
    const char *cmd = "catalog";
    OPTS({"db", true, NULL});
    const char *path = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    sqlite3 *db = NULL;
    if (open_till(cmd, path, &db))
        return 1;
    duka_err err = {0};
    json_t *c = NULL;
    duka_rc rc = duka_catalog_list(db, &c, &err);
    duka_db_close(db);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(c);
        return 0;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(c, "products"), i, p) {
        char price[32];
        duka_format_cents((int64_t)json_integer_value(json_object_get(p, "price")), price,
                          sizeof(price));
        printf("%-16s %-32s KES %10s  %s\n", json_string_value(json_object_get(p, "sku")),
               json_string_value(json_object_get(p, "name")), price,
               json_string_value(json_object_get(p, "tax")));
    }
    json_decref(c);
    return 0;
}

int cmd_till_serve(int argc, char **argv)
{
    const char *cmd = "till";
    OPTS({"db", true, NULL}, {"listen", true, NULL}, {"sync-interval", true, NULL},
         {"batch", true, NULL});
    duka_till_server_options o = {0};
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &o.db) || cli_require(cmd, &args, "listen", &o.listen) ||
        int_option(cmd, &args, "sync-interval", 0, 86400, 30, &o.sync_interval_s) ||
        int_option(cmd, &args, "batch", 1, DUKA_SYNC_BATCH_MAX, DUKA_SYNC_BATCH_DEFAULT,
                   &o.batch_size))
        return 2;
    duka_err err = {0};
    if (duka_till_serve(&o, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}
