//! TLS faults: untrusted, expired, not yet valid, wrong name, a stalled handshake, an
//! alert from the server and TLS to a plain HTTP port.

use super::*;
use routeproof::report::Evidence;
use support::certs::Validity;
use support::web;

async fn tls_cert_case(
    case: &str,
    leaf: impl FnOnce(&TlsFx) -> certs::Material,
    class: FailureClass,
    words: &[&str],
) {
    let f = tls_fx().await;
    let srv = web::https(leaf(&f).server_config(&[], &[b"http/1.1"])).await;
    let r = probe(
        f.dns.addr,
        &f.ca_engine(),
        &one(
            &format!("https://api.internal.test:{}/", srv.addr.port()),
            "",
        ),
        None,
    )
    .await;
    let t = expect(case, &r, Layer::Tls, class);
    hint_has(case, t, words);
    assert_eq!(
        t.reached,
        Some(Layer::Tls),
        "{case}: the server answered with a certificate"
    );
    let Some(Evidence::Tls(e)) = t
        .layers
        .iter()
        .map(|l| &l.evidence)
        .find(|e| matches!(e, Evidence::Tls(_)))
    else {
        panic!("{case}: no TLS evidence")
    };
    assert!(!e.chain.is_empty(), "{case}: the chain is kept on failure");
}

#[tokio::test]
async fn tls_untrusted() {
    tls_cert_case(
        "tls_untrusted",
        |_| certs::self_signed(&LeafSpec::new(["api.internal.test"])),
        FailureClass::TlsUntrusted,
        &["internal CA", "self-signed"],
    )
    .await;
}

#[tokio::test]
async fn tls_expired() {
    tls_cert_case(
        "tls_expired",
        |f| {
            f.ca.issue(&LeafSpec::new(["api.internal.test"]).validity(Validity::Expired))
        },
        FailureClass::TlsExpired,
        &["clock", "Key Vault"],
    )
    .await;
}

#[tokio::test]
async fn tls_not_yet_valid() {
    tls_cert_case(
        "tls_not_yet_valid",
        |f| {
            f.ca.issue(&LeafSpec::new(["api.internal.test"]).validity(Validity::NotYetValid))
        },
        FailureClass::TlsExpired,
        &["clock", "Key Vault"],
    )
    .await;
}

#[tokio::test]
async fn tls_name_mismatch() {
    tls_cert_case(
        "tls_name_mismatch",
        |f| f.ca.issue(&LeafSpec::new(["someone-else.test"])),
        FailureClass::TlsNameMismatch,
        &["the certificate does not cover api.internal.test"],
    )
    .await;
}

#[tokio::test]
async fn tls_handshake_stall() {
    let f = tls_fx().await;
    let silent = web::silent().await;
    let r = probe(
        f.dns.addr,
        "",
        &one(
            &format!("tls://api.internal.test:{}", silent.addr.port()),
            "",
        ),
        None,
    )
    .await;
    let t = expect(
        "tls_handshake_stall",
        &r,
        Layer::Tls,
        FailureClass::TlsTimeout,
    );
    hint_has("tls_handshake_stall", t, &["TLS-inspecting proxy"]);
}

#[tokio::test]
async fn tls_alert_from_the_server() {
    let f = tls_fx().await;
    // Only an ALPN protocol the client does not offer: no_application_protocol alert.
    let srv = web::https(f.leaf.server_config(&[], &[b"x-other"])).await;
    let r = probe(
        f.dns.addr,
        &f.ca_engine(),
        &one(
            &format!("https://api.internal.test:{}/", srv.addr.port()),
            "",
        ),
        None,
    )
    .await;
    let t = expect(
        "tls_alert_from_the_server",
        &r,
        Layer::Tls,
        FailureClass::TlsHandshake,
    );
    let msg = &t.failure.as_ref().unwrap().message;
    assert!(msg.contains("no_application_protocol"), "{msg}");
    hint_has(
        "tls_alert_from_the_server",
        t,
        &["no common protocol version"],
    );
}

#[tokio::test]
async fn tls_to_a_plain_http_port() {
    let f = tls_fx().await;
    let plain = web::http().await;
    let r = probe(
        f.dns.addr,
        "",
        &one(
            &format!("tls://api.internal.test:{}", plain.addr.port()),
            "",
        ),
        None,
    )
    .await;
    let t = expect(
        "tls_to_a_plain_http_port",
        &r,
        Layer::Tls,
        FailureClass::TlsHandshake,
    );
    hint_has("tls_to_a_plain_http_port", t, &["plain HTTP"]);
}
