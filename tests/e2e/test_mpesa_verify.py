#!/usr/bin/env python3
"""Typed M-Pesa codes verified at the hub (issue 13): a real hub with MPESA_BASE_URL pointing
at a real `duka sim mpesa`, a till selling with codes it cannot check itself.

- the business's shortcode (`duka business set --mpesa-shortcode`) gets its C2B URLs
  registered: a customer paying the shortcode from their phone reaches the hub's
  confirmation URL;
- a code the customer paid (C2B, before the sale) verifies after the till syncs: the payment
  turns "verified", the receipt says so, `duka status` counts nothing pending;
- the same code on a second sale is flagged ("already used for sale …"); a code paid with
  another amount is flagged naming both amounts;
- a code whose confirmation never reached the hub (callback_never) is found by a
  transaction status query and verified;
- a code M-Pesa never heard of (and a forged confirmation to a URL with the wrong secret,
  which the hub refuses with 404) is flagged "not confirmed" once MPESA_VERIFY_WINDOW passes;
  nothing is dropped or accepted silently: every payment ends verified or flagged, with the
  hub's audit holding each decision;
- the shared checker (`duka-check --mpesa-state --require-mpesa-decided`) passes on each
  run's end, and catches a flagged code turned "verified" by hand on the till (a receipt
  credited to two sales, and a code M-Pesa does not hold with that amount).
"""

import json
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MPESA_SHORTCODE, MpesaSim, Suite, check, check_eq, duka_bin,  # noqa: E402
                     free_port, http_json, log, mpesa_env, run_json, run_ok, sell,
                     setup_business, status, wait_for)

suite = Suite("mpesa_verify")


def mpesa_business(ctx, sim, **settings):
    port = free_port()
    env = mpesa_env(ctx, sim, port, MPESA_STATUS_WAIT="1s", **settings)
    biz = setup_business(ctx.tmp, port, hub_env=env)
    r = run_json(["business", "set", "--db", biz.hub_db, "--business", biz.business_id,
                  "--mpesa-shortcode", MPESA_SHORTCODE, "--json"])
    check_eq(r.get("mpesa_shortcode"), MPESA_SHORTCODE, "business set --mpesa-shortcode")

    def registered():
        items = run_json(["hub", "outbox", "--db", biz.hub_db, "--business", biz.business_id,
                          "--json"])["items"]
        return any(i["command_type"] == "mpesa.register" and i["status"] == "done"
                   for i in items)
    wait_for(registered, 20, "the shortcode's C2B URLs registered by the hub")
    return biz


def confirmed(sim, trans_id, seconds=20):
    """Waits until the simulator posted the C2B confirmation of trans_id and the hub took it."""
    def sent():
        cbs = sim.get("/_sim/callbacks?kind=c2b_confirmation&ref=%s" % trans_id)["callbacks"]
        return cbs and cbs[-1]["state"] == "sent" and cbs[-1]["http_status"] == 200
    wait_for(sent, seconds, "the hub taking the C2B confirmation of %s" % trans_id)


def payment_of(db, receipt_no):
    r = run_json(["receipt", "--db", db, receipt_no, "--json"])
    pays = [p for p in r["payments"] if p["method"] == "mpesa"]
    check_eq(len(pays), 1, "M-Pesa payments of %s" % receipt_no)
    return pays[0]


def sync_until_decided(db, receipt_no, seconds=30):
    """Syncs until the payment of receipt_no is no longer pending verification."""
    def decided():
        run_json(["sync", "--db", db, "--json"], expect_rc=None)
        return payment_of(db, receipt_no)["status"] != "pending_verification"
    wait_for(decided, seconds, "the verdict on %s" % receipt_no, interval=0.3)
    return payment_of(db, receipt_no)


def audit_events(biz):
    r = run_json(["hub", "audit", "--db", biz.hub_db, "--business", biz.business_id, "--json"])
    return [e for e in r["events"] if e["event"].startswith("mpesa_")]


def checker(biz, sim):
    """duka-check on the till and the simulator's payments: the report."""
    args = [os.path.join(os.path.dirname(duka_bin()), "duka-check"), "--mpesa-state",
            sim.state, "--require-mpesa-decided", "--json"]
    for db in biz.tills.values():
        args += ["--till", db]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    check(p.returncode in (0, 1), "duka-check exit %d: %s" % (p.returncode, p.stderr))
    rep = json.loads(p.stdout)
    log("  duka-check: ok=%s verified=%s flagged=%s %s" % (
        rep["ok"], rep.get("mpesa_verified"), rep.get("mpesa_flagged"), rep["first_problem"]))
    return rep


