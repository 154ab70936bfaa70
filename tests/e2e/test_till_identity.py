#!/usr/bin/env python3
"""The till's identity: a token belongs to one till database, and the shop's name and KRA PIN
reach its receipts.

1. A second till database initialised with a token another till database uses is refused
   (409 token_in_use from the hub), with one line saying how to move it; nothing is created.
   Before, both sold and their receipt numbers collided at the hub.
2. `till init --replace` moves the token to the new database; the old one is then refused
   at its next sync, its sales kept pending (visible), never failed or lost.
3. `till init` run again on the same database is fine and says how many products it holds
   (it printed "0 products", the changes pulled).
4. The business's name and KRA PIN come with the pull and stand on the receipt; a
   `business set` reaches the till at its next sync.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PRODUCTS, Suite, check, check_eq, expect_error, free_port, queue,  # noqa: E402
                     run, run_json, run_ok, sell, setup_business, status, sync)

suite = Suite("till_identity")


@suite.test
def a_token_serves_one_till_database(ctx):
    biz = setup_business(ctx.tmp, free_port())
    first = biz.tills["T01"]
    second = ctx.path("second.db")
    args = ["till", "init", "--db", second, "--hub", biz.hub_url, "--terminal", "T01",
            "--token", biz.tokens["T01"]]
    line = expect_error(args, ["in use by another till database", "--replace"])
    check(not os.path.exists(second), "a refused till init created %s" % second)
    # Again on the first database: fine, and it says what its catalog holds.
    out = run_ok(["till", "init", "--db", first, "--hub", biz.hub_url, "--terminal", "T01",
                  "--token", biz.tokens["T01"]])
    check("%d products" % len(PRODUCTS) in out, "till init again: %r" % out)
    # The old till sells a sale nobody forwarded yet; then the token moves.
    old_sale = sell(first, "SUGAR1KG")
    out = run_ok(args + ["--replace"])
    check("now holds the token" in out, "till init --replace: %r" % out)
    new_sale = sell(second, "MILK500")
    rc, j, err = sync(second)
    check_eq(rc, 0, "sync of the new till (stderr %r)" % err)
    # The old database is refused: its sale waits, visible, no attempt spent.
    rc, j, err = sync(first)
    check(rc == 1 and "in use by another till database" in err, "old till's sync: %s %r"
          % (rc, err))
    st = status(first)
    check_eq(st["pending"], 1, "the old till's sale stays pending")
    check_eq(st["failed"], 0, "and is not failed")
    items = queue(first, "pending")
    check_eq(items[0]["attempts"], 0, "no attempt spent on a refused till")
    # Only the new database's sale is at the hub (the old one's waits, refused: --replace is
    # for a till that is gone or fully synced, as its help says).
    rep = biz.report()
    check(rep["sales"] == 1 and rep["total_cents"] == new_sale["total"] and
          rep["receipts"] == [new_sale["receipt_no"]], "hub report: %r (old sale %r)"
          % (rep, old_sale))


@suite.test
def shop_name_and_kra_pin_on_receipts(ctx):
    biz = setup_business(ctx.tmp, free_port(), name="Mama Njeri's Duka")
    db = biz.tills["T01"]
    run_ok(["business", "set", "--db", biz.hub_db, "--business", biz.business_id,
            "--kra-pin", "P051234567X"])
    rc, j, err = sync(db)
    check_eq(rc, 0, "sync (stderr %r)" % err)
    rc, out, err = run(["sell", "--db", db, "SUGAR1KG*3"])
    check(rc == 0, "sell: %r" % err)
    for want in ("Mama Njeri's Duka", "KRA PIN P051234567X", "3 x 165.00", "495.00 B",
                 "Till T01"):
        check(want in out, "the receipt lacks %r:\n%s" % (want, out))
    # Renamed at the hub: the next receipt after a sync says so.
    run_ok(["business", "set", "--db", biz.hub_db, "--business", biz.business_id, "--name",
            "Njeri Mini Market"])
    sync(db)
    out = run_ok(["sell", "--db", db, "MILK500"])
    check("Njeri Mini Market" in out, "the receipt after the rename: %r" % out)
    r = run_json(["receipt", "--db", db, sell(db, "MILK500")["receipt_no"], "--json"])
    check("Njeri Mini Market" in r["text"] and r["sync"] == "pending", "duka receipt: %r" % r)


if __name__ == "__main__":
    suite.main()
