#!/usr/bin/env python3
"""The till's settings: defaults, `duka.conf` beside the database (or $DUKA_CONFIG, or
--config), the environment; `duka config --json` shows each value and where it came from.

1. no file: every setting has source "default" (the documented defaults); duka.conf with
   OFFLINE_QUEUE_ALERT_THRESHOLD=5 -> source "file"; 5 pending: no alert, 6 pending:
   `duka status --json` raises "queue_backlog"; the same variable in the environment overrides
   the file (source "environment", and the alert follows it); $DUKA_CONFIG and --config name
   other files; durations take unit suffixes.
2. an invalid value (not a number, out of range) in the environment or in the file, and an
   unknown name in the file: `duka status` and `duka config` exit 1 with ONE stderr line naming
   the key and the value (and, for the file, the line number).
3. an invalid value in the environment makes every till command exit 1 the same way.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, alert_codes, check, check_eq, expect_error, free_port,  # noqa: E402
                     log, run, run_json, sell, setup_business)

suite = Suite("config")

# name -> (value as --json prints it, unit) for the defaults the docs promise
DEFAULTS = {
    "OFFLINE_QUEUE_MAX_RETRIES": 5,
    "OFFLINE_QUEUE_ALERT_THRESHOLD": 100,
    "OFFLINE_QUEUE_PROCESS_INTERVAL": 30000,   # ms
    "OFFLINE_QUEUE_RETENTION_DAYS": 7 * 86400000,
    "CONNECTIVITY_CHECK_INTERVAL": 30000,
    "CONNECTIVITY_OFFLINE_RECHECK_MAX": 4000,
}


def till_db(ctx):
    biz = setup_business(ctx.tmp, free_port())
    check(biz.hub.stop() is not None, "the hub did not exit on SIGTERM")
    return biz.tills["T01"]


def config(db, env=None, *extra):
    r = run_json(["config", "--db", db] + list(extra) + ["--json"], env=env)
    check(isinstance(r.get("settings"), list) and r["settings"], "duka config --json: %r" % r)
    check("file" in r, "duka config --json lacks file: %r" % r)
    out = {}
    for s in r["settings"]:
        for k in ("name", "value", "unit", "source", "help"):
            check(k in s, "duka config --json setting lacks %r: %r" % (k, s))
        check(s["source"] in ("default", "file", "environment", "command line"),
              "duka config --json: source %r of %s" % (s["source"], s["name"]))
        check(s["name"] not in out, "duka config --json lists %s twice" % s["name"])
        out[s["name"]] = s
    return r["file"], out


def status_json(db, env=None):
    return run_json(["status", "--db", db, "--json"], env=env)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@suite.test
def defaults_file_environment_precedence(ctx):
    db = till_db(ctx)
    conf = os.path.join(os.path.dirname(db), "duka.conf")
    check(not os.path.exists(conf), "duka.conf exists before the test wrote one")

    f, s = config(db)
    check_eq(f, "", "duka config --json file with no config file")
    not_default = {n: v["source"] for n, v in s.items() if v["source"] != "default"}
    check_eq(not_default, {}, "settings not from the defaults with no file and no environment")
    for name, value in DEFAULTS.items():
        check(name in s, "duka config --json lacks %s" % name)
        check_eq(s[name]["value"], value, "default of %s" % name)
    log("  %d settings, all defaults" % len(s))

    write(conf, "# the shop's settings\n\nOFFLINE_QUEUE_ALERT_THRESHOLD=5\n"
                "OFFLINE_QUEUE_PROCESS_INTERVAL=45s\n")
    f, s = config(db)
    check(f and os.path.realpath(f) == os.path.realpath(conf),
          "duka config --json file: got %r, want %s" % (f, conf))
    check_eq((s["OFFLINE_QUEUE_ALERT_THRESHOLD"]["value"],
              s["OFFLINE_QUEUE_ALERT_THRESHOLD"]["source"]), (5, "file"),
             "OFFLINE_QUEUE_ALERT_THRESHOLD (value, source) from duka.conf")
    check_eq((s["OFFLINE_QUEUE_PROCESS_INTERVAL"]["value"],
              s["OFFLINE_QUEUE_PROCESS_INTERVAL"]["source"]), (45000, "file"),
             "OFFLINE_QUEUE_PROCESS_INTERVAL=45s (value in ms, source)")
    check_eq(s["OFFLINE_QUEUE_MAX_RETRIES"]["source"], "default",
             "source of a setting the file does not set")

    # The threshold is "pending > threshold": 5 pending, no alert; 6 pending, queue_backlog.
    for _ in range(5):
        sell(db, "SUGAR1KG")
    st = status_json(db)
    check_eq(st.get("pending"), 5, "status pending")
    check("queue_backlog" not in alert_codes(st),
          "queue_backlog with 5 pending and a threshold of 5: %r" % st["alerts"])
    sell(db, "MILK500*2")
    st = status_json(db)
    check_eq(st.get("pending"), 6, "status pending")
    check("queue_backlog" in alert_codes(st),
          "no queue_backlog with 6 pending and OFFLINE_QUEUE_ALERT_THRESHOLD=5 in duka.conf: %r"
          % st["alerts"])

    # The environment overrides the file.
    env = {"OFFLINE_QUEUE_ALERT_THRESHOLD": "10"}
    f, s = config(db, env)
    check_eq((s["OFFLINE_QUEUE_ALERT_THRESHOLD"]["value"],
              s["OFFLINE_QUEUE_ALERT_THRESHOLD"]["source"]), (10, "environment"),
             "OFFLINE_QUEUE_ALERT_THRESHOLD (value, source) with the environment over the file")
    check_eq(s["OFFLINE_QUEUE_PROCESS_INTERVAL"]["source"], "file",
             "source of a file setting the environment does not override")
    st = status_json(db, env)
    check("queue_backlog" not in alert_codes(st),
          "queue_backlog with 6 pending and OFFLINE_QUEUE_ALERT_THRESHOLD=10 in the environment "
          "(5 in the file): %r" % st["alerts"])
    st = status_json(db, {"OFFLINE_QUEUE_ALERT_THRESHOLD": "3"})
    check("queue_backlog" in alert_codes(st), "no queue_backlog with 6 pending and "
          "OFFLINE_QUEUE_ALERT_THRESHOLD=3 in the environment: %r" % st["alerts"])

    # $DUKA_CONFIG and --config name another file (instead of duka.conf beside the db).
    other = write(ctx.path("other.conf"), "OFFLINE_QUEUE_ALERT_THRESHOLD=7\n")
    f, s = config(db, {"DUKA_CONFIG": other})
    check_eq((os.path.realpath(f), s["OFFLINE_QUEUE_ALERT_THRESHOLD"]["value"],
              s["OFFLINE_QUEUE_ALERT_THRESHOLD"]["source"]), (os.path.realpath(other), 7, "file"),
             "duka config with DUKA_CONFIG=other.conf (file, value, source)")
    check_eq(s["OFFLINE_QUEUE_PROCESS_INTERVAL"]["source"], "default",
             "OFFLINE_QUEUE_PROCESS_INTERVAL source with DUKA_CONFIG (duka.conf not read)")
    f, s = config(db, None, "--config", other)
    check_eq((os.path.realpath(f), s["OFFLINE_QUEUE_ALERT_THRESHOLD"]["value"]),
             (os.path.realpath(other), 7), "duka config --config other.conf (file, value)")
    expect_error(["config", "--db", db, "--config", ctx.path("missing.conf"), "--json"],
                 ["missing.conf"])

    # Text output names the sources too.
    rc, out, err = run(["config", "--db", db], env=env)
    check_eq(rc, 0, "duka config (text) exit code, stderr %r" % err)
    line = [l for l in out.split("\n") if l.startswith("OFFLINE_QUEUE_ALERT_THRESHOLD")]
    check(len(line) == 1 and "environment" in line[0] and "10" in line[0],
          "duka config text line for OFFLINE_QUEUE_ALERT_THRESHOLD: %r" % line)


@suite.test
def invalid_values_name_key_value_and_line(ctx):
    db = till_db(ctx)
    conf = os.path.join(os.path.dirname(db), "duka.conf")
    for cmd in (["status", "--db", db, "--json"], ["config", "--db", db, "--json"]):
        name = " ".join(cmd[:1])
        # environment: not a number, out of range
        for value in ("abc", "0", "12x"):
            rc, out, err = run(cmd, env={"OFFLINE_QUEUE_MAX_RETRIES": value})
            lines = [l for l in err.split("\n") if l.strip()]
            check(rc == 1 and len(lines) == 1 and "OFFLINE_QUEUE_MAX_RETRIES" in err and
                  ("'%s'" % value in err or "=%s" % value in err or '"%s"' % value in err),
                  "duka %s with OFFLINE_QUEUE_MAX_RETRIES=%s in the environment: want exit 1 and "
                  "one stderr line naming the key and the value; got exit %s, stderr %r"
                  % (name, value, rc, err))
            # With --json the one stdout line is the error object, nothing of a result.
            try:
                obj = json.loads(out)
            except ValueError:
                obj = None
            check(isinstance(obj, dict) and list(obj) == ["error"] and
                  obj["error"].get("code") == "invalid_input" and
                  "OFFLINE_QUEUE_MAX_RETRIES" in obj["error"].get("message", ""),
                  "duka %s --json with an invalid setting: want only {\"error\":{…}} on stdout, "
                  "got %r" % (name, out[:200]))
        # file: invalid value on line 3, then an unknown name on line 2
        write(conf, "# settings\nOFFLINE_QUEUE_ALERT_THRESHOLD=5\nOFFLINE_QUEUE_MAX_RETRIES=abc\n")
        line = expect_error(cmd, ["OFFLINE_QUEUE_MAX_RETRIES", "abc", "line 3"])
        log("  duka %s, bad value in duka.conf: %s" % (name, line))
        write(conf, "OFFLINE_QUEUE_ALERT_THRESHOLD=5\nOFFLINE_QUEUE_MAX_RETRYS=3\n")
        line = expect_error(cmd, ["OFFLINE_QUEUE_MAX_RETRYS", "line 2"])
        log("  duka %s, unknown name in duka.conf: %s" % (name, line))
        write(conf, "OFFLINE_QUEUE_ALERT_THRESHOLD=-4\n")
        expect_error(cmd, ["OFFLINE_QUEUE_ALERT_THRESHOLD", "-4", "line 1"])
        os.unlink(conf)
    # A valid environment value does not excuse an invalid file value.
    write(conf, "CONNECTIVITY_CHECK_INTERVAL=often\n")
    rc, out, err = run(["status", "--db", db, "--json"],
                       env={"CONNECTIVITY_CHECK_INTERVAL": "10s"})
    lines = [l for l in err.split("\n") if l.strip()]
    check(rc == 1 and len(lines) == 1 and "CONNECTIVITY_CHECK_INTERVAL" in err and "often" in err,
          "duka status with an invalid file value overridden by the environment: want exit 1 "
          "naming it, got exit %s, stderr %r" % (rc, err))
    os.unlink(conf)
    st = status_json(db)
    check_eq(st.get("pending"), 0, "status pending once the config is fixed")


@suite.test
def invalid_environment_value_stops_every_till_command(ctx):
    db = till_db(ctx)
    port = free_port()
    env = {"OFFLINE_QUEUE_MAX_RETRIES": "abc"}
    cmds = [
        ["till", "--db", db, "--listen", "127.0.0.1:%d" % port],
        ["sell", "--db", db, "SUGAR1KG", "--json"],
        ["sync", "--db", db, "--json"],
        ["status", "--db", db, "--json"],
        ["config", "--db", db, "--json"],
        ["queue", "--db", db, "--json"],
        ["queue", "retry", "--db", db, "--all-failed", "--json"],
        ["history", "--db", db, "--json"],
        ["catalog", "--db", db, "--json"],
    ]
    failures = []
    for cmd in cmds:
        try:
            rc, out, err = run(cmd, env=env, timeout=20)
        except AssertionError as e:  # duka till served instead of refusing to start
            failures.append(str(e))
            continue
        lines = [l for l in err.split("\n") if l.strip()]
        if not (rc == 1 and len(lines) == 1 and "OFFLINE_QUEUE_MAX_RETRIES" in err
                and "abc" in err):
            failures.append("duka %s: exit %s, stderr %r" % (" ".join(cmd[:2] if cmd[1] == "retry"
                                                                  else cmd[:1]), rc, err.strip()))
    check(not failures, "with OFFLINE_QUEUE_MAX_RETRIES=abc in the environment, want exit 1 and "
          "one stderr line naming it from every till command; got:\n  " + "\n  ".join(failures))
    rc, out, err = run(["status", "--db", db, "--json"])
    check_eq(rc, 0, "duka status without the bad variable (nothing was changed)")


if __name__ == "__main__":
    suite.main()
