//! TLS and HTTP layers against real servers on loopback: axum behind rustls with
//! rcgen-made certificates (private CA, self-signed, expired, not yet valid, wrong name,
//! TLS 1.2 only, HTTP/2), raw responders for stalls and non-HTTP, and curl as an
//! independent oracle. Every assertion names the layer and the class.

mod support;

use std::collections::HashMap;

use routeproof::config;
use routeproof::probe::Engine;
use routeproof::report::{
    Evidence, FailureClass, HttpEvidence, Layer, Report, TargetReport, TlsEvidence,
};
use support::certs::{self, Ca, LeafSpec, PemFiles, Validity};
use support::dns::{DnsServer, Zone};
use support::web;

/// Names the tests use; all resolve to 127.0.0.1 through the test DNS server.
fn zone() -> Zone {
    Zone::new()
        .a("api.internal.test", "127.0.0.1", 60)
        .cname("app.contoso.test", "app.privatelink.contoso.test", 60)
        .a("app.privatelink.contoso.test", "127.0.0.1", 60)
}

struct Fixture {
    dns: DnsServer,
    ca: Ca,
    pem: PemFiles,
    leaf: certs::Material,
}

async fn fixture() -> Fixture {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof test CA");
    let leaf = ca.issue(&LeafSpec::new(["api.internal.test", "app.contoso.test"]));
    let pem = PemFiles::write(&ca, &leaf);
    Fixture {
        dns: DnsServer::start(zone()).await,
        ca,
        pem,
        leaf,
    }
}

async fn run(f: &Fixture, targets: &str, env: &[(&str, &str)]) -> Report {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |k: &str| env.get(k).cloned();
    let text = format!(
        "[engine]\ndns_servers = [\"{}\"]\n[engine.timeouts]\ndns = \"1s\"\ntcp = \"1s\"\ntls = \"600ms\"\nhttp = \"600ms\"\nbody = \"600ms\"\n{targets}",
        f.dns.addr
    );
    let cfg = config::parse(&text, &lookup).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(cfg.engine, "config", &lookup).unwrap();
    engine.run(&cfg.targets, None).await
}

/// A target table with a unique name: several tests probe one URL with different options.
fn target(url: &str, extra: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("[[targets]]\nname = \"t{n}\"\ntarget = \"{url}\"\n{extra}\n")
}

fn class(t: &TargetReport) -> Option<FailureClass> {
    t.failure.as_ref().map(|f| f.class)
}

fn tls_ev(t: &TargetReport) -> &TlsEvidence {
    t.layers
        .iter()
        .find_map(|l| match &l.evidence {
            Evidence::Tls(e) => Some(e),
            _ => None,
        })
        .expect("tls layer ran")
}

fn http_ev(t: &TargetReport) -> &HttpEvidence {
    t.layers
        .iter()
        .find_map(|l| match &l.evidence {
            Evidence::Http(e) => Some(e),
            _ => None,
        })
        .expect("http layer ran")
}

fn layers(t: &TargetReport) -> Vec<Layer> {
    t.layers.iter().map(|l| l.layer).collect()
}

fn ca_line(f: &Fixture) -> String {
    format!("ca_file = \"{}\"", f.pem.ca.display())
}

#[tokio::test]
async fn valid_https_reports_every_phase_and_the_chain() {
    let f = fixture().await;
    let srv = web::https(f.leaf.server_config(&[], &[b"http/1.1"])).await;
    let port = srv.addr.port();
    let r = run(
        &f,
        &target(&format!("https://api.internal.test:{port}/"), &ca_line(&f)),
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Http));
    assert_eq!(layers(t), [Layer::Dns, Layer::Tcp, Layer::Tls, Layer::Http]);
    let tls = tls_ev(t);
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(tls.sni.as_deref(), Some("api.internal.test"));
    assert_eq!(tls.alpn.as_deref(), Some("http/1.1"));
    assert!(tls.verified && tls.would_fail.is_none());
    assert!(
        tls.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS13_")),
        "{tls:?}"
    );
    assert_eq!(tls.chain.len(), 1);
    assert_eq!(tls.chain[0].subject, "CN=api.internal.test");
    assert_eq!(tls.chain[0].issuer, "CN=routeproof test CA");
    assert!(
        tls.chain[0]
            .sans
            .contains(&"DNS:app.contoso.test".to_string())
    );
    assert_eq!(tls.chain[0].sha256.len(), 64);
    assert!(
        matches!(tls.days_left, Some(28..=30)),
        "{:?}",
        tls.days_left
    );
    let h = http_ev(t);
    assert_eq!(h.status, Some(200));
    assert_eq!(h.version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(h.body_bytes, "ok: routeproof test server".len() as u64);
    // Phases present, each its own layer or field; none is a made-up zero.
    assert!(h.ttfb_ms.is_some() && h.transfer_ms.is_some());
    assert!(t.layers.iter().all(|l| l.duration_ms > 0.0), "{t:#?}");
}

