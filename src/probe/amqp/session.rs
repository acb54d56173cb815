//! The AMQP exchange itself: SASL (header, mechanisms, init, outcome), the AMQP header,
//! `open`, CBS when the credential is a token, and `close`; plus how a server's AMQP
//! errors are classified.

use super::codec::{FRAME_AMQP, FRAME_SASL, Frame, Value, code};
use super::conn::Conn;
use super::{
    AMQP_HEADER, ConnString, Credentials, ErrorKind, Fail, NETWORK_RULE_TEXT, Options, Phase,
    RemoteError, SASL_HEADER, cbs, fail,
};

/// What the credentials ask of the login: a PLAIN identity, or a token for CBS.
enum Login {
    None,
    Plain {
        user: String,
        password: String,
    },
    Cbs {
        token: String,
        kind: &'static str,
        entity: Option<String>,
    },
}

fn login(opts: &Options) -> Result<Login, Fail> {
    Ok(match &opts.credentials {
        Credentials::None => Login::None,
        Credentials::Plain { user, password } => Login::Plain {
            user: user.clone(),
            password: password.expose().to_string(),
        },
        Credentials::SasKey { key_name, key } => Login::Plain {
            user: key_name.clone(),
            password: key.expose().to_string(),
        },
        Credentials::Bearer(t) => Login::Cbs {
            token: t.expose().to_string(),
            kind: "jwt",
            entity: None,
        },
        Credentials::ConnectionString(s) => {
            let cs = ConnString::parse(s.expose());
            match (cs.key_name, cs.key, cs.signature) {
                (_, _, Some(sig)) => Login::Cbs {
                    token: sig.expose().to_string(),
                    kind: "servicebus.windows.net:sastoken",
                    entity: cs.entity,
                },
                (Some(name), Some(key), None) => Login::Plain {
                    user: name,
                    password: key.expose().to_string(),
                },
                _ => {
                    return fail(
                        ErrorKind::BadCredentials,
                        "the connection string has neither SharedAccessKeyName with SharedAccessKey nor SharedAccessSignature",
                    );
                }
            }
        }
    })
}

pub(crate) async fn session(c: &mut Conn<'_>, opts: &Options) -> Result<(), Fail> {
    let login = login(opts)?;
    c.begin(Phase::SaslHeader);
    c.write(&SASL_HEADER).await?;
    let h = c.read_header().await?;
    if h != SASL_HEADER {
        return fail(
            ErrorKind::OtherAmqpVersion,
            format!(
                "the server answered the SASL header with {}: AMQP, but not AMQP 1.0 with SASL",
                c.ev.header.clone().unwrap_or_default()
            ),
        );
    }
    c.ev.header_echoed = true;
    c.done();

    c.begin(Phase::SaslMechanisms);
    let f = c.read_frame().await?;
    let mechs = match (
        f.kind,
        f.performative.as_ref().and_then(Value::as_described),
    ) {
        (FRAME_SASL, Some((code::SASL_MECHANISMS, body))) => body.field(0).symbols(),
        _ => {
            return fail(
                ErrorKind::ProtocolError,
                format!("expected sasl-mechanisms, got {}", frame_name(&f)),
            );
        }
    };
    c.ev.mechanisms = mechs.clone();
    c.done();

    let (mechanism, response) = match &login {
        Login::None => return Ok(()),
        Login::Plain { user, password } => {
            let mut r = vec![0u8];
            r.extend(user.as_bytes());
            r.push(0);
            r.extend(password.as_bytes());
            ("PLAIN", Some(r))
        }
        Login::Cbs { .. } => {
            if mechs.iter().any(|m| m == "ANONYMOUS") {
                ("ANONYMOUS", None)
            } else {
                ("MSSBCBS", None)
            }
        }
    };
    if !mechs.iter().any(|m| m == mechanism) {
        return fail(
            ErrorKind::Unsupported,
            format!(
                "the server does not offer SASL {mechanism} (offers {})",
                mechs.join(", ")
            ),
        );
    }
    c.ev.mechanism = Some(mechanism.into());
    c.begin(Phase::SaslOutcome);
    let init = Value::described(
        code::SASL_INIT,
        Value::List(vec![
            Value::sym(mechanism),
            response.map_or(Value::Null, Value::Binary),
            Value::str(&opts.hostname),
        ]),
    );
    c.send(FRAME_SASL, 0, &init, &[]).await?;
    let f = c.read_frame().await?;
    let outcome = match f.performative.as_ref().and_then(Value::as_described) {
        Some((code::SASL_OUTCOME, body)) => body.field(0).as_u64().unwrap_or(255),
        Some((code::SASL_CHALLENGE, _)) => {
            return fail(
                ErrorKind::Unsupported,
                format!("SASL {mechanism} got a challenge; the probe answers none"),
            );
        }
        _ => {
            return fail(
                ErrorKind::ProtocolError,
                format!("expected sasl-outcome, got {}", frame_name(&f)),
            );
        }
    };
    c.ev.sasl_outcome = Some(outcome as u8);
    match outcome {
        0 => c.done(),
        1 => {
            return fail(
                ErrorKind::AuthFailed,
                format!("SASL {mechanism} refused: sasl-outcome code 1 (auth)"),
            );
        }
        n => {
            return fail(
                ErrorKind::RemoteError,
                format!("SASL {mechanism} failed: sasl-outcome code {n} (system error)"),
            );
        }
    }

    c.begin(Phase::AmqpHeader);
    c.write(&AMQP_HEADER).await?;
    let h = c.read_header().await?;
    if h != AMQP_HEADER {
        return fail(
            ErrorKind::ProtocolError,
            format!(
                "after SASL the server sent header {}",
                c.ev.header.clone().unwrap_or_default()
            ),
        );
    }
    c.ev.header = Some("AMQP 3.1.0.0".into());
    c.ev.amqp_header_echoed = true;
    c.done();

    c.begin(Phase::Open);
    let open = Value::described(
        code::OPEN,
        Value::List(vec![
            Value::str(&format!("routeproof-{}", std::process::id())),
            Value::str(&opts.hostname),
            Value::Uint(65536),
            Value::Ushort(8),
        ]),
    );
    c.send(FRAME_AMQP, 0, &open, &[]).await?;
    let f = expect(c, code::OPEN, "open").await?;
    let body = f
        .performative
        .as_ref()
        .and_then(Value::as_described)
        .map(|(_, b)| b.clone())
        .unwrap_or(Value::Null);
    c.ev.container_id = body.field(0).as_str().map(str::to_string);
    c.ev.max_frame_size = body.field(2).as_u64();
    c.ev.channel_max = body.field(3).as_u64();
    c.ev.idle_timeout_ms = body.field(4).as_u64();
    if let Value::Map(pairs) = body.field(9) {
        for (k, v) in pairs {
            if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                let v = c.redact(v);
                c.ev.properties.insert(k.to_string(), v);
            }
        }
    }
    c.done();

    if let Login::Cbs {
        token,
        kind,
        entity,
    } = &login
    {
        c.begin(Phase::Cbs);
        let entity = entity
            .clone()
            .or_else(|| opts.entity.clone())
            .unwrap_or_default();
        let audience = opts
            .cbs_audience
            .clone()
            .unwrap_or_else(|| format!("amqp://{}/{}", opts.hostname, entity));
        cbs::put_token(c, token, kind, &audience).await?;
        c.done();
    }

    c.begin(Phase::Close);
    let close = Value::described(code::CLOSE, Value::List(Vec::new()));
    c.send(FRAME_AMQP, 0, &close, &[]).await?;
    // A close answered is tidy; one not answered costs nothing more than the deadline
    // allows, and the login is already proven.
    let _ = expect(c, code::CLOSE, "close").await;
    c.done();
    Ok(())
}

