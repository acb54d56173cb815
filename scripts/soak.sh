#!/usr/bin/env bash
# Soak: PROBES requests to /api/probe of one `routeproof serve`, one after another (so
# each is its own engine run, no single-flight sharing), against loopback targets that
# pass and fail (tcp open + refused, dns via unbound, https, http 500). Samples the
# process's open file descriptors (/proc/PID/fd) and RSS every EVERY requests and
# fails unless both are flat at the end: fds back to the warm-up count (±2), RSS within
# max(2 MiB, 10 %) of the warm-up sample. Loopback only; the loop is bounded.
#
#   scripts/soak.sh [PROBES=10000] [EVERY=500]
set -euo pipefail
cd "$(dirname "$0")/.."
PROBES=${1:-10000}
EVERY=${2:-500}
BIN=${ROUTEPROOF_BIN:-target/release/routeproof}
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
[ -x "$BIN" ] || cargo build --release --locked
for t in "$UNBOUND" openssl python3; do
    command -v "$t" >/dev/null || { echo "soak: needs $t (apt-get install -y unbound openssl)"; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/bench/certs.sh "$work" soak

PYTHONPATH="$PWD/scripts/bench" exec python3 - "$work" "$BIN" "$UNBOUND" "$PROBES" "$EVERY" <<'PY'
import atexit, http.client, http.server, json, os, socket, ssl, subprocess, sys, threading, time
from common import free_port  # scripts/bench/common.py

work, BIN, UNBOUND = sys.argv[1:4]
PROBES, EVERY = int(sys.argv[4]), int(sys.argv[5])
procs = []
def cleanup():
    for p in procs:
        if p.poll() is None: p.terminate(); p.wait()
atexit.register(cleanup)

# Peers: an open TCP port (accepted and closed), a refused one, unbound, HTTPS + HTTP.
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(1024)
accepted = [0]
def drain():
    while True:
        lst.accept()[0].close(); accepted[0] += 1
threading.Thread(target=drain, daemon=True).start()
closed = free_port()
dns_port = free_port(socket.SOCK_DGRAM)
open(f"{work}/zone", "w").write("$ORIGIN database.windows.net.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n"
                                "@ IN NS ns1\nns1 IN A 127.0.0.1\nlocal IN CNAME local.privatelink\nlocal.privatelink IN A 127.0.0.1\n")
open(f"{work}/unbound.conf", "w").write(f"""server:
    interface: 127.0.0.1@{dns_port}
    do-ip6: no
    username: ""
    chroot: ""
    directory: "{work}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
auth-zone:
    name: "database.windows.net."
    zonefile: "{work}/zone"
    for-downstream: yes
    for-upstream: yes
    fallback-enabled: no
""")
procs.append(subprocess.Popen([UNBOUND, "-d", "-c", f"{work}/unbound.conf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        code = 500 if self.path == "/500" else 200
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
class Srv(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, *a): pass
https = Srv(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(f"{work}/srv.crt", f"{work}/srv.key")
https.socket = ctx.wrap_socket(https.socket, server_side=True)
plain = Srv(("127.0.0.1", 0), H)
for s in (https, plain): threading.Thread(target=s.serve_forever, daemon=True).start()

port = free_port()
open(f"{work}/soak.toml", "w").write(f"""[engine]
dns_servers = ["127.0.0.1:{dns_port}"]
tcp_settle = "0s"
ca_file = "{work}/ca.crt"
[engine.timeouts]
dns = "2s"
tcp = "2s"
tls = "2s"
http = "2s"
[[targets]]
name = "open"
target = "tcp://127.0.0.1:{lst.getsockname()[1]}"
[[targets]]
name = "refused"
target = "tcp://127.0.0.1:{closed}"
[[targets]]
name = "pe-dns"
target = "tcp://local.database.windows.net:{lst.getsockname()[1]}"
[[targets]]
name = "https"
target = "https://127.0.0.1:{https.server_address[1]}/"
[[targets]]
name = "http-500"
target = "http://127.0.0.1:{plain.server_address[1]}/500"
""")
serve = subprocess.Popen([BIN, "serve", "--port", str(port), "--config", f"{work}/soak.toml"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
procs.append(serve)
for _ in range(500):
    try: socket.create_connection(("127.0.0.1", port), 0.2).close(); break
    except OSError: time.sleep(0.01)
time.sleep(0.3)  # let unbound come up too

def sample(done, t0):
    fds = len(os.listdir(f"/proc/{serve.pid}/fd"))
    st = {l.split(":")[0]: int(l.split()[1]) for l in open(f"/proc/{serve.pid}/status") if l.startswith(("VmRSS", "VmHWM", "Threads"))}
    return (done, round(time.time() - t0, 1), fds, st["VmRSS"], st["VmHWM"], st["Threads"])

samples = []
t0 = time.time()
samples.append(sample(0, t0))
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
bad = 0
for i in range(1, PROBES + 1):
    conn.request("GET", "/api/probe")
    r = conn.getresponse(); body = json.loads(r.read())
    # 503: two targets fail on purpose; anything else is wrong.
    got = {t["name"]: (t.get("failure") or {}).get("class") for t in body["targets"]}
    if r.status != 503 or got.get("refused") != "tcp.refused" or got.get("http-500") != "http.status" \
            or got.get("open") or got.get("pe-dns") or got.get("https"):
        bad += 1
        if bad <= 3: print(f"unexpected answer #{i}: {r.status} {got}", file=sys.stderr)
    if i % EVERY == 0: samples.append(sample(i, t0))
conn.close()
# Two targets connect to the open port per run: proof each request was a real run.
runs_seen = accepted[0] / 2
time.sleep(1.0)  # idle: connections the runs opened are gone
samples.append(sample(PROBES, t0) + ("idle",))

print(f"soak: {PROBES} GET /api/probe (5 targets each: tcp open, tcp refused, dns+tcp, https, http 500), "
      f"one at a time, {time.time() - t0:.1f} s, {bad} unexpected answers, "
      f"{runs_seen:.0f} engine runs seen at the open port")
print("| requests | s | open fds | RSS | peak RSS | threads |")
print("|---|---|---|---|---|---|")
for s in samples:
    print(f"| {s[0]}{' (idle after)' if len(s) > 6 else ''} | {s[1]} | {s[2]} | {s[3]/1024:.1f} MiB | {s[4]/1024:.1f} MiB | {s[5]} |")
warm = samples[min(2, len(samples) - 1)]  # after the first EVERY*2 requests: trust store, pools, allocator warm
last = samples[-1]
fd_ok = abs(last[2] - warm[2]) <= 2
rss_ok = last[3] - warm[3] <= max(2048, warm[3] * 0.10)
print(f"fds: warm {warm[2]} -> end {last[2]} ({'flat' if fd_ok else 'GROWING'}); "
      f"RSS: warm {warm[3]/1024:.1f} MiB -> end {last[3]/1024:.1f} MiB ({'flat' if rss_ok else 'GROWING'})")
sys.exit(0 if fd_ok and rss_ok and bad == 0 and runs_seen >= PROBES else 1)
PY
