"""Shared helpers for duka's end-to-end tests (Python 3 standard library only).

Each test file is a standalone script: it builds a `Suite`, registers test functions with
`@suite.test`, and calls `suite.main()`, which runs each test in its own temp dir, kills every
process the test started (even on failure), prints `N passed, N failed` as its last line and
exits 0 only if everything passed. The binary under test is `$DUKA_BIN` (default
`<repo>/build/duka`). Everything listens on 127.0.0.1 and proxy variables are removed from the
children's environment, so nothing reaches outside loopback.

Timing: nothing sleeps for a fixed time to "let things happen"; helpers poll for a condition
with a generous deadline, so the suite holds on a loaded 2-core machine and under
AddressSanitizer.

The hub's store: SQLite (hub.db in the test's temp dir) by default; with DUKA_E2E_HUB_DB=pg a
fresh schema in the PostgreSQL of DUKA_PG_URL / DUKA_PG_ADMIN_URL (tests/pg/run_with_pg.sh
starts a throwaway one), created by the owner (`duka hub init` on DUKA_PG_ADMIN_URL) and served
by the hub's role (DUKA_PG_URL) — `new_hub_db()`, `setup_business()`.
"""

import atexit
import http.client as httpclient
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|"
                          r"runtime error: |WARNING: ThreadSanitizer|"
                          r"==\d+== ERROR SUMMARY: [1-9]")  # valgrind (tests/valgrind-duka.sh)
RECEIPT_RE = re.compile(r"^(?P<term>[A-Za-z0-9]+)-(?P<date>\d{8})-(?P<seq>\d{5,})$")

# The cashier every setup_business creates (a manager): Till.login() logs in as it, since every
# write of the till's local API needs a cashier's session.
DEFAULT_CASHIER_NAME = "Tester"
DEFAULT_CASHIER_PIN = "2468"
DEFAULT_CASHIER_ROLE = "manager"
DEFAULT_CASHIER = DEFAULT_CASHIER_NAME  # what `duka sell --cashier` takes

# Slower machines / sanitizer builds can scale every deadline with DUKA_E2E_SLOWDOWN=2.
SLOWDOWN = float(os.environ.get("DUKA_E2E_SLOWDOWN", "1"))


def duka_bin():
    return os.environ.get("DUKA_BIN") or os.path.join(REPO, "build", "duka")


# Prefixes of the settings (`duka config`; HUB_ are the hub's): read from the environment, so
# a caller's own values must not leak into the tests.
CONFIG_ENV_PREFIXES = ("OFFLINE_QUEUE_", "CONNECTIVITY_", "ALERT_", "QUEUE_", "HUB_", "SALE_",
                       "SHOP_", "ETIMS_")


def child_env(extra=None):
    """Environment for every process we start: no proxies (libcurl honours http_proxy, and
    would send loopback traffic elsewhere), no stray DUKA_* configuration or till settings
    (OFFLINE_QUEUE_*, CONNECTIVITY_*, ...) from the caller."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
           and not (k.startswith("DUKA_") and k != "DUKA_BIN")
           and not k.startswith(CONFIG_ENV_PREFIXES)}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# the hub's database: a SQLite file or a PostgreSQL schema
# --------------------------------------------------------------------------------------------
HUB_DB_KIND = os.environ.get("DUKA_E2E_HUB_DB", "sqlite")
if HUB_DB_KIND not in ("sqlite", "pg"):
    raise SystemExit("DUKA_E2E_HUB_DB must be sqlite or pg, not %r" % HUB_DB_KIND)
PG_BIN = os.environ.get("DUKA_PG_BIN", "/usr/lib/postgresql/15/bin")


def pg_mode():
    return HUB_DB_KIND == "pg"


def is_url(db):
    return db.startswith(("postgres://", "postgresql://"))


def pg_env(name):
    v = os.environ.get(name)
    if not v:
        raise AssertionError("DUKA_E2E_HUB_DB=pg needs %s (run under tests/pg/run_with_pg.sh, or "
                             "eval \"$(scripts/pg.sh start DIR)\")" % name)
    return v


def url_in_schema(url, schema):
    """url whose connections use schema (the store's unqualified names land there)."""
    return "%s%soptions=-csearch_path%%3D%s" % (url, "&" if "?" in url else "?", schema)


def psql(url, sql, timeout=60):
    """Runs sql with psql as the role url names; returns stdout (unaligned, tuples only).
    PostgreSQL's own psql, not Debian's wrapper (which is a Perl script and slow to start)."""
    exe = os.path.join(PG_BIN, "psql")
    if not os.access(exe, os.X_OK):
        exe = "psql"
    p = subprocess.run([exe, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout * SLOWDOWN)
    if p.returncode != 0:
        raise AssertionError("psql %r: %s" % (sql[:200], p.stderr.strip()))
    return p.stdout


def new_pg_schema(prefix="e2e"):
    """A new empty schema owned by the owner; returns its name."""
    schema = "%s_%d_%s" % (prefix, os.getpid(), uuid.uuid4().hex[:8])
    psql(pg_env("DUKA_PG_ADMIN_URL"), "CREATE SCHEMA %s" % schema)
    return schema


def new_hub_db(tmp):
    """A fresh hub database for one test: (db, init_db). db is what `duka hub` and the admin
    commands get (tmp/hub.db, or the hub role's URL of a new schema); init_db is what the
    first `duka hub init` gets (the same file, or the owner's URL: the owner creates the
    schema and grants the hub's role its rights)."""
    if not pg_mode():
        path = os.path.join(tmp, "hub.db")
        return path, path
    schema = new_pg_schema()
    return (url_in_schema(pg_env("DUKA_PG_URL"), schema),
            url_in_schema(pg_env("DUKA_PG_ADMIN_URL"), schema))


def deadline(seconds):
    return time.monotonic() + seconds * SLOWDOWN


def log(*args):
    print(*args, flush=True)


# --------------------------------------------------------------------------------------------
# process bookkeeping: every process started is killed at the end, even on failure
# --------------------------------------------------------------------------------------------
_ALL_PROCS = []
_ALL_LOCK = threading.Lock()


def _register(proc):
    with _ALL_LOCK:
        _ALL_PROCS.append(proc)
    if _CURRENT is not None:
        _CURRENT.procs.append(proc)
    return proc


def kill_proc(proc):
    """SIGKILL a process we started (and its process group: each runs in its own session)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def kill_group_leftovers(proc):
    """After a process we started has exited, kill anything left in its process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_all():
    with _ALL_LOCK:
        procs = list(_ALL_PROCS)
    for p in procs:
        kill_proc(p)
        kill_group_leftovers(p)


atexit.register(_kill_all)


def _on_term(signum, frame):
    _kill_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


def popen(args, stdout=None, stderr=None, env=None, **kw):
    """Start `duka ARGS` (args without the binary) in its own session; registered for cleanup."""
    cmd = [duka_bin()] + [str(a) for a in args]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=stdout if stdout is not None else subprocess.DEVNULL,
                         stderr=stderr if stderr is not None else subprocess.DEVNULL,
                         env=child_env(env), start_new_session=True, **kw)
    p.cmdline = cmd
    return _register(p)


# --------------------------------------------------------------------------------------------
# running commands
# --------------------------------------------------------------------------------------------
def run(args, timeout=60, env=None, input=None):
    """Run `duka ARGS` to completion; returns (returncode, stdout, stderr)."""
    cmd = [duka_bin()] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace",
                           timeout=timeout * SLOWDOWN, env=child_env(env))
    except subprocess.TimeoutExpired:
        raise AssertionError("timed out after %ss: %s" % (timeout * SLOWDOWN, " ".join(cmd)))
    return p.returncode, p.stdout, p.stderr


