//! `[policy]`: the ad-hoc allow-list, checked at load time.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::env::ConfigError;
use crate::spec::{HostPattern, PolicyConfig};

/// `[policy]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub(crate) allow_adhoc: Option<bool>,
    pub(crate) allow: Option<Vec<String>>,
    pub(crate) max_targets: Option<i64>,
    pub(crate) max_concurrent: Option<i64>,
}

impl PolicyConfig {
    pub fn from_raw(raw: RawPolicy) -> Result<PolicyConfig, ConfigError> {
        let mut p = PolicyConfig::default();
        for (i, entry) in raw.allow.unwrap_or_default().iter().enumerate() {
            let key = format!("policy.allow[{i}]");
            let e = entry.trim();
            if let Ok(ip) = e.parse::<IpAddr>() {
                p.nets.push(IpNet::from(ip));
            } else if let Ok(net) = e.parse::<IpNet>() {
                if net.prefix_len() == 0 {
                    return Err(ConfigError::new(
                        key,
                        format!(
                            "`{e}` allows every address: list the networks the probes may reach"
                        ),
                    ));
                }
                p.nets.push(net.trunc());
            } else {
                p.hosts
                    .push(HostPattern::parse(e).map_err(|m| ConfigError::new(key, m))?);
            }
        }
        if let Some(n) = raw.max_targets {
            if !(1..=1000).contains(&n) {
                return Err(ConfigError::new(
                    "policy.max_targets",
                    format!("{n} is outside 1..=1000"),
                ));
            }
            p.max_targets = n as usize;
        }
        if let Some(n) = raw.max_concurrent {
            if !(1..=64).contains(&n) {
                return Err(ConfigError::new(
                    "policy.max_concurrent",
                    format!("{n} is outside 1..=64"),
                ));
            }
            p.max_concurrent = n as usize;
        }
        p.allow_adhoc = raw.allow_adhoc.unwrap_or(false);
        if p.allow_adhoc && p.is_empty() {
            return Err(ConfigError::new(
                "policy.allow",
                "allow_adhoc = true needs an allow-list of networks and host patterns, e.g. allow = [\"10.20.0.0/16\", \"*.internal.contoso.com\"]",
            ));
        }
        Ok(p)
    }
}
