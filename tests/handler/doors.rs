//! Every door the same (issue 17): `serve` from a bare package (no config file) still
//! answers, a refused oversized body's 413 always reaches the client, and the status
//! page shows the environment as labelled rows. Peers: the handler itself on
//! 127.0.0.1, loopback listeners; nothing leaves 127.0.0.0/8.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::host::{App, Caller, Host, TARGETS_OK};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_routeproof");

/// A copy of the binary in an empty directory, started as the host starts it: no
/// `config/default.toml` beside it, no ROUTEPROOF_CONFIG. It serves the compiled-in
/// default: `GET /` and `/api/health` answer, and `/api/probe` says there is nothing
/// to prove (503 `config.no_targets`) instead of crashing into a restart loop.
#[tokio::test]
async fn serve_from_a_bare_directory_answers_with_the_compiled_in_default() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("routeproof");
    std::fs::copy(BIN, &bin).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("FUNCTIONS_APP_ROOT_PATH", dir.path())
        .env("ROUTEPROOF_SCHEDULE", "0 */5 * * * *")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let host = Host::new(SocketAddr::from(([127, 0, 0, 1], port)));
    let (ready, _) = host.wait_ready().await;
    assert_eq!(ready.status, 200, "GET / answers");
    let health = host
        .forward(
            &Caller::get("/api/health"),
            "0000aaaa-0000-4000-8000-000000000001",
            None,
        )
        .await;
    assert_eq!(health.status, 200);
    let probe = host
        .forward(
            &Caller::get("/api/probe?code=KEY"),
            "0000aaaa-0000-4000-8000-000000000002",
            None,
        )
        .await;
    assert_eq!(probe.status, 503);
    let body: serde_json::Value = serde_json::from_str(&probe.text()).unwrap();
    assert_eq!(body["error"]["class"], "config.no_targets");
    // SAFETY: a signal to a child we spawned and have not reaped.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("(compiled-in default)"),
        "the start-up line names the config: {stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no errors");
}

/// A 2 MB POST to `/api/probe` (limit 64 KiB), sent several times on fresh
/// connections while the client is still writing: every time the client reads the
/// `413 request.too_large`, never a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_mb_body_gets_its_413_every_time() {
    let app = App::start(TARGETS_OK).await;
    const SIZE: usize = 2 * 1024 * 1024;
    for attempt in 1..=6 {
        let tcp = tokio::net::TcpStream::connect(app.host.addr).await.unwrap();
        let (mut rd, mut wr) = tcp.into_split();
        let head = format!(
            "POST /api/probe HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {SIZE}\r\n\r\n",
            app.host.addr
        );
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            let _ = wr.write_all(head.as_bytes()).await;
            let mut sent = 0;
            while sent < SIZE {
                if wr.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            sent
        });
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), async {
            let mut buf = [0u8; 8192];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("the reply arrives and the connection ends");
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with("HTTP/1.1 413"),
            "attempt {attempt}: {read:?}, read {:?}",
            &text[..text.len().min(200)]
        );
        assert!(
            text.contains("\"request.too_large\""),
            "attempt {attempt}: {text}"
        );
        let _ = writer.await;
    }
}

/// The page's environment block is labelled rows (site, instance, private IP,
/// route-all with its source, DNS servers with their source, discovery), never JSON.
#[tokio::test]
async fn the_environment_block_is_labelled_rows() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = |k: &str| {
        Some(
            match k {
                "WEBSITE_SITE_NAME" => "func-rp-test",
                "WEBSITE_INSTANCE_ID" => "instance-0123",
                "WEBSITE_PRIVATE_IP" => "10.20.1.4",
                "WEBSITE_VNET_ROUTE_ALL" => "1",
                "REGION_NAME" => "westeurope",
                "WEBSITE_DNS_SERVER" => "127.0.0.1",
                _ => return None,
            }
            .to_string(),
        )
    };
    let text = format!(
        "[engine]\ndns_servers = [\"127.0.0.1:9\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\n[[targets]]\nname = \"down\"\ntarget = \"tcp://{closed}\"\n"
    );
    let cfg = routeproof::config::parse(&text, &env).unwrap();
    let engine = routeproof::app::engine(cfg.engine, "config", &env).unwrap();
    let report = engine.run(&cfg.targets, None).await;
    let page = routeproof::render::html::render(&report, &serde_json::Map::new());
    let start = page
        .find("<h2>Environment</h2>")
        .expect("environment block");
    let block = &page[start..start + page[start..].find("</dl>").unwrap()];
    assert!(!block.contains('{') && !block.contains('}'), "{block}");
    for (label, value) in [
        ("site", "func-rp-test"),
        ("instance", "instance-0123"),
        ("private IP", "10.20.1.4"),
        ("route-all", "on ("),
        ("resolvers", "127.0.0.1:9 (config)"),
    ] {
        let row = format!("<dt>{label}</dt><dd>");
        let at = block
            .find(&row)
            .unwrap_or_else(|| panic!("no {label} row: {block}"));
        let dd = &block[at + row.len()..];
        let dd = &dd[..dd.find("</dd>").unwrap()];
        assert!(dd.contains(value), "{label}: {dd}");
    }
}
