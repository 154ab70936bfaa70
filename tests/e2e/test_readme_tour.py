#!/usr/bin/env python3
"""README.md's "A five-minute tour" is true: its ```sh block runs, line by line, in a temp dir
with bash (issue 10: its `kill %2` killed the till, not the hub, and nothing checked it).

How the block is read, so that lines added later in the same style are checked too:
- a command is a line, or a line and its `\\` continuations, or a here-document up to its end
  word; blank lines and comment lines are skipped;
- its trailing comment may say `exit N`: the command must exit N; otherwise it must exit 0;
- text in backticks in that comment must appear in what the command prints (stdout and
  stderr together);
- `make` lines are skipped (the binary is built: $DUKA_BIN), `D=…` becomes D=$DUKA_BIN, and the
  addresses 127.0.0.1:8081 and :8080 become free ports;
- job specs (`kill %2`) are refused: a terminal reuses job numbers as jobs end and a script
  does not, so the same line stops different processes (the tour's `kill %2` stopped the till
  it meant to keep); use PIDs (`& HUB_PID=$!`, `kill $HUB_PID`);
- a human types slower than a script: after a command that starts a server in the background
  (`… --listen ADDR &`) the test waits until ADDR accepts connections, and after `kill $PID`
  until that process has exited.
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (REPO, SLOWDOWN, Suite, check, child_env, duka_bin, free_port,  # noqa: E402
                     kill_group_leftovers, log)

suite = Suite("readme_tour")

HEREDOC_RE = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


def tour_block():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    at = text.find("## A five-minute tour")
    check(at >= 0, "README.md has no section 'A five-minute tour'")
    m = re.search(r"^```sh\n(.*?)^```", text[at:], re.S | re.M)
    check(m, "the tour has no ```sh block")
    return m.group(1).split("\n")


def split_comment(line):
    """(code, comment) of one shell line: the comment starts at a # outside quotes that begins
    a word."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def commands(lines):
    """The tour's commands: dicts with text (what bash runs), first (its first line, for
    messages), expect_rc and promises."""
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        code, comment = split_comment(line)
        text = [line]
        while code.endswith("\\") and i < len(lines):
            text.append(lines[i])
            code, more = split_comment(lines[i])
            comment = (comment + " " + more).strip()
            i += 1
        h = HEREDOC_RE.search(split_comment(text[0])[0])
        if h:
            while i < len(lines):
                text.append(lines[i])
                i += 1
                if text[-1].strip() == h.group(2):
                    break
        m = re.search(r"\bexit (\d+)\b", comment)
        out.append({"text": "\n".join(text), "first": text[0].strip(),
                    "expect_rc": int(m.group(1)) if m else 0,
                    "promises": re.findall(r"`([^`]+)`", comment)})
    return out


def substitute(cmd, duka, hub_port, till_port):
    """The tour's command as this test runs it (None: skipped)."""
    first = cmd["first"]
    if first == "make" or first.startswith("make "):
        return None
    text = cmd["text"]
    if re.match(r"^D=\S+", first):
        text = re.sub(r"^D=\S+", "D=" + shlex.quote(duka), text)
    for host in ("127.0.0.1", "localhost"):
        text = text.replace(host + ":8081", "127.0.0.1:%d" % hub_port)
        text = text.replace(host + ":8080", "127.0.0.1:%d" % till_port)
    return text


def script_for(cmds, duka, hub_port, till_port, results):
    """A bash script that runs each command with its output in results/out.N and its exit
    status in results/rc.N, and waits where a human would have."""
    parts = ['''
__wait_listen() {  # until HOST:PORT accepts a connection, at most ~%d s
  local host=${1%%:*} port=${1##*:} i
  for ((i = 0; i < %d; i++)); do
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "tour: nothing listens on $1" >&2; return 1
}
''' % (int(20 * SLOWDOWN), int(400 * SLOWDOWN))]
    for n, cmd in enumerate(cmds):
        text = substitute(cmd, duka, hub_port, till_port)
        if text is None:
            continue
        parts.append('echo %d >"%s/started"' % (n, results))
        parts.append('exec >"%s/out.%d.log" 2>&1' % (results, n))
        parts.append(text)
        parts.append('echo $? >"%s/rc.%d"' % (results, n))
        code = split_comment(cmd["first"])[0]
        listen = re.search(r"--listen\s+(\S+)", code)
        if listen and re.search(r"&(\s|$)", code):
            parts.append("__wait_listen %s" % listen.group(1))
        if re.match(r"^kill\s", code):
            pids = [w for w in code.split()[1:] if w.startswith("$") or w.isdigit()]
            if pids:
                parts.append("wait %s 2>/dev/null" % " ".join(pids))
    return "\n".join(parts) + "\n"


