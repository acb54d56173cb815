//! The TLS layer as the protocol probes' upgrade (`handshake::TlsUpgrade`): PostgreSQL
//! decides *when* to start TLS (after `SSLRequest`), the TLS layer (`tls::run`) does the
//! handshake and makes the certificate evidence, and its result lands in the report as
//! the target's TLS layer, as it does inside TDS PRELOGIN.

use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::handshake::{TlsInfo, TlsUpgrade, UpgradeError, UpgradeErrorKind};
use tokio::net::TcpStream;

use super::identity::Fetch;
use super::step::{Login, Probed, Step};
use super::tls::{self, TlsStep};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::layer::Layer;
use crate::report::{FailureClass, LayerResult};
use crate::secret::Secret;

/// What the layer hands back: the TLS layer's result (if TLS ran) with the instant the
/// handshake began (the engine turns it into the result's `start_ms`), and its own.
pub struct Ran {
    pub tls: Option<(Instant, LayerResult)>,
    pub step: Step<()>,
}

/// Where the upgrade leaves the TLS layer's result: when it began, and the result.
pub type Slot = Mutex<Option<(Instant, LayerResult)>>;

/// One upgrade over the TLS layer; the layer's result is left in `out` for the engine.
pub struct LayerUpgrade<'a> {
    pub step: TlsStep<'a>,
    pub out: &'a Slot,
}

impl<S> TlsUpgrade<S> for LayerUpgrade<'_>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    type Stream = tokio_rustls::client::TlsStream<S>;

    async fn upgrade(
        self,
        stream: S,
        deadline: Instant,
    ) -> Result<(Self::Stream, TlsInfo), UpgradeError> {
        let budget = Budget::until(deadline);
        let began = Instant::now();
        let step = tls::run(stream, self.step, &budget).await;
        let error = step.result.error.clone();
        *self.out.lock().unwrap_or_else(|p| p.into_inner()) = Some((began, step.result));
        match (step.next, error) {
            (Some(s), None) => {
                let conn = s.get_ref().1;
                let info = TlsInfo {
                    version: conn.protocol_version().map(|v| format!("{v:?}")),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|c| format!("{:?}", c.suite())),
                };
                Ok((s, info))
            }
            (_, f) => {
                let (kind, message) = match f {
                    Some(f) => (
                        match f.class {
                            FailureClass::TlsTimeout | FailureClass::Deadline => {
                                UpgradeErrorKind::Timeout
                            }
                            _ => UpgradeErrorKind::Handshake,
                        },
                        format!("{} ({})", f.message, f.class),
                    ),
                    None => (UpgradeErrorKind::Handshake, "no TLS stream".into()),
                };
                Err(UpgradeError { kind, message })
            }
        }
    }
}

impl Ran {
    /// The TLS layer's result left in `slot` (if TLS ran) and the protocol layer's step.
    pub fn new(slot: Slot, step: Step<()>) -> Ran {
        Ran {
            tls: slot.into_inner().unwrap_or_else(|p| p.into_inner()),
            step,
        }
    }
}

/// A data-service protocol (postgres, mysql, redis) as [`data_layer`] runs it: its
/// layer, how a managed-identity token becomes its credential, and its probe over the
/// TLS layer's upgrade.
pub trait DataService {
    type Options: Send + Sync;
    const LAYER: Layer;
    const NAME: &'static str;
    fn use_token(opts: &mut Self::Options, token: &Secret);
    fn probe<'a>(
        stream: TcpStream,
        opts: &'a Self::Options,
        upgrade: LayerUpgrade<'a>,
        deadline: Instant,
    ) -> impl Future<Output = Probed> + Send + 'a;
}

/// The body of every data-service layer: the probe within `limit`, TLS through the TLS
/// layer (its result kept for the report), the token (`fetch`) as the credential, and the
/// layer's result through [`Login`].
pub async fn data_layer<P: DataService>(
    stream: TcpStream,
    mut opts: P::Options,
    tls: TlsStep<'_>,
    limit: std::time::Duration,
    start: Instant,
    ctx: &Context,
    fetch: Option<Fetch>,
) -> Ran {
    let slot = Mutex::new(None);
    let login = Login {
        layer: P::LAYER,
        protocol: P::NAME,
        start,
        ctx,
    };
    let done = login
        .run(fetch, |token| {
            if let Some(t) = token {
                P::use_token(&mut opts, t);
            }
            let upgrade = LayerUpgrade {
                step: tls,
                out: &slot,
            };
            P::probe(stream, &opts, upgrade, Instant::now() + limit)
        })
        .await;
    Ran::new(slot, done)
}
