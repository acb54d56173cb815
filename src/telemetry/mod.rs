//! OpenTelemetry export of finished reports: traces and metrics over OTLP/HTTP protobuf
//! and to Azure Monitor, plus App Insights availability results.
//!
//! Layout:
//! - `otlp`: where OTLP export goes, read from the standard `OTEL_*` variables, and the
//!   resource (service name, attributes, the Function App's facts).
//! - `exporter`: `Telemetry`, the exporters and instruments; `record` and a bounded `flush`.
//! - `spans`: the spans of one report (`routeproof.run` > `routeproof.target` >
//!   `routeproof.layer.<layer>`) and the incoming `traceparent` as their parent.
//! - `availability`: App Insights availability results (`AvailabilityData`, one per target).
//!
//! Metrics, recorded per report:
//! - `routeproof.probe.duration` (histogram, s): per target and layer (`layer` = `total`
//!   for the whole target),
//! - `routeproof.probe.success` (gauge, 0/1): per target,
//! - `routeproof.probe.failures` (counter): per target and failure class.
//!
//! There is no process-wide state: the door that runs probes builds one `Exports` from
//! the environment (`Exports::from_env`) and owns it (the handler's `State` for `serve`,
//! `main` for the CLI). Without an endpoint or connection string nothing is built and
//! exporting is a no-op: zero cost.
//!
//! The host kills the handler without a graceful signal, so an invocation flushes
//! (bounded, `FLUSH_BOUND`) before it answers; a dead collector costs at most that
//! bound and never fails the invocation.

mod availability;
mod exporter;
mod otlp;
mod spans;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crate::report::Report;
use crate::setting::{Lookup, yes_no_or};

pub use availability::{AppInsights, redact_ikey, timespan};
pub use exporter::{AppInsightsExport, Telemetry};
pub use otlp::{OtelConfig, resource_from_lookup};
pub use spans::{Parent, Trigger, parent_context};

/// `base` plus the OpenTelemetry crates' own log targets switched off: an export failure
/// is logged once, by `Telemetry::flush` (the SDK would log it again per batch).
/// `ROUTEPROOF_LOG` replaces the whole filter, so they can still be turned on.
pub fn quiet_filter(base: &str) -> String {
    format!(
        "{base},opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
         opentelemetry_http=off,opentelemetry_application_insights=off"
    )
}

/// How long an invocation waits for its telemetry to leave.
pub const FLUSH_BOUND: Duration = Duration::from_secs(2);

/// Where finished runs are exported: OTel traces and metrics, and App Insights
/// availability results. Cheap to clone; `Exports::default()` exports nothing.
#[derive(Clone, Default)]
pub struct Exports {
    otel: Option<Arc<Telemetry>>,
    availability: Option<Arc<AppInsights>>,
}

impl std::fmt::Debug for Exports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exports")
            .field("otel", &self.otel.is_some())
            .field("availability", &self.availability)
            .finish()
    }
}

/// Two handles are equal when they export to the same exporters.
impl PartialEq for Exports {
    fn eq(&self, other: &Exports) -> bool {
        fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
        }
        same(&self.otel, &other.otel) && same(&self.availability, &other.availability)
    }
}

impl Exports {
    /// Explicit exporters (tests; embedders that configure them themselves).
    pub fn new(otel: Option<Arc<Telemetry>>, availability: Option<Arc<AppInsights>>) -> Exports {
        Exports { otel, availability }
    }

