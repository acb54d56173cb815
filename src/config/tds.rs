//! The TDS keys of a `sqlserver://` target: login method, credentials, query.

use crate::env::{ConfigError, EnvLookup};
use crate::secret::Secret;
use crate::spec::{LoginAuth, TdsOptions};

pub(super) fn tds_keys(
    i: usize,
    user: &Option<String>,
    password: &Option<String>,
    authentication: &Option<String>,
    client_id: &Option<String>,
    env: EnvLookup,
    tds: &mut TdsOptions,
) -> Result<(), ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let password = match password {
        Some(p) => Some(Secret::new(match p.strip_prefix("env:") {
            Some(var) => env(var).ok_or_else(|| {
                ConfigError::new(key("password"), format!("app setting `{var}` is not set"))
            })?,
            None => p.clone(),
        })),
        None => None,
    };
    let method = authentication.as_deref().map(str::to_ascii_lowercase);
    match method.as_deref() {
        Some("managed_identity") => {
            tds.auth = LoginAuth::ManagedIdentity {
                client_id: client_id.clone(),
            };
        }
        Some("none") => tds.auth = LoginAuth::None,
        Some("sql") | None => {
            if client_id.is_some() {
                return Err(ConfigError::new(
                    key("client_id"),
                    "only with authentication = \"managed_identity\"",
                ));
            }
            let existing = match &tds.auth {
                LoginAuth::Sql { user, password } => (Some(user.clone()), Some(password.clone())),
                _ => (None, None),
            };
            match (user.clone().or(existing.0), password.or(existing.1)) {
                (Some(u), Some(p)) => {
                    tds.auth = LoginAuth::Sql {
                        user: u,
                        password: p,
                    }
                }
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        key("password"),
                        "a SQL login needs a password (e.g. \"env:SQL_PASSWORD\")",
                    ));
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(key("user"), "a SQL login needs a user"));
                }
                (None, None) if method.is_some() => {
                    return Err(ConfigError::new(
                        key("user"),
                        "authentication = \"sql\" needs user and password",
                    ));
                }
                (None, None) => {}
            }
        }
        Some(other) => {
            return Err(ConfigError::new(
                key("authentication"),
                format!("`{other}` is not sql, managed_identity or none"),
            ));
        }
    }
    Ok(())
}