def fmt_cmd(args):
    return "duka " + " ".join(str(a) for a in args)


def run_ok(args, **kw):
    rc, out, err = run(args, **kw)
    if rc != 0:
        raise AssertionError("%s -> exit %s, stderr: %s" % (fmt_cmd(args), rc, err.strip()))
    return out


def parse_json(text, what):
    try:
        v = json.loads(text)
    except ValueError as e:
        raise AssertionError("%s: stdout is not one JSON object (%s): %r" % (what, e, text[:500]))
    if not isinstance(v, dict):
        raise AssertionError("%s: stdout JSON is not an object: %r" % (what, text[:500]))
    return v


def run_json(args, expect_rc=0, **kw):
    """Run `duka ARGS` (add --json yourself) and parse stdout as one JSON object."""
    rc, out, err = run(args, **kw)
    if expect_rc is not None and rc != expect_rc:
        raise AssertionError("%s -> exit %s (expected %s), stderr: %s"
                             % (fmt_cmd(args), rc, expect_rc, err.strip()))
    return parse_json(out, fmt_cmd(args))


def expect_error(args, contains=(), rc=1, timeout=60):
    """The failure contract: exit `rc` and exactly ONE non-empty line on stderr that contains
    every string in `contains` (case-insensitive). Returns the stderr line."""
    code, out, err = run(args, timeout=timeout)
    lines = [l for l in err.split("\n") if l.strip()]
    problems = []
    if code != rc:
        problems.append("exit %s (expected %s)" % (code, rc))
    if len(lines) != 1:
        problems.append("%d stderr lines (expected exactly 1)" % len(lines))
    low = err.lower()
    for c in contains:
        if c.lower() not in low:
            problems.append("stderr lacks %r" % c)
    if problems:
        raise AssertionError("%s: %s; stderr was: %r" % (fmt_cmd(args), "; ".join(problems), err[:800]))
    return lines[0]


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def check_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


# --------------------------------------------------------------------------------------------
# network helpers
# --------------------------------------------------------------------------------------------
def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def http(method, port, path, body=None, headers=None, timeout=10, https=False):
    """One HTTP request to 127.0.0.1:port; returns (status, body bytes). Never raises on 4xx.
    https=True speaks TLS without verifying (the tests' own self-signed hub)."""
    if https:
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = httpclient.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    else:
        conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def http_json(method, port, path, body=None, headers=None, timeout=10):
    status, data = http(method, port, path, body=body, headers=headers, timeout=timeout)
    try:
        return status, json.loads(data.decode("utf-8"))
    except ValueError:
        return status, None


def wait_for(cond, seconds, what, interval=0.05):
    """Poll cond() until truthy; returns its value or raises naming `what`."""
    end = deadline(seconds)
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polling through transient errors
            last_exc = e
        if time.monotonic() > end:
            raise AssertionError("timed out after %.0fs waiting for %s%s"
                                 % (seconds * SLOWDOWN, what,
                                    (" (last error: %r)" % last_exc) if last_exc else ""))
        time.sleep(interval)


