//! `/api/probe` and `/api/health`, independent of how the request arrived: forward,
//! proxy and direct requests and payload-mode `Data.req` objects are all turned into an
//! `ApiRequest`, and the `ApiReply` is sent as an HTTP response or an `http` output.
//!
//! Status: 200 every target ok, 503 any failed (the body still carries the whole report),
//! 400 bad input, 403 an ad-hoc target refused by policy (or ad-hoc off), 404 no
//! scheduled report yet for `?last`, 405 other methods, 413 over the body limit, 415 a
//! body that is not JSON, 429 every ad-hoc slot busy.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::config::TargetConfig;
use crate::report::{Report, TargetReport};
use crate::target::{self, TargetSpec};

use super::flight::Role;
use super::invocation::Invocation;
use super::negotiate::{self, Format};
use super::page::CONTENT_SECURITY_POLICY;
use super::state::State;

pub struct ApiRequest {
    pub method: Method,
    /// Decoded query pairs in arrival order (repeated keys kept).
    pub query: Vec<(String, String)>,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub body: RequestBody,
}

pub enum RequestBody {
    Empty,
    Data(Bytes),
    /// Over the limit; the bytes were not kept.
    TooLarge,
}

#[derive(Debug)]
pub struct ApiReply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    /// One line per fact worth seeing in the host's invocation log (payload mode `Logs`).
    pub logs: Vec<String>,
}

impl ApiReply {
    /// A JSON error that names the problem. `class` is a stable string like the
    /// report's failure classes, so monitors can match on it.
    pub fn error(
        status: StatusCode,
        class: &str,
        message: impl Into<String>,
        inv: &Invocation,
    ) -> ApiReply {
        ApiReply::error_with(status, class, message, Map::new(), inv)
    }

    /// `error` with more fields in the `error` object (`rule`, `target`). Messages are
    /// scrubbed of credentials: they may quote what a caller sent, and they are logged.
    pub fn error_with(
        status: StatusCode,
        class: &str,
        message: impl Into<String>,
        extra: Map<String, Value>,
        inv: &Invocation,
    ) -> ApiReply {
        let message = crate::secret::scrub(&message.into());
        let mut error = Map::new();
        error.insert("class".into(), Value::from(class));
        error.insert("message".into(), Value::from(message.as_str()));
        error.extend(extra);
        let body = json!({
            "error": error,
            "invocation": inv,
        });
        ApiReply {
            status,
            content_type: Format::Json.content_type(),
            body: format!(
                "{}\n",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            ),
            headers: Vec::new(),
            logs: vec![format!(
                "routeproof: {} {class}: {message}",
                status.as_u16()
            )],
        }
    }

    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiReply {
        self.headers.push((name, value.into()));
        self
    }
}

/// Query keys /api/probe understands. `code` is the function key, which forward and
/// proxy mode leave in the query. Anything else is refused so a typo (`?nmae=sql`)
/// cannot silently probe every target.
const QUERY_KEYS: &[&str] = &["name", "target", "last", "format", "code"];

#[derive(Default)]
struct Query {
    names: Vec<String>,
    adhoc: bool,
    /// `?target=` values as sent (forward mode joins repeats with commas).
    targets: Vec<String>,
    last: bool,
    format: Option<String>,
}

fn parse_query(pairs: &[(String, String)]) -> Result<Query, String> {
    let mut q = Query::default();
    for (k, v) in pairs {
        match k.to_ascii_lowercase().as_str() {
            "name" => q.names.push(v.clone()),
            "target" => {
                q.adhoc = true;
                q.targets.push(v.clone());
            }
            "last" => q.last = !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no"),
            "format" => q.format = Some(v.clone()),
            "code" => {}
            _ => {
                return Err(format!(
                    "unknown query parameter `{}` (expected {})",
                    k.chars().take(64).collect::<String>(),
                    QUERY_KEYS[..4].join(", ")
                ));
            }
        }
    }
    Ok(q)
}

/// The configured targets named by `?name=`, or `None` for all of them.
///
/// Forward mode joins a repeated key into one comma-separated value (`?name=a%2Cb`,
/// host-contract.md §3.1), so a value that is not itself a target name is split on
/// commas; proxy and direct mode keep the repeated keys.
fn select(raw: &[String], targets: &[TargetConfig]) -> Result<Option<Vec<String>>, String> {
    let known = |n: &str| targets.iter().any(|t| t.name == n);
    let mut names: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for v in raw {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let parts: Vec<&str> = if known(v) {
            vec![v]
        } else {
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect()
        };
        for p in parts {
            if known(p) {
                if !names.iter().any(|n| n == p) {
                    names.push(p.to_string());
                }
            } else {
                unknown.push(format!("`{}`", p.chars().take(128).collect::<String>()));
            }
        }
    }
    if !unknown.is_empty() {
        let configured: Vec<&str> = targets.iter().take(50).map(|t| t.name.as_str()).collect();
        return Err(format!(
            "unknown target name {}; configured: {}",
            unknown.join(", "),
            if configured.is_empty() {
                "none".to_string()
            } else {
                configured.join(", ")
            }
        ));
    }
    Ok(if raw.iter().all(|v| v.trim().is_empty()) {
        None
    } else {
        Some(names)
    })
}

