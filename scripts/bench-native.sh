#!/usr/bin/env bash
# Per-protocol cost of routeproof next to each protocol's native client (issue 19, goal 3),
# side by side in one run on loopback, medians. For every protocol:
#
#   - native: one client process doing handshake + login + a trivial command
#     (psql -c 'SELECT 1', mariadb -e 'SELECT 1', redis-cli PING, curl GET, FreeTDS tsql
#     SELECT 1, a python-qpid-proton connect + SASL PLAIN + open + close);
#   - routeproof one-shot: one `routeproof probe --json` process with that one target
#     (the same login and command; whole process: start-up, config, report included);
#   - routeproof amortised: one `routeproof probe` process with N targets of that
#     protocol at concurrency CONC; CPU per probe = the process's CPU / N.
#
# CPU is user + sys of the child from wait4 (µs resolution), wall is exec to exit.
# Runs are interleaved (native, routeproof, native, ...) so machine load hits both alike;
# every probe and every client run must succeed or the script stops. The servers
# (PostgreSQL 15, MariaDB, Redis 7, a Python HTTPS server, the project's TDS test server,
# RabbitMQ 3.10 with rabbitmq_amqp1_0) are started here in a temp dir on 127.0.0.1 with
# random free ports, and killed on exit; their CPU is in no figure.
#
#   scripts/bench-native.sh [N=1000] [RUNS=15]     # env: CONC=16 AMORT_RUNS=3 ONLY="postgres redis ..."
#
# ROUTEPROOF_BIN (default: the static build of scripts/release-build.sh, else
# target/release/routeproof); LAB_PEER (default
# target/debug/examples/lab_peer, the project's TDS test server, built when missing; without
# it the TDS row is left out and the output says why). ONLY picks rows by name prefix
# (postgres, postgres+tls, mariadb, mariadb+tls, redis, redis+tls, https, tds, amqp).
# Needs: postgresql-15, mariadb-server + client, redis-server + redis-tools, curl, openssl,
#   freetds-bin (tsql), rabbitmq-server, python-qpid-proton (pip), python3 (3.9+).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-${N:-1000}}
RUNS=${2:-${RUNS:-15}}
CONC=${CONC:-16}
AMORT_RUNS=${AMORT_RUNS:-3}
# The shipped static build (scripts/release-build.sh) when it is there, else the plain release build.
BIN=${ROUTEPROOF_BIN:-target/x86_64-unknown-linux-gnu/release/routeproof}
[ -n "${ROUTEPROOF_BIN:-}" ] || [ -x "$BIN" ] || BIN=target/release/routeproof
[ -x "$BIN" ] || { echo "bench-native: $BIN missing (cargo build --release --locked, or set ROUTEPROOF_BIN)"; exit 2; }
for t in openssl python3 curl psql mariadb redis-cli redis-server; do
    command -v "$t" >/dev/null || { echo "bench-native: needs $t"; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench-native: run as root (servers run as their system users)"; exit 2; }
if [ -z "${LAB_PEER:-}" ]; then
    LAB_PEER=${CARGO_TARGET_DIR:-target}/debug/examples/lab_peer
    if [ ! -x "$LAB_PEER" ]; then
        echo "bench-native: building the TDS test server (cargo build --example lab_peer)" >&2
        cargo build --quiet --locked --example lab_peer || true # else: no TDS row, and the output says why
    fi
fi

work=$(mktemp -d /tmp/bench-native.XXXXXX)
chmod 755 "$work" # the servers' own users reach their subdirectories
py=
cleanup() {
    if [ -n "$py" ]; then kill -TERM "$py" 2>/dev/null || true; wait "$py" 2>/dev/null || true; fi
    # The Python side stops its servers; this catches whatever a crash left behind:
    # each server runs in its own session, recorded here as a process group id.
    if [ -f "$work/pgids" ]; then
        while read -r pg; do kill -KILL -- "-$pg" 2>/dev/null || true; done < "$work/pgids"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One CA and a server certificate for localhost and 127.0.0.1, shared by the TLS servers.
scripts/bench/certs.sh "$work" bench-native

# In the background so that INT/TERM reach the trap at once (it stops Python, which stops its servers).
python3 -B scripts/bench/native.py "$work" "$BIN" "$LAB_PEER" "$N" "$RUNS" "$CONC" "$AMORT_RUNS" "${ONLY:-}" &
py=$!
# Once reaped, the trap must not signal that pid (it may be reused).
if wait "$py"; then py=; else rc=$?; py=; exit "$rc"; fi
