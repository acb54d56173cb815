//! AMQP 1.0 probe against RabbitMQ 3.10 (`rabbitmq_amqp1_0`, plain and TLS listeners),
//! over WebSockets through a loopback bridge, and against fault listeners and a CBS
//! contract stub.

use std::time::Duration;

use routeproof::probe::amqp::codec::{self, FRAME_AMQP, FRAME_SASL, Value, code};
use routeproof::probe::amqp::{self, Credentials, ErrorKind, Options, Phase, Tls, WebSocket};
use routeproof::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::msg_peers::{self, connect};

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
    // RabbitMQ's answer to a header it does not take (PEERS-VERIFIED section 3).
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

/// What the CBS stub saw and how it answers the put-token.
#[derive(Clone, Copy)]
enum CbsAnswer {
    Status(i32, &'static str),
    CloseWith(&'static str, &'static str),
}

/// A Service Bus-shaped AMQP peer for CBS (no real one runs here; RabbitMQ 3.10 has no
/// `$cbs` node). Its answers follow the OASIS AMQP CBS 1.0 draft and Microsoft's "AMQP
/// 1.0 in Azure Service Bus and Event Hubs protocol guide" (claims-based authorization:
/// put-token request with `operation`, `type`, `name`; response `status-code` 202).
async fn cbs_stub(
    answer: CbsAnswer,
    seen: tokio::sync::mpsc::UnboundedSender<Vec<Value>>,
) -> std::net::SocketAddr {
    msg_peers::listener(move |mut s| {
        let seen = seen.clone();
        async move {
            let mut h = [0u8; 8];
            if s.read_exact(&mut h).await.is_err() {
                return;
            }
            let _ = s.write_all(&h).await;
            let mechs = Value::described(
                code::SASL_MECHANISMS,
                Value::List(vec![Value::Array(vec![
                    Value::sym("MSSBCBS"),
                    Value::sym("PLAIN"),
                    Value::sym("ANONYMOUS"),
                    Value::sym("EXTERNAL"),
                ])]),
            );
            let _ = s
                .write_all(&codec::encode_frame(FRAME_SASL, 0, &mechs, &[]))
                .await;
            let Some(init) = read_frame(&mut s).await else {
                return;
            };
            let _ = seen.send(vec![init.performative.clone().unwrap_or(Value::Null)]);
            let outcome = Value::described(code::SASL_OUTCOME, Value::List(vec![Value::Ubyte(0)]));
            let _ = s
                .write_all(&codec::encode_frame(FRAME_SASL, 0, &outcome, &[]))
                .await;
            let _ = s.read_exact(&mut h).await;
            let _ = s.write_all(&h).await;
            loop {
                let Some(f) = read_frame(&mut s).await else {
                    return;
                };
                let Some((c, body)) = f.performative.as_ref().and_then(Value::as_described) else {
                    continue;
                };
                let reply = |p: Value| codec::encode_frame(FRAME_AMQP, 0, &p, &[]);
                match c {
                    code::OPEN => {
                        let open = Value::described(
                            code::OPEN,
                            Value::List(vec![
                                Value::str("stub-container"),
                                Value::Null,
                                Value::Uint(262144),
                                Value::Ushort(4999),
                            ]),
                        );
                        let _ = s.write_all(&reply(open)).await;
                    }
                    code::BEGIN => {
                        let b = Value::described(
                            code::BEGIN,
                            Value::List(vec![
                                Value::Ushort(0),
                                Value::Uint(1),
                                Value::Uint(5000),
                                Value::Uint(5000),
                            ]),
                        );
                        let _ = s.write_all(&reply(b)).await;
                    }
                    code::ATTACH => {
                        let mut fields = body.as_list().to_vec();
                        // Echo the attach with the opposite role, as a peer does.
                        let role = matches!(fields.get(2), Some(Value::Bool(true)));
                        fields[2] = Value::Bool(!role);
                        let _ = s
                            .write_all(&reply(Value::described(code::ATTACH, Value::List(fields))))
                            .await;
                        if !role {
                            let flow = Value::described(
                                code::FLOW,
                                Value::List(vec![
                                    Value::Uint(0),
                                    Value::Uint(5000),
                                    Value::Uint(1),
                                    Value::Uint(5000),
                                    Value::Uint(0),
                                    Value::Uint(0),
                                    Value::Uint(10),
                                ]),
                            );
                            let _ = s.write_all(&reply(flow)).await;
                        }
                    }
                    code::TRANSFER => {
                        let sections = codec::decode_sections(&f.payload).unwrap_or_default();
                        let _ = seen.send(sections);
                        match answer {
                            CbsAnswer::Status(status, desc) => {
                                let mut payload = Vec::new();
                                Value::described(
                                    code::PROPERTIES,
                                    Value::List(vec![
                                        Value::Null,
                                        Value::Null,
                                        Value::Null,
                                        Value::Null,
                                        Value::Null,
                                        Value::str("routeproof-put-token-1"),
                                    ]),
                                )
                                .encode(&mut payload);
                                Value::described(
                                    code::APPLICATION_PROPERTIES,
                                    Value::Map(vec![
                                        (Value::str("status-code"), Value::Int(status)),
                                        (Value::str("status-description"), Value::str(desc)),
                                    ]),
                                )
                                .encode(&mut payload);
                                let t = Value::described(
                                    code::TRANSFER,
                                    Value::List(vec![
                                        Value::Uint(1),
                                        Value::Uint(0),
                                        Value::Binary(vec![1]),
                                        Value::Uint(0),
                                        Value::Bool(true),
                                    ]),
                                );
                                let _ = s
                                    .write_all(&codec::encode_frame(FRAME_AMQP, 0, &t, &payload))
                                    .await;
                            }
                            CbsAnswer::CloseWith(cond, desc) => {
                                let e = Value::described(
                                    code::ERROR,
                                    Value::List(vec![Value::sym(cond), Value::str(desc)]),
                                );
                                let _ = s
                                    .write_all(&reply(Value::described(
                                        code::CLOSE,
                                        Value::List(vec![e]),
                                    )))
                                    .await;
                                return;
                            }
                        }
                    }
                    code::CLOSE => {
                        let _ = s
                            .write_all(&reply(Value::described(code::CLOSE, Value::List(vec![]))))
                            .await;
                        return;
                    }
                    _ => {}
                }
            }
        }
    })
    .await
}

async fn read_frame(s: &mut TcpStream) -> Option<codec::Frame> {
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).await.ok()?;
        let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let mut rest = vec![0u8; size.checked_sub(8)?];
        s.read_exact(&mut rest).await.ok()?;
        let f = codec::decode_frame(h, &rest).ok()?;
        if f.performative.is_some() {
            return Some(f);
        }
    }
}

