#!/usr/bin/env python3
"""Exclusive listening ports (issue 10). A `duka till` or `duka hub` started on the address of a
running one must refuse to start, with ONE stderr line naming the address
(`duka till: 127.0.0.1:PORT is already in use (another duka till or hub?)`), exit 1, while the
first keeps answering every request: two processes sharing a port (SO_REUSEPORT) split the
requests between them, and a sale lands in the wrong till. Several hubs on one port are an
explicit choice, `duka hub --reuse-port`, which the till does not have. Other reasons a listen
fails are named too: an address that is not this machine's, a port only root may use.
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOWDOWN, Hub, Suite, Till, check, check_eq, expect_error,  # noqa: E402
                     free_port, http_json, log, popen, run_json, setup_business)

suite = Suite("ports")

REQUESTS = 40


def in_use_line(cmd, port):
    return "duka %s: 127.0.0.1:%d is already in use (another duka till or hub?)" % (cmd, port)


def expect_refused(ctx, args, want_line, seconds=15):
    """Starts `duka ARGS` and expects it to exit 1 within `seconds` with exactly want_line on
    stderr. A process that keeps running is the bug itself: it is killed and the test fails."""
    err_path = ctx.path("refused-%d.log" % time.monotonic_ns())
    with open(err_path, "wb") as errf:
        p = popen(args, stderr=errf)
    try:
        rc = p.wait(timeout=seconds * SLOWDOWN)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)
        raise AssertionError("duka %s started on a port in use and kept running (it shares the "
                             "port: requests split between the two)" % " ".join(args))
    with open(err_path, "r", errors="replace") as f:
        lines = [l for l in f.read().split("\n") if l.strip()]
    os.unlink(err_path)
    check_eq(rc, 1, "exit code of duka %s on a busy port" % " ".join(args))
    check_eq(lines, [want_line], "stderr of duka %s on a busy port" % " ".join(args))


def till_terminals(port, n=REQUESTS):
    """The terminal that answers each of n GET /api/status on port."""
    seen = []
    for _ in range(n):
        status, body = http_json("GET", port, "/api/status", timeout=10)
        check_eq(status, 200, "GET /api/status")
        seen.append(body.get("terminal"))
    return seen


def hub_businesses(port, token, n=REQUESTS):
    """The business of the hub that answers each of n GET /v1/whoami with token (None: 401)."""
    seen = []
    for _ in range(n):
        status, body = http_json("GET", port, "/v1/whoami",
                                 headers={"Authorization": "Bearer " + token}, timeout=10)
        seen.append(body.get("business_id") if status == 200 else None)
    return seen


@suite.test
def second_till_on_a_busy_port_is_refused(ctx):
    biz = setup_business(ctx.tmp, free_port(), terminals=("T01", "T02"))
    port = free_port()
    Till(biz.tills["T01"], port).start()
    expect_refused(ctx, ["till", "--db", biz.tills["T02"], "--listen", "127.0.0.1:%d" % port,
                         "--sync-interval", "1"], in_use_line("till", port))
    seen = till_terminals(port)
    check_eq(set(seen), {"T01"}, "terminals answering the first till's port")


@suite.test
def second_hub_on_a_busy_port_is_refused(ctx):
    biz = setup_business(ctx.tmp, free_port())
    other = ctx.path("other-hub.db")
    run_json(["hub", "init", "--db", other, "--business", "Another Shop", "--json"])
    expect_refused(ctx, ["hub", "--db", other, "--listen", "127.0.0.1:%d" % biz.hub.port],
                   in_use_line("hub", biz.hub.port))
    # Even asking for a shared port does not join a hub that did not ask for one.
    expect_refused(ctx, ["hub", "--db", other, "--listen", "127.0.0.1:%d" % biz.hub.port,
                         "--reuse-port"], in_use_line("hub", biz.hub.port))
    seen = hub_businesses(biz.hub.port, biz.tokens["T01"])
    check_eq(set(seen), {biz.business_id}, "businesses answering the first hub's port")


@suite.test
def a_till_never_shares_a_port(ctx):
    biz = setup_business(ctx.tmp, free_port())
    port = free_port()
    Till(biz.tills["T01"], port).start()
    # The hub may not join a till's port, and the till has no --reuse-port.
    expect_refused(ctx, ["hub", "--db", biz.hub_db, "--listen", "127.0.0.1:%d" % port,
                         "--reuse-port"], in_use_line("hub", port))
    expect_error(["till", "--db", biz.tills["T01"], "--listen", "127.0.0.1:%d" % free_port(),
                  "--reuse-port"], ["unknown option '--reuse-port'"], rc=2)
    check_eq(set(till_terminals(port)), {"T01"}, "terminals answering the till's port")


@suite.test
def two_hubs_with_reuse_port_both_serve(ctx):
    biz = setup_business(ctx.tmp, free_port())
    port = free_port()
    a = Hub(biz.hub_db, port, logdir=ctx.tmp, extra=["--reuse-port"]).start()
    b = Hub(biz.hub_db, port, logdir=ctx.tmp, extra=["--reuse-port"])
    b.starts = 1  # its own log file
    b.start()
    check(a.running() and b.running(), "both hubs with --reuse-port run")
    check_eq(set(hub_businesses(port, biz.tokens["T01"])), {biz.business_id},
             "businesses answering the shared port")
    # A till (or a hub without --reuse-port) is still refused on it.
    expect_refused(ctx, ["till", "--db", biz.tills["T01"], "--listen", "127.0.0.1:%d" % port],
                   in_use_line("till", port))
    expect_refused(ctx, ["hub", "--db", biz.hub_db, "--listen", "127.0.0.1:%d" % port],
                   in_use_line("hub", port))
    # The kernel hands connections to both: stop one, the other goes on alone.
    a.stop()
    check_eq(set(hub_businesses(port, biz.tokens["T01"], 10)), {biz.business_id},
             "businesses answering after one hub stopped")
    log("  two hubs shared port %d; one stopped, the other serves" % port)


@suite.test
def other_listen_failures_are_named(ctx):
    biz = setup_business(ctx.tmp, free_port())
    port = free_port()
    # 192.0.2.1 (TEST-NET-1) is no address of this machine.
    expect_refused(ctx, ["till", "--db", biz.tills["T01"], "--listen", "192.0.2.1:%d" % port],
                   "duka till: cannot listen on 192.0.2.1:%d: that address is not one of this "
                   "machine's" % port)
    if os.geteuid() != 0:
        expect_refused(ctx, ["hub", "--db", biz.hub_db, "--listen", "127.0.0.1:80"],
                       "duka hub: cannot listen on 127.0.0.1:80: not allowed (ports below 1024 "
                       "need root or CAP_NET_BIND_SERVICE)")


if __name__ == "__main__":
    suite.main()
