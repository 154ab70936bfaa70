/*
 * cli.h — shared plumbing of the `duka` subcommands: option parsing, the one-line error
 * contract (exit 1 + one stderr line; exit 2 on bad usage), and --json output.
 */
#ifndef DUKA_CLI_H
#define DUKA_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

#define CLI_REPEAT_MAX 8   /* values of the repeatable option (--pay: DUKA_SALE_PAYMENTS_MAX) */
#define CLI_OPTIONS_MAX 24 /* options one command accepts */

/* An option a command accepts: "--name VALUE" (takes_value) or a flag "--name". An option
 * given twice is a usage error — a second --db or --pay must never silently replace the
 * first — except the command's one repeatable option (cli_args.repeatable), whose values are
 * all kept, in order. */
typedef struct cli_option {
    const char *name;
    bool takes_value;
    const char *value; /* filled by cli_parse: the value, or "1" for a present flag */
} cli_option;

#define CLI_POSITIONAL_MAX 512

typedef struct cli_args {
    cli_option *options;
    int option_count;
    const char *positional[CLI_POSITIONAL_MAX];
    int positional_count;
    bool help;
    bool json;
    const char *repeatable;                /* the option that may be given several times */
    const char *repeated[CLI_REPEAT_MAX];  /* its values, in order */
    int repeated_count;
    int given[CLI_OPTIONS_MAX];            /* times each option was given */
} cli_args;

/* Parses argv (after the command words). Unknown options and missing values are usage
 * errors: returns 2 after printing one line. Returns 0 on success. */
int cli_parse(const char *command, int argc, char **argv, cli_args *args);

/* A command's options and its cli_args, in one line: OPTS({"db", true, NULL}, …). */
#define OPTS(...)                                                                          \
    cli_option opts[] = {__VA_ARGS__};                                                     \
    cli_args args = {.options = opts, .option_count = (int)(sizeof(opts) / sizeof(opts[0]))}

/* The value of an option, or NULL. */
const char *cli_get(const cli_args *args, const char *name);

/* Failures. Each prints the one stderr line, "duka CMD: message" ("duka: message" for a NULL
 * or empty command), and keeps the first failure of the run for --json: cli_finish then
 * prints {"error":{"code","message"}} as the one stdout line, code duka_rc_code() of its rc
 * (usage, not_found, invalid_input, …) and message the stderr line without "duka CMD: ". */

/* "duka CMD: message (see: duka CMD --help)"; returns 2 (bad usage). */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* err's sentence; returns 2 for DUKA_USAGE (as cli_usage_error), else 1. */
int cli_fail(const char *command, const duka_err *err);

/* A failure of code rc with a formatted sentence; returns 2 for DUKA_USAGE, else 1. */
int cli_error(const char *command, duka_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --json mode for this run (main sets it when the arguments hold --json before any "--";
 * cli_parse when it sees --json). */
void cli_set_json(bool on);

/* Ends a command's run (main calls it with the command's exit code, which it returns): in
 * --json mode prints the one stdout line — the command's object (cli_print_json), with an
 * "error" member {"code","message"} when it failed, or {"error":{…}} alone. A failure no
 * cli_* function reported still gets an object (code usage for exit 2, else internal). */
int cli_finish(int rc);

/* Requires option name; prints a usage error when missing. */
int cli_require(const char *command, const cli_args *args, const char *name, const char **out);

/* The command's JSON result; takes obj. In --json mode it is printed by cli_finish, as the
 * one stdout line, after the command returns (with "error" set if it failed); otherwise at
 * once. */
void cli_print_json(json_t *obj);

/* Prints the help text of a command (see main.c) and returns 0. */
int cli_help(const char *command);

/* The command implementations. argv holds what follows the command words. */
int cmd_hub_serve(int argc, char **argv);
int cmd_hub_init(int argc, char **argv);
int cmd_hub_report(int argc, char **argv);
int cmd_device_add(int argc, char **argv);
int cmd_device_revoke(int argc, char **argv);
int cmd_hub_audit(int argc, char **argv);
int cmd_product_import(int argc, char **argv);
int cmd_product_archive(int argc, char **argv);
int cmd_business_list(int argc, char **argv);
int cmd_business_set(int argc, char **argv);
int cmd_device_list(int argc, char **argv);
/* Opens the hub store at db (cmd_hub.c); on failure prints cmd's one-line error and returns 1
 * (the exit code), else 0. Shared by the hub's commands and `duka cashier`. */
struct duka_hub_store;
int cli_hub_open(const char *cmd, const char *db, bool create, struct duka_hub_store **store);

int cmd_hub_outbox(int argc, char **argv);
int cmd_hub_outbox_retry(int argc, char **argv);
int cmd_cashier_add(int argc, char **argv);
int cmd_cashier_list(int argc, char **argv);
int cmd_cashier_set(int argc, char **argv);
int cmd_product_list(int argc, char **argv);
int cmd_stock(int argc, char **argv);
int cmd_till_serve(int argc, char **argv);
int cmd_till_init(int argc, char **argv);
int cmd_sell(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_catalog(int argc, char **argv);
int cmd_receipt(int argc, char **argv);
int cmd_refund(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_sim(int argc, char **argv); /* duka sim etims (cmd_sim.c) */
int cmd_history(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_queue_retry(int argc, char **argv);

#endif
