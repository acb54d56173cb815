//! AMQP 1.0 probe against RabbitMQ 3.10 (`rabbitmq_amqp1_0`, plain and TLS listeners),
//! over WebSockets through a loopback bridge, and against fault listeners and a CBS
//! contract stub.

use std::time::Duration;

use routeproof::probe::amqp::{self, Credentials, ErrorKind, Options, Phase, Tls, WebSocket};
use routeproof::secret::Secret;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::msg_peers::{self, connect};

pub(crate) mod cbs;

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Runs the probe with a safety net: a probe that ignored its deadline fails here
/// instead of hanging the test binary.
async fn run(stream: TcpStream, opts: &Options, secs: u64) -> amqp::Outcome {
    tokio::time::timeout(
        Duration::from_secs(secs + 10),
        amqp::probe(stream, opts, deadline(secs)),
    )
    .await
    .expect("the probe returned within its deadline")
}

fn tls(r: &msg_peers::Rabbit) -> Tls {
    Tls {
        config: r.client_tls.clone(),
        server_name: "localhost".try_into().expect("name"),
    }
}

fn no_secret(out: &amqp::Outcome, planted: &str) {
    let json = serde_json::to_string(out).expect("json");
    let dbg = format!("{out:?}");
    assert!(
        !json.contains(planted) && !dbg.contains(planted),
        "secret leaked: {json}"
    );
}

fn phases(out: &amqp::Outcome) -> Vec<Phase> {
    out.evidence.timings.iter().map(|t| t.phase).collect()
}

#[tokio::test]
async fn rabbitmq_sasl_header_and_mechanisms_plain_and_tls() {
    let Some(r) = msg_peers::rabbit("rabbitmq_sasl_header_and_mechanisms_plain_and_tls") else {
        return;
    };
    let out = run(connect(r.plain).await, &Options::new("localhost"), 10).await;
    assert!(out.ok(), "{out:?}");
    let ev = &out.evidence;
    assert!(ev.header_echoed);
    assert_eq!(ev.header.as_deref(), Some("AMQP 3.1.0.0"));
    assert_eq!(ev.mechanisms, ["ANONYMOUS", "PLAIN", "AMQPLAIN"]);
    assert_eq!(ev.transport, "tcp");
    assert_eq!(phases(&out), [Phase::SaslHeader, Phase::SaslMechanisms]);

    let mut o = Options::new("localhost");
    o.tls = Some(tls(r));
    let out = run(connect(r.tls).await, &o, 10).await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.evidence.transport, "tls");
    assert!(
        out.evidence
            .tls_version
            .as_deref()
            .is_some_and(|v| v.contains("TLS")),
        "{out:?}"
    );
    assert_eq!(out.evidence.mechanisms, ["ANONYMOUS", "PLAIN", "AMQPLAIN"]);
}

#[tokio::test]
async fn rabbitmq_plain_login_opens_the_connection() {
    let Some(r) = msg_peers::rabbit("rabbitmq_plain_login_opens_the_connection") else {
        return;
    };
    let mut o = Options::new("localhost");
    o.tls = Some(tls(r));
    o.credentials = Credentials::Plain {
        user: "guest".into(),
        password: Secret::new("guest"),
    };
    let out = run(connect(r.tls).await, &o, 15).await;
    assert!(out.ok(), "{out:?}");
    let ev = &out.evidence;
    assert_eq!(ev.mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(ev.sasl_outcome, Some(0));
    assert!(ev.amqp_header_echoed);
    assert!(
        ev.container_id.as_deref().is_some_and(|c| !c.is_empty()),
        "{ev:?}"
    );
    assert_eq!(
        ev.properties.get("product").map(String::as_str),
        Some("RabbitMQ")
    );
    assert_eq!(
        ev.properties.get("version").map(String::as_str),
        Some("3.10.8")
    );
    assert_eq!(
        phases(&out),
        [
            Phase::Tls,
            Phase::SaslHeader,
            Phase::SaslMechanisms,
            Phase::SaslOutcome,
            Phase::AmqpHeader,
            Phase::Open,
            Phase::Close
        ]
    );
}

#[tokio::test]
async fn rabbitmq_wrong_password_is_auth_failed_and_never_printed() {
    let Some(r) = msg_peers::rabbit("rabbitmq_wrong_password_is_auth_failed_and_never_printed")
    else {
        return;
    };
    let planted = "PLANTED-amqp-pass-9f3";
    let mut o = Options::new("localhost");
    o.credentials = Credentials::Plain {
        user: "guest".into(),
        password: Secret::new(planted),
    };
    let out = run(connect(r.plain).await, &o, 15).await;
    let f = out.error.as_ref().expect("refused");
    assert_eq!(f.kind, ErrorKind::AuthFailed, "{out:?}");
    assert_eq!(f.phase, Phase::SaslOutcome);
    assert_eq!(f.kind.class(), "amqp.auth_failed");
    assert!(f.message.contains("sasl-outcome code 1"), "{}", f.message);
    assert_eq!(out.evidence.sasl_outcome, Some(1));
    no_secret(&out, planted);
    assert!(!format!("{o:?}").contains(planted));
}

#[tokio::test]
async fn rabbitmq_sas_key_and_connection_string_go_through_plain() {
    let Some(r) = msg_peers::rabbit("rabbitmq_sas_key_and_connection_string_go_through_plain")
    else {
        return;
    };
    // RabbitMQ knows guest/guest; the SAS shapes map to PLAIN exactly as Service Bus takes them.
    let mut o = Options::new("localhost");
    o.credentials = Credentials::SasKey {
        key_name: "guest".into(),
        key: Secret::new("guest"),
    };
    let out = run(connect(r.plain).await, &o, 15).await;
    assert!(out.ok(), "{out:?}");
    let planted = "PLANTED-sas-key=";
    o.credentials = Credentials::ConnectionString(Secret::new(format!(
        "Endpoint=sb://localhost/;SharedAccessKeyName=guest;SharedAccessKey={planted}"
    )));
    let out = run(connect(r.plain).await, &o, 15).await;
    assert_eq!(
        out.error.as_ref().map(|f| f.kind),
        Some(ErrorKind::AuthFailed),
        "{out:?}"
    );
    no_secret(&out, planted);
    o.credentials =
        Credentials::ConnectionString(Secret::new("Endpoint=sb://localhost/;EntityPath=q"));
    let out = run(connect(r.plain).await, &o, 15).await;
    assert_eq!(
        out.error.as_ref().map(|f| f.kind),
        Some(ErrorKind::BadCredentials),
        "{out:?}"
    );
}

#[tokio::test]
async fn rabbitmq_tls_options_on_the_plain_port_are_tls_refused() {
    let Some(r) = msg_peers::rabbit("rabbitmq_tls_options_on_the_plain_port_are_tls_refused")
    else {
        return;
    };
    let mut o = Options::new("localhost");
    o.tls = Some(tls(r));
    let out = run(connect(r.plain).await, &o, 10).await;
    let f = out.error.as_ref().expect("refused");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::TlsRefused, Phase::Tls),
        "{out:?}"
    );
    assert!(!f.kind.answered());
}

