/* cmd_sim.c — `duka sim SERVICE`: simulators of the services duka talks to, for tests, demos
 * and the chaos runs: eTIMS (src/sim/etims_sim.h) and M-Pesa Daraja (src/sim/mpesa_sim.h);
 * the card acquirer comes in a later issue. Bad usage exits 2 with one line; a bad value exits 1 with one line naming the
 * flag; the simulator then serves until SIGINT/SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/random.h"
#include "sim/etims_sim.h"
#include "sim/mpesa_sim.h"

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

/* --seed: a whole number >= 0; absent leaves *out. -1 after printing the one line. */
static int seed_option(const char *cmd, const cli_args *args, uint64_t *out)
{
    const char *seed = cli_get(args, "seed");
    if (seed == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long s = strtoull(seed, &end, 10);
    if (seed[0] < '0' || seed[0] > '9' || *end != '\0' || errno != 0) {
        cli_error(cmd, DUKA_INPUT, "--seed '%.40s' is not a whole number >= 0", seed);
        return -1;
    }
    *out = (uint64_t)s;
    return 0;
}

/* --outage-every with --outage-for (both or neither; for < every). 2 bad usage, 1 a bad
 * value (the line printed), 0 fine. */
static int outage_options(const char *cmd, const cli_args *args, long max_s, long *every,
                          long *for_s)
{
    if ((cli_get(args, "outage-every") == NULL) != (cli_get(args, "outage-for") == NULL))
        return cli_usage_error(cmd, "--outage-every and --outage-for go together");
    if (long_option(cmd, args, "outage-every", 2, max_s, every) ||
        long_option(cmd, args, "outage-for", 1, max_s, for_s))
        return 1;
    if (*every > 0 && *for_s >= *every)
        return cli_error(cmd, DUKA_INPUT, "--outage-for %ld must be less than --outage-every %ld",
                         *for_s, *every);
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
    int orc = outage_options(cmd, &args, DUKA_ETIMS_SIM_OUTAGE_S_MAX, &o.outage_every_s,
                             &o.outage_for_s);
    if (orc != 0)
        return orc;
    if (long_option(cmd, &args, "latency-ms", 0, DUKA_ETIMS_SIM_LATENCY_MS_MAX, &o.latency_ms) ||
        share_option(cmd, &args, "fail-rate", &o.fail_rate) ||
        share_option(cmd, &args, "timeout-after-accept", &o.timeout_after_accept) ||
        long_option(cmd, &args, "sequence-window", 0, DUKA_ETIMS_SIM_WINDOW_MAX,
                    &o.sequence_window))
        return 1;
    if (seed_option(cmd, &args, &o.seed))
        return 1;
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

/* A secret option (--consumer-key …): 1..DUKA_MPESA_SIM_SECRET_MAX bytes, no ':' in a key. */
static int secret_option(const char *cmd, const cli_args *args, const char *name,
                         const char **out)
{
    const char *v = cli_get(args, name);
    if (v == NULL)
        return 0;
    if (v[0] == '\0' || strlen(v) > DUKA_MPESA_SIM_SECRET_MAX ||
        (strcmp(name, "consumer-key") == 0 && strchr(v, ':') != NULL)) {
        cli_error(cmd, DUKA_INPUT, "--%s must be 1 to %d bytes%s", name,
                  DUKA_MPESA_SIM_SECRET_MAX,
                  strcmp(name, "consumer-key") == 0 ? " without ':'" : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int sim_mpesa(int argc, char **argv)
{
    const char *cmd = "sim mpesa";
    OPTS({"listen", true, NULL}, {"state", true, NULL}, {"latency-ms", true, NULL},
         {"fail-rate", true, NULL}, {"timeout-after-accept", true, NULL},
         {"outage-every", true, NULL}, {"outage-for", true, NULL},
         {"callback-delay-ms", true, NULL}, {"callback-twice", true, NULL},
         {"callback-never", true, NULL}, {"spike-arrest-per-s", true, NULL},
         {"answer", true, NULL}, {"answer-after-ms", true, NULL},
         {"prompt-expiry-ms", true, NULL}, {"token-life-s", true, NULL},
         {"consumer-key", true, NULL}, {"consumer-secret", true, NULL},
         {"passkey", true, NULL}, {"msisdn", true, NULL}, {"seed", true, NULL});
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help("sim");
    duka_mpesa_sim_options o;
    duka_mpesa_sim_defaults(&o);
    if (cli_require(cmd, &args, "listen", &o.listen) ||
        cli_require(cmd, &args, "state", &o.state_path))
        return 2;
    if (args.positional_count > 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", args.positional[0]);
    int orc = outage_options(cmd, &args, DUKA_MPESA_SIM_OUTAGE_S_MAX, &o.outage_every_s,
                             &o.outage_for_s);
    if (orc != 0)
        return orc;
    if (long_option(cmd, &args, "latency-ms", 0, DUKA_MPESA_SIM_LATENCY_MS_MAX, &o.latency_ms) ||
        share_option(cmd, &args, "fail-rate", &o.fail_rate) ||
        share_option(cmd, &args, "timeout-after-accept", &o.timeout_after_accept) ||
        long_option(cmd, &args, "callback-delay-ms", 0, DUKA_MPESA_SIM_ANSWER_MS_MAX,
                    &o.callback_delay_ms) ||
        share_option(cmd, &args, "callback-twice", &o.callback_twice) ||
        share_option(cmd, &args, "callback-never", &o.callback_never) ||
        long_option(cmd, &args, "spike-arrest-per-s", 0, DUKA_MPESA_SIM_RATE_MAX,
                    &o.spike_arrest_per_s) ||
        long_option(cmd, &args, "answer-after-ms", 0, DUKA_MPESA_SIM_ANSWER_MS_MAX,
                    &o.answer_after_ms) ||
        long_option(cmd, &args, "prompt-expiry-ms", 1, DUKA_MPESA_SIM_ANSWER_MS_MAX,
                    &o.prompt_expiry_ms) ||
        long_option(cmd, &args, "token-life-s", 1, DUKA_MPESA_SIM_TOKEN_LIFE_S_MAX,
                    &o.token_life_s) ||
        secret_option(cmd, &args, "consumer-key", &o.consumer_key) ||
        secret_option(cmd, &args, "consumer-secret", &o.consumer_secret) ||
        secret_option(cmd, &args, "passkey", &o.passkey))
        return 1;
    /* Without --seed, a new seed each start: receipt numbers and ids of a fresh state file
     * then differ from the last one's, as a hub that outlived it expects of Safaricom. */
    duka_random_buf(&o.seed, sizeof(o.seed));
    if (seed_option(cmd, &args, &o.seed))
        return 1;
    const char *answer = cli_get(&args, "answer"), *msisdn = cli_get(&args, "msisdn");
    if (answer != NULL && !duka_mpesa_answer_parse(answer, &o.answer))
        return cli_error(cmd, DUKA_INPUT,
                         "--answer '%.40s' is not one of pay, cancel, wrong-pin, insufficient, "
                         "unreachable, ignore",
                         answer);
    if (msisdn != NULL && !duka_mpesa_msisdn_parse(msisdn, &o.msisdn))
        return cli_error(cmd, DUKA_INPUT, "--msisdn '%.40s' is not one of plain, masked, sha256",
                         msisdn);
    duka_err err = {0};
    if (duka_mpesa_sim_serve(&o, &err) != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

int cmd_sim(int argc, char **argv)
{
    static const char *const later[][2] = {{"card", "issue 14"}};
    if (argc == 0 || argv[0][0] == '-') {
        if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))
            return cli_help("sim");
        return cli_error("sim", DUKA_USAGE, "expected one of: etims, mpesa (see: duka help sim)");
    }
    if (strcmp(argv[0], "etims") == 0)
        return sim_etims(argc - 1, argv + 1);
    if (strcmp(argv[0], "mpesa") == 0)
        return sim_mpesa(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++)
        if (strcmp(argv[0], later[i][0]) == 0)
        {
            char name[16];
            snprintf(name, sizeof(name), "sim %s", later[i][0]);
            return cli_error(name, DUKA_NOTFOUND, "not built yet (%s)", later[i][1]);
        }
    return cli_error("sim", DUKA_USAGE,
                     "unknown subcommand '%s'; expected one of: etims, mpesa (see: duka help sim)",
                     argv[0]);
}
