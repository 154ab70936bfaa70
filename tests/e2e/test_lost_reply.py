#!/usr/bin/env python3
"""(d) Lost reply: the till talks to the hub through faultproxy in drop-reply mode (count 1) —
the hub commits the first push but its reply never reaches the till. The first sync exits 1
with the hub already holding the sales; the second sync resends the same command ids, the hub
answers duplicate, the till counts them done: no sale twice, nothing left pending.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy  # noqa: E402
from harness import (Suite, assert_hub_has_exactly, assert_queue_drained, check, check_eq,  # noqa: E402
                     free_port, log, queue, sell_many, setup_business, status, sync)

suite = Suite("lost_reply")
SALES = 10


@suite.test
def lost_push_reply_is_resent_and_not_applied_twice(ctx):
    hub_port = free_port()
    proxy = FaultProxy(("127.0.0.1", hub_port), mode="pass").start()
    ctx.on_cleanup(proxy.stop)
    proxy_url = "http://127.0.0.1:%d" % proxy.port
    biz = setup_business(ctx.tmp, hub_port, till_hub_url=proxy_url)
    db = biz.tills["T01"]
    printed = [s["receipt_no"] for s in sell_many(db, SALES)]
    commands = len(queue(db, "pending"))

    # From now on the first push's reply is lost.
    proxy.remaining = 1
    proxy.match = "/v1/push"
    proxy.mode = "drop-reply"

    rc, j, err = sync(db)
    check_eq(proxy.dropped, 1, "pushes whose reply the proxy dropped")
    lines = [l for l in err.split("\n") if l.strip()]
    check(rc == 1 and len(lines) == 1,
          "first sync (reply lost): want exit 1 and one stderr line, got exit %s, stderr %r" % (rc, err))
    sales_after_first = biz.hub_sales()
    check_eq(sales_after_first, SALES, "hub sales after the push whose reply was lost "
             "(the hub committed it)")
    leftover = [i for i in queue(db) if i.get("status") == "done"]
    log("  after the lost reply: %d items done, %d not done"
        % (len(leftover), len(queue(db)) - len(leftover)))

    rc, j, err = sync(db)
    check_eq(rc, 0, "second sync (stderr: %s)" % err.strip())
    check(j is not None, "second sync printed no JSON")
    check_eq(j.get("failed"), 0, "second sync failed")
    check_eq(j.get("conflicts"), 0, "second sync conflicts")
    check_eq(queue(db, "pending"), [], "queue --status pending after the second sync")
    check_eq(queue(db, "conflict"), [], "queue --status conflict after the second sync")
    done = queue(db, "done")
    check_eq(len(done), commands, "queue --status done after the second sync")
    check_eq(status(db).get("pending"), 0, "status pending")
    r = assert_hub_has_exactly(biz, printed, "after the resend: ")
    check_eq(r.get("conflicts"), 0, "hub report conflicts after the resend")
    assert_queue_drained(db)
    log("  proxy saw: %s" % [(m, p.split("?")[0], s) for m, p, s in proxy.log])


if __name__ == "__main__":
    suite.main()
