//! The AMQP layer in the engine's one shape: `run(stream, AmqpStep, &Budget)`. TLS (5671,
//! and 443 under WebSockets) runs before it as the TLS layer, so the certificate evidence
//! is the report's `tls` layer; this layer's evidence is the probe's (`Evidence`: the
//! SASL mechanisms, the container id, the frame size, the WebSocket answer).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{ErrorKind, Options, probe};
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::probe::step::Step;
use crate::report::{Evidence, FailureClass, Layer, LayerResult, ProtocolEvidence, ms};

pub struct AmqpStep<'a> {
    /// `tls` is `None`: the TLS layer has run on the stream already.
    pub opts: Options,
    /// The whole exchange (WebSocket upgrade, SASL, open, CBS, close).
    pub timeout: Duration,
    pub ctx: &'a Context,
}

pub async fn run<S>(stream: S, step: AmqpStep<'_>, budget: &Budget) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let start = Instant::now();
    let (limit, _) = budget.limit(step.timeout);
    let out = probe(stream, &step.opts, Instant::now() + limit).await;
    let error = out.error.as_ref().map(|f| {
        let phase = serde_json::to_value(f.phase)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        diagnose::failure(
            Some(Layer::Amqp),
            class(f.kind),
            format!("{phase}: {}", f.message),
            step.ctx,
        )
    });
    let evidence = ProtocolEvidence {
        protocol: "amqp",
        witness: None,
        detail: serde_json::to_value(&out.evidence).unwrap_or_default(),
        // The messaging logins take no managed identity yet (`probe::identity` has the
        // function: `resource::SERVICE_BUS` / `EVENT_HUBS`).
        identity: None,
    };
    Step::last(LayerResult {
        layer: Layer::Amqp,
        ok: error.is_none(),
        start_ms: 0.0,
        duration_ms: ms(start.elapsed()),
        error,
        evidence: Evidence::Protocol(Box::new(evidence)),
    })
}

/// The failure class of a probe kind (its string is `ErrorKind::class()`; a test holds
/// them equal).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_strings_are_the_modules() {
        use ErrorKind as K;
        for k in [
            K::NotThisProtocol,
            K::OtherAmqpVersion,
            K::TlsRefused,
            K::WebSocketRefused,
            K::Closed,
            K::Timeout,
            K::AuthFailed,
            K::TokenExpired,
            K::Forbidden,
            K::NetworkRuleRefusal,
            K::Unsupported,
            K::RemoteError,
            K::BadCredentials,
            K::ProtocolError,
            K::Io,
        ] {
            assert_eq!(class(k).as_str(), k.class(), "{k:?}");
            assert_eq!(class(k).layer_answered(), k.answered(), "{k:?}");
        }
    }
}
