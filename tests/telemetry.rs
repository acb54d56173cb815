//! Telemetry against real receivers, one test binary: OpenTelemetry export to a real
//! collector (rotel on loopback), App Insights availability results and the Azure
//! Monitor exporter to a loopback ingestion endpoint, and dead receivers. Every
//! exporter is owned by the app under test (`Settings::telemetry`), so the tests share
//! nothing and run side by side.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use routeproof::handler::Settings;
use routeproof::telemetry::{AppInsights, AppInsightsExport, Exports, Telemetry};
use serde_json::Value;
use support::certs::{self, Ca};
use support::host::{App, Framing, Host, TARGETS_MIXED, TimerStatus, judge, send};
use support::otel::{self, Ingestion, Rotel};

const IID: &str = "5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const IKEY: &str = "0b5e5b2f-1c1a-4c7e-9a43-2f1f7f0c0d11";

/// The handler under test with its own exporters.
async fn app_with(telemetry: Exports) -> App {
    App::start_with(
        TARGETS_MIXED,
        Settings {
            telemetry,
            ..Settings::default()
        },
        None,
    )
    .await
}

fn otlp(endpoint: &str) -> Exports {
    let t = Telemetry::new(&otel::config(endpoint)).expect("exporters");
    Exports::new(Some(Arc::new(t)), None)
}

/// A scheduled run through the host emulator leaves spans (run, target, layer, with the
/// incoming `traceparent` as parent) and metrics (duration, success, failures) at the
/// collector, flushed before the timer invocation answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_reaches_a_real_collector() {
    let Some(bin) = otel::rotel_agent() else {
        support::skip(
            "a_scheduled_run_reaches_a_real_collector",
            "rotel-agent not found (pip install rotel)",
        );
        return;
    };
    let rotel = Rotel::start(&bin);
    let exports = otlp(&format!("http://{}", rotel.http));
    let app = app_with(exports.clone()).await;
    // The timer as the host sends it, plus a traceparent (the host's activity).
    let body = Host::timer_envelope("TimerProbe", "myTimer", TimerStatus::Steady, false);
    let head = format!(
        "POST /TimerProbe HTTP/1.1\r\nHost: {}\r\nX-Azure-Functions-InvocationId: {IID}\r\ntraceparent: {TRACEPARENT}\r\nContent-Type: application/json; charset=utf-8",
        app.host.addr
    );
    let resp = send(
        app.host.addr,
        &head,
        Some(body.as_bytes()),
        Framing::Chunked,
    )
    .await;
    let (logs, ..) = judge(&resp, None).succeeded();
    assert_eq!(logs[0], "routeproof timer: 4 targets, 3 ok, 1 failed");

    // Flushed before the reply: the data is at the collector (or on its way into its
    // log) without any further flush from us.
    let log = rotel
        .wait_for(
            &[
                "routeproof.run",
                "routeproof.target",
                "routeproof.layer.dns",
                "routeproof.layer.tcp",
                "routeproof.target.name",
                "tcp.refused",
                "faas.invocation_id",
                IID,
                TRACE_ID,
                "routeproof-test",
                "func-routeproof-test",
                "instance-0123",
                "westeurope",
                "deployment.environment",
                "routeproof.probe.duration",
                "routeproof.probe.success",
                "routeproof.probe.failures",
                "network.peer.address",
                "routeproof.dns.server",
            ],
            Duration::from_secs(10),
        )
        .await;
    assert!(log.contains("down"), "target name attribute");

    // Recording the same report again and flushing it reaches the live collector.
    let report = app.state.last_scheduled().unwrap().report.clone();
    let t = exports.otel().expect("OTel on");
    t.record(
        &report,
        routeproof::telemetry::Parent {
            traceparent: Some(TRACEPARENT),
            invocation_id: Some(IID),
            trigger: routeproof::telemetry::Trigger::Timer,
        },
    );
    assert!(
        t.flush(Duration::from_secs(2)).await,
        "flush to a live collector"
    );
}

