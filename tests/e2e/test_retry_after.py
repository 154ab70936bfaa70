#!/usr/bin/env python3
"""A hub that answers 503 with Retry-After for a while: faultproxy (mode status) answers the
first PUSHES_503 pushes itself with 503, a JSON error body and `Retry-After: 2`, then passes.
The serving till's worker (default settings, except a 100 ms backoff base so that only the
Retry-After can explain a pause of 2 s) keeps retrying by itself:

- no push comes sooner than the Retry-After after a 503 — not even when a new sale asks for
  a sync in between (checked at the proxy and in `duka history`);
- no item becomes `failed` although there were as many 503s as an item's max attempts (5);
- `duka history` records each 503 attempt (http_status 503), then a successful push;
- the till goes `degraded` (5xx in a row), then `online` again;
- the hub ends with exactly the sales made, once each; the outbox drains.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy  # noqa: E402
from harness import (Suite, Till, assert_hub_has_exactly, assert_queue_drained, check,  # noqa: E402
                     check_eq, free_port, history, log, parse_time, queue, sell_many,
                     setup_business, status, wait_for)

suite = Suite("retry_after")
RETRY_AFTER = 2      # seconds, in the injected Retry-After header
PUSHES_503 = 5       # = OFFLINE_QUEUE_MAX_RETRIES' default: 503s must not use up attempts
TOLERANCE = 0.05     # s: clock granularity (history has ms, the proxy sees arrival times)


@suite.test
def hub_503_with_retry_after_is_waited_out(ctx):
    hub_port = free_port()
    proxy = FaultProxy(("127.0.0.1", hub_port), mode="pass").start()
    ctx.on_cleanup(proxy.stop)
    biz = setup_business(ctx.tmp, hub_port, till_hub_url="http://127.0.0.1:%d" % proxy.port)
    db = biz.tills["T01"]
    made = sell_many(db, 10)

    # From now on the first PUSHES_503 pushes get 503 + Retry-After (health probes pass).
    proxy.status, proxy.retry_after, proxy.remaining = 503, RETRY_AFTER, PUSHES_503
    proxy.match = "/v1/push"
    proxy.mode = "status"
    till = Till(db, free_port(), sync_interval=None,
                env={"OFFLINE_QUEUE_BACKOFF_BASE": "100ms"}).start()
    wait_for(lambda: proxy.answered >= 1, 30, "the worker's first push (answered 503)",
             interval=0.02)
    # A sale asks the worker for a sync: it must still wait for the Retry-After.
    made.append(till.sale("SODA300*2", "BREAD400"))
    printed = [s["receipt_no"] for s in made]
    n = len(printed)

    try:
        wait_for(lambda: biz.hub_sales() >= n, 90, "all %d sales at the hub" % n, interval=0.1)
    except AssertionError as e:
        raise AssertionError("%s; proxy saw %r; till log: %s"
                             % (e, proxy.log, till.log_tail(2000)))
    wait_for(lambda: till.status().get("pending") == 0, 30, "GET /api/status pending 0")
    # The monitor hears of the successful sync just after its items are marked done.
    wait_for(lambda: till.status().get("connectivity") == "online", 30,
             "GET /api/status connectivity online after the 503s")
    check_eq(proxy.answered, PUSHES_503, "pushes answered 503 by the proxy")
    st = till.status()
    check_eq(st.get("failed"), 0, "GET /api/status failed after %d 503s" % PUSHES_503)
    check("items_failed" not in [a.get("code") for a in st.get("alerts", [])],
          "items_failed alert after 503s: %r" % st.get("alerts"))
    check_eq(till.stop(), 0, "duka till exit code on SIGTERM")
    transitions = [l.split("till: ", 1)[-1] for l in till.log_tail(100000).splitlines()
                   if "connectivity " in l and "->" in l]
    log("  connectivity changes: %s" % "; ".join(transitions))
    # 3 (CONNECTIVITY_DEGRADED_FAILURES) 5xx answers in a row: degraded; then online again.
    check(any(t.endswith("-> degraded") for t in transitions),
          "the till never went degraded after %d 503s in a row: %r" % (PUSHES_503, transitions))
    check(transitions and transitions[-1].endswith("-> online"),
          "the till's last connectivity change is not to online: %r" % transitions)

    # At the proxy: the gaps between a 503 and the next push.
    tl = [(t, outcome) for t, m, p, outcome in proxy.timeline if p.startswith("/v1/push")]
    check(len(tl) > PUSHES_503, "pushes seen by the proxy: %r" % tl)
    check_eq([o for _, o in tl[:PUSHES_503]], [503] * PUSHES_503, "first pushes' outcomes")
    gaps = [b[0] - a[0] for a, b in zip(tl, tl[1:PUSHES_503 + 1])]
    log("  gaps after each 503 (at the proxy): %s s" % ", ".join("%.2f" % g for g in gaps))
    for i, g in enumerate(gaps):
        check(g >= RETRY_AFTER - TOLERANCE,
              "push %d came %.3f s after a 503 with Retry-After: %d" % (i + 2, g, RETRY_AFTER))

    # In duka history: the 503 attempts, then a successful push.
    rows = sorted((a for a in history(db) if a.get("direction") == "push"),
                  key=lambda a: a["started"])
    bad = [a for a in rows if a.get("http_status") == 503]
    check_eq(len(bad), PUSHES_503, "push attempts with http_status 503 in duka history "
             "(pushes: %r)" % [(a["started"], a["http_status"]) for a in rows])
    for a in bad:
        check_eq((a.get("ok"), a.get("failed")), (0, 0), "a 503 attempt's (ok, failed)")
        check(a.get("error"), "a 503 attempt in duka history has no error: %r" % a)
    first = rows.index(bad[0])
    seq = rows[first:first + PUSHES_503 + 1]
    check_eq([a["http_status"] for a in seq], [503] * PUSHES_503 + [200],
             "http_status of consecutive push attempts from the first 503")
    hgaps = [parse_time(b["started"]) - parse_time(a["started"]) for a, b in zip(seq, seq[1:])]
    log("  gaps after each 503 (duka history): %s s" % ", ".join("%.3f" % g for g in hgaps))
    for i, g in enumerate(hgaps):
        check(g >= RETRY_AFTER - TOLERANCE, "duka history: attempt %d started %.3f s after a 503 "
              "with Retry-After: %d" % (i + 2, g, RETRY_AFTER))

    st = status(db)
    check_eq(st.get("failed"), 0, "duka status failed")
    check_eq(queue(db, "failed"), [], "queue --status failed")
    r = assert_hub_has_exactly(biz, printed, "after %d 503s: " % PUSHES_503)
    check_eq(r.get("conflicts"), 0, "hub report conflicts")
    assert_queue_drained(db)
    log("  proxy saw: %s" % [(m, p, o) for m, p, o in proxy.log if p.startswith("/v1/push")])


if __name__ == "__main__":
    suite.main()
