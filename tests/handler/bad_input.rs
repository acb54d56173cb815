//! Bad input to the custom-handler edge: every case gets the right status and a JSON
//! error naming the problem, never a panic, a hang or an empty body.

use crate::support;

use support::host::{
    App, Caller, Framing, Outcome, TARGETS_MIXED, error_class as class, judge, send,
};
use tokio::io::AsyncWriteExt;

const IID: &str = "9d3e2c1b-0a4f-4e5d-8c7b-6a5f4e3d2c1b";

#[tokio::test]
async fn http_api_bad_input_table() {
    let app = App::start(TARGETS_MIXED).await;
    let big = vec![b'x'; 100 * 1024];
    let cases: Vec<(Caller, u16, &str, &str)> = vec![
        (
            Caller::post("/api/probe", "application/json", b"{\"targets\": ["),
            400,
            "request.invalid_json",
            "not valid JSON",
        ),
        (
            Caller::post("/api/probe", "text/plain", b"tcp://10.0.0.1:1"),
            415,
            "request.unsupported_media_type",
            "`text/plain`",
        ),
        (
            Caller::post("/api/probe", "application/json", &big),
            413,
            "request.too_large",
            "64 KiB",
        ),
        (
            Caller::get("/api/probe?name=sql&name=nope"),
            400,
            "request.unknown_name",
            "`nope`",
        ),
        (
            Caller::get("/api/probe?nmae=sql"),
            400,
            "request.invalid",
            "`nmae`",
        ),
        (
            Caller::get("/api/probe?format=xml"),
            400,
            "request.invalid",
            "`xml`",
        ),
        (
            Caller::get("/api/probe?target=tcp://169.254.169.254:80"),
            403,
            "policy.denied",
            "allow-list",
        ),
    ];
    for (caller, status, want_class, want_text) in cases {
        for mode in ["forward", "proxy", "payload"] {
            let (got, body) = match mode {
                "forward" => {
                    let r = app.host.forward(&caller, IID, None).await;
                    (r.status, r.json())
                }
                "proxy" => {
                    let r = app.host.proxy(&caller, IID, None).await;
                    (r.status, r.json())
                }
                _ => {
                    let (_, o) = app.host.payload_http("probe", &caller, IID, None).await;
                    let (_, _, _, c) = o.succeeded();
                    let c = c.unwrap();
                    assert_eq!(c.content_type(), Some("application/json"));
                    (c.status, c.json())
                }
            };
            let what = format!("{mode} {} {}", caller.method, caller.path_and_query);
            assert_eq!(got, status, "{what}: {body}");
            assert_eq!(class(&body), want_class, "{what}");
            let msg = body["error"]["message"].as_str().unwrap();
            assert!(msg.contains(want_text), "{what}: {msg}");
            assert_eq!(body["invocation"]["id"], IID, "{what}");
        }
    }
    assert_eq!(
        app.state.runs_started(),
        0,
        "no bad request probed anything"
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_however_framed() {
    let app = App::start(TARGETS_MIXED).await;
    let big = vec![b'{'; 100 * 1024];
    // Chunked, so the limit is hit while reading, not from Content-Length.
    let r = app
        .host
        .proxy(
            &Caller::post("/api/probe", "application/json", &big).chunked(),
            IID,
            None,
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(class(&r.json()), "request.too_large");
    // Declared far over the limit: answered at once, without reading, connection closed.
    let mut s = tokio::net::TcpStream::connect(app.host.addr).await.unwrap();
    s.write_all(b"POST /api/probe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
        .await
        .unwrap();
    let r = support::host::read_response(&mut s).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(class(&r.json()), "request.too_large");
    // Payload mode: an envelope over its own limit fails the invocation visibly.
    let mut s = tokio::net::TcpStream::connect(app.host.addr).await.unwrap();
    s.write_all(b"POST /scheduled HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
        .await
        .unwrap();
    let r = support::host::read_response(&mut s).await;
    assert_eq!(r.status, 413);
    assert_eq!(class(&r.json()), "envelope.too_large");
    assert!(matches!(judge(&r, None), Outcome::Failed(_)));
}

#[tokio::test]
async fn payload_envelope_problems_fail_the_invocation_with_a_named_error() {
    let app = App::start(TARGETS_MIXED).await;
    let cases: &[(&str, &str, u16, &str)] = &[
        ("scheduled", "not json at all", 400, "envelope.invalid"),
        ("scheduled", "null", 400, "envelope.invalid"),
        ("scheduled", "[]", 400, "envelope.invalid"),
        ("scheduled", "{\"Metadata\":{}}", 400, "envelope.invalid"),
        (
            "scheduled",
            "{\"Data\":\"oops\",\"Metadata\":{}}",
            400,
            "envelope.invalid",
        ),
        (
            "scheduled",
            "{\"Data\":{},\"Metadata\":{}}",
            400,
            "envelope.missing_binding",
        ),
        (
            "probe",
            "{\"Data\":{},\"Metadata\":{}}",
            400,
            "envelope.missing_binding",
        ),
        (
            "probe",
            "{\"Data\":{\"req\":{\"Url\":\"http://x/api/probe\",\"Method\":\"G T\"}},\"Metadata\":{}}",
            400,
            "envelope.invalid",
        ),
        (
            "NoSuchFunction",
            "{\"Data\":{\"req\":{\"Url\":\"http://x/\",\"Method\":\"GET\"}},\"Metadata\":{}}",
            404,
            "handler.unknown_function",
        ),
        ("", "{}", 404, "handler.not_found"),
    ];
    for (function, body, status, want) in cases {
        let r = app.host.post_payload(function, body, IID).await;
        assert_eq!(r.status, *status, "/{function} {body}: {}", r.text());
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        assert_eq!(class(&r.json()), *want, "/{function} {body}");
        // The host sees a failed invocation, which is the point: never a hang.
        assert!(
            matches!(judge(&r, None), Outcome::Failed(_)),
            "/{function} {body}"
        );
    }
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn payload_body_over_the_limit_is_413_for_the_caller() {
    let app = App::start(TARGETS_MIXED).await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let (resp, outcome) = app
        .host
        .payload_http(
            "probe",
            &Caller::post("/api/probe", "application/json", big.as_bytes()),
            IID,
            None,
        )
        .await;
    assert_eq!(resp.status, 200, "the envelope itself was fine");
    let (_, _, _, c) = outcome.succeeded();
    let c = c.unwrap();
    assert_eq!(c.status, 413);
    assert_eq!(class(&c.json()), "request.too_large");
}

#[tokio::test]
async fn wrong_methods_and_paths() {
    let app = App::start(TARGETS_MIXED).await;
    let put = Caller {
        method: "PUT",
        ..Caller::post("/api/probe", "application/json", b"{}")
    };
    let r = app.host.forward(&put, IID, None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    assert_eq!(class(&r.json()), "request.method");
    let r = send(
        app.host.addr,
        "POST /api/health HTTP/1.1\r\nHost: x",
        Some(b"{}"),
        Framing::ContentLength,
    )
    .await;
    assert_eq!(r.status, 405);
    for path in ["/api/nope", "/a/b/c", "/favicon.ico"] {
        let r = send(
            app.host.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x"),
            None,
            Framing::ContentLength,
        )
        .await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(class(&r.json()), "handler.not_found", "{path}");
    }
}

#[tokio::test]
async fn no_targets_configured_is_not_a_green_result() {
    let app = App::start("").await;
    let r = app
        .host
        .forward(&Caller::get("/api/probe?code=KEY"), IID, None)
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(class(&r.json()), "config.no_targets");
    let (_, outcome) = app
        .host
        .timer(
            "scheduled",
            "timer",
            support::host::TimerStatus::Steady,
            IID,
        )
        .await;
    let (logs, _, rv, _) = outcome.succeeded();
    assert!(logs[0].contains("no targets configured"), "{logs:?}");
    assert!(rv.as_str().unwrap().contains("no targets"));
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn garbage_on_the_socket_does_not_take_the_server_down() {
    let app = App::start(TARGETS_MIXED).await;
    for junk in [
        &b"\x00\x01\x02 not http\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /probe HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(app.host.addr).await.unwrap();
        let _ = s.write_all(junk).await;
        let _ = s.shutdown().await;
        drop(s);
    }
    let (r, _) = app.host.wait_ready().await;
    assert_eq!(r.status, 200);
    let r = app
        .host
        .forward(&Caller::get("/api/probe?name=api"), IID, None)
        .await;
    assert_eq!(r.status, 200);
}
