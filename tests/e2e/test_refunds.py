#!/usr/bin/env python3
"""Refunds end to end (issue 12; till/refund.h, hub_push.c, the eTIMS credit note).

A refund gives back (part of) a sale of the same till, offline, with its own receipt number
(the till's next), never more than sold; the hub applies it once, checks it within the sale
again, moves the stock back, reports it apart from sales, and sends eTIMS a credit note
(rcptTyCd R, rfdRsnCd, orgInvcNo = the sale's invcNo) whose signature comes back to the
till's receipt.

- offline, then forwarded: the hub is down; a partial refund and the rest of the line; every
  mistake (more than is left, a refund of a refund, an unknown receipt, line 9 of a two-line
  sale, reason 07, --to paypal) is one line on stderr and changes nothing (the queue is the
  same); the hub comes back: the report counts 2 refunds apart from the sale, the stock came
  back, the simulator holds two credit notes naming the sale's invcNo with the reasons given,
  the receipts print the CREDIT NOTE block with the original's CU invoice number, and the
  shared checker passes with --require-invoiced.
- the till's API: POST /api/refunds (201, kind refund, the sale's number), GET /api/sales/<n>
  with refunded_qty_milli and refunds; 409 refund_exceeds_sale, 404 not_found, 400
  invalid_refund naming the field; nothing written by a refused one.
- a restored till refunds again what it had given back before the backup: the till cannot
  know, the hub can — the second refund is a refund_exceeds_sale conflict (kept, with its
  payload, never applied), and eTIMS gets no second credit note.
- a credit note waits for its sale's invoice: eTIMS down while a sale and its refund are
  pushed; when it is back both are accepted, the invoice first (no credit note refused).
"""

import os
import shutil
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ETIMS_TIN, Sim, Suite, Till, check, check_eq, duka_bin,  # noqa: E402
                     etims_env, expect_error, free_port, http, http_json, log, pg_mode, queue, run, run_json,
                     setup_business, status, sync, sync_until_ok, wait_for)

suite = Suite("refunds")


def refund(db, receipt, *lines, reason=None, to=None):
    args = ["refund", "--db", db, receipt] + list(lines) + ["--json"]
    if reason:
        args += ["--reason", reason]
    if to:
        args += ["--to", to]
    return run_json(args)


def sync_until_signed(db, n_unsigned=0, seconds=60):
    def done():
        rc, _, err = sync(db)
        check(rc in (0, 1), "duka sync exit %s: %s" % (rc, err.strip()))
        return status(db)["etims_pending"] == n_unsigned
    wait_for(done, seconds, "the till to have %d unsigned receipts" % n_unsigned, interval=0.1)


def stock(biz):
    r = run_json(["stock", "--db", biz.hub_db, "--business", biz.business_id, "--json"])
    return {s["sku"]: s["stock_milli"] for s in r["products"]}


def credit_notes(sim):
    return [i for i in sim.invoices()["invoices"] if i["rcptTyCd"] == "R"]


def run_checker(biz, sim, acked):
    """The shared checker on the hub's and tills' databases (it reads a SQLite hub: with the
    hub on PostgreSQL the report and the simulator's invoices above are the check)."""
    if pg_mode():
        return None
    ack_path = os.path.join(os.path.dirname(biz.hub_db), "acked.txt")
    with open(ack_path, "w") as f:
        for r in acked:
            f.write("%s %d\n" % (r["receipt_no"], r["total"]))
    args = [os.path.join(os.path.dirname(duka_bin()), "duka-check"), "--hub", biz.hub_db,
            "--acked", ack_path, "--require-drained", "--expect-no-conflicts", "--json",
            "--etims-state", sim.state, "--require-invoiced"]
    for t in sorted(biz.tills):
        args += ["--till", biz.tills[t]]
    import json
    import subprocess
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    rep = json.loads(p.stdout)
    check(rep["ok"] and p.returncode == 0, "the checker: %r" % rep)
    return rep


