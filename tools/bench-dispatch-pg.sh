#!/usr/bin/env bash
# `agentflow bench dispatch` on SQLite and on PostgreSQL 15 — with a synchronous standby and
# without — side by side in one sitting (issue 21 item 5). A throw-away PostgreSQL primary and
# standby (tools/pg-test-cluster.sh) live under a temporary directory and are removed at the end.
#
#   tools/bench-dispatch-pg.sh [bench dispatch options, e.g. --jobs 4 --subtasks 5000]
#
# AGENTFLOW: the binary (default .build/release/agentflow). ROUNDS: runs of each (default 1),
# interleaved, so a noisy machine hits all three alike.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/pgtest.sh
source tools/pgtest.sh
AGENTFLOW=${AGENTFLOW:-.build/release/agentflow}
ROUNDS=${ROUNDS:-1}
[ -x "$AGENTFLOW" ] || { echo "no $AGENTFLOW: swift build -c release first" >&2; exit 2; }
root=$(mktemp -d /tmp/af-bench-pg.XXXXXX)
trap 'tools/pg-test-cluster.sh stop "$root/pg" >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
tools/pg-test-cluster.sh start "$root/pg" --standby --owner $$ >"$root/env"
# shellcheck disable=SC1091
source "$root/env"
n=0
database() {  # a fresh database, its URL
    n=$((n + 1))
    pg_sql "$root/pg/primary" "CREATE DATABASE bench$n OWNER agentflow" >/dev/null
    echo "postgres://agentflow@127.0.0.1:$PG_PRIMARY_PORT/bench$n?passfile=$PGPASSFILE"
}
standby() {  # on|off: whether every commit waits for the standby
    local names=''
    [ "$1" = on ] && names=afstandby
    pg_sql "$root/pg/primary" "ALTER SYSTEM SET synchronous_standby_names = '$names'" >/dev/null
    pg_sql "$root/pg/primary" "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
}
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round: SQLite (synchronous=FULL, fsync per commit)"
    "$AGENTFLOW" bench dispatch "$@"
    echo "== round $round: PostgreSQL 15, no standby (fsync per commit)"
    standby off
    "$AGENTFLOW" bench dispatch --database "$(database)" "$@"
    echo "== round $round: PostgreSQL 15, synchronous standby (fsync + standby flush per commit)"
    standby on
    "$AGENTFLOW" bench dispatch --database "$(database)" "$@"
done
