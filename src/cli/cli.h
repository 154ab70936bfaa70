/*
 * cli.h — shared plumbing of the `duka` subcommands: option parsing, the one-line error
 * contract (exit 1 + one stderr line; exit 2 on bad usage), and --json output.
 */
#ifndef DUKA_CLI_H
#define DUKA_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

/* An option a command accepts: "--name VALUE" (takes_value) or a flag "--name". */
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
} cli_args;

/* Parses argv (after the command words). Unknown options and missing values are usage
 * errors: returns 2 after printing one line. Returns 0 on success. */
int cli_parse(const char *command, int argc, char **argv, cli_args *args);

/* The value of an option, or NULL. */
const char *cli_get(const cli_args *args, const char *name);

/* Prints "duka CMD: message" and returns 2 (bad usage). */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints err's sentence as the one stderr line; returns 2 for DUKA_USAGE, else 1. */
int cli_fail(const char *command, const duka_err *err);

/* Requires option name; prints a usage error when missing. */
int cli_require(const char *command, const cli_args *args, const char *name, const char **out);

/* Prints obj as one JSON object line on stdout and releases it. */
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
int cmd_product_list(int argc, char **argv);
int cmd_stock(int argc, char **argv);
int cmd_till_serve(int argc, char **argv);
int cmd_till_init(int argc, char **argv);
int cmd_sell(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_catalog(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_queue_retry(int argc, char **argv);

#endif
