//! A plain HTML page for people who open /api/probe in a browser: one summary table and
//! the text report below it. Self-contained (no scripts, fonts or external assets, so it
//! renders under a `default-src 'none'` policy) and every value is escaped, because
//! target names, DNS answers and error messages are not ours to trust.

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::render;
use crate::report::Report;

use super::negotiate::compact;

/// Sent with the page: nothing may load, inline styles excepted.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

pub fn render(report: &Report, extra: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(4096);
    let verdict = if report.ok { "all ok" } else { "FAILED" };
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>routeproof: {}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}}\
         .ok{{color:#176b2c;font-weight:600}}.fail{{color:#a11;font-weight:600}}\
         pre{{background:#f6f6f6;padding:1rem;overflow-x:auto}}</style></head><body>\n",
        escape(verdict)
    );
    let _ = writeln!(
        out,
        "<h1>routeproof <span class=\"{}\">{}</span></h1>\n<p>{} target(s): {} ok, {} failed; started {}, {:.1} ms (deadline {:.0} ms)</p>",
        if report.ok { "ok" } else { "fail" },
        escape(verdict),
        report.summary.total,
        report.summary.ok,
        report.summary.failed,
        escape(&report.started_at),
        report.duration_ms,
        report.deadline_ms,
    );
    out.push_str(
        "<table><thead><tr><th>target</th><th>result</th><th>reached</th><th>failure</th><th>hint</th></tr></thead><tbody>\n",
    );
    for t in &report.targets {
        let (class, message, hint) = match &t.failure {
            Some(f) => (f.class.as_str(), f.message.as_str(), f.hint.as_str()),
            None => ("", "", ""),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}<br><small>{}</small></td><td class=\"{}\">{}</td><td>{}</td><td>{}{}{}</td><td>{}</td></tr>",
            escape(&t.name),
            escape(&t.target),
            if t.ok { "ok" } else { "fail" },
            if t.ok { "PASS" } else { "FAIL" },
            t.reached.map(|l| l.as_str()).unwrap_or("nothing"),
            escape(class),
            if class.is_empty() { "" } else { ": " },
            escape(message),
            escape(hint),
        );
    }
    out.push_str("</tbody></table>\n<h2>Details</h2>\n<pre>");
    out.push_str(&escape(&render::text::render(report)));
    out.push_str("</pre>\n");
    for (k, v) in extra {
        let _ = writeln!(
            out,
            "<p><small>{}: {}</small></p>",
            escape(k),
            escape(&compact(v))
        );
    }
    out.push_str("</body></html>\n");
    out
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
