//! The HTTP layer: status classes and Azure hints, timeouts by phase, redirects, body
//! and header assertions, non-HTTP answers, headers from app settings, and curl as an
//! independent oracle.

use super::*;

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
