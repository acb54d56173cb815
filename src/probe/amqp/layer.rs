//! The AMQP layer in the engine's one shape: `run(stream, AmqpStep, &Budget)`. TLS (5671,
//! and 443 under WebSockets) runs before it as the TLS layer, so the certificate evidence
//! is the report's `tls` layer; this layer's evidence is the probe's (`Evidence`: the
//! SASL mechanisms, the container id, the frame size, the WebSocket answer).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{Credentials, ErrorKind, Options, probe};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::probe::identity::{self, IdentityAsk};
use crate::probe::step::{Login, Step};
use crate::report::{FailureClass, Layer, LayerResult};

pub struct AmqpStep<'a> {
    /// `tls` is `None`: the TLS layer has run on the stream already.
    pub opts: Options,
    /// The whole exchange (WebSocket upgrade, SASL, open, CBS, close).
    pub timeout: Duration,
    /// Log in with a token from the app's managed identity (`resource`'s audience),
    /// which replaces `opts.credentials`.
    pub identity: Option<IdentityAsk<'a>>,
    /// The token resource: see `identity::resource` and docs/protocols.md.
    pub resource: String,
    pub ctx: &'a Context,
}

pub async fn run<S>(stream: S, step: AmqpStep<'_>, budget: &Budget) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let start = Instant::now();
    let fetch = identity::fetch(step.identity.as_ref(), &step.resource, budget).await;
    let login = Login {
        layer: Layer::Amqp,
        protocol: "amqp",
        start,
        ctx: step.ctx,
    };
    let mut opts = step.opts;
    let (limit, _) = budget.limit(step.timeout);
    login
        .run(fetch, |token| {
            if let Some(t) = token {
                opts.credentials = Credentials::Bearer(t.clone());
            }
            async move {
                probe(stream, &opts, Instant::now() + limit)
                    .await
                    .probed(class)
            }
        })
        .await
}

/// The failure class of a probe kind (`ErrorKind::class()` is its string).
pub fn class(kind: ErrorKind) -> FailureClass {
    use FailureClass as C;
    match kind {
        ErrorKind::NotThisProtocol => C::AmqpNotThisProtocol,
        ErrorKind::OtherAmqpVersion => C::AmqpUnsupportedVersion,
        ErrorKind::TlsRefused => C::AmqpTlsRefused,
        ErrorKind::WebSocketRefused => C::AmqpWebsocketRefused,
        ErrorKind::Closed => C::AmqpClosed,
        ErrorKind::Timeout => C::AmqpTimeout,
        ErrorKind::AuthFailed => C::AmqpAuthFailed,
        ErrorKind::TokenExpired => C::AmqpTokenExpired,
        ErrorKind::Forbidden => C::AmqpForbidden,
        ErrorKind::NetworkRuleRefusal => C::AmqpNetworkRule,
        ErrorKind::Unsupported => C::AmqpUnsupported,
        ErrorKind::RemoteError => C::AmqpRemoteError,
        ErrorKind::BadCredentials => C::AmqpBadCredentials,
        ErrorKind::ProtocolError => C::AmqpProtocolError,
        ErrorKind::Io => C::AmqpIoError,
    }
}

/// A TLS handshake that failed before any certificate check (`tls.handshake`: not TLS,
/// closed, an alert) on an AMQP port is AMQP's `tls_refused`, with its hint; the layer
/// stays `tls`. Certificate verdicts keep the TLS layer's classes.
pub fn tls_refused(l: &mut LayerResult, ctx: &Context) {
    crate::probe::tls::reclass_handshake(l, FailureClass::AmqpTlsRefused, ctx);
}
