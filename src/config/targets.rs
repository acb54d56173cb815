//! `[[targets]]`: the target URI, its name and expectations; the TLS, HTTP and TDS keys
//! are checked against the layers the target plans and parsed by their own sections.

use serde::Deserialize;

use super::db::{db_keys, identity_keys};
use super::messaging::msg_keys;
use super::service::account_key;
use super::tds::tds_keys;
use super::tls_http::{RawStatus, http_options, tls_options};
use super::values::parse_net;
use crate::env::{ConfigError, EnvLookup};
use crate::layer::Layer;
use crate::spec::{Expectations, TargetConfig, TargetSpec, TdsOptions, uri};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) name: Option<String>,
    pub(super) target: Option<String>,
    pub(super) private: Option<bool>,
    pub(super) addresses: Option<Vec<String>>,
    pub(super) max_ms: Option<i64>,
    pub(super) all_addresses: Option<bool>,
    // TLS (tls:// and https:// targets)
    pub(super) sni: Option<String>,
    pub(super) ca_file: Option<String>,
    pub(super) insecure: Option<bool>,
    pub(super) cert_days_left: Option<i64>,
    // HTTP (http:// and https:// targets)
    pub(super) method: Option<String>,
    pub(super) headers: Option<std::collections::BTreeMap<String, String>>,
    pub(super) body: Option<String>,
    pub(super) status: Option<Vec<RawStatus>>,
    pub(super) body_contains: Option<String>,
    pub(super) body_regex: Option<String>,
    pub(super) header_contains: Option<std::collections::BTreeMap<String, String>>,
    pub(super) follow_redirects: Option<bool>,
    pub(super) max_redirects: Option<i64>,
    pub(super) max_body_bytes: Option<i64>,
    // The service layer (https:// targets): the service a host name does not reveal.
    pub(super) service: Option<String>,
    pub(super) emulator: Option<bool>,
    /// `env:NAME`: the app setting with the storage key for the Shared Key read.
    pub(super) account_key: Option<String>,
    // TDS (sqlserver:// and SQL connection-string targets)
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) authentication: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) query: Option<String>,
    pub(super) strict: Option<bool>,
    // Data services (postgres://): disable, require, verify-full; user and password above.
    pub(super) tls: Option<String>,
    // Messaging (amqps://, kafka://): a SAS policy (AMQP) or a connection string.
    pub(super) sas_key_name: Option<String>,
    pub(super) sas_key: Option<String>,
    pub(super) connection_string: Option<String>,
    // Kafka's `user` + `password`: plain (default), scram-sha-256, scram-sha-512.
    pub(super) sasl_mechanism: Option<String>,
}

