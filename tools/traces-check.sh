#!/usr/bin/env bash
# Checks the OpenTelemetry traces end to end (tools/traces_check.py): a real coordinator and
# worker with `telemetry: {otlp: URL}` export to an OTLP/HTTP receiver that decodes with the
# `opentelemetry-proto` package's messages, and each job's span tree (job → subtask → attempt →
# model call / verifier, tokens and cost) is checked against the coordinator's store.
# Idempotent: the virtual environment .venv-traces (opentelemetry-proto from PyPI) is made once.
# About 45 s.
#   usage: tools/traces-check.sh [path/to/agentflow]   (default .build/debug/agentflow)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug/agentflow}
VERSION=1.45.2
VENV=.venv-traces
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('opentelemetry-proto') != '$VERSION')" 2>/dev/null; then
    echo "[traces] installing opentelemetry-proto==$VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "opentelemetry-proto==$VERSION"
fi
[ -x "$BIN" ] || { echo "[traces] $BIN is not built (swift build)" >&2; exit 1; }
"$VENV/bin/python" tools/traces_check.py "$BIN"
