#!/usr/bin/env bash
# Timing truth: peers that delay on purpose by known amounts, and what routeproof reports;
# then fan-out: 1,000 mixed targets with two slow ones finish in about the slowest's time.
# A DNS server that answers `d<MS>.delay.test` after MS milliseconds, an HTTP server that
# sends the first byte of `/d/<MS>` after MS milliseconds; REPS targets per delay, all in
# one run, CONC at a time (1 by default: the peers are Python, and a loaded Python peer
# adds its own latency, which is not what is being measured). Prints, per delay, the
# reported phase minus the delay (median and max): the goal is 0 ≤ error ≤ 2 ms. The
# error includes the peer's own time to parse the request and send the answer, and the
# client's time to parse the response. Loopback only.
#
#   scripts/bench-timing.sh [REPS=10] [DELAYS="0 5 20 50 200"] [CONC=1]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-10}
DELAYS=${2:-0 5 20 50 200}
CONC=${3:-1}
BIN=${ROUTEPROOF_BIN:-target/release/routeproof}
[ -x "$BIN" ] || cargo build --release --locked
exec python3 - "$BIN" "$REPS" "$DELAYS" "$CONC" <<'PY'
import http.server, json, socket, statistics, struct, subprocess, sys, tempfile, threading, time

BIN, REPS, DELAYS, CONC = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split()], int(sys.argv[4])

actual = {}  # what the peer really waited (sleep overshoots on a busy machine), ms
# DNS over UDP: d<MS>.delay.test A -> 127.0.0.1 after MS ms (AAAA: NOERROR, no records).
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); dns.bind(("127.0.0.1", 0))
def answer(q, peer, t_rx):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    key = labels[0] if labels else ""
    ms = int(key[1:].split("r")[0]) if key.startswith("d") else 0
    a = qtype == 1
    resp = q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1 if a else 0, 0, 0) + question
    if a:
        resp += struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([127, 0, 0, 1])
    delay = t_rx + ms / 1000 - time.perf_counter()
    if delay > 0: time.sleep(delay)
    if a: actual[("dns", key)] = (time.perf_counter() - t_rx) * 1000
    dns.sendto(resp, peer)
def dns_loop():
    while True:
        q, peer = dns.recvfrom(512)
        threading.Thread(target=answer, args=(q, peer, time.perf_counter()), daemon=True).start()
