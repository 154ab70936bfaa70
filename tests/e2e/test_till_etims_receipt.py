#!/usr/bin/env python3
"""The till's eTIMS receipt from the command line (issue 12; till/etims_receipt.h).

- Unsigned: `duka receipt` says exactly "eTIMS: pending" with no control-unit block, its
  --json has "etims": null; `duka status` counts every sale of the till as not signed
  (etims_pending) and says what the hub said of eTIMS (a hub with none configured: "off"); a
  `duka sync` against the hub sends invoice_cursor and works whether the hub knows it or not.
- Signed: RENDERING ONLY — the signature row is written with sqlite3 as a pull stores it (the
  hub's invoices member is not merged yet; the unit tests cover applying the pull member).
  `duka receipt` prints the CU block in 40 columns with the verification URL on lines of its
  own; --json carries "etims"; etims_pending goes down by one. The schema itself refuses a
  signature of a receipt the till does not hold (foreign key) and a malformed one (CHECK).
- The light: with the hub's word "offline" stored (as services.etims would leave it), a till
  that would be green is yellow, "eTIMS unreachable from the hub: 4 invoices wait";
  "degraded" is "eTIMS is slow or failing at the hub"; "off" leaves it green. `duka status`
  text says it too.
"""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, check_eq, free_port, log, run, run_json, run_ok,  # noqa: E402
                     sell, setup_business, status, sync)

suite = Suite("till_etims_receipt")

QR_URL = ("https://etims-sbx.kra.go.ke/common/link/etims/receipt/indexEtimsReceiptData"
          "?Data=P051234567X00ABCDEFGHIJKLMNOP")
COLUMNS = ("receipt_no, seq, kind, cu_invoice_no, sdc_id, invc_no, rcpt_no, tot_rcpt_no, "
           "intrl_data, rcpt_sign, signed_at, mrc_no, qr_url, received_ms")


def store_signature(db, receipt_no, **over):
    row = dict(receipt_no=receipt_no, seq=31, kind="sale", cu_invoice_no="KRACU0100000001/17",
               sdc_id="KRACU0100000001", invc_no=17, rcpt_no=17, tot_rcpt_no=17,
               intrl_data="ABCDEFGHIJKLMNOPQRSTUVWXYZ", rcpt_sign="ABCDEFGHIJKLMNOP",
               signed_at="2026-12-03 14:30:05", mrc_no="WIS00000001", qr_url=QR_URL,
               received_ms=1764772300000)
    row.update(over)
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute("PRAGMA foreign_keys=ON")
        with con:
            con.execute("INSERT INTO etims_receipts(%s) VALUES(%s)" % (COLUMNS, ",".join("?" * 14)),
                        [row[c.strip()] for c in COLUMNS.split(",")])
    finally:
        con.close()


def set_meta(db, **kv):
    con = sqlite3.connect(db, timeout=30)
    try:
        with con:
            for k, v in kv.items():
                con.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE"
                            " SET value = excluded.value", (k, str(v)))
    finally:
        con.close()


def receipt(db, rn):
    return run_ok(["receipt", "--db", db, rn])


