//! HTTP faults: a 500, a slow first byte, a stalled body, a redirect loop, an oversized
//! body, a non-HTTP answer and a connection closed mid-headers.

use super::*;
use support::web;
use tokio::io::AsyncWriteExt;

async fn http_case(
    case: &str,
    srv: &web::Server,
    path: &str,
    extra: &str,
    class: FailureClass,
) -> TargetReport {
    let f = tls_fx().await;
    let uri = format!("http://api.internal.test:{}{path}", srv.addr.port());
    let r = probe(f.dns.addr, "", &one(&uri, extra), None).await;
    expect(case, &r, Layer::Http, class).clone()
}

#[tokio::test]
async fn http_500() {
    let srv = web::http().await;
    let t = http_case("http_500", &srv, "/500", "", FailureClass::HttpStatus).await;
    assert_eq!(t.reached, Some(Layer::Http), "a status is an answer");
    // 500 is not a gateway status (502-504): the hint must not blame a backend.
    hint_has("http_500", &t, &["(default 200-399)", "selected headers"]);
    hint_lacks("http_500", &t, &["backend"]);
}

#[tokio::test]
async fn http_slow_first_byte_past_the_timeout() {
    let srv = web::http().await;
    let t = http_case(
        "http_slow_first_byte_past_the_timeout",
        &srv,
        "/slow",
        "",
        FailureClass::HttpTimeout,
    )
    .await;
    assert!(t.failure.as_ref().unwrap().message.contains("first byte"));
    hint_has("http_slow_first_byte_past_the_timeout", &t, &["cold start"]);
}

#[tokio::test]
async fn http_slow_body() {
    let srv = web::stalled_body().await;
    let t = http_case("http_slow_body", &srv, "/", "", FailureClass::HttpTimeout).await;
    assert!(t.failure.as_ref().unwrap().message.contains("transfer"));
    hint_has("http_slow_body", &t, &["slow or hung"]);
}

#[tokio::test]
async fn http_redirect_loop() {
    let srv = web::http().await;
    let t = http_case(
        "http_redirect_loop",
        &srv,
        "/loop-a",
        "follow_redirects = true",
        FailureClass::HttpRedirects,
    )
    .await;
    hint_has(
        "http_redirect_loop",
        &t,
        &["Easy Auth", "Probe the final URL"],
    );
}

#[tokio::test]
async fn http_oversized_body() {
    let srv = web::http().await;
    let t = http_case(
        "http_oversized_body",
        &srv,
        "/big",
        "max_body_bytes = 1024",
        FailureClass::HttpTooLarge,
    )
    .await;
    hint_has("http_oversized_body", &t, &["raise the limit"]);
}

#[tokio::test]
async fn http_invalid_response() {
    let srv = web::not_http().await;
    let t = http_case(
        "http_invalid_response",
        &srv,
        "/",
        "",
        FailureClass::HttpProtocol,
    )
    .await;
    hint_has(
        "http_invalid_response",
        &t,
        &["non-HTTP service on this port"],
    );
}

#[tokio::test]
async fn http_connection_closed_mid_headers() {
    let srv = web::raw(|mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
    })
    .await;
    let t = http_case(
        "http_connection_closed_mid_headers",
        &srv,
        "/",
        "",
        FailureClass::HttpProtocol,
    )
    .await;
    hint_has(
        "http_connection_closed_mid_headers",
        &t,
        &["proxy/NVA cutting the connection"],
    );
}
