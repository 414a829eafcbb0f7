#!/usr/bin/env bash
# Issue 9's holes, checked from the outside against any agentflow binary (used to show each
# is present in the code before the fix and gone after):
#   tools/check-holes.sh /path/to/old/agentflow ; tools/check-holes.sh .build/debug/agentflow
# Prints one line per hole: PRESENT (the old behaviour) or FIXED.
set -u
BIN=$(realpath "$1")
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$DIR"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
W=$(port); C=$(port)
cat > "$DIR/cluster.yaml" <<YAML
coordinator: {workers: "tcp://127.0.0.1:$W", clients: "tcp://127.0.0.1:$C", database: $DIR/db.sqlite, heartbeat: 1s, liveness: 3}
models: [{name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 8192}, {name: gemma3-270m, price: {input: 0.04, output: 0.10}, context: 8192}]
workers: [{name: w0, gpus: [0], model: smollm2-135m, slots: 2, backend: {kind: sim, timeScale: 0.01, seed: 1}}]
YAML
cat > "$DIR/dup.yaml" <<YAML
name: dup
budget: {tokens: 1000}
deadline: 1m
subtasks:
  - {id: a, prompt: x}
  - {id: b, prompt: x, needs: [a, a]}
YAML
cd "$DIR"
# 1. duplicate needs pass validation
"$BIN" validate dup.yaml --cluster cluster.yaml > out 2>&1; rc=$?
[ $rc -eq 2 ] && echo "duplicate needs: FIXED (exit 2: $(head -c 120 out))" || echo "duplicate needs: PRESENT (exit $rc: $(head -c 80 out))"
# 2. a second coordinator on the same database
"$BIN" coordinator --cluster cluster.yaml > c1.log 2>&1 & C1=$!
sleep 2
sed -e "s/127.0.0.1:$W/127.0.0.1:$(port)/" -e "s/127.0.0.1:$C/127.0.0.1:$(port)/" cluster.yaml > second.yaml
"$BIN" coordinator --cluster second.yaml > c2.log 2>&1 & C2=$!
sleep 3
if kill -0 $C2 2>/dev/null; then echo "second coordinator on a held database: PRESENT (it runs)"; kill $C2; else echo "second coordinator on a held database: FIXED ($(grep -o 'database.*pid [0-9]*' c2.log | head -1))"; fi
# 3. an infinite USD budget sent past the CLI's checks kills the coordinator
timeout 15 "$BIN" submit "$OLDPWD/workflows/chain.yaml" --budget-usd inf --cluster cluster.yaml > s.log 2>&1; rc=$?
sleep 1
if kill -0 $C1 2>/dev/null; then echo "--budget-usd inf: FIXED (exit $rc: $(head -c 100 s.log), coordinator alive)"; else echo "--budget-usd inf: PRESENT (coordinator died: $(grep -m1 -o 'Fatal error.*\|overflow.*\|Illegal.*' c1.log))"; fi
kill $C1 2>/dev/null; wait 2>/dev/null
