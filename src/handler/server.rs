//! The HTTP server the Functions host talks to. Built as `run(listener, state,
//! shutdown)` so the binary binds the host's port and tests bind `127.0.0.1:0`.
//!
//! Routes, by how requests arrive (docs/host-contract.md §2):
//! - `GET /`: the host's readiness poll (every 25 ms at start-up); answered at once.
//! - `/api/probe`, `/api/health`, `/api/metrics`: forward and proxy mode keep the
//!   original path.
//!   `GET /probe`, `GET /health` cover a host.json with `routePrefix: ""`.
//! - `POST /{FunctionName}`: payload mode (the timer always; HTTP functions when
//!   neither forwarding nor proxying is on).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;
use tokio::net::TcpListener;
use tracing::Instrument;

use super::error::ErrorClass;
use super::http_api::{self, ApiReply, ApiRequest, RequestBody};
use super::invocation::{EnvelopeError, Invocation, Mode, http_mode};
use super::payload;
use super::state::{ENVELOPE_LIMIT, State};

/// After refusing an oversized body, read (and discard) up to this much more of it so
/// the connection stays reusable; beyond it the reply closes the connection, which
/// lingers (`super::linger`) so the client, still sending, reads the 413.
const DRAIN_CAP: u64 = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn run<F>(listener: TcpListener, state: Arc<State>, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    run_with(listener, Vec::new(), state, shutdown).await
}

/// `run`, serving first the connections accepted before the runtime ran (`super::early`).
pub async fn run_with<F>(
    listener: TcpListener,
    early: Vec<std::net::TcpStream>,
    state: Arc<State>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = super::linger::Listener {
        tcp: listener,
        early: early.into(),
    };
    // Connections close with a linger, so a refused body's 413 is read, not reset.
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(ready).fallback(not_found))
        .route("/api/probe", any(api_probe))
        .route("/api/health", any(api_health))
        .route("/api/metrics", any(api_metrics))
        .route(
            "/{function}",
            get(get_function)
                .post(post_function)
                .fallback(method_not_allowed),
        )
        .fallback(not_found)
        .with_state(state)
}

/// Readiness: any answer counts for the host, so it is tiny and touches nothing. Before
/// the runtime runs, `super::early` gives the same answer.
async fn ready() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ready\n",
    )
        .into_response()
}

