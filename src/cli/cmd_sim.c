/* cmd_sim.c — `duka sim SERVICE`: simulators of the services duka talks to, for tests, demos
 * and the chaos runs. Only eTIMS exists yet (src/sim/etims_sim.h); M-Pesa and card come in
 * later issues. Bad usage exits 2 with one line; a bad value exits 1 with one line naming the
 * flag; the simulator then serves until SIGINT/SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sim/etims_sim.h"

/* A whole-number option in [lo, hi]; absent leaves *out. -1 after printing the one line. */
static int long_option(const char *cmd, const cli_args *args, const char *name, long lo,
                       long hi, long *out)
{
    const char *v = cli_get(args, name);
    if (v == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || n < lo || n > hi) {
        cli_error(cmd, DUKA_INPUT, "--%s '%.40s' is not a whole number %ld..%ld", name, v, lo,
                  hi);
        return -1;
    }
    *out = n;
    return 0;
}

/* A share option (0..1); absent leaves *out. -1 after printing the one line. */
static int share_option(const char *cmd, const cli_args *args, const char *name, double *out)
{
    const char *v = cli_get(args, name);
    if (v == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(d) || d < 0 || d > 1) {
        cli_error(cmd, DUKA_INPUT, "--%s '%.40s' is not a share 0..1 (0.1 = one in ten)", name,
                  v);
        return -1;
    }
    *out = d;
    return 0;
}

static int sim_etims(int argc, char **argv)
{
    const char *cmd = "sim etims";
    OPTS({"listen", true, NULL}, {"state", true, NULL}, {"latency-ms", true, NULL},
         {"fail-rate", true, NULL}, {"timeout-after-accept", true, NULL},
         {"outage-every", true, NULL}, {"outage-for", true, NULL},
         {"sequence-window", true, NULL}, {"seed", true, NULL}, {"taxpayer-name", true, NULL},
         {"single-credit-note", false, NULL});
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help("sim");
    duka_etims_sim_options o = {.seed = 1};
    if (cli_require(cmd, &args, "listen", &o.listen) ||
        cli_require(cmd, &args, "state", &o.state_path))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    if ((cli_get(&args, "outage-every") == NULL) != (cli_get(&args, "outage-for") == NULL))
        return cli_usage_error(cmd, "--outage-every and --outage-for go together");
    if (long_option(cmd, &args, "latency-ms", 0, DUKA_ETIMS_SIM_LATENCY_MS_MAX, &o.latency_ms) ||
        share_option(cmd, &args, "fail-rate", &o.fail_rate) ||
        share_option(cmd, &args, "timeout-after-accept", &o.timeout_after_accept) ||
        long_option(cmd, &args, "outage-every", 2, DUKA_ETIMS_SIM_OUTAGE_S_MAX,
                    &o.outage_every_s) ||
        long_option(cmd, &args, "outage-for", 1, DUKA_ETIMS_SIM_OUTAGE_S_MAX, &o.outage_for_s) ||
        long_option(cmd, &args, "sequence-window", 0, DUKA_ETIMS_SIM_WINDOW_MAX,
                    &o.sequence_window))
        return 1;
    if (o.outage_every_s > 0 && o.outage_for_s >= o.outage_every_s)
        return cli_error(cmd, DUKA_INPUT, "--outage-for %ld must be less than --outage-every %ld",
                         o.outage_for_s, o.outage_every_s);
    const char *seed = cli_get(&args, "seed");
    if (seed != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long s = strtoull(seed, &end, 10);
        if (seed[0] < '0' || seed[0] > '9' || *end != '\0' || errno != 0)
            return cli_error(cmd, DUKA_INPUT, "--seed '%.40s' is not a whole number >= 0", seed);
        o.seed = (uint64_t)s;
    }
    o.taxpayer_name = cli_get(&args, "taxpayer-name");
    if (o.taxpayer_name != NULL &&
        (o.taxpayer_name[0] == '\0' || strlen(o.taxpayer_name) > DUKA_ETIMS_SIM_NAME_MAX))
        return cli_error(cmd, DUKA_INPUT, "--taxpayer-name must be 1 to %d bytes",
                         DUKA_ETIMS_SIM_NAME_MAX);
    o.single_credit_note = cli_get(&args, "single-credit-note") != NULL;
    duka_err err = {0};
    if (duka_etims_sim_serve(&o, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

int cmd_sim(int argc, char **argv)
{
    static const char *const later[][2] = {{"mpesa", "issue 13"}, {"card", "a later issue"}};
    if (argc == 0 || argv[0][0] == '-') {
        if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))
            return cli_help("sim");
        return cli_error("sim", DUKA_USAGE, "expected one of: etims (see: duka help sim)");
    }
    if (strcmp(argv[0], "etims") == 0)
        return sim_etims(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++)
        if (strcmp(argv[0], later[i][0]) == 0)
        {
            char name[16];
            snprintf(name, sizeof(name), "sim %s", later[i][0]);
            return cli_error(name, DUKA_NOTFOUND, "not built yet (%s)", later[i][1]);
        }
    return cli_error("sim", DUKA_USAGE,
                     "unknown subcommand '%s'; expected one of: etims (see: duka help sim)",
                     argv[0]);
}
