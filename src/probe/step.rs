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
