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

And with eTIMS (a real `duka sim etims`, the hub forwarding to it, the tills' signatures
pulled back): a clean run passes with --etims-state --require-invoiced; then, on copies of
the simulator's state file, the hub's and the tills' databases, each planted fault must be
counted: an invoice missing (uninvoiced, invc_gaps), an invoice accepted twice
(double_invoiced), one invcNo twice (invc_dupes), band totals off (invoice_mismatch), an
invoice of no sale (invoice_unexpected), a hub eTIMS item not done (etims_not_done), a till
signature altered (signature_mismatch) or missing (unsigned). T01 also refunds (all of one
sale, part of another): their credit notes are checked the same way — a credit note missing
(uninvoiced), one naming another invoice than its sale's (invoice_mismatch) — and a refund
the hub holds beyond its sale's line is refund_exceeds. Without --etims-state the report is
the one it always was.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DEFAULT_CASHIER, Suite, _Server, check, check_eq, duka_bin,  # noqa: E402
                     free_port, log, run_json, run_ok, sell, sell_many, setup_business, sync_until_ok,
                     wait_for)

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


def copies(ctx, biz, name, extra=()):
    """Copies of the hub and till databases (and of extra (key, path): the eTIMS simulator's
    state) after a checkpoint, in a fresh folder."""
    d = ctx.path(name)
    os.makedirs(d)
    paths = {}
    for key, src in [("hub", biz.hub_db)] + sorted(biz.tills.items()) + list(extra):
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



TIN = "P051234567X"
ETIMS_KEYS = ("invoices", "till_signed", "uninvoiced", "double_invoiced", "invoice_unexpected",
              "invc_gaps", "invc_dupes", "invoice_mismatch", "etims_not_done",
              "signature_mismatch", "unsigned")


class Sim(_Server):
    health_path = "/_sim/health"
    kind = "sim"

    def __init__(self, ctx, port, state):
        self.state = state
        super().__init__(["sim", "etims", "--listen", "127.0.0.1:%d" % port, "--state", state],
                         port, ctx.tmp)


def count(path, query, *params):
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return c.execute(query, params).fetchone()[0]
    finally:
        c.close()