fn is_json_media_type(ct: &str) -> bool {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || mime == "text/json" || mime.ends_with("+json")
}

const ADHOC_DENIED: &str = "ad-hoc targets are off: this app probes only the targets in its config. \
     Ad-hoc probing needs `[policy] allow_adhoc = true` and an allow-list of networks and host \
     patterns (`allow = [...]`) in the config; otherwise ask for configured targets by name: \
     GET /api/probe?name=NAME";

fn denied(
    rule: &str,
    message: impl Into<String>,
    target: Option<&str>,
    inv: &Invocation,
) -> ApiReply {
    let mut extra = Map::new();
    extra.insert("rule".into(), Value::from(rule));
    if let Some(t) = target {
        extra.insert("target".into(), Value::from(t));
    }
    ApiReply::error_with(StatusCode::FORBIDDEN, "policy.denied", message, extra, inv)
}

pub async fn probe(state: &State, req: ApiRequest, inv: &Invocation) -> ApiReply {
    if req.method != Method::GET && req.method != Method::POST {
        return ApiReply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "request.method",
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
        Err(m) => return ApiReply::error(StatusCode::BAD_REQUEST, "request.invalid", m, inv),
    };
    let format = match q.format.as_deref().map(Format::from_query) {
        Some(Ok(f)) => f,
        Some(Err(m)) => return ApiReply::error(StatusCode::BAD_REQUEST, "request.invalid", m, inv),
        None => Format::negotiate(req.accept.as_deref()),
    };
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
        Err(m) => return ApiReply::error(StatusCode::BAD_REQUEST, "request.unknown_name", m, inv),
    };
    if q.last {
        return last(state, names.as_deref(), format, inv);
    }
    if state.targets().is_empty() {
        return ApiReply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "config.no_targets",
            "no targets are configured, so nothing was proven: add [[targets]] to the config file \
             (ROUTEPROOF_CONFIG, or config/default.toml next to the binary)",
            inv,
        );
    }
    let deadline = state.http_deadline();
    match state.run(names.as_deref(), deadline).await {
        Ok((report, role)) => {
            let run = if role == Role::Led { "new" } else { "shared" };
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
            report_reply(&report, format, extra, "probe")
        }
        Err(_) => {
            tracing::error!("probe run task ended without a report");
            ApiReply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "handler.internal",
                "the probe run ended without a report; see the handler's log",
                inv,
            )
        }
    }
}

/// Ad-hoc targets, with the policy on. Everything a request says is checked before any
/// packet: the shape, the count, `env:` (never), each URI, and what the policy can judge
/// without DNS (IP literals, ports, host patterns); what needs DNS is judged by the
/// engine between DNS and TCP, and comes back as a per-target `policy.denied`.
async fn adhoc(
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
            StatusCode::BAD_REQUEST,
            "request.invalid",
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
            Err(m) => return ApiReply::error(StatusCode::BAD_REQUEST, "request.invalid", m, inv),
        }
    }
    if uris.is_empty() {
        return ApiReply::error(
            StatusCode::BAD_REQUEST,
            "request.invalid",
            "no ad-hoc target: send ?target=URI or a JSON body {\"targets\": [\"tcp://host:port\", ...]}",
            inv,
        );
    }
    if uris.len() > a.max_targets {
        return ApiReply::error(
            StatusCode::BAD_REQUEST,
            "request.too_many_targets",
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
                return ApiReply::error(
                    StatusCode::BAD_REQUEST,
                    "request.invalid_target",
                    e.0,
                    inv,
                );
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
            StatusCode::TOO_MANY_REQUESTS,
            "request.busy",
            "every ad-hoc slot on this instance is in use (policy.max_concurrent); retry shortly",
            inv,
        )
        .with_header("Retry-After", "1"),
    }
}

/// Forward mode joins repeated `target` keys with commas; a URI may hold commas too, so
/// a piece only starts a new target when it looks like one (`scheme://` or `env:`).
fn split_targets(v: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in v.split(',') {
        let starts = piece.contains("://") || piece.trim_start().starts_with("env:");
        match out.last_mut() {
            Some(last) if !starts => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `{"targets": ["tcp://host:port", ...]}` and nothing else, so a misspelt key is an
/// error rather than an ignored option.
fn body_targets(body: &Value) -> Result<Vec<String>, String> {
    let shape = "the body is {\"targets\": [\"tcp://host:port\", ...]}";
    let Some(obj) = body.as_object() else {
        return Err(format!("not an object: {shape}"));
    };
    if let Some(k) = obj.keys().find(|k| *k != "targets") {
        return Err(format!(
            "unknown key `{}`: {shape}",
            k.chars().take(64).collect::<String>()
        ));
    }
    let Some(list) = obj.get("targets").and_then(Value::as_array) else {
        return Err(format!("`targets` is missing or not a list: {shape}"));
    };
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("every target is a URI string: {shape}"))
        })
        .collect()
}

