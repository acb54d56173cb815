//! Value parsers shared by the sections: DNS server addresses, networks, durations.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::env::ConfigError;

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 by default.
pub fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("`{s}` is not IP or IP:PORT (IPv6 with a port as [::1]:53)"))
        .and_then(|a| {
            if a.port() == 0 {
                Err(format!("`{s}`: port 0"))
            } else {
                Ok(a)
            }
        })
}

pub(super) fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    s.parse::<IpNet>()
        .map_err(|_| format!("`{s}` is not an IP address or CIDR (e.g. 10.1.2.4 or 10.1.0.0/16)"))
}

pub fn duration(key: &str, s: &str, max: Duration) -> Result<Duration, ConfigError> {
    let d = duration_allow_zero(key, s, max)?;
    if d.is_zero() {
        return Err(ConfigError::new(key, "must be more than 0"));
    }
    Ok(d)
}

pub(super) fn duration_allow_zero(
    key: &str,
    s: &str,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        ConfigError::new(
            key,
            format!("`{s}` is not a duration like \"2s\" or \"500ms\": {e}"),
        )
    })?;
    if d > max {
        return Err(ConfigError::new(
            key,
            format!("{s} is more than {}", humantime::format_duration(max)),
        ));
    }
    Ok(d)
}
