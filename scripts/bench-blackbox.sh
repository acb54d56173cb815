#!/usr/bin/env bash
# routeproof next to Prometheus blackbox_exporter on the same loopback targets, side by
# side in one run, medians and ratios (routeproof / blackbox_exporter; < 1 is better):
#
#   1. cold start: exec to the first 200 on GET / (routeproof serve; what the Functions
#      host waits for) vs exec to the first 200 on /-/healthy (blackbox_exporter), and
#      the floor: a static C server that only answers 200 (scripts/bench/floor.c);
#   2. probe cost: CPU (user+sys) and wall per probe for TCP, DNS and HTTPS, N targets:
#      one `routeproof probe` run with N targets (whole process: start-up, config,
#      report included) vs N /probe scrapes of a running blackbox_exporter at the same
#      concurrency (its CPU from /proc/PID/stat before/after: start-up excluded, and the
#      scraping client's CPU is not counted — both in blackbox_exporter's favour);
#   3. memory and size: peak RSS idle and during the runs, binary sizes, deployment zip;
#   4. handler under load: wrk, C concurrent callers of /api/probe on `routeproof serve`
#      for D seconds: p50/p99 and how many engine runs single-flight started.
#
# Everything listens on and connects to 127.0.0.0/8 only; every loop is bounded.
#
#   scripts/bench-blackbox.sh [N=1000] [RUNS=5] [COLD=30] [WRK_C=200] [WRK_SECS=10]
#
# Needs: prometheus-blackbox-exporter, unbound, openssl, python3, GNU time, wrk
#   (apt-get install -y prometheus-blackbox-exporter unbound openssl time wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
RUNS=${2:-5}
COLD=${3:-30}
WRK_C=${4:-200}
WRK_SECS=${5:-10}
BIN=${ROUTEPROOF_BIN:-target/x86_64-unknown-linux-gnu/release/routeproof}
BB=${BLACKBOX_BIN:-$(command -v prometheus-blackbox-exporter || echo /usr/bin/prometheus-blackbox-exporter)}
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
[ -x "$BIN" ] || BIN=$(scripts/release-build.sh)
for t in "$BB" "$UNBOUND" openssl python3 /usr/bin/time gcc; do
    command -v "$t" >/dev/null || { echo "bench-blackbox: needs $t (apt-get install -y prometheus-blackbox-exporter unbound openssl wrk time)"; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -static -o "$work/floor" scripts/bench/floor.c

# Test CA and a server certificate for 127.0.0.1 (both tools trust the CA by file).
scripts/bench/certs.sh "$work" bench

PYTHONPATH="$PWD/scripts/bench" exec python3 - "$work" "$BIN" "$BB" "$UNBOUND" "$N" "$RUNS" "$COLD" "$WRK_C" "$WRK_SECS" <<'PY'
import http.client, http.server, json, os, re, shutil, signal, socket, ssl, statistics
import subprocess, sys, threading, time, urllib.parse
from common import free_port, wait_200  # scripts/bench/common.py
from concurrent.futures import ThreadPoolExecutor

work, BIN, BB, UNBOUND = sys.argv[1:5]
N, RUNS, COLD, WRK_C, WRK_SECS = (int(x) for x in sys.argv[5:10])
TICK = os.sysconf("SC_CLK_TCK")
procs = []

def cleanup(*_):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
import atexit; atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))

def med(xs): return statistics.median(xs)

# ---------------------------------------------------------------- peers (loopback)
# TCP: 20 addresses, one port each, large backlog; accepted and closed in a thread so
# the kernel completes handshakes and the listener's cost stays out of both figures.
tcp_socks = []
for i in range(1, 21):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((f"127.0.0.{i}", 0)); s.listen(4096); s.setblocking(False); tcp_socks.append(s)
tcp_addrs = [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in tcp_socks]
def drain():
    while True:
        for s in tcp_socks:
            try:
                while True: s.accept()[0].close()
            except (BlockingIOError, OSError): pass
        time.sleep(0.005)
threading.Thread(target=drain, daemon=True).start()

# DNS: unbound, authoritative for database.windows.net, caches off.
# unbound binds UDP and TCP on it: a port free for UDP can still be held by one of the
# TCP runs' thousands of TIME-WAIT sockets, so take one that both binds accept.
def free_dns_port():
    while True:
        p = free_port(socket.SOCK_DGRAM)
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", p)); return p
        except OSError:
            continue
        finally:
            t.close()
