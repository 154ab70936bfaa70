#!/usr/bin/env python3
"""Self-test of the test tool faultproxy.py (no duka needed): the CLI prints `listening`,
`pass` forwards requests and replies intact (keep-alive, Expect: 100-continue, chunked replies),
`drop-reply` delivers the first matching request upstream but loses its reply, then passes;
`status` answers the first COUNT matching requests (or those in a time window) itself with the
status, a JSON error and Retry-After, without forwarding them, then passes; a reply delay holds
replies back and the in-flight count sees concurrent requests.
"""

import http.client
import http.server
import os
import json
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy  # noqa: E402
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


if __name__ == "__main__":
    suite.main()
