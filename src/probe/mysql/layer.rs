//! The MySQL layer in the engine's one shape: `run(TcpStream, MysqlStep, &Budget)`.
//! TLS goes through the TLS layer (`tls_upgrade::LayerUpgrade`), so the certificate
//! evidence is the report's `tls` layer; the probe's own evidence is the `mysql` layer.

use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Kind, Options, Phase, probe};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::probe::handshake::Credential;
use crate::probe::identity::{self, IdentityAsk, resource};
use crate::probe::step::{Login, Probed};
use crate::probe::tls::TlsStep;
use crate::probe::tls_upgrade::LayerUpgrade;
pub use crate::probe::tls_upgrade::Ran;
use crate::report::{FailureClass, Layer};

pub struct MysqlStep<'a> {
    pub opts: Options,
    /// The TLS layer's input (ignored when `opts.tls` is `Disable`).
    pub tls: TlsStep<'a>,
    /// Greeting, login and query together.
    pub timeout: Duration,
    /// Log in with a token from the app's managed identity (the clear-text plugin, TLS only).
    pub identity: Option<IdentityAsk<'a>>,
    pub ctx: &'a Context,
}

pub async fn run(stream: TcpStream, step: MysqlStep<'_>, budget: &Budget) -> Ran {
    let start = Instant::now();
    let fetch = identity::fetch(step.identity.as_ref(), resource::OSSRDBMS, budget).await;
    let slot = Mutex::new(None);
    let login = Login {
        layer: Layer::Mysql,
        protocol: "mysql",
        start,
        ctx: step.ctx,
    };
    let (mut opts, tls) = (step.opts, step.tls);
    let (limit, _) = budget.limit(tls.timeout + step.timeout);
    let done = login
        .run(fetch, |token| {
            if let Some(t) = token {
                opts.credential = Credential::Token(t.clone());
            }
            let upgrade = LayerUpgrade {
                step: tls,
                out: &slot,
            };
            async {
                let out = probe(stream, &opts, upgrade, Instant::now() + limit).await;
                Probed {
                    witness: out.evidence.witness,
                    failure: out.failure.map(|f| (class(&f.kind), f.message)),
                    detail: serde_json::to_value(&out.evidence).unwrap_or_default(),
                }
            }
        })
        .await;
    Ran::new(slot, done)
}

/// The failure class of a probe kind (`Kind::class()` is its string).
pub fn class(kind: &Kind) -> FailureClass {
    use FailureClass as C;
    match kind {
        Kind::NotThisProtocol => C::MysqlNotMysql,
        Kind::Timeout {
            phase: Phase::Greeting,
        } => C::MysqlNoGreeting,
        Kind::TlsRefusedByServer => C::MysqlTlsRefused,
        Kind::TlsFailed => C::MysqlTlsFailed,
        Kind::AuthFailed { .. } => C::MysqlAuthFailed,
        Kind::TokenRejected { .. } => C::MysqlTokenRejected,
        Kind::HostNotAllowed { .. } => C::MysqlHostNotAllowed,
        Kind::ServerFirewall { .. } => C::MysqlFirewall,
        Kind::InsecureTransport => C::MysqlInsecureTransport,
        Kind::DatabaseMissing => C::MysqlDatabaseMissing,
        Kind::DatabaseAccessDenied => C::MysqlDatabaseAccessDenied,
        Kind::TooManyConnections => C::MysqlTooManyConnections,
        Kind::PasswordExpired => C::MysqlPasswordExpired,
        Kind::CleartextNeedsTls => C::MysqlCleartextNeedsTls,
        Kind::AuthUnsupported => C::MysqlAuthUnsupported,
        Kind::QueryFailed => C::MysqlQueryFailed,
        Kind::ServerError => C::MysqlServerError,
        Kind::ProtocolViolation { .. } => C::MysqlProtocol,
        Kind::Closed { .. } => C::MysqlClosed,
        Kind::Timeout { .. } => C::MysqlTimeout,
        Kind::Io { .. } => C::MysqlIo,
    }
}
