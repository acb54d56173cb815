//! Content negotiation for /api/probe: JSON (the default, the report's serde form with
//! the edge's `invocation` object merged in), `text/plain` (the terminal table) or HTML.

use serde_json::{Map, Value};

use crate::render;
use crate::report::Report;

use super::page;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
    Html,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Text => "text/plain; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }

    /// `?format=` wins over `Accept`: a browser cannot set headers from the address bar.
    pub fn from_query(v: &str) -> Result<Format, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "text" | "txt" | "plain" => Ok(Format::Text),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown format `{}` (expected json, text or html)",
                other.chars().take(32).collect::<String>()
            )),
        }
    }

    /// Picks the highest-quality match of `Accept` among the three; ties go to JSON,
    /// then HTML, then text. No header, `*/*`, or nothing acceptable gives JSON.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Format::Json;
        };
        let ranges: Vec<(String, f32)> = accept.split(',').filter_map(media_range).collect();
        let quality = |mime: &str| -> f32 {
            let (ty, _) = mime.split_once('/').unwrap_or((mime, ""));
            // The most specific range that matches decides (RFC 9110 §12.5.1).
            let mut best: Option<(u8, f32)> = None;
            for (range, q) in &ranges {
                let spec = if range == mime {
                    3
                } else if range.strip_suffix("/*") == Some(ty) {
                    2
                } else if range == "*/*" {
                    1
                } else {
                    continue;
                };
                if best.is_none_or(|(s, _)| spec > s) {
                    best = Some((spec, *q));
                }
            }
            best.map_or(0.0, |(_, q)| q)
        };
        let candidates = [
            (Format::Json, quality("application/json")),
            (Format::Html, quality("text/html")),
            (Format::Text, quality("text/plain")),
        ];
        let mut pick = (Format::Json, 0.0f32);
        for (f, q) in candidates {
            if q > pick.1 {
                pick = (f, q);
            }
        }
        pick.0
    }
}

/// `type/subtype;q=0.5` into the lower-cased range and its quality.
fn media_range(s: &str) -> Option<(String, f32)> {
    let mut parts = s.split(';');
    let range = parts.next()?.trim().to_ascii_lowercase();
    if range.is_empty() {
        return None;
    }
    let mut q = 1.0;
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("q")
        {
            q = v
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))?;
        }
    }
    Some((range, q))
}

/// Renders a report in `format`. `extra` holds the edge's additions (`invocation`,
/// and `scheduled` for `?last`); they are merged into the JSON at the top level so the
/// engine's report type stays free of host concepts.
pub fn render(report: &Report, format: Format, extra: Map<String, Value>) -> String {
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(report).unwrap_or_else(|e| {
                serde_json::json!({ "error": { "class": "handler.internal", "message": e.to_string() } })
            });
            if let Value::Object(m) = &mut v {
                m.extend(extra);
            }
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Text => {
            let mut s = render::text::render(report);
            for (k, v) in &extra {
                s.push_str(&format!("\n{k}: {}", compact(v)));
            }
            s.push('\n');
            s
        }
        Format::Html => page::render(report, &extra),
    }
}

/// `key=value` pairs of a small JSON object, for the text footer.
pub fn compact(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={}", compact(other)),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_table() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        let table = [
            (None, Format::Json),
            (Some(""), Format::Json),
            (Some("*/*"), Format::Json),
            (Some("application/json"), Format::Json),
            (Some("text/plain"), Format::Text),
            (Some("text/*"), Format::Html),
            (Some(browser), Format::Html),
            (Some("text/plain, application/json;q=0.5"), Format::Text),
            (
                Some("application/json;q=0.1, text/html;q=0.2"),
                Format::Html,
            ),
            (Some("application/xml"), Format::Json),
            (Some("text/plain;q=0, */*"), Format::Json),
            (Some("TEXT/PLAIN"), Format::Text),
            (Some("text/plain;q=bogus, application/json"), Format::Json),
        ];
        for (accept, want) in table {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn format_query() {
        assert_eq!(Format::from_query("TEXT"), Ok(Format::Text));
        assert_eq!(Format::from_query("html"), Ok(Format::Html));
        assert!(Format::from_query("xml").unwrap_err().contains("`xml`"));
    }
}
