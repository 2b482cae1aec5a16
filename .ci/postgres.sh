#!/usr/bin/env bash
# A throwaway PostgreSQL for the shared-study tests (tests/test_tune_shared.py), on loopback and a free port.
#   .ci/postgres.sh start [--install]   prints two lines, the URL (HARDSIGHT_TEST_POSTGRES) and the cluster's folder;
#                                       --install: apt-get install postgresql where there is none
#   .ci/postgres.sh stop DIR            stops that cluster and removes its folder
# It never fails its caller: without PostgreSQL it prints nothing (and says why on stderr), and the tests skip.
set -uo pipefail

say() { echo "postgres.sh: $*" >&2; }

bin_dir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

as_owner() {  # initdb and postgres refuse root: run them as an unprivileged user
    if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

owner() {
    if [ "$(id -u)" != 0 ]; then id -un; return; fi
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres >&2 || return 1
    echo postgres
}

start() {
    local bin
    bin=$(bin_dir)
    if [ -z "$bin" ] && [ "${1:-}" = --install ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2 \
            || say "could not install postgresql"
        bin=$(bin_dir)
    fi
    [ -n "$bin" ] || { say "no PostgreSQL server (initdb) found: the PostgreSQL tests will be skipped"; return 0; }
    PG_USER=$(owner) || { say "no unprivileged user to run PostgreSQL"; return 0; }
    local dir port pw
    dir=$(mktemp -d "${TMPDIR:-/tmp}/hardsight-pg.XXXXXX") && chmod 755 "$dir" || return 0
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    pw="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s\n' "$pw" > "$dir/pwfile"
    mkdir "$dir/data" && chown -R "$PG_USER" "$dir" 2>/dev/null
    if ! as_owner "$bin/initdb" -D "$dir/data" -U hardsight --pwfile="$dir/pwfile" --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --no-sync >"$dir/initdb.log" 2>&1; then
        say "initdb failed: $(tail -n 3 "$dir/initdb.log")"; rm -rf "$dir"; return 0
    fi
    rm -f "$dir/pwfile"
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            >&2; then
        say "the server did not start: $(tail -n 3 "$dir/server.log")"; rm -rf "$dir"; return 0
    fi
    if ! PGPASSWORD=$pw "$bin/createdb" -h 127.0.0.1 -p "$port" -U hardsight hardsight >&2; then
        say "createdb failed"; stop "$dir"; return 0
    fi
    echo "postgresql+psycopg://hardsight:$pw@127.0.0.1:$port/hardsight"
    echo "$dir"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR} bin
    bin=$(bin_dir)
    PG_USER=$(owner) || true
    [ -n "$bin" ] && [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
    case "$dir" in */hardsight-pg.*) rm -rf "$dir" ;; esac
    return 0
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) say "usage: $0 start [--install] | stop DIR"; exit 0 ;;
esac
exit 0
