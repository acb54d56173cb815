//! Inbound through the app's own private endpoint (issue 14, item 7): routeproof is the
//! far end, and its anonymous `/api/health` states the client address the App Service
//! front end saw. The chain, all on 127.0.0.1:
//!
//! probe (the engine) --DNS--> `func1.azurewebsites.net` CNAME `func1.privatelink.azurewebsites.net`
//! --TLS--> the front-end stand-in (plants `X-Forwarded-For` as the front end writes it)
//! --forward mode, as the Functions host delivers it--> the handler under test.
//!
//! The stand-in answers for App Service's front end, which has no local emulator: the
//! headers it adds are those observed through a private endpoint and over the internet
//! (docs/azure-facts.md, rows AS1-AS3).

use crate::support;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use routeproof::report::{FailureClass, Layer, TargetReport};
use serde_json::Value;

use support::certs::{Ca, LeafSpec, PemFiles};
use support::dns::{DnsServer, Zone};
use support::engine::{class, env_of, hint};
use support::host::{App, Caller, Host, TARGETS_OK};
use support::web;

const IID: &str = "3f1d2c4b-5a6e-4f70-8a9b-0c1d2e3f4a5b";
const APP: &str = "func1.azurewebsites.net";

/// What the front end puts in `X-Forwarded-For`: the client's own header, if it sent one,
/// then the address it saw the client come from.
#[derive(Clone)]
struct FrontEnd {
    host: Arc<Host>,
    forged: Option<&'static str>,
    seen: &'static str,
}

