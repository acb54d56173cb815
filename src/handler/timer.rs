//! The `scheduled` function: a timer trigger, always in payload mode. It runs every
//! configured target, answers with one `Logs` line per target (the host logs each on the
//! invocation, so they land in App Insights correlated with it) and keeps the report in
//! memory for `/api/probe?last`.
//!
//! A failed target does not fail the invocation: a non-2xx reply would make the host
//! drop the `Logs`, which are the point of the run.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::render::lines::{report_lines, summary_line};

use super::error::ErrorClass;
use super::http_api::ApiReply;
use super::invocation::{Envelope, EnvelopeError, Invocation, get_ci, reply_body, unwrap_encoded};
use super::state::{Scheduled, State, shared};

/// What the timer binding tells us (docs/host-contract.md §5.3). The cron text is not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimerInfo {
    pub is_past_due: bool,
    /// `ScheduleStatus` is null without schedule monitoring (`useMonitor: false`, sub-minute
    /// schedules, no storage).
    pub monitored: bool,
    /// No earlier run on record: `Last` is .NET's `DateTime.MinValue` (`0001-01-01...`).
    pub first_run: bool,
    pub next: Option<String>,
}

/// Finds the timer binding in `Data`: the object with `Schedule`/`IsPastDue`, whatever
/// the binding is named in function.json.
pub fn timer_info(env: &Envelope) -> Option<TimerInfo> {
    let obj = env
        .data
        .values()
        .map(unwrap_encoded)
        .find_map(|v| match v {
            Value::Object(m)
                if get_ci(&m, "IsPastDue").is_some() || get_ci(&m, "Schedule").is_some() =>
            {
                Some(m)
            }
            _ => None,
        })?;
    let is_past_due = match get_ci(&obj, "IsPastDue").map(unwrap_encoded) {
        Some(Value::Bool(b)) => b,
        _ => false,
    };
    let status = match get_ci(&obj, "ScheduleStatus").map(unwrap_encoded) {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    };
    let text = |m: &Map<String, Value>, k: &str| match get_ci(m, k).map(unwrap_encoded) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Some(TimerInfo {
        is_past_due,
        monitored: status.is_some(),
        first_run: status
            .as_ref()
            .and_then(|m| text(m, "Last"))
            .is_some_and(|l| l.starts_with("0001-01-01")),
        next: status.as_ref().and_then(|m| text(m, "Next")),
    })
}

pub async fn scheduled(
    state: &State,
    env: &Envelope,
    inv: &Invocation,
) -> Result<Value, EnvelopeError> {
    let Some(info) = timer_info(env) else {
        return Err(EnvelopeError::new(
            ErrorClass::EnvelopeMissingBinding,
            "`Data` has no timer binding (an object with Schedule, ScheduleStatus and IsPastDue): \
             is this function's trigger a timerTrigger?",
        ));
    };
    let mut notes = Vec::new();
    if info.is_past_due {
        notes.push("routeproof timer: this run is past due (the host missed an occurrence, e.g. while it was down)".to_string());
    }
    if info.first_run {
        notes.push("routeproof timer: first scheduled run on record".to_string());
    }
    if state.targets().is_empty() {
        let line = "routeproof timer: no targets configured, nothing was probed (add [[targets]] to the config)".to_string();
        tracing::warn!("{line}");
        let mut logs = vec![line.clone()];
        logs.extend(notes);
        return Ok(reply_body(Map::new(), logs, Value::String(line)));
    }
    let deadline = state.timer_deadline();
    let (report, _) = state.run(None, deadline).await.map_err(|_| {
        EnvelopeError::internal("the scheduled run ended without a report; see the handler's log")
    })?;
    for t in report.targets.iter().filter(|t| !t.ok) {
        if let Some(f) = &t.failure {
            tracing::warn!(target_name = %t.name, class = %f.class, message = %f.message, "target failed");
        }
    }
    tracing::info!(
        ok = report.ok,
        total = report.summary.total,
        failed = report.summary.failed,
        duration_ms = report.duration_ms,
        past_due = info.is_past_due,
        "scheduled run finished"
    );
    let mut logs = report_lines("timer", &report);
    logs.splice(1..1, notes);
    // The host kills the handler without a signal: telemetry (OTel, App Insights
    // availability) leaves before we answer, within a short bound, and a dead
    // collector never fails the invocation.
    state
        .settings()
        .telemetry
        .export_run(
            &report,
            crate::telemetry::Parent {
                traceparent: inv.traceparent.as_deref(),
                invocation_id: inv.id.as_deref(),
                trigger: crate::telemetry::Trigger::Timer,
            },
            crate::telemetry::FLUSH_BOUND,
        )
        .await;
    let mut summary = summary_line("timer", &report);
    // The shared store (docs/storage.md): a failure is logged and said in the reply,
    // and never fails the invocation; the next run writes again.
    if let Some(store) = state.settings().store.get() {
        let line = persist(store, &report).await;
        summary.push_str(&format!(" ({line})"));
        logs.push(line);
    }
    state.store_scheduled(Scheduled {
        report: Arc::clone(&report),
        invocation: inv.clone(),
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        is_past_due: info.is_past_due,
    });
    Ok(reply_body(Map::new(), logs, Value::String(summary)))
}

