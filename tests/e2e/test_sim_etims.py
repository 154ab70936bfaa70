#!/usr/bin/env python3
"""`duka sim etims`, the eTIMS OSCU simulator (issue 12, /work/contract-12.md section 2).

Real `duka sim etims` processes on free ports, spoken to over HTTP. The request bodies are
built here from the contract, with the tax rule computed by Python's Decimal (ROUND_HALF_UP),
so that the test is a check of the simulator independent of duka's C code:

- selectInitOsdcInfo: 000 with data.info for a new serial, 902 with the same info again, 910
  for a malformed tin; a new serial is a new device (its own sdcId and cmcKey).
- saveTrnsSalesOsdc: a correct sale is 000 with curRcptNo/totRcptNo, a 16-character rcptSign
  and a 26-character intrlData ([A-Z0-9]) and sdcDateTime YYYYMMDDhhmmss; the same invcNo
  again is 994; broken arithmetic or a missing field is 910 naming the field and nothing is
  kept; malformed JSON is HTTP 200 with 910; a body over 1 MiB is 413; unknown headers 901.
- --sequence-window: 921 beyond the window, and /_sim/invoices' gaps.
- credit notes: 922 for an unknown original and beyond the original's total, accepted ones
  counted apart (curRcptNo), more than one allowed unless --single-credit-note.
- selectInvoiceDetails: found (000, salesList[0], sdcDateTime "YYYY-MM-DD hh:mm:ss.0") and
  not found (001).
- faults: --fail-rate 1 is 999 with nothing kept; the outage toggled at run time (503, not
  JSON, then back); a scheduled outage; latency; --timeout-after-accept 1: a client with a 2 s
  timeout times out, yet the invoice is kept and a resend is 994, and other requests are
  served meanwhile.
- a restart on the same --state remembers devices, invoices and counters; SIGTERM with a
  reply held exits at once; the command line's errors (exit 2 usage, exit 1 bad values).
"""

import json
import os
import re
import socket
import sqlite3
import sys
import threading
import time
from decimal import ROUND_HALF_UP, Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, _Server, check, check_eq, expect_error, free_port, http,  # noqa: E402
                     http_json, wait_for)

suite = Suite("sim_etims")

TIN = "P051234567X"
BHF = "00"
RATES = {"A": 0, "B": 16, "C": 0, "D": 0, "E": 8}
SIGN_RE = re.compile(r"^[A-Z0-9]{16}$")
INTRL_RE = re.compile(r"^[A-Z0-9]{26}$")
COMPACT_DT_RE = re.compile(r"^\d{14}$")
DASHED_DT_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.0$")


class Sim(_Server):
    health_path = "/_sim/health"
    kind = "sim"

    def __init__(self, ctx, port=None, state=None, extra=()):
        self.port_ = port or free_port()
        self.state = state or ctx.path("etims.db")
        super().__init__(["sim", "etims", "--listen", "127.0.0.1:%d" % self.port_, "--state",
                          self.state] + [str(a) for a in extra], self.port_, ctx.tmp)

    def post(self, path, body, headers=None, timeout=10):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return http_json("POST", self.port, path, body=data, headers=h, timeout=timeout)

    def etims(self, path, body, headers=None, timeout=10):
        """POST to /etims-api/PATH; returns the parsed answer, which must be HTTP 200."""
        status, reply = self.post("/etims-api/" + path, body, headers, timeout)
        check_eq(status, 200, "HTTP status of %s" % path)
        check(isinstance(reply, dict) and set(reply) == {"resultCd", "resultMsg", "resultDt",
                                                         "data"},
              "%s answer shape: %r" % (path, reply))
        check(COMPACT_DT_RE.match(reply["resultDt"]), "resultDt %r" % reply["resultDt"])
        return reply

    def init(self, serial="T01", tin=TIN):
        return self.etims("selectInitOsdcInfo", {"tin": tin, "bhfId": BHF, "dvcSrlNo": serial})

    def device(self, serial="T01"):
        """Installs a device; returns the headers of its saves and selects."""
        r = self.init(serial)
        check(r["resultCd"] in ("000", "902"), "init: %r" % r)
        return {"tin": TIN, "bhfId": BHF, "cmcKey": r["data"]["info"]["cmcKey"]}

    def save(self, headers, body, timeout=10):
        return self.etims("saveTrnsSalesOsdc", body, headers, timeout)

    def select(self, headers, invc_no):
        return self.etims("selectInvoiceDetails", {"invcNo": invc_no}, headers)

    def invoices(self, query="?tin=%s&bhfId=%s" % (TIN, BHF)):
        status, reply = http_json("GET", self.port, "/_sim/invoices" + query)
        check_eq(status, 200, "GET /_sim/invoices")
        return reply

    def faults(self, **knobs):
        status, reply = self.post("/_sim/faults", knobs)
        check_eq(status, 200, "POST /_sim/faults %r: %r" % (knobs, reply))
        return reply