#[tokio::test]
async fn plain_http_has_no_tls_layer() {
    let f = fixture().await;
    let srv = web::http().await;
    let r = run(
        &f,
        &target(
            &format!("http://api.internal.test:{}/", srv.addr.port()),
            "",
        ),
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(layers(t), [Layer::Dns, Layer::Tcp, Layer::Http]);
}

#[tokio::test]
async fn http2_is_negotiated_when_offered() {
    let f = fixture().await;
    let srv = web::https(f.leaf.server_config(&[], &[b"h2"])).await;
    let r = run(
        &f,
        &target(
            &format!("https://api.internal.test:{}/", srv.addr.port()),
            &ca_line(&f),
        ),
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(tls_ev(t).alpn.as_deref(), Some("h2"));
    assert_eq!(http_ev(t).version.as_deref(), Some("HTTP/2.0"));
}

#[tokio::test]
async fn certificate_failures_are_classified_and_keep_the_chain() {
    let f = fixture().await;
    let self_signed = certs::self_signed(&LeafSpec::new(["api.internal.test"]));
    let expired =
        f.ca.issue(&LeafSpec::new(["api.internal.test"]).validity(Validity::Expired));
    let future =
        f.ca.issue(&LeafSpec::new(["api.internal.test"]).validity(Validity::NotYetValid));
    let wrong = f.ca.issue(&LeafSpec::new(["someone-else.test"]));
    let cases = [
        (self_signed, FailureClass::TlsUntrusted),
        (expired, FailureClass::TlsExpired),
        (future, FailureClass::TlsExpired),
        (wrong, FailureClass::TlsNameMismatch),
    ];
    for (mat, want) in cases {
        let srv = web::https(mat.server_config(&[], &[b"http/1.1"])).await;
        let r = run(
            &f,
            &target(
                &format!("https://api.internal.test:{}/", srv.addr.port()),
                &ca_line(&f),
            ),
            &[],
        )
        .await;
        let t = &r.targets[0];
        assert_eq!(class(t), Some(want), "{t:#?}");
        assert_eq!(t.failure.as_ref().unwrap().layer, Some(Layer::Tls));
        // The server answered TLS: the route is proven that far.
        assert_eq!(t.reached, Some(Layer::Tls), "{want}");
        assert_eq!(
            tls_ev(t).chain.len(),
            1,
            "{want}: evidence survives failure"
        );
        assert_eq!(t.skipped[0].layer, Layer::Http);
    }
}

#[tokio::test]
async fn calling_by_ip_or_privatelink_name_is_a_name_mismatch_with_the_fqdn_hint() {
    let f = fixture().await;
    let srv = web::https(f.leaf.server_config(&[], &[])).await;
    let port = srv.addr.port();
    let r = run(
        &f,
        &format!(
            "{}{}",
            target(&format!("tls://127.0.0.1:{port}"), &ca_line(&f)),
            target(
                &format!("tls://app.privatelink.contoso.test:{port}"),
                &ca_line(&f)
            )
        ),
        &[],
    )
    .await;
    let ip = &r.targets[0];
    assert_eq!(class(ip), Some(FailureClass::TlsNameMismatch), "{ip:#?}");
    assert_eq!(tls_ev(ip).sni, None, "no SNI is sent for an IP");
    let hint = &ip.failure.as_ref().unwrap().hint;
    assert!(
        hint.contains("is an IP address") && hint.contains("public FQDN"),
        "{hint}"
    );
    let pl = &r.targets[1];
    assert_eq!(class(pl), Some(FailureClass::TlsNameMismatch), "{pl:#?}");
    assert!(
        pl.failure
            .as_ref()
            .unwrap()
            .hint
            .contains("privatelink name")
    );

    // With the right SNI the same IP verifies.
    let r = run(
        &f,
        &target(
            &format!("tls://127.0.0.1:{port}?sni=api.internal.test"),
            &ca_line(&f),
        ),
        &[],
    )
    .await;
    assert!(r.targets[0].ok, "{:#?}", r.targets[0]);
}

#[tokio::test]
async fn tls12_only_server() {
    let f = fixture().await;
    let srv = web::https(
        f.leaf
            .server_config(&[&rustls::version::TLS12], &[b"http/1.1"]),
    )
    .await;
    let r = run(
        &f,
        &target(
            &format!("https://api.internal.test:{}/", srv.addr.port()),
            &ca_line(&f),
        ),
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(tls_ev(t).version.as_deref(), Some("TLSv1.2"));
}

#[tokio::test]
async fn insecure_records_what_would_have_failed() {
    let f = fixture().await;
    let mat = certs::self_signed(&LeafSpec::new(["api.internal.test"]));
    let srv = web::https(mat.server_config(&[], &[b"http/1.1"])).await;
    let r = run(
        &f,
        &target(
            &format!("https://api.internal.test:{}/", srv.addr.port()),
            "insecure = true",
        ),
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let tls = tls_ev(t);
    assert!(!tls.verified);
    assert!(
        tls.would_fail
            .as_deref()
            .is_some_and(|w| w.starts_with("tls.untrusted")),
        "{tls:?}"
    );
    assert_eq!(http_ev(t).status, Some(200));
}

#[tokio::test]
async fn handshake_failures() {
    let f = fixture().await;
    let silent = web::silent().await;
    let plain = web::http().await;
    // The server speaks only a protocol the client does not offer: rustls answers with
    // the no_application_protocol alert.
    let alpn = web::https(f.leaf.server_config(&[], &[b"x-other"])).await;
    let r = run(
        &f,
        &format!(
            "{}{}{}",
            target(
                &format!("tls://api.internal.test:{}", silent.addr.port()),
                ""
            ),
            target(
                &format!("tls://api.internal.test:{}", plain.addr.port()),
                ""
            ),
            target(
                &format!("https://api.internal.test:{}/", alpn.addr.port()),
                &ca_line(&f)
            ),
        ),
        &[],
    )
    .await;
    assert_eq!(
        class(&r.targets[0]),
        Some(FailureClass::TlsTimeout),
        "{:#?}",
        r.targets[0]
    );
    assert_eq!(r.targets[0].reached, Some(Layer::Tcp));
    assert_eq!(
        class(&r.targets[1]),
        Some(FailureClass::TlsHandshake),
        "{:#?}",
        r.targets[1]
    );
    assert_eq!(
        class(&r.targets[2]),
        Some(FailureClass::TlsHandshake),
        "{:#?}",
        r.targets[2]
    );
    let msg = &r.targets[2].failure.as_ref().unwrap().message;
    assert!(msg.contains("no_application_protocol"), "{msg}");
}

#[tokio::test]
async fn cert_days_left_expectation() {
    let f = fixture().await;
    let srv = web::https(f.leaf.server_config(&[], &[])).await;
    let r = run(
        &f,
        &target(
            &format!("tls://api.internal.test:{}", srv.addr.port()),
            &format!("{}\ncert_days_left = 60", ca_line(&f)),
        ),
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::ExpectCertDaysLeft), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tls));
}

#[tokio::test]
async fn http_status_classes_and_azure_hints() {
    let f = fixture().await;
    let srv = web::http().await;
    let base = format!("http://api.internal.test:{}", srv.addr.port());
    let r = run(
        &f,
        &format!(
            "{}{}{}{}",
            target(&format!("{base}/500"), ""),
            target(&format!("{base}/401"), ""),
            target(&format!("{base}/pna"), ""),
            target(&format!("{base}/401"), "status = [401, \"200-299\"]"),
        ),
        &[],
    )
    .await;
    for t in &r.targets[..3] {
        assert_eq!(class(t), Some(FailureClass::HttpStatus), "{t:#?}");
        assert_eq!(t.reached, Some(Layer::Http), "a status is an answer");
    }
    assert_eq!(http_ev(&r.targets[0]).status, Some(500));
    let h401 = &r.targets[1].failure.as_ref().unwrap().hint;
    assert!(
        h401.contains("route works") && h401.contains("credentials"),
        "{h401}"
    );
    assert!(
        http_ev(&r.targets[1])
            .headers
            .contains(&("www-authenticate".into(), "Bearer".into()))
    );
    let pna = r.targets[2].failure.as_ref().unwrap();
    assert!(
        pna.message.contains("public_network_access_disabled"),
        "{}",
        pna.message
    );
    assert!(pna.hint.contains("public network access"), "{}", pna.hint);
    assert!(
        r.targets[3].ok,
        "401 accepted explicitly: {:#?}",
        r.targets[3]
    );
}

#[tokio::test]
async fn http_timeouts_name_their_phase() {
    let f = fixture().await;
    let srv = web::http().await;
    let stalled = web::stalled_body().await;
    let r = run(
        &f,
        &format!(
            "{}{}",
            target(
                &format!("http://api.internal.test:{}/slow", srv.addr.port()),
                ""
            ),
            target(
                &format!("http://api.internal.test:{}/", stalled.addr.port()),
                ""
            )
        ),
        &[],
    )
    .await;
    let head = &r.targets[0];
    assert_eq!(class(head), Some(FailureClass::HttpTimeout), "{head:#?}");
    assert!(
        head.failure
            .as_ref()
            .unwrap()
            .message
            .contains("first byte")
    );
    assert_eq!(http_ev(head).ttfb_ms, None, "no first byte, no ttfb");
    let body = &r.targets[1];
    assert_eq!(class(body), Some(FailureClass::HttpTimeout), "{body:#?}");
    assert!(body.failure.as_ref().unwrap().message.contains("transfer"));
    assert_eq!(http_ev(body).status, Some(200));
    assert_eq!(http_ev(body).body_bytes, 4);
}

#[tokio::test]
async fn redirects() {
    let f = fixture().await;
    let srv = web::http().await;
    let base = format!("http://api.internal.test:{}", srv.addr.port());
    let r = run(
        &f,
        &format!(
            "{}{}{}{}",
            target(&format!("{base}/redirect"), "follow_redirects = true"),
            target(&format!("{base}/loop-a"), "follow_redirects = true"),
            target(&format!("{base}/elsewhere"), "follow_redirects = true"),
            target(&format!("{base}/redirect"), ""),
        ),
        &[],
    )
    .await;
    let followed = &r.targets[0];
    assert!(followed.ok, "{followed:#?}");
    assert_eq!(http_ev(followed).status, Some(200));
    assert_eq!(http_ev(followed).redirects, ["303 /"]);
    assert_eq!(
        class(&r.targets[1]),
        Some(FailureClass::HttpRedirects),
        "{:#?}",
        r.targets[1]
    );
    assert!(
        r.targets[1]
            .failure
            .as_ref()
            .unwrap()
            .message
            .contains("loop")
    );
    assert_eq!(class(&r.targets[2]), Some(FailureClass::HttpRedirects));
    assert!(
        r.targets[2]
            .failure
            .as_ref()
            .unwrap()
            .message
            .contains("another origin")
    );
    // Not following: the 3xx itself is the answer, inside the default 200-399.
    let not_followed = &r.targets[3];
    assert!(not_followed.ok, "{not_followed:#?}");
    assert_eq!(http_ev(not_followed).status, Some(303));
}

#[tokio::test]
async fn body_and_header_assertions_and_size_limit() {
    let f = fixture().await;
    let srv = web::http().await;
    let base = format!("http://api.internal.test:{}", srv.addr.port());
    let r = run(
        &f,
        &format!(
            "{}{}{}{}{}{}",
            target(
                &format!("{base}/"),
                "body_contains = \"routeproof\"\nbody_regex = \"^ok: .* server$\""
            ),
            target(&format!("{base}/"), "body_contains = \"healthy\""),
            target(
                &format!("{base}/echo-headers"),
                "header_contains = { \"x-ms-request-id\" = \"req-42\", \"x-seen-host\" = \"yes\" }"
            ),
            target(
                &format!("{base}/echo-headers"),
                "header_contains = { \"x-ms-request-id\" = \"nope\" }"
            ),
            target(&format!("{base}/big"), "max_body_bytes = 1024"),
            target(&format!("{base}/big"), ""),
        ),
        &[],
    )
    .await;
    assert!(r.targets[0].ok, "{:#?}", r.targets[0]);
    assert_eq!(class(&r.targets[1]), Some(FailureClass::HttpBody));
    assert!(
        r.targets[2].ok,
        "a header not shown in the report is still checked: {:#?}",
        r.targets[2]
    );
    assert_eq!(class(&r.targets[3]), Some(FailureClass::HttpBody));
    let big = &r.targets[4];
    assert_eq!(class(big), Some(FailureClass::HttpTooLarge), "{big:#?}");
    assert!(http_ev(big).body_truncated);
    // The default limit bounds the read without failing the target.
    let default = &r.targets[5];
    assert!(default.ok, "{default:#?}");
    assert!(http_ev(default).body_truncated);
    assert!(http_ev(default).body_bytes >= 64 * 1024);
}

#[tokio::test]
async fn not_http_is_a_protocol_error() {
    let f = fixture().await;
    let srv = web::not_http().await;
    let r = run(
        &f,
        &target(
            &format!("http://api.internal.test:{}/", srv.addr.port()),
            "",
        ),
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::HttpProtocol), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tcp));
}