/// Writes the run to the store and says how it went, in one line for the reply and the log.
pub async fn persist(
    store: &Arc<crate::store::Store>,
    report: &Arc<crate::report::Report>,
) -> String {
    match shared::record(store, report, crate::store::Trigger::Timer).await {
        Ok(w) => {
            for warning in &w.warnings {
                tracing::warn!(warning = %warning, "run history: written with a warning");
            }
            tracing::info!(blob = %w.history_blob, bytes = w.record_bytes, "run history: run recorded");
            format!("persisted: {}", w.history_blob)
        }
        Err(e) => {
            tracing::warn!(class = %e.class, "run history: persistence failed: {e}");
            format!("persistence failed: {}: {}", e.class, e.message)
        }
    }
}

/// `/api/metrics`: the last scheduled report in Prometheus text format. A scrape never
/// probes (no private-network traffic per scrape); before the first scheduled run it
/// answers 200 with `routeproof_report_available 0`, so the scrape itself stays up.
///
/// With a store, the last run comes from there (the same on every instance) with uptime
/// per target; when the store cannot be read, this instance's memory answers and
/// `routeproof_store_stale 1` says so.
pub async fn metrics(state: &State, inv: &Invocation) -> ApiReply {
    let last = state.last_scheduled();
    let memory = |stale: Option<&str>| {
        let source = crate::render::prometheus::Source {
            finished_at_unix: last.as_ref().and_then(|s| unix(&s.finished_at)),
            stored: false,
        };
        let mut body = crate::render::prometheus::render(last.as_ref().map(|s| &*s.report), source);
        if state.settings().store.get().is_some() {
            crate::render::shared::stale(&mut body, stale.is_some(), stale);
        }
        body
    };
    let mut from = match &last {
        Some(s) => format!(
            "last scheduled run on this instance, finished {}",
            s.finished_at
        ),
        None => "no scheduled run yet".to_string(),
    };
    let body = match state.settings().store.get() {
        None => memory(None),
        Some(store) => match shared::last(store).await {
            // The stored full report renders exactly as this instance's own would.
            Ok(Some(l)) => match l.full_report() {
                Ok(report) => {
                    let source = crate::render::prometheus::Source {
                        finished_at_unix: unix(&l.meta.finished_at),
                        stored: true,
                    };
                    let mut body = crate::render::prometheus::render(Some(&report), source);
                    crate::render::shared::source(&mut body, &l.meta);
                    crate::render::shared::stale(&mut body, false, None);
                    match shared::uptime(store).await {
                        Ok(u) => crate::render::shared::uptime(&mut body, &u),
                        Err(e) => {
                            tracing::warn!(class = %e.class, "run history: uptime unreadable: {e}")
                        }
                    }
                    from = format!(
                        "stored run from instance {}, finished {}",
                        l.meta.instance, l.meta.finished_at
                    );
                    body
                }
                Err(reason) => {
                    let class = crate::store::StoreClass::Corrupt.to_string();
                    tracing::warn!(%class, %reason, "run history: the stored last report cannot be read here, metrics are stale");
                    from.push_str(&format!(
                        "; the stored run cannot be read here ({class}), so this may be stale"
                    ));
                    memory(Some(class.as_str()))
                }
            },
            Ok(None) => memory(None),
            Err(e) => {
                tracing::warn!(class = %e.class, "run history: store unreadable, metrics are stale: {e}");
                from.push_str(&format!(
                    "; the store is unreadable ({}), so this may be stale",
                    e.class
                ));
                memory(Some(e.class.to_string().as_str()))
            }
        },
    };
    ApiReply {
        status: axum::http::StatusCode::OK,
        content_type: crate::render::prometheus::CONTENT_TYPE,
        body,
        headers: Vec::new(),
        logs: vec![format!(
            "routeproof metrics: {from} ({})",
            inv.mode.as_str()
        )],
    }
}

/// RFC 3339 text as unix seconds.
fn unix(at: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::invocation::parse_envelope;

    #[test]
    fn timer_object_variants() {
        let steady = br#"{"Data":{"myTimer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2025-01-15T10:00:00.0019273+00:00","Next":"2025-01-15T10:05:00+00:00","LastUpdated":"2025-01-15T10:00:00.0019273+00:00"},"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"TimerProbe"}}}"#;
        let info = timer_info(&parse_envelope(steady).unwrap()).unwrap();
        assert_eq!(
            info,
            TimerInfo {
                is_past_due: false,
                monitored: true,
                first_run: false,
                next: Some("2025-01-15T10:05:00+00:00".into())
            }
        );
        let first = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"0001-01-01T00:00:00+00:00","Next":"2025-01-15T10:05:00+00:00","LastUpdated":"0001-01-01T00:00:00+00:00"},"IsPastDue":true}},"Metadata":{}}"#;
        let info = timer_info(&parse_envelope(first).unwrap()).unwrap();
        assert!(info.first_run && info.is_past_due && info.monitored);
        let unmonitored = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}"#;
        let info = timer_info(&parse_envelope(unmonitored).unwrap()).unwrap();
        assert!(!info.monitored && !info.first_run);
        let none = br#"{"Data":{"req":{"Url":"http://x/api/probe","Method":"GET"}},"Metadata":{}}"#;
        assert_eq!(timer_info(&parse_envelope(none).unwrap()), None);
    }
}
