//! What /api/probe answers: the reply (status, content type, body, headers, log lines),
//! JSON errors with the handler's error classes, and a report in the negotiated format.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::report::Report;

use super::super::error::ErrorClass;
use super::super::invocation::Invocation;
use super::super::negotiate::{self, Format};
use super::super::page::CONTENT_SECURITY_POLICY;

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
    /// A JSON error that names the problem. `class` decides the status and the stable
    /// class string (like the report's failure classes), so monitors can match on it.
    pub fn error(class: ErrorClass, message: impl Into<String>, inv: &Invocation) -> ApiReply {
        ApiReply::error_with(class, message, Map::new(), inv)
    }

    /// `error` with more fields in the `error` object (`rule`, `target`). Messages are
    /// scrubbed of credentials: they may quote what a caller sent, and they are logged.
    pub fn error_with(
        class: ErrorClass,
        message: impl Into<String>,
        extra: Map<String, Value>,
        inv: &Invocation,
    ) -> ApiReply {
        let status = class.status();
        let message = crate::secret::scrub(&message.into());
        let mut error = Map::new();
        error.insert("class".into(), Value::from(class.as_str()));
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

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiReply {
        self.headers.push((name, value.into()));
        self
    }
}

pub const ADHOC_DENIED: &str = "ad-hoc targets are off: this app probes only the targets in its config. \
     Ad-hoc probing needs `[policy] allow_adhoc = true` and an allow-list of networks and host \
     patterns (`allow = [...]`) in the config; otherwise ask for configured targets by name: \
     GET /api/probe?name=NAME";

pub fn denied(
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
    ApiReply::error_with(ErrorClass::PolicyDenied, message, extra, inv)
}

pub fn invocation_value(inv: &Invocation, run: &str) -> Value {
    let mut v = serde_json::to_value(inv).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("run".into(), Value::from(run));
    }
    v
}

pub fn report_reply(
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
        logs: crate::render::lines::report_lines(what, report),
    };
    if format == Format::Html {
        reply = reply.with_header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
    }
    reply
}
