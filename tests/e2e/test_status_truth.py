#!/usr/bin/env python3
"""Status that tells the truth, and the till as one service.

1. Right after `till init` pulled the catalog, the last sync is that pull, not "never".
2. GET /api/status: once the hub answers again (online), no stale last_error ("hub
   unreachable", "switched offline by hand") stays beside the green light.
3. `duka status` with no `duka till` running says so and how old the connectivity it shows
   is; with one running it says "running".
4. A second `duka till` on a database another one serves is refused, naming the first.
5. A sale made with `duka sell` while `duka till` serves the database is forwarded at once
   (the service is told), not at the next timer.
6. Sync history: the empty pulls of an idle till fold into one row with their count.
7. The shop's clock: receipts carry the date and time of SHOP_TIMEZONE (default
   Africa/Nairobi) whatever TZ the process has (unset, UTC).
"""

import calendar
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PRODUCTS, Suite, Till, check, check_eq, expect_error, free_port, history,  # noqa: E402
                     log, parse_time, run, run_json, sell, setup_business, status, wait_for)

suite = Suite("status_truth")


@suite.test
def last_sync_is_the_init_pull(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    st = status(db)
    check(st.get("last_sync") is not None, "last_sync right after till init: %r" % st)
    check(abs(parse_time(st["last_sync"]) - time.time()) < 120, "last_sync %r" % st["last_sync"])
    rows = history(db)
    check(rows and rows[0]["direction"] == "pull" and rows[0]["items"] == len(PRODUCTS),
          "the init pull is in the history: %r" % rows[:2])
    rc, out, err = run(["status", "--db", db])
    check(rc == 0 and "last sync: never" not in out, "duka status text: %r" % out)


@suite.test
def no_stale_error_once_online(ctx):
    biz = setup_business(ctx.tmp, free_port())
    till = Till(biz.tills["T01"], free_port(), sync_interval=1).start()
    wait_for(lambda: till.status()["connectivity"] == "online", 30, "online")
    biz.hub.stop()
    wait_for(lambda: till.status()["connectivity"] == "offline", 30, "offline")
    st = till.status()
    check(st["last_error"], "offline with a reason: %r" % st)
    biz.hub.start()
    wait_for(lambda: till.status()["connectivity"] == "online", 30, "online again")
    st = till.status()
    check_eq(st["last_error"], "", "last_error once online again")
    # The offline switch: on, then off, then online: no "switched offline by hand" left.
    till.set_offline(True)
    check_eq(till.status()["last_error"], "switched offline by hand", "switch on")
    till.set_offline(False)
    wait_for(lambda: till.status()["connectivity"] == "online", 30, "online after the switch")
    check_eq(till.status()["last_error"], "", "last_error after the switch went off")
    # What the worker recorded for `duka status` agrees.
    st = status(biz.tills["T01"])
    check_eq(st["service"], "running", "duka status while duka till serves")
    check_eq(st["last_error"], "", "recorded last_error")


@suite.test
def status_says_when_no_service_runs(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    st = status(db)
    check_eq(st["service"], "not_running", "service without duka till")
    check(isinstance(st["connectivity_age_s"], int) and st["connectivity_age_s"] >= 0,
          "connectivity_age_s: %r" % st)
    rc, out, err = run(["status", "--db", db])
    check(rc == 0 and "not running" in out and " ago" in out, "duka status text: %r" % out)
    till = Till(db, free_port(), sync_interval=None).start()
    st = status(db)
    check_eq(st["service"], "running", "service with duka till")
    check_eq(st["service_pid"], till.proc.pid, "the pid of the service")
    rc, out, err = run(["status", "--db", db])
    check(rc == 0 and "live" in out, "duka status text with the service: %r" % out)
    till.stop()
    check_eq(status(db)["service"], "not_running", "service after duka till stopped")


@suite.test
def one_service_per_database(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    first = Till(db, free_port()).start()
    line = expect_error(["till", "--db", db, "--listen", "127.0.0.1:%d" % free_port()],
                        ["already serves", str(first.proc.pid)], timeout=20)
    log("  second duka till: %s" % line)
    check(first.running(), "the first duka till still runs")
    # Killed with -9, the lock goes with it: a new one starts.
    first.kill()
    Till(db, free_port()).start()


@suite.test
def duka_sell_wakes_the_service(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    # A long interval: only being told makes it sync soon.
    till = Till(db, free_port(), sync_interval=600).start()
    wait_for(lambda: till.status()["connectivity"] == "online" and
             status(db)["pending"] == 0, 30, "online and drained")
    r = sell(db, "SUGAR1KG")
    t0 = time.monotonic()
    wait_for(lambda: r["receipt_no"] in biz.report()["receipts"], 15,
             "the sale made by duka sell to reach the hub")
    log("  duka sell's sale at the hub after %.1f s (interval 600 s)" % (time.monotonic() - t0))


@suite.test
def empty_pulls_fold_into_one_row(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    till = Till(db, free_port(), sync_interval=1).start()
    wait_for(lambda: any(r["direction"] == "pull" and r.get("repeats", 1) >= 4
                         for r in history(db)), 60, "four empty pulls folded")
    rows = history(db)
    empty = [r for r in rows if r["direction"] == "pull" and r["items"] == 0 and not r["error"]]
    check(len(empty) <= 2, "empty pulls in a row fold into one row, got %d rows: %r"
          % (len(empty), rows[:6]))
    check(parse_time(empty[0]["last"]) >= parse_time(empty[0]["started"]), "last >= started")
    # A sale in between starts a new row after the push.
    sell(db, "SUGAR1KG")
    wait_for(lambda: history(db)[0]["direction"] == "pull" and
             any(r["direction"] == "push" for r in history(db)[:3]), 30, "a push in the history")
    rc, out, err = run(["history", "--db", db])
    check(rc == 0 and "empty pulls" in out, "duka history text shows the count: %r" % out[:600])
    till.stop()


def nairobi_now():
    return time.gmtime(time.time() + 3 * 3600)


@suite.test
def receipts_follow_the_shop_zone(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    failures = []
    for env in ({"TZ": "UTC"}, {"TZ": ""}, {"TZ": "America/New_York"}, None):
        before = nairobi_now()
        rc, out, err = run(["sell", "--db", db, "SUGAR1KG"], env=env)
        after = nairobi_now()
        days = {time.strftime("%Y%m%d", before), time.strftime("%Y%m%d", after)}
        m = re.search(r"Receipt T01-(\d{8})-\d+", out)
        stamp = re.search(r"(\d{4}-\d\d-\d\d \d\d):\d\d:\d\d", out)
        hours = {time.strftime("%Y-%m-%d %H", before), time.strftime("%Y-%m-%d %H", after)}
        if rc != 0 or not m or m.group(1) not in days or not stamp or stamp.group(1) not in hours:
            failures.append("TZ=%r: receipt %r (Nairobi now %s)" % (env, out[:200], hours))
    # Another shop zone moves both: New York is 8 hours behind Nairobi.
    rc, out, err = run(["sell", "--db", db, "SUGAR1KG"], env={"SHOP_TIMEZONE": "America/New_York"})
    stamp = re.search(r"(\d{4}-\d\d-\d\d \d\d):\d\d:\d\d", out)
    ny = time.gmtime(calendar.timegm(nairobi_now()) - 8 * 3600)
    ny_hours = {time.strftime("%Y-%m-%d %H", ny),
                time.strftime("%Y-%m-%d %H", time.gmtime(calendar.timegm(ny) + 60))}
    if not stamp or stamp.group(1) not in ny_hours:
        failures.append("SHOP_TIMEZONE=America/New_York: %r (want %s)" % (out[:200], ny_hours))
    check(not failures, "\n  " + "\n  ".join(failures))
    # A zone this machine does not know: sold anyway, the default used, and said.
    rc, out, err = run(["sell", "--db", db, "SUGAR1KG"], env={"SHOP_TIMEZONE": "Mars/Olympus"})
    check(rc == 0 and "SHOP_TIMEZONE" in err and "Mars/Olympus" in err, "unknown zone: %s %r"
          % (rc, err))


if __name__ == "__main__":
    suite.main()
