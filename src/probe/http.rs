//! HTTP layer: one request over the connection the TCP and TLS layers proved (hyper,
//! reqwest's own HTTP engine, driven directly: reqwest would open a second connection,
//! which proves a route we did not report, and hides the per-phase timings).
//!
//! Phases: `ttfb_ms` (request written to response head) and `transfer_ms` (body read);
//! DNS, connect and TLS are the layers below. The body read is bounded by
//! `max_body_bytes`, and never more than that is buffered.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{HOST, HeaderValue, LOCATION, USER_AGENT};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::step::Step;
use crate::budget::Budget;
use crate::diagnose::{self, Context, azure_signature};
use crate::report::{Evidence, Failure, FailureClass, HttpEvidence, Layer, LayerResult, ms};
use crate::secret::redact_url;
use crate::spec::HttpOptions;

/// Response headers worth showing; everything else (cookies, tokens) stays out.
const SHOWN_HEADERS: &[&str] = &[
    "server",
    "content-type",
    "content-length",
    "location",
    "www-authenticate",
    "x-ms-request-id",
    "x-ms-error-code",
    "x-azure-ref",
    "x-powered-by",
    "via",
    "retry-after",
];

/// The HTTP layer's input; it runs over the stream the layer below hands on (TCP, or
/// TLS for https).
pub struct HttpStep<'a> {
    pub url: &'a url::Url,
    pub opts: &'a HttpOptions,
    /// The Host header (the SNI name when one is set for an IP target).
    pub host: String,
    /// ALPN chose h2.
    pub h2: bool,
    pub ttfb_timeout: Duration,
    pub body_timeout: Duration,
    /// Fail on a body over `max_body_bytes` (when the limit was set explicitly);
    /// otherwise stop reading there and say so.
    pub enforce_body_limit: bool,
    pub ctx: &'a Context,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> hyper::Result<hyper::Response<hyper::body::Incoming>> {
        match self {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

pub async fn run<IO>(io: IO, plan: HttpStep<'_>, budget: &Budget) -> Step<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let start = Instant::now();
    let mut ev = HttpEvidence {
        method: plan.opts.method.clone(),
        url: redact_url(plan.url),
        ..Default::default()
    };
    let mut ctx = plan.ctx.clone();
    let result = exchange(io, &plan, budget, &mut ev, &mut ctx).await;
    let error = result.err().map(|(class, message)| {
        if class == FailureClass::HttpStatus {
            ctx.http_status = ev.status;
        }
        diagnose::failure(Some(Layer::Http), class, message, &ctx)
    });
    Step::last(finish(ev, error, start))
}

fn finish(ev: HttpEvidence, error: Option<Failure>, start: Instant) -> LayerResult {
    // The layer's time is the HTTP exchange itself; the layers below have their own.
    let duration = match (ev.ttfb_ms, ev.transfer_ms) {
        (Some(a), Some(b)) => a + b,
        (Some(a), None) => a,
        _ => ms(start.elapsed()),
    };
    LayerResult {
        layer: Layer::Http,
        ok: error.is_none(),
        start_ms: 0.0,
        duration_ms: (duration * 1000.0).round() / 1000.0,
        error,
        evidence: Evidence::Http(ev),
    }
}

type Fail = (FailureClass, String);

async fn exchange<IO>(
    io: IO,
    plan: &HttpStep<'_>,
    budget: &Budget,
    ev: &mut HttpEvidence,
    ctx: &mut Context,
) -> Result<(), Fail>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let (mut sender, conn_task) = if plan.h2 {
        let (s, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(|e| {
                (
                    FailureClass::HttpProtocol,
                    format!("HTTP/2 handshake failed: {e}"),
                )
            })?;
        (Sender::H2(s), tokio::spawn(async move { drop(conn.await) }))
    } else {
        let (s, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| {
                (
                    FailureClass::HttpProtocol,
                    format!("HTTP/1.1 handshake failed: {e}"),
                )
            })?;
        (Sender::H1(s), tokio::spawn(async move { drop(conn.await) }))
    };
    // The connection task ends with this function; nothing outlives the probe.
    let _abort = AbortOnDrop(conn_task);

    let mut url = plan.url.clone();
    let mut seen = vec![url.clone()];
    loop {
        let req = build(plan, &url)?;
        let (limit, cut) = budget.limit(plan.ttfb_timeout);
        let t0 = Instant::now();
        let resp = match tokio::time::timeout(limit, sender.send(req)).await {
            Err(_) if cut => {
                return Err((
                    FailureClass::Deadline,
                    "run deadline reached waiting for the response".into(),
                ));
            }
            Err(_) => {
                return Err((
                    FailureClass::HttpTimeout,
                    format!(
                        "no response within {} of sending the request (phase: first byte)",
                        humantime::format_duration(limit)
                    ),
                ));
            }
            Ok(Err(e)) => return Err((FailureClass::HttpProtocol, protocol_message(&e))),
            Ok(Ok(r)) => r,
        };
        ev.ttfb_ms = Some(ms(t0.elapsed()));
        let status = resp.status().as_u16();
        ev.status = Some(status);
        ev.version = Some(format!("{:?}", resp.version()));
        ev.headers = resp
            .headers()
            .iter()
            .filter(|(k, _)| SHOWN_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| {
                // A Location (or any shown value) may carry a SAS signature or a token.
                let v = String::from_utf8_lossy(v.as_bytes());
                let v = match url::Url::parse(&v) {
                    Ok(u) if k == LOCATION => redact_url(&u),
                    _ => crate::secret::scrub(&v),
                };
                (k.as_str().to_string(), v)
            })
            .collect();
        let headers = resp.headers().clone();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(loc) = &location {
            let shown = match url::Url::parse(loc) {
                Ok(u) => redact_url(&u),
                Err(_) => crate::secret::scrub(loc),
            };
            ev.redirects.push(format!("{status} {shown}"));
        }

        let t1 = Instant::now();
        let body = read_body(resp.into_body(), plan, budget, ev).await;
        ev.transfer_ms = Some(ms(t1.elapsed()));
        let body = body?;

        if plan.opts.follow_redirects && (300..400).contains(&status) {
            let Some(loc) = location else {
                return Err((
                    FailureClass::HttpProtocol,
                    format!("{status} without a Location header"),
                ));
            };
            let next = url.join(&loc).map_err(|e| {
                (
                    FailureClass::HttpRedirects,
                    format!("unusable Location `{loc}`: {e}"),
                )
            })?;
            if next.origin() != url.origin() {
                return Err((
                    FailureClass::HttpRedirects,
                    format!(
                        "redirect to another origin ({}) is not followed: that is another route; give it its own target",
                        redact_url(&next)
                    ),
                ));
            }
            if seen.contains(&next) {
                return Err((
                    FailureClass::HttpRedirects,
                    format!("redirect loop at {}", redact_url(&next)),
                ));
            }
            if seen.len() > usize::from(plan.opts.max_redirects) {
                return Err((
                    FailureClass::HttpRedirects,
                    format!(
                        "more than max_redirects = {} redirects",
                        plan.opts.max_redirects
                    ),
                ));
            }
            seen.push(next.clone());
            url = next;
            continue;
        }
        return check(plan, status, &body, &headers, ev, ctx);
    }
}

fn build(plan: &HttpStep<'_>, url: &url::Url) -> Result<Request<Full<Bytes>>, Fail> {
    // HTTP/1.1 takes the origin form (`/path?query`) plus a Host header; HTTP/2 the
    // absolute URI, whose authority plays Host's part. Both use `plan.host`, so an IP
    // target with an SNI name reaches that virtual host either way.
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let target = if plan.h2 {
        format!("{}://{}{}", url.scheme(), plan.host, path)
    } else {
        path
    };
    let mut b = Request::builder()
        .method(plan.opts.method.as_str())
        .uri(target);
    if !plan.h2 {
        b = b.header(HOST, plan.host.as_str());
    }
    b = b.header(
        USER_AGENT,
        concat!("routeproof/", env!("CARGO_PKG_VERSION")),
    );
    for (k, v) in &plan.opts.headers {
        let v = HeaderValue::from_str(v.expose()).map_err(|_| {
            (
                FailureClass::HttpProtocol,
                format!("header `{k}` has an invalid value"),
            )
        })?;
        b = b.header(k.as_str(), v);
    }
    let body = plan
        .opts
        .body
        .as_ref()
        .map(|s| Bytes::from(s.expose().to_string()))
        .unwrap_or_default();
    b.body(Full::new(body)).map_err(|e| {
        (
            FailureClass::HttpProtocol,
            format!("cannot build the request: {e}"),
        )
    })
}

/// Reads at most `max_body_bytes`, under the body timeout; returns what was read.
async fn read_body(
    mut body: hyper::body::Incoming,
    plan: &HttpStep<'_>,
    budget: &Budget,
    ev: &mut HttpEvidence,
) -> Result<Vec<u8>, Fail> {
    let (limit, cut) = budget.limit(plan.body_timeout);
    let deadline = Instant::now() + limit;
    let max = plan.opts.max_body_bytes;
    let mut buf = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) if cut => {
                return Err((
                    FailureClass::Deadline,
                    "run deadline reached reading the body".into(),
                ));
            }
            Err(_) => {
                return Err((
                    FailureClass::HttpTimeout,
                    format!(
                        "body incomplete after {} ({} bytes read; phase: transfer)",
                        humantime::format_duration(limit),
                        ev.body_bytes
                    ),
                ));
            }
            Ok(None) => return Ok(buf),
            Ok(Some(Err(e))) => return Err((FailureClass::HttpProtocol, protocol_message(&e))),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            ev.body_bytes += data.len() as u64;
            let room = max.saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
            if ev.body_bytes as usize > max {
                ev.body_truncated = true;
                if plan.enforce_body_limit {
                    return Err((
                        FailureClass::HttpTooLarge,
                        format!(
                            "the body is larger than max_body_bytes = {max}; reading stopped there"
                        ),
                    ));
                }
                return Ok(buf);
            }
        }
    }
}