def make_cert(ctx):
    """A self-signed certificate for 127.0.0.1 and localhost, valid two days (openssl), and its
    key, in the test's folder; returns (cert path, key path), both PEM."""
    cert, key = ctx.path("hub.crt"), ctx.path("hub.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------
class _Server:
    """A long-running `duka ...` server process with a health URL."""

    health_path = "/"
    kind = "server"
    https = False

    def __init__(self, args, port, logdir, env=None):
        self.args = args
        self.port = port
        self.logdir = logdir
        self.env = env  # extra environment variables for the process
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log_path(self):
        return os.path.join(self.logdir, "%s-%d.%d.log" % (self.kind, self.port, self.starts))

    def log_tail(self, n=2000):
        try:
            with open(self.log_path(), "r", errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def start(self, timeout=10, wait=True):
        """Start the process; unless wait=False, poll the health URL every 50 ms until it
        answers 200 (up to `timeout` s)."""
        self.starts += 1
        logf = open(self.log_path(), "wb")
        self.proc = popen(self.args, stdout=logf, stderr=subprocess.STDOUT, env=self.env)
        logf.close()
        if _CURRENT is not None and self not in _CURRENT.servers:
            _CURRENT.servers.append(self)
        if not wait:
            return self

        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before answering health; output: %s"
                                     % (fmt_cmd(self.args), self.proc.returncode, self.log_tail()))
            try:
                status, _ = http("GET", self.port, self.health_path, timeout=2,
                                 https=self.https)
            except OSError:
                return False
            return status == 200

        end = deadline(timeout)
        while True:
            if healthy():
                return self
            if time.monotonic() > end:
                kill_proc(self.proc)
                raise AssertionError("%s: GET %s did not answer 200 within %ss; output: %s"
                                     % (fmt_cmd(self.args), self.health_path, timeout * SLOWDOWN,
                                        self.log_tail()))
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, then wait; SIGKILL if it does not exit. Returns the exit code (None if it
        had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout * SLOWDOWN)
        except subprocess.TimeoutExpired:
            kill_proc(self.proc)
            return None

    def kill(self):
        """SIGKILL (no chance to clean up), then reap."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Hub(_Server):
    health_path = "/v1/health"
    kind = "hub"

    def __init__(self, db, port, logdir=None, extra=(), https=False, env=None):
        """db: a file or a postgres:// URL (its logs then go to the test's temp dir unless
        logdir says otherwise); extra: more arguments (--tls-cert F --tls-key K with
        https=True); env: extra environment (HUB_CONNECTION_TIMEOUT=2 ...)."""
        self.db = db
        self.https = https
        if logdir is None:
            logdir = (_CURRENT.tmp if _CURRENT is not None else tempfile.gettempdir()) \
                if is_url(db) else os.path.dirname(db)
        super().__init__(["hub", "--db", db, "--listen", "127.0.0.1:%d" % port]
                         + [str(a) for a in extra], port, logdir, env=env)


class Till(_Server):
    health_path = "/api/status"
    kind = "till"

    def __init__(self, db, port, sync_interval=1, logdir=None, extra=(), env=None):
        """sync_interval=None leaves --sync-interval out (the default interval); `extra` are
        more arguments (--batch N, --offline, --config F); `env` extra environment."""
        self.db = db
        args = ["till", "--db", db, "--listen", "127.0.0.1:%d" % port]
        if sync_interval is not None:
            args += ["--sync-interval", str(sync_interval)]
        super().__init__(args + [str(a) for a in extra], port, logdir or os.path.dirname(db),
                         env=env)

    def status(self):
        status, body = http_json("GET", self.port, "/api/status", timeout=5)
        check_eq(status, 200, "GET /api/status")
        return body

    _token = None

    def login(self, name=None, pin=None):
        """Logs in through POST /api/login as the cashier `name` (the default cashier every
        setup_business creates when None); returns the session token, kept for auth()."""
        name = name or DEFAULT_CASHIER_NAME
        pin = pin or DEFAULT_CASHIER_PIN
        status, body = http_json("GET", self.port, "/api/cashiers", timeout=5)
        check_eq(status, 200, "GET /api/cashiers")
        ids = [c["id"] for c in body["cashiers"] if c["name"] == name]
        check(ids, "cashier %r not on the till (GET /api/cashiers: %r)" % (name, body))
        status, body = http_json("POST", self.port, "/api/login",
                                 body=json.dumps({"cashier_id": ids[0], "pin": pin}),
                                 headers={"Content-Type": "application/json"}, timeout=10)
        check(status == 200 and body.get("token"), "POST /api/login as %s -> %s %r"
              % (name, status, body))
        self._token = body["token"]
        return self._token

    def auth(self):
        """Headers of a cashier's session (logged in once, on first use): every write of the
        till's local API needs one."""
        if self._token is None:
            self.login()
        return {"Content-Type": "application/json", "Authorization": "Bearer " + self._token}

    def post(self, path, body, timeout=30):
        """POST a JSON body (a dict, or bytes/str as they are) with the session; (status, json)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return http_json("POST", self.port, path, body=body, headers=self.auth(),
                         timeout=timeout)

    def history(self):
        status, body = http_json("GET", self.port, "/api/history", timeout=5)
        check_eq(status, 200, "GET /api/history")
        check(isinstance(body, dict) and isinstance(body.get("attempts"), list),
              "GET /api/history: want {\"attempts\": [...]}, got %r" % (body,))
        return body["attempts"]

    def sale(self, *items, pay="cash"):
        """POST /api/sales with items "SKU" or "SKU*QTY"; returns the reply (201 checked)."""
        lines = []
        for it in items:
            sku, _, qty = it.partition("*")
            lines.append({"sku": sku, "qty": float(qty) if "." in qty else int(qty or 1)})
        status, body = self.post("/api/sales", {"items": lines, "pay": pay})
        check(status == 201 and isinstance(body, dict), "POST /api/sales %r -> %s %r"
              % (items, status, body))
        rn = body.get("receipt_no")
        check(isinstance(rn, str) and RECEIPT_RE.match(rn),
              "POST /api/sales: bad receipt_no %r in %r" % (rn, body))
        check_eq(body.get("sync"), "pending", "POST /api/sales: sync")
        return body

    def sales(self, n, label=""):
        """n sales through POST /api/sales (much faster than n `duka sell` processes)."""
        out = []
        t0 = time.monotonic()
        for i in range(n):
            a = SKUS[i % len(SKUS)]
            b = SKUS[(i * 5 + 1) % len(SKUS)]
            out.append(self.sale(a, "%s*%d" % (b, 1 + i % 2)))
        dt = time.monotonic() - t0
        log("  %s%d sales through POST /api/sales in %.1fs (%.1f ms/sale)"
            % (label, n, dt, 1000 * dt / max(n, 1)))
        return out

    def set_offline(self, offline):
        status, body = self.post("/api/offline", {"offline": bool(offline)})
        check(status == 200 and isinstance(body, dict),
              "POST /api/offline %s -> %s %r" % (offline, status, body))
        return body


# --------------------------------------------------------------------------------------------
# eTIMS: the simulator (`duka sim etims`) and a hub forwarding to it
# --------------------------------------------------------------------------------------------
ETIMS_TIN = "P051234567X"  # the KRA PIN the eTIMS tests give their business
ETIMS_BHF = "00"


class Sim(_Server):
    """`duka sim etims` on a free port with its --state in the test's temp dir (contract 12,
    section 2); post/faults/invoices speak to its control API."""

    health_path = "/_sim/health"
    kind = "sim"

    def __init__(self, ctx, port=None, state=None, extra=()):
        port = port or free_port()
        self.state = state or ctx.path("etims.db")
        super().__init__(["sim", "etims", "--listen", "127.0.0.1:%d" % port, "--state",
                          self.state] + [str(a) for a in extra], port, ctx.tmp)

    @property
    def base_url(self):
        """What the hub's ETIMS_BASE_URL is to point at it."""
        return "http://127.0.0.1:%d/etims-api" % self.port

    def post(self, path, body, headers=None, timeout=10):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return http_json("POST", self.port, path, body=data, headers=h, timeout=timeout)

    def faults(self, **knobs):
        """POST /_sim/faults (outage, fail_rate, latency_ms, timeout_after_accept,
        sequence_window); returns the knobs after the change."""
        status, reply = self.post("/_sim/faults", knobs)
        check_eq(status, 200, "POST /_sim/faults %r: %r" % (knobs, reply))
        return reply

    def invoices(self, tin=ETIMS_TIN, bhf=ETIMS_BHF):
        """GET /_sim/invoices of one taxpayer branch: {"invoices", "duplicates_refused",
        "gaps", "stats"}."""
        status, reply = http_json("GET", self.port,
                                  "/_sim/invoices?tin=%s&bhfId=%s" % (tin, bhf))
        check(status == 200 and isinstance(reply, dict), "GET /_sim/invoices: %s %r"
              % (status, reply))
        return reply


