//! The series `/api/metrics` adds when runs are kept in the shared store (docs/storage.md),
//! next to the stored report's own (`prometheus::render`): which instance ran it, whether
//! the store could be read, and uptime per target and window.

use crate::store::TargetUptime;
use crate::store::record::LastMeta;

use super::prometheus::{family, sample};

/// `routeproof_report_source_info`: the instance that ran the reported run, its trigger,
/// its scope and when it finished. The label is `source_instance`: a scraped `instance`
/// label collides with the one Prometheus attaches to every target and would arrive
/// renamed `exported_instance` (Prometheus docs, `scrape_config.honor_labels`).
pub fn source(out: &mut String, meta: &LastMeta) {
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
            ("source_instance", &meta.instance),
            ("trigger", meta.trigger.as_str()),
            ("scope", &meta.scope),
            ("finished_at", &meta.finished_at),
        ],
        1.0,
    );
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
