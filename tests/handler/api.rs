//! The /api/probe behaviour beyond the host contract, through the host emulator:
//! content negotiation, single-flight, health, chunked bodies by mode, `last`, and direct
//! calls without a host. All probes go to loopback peers.

use crate::contract::{IID, names};
use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use support::host::{App, Caller, TARGETS_MIXED, TARGETS_OK};

#[tokio::test]
async fn content_negotiation_json_text_html() {
    let app = App::start(TARGETS_MIXED).await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let html = app
        .host
        .forward(
            &Caller::get("/api/probe?code=KEY").header("Accept", browser),
            IID,
            None,
        )
        .await;
    assert_eq!(html.status, 503);
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        html.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = html.text();
    assert!(page.starts_with("<!doctype html>"));
    assert!(
        page.contains("<div class=\"name\">down</div>") && page.contains("tcp.refused"),
        "{page}"
    );
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));

    let text = app
        .host
        .forward(
            &Caller::get("/api/probe?format=text&name=down&code=KEY"),
            IID,
            None,
        )
        .await;
    assert_eq!(text.status, 503);
    assert!(
        text.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(text.text().contains("FAIL  down"), "{}", text.text());

    let json = app
        .host
        .forward(
            &Caller::get("/api/probe?name=api&code=KEY").header("Accept", "application/json"),
            IID,
            None,
        )
        .await;
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.json()["targets"][0]["name"], "api");
}

/// A UDP relay in front of the test DNS server that holds every query until released,
/// so concurrent requests provably overlap one engine run.
struct GatedDns {
    addr: std::net::SocketAddr,
    queries: Arc<AtomicUsize>,
    release: tokio::sync::watch::Sender<bool>,
}

impl GatedDns {
    async fn start(upstream: std::net::SocketAddr) -> GatedDns {
        let sock = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let q = Arc::clone(&queries);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, client)) = sock.recv_from(&mut buf).await {
                q.fetch_add(1, Ordering::SeqCst);
                let query = buf[..n].to_vec();
                let (sock, mut gate) = (Arc::clone(&sock), gate.clone());
                tokio::spawn(async move {
                    let _ = gate.wait_for(|open| *open).await;
                    let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    up.send_to(&query, upstream).await.unwrap();
                    let mut answer = vec![0u8; 4096];
                    let (m, _) = up.recv_from(&mut answer).await.unwrap();
                    let _ = sock.send_to(&answer[..m], client).await;
                });
            }
        });
        GatedDns {
            addr,
            queries,
            release,
        }
    }
}

