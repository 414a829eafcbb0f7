#!/usr/bin/env bash
# Starts one llama.cpp server (llama_cpp.server) per local model on loopback, waits until each
# answers GET /v1/models, then asks each for one real chat completion (a few tokens): a server
# that loads its model but dies on its first request (a build with CPU instructions this
# machine cannot run dies with SIGILL there) is caught here, not five minutes into a job.
# Idempotent: a server that already answers is reused (and smoke-tested too).
#
#   tools/start-models.sh           # both models
#   tools/start-models.sh smollm2   # just one (smollm2 | gemma3)
#   tools/start-models.sh --stop    # stops the servers this script started
#
#   smollm2-135m  http://127.0.0.1:8198/v1   SmolLM2-135M-Instruct Q4_1
#   gemma3-270m   http://127.0.0.1:8199/v1   Gemma-3-270M (base) Q4_K_M
#
# Exit status: 0 when every server answered its chat completion; 1 otherwise, after printing,
# per failing server, the likely cause ("illegal instruction: ..." for SIGILL, exit status 132)
# and the last lines of its log.
#
# A worker runs several attempts (slots) against one server: requests queue instead of the
# server's default of cutting the running stream when a new request arrives.
#
# Pid files and logs: .agentflow/llama-<name>.pid and .agentflow/llama-<name>.log.
# Environment: AGENTFLOW_LLAMA_THREADS (threads per server, default 1: two servers share
# two cores), AGENTFLOW_LLAMA_CTX (context length, default 4096), AGENTFLOW_SMOLLM2_PORT and
# AGENTFLOW_GEMMA3_PORT (default 8198, 8199), AGENTFLOW_STATE_DIR (pid files, logs and
# models.env; default .agentflow), AGENTFLOW_LLAMA_PYTHON (default .venv/bin/python),
# AGENTFLOW_SMOKE_TIMEOUT (seconds for the smoke completion, default 180: a busy server
# finishes what it is generating first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="${AGENTFLOW_STATE_DIR:-$ROOT/.agentflow}"
PY="${AGENTFLOW_LLAMA_PYTHON:-$ROOT/.venv/bin/python}"
THREADS="${AGENTFLOW_LLAMA_THREADS:-1}"
CTX="${AGENTFLOW_LLAMA_CTX:-4096}"
SMOLLM2_PORT="${AGENTFLOW_SMOLLM2_PORT:-8198}"
GEMMA3_PORT="${AGENTFLOW_GEMMA3_PORT:-8199}"
SMOKE_TIMEOUT="${AGENTFLOW_SMOKE_TIMEOUT:-180}"
log() { printf '[start-models] %s\n' "$*" >&2; }

answers() { curl -fsS --max-time 5 "http://127.0.0.1:$1/v1/models" >/dev/null 2>&1; }
# Something listens on the port (a server that is busy generating may answer slowly).
bound() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Pids of the servers this invocation started (their exit status can be collected with wait).
declare -A STARTED=()

stop_one() {
    local name=$1 pidfile="$STATE/llama-$1.pid"
    if [ -f "$pidfile" ]; then
        local pid
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            # A server started with SIGTERM blocked (inherited from its launcher) ignores it.
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then
                kill -9 "$pid" 2>/dev/null || true
                log "stopped $name (pid $pid, SIGKILL after 5 s)"
            else
                log "stopped $name (pid $pid)"
            fi
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
        # -X faulthandler: a fatal signal (SIGILL, SIGSEGV) leaves its name and a traceback in
        # the log, so the cause is known even when another invocation started the server.
        # The server outlives this script: it keeps none of the descriptors this script inherited
        # beyond stdio (a caller that waits for them to close would otherwise wait for the server).
        (
            for fd in /proc/self/fd/*; do
                fd=${fd##*/}
                [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
            done
            exec setsid nohup "$PY" -X faulthandler -m llama_cpp.server "${extra[@]}" \
                --model "$gguf" --model_alias "$name" --host 127.0.0.1 --port "$port" \
                --n_ctx "$CTX" --n_threads "$THREADS" --n_threads_batch "$THREADS" --verbose false \
                --interrupt_requests false \
                >"$logfile" 2>&1 </dev/null
        ) &
        echo $! >"$pidfile"
        STARTED[$name]=$!
    fi
}

# Sets EXIT_STATUS to the exit status of a server this invocation started and that has exited;
# empty otherwise. (Not in a $(...) subshell: only this shell can wait for its children.)
collect_status() {
    EXIT_STATUS=""
    local pid=${STARTED[$1]:-}
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null && return 0
    EXIT_STATUS=0
    { wait "$pid"; } 2>/dev/null || EXIT_STATUS=$?
}

