#!/usr/bin/env python3
"""A shop's build needs only what `duka` links (issue 10). A plain `make` asked scripts/deps.sh
for PostgreSQL, nginx and valgrind and built every test binary.

- `scripts/deps.sh build --dry-run` on a machine with nothing (an empty PATH but for a
  pkg-config that finds no library, no PostgreSQL, no nginx) names the compiler, make, CMake
  and the seven libraries duka links, and none of cmocka, valgrind, python3, PostgreSQL, nginx;
  `test --dry-run` names those too, Node.js, npm and Chromium (the browser tests, issue 11)
  and zbar-tools (the QR codes read back, issue 12); `bench --dry-run` names the build's,
  PostgreSQL, Python, Node.js, npm and Chromium. On
  a machine with the build's tools and libraries, the build mode names nothing; where node,
  npm and chromium are on PATH, neither the test nor the bench mode asks for them again.
- `make -n` (the default target) asks deps.sh for the build mode only and builds only the
  `duka` target; `make -n test` asks for the test mode and builds everything.
- CMake configures without cmocka (and without python3): the unit tests are skipped with a
  message, and the duka target is there.
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, Suite, check, check_eq, log  # noqa: E402

suite = Suite("build_deps", needs_duka=False)

BUILD_PACKAGES = {"gcc", "make", "cmake", "libsqlite3-dev", "libmicrohttpd-dev",
                  "libcurl4-openssl-dev", "libjansson-dev", "libsodium-dev", "libpq-dev",
                  "libqrencode-dev"}
TEST_ONLY = {"libcmocka-dev", "valgrind", "python3", "postgresql-15", "nginx-light", "openssl",
             "curl", "nodejs", "npm", "chromium", "zbar-tools"}
# The bench: PostgreSQL and Python for its PostgreSQL figures, Node.js, npm and Chromium for the
# web UI's (bench/ui_bench.js).
BENCH_ONLY = {"python3", "postgresql-15", "nodejs", "npm", "chromium"}
BUILD_MODULES = ("sqlite3", "libmicrohttpd", "libcurl", "jansson", "libsodium", "libpq",
                 "libqrencode")


def fake_machine(ctx, name, modules=(), tools=()):
    """A PATH holding a pkg-config that finds only `modules` and stand-ins for `tools`."""
    bindir = ctx.path(name, "bin")
    os.makedirs(bindir)
    with open(os.path.join(bindir, "pkg-config"), "w") as f:
        f.write("#!/bin/sh\n# --exists MODULE: found only for the listed ones\n"
                "[ \"$1\" = --exists ] || exit 1\ncase \"$2\" in\n")
        for m in modules:
            f.write("  %s) exit 0 ;;\n" % m)
        f.write("esac\nexit 1\n")
    os.chmod(os.path.join(bindir, "pkg-config"), 0o755)
    for t in tools:
        path = os.path.join(bindir, t)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o755)
    root = ctx.path(name, "root")  # no /usr/lib/postgresql, no /usr/sbin/nginx in it
    os.makedirs(root)
    return {"PATH": bindir, "DUKA_DEPS_ROOT": root, "HOME": ctx.tmp, "LANG": "C"}


def dry_run(env, mode):
    p = subprocess.run(["/bin/bash", os.path.join(REPO, "scripts", "deps.sh"), mode, "--dry-run"],
                       env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    check_eq(p.returncode, 0, "deps.sh %s --dry-run exit code (stderr %r)" % (mode, p.stderr))
    pkgs = [l for l in p.stdout.split("\n") if l]
    check_eq(len(pkgs), len(set(pkgs)), "deps.sh %s --dry-run lists each package once" % mode)
    log("  deps.sh %s --dry-run: %s" % (mode, " ".join(pkgs) or "(nothing)"))
    return set(pkgs)


@suite.test
def build_mode_asks_only_for_what_duka_links(ctx):
    env = fake_machine(ctx, "bare")
    build = dry_run(env, "build")
    check(BUILD_PACKAGES <= build, "build mode on a bare machine misses %s" % (BUILD_PACKAGES - build))
    check(not (build & (TEST_ONLY | BENCH_ONLY)),
          "build mode asks for test-only packages: %s" % (build & (TEST_ONLY | BENCH_ONLY)))
    test = dry_run(env, "test")
    check(BUILD_PACKAGES | TEST_ONLY <= test,
          "test mode on a bare machine misses %s" % ((BUILD_PACKAGES | TEST_ONLY) - test))
    bench = dry_run(env, "bench")
    check(BUILD_PACKAGES | BENCH_ONLY <= bench,
          "bench mode on a bare machine misses %s" % ((BUILD_PACKAGES | BENCH_ONLY) - bench))
    # No argument is the build mode.
    p = subprocess.run(["/bin/bash", os.path.join(REPO, "scripts", "deps.sh"), "--dry-run"],
                       env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    check_eq(set(l for l in p.stdout.split("\n") if l), build, "deps.sh --dry-run (no mode)")


@suite.test
def a_machine_that_builds_needs_nothing_more_to_build(ctx):
    env = fake_machine(ctx, "builder", modules=BUILD_MODULES, tools=("cmake", "make", "cc"))
    check_eq(dry_run(env, "build"), set(), "build mode where duka builds")
    test = dry_run(env, "test")
    check_eq(test, TEST_ONLY, "test mode where duka builds")
    check_eq(dry_run(env, "bench"), BENCH_ONLY, "bench mode where duka builds")


@suite.test
def browser_tools_on_path_are_not_asked_for(ctx):
    """Only what is missing: node, npm and chromium already there are not installed again."""
    env = fake_machine(ctx, "browser", modules=BUILD_MODULES,
                       tools=("cmake", "make", "cc", "node", "npm", "chromium"))
    browser = {"nodejs", "npm", "chromium"}
    check_eq(dry_run(env, "test"), TEST_ONLY - browser, "test mode with node, npm, chromium")
    check_eq(dry_run(env, "bench"), BENCH_ONLY - browser, "bench mode with node, npm, chromium")


@suite.test
def bad_mode_is_bad_usage(ctx):
    p = subprocess.run(["/bin/bash", os.path.join(REPO, "scripts", "deps.sh"), "everything"],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    check_eq(p.returncode, 2, "deps.sh everything: exit code (stderr %r)" % p.stderr)


def make_n(target=None):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    args = ["make", "-n", "-C", REPO] + ([target] if target else [])
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    check_eq(p.returncode, 0, "%s exit code (stderr %r)" % (" ".join(args), p.stderr))
    return [l.strip() for l in p.stdout.split("\n") if l.strip()]


@suite.test
def plain_make_builds_only_duka(ctx):
    lines = make_n()
    deps = [l for l in lines if "deps.sh" in l]
    builds = [l for l in lines if l.startswith("cmake --build")]
    check(deps and all(l.split("deps.sh", 1)[1].split()[:1] == ["build"] for l in deps),
          "make asks deps.sh for more than the build: %r" % deps)
    check(builds and all("--target duka" in l and l.endswith("--target duka") for l in builds),
          "make builds more than the duka target: %r" % builds)
    test = make_n("test")
    check(any("deps.sh test" in l for l in test), "make test asks deps.sh for the test mode: %r"
          % [l for l in test if "deps.sh" in l])
    check(any(l.startswith("cmake --build build ") and "--target" not in l for l in test),
          "make test builds every target of the plain build: %r"
          % [l for l in test if l.startswith("cmake --build")])


@suite.test
def cmake_configures_without_cmocka_or_python(ctx):
    """A pkg-config search path that holds every library duka links but not cmocka, and a PATH
    without python3: configure passes, says the unit tests are skipped, and the duka target is
    there without the unit tests'."""
    pcdir = ctx.path("pc")
    os.makedirs(pcdir)
    query = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                           capture_output=True, text=True)
    search = [d for d in query.stdout.strip().split(":") if d]
    copied = set()
    for d in search:
        if not os.path.isdir(d):
            continue
        for f in os.listdir(d):
            if f.endswith(".pc") and f != "cmocka.pc" and f not in copied:
                shutil.copy(os.path.join(d, f), os.path.join(pcdir, f))
                copied.add(f)
    check("cmocka.pc" not in os.listdir(pcdir), "cmocka hidden")
    bindir = ctx.path("bin")
    os.makedirs(bindir)
    for tool in ("cmake", "make", "gmake", "cc", "gcc", "ld", "as", "ar", "ranlib", "pkg-config",
                 "sh", "bash", "uname", "collect2"):
        path = shutil.which(tool)
        if path:
            os.symlink(path, os.path.join(bindir, tool))
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update({"PKG_CONFIG_LIBDIR": pcdir, "PKG_CONFIG_PATH": "", "PATH": bindir})
    build = ctx.path("build")
    p = subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                       env=env, capture_output=True, text=True, timeout=300)
    check_eq(p.returncode, 0, "cmake configure without cmocka (stderr %r)" % p.stderr[-2000:])
    text = p.stdout + p.stderr
    check("cmocka not found" in text, "configure says the unit tests are skipped: %r"
          % text[-1500:])
    p = subprocess.run(["cmake", "--build", build, "--target", "help"], env=env,
                       capture_output=True, text=True, timeout=120)
    targets = {l.split()[-1] for l in p.stdout.split("\n") if l.startswith("... ")}
    check("duka" in targets, "the build without cmocka has the duka target: %r" % sorted(targets))
    unit = {f[:-2] for f in os.listdir(os.path.join(REPO, "tests", "unit"))
            if f.startswith("test_") and f.endswith(".c")}
    check(unit and not (unit & targets), "the build without cmocka has unit test targets: %r"
          % sorted(unit & targets))

if __name__ == "__main__":
    suite.main()
