#!/usr/bin/env python3
"""A duplicate arriving while its original is still being applied.

The same large batch (300 sale.create commands) is POSTed to /v1/push on three connections at
the same instant (a barrier releases the three senders together), round after round; in every
other round the three batches overlap instead of being equal (each shares half its commands
with the next), so a command is applied from whichever batch the hub takes first. Every
answer must be 200 (never 409 or 503: the duplicate waits for the original), every command
must be `applied` in exactly one answer and `duplicate` (first_status `applied`, same receipt)
in the others, and at the end the hub holds each sale once: `duka hub report` counts, receipts
and total, and `processed_commands` rows.

The hub serialises requests with its store mutex, so the second copy waits for the first's
COMMIT and then finds the command id; docs/PROTOCOL.md says so.
"""

import json
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, batch_command, check, check_eq, free_port, log, pg_env,  # noqa: E402
                     pg_mode, psql, push_together, setup_business, tally_push_together,
                     url_in_schema)

suite = Suite("concurrent_duplicates")

BATCH = int(os.environ.get("DUKA_E2E_DUP_BATCH", "300"))
ROUNDS = int(os.environ.get("DUKA_E2E_DUP_ROUNDS", "40"))
CONNECTIONS = 3


@suite.test
def the_same_batch_on_three_connections_at_once_is_applied_once(ctx):
    biz = setup_business(ctx.tmp, free_port())
    port, token = biz.hub.port, biz.tokens["T01"]
    created_ms = int(time.time() * 1000)
    seq = 0
    expected = {}  # command id -> (receipt_no, total_cents)
    answers = {"applied": 0, "duplicate": 0}
    t_start = time.monotonic()
    slowest = 0.0
    for rnd in range(ROUNDS):
        overlap = rnd % 2 == 1
        n = BATCH + (CONNECTIONS - 1) * (BATCH // 2) if overlap else BATCH
        cmds = [batch_command(seq + i + 1, created_ms) for i in range(n)]
        seq += n
        for c in cmds:
            expected[c["id"]] = (c["payload"]["receipt_no"], c["payload"]["total_cents"])
        if overlap:
            windows = [cmds[k * (BATCH // 2):k * (BATCH // 2) + BATCH] for k in range(CONNECTIONS)]
        else:
            windows = [cmds] * CONNECTIONS
        replies = push_together([(port, json.dumps({"commands": w}).encode()) for w in windows],
                                token)
        slowest = max([slowest] + [dt for _, _, dt in replies])
        tally_push_together("round %d" % rnd, ["connection %d" % k for k in range(CONNECTIONS)],
                            windows, replies, expected, answers)
    log("  %d rounds, %d commands, %d answers (%d applied, %d duplicate) in %.1fs; slowest "
        "push %.2fs" % (ROUNDS, len(expected), answers["applied"] + answers["duplicate"],
                        answers["applied"], answers["duplicate"],
                        time.monotonic() - t_start, slowest))
    check_eq(answers["applied"], len(expected), "applied answers")

    r = biz.report()
    want_receipts = sorted(v[0] for v in expected.values())
    check_eq(r["sales"], len(expected), "hub sales")
    check_eq(r["receipts"], want_receipts, "hub receipts (each once)")
    check_eq(r["total_cents"], sum(v[1] for v in expected.values()), "hub total_cents")
    check_eq(r["conflicts"], 0, "hub conflicts")
    count_processed = "SELECT count(*) FROM processed_commands"
    count_dups = ("SELECT count(*) FROM (SELECT command_id FROM sales "
                  "GROUP BY command_id HAVING count(*) > 1) d")
    if pg_mode():
        # Behind row-level security: look as the cluster's superuser, in the test's schema.
        schema = re.search(r"search_path%3D(\w+)", biz.hub_db).group(1)
        url = url_in_schema(pg_env("DUKA_PG_SUPER_URL"), schema)
        processed = int(psql(url, count_processed).strip())
        dups = int(psql(url, count_dups).strip())
    else:
        with sqlite3.connect("file:%s?mode=ro" % biz.hub_db, uri=True) as h:
            (processed,), = h.execute(count_processed).fetchall()
            (dups,), = h.execute(count_dups).fetchall()
    check_eq(processed, len(expected), "processed_commands rows")
    check_eq(dups, 0, "command ids stored twice in sales")
    check("store_unavailable" not in biz.hub.log_tail(100000), "the hub logged a store failure")


if __name__ == "__main__":
    suite.main()
