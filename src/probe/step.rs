//! The one shape every layer has. A layer module exposes
//!
//! ```text
//! pub async fn run([io from the layer below,] step: <Layer>Step<'_>, budget: &Budget) -> Step<Next>
//! ```
//!
//! where `<Layer>Step` is its typed input (built by the engine from the spec) and `Next`
//! is what the layer above builds on: the addresses (DNS), the connection (TCP, TLS), or
//! `()` for a protocol at the top.

use crate::report::LayerResult;

/// What a layer hands back: its report entry, warnings for the target, and what the
/// next layer builds on (`None` when there is nothing to build on).
pub struct Step<N> {
    pub result: LayerResult,
    pub warnings: Vec<String>,
    pub next: Option<N>,
}

impl<N> Step<N> {
    /// A layer result with nothing for a layer above (protocols at the top).
    pub fn last(result: LayerResult) -> Step<N> {
        Step {
            result,
            warnings: Vec::new(),
            next: None,
        }
    }
}

/// A protocol layer's failure as its probe reports it: the kind (mapped to the report's
/// class by the layer's `class`) and the message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure<K> {
    pub kind: K,
    pub message: String,
}

/// What a protocol probe found, for its layer result: the witness (the address the
/// server saw, when it named one), the class and message of its failure, its evidence.
pub struct Probed {
    pub witness: Option<std::net::IpAddr>,
    pub failure: Option<(crate::report::FailureClass, String)>,
    pub detail: serde_json::Value,
}

impl Probed {
    /// A data probe's (postgres, mysql, redis) outcome for its layer result: the failure's
    /// class by the layer's `class`, its message as is, the evidence as JSON.
    pub fn of<K>(
        witness: Option<std::net::IpAddr>,
        failure: Option<Failure<K>>,
        class: fn(&K) -> crate::report::FailureClass,
        evidence: &impl serde::Serialize,
    ) -> Probed {
        Probed {
            witness,
            failure: failure.map(|f| (class(&f.kind), f.message)),
            detail: serde_json::to_value(evidence).unwrap_or_default(),
        }
    }
}

/// The frame of every protocol layer that may log in (postgres, mysql, redis, amqp,
/// kafka): the probe runs with the token fetch (if the target uses the app's identity),
/// then the layer result is built, the witness sharpening the hint, and the fetch is
/// folded in (`identity::fold`: its evidence, or the `identity.*` failure).
pub struct Login<'a> {
    pub layer: crate::layer::Layer,
    pub protocol: &'static str,
    /// When the layer began (before the token fetch).
    pub start: tokio::time::Instant,
    pub ctx: &'a crate::diagnose::Context,
}

impl Login<'_> {
    pub async fn run<F, Fut>(self, fetch: Option<super::identity::Fetch>, probe: F) -> Step<()>
    where
        F: FnOnce(Option<&crate::secret::Secret>) -> Fut,
        Fut: Future<Output = Probed>,
    {
        let p = probe(fetch.as_ref().and_then(|f| f.secret())).await;
        let error = p.failure.map(|(class, message)| {
            let mut ctx = self.ctx.clone();
            ctx.witness = p.witness;
            crate::diagnose::failure(Some(self.layer), class, message, &ctx)
        });
        let evidence = crate::report::ProtocolEvidence {
            protocol: self.protocol,
            witness: p.witness,
            detail: p.detail,
            identity: None,
        };
        let mut step = Step::last(LayerResult {
            layer: self.layer,
            ok: error.is_none(),
            start_ms: 0.0,
            duration_ms: crate::report::ms(self.start.elapsed()),
            error,
            evidence: crate::report::Evidence::Protocol(Box::new(evidence)),
        });
        if let Some(f) = fetch {
            super::identity::fold(&mut step, self.layer, f, self.ctx);
        }
        step
    }
}

/// A probe phase as a message prefix: `sasl_header` -> `sasl header`.
pub fn phase_label(phase: impl serde::Serialize) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

/// A messaging probe's failure (amqp, kafka): its kind, the phase it stopped in, the
/// message (secrets already masked).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseFailure<K, P> {
    pub kind: K,
    pub phase: P,
    pub message: String,
}

/// How long one phase of a messaging probe took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timing<P> {
    pub phase: P,
    pub ms: f64,
}

/// A messaging probe's answer: its evidence and its failure, if any.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome<E, K, P> {
    pub evidence: E,
    pub error: Option<PhaseFailure<K, P>>,
}

impl<E: serde::Serialize, K, P: serde::Serialize> Outcome<E, K, P> {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// For the layer result: the failure's class (by `class`) with its message prefixed
    /// by the phase, and the evidence.
    pub fn probed(self, class: fn(K) -> crate::report::FailureClass) -> Probed {
        Probed {
            witness: None,
            failure: self.error.map(|f| {
                let message = format!("{}: {}", phase_label(f.phase), f.message);
                (class(f.kind), message)
            }),
            detail: serde_json::to_value(&self.evidence).unwrap_or_default(),
        }
    }
}
