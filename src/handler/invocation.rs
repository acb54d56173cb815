//! The Functions host's side of an invocation: which of the three shapes it came in
//! (docs/host-contract.md §2), its correlation ids, and the payload-mode envelope
//! `{"Data", "Metadata"}` in and `{"Outputs", "Logs", "ReturnValue"}` out.
//!
//! The envelope is read defensively because the host's serializer is not what the docs
//! show: strings in `Data`/`Metadata` arrive JSON-encoded a second time, numbers arrive
//! as strings, and only objects survive as objects (docs/host-contract.md §5.2).

use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::setting::TraceParent;

use super::error::ErrorClass;

/// How the request reached us. Recorded in the report and the span because the
/// same function behaves differently per mode (e.g. chunked bodies vanish in forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No host headers: a caller on a laptop or in a container.
    Direct,
    /// `enableForwardingHttpRequest`: the original request, rebuilt by the host.
    Forward,
    /// `enableProxyingHttpRequest`: the original request through YARP.
    Proxy,
    /// `POST /{FunctionName}` with the `{"Data", "Metadata"}` envelope.
    Payload,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Forward => "forward",
            Mode::Proxy => "proxy",
            Mode::Payload => "payload",
        }
    }
}

/// Correlation facts of one invocation; merged into every report we return as the
/// top-level `invocation` object and recorded on the request span.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Invocation {
    /// `X-Azure-Functions-InvocationId`: equals the invocation id in App Insights.
    pub id: Option<String>,
    /// The W3C `traceparent` the request carried, when well formed.
    pub traceparent: Option<String>,
    pub trace_id: Option<String>,
    pub function: String,
    pub trigger: &'static str,
    pub mode: Mode,
    pub host_version: Option<String>,
}

pub const INVOCATION_ID: &str = "x-azure-functions-invocationid";
/// Only the YARP proxy path sets this one (docs/host-contract.md §4).
pub const PROXY_INVOCATION_ID: &str = "x-ms-invocation-id";
pub const HOST_VERSION: &str = "x-azure-functions-hostversion";

impl Invocation {
    /// Reads the correlation headers. Values that do not look like what the host sends
    /// are dropped rather than echoed: they end up in logs, HTML and JSON.
    pub fn from_headers(
        headers: &HeaderMap,
        function: &str,
        trigger: &'static str,
        mode: Mode,
    ) -> Invocation {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let id = get(INVOCATION_ID)
            .or_else(|| get(PROXY_INVOCATION_ID))
            .and_then(valid_id);
        let (traceparent, trace_id) = match get("traceparent").and_then(parse_traceparent) {
            Some((tp, tid)) => (Some(tp), Some(tid)),
            None => (None, None),
        };
        Invocation {
            id,
            traceparent,
            trace_id,
            function: function.to_string(),
            trigger,
            mode,
            host_version: get(HOST_VERSION).and_then(valid_version),
        }
    }

    /// The request span: every log line of the invocation carries these fields.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "invocation",
            invocation_id = self.id.as_deref().unwrap_or(""),
            trace_id = self.trace_id.as_deref().unwrap_or(""),
            traceparent = self.traceparent.as_deref().unwrap_or(""),
            function = %self.function,
            trigger = self.trigger,
            mode = self.mode.as_str(),
        )
    }
}

/// Which shape an HTTP request (not a payload POST) came in, from the headers only
/// the host sets.
pub fn http_mode(headers: &HeaderMap) -> Mode {
    if headers.contains_key(PROXY_INVOCATION_ID) {
        Mode::Proxy
    } else if headers.contains_key(INVOCATION_ID) {
        Mode::Forward
    } else {
        Mode::Direct
    }
}

fn valid_id(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .then(|| s.to_ascii_lowercase())
}

fn valid_version(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
    .then(|| s.to_string())
}

/// A W3C `traceparent` as the handler keeps it: the normalised header and its trace id,
/// or `None` when malformed (the rules are `crate::setting::TraceParent`'s).
pub fn parse_traceparent(s: &str) -> Option<(String, String)> {
    let tp = TraceParent::parse(s)?;
    Some((tp.to_string(), tp.trace_id_hex()))
}

/// A payload-mode request body.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

/// Why an envelope could not be used; answered with a non-2xx so the host fails the
/// invocation visibly instead of binding a made-up result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError {
    pub class: ErrorClass,
    pub message: String,
}

impl EnvelopeError {
    /// The host sent something we cannot use (the class says which status).
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        EnvelopeError {
            class,
            message: message.into(),
        }
    }

    /// We failed (500).
    pub fn internal(message: impl Into<String>) -> Self {
        EnvelopeError::new(ErrorClass::HandlerInternal, message)
    }

    pub fn status(&self) -> StatusCode {
        self.class.status()
    }
}

/// Keys are matched case-insensitively: the host's own reader (Newtonsoft) does so.
pub fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

