#!/usr/bin/env python3
"""`duka help` and the words that start several commands (issue 10).

- `duka help bogus` is bad usage: exit 2, one line `duka: unknown command 'bogus' (see: duka
  help)`, nothing on stdout.
- A first word that only starts multi-word commands (`duka device`, `duka product`) lists its
  subcommands in one line and exits 2; `duka help device` (and `duka device --help`) prints the
  usage of each `device …` command and exits 0. A word that is a command of its own as well
  (`duka hub`, `duka till`, `duka queue`) still runs that command.
- The groups are derived from `duka help`'s own list, so commands added later are covered.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, check, check_eq, expect_error, run  # noqa: E402

suite = Suite("help")


def usages():
    """The usage lines `duka help` lists, as word lists without `duka` (continuation lines of a
    long usage are folded into the line before)."""
    rc, out, err = run(["help"])
    check_eq(rc, 0, "duka help exit code")
    lines = []
    for l in out.split("\n"):
        if l.startswith("  duka "):
            lines.append(l.strip())
        elif l.startswith("   ") and lines:
            lines[-1] += " " + l.strip()
    check(len(lines) >= 10, "duka help lists too few commands: %r" % out[:500])
    return lines


def command_names(lines):
    """"duka device add --db DB …" -> "device add" (the words before the first option)."""
    names = []
    for l in lines:
        words = []
        for w in l.split()[1:]:
            if w.startswith(("-", "[")) or w.isupper() or not w.isalpha():
                break
            words.append(w)
        names.append(" ".join(words))
    return names


def groups(names):
    """first word -> (is a command itself, [second words])."""
    g = {}
    for n in names:
        first, _, second = n.partition(" ")
        single, subs = g.get(first, (False, []))
        if second:
            subs = subs + [second]
        else:
            single = True
        g[first] = (single, subs)
    return {k: v for k, v in g.items() if v[1]}


@suite.test
def help_of_an_unknown_command_is_bad_usage(ctx):
    for args, name in ((["help", "bogus"], "bogus"), (["help", "device", "bogus"], "device bogus"),
                       (["bogus"], "bogus")):
        line = expect_error(args, rc=2)
        check_eq(line, "duka: unknown command '%s' (see: duka help)" % name,
                 "stderr of duka %s" % " ".join(args))
        rc, out, _ = run(args)
        check_eq(out, "", "stdout of duka %s" % " ".join(args))


@suite.test
def a_group_word_lists_its_subcommands(ctx):
    lines = usages()
    g = groups(command_names(lines))
    check("device" in g and "product" in g and "hub" in g, "groups found: %r" % sorted(g))
    for first, (single, subs) in sorted(g.items()):
        if single:
            continue  # `duka hub` is the hub itself; tested below
        for args in ([first], [first, "bogus"], [first, "--db", "x.db"]):
            line = expect_error(args, rc=2)
            for s in subs:
                check(s in line, "duka %s: %r does not name subcommand %r"
                      % (" ".join(args), line, s))
            check("duka help %s" % first in line,
                  "duka %s: %r does not point to duka help %s" % (" ".join(args), line, first))
            check(line.startswith("duka %s: " % first), "duka %s: %r" % (" ".join(args), line))
        check("unknown subcommand 'bogus'" in expect_error([first, "bogus"], rc=2),
              "duka %s bogus names the bogus word" % first)


@suite.test
def help_of_a_group_lists_every_usage(ctx):
    lines = usages()
    names = command_names(lines)
    g = groups(names)
    for first, (single, subs) in sorted(g.items()):
        want = [l for l, n in zip(lines, names) if n == first or n.startswith(first + " ")]
        for args in (["help", first], [first, "--help"] if not single else ["help", first]):
            rc, out, err = run(args)
            check_eq(rc, 0, "duka %s exit code" % " ".join(args))
            check_eq(err, "", "duka %s stderr" % " ".join(args))
            folded = " ".join(out.split())
            for w in want:
                check(" ".join(w.split()) in folded,
                      "duka %s does not show %r; it printed %r" % (" ".join(args), w, out[:800]))


@suite.test
def help_with_json_and_too_many_words(ctx):
    rc, out, err = run(["help", "bogus", "--json"])
    check_eq((rc, out), (2, '{"error":{"code":"usage","message":"unknown command \'bogus\' '
                            '(see: duka help)"}}\n'), "duka help bogus --json")
    check("give one command" in expect_error(["help", "device", "add", "more"], rc=2),
          "duka help with three words is bad usage")


@suite.test
def one_command_help_is_unchanged(ctx):
    rc, out, _ = run(["help", "device", "add"])
    check_eq(rc, 0, "duka help device add exit code")
    check(out.startswith("usage: duka device add "), "duka help device add: %r" % out[:200])
    rc, out2, _ = run(["device", "add", "--help"])
    check_eq((rc, out2), (0, out), "duka device add --help is duka help device add")
    rc, out, _ = run(["help"])
    check(rc == 0 and "Commands:" in out, "duka help prints the overview")


@suite.test
def a_word_that_is_also_a_command_still_runs_it(ctx):
    # `duka hub` serves (it needs --db and --listen); `duka queue` lists a till's queue.
    check("--db is required" in expect_error(["hub"], rc=2), "duka hub is still the hub")
    check("--db is required" in expect_error(["queue"], rc=2), "duka queue is still queue")
    check("--db is required" in expect_error(["till"], rc=2), "duka till is still the till")


if __name__ == "__main__":
    suite.main()
