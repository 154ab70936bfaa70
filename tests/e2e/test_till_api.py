#!/usr/bin/env python3
"""The till's local API and web UI at the HTTP level (docs/PROTOCOL.md, "The till's local API";
docs/SECURITY.md, "Someone else on the till's network"). The browser tests (tests/ui) drive the
screens; this checks the rules under them:
- every write without a session is 401 and changes nothing (outbox, offline switch);
- login: a wrong PIN is 401 with the tries left, the fifth locks the cashier (423, even with
  the right PIN), a PIN that is not 4-8 digits is 400 and not counted; by id or by name;
- a sale made in a session carries its cashier (reply, receipt text, the hub's report);
  logout ends the session (the token is refused after);
- the offline switch is a manager's; a cashier gets 403;
- reads are open on loopback with a local Host only (a DNS-rebinding Host is 401), and with a
  session from anywhere;
- the route table: 404 for an unknown path, 405 with Allow for a known one, 400 naming a bad
  query argument; the embedded UI: HTML with a CSP, ETag and 304, JavaScript and CSS types.
"""

import json
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DEFAULT_CASHIER_NAME, DEFAULT_CASHIER_PIN, Suite, Till, check,  # noqa: E402
                     check_eq, free_port, http, http_json, log, run_json, setup_business, wait_for)

suite = Suite("till_api")

WRITES = [
    ("POST", "/api/sales", {"items": [{"sku": "MILK500", "qty": 1}], "pay": "cash"}),
    ("POST", "/api/sync", {}),
    ("POST", "/api/queue/retry", {"all": True}),
    ("POST", "/api/offline", {"offline": True}),
    ("POST", "/api/logout", {}),
]


def error_code(body):
    return (body or {}).get("error", {}).get("code")


def outbox_rows(db):
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        con.close()


def cashier_id(till, name):
    st, body = http_json("GET", till.port, "/api/cashiers")
    check_eq(st, 200, "GET /api/cashiers")
    ids = [c["id"] for c in body["cashiers"] if c["name"] == name]
    check(ids, "cashier %s not on the till: %r" % (name, body))
    check(all("pin_hash" not in c for c in body["cashiers"]), "a PIN hash in /api/cashiers")
    return ids[0]


def login(till, body):
    return http_json("POST", till.port, "/api/login", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})


def start(ctx, extra_cashiers=()):
    biz = setup_business(ctx.tmp, free_port())
    for name, role, pin in extra_cashiers:
        run_json(["cashier", "add", "--db", biz.hub_db, "--business", biz.business_id, "--name",
                  name, "--role", role, "--pin", pin, "--json"])
    till = Till(biz.tills["T01"], free_port()).start()
    names = [DEFAULT_CASHIER_NAME] + [c[0] for c in extra_cashiers]

    def all_pulled():
        st, body = http_json("GET", till.port, "/api/cashiers")
        return st == 200 and sorted(c["name"] for c in body["cashiers"]) == sorted(names)
    wait_for(all_pulled, 30, "the cashiers pulled by the till")
    return biz, till


@suite.test
def writes_need_a_session(ctx):
    biz, till = start(ctx)
    db = biz.tills["T01"]
    before = outbox_rows(db)
    for method, path, body in WRITES:
        for headers, what in (({"Content-Type": "application/json"}, "no session"),
                              ({"Content-Type": "application/json",
                                "Authorization": "Bearer " + "x" * 43}, "an unknown token"),
                              ({"Content-Type": "application/json",
                                "Cookie": "duka_session=nonsense"}, "a bad cookie")):
            st, reply = http_json(method, till.port, path, body=json.dumps(body), headers=headers)
            check_eq((st, error_code(reply)), (401, "unauthorized"), "%s %s with %s" % (method, path, what))
    check_eq(outbox_rows(db), before, "outbox rows after refused writes")
    check_eq(till.status()["offline_switch"], False, "the offline switch after a refused write")
    # With the session, the same sale goes through.
    st, reply = till.post("/api/sales", WRITES[0][2])
    check_eq(st, 201, "POST /api/sales with a session (reply %r)" % (reply,))
    check_eq(outbox_rows(db), before + 1, "outbox rows after one sale")


