#!/usr/bin/env python3
"""Self-test of the test tool faultproxy.py (no duka needed): the CLI prints `listening`,
`pass` forwards requests and replies intact (keep-alive, Expect: 100-continue, chunked replies),
`drop-reply` delivers the first matching request upstream but loses its reply, then passes;
`status` answers the first COUNT matching requests (or those in a time window) itself with the
status, a JSON error and Retry-After, without forwarding them, then passes; a reply delay holds
replies back and the in-flight count sees concurrent requests. Chaos mode: each fault alone
does what it says on the wire (refuse, reset-before, drop-reply, reset-at-byte, delay,
blackhole, 502/503), the same seed draws the same sequence of faults, `pass` heals, counts add
up, and the CLI prints its counts on SIGTERM.
"""

import http.client
import http.server
import os
import json
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import CHAOS_FAULTS, FaultProxy  # noqa: E402
from harness import Suite, check, check_eq, free_port, wait_for, port_accepts  # noqa: E402

suite = Suite("faultproxy", needs_duka=False)
HERE = os.path.dirname(os.path.abspath(__file__))


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        Upstream.seen.append((self.path, body))
        out = b'{"results":["ok:%d"]}' % len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        Upstream.seen.append((self.path, b""))
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        out = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


def upstream(ctx):
    Upstream.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop():
        srv.shutdown()
        srv.server_close()
    ctx.on_cleanup(stop)
    return srv.server_address[1]


@suite.test
def pass_mode_keepalive_expect_chunked(ctx):
    up = upstream(ctx)
    p = FaultProxy(("127.0.0.1", up), mode="pass").start()
    ctx.on_cleanup(p.stop)
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    for i in range(3):  # three requests on one keep-alive connection
        body = b'{"commands":[%d]}' % i
        c.request("POST", "/v1/push", body=body)
        r = c.getresponse()
        check_eq((r.status, r.read()), (200, b'{"results":["ok:%d"]}' % len(body)), "reply %d" % i)
    big = b"x" * 200000
    c.request("POST", "/v1/push", body=big, headers={"Expect": "100-continue"})
    r = c.getresponse()
    check_eq((r.status, r.read()), (200, b'{"results":["ok:200000"]}'), "reply with Expect")
    c.request("GET", "/chunked")
    r = c.getresponse()
    check_eq((r.status, r.read()), (200, b"hello world"), "chunked reply")
    c.close()
    check_eq(len(Upstream.seen), 5, "requests upstream")


@suite.test
def drop_reply_cli(ctx):
    up = upstream(ctx)
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "faultproxy.py"), "--listen-port",
                             str(port), "--upstream", "127.0.0.1:%d" % up, "--mode", "drop-reply",
                             "--match", "/v1/push", "--count", "1"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    ctx.procs.append(proc)
    check_eq(proc.stdout.readline().strip(), "listening", "first stdout line")
    wait_for(lambda: port_accepts(port), 10, "the proxy to accept")

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/v1/health")
    r = c.getresponse()
    check_eq(r.status, 200, "a non-matching request passes")
    r.read()
    c.request("POST", "/v1/push", body=b'{"commands":["a"]}')
    try:
        r = c.getresponse()
        raise AssertionError("the first push got a reply: %s %r" % (r.status, r.read()))
    except (http.client.RemoteDisconnected, ConnectionResetError):
        pass
    c.close()
    check(("/v1/push", b'{"commands":["a"]}') in Upstream.seen,
          "the push whose reply was dropped did not reach the upstream")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/v1/push", body=b'{"commands":["a"]}')
    r = c.getresponse()
    check_eq((r.status, r.read()), (200, b'{"results":["ok:18"]}'), "the second push passes")
    c.close()
    check_eq([s[0] for s in Upstream.seen], ["/v1/health", "/v1/push", "/v1/push"], "upstream saw")
    proc.terminate()
    check_eq(proc.wait(timeout=10), 0, "proxy exit code on SIGTERM")


