#!/usr/bin/env python3
"""(g) `duka demo --dir TMP --listen 127.0.0.1:PORT`: prints what runs where, sells while the
hub is down, starts the hub, prints a line containing `arrived at the hub` once that sale has
synced (within 60 s); on SIGINT it exits 0 within 15 s and leaves no process behind: no port
it named accepts connections and no process mentions its directory.

Issue 10: the commands it suggests work from any folder (the binary's and the databases'
absolute paths), one of them restarts the hub it says to stop; on a busy address it stops
before creating anything, with one line naming that address — not "token rejected" because
another process answered the health check.
"""

import json
import os
import queue
import re
import shlex
import shutil
import sqlite3
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (http, Suite, check, check_eq, deadline, free_port,  # noqa: E402
                     kill_group_leftovers, kill_proc, log, popen, port_accepts,
                     setup_business, wait_for, SLOWDOWN)

suite = Suite("demo")


def processes_mentioning(text):
    """pids of live processes whose command line contains `text` (zombies excluded)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open("/proc/%s/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            found.append((int(pid), cmd.strip()))
    return found


class Demo:
    """A `duka demo` process and the lines it printed so far."""

    def __init__(self, demo_dir, port, hub_port):
        self.p = popen(["demo", "--dir", demo_dir, "--listen", "127.0.0.1:%d" % port,
                        "--hub-listen", "127.0.0.1:%d" % hub_port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for raw in iter(self.p.stdout.readline, b""):
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def take_until(self, pred, seconds):
        end = deadline(seconds)
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.seen.append(line)
            log("  demo| " + line)
            if pred(line):
                return True
        return False

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        try:
            rc = self.p.wait(timeout=15 * SLOWDOWN)
        except subprocess.TimeoutExpired:
            raise AssertionError("duka demo still running 15 s after SIGINT")
        self.take_until(lambda l: False, 1)
        return rc


@suite.test
def demo_prints_commands_that_work_from_anywhere(ctx):
    demo_dir = ctx.path("demo")
    os.mkdir(demo_dir)
    port, hub_port = free_port(), free_port()
    d = Demo(demo_dir, port, hub_port)
    check(d.take_until(lambda l: "yours to stop" in l, 90),
          "the demo never got to its suggestions; output: %r" % d.seen[-20:])
    d.take_until(lambda l: False, 1)
    text = "\n".join(d.seen)
    # Two cashiers seeded, printed with their PINs, and on the till by its first pull.
    for words in (("Amina", "cashier", "PIN 1234"), ("Baraka", "manager", "PIN 5678")):
        check(any(all(w in l for w in words) for l in d.seen),
              "the demo prints cashier %r: %r" % (words, d.seen[:12]))
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(demo_dir, "till.db"), uri=True)
    try:
        got = con.execute("SELECT name, role FROM cashiers WHERE active = 1 ORDER BY name").fetchall()
    finally:
        con.close()
    check_eq(got, [("Amina", "cashier"), ("Baraka", "manager")], "the demo till's cashiers")
    # eTIMS: the sale made while KRA's eTIMS was down says "eTIMS: pending", then is signed
    # once it is back, with the control unit's block and a QR that reads as its link.
    check(any('"eTIMS: pending"' in l for l in d.seen), "the demo shows a receipt pending eTIMS")
    signed = [k for k, l in enumerate(d.seen) if "Signed " in l and "reprints" in l]
    check(signed, "the demo shows the receipt signed: %r" % d.seen[-40:])
    block = d.seen[signed[0]:]
    cu = [l for l in block if "CU invoice no KRACU" in l]
    link = [l.split("verify at", 1)[1].strip() for l in block if "verify at" in l]
    check(cu and link and link[0].startswith("https://") and "Data=P051234567X00" in link[0],
          "the signed receipt's CU number and verification link: %r" % block[:8])
    qr = [l for l in block if l and set(l) <= set("\u2588\u2580\u2584 ")]
    check(len(qr) >= 15 and len(set(len(l) for l in qr)) == 1,
          "a square QR of half blocks under the signature: %d lines" % len(qr))
    if shutil.which("zbarimg"):
        pbm = ctx.path("qr.pbm")
        rows = []
        for l in qr:  # a drawn half is a light module (dark terminal), blank is dark
            rows.append([0 if c in "\u2588\u2580" else 1 for c in l])
            rows.append([0 if c in "\u2588\u2584" else 1 for c in l])
        with open(pbm, "w") as f:
            f.write("P1\n%d %d\n" % (len(qr[0]) * 6, len(rows) * 6))
            for r in rows:
                line = " ".join(str(v) for v in r for _ in range(6))
                for _ in range(6):
                    f.write(line + "\n")
        got = subprocess.run(["zbarimg", "-q", "--raw", pbm], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        check_eq(got, link[0], "the demo's terminal QR, read by zbarimg")
    # The first line is the cashier's screen, and it is there.
    check_eq(d.seen[0], "Open http://127.0.0.1:%d/ in a browser: the cashier's screen (log in as "
             "Amina, PIN 1234)." % port, "the demo's first line")
    st, page = http("GET", port, "/")
    check(st == 200 and b'id="statusbar"' in page, "GET / of the demo's till: %s %r" % (st, page[:200]))
    # The curl lines it suggests log in and sell, in that order, from another folder.
    curls = [l.strip() for l in d.seen if l.strip().startswith("curl ") and "/api/" in l]
    login = [l for l in curls if "/api/login" in l]
    sale = [l for l in curls if "/api/sales" in l]
    check(login and sale, "the demo suggests a login and a sale with curl: %r" % curls)
    for l, want in ((login[0], '"token"'), (sale[0], '"receipt_no"')):
        p = subprocess.run(shlex.split(l), cwd="/", capture_output=True, text=True, timeout=30)
        check(p.returncode == 0 and want in p.stdout, "%r -> %s %r" % (l, p.returncode, p.stdout))
    try_lines = [l.strip() for l in d.seen if l.startswith("  ") and
                 (" sell " in l or " status " in l or " queue " in l or " report " in l)]
    check(len(try_lines) >= 4, "the demo suggests duka commands: %r" % d.seen)
    real_dir = os.path.realpath(demo_dir)
    for l in try_lines:
        words = shlex.split(l)
        check(os.path.isabs(words[0]) and os.access(words[0], os.X_OK),
              "suggested command does not start with the binary's absolute path: %r" % l)
        check(os.path.samefile(words[0], os.environ.get("DUKA_BIN") or words[0]),
              "suggested binary %r is not the one running" % words[0])
        db = words[words.index("--db") + 1]
        check(os.path.isabs(db) and db.startswith(real_dir),
              "suggested --db is not an absolute path in the demo's folder: %r" % l)
    # They work from another folder.
    for l in try_lines:
        if " status " in l or " queue " in l:
            p = subprocess.run(shlex.split(l), cwd="/", capture_output=True, text=True,
                               timeout=30 * SLOWDOWN)
            check_eq(p.returncode, 0, "%r run from / (stderr %r)" % (l, p.stderr))
    # Stop the hub as told, and start it again with the command it prints.
    m = re.search(r"Stop the hub \(kill (\d+)\)", text)
    check(m, "the demo says how to stop the hub: %r" % text[-800:])
    os.kill(int(m.group(1)), signal.SIGTERM)
    wait_for(lambda: not port_accepts(hub_port), 15, "the hub to stop after kill")
    # A sale with the hub down, made with the command the demo suggests.
    sell = [l for l in try_lines if " sell " in l][0]
    p = subprocess.run(shlex.split(sell) + ["--json"], cwd="/", capture_output=True, text=True,
                       timeout=30 * SLOWDOWN)
    check_eq(p.returncode, 0, "%r with the hub down (stderr %r)" % (sell, p.stderr))
    receipt = json.loads(p.stdout)["receipt_no"]
    report = shlex.split([l for l in try_lines if " report " in l][0]) + ["--json"]
    i = [k for k, l in enumerate(d.seen) if "Start it again with" in l]
    check(i and i[0] + 1 < len(d.seen), "the demo prints how to start the hub again: %r"
          % d.seen[-6:])
    restart = d.seen[i[0] + 1].strip()
    # It sets the hub's eTIMS address first (ETIMS_BASE_URL=…), as the demo's own hub has it.
    words = [w for w in shlex.split(restart) if not re.match(r"^[A-Z_]+=", w)]
    check("ETIMS_BASE_URL=http://127.0.0.1:" in restart, "restart command sets the eTIMS "
          "simulator's address: %r" % restart)
    check(os.path.isabs(words[0]) and words[1:2] == ["hub"] and
          "127.0.0.1:%d" % hub_port in words, "restart command: %r" % restart)
    # As a user would paste it: in a shell, from another folder (it puts itself in the
    # background; its process group is ours to kill).
    p = subprocess.Popen(["bash", "-c", restart], cwd="/", stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        check_eq(p.wait(timeout=15 * SLOWDOWN), 0, "exit code of the shell running %r" % restart)
        wait_for(lambda: port_accepts(hub_port), 15, "the restarted hub to listen")
        wait_for(lambda: receipt in json.loads(subprocess.run(
            report, capture_output=True, text=True, timeout=30).stdout)["receipts"], 60,
            "sale %s, made with the hub down, to reach the restarted hub" % receipt)
    finally:
        kill_group_leftovers(p)
    check_eq(d.stop(), 0, "duka demo exit code after SIGINT")


def expect_demo_refused(ctx, port, hub_port, busy):
    demo_dir = ctx.path("demo-%d" % port)
    os.mkdir(demo_dir)
    p = popen(["demo", "--dir", demo_dir, "--listen", "127.0.0.1:%d" % port,
               "--hub-listen", "127.0.0.1:%d" % hub_port],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=20 * SLOWDOWN)
    except subprocess.TimeoutExpired:
        kill_proc(p)
        raise AssertionError("duka demo on a busy address kept running")
    lines = [l for l in err.decode("utf-8", "replace").split("\n") if l.strip()]
    check_eq((p.returncode, lines),
             (1, ["duka demo: 127.0.0.1:%d is already in use (another duka till or hub?)" % busy]),
             "duka demo with 127.0.0.1:%d busy: exit code and stderr (stdout %r)" % (busy, out[:300]))
    check_eq(os.listdir(demo_dir), [], "files the refused demo created")


@suite.test
def demo_refuses_busy_addresses_before_creating_anything(ctx):
    # The hub's address held by another duka hub (the demo used to report "token rejected":
    # the other hub answered its health check), then the till's by any listener.
    biz = setup_business(ctx.tmp, free_port())
    expect_demo_refused(ctx, free_port(), biz.hub.port, biz.hub.port)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        busy = s.getsockname()[1]
        expect_demo_refused(ctx, busy, free_port(), busy)
    finally:
        s.close()


@suite.test
def demo_sale_arrives_and_ctrl_c_stops_everything(ctx):
    demo_dir = ctx.path("demo")
    os.mkdir(demo_dir)
    port = free_port()
    hub_port = free_port()  # not port + 1: another test may hold that one
    p = popen(["demo", "--dir", demo_dir, "--listen", "127.0.0.1:%d" % port,
               "--hub-listen", "127.0.0.1:%d" % hub_port],
              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = queue.Queue()
    seen = []

    def reader():
        for raw in iter(p.stdout.readline, b""):
            lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()

    def take_until(pred, seconds):
        end = deadline(seconds)
        while time.monotonic() < end:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                return False
            seen.append(line)
            log("  demo| " + line)
            if pred(line):
                return True
        return False

    arrived = take_until(lambda l: "arrived at the hub" in l, 60)
    if not arrived:
        exited = p.poll()
        p.send_signal(signal.SIGINT)
        take_until(lambda l: False, 5)
        if any("arrived at the hub" in l for l in seen):
            raise AssertionError("'arrived at the hub' appeared only after SIGINT: the demo's "
                                 "stdout is block-buffered when it is a pipe (fflush it)")
        raise AssertionError("no line containing 'arrived at the hub' within 60 s%s; output: %r"
                             % (" (demo exited with %s)" % exited if exited is not None else "",
                                seen[-20:]))

    ports = {port}
    for l in seen:
        for m in re.finditer(r"(?:127\.0\.0\.1|localhost|0\.0\.0\.0):(\d{2,5})", l):
            ports.add(int(m.group(1)))
    log("  ports named by the demo: %s" % sorted(ports))
    check(port_accepts(port), "the demo does not accept connections on its --listen port %d" % port)

    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(timeout=15 * SLOWDOWN)
    except subprocess.TimeoutExpired:
        raise AssertionError("duka demo still running 15 s after SIGINT")
    take_until(lambda l: False, 1)
    check_eq(rc, 0, "duka demo exit code after SIGINT")

    # Its children are gone: nothing listens on the ports it named, no process mentions its dir.
    try:
        wait_for(lambda: not [q for q in ports if port_accepts(q)], 3,
                 "the demo's ports to stop accepting connections")
    except AssertionError:
        raise AssertionError("after the demo exited these ports still accept connections: %s"
                             % [q for q in ports if port_accepts(q)])
    try:
        wait_for(lambda: not processes_mentioning(demo_dir), 3, "no process mentioning the demo dir")
    except AssertionError:
        left = processes_mentioning(demo_dir)
        kill_group_leftovers(p)
        raise AssertionError("processes left behind by the demo: %s" % left)


if __name__ == "__main__":
    suite.main()