/// With the collector down (a port that accepts but never answers, and one that
/// refuses), a scheduled run still completes and succeeds: the flush is bounded and
/// telemetry never fails the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_never_fails_or_blocks_the_run() {
    let refused = otel::free_port();
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = blackhole.local_addr().unwrap();

    let app = app_with(otlp(&format!("http://{silent}"))).await;
    let (resp, outcome) = otel::no_hang(
        "a timer run with a silent collector",
        app.host
            .timer("TimerProbe", "myTimer", TimerStatus::Steady, "iid-down"),
    )
    .await;
    assert_eq!(resp.status, 200);
    let (logs, ..) = outcome.succeeded();
    assert_eq!(logs[0], "routeproof timer: 4 targets, 3 ok, 1 failed");

    // A refused export is reported as not flushed.
    let t2 = Telemetry::new(&otel::config(&format!("http://{refused}"))).expect("exporters");
    let t2 = Arc::new(t2);
    let report = app.state.last_scheduled().unwrap().report.clone();
    t2.record(&report, Default::default());
    let ok = otel::no_hang(
        "a flush to a refused port",
        t2.flush(Duration::from_secs(2)),
    )
    .await;
    assert!(!ok, "a refused export is reported as not flushed");
    drop(blackhole);
}

/// A scheduled run POSTs one `AvailabilityData` envelope per target to
/// `{IngestionEndpoint}/v2.1/track`, before the timer invocation answers; a failing
/// ingestion never fails the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_sends_one_availability_result_per_target() {
    let (rx, addr) = Ingestion::start_http().await;
    let cs = format!(
        "InstrumentationKey={IKEY};IngestionEndpoint=http://{addr}/;LiveEndpoint=http://127.0.0.1:1/"
    );
    let ai = AppInsights::from_connection_string(&cs).unwrap();
    assert!(
        !format!("{ai:?}").contains(IKEY),
        "Debug never prints the whole key"
    );

    let app = app_with(Exports::new(None, Some(Arc::new(ai)))).await;
    let iid = "5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60";
    let (resp, outcome) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, iid)
        .await;
    assert_eq!(resp.status, 200);
    outcome.succeeded();

    // Sent before the reply: no waiting here.
    let posts = rx.posts.lock().unwrap().clone();
    let is_availability = |items: &Vec<Value>| {
        items
            .iter()
            .all(|e| e["data"]["baseType"] == "AvailabilityData")
    };
    let availability: Vec<_> = posts.iter().filter(|(_, i)| is_availability(i)).collect();
    assert_eq!(availability.len(), 1, "one availability batch per run");
    let (headers, items) = availability[0];
    assert_eq!(headers["content-type"], "application/json");
    let items = items.clone();
    assert_eq!(items.len(), 4);

    let by_name = |n: &str| {
        items
            .iter()
            .find(|e| e["data"]["baseData"]["name"] == n)
            .unwrap_or_else(|| panic!("no availability result for {n}"))
    };
    let ikey_nodash = IKEY.replace('-', "");
    for e in &items {
        assert_eq!(e["ver"], 1);
        assert_eq!(
            e["name"],
            format!("Microsoft.ApplicationInsights.{ikey_nodash}.Availability")
        );
        assert_eq!(e["iKey"], IKEY);
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(e["data"]["baseType"], "AvailabilityData");
        let b = &e["data"]["baseData"];
        assert_eq!(b["ver"], 2);
        assert_eq!(b["id"].as_str().unwrap().len(), 32);
        let d = b["duration"].as_str().unwrap();
        assert!(
            d.len() == 16 && d.starts_with("00:00:0") && d.as_bytes()[8] == b'.',
            "TimeSpan text: {d}"
        );
        assert!(!b["runLocation"].as_str().unwrap().is_empty());
        assert_eq!(e["tags"]["ai.operation.id"], iid.replace('-', ""));
        assert_eq!(b["properties"]["InvocationId"], iid);
    }
    let ids: std::collections::HashSet<&str> = items
        .iter()
        .map(|e| e["data"]["baseData"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "ids are unique");
    let down = &by_name("down")["data"]["baseData"];
    assert_eq!(down["success"], false);
    assert!(
        down["message"]
            .as_str()
            .unwrap()
            .starts_with("tcp.refused: ")
    );
    assert_eq!(down["properties"]["class"], "tcp.refused");
    assert!(
        down["properties"]["layer.tcp"]
            .as_str()
            .unwrap()
            .starts_with("failed "),
        "{down}"
    );
    assert!(down["measurements"]["layer.tcp.ms"].is_number());
    let sql = &by_name("sql")["data"]["baseData"];
    assert_eq!(sql["success"], true);
    assert_eq!(sql["message"], "ok, reached tcp");
    assert!(
        sql["properties"]["layer.dns"]
            .as_str()
            .unwrap()
            .starts_with("ok ")
    );

    // Ingestion down: the invocation still succeeds.
    rx.fail.store(true, Ordering::SeqCst);
    let (resp, outcome) = otel::no_hang(
        "a timer run with App Insights answering 503",
        app.host
            .timer("TimerProbe", "myTimer", TimerStatus::Steady, iid),
    )
    .await;
    assert_eq!(resp.status, 200);
    outcome.succeeded();
    let posts = rx.posts.lock().unwrap();
    assert_eq!(posts.iter().filter(|(_, i)| is_availability(i)).count(), 2);
}