/// Assertions on the final response. Header checks see every response header, not just
/// the ones shown in the report.
fn check(
    plan: &HttpStep<'_>,
    status: u16,
    body: &[u8],
    headers: &hyper::HeaderMap,
    ev: &HttpEvidence,
    ctx: &mut Context,
) -> Result<(), Fail> {
    let text = String::from_utf8_lossy(body);
    if !plan
        .opts
        .status
        .iter()
        .any(|(a, b)| (*a..=*b).contains(&status))
    {
        ctx.http_status = Some(status);
        ctx.http_signature = azure_signature(status, &text);
        let want: Vec<String> = plan
            .opts
            .status
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        let sig = ctx
            .http_signature
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        return Err((
            FailureClass::HttpStatus,
            format!("status {status}, expected {}{sig}", want.join(", ")),
        ));
    }
    let scope = if ev.body_truncated {
        format!(" (in the first {} bytes read)", body.len())
    } else {
        String::new()
    };
    if let Some(needle) = &plan.opts.body_contains
        && !text.contains(needle.as_str())
    {
        return Err((
            FailureClass::HttpBody,
            format!("the body does not contain `{needle}`{scope}"),
        ));
    }
    if let Some(re) = &plan.opts.body_regex
        && !re.0.is_match(&text)
    {
        return Err((
            FailureClass::HttpBody,
            format!("the body does not match /{}/{scope}", re.0.as_str()),
        ));
    }
    for (name, needle) in &plan.opts.header_contains {
        let found = headers
            .get_all(name.as_str())
            .iter()
            .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(needle.as_str()));
        if !found {
            return Err((
                FailureClass::HttpBody,
                format!("response header `{name}` does not contain `{needle}`"),
            ));
        }
    }
    Ok(())
}

fn protocol_message(e: &hyper::Error) -> String {
    if e.is_parse() {
        format!("not a valid HTTP response: {e}")
    } else if e.is_incomplete_message() {
        "the server closed the connection before the response was complete".into()
    } else {
        format!("HTTP exchange failed: {e}")
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
