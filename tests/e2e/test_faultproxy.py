#!/usr/bin/env python3
"""Self-test of the test tool faultproxy.py (no duka needed): the CLI prints `listening`,
`pass` forwards requests and replies intact (keep-alive, Expect: 100-continue, chunked replies),
`drop-reply` delivers the first matching request upstream but loses its reply, then passes.
"""

import http.client
import http.server
import os
import subprocess
import sys
import threading

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


if __name__ == "__main__":
    suite.main()