async fn front_end(State(fe): State<FrontEnd>, uri: Uri, hm: HeaderMap) -> impl IntoResponse {
    let xff = match fe.forged {
        Some(f) => format!("{f}, {}", fe.seen),
        None => fe.seen.to_string(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut c = Caller::get(path).header("X-Forwarded-For", &xff);
    if let Some(a) = hm.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        c = c.header("Accept", a);
    }
    let r = fe.host.forward(&c, IID, None).await;
    let ct = r.header("content-type").unwrap_or("text/plain").to_string();
    (
        StatusCode::from_u16(r.status).unwrap(),
        [(header::CONTENT_TYPE, ct)],
        r.body,
    )
}

struct Chain {
    _app: App,
    _front: web::Server,
    dns: DnsServer,
    pem: PemFiles,
    port: u16,
}

/// The handler, a TLS front end for `APP` in front of it, and DNS that sends `APP`
/// through its privatelink name to 127.0.0.1.
async fn chain(forged: Option<&'static str>, seen: &'static str) -> Chain {
    support::certs::install_crypto_provider();
    let app = App::start(TARGETS_OK).await;
    let ca = Ca::new("routeproof test CA");
    let leaf = ca.issue(&LeafSpec::new([APP]));
    let pem = PemFiles::write(&ca, &leaf);
    let fe = FrontEnd {
        host: Arc::new(Host::new(app.host.addr)),
        forged,
        seen,
    };
    let router = Router::new().fallback(front_end).with_state(fe);
    let front = web::https_with(leaf.server_config(&[], &[b"http/1.1"]), router).await;
    let zone = Zone::new()
        .cname(APP, "func1.privatelink.azurewebsites.net", 60)
        .a("func1.privatelink.azurewebsites.net", "127.0.0.1", 60);
    Chain {
        port: front.addr.port(),
        _app: app,
        _front: front,
        dns: DnsServer::start(zone).await,
        pem,
    }
}

async fn probe(c: &Chain, path: &str, extra: &str) -> TargetReport {
    probe_report(c, path, extra).await.targets.remove(0)
}

async fn probe_report(c: &Chain, path: &str, extra: &str) -> routeproof::report::Report {
    let text = format!(
        "[engine]\ndns_servers = [\"{}\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\n\
         [[targets]]\nname = \"inbound\"\ntarget = \"https://{APP}:{}{path}\"\nca_file = \"{}\"\n{extra}\n",
        c.dns.addr,
        c.port,
        c.pem.ca.display()
    );
    support::engine::run(&text, &env_of(&[]), None).await
}

fn service(t: &TargetReport) -> Value {
    let l = t
        .layers
        .iter()
        .find(|l| l.layer == Layer::Service)
        .unwrap_or_else(|| panic!("no service layer: {t:#?}"));
    serde_json::to_value(l).unwrap()
}

fn layers(t: &TargetReport) -> Vec<Layer> {
    t.layers.iter().map(|l| l.layer).collect()
}

#[tokio::test]
async fn a_private_witness_proves_the_private_endpoint() {
    let c = chain(None, "10.0.1.4").await;
    let report = probe_report(&c, "/api/health", "private = true").await;
    let t = report.targets[0].clone();
    assert_eq!(class(&t), None, "{t:#?}");
    assert_eq!(
        layers(&t),
        [Layer::Dns, Layer::Tcp, Layer::Tls, Layer::Service]
    );
    let v = service(&t);
    assert_eq!(v["service"], "app", "{v}");
    assert_eq!(v["verdict"], "reached_service", "{v}");
    assert_eq!(
        v["answer"]["service_marker"], "body: service=routeproof",
        "{v}"
    );
    let w = &v["witness"];
    assert_eq!(w["conclusion"], "private_path_proven", "{v}");
    assert_eq!(w["witness"]["addr"], "10.0.1.4", "{v}");
    assert_eq!(w["witness"]["source"], "app_health", "{v}");
    // 10.0.1.4 is neither this socket's address (127.0.0.1) nor a WEBSITE_PRIVATE_IP.
    assert_eq!(w["matched"], "other_private", "{v}");
    assert_eq!(
        w["privatelink_zone"], "privatelink.azurewebsites.net",
        "{v}"
    );
    let text = routeproof::render::text::render(&report);
    assert!(
        text.contains(
            "app reached_service (status 200), witness 10.0.1.4 (private_path_proven), DNS through privatelink.azurewebsites.net"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_public_witness_fails_private_and_a_forged_entry_is_not_believed() {
    // The client sent `X-Forwarded-For: 10.0.1.4`; the front end appended what it saw.
    let c = chain(Some("10.0.1.4"), "203.0.113.7:5555").await;
    let t = probe(&c, "/api/health", "private = true").await;
    assert_eq!(class(&t), Some(FailureClass::ServicePublicPath), "{t:#?}");
    let v = service(&t);
    assert_eq!(v["witness"]["witness"]["addr"], "203.0.113.7", "{v}");
    assert_eq!(v["witness"]["conclusion"], "public_path", "{v}");
    let h = hint(&t);
    for words in [
        "203.0.113.7",
        "privatelink.azurewebsites.net",
        "168.63.129.16",
    ] {
        assert!(h.contains(words), "hint lacks {words}: {h}");
    }
    assert!(
        !h.contains("10.0.1.4"),
        "the forged entry reached the hint: {h}"
    );
    // Without `private = true` the public path is reported, not failed.
    let t = probe(&c, "/api/health", "").await;
    assert_eq!(class(&t), None, "{t:#?}");
    assert_eq!(service(&t)["witness"]["conclusion"], "public_path");
}

#[tokio::test]
async fn other_urls_of_an_app_keep_the_http_layer_and_a_stranger_is_not_routeproof() {
    let c = chain(None, "10.0.1.4").await;
    // `GET /` on the handler is the readiness answer: an ordinary HTTP check.
    let t = probe(&c, "/", "").await;
    assert_eq!(class(&t), None, "{t:#?}");
    assert_eq!(
        layers(&t),
        [Layer::Dns, Layer::Tcp, Layer::Tls, Layer::Http]
    );

    // App Service's refusal page (or anything else) where routeproof should answer.
    support::certs::install_crypto_provider();
    let ca = Ca::new("routeproof test CA");
    let leaf = ca.issue(&LeafSpec::new([APP]));
    let pem = PemFiles::write(&ca, &leaf);
    let refuse = Router::new().fallback(|| async {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html")],
            "<h1>Error 403 - Forbidden</h1>",
        )
    });
    let front = web::https_with(leaf.server_config(&[], &[b"http/1.1"]), refuse).await;
    let stranger = Chain {
        port: front.addr.port(),
        pem,
        ..c
    };
    let t = probe(&stranger, "/api/health", "private = true").await;
    assert_eq!(class(&t), Some(FailureClass::ServiceNotService), "{t:#?}");
    let h = hint(&t);
    for words in ["routeproof", "403", "private endpoint", "public access"] {
        assert!(h.contains(words), "hint lacks {words}: {h}");
    }
    drop(front);
}

#[tokio::test]
async fn health_states_only_the_last_forwarded_entry_and_only_behind_the_host() {
    let app = App::start(TARGETS_OK).await;
    let xff = "10.0.1.4, 203.0.113.7:5555";
    let client = |v: &Value| v["client"]["address"].clone();
    let fwd = app
        .host
        .forward(
            &Caller::get("/api/health").header("X-Forwarded-For", xff),
            IID,
            None,
        )
        .await
        .json();
    assert_eq!(client(&fwd), "203.0.113.7", "{fwd}");
    assert_eq!(fwd["client"]["from"], "x-forwarded-for");
    // Nothing else: the keys are the same as before, plus `client`.
    let mut keys: Vec<&String> = fwd.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["client", "service", "status", "version"], "{fwd}");
    assert_eq!(fwd["client"].as_object().unwrap().len(), 2, "{fwd}");

    // Payload mode: the header arrives in `Data.req.Headers`.
    let (_, outcome) = app
        .host
        .payload_http(
            "health",
            &Caller::get("/api/health").header("X-Forwarded-For", xff),
            IID,
            None,
        )
        .await;
    let (_, _, _, res) = outcome.succeeded();
    assert_eq!(client(&res.unwrap().json()), "203.0.113.7");

    // Proxy mode: the host's YARP set X-Forwarded-For to its own peer (the emulator
    // sends 127.0.0.1), which is not the caller: no address.
    let proxied = app
        .host
        .proxy(&Caller::get("/api/health"), IID, None)
        .await
        .json();
    assert_eq!(proxied["client"], Value::Null, "{proxied}");

    // Direct (no host in front): whatever the caller wrote is not believed.
    let direct = support::host::send(
        app.host.addr,
        &format!("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {xff}"),
        None,
        support::host::Framing::ContentLength,
    )
    .await
    .json();
    assert_eq!(direct["client"], Value::Null, "{direct}");
    // No header at all, through the host: null, and still nothing about the app.
    let bare = app
        .host
        .forward(&Caller::get("/api/health"), IID, None)
        .await
        .text();
    assert!(bare.contains("\"client\":null"), "{bare}");
    for secret in ["loopsql", "127.0.0.1", "dns_servers", IID] {
        assert!(!bare.contains(secret), "health leaks {secret}: {bare}");
    }
}
