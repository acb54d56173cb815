//! `/api/probe` for configured targets (`?name=`, `?last`) and `/api/health`.

use axum::http::{Method, StatusCode};
use serde_json::{Map, json};

use crate::report::{Report, TargetReport};
use crate::telemetry::{FLUSH_BOUND, Parent, Trigger};

use super::super::error::ErrorClass;
use super::super::flight::Role;
use super::super::invocation::Invocation;
use super::super::negotiate::Format;
use super::super::state::State;
use super::adhoc::adhoc;
use super::reply::{ADHOC_DENIED, ApiReply, denied, invocation_value, report_reply};
use super::request::{ApiRequest, parse_query, post_body, select};

pub async fn probe(state: &State, req: ApiRequest, inv: &Invocation) -> ApiReply {
    if req.method != Method::GET && req.method != Method::POST {
        return ApiReply::error(
            ErrorClass::RequestMethod,
            format!(
                "{} is not supported: GET runs configured targets, POST carries ad-hoc targets",
                req.method
            ),
            inv,
        )
        .with_header("Allow", "GET, POST");
    }
    let q = match parse_query(&req.query) {
        Ok(q) => q,
        Err(m) => return ApiReply::error(ErrorClass::RequestInvalid, m, inv),
    };
    let format = match q.format.as_deref().map(Format::from_query) {
        Some(Ok(f)) => f,
        Some(Err(m)) => return ApiReply::error(ErrorClass::RequestInvalid, m, inv),
        None => Format::negotiate(req.accept.as_deref()),
    };
    if q.history {
        return super::history::history(state, &q, inv).await;
    }
    if state.adhoc().is_none() {
        if q.adhoc {
            return denied("adhoc.off", ADHOC_DENIED, None, inv);
        }
        if req.method == Method::POST {
            return match post_body(req, state.settings().body_limit, inv) {
                Ok(_) => denied("adhoc.off", ADHOC_DENIED, None, inv),
                Err(reply) => reply,
            };
        }
    } else if q.adhoc || req.method == Method::POST {
        return adhoc(state, req, q, format, inv).await;
    }
    let names = match select(&q.names, state.targets()) {
        Ok(n) => n,
        Err(m) => return ApiReply::error(ErrorClass::RequestUnknownName, m, inv),
    };
    if q.last {
        // With a store, every instance answers from it, in every format; this instance's
        // memory only before the first stored run or while the store is unreadable.
        if let Some(store) = state.settings().store.get()
            && let Some(reply) =
                super::history::stored_last(state, store, names.as_deref(), format, inv).await
        {
            return reply;
        }
        return last(state, names.as_deref(), format, inv).await;
    }
    if state.targets().is_empty() {
        return ApiReply::error(
            ErrorClass::ConfigNoTargets,
            "no targets are configured, so nothing was proven: add [[targets]] to the config file \
             (ROUTEPROOF_CONFIG, or config/default.toml next to the binary)",
            inv,
        );
    }
    let deadline = state.http_deadline();
    match state.run(names.as_deref(), deadline).await {
        Ok((report, role)) => {
            let run = if role == Role::Led { "new" } else { "shared" };
            // A shared run is exported once, by the request that started it.
            if role == Role::Led {
                export(state, &report, inv).await;
            }
            tracing::info!(
                ok = report.ok,
                total = report.summary.total,
                failed = report.summary.failed,
                duration_ms = report.duration_ms,
                run,
                "probe run answered"
            );
            let mut extra = Map::new();
            extra.insert("invocation".into(), invocation_value(inv, run));
            super::history::page_extra(state, format, &mut extra).await;
            report_reply(&report, format, extra, "probe")
        }
        Err(_) => {
            tracing::error!("probe run task ended without a report");
            ApiReply::error(
                ErrorClass::HandlerInternal,
                "the probe run ended without a report; see the handler's log",
                inv,
            )
        }
    }
}

/// An HTTP-triggered run's spans and metrics (never availability results: those are
/// for scheduled runs), flushed within `FLUSH_BOUND` before the reply; a failed export
/// is logged and never changes the status.
pub(super) async fn export(state: &State, report: &Report, inv: &Invocation) {
    state
        .settings()
        .telemetry
        .export_run(
            report,
            Parent {
                traceparent: inv.traceparent.as_deref(),
                invocation_id: inv.id.as_deref(),
                trigger: Trigger::Http,
            },
            FLUSH_BOUND,
        )
        .await;
}

async fn last(
    state: &State,
    names: Option<&[String]>,
    format: Format,
    inv: &Invocation,
) -> ApiReply {
    let Some(s) = state.last_scheduled() else {
        return ApiReply::error(
            ErrorClass::ReportNone,
            "no scheduled run has finished on this instance yet (each instance keeps its own \
             last report in memory, and a restart forgets it)",
            inv,
        );
    };
    let report = subset(&s.report, names);
    let mut extra = Map::new();
    extra.insert("invocation".into(), invocation_value(inv, "last"));
    extra.insert(
        "scheduled".into(),
        json!({
            "invocation": s.invocation,
            "finished_at": s.finished_at,
            "is_past_due": s.is_past_due,
        }),
    );
    super::history::page_extra(state, format, &mut extra).await;
    report_reply(&report, format, extra, "probe")
}

/// `report` cut to the targets in `names` (all with `None`), its summary and `ok` redone.
pub(super) fn subset(report: &Report, names: Option<&[String]>) -> Report {
    let Some(n) = names else {
        return report.clone();
    };
    let targets: Vec<TargetReport> = report
        .targets
        .iter()
        .filter(|t| n.contains(&t.name))
        .cloned()
        .collect();
    let summary = Report::summarize(&targets);
    Report {
        ok: summary.failed == 0,
        summary,
        targets,
        ..report.clone()
    }
}

/// `/api/health`: cheap, anonymous, and says nothing an anonymous caller should not know
/// (no targets, no settings, none of the app's own addresses). It does tell the caller
/// the address the front end saw *it* come from (`client`, see `handler::client`), the
/// inbound witness: its own address, not the app's; `null` when no trustworthy front end
/// wrote one.
pub fn health(inv: &Invocation, client: Option<std::net::IpAddr>) -> ApiReply {
    let client =
        client.map(|a| json!({ "address": a, "from": super::super::client::FORWARDED_FOR }));
    let body = json!({
        "status": "ok",
        "service": "routeproof",
        "version": env!("CARGO_PKG_VERSION"),
        "client": client,
    });
    ApiReply {
        status: StatusCode::OK,
        content_type: Format::Json.content_type(),
        body: format!("{body}\n"),
        headers: Vec::new(),
        logs: vec![format!("routeproof health: ok ({})", inv.mode.as_str())],
    }
}
