#!/usr/bin/env bash
# The firewall files of docs/deploy.md, loaded as written (`nft -f FILE`) on fresh "hosts" —
# network namespaces with no nftables table at all, on one bridge (tools/netns.sh): a coordinator
# host, a GPU host (10.0.1.0/24), an operator (10.0.9.0/24) and a stranger (10.0.5.0/24). Checks
# every port from every side: what the files accept connects, what they do not times out, and
# replies to connections a host opened itself come back. Loading a file twice is checked too.
# Needs root; about 10 s. Run by SystemdUnitTests (make test).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/netns.sh
NS="afw$$"
LINK="fw$(( $$ % 100000 ))"   # link names stay under 16 characters
cleanup() { netns_remove "$NS" coord gpu op stranger; }
trap cleanup EXIT
netns_hosts "$NS" "$LINK" 10.0.1 coord gpu op stranger   # 10.0.1.1 … 10.0.1.4 on eth0
# Move the operator and the stranger to their own networks; the coordinator is on all three.
ip -n "$NS-op" addr flush dev eth0 && ip -n "$NS-op" addr add 10.0.9.3/24 dev eth0
ip -n "$NS-stranger" addr flush dev eth0 && ip -n "$NS-stranger" addr add 10.0.5.4/24 dev eth0
ip -n "$NS-coord" addr add 10.0.9.1/24 dev eth0
ip -n "$NS-coord" addr add 10.0.5.1/24 dev eth0
ip -n "$NS-gpu" addr add 10.0.5.2/24 dev eth0      # so the stranger can try the GPU host too

# A TCP listener on each port in a namespace (accepts and closes).
listen() {
    local ns=$1; shift
    ip netns exec "$NS-$ns" python3 -c '
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
threading.Event().wait()
' "$@" &
}
listen coord 22 5555 5556 8080 9000
listen gpu 22 8300
listen stranger 9999
# Ready when each port answers on the host's own loopback (no table yet; Python may take
# seconds to start on a loaded machine, so a fixed sleep is not enough).
wait_listening() {
    local ns=$1; shift
    ip netns exec "$NS-$ns" python3 -c '
import socket, sys, time
end = time.time() + 30
for p in sys.argv[1:]:
    while True:
        try:
            socket.create_connection(("127.0.0.1", int(p)), timeout=1).close(); break
        except OSError:
            if time.time() > end: sys.exit("[firewall] nothing listens on port %s" % p)
            time.sleep(0.1)
' "$@"
}
wait_listening coord 22 5555 5556 8080 9000
wait_listening gpu 22 8300
wait_listening stranger 9999

# expect FROM_NS ADDRESS PORT open|closed
fails=0
expect() {
    local from=$1 addr=$2 port=$3 want=$4 got
    if ip netns exec "$NS-$from" python3 -c '
import socket, sys
s = socket.socket(); s.settimeout(1.0)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); sys.exit(0)
except Exception:
    sys.exit(1)
' "$addr" "$port"; then got=open; else got=closed; fi
    if [ "$got" = "$want" ]; then echo "[firewall] ok: $from -> $addr:$port $got"
    else echo "[firewall] FAIL: $from -> $addr:$port is $got, expected $want" >&2; fails=$((fails + 1)); fi
}

# Before: no table, everything open (so a closed port below is the files' doing).
expect stranger 10.0.5.1 5555 open
ip netns exec "$NS-coord" nft list tables | grep -q . && { echo "[firewall] the fresh host has a table" >&2; exit 1; }
for i in 1 2; do   # loading twice replaces, never duplicates or fails
    ip netns exec "$NS-coord" nft -f tools/nftables/agentflow-coordinator.nft
    ip netns exec "$NS-gpu" nft -f tools/nftables/agentflow-node.nft
done
[ "$(ip netns exec "$NS-coord" nft list chain inet agentflow input | grep -c 'dport 5555')" = 1 ] || { echo "[firewall] rules duplicated" >&2; exit 1; }

expect gpu 10.0.1.1 5555 open          # workers socket from the GPU network
expect gpu 10.0.1.1 5556 closed
expect gpu 10.0.1.1 8080 closed
expect op 10.0.9.1 5556 open           # clients socket and HTTP from the operators
expect op 10.0.9.1 8080 open
expect op 10.0.9.1 5555 closed
expect stranger 10.0.5.1 5555 closed   # nothing from elsewhere …
expect stranger 10.0.5.1 5556 closed
expect stranger 10.0.5.1 8080 closed
expect stranger 10.0.5.1 9000 closed
expect stranger 10.0.5.1 22 open       # … but SSH
expect coord 10.0.5.4 9999 open        # the coordinator's own connections get their replies
expect gpu 10.0.1.1 5555 open          # and the GPU host's (replies to its outgoing connection)
expect op 10.0.1.2 8300 closed         # model servers are not reachable from outside
expect stranger 10.0.5.2 8300 closed
expect stranger 10.0.5.2 22 open
ip netns exec "$NS-gpu" python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8300), timeout=1)' \
    && echo "[firewall] ok: gpu -> its own 127.0.0.1:8300 open" || { echo "[firewall] FAIL: loopback closed" >&2; fails=$((fails + 1)); }
[ "$fails" = 0 ] || { echo "[firewall] $fails check(s) failed" >&2; exit 1; }
echo "[firewall] all checks passed"