#[tokio::test]
async fn cbs_put_token_carries_the_token_and_reads_the_status() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = cbs_stub(CbsAnswer::Status(202, "Accepted"), tx).await;
    let planted = "eyJ0eXAiOiJKV1QifQ.PLANTED-entra-token.sig";
    let mut o = Options::new("ns.servicebus.windows.net");
    o.entity = Some("orders".into());
    o.credentials = Credentials::Bearer(Secret::new(planted));
    let out = run(TcpStream::connect(addr).await.expect("c"), &o, 10).await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.evidence.mechanism.as_deref(), Some("ANONYMOUS"));
    assert_eq!(out.evidence.container_id.as_deref(), Some("stub-container"));
    assert_eq!(out.evidence.max_frame_size, Some(262144));
    let cbs = out.evidence.cbs.as_ref().expect("cbs evidence");
    assert_eq!(
        (cbs.status_code, cbs.token_type.as_str()),
        (Some(202), "jwt")
    );
    assert_eq!(cbs.audience, "amqp://ns.servicebus.windows.net/orders");
    no_secret(&out, planted);

    // What reached the listener: sasl-init ANONYMOUS, then the put-token message.
    let init = rx.recv().await.expect("sasl-init");
    let (c, body) = init[0].as_described().expect("described");
    assert_eq!(
        (c, body.field(0).as_str()),
        (code::SASL_INIT, Some("ANONYMOUS"))
    );
    let msg = rx.recv().await.expect("put-token");
    let app = msg
        .iter()
        .filter_map(Value::as_described)
        .find(|(c, _)| *c == code::APPLICATION_PROPERTIES)
        .expect("app props")
        .1;
    assert_eq!(
        app.get("operation").and_then(Value::as_str),
        Some("put-token")
    );
    assert_eq!(app.get("type").and_then(Value::as_str), Some("jwt"));
    assert_eq!(
        app.get("name").and_then(Value::as_str),
        Some("amqp://ns.servicebus.windows.net/orders")
    );
    let body = msg
        .iter()
        .filter_map(Value::as_described)
        .find(|(c, _)| *c == code::AMQP_VALUE)
        .expect("body")
        .1;
    assert_eq!(body.as_str(), Some(planted));
}

#[tokio::test]
async fn cbs_refusals_are_classified() {
    let planted = "PLANTED-token-xyz";
    let cases = [
        (
            CbsAnswer::Status(401, "ExpiredToken: The token is expired."),
            ErrorKind::TokenExpired,
            "amqp.token_expired",
        ),
        (
            CbsAnswer::Status(401, "InvalidSignature: The token has an invalid signature."),
            ErrorKind::AuthFailed,
            "amqp.auth_failed",
        ),
        (
            CbsAnswer::Status(
                401,
                "Unauthorized access. 'Listen' claim(s) are required to perform this operation.",
            ),
            ErrorKind::Forbidden,
            "amqp.forbidden",
        ),
        (
            CbsAnswer::CloseWith(
                "amqp:unauthorized-access",
                "Ip has been prevented to connect to the endpoint. For more information see: Virtual Network service endpoints",
            ),
            ErrorKind::NetworkRuleRefusal,
            "amqp.network_rule",
        ),
    ];
    for (answer, kind, class) in cases {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let addr = cbs_stub(answer, tx).await;
        let mut o = Options::new("ns.servicebus.windows.net");
        o.credentials = Credentials::Bearer(Secret::new(planted));
        let out = run(TcpStream::connect(addr).await.expect("c"), &o, 10).await;
        let f = out.error.as_ref().expect("refused");
        assert_eq!(
            (f.kind, f.phase, f.kind.class()),
            (kind, Phase::Cbs, class),
            "{out:?}"
        );
        assert!(f.kind.answered());
        no_secret(&out, planted);
    }
}
