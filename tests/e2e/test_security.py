#!/usr/bin/env python3
"""Security of the hub: revoked tokens, the audit log, business isolation.

- A revoked till gets 401 ("token rejected"), keeps its queue exactly as it was (no attempt
  used up), and after a new token for the same terminal (duka device add on a revoked
  terminal) and duka till init --token, everything arrives once.
- The hub's audit log records authentication failures, revocations and refused commands.
- A token of one business reads and writes nothing of another: pull shows only its own
  catalog, a push lands only in its own business.
"""

import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, check_eq, free_port, http_json, queue, run_json,  # noqa: E402
                     run_ok, sell, setup_business, sync, write_csv)

suite = Suite("security")


def audit(biz):
    return run_json(["hub", "audit", "--db", biz.hub_db, "--business", biz.business_id,
                     "--json"])["events"]


@suite.test
def revoked_till_keeps_its_queue_and_resumes_with_a_new_token(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    printed = [sell(db, "SUGAR1KG")["receipt_no"] for _ in range(3)]
    before = [(i["command_id"], i["status"], i["attempts"]) for i in queue(db)]
    run_ok(["device", "revoke", "--db", biz.hub_db, "--business", biz.business_id,
            "--terminal", "T01"])
    for _ in range(3):
        rc, j, err = sync(db)
        check_eq(rc, 1, "sync with a revoked token: exit code")
        check("token rejected" in err, "sync with a revoked token: stderr %r" % err)
    after = [(i["command_id"], i["status"], i["attempts"]) for i in queue(db)]
    check_eq(after, before, "the queue after three refused syncs (ids, status, attempts)")
    check_eq(biz.hub_sales(), 0, "hub sales while revoked")
    events = [e["event"] for e in audit(biz)]
    check("device_revoked" in events, "audit lacks device_revoked: %r" % events)
    everything = run_json(["hub", "audit", "--db", biz.hub_db, "--json"])["events"]
    check(sum(1 for e in everything if e["event"] == "auth_failed") >= 3,
          "audit lacks the three auth failures: %r" % everything[:6])

    token = run_json(["device", "add", "--db", biz.hub_db, "--business", biz.business_id,
                      "--terminal", "T01", "--json"])["token"]
    check_eq(token.split(".")[1], biz.tokens["T01"].split(".")[1],
             "the new token names the same device")
    run_ok(["till", "init", "--db", db, "--hub", biz.hub_url, "--terminal", "T01",
            "--token", token])
    rc, j, err = sync(db)
    check_eq(rc, 0, "sync with the new token (stderr %s)" % err.strip())
    r = biz.report()
    check_eq(sorted(r["receipts"]), sorted(printed), "hub receipts after the new token")


@suite.test
def refused_commands_are_audited(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    sell(db, "RICE")
    with sqlite3.connect(db) as c:
        (cid, payload), = c.execute("SELECT command_id, payload FROM outbox").fetchall()
        p = json.loads(payload)
        p["total_cents"] += 1
        c.execute("UPDATE outbox SET payload = ? WHERE command_id = ?", (json.dumps(p), cid))
    rc, j, err = sync(db)
    check_eq(rc, 0, "sync (stderr %s)" % err.strip())
    check_eq(j.get("failed"), 1, "sync failed count")
    events = audit(biz)
    hits = [e for e in events if e["event"] == "invalid_sale" and cid in e["detail"]]
    check(hits, "audit lacks the refused command %s: %r" % (cid, events))


@suite.test
def a_token_of_one_business_sees_and_writes_nothing_of_another(ctx):
    a = setup_business(ctx.tmp, free_port())
    b_id = run_json(["hub", "init", "--db", a.hub_db, "--business", "Other shop",
                     "--json"])["business_id"]
    csv = write_csv(ctx.path("other.csv"), [("OTHERSKU", "Other thing", "9.00", "B", 5, "X")])
    run_ok(["product", "import", "--db", a.hub_db, "--business", b_id, csv])
    b_token = run_json(["device", "add", "--db", a.hub_db, "--business", b_id,
                        "--terminal", "T01", "--json"])["token"]
    status, body = http_json("GET", a.hub.port, "/v1/pull?cursor=0",
                             headers={"Authorization": "Bearer " + b_token})
    check_eq(status, 200, "pull with the other business's token")
    skus = sorted(c["sku"] for c in body["changes"])
    check_eq(skus, ["OTHERSKU"], "what the other business's token pulls")
    # Its till sells and syncs: the sale lands in its business, none in the first one's.
    other_db = ctx.path("other-till.db")
    run_ok(["till", "init", "--db", other_db, "--hub", a.hub_url, "--terminal", "T01",
            "--token", b_token])
    sell(other_db, "OTHERSKU")
    rc, _, err = sync(other_db)
    check_eq(rc, 0, "the other till's sync (stderr %s)" % err.strip())
    check_eq(a.hub_sales(), 0, "sales in the first business")
    other = run_json(["hub", "report", "--db", a.hub_db, "--business", b_id, "--json"])
    check_eq(other["sales"], 1, "sales in the other business")
    # whoami with the other token names the other business.
    status, who = http_json("GET", a.hub.port, "/v1/whoami",
                            headers={"Authorization": "Bearer " + b_token})
    check_eq((status, who.get("business_id")), (200, b_id), "whoami with the other token")


if __name__ == "__main__":
    suite.main()
