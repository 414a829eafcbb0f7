#!/usr/bin/env bash
# Multi-host test (issue 12), run by Tests/IntegrationTests/MultiHostTests.swift as root:
# three network namespaces on a bridge — a coordinator and two hosts, each host running
# `agentflow node --gpus all` with a stand-in nvidia-smi that reports two GPUs — with CURVE on
# and worker names bound to the hosts' keys. A workflow must land attempts on both hosts; then
# host b gets 20% random packet loss (nftables, in its namespace) and 100 ms delay each way (a
# TCP delay proxy: tc netem is not on every kernel) and a second workflow must still finish
# with no worker declared dead.
#
#   tools/multihost-test.sh PATH/TO/agentflow
#
# Names cannot collide with anything else: namespaces afnet-<pid>-{sw,c,a,b}, links afv<pid>*,
# addresses in 198.18.0.0/15 (reserved for network benchmarks), and the bridge lives in a
# namespace of its own, so nothing is added to the host's network and nothing can route off
# the machine. Everything is removed at the end, on failure too.
set -euo pipefail
# shellcheck source=tools/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/netns.sh"
AF="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ID=$$
NS="afnet-$ID"
NET="198.18.$((ID % 250)).0"          # one /24 of 198.18.0.0/15
SUB="198.18.$((ID % 250))"
WORK="$(mktemp -d /tmp/afnet-$ID.XXXX)"
T0=$(date +%s)
log() { printf '[multihost %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }

cleanup() {
    local rc=$?
    netns_remove "$NS" c a b
    if [ "$rc" -ne 0 ]; then
        for f in "$WORK"/*.log; do echo "== $f" >&2; tail -n 40 "$f" >&2; done
    fi
    rm -rf "$WORK"
    if ip netns list | grep -q "^$NS-"; then echo "[multihost] namespaces left behind" >&2; exit 1; fi
    exit "$rc"
}
trap cleanup EXIT INT TERM

command -v ip >/dev/null || { echo "[multihost] ip (iproute2) is missing: tools/install-deps.sh installs it" >&2; exit 1; }
command -v nft >/dev/null || { echo "[multihost] nft (nftables) is missing: tools/install-deps.sh installs it" >&2; exit 1; }

netns_hosts "$NS" "afv$ID" "$SUB" c a b
C="$SUB.1"
in_ns() { local h=$1; shift; ip netns exec "$NS-$h" "$@"; }
log "namespaces $NS-{sw,c,a,b} on $NET/24"

# Stand-in nvidia-smi: two GPUs per host.
mkdir -p "$WORK/bin"
cat > "$WORK/bin/nvidia-smi" <<'EOF'
#!/bin/sh
echo "0, 81037, NVIDIA H100 80GB HBM3"
echo "1, 80899, NVIDIA H100 80GB HBM3"
EOF
chmod +x "$WORK/bin/nvidia-smi"

cd "$WORK"
SERVER=$("$AF" keys --out server.key)
CLIENT=$("$AF" keys --out client.key)
LINE_A=$("$AF" keys enroll hosta --prefix --out hosta.key 2>/dev/null)
LINE_B=$("$AF" keys enroll hostb --prefix --out hostb.key 2>/dev/null)
cat > cluster.yaml <<EOF
coordinator:
  workers: tcp://$C:5555
  clients: tcp://$C:5556
  bind: tcp://0.0.0.0
  database: $WORK/agentflow.db
  heartbeat: 1s
  liveness: ${AGENTFLOW_MULTIHOST_LIVENESS:-5}
  curve:
    serverKey: "$SERVER"
    serverKeyFile: $WORK/server.key
    clientKeyFile: $WORK/client.key
    authorizedKeys: ["$CLIENT"]
    workerKeys:
    $LINE_A
    $LINE_B
models:
  - {name: m, price: {input: 1, output: 1}, context: 8192}
EOF
workflow() {
    { echo "name: $1"; echo "budget: {tokens: 1000000}"; echo "deadline: 3m"; echo "subtasks:"
      for k in $(seq 1 "$2"); do echo "  - {id: s$k, prompt: x, estimates: {m: {success: 1, tokens: 50, seconds: 10}}}"; done; } > "$1.yaml"
}
workflow spread 16
workflow lossy 24

in_ns c "$AF" coordinator --cluster cluster.yaml > coordinator.log 2>&1 &
# Host b reaches the coordinator through the delay proxy (off for now).
in_ns b python3 "$ROOT/tools/delay_proxy.py" 15555 "$C" 5555 100 --off > proxy.log 2>&1 &
for _ in $(seq 1 50); do grep -q READY proxy.log 2>/dev/null && break; sleep 0.1; done
PROXY_PID=$(ip netns pids "$NS-b" | head -n 1)
node() {
    local h=$1 endpoint=$2
    in_ns "$h" env PATH="$WORK/bin:$PATH" "$AF" node --cluster cluster.yaml --coordinator "$endpoint" --model m --backend sim \
        --time-scale 0.03 --gpus all --slots 2 --name-prefix "host$h" --key "host$h.key" > "node-$h.log" 2>&1 &
}
node a "tcp://$C:5555"
node b "tcp://127.0.0.1:15555"

cli() { in_ns c "$AF" "$@" --cluster cluster.yaml; }
alive() { cli workers --json 2>/dev/null | python3 -c 'import json,sys; print(sum(w["state"]=="alive" for w in json.load(sys.stdin)))' 2>/dev/null || echo 0; }
for _ in $(seq 1 100); do [ "$(alive)" = 4 ] && break; sleep 0.2; done
[ "$(alive)" = 4 ] || { log "the four workers did not register"; cli workers >&2 || true; exit 1; }
cli workers >&2
log "4 workers registered (hosta-gpu0/1, hostb-gpu0/1)"

hosts_of() {
    python3 - "$WORK/agentflow.db" "$1" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute("SELECT worker, state FROM attempts WHERE job = ?", (sys.argv[2],)).fetchall()
print(" ".join(sorted({w.split("-")[0] for w, _ in rows if w})), sum(s == "lost" for _, s in rows))
EOF
}
run_job() {
    local out
    out=$(cli submit "$1" --planner seq:1 --wait --json 2>"$WORK/submit-$1.err") || true
    echo "$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["id"] if j["state"]=="succeeded" else "FAILED:"+j["state"]+":"+j["reason"])' 2>/dev/null \
        || echo "FAILED:no report: $(tail -c 300 "$WORK/submit-$1.err")"
}
JOB=$(run_job spread.yaml)
case "$JOB" in FAILED*) log "spread: $JOB"; exit 1;; esac
read -r H1 H2 LOST <<<"$(hosts_of "$JOB")"
[ "$H1" = hosta ] && [ "$H2" = hostb ] && [ "$LOST" = 0 ] || { log "spread: attempts on '$H1 $H2', $LOST lost"; exit 1; }
log "spread: $JOB succeeded, attempts on hosta and hostb"

# 20% random loss on host b's link, both ways, and 100 ms delay each way.
in_ns b nft -f - <<'EOF'
table inet afloss {
    chain in { type filter hook input priority 0; policy accept; iifname "eth0" numgen random mod 100 < 20 counter drop; }
    chain out { type filter hook output priority 0; policy accept; oifname "eth0" numgen random mod 100 < 20 counter drop; }
}
EOF
kill -USR1 "$PROXY_PID"
log "host b: 20% loss (nftables), 100 ms delay each way (proxy)"
T1=$(date +%s)
JOB2=$(run_job lossy.yaml)
case "$JOB2" in FAILED*) log "lossy: $JOB2"; exit 1;; esac
read -r H1 H2 LOST <<<"$(hosts_of "$JOB2")"
log "lossy: $JOB2 succeeded in $(( $(date +%s) - T1 ))s, attempts on '$H1 $H2', $LOST lost"
[ "$LOST" = 0 ] || { log "attempts were lost"; exit 1; }
[ "$H2" = hostb ] || { log "no attempt ran on the lossy host"; exit 1; }
# Ten more seconds of heartbeats across the lossy, slow link before judging liveness.
sleep 10
[ "$(alive)" = 4 ] || { log "a worker was declared dead"; cli workers >&2 || true; exit 1; }
if grep -q "silent for" coordinator.log; then log "the coordinator declared a worker dead:"; grep "silent for" coordinator.log >&2; exit 1; fi
DROPPED=$(in_ns b nft list table inet afloss | grep -o 'packets [0-9]*' | awk '{s += $2} END {print s}')
[ "${DROPPED:-0}" -gt 0 ] || { log "nftables dropped nothing"; exit 1; }
log "all 4 workers alive; no worker declared dead; nftables dropped $DROPPED packets; total $(( $(date +%s) - T0 ))s"
