#!/usr/bin/env python3
"""The shared checker (tests/checker, `duka-check`) must see every kind of failure it claims
to: a checker that cannot fail would make every harness that relies on it worthless.

A clean run (two tills, sales synced) must pass. Then, on copies of the databases, one fault
at a time is planted and duka-check must fail with that fault's count:
  lost        a hub sale deleted; a sale acknowledged that no till or hub has
  duplicated  the hub's sale carries another command id than the till's
  unexpected  a sale at the hub no till committed
  mismatched  a line changed at the hub; an acknowledged total that differs
  receipt dup one receipt number acknowledged twice
  receipt gap a till sale (and its hub copy) removed in the middle of the day
  orphan      a till sale whose outbox command is gone, not at the hub
  stock       a stock-ledger row removed at the hub
  queue       an outbox item still pending when drain is required
  conflicts   a conflict row when none are expected
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DEFAULT_CASHIER, Suite, check, check_eq, duka_bin, free_port, log,  # noqa: E402
                     sell, sell_many,
                     setup_business, sync_until_ok)

suite = Suite("checker")


def checker_bin():
    return os.path.join(os.path.dirname(duka_bin()), "duka-check")


def run_check(hub, tills, acked, *extra):
    args = [checker_bin(), "--hub", hub, "--acked", acked, "--json"] + list(extra)
    for t in tills:
        args += ["--till", t]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    check(p.returncode in (0, 1), "duka-check exit %d: %s" % (p.returncode, p.stderr))
    rep = json.loads(p.stdout)
    check_eq(p.returncode == 0, rep["ok"], "duka-check exit code agrees with ok")
    return rep


def copies(ctx, biz, name):
    """Copies of the hub and till databases (after a checkpoint) in a fresh folder."""
    d = ctx.path(name)
    os.makedirs(d)
    paths = {}
    for key, src in [("hub", biz.hub_db)] + sorted(biz.tills.items()):
        dst = os.path.join(d, os.path.basename(src))
        with sqlite3.connect(src) as c:
            c.execute("PRAGMA wal_checkpoint(FULL)")
        shutil.copy(src, dst)
        paths[key] = dst
    return paths


def sql(path, statement, *params):
    c = sqlite3.connect(path)
    try:
        cur = c.execute(statement, params)
        check(cur.rowcount != 0, "tampering changed nothing: %s" % statement)
        c.commit()
    finally:
        c.close()


@suite.test
def checker_sees_every_fault(ctx):
    biz = setup_business(ctx.tmp, free_port(), terminals=["T01", "T02"])
    acked = []
    for t, db in sorted(biz.tills.items()):
        acked += sell_many(db, 11, label=t + ": ")
        acked.append(sell(db, "SUGAR1KG", cashier=DEFAULT_CASHIER))
        sync_until_ok(db)
    ack_path = ctx.path("acked.txt")
    with open(ack_path, "w") as f:
        for r in acked:
            f.write("%s %d\n" % (r["receipt_no"], r["total"]))
    biz.hub.stop()
    tills = [biz.tills[t] for t in sorted(biz.tills)]
    strict = ("--require-drained", "--expect-no-conflicts")

    rep = run_check(biz.hub_db, tills, ack_path, *strict)
    check(rep["ok"], "a clean run must pass: %r" % rep)
    check_eq(rep["hub_sales"], 24, "hub sales")
    check_eq(rep["acked"], 24, "acknowledged")

    victim = acked[5]["receipt_no"]          # a T01 sale in the middle of its day
    first_t02 = acked[12]["receipt_no"]
    cases = [
        ("lost (hub sale deleted)", "lost",
         [("hub", "DELETE FROM sale_lines WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?)", victim),
          ("hub", "DELETE FROM payments WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?)", victim),
          ("hub", "DELETE FROM sales WHERE receipt_no = ?", victim)], None),
        ("lost (acknowledged, nowhere)", "lost", [], "T01-20991231-00001 100"),
        ("duplicated (another command id)", "duplicated",
         [("hub", "UPDATE sales SET command_id = '00000000-0000-7000-8000-000000000000' WHERE receipt_no = ?", victim)], None),
        ("unexpected (hub sale no till made)", "unexpected",
         [("hub", "INSERT INTO sales(business_id, device_id, command_id, receipt_no, terminal, receipt_day,"
                  " receipt_seq, created_ms, received_ms, total_cents, tax_cents)"
                  " SELECT business_id, device_id, 'x-' || command_id, 'T09-20991231-00001', 'T09', 20991231, 1,"
                  " created_ms, received_ms, total_cents, tax_cents FROM sales WHERE receipt_no = ?", victim)], None),
        ("mismatched (line changed at hub)", "mismatched",
         [("hub", "UPDATE sale_lines SET line_total_cents = line_total_cents + 1"
                  " WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?) AND line_no = 1", victim)], None),
        ("mismatched (payment changed at hub)", "mismatched",
         [("hub", "UPDATE payments SET method = CASE method WHEN 'cash' THEN 'card' ELSE 'cash' END"
                  " WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?)", victim)], None),
        ("mismatched (cashier lost at hub)", "mismatched",
         [("hub", "UPDATE sales SET cashier_id = '', cashier_name = '' WHERE receipt_no = ?",
           acked[11]["receipt_no"])], None),
        ("mismatched (cashier changed at hub)", "mismatched",
         [("hub", "UPDATE sales SET cashier_name = 'Someone Else' WHERE receipt_no = ?", victim)],
         None),
        ("mismatched (acknowledged total differs)", "mismatched", [], ("replace", victim)),
        ("receipt acknowledged twice", "receipt_dupes", [], "%s %d" % (victim, acked[5]["total"])),
        ("receipt gap (till and hub lost one)", "receipt_gaps",
         [("T01", "DELETE FROM sale_lines WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?)", victim),
          ("T01", "DELETE FROM payments WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?)", victim),
          ("T01", "DELETE FROM sales WHERE receipt_no = ?", victim)], None),
        ("orphan (no outbox command, not at hub)", "orphan_sales",
         [("T02", "DELETE FROM outbox WHERE command_id = (SELECT command_id FROM sales WHERE receipt_no = ?)", first_t02),
          ("hub", "DELETE FROM sale_lines WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?)", first_t02),
          ("hub", "DELETE FROM payments WHERE sale_id = (SELECT id FROM sales WHERE receipt_no = ?)", first_t02),
          ("hub", "DELETE FROM sales WHERE receipt_no = ?", first_t02)], None),
        # A hub that wrote a sale's stock delta twice (a ledger row besides its line).
        ("stock moved twice for a sale", "stock_mismatch",
         [("hub", "INSERT INTO stock_ledger(business_id, sku, delta_milli, reason, ref, created_ms)"
                  " SELECT s.business_id, l.sku, -l.qty_milli, 'sale', s.receipt_no, s.received_ms"
                  " FROM sale_lines l JOIN sales s ON s.id = l.sale_id WHERE s.receipt_no = ?"
                  " AND l.line_no = 1", victim)], None),
        ("queue not empty", "queue_not_empty",
         [("T02", "UPDATE outbox SET status = 'pending' WHERE id = (SELECT max(id) FROM outbox)")], None),
        ("conflict logged", "conflicts",
         [("hub", "INSERT INTO conflicts(business_id, device_id, kind, entity_id, command_id, payload,"
                  " detail, created_ms) SELECT business_id, device_id, 'receipt', receipt_no, command_id,"
                  " '{}', 'planted', 0 FROM sales WHERE receipt_no = ?", victim)], None),
    ]
    for i, (what, field, edits, extra_ack) in enumerate(cases):
        paths = copies(ctx, biz, "case%02d" % i)
        for target, statement, *params in edits:
            sql(paths["hub"] if target == "hub" else paths[target], statement, *params)
        case_ack = ack_path
        if extra_ack:
            case_ack = ctx.path("acked-%02d.txt" % i)
            with open(ack_path) as f:
                lines = f.read().splitlines()
            if isinstance(extra_ack, tuple):  # the receipt's acknowledged total, off by one
                lines = ["%s %d" % (l.split()[0], int(l.split()[1]) + 1)
                         if l.split()[0] == extra_ack[1] else l for l in lines]
            else:
                lines.append(extra_ack)
            with open(case_ack, "w") as f:
                f.write("\n".join(lines) + "\n")
        rep = run_check(paths["hub"], [paths[t] for t in sorted(biz.tills)], case_ack, *strict)
        log("  %-40s ok=%s %s=%d — %s" % (what, rep["ok"], field, rep[field], rep["first_problem"]))
        check(not rep["ok"], "%s: the checker did not fail: %r" % (what, rep))
        check(rep[field] > 0, "%s: %s must be counted: %r" % (what, field, rep))
        check(rep["first_problem"], "%s: the report names the first problem" % what)


if __name__ == "__main__":
    suite.main()
