#!/usr/bin/env python3
"""(b) The hub is SIGKILLed in the middle of a push, at a few different points; it restarts on the
same database and the till syncs again until it succeeds: the hub then has every sale made,
none twice (sales == receipts == unique receipts == the receipt numbers `duka sell` printed).

The sales are made once. Each round starts `duka sync --batch 50` in the background and kills
the hub while the round's Nth push is being worked on by the hub: the till talks to the hub
through faultproxy (pass mode), whose hook fires the SIGKILL a few milliseconds after the push
was handed to the hub — a precise kill point rather than a race against a polling loop. The hub
report then shows how many sales had been applied (between 0 and all).
DUKA_E2E_CRASH_SALES overrides the number of sales (default 2000).
"""

import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy  # noqa: E402
from harness import (KillSwitch, Suite, assert_hub_has_exactly, assert_queue_drained, check,  # noqa: E402
                     free_port, kill_proc, log, popen, sell_many, setup_business, sync_until_ok)

suite = Suite("hub_crash")
SALES = int(os.environ.get("DUKA_E2E_CRASH_SALES", "2000"))
BATCH = "50"


@suite.test
def hub_sigkill_mid_push(ctx):
    seed = int(os.environ.get("DUKA_E2E_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    log("  seed %d (DUKA_E2E_SEED to repeat)" % seed)
    hub_port = free_port()
    proxy = FaultProxy(("127.0.0.1", hub_port), mode="pass", match="/v1/push").start()
    ctx.on_cleanup(proxy.stop)
    biz = setup_business(ctx.tmp, hub_port, till_hub_url="http://127.0.0.1:%d" % proxy.port)
    db = biz.tills["T01"]
    printed = [s["receipt_no"] for s in sell_many(db, SALES)]

    # (which push of the round, seconds after it reached the hub)
    plan = [(1, 0.0), (2, rng.uniform(0.0, 0.005)), (3, rng.uniform(0.003, 0.03))]
    ks = KillSwitch(proxy)
    kills = []
    for rnd, (nth, delay) in enumerate(plan, start=1):
        if biz.hub_sales() >= SALES:
            break
        ks.arm("sent", nth, delay, biz.hub.kill)
        out = open(ctx.path("sync-%d.log" % rnd), "w+")
        p = popen(["sync", "--db", db, "--batch", BATCH, "--json"], stdout=out,
                  stderr=subprocess.STDOUT)
        killed = ks.wait(p)
        ks.disarm()
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_proc(p)
            raise AssertionError("duka sync did not exit within 60 s after the hub was killed")
        out.seek(0)
        text = out.read().strip()
        out.close()
        if not killed:
            log("  round %d: sync exited %s before push #%d of the round" % (rnd, rc, nth))
            continue
        at_kill = biz.hub_sales()
        kills.append(at_kill)
        log("  round %d: hub SIGKILLed %.1f ms into push #%d; %d/%d sales applied; sync exit %s"
            % (rnd, delay * 1000, nth, at_kill, SALES, rc))
        if at_kill < SALES:
            check(rc != 0, "duka sync exited 0 although the hub died with %d of %d sales (output: %s)"
                  % (at_kill, SALES, text[-300:]))
        biz.hub.start()

    check(kills, "never managed to kill the hub mid-push: every sync finished first")
    attempts, j = sync_until_ok(db, "--batch", BATCH)
    log("  final sync: %d attempt(s), last %r" % (attempts, j))
    assert_hub_has_exactly(biz, printed, "after %d hub kills: " % len(kills))
    assert_queue_drained(db)


if __name__ == "__main__":
    suite.main()
