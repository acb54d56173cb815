//! What target discovery did, for the report's environment (`platform::discover` fills it).

use serde::{Deserialize, Serialize};

/// What discovery did, for the report's environment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Summary {
    pub enabled: bool,
    /// Why on or off (`engine.discover`, or the default: on inside Azure).
    pub why: String,
    /// Targets added to the run.
    pub added: usize,
    /// Settings that looked like endpoints but could not be used, and other remarks.
    /// Never a value: only setting names and what was wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
