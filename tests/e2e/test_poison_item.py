#!/usr/bin/env python3
"""One poison item among many: the hub rejects one command permanently (the protocol's
per-item equivalent of a 422) while the rest go through.

30 sales; the payload of ONE outbox row (the 5th) is corrupted in the till database with
sqlite3 (total_cents no longer the sum of the lines), then `duka sync --batch 10`:
- the other 29 are at the hub (including the batches after the poison one: it blocks nothing);
- the poison item is `failed` at once, error_category "validation", its last_error names the
  field (total_cents); status counts it and raises the "items_failed" alert; history shows it;
- `duka queue retry ID` (command id) -> {"retried": 1}: pending again with attempts 0; the next
  sync fails it again, still 29 at the hub; retry by outbox id and `--all-failed` work too;
- retrying an unknown id exits 1 with one stderr line naming it, and changes nothing.
"""

import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, alert_codes, assert_hub_has_exactly, check, check_eq,  # noqa: E402
                     check_history, expect_error, free_port, history, log, queue, run_json,
                     sell_many, setup_business, status, sync)

suite = Suite("poison_item")
SALES = 30
POISON = 4  # index of the corrupted sale


def corrupt_total(db, command_id):
    """Adds one cent to total_cents in the payload of the outbox row of `command_id`."""
    con = sqlite3.connect(db, timeout=30)
    try:
        row = con.execute("SELECT id, payload FROM outbox WHERE command_id = ?",
                          (command_id,)).fetchone()
        check(row is not None, "no outbox row for command %s" % command_id)
        payload = json.loads(row[1])
        check("total_cents" in payload, "outbox payload has no total_cents: %r" % payload)
        payload["total_cents"] += 1
        with con:
            con.execute("UPDATE outbox SET payload = ? WHERE id = ?",
                        (json.dumps(payload, separators=(",", ":")), row[0]))
        return row[0]
    finally:
        con.close()


def item(db, command_id):
    found = [i for i in queue(db) if i.get("command_id") == command_id]
    check_eq(len(found), 1, "queue items with command id %s" % command_id)
    return found[0]


def retry(db, target):
    r = run_json(["queue", "retry", "--db", db, target, "--json"])
    check("retried" in r, "duka queue retry --json lacks retried: %r" % r)
    return r["retried"]


def sync_ok(db, what):
    rc, j, err = sync(db, "--batch", "10")
    check(rc in (0, 1) and j is not None,
          "%s: duka sync exit %s, json %r, stderr %r" % (what, rc, j, err))
    return rc, j


def check_poison_failed(db, cid, what):
    it = item(db, cid)
    check_eq(it.get("status"), "failed", "%s: status of the poison item" % what)
    check_eq(it.get("error_category"), "validation", "%s: error_category of the poison item" % what)
    check("total_cents" in (it.get("last_error") or ""),
          "%s: the poison item's last_error does not name the field total_cents: %r"
          % (what, it.get("last_error")))
    st = status(db)
    check_eq((st.get("failed"), st.get("pending")), (1, 0), "%s: status (failed, pending)" % what)
    check("items_failed" in alert_codes(st), "%s: status alerts lack items_failed: %r"
          % (what, st.get("alerts")))
    check_eq([i.get("command_id") for i in queue(db, "failed")], [cid],
             "%s: queue --status failed" % what)
    return it


@suite.test
def one_rejected_item_fails_the_rest_go_through(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    made = sell_many(db, SALES)
    cid = made[POISON]["command_id"]
    check(isinstance(cid, str) and cid, "duka sell --json lacks command_id: %r" % made[POISON])
    outbox_id = corrupt_total(db, cid)
    good = [s["receipt_no"] for i, s in enumerate(made) if i != POISON]

    rc, j = sync_ok(db, "first sync")
    log("  first sync: exit %s, %s" % (rc, json.dumps(j)))
    check_eq((j.get("pushed"), j.get("failed")), (SALES - 1, 1), "first sync (pushed, failed)")
    assert_hub_has_exactly(biz, good, "the %d good sales: " % (SALES - 1))
    it = check_poison_failed(db, cid, "after the first sync")
    check_eq(it.get("attempts"), 1, "attempts of the poison item (rejected: failed at once)")
    log("  poison item: %s" % json.dumps({k: it.get(k) for k in
                                          ("status", "attempts", "error_category", "last_error")}))
    check_eq(len(queue(db, "done")), SALES - 1, "queue --status done")
    first_sync_pushes = [a for a in history(db) if a.get("direction") == "push"]

    # Retry by command id: pending again, attempts 0; the next sync fails it again.
    check_eq(retry(db, cid), 1, "duka queue retry COMMAND_ID: retried")
    it = item(db, cid)
    check_eq((it.get("status"), it.get("attempts")), ("pending", 0),
             "the poison item after duka queue retry (status, attempts)")
    st = status(db)
    check_eq((st.get("pending"), st.get("failed")), (1, 0), "status (pending, failed) after retry")
    check("items_failed" not in alert_codes(st), "items_failed alert after the retry: %r"
          % st.get("alerts"))
    rc, j = sync_ok(db, "sync after the retry")
    check_eq((j.get("pushed"), j.get("failed")), (0, 1), "sync after the retry (pushed, failed)")
    check_poison_failed(db, cid, "after the retried item was sent again")
    assert_hub_has_exactly(biz, good, "after the retried poison item was sent again: ")

    # Retry by outbox id, then --all-failed.
    check_eq(retry(db, str(outbox_id)), 1, "duka queue retry OUTBOX_ID: retried")
    check_eq(item(db, cid).get("status"), "pending", "the poison item after retry by outbox id")
    sync_ok(db, "sync after the retry by outbox id")
    check_poison_failed(db, cid, "after the retry by outbox id")
    check_eq(retry(db, "--all-failed"), 1, "duka queue retry --all-failed: retried")
    it = item(db, cid)
    check_eq((it.get("status"), it.get("attempts")), ("pending", 0),
             "the poison item after --all-failed (status, attempts)")
    sync_ok(db, "sync after --all-failed")
    check_poison_failed(db, cid, "after --all-failed and a sync")
    assert_hub_has_exactly(biz, good, "after three retries of the poison item: ")

    # Unknown ids (a command id never made, an outbox id past the end): exit 1, one stderr
    # line naming the id, nothing changes.
    before = sorted((i["command_id"], i["status"], i["attempts"]) for i in queue(db))
    for bad in ("01a2ffff-0000-7000-8000-000000000000", "999999"):
        expect_error(["queue", "retry", "--db", db, bad, "--json"], [bad])
    check_eq(sorted((i["command_id"], i["status"], i["attempts"]) for i in queue(db)), before,
             "the outbox after retries of unknown ids")
    assert_hub_has_exactly(biz, good, "at the end: ")

    # duka history of the first sync: 3 pushes of 10, their outcomes add up to 29 ok + 1 failed.
    log("  duka history of the first sync (oldest first): %s"
        % [(a["items"], a["ok"], a["failed"]) for a in reversed(first_sync_pushes)])
    check_eq(len(first_sync_pushes), 3, "push attempts of the first sync (--batch 10)")
    check_history(first_sync_pushes, "duka history of the first sync")
    check_eq(sum(a["items"] for a in first_sync_pushes), SALES, "items sent by the first sync")
    check_eq(sum(a["ok"] for a in first_sync_pushes), SALES - 1,
             "ok over the first sync's pushes in duka history")
    check_eq(sum(a["failed"] for a in first_sync_pushes), 1,
             "failed over the first sync's pushes in duka history")
    check_history(history(db))

if __name__ == "__main__":
    suite.main()
