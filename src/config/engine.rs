//! `[engine]` and `[engine.timeouts]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::tls_http::load_ca_file;
use super::values::{duration, duration_allow_zero, parse_dns_server};
use crate::env::ConfigError;
use crate::spec::EngineSettings;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    dns_servers: Option<Vec<String>>,
    resolv_conf: Option<String>,
    discover: Option<bool>,
    azure_dns: Option<String>,
    route_all: Option<bool>,
    concurrency: Option<i64>,
    deadline: Option<String>,
    all_addresses: Option<bool>,
    tcp_settle: Option<String>,
    ca_file: Option<String>,
    #[serde(default)]
    timeouts: RawTimeouts,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    dns: Option<String>,
    tcp: Option<String>,
    tls: Option<String>,
    http: Option<String>,
    body: Option<String>,
    login: Option<String>,
    query: Option<String>,
}

pub(super) fn engine_settings(raw: RawEngine) -> Result<EngineSettings, ConfigError> {
    let mut s = EngineSettings::default();
    if let Some(list) = raw.dns_servers {
        s.dns_servers = list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                parse_dns_server(v)
                    .map_err(|m| ConfigError::new(format!("engine.dns_servers[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(p) = raw.resolv_conf {
        s.resolv_conf = PathBuf::from(p);
    }
    s.discover = raw.discover;
    s.route_all = raw.route_all;
    if let Some(a) = raw.azure_dns {
        s.azure_dns =
            Some(parse_dns_server(&a).map_err(|m| ConfigError::new("engine.azure_dns", m))?);
    }
    if let Some(c) = raw.concurrency {
        if !(1..=4096).contains(&c) {
            return Err(ConfigError::new(
                "engine.concurrency",
                format!("{c} is outside 1..=4096"),
            ));
        }
        s.concurrency = c as usize;
    }
    if let Some(d) = raw.deadline {
        s.deadline = duration("engine.deadline", &d, Duration::from_secs(3600))?;
    }
    if let Some(d) = raw.timeouts.dns {
        s.timeouts.dns = duration("engine.timeouts.dns", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.tcp {
        s.timeouts.tcp = duration("engine.timeouts.tcp", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.tls {
        s.timeouts.tls = duration("engine.timeouts.tls", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.http {
        s.timeouts.http = duration("engine.timeouts.http", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.login {
        s.timeouts.login = duration("engine.timeouts.login", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.query {
        s.timeouts.query = duration("engine.timeouts.query", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.body {
        s.timeouts.body = duration("engine.timeouts.body", &d, Duration::from_secs(600))?;
    }
    if let Some(f) = raw.ca_file {
        s.ca_roots = load_ca_file("engine.ca_file", &f)?;
    }
    if let Some(d) = raw.tcp_settle {
        s.tcp_settle = duration_allow_zero("engine.tcp_settle", &d, Duration::from_secs(10))?;
    }
    if let Some(a) = raw.all_addresses {
        s.all_addresses = a;
    }
    Ok(s)
}
