//! PostgreSQL protocol probe (Azure Database for PostgreSQL flexible server), on the
//! connection the TCP layer proved.
//!
//! Credential-free: `SSLRequest` → `S`/`N` → TLS → a `StartupMessage` for a probe user →
//! the server's first answer. An authentication request (SASL mechanisms, cleartext, MD5)
//! or an `ErrorResponse` with a SQLSTATE both prove PostgreSQL answered. The 28000
//! `no pg_hba.conf entry for host "ADDR"` text names the address the server saw: that is
//! the witness (Azure's firewall refusal is this message, so a public witness means the
//! request went over the internet).
//!
//! With credentials the startup is for the real user, then SCRAM-SHA-256 (MD5, cleartext
//! when asked) and `SELECT 1`. A Microsoft Entra token is sent where the password goes
//! (Azure asks for it in cleartext, inside TLS). The message loop is ours because its
//! answers are the evidence (auth method, mechanisms, server parameters); SCRAM and MD5
//! come from `postgres-protocol`, the rust-postgres project's protocol crate. tokio-postgres
//! (`connect_raw`) could run on this stream too, but hides the auth request and the server
//! parameters, and costs more binary for the same login.
//!
//! | kind | suggested class | hint's decisive content |
//! |---|---|---|
//! | `NotThisProtocol` | `postgres.not_postgres` | the port answered, but not with PostgreSQL's `S`/`N`: another service or an appliance holds it |
//! | `Timeout{ssl_request}` | `postgres.no_answer` | TCP accepted, SSLRequest never answered: not PostgreSQL, or a firewall holding connections |
//! | `TlsRefusedByServer` | `postgres.tls_refused` | the server answered `N`: TLS off; Azure requires TLS (`require_secure_transport`) |
//! | `TlsFailed` | `postgres.tls_failed` | handshake failed after `S` (certificate/name: the private endpoint's certificate names `<server>.postgres.database.azure.com`) |
//! | `NoHbaEntry{witness}` | `postgres.no_hba_entry` | the server saw us as WITNESS and has no rule for it: Azure networking (firewall rules / public access); a public witness = the route is not private |
//! | `HbaRejected{witness}` | `postgres.hba_rejected` | a `reject` rule matched WITNESS |
//! | `AuthFailed` | `postgres.auth_failed` | 28P01: wrong password for the user |
//! | `TokenRejected` | `postgres.token_rejected` | 28P01 with a token: token for `https://ossrdbms-aad.database.windows.net/.default`, user = the Entra principal's name, Entra auth enabled on the server |
//! | `TokenNeedsTls` | `postgres.token_needs_tls` | the server asked for the token in clear text without TLS: the probe never sends it so |
//! | `UnknownUser` | `postgres.unknown_user` | role does not exist |
//! | `DatabaseMissing` | `postgres.database_missing` | 3D000: database name wrong |
//! | `TooManyConnections` | `postgres.too_many_connections` | 53300: connection limit of the SKU |
//! | `ServerStarting` | `postgres.server_starting` | 57P03: server starting, stopping or in recovery (Azure: stopped server, failover) |
//! | `AuthUnsupported` | `postgres.auth_unsupported` | the server asked for a method the probe cannot do (GSS, SSPI, SCRAM-PLUS only) |
//! | `QueryFailed` | `postgres.query_failed` | logged in, `SELECT 1` refused |
//! | `ServerError` | `postgres.server_error` | another SQLSTATE: see the message |
//! | `Closed{phase}` | `postgres.closed` | the server closed mid-handshake (a proxy, or the server refusing the client) |
//! | `Timeout{phase}` | `postgres.timeout` | the deadline passed in that phase |
//! | `ProtocolViolation` / `Io` | `postgres.protocol` / `postgres.io` | malformed answer / socket error |

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::handshake::{
    self, Credential, IoFail, IoStop, TlsInfo, TlsMode, TlsUpgrade, UpgradeErrorKind, ms, printable,
};

mod auth;
mod layer;
#[cfg(test)]
mod tests;
mod wire;

pub use layer::{PostgresStep, Ran, class, run};

/// The user the credential-free startup names. It need not exist: the pg_hba check
/// (and its witness) comes before the role lookup.
pub const PROBE_USER: &str = "routeproof_probe";

#[derive(Debug, Clone)]
pub struct Options {
    pub tls: TlsMode,
    /// The login user; with `Credential::None`, [`PROBE_USER`] is a good choice.
    pub user: String,
    /// Defaults to the user's name on the server side when absent.
    pub database: Option<String>,
    pub credential: Credential,
    pub application_name: String,
}