@suite.test
def status_mode_cli_answers_then_passes(ctx):
    up = upstream(ctx)
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "faultproxy.py"), "--listen-port",
                             str(port), "--upstream", "127.0.0.1:%d" % up, "--mode", "status",
                             "--match", "/v1/push", "--count", "2", "--status", "503",
                             "--retry-after", "2"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    ctx.procs.append(proc)
    check_eq(proc.stdout.readline().strip(), "listening", "first stdout line")
    wait_for(lambda: port_accepts(port), 10, "the proxy to accept")

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/v1/health")
    r = c.getresponse()
    check_eq((r.status, r.read()), (200, b'{"status":"ok"}'), "a non-matching request passes")
    for i in range(2):  # on the same keep-alive connection
        c.request("POST", "/v1/push", body=b'{"commands":[%d]}' % i)
        r = c.getresponse()
        body = json.loads(r.read())
        check_eq(r.status, 503, "push %d: status" % (i + 1))
        check_eq(r.getheader("Retry-After"), "2", "push %d: Retry-After" % (i + 1))
        check_eq(r.getheader("Content-Type"), "application/json", "push %d: Content-Type" % (i + 1))
        check(isinstance(body.get("error"), dict) and body["error"].get("code")
              and body["error"].get("message"), "push %d: JSON error body %r" % (i + 1, body))
    c.request("POST", "/v1/push", body=b'{"commands":["x"]}')
    r = c.getresponse()
    check_eq((r.status, r.read()), (200, b'{"results":["ok:18"]}'), "the third push passes")
    c.close()
    check_eq(Upstream.seen, [("/v1/health", b""), ("/v1/push", b'{"commands":["x"]}')],
             "upstream saw (the answered pushes never reach it)")
    proc.terminate()
    check_eq(proc.wait(timeout=10), 0, "proxy exit code on SIGTERM")