def etims_env(base_url, **settings):
    """The hub's environment to forward invoices to base_url (a Sim or a URL): ETIMS_BASE_URL
    and any other setting given (ETIMS_TIMEOUT=2, ETIMS_IN_FLIGHT=4 ...)."""
    env = {"ETIMS_BASE_URL": base_url.base_url if isinstance(base_url, Sim) else base_url}
    env.update({k: str(v) for k, v in settings.items()})
    return env


# --------------------------------------------------------------------------------------------
# M-Pesa: the simulator (`duka sim mpesa`) and a hub verifying codes with it
# --------------------------------------------------------------------------------------------
MPESA_SHORTCODE = "600000"
MPESA_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


class MpesaSim(_Server):
    """`duka sim mpesa` on a free port with its --state in the test's temp dir."""

    health_path = "/_sim/health"
    kind = "sim"

    def __init__(self, ctx, port=None, state=None, extra=()):
        port = port or free_port()
        self.state = state or ctx.path("mpesa.db")
        super().__init__(["sim", "mpesa", "--listen", "127.0.0.1:%d" % port, "--state",
                          self.state] + [str(a) for a in extra], port, ctx.tmp)

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def post(self, path, body, timeout=10):
        return http_json("POST", self.port, path, body=json.dumps(body),
                         headers={"Content-Type": "application/json"}, timeout=timeout)

    def get(self, path):
        status, reply = http_json("GET", self.port, path)
        check(status == 200, "GET %s: %s %r" % (path, status, reply))
        return reply

    def faults(self, **knobs):
        status, reply = self.post("/_sim/faults", knobs)
        check_eq(status, 200, "POST /_sim/faults %r: %r" % (knobs, reply))
        return reply

    def c2b(self, amount_kes, phone="254708374149", shortcode=MPESA_SHORTCODE, ref="", **more):
        """A customer pays the shortcode from their phone; returns the TransID."""
        body = {"ShortCode": shortcode, "Amount": amount_kes, "Msisdn": phone,
                "BillRefNumber": ref}
        body.update(more)
        status, reply = self.post("/_sim/c2b", body)
        check_eq(status, 200, "POST /_sim/c2b %r: %r" % (body, reply))
        return reply["TransID"]


