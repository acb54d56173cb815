//! Payload mode: `POST /{FunctionName}` with `{"Data", "Metadata"}`. The timer always
//! comes this way; HTTP functions do when the host has neither forwarding nor proxying
//! on (or the function has extra bindings), with the caller's request as `Data.req`.
//!
//! The reply to the host is always 200 with a JSON object when we understood the
//! envelope; the caller's status (400, 403, 503 ...) travels inside `Outputs.res`. A
//! non-2xx reply is kept for envelopes we cannot use: the host then fails the
//! invocation and logs it (docs/host-contract.md §5.6, G7).

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{Map, Value};
use tracing::Instrument;

use super::error::ErrorClass;
use super::http_api::{self, ApiReply, ApiRequest, RequestBody};
use super::invocation::{
    Envelope, EnvelopeError, Invocation, Mode, get_ci, http_output, parse_envelope, reply_body,
    unwrap_encoded,
};
use super::state::State;
use super::timer;

/// The `http` output binding's name in function_app/probe/function.json.
pub const HTTP_OUTPUT: &str = "res";

/// What a payload invocation turns into: a reply body for the host (always sent 200)
/// or an error the host should see as a failed invocation.
pub async fn invoke(
    state: &State,
    function: &str,
    headers: &axum::http::HeaderMap,
    body: &Bytes,
) -> Result<Value, EnvelopeError> {
    let env = parse_envelope(body)?;
    let name = super::invocation::method_name(&env).unwrap_or_else(|| function.to_string());
    // The timer is recognised by its binding's shape, so a function folder named
    // anything (`TimerProbe` in the contract's examples) works.
    if timer::timer_info(&env).is_some() {
        let inv = Invocation::from_headers(headers, &name, "timer", Mode::Payload);
        return timer::scheduled(state, &env, &inv)
            .instrument(inv.span())
            .await;
    }
    let kind = function.to_ascii_lowercase();
    match kind.as_str() {
        "probe" | "health" | "metrics" => {}
        "scheduled" => {
            return Err(EnvelopeError::new(
                ErrorClass::EnvelopeMissingBinding,
                "`Data` has no timer binding (an object with Schedule, ScheduleStatus and IsPastDue)",
            ));
        }
        _ => {
            return Err(EnvelopeError::new(
                ErrorClass::HandlerUnknownFunction,
                format!(
                    "no function `{}` here: this handler serves probe, scheduled, health and metrics",
                    function.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    let inv = Invocation::from_headers(headers, &name, "http", Mode::Payload);
    let span = inv.span();
    let req = http_request(&env, state.settings().body_limit)?;
    let reply = if kind == "health" {
        let seen = super::client::seen(Mode::Payload, req.forwarded_for.iter().map(String::as_str));
        http_api::health(&inv, seen)
    } else if kind == "metrics" {
        timer::metrics(state, &inv).await
    } else {
        http_api::probe(state, req, &inv).instrument(span).await
    };
    Ok(to_envelope(reply))
}

fn to_envelope(reply: ApiReply) -> Value {
    let mut outputs = Map::new();
    outputs.insert(
        HTTP_OUTPUT.into(),
        http_output(
            reply.status.as_u16(),
            reply.content_type,
            &reply.headers,
            reply.body,
        ),
    );
    reply_body(outputs, reply.logs, Value::Null)
}

/// The caller's request from `Data.req` (docs/host-contract.md §5.4): header values are
/// arrays, `Query` is an object with repeated keys comma-joined, `Body` is present only
/// when the caller sent a Content-Length.
pub fn http_request(env: &Envelope, limit: usize) -> Result<ApiRequest, EnvelopeError> {
    let req = get_ci(&env.data, "req")
        .map(unwrap_encoded)
        .filter(Value::is_object)
        .or_else(|| {
            env.data
                .values()
                .map(unwrap_encoded)
                .find(|v| v.get("Method").is_some() && v.get("Url").is_some())
        });
    let Some(Value::Object(req)) = req else {
        return Err(EnvelopeError::new(
            ErrorClass::EnvelopeMissingBinding,
            "`Data` has no HTTP request binding (`req` with Url, Method, Headers): \
             is this function's trigger an httpTrigger named `req`?",
        ));
    };
    let text = |k: &str| match get_ci(&req, k).map(unwrap_encoded) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let method = text("Method").unwrap_or_else(|| "GET".into());
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
        EnvelopeError::new(
            ErrorClass::EnvelopeInvalid,
            "`Data.req.Method` is not an HTTP method",
        )
    })?;

    // The raw query in `Url` keeps repeated keys apart; `Query` is the fallback.
    let query = match text("Url").and_then(|u| url::Url::parse(&u).ok()) {
        Some(u) => u
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        None => match get_ci(&req, "Query").map(unwrap_encoded) {
            Some(Value::Object(q)) => q
                .iter()
                .map(|(k, v)| (k.clone(), scalar(&unwrap_encoded(v))))
                .collect(),
            _ => Vec::new(),
        },
    };

    let headers = match get_ci(&req, "Headers").map(unwrap_encoded) {
        Some(Value::Object(h)) => h,
        _ => Map::new(),
    };
    let header = |name: &str| -> Option<String> {
        let v = get_ci(&headers, name)?;
        let joined = match v {
            Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
            other => scalar(other),
        };
        (!joined.is_empty()).then_some(joined)
    };
    let declared: Option<u64> = header("Content-Length").and_then(|v| v.trim().parse().ok());
    let body = match get_ci(&req, "Body") {
        None | Some(Value::Null) => match declared {
            Some(n) if n > limit as u64 => RequestBody::TooLarge,
            _ => RequestBody::Empty,
        },
        Some(Value::String(s)) if s.len() > limit => RequestBody::TooLarge,
        Some(Value::String(s)) if s.is_empty() => RequestBody::Empty,
        Some(Value::String(s)) => RequestBody::Data(Bytes::from(s.clone())),
        // A body the host already parsed (older hosts did this for JSON).
        Some(other) => {
            let s = other.to_string();
            if s.len() > limit {
                RequestBody::TooLarge
            } else {
                RequestBody::Data(Bytes::from(s))
            }
        }
    };
    // Each `X-Forwarded-For` value as the front end delivered it (arrays of strings).
    let forwarded_for = match get_ci(&headers, super::client::FORWARDED_FOR) {
        Some(Value::Array(items)) => items.iter().map(scalar).collect(),
        Some(other) => vec![scalar(other)],
        None => Vec::new(),
    };
    Ok(ApiRequest {
        method,
        query,
        accept: header("Accept"),
        content_type: header("Content-Type"),
        forwarded_for,
        body,
    })
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
