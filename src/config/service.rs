//! `account_key = "env:NAME"` on an http(s) target with `service = "…"`: the app setting
//! holding the storage connection string (or the bare key) whose key signs the service
//! layer's one Shared Key read. Only the name is kept; the key is read when the probe runs,
//! so no config value, dump or report holds it.

use crate::env::{ConfigError, EnvLookup};

pub(super) fn account_key(
    i: usize,
    account_key: &Option<String>,
    env: EnvLookup,
) -> Result<Option<String>, ConfigError> {
    let key = || format!("targets[{i}].account_key");
    let Some(k) = account_key else {
        return Ok(None);
    };
    let Some(var) = k.strip_prefix("env:") else {
        return Err(ConfigError::new(
            key(),
            "name the app setting that holds the key: \"env:NAME\" (a key is never written in the config)",
        ));
    };
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ConfigError::new(
            key(),
            "an app setting name is letters, digits and `_`",
        ));
    }
    if env(var).is_none_or(|v| v.trim().is_empty()) {
        return Err(ConfigError::new(
            key(),
            format!("app setting `{var}` is not set"),
        ));
    }
    Ok(Some(var.to_string()))
}