/// Traces and metrics to Azure Monitor through opentelemetry-application-insights: the
/// exporter always speaks https, so the loopback ingestion receiver is axum behind
/// rustls with a test CA the exporter is told to trust. A scheduled run's spans and
/// metrics arrive (gzip JSON Breeze envelopes) before the timer invocation answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_azure_monitor_ingestion() {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof ingestion CA");
    let (rx, addr) = Ingestion::start_https(&ca).await;
    let cs = format!("InstrumentationKey={IKEY};IngestionEndpoint=https://{addr}/");
    let ca_pem = ca.pem();
    let t = Telemetry::build(
        None,
        Some(AppInsightsExport {
            connection_string: &cs,
            extra_root_pem: Some(ca_pem.as_bytes()),
        }),
        "routeproof-test",
        &[("service.instance.id".into(), "instance-0123".into())],
    )
    .expect("App Insights exporters");

    let app = app_with(Exports::new(Some(Arc::new(t)), None)).await;
    let (resp, outcome) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, "iid-ai")
        .await;
    assert_eq!(resp.status, 200);
    outcome.succeeded();

    let posts = rx.posts.lock().unwrap().clone();
    assert!(!posts.is_empty(), "nothing reached the ingestion endpoint");
    // The exporter's spans and metrics (gzip JSON, the same Breeze envelopes).
    let exported: Vec<&Value> = posts
        .iter()
        .flat_map(|(h, i)| {
            assert_eq!(h["content-encoding"], "gzip");
            i.iter()
        })
        .collect();
    let span_names: Vec<&str> = exported
        .iter()
        .filter(|e| e["data"]["baseType"] != "MetricData")
        .filter_map(|e| e["data"]["baseData"]["name"].as_str())
        .collect();
    for want in [
        "routeproof.run",
        "routeproof.target",
        "routeproof.layer.tcp",
        "routeproof.layer.dns",
    ] {
        assert!(
            span_names.contains(&want),
            "{want} not exported: {span_names:?}"
        );
    }
    let down_span = exported
        .iter()
        .find(|e| {
            e["data"]["baseData"]["name"] == "routeproof.target"
                && e["data"]["baseData"]["properties"]["routeproof.target.name"] == "down"
        })
        .unwrap_or_else(|| panic!("the failed target's span: {exported:?}"));
    assert_eq!(down_span["data"]["baseData"]["success"], false);
    assert_eq!(
        down_span["data"]["baseData"]["properties"]["routeproof.failure.class"],
        "tcp.refused"
    );
    assert_eq!(down_span["tags"]["ai.cloud.roleInstance"], "instance-0123");
    let metric_names: Vec<&str> = exported
        .iter()
        .filter(|e| e["data"]["baseType"] == "MetricData")
        .flat_map(|e| e["data"]["baseData"]["metrics"].as_array().unwrap().iter())
        .filter_map(|m| m["name"].as_str())
        .collect();
    for want in [
        "routeproof.probe.duration",
        "routeproof.probe.success",
        "routeproof.probe.failures",
    ] {
        assert!(
            metric_names.contains(&want),
            "{want} not exported: {metric_names:?}"
        );
    }
}

