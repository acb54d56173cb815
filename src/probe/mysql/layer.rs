//! The MySQL layer in the engine's one shape: `run(TcpStream, MysqlStep, &Budget)`.
//! TLS goes through the TLS layer (`tls_upgrade::LayerUpgrade`), so the certificate
//! evidence is the report's `tls` layer; the probe's own evidence is the `mysql` layer.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Kind, Options, Phase, probe};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::probe::handshake::Credential;
use crate::probe::identity::{self, IdentityAsk, resource};
use crate::probe::step::Probed;
use crate::probe::tls::TlsStep;
pub use crate::probe::tls_upgrade::Ran;
use crate::probe::tls_upgrade::{DataService, LayerUpgrade, data_layer};
use crate::report::{FailureClass, Layer};
use crate::secret::Secret;

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
    let (limit, _) = budget.limit(step.tls.timeout + step.timeout);
    data_layer::<Mysql>(stream, step.opts, step.tls, limit, start, step.ctx, fetch).await
}

/// The mysql protocol for [`data_layer`].
pub struct Mysql;

impl DataService for Mysql {
    type Options = Options;
    const LAYER: Layer = Layer::Mysql;
    const NAME: &'static str = "mysql";

    fn use_token(opts: &mut Options, token: &Secret) {
        opts.credential = Credential::Token(token.clone());
    }

    async fn probe<'a>(
        stream: TcpStream,
        opts: &'a Options,
        upgrade: LayerUpgrade<'a>,
        deadline: Instant,
    ) -> Probed {
        let out = probe(stream, opts, upgrade, deadline).await;
        Probed::of(out.evidence.witness, out.failure, class, &out.evidence)
    }
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
