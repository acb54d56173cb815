//! Kafka probe against Tansu (Kafka-compatible, not Apache Kafka), a SASL PLAIN contract
//! stub (Tansu's `--authentication` offers SCRAM and OAUTHBEARER, not PLAIN) and fault
//! listeners.

use std::time::Duration;

use routeproof::probe::kafka::{self, Credentials, ErrorKind, Options, Phase};
use routeproof::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::msg_peers::{self, connect};

pub(crate) async fn run(stream: TcpStream, opts: &Options, secs: u64) -> kafka::Outcome {
    let d = Instant::now() + Duration::from_secs(secs);
    tokio::time::timeout(
        Duration::from_secs(secs + 10),
        kafka::probe(stream, opts, d),
    )
    .await
    .expect("the probe returned within its deadline")
}

pub(crate) fn no_secret(out: &kafka::Outcome, planted: &str) {
    let json = serde_json::to_string(out).expect("json");
    assert!(
        !json.contains(planted) && !format!("{out:?}").contains(planted),
        "secret leaked: {json}"
    );
}

#[tokio::test]
async fn tansu_answers_api_versions() {
    let Some(t) = msg_peers::tansu("tansu_answers_api_versions", false) else {
        return;
    };
    let out = run(connect(t.port).await, &Options::default(), 10).await;
    assert!(out.ok(), "{out:?}");
    let ev = &out.evidence;
    assert_eq!(ev.api_versions_error, Some(0));
    assert!(ev.apis.len() >= 10, "{ev:?}");
    assert_eq!(ev.api_key_range.map(|r| r.0), Some(0));
    let v = ev.api(kafka::API_VERSIONS).expect("ApiVersions listed");
    assert_eq!(v.min, 0);
    assert!(
        ev.api(kafka::API_SASL_HANDSHAKE).is_some()
            && ev.api(kafka::API_SASL_AUTHENTICATE).is_some()
    );
    assert_eq!(
        ev.timings.iter().map(|t| t.phase).collect::<Vec<_>>(),
        [Phase::ApiVersions]
    );
}

#[tokio::test]
async fn tansu_refuses_a_bad_oauthbearer_token() {
    let Some(t) = msg_peers::tansu("tansu_refuses_a_bad_oauthbearer_token", true) else {
        return;
    };
    let planted = "eyJhbGciOiJub25lIn0.PLANTED-kafka-token.";
    let o = Options {
        credentials: Credentials::Bearer(Secret::new(planted)),
        ..Options::default()
    };
    let out = run(connect(t.port).await, &o, 10).await;
    let f = out.error.as_ref().expect("refused");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::AuthFailed, Phase::SaslAuthenticate),
        "{out:?}"
    );
    assert_eq!(f.kind.class(), "kafka.auth_failed");
    assert_eq!(out.evidence.mechanisms, ["OAUTHBEARER"]);
    assert_eq!(out.evidence.broker_error_codes, [58]);
    no_secret(&out, planted);
}

#[tokio::test]
async fn tansu_closes_on_plain_which_it_does_not_offer() {
    // Tansu 0.6 with --authentication drops the connection on a PLAIN handshake
    // (its log: NoSharedMechanism) where Apache Kafka answers error 33.
    let Some(t) = msg_peers::tansu("tansu_closes_on_plain_which_it_does_not_offer", true) else {
        return;
    };
    let o = Options {
        credentials: Credentials::Plain {
            user: "u".into(),
            password: Secret::new("PLANTED-pw"),
        },
        ..Options::default()
    };
    let out = run(connect(t.port).await, &o, 10).await;
    let f = out.error.as_ref().expect("closed");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::Closed, Phase::SaslHandshake),
        "{out:?}"
    );
    no_secret(&out, "PLANTED-pw");
}

