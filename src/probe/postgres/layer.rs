//! The PostgreSQL layer in the engine's one shape: `run(TcpStream, PostgresStep, &Budget)`.
//! TLS goes through the TLS layer (`tls_upgrade::LayerUpgrade`), so the certificate
//! evidence is the report's `tls` layer; the probe's own evidence is the `postgres` layer.

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

pub struct PostgresStep<'a> {
    pub opts: Options,
    /// The TLS layer's input (ignored when `opts.tls` is `Disable`).
    pub tls: TlsStep<'a>,
    /// Startup, authentication and query together.
    pub timeout: Duration,
    /// Log in with a token from the app's managed identity (sent as the password).
    pub identity: Option<IdentityAsk<'a>>,
    pub ctx: &'a Context,
}

pub async fn run(stream: TcpStream, step: PostgresStep<'_>, budget: &Budget) -> Ran {
    let start = Instant::now();
    let fetch = identity::fetch(step.identity.as_ref(), resource::OSSRDBMS, budget).await;
    let (limit, _) = budget.limit(step.tls.timeout + step.timeout);
    data_layer::<Postgres>(stream, step.opts, step.tls, limit, start, step.ctx, fetch).await
}

/// The postgres protocol for [`data_layer`].
pub struct Postgres;

impl DataService for Postgres {
    type Options = Options;
    const LAYER: Layer = Layer::Postgres;
    const NAME: &'static str = "postgres";

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
        Kind::NotThisProtocol => C::PostgresNotPostgres,
        Kind::Timeout {
            phase: Phase::SslRequest,
        } => C::PostgresNoAnswer,
        Kind::TlsRefusedByServer => C::PostgresTlsRefused,
        Kind::TlsFailed => C::PostgresTlsFailed,
        Kind::NoHbaEntry { .. } => C::PostgresNoHbaEntry,
        Kind::HbaRejected { .. } => C::PostgresHbaRejected,
        Kind::AuthFailed => C::PostgresAuthFailed,
        Kind::TokenRejected => C::PostgresTokenRejected,
        Kind::TokenNeedsTls => C::PostgresTokenNeedsTls,
        Kind::UnknownUser => C::PostgresUnknownUser,
        Kind::DatabaseMissing => C::PostgresDatabaseMissing,
        Kind::TooManyConnections => C::PostgresTooManyConnections,
        Kind::ServerStarting => C::PostgresServerStarting,
        Kind::AuthUnsupported => C::PostgresAuthUnsupported,
        Kind::QueryFailed => C::PostgresQueryFailed,
        Kind::ServerError => C::PostgresServerError,
        Kind::ProtocolViolation { .. } => C::PostgresProtocol,
        Kind::Closed { .. } => C::PostgresClosed,
        Kind::Timeout { .. } => C::PostgresTimeout,
        Kind::Io { .. } => C::PostgresIo,
    }
}