@suite.test
def checker_sees_every_etims_fault(ctx):
    sim = Sim(ctx, free_port(), ctx.path("etims.db")).start()
    biz = setup_business(ctx.tmp, free_port(), terminals=["T01", "T02"],
                         hub_env={"ETIMS_BASE_URL": "http://127.0.0.1:%d/etims-api" % sim.port,
                                  "ETIMS_TIMEOUT": "2s"})
    run_ok(["business", "set", "--db", biz.hub_db, "--business", biz.business_id,
            "--kra-pin", TIN])
    acked = []
    for t, db in sorted(biz.tills.items()):
        acked += sell_many(db, 6, label=t + ": ")
        if t == "T01":  # a whole sale given back, and part of a line of another
            acked.append(run_json(["refund", "--db", db, acked[1]["receipt_no"], "1", "2",
                                   "--json"]))
            acked.append(run_json(["refund", "--db", db, acked[2]["receipt_no"], "1*1",
                                   "--reason", "03", "--json"]))
        sync_until_ok(db)
    refund = acked[7]["receipt_no"]  # T01's partial refund (of acked[2])
    check_eq(acked[7].get("kind"), "refund", "the refund's reply")
    ack_path = ctx.path("acked.txt")
    with open(ack_path, "w") as f:
        for r in acked:
            f.write("%s %d\n" % (r["receipt_no"], r["total"]))
    wait_for(lambda: count(biz.hub_db, "SELECT count(*) FROM hub_outbox WHERE destination ="
                                       " 'etims' AND status <> 'done'") == 0
             and count(biz.hub_db, "SELECT count(*) FROM hub_outbox") == 14,
             60, "the hub's 12 invoices and 2 credit notes accepted by the simulator")

    def signed():
        for db in biz.tills.values():
            sync_until_ok(db)
        return all(count(db, "SELECT count(*) FROM etims_receipts") == (8 if t == "T01" else 6)
                   for t, db in biz.tills.items())
    wait_for(signed, 60, "every till holding its signatures (T01 8, T02 6)", interval=0.2)
    biz.hub.stop()
    check_eq(sim.stop(), 0, "the simulator exits 0 on SIGTERM")
    tills = [biz.tills[t] for t in sorted(biz.tills)]
    strict = ("--require-drained", "--expect-no-conflicts")
    etims = ("--etims-state", sim.state, "--require-invoiced")

    rep = run_check(biz.hub_db, tills, ack_path, *strict)
    check(rep["ok"], "a clean run must pass: %r" % rep)
    check("invoices" not in rep, "without --etims-state the report is as before: %r" % rep)
    rep = run_check(biz.hub_db, tills, ack_path, *(strict + etims))
    check(rep["ok"], "a clean run with eTIMS must pass: %r" % rep)
    check_eq(rep["invoices"], 14, "invoices and credit notes accepted")
    check_eq(rep["till_signed"], 14, "signatures at the tills")
    check_eq(rep["refund_exceeds"], 0, "refund_exceeds")
    for k in ETIMS_KEYS[2:]:
        check_eq(rep[k], 0, k)

    victim = acked[3]["receipt_no"]   # a T01 sale
    other = acked[10]["receipt_no"]   # a T02 sale
    # The simulator's primary key (tin, bhf_id, invc_no) forbids one number twice; a copy
    # without it can hold what a broken simulator or a real eTIMS mix-up would.
    no_pk = ("sim", "CREATE TABLE inv2 AS SELECT * FROM invoices")
    no_pk2 = ("sim", "DROP TABLE invoices")
    no_pk3 = ("sim", "ALTER TABLE inv2 RENAME TO invoices")
    copy_row = ("INSERT INTO invoices SELECT tin, bhf_id, %s, device_id, %s, rcpt_ty_cd,"
                " org_invc_no, tot_amt, taxbl_a, taxbl_b, taxbl_c, taxbl_d, taxbl_e, tax_a, tax_b,"
                " tax_c, tax_d, tax_e, cur_rcpt_no, tot_rcpt_no, intrl_data, rcpt_sign,"
                " sdc_date_time, received_ms, body FROM invoices WHERE trd_invc_no = ?")
    cases = [
        ("an invoice missing at eTIMS", ["uninvoiced", "invc_gaps", "signature_mismatch"],
         [("sim", "DELETE FROM invoices WHERE trd_invc_no = ?", victim)]),
        ("a sale invoiced twice", ["double_invoiced"],
         [("sim", copy_row % ("(SELECT max(invc_no) + 1 FROM invoices)", "trd_invc_no"),
           victim)]),
        ("one invcNo accepted twice", ["invc_dupes"],
         [no_pk, no_pk2, no_pk3,
          ("sim", copy_row % ("invc_no", "'T09-20991231-00001'"), victim)]),
        ("an invcNo skipped", ["invc_gaps"],
         [("sim", "UPDATE invoices SET invc_no = (SELECT max(invc_no) + 1 FROM invoices)"
                  " WHERE trd_invc_no = ?", victim)]),
        ("band totals off", ["invoice_mismatch"],
         [("sim", "UPDATE invoices SET taxbl_b = taxbl_b + 1, tot_amt = tot_amt + 1"
                  " WHERE trd_invc_no = ?", victim)]),
        ("an invoice of no sale", ["invoice_unexpected"],
         [("sim", copy_row % ("(SELECT max(invc_no) + 1 FROM invoices)",
                              "'T09-20991231-00001'"), victim)]),
        ("a hub eTIMS item not done", ["etims_not_done"],
         [("hub", "UPDATE hub_outbox SET status = 'failed', last_error = 'planted'"
                  " WHERE entity_id = ?", other)]),
        ("a till's signature altered", ["signature_mismatch"],
         [("T02", "UPDATE etims_receipts SET rcpt_sign = 'AAAAAAAAAAAAAAAA'"
                  " WHERE receipt_no = ?", other)]),
        ("a till's signature missing", ["unsigned"],
         [("T01", "DELETE FROM etims_receipts WHERE receipt_no = ?", victim)]),
        ("a credit note missing", ["uninvoiced", "invc_gaps"],
         [("sim", "DELETE FROM invoices WHERE trd_invc_no = ?", refund)]),
        ("a credit note of another invoice", ["invoice_mismatch"],
         [("sim", "UPDATE invoices SET org_invc_no = org_invc_no + 1 WHERE trd_invc_no = ?",
           refund)]),
        ("a refund beyond its sale", ["refund_exceeds"],
         [("hub", "UPDATE sale_lines SET qty_milli = qty_milli + 1000000 WHERE sale_id ="
                  " (SELECT id FROM sales WHERE receipt_no = ?)", refund)]),
    ]
    for i, (what, fields, edits) in enumerate(cases):
        paths = copies(ctx, biz, "etims%02d" % i, extra=[("sim", sim.state)])
        for target, statement, *params in edits:
            c = sqlite3.connect(paths[target])
            try:
                cur = c.execute(statement, params)
                check(cur.rowcount != 0 or statement.startswith(("CREATE", "DROP", "ALTER")),
                      "tampering changed nothing: %s" % statement)
                c.commit()
            finally:
                c.close()
        args = strict + ("--etims-state", paths["sim"], "--require-invoiced")
        rep = run_check(paths["hub"], [paths[t] for t in sorted(biz.tills)], ack_path, *args)
        log("  %-32s ok=%s %s — %s" % (what, rep["ok"], " ".join(
            "%s=%d" % (f, rep[f]) for f in fields), rep["first_problem"]))
        check(not rep["ok"], "%s: the checker did not fail: %r" % (what, rep))
        for f in fields:
            check(rep[f] > 0, "%s: %s must be counted: %r" % (what, f, rep))
        check(rep["first_problem"], "%s: the report names the first problem" % what)
    # Before the end (no --require-invoiced) a sale not yet invoiced is no failure; a sale
    # invoiced twice is.
    paths = copies(ctx, biz, "etims-early", extra=[("sim", sim.state)])
    sql(paths["sim"], "DELETE FROM invoices WHERE trd_invc_no = ?", victim)
    rep = run_check(paths["hub"], [paths[t] for t in sorted(biz.tills)], ack_path,
                    "--etims-state", paths["sim"])
    check_eq(rep["uninvoiced"], 0, "uninvoiced without --require-invoiced")
    check_eq(rep["signature_mismatch"], 1, "T01's signature of the deleted invoice")


if __name__ == "__main__":
    suite.main()
