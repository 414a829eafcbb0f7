#!/usr/bin/env bash
# Slurm test (issue 20 item 4), run by Tests/IntegrationTests/SlurmTests.swift as root: real
# Slurm daemons from Debian (munged, slurmctld, two slurmd) in network namespaces on a bridge —
# a controller "host" that also runs the AgentFlow coordinator, and two compute "hosts" a and b
# with two stand-in GPUs each (character devices in gres.conf, so Slurm sets
# CUDA_VISIBLE_DEVICES, and a stand-in nvidia-smi). It submits tools/slurm/agentflow-node.sbatch
# once per host, sees the four workers register under the jobs' names, runs a workflow across
# both hosts, then scancels host a's node job while a second workflow runs: a's workers must
# drain (no new attempts, running ones finish), the Slurm job must end, and the workflow must
# finish on b with no attempt lost.
#
#   tools/slurm-test.sh PATH/TO/agentflow
#
# Unique per run: namespaces afslurm-<pid>-{sw,c,a,b}, links afs<pid>*, addresses in
# 198.19.0.0/16 (reserved for benchmarks), munge's socket and key, Slurm's state, spool, logs
# and cluster name under one temporary directory. The daemons' ports are inside the
# namespaces. Everything is stopped and removed at the end, on failure too. About 60 s.
set -euo pipefail
# shellcheck source=tools/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/netns.sh"
AF="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ID=$$
NS="afslurm-$ID"
SUB="198.19.$((ID % 250))"
WORK="$(mktemp -d /tmp/afslurm-$ID.XXXX)"
chmod 755 "$WORK"
T0=$(date +%s)
log() { printf '[slurm %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }

for tool in munged slurmctld slurmd sbatch scancel squeue sinfo ip nsenter; do
    command -v "$tool" >/dev/null || { echo "[slurm] $tool is missing: tools/install-deps.sh installs it" >&2; exit 1; }
done

cleanup() {
    local rc=$?
    [ -f "$WORK/slurm.conf" ] && SLURM_CONF="$WORK/slurm.conf" timeout 10 nsenter --net="/run/netns/$NS-c" scancel --quiet -u root 2>/dev/null || true
    netns_remove "$NS" c a b
    if [ -f "$WORK/munge/munged.pid" ]; then
        # TERM, then KILL: a parent that blocks SIGTERM (a test runner) hands that mask down.
        munge_pid=$(cat "$WORK/munge/munged.pid")
        kill -TERM "$munge_pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$munge_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$munge_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        for f in "$WORK"/*.log "$WORK"/munge/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
    fi
    rm -rf "$WORK"
    if ip netns list | grep -q "^$NS-"; then echo "[slurm] namespaces left behind" >&2; exit 1; fi
    exit "$rc"
}
trap cleanup EXIT INT TERM

netns_hosts "$NS" "afs$ID" "$SUB" c a b
C="$SUB.1"
# nsenter enters the network namespace only: `ip netns exec` would also remount /sys, hiding
# the cgroup hierarchy that slurmd's cgroup plugin loads from.
in_ns() { local h=$1; shift; nsenter --net="/run/netns/$NS-$h" env SLURM_CONF="$WORK/slurm.conf" "$@"; }
log "namespaces $NS-{sw,c,a,b} on $SUB.0/24"

# munge: its own key and socket (a unix socket: every namespace reaches it).
mkdir -m 700 "$WORK/munge"
head -c 1024 /dev/urandom > "$WORK/munge/munge.key"
chmod 400 "$WORK/munge/munge.key"
munged --force --socket="$WORK/munge/munge.sock" --key-file="$WORK/munge/munge.key" --pid-file="$WORK/munge/munged.pid" \
    --log-file="$WORK/munge/munged.log" --seed-file="$WORK/munge/munged.seed"
chmod 755 "$WORK/munge"

# Stand-in GPUs: character devices with NVIDIA's major number, which is what makes Slurm
# export CUDA_VISIBLE_DEVICES; and an nvidia-smi that lists them.
for h in a b; do
    mkdir -p "$WORK/dev/$h"
    mknod "$WORK/dev/$h/nvidia0" c 195 0
    mknod "$WORK/dev/$h/nvidia1" c 195 1
done
mkdir -p "$WORK/bin" "$WORK/state" "$WORK/spool/a" "$WORK/spool/b"
cat > "$WORK/bin/nvidia-smi" <<'EOF'
#!/bin/sh
echo "0, 81037, NVIDIA H100 80GB HBM3"
echo "1, 80899, NVIDIA H100 80GB HBM3"
EOF
chmod +x "$WORK/bin/nvidia-smi"

cat > "$WORK/slurm.conf" <<EOF
ClusterName=af$ID
SlurmctldHost=$(hostname -s)($C)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.sock
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool/%n
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd-%n.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=30
GresTypes=gpu
NodeName=a NodeAddr=$SUB.2 CPUs=2 RealMemory=512 Gres=gpu:2 State=UNKNOWN
NodeName=b NodeAddr=$SUB.3 CPUs=2 RealMemory=512 Gres=gpu:2 State=UNKNOWN
PartitionName=gpu Nodes=a,b Default=YES MaxTime=INFINITE State=UP
EOF
cat > "$WORK/gres.conf" <<EOF
NodeName=a Name=gpu File=$WORK/dev/a/nvidia[0-1]
NodeName=b Name=gpu File=$WORK/dev/b/nvidia[0-1]
EOF

in_ns c slurmctld -D -c > "$WORK/slurmctld.out.log" 2>&1 &
in_ns a slurmd -D -N a > "$WORK/slurmd-a.out.log" 2>&1 &
in_ns b slurmd -D -N b > "$WORK/slurmd-b.out.log" 2>&1 &
idle() { in_ns c sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle$' || true; }
for _ in $(seq 1 150); do [ "$(idle)" = 2 ] && break; sleep 0.2; done
[ "$(idle)" = 2 ] || { log "the two slurmd did not come up idle"; in_ns c sinfo -N >&2 || true; exit 1; }
log "slurmctld and slurmd a, b up: $(in_ns c sinfo -h -N -o '%N:%t:%G' | tr '\n' ' ')"

# The coordinator on the controller host (no CURVE here: tools/multihost-test.sh covers it).
cd "$WORK"
cat > cluster.yaml <<EOF
coordinator:
  workers: tcp://$C:5555
  clients: tcp://$C:5556
  bind: tcp://0.0.0.0
  database: $WORK/agentflow.db
models:
  - {name: m, price: {input: 1, output: 1}, context: 8192}
EOF
workflow() {
    { echo "name: $1"; echo "budget: {tokens: 1000000}"; echo "deadline: 3m"; echo "subtasks:"
      for k in $(seq 1 "$2"); do echo "  - {id: s$k, prompt: x, estimates: {m: {success: 1, tokens: 50, seconds: $3}}}"; done; } > "$1.yaml"
}
workflow spread 16 10
# 6 s attempts (120 s at --time-scale 0.05): the drain lasts seconds, so the poll below sees
# it even when each `agentflow workers` call takes a second on a loaded machine (with 2 s
# attempts a CI run saw only 'dead dead': the drain had ended in 0.4 s).
workflow drained 16 120
in_ns c "$AF" coordinator --cluster cluster.yaml --insecure > coordinator.log 2>&1 &

# The node jobs, as a user submits them.
submit_node() {
    in_ns c env PATH="$WORK/bin:$PATH" AGENTFLOW_COORDINATOR="tcp://$C:5555" AGENTFLOW_MODEL=m AGENTFLOW_BACKEND=sim \
        AGENTFLOW_BIN="$AF" AGENTFLOW_SLOTS=2 AGENTFLOW_DRAIN_GRACE=20s AGENTFLOW_NODE_ARGS="--time-scale 0.05" \
        sbatch --parsable --export=ALL -w "$1" --gres=gpu:2 --chdir="$WORK" --output="$WORK/node-%j.log" "$ROOT/tools/slurm/agentflow-node.sbatch"
}
JA=$(submit_node a)
JB=$(submit_node b)
log "sbatch: node job $JA on a, $JB on b"
cli() { in_ns c "$AF" "$@" --cluster cluster.yaml; }
workers_json() { cli workers --json 2>/dev/null || echo '[]'; }
alive() { workers_json | python3 -c 'import json,sys; print(sum(w["state"]=="alive" for w in json.load(sys.stdin)))' 2>/dev/null || echo 0; }
for _ in $(seq 1 150); do [ "$(alive)" = 4 ] && break; sleep 0.2; done
[ "$(alive)" = 4 ] || { log "the four workers did not register"; cli workers >&2 || true; in_ns c squeue >&2 || true; exit 1; }
NAMES=$(workers_json | python3 -c 'import json,sys; print(" ".join(sorted(w["name"]+":"+",".join(map(str,w["gpus"])) for w in json.load(sys.stdin))))')
EXPECTED="slurm-$JA-gpu0:0 slurm-$JA-gpu1:1 slurm-$JB-gpu0:0 slurm-$JB-gpu1:1"
[ "$NAMES" = "$EXPECTED" ] || { log "workers '$NAMES', expected '$EXPECTED'"; exit 1; }
grep -q "GPUs 0,1" "node-$JA.log" || { log "Slurm did not hand job $JA its GPUs in CUDA_VISIBLE_DEVICES"; exit 1; }
log "4 workers registered under the jobs' names: $NAMES"

attempts_by_job() {  # JOB -> "attempts-on-a attempts-on-b lost"
    python3 - "$WORK/agentflow.db" "$1" "slurm-$JA-" "slurm-$JB-" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute("SELECT worker, state FROM attempts WHERE job = ?", (sys.argv[2],)).fetchall()
print(sum(1 for w, _ in rows if w and w.startswith(sys.argv[3])), sum(1 for w, _ in rows if w and w.startswith(sys.argv[4])),
      sum(s == "lost" for _, s in rows))
EOF
}
out=$(cli submit spread.yaml --planner seq:1 --wait --json 2>/dev/null) || { log "spread did not succeed: $out"; exit 1; }
J1=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$out")
read -r ON_A ON_B LOST <<<"$(attempts_by_job "$J1")"
[ "$ON_A" -gt 0 ] && [ "$ON_B" -gt 0 ] && [ "$LOST" = 0 ] || { log "spread: $ON_A attempts on a, $ON_B on b, $LOST lost"; exit 1; }
log "spread: $J1 succeeded, $ON_A attempts on a, $ON_B on b"

# A second workflow; once a's workers are busy, scancel a's node job.
J2=$(cli submit drained.yaml --planner seq:1)
for _ in $(seq 1 100); do
    busy=$(workers_json | python3 -c 'import json,sys; print(sum(w["busy"] for w in json.load(sys.stdin) if w["name"].startswith(sys.argv[1])))' "slurm-$JA-")
    [ "$busy" -gt 0 ] && break
    sleep 0.1
done
[ "$busy" -gt 0 ] || { log "a's workers never got an attempt of $J2"; exit 1; }
CANCEL_AT=$(python3 -c 'import time; print(time.time())')
in_ns c scancel "$JA"
log "scancel $JA while $busy attempts of $J2 run on a"
drained=0
for _ in $(seq 1 50); do
    states=$(workers_json | python3 -c 'import json,sys; print(" ".join(sorted(w["state"] for w in json.load(sys.stdin) if w["name"].startswith(sys.argv[1]))))' "slurm-$JA-")
    case "$states" in *draining*) drained=1; break;; esac
    sleep 0.1
done
[ "$drained" = 1 ] || { log "a's workers were never seen draining (states: '$states')"; exit 1; }
log "a's workers drain: $states"
for _ in $(seq 1 400); do
    in_ns c squeue -h -j "$JA" 2>/dev/null | grep -q . || break
    sleep 0.1
done
if in_ns c squeue -h -j "$JA" 2>/dev/null | grep -q .; then log "Slurm job $JA did not end within 40 s"; exit 1; fi
grep -q "draining" "node-$JA.log" || { log "the node of job $JA did not say it drains"; exit 1; }
log "Slurm job $JA ended"
out=$(cli status "$J2" --json 2>/dev/null || true)
for _ in $(seq 1 600); do
    state=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["state"])' "$out" 2>/dev/null || echo unknown)
    case "$state" in queued|running|unknown) sleep 0.1; out=$(cli status "$J2" --json 2>/dev/null || true);; *) break;; esac