/// An Event Hubs-shaped Kafka peer for SASL PLAIN: ApiVersions v0, SaslHandshake v1,
/// SaslAuthenticate v1, Metadata v1, per the Apache Kafka protocol guide; Event Hubs'
/// `$ConnectionString` convention from Microsoft's "Use Azure Event Hubs from Apache
/// Kafka applications" (sasl.jaas.config username `$ConnectionString`).
pub(crate) async fn plain_stub(
    auth_error: i16,
    seen: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
) -> std::net::SocketAddr {
    msg_peers::listener(move |mut s| {
        let seen = seen.clone();
        async move {
            loop {
                let mut size = [0u8; 4];
                if s.read_exact(&mut size).await.is_err() {
                    return;
                }
                let mut req = vec![0u8; u32::from_be_bytes(size) as usize];
                if s.read_exact(&mut req).await.is_err() {
                    return;
                }
                let key = i16::from_be_bytes([req[0], req[1]]);
                let corr = &req[4..8];
                let cid_len = u16::from_be_bytes([req[8], req[9]]) as usize;
                let body = req[10 + cid_len..].to_vec();
                let mut resp = corr.to_vec();
                match key {
                    18 => {
                        resp.extend(0i16.to_be_bytes());
                        let apis: [(i16, i16, i16); 4] =
                            [(3, 0, 12), (17, 0, 1), (18, 0, 3), (36, 0, 2)];
                        resp.extend((apis.len() as i32).to_be_bytes());
                        for (k, lo, hi) in apis {
                            resp.extend(k.to_be_bytes());
                            resp.extend(lo.to_be_bytes());
                            resp.extend(hi.to_be_bytes());
                        }
                    }
                    17 => {
                        resp.extend(0i16.to_be_bytes());
                        resp.extend(1i32.to_be_bytes());
                        resp.extend(5i16.to_be_bytes());
                        resp.extend(b"PLAIN");
                    }
                    36 => {
                        let n = i32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
                        let _ = seen.send(body[4..4 + n].to_vec());
                        resp.extend(auth_error.to_be_bytes());
                        if auth_error == 0 {
                            resp.extend((-1i16).to_be_bytes());
                        } else {
                            let m = b"Invalid SAS token: the signature does not match";
                            resp.extend((m.len() as i16).to_be_bytes());
                            resp.extend(m);
                        }
                        resp.extend(0i32.to_be_bytes());
                        resp.extend(3_600_000i64.to_be_bytes());
                    }
                    3 => {
                        resp.extend(1i32.to_be_bytes());
                        resp.extend(0i32.to_be_bytes());
                        let h = b"ns.servicebus.windows.net";
                        resp.extend((h.len() as i16).to_be_bytes());
                        resp.extend(h);
                        resp.extend(9093i32.to_be_bytes());
                        resp.extend((-1i16).to_be_bytes());
                        resp.extend(0i32.to_be_bytes());
                        resp.extend(0i32.to_be_bytes());
                    }
                    _ => return,
                }
                let mut out = (resp.len() as u32).to_be_bytes().to_vec();
                out.extend(resp);
                if s.write_all(&out).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn connection_string_login_sends_dollar_connection_string() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = plain_stub(0, tx).await;
    let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=PLANTED-kafka-sas=";
    let o = Options {
        credentials: Credentials::ConnectionString(Secret::new(cs)),
        ..Options::default()
    };
    let out = run(TcpStream::connect(addr).await.expect("c"), &o, 10).await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.evidence.mechanisms, ["PLAIN"]);
    assert_eq!(out.evidence.session_lifetime_ms, Some(3_600_000));
    assert_eq!(out.evidence.brokers, ["ns.servicebus.windows.net:9093"]);
    assert_eq!(out.evidence.controller_id, Some(0));
    let auth = rx.recv().await.expect("SaslAuthenticate bytes");
    assert_eq!(
        auth,
        [b"\0$ConnectionString\0".as_slice(), cs.as_bytes()].concat()
    );
    no_secret(&out, "PLANTED-kafka-sas");
}

#[tokio::test]
async fn refused_connection_string_is_auth_failed() {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = plain_stub(58, tx).await;
    let o = Options {
        credentials: Credentials::Plain {
            user: "$ConnectionString".into(),
            password: Secret::new(
                "Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=PLANTED-2",
            ),
        },
        ..Options::default()
    };
    let out = run(TcpStream::connect(addr).await.expect("c"), &o, 10).await;
    let f = out.error.as_ref().expect("refused");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::AuthFailed, Phase::SaslAuthenticate),
        "{out:?}"
    );
    assert!(
        f.message.contains("error 58") && f.message.contains("Invalid SAS token"),
        "{}",
        f.message
    );
    no_secret(&out, "PLANTED-2");
}

#[tokio::test]
async fn http_server_is_not_kafka() {
    let http = msg_peers::http_server().await;
    let out = run(
        TcpStream::connect(http).await.expect("c"),
        &Options::default(),
        10,
    )
    .await;
    let f = out.error.as_ref().expect("not Kafka");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::NotThisProtocol, Phase::ApiVersions),
        "{out:?}"
    );
    assert!(f.message.contains("HTTP"), "{}", f.message);
    assert_eq!(f.kind.class(), "kafka.not_this_protocol");
}

