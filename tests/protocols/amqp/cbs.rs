//! CBS put-token against a contract stub (no real CBS peer runs here: RabbitMQ 3.10 has
//! no `$cbs` node).

use routeproof::probe::amqp::codec::{self, FRAME_AMQP, FRAME_SASL, Value, code};
use routeproof::probe::amqp::{Credentials, ErrorKind, Options, Phase};
use routeproof::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{no_secret, run};
use crate::msg_peers;

/// What the CBS stub saw and how it answers the put-token.
#[derive(Clone, Copy)]
pub(crate) enum CbsAnswer {
    Status(i32, &'static str),
    CloseWith(&'static str, &'static str),
    /// 202 for a put-token of type `jwt` carrying exactly this token, else 401 (as CBS
    /// answers a token it cannot validate).
    Jwt(&'static str),
}

/// A Service Bus-shaped AMQP peer for CBS (no real one runs here; RabbitMQ 3.10 has no
/// `$cbs` node). Its answers follow the OASIS AMQP CBS 1.0 draft and Microsoft's "AMQP
/// 1.0 in Azure Service Bus and Event Hubs protocol guide" (claims-based authorization:
/// put-token request with `operation`, `type`, `name`; response `status-code` 202).
pub(crate) async fn cbs_stub(
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
                        let answer = match answer {
                            CbsAnswer::Jwt(want) => {
                                let app = sections
                                    .iter()
                                    .filter_map(Value::as_described)
                                    .find(|(c, _)| *c == code::APPLICATION_PROPERTIES);
                                let token = sections
                                    .iter()
                                    .filter_map(Value::as_described)
                                    .find(|(c, _)| *c == code::AMQP_VALUE);
                                let jwt =
                                    app.and_then(|(_, a)| a.get("type")?.as_str()) == Some("jwt");
                                match token.and_then(|(_, b)| b.as_str()) {
                                    Some(t) if jwt && t == want => {
                                        CbsAnswer::Status(202, "Accepted")
                                    }
                                    _ => CbsAnswer::Status(
                                        401,
                                        "InvalidSignature: The token has an invalid signature.",
                                    ),
                                }
                            }
                            other => other,
                        };
                        let _ = seen.send(sections);
                        match answer {
                            CbsAnswer::Jwt(_) => return,
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
