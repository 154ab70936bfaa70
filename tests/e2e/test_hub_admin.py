#!/usr/bin/env python3
"""The hub's back office without sqlite3 (issue 10, what a new user hit).

- `duka hub init` refuses a second business with the same name (trimmed, any case): exit 1,
  one line naming the existing id, nothing written; `--allow-duplicate-name` makes it;
  `--kra-pin` is validated (exit 2) and stored in its printed form.
- `duka business list` finds every business (a lost id), `duka business set` renames (same
  rule) and sets or clears the KRA PIN.
- `duka device list`, `duka product list [--archived]`: what the hub holds, JSON and tables.
- `duka stock [--negative]`: levels per SKU, the negative ones flagged, a closing line.
- `duka hub report`: conflicts listed (never in the totals), with what they add up to.

With DUKA_E2E_HUB_DB=pg the same on PostgreSQL, where row-level security hides every
business from a transaction naming another: the listing goes through the directory
exception (docs/ARCHITECTURE.md, "Row-level security").
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, check_eq, expect_error, free_port, new_hub_db,  # noqa: E402
                     parse_time, push, run, run_json, run_ok, sale_command, sale_line,
                     setup_business)

suite = Suite("hub_admin")


def businesses(db):
    r = run_json(["business", "list", "--db", db, "--json"])
    check(isinstance(r.get("businesses"), list), "business list: %r" % r)
    for b in r["businesses"]:
        check_eq(sorted(b), ["business_id", "created", "devices", "kra_pin", "name"],
                 "business list: keys of %r" % b)
        parse_time(b["created"])
    return r["businesses"]


@suite.test
def hub_init_refuses_a_second_business_with_the_same_name(ctx):
    db, init_db = new_hub_db(ctx.tmp)
    first = run_json(["hub", "init", "--db", init_db, "--business", "Test", "--json"])
    bid = first["business_id"]
    check_eq(first.get("name"), "Test", "hub init --json: name")
    check_eq(first.get("kra_pin"), "", "hub init --json: kra_pin")
    for again in ("Test", "test", "  TEST  "):
        line = expect_error(["hub", "init", "--db", db, "--business", again],
                            contains=("a business named 'Test' already exists (business id %s); "
                                      "use that id, or pass --allow-duplicate-name" % bid,))
        check(line.startswith("duka hub init: "), "the error names the command: %r" % line)
    check_eq([b["business_id"] for b in businesses(db)], [bid], "businesses after refusals")

    # A bad KRA PIN is bad usage, named, and writes nothing either.
    for pin in ("B051234567X", "P05123456X", "P0512345678", "P051234567XX"):
        expect_error(["hub", "init", "--db", db, "--business", "Other", "--kra-pin", pin],
                     contains=("--kra-pin", pin, "P051234567X"), rc=2)
    expect_error(["hub", "init", "--db", db, "--business", "   "], contains=("--business",), rc=2)
    check_eq(len(businesses(db)), 1, "businesses after bad input")

    second = run_json(["hub", "init", "--db", db, "--business", " test ",
                       "--allow-duplicate-name", "--kra-pin", "p051234567x", "--json"])
    check(second["business_id"] != bid, "a second business: a new id")
    check_eq((second["name"], second["kra_pin"]), ("test", "P051234567X"),
             "the name stored trimmed, the PIN in its printed form")
    third = run_ok(["hub", "init", "--db", db, "--business", "Duka la Pili"]).strip()
    check(re.match(r"^[0-9a-f]{16}$", third), "hub init prints the id alone: %r" % third)

    listed = businesses(db)
    check_eq([(b["business_id"], b["name"], b["kra_pin"], b["devices"]) for b in listed],
             [(bid, "Test", "", 0), (second["business_id"], "test", "P051234567X", 0),
              (third, "Duka la Pili", "", 0)], "business list, oldest first")
    # The table: a header, a row per business with its id.
    out = run_ok(["business", "list", "--db", db])
    lines = out.rstrip("\n").split("\n")
    check_eq(len(lines), 4, "business list: a header and 3 rows: %r" % out)
    check(lines[0].split()[:2] == ["BUSINESS", "ID"] and "KRA PIN" in lines[0]
          and "DEVICES" in lines[0], "business list header: %r" % lines[0])
    check(lines[1].startswith(bid) and "Test" in lines[1], "business list row: %r" % lines[1])
    check("P051234567X" in lines[2], "business list row with its PIN: %r" % lines[2])


@suite.test
def business_set_renames_and_sets_the_kra_pin(ctx):
    db, init_db = new_hub_db(ctx.tmp)
    a = run_ok(["hub", "init", "--db", init_db, "--business", "Mama Njeri's Duka"]).strip()
    b = run_ok(["hub", "init", "--db", db, "--business", "Kiosk"]).strip()
    r = run_json(["business", "set", "--db", db, "--business", b, "--kra-pin", "A123456789z",
                  "--json"])
    check_eq((r.get("business_id"), r.get("name"), r.get("kra_pin")), (b, "Kiosk", "A123456789Z"),
             "business set --json")
    expect_error(["business", "set", "--db", db, "--business", b, "--name", "MAMA NJERI'S DUKA"],
                 contains=("a business named 'Mama Njeri's Duka' already exists (business id %s)"
                           % a, "--allow-duplicate-name"))
    expect_error(["business", "set", "--db", db, "--business", b, "--kra-pin", "X1"],
                 contains=("--kra-pin", "X1"), rc=2)
    expect_error(["business", "set", "--db", db, "--business", b],
                 contains=("--name", "--kra-pin"), rc=2)
    expect_error(["business", "set", "--db", db, "--business", "0000000000000000", "--name", "X"],
                 contains=("business '0000000000000000' not found",))
    check_eq([(x["name"], x["kra_pin"]) for x in businesses(db)],
             [("Mama Njeri's Duka", ""), ("Kiosk", "A123456789Z")], "nothing changed by refusals")
    out = run_ok(["business", "set", "--db", db, "--business", b, "--name", "  Kiosk ya Juma ",
                  "--kra-pin", ""])
    check(b in out and "Kiosk ya Juma" in out, "business set prints what it set: %r" % out)
    check_eq([(x["name"], x["kra_pin"]) for x in businesses(db)],
             [("Mama Njeri's Duka", ""), ("Kiosk ya Juma", "")], "after business set")
    events = run_json(["hub", "audit", "--db", db, "--business", b, "--json"])["events"]
    check(any(e["event"] == "business_changed" and "Kiosk ya Juma" in e["detail"] for e in events),
          "business set is audited: %r" % events[:3])


@suite.test
def devices_and_products_are_listed(ctx):
    biz = setup_business(ctx.tmp, free_port(), terminals=("T01", "T02"), offline_init=True)
    db = biz.hub_db
    run_ok(["device", "revoke", "--db", db, "--business", biz.business_id, "--terminal", "T02"])
    devices = run_json(["device", "list", "--db", db, "--business", biz.business_id,
                        "--json"])["devices"]
    check_eq([(d["terminal"], d["status"], d["till_bound"]) for d in devices],
             [("T01", "active", False), ("T02", "revoked", False)], "device list")
    check_eq(devices[0]["device_id"], int(biz.tokens["T01"].split(".")[1]), "device id")
    parse_time(devices[0]["created"])
    out = run_ok(["device", "list", "--db", db, "--business", biz.business_id])
    check("TERMINAL" in out.split("\n")[0] and "revoked" in out, "device list table: %r" % out)
    check(len(businesses(db)) == 1 and businesses(db)[0]["devices"] == 1,
          "business list counts the active device")

    run_ok(["product", "archive", "--db", db, "--business", biz.business_id, "BREAD400"])
    products = run_json(["product", "list", "--db", db, "--business", biz.business_id,
                         "--json"])["products"]
    skus = [p["sku"] for p in products]
    check_eq(skus, sorted(["SUGAR1KG", "MILK500", "RICE", "SODA300", "UNGA2KG"]),
             "product list: by SKU, archived ones left out")
    unga = [p for p in products if p["sku"] == "UNGA2KG"][0]
    check_eq(unga, {"sku": "UNGA2KG", "name": "Maize flour 2kg", "price": 21050, "tax": "A",
                    "category": "Groceries", "archived": False, "stock_milli": 1000000},
             "product list: a product")
    every = run_json(["product", "list", "--db", db, "--business", biz.business_id, "--archived",
                      "--json"])["products"]
    bread = [p for p in every if p["sku"] == "BREAD400"]
    check(len(every) == 6 and bread and bread[0]["archived"] is True,
          "product list --archived: %r" % every)
    out = run_ok(["product", "list", "--db", db, "--business", biz.business_id, "--archived"])
    check("SKU" in out.split("\n")[0] and "archived" in out and "210.50" in out,
          "product list table: %r" % out)
    expect_error(["device", "list", "--db", db, "--business", "0000000000000000"],
                 contains=("business '0000000000000000' not found",))
    expect_error(["product", "list", "--db", db], contains=("--business",), rc=2)


@suite.test
def stock_flags_the_negative_levels(ctx):
    products = [("RICE", "Pishori rice per kg", "180.00", "E", 2, "Groceries"),
                ("SUGAR1KG", "Sugar 1kg", "165.00", "B", 50, "Groceries")]
    biz = setup_business(ctx.tmp, free_port(), products=products)
    line = sale_line("RICE", "Pishori rice per kg", 3500, 18000, "E")  # 3.5 kg of 2 kg
    status, reply = push(biz.hub.port, biz.tokens["T01"], [sale_command("T01", 1, [line])])
    check_eq((status, reply["results"][0]["status"]), (200, "applied"), "the sale beyond stock")
    r = run_json(["stock", "--db", biz.hub_db, "--business", biz.business_id, "--json"])
    check_eq(r["products"], [
        {"sku": "RICE", "name": "Pishori rice per kg", "stock_milli": -1500, "negative": True},
        {"sku": "SUGAR1KG", "name": "Sugar 1kg", "stock_milli": 50000, "negative": False}],
        "stock --json")
    check_eq(r["negative"], 1, "stock: negative count")
    only = run_json(["stock", "--db", biz.hub_db, "--business", biz.business_id, "--negative",
                     "--json"])
    check_eq(([p["sku"] for p in only["products"]], only["negative"]), (["RICE"], 1),
             "stock --negative")
    out = run_ok(["stock", "--db", biz.hub_db, "--business", biz.business_id])
    lines = out.rstrip("\n").split("\n")
    rice = [l for l in lines if l.startswith("RICE")]
    check(rice and "-1.5" in rice[0] and "NEGATIVE" in rice[0], "stock table: %r" % out)
    check("NEGATIVE" not in [l for l in lines if l.startswith("SUGAR1KG")][0],
          "stock table: only the negative flagged: %r" % out)
    check_eq(lines[-1], "1 product below zero: reconcile it (sales are never refused for stock)",
             "stock: the closing line")
    line2 = sale_line("SUGAR1KG", "Sugar 1kg", 60000, 16500, "B")
    push(biz.hub.port, biz.tokens["T01"], [sale_command("T01", 2, [line2])])
    out = run_ok(["stock", "--db", biz.hub_db, "--business", biz.business_id, "--negative"])
    check_eq(out.rstrip("\n").split("\n")[-1],
             "2 products below zero: reconcile them (sales are never refused for stock)",
             "stock --negative: the closing line")


@suite.test
def hub_report_shows_conflicts(ctx):
    biz = setup_business(ctx.tmp, free_port())
    sugar = sale_line("SUGAR1KG", "Sugar 1kg", 1000, 16500, "B")
    milk = sale_line("MILK500", "Milk 500ml", 2000, 6500, "C")
    first = sale_command("T01", 3, [sugar])
    again = sale_command("T01", 3, [milk])  # a restored till reusing T01-...-00003
    status, reply = push(biz.hub.port, biz.tokens["T01"], [first, again])
    check_eq([x["status"] for x in reply["results"]], ["applied", "conflict"], "push")
    r = biz.report()
    check_eq((r["sales"], r["conflicts"], r["total_cents"]), (1, 1, 16500),
             "the report's totals: the conflict is not in them")
    check_eq(r["conflict_total_cents"], 13000, "conflict_total_cents")
    check_eq(r["conflict_details_omitted"], 0, "conflict_details_omitted")
    d, = r["conflict_details"]
    check_eq({k: d[k] for k in ("receipt_no", "kind", "command_id", "existing_command_id",
                                 "terminal", "total_cents")},
             {"receipt_no": "T01-20261121-00003", "kind": "receipt_reused",
              "command_id": again["id"], "existing_command_id": first["id"], "terminal": "T01",
              "total_cents": 13000}, "conflict_details[0]")
    parse_time(d["detected"])
    out = run_ok(["hub", "report", "--db", biz.hub_db, "--business", biz.business_id])
    lines = out.rstrip("\n").split("\n")
    check(lines[0].startswith("sales: 1 ") and "conflicts: 1" in lines[0],
          "report's first line as it was: %r" % lines[0])
    check_eq(lines[1], "conflicts: 1 (not in the totals above, KES 130.00):", "report: conflicts")
    check(lines[2].split()[:2] == ["T01-20261121-00003", "receipt_reused"] and again["id"] in lines[2]
          and "KES 130.00" in lines[2], "report: a conflict's line: %r" % lines[2])
    # No conflicts: no conflict lines.
    other = run_ok(["hub", "init", "--db", biz.hub_db, "--business", "Quiet shop"]).strip()
    out = run_ok(["hub", "report", "--db", biz.hub_db, "--business", other])
    check_eq(len(out.rstrip("\n").split("\n")), 1, "report without conflicts: one line: %r" % out)


@suite.test
def help_lists_the_new_commands(ctx):
    rc, out, err = run(["help"])
    for usage in ("duka business list --db DB", "duka business set --db DB --business ID",
                  "duka device list --db DB --business ID", "duka product list --db DB",
                  "duka stock --db DB --business ID", "--allow-duplicate-name", "--kra-pin"):
        check(usage in out, "duka help lacks %r" % usage)
    for cmd in (["business", "list"], ["business", "set"], ["device", "list"],
                ["product", "list"], ["stock"]):
        rc, out, err = run(cmd + ["--help"])
        check(rc == 0 and out.startswith("usage: duka " + " ".join(cmd)),
              "duka %s --help: %r" % (" ".join(cmd), out[:200]))


if __name__ == "__main__":
    suite.main()
