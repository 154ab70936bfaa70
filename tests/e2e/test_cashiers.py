#!/usr/bin/env python3
"""Cashiers, end to end (issue 11, item 4).

- `duka cashier add|list|set` on the hub: JSON and tables; every bad value is one stderr line
  naming the option, exit 1, and nothing written (the list and the version unchanged); a
  missing option is bad usage (exit 2). Names and PINs at their limits; a PIN from stdin; the
  PIN never in the hub's database file.
- The list reaches the till by pull (the whole list, with its version); offline the till
  keeps the last one and `duka sell --cashier NAME` goes on working with it; an unknown or
  inactive name is refused with nothing written.
- The sale carries its cashier to the hub (`duka hub report`: sales per cashier) and onto
  the receipt (`duka sell`, `duka receipt`).

With DUKA_E2E_HUB_DB=pg the same on PostgreSQL (pg/e2e/test_cashiers).
"""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DEFAULT_CASHIER, Suite, check, check_eq, expect_error,  # noqa: E402
                     free_port, http_json, is_url, new_hub_db, run, run_json, run_ok, sell,
                     setup_business)

suite = Suite("cashiers")


def listing(db, bid):
    r = run_json(["cashier", "list", "--db", db, "--business", bid, "--json"])
    for c in r["cashiers"]:
        check_eq(sorted(c), ["active", "cashier_id", "name", "role"], "cashier list: keys")
    return r["cashiers"]


def add(db, bid, name, role="cashier", pin="1234"):
    return run_json(["cashier", "add", "--db", db, "--business", bid, "--name", name, "--role",
                     role, "--pin", pin, "--json"])


