#!/usr/bin/env python3
"""Several hubs behind nginx (issue 5, item 2): the deployment in deploy/nginx/duka-hubs.conf,
run for real. Two `duka hub` processes over one PostgreSQL, nginx in front terminating TLS
with the project's config file (only its addresses and certificate paths substituted), two
tills syncing through nginx over HTTPS with their CA file.

- Sales of both tills reach the hub through nginx, each once.
- One hub is SIGKILLed: nginx takes it out and sends the pushes to the other (even a push that
  was in flight: the config retries it on the other hub, which is safe because the hubs apply
  each command id once); the tills keep syncing; every sale printed is at the hub exactly once.

Run under tests/pg/run_with_pg.sh (DUKA_E2E_HUB_DB=pg; CTest does both). nginx comes from
Debian's nginx-light (scripts/deps.sh installs it).
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from harness import (Hub, Suite, assert_hub_has_exactly, check, free_port, log,  # noqa: E402
                     make_cert, port_accepts, run_ok, sell_many, setup_business, sync_until_ok,
                     wait_for)

suite = Suite("pg_nginx")
NGINX = os.environ.get("DUKA_NGINX", "/usr/sbin/nginx")
CONF = os.path.join(ROOT, "deploy", "nginx", "duka-hubs.conf")
HUB_ENV = {"HUB_CONNECTIONS_PER_IP": "0"}  # behind a proxy every till has nginx's address


def render(ctx, hub_ports, port, cert, key):
    """The project's config with this test's addresses and paths, inside a minimal nginx.conf
    whose files all live in the test's folder."""
    text = open(CONF).read()
    for default, real in (("127.0.0.1:7101", hub_ports[0]), ("127.0.0.1:7102", hub_ports[1])):
        check(default in text, "%s names %s" % (CONF, default))
        text = text.replace(default, "127.0.0.1:%d" % real)
    text, n = re.subn(r"listen 8443 ssl;", "listen 127.0.0.1:%d ssl;" % port, text)
    check(n == 1, "%s listens on 8443 ssl" % CONF)
    text = text.replace("/etc/duka/hub.crt", cert).replace("/etc/duka/hub.key", key)
    site = ctx.path("duka-hubs.conf")
    with open(site, "w") as f:
        f.write(text)
    d = ctx.tmp
    main = ctx.path("nginx.conf")
    with open(main, "w") as f:
        f.write("""%(user)sdaemon off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/nginx-error.log info;
events { worker_connections 256; }
http {
    access_log %(d)s/nginx-access.log;
    client_body_temp_path %(d)s/nginx-body;
    proxy_temp_path %(d)s/nginx-proxy;
    fastcgi_temp_path %(d)s/nginx-fastcgi;
    uwsgi_temp_path %(d)s/nginx-uwsgi;
    scgi_temp_path %(d)s/nginx-scgi;
    include %(site)s;
}
""" % {"d": d, "site": site, "user": "user root;\n" if os.geteuid() == 0 else ""})
    return main


@suite.test
def tills_sync_through_nginx_and_survive_a_hub_dying(ctx):
    check(os.access(NGINX, os.X_OK), "nginx not found at %s (scripts/deps.sh installs "
          "nginx-light; DUKA_NGINX names another)" % NGINX)
    biz = setup_business(ctx.tmp, free_port(), terminals=["T01", "T02"], hub_env=HUB_ENV)
    hub_b = Hub(biz.hub_db, free_port(), logdir=ctx.tmp, env=HUB_ENV).start()
    cert, key = make_cert(ctx)
    port = free_port()
    main = render(ctx, [biz.hub.port, hub_b.port], port, cert, key)
    test = subprocess.run([NGINX, "-t", "-p", ctx.tmp, "-c", main], capture_output=True,
                          text=True)
    check(test.returncode == 0, "nginx -t: %s" % test.stderr.strip())
    nginx = subprocess.Popen([NGINX, "-p", ctx.tmp, "-c", main], start_new_session=True,
                             stdout=open(ctx.path("nginx.out.log"), "w"),
                             stderr=subprocess.STDOUT)
    ctx.on_cleanup(lambda: (nginx.poll() is None and nginx.kill(), nginx.wait(timeout=15)))
    wait_for(lambda: port_accepts(port), 15, "nginx listening on %d" % port)
    url = "https://127.0.0.1:%d" % port
    for t, db in sorted(biz.tills.items()):
        run_ok(["till", "init", "--db", db, "--hub", url, "--terminal", t,
                "--token", biz.tokens[t], "--ca-file", cert])

    printed = []
    for t, db in sorted(biz.tills.items()):
        printed += [r["receipt_no"] for r in sell_many(db, 60, label=t + ": ")]
        sync_until_ok(db)
    assert_hub_has_exactly(biz, printed, "through nginx: ")
    log("  both tills synced through nginx to two hubs")

    biz.hub.kill()  # SIGKILL: nginx must route around it
    for t, db in sorted(biz.tills.items()):
        printed += [r["receipt_no"] for r in sell_many(db, 60, label=t + " (one hub dead): ")]
        sync_until_ok(db)
    assert_hub_has_exactly(biz, printed, "with one hub dead: ")
    log("  one hub SIGKILLed: the other took every push; each sale once")
    nginx.terminate()
    nginx.wait(timeout=15)
    hub_b.stop()


if __name__ == "__main__":
    suite.main()