# Whether the server is gone: its pid (from this run or the pid file) no longer runs.
gone() {
    local pidfile="$STATE/llama-$1.pid" pid
    pid="${STARTED[$1]:-$(cat "$pidfile" 2>/dev/null || true)}"
    [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null
}

# Names the likely cause of a failed server from its exit status (when known) and its log.
cause() {
    local status=$1 logfile=$2
    if [ "$status" = 132 ] || grep -q -i -E 'illegal instruction|SIGILL' "$logfile" 2>/dev/null; then
        echo "illegal instruction: the llama.cpp build uses CPU instructions this machine cannot run" \
            "(rebuild it portably with tools/setup-models.sh; tools/check-llama-build.sh checks the libraries)"
    elif [ "$status" = 139 ] || grep -q -i 'segmentation fault' "$logfile" 2>/dev/null; then
        echo "segmentation fault in the server"
    elif [ "$status" = 137 ]; then
        echo "killed (SIGKILL: out of memory?)"
    elif [ -n "$status" ] && [ "$status" -gt 128 ]; then
        echo "killed by signal $((status - 128))"
    elif [ -n "$status" ]; then
        echo "the server exited with status $status"
    else
        echo "the server exited"
    fi
}

fail_one() {
    local name=$1 why=$2 logfile="$STATE/llama-$1.log"
    log "FAILED $name: $why"
    if [ -f "$logfile" ]; then
        log "last lines of $logfile:"
        tail -20 "$logfile" >&2
    fi
    return 1
}

# One real chat completion of a few tokens; prints what went wrong, nothing when it worked.
smoke() {
    local name=$1 port=$2 body errors http
    body="$(mktemp)"
    errors="$(mktemp)"
    http="$(curl -sS --max-time "$SMOKE_TIMEOUT" -o "$body" -w '%{http_code}' 2>"$errors" \
        -H 'Content-Type: application/json' \
        -d "{\"model\": \"$name\", \"messages\": [{\"role\": \"user\", \"content\": \"Say hello.\"}], \"max_tokens\": 4, \"temperature\": 0}" \
        "http://127.0.0.1:$port/v1/chat/completions")" || {
        echo "no answer to a chat completion ($(head -c 300 "$errors" | tr '\n' ' ' | sed 's/ *$//'))"
        rm -f "$body" "$errors"
        return 0
    }
    if [ "$http" != 200 ]; then
        echo "a chat completion answered HTTP $http: $(head -c 300 "$body" | tr '\n' ' ')"
    elif ! grep -q '"choices"' "$body"; then
        echo "a chat completion answered without choices: $(head -c 300 "$body" | tr '\n' ' ')"
    fi
    rm -f "$body" "$errors"
}

wait_one() {
    local name=$1 port=$2 logfile="$STATE/llama-$1.log"
    local up=0
    for _ in $(seq 1 240); do
        answers "$port" && { up=1; break; }
        if gone "$name"; then
            collect_status "$name"
            fail_one "$name" "$(cause "$EXIT_STATUS" "$logfile")"
            return 1
        fi
        sleep 0.5
    done
    [ "$up" = 1 ] || { fail_one "$name" "did not answer GET /v1/models within 120 s"; return 1; }
    local problem
    problem="$(smoke "$name" "$port")"
    if [ -n "$problem" ]; then
        # A server that crashed on the request needs a moment to be reaped.
        for _ in $(seq 1 20); do gone "$name" && break; sleep 0.1; done
        if gone "$name"; then
            collect_status "$name"
            fail_one "$name" "$(cause "$EXIT_STATUS" "$logfile") (it died on its first chat completion: $problem)"
        else
            # A server this run started but that cannot answer is of no use: stop it.
            [ -n "${STARTED[$name]:-}" ] && stop_one "$name"
            fail_one "$name" "$problem"
        fi
        return 1
    fi
    log "$name ready at http://127.0.0.1:$port/v1 (answered a chat completion)"
}

mkdir -p "$STATE"
which=("smollm2" "gemma3")
if [ "${1:-}" = "--stop" ]; then
    stop_one smollm2-135m
    stop_one gemma3-270m
    exit 0
fi
[ $# -gt 0 ] && which=("$@")

if [ ! -f "$STATE/models.env" ] && [ -z "${AGENTFLOW_STATE_DIR:-}" ]; then "$ROOT/tools/setup-models.sh"; fi
# shellcheck disable=SC1091
source "$STATE/models.env"

for m in "${which[@]}"; do
    case "$m" in
    smollm2) start_one smollm2-135m "$SMOLLM2_PORT" "$SMOLLM2_GGUF" ;;
    gemma3) start_one gemma3-270m "$GEMMA3_PORT" "$GEMMA3_GGUF" ;;
    *) log "unknown model $m (smollm2 | gemma3)"; exit 2 ;;
    esac
done
failed=0
for m in "${which[@]}"; do
    case "$m" in
    smollm2) wait_one smollm2-135m "$SMOLLM2_PORT" || failed=1 ;;
    gemma3) wait_one gemma3-270m "$GEMMA3_PORT" || failed=1 ;;
    esac
done
exit "$failed"