def till_cashiers(db):
    """The till's cashiers (name, role, active) and version, read from its database."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        rows = con.execute("SELECT name, role, active FROM cashiers ORDER BY name").fetchall()
        v = con.execute("SELECT value FROM meta WHERE key = 'cashiers_version'").fetchone()
        hashes = [r[0] for r in con.execute("SELECT pin_hash FROM cashiers")]
    finally:
        con.close()
    for h in hashes:
        check(h.startswith("$argon2id$"), "till: a PIN hash is argon2id: %r" % h[:20])
    return rows, int(v[0]) if v else 0


def till_sales(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return con.execute("SELECT count(*) FROM sales").fetchone()[0]
    finally:
        con.close()


@suite.test
def hub_cli_add_list_set_and_every_bad_input(ctx):
    db, init_db = new_hub_db(ctx.tmp)
    bid = run_json(["hub", "init", "--db", init_db, "--business", "Cashier Shop",
                    "--json"])["business_id"]
    check_eq(listing(db, bid), [], "no cashiers at first")
    rc, out, err = run(["cashier", "list", "--db", db, "--business", bid])
    check(rc == 0 and "no cashiers" in out, "empty table: %r" % out)

    a = add(db, bid, "Amina", pin="1234")
    check_eq(sorted(a), ["cashier_id", "name", "role"], "cashier add --json: keys")
    check_eq((a["name"], a["role"]), ("Amina", "cashier"), "cashier add --json")
    check_eq(len(a["cashier_id"]), 36, "cashier add: a UUID")
    # --pin - reads the first line of stdin; 8 digits, a 40-byte name: the limits.
    forty = "B" * 40
    rc, out, err = run(["cashier", "add", "--db", db, "--business", bid, "--name", forty,
                        "--role", "manager", "--pin", "-", "--json"], input="97531864\n")
    check(rc == 0, "cashier add --pin -: %r" % err)
    rc, out, err = run(["cashier", "add", "--db", db, "--business", bid, "--name", "Zoë Wanjiru",
                        "--role", "cashier", "--pin", "0000"])
    check(rc == 0 and "Zoë Wanjiru" in out and "0000" not in out, "cashier add (text): %r" % out)
    want = [("Amina", "cashier", True), (forty, "manager", True), ("Zoë Wanjiru", "cashier", True)]
    check_eq([(c["name"], c["role"], c["active"]) for c in listing(db, bid)], want, "list")
    rc, out, err = run(["cashier", "list", "--db", db, "--business", bid])
    check(rc == 0 and "Amina" in out and "manager" in out and "$argon2id$" not in out,
          "cashier list (table): %r" % out)

    before = listing(db, bid)
    bad_values = [
        (["--name", "amina"], ("--name", "exists already")),          # any case
        (["--name", "  AMINA "], ("--name", "exists already")),       # trimmed
        (["--name", "C" * 41], ("--name", "40")),
        (["--name", "Tab\there"], ("--name", "control")),
        (["--name", "Bad\udcff"], ("--name",)),  # the byte 0xff: not UTF-8
        (["--pin", "123"], ("--pin", "4 to 8 digits")),
        (["--pin", "123456789"], ("--pin", "4 to 8 digits")),
        (["--pin", "12a4"], ("--pin", "4 to 8 digits")),
        (["--role", "boss"], ("--role", "cashier or manager")),
    ]
    for change, words in bad_values:
        opts = {"--name": "Neema", "--role": "cashier", "--pin": "1234"}
        opts[change[0]] = change[1]
        args = ["cashier", "add", "--db", db, "--business", bid]
        for k, v in opts.items():
            args += [k, v]
        line = expect_error(args, contains=words, rc=1)
        check(line.startswith("duka cashier add: "), "names the command: %r" % line)
    expect_error(["cashier", "add", "--db", db, "--business", "0000000000000000", "--name", "N",
                  "--role", "cashier", "--pin", "1234"], contains=("business",), rc=1)
    expect_error(["cashier", "add", "--db", db, "--business", bid, "--name", "N", "--role",
                  "cashier", "--pin", "-"], contains=("--pin",), rc=1)  # nothing on stdin
    # bad usage: exit 2
    expect_error(["cashier", "add", "--db", db, "--business", bid, "--name", "N", "--role",
                  "cashier"], contains=("--pin",), rc=2)
    expect_error(["cashier", "add", "--db", db, "--business", bid, "--name", "N", "--role",
                  "cashier", "--pin", "1234", "--colour", "red"], contains=("--colour",), rc=2)
    expect_error(["cashier", "set", "--db", db, "--business", bid, "--name", "Amina"],
                 contains=("--pin", "--role", "--active"), rc=2)
    expect_error(["cashier", "list", "--db", db], contains=("--business",), rc=2)
    for empty in ("--name", "--pin", "--role"):  # an empty value is a missing one
        opts = {"--name": "Neema", "--role": "cashier", "--pin": "1234", empty: ""}
        args = ["cashier", "add", "--db", db, "--business", bid]
        for k, v in opts.items():
            args += [k, v]
        expect_error(args, contains=(empty,), rc=2)
    # set: bad values, unknown name
    for args, words in ((["--active", "maybe"], ("--active", "yes or no")),
                        (["--pin", "12"], ("--pin",)), (["--role", "owner"], ("--role",))):
        expect_error(["cashier", "set", "--db", db, "--business", bid, "--name", "Amina"] + args,
                     contains=words, rc=1)
    expect_error(["cashier", "set", "--db", db, "--business", bid, "--name", "Nobody", "--active",
                  "no"], contains=("--name", "no cashier 'Nobody'"), rc=1)
    check_eq(listing(db, bid), before, "nothing written by any refusal")

    # set: deactivate, role, a new PIN (by any case of the name)
    s = run_json(["cashier", "set", "--db", db, "--business", bid, "--name", "AMINA", "--active",
                  "no", "--role", "manager", "--pin", "4321", "--json"])
    check_eq((s["name"], s["role"], s["active"]), ("Amina", "manager", False), "cashier set")
    check_eq(s["cashier_id"], a["cashier_id"], "cashier set keeps the id")
    s = run_json(["cashier", "set", "--db", db, "--business", bid, "--name", "amina", "--active",
                  "yes", "--json"])
    check_eq((s["role"], s["active"]), ("manager", True), "cashier set --active yes")

    if not is_url(db):  # the PINs given are nowhere in the hub's database file
        data = b""
        for suffix in ("", "-wal"):
            if os.path.exists(db + suffix):
                with open(db + suffix, "rb") as f:
                    data += f.read()
        check(b"$argon2id$" in data, "the hashes are in the file")
        for pin in (b"97531864", b"4321"):
            check(pin not in data, "PIN %r found in the hub's database file" % pin)

    # At most 100 cashiers a business: the 101st is refused, naming the limit.
    for i in range(100 - len(listing(db, bid))):
        add(db, bid, "Staff %03d" % i)
    check_eq(len(listing(db, bid)), 100, "100 cashiers")
    expect_error(["cashier", "add", "--db", db, "--business", bid, "--name", "One Too Many",
                  "--role", "cashier", "--pin", "1234"], contains=("100 cashiers",), rc=1)
    check_eq(len(listing(db, bid)), 100, "still 100")


@suite.test
def pull_offline_sell_and_report_per_cashier(ctx):
    b = setup_business(ctx.tmp, free_port())
    till = b.tills["T01"]
    # till init pulled the default cashier of the harness
    rows, v1 = till_cashiers(till)
    check_eq(rows, [(DEFAULT_CASHIER, "manager", 1)], "the till has the harness's cashier")
    check(v1 >= 1, "cashiers_version %r" % v1)
    amina = add(b.hub_db, b.business_id, "Amina", pin="1234")
    run_ok(["sync", "--db", till])
    rows, v2 = till_cashiers(till)
    check_eq([r[0] for r in rows], ["Amina", DEFAULT_CASHIER], "pulled list")
    check(v2 > v1, "the version moved: %r -> %r" % (v1, v2))
    run_ok(["sync", "--db", till])
    check_eq(till_cashiers(till)[1], v2, "an unchanged list keeps its version")

    # The wire: the member only when the version differs, the whole list with hashes.
    con = sqlite3.connect("file:%s?mode=ro" % till, uri=True)
    till_id = con.execute("SELECT value FROM meta WHERE key = 'till_id'").fetchone()[0]
    con.close()
    hdrs = {"Authorization": "Bearer " + b.tokens["T01"], "Duka-Till-Id": till_id}
    st, body = http_json("GET", b.hub.port, "/v1/pull?cursor=0&cashiers_version=%d" % v2,
                         headers=hdrs)
    check(st == 200 and "cashiers" not in body, "pull at the hub's version: %r %r" % (st, body))
    st, body = http_json("GET", b.hub.port, "/v1/pull?cursor=0&cashiers_version=0", headers=hdrs)
    check_eq(st, 200, "pull status")
    check_eq(body["cashiers"]["version"], v2, "the member's version")
    check_eq([(c["name"], c["role"], c["active"]) for c in body["cashiers"]["list"]],
             [("Amina", "cashier", True), (DEFAULT_CASHIER, "manager", True)], "the member's list")
    check(all(c["pin_hash"].startswith("$argon2id$") and len(c["id"]) == 36
              for c in body["cashiers"]["list"]), "hashes and ids: %r" % body["cashiers"])
    st, body = http_json("GET", b.hub.port, "/v1/pull?cursor=0", headers=hdrs)
    check(st == 200 and "cashiers" not in body, "a till that sends no version gets no member")
    for bad in ("-1", "x", "1.5"):
        st, body = http_json("GET", b.hub.port, "/v1/pull?cashiers_version=" + bad, headers=hdrs)
        check_eq((st, body["error"]["code"]), (400, "invalid_cashiers_version"), "bad version")

    r = sell(till, "SUGAR1KG", cashier="amina")
    check_eq(r.get("cashier"), {"id": amina["cashier_id"], "name": "Amina"}, "sell --json cashier")
    r0 = sell(till, "MILK500")
    check_eq(r0.get("cashier"), None, "a sale with no cashier")
    rc, out, err = run(["sell", "--db", till, "RICE", "--cashier", DEFAULT_CASHIER])
    check(rc == 0 and ("Cashier: %s" % DEFAULT_CASHIER) in out, "receipt names the cashier: %r"
          % out)
    n = till_sales(till)
    for name in ("Nobody", ""):
        line = expect_error(["sell", "--db", till, "SUGAR1KG", "--cashier", name],
                            contains=("--cashier", "no active cashier"), rc=1)
        check(line.startswith("duka sell: "), line)
    check_eq(till_sales(till), n, "a refused --cashier writes no sale")

    # The hub goes away: the till keeps its list and sells with it; a change made on the hub
    # meanwhile (Amina deactivated) arrives only when the hub is back.
    b.hub.stop()
    run_ok(["cashier", "set", "--db", b.hub_db, "--business", b.business_id, "--name", "Amina",
            "--active", "no"])
    rc, out, err = run(["sync", "--db", till])
    check(rc != 0, "sync with the hub gone fails")
    check_eq([r[0] for r in till_cashiers(till)[0]], ["Amina", DEFAULT_CASHIER],
             "offline the till keeps its last list")
    r2 = sell(till, "SUGAR1KG", "MILK500", cashier="Amina")
    check_eq(r2["cashier"]["name"], "Amina", "sold offline with the kept list")
    rec = run_json(["receipt", "--db", till, r2["receipt_no"], "--json"])
    check("Cashier: Amina" in rec["text"], "duka receipt: %r" % rec["text"])
    check_eq(rec["sale"].get("cashier"), {"id": amina["cashier_id"], "name": "Amina"},
             "the sale as it goes to the hub")
    check_eq(rec.get("cashier"), {"id": amina["cashier_id"], "name": "Amina"}, "receipt --json")

    b.hub.start()
    run_ok(["sync", "--db", till])
    check_eq(till_cashiers(till)[0], [("Amina", "cashier", 0), (DEFAULT_CASHIER, "manager", 1)],
             "the deactivation arrived")
    expect_error(["sell", "--db", till, "SUGAR1KG", "--cashier", "Amina"],
                 contains=("--cashier", "no active cashier 'Amina'"), rc=1)

    rep = run_json(["hub", "report", "--db", b.hub_db, "--business", b.business_id, "--json"])
    check_eq(rep["sales"], 4, "hub report: sales")
    per = {c["name"]: (c["cashier_id"], c["sales"]) for c in rep["cashiers"]}
    check_eq(per, {"Amina": (amina["cashier_id"], 2), DEFAULT_CASHIER: (b.cashier_id, 1),
                   "": ("", 1)}, "hub report: sales per cashier")
    check_eq(sum(c["total_cents"] for c in rep["cashiers"]), rep["total_cents"],
             "per cashier adds up to the total")
    rc, out, err = run(["hub", "report", "--db", b.hub_db, "--business", b.business_id])
    check(rc == 0 and "cashier Amina" in out and "(none)" in out, "report table: %r" % out)


@suite.test
def help_names_the_cashier_commands(ctx):
    rc, out, err = run(["help"])
    for usage in ("duka cashier add", "duka cashier list", "duka cashier set", "--cashier NAME"):
        check(usage in out, "duka help lacks %r" % usage)
    for cmd in (["cashier", "add"], ["cashier", "list"], ["cashier", "set"]):
        rc, out, err = run(cmd + ["--help"])
        check(rc == 0 and out.startswith("usage: duka " + " ".join(cmd)),
              "duka %s --help: %r" % (" ".join(cmd), out[:200]))


if __name__ == "__main__":
    suite.main()
