//! `/api/metrics`: Prometheus text of the last scheduled report, through the host
//! emulator (forward and payload mode), checked line by line here and by a real parser
//! (the Python `prometheus_client` text parser) when it is installed.

use crate::support;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use support::certs::{self, Ca, LeafSpec, PemFiles};
use support::host::{App, Caller, TARGETS_MIXED, TimerStatus};
use support::web;

const IID: &str = "5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60";
const EVIL: &str = "evil \\ \"quoted\" <script>";

struct Peers {
    _https: web::Server,
    _http: web::Server,
    _pem: PemFiles,
    targets: String,
}

/// TARGETS_MIXED plus an HTTPS target (certificate expiry), an HTTP 500 (status code
/// and `http.status`) and a name that needs escaping.
async fn peers() -> Peers {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof metrics CA");
    let leaf = ca.issue(&LeafSpec::new(["api.internal.test"]));
    let pem = PemFiles::write(&ca, &leaf);
    let https = web::https(leaf.server_config(&[], &[b"http/1.1"])).await;
    let http = web::http().await;
    let targets = format!(
        "{TARGETS_MIXED}\n[[targets]]\nname = \"web\"\ntarget = \"https://127.0.0.1:{}/\"\ninsecure = true\n\n\
         [[targets]]\nname = \"err\"\ntarget = \"http://127.0.0.1:{}/500\"\n\n\
         [[targets]]\nname = '{EVIL}'\ntarget = \"tcp://127.0.0.1:{{open}}\"\n",
        https.addr.port(),
        http.addr.port(),
    );
    Peers {
        _https: https,
        _http: http,
        _pem: pem,
        targets,
    }
}

/// `name{labels} value` lines, checked for the text format's grammar: every sample
/// follows a `# TYPE` of its family, no series appears twice, values parse.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut typed = Vec::<String>::new();
    let mut series = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(!typed.contains(&name), "TYPE twice for {name}");
            assert!(rest.ends_with(" gauge"), "{line}");
            typed.push(name);
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (key, value) = line.rsplit_once(' ').expect("sample has a value");
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{name}"
        );
        assert_eq!(typed.last().map(String::as_str), Some(name), "{line}");
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        assert!(
            series.insert(key.to_string(), v).is_none(),
            "duplicate {key}"
        );
    }
    series
}

#[tokio::test]
async fn before_any_scheduled_run_the_scrape_is_up_and_says_so() {
    let app = App::start(TARGETS_MIXED).await;
    let resp = app
        .host
        .forward(&Caller::get("/api/metrics?code=KEY"), IID, None)
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let s = parse(&resp.text());
    assert_eq!(s["routeproof_report_available"], 0.0);
    assert_eq!(s.len(), 1);
    assert_eq!(app.state.runs_started(), 0, "a scrape must not probe");
}

#[tokio::test]
async fn after_a_scheduled_run_the_blackbox_names_are_there() {
    let p = peers().await;
    let app = App::start(&p.targets).await;
    let (resp, _) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, IID)
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(app.state.runs_started(), 1);

    let resp = app
        .host
        .forward(&Caller::get("/api/metrics?code=KEY"), IID, None)
        .await;
    assert_eq!(resp.status, 200);
    let text = resp.text();
    let s = parse(&text);
    assert_eq!(app.state.runs_started(), 1, "a scrape must not probe");

    assert_eq!(s["routeproof_report_available"], 1.0);
    assert_eq!(s["routeproof_targets{result=\"failed\"}"], 2.0, "{text}");
    for ok in ["sql", "api", "pe-dns", "web"] {
        assert_eq!(s[&format!("probe_success{{target=\"{ok}\"}}")], 1.0, "{ok}");
    }
    assert_eq!(s["probe_success{target=\"down\"}"], 0.0);
    assert_eq!(s["probe_success{target=\"err\"}"], 0.0);
    assert_eq!(
        s["probe_failure_info{target=\"down\",class=\"tcp.refused\",layer=\"tcp\"}"],
        1.0
    );
    assert_eq!(
        s["probe_failure_info{target=\"err\",class=\"http.status\",layer=\"http\"}"],
        1.0
    );
    assert_eq!(s["probe_http_status_code{target=\"err\"}"], 500.0);
    assert_eq!(s["probe_http_status_code{target=\"web\"}"], 200.0);
    // A DNS name gets a DNS layer; an IP literal has none, and no 0 stands in for it.
    assert!(s["probe_dns_lookup_time_seconds{target=\"sql\"}"] > 0.0);
    assert!(!s.contains_key("probe_dns_lookup_time_seconds{target=\"api\"}"));
    assert!(!s.contains_key("probe_layer_duration_seconds{target=\"api\",layer=\"dns\"}"));
    assert!(s.contains_key("probe_layer_duration_seconds{target=\"web\",layer=\"tls\"}"));
    assert!(s.contains_key("probe_layer_duration_seconds{target=\"web\",layer=\"http\"}"));
    assert_eq!(
        s["probe_reached_layer_info{target=\"pe-dns\",layer=\"dns\"}"],
        1.0
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let expiry = s["probe_ssl_earliest_cert_expiry{target=\"web\"}"];
    assert!(expiry > now, "expiry {expiry} now {now}");
    let last = s["routeproof_last_run_timestamp_seconds"];
    assert!((now - last).abs() < 60.0, "{last} vs {now}");
    // Escaping: backslash, quote; `<` needs none in the text format.
    assert_eq!(
        s["probe_success{target=\"evil \\\\ \\\"quoted\\\" <script>\"}"], 1.0,
        "{text}"
    );

    real_parser(&text);

    // Payload mode (neither forwarding nor proxying): the same text in the http output.
    let (_, outcome) = app
        .host
        .payload_http("metrics", &Caller::get("/api/metrics?code=KEY"), IID, None)
        .await;
    let (logs, _, _, caller) = outcome.succeeded();
    let caller = caller.expect("http output");
    assert_eq!(caller.status, 200);
    assert!(caller.content_type().unwrap().starts_with("text/plain"));
    assert!(
        caller.body.contains("probe_success{target=\"down\"} 0"),
        "{}",
        caller.body
    );
    assert!(
        logs[0].starts_with("routeproof metrics: last scheduled run"),
        "{logs:?}"
    );
}

/// The Python `prometheus_client` text parser (what many exporters' tests use). CI
/// installs it with `pip install prometheus-client`.
fn real_parser(text: &str) {
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([fam.name, fam.type, s.labels, s.value])
print(json.dumps(out))
"#;
    let check = std::process::Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output();
    if !matches!(&check, Ok(o) if o.status.success()) {
        support::skip(
            "metrics real_parser",
            "python3 with prometheus_client not found (pip install prometheus-client)",
        );
        return;
    }
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<(String, String, HashMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    let find = |name: &str, target: &str| {
        samples
            .iter()
            .find(|(n, _, l, _)| n == name && l.get("target").map(String::as_str) == Some(target))
            .unwrap_or_else(|| panic!("{name}{{target={target}}} not parsed"))
    };
    assert_eq!(find("probe_success", "down").3, 0.0);
    assert_eq!(
        find("probe_success", EVIL).3,
        1.0,
        "label unescaped to the original name"
    );
    let f = find("probe_failure_info", "down");
    assert_eq!(f.1, "gauge");
    assert_eq!(f.2["class"], "tcp.refused");
    assert_eq!(f.2["layer"], "tcp");
    assert!(find("probe_ssl_earliest_cert_expiry", "web").3 > 1.7e9);
}
