#!/usr/bin/env bash
# Writes scripts/startup.order: the functions a `serve` start runs up to its first answer,
# then through its first requests on the real server and a clean stop, main thread first,
# for the linker to lay out side by side (scripts/release-build.sh passes it to lld as
# --symbol-ordering-file). Spread
# over a 12 MB binary, that code cost ~100 page faults of ~2 µs each on the way to the first
# `GET /`; packed, a few (docs/benchmarks.md, "Cold start").
#
#   scripts/startup-order.sh        rebuilds with a link map, records one start under
#                                   valgrind (callgrind), writes scripts/startup.order
#
# Needs valgrind. Rerun after a dependency update or a large change: release-build.sh says
# how many of the file's symbols the build no longer has. The file is a layout hint only: a
# stale or missing one changes where code sits, never what it does. Only 127.0.0.1 is used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v valgrind >/dev/null || { echo "startup-order: needs valgrind" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$(ROUTEPROOF_NO_ORDER=1 "$root/scripts/release-build.sh")
PYTHONPATH="$root/scripts/bench" python3 - "$bin" "$work" "$bin.map" "$root/scripts/startup.order" <<'PY'
import bisect, glob, os, re, signal, socket, subprocess, sys, time
from common import free_port, wait_200  # scripts/bench/common.py
bin, work, mapfile, out = sys.argv[1:]

port = free_port()
env = dict(os.environ, FUNCTIONS_CUSTOMHANDLER_PORT=str(port), ROUTEPROOF_SCHEDULE="0 */5 * * * *")
env.pop("ROUTEPROOF_CONFIG", None)
p = subprocess.Popen(["valgrind", "--tool=callgrind", "--separate-threads=yes", "--dump-instr=yes",
                      "--compress-pos=no", "--compress-strings=no",
                      f"--callgrind-out-file={work}/cg.out", bin, "serve"],
                     env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_200(port, proc=p, deadline_s=120, pause_s=0.05, what="startup-order: serve under valgrind")
# The runtime is up by now: the same poll, then the health and metrics routes, through the
# real server (hyper, axum), whose first request is the next thing a new process serves.
time.sleep(3)
for path in ("/", "/api/health", "/api/metrics"):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        while s.recv(65536):
            pass
p.send_signal(signal.SIGINT)
p.wait(timeout=120)

# lld's map: input-section lines end in `file:(.text.NAME)`; symbol lines under them name it.
sections = []  # (start, end, [symbols])
sec_re = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S.*:\((\.text[^)]*)\)$")
sym_re = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+\d+\s+([^\s.][^\s]*)$")
for line in open(mapfile):
    m = sec_re.match(line)
    if m:
        start, size = int(m[1], 16), int(m[2], 16)
        sections.append([start, start + size, []])
        continue
    m = sym_re.match(line)
    if m and sections and ":(" not in m[2]:
        sections[-1][2].append(m[2])
sections.sort()
starts = [s[0] for s in sections]

def section_of(addr):
    i = bisect.bisect_right(starts, addr) - 1
    return i if i >= 0 and addr < sections[i][1] else None

# callgrind, one file per thread: the main thread (-01) first, then the others in start order.
order, seen = [], set()
# Within a thread, in address order: callgrind lists functions in no stable order, and a
# rerun should differ only where the code did.
for f in sorted(glob.glob(f"{work}/cg.out-*"), key=lambda f: int(f.rsplit("-", 1)[1])):
    ran = set()
    for line in open(f):
        m = re.match(r"^(?:\+|\*)?(0x[0-9a-f]+)\s", line)
        if not m:
            continue
        i = section_of(int(m[1], 16))
        if i is not None and i not in seen and sections[i][2]:
            ran.add(i)
    seen |= ran
    order += [sections[i][2][0] for i in sorted(ran)]
size = sum(sections[i][1] - sections[i][0] for i in seen)
with open(out, "w") as o:
    o.write("\n".join(order) + "\n")
print(f"startup-order: {len(order)} functions, {size // 1024} KiB of code, -> {out}")
PY
