#!/usr/bin/env python3
"""(g) `duka demo --dir TMP --listen 127.0.0.1:PORT`: prints what runs where, sells while the
hub is down, starts the hub, prints a line containing `arrived at the hub` once that sale has
synced (within 60 s); on SIGINT it exits 0 within 15 s and leaves no process behind: no port
it named accepts connections and no process mentions its directory.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, check_eq, deadline, free_port, kill_group_leftovers,  # noqa: E402
                     log, popen, port_accepts, wait_for, SLOWDOWN)

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