/// POST carries ad-hoc targets. The body is checked (size, type, JSON) so a caller
/// learns what is wrong with it before the policy answers.
fn post_body(req: ApiRequest, limit: usize, inv: &Invocation) -> Result<Value, ApiReply> {
    let bytes = match req.body {
        RequestBody::TooLarge => {
            return Err(ApiReply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.too_large",
                format!("the body is larger than {} KiB", limit / 1024),
                inv,
            ));
        }
        RequestBody::Empty => {
            return Err(ApiReply::error(
                StatusCode::BAD_REQUEST,
                "request.empty_body",
                "POST carries ad-hoc targets as a JSON body, and the body is empty; \
                 GET runs the configured targets. (A chunked upload arrives without its body \
                 under enableForwardingHttpRequest: send Content-Length.)",
                inv,
            ));
        }
        RequestBody::Data(b) => b,
    };
    let ct = req.content_type.unwrap_or_default();
    if !is_json_media_type(&ct) {
        return Err(ApiReply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
            format!(
                "the body must be application/json, not `{}`",
                if ct.is_empty() {
                    "(none)".to_string()
                } else {
                    ct.chars().take(64).collect()
                }
            ),
            inv,
        ));
    }
    serde_json::from_slice::<Value>(&bytes).map_err(|e| {
        ApiReply::error(
            StatusCode::BAD_REQUEST,
            "request.invalid_json",
            format!("the body is not valid JSON: {e}"),
            inv,
        )
    })
}

fn last(state: &State, names: Option<&[String]>, format: Format, inv: &Invocation) -> ApiReply {
    let Some(s) = state.last_scheduled() else {
        return ApiReply::error(
            StatusCode::NOT_FOUND,
            "report.none",
            "no scheduled run has finished on this instance yet (each instance keeps its own \
             last report in memory, and a restart forgets it)",
            inv,
        );
    };
    let report = match names {
        None => (*s.report).clone(),
        Some(n) => {
            let targets: Vec<TargetReport> = s
                .report
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
                ..(*s.report).clone()
            }
        }
    };
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
    report_reply(&report, format, extra, "probe")
}

pub fn invocation_value(inv: &Invocation, run: &str) -> Value {
    let mut v = serde_json::to_value(inv).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("run".into(), Value::from(run));
    }
    v
}

fn report_reply(
    report: &Report,
    format: Format,
    extra: Map<String, Value>,
    what: &str,
) -> ApiReply {
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut reply = ApiReply {
        status,
        content_type: format.content_type(),
        body: negotiate::render(report, format, extra),
        headers: Vec::new(),
        logs: report_lines(what, report),
    };
    if format == Format::Html {
        reply = reply.with_header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
    }
    reply
}

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

/// `/api/health`: cheap, anonymous, and says nothing an anonymous caller should not know
/// (no targets, no addresses, no settings).
pub fn health(inv: &Invocation) -> ApiReply {
    let body =
        json!({ "status": "ok", "service": "routeproof", "version": env!("CARGO_PKG_VERSION") });
    ApiReply {
        status: StatusCode::OK,
        content_type: Format::Json.content_type(),
        body: format!("{body}\n"),
        headers: Vec::new(),
        logs: vec![format!("routeproof health: ok ({})", inv.mode.as_str())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target;

    fn targets(names: &[&str]) -> Vec<TargetConfig> {
        names
            .iter()
            .map(|n| {
                let mut t = TargetConfig::adhoc(target::parse_uri("tcp://127.0.0.1:9").unwrap());
                t.name = n.to_string();
                t
            })
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn name_selection() {
        let ts = targets(&["sql", "api", "odd,name"]);
        assert_eq!(select(&[], &ts), Ok(None));
        assert_eq!(select(&s(&["sql"]), &ts), Ok(Some(s(&["sql"]))));
        // Forward mode's comma-joined repeat, and a name that itself has a comma.
        assert_eq!(select(&s(&["sql,api"]), &ts), Ok(Some(s(&["sql", "api"]))));
        assert_eq!(select(&s(&["odd,name"]), &ts), Ok(Some(s(&["odd,name"]))));
        assert_eq!(select(&s(&["api", "api"]), &ts), Ok(Some(s(&["api"]))));
        let e = select(&s(&["sql", "nope"]), &ts).unwrap_err();
        assert!(
            e.contains("`nope`") && e.contains("configured: sql, api"),
            "{e}"
        );
    }

    #[test]
    fn query_keys() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let q = parse_query(&pairs(&[("code", "KEY"), ("Name", "a"), ("last", "")])).unwrap();
        assert!(q.last && q.names == ["a"] && !q.adhoc);
        assert!(!parse_query(&pairs(&[("last", "false")])).unwrap().last);
        let e = parse_query(&pairs(&[("nmae", "a")])).err().unwrap();
        assert!(e.contains("`nmae`"), "{e}");
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "TEXT/JSON",
            "application/problem+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }
}