@suite.test
def refunds_offline_then_credit_notes(ctx):
    sim = Sim(ctx).start()
    biz = setup_business(ctx.tmp, free_port(), hub_env=etims_env(sim), kra_pin=ETIMS_TIN)
    db = biz.tills["T01"]
    before = stock(biz)
    sale = run_json(["sell", "--db", db, "SUGAR1KG*3", "MILK500", "--json"])
    biz.hub.stop()  # the network is gone: refunds go on
    r1 = refund(db, sale["receipt_no"], "1*2", reason="03")
    check_eq((r1["kind"], r1["original_receipt_no"], r1["reason"], r1["total"]),
             ("refund", sale["receipt_no"], "03", 33000), "a partial refund")
    check(r1["receipt_no"] > sale["receipt_no"], "the refund has the till's next number")
    check_eq(r1["payments"], [{"method": "cash", "amount": 33000, "reference": "",
                               "status": "refunded"}], "the money given back")
    items = len(queue(db))
    for args, words in [
        ([sale["receipt_no"], "1*2"], ["line 1", "has 1 left to refund, not 2"]),
        ([r1["receipt_no"], "1"], ["is a refund", "name the sale"]),
        (["T01-20991231-00001", "1"], ["no sale", "T01-20991231-00001"]),
        ([sale["receipt_no"], "9"], ["lines[0].line", "has 2 lines, not 9"]),
        ([sale["receipt_no"], "1", "--reason", "07"], ["reason", "07"]),
        ([sale["receipt_no"], "1", "--to", "paypal"], ["--to"]),
        ([sale["receipt_no"], "x*1"], ["lines[0]", "LINE"]),
    ]:
        expect_error(["refund", "--db", db] + args, words)
    check_eq(len(queue(db)), items, "refused refunds left nothing in the queue")
    r2 = refund(db, sale["receipt_no"], "1", "2")  # what is left of line 1, and line 2
    check_eq(r2["total"], 16500 + 6500, "the rest given back")
    expect_error(["refund", "--db", db, sale["receipt_no"], "2"], ["line 2", "has 0 left"])
    text = run(["receipt", "--db", db, r1["receipt_no"]])[1]
    for want in ("REFUND / CREDIT NOTE", "of sale " + sale["receipt_no"], "Reason: 03 Damaged",
                 "REFUNDED", "Cash given back", "eTIMS: pending"):
        check(want in text, "%r in the refund's receipt:\n%s" % (want, text))
    text = run(["receipt", "--db", db, sale["receipt_no"]])[1]
    check("Refunded by: " + r1["receipt_no"] in text and r2["receipt_no"] in text,
          "the sale lists its refunds:\n" + text)

    biz.hub.start()
    t0 = time.monotonic()
    sync_until_ok(db)
    sync_until_signed(db, 0)
    log("  sale and 2 refunds signed %.1f s after the hub came back" % (time.monotonic() - t0))
    rep = biz.report()
    check_eq((rep["sales"], rep["total_cents"], rep["refunds"], rep["refund_cents"]),
             (1, 56000, 2, 33000 + 23000), "the hub's report: refunds apart from sales")
    check_eq(rep["receipts"], [sale["receipt_no"]], "receipts are the sales")
    after = stock(biz)
    check_eq((after["SUGAR1KG"], after["MILK500"]), (before["SUGAR1KG"], before["MILK500"]),
             "everything given back is back in stock")
    inv = {i["trdInvcNo"]: i for i in sim.invoices()["invoices"]}
    sale_no = inv[sale["receipt_no"]]["invcNo"]
    notes = credit_notes(sim)
    check_eq(sorted((n["trdInvcNo"], n["orgInvcNo"], n["totAmt_cents"]) for n in notes),
             sorted([(r1["receipt_no"], sale_no, 33000), (r2["receipt_no"], sale_no, 23000)]),
             "two credit notes naming the sale's invoice")
    check_eq(sorted(i["invcNo"] for i in inv.values()), [1, 2, 3], "one series, no gap")
    j = run_json(["receipt", "--db", db, r1["receipt_no"], "--json"])
    check_eq((j["etims"]["kind"], j["etims"]["rcpt_sign"]),
             ("credit_note", inv[r1["receipt_no"]]["rcptSign"]), "the credit note's signature")
    for want in ("eTIMS: signed", "eTIMS CREDIT NOTE", "Original CU invoice no:",
                 "/%d\n" % sale_no):
        check(want in j["text"], "%r in the signed refund's receipt:\n%s" % (want, j["text"]))
    biz.hub.stop()
    sim.stop()
    run_checker(biz, sim, [sale, r1, r2])


