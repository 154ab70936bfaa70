#!/usr/bin/env python3
"""Two hubs over one PostgreSQL forwarding one business's invoices to eTIMS (issue 12;
outbox/hub_outbox.h: the lease taken in the database, claims that skip rows another hub is
claiming, the no-gap number handed out in the enqueueing transaction).

Two `duka hub` processes serve one schema, both with ETIMS_BASE_URL pointing at one
`duka sim etims` that answers every request 100 ms late, so both forwarders have invoices in
flight at the same time. 200 sales are pushed through both hubs at once (two pushers, one per
hub, batches of 10). Then:

- the simulator accepted each invoice exactly once: saves == accepted == 200, no 994
  (duplicates_refused 0), invcNo 1..200 without a gap, one invoice per receipt;
- both hubs sent some (the attempt log's owners), every item is done with one attempt;
- the signatures come back through either hub: a pull with invoice_cursor=0 lists the 200
  receipts with the simulator's rcptSign, whichever hub sent them.

Run under tests/pg/run_with_pg.sh (DUKA_E2E_HUB_DB=pg; CTest does both).
"""

import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
# Only PostgreSQL has two hubs on one store: say so when the caller did not.
os.environ.setdefault("DUKA_E2E_HUB_DB", "pg")
from harness import (ETIMS_TIN, Hub, Sim, Suite, batch_command, check, check_eq,  # noqa: E402
                     etims_env, free_port, http_json, log, pg_env, pg_mode, psql, push,
                     setup_business, url_in_schema, wait_for)

suite = Suite("pg_etims_two_hubs")

SALES = 200
BATCH = 10


def super_query(schema, sql):
    """sql as the cluster's superuser (row security does not apply to it) in the schema."""
    return psql(url_in_schema(pg_env("DUKA_PG_SUPER_URL"), schema), sql).strip()


def schema_of(url):
    return url.rsplit("search_path%3D", 1)[1]


def pull_invoices(port, token):
    """Every signed invoice of the till through the hub on port (invoice pages to the end)."""
    cursor, out = 0, []
    while True:
        status, body = http_json("GET", port, "/v1/pull?cursor=0&limit=1&invoice_cursor=%d"
                                 % cursor, headers={"Authorization": "Bearer " + token})
        check_eq(status, 200, "pull from port %d" % port)
        inv = body["invoices"]
        out += inv["list"]
        check(inv["cursor"] >= cursor, "the invoice cursor went back")
        cursor = inv["cursor"]
        if not inv["more"]:
            return out, body.get("services")


@suite.test
def two_hubs_forward_each_invoice_once(ctx):
    check(pg_mode(), "run with DUKA_E2E_HUB_DB=pg (tests/pg/run_with_pg.sh)")
    sim = Sim(ctx, extra=["--latency-ms", "100"]).start()
    env = etims_env(sim)
    biz = setup_business(ctx.tmp, free_port(), hub_env=env, kra_pin=ETIMS_TIN)
    hub_b = Hub(biz.hub_db, free_port(), logdir=ctx.tmp, env=env).start()
    hubs = [biz.hub, hub_b]
    token = biz.tokens["T01"]
    created_ms = int(time.time() * 1000)
    cmds = [batch_command(i + 1, created_ms) for i in range(SALES)]
    receipts = sorted(c["payload"]["receipt_no"] for c in cmds)
    errors = []

    def pusher(k):
        try:
            mine = cmds[k * SALES // 2:(k + 1) * SALES // 2]
            for i in range(0, len(mine), BATCH):
                status, reply = push(hubs[k].port, token, mine[i:i + BATCH])
                check(status == 200 and all(r["status"] == "applied" for r in reply["results"]),
                      "push to hub %d: %s %r" % (k, status, reply))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=pusher, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    log("  %d sales pushed through two hubs in %.1f s" % (SALES, time.monotonic() - t0))
    wait_for(lambda: len(sim.invoices()["invoices"]) >= SALES, 60,
             "%d invoices at the simulator" % SALES, interval=0.1)
    log("  all %d at the simulator %.1f s after the first push" % (SALES, time.monotonic() - t0))
    schema = schema_of(biz.hub_db)
    wait_for(lambda: super_query(schema, "SELECT count(*) FROM hub_outbox WHERE status <> "
                                         "'done'") == "0", 30, "every item done at the hub")
    inv = sim.invoices()
    got = inv["invoices"]
    trd = [i["trdInvcNo"] for i in got]
    check_eq(len(set(trd)), len(trd), "receipts accepted more than once")
    check_eq(sorted(trd), receipts, "the receipts the simulator accepted")
    check_eq(sorted(i["invcNo"] for i in got), list(range(1, SALES + 1)), "invcNo 1..%d" % SALES)
    check_eq(inv["gaps"], [], "gaps")
    check_eq(inv["duplicates_refused"], 0, "duplicates_refused")
    check_eq((inv["stats"]["saves"], inv["stats"]["accepted"]), (SALES, SALES),
             "saves, accepted (refused: %r)" % inv["stats"].get("refused_by_code"))

    owners = super_query(schema, "SELECT owner, count(*) FROM hub_outbox_attempts GROUP BY owner "
                                 "ORDER BY owner")
    log("  attempts by hub instance:\n" + "\n".join("    " + l for l in owners.splitlines()))
    check_eq(len(owners.splitlines()), 2, "hub instances that sent invoices")
    # Both had invoices in flight at the same time (an attempt of one within one of the other).
    spans = {}
    for line in super_query(schema, "SELECT owner, finished_ms - duration_ms, finished_ms FROM "
                                    "hub_outbox_attempts").splitlines():
        owner, start, end = line.split("|")
        spans.setdefault(owner, []).append((int(start), int(end)))
    a, b = spans.values()
    overlaps = sum(1 for s0, e0 in a for s1, e1 in b if s0 < e1 and s1 < e0)
    log("  pairs of attempts of the two hubs in flight at once: %d" % overlaps)
    check(overlaps > 0, "the two hubs never had invoices in flight at the same time")
    check_eq(super_query(schema, "SELECT count(*), count(DISTINCT item_id) FROM "
                                 "hub_outbox_attempts"), "%d|%d" % (SALES, SALES),
             "attempts, items attempted (one attempt each)")
    check_eq(super_query(schema, "SELECT count(*), min(seq_no), max(seq_no), "
                                 "count(DISTINCT seq_no) FROM hub_outbox"),
             "%d|1|%d|%d" % (SALES, SALES, SALES), "the hub's invoice numbers")
    by_receipt = {i["trdInvcNo"]: i for i in got}
    for h in hubs:
        pulled, services = pull_invoices(h.port, token)
        check_eq(sorted(p["receipt_no"] for p in pulled), receipts,
                 "signed invoices pulled through the hub on port %d" % h.port)
        for p in pulled:
            want = by_receipt[p["receipt_no"]]
            check(p["rcpt_sign"] == want["rcptSign"] and p["invc_no"] == want["invcNo"],
                  "pulled %r, the simulator has %r" % (p, want))
        check_eq((services["etims"]["state"], services["etims"]["pending"]), ("online", 0),
                 "services.etims through the hub on port %d" % h.port)
    for h in hubs:
        text = h.log_tail(10 ** 7)
        check("leases ran out" not in text and "recording" not in text,
              "hub on port %d:\n%s" % (h.port, text[-2000:]))


if __name__ == "__main__":
    suite.main()
