#!/usr/bin/env python3
"""Several hubs over one PostgreSQL (issue 5, item 2): two `duka hub` processes on different
ports serve one database.

- The same batch pushed to both hubs at the same instant (a barrier releases the two senders
  together), round after round, the batches equal in some rounds and overlapping in others:
  every answer is 200, every command is `applied` in exactly one answer and `duplicate`
  (first_status `applied`, same receipt) in the other, and the database holds each sale once.
  The database's unique constraint decides: the loser's commit finds fewer command ids
  claimed than it buffered and applies its batch again (the hub logs "applied again"); the
  rounds go on until that race was seen at least once.
- Pull cursors stay right while several writers change the catalog: three `duka product
  import` processes at once while a till-like puller pulls through both hubs in turn; the
  catalog the puller builds from its cursor stream equals the hub's catalog read from zero.

Run under tests/pg/run_with_pg.sh (DUKA_E2E_HUB_DB=pg; CTest does both).
"""

import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from harness import (Hub, Suite, batch_command, check, check_eq, free_port,  # noqa: E402
                     http_json, log, pg_env, pg_mode, popen, psql, push_together,
                     setup_business, tally_push_together, url_in_schema, write_csv)

suite = Suite("pg_two_hubs")

BATCH = 120
ROUNDS_MIN, ROUNDS_MAX = 6, 30


def races_seen(hubs):
    return sum(h.log_tail(10 ** 7).count("applied again") for h in hubs)


def super_query(biz_db_schema, sql):
    """sql as the cluster's superuser (row security does not apply to it) in the schema."""
    return psql(url_in_schema(pg_env("DUKA_PG_SUPER_URL"), biz_db_schema), sql).strip()


def schema_of(url):
    return url.rsplit("search_path%3D", 1)[1]


