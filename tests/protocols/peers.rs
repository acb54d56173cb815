//! Real servers (PostgreSQL 15, MariaDB, Redis 7) and small stub listeners for the
//! protocol tests. Each server runs from a temporary directory on 127.0.0.1 with a random
//! free port and certificates generated here, and is stopped when its value drops.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use routeproof::probe::handshake::Rustls;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A skipped test says so, and fails where peers must be installed.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("ROUTEPROOF_REQUIRE_PEERS").is_some_and(|v| v == "1") {
        panic!("{test}: required peer missing: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect to the peer")
}

/// A throwaway CA and a server certificate for `localhost` and 127.0.0.1.
pub struct Certs {
    pub ca_der: CertificateDer<'static>,
    pub ca_pem: String,
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_pem: String,
    key_der: Vec<u8>,
}

impl Certs {
    pub fn new() -> Certs {
        let mut ca = CertificateParams::default();
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "protocols test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        Certs {
            ca_der: issuer.der().clone(),
            ca_pem: issuer.pem(),
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// The client side: verify-full against this CA, name `localhost`.
    pub fn upgrade(&self) -> Rustls {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        Rustls::verify_full(roots, ServerName::try_from("localhost").unwrap())
    }

    /// A rustls acceptor for stub servers.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// Writes ca.crt, server.crt, server.key (0600) into `dir`.
    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join("ca.crt"), &self.ca_pem).unwrap();
        std::fs::write(dir.join("server.crt"), &self.cert_pem).unwrap();
        let key = dir.join("server.key");
        std::fs::write(&key, &self.key_pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls a TCP connect until it succeeds.
pub fn wait_port(port: u16, child: &mut Child, what: &str, log: &Path) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("{what} exited ({st}): {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} did not open port {port}"))
}

/// uid/gid of a system user, from /etc/passwd.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() != Some(&name) {
            return None;
        }
        Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
    })
}

pub fn chown_r(path: &Path, user: &str) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:{user}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success(), "chown {path:?}");
}

/// A server process, stopped (SIGTERM, then SIGKILL after 10 s) on drop, with its dir.
pub struct Proc {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub log: PathBuf,
}

impl Proc {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` as `user` (uid/gid switched in the child), output to `log`.
pub fn spawn_as(mut cmd: Command, user: Option<&str>, log: &Path) -> Child {
    if let Some(u) = user {
        let (uid, gid) = user_ids(u).expect("system user");
        cmd.uid(uid).gid(gid);
    }
    let out = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn server")
}

pub fn run_as(mut cmd: Command, user: Option<&str>) -> Result<String, String> {
    if let Some(u) = user {
        let (uid, gid) = user_ids(u).expect("system user");
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// An HTTP server (axum) on a free port: "not this protocol".
pub async fn http_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

/// A stub that accepts one connection at a time and hands it to `f`.
pub async fn stub<F, Fut>(f: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(f(s));
        }
    });
    addr
}

/// The "deadline honoured" guard: the probe must return by itself, well before this.
pub async fn bounded<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("the probe did not return after its deadline")
}

/// A planted password and token: they must appear nowhere the probe writes.
pub const PLANTED_PASSWORD: &str = "PLANTED-pw-7f3a91c2";
pub const PLANTED_TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.PLANTED-tok-5b8e.c2lnbmF0dXJl";

pub fn assert_no_secret(what: &str, text: &str) {
    for s in [PLANTED_PASSWORD, PLANTED_TOKEN, "PLANTED-"] {
        assert!(!text.contains(s), "{what} leaks a secret: {text}");
    }
}

/// A fake Entra token long enough to look real (Azure's are 1-2 KB).
pub fn fake_token(tag: &str) -> String {
    format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{tag}{}",
        "A".repeat(1200)
    )
}

/// A stub that runs `pre` (the protocol's bytes before TLS), accepts TLS with `acc`, then
/// holds the session silent: the "stall after TLS" fault of every data service.
pub async fn tls_stall<F, Fut>(acc: tokio_rustls::TlsAcceptor, pre: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = TcpStream> + Send + 'static,
{
    stub(move |s| {
        let (acc, pre) = (acc.clone(), pre.clone());
        async move {
            let s = pre(s).await;
            let tls = acc.accept(s).await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(tls);
        }
    })
    .await
}

/// Runs `probe` 20 times, each must pass, and prints the mean (`TIMING LABEL: … ms`).
pub async fn time_probes<F, Fut>(label: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = std::time::Instant::now();
    for _ in 0..20 {
        assert!(probe().await, "{label}");
    }
    eprintln!(
        "TIMING {label}: {:.1} ms per probe (20 runs)",
        t0.elapsed().as_secs_f64() * 1000.0 / 20.0
    );
}
