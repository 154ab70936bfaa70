#!/usr/bin/env python3
"""A test-only HTTP/1.1 fault-injection proxy (Python 3 standard library only).

It sits between a till and a hub on loopback and forwards requests one at a time, parsing
just enough HTTP/1.1 to find the boundaries of each request and response (request line +
headers + Content-Length or chunked body; response headers + Content-Length, chunked or
read-until-close body). Each request is sent upstream on a fresh connection, so the hub
always sees complete requests.

Modes:
  pass        forward everything.
  drop-reply  for the first COUNT requests whose path starts with MATCH: forward the full
              request upstream, read the upstream's complete response, then close the client
              socket WITHOUT sending any of it (the hub committed, the reply is lost). Later
              requests pass through normally.
  status      for the first COUNT requests whose path starts with MATCH — or, with WINDOW, for
              every matching request during WINDOW seconds from the first one — answer
              ourselves, without forwarding anything upstream: STATUS (default 503) with a JSON
              error body {"error": {"code", "message"}} and, when given, a `Retry-After:
              RETRY_AFTER` header. Later requests pass through normally.

In every mode, DELAY_MS (when > 0) holds back the reply to each matching request that is
relayed from upstream (the upstream has already answered; the client waits), which makes a
sync last long enough to act in the middle of it. The proxy counts matching requests in flight
(read from the client, reply not yet sent or dropped) and keeps the highest count seen
(`max_inflight`): two syncs of one database at once show up as 2.

The only rewrite: a request carrying `Expect: 100-continue` is answered with `100 Continue`
by the proxy itself and forwarded without the Expect header (so the proxy can read the whole
body before forwarding it). Everything else is forwarded byte for byte.

CLI:    python3 faultproxy.py --listen-port P --upstream 127.0.0.1:Q --mode MODE
                              [--match /v1/push] [--count N] [--status 503] [--retry-after S]
                              [--window S] [--delay-ms MS]
        prints `listening` on stdout once bound, serves until SIGTERM/SIGINT.
Module: p = FaultProxy(("127.0.0.1", Q), mode="drop-reply", match="/v1/push", count=1)
        p.start(); ... p.port ... p.dropped ... p.log ...; p.stop()
        p = FaultProxy(up, mode="status", status=503, retry_after=2, count=3, match="/v1/push")
        ... p.answered (how many got the injected status) ... p.timeline ...
        Attributes may be changed while it runs (mode, match, remaining, status, retry_after,
        window_s, delay_reply_s); `timeline` lists (time.monotonic() when the request was read,
        method, path, outcome) for every request, outcome as in `log`.
"""

import argparse
import json
import signal
import socket
import sys
import threading
import time