pub(super) fn target_config(
    i: usize,
    raw: RawTarget,
    env: EnvLookup,
) -> Result<TargetConfig, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let Some(uri) = &raw.target else {
        return Err(ConfigError::new(
            key("target"),
            "missing (e.g. target = \"tcp://host:1433\")",
        ));
    };
    let spec = uri::parse(uri, env).map_err(|e| ConfigError::new(key("target"), e.0))?;
    let name = match &raw.name {
        Some(n) => {
            let n = n.trim().to_string();
            if n.is_empty() || n.len() > 128 || n.chars().any(char::is_control) {
                return Err(ConfigError::new(
                    key("name"),
                    "1 to 128 printable characters",
                ));
            }
            n
        }
        None => spec.to_string(),
    };
    let expect = expectations(i, &raw, &spec)?;
    let plan = spec.layers();
    let is_http = plan.contains(&Layer::Http);
    // `service = "…"` on http(s): the service layer, whose Shared Key read takes
    // `account_key` (config/service.rs).
    let is_service = is_http && raw.service.is_some();
    let is_tds = plan.contains(&Layer::Tds);
    let is_msg = plan.contains(&Layer::Amqp) || plan.contains(&Layer::Kafka);
    let is_db = plan.contains(&Layer::Postgres)
        || plan.contains(&Layer::Mysql)
        || plan.contains(&Layer::Redis)
        || is_msg;
    let (mut tds, tds_tls) = TdsOptions::from_spec(&spec);
    let tls = tls_options(i, &raw, &spec, &plan, tds_tls)?;
    only(
        i,
        !is_db && raw.tls.is_some(),
        "tls",
        "postgres://, mysql://, redis(s)://, amqp and kafka",
    )?;
    for (k, present) in [
        ("sas_key_name", raw.sas_key_name.is_some()),
        ("sas_key", raw.sas_key.is_some()),
        ("connection_string", raw.connection_string.is_some()),
        ("sasl_mechanism", raw.sasl_mechanism.is_some()),
    ] {
        only(
            i,
            !is_msg && present,
            k,
            "amqp(s)://, amqpws(s):// and kafka://",
        )?;
    }
    let mut db = if is_db {
        // A login needs a user, except Redis (a default user) and a messaging target's
        // managed identity (CBS / OAUTHBEARER send the token alone).
        let msg_identity = is_msg && raw.password.is_none();
        db_keys(i, &raw, !plan.contains(&Layer::Redis) && !msg_identity, env)?
    } else {
        Default::default()
    };
    let msg = if is_msg {
        msg_keys(i, &raw, &spec, &mut db, env)?
    } else {
        Default::default()
    };
    let https = matches!(&spec, TargetSpec::Http { url, .. } if url.scheme() == "https");
    for (k, present) in [
        ("user", !is_db && raw.user.is_some()),
        ("password", !is_db && raw.password.is_some()),
        (
            "authentication",
            !is_db && !https && raw.authentication.is_some(),
        ),
        ("client_id", !is_db && !https && raw.client_id.is_some()),
        ("query", raw.query.is_some()),
        ("strict", raw.strict.is_some()),
    ] {
        only(
            i,
            !is_tds && present,
            k,
            match k {
                "authentication" | "client_id" => {
                    "sqlserver://, SQL connection-string, https:// service and data-service"
                }
                _ => "sqlserver:// and SQL connection-string",
            },
        )?;
    }
    if is_tds {
        tds_keys(
            i,
            &raw.user,
            &raw.password,
            &raw.authentication,
            &raw.client_id,
            env,
            &mut tds,
        )?;
        if let Some(q) = &raw.query {
            if q.trim().is_empty() || q.len() > 4000 {
                return Err(ConfigError::new(key("query"), "1 to 4000 characters"));
            }
            tds.query = q.clone();
        }
        if let Some(st) = raw.strict {
            tds.strict = st;
        }
    }
    let mut http = http_options(i, &raw, is_http, env)?;
    if https {
        http.identity = identity_keys(i, &raw.authentication, &raw.client_id)?;
    }
    only(
        i,
        !is_http && raw.service.is_some(),
        "service",
        "http:// and https://",
    )?;
    only(
        i,
        !is_service && raw.account_key.is_some(),
        "account_key",
        "`service =`",
    )?;
    only(
        i,
        raw.service.is_none() && raw.emulator.is_some(),
        "emulator",
        "`service =`",
    )?;
    if let Some(svc) = &raw.service {
        if svc.trim().is_empty() || svc.len() > 32 {
            return Err(ConfigError::new(
                key("service"),
                "a service name: blob, queue, table, dfs, file, keyvault, cosmosdb, appconfig, acr",
            ));
        }
        http.service = Some(svc.trim().to_string());
    }
    http.emulator = raw.emulator.unwrap_or(false);
    if is_service {
        http.account_key = account_key(i, &raw.account_key, env)?;
    }
    if http.identity.is_some() && http.account_key.is_some() {
        return Err(ConfigError::new(
            key("account_key"),
            "the service layer makes one authorised read: a Shared Key or the managed identity, drop one of them",
        ));
    }
    Ok(TargetConfig {
        name,
        source: None,
        spec,
        expect,
        all_addresses: raw.all_addresses,
        tls,
        http,
        tds,
        db,
        msg,
    })
}

/// A key given to a target whose layers do not use it.
pub(super) fn only(i: usize, present: bool, k: &str, what: &str) -> Result<(), ConfigError> {
    if present {
        Err(ConfigError::new(
            format!("targets[{i}].{k}"),
            format!("only for {what} targets"),
        ))
    } else {
        Ok(())
    }
}

/// `private`, `addresses`, `max_ms`.
fn expectations(i: usize, raw: &RawTarget, spec: &TargetSpec) -> Result<Expectations, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let mut expect = Expectations {
        private: raw.private.unwrap_or(false),
        ..Default::default()
    };
    if let Some(list) = &raw.addresses {
        if list.is_empty() {
            return Err(ConfigError::new(
                key("addresses"),
                "empty list: omit the key to accept any address",
            ));
        }
        for (j, a) in list.iter().enumerate() {
            expect.addresses.push(
                parse_net(a)
                    .map_err(|m| ConfigError::new(format!("targets[{i}].addresses[{j}]"), m))?,
            );
        }
    }
    if let Some(ms) = raw.max_ms {
        if !(1..=3_600_000).contains(&ms) {
            return Err(ConfigError::new(
                key("max_ms"),
                format!("{ms} is outside 1..=3600000"),
            ));
        }
        expect.max_ms = Some(ms as u64);
    }
    if (expect.private || !expect.addresses.is_empty()) && spec.dns_name().is_none() {
        return Err(ConfigError::new(
            key(if expect.private {
                "private"
            } else {
                "addresses"
            }),
            "this target has no DNS name to check (it is an IP address)",
        ));
    }
    Ok(expect)
}