@suite.test
def the_tour_runs_as_written(ctx):
    cmds = commands(tour_block())
    check(len(cmds) >= 20, "the tour has only %d commands" % len(cmds))
    check(any(c["expect_rc"] == 1 for c in cmds), "the tour has no `# exit 1` line")
    check(sum(len(c["promises"]) for c in cmds) >= 5, "the tour promises fewer than 5 outputs")
    jobspecs = [c["first"] for c in cmds if re.search(r"(^|\s)%\d", split_comment(c["text"])[0])]
    check(not jobspecs, "the tour uses job specs, which mean other jobs in a terminal than in a "
          "script: %r" % jobspecs)
    hub_port, till_port = free_port(), free_port()
    results = ctx.path("results")
    os.mkdir(results)
    work = ctx.path("work")
    os.mkdir(work)
    script = script_for(cmds, duka_bin(), hub_port, till_port, results)
    with open(ctx.path("tour.sh"), "w") as f:
        f.write(script)
    env = child_env({"TMPDIR": work})  # the tour's mktemp -d lands in the test's folder
    p = subprocess.Popen(["bash", ctx.path("tour.sh")], cwd=work, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(ctx.path("bash-stderr.txt"), "wb"), start_new_session=True)
    try:
        p.wait(timeout=240 * SLOWDOWN)
    except subprocess.TimeoutExpired:
        started = open(os.path.join(results, "started")).read().strip()
        raise AssertionError("the tour hung at command %s: %r" % (started, cmds[int(started)]
                                                                   ["first"]))
    finally:
        try:
            os.killpg(p.pid, signal.SIGTERM)  # whatever the tour left running
            time.sleep(0.5)
        except ProcessLookupError:
            pass
        kill_group_leftovers(p)
    problems = []
    ran = 0
    for n, cmd in enumerate(cmds):
        if substitute(cmd, duka_bin(), hub_port, till_port) is None:
            continue
        ran += 1
        try:
            rc = int(open(os.path.join(results, "rc.%d" % n)).read())
        except (OSError, ValueError):
            problems.append("%r: did not run (the tour stopped before it)" % cmd["first"])
            continue
        with open(os.path.join(results, "out.%d.log" % n), errors="replace") as f:
            out = f.read()
        if rc != cmd["expect_rc"]:
            problems.append("%r: exit %d, the tour says %d; it printed %r"
                            % (cmd["first"], rc, cmd["expect_rc"], out[-600:]))
        for promise in cmd["promises"]:
            if promise not in out:
                problems.append("%r: does not print %r; it printed %r"
                                % (cmd["first"], promise, out[-600:]))
    log("  %d commands of the tour ran; %d outputs checked"
        % (ran, sum(len(c["promises"]) for c in cmds)))
    check(not problems, "the README tour is not true:\n  " + "\n  ".join(problems))


@suite.test
def the_reader_splits_lines_as_documented(ctx):
    """The rules above, on a made-up block, so a tour line in the same style is read right."""
    cmds = commands([
        "make",
        "# a comment line",
        "X=$(echo 'a # not a comment')     # `a # not`",
        "cat > f <<'EOF'",
        "line # inside",
        "EOF",
        "false \\",
        "  arg      # exit 1: `nothing`",
        "",
    ])
    got = [(c["first"], c["expect_rc"], c["promises"]) for c in cmds]
    want = [("make", 0, []), ("X=$(echo 'a # not a comment')     # `a # not`", 0, ["a # not"]),
            ("cat > f <<'EOF'", 0, []), ("false \\", 1, ["nothing"])]
    check(got == want, "commands read: %r" % got)
    check(cmds[2]["text"].endswith("EOF") and "line # inside" in cmds[2]["text"],
          "a here-document is one command: %r" % cmds[2]["text"])


if __name__ == "__main__":
    suite.main()
