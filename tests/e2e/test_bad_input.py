#!/usr/bin/env python3
"""(e) Bad input gets a clear error naming the problem and changes nothing.

Every case: exit 1, exactly ONE line on stderr containing the named text, and afterwards the
state is verified unchanged (outbox, catalog, hub report, files on disk). The hub's HTTP
errors are checked with raw HTTP: invalid JSON -> 400 invalid_json, a 9 MiB body -> 413
body_too_large, missing/wrong token -> 401 unauthorized, unknown path -> 404; no sale written.
"""

import hashlib
import http.server
import json
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PRODUCTS, Hub, Suite, catalog, check, check_eq, expect_error,  # noqa: E402
                     free_port, http_json, log, queue, run, run_json, sell, setup_business,
                     status, sync, write_csv)

suite = Suite("bad_input")


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def outbox_state(db):
    st = status(db)
    return (sorted((i.get("command_id"), i.get("status"), i.get("attempts")) for i in queue(db)),
            st.get("pending"), st.get("failed"), st.get("conflicts"))


# --------------------------------------------------------------------------------------------
# bad databases
# --------------------------------------------------------------------------------------------
def db_commands(db, csv, port):
    """Every command that operates on an existing database, with otherwise valid arguments."""
    return [
        ["sell", "--db", db, "SUGAR1KG", "--json"],
        ["sync", "--db", db, "--json"],
        ["status", "--db", db, "--json"],
        ["queue", "--db", db, "--json"],
        ["catalog", "--db", db, "--json"],
        ["till", "--db", db, "--listen", "127.0.0.1:%d" % port, "--sync-interval", "1"],
        ["hub", "--db", db, "--listen", "127.0.0.1:%d" % port],
        ["hub", "report", "--db", db, "--business", "b1", "--json"],
        ["device", "add", "--db", db, "--business", "b1", "--terminal", "T01", "--json"],
        ["product", "import", "--db", db, "--business", "b1", csv, "--json"],
    ]


@suite.test
def missing_database_is_not_found_and_not_created(ctx):
    csv = write_csv(ctx.path("p.csv"), PRODUCTS[:2])
    port = free_port()
    failures = []
    for i in range(len(db_commands("x", csv, port))):
        db = ctx.path("missing-%d.db" % i)
        args = db_commands(db, csv, port)[i]
        try:
            expect_error(args, ["not found"], timeout=20)
        except AssertionError as e:
            failures.append(str(e))
        leftovers = [f for f in os.listdir(ctx.tmp) if f.startswith("missing-%d.db" % i)]
        if leftovers:
            failures.append("%s created %s" % (" ".join(args[:2]), leftovers))
    check(not failures, "\n  " + "\n  ".join(failures))


@suite.test
def random_bytes_database_is_rejected_and_untouched(ctx):
    csv = write_csv(ctx.path("p.csv"), PRODUCTS[:2])
    port = free_port()
    junk = os.urandom(64 * 1024)
    failures = []
    for i in range(len(db_commands("x", csv, port))):
        db = ctx.path("junk-%d.db" % i)
        with open(db, "wb") as f:
            f.write(junk)
        before = sha(db)
        args = db_commands(db, csv, port)[i]
        try:
            expect_error(args, ["not a duka database"], timeout=20)
        except AssertionError as e:
            failures.append(str(e))
        if sha(db) != before:
            failures.append("%s modified the junk file" % " ".join(args[:2]))
        extra = [f for f in os.listdir(ctx.tmp)
                 if f.startswith("junk-%d.db" % i) and f != "junk-%d.db" % i]
        if extra:
            failures.append("%s left %s beside the junk file" % (" ".join(args[:2]), extra))
    check(not failures, "\n  " + "\n  ".join(failures))


@suite.test
def foreign_sqlite_database_is_rejected_and_untouched(ctx):
    """Beyond the contract's "random bytes": an SQLite file of another program."""
    import sqlite3
    other = ctx.path("other.db")
    c = sqlite3.connect(other)
    c.execute("create table t(x)")
    c.execute("insert into t values (1)")
    c.commit()
    c.close()
    before = sha(other)
    failures = []
    for args in (["status", "--db", other, "--json"], ["sell", "--db", other, "SUGAR1KG", "--json"],
                 ["hub", "report", "--db", other, "--business", "b1", "--json"]):
        try:
            expect_error(args, ["not a duka database"])
        except AssertionError as e:
            failures.append(str(e))
    if sha(other) != before:
        failures.append("a foreign SQLite database was modified")
    check(not failures, "\n  " + "\n  ".join(failures))


