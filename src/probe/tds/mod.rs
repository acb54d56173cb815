//! TDS layer: proves the route to SQL Server / Azure SQL past TCP.
//!
//! Phases, each timed: PRELOGIN (server version, encryption offered and agreed, whether
//! Entra authentication is required), the TLS handshake (inside PRELOGIN packets for
//! TDS 7.x, before anything for TDS 8 strict), then, with credentials, LOGIN and a
//! query. PRELOGIN and TLS are ours, on the connection the TCP layer proved, because
//! they are the evidence. LOGIN and the query go through tiberius, which must start its
//! own PRELOGIN, so they use a second connection to the same pinned address; the report
//! records that connection's addresses too. A login refused by the server (18456) is a
//! reached route with a failed login, never a network failure.

pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::compat::TokioAsyncWriteCompatExt;

use super::tls;
use crate::budget::Budget;
use crate::report::{FailureClass, SqlError, TdsEvidence, ms};
use crate::secret::Secret;

pub use crate::spec::LoginAuth;

pub type Fail = (FailureClass, String);

/// The App Service managed-identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`).
#[derive(Debug, Clone)]
pub struct IdentityEndpoint {
    pub url: url::Url,
    pub header: Secret,
}

pub struct TdsPlan<'a> {
    /// Name for TLS verification and tiberius' server name (host, or `sni`).
    pub server_name: ServerName<'static>,
    /// Host the login is addressed to (Azure SQL's gateway routes on it).
    pub host: String,
    pub port: u16,
    pub database: Option<&'a str>,
    pub auth: &'a LoginAuth,
    pub strict: bool,
    pub query: &'a str,
    pub roots: Arc<rustls::RootCertStore>,
    /// PEM of configured CAs, for tiberius' own TLS on the login connection.
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    pub tls_timeout: Duration,
    pub login_timeout: Duration,
    pub query_timeout: Duration,
    pub identity: Option<&'a IdentityEndpoint>,
    pub ctx: &'a crate::diagnose::Context,
}

/// What the login step ended with.
pub enum Login {
    Done,
    /// Azure SQL's Redirect policy: log in again at `host:port` (ports 11000-11999).
    Redirect {
        host: String,
        port: u16,
    },
}

fn enc_byte(strict: bool) -> u8 {
    // Offer encryption: the probe wants the certificate, and so does any real client.
    if strict {
        wire::ENCRYPT_REQ
    } else {
        wire::ENCRYPT_ON
    }
}

/// PRELOGIN and the TLS handshake on the proven connection; fills `ev`.
pub async fn prelogin_and_tls(
    stream: TcpStream,
    plan: &TdsPlan<'_>,
    budget: &Budget,
    ev: &mut TdsEvidence,
) -> Result<(), Fail> {
    ev.strict = plan.strict;
    ev.encryption_client = Some(wire::encryption_name(enc_byte(plan.strict)).into());
    let ask_fedauth = matches!(plan.auth, LoginAuth::ManagedIdentity { .. });
    if plan.strict {
        // TDS 8: TLS first (ALPN tds/8.0), PRELOGIN inside it.
        let t0 = Instant::now();
        let out = tls::handshake(stream, tls_plan(plan, vec![b"tds/8.0".to_vec()]), budget).await;
        ev.tls_ms = Some(ms(t0.elapsed()));
        let (tls_ev, stream) = take_tls(out)?;
        ev.tls = Some(tls_ev);
        let mut stream = stream;
        let reply = prelogin(&mut stream, plan, budget, ev, ask_fedauth).await?;
        ev.encryption = Some("all (strict)".into());
        check_fedauth(plan, &reply)?;
        return Ok(());
    }
    let mut stream = stream;
    let reply = prelogin(&mut stream, plan, budget, ev, ask_fedauth).await?;
    let server = reply.encryption.unwrap_or(wire::ENCRYPT_OFF) & 0x0f;
    // MS-TDS 2.2.6.5: NOT_SUP against anything but OFF/NOT_SUP ends the connection;
    // ON or REQ on either side encrypts everything.
    let agreed = match (wire::ENCRYPT_ON, server) {
        (_, wire::ENCRYPT_NOT_SUP) => {
            return Err((
                FailureClass::TdsEncryption,
                "the server does not support encryption (ENCRYPT_NOT_SUP): a client that requires TLS, as Azure SQL's clients do, cannot log in".into(),
            ));
        }
        (_, wire::ENCRYPT_ON | wire::ENCRYPT_REQ) => "all",
        _ => "all (client requested)",
    };
    ev.encryption = Some(agreed.into());
    check_fedauth(plan, &reply)?;
    let t0 = Instant::now();
    let out = tls::handshake(
        wire::TlsInTds::new(stream),
        tls_plan(plan, Vec::new()),
        budget,
    )
    .await;
    ev.tls_ms = Some(ms(t0.elapsed()));
    let (tls_ev, _stream) = take_tls(out)?;
    ev.tls = Some(tls_ev);
    Ok(())
}

