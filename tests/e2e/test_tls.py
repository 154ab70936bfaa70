#!/usr/bin/env python3
"""TLS between till and hub.

`duka hub --tls-cert/--tls-key` serves HTTPS (libmicrohttpd with GnuTLS); the till always
verifies the hub's certificate, trusting a self-signed one only when given it with
`till init --ca-file`; and it refuses plain HTTP to a hub that is not on this machine unless
told `--allow-plain-http` (checked before any connection is tried).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Hub, Suite, Till, check, check_eq, expect_error, free_port, log,  # noqa: E402
                     make_cert, run_json, run_ok, sell, setup_business, sync, wait_for)

suite = Suite("tls")


@suite.test
def till_syncs_over_https_and_verifies_the_certificate(ctx):
    biz = setup_business(ctx.tmp, free_port())
    biz.hub.stop()
    cert, key = make_cert(ctx)
    port = free_port()
    hub = Hub(biz.hub_db, port, extra=["--tls-cert", cert, "--tls-key", key], https=True).start()
    url = "https://127.0.0.1:%d" % port
    token = biz.tokens["T01"]
    db = ctx.path("tls-till.db")
    expect_error(["till", "init", "--db", db, "--hub", url, "--terminal", "T01", "--token", token],
                 contains=("TLS", "--ca-file"))
    check(not os.path.exists(db), "a failed till init created %s" % db)
    # This database takes over the token from the one setup_business made (never synced).
    run_ok(["till", "init", "--db", db, "--hub", url, "--terminal", "T01", "--token", token,
            "--ca-file", cert, "--replace"])
    printed = [sell(db, "SUGAR1KG")["receipt_no"] for _ in range(3)]
    rc, j, err = sync(db)
    check_eq(rc, 0, "sync over https (stderr %s)" % err.strip())
    check_eq(j.get("pushed"), 3, "pushed over https")
    # The serving till's worker probes and syncs over https too.
    till = Till(db, free_port(), sync_interval=1).start()
    printed.append(till.sale("RICE")["receipt_no"])
    wait_for(lambda: biz.hub_sales() == 4, 20, "the worker's sale at the hub over https")
    st = till.status()
    check_eq(st.get("connectivity"), "online", "connectivity over https")
    check_eq(till.stop(), 0, "duka till exit code")
    check_eq(sorted(biz.report()["receipts"]), sorted(printed), "hub receipts")
    hub.stop()


@suite.test
def plain_http_to_another_machine_is_refused_before_any_connection(ctx):
    # 192.0.2.1 is TEST-NET-1 (documentation only); the refusal comes before any network use,
    # and --offline keeps till init off the network even if that check regressed.
    db = ctx.path("plain.db")
    rc_err = expect_error(["till", "init", "--db", db, "--hub", "http://192.0.2.1:8081",
                           "--terminal", "T01", "--token", "duka1.1.00", "--offline"],
                          contains=("plain HTTP", "--allow-plain-http"), rc=2)
    log("  %s" % (rc_err,))
    check(not os.path.exists(db), "a refused till init created %s" % db)
    run_ok(["till", "init", "--db", db, "--hub", "http://192.0.2.1:8081", "--terminal", "T01",
            "--token", "duka1.1.00", "--offline", "--allow-plain-http"])
    check(os.path.exists(db), "till init --allow-plain-http --offline created no database")


@suite.test
def a_hub_with_a_bad_key_says_so(ctx):
    cert, _ = make_cert(ctx)
    hub_db = ctx.path("hub.db")
    run_json(["hub", "init", "--db", hub_db, "--business", "X", "--json"])
    expect_error(["hub", "--db", hub_db, "--listen", "127.0.0.1:%d" % free_port(),
                  "--tls-cert", cert, "--tls-key", hub_db], contains=("--tls-key", "PEM"))
    expect_error(["hub", "--db", hub_db, "--listen", "127.0.0.1:%d" % free_port(),
                  "--tls-cert", cert], contains=("--tls-key",), rc=2)


if __name__ == "__main__":
    suite.main()
