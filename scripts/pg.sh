#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for tests (hiredis' `make check` style): a cluster in DIR, on a
# unix socket in DIR and a free port on 127.0.0.1 only, with the roles a duka deployment has
# (docs/ARCHITECTURE.md, "The PostgreSQL store"):
#
#   duka_owner  owns the database and the tables: runs `duka hub init` (migrations, grants)
#   duka_hub    the role `duka hub` runs as: no DDL, rows only through row-level security
#
#   eval "$(scripts/pg.sh start DIR)"   initdb + start; prints the exports below
#   scripts/pg.sh restart DIR           a fast restart (clients lose their connections)
#   scripts/pg.sh stop DIR              stops it (DIR stays; remove it yourself)
#
# Exports: DUKA_PG_URL (duka_hub), DUKA_PG_ADMIN_URL (duka_owner), DUKA_PG_SUPER_URL (the
# cluster's superuser, over the socket: tests use it to look behind row-level security),
# DUKA_PG_DIR. Passwords are random per cluster; TCP needs them (scram-sha-256), the socket
# trusts its local users. Run as root, everything runs as the `postgres` user (initdb refuses
# root), so DIR is handed to it. Nothing listens beyond 127.0.0.1.
#
# The cluster is thrown away after the tests, and no test pulls its power (the power-loss
# tests are tests/storage, on SQLite), so it runs with fsync off: on a loaded 2-core machine
# every DDL and COMMIT would otherwise wait for the disk. DUKA_PG_FSYNC=on keeps fsync on
# (make bench does: its figures are for a durable database). DUKA_PG_SHARED_BUFFERS sets
# shared_buffers (default 32MB: tests; the bench gives it what a server's would hold).
# The hub itself still asks for synchronous_commit = on in every session.
set -euo pipefail

PGBIN=${DUKA_PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: scripts/pg.sh start|restart|stop DIR" >&2
  exit 2
fi

die() {
  echo "pg.sh: $*" >&2
  exit 1
}

# Runs a PostgreSQL binary as the cluster's user: postgres when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  [ -x "$PGBIN/initdb" ] || die "no PostgreSQL 15 server in $PGBIN (scripts/deps.sh installs postgresql-15)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # The socket path must fit in sun_path (107 bytes).
  [ ${#dir} -le 80 ] || die "DIR '$dir' is too long for a unix socket path (at most 80 characters)"
  [ -e "$dir/data" ] && die "$dir/data exists already: stop and remove it first"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' user (it comes with the postgresql-15 package)"
    chown postgres "$dir"
    chmod 0755 "$dir"
    # Every folder above DIR must let postgres through (mktemp -d makes them 0700).
    local up
    up=$(dirname "$dir")
    while [ "$up" != "/" ]; do
      as_pg test -x "$up" || chmod o+x "$up"
      up=$(dirname "$up")
    done
  fi
  local owner_pw app_pw
  owner_pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  app_pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  # -N: no fsync during initdb (a test cluster); the server itself keeps fsync on.
  as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C -N \
    >"$dir/initdb.log" 2>&1 || die "initdb failed: $(tail -n 3 "$dir/initdb.log")"
  cat >"$dir/data/pg_hba.conf" <<EOF
# throwaway test cluster (scripts/pg.sh): local users over the socket, passwords over TCP
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
EOF
  local port tries=0
  while :; do
    tries=$((tries + 1))
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    cat >"$dir/data/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 60
shared_buffers = ${DUKA_PG_SHARED_BUFFERS:-32MB}
logging_collector = off
log_min_messages = warning
fsync = ${DUKA_PG_FSYNC:-off}
full_page_writes = ${DUKA_PG_FSYNC:-off}
EOF
    if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null 2>&1; then
      break
    fi
    [ $tries -lt 5 ] || die "the server did not start (last port $port): $(tail -n 5 "$dir/server.log")"
  done
  echo "$port" >"$dir/port"
  as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
    >"$dir/setup.log" 2>&1 <<EOF || die "setting up roles failed: $(tail -n 3 "$dir/setup.log")"
CREATE ROLE duka_owner LOGIN PASSWORD '$owner_pw';
CREATE ROLE duka_hub LOGIN PASSWORD '$app_pw';
CREATE DATABASE duka OWNER duka_owner;
EOF
  echo "export DUKA_PG_URL='postgres://duka_hub:$app_pw@127.0.0.1:$port/duka'"
  echo "export DUKA_PG_ADMIN_URL='postgres://duka_owner:$owner_pw@127.0.0.1:$port/duka'"
  echo "export DUKA_PG_SUPER_URL='postgresql:///duka?host=$dir&port=$port&user=postgres'"
  echo "export DUKA_PG_DIR='$dir'"
}

stop() {
  [ -d "$dir/data" ] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

restart() {
  [ -d "$dir/data" ] || die "no cluster in $dir"
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 30 restart \
    >/dev/null 2>&1 || die "restart failed: $(tail -n 5 "$dir/server.log")"
}

case "$cmd" in
start) start ;;
stop) stop ;;
restart) restart ;;
*)
  echo "usage: scripts/pg.sh start|restart|stop DIR" >&2
  exit 2
  ;;
esac
