//! App Insights: a scheduled run POSTs one `AvailabilityData` envelope per target to
//! `{IngestionEndpoint}/v2.1/track` (a loopback receiver here), and the same run's spans
//! and metrics through the opentelemetry-application-insights exporter (gzip), all
//! before the timer invocation answers; a failing ingestion never fails the run.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use support::host::{App, TARGETS_MIXED, TimerStatus};

const IKEY: &str = "0b5e5b2f-1c1a-4c7e-9a43-2f1f7f0c0d11";

#[derive(Default)]
struct Receiver {
    /// Headers and the decoded (gunzipped when needed) JSON array of each POST.
    posts: Mutex<Vec<(HeaderMap, Vec<Value>)>>,
    fail: AtomicBool,
}

async fn start_receiver() -> (Arc<Receiver>, std::net::SocketAddr) {
    let rx = Arc::new(Receiver::default());
    let r2 = Arc::clone(&rx);
    // `/v2.1/track` is where availability results go; the exporter posts to `/v2/track`.
    let track = post(move |headers: HeaderMap, body: Bytes| {
        let rx = Arc::clone(&r2);
        async move {
            let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                    .unwrap();
                out
            } else {
                body.to_vec()
            };
            let items: Vec<Value> = serde_json::from_slice(&raw).unwrap_or_default();
            let n = items.len();
            rx.posts.lock().unwrap().push((headers, items));
            if rx.fail.load(Ordering::SeqCst) {
                (StatusCode::SERVICE_UNAVAILABLE, "{}".to_string())
            } else {
                (
                    StatusCode::OK,
                    format!(r#"{{"itemsReceived":{n},"itemsAccepted":{n},"errors":[]}}"#),
                )
            }
        }
    });
    let app = Router::new()
        .route("/v2.1/track", track.clone())
        .route("/v2/track", track)
        .fallback(|uri: axum::http::Uri| async move {
            eprintln!("receiver: unexpected {uri}");
            StatusCode::NOT_FOUND
        });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (rx, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_sends_one_availability_result_per_target() {
    let (rx, addr) = start_receiver().await;
    let cs = format!(
        "InstrumentationKey={IKEY};IngestionEndpoint=http://{addr}/;LiveEndpoint=http://127.0.0.1:1/"
    );
    let ai = routeproof::telemetry::AppInsights::from_connection_string(&cs).unwrap();
    assert!(
        !format!("{ai:?}").contains(IKEY),
        "Debug never prints the whole key"
    );
    assert!(routeproof::telemetry::install_availability(Some(Arc::new(
        ai
    ))));

    let app = App::start(TARGETS_MIXED).await;
    let iid = "5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60";
    let start = std::time::Instant::now();
    let (resp, outcome) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, iid)
        .await;
    eprintln!("timer with App Insights export: {:?}", start.elapsed());
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
    let start = std::time::Instant::now();
    let (resp, outcome) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, iid)
        .await;
    let took = start.elapsed();
    eprintln!("timer with App Insights answering 503: {took:?}");
    assert!(
        took < routeproof::telemetry::FLUSH_BOUND + std::time::Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(resp.status, 200);
    outcome.succeeded();
    let posts = rx.posts.lock().unwrap();
    assert_eq!(posts.iter().filter(|(_, i)| is_availability(i)).count(), 2);
}
