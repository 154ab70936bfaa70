#!/usr/bin/env python3
"""(a) 200 sales with the hub down, then one `duka sync`: the hub has exactly those 200 sales,
under exactly the receipt numbers `duka sell` printed. On the way: a sync while the hub is down
fails clearly (exit 1, `unreachable`, connectivity offline), changes nothing, and selling goes on.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, assert_hub_has_exactly, assert_queue_drained, check, check_eq,  # noqa: E402
                     free_port, log, port_accepts, queue, sell, setup_business, status, sync,
                     wait_for, SKUS)

suite = Suite("offline_sales")
SALES = 200


def queue_snapshot(db):
    return sorted((i.get("command_id"), i.get("status"), i.get("attempts")) for i in queue(db))


@suite.test
def sales_while_hub_down_all_arrive_once(ctx):
    port = free_port()
    biz = setup_business(ctx.tmp, port)
    db = biz.tills["T01"]

    biz.hub.stop()
    wait_for(lambda: not port_accepts(port), 10, "the stopped hub's port to close")

    made = []
    for i in range(SALES - 1):
        items = [SKUS[i % len(SKUS)]]
        if i % 4 == 1:
            items.append("%s*%d" % (SKUS[(i + 2) % len(SKUS)], 2))
        if i % 9 == 5:
            items.append("RICE*0.5")
        pay = "mpesa:QK%08d" % i if i % 10 == 3 else "cash"
        made.append(sell(db, *items, pay=pay))

    # A sync while the hub is down: exit 1, one stderr line saying `unreachable`,
    # connectivity offline in the JSON, and nothing in the outbox changes.
    before = queue_snapshot(db)
    st_before = status(db)
    for k in ("connectivity", "pending", "failed", "conflicts", "last_sync", "pending_by_type"):
        check(k in st_before, "duka status --json lacks %r: %r" % (k, st_before))
    check(isinstance(st_before["pending_by_type"], dict) and
          sum(st_before["pending_by_type"].values()) == st_before["pending"],
          "status pending_by_type does not add up to pending: %r" % st_before)
    items = queue(db)
    for k in ("command_id", "status", "attempts"):
        check(all(k in i for i in items), "duka queue --json items lack %r: %r" % (k, items[:1]))
    check(len({i["command_id"] for i in items}) == len(items), "duplicate command ids in the queue")
    check(st_before.get("pending", 0) >= SALES - 1,
          "status pending %r after %d offline sales" % (st_before.get("pending"), SALES - 1))
    rc, j, err = sync(db)
    lines = [l for l in err.split("\n") if l.strip()]
    check_eq(rc, 1, "sync with the hub down: exit code")
    check(len(lines) == 1 and "unreachable" in err.lower(),
          "sync with the hub down: want one stderr line containing 'unreachable', got %r" % err)
    check(j is not None and j.get("connectivity") == "offline",
          "sync --json with the hub down: want connectivity offline, got %r" % j)
    after = queue_snapshot(db)
    check(before == after, "a failed (offline) sync changed the outbox: %r... -> %r..."
          % (before[:2], after[:2]))
    st_after = status(db)
    for k in ("pending", "failed", "conflicts"):
        check_eq(st_after.get(k), st_before.get(k), "status %s after an offline sync" % k)

    # Selling still works after the failed sync.
    made.append(sell(db, "SODA300*3", "BREAD400"))
    printed = [s["receipt_no"] for s in made]
    check_eq(len(printed), SALES, "sales made")
    pending = status(db)["pending"]

    biz.hub.start()
    rc, j, err = sync(db)
    check_eq(rc, 0, "sync with the hub back (stderr: %s)" % err.strip())
    check(j is not None, "sync --json printed no JSON")
    for k in ("pushed", "pulled", "failed", "conflicts", "duration_ms", "connectivity"):
        check(k in j, "sync --json lacks %r: %r" % (k, j))
    check_eq(j["connectivity"], "online", "sync connectivity")
    check_eq(j["pushed"], pending, "sync pushed (pending before the sync)")
    check_eq(j["failed"], 0, "sync failed")
    check_eq(j["conflicts"], 0, "sync conflicts")

    r = assert_hub_has_exactly(biz, printed)
    check(r["receipts"] == sorted(r["receipts"]), "hub report receipts are not sorted")
    check_eq(r.get("conflicts"), 0, "hub report conflicts")
    check_eq(r.get("total_cents"), sum(s["total"] for s in made),
             "hub report total_cents vs the sum of the totals duka sell printed")
    st = assert_queue_drained(db)
    check(st.get("last_sync"), "status last_sync empty after a successful sync: %r" % st)

    # A second sync has nothing to push and changes nothing at the hub.
    rc, j, err = sync(db)
    check_eq(rc, 0, "second sync (stderr: %s)" % err.strip())
    check_eq(j.get("pushed"), 0, "second sync pushed")
    assert_hub_has_exactly(biz, printed, "after a second sync: ")
    log("  %d sales, total %d cents" % (r["sales"], r["total_cents"]))


if __name__ == "__main__":
    suite.main()
