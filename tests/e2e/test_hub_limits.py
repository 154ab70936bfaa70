#!/usr/bin/env python3
"""Limits on what comes from outside, at their edges, over real HTTP.

- JSON depth (DUKA_JSON_DEPTH_MAX = 8): a push body exactly 8 levels deep is applied; 9 is
  400 invalid_body naming the limit and where, and nothing of the batch is written; a body
  far deeper than jansson parses (100,000 levels) is 400 invalid_json; the hub stays up. The
  till's local API (POST /api/sales, /api/offline) refuses 9 levels the same way and writes
  nothing.
- Numbers and strings: the largest sale every bound allows (quantity, price, SKU, name,
  reference, time) is applied with its total exact; one past each bound is rejected with the
  field named, and audited; an integer beyond int64 makes the body invalid JSON (400) — no
  wrap-around, nothing written.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, Till, check, check_eq, free_port, http_json, log, push,  # noqa: E402
                     queue, run_json, sale_command, sale_line, setup_business)

suite = Suite("hub_limits")

DEPTH_MAX = 8  # DUKA_JSON_DEPTH_MAX


def nested(k):
    """k nested arrays: [] for 1, [[]] for 2 …"""
    v = []
    for _ in range(k - 1):
        v = [v]
    return v


def error_of(body):
    e = (body or {}).get("error") or {}
    return e.get("code"), e.get("message") or ""


def milk(seq):
    return sale_command("T01", seq, [sale_line("MILK500", "Milk 500ml", 1000, 6500, "C")])


@suite.test
def push_body_depth_at_the_limit_is_applied_one_more_is_refused(ctx):
    biz = setup_business(ctx.tmp, free_port())
    port, tok = biz.hub.port, biz.tokens["T01"]
    # body {1} commands [2] a command {3} extra [4..8]: exactly the limit.
    at = milk(1)
    at["extra"] = nested(DEPTH_MAX - 3)
    st, body = push(port, tok, [at])
    check_eq(st, 200, "push %d levels deep (reply %r)" % (DEPTH_MAX, body))
    check_eq(body["results"][0]["status"], "applied", "the command at the limit")

    # One more level, in the payload of the second command of a batch: the batch is refused.
    over = milk(3)
    over["payload"]["note"] = nested(DEPTH_MAX - 3)  # payload is level 4
    st, body = push(port, tok, [milk(2), over])
    code, msg = error_of(body)
    log("  %d levels: %s %s: %s" % (DEPTH_MAX + 1, st, code, msg))
    check_eq((st, code), (400, "invalid_body"), "push %d levels deep" % (DEPTH_MAX + 1))
    check("JSON depth limit of %d levels" % DEPTH_MAX in msg, "the error names the limit: %r" % msg)
    check("body.commands[1].payload.note[0][0][0][0]" in msg, "the error says where: %r" % msg)

    # Far deeper than jansson parses: refused by the parser, the hub unharmed.
    deep = b"[" * 100000 + b"]" * 100000
    st, body = push(port, tok, deep)
    code, msg = error_of(body)
    log("  100,000 levels: %s %s: %s" % (st, code, msg))
    check_eq((st, code), (400, "invalid_json"), "push 100,000 levels deep")
    st, body = http_json("GET", port, "/v1/health")
    check_eq((st, (body or {}).get("status")), (200, "ok"), "health after the deep bodies")
    r = biz.report()
    check_eq(r["receipts"], [at["payload"]["receipt_no"]], "hub receipts: only the body at the limit")


@suite.test
def till_api_bodies_have_the_same_depth_limit(ctx):
    biz = setup_business(ctx.tmp, free_port())
    till = Till(biz.tills["T01"], free_port()).start()

    def post(path, obj):
        return till.post(path, obj)

    # body {1} items [2] an item {3} x [4..8]: exactly the limit, so the depth check lets it
    # through to the sale reader, which refuses the member it does not know (a misspelt
    # member must never be ignored: test_sale_input.py).
    st, body = post("/api/sales", {"items": [{"sku": "MILK500", "qty": 1,
                                              "x": nested(DEPTH_MAX - 3)}], "pay": "cash"})
    code, msg = error_of(body)
    check_eq((st, code), (400, "invalid_sale"), "POST /api/sales %d levels deep (reply %r)"
             % (DEPTH_MAX, body))
    check("items[0].x: unknown member" in msg, "refused by the sale reader, not the depth: %r"
          % msg)
    st, body = post("/api/sales", {"items": [{"sku": "MILK500", "qty": 1}], "pay": "cash"})
    check_eq(st, 201, "POST /api/sales (reply %r)" % body)
    st, body = post("/api/sales", {"items": [{"sku": "MILK500", "qty": 1,
                                              "x": nested(DEPTH_MAX - 2)}], "pay": "cash"})
    code, msg = error_of(body)
    log("  /api/sales %d levels: %s %s: %s" % (DEPTH_MAX + 1, st, code, msg))
    check_eq((st, code), (400, "invalid_body"), "POST /api/sales %d levels deep" % (DEPTH_MAX + 1))
    check("JSON depth limit of %d levels" % DEPTH_MAX in msg and "body.items[0].x[0][0][0][0][0]"
          in msg, "the error names the limit and where: %r" % msg)
    before = till.status()["offline_switch"]
    st, body = post("/api/offline", {"offline": True, "x": nested(DEPTH_MAX)})
    check_eq((st, error_of(body)[0]), (400, "invalid_body"), "POST /api/offline too deep")
    check_eq(till.status()["offline_switch"], before, "the offline switch after a refused body")
    items = queue(biz.tills["T01"])
    check_eq(len(items), 1, "outbox items: only the sale at the limit")


@suite.test
def numbers_and_strings_at_their_bounds(ctx):
    biz = setup_business(ctx.tmp, free_port())
    port, tok = biz.hub.port, biz.tokens["T01"]
    qty_max, price_max, time_max = 1000000000, 1000000000, 253402300799999
    line = sale_line("S" * 64, "n" * 128, qty_max, price_max, "B")
    big = sale_command("T01", 1, [line], created_ms=time_max,
                       payments=[{"method": "card", "amount_cents": line["line_total_cents"],
                                  "reference": "A" * 64, "status": "pending_capture"}])
    st, body = push(port, tok, [big])
    check_eq(st, 200, "push of the largest sale (reply %r)" % body)
    check_eq(body["results"][0]["status"], "applied", "the largest sale (%r)" % body["results"][0])

    def past(field, value, says, where="payload"):
        c = milk(2)  # a new command id each time
        holder = c
        if where == "payload":
            holder = c["payload"]
        elif where in ("lines", "payments"):
            holder = c["payload"][where][0]
        holder[field] = value
        return c, says

    cases = [
        past("qty_milli", 0, "lines[0].qty_milli: 0 out of range", "lines"),
        past("qty_milli", -1000, "lines[0].qty_milli: -1000 out of range", "lines"),
        past("qty_milli", qty_max + 1, "lines[0].qty_milli: 1000000001 out of range", "lines"),
        past("unit_price_cents", -1, "lines[0].unit_price_cents: -1 out of range", "lines"),
        past("unit_price_cents", price_max + 1, "lines[0].unit_price_cents: 1000000001", "lines"),
        past("sku", "S" * 65, "lines[0].sku: longer than 64", "lines"),
        past("name", "n" * 129, "lines[0].name: longer than 128", "lines"),
        past("total_cents", 2 ** 63 - 1, "total_cents: 9223372036854775807, but the lines add up"),
        past("created_ms", -1, "created_ms: -1 out of range"),
        past("created_ms", time_max + 1, "created_ms: 253402300800000 out of range"),
        past("receipt_no", "T01-20261121-" + "9" * 36, "receipt_no: longer than 48"),
        past("amount_cents", -1, "payments[0].amount_cents: -1 out of range", "payments"),
        past("reference", "A" * 65, "payments[0].reference: longer than 64", "payments"),
        past("id", "0" * 37, "commands[13].id: missing or not a UUID", "command"),
    ]
    st, body = push(port, tok, [c for c, _ in cases])
    check_eq(st, 200, "push of the out-of-bounds commands (reply %r)" % body)
    failures = []
    for i, ((c, says), r) in enumerate(zip(cases, body["results"])):
        code, msg = error_of(r)
        if r.get("status") != "rejected" or says not in msg:
            failures.append("case %d: %r, want rejected with %r" % (i, r, says))
    check(not failures, "\n  " + "\n  ".join(failures))
    log("  %d commands one past a bound: each rejected, naming its field" % len(cases))

    # Integers past int64 are not JSON the hub reads: the whole body is refused.
    for text in ("9223372036854775808", "-9223372036854775809", "1" * 400):
        c = milk(3)
        raw = json.dumps({"commands": [c]}).replace('"total_cents": %d' % c["payload"]["total_cents"],
                                                    '"total_cents": %s' % text)
        check(text in raw, "the test did not place %s" % text)
        st, body = push(port, tok, raw)
        check_eq((st, error_of(body)[0]), (400, "invalid_json"), "total_cents %s..." % text[:20])

    r = biz.report()
    check_eq(r["receipts"], [big["payload"]["receipt_no"]], "hub receipts: only the largest sale")
    check_eq(r["total_cents"], line["line_total_cents"], "hub total_cents (exact)")
    events = run_json(["hub", "audit", "--db", biz.hub_db, "--business", biz.business_id,
                       "--json"])["events"]
    refused = [e for e in events if e["event"] in ("invalid_sale", "invalid_command")]
    check_eq(len(refused), len(cases), "audited refusals")
    # Commands like the ones the cases were made from apply: each failed for its own field.
    fixed = [milk(4 + i) for i in range(3)]
    st, body = push(port, tok, fixed)
    check_eq([x["status"] for x in body["results"]], ["applied"] * 3, "commands within bounds")


if __name__ == "__main__":
    suite.main()
