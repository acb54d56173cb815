//! LOGIN7 and the query, through tiberius on a connection of its own (tiberius starts
//! its own PRELOGIN), to the pinned address or to the redirect hop's.

use super::*;
use crate::probe::identity::{IdentityAsk, resource};

/// Logs in (and queries) with tiberius over a new connection to `addr`.
pub async fn login(
    addr: SocketAddr,
    plan: &TdsStep<'_>,
    budget: &Budget,
    ev: &mut TdsEvidence,
) -> Result<Login, Fail> {
    let (limit, cut) = budget.limit(plan.login_timeout);
    let tcp = match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Err(_) if cut => {
            return Err((
                FailureClass::Deadline,
                "run deadline reached connecting for the login".into(),
            ));
        }
        Err(_) => {
            return Err((
                FailureClass::TdsTimeout,
                format!("login connection to {addr} timed out"),
            ));
        }
        Ok(Err(e)) => return Err(crate::probe::tcp::classify_io(&e, addr)),
        Ok(Ok(s)) => s,
    };
    login_on(tcp, &plan.host, plan.port, plan, budget, ev).await
}

/// Logs in on an already connected stream (the redirect hop's, which the engine opens
/// through its own DNS and TCP layers).
pub async fn login_on(
    tcp: TcpStream,
    host: &str,
    port: u16,
    plan: &TdsStep<'_>,
    budget: &Budget,
    ev: &mut TdsEvidence,
) -> Result<Login, Fail> {
    let _ = tcp.set_nodelay(true);
    ev.login_connection = Some(crate::report::ConnectionInfo {
        peer: tcp.peer_addr().ok(),
        local: tcp.local_addr().ok(),
    });
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
    let mut cfg = tiberius::Config::new();
    cfg.host(host);
    cfg.port(port);
    cfg.application_name("routeproof");
    if let Some(db) = plan.database {
        cfg.database(db);
    }
    cfg.encryption(if plan.strict {
        tiberius::EncryptionLevel::Strict
    } else {
        tiberius::EncryptionLevel::Required
    });
    if let ServerName::DnsName(n) = &plan.server_name
        && n.as_ref() != host
    {
        cfg.hostname_in_certificate(n.as_ref());
    }
    if plan.insecure {
        cfg.trust_cert();
    } else if let Some(pem) = &plan.ca_pem {
        cfg.trust_cert_ca_bundle(pem.clone());
    }
    match (plan.auth, &token) {
        (LoginAuth::Sql { user, password }, _) => {
            ev.login_user = Some(user.clone());
            ev.login_method = Some("sql".into());
            cfg.authentication(tiberius::AuthMethod::sql_server(user, password.expose()));
        }
        (LoginAuth::ManagedIdentity { client_id }, Some(tok)) => {
            ev.login_method = Some(match client_id {
                Some(id) => format!("managed_identity (user-assigned {id})"),
                None => "managed_identity (system-assigned)".into(),
            });
            cfg.authentication(tiberius::AuthMethod::aad_token(tok.secret().expose()));
        }
        _ => return Ok(Login::Done),
    }
    let (limit, cut) = budget.limit(plan.login_timeout);
    // Our timeout bounds the login (it knows the run deadline); tiberius' own would
    // race it and report a stall as an I/O error.
    cfg.handshake_timeout(None);
    let t0 = Instant::now();
    let res = tokio::time::timeout(limit, tiberius::Client::connect(cfg, tcp.compat_write())).await;
    ev.login_ms = Some(ms(t0.elapsed()));
    let mut client = match res {
        Err(_) if cut => {
            return Err((
                FailureClass::Deadline,
                "run deadline reached during the login".into(),
            ));
        }
        Err(_) => {
            return Err((
                FailureClass::TdsTimeout,
                format!(
                    "no LOGINACK within {} (phase: login)",
                    humantime::format_duration(limit)
                ),
            ));
        }
        Ok(Err(tiberius::error::Error::Routing { host, port })) => {
            return Ok(Login::Redirect { host, port });
        }
        Ok(Err(e)) => return Err(classify_tiberius(&e, ev, "login")),
        Ok(Ok(c)) => c,
    };
    ev.logged_in = true;
    ev.database = plan.database.map(str::to_string);
    let (limit, cut) = budget.limit(plan.query_timeout);
    let t0 = Instant::now();
    let q = async {
        let stream = client.simple_query(plan.query).await?;
        stream.into_first_result().await
    };
    let res = tokio::time::timeout(limit, q).await;
    ev.query_ms = Some(ms(t0.elapsed()));
    ev.query = Some(plan.query.to_string());
    match res {
        Err(_) if cut => Err((
            FailureClass::Deadline,
            "run deadline reached during the query".into(),
        )),
        Err(_) => Err((
            FailureClass::TdsTimeout,
            format!(
                "the query did not finish within {} (phase: query)",
                humantime::format_duration(limit)
            ),
        )),
        Ok(Err(e)) => Err(classify_tiberius(&e, ev, "query")),
        Ok(Ok(rows)) => {
            ev.result = Some(summarize(&rows));
            let _ = client.close().await;
            Ok(Login::Done)
        }
    }
}

pub(super) fn summarize(rows: &[tiberius::Row]) -> String {
    let first = rows.first().and_then(|r| {
        r.try_get::<i32, _>(0)
            .ok()
            .flatten()
            .map(|v| v.to_string())
            .or_else(|| r.try_get::<&str, _>(0).ok().flatten().map(str::to_string))
    });
    match first {
        Some(v) => format!("{} row(s), first value {v}", rows.len()),
        None => format!("{} row(s)", rows.len()),
    }
}

/// tiberius' errors, mapped once: server errors keep their number and state.
pub(super) fn classify_tiberius(
    e: &tiberius::error::Error,
    ev: &mut TdsEvidence,
    phase: &str,
) -> Fail {
    use tiberius::error::Error as E;
    match e {
        E::Server(te) => {
            ev.sql_error = Some(SqlError {
                number: te.code(),
                state: te.state(),
                class: te.class(),
                message: te.message().to_string(),
            });
            let class = if phase == "query" {
                FailureClass::TdsQuery
            } else {
                FailureClass::TdsLoginFailed
            };
            (
                class,
                format!(
                    "SQL error {} state {} during the {phase}: {}",
                    te.code(),
                    te.state(),
                    te.message()
                ),
            )
        }
        E::Tls(msg) => {
            // tiberius flattens rustls' error to text; map its stable variant names.
            let class = if msg.contains("UnknownIssuer") || msg.contains("unknown issuer") {
                FailureClass::TlsUntrusted
            } else if msg.contains("NotValidForName") || msg.contains("not valid for name") {
                FailureClass::TlsNameMismatch
            } else if msg.contains("Expired") || msg.contains("NotValidYet") {
                FailureClass::TlsExpired
            } else {
                FailureClass::TlsHandshake
            };
            (class, format!("TLS on the login connection: {msg}"))
        }
        E::Io { kind, message } if *kind == std::io::ErrorKind::TimedOut => (
            FailureClass::TdsTimeout,
            format!("the {phase} timed out (phase: {phase}): {message}"),
        ),
        E::Io { message, .. } => (
            FailureClass::TdsLoginFailed,
            format!("the connection failed during the {phase}: {message}"),
        ),
        other => (
            FailureClass::TdsLoginFailed,
            format!("{phase} failed: {other}"),
        ),
    }
}