def mpesa_env(ctx, sim, hub_port, **settings):
    """The hub's environment to verify M-Pesa codes with sim: its Daraja credentials, an
    initiator's credential file, the hub's own address for callbacks, and settings given."""
    cred = ctx.path("mpesa-credential.txt")
    with open(cred, "w") as f:
        f.write("c2ltdWxhdGVkLWNyZWRlbnRpYWw=\n")
    env = {"MPESA_BASE_URL": sim.base_url,
           "MPESA_CALLBACK_BASE_URL": "http://127.0.0.1:%d" % hub_port,
           "MPESA_CONSUMER_KEY": "duka-sim-key", "MPESA_CONSUMER_SECRET": "duka-sim-secret",
           "MPESA_PASSKEY": MPESA_PASSKEY, "MPESA_INITIATOR": "testapi",
           "MPESA_SECURITY_CREDENTIAL_FILE": cred}
    env.update({k: str(v) for k, v in settings.items()})
    return env


# --------------------------------------------------------------------------------------------
# business setup
# --------------------------------------------------------------------------------------------
PRODUCTS = [
    # sku, name, price (KES), tax band, stock, category
    ("SUGAR1KG", "Sugar 1kg", "165.00", "B", 5000, "Groceries"),
    ("MILK500", "Milk 500ml", "65.00", "C", 9000, "Dairy"),
    ("BREAD400", "Bread 400g", "60.00", "B", 3000, "Bakery"),
    ("RICE", "Pishori rice per kg", "180.00", "E", 2000, "Groceries"),
    ("SODA300", "Soda 300ml", "50.00", "B", 9000, "Drinks"),
    ("UNGA2KG", "Maize flour 2kg", "210.50", "A", 1000, "Groceries"),
]
SKUS = [p[0] for p in PRODUCTS]


def write_csv(path, rows, header="sku,name,price,tax,stock,category"):
    with open(path, "w") as f:
        f.write(header + "\n")
        for r in rows:
            f.write((r if isinstance(r, str) else ",".join(str(x) for x in r)) + "\n")
    return path


class Business:
    def __init__(self, tmp, hub, hub_db, business_id, tokens, tills, hub_url):
        self.tmp = tmp
        self.hub = hub
        self.hub_db = hub_db
        self.business_id = business_id
        self.tokens = tokens
        self.tills = tills  # terminal -> till db path
        self.hub_url = hub_url

    def report(self):
        r = run_json(["hub", "report", "--db", self.hub_db, "--business", self.business_id, "--json"])
        for k in ("sales", "receipts"):
            check(k in r, "hub report lacks %r: %r" % (k, r))
        return r

    def hub_sales(self):
        return self.report()["sales"]


def setup_business(tmp, hub_port, terminals=("T01",), till_hub_url=None, products=None,
                   name="Duka Test Shop", hub_env=None, offline_init=False, kra_pin=None):
    """hub init + product import + device add (per terminal) + start the hub (with hub_env,
    extra environment) + till init (per terminal). The hub is left running (business.hub).
    Till DBs are tmp/till-<T>.db. The hub's database is new_hub_db(tmp): SQLite, or
    PostgreSQL with DUKA_E2E_HUB_DB=pg (hub init as the owner, everything else as the hub's
    role). offline_init: `till init --offline`, so no token is bound to a till database yet
    (the first request with the till's id binds it). kra_pin: the business's KRA PIN
    (`hub init --kra-pin`; none by default)."""
    hub_db, init_db = new_hub_db(tmp)
    bid = run_json(["hub", "init", "--db", init_db, "--business", name, "--json"]
                   + (["--kra-pin", kra_pin] if kra_pin else []))["business_id"]
    check(isinstance(bid, str) and bid, "hub init: business_id %r" % bid)
    products = PRODUCTS if products is None else products
    csv = write_csv(os.path.join(tmp, "products.csv"), products)
    imp = run_json(["product", "import", "--db", hub_db, "--business", bid, csv, "--json"])
    check_eq(imp.get("imported"), len(products), "product import: imported")
    tokens = {}
    for t in terminals:
        tok = run_json(["device", "add", "--db", hub_db, "--business", bid, "--terminal", t,
                        "--json"])["token"]
        check(isinstance(tok, str) and tok, "device add: token %r" % tok)
        tokens[t] = tok
    cashier = run_json(["cashier", "add", "--db", hub_db, "--business", bid, "--name",
                        DEFAULT_CASHIER, "--role", DEFAULT_CASHIER_ROLE, "--pin",
                        DEFAULT_CASHIER_PIN, "--json"])
    hub = Hub(hub_db, hub_port, logdir=tmp, env=hub_env).start()
    url = till_hub_url or hub.url
    tills = {}
    for t in terminals:
        db = os.path.join(tmp, "till-%s.db" % t)
        run_ok(["till", "init", "--db", db, "--hub", url, "--terminal", t, "--token", tokens[t]]
               + (["--offline"] if offline_init else []))
        tills[t] = db
    business = Business(tmp, hub, hub_db, bid, tokens, tills, url)
    business.cashier_id = cashier["cashier_id"]
    return business


# --------------------------------------------------------------------------------------------
# raw pushes: sale.create commands built here, as a till would (for tests of the hub alone)
# --------------------------------------------------------------------------------------------
TAX_RATES = {"A": 0, "B": 16, "C": 0, "D": 0, "E": 8}  # eTIMS bands, money.h


