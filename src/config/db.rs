//! The keys of a data-service target (`postgres://`): `tls` (disable, require,
//! verify-full), `user`, `password` (a value or `env:VAR`; a password makes the probe log in;
//! Redis takes one alone: `AUTH password`, the default user / access key).

use crate::env::{ConfigError, EnvLookup};
use crate::secret::Secret;
use crate::spec::{DbOptions, DbTls};

pub(super) fn db_keys(
    i: usize,
    tls: &Option<String>,
    user: &Option<String>,
    password: &Option<String>,
    needs_user: bool,
    env: EnvLookup,
) -> Result<DbOptions, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let tls = match tls.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("verify-full") | Some("verify_full") => DbTls::VerifyFull,
        Some("require") => DbTls::Require,
        Some("disable") => DbTls::Disable,
        Some(other) => {
            return Err(ConfigError::new(
                key("tls"),
                format!("`{other}` is not disable, require or verify-full"),
            ));
        }
    };
    let password = match password {
        Some(p) => Some(Secret::new(match p.strip_prefix("env:") {
            Some(var) => env(var).ok_or_else(|| {
                ConfigError::new(key("password"), format!("app setting `{var}` is not set"))
            })?,
            None => p.clone(),
        })),
        None => None,
    };
    if needs_user && password.is_some() && user.is_none() {
        return Err(ConfigError::new(key("user"), "a login needs a user"));
    }
    if let Some(u) = user
        && (u.is_empty() || u.len() > 128 || u.chars().any(char::is_control))
    {
        return Err(ConfigError::new(
            key("user"),
            "1 to 128 printable characters",
        ));
    }
    Ok(DbOptions {
        tls,
        user: user.clone(),
        password,
    })
}
