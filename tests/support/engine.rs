//! Engine construction and report reading, shared by every test that drives the engine
//! in-process: config text -> `config::parse` -> `Engine::new` (what every door does),
//! and small readers for a target's class, hint and per-layer evidence.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use routeproof::config::{self, Config};
use routeproof::probe::Engine;
use routeproof::report::{
    DnsEvidence, Evidence, Failure, FailureClass, HttpEvidence, Layer, Report, TargetReport,
    TcpEvidence, TdsEvidence, TlsEvidence,
};

/// An environment with nothing in it (never the process's own).
pub fn no_env(_: &str) -> Option<String> {
    None
}

/// A controlled settings map used as the environment.
pub fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

/// An `[engine]` table asking `dns` in order, with `extra` lines under `[engine]` and the
/// given `[engine.timeouts]` (name, value) pairs.
pub fn engine_toml(dns: &[SocketAddr], extra: &str, timeouts: &[(&str, &str)]) -> String {
    let list: Vec<String> = dns.iter().map(|s| format!("\"{s}\"")).collect();
    let mut t = format!(
        "[engine]\ndns_servers = [{}]\n{extra}\n[engine.timeouts]\n",
        list.join(", ")
    );
    for (k, v) in timeouts {
        t.push_str(&format!("{k} = \"{v}\"\n"));
    }
    t
}

/// Parses `text` as a whole config (panicking with the config error) with `env`.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Config {
    config::parse(text, env).unwrap_or_else(|e| panic!("{e}\n--- config:\n{text}"))
}

/// Builds the engine from an already parsed config, explicit DNS servers labelled
/// `config` as the doors label a config file's.
pub fn engine_of(cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> Arc<Engine> {
    Engine::new(cfg.engine.clone(), "config", env).unwrap_or_else(|e| panic!("{e}"))
}

/// Parses `text` and builds its engine.
pub fn build(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (Arc<Engine>, Config) {
    let cfg = parse(text, env);
    (engine_of(&cfg, env), cfg)
}

/// Parses `text`, builds its engine and runs every target in it.
pub async fn run(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    deadline: Option<Duration>,
) -> Report {
    let (engine, cfg) = build(text, env);
    engine.run(&cfg.targets, deadline).await
}

/// The targets of `text` (a config holding `[[targets]]`), run on an existing engine.
pub async fn run_on(engine: &Arc<Engine>, text: &str) -> Report {
    let cfg = parse(text, &no_env);
    engine.run(&cfg.targets, None).await
}

/// The failure class of `t`, `None` when it passed.
pub fn class(t: &TargetReport) -> Option<FailureClass> {
    t.failure.as_ref().map(|f| f.class)
}

/// The failure of `t`, which must have failed.
pub fn failure(t: &TargetReport) -> &Failure {
    t.failure
        .as_ref()
        .unwrap_or_else(|| panic!("{}: expected a failure: {t:#?}", t.name))
}

/// The hint of `t`'s failure.
pub fn hint(t: &TargetReport) -> &str {
    &failure(t).hint
}

/// The layers that ran, in order.
pub fn layers(t: &TargetReport) -> Vec<Layer> {
    t.layers.iter().map(|l| l.layer).collect()
}

/// The DNS evidence, which is always the first layer's.
pub fn dns_ev(t: &TargetReport) -> &DnsEvidence {
    match &t.layers[0].evidence {
        Evidence::Dns(d) => d,
        other => panic!("first layer is not DNS: {other:?}"),
    }
}

/// The TCP layer's evidence.
pub fn tcp_ev(t: &TargetReport) -> &TcpEvidence {
    let l = t
        .layers
        .iter()
        .find(|l| l.layer == Layer::Tcp)
        .expect("tcp layer ran");
    match &l.evidence {
        Evidence::Tcp(e) => e,
        other => panic!("{other:?}"),
    }
}

/// The TLS layer's evidence.
pub fn tls_ev(t: &TargetReport) -> &TlsEvidence {
    t.layers
        .iter()
        .find_map(|l| match &l.evidence {
            Evidence::Tls(e) => Some(e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TLS layer: {t:#?}"))
}

/// The HTTP layer's evidence.
pub fn http_ev(t: &TargetReport) -> &HttpEvidence {
    t.layers
        .iter()
        .find_map(|l| match &l.evidence {
            Evidence::Http(e) => Some(e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no HTTP layer: {t:#?}"))
}

/// The TDS layer's evidence.
pub fn tds_ev(t: &TargetReport) -> &TdsEvidence {
    t.layers
        .iter()
        .find_map(|l| match &l.evidence {
            Evidence::Tds(e) => Some(&**e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TDS layer: {t:#?}"))
}