# ---------------------------------------------------------------------------------------------
# the request builder: the contract's body, the tax rule in Decimal
# ---------------------------------------------------------------------------------------------
def half_up(x):
    return int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def kes(cents):
    return float(Decimal(cents) / 100)


def item(sku, qty, price_cents, band, name=None):
    return {"sku": sku, "qty": Decimal(qty), "price": price_cents, "band": band,
            "name": name or sku.title()}


def build(invc_no, items, rcpt="S", org=0, rfd=None, trd=None, pmt="01"):
    """A saveTrnsSalesOsdc body by the contract: VAT-inclusive prices, per item
    taxAmt = round_half_up(taxblAmt * rate / (100 + rate)), bands and totals as sums."""
    lines = []
    band_taxbl = {b: 0 for b in RATES}
    band_tax = {b: 0 for b in RATES}
    for i, it in enumerate(items):
        qty_milli = int(it["qty"] * 1000)
        total = half_up(Decimal(it["price"] * qty_milli) / 1000)
        rate = RATES[it["band"]]
        tax = half_up(Decimal(total * rate) / (100 + rate))
        band_taxbl[it["band"]] += total
        band_tax[it["band"]] += tax
        lines.append({"itemSeq": i + 1, "itemCd": it["sku"], "itemClsCd": "99000000",
                      "itemNm": it["name"], "bcd": None, "pkgUnitCd": "NT", "pkg": 1,
                      "qtyUnitCd": "U", "qty": float(it["qty"]), "prc": kes(it["price"]),
                      "splyAmt": kes(total), "dcRt": 0, "dcAmt": 0, "isrccCd": None,
                      "isrccNm": None, "isrcRt": None, "isrcAmt": None,
                      "taxTyCd": it["band"], "taxblAmt": kes(total), "taxAmt": kes(tax),
                      "totAmt": kes(total)})
    tot_taxbl = sum(band_taxbl.values())
    tot_tax = sum(band_tax.values())
    body = {"invcNo": invc_no, "orgInvcNo": org,
            "trdInvcNo": trd or "T01-20261203-%05d" % invc_no, "custTin": "", "custNm": "",
            "salesTyCd": "N", "rcptTyCd": rcpt, "pmtTyCd": pmt, "salesSttsCd": "02",
            "cfmDt": "20261203143000", "salesDt": "20261203", "stockRlsDt": None,
            "cnclReqDt": None, "cnclDt": None, "rfdDt": None, "rfdRsnCd": rfd,
            "totItemCnt": len(lines)}
    for b in RATES:
        body["taxblAmt" + b] = kes(band_taxbl[b])
    for b in RATES:
        body["taxRt" + b] = RATES[b]
    for b in RATES:
        body["taxAmt" + b] = kes(band_tax[b])
    body.update({"totTaxblAmt": kes(tot_taxbl), "totTaxAmt": kes(tot_tax),
                 "totAmt": kes(tot_taxbl), "prchrAcptcYn": "N", "remark": None,
                 "regrId": "duka", "regrNm": "duka", "modrId": "duka", "modrNm": "duka",
                 "receipt": {"custTin": None, "custMblNo": None, "rptNo": None,
                             "trdeNm": "Mama Mboga", "adrs": None, "topMsg": "Mama Mboga",
                             "btmMsg": "Thank you", "prchrAcptcYn": "N"},
                 "itemList": lines})
    return body


# 2 x 58.00 (B) = 116.00, VAT 16.00
SODA = [item("SODA", "2", 5800, "B")]
# a mixed basket: 0.5 kg of 119.99 (B), 3 x 33.33 (E), 1 x 250.00 (A)
BASKET = [item("RICE", "0.5", 11999, "B"), item("MILK", "3", 3333, "E"),
          item("BOOK", "1", 25000, "A")]


def expect_code(reply, code, what, field=None):
    check(reply["resultCd"] == code, "%s: want %s, got %r" % (what, code, reply))
    if field is not None:
        check(field in reply["resultMsg"], "%s: resultMsg %r does not name %r"
              % (what, reply["resultMsg"], field))
    if code != "000" and code != "902":
        check(reply["data"] is None, "%s: data is not null: %r" % (what, reply))