fn check_fedauth(plan: &TdsPlan<'_>, reply: &wire::PreloginReply) -> Result<(), Fail> {
    if reply.fedauth_required == Some(true) && matches!(plan.auth, LoginAuth::Sql { .. }) {
        return Err((
            FailureClass::TdsLoginFailed,
            "the server requires Microsoft Entra authentication (FEDAUTHREQUIRED), but the target uses SQL authentication".into(),
        ));
    }
    Ok(())
}

fn tls_plan<'a>(plan: &'a TdsPlan<'_>, alpn: Vec<Vec<u8>>) -> tls::TlsPlan<'a> {
    tls::TlsPlan {
        server_name: plan.server_name.clone(),
        roots: Arc::clone(&plan.roots),
        insecure: plan.insecure,
        alpn,
        timeout: plan.tls_timeout,
        cert_days_left: None,
        ctx: plan.ctx,
    }
}

fn take_tls<S>(
    out: tls::TlsOutcome<S>,
) -> Result<
    (
        crate::report::TlsEvidence,
        tokio_rustls::client::TlsStream<S>,
    ),
    Fail,
> {
    let crate::report::Evidence::Tls(ev) = out.result.evidence else {
        unreachable!("the TLS layer reports TLS evidence")
    };
    match (out.stream, out.result.error) {
        (Some(s), None) => Ok((ev, s)),
        (_, Some(f)) => {
            // Keep the chain: it is the evidence for the failure.
            Err((
                f.class,
                format!("{} (chain: {})", f.message, chain_summary(&ev)),
            ))
        }
        (None, None) => Err((
            FailureClass::TlsHandshake,
            "the TLS handshake did not complete".into(),
        )),
    }
}

fn chain_summary(ev: &crate::report::TlsEvidence) -> String {
    ev.chain
        .first()
        .map(|c| format!("{} issued by {}", c.subject, c.issuer))
        .unwrap_or_else(|| "none received".into())
}

async fn prelogin<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    plan: &TdsPlan<'_>,
    budget: &Budget,
    ev: &mut TdsEvidence,
    ask_fedauth: bool,
) -> Result<wire::PreloginReply, Fail> {
    let (limit, cut) = budget.limit(plan.login_timeout);
    let t0 = Instant::now();
    let exchange = async {
        wire::write_message(
            stream,
            wire::PKT_PRELOGIN,
            &wire::prelogin_request(enc_byte(plan.strict), ask_fedauth),
        )
        .await?;
        wire::read_message(stream, 64 * 1024).await
    };
    let res = tokio::time::timeout(limit, exchange).await;
    ev.prelogin_ms = Some(ms(t0.elapsed()));
    let (ptype, payload) = match res {
        Err(_) if cut => {
            return Err((
                FailureClass::Deadline,
                "run deadline reached during PRELOGIN".into(),
            ));
        }
        Err(_) => {
            return Err((
                FailureClass::TdsTimeout,
                format!(
                    "no PRELOGIN answer within {} (phase: prelogin)",
                    humantime::format_duration(limit)
                ),
            ));
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err((
                FailureClass::TdsPrelogin,
                "the server closed the connection during PRELOGIN: not a SQL Server endpoint, or a gateway refusing this client".into(),
            ));
        }
        Ok(Err(e)) => return Err((FailureClass::TdsPrelogin, format!("PRELOGIN failed: {e}"))),
        Ok(Ok(m)) => m,
    };
    if ptype != wire::PKT_REPLY {
        return Err((
            FailureClass::TdsPrelogin,
            format!(
                "the answer to PRELOGIN is packet type {ptype:#04x}, not 0x04: not a SQL Server endpoint"
            ),
        ));
    }
    let reply = wire::parse_prelogin(&payload).map_err(|m| (FailureClass::TdsPrelogin, m))?;
    ev.server_version = reply.version.clone();
    ev.encryption_server = reply
        .encryption
        .map(|e| wire::encryption_name(e).to_string());
    ev.fedauth_required = reply.fedauth_required;
    Ok(reply)
}

