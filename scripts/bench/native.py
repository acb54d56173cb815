"""routeproof next to each protocol's native client, on loopback (run by scripts/bench-native.sh,
which makes the temp dir and the certificates and cleans up). Arguments:
WORK BIN LAB_PEER N RUNS CONC AMORT_RUNS ONLY."""
import atexit, json, os, pwd, re, secrets, shutil, signal, socket, ssl, statistics
import subprocess, sys, threading, time

import tls_web  # scripts/bench/tls_web.py
from common import free_port  # scripts/bench/common.py

work, BIN, LAB_PEER = sys.argv[1:4]
N, RUNS, CONC, AMORT_RUNS = (int(x) for x in sys.argv[4:8])
ONLY = sys.argv[8].split() if len(sys.argv) > 8 else []
USER = "bench"
PW = secrets.token_hex(12)  # every bench login's password; given to clients through env
CA = f"{work}/ca.crt"
PG = "/usr/lib/postgresql/15/bin"
RABBIT = "/usr/lib/rabbitmq/bin/rabbitmq-server"
T0 = time.time()
servers = []


def cleanup(*_):
    for p in servers:
        stop(p)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def chown_r(path, user):
    u = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for f in [root] + [os.path.join(root, x) for x in dirs + files]:
            os.chown(f, u.pw_uid, u.pw_gid)


def certs_into(d, user=None):
    os.makedirs(d, exist_ok=True)
    for src, dst in [("ca.crt", "ca.crt"), ("srv.crt", "server.crt"), ("srv.key", "server.key")]:
        shutil.copy(f"{work}/{src}", f"{d}/{dst}")
    os.chmod(f"{d}/server.key", 0o600)
    if user:
        chown_r(d, user)


def spawn(argv, log, user=None, env=None, cwd=None):
    """A server in its own session (its process group id goes to WORK/pgids, which the
    shell's exit trap kills if this process dies first)."""
    kw = dict(user=user, group=user, extra_groups=[]) if user else {}
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                         env=env, cwd=cwd, start_new_session=True, **kw)
    servers.append(p)
    with open(f"{work}/pgids", "a") as f:
        f.write(f"{p.pid}\n")
    return p


def stop(p):
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(20)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def wait_port(port, p, what, log, limit=60):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close(); return
        except OSError:
            if p.poll() is not None:
                sys.exit(f"{what} exited ({p.returncode}): {open(log).read()[-2000:]}")
            time.sleep(0.1)
    sys.exit(f"{what} did not open port {port} within {limit} s: {open(log).read()[-2000:]}")


def must(argv, what, tries=1, **kw):
    for i in range(tries):
        r = subprocess.run(argv, capture_output=True, text=True, **kw)
        if r.returncode == 0:
            return r.stdout
        time.sleep(0.2)
    sys.exit(f"{what} failed: {r.stdout}{r.stderr}")


