#!/usr/bin/env bash
# `agentflow bench dispatch` on SQLite and on PostgreSQL 15 — with a synchronous standby and
# without — side by side in one sitting (issue 21 item 5). A throw-away PostgreSQL primary and
# standby (tools/pg-test-cluster.sh) live under a temporary directory and are removed at the end.
#
#   tools/bench-dispatch-pg.sh [bench dispatch options, e.g. --jobs 4 --subtasks 5000]
#
# AGENTFLOW: the binary (default .build/release/agentflow). ROUNDS: runs of each (default 1),
# interleaved, so a noisy machine hits all three alike. STANDBY_COMMIT: the synchronous_commit
# levels to run with the standby (default `on`; e.g. "on remote_write remote_apply"), each a run
# of its own in every round. Each run prints the load average just before it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/pgtest.sh
source tools/pgtest.sh
AGENTFLOW=${AGENTFLOW:-.build/release/agentflow}
ROUNDS=${ROUNDS:-1}
STANDBY_COMMIT=${STANDBY_COMMIT:-on}
for level in $STANDBY_COMMIT; do
    case "$level" in on|remote_write|remote_apply) ;; *) echo "STANDBY_COMMIT: $level is not on, remote_write or remote_apply" >&2; exit 2 ;; esac
done
[ -x "$AGENTFLOW" ] || { echo "no $AGENTFLOW: swift build -c release first" >&2; exit 2; }
root=$(mktemp -d /tmp/af-bench-pg.XXXXXX)
chmod 755 "$root"  # the servers run as another user (tools/pgtest.sh), who must reach $root/pg
trap 'tools/pg-test-cluster.sh stop "$root/pg" >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
tools/pg-test-cluster.sh start "$root/pg" --standby --owner $$ >"$root/env"
# shellcheck disable=SC1091
source "$root/env"
n=0
url=''
database() {  # a fresh database; its URL in $url (not in a subshell: the count must go up)
    n=$((n + 1))
    pg_sql "$root/pg/primary" "CREATE DATABASE bench$n OWNER agentflow" >/dev/null
    url="postgres://agentflow@127.0.0.1:$PG_PRIMARY_PORT/bench$n?passfile=$PGPASSFILE"
}
standby() {  # off | on|remote_write|remote_apply: whether, and how far, every commit waits for the standby
    local names='' level=on
    [ "$1" != off ] && names=afstandby && level=$1
    pg_sql "$root/pg/primary" "ALTER SYSTEM SET synchronous_standby_names = '$names'" >/dev/null
    pg_sql "$root/pg/primary" "ALTER SYSTEM SET synchronous_commit = '$level'" >/dev/null
    pg_sql "$root/pg/primary" "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    [ "$1" = off ] || pg_wait_sync "$root/pg" afstandby sync
}
load() { echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }
what() {
    case "$1" in
    on) echo "waits for the standby's fsync" ;;
    remote_write) echo "waits for the standby's write, not its fsync" ;;
    remote_apply) echo "waits until the standby has applied it (readable there)" ;;
    esac
}
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round: SQLite (synchronous=FULL, fsync per commit)"
    load
    "$AGENTFLOW" bench dispatch "$@"
    echo "== round $round: PostgreSQL 15, no standby (fsync per commit)"
    standby off
    load
    database
    "$AGENTFLOW" bench dispatch --database "$url" "$@"
    for level in $STANDBY_COMMIT; do
        echo "== round $round: PostgreSQL 15, synchronous standby, synchronous_commit = $level (fsync; $(what "$level"))"
        standby "$level"
        load
        database
        "$AGENTFLOW" bench dispatch --database "$url" "$@"
    done
done
