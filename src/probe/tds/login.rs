//! LOGIN7 and the query on the connection PRELOGIN and TLS already ran on (the proven
//! one, or the redirect hop's): the requests from `login7.rs`, the answers read by
//! `tokens.rs`. No second connection, no second trust store.

use super::*;
use crate::probe::identity::{IdentityAsk, resource};

/// Logs in on `proven` and, logged in, runs the query. `host` is the name LOGIN7
/// carries (the target's host, or the redirect's).
pub async fn login(
    proven: Proven,
    host: &str,
    plan: &TdsStep<'_>,
    budget: &Budget,
    ev: &mut TdsEvidence,
) -> Result<Login, Fail> {
    let Proven {
        mut io,
        fedauth_echo,
        connection,
    } = proven;
    ev.login_connection = Some(connection);
    let token = match plan.auth {
        LoginAuth::ManagedIdentity { client_id } => {
            let ask = IdentityAsk {
                tokens: plan.tokens,
                client_id: client_id.as_deref(),
                timeout: plan.login_timeout,
            };
            let fetch = ask.token(resource::SQL, budget).await;
            ev.token_ms = fetch.evidence.token_ms;
            ev.identity = Some(fetch.evidence);
            Some(fetch.token.map_err(|e| {
                (
                    e.class(),
                    format!("no Microsoft Entra token for the login: {e}"),
                )
            })?)
        }
        _ => None,
    };
    let host_name = super::super::hostname().unwrap_or_default();
    let mut req = login7::Login7 {
        host_name: &host_name,
        user: "",
        password: "",
        app_name: "routeproof",
        server_name: host,
        library: "routeproof",
        database: plan.database.unwrap_or(""),
        fedauth: None,
    };
    match (plan.auth, &token) {
        (LoginAuth::Sql { user, password }, _) => {
            ev.login_user = Some(user.clone());
            ev.login_method = Some("sql".into());
            req.user = user;
            req.password = password.expose();
        }
        (LoginAuth::ManagedIdentity { client_id }, Some(tok)) => {
            ev.login_method = Some(match client_id {
                Some(id) => format!("managed_identity (user-assigned {id})"),
                None => "managed_identity (system-assigned)".into(),
            });
            req.fedauth = Some(login7::FedAuth {
                token: tok.secret().expose(),
                echo: fedauth_echo,
            });
        }
        _ => return Ok(Login::Done),
    }
    let mut payload = login7::encode(&req).map_err(|m| (FailureClass::TdsLoginFailed, m))?;
    let t0 = Instant::now();
    let (limit, cut) = budget.limit(plan.login_timeout);
    let res = tokio::time::timeout(
        limit,
        exchange(&mut io, wire::PKT_LOGIN7, &payload, wire::DEFAULT_PACKET),
    )
    .await;
    // The buffer held the obfuscated password or the token.
    payload.fill(0);
    std::hint::black_box(&payload);
    ev.login_ms = Some(ms(t0.elapsed()));
    let reply = answer(res, cut, limit, Phase::Login, ev)?;
    if let Some((host, port)) = reply.routing {
        return Ok(Login::Redirect { host, port });
    }
    if !reply.login_ack {
        return Err((
            FailureClass::TdsLoginFailed,
            "the server ended its answer to LOGIN7 without a LOGINACK or an error".into(),
        ));
    }
    ev.logged_in = true;
    ev.database = reply.database.or_else(|| plan.database.map(str::to_string));
    let packet = reply.packet_size.unwrap_or(wire::DEFAULT_PACKET);

    let t0 = Instant::now();
    let (limit, cut) = budget.limit(plan.query_timeout);
    let batch = login7::sql_batch(plan.query);
    let res = tokio::time::timeout(
        limit,
        exchange(&mut io, wire::PKT_SQL_BATCH, &batch, packet),
    )
    .await;
    ev.query_ms = Some(ms(t0.elapsed()));
    ev.query = Some(plan.query.to_string());
    let reply = answer(res, cut, limit, Phase::Query, ev)?;
    ev.result = Some(reply.result.unwrap_or_default().summary());
    // The probe is done with the connection; dropping it closes the socket (clients
    // leave TDS connections without a close_notify, as tests/support/tds/session.rs notes).
    drop(io);
    Ok(Login::Done)
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    ptype: u8,
    payload: &[u8],
    packet: usize,
) -> std::io::Result<(u8, Vec<u8>)> {
    wire::write_message_sized(io, ptype, payload, packet).await?;
    wire::read_message(io, tokens::MAX_MESSAGE).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Login,
    Query,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Login => "login",
            Phase::Query => "query",
        }
    }

    fn class(self) -> FailureClass {
        match self {
            Phase::Login => FailureClass::TdsLoginFailed,
            Phase::Query => FailureClass::TdsQuery,
        }
    }
}

type Exchanged = Result<std::io::Result<(u8, Vec<u8>)>, tokio::time::error::Elapsed>;

/// The answer to LOGIN7 or the batch, read; every way it can fail, classified. A
/// server ERROR keeps its number, state and class in `ev.sql_error`.
fn answer(
    res: Exchanged,
    cut: bool,
    limit: Duration,
    phase: Phase,
    ev: &mut TdsEvidence,
) -> Result<tokens::Reply, Fail> {
    let name = phase.name();
    let (ptype, payload) = match res {
        Err(_) if cut => {
            return Err((
                FailureClass::Deadline,
                format!("run deadline reached during the {name}"),
            ));
        }
        Err(_) => {
            let what = match phase {
                Phase::Login => "no LOGINACK",
                Phase::Query => "the query did not finish",
            };
            return Err((
                FailureClass::TdsTimeout,
                format!(
                    "{what} within {} (phase: {name})",
                    humantime::format_duration(limit)
                ),
            ));
        }
        Ok(Err(e)) => return Err(io_failure(&e, name)),
        Ok(Ok(m)) => m,
    };
    if ptype != wire::PKT_REPLY {
        return Err((
            phase.class(),
            format!("the answer to the {name} is packet type {ptype:#04x}, not 0x04"),
        ));
    }
    let reply = tokens::read(&payload).map_err(|m| {
        (
            phase.class(),
            format!("the answer to the {name} is malformed: {m}"),
        )
    })?;
    if let Some(e) = &reply.error {
        ev.sql_error = Some(e.clone());
        return Err((
            phase.class(),
            format!(
                "SQL error {} state {} during the {name}: {}",
                e.number, e.state, e.message
            ),
        ));
    }
    Ok(reply)
}

/// A failed read or write after the handshake: TLS failures keep a TLS class.
fn io_failure(e: &std::io::Error, phase: &str) -> Fail {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return (
            FailureClass::TlsHandshake,
            format!("TLS failed during the {phase}: {tls}"),
        );
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => (
            FailureClass::TdsLoginFailed,
            format!("the server closed the connection during the {phase}"),
        ),
        std::io::ErrorKind::InvalidData => (
            FailureClass::TdsLoginFailed,
            format!("the answer to the {phase} is malformed: {e}"),
        ),
        _ => (
            FailureClass::TdsLoginFailed,
            format!("the connection failed during the {phase}: {e}"),
        ),
    }
}
