//! The HTML page for people who open /api/probe in a browser (built by
//! `render::html`). Self-contained (no scripts, fonts or external assets, so it
//! renders under a `default-src 'none'` policy) and every value is escaped, because
//! target names, DNS answers and error messages are not ours to trust.

use serde_json::{Map, Value};

use crate::render;
use crate::report::Report;

/// Sent with the page: nothing may load, inline styles excepted.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// The status page: see `render::html` (rows, waterfall, environment, last scheduled run).
pub fn render(report: &Report, extra: &Map<String, Value>) -> String {
    render::html::render(report, extra)
}
