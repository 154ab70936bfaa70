#!/usr/bin/env python3
"""Receipt numbers are never reused after a restore from backup (PRODUCT.md invariant 3).

A till database is copied (SQLite's online backup, as a shop would back it up), more sales are
made and synced, then the old copy is put back. The hub sends with every pull the highest
receipt sequence it holds per day for the terminal, and the till raises its counter to it:
- restored, then synced before selling: the next number continues above what the hub has;
  the restored outbox's old items are answered "duplicate"; nothing is lost or doubled;
- restored and selling at once (before any sync): the reused number cannot be avoided on the
  till, but the hub keeps the first sale, logs the second as a conflict with its payload, and
  the till shows it as a conflict — never a silent second sale, never a silent drop — and the
  next number after that sync continues above the hub's.
"""

import os
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, check_eq, free_port, log, queue, sell, setup_business,  # noqa: E402
                     status, sync)

suite = Suite("restore_backup")


def backup(src, dst):
    """SQLite's online backup API: a consistent copy while nothing else needs to stop."""
    s = sqlite3.connect(src)
    d = sqlite3.connect(dst)
    s.backup(d)
    d.close()
    s.close()


def restore(copy, db):
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    shutil.copyfile(copy, db)


def seq(receipt_no):
    return int(receipt_no.rsplit("-", 1)[1])


@suite.test
def restored_till_continues_above_the_hub(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    first = sell(db, "SUGAR1KG")["receipt_no"]
    copy = ctx.path("till-backup.db")
    backup(db, copy)
    later = [sell(db, "RICE")["receipt_no"] for _ in range(4)]
    rc, j, err = sync(db)
    check_eq(rc, 0, "sync before the restore (stderr %s)" % err.strip())
    check_eq(biz.hub_sales(), 5, "hub sales before the restore")

    restore(copy, db)
    check_eq(status(db).get("pending"), 1, "pending after restoring the backup (its one sale)")
    rc, j, err = sync(db)
    check_eq(rc, 0, "first sync after the restore (stderr %s)" % err.strip())
    check_eq(j.get("duplicates"), 1, "the restored outbox item is answered duplicate")
    nxt = sell(db, "RICE")["receipt_no"]
    log("  before the restore: %s .. %s; first sale after restore + sync: %s"
        % (first, later[-1], nxt))
    check_eq(seq(nxt), seq(later[-1]) + 1, "the first number after restore and sync")
    rc, j, err = sync(db)
    check_eq(rc, 0, "sync after the new sale")
    r = biz.report()
    check_eq(r["sales"], 6, "hub sales")
    check_eq(r["conflicts"], 0, "hub conflicts")
    check_eq(sorted(r["receipts"]), sorted([first] + later + [nxt]), "hub receipts")


@suite.test
def restored_till_selling_at_once_makes_a_visible_conflict_not_a_loss(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    first = sell(db, "SUGAR1KG")["receipt_no"]
    rc, _, _ = sync(db)
    check_eq(rc, 0, "first sync")
    copy = ctx.path("till-backup.db")
    backup(db, copy)
    later = [sell(db, "RICE")["receipt_no"] for _ in range(2)]
    rc, _, _ = sync(db)
    check_eq(rc, 0, "sync before the restore")

    restore(copy, db)
    reused = sell(db, "BREAD400")["receipt_no"]  # no sync yet: the till cannot know
    check_eq(reused, later[0], "the number a restored till issues before its first sync")
    rc, j, err = sync(db)
    check_eq(rc, 0, "sync of the reused number (stderr %s)" % err.strip())
    check_eq(j.get("conflicts"), 1, "sync conflicts")
    r = biz.report()
    check_eq(r["sales"], 3, "hub sales: the first sale with that number stands")
    check_eq(r["conflicts"], 1, "hub conflicts: the second one is logged, not dropped")
    conflict_items = queue(db, "conflict")
    check_eq([i.get("entity_id") for i in conflict_items], [reused], "till conflict items")
    check("conflicts" in [a.get("code") for a in status(db).get("alerts", [])],
          "status alerts lack 'conflicts': %r" % status(db).get("alerts"))
    with sqlite3.connect(biz.hub_db) as h:
        rows = h.execute("SELECT entity_id, payload FROM conflicts").fetchall()
    check(len(rows) == 1 and rows[0][0] == reused and "BREAD400" in rows[0][1],
          "the hub's conflict row keeps the second sale's payload: %r" % rows)
    nxt = sell(db, "RICE")["receipt_no"]
    check_eq(seq(nxt), seq(later[-1]) + 1, "the next number after that sync")


if __name__ == "__main__":
    suite.main()
