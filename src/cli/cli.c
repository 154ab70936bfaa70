/* cli.c — option parsing and output for the subcommands (see cli.h). */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *command, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "duka %s: %s (see: duka %s --help)\n", command, msg, command);
    return 2;
}

int cli_fail(const char *command, const duka_err *err)
{
    if (err->rc == DUKA_USAGE)
        return cli_usage_error(command, "%s", err->msg);
    fprintf(stderr, "duka %s: %s\n", command,
            err->msg[0] ? err->msg : duka_rc_message(err->rc));
    return 1;
}

int cli_parse(const char *command, int argc, char **argv, cli_args *args)
{
    args->positional_count = 0;
    args->help = false;
    args->json = false;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && strcmp(a, "-h") == 0) {
            args->help = true;
            continue;
        }
        /* Only "--name" words are options; anything else (even "-1") is an argument. */
        if (only_positional || strncmp(a, "--", 2) != 0) {
            if (args->positional_count == CLI_POSITIONAL_MAX)
                return cli_usage_error(command, "more than %d arguments", CLI_POSITIONAL_MAX);
            args->positional[args->positional_count++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            args->help = true;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            args->json = true;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        cli_option *opt = NULL;
        int index = -1;
        for (int k = 0; k < args->option_count && k < CLI_OPTIONS_MAX; k++)
            if (strlen(args->options[k].name) == nlen &&
                strncmp(args->options[k].name, name, nlen) == 0) {
                opt = &args->options[k];
                index = k;
            }
        if (opt == NULL)
            return cli_usage_error(command, "unknown option '%s'", a);
        bool repeatable = args->repeatable != NULL && strcmp(args->repeatable, opt->name) == 0;
        if (args->given[index] > 0 && !repeatable)
            return cli_usage_error(command, "--%s given twice (once is enough: which one did you "
                                   "mean?)", opt->name);
        if (repeatable && args->repeated_count == CLI_REPEAT_MAX)
            return cli_usage_error(command, "--%s given more than %d times", opt->name,
                                   CLI_REPEAT_MAX);
        args->given[index]++;
        if (!opt->takes_value) {
            if (eq)
                return cli_usage_error(command, "option --%s takes no value", opt->name);
            opt->value = "1";
        } else if (eq) {
            opt->value = eq + 1;
        } else if (i + 1 < argc) {
            opt->value = argv[++i];
        } else {
            return cli_usage_error(command, "option --%s needs a value", opt->name);
        }
        if (repeatable)
            args->repeated[args->repeated_count++] = opt->value;
    }
    return 0;
}

const char *cli_get(const cli_args *args, const char *name)
{
    for (int k = 0; k < args->option_count; k++)
        if (strcmp(args->options[k].name, name) == 0)
            return args->options[k].value;
    return NULL;
}

int cli_require(const char *command, const cli_args *args, const char *name, const char **out)
{
    *out = cli_get(args, name);
    if (*out == NULL || (*out)[0] == '\0')
        return cli_usage_error(command, "--%s is required", name);
    return 0;
}

void cli_print_json(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (text != NULL) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
    fflush(stdout);
    json_decref(obj);
}