async fn api_probe(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let inv = Invocation::from_headers(&headers, "probe", "http", http_mode(&headers));
    let span = inv.span();
    let path = uri.path().to_string();
    async move {
        let start = Instant::now();
        let limit = state.settings().body_limit;
        let (req_body, overflow) = if method == Method::POST {
            match read_body(body, declared_length(&headers), limit).await {
                Ok(Some(b)) => (RequestBody::Data(b), false),
                Ok(None) => (RequestBody::Empty, false),
                Err(BodyError::TooLarge { drained }) => (RequestBody::TooLarge, !drained),
                Err(BodyError::Broken(e)) => {
                    let reply = ApiReply::error(
                        ErrorClass::RequestBody,
                        format!("the request body could not be read: {e}"),
                        &inv,
                    );
                    return finish(reply, &method, &path, start, false);
                }
            }
        } else {
            (RequestBody::Empty, false)
        };
        let req = ApiRequest {
            method: method.clone(),
            query: query_pairs(&uri),
            accept: header_text(&headers, header::ACCEPT),
            content_type: header_text(&headers, header::CONTENT_TYPE),
            forwarded_for: headers
                .get_all(super::client::FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect(),
            body: req_body,
        };
        let reply = http_api::probe(&state, req, &inv).await;
        finish(reply, &method, &path, start, overflow)
    }
    .instrument(span)
    .await
}

/// `/api/metrics`: Prometheus text of the last scheduled report (never probes).
async fn api_metrics(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let inv = Invocation::from_headers(&headers, "metrics", "http", http_mode(&headers));
    let start = Instant::now();
    let reply = if method == Method::GET {
        super::timer::metrics(&state, &inv).await
    } else {
        ApiReply::error(
            ErrorClass::RequestMethod,
            format!("{method} is not supported here: use GET"),
            &inv,
        )
    };
    let _s = inv.span().entered();
    finish(reply, &method, uri.path(), start, false)
}

async fn api_health(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let mode = http_mode(&headers);
    let inv = Invocation::from_headers(&headers, "health", "http", mode);
    let start = Instant::now();
    let reply = if method == Method::GET {
        let forwarded_for = headers
            .get_all(super::client::FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok());
        http_api::health(&inv, super::client::seen(mode, forwarded_for))
    } else {
        ApiReply::error(
            ErrorClass::RequestMethod,
            format!("{method} is not supported here: use GET"),
            &inv,
        )
    };
    let _s = inv.span().entered();
    finish(reply, &method, uri.path(), start, false)
}

/// The `{function}` segment, read from the URI rather than with `Path` so that no
/// request can get axum's plain-text rejection instead of our JSON.
fn function_name(uri: &Uri) -> String {
    uri.path().trim_start_matches('/').to_string()
}

/// `GET /probe` and `GET /health` for `routePrefix: ""`; anything else is not ours.
async fn get_function(
    state: AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match function_name(&uri).as_str() {
        "probe" => api_probe(state, method, uri, headers, Body::empty()).await,
        "health" => api_health(method, uri, headers).await,
        "metrics" => api_metrics(state, method, uri, headers).await,
        _ => not_found(uri).await,
    }
}

/// Payload mode. Answers 200 with a JSON object whenever the envelope was usable: an
/// empty or `null` 200 body would hang the invocation until `functionTimeout`.
async fn post_function(
    AxState(state): AxState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = Instant::now();
    let function = function_name(&uri);
    let (result, overflow) = match read_body(body, declared_length(&headers), ENVELOPE_LIMIT).await
    {
        Ok(b) => {
            let bytes = b.unwrap_or_default();
            (
                payload::invoke(&state, &function, &headers, &bytes).await,
                false,
            )
        }
        Err(BodyError::TooLarge { drained }) => (
            Err(EnvelopeError::new(
                ErrorClass::EnvelopeTooLarge,
                format!(
                    "the invocation body is larger than {} MiB",
                    ENVELOPE_LIMIT >> 20
                ),
            )),
            !drained,
        ),
        Err(BodyError::Broken(e)) => (
            Err(EnvelopeError::new(
                ErrorClass::EnvelopeInvalid,
                format!("the invocation body could not be read: {e}"),
            )),
            false,
        ),
    };
    let mut resp = match result {
        Ok(v) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => {
            let inv = Invocation::from_headers(&headers, &function, "unknown", Mode::Payload);
            let _s = inv.span().entered();
            if e.status().is_server_error() {
                tracing::error!(class = e.class.as_str(), "{}", e.message);
            } else {
                tracing::warn!(class = e.class.as_str(), "{}", e.message);
            }
            let body =
                json!({ "error": { "class": e.class, "message": e.message }, "invocation": inv });
            (
                e.status(),
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body.to_string(),
            )
                .into_response()
        }
    };
    if overflow {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    tracing::info!(
        method = "POST",
        path = uri.path(),
        status = resp.status().as_u16(),
        elapsed_ms = crate::report::ms(start.elapsed()),
        "invocation answered"
    );
    resp
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let body = json!({ "error": {
        "class": ErrorClass::RequestMethod,
        "message": format!("{method} is not supported on {}: GET /api/probe, POST /{{function}}",
            uri.path().chars().take(128).collect::<String>()),
    }});
    (
        ErrorClass::RequestMethod.status(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    let body = json!({ "error": {
        "class": ErrorClass::HandlerNotFound,
        "message": format!("nothing at {}: routes are /api/probe, /api/health and POST /{{function}}",
            uri.path().chars().take(128).collect::<String>()),
    }});
    (
        ErrorClass::HandlerNotFound.status(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Turns a reply into a response and writes the access log line. The query string is
/// never logged: forward and proxy mode leave the function key (`code=`) in it.
fn finish(reply: ApiReply, method: &Method, path: &str, start: Instant, close: bool) -> Response {
    tracing::info!(
        method = %method,
        path,
        status = reply.status.as_u16(),
        elapsed_ms = crate::report::ms(start.elapsed()),
        "request answered"
    );
    let mut resp = (reply.status, reply.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    if close {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let v: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!v.is_empty()).then(|| v.join(", "))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

enum BodyError {
    /// Over the limit. `drained`: the rest was read too, so the connection can be reused.
    TooLarge {
        drained: bool,
    },
    Broken(String),
}

/// Reads a body (Content-Length or chunked) up to `limit` bytes. `Ok(None)` for an
/// empty body.
async fn read_body(
    mut body: Body,
    declared: Option<u64>,
    limit: usize,
) -> Result<Option<Bytes>, BodyError> {
    if let Some(n) = declared
        && n > limit as u64
    {
        let drained = n <= limit as u64 + DRAIN_CAP && drain(&mut body).await;
        return Err(BodyError::TooLarge { drained });
    }
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
        if let Some(data) = chunk {
            if buf.len() + data.len() > limit {
                let drained = drain(&mut body).await;
                return Err(BodyError::TooLarge { drained });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((!buf.is_empty()).then(|| Bytes::from(buf)))
}

/// The next data chunk (`None` inside for trailers), or `None` at the end.
async fn next_chunk(body: &mut Body) -> Option<Result<Option<Bytes>, axum::Error>> {
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx))
        .await
        .map(|r| r.map(|f| f.into_data().ok()))
}

/// Discards the rest of a refused body, within `DRAIN_CAP` bytes and `DRAIN_TIME`.
/// Returns whether the body ended.
async fn drain(body: &mut Body) -> bool {
    let work = async {
        let mut seen: u64 = 0;
        while let Some(chunk) = next_chunk(body).await {
            let Ok(chunk) = chunk else { return false };
            if let Some(data) = chunk {
                seen += data.len() as u64;
                if seen > DRAIN_CAP {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, work)
        .await
        .unwrap_or(false)
}
