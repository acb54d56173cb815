//! Ad-hoc targets (`?target=` or a POST body), with the policy on.

use axum::http::Method;
use serde_json::Map;

use crate::config::TargetConfig;
use crate::target::{self, TargetSpec};

use super::super::error::ErrorClass;
use super::super::invocation::Invocation;
use super::super::negotiate::Format;
use super::super::state::State;
use super::reply::{ADHOC_DENIED, ApiReply, denied, invocation_value, report_reply};
use super::request::{ApiRequest, Query, body_targets, post_body, split_targets};

/// Ad-hoc targets, with the policy on. Everything a request says is checked before any
/// packet: the shape, the count, `env:` (never), each URI, and what the policy can judge
/// without DNS (IP literals, ports, host patterns); what needs DNS is judged by the
/// engine between DNS and TCP, and comes back as a per-target `policy.denied`.
pub async fn adhoc(
    state: &State,
    req: ApiRequest,
    q: Query,
    format: Format,
    inv: &Invocation,
) -> ApiReply {
    let Some(a) = state.adhoc() else {
        return denied("adhoc.off", ADHOC_DENIED, None, inv);
    };
    if !q.names.is_empty() || q.last {
        return ApiReply::error(
            ErrorClass::RequestInvalid,
            "ad-hoc targets cannot be combined with `name` or `last`",
            inv,
        );
    }
    let mut uris: Vec<String> = q.targets.iter().flat_map(|v| split_targets(v)).collect();
    if req.method == Method::POST {
        let body = match post_body(req, state.settings().body_limit, inv) {
            Ok(v) => v,
            Err(reply) => return reply,
        };
        match body_targets(&body) {
            Ok(list) => uris.extend(list),
            Err(m) => return ApiReply::error(ErrorClass::RequestInvalid, m, inv),
        }
    }
    if uris.is_empty() {
        return ApiReply::error(
            ErrorClass::RequestInvalid,
            "no ad-hoc target: send ?target=URI or a JSON body {\"targets\": [\"tcp://host:port\", ...]}",
            inv,
        );
    }
    if uris.len() > a.max_targets {
        return ApiReply::error(
            ErrorClass::RequestTooManyTargets,
            format!(
                "{} ad-hoc targets; at most {} per request (policy.max_targets)",
                uris.len(),
                a.max_targets
            ),
            inv,
        );
    }
    let mut targets = Vec::with_capacity(uris.len());
    for uri in &uris {
        if uri.trim_start().starts_with("env:") {
            return denied(
                "adhoc.env",
                "env: targets read app settings, which ad-hoc requests may never do: configure the target instead",
                None,
                inv,
            );
        }
        let spec: TargetSpec = match target::parse_uri(uri) {
            Ok(s) => s,
            Err(e) => {
                return ApiReply::error(ErrorClass::RequestInvalidTarget, e.0, inv);
            }
        };
        if let Err(d) = a.policy.check_target(&spec) {
            return denied(d.rule, d.message, Some(&spec.to_string()), inv);
        }
        targets.push(TargetConfig::adhoc(spec));
    }
    let deadline = state.http_deadline();
    match state.run_adhoc(targets, deadline).await {
        Ok(report) => {
            super::probe::export(state, &report, inv).await;
            tracing::info!(
                ok = report.ok,
                total = report.summary.total,
                failed = report.summary.failed,
                duration_ms = report.duration_ms,
                run = "adhoc",
                "ad-hoc probe run answered"
            );
            let mut extra = Map::new();
            extra.insert("invocation".into(), invocation_value(inv, "adhoc"));
            report_reply(&report, format, extra, "probe")
        }
        Err(_) => ApiReply::error(
            ErrorClass::RequestBusy,
            "every ad-hoc slot on this instance is in use (policy.max_concurrent); retry shortly",
            inv,
        )
        .with_header("Retry-After", "1"),
    }
}
