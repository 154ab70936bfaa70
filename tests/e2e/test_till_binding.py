#!/usr/bin/env python3
"""A device token belongs to one till database (issue 10: two tills initialised with one
token both sold, and their receipt numbers collided).

Raw HTTP, as the till will speak it (docs/PROTOCOL.md): every authenticated request may carry
`Duka-Till-Id: <uuid>`, and GET /v1/whoami `Duka-Till-Replace: 1`.

- The first id seen binds the token (audit till_bound); the same id again is fine; another id
  gets 409 token_in_use on whoami, push and pull — nothing applied — and an audit line.
- whoami with Duka-Till-Replace: 1 moves the token to the new database (audit
  till_replaced naming both); the old one is refused from then on.
- A malformed id: 400 invalid_till_id, nothing bound. No header: no check (older tills).
- A new token for the terminal (device revoke, then device add) starts unbound.
- whoami names the business and its KRA PIN and says whether the token is bound; every pull
  page carries {"business": {"name", "kra_pin"}}.
"""

import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, check_eq, free_port, http_json, push, run_json,  # noqa: E402
                     run_ok, sale_command, sale_line, setup_business)

suite = Suite("till_binding")

TILL_A = str(uuid.uuid4())
TILL_B = str(uuid.uuid4())


def req(biz, method, path, token=None, till=None, replace=False, body=None, terminal="T01"):
    headers = {"Authorization": "Bearer " + (token or biz.tokens[terminal])}
    if till is not None:
        headers["Duka-Till-Id"] = till
    if replace:
        headers["Duka-Till-Replace"] = "1"
    if body is not None:
        headers["Content-Type"] = "application/json"
    return http_json(method, biz.hub.port, path, body=body, headers=headers)


def a_sale(seq):
    import json
    line = sale_line("SUGAR1KG", "Sugar 1kg", 1000, 16500, "B")
    return json.dumps({"commands": [sale_command("T01", seq, [line])]})


def audit(biz):
    return run_json(["hub", "audit", "--db", biz.hub_db, "--business", biz.business_id,
                     "--json"])["events"]


def events_named(biz, name):
    return [e for e in audit(biz) if e["event"] == name]


def bound(biz, terminal="T01"):
    devices = run_json(["device", "list", "--db", biz.hub_db, "--business", biz.business_id,
                        "--json"])["devices"]
    return [d["till_bound"] for d in devices if d["terminal"] == terminal][0]


def check_in_use(status, body, what):
    check_eq(status, 409, "%s: status (body %r)" % (what, body))
    err = (body or {}).get("error", {})
    check_eq(err.get("code"), "token_in_use", "%s: error code" % what)
    msg = err.get("message", "")
    check(msg.startswith("the token of terminal T01 is in use by another till database (since ")
          and msg.endswith("Z): run duka till init --replace on the till that should keep it, "
                           "or issue a new token (duka device revoke, then duka device add)"),
          "%s: message %r" % (what, msg))


@suite.test
def another_till_database_is_refused_on_whoami_push_and_pull(ctx):
    biz = setup_business(ctx.tmp, free_port(), offline_init=True)
    check(not bound(biz), "a new token is bound to no till")
    status, who = req(biz, "GET", "/v1/whoami", till=TILL_A)
    check_eq(status, 200, "whoami from the first till (body %r)" % who)
    check_eq((who.get("terminal"), who.get("till_bound"), who.get("business_name"),
              who.get("kra_pin")), ("T01", True, "Duka Test Shop", ""), "whoami")
    check(bound(biz), "device list: till_bound after the first request")
    check_eq(len(events_named(biz, "till_bound")), 1, "audit till_bound")
    check(TILL_A in events_named(biz, "till_bound")[0]["detail"], "till_bound names the till")

    # The same till again: fine, nothing more written.
    status, _ = req(biz, "GET", "/v1/whoami", till=TILL_A)
    check_eq(status, 200, "whoami from the same till")
    check_eq(len(events_named(biz, "till_bound")), 1, "no second till_bound")

    # Another till database with the same token: 409 everywhere, nothing applied.
    status, body = req(biz, "GET", "/v1/whoami", till=TILL_B)
    check_in_use(status, body, "whoami from another till")
    status, body = req(biz, "POST", "/v1/push", till=TILL_B, body=a_sale(1))
    check_in_use(status, body, "push from another till")
    check_eq(biz.hub_sales(), 0, "sales after a refused push")
    status, body = req(biz, "GET", "/v1/pull?cursor=0", till=TILL_B)
    check_in_use(status, body, "pull from another till")
    # A replace header on push is not a replacement (only whoami moves a token).
    status, body = req(biz, "POST", "/v1/push", till=TILL_B, replace=True, body=a_sale(1))
    check_in_use(status, body, "push with Duka-Till-Replace")
    check_eq(biz.hub_sales(), 0, "sales after refused pushes")
    refusals = events_named(biz, "token_in_use")
    check_eq(len(refusals), 4, "audit token_in_use: one per refused request")
    check(any("POST /v1/push" in e["detail"] and TILL_B in e["detail"] and TILL_A in e["detail"]
              for e in refusals), "token_in_use names the request and both tills: %r" % refusals)

    # The bound till pushes and pulls as ever; so does a request without the header.
    status, body = req(biz, "POST", "/v1/push", till=TILL_A, body=a_sale(1))
    check_eq((status, body["results"][0]["status"]), (200, "applied"), "push from the bound till")
    status, body = req(biz, "POST", "/v1/push", body=a_sale(2))
    check_eq((status, body["results"][0]["status"]), (200, "applied"), "push without the header")
    status, body = req(biz, "GET", "/v1/pull?cursor=0")
    check_eq(status, 200, "pull without the header")
    check_eq(biz.hub_sales(), 2, "sales")