    /// Builds the exporters from the standard variables, read through `env`:
    /// `OTEL_EXPORTER_OTLP_*` for OTLP, `APPLICATIONINSIGHTS_CONNECTION_STRING` for
    /// Azure Monitor traces and metrics (off with `ROUTEPROOF_APPINSIGHTS_TELEMETRY=false`)
    /// and availability results (off with `ROUTEPROOF_AVAILABILITY=false`);
    /// `OTEL_SDK_DISABLED=true` switches the OTel part off. Problems are logged as warnings
    /// and that part stays off: telemetry never stops a door from starting.
    pub fn from_env(env: Lookup<'_>) -> Exports {
        let warn = |e: &str| tracing::warn!(error = %e, "telemetry setting not understood");
        let disabled = yes_no_or("OTEL_SDK_DISABLED", false, env, &warn);
        let cs = env("APPLICATIONINSIGHTS_CONNECTION_STRING")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        let ai = cs
            .as_deref()
            .map(AppInsights::from_connection_string)
            .and_then(|r| {
                r.map_err(|e| tracing::warn!(error = %e, "App Insights export off"))
                    .ok()
            });
        let availability = ai
            .filter(|_| yes_no_or("ROUTEPROOF_AVAILABILITY", true, env, &warn))
            .map(|ai| {
                tracing::info!(
                    ikey = %redact_ikey(&ai.ikey),
                    ingestion = %ai.ingestion,
                    "App Insights availability results on"
                );
                Arc::new(ai)
            });
        let otlp = match OtelConfig::from_lookup(env) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "OpenTelemetry OTLP export off");
                None
            }
        };
        // Traces and metrics to Azure Monitor too, unless switched off
        // (`ROUTEPROOF_APPINSIGHTS_TELEMETRY=false` keeps availability results only).
        let ai_telemetry = cs.as_deref().filter(|cs| {
            !disabled
                && yes_no_or("ROUTEPROOF_APPINSIGHTS_TELEMETRY", true, env, &warn)
                && AppInsights::from_connection_string(cs).is_ok()
        });
        let otel = if otlp.is_none() && ai_telemetry.is_none() {
            None
        } else {
            let (service, resource) = resource_from_lookup(env);
            let ai_export = ai_telemetry.map(|cs| AppInsightsExport {
                connection_string: cs,
                extra_root_pem: None,
            });
            match Telemetry::build(otlp.as_ref(), ai_export, &service, &resource) {
                Ok(t) => {
                    tracing::info!(
                        otlp_traces = %otlp.as_ref().map(|c| crate::secret::scrub(&c.traces_endpoint)).unwrap_or_default(),
                        otlp_metrics = %otlp.as_ref().map(|c| crate::secret::scrub(&c.metrics_endpoint)).unwrap_or_default(),
                        app_insights = ai_telemetry.is_some(),
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
        };
        Exports { otel, availability }
    }

    /// Whether anything is exported at all.
    pub fn is_on(&self) -> bool {
        self.otel.is_some() || self.availability.is_some()
    }

    /// The OTel exporters, when on.
    pub fn otel(&self) -> Option<&Arc<Telemetry>> {
        self.otel.as_ref()
    }

    /// Where availability results go, when on.
    pub fn availability(&self) -> Option<&Arc<AppInsights>> {
        self.availability.as_ref()
    }

    /// Everything a finished run sends: OTel spans and metrics (recorded, then flushed)
    /// and, for scheduled runs only (what App Insights' availability view means),
    /// availability results; concurrently, each bounded by `bound`. Never fails and
    /// never changes the run's result; what went wrong is logged once as a warning
    /// and returned.
    pub async fn export_run(
        &self,
        report: &Report,
        parent: Parent<'_>,
        bound: Duration,
    ) -> ExportOutcome {
        if self.otel.is_none() && (self.availability.is_none() || parent.trigger != Trigger::Timer)
        {
            return ExportOutcome::default();
        }
        let start = std::time::Instant::now();
        let otel_work = async {
            match &self.otel {
                Some(t) => {
                    t.record(report, parent);
                    Some(t.flush(bound).await)
                }
                None => None,
            }
        };
        let ai_work = async {
            match &self.availability {
                Some(ai) if parent.trigger == Trigger::Timer => {
                    let env = ai.envelopes(report, parent);
                    let n = env.len();
                    let r = ai.send(&env, bound).await.map(|_| n);
                    if let Err(e) = &r {
                        tracing::warn!(error = %e, "App Insights availability results not accepted; the run's result is unaffected");
                    }
                    Some(r)
                }
                _ => None,
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
            trigger = parent.trigger.as_str(),
            export_ms = crate::report::ms(out.elapsed),
            "telemetry exported"
        );
        out
    }
}

/// What `export_run` did, for the invocation's log line.
#[derive(Debug, Clone, Default)]
pub struct ExportOutcome {
    pub otel: Option<bool>,
    pub availability: Option<Result<usize, String>>,
    pub elapsed: Duration,
}
