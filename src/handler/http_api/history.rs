//! `/api/probe?history` and the store's side of `?last` (docs/storage.md): stored runs
//! as JSON, the same on every instance.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::store::{HistoryFilter, Last, Store};

use super::super::error::ErrorClass;
use super::super::invocation::Invocation;
use super::super::negotiate::Format;
use super::super::state::{State, shared};
use super::reply::{ApiReply, invocation_value, report_reply};
use super::request::Query;

/// What the page and the errors say when no store is configured.
pub const HISTORY_OFF: &str =
    "history is off: set AzureWebJobsStorage or ROUTEPROOF_STORAGE (docs/storage.md)";

/// The largest `limit` a caller may ask for.
const MAX_LIMIT: usize = 10_000;

pub async fn history(state: &State, q: &Query, inv: &Invocation) -> ApiReply {
    let Some(store) = state.settings().store.get() else {
        return ApiReply::error(ErrorClass::HistoryOff, HISTORY_OFF, inv);
    };
    let filter = match filter(q) {
        Ok(f) => f,
        Err(m) => return ApiReply::error(ErrorClass::RequestInvalid, m, inv),
    };
    match shared::history(store, filter).await {
        Ok(h) => {
            let body = json!({
                "schema": "routeproof.history-answer/v1",
                "store": store.info(),
                "invocation": invocation_value(inv, "history"),
                "history": h,
            });
            json_reply(
                StatusCode::OK,
                &body,
                format!("routeproof history: {} runs", h.runs.len()),
            )
        }
        Err(e) => {
            tracing::warn!(class = %e.class, "run history: store unreadable: {e}");
            ApiReply::error(
                ErrorClass::HistoryUnavailable,
                format!("the store could not be read ({}): {}", e.class, e.message),
                inv,
            )
        }
    }
}

/// `?last` from the store, in every format: the stored full report rendered as this
/// instance renders its own, with the record's meta (`stored`: instance, trigger,
/// finished_at), so every instance gives the same answer. `None` (answer from memory)
/// when nothing is stored yet or the store is unreadable (logged). A stored report this
/// build cannot read (a newer instance's) is served as stored JSON; other formats get
/// `406 report.not_renderable` saying so.
pub async fn stored_last(
    state: &State,
    store: &std::sync::Arc<Store>,
    names: Option<&[String]>,
    format: Format,
    inv: &Invocation,
) -> Option<ApiReply> {
    let last = match shared::last(store).await {
        Ok(Some(l)) => l,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(class = %e.class, "run history: store unreadable, `?last` answers from memory: {e}");
            return None;
        }
    };
    let stored = serde_json::to_value(&last.meta).unwrap_or(Value::Null);
    let report = match last.full_report() {
        Ok(r) => r,
        Err(reason) => {
            tracing::warn!(%reason, "run history: the stored last report cannot be rendered here");
            return Some(match format {
                Format::Json => raw_last(last, names, stored, inv),
                _ => ApiReply::error(
                    ErrorClass::ReportNotRenderable,
                    format!(
                        "the last run (instance {}, finished {}) is stored, but {reason}; \
                         it is served as JSON (format=json)",
                        last.meta.instance, last.meta.finished_at
                    ),
                    inv,
                ),
            });
        }
    };
    let report = super::probe::subset(&report, names);
    let mut extra = Map::new();
    extra.insert("invocation".into(), invocation_value(inv, "last"));
    extra.insert("stored".into(), stored);
    page_extra(state, format, &mut extra).await;
    let mut reply = report_reply(&report, format, extra, "probe");
    reply.logs.insert(
        0,
        format!(
            "routeproof last: stored run from instance {}, finished {}",
            last.meta.instance, last.meta.finished_at
        ),
    );
    Some(reply)
}

/// The stored report as JSON, as stored (targets cut to `names`), for a report this
/// build cannot read into its own types.
fn raw_last(last: Last, names: Option<&[String]>, stored: Value, inv: &Invocation) -> ApiReply {
    let mut report = last.report;
    if let (Some(n), Some(Value::Array(targets))) = (names, report.get_mut("targets")) {
        targets.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| n.iter().any(|x| x == name))
        });
    }
    let ok = last
        .run
        .targets
        .iter()
        .filter(|t| names.is_none_or(|n| n.contains(&t.name)))
        .all(|t| t.ok);
    if let Value::Object(m) = &mut report {
        m.insert("ok".into(), Value::Bool(ok));
        m.insert("invocation".into(), invocation_value(inv, "last"));
        m.insert("stored".into(), stored);
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_reply(
        status,
        &report,
        format!(
            "routeproof last: stored run from instance {}, finished {} (as stored JSON)",
            last.meta.instance, last.meta.finished_at
        ),
    )
}

fn json_reply(status: StatusCode, body: &Value, log: String) -> ApiReply {
    ApiReply {
        status,
        content_type: Format::Json.content_type(),
        body: format!("{body}\n"),
        headers: Vec::new(),
        logs: vec![log],
    }
}

fn filter(q: &Query) -> Result<HistoryFilter, String> {
    let mut names = q.names.iter().chain(q.targets.iter());
    let target = names.next().cloned();
    if names.next().is_some() {
        return Err("`?history` takes one target (`target=` or `name=`)".into());
    }
    let limit = match &q.limit {
        None => None,
        Some(l) => match l.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
            _ => return Err(format!("`limit` must be a number from 1 to {MAX_LIMIT}")),
        },
    };
    Ok(HistoryFilter {
        target,
        from_ms: q.from.as_deref().map(|v| time_ms("from", v)).transpose()?,
        to_ms: q.to.as_deref().map(|v| time_ms("to", v)).transpose()?,
        scope: None,
        limit,
    })
}

/// RFC 3339 (`2026-12-01T10:00:00Z`) or unix seconds, as unix milliseconds.
pub fn time_ms(key: &str, v: &str) -> Result<i64, String> {
    let v = v.trim();
    if let Ok(s) = v.parse::<i64>() {
        return s
            .checked_mul(1000)
            .ok_or_else(|| format!("`{key}` is out of range"));
    }
    humantime::parse_rfc3339_weak(v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            format!(
                "`{key}` must be RFC 3339 (2026-12-01T10:00:00Z) or unix seconds, not {:?}",
                v.chars().take(40).collect::<String>()
            )
        })
}

/// The status page's `history` object (`render::history`): uptime per target from the
/// store, or why there is none. Only HTML pages carry it.
pub async fn page_extra(state: &State, format: Format, extra: &mut serde_json::Map<String, Value>) {
    if format != Format::Html {
        return;
    }
    let value = match state.settings().store.get() {
        None => json!({ "off": HISTORY_OFF }),
        Some(store) => match shared::uptime(store).await {
            Ok(u) => json!({ "uptime": u, "store": store.info() }),
            Err(e) => {
                tracing::warn!(class = %e.class, "run history: store unreadable for the page: {e}");
                json!({ "error": e.class.to_string() })
            }
        },
    };
    extra.insert("history".into(), value);
}