#[tokio::test]
async fn headers_from_app_settings_reach_the_server_and_never_the_report() {
    const KEY: &str = "k3y-PLANTED-77";
    let f = fixture().await;
    let srv = web::https(f.leaf.server_config(&[], &[b"http/1.1"])).await;
    // An IP target with an SNI name: the Host header follows the SNI name.
    let r = run(
        &f,
        &target(
            &format!("https://127.0.0.1:{}/echo-headers?code={KEY}", srv.addr.port()),
            &format!(
                "sni = \"api.internal.test\"\n{}\nheaders = {{ \"x-api-key\" = \"env:API_KEY\" }}\nbody_contains = \"key={KEY}\"",
                ca_line(&f)
            ),
        ),
        &[("API_KEY", KEY)],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "the header arrived: {t:#?}");
    let json = serde_json::to_string(&r).unwrap();
    let text = routeproof::render::text::render(&r);
    // body_contains names the key in its own config; the report shows neither it nor the header.
    assert!(!json.contains(KEY) && !text.contains(KEY), "{json}");
    let r2 = run(
        &f,
        &target(
            &format!("https://127.0.0.1:{}/echo-headers", srv.addr.port()),
            &format!(
                "sni = \"api.internal.test\"\n{}\nbody_contains = \"host=api.internal.test:\"",
                ca_line(&f)
            ),
        ),
        &[],
    )
    .await;
    assert!(
        r2.targets[0].ok,
        "Host follows the SNI name: {:#?}",
        r2.targets[0]
    );
}