MAX_HEADER_BYTES = 64 * 1024
IO_TIMEOUT_S = 120
MODES = ("pass", "drop-reply", "status")
REASONS = {400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
ERROR_CODES = {429: "rate_limited", 503: "store_unavailable"}


class _Closed(Exception):
    """The peer closed the connection (or it broke) before a full message arrived."""


class _Reader:
    """Buffered reader over a socket, for message framing."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise _Closed()
        self.buf += data

    def read_head(self):
        """Returns the bytes up to and including the blank line ending the header block."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head, self.buf = self.buf[: i + 4], self.buf[i + 4:]
                return head
            if len(self.buf) > MAX_HEADER_BYTES:
                raise _Closed()
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[: i + 2], self.buf[i + 2:]
                return line
            if len(self.buf) > MAX_HEADER_BYTES:
                raise _Closed()
            self._fill()

    def read_chunked(self):
        """Reads a chunked body and returns it raw (chunk framing included)."""
        out = b""
        while True:
            line = self.read_line()
            out += line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # trailers up to the empty line
                while True:
                    t = self.read_line()
                    out += t
                    if t == b"\r\n":
                        return out
            out += self.read_exact(size + 2)

    def read_until_close(self):
        out = self.buf
        self.buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            out += data
        return out


def _parse_head(head):
    lines = head.decode("iso-8859-1").split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return first, headers


def _header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _read_body(reader, headers):
    te = _header(headers, "Transfer-Encoding")
    if te and "chunked" in te.lower():
        return reader.read_chunked()
    cl = _header(headers, "Content-Length")
    if cl is not None:
        return reader.read_exact(int(cl))
    return b""


class FaultProxy:
    def __init__(self, upstream, mode="pass", match="/", count=1, listen_port=0,
                 listen_host="127.0.0.1", status=503, retry_after=None, window_s=None,
                 delay_reply_s=0.0):
        if mode not in MODES:
            raise ValueError("unknown mode %r" % mode)
        self.upstream = upstream
        self.mode = mode
        self.match = match
        self.remaining = count
        self.dropped = 0
        # mode "status": the injected answer, and how many requests got it
        self.status = status
        self.retry_after = retry_after  # seconds (int) or None for no header
        self.window_s = window_s        # None: the first `count` matching requests
        self._window_end = None
        self.answered = 0
        self.delay_reply_s = delay_reply_s
        self.inflight = 0
        self.max_inflight = 0
        self.log = []  # (method, path, status or "dropped" or "upstream-error")
        self.timeline = []  # (monotonic time the request was read, method, path, outcome)
        # Test hooks (module use only): called in a new thread with (method, path, n), n counting
        # requests matching `match` from 1; on_sent once a request was sent upstream in full
        # (the hub is working on it), on_replied once its reply was relayed to the client.
        self.on_sent = None
        self.on_replied = None
        self.matched = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((listen_host, listen_port))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stopping = False
        self._thread = None
        self._clients = set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        while not self._stopping:
            try:
                client, _ = self._sock.accept()
            except OSError:
                break
            with self._lock:
                self._clients.add(client)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def stop(self):
        self._stopping = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.close()
            except OSError:
                pass
        if self._thread:
            self._thread.join(timeout=5)

    # -- per connection --------------------------------------------------------------------
    def _should_drop(self, path):
        if self.mode != "drop-reply" or not path.startswith(self.match):
            return False
        with self._lock:
            if self.remaining > 0:
                self.remaining -= 1
                self.dropped += 1
                return True
        return False

    def _should_answer(self, path):
        """Mode status: does this request get the injected answer?"""
        if self.mode != "status" or not path.startswith(self.match):
            return False
        with self._lock:
            if self.window_s is not None:
                now = time.monotonic()
                if self._window_end is None:
                    self._window_end = now + self.window_s
                if now < self._window_end:
                    self.answered += 1
                    return True
                return False
            if self.remaining > 0:
                self.remaining -= 1
                self.answered += 1
                return True
        return False

    def _injected_response(self):
        status = int(self.status)
        body = json.dumps({"error": {"code": ERROR_CODES.get(status, "injected_fault"),
                                     "message": "faultproxy: injected %d" % status}}).encode()
        head = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error")),
                "Content-Type: application/json",
                "Content-Length: %d" % len(body)]
        if self.retry_after is not None:
            head.append("Retry-After: %s" % self.retry_after)
        return ("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1") + body

    def _inflight(self, delta):
        with self._lock:
            self.inflight += delta
            self.max_inflight = max(self.max_inflight, self.inflight)

    def _record(self, t, method, path, outcome):
        self.log.append((method, path, outcome))
        self.timeline.append((t, method, path, outcome))

    def _handle(self, client):
        client.settimeout(IO_TIMEOUT_S)
        reader = _Reader(client)
        try:
            while True:
                try:
                    head = reader.read_head()
                except (_Closed, OSError):
                    return
                first, headers = _parse_head(head)
                parts = first.split(" ")
                method = parts[0] if parts else ""
                path = parts[1] if len(parts) > 1 else ""
                expect = _header(headers, "Expect")
                if expect and expect.lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    kept = [l for l in head.split(b"\r\n")
                            if not l.lower().startswith(b"expect:")]
                    head = b"\r\n".join(kept)
                try:
                    body = _read_body(reader, headers)
                except (_Closed, OSError, ValueError):
                    return
                t_read = time.monotonic()
                matching = path.startswith(self.match)
                counted = [matching]
                if matching:
                    self._inflight(+1)

                def settle():
                    # A request stops being in flight before its reply leaves: the client may
                    # send its next request the moment it has the reply, from another thread
                    # of this proxy, and that must not look like two at once.
                    if counted[0]:
                        counted[0] = False
                        self._inflight(-1)
                try:
                    if self._should_answer(path):
                        self._record(t_read, method, path, int(self.status))
                        settle()
                        client.sendall(self._injected_response())
                    else:
                        drop = self._should_drop(path)
                        n = None
                        if matching:
                            with self._lock:
                                self.matched += 1
                                n = self.matched
                        try:
                            resp, resp_close, status = self._forward(head + body, method, path, n)
                        except (OSError, _Closed, ValueError):
                            self._record(t_read, method, path, "upstream-error")
                            return  # upstream down: the client sees the connection close
                        if matching and self.delay_reply_s > 0:
                            time.sleep(self.delay_reply_s)
                        if drop:
                            self._record(t_read, method, path, "dropped")
                            return  # reply lost: close without sending a byte of it
                        self._record(t_read, method, path, status)
                        settle()
                        client.sendall(resp)
                        self._fire(self.on_replied, method, path, n)
                        if resp_close:
                            return
                finally:
                    settle()
                req_conn = (_header(headers, "Connection") or "").lower()
                if req_conn == "close":
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._clients.discard(client)
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()

    def _fire(self, hook, method, path, n):
        if hook is not None and n is not None:
            threading.Thread(target=hook, args=(method, path, n), daemon=True).start()

    def _forward(self, request, method, path=None, n=None):
        """Sends one request upstream on a fresh connection; returns (raw response bytes,
        whether the client connection must close afterwards, status code)."""
        up = socket.create_connection(self.upstream, timeout=IO_TIMEOUT_S)
        try:
            up.sendall(request)
            self._fire(self.on_sent, method, path, n)
            reader = _Reader(up)
            while True:
                head = reader.read_head()
                first, headers = _parse_head(head)
                status = int(first.split(" ")[1])
                if 100 <= status < 200:
                    continue  # interim responses are not relayed
                break
            close = (_header(headers, "Connection") or "").lower() == "close"
            te = _header(headers, "Transfer-Encoding")
            if method == "HEAD" or status in (204, 304):
                body = b""
            elif (te and "chunked" in te.lower()) or _header(headers, "Content-Length") is not None:
                body = _read_body(reader, headers)
            else:
                body = reader.read_until_close()
                close = True
            return head + body, close, status
        finally:
            up.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen-port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="HOST:PORT")
    ap.add_argument("--mode", choices=list(MODES), default="pass")
    ap.add_argument("--match", default="/")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--status", type=int, default=503, help="mode status: the status to answer")
    ap.add_argument("--retry-after", type=int, default=None,
                    help="mode status: add Retry-After: N (seconds)")
    ap.add_argument("--window", type=float, default=None,
                    help="mode status: answer every matching request for this many seconds "
                         "from the first one (instead of the first COUNT)")
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="hold back relayed replies to matching requests this long")
    a = ap.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    proxy = FaultProxy((host, int(port)), mode=a.mode, match=a.match, count=a.count,
                       listen_port=a.listen_port, status=a.status, retry_after=a.retry_after,
                       window_s=a.window, delay_reply_s=a.delay_ms / 1000.0)

    def on_signal(signum, frame):
        proxy.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("listening", flush=True)
    proxy.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
