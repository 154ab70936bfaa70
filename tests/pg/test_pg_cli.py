#!/usr/bin/env python3
"""The command line on a PostgreSQL hub (issue 5, items 1 and 3).

- Every admin command takes a postgres:// URL as --db: hub init (the owner creates the schema;
  again is harmless; the hub's role may add a business to a migrated schema), product import
  and archive, device add and revoke, hub report, hub audit, and `duka hub` itself, which a
  till then syncs through. No password ever appears in any output or log.
- Bad input fails with exit 1 and one stderr line naming what and where, writes nothing and
  never shows the password: a closed port, a server that accepts but never answers (the
  connect timeout), a wrong password, a malformed URL, a missing database, a schema duka
  never created, and the hub's role trying to create the schema.
- Row security seen from psql: the hub's role with no business set sees none of the rows the
  sync stored; naming the business shows them; the owner is held to the same; the tables
  belong to the owner, and the hub's role may not drop them or turn row security off.

Run under tests/pg/run_with_pg.sh (DUKA_E2E_HUB_DB=pg; CTest does both).
"""

import os
import re
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from harness import (Hub, Suite, check, check_eq, expect_error, free_port, new_hub_db,  # noqa: E402
                     new_pg_schema, pg_env, pg_mode, psql, run, run_json, run_ok, sell,
                     setup_business, sync, url_in_schema, write_csv, PRODUCTS)

suite = Suite("pg_cli")


def passwords():
    """The passwords of the two roles' URLs (none may show anywhere)."""
    out = []
    for name in ("DUKA_PG_URL", "DUKA_PG_ADMIN_URL"):
        m = re.match(r"^postgres(?:ql)?://[^:/@]+:([^@/]+)@", pg_env(name))
        check(m, "%s has no password to look for" % name)
        out.append(m.group(1))
    return out


def check_no_password(text, what):
    for pw in passwords():
        check(pw not in text, "%s shows a password: %r" % (what, text[:500]))


@suite.test
def every_admin_command_takes_a_postgres_url(ctx):
    check(pg_mode(), "run with DUKA_E2E_HUB_DB=pg (tests/pg/run_with_pg.sh)")
    db, init_db = new_hub_db(ctx.tmp)
    outputs = []

    def cmd(args, expect=0):
        rc, out, err = run(args)
        outputs.append(out + err)
        check_eq(rc, expect, "duka %s (stderr %s)" % (" ".join(args[:2]), err.strip()))
        return out

    bid = cmd(["hub", "init", "--db", init_db, "--business", "Duka ya Mama"]).strip()
    check(re.match(r"^[0-9a-f]{16}$", bid), "hub init printed %r" % bid)
    # Again, by the owner and by the hub's role: the schema is there, only a business is added.
    other = cmd(["hub", "init", "--db", init_db, "--business", "Second shop"]).strip()
    third = cmd(["hub", "init", "--db", db, "--business", "Third shop"]).strip()
    check(len({bid, other, third}) == 3, "three businesses: %r" % [bid, other, third])
    csv = write_csv(ctx.path("catalog.csv"), PRODUCTS)
    check_eq(run_json(["product", "import", "--db", db, "--business", bid, csv,
                       "--json"])["imported"], len(PRODUCTS), "imported")
    cmd(["product", "archive", "--db", db, "--business", bid, "BREAD400"])
    cmd(["product", "archive", "--db", db, "--business", bid, "BREAD400"], expect=1)
    token = cmd(["device", "add", "--db", db, "--business", bid, "--terminal", "T01"]).strip()
    cmd(["device", "add", "--db", db, "--business", bid, "--terminal", "T01"], expect=1)
    cmd(["device", "revoke", "--db", db, "--business", bid, "--terminal", "T01"])
    token2 = cmd(["device", "add", "--db", db, "--business", bid, "--terminal", "T01"]).strip()
    check_eq(token2.split(".")[1], token.split(".")[1], "a revoked terminal keeps its device")

    hub = Hub(db, free_port(), logdir=ctx.tmp).start()
    till = ctx.path("till.db")
    cmd(["till", "init", "--db", till, "--hub", hub.url, "--terminal", "T01", "--token", token2])
    printed = [sell(till, "SUGAR1KG", "MILK500*2")["receipt_no"] for _ in range(3)]
    rc, j, err = sync(till)
    check_eq(rc, 0, "sync through the PostgreSQL hub (stderr %s)" % err.strip())
    rep = run_json(["hub", "report", "--db", db, "--business", bid, "--json"])
    check_eq(rep["receipts"], sorted(printed), "hub report receipts")
    check_eq(run_json(["hub", "report", "--db", db, "--business", other, "--json"])["sales"], 0,
             "sales of the second business")
    events = run_json(["hub", "audit", "--db", db, "--business", bid, "--json"])["events"]
    check("device_revoked" in [e["event"] for e in events], "audit: %r" % events)
    cmd(["hub", "audit", "--db", db])
    cmd(["hub", "report", "--db", db, "--business", "0000000000000000"], expect=1)
    hub.stop()
    log = hub.log_tail(10 ** 6)
    check("serving postgres://duka_hub@" in log, "the hub's log names its database: %s" % log)
    check_no_password(log, "the hub's log")
    for i, text in enumerate(outputs):
        check_no_password(text, "output of command %d" % i)


