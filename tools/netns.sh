# Network namespaces for the tests that need several "hosts" (sourced by multihost-test.sh and
# slurm-test.sh, as root): a bridge in a namespace of its own and one namespace per host, so
# nothing is added to the host's network and nothing can route off the machine.

# netns_hosts NS LINK SUB HOST...: namespace NS-sw holds the bridge br0; each NS-HOST gets lo
# and eth0 = SUB.i/24 (i = 1, 2, … in the order given), its peer LINKHOST on the bridge.
netns_hosts() {
    local ns=$1 link=$2 sub=$3 i=1 h
    shift 3
    ip netns add "$ns-sw"
    ip -n "$ns-sw" link add br0 type bridge
    ip -n "$ns-sw" link set br0 up
    for h in "$@"; do
        ip netns add "$ns-$h"
        ip -n "$ns-$h" link set lo up
        ip link add "$link$h" type veth peer name eth0 netns "$ns-$h"
        ip link set "$link$h" netns "$ns-sw"
        ip -n "$ns-sw" link set "$link$h" master br0 up
        ip -n "$ns-$h" addr add "$sub.$i/24" dev eth0
        ip -n "$ns-$h" link set eth0 up
        i=$((i + 1))
    done
}

# netns_remove NS HOST...: TERM, then KILL, every process in NS-HOST and NS-sw; delete them.
# Never fails (it runs in EXIT traps).
netns_remove() {
    local ns=$1 h pid
    shift
    for h in "$@" sw; do
        for pid in $(ip netns pids "$ns-$h" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    done
    sleep 0.5
    for h in "$@" sw; do
        for pid in $(ip netns pids "$ns-$h" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns-$h" 2>/dev/null || true
    done
}
