#!/usr/bin/env python3
"""(f) Two tills (T01, T02) of one business sell at the same time (100 sales each, in two
threads), then both sync at the same time: the hub has 200 sales, the receipts are unique,
each till's receipts carry its own prefix and run gap-free 00001..00100 (per day).
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (RECEIPT_RE, Suite, assert_hub_has_exactly, assert_queue_drained, check,  # noqa: E402
                     check_eq, free_port, sell_many, setup_business, sync)

suite = Suite("two_tills")
PER_TILL = 100


def in_threads(fns):
    """Run the callables concurrently; re-raise the first failure."""
    results = [None] * len(fns)
    errors = [None] * len(fns)

    def wrap(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001
            errors[i] = e

    threads = [threading.Thread(target=wrap, args=(i, f)) for i, f in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        if e is not None:
            raise e
    return results


@suite.test
def two_tills_sell_and_sync_concurrently(ctx):
    biz = setup_business(ctx.tmp, free_port(), terminals=["T01", "T02"])
    made = in_threads([lambda t=t: sell_many(biz.tills[t], PER_TILL, label=t + ": ")
                       for t in ("T01", "T02")])
    by_till = {t: [s["receipt_no"] for s in made[i]] for i, t in enumerate(("T01", "T02"))}

    for t, receipts in by_till.items():
        check_eq(len(set(receipts)), PER_TILL, "%s: distinct receipt numbers" % t)
        days = {}
        for rn in receipts:
            m = RECEIPT_RE.match(rn)
            check(m and m.group("term") == t, "%s printed receipt %r without its own prefix" % (t, rn))
            days.setdefault(m.group("date"), []).append(int(m.group("seq")))
        for day, seqs in sorted(days.items()):
            check_eq(seqs, list(range(1, len(seqs) + 1)),
                     "%s receipts of %s: sequence numbers in sale order" % (t, day))
            if len(days) == 1:
                check_eq(seqs[-1], PER_TILL, "%s last sequence number" % t)

    syncs = in_threads([lambda db=db: sync(db) for db in biz.tills.values()])
    for (rc, j, err), t in zip(syncs, biz.tills):
        check_eq(rc, 0, "%s sync (stderr %s)" % (t, err.strip()))
        check_eq(j.get("failed"), 0, "%s sync failed" % t)

    rep = assert_hub_has_exactly(biz, by_till["T01"] + by_till["T02"])
    check_eq(rep["sales"], 2 * PER_TILL, "hub sales")
    for t in biz.tills:
        mine = [r for r in rep["receipts"] if r.startswith(t + "-")]
        check_eq(len(mine), PER_TILL, "hub receipts with prefix %s-" % t)
        assert_queue_drained(biz.tills[t])


if __name__ == "__main__":
    suite.main()
