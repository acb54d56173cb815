use opentelemetry::trace::TraceContextExt;

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

#[test]
fn exports_follow_the_standard_switches() {
    assert!(!Exports::from_env(&lookup(&[])).is_on());
    let off = Exports::from_env(&lookup(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_SDK_DISABLED", "true"),
    ]));
    assert!(off.otel().is_none());
    let ai = Exports::from_env(&lookup(&[
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "InstrumentationKey=11112222-3333-4444-5555-666677778888;IngestionEndpoint=http://127.0.0.1:9/",
        ),
        ("ROUTEPROOF_APPINSIGHTS_TELEMETRY", "off"),
    ]));
    assert!(ai.availability().is_some() && ai.otel().is_none());
    let no_ai = Exports::from_env(&lookup(&[
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "InstrumentationKey=11112222-3333-4444-5555-666677778888;IngestionEndpoint=http://127.0.0.1:9/",
        ),
        ("ROUTEPROOF_APPINSIGHTS_TELEMETRY", "no"),
        ("ROUTEPROOF_AVAILABILITY", "0"),
    ]));
    assert!(!no_ai.is_on());
    assert_eq!(Exports::default(), Exports::default());
}
