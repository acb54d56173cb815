//! The series `/api/metrics` adds when runs are kept in the shared store (docs/storage.md):
//! the last run from its compact record (so every instance answers the same), whether the
//! store could be read, and uptime per target and window.

use crate::store::{RunRecord, TargetUptime};

use super::prometheus::{family, sample, secs};

/// The last run as stored: `routeproof_report_available 1`, when it finished and on which
/// instance, and per target success, duration, layer durations and failure class.
pub fn run(out: &mut String, run: &RunRecord, finished_at_unix: Option<f64>) {
    family(
        out,
        "routeproof_report_available",
        "gauge",
        "1 when a scheduled report exists (read from the shared store)",
    );
    sample(out, "routeproof_report_available", &[], 1.0);
    family(
        out,
        "routeproof_report_source_info",
        "gauge",
        "Where the reported run comes from: the instance that ran it and its trigger",
    );
    sample(
        out,
        "routeproof_report_source_info",
        &[
            ("instance", &run.instance),
            ("scope", &run.scope),
            ("finished_at", &run.finished_at),
        ],
        1.0,
    );
    if let Some(t) = finished_at_unix {
        family(
            out,
            "routeproof_last_run_timestamp_seconds",
            "gauge",
            "When the scheduled run this scrape reports finished (unix seconds)",
        );
        sample(out, "routeproof_last_run_timestamp_seconds", &[], t);
    }
    let ok = run.targets.iter().filter(|t| t.ok).count();
    family(
        out,
        "routeproof_targets",
        "gauge",
        "Targets in the last run, by result",
    );
    sample(out, "routeproof_targets", &[("result", "ok")], ok as f64);
    sample(
        out,
        "routeproof_targets",
        &[("result", "failed")],
        (run.targets.len() - ok) as f64,
    );
    family(
        out,
        "probe_success",
        "gauge",
        "1 when every layer and expectation of the target held",
    );
    for t in &run.targets {
        sample(
            out,
            "probe_success",
            &[("target", &t.name)],
            if t.ok { 1.0 } else { 0.0 },
        );
    }
    family(
        out,
        "probe_duration_seconds",
        "gauge",
        "How long the target's probe took",
    );
    for t in &run.targets {
        sample(
            out,
            "probe_duration_seconds",
            &[("target", &t.name)],
            secs(t.ms),
        );
    }
    family(
        out,
        "probe_layer_duration_seconds",
        "gauge",
        "How long each layer that ran took",
    );
    for t in &run.targets {
        for (layer, ms) in &t.layers {
            sample(
                out,
                "probe_layer_duration_seconds",
                &[("target", &t.name), ("layer", layer)],
                secs(*ms),
            );
        }
    }
    family(
        out,
        "probe_failure_info",
        "gauge",
        "1 for a failed target, labelled with its failure class",
    );
    for t in run.targets.iter().filter(|t| !t.ok) {
        let class = t.class.as_ref().map_or("unknown", |c| c.as_str());
        let layer = t.reached.as_deref().unwrap_or("");
        sample(
            out,
            "probe_failure_info",
            &[("target", &t.name), ("class", class), ("layer", layer)],
            1.0,
        );
    }
}

/// `routeproof_store_stale`: 1 when the store could not be read, so the series come from
/// this instance's memory (or are missing) and may be older than the newest run.
pub fn stale(out: &mut String, stale: bool, class: Option<&str>) {
    family(
        out,
        "routeproof_store_stale",
        "gauge",
        "1 when the shared store could not be read and this answer may be stale",
    );
    match class {
        Some(c) => sample(out, "routeproof_store_stale", &[("class", c)], 1.0),
        None => sample(
            out,
            "routeproof_store_stale",
            &[],
            if stale { 1.0 } else { 0.0 },
        ),
    }
}

/// `routeproof_uptime_ratio{target,window}` (0..1) and the runs behind it; a window
/// without runs has no ratio sample (never a made-up 0 or 1).
pub fn uptime(out: &mut String, uptime: &[TargetUptime]) {
    family(
        out,
        "routeproof_uptime_ratio",
        "gauge",
        "Share of stored runs in the window in which the target was ok",
    );
    for u in uptime {
        for (w, win) in [("24h", &u.day), ("7d", &u.week)] {
            if let Some(r) = win.uptime {
                sample(
                    out,
                    "routeproof_uptime_ratio",
                    &[("target", &u.name), ("window", w)],
                    r,
                );
            }
        }
    }
    family(
        out,
        "routeproof_uptime_runs",
        "gauge",
        "Stored runs in the window",
    );
    for u in uptime {
        for (w, win) in [("24h", &u.day), ("7d", &u.week)] {
            sample(
                out,
                "routeproof_uptime_runs",
                &[("target", &u.name), ("window", w)],
                f64::from(win.runs),
            );
        }
    }
}