/// curl (OpenSSL) against the same server: status, TLS version and expiry must agree.
#[tokio::test(flavor = "multi_thread")]
async fn curl_agrees_on_status_version_and_expiry() {
    let Ok(curl) = which("curl") else {
        support::skip("curl_agrees", "curl not installed");
        return;
    };
    let f = fixture().await;
    let srv = web::https(
        f.leaf
            .server_config(&[&rustls::version::TLS12], &[b"http/1.1"]),
    )
    .await;
    let port = srv.addr.port();
    let r = run(
        &f,
        &target(&format!("https://api.internal.test:{port}/"), &ca_line(&f)),
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let ca = f.pem.ca.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(curl)
            .args([
                "-sv",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}\n%{certs}",
                "--cacert",
            ])
            .arg(&ca)
            .args(["--resolve", &format!("api.internal.test:{port}:127.0.0.1")])
            .arg(format!("https://api.internal.test:{port}/"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.lines().next(), Some("200"), "{stdout}{stderr}");
    assert_eq!(http_ev(t).status, Some(200));
    assert!(stderr.contains("SSL connection using TLSv1.2"), "{stderr}");
    assert_eq!(tls_ev(t).version.as_deref(), Some("TLSv1.2"));
    // curl prints e.g. "Expire date:Dec 25 09:00:00 2026 GMT"; compare the date part.
    let expire = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Expire date:"))
        .expect("curl printed the certificate");
    let ours = &tls_ev(t).chain[0].not_after; // 2026-12-25T09:00:00Z
    let year = &ours[..4];
    let day: u32 = ours[8..10].parse().unwrap();
    assert!(
        expire.contains(year) && expire.contains(&format!(" {day} ")),
        "curl `{expire}` vs ours `{ours}`"
    );
}

fn which(bin: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(bin))
                .find(|p| p.exists())
        })
        .ok_or(())
}
