//! MySQL / MariaDB protocol probe (Azure Database for MySQL flexible server), on the
//! connection the TCP layer proved.
//!
//! The server speaks first: its greeting (version, capabilities incl. SSL, auth plugin)
//! proves MySQL answered. Then SSLRequest → TLS → a login attempt. Credential-free, the
//! attempt is for a probe user with no password, and the server's `1045 Access denied for
//! user 'u'@'ADDR'` names the address it saw: the witness (with name resolution on, a
//! MariaDB names `localhost` instead, kept as `witness_host`). With credentials: the
//! password through the server's plugin (mysql_native_password, caching_sha2_password fast
//! path, or full auth over TLS), then `SELECT 1`. A Microsoft Entra token goes with the
//! clear-text plugin (`mysql_clear_password`), only ever inside TLS.
//!
//! Hand-written: the credential-free attempt must be ours anyway (it is the evidence), and
//! with it the login is two scrambles and an auth-switch loop. `mysql_async` cannot run on
//! a stream it did not open, so it would need a second connection, and it adds several MB.
//!
//! | kind | suggested class | hint's decisive content |
//! |---|---|---|
//! | `NotThisProtocol` | `mysql.not_mysql` | the port spoke, but not a MySQL greeting |
//! | `Timeout{greeting}` | `mysql.no_greeting` | TCP accepted, no greeting: MySQL always speaks first, so this is another service or an appliance |
//! | `TlsRefusedByServer` | `mysql.tls_refused` | the greeting lacks the SSL capability: TLS off on the server |
//! | `TlsFailed` | `mysql.tls_failed` | certificate/name: `<server>.mysql.database.azure.com` |
//! | `AuthFailed{witness}` | `mysql.auth_failed` | 1045 with a password: wrong password or unknown user (MySQL does not say which) |
//! | `TokenRejected{witness}` | `mysql.token_rejected` | 1045 with a token: token for `https://ossrdbms-aad.database.windows.net/.default`, user = the Entra principal name, Entra admin/user created |
//! | `HostNotAllowed{witness}` | `mysql.host_not_allowed` | 1130: no account for the address the server saw |
//! | `ServerFirewall{witness}` | `mysql.firewall` | Azure's refusal naming the client IP: firewall rules / public access; a public witness = not the private route |
//! | `InsecureTransport` | `mysql.insecure_transport` | 3159: `require_secure_transport=ON`, connect with TLS |
//! | `DatabaseMissing` | `mysql.database_missing` | 1049 unknown database |
//! | `DatabaseAccessDenied` | `mysql.database_access_denied` | 1044: the user may not use that database |
//! | `TooManyConnections` | `mysql.too_many_connections` | 1040/1203: `max_connections` of the SKU |
//! | `PasswordExpired` | `mysql.password_expired` | 1820/1862: the password must be changed |
//! | `CleartextNeedsTls` | `mysql.cleartext_needs_tls` | the probe refused to send a token/password in clear text without TLS |
//! | `AuthUnsupported` | `mysql.auth_unsupported` | a plugin the probe does not do (or caching_sha2 full auth without TLS) |
//! | `QueryFailed` | `mysql.query_failed` | logged in, `SELECT 1` refused |
//! | `ServerError` | `mysql.server_error` | another ERR code: see the message |
//! | `Closed{phase}` / `Timeout{phase}` / `Io{phase}` / `ProtocolViolation{phase}` | `mysql.closed` / `mysql.timeout` / `mysql.io` / `mysql.protocol` | the phase in the kind |

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::handshake::{
    self, Credential, IoFail, IoStop, TlsInfo, TlsMode, TlsUpgrade, UpgradeErrorKind, ms,
};

mod layer;
mod login;
#[cfg(test)]
mod tests;
mod wire;

pub use layer::{MysqlStep, Ran, class, run};
pub use wire::{CACHING_SHA2, CLEAR, NATIVE};

pub const PROBE_USER: &str = "routeproof_probe";

