//! The Redis layer in the engine's one shape: `run(TcpStream, RedisStep, &Budget)`.
//! TLS goes through the TLS layer (`tls_upgrade::LayerUpgrade`), so the certificate
//! evidence is the report's `tls` layer; the probe's own evidence is the `redis` layer.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Kind, Options, Phase, probe};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::probe::handshake::Credential;
use crate::probe::identity::{self, IdentityAsk, IdentityError, resource};
use crate::probe::step::Probed;
use crate::probe::tls::TlsStep;
pub use crate::probe::tls_upgrade::Ran;
use crate::probe::tls_upgrade::{DataService, LayerUpgrade, data_layer};
use crate::report::{FailureClass, Layer};
use crate::secret::Secret;
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
    let (mut opts, tls, ctx) = (step.opts, step.tls, step.ctx);
    let mut fetch = identity::fetch(step.identity.as_ref(), resource::REDIS, budget).await;
    if let Some(f) = &mut fetch
        && let Ok(t) = &f.token
        && opts.user.is_none()
    {
        // Azure names the Entra ACL user by the identity's object id.
        opts.user = t.object_id();
        if opts.user.is_none() {
            f.token = Err(IdentityError::Malformed(
                "the token has no `oid` claim to name the Redis user: set `user` to the identity's object id".into(),
            ));
        }
    }
    let (limit, _) = budget.limit(tls.timeout + step.timeout);
    let mut ran = data_layer::<Redis>(stream, opts, tls, limit, start, ctx, fetch).await;
    // TLS comes first on a Redis port: a handshake that fails before any certificate
    // (not TLS, an alert) is Redis's `tls_refused` (6380 vs 6379), the layer stays `tls`.
    if let Some((_, tls)) = ran.tls.as_mut() {
        crate::probe::tls::reclass_handshake(tls, C::RedisTlsRefused, ctx);
    }
    ran
}

/// The redis protocol for [`data_layer`].
pub struct Redis;

impl DataService for Redis {
    type Options = Options;
    const LAYER: Layer = Layer::Redis;
    const NAME: &'static str = "redis";

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
        Probed::of(None, out.failure, class, &out.evidence)
    }
}

/// The failure class of a probe kind (`Kind::class()` is its string).
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
