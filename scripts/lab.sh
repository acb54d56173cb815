#!/usr/bin/env bash
# The VNet lab: a Function App's network rebuilt in Linux network namespaces, and the
# failures people hit in Azure, each run through routeproof with its verdict asserted.
# docs/lab.md has the picture, the closure guarantee and every scenario's story.
#
#   sudo scripts/lab.sh up | down | status | list | run SCENARIO... | test
#
# `run` and `test` bring the lab up when it is not, and take it down again on exit
# (also on failure or Ctrl-C); a lab brought up with `up` stays until `down`.
# Binaries: ROUTEPROOF_BIN and LAB_PEER (default: $CARGO_TARGET_DIR or ./target,
# debug/routeproof and debug/examples/lab_peer, built with cargo when missing).
# State: LAB_DIR (default /run/routeproof-lab): pid files, DNS zones, reports, logs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_DIR=${LAB_DIR:-/run/routeproof-lab}
P=rpl-
LAB_NS="app vnet pe dnsc azdns inet nat plat nva"
# The lab's throw-away SQL login password: made at `up`, kept in LAB_DIR (mode 600),
# handed to the TDS servers and to routeproof in the environment, never as an argument.
sql_password() { cat "$LAB_DIR/sql-password"; }

# (each is checked on its own: shellcheck scripts/lab/*.sh)
# shellcheck disable=SC1091
. "$ROOT/scripts/lab/dns.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/lab/scenarios.sh"

die() { echo "lab: $*" >&2; exit 2; }
nx() { local n=$1; shift; ip netns exec "$P$n" "$@"; }
ipn() { local n=$1; shift; ip -n "$P$n" "$@"; }

need_tools() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces): sudo $0 ${CMD:-}"
    local t
    for t in ip nft unbound unbound-checkconf jq ss setsid; do
        command -v "$t" >/dev/null || die "missing $t (apt-get install -y --no-install-recommends iproute2 nftables unbound jq)"
    done
}

bins() {
    local t=${CARGO_TARGET_DIR:-$ROOT/target}
    ROUTEPROOF_BIN=${ROUTEPROOF_BIN:-$t/debug/routeproof}
    LAB_PEER=${LAB_PEER:-$t/debug/examples/lab_peer}
    if [ ! -x "$ROUTEPROOF_BIN" ] || [ ! -x "$LAB_PEER" ]; then
        echo "lab: building routeproof and the lab peer" >&2
        (cd "$ROOT" && cargo build --quiet --bin routeproof --example lab_peer) >&2
    fi
    [ -x "$ROUTEPROOF_BIN" ] || die "no routeproof binary at $ROUTEPROOF_BIN"
    [ -x "$LAB_PEER" ] || die "no lab peer at $LAB_PEER"
}

# A veth pair created inside lab namespace A with its peer moved straight into lab
# namespace B: no end of it ever exists in the root namespace.
veth() { # NS_A IF_A ADDR_A NS_B IF_B ADDR_B
    ipn "$1" link add "$2" type veth peer name "$5" netns "$P$4"
    ipn "$1" addr add "$3" dev "$2"
    ipn "$4" addr add "$6" dev "$5"
    ipn "$1" link set "$2" up
    ipn "$4" link set "$5" up
}