def sale_line(sku, name, qty_milli, price_cents, band):
    """A sale line with its total and VAT computed as money.h does (round half up)."""
    total = (price_cents * qty_milli + 500) // 1000
    rate = TAX_RATES[band]
    tax = (total * rate + (100 + rate) // 2) // (100 + rate) if rate and total > 0 else 0
    return {"sku": sku, "name": name, "qty_milli": qty_milli, "unit_price_cents": price_cents,
            "tax_band": band, "line_total_cents": total, "tax_cents": tax}


def sale_command(terminal, seq, lines, day="20261121", created_ms=None, payments=None,
                 command_id=None):
    """A valid sale.create command of `terminal` with receipt {terminal}-{day}-{seq:05}; paid
    in cash unless `payments` (a list of payment objects) is given."""
    total = sum(l["line_total_cents"] for l in lines)
    receipt = "%s-%s-%05d" % (terminal, day, seq)
    payload = {"receipt_no": receipt, "terminal": terminal,
               "created_ms": int(time.time() * 1000) if created_ms is None else created_ms,
               "total_cents": total, "tax_cents": sum(l["tax_cents"] for l in lines),
               "lines": lines,
               "payments": payments if payments is not None else
               [{"method": "cash", "amount_cents": total, "reference": "", "status": "captured"}]}
    return {"id": command_id or str(uuid.uuid4()), "type": "sale.create", "entity_id": receipt,
            "payload": payload}


def push(port, token, body, timeout=60):
    """POST /v1/push with body (a dict or list of commands is encoded; bytes/str sent as is);
    returns (status, parsed reply or None)."""
    if isinstance(body, list):
        body = {"commands": body}
    if isinstance(body, dict):
        body = json.dumps(body)
    return http_json("POST", port, "/v1/push", body=body, timeout=timeout,
                     headers={"Authorization": "Bearer " + token,
                              "Content-Type": "application/json"})


# --------------------------------------------------------------------------------------------
# one batch on several connections at the same instant (duplicates racing their original)
# --------------------------------------------------------------------------------------------
BATCH_ITEMS = [("SUGAR1KG", "Sugar 1kg", 16500, "B"), ("MILK500", "Milk 500ml", 6500, "C"),
               ("RICE", "Pishori rice per kg", 18000, "E"),
               ("UNGA2KG", "Maize flour 2kg", 21050, "A")]


def batch_command(seq, created_ms, terminal="T01"):
    """A valid sale of `terminal` with 1 to 3 lines, receipt number seq (lines vary with seq)."""
    lines = [sale_line(*BATCH_ITEMS[(seq + k) % len(BATCH_ITEMS)][:2], 500 * (1 + (seq + k) % 4),
                       *BATCH_ITEMS[(seq + k) % len(BATCH_ITEMS)][2:]) for k in range(1 + seq % 3)]
    return sale_command(terminal, seq, lines, created_ms=created_ms)


def push_together(targets, token):
    """POSTs each (port, body) of targets to /v1/push on its own connection, all released by
    one barrier once connected. Returns [(status, parsed reply, seconds)] in the order of
    targets; a sender that failed has status None and the error as its reply."""
    barrier = threading.Barrier(len(targets))
    out = [None] * len(targets)

    def send(i):
        port, body = targets[i]
        conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.connect()
            barrier.wait(timeout=30)
            t0 = time.monotonic()
            conn.request("POST", "/v1/push", body=body,
                         headers={"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            try:
                reply = json.loads(data)
            except ValueError:
                reply = data[:300]
            out[i] = (r.status, reply, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - reported as this sender's outcome
            out[i] = (None, repr(e), 0.0)
        finally:
            conn.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return out


def tally_push_together(round_label, senders, windows, replies, expected, answers):
    """Checks the replies of one push_together round: sender k (named senders[k]) answered
    200 with a result per command of windows[k], in request order; every command is `applied`
    in exactly one answer and `duplicate` (first_status `applied`) in the others, always with
    its receipt number (expected: command id -> (receipt_no, total_cents)). Adds the answers
    to answers["applied"] and answers["duplicate"]."""
    outcomes = {}  # command id -> [(status, first_status, receipt_no)]
    for k, (status, reply, _) in enumerate(replies):
        where = "%s, %s" % (round_label, senders[k])
        check_eq(status, 200, "%s: HTTP status (reply %r)"
                 % (where, reply if status != 200 else ""))
        results = reply.get("results")
        check(isinstance(results, list) and len(results) == len(windows[k]),
              "%s: %s results for %d commands"
              % (where, len(results) if isinstance(results, list) else results, len(windows[k])))
        for c, r in zip(windows[k], results):
            check_eq(r.get("id"), c["id"], "%s: results in request order" % where)
            outcomes.setdefault(c["id"], []).append(
                (r.get("status"), r.get("first_status"), r.get("receipt_no")))
    for cid, got in outcomes.items():
        statuses = sorted(s for s, _, _ in got)
        if statuses.count("applied") != 1 or any(s not in ("applied", "duplicate")
                                                  for s in statuses):
            raise AssertionError("%s: command %s answered %r (want one applied, the rest "
                                 "duplicate)" % (round_label, cid, got))
        for s, first, receipt in got:
            check_eq(receipt, expected[cid][0], "%s: receipt_no of %s" % (round_label, cid))
            if s == "duplicate":
                check_eq(first, "applied", "%s: first_status of a duplicate" % round_label)
            answers[s] += 1


# --------------------------------------------------------------------------------------------
# till-side helpers
# --------------------------------------------------------------------------------------------
def sell(db, *items, pay=None, cashier=None):
    args = ["sell", "--db", db] + list(items)
    if pay:
        args += ["--pay", pay]
    if cashier:
        args += ["--cashier", cashier]
    args.append("--json")
    r = run_json(args)
    rn = r.get("receipt_no")
    check(isinstance(rn, str) and RECEIPT_RE.match(rn), "sell: bad receipt_no %r in %r" % (rn, r))
    check(isinstance(r.get("total"), int) and r["total"] > 0, "sell: total must be integer cents > 0: %r" % r)
    check_eq(r.get("sync"), "pending", "sell: sync")
    return r


def sell_many(db, n, label=""):
    """n sales, each a mix of catalog items; returns the list of sell JSON results."""
    out = []
    t0 = time.monotonic()
    for i in range(n):
        a = SKUS[i % len(SKUS)]
        b = SKUS[(i * 7 + 3) % len(SKUS)]
        out.append(sell(db, a, "%s*%d" % (b, 1 + i % 3)))
    dt = time.monotonic() - t0
    log("  %s%d sales in %.1fs (%.1f ms/sale)" % (label, n, dt, 1000 * dt / max(n, 1)))
    return out


def status(db):
    return run_json(["status", "--db", db, "--json"])


def queue(db, status_filter=None):
    """Every outbox item (of that status): one page big enough for any test."""
    args = ["queue", "--db", db, "--limit", "100000"]
    if status_filter:
        args += ["--status", status_filter]
    r = run_json(args + ["--json"])
    check(isinstance(r.get("items"), list), "queue: items must be a list: %r" % r)
    return r["items"]


def history(db, limit=None):
    """`duka history --json` attempts, newest first."""
    args = ["history", "--db", db]
    if limit:
        args += ["--limit", limit]
    r = run_json(args + ["--json"])
    check(isinstance(r.get("attempts"), list), "history: attempts must be a list: %r" % r)
    return r["attempts"]


HISTORY_KEYS = ("started", "direction", "items", "ok", "duplicates", "failed", "conflicts",
                "http_status", "duration_ms", "error")


def check_history(rows, what="duka history"):
    """Shape of sync attempts (newest first): every key present, direction push|pull, and for
    each push the outcomes of THAT attempt fit in the items it sent."""
    for a in rows:
        for k in HISTORY_KEYS:
            check(k in a, "%s: attempt lacks %r: %r" % (what, k, a))
        check(a["direction"] in ("push", "pull"), "%s: direction %r" % (what, a["direction"]))
        if a["direction"] == "push":
            outcomes = a["ok"] + a["duplicates"] + a["failed"] + a["conflicts"]
            check(outcomes <= a["items"],
                  "%s: a push attempt reports %d outcomes (ok %d + duplicates %d + failed %d + "
                  "conflicts %d) for %d items sent: %r" % (what, outcomes, a["ok"], a["duplicates"],
                                                          a["failed"], a["conflicts"], a["items"], a))
    starts = [a["started"] for a in rows]
    check(starts == sorted(starts, reverse=True), "%s is not newest first: %r" % (what, starts))
    return rows


def alert_codes(st):
    """The alert codes of a status object (`duka status --json` or GET /api/status)."""
    alerts = st.get("alerts")
    check(isinstance(alerts, list), "status alerts must be a list: %r" % (st,))
    for a in alerts:
        check(isinstance(a, dict) and isinstance(a.get("code"), str)
              and isinstance(a.get("message"), str) and a["message"],
              "status alert must be {\"code\", \"message\"}: %r" % (a,))
    return [a["code"] for a in alerts]


def parse_time(s):
    """An ISO-8601 UTC time as printed by duka (2026-11-22T00:00:54.787Z) -> epoch seconds."""
    import calendar
    check(isinstance(s, str), "not a time: %r" % (s,))
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$", s)
    check(m, "not an ISO-8601 UTC time: %r" % (s,))
    y, mo, d, h, mi, se, frac = m.groups()
    t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(se), 0, 0, 0))
    return t + (float("0." + frac) if frac else 0.0)


def catalog(db):
    r = run_json(["catalog", "--db", db, "--json"])
    check(isinstance(r.get("products"), list), "catalog: products must be a list: %r" % r)
    return r["products"]


def sync(db, *extra):
    """One `duka sync --json`; returns (rc, parsed JSON or None, stderr)."""
    rc, out, err = run(["sync", "--db", db] + list(extra) + ["--json"])
    try:
        j = json.loads(out) if out.strip() else None
    except ValueError:
        j = None
    return rc, j, err


def sync_until_ok(db, *extra, seconds=90):
    """`duka sync` again and again (polling, not sleeping blindly) until it exits 0."""
    end = deadline(seconds)
    attempts = 0
    while True:
        attempts += 1
        rc, j, err = sync(db, *extra)
        if rc == 0:
            return attempts, j
        if rc < 0 or rc >= 2:
            raise AssertionError("duka sync crashed or was misused (exit %s) on attempt %d; "
                                 "stderr: %s" % (rc, attempts, err.strip()[:3000]))
        if time.monotonic() > end:
            raise AssertionError("duka sync never exited 0 within %ss (%d attempts); last exit %s, "
                                 "stderr: %s" % (seconds, attempts, rc, err.strip()))
        time.sleep(0.2)


def assert_hub_has_exactly(biz, printed, what=""):
    """Zero loss + no duplicates: hub sales == receipts == unique receipts == printed ones."""
    printed = list(printed)
    check_eq(len(set(printed)), len(printed), "%sreceipt numbers printed by duka sell are unique" % what)
    r = biz.report()
    receipts = r["receipts"]
    dups = sorted({x for x in receipts if receipts.count(x) > 1}) if len(set(receipts)) != len(receipts) else []
    missing = sorted(set(printed) - set(receipts))
    extra = sorted(set(receipts) - set(printed))
    problems = []
    if r["sales"] != len(printed):
        problems.append("hub sales %d != %d sales made" % (r["sales"], len(printed)))
    if len(receipts) != r["sales"]:
        problems.append("hub lists %d receipts for %d sales" % (len(receipts), r["sales"]))
    if dups:
        problems.append("duplicate receipts at hub: %s" % dups[:5])
    if missing:
        problems.append("%d printed receipts missing at hub, e.g. %s" % (len(missing), missing[:5]))
    if extra:
        problems.append("%d hub receipts never printed, e.g. %s" % (len(extra), extra[:5]))
    if problems:
        raise AssertionError(what + "; ".join(problems))
    return r


def assert_queue_drained(db):
    st = status(db)
    check_eq(st.get("pending"), 0, "status pending")
    check_eq(st.get("failed"), 0, "status failed")
    for s in ("pending", "processing", "failed"):
        items = queue(db, s)
        check(items == [], "queue --status %s not empty: %d items, first %r"
              % (s, len(items), items[:1]))
    return st


# --------------------------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------------------------
_CURRENT = None


class Context:
    """What a test function receives: its temp dir and bookkeeping of what it started."""

    def __init__(self, name, tmp):
        self.name = name
        self.tmp = tmp
        self.procs = []
        self.servers = []
        self.cleanups = []

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def on_cleanup(self, fn):
        self.cleanups.append(fn)

    def cleanup(self):
        """Stops servers still running gracefully (SIGTERM, so sanitizer builds report leaks),
        kills everything else, and returns problems found: sanitizer reports in any *.log
        under the temp dir, servers that ignored SIGTERM."""
        problems = []
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001
                traceback.print_exc()
        for srv in self.servers:
            if srv.running():
                rc = srv.stop()
                if rc is None:
                    problems.append("%s did not exit within 15 s of SIGTERM" % fmt_cmd(srv.args))
        for p in self.procs:
            kill_proc(p)
            kill_group_leftovers(p)
        for root, _, files in os.walk(self.tmp):
            for f in files:
                if not f.endswith(".log"):
                    continue
                try:
                    with open(os.path.join(root, f), "r", errors="replace") as fh:
                        text = fh.read()
                except OSError:
                    continue
                m = SANITIZER_RE.search(text)
                if m:
                    problems.append("sanitizer report in %s: %s" % (
                        os.path.join(root, f), text[max(0, m.start() - 200):m.start() + 1500]))
        return problems


class Suite:
    def __init__(self, name, needs_duka=True):
        self.name = name
        self.needs_duka = needs_duka
        self.tests = []

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def main(self):
        global _CURRENT
        only = sys.argv[1:]
        passed = failed = 0
        if pg_mode():
            log("(the hub on PostgreSQL: DUKA_E2E_HUB_DB=pg)")
        started = time.monotonic()
        for fn in self.tests:
            if only and fn.__name__ not in only:
                continue
            tmp = tempfile.mkdtemp(prefix="duka-e2e-%s-" % fn.__name__)
            ctx = Context(fn.__name__, tmp)
            _CURRENT = ctx
            t0 = time.monotonic()
            log("=== %s" % fn.__name__)
            ok = False
            try:
                if self.needs_duka and not os.access(duka_bin(), os.X_OK):
                    raise AssertionError("duka binary not found at %s (set DUKA_BIN)" % duka_bin())
                fn(ctx)
                ok = True
            except AssertionError as e:
                log("FAIL %s: %s" % (fn.__name__, e))
            except Exception:  # noqa: BLE001
                log("FAIL %s: unexpected error\n%s" % (fn.__name__, traceback.format_exc()))
            finally:
                problems = ctx.cleanup()
                _CURRENT = None
                if problems:
                    if ok:
                        log("FAIL %s: after the test:" % fn.__name__)
                    for pr in problems:
                        log("  " + pr)
                    ok = False
            dt = time.monotonic() - t0
            if ok:
                passed += 1
                log("ok   %s (%.1fs)" % (fn.__name__, dt))
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                failed += 1
                log("     (%.1fs; files kept in %s)" % (dt, tmp))
        log("%s: %.1fs" % (self.name, time.monotonic() - started))
        print("%d passed, %d failed" % (passed, failed), flush=True)
        sys.exit(0 if failed == 0 and passed > 0 else 1)


# --------------------------------------------------------------------------------------------
# killing a process at a chosen point of a push (through faultproxy's hooks)
# --------------------------------------------------------------------------------------------
class KillSwitch:
    """Kills a process at a precise point of the till->hub traffic, instead of racing a poll:
    arm(when, nth, delay_s, kill) calls kill() `delay_s` after the nth push (counted from the
    arming) was sent in full to the hub (when="sent": the hub is working on it) or after its
    reply was relayed to the till (when="replied": the till is working on it)."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.triggered = threading.Event()
        self.fired = threading.Event()

    def arm(self, when, nth, delay_s, kill):
        assert when in ("sent", "replied")
        self.disarm()
        self.triggered = triggered = threading.Event()
        self.fired = fired = threading.Event()
        base = self.proxy.matched
        lock = threading.Lock()

        def hook(method, path, n):
            if n - base != nth:
                return
            with lock:
                if triggered.is_set():
                    return
                triggered.set()
            if delay_s:
                time.sleep(delay_s)
            try:
                kill()
            finally:
                fired.set()

        if when == "sent":
            self.proxy.on_sent = hook
        else:
            self.proxy.on_replied = hook

    def disarm(self):
        self.proxy.on_sent = None
        self.proxy.on_replied = None

    def wait(self, proc, seconds=120):
        """Wait until the kill happened (True) or `proc` exited first (False)."""
        end = deadline(seconds)
        while time.monotonic() < end:
            if self.triggered.is_set():
                check(self.fired.wait(30), "the kill hook did not finish")
                return True
            if proc is not None and proc.poll() is not None:
                # give a hook that is just starting a moment to be seen
                return self.triggered.wait(0.5) and self.fired.wait(30)
            time.sleep(0.01)
        raise AssertionError("timed out after %ss waiting for the kill point" % seconds)