@suite.test
def status_window_delay_and_inflight(ctx):
    up = upstream(ctx)
    p = FaultProxy(("127.0.0.1", up), mode="status", match="/v1/push", status=429,
                   window_s=1.0).start()
    ctx.on_cleanup(p.stop)

    def post(body=b"{}"):
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        try:
            c.request("POST", "/v1/push", body=body)
            r = c.getresponse()
            return r.status, r.getheader("Retry-After"), r.read()
        finally:
            c.close()

    t0 = time.monotonic()
    first = post()
    check_eq(first[:2], (429, None), "first push in the window: (status, Retry-After)")
    while time.monotonic() - t0 < 0.2:
        check_eq(post()[0], 429, "a push inside the window")
    wait_for(lambda: time.monotonic() > p._window_end + 0.05, 10, "the window to end")
    check_eq(post()[0], 200, "a push after the window")
    check(p.answered >= 2, "answered %d" % p.answered)
    check_eq(len(p.timeline), p.answered + 1, "timeline entries")

    # Reply delay + in-flight count: two pushes at once through a 0.3 s delay.
    p.delay_reply_s = 0.3
    p.max_inflight = 0
    results = []
    ts = [threading.Thread(target=lambda: results.append(post())) for _ in range(2)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    took = time.monotonic() - t0
    check_eq(sorted(r[0] for r in results), [200, 200], "delayed pushes' statuses")
    check(took >= 0.3, "two pushes with a 0.3 s reply delay took %.2f s" % took)
    check_eq(p.max_inflight, 2, "max pushes in flight at once")
    check_eq(p.inflight, 0, "pushes in flight at the end")


REQ = b'POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n{"commands":1}'
FULL_REPLY_BODY = b'{"results":["ok:14"]}'


def raw_exchange(port, timeout=10):
    """Sends REQ on a fresh socket and reads until EOF or error: (bytes received, how it ended:
    "eof" | "reset" | "timeout"), and the seconds it took."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except ConnectionResetError:  # refused so fast that the RST beat connect()'s return
        return b"", "reset", time.monotonic() - t0
    got, end = b"", None
    try:
        try:
            s.sendall(REQ)
        except (BrokenPipeError, ConnectionResetError):
            return got, "reset", time.monotonic() - t0
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                end = "reset"
                break
            except socket.timeout:
                end = "timeout"
                break
            if not data:
                end = "eof"
                break
            got += data
            head, sep, body = got.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if sep and m and len(body) >= int(m.group(1)):
                end = "complete"
                break
    finally:
        s.close()
    return got, end, time.monotonic() - t0


@suite.test
def chaos_each_fault_on_the_wire(ctx):
    up = upstream(ctx)
    for fault in CHAOS_FAULTS:
        Upstream.seen = []
        p = FaultProxy(("127.0.0.1", up), mode="chaos", seed=1, weights={fault: 1}).start()
        try:
            got, end, took = raw_exchange(p.port)
            forwarded = len(Upstream.seen)
            what = "chaos %s: got %r, ended %s after %.2fs, upstream saw %d" % (
                fault, got[:80], end, took, forwarded)
            if fault in ("pass", "delay"):
                check(end == "complete" and got.startswith(b"HTTP/1.1 200 ")
                      and got.endswith(FULL_REPLY_BODY), what)
                check_eq(forwarded, 1, what + ": forwarded")
                if fault == "delay":
                    check(0.05 <= took < 2.0, what + ": delay out of 50-1500 ms")
            elif fault == "refuse":
                check(got == b"" and end in ("eof", "reset"), what)
                check_eq(forwarded, 0, what + ": forwarded")
            elif fault == "reset-before":
                check(got == b"" and end == "reset", what)
                check_eq(forwarded, 0, what + ": forwarded")
            elif fault == "drop-reply":
                check(got == b"" and end == "eof", what)
                check_eq(forwarded, 1, what + ": forwarded")
            elif fault == "reset-at-byte":
                check(end == "reset", what)
                check_eq(forwarded, 1, what + ": forwarded")
                check(not got.endswith(FULL_REPLY_BODY), what + ": the whole reply arrived")
            elif fault == "blackhole":
                check(got == b"" and end == "eof" and 0.45 <= took < 3.5, what)
                check_eq(forwarded, 0, what + ": forwarded")
            else:  # status-502 / status-503
                status = int(fault[-3:])
                check(end == "complete" and got.startswith(b"HTTP/1.1 %d " % status), what)
                head, _, body = got.partition(b"\r\n\r\n")
                err = json.loads(body)["error"]
                check(err.get("code") and err.get("message"), what + ": error body")
                check_eq(b"Retry-After: 1" in head, status == 503, what + ": Retry-After: 1")
                check_eq(forwarded, 0, what + ": forwarded")
            counts = p.counts()
            check_eq(counts[fault], 1, "chaos %s: its count" % fault)
            check_eq(sum(counts.values()), 1, "chaos %s: all counts %r" % (fault, counts))
            check_eq(p.chaos_events(), 0 if fault == "pass" else 1, "chaos %s: events" % fault)
        finally:
            p.stop()


@suite.test
def chaos_reset_at_byte_sends_a_prefix(ctx):
    """Over many draws the client gets a strict prefix of the reply, of varying length."""
    up = upstream(ctx)
    p = FaultProxy(("127.0.0.1", up), mode="chaos", seed=3, weights={"reset-at-byte": 1}).start()
    ctx.on_cleanup(p.stop)
    c = http.client.HTTPConnection("127.0.0.1", up, timeout=10)
    c.request("POST", "/v1/push", body=b'{"commands":1}')
    r = c.getresponse()
    full = b"HTTP/1.1 %d" % r.status  # the upstream's raw reply is longer; compare prefixes
    r.read()
    c.close()
    lengths = set()
    for _ in range(20):
        got, end, _ = raw_exchange(p.port)
        check_eq(end, "reset", "reset-at-byte: how the reply ended (got %r)" % got)
        check(got[:len(full)] == full[:len(got)], "not a prefix of the reply: %r" % got)
        lengths.add(len(got))
    check(len(lengths) >= 5, "reset-at-byte cut the reply at only %r" % sorted(lengths))


@suite.test
def chaos_seeded_sequence_counts_and_heal(ctx):
    up = upstream(ctx)
    weights = {"pass": 3, "refuse": 1, "reset-before": 1, "drop-reply": 1, "reset-at-byte": 1,
               "status-502": 1, "status-503": 1}

    def run(seed, n=120):
        p = FaultProxy(("127.0.0.1", up), mode="chaos", seed=seed, weights=weights).start()
        try:
            for _ in range(n):
                raw_exchange(p.port)
            return [o for (_, _, _, o) in p.timeline], p.counts(), p.chaos_events(), p
        finally:
            p.stop()

    seq_a, counts_a, events_a, _ = run(11)
    seq_b, counts_b, _, _ = run(11)
    seq_c, _, _, _ = run(12)
    check_eq(seq_a, seq_b, "the same seed: the same sequence of faults")
    check_eq(counts_a, counts_b, "the same seed: the same counts")
    check(seq_a != seq_c, "another seed drew the very same 120 faults")
    check_eq(sum(counts_a.values()), 120, "counts add up to the requests: %r" % counts_a)
    check_eq(events_a, 120 - counts_a["pass"], "events = every fault but pass")
    for f in weights:
        check(counts_a[f] > 0, "fault %s never drawn in 120 requests: %r" % (f, counts_a))

    # pass heals: a proxy switched from chaos to pass forwards everything intact
    p = FaultProxy(("127.0.0.1", up), mode="chaos", seed=5, weights={"refuse": 1}).start()
    ctx.on_cleanup(p.stop)
    check_eq(raw_exchange(p.port)[1] in ("eof", "reset"), True, "refused before the heal")
    p.mode = "pass"
    for _ in range(3):
        got, end, _ = raw_exchange(p.port)
        check(end == "complete" and got.startswith(b"HTTP/1.1 200 "),
              "after heal: %r %s" % (got, end))
    check_eq(p.counts()["refuse"], 1, "refused once")


@suite.test
def chaos_keepalive_and_upstream_down(ctx):
    """A draw per request on a kept-alive connection; an upstream that is down is counted as
    upstream-error, not as a fault."""
    up = upstream(ctx)
    p = FaultProxy(("127.0.0.1", up), mode="chaos", seed=9,
                   weights={"pass": 1, "status-503": 1}).start()
    ctx.on_cleanup(p.stop)
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    statuses = []
    for _ in range(30):  # status-503 and pass both keep the connection open
        c.request("POST", "/v1/push", body=b'{"commands":1}')
        r = c.getresponse()
        r.read()
        statuses.append(r.status)
    c.close()
    check_eq(sorted(set(statuses)), [200, 503], "statuses on one kept-alive connection")
    check_eq(p.counts()["status-503"] + p.counts()["pass"], 30, "draws: %r" % p.counts())

    dead = free_port()
    q = FaultProxy(("127.0.0.1", dead), mode="chaos", seed=9, weights={"drop-reply": 1}).start()
    ctx.on_cleanup(q.stop)
    got, end, _ = raw_exchange(q.port)
    check(got == b"" and end in ("eof", "reset"), "upstream down: %r %s" % (got, end))
    check_eq((q.counts()["upstream-error"], q.chaos_events()), (1, 0), "upstream down counts")


@suite.test
def chaos_cli_prints_counts(ctx):
    up = upstream(ctx)
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "faultproxy.py"), "--listen-port",
                             str(port), "--upstream", "127.0.0.1:%d" % up, "--mode", "chaos",
                             "--seed", "4", "--chaos-weights",
                             "pass=1,refuse=0,reset-before=0,drop-reply=0,reset-at-byte=0,"
                             "delay=0,blackhole=0,status-502=1,status-503=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    ctx.procs.append(proc)
    check_eq(proc.stdout.readline().strip(), "listening", "first stdout line")
    for _ in range(10):
        got, end, _ = raw_exchange(port)
        check(got.startswith(b"HTTP/1.1 200 ") or got.startswith(b"HTTP/1.1 502 "),
              "chaos CLI reply %r" % got[:40])
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    check_eq(proc.returncode, 0, "exit code on SIGTERM")
    j = json.loads(out.strip().splitlines()[-1])
    check_eq(j["seed"], 4, "seed printed")
    check_eq(j["counts"]["pass"] + j["counts"]["status-502"], 10, "counts %r" % j["counts"])
    check("chaos seed 4" in err, "stderr names the seed: %r" % err)


if __name__ == "__main__":
    suite.main()
