#!/usr/bin/env bash
# Checks the coordinator's HTTP API against its own OpenAPI document, on a real coordinator with
# bearer tokens and two simulated workers on free loopback ports:
#  1. tools/api_lifecycle.py (openapi-core): every response of a full job lifecycle — YAML and
#     JSON submissions, the event stream and its resumption, a draining worker, a cancelled and
#     an ended job, HEAD, every error — validated against the document;
#  2. schemathesis: every operation fuzzed and stateful sequences run (bounded: 20 examples per
#     operation, fixed seed, about 15 s on 2 cores).
# Fails on any 5xx, any response that does not match the schema, or any check below.
# Idempotent: the virtual environment .venv-api (both tools from PyPI) is made once.
#   usage: tools/api-check.sh [path/to/agentflow]   (default .build/debug/agentflow)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug/agentflow}
VERSION=4.32.5
OPENAPI_CORE=0.23.1
VENV=.venv-api
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION" \
    || ! "$VENV/bin/python" -c "import openapi_core, sys; sys.exit(openapi_core.__version__ != '$OPENAPI_CORE')" 2>/dev/null; then
    echo "[api-check] installing schemathesis==$VERSION and openapi-core==$OPENAPI_CORE into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$VERSION" "openapi-core==$OPENAPI_CORE"
fi
[ -x "$BIN" ] || { echo "[api-check] $BIN is not built (swift build)" >&2; exit 1; }

DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
read -r WP CP HP < <(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])
[x.close() for x in s]')
ADMIN="api-check-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
printf 'admin %s\nread api-check-read-0123456789\n' "$ADMIN" > "$DIR/tokens"
cat > "$DIR/cluster.yaml" <<YAML
coordinator:
  workers: tcp://127.0.0.1:$WP
  clients: ipc://$DIR/clients.sock
  database: $DIR/agentflow.db
  http: 127.0.0.1:$HP
  httpTokens: $DIR/tokens
models:
  - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 8192}
  - {name: gemma3-270m,  price: {input: 0.04, output: 0.10}, context: 8192}
workers:
  - {name: gpu0, gpus: [0], model: smollm2-135m, slots: 2, backend: {kind: sim, timeScale: 0.01, seed: 1}}
  - {name: gpu1, gpus: [1], model: gemma3-270m, slots: 2, backend: {kind: sim, timeScale: 0.01, seed: 2}}
YAML
"$BIN" coordinator --cluster "$DIR/cluster.yaml" --log-level warning > "$DIR/coordinator.log" 2>&1 & PIDS+=($!)
"$BIN" worker --name gpu0 --cluster "$DIR/cluster.yaml" --log-level warning > "$DIR/gpu0.log" 2>&1 & PIDS+=($!)
"$BIN" worker --name gpu1 --cluster "$DIR/cluster.yaml" --log-level warning > "$DIR/gpu1.log" 2>&1 & PIDS+=($!)
BASE="http://127.0.0.1:$HP"
for _ in $(seq 1 100); do
    curl -sf -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/openapi.yaml" > /dev/null && break
    sleep 0.2
done
curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/yaml' --data-binary @workflows/diamond.yaml \
    "$BASE/api/v1/jobs?planner=seq:1" > /dev/null || { cat "$DIR/coordinator.log" >&2; exit 1; }
sleep 1
echo "[api-check] openapi-core $OPENAPI_CORE: a full job lifecycle against $BASE/api/v1/openapi.yaml" >&2
timeout 300 "$VENV/bin/python" tools/api_lifecycle.py "$BASE" "$ADMIN" api-check-read-0123456789 "$BIN" "$DIR/cluster.yaml" \
    || { echo "[api-check] the lifecycle check failed; coordinator log:" >&2; tail -50 "$DIR/coordinator.log" >&2; exit 1; }
echo "[api-check] schemathesis $VERSION against $BASE/api/v1/openapi.yaml" >&2
# Every check but positive_data_acceptance: a schema cannot say which YAML texts are valid
# workflows, so most generated bodies are rightly refused with 400.
timeout 300 "$VENV/bin/schemathesis" run "$BASE/api/v1/openapi.yaml" -H "Authorization: Bearer $ADMIN" \
    --checks all --exclude-checks positive_data_acceptance --max-examples 20 --seed 1 --request-timeout 20 --workers 1 \
    || { echo "[api-check] failed; coordinator log:" >&2; tail -50 "$DIR/coordinator.log" >&2; exit 1; }