#[tokio::test]
async fn single_flight_concurrent_identical_requests_share_one_run() {
    let upstream = support::dns::DnsServer::start(support::dns::Zone::privatelink_fixture()).await;
    let gate = GatedDns::start(upstream.addr).await;
    let app = App::start_with(TARGETS_OK, Default::default(), Some(gate.addr)).await;
    const N: usize = 5;
    let mut calls = Vec::new();
    for i in 0..N {
        let host = support::host::Host::new(app.host.addr);
        // Same set, different order and spelling: the same run.
        let path = if i % 2 == 0 {
            "/api/probe?name=pe-dns&name=api"
        } else {
            "/api/probe?name=api,pe-dns"
        };
        let iid = format!("00000000-0000-0000-0000-00000000000{i}");
        calls.push(tokio::spawn(async move {
            host.forward(&Caller::get(path), &iid, None).await
        }));
    }
    while app.state.callers_waiting() < N {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(app.state.runs_started(), 1, "all callers joined one run");
    gate.release.send(true).unwrap();
    let mut started_at = Vec::new();
    let mut runs = Vec::new();
    for c in calls {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let b = r.json();
        assert_eq!(names(&b), ["api", "pe-dns"]);
        started_at.push(b["started_at"].as_str().unwrap().to_string());
        runs.push(b["invocation"]["run"].as_str().unwrap().to_string());
    }
    started_at.dedup();
    assert_eq!(started_at.len(), 1, "one report for everyone");
    assert_eq!(runs.iter().filter(|r| *r == "new").count(), 1, "{runs:?}");
    assert_eq!(
        runs.iter().filter(|r| *r == "shared").count(),
        N - 1,
        "{runs:?}"
    );
    assert_eq!(app.state.runs_started(), 1);
    // The DNS traffic of N callers is that of one: compare with a lone caller on a
    // fresh app (its resolver cache is cold too).
    let solo_gate = GatedDns::start(upstream.addr).await;
    solo_gate.release.send(true).unwrap();
    let solo = App::start_with(TARGETS_OK, Default::default(), Some(solo_gate.addr)).await;
    let r = solo
        .host
        .forward(&Caller::get("/api/probe?name=api&name=pe-dns"), IID, None)
        .await;
    assert_eq!(r.status, 200);
    let one = solo_gate.queries.load(Ordering::SeqCst);
    assert!(one >= 1);
    assert_eq!(
        gate.queries.load(Ordering::SeqCst),
        one,
        "{N} callers, one caller's DNS traffic"
    );

    // After the flight lands, a new request is a new run.
    let again = app
        .host
        .forward(&Caller::get("/api/probe?name=api"), IID, None)
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(app.state.runs_started(), 2);
}

#[tokio::test]
async fn health_is_cheap_and_reveals_nothing() {
    let app = App::start(TARGETS_MIXED).await;
    let resp = app
        .host
        .forward(&Caller::get("/api/health"), IID, None)
        .await;
    assert_eq!(resp.status, 200);
    let body = resp.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], "routeproof");
    let text = resp.text();
    for secret in ["sql", "loopsql", "127.0.0.1", "down", "dns_servers", IID] {
        assert!(!text.contains(secret), "health leaks {secret}: {text}");
    }
    let (_, outcome) = app
        .host
        .payload_http("health", &Caller::get("/api/health"), IID, None)
        .await;
    let (_, _, _, c) = outcome.succeeded();
    assert_eq!(c.unwrap().json()["status"], "ok");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn chunked_request_bodies_by_mode() {
    let app = App::start(TARGETS_MIXED).await;
    let adhoc = br#"{"targets":["tcp://10.0.0.5:1433"]}"#;
    // Proxy mode streams the chunked body through: read whole, then refused by policy.
    let r = app
        .host
        .proxy(
            &Caller::post("/api/probe?code=KEY", "application/json", adhoc).chunked(),
            IID,
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["class"], "policy.denied");
    // A malformed chunked body is read across chunks and named as malformed.
    let r = app
        .host
        .proxy(
            &Caller::post(
                "/api/probe",
                "application/json",
                br#"{"targets": ["tcp://a:1", }"#,
            )
            .chunked(),
            IID,
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["class"], "request.invalid_json");
    // Forward mode drops a chunked upload's body (docs/host-contract.md, Forward mode): say so.
    let r = app
        .host
        .forward(
            &Caller::post("/api/probe?code=KEY", "application/json", adhoc).chunked(),
            IID,
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!(e["error"]["class"], "request.empty_body");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Content-Length")
    );
    // With a Content-Length it arrives.
    let r = app
        .host
        .forward(
            &Caller::post("/api/probe?code=KEY", "application/json", adhoc),
            IID,
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn last_before_any_scheduled_run_is_404_json() {
    let app = App::start(TARGETS_OK).await;
    let r = app
        .host
        .forward(&Caller::get("/api/probe?last&code=KEY"), IID, None)
        .await;
    assert_eq!(r.status, 404);
    let e = r.json();
    assert_eq!(e["error"]["class"], "report.none");
    assert_eq!(e["invocation"]["id"], IID);
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn direct_calls_without_a_host_work_for_local_use() {
    let app = App::start(TARGETS_OK).await;
    let r = support::host::send(
        app.host.addr,
        "GET /api/probe?name=api HTTP/1.1\r\nHost: localhost",
        None,
        support::host::Framing::ContentLength,
    )
    .await;
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["invocation"]["mode"], "direct");
    assert_eq!(b["invocation"]["id"], Value::Null);
    // routePrefix "" (no /api): GET /probe works too.
    let r = support::host::send(
        app.host.addr,
        "GET /probe?name=api HTTP/1.1\r\nHost: x",
        None,
        support::host::Framing::ContentLength,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["targets"][0]["name"], "api");
}
