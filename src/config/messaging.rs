//! The keys of a messaging target (`amqps://`, `amqpwss://`, `kafka://`): on top of the
//! data-service keys (`tls`, `user`, `password`), `sas_key_name` + `sas_key` (AMQP only)
//! and `connection_string` (a Service Bus / Event Hubs connection string), or
//! `authentication = "managed_identity"` (+ `client_id`). Secrets are a value or
//! `env:VAR`; a target logs in with one credential at most.

use super::targets::RawTarget;
use crate::env::{ConfigError, EnvLookup};
use crate::secret::Secret;
use crate::spec::{DbOptions, MsgAuth, MsgOptions, ScramHash, TargetSpec};

/// A secret key's value: literal, or the app setting `env:VAR` names.
pub(super) fn secret_value(key: &str, v: &str, env: EnvLookup) -> Result<Secret, ConfigError> {
    let value = match v.strip_prefix("env:") {
        Some(var) => env(var)
            .ok_or_else(|| ConfigError::new(key, format!("app setting `{var}` is not set")))?,
        None => v.to_string(),
    };
    if value.trim().is_empty() {
        return Err(ConfigError::new(key, "empty"));
    }
    Ok(Secret::new(value.trim()))
}

/// `sasl_mechanism` of a Kafka target: `None` for PLAIN (the default), or the SCRAM hash.
fn sasl_mechanism(
    key: &str,
    raw: &RawTarget,
    kafka: bool,
) -> Result<Option<ScramHash>, ConfigError> {
    let Some(m) = raw.sasl_mechanism.as_deref() else {
        return Ok(None);
    };
    if !kafka {
        return Err(ConfigError::new(key, "only for kafka:// targets"));
    }
    match m.to_ascii_lowercase().as_str() {
        "plain" => Ok(None),
        "scram-sha-256" => Ok(Some(ScramHash::Sha256)),
        "scram-sha-512" => Ok(Some(ScramHash::Sha512)),
        other => Err(ConfigError::new(
            key,
            format!(
                "`{other}` is not plain, scram-sha-256 or scram-sha-512 (Event Hubs takes plain)"
            ),
        )),
    }
}

/// The login of a messaging target. `db` has the `tls`, `user` and `password` keys
/// already parsed; its user and password move into the login.
pub(super) fn msg_keys(
    i: usize,
    raw: &RawTarget,
    spec: &TargetSpec,
    db: &mut DbOptions,
    env: EnvLookup,
) -> Result<MsgOptions, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let kafka = matches!(spec, TargetSpec::Kafka { .. });
    if kafka && (raw.sas_key_name.is_some() || raw.sas_key.is_some()) {
        let k = if raw.sas_key.is_some() {
            "sas_key"
        } else {
            "sas_key_name"
        };
        return Err(ConfigError::new(
            key(k),
            "only for amqp targets (Event Hubs' Kafka endpoint takes `connection_string`)",
        ));
    }
    let mut logins: Vec<(&str, MsgAuth)> = Vec::new();
    if let MsgAuth::ConnectionString(cs) = MsgOptions::from_spec(spec).auth {
        logins.push(("target", MsgAuth::ConnectionString(cs)));
    }
    if let Some(mi) = db.identity.take() {
        logins.push(("authentication", MsgAuth::ManagedIdentity(mi)));
    }
    let scram = sasl_mechanism(&key("sasl_mechanism"), raw, kafka)?;
    match (db.user.take(), db.password.take()) {
        (Some(user), Some(password)) => logins.push((
            "password",
            match scram {
                Some(mechanism) => MsgAuth::Scram {
                    mechanism,
                    user,
                    password,
                },
                None => MsgAuth::Plain { user, password },
            },
        )),
        (None, _) if scram.is_some() => {
            return Err(ConfigError::new(
                key("sasl_mechanism"),
                "a SCRAM login needs `user` and `password`",
            ));
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                key("password"),
                "a login with `user` needs a password",
            ));
        }
        _ => {}
    }
    match (&raw.sas_key_name, &raw.sas_key) {
        (Some(name), Some(k)) => {
            if name.trim().is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
                return Err(ConfigError::new(
                    key("sas_key_name"),
                    "1 to 256 printable characters",
                ));
            }
            logins.push((
                "sas_key",
                MsgAuth::SasKey {
                    key_name: name.trim().to_string(),
                    key: secret_value(&key("sas_key"), k, env)?,
                },
            ));
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                key("sas_key"),
                "`sas_key_name` needs `sas_key`",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                key("sas_key_name"),
                "`sas_key` needs `sas_key_name`",
            ));
        }
        (None, None) => {}
    }
    if let Some(cs) = &raw.connection_string {
        let secret = secret_value(&key("connection_string"), cs, env)?;
        if !crate::spec::messaging::is_servicebus_connection_string(secret.expose()) {
            return Err(ConfigError::new(
                key("connection_string"),
                "not a Service Bus / Event Hubs connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…)",
            ));
        }
        logins.push(("connection_string", MsgAuth::ConnectionString(secret)));
    }
    if logins.len() > 1 {
        let names: Vec<&str> = logins.iter().map(|(n, _)| *n).collect();
        return Err(ConfigError::new(
            key(names[1]),
            format!(
                "one credential per target: {} (the target's own connection string counts)",
                names.join(" and ")
            ),
        ));
    }
    Ok(MsgOptions {
        auth: logins.pop().map_or(MsgAuth::None, |(_, a)| a),
    })
}
