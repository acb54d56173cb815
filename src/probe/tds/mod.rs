//! TDS layer: proves the route to SQL Server / Azure SQL past TCP.
//!
//! Phases, each timed: PRELOGIN (server version, encryption offered and agreed, whether
//! Entra authentication is required), the TLS handshake (inside PRELOGIN packets for
//! TDS 7.x, before anything for TDS 8 strict), then, with credentials, LOGIN7 and a
//! query. All of it runs on the one connection the TCP layer proved (for a redirect,
//! on the hop's connection): PRELOGIN and the handshake here and in `wire.rs`, LOGIN7
//! and the batch in `login.rs` (`login7.rs` builds them, `tokens.rs` and `types.rs`
//! read the answers). A login refused by the server (18456) is a reached route with a
//! failed login, never a network failure.

mod login;
mod login7;
mod redirect;
pub mod tokens;
mod types;
pub mod wire;

pub use self::login::login;
pub use self::redirect::{Hop, HopError, NextHop};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::step::Step;
use super::tls;
use crate::budget::Budget;
use crate::diagnose;
use crate::layer::Layer;
use crate::platform::identity::Tokens;
use crate::report::{ConnectionInfo, Evidence, FailureClass, LayerResult, TdsEvidence, ms};

pub use crate::spec::LoginAuth;

pub type Fail = (FailureClass, String);

/// The TDS layer's input. `hop` opens the connection to a redirect's host and port
/// through the engine's own DNS and TCP layers (and the policy, when there is one).
pub struct TdsStep<'a> {
    /// Name for TLS verification (host, or `sni`).
    pub server_name: ServerName<'static>,
    /// Host the login is addressed to (Azure SQL's gateway routes on it).
    pub host: String,
    pub port: u16,
    pub database: Option<&'a str>,
    pub auth: &'a LoginAuth,
    pub strict: bool,
    pub query: &'a str,
    pub roots: Arc<rustls::RootCertStore>,
    pub insecure: bool,
    pub tls_timeout: Duration,
    pub login_timeout: Duration,
    pub query_timeout: Duration,
    /// The run's managed-identity tokens (`LoginAuth::ManagedIdentity`).
    pub tokens: &'a Tokens,
    pub ctx: &'a crate::diagnose::Context,
    pub hop: &'a dyn NextHop,
}

/// The stream after PRELOGIN and TLS (TLS records raw on the socket from here on).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection PRELOGIN and TLS ran on, ready for LOGIN7.
pub struct Proven {
    pub io: Box<dyn Io>,
    /// The server's PRELOGIN said FEDAUTHREQUIRED=1 (LOGIN7 echoes it).
    pub fedauth_echo: bool,
    /// The TCP connection's addresses (the report's `login_connection`).
    pub connection: ConnectionInfo,
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

/// The name TLS verifies: the configured or host name, else the
/// peer's address, else `localhost`.
pub fn server_name(name: Option<&str>, peer: Option<SocketAddr>) -> ServerName<'static> {
    let chosen = match (name, peer) {
        (Some(n), _) => ServerName::try_from(n.to_string()).ok(),
        (None, Some(p)) => Some(p.ip().into()),
        (None, None) => None,
    };
    chosen.unwrap_or_else(|| ServerName::try_from("localhost").expect("static name"))
}

/// PRELOGIN, TLS, and with credentials the login and query; a routing redirect is
/// followed through `step.hop`.
pub async fn run(stream: TcpStream, step: TdsStep<'_>, budget: &Budget) -> Step<()> {
    let start = Instant::now();
    let mut ev = TdsEvidence::default();
    let mut redirect_target = None;
    let res = async {
        let proven = prelogin_and_tls(stream, &step, budget, &mut ev).await?;
        if *step.auth == LoginAuth::None {
            return Ok(());
        }
        match login(proven, &step.host, &step, budget, &mut ev).await? {
            Login::Done => Ok(()),
            Login::Redirect { host, port } => {
                redirect_target = Some(format!("{host}:{port}"));
                redirect::follow(&host, port, &step, budget, &mut ev).await
            }
        }
    }
    .await;
    let sql_error = ev.sql_error.as_ref().map(|e| e.number);
    let error = res.err().map(|(class, message)| {
        let mut ctx = step.ctx.clone();
        ctx.sql_error = sql_error;
        ctx.redirect = redirect_target;
        if let LoginAuth::ManagedIdentity { client_id } = step.auth {
            ctx.client_id = client_id.clone();
        }
        diagnose::failure(Some(Layer::Tds), class, message, &ctx)
    });
    Step::last(LayerResult {
        layer: Layer::Tds,
        ok: error.is_none(),
        start_ms: 0.0,
        duration_ms: ms(start.elapsed()),
        error,
        evidence: Evidence::Tds(Box::new(ev)),
    })
}