def check_accepted(reply, cur, tot, what):
    expect_code(reply, "000", what)
    d = reply["data"]
    check_eq(sorted(d), ["curRcptNo", "intrlData", "rcptSign", "sdcDateTime", "totRcptNo"],
             "%s: data members" % what)
    check_eq((d["curRcptNo"], d["totRcptNo"]), (cur, tot), "%s: curRcptNo, totRcptNo" % what)
    check(SIGN_RE.match(d["rcptSign"]), "%s: rcptSign %r" % (what, d["rcptSign"]))
    check(INTRL_RE.match(d["intrlData"]), "%s: intrlData %r" % (what, d["intrlData"]))
    check(COMPACT_DT_RE.match(d["sdcDateTime"]), "%s: sdcDateTime %r" % (what, d["sdcDateTime"]))
    return d


def announce_oversized(port, size):
    """Sends the head of a save announcing a size-byte body, none of it, and returns the
    status the simulator answers at once (it refuses before reading the body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(("POST /etims-api/saveTrnsSalesOsdc HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   "application/json\r\nContent-Length: %d\r\n\r\n" % size).encode())
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return int(got.split(b" ")[1])
    finally:
        s.close()


def kept(sim):
    return [i["invcNo"] for i in sim.invoices()["invoices"]]


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------
@suite.test
def init_installs_then_answers_902_with_the_same_info(ctx):
    sim = Sim(ctx).start()
    r = sim.init()
    expect_code(r, "000", "first init")
    info = r["data"]["info"]
    for k in ("tin", "taxprNm", "bhfId", "bhfNm", "dvcId", "sdcId", "mrcNo", "cmcKey"):
        check(isinstance(info.get(k), str) and info[k], "info.%s: %r" % (k, info))
    check_eq((info["tin"], info["bhfId"]), (TIN, BHF), "info tin, bhfId")
    check(re.match(r"^KRACU\d{10}$", info["sdcId"]), "sdcId %r" % info["sdcId"])
    check(re.match(r"^WIS\d{8}$", info["mrcNo"]), "mrcNo %r" % info["mrcNo"])
    check(len(info["cmcKey"]) >= 32, "cmcKey %r" % info["cmcKey"])
    again = sim.init()
    expect_code(again, "902", "second init")
    check_eq(again["resultMsg"], "This device is installed", "902 message")
    check_eq(again["data"]["info"], info, "902 carries the same info")
    other = sim.init("T02")
    expect_code(other, "000", "another serial")
    check(other["data"]["info"]["sdcId"] != info["sdcId"], "a new device has its own sdcId")
    check(other["data"]["info"]["cmcKey"] != info["cmcKey"], "and its own cmcKey")
    for bad in ("X051234567X", "P05123456X", "p051234567x", ""):
        expect_code(sim.init(tin=bad), "910", "tin %r" % bad, "tin")
    expect_code(sim.etims("selectInitOsdcInfo", {"tin": TIN, "bhfId": BHF}), "910",
                "no dvcSrlNo", "dvcSrlNo")


@suite.test
def a_correct_sale_is_signed_and_a_resend_is_994(ctx):
    sim = Sim(ctx).start()
    h = sim.device()
    first = check_accepted(sim.save(h, build(1, SODA)), 1, 1, "sale 1")
    second = check_accepted(sim.save(h, build(2, BASKET, pmt="07")), 2, 2, "sale 2")
    check(first["rcptSign"] != second["rcptSign"], "signatures differ between invoices")
    check(first["intrlData"] != second["intrlData"], "internal data differs")
    dup = sim.save(h, build(1, SODA))
    expect_code(dup, "994", "sale 1 again")
    check_eq(dup["resultMsg"], "Overlapped data", "994 message")
    inv = sim.invoices()
    check_eq([i["invcNo"] for i in inv["invoices"]], [1, 2], "kept invoices")
    check_eq(inv["duplicates_refused"], 1, "duplicates_refused")
    check_eq(inv["gaps"], [], "no gaps")
    one, two = inv["invoices"]
    check_eq((one["trdInvcNo"], one["rcptTyCd"], one["orgInvcNo"], one["totAmt"],
              one["taxblAmtB"], one["taxAmtB"], one["rcptSign"]),
             ("T01-20261203-00001", "S", 0, 116.0, 116.0, 16.0, first["rcptSign"]),
             "invoice 1 as kept")
    # The basket by the rule: RICE 0.5 x 119.99 = 60.00 (half up of 59.995), VAT 8.28;
    # MILK 3 x 33.33 = 99.99, VAT 7.41; BOOK 250.00 exempt.
    check_eq((two["taxblAmtB"], two["taxAmtB"], two["taxblAmtE"], two["taxAmtE"],
              two["taxblAmtA"], two["taxAmtA"], two["totAmt"]),
             (60.0, 8.28, 99.99, 7.41, 250.0, 0.0, 409.99), "the basket's bands")
    check(isinstance(two["received_ms"], int) and two["received_ms"] > 0, "received_ms")
    stats = inv["stats"]
    check_eq((stats["saves"], stats["accepted"], stats["refused_by_code"]),
             (3, 2, {"994": 1}), "stats")


@suite.test
def broken_arithmetic_and_missing_fields_are_910_naming_the_field(ctx):
    sim = Sim(ctx).start()
    h = sim.device()

    def broken(change, field, items=SODA):
        body = build(1, items)
        change(body)
        r = sim.save(h, body)
        expect_code(r, "910", "broken %s" % field, field)
        return r

    r = broken(lambda b: b.update(taxAmtB=15.0, totTaxAmt=15.0), "taxAmtB")
    check("15.00" in r["resultMsg"] and "16.00" in r["resultMsg"],
          "the message gives both amounts: %r" % r["resultMsg"])
    broken(lambda b: b["itemList"][0].update(taxAmt=16.01), "itemList[0].taxAmt")
    broken(lambda b: b["itemList"][0].update(prc=57.0), "itemList[0].splyAmt")
    broken(lambda b: b.update(totAmt=117.0), "totAmt")
    broken(lambda b: b.update(totTaxblAmt=100.0), "totTaxblAmt")
    broken(lambda b: b.update(taxblAmtB=100.0), "taxblAmtB")
    broken(lambda b: b.update(totItemCnt=2), "totItemCnt")
    broken(lambda b: b.update(taxRtB=15), "taxRtB")
    broken(lambda b: b.update(totAmt=116.001), "totAmt")
    broken(lambda b: b.update(totAmt="116.00"), "totAmt")
    broken(lambda b: b.pop("cfmDt"), "cfmDt")
    broken(lambda b: b.update(cfmDt="20261303143000"), "cfmDt")
    broken(lambda b: b.update(pmtTyCd="99"), "pmtTyCd")
    broken(lambda b: b.update(rcptTyCd="X"), "rcptTyCd")
    broken(lambda b: b.pop("receipt"), "receipt")
    broken(lambda b: b.update(itemList=[]), "itemList")
    broken(lambda b: b["itemList"][0].update(taxTyCd="F"), "itemList[0].taxTyCd")
    broken(lambda b: b["itemList"][0].update(itemSeq=2), "itemList[0].itemSeq")
    broken(lambda b: b.update(trdInvcNo="T" * 51), "trdInvcNo")
    broken(lambda b: b.update(invcNo=0), "invcNo")
    broken(lambda b: b.update(invcNo=1.5), "invcNo")
    broken(lambda b: b.update(orgInvcNo=3), "orgInvcNo")
    # A VAT-exclusive taxblAmt (Odoo's way) is refused under duka's rule.
    broken(lambda b: b["itemList"][0].update(taxblAmt=100.0), "itemList[0].taxblAmt")
    check_eq(kept(sim), [], "nothing kept by a refusal")
    # malformed JSON: HTTP 200 and 910; not an object: 910 too
    for text in ("{not json", "[1, 2]", ""):
        r = sim.save(h, text)
        expect_code(r, "910", "body %r" % text)
    # over 1 MiB: 413 from the HTTP layer, before anything is read
    check_eq(announce_oversized(sim.port, 1024 * 1024 + 1), 413, "a body over 1 MiB")
    # 1,000 items is the most
    many = build(1, [item("S%d" % i, "1", 100, "A") for i in range(1001)])
    expect_code(sim.save(h, many), "910", "1001 items", "itemList")
    check_accepted(sim.save(h, build(1, [item("S%d" % i, "1", 100, "A") for i in range(1000)])),
                   1, 1, "1000 items")
    # unknown device
    expect_code(sim.save({"tin": TIN, "bhfId": BHF, "cmcKey": "nope"}, build(2, SODA)), "901",
                "a wrong cmcKey")
    expect_code(sim.save({}, build(2, SODA)), "901", "no headers")
    stats = sim.invoices()["stats"]
    check(stats["refused_by_code"]["910"] >= 26 and stats["refused_by_code"]["901"] == 1,
          "refusals of the branch counted: %r" % stats)
    check_eq(sim.invoices("")["stats"]["refused_by_code"]["901"], 2,
             "901s of every branch (one without headers)")


@suite.test
def sequence_window_refuses_with_921_and_gaps_are_listed(ctx):
    sim = Sim(ctx, extra=["--sequence-window", "2"]).start()
    h = sim.device()
    check_accepted(sim.save(h, build(1, SODA)), 1, 1, "invoice 1")
    expect_code(sim.save(h, build(4, SODA)), "921", "invoice 4 beyond the window")
    check_accepted(sim.save(h, build(3, SODA)), 2, 2, "invoice 3 within it")
    check_eq(sim.invoices()["gaps"], [2], "gaps with 2 missing")
    check_accepted(sim.save(h, build(2, SODA)), 3, 3, "invoice 2 fills the gap")
    check_accepted(sim.save(h, build(5, SODA)), 4, 4, "invoice 5: window from 3")
    inv = sim.invoices()
    check_eq((kept(sim), inv["gaps"]), ([1, 2, 3, 5], [4]), "kept and gaps")
    check_eq(inv["stats"]["refused_by_code"], {"921": 1}, "921 counted")
    # the window changed at run time: 0 is off
    check_eq(sim.faults(sequence_window=0)["sequence_window"], 0, "window off")
    check_accepted(sim.save(h, build(100, SODA)), 5, 5, "invoice 100 with no window")
    check_eq(sim.invoices()["gaps"], [4] + list(range(6, 100)), "gaps up to 100")


@suite.test
def credit_notes_922_and_accepted(ctx):
    sim = Sim(ctx).start()
    h = sim.device()
    check_accepted(sim.save(h, build(1, SODA)), 1, 1, "the sale (116.00)")
    half = [item("SODA", "1", 5800, "B")]
    expect_code(sim.save(h, build(2, half, rcpt="R", org=9, rfd="01")), "922",
                "credit note of an invoice never accepted")
    expect_code(sim.save(h, build(2, SODA + half, rcpt="R", org=1, rfd="01")), "922",
                "credit note beyond the original")
    expect_code(sim.save(h, build(2, half, rcpt="R", org=1)), "910",
                "credit note without rfdRsnCd", "rfdRsnCd")
    expect_code(sim.save(h, build(2, half, rcpt="R", org=0, rfd="01")), "910",
                "credit note without orgInvcNo", "orgInvcNo")
    expect_code(sim.save(h, build(2, half, rfd="01")), "910", "a sale with rfdRsnCd",
                "rfdRsnCd")
    check_accepted(sim.save(h, build(2, half, rcpt="R", org=1, rfd="01")), 1, 2,
                   "credit note of half (its own curRcptNo)")
    check_accepted(sim.save(h, build(3, half, rcpt="R", org=1, rfd="02")), 2, 3,
                   "a second credit note (allowed by default)")
    expect_code(sim.save(h, build(4, [item("SODA", "0.01", 100, "B")], rcpt="R", org=1,
                                  rfd="01")), "922", "anything more goes beyond")
    expect_code(sim.save(h, build(4, half, rcpt="R", org=2, rfd="01")), "922",
                "a credit note of a credit note")
    check_accepted(sim.save(h, build(4, SODA)), 2, 4, "the next sale: curRcptNo of sales")
    inv = sim.invoices()
    check_eq([(i["invcNo"], i["rcptTyCd"], i["orgInvcNo"], i["totAmt"]) for i in inv["invoices"]],
             [(1, "S", 0, 116.0), (2, "R", 1, 58.0), (3, "R", 1, 58.0), (4, "S", 0, 116.0)],
             "kept")
    check_eq(inv["stats"]["refused_by_code"], {"910": 3, "922": 4}, "refusals")
    # one credit note only: at start, or at run time
    sim2 = Sim(ctx, state=ctx.path("single.db"), extra=["--single-credit-note"]).start()
    h2 = sim2.device()
    check_accepted(sim2.save(h2, build(1, SODA)), 1, 1, "sale")
    check_accepted(sim2.save(h2, build(2, half, rcpt="R", org=1, rfd="01")), 1, 2, "note 1")
    expect_code(sim2.save(h2, build(3, half, rcpt="R", org=1, rfd="01")), "922",
                "a second credit note with --single-credit-note")
    check_eq(sim2.faults(multiple_credit_notes=True)["multiple_credit_notes"], True, "knob")
    check_accepted(sim2.save(h2, build(3, half, rcpt="R", org=1, rfd="01")), 2, 3, "now allowed")


@suite.test
def select_invoice_details_found_and_not_found(ctx):
    sim = Sim(ctx).start()
    h = sim.device()
    saved = check_accepted(sim.save(h, build(1, BASKET)), 1, 1, "sale")
    r = sim.select(h, 1)
    expect_code(r, "000", "select 1")
    sl = r["data"]["salesList"]
    check_eq(len(sl), 1, "one entry in salesList")
    e = sl[0]
    check_eq((e["invcNo"], e["trdInvcNo"], e["rcptTyCd"], e["totAmt"]),
             (1, "T01-20261203-00001", "S", 409.99), "the entry")
    rc = e["receipt"]
    check_eq((rc["curRcptNo"], rc["totRcptNo"], rc["intrlData"], rc["rcptSign"]),
             (1, 1, saved["intrlData"], saved["rcptSign"]), "the receipt as signed")
    check(DASHED_DT_RE.match(rc["sdcDateTime"]), "the other date format: %r" % rc["sdcDateTime"])
    d = saved["sdcDateTime"]
    check_eq(rc["sdcDateTime"], "%s-%s-%s %s:%s:%s.0" % (d[:4], d[4:6], d[6:8], d[8:10],
                                                         d[10:12], d[12:14]),
             "the same moment as the save's sdcDateTime")
    missing = sim.select(h, 2)
    expect_code(missing, "001", "select 2")
    check_eq(missing["resultMsg"], "There is no search result", "001 message")
    expect_code(sim.etims("selectInvoiceDetails", {"invcNo": "x"}, h), "910", "bad invcNo",
                "invcNo")
    expect_code(sim.select({"tin": TIN, "bhfId": BHF, "cmcKey": "x"}, 1), "901", "bad key")
    # another device of the same taxpayer branch sees the branch's invoices
    h2 = sim.device("T02")
    expect_code(sim.select(h2, 1), "000", "select from another device of the branch")


@suite.test
def fail_rate_one_answers_999_and_keeps_nothing(ctx):
    sim = Sim(ctx, extra=["--fail-rate", "1", "--seed", "7"]).start()
    h = sim.device()
    for n in (1, 2, 1):
        expect_code(sim.save(h, build(n, SODA)), "999", "save %d" % n)
    check_eq(kept(sim), [], "nothing kept")
    check_eq(sim.invoices()["stats"]["refused_by_code"], {"999": 3}, "999 counted")
    check_eq(sim.faults(fail_rate=0)["fail_rate"], 0, "fail_rate off")
    check_accepted(sim.save(h, build(1, SODA)), 1, 1, "then accepted")
    # half: some of each, reproducibly for one seed
    sim.faults(fail_rate=0.5)
    codes = [sim.save(h, build(n, SODA))["resultCd"] for n in range(2, 42)]
    check("999" in codes and "000" in codes, "fail_rate 0.5 gives both: %r" % codes)
    check_eq(sorted(set(codes)), ["000", "999"], "only 000 and 999")


@suite.test
def outage_toggled_at_run_time_and_scheduled(ctx):
    sim = Sim(ctx).start()
    h = sim.device()
    check_eq(sim.faults(outage=True)["outage"], True, "outage on")
    status, body = http("POST", sim.port, "/etims-api/saveTrnsSalesOsdc",
                        body=json.dumps(build(1, SODA)), headers=h)
    check_eq(status, 503, "a save during the outage")
    try:
        json.loads(body)
        check(False, "the 503 carries JSON: %r" % body)
    except ValueError:
        pass
    status, _ = http("POST", sim.port, "/etims-api/selectInitOsdcInfo",
                     body=json.dumps({"tin": TIN, "bhfId": BHF, "dvcSrlNo": "T09"}))
    check_eq(status, 503, "init during the outage")
    status, _ = http("GET", sim.port, "/_sim/health")
    check_eq(status, 200, "the control endpoints still answer")
    check_eq(kept(sim), [], "nothing kept during the outage")
    check_eq(sim.faults(outage=False)["outage"], False, "outage off")
    check_accepted(sim.save(h, build(1, SODA)), 1, 1, "after the outage")
    # scheduled: 1 s out of every 2 s
    sim.faults(outage_every_s=2, outage_for_s=1)

    def status_of_save():
        s, _ = http("POST", sim.port, "/etims-api/selectInvoiceDetails",
                    body=json.dumps({"invcNo": 1}), headers=h)
        return s

    wait_for(lambda: status_of_save() == 503, 10, "a scheduled outage")
    wait_for(lambda: status_of_save() == 200, 10, "the end of the scheduled outage")
    sim.faults(outage=False)
    check_eq(status_of_save(), 200, "outage false ends the schedule")
    for knobs, what in (({"fail_rate": 2}, "fail_rate"), ({"bogus": 1}, "bogus"),
                        ({"outage": "yes"}, "outage"), ({"latency_ms": -1}, "latency_ms")):
        status, reply = sim.post("/_sim/faults", knobs)
        check(status == 400 and what in reply["error"]["message"],
              "POST /_sim/faults %r: %s %r" % (knobs, status, reply))


@suite.test
def latency_delays_every_answer(ctx):
    sim = Sim(ctx, extra=["--latency-ms", "400"]).start()
    t0 = time.monotonic()
    expect_code(sim.init(), "000", "init")
    check(time.monotonic() - t0 >= 0.4, "the answer waited 400 ms")
    sim.faults(latency_ms=0, outage=True)
    t0 = time.monotonic()
    status, _ = http("POST", sim.port, "/etims-api/selectInitOsdcInfo", body="{}")
    check(status == 503 and time.monotonic() - t0 < 0.4, "no latency once set to 0")


@suite.test
def timeout_after_accept_keeps_the_invoice_and_holds_the_reply(ctx):
    sim = Sim(ctx, extra=["--timeout-after-accept", "1"]).start()
    h = sim.device()
    t0 = time.monotonic()
    try:
        sim.save(h, build(1, SODA), timeout=2)
        check(False, "the save was answered")
    except (socket.timeout, TimeoutError):
        pass
    check(time.monotonic() - t0 >= 1.9, "the client waited its 2 s")
    check_eq(kept(sim), [1], "yet the invoice is kept")
    check_eq(sim.invoices()["stats"]["held"], 1, "held counted")
    # the held connection is let go once its client gave up
    wait_for(lambda: sim.faults()["held_now"] == 0, 5, "the held reply released")
    sim.faults(timeout_after_accept=0)
    expect_code(sim.save(h, build(1, SODA)), "994", "the resend")
    check_eq(sim.select(h, 1)["data"]["salesList"][0]["receipt"]["curRcptNo"], 1,
             "selectInvoiceDetails recovers the signature")
    # others are served while one reply is held
    sim.faults(timeout_after_accept=1)
    conn = socket.create_connection(("127.0.0.1", sim.port))
    body = json.dumps(build(2, SODA)).encode()
    head = ("POST /etims-api/saveTrnsSalesOsdc HTTP/1.1\r\nHost: x\r\nContent-Type: "
            "application/json\r\ntin: %s\r\nbhfId: %s\r\ncmcKey: %s\r\nContent-Length: %d\r\n"
            "\r\n" % (TIN, BHF, h["cmcKey"], len(body))).encode()
    conn.sendall(head + body)
    wait_for(lambda: sim.faults()["held_now"] == 1, 5, "the reply of invoice 2 held")
    t0 = time.monotonic()
    expect_code(sim.select(h, 2), "000", "a select while the reply is held")
    check(time.monotonic() - t0 < 1.5, "answered at once")
    # SIGTERM with a reply held: exits promptly, 0
    t0 = time.monotonic()
    check_eq(sim.stop(), 0, "exit code with a reply held")
    check(time.monotonic() - t0 < 5, "stopped in %.1f s" % (time.monotonic() - t0))
    conn.close()


@suite.test
def a_restart_on_the_same_state_remembers(ctx):
    port = free_port()
    sim = Sim(ctx, port=port).start()
    h = sim.device()
    first = check_accepted(sim.save(h, build(1, SODA)), 1, 1, "sale 1")
    expect_code(sim.save(h, build(1, [])), "910", "a refusal")
    check_eq(sim.stop(), 0, "SIGTERM exit code")
    sim.start()
    again = sim.init()
    expect_code(again, "902", "the device is still installed")
    check_eq(again["data"]["info"]["cmcKey"], h["cmcKey"], "with the same cmcKey")
    expect_code(sim.save(h, build(1, SODA)), "994", "invoice 1 remembered")
    check_accepted(sim.save(h, build(2, SODA)), 2, 2, "the counters go on")
    r = sim.select(h, 1)
    check_eq(r["data"]["salesList"][0]["receipt"]["rcptSign"], first["rcptSign"],
             "the signature as first given")
    inv = sim.invoices()
    check_eq((kept(sim), inv["duplicates_refused"], inv["stats"]["refused_by_code"]),
             ([1, 2], 1, {"910": 1, "994": 1}), "the bookkeeping survives")
    # the body is kept in full in the state file
    sim.stop()
    db = sqlite3.connect(sim.state)
    body = json.loads(db.execute("SELECT body FROM invoices WHERE invc_no = 1").fetchone()[0])
    db.close()
    check_eq(body, build(1, SODA), "the body as sent")


@suite.test
def concurrent_saves_are_numbered_once(ctx):
    sim = Sim(ctx, extra=["--latency-ms", "20"]).start()
    h = sim.device()
    results = {}

    def send(key, n):
        results[key] = sim.save(h, build(n, SODA), timeout=30)

    # 40 distinct numbers at once, and 10 copies of one number at once
    threads = [threading.Thread(target=send, args=(("d", n), n)) for n in range(1, 41)]
    threads += [threading.Thread(target=send, args=(("s", i), 41)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    distinct = [results[("d", n)] for n in range(1, 41)]
    check(all(r["resultCd"] == "000" for r in distinct), "40 distinct saves all accepted")
    same = sorted(results[("s", i)]["resultCd"] for i in range(10))
    check_eq(same, ["000"] + ["994"] * 9, "one copy of invoice 41 accepted, the others 994")
    tot = sorted(r["data"]["totRcptNo"] for r in distinct + [results[("s", i)] for i in range(10)]
                 if r["resultCd"] == "000")
    check_eq(tot, list(range(1, 42)), "totRcptNo 1..41, each once")
    inv = sim.invoices()
    check_eq((kept(sim), inv["gaps"], inv["duplicates_refused"]), (list(range(1, 42)), [], 9),
             "the simulator's books")
    # killed outright: what it answered 000 to is still there
    sim.kill()
    sim.start()
    check_eq(kept(sim), list(range(1, 42)), "after SIGKILL")


@suite.test
def invoices_filter_by_branch_and_control_is_loopback(ctx):
    sim = Sim(ctx).start()
    h = sim.device()
    check_accepted(sim.save(h, build(1, SODA)), 1, 1, "sale")
    check_eq(len(sim.invoices("")["invoices"]), 1, "no filter: all")
    check_eq(sim.invoices("?tin=A000000000Z&bhfId=00")["invoices"], [], "another tin: none")
    status, _ = http("GET", sim.port, "/etims-api/saveTrnsSalesOsdc")
    check_eq(status, 405, "GET on a POST endpoint")
    status, _ = http("POST", sim.port, "/etims-api/bogus", body="{}")
    check_eq(status, 404, "an unknown endpoint")


@suite.test
def command_line_errors(ctx):
    state = ctx.path("s.db")
    port = "127.0.0.1:%d" % free_port()
    for args, rc, words in (
            (["sim"], 2, ["etims"]),
            (["sim", "bogus"], 2, ["unknown subcommand 'bogus'", "etims"]),
            (["sim", "etims", "--state", state], 2, ["--listen is required"]),
            (["sim", "etims", "--listen", port], 2, ["--state is required"]),
            (["sim", "etims", "--listen", port, "--state", state, "--bogus"], 2, ["--bogus"]),
            (["sim", "etims", "--listen", port, "--state", state, "--outage-every", "5"], 2,
             ["--outage-for"]),
            (["sim", "etims", "--listen", port, "--state", state, "--fail-rate", "1.5"], 1,
             ["--fail-rate"]),
            (["sim", "etims", "--listen", port, "--state", state, "--timeout-after-accept",
              "x"], 1, ["--timeout-after-accept"]),
            (["sim", "etims", "--listen", port, "--state", state, "--latency-ms", "-1"], 1,
             ["--latency-ms"]),
            (["sim", "etims", "--listen", port, "--state", state, "--sequence-window", "a"], 1,
             ["--sequence-window"]),
            (["sim", "etims", "--listen", port, "--state", state, "--seed", "-3"], 1,
             ["--seed"]),
            (["sim", "etims", "--listen", port, "--state", state, "--outage-every", "5",
              "--outage-for", "5"], 1, ["--outage-for"]),
            (["sim", "card"], 1, ["duka sim card: not built yet"]),
            (["sim", "card"], 1, ["duka sim card: not built yet"])):
        expect_error(args, words, rc=rc)
    check(not os.path.exists(state), "no state file made by a refused start")
    # a database that is not a simulator's
    other = ctx.path("till.db")
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t(x)")
    db.commit()
    db.close()
    expect_error(["sim", "etims", "--listen", port, "--state", other], ["not a simulator"],
                 rc=1)
    # a busy port
    sim = Sim(ctx).start()
    expect_error(["sim", "etims", "--listen", "127.0.0.1:%d" % sim.port, "--state",
                  ctx.path("t.db")], ["already in use"], rc=1)
    # the start line
    with open(sim.log_path()) as f:
        first = f.readline().strip()
    check_eq(first, "duka sim etims listening on http://127.0.0.1:%d/etims-api (state %s)"
             % (sim.port, sim.state), "the start line")


if __name__ == "__main__":
    suite.main()
