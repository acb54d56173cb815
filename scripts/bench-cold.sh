#!/usr/bin/env bash
# Cold start, A/B: exec → the first 200 on `GET /` for two or more `routeproof` builds and the
# static C floor (scripts/bench/floor.c), starts interleaved (one start of each per round, each
# round in a shuffled order) so the machine's load hits every binary alike; medians, p10-p90,
# and each as a multiple of the floor.
# `serve` runs as the Functions host starts it (bare `serve`, FUNCTIONS_CUSTOMHANDLER_PORT set,
# no config file, so the compiled-in default), and the poll is a fresh connection every 0.2 ms
# until one is answered. Only 127.0.0.1 is used.
#
#   scripts/bench-cold.sh [N=40] NAME=BINARY [NAME=BINARY ...]
#   e.g. scripts/bench-cold.sh 40 before=/tmp/routeproof-old after=target/x86_64-unknown-linux-gnu/release/routeproof
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n=40
if [[ ${1:-} =~ ^[0-9]+$ ]]; then n=$1; shift; fi
[ $# -gt 0 ] || { echo "usage: $0 [N] NAME=BINARY..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -static -o "$work/floor" "$root/scripts/bench/floor.c"
PYTHONPATH="$root/scripts/bench" exec python3 - "$work" "$n" "$@" <<'PY'
import os, random, statistics, subprocess, sys, time
from common import free_port, wait_200  # scripts/bench/common.py
work, n, pairs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
bins = {"floor": f"{work}/floor"}
for p in pairs:
    name, _, path = p.partition("=")
    if not path or not os.access(path, os.X_OK):
        raise SystemExit(f"not NAME=EXECUTABLE: {p}")
    bins[name] = os.path.abspath(path)

def start(name, path):
    port = free_port()
    env = dict(os.environ, FUNCTIONS_CUSTOMHANDLER_PORT=str(port), ROUTEPROOF_SCHEDULE="0 */5 * * * *")
    env.pop("ROUTEPROOF_CONFIG", None)
    cmd = [path, str(port)] if name == "floor" else [path, "serve"]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answered = wait_200(port, proc=p, what=name)
    took = answered - t0
    p.kill(); p.wait()
    return took

# Each round in a new order: the binary started right after another one is measured
# differently (0.05-0.15 ms at p10 here with the same binary under two names), so a fixed
# order favours one slot.
times = {k: [] for k in bins}
order = list(bins.items())
shuffle = random.Random(n).shuffle
for _ in range(n):
    shuffle(order)
    for k, v in order:
        times[k].append(start(k, v))
floor = statistics.median(times["floor"])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"{n} interleaved starts each, {os.cpu_count()} cores ({cpu}), {time.strftime('%Y-%m-%d')}")
print("| binary | median | p10–p90 | × floor |")
print("|---|---|---|---|")
for k, v in times.items():
    q = statistics.quantiles(v, n=10)
    print(f"| {k} | {statistics.median(v) * 1e3:.2f} ms | {q[0] * 1e3:.2f}–{q[-1] * 1e3:.2f} ms | {statistics.median(v) / floor:.2f}× |")
PY
