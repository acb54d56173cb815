//! App Insights availability results: one `AvailabilityData` envelope per target of a
//! scheduled run, POSTed to `{IngestionEndpoint}/v2.1/track` (Breeze schema), from
//! `APPLICATIONINSIGHTS_CONNECTION_STRING`. Availability results are for scheduled runs
//! only: that is what App Insights' availability view means by them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::report::Report;
use crate::setting::TraceParent;

use super::spans::{Parent, started};

/// Where availability results go, from `APPLICATIONINSIGHTS_CONNECTION_STRING`. The
/// connection string is never logged whole: only the ingestion host.
#[derive(Clone, PartialEq)]
pub struct AppInsights {
    pub ikey: String,
    /// `IngestionEndpoint`, without the trailing slash.
    pub ingestion: String,
}

impl std::fmt::Debug for AppInsights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppInsights")
            .field("ikey", &redact_ikey(&self.ikey))
            .field("ingestion", &self.ingestion)
            .finish()
    }
}

/// `1234…cdef`: enough to tell resources apart in a log line.
pub fn redact_ikey(k: &str) -> String {
    if k.len() > 8 {
        format!("{}…{}", &k[..4], &k[k.len() - 4..])
    } else {
        "…".into()
    }
}

impl AppInsights {
    /// Parses `InstrumentationKey=...;IngestionEndpoint=https://...;...` (keys are
    /// case-insensitive). Without `IngestionEndpoint`, the global endpoint is used.
    pub fn from_connection_string(cs: &str) -> Result<AppInsights, String> {
        let mut ikey = None;
        let mut ingestion = None;
        for part in cs.split(';') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "instrumentationkey" => ikey = Some(v.trim().to_string()),
                "ingestionendpoint" => ingestion = Some(v.trim().trim_end_matches('/').to_string()),
                _ => {}
            }
        }
        let ikey = ikey
            .filter(|k| !k.is_empty())
            .ok_or("APPLICATIONINSIGHTS_CONNECTION_STRING has no InstrumentationKey")?;
        let ingestion =
            ingestion.unwrap_or_else(|| "https://dc.services.visualstudio.com".to_string());
        if !(ingestion.starts_with("https://") || ingestion.starts_with("http://")) {
            return Err("the connection string's IngestionEndpoint is not an http(s) URL".into());
        }
        Ok(AppInsights { ikey, ingestion })
    }

    pub fn track_url(&self) -> String {
        format!("{}/v2.1/track", self.ingestion)
    }

    /// One availability envelope per target (Breeze schema: `AvailabilityData`, ver 2).
    pub fn envelopes(&self, report: &Report, parent: Parent<'_>) -> Vec<serde_json::Value> {
        use serde_json::{Map, Value, json};
        let t0 = started(report);
        let (role, instance) = match &report.environment.site {
            Some(s) => (s.name.clone(), s.instance_id.clone().unwrap_or_default()),
            None => (
                report.environment.hostname.clone().unwrap_or_default(),
                report.environment.hostname.clone().unwrap_or_default(),
            ),
        };
        let run_location = if instance.is_empty() || instance == role {
            role.clone()
        } else {
            format!("{role}/{}", short(&instance))
        };
        let operation_id = parent
            .traceparent
            .and_then(TraceParent::parse)
            .map(|tp| tp.trace_id_hex())
            .or_else(|| parent.invocation_id.map(|i| i.replace('-', "")))
            .unwrap_or_else(|| new_id(report, "run"));
        let name = format!(
            "Microsoft.ApplicationInsights.{}.Availability",
            self.ikey.replace('-', "")
        );
        report
            .targets
            .iter()
            .map(|t| {
                let mut props = Map::new();
                let mut measurements = Map::new();
                props.insert("target".into(), Value::from(t.target.clone()));
                props.insert(
                    "reached".into(),
                    Value::from(t.reached.map(|l| l.as_str()).unwrap_or("nothing")),
                );
                if let Some(f) = &t.failure {
                    props.insert("class".into(), Value::from(f.class.as_str()));
                    if let Some(l) = f.layer {
                        props.insert("failedLayer".into(), Value::from(l.as_str()));
                    }
                }
                if let Some(id) = parent.invocation_id {
                    props.insert("InvocationId".into(), Value::from(id));
                }
                for l in &t.layers {
                    let k = l.layer.as_str();
                    props.insert(
                        format!("layer.{k}"),
                        Value::from(format!(
                            "{} {:.3} ms{}",
                            if l.ok { "ok" } else { "failed" },
                            l.duration_ms,
                            l.error
                                .as_ref()
                                .map(|e| format!(" ({})", e.class))
                                .unwrap_or_default()
                        )),
                    );
                    measurements.insert(format!("layer.{k}.ms"), json!(l.duration_ms));
                }
                for s in &t.skipped {
                    props.insert(
                        format!("layer.{}", s.layer.as_str()),
                        Value::from(format!("skipped: {}", s.reason)),
                    );
                }
                let message = match &t.failure {
                    Some(f) => format!("{}: {} — {}", f.class, f.message, f.hint),
                    None => format!(
                        "ok, reached {}",
                        t.reached.map(|l| l.as_str()).unwrap_or("nothing")
                    ),
                };
                json!({
                    "ver": 1,
                    "name": name,
                    "time": humantime::format_rfc3339_micros(t0).to_string(),
                    "sampleRate": 100.0,
                    "iKey": self.ikey,
                    "tags": {
                        "ai.cloud.role": role,
                        "ai.cloud.roleInstance": instance,
                        "ai.operation.id": operation_id,
                        "ai.operation.name": "routeproof",
                        "ai.internal.sdkVersion": concat!("routeproof:", env!("CARGO_PKG_VERSION")),
                    },
                    "data": {
                        "baseType": "AvailabilityData",
                        "baseData": {
                            "ver": 2,
                            "id": new_id(report, &t.name),
                            "name": t.name,
                            "duration": timespan(t.duration_ms),
                            "success": t.ok,
                            "runLocation": run_location,
                            "message": truncate(&message, 8192),
                            "properties": props,
                            "measurements": measurements,
                        }
                    }
                })
            })
            .collect()
    }

    /// POSTs the envelopes (a JSON array) to `/v2.1/track`, within `bound`.
    pub async fn send(
        &self,
        envelopes: &[serde_json::Value],
        bound: Duration,
    ) -> Result<(), String> {
        if envelopes.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(envelopes).map_err(|e| e.to_string())?;
        match tokio::time::timeout(bound, post_json(&self.track_url(), body)).await {
            Ok(Ok((status, text))) if (200..300).contains(&status) => {
                // 206: some items refused; the reply says which and why.
                if status == 206 {
                    return Err(format!("partial accept (206): {}", truncate(&text, 512)));
                }
                Ok(())
            }
            Ok(Ok((status, text))) => Err(format!("HTTP {status}: {}", truncate(&text, 512))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} ms", bound.as_millis())),
        }
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A unique-enough id (32 hex digits): time, a process counter and the name.
fn new_id(report: &Report, name: &str) -> String {
    use std::hash::{Hash, Hasher};
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (name, &report.started_at, n, std::process::id()).hash(&mut h);
    format!("{nanos:016x}{:016x}", h.finish())
}

/// .NET TimeSpan text, as the Breeze schema wants durations: `[d.]hh:mm:ss.fffffff`.
pub fn timespan(ms: f64) -> String {
    let ticks = (ms.max(0.0) * 10_000.0).round() as u64;
    let frac = ticks % 10_000_000;
    let secs = ticks / 10_000_000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}.{h:02}:{m:02}:{s:02}.{frac:07}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{frac:07}")
    }
}

/// One HTTP/1.1 POST with hyper (TLS by rustls with the system roots for https).
async fn post_json(url: &str, body: Vec<u8>) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    let u = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = u.host_str().ok_or("no host")?.to_string();
    let port = u.port_or_known_default().ok_or("no port")?;
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, u.authority())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("routeproof/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    async fn exchange<S>(
        io: S,
        req: hyper::Request<Full<bytes::Bytes>>,
    ) -> Result<(u16, String), String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        Ok((status, body))
    }
    if u.scheme() == "https" {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name =
            rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS to {host}: {e}"))?;
        exchange(tls, req).await
    } else {
        exchange(tcp, req).await
    }
}
