//! `routeproof serve`'s start-up as the host sees it, in a child process: what it reads
//! before its first answer (a bare `serve` without clap: `serve::bare`) and what it builds
//! after (logging, the engine, exporters, store), which must still log what it finds.

use crate::support;

use std::net::SocketAddr;

use support::host::{Caller, Host};

const IID: &str = "5eed0000-1a7b-4e0c-9f1e-0d2c3b4a5f60";

use super::process::{finish, serve, sigterm, write_config};

/// Starts `serve` with `env` (plus the host's port), waits for readiness and for one
/// request through the real server (so start-up is over and SIGTERM is handled), stops
/// it, and returns its stdout lines as JSON and its stderr.
async fn start_and_stop(
    args: &[&str],
    port: u16,
    env: &[(&str, String)],
) -> (Vec<serde_json::Value>, String) {
    let mut env = env.to_vec();
    env.push(("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()));
    env.push(("ROUTEPROOF_SCHEDULE", "0 */5 * * * *".into()));
    let child = serve(args, &env).spawn().unwrap();
    let host = Host::new(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(host.wait_ready().await.0.status, 200);
    let health = host.forward(&Caller::get("/api/health"), IID, None).await;
    assert_eq!(health.status, 200, "{}", health.text());
    sigterm(&child);
    let out = finish(child).await;
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    let lines = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (lines, out.stderr)
}

fn line<'a>(lines: &'a [serde_json::Value], message: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line in {lines:?}"))
}

/// A bare `serve`, as the host starts it, reads its settings without clap
/// (`serve::bare`); with any other argument the full parser reads them. From the same
/// environment both get the same config and budgets, and both reject what clap rejects.
#[tokio::test]
async fn a_bare_serve_and_the_full_parser_read_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:9".parse().unwrap());
    let mut seen = Vec::new();
    for full in [false, true] {
        let port = super::process::free_port();
        let port_arg = port.to_string();
        let args: &[&str] = if full { &["--port", &port_arg] } else { &[] };
        let env = [
            ("ROUTEPROOF_CONFIG", config.clone()),
            ("ROUTEPROOF_HTTP_DEADLINE", "7s".into()),
            ("ROUTEPROOF_TIMER_DEADLINE", "9s".into()),
        ];
        let (lines, _) = start_and_stop(args, port, &env).await;
        let serving = line(&lines, "routeproof serving");
        let got = (
            serving["config"].clone(),
            serving["http_deadline_ms"].clone(),
            serving["timer_deadline_ms"].clone(),
        );
        assert_eq!(got, (config.clone().into(), 7000.into(), 9000.into()));
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1]);
    // An empty ROUTEPROOF_CONFIG is clap's usage error on both paths.
    let mut stderr = Vec::new();
    for args in [&[][..], &["--port", "9"]] {
        let env = [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "9".to_string()),
            ("ROUTEPROOF_CONFIG", String::new()),
        ];
        let out = finish(serve(args, &env).spawn().unwrap()).await;
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("a value is required for '--config"),
            "{args:?}: {}",
            out.stderr
        );
        stderr.push(out.stderr);
    }
    assert_eq!(stderr[0], stderr[1]);
}

/// Logging is set up after the first answer, and so are host.json, the exporters and
/// the store: what they find still reaches the log, and the discovery's line too, and a
/// malformed connection string's secret does not.
#[tokio::test]
async fn what_start_up_builds_after_the_first_answer_still_logs_what_it_finds() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routeproof.toml");
    std::fs::write(
        &config,
        "[engine]\ndns_servers = [\"127.0.0.1:9\"]\ndiscover = true\ndeadline = \"5m\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("host.json"), "{ not json").unwrap();
    let env = [
        ("ROUTEPROOF_CONFIG", config.display().to_string()),
        ("FUNCTIONS_APP_ROOT_PATH", dir.path().display().to_string()),
        ("OTEL_SDK_DISABLED", "perhaps".into()),
        (
            "AzureWebJobsStorage",
            "AccountName=acct;AccountKey=SECRETKEYVALUE".into(),
        ),
    ];
    let (lines, stderr) = start_and_stop(&[], super::process::free_port(), &env).await;
    let host_json = line(
        &lines,
        "host.json not read; budgets not capped by functionTimeout",
    );
    assert_eq!(host_json["level"], "WARN");
    let otel = line(&lines, "telemetry setting not understood");
    assert!(
        otel["error"]
            .as_str()
            .unwrap()
            .contains("OTEL_SDK_DISABLED"),
        "{otel}"
    );
    let store = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("run history: store unusable"))
        })
        .unwrap_or_else(|| panic!("no store warning in {lines:?}"));
    assert_eq!(store["level"], "WARN");
    let discovered = line(&lines, "targets discovered from app settings");
    let serving = line(&lines, "routeproof serving");
    assert!(discovered["added"].as_u64().unwrap() > 0, "{discovered}");
    assert_eq!(
        serving["targets"], discovered["added"],
        "the account's endpoints"
    );
    assert_eq!(
        serving["timer_deadline_ms"], 240_000,
        "the timer default, not capped by the unreadable host.json"
    );
    let all = format!("{lines:?}{stderr}");
    assert!(!all.contains("SECRETKEYVALUE"), "the key is never logged");
}
