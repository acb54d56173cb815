//! The service-layer keys of an http(s) target with `service = "…"`: which authorised read
//! follows the credential-free exchange. `account_key = "env:NAME"` names the app setting
//! holding the storage connection string (or the bare key); only the name is kept, the key
//! is read when the probe runs, so no config value, dump or report holds it.
//! `authentication = "managed_identity"` (with `client_id` for a user-assigned identity)
//! asks for a token from the identity endpoint instead; `"none"` is the default.

use crate::env::{ConfigError, EnvLookup};
use crate::spec::ServiceAuth;

pub(super) fn service_keys(
    i: usize,
    account_key: &Option<String>,
    authentication: &Option<String>,
    client_id: &Option<String>,
    env: EnvLookup,
) -> Result<ServiceAuth, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let method = authentication.as_deref().map(str::to_ascii_lowercase);
    if client_id.is_some() && method.as_deref() != Some("managed_identity") {
        return Err(ConfigError::new(
            key("client_id"),
            "only with authentication = \"managed_identity\"",
        ));
    }
    match (method.as_deref(), account_key) {
        (Some("managed_identity"), None) => Ok(ServiceAuth::ManagedIdentity {
            client_id: client_id.clone(),
        }),
        (Some("none"), None) => Ok(ServiceAuth::None),
        (None | Some("shared_key"), Some(k)) => {
            let Some(var) = k.strip_prefix("env:") else {
                return Err(ConfigError::new(
                    key("account_key"),
                    "name the app setting that holds the key: \"env:NAME\" (a key is never written in the config)",
                ));
            };
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::new(
                    key("account_key"),
                    "an app setting name is letters, digits and `_`",
                ));
            }
            if env(var).is_none_or(|v| v.trim().is_empty()) {
                return Err(ConfigError::new(
                    key("account_key"),
                    format!("app setting `{var}` is not set"),
                ));
            }
            Ok(ServiceAuth::SharedKey {
                setting: var.to_string(),
            })
        }
        (None, None) => Ok(ServiceAuth::None),
        (Some("shared_key"), None) => Err(ConfigError::new(
            key("account_key"),
            "authentication = \"shared_key\" needs account_key = \"env:NAME\"",
        )),
        (Some("managed_identity" | "none"), Some(_)) => Err(ConfigError::new(
            key("account_key"),
            "only with authentication = \"shared_key\" (or without authentication)",
        )),
        (Some(other), _) => Err(ConfigError::new(
            key("authentication"),
            format!("`{other}` is not shared_key, managed_identity or none"),
        )),
    }
}
