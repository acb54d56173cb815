//! Azurite (Microsoft's Azure Storage emulator, npm `azurite`) started by the test on
//! 127.0.0.1: blob service only (`azurite-blob`), a random free port, a temporary
//! workspace, telemetry off, stopped on drop. Plain HTTP with SharedKey/SAS, or HTTPS with
//! `--oauth basic` (bearer tokens; Azurite checks the token's audience, issuer and
//! lifetime, not its signature: Azurite README, "OAuth authentication").

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Azurite's published development account and key (Azurite README, "Default Storage
/// Account").
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub fn binary() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("ROUTEPROOF_AZURITE_BLOB").map(PathBuf::from),
        Some(PathBuf::from(
            "/opt/routeproof-peers/azurite/node_modules/.bin/azurite-blob",
        )),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("azurite-blob"))
                    .find(|p| p.exists())
            })
        })
}

pub fn free_port() -> u16 {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Certificate and key files for the HTTPS instance.
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Azurite {
    child: Option<Child>,
    pub port: u16,
    /// `devstoreaccount1`'s key: Azurite's published one, or the test's own
    /// (`AZURITE_ACCOUNTS`, Azurite README "Customized Storage Accounts & Keys").
    pub key: String,
    bin: PathBuf,
    dir: tempfile::TempDir,
    tls: Option<(PathBuf, PathBuf)>,
}

impl Azurite {
    /// `None` when Azurite is not installed.
    pub fn start(tls: Option<Tls>) -> Option<Azurite> {
        Azurite::start_with_key(tls, KEY)
    }

    /// With `key` as the account key of `devstoreaccount1` (base64).
    pub fn start_with_key(tls: Option<Tls>, key: &str) -> Option<Azurite> {
        let bin = binary()?;
        let mut a = Azurite {
            child: None,
            port: free_port(),
            key: key.to_string(),
            bin,
            dir: tempfile::tempdir().expect("temp dir"),
            tls: tls.map(|t| (t.cert, t.key)),
        };
        a.launch();
        Some(a)
    }

    fn launch(&mut self) {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--disableTelemetry")
            .arg("--silent")
            .arg("--skipApiVersionCheck")
            .arg("--blobHost")
            .arg("127.0.0.1")
            .arg("--blobPort")
            .arg(self.port.to_string())
            .arg("--location")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.key != KEY {
            cmd.env("AZURITE_ACCOUNTS", format!("{ACCOUNT}:{}", self.key));
        }
        if let Some((cert, key)) = &self.tls {
            cmd.arg("--oauth")
                .arg("basic")
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key);
        }
        self.child = Some(cmd.spawn().expect("start azurite-blob"));
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if TcpStream::connect_timeout(
                &SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "azurite-blob did not listen on 127.0.0.1:{} within 30 s",
            self.port
        );
    }

    /// SIGTERM (Azurite flushes its metadata and exits), then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on the pid of a child we spawned and have not yet reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts it again on the same port with the same workspace.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    pub fn https_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    pub fn key_connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={};BlobEndpoint={};",
            self.key,
            self.http_endpoint()
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}
