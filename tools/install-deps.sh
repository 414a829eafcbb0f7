#!/usr/bin/env bash
# Installs the Debian packages AgentFlow builds against (idempotent: only what is missing).
#   libzmq3-dev (ZeroMQ), libsqlite3-dev (SQLite), libcurl4-openssl-dev (libcurl),
#   python3-venv (the local model server's virtual environment), cmake and build-essential
#   (llama.cpp is compiled from the registry's source package), curl (readiness checks),
#   chromium (headless: the dashboard test renders the page in a real browser),
#   iproute2 and nftables (the multi-host test's network namespaces and packet loss).
set -euo pipefail
packages=(libzmq3-dev libsqlite3-dev libcurl4-openssl-dev python3-venv cmake build-essential pkg-config curl iproute2 nftables chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
echo "[install-deps] installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
command -v swift >/dev/null || { echo "[install-deps] swift (6.x) is not on PATH" >&2; exit 1; }
