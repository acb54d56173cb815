//! Prometheus text exposition (format 0.0.4) of a report, for `/api/metrics`.
//!
//! Names follow blackbox_exporter where one exists (`probe_success`,
//! `probe_duration_seconds`, `probe_dns_lookup_time_seconds`, `probe_http_status_code`,
//! `probe_ssl_earliest_cert_expiry`), with a `target` label because one scrape covers
//! every configured target. routeproof's own facts carry its layers and failure classes:
//! `probe_layer_duration_seconds{target,layer}` (a layer that did not run has no series,
//! never a 0) and `probe_failure_info{target,class,layer} 1`.
//!
//! The handler renders the last *scheduled* report: a scrape never sends traffic into
//! the private network by itself, and scrapers see the same results the timer recorded.

use std::fmt::Write;

use crate::report::{Evidence, Layer, Report, TargetReport};

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Facts about where the report came from, exposed next to it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Source {
    /// When the scheduled run finished, unix seconds.
    pub finished_at_unix: Option<f64>,
    /// The report was read from the shared store (docs/storage.md), not this
    /// instance's memory.
    pub stored: bool,
}

/// Renders `report` (or, with `None`, only the series that say no report exists yet).
pub fn render(report: Option<&Report>, source: Source) -> String {
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "routeproof_report_available",
        "gauge",
        if source.stored {
            "1 when a scheduled report exists (read from the shared store)"
        } else {
            "1 when a scheduled report exists on this instance (each instance keeps its own, in memory)"
        },
    );
    sample(
        &mut out,
        "routeproof_report_available",
        &[],
        if report.is_some() { 1.0 } else { 0.0 },
    );
    let Some(report) = report else {
        return out;
    };
    run_families(&mut out, report, source);
    target_families(&mut out, report);
    layer_families(&mut out, report);
    out
}

/// The run as a whole: build info, when it finished, how long it took, how it ended.
fn run_families(out: &mut String, report: &Report, source: Source) {
    family(
        out,
        "routeproof_build_info",
        "gauge",
        "routeproof version and report schema",
    );
    sample(
        out,
        "routeproof_build_info",
        &[("version", &report.version), ("schema", report.schema)],
        1.0,
    );
    if let Some(t) = source.finished_at_unix {
        family(
            out,
            "routeproof_last_run_timestamp_seconds",
            "gauge",
            "When the scheduled run this scrape reports finished (unix seconds)",
        );
        sample(out, "routeproof_last_run_timestamp_seconds", &[], t);
    }
    family(
        out,
        "routeproof_run_duration_seconds",
        "gauge",
        "Wall time of the whole scheduled run",
    );
    sample(
        out,
        "routeproof_run_duration_seconds",
        &[],
        secs(report.duration_ms),
    );
    family(
        out,
        "routeproof_targets",
        "gauge",
        "Targets in the last run, by result",
    );
    sample(
        out,
        "routeproof_targets",
        &[("result", "ok")],
        report.summary.ok as f64,
    );
    sample(
        out,
        "routeproof_targets",
        &[("result", "failed")],
        report.summary.failed as f64,
    );
}

/// One sample per target: success, duration, the layer reached, each layer's duration.
fn target_families(out: &mut String, report: &Report) {
    per_target(
        out,
        report,
        "probe_success",
        "1 when every layer and expectation of the target held",
        |t| vec![(vec![], if t.ok { 1.0 } else { 0.0 })],
    );
    per_target(
        out,
        report,
        "probe_duration_seconds",
        "How long the target's probe took",
        |t| vec![(vec![], secs(t.duration_ms))],
    );
    per_target(
        out,
        report,
        "probe_reached_layer_info",
        "The last layer that answered (absent when not even DNS answered)",
        |t| {
            t.reached
                .map(|l| vec![(vec![("layer", l.as_str().to_string())], 1.0)])
                .unwrap_or_default()
        },
    );
    per_target(
        out,
        report,
        "probe_layer_duration_seconds",
        "Duration of each layer that ran; a layer that did not run has no series",
        |t| {
            t.layers
                .iter()
                .map(|l| {
                    (
                        vec![("layer", l.layer.as_str().to_string())],
                        secs(l.duration_ms),
                    )
                })
                .collect()
        },
    );
}