threading.Thread(target=dns_loop, daemon=True).start()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        t_rx = time.perf_counter()
        ms = int(self.path.split("/")[2]) if self.path.startswith("/d/") else 0
        delay = t_rx + ms / 1000 - time.perf_counter()
        if delay > 0: time.sleep(delay)
        actual[("http", self.path)] = (time.perf_counter() - t_rx) * 1000
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
class Srv(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
httpd = Srv(("127.0.0.1", 0), H)
threading.Thread(target=httpd.serve_forever, daemon=True).start()

cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
cfg.write(f'[engine]\ndns_servers = ["127.0.0.1:{dns.getsockname()[1]}"]\nconcurrency = {CONC}\n'
          'tcp_settle = "0s"\n[engine.timeouts]\ndns = "2s"\nhttp = "2s"\n')
for ms in DELAYS:
    for r in range(REPS):
        cfg.write(f'[[targets]]\nname = "dns-{ms}-{r}"\ntarget = "dns://d{ms}r{r}.delay.test"\n')
        cfg.write(f'[[targets]]\nname = "http-{ms}-{r}"\ntarget = "http://127.0.0.1:{httpd.server_address[1]}/d/{ms}/{r}"\n')
cfg.close()
out = subprocess.run([BIN, "probe", "--json", "--config", cfg.name], capture_output=True, text=True)
rep = json.loads(out.stdout)
got = {}
for t in rep["targets"]:
    kind, ms, r = t["name"].split("-")
    if kind == "dns":
        v = next(l["duration_ms"] for l in t["layers"] if l["layer"] == "dns")
        peer = actual[("dns", f"d{ms}r{r}")]
    else:
        v = next(l["ttfb_ms"] for l in t["layers"] if l["layer"] == "http")
        peer = actual[("http", f"/d/{ms}/{r}")]
    got.setdefault((kind, int(ms)), []).append((v - int(ms), v - peer))
print(f"timing truth: {REPS} targets per delay, all {len(rep['targets'])} in one run, {CONC} at a time "
      f"({'all ok' if rep['ok'] else 'NOT all ok'})")
print("error vs injected = reported − requested delay; vs peer = reported − what the peer measured between")
print("receiving the query/request and sending the answer (its sleep overshoots on a busy machine)")
print()
print("| phase | injected delay | error vs injected: median / max | error vs peer: median / max | within 0–2 ms of the peer |")
print("|---|---|---|---|---|")
bad = 0
for (kind, ms), pairs in sorted(got.items()):
    inj = [p[0] for p in pairs]; errs = [p[1] for p in pairs]
    within = sum(-0.1 <= e <= 2 for e in errs)
    bad += len(errs) - within
    phase = "DNS answer (dns layer duration_ms)" if kind == "dns" else "HTTP first byte (ttfb_ms)"
    print(f"| {phase} | {ms} ms | {statistics.median(inj):+.3f} / {max(inj):+.3f} ms | "
          f"{statistics.median(errs):+.3f} / {max(errs):+.3f} ms | {within}/{len(errs)} |")

# ---- fan-out: FAN mixed targets (tcp, dns, http; a few slow ones) in one run, concurrency 64:
# the run should take about as long as its slowest target plus a small constant.
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(4096)
def drain():
    while True: lst.accept()[0].close()
threading.Thread(target=drain, daemon=True).start()
FAN, SLOW = 1000, 300
cfg2 = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
cfg2.write(f'[engine]\ndns_servers = ["127.0.0.1:{dns.getsockname()[1]}"]\nconcurrency = 64\n'
           'tcp_settle = "0s"\n[engine.timeouts]\ndns = "2s"\nhttp = "2s"\n')
hp = httpd.server_address[1]
for i in range(FAN):
    if i in (FAN // 3, 2 * FAN // 3):  # two slow ones, in the middle of the list
        t = f"dns://d{SLOW}r{i}.delay.test" if i == FAN // 3 else f"http://127.0.0.1:{hp}/d/{SLOW}/{i}"
    else:
        # Mostly TCP (the kernel answers), every 10th DNS, every 10th HTTP: the Python peers
        # must not be what the fan-out waits for.
        t = (f"dns://d0r{i}.delay.test" if i % 10 == 1 else f"http://127.0.0.1:{hp}/d/0/{i}" if i % 10 == 2
             else f"tcp://127.0.0.1:{lst.getsockname()[1]}")
    cfg2.write(f'[[targets]]\nname = "f{i}"\ntarget = "{t}"\n')
cfg2.close()
t0 = time.perf_counter()
out2 = subprocess.run([BIN, "probe", "--json", "--config", cfg2.name], capture_output=True, text=True)
wall2 = (time.perf_counter() - t0) * 1000
rep2 = json.loads(out2.stdout)
slowest = max(t["duration_ms"] for t in rep2["targets"])
print()
print(f"fan-out: {FAN} mixed targets (80 % tcp, 10 % dns, 10 % http; one DNS answer and one HTTP first byte delayed {SLOW} ms), "
      f"concurrency 64, {rep2['summary']['ok']}/{FAN} ok")
print("| run duration_ms | slowest target | run − slowest | process wall (exec to exit) |")
print("|---|---|---|---|")
print(f"| {rep2['duration_ms']:.1f} ms | {slowest:.1f} ms | {rep2['duration_ms'] - slowest:+.1f} ms | {wall2:.1f} ms |")
sys.exit(1 if bad or not rep["ok"] or not rep2["ok"] else 0)
PY
