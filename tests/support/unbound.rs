//! A real third-party resolver (NLnet Labs unbound) serving the same Private
//! Link zone as [`super::dns::Zone::privatelink_fixture`].
//!
//! Our own hickory-based server and the prober share one DNS library, so a
//! bug in that library could hide on both sides; unbound is an independent
//! implementation that answers the way a production recursive resolver does.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};

const READY_TIMEOUT: Duration = Duration::from_secs(5);
const START_ATTEMPTS: usize = 5;

const ZONE_FILE: &str = "\
$ORIGIN database.windows.net.
$TTL 60
@            IN SOA  ns1.database.windows.net. hostmaster.database.windows.net. ( 1 3600 600 86400 60 )
@            IN NS   ns1.database.windows.net.
ns1          IN A    127.0.0.53
; Azure Private Link shape: public name -> CNAME -> privatelink name -> private IP
myserver                 IN CNAME myserver.privatelink.database.windows.net.
myserver.privatelink     IN A     10.1.2.4
; same shape, but ending on loopback so a test server on 127.0.0.1 is reachable
loopsql                  IN CNAME loopsql.privatelink.database.windows.net.
loopsql.privatelink      IN A     127.0.0.1
loopsql.privatelink      IN AAAA  ::1
; name resolving straight to a loopback address
local                    IN A     127.0.0.10
";

/// A running `unbound -d`; dropping it kills the process and removes its
/// temporary directory.
pub struct Unbound {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Unbound {
    /// Starts `unbound -d -c <tmp>/unbound.conf` on 127.0.0.1:<free port> (pick a free port by binding UDP 127.0.0.1:0 then dropping it; retry a few times on failure)
    /// Returns Err(reason) when the unbound binary is missing, so the caller can print "SKIPPED: unbound not installed" and return.
    ///
    /// Any other failure panics with unbound's log: an installed but broken
    /// peer must fail the test, not silently skip it.
    ///
    /// Besides the zone it answers x.nxdomain.test NXDOMAIN, x.refused.test
    /// REFUSED, x.servfail.test SERVFAIL and never answers x.slow.test.
    pub fn start() -> Result<Unbound, String> {
        let binary = find_unbound().ok_or_else(|| {
            "unbound binary not found in PATH, /usr/sbin or /usr/local/sbin".to_owned()
        })?;
        let dir = tempfile::Builder::new()
            .prefix("routeproof-unbound-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating temp dir for unbound: {e}"));
        fs::write(dir.path().join("database.windows.net.zone"), ZONE_FILE)
            .expect("write zone file");

        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let conf = dir.path().join("unbound.conf");
            fs::write(&conf, config(dir.path(), port)).expect("write unbound.conf");
            let log_path = dir.path().join("unbound.log");
            let log = File::create(&log_path).expect("create unbound.log");
            let mut child = Command::new(&binary)
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {}: {e}", binary.display()));
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match wait_ready(&mut child, addr) {
                Ok(()) => return Ok(Unbound { addr, child, dir }),
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    failures.push(format!("port {port}: {why}\n{log}"));
                }
            }
        }
        panic!(
            "unbound did not start after {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    /// Where the config, zone file and log live (for debugging a failure).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_unbound() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("unbound"))
        .find(|p| p.is_file())
}

/// Racy by nature (the port is free when we look, someone may take it before
/// unbound binds it); `start` retries to cover that.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP 127.0.0.1:0");
        let port = udp.local_addr().expect("udp local_addr").port();
        // unbound also listens on TCP, so the port must be free for both.
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

fn config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        r#"server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    num-threads: 1
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    harden-dnssec-stripped: no
    # "test." is one of unbound's built-in NXDOMAIN zones (RFC 6761): switch that off
    local-zone: "test." nodefault
    local-zone: "nxdomain.test." always_nxdomain
    local-zone: "refused.test." always_refuse
remote-control:
    control-enable: no
auth-zone:
    name: "database.windows.net."
    zonefile: "{dir}/database.windows.net.zone"
    for-downstream: yes
    for-upstream: yes
    fallback-enabled: no
# SERVFAIL at once: an auth-zone with no data (its primary is a dead loopback port)
auth-zone:
    name: "servfail.test."
    primary: 127.0.0.1@9
    for-downstream: yes
    fallback-enabled: no
# timeout: forwarded to a loopback port where nothing listens -> unbound never answers
forward-zone:
    name: "slow.test."
    forward-addr: 127.0.0.1@9
# SAFETY NET: everything else goes to a dead loopback port, so unbound can never
# contact root servers or anything off this machine (keep this in every config)
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@9
"#
    )
}

/// Ready means "answers a real query from the zone", not merely "port open":
/// unbound opens its sockets before the auth-zone is loaded.
fn wait_ready(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let name = Name::from_ascii("local.database.windows.net.").expect("static name");
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut id: u16 = 0x5200;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("unbound exited early with {status}"));
        }
        id = id.wrapping_add(1);
        let mut query = Message::new(id, MessageType::Query, OpCode::Query);
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name.clone(), RecordType::A));
        let bytes = query.to_vec().map_err(|e| e.to_string())?;
        if sock.send_to(&bytes, addr).is_err() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        // Nothing listening yet gives ECONNREFUSED or a read timeout; both
        // just mean "try again".
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            if from != addr {
                continue;
            }
            if let Ok(reply) = Message::from_vec(&buf[..n])
                && reply.metadata.id == id
                && reply.metadata.response_code == ResponseCode::NoError
                && !reply.answers.is_empty()
            {
                return Ok(());
            }
        }
    }
    Err(format!("no answer from {addr} within {READY_TIMEOUT:?}"))
}
