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

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
