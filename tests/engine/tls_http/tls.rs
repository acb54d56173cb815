//! The TLS layer: every phase and the chain, HTTP/2, certificate failures, name
//! mismatches by IP or privatelink name, TLS 1.2 only, `insecure`, handshake failures
//! and the days-left expectation.

use super::*;

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
