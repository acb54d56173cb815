//! `routeproof serve` and the CLI as child processes on 127.0.0.1, for the door tests:
//! start, one HTTP/1.1 exchange, the timer as the host sends it, stop and collect output.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::azurite::{Azurite, free_port};

pub const BIN: &str = env!("CARGO_BIN_EXE_routeproof");

/// The timer body as the host sends it (docs/host-contract.md §5.3), unmonitored.
pub const TIMER: &str = r#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"scheduled","UtcNow":"2025-01-15T10:05:00.0031456Z","RandGuid":"3c9d1a52-7f0e-4b8e-9d61-0f2a5b7c8e14"}}}"#;

pub fn store_env(az: &Azurite, instance: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AzureWebJobsStorage", az.key_connection_string()),
        ("WEBSITE_INSTANCE_ID", instance.to_string()),
        ("ROUTEPROOF_STORAGE_CACHE_SECS", "0".into()),
        ("ROUTEPROOF_STORAGE_TIMEOUT_SECS", "3".into()),
        ("ROUTEPROOF_LOG", "info".into()),
    ]
}

pub fn command(args: &[&str], env: &[(&'static str, String)]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Its stdout and stderr go to files (a pipe nobody reads would stall a chatty log).
pub struct Serve {
    pub port: u16,
    child: Child,
    out: tempfile::TempDir,
}

impl Serve {
    pub async fn start(config: &str, env: &[(&'static str, String)]) -> Serve {
        let port = free_port();
        let out = tempfile::tempdir().unwrap();
        let file = |n: &str| std::fs::File::create(out.path().join(n)).unwrap();
        let child = command(
            &["serve", "--port", &port.to_string(), "--config", config],
            env,
        )
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .unwrap();
        let s = Serve { port, child, out };
        for _ in 0..1200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("serve did not listen on {port}");
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, "").await
    }

    pub async fn timer(&self) -> (u16, Value) {
        let (status, body) = http(self.port, "POST", "/scheduled", TIMER).await;
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status, v)
    }

    /// Stops it (SIGKILL: the platform stops a handler without a signal too) and
    /// returns everything it wrote.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let read = |n: &str| std::fs::read_to_string(self.out.path().join(n)).unwrap_or_default();
        read("stdout") + &read("stderr")
    }
}

/// A test that fails half-way still leaves no process behind.
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange on 127.0.0.1 (`Connection: close`; chunked bodies decoded).
pub async fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

pub fn logs(v: &Value) -> String {
    v["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The guard's contract, proven: a test whose assertion fails while a `serve` child runs
/// (here a task that panics holding one) leaves no process behind: unwinding drops the
/// `Serve`, which kills and reaps the child, so its pid is gone from /proc.
#[tokio::test]
async fn a_failed_assertion_leaves_no_serve_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routeproof.toml");
    std::fs::write(&config, "[engine]\ndns_servers = [\"127.0.0.1:9\"]\n").unwrap();
    let config = config.display().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let test = tokio::spawn(async move {
        let s = Serve::start(&config, &[]).await;
        let (status, _) = s.get("/api/health").await;
        tx.send(s.pid()).unwrap();
        assert_eq!(status, 599, "an assertion that fails with the child alive");
    });
    let pid = rx.await.expect("serve started and answered");
    let failed = test.await.expect_err("the assertion failed");
    assert!(failed.is_panic());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "serve (pid {pid}) outlived the failed test"
    );
}
