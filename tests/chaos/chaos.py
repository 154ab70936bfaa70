#!/usr/bin/env python3
"""Real-process chaos harness for duka: several tills of one business sell continuously while
a seeded scheduler SIGKILLs the hub, the tills' servers, `duka sell` and `duka sync` processes
at random instants, and a seeded fault proxy between each till and the hub refuses, resets,
drops replies, cuts replies at byte N, delays, blackholes and answers 502/503 itself. The hub
forwards each sale's invoice to `duka sim etims`, which is given outages, failures, latency
and held replies, and SIGKILLed; the hub is killed in the middle of its sends. Then the
network heals, every till must drain within a bound, every invoice must be accepted and
signed back, and the checker (`duka-check`, built from tests/checker/) judges the databases
and the simulator's state: no sale lost, none counted twice, none unexpected, every sale
invoiced exactly once with invcNo 1..N and its till holding the simulator's signature.

    python3 tests/chaos/chaos.py --duka build/duka --events 1000          # the short variant
    python3 tests/chaos/chaos.py --duka build/duka --events 20000 --tills 5 --seed 42
    (tests/chaos/run.sh short|long BUILD_DIR wraps both; see tests/chaos/README.md)

What runs (all on 127.0.0.1, free ports, in --dir or a temp dir kept on failure):
  hub       `duka hub init`, `duka product import`, `duka device add` per terminal, then
            `duka hub --db hub.db --listen 127.0.0.1:PORT`, restarted on the same port after
            every kill; with ETIMS_BASE_URL (through the eTIMS proxy) and ETIMS_TIMEOUT=1s.
  eTIMS     (unless --no-etims) `duka sim etims --listen … --state DIR/etims-sim.db`,
            restarted on its port and state after every kill; the business's KRA PIN set with
            `duka business set --kra-pin`; a pass-mode FaultProxy from the hub to it, whose
            hooks time kill_hub_send / kill_hub_record.
  proxies   one FaultProxy (tests/e2e/faultproxy.py, chaos mode, in this process) per till,
            each with its own seeded generator; the till's hub URL is its proxy.
  tills     `duka till init` through its proxy, then `duka till --db Tnn.db --listen …
            --sync-interval 1` (its worker syncs through the proxy), restarted after every kill.
            Tills and CLI commands run with fast retry settings (FAST_SETTINGS:
            OFFLINE_QUEUE_BACKOFF_BASE 100ms, OFFLINE_QUEUE_BACKOFF_MAX 1s,
            CONNECTIVITY_CHECK_INTERVAL 1s, CONNECTIVITY_OFFLINE_RECHECK_MAX 250ms) so that a
            minute holds many syncs.
  sellers   --sellers `duka sell --db Tnn.db SKU*QTY… [--pay TENDER]… (M-Pesa, split tenders with change) --json` processes at
            a time per till, one after another; every one that exits 0 is acknowledged: its
            receipt_no and total (cents) are appended to DIR/acked.txt ("RECEIPT_NO TOTAL").
            With --api-sellers 1 (default) also one client per till selling through the serving
            till's POST /api/sales (a 201 is acknowledged the same way), so a till kill also
            lands in the middle of the server's own sale commits and wakes its worker.
            Refunds: a seller keeps REFUND_SHARE of its acknowledged sales and, holding
            REFUND_POOL, gives one back (`duka refund --db Tnn.db RECEIPT 1 --reason 0N
            --json`, acknowledged the same way): the checker's refund_exceeds, its stock and
            its credit notes (uninvoiced counts a refund with none) judge them.
  syncers   --syncers `duka sync --db Tnn.db` loops per till (short pauses). Most of the
            traffic through the proxies is theirs: a till's worker that meets faults goes
            offline and re-probes (every 250 ms here), as designed, so it sends less.
  scheduler a seeded loop: a gap, then one action, drawn by weight (see ACTIONS):
              kill_hub        SIGKILL the hub now; restart it after a drawn 0-0.3 s
              kill_hub_apply  SIGKILL the hub 0-3 ms after a proxy forwarded a /v1/push to it
                              (the hub is applying the batch), through a proxy hook
              kill_till       SIGKILL a till's `duka till` now; restart it after 0-0.3 s
              kill_till_push  the till side of a push SIGKILLed 0-5 ms after the proxy forwarded
                              its /v1/push (the hub commits, the till never hears): the `duka till`
                              server and every `duka sync` of that till (one of them is pushing)
              kill_till_reply the same, 0-2 ms after a push's reply reached the till (it is
                              recording the answers)
              kill_till_pull  the same, just after a /v1/pull reply reached the till (it is
                              writing the catalog page)
              kill_sell       a `duka sell` started and SIGKILLed at a drawn fraction of 1.3 x
                              the median time a sell takes (start to exit; the square root of
                              a uniform draw, so more land late, near the commit), mid-commit:
                              its sale is indeterminate (not acknowledged; if it committed it must
                              still reach the hub). Counted only when it died of the kill (not
                              when it had already finished: then it is simply acknowledged).
              kill_sync       a `duka sync` started and SIGKILLed 0-400 ms later (counted the
                              same way)
              kill_hub_send   SIGKILL the hub 0-3 ms after a saveTrnsSalesOsdc reached the
                              simulator (kept there, not recorded at the hub)
              kill_hub_record SIGKILL the hub 0-1 ms after the simulator's answer reached it
              kill_sim        SIGKILL the simulator now; restart it after 0-0.3 s
              etims_outage, etims_fail_rate, etims_latency, etims_timeout_accept
                              one simulator knob (POST /_sim/faults) on for 0.5-3 s, then off
                              (ETIMS_KNOBS: 503s; 20-80 % 999s; 50-500 ms; 5-30 % of saves
                              kept with their reply held)
              nothing         a pause
            Armed kills (the hook ones) expire after 5 s unseen and are then not counted.
  events    every kill that happened, by type, plus every proxy fault applied (every fault
            type but pass); the chaos phase ends when the total reaches --events.
  heal      proxies to pass, sellers and syncers stopped, everything restarted, then `duka sync`
            on each till until `duka status --json` shows pending 0, processing 0, failed 0 for
            all: the drain time, which must stay under --drain-seconds.
  etims     after the tills drained: the simulator's faults off, the hub's eTIMS outbox polled
            (read-only) until every item is done, within --etims-drain-seconds of the heal;
            then `duka sync` per till until `duka status` shows etims_pending 0.
  check     SIGTERM every server (each must exit 0), then `duka-check --hub hub.db --till …
            --acked acked.txt --require-drained --expect-no-conflicts --etims-state
            etims-sim.db --require-invoiced --json`. With
            --negative-control a made-up sale is acknowledged first, and the run passes only
            if the checker reports it lost: proof that this pipeline can see a loss; with
            eTIMS an invoice is also removed from a copy of the simulator's state, which the
            checker must count uninvoiced.

Exit 0 only when the checker says ok and the harness saw nothing wrong itself: a server that
died by itself, a `duka sell` that failed, a till that did not drain, a server that ignored
SIGTERM, or fewer events than asked for within --max-seconds. One summary is printed at the
end (also DIR/summary.json), with the command that reruns the same seed.

Seeds: one --seed (random by default, always printed) seeds everything: the scheduler's
sequence of gaps, actions, targets and delays; each proxy's sequence of faults; each
seller's sequence of carts. The same seed gives the same sequences of decisions, not the same
run: real processes take their own time, so which request meets which fault, how far a kill
gets, and how many events of each kind fit in the run vary between two runs of one seed.
A failing seed is still the first thing to rerun: the same mix of decisions tends to find the
same weakness.

Python 3 standard library only; every process started is killed on exit, on failure and on
Ctrl-C (SIGINT/SIGTERM).
"""

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import faultproxy  # noqa: E402
from faultproxy import CHAOS_FAULTS, FaultProxy  # noqa: E402
from harness import PRODUCTS, child_env, free_port, http, write_csv  # noqa: E402

CHAOS_PIN = "1357"  # the API sellers' cashier

