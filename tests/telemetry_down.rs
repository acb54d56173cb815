//! With the collector down, a scheduled run still answers in time (the flush is
//! bounded) and the invocation succeeds: telemetry never fails the run.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::host::{App, TARGETS_MIXED, TimerStatus};
use support::otel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_costs_at_most_the_flush_bound() {
    // A port nothing listens on, and one that accepts but never answers.
    let refused = otel::free_port();
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = blackhole.local_addr().unwrap();

    let cfg = otel::config(&format!("http://{silent}"));
    let t = Arc::new(routeproof::telemetry::Telemetry::new(&cfg).expect("exporters"));
    assert!(routeproof::telemetry::install(Some(Arc::clone(&t))));

    let app = App::start(TARGETS_MIXED).await;
    let start = Instant::now();
    let (resp, outcome) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, "iid-down")
        .await;
    let took = start.elapsed();
    assert_eq!(resp.status, 200);
    let (logs, ..) = outcome.succeeded();
    assert_eq!(logs[0], "routeproof timer: 4 targets, 3 ok, 1 failed");
    assert!(
        took < routeproof::telemetry::FLUSH_BOUND + Duration::from_secs(2),
        "timer took {took:?} with a silent collector"
    );
    eprintln!("timer invocation with a silent collector: {took:?}");

    // Refused connections fail fast.
    let cfg = otel::config(&format!("http://{refused}"));
    let t2 = Arc::new(routeproof::telemetry::Telemetry::new(&cfg).expect("exporters"));
    let report = app.state.last_scheduled().unwrap().report.clone();
    t2.record(&report, Default::default());
    let s = Instant::now();
    let ok = t2.flush(Duration::from_secs(2)).await;
    assert!(!ok, "a refused export is reported as not flushed");
    assert!(
        s.elapsed() < Duration::from_millis(2500),
        "{:?}",
        s.elapsed()
    );
    eprintln!("flush against a refused port: {:?}", s.elapsed());
    drop(blackhole);
}