impl Options {
    pub fn credential_free(tls: TlsMode) -> Self {
        Options {
            tls,
            user: PROBE_USER.into(),
            database: None,
            credential: Credential::None,
            application_name: "routeproof".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    SslRequest,
    Tls,
    Startup,
    Auth,
    Query,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::SslRequest => "SSLRequest",
            Phase::Tls => "TLS handshake",
            Phase::Startup => "startup",
            Phase::Auth => "authentication",
            Phase::Query => "query",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Kind {
    NotThisProtocol,
    TlsRefusedByServer,
    TlsFailed,
    NoHbaEntry { witness: Option<IpAddr> },
    HbaRejected { witness: Option<IpAddr> },
    AuthFailed,
    TokenRejected,
    TokenNeedsTls,
    UnknownUser,
    DatabaseMissing,
    TooManyConnections,
    ServerStarting,
    AuthUnsupported,
    QueryFailed,
    ServerError,
    ProtocolViolation { phase: Phase },
    Closed { phase: Phase },
    Timeout { phase: Phase },
    Io { phase: Phase },
}

impl Kind {
    /// The suggested failure-class string (see the table at the top of this file).
    pub fn class(&self) -> &'static str {
        layer::class(self).as_str()
    }
}

pub type Failure = crate::probe::step::Failure<Kind>;

/// Per-phase timings in milliseconds; a phase that did not run is absent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_request_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    /// `S` or `N`, the answer to SSLRequest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_answer: Option<char>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `none`, `password` or `token`: the kind, never the value.
    pub credential: &'static str,
    /// What the server asked for: `sasl`, `cleartext`, `md5`, `gss`, `sspi`, `ok` (trust).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_request: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sasl_mechanisms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism_used: Option<String>,
    pub authenticated: bool,
    /// ParameterStatus after login: `server_version`, `server_encoding`, ...
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub server_params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ServerError>,
    /// The client address the server named in its pg_hba refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_result: Option<String>,
    pub timings: Timings,
}

/// An ErrorResponse's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerError {
    pub severity: String,
    pub sqlstate: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// PostgreSQL itself answered (an `S`/`N` followed by a protocol message, or an
    /// ErrorResponse): the route reaches the service even if the login failed.
    pub reached: bool,
    pub evidence: Evidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

struct Run<'a> {
    opts: &'a Options,
    deadline: Instant,
    ev: Evidence,
    reached: bool,
}

type Step<T> = Result<T, Failure>;

