/* cmd_till.c — till-side commands: till (serve), till init, sell, sync, status, queue,
 * catalog. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/limits.h"
#include "common/clock.h"
#include "common/money.h"
#include "common/text.h"
#include "config/config.h"
#include "net/http_client.h"
#include "outbox/outbox.h"
#include "protocol/sale.h"
#include "store/db.h"
#include "sync/sync_client.h"
#include "sync/sync_worker.h"
#include "till/catalog.h"
#include "till/checkout.h"
#include "till/till_db.h"
#include "till/refund.h"
#include "till/sale_view.h"
#include "till/till_server.h"
#include "till/till_service.h"
#include "till/till_status.h"
#include "common/uuid.h"

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

/* Loads the settings for the till database at path (--config FILE, DUKA_CONFIG, or duka.conf
 * beside it; then the environment), follows the shop's time zone and applies the outbox
 * policy. Settings that could not be used never stop the command (a typo must never stop a
 * shop selling): they are named in one warning line on stderr, and the defaults are used.
 * Only an unreadable --config FILE fails. */
static int load_config_quietly(const char *cmd, const cli_args *args, const char *path,
                               duka_config *cfg)
{
    duka_err err = {0};
    if (duka_config_load(cfg, path, cli_get(args, "config"), &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    duka_config_apply_timezone(cfg);
    duka_sync_apply_config(cfg);
    return 0;
}

static int load_config(const char *cmd, const cli_args *args, const char *path, duka_config *cfg)
{
    if (load_config_quietly(cmd, args, path, cfg))
        return 1;
    if (cfg->problem_count > 0) {
        char summary[1024];
        duka_config_problems_summary(cfg, summary, sizeof(summary));
        fprintf(stderr, "duka %s: warning: %s (see: duka config)\n", cmd, summary);
    }
    return 0;
}

static duka_alert_settings alert_settings(const duka_config *cfg, char *problems, size_t n)
{
    duka_config_problems_summary(cfg, problems, n);
    duka_alert_settings a = {
        .pending_threshold = duka_config_get(cfg, DUKA_SETTING_QUEUE_ALERT_PENDING),
        .offline_after_ms = duka_config_get(cfg, DUKA_SETTING_ALERT_OFFLINE_AFTER),
        .config_problems = problems,
    };
    return a;
}

static int open_till(const char *cmd, const char *path, sqlite3 **db)
{
    duka_err err = {0};
    if (duka_till_db_open(path, false, db, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

/* Loads the settings for the till database at path, then opens it. Non-zero (after the one
 * error line) when either fails. */
static int open_configured_till(const char *cmd, const cli_args *args, const char *path,
                                duka_config *cfg, sqlite3 **db)
{
    if (load_config(cmd, args, path, cfg) || open_till(cmd, path, db))
        return 1;
    return 0;
}

/* The id of the till database at path: its own (an existing database keeps it for life) or,
 * for a database still to be made, a new one. *exists tells which. */
static duka_rc till_id_for(const char *path, char id[DUKA_UUID_STR_LEN + 1], bool *exists,
                           duka_err *err)
{
    *exists = access(path, F_OK) == 0;
    if (!*exists) {
        duka_uuid_v7(duka_clock_now_ms(NULL), id);
        return DUKA_OK;
    }
    sqlite3 *db = NULL;
    bool found = false;
    duka_rc rc = duka_till_db_open(path, false, &db, err);
    if (rc == DUKA_OK)
        rc = duka_meta_get(db, DUKA_META_TILL_ID, id, DUKA_UUID_STR_LEN + 1, &found, err);
    duka_db_close(db);
    if (rc == DUKA_OK && !found)
        duka_uuid_v7(duka_clock_now_ms(NULL), id);
    return rc;
}

static int64_t catalog_size(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (duka_db_prepare(db, "SELECT count(*) FROM products WHERE deleted = 0", &st, NULL) ==
            DUKA_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int cmd_till_init(int argc, char **argv)
{
    const char *cmd = "till init";
    OPTS({"db", true, NULL}, {"hub", true, NULL}, {"terminal", true, NULL},
         {"token", true, NULL}, {"offline", false, NULL}, {"ca-file", true, NULL},
         {"allow-plain-http", false, NULL}, {"replace", false, NULL});
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
    const char *ca_file = cli_get(&args, "ca-file");
    if (ca_file != NULL && (strlen(ca_file) > DUKA_URL_MAX || access(ca_file, R_OK) != 0))
        return cli_usage_error(cmd, "--ca-file '%s' is not a readable file", ca_file);
    /* A token sent in clear over a network anyone can read is a token given away. */
    if (strncmp(hub, "http://", 7) == 0 && !duka_http_url_is_loopback(hub) &&
        cli_get(&args, "allow-plain-http") == NULL)
        return cli_usage_error(cmd,
                               "refusing plain HTTP to a hub that is not on this machine (%s): "
                               "use https:// (with --ca-file for a self-signed hub) or "
                               "--allow-plain-http on a trusted LAN",
                               hub);
    bool offline = cli_get(&args, "offline") != NULL;
    bool replace = cli_get(&args, "replace") != NULL;
    if (offline && replace)
        return cli_usage_error(cmd, "--replace needs the hub: it cannot go with --offline");
    char hub_url[DUKA_URL_MAX + 1];
    snprintf(hub_url, sizeof(hub_url), "%s", hub);
    size_t n = strlen(hub_url);
    while (n > 0 && hub_url[n - 1] == '/')
        hub_url[--n] = '\0';
    duka_err err = {0};
    char till_id[DUKA_UUID_STR_LEN + 1];
    bool existed = false;
    if (till_id_for(path, till_id, &existed, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    /* Check the hub and token before writing anything. The hub binds the token to this
     * database's id: a token already serving another till database is refused, unless
     * --replace retires that one. */
    duka_hub_whoami who;
    memset(&who, 0, sizeof(who));
    if (!offline &&
        duka_sync_check_hub(hub_url, token, terminal, ca_file, till_id, replace, &who, &err) !=
            DUKA_OK) {
        if (err.rc == DUKA_CONFLICT && !replace) {
            char msg[DUKA_ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", err.msg);
            duka_err_clear(&err);
            duka_err_set(&err, DUKA_CONFLICT, "%s (this till database: %s)", msg, till_id);
        }
        return cli_fail(cmd, &err);
    }
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
         duka_meta_set(db, DUKA_META_TOKEN, token, &err) ||
         duka_meta_set(db, DUKA_META_CA_FILE, ca_file ? ca_file : "", &err) ||
         /* a new database takes the id the hub was shown; an existing one has it already */
         (!existed && duka_meta_set(db, DUKA_META_TILL_ID, till_id, &err)) ||
         (!offline && who.business_name[0] &&
          duka_meta_set(db, DUKA_META_SHOP_NAME, who.business_name, &err)) ||
         (!offline && duka_meta_set(db, DUKA_META_KRA_PIN, who.kra_pin, &err)) ||
         duka_db_commit(db, &err)))
        rc = DUKA_STORE;
    if (rc != DUKA_OK)
        duka_db_rollback(db);
    int64_t pulled = 0;
    if (rc == DUKA_OK && !offline)
        rc = duka_sync_pull(db, &pulled, &err);
    int64_t products = rc == DUKA_OK ? catalog_size(db) : 0;
    duka_db_close(db);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(json_pack("{s:s, s:s, s:I, s:I, s:b, s:s}", "terminal", terminal, "hub",
                                 hub_url, "products", (json_int_t)products, "pulled",
                                 (json_int_t)pulled, "offline", offline, "till_id", till_id));
    else if (offline)
        printf("till %s ready: hub %s, %lld products (offline: run duka sync to pull the "
               "catalog)\n",
               terminal, hub_url, (long long)products);
    else
        printf("till %s ready: hub %s, %lld products in the catalog (%lld changes pulled)%s\n",
               terminal, hub_url, (long long)products, (long long)pulled,
               replace ? "; this database now holds the token" : "");
    return 0;
}

/* The sale bounds from the till's settings. */
static duka_checkout_options checkout_options(const duka_config *cfg)
{
    duka_checkout_options o = {
        .line_max_cents = duka_config_get(cfg, DUKA_SETTING_SALE_LINE_MAX),
        .sale_max_cents = duka_config_get(cfg, DUKA_SETTING_SALE_MAX),
    };
    return o;
}

/* --cashier NAME: an active cashier of this till, with no PIN — whoever runs this holds the
 * database file already (docs/SECURITY.md). *who stays NULL without the option. */
static duka_rc find_cashier(const cli_args *args, sqlite3 *db, duka_cashier *cashier,
                            const duka_cashier **who, duka_err *err)
{
    const char *name = cli_get(args, "cashier");
    if (name == NULL)
        return DUKA_OK;
    duka_rc rc = duka_cashier_find_by_name(db, name, cashier, err);
    if (rc == DUKA_OK)
        *who = cashier;
    return rc;
}

/* After `duka sell` or `duka refund` committed (rc DUKA_OK) or refused: the database closed,
 * then the error, or a `duka till` serving it woken and the receipt printed (--json: the
 * reply). The exit status. */
static int receipt_made(const char *cmd, const char *path, sqlite3 **db, duka_rc rc,
                        duka_err *err, const duka_sale *sale, const duka_checkout_result *res,
                        bool json)
{
    duka_receipt_shop shop;
    memset(&shop, 0, sizeof(shop));
    if (rc == DUKA_OK)
        duka_receipt_shop_load(*db, &shop, NULL); /* the header only: a failure prints none */
    duka_db_close(*db);
    *db = NULL;
    if (rc != DUKA_OK)
        return cli_fail(cmd, err);
    /* After the commit, never before it: a `duka till` serving this database syncs now. */
    duka_till_service_wake(path);
    if (json) {
        cli_print_json(duka_sale_reply_json(sale, res));
        return 0;
    }
    char *text = malloc(DUKA_RECEIPT_TEXT_MAX);
    if (text != NULL) {
        duka_receipt_text(sale, &shop, res, "pending", text, DUKA_RECEIPT_TEXT_MAX);
        fputs(text, stdout);
        free(text);
    }
    return 0;
}

int cmd_sell(int argc, char **argv)
{
    const char *cmd = "sell";
    OPTS({"db", true, NULL}, {"pay", true, NULL}, {"config", true, NULL},
         {"confirm-amount", false, NULL}, {"cashier", true, NULL});
    args.repeatable = "pay";
    const char *path = NULL;
    duka_config cfg;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    if (args.positional_count < 1)
        return cli_usage_error(cmd, "expected at least one SKU[*QTY]");
    if (load_config(cmd, &args, path, &cfg))
        return 1;
    duka_err err = {0};
    duka_sale_input *in = duka_sale_input_new();
    duka_sale *sale = duka_sale_new();
    sqlite3 *db = NULL;
    int status = 1;
    duka_rc rc = in && sale ? DUKA_OK : duka_err_set(&err, DUKA_NOMEM, "out of memory");
    for (int i = 0; rc == DUKA_OK && i < args.positional_count; i++)
        rc = duka_sale_input_add_item(in, args.positional[i], &err);
    for (int i = 0; rc == DUKA_OK && i < args.repeated_count; i++)
        rc = duka_sale_input_add_payment(in, args.repeated[i], &err);
    if (rc == DUKA_OK)
        in->confirm_amount = cli_get(&args, "confirm-amount") != NULL;
    if (rc == DUKA_OK && open_till(cmd, path, &db)) {
        status = 1;
        goto out;
    }
    duka_checkout_result res;
    duka_checkout_options co = checkout_options(&cfg);
    duka_cashier cashier;
    if (rc == DUKA_OK)
        rc = find_cashier(&args, db, &cashier, &co.cashier, &err);
    if (rc == DUKA_OK)
        rc = duka_checkout_sell(db, NULL, in, &co, sale, &res, &err);
    status = receipt_made(cmd, path, &db, rc, &err, sale, &res, args.json);
out:
    duka_db_close(db);
    duka_sale_free(sale);
    duka_sale_input_free(in);
    return status;
}

int cmd_refund(int argc, char **argv)
{
    const char *cmd = "refund";
    OPTS({"db", true, NULL}, {"reason", true, NULL}, {"to", true, NULL}, {"config", true, NULL},
         {"cashier", true, NULL});
    const char *path = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    if (args.positional_count < 2)
        return cli_usage_error(cmd, "expected RECEIPT_NO and at least one LINE[*QTY]");
    duka_config cfg;
    if (load_config(cmd, &args, path, &cfg))
        return 1;
    duka_err err = {0};
    duka_refund_input *in = duka_refund_input_new();
    duka_sale *refund = duka_sale_new();
    sqlite3 *db = NULL;
    int status = 1;
    duka_rc rc = in && refund ? DUKA_OK : duka_err_set(&err, DUKA_NOMEM, "out of memory");
    const char *reason = cli_get(&args, "reason"), *to = cli_get(&args, "to");
    /* The options' own words in the message (--to, --reason), not the API's fields. */
    if (rc == DUKA_OK && strlen(args.positional[0]) > DUKA_RECEIPT_NO_MAX)
        rc = duka_err_set(&err, DUKA_INPUT, "RECEIPT_NO: '%.60s...' is longer than a receipt "
                          "number", args.positional[0]);
    else if (rc == DUKA_OK && reason != NULL && !duka_refund_reason_valid(reason))
        rc = duka_err_set(&err, DUKA_INPUT,
                          "--reason: '%.20s' is not a refund reason: 01 missing quantity, 02 "
                          "missing item, 03 damaged, 04 wasted, 05 raw material shortage, 06 "
                          "refund", reason);
    else if (rc == DUKA_OK && to != NULL && !duka_payment_method_valid(to))
        rc = duka_err_set(&err, DUKA_INPUT, "--to: '%.20s' is not cash, mpesa or card", to);
    if (rc == DUKA_OK) {
        snprintf(in->receipt_no, sizeof(in->receipt_no), "%s", args.positional[0]);
        snprintf(in->reason, sizeof(in->reason), "%s", reason ? reason : "");
        snprintf(in->refund_to, sizeof(in->refund_to), "%s", to ? to : "");
    }
    for (int i = 1; rc == DUKA_OK && i < args.positional_count; i++)
        rc = duka_refund_input_add_line(in, args.positional[i], &err);
    if (rc == DUKA_OK && open_till(cmd, path, &db))
        goto out;
    duka_checkout_result res;
    duka_cashier cashier;
    const duka_cashier *who = NULL;
    if (rc == DUKA_OK)
        rc = find_cashier(&args, db, &cashier, &who, &err);
    if (rc == DUKA_OK)
        rc = duka_refund_commit(db, NULL, in, who, refund, &res, &err);
    status = receipt_made(cmd, path, &db, rc, &err, refund, &res, args.json);
out:
    duka_db_close(db);
    duka_sale_free(refund);
    duka_refund_input_free(in);
    return status;
}

int cmd_receipt(int argc, char **argv)
{
    const char *cmd = "receipt";
    OPTS({"db", true, NULL}, {"config", true, NULL});
    const char *path = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    if (args.positional_count != 1)
        return cli_usage_error(cmd, "expected one RECEIPT_NO (like T01-20261121-00042)");
    duka_config cfg;
    sqlite3 *db = NULL;
    if (open_configured_till(cmd, &args, path, &cfg, &db))
        return 1;
    duka_err err = {0};
    duka_sale *sale = duka_sale_new();
    duka_receipt_shop shop;
    duka_rc rc = sale ? duka_till_sale_load(db, args.positional[0], sale, &err)
                      : duka_err_set(&err, DUKA_NOMEM, "out of memory");
    char sync_state[24] = "unknown";
    duka_etims_receipt etims;
    bool signed_ = false;
    if (rc == DUKA_OK)
        rc = duka_receipt_shop_load(db, &shop, &err);
    if (rc == DUKA_OK)
        rc = duka_till_sale_sync_state(db, args.positional[0], sync_state, sizeof(sync_state),
                                       &err);
    if (rc == DUKA_OK) /* the control unit's signature, when the hub brought it back */
        rc = duka_etims_receipt_load(db, args.positional[0], &etims, &signed_, &err);
    duka_refund_state *refunds = malloc(sizeof(*refunds));
    if (rc == DUKA_OK && refunds == NULL)
        rc = duka_err_set(&err, DUKA_NOMEM, "out of memory");
    if (rc == DUKA_OK && sale->kind == DUKA_KIND_SALE) /* what has been given back of it */
        rc = duka_refund_state_load(db, sale->receipt_no, refunds, &err);
    else if (refunds != NULL)
        memset(refunds, 0, sizeof(*refunds));
    duka_db_close(db);
    if (rc != DUKA_OK) {
        duka_sale_free(sale);
        free(refunds);
        return cli_fail(cmd, &err);
    }
    char *text = malloc(DUKA_RECEIPT_TEXT_MAX);
    if (text != NULL)
        duka_receipt_text_etims(sale, &shop, NULL, sync_state, signed_ ? &etims : NULL, text,
                                DUKA_RECEIPT_TEXT_MAX);
    if (args.json) {
        json_t *o = duka_sale_reply_json(sale, NULL);
        json_object_set_new(o, "etims", duka_etims_receipt_json(signed_ ? &etims : NULL));
        json_object_set_new(o, "sale", duka_sale_to_json(sale));
        json_object_set_new(o, "text", json_string(text ? text : ""));
        json_object_set_new(o, "sync", json_string(sync_state));
        if (sale->kind == DUKA_KIND_SALE) {
            json_t *list = json_array();
            for (int i = 0; i < refunds->refund_count && i < DUKA_REFUNDS_PER_SALE_MAX; i++)
                json_array_append_new(list, json_string(refunds->refunds[i]));
            json_object_set_new(o, "refunds", list);
        }
        cli_print_json(o);
    } else if (text != NULL) {
        fputs(text, stdout);
        for (int i = 0; i < refunds->refund_count && i < DUKA_REFUNDS_PER_SALE_MAX; i++)
            printf("%s %s\n", i == 0 ? "Refunded by:" : "            ", refunds->refunds[i]);
    }
    free(text);
    free(refunds);
    duka_sale_free(sale);
    return 0;
}

static void say_waiting(void *ctx)
{
    (void)ctx;
    fprintf(stderr, "duka sync: another sync of this till is running; waiting for it to finish\n");
}

int cmd_sync(int argc, char **argv)
{
    const char *cmd = "sync";
    OPTS({"db", true, NULL}, {"batch", true, NULL}, {"config", true, NULL});
    const char *path = NULL;
    int batch = 0;
    duka_config cfg;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    if (load_config(cmd, &args, path, &cfg))
        return 1;
    if (int_option(cmd, &args, "batch", 1, DUKA_SYNC_BATCH_MAX,
                   (int)duka_config_get(&cfg, DUKA_SETTING_SYNC_BATCH), &batch))
        return 2;
    sqlite3 *db = NULL;
    if (open_till(cmd, path, &db))
        return 1;
    duka_err err = {0};
    char forced[8];
    duka_sync_options so = {
        .batch_size = batch,
        .pipeline = (int)duka_config_get(&cfg, DUKA_SETTING_SYNC_IN_FLIGHT),
        .on_wait = say_waiting,
    };
    duka_sync_result res;
    memset(&res, 0, sizeof(res));
    res.connectivity = "offline";
    duka_rc rc = duka_meta_get(db, DUKA_META_FORCED_OFFLINE, forced, sizeof(forced), NULL, &err);
    if (rc == DUKA_OK && strcmp(forced, "1") == 0)
        rc = duka_err_set(&err, DUKA_BUSY,
                          "this till is switched offline (duka till --offline); switch it back "
                          "with POST /api/offline {\"offline\": false} or restart duka till");
    if (rc == DUKA_OK)
        rc = duka_sync_run(db, &so, &res, &err);
    duka_db_close(db);
    if (args.json) {
        json_t *o = duka_sync_result_json(&res);
        json_object_set_new(o, "waited_ms", json_integer(res.waited_ms));
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

/* "3 min", "2 h 5 min", "4 d": how long ago, for people. */
static void format_age(long long s, char *buf, size_t n)
{
    if (s < 90)
        snprintf(buf, n, "%lld s", s);
    else if (s < 5400)
        snprintf(buf, n, "%lld min", s / 60);
    else if (s < 2 * 86400)
        snprintf(buf, n, "%lld h %lld min", s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, n, "%lld d", s / 86400);
}

/* An ISO time from the status as local "2026-12-03 14:02:05", or "never". */
/* An epoch-ms time in the shop's zone, or "never" for 0. */
static void local_time_of(int64_t ms, char *buf, size_t n)
{
    if (ms <= 0) {
        snprintf(buf, n, "never");
        return;
    }
    duka_clock_format_local(ms, buf, n);
}

int cmd_status(int argc, char **argv)
{
    const char *cmd = "status";
    OPTS({"db", true, NULL}, {"config", true, NULL});
    const char *path = NULL;
    duka_config cfg;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    /* Quietly: the problems are an alert of the status itself. */
    if (load_config_quietly(cmd, &args, path, &cfg))
        return 1;
    char problems[1024];
    duka_alert_settings as = alert_settings(&cfg, problems, sizeof(problems));
    sqlite3 *db = NULL;
    if (open_till(cmd, path, &db))
        return 1;
    duka_err err = {0};
    duka_till_status *st = malloc(sizeof(*st));
    duka_rc rc = st == NULL ? duka_err_set(&err, DUKA_NOMEM, "out of memory")
                            : duka_till_status_load(db, &as, st, &err);
    duka_db_close(db);
    if (rc != DUKA_OK) {
        free(st);
        return cli_fail(cmd, &err);
    }
    /* The connectivity is what was last recorded: live while a `duka till` serves this
     * database (its worker records every change), old news otherwise — say which. */
    pid_t service = duka_till_service_pid(path);
    if (args.json) {
        json_t *o = duka_till_status_to_json(st);
        free(st);
        if (o == NULL)
            return cli_error(cmd, DUKA_NOMEM, "out of memory building the status");
        json_object_set_new(o, "service", json_string(service > 0 ? "running" : "not_running"));
        json_object_set_new(o, "service_pid", service > 0 ? json_integer(service) : json_null());
        cli_print_json(o);
        return 0;
    }
    char last_sync[40], seen[40], age[32] = "";
    local_time_of(st->last_sync_ms, last_sync, sizeof(last_sync));
    local_time_of(st->connectivity_seen_ms, seen, sizeof(seen));
    if (st->connectivity_seen_ms > 0)
        format_age((long long)((st->now_ms - st->connectivity_seen_ms) / 1000), age, sizeof(age));
    char conn[160];
    if (service > 0)
        snprintf(conn, sizeof(conn), "%s (live: duka till pid %ld serves this till)",
                 st->connectivity, (long)service);
    else if (age[0])
        snprintf(conn, sizeof(conn), "%s as of %s, %s ago (duka till is not running here)",
                 st->connectivity, seen, age);
    else
        snprintf(conn, sizeof(conn), "%s (never observed; duka till is not running here)",
                 st->connectivity);
    printf("terminal %s   hub %s\nconnectivity: %s\nlight: %s (%s)\nlast sync: %s\n"
           "pending: %lld   failed: %lld   conflicts: %lld\n",
           st->terminal, st->hub, conn, st->light, st->light_reason, last_sync,
           (long long)st->pending, (long long)st->failed, (long long)st->conflicts);
    if (st->last_error[0])
        printf("last error: %s\n", st->last_error);
    /* eTIMS: this till's unsigned sales, and the hub's word on the control unit. */
    if (strcmp(st->etims_state, "off") == 0) {
        printf("eTIMS: %lld sales of this till not signed yet; the hub sends no invoices (no "
               "ETIMS_BASE_URL there)\n",
               (long long)st->etims_pending);
    } else if (st->etims_state[0] != '\0') {
        char since[40];
        local_time_of(st->etims_since_ms, since, sizeof(since));
        printf("eTIMS: %lld sales of this till not signed yet; at the hub %s since %s, "
               "%lld invoices wait\n",
               (long long)st->etims_pending, st->etims_state, since,
               (long long)st->etims_hub_pending);
    } else {
        printf("eTIMS: %lld sales of this till not signed yet; no word from the hub yet\n",
               (long long)st->etims_pending);
    }
    printf("M-Pesa: %lld pending verification, %lld flagged\n", (long long)st->mpesa_pending,
           (long long)st->mpesa_flagged);
    for (int i = 0; i < st->alert_count; i++)
        printf("ALERT %s: %s\n", st->alerts[i].code, st->alerts[i].message);
    free(st);
    return 0;
}

#define QUEUE_LIMIT_DEFAULT 100
#define QUEUE_LIMIT_MAX 100000

int cmd_queue(int argc, char **argv)
{
    const char *cmd = "queue";
    OPTS({"db", true, NULL}, {"status", true, NULL}, {"limit", true, NULL},
         {"offset", true, NULL}, {"config", true, NULL});

    const char *path = NULL;
    int limit = 0, offset = 0;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path) ||
        int_option(cmd, &args, "limit", 1, QUEUE_LIMIT_MAX, QUEUE_LIMIT_DEFAULT, &limit) ||
        int_option(cmd, &args, "offset", 0, 2000000000, 0, &offset))
        return 2;
    const char *status = cli_get(&args, "status");
    if (status && duka_outbox_status_parse(status) < 0)
        return cli_usage_error(cmd, "--status '%s' is not pending, processing, done, failed or "
                               "conflict", status);
    duka_config cfg;
    sqlite3 *db = NULL;
    if (open_configured_till(cmd, &args, path, &cfg, &db))
        return 1;
    duka_err err = {0};
    json_t *q = NULL;
    duka_rc rc = duka_till_queue_json(db, status, limit, offset, &q, &err);
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
        printf("%-6lld %-10s %-24s attempts %lld  %s  %s\n",
               (long long)json_integer_value(json_object_get(it, "id")),
               json_string_value(json_object_get(it, "status")),
               json_string_value(json_object_get(it, "entity_id")),
               (long long)json_integer_value(json_object_get(it, "attempts")),
               json_string_value(json_object_get(it, "command_id")), le ? le : "");
    }
    long long total = (long long)json_integer_value(json_object_get(q, "total"));
    size_t shown = json_array_size(json_object_get(q, "items"));
    if (json_is_true(json_object_get(q, "more")))
        printf("(%zu of %lld shown, failed and pending first; next page: --offset %lld)\n", shown,
               total, (long long)offset + (long long)shown);
    else if (total == 0)
        printf("(the queue is empty%s)\n", status ? " for that status" : "");
    json_decref(q);
    return 0;
}

int cmd_catalog(int argc, char **argv)
{
    const char *cmd = "catalog";
    OPTS({"db", true, NULL}, {"config", true, NULL});
    const char *path = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    duka_config cfg;
    sqlite3 *db = NULL;
    if (open_configured_till(cmd, &args, path, &cfg, &db))
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
        /* Columns by display width, not bytes: names are UTF-8 ("Café", "—", emoji). A long
         * name is cut with "…" (--json has it whole); a SKU never is: the cashier types it. */
        const char *sku_text = json_string_value(json_object_get(p, "sku"));
        int sku_columns = duka_text_width(sku_text);
        char sku[4 * DUKA_SKU_MAX + 1], name[4 * 32 + 1];
        duka_text_fit(sku, sizeof(sku), sku_text, sku_columns > 16 ? sku_columns : 16);
        duka_text_fit(name, sizeof(name), json_string_value(json_object_get(p, "name")), 32);
        printf("%s %s KES %10s  %s\n", sku, name, price,
               json_string_value(json_object_get(p, "tax")));
    }
    json_decref(c);
    return 0;
}

int cmd_till_serve(int argc, char **argv)
{
    const char *cmd = "till";
    OPTS({"db", true, NULL}, {"listen", true, NULL}, {"sync-interval", true, NULL},
         {"batch", true, NULL}, {"offline", false, NULL}, {"config", true, NULL});
    duka_till_server_options o = {0};
    duka_config cfg;
    duka_err err = {0};
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &o.db) || cli_require(cmd, &args, "listen", &o.listen))
        return 2;
    if (load_config(cmd, &args, o.db, &cfg))
        return 1;
    /* Flags win over environment and file. --sync-interval is in seconds unless it has a
     * unit (the setting's bare unit is minutes, as in the source documents). */
    const char *interval = cli_get(&args, "sync-interval");
    const char *batch = cli_get(&args, "batch");
    char interval_text[40];
    if (interval != NULL) {
        size_t n = strlen(interval);
        bool bare = n > 0 && strspn(interval, "0123456789") == n;
        snprintf(interval_text, sizeof(interval_text), "%s%s", interval, bare ? "s" : "");
        if (duka_config_set(&cfg, "OFFLINE_QUEUE_PROCESS_INTERVAL", interval_text,
                            DUKA_SOURCE_FLAG, "--sync-interval", &err) != DUKA_OK)
            return cli_fail(cmd, &err);
    }
    if (batch != NULL && duka_config_set(&cfg, "OFFLINE_QUEUE_BATCH_SIZE", batch,
                                         DUKA_SOURCE_FLAG, "--batch", &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    o.config = &cfg;
    o.start_offline = cli_get(&args, "offline") != NULL;
    if (duka_till_serve(&o, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

int cmd_history(int argc, char **argv)
{
    const char *cmd = "history";
    OPTS({"db", true, NULL}, {"limit", true, NULL}, {"config", true, NULL});
    const char *path = NULL;
    int limit = 0;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path) ||
        int_option(cmd, &args, "limit", 1, 100000, 50, &limit))
        return 2;
    duka_config cfg;
    sqlite3 *db = NULL;
    if (open_configured_till(cmd, &args, path, &cfg, &db))
        return 1;
    duka_err err = {0};
    json_t *h = NULL;
    duka_rc rc = duka_till_history_json(db, limit, 0, &h, &err);
    duka_db_close(db);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(h);
        return 0;
    }
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(h, "attempts"), i, a) {
        const char *e = json_string_value(json_object_get(a, "error"));
        long long repeats = (long long)json_integer_value(json_object_get(a, "repeats"));
        char folded[96] = "";
        if (repeats > 1)
            snprintf(folded, sizeof(folded), "(x%lld empty pulls, the last %s) ", repeats,
                     json_string_value(json_object_get(a, "last")));
        printf("%s %-4s items %-4lld ok %-4lld dup %-4lld failed %-3lld conflicts %-3lld HTTP %3lld "
               "%5lld ms %s%s\n",
               json_string_value(json_object_get(a, "started")),
               json_string_value(json_object_get(a, "direction")),
               (long long)json_integer_value(json_object_get(a, "items")),
               (long long)json_integer_value(json_object_get(a, "ok")),
               (long long)json_integer_value(json_object_get(a, "duplicates")),
               (long long)json_integer_value(json_object_get(a, "failed")),
               (long long)json_integer_value(json_object_get(a, "conflicts")),
               (long long)json_integer_value(json_object_get(a, "http_status")),
               (long long)json_integer_value(json_object_get(a, "duration_ms")), folded,
               e ? e : "");
    }
    json_decref(h);
    return 0;
}

/* 604800000 -> "7d", 30000 -> "30s", 1500 -> "1500ms": the largest unit that divides. */
static void format_duration(long long ms, char *buf, size_t n)
{
    static const struct {
        long long ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms >= units[i].ms && ms % units[i].ms == 0) {
            snprintf(buf, n, "%lld%s", ms / units[i].ms, units[i].unit);
            return;
        }
    }
    snprintf(buf, n, "%lldms", ms);
}

int cmd_config(int argc, char **argv)
{
    const char *cmd = "config";
    OPTS({"db", true, NULL}, {"config", true, NULL});
    const char *path = NULL;
    duka_config cfg;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    path = cli_get(&args, "db");
    if (path == NULL && cli_get(&args, "config") == NULL)
        return cli_usage_error(cmd, "--db or --config is required");
    if (load_config_quietly(cmd, &args, path, &cfg))
        return 1;
    json_t *j = duka_config_json(&cfg);
    if (args.json) {
        cli_print_json(j);
    } else {
        const char *file = json_string_value(json_object_get(j, "file"));
        printf("config file: %s\n", file && file[0] ? file : "(none)");
        size_t i;
        const json_t *st;
        json_array_foreach(json_object_get(j, "settings"), i, st) {
            const char *unit = json_string_value(json_object_get(st, "unit"));
            const json_t *v = json_object_get(st, "value");
            char value[64];
            if (strcmp(unit, "ms") == 0)
                format_duration((long long)json_integer_value(v), value, sizeof(value));
            else if (strcmp(unit, "cents") == 0)
                duka_format_cents((int64_t)json_integer_value(v), value, sizeof(value));
            else if (json_is_string(v)) /* text, url, secret ("(set)") */
                snprintf(value, sizeof(value), "%s", json_string_value(v));
            else
                snprintf(value, sizeof(value), "%lld", (long long)json_integer_value(v));
            printf("%-34s %-14s %-12s %s\n", json_string_value(json_object_get(st, "name")), value,
                   json_string_value(json_object_get(st, "source")),
                   json_string_value(json_object_get(st, "help")));
        }
        const json_t *pr;
        json_array_foreach(json_object_get(j, "problems"), i, pr)
            printf("IGNORED: %s\n", json_string_value(pr));
        json_decref(j);
    }
    /* Settings that could not be used are the one thing `duka config` must not keep quiet
     * about: exit 1 and say so, after showing what is in force. */
    if (cfg.problem_count > 0) {
        char summary[1024];
        duka_config_problems_summary(&cfg, summary, sizeof(summary));
        return cli_error(cmd, DUKA_INPUT, "%s", summary);
    }
    return 0;
}

int cmd_queue_retry(int argc, char **argv)
{
    const char *cmd = "queue retry";
    OPTS({"db", true, NULL}, {"all-failed", false, NULL}, {"config", true, NULL});
    const char *path = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &path))
        return 2;
    bool all = cli_get(&args, "all-failed") != NULL;
    if (all == (args.positional_count == 1) || args.positional_count > 1)
        return cli_usage_error(cmd, "give one item ID (outbox id or command id) or --all-failed");
    duka_config cfg;
    sqlite3 *db = NULL;
    if (open_configured_till(cmd, &args, path, &cfg, &db))
        return 1;
    duka_err err = {0};
    int n = 0;
    const char *id = all ? NULL : args.positional[0];
    duka_rc rc = duka_outbox_retry(db, id, duka_clock_now_ms(NULL), &n, &err);
    duka_db_close(db);
    if (rc == DUKA_OK && n > 0)
        duka_till_service_wake(path); /* a serving `duka till` sends them now */
    if (rc == DUKA_OK && !all && n == 0)
        rc = duka_err_set(&err, DUKA_NOTFOUND,
                          "no failed item '%s' in the queue (see: duka queue --status failed)", id);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(json_pack("{s:i}", "retried", n));
    else
        printf("%d item%s back in the queue; the next sync sends %s\n", n, n == 1 ? "" : "s",
               n == 1 ? "it" : "them");
    return 0;
}
