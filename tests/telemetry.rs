//! OpenTelemetry export against a real collector (rotel on loopback): a scheduled run
//! through the host emulator leaves spans (run, target, layer, with the incoming
//! `traceparent` as parent) and metrics (duration, success, failures), and the timer
//! invocation answers only after they were flushed.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::host::{App, Framing, Host, TARGETS_MIXED, TimerStatus, judge, send};
use support::otel::{self, Rotel};

const IID: &str = "5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

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
    let cfg = otel::config(&format!("http://{}", rotel.http));
    let t = Arc::new(routeproof::telemetry::Telemetry::new(&cfg).expect("exporters"));
    assert!(routeproof::telemetry::install(Some(Arc::clone(&t))));

    let app = App::start(TARGETS_MIXED).await;
    // The timer as the host sends it, plus a traceparent (the host's activity).
    let body = Host::timer_envelope("TimerProbe", "myTimer", TimerStatus::Steady, false);
    let head = format!(
        "POST /TimerProbe HTTP/1.1\r\nHost: {}\r\nX-Azure-Functions-InvocationId: {IID}\r\ntraceparent: {TRACEPARENT}\r\nContent-Type: application/json; charset=utf-8",
        app.host.addr
    );
    let start = Instant::now();
    let resp = send(
        app.host.addr,
        &head,
        Some(body.as_bytes()),
        Framing::Chunked,
    )
    .await;
    let took = start.elapsed();
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
    eprintln!("timer invocation with telemetry flush: {took:?}");

    // Overhead of telemetry itself, measured on the report just produced.
    let report = app.state.last_scheduled().unwrap().report.clone();
    let parent = routeproof::telemetry::Parent {
        traceparent: Some(TRACEPARENT),
        invocation_id: Some(IID),
        trigger: "timer",
    };
    let mut record = Duration::ZERO;
    let mut flush = Duration::ZERO;
    const N: u32 = 20;
    for _ in 0..N {
        let s = Instant::now();
        t.record(&report, parent);
        record += s.elapsed();
        let s = Instant::now();
        assert!(
            t.flush(Duration::from_secs(2)).await,
            "flush to a live collector"
        );
        flush += s.elapsed();
    }
    eprintln!(
        "telemetry overhead per run ({} targets, debug build): record {:?}, flush to loopback rotel {:?}",
        report.targets.len(),
        record / N,
        flush / N
    );
    assert!(record / N < Duration::from_millis(50));
}