#[tokio::test]
async fn amqp_listener_is_not_kafka_and_closing_is_closed() {
    let amqp = msg_peers::answer_then_close(b"AMQP\x03\x01\x00\x00").await;
    let out = run(
        TcpStream::connect(amqp).await.expect("c"),
        &Options::default(),
        10,
    )
    .await;
    assert_eq!(
        out.error.as_ref().map(|f| f.kind),
        Some(ErrorKind::NotThisProtocol),
        "{out:?}"
    );
    let closer = msg_peers::answer_then_close(b"").await;
    let out = run(
        TcpStream::connect(closer).await.expect("c"),
        &Options::default(),
        10,
    )
    .await;
    assert_eq!(
        out.error.as_ref().map(|f| (f.kind, f.phase)),
        Some((ErrorKind::Closed, Phase::ApiVersions)),
        "{out:?}"
    );
}

#[tokio::test]
async fn stalled_broker_honours_the_deadline() {
    let addr = msg_peers::stall_server().await;
    let d = Instant::now() + Duration::from_secs(1);
    let s = TcpStream::connect(addr).await.expect("c");
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        kafka::probe(s, &Options::default(), d),
    )
    .await
    .expect("returned");
    assert_eq!(
        out.error.as_ref().map(|f| (f.kind, f.phase)),
        Some((ErrorKind::Timeout, Phase::ApiVersions)),
        "{out:?}"
    );
    assert!(Instant::now() >= d);
}

#[tokio::test]
async fn tansu_behind_tls_answers_api_versions_and_plain_tcp_is_tls_refused() {
    let Some(t) = msg_peers::tansu(
        "tansu_behind_tls_answers_api_versions_and_plain_tcp_is_tls_refused",
        false,
    ) else {
        return;
    };
    let (addr, client) = msg_peers::tls_proxy(t.port).await;
    let o = Options {
        tls: Some(routeproof::probe::amqp::Tls {
            config: client,
            server_name: "localhost".try_into().expect("name"),
        }),
        ..Options::default()
    };
    let out = run(TcpStream::connect(addr).await.expect("c"), &o, 10).await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.evidence.transport, "tls");
    assert_eq!(
        out.evidence
            .timings
            .iter()
            .map(|t| t.phase)
            .collect::<Vec<_>>(),
        [Phase::Tls, Phase::ApiVersions]
    );
    assert_eq!(out.evidence.api_versions_error, Some(0));
    // The same TLS options against Tansu's plain port: Tansu reads the ClientHello as
    // the size of a huge Kafka request and waits for the rest, so the handshake times out.
    let out = run(connect(t.port).await, &o, 2).await;
    let f = out.error.as_ref().expect("no TLS");
    assert_eq!(
        (f.kind, f.phase),
        (ErrorKind::Timeout, Phase::Tls),
        "{out:?}"
    );
    assert!(f.message.contains("is this port TLS"), "{}", f.message);
}
