# shellcheck shell=bash
# Hosts as Linux network namespaces, sourced by scripts/cluster.sh: one bridge in the root
# namespace (the clients' side, CLUSTER_GATEWAY) and, per host, a namespace with a veth pair
# whose outer end is on the bridge. A host's link can be cut and restored from outside (its
# outer end down/up), as a pulled cable would. Everything is named with NETNS_PREFIX, so only
# what this made is ever removed. Needs: log, die.

NETNS_PREFIX=${NETNS_PREFIX:-tac}
NETNS_BRIDGE="$NETNS_PREFIX-br"

netns_name() { printf '%s-%s\n' "$NETNS_PREFIX" "$1"; }   # HOST -> its namespace (and outer link)

netns_bridge_up() {  # GATEWAY/PREFIXLEN: the bridge with the root namespace's address on it
    ip link show "$NETNS_BRIDGE" >/dev/null 2>&1 && return 0
    ip link add "$NETNS_BRIDGE" type bridge
    ip addr add "$1" dev "$NETNS_BRIDGE"
    ip link set "$NETNS_BRIDGE" up
}

netns_host_up() {  # HOST ADDRESS/PREFIXLEN: its namespace, loopback up, eth0 on the bridge
    local ns outer
    ns=$(netns_name "$1")
    outer=$ns
    ip netns list | grep -qx "$ns\( .*\)\?" && return 0
    ip netns add "$ns"
    ip link add "$outer" type veth peer name eth0 netns "$ns"
    ip link set "$outer" master "$NETNS_BRIDGE" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add "$2" dev eth0
    ip netns exec "$ns" ip link set eth0 up
}

netns_exec() {  # HOST CMD...: CMD in that host's namespace
    local ns
    ns=$(netns_name "$1")
    ip netns exec "$ns" "${@:2}"
}

netns_link() {  # HOST up|down: its cable in or out
    ip link set "$(netns_name "$1")" "$2"
}

netns_down() {  # HOST...: their namespaces (and veth pairs), then the bridge
    local h ns
    for h in "$@"; do
        ns=$(netns_name "$h")
        ip link del "$ns" 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del "$NETNS_BRIDGE" 2>/dev/null || true
}
