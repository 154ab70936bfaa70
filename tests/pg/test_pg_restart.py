#!/usr/bin/env python3
"""PostgreSQL restarted while tills push (issue 5, item 4).

Two tills (`duka till` with their sync workers) sell through their local API and sync, and a
third terminal pushes batches of 150 sales back to back (raw pushes, so one is nearly always
in flight), while the PostgreSQL under the hub is restarted twice (a fast shutdown: every
connection is cut, a push in flight fails). The hub process is never restarted: it resets its
connection at the next request (its log says "reconnected"); a push that was in flight, or
that came while the server was down, is answered 503 with Retry-After and sent again (the
pusher saw at least one). When the queues are drained the hub holds exactly the receipts the
tills printed and the pusher sent — none lost, none twice.

Run under tests/pg/run_with_pg.sh (it exports DUKA_PG_DIR, which scripts/pg.sh restarts).
"""

import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from harness import (REPO, Suite, Till, assert_hub_has_exactly, check, check_eq,  # noqa: E402
                     free_port, log, pg_env, pg_mode, push, sale_command, sale_line, wait_for)

suite = Suite("pg_restart")
PER_TILL = 45
RESTART_AFTER = (12, 30)  # restart when this many sales were made by each till
RAW_BATCH = 150


def restart_postgres():
    t0 = time.monotonic()
    p = subprocess.run(["bash", os.path.join(REPO, "scripts", "pg.sh"), "restart",
                        pg_env("DUKA_PG_DIR")], capture_output=True, text=True, timeout=120)
    check_eq(p.returncode, 0, "scripts/pg.sh restart (stderr %s)" % p.stderr.strip())
    return time.monotonic() - t0


@suite.test
def postgres_restarts_while_tills_push_and_nothing_is_lost(ctx):
    check(pg_mode(), "run with DUKA_E2E_HUB_DB=pg (tests/pg/run_with_pg.sh)")
    from harness import setup_business
    biz = setup_business(ctx.tmp, free_port(), terminals=("T01", "T02", "T03"))
    tills = {t: Till(biz.tills[t], free_port(), sync_interval=1).start()
             for t in ("T01", "T02")}
    made = {t: [] for t in tills}
    lock = threading.Lock()
    errors = []
    restarts_done = threading.Event()
    raw = {"receipts": [], "503": 0, "batches": 0}

    def raw_pusher():
        """T03 pushes batch after batch; a 503 means send the same batch again."""
        try:
            seq = 0
            line = sale_line("RICE", "Pishori rice per kg", 500, 18000, "E")
            while not restarts_done.is_set() or raw["batches"] < 3:
                cmds = [sale_command("T03", seq + i + 1, [line]) for i in range(RAW_BATCH)]
                seq += RAW_BATCH
                for attempt in range(200):
                    status, reply = push(biz.hub.port, biz.tokens["T03"], cmds)
                    if status == 200:
                        break
                    check_eq(status, 503, "a raw push during the restarts (reply %r)" % (reply,))
                    raw["503"] += 1
                    time.sleep(0.05)
                else:
                    raise AssertionError("a raw batch was refused 200 times")
                statuses = {r["status"] for r in reply["results"]}
                check(statuses <= {"applied", "duplicate"}, "raw push answers: %r" % statuses)
                raw["receipts"] += [c["payload"]["receipt_no"] for c in cmds]
                raw["batches"] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def sell(t):
        try:
            for i in range(PER_TILL):
                r = tills[t].sale("SUGAR1KG", "MILK500*%d" % (1 + i % 3))
                with lock:
                    made[t].append(r["receipt_no"])
                time.sleep(0.02)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    sellers = [threading.Thread(target=sell, args=(t,)) for t in tills]
    sellers.append(threading.Thread(target=raw_pusher))
    for th in sellers:
        th.start()
    for n in RESTART_AFTER:
        wait_for(lambda: min(len(v) for v in made.values()) >= n or errors, 120,
                 "%d sales on each till" % n)
        dt = restart_postgres()
        log("  PostgreSQL restarted after %d sales per till (%.1fs)" % (n, dt))
    restarts_done.set()
    for th in sellers:
        th.join()
    if errors:
        raise errors[0]
    check_eq(len(made["T01"]) + len(made["T02"]), 2 * PER_TILL, "sales made")
    printed = made["T01"] + made["T02"] + raw["receipts"]

    def drained():
        return all(till.status().get("pending") == 0 for till in tills.values())

    wait_for(drained, 120, "both tills' queues to drain after the restarts")
    assert_hub_has_exactly(biz, printed, "after two PostgreSQL restarts: ")
    check(biz.hub.running() and biz.hub.starts == 1, "the hub process was restarted or died")
    hub_log = biz.hub.log_tail(10 ** 7)
    check("reconnected" in hub_log, "the hub never logged a reconnect: %s" % hub_log[-2000:])
    log("  %d sales (%d raw batches) arrived once; the hub reconnected %d time(s); the raw "
        "pusher got 503 %d time(s) (%d failed mid-push)"
        % (len(printed), raw["batches"], hub_log.count("reconnected"), raw["503"],
           hub_log.count("push failed")))
    check(raw["503"] > 0, "no raw push was refused while PostgreSQL restarted: was any in flight?")
    for t, till in tills.items():
        st = till.status()
        check_eq((st.get("failed"), st.get("conflicts")), (0, 0), "%s failed/conflicts" % t)


if __name__ == "__main__":
    suite.main()
