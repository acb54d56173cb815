//! Real peers on 127.0.0.1: Azurite (Microsoft's Azure Storage emulator, npm `azurite`) and
//! Samba's smbd. Each test starts its own instance on free loopback ports and stops it on
//! drop (SIGTERM, then SIGKILL after a grace period; only the pid we started).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::certs::{Ca, LeafSpec, PemFiles};

/// A skipped test must be visible, and fail where the peers are supposed to be installed
/// (`ROUTEPROOF_REQUIRE_PEERS=1`, set by `.ci/run`). Same contract as tests/support.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("ROUTEPROOF_REQUIRE_PEERS").is_some_and(|v| v == "1") {
        panic!("{test}: required peer missing: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_port(port: u16, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A child process stopped on drop.
pub struct Proc {
    child: Child,
    pub name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling the pid of a child we spawned and have not yet reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(8) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("{}: did not stop on SIGTERM; killed", self.name);
    }
}

fn find_azurite() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ROUTEPROOF_AZURITE") {
        return Some(PathBuf::from(p));
    }
    let cached = PathBuf::from("/opt/routeproof-peers/azurite/node_modules/.bin/azurite");
    if cached.is_file() {
        return Some(cached);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("azurite"))
        .find(|p| p.is_file())
}

pub struct Azurite {
    _proc: Proc,
    _dir: tempfile::TempDir,
    pub blob: u16,
    pub queue: u16,
    pub table: u16,
}

/// Azurite on free loopback ports; with `tls = Some((cert, key))` HTTPS and `--oauth basic`.
/// Always `--disableTelemetry` (Azurite collects telemetry by default).
pub fn azurite(tls: Option<(&std::path::Path, &std::path::Path)>) -> Result<Azurite, String> {
    let bin = find_azurite()
        .ok_or("azurite not installed (npm install azurite; or set ROUTEPROOF_AZURITE)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (blob, queue, table) = (free_port(), free_port(), free_port());
    let mut cmd = Command::new(&bin);
    cmd.args([
        "--disableTelemetry",
        "--silent",
        "--skipApiVersionCheck",
        "--location",
    ])
    .arg(dir.path())
    .args([
        "--blobHost",
        "127.0.0.1",
        "--queueHost",
        "127.0.0.1",
        "--tableHost",
        "127.0.0.1",
    ])
    .args(["--blobPort", &blob.to_string()])
    .args(["--queuePort", &queue.to_string()])
    .args(["--tablePort", &table.to_string()]);
    if let Some((cert, key)) = tls {
        cmd.args(["--oauth", "basic", "--cert"])
            .arg(cert)
            .arg("--key")
            .arg(key);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let proc = Proc {
        child,
        name: "azurite",
    };
    for p in [blob, queue, table] {
        if !wait_port(p, Duration::from_secs(30)) {
            return Err(format!("azurite did not listen on {p}"));
        }
    }
    Ok(Azurite {
        _proc: proc,
        _dir: dir,
        blob,
        queue,
        table,
    })
}

/// Azurite over HTTPS with `--oauth basic` (Azurite needs a certificate for OAuth), its
/// certificate issued for localhost and 127.0.0.1 by a fresh test CA (`ca`, to verify).
pub struct AzuriteTls {
    pub az: Azurite,
    pub ca: Ca,
    _pems: PemFiles,
}

pub fn azurite_oauth() -> Result<AzuriteTls, String> {
    crate::certs::install_crypto_provider();
    let ca = Ca::new("routeproof Azurite OAuth CA");
    let leaf = ca.issue(&LeafSpec::new(["localhost", "127.0.0.1"]));
    let pems = PemFiles::write(&ca, &leaf);
    let az = azurite(Some((&pems.cert, &pems.key)))?;
    Ok(AzuriteTls {
        az,
        ca,
        _pems: pems,
    })
}

fn find_smbd() -> Option<PathBuf> {
    ["/usr/sbin/smbd", "/usr/bin/smbd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

pub struct Samba {
    proc: Option<Proc>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Samba {
    fn drop(&mut self) {
        drop(self.proc.take());
        // smbd may have spawned samba-dcerpcd (re-parented, it outlives smbd): stop it by
        // the pid file in our own pid directory, if its cmdline says it is.
        let pidfile = self.dir.path().join("run/samba-dcerpcd.pid");
        if let Ok(s) = std::fs::read_to_string(pidfile)
            && let Ok(pid) = s.trim().parse::<libc::pid_t>()
            && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("samba-dcerpcd"))
        {
            // SAFETY: a pid our smbd wrote, checked to be samba-dcerpcd.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// smbd on a free loopback port, its state in a temporary directory. Started plainly
/// (`smbd --foreground` calls setsid itself; never `--no-process-group`, whose shutdown
/// signals our process group).
pub fn samba() -> Result<Samba, String> {
    samba_on(free_port())
}

/// smbd on 127.0.0.1:`port` (445 for a content share discovered from its settings, whose
/// SMB port is fixed).
pub fn samba_on(port: u16) -> Result<Samba, String> {
    samba_with(port, "server min protocol = SMB2_02")
}

/// smbd that speaks SMB1 (NT1) only: it answers an SMB2 NEGOTIATE offering 2.0.2-3.1.1
/// with STATUS_NOT_SUPPORTED, having no dialect in common (smbd's own negotiation).
pub fn samba_smb1_only() -> Result<Samba, String> {
    samba_with(
        free_port(),
        "server min protocol = NT1\n  server max protocol = NT1",
    )
}

/// smbd on 127.0.0.1:`port` with `protocols` (its `server min/max protocol` lines).
fn samba_with(port: u16, protocols: &str) -> Result<Samba, String> {
    let bin = find_smbd().ok_or("smbd not installed (apt-get install samba)")?;
    if unsafe { libc::geteuid() } != 0 {
        return Err("smbd needs root here".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    for sub in [
        "lock", "state", "cache", "private", "run", "ncalrpc", "share", "logs",
    ] {
        std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
    }
    let p = |s: &str| d.join(s).display().to_string();
    let conf = format!(
        "[global]\n  server role = standalone server\n  interfaces = 127.0.0.1\n  bind interfaces only = yes\n  smb ports = {port}\n  disable netbios = yes\n  {protocols}\n  lock directory = {}\n  state directory = {}\n  cache directory = {}\n  private dir = {}\n  pid directory = {}\n  ncalrpc dir = {}\n  binddns dir = {}\n  passdb backend = tdbsam:{}\n  log file = {}\n  log level = 1\n  map to guest = Bad User\n  load printers = no\n  printing = bsd\n  printcap name = /dev/null\n  disable spoolss = yes\n[share]\n  path = {}\n  read only = yes\n  guest ok = yes\n",
        p("lock"),
        p("state"),
        p("cache"),
        p("private"),
        p("run"),
        p("ncalrpc"),
        p("private/bind-dns"),
        p("private/passdb.tdb"),
        p("logs/log.%m"),
        p("share"),
    );
    let conf_path = d.join("smb.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .arg("--foreground")
        .arg("--debug-stdout")
        .arg(format!("--configfile={}", conf_path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start smbd: {e}"))?;
    let proc = Proc {
        child,
        name: "smbd",
    };
    if !wait_port(port, Duration::from_secs(15)) {
        return Err(format!("smbd did not listen on {port}"));
    }
    Ok(Samba {
        proc: Some(proc),
        dir,
        port,
    })
}
