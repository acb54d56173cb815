//! Spans built *after* a run from the report's own timings (explicit start and end
//! times), so the engine's hot path carries no instrumentation and the spans say exactly
//! what the report says: `routeproof.run` (parent: the incoming `traceparent`),
//! `routeproof.target`, `routeproof.layer.<layer>`.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::report::{Evidence, LayerResult, Report, TargetReport};
use crate::setting::TraceParent;

/// What a run's root span hangs under.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parent<'a> {
    /// The incoming W3C `traceparent`.
    pub traceparent: Option<&'a str>,
    pub invocation_id: Option<&'a str>,
    /// Which door ran it.
    pub trigger: Trigger,
}

/// The door a run came through, on every span and metric as `routeproof.trigger` /
/// `trigger` so one backend can tell scheduled, HTTP-triggered and CLI runs apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// The `scheduled` timer function.
    Timer,
    /// `/api/probe` (configured or ad-hoc targets).
    Http,
    /// `routeproof probe` on a terminal, a pipeline or a jump box.
    #[default]
    Cli,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Timer => "timer",
            Trigger::Http => "http",
            Trigger::Cli => "cli",
        }
    }

    /// The OpenTelemetry semantic-convention value of `faas.trigger`.
    pub fn faas(self) -> &'static str {
        match self {
            Trigger::Timer => "timer",
            Trigger::Http => "http",
            Trigger::Cli => "other",
        }
    }
}

/// A remote parent context from a W3C `traceparent` (`crate::setting::TraceParent`
/// rules); a missing or malformed header gives a root context.
pub fn parent_context(traceparent: Option<&str>) -> Context {
    let Some(tp) = traceparent.and_then(TraceParent::parse) else {
        return Context::new();
    };
    let sc = SpanContext::new(
        TraceId::from_bytes(tp.trace_id),
        SpanId::from_bytes(tp.parent_id),
        TraceFlags::new(tp.flags),
        true,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(sc)
}

pub(super) fn started(report: &Report) -> SystemTime {
    humantime::parse_rfc3339_weak(&report.started_at)
        .ok()
        .unwrap_or_else(|| SystemTime::now() - Duration::from_secs_f64(report.duration_ms / 1000.0))
}

pub(super) fn after(t: SystemTime, ms: f64) -> SystemTime {
    t + Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

pub(super) fn spans(tp: &SdkTracerProvider, report: &Report, parent: Parent<'_>) {
    let tracer = tp.tracer("routeproof");
    let t0 = started(report);
    let mut root_attrs = vec![
        KeyValue::new("routeproof.ok", report.ok),
        KeyValue::new("routeproof.targets.total", report.summary.total as i64),
        KeyValue::new("routeproof.targets.failed", report.summary.failed as i64),
        KeyValue::new("faas.trigger", parent.trigger.faas()),
        KeyValue::new("routeproof.trigger", parent.trigger.as_str()),
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
    for l in &t.layers {
        layer_span(tracer, &cx, t, l, after(t0, l.start_ms.max(0.0)));
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
        Evidence::Service(v) => {
            attrs.push(KeyValue::new("routeproof.service", v.service.clone()));
            attrs.push(KeyValue::new(
                "routeproof.service.verdict",
                v.verdict.clone(),
            ));
        }
        Evidence::Protocol(p) => {
            if let Some(w) = p.witness {
                attrs.push(KeyValue::new("routeproof.witness", w.to_string()));
            }
        }
        Evidence::Smb(_) | Evidence::None {} => {}
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