# Settings given to every duka process (tills, CLI): retries fast enough that a minute of
# chaos holds many syncs. The defaults (1 s base, 300 s cap, 30 s probes) are for shops.
FAST_SETTINGS = {
    "OFFLINE_QUEUE_BACKOFF_BASE": "100ms",
    "OFFLINE_QUEUE_BACKOFF_MAX": "1s",
    "CONNECTIVITY_CHECK_INTERVAL": "1s",
    "CONNECTIVITY_OFFLINE_RECHECK_MAX": "250ms",
}

# The scheduler's actions and their weights. The eTIMS ones (ETIMS_ACTIONS) weigh 0 with
# --no-etims.
ACTIONS = [
    ("kill_sell", 30),
    ("kill_sync", 12),
    ("kill_hub", 5),
    ("kill_hub_apply", 6),
    ("kill_till", 7),
    ("kill_till_push", 5),
    ("kill_till_reply", 4),
    ("kill_till_pull", 3),
    ("kill_hub_send", 3),
    ("kill_hub_record", 3),
    ("kill_sim", 2),
    ("etims_outage", 1.5),
    ("etims_fail_rate", 1.5),
    ("etims_latency", 1.5),
    ("etims_timeout_accept", 1.5),
    ("nothing", 15),
]
ETIMS_ACTIONS = ("kill_hub_send", "kill_hub_record", "kill_sim", "etims_outage",
                 "etims_fail_rate", "etims_latency", "etims_timeout_accept")
KILL_TYPES = [a for a, _ in ACTIONS if a != "nothing"]
# A simulator fault episode: the knob set for a drawn while, then back to its off value
# (one episode of a knob at a time).
ETIMS_EPISODE_S = (0.5, 3.0)
ETIMS_KNOBS = {  # action -> (knob, off value, value from a uniform draw u)
    "etims_outage": ("outage", False, lambda u: True),
    "etims_fail_rate": ("fail_rate", 0.0, lambda u: round(0.2 + 0.6 * u, 2)),
    "etims_latency": ("latency_ms", 0, lambda u: int(50 + 450 * u)),
    "etims_timeout_accept": ("timeout_after_accept", 0.0, lambda u: round(0.05 + 0.25 * u, 2)),
}
ETIMS_FAULTS_OFF = {"outage": False, "fail_rate": 0.0, "latency_ms": 0,
                    "timeout_after_accept": 0.0}
# The hub's eTIMS settings here: a held reply costs the hub ETIMS_TIMEOUT (then it asks
# selectInvoiceDetails); its lease on an item is 3 x that + 30 s (etims_sender.c).
HUB_ETIMS_SETTINGS = {"ETIMS_TIMEOUT": "1s"}
KRA_PIN = "P051234567X"
GAP_S = (0.03, 0.20)          # between two scheduler actions
DOWN_S = (0.0, 0.3)           # a killed server stays down this long before its restart
ARM_EXPIRY_S = 5.0
SELL_KILL_MS = (0, 40)
SYNC_KILL_MS = (0, 400)
SYNCER_PAUSE_S = (0.0, 0.1)
API_PAUSE_S = (0.0, 0.1)
# A seller keeps this share of its acknowledged sales for a refund, and gives one back (all of
# its first line, `duka refund`) once it holds REFUND_POOL of them: a few sales later, so the
# refund and its sale travel in different pushes, through every fault the sales meet.
REFUND_SHARE = 0.08
REFUND_POOL = 3
# --negative-control acknowledges this sale, which no till ever made: the checker must call it lost.
NEGATIVE_CONTROL_RECEIPT = "T01-20000101-00001"


def log(*a):
    print(*a, flush=True)


def now():
    return time.monotonic()


# --------------------------------------------------------------------------------------------
# processes: every one we start is registered and killed at exit
# --------------------------------------------------------------------------------------------
class Procs:
    def __init__(self, duka, env):
        self.duka = duka
        self.env = env
        self.lock = threading.Lock()
        self.live = set()

    def spawn(self, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=None):
        cmd = [self.duka] + [str(a) for a in args]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                             env=env or self.env, start_new_session=True)
        p.cmdline = cmd
        with self.lock:
            self.live.add(p)
        return p

    def done(self, p):
        with self.lock:
            self.live.discard(p)

    def kill(self, p):
        """SIGKILL p on purpose (marked on the Popen, not by pid: pids are reused); True when
        it was still running."""
        with self.lock:
            if p.poll() is not None:
                return False
            p.chaos_killed = True
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                return False
        return True

    @staticmethod
    def was_killed(p):
        return getattr(p, "chaos_killed", False)

    def kill_all(self):
        with self.lock:
            procs = list(self.live)
            for p in procs:
                p.chaos_killed = True
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    try:
                        p.kill()
                    except ProcessLookupError:
                        pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def run(self, args, timeout=60):
        """Runs `duka ARGS` to completion: (returncode, stdout, stderr)."""
        p = self.spawn(args)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(p)
            out, err = p.communicate()
            raise RuntimeError("timed out after %ss: %s" % (timeout, " ".join(p.cmdline)))
        finally:
            self.done(p)
        return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def run_json(self, args, timeout=60):
        rc, out, err = self.run(list(args) + ["--json"], timeout=timeout)
        if rc != 0:
            raise RuntimeError("duka %s -> exit %s: %s"
                               % (" ".join(map(str, args)), rc, err.strip()))
        return json.loads(out)


