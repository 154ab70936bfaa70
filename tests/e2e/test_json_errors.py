#!/usr/bin/env python3
"""With --json a failure is machine-readable too (issue 10): the one stdout line is
`{"error":{"code":"…","message":"…"}}`, while the exit code (1, or 2 for bad usage) and the one
stderr line stay as they are; the message is that stderr line without its `duka CMD: `. The code
is the stable name of the failure's kind (README, "Errors with --json"). A command that prints
its own object and fails (`duka sync --json` with the hub down) keeps that object and carries the
same {"code","message"} in its "error" member.

Every command whose usage in `duka help` shows [--json] is swept twice — an unknown option, and
a database that does not exist — on top of the cases below with a known code each.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, check_eq, free_port, run, setup_business,  # noqa: E402
                     write_csv)

suite = Suite("json_errors")

CODES = {"usage", "invalid_input", "not_found", "store", "nomem", "offline", "auth", "protocol",
         "limit", "conflict", "busy", "internal"}


def json_failure(args, rc=None, code=None):
    """Runs `duka ARGS` (which holds --json) expecting a failure; checks the contract and
    returns the stdout object."""
    what = "duka " + " ".join(str(a) for a in args)
    got_rc, out, err = run(args)
    check(got_rc in (1, 2), "%s: exit %s, want 1 or 2; stdout %r stderr %r"
          % (what, got_rc, out[:300], err[:300]))
    if rc is not None:
        check_eq(got_rc, rc, "%s: exit code" % what)
    lines = [l for l in err.split("\n") if l.strip()]
    check_eq(len(lines), 1, "%s: stderr lines (%r)" % (what, err[:500]))
    out_lines = out.split("\n")
    check(len(out_lines) == 2 and out_lines[1] == "",
          "%s: stdout must be exactly one line, got %r" % (what, out[:500]))
    try:
        obj = json.loads(out_lines[0])
    except ValueError:
        raise AssertionError("%s: stdout is not JSON: %r" % (what, out[:300]))
    check(isinstance(obj, dict), "%s: stdout is not an object: %r" % (what, obj))
    e = obj.get("error")
    check(isinstance(e, dict) and set(e) == {"code", "message"},
          "%s: error must be {\"code\",\"message\"}: %r" % (what, obj))
    check(e["code"] in CODES, "%s: unknown code %r" % (what, e["code"]))
    check(isinstance(e["message"], str) and e["message"], "%s: empty message" % what)
    check_eq(e["code"] == "usage", got_rc == 2, "%s: code usage exactly when exit 2 (%r)"
             % (what, e))
    check(re.match(r"^duka(?: [a-z]+){0,3}: ", lines[0]) and  # "duka hub outbox retry: "
          lines[0].split(": ", 1)[1] == e["message"],
          "%s: stderr %r is not `duka …: ` + the message %r" % (what, lines[0], e["message"]))
    if code is not None:
        check_eq(e["code"], code, "%s: error code (message %r)" % (what, e["message"]))
    return obj


def json_commands():
    """The command names whose usage in `duka help` shows [--json]."""
    rc, out, _ = run(["help"])
    check_eq(rc, 0, "duka help")
    usages = []
    for l in out.split("\n"):
        if l.startswith("  duka "):
            usages.append(l.strip())
        elif l.startswith("   ") and usages:
            usages[-1] += " " + l.strip()
    names = []
    for u in usages:
        if "--json" not in u:
            continue
        words = []
        for w in u.split()[1:]:
            if w.startswith(("-", "[")) or not w.isalpha() or w.isupper():
                break
            words.append(w)
        names.append(words)
    check(len(names) >= 12, "duka help lists too few --json commands: %r" % names)
    return names


@suite.test
def every_json_command_fails_in_json(ctx):
    missing = ctx.path("missing.db")
    for words in json_commands():
        json_failure(words + ["--no-such-option", "--json"], rc=2, code="usage")
        json_failure(words + ["--json", "--no-such-option"], rc=2, code="usage")
        if words == ["config"]:
            continue  # shows the defaults for a database that does not exist yet: no failure
        obj = json_failure(words + ["--db", missing, "--json"])
        check(obj["error"]["code"] in ("not_found", "usage"),
              "duka %s --db MISSING: %r" % (" ".join(words), obj))
        check(not os.path.exists(missing), "duka %s created %s" % (" ".join(words), missing))


@suite.test
def failures_carry_their_code(ctx):
    biz = setup_business(ctx.tmp, free_port())
    till, hub_db, b = biz.tills["T01"], biz.hub_db, biz.business_id
    bad_csv = write_csv(ctx.path("bad.csv"), ["X1,Thing,abc,B,1,Misc"])
    junk = ctx.path("junk.db")
    with open(junk, "wb") as f:
        f.write(b"not a database at all" * 100)
    bad_conf = ctx.path("bad.conf")
    with open(bad_conf, "w") as f:
        f.write("OFFLINE_QUEUE_BATCH_SIZE=abc\n")
    cases = [
        (["bogus", "--json"], 2, "usage"),
        (["device", "--json"], 2, "usage"),
        (["hub", "init", "--db", ctx.path("new.db"), "--json"], 2, "usage"),
        (["hub", "audit", "--db", hub_db, "--limit", "0", "--json"], 2, "usage"),
        (["sell", "--db", till, "NOSUCHSKU", "--json"], 1, "invalid_input"),
        (["sell", "--db", till, "SUGAR1KG*abc", "--json"], 1, "invalid_input"),
        (["status", "--db", ctx.path("nope.db"), "--json"], 1, "not_found"),
        (["catalog", "--db", junk, "--json"], 1, "store"),
        (["queue", "retry", "--db", till, "no-such-item", "--json"], 1, "not_found"),
        (["config", "--config", bad_conf, "--json"], 1, "invalid_input"),
        (["hub", "report", "--db", hub_db, "--business", "no-such-business", "--json"], 1,
         "not_found"),
        (["device", "add", "--db", hub_db, "--business", "no-such-business", "--terminal", "T9",
          "--json"], 1, "not_found"),
        (["product", "import", "--db", hub_db, "--business", b, bad_csv, "--json"], 1,
         "invalid_input"),
        (["till", "init", "--db", ctx.path("t2.db"), "--hub", biz.hub_url, "--terminal", "T01",
          "--token", "duka1.1.wrong", "--json"], 1, "auth"),
    ]
    for args, rc, code in cases:
        json_failure(args, rc=rc, code=code)


@suite.test
def sync_keeps_its_object_with_the_error_inside(ctx):
    biz = setup_business(ctx.tmp, free_port())
    till = biz.tills["T01"]
    biz.hub.stop()
    obj = json_failure(["sync", "--db", till, "--json"], rc=1, code="offline")
    for k in ("pushed", "pulled", "failed", "conflicts", "duration_ms", "connectivity"):
        check(k in obj, "duka sync --json keeps %r beside the error: %r" % (k, obj))
    check_eq(obj["connectivity"], "offline", "connectivity of a failed sync")


@suite.test
def success_is_unchanged(ctx):
    biz = setup_business(ctx.tmp, free_port())
    rc, out, err = run(["sell", "--db", biz.tills["T01"], "SUGAR1KG", "--json"])
    check_eq(rc, 0, "duka sell --json exit code (stderr %r)" % err)
    obj = json.loads(out)
    check("error" not in obj and obj.get("sync") == "pending", "a sale's object: %r" % obj)
    rc, out, err = run(["sync", "--db", biz.tills["T01"], "--json"])
    check_eq(rc, 0, "duka sync --json exit code (stderr %r)" % err)
    obj = json.loads(out)
    check("error" not in obj and obj.get("pushed") == 1, "a sync's object: %r" % obj)


if __name__ == "__main__":
    suite.main()