@suite.test
def refunds_through_the_till_api(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    till = Till(db, free_port()).start()
    st, sale = till.post("/api/sales", {"items": [{"sku": "RICE", "qty": 2.5},
                                                  {"sku": "SODA300", "qty": 4}]})
    check_eq(st, 201, "a sale through the API: %r" % sale)
    st, r = till.post("/api/refunds", {"receipt_no": sale["receipt_no"],
                                       "lines": [{"line": 1, "qty": "0.5"},
                                                 {"line": 2, "qty": 1}],
                                       "reason": "01"})
    check_eq(st, 201, "POST /api/refunds: %r" % r)
    check_eq((r["kind"], r["original_receipt_no"], r["total"], len(r["lines"])),
             ("refund", sale["receipt_no"], 9000 + 5000, 2), "the refund's reply")
    check(r["cashier"] and r["cashier"]["name"], "the refund records its cashier: %r" % r)
    st, got = http_json("GET", till.port, "/api/sales/" + sale["receipt_no"])
    check_eq(st, 200, "GET the sale")
    check_eq([(l["refunded_qty_milli"], l["refunded"]) for l in got["lines"]],
             [(500, 9000), (1000, 5000)], "what was refunded per line")
    check_eq(got["refunds"], [r["receipt_no"]], "the sale's refunds")
    n = len(queue(db))
    for body, code, want in [
        ({"receipt_no": sale["receipt_no"], "lines": [{"line": 2, "qty": 4}]}, 409,
         "has 3 left to refund, not 4"),
        ({"receipt_no": "T01-20991231-00009", "lines": [{"line": 1}]}, 404, "no sale"),
        ({"receipt_no": sale["receipt_no"], "lines": [{"line": 1, "qty": -1}]}, 400,
         "lines[0].qty"),
        ({"receipt_no": sale["receipt_no"], "lines": [{"lin": 1}]}, 400, "lines[0].lin"),
        ({"receipt_no": sale["receipt_no"], "lines": []}, 400, "lines"),
        ({"receipt_no": r["receipt_no"], "lines": [{"line": 1}]}, 400, "is a refund"),
    ]:
        st, err = till.post("/api/refunds", body)
        check(st == code and want in err.get("error", {}).get("message", ""),
              "POST /api/refunds %r -> %s %r (want %s %r)" % (body, st, err, code, want))
        check("\n" not in err["error"]["message"], "one line: %r" % err)
    check_eq(len(queue(db)), n, "refused refunds wrote nothing")
    st, text = http("GET", till.port, "/api/sales/%s/receipt.txt" % r["receipt_no"])
    text = text.decode() if isinstance(text, bytes) else text
    check(st == 200 and "REFUND / CREDIT NOTE" in text and sale["receipt_no"] in text
          and "Reason: 01 Missing quantity" in text, "the refund's receipt text: %s" % text)
    till.stop()


@suite.test
def restored_till_refunding_again_is_a_conflict(ctx):
    sim = Sim(ctx).start()
    biz = setup_business(ctx.tmp, free_port(), hub_env=etims_env(sim), kra_pin=ETIMS_TIN)
    db = biz.tills["T01"]
    sale = run_json(["sell", "--db", db, "BREAD400*2", "--json"])
    sync_until_ok(db)
    copy = ctx.path("backup.db")
    s, d = sqlite3.connect(db), sqlite3.connect(copy)
    s.backup(d)
    d.close()
    s.close()
    first = refund(db, sale["receipt_no"], "1")
    sync_until_ok(db)
    sync_until_signed(db, 0)
    # The backup goes back: the till no longer knows it gave the bread back.
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    shutil.copyfile(copy, db)
    sync_until_ok(db)  # the pull raises the receipt counter above the hub's
    again = refund(db, sale["receipt_no"], "1")
    check(again["receipt_no"] > first["receipt_no"], "no receipt number reused: %s after %s"
          % (again["receipt_no"], first["receipt_no"]))
    rc, j, _ = sync(db)
    check_eq(j and j.get("conflicts"), 1, "the second refund is a conflict: %r" % j)
    rep = biz.report()
    check_eq((rep["refunds"], rep["refund_cents"], rep["conflicts"]), (1, 12000, 1),
             "one refund applied, one conflict")
    kinds = [c["kind"] for c in rep["conflict_details"]]
    check_eq(kinds, ["refund_exceeds_sale"], "the conflict's kind")
    time.sleep(1)
    check_eq(len(credit_notes(sim)), 1, "eTIMS got one credit note")


@suite.test
def credit_note_waits_for_its_invoice(ctx):
    sim = Sim(ctx).start()
    biz = setup_business(ctx.tmp, free_port(), hub_env=etims_env(sim), kra_pin=ETIMS_TIN)
    db = biz.tills["T01"]
    first = run_json(["sell", "--db", db, "SODA300", "--json"])  # installs the device
    sync_until_ok(db)
    sync_until_signed(db, 0)
    sim.faults(outage=True)
    sale = run_json(["sell", "--db", db, "UNGA2KG*2", "--json"])
    r = refund(db, sale["receipt_no"], "1*1", reason="02")
    sync_until_ok(db)
    time.sleep(2)
    check_eq(len(sim.invoices()["invoices"]), 1, "nothing accepted during the outage")
    sim.faults(outage=False)
    sync_until_signed(db, 0, seconds=90)
    inv = {i["trdInvcNo"]: i for i in sim.invoices()["invoices"]}
    check_eq(inv[r["receipt_no"]]["orgInvcNo"], inv[sale["receipt_no"]]["invcNo"],
             "the credit note names the sale's invoice")
    check(inv[r["receipt_no"]]["invcNo"] > inv[sale["receipt_no"]]["invcNo"],
          "the invoice before its credit note")
    stats = sim.invoices()["stats"]
    check("922" not in (stats.get("refused_by_code") or {}),
          "no credit note refused for an original not there: %r" % stats)
    check_eq(first["kind"], "sale", "a sale says it is one")


if __name__ == "__main__":
    suite.main()
