#!/usr/bin/env python3
"""The till's settings: defaults, `duka.conf` beside the database (or $DUKA_CONFIG, or
--config), the environment; `duka config --json` shows each value and where it came from.

1. no file: every setting has source "default" (the documented defaults); duka.conf with
   OFFLINE_QUEUE_ALERT_THRESHOLD=5 -> source "file"; 5 pending: no alert, 6 pending:
   `duka status --json` raises "queue_backlog"; the same variable in the environment overrides
   the file (source "environment", and the alert follows it); $DUKA_CONFIG and --config name
   other files; durations take unit suffixes.
2. an invalid value (not a number, out of range) in the environment or in the file, and an
   unknown name in the file never stop a command — a typo must never stop a shop selling — but
   are loud: `duka status` raises "config_invalid" naming the key and the value (and, for the
   file, the line number), `duka config` lists them and exits 1 with ONE stderr line naming
   them; the setting keeps its default.
3. with a bad value in the environment and a misspelt name in duka.conf, every till command
   still works: `duka sell` sells (one warning line on stderr), `duka till` serves and says
   so in its start line, GET /api/status raises the alert.
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


def config_problem_line(cmd, env, needles):
    """`duka config`: exit 1, ONE stderr line naming every needle; stdout still the settings."""
    rc, out, err = run(cmd, env=env)
    lines = [l for l in err.split("\n") if l.strip()]
    check(rc == 1 and len(lines) == 1 and all(n in err for n in needles),
          "%s with a bad setting: want exit 1 and one stderr line naming %r; got exit %s, "
          "stderr %r" % (" ".join(cmd[:1]), needles, rc, err))
    check(out.strip() != "", "duka config printed nothing on stdout despite a bad setting")
    return lines[0]


def config_alert(db, env, needles):
    """`duka status --json` exits 0 and raises config_invalid naming every needle."""
    st = status_json(db, env=env)
    alerts = [a for a in st["alerts"] if a["code"] == "config_invalid"]
    check(len(alerts) == 1 and all(n in alerts[0]["message"] for n in needles),
          "duka status: want one config_invalid alert naming %r, got %r" % (needles, st["alerts"]))
    return alerts[0]["message"]


@suite.test
def invalid_values_are_named_and_change_nothing_else(ctx):
    db = till_db(ctx)
    conf = os.path.join(os.path.dirname(db), "duka.conf")
    # environment: not a number, out of range — the default stays in force
    for value in ("abc", "0", "12x"):
        env = {"OFFLINE_QUEUE_MAX_RETRIES": value}
        needles = ["OFFLINE_QUEUE_MAX_RETRIES", "'%s'" % value, "environment"]
        config_alert(db, env, needles)
        config_problem_line(["config", "--db", db, "--json"], env, needles)
        _, got = config_json_lenient(db, env)
        check_eq(got["OFFLINE_QUEUE_MAX_RETRIES"]["value"], 5, "the default stays in force")
        check_eq(got["OFFLINE_QUEUE_MAX_RETRIES"]["source"], "default", "its source")
    # file: invalid value on line 3 (the good line 2 still counts), an unknown name on line 2
    write(conf, "# settings\nOFFLINE_QUEUE_ALERT_THRESHOLD=5\nOFFLINE_QUEUE_MAX_RETRIES=abc\n")
    needles = ["OFFLINE_QUEUE_MAX_RETRIES", "abc", "line 3"]
    msg = config_alert(db, None, needles)
    log("  duka status, bad value in duka.conf: %s" % msg)
    line = config_problem_line(["config", "--db", db], None, needles)
    log("  duka config, bad value in duka.conf: %s" % line)
    _, settings = config_json_lenient(db)
    check_eq(settings["OFFLINE_QUEUE_ALERT_THRESHOLD"]["value"], 5, "the good line still counts")
    write(conf, "OFFLINE_QUEUE_ALERT_THRESHOLD=5\nOFFLINE_QUEUE_MAX_RETRYS=3\n")
    config_alert(db, None, ["OFFLINE_QUEUE_MAX_RETRYS", "line 2", "unknown"])
    write(conf, "OFFLINE_QUEUE_ALERT_THRESHOLD=-4\n")
    config_alert(db, None, ["OFFLINE_QUEUE_ALERT_THRESHOLD", "-4", "line 1"])
    # A valid environment value does not hide an invalid file value.
    write(conf, "CONNECTIVITY_CHECK_INTERVAL=often\n")
    config_alert(db, {"CONNECTIVITY_CHECK_INTERVAL": "10s"}, ["CONNECTIVITY_CHECK_INTERVAL", "often"])
    os.unlink(conf)
    st = status_json(db)
    check("config_invalid" not in alert_codes(st), "the alert goes once the config is fixed: %r"
          % st["alerts"])
    rc, _, err = run(["config", "--db", db])
    check_eq(rc, 0, "duka config once fixed (stderr %r)" % err)


def config_json_lenient(db, env=None):
    """`duka config --json` whatever its exit code (1 while settings are ignored)."""
    rc, out, err = run(["config", "--db", db, "--json"], env=env)
    r = json.loads(out)
    return r, {s["name"]: s for s in r["settings"]}


@suite.test
def a_bad_setting_never_stops_selling(ctx):
    biz = setup_business(ctx.tmp, free_port())
    db = biz.tills["T01"]
    conf = os.path.join(os.path.dirname(db), "duka.conf")
    write(conf, "OFFLINE_QUEUE_RETRYS=3\n")
    env = {"OFFLINE_QUEUE_BATCH_SIZE": "abc"}
    needles = ["OFFLINE_QUEUE_BATCH_SIZE", "abc", "OFFLINE_QUEUE_RETRYS", "line 1"]
    port = free_port()
    # duka sell sells, and says what it ignored, in one line.
    rc, out, err = run(["sell", "--db", db, "SUGAR1KG", "--json"], env=env)
    lines = [l for l in err.split("\n") if l.strip()]
    check(rc == 0 and len(lines) == 1 and all(n in err for n in needles) and "warning" in err,
          "duka sell with bad settings: want exit 0 (sold) and one warning line naming them; got "
          "exit %s, stderr %r" % (rc, err))
    sold = json.loads(out)
    check(sold.get("receipt_no", "").startswith("T01-"), "duka sell sold: %r" % sold)
    # every other till command works as well
    cmds = [
        ["sync", "--db", db, "--json"],
        ["status", "--db", db, "--json"],
        ["queue", "--db", db, "--json"],
        ["queue", "retry", "--db", db, "--all-failed", "--json"],
        ["history", "--db", db, "--json"],
        ["catalog", "--db", db, "--json"],
        ["receipt", "--db", db, sold["receipt_no"], "--json"],
    ]
    failures = []
    for cmd in cmds:
        rc, out, err = run(cmd, env=env, timeout=30)
        if rc != 0:
            failures.append("duka %s: exit %s, stderr %r" % (" ".join(cmd[:2]), rc, err.strip()))
    check(not failures, "with bad settings, want every till command to work; got:\n  "
          + "\n  ".join(failures))
    # the service starts, names the problem in its start line, and the status shows it
    from harness import Till
    till = Till(db, port, env=env).start()
    log_text = till.log_tail(4000)
    check("WARNING" in log_text and all(n in log_text for n in needles),
          "duka till start line must name the ignored settings: %r" % log_text)
    st = till.status()
    check("config_invalid" in alert_codes(st), "GET /api/status alerts: %r" % st["alerts"])
    body = till.sale("SUGAR1KG")
    check(body["receipt_no"].startswith("T01-"), "an API sale with bad settings: %r" % body)
    # the default batch size was used for the sync
    r, settings = config_json_lenient(db, env)
    check_eq(settings["OFFLINE_QUEUE_BATCH_SIZE"]["value"], 500, "batch size in force")
    check(r["problem_count"] == 2, "duka config --json problem_count: %r" % r.get("problems"))


if __name__ == "__main__":
    suite.main()