dns_port = free_dns_port()
DNS = f"127.0.0.1:{dns_port}"
open(f"{work}/zone", "w").write("""$ORIGIN database.windows.net.
$TTL 60
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
local IN CNAME local.privatelink
local.privatelink IN A 127.0.0.1
""")
open(f"{work}/unbound.conf", "w").write(f"""server:
    interface: 127.0.0.1@{dns_port}
    do-ip6: no
    username: ""
    chroot: ""
    directory: "{work}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    msg-cache-size: 0
    rrset-cache-size: 0
    num-threads: 1
auth-zone:
    name: "database.windows.net."
    zonefile: "{work}/zone"
    for-downstream: yes
    for-upstream: yes
    fallback-enabled: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@9
""")
procs.append(subprocess.Popen([UNBOUND, "-d", "-c", f"{work}/unbound.conf"],
                              stdout=subprocess.DEVNULL, stderr=open(f"{work}/unbound.log", "w")))

def wait_dns(port, deadline_s=10.0):
    """Until unbound answers an A query for the zone's name (it also needs the TCP port,
    which free_port did not check): a run against a server that never started is 0 ok."""
    q = bytes.fromhex("beef01000001000000000000") + b"".join(
        bytes([len(l)]) + l.encode() for l in "local.database.windows.net".split(".")) + b"\0\0\x01\0\x01"
    end = time.time() + deadline_s
    while time.time() < end:
        if procs[-1].poll() is not None: break
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", port))
            if s.recv(512)[:2] == q[:2]: return
        except OSError: pass
        finally: s.close()
    raise SystemExit(f"unbound did not answer on 127.0.0.1:{port}: {open(work + '/unbound.log').read()[-500:]}")
wait_dns(dns_port)

