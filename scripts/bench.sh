#!/usr/bin/env bash
# Probe cost and fan-out on loopback: N TCP targets spread over 127.0.0.0/8 addresses,
# optionally N DNS+TCP targets through unbound, one routeproof run each, repeated;
# prints median wall time, CPU time per probe and peak RSS. Loopback only.
#
# Then HTTPS: routeproof's client CPU per probe (N targets in one run, and one process
# per probe) next to curl's (one process per request) against the same TLS server.
#
#   scripts/bench.sh [N=1000] [RUNS=5] [M=100 sequential single-probe runs]
# then, when blackbox_exporter is installed, scripts/bench-blackbox.sh N RUNS, and last
# scripts/bench-native.sh N (each protocol next to its native client).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
RUNS=${2:-5}
M=${3:-100}
# The shipped build (static, non-PIE: scripts/release-build.sh), built if missing.
BIN=${ROUTEPROOF_BIN:-target/x86_64-unknown-linux-gnu/release/routeproof}
[ -x "$BIN" ] || BIN=$(scripts/release-build.sh)
export ROUTEPROOF_BIN="$BIN"
command -v /usr/bin/time >/dev/null || { echo "bench: needs /usr/bin/time (apt-get install time)"; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Listeners on 127.0.0.1..127.0.0.20, one port each, backlog large enough for every probe;
# the kernel completes the handshakes, so the listener's own cost stays out of the figure.
python3 - "$work/ports" <<'PY' &
import socket, sys, time
socks = []
with open(sys.argv[1] + ".tmp", "w") as f:
    for i in range(1, 21):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((f"127.0.0.{i}", 0)); s.listen(4096); socks.append(s)
        f.write(f"127.0.0.{i}:{s.getsockname()[1]}\n")
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    for s in socks:
        s.setblocking(False)
        try:
            while True: s.accept()[0].close()
        except BlockingIOError: pass
    time.sleep(0.01)
PY
pids+=($!)
for _ in $(seq 50); do [ -s "$work/ports" ] && break; sleep 0.1; done
mapfile -t addrs < "$work/ports"

write_cfg() { # $1 file, $2 kind (tcp|dns)
    {
        printf '[engine]\nconcurrency = 64\ntcp_settle = "0s"\ndeadline = "60s"\n'
        [ "$2" = dns ] && printf 'dns_servers = ["%s"]\n' "$DNS"
        for i in $(seq 0 $((N - 1))); do
            a=${addrs[$((i % ${#addrs[@]}))]}
            if [ "$2" = tcp ]; then
                printf '[[targets]]\nname = "t%d"\ntarget = "tcp://%s"\n' "$i" "$a"
            else
                # local.database.windows.net resolves to 127.0.0.1 only: use that listener.
                printf '[[targets]]\nname = "d%d"\ntarget = "tcp://local.database.windows.net:%s"\n' "$i" "${addrs[0]##*:}"
            fi
        done
    } > "$1"
}

measure() { # $1 label, $2 config
    local walls=() cpus=() rss=()
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$BIN" probe --config "$2" --json > "$work/out.json" || true
        read -r w u s m < "$work/t"
        ok=$(python3 -c "import json,sys;r=json.load(open(sys.argv[1]));print(r['summary']['ok'])" "$work/out.json")
        [ "$ok" = "$N" ] || { echo "bench: only $ok of $N targets ok in $1"; exit 1; }
        walls+=("$w"); cpus+=("$(awk "BEGIN{print $u + $s}")"); rss+=("$m")
    done
    python3 - "$1" "$N" "${walls[*]}" "${cpus[*]}" "${rss[*]}" <<'PY'
import statistics, sys
label, n = sys.argv[1], int(sys.argv[2])
w = [float(x) for x in sys.argv[3].split()]; c = [float(x) for x in sys.argv[4].split()]; m = [int(x) for x in sys.argv[5].split()]
print(f"| {label} | {n} | {statistics.median(w)*1000:.0f} ms | {statistics.median(c)*1000:.0f} ms | {statistics.median(c)/n*1e6:.0f} µs | {max(m)/1024:.1f} MiB |")
PY
}

echo "routeproof $("$BIN" --version | cut -d' ' -f2), $(nproc) cores, $(date -u +%F), ${RUNS} runs each, medians"
echo
echo "| run | targets | wall | CPU (user+sys) | CPU per probe | peak RSS |"
echo "|---|---|---|---|---|---|"
write_cfg "$work/tcp.toml" tcp
measure "tcp:// to 20 loopback addresses, concurrency 64" "$work/tcp.toml"

UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
if [ -x "$UNBOUND" ]; then
    port=$(python3 -c "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
    DNS="127.0.0.1:$port"
    cat > "$work/zone" <<ZONE
\$ORIGIN database.windows.net.
\$TTL 60
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
local IN CNAME local.privatelink
local.privatelink IN A 127.0.0.1
ZONE
    cat > "$work/unbound.conf" <<CONF
server:
    interface: 127.0.0.1@$port
    do-ip6: no
    username: ""
    chroot: ""
    directory: "$work"
    pidfile: ""
    use-syslog: no
    logfile: ""
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    msg-cache-size: 0
    rrset-cache-size: 0
auth-zone:
    name: "database.windows.net."
    zonefile: "$work/zone"
    for-downstream: yes
    for-upstream: yes
    fallback-enabled: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@9
CONF
    "$UNBOUND" -d -c "$work/unbound.conf" > "$work/unbound.log" 2>&1 &
    pids+=($!)
    sleep 0.5
    write_cfg "$work/dns.toml" dns
    measure "dns (A+AAAA via unbound, CNAME) + tcp, concurrency 64" "$work/dns.toml"
else
    echo "(unbound not installed: DNS row skipped)"
fi

# ---- HTTPS: routeproof vs curl, client CPU only (the server is Python + OpenSSL) ----
command -v openssl >/dev/null || { echo "(openssl not installed: HTTPS rows skipped)"; exit 0; }
scripts/bench/certs.sh "$work" bench
python3 - "$work" <<'PY' &
import http.server, ssl, sys, os
class H(http.server.BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else Nagle + delayed ACK adds ~40 ms to every first byte
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
w = sys.argv[1]
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(w + "/srv.crt", w + "/srv.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(w + "/https.tmp", "w").write(str(srv.server_address[1])); os.rename(w + "/https.tmp", w + "/https")
srv.serve_forever()
PY
pids+=($!)
for _ in $(seq 50); do [ -s "$work/https" ] && break; sleep 0.1; done
HP=$(cat "$work/https")
URL="https://127.0.0.1:$HP/"
{
    printf '[engine]\nconcurrency = 16\ndeadline = "120s"\nca_file = "%s"\n' "$work/ca.crt"
    for i in $(seq 0 $((N - 1))); do printf '[[targets]]\nname = "h%d"\ntarget = "%s"\n' "$i" "$URL"; done
} > "$work/https.toml"
measure "https (TCP+TLS 1.3+HTTP/1.1 GET), one run, concurrency 16" "$work/https.toml"

# Sequential single-probe processes: what a cron job or a shell loop would pay.
per_process() { # $1 label, $2... command
    local label=$1; shift
    # shellcheck disable=SC2016 # "$@" expands in the inner shell, on purpose
    /usr/bin/time -f "%e %U %S %M" -o "$work/t" bash -c 'for _ in $(seq '"$M"'); do "$@" >/dev/null 2>&1 || exit 1; done' _ "$@"
    read -r w u s m < "$work/t"
    awk -v l="$label" -v m="$M" -v w="$w" -v u="$u" -v s="$s" -v r="$m" 'BEGIN {
        printf "| %s | %d | %.0f ms | %.0f ms | %.0f µs | %.1f MiB |\n", l, m, w*1000, (u+s)*1000, (u+s)/m*1e6, r/1024 }'
}
printf '[engine]\nca_file = "%s"\n[[targets]]\ntarget = "%s"\n' "$work/ca.crt" "$URL" > "$work/one.toml"
per_process "https, routeproof one process per probe (${M} runs)" "$BIN" probe --config "$work/one.toml"
if command -v curl >/dev/null; then
    per_process "https, curl one process per request (${M} runs)" curl -sf -o /dev/null --cacert "$work/ca.crt" "$URL"
else
    echo "(curl not installed: curl row skipped)"
fi

# ---- side by side with blackbox_exporter (same N and RUNS) ----
echo
if command -v prometheus-blackbox-exporter >/dev/null 2>&1; then
    echo "== side by side with blackbox_exporter: scripts/bench-blackbox.sh $N $RUNS =="
    scripts/bench-blackbox.sh "$N" "$RUNS"
else
    echo "(blackbox_exporter not installed: apt-get install prometheus-blackbox-exporter; then this also runs scripts/bench-blackbox.sh)"
fi

# ---- each protocol next to its native client (psql, mariadb, redis-cli, curl, tsql, proton) ----
echo
echo "== next to the native clients: scripts/bench-native.sh $N =="
scripts/bench-native.sh "$N"
