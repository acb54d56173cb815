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
use crate::probe::step::ProtocolEnd;
use crate::probe::tls::TlsStep;
pub use crate::probe::tls_upgrade::Ran;
use crate::probe::tls_upgrade::{LayerUpgrade, finish};
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
    let mut opts = step.opts;
    let fetch = identity::fetch(step.identity.as_ref(), resource::OSSRDBMS, budget).await;
    if let Some(t) = fetch.as_ref().and_then(|f| f.secret()) {
        opts.credential = Credential::Token(t.clone());
    }
    let (limit, _) = budget.limit(step.tls.timeout + step.timeout);
    let deadline = Instant::now() + limit;
    let slot = Mutex::new(None);
    let upgrade = LayerUpgrade {
        step: step.tls,
        out: &slot,
    };
    let out = probe(stream, &opts, upgrade, deadline).await;
    let failure = out
        .failure
        .as_ref()
        .map(|f| (class(&f.kind), f.message.clone()));
    let detail = serde_json::to_value(&out.evidence).unwrap_or_default();
    let mut ran = finish(
        slot,
        ProtocolEnd {
            layer: Layer::Mysql,
            protocol: "mysql",
            start,
            witness: out.evidence.witness,
            failure,
            detail,
            ctx: step.ctx,
        },
    );
    if let Some(f) = fetch {
        identity::fold(&mut ran.step, Layer::Mysql, f, step.ctx);
    }
    ran
}

/// The failure class of a probe kind (its string is `Kind::class()`; a test holds them equal).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_strings_are_the_modules() {
        let w = None;
        for p in [Phase::Greeting, Phase::Tls, Phase::Login, Phase::Query] {
            for k in [
                Kind::NotThisProtocol,
                Kind::TlsRefusedByServer,
                Kind::TlsFailed,
                Kind::AuthFailed { witness: w },
                Kind::TokenRejected { witness: w },
                Kind::HostNotAllowed { witness: w },
                Kind::ServerFirewall { witness: w },
                Kind::InsecureTransport,
                Kind::DatabaseMissing,
                Kind::DatabaseAccessDenied,
                Kind::TooManyConnections,
                Kind::PasswordExpired,
                Kind::CleartextNeedsTls,
                Kind::AuthUnsupported,
                Kind::QueryFailed,
                Kind::ServerError,
                Kind::ProtocolViolation { phase: p },
                Kind::Closed { phase: p },
                Kind::Timeout { phase: p },
                Kind::Io { phase: p },
            ] {
                assert_eq!(class(&k).as_str(), k.class(), "{k:?}");
            }
        }
    }
}