@suite.test
def the_same_batch_pushed_to_two_hubs_at_once_is_applied_once(ctx):
    check(pg_mode(), "run with DUKA_E2E_HUB_DB=pg (tests/pg/run_with_pg.sh)")
    biz = setup_business(ctx.tmp, free_port())
    hub_b = Hub(biz.hub_db, free_port(), logdir=ctx.tmp).start()
    hubs = [biz.hub, hub_b]
    token = biz.tokens["T01"]
    created_ms = int(time.time() * 1000)
    seq = 0
    expected = {}  # command id -> (receipt_no, total_cents)
    answers = {"applied": 0, "duplicate": 0}
    rnd = 0
    while rnd < ROUNDS_MIN or (races_seen(hubs) == 0 and rnd < ROUNDS_MAX):
        overlap = rnd % 2 == 1
        n = BATCH + BATCH // 2 if overlap else BATCH
        cmds = [batch_command(seq + i + 1, created_ms) for i in range(n)]
        seq += n
        for c in cmds:
            expected[c["id"]] = (c["payload"]["receipt_no"], c["payload"]["total_cents"])
        windows = [cmds[:BATCH], cmds[BATCH // 2:]] if overlap else [cmds, cmds]
        # Alternate which hub gets which window.
        ports = [h.port for h in (hubs if rnd % 4 < 2 else hubs[::-1])]
        replies = push_together(
            [(ports[k], json.dumps({"commands": windows[k]}).encode()) for k in range(2)], token)
        tally_push_together("round %d" % rnd, ["hub on port %d" % p for p in ports], windows,
                            replies, expected, answers)
        rnd += 1
    races = races_seen(hubs)
    log("  %d rounds, %d commands: %d applied, %d duplicate answers; the race with the other "
        "hub decided at commit %d time(s)" % (rnd, len(expected), answers["applied"],
                                               answers["duplicate"], races))
    check(races > 0, "in %d rounds the two hubs never raced to commit the same ids" % rnd)
    check_eq(answers["applied"], len(expected), "applied answers")

    r = biz.report()
    check_eq(r["sales"], len(expected), "hub sales")
    check_eq(r["receipts"], sorted(v[0] for v in expected.values()), "hub receipts (each once)")
    check_eq(r["total_cents"], sum(v[1] for v in expected.values()), "hub total_cents")
    schema = schema_of(biz.hub_db)
    check_eq(super_query(schema, "SELECT count(*) FROM processed_commands"), str(len(expected)),
             "processed_commands rows")
    check_eq(super_query(schema, "SELECT count(*) FROM command_ids"), str(len(expected)),
             "command_ids rows")
    check_eq(super_query(schema, "SELECT count(*) FROM (SELECT command_id FROM sales GROUP BY "
                                 "command_id HAVING count(*) > 1) d"), "0",
             "command ids stored twice in sales")
    for h in hubs:
        check("store_unavailable" not in h.log_tail(10 ** 7),
              "hub on port %d logged a store failure" % h.port)


def pull_all(port, token, cursor, catalog):
    """Pulls from cursor until `more` is false, applying each change to catalog in order;
    returns the new cursor."""
    while True:
        status, body = http_json("GET", port, "/v1/pull?cursor=%d&limit=50" % cursor,
                                 headers={"Authorization": "Bearer " + token})
        check_eq(status, 200, "pull from port %d at cursor %d" % (port, cursor))
        for c in body["changes"]:
            check(c["seq"] > cursor, "a change at or before the cursor: %r" % c)
            catalog[c["sku"]] = (c["name"], c["price"], c["deleted"])
        check(body["cursor"] >= cursor, "the cursor went back")
        cursor = body["cursor"]
        if not body["more"]:
            return cursor


@suite.test
def pulls_through_either_hub_miss_no_change_of_concurrent_imports(ctx):
    check(pg_mode(), "run with DUKA_E2E_HUB_DB=pg (tests/pg/run_with_pg.sh)")
    biz = setup_business(ctx.tmp, free_port())
    hub_b = Hub(biz.hub_db, free_port(), logdir=ctx.tmp).start()
    ports = [biz.hub.port, hub_b.port]
    token = biz.tokens["T01"]
    # Three writers at once, each several imports: its own SKUs plus new prices for shared ones.
    writers = 3
    files = []
    for w in range(writers):
        for rnd in range(3):
            rows = [("W%d_%03d" % (w, i), "Writer %d item %d" % (w, i), "%d.%02d" % (10 + rnd, w),
                     "B", 5, "Test") for i in range(60)]
            rows += [("SUGAR1KG", "Sugar 1kg", "%d.00" % (170 + 10 * w + rnd), "B", 50, "Groceries")]
            files.append((w, write_csv(ctx.path("w%d-%d.csv" % (w, rnd)), rows)))
    catalog = {}
    cursor = pull_all(ports[0], token, 0, catalog)

    def writer(w):
        for ww, f in files:
            if ww != w:
                continue
            out = open(ctx.path("import-%d.log" % w), "a")
            p = popen(["product", "import", "--db", biz.hub_db, "--business", biz.business_id, f],
                      stdout=out, stderr=out)
            rc = p.wait(timeout=120)
            out.close()
            check_eq(rc, 0, "writer %d: product import %s" % (w, f))

    errors = []

    def run_writer(w):
        try:
            writer(w)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run_writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    pulls = 0
    while any(t.is_alive() for t in threads):
        cursor = pull_all(ports[pulls % 2], token, cursor, catalog)
        pulls += 1
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    cursor = pull_all(ports[pulls % 2], token, cursor, catalog)
    truth = {}
    pull_all(ports[0], token, 0, truth)
    log("  %d pulls through two hubs during %d imports; %d products" % (pulls, len(files),
                                                                        len(truth)))
    check_eq(len(truth), 6 + writers * 60, "products at the hub")
    missing = sorted(set(truth) - set(catalog))
    wrong = sorted(k for k in truth if k in catalog and catalog[k] != truth[k])
    check(not missing and not wrong,
          "the puller's catalog differs from the hub's: missing %r, different %r"
          % (missing[:5], [(k, catalog[k], truth[k]) for k in wrong[:5]]))


if __name__ == "__main__":
    suite.main()