class Server:
    """A `duka hub` or `duka till` server: started, SIGKILLed and restarted on one port, one
    log file appended across restarts. `cycle()` is kill + down time + restart, one at a time."""

    def __init__(self, name, procs, args, port, health, logpath, env=None):
        self.name = name
        self.procs = procs
        self.env = env  # None: the procs' environment
        self.args = args
        self.port = port
        self.health = health
        self.logpath = logpath
        self.proc = None
        self.starts = 0
        self.failed_starts = 0  # starts that did not come up (retried)
        self.lock = threading.Lock()
        self.busy = False  # a kill/restart cycle is under way

    def start(self, timeout=30):
        for attempt in range(1, 6):
            self.starts += 1
            with open(self.logpath, "ab") as f:
                f.write(b"=== chaos: start #%d\n" % self.starts)
                f.flush()
                self.proc = self.procs.spawn(self.args, stdout=f, stderr=subprocess.STDOUT,
                                             env=self.env)
            end = now() + timeout
            while now() < end:
                if self.proc.poll() is not None:
                    break
                try:
                    status, _ = http("GET", self.port, self.health, timeout=2)
                    if status == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.02)
            self.failed_starts += 1
            if self.proc.poll() is None:
                self.procs.kill(self.proc)
                self.proc.wait()
            self.procs.done(self.proc)
            time.sleep(0.2 * attempt)
        raise RuntimeError("%s did not start (5 attempts); see %s" % (self.name, self.logpath))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def try_begin(self):
        with self.lock:
            if self.busy or not self.running():
                return False
            self.busy = True
            return True

    def end(self):
        with self.lock:
            self.busy = False

    def kill(self):
        """SIGKILL (the cycle's owner calls it); True when it was running."""
        ok = self.procs.kill(self.proc)
        self.proc.wait()
        self.procs.done(self.proc)
        return ok

    def terminate(self, timeout=20):
        """SIGTERM, wait; returns the exit code, or None when it had to be SIGKILLed."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.procs.kill(self.proc)
            self.proc.wait()
            rc = None
        self.procs.done(self.proc)
        return rc

    def log_tail(self, n=1500):
        try:
            with open(self.logpath, "r", errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
class Chaos:
    def __init__(self, a):
        self.a = a
        self.seed = a.seed
        self.dir = a.dir
        self.env = child_env(FAST_SETTINGS)
        self.procs = Procs(a.duka, self.env)
        self.lock = threading.Lock()
        self.events = {k: 0 for k in KILL_TYPES}
        self.skipped = {k: 0 for k in KILL_TYPES}
        self.problems = []
        self.acked = 0
        self.indeterminate = 0
        self.sell_errors = 0
        self.sync_runs = 0
        self.acked_api = 0
        self.api_indeterminate = 0
        self.refunds = 0         # acknowledged `duka refund`s (counted in acked too)
        self.sell_ms = []        # how long acknowledged sells took, start to exit
        self.stop_traffic = threading.Event()
        self.stop_sched = threading.Event()
        self.arms = []
        self.cycles = 0          # kill/restart cycles under way
        self.cycle_cv = threading.Condition(self.lock)
        self.threads = []
        self.hub = None
        self.tills = []          # Server per till
        self.proxies = []
        self.till_dbs = []
        self.terminals = []
        self.cli_syncs = []      # per till: set of running `duka sync` Popen
        self.ack_file = None
        self.drain_s = None
        self.check_report = None
        self.check_rc = None
        self.chaos_s = 0.0
        self.negative_caught = False
        self.backlog = None
        self.closing = False
        self.sim = None           # Server: `duka sim etims` (None with --no-etims)
        self.etims_proxy = None   # FaultProxy (pass mode) hub -> simulator, for its hooks
        self.episodes = {}        # knob -> True while an episode of it runs
        self.etims_drain_s = None
        self.etims_retried = 0  # failed invoices put back by hand at the heal
        self.signed_s = None
        self.etims_stats = {}

    # -- bookkeeping -----------------------------------------------------------------------
    def problem(self, msg):
        with self.lock:
            if self.closing:
                return  # the teardown of an interrupted or failed run: not a finding
            self.problems.append(msg)
        log("PROBLEM: " + msg)

    def count(self, kind):
        with self.lock:
            self.events[kind] += 1

    def skip(self, kind):
        with self.lock:
            self.skipped[kind] += 1

    def begin_cycle(self, srv, kind):
        """Claims srv for a kill/restart cycle: False (and counted as skipped) when the chaos
        phase is over or the server is already down or restarting."""
        with self.lock:
            if not self.stop_sched.is_set() and srv.try_begin():
                self.cycles += 1
                return True
            self.skipped[kind] += 1
            return False

    def proxy_counts(self):
        total = {f: 0 for f in CHAOS_FAULTS + ("upstream-error",)}
        for p in self.proxies:
            for k, v in p.counts().items():
                total[k] = total.get(k, 0) + v
        return total

    def total_events(self):
        with self.lock:
            kills = sum(self.events.values())
        return kills + sum(p.chaos_events() for p in self.proxies)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def servers(self):
        return [self.hub] + self.tills + ([self.sim] if self.sim else [])

    # -- setup -----------------------------------------------------------------------------
    def setup(self):
        a = self.a
        hub_db = self.path("hub.db")
        if os.path.exists(hub_db):
            raise RuntimeError("%s already holds a hub.db: give an empty --dir" % self.dir)
        self.hub_db = hub_db
        self.business = self.procs.run_json(["hub", "init", "--db", hub_db, "--business",
                                             "Chaos Duka"])["business_id"]
        csv = write_csv(self.path("products.csv"), PRODUCTS)
        self.procs.run_json(["product", "import", "--db", hub_db, "--business", self.business, csv])
        # The API sellers' cashier: every write of a till's local API needs a session.
        self.cashier_id = self.procs.run_json(
            ["cashier", "add", "--db", hub_db, "--business", self.business, "--name", "Chaos",
             "--role", "cashier", "--pin", CHAOS_PIN, "--json"])["cashier_id"]
        tokens = []
        for i in range(a.tills):
            t = "T%02d" % (i + 1)
            self.terminals.append(t)
            tokens.append(self.procs.run_json(["device", "add", "--db", hub_db, "--business",
                                               self.business, "--terminal", t])["token"])
        hub_port = free_port()
        hub_env = None
        if a.etims:
            # The simulator (its state in the run dir, it survives its kills), the business's
            # KRA PIN, and a pass-mode proxy between hub and simulator whose hooks time the
            # kills of the hub's forwarder mid-send (kill_hub_send, kill_hub_record).
            sim_port = free_port()
            self.sim_db = self.path("etims-sim.db")
            self.sim = Server("sim", self.procs,
                              ["sim", "etims", "--listen", "127.0.0.1:%d" % sim_port,
                               "--state", self.sim_db, "--seed", str(self.seed % 1000000007)],
                              sim_port, "/_sim/health", self.path("sim.log"))
            self.sim.start()
            self.procs.run_json(["business", "set", "--db", hub_db, "--business",
                                 self.business, "--kra-pin", KRA_PIN])
            self.etims_proxy = FaultProxy(("127.0.0.1", sim_port), mode="pass",
                                          match="/etims-api/", keep_log=False).start()
            self.etims_proxy.on_sent = self._hook("etims", "sent")
            self.etims_proxy.on_replied = self._hook("etims", "replied")
            hub_env = child_env(dict(FAST_SETTINGS, ETIMS_BASE_URL="http://127.0.0.1:%d/etims-api"
                                     % self.etims_proxy.port, **HUB_ETIMS_SETTINGS))
        self.hub = Server("hub", self.procs, ["hub", "--db", hub_db, "--listen",
                                              "127.0.0.1:%d" % hub_port],
                          hub_port, "/v1/health", self.path("hub.log"), env=hub_env)
        self.hub.start()
        for i, t in enumerate(self.terminals):
            px = FaultProxy(("127.0.0.1", hub_port), mode="pass", match="/v1/",
                            seed="%d:proxy:%d" % (self.seed, i), weights=a.weights,
                            keep_log=False).start()
            px.on_sent = self._hook(i, "sent")
            px.on_replied = self._hook(i, "replied")
            self.proxies.append(px)
            db = self.path("%s.db" % t)
            self.till_dbs.append(db)
            rc, out, err = self.procs.run(["till", "init", "--db", db, "--hub",
                                           "http://127.0.0.1:%d" % px.port, "--terminal", t,
                                           "--token", tokens[i]])
            if rc != 0:
                raise RuntimeError("till init %s -> exit %s: %s" % (t, rc, err.strip()))
            port = free_port()
            srv = Server("till %s" % t, self.procs,
                         ["till", "--db", db, "--listen", "127.0.0.1:%d" % port,
                          "--sync-interval", "1"],
                         port, "/api/status", self.path("%s.log" % t))
            srv.start()
            self.tills.append(srv)
            self.cli_syncs.append(set())
        self.ack_file = open(self.path("acked.txt"), "a")
        log("chaos: hub on 127.0.0.1:%d, %d tills (%s) behind proxies %s, dir %s"
            % (hub_port, a.tills, " ".join(self.terminals),
               " ".join(str(p.port) for p in self.proxies), self.dir))
        if self.sim:
            log("chaos: eTIMS simulator on 127.0.0.1:%d (state %s), the hub's ETIMS_BASE_URL "
                "through proxy %d, KRA PIN %s" % (self.sim.port, self.sim_db,
                                                  self.etims_proxy.port, KRA_PIN))

    # -- kill/restart cycles ---------------------------------------------------------------
    def _cycle(self, srv, kind, down_s, extra=None):
        """Kills srv (already claimed with begin_cycle), runs extra(), waits down_s, restarts
        it. Counts `kind` when the kill found it running."""
        try:
            if srv.kill():
                self.count(kind)
            if extra:
                extra()
            if down_s > 0 and not self.stop_sched.is_set():
                time.sleep(down_s)
            try:
                srv.start()
            except Exception as e:  # noqa: BLE001
                self.problem("%s did not restart after %s: %s; log: %s"
                             % (srv.name, kind, e, srv.log_tail()))
        finally:
            srv.end()
            with self.lock:
                self.cycles -= 1
                self.cycle_cv.notify_all()

    def _kill_till_side(self, i, kind, down_s):
        """The till's side of a sync: its server and every running `duka sync` of it."""
        srv = self.tills[i]
        if not self.begin_cycle(srv, kind):
            return

        def syncs():
            with self.lock:
                running = list(self.cli_syncs[i])
            for p in running:
                self.procs.kill(p)
        self._cycle(srv, kind, down_s, extra=syncs)

    def _async(self, fn, *args):
        t = threading.Thread(target=self._guard, args=(fn,) + args, daemon=True)
        t.start()
        with self.lock:
            self.threads = [x for x in self.threads if x.is_alive()]
            self.threads.append(t)

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            self.problem("harness error in %s:\n%s" % (fn.__name__, traceback.format_exc()))

    # -- proxy hooks: kills armed on a point of a push or pull -----------------------------
    def _hook(self, i, when):
        def hook(method, path, n):
            fire = None
            t = now()
            with self.lock:
                keep = []
                for arm in self.arms:
                    if fire is None and arm["when"] == when and path.startswith(arm["path"]) \
                            and arm["till"] in (None, i) and t < arm["expires"]:
                        fire = arm
                    elif t < arm["expires"]:
                        keep.append(arm)
                self.arms = keep
            if fire is None:
                return
            if fire["delay"] > 0:
                time.sleep(fire["delay"])
            fire["fn"]()
        return hook

    def _arm(self, kind, when, path, till, delay, fn):
        with self.lock:
            t = now()
            self.arms = [a for a in self.arms if t < a["expires"]]
            if self.stop_sched.is_set() or any(a["till"] == till for a in self.arms):
                self.skipped[kind] += 1  # one armed kill per target at a time
                return
            self.arms.append({"kind": kind, "when": when, "path": path, "till": till,
                              "delay": delay, "expires": t + ARM_EXPIRY_S, "fn": fn})

    # -- actions ---------------------------------------------------------------------------
    def act(self, action, i, u1, u2):
        down = DOWN_S[0] + u2 * (DOWN_S[1] - DOWN_S[0])
        if action == "nothing":
            return
        if action == "kill_hub":
            if self.begin_cycle(self.hub, action):
                self._async(self._cycle, self.hub, action, down)
        elif action == "kill_hub_apply":
            def fire():
                if self.begin_cycle(self.hub, action):
                    self._cycle(self.hub, action, down)
            self._arm(action, "sent", "/v1/push", None, u1 * 0.003, fire)
        elif action == "kill_till":
            srv = self.tills[i]
            if self.begin_cycle(srv, action):
                self._async(self._cycle, srv, action, down)
        elif action in ("kill_till_push", "kill_till_reply", "kill_till_pull"):
            when, path, delay = {"kill_till_push": ("sent", "/v1/push", u1 * 0.005),
                                 "kill_till_reply": ("replied", "/v1/push", u1 * 0.002),
                                 "kill_till_pull": ("replied", "/v1/pull", 0.0)}[action]
            self._arm(action, when, path, i, delay,
                      lambda: self._kill_till_side(i, action, down))
        elif action == "kill_sell":
            ms = (u1 ** 0.5) * self.sell_kill_window_ms()  # more of them late, near the commit
            cart = self.cart(random.Random("%d:victim:%f" % (self.seed, u2)))
            self._async(self._victim_sell, i, cart, ms / 1000.0)
        elif action == "kill_sync":
            ms = SYNC_KILL_MS[0] + u1 * (SYNC_KILL_MS[1] - SYNC_KILL_MS[0])
            self._async(self._victim_sync, i, ms / 1000.0)
        elif action in ("kill_hub_send", "kill_hub_record"):
            # The hub (its forwarder) killed 0-3 ms after a saveTrnsSalesOsdc reached the
            # simulator (it may be accepted; the hub has not recorded it), or 0-1 ms after the
            # simulator's answer reached the hub (it is recording it).
            when, delay = {"kill_hub_send": ("sent", u1 * 0.003),
                           "kill_hub_record": ("replied", u1 * 0.001)}[action]

            def fire():
                if self.begin_cycle(self.hub, action):
                    self._cycle(self.hub, action, down)
            self._arm(action, when, "/etims-api/saveTrnsSalesOsdc", "etims", delay, fire)
        elif action == "kill_sim":
            if self.begin_cycle(self.sim, action):
                self._async(self._cycle, self.sim, action, down)
        elif action in ETIMS_KNOBS:
            knob, off, value = ETIMS_KNOBS[action]
            with self.lock:
                if self.episodes.get(knob) or self.stop_sched.is_set():
                    self.skipped[action] += 1
                    return
                self.episodes[knob] = True
            span = ETIMS_EPISODE_S[0] + u2 * (ETIMS_EPISODE_S[1] - ETIMS_EPISODE_S[0])
            self._async(self._episode, action, knob, value(u1), off, span)

    def sim_faults(self, knobs):
        """POST /_sim/faults; True when the simulator took it (False while it is down)."""
        try:
            status, _ = http("POST", self.sim.port, "/_sim/faults", body=json.dumps(knobs),
                             headers={"Content-Type": "application/json"}, timeout=5)
        except OSError:
            return False
        if status != 200:
            self.problem("POST /_sim/faults %r -> %s" % (knobs, status))
        return status == 200

    def _episode(self, action, knob, value, off, span):
        """One knob of the simulator on for span seconds, then off. (A simulator killed in
        the meantime comes back with every knob off.)"""
        try:
            if self.sim_faults({knob: value}):
                self.count(action)
                self.stop_sched.wait(span)
                self.sim_faults({knob: off})
            else:
                self.skip(action)
        finally:
            with self.lock:
                self.episodes[knob] = False

    def sell_kill_window_ms(self):
        """A killed sell dies at a drawn fraction of this window: 1.3 x the median time of the
        last 200 acknowledged sells (SELL_KILL_MS before there are 20), so that on a fast or
        a loaded machine the kills land before, during and just after the commit."""
        with self.lock:
            recent = sorted(self.sell_ms[-200:])
        if len(recent) < 20:
            return SELL_KILL_MS[1]
        return 1.3 * recent[len(recent) // 2]

    def _victim_sell(self, i, cart, after_s):
        p = self.procs.spawn(["sell", "--db", self.till_dbs[i]] + cart + ["--json"])
        time.sleep(after_s)
        self.procs.kill(p)
        self._finish_sell(i, p, cart)
        if p.returncode == -signal.SIGKILL:
            self.count("kill_sell")  # only when it died of it, not when it had finished

    def _victim_sync(self, i, after_s):
        p = self.procs.spawn(["sync", "--db", self.till_dbs[i], "--json"])
        with self.lock:
            self.cli_syncs[i].add(p)
        try:
            time.sleep(after_s)
            self.procs.kill(p)
            self._finish_sync(p)
            if p.returncode == -signal.SIGKILL:
                self.count("kill_sync")
        finally:
            with self.lock:
                self.cli_syncs[i].discard(p)

    # -- traffic ---------------------------------------------------------------------------
    def cart(self, rng):
        items = []
        for sku in rng.sample([p[0] for p in PRODUCTS], rng.randint(1, 4)):
            if sku == "RICE":
                qty = rng.choice(["0.5", "1.25", "2", "0.75"])
            else:
                qty = str(rng.randint(1, 3))
            items.append(sku if qty == "1" else "%s*%s" % (sku, qty))
        code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(10))
        kind = rng.random()
        if kind < 0.3:
            items += ["--pay", "mpesa:" + code]
        elif kind < 0.45:
            # split tender: part by M-Pesa, the rest in cash handed over (with change: no cart
            # comes to KES 5,000)
            items += ["--pay", "mpesa:%s:10" % code, "--pay", "cash:5000"]
        elif kind < 0.55:
            items += ["--pay", "card:AUTH-%s:5.50" % code, "--pay", "cash"]
        return items

    def _finish_sell(self, i, p, cart):
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.procs.kill(p)
            out, err = p.communicate()
            self.problem("duka %s on %s took over 120 s: %s" % (p.cmdline[1], self.terminals[i],
                                                                 cart))
            self.procs.done(p)
            return
        self.procs.done(p)
        rc = p.returncode
        if rc == 0:
            try:
                j = json.loads(out)
                rn, total = j["receipt_no"], j["total"]
                assert isinstance(rn, str) and isinstance(total, int)
            except Exception:  # noqa: BLE001
                self.problem("duka sell exited 0 with unreadable output %r" % out[:300])
                return
            with self.lock:
                self.ack_file.write("%s %d\n" % (rn, total))
                self.ack_file.flush()
                self.acked += 1
            return rn
        elif rc == -signal.SIGKILL and self.procs.was_killed(p):
            with self.lock:
                self.indeterminate += 1
        else:
            with self.lock:
                self.sell_errors += 1
            self.problem("duka %s on %s (%s) exited %s: %s" % (
                p.cmdline[1], self.terminals[i], " ".join(cart), rc,
                err.decode("utf-8", "replace").strip()[:500]))

    def _finish_sync(self, p):
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.procs.kill(p)
            out, err = p.communicate()
            self.problem("duka sync took over 120 s: %s" % " ".join(p.cmdline))
        self.procs.done(p)
        with self.lock:
            self.sync_runs += 1
        rc = p.returncode
        if rc in (0, 1) or (rc == -signal.SIGKILL and self.procs.was_killed(p)):
            return
        self.problem("duka sync exited %s: %s" % (rc, err.decode("utf-8", "replace").strip()[:500]))

    def _seller(self, i, j):
        rng = random.Random("%d:seller:%d:%d" % (self.seed, i, j))
        pool = []  # acknowledged sales of this seller kept for a refund
        while not self.stop_traffic.is_set():
            cart = self.cart(rng)
            t0 = now()
            p = self.procs.spawn(["sell", "--db", self.till_dbs[i]] + cart + ["--json"])
            rn = self._finish_sell(i, p, cart)
            if p.returncode == 0:
                with self.lock:
                    self.sell_ms.append((now() - t0) * 1000)
            if rn and rng.random() < REFUND_SHARE:
                pool.append(rn)
            if len(pool) >= REFUND_POOL:
                receipt = pool.pop(rng.randrange(len(pool)))
                reason = "0%d" % rng.randint(1, 6)
                args = ["refund", "--db", self.till_dbs[i], receipt, "1", "--reason", reason]
                p = self.procs.spawn(args + ["--json"])
                if self._finish_sell(i, p, args[3:]):
                    with self.lock:
                        self.refunds += 1

    def _api_seller(self, i):
        """Sales through the serving till's POST /api/sales (which also wakes its worker). A
        201 is acknowledged; a request the till died under is indeterminate; a refused
        connection (the till is down) is no sale at all."""
        rng = random.Random("%d:api-seller:%d" % (self.seed, i))
        srv = self.tills[i]
        token = None
        while not self.stop_traffic.is_set():
            if token is None:
                token = self._login(srv)
                if token is None:
                    self.stop_traffic.wait(0.05)
                    continue
            cart = self.cart(rng)
            pause = API_PAUSE_S[0] + rng.random() * (API_PAUSE_S[1] - API_PAUSE_S[0])
            items, pay = [], []
            k = 0
            while k < len(cart):
                if cart[k] == "--pay":
                    pay.append(cart[k + 1])
                    k += 2
                    continue
                sku, _, qty = cart[k].partition("*")
                items.append({"sku": sku, "qty": float(qty) if "." in qty else int(qty or 1)})
                k += 1
            body = json.dumps({"items": items, "pay": pay or "cash"})
            try:
                status, data = http("POST", srv.port, "/api/sales", body=body,
                                    headers={"Content-Type": "application/json",
                                             "Authorization": "Bearer " + token}, timeout=60)
            except ConnectionRefusedError:
                self.stop_traffic.wait(0.05)
                continue
            except OSError:
                with self.lock:
                    self.api_indeterminate += 1
                continue
            if status == 201:
                try:
                    j = json.loads(data)
                    rn, total = j["receipt_no"], j["total"]
                    assert isinstance(rn, str) and isinstance(total, int)
                except Exception:  # noqa: BLE001
                    self.problem("POST /api/sales answered 201 with %r" % data[:300])
                    continue
                with self.lock:
                    self.ack_file.write("%s %d\n" % (rn, total))
                    self.ack_file.flush()
                    self.acked += 1
                    self.acked_api += 1
            else:
                with self.lock:
                    self.sell_errors += 1
                self.problem("POST /api/sales on %s (%s) -> %s %s" % (
                    self.terminals[i], body, status, data[:300]))
            self.stop_traffic.wait(pause)

    def _login(self, srv):
        """A session on the till (kept in its database: it outlives a kill of the till); None
        while the till is down."""
        try:
            status, data = http("POST", srv.port, "/api/login",
                                body=json.dumps({"cashier_id": self.cashier_id, "pin": CHAOS_PIN}),
                                headers={"Content-Type": "application/json"}, timeout=30)
        except OSError:
            return None
        if status != 200:
            self.problem("POST /api/login on %s -> %s %s" % (srv.name, status, data[:300]))
            return None
        return json.loads(data)["token"]

    def _syncer(self, i, j):
        rng = random.Random("%d:syncer:%d:%d" % (self.seed, i, j))
        while not self.stop_traffic.is_set():
            p = self.procs.spawn(["sync", "--db", self.till_dbs[i], "--json"])
            with self.lock:
                self.cli_syncs[i].add(p)
            try:
                self._finish_sync(p)
            finally:
                with self.lock:
                    self.cli_syncs[i].discard(p)
            lo, hi = SYNCER_PAUSE_S
            self.stop_traffic.wait(lo + rng.random() * (hi - lo))

    # -- phases ----------------------------------------------------------------------------
    def chaos(self):
        a = self.a
        traffic = []
        for i in range(a.tills):
            for j in range(a.sellers):
                traffic.append(threading.Thread(target=self._guard, args=(self._seller, i, j),
                                                daemon=True))
            for j in range(a.api_sellers):
                traffic.append(threading.Thread(target=self._guard, args=(self._api_seller, i),
                                                daemon=True))
            for j in range(a.syncers):
                traffic.append(threading.Thread(target=self._guard, args=(self._syncer, i, j),
                                                daemon=True))
        for t in traffic:
            t.start()
        self.traffic = traffic
        for px in self.proxies:
            px.mode = "chaos"
        rng = random.Random("%d:scheduler" % self.seed)
        names = [n for n, _ in a.actions]
        weights = [w for _, w in a.actions]
        t0 = now()
        next_report = t0 + 5
        steps = 0
        while True:
            gap = GAP_S[0] + rng.random() * (GAP_S[1] - GAP_S[0])
            action = rng.choices(names, weights)[0]
            i = rng.randrange(a.tills)
            u1, u2 = rng.random(), rng.random()
            time.sleep(gap)
            self.watch_servers()
            total = self.total_events()
            if total >= a.events:
                break
            if now() - t0 > a.max_seconds:
                self.problem("only %d of %d events within --max-seconds %s: the run is too "
                             "slow for this target" % (total, a.events, a.max_seconds))
                break
            self.act(action, i, u1, u2)
            steps += 1
            if now() >= next_report:
                next_report += 5
                self.progress(t0)
        self.chaos_s = now() - t0
        self.stop_sched.set()
        log("chaos: %d events in %.1f s (%d scheduler steps); healing" % (
            self.total_events(), self.chaos_s, steps))

    def progress(self, t0):
        with self.lock:
            kills = dict(self.events)
            acked, ind = self.acked, self.indeterminate + self.api_indeterminate
        faults = self.proxy_counts()
        log("  %5.1fs events %d | kills %s | proxy %s | acked %d, indeterminate %d" % (
            now() - t0, self.total_events(),
            " ".join("%s=%d" % (k[5:], v) for k, v in kills.items() if v),
            " ".join("%s=%d" % (k, v) for k, v in faults.items() if v and k != "pass"),
            acked, ind))

    def watch_servers(self):
        """A server that exited while nobody was killing it crashed: a bug. Restart it."""
        for srv in self.servers():
            with srv.lock:
                if srv.busy or srv.proc is None or srv.proc.poll() is None:
                    continue
                if self.procs.was_killed(srv.proc):
                    continue
                srv.busy = True
            self.problem("%s exited by itself with %s (a crash); log tail:\n%s"
                         % (srv.name, srv.proc.returncode, srv.log_tail()))
            self.procs.done(srv.proc)
            try:
                srv.start()
            except Exception as e:  # noqa: BLE001
                self.problem("%s did not restart: %s" % (srv.name, e))
            finally:
                srv.end()

    def heal(self):
        a = self.a
        with self.lock:
            self.arms = []
        for px in self.proxies:
            px.mode = "pass"
        t0 = now()  # the drain time runs from here: the network is healed
        self.stop_traffic.set()
        backlog = 0
        for db in self.till_dbs:
            try:
                st = self.procs.run_json(["status", "--db", db])
                backlog += st.get("pending", 0) + st.get("processing", 0)
            except Exception:  # noqa: BLE001
                pass
        self.backlog = backlog
        for t in self.traffic:
            t.join(180)
            if t.is_alive():
                self.problem("a seller/syncer thread did not stop within 180 s")
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(120)
        with self.cycle_cv:
            self.cycle_cv.wait_for(lambda: self.cycles == 0, timeout=120)
        self.watch_servers()
        for srv in self.servers():
            if not srv.running():
                srv.start()
        pending = set(range(a.tills))
        last = {}
        while pending and now() - t0 < a.drain_seconds:
            for i in sorted(pending):
                db = self.till_dbs[i]
                try:
                    rc, out, err = self.procs.run(["sync", "--db", db, "--json"], timeout=90)
                    st = self.procs.run_json(["status", "--db", db])
                except Exception as e:  # noqa: BLE001
                    last[i] = {"error": str(e)}
                    continue
                last[i] = {k: st.get(k) for k in ("pending", "processing", "failed", "conflicts",
                                                  "connectivity", "last_error")}
                last[i]["sync_exit"] = rc
                if st.get("pending") == 0 and st.get("processing") == 0 and st.get("failed") == 0:
                    pending.discard(i)
            if pending:
                time.sleep(0.1)
        if pending:
            for i in sorted(pending):
                detail = last.get(i)
                try:
                    failed = self.procs.run_json(["queue", "--db", self.till_dbs[i], "--status",
                                                  "failed", "--limit", "3"])["items"]
                except Exception as e:  # noqa: BLE001
                    failed = str(e)
                self.problem("till %s did not drain within %ss: %s; failed items: %s" % (
                    self.terminals[i], a.drain_seconds, detail, json.dumps(failed)[:1500]))
        else:
            self.drain_s = now() - t0
            log("heal: every till drained in %.2f s (%d items pending or processing when the "
                "network healed)" % (self.drain_s, self.backlog))
        if self.sim:
            self.heal_etims(t0)

    def hub_query(self, sql):
        """One value from the hub's database, read-only while the hub runs."""
        c = sqlite3.connect("file:%s?mode=ro" % self.hub_db, uri=True, timeout=10)
        try:
            return c.execute(sql).fetchall()
        finally:
            c.close()

    def heal_etims(self, t0):
        """The simulator's faults off; then every hub sale's invoice must be accepted (the
        hub's eTIMS outbox all done) within --etims-drain-seconds of the heal, and every
        till's signatures must come back (`duka sync` until `duka status` shows
        etims_pending 0)."""
        a = self.a
        if not self.sim.running():
            self.sim.start()
        if not self.sim_faults(dict(ETIMS_FAULTS_OFF)):
            self.problem("the simulator did not take faults off at the heal")
        open_sql = ("SELECT count(*) FROM hub_outbox WHERE destination = 'etims'"
                    " AND status <> 'done'")
        left, t_next = None, now()
        while now() - t0 < a.etims_drain_seconds:
            try:
                left = self.hub_query(open_sql)[0][0]
                failed = self.hub_query("SELECT count(*) FROM hub_outbox WHERE destination ="
                                        " 'etims' AND status = 'failed'")[0][0]
            except sqlite3.Error as e:
                left, failed = "unreadable (%s)" % e, 0
            if left == 0:
                break
            if failed:
                # What an operator does: eTIMS answered errors to these five times (a
                # fail_rate episode caught every attempt), so they wait, failed but visible,
                # for a person. Put them back by hand, once each, and count them.
                try:
                    r = self.procs.run_json(["hub", "outbox", "retry", "--db", self.hub_db,
                                             "--business", self.business, "--all"])
                    self.etims_retried += r.get("retried", 0)
                    log("heal: %d failed invoices put back by hand (duka hub outbox retry)"
                        % r.get("retried", 0))
                except Exception as e:  # noqa: BLE001
                    self.problem("duka hub outbox retry failed: %s" % e)
                    break
                if self.etims_retried > 1000:
                    self.problem("more than 1,000 invoices failed for good during the run")
                    break
            if now() >= t_next:
                t_next = now() + 5
                log("heal: %s eTIMS items not done at the hub (%.0f s since the heal)"
                    % (left, now() - t0))
            time.sleep(0.2)
        if left != 0:
            rows = []
            try:
                rows = self.hub_query(
                    "SELECT entity_id, seq_no, status, attempts, unclear, last_error FROM"
                    " hub_outbox WHERE destination = 'etims' AND status <> 'done'"
                    " ORDER BY status = 'failed' DESC, seq_no LIMIT 5")
            except sqlite3.Error:
                pass
            self.problem("the hub's eTIMS outbox did not drain within %ss of the heal: %s "
                         "items not done; first ones (receipt, invcNo, status, attempts, "
                         "unclear, last error): %s" % (a.etims_drain_seconds, left, rows))
            return
        self.etims_drain_s = now() - t0
        log("heal: every invoice accepted %.2f s after the heal" % self.etims_drain_s)
        pending = set(range(a.tills))
        last = {}
        t1 = now()
        while pending and now() - t1 < a.drain_seconds:
            for i in sorted(pending):
                db = self.till_dbs[i]
                try:
                    self.procs.run(["sync", "--db", db, "--json"], timeout=90)
                    st = self.procs.run_json(["status", "--db", db])
                except Exception as e:  # noqa: BLE001
                    last[i] = str(e)
                    continue
                last[i] = st.get("etims_pending")
                if st.get("etims_pending") == 0:
                    pending.discard(i)
            if pending:
                time.sleep(0.1)
        if pending:
            self.problem("signatures did not come back to %s within %ss (etims_pending %s)" % (
                " ".join(self.terminals[i] for i in sorted(pending)), a.drain_seconds,
                {self.terminals[i]: last.get(i) for i in sorted(pending)}))
        else:
            self.signed_s = now() - t1
            log("heal: every till holds its signatures %.2f s later" % self.signed_s)

    def read_etims_stats(self):
        """The simulator's answers to saves by code (its outcomes table: 000 accepted, 994
        refused as a duplicate, 999 injected, held replies), and the hub's attempts by outcome."""
        st = {}
        try:
            c = sqlite3.connect("file:%s?mode=ro" % self.sim_db, uri=True, timeout=10)
            try:
                st["sim_answers"] = {code: n for code, n in c.execute(
                    "SELECT code, sum(n) FROM outcomes GROUP BY code ORDER BY code")}
                st["sim_invoices"] = c.execute("SELECT count(*) FROM invoices").fetchone()[0]
            finally:
                c.close()
            st["hub_attempts"] = {o: n for o, n in self.hub_query(
                "SELECT outcome, count(*) FROM hub_outbox_attempts GROUP BY outcome"
                " ORDER BY outcome")}
            st["hub_unclear_now"] = self.hub_query(
                "SELECT count(*) FROM hub_outbox WHERE destination = 'etims' AND unclear = 1")[0][0]
        except sqlite3.Error as e:
            st["error"] = str(e)
        self.etims_stats = st

    def stop_servers(self):
        for srv in self.tills + [self.hub] + ([self.sim] if self.sim else []):
            rc = srv.terminate()
            if rc != 0:
                self.problem("%s: exit %s on SIGTERM (expected 0); log tail:\n%s"
                             % (srv.name, rc if rc is not None else "none (ignored it for 20 s)",
                                srv.log_tail()))
        for px in self.proxies + ([self.etims_proxy] if self.etims_proxy else []):
            px.stop()
        if self.sim:
            self.read_etims_stats()
        if self.ack_file:
            self.ack_file.close()
            self.ack_file = None

    def check(self):
        a = self.a
        if not os.access(a.check, os.X_OK):
            self.problem("checker not found at %s (build tests/checker/, or give --check)"
                         % a.check)
            return
        cmd = [a.check, "--hub", self.hub_db]
        for db in self.till_dbs:
            cmd += ["--till", db]
        cmd += ["--acked", self.path("acked.txt"), "--require-drained", "--expect-no-conflicts",
                "--json"]
        if self.sim:
            cmd += ["--etims-state", self.sim_db, "--require-invoiced"]
        if a.negative_control:
            with open(self.path("acked.txt"), "a") as f:
                f.write("%s 100\n" % NEGATIVE_CONTROL_RECEIPT)
        self.check_cmd = cmd
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", env=self.env, timeout=600)
        self.check_rc = p.returncode
        with open(self.path("check.json"), "w") as f:
            f.write(p.stdout)
        try:
            self.check_report = json.loads(p.stdout)
        except ValueError:
            self.check_report = None
        if a.negative_control:
            r = self.check_report or {}
            if p.returncode == 1 and isinstance(r.get("lost"), int) and r["lost"] >= 1:
                self.negative_caught = True
                log("negative control: the checker caught the made-up acknowledged sale %s "
                    "(lost=%d)" % (NEGATIVE_CONTROL_RECEIPT, r["lost"]))
            else:
                self.problem("negative control: the checker did not report the made-up "
                             "acknowledged sale %s as lost (exit %s, report %s)"
                             % (NEGATIVE_CONTROL_RECEIPT, p.returncode, p.stdout.strip()[:500]))
            if self.sim:
                self.etims_negative_control(cmd)
            return
        if p.returncode not in (0, 1) or self.check_report is None:
            self.problem("duka-check exited %s without a JSON report; stderr: %s"
                         % (p.returncode, p.stderr.strip()[:1000]))
        elif p.returncode != 0:
            self.problem("the checker found problems: %s" % (
                self.check_report.get("first_problem") or p.stderr.strip()[:500]))

    def etims_negative_control(self, cmd):
        """On a copy of the simulator's state with one invoice of a hub sale removed, the
        checker must count it uninvoiced (and its number as a gap)."""
        copy = self.path("etims-sim-negative.db")
        src = sqlite3.connect("file:%s?mode=ro" % self.sim_db, uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
            row = dst.execute("SELECT invc_no, trd_invc_no FROM invoices ORDER BY invc_no"
                              " LIMIT 1 OFFSET (SELECT count(*) / 2 FROM invoices)").fetchone()
            if row is None:
                self.problem("negative control: the simulator holds no invoice to remove")
                return
            dst.execute("DELETE FROM invoices WHERE invc_no = ?", (row[0],))
            dst.commit()
        finally:
            src.close()
            dst.close()
        k = cmd.index("--etims-state")
        ncmd = cmd[:k + 1] + [copy] + cmd[k + 2:]
        p = subprocess.run(ncmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", env=self.env, timeout=600)
        try:
            r = json.loads(p.stdout)
        except ValueError:
            r = {}
        if p.returncode == 1 and r.get("uninvoiced", 0) >= 1 and r.get("invc_gaps", 0) >= 1:
            log("negative control: the checker caught the invoice removed from a copy of the "
                "simulator's state (invcNo %d, %s): uninvoiced=%d invc_gaps=%d"
                % (row[0], row[1], r["uninvoiced"], r["invc_gaps"]))
        else:
            self.problem("negative control: the checker did not count invcNo %d (%s), removed "
                         "from a copy of the simulator's state, as uninvoiced (exit %s, "
                         "report %s)" % (row[0], row[1], p.returncode, p.stdout.strip()[:500]))

    # -- summary ---------------------------------------------------------------------------
    def summary(self, wall_s):
        a = self.a
        with self.lock:
            kills = {k: v for k, v in self.events.items()
                     if a.etims or k not in ETIMS_ACTIONS}
            skipped = dict(self.skipped)
        faults = self.proxy_counts()
        by_type = dict(kills)
        for k, v in faults.items():
            if k not in ("pass", "upstream-error"):
                by_type["proxy_" + k.replace("-", "_")] = v
        total = sum(by_type.values())
        ok = not self.problems and (self.check_rc == 0 or self.negative_caught)
        rerun = rerun_command(a)
        s = {
            "ok": ok,
            "seed": self.seed,
            "tills": a.tills,
            "events_target": a.events,
            "events_total": total,
            "events": by_type,
            "kills_total": sum(kills.values()),
            "proxy_faults_total": total - sum(kills.values()),
            "proxy_pass": faults.get("pass", 0),
            "proxy_upstream_errors": faults.get("upstream-error", 0),
            "kill_decisions_skipped": {k: v for k, v in skipped.items() if v},
            "sales_acknowledged": self.acked,
            "sales_indeterminate": self.indeterminate,
            "sales_acknowledged_api": self.acked_api,
            "refunds_acknowledged": self.refunds,
            "sales_indeterminate_api": self.api_indeterminate,
            "sell_ms_p50_p90": pcts(self.sell_ms),
            "sync_cli_runs": self.sync_runs,
            "server_starts": ({s.name: s.starts for s in self.servers()}
                              if self.hub else {}),
            "server_failed_starts": ({s.name: s.failed_starts for s in self.servers()
                                      if s.failed_starts} if self.hub else {}),
            "chaos_seconds": round(self.chaos_s, 1),
            "drain_seconds": round(self.drain_s, 2) if self.drain_s is not None else None,
            "backlog_at_heal": self.backlog,
            "wall_seconds": round(wall_s, 1),
            "cpu_seconds": cpu_seconds(),
            "check": self.check_report,
            "problems": self.problems,
            "dir": self.dir,
            "rerun": rerun,
            "check_command": " ".join(getattr(self, "check_cmd", [])),
            "etims": ({"retried_by_hand": self.etims_retried,
                       "drain_seconds": round(self.etims_drain_s, 2)
                       if self.etims_drain_s is not None else None,
                       "signatures_back_seconds": round(self.signed_s, 2)
                       if self.signed_s is not None else None,
                       **self.etims_stats} if self.sim else None),
        }
        if self.check_report and isinstance(self.check_report.get("till_sales"), int):
            s["indeterminate_committed"] = self.check_report["till_sales"] - self.acked
        try:
            with open(self.path("summary.json"), "w") as f:
                json.dump(s, f, indent=1)
        except OSError:
            pass
        lines = ["", "===== chaos summary ====="]
        lines.append("seed %d · %d tills · %d sellers each · target %d events" % (
            self.seed, a.tills, a.sellers, a.events))
        lines.append("events: %d in %.1f s of chaos — %d kills, %d proxy faults" % (
            total, self.chaos_s, s["kills_total"], s["proxy_faults_total"]))
        lines.append("  kills:  " + ", ".join("%s %d" % (k, v) for k, v in kills.items()))
        lines.append("  proxy:  " + ", ".join("%s %d" % (k, faults.get(k, 0))
                                              for k in CHAOS_FAULTS if k != "pass")
                     + "  (pass %d, upstream down %d)" % (faults.get("pass", 0),
                                                          faults.get("upstream-error", 0)))
        if s["kill_decisions_skipped"]:
            lines.append("  skipped kill decisions (target busy / arm unused): %s" % ", ".join(
                "%s %d" % kv for kv in s["kill_decisions_skipped"].items()))
        lines.append("  starts after the first: " + ", ".join(
            "%s %d" % (k, v - 1) for k, v in s["server_starts"].items())
            + ("  (of which did not come up and were retried: %s)" % ", ".join(
                "%s %d" % kv for kv in s["server_failed_starts"].items())
               if s["server_failed_starts"] else ""))
        lines.append("sales: %d acknowledged (%d of them through POST /api/sales, %d refunds), "
                     "%d indeterminate (%d sells killed, %d API sales cut by a till kill)%s" % (
            self.acked, self.acked_api, self.refunds,
            self.indeterminate + self.api_indeterminate,
            self.indeterminate, self.api_indeterminate,
            (", %d of them committed" % s["indeterminate_committed"])
            if "indeterminate_committed" in s else "")
            + "; a sell took %s / %s ms (p50 / p90)" % tuple(s["sell_ms_p50_p90"]))
        lines.append("drain: %s (bound %s s) from the heal, with %s items pending or "
                     "processing then (sellers still finishing add a few)" % (
                         "%.2f s" % self.drain_s if self.drain_s is not None
                         else "DID NOT DRAIN", a.drain_seconds, self.backlog))
        if self.sim:
            es = self.etims_stats
            ans = es.get("sim_answers", {})
            episodes = ", ".join("%s %d" % (k[6:], kills.get(k, 0)) for k in ETIMS_KNOBS)
            lines.append("eTIMS: %s invoices accepted; saves answered %s; 994s refused %d, "
                         "held replies %d; episodes: %s; sim kills %d; hub killed mid-send %d,"
                         " mid-record %d" % (
                             es.get("sim_invoices", "?"),
                             " ".join("%s=%s" % kv for kv in ans.items()) or "?",
                             ans.get("994", 0), ans.get("held", 0), episodes,
                             kills.get("kill_sim", 0), kills.get("kill_hub_send", 0),
                             kills.get("kill_hub_record", 0)))
            lines.append("  failed for good (5 errors) and put back by hand at the heal: %d"
                         % self.etims_retried)
            lines.append("  hub attempts by outcome: %s; drain: every invoice accepted %s "
                         "after the heal (bound %s s), signatures back %s later" % (
                             " ".join("%s=%s" % kv for kv in es.get("hub_attempts", {}).items())
                             or "?",
                             "%.2f s" % self.etims_drain_s if self.etims_drain_s is not None
                             else "NOT", a.etims_drain_seconds,
                             "%.2f s" % self.signed_s if self.signed_s is not None else "NOT"))
        r = self.check_report
        if r:
            keys = ["acked", "till_sales", "hub_sales", "hub_lines", "lost", "duplicated",
                    "unexpected", "mismatched", "receipt_gaps", "receipt_dupes", "orphan_sales",
                    "stock_mismatch", "queue_not_empty", "conflicts", "invoices", "till_signed",
                    "uninvoiced", "double_invoiced", "invoice_unexpected", "invc_gaps",
                    "invc_dupes", "invoice_mismatch", "etims_not_done", "signature_mismatch",
                    "unsigned"]
            lines.append("check: %s  %s" % ("ok" if r.get("ok") else "FAILED", " ".join(
                "%s=%s" % (k, r[k]) for k in keys if k in r)))
            if r.get("first_problem"):
                lines.append("  first problem: %s" % r["first_problem"])
        else:
            lines.append("check: not run or no report")
        lines.append("wall: %.1f s" % wall_s)
        if self.problems:
            lines.append("problems (%d):" % len(self.problems))
            for p in self.problems[:20]:
                lines.append("  - " + p.replace("\n", "\n    "))
        lines.append("RESULT: %s" % ("ok" if ok else "FAILED"))
        if not ok:
            lines.append("files kept in %s" % self.dir)
            lines.append("rerun: %s" % rerun)
        log("\n".join(lines))
        return ok


def parse_actions(text, etims=True):
    """'kill_hub=20,nothing=0' over ACTIONS -> [(action, weight)]; without eTIMS its actions
    weigh 0 whatever the text says."""
    w = dict(ACTIONS)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in w:
            raise ValueError("unknown action %r (known: %s)" % (name, ", ".join(w)))
        w[name] = float(value)
    if not etims:
        for name in ETIMS_ACTIONS:
            w[name] = 0.0
    if sum(w.values()) <= 0:
        raise ValueError("every action weighs 0")
    return [(n, w[n]) for n, _ in ACTIONS]


def cpu_seconds():
    import resource
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"harness": round(me.ru_utime + me.ru_stime, 1),
            "children": round(kids.ru_utime + kids.ru_stime, 1)}


def pcts(values):
    v = sorted(values)
    if not v:
        return [None, None]
    return [round(v[len(v) // 2], 1), round(v[min(len(v) - 1, int(len(v) * 0.9))], 1)]


def rerun_command(a):
    cmd = ["python3", os.path.relpath(os.path.abspath(__file__), os.getcwd()),
           "--duka", a.duka, "--check", a.check, "--seed", str(a.seed), "--events", str(a.events),
           "--tills", str(a.tills), "--sellers", str(a.sellers), "--syncers", str(a.syncers),
           "--api-sellers", str(a.api_sellers),
           "--max-seconds",
           str(a.max_seconds), "--drain-seconds", str(a.drain_seconds)]
    if a.weights_text:
        cmd += ["--proxy-weights", a.weights_text]
    if a.actions_text:
        cmd += ["--actions", a.actions_text]
    if not a.etims:
        cmd.append("--no-etims")
    if a.etims_drain_seconds != 90:
        cmd += ["--etims-drain-seconds", str(a.etims_drain_seconds)]
    if a.negative_control:
        cmd.append("--negative-control")
    return " ".join(cmd)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="More: this file's docstring, tests/chaos/README.md.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duka", default=os.path.join(REPO, "build", "duka"))
    ap.add_argument("--check", default=None, help="duka-check (default: beside --duka)")
    ap.add_argument("--seed", type=int, default=None, help="default: random, always printed")
    ap.add_argument("--events", type=int, default=1000, help="kill/fault events to reach")
    ap.add_argument("--tills", type=int, default=3)
    ap.add_argument("--sellers", type=int, default=2, help="`duka sell` at a time per till")
    ap.add_argument("--api-sellers", type=int, default=1, choices=(0, 1),
                    help="also sell through each till's POST /api/sales (1) or not (0)")
    ap.add_argument("--syncers", type=int, default=1,
                    help="`duka sync` loops per till (0: only the tills' workers sync)")
    ap.add_argument("--dir", default=None, help="default: a temp dir, removed when the run passes")
    ap.add_argument("--max-seconds", type=float, default=600,
                    help="longest chaos phase; fewer events by then fails the run")
    ap.add_argument("--drain-seconds", type=float, default=60,
                    help="bound on the drain after healing")
    ap.add_argument("--proxy-weights", dest="weights_text", default="", metavar="W",
                    help="FAULT=WEIGHT,... over the proxy's defaults (%s)" % ",".join(
                        "%s=%g" % kv for kv in faultproxy.CHAOS_WEIGHTS.items()))
    ap.add_argument("--actions", dest="actions_text", default="", metavar="W",
                    help="ACTION=WEIGHT,... over the scheduler's defaults (%s)" % ",".join(
                        "%s=%g" % kv for kv in ACTIONS))
    ap.add_argument("--no-etims", dest="etims", action="store_false",
                    help="no eTIMS simulator: the hub forwards no invoices, no eTIMS actions, "
                         "no eTIMS checks")
    ap.add_argument("--etims-drain-seconds", type=float, default=90,
                    help="bound, from the heal, on the hub's eTIMS outbox draining")
    ap.add_argument("--negative-control", action="store_true",
                    help="acknowledge one made-up sale before the check: the run passes only "
                         "if the checker reports it lost (proves the pipeline can see loss)")
    ap.add_argument("--keep", action="store_true", help="keep the dir even when the run passes")
    a = ap.parse_args(argv)
    a.duka = os.path.abspath(a.duka)
    a.check = os.path.abspath(a.check or os.path.join(os.path.dirname(a.duka), "duka-check"))
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    if a.tills < 1 or a.tills > 99 or a.sellers < 1 or a.events < 0:
        ap.error("need 1..99 tills, at least 1 seller, events >= 0")
    try:
        a.weights = faultproxy.parse_weights(a.weights_text)
        a.actions = parse_actions(a.actions_text, a.etims)
    except ValueError as e:
        ap.error(str(e))
    if not os.access(a.duka, os.X_OK):
        ap.error("duka binary not found at %s (give --duka)" % a.duka)
    own_dir = a.dir is None
    if own_dir:
        a.dir = tempfile.mkdtemp(prefix="duka-chaos-%d-" % a.seed)
    else:
        a.dir = os.path.abspath(a.dir)
        os.makedirs(a.dir, exist_ok=True)
    log("chaos: seed %d (rerun with --seed %d), %d events, %d tills, duka %s"
        % (a.seed, a.seed, a.events, a.tills, a.duka))

    run = Chaos(a)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t0 = now()
    ok = False
    try:
        run.setup()
        run.chaos()
        run.heal()
        run.stop_servers()
        run.check()
        ok = run.summary(now() - t0)
    except KeyboardInterrupt:
        log("chaos: interrupted; files kept in %s\nrerun: %s" % (a.dir, rerun_command(a)))
        run.problems.append("interrupted")
    except Exception:  # noqa: BLE001
        run.problem("harness error:\n%s" % traceback.format_exc())
        try:
            run.summary(now() - t0)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
    finally:
        with run.lock:
            run.closing = True
        run.stop_sched.set()
        run.stop_traffic.set()
        run.procs.kill_all()
        for px in run.proxies + ([run.etims_proxy] if run.etims_proxy else []):
            try:
                px.stop()
            except Exception:  # noqa: BLE001
                pass
    if ok and own_dir and not a.keep:
        shutil.rmtree(a.dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
