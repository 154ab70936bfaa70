#!/usr/bin/env python3
"""Many writers on one till database at once must never corrupt it.

The serving till's API threads commit sales on their own connections while its sync worker,
woken by every sale, checkpoints the write-ahead log, and `duka sell` processes commit beside
them. With SQLite before 3.51.3 (Debian 12 ships 3.40) a PASSIVE checkpoint racing a commit
that resets the WAL can corrupt the file (the WAL-reset bug): this test caught it in duka
(about one run in five at this size) before checkpoints moved to FULL mode under the writer
lock. It ends with PRAGMA integrity_check and exact counts: every sale once, in the sales
table and in the outbox, receipt numbers unique and gap-free.
"""

import os
import sqlite3
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SKUS, Suite, Till, check, check_eq, free_port, log, sell,  # noqa: E402
                     setup_business)

suite = Suite("concurrent_writers")
API_THREADS = 4
API_SALES = int(os.environ.get("DUKA_E2E_WRITER_SALES", "2400"))
CLI_SALES = 30


@suite.test
def api_threads_worker_checkpoints_and_cli_sales_keep_the_database_whole(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    biz.hub.stop()
    # Switched offline: the worker never syncs, but every sale still wakes it to checkpoint.
    till = Till(db, free_port(), extra=["--offline"]).start()
    receipts, errors = [], []
    lock = threading.Lock()

    def api(k):
        try:
            for i in range(API_SALES // API_THREADS):
                r = till.sale(SKUS[(i + k) % len(SKUS)], "%s*2" % SKUS[(i * 3 + k) % len(SKUS)])
                with lock:
                    receipts.append(r["receipt_no"])
        except Exception as e:  # noqa: BLE001 — reported below
            errors.append("API thread %d: %s" % (k, e))

    def cli():
        try:
            for i in range(CLI_SALES):
                r = sell(db, SKUS[i % len(SKUS)])
                with lock:
                    receipts.append(r["receipt_no"])
        except Exception as e:  # noqa: BLE001
            errors.append("duka sell: %s" % e)

    threads = [threading.Thread(target=api, args=(k,)) for k in range(API_THREADS)]
    threads.append(threading.Thread(target=cli))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_eq(errors, [], "errors while selling")
    check_eq(till.stop(), 0, "duka till exit code on SIGTERM")

    with sqlite3.connect(db) as c:
        integrity = c.execute("PRAGMA integrity_check").fetchall()
        sales = c.execute("SELECT count(*) FROM sales").fetchone()[0]
        outbox = c.execute("SELECT count(*) FROM outbox").fetchone()[0]
    log("  %d sales from %d API threads and duka sell; integrity %s"
        % (len(receipts), API_THREADS, integrity[0][0]))
    check_eq(integrity, [("ok",)], "PRAGMA integrity_check")
    n = API_SALES // API_THREADS * API_THREADS + CLI_SALES
    check_eq(len(receipts), n, "sales made")
    check_eq(sales, n, "rows in sales")
    check_eq(outbox, n, "rows in the outbox")
    check_eq(len(set(receipts)), n, "unique receipt numbers")
    seqs = sorted(int(r.rsplit("-", 1)[1]) for r in receipts if r.rsplit("-", 2)[1] == receipts[0].rsplit("-", 2)[1])
    check(seqs == list(range(1, len(seqs) + 1)),
          "receipt numbers of the day are not gap-free from 00001: first %r, last %r"
          % (seqs[:3], seqs[-3:]))


if __name__ == "__main__":
    suite.main()
