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
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http.client as httpclient  # noqa: E402

from harness import (Suite, check, check_eq, free_port, log, pg_env, pg_mode,  # noqa: E402
                     psql, sale_command, sale_line, setup_business, url_in_schema)

suite = Suite("concurrent_duplicates")

BATCH = int(os.environ.get("DUKA_E2E_DUP_BATCH", "300"))
ROUNDS = int(os.environ.get("DUKA_E2E_DUP_ROUNDS", "40"))
CONNECTIONS = 3
ITEMS = [("SUGAR1KG", "Sugar 1kg", 16500, "B"), ("MILK500", "Milk 500ml", 6500, "C"),
         ("RICE", "Pishori rice per kg", 18000, "E"), ("UNGA2KG", "Maize flour 2kg", 21050, "A")]


def command(seq, created_ms):
    """A valid sale of T01 with 1 to 3 lines."""
    lines = [sale_line(*ITEMS[(seq + k) % len(ITEMS)][:2], 500 * (1 + (seq + k) % 4),
                       *ITEMS[(seq + k) % len(ITEMS)][2:]) for k in range(1 + seq % 3)]
    return sale_command("T01", seq, lines, created_ms=created_ms)


def push_together(port, token, bodies):
    """POSTs each body on its own connection, all released by one barrier. Returns a list of
    (status, parsed reply, seconds) in the order of bodies."""
    barrier = threading.Barrier(len(bodies))
    out = [None] * len(bodies)

    def send(i):
        conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.connect()
            barrier.wait(timeout=30)
            t0 = time.monotonic()
            conn.request("POST", "/v1/push", body=bodies[i],
                         headers={"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            try:
                reply = json.loads(data)
            except ValueError:
                reply = data[:300]
            out[i] = (r.status, reply, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - reported below as this sender's outcome
            out[i] = (None, repr(e), 0.0)
        finally:
            conn.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return out


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
        cmds = [command(seq + i + 1, created_ms) for i in range(n)]
        seq += n
        for c in cmds:
            expected[c["id"]] = (c["payload"]["receipt_no"], c["payload"]["total_cents"])
        if overlap:
            windows = [cmds[k * (BATCH // 2):k * (BATCH // 2) + BATCH] for k in range(CONNECTIONS)]
        else:
            windows = [cmds] * CONNECTIONS
        bodies = [json.dumps({"commands": w}).encode() for w in windows]
        replies = push_together(port, token, bodies)
        outcomes = {}  # id -> list of (status, first_status, receipt_no)
        for k, (status, reply, dt) in enumerate(replies):
            slowest = max(slowest, dt)
            check_eq(status, 200, "round %d, connection %d: HTTP status (reply %r)"
                     % (rnd, k, reply if status != 200 else ""))
            results = reply.get("results")
            check(isinstance(results, list) and len(results) == len(windows[k]),
                  "round %d, connection %d: %s results for %d commands"
                  % (rnd, k, len(results) if isinstance(results, list) else results,
                     len(windows[k])))
            for c, r in zip(windows[k], results):
                check_eq(r.get("id"), c["id"], "round %d: results in request order" % rnd)
                outcomes.setdefault(c["id"], []).append(
                    (r.get("status"), r.get("first_status"), r.get("receipt_no")))
        for cid, got in outcomes.items():
            statuses = sorted(s for s, _, _ in got)
            applied = statuses.count("applied")
            if applied != 1 or any(s not in ("applied", "duplicate") for s in statuses):
                raise AssertionError("round %d: command %s answered %r (want one applied, the "
                                     "rest duplicate)" % (rnd, cid, got))
            for s, first, receipt in got:
                check_eq(receipt, expected[cid][0], "round %d: receipt_no of %s" % (rnd, cid))
                if s == "duplicate":
                    check_eq(first, "applied", "round %d: first_status of a duplicate" % rnd)
                answers[s] += 1
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
