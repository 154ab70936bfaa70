/*
 * cmd_hub_outbox.c — `duka hub outbox`: what the hub still has to send to the outside world
 * (eTIMS invoices now), and `duka hub outbox retry`: failed items back in the queue by hand.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "config/config.h"
#include "hub/hub_store.h"
#include "outbox/hub_forwarder.h"
#include "outbox/hub_outbox.h"

#define LIST_DEFAULT 50
#define LIST_MAX 1000

static bool parse_count(const char *text, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (text == NULL || text[0] == '\0' || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int cmd_hub_outbox(int argc, char **argv)
{
    const char *cmd = "hub outbox";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"status", true, NULL},
         {"limit", true, NULL});
    const char *db = NULL, *biz = NULL, *status = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected '%s' (retry is: duka hub outbox retry …)",
                               args.positional[0]);
    status = cli_get(&args, "status");
    long long limit = LIST_DEFAULT;
    if (cli_get(&args, "limit") && !parse_count(cli_get(&args, "limit"), 1, LIST_MAX, &limit))
        return cli_usage_error(cmd, "--limit '%s' is not 1..%d", cli_get(&args, "limit"),
                               LIST_MAX);
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    json_t *list = NULL;
    duka_hub_outbox_counts k;
    duka_service_health h;
    bool found = false;
    duka_rc rc = duka_hub_business_check(store, biz, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_outbox_list(store, biz, status, (int)limit, &list, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_outbox_count(store, biz, DUKA_DEST_ETIMS, &k, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_health_get(store, DUKA_DEST_ETIMS, &h, &found, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    int64_t now = duka_clock_now_ms(NULL);
    const char *state = duka_forwarder_reported_state(&h, found, now);
    /* ETIMS_MAX_UNSENT as the hub has it (duka.conf beside DB, $DUKA_CONFIG, the
     * environment): the hub logs an ALERT past it; this says so too. */
    duka_config cfg;
    if (duka_config_load(&cfg, duka_hub_store_is_postgres(db) ? NULL : db, NULL, &err) !=
        DUKA_OK)
        duka_config_defaults(&cfg);
    int64_t max_unsent = duka_config_get(&cfg, DUKA_SETTING_ETIMS_MAX_UNSENT);
    bool overdue = k.oldest_unsent_ms > 0 && now - k.oldest_unsent_ms > max_unsent;
    if (args.json) {
        json_object_set_new(
            list, "etims",
            json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "state", state,
                      "since_ms", (json_int_t)(found ? h.since_ms : 0), "detail",
                      found ? h.detail : "", "pending", (json_int_t)k.pending, "processing",
                      (json_int_t)k.processing, "awaiting", (json_int_t)k.awaiting, "failed",
                      (json_int_t)k.failed, "done", (json_int_t)k.done, "oldest_unsent_ms",
                      (json_int_t)k.oldest_unsent_ms, "max_unsent_ms", (json_int_t)max_unsent,
                      "overdue", overdue));
        cli_print_json(list);
        return 0;
    }
    printf("eTIMS: %s   pending %lld   sending %lld   failed %lld   done %lld\n", state,
           (long long)k.pending, (long long)k.processing, (long long)k.failed,
           (long long)k.done);
    if (found && h.detail[0])
        printf("last said: %s\n", h.detail);
    if (k.oldest_unsent_ms > 0)
        printf("oldest unsent: %lld min old\n", (long long)((now - k.oldest_unsent_ms) / 60000));
    if (overdue)
        printf("ALERT: an invoice has waited longer than ETIMS_MAX_UNSENT (%lld min): KRA "
               "expects it sooner; see the items below\n",
               (long long)(max_unsent / 60000));
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        const char *err_text = json_string_value(json_object_get(it, "last_error"));
        printf("%6lld  %-10s %-20s invcNo %-6lld %-10s attempts %lld/%lld%s%s\n",
               (long long)json_integer_value(json_object_get(it, "id")),
               json_string_value(json_object_get(it, "destination")),
               json_string_value(json_object_get(it, "entity_id")),
               (long long)json_integer_value(json_object_get(it, "seq_no")),
               json_string_value(json_object_get(it, "status")),
               (long long)json_integer_value(json_object_get(it, "attempts")),
               (long long)json_integer_value(json_object_get(it, "max_attempts")),
               err_text ? "  " : "", err_text ? err_text : "");
    }
    json_decref(list);
    return 0;
}

int cmd_hub_outbox_retry(int argc, char **argv)
{
    const char *cmd = "hub outbox retry";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"id", true, NULL}, {"all", false, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected '%s'", args.positional[0]);
    bool all = cli_get(&args, "all") != NULL;
    long long id = 0;
    if (all == (cli_get(&args, "id") != NULL))
        return cli_usage_error(cmd, "give --id N (one failed item) or --all (every one)");
    if (!all && !parse_count(cli_get(&args, "id"), 1, INT64_MAX, &id))
        return cli_usage_error(cmd, "--id '%s' is not an item id (duka hub outbox lists them)",
                               cli_get(&args, "id"));
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    int retried = 0;
    duka_rc rc = duka_hub_business_check(store, biz, &err);
    if (rc == DUKA_OK)
        rc = duka_hub_outbox_retry(store, biz, id, duka_clock_now_ms(NULL), &retried, &err);
    duka_hub_store_close(store);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    if (!all && retried == 0)
        return cli_error(cmd, DUKA_NOTFOUND, "no failed item %lld in business %s", id, biz);
    if (args.json) {
        json_t *o = json_pack("{s:i}", "retried", retried);
        cli_print_json(o);
        return 0;
    }
    printf("%d item%s back in the queue\n", retried, retried == 1 ? "" : "s");
    return 0;
}
