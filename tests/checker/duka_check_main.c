/*
 * duka-check — the shared checker as a command, for harnesses in other languages (the chaos
 * harness in tests/chaos). See checker.h for what it checks.
 *
 *   duka-check [--hub HUB.db] [--business ID] [--till T.db]... [--acked FILE]
 *              [--require-drained] [--expect-no-conflicts]
 *              [--etims-state SIM.db [--require-invoiced]]
 *              [--mpesa-state SIM.db [--require-mpesa-decided]] [--json]
 *
 * --etims-state: the eTIMS simulator's state file (`duka sim etims --state`), needs --hub:
 * the invoices it accepted are judged against the hub's sales and the tills' signatures;
 * --require-invoiced: every sale must be invoiced and signed by now (the run has drained).
 * --mpesa-state: the M-Pesa simulator's state file (`duka sim mpesa --state`): the tills'
 * typed codes verified only against its payments, each once; --require-mpesa-decided: none
 * may still be pending verification.
 *
 * Exit 0 when every check passes, 1 when one fails (or a database cannot be read: one line
 * on stderr), 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"

#define TILLS_MAX 256

static int usage(const char *msg)
{
    fprintf(stderr, "duka-check: %s\n"
                    "usage: duka-check [--hub HUB.db] [--business ID] [--till T.db]... "
                    "[--acked FILE] [--require-drained] [--expect-no-conflicts]\n"
                    "                  [--etims-state SIM.db [--require-invoiced]]\n"
                    "                  [--mpesa-state SIM.db [--require-mpesa-decided]] [--json]\n",
            msg);
    return 2;
}

int main(int argc, char **argv)
{
    const char *tills[TILLS_MAX];
    duka_check_input in = {.till_dbs = tills};
    const char *acked_path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--require-drained") == 0) {
            in.require_drained = true;
        } else if (strcmp(a, "--expect-no-conflicts") == 0) {
            in.expect_no_conflicts = true;
        } else if (strcmp(a, "--require-invoiced") == 0) {
            in.require_invoiced = true;
        } else if (strcmp(a, "--require-mpesa-decided") == 0) {
            in.require_mpesa_decided = true;
        } else if (strcmp(a, "--mpesa-state") == 0) {
            if (val == NULL)
                return usage("an option needs a value");
            in.mpesa_state = val;
            i++;
        } else if (strcmp(a, "--etims-state") == 0) {
            if (val == NULL)
                return usage("an option needs a value");
            in.etims_state = val;
            i++;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--hub") == 0 || strcmp(a, "--business") == 0 ||
                   strcmp(a, "--till") == 0 || strcmp(a, "--acked") == 0) {
            if (val == NULL)
                return usage("an option needs a value");
            i++;
            if (a[2] == 'h')
                in.hub_db = val;
            else if (a[2] == 'b')
                in.business_id = val;
            else if (a[2] == 'a')
                acked_path = val;
            else if (in.till_count == TILLS_MAX)
                return usage("too many --till (at most 256)");
            else
                tills[in.till_count++] = val;
        } else {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown argument '%s'", a);
            return usage(msg);
        }
    }
    if (in.hub_db == NULL && in.till_count == 0)
        return usage("give --hub and/or --till");
    if (in.etims_state != NULL && in.hub_db == NULL)
        return usage("--etims-state needs --hub");
    if (in.require_invoiced && in.etims_state == NULL)
        return usage("--require-invoiced needs --etims-state");
    if (in.require_mpesa_decided && in.mpesa_state == NULL)
        return usage("--require-mpesa-decided needs --mpesa-state");
    duka_err err = {0};
    duka_check_ack *acks = NULL;
    if (acked_path != NULL &&
        duka_check_read_acks(acked_path, &acks, &in.acked_count, &err) != DUKA_OK) {
        fprintf(stderr, "duka-check: %s\n", err.msg);
        return 1;
    }
    in.acked = acks;
    duka_check_report rep;
    if (duka_check_run(&in, &rep, &err) != DUKA_OK) {
        free(acks);
        fprintf(stderr, "duka-check: %s\n", err.msg);
        return 1;
    }
    free(acks);
    if (json) {
        json_t *o = duka_check_report_json(&rep);
        char *text = json_dumps(o, JSON_COMPACT);
        puts(text);
        free(text);
        json_decref(o);
    } else {
        duka_check_print(stdout, &rep);
    }
    return rep.ok ? 0 : 1;
}
