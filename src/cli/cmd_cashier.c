/* cmd_cashier.c — `duka cashier add|list|set`: a business's cashiers on the hub database
 * (hub_cashiers.h). A PIN is taken from --pin, or with --pin - from stdin's first line so it
 * need not appear in ps; it is hashed at once and never printed, logged or stored plain.
 * Missing options are usage errors (exit 2); a bad value is one line naming the option (exit
 * 1), and nothing is written. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/limits.h"
#include "hub/hub_cashiers.h"
#include "hub/hub_store.h"
#include "protocol/sale.h"

/* A PIN buffer: longer than any PIN, so a long line is seen as too long, not cut. */
#define PIN_INPUT_MAX 64

/* The PIN of --pin: as given, or stdin's first line for "-". Returns 0, or the exit code
 * after printing the one line. */
static int pin_arg(const char *cmd, const char *value, char pin[PIN_INPUT_MAX + 1])
{
    if (strcmp(value, "-") != 0) {
        if (strlen(value) > PIN_INPUT_MAX)
            return cli_error(cmd, DUKA_INPUT, "--pin: %d to %d digits", DUKA_PIN_LEN_MIN,
                             DUKA_PIN_LEN_MAX);
        snprintf(pin, PIN_INPUT_MAX + 1, "%s", value);
        return 0;
    }
    char line[PIN_INPUT_MAX + 2];
    if (fgets(line, sizeof(line), stdin) == NULL)
        return cli_error(cmd, DUKA_INPUT, "--pin -: nothing on stdin (give the PIN on its first "
                         "line)");
    line[strcspn(line, "\r\n")] = '\0';
    snprintf(pin, PIN_INPUT_MAX + 1, "%s", line);
    sodium_memzero(line, sizeof(line));
    return 0;
}

static json_t *cashier_json(const duka_hub_cashier *c)
{
    return json_pack("{s:s, s:s, s:s, s:b}", "cashier_id", c->id, "name", c->name, "role",
                     c->role, "active", c->active);
}

int cmd_cashier_add(int argc, char **argv)
{
    const char *cmd = "cashier add";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"name", true, NULL},
         {"role", true, NULL}, {"pin", true, NULL});
    const char *db = NULL, *biz = NULL, *name = NULL, *role = NULL, *pin_value = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz) ||
        cli_require(cmd, &args, "name", &name) || cli_require(cmd, &args, "role", &role) ||
        cli_require(cmd, &args, "pin", &pin_value))
        return 2;
    if (args.positional_count != 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    char pin[PIN_INPUT_MAX + 1];
    int rc = pin_arg(cmd, pin_value, pin);
    if (rc != 0)
        return rc;
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store)) {
        sodium_memzero(pin, sizeof(pin));
        return 1;
    }
    duka_err err = {0};
    duka_hub_cashier c;
    duka_rc r = duka_hub_cashier_add(store, biz, name, role, pin, duka_clock_now_ms(NULL), &c,
                                     &err);
    sodium_memzero(pin, sizeof(pin));
    duka_hub_store_close(store);
    if (r != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        json_t *o = cashier_json(&c);
        json_object_del(o, "active");
        cli_print_json(o);
    } else {
        printf("added %s %s (cashier id %s); tills get it at their next sync\n", c.role, c.name,
               c.id);
    }
    return 0;
}

int cmd_cashier_list(int argc, char **argv)
{
    const char *cmd = "cashier list";
    OPTS({"db", true, NULL}, {"business", true, NULL});
    const char *db = NULL, *biz = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz))
        return 2;
    if (args.positional_count != 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store))
        return 1;
    duka_err err = {0};
    json_t *list = NULL;
    duka_rc r = duka_hub_cashier_listing(store, biz, &list, &err);
    duka_hub_store_close(store);
    if (r != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json) {
        cli_print_json(list);
        return 0;
    }
    const json_t *all = json_object_get(list, "cashiers");
    if (json_array_size(all) == 0)
        printf("no cashiers (add one: duka cashier add)\n");
    else
        printf("%-*s  %-8s  %-6s  %s\n", DUKA_CASHIER_NAME_MAX / 2, "NAME", "ROLE", "ACTIVE",
               "CASHIER ID");
    size_t i;
    const json_t *c;
    json_array_foreach(all, i, c)
    {
        printf("%-*s  %-8s  %-6s  %s\n", DUKA_CASHIER_NAME_MAX / 2,
               json_string_value(json_object_get(c, "name")),
               json_string_value(json_object_get(c, "role")),
               json_is_true(json_object_get(c, "active")) ? "yes" : "no",
               json_string_value(json_object_get(c, "cashier_id")));
    }
    json_decref(list);
    return 0;
}

int cmd_cashier_set(int argc, char **argv)
{
    const char *cmd = "cashier set";
    OPTS({"db", true, NULL}, {"business", true, NULL}, {"name", true, NULL},
         {"role", true, NULL}, {"pin", true, NULL}, {"active", true, NULL});
    const char *db = NULL, *biz = NULL, *name = NULL;
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    if (cli_require(cmd, &args, "db", &db) || cli_require(cmd, &args, "business", &biz) ||
        cli_require(cmd, &args, "name", &name))
        return 2;
    if (args.positional_count != 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    const char *role = cli_get(&args, "role"), *pin_value = cli_get(&args, "pin");
    const char *active_value = cli_get(&args, "active");
    if (role == NULL && pin_value == NULL && active_value == NULL)
        return cli_usage_error(cmd, "give --pin, --role or --active");
    int active = -1;
    if (active_value != NULL) {
        if (strcmp(active_value, "yes") == 0)
            active = 1;
        else if (strcmp(active_value, "no") == 0)
            active = 0;
        else
            return cli_error(cmd, DUKA_INPUT, "--active: '%.20s' is not yes or no",
                             active_value);
    }
    char pin[PIN_INPUT_MAX + 1] = "";
    if (pin_value != NULL) {
        int rc = pin_arg(cmd, pin_value, pin);
        if (rc != 0)
            return rc;
    }
    duka_hub_store *store = NULL;
    if (cli_hub_open(cmd, db, false, &store)) {
        sodium_memzero(pin, sizeof(pin));
        return 1;
    }
    duka_err err = {0};
    duka_hub_cashier c;
    duka_rc r = duka_hub_cashier_set(store, biz, name, pin_value ? pin : NULL, role, active,
                                     duka_clock_now_ms(NULL), &c, &err);
    sodium_memzero(pin, sizeof(pin));
    duka_hub_store_close(store);
    if (r != DUKA_OK)
        return cli_fail(cmd, &err);
    if (args.json)
        cli_print_json(cashier_json(&c));
    else
        printf("changed %s: %s, %s%s; tills get it at their next sync\n", c.name, c.role,
               c.active ? "active" : "not active", pin_value ? ", new PIN" : "");
    return 0;
}