#[tokio::test]
async fn websocket_transport_through_a_bridge_to_rabbitmq() {
    let Some(r) = msg_peers::rabbit("websocket_transport_through_a_bridge_to_rabbitmq") else {
        return;
    };
    let bridge = msg_peers::ws_bridge(r.plain).await;
    let mut o = Options::new("localhost");
    o.websocket = Some(WebSocket::default());
    o.credentials = Credentials::Plain {
        user: "guest".into(),
        password: Secret::new("guest"),
    };
    let out = run(TcpStream::connect(bridge).await.expect("bridge"), &o, 15).await;
    assert!(out.ok(), "{out:?}");
    let ev = &out.evidence;
    assert_eq!(ev.transport, "websocket");
    let ws = ev.websocket.as_ref().expect("ws evidence");
    assert_eq!(
        (ws.status, ws.subprotocol.as_deref()),
        (101, Some("AMQPWSB10"))
    );
    assert_eq!(ev.mechanisms, ["ANONYMOUS", "PLAIN", "AMQPLAIN"]);
    assert_eq!(
        ev.properties.get("product").map(String::as_str),
        Some("RabbitMQ")
    );
    assert_eq!(phases(&out)[0], Phase::WebSocket);
}

#[tokio::test]
async fn websocket_upgrade_refused_by_an_http_server() {
    let http = msg_peers::http_server().await;
    let mut o = Options::new("localhost");
    o.websocket = Some(WebSocket::default());
    let out = run(TcpStream::connect(http).await.expect("http"), &o, 10).await;
    let f = out.error.as_ref().expect("refused");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::WebSocketRefused, Phase::WebSocket),
        "{out:?}"
    );
    assert!(
        f.message.contains("404") && f.message.contains("/$servicebus/websocket"),
        "{}",
        f.message
    );
    assert!(out.evidence.websocket.is_none());
}

#[tokio::test]
async fn http_server_is_not_this_protocol() {
    let http = msg_peers::http_server().await;
    let out = run(
        TcpStream::connect(http).await.expect("http"),
        &Options::new("x"),
        10,
    )
    .await;
    let f = out.error.as_ref().expect("not AMQP");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::NotThisProtocol, Phase::SaslHeader),
        "{out:?}"
    );
    assert!(
        f.message.contains("an HTTP server answered"),
        "{}",
        f.message
    );
    assert_eq!(f.kind.class(), "amqp.not_this_protocol");
    assert!(!out.evidence.header_echoed);
}

#[tokio::test]
async fn amqp_0_9_1_answer_is_another_version() {
    // RabbitMQ's answer to a header it does not take (seen from the test peer).
    let addr = msg_peers::answer_then_close(b"AMQP\x00\x00\x09\x01").await;
    let out = run(
        TcpStream::connect(addr).await.expect("c"),
        &Options::new("x"),
        10,
    )
    .await;
    assert_eq!(
        out.error.as_ref().map(|f| f.kind),
        Some(ErrorKind::OtherAmqpVersion),
        "{out:?}"
    );
    assert_eq!(out.evidence.header.as_deref(), Some("AMQP 0.0.9.1"));
}

#[tokio::test]
async fn server_closing_mid_handshake_is_closed() {
    // Echoes the SASL header, then closes before sasl-mechanisms.
    let addr = msg_peers::answer_then_close(b"AMQP\x03\x01\x00\x00").await;
    let out = run(
        TcpStream::connect(addr).await.expect("c"),
        &Options::new("x"),
        10,
    )
    .await;
    let f = out.error.as_ref().expect("closed");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::Closed, Phase::SaslMechanisms),
        "{out:?}"
    );
    assert!(out.evidence.header_echoed);
}

#[tokio::test]
async fn stalled_server_honours_the_deadline() {
    let addr = msg_peers::stall_server().await;
    let s = TcpStream::connect(addr).await.expect("c");
    let d = deadline(1);
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        amqp::probe(s, &Options::new("x"), d),
    )
    .await
    .expect("returned");
    let f = out.error.as_ref().expect("timeout");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::Timeout, Phase::SaslHeader),
        "{out:?}"
    );
    assert!(Instant::now() >= d, "gave up before the deadline");
    assert!(f.message.contains("nothing answered"), "{}", f.message);
}