def silent_server():
    """A TCP listener that accepts and never says a word (a PostgreSQL that hangs)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    held = []

    def accept():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            held.append(c)

    threading.Thread(target=accept, daemon=True).start()
    return s, held


@suite.test
def bad_urls_fail_in_one_line_naming_the_place_never_the_password(ctx):
    check(pg_mode(), "run with DUKA_E2E_HUB_DB=pg (tests/pg/run_with_pg.sh)")
    app = pg_env("DUKA_PG_URL")
    m = re.match(r"^(postgres://duka_hub):([^@]+)@127\.0\.0\.1:(\d+)/duka$", app)
    check(m, "unexpected DUKA_PG_URL shape: %s" % re.sub(r":[^@]*@", ":***@", app))
    user, password, port = m.group(1), m.group(2), int(m.group(3))
    closed = free_port()
    hang, held = silent_server()
    empty = new_pg_schema("empty")
    psql(pg_env("DUKA_PG_ADMIN_URL"), "GRANT USAGE, CREATE ON SCHEMA %s TO duka_hub" % empty)
    cases = [
        ("%s:%s@127.0.0.1:%d/duka" % (user, password, closed), ("cannot connect", "127.0.0.1:%d"
                                                                  % closed)),
        ("%s:%s@127.0.0.1:%d/duka" % (user, password, hang.getsockname()[1]),
         ("cannot connect", "timeout")),
        ("%s:wrong-%s@127.0.0.1:%d/duka" % (user, password, port),
         ("cannot connect", "password authentication failed")),
        ("%s:%s@127.0.0.1:notaport/duka" % (user, password), ("cannot connect", "port")),
        ("%s:%s@127.0.0.1:%d/nodb" % (user, password, port), ("cannot connect", "nodb")),
        ("%s@127.0.0.1:%d/duka?password=%s" % (user, port, password) + "&sslmode=bogus",
         ("cannot connect", "sslmode")),
        (url_in_schema(app, empty), ("no duka hub schema", "duka hub init")),
    ]
    commands = [
        ["hub", "report", "--business", "0000000000000000"],
        ["device", "add", "--business", "x", "--terminal", "T9"],
        ["product", "archive", "--business", "x", "SKU"],
        ["hub", "audit"],
        ["device", "revoke", "--business", "x", "--terminal", "T9"],
        ["hub", "init", "--business", "X"],
        ["product", "import", "--business", "x", ctx.path("none.csv")],
    ]
    write_csv(ctx.path("none.csv"), PRODUCTS)
    try:
        for i, (url, says) in enumerate(cases):
            args = commands[i % len(commands)]
            args = args[:2] + ["--db", url] + args[2:] if args[0] != "hub" or args[1] != "audit" \
                else args + ["--db", url]
            t0 = time.monotonic()
            line = expect_error(args, contains=says + ("postgres://duka_hub",))
            check_no_password(line, "the error of %s" % " ".join(args[:2]))
            dt = time.monotonic() - t0
            check(dt < 20, "%s against %s took %.1fs" % (" ".join(args[:2]), says, dt))
        # `duka hub` itself: one line, exit 1, never starts serving.
        line = expect_error(["hub", "--db", cases[0][0], "--listen", "127.0.0.1:%d" % free_port()],
                            contains=("cannot connect",))
        check_no_password(line, "duka hub's error")
        # The hub's role may not create the schema; it says who can, and creates nothing.
        line = expect_error(["hub", "init", "--db", url_in_schema(app, empty), "--business", "X"],
                            contains=("duka hub init as the tables' owner",))
        check_no_password(line, "hub init's error")
        check_eq(psql(pg_env("DUKA_PG_ADMIN_URL"),
                      "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'" % empty).strip(),
                 "0", "tables created in the empty schema")
    finally:
        hang.close()
        for c in held:
            c.close()


@suite.test
def row_security_hides_the_rows_from_a_query_with_no_business(ctx):
    check(pg_mode(), "run with DUKA_E2E_HUB_DB=pg (tests/pg/run_with_pg.sh)")
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    for _ in range(2):
        sell(db, "RICE", "SODA300*2")
    rc, _, err = sync(db)
    check_eq(rc, 0, "sync (stderr %s)" % err.strip())
    schema = biz.hub_db.rsplit("search_path%3D", 1)[1]
    app = url_in_schema(pg_env("DUKA_PG_URL"), schema)
    owner = url_in_schema(pg_env("DUKA_PG_ADMIN_URL"), schema)
    tables = ["businesses", "devices", "products", "sales", "sale_lines", "payments",
              "stock_ledger", "processed_commands"]
    counts = " UNION ALL ".join("SELECT '%s', count(*) FROM %s" % (t, t) for t in tables)
    for who, url in (("the hub's role", app), ("the owner", owner)):
        rows = psql(url, counts).split()
        check(all(r.endswith("|0") for r in rows),
              "%s with no business set sees rows: %r" % (who, rows))
    rows = psql(app, "SET duka.business_id = '%s'; %s" % (biz.business_id, counts)).split()
    check(all(not r.endswith("|0") for r in rows),
          "the hub's role with the business set misses rows: %r" % rows)
    check_eq(psql(app, "SET duka.business_id = '%s'; SELECT count(*) FROM sales"
                  % biz.business_id).strip(), "2", "sales seen with the business set")
    check_eq(psql(app, "SELECT current_user").strip(), "duka_hub", "the hub's role")
    owners = psql(app, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = '%s'"
                  % schema).split()
    check_eq(owners, ["duka_owner"], "the tables' owner")
    for sql in ("DROP TABLE sales", "ALTER TABLE sales NO FORCE ROW LEVEL SECURITY",
                "DELETE FROM sales"):
        try:
            psql(app, sql)
        except AssertionError as e:
            check("must be owner" in str(e) or "permission denied" in str(e),
                  "%s as the hub's role: %s" % (sql, e))
        else:
            raise AssertionError("%s as the hub's role succeeded" % sql)


if __name__ == "__main__":
    suite.main()