@suite.test
def bad_usage_exits_2(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    before = outbox_state(db)
    failures = []
    for args in (["frobnicate"], ["sell", "SUGAR1KG"], ["sell", "--db"], ["sync", "--db", db, "--batch"],
                 ["sync", "--db", db, "--no-such-flag"], ["hub", "init", "--db", ctx.path("x.db")],
                 ["queue", "--db", db, "--status", "bogus"]):
        rc, out, err = run(args)
        if rc != 2 or not err.strip():
            failures.append("%s: exit %s (want 2) stderr %r" % (" ".join(args), rc, err[:200]))
    if os.path.exists(ctx.path("x.db")):
        failures.append("hub init without --business created its database")
    if outbox_state(db) != before:
        failures.append("bad usage changed the outbox")
    check(not failures, "\n  " + "\n  ".join(failures))


# --------------------------------------------------------------------------------------------
# duka sell
# --------------------------------------------------------------------------------------------
@suite.test
def sell_errors_write_nothing(ctx):
    biz = setup_business(ctx.tmp, free_port())
    biz.hub.stop()
    db = biz.tills["T01"]
    before = outbox_state(db)
    failures = []
    cases = [
        (["NOSUCHSKU"], ["unknown SKU", "NOSUCHSKU"]),
        (["SUGAR1KG", "GHOST42*2"], ["unknown SKU", "GHOST42"]),
        (["SUGAR1KG*0"], ["qty"]),
        (["SUGAR1KG*-1"], ["qty"]),
        (["MILK500", "RICE*0"], ["qty"]),
        (["MILK500", "BREAD400*-2.5"], ["qty"]),
    ]
    for items, want in cases:
        try:
            expect_error(["sell", "--db", db] + items + ["--json"], want)
        except AssertionError as e:
            failures.append(str(e))
        if outbox_state(db) != before:
            failures.append("duka sell %s changed the outbox" % " ".join(items))
    check(not failures, "\n  " + "\n  ".join(failures))
    # Nothing was written: the first real sale still gets sequence number 00001.
    r = sell(db, "SUGAR1KG*2", "RICE*0.5")
    check(r["receipt_no"].startswith("T01-") and r["receipt_no"].endswith("-00001"),
          "first successful sale after rejected ones got %s, want T01-<date>-00001" % r["receipt_no"])
    biz.hub.start()
    rc, _, err = sync(db)
    check_eq(rc, 0, "sync (stderr %s)" % err.strip())
    rep = biz.report()
    check_eq(rep["receipts"], [r["receipt_no"]], "hub receipts after rejected sells + one good one")


# --------------------------------------------------------------------------------------------
# duka product import
# --------------------------------------------------------------------------------------------
@suite.test
def product_import_errors_import_nothing(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    base = {p["sku"]: p for p in catalog(db)}
    check_eq(sorted(base), sorted(p[0] for p in PRODUCTS), "catalog after till init")
    check_eq(base["SUGAR1KG"].get("price"), 16500, "catalog price of SUGAR1KG (cents)")
    check_eq(base["SUGAR1KG"].get("tax"), "B", "catalog tax band of SUGAR1KG")
    hdr = "sku,name,price,tax,stock,category"
    # Each file: good rows first (a changed price of an existing SKU and a new SKU), then the bad
    # line, so any partial import would show in the till's catalog.
    cases = [
        ("malformed.csv", [hdr, "SUGAR1KG,Sugar 1kg,999.00,B,10,Groceries", "NEWA,New A,10.00,B,5,X",
                           "NEWB,New B,10.00,B", "NEWC,New C,11.00,A,5,X"], ["line 4"]),
        ("too-many.csv", [hdr, "NEWA,New A,10.00,B,5,X", "NEWB,New B,10.00,B,5,X,extra,more"], ["line 3"]),
        ("duplicate.csv", [hdr, "SUGAR1KG,Sugar 1kg,999.00,B,10,Groceries", "NEWA,New A,10.00,B,5,X",
                           "NEWB,New B,12.00,C,5,X", "NEWA,New A again,10.00,B,5,X"],
         ["duplicate SKU", "line 5"]),
        ("price.csv", [hdr, "SUGAR1KG,Sugar 1kg,999.00,B,10,Groceries", "NEWA,New A,10.00,B,5,X",
                       "NEWB,New B,abc,B,5,X"], ["price", "line 4"]),
    ]
    failures = []
    for name, lines, want in cases:
        path = ctx.path(name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        try:
            expect_error(["product", "import", "--db", biz.hub_db, "--business", biz.business_id,
                          path, "--json"], want)
        except AssertionError as e:
            failures.append(str(e))
    rc, _, err = sync(db)
    check_eq(rc, 0, "sync after the rejected imports (stderr %s)" % err.strip())
    now = {p["sku"]: p for p in catalog(db)}
    if sorted(now) != sorted(base):
        failures.append("rejected imports changed the catalog SKUs: %s" % sorted(set(now) ^ set(base)))
    if now.get("SUGAR1KG", {}).get("price") != 16500:
        failures.append("a rejected import changed SUGAR1KG's price to %r" % now.get("SUGAR1KG"))
    check(not failures, "\n  " + "\n  ".join(failures))

    # Positive control: a valid import of the same rows shows up after a sync.
    good = write_csv(ctx.path("good.csv"), [("NEWA", "New A", "10.00", "B", 5, "X"),
                                            ("SUGAR1KG", "Sugar 1kg", "170.00", "B", 10, "Groceries")])
    imp = run_json(["product", "import", "--db", biz.hub_db, "--business", biz.business_id, good, "--json"])
    check_eq(imp.get("imported"), 2, "valid import after rejected ones: imported")
    rc, _, err = sync(db)
    check_eq(rc, 0, "sync after the valid import (stderr %s)" % err.strip())
    now = {p["sku"]: p for p in catalog(db)}
    check("NEWA" in now, "a valid import did not reach the till's catalog (so the check above proves "
          "nothing): %s" % sorted(now))
    check_eq(now["SUGAR1KG"].get("price"), 17000, "SUGAR1KG price after the valid import")


# --------------------------------------------------------------------------------------------
# duka till init
# --------------------------------------------------------------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


class _All404(http.server.BaseHTTPRequestHandler):
    def _go(self):
        body = b"not here"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = _go

    def log_message(self, *a):
        pass


class _All200Html(http.server.BaseHTTPRequestHandler):
    def _go(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = _go

    def log_message(self, *a):
        pass


def _serve(ctx, handler, directory=None):
    if directory:
        class H(handler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=directory, **kw)
        handler = H
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop():
        srv.shutdown()
        srv.server_close()
    ctx.on_cleanup(stop)
    return "http://127.0.0.1:%d" % srv.server_address[1]


@suite.test
def till_init_errors(ctx):
    biz = setup_business(ctx.tmp, free_port(), terminals=["T01"])
    tok = run_json(["device", "add", "--db", biz.hub_db, "--business", biz.business_id,
                    "--terminal", "T02", "--json"])["token"]
    os.mkdir(ctx.path("www"))
    with open(ctx.path("www", "index.html"), "w") as f:
        f.write("<html>hello</html>")
    dead = "http://127.0.0.1:%d" % free_port()
    cases = [
        ("unreachable", dead, tok, ["unreachable"]),
        ("http.server", _serve(ctx, _Quiet, ctx.path("www")), tok, ["not a duka hub"]),
        ("all-404", _serve(ctx, _All404), tok, ["not a duka hub"]),
        ("all-200-html", _serve(ctx, _All200Html), tok, ["not a duka hub"]),
        ("wrong token", biz.hub.url, "X" * len(tok), ["token rejected"]),
    ]
    db = ctx.path("t02.db")
    failures = []
    for what, url, token, want in cases:
        try:
            expect_error(["till", "init", "--db", db, "--hub", url, "--terminal", "T02", "--token", token],
                         want, timeout=30)
        except AssertionError as e:
            failures.append("%s: %s" % (what, e))
    # The failures left nothing in the way: a correct init on the same path works now.
    rc, out, err = run(["till", "init", "--db", db, "--hub", biz.hub.url, "--terminal", "T02", "--token", tok])
    if rc != 0:
        failures.append("till init with correct arguments after failed ones: exit %s, stderr %s"
                        % (rc, err.strip()))
    else:
        skus = sorted(p["sku"] for p in catalog(db))
        if skus != sorted(p[0] for p in PRODUCTS):
            failures.append("catalog after a good till init: %s" % skus)
    # --offline skips the check.
    rc, out, err = run(["till", "init", "--db", ctx.path("offline.db"), "--hub", dead, "--terminal",
                        "T03", "--token", "whatever", "--offline"])
    if rc != 0:
        failures.append("till init --offline with the hub unreachable: exit %s, stderr %s" % (rc, err.strip()))
    check(not failures, "\n  " + "\n  ".join(failures))


@suite.test
def till_init_with_another_terminals_token_is_rejected(ctx):
    """Beyond the contract's list: a token registered for T01 does not make a till T02. (The
    contract names no text for this case; the line must be about the token.)"""
    biz = setup_business(ctx.tmp, free_port(), terminals=["T01"])
    run_json(["device", "add", "--db", biz.hub_db, "--business", biz.business_id,
              "--terminal", "T02", "--json"])
    db = ctx.path("t02.db")
    expect_error(["till", "init", "--db", db, "--hub", biz.hub.url, "--terminal",
                  "T02", "--token", biz.tokens["T01"]], ["token"], timeout=30)


# --------------------------------------------------------------------------------------------
# duka sync with a wrong token
# --------------------------------------------------------------------------------------------
@suite.test
def sync_with_rejected_token_changes_nothing(ctx):
    """The till's sales go to a hub that does not know its token (another business's hub on
    the same address): token rejected, nothing written anywhere, the outbox unchanged — also
    after many rejected syncs (a wrong token must not dead-letter sales) — and once the right
    hub is back, everything arrives."""
    port = free_port()
    biz = setup_business(ctx.tmp, port)
    db = biz.tills["T01"]
    made = [sell(db, "SUGAR1KG"), sell(db, "MILK500*2", "RICE*0.5")]
    biz.hub.stop()
    other_dir = ctx.path("other")
    os.mkdir(other_dir)
    other_db = os.path.join(other_dir, "hub.db")
    other_id = run_json(["hub", "init", "--db", other_db, "--business", "Other Shop", "--json"])["business_id"]
    run_json(["device", "add", "--db", other_db, "--business", other_id, "--terminal", "T01", "--json"])
    other = Hub(other_db, port).start()
    failures = []
    before = outbox_state(db)
    for i in range(6):
        rc, j, err = sync(db)
        lines = [l for l in err.split("\n") if l.strip()]
        if not (rc == 1 and len(lines) == 1 and "token rejected" in err.lower()):
            failures.append("rejected sync #%d: want exit 1 and one stderr line with 'token rejected', "
                            "got exit %s, %r" % (i + 1, rc, err))
        after = outbox_state(db)
        if after != before:
            failures.append("outbox after rejected sync #%d: %r, before: %r" % (i + 1, after, before))
            before = after  # report each change once
    failed = queue(db, "failed")
    if failed:
        failures.append("after 6 rejected syncs %d sales are dead-lettered (status failed: %s)"
                        % (len(failed), [(i.get("attempts"), i.get("error_category")) for i in failed]))
    rep = run_json(["hub", "report", "--db", other_db, "--business", other_id, "--json"])
    if (rep.get("sales"), rep.get("receipts")) != (0, []):
        failures.append("the other business's hub recorded sales: %r" % rep)
    other.stop()
    biz.hub.start()
    rc, j, err = sync(db)
    if rc != 0:
        failures.append("sync with the right hub back: exit %s, stderr %s" % (rc, err.strip()))
    receipts = biz.report()["receipts"]
    if receipts != sorted(m["receipt_no"] for m in made):
        failures.append("hub receipts once the right hub is back: %r, want %r"
                        % (receipts, sorted(m["receipt_no"] for m in made)))
    check(not failures, "\n  " + "\n  ".join(failures))


# --------------------------------------------------------------------------------------------
# the hub's HTTP errors
# --------------------------------------------------------------------------------------------
def _push_oversized(port, token, size):
    """POST /v1/push with a `size`-byte body while a second thread reads, so a 413 sent early
    (before the body is read) is not lost to a reset. Returns (status or None, body, note)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = ("POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (port, token, size)).encode()
    got = bytearray()
    done = threading.Event()

    def complete():
        hdr, sep, rest = bytes(got).partition(b"\r\n\r\n")
        if not sep:
            return False
        cl = [l for l in hdr.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        return bool(cl) and len(rest) >= int(cl[0].split(b":")[1])

    def reader():
        try:
            while not complete():
                data = s.recv(65536)
                if not data:
                    break
                got.extend(data)
        except OSError:
            pass
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    note = "whole body sent"
    try:
        s.sendall(head + b'{"commands":[{"pad":"')
        left = size - len(b'{"commands":[{"pad":"') - len(b'"}]}')
        chunk = b"x" * 65536
        while left > 0 and not done.is_set():
            s.sendall(chunk[:left])
            left -= min(left, len(chunk))
        if left <= 0:
            s.sendall(b'"}]}')
        else:
            note = "answered before the whole body was sent"
    except OSError as e:
        note = "server stopped reading the body (%r)" % e
    done.wait(30)
    s.close()
    if not got:
        return None, b"", note
    line = bytes(got).split(b"\r\n", 1)[0].split(b" ")
    status = int(line[1]) if len(line) > 1 and line[1].isdigit() else None
    return status, bytes(got).partition(b"\r\n\r\n")[2], note


def _error_code(body):
    try:
        j = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        return j["error"]["code"], j["error"].get("message")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, None


@suite.test
def hub_http_errors(ctx):
    biz = setup_business(ctx.tmp, free_port())
    port = biz.hub.port
    tok = biz.tokens["T01"]
    auth = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
    failures = []

    def expect(what, status, body, want_status, want_code):
        code = _error_code(json.dumps(body)) if isinstance(body, dict) else (None, None)
        if status != want_status or (want_code and code[0] != want_code):
            failures.append("%s: got %s %r, want %s with error.code %r"
                            % (what, status, body, want_status, want_code))
        elif want_code and not code[1]:
            failures.append("%s: error.message empty: %r" % (what, body))

    st, body = http_json("POST", port, "/v1/push", body=b'{"commands": [', headers=auth)
    expect("invalid JSON push", st, body, 400, "invalid_json")
    st, body = http_json("POST", port, "/v1/push", body=b"\xff\xfe not json", headers=auth)
    expect("binary garbage push", st, body, 400, "invalid_json")
    st, body = http_json("POST", port, "/v1/push", body=b'{"commands":[]}',
                         headers={"Authorization": "Bearer wrong-token"})
    expect("push with a wrong token", st, body, 401, "unauthorized")
    st, body = http_json("POST", port, "/v1/push", body=b'{"commands":[]}')
    expect("push without a token", st, body, 401, "unauthorized")
    st, body = http_json("GET", port, "/v1/pull?cursor=0&limit=10",
                         headers={"Authorization": "Bearer " + tok[:-1] + ("A" if tok[-1] != "A" else "B")})
    expect("pull with a wrong token", st, body, 401, "unauthorized")
    st, body = http_json("GET", port, "/v1/pull?cursor=0&limit=10")
    expect("pull without a token", st, body, 401, "unauthorized")
    st, body = http_json("GET", port, "/v1/no-such-thing", headers=auth)
    if st != 404:
        failures.append("unknown path: got %s %r, want 404" % (st, body))
    st, body = http_json("GET", port, "/v1/pull?cursor=0&limit=10", headers=auth)
    if st != 200 or not isinstance(body, dict) or not {"changes", "cursor", "more"} <= set(body):
        failures.append("pull with the right token: got %s %r" % (st, body))

    status9, body9, note = _push_oversized(port, tok, 9 * 1024 * 1024)
    log("  9 MiB push: %s %r (%s)" % (status9, body9[:120], note))
    if status9 is None:
        log("  note: 9 MiB push got no readable response (%s); accepted as a reset" % note)
    else:
        code = _error_code(body9)[0]
        if status9 != 413 or code != "body_too_large":
            failures.append("9 MiB push: got %s %r (%s), want 413 body_too_large"
                            % (status9, body9[:200], note))

    # The hub is still healthy and nothing was written.
    st, body = http_json("GET", port, "/v1/health")
    if st != 200 or not isinstance(body, dict) or body.get("status") != "ok":
        failures.append("health after the bad requests: %s %r" % (st, body))
    rep = biz.report()
    if rep["sales"] != 0 or rep["receipts"]:
        failures.append("bad requests wrote sales: %r" % rep)
    check(not failures, "\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    suite.main()
