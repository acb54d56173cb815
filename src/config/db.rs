//! The keys of a data-service target (`postgres://`): `tls` (disable, require,
//! verify-full), `user`, `password` (a value or `env:VAR`; a password makes the probe log in;
//! Redis takes one alone: `AUTH password`, the default user / access key), or
//! `authentication = "managed_identity"` (+ `client_id`) for a token from the app's
//! managed identity; and that identity pair for a service target (`https://`).

use super::targets::RawTarget;
use crate::env::{ConfigError, EnvLookup};
use crate::secret::Secret;
use crate::spec::{DbOptions, DbTls, ManagedIdentity};

/// `tls`, `user`, `password` / `authentication` + `client_id` of a data-service target.
/// `needs_user`: a login needs a user (PostgreSQL, MySQL; Redis has a default user, and
/// for an identity the token names it).
pub(super) fn db_keys(
    i: usize,
    raw: &RawTarget,
    needs_user: bool,
    env: EnvLookup,
) -> Result<DbOptions, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let tls = match raw.tls.as_deref().map(str::to_ascii_lowercase).as_deref() {
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
    let password = match &raw.password {
        Some(p) => Some(Secret::new(match p.strip_prefix("env:") {
            Some(var) => env(var).ok_or_else(|| {
                ConfigError::new(key("password"), format!("app setting `{var}` is not set"))
            })?,
            None => p.clone(),
        })),
        None => None,
    };
    let identity = identity_keys(i, &raw.authentication, &raw.client_id)?;
    if identity.is_some() && password.is_some() {
        return Err(ConfigError::new(
            key("password"),
            "a managed-identity login sends a token, not a password: drop one of them",
        ));
    }
    if needs_user && (password.is_some() || identity.is_some()) && raw.user.is_none() {
        return Err(ConfigError::new(
            key("user"),
            if identity.is_some() {
                "a managed-identity login needs the Entra principal's name as created on the server"
            } else {
                "a login needs a user"
            },
        ));
    }
    if let Some(u) = &raw.user
        && (u.is_empty() || u.len() > 128 || u.chars().any(char::is_control))
    {
        return Err(ConfigError::new(
            key("user"),
            "1 to 128 printable characters",
        ));
    }
    Ok(DbOptions {
        tls,
        user: raw.user.clone(),
        password,
        identity,
    })
}

/// `authentication = "managed_identity"` (or `"none"`) and `client_id` (a user-assigned
/// identity's client id) of a service or data-service target.
pub(super) fn identity_keys(
    i: usize,
    authentication: &Option<String>,
    client_id: &Option<String>,
) -> Result<Option<ManagedIdentity>, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let on = match authentication
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("managed_identity") => true,
        None | Some("none") => false,
        Some(other) => {
            return Err(ConfigError::new(
                key("authentication"),
                format!(
                    "`{other}` is not managed_identity or none (a password is the `password` key)"
                ),
            ));
        }
    };
    match client_id {
        Some(_) if !on => Err(ConfigError::new(
            key("client_id"),
            "only with authentication = \"managed_identity\"",
        )),
        Some(c)
            if c.is_empty()
                || c.len() > 128
                || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') =>
        {
            Err(ConfigError::new(
                key("client_id"),
                "a user-assigned identity's client id (a GUID)",
            ))
        }
        _ => Ok(on.then(|| ManagedIdentity {
            client_id: client_id.clone(),
        })),
    }
}