@suite.test
def login_pins_and_lockout(ctx):
    biz, till = start(ctx, [("Amina", "cashier", "1234")])
    amina = cashier_id(till, "Amina")
    for bad in ("12", "123456789", "12a4", ""):
        st, body = login(till, {"cashier_id": amina, "pin": bad})
        check_eq((st, error_code(body)), (400, "invalid_pin"), "login with PIN %r" % bad)
    for tries_left in (4, 3, 2, 1):
        st, body = login(till, {"cashier_id": amina, "pin": "9999"})
        check_eq((st, error_code(body)), (401, "wrong_pin"), "wrong PIN, %d tries left" % tries_left)
        check("Amina" in body["error"]["message"], "the message names the cashier: %r" % body)
    st, body = login(till, {"cashier_id": amina, "pin": "9999"})
    check_eq((st, error_code(body)), (423, "locked"), "the fifth wrong PIN")
    log("  locked: %s" % body["error"]["message"])
    st, body = login(till, {"cashier_id": amina, "pin": "1234"})
    check_eq((st, error_code(body)), (423, "locked"), "the right PIN while locked")
    # Another cashier is not locked; by name works too; unknown ones are 404.
    st, body = login(till, {"cashier": DEFAULT_CASHIER_NAME, "pin": DEFAULT_CASHIER_PIN})
    check_eq(st, 200, "login by name (reply %r)" % (body,))
    check_eq(body["cashier"]["name"], DEFAULT_CASHIER_NAME, "the cashier of the session")
    for bad in ({"cashier": "Nobody", "pin": "1234"},
                {"cashier_id": "00000000-0000-4000-8000-000000000000", "pin": "1234"}):
        st, body = login(till, bad)
        check_eq((st, error_code(body)), (404, "unknown_cashier"), "login as %r" % bad)
    for bad in ({"pin": "1234"}, {"cashier": "Amina"}, {"cashier": "Amina", "pin": 1234},
                {"cashier": "Amina", "cashier_id": amina, "pin": "1234"}):
        st, body = login(till, bad)
        check_eq(st, 400, "login with %r" % bad)


@suite.test
def sale_carries_its_cashier_and_logout_ends_it(ctx):
    biz, till = start(ctx, [("Amina", "cashier", "1234")])
    st, body = login(till, {"cashier": "Amina", "pin": "1234"})
    check_eq(st, 200, "login as Amina")
    token = body["token"]
    auth = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
    st, sale = http_json("POST", till.port, "/api/sales", headers=auth,
                         body=json.dumps({"items": [{"sku": "MILK500", "qty": 2}], "pay": "cash"}))
    check_eq(st, 201, "a sale in Amina's session (%r)" % (sale,))
    check_eq((sale.get("cashier") or {}).get("name"), "Amina", "the sale's cashier")
    rn = sale["receipt_no"]
    st, again = http_json("GET", till.port, "/api/sales/" + rn)
    check_eq(st, 200, "GET /api/sales/%s" % rn)
    check_eq((again["receipt_no"], again["cashier"]["name"], again["lines"][0]["sku"]),
             (rn, "Amina", "MILK500"), "the sale read back")
    st, text = http("GET", till.port, "/api/sales/%s/receipt.txt" % rn)
    text = text.decode()
    check(st == 200 and rn in text and "Amina" in text, "receipt.txt: %s %r" % (st, text))
    st, _ = http("GET", till.port, "/api/sales/T01-19990101-00001")
    check_eq(st, 404, "an unknown receipt")
    wait_for(lambda: rn in biz.report()["receipts"], 30, "the sale at the hub")
    per_cashier = {c["name"]: c["sales"] for c in biz.report().get("cashiers", [])}
    check_eq(per_cashier.get("Amina"), 1, "Amina's sales in the hub report (%r)" % per_cashier)
    # Logout: the token is refused from then on.
    st, _ = http_json("POST", till.port, "/api/logout", body=b"{}", headers=auth)
    check_eq(st, 200, "logout")
    st, body = http_json("POST", till.port, "/api/sales", headers=auth,
                         body=json.dumps({"items": [{"sku": "MILK500", "qty": 1}]}))
    check_eq((st, error_code(body)), (401, "unauthorized"), "a sale after logout")
    st, body = http_json("GET", till.port, "/api/session", headers=auth)
    check_eq(st, 401, "GET /api/session after logout")