#[derive(Debug, Clone)]
pub struct Options {
    pub tls: TlsMode,
    /// The login user; with `Credential::None`, [`PROBE_USER`].
    pub user: String,
    pub database: Option<String>,
    pub credential: Credential,
}

impl Options {
    pub fn credential_free(tls: TlsMode) -> Self {
        Options {
            tls,
            user: PROBE_USER.into(),
            database: None,
            credential: Credential::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Greeting,
    Tls,
    Login,
    Query,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Greeting => "greeting",
            Phase::Tls => "TLS handshake",
            Phase::Login => "login",
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
    AuthFailed { witness: Option<IpAddr> },
    TokenRejected { witness: Option<IpAddr> },
    HostNotAllowed { witness: Option<IpAddr> },
    ServerFirewall { witness: Option<IpAddr> },
    InsecureTransport,
    DatabaseMissing,
    DatabaseAccessDenied,
    TooManyConnections,
    PasswordExpired,
    CleartextNeedsTls,
    AuthUnsupported,
    QueryFailed,
    ServerError,
    ProtocolViolation { phase: Phase },
    Closed { phase: Phase },
    Timeout { phase: Phase },
    Io { phase: Phase },
}

impl Kind {
    pub fn class(&self) -> &'static str {
        layer::class(self).as_str()
    }
}

pub type Failure = crate::probe::step::Failure<Kind>;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<u8>,
    /// As sent: MariaDB prefixes `5.5.5-`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// MariaDB clears CLIENT_LONG_PASSWORD (bit 0) in its greeting; MySQL sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mariadb: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capability_names: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_auth_plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub credential: &'static str,
    /// Plugins in the order the login used them (initial, then switches).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_plugins: Vec<String>,
    pub authenticated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ServerError>,
    /// The client address the server named (1045 / 1130 / firewall texts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<IpAddr>,
    /// The host part as written, when it is a name (`localhost`) rather than an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_result: Option<String>,
    pub timings: Timings,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerError {
    pub code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// A MySQL greeting (or an ERR packet in its place) arrived.
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
    let msg = if kind
        == (Kind::Timeout {
            phase: Phase::Greeting,
        }) {
        "greeting: the server accepted the connection but sent no greeting before the deadline (a MySQL server speaks first)".to_string()
    } else {
        format!("{phase}: {}", e.message)
    };
    fail(kind, msg)
}

pub(crate) struct Run<'a> {
    opts: &'a Options,
    deadline: Instant,
    ev: Evidence,
    reached: bool,
}

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
    async fn go<S, U>(&mut self, mut s: S, upgrade: U) -> Step<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
        U: TlsUpgrade<S>,
    {
        let t0 = Instant::now();
        let g = self.greeting(&mut s).await;
        self.ev.timings.greeting_ms = Some(ms(t0.elapsed()));
        let g = g?;
        let tls = self.opts.tls.enabled();
        let caps = wire::client_caps(g.capabilities, tls, self.opts.database.is_some());
        if !tls {
            return self.login_and_query(s, &g, caps, 1).await;
        }
        if g.capabilities & wire::CLIENT_SSL == 0 {
            return Err(fail(
                Kind::TlsRefusedByServer,
                "the server's greeting does not offer SSL: TLS is off on the server",
            ));
        }
        let t0 = Instant::now();
        handshake::write_all(
            &mut s,
            &wire::packet(1, &wire::ssl_request(caps)),
            self.deadline,
        )
        .await
        .map_err(|e| io_failure(Phase::Tls, e))?;
        let up = upgrade.upgrade(s, self.deadline).await;
        self.ev.timings.tls_ms = Some(ms(t0.elapsed()));
        let (t, info) = up.map_err(|e| {
            let kind = match e.kind {
                UpgradeErrorKind::Timeout => Kind::Timeout { phase: Phase::Tls },
                UpgradeErrorKind::Closed => Kind::Closed { phase: Phase::Tls },
                UpgradeErrorKind::NotTls | UpgradeErrorKind::Handshake => Kind::TlsFailed,
            };
            fail(kind, e.message)
        })?;
        self.ev.tls = Some(info);
        self.login_and_query(t, &g, caps, 2).await
    }

    async fn greeting<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> Step<wire::Greeting> {
        let ph = Phase::Greeting;
        let (_, body) = wire::read_packet(s, self.deadline, true)
            .await
            .map_err(|e| match e {
                wire::ReadErr::Io(e) => io_failure(ph, e),
                wire::ReadErr::Garbage(head) => fail(
                    Kind::NotThisProtocol,
                    format!("the server's first bytes are not a MySQL greeting: {head:?}"),
                ),
            })?;
        if body.first() == Some(&0xff) {
            // Refused before the handshake (host not allowed, too many connections).
            self.reached = true;
            return Err(self.server_error(&body, ph));
        }
        let g = wire::parse_greeting(&body).ok_or_else(|| {
            fail(
                Kind::NotThisProtocol,
                format!(
                    "the server's first packet is not a MySQL greeting (protocol byte {:?})",
                    body.first()
                ),
            )
        })?;
        self.reached = true;
        self.ev.protocol_version = Some(g.protocol);
        self.ev.server_version = Some(g.server_version.clone());
        self.ev.mariadb = Some(g.capabilities & wire::CLIENT_LONG_PASSWORD == 0);
        self.ev.connection_id = Some(g.connection_id);
        self.ev.capabilities = Some(format!("{:#010x}", g.capabilities));
        self.ev.capability_names = wire::capability_names(g.capabilities);
        self.ev.server_auth_plugin = g.auth_plugin.clone();
        Ok(g)
    }

    async fn login_and_query<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut t: T,
        g: &wire::Greeting,
        caps: u32,
        seq: u8,
    ) -> Step<()> {
        let t0 = Instant::now();
        let r = self.login(&mut t, g, caps, seq).await;
        self.ev.timings.login_ms = Some(ms(t0.elapsed()));
        if !r? {
            return Ok(());
        }
        let t0 = Instant::now();
        let r = self.query(&mut t).await;
        self.ev.timings.query_ms = Some(ms(t0.elapsed()));
        let _ = handshake::write_all(&mut t, &wire::COM_QUIT, self.deadline).await;
        r
    }

    /// Records an ERR packet, extracts the witness, and classifies it.
    fn server_error(&mut self, body: &[u8], phase: Phase) -> Failure {
        let (code, sqlstate, message) = wire::parse_err(body);
        let host = wire::witness_host(&message);
        let witness = host.as_deref().and_then(|h| h.parse::<IpAddr>().ok());
        if let Some(h) = &host {
            self.ev.witness = witness;
            if witness.is_none() {
                self.ev.witness_host = Some(h.clone());
            }
        }
        let token = self.opts.credential.is_token();
        let lower = message.to_ascii_lowercase();
        let kind = match code {
            // 1698: MariaDB's "Access denied" for a login without a password.
            1045 | 1698 if token => Kind::TokenRejected { witness },
            1045 | 1698 => Kind::AuthFailed { witness },
            1130 => Kind::HostNotAllowed { witness },
            1044 => Kind::DatabaseAccessDenied,
            1049 => Kind::DatabaseMissing,
            1040 | 1203 => Kind::TooManyConnections,
            1820 | 1862 => Kind::PasswordExpired,
            3159 => Kind::InsecureTransport,
            1251 | 1524 => Kind::AuthUnsupported,
            _ if lower.contains("ip address") && lower.contains("not allowed") => {
                Kind::ServerFirewall { witness }
            }
            _ if lower.contains("public network access") || lower.contains("firewall") => {
                Kind::ServerFirewall { witness }
            }
            _ => Kind::ServerError,
        };
        let text = format!(
            "{phase}: the server refused: {message} (error {code}{})",
            sqlstate
                .as_deref()
                .map(|s| format!(", SQLSTATE {s}"))
                .unwrap_or_default()
        );
        self.ev.error = Some(ServerError {
            code,
            sqlstate,
            message,
        });
        fail(kind, text)
    }
}
