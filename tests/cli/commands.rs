//! The `routeproof` binary as a user runs it: exit codes (0 ok, 1 a target failed, 2
//! usage or config error), the text table and the JSON report, `check`, `demo`.

use crate::support;

use std::process::{Command, Output};

use support::dns::{DnsServer, Zone};

fn routeproof(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routeproof"))
        .args(args)
        .env_remove("ROUTEPROOF_CONFIG")
        .env_remove("WEBSITE_DNS_SERVER")
        .output()
        .expect("run routeproof")
}

async fn routeproof_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        routeproof(&a)
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_shows_chain_server_address_and_tcp_result() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = routeproof_async(vec![
        "probe".into(),
        "--dns-server".into(),
        dns.addr.to_string(),
        format!("tcp://loopsql.database.windows.net:{port}"),
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains(&format!("via {}", dns.addr)), "{stdout}");
    assert!(
        stdout.contains("loopsql.database.windows.net. -> loopsql.privatelink.database.windows.net. (CNAME, ttl 60)"),
        "{stdout}"
    );
    assert!(stdout.contains("127.0.0.1 loopback (ttl 60)"), "{stdout}");
    assert!(
        stdout.contains(&format!("127.0.0.1:{port} from 127.0.0.1:")),
        "{stdout}"
    );
    assert!(stdout.starts_with("routeproof "), "{stdout}");
    assert!(stdout.contains("PASS"), "{stdout}");
    assert!(stdout.contains(&format!("{} (cli)", dns.addr)), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_target_exits_1_and_json_carries_the_class() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let out = routeproof_async(vec![
        "probe".into(),
        "--json".into(),
        "--dns-server".into(),
        dns.addr.to_string(),
        format!("tcp://{closed}"),
        "dns://nosuch.database.windows.net".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is the JSON report only");
    assert_eq!(v["schema"], "routeproof.report/v1");
    assert_eq!(v["ok"], false);
    assert_eq!(v["summary"]["failed"], 2);
    assert_eq!(v["targets"][0]["failure"]["class"], "tcp.refused");
    assert_eq!(v["targets"][0]["failure"]["layer"], "tcp");
    assert_eq!(v["targets"][0]["reached"], serde_json::Value::Null);
    assert_eq!(v["targets"][1]["failure"]["class"], "dns.nxdomain");
    assert_eq!(v["targets"][1]["reached"], "dns");
    assert_eq!(v["targets"][1]["layers"][0]["layer"], "dns");
    assert_eq!(v["targets"][1]["layers"][0]["rcode"], "NXDOMAIN");
    assert_eq!(v["targets"][1]["layers"][0]["server"], dns.addr.to_string());
    // Layers that did not run are absent (never a 0 ms entry) and named in `skipped`.
    assert_eq!(v["targets"][1]["layers"].as_array().unwrap().len(), 1);
    let hint = v["targets"][1]["failure"]["hint"].as_str().unwrap();
    assert!(hint.len() > 40, "{hint}");
}

#[test]
fn usage_and_config_errors_exit_2_with_one_line_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[engine]\ntimeouts = { dns = \"soon\" }\n").unwrap();
    let bad = bad.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["probe"], "nothing to probe"),
        (
            vec!["probe", "--dns-server", "127.0.0.1:9", "ftp://x:21"],
            "unknown scheme `ftp`",
        ),
        (
            vec!["probe", "--dns-server", "not-an-ip", "tcp://a:1"],
            "`--dns-server`",
        ),
        (
            vec!["probe", "--timeout", "forever", "tcp://127.0.0.1:9"],
            "`--timeout`",
        ),
        (vec!["probe", "--config", &bad], "engine.timeouts.dns"),
        (vec!["check", "--config", &bad], "engine.timeouts.dns"),
        (
            vec!["check", "--config", "/nonexistent/routeproof.toml"],
            "cannot read",
        ),
        (vec!["probe", "env:ROUTEPROOF_TEST_UNSET_VAR"], "is not set"),
    ];
    for (args, want) in cases {
        let out = routeproof(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(want),
            "{args:?}: stderr `{err}` lacks `{want}`"
        );
        assert!(err.contains("config.invalid"), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // clap's own usage errors are 2 as well.
    assert_eq!(
        routeproof(&["probe", "--no-such-flag"]).status.code(),
        Some(2)
    );
    assert_eq!(routeproof(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn check_prints_the_plan_without_sending_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ok.toml");
    // 127.0.0.1:9 is a dead port: `check` must not query it (it would still succeed).
    std::fs::write(
        &cfg,
        "[engine]\ndns_servers = [\"127.0.0.1:9\"]\n[[targets]]\nname = \"sql\"\ntarget = \"tcp://myserver.database.windows.net:1433\"\nprivate = true\naddresses = [\"10.1.0.0/16\"]\nmax_ms = 500\n",
    )
    .unwrap();
    let out = routeproof(&["check", "--config", cfg.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("config ok: 1 target(s)"), "{stdout}");
    assert!(
        stdout.contains("dns servers: 127.0.0.1:9 (config)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sql  tcp://myserver.database.windows.net:1433  [dns > tcp]  expect: private, addresses 10.1.0.0/16, max_ms 500"),
        "{stdout}"
    );
}

#[test]
fn version() {
    let out = routeproof(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("routeproof {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn demo_runs_offline_and_shows_each_kind_of_result() {
    let out = routeproof(&["demo"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for want in [
        "PASS  sql-private-endpoint",
        "-> loopsql.privatelink.database.windows.net.",
        "dns.public_address",
        "tcp.refused",
        "dns.nxdomain",
        "hint: ",
    ] {
        assert!(stdout.contains(want), "missing `{want}`:\n{stdout}");
    }
    let json = routeproof(&["demo", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["summary"]["total"], 4);
    assert_eq!(v["summary"]["ok"], 1);
}

/// `routeproof demo | head -1`: the reader is gone before the report is written. The
/// output stops there; the process keeps its exit code (0 for the demo, whose failures
/// are on purpose) and never panics (std's `println!` does on a closed pipe).
#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    for args in [&["demo"][..], &["demo", "--json"][..]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_routeproof"))
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run routeproof");
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// The issue's own acceptance command, against unbound on 127.0.0.53:5353 when that
/// address is free (as a developer's machine runs it), else on a free loopback port.
#[tokio::test(flavor = "multi_thread")]
async fn acceptance_command_against_unbound() {
    let ub = match support::unbound::Unbound::start() {
        Ok(u) => u,
        Err(why) => {
            support::skip("acceptance_command_against_unbound", &why);
            return;
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = routeproof_async(vec![
        "probe".into(),
        "--dns-server".into(),
        ub.addr.to_string(),
        format!("tcp://loopsql.database.windows.net:{port}"),
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("NOERROR via {}", ub.addr)),
        "{stdout}"
    );
    assert!(
        stdout.contains("-> loopsql.privatelink.database.windows.net."),
        "{stdout}"
    );
    assert!(stdout.contains("127.0.0.1 loopback"), "{stdout}");
    assert!(stdout.contains("tcp   ok"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planted_password_appears_in_no_output() {
    const PLANTED: &str = "Pl4nted-S3cret-9f2c";
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    // A real TDS server that accepts exactly the planted password: the secret must be
    // used (the login succeeds) and still appear in no output.
    support::certs::install_crypto_provider();
    let cert = support::certs::self_signed(&support::certs::LeafSpec::new([
        "loopsql.database.windows.net",
    ]));
    let sql = support::tds::TdsServer::start(
        support::tds::TdsConfig::default()
            .encrypted(support::tds::Encryption::Required, cert)
            .user("app", PLANTED),
    )
    .await;
    let port = sql.port();
    let conn = format!(
        "Server=tcp:loopsql.database.windows.net,{port};Initial Catalog=orders;User ID=app;Password={PLANTED};Encrypt=True;TrustServerCertificate=True"
    );
    let url = format!(
        "https://user:{PLANTED}@local.database.windows.net:1/health?code={PLANTED}&sig={PLANTED}"
    );
    for json in [false, true] {
        let dns_addr = dns.addr.to_string();
        let (conn, url) = (conn.clone(), url.clone());
        let out = tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "probe",
                "--dns-server",
                &dns_addr,
                "env:RP_TEST_SQL",
                "env:RP_TEST_URL",
                "env:RP_TEST_BAD",
            ];
            if json {
                args.insert(1, "--json");
            }
            Command::new(env!("CARGO_BIN_EXE_routeproof"))
                .args(&args)
                .env("RP_TEST_SQL", &conn)
                .env("RP_TEST_URL", &url)
                .env("RP_TEST_BAD", format!("Server=tcp:h,x;Password={PLANTED}"))
                .env("ROUTEPROOF_LOG", "trace")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        // The bad setting makes this a config error: the error must not echo the value.
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(!all.contains(PLANTED), "json={json}: {all}");
    }
    // Without the bad setting the probe runs; the report shows the targets, not the secrets.
    let dns_addr = dns.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_routeproof"))
            .args([
                "probe",
                "--json",
                "--dns-server",
                &dns_addr,
                "env:RP_TEST_SQL",
                "env:RP_TEST_URL",
            ])
            .env("RP_TEST_SQL", &conn)
            .env("RP_TEST_URL", &url)
            .env("ROUTEPROOF_LOG", "trace")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(PLANTED), "{all}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["targets"][0]["target"],
        format!("sqlserver://loopsql.database.windows.net:{port}/orders")
    );
    assert!(
        v["targets"][1]["target"]
            .as_str()
            .unwrap()
            .contains("code=%3Credacted%3E"),
        "{}",
        v["targets"][1]["target"]
    );
    assert_eq!(v["targets"][0]["layers"][2]["layer"], "tds");
    assert_eq!(
        v["targets"][0]["layers"][2]["logged_in"], true,
        "{}",
        v["targets"][0]
    );
    assert_eq!(sql.stats().logins_succeeded, 1);
}