topology() {
    local n
    for n in $LAB_NS; do
        ip netns add "$P$n"
        nx "$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        ipn "$n" link set lo up
    done
    # the Function instance: integration subnet, and the platform's own outbound path
    veth app app0 10.60.1.4/26 vnet v-app 10.60.1.1/26
    veth app plat0 169.254.254.2/30 plat p-app 169.254.254.1/30
    # the VNet's router and its subnets
    veth vnet v-pe 10.60.2.1/27 pe pe0 10.60.2.4/27
    for n in 5 7 8 9; do ipn pe addr add 10.60.2.$n/27 dev pe0; done
    veth vnet v-dns 10.60.0.1/27 dnsc dns0 10.60.0.4/27
    veth vnet v-nva 10.60.3.1/28 nva nva0 10.60.3.4/28
    veth vnet v-az 10.60.255.1/30 azdns az0 10.60.255.2/30
    ipn azdns addr add 168.63.129.16/32 dev az0
    veth vnet v-nat 10.60.254.1/30 nat n-vnet 10.60.254.2/30
    # the "internet": reached only through the NAT gateway or the platform
    veth nat n-inet 198.51.100.10/29 inet i-nat 198.51.100.9/29
    veth plat p-inet 198.51.100.20/29 inet i-plat 198.51.100.17/29
    for n in 203.0.113.10 203.0.113.20 203.0.113.30 198.51.100.53; do
        ipn inet addr add $n/32 dev lo
    done

    for n in vnet nat plat nva; do nx $n sysctl -qw net.ipv4.ip_forward=1; done
    ipn app route add 10.60.0.0/16 via 10.60.1.1
    ipn app route add 168.63.129.16/32 via 10.60.1.1
    ipn app route add default via 169.254.254.1 # route-all off (changed by 08)
    ipn vnet route add 168.63.129.16/32 via 10.60.255.2
    ipn vnet route add default via 10.60.254.2
    ipn pe route add default via 10.60.2.1
    ipn dnsc route add default via 10.60.0.1
    ipn azdns route add default via 10.60.255.1
    ipn nva route add default via 10.60.3.1
    ipn nat route add 10.60.0.0/16 via 10.60.254.1
    ipn nat route add default via 198.51.100.9
    ipn plat route add default via 198.51.100.17
    # rpl-inet has no default route: an address outside the lab is unreachable there.

    # NAT gateway and platform SNAT; the appliance drops everything it should forward.
    nx nat nft -f - <<'EOF'
table ip lab {
  chain post {
    type nat hook postrouting priority 100;
    oifname "n-inet" masquerade
  }
}
EOF
    nx plat nft -f - <<'EOF'
table ip lab {
  chain post {
    type nat hook postrouting priority 100;
    oifname "p-inet" masquerade
  }
}
EOF
    nx nva nft -f - <<'EOF'
table inet lab {
  chain forward { type filter hook forward priority 0; policy drop; }
}
EOF
    # The chains the scenarios fill: the NSGs (vnet forward), the router's own ICMP
    # (vnet output), the endpoint's answer (pe input), the custom DNS host (dnsc input).
    nx vnet nft -f - <<'EOF'
table inet lab {
  chain forward { type filter hook forward priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
EOF
    for n in pe dnsc; do
        nx $n nft -f - <<'EOF'
table inet lab {
  chain input { type filter hook input priority 0; policy accept; }
}
EOF
    done
}

# ---- daemons (pid files in LAB_DIR; only these are ever stopped) ----

daemon() { # NAME NS CMD...
    local name=$1 n=$2
    shift 2
    setsid ip netns exec "$P$n" "$@" >"$LAB_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$LAB_DIR/$name.pid"
}

# alive: exists and is not a zombie (a daemon of an earlier `up` is reparented, and
# its new parent may reap it late)
alive() { [ -r "/proc/$1/stat" ] && ! awk '{ exit ($3 == "Z") ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null; }

stop_daemon() {
    local f=$LAB_DIR/$1.pid pid _
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if kill "$pid" 2>/dev/null; then
        # our own child is reaped here; one started by an earlier `up` is polled
        wait "$pid" 2>/dev/null || true
        for _ in $(seq 50); do alive "$pid" || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

wait_listen() { # NS PROTO(t|u) ADDR PORT
    local _
    for _ in $(seq 100); do
        if nx "$1" ss -Hln"$2" "src $3 and sport = :$4" | grep -q .; then return 0; fi
        sleep 0.05
    done
    die "nothing listens on $3:$4 in $P$1 (see $LAB_DIR/*.log)"
}

unbound_start() { # NAME NS ADDR[:PORT] CONF-FUNCTION ARGS...
    local name=$1 n=$2 addr=${3%:*} port=53 fn=$4
    case $3 in *:*) port=${3#*:} ;; esac
    shift 4
    local d=$LAB_DIR/dns
    "$fn" "$d" "$@" >"$d/$name.conf"
    unbound-checkconf "$d/$name.conf" >/dev/null || die "bad unbound config $d/$name.conf"
    daemon "$name" "$n" unbound -d -c "$d/$name.conf"
    echo "${1:-}" >"$LAB_DIR/$name.mode"
    wait_listen "$n" u "$addr" "$port"
}

# Restart a DNS server only when its mode changes.
dns_mode() { # azdns linked|unlinked  /  dnsc forwarder|noforwarder
    local cur
    cur=$(cat "$LAB_DIR/$1.mode" 2>/dev/null || true)
    [ "$cur" = "$2" ] && return 0
    stop_daemon "$1"
    case $1 in
        azdns) unbound_start azdns azdns 168.63.129.16 dns_conf_azure "$2" ;;
        dnsc) unbound_start dnsc dnsc 10.60.0.4 dns_conf_custom "$2" ;;
    esac
}

peers_ready() { [ -f "$LAB_DIR/peer-pe.ready" ] && [ -f "$LAB_DIR/peer-inet.ready" ]; }

peers() {
    local names='*.database.windows.net,*.vault.azure.net,*.azurewebsites.net'
    rm -f "$LAB_DIR"/peer-*.ready
    LAB_SQL_PASSWORD=$(sql_password) daemon peer-pe pe "$LAB_PEER" --names "$names" --ca-out "$LAB_DIR/ca-pe.pem" \
        --ready "$LAB_DIR/peer-pe.ready" \
        --tds 10.60.2.4:1433 --tds 10.60.2.7:1433 \
        --tds 10.60.2.8:1433=redirsql.database.windows.net:11000 --tds 10.60.2.8:11000 \
        --witness 10.60.2.5:443 --big 10.60.2.9:443
    daemon peer-inet inet "$LAB_PEER" --names "$names" --ca-out "$LAB_DIR/ca-inet.pem" \
        --ready "$LAB_DIR/peer-inet.ready" --witness 203.0.113.20:443
    local _
    for _ in $(seq 200); do
        peers_ready && break
        sleep 0.05
    done
    peers_ready || die "the lab peers did not start (see $LAB_DIR/peer-*.log)"
    cat "$LAB_DIR/ca-pe.pem" "$LAB_DIR/ca-inet.pem" >"$LAB_DIR/ca.pem"
}

# ---- closure: nothing of the lab touches the root namespace ----

closure_check() {
    local bad=0 n line
    if ip -o link show | grep -q "link-netns $P"; then
        echo "lab: CLOSURE BROKEN: a root-namespace interface is paired with a lab namespace" >&2
        bad=1
    fi
    for n in $LAB_NS; do
        while read -r line; do
            case $line in *"link-netns $P"*) ;; *)
                echo "lab: CLOSURE BROKEN: in $P$n: $line" >&2
                bad=1 ;;
            esac
        done < <(ipn "$n" -o link show type veth)
        [ "$(ipn "$n" -o link show | grep -vc ': lo:\|veth\|link-netns')" = 0 ] || {
            echo "lab: CLOSURE BROKEN: $P$n has a non-veth interface" >&2
            bad=1
        }
    done
    if [ -n "$(ipn inet route show default)" ]; then
        echo "lab: CLOSURE BROKEN: the lab's internet has a default route" >&2
        bad=1
    fi
    return $bad
}

