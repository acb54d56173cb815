//! OpenTelemetry export of finished reports: traces and metrics over OTLP/HTTP protobuf.
//!
//! Spans are built *after* a run, from the report's own timings (explicit start and end
//! times), so the engine's hot path carries no instrumentation at all and the spans say
//! exactly what the report says:
//! - `routeproof.run` (one per run; parent: the invocation's incoming `traceparent`),
//! - `routeproof.target` (one per target),
//! - `routeproof.layer` (one per layer that ran; layers run one after another, so each
//!   starts where the previous one ended).
//!
//! Metrics, recorded per report:
//! - `routeproof.probe.duration` (histogram, s): per target and layer (`layer` = `total`
//!   for the whole target),
//! - `routeproof.probe.success` (gauge, 0/1): per target,
//! - `routeproof.probe.failures` (counter): per target and failure class.
//!
//! Configured only by the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
//! per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`),
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the only one built in),
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`.
//! Without an endpoint nothing is built and `record` is never called: zero cost.
//! The resource also carries the Function App's facts: `cloud.provider`,
//! `cloud.platform`, `cloud.region` (`REGION_NAME`), `faas.name` / `service.namespace`
//! (`WEBSITE_SITE_NAME`), `service.instance.id` / `faas.instance` (`WEBSITE_INSTANCE_ID`).
//!
//! The host kills the handler without a graceful signal, so a timer invocation calls
//! `flush` (bounded, default 2 s) before it answers; a dead collector costs at most that
//! bound and never fails the invocation.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::metrics::{Counter, Gauge, Histogram, MeterProvider as _};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::report::{Evidence, LayerResult, Report, TargetReport};

/// How long a timer invocation waits for its telemetry to leave.
pub const FLUSH_BOUND: Duration = Duration::from_secs(2);
/// Per-request timeout of the exporters (`OTEL_EXPORTER_OTLP_TIMEOUT` overrides).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where to send, resolved from the standard variables.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// Full URL of the traces endpoint (`.../v1/traces`).
    pub traces_endpoint: String,
    /// Full URL of the metrics endpoint (`.../v1/metrics`).
    pub metrics_endpoint: String,
    pub headers: HashMap<String, String>,
    pub service_name: String,
    pub resource: Vec<(String, String)>,
    pub timeout: Duration,
}

impl OtelConfig {
    /// Reads the standard variables through `env`. `Ok(None)`: telemetry is off (no
    /// endpoint). `Err`: set but unusable (e.g. `grpc`, which this build leaves out).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<OtelConfig>, String> {
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        let traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let metrics = get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        if base.is_none() && traces.is_none() && metrics.is_none() {
            return Ok(None);
        }
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let protocol = get("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_else(|| "http/protobuf".into());
        if protocol != "http/protobuf" {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not built in: use http/protobuf (port 4318)"
            ));
        }
        let signal = |specific: Option<String>, path: &str| -> Result<String, String> {
            let url = match (specific, &base) {
                (Some(u), _) => u,
                (None, Some(b)) => format!("{}/{path}", b.trim_end_matches('/')),
                (None, None) => return Ok(String::new()),
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "the OTLP endpoint must be an http:// or https:// URL, got `{}`",
                    crate::secret::scrub(&url)
                ));
            }
            Ok(url)
        };
        let headers = get("OTEL_EXPORTER_OTLP_HEADERS")
            .map(|h| parse_pairs(&h).into_iter().collect())
            .unwrap_or_default();
        let (service_name, resource) = resource_from_lookup(env);
        let timeout = get("OTEL_EXPORTER_OTLP_TIMEOUT")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(EXPORT_TIMEOUT);
        Ok(Some(OtelConfig {
            traces_endpoint: signal(traces, "v1/traces")?,
            metrics_endpoint: signal(metrics, "v1/metrics")?,
            headers,
            service_name,
            resource,
            timeout,
        }))
    }
}

/// `service.name` (`OTEL_SERVICE_NAME`, default `routeproof`) and the resource attributes
/// (`OTEL_RESOURCE_ATTRIBUTES` plus the Function App's facts).
pub fn resource_from_lookup(
    env: &dyn Fn(&str) -> Option<String>,
) -> (String, Vec<(String, String)>) {
    let get = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut resource = get("OTEL_RESOURCE_ATTRIBUTES")
        .map(|a| parse_pairs(&a))
        .unwrap_or_default();
    resource.extend(azure_resource(env));
    (
        get("OTEL_SERVICE_NAME").unwrap_or_else(|| "routeproof".into()),
        resource,
    )
}

/// `k=v,k2=v2` with percent-decoding (W3C baggage style, as the OTel spec asks).
fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let dec = |x: &str| {
                url::form_urlencoded::parse(
                    format!("x={}", x.trim().replace('+', "%2B")).as_bytes(),
                )
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
            };
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), dec(v)))
        })
        .collect()
}

/// Resource attributes from the Function App's own settings.
fn azure_resource(env: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let site = env("WEBSITE_SITE_NAME");
    if let Some(site) = &site {
        out.push(("cloud.provider".into(), "azure".into()));
        out.push(("cloud.platform".into(), "azure_functions".into()));
        out.push(("faas.name".into(), site.clone()));
        out.push(("service.namespace".into(), site.clone()));
    }
    if let Some(region) = env("REGION_NAME") {
        out.push(("cloud.region".into(), region));
    }
    if let Some(instance) = env("WEBSITE_INSTANCE_ID") {
        out.push(("service.instance.id".into(), instance.clone()));
        out.push(("faas.instance".into(), instance));
    }
    out.push(("service.version".into(), env!("CARGO_PKG_VERSION").into()));
    out
}

/// The exporters and instruments, built once.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    instruments: Option<Instruments>,
}

struct Instruments {
    duration: Histogram<f64>,
    success: Gauge<f64>,
    failures: Counter<u64>,
}

impl Telemetry {
    /// Builds the OTLP exporters. The blocking HTTP client is created on its own thread by
    /// opentelemetry-otlp, so this is safe inside the tokio runtime.
    pub fn new(cfg: &OtelConfig) -> Result<Telemetry, String> {
        Telemetry::build(Some(cfg), None, &cfg.service_name, &cfg.resource)
    }

    /// Builds exporters for OTLP (`otlp`), Azure Monitor (`app_insights`), or both: the
    /// same spans and metrics go to each.
    pub fn build(
        otlp: Option<&OtelConfig>,
        app_insights: Option<AppInsightsExport<'_>>,
        service_name: &str,
        resource: &[(String, String)],
    ) -> Result<Telemetry, String> {
        let mut rb = Resource::builder_empty().with_service_name(service_name.to_string());
        for (k, v) in resource {
            rb = rb.with_attribute(KeyValue::new(k.clone(), v.clone()));
        }
        let resource = rb.build();
        let mut tb = SdkTracerProvider::builder().with_resource(resource.clone());
        let mut mb = SdkMeterProvider::builder().with_resource(resource);
        let (mut traces, mut metrics) = (false, false);
        if let Some(cfg) = otlp {
            if !cfg.traces_endpoint.is_empty() {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(cfg.traces_endpoint.clone())
                    .with_timeout(cfg.timeout)
                    .with_headers(cfg.headers.clone())
                    .build()
                    .map_err(|e| format!("OTLP trace exporter: {e}"))?;
                tb = tb.with_batch_exporter(exporter);
                traces = true;
            }
            if !cfg.metrics_endpoint.is_empty() {
                let exporter = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(cfg.metrics_endpoint.clone())
                    .with_timeout(cfg.timeout)
                    .with_headers(cfg.headers.clone())
                    .build()
                    .map_err(|e| format!("OTLP metric exporter: {e}"))?;
                mb = mb.with_periodic_exporter(exporter);
                metrics = true;
            }
        }
        if let Some(ai) = app_insights {
            let cs = ai.connection_string;
            let extra_root = match ai.extra_root_pem {
                Some(pem) => Some(
                    reqwest::Certificate::from_pem(pem)
                        .map_err(|e| format!("App Insights extra root certificate: {e}"))?,
                ),
                None => None,
            };
            let exporter = |what: &str| {
                let extra_root = extra_root.clone();
                // Built off the async runtime: a blocking client created or dropped
                // inside tokio can panic (shared/CRATES.md, pitfall 3).
                let client = std::thread::spawn(move || {
                    let mut b = reqwest::blocking::Client::builder().timeout(EXPORT_TIMEOUT);
                    if let Some(c) = extra_root {
                        b = b.add_root_certificate(c);
                    }
                    b.build()
                })
                .join()
                .map_err(|_| format!("App Insights {what} exporter: client thread panicked"))?
                .map_err(|e| format!("App Insights {what} exporter: {e}"))?;
                opentelemetry_application_insights::Exporter::new_from_connection_string(cs, client)
                    .map_err(|e| format!("App Insights {what} exporter: {e}"))
            };
            tb = tb.with_batch_exporter(exporter("trace")?);
            mb = mb.with_periodic_exporter(exporter("metric")?);
            traces = true;
            metrics = true;
        }
        let tracer_provider = traces.then(|| tb.build());
        let meter_provider = metrics.then(|| mb.build());
        let instruments = meter_provider.as_ref().map(|mp| {
            let meter = mp.meter("routeproof");
            Instruments {
                duration: meter
                    .f64_histogram("routeproof.probe.duration")
                    .with_unit("s")
                    .with_description("Duration of each layer of a target's probe (layer=total: the whole target)")
                    .build(),
                success: meter
                    .f64_gauge("routeproof.probe.success")
                    .with_description("1 when every layer and expectation of the target held")
                    .build(),
                failures: meter
                    .u64_counter("routeproof.probe.failures")
                    .with_description("Failed target probes, by failure class")
                    .build(),
            }
        });
        Ok(Telemetry {
            tracer_provider,
            meter_provider,
            instruments,
        })
    }

    /// Emits the spans and metrics of one finished report. Cheap: spans go to the batch
    /// processor's queue, metrics to in-memory aggregation; nothing is sent here.
    pub fn record(&self, report: &Report, parent: Parent<'_>) {
        if let Some(tp) = &self.tracer_provider {
            spans(tp, report, parent);
        }
        if let Some(i) = &self.instruments {
            for t in &report.targets {
                let tattr = KeyValue::new("target", t.name.clone());
                i.success
                    .record(if t.ok { 1.0 } else { 0.0 }, std::slice::from_ref(&tattr));
                i.duration.record(
                    t.duration_ms / 1000.0,
                    &[tattr.clone(), KeyValue::new("layer", "total")],
                );
                for l in &t.layers {
                    i.duration.record(
                        l.duration_ms / 1000.0,
                        &[tattr.clone(), KeyValue::new("layer", l.layer.as_str())],
                    );
                }
                if let Some(f) = &t.failure {
                    i.failures.add(
                        1,
                        &[
                            tattr.clone(),
                            KeyValue::new("class", f.class.as_str()),
                            KeyValue::new("layer", f.layer.map(|l| l.as_str()).unwrap_or("")),
                        ],
                    );
                }
            }
        }
    }

    /// Pushes everything recorded so far, waiting at most `bound`. Export errors and a
    /// timeout are logged (as warnings: a collector being down is not our error) and
    /// otherwise ignored. Returns whether everything was flushed in time.
    pub async fn flush(self: &Arc<Self>, bound: Duration) -> bool {
        let me = Arc::clone(self);
        // A plain thread, not `spawn_blocking`: an exporter stuck in its retries (the App
        // Insights one retries for ~35 s) must not hold up the runtime's shutdown.
        let (tx, work) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("routeproof-telemetry-flush".into())
            .spawn(move || {
                let mut errors = Vec::new();
                if let Some(tp) = &me.tracer_provider
                    && let Err(e) = tp.force_flush()
                {
                    errors.push(format!("traces: {e}"));
                }
                if let Some(mp) = &me.meter_provider
                    && let Err(e) = mp.force_flush()
                {
                    errors.push(format!("metrics: {e}"));
                }
                let _ = tx.send(errors);
            });
        if spawned.is_err() {
            return false;
        }
        match tokio::time::timeout(bound, work).await {
            Ok(Ok(errors)) if errors.is_empty() => true,
            Ok(Ok(errors)) => {
                tracing::warn!(errors = %errors.join("; "), "telemetry export failed; the run's result is unaffected");
                false
            }
            Ok(Err(_)) => false,
            Err(_) => {
                tracing::warn!(
                    bound_ms = bound.as_millis() as u64,
                    "telemetry flush did not finish in time; answering anyway"
                );
                false
            }
        }
    }
}

/// Azure Monitor as an exporter target: the connection string, and (tests, private
/// ingestion proxies) an extra trusted root. The exporter always uses https.
#[derive(Clone, Copy)]
pub struct AppInsightsExport<'a> {
    pub connection_string: &'a str,
    pub extra_root_pem: Option<&'a [u8]>,
}

/// What a run's root span hangs under.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parent<'a> {
    /// The incoming W3C `traceparent`.
    pub traceparent: Option<&'a str>,
    pub invocation_id: Option<&'a str>,
    /// `timer`, `http`.
    pub trigger: &'a str,
}

/// A remote parent context from a W3C `traceparent` (`00-<trace>-<span>-<flags>`).
pub fn parent_context(traceparent: Option<&str>) -> Context {
    let Some(tp) = traceparent else {
        return Context::new();
    };
    let parts: Vec<&str> = tp.trim().split('-').collect();
    if parts.len() < 4 || parts[0].len() != 2 {
        return Context::new();
    }
    let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
        TraceId::from_hex(parts[1]),
        SpanId::from_hex(parts[2]),
        u8::from_str_radix(parts[3], 16),
    ) else {
        return Context::new();
    };
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return Context::new();
    }
    let sc = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(sc)
}

fn started(report: &Report) -> SystemTime {
    humantime::parse_rfc3339_weak(&report.started_at)
        .ok()
        .unwrap_or_else(|| SystemTime::now() - Duration::from_secs_f64(report.duration_ms / 1000.0))
}

fn after(t: SystemTime, ms: f64) -> SystemTime {
    t + Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

fn spans(tp: &SdkTracerProvider, report: &Report, parent: Parent<'_>) {
    let tracer = tp.tracer("routeproof");
    let t0 = started(report);
    let mut root_attrs = vec![
        KeyValue::new("routeproof.ok", report.ok),
        KeyValue::new("routeproof.targets.total", report.summary.total as i64),
        KeyValue::new("routeproof.targets.failed", report.summary.failed as i64),
        KeyValue::new("faas.trigger", parent.trigger.to_string()),
    ];
    if let Some(id) = parent.invocation_id {
        root_attrs.push(KeyValue::new("faas.invocation_id", id.to_string()));
    }
    let mut root = tracer
        .span_builder("routeproof.run")
        .with_kind(SpanKind::Internal)
        .with_start_time(t0)
        .with_attributes(root_attrs)
        .start_with_context(&tracer, &parent_context(parent.traceparent));
    if !report.ok {
        root.set_status(Status::error(format!(
            "{} of {} targets failed",
            report.summary.failed, report.summary.total
        )));
    }
    let root_cx = Context::new().with_remote_span_context(root.span_context().clone());
    for t in &report.targets {
        target_span(&tracer, &root_cx, t, t0);
    }
    root.end_with_timestamp(after(t0, report.duration_ms));
}

fn target_span(
    tracer: &opentelemetry_sdk::trace::SdkTracer,
    parent: &Context,
    t: &TargetReport,
    t0: SystemTime,
) {
    let mut attrs = vec![
        KeyValue::new("routeproof.target.name", t.name.clone()),
        KeyValue::new("routeproof.target", t.target.clone()),
        KeyValue::new("routeproof.ok", t.ok),
        KeyValue::new(
            "routeproof.reached",
            t.reached.map(|l| l.as_str()).unwrap_or("nothing"),
        ),
    ];
    if let Some(f) = &t.failure {
        attrs.push(KeyValue::new("routeproof.failure.class", f.class.as_str()));
        if let Some(l) = f.layer {
            attrs.push(KeyValue::new("routeproof.failure.layer", l.as_str()));
        }
    }
    let mut span = tracer
        .span_builder("routeproof.target")
        .with_start_time(t0)
        .with_attributes(attrs)
        .start_with_context(tracer, parent);
    if let Some(f) = &t.failure {
        span.set_status(Status::error(format!("{}: {}", f.class, f.message)));
    }
    let cx = Context::new().with_remote_span_context(span.span_context().clone());
    let mut offset = 0.0;
    for l in &t.layers {
        layer_span(tracer, &cx, t, l, after(t0, offset));
        offset += l.duration_ms.max(0.0);
    }
    span.end_with_timestamp(after(t0, t.duration_ms));
}

fn layer_span(
    tracer: &opentelemetry_sdk::trace::SdkTracer,
    parent: &Context,
    t: &TargetReport,
    l: &LayerResult,
    start: SystemTime,
) {
    let mut attrs = vec![
        KeyValue::new("routeproof.target.name", t.name.clone()),
        KeyValue::new("routeproof.layer", l.layer.as_str()),
        KeyValue::new("routeproof.ok", l.ok),
    ];
    if let Some(e) = &l.error {
        attrs.push(KeyValue::new("routeproof.failure.class", e.class.as_str()));
    }
    match &l.evidence {
        Evidence::Dns(d) => {
            attrs.push(KeyValue::new("dns.question.name", d.query.clone()));
            if let Some(s) = &d.server {
                attrs.push(KeyValue::new("routeproof.dns.server", s.clone()));
            }
            if let Some(r) = &d.rcode {
                attrs.push(KeyValue::new("routeproof.dns.rcode", r.clone()));
            }
            let addrs: Vec<String> = d.addresses.iter().map(|a| a.ip.to_string()).collect();
            if !addrs.is_empty() {
                attrs.push(KeyValue::new("routeproof.dns.addresses", addrs.join(",")));
            }
        }
        Evidence::Tcp(c) => {
            if let Some(p) = c.peer {
                attrs.push(KeyValue::new("network.peer.address", p.ip().to_string()));
                attrs.push(KeyValue::new("network.peer.port", i64::from(p.port())));
            }
            if let Some(p) = c.local {
                attrs.push(KeyValue::new("network.local.address", p.ip().to_string()));
            }
        }
        Evidence::Tls(s) => {
            if let Some(v) = &s.version {
                attrs.push(KeyValue::new("tls.protocol.version", v.clone()));
            }
            if let Some(sni) = &s.sni {
                attrs.push(KeyValue::new("server.address", sni.clone()));
            }
            if let Some(d) = s.days_left {
                attrs.push(KeyValue::new("routeproof.tls.days_left", d));
            }
        }
        Evidence::Http(h) => {
            if let Some(s) = h.status {
                attrs.push(KeyValue::new("http.response.status_code", i64::from(s)));
            }
            attrs.push(KeyValue::new("url.full", h.url.clone()));
        }
        Evidence::Tds(d) => {
            if let Some(v) = &d.server_version {
                attrs.push(KeyValue::new("routeproof.tds.server_version", v.clone()));
            }
        }
        Evidence::None {} => {}
    }
    let mut span = tracer
        .span_builder(format!("routeproof.layer.{}", l.layer.as_str()))
        .with_start_time(start)
        .with_attributes(attrs)
        .start_with_context(tracer, parent);
    if let Some(e) = &l.error {
        span.set_status(Status::error(format!("{}: {}", e.class, e.message)));
    }
    span.end_with_timestamp(after(start, l.duration_ms));
}

// ------------------------------------------------------------ App Insights availability

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
            .and_then(|tp| tp.split('-').nth(1))
            .map(str::to_string)
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

static AVAILABILITY: OnceLock<Option<Arc<AppInsights>>> = OnceLock::new();

/// Availability results from `APPLICATIONINSIGHTS_CONNECTION_STRING`, read once.
pub fn availability_from_env() -> Option<Arc<AppInsights>> {
    AVAILABILITY
        .get_or_init(|| {
            let cs = std::env::var("APPLICATIONINSIGHTS_CONNECTION_STRING").ok()?;
            if std::env::var("ROUTEPROOF_AVAILABILITY")
                .is_ok_and(|v| v.eq_ignore_ascii_case("false") || v == "0")
            {
                return None;
            }
            match AppInsights::from_connection_string(&cs) {
                Ok(ai) => {
                    tracing::info!(
                        ikey = %redact_ikey(&ai.ikey),
                        ingestion = %ai.ingestion,
                        "App Insights availability results on"
                    );
                    Some(Arc::new(ai))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "App Insights availability results off");
                    None
                }
            }
        })
        .clone()
}

/// Installs an explicit App Insights target (tests). False when already initialised.
pub fn install_availability(ai: Option<Arc<AppInsights>>) -> bool {
    AVAILABILITY.set(ai).is_ok()
}

/// What `export_run` did, for the invocation's log line.
#[derive(Debug, Clone, Default)]
pub struct ExportOutcome {
    pub otel: Option<bool>,
    pub availability: Option<Result<usize, String>>,
    pub elapsed: Duration,
}

/// Everything a finished scheduled run sends: OTel spans and metrics (recorded, then
/// flushed) and App Insights availability results, concurrently, each bounded by
/// `bound`. Never fails; what went wrong is logged as a warning and returned.
pub async fn export_run(report: &Report, parent: Parent<'_>, bound: Duration) -> ExportOutcome {
    let start = std::time::Instant::now();
    let otel = global();
    let ai = AVAILABILITY.get().cloned().flatten();
    if otel.is_none() && ai.is_none() {
        return ExportOutcome::default();
    }
    let otel_work = async {
        match &otel {
            Some(t) => {
                t.record(report, parent);
                Some(t.flush(bound).await)
            }
            None => None,
        }
    };
    let ai_work = async {
        match &ai {
            Some(ai) => {
                let env = ai.envelopes(report, parent);
                let n = env.len();
                let r = ai.send(&env, bound).await.map(|_| n);
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "App Insights availability results not accepted; the run's result is unaffected");
                }
                Some(r)
            }
            None => None,
        }
    };
    let (otel, availability) = tokio::join!(otel_work, ai_work);
    let out = ExportOutcome {
        otel,
        availability,
        elapsed: start.elapsed(),
    };
    tracing::info!(
        otel_flushed = ?out.otel,
        availability = ?out.availability.as_ref().map(|r| r.as_ref().map_err(|_| "failed")),
        export_ms = crate::report::ms(out.elapsed),
        "telemetry exported"
    );
    out
}

static GLOBAL: OnceLock<Option<Arc<Telemetry>>> = OnceLock::new();

/// Builds telemetry (OTel and App Insights availability) from the process environment
/// once (serve start-up). Problems are logged as warnings; that part then stays off.
pub fn init_from_env() -> Option<Arc<Telemetry>> {
    let _ = availability_from_env();
    GLOBAL
        .get_or_init(|| {
            let env = |k: &str| std::env::var(k).ok();
            let off = |k: &str| {
                env(k).is_some_and(|v| v.trim().eq_ignore_ascii_case("false") || v.trim() == "0")
            };
            let otlp = match OtelConfig::from_lookup(&env) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "OpenTelemetry OTLP export off");
                    None
                }
            };
            // Traces and metrics to Azure Monitor too, unless switched off
            // (`ROUTEPROOF_APPINSIGHTS_TELEMETRY=false` keeps availability results only).
            let ai = env("APPLICATIONINSIGHTS_CONNECTION_STRING")
                .filter(|_| !off("ROUTEPROOF_APPINSIGHTS_TELEMETRY") && !off("OTEL_SDK_DISABLED"))
                .filter(|cs| AppInsights::from_connection_string(cs).is_ok());
            if otlp.is_none() && ai.is_none() {
                return None;
            }
            let (service, resource) = resource_from_lookup(&env);
            let ai_export = ai.as_deref().map(|cs| AppInsightsExport {
                connection_string: cs,
                extra_root_pem: None,
            });
            match Telemetry::build(otlp.as_ref(), ai_export, &service, &resource) {
                Ok(t) => {
                    tracing::info!(
                        otlp_traces = %otlp.as_ref().map(|c| crate::secret::scrub(&c.traces_endpoint)).unwrap_or_default(),
                        otlp_metrics = %otlp.as_ref().map(|c| crate::secret::scrub(&c.metrics_endpoint)).unwrap_or_default(),
                        app_insights = ai.is_some(),
                        service = %service,
                        "OpenTelemetry export on"
                    );
                    Some(Arc::new(t))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "OpenTelemetry export off");
                    None
                }
            }
        })
        .clone()
}

/// Installs an explicit instance (tests; or embedders that configure it themselves).
/// Returns false when telemetry was already initialised.
pub fn install(t: Option<Arc<Telemetry>>) -> bool {
    GLOBAL.set(t).is_ok()
}

/// The process's telemetry, when on.
pub fn global() -> Option<Arc<Telemetry>> {
    GLOBAL.get().cloned().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(OtelConfig::from_lookup(&lookup(&[])), Ok(None));
        assert_eq!(
            OtelConfig::from_lookup(&lookup(&[("OTEL_SERVICE_NAME", "x")])),
            Ok(None)
        );
    }

    #[test]
    fn endpoints_resource_and_protocol() {
        let cfg = OtelConfig::from_lookup(&lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
            ("OTEL_SERVICE_NAME", "probe-app"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,team=net%20ops",
            ),
            ("WEBSITE_SITE_NAME", "func-rp"),
            ("WEBSITE_INSTANCE_ID", "abc123"),
            ("REGION_NAME", "West Europe"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(cfg.traces_endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(cfg.metrics_endpoint, "http://127.0.0.1:4318/v1/metrics");
        assert_eq!(cfg.service_name, "probe-app");
        let has = |k: &str, v: &str| cfg.resource.iter().any(|(a, b)| a == k && b == v);
        assert!(has("deployment.environment", "prod"));
        assert!(has("team", "net ops"));
        assert!(has("faas.name", "func-rp"));
        assert!(has("service.instance.id", "abc123"));
        assert!(has("cloud.region", "West Europe"));
        let grpc = OtelConfig::from_lookup(&lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]));
        assert!(grpc.unwrap_err().contains("http/protobuf"));
    }

    #[test]
    fn connection_string_and_timespan() {
        let ai = AppInsights::from_connection_string(
            "InstrumentationKey=11112222-3333-4444-5555-666677778888;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/",
        )
        .unwrap();
        assert_eq!(
            ai.track_url(),
            "https://westeurope-5.in.applicationinsights.azure.com/v2.1/track"
        );
        assert!(!format!("{ai:?}").contains("3333-4444"));
        let bare = AppInsights::from_connection_string("instrumentationkey=abc").unwrap();
        assert_eq!(bare.ingestion, "https://dc.services.visualstudio.com");
        assert!(AppInsights::from_connection_string("IngestionEndpoint=https://x").is_err());
        assert_eq!(timespan(0.0), "00:00:00.0000000");
        assert_eq!(timespan(1234.5678), "00:00:01.2345678");
        assert_eq!(timespan(3_723_000.0), "01:02:03.0000000");
        assert_eq!(timespan(90_000_000.0), "1.01:00:00.0000000");
    }

    #[test]
    fn traceparent_parent() {
        let cx = parent_context(Some(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ));
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(sc.is_remote());
        assert!(!parent_context(Some("garbage")).has_active_span());
        assert!(!parent_context(None).has_active_span());
    }
}
