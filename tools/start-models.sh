#!/usr/bin/env bash
# Starts one llama.cpp server (llama_cpp.server) per local model on loopback and waits until
# each answers GET /v1/models. Idempotent: a server that already answers is reused.
#
#   tools/start-models.sh           # both models
#   tools/start-models.sh smollm2   # just one (smollm2 | gemma3)
#   tools/start-models.sh --stop    # stops the servers this script started
#
#   smollm2-135m  http://127.0.0.1:8198/v1   SmolLM2-135M-Instruct Q4_1
#   gemma3-270m   http://127.0.0.1:8199/v1   Gemma-3-270M (base) Q4_K_M
#
# A worker runs several attempts (slots) against one server: requests queue instead of the
# server's default of cutting the running stream when a new request arrives.
#
# Pid files and logs: .agentflow/llama-<name>.pid and .agentflow/llama-<name>.log.
# Environment: AGENTFLOW_LLAMA_THREADS (threads per server, default 1: two servers share
# two cores), AGENTFLOW_LLAMA_CTX (context length, default 4096).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="$ROOT/.agentflow"
THREADS="${AGENTFLOW_LLAMA_THREADS:-1}"
CTX="${AGENTFLOW_LLAMA_CTX:-4096}"
log() { printf '[start-models] %s\n' "$*" >&2; }

answers() { curl -fsS --max-time 5 "http://127.0.0.1:$1/v1/models" >/dev/null 2>&1; }
# Something listens on the port (a server that is busy generating may answer slowly).
bound() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_one() {
    local name=$1 pidfile="$STATE/llama-$1.pid"
    if [ -f "$pidfile" ]; then
        local pid
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" && log "stopped $name (pid $pid)"
        fi
        rm -f "$pidfile"
    fi
}

start_one() {
    local name=$1 port=$2 gguf=$3
    local pidfile="$STATE/llama-$name.pid" logfile="$STATE/llama-$name.log"
    if answers "$port"; then
        log "$name already answers on 127.0.0.1:$port"
        return 0
    fi
    if bound "$port"; then
        log "127.0.0.1:$port is taken by a running server (busy?); waiting for it instead of starting another"
        return 0
    fi
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "$name (pid $(cat "$pidfile")) is still loading"
    else
        [ -f "$gguf" ] || { log "missing $gguf; run tools/setup-models.sh"; return 1; }
        log "starting $name on 127.0.0.1:$port (log: $logfile)"
        local extra=()
        # The Gemma GGUF carries no chat template; without this the server falls back to Llama-2's.
        [ "$name" = gemma3-270m ] && extra=(--chat_format gemma)
        setsid nohup "$ROOT/.venv/bin/python" -m llama_cpp.server "${extra[@]}" \
            --model "$gguf" --model_alias "$name" --host 127.0.0.1 --port "$port" \
            --n_ctx "$CTX" --n_threads "$THREADS" --n_threads_batch "$THREADS" --verbose false \
            --interrupt_requests false \
            >"$logfile" 2>&1 </dev/null &
        echo $! >"$pidfile"
    fi
}

wait_one() {
    local name=$1 port=$2 pidfile="$STATE/llama-$1.pid"
    for _ in $(seq 1 240); do
        answers "$port" && { log "$name ready at http://127.0.0.1:$port/v1"; return 0; }
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            log "$name exited; last lines of $STATE/llama-$name.log:"
            tail -20 "$STATE/llama-$name.log" >&2
            return 1
        fi
        sleep 0.5
    done
    log "$name did not answer within 120 s"
    return 1
}

mkdir -p "$STATE"
which=("smollm2" "gemma3")
if [ "${1:-}" = "--stop" ]; then
    stop_one smollm2-135m
    stop_one gemma3-270m
    exit 0
fi
[ $# -gt 0 ] && which=("$@")

[ -f "$STATE/models.env" ] || "$ROOT/tools/setup-models.sh"
# shellcheck disable=SC1091
source "$STATE/models.env"

for m in "${which[@]}"; do
    case "$m" in
    smollm2) start_one smollm2-135m 8198 "$SMOLLM2_GGUF" ;;
    gemma3) start_one gemma3-270m 8199 "$GEMMA3_GGUF" ;;
    *) log "unknown model $m (smollm2 | gemma3)"; exit 2 ;;
    esac
done
for m in "${which[@]}"; do
    case "$m" in
    smollm2) wait_one smollm2-135m 8198 ;;
    gemma3) wait_one gemma3-270m 8199 ;;
    esac
done
