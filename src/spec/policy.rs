//! `[policy]` as typed settings: what ad-hoc requests may probe (enforced by `policy`).

use ipnet::IpNet;

use super::target::{Host, parse_host};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Ad-hoc targets in `/api/probe` requests (`ROUTEPROOF_ALLOW_ADHOC` overrides).
    pub allow_adhoc: bool,
    pub nets: Vec<IpNet>,
    pub hosts: Vec<HostPattern>,
    /// Targets one request may name.
    pub max_targets: usize,
    /// Ad-hoc runs at once on this instance; more get `429`.
    pub max_concurrent: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            allow_adhoc: false,
            nets: Vec::new(),
            hosts: Vec::new(),
            max_targets: 20,
            max_concurrent: 2,
        }
    }
}

impl PolicyConfig {
    /// No network and no host pattern: nothing could ever be allowed.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.hosts.is_empty()
    }
}

/// `api.contoso.com` (that name) or `*.internal.contoso.com` (any name below it, not
/// the name itself). Case-insensitive; a trailing dot is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lower-case, no trailing dot, without the `*.`.
    base: String,
    wildcard: bool,
}

impl HostPattern {
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, base) = match s.strip_prefix("*.") {
            Some(b) => (true, b.to_string()),
            None => (false, s.clone()),
        };
        if base.contains('*') || base.is_empty() {
            return Err(format!(
                "`{s}` is not an IP, a CIDR or a host pattern (`api.contoso.com`, `*.internal.contoso.com`)"
            ));
        }
        match parse_host(&base) {
            Ok(Host::Name(_)) => {}
            _ => {
                return Err(format!(
                    "`{s}` is not an IP, a CIDR or a host pattern (`api.contoso.com`, `*.internal.contoso.com`)"
                ));
            }
        }
        if wildcard && base.split('.').count() < 2 {
            return Err(format!(
                "`{s}` covers a whole top-level domain: name the zone (e.g. `*.internal.contoso.com`)"
            ));
        }
        Ok(HostPattern { base, wildcard })
    }

    pub fn matches(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            name.len() > self.base.len() + 1
                && name.ends_with(&self.base)
                && name.as_bytes()[name.len() - self.base.len() - 1] == b'.'
        } else {
            name == self.base
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.wildcard {
            write!(f, "*.{}", self.base)
        } else {
            f.write_str(&self.base)
        }
    }
}
