//! Claims-based security (CBS) `put-token`: the token Service Bus and Event Hubs take
//! for a Microsoft Entra identity (`type` = `jwt`) or a SAS token
//! (`servicebus.windows.net:sastoken`), sent as a request message to the `$cbs` node
//! over a sender/receiver link pair (OASIS "AMQP Claims-based Security Version 1.0";
//! Microsoft "AMQP 1.0 in Azure Service Bus and Event Hubs protocol guide", section
//! "Claims-based authorization"). The answer's `status-code` 200/202 means accepted.

use serde::Serialize;

use super::codec::{self, FRAME_AMQP, Value, code};
use super::conn::Conn;
use super::{ErrorKind, Fail, expect, fail, frame_name};

#[derive(Debug, Clone, Serialize)]
pub struct CbsEvidence {
    pub audience: String,
    pub token_type: String,
    pub status_code: Option<i64>,
    pub status_description: Option<String>,
}

const CLIENT_NODE: &str = "routeproof-cbs-client";

/// The request message: properties, application-properties and the token as an
/// amqp-value string (the CBS spec's layout).
pub fn request_message(token: &str, kind: &str, audience: &str) -> Vec<u8> {
    let mut out = Vec::new();
    // properties: [message-id, user-id, to, subject, reply-to]
    Value::described(
        code::PROPERTIES,
        Value::List(vec![
            Value::str("routeproof-put-token-1"),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::str(CLIENT_NODE),
        ]),
    )
    .encode(&mut out);
    Value::described(
        code::APPLICATION_PROPERTIES,
        Value::Map(vec![
            (Value::str("operation"), Value::str("put-token")),
            (Value::str("type"), Value::str(kind)),
            (Value::str("name"), Value::str(audience)),
        ]),
    )
    .encode(&mut out);
    Value::described(code::AMQP_VALUE, Value::str(token)).encode(&mut out);
    out
}

fn terminus(c: u64, address: &str) -> Value {
    Value::described(c, Value::List(vec![Value::str(address)]))
}

/// Begin a session, attach the `$cbs` link pair, send the token, read the status.
pub(crate) async fn put_token(
    c: &mut Conn<'_>,
    token: &str,
    kind: &str,
    audience: &str,
) -> Result<(), Fail> {
    let mut ev = CbsEvidence {
        audience: audience.to_string(),
        token_type: kind.to_string(),
        status_code: None,
        status_description: None,
    };
    let begin = Value::described(
        code::BEGIN,
        Value::List(vec![
            Value::Null,
            Value::Uint(0),
            Value::Uint(100),
            Value::Uint(100),
        ]),
    );
    c.send(FRAME_AMQP, 0, &begin, &[]).await?;
    expect(c, code::BEGIN, "begin").await?;

    // Sender (role false) to $cbs; receiver (role true) from $cbs.
    let sender = Value::described(
        code::ATTACH,
        Value::List(vec![
            Value::str("routeproof-cbs-sender"),
            Value::Uint(0),
            Value::Bool(false),
            Value::Ubyte(1),
            Value::Ubyte(0),
            terminus(code::SOURCE, CLIENT_NODE),
            terminus(code::TARGET, "$cbs"),
        ]),
    );
    let receiver = Value::described(
        code::ATTACH,
        Value::List(vec![
            Value::str("routeproof-cbs-receiver"),
            Value::Uint(1),
            Value::Bool(true),
            Value::Ubyte(1),
            Value::Ubyte(0),
            terminus(code::SOURCE, "$cbs"),
            terminus(code::TARGET, CLIENT_NODE),
        ]),
    );
    c.send(FRAME_AMQP, 0, &sender, &[]).await?;
    c.send(FRAME_AMQP, 0, &receiver, &[]).await?;
    for _ in 0..2 {
        let f = expect(c, code::ATTACH, "attach").await?;
        // A refused attach comes back with a null source or target, then a detach.
        let body = f
            .performative
            .as_ref()
            .and_then(Value::as_described)
            .map(|(_, b)| b.clone());
        if let Some(b) = body
            && b.field(5).as_described().is_none()
            && b.field(6).as_described().is_none()
        {
            return Err(c.remote(super::RemoteError {
                condition: "attach to $cbs refused".into(),
                description: None,
            }));
        }
    }
    // Credit for the response on the receiver link (handle 1).
    let flow = Value::described(
        code::FLOW,
        Value::List(vec![
            Value::Uint(0),
            Value::Uint(100),
            Value::Uint(0),
            Value::Uint(100),
            Value::Uint(1),
            Value::Uint(0),
            Value::Uint(1),
        ]),
    );
    c.send(FRAME_AMQP, 0, &flow, &[]).await?;
    let transfer = Value::described(
        code::TRANSFER,
        Value::List(vec![
            Value::Uint(0),
            Value::Uint(0),
            Value::Binary(vec![0]),
            Value::Uint(0),
            Value::Bool(true),
        ]),
    );
    let msg = request_message(token, kind, audience);
    c.send(FRAME_AMQP, 0, &transfer, &msg).await?;

    let answer = loop {
        let f = expect(c, code::TRANSFER, "transfer").await?;
        let body = f
            .performative
            .as_ref()
            .and_then(Value::as_described)
            .map(|(_, b)| b.clone())
            .unwrap_or(Value::Null);
        if body.field(0).as_u64() == Some(1) {
            break f;
        }
    };
    let sections = codec::decode_sections(&answer.payload).map_err(|e| Fail {
        kind: ErrorKind::ProtocolError,
        message: format!(
            "the CBS answer does not decode: {e} ({})",
            frame_name(&answer)
        ),
    })?;
    let props = sections
        .iter()
        .filter_map(Value::as_described)
        .find(|(d, _)| *d == code::APPLICATION_PROPERTIES)
        .map(|(_, b)| b.clone())
        .unwrap_or(Value::Null);
    let status = props
        .get("status-code")
        .or_else(|| props.get("statusCode"))
        .and_then(|v| match v {
            Value::Int(i) => Some(i64::from(*i)),
            Value::Long(i) => Some(*i),
            other => other.as_u64().and_then(|u| i64::try_from(u).ok()),
        });
    let description = props
        .get("status-description")
        .or_else(|| props.get("statusDescription"))
        .and_then(Value::as_str)
        .map(|d| c.redact(d));
    ev.status_code = status;
    ev.status_description = description.clone();
    c.ev.cbs = Some(ev);
    let d = description.unwrap_or_default();
    match status {
        Some(200 | 202) => Ok(()),
        Some(code) => {
            let kind = match code {
                401 if super::classify("", &d) == ErrorKind::TokenExpired => {
                    ErrorKind::TokenExpired
                }
                401 => super::classify("amqp:unauthorized-access", &d),
                403 => ErrorKind::Forbidden,
                _ => super::classify("", &d),
            };
            fail(kind, format!("CBS put-token refused: status {code}: {d}"))
        }
        None => fail(
            ErrorKind::ProtocolError,
            "the CBS answer has no status-code",
        ),
    }
}
