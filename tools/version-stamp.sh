#!/bin/sh
# Writes the version of the source tree as Swift (the VersionStamp build plugin runs this
# before every build): `git describe --tags --always --dirty`, else the VERSION file a source
# archive or container build puts at the root, else "unknown". Rewrites OUT only on a change.
#   usage: tools/version-stamp.sh PACKAGE_DIR OUT
set -eu
root=$1
out=$2
version=$(git -C "$root" describe --tags --always --dirty 2>/dev/null || true)
if [ -z "$version" ] && [ -f "$root/VERSION" ]; then version=$(head -n 1 "$root/VERSION"); fi
[ -n "$version" ] || version=unknown
# Only characters that need no escaping inside a Swift string literal.
version=$(printf '%s' "$version" | tr -cd 'A-Za-z0-9._+-')
mkdir -p "$(dirname "$out")"
text="/// The source version baked in at build time (tools/version-stamp.sh).
let agentflowVersion = \"$version\""
if [ ! -f "$out" ] || [ "$(cat "$out")" != "$text" ]; then
    printf '%s\n' "$text" > "$out"
fi
