#!/usr/bin/env python3
"""(c) The till side is SIGKILLed in the middle of a sync.

1. `duka sync --batch 50` is SIGKILLed mid-run at a few points — while the hub works on a push
   (the hub commits, the till never hears back) and just after a reply reached the till (while
   it records the results); then `duka sync` again: the hub has exactly the sales made.
2. A serving `duka till` (which syncs at start and every second) is SIGKILLed mid-sync twice
   and restarted; it finishes by itself: the hub has exactly the sales made, the outbox drains.

Kill points come from faultproxy hooks (the till talks to the hub through it, pass mode), so
they are precise rather than a race against a polling loop.
DUKA_E2E_CRASH_SALES overrides the number of sales of part 1 (default 1000), part 2 uses half.
"""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy  # noqa: E402
from harness import (KillSwitch, Suite, Till, assert_hub_has_exactly, assert_queue_drained,  # noqa: E402
                     check, check_eq, free_port, log, popen, sell_many, setup_business,
                     sync_until_ok, wait_for)

suite = Suite("till_crash")
SALES = int(os.environ.get("DUKA_E2E_CRASH_SALES", "1000"))
BATCH = "50"


def business_behind_proxy(ctx):
    hub_port = free_port()
    proxy = FaultProxy(("127.0.0.1", hub_port), mode="pass", match="/v1/push").start()
    ctx.on_cleanup(proxy.stop)
    biz = setup_business(ctx.tmp, hub_port, till_hub_url="http://127.0.0.1:%d" % proxy.port)
    return biz, proxy


@suite.test
def sync_process_sigkill_mid_push(ctx):
    seed = int(os.environ.get("DUKA_E2E_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    log("  seed %d (DUKA_E2E_SEED to repeat)" % seed)
    biz, proxy = business_behind_proxy(ctx)
    db = biz.tills["T01"]
    printed = [s["receipt_no"] for s in sell_many(db, SALES)]

    # (point, which push of the round, delay in seconds)
    plan = [("sent", 1, 0.0), ("replied", 2, 0.0), ("sent", 2, rng.uniform(0.0, 0.02)),
            ("replied", 1, rng.uniform(0.0, 0.005))]
    ks = KillSwitch(proxy)
    kills = []
    for rnd, (when, nth, delay) in enumerate(plan, start=1):
        if biz.hub_sales() >= SALES:
            break
        holder = {}

        def kill_sync():
            wait_for(lambda: "p" in holder, 10, "the sync process handle")
            os.kill(holder["p"].pid, signal.SIGKILL)

        ks.arm(when, nth, delay, kill_sync)
        holder["p"] = p = popen(["sync", "--db", db, "--batch", BATCH, "--json"])
        killed = ks.wait(p)
        ks.disarm()
        rc = p.wait(timeout=60)
        if not killed:
            log("  round %d: sync exited %s before push #%d of the round" % (rnd, rc, nth))
            continue
        at_kill = biz.hub_sales()
        kills.append(at_kill)
        log("  round %d: duka sync SIGKILLed %.1f ms after push #%d was %s; %d/%d sales at the hub"
            % (rnd, delay * 1000, nth, "sent to the hub" if when == "sent" else "answered",
               at_kill, SALES))

    check(kills, "never managed to kill duka sync mid-push: every sync finished first")
    attempts, j = sync_until_ok(db, "--batch", BATCH)
    if attempts > 1:
        log("  note: %d syncs were needed after the kills (the first exited non-zero)" % attempts)
    assert_hub_has_exactly(biz, printed, "after %d killed syncs: " % len(kills))
    assert_queue_drained(db)


@suite.test
def serving_till_sigkill_mid_sync_then_finishes_by_itself(ctx):
    n = max(SALES // 2, 50)
    biz, proxy = business_behind_proxy(ctx)
    db = biz.tills["T01"]
    printed = [s["receipt_no"] for s in sell_many(db, n)]

    till = Till(db, free_port(), sync_interval=1)
    ks = KillSwitch(proxy)
    for when in ("sent", "replied"):
        ks.arm(when, 1, 0.0, till.kill)
        till.start(wait=False)  # it syncs once at start
        try:
            killed = ks.wait(till.proc, 60)
        except AssertionError:
            raise AssertionError("duka till made no push within 60 s of starting although "
                                 "%d of %d sales are missing at the hub; output: %s"
                                 % (n - biz.hub_sales(), n, till.log_tail()))
        if not killed:
            raise AssertionError("duka till exited (%s) before its first push; output: %s"
                                 % (till.proc.returncode, till.log_tail()))
        ks.disarm()
        log("  duka till SIGKILLed when its first push was %s; %d/%d sales at the hub"
            % ("sent to the hub" if when == "sent" else "answered", biz.hub_sales(), n))

    till.start()
    wait_for(lambda: biz.hub_sales() >= n, 90,
             "all %d sales at the hub after the till restarted" % n, interval=0.2)
    wait_for(lambda: till.status().get("pending") == 0, 60, "GET /api/status pending == 0",
             interval=0.2)
    st = till.status()
    for k in ("connectivity", "pending", "failed", "conflicts", "last_sync", "pending_by_type"):
        check(k in st, "GET /api/status lacks %r: %r" % (k, st))
    check_eq(st.get("failed"), 0, "GET /api/status failed")
    rc = till.stop()
    check(rc is not None, "duka till did not exit on SIGTERM within 15 s")
    assert_hub_has_exactly(biz, printed, "after the serving till was killed mid-sync: ")
    assert_queue_drained(db)


if __name__ == "__main__":
    suite.main()
