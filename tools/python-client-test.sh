#!/usr/bin/env bash
# Tests the Python client (clients/python) against a live coordinator: installs the package as
# a user would (pip install ./clients/python, with its test extras: pytest, PyYAML, tqdm) into
# .venv-client, then runs its tests, which start the real agentflow binary (coordinator, HTTP
# API with tokens, two sim workers) on free loopback ports. Idempotent; about 30 s.
#   usage: tools/python-client-test.sh [path/to/agentflow]   (default .build/debug/agentflow)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug/agentflow}
VENV=.venv-client
[ -x "$BIN" ] || { echo "[python-client] $BIN is not built (swift build)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# Reinstalled every run (a few seconds): the tests must see the package as it is now.
"$VENV/bin/pip" install -q "./clients/python[test]"
AGENTFLOW_BIN="$PWD/$BIN" "$VENV/bin/python" -m pytest -q -p no:cacheprovider clients/python/tests
