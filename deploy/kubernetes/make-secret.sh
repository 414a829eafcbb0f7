#!/usr/bin/env bash
# Makes the Secret `agentflow` the base mounts, with fresh keys (nothing secret is kept in the
# repository): the coordinator's CURVE key pair, the nodes' key pair (bound to worker names
# agentflow-node-*), HTTP tokens (admin, read, and the read token Prometheus scrapes with) and
# the cluster file that names them. Prints the Secret as YAML; the files stay in OUT_DIR.
#   deploy/kubernetes/make-secret.sh [OUT_DIR] | kubectl apply -n agentflow -f -
# AGENTFLOW (default: agentflow on the PATH) is the binary that makes the keys; MODELS_YAML
# (default: the qwen3-8b line below) the cluster file's models list.
set -euo pipefail
AGENTFLOW=${AGENTFLOW:-agentflow}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
umask 077
"$AGENTFLOW" keys --out "$OUT/coordinator.key" > /dev/null
"$AGENTFLOW" keys --out "$OUT/node.key" > /dev/null
# The operator's CLI key (stays in OUT_DIR, not in the Secret): with HTTP tokens on, the client
# socket answers only keys listed in clientKeys, so it is no way around the tokens.
"$AGENTFLOW" keys --out "$OUT/operator.key" > /dev/null
server=$(sed -n 's/^public: //p' "$OUT/coordinator.key")
node=$(sed -n 's/^public: //p' "$OUT/node.key")
operator=$(sed -n 's/^public: //p' "$OUT/operator.key")
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
metrics=$(token)
printf 'admin %s\nread %s\nread %s\n' "$(token)" "$(token)" "$metrics" > "$OUT/http-tokens"
printf '%s' "$metrics" > "$OUT/metrics-token"
if [ -z "${MODELS_YAML:-}" ]; then
    MODELS_YAML='  - {name: qwen3-8b, price: {input: 0, output: 0}, context: 32768}'
fi
cat > "$OUT/cluster.yaml" <<YAML
coordinator:
  bind: tcp://0.0.0.0                     # the pod's interfaces; peers use the Service below
  workers: tcp://agentflow-coordinator:5555
  clients: tcp://agentflow-coordinator:5556
  database: /var/lib/agentflow/agentflow.db
  http: 0.0.0.0:8080
  httpTokens: /etc/agentflow/http-tokens
  curve:
    serverKey: "$server"
    serverKeyFile: /etc/agentflow/coordinator.key
    clientKeyFile: /etc/agentflow/node.key
    workerKeys:
      "agentflow-node-*": "$node"
    clientKeys:                           # agentflow … --key operator.key
      "$operator": admin
models:
$MODELS_YAML
YAML
echo "make-secret: keys, tokens and cluster.yaml in $OUT (keep them; the admin token is the first line of http-tokens, the CLI's key is operator.key)" >&2
cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: agentflow
  namespace: agentflow
type: Opaque
data:
YAML
for f in cluster.yaml coordinator.key node.key http-tokens metrics-token; do
    printf '  %s: %s\n' "$f" "$(base64 -w0 < "$OUT/$f")"
done
