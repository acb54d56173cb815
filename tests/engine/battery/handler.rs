//! The handler's answers to bad input and to a run cut by its deadline, and the real
//! binary over many faults at once.

use super::*;
use support::host::{App, Caller, TARGETS_MIXED, error_class};
use support::net::SilentDns;
use support::tds::{Fault, TdsServer};
use support::web;

/// Handler cases must answer with a JSON error, never hang: a guard against a hang (5 s,
/// far beyond any deadline here), not a speed claim.
async fn answered<T>(case: &str, f: impl std::future::Future<Output = T>) -> T {
    count_panics();
    let r = tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .unwrap_or_else(|_| panic!("{case}: no answer within 5 s"));
    assert_no_panics(case);
    r
}

/// The error message of a handler's JSON error body.
fn error_message(body: &serde_json::Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn handler_malformed_invocation_json() {
    let app = App::start(TARGETS_MIXED).await;
    let r = answered(
        "handler_malformed_invocation_json",
        app.host.post_payload("scheduled", "{\"Data\": {", IID),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_class(&r.json()), "envelope.invalid");
    let m = r.json();
    assert!(error_message(&m).contains("is not JSON"), "{m}");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_malformed_request_json() {
    let app = App::start(TARGETS_MIXED).await;
    let c = Caller::post("/api/probe", "application/json", b"{\"targets\": [");
    let r = answered(
        "handler_malformed_request_json",
        app.host.forward(&c, IID, None),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_class(&r.json()), "request.invalid_json");
    let m = r.json();
    assert!(error_message(&m).contains("not valid JSON"), "{m}");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_wrong_content_type() {
    let app = App::start(TARGETS_MIXED).await;
    let c = Caller::post("/api/probe", "text/plain", b"tcp://10.0.0.1:1");
    let r = answered(
        "handler_wrong_content_type",
        app.host.forward(&c, IID, None),
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(error_class(&r.json()), "request.unsupported_media_type");
    let m = r.json();
    let msg = error_message(&m);
    assert!(
        msg.contains("application/json") && msg.contains("`text/plain`"),
        "{m}"
    );
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_oversized_request() {
    let app = App::start(TARGETS_MIXED).await;
    let big = vec![b'x'; 100 * 1024];
    let c = Caller::post("/api/probe", "application/json", &big).chunked();
    let r = answered("handler_oversized_request", app.host.proxy(&c, IID, None)).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(error_class(&r.json()), "request.too_large");
    let m = r.json();
    assert!(error_message(&m).contains("larger than"), "{m}");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_unknown_function() {
    let app = App::start(TARGETS_MIXED).await;
    let r = answered(
        "handler_unknown_function",
        app.host.post_payload(
            "NoSuchFunction",
            "{\"Data\":{\"req\":{\"Url\":\"http://x/\",\"Method\":\"GET\"}},\"Metadata\":{}}",
            IID,
        ),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(error_class(&r.json()), "handler.unknown_function");
    let m = r.json();
    assert!(
        error_message(&m).contains("no function `NoSuchFunction`"),
        "{m}"
    );
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_deadline_reached_mid_run() {
    let silent = SilentDns::start();
    let settings = routeproof::handler::Settings {
        http_deadline: Duration::from_millis(400),
        ..Default::default()
    };
    // The engine's DNS timeout in the test app is 30 s: only the run deadline can end it.
    let app = App::start_with(
        "[[targets]]\nname = \"pe-dns\"\ntarget = \"dns://myserver.database.windows.net\"\n",
        settings,
        Some(silent.addr),
    )
    .await;
    let wall = Instant::now();
    let r = answered(
        "handler_deadline_reached_mid_run",
        app.host.forward(&Caller::get("/api/probe"), IID, None),
    )
    .await;
    let wall_ms = wall.elapsed().as_secs_f64() * 1e3;
    let b = r.json();
    assert_eq!(r.status, 503, "a failed run: {b}");
    let deadline = b["deadline_ms"].as_f64().unwrap();
    assert!(deadline <= 400.0, "{b}");
    assert!(
        b["duration_ms"].as_f64().unwrap() <= deadline + GRACE_MS,
        "{b}"
    );
    assert!(
        wall_ms <= deadline + 2.0 * GRACE_MS,
        "answered after {wall_ms:.0} ms"
    );
    let t = &b["targets"][0];
    assert_eq!(t["failure"]["class"], "deadline", "{b}");
    assert_eq!(t["failure"]["layer"], "dns", "{b}");
    let hint = t["failure"]["hint"].as_str().unwrap_or_default();
    for w in decisive(FailureClass::Deadline) {
        assert!(hint.contains(w), "the hint lacks {w:?}: {hint}");
    }
}

// ------------------------------------------------------------------ the real binary

/// The CLI over several faults at once, with RUST_BACKTRACE=1: stderr must carry no
/// panic message, the exit code must be 1 (targets failed), the JSON report complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_over_many_faults_never_panics() {
    let f = tls_fx().await;
    let silent_dns = SilentDns::start();
    let silent = web::silent().await;
    let not_http = web::not_http().await;
    let stalled = web::stalled_body().await;
    let (hole, _keep, _held) = support::net::blackholed().await;
    let rst = accept_then(true).await;
    let mut tds = tds_cfg(&f);
    tds.fault = Some(Fault::GarbageReply);
    let tds = TdsServer::start(tds).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("battery.toml");
    let targets = [
        "dns://nosuch.database.windows.net".to_string(),
        "dns://loop1.database.windows.net".to_string(),
        format!("tcp://{}", dead_port()),
        format!("tcp://{hole}"),
        format!("tcp://{rst}"),
        format!("tls://api.internal.test:{}", silent.addr.port()),
        format!("https://api.internal.test:{}/", not_http.addr.port()),
        format!("http://api.internal.test:{}/", not_http.addr.port()),
        format!("http://api.internal.test:{}/", stalled.addr.port()),
        format!("sqlserver://{SQL}:{}", tds.port()),
    ];
    let mut text = head(f.dns.addr, "tcp_settle = \"100ms\"").replace(
        &format!("[\"{}\"]", f.dns.addr),
        &format!("[\"{}\", \"{}\"]", f.dns.addr, silent_dns.addr),
    );
    for (i, t) in targets.iter().enumerate() {
        text.push_str(&format!("[[targets]]\nname = \"f{i}\"\ntarget = \"{t}\"\n"));
    }
    std::fs::write(&cfg, text).unwrap();
    let bin = env!("CARGO_BIN_EXE_routeproof");
    let cfg2 = cfg.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["probe", "--json", "--timeout", "3s", "--config"])
            .arg(&cfg2)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["targets"].as_array().unwrap().len(), targets.len());
    assert!(r["duration_ms"].as_f64().unwrap() <= r["deadline_ms"].as_f64().unwrap() + GRACE_MS);
    for t in r["targets"].as_array().unwrap() {
        assert_eq!(t["ok"], false, "{t}");
        assert!(t["failure"]["class"].is_string(), "{t}");
        // Each hint, through the binary's JSON, names its class's cause.
        let class = class_named(t["failure"]["class"].as_str().unwrap());
        let hint = t["failure"]["hint"].as_str().unwrap_or_default();
        for w in decisive(class) {
            assert!(
                hint.contains(w),
                "{}: the hint lacks {w:?}: {hint}",
                t["name"]
            );
        }
    }
}
