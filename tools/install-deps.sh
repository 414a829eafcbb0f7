#!/usr/bin/env bash
# Installs the Debian packages AgentFlow builds against (idempotent: only what is missing).
#   libzmq3-dev (ZeroMQ), libsqlite3-dev (SQLite), libcurl4-openssl-dev (libcurl),
#   libpq-dev (PostgreSQL's client library) and postgresql-15 (the PostgreSQL store's tests and
#   the failover test start throw-away servers of their own; Debian's package also starts a
#   default one on 5432, which the tests leave alone),
#   zlib1g-dev (gzip for the inputs and outputs of agent work),
#   python3-venv (the local model server's virtual environment), cmake and build-essential
#   (llama.cpp is compiled from the registry's source package), curl (readiness checks),
#   chromium (headless: the dashboard test renders the page in a real browser),
#   iproute2 and nftables (the multi-host test's network namespaces and packet loss),
#   bubblewrap (the sandbox model-written code runs in),
#   openssl (the TLS tests make a throw-away certificate authority),
#   prometheus (for its promtool: `make test` checks /metrics, the alert rules and the Grafana
#   dashboard's queries with it; installed without the node exporter it recommends),
#   slurmctld, slurmd, slurm-client and munge (the Slurm test runs real daemons; installed
#   without recommends, and none is started here: the test starts its own),
#   systemd (for systemd-analyze: the tests verify and rate tools/systemd's units offline;
#   nothing is started), nftables also for the firewall files' test.
set -euo pipefail
packages=(libzmq3-dev libsqlite3-dev libcurl4-openssl-dev libpq-dev zlib1g-dev python3-venv cmake build-essential pkg-config curl iproute2 nftables chromium bubblewrap openssl)
plain=(postgresql-15 prometheus slurmctld slurmd slurm-client munge systemd)
missing=()
missing_plain=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${plain[@]}"; do installed "$p" || missing_plain+=("$p"); done
if [ "${#missing[@]}" -eq 0 ] && [ "${#missing_plain[@]}" -eq 0 ]; then
    exit 0
fi
echo "[install-deps] installing: ${missing[*]} ${missing_plain[*]}" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${#missing_plain[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing_plain[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "[install-deps] swift (6.x) is not on PATH" >&2; exit 1; }
