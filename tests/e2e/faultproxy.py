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

  chaos       seeded random faults. For each request (on a new connection: as soon as it is
              accepted; on a kept-alive one: when the next request's first byte arrives) a
              random.Random(SEED) draws one fault by WEIGHTS (`--chaos-weights
              refuse=5,delay=10,...`; defaults in CHAOS_WEIGHTS), and one parameter for it:
                pass           forward, relay the reply.
                refuse         close the connection at once without reading the request:
                               half of the draws with a FIN, half with a RST.
                reset-before   read the request, then RST the client (SO_LINGER 0) without
                               forwarding anything.
                drop-reply     forward, read upstream's full reply, close the client (FIN)
                               without sending a byte of it: the hub committed, the reply is
                               lost.
                reset-at-byte  forward, read the full reply, send its first N bytes (N drawn
                               in 0..len-1), then RST.
                delay          forward, hold the reply 50-1500 ms (drawn), then relay it.
                blackhole      read the request, forward nothing, answer nothing for 0.5-3 s
                               (drawn), then close (FIN): a fault the client must time out on
                               or see closed, without stalling it for its full 60 s timeout.
                status-502     answer ourselves 502 with a JSON error body, not forwarded.
                status-503     answer ourselves 503 + `Retry-After: 1`, JSON error body, not
                               forwarded.
              Every fault applies to every path (MATCH only selects which requests fire the
              hooks and count as in flight). `chaos_counts` counts the faults actually applied
              per type (thread-safe), plus `upstream-error` for a request that was to be
              forwarded while the upstream did not answer (the client sees the connection
              close); `chaos_events()` is the number of faults other than pass. The same seed
              gives the same sequence of draws; which request gets which draw depends on the
              order requests arrive, so with real clients only the sequence is reproducible.
              Switching `mode` to "pass" ends the faults (requests already held finish theirs).

In every mode but chaos, DELAY_MS (when > 0) holds back the reply to each matching request
that is relayed from upstream (the upstream has already answered; the client waits), which
makes a sync last long enough to act in the middle of it. The proxy counts matching requests
in flight (read from the client, reply not yet sent or dropped) and keeps the highest count
seen (`max_inflight`): two syncs of one database at once show up as 2.

The only rewrite: a request carrying `Expect: 100-continue` is answered with `100 Continue`
by the proxy itself and forwarded without the Expect header (so the proxy can read the whole
body before forwarding it). Everything else is forwarded byte for byte.

CLI:    python3 faultproxy.py --listen-port P --upstream 127.0.0.1:Q --mode MODE
                              [--match /v1/push] [--count N] [--status 503] [--retry-after S]
                              [--window S] [--delay-ms MS] [--seed N] [--chaos-weights W]
        prints `listening` on stdout once bound, serves until SIGTERM/SIGINT; in chaos mode it
        then prints the chaos counts as one JSON object.
Module: p = FaultProxy(("127.0.0.1", Q), mode="drop-reply", match="/v1/push", count=1)
        p.start(); ... p.port ... p.dropped ... p.log ...; p.stop()
        p = FaultProxy(up, mode="status", status=503, retry_after=2, count=3, match="/v1/push")
        ... p.answered (how many got the injected status) ... p.timeline ...
        Attributes may be changed while it runs (mode, match, remaining, status, retry_after,
        window_s, delay_reply_s); `timeline` lists (time.monotonic() when the request was read,
        method, path, outcome) for every request, outcome as in `log` (keep_log=False keeps
        neither, for long runs).
        p = FaultProxy(up, mode="chaos", seed=7, weights={"pass": 50, "refuse": 5, ...})
        ... p.chaos_counts ... p.chaos_events() ...; p.mode = "pass" to heal. `weights` None
        means CHAOS_WEIGHTS; a dict gives 0 to the faults it does not name (the CLI's
        --chaos-weights, like parse_weights(), changes the defaults instead). seed=None draws
        from an unseeded generator (not reproducible); any int or str seed is.
"""

import argparse
import json
import random
import signal
import socket
import struct
import sys
import threading
import time

MAX_HEADER_BYTES = 64 * 1024
IO_TIMEOUT_S = 120
MODES = ("pass", "drop-reply", "status", "chaos")
# Chaos mode: every fault it can draw, and the default weights (relative, need not sum to 100).
CHAOS_FAULTS = ("pass", "refuse", "reset-before", "drop-reply", "reset-at-byte", "delay",
                "blackhole", "status-502", "status-503")
CHAOS_WEIGHTS = {"pass": 40, "refuse": 8, "reset-before": 8, "drop-reply": 10,
                 "reset-at-byte": 10, "delay": 6, "blackhole": 2, "status-502": 5,
                 "status-503": 5}
CHAOS_DELAY_MS = (50, 1500)
CHAOS_BLACKHOLE_S = (0.5, 3.0)
REASONS = {400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
ERROR_CODES = {429: "rate_limited", 502: "bad_gateway", 503: "store_unavailable"}


def parse_weights(text):
    """'refuse=5,delay=10' -> {fault: weight}; faults not named keep their default weight
    (name one with 0 to turn it off)."""
    w = dict(CHAOS_WEIGHTS)
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in CHAOS_FAULTS:
            raise ValueError("unknown chaos fault %r (known: %s)" % (name, ", ".join(CHAOS_FAULTS)))
        w[name] = float(value)
    return w


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
                 delay_reply_s=0.0, seed=None, weights=None, keep_log=True):
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
        self.keep_log = keep_log
        # mode "chaos"
        self.seed = seed
        self.rng = random.Random(seed)
        self.weights = {}
        self._cum = []
        self.set_weights(weights)
        self.chaos_counts = {f: 0 for f in CHAOS_FAULTS + ("upstream-error",)}
        self.chaos_draws = 0
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((listen_host, listen_port))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stopping = False
        self._thread = None
        self._clients = set()

    # -- chaos -----------------------------------------------------------------------------
    def set_weights(self, weights):
        """Chaos weights: a dict {fault: weight} (faults not named get 0) or None (defaults)."""
        w = dict(CHAOS_WEIGHTS) if weights is None else {f: 0 for f in CHAOS_FAULTS}
        if weights is not None:
            for k, v in weights.items():
                if k not in CHAOS_FAULTS:
                    raise ValueError("unknown chaos fault %r" % k)
                w[k] = float(v)
        total = sum(max(0.0, v) for v in w.values())
        if total <= 0:
            raise ValueError("chaos weights are all zero")
        cum, acc = [], 0.0
        for f in CHAOS_FAULTS:
            acc += max(0.0, w.get(f, 0)) / total
            cum.append((acc, f))
        self.weights, self._cum = w, cum

    def _chaos_draw(self):
        """One seeded decision: (fault, u) with u in [0, 1) the fault's parameter. Always two
        draws from the generator, so the sequence does not depend on which faults came up."""
        with self._lock:
            u1 = self.rng.random()
            u2 = self.rng.random()
            self.chaos_draws += 1
        for acc, f in self._cum:
            if u1 < acc:
                return f, u2
        return self._cum[-1][1], u2

    def _count(self, fault):
        with self._lock:
            self.chaos_counts[fault] = self.chaos_counts.get(fault, 0) + 1

    def chaos_events(self):
        """Faults applied so far (every type but pass and upstream-error)."""
        with self._lock:
            return sum(v for k, v in self.chaos_counts.items()
                       if k not in ("pass", "upstream-error"))

    def counts(self):
        """A copy of chaos_counts."""
        with self._lock:
            return dict(self.chaos_counts)

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
        self._stop_event.set()
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

    def _injected_response(self, status=None, retry_after=-1):
        status = int(self.status if status is None else status)
        retry_after = self.retry_after if retry_after == -1 else retry_after
        body = json.dumps({"error": {"code": ERROR_CODES.get(status, "injected_fault"),
                                     "message": "faultproxy: injected %d" % status}}).encode()
        head = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error")),
                "Content-Type: application/json",
                "Content-Length: %d" % len(body)]
        if retry_after is not None:
            head.append("Retry-After: %s" % retry_after)
        return ("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1") + body

    def _inflight(self, delta):
        with self._lock:
            self.inflight += delta
            self.max_inflight = max(self.max_inflight, self.inflight)

    def _record(self, t, method, path, outcome):
        if not self.keep_log:
            return
        self.log.append((method, path, outcome))
        self.timeline.append((t, method, path, outcome))

    def _handle(self, client):
        client.settimeout(IO_TIMEOUT_S)
        reader = _Reader(client)
        abort = [False]  # close with a RST (SO_LINGER 0) instead of a FIN
        first_request = True
        try:
            while True:
                fault = None
                if self.mode == "chaos":
                    if not first_request and not reader.buf:
                        # A kept-alive connection: draw when the next request begins, not
                        # for a connection the client leaves idle and closes.
                        try:
                            reader._fill()
                        except (_Closed, OSError):
                            return
                    fault, u = self._chaos_draw()
                    if fault == "refuse":
                        self._count(fault)
                        self._record(time.monotonic(), "", "", "refuse")
                        abort[0] = u < 0.5
                        return
                first_request = False
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
                    if fault is not None:
                        if not self._chaos_request(client, fault, u, head + body, method, path,
                                                   t_read, matching, settle, abort):
                            return
                    elif self._should_answer(path):
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
            if abort[0]:
                try:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            else:
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            client.close()

    def _chaos_request(self, client, fault, u, request, method, path, t_read, matching, settle,
                       abort):
        """Applies one drawn fault to one request already read. Returns True when the
        connection may serve another request, False when it must close now (abort[0] set:
        with a RST)."""
        if fault == "reset-before":
            self._count(fault)
            self._record(t_read, method, path, fault)
            abort[0] = True
            return False
        if fault == "blackhole":
            self._count(fault)
            self._record(t_read, method, path, fault)
            lo, hi = CHAOS_BLACKHOLE_S
            self._stop_event.wait(lo + u * (hi - lo))
            return False
        if fault in ("status-502", "status-503"):
            status = int(fault[-3:])
            self._count(fault)
            self._record(t_read, method, path, status)
            settle()
            client.sendall(self._injected_response(status, 1 if status == 503 else None))
            return True
        # pass, drop-reply, reset-at-byte, delay: forward first
        n = None
        if matching:
            with self._lock:
                self.matched += 1
                n = self.matched
        try:
            resp, resp_close, status = self._forward(request, method, path, n)
        except (OSError, _Closed, ValueError):
            self._count("upstream-error")
            self._record(t_read, method, path, "upstream-error")
            return False
        if fault == "drop-reply":
            self._count(fault)
            self._record(t_read, method, path, "dropped")
            return False
        if fault == "reset-at-byte":
            cut = int(u * len(resp))
            self._count(fault)
            self._record(t_read, method, path, "reset-at-%d" % cut)
            settle()
            if cut:
                client.sendall(resp[:cut])
                time.sleep(0.01)  # let the client read the bytes before the RST
            abort[0] = True
            return False
        if fault == "delay":
            lo, hi = CHAOS_DELAY_MS
            self._count(fault)
            self._stop_event.wait((lo + u * (hi - lo)) / 1000.0)
        else:
            self._count("pass")
        self._record(t_read, method, path, status)
        settle()
        client.sendall(resp)
        self._fire(self.on_replied, method, path, n)
        return not resp_close

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
    ap.add_argument("--seed", type=int, default=None,
                    help="mode chaos: seed of the fault draws (default: random, printed)")
    ap.add_argument("--chaos-weights", default="",
                    help="mode chaos: FAULT=WEIGHT,... over the defaults (%s)"
                         % ",".join("%s=%g" % kv for kv in CHAOS_WEIGHTS.items()))
    a = ap.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    seed = a.seed
    if a.mode == "chaos" and seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    try:
        weights = parse_weights(a.chaos_weights)
    except ValueError as e:
        ap.error(str(e))
    proxy = FaultProxy((host, int(port)), mode=a.mode, match=a.match, count=a.count,
                       listen_port=a.listen_port, status=a.status, retry_after=a.retry_after,
                       window_s=a.window, delay_reply_s=a.delay_ms / 1000.0, seed=seed,
                       weights=weights, keep_log=False)

    def on_signal(signum, frame):
        proxy.stop()
        if a.mode == "chaos":
            print(json.dumps({"seed": seed, "counts": proxy.counts()}), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if a.mode == "chaos":
        sys.stderr.write("faultproxy: chaos seed %d\n" % seed)
    print("listening", flush=True)
    proxy.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
