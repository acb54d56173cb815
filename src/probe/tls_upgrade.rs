//! The TLS layer as the protocol probes' upgrade (`handshake::TlsUpgrade`): PostgreSQL
//! decides *when* to start TLS (after `SSLRequest`), the TLS layer (`tls::run`) does the
//! handshake and makes the certificate evidence, and its result lands in the report as
//! the target's TLS layer, as it does inside TDS PRELOGIN.

use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::handshake::{TlsInfo, TlsUpgrade, UpgradeError, UpgradeErrorKind};
use super::step::Step;
use super::tls::{self, TlsStep};
use crate::budget::Budget;
use crate::report::{FailureClass, LayerResult};

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
