//! The Redis layer in the engine's one shape: `run(TcpStream, RedisStep, &Budget)`.
//! TLS goes through the TLS layer (`tls_upgrade::LayerUpgrade`), so the certificate
//! evidence is the report's `tls` layer; the probe's own evidence is the `redis` layer.

use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Kind, Options, Phase, probe};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::probe::handshake::Credential;
use crate::probe::identity::{self, IdentityAsk, IdentityError, resource};
use crate::probe::step::ProtocolEnd;
use crate::probe::tls::TlsStep;
pub use crate::probe::tls_upgrade::Ran;
use crate::probe::tls_upgrade::{LayerUpgrade, finish};
use crate::report::{FailureClass, Layer};
use FailureClass as C;

pub struct RedisStep<'a> {
    pub opts: Options,
    /// The TLS layer's input (ignored when `opts.tls` is `Disable`).
    pub tls: TlsStep<'a>,
    /// PING, AUTH and PING again together.
    pub timeout: Duration,
    /// `AUTH <object id> <token>` with a token from the app's managed identity; the object
    /// id is `opts.user`, or the token's `oid` claim.
    pub identity: Option<IdentityAsk<'a>>,
    pub ctx: &'a Context,
}

pub async fn run(stream: TcpStream, step: RedisStep<'_>, budget: &Budget) -> Ran {
    let start = Instant::now();
    let mut opts = step.opts;
    let mut fetch = identity::fetch(step.identity.as_ref(), resource::REDIS, budget).await;
    if let Some(f) = &mut fetch
        && let Ok(t) = &f.token
    {
        let secret = t.secret().clone();
        if opts.user.is_none() {
            // Azure names the Entra ACL user by the identity's object id.
            opts.user = t.object_id();
        }
        if opts.user.is_some() {
            opts.credential = Credential::Token(secret);
        } else {
            f.token = Err(IdentityError::Malformed(
                "the token has no `oid` claim to name the Redis user: set `user` to the identity's object id".into(),
            ));
        }
    }
    let (limit, _) = budget.limit(step.tls.timeout + step.timeout);
    let deadline = Instant::now() + limit;
    let mut slot = Mutex::new(None);
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
    // TLS comes first on a Redis port: a handshake that fails before any certificate
    // (not TLS, an alert) is Redis's `tls_refused` (6380 vs 6379), the layer stays `tls`.
    if let Some((_, tls)) = slot.get_mut().unwrap_or_else(|p| p.into_inner()).as_mut() {
        crate::probe::tls::reclass_handshake(tls, C::RedisTlsRefused, step.ctx);
    }
    let mut ran = finish(
        slot,
        ProtocolEnd {
            layer: Layer::Redis,
            protocol: "redis",
            start,
            witness: None,
            failure,
            detail,
            ctx: step.ctx,
        },
    );
    if let Some(f) = fetch {
        identity::fold(&mut ran.step, Layer::Redis, f, step.ctx);
    }
    ran
}

/// The failure class of a probe kind (its string is `Kind::class()`; a test holds them equal).
pub fn class(kind: &Kind) -> FailureClass {
    match kind {
        Kind::Timeout { phase: Phase::Ping } => C::RedisNoAnswer,
        Kind::NotThisProtocol => C::RedisNotRedis,
        Kind::TlsRefusedByServer => C::RedisTlsRefused,
        Kind::TlsFailed => C::RedisTlsFailed,
        Kind::PlaintextRefused => C::RedisPlaintextRefused,
        Kind::AuthFailed => C::RedisAuthFailed,
        Kind::TokenRejected => C::RedisTokenRejected,
        Kind::TokenExpired => C::RedisTokenExpired,
        Kind::TokenNeedsTls => C::RedisTokenNeedsTls,
        Kind::NoPermission => C::RedisNoPermission,
        Kind::ProtectedMode => C::RedisProtectedMode,
        Kind::ServerFirewall => C::RedisFirewall,
        Kind::Loading => C::RedisLoading,
        Kind::ServerError => C::RedisServerError,
        Kind::ProtocolViolation { .. } => C::RedisProtocol,
        Kind::Closed { .. } => C::RedisClosed,
        Kind::Timeout { .. } => C::RedisTimeout,
        Kind::Io { .. } => C::RedisIo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_strings_are_the_modules() {
        for p in [Phase::Tls, Phase::Ping, Phase::Auth, Phase::PingAfterAuth] {
            for k in [
                Kind::NotThisProtocol,
                Kind::TlsRefusedByServer,
                Kind::TlsFailed,
                Kind::PlaintextRefused,
                Kind::AuthFailed,
                Kind::TokenRejected,
                Kind::TokenExpired,
                Kind::TokenNeedsTls,
                Kind::NoPermission,
                Kind::ProtectedMode,
                Kind::ServerFirewall,
                Kind::Loading,
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
