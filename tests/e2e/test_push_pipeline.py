#!/usr/bin/env python3
"""A sync keeps up to three pushes in flight (OFFLINE_QUEUE_PUSHES_IN_FLIGHT, default 3).

The till claims and sends the next batch while the hub applies the one before, so the till,
the hub and its database work at once. A slow forwarding proxy between till and hub counts
the pushes it holds at the same moment and answers chosen pushes itself.

- By default three pushes are in flight at once (never more); set to 2, two; set to 1, one
  at a time. Either way the batches are claimed in outbox order (two in flight may reach the hub
  in either order, never further apart), every sale reaches the hub once and the queue
  drains.
- The first of two pushes in flight fails (503) after the second was sent: the second is
  still applied and recorded, the first batch goes back to pending, the sync reports the
  failure, and the next sync sends exactly what is missing — nothing twice, nothing lost.
"""

import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, assert_hub_has_exactly, assert_queue_drained, check,  # noqa: E402
                     check_eq, free_port, queue, run, run_ok, sell, setup_business)

suite = Suite("push_pipeline")

HOLD_S = 0.4  # how long the proxy holds each push: long enough for the next one to arrive


class Proxy:
    """Forwards every request to the hub; holds each POST /v1/push HOLD_S first and records
    how many it held at once and the first command id of each, and answers 503 itself, once,
    for a push whose first command id is in fail_first_ids, after another push has arrived
    (by batch, not by arrival: pushes in flight together race to the proxy)."""

    def __init__(self, hub_url):
        self.hub_url = hub_url
        self.fail_first_ids = set()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.in_flight = self.max_in_flight = self.pushes = 0
        self.first_ids = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.forward(None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/push":
                    self.forward(body)
                    return
                with proxy.lock:
                    proxy.pushes += 1
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                    first = json.loads(body)["commands"][0]["id"]
                    proxy.first_ids.append(first)
                    proxy.arrived.notify_all()
                try:
                    if first in proxy.fail_first_ids:
                        with proxy.lock:  # once, and only once another push is on its way
                            proxy.fail_first_ids.discard(first)
                            proxy.arrived.wait_for(lambda: proxy.pushes > 1, timeout=10)
                        self.answer(503, b'{"error":{"code":"unavailable","message":"test"}}',
                                    {"Content-Type": "application/json"})
                        return
                    time.sleep(HOLD_S)
                    self.forward(body)
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1

            def forward(self, body):
                req = urllib.request.Request(proxy.hub_url + self.path, data=body,
                                             method=self.command)
                for h in ("Authorization", "Content-Type"):
                    if self.headers.get(h):
                        req.add_header(h, self.headers[h])
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        self.answer(r.status, r.read(), r.headers)
                except urllib.error.HTTPError as e:
                    self.answer(e.code, e.read(), e.headers)

            def answer(self, status, data, headers):
                self.send_response(status)
                self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def business_behind_proxy(ctx):
    """A business whose till T01 reaches its hub through a Proxy."""
    biz = setup_business(ctx.tmp, free_port())
    proxy = Proxy(biz.hub.url)
    ctx.on_cleanup(proxy.stop)
    db = ctx.path("till-proxied.db")
    run_ok(["till", "init", "--db", db, "--hub", proxy.url, "--terminal", "T01", "--token",
            biz.tokens["T01"]])
    return biz, proxy, db


def sell_n(db, n):
    return [sell(db, "SODA300")["receipt_no"] for _ in range(n)]


def outbox_order(db):
    """Command ids of the till's queue, oldest first."""
    return [it["command_id"] for it in sorted(queue(db), key=lambda it: it["id"])]


def sync_batches_of_2(db, in_flight=None):
    """`duka sync --batch 2 --json`, with OFFLINE_QUEUE_PUSHES_IN_FLIGHT when given."""
    env = {"OFFLINE_QUEUE_PUSHES_IN_FLIGHT": str(in_flight)} if in_flight else None
    rc, out, err = run(["sync", "--db", db, "--batch", "2", "--json"], env=env)
    return rc, json.loads(out) if out.strip() else None, err


def check_claimed_in_order(first_ids, order, window):
    """The batches are the outbox's items two by two, claimed oldest first: the k-th batch
    holds items 2k and 2k+1. Pushes in flight together race to the proxy, so one may arrive
    before the one claimed just before it, but never more than the window apart (the batch
    after them is claimed only once the first of them is answered)."""
    check_eq(sorted(first_ids, key=order.index), order[::2], "batches claimed in outbox order")
    for arrived, first in enumerate(first_ids):
        claimed = order.index(first) // 2
        check(abs(arrived - claimed) < window,
              "batch %d (claimed %d-th) arrived %d-th: further out of order than %d in flight"
              % (claimed, claimed, arrived, window))


def drain(ctx, in_flight):
    biz, proxy, db = business_behind_proxy(ctx)
    printed = sell_n(db, 12)
    order = outbox_order(db)
    rc, j, err = sync_batches_of_2(db, in_flight)
    check_eq(rc, 0, "duka sync exit (stderr: %s)" % err.strip())
    check_eq(j["pushed"], 12, "pushed")
    check_eq(proxy.pushes, 6, "pushes of 2 sales")
    check_claimed_in_order(proxy.first_ids, order, in_flight or 3)
    assert_hub_has_exactly(biz, printed)
    assert_queue_drained(db)
    return proxy.max_in_flight


@suite.test
def test_three_pushes_in_flight_by_default(ctx):
    check_eq(drain(ctx, None), 3, "pushes in flight at once (default)")


@suite.test
def test_two_when_set_to_2(ctx):
    check_eq(drain(ctx, 2), 2, "pushes in flight at once with OFFLINE_QUEUE_PUSHES_IN_FLIGHT=2")


@suite.test
def test_one_at_a_time_when_set_to_1(ctx):
    check_eq(drain(ctx, 1), 1, "pushes in flight at once with OFFLINE_QUEUE_PUSHES_IN_FLIGHT=1")


@suite.test
def test_failed_push_does_not_lose_the_one_behind_it(ctx):
    biz, proxy, db = business_behind_proxy(ctx)
    printed = sell_n(db, 4)
    order = outbox_order(db)
    proxy.fail_first_ids.add(order[0])  # the first batch claimed
    rc, j, err = sync_batches_of_2(db)
    check_eq(rc, 1, "duka sync exit when the first push failed")
    check("503" in err, "the failure is reported: %r" % err.strip())
    check_eq(proxy.max_in_flight, 2, "the second push was in flight when the first failed")
    # The second batch was applied and recorded; the first is pending again.
    pending = [it["command_id"] for it in queue(db, "pending")]
    check_eq(sorted(pending), sorted(order[:2]), "pending after the failed push")
    check_eq(biz.hub_sales(), 2, "sales at the hub after the first sync")
    rc, j, err = sync_batches_of_2(db)
    check_eq(rc, 0, "second duka sync exit (stderr: %s)" % err.strip())
    check_eq(j["pushed"], 2, "the second sync sends only the failed batch")
    check_eq(j["duplicates"], 0, "nothing sent twice")
    assert_hub_has_exactly(biz, printed)
    assert_queue_drained(db)


if __name__ == "__main__":
    suite.main()