@suite.test
def paid_code_verified_used_twice_and_wrong_amount_flagged(ctx):
    sim = MpesaSim(ctx).start()
    biz = mpesa_business(ctx, sim)
    db = biz.tills["T01"]
    code = sim.c2b(165, ref="counter")
    confirmed(sim, code)
    sale = sell(db, "SUGAR1KG", pay="mpesa:%s" % code)
    check_eq(status(db)["mpesa"]["pending_verification"], 1, "pending before any sync")
    p = sync_until_decided(db, sale["receipt_no"])
    check_eq(p["status"], "verified", "a paid code: %r" % p)
    text = run_ok(["receipt", "--db", db, sale["receipt_no"]])
    check("verified with M-Pesa" in text, "the receipt says verified:\n" + text)
    st = status(db)
    check_eq(st["mpesa"], {"pending_verification": 0, "flagged": 0, "state": st["mpesa"]["state"]},
             "counts after the verification")

    again = sell(db, "SUGAR1KG", pay="mpesa:%s" % code)
    p = sync_until_decided(db, again["receipt_no"])
    check_eq(p["status"], "flagged", "the same code on a second sale")
    check("already used for sale %s" % sale["receipt_no"] in p.get("note", ""), repr(p))

    code100 = sim.c2b(100)
    confirmed(sim, code100)
    wrong = sell(db, "SUGAR1KG", pay="mpesa:%s" % code100)
    p = sync_until_decided(db, wrong["receipt_no"])
    check_eq(p["status"], "flagged", "a code paid with another amount")
    check("KES 100.00" in p.get("note", "") and "KES 165.00" in p.get("note", ""), repr(p))
    text = run_ok(["receipt", "--db", db, wrong["receipt_no"]])
    check("FLAGGED" in text, "the receipt says flagged:\n" + text)
    st = status(db)
    check_eq(st["mpesa"]["flagged"], 2, "flagged count")
    check("mpesa_flagged" in [a["code"] for a in st["alerts"]], "alert: %r" % st["alerts"])
    ev = audit_events(biz)
    check_eq(sorted(e["event"] for e in ev),
             ["mpesa_flagged", "mpesa_flagged", "mpesa_verified"], "audit: %r" % ev)
    rep = checker(biz, sim)
    check(rep["ok"], "the checker passes: %r" % rep)
    check_eq((rep["mpesa_verified"], rep["mpesa_flagged"]), (1, 2), "checker's figures")
    # Planted: the flagged second use of the code turned "verified" on the till by hand.
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE payments SET status = 'verified' WHERE sale_id IN (SELECT id"
                    " FROM sales WHERE receipt_no IN (?, ?))",
                    (again["receipt_no"], wrong["receipt_no"]))
    con.close()
    rep = checker(biz, sim)
    check(not rep["ok"], "the checker fails on the planted verdicts")
    check_eq((rep["mpesa_double_credit"], rep["mpesa_wrongly_verified"]), (1, 1),
             "a receipt on two sales, and a code of another amount")


@suite.test
def lost_confirmation_found_by_status_query(ctx):
    sim = MpesaSim(ctx).start()
    biz = mpesa_business(ctx, sim)
    db = biz.tills["T01"]
    sim.faults(callback_never=1)
    code = sim.c2b(165)
    wait_for(lambda: sim.get("/_sim/callbacks?kind=c2b_confirmation&ref=%s" % code)["callbacks"],
             10, "the confirmation dropped")
    check_eq(sim.get("/_sim/callbacks?kind=c2b_confirmation&ref=%s" % code)["callbacks"][0]
             ["state"], "dropped", "the confirmation never reaches the hub")
    sim.faults(callback_never=0)
    sale = sell(db, "SUGAR1KG", pay="mpesa:%s" % code)
    t0 = time.monotonic()
    p = sync_until_decided(db, sale["receipt_no"])
    log("  verified by transaction status %.1f s after the first sync" % (time.monotonic() - t0))
    check_eq(p["status"], "verified", "found by the status query: %r" % p)
    results = sim.get("/_sim/callbacks?kind=status_result&ref=%s" % code)["callbacks"]
    check(results and results[0]["state"] == "sent", "a status result was posted: %r" % results)
    check(checker(biz, sim)["ok"], "the checker passes")


@suite.test
def unknown_and_forged_codes_flagged_after_the_window(ctx):
    sim = MpesaSim(ctx).start()
    biz = mpesa_business(ctx, sim, MPESA_VERIFY_WINDOW="6s")
    db = biz.tills["T01"]
    # A forged confirmation: the right path shape, a wrong secret. Nothing is kept.
    forged = {"TransactionType": "Pay Bill", "TransID": "UAFORGED12", "TransTime":
              time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 3 * 3600)),
              "TransAmount": "165.00", "BusinessShortCode": MPESA_SHORTCODE,
              "BillRefNumber": "", "MSISDN": "254708374149", "FirstName": "Eve"}
    port = int(biz.hub.url.rsplit(":", 1)[1])
    st, reply = http_json("POST", port, "/v1/mpesa/%s.%s/c2b-confirmation"
                          % (biz.business_id, "0" * 32), body=json.dumps(forged),
                          headers={"Content-Type": "application/json"})
    check_eq(st, 404, "a confirmation with a wrong secret: %r" % reply)
    unknown = sell(db, "SUGAR1KG", pay="mpesa:ZZZZZZZZZZ")
    fake = sell(db, "SUGAR1KG", pay="mpesa:UAFORGED12")
    for rn in (unknown["receipt_no"], fake["receipt_no"]):
        p = sync_until_decided(db, rn, seconds=40)
        check_eq(p["status"], "flagged", "%s: %r" % (rn, p))
        check("not confirmed by M-Pesa" in p.get("note", ""), repr(p))
    asked = sim.get("/_sim/callbacks?kind=status_result&ref=ZZZZZZZZZZ")["callbacks"]
    check(asked, "the hub asked M-Pesa about the unknown code before flagging it")
    st = status(db)
    check_eq((st["mpesa"]["pending_verification"], st["mpesa"]["flagged"]), (0, 2),
             "nothing left pending")
    rep = checker(biz, sim)
    check(rep["ok"] and rep["mpesa_flagged"] == 2, "the checker: %r" % rep)


if __name__ == "__main__":
    suite.main()
