//! The Kafka layer in the engine's one shape: `run(stream, KafkaStep, &Budget)`. TLS (9093)
//! runs before it as the TLS layer, so the certificate evidence is the report's `tls`
//! layer; this layer's evidence is the probe's (`Evidence`: the API key range, the SASL
//! mechanisms, the brokers `Metadata` advertises).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{ErrorKind, Options, probe};
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::probe::step::Step;
use crate::report::{Evidence, FailureClass, Layer, LayerResult, ProtocolEvidence, ms};

pub struct KafkaStep<'a> {
    /// `tls` is `None`: the TLS layer has run on the stream already.
    pub opts: Options,
    /// The whole exchange (ApiVersions, SASL, Metadata).
    pub timeout: Duration,
    pub ctx: &'a Context,
}

pub async fn run<S>(stream: S, step: KafkaStep<'_>, budget: &Budget) -> Step<()>
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
            Some(Layer::Kafka),
            class(f.kind),
            format!("{phase}: {}", f.message),
            step.ctx,
        )
    });
    let evidence = ProtocolEvidence {
        protocol: "kafka",
        witness: None,
        detail: serde_json::to_value(&out.evidence).unwrap_or_default(),
        // The messaging logins take no managed identity yet (`probe::identity` has the
        // function: `resource::SERVICE_BUS` / `EVENT_HUBS`).
        identity: None,
    };
    Step::last(LayerResult {
        layer: Layer::Kafka,
        ok: error.is_none(),
        start_ms: 0.0,
        duration_ms: ms(start.elapsed()),
        error,
        evidence: Evidence::Protocol(Box::new(evidence)),
    })
}

/// The failure class of a probe kind (its string is `ErrorKind::class()`).
pub fn class(kind: ErrorKind) -> FailureClass {
    use FailureClass as C;
    match kind {
        ErrorKind::NotThisProtocol => C::KafkaNotThisProtocol,
        ErrorKind::TlsRefused => C::KafkaTlsRefused,
        ErrorKind::Closed => C::KafkaClosed,
        ErrorKind::Timeout => C::KafkaTimeout,
        ErrorKind::AuthFailed => C::KafkaAuthFailed,
        ErrorKind::TokenExpired => C::KafkaTokenExpired,
        ErrorKind::NetworkRuleRefusal => C::KafkaNetworkRule,
        ErrorKind::Unsupported => C::KafkaUnsupported,
        ErrorKind::IllegalSaslState => C::KafkaIllegalSaslState,
        ErrorKind::BrokerError => C::KafkaBrokerError,
        ErrorKind::BadCredentials => C::KafkaBadCredentials,
        ErrorKind::ProtocolError => C::KafkaProtocolError,
        ErrorKind::Io => C::KafkaIoError,
    }
}

/// A TLS handshake that failed before any certificate check on a Kafka port is Kafka's
/// `tls_refused`, with its hint; the layer stays `tls`.
pub fn tls_refused(l: &mut LayerResult, ctx: &Context) {
    crate::probe::tls::reclass_handshake(l, FailureClass::KafkaTlsRefused, ctx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_strings_are_the_modules() {
        use ErrorKind as K;
        for k in [
            K::NotThisProtocol,
            K::TlsRefused,
            K::Closed,
            K::Timeout,
            K::AuthFailed,
            K::TokenExpired,
            K::NetworkRuleRefusal,
            K::Unsupported,
            K::IllegalSaslState,
            K::BrokerError,
            K::BadCredentials,
            K::ProtocolError,
            K::Io,
        ] {
            assert_eq!(class(k).as_str(), k.class(), "{k:?}");
            assert_eq!(class(k).layer_answered(), k.answered(), "{k:?}");
        }
    }
}