@suite.test
def offline_switch_is_a_managers(ctx):
    biz, till = start(ctx, [("Amina", "cashier", "1234")])
    st, body = login(till, {"cashier": "Amina", "pin": "1234"})
    auth = {"Content-Type": "application/json", "Authorization": "Bearer " + body["token"]}
    st, body = http_json("POST", till.port, "/api/offline", headers=auth,
                         body=json.dumps({"offline": True}))
    check_eq((st, error_code(body)), (403, "manager_only"), "the offline switch by a cashier")
    check_eq(till.status()["offline_switch"], False, "the switch after the refusal")
    check_eq(till.set_offline(True)["offline_switch"], True, "the switch by the manager")


@suite.test
def reads_open_on_loopback_only(ctx):
    biz, till = start(ctx)
    for path in ("/api/status", "/api/catalog", "/api/history", "/api/queue", "/api/connectivity",
                 "/api/cashiers"):
        st, _ = http_json("GET", till.port, path)
        check_eq(st, 200, "GET %s from loopback" % path)
        st, body = http_json("GET", till.port, path, headers={"Host": "evil.example:8080"})
        check_eq((st, error_code(body)), (401, "unauthorized"),
                 "GET %s with a foreign Host (DNS rebinding)" % path)
        st, _ = http_json("GET", till.port, path, headers={"Host": "evil.example", **till.auth()})
        check_eq(st, 200, "GET %s with a foreign Host and a session" % path)
    for host in ("localhost:%d" % till.port, "127.0.0.1", "[::1]:8080", "127.1.2.3:9"):
        st, _ = http_json("GET", till.port, "/api/status", headers={"Host": host})
        check_eq(st, 200, "GET /api/status with Host %s" % host)
    # The light: green only with nothing pending and the hub answering.
    st = wait_for(lambda: (lambda s: s if s["light"] == "green" else None)(till.status()), 30,
                  "the light green")
    check_eq((st["pending"], st["connectivity"]), (0, "online"), "a green light's status")


@suite.test
def routes_and_assets(ctx):
    biz, till = start(ctx)
    st, body = http_json("GET", till.port, "/api/nothing")
    check_eq((st, error_code(body)), (404, "not_found"), "an unknown path")
    st, body = http_json("GET", till.port, "/api/sales")
    check_eq((st, error_code(body)), (405, "method_not_allowed"), "GET /api/sales")
    for path in ("/api/history?limit=abc", "/api/history?limit=0", "/api/queue?offset=-1",
                 "/api/queue?status=lost"):
        st, body = http_json("GET", till.port, path)
        check_eq((st, error_code(body)), (400, "invalid_query"), "GET %s" % path)
        check(path.split("?")[1].split("=")[0] in body["error"]["message"],
              "the message names the argument: %r" % body)
    st, body = till.post("/api/queue/retry", {"what": 1})
    check_eq(st, 400, "retry with a bad body")
    st, body = till.post("/api/queue/retry", {"command_id": "01a2ffff-0000-7000-8000-000000000000"})
    check_eq(st, 404, "retry of an unknown command")
    import http.client as httpclient
    conn = httpclient.HTTPConnection("127.0.0.1", till.port, timeout=10)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        page = r.read()
        check_eq(r.status, 200, "GET /")
        check(r.getheader("Content-Type", "").startswith("text/html"), "GET / type %r" % r.getheader("Content-Type"))
        check("default-src 'self'" in (r.getheader("Content-Security-Policy") or ""), "CSP of /")
        check(b'id="statusbar"' in page and b"/app.js" in page, "the page is the till's UI")
        etag = r.getheader("ETag")
        check(etag, "GET / has an ETag")
        conn.request("GET", "/", headers={"If-None-Match": etag})
        r = conn.getresponse()
        r.read()
        check_eq(r.status, 304, "GET / with its ETag")
        for path, ctype in (("/app.js", "text/javascript"), ("/app.css", "text/css"),
                            ("/favicon.svg", "image/svg+xml")):
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            n = len(body)
            # Nothing the page loads comes from elsewhere (the till works with no internet):
            # no absolute URL but the SVG namespace.
            for m in re.finditer(rb"(https?:)?//[A-Za-z0-9.-]+\.[a-z]{2,}", body + page):
                check(m.group(0) == b"http://www.w3.org",
                      "%s refers outside the till: %r" % (path, m.group(0)))
            check(r.status == 200 and r.getheader("Content-Type", "").startswith(ctype) and n > 100,
                  "GET %s: %s %s %d bytes" % (path, r.status, r.getheader("Content-Type"), n))
    finally:
        conn.close()


if __name__ == "__main__":
    suite.main()