lab_is_up() { [ -f "$LAB_DIR/up" ] && ip netns list | grep -q "^${P}app\b"; }

lab_up() {
    if lab_is_up; then return 0; fi
    lab_down quiet
    bins
    mkdir -p "$LAB_DIR/dns" "$LAB_DIR/runs"
    (umask 077 && printf 'Lab-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$LAB_DIR/sql-password")
    trap 'echo "lab: up failed; cleaning up" >&2; lab_down quiet' EXIT
    topology
    dns_write_public_zones "$LAB_DIR/dns"
    dns_write_private_zones "$LAB_DIR/dns"
    unbound_start pubdns inet 198.51.100.53 dns_conf_public
    unbound_start privzones azdns 127.0.0.1:5353 dns_conf_private
    unbound_start azdns azdns 168.63.129.16 dns_conf_azure linked
    unbound_start dnsc dnsc 10.60.0.4 dns_conf_custom forwarder
    peers
    printf 'nameserver 168.63.129.16\n' >"$LAB_DIR/app-resolv.conf"
    closure_check || die "closure check failed"
    trap - EXIT
    echo "$ROUTEPROOF_BIN" >"$LAB_DIR/up"
}

lab_down() {
    local n pid
    for f in "$LAB_DIR"/*.pid; do
        [ -e "$f" ] || continue
        stop_daemon "$(basename "$f" .pid)"
    done
    for n in $LAB_NS; do
        if ip netns list | grep -q "^$P$n\b"; then
            # anything still running inside a lab namespace was started by the lab
            for pid in $(ip netns pids "$P$n" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$P$n"
        fi
    done
    rm -rf "$LAB_DIR"
    [ "${1:-}" = quiet ] || echo "lab: down"
}

lab_status() {
    local n f
    if ! lab_is_up; then echo "lab: down"; return 0; fi
    echo "lab: up ($LAB_DIR)"
    for n in $LAB_NS; do
        printf '  %-10s %s\n' "$P$n" "$(ipn "$n" -4 -o addr show | awk '$2 != "lo" {print $4}' | paste -sd' ')"
    done
    for f in "$LAB_DIR"/*.pid; do
        n=$(basename "$f" .pid)
        if kill -0 "$(cat "$f")" 2>/dev/null; then echo "  $n: running"; else echo "  $n: DEAD"; fi
    done
    closure_check && echo "  closed: no lab interface is paired with the root namespace; the internet has no default route"
}

# Bring the lab up for this command only when it is not up already.
with_lab() {
    if lab_is_up; then
        ROUTEPROOF_BIN=${ROUTEPROOF_BIN:-$(cat "$LAB_DIR/up")}
        bins
    else
        lab_up
        trap 'lab_down quiet' EXIT
    fi
}

main() {
    # a signal becomes an exit, so the EXIT traps (cleanup) run
    trap 'exit 130' INT TERM
    local cmd=${1:-} s
    CMD=$cmd
    [ $# -gt 0 ] && shift
    case $cmd in
        up) need_tools; lab_up; lab_status ;;
        down) need_tools; lab_down ;;
        status) need_tools; lab_status ;;
        list) printf '%s\n' "${SCENARIOS[@]}" ;;
        run)
            [ $# -gt 0 ] || die "run SCENARIO... (see: $0 list)"
            for s in "$@"; do
                declare -F "sc_${s//-/_}" >/dev/null || die "no scenario $s (see: $0 list)"
            done
            need_tools; with_lab; run_scenarios "$@" ;;
        test) need_tools; with_lab; run_scenarios "${SCENARIOS[@]}" ;;
        *) echo "usage: $0 up|down|status|list|run SCENARIO...|test" >&2; exit 2 ;;
    esac
}

[ "${LAB_SOURCE_ONLY:-}" = 1 ] || main "$@"
