//! What a request to /api/probe says, whatever shape it arrived in: the method, the
//! query (`name`, `target`, `last`, `format`), the body, and the ad-hoc target list.

use axum::body::Bytes;
use axum::http::Method;
use serde_json::Value;

use crate::config::TargetConfig;

use super::super::error::ErrorClass;
use super::super::invocation::Invocation;
use super::reply::ApiReply;

pub struct ApiRequest {
    pub method: Method,
    /// Decoded query pairs in arrival order (repeated keys kept).
    pub query: Vec<(String, String)>,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    /// The `X-Forwarded-For` values in arrival order (`/api/health` reads the last entry).
    pub forwarded_for: Vec<String>,
    pub body: RequestBody,
}

pub enum RequestBody {
    Empty,
    Data(Bytes),
    /// Over the limit; the bytes were not kept.
    TooLarge,
}

/// Query keys /api/probe understands. `code` is the function key, which forward and
/// proxy mode leave in the query. Anything else is refused so a typo (`?nmae=sql`)
/// cannot silently probe every target.
const QUERY_KEYS: &[&str] = &[
    "name", "target", "last", "format", "history", "from", "to", "limit", "code",
];

#[derive(Default)]
pub struct Query {
    pub names: Vec<String>,
    pub adhoc: bool,
    /// `?target=` values as sent (forward mode joins repeats with commas).
    pub targets: Vec<String>,
    pub last: bool,
    pub format: Option<String>,
    /// `?history`: stored runs (docs/storage.md), filtered by `target`/`name`, `from`,
    /// `to` (RFC 3339 or unix seconds) and `limit`.
    pub history: bool,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
}

pub fn parse_query(pairs: &[(String, String)]) -> Result<Query, String> {
    let mut q = Query::default();
    for (k, v) in pairs {
        match k.to_ascii_lowercase().as_str() {
            "name" => q.names.push(v.clone()),
            "target" => {
                q.adhoc = true;
                q.targets.push(v.clone());
            }
            // `?last` alone, or any value but a no.
            "last" => q.last = crate::setting::parse_yes_no(v) != Some(false),
            "format" => q.format = Some(v.clone()),
            "history" => q.history = crate::setting::parse_yes_no(v) != Some(false),
            "from" => q.from = Some(v.clone()),
            "to" => q.to = Some(v.clone()),
            "limit" => q.limit = Some(v.clone()),
            "code" => {}
            _ => {
                return Err(format!(
                    "unknown query parameter `{}` (expected {})",
                    k.chars().take(64).collect::<String>(),
                    QUERY_KEYS[..8].join(", ")
                ));
            }
        }
    }
    Ok(q)
}

/// The configured targets named by `?name=`, or `None` for all of them.
///
/// Forward mode joins a repeated key into one comma-separated value (`?name=a%2Cb`,
/// docs/host-contract.md §3.1), so a value that is not itself a target name is split on
/// commas; proxy and direct mode keep the repeated keys.
pub fn select(raw: &[String], targets: &[TargetConfig]) -> Result<Option<Vec<String>>, String> {
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

pub fn is_json_media_type(ct: &str) -> bool {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || mime == "text/json" || mime.ends_with("+json")
}

/// Forward mode joins repeated `target` keys with commas; a URI may hold commas too, so
/// a piece only starts a new target when it looks like one (`scheme://` or `env:`).
pub fn split_targets(v: &str) -> Vec<String> {
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
pub fn body_targets(body: &Value) -> Result<Vec<String>, String> {
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
pub fn post_body(req: ApiRequest, limit: usize, inv: &Invocation) -> Result<Value, ApiReply> {
    let bytes = match req.body {
        RequestBody::TooLarge => {
            return Err(ApiReply::error(
                ErrorClass::RequestTooLarge,
                format!("the body is larger than {} KiB", limit / 1024),
                inv,
            ));
        }
        RequestBody::Empty => {
            return Err(ApiReply::error(
                ErrorClass::RequestEmptyBody,
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
            ErrorClass::RequestUnsupportedMediaType,
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
            ErrorClass::RequestInvalidJson,
            format!("the body is not valid JSON: {e}"),
            inv,
        )
    })
}
