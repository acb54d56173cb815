//! The composition root: config → discovery → engine, built the same way for every
//! door (CLI `probe` and `check`, `serve` with its HTTP and timer functions, `demo`),
//! plus the telemetry exporters each door owns. The doors add only what is theirs
//! (command-line overrides, the handler's settings).

use std::path::Path;
use std::sync::Arc;

use crate::config::{self, Config, ConfigError, EngineSettings, EnvLookup};
use crate::discover;
use crate::probe::Engine;
use crate::telemetry::Exports;

/// Targets probed at once: the range every door accepts.
pub const CONCURRENCY: std::ops::RangeInclusive<usize> = 1..=4096;

/// The config every binary carries: the same text as `config/default.toml` (one
/// source of truth), used by `serve` when no config file is given or found.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

/// Where a door's config comes from.
#[derive(Debug, Clone, Copy)]
pub enum ConfigSource<'a> {
    /// A TOML file; a file that is missing or invalid is an error.
    File(&'a Path),
    /// TOML text (the compiled-in default, the demo's generated config).
    Text(&'a str),
    /// No file: engine defaults, no targets (the CLI with target URIs only).
    Empty,
}

/// A config with discovery applied.
pub struct Composed {
    pub config: Config,
    pub discovery: discover::Summary,
}

/// Reads the config, then adds the targets discovered from the app's settings (`vars`,
/// usually `process_vars`, called only when discovery is on: off, which it is by default
/// outside Azure, nothing reads every setting). `env` resolves `env:` references while
/// parsing and says whether this is Azure (`WEBSITE_SITE_NAME`). It does not log
/// (`serve` composes before its logging is set up): each door logs the discovery with
/// `log_discovery`.
pub fn compose(
    source: ConfigSource<'_>,
    env: EnvLookup,
    vars: &dyn Fn() -> Vec<(String, String)>,
) -> Result<Composed, ConfigError> {
    let mut config = match source {
        ConfigSource::File(path) => config::load(path, env)?,
        ConfigSource::Text(text) => config::parse(text, env)?,
        ConfigSource::Empty => Config::default(),
    };
    let on_azure = env("WEBSITE_SITE_NAME").is_some_and(|v| !v.trim().is_empty());
    let vars = match discover::enabled(config.engine.discover, on_azure) {
        (true, _) => vars(),
        (false, _) => Vec::new(),
    };
    let discovery = discover::apply(&mut config, &vars);
    Ok(Composed { config, discovery })
}

/// The log line of a discovery that ran: setting names and counts only, never a value.
pub fn log_discovery(discovery: &discover::Summary) {
    if discovery.enabled {
        tracing::info!(
            added = discovery.added,
            notes = discovery.notes.len(),
            "targets discovered from app settings"
        );
    }
}

/// The engine, from the composed settings. `dns_source` names where explicit DNS
/// servers came from (`config`, `cli`).
pub fn engine(
    settings: EngineSettings,
    dns_source: &str,
    env: EnvLookup,
) -> Result<Arc<Engine>, ConfigError> {
    Engine::new(settings, dns_source, env)
}

/// Checks a concurrency given outside the config file (`key` names where it came from).
pub fn concurrency(key: &str, c: usize) -> Result<usize, ConfigError> {
    if CONCURRENCY.contains(&c) {
        Ok(c)
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "{c} is outside {}..={}",
                CONCURRENCY.start(),
                CONCURRENCY.end()
            ),
        ))
    }
}

/// The exporters a door owns, from the process environment (`telemetry::Exports`).
pub fn telemetry() -> Exports {
    Exports::from_env(&config::process_env)
}

/// The process environment as pairs, for target discovery; settings that are not
/// UTF-8 are skipped (no Azure setting is).
pub fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_range() {
        assert_eq!(concurrency("--concurrency", 1).unwrap(), 1);
        assert_eq!(concurrency("--concurrency", 4096).unwrap(), 4096);
        let e = concurrency("--concurrency", 0).unwrap_err();
        assert_eq!(e.key, "--concurrency");
        assert!(e.message.contains("outside 1..=4096"), "{e}");
        assert!(concurrency("x", 4097).is_err());
    }

    #[test]
    fn the_compiled_in_default_parses_and_discovers_only_on_azure() {
        let read = std::cell::Cell::new(0);
        let azure = || {
            read.set(read.get() + 1);
            vec![("WEBSITE_SITE_NAME".to_string(), "func-x".to_string())]
        };
        let c = compose(ConfigSource::Text(DEFAULT_CONFIG), &|_| None, &azure).unwrap();
        assert!(!c.discovery.enabled, "off Azure, discovery stays off");
        assert!(
            c.discovery.why.contains("outside Azure"),
            "{}",
            c.discovery.why
        );
        assert_eq!(read.get(), 0, "and the app settings are not read");
        assert!(c.config.targets.is_empty());
        let site = |k: &str| (k == "WEBSITE_SITE_NAME").then(|| "func-x".to_string());
        let c = compose(ConfigSource::Text(DEFAULT_CONFIG), &site, &azure).unwrap();
        assert!(c.discovery.enabled, "on Azure, discovery is on");
        assert_eq!(read.get(), 1);
        let off = "[engine]\ndiscover = false\n";
        let c = compose(ConfigSource::Text(off), &site, &azure).unwrap();
        assert!(!c.discovery.enabled, "switched off on Azure");
        assert_eq!(c.discovery.why, "engine.discover = false");
        assert_eq!(read.get(), 1, "not read when switched off");
    }
}