fn fail(kind: Kind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

fn io_failure(phase: Phase, e: IoFail) -> Failure {
    let kind = match e.stop {
        IoStop::Timeout => Kind::Timeout { phase },
        IoStop::Closed => Kind::Closed { phase },
        IoStop::Other => Kind::Io { phase },
    };
    fail(kind, format!("{phase}: {}", e.message))
}

/// Runs the probe on `stream`. `upgrade` is used unless `opts.tls` is `Disable`.
pub async fn probe<S, U>(stream: S, opts: &Options, upgrade: U, deadline: Instant) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    U: TlsUpgrade<S>,
{
    let mut run = Run {
        opts,
        deadline,
        ev: Evidence {
            user: opts.user.clone(),
            database: opts.database.clone(),
            credential: opts.credential.label(),
            ..Default::default()
        },
        reached: false,
    };
    let res = run.go(stream, upgrade).await;
    Outcome {
        reached: run.reached,
        evidence: run.ev,
        failure: res.err(),
    }
}

impl Run<'_> {
    async fn go<S, U>(&mut self, mut stream: S, upgrade: U) -> Step<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
        U: TlsUpgrade<S>,
    {
        if !self.opts.tls.enabled() {
            return self.session(stream).await;
        }
        let t0 = Instant::now();
        let answer = self.ssl_request(&mut stream).await;
        self.ev.timings.ssl_request_ms = Some(ms(t0.elapsed()));
        answer?;
        let t0 = Instant::now();
        let up = upgrade.upgrade(stream, self.deadline).await;
        self.ev.timings.tls_ms = Some(ms(t0.elapsed()));
        let (tls, info) = up.map_err(|e| {
            let kind = match e.kind {
                UpgradeErrorKind::Timeout => Kind::Timeout { phase: Phase::Tls },
                UpgradeErrorKind::Closed => Kind::Closed { phase: Phase::Tls },
                UpgradeErrorKind::NotTls | UpgradeErrorKind::Handshake => Kind::TlsFailed,
            };
            fail(kind, e.message)
        })?;
        self.ev.tls = Some(info);
        self.session(tls).await
    }

    async fn ssl_request<S: AsyncRead + AsyncWrite + Unpin>(&mut self, s: &mut S) -> Step<()> {
        let ph = Phase::SslRequest;
        handshake::write_all(s, &wire::SSL_REQUEST, self.deadline)
            .await
            .map_err(|e| io_failure(ph, e))?;
        let mut b = [0u8; 1];
        handshake::read_exact(s, &mut b, self.deadline)
            .await
            .map_err(|e| io_failure(ph, e))?;
        match b[0] {
            b'S' => {
                self.ev.ssl_answer = Some('S');
                self.reached = true;
                Ok(())
            }
            b'N' => {
                self.ev.ssl_answer = Some('N');
                self.reached = true;
                Err(fail(
                    Kind::TlsRefusedByServer,
                    "the server answered SSLRequest with N: it does not accept TLS",
                ))
            }
            b'E' => {
                // A server that predates SSLRequest, or refuses it, sends an ErrorResponse.
                let err = wire::read_body(s, b'E', self.deadline)
                    .await
                    .map_err(|e| e.into_failure(ph))?;
                self.reached = true;
                Err(self.server_error(wire::parse_error(&err), ph))
            }
            other => Err(fail(
                Kind::NotThisProtocol,
                format!(
                    "the answer to SSLRequest was {:?}, not PostgreSQL's S or N",
                    printable(&[other], 1)
                ),
            )),
        }
    }

    /// Startup, authentication and (with credentials) the query, on the plain or TLS stream.
    async fn session<T: AsyncRead + AsyncWrite + Unpin + Send>(&mut self, mut s: T) -> Step<()> {
        let t0 = Instant::now();
        let start = wire::startup(
            &self.opts.user,
            self.opts.database.as_deref(),
            &self.opts.application_name,
        );
        handshake::write_all(&mut s, &start, self.deadline)
            .await
            .map_err(|e| io_failure(Phase::Startup, e))?;
        let first = self.next(&mut s, Phase::Startup).await;
        self.ev.timings.startup_ms = Some(ms(t0.elapsed()));
        let (tag, body) = first?;
        self.reached = true;
        let t0 = Instant::now();
        let authed = self.authenticate(&mut s, tag, body).await;
        self.ev.timings.auth_ms = Some(ms(t0.elapsed()));
        if !authed? {
            return Ok(());
        }
        let t0 = Instant::now();
        let q = self.query(&mut s).await;
        self.ev.timings.query_ms = Some(ms(t0.elapsed()));
        q
    }

    /// Reads one backend message; NoticeResponse and NegotiateProtocolVersion are skipped.
    async fn next<T: AsyncRead + Unpin>(&mut self, s: &mut T, ph: Phase) -> Step<(u8, Vec<u8>)> {
        loop {
            let (tag, body) = wire::read_message(s, self.deadline)
                .await
                .map_err(|e| e.into_failure(ph))?;
            match tag {
                b'N' | b'v' => continue,
                _ => return Ok((tag, body)),
            }
        }
    }

    /// Classifies an ErrorResponse, records it, and extracts the pg_hba witness.
    fn server_error(&mut self, e: ServerError, phase: Phase) -> Failure {
        self.reached = true;
        let witness = wire::hba_witness(&e.message);
        if witness.is_some() {
            self.ev.witness = witness;
        }
        let token = self.opts.credential.is_token();
        let kind = match e.sqlstate.as_str() {
            "28000" if e.message.starts_with("no pg_hba.conf entry") => {
                Kind::NoHbaEntry { witness }
            }
            "28000" if e.message.starts_with("pg_hba.conf rejects") => {
                Kind::HbaRejected { witness }
            }
            "28000" if e.message.contains("does not exist") => Kind::UnknownUser,
            "28P01" if token => Kind::TokenRejected,
            "28P01" => Kind::AuthFailed,
            "3D000" => Kind::DatabaseMissing,
            "53300" => Kind::TooManyConnections,
            "57P03" => Kind::ServerStarting,
            _ => Kind::ServerError,
        };
        let message = format!(
            "{phase}: the server refused: {} (SQLSTATE {})",
            e.message, e.sqlstate
        );
        self.ev.error = Some(e);
        fail(kind, message)
    }
}
