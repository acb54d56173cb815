//! The Kafka layer in the engine's one shape: `run(stream, KafkaStep, &Budget)`. TLS (9093)
//! runs before it as the TLS layer, so the certificate evidence is the report's `tls`
//! layer; this layer's evidence is the probe's (`Evidence`: the API key range, the SASL
//! mechanisms, the brokers `Metadata` advertises).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{Credentials, ErrorKind, Options, probe};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::probe::identity::{self, IdentityAsk};
use crate::probe::step::{Login, Step};
use crate::report::{FailureClass, Layer, LayerResult};

pub struct KafkaStep<'a> {
    /// `tls` is `None`: the TLS layer has run on the stream already.
    pub opts: Options,
    /// The whole exchange (ApiVersions, SASL, Metadata).
    pub timeout: Duration,
    /// Log in with a token from the app's managed identity (`resource`'s audience),
    /// which replaces `opts.credentials`.
    pub identity: Option<IdentityAsk<'a>>,
    /// The token resource: see `identity::resource` and docs/protocols.md.
    pub resource: String,
    pub ctx: &'a Context,
}

pub async fn run<S>(stream: S, step: KafkaStep<'_>, budget: &Budget) -> Step<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let start = Instant::now();
    let fetch = identity::fetch(step.identity.as_ref(), &step.resource, budget).await;
    let login = Login {
        layer: Layer::Kafka,
        protocol: "kafka",
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