/// PRELOGIN and the TLS handshake on `stream` (the proven connection or a redirect
/// hop's); fills `ev` and hands the encrypted stream on for the login.
pub async fn prelogin_and_tls(
    stream: TcpStream,
    plan: &TdsStep<'_>,
    budget: &Budget,
    ev: &mut TdsEvidence,
) -> Result<Proven, Fail> {
    let connection = ConnectionInfo {
        peer: stream.peer_addr().ok(),
        local: stream.local_addr().ok(),
    };
    ev.strict = plan.strict;
    ev.encryption_client = Some(wire::encryption_name(enc_byte(plan.strict)).into());
    let ask_fedauth = matches!(plan.auth, LoginAuth::ManagedIdentity { .. });
    if plan.strict {
        // TDS 8: TLS first (ALPN tds/8.0), PRELOGIN inside it.
        let t0 = Instant::now();
        let out = tls::run(stream, tls_plan(plan, vec![b"tds/8.0".to_vec()]), budget).await;
        ev.tls_ms = Some(ms(t0.elapsed()));
        let mut stream = take_tls(out, ev)?;
        let reply = prelogin(&mut stream, plan, budget, ev, ask_fedauth).await?;
        ev.encryption = Some("all (strict)".into());
        check_fedauth(plan, &reply)?;
        return Ok(Proven {
            io: Box::new(stream),
            fedauth_echo: reply.fedauth_required == Some(true),
            connection,
        });
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
    let out = tls::run(
        wire::TlsInTds::new(stream),
        tls_plan(plan, Vec::new()),
        budget,
    )
    .await;
    ev.tls_ms = Some(ms(t0.elapsed()));
    let mut stream = take_tls(out, ev)?;
    // From here TLS records travel raw on the socket, TDS packets inside them.
    stream.get_mut().0.pass_through();
    Ok(Proven {
        io: Box::new(stream),
        fedauth_echo: reply.fedauth_required == Some(true),
        connection,
    })
}

fn check_fedauth(plan: &TdsStep<'_>, reply: &wire::PreloginReply) -> Result<(), Fail> {
    if reply.fedauth_required == Some(true) && matches!(plan.auth, LoginAuth::Sql { .. }) {
        return Err((
            FailureClass::TdsLoginFailed,
            "the server requires Microsoft Entra authentication (FEDAUTHREQUIRED), but the target uses SQL authentication".into(),
        ));
    }
    Ok(())
}

fn tls_plan<'a>(plan: &'a TdsStep<'_>, alpn: Vec<Vec<u8>>) -> tls::TlsStep<'a> {
    tls::TlsStep {
        server_name: plan.server_name.clone(),
        roots: Arc::clone(&plan.roots),
        insecure: plan.insecure,
        alpn,
        timeout: plan.tls_timeout,
        cert_days_left: None,
        ctx: plan.ctx,
    }
}

/// The handshake's stream; its evidence goes into `tds.tls` whether it succeeded or not (a
/// failed handshake's chain is the evidence for the failure).
fn take_tls<S>(
    out: super::step::Step<tokio_rustls::client::TlsStream<S>>,
    tds: &mut TdsEvidence,
) -> Result<tokio_rustls::client::TlsStream<S>, Fail> {
    let ev = match out.result.evidence {
        Evidence::Tls(ev) => ev,
        _ => crate::report::TlsEvidence::default(),
    };
    let stream = match (out.next, out.result.error) {
        (Some(s), None) => Ok(s),
        (_, Some(f)) => Err((
            f.class,
            format!("{} (chain: {})", f.message, chain_summary(&ev)),
        )),
        (None, None) => Err((
            FailureClass::TlsHandshake,
            "the TLS handshake did not complete".into(),
        )),
    };
    tds.tls = Some(ev);
    stream
}

fn chain_summary(ev: &crate::report::TlsEvidence) -> String {
    ev.chain
        .first()
        .map(|c| format!("{} issued by {}", c.subject, c.issuer))
        .unwrap_or_else(|| "none received".into())
}

async fn prelogin<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    plan: &TdsStep<'_>,
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