def run(argv, env=None, stdin=None, limit=300):
    """Wall (exec to exit), CPU (user+sys from wait4), exit status and output of one child."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    timer = threading.Timer(limit, p.kill); timer.daemon = True; timer.start()  # never hang past the limit
    if stdin:
        p.stdin.write(stdin.encode()); p.stdin.close()
    out = p.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, p.returncode, out


# ---------------------------------------------------------------- servers (127.0.0.1 only)
def start_pg():
    d = f"{work}/pg"; certs_into(d, "postgres")
    must([f"{PG}/initdb", "-D", f"{d}/data", "--auth-local=trust", "--auth-host=scram-sha-256",
          "-U", "postgres", "--no-instructions", "--no-sync"], "initdb", user="postgres", cwd=d)
    port = free_port()
    open(f"{d}/data/postgresql.auto.conf", "w").write(
        f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{d}'\nssl = on\n"
        f"ssl_cert_file = '{d}/server.crt'\nssl_key_file = '{d}/server.key'\nfsync = off\n"
        "password_encryption = 'scram-sha-256'\nmax_connections = 100\n")
    open(f"{d}/data/pg_hba.conf", "w").write(
        f"local all all trust\nhost all {USER} 127.0.0.1/32 scram-sha-256\n")
    chown_r(d, "postgres")
    p = spawn([f"{PG}/postgres", "-D", f"{d}/data"], f"{d}/log", user="postgres", cwd=d)
    wait_port(port, p, "postgres", f"{d}/log")
    must(["psql", "-X", "-q", "-h", d, "-p", str(port), "-U", "postgres", "-d", "postgres", "-c",
          f"CREATE ROLE {USER} LOGIN PASSWORD '{PW}'"], "create role", tries=50)
    return port


def start_mariadb():
    d = f"{work}/my"; certs_into(d)
    port = free_port()
    open(f"{d}/my.cnf", "w").write(
        f"[mysqld]\nuser = mysql\ndatadir = {d}/data\nsocket = {d}/mysqld.sock\npid-file = {d}/mysqld.pid\n"
        f"log-error = {d}/error.log\nbind-address = 127.0.0.1\nport = {port}\nskip-name-resolve\nskip-log-bin\n"
        f"ssl-ca = {d}/ca.crt\nssl-cert = {d}/server.crt\nssl-key = {d}/server.key\n"
        "innodb_buffer_pool_size = 32M\ninnodb_log_file_size = 16M\n")
    chown_r(d, "mysql")
    dflt = f"--defaults-file={d}/my.cnf"
    must(["mariadb-install-db", dflt, "--user=mysql", "--auth-root-authentication-method=socket",
          "--skip-test-db"], "mariadb-install-db")
    p = spawn(["/usr/sbin/mariadbd", dflt], f"{d}/out")
    wait_port(port, p, "mariadbd", f"{d}/out")
    must(["mariadb", "--no-defaults", f"--socket={d}/mysqld.sock", "-uroot", "-e",
          f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PW}'"], "create user", tries=50)
    return port


def start_redis():
    d = f"{work}/redis"; certs_into(d)
    port, tls = free_port(), free_port()
    open(f"{d}/redis.conf", "w").write(
        f"bind 127.0.0.1\nport {port}\ntls-port {tls}\ntls-cert-file {d}/server.crt\n"
        f"tls-key-file {d}/server.key\ntls-ca-cert-file {d}/ca.crt\ntls-auth-clients no\n"
        f"requirepass {secrets.token_hex(8)}\nuser {USER} on >{PW} ~* &* +@all\n"
        f"daemonize no\ndir {d}\nsave \"\"\nappendonly no\nlogfile \"\"\nmaxclients 2000\n")
    p = spawn(["redis-server", f"{d}/redis.conf"], f"{d}/log")
    wait_port(port, p, "redis-server", f"{d}/log"); wait_port(tls, p, "redis-server", f"{d}/log")
    return port, tls


def start_tds():
    """The project's TDS test server (tests/support/tds) through examples/lab_peer: PRELOGIN,
    TLS (encryption required), SQL login, SELECT 1. Returns (port, CA file)."""
    d = f"{work}/tds"; os.makedirs(d)
    port = free_port()
    p = spawn([LAB_PEER, "--tds", f"127.0.0.1:{port}", "--names", "localhost,127.0.0.1",
               "--ca-out", f"{d}/ca.crt", "--user", USER, "--ready", f"{d}/ready"], f"{d}/log",
              env=dict(os.environ, LAB_SQL_PASSWORD=PW))
    wait_port(port, p, "lab_peer (TDS)", f"{d}/log")
    end = time.time() + 30
    while not os.path.exists(f"{d}/ready") and time.time() < end:
        time.sleep(0.05)
    open(f"{d}/freetds.conf", "w").write(
        f"[rp]\n\thost = 127.0.0.1\n\tport = {port}\n\ttds version = 7.4\n\tencryption = require\n"
        f"\tca file = {d}/ca.crt\n\tcheck certificate hostname = yes\n\tconnect timeout = 30\n\ttimeout = 30\n")
    return port, f"{d}/ca.crt"


def start_rabbit():
    d = f"{work}/rabbit"; certs_into(d)
    for sub in ["home", "mnesia", "log"]:
        os.makedirs(f"{d}/{sub}")
    plain, dist, epmd_port = free_port(), free_port(), free_port()
    open(f"{d}/rabbitmq.conf", "w").write(
        f"listeners.tcp.1 = 127.0.0.1:{plain}\nloopback_users = none\ndefault_user = {USER}\n"
        f"default_pass = {PW}\nlog.console = true\nlog.file = false\n")
    open(f"{d}/enabled_plugins", "w").write("[rabbitmq_amqp1_0].\n")
    chown_r(d, "rabbitmq")
    env = dict(os.environ, HOME=f"{d}/home", RABBITMQ_NODENAME=f"rpbench{plain}@localhost",
               RABBITMQ_CONFIG_FILE=f"{d}/rabbitmq", RABBITMQ_ENABLED_PLUGINS_FILE=f"{d}/enabled_plugins",
               RABBITMQ_MNESIA_BASE=f"{d}/mnesia", RABBITMQ_LOG_BASE=f"{d}/log",
               RABBITMQ_PID_FILE=f"{d}/rabbitmq.pid", RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
               RABBITMQ_DIST_PORT=str(dist), ERL_EPMD_ADDRESS="127.0.0.1", ERL_EPMD_PORT=str(epmd_port),
               RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
               RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
    spawn(["epmd", "-address", "127.0.0.1", "-port", str(epmd_port)], f"{d}/log/epmd.out",
          user="rabbitmq", env=env)
    time.sleep(0.3)
    p = spawn([RABBIT], f"{d}/log/server.out", user="rabbitmq", env=env, cwd=d)
    wait_port(plain, p, "rabbitmq-server", f"{d}/log/server.out", limit=240)  # ~10 s idle
    return plain


def free_port_listener():
    """A listener that accepts and closes (the floor row's TCP target)."""
    ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(128)
    def loop():
        while True:
            ls.accept()[0].close()
    threading.Thread(target=loop, daemon=True).start()
    return ls.getsockname()[1]


# ---------------------------------------------------------------- the rows
AMQP_CLIENT = """import os
from proton.utils import BlockingConnection
c = BlockingConnection(os.environ["BENCH_URL"], timeout=30, reconnect=False, user=os.environ["BENCH_USER"],
                       password=os.environ["BENCH_PW"], allowed_mechs="PLAIN", allow_insecure_mechs=True)
c.close()
print("opened and closed")
"""
ENV = dict(os.environ, BENCH_PW=PW, PGPASSWORD=PW, MYSQL_PWD=PW, REDISCLI_AUTH=PW, HOME=work)
login = f'user = "{USER}"\npassword = "env:BENCH_PW"\n'
rows, skipped = [], []


def want(name):
    return not ONLY or any(name.startswith(o) for o in ONLY)


def row(name, client, argv, ok, target, proof, stdin=None, env=None):
    """ok: the client's output shows the command's answer; proof: routeproof's report for a
    target shows the login and the command (and a verified certificate where TLS is used)."""
    rows.append(dict(name=name, client=client, argv=argv, ok=ok, target=target, proof=proof, stdin=stdin,
                     env=env or ENV))


def layer(t, name):
    return next((x for x in t.get("layers", []) if x.get("layer") == name), {})


def db_proof(kind, tls):
    def proof(t):
        d = layer(t, kind).get("detail", {})
        return d.get("authenticated") is True and d.get("query_result") == "1" and \
            (not tls or layer(t, "tls").get("verified") is True)
    return proof


one = lambda s: s.strip() == "1"
if want("postgres") or want("postgres+tls"):
    pg = start_pg()
    for tls, mode in [("", "disable"), ("+tls", "verify-full")]:
        if want("postgres" + tls):
            row("postgres" + tls, f"psql sslmode={mode}",  # the binary, not Debian's Perl wrapper
                [f"{PG}/psql", "-X", "-A", "-t", "-c", "SELECT 1",
                 f"host=127.0.0.1 port={pg} user={USER} dbname=postgres sslmode={mode} sslrootcert={CA}"],
                one, f'target = "postgres://127.0.0.1:{pg}/postgres"\ntls = "{mode}"\n{login}',
                db_proof("postgres", tls))
if want("mariadb") or want("mariadb+tls"):
    my = start_mariadb()
    for tls, flags, mode in [("", ["--skip-ssl"], "disable"),
                             ("+tls", ["--ssl-verify-server-cert", f"--ssl-ca={CA}"], "verify-full")]:
        if want("mariadb" + tls):
            row("mariadb" + tls, f"mariadb {flags[0]}",
                ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{my}", f"-u{USER}"] + flags + ["-N", "-B", "-e", "SELECT 1"],
                one, f'target = "mysql://127.0.0.1:{my}"\ntls = "{mode}"\n{login}', db_proof("mysql", tls))
if want("redis") or want("redis+tls"):
    rd, rds = start_redis()
    def redis_proof(tls):
        return lambda t: layer(t, "redis").get("detail", {}).get("ping_after_auth") == "+PONG" and \
            (not tls or layer(t, "tls").get("verified") is True)
    if want("redis"):
        row("redis", "redis-cli PING", ["redis-cli", "-h", "127.0.0.1", "-p", str(rd), "--user", USER, "PING"],
            lambda s: s.strip() == "PONG", f'target = "redis://127.0.0.1:{rd}"\n{login}', redis_proof(False))
    if want("redis+tls"):
        row("redis+tls", "redis-cli --tls PING", ["redis-cli", "--tls", "--cacert", CA, "-h", "127.0.0.1",
            "-p", str(rds), "--user", USER, "PING"], lambda s: s.strip() == "PONG",
            f'target = "rediss://127.0.0.1:{rds}"\n{login}', redis_proof(True))
if want("https"):
    hp = tls_web.serve(f"{work}/srv.crt", f"{work}/srv.key")
    row("https", "curl", ["curl", "-q", "-sS", "--cacert", CA, f"https://127.0.0.1:{hp}/"],
        lambda s: s == "ok", f'target = "https://127.0.0.1:{hp}/"\n',
        lambda t: layer(t, "http").get("status") == 200 and layer(t, "tls").get("verified") is True)
TDS_CA = None
if want("tds"):
    if not (os.access(LAB_PEER, os.X_OK) and shutil.which("tsql")):
        skipped.append(f"tds: left out: needs FreeTDS tsql (scripts/tds-clients.sh) and the project's TDS "
                       f"test server as a program, examples/lab_peer ({LAB_PEER} missing: "
                       "`cargo build --example lab_peer` or set LAB_PEER)")
    else:
        tp, TDS_CA = start_tds()
        row("tds", "tsql (FreeTDS)", ["tsql", "-o", "q", "-S", "rp", "-U", USER, "-P", PW],
            lambda s: re.search(r"^\s*1\s*$", s, re.M) and not re.search(r"^(Msg|Error) ", s, re.M),
            f'target = "sqlserver://127.0.0.1:{tp}"\nauthentication = "sql"\n{login}query = "SELECT 1"\n',
            lambda t: layer(t, "tds").get("logged_in") is True and "first value 1" in layer(t, "tds").get("result", "")
            and layer(t, "tds").get("tls", {}).get("verified") is True,
            stdin="SELECT 1\ngo\nexit\n", env=dict(ENV, FREETDSCONF=f"{work}/tds/freetds.conf"))
if want("amqp"):
    if not os.path.exists(RABBIT):
        skipped.append("amqp: left out: rabbitmq-server (3.10, rabbitmq_amqp1_0) is not installed")
    else:
        ap = start_rabbit()
        row("amqp", "python-qpid-proton", [sys.executable, "-c", AMQP_CLIENT], lambda s: "opened" in s,
            f'target = "amqp://127.0.0.1:{ap}"\n{login}',
            lambda t: (lambda d: d.get("mechanism") == "PLAIN" and d.get("sasl_outcome") == 0 and
                       {"open", "close"} <= {x.get("phase") for x in d.get("timings", [])})(layer(t, "amqp").get("detail", {})),
            env=dict(ENV, BENCH_URL=f"amqp://127.0.0.1:{ap}", BENCH_USER=USER))

# Both CAs in one bundle: the engine's ca_file is one file.
with open(f"{work}/cas.pem", "w") as f:
    f.write(open(CA).read() + (open(TDS_CA).read() if TDS_CA else ""))


def rp_config(r, n):
    path = f"{work}/{r['name']}-{n}.toml"
    with open(path, "w") as f:
        f.write(f'[engine]\nconcurrency = {CONC}\ndeadline = "300s"\ndiscover = false\ntcp_settle = "0s"\n'
                'dns_servers = ["127.0.0.1:9"]\nazure_dns = "127.0.0.1:9"\n'
                f'ca_file = "{work}/cas.pem"\n[engine.timeouts]\ntcp = "10s"\ntls = "10s"\n'
                'http = "10s"\nbody = "10s"\nlogin = "60s"\n')
        for i in range(n):
            f.write(f'[[targets]]\nname = "{r["name"]}-{i}"\n{r["target"]}')
    return path


def native(r):
    wall, cpu, rc, out = run(r["argv"], env=r["env"], stdin=r["stdin"])
    if rc != 0 or not r["ok"](out):
        sys.exit(f"{r['name']}: {r['client']} failed (exit {rc}): {out.replace(PW, '***')[-1500:]}")
    return wall, cpu


def rp(r, cfg, n):
    wall, cpu, rc, out = run([BIN, "probe", "--json", "--config", cfg], env=ENV)
    try:
        s = json.loads(out)["summary"]
    except (ValueError, KeyError):
        sys.exit(f"{r['name']}: routeproof printed no report (exit {rc}): {out[-1500:]}")
    if s.get("ok") != n:
        sys.exit(f"{r['name']}: routeproof: {s.get('ok')} of {n} targets ok (exit {rc}): {out[-3000:]}")
    bad = [t.get("name") for t in json.loads(out)["targets"] if not r["proof"](t)]
    if bad:
        sys.exit(f"{r['name']}: routeproof's report does not show the login and command for {bad[:5]}: {out[-3000:]}")
    if PW in out:
        sys.exit(f"{r['name']}: routeproof's report holds the password")
    return wall, cpu


def version(argv, pat=r".*"):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(pat, out)
    return (m.group(1) if m and m.groups() else m.group(0) if m else "").strip() or "?"


def pkg(name):
    return version(["dpkg-query", "-W", "-f", "${Version}", name])


# ---------------------------------------------------------------- measure
cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
py = sys.version.split()[0]
proton_v = pkg("python3-qpid-proton")
if proton_v == "?":
    proton_v = version([sys.executable, "-c", "import proton; print(*proton.VERSION, sep='.')"])
V = dict(rp=version([BIN, "--version"], r"routeproof (\S+)"),
         mariadb=version(["mariadb", "--version"], r"Distrib (\S+),"), rcli=version(["redis-cli", "--version"]),
         curl=version(["curl", "--version"], r"^curl \S+ \S+ libcurl\S+ \S+"),
         tsql=version(["tsql", "-C"], r"Version: freetds v(\S+)"), pg=version([f"{PG}/postgres", "--version"]), psql=version([f"{PG}/psql", "--version"]),
         redis=version(["redis-server", "--version"], r"Redis server v=(\S+)"))
print(f"routeproof {V['rp']} ({BIN}, {os.path.getsize(BIN)/2**20:.1f} MiB); {os.cpu_count()} cores "
      f"({cpu.group(1).strip() if cpu else '?'}), Linux {os.uname().release}; "
      f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load avg {os.getloadavg()[0]:.2f} at start")
print(f"clients: {V['psql']}; mariadb {V['mariadb']}; {V['rcli']}; {V['curl']}; FreeTDS tsql {V['tsql']}; "
      f"python-qpid-proton {proton_v} on Python {py}")
print(f"servers: {V['pg']}; MariaDB {pkg('mariadb-server')}; Redis {V['redis']}; Python {py} http.server + "
      f"{ssl.OPENSSL_VERSION}; TDS: the project's test server (examples/lab_peer); RabbitMQ "
      f"{pkg('rabbitmq-server')} + rabbitmq_amqp1_0 on Erlang {pkg('erlang-base')}")
print(f"medians of {RUNS} interleaved runs; amortised: {AMORT_RUNS} runs of one process with N={N} targets, "
      f"concurrency {CONC}; CPU = user+sys of the client process (wait4); ratio = routeproof / native CPU")
print()
results = []
for r in rows:
    cfg1, cfgn = rp_config(r, 1), rp_config(r, N)
    native(r); rp(r, cfg1, 1)  # warm-up (page cache, server-side caches), not counted
    nw, nc, rw, rc, aw, ac = [], [], [], [], [], []
    for i in range(RUNS):
        w, c = native(r); nw.append(w); nc.append(c)
        w, c = rp(r, cfg1, 1); rw.append(w); rc.append(c)
        if i < AMORT_RUNS:
            w, c = rp(r, cfgn, N); aw.append(w); ac.append(c)
    m = statistics.median
    results.append((r, m(nc), m(nw), m(rc), m(rw), m(ac) / N, m(aw) / N))
    print(f"  {r['name']}: done ({time.time() - T0:.0f} s)", file=sys.stderr)

# Floors, for reading the table: routeproof's process with one bare TCP connect (start-up,
# config, report), and the AMQP client's interpreter + `import proton` without a connection.
floor = {"tcp": [], "py": []}
tcp_row = dict(name="floor", target=f'target = "tcp://127.0.0.1:{free_port_listener()}"\n',
               proof=lambda t: layer(t, "tcp").get("ok") is True)
for _ in range(RUNS):
    floor["tcp"].append(rp(tcp_row, rp_config(tcp_row, 1), 1)[1])
    if any(r["name"] == "amqp" for r in rows):
        w, c, rc_, out = run([sys.executable, "-c", "import proton.utils"])
        floor["py"].append(c)

ms = lambda s: f"{s * 1e3:.2f} ms"
ratio = lambda x: f"{x:.2f}×" if x >= 0.1 else f"{x:.3f}×"
print("| protocol | native client | native CPU | native wall | rp one-shot CPU | rp one-shot wall | ratio "
      "| rp amortised CPU/probe | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for r, nc, nw, rc, rw, ac, aw in results:
    print(f"| {r['name']} | {r['client']} | {ms(nc)} | {ms(nw)} | {ms(rc)} | {ms(rw)} | {ratio(rc / nc)} "
          f"| {ac * 1e6:.0f} µs | {ratio(ac / nc)} |")
print()
print("amortised wall per probe (batch wall / N): " +
      ", ".join(f"{r['name']} {aw * 1e6:.0f} µs" for r, *_, aw in results))
print(f"floors: routeproof one-shot with one tcp:// target {ms(statistics.median(floor['tcp']))} CPU" +
      (f"; python3 + import proton, no connection {ms(statistics.median(floor['py']))} CPU" if floor["py"] else ""))
for s in skipped:
    print(s)
print(f"load avg {os.getloadavg()[0]:.2f} at the end; whole run {time.time() - T0:.0f} s")