/// Why targets failed, and the blackbox_exporter-named facts of single layers (DNS
/// time, HTTP status, certificate expiry).
fn layer_families(out: &mut String, report: &Report) {
    per_target(
        out,
        report,
        "probe_failure_info",
        "Why the target failed: the stable failure class and the layer it happened at",
        |t| {
            t.failure
                .as_ref()
                .map(|f| {
                    vec![(
                        vec![
                            ("class", f.class.as_str().to_string()),
                            (
                                "layer",
                                f.layer.map(|l| l.as_str()).unwrap_or("").to_string(),
                            ),
                        ],
                        1.0,
                    )]
                })
                .unwrap_or_default()
        },
    );
    per_target(
        out,
        report,
        "probe_dns_lookup_time_seconds",
        "Duration of the DNS layer",
        |t| {
            layer_ms(t, Layer::Dns)
                .map(|ms| vec![(vec![], secs(ms))])
                .unwrap_or_default()
        },
    );
    per_target(
        out,
        report,
        "probe_http_status_code",
        "HTTP status of the final response",
        |t| {
            t.layers
                .iter()
                .find_map(|l| match &l.evidence {
                    Evidence::Http(h) => h.status,
                    _ => None,
                })
                .map(|s| vec![(vec![], f64::from(s))])
                .unwrap_or_default()
        },
    );
    per_target(
        out,
        report,
        "probe_ssl_earliest_cert_expiry",
        "Earliest not-after of the certificate chain the server sent (unix seconds)",
        |t| {
            earliest_expiry(t)
                .map(|s| vec![(vec![], s as f64)])
                .unwrap_or_default()
        },
    );
}

/// The earliest `not_after` of every TLS chain the target's layers saw (TLS, or the
/// handshake inside TDS PRELOGIN).
pub fn earliest_expiry(t: &TargetReport) -> Option<i64> {
    t.layers
        .iter()
        .flat_map(|l| match &l.evidence {
            Evidence::Tls(tls) => tls.chain.iter().collect::<Vec<_>>(),
            Evidence::Tds(tds) => tds
                .tls
                .as_ref()
                .map(|tls| tls.chain.iter().collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        })
        .filter_map(|c| c.not_after_unix)
        .min()
}

/// Milliseconds (microsecond resolution in the report) to seconds without float noise
/// (`0.349 / 1000.0` prints as `0.00034899999999999997`).
pub(super) fn secs(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1_000_000.0
}

fn layer_ms(t: &TargetReport, layer: Layer) -> Option<f64> {
    t.layers
        .iter()
        .find(|l| l.layer == layer)
        .map(|l| l.duration_ms)
}

type Series = Vec<(Vec<(&'static str, String)>, f64)>;

/// One gauge family with a sample (or none, or several) per target. The family header
/// is written only when some target has a sample.
fn per_target(
    out: &mut String,
    report: &Report,
    name: &str,
    help: &str,
    f: impl Fn(&TargetReport) -> Series,
) {
    let mut body = String::new();
    for t in &report.targets {
        for (labels, v) in f(t) {
            let mut all: Vec<(&str, &str)> = vec![("target", t.name.as_str())];
            all.extend(labels.iter().map(|(k, v)| (*k, v.as_str())));
            sample(&mut body, name, &all, v);
        }
    }
    if !body.is_empty() {
        family(out, name, "gauge", help);
        out.push_str(&body);
    }
}

pub(super) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub(super) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(val));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(v));
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` is what Prometheus writes; Rust's `{}`
/// is shortest-round-trip too and parses the same. Non-finite values are spelled out.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Label values escape backslash, double quote and line feed.
pub fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text escapes backslash and line feed.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.0015), "0.0015");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }

    #[test]
    fn seconds_without_noise() {
        assert_eq!(number(secs(0.349)), "0.000349");
        assert_eq!(number(secs(1234.5)), "1.2345");
    }

    #[test]
    fn no_report_is_one_series() {
        let s = render(None, Source::default());
        assert!(s.ends_with("routeproof_report_available 0\n"), "{s}");
    }
}