pub fn parse_envelope(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        EnvelopeError::new(
            ErrorClass::EnvelopeInvalid,
            format!("the invocation body is not JSON: {e}"),
        )
    })?;
    let Value::Object(top) = v else {
        return Err(EnvelopeError::new(
            ErrorClass::EnvelopeInvalid,
            "the invocation body is not a JSON object with `Data` and `Metadata`",
        ));
    };
    let data = match get_ci(&top, "Data").map(unwrap_encoded) {
        Some(Value::Object(m)) => m,
        Some(Value::Null) | None => {
            return Err(EnvelopeError::new(
                ErrorClass::EnvelopeInvalid,
                "the invocation body has no `Data` object",
            ));
        }
        Some(_) => {
            return Err(EnvelopeError::new(
                ErrorClass::EnvelopeInvalid,
                "`Data` is not an object",
            ));
        }
    };
    let metadata = match get_ci(&top, "Metadata").map(unwrap_encoded) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(Envelope { data, metadata })
}

/// Undoes the host's second JSON encoding of strings: `"\"hello\""` becomes `"hello"`,
/// `"4"` becomes `4`, `"{...}"` becomes an object. A string that is not JSON (already
/// plain) is returned as it is, so reading twice is harmless.
pub fn unwrap_encoded(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim_start();
            let looks_json = t.starts_with(['"', '{', '[', '-'])
                || t.starts_with(|c: char| c.is_ascii_digit())
                || matches!(t, "true" | "false" | "null");
            if looks_json && let Ok(inner) = serde_json::from_str::<Value>(s) {
                return inner;
            }
            v.clone()
        }
        other => other.clone(),
    }
}

/// `Metadata.sys.MethodName`: the function name as the host knows it.
pub fn method_name(env: &Envelope) -> Option<String> {
    let sys = get_ci(&env.metadata, "sys").map(unwrap_encoded)?;
    let Value::Object(sys) = sys else { return None };
    match get_ci(&sys, "MethodName").map(unwrap_encoded) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// The reply body the host binds: always a JSON object, never empty or `null`
/// (either would hang the invocation until `functionTimeout`, docs/host-contract.md §5.6).
pub fn reply_body(outputs: Map<String, Value>, logs: Vec<String>, return_value: Value) -> Value {
    json!({ "Outputs": outputs, "Logs": logs, "ReturnValue": return_value })
}

/// An `http` output binding value. `statusCode`, never `status`: the host ignores the
/// latter. Header values are strings because the host `.ToString()`s whatever it gets,
/// and `Content-Type` is set explicitly or the host sends `text/plain`.
pub fn http_output(
    status: u16,
    content_type: &str,
    extra: &[(&str, String)],
    body: String,
) -> Value {
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), Value::from(content_type));
    headers.insert("Cache-Control".into(), Value::from("no-store"));
    headers.insert("X-Content-Type-Options".into(), Value::from("nosniff"));
    for (k, v) in extra {
        headers.insert((*k).to_string(), Value::from(v.as_str()));
    }
    json!({ "statusCode": status, "headers": headers, "body": body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_encoded_values_unwrap_once() {
        let cases = [
            (json!("\"500\""), json!("500")),
            (json!("\"sql1\""), json!("sql1")),
            (json!("4"), json!(4)),
            (json!("true"), json!(true)),
            (json!("{\"a\":1}"), json!({"a": 1})),
            (json!("plain text"), json!("plain text")),
            (json!("2025-01-15T10:05:00Z"), json!("2025-01-15T10:05:00Z")),
            (json!({"a": "\"x\""}), json!({"a": "\"x\""})),
            (json!(null), json!(null)),
        ];
        for (input, want) in cases {
            assert_eq!(unwrap_encoded(&input), want, "{input}");
        }
    }

    #[test]
    fn traceparent_validation() {
        let good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(
            parse_traceparent(good).map(|(_, t)| t).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        for bad in [
            "",
            "garbage",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn mode_and_ids_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(http_mode(&h), Mode::Direct);
        h.insert(
            INVOCATION_ID,
            "5B7C0E5D-1A7B-4E0C-9F1E-0D2C3B4A5F60".parse().unwrap(),
        );
        assert_eq!(http_mode(&h), Mode::Forward);
        h.insert(
            PROXY_INVOCATION_ID,
            "5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60".parse().unwrap(),
        );
        assert_eq!(http_mode(&h), Mode::Proxy);
        let inv = Invocation::from_headers(&h, "probe", "http", Mode::Proxy);
        assert_eq!(
            inv.id.as_deref(),
            Some("5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60")
        );
        let mut bad = HeaderMap::new();
        bad.insert(INVOCATION_ID, "<script>alert(1)</script>".parse().unwrap());
        assert_eq!(
            Invocation::from_headers(&bad, "p", "http", Mode::Forward).id,
            None
        );
    }

    #[test]
    fn envelope_errors_name_the_problem() {
        let e = parse_envelope(b"not json").unwrap_err();
        assert_eq!(e.class, ErrorClass::EnvelopeInvalid);
        let e = parse_envelope(b"[1]").unwrap_err();
        assert!(e.message.contains("Data"), "{e:?}");
        let e = parse_envelope(b"{\"Metadata\":{}}").unwrap_err();
        assert!(e.message.contains("no `Data`"), "{e:?}");
        let ok = parse_envelope(br#"{"data":{"t":{}},"metadata":{"sys":{"MethodName":"\"x\""}}}"#)
            .unwrap();
        assert_eq!(method_name(&ok).as_deref(), Some("x"));
    }
}
