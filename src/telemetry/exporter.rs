//! The exporters and instruments: OTLP/HTTP and Azure Monitor (opentelemetry-application-
//! insights) behind one `Telemetry`, which records a finished report as spans and
//! metrics and flushes within a bound. Built once by the door that owns it.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, MeterProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::report::Report;

use super::otlp::{EXPORT_TIMEOUT, OtelConfig};
use super::spans::{Parent, spans};

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
                // inside tokio can panic (docs/dependencies.md).
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
            let trigger = KeyValue::new("trigger", parent.trigger.as_str());
            for t in &report.targets {
                let tattr = KeyValue::new("target", t.name.clone());
                i.success.record(
                    if t.ok { 1.0 } else { 0.0 },
                    &[tattr.clone(), trigger.clone()],
                );
                i.duration.record(
                    t.duration_ms / 1000.0,
                    &[
                        tattr.clone(),
                        trigger.clone(),
                        KeyValue::new("layer", "total"),
                    ],
                );
                for l in &t.layers {
                    i.duration.record(
                        l.duration_ms / 1000.0,
                        &[
                            tattr.clone(),
                            trigger.clone(),
                            KeyValue::new("layer", l.layer.as_str()),
                        ],
                    );
                }
                if let Some(f) = &t.failure {
                    i.failures.add(
                        1,
                        &[
                            tattr.clone(),
                            trigger.clone(),
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
