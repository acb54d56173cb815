//! The doors on a shared Azurite: two `routeproof serve` processes (instance A runs the
//! timer, instance B answers `?last`, `/api/metrics`, `?history` and the page with A's
//! run), an outage (A's timer still 2xx and says persistence failed, B's metrics say
//! stale), recovery, and the CLI's `probe --record` / `history --json`. Azurite's account
//! key is planted in every process's settings and must appear in no output.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::azurite::{Azurite, KEY, free_port};
use crate::fixtures::azurite_or_skip;

const BIN: &str = env!("CARGO_BIN_EXE_routeproof");

/// The timer body as the host sends it (docs/host-contract.md §5.3), unmonitored.
const TIMER: &str = r#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"scheduled","UtcNow":"2025-01-15T10:05:00.0031456Z","RandGuid":"3c9d1a52-7f0e-4b8e-9d61-0f2a5b7c8e14"}}}"#;

fn store_env(az: &Azurite, instance: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AzureWebJobsStorage", az.key_connection_string()),
        ("WEBSITE_INSTANCE_ID", instance.to_string()),
        ("ROUTEPROOF_STORAGE_CACHE_SECS", "0".into()),
        ("ROUTEPROOF_STORAGE_TIMEOUT_SECS", "3".into()),
        ("ROUTEPROOF_LOG", "info".into()),
    ]
}

fn command(args: &[&str], env: &[(&'static str, String)]) -> Command {
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

struct Serve {
    port: u16,
    child: Child,
}

impl Serve {
    async fn start(config: &str, env: &[(&'static str, String)]) -> Serve {
        let port = free_port();
        let child = command(
            &["serve", "--port", &port.to_string(), "--config", config],
            env,
        )
        .spawn()
        .unwrap();
        let s = Serve { port, child };
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

    async fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, "").await
    }

    async fn timer(&self) -> (u16, Value) {
        let (status, body) = http(self.port, "POST", "/scheduled", TIMER).await;
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status, v)
    }

    /// Stops it and returns everything it wrote.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut out);
        }
        out
    }
}

/// One HTTP/1.1 exchange on 127.0.0.1 (`Connection: close`; chunked bodies decoded).
async fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
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

fn logs(v: &Value) -> String {
    v["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn two_serve_processes_share_one_store_through_an_outage() {
    let Some(mut az) = azurite_or_skip(
        "two_serve_processes_share_one_store_through_an_outage",
        None,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap();
    let config = dir.path().join("routeproof.toml");
    std::fs::write(
        &config,
        format!(
            "[engine]\ndns_servers = [\"127.0.0.1:9\"]\ntcp_settle = \"0s\"\n\n[[targets]]\nname = \"api\"\ntarget = \"tcp://{open_addr}\"\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let a = Serve::start(&config, &store_env(&az, "instance-a")).await;
    let b = Serve::start(&config, &store_env(&az, "instance-b")).await;
    let mut outputs = Vec::new();

    // B before any run: nothing stored, nothing in memory.
    let (status, body) = b.get("/api/probe?last").await;
    assert_eq!(status, 404, "{body}");

    // A's timer records; B answers with A's run.
    let (status, reply) = a.timer().await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        logs(&reply).contains("persisted: history/"),
        "{}",
        logs(&reply)
    );
    let (status, body) = b.get("/api/probe?last").await;
    outputs.push(body.clone());
    assert_eq!(status, 200, "{body}");
    let last: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(last["stored"]["instance"], "instance-a");
    assert_eq!(last["stored"]["trigger"], "timer");
    assert!(last["stored"]["finished_at"].as_str().is_some());
    assert_eq!(last["targets"][0]["name"], "api");

    let (status, metrics) = b.get("/api/metrics").await;
    outputs.push(metrics.clone());
    assert_eq!(status, 200);
    for want in [
        "routeproof_report_available 1",
        "routeproof_report_source_info{instance=\"instance-a\"",
        "probe_success{target=\"api\"} 1",
        "routeproof_store_stale 0",
        "routeproof_uptime_ratio{target=\"api\",window=\"24h\"} 1",
        "routeproof_uptime_ratio{target=\"api\",window=\"7d\"} 1",
        "routeproof_last_run_timestamp_seconds ",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in\n{metrics}");
    }

    let (status, body) = b.get("/api/probe?history&target=api&limit=10").await;
    outputs.push(body.clone());
    assert_eq!(status, 200, "{body}");
    let h: Value = serde_json::from_str(&body).unwrap();
    let runs = h["history"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["instance"], "instance-a");
    assert_eq!(runs[0]["targets"][0]["name"], "api");
    let (status, body) = b.get("/api/probe?history&from=yesterday").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("request.invalid") && body.contains("RFC 3339"),
        "{body}"
    );

    // B's page: its own run on top, the stored strip and uptime under it.
    let (status, page) = b.get("/api/probe?format=html").await;
    outputs.push(page.clone());
    assert_eq!(status, 200);
    assert!(page.contains("<h2>History</h2>"), "{page}");
    assert!(page.contains("class=\"strip\""), "{page}");
    assert!(page.contains("uptime 24 h 100.00%"), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );

    // Outage: A's timer still answers 2xx and says why persistence failed; B is stale.
    az.stop();
    let (status, reply) = a.timer().await;
    assert_eq!(status, 200, "{reply}");
    let l = logs(&reply);
    assert!(l.contains("persistence failed: store.unreachable"), "{l}");
    assert!(
        reply["ReturnValue"]
            .as_str()
            .unwrap()
            .contains("persistence failed: store.unreachable"),
        "{reply}"
    );
    let (status, metrics) = b.get("/api/metrics").await;
    outputs.push(metrics.clone());
    assert_eq!(status, 200);
    assert!(
        metrics.contains("routeproof_store_stale{class=\"store.unreachable\"} 1"),
        "{metrics}"
    );
    let (status, body) = b.get("/api/probe?history").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("history.unavailable") && body.contains("store.unreachable"),
        "{body}"
    );

    // Back: the next run is recorded next to the first.
    az.restart();
    let (status, reply) = a.timer().await;
    assert_eq!(status, 200);
    assert!(logs(&reply).contains("persisted: history/"), "{reply}");
    let (_, body) = b.get("/api/probe?history").await;
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["history"]["runs"].as_array().unwrap().len(), 2, "{body}");

    // The CLI on an operator's laptop: probe --record, then history --json.
    let mut env = store_env(&az, "laptop");
    env.pop();
    let out = command(
        &["probe", "--record", "--json", &format!("tcp://{open_addr}")],
        &env,
    )
    .output()
    .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    assert!(se.contains("recorded in history/"), "{se}");
    outputs.push(so + &se);
    let out = command(&["history", "--json"], &env).output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{so}");
    let h: Value = serde_json::from_str(&so).unwrap();
    let runs = h["history"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{so}");
    assert_eq!(runs[2]["instance"], "laptop");
    assert_eq!(runs[2]["trigger"], "cli");
    assert!(
        h["uptime"].as_array().is_some_and(|u| !u.is_empty()),
        "{so}"
    );
    outputs.push(so);
    let out = command(&["history", "--target", "api"], &env)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(so.contains("api: uptime 24h 100.00% (2 runs)"), "{so}");
    outputs.push(so);

    // Without a store: the CLI says how to turn history on.
    let out = command(&["history"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("set AzureWebJobsStorage or ROUTEPROOF_STORAGE")
    );

    outputs.push(a.stop());
    outputs.push(b.stop());
    for o in &outputs {
        assert!(!o.contains(KEY), "the account key leaked:\n{o}");
    }
    drop(open);
}
