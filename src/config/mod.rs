//! The config file, parsed once into types (`crate::spec`). Unknown keys are rejected,
//! every error names the key it is about (`targets[2].target`, `engine.timeouts.dns`),
//! and nothing downstream sees a string where a `Duration`, an address or a
//! `TargetSpec` belongs. One file per section: `engine`, `targets`, `tls_http`, `tds`,
//! `policy`, and the value parsers in `values`.

mod db;
mod engine;
mod messaging;
mod policy;
mod targets;
mod tds;
mod tls_http;
mod values;

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

pub use self::policy::RawPolicy;
pub use self::values::{duration, parse_dns_server};
pub use crate::env::{ConfigError, EnvLookup, process_env};
pub use crate::spec::{
    EngineSettings, Expectations, HttpOptions, Pattern, PolicyConfig, TargetConfig, TdsOptions,
    Timeouts, TlsOptions,
};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub engine: EngineSettings,
    pub targets: Vec<TargetConfig>,
    /// `[policy]`: what ad-hoc requests may probe (the handler enforces it).
    pub policy: PolicyConfig,
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    engine: engine::RawEngine,
    #[serde(default)]
    targets: Vec<targets::RawTarget>,
    #[serde(default)]
    policy: RawPolicy,
}

/// Reads and validates a config file. `env` resolves `env:VAR` targets.
pub fn load(path: &Path, env: EnvLookup) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path.display().to_string(), format!("cannot read: {e}")))?;
    parse(&text, env)
}

pub fn parse(text: &str, env: EnvLookup) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        // toml's message already names the key and the line; keep it on one line.
        let msg = e.message().to_string();
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let key = match line {
            Some(l) => format!("line {l}"),
            None => "file".to_string(),
        };
        ConfigError::new(key, msg)
    })?;
    let engine = engine::engine_settings(raw.engine)?;
    let mut targets = Vec::with_capacity(raw.targets.len());
    let mut names = HashSet::new();
    for (i, t) in raw.targets.into_iter().enumerate() {
        let tc = targets::target_config(i, t, env)?;
        if !names.insert(tc.name.clone()) {
            return Err(ConfigError::new(
                format!("targets[{i}].name"),
                format!("duplicate target name `{}`", tc.name),
            ));
        }
        targets.push(tc);
    }
    let policy = PolicyConfig::from_raw(raw.policy)?;
    Ok(Config {
        engine,
        targets,
        policy,
    })
}

#[cfg(test)]
mod tests;
