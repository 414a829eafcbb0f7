#!/usr/bin/env bash
# Why the PostgreSQL store speaks libpq's pipeline mode and not PostgresNIO (issue 21: "measure
# before choosing"): the same transactions (BEGIN, N inserts, COMMIT) against one throw-away
# PostgreSQL 15, through libpq's pipeline mode (one round trip per transaction) and through
# PostgresNIO 1.33.2 (each query awaited, and the inserts issued concurrently on the one
# connection). Run from the repository root: tools/pg-client-choice/run.sh [TRANSACTIONS] [INSERTS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tx=${1:-200} n=${2:-100}
dir=$(mktemp -u /tmp/af-pg-choice-XXXXXX)
tools/pg-test-cluster.sh start "$dir" >/dev/null
trap 'tools/pg-test-cluster.sh stop "$dir"' EXIT
port=$(sed -n 's/^PG_PRIMARY_PORT=//p' "$dir/env")
pw=$(sed -n 's/^\*:\*:\*:agentflow://p' "$dir/pgpass")
gcc -O2 -o "$dir.libpq" "$here/libpq_pipeline.c" -I/usr/include/postgresql -lpq
(cd "$here" && swift build -c release >/dev/null)
uptime
for round in 1 2; do
    PGPASSFILE="$dir/pgpass" "$dir.libpq" "postgres://agentflow@127.0.0.1:$port/agentflow" "$tx" "$n" 2>/dev/null
    "$here/.build/release/PGNIOBench" "$port" "$pw" agentflow "$tx" "$n"
done
rm -f "$dir.libpq"