/// Waits for a performative on channel frames, classifying a `close` (or `end`/`detach`)
/// with an error on the way.
pub(crate) async fn expect(c: &mut Conn<'_>, want: u64, name: &str) -> Result<Frame, Fail> {
    loop {
        let f = c.read_frame().await?;
        let Some((code, body)) = f.performative.as_ref().and_then(Value::as_described) else {
            continue;
        };
        if code == want {
            if let Some(e) = error_of(code, body) {
                return Err(c.remote(e));
            }
            return Ok(f);
        }
        match code {
            code::CLOSE | code::END | code::DETACH => {
                let e = error_of(code, body).unwrap_or(RemoteError {
                    condition: format!("{} without an error", frame_name(&f)),
                    description: None,
                });
                return Err(c.remote(e));
            }
            _ => {
                tracing::trace!(waiting_for = name, got = code, "amqp frame skipped");
            }
        }
    }
}

/// The `error` field of a close (0), end (0), detach (2) or attach refusal.
fn error_of(code: u64, body: &Value) -> Option<RemoteError> {
    let e = match code {
        code::CLOSE | code::END => body.field(0),
        code::DETACH => body.field(2),
        _ => return None,
    };
    let (c, eb) = e.as_described()?;
    if c != code::ERROR {
        return None;
    }
    Some(RemoteError {
        condition: eb.field(0).as_str().unwrap_or("").to_string(),
        description: eb.field(1).as_str().map(str::to_string),
    })
}

impl Conn<'_> {
    /// Records a server's AMQP error and classifies it.
    pub(crate) fn remote(&mut self, mut e: RemoteError) -> Fail {
        e.description = e.description.map(|d| self.redact(&d));
        let text = format!(
            "{}{}",
            e.condition,
            e.description
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
        let kind = classify(&e.condition, e.description.as_deref().unwrap_or(""));
        self.ev.remote_error = Some(e);
        Fail {
            kind,
            message: format!("the server refused: {text}"),
        }
    }
}

/// An AMQP error condition and description → kind.
pub fn classify(condition: &str, description: &str) -> ErrorKind {
    let d = description.to_ascii_lowercase();
    if description.contains(NETWORK_RULE_TEXT) {
        ErrorKind::NetworkRuleRefusal
    } else if d.contains("expired") {
        ErrorKind::TokenExpired
    } else if d.contains("claim") {
        ErrorKind::Forbidden
    } else if condition == "amqp:unauthorized-access" {
        ErrorKind::AuthFailed
    } else {
        ErrorKind::RemoteError
    }
}

pub(crate) fn frame_name(f: &Frame) -> String {
    match f.performative.as_ref().and_then(Value::as_described) {
        Some((c, _)) => format!("performative 0x{c:02x} (frame type {})", f.kind),
        None => format!("a frame of type {} without a performative", f.kind),
    }
}
