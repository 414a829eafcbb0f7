#!/usr/bin/env bash
# Checks that the llama.cpp libraries of a llama-cpp-python install contain no AMX instruction
# (tile loads/stores, tile dot products, tile configuration). Some VMs advertise AMX in cpuid
# but cannot execute it; a library with AMX code then dies with SIGILL on the first request.
#
#   tools/check-llama-build.sh [VENV | DIR]   # default: .venv of the repository
#
# DIR may be any folder holding libggml*.so / libllama.so (a wheel unpacked, a build tree).
# Identical copies are checked once.
# Exit 0: clean (prints how many AVX-512 instructions there are, for information); 1: AMX found
# (prints the library and the first offending lines); 2: no library found or no objdump.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:-$ROOT/.venv}"
log() { printf '[check-llama-build] %s\n' "$*" >&2; }

command -v objdump >/dev/null 2>&1 || { log "objdump not found (apt-get install binutils)"; exit 2; }
# Every llama.cpp library once (a wheel holds libggml-cpu.so, .so.0 and .so.0.25.3 as copies).
mapfile -t libs < <(find "$TARGET" \( -name 'libggml*.so*' -o -name 'libllama*.so*' -o -name 'libmtmd*.so*' \) -type f 2>/dev/null |
    sort | xargs -r sha256sum | sort -s -k1,1 -u | awk '{print $2}' | sort)
[ "${#libs[@]}" -gt 0 ] || { log "no libggml*.so or libllama*.so under $TARGET"; exit 2; }

# AMX mnemonics as GNU objdump prints them: ldtilecfg, sttilecfg, tileloadd(t1), tilestored,
# tilerelease, tilezero, tdpbssd/tdpbsud/tdpbusd/tdpbuud, tdpbf16ps, tdpfp16ps, tcmmimfp16ps...
AMX='\b(ldtilecfg|sttilecfg|tileloaddt?1?|tilestored|tilerelease|tilezero|tdpb[a-z0-9]*|tdpfp16ps|tcmmi?mfp16ps|tcmmrlfp16ps)\b'
bad=0
for lib in "${libs[@]}"; do
    dis="$(objdump -d --no-show-raw-insn "$lib")"
    amx="$(grep -E "$AMX" <<<"$dis" || true)"
    if [ -n "$amx" ]; then
        log "AMX instructions in $lib ($(wc -l <<<"$amx") lines), e.g.:"
        head -5 <<<"$amx" >&2
        bad=1
    else
        zmm="$(grep -c '%zmm' <<<"$dis" || true)"
        log "ok: no AMX in $(basename "$lib") ($zmm AVX-512 zmm instructions)"
    fi
done
if [ "$bad" = 1 ]; then
    log "this llama.cpp build uses AMX, which many VMs cannot execute: rebuild portably (tools/setup-models.sh)"
    exit 1
fi
