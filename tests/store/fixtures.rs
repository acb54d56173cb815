//! Reports and settings for the store tests.

use routeproof::report::{
    Environment, Evidence, Failure, FailureClass, Layer, LayerResult, Report, Summary, TargetReport,
};
use routeproof::store::{Store, StoreError};

pub fn skip(test: &str, why: &str) {
    if std::env::var_os("ROUTEPROOF_REQUIRE_PEERS").is_some_and(|v| v == "1") {
        panic!("{test}: required peer missing: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

pub fn azurite_or_skip(
    test: &str,
    tls: Option<crate::azurite::Tls>,
) -> Option<crate::azurite::Azurite> {
    let a = crate::azurite::Azurite::start(tls);
    if a.is_none() {
        skip(
            test,
            "azurite-blob not found (npm install azurite in /opt/routeproof-peers/azurite, or set ROUTEPROOF_AZURITE_BLOB)",
        );
    }
    a
}

pub fn env(pairs: Vec<(&str, String)>) -> impl Fn(&str) -> Option<String> {
    let v: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    move |k: &str| v.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
}

pub fn store(pairs: Vec<(&str, String)>) -> Result<Store, StoreError> {
    Store::from_env(&env(pairs)).expect("storage configured")
}

/// A run of `n` targets starting at `started_at` and lasting `duration_ms`; the targets in
/// `failing` fail with `tcp.refused` (the message may carry planted text).
pub fn report(
    n: usize,
    failing: &[usize],
    started_at: &str,
    duration_ms: f64,
    message: &str,
) -> Report {
    let targets: Vec<TargetReport> = (0..n)
        .map(|i| {
            let bad = failing.contains(&i);
            let layer = |l: Layer, ms: f64, ok: bool| LayerResult {
                layer: l,
                ok,
                start_ms: 0.0,
                duration_ms: ms,
                error: None,
                evidence: Evidence::None {},
            };
            TargetReport {
                name: format!("target-{i:02}"),
                target: format!("tcp://svc{i}.privatelink.database.windows.net:1433"),
                source: None,
                ok: !bad,
                reached: Some(if bad { Layer::Dns } else { Layer::Tcp }),
                failure: bad.then(|| Failure {
                    layer: Some(Layer::Tcp),
                    class: FailureClass::TcpRefused,
                    message: message.to_string(),
                    hint: "check the NSG".into(),
                    rule: None,
                }),
                duration_ms: 12.345 + i as f64,
                route: Vec::new(),
                layers: vec![
                    layer(Layer::Dns, 1.234, true),
                    layer(Layer::Tcp, 11.111, !bad),
                ],
                skipped: Vec::new(),
                warnings: Vec::new(),
            }
        })
        .collect();
    Report {
        schema: routeproof::report::SCHEMA,
        version: "test".into(),
        started_at: started_at.into(),
        duration_ms,
        deadline_ms: 10_000.0,
        ok: failing.is_empty(),
        summary: Summary {
            total: n,
            ok: n - failing.len(),
            failed: failing.len(),
        },
        environment: Environment::default(),
        targets,
    }
}

pub fn now_rfc3339(offset_ms: i64) -> String {
    let now = std::time::SystemTime::now();
    let t = if offset_ms >= 0 {
        now + std::time::Duration::from_millis(offset_ms as u64)
    } else {
        now - std::time::Duration::from_millis((-offset_ms) as u64)
    };
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
