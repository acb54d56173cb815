//! One-line summaries of a report for logs: the host's invocation log (payload-mode
//! `Logs`), the timer's reply, and anything else that wants a line per target.

use crate::report::{Report, TargetReport};

/// `routeproof probe: 3 targets, 2 ok, 1 failed`, then one line per target.
pub fn report_lines(what: &str, r: &Report) -> Vec<String> {
    let mut lines = vec![summary_line(what, r)];
    lines.extend(r.targets.iter().map(target_line));
    lines
}

pub fn summary_line(what: &str, r: &Report) -> String {
    format!(
        "routeproof {what}: {} targets, {} ok, {} failed",
        r.summary.total, r.summary.ok, r.summary.failed
    )
}

pub fn target_line(t: &TargetReport) -> String {
    let reached = t.reached.map(|l| l.as_str()).unwrap_or("nothing");
    match &t.failure {
        None => format!(
            "PASS {} ({}) reached {reached} in {:.1} ms",
            t.name, t.target, t.duration_ms
        ),
        Some(f) => format!(
            "FAIL {} ({}) {}: {} (reached {reached}) hint: {}",
            t.name, t.target, f.class, f.message, f.hint
        ),
    }
}
