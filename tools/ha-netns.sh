#!/usr/bin/env bash
# The failover test's hosts (Tests/IntegrationTests/CoordinatorFailoverTests.swift, as root):
# network namespaces on a bridge — db1 (the PostgreSQL primary), db2 (its synchronous standby),
# c0 c1 c2 (coordinators), n1 n2 (worker nodes), cl (the client) — and PostgreSQL 15 in db1 and
# db2 (tools/pgtest.sh).
#
#   tools/ha-netns.sh up ID DIR [--owner PID]  # prints KEY=VALUE lines: NS, SUB, PGURL, PGPASSFILE, …
#                                   # --owner: when PID ends (a test run, even one killed), `down`
#   tools/ha-netns.sh cut ID HOST   # HOST's packets to PostgreSQL's port are dropped (nftables)
#   tools/ha-netns.sh heal ID HOST  # and no longer
#   tools/ha-netns.sh crash-primary ID DIR  # the primary stops at once (immediate: no checkpoint)
#   tools/ha-netns.sh promote ID DIR        # pg_ctl promote of the standby; waits until it writes
#   tools/ha-netns.sh down ID DIR   # stops everything in the namespaces, removes them and DIR
#
# ID makes the names unique (namespaces afha-ID-*, links afh<ID>*): the caller's pid. DIR must
# not exist yet. The bridge lives in a namespace of its own, so nothing is added to the host's
# network and nothing can route off the machine. The test reads the databases through their
# Unix sockets (DIR/primary, DIR/standby), which need no namespace.
set -euo pipefail
# shellcheck source=tools/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/netns.sh"
# shellcheck source=tools/pgtest.sh
source "$(dirname "${BASH_SOURCE[0]}")/pgtest.sh"

cmd=${1:-}
id=${2:-}
[ -n "$cmd" ] && [ -n "$id" ] || { echo "usage: $0 up|down|crash-primary|promote ID DIR | cut|heal ID HOST" >&2; exit 2; }
NS="afha-$id"
SUB="198.19.$((id % 250))"
HOSTS=(db1 db2 c0 c1 c2 n1 n2 cl)
PGPORT=5432

case "$cmd" in
up)
    dir=${3:?DIR}
    command -v ip >/dev/null || { echo "[ha-netns] ip (iproute2) is missing: tools/install-deps.sh installs it" >&2; exit 1; }
    command -v nft >/dev/null || { echo "[ha-netns] nft (nftables) is missing: tools/install-deps.sh installs it" >&2; exit 1; }
    pg_check
    [ -e "$dir" ] && { echo "[ha-netns] $dir exists already" >&2; exit 2; }
    trap 'rc=$?; if [ $rc -ne 0 ]; then pg_stop "$dir/standby" "$dir/primary"; netns_remove "$NS" "${HOSTS[@]}"; fi; exit $rc' EXIT
    netns_hosts "$NS" "afh$id" "$SUB" "${HOSTS[@]}"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    PG_NS="$NS-db1" pg_primary "$dir" "$PGPORT" "$SUB.1"
    PG_NS="$NS-db2" pg_standby "$dir" "$PGPORT" "$SUB.2" "$SUB.1" "$PGPORT" afstandby
    if [ "${4:-}" = --owner ] && [ -n "${5:-}" ]; then
        setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" down "$3" "$4"' reaper "$5" \
            "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" "$id" "$dir" </dev/null >/dev/null 2>&1 &
    fi
    cat "$dir/env"
    echo "NS=$NS"
    echo "SUB=$SUB"
    echo "PG_PRIMARY_SOCKET=$dir/primary"
    echo "PG_STANDBY_SOCKET=$dir/standby"
    ;;
cut|heal)
    host=${3:?HOST}
    if [ "$cmd" = cut ]; then
        ip netns exec "$NS-$host" nft -f - <<EOF
table inet afha_cut {
    chain out {
        type filter hook output priority 0; policy accept;
        tcp dport $PGPORT drop
    }
}
EOF
    else
        ip netns exec "$NS-$host" nft delete table inet afha_cut 2>/dev/null || true
    fi
    ;;
crash-primary)
    pg_stop "${3:?DIR}/primary"
    ;;
promote)
    dir=${3:?DIR}
    pg_promote "$dir"
    for _ in $(seq 1 100); do [ "$(pg_sql "$dir/standby" "SELECT pg_is_in_recovery()")" = f ] && exit 0; sleep 0.1; done
    echo "[ha-netns] the promoted standby still recovers" >&2
    exit 1
    ;;
down)
    dir=${3:?DIR}
    [ -d "$dir" ] && pg_stop "$dir/standby" "$dir/primary"
    netns_remove "$NS" "${HOSTS[@]}"
    rm -rf "$dir"
    if ip netns list | grep -q "^$NS-"; then echo "[ha-netns] namespaces left behind" >&2; exit 1; fi
    ;;
*) echo "usage: $0 up|down|crash-primary|promote ID DIR | cut|heal ID HOST" >&2; exit 2 ;;
esac
