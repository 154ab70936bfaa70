/* cli.c — option parsing and output for the subcommands (see cli.h). */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a command's run puts on stdout in --json mode: one line at its end (cli_finish). A
 * command's result object is held until then, so that a failure recorded after it (duka sync
 * prints its counts, then fails) goes into that same object rather than a second line. */
static struct {
    bool json;          /* --json was given */
    json_t *result;     /* the object the command printed, owned here until cli_finish */
    bool failed;        /* an error was reported (the first one is kept) */
    duka_rc rc;
    char message[DUKA_ERR_MSG_MAX + 160];
} output;

void cli_set_json(bool on)
{
    output.json = on;
}

/* Prints "duka CMD: text" (or "duka: text" without a command) as the one stderr line and keeps
 * the first error for --json. */
static void report(const char *command, duka_rc rc, const char *text)
{
    if (command != NULL && command[0] != '\0')
        fprintf(stderr, "duka %s: %s\n", command, text);
    else
        fprintf(stderr, "duka: %s\n", text);
    if (output.failed)
        return;
    output.failed = true;
    output.rc = rc == DUKA_OK ? DUKA_INTERNAL : rc;
    snprintf(output.message, sizeof(output.message), "%s", text);
}

int cli_error(const char *command, duka_rc rc, const char *fmt, ...)
{
    char msg[DUKA_ERR_MSG_MAX + 160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    report(command, rc, msg);
    return rc == DUKA_USAGE ? 2 : 1;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    char msg[512], line[DUKA_ERR_MSG_MAX + 160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "%s (see: duka %s --help)", msg, command);
    report(command, DUKA_USAGE, line);
    return 2;
}

int cli_fail(const char *command, const duka_err *err)
{
    if (err->rc == DUKA_USAGE)
        return cli_usage_error(command, "%s", err->msg);
    report(command, err->rc, err->msg[0] ? err->msg : duka_rc_message(err->rc));
    return 1;
}

static void print_line(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (text != NULL) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
    fflush(stdout);
}

int cli_finish(int rc)
{
    if (!output.json) {
        json_decref(output.result);
        output.result = NULL;
        return rc;
    }
    json_t *obj = output.result;
    output.result = NULL;
    if (rc != 0 && !output.failed) {
        /* Every failure path reports its line; this is the net under one that did not. */
        output.failed = true;
        output.rc = rc == 2 ? DUKA_USAGE : DUKA_INTERNAL;
        snprintf(output.message, sizeof(output.message), "failed with exit code %d", rc);
    }
    if (output.failed) {
        if (obj == NULL)
            obj = json_object();
        json_t *e = json_pack("{s:s, s:s}", "code", duka_rc_code(output.rc), "message",
                              output.message);
        if (obj != NULL && e != NULL)
            json_object_set_new(obj, "error", e);
        else
            json_decref(e);
    }
    if (obj != NULL)
        print_line(obj);
    json_decref(obj);
    return rc;
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
            output.json = true;
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
    if (!output.json) {
        print_line(obj);
        json_decref(obj);
        return;
    }
    json_decref(output.result); /* a command prints one object; the last one wins */
    output.result = obj;
}