# HTTPS: Python http.server behind OpenSSL (its CPU is in neither figure).
class H(http.server.BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else Nagle + delayed ACK adds ~40 ms to every first byte
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
class Srv(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True
    def handle_error(self, *a): pass  # clients closing without close_notify are fine
httpd = Srv(("127.0.0.1", 0), H)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(f"{work}/srv.crt", f"{work}/srv.key")
httpd.socket = sctx.wrap_socket(httpd.socket, server_side=True)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
URL = f"https://127.0.0.1:{httpd.server_address[1]}/"

# ---------------------------------------------------------------- helpers
def proc_cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK  # utime + stime, seconds

def proc_status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"): return int(line.split()[1])  # kB
    return 0

def run_rusage(argv, **kw):
    """Wall, CPU (user+sys, µs resolution from wait4) and peak RSS of one run. The RSS
    comes from GNU time, which forks from a small process: a child forked from this
    Python process would carry Python's RSS in its ru_maxrss until the exec."""
    t0 = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", f"{work}/maxrss"] + argv,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, **kw)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    maxrss = int(open(f"{work}/maxrss").read().split()[-1])
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, maxrss, out

def bb_config(path):
    open(path, "w").write(f"""modules:
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp: {{ preferred_ip_protocol: ip4 }}
  dns_a:
    prober: dns
    timeout: 5s
    dns:
      transport_protocol: udp
      preferred_ip_protocol: ip4
      query_name: local.database.windows.net
      query_type: A
      valid_rcodes: [NOERROR]
  https_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config: {{ ca_file: "{work}/ca.crt" }}
""")

def start_blackbox():
    port = free_port()
    p = subprocess.Popen([BB, f"--config.file={work}/blackbox.yml", f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    return p, port

def start_serve(config, extra_env=None, log=subprocess.DEVNULL):
    # serve logs one JSON line per event to stdout (the Functions host collects it).
    port = free_port()
    env = dict(os.environ, **(extra_env or {}))
    p = subprocess.Popen([BIN, "serve", "--port", str(port), "--config", config],
                         stdout=log, stderr=subprocess.DEVNULL, env=env)
    procs.append(p)
    return p, port

def stop(p):
    p.terminate()
    try: p.wait(5)
    except subprocess.TimeoutExpired: p.kill(); p.wait()

bb_config(f"{work}/blackbox.yml")
open(f"{work}/idle.toml", "w").write('[engine]\ndns_servers = ["127.0.0.1:9"]\n[[targets]]\nname = "x"\ntarget = "tcp://127.0.0.1:9"\n')
version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.split()[1]
bbv = re.search(r"version (\S+)", subprocess.run([BB, "--version"], capture_output=True, text=True).stderr + subprocess.run([BB, "--version"], capture_output=True, text=True).stdout)
cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
print(f"routeproof {version} vs blackbox_exporter {bbv.group(1) if bbv else '?'}; "
      f"{os.cpu_count()} cores ({cpu.group(1).strip() if cpu else '?'}), {os.uname().release}, "
      f"{time.strftime('%Y-%m-%d', time.gmtime())}; load avg {os.getloadavg()[0]:.2f} at start")
print(f"medians of {RUNS} runs (cold start: {COLD}); ratio = routeproof / blackbox_exporter, < 1 is better")
print()

# ---------------------------------------------------------------- 1. cold start
rp_cold, bb_cold, rp_idle, bb_idle, floor_cold, rp_anon, bb_anon = [], [], [], [], [], [], []
for _ in range(COLD):
    port = free_port(); t0 = time.perf_counter()
    p = subprocess.Popen([f"{work}/floor", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p); floor_cold.append(wait_200(port, "/") - t0); stop(p)
    t0 = time.perf_counter(); p, port = start_serve(f"{work}/idle.toml")
    rp_cold.append(wait_200(port, "/") - t0)
    time.sleep(0.05); rp_idle.append(proc_status(p.pid, "VmRSS")); rp_anon.append(proc_status(p.pid, "RssAnon")); stop(p)
    t0 = time.perf_counter(); p, port = start_blackbox()
    bb_cold.append(wait_200(port, "/-/healthy") - t0)
    time.sleep(0.05); bb_idle.append(proc_status(p.pid, "VmRSS")); bb_anon.append(proc_status(p.pid, "RssAnon")); stop(p)

rows = []
def row(what, ours, theirs, unit, fmt="{:.1f}"):
    ratio = ours / theirs if theirs else float("nan")
    rows.append((what, fmt.format(ours) + " " + unit, fmt.format(theirs) + " " + unit, f"{ratio:.2f}×"))

row("cold start: exec → first 200 (GET / vs /-/healthy)", med(rp_cold) * 1e3, med(bb_cold) * 1e3, "ms", "{:.2f}")
rows.append(("cold start floor: a static C server answering 200 (scripts/bench/floor.c)",
             f"{med(floor_cold) * 1e3:.2f} ms", "", f"routeproof = {med(rp_cold) / med(floor_cold):.2f}× the floor"))
row("idle RSS after start", med(rp_idle) / 1024, med(bb_idle) / 1024, "MiB")
# RSS counts the binary's page-cache pages the process maps (shared, reclaimable); RssAnon
# is the memory each process owns.
row("idle private memory (RssAnon)", med(rp_anon) / 1024, med(bb_anon) / 1024, "MiB")

# ---------------------------------------------------------------- 2. probe cost
def rp_config(kind, path, conc):
    with open(path, "w") as f:
        f.write(f'[engine]\nconcurrency = {conc}\ntcp_settle = "0s"\ndeadline = "120s"\n'
                f'dns_servers = ["{DNS}"]\nca_file = "{work}/ca.crt"\n'
                '[engine.timeouts]\ndns = "5s"\ntcp = "5s"\ntls = "5s"\nhttp = "5s"\nbody = "5s"\n')
        for i in range(N):
            t = {"tcp": f"tcp://{tcp_addrs[i % len(tcp_addrs)]}",
                 "dns": "dns://local.database.windows.net",
                 "https": URL}[kind]
            f.write(f'[[targets]]\nname = "{kind}{i}"\ntarget = "{t}"\n')

def bb_targets(kind):
    return [{"tcp": ("tcp_connect", tcp_addrs[i % len(tcp_addrs)]),
             "dns": ("dns_a", DNS),
             "https": ("https_2xx", URL)}[kind] for i in range(N)]

def scrape_all(port, targets, conc):
    local = threading.local()
    def one(mt):
        c = getattr(local, "c", None)
        if c is None: c = local.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        q = urllib.parse.urlencode({"module": mt[0], "target": mt[1]})
        c.request("GET", "/probe?" + q); body = c.getresponse().read().decode()
        return "probe_success 1" in body
    with ThreadPoolExecutor(conc) as ex:
        return sum(ex.map(one, targets))

bb, bb_port = start_blackbox(); wait_200(bb_port, "/-/healthy")
peak_rp = {}
for kind, conc, label in [("tcp", 64, "TCP connect"), ("dns", 64, "DNS A (CNAME → A, unbound)"),
                          ("https", 16, "HTTPS GET (TCP+TLS 1.3+HTTP/1.1)")]:
    rp_config(kind, f"{work}/{kind}.toml", conc)
    targets = bb_targets(kind)
    scrape_all(bb_port, targets[:min(50, N)], conc)  # warm-up (connections, GC)
    rw, rc, bw, bc, rss = [], [], [], [], []
    for _ in range(RUNS):
        wall, cpu_s, maxrss, out = run_rusage([BIN, "probe", "--json", "--config", f"{work}/{kind}.toml"])
        ok = json.loads(out)["summary"]["ok"]
        if ok != N: raise SystemExit(f"routeproof: only {ok} of {N} {kind} targets ok")
        rw.append(wall); rc.append(cpu_s); rss.append(maxrss)
        c0 = proc_cpu(bb.pid); t0 = time.perf_counter()
        good = scrape_all(bb_port, targets, conc)
        bw.append(time.perf_counter() - t0); bc.append(proc_cpu(bb.pid) - c0)
        if good != N: raise SystemExit(f"blackbox_exporter: only {good} of {N} {kind} probes succeeded")
    peak_rp[kind] = max(rss)
    row(f"{label}: CPU per probe, {N} targets, concurrency {conc}", med(rc) / N * 1e6, med(bc) / N * 1e6, "µs", "{:.0f}")
    row(f"{label}: wall per probe (whole batch / {N})", med(rw) / N * 1e6, med(bw) / N * 1e6, "µs", "{:.0f}")
bb_peak = proc_status(bb.pid, "VmHWM")
stop(bb)

row(f"peak RSS during the {N}-target runs (max over kinds)", max(peak_rp.values()) / 1024, bb_peak / 1024, "MiB")
sz_rp = os.path.getsize(BIN); sz_bb = os.path.getsize(BB)
row("binary size (both stripped)", sz_rp / 2**20, sz_bb / 2**20, "MiB")

print("| measure | routeproof | blackbox_exporter | ratio |")
print("|---|---|---|---|")
for r in rows: print("| " + " | ".join(r) + " |")
print()
print(f"peak RSS per kind, routeproof probe (1 process, {N} targets): " +
      ", ".join(f"{k} {v/1024:.1f} MiB" for k, v in peak_rp.items()))
print(f"cold start spread: routeproof min {min(rp_cold)*1e3:.2f} / max {max(rp_cold)*1e3:.2f} ms; "
      f"blackbox_exporter min {min(bb_cold)*1e3:.2f} / max {max(bb_cold)*1e3:.2f} ms")
zipf = "dist/routeproof-app.zip"
if os.path.exists(zipf):
    print(f"deployment zip ({zipf}, built by scripts/package.sh): {os.path.getsize(zipf)/2**20:.1f} MiB")

# ---------------------------------------------------------------- 4. handler under load
wrk = shutil.which("wrk")
if not wrk:
    print("(wrk not installed: handler-under-load skipped)"); sys.exit(0)
# A listener that counts connections: how much probe traffic the load caused.
counter = socket.socket(); counter.bind(("127.0.0.1", 0)); counter.listen(4096)
accepted = [0]
def count():
    while True:
        c, _ = counter.accept(); accepted[0] += 1; c.close()
threading.Thread(target=count, daemon=True).start()
cport = counter.getsockname()[1]
with open(f"{work}/load.toml", "w") as f:
    f.write(f'[engine]\ndns_servers = ["{DNS}"]\ntcp_settle = "0s"\nca_file = "{work}/ca.crt"\n'
            f'[[targets]]\nname = "counted"\ntarget = "tcp://127.0.0.1:{cport}"\n'
            '[[targets]]\nname = "dns"\ntarget = "dns://local.database.windows.net"\n'
            f'[[targets]]\nname = "https"\ntarget = "{URL}"\n')
log = open(f"{work}/serve.log", "w")
p, port = start_serve(f"{work}/load.toml", log=log)
wait_200(port, "/")
base_conn = accepted[0]
c0 = proc_cpu(p.pid)
out = subprocess.run([wrk, "-t2", f"-c{WRK_C}", f"-d{WRK_SECS}s", "--timeout", "25s", "--latency",
                      f"http://127.0.0.1:{port}/api/probe"], capture_output=True, text=True).stdout
serve_cpu = proc_cpu(p.pid) - c0
hwm = proc_status(p.pid, "VmHWM")
stop(p); log.close()
lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
reqs = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errs = re.search(r"Socket errors: (.*)", out)
runs = {"new": 0}
answered = 0
for line in open(f"{work}/serve.log"):
    if '"probe run answered"' in line:
        answered += 1
        m = re.search(r'"run":"(\w+)"', line)
        if m: runs[m.group(1)] = runs.get(m.group(1), 0) + 1
total = int(reqs.group(1)) if reqs else 0
print()
print(f"handler under load: wrk -t2 -c{WRK_C} -d{WRK_SECS}s GET /api/probe, 3 targets (tcp, dns, https) per run")
print("| requests | req/s | p50 | p75 | p90 | p99 | non-2xx | socket errors | engine runs started | probe connections at the tcp target | serve CPU | serve peak RSS |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
print(f"| {total} | {total / float(reqs.group(2)) if reqs else 0:.0f} | {lat.get('50','?')} | {lat.get('75','?')} | "
      f"{lat.get('90','?')} | {lat.get('99','?')} | {non2xx.group(1) if non2xx else 0} | {errs.group(1) if errs else 'none'} | "
      f"{runs['new']} of {answered} answers ({', '.join(f'{k} {v}' for k, v in sorted(runs.items()))}) | "
      f"{accepted[0] - base_conn} | {serve_cpu:.2f} s | {hwm/1024:.1f} MiB |")
PY