@suite.test
def replace_moves_the_token_to_the_new_database(ctx):
    biz = setup_business(ctx.tmp, free_port(), offline_init=True)
    check_eq(req(biz, "GET", "/v1/pull?cursor=0", till=TILL_A)[0], 200, "pull binds")
    status, who = req(biz, "GET", "/v1/whoami", till=TILL_B, replace=True)
    check_eq((status, who.get("till_bound")), (200, True), "whoami with Duka-Till-Replace: 1")
    moved, = events_named(biz, "till_replaced")
    check(TILL_A in moved["detail"] and TILL_B in moved["detail"],
          "till_replaced names the old and the new till: %r" % moved)
    status, body = req(biz, "POST", "/v1/push", till=TILL_A, body=a_sale(1))
    check_in_use(status, body, "push from the replaced till")
    status, body = req(biz, "POST", "/v1/push", till=TILL_B, body=a_sale(1))
    check_eq((status, body["results"][0]["status"]), (200, "applied"), "push from the new till")
    # Replace to the id it already has: nothing to do, no event.
    check_eq(req(biz, "GET", "/v1/whoami", till=TILL_B, replace=True)[0], 200, "replace again")
    check_eq(len(events_named(biz, "till_replaced")), 1, "no second till_replaced")


@suite.test
def a_malformed_till_id_is_refused_and_binds_nothing(ctx):
    biz = setup_business(ctx.tmp, free_port(), offline_init=True)
    for bad in ("", "not-a-uuid", TILL_A.upper(), TILL_A.replace("-", ""), TILL_A + "0"):
        for method, path, body in (("GET", "/v1/whoami", None), ("GET", "/v1/pull", None),
                                   ("POST", "/v1/push", a_sale(1))):
            status, reply = req(biz, method, path, till=bad, body=body)
            check_eq(status, 400, "%s %s with Duka-Till-Id %r (reply %r)" % (method, path, bad,
                                                                           reply))
            check_eq(reply["error"]["code"], "invalid_till_id", "error code")
            check("Duka-Till-Id" in reply["error"]["message"], "message names the header")
    check(not bound(biz), "nothing bound by malformed ids")
    check_eq(biz.hub_sales(), 0, "nothing applied")
    # Authentication comes first: a bad token with a till id is 401 and binds nothing.
    status, _ = req(biz, "GET", "/v1/whoami", token="duka1.1." + "0" * 64, till=TILL_A)
    check_eq(status, 401, "a wrong token with a till id")
    check(not bound(biz), "nothing bound by a wrong token")


@suite.test
def a_new_token_for_the_terminal_starts_unbound(ctx):
    biz = setup_business(ctx.tmp, free_port(), terminals=("T01", "T02"), offline_init=True)
    check_eq(req(biz, "GET", "/v1/whoami", till=TILL_A)[0], 200, "T01 binds to A")
    # Another terminal is another token: its own binding.
    check_eq(req(biz, "GET", "/v1/whoami", till=TILL_B, terminal="T02")[0], 200, "T02 binds to B")
    run_ok(["device", "revoke", "--db", biz.hub_db, "--business", biz.business_id,
            "--terminal", "T01"])
    token = run_json(["device", "add", "--db", biz.hub_db, "--business", biz.business_id,
                      "--terminal", "T01", "--json"])["token"]
    check(not bound(biz), "the new token is bound to no till")
    status, who = req(biz, "GET", "/v1/whoami", token=token, till=TILL_B)
    check_eq((status, who.get("till_bound")), (200, True), "the new token binds to another till")
    check_in_use(*req(biz, "GET", "/v1/whoami", token=token, till=TILL_A), what="the old till")


@suite.test
def whoami_and_every_pull_page_name_the_business(ctx):
    biz = setup_business(ctx.tmp, free_port(), name="Mama Njeri's Duka", offline_init=True)
    status, who = req(biz, "GET", "/v1/whoami")
    check_eq(status, 200, "whoami")
    check_eq((who["business_id"], who["business_name"], who["kra_pin"], who["till_bound"]),
             (biz.business_id, "Mama Njeri's Duka", "", False), "whoami without a till id")
    run_ok(["business", "set", "--db", biz.hub_db, "--business", biz.business_id,
            "--kra-pin", "P051234567X"])
    status, who = req(biz, "GET", "/v1/whoami")
    check_eq(who["kra_pin"], "P051234567X", "whoami after business set")
    cursor, pages = 0, 0
    while True:
        status, page = req(biz, "GET", "/v1/pull?cursor=%d&limit=2" % cursor)
        check_eq(status, 200, "pull")
        check_eq(page.get("business"), {"name": "Mama Njeri's Duka", "kra_pin": "P051234567X"},
                 "pull page %d: business" % pages)
        pages += 1
        cursor = page["cursor"]
        if not page["more"]:
            break
    check(pages >= 3, "several pages: %d" % pages)
    # An ordinary push still answers as before.
    status, reply = push(biz.hub.port, biz.tokens["T01"],
                         [sale_command("T01", 1, [sale_line("RICE", "Rice", 500, 18000, "E")])])
    check_eq((status, reply["results"][0]["status"]), (200, "applied"), "push")


if __name__ == "__main__":
    suite.main()