@suite.test
def receipt_pending_then_signed(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    sync(db)
    first = sell(db, "SUGAR1KG", "MILK500*2")["receipt_no"]
    second = sell(db, "BREAD400")["receipt_no"]
    text = receipt(db, first)
    check("\neTIMS: pending; sync: pending\n" in text, "unsigned receipt says pending:\n" + text)
    check("CU invoice" not in text and "signature" not in text, "no CU block unsigned:\n" + text)
    j = run_json(["receipt", "--db", db, first, "--json"])
    check("etims" in j and j["etims"] is None, "receipt --json etims null: %r" % j.get("etims"))
    st = status(db)
    check_eq(st["etims_pending"], 2, "etims_pending: every sale until a signature arrives")
    # The first sync's pull heard a hub that forwards to no eTIMS: "off", which turns no light.
    check_eq(st["etims"], {"state": "off", "since_ms": 0, "pending": 0}, "status etims")
    out = run_ok(["status", "--db", db])
    check("eTIMS: 2 sales of this till not signed yet; the hub sends no invoices" in out,
          "duka status text:\n" + out)
    sync(db)  # pushes both and pulls with invoice_cursor=0; the hub answers as it can

    store_signature(db, first)
    text = receipt(db, first)
    log("  the signed receipt:\n" + "\n".join("    " + l for l in text.splitlines()))
    check("eTIMS: pending" not in text, "a signed receipt says pending:\n" + text)
    for want in ("eTIMS: signed; sync: done", "CU invoice no: KRACU0100000001/17",
                 "SCU ID: KRACU0100000001", "CU date/time: 2026-12-03 14:30:05",
                 "Receipt no: 17/17", "Internal data:\n  ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ",
                 "Receipt signature: ABCD-EFGH-IJKL-MNOP"):
        check(want in text, "%r in the signed receipt:\n%s" % (want, text))
    lines = text.splitlines()
    check(all(len(l) <= 40 for l in lines), "a line wider than 40 columns:\n" + text)
    at = lines.index("Verify at:")
    check_eq("".join(lines[at + 1:]), QR_URL, "the URL lines put together")
    j = run_json(["receipt", "--db", db, first, "--json"])
    check_eq(j["etims"]["cu_invoice_no"], "KRACU0100000001/17", "receipt --json etims")
    check_eq(j["etims"]["qr_url"], QR_URL, "receipt --json etims.qr_url")
    check("CU invoice no: KRACU0100000001/17" in j["text"], "receipt --json text has the block")
    check_eq(status(db)["etims_pending"], 1, "etims_pending after one signature")
    check("eTIMS: pending" in receipt(db, second), "the other receipt is still pending")

    # The schema keeps only what a receipt can print, of a receipt the till holds.
    for bad in ({"receipt_no": "T01-20991231-00001"}, {"receipt_no": second, "kind": "refund"},
                {"receipt_no": second, "rcpt_no": 18}, {"receipt_no": second, "signed_at": "x"}):
        try:
            store_signature(db, **bad)
        except sqlite3.IntegrityError as e:
            log("  refused %r: %s" % (bad, e))
            continue
        check(False, "the schema took a bad signature %r" % bad)
    check_eq(status(db)["etims_pending"], 1, "etims_pending after the refused rows")
    rc, _, err = run(["receipt", "--db", db, "T01-20991231-00001"])
    check_eq(rc, 1, "duka receipt of an unknown receipt (%s)" % err.strip())


@suite.test
def light_follows_the_hubs_word_on_etims(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    sync(db)
    sell(db, "SUGAR1KG")
    sync(db)  # nothing waits: the light is green
    st = status(db)
    check_eq((st["light"], st["light_reason"]), ("green", "online; everything is at the hub"),
             "the light before any word on eTIMS")
    # What a pull's services.etims member leaves in meta (the unit tests apply the member).
    set_meta(db, etims_state="offline", etims_since_ms=1764772205000, etims_pending=4,
             etims_seen_ms=1764772300000)
    st = status(db)
    check_eq((st["light"], st["light_reason"]),
             ("yellow", "eTIMS unreachable from the hub: 4 invoices wait"), "eTIMS offline")
    check_eq(st["etims"], {"state": "offline", "since_ms": 1764772205000, "pending": 4},
             "status etims")
    out = run_ok(["status", "--db", db])
    check("light: yellow (eTIMS unreachable from the hub: 4 invoices wait)" in out, out)
    check("at the hub offline since" in out and "4 invoices wait" in out, out)
    set_meta(db, etims_state="degraded")
    st = status(db)
    check_eq((st["light"], st["light_reason"]), ("yellow", "eTIMS is slow or failing at the hub"),
             "eTIMS degraded")
    set_meta(db, etims_state="off")
    check_eq(status(db)["light"], "green", "eTIMS off at the hub: no effect")
    set_meta(db, etims_state="offline")
    sell(db, "MILK500")  # the till's own waiting sale keeps its own reason
    st = status(db)
    check_eq((st["light"], st["light_reason"]), ("yellow", "1 item waits to be synced"),
             "a waiting sale over eTIMS offline")


if __name__ == "__main__":
    suite.main()
