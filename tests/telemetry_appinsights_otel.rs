//! Traces and metrics to Azure Monitor through opentelemetry-application-insights: the
//! exporter always speaks https, so the loopback ingestion receiver here is axum behind
//! rustls with a test CA the exporter is told to trust. A scheduled run's spans and
//! metrics arrive (gzip JSON Breeze envelopes) before the timer invocation answers.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use support::certs::{self, Ca, LeafSpec};
use support::host::{App, TARGETS_MIXED, TimerStatus};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

const IKEY: &str = "0b5e5b2f-1c1a-4c7e-9a43-2f1f7f0c0d11";

struct Tls {
    inner: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for Tls {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.inner.accept().await else {
                continue;
            };
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

type Posts = Arc<Mutex<Vec<(HeaderMap, Vec<Value>)>>>;

fn gunzip(headers: &HeaderMap, body: &[u8]) -> Vec<Value> {
    let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).unwrap();
        out
    } else {
        body.to_vec()
    };
    serde_json::from_slice(&raw).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_azure_monitor_ingestion() {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof ingestion CA");
    let leaf = ca.issue(&LeafSpec::new(["127.0.0.1", "localhost"]));
    let posts: Posts = Arc::default();
    let p2 = Arc::clone(&posts);
    let app = Router::new().route(
        "/v2/track",
        post(move |headers: HeaderMap, body: Bytes| {
            let posts = Arc::clone(&p2);
            async move {
                let items = gunzip(&headers, &body);
                let n = items.len();
                posts.lock().unwrap().push((headers, items));
                (
                    StatusCode::OK,
                    format!(r#"{{"itemsReceived":{n},"itemsAccepted":{n},"errors":[]}}"#),
                )
            }
        }),
    );
    let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = inner.local_addr().unwrap();
    let listener = Tls {
        inner,
        acceptor: TlsAcceptor::from(leaf.server_config(&[], &[b"http/1.1"])),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cs = format!("InstrumentationKey={IKEY};IngestionEndpoint=https://{addr}/");
    let ca_pem = ca.pem();
    let t = routeproof::telemetry::Telemetry::build(
        None,
        Some(routeproof::telemetry::AppInsightsExport {
            connection_string: &cs,
            extra_root_pem: Some(ca_pem.as_bytes()),
        }),
        "routeproof-test",
        &[("service.instance.id".into(), "instance-0123".into())],
    )
    .expect("App Insights exporters");
    assert!(routeproof::telemetry::install(Some(Arc::new(t))));

    let app = App::start(TARGETS_MIXED).await;
    let start = std::time::Instant::now();
    let (resp, outcome) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, "iid-ai")
        .await;
    eprintln!(
        "timer with the App Insights exporter: {:?}",
        start.elapsed()
    );
    assert_eq!(resp.status, 200);
    outcome.succeeded();

    let posts = posts.lock().unwrap().clone();
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