/// An HTTP-triggered `/api/probe` run exports the same spans and metrics as the timer,
/// marked `routeproof.trigger = http` and hung under the request's `traceparent`, and
/// sends no availability results (those are for scheduled runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_triggered_run_reaches_the_collector_marked_http() {
    let Some(bin) = otel::rotel_agent() else {
        support::skip(
            "an_http_triggered_run_reaches_the_collector_marked_http",
            "rotel-agent not found (pip install rotel)",
        );
        return;
    };
    let rotel = Rotel::start(&bin);
    let (rx, addr) = Ingestion::start_http().await;
    let ai = AppInsights::from_connection_string(&format!(
        "InstrumentationKey={IKEY};IngestionEndpoint=http://{addr}/"
    ))
    .unwrap();
    let t = Telemetry::new(&otel::config(&format!("http://{}", rotel.http))).unwrap();
    let app = app_with(Exports::new(Some(Arc::new(t)), Some(Arc::new(ai)))).await;
    let resp = app
        .host
        .forward(
            &support::host::Caller::get("/api/probe?code=KEY"),
            IID,
            Some(TRACEPARENT),
        )
        .await;
    assert_eq!(
        resp.status, 503,
        "one target fails: the status is the run's"
    );
    rotel
        .wait_for(
            &[
                "routeproof.run",
                "routeproof.layer.tcp",
                "routeproof.trigger",
                "http",
                TRACE_ID,
                IID,
                "routeproof.probe.failures",
                "tcp.refused",
            ],
            Duration::from_secs(10),
        )
        .await;
    let posts = rx.posts.lock().unwrap();
    assert!(
        posts.is_empty(),
        "no availability results for an HTTP-triggered run: {:?}",
        posts.iter().map(|(_, i)| i.len()).collect::<Vec<_>>()
    );
}

/// `routeproof probe` on a command line exports when OTEL_EXPORTER_OTLP_ENDPOINT is set:
/// the same span and metric names, `routeproof.trigger = cli`, the parent from
/// `TRACEPARENT`; with the collector down the exit code and the report are unchanged
/// and the failure is one warning line on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_run_exports_and_a_dead_collector_changes_nothing() {
    let Some(bin) = otel::rotel_agent() else {
        support::skip(
            "a_cli_run_exports_and_a_dead_collector_changes_nothing",
            "rotel-agent not found (pip install rotel)",
        );
        return;
    };
    let rotel = Rotel::start(&bin);
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = otel::free_port();
    let cli = |endpoint: String| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_routeproof"));
        c.args(["probe", "--json", "--dns-server", "127.0.0.1:9"])
            .arg(format!("tcp://{}", open.local_addr().unwrap()))
            .arg(format!("tcp://{closed}"))
            .env_clear()
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_SERVICE_NAME", "routeproof-cli-test")
            .env("TRACEPARENT", TRACEPARENT);
        c
    };
    let mut run = cli(format!("http://{}", rotel.http));
    let out = otel::no_hang(
        "the CLI run",
        tokio::task::spawn_blocking(move || run.output().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "one target fails");
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the report");
    assert_eq!(report["summary"]["failed"], 1);
    rotel
        .wait_for(
            &[
                "routeproof-cli-test",
                "routeproof.run",
                "routeproof.target",
                "routeproof.layer.tcp",
                "routeproof.trigger",
                "cli",
                TRACE_ID,
                "routeproof.probe.duration",
                "routeproof.probe.failures",
                "tcp.refused",
            ],
            Duration::from_secs(10),
        )
        .await;

    // Collector down: a port that accepts and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut run = cli(format!("http://{}", blackhole.local_addr().unwrap()));
    let down = otel::no_hang(
        "the CLI run with a silent collector",
        tokio::task::spawn_blocking(move || run.output().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(down.status.code(), Some(1), "exit code unchanged");
    let again: Value = serde_json::from_slice(&down.stdout).expect("stdout is the report");
    assert_eq!(again["summary"], report["summary"]);
    let stderr = String::from_utf8_lossy(&down.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("telemetry")).collect();
    assert_eq!(warnings.len(), 1, "logged once: {stderr}");
    drop(blackhole);
}