done
[ "$state" = succeeded ] || { log "$J2 ended '$state'"; cli status "$J2" >&2 || true; exit 1; }
read -r ON_A ON_B LOST <<<"$(attempts_by_job "$J2")"
# After the scancel (plus a second for the SIGTERM to travel): nothing dispatched to a; what
# ran there finished within the drain grace.
read -r LATE UNFINISHED <<<"$(python3 - "$WORK/agentflow.db" "$J2" "slurm-$JA-" "$CANCEL_AT" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
job, prefix, at = sys.argv[2], sys.argv[3] + "%", float(sys.argv[4])
late = c.execute("SELECT COUNT(*) FROM attempts WHERE job = ? AND worker LIKE ? AND dispatched_at > ? + 1", (job, prefix, at)).fetchone()[0]
unfinished = c.execute("SELECT COUNT(*) FROM attempts WHERE job = ? AND worker LIKE ? AND state != 'succeeded'", (job, prefix)).fetchone()[0]
print(late, unfinished)
EOF
)"
[ "$LOST" = 0 ] || { log "$J2: $LOST attempts lost"; exit 1; }
[ "$LATE" = 0 ] || { log "$J2: $LATE attempts dispatched to a's draining workers after the scancel"; exit 1; }
[ "$UNFINISHED" = 0 ] || { log "$J2: $UNFINISHED attempts on a did not finish during the drain"; exit 1; }
[ "$ON_B" -gt 0 ] || { log "$J2: nothing ran on b"; exit 1; }
log "$J2 succeeded: $ON_A attempts on a (all finished while it drained), $ON_B on b, none lost; total $(( $(date +%s) - T0 ))s"
