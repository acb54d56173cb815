//! Where OTLP export goes, from the standard variables only: `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`),
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the only one built in),
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`; and the resource, which also carries
//! the Function App's facts.

use std::collections::HashMap;
use std::time::Duration;

/// Per-request timeout of the exporters (`OTEL_EXPORTER_OTLP_TIMEOUT` overrides).
pub(super) const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

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
        if env("OTEL_SDK_DISABLED").and_then(|v| crate::setting::parse_yes_no(&v)) == Some(true) {
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