/// Logs in (and queries) with tiberius over a new connection to `addr`.
pub async fn login(
    addr: SocketAddr,
    plan: &TdsPlan<'_>,
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
        Ok(Err(e)) => return Err(super::tcp::classify_io(&e, addr)),
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
    plan: &TdsPlan<'_>,
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
            let Some(idp) = plan.identity else {
                return Err((
                    FailureClass::TdsLoginFailed,
                    "managed identity requested but IDENTITY_ENDPOINT / IDENTITY_HEADER are not set: enable the app's managed identity".into(),
                ));
            };
            let t0 = Instant::now();
            let tok = identity_token(
                idp,
                client_id.as_deref(),
                budget.limit(plan.login_timeout).0,
            )
            .await;
            ev.token_ms = Some(ms(t0.elapsed()));
            Some(tok.map_err(|m| {
                (
                    FailureClass::TdsLoginFailed,
                    format!("no Microsoft Entra token: {m}"),
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
            cfg.authentication(tiberius::AuthMethod::aad_token(tok.expose()));
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

fn summarize(rows: &[tiberius::Row]) -> String {
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
fn classify_tiberius(e: &tiberius::error::Error, ev: &mut TdsEvidence, phase: &str) -> Fail {
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

/// GET a token for Azure SQL from the App Service identity endpoint (api-version
/// 2019-08-01: `X-IDENTITY-HEADER`, `resource`, optional `client_id`). The endpoint is
/// local to the instance (`http://localhost:…`), so plain HTTP over a loopback socket.
async fn identity_token(
    idp: &IdentityEndpoint,
    client_id: Option<&str>,
    limit: Duration,
) -> Result<Secret, String> {
    use http_body_util::BodyExt;
    let mut url = idp.url.clone();
    url.query_pairs_mut()
        .append_pair("resource", "https://database.windows.net/")
        .append_pair("api-version", "2019-08-01");
    if let Some(id) = client_id {
        url.query_pairs_mut().append_pair("client_id", id);
    }
    let host = url
        .host_str()
        .ok_or("IDENTITY_ENDPOINT has no host")?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    if url.scheme() != "http" {
        return Err(format!(
            "IDENTITY_ENDPOINT scheme `{}` is not http",
            url.scheme()
        ));
    }
    let fetch = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
        let task = tokio::spawn(async move { drop(conn.await) });
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header("X-IDENTITY-HEADER", idp.header.expose())
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        task.abort();
        if !status.is_success() {
            // The body may describe the problem; it never carries the token on failure.
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(format!("identity endpoint answered {status}: {text}"));
        }
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("identity endpoint answer is not JSON: {e}"))?;
        v.get("access_token")
            .and_then(|t| t.as_str())
            .map(Secret::new)
            .ok_or_else(|| "identity endpoint answer has no access_token".to_string())
    };
    tokio::time::timeout(limit, fetch)
        .await
        .map_err(|_| "identity endpoint did not answer in time".to_string())?
}
