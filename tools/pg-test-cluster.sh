#!/usr/bin/env bash
# A throw-away PostgreSQL 15 for tests and benchmarks, on loopback ports free at the time:
#
#   tools/pg-test-cluster.sh start DIR [--standby] [--tls] [--owner PID]   # prints KEY=VALUE lines (also in DIR/env)
#   tools/pg-test-cluster.sh stop DIR                        # stops the servers, removes DIR
#
# start: a primary in DIR/primary (role and database `agentflow`, its password only in
# DIR/pgpass); --standby: a streaming standby from pg_basebackup that the primary waits for on
# every commit (synchronous_standby_names, synchronous_commit = on); --tls: TLS on, with a CA
# in DIR/tls/ca.crt. Printed: PGURL (postgres://agentflow@127.0.0.1:PORT/agentflow),
# PGPASSFILE, PG_PRIMARY_PORT, PG_STANDBY_PORT, PG_CA. DIR must not exist yet (its name is the
# caller's unique id); everything lives in it, so `stop` leaves nothing behind. --owner PID:
# when that process ends (a test run, even one killed), the servers are stopped and DIR removed.
set -euo pipefail
# shellcheck source=tools/pgtest.sh
source "$(dirname "${BASH_SOURCE[0]}")/pgtest.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [--standby] [--tls]" >&2; exit 2; }
shift 2
case "$cmd" in
start)
    standby=0
    owner=""
    args=()
    while [ $# -gt 0 ]; do
        if [ "$1" = --owner ]; then args+=("--owner=${2:-}"); shift 2; else args+=("$1"); shift; fi
    done
    for a in "${args[@]}"; do
        case "$a" in
        --standby) standby=1 ;;
        --tls) export PG_TLS=1 ;;
        --owner=*) owner=${a#--owner=} ;;
        *) echo "unknown option $a" >&2; exit 2 ;;
        esac
    done
    [ -e "$dir" ] && { echo "[pgtest] $dir exists already; give a new directory" >&2; exit 2; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # A start that fails leaves nothing running.
    trap 'rc=$?; [ $rc -ne 0 ] && pg_stop "$dir/standby" "$dir/primary"; exit $rc' EXIT
    for try in 1 2 3; do
        port=$(pg_free_port)
        pg_primary "$dir" "$port" 127.0.0.1 && break
        [ "$try" = 3 ] && exit 1
        pg_stop "$dir/primary"; rm -rf "$dir/primary"
    done
    if [ "$standby" = 1 ]; then
        for try in 1 2 3; do
            sport=$(pg_free_port)
            pg_standby "$dir" "$sport" 127.0.0.1 127.0.0.1 "$port" afstandby && break
            [ "$try" = 3 ] && exit 1
            pg_stop "$dir/standby"; rm -rf "$dir/standby"
        done
    fi
    if [ -n "$owner" ]; then
        setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"' reaper "$owner" "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" "$dir" \
            </dev/null >/dev/null 2>&1 &
    fi
    cat "$dir/env"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    pg_stop "$dir/standby" "$dir/primary"
    rm -rf "$dir"
    ;;
*) echo "usage: $0 start|stop DIR [--standby] [--tls]" >&2; exit 2 ;;
esac
