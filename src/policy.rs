//! The ad-hoc policy: which targets a `/api/probe` request may name itself.
//!
//! A probe endpoint inside a private network is an SSRF tool unless it is locked down:
//! whoever holds a function key could aim the app's network identity at the instance
//! metadata service, the managed-identity endpoint, the platform's 168.63.129.16, or
//! anything else the VNet reaches. So:
//!
//! - Ad-hoc targets are off unless the config turns them on *and* gives an allow-list
//!   (`[policy] allow = ["10.20.0.0/16", "*.internal.contoso.com"]`).
//! - A target is allowed when its name matches a host pattern, or when every address it
//!   resolves to is inside an allowed network. Patterns admit names, networks admit
//!   addresses; a name outside the patterns is resolved (by the app's own DNS) and
//!   judged on its answers.
//! - Some destinations are refused whatever the list says ([`ALWAYS_DENIED`]).
//! - The check runs on the *resolved* addresses, between DNS and TCP, and the engine
//!   connects to exactly those addresses (it never looks the name up again), so a name
//!   that answers differently the second time (DNS rebinding) gains nothing.
//! - `env:` targets are never ad-hoc: a request must not read app settings.
//!
//! The same checks run before any packet on what the request itself says (an IP literal,
//! the handler's own port), so those are refused with `403` and never reach the engine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::addr::AZURE_PLATFORM_IP;
pub use crate::config::RawPolicy;
use crate::env::EnvLookup;
use crate::spec::{Host, TargetSpec, uri};
pub use crate::spec::{HostPattern, PolicyConfig};
use ipnet::IpNet;

/// The rules no allow-list can lift, as `(rule, what it protects)`. Listed here so the
/// README and the 403 body name the same rules.
pub const ALWAYS_DENIED: &[(&str, &str)] = &[
    (
        "always.link_local",
        "169.254.0.0/16 and fe80::/10: the instance metadata service and the managed-identity endpoint",
    ),
    (
        "always.azure_platform",
        "168.63.129.16 (the Azure platform address) on any port but 53",
    ),
    (
        "always.loopback",
        "127.0.0.0/8, ::1 and `localhost`: the instance itself (the Functions host, Kudu, our own handler)",
    ),
    ("always.unspecified", "0.0.0.0 and ::"),
    ("always.multicast", "multicast and broadcast addresses"),
    (
        "always.handler_port",
        "the port this handler listens on, on any address",
    ),
    (
        "always.identity_endpoint",
        "the host in IDENTITY_ENDPOINT / MSI_ENDPOINT (the managed-identity token service)",
    ),
];

/// Why a target was refused: the rule (stable, for alerts) and the sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: &'static str,
    pub message: String,
}

impl Denial {
    fn new(rule: &'static str, message: impl Into<String>) -> Denial {
        Denial {
            rule,
            message: message.into(),
        }
    }
}

/// Consulted between DNS and TCP with exactly the addresses the next layers will use.
/// The engine never resolves a name twice, so what passes here is what gets connected
/// to: a DNS answer that changes between check and use (rebinding) cannot slip through.
/// Ad-hoc runs pass one (`Policy`); configured targets do not.
pub trait AddressPolicy: Send + Sync {
    fn check(&self, spec: &TargetSpec, ip: IpAddr, port: Option<u16>) -> Result<(), Denial>;
}

#[derive(Debug, Clone)]
pub struct Policy {
    nets: Vec<IpNet>,
    hosts: Vec<HostPattern>,
    handler_port: Option<u16>,
    identity_hosts: Vec<Host>,
}

impl Policy {
    /// `handler_port`: the port this handler listens on. `env` is read for
    /// `IDENTITY_ENDPOINT` / `MSI_ENDPOINT` only (their host, never the header secret).
    pub fn new(cfg: &PolicyConfig, handler_port: Option<u16>, env: EnvLookup) -> Policy {
        let identity_hosts = ["IDENTITY_ENDPOINT", "MSI_ENDPOINT"]
            .iter()
            .filter_map(|k| env(k))
            .filter_map(|v| url::Url::parse(v.trim()).ok())
            .filter_map(|u| uri::parse_host(u.host_str()?).ok())
            .collect();
        Policy {
            nets: cfg.nets.clone(),
            hosts: cfg.hosts.clone(),
            handler_port,
            identity_hosts,
        }
    }

    fn name_allowed(&self, name: &str) -> bool {
        self.hosts.iter().any(|p| p.matches(name))
    }

    fn allow_list_text(&self) -> String {
        let mut v: Vec<String> = self.nets.iter().map(IpNet::to_string).collect();
        v.extend(self.hosts.iter().map(HostPattern::to_string));
        v.join(", ")
    }

    /// What the request itself says, before any packet: the scheme, an IP literal, the
    /// port, a name the patterns cannot admit when no network could either.
    pub fn check_target(&self, spec: &TargetSpec) -> Result<(), Denial> {
        if let TargetSpec::Sql { .. } = spec {
            // The TDS layer follows a server's redirect to another host and port, which
            // this policy would not see: a server could pick the next address.
            return Err(Denial::new(
                "adhoc.scheme",
                "sqlserver:// targets are config-only: a SQL server's redirect chooses the next host, which an ad-hoc policy cannot vet in advance",
            ));
        }
        let port = spec.port();
        if let (Some(p), Some(own)) = (port, self.handler_port)
            && p == own
        {
            return Err(Denial::new(
                "always.handler_port",
                format!("port {p} is this handler's own port"),
            ));
        }
        let name = match (spec.host(), spec.dns_name()) {
            (Some(Host::Ip(ip)), _) => {
                self.check_address(spec, *ip, port)?;
                return Ok(());
            }
            (_, Some(n)) => n,
            _ => return Ok(()),
        };
        if let Some(h) = self
            .identity_hosts
            .iter()
            .find(|h| matches!(h, Host::Name(n) if n.eq_ignore_ascii_case(name)))
        {
            return Err(Denial::new(
                "always.identity_endpoint",
                format!("{h} is the managed-identity endpoint's host"),
            ));
        }
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            return Err(Denial::new(
                "always.loopback",
                format!("{lower} is this instance (loopback)"),
            ));
        }
        if !self.name_allowed(name) && self.nets.is_empty() {
            return Err(Denial::new(
                "allow_list",
                format!(
                    "{lower} matches no host pattern in the allow-list ({})",
                    self.allow_list_text()
                ),
            ));
        }
        Ok(())
    }

    /// One address the engine is about to use for `spec` (after DNS for names).
    pub fn check_address(
        &self,
        spec: &TargetSpec,
        ip: IpAddr,
        port: Option<u16>,
    ) -> Result<(), Denial> {
        if let Some(d) = self.always_denied(ip, port) {
            return Err(d);
        }
        if spec.dns_name().is_some_and(|n| self.name_allowed(n)) {
            return Ok(());
        }
        let v4 = embedded_v4(ip);
        if self
            .nets
            .iter()
            .any(|n| n.contains(&ip) || v4.is_some_and(|v| n.contains(&IpAddr::V4(v))))
        {
            return Ok(());
        }
        let what = match spec.dns_name() {
            Some(n) => format!("{n} resolved to {ip}, which is"),
            None => format!("{ip} is"),
        };
        Err(Denial::new(
            "allow_list",
            format!("{what} outside the allow-list ({})", self.allow_list_text()),
        ))
    }

    fn always_denied(&self, ip: IpAddr, port: Option<u16>) -> Option<Denial> {
        if let (Some(p), Some(own)) = (port, self.handler_port)
            && p == own
        {
            return Some(Denial::new(
                "always.handler_port",
                format!("port {p} is this handler's own port"),
            ));
        }
        // An IPv6 form of an IPv4 address (mapped, NAT64, 6to4) is that address.
        let canon = embedded_v4(ip).map(IpAddr::V4).unwrap_or(ip);
        let (rule, what): (&'static str, &str) = match canon {
            IpAddr::V4(v4) if v4.is_loopback() => ("always.loopback", "loopback"),
            IpAddr::V6(v6) if v6.is_loopback() => ("always.loopback", "loopback"),
            IpAddr::V4(v4) if v4.is_unspecified() => ("always.unspecified", "unspecified"),
            IpAddr::V6(v6) if v6.is_unspecified() => ("always.unspecified", "unspecified"),
            IpAddr::V4(v4) if v4.is_link_local() => (
                "always.link_local",
                "link-local (instance metadata and managed identity live here)",
            ),
            IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => (
                "always.link_local",
                "link-local (instance metadata and managed identity live here)",
            ),
            IpAddr::V4(v4) if v4 == AZURE_PLATFORM_IP && port != Some(53) => (
                "always.azure_platform",
                "the Azure platform address (only DNS on port 53 is allowed)",
            ),
            IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() => {
                ("always.multicast", "multicast or broadcast")
            }
            IpAddr::V6(v6) if v6.is_multicast() => ("always.multicast", "multicast"),
            _ => {
                if self
                    .identity_hosts
                    .iter()
                    .any(|h| matches!(h, Host::Ip(i) if *i == ip || *i == canon))
                {
                    ("always.identity_endpoint", "the managed-identity endpoint")
                } else {
                    return None;
                }
            }
        };
        Some(Denial::new(rule, format!("{ip} is {what}")))
    }
}

impl AddressPolicy for Policy {
    fn check(&self, spec: &TargetSpec, ip: IpAddr, port: Option<u16>) -> Result<(), Denial> {
        self.check_address(spec, ip, port)
    }
}

/// The IPv4 address inside an IPv6 one: `::ffff:a.b.c.d`, `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::`. Each reaches that IPv4 host, so each
/// is judged as it.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] && v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawPolicy;

    fn policy(allow: &[&str], port: Option<u16>) -> Policy {
        let raw = RawPolicy {
            allow_adhoc: Some(true),
            allow: Some(allow.iter().map(|s| s.to_string()).collect()),
            max_targets: None,
            max_concurrent: None,
        };
        let env = |k: &str| {
            (k == "IDENTITY_ENDPOINT").then(|| "http://10.9.9.9:8081/msi/token".to_string())
        };
        Policy::new(&PolicyConfig::from_raw(raw).unwrap(), port, &env)
    }

    #[test]
    fn embedded_v4_forms() {
        let cases = [
            ("::ffff:169.254.169.254", Some("169.254.169.254")),
            ("64:ff9b::a9fe:a9fe", Some("169.254.169.254")),
            ("2002:a9fe:a9fe::1", Some("169.254.169.254")),
            ("::7f00:1", Some("127.0.0.1")),
            ("::1", None),
            ("2001:db8::1", None),
        ];
        for (ip, want) in cases {
            assert_eq!(
                embedded_v4(ip.parse().unwrap()),
                want.map(|w| w.parse().unwrap()),
                "{ip}"
            );
        }
    }

    #[test]
    fn patterns() {
        let p = HostPattern::parse("*.Internal.Contoso.com.").unwrap();
        assert!(p.matches("api.internal.contoso.com"));
        assert!(p.matches("a.b.internal.contoso.com."));
        assert!(!p.matches("internal.contoso.com"));
        assert!(!p.matches("evilinternal.contoso.com"));
        let exact = HostPattern::parse("api.contoso.com").unwrap();
        assert!(exact.matches("API.contoso.com") && !exact.matches("x.api.contoso.com"));
        for bad in ["*", "*.com", "a.*.com", "", "bad_-.x-"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        let raw = |allow: &[&str], on: bool| RawPolicy {
            allow_adhoc: Some(on),
            allow: Some(allow.iter().map(|s| s.to_string()).collect()),
            max_targets: None,
            max_concurrent: None,
        };
        assert_eq!(
            PolicyConfig::from_raw(raw(&[], true)).unwrap_err().key,
            "policy.allow"
        );
        assert_eq!(
            PolicyConfig::from_raw(raw(&["10.0.0.0/8", "0.0.0.0/0"], true))
                .unwrap_err()
                .key,
            "policy.allow[1]"
        );
        assert_eq!(
            PolicyConfig::from_raw(raw(&["*"], false)).unwrap_err().key,
            "policy.allow[0]"
        );
        assert!(!PolicyConfig::from_raw(raw(&[], false)).unwrap().allow_adhoc);
    }

    /// The policy table: (target, resolved address or None for the pre-check) -> rule.
    #[test]
    fn policy_table() {
        let p = policy(&["10.0.0.0/8", "*.internal.contoso.com"], Some(7071));
        let spec = |s: &str| crate::target::parse_uri(s).unwrap();
        let pre: &[(&str, Option<&str>)] = &[
            ("tcp://10.1.2.4:1433", None),
            ("tcp://api.internal.contoso.com:443", None),
            // Outside the patterns, but the networks may admit its addresses: resolve.
            ("tcp://db.other.example:1433", None),
            ("tcp://8.8.8.8:53", Some("allow_list")),
            ("tcp://169.254.169.254:80", Some("always.link_local")),
            ("tcp://[fe80::1]:80", Some("always.link_local")),
            (
                "tcp://[::ffff:169.254.169.254]:80",
                Some("always.link_local"),
            ),
            ("tcp://168.63.129.16:80", Some("always.azure_platform")),
            ("tcp://168.63.129.16:32526", Some("always.azure_platform")),
            ("tcp://127.0.0.1:5000", Some("always.loopback")),
            ("tcp://[::1]:5000", Some("always.loopback")),
            ("tcp://localhost:5000", Some("always.loopback")),
            ("tcp://0.0.0.0:80", Some("always.unspecified")),
            ("tcp://224.0.0.1:80", Some("always.multicast")),
            ("tcp://10.1.2.4:7071", Some("always.handler_port")),
            (
                "tcp://api.internal.contoso.com:7071",
                Some("always.handler_port"),
            ),
            ("tcp://10.9.9.9:8081", Some("always.identity_endpoint")),
            ("sqlserver://db.internal.contoso.com", Some("adhoc.scheme")),
        ];
        for (t, want) in pre {
            let got = p.check_target(&spec(t)).err().map(|d| d.rule);
            assert_eq!(got, *want, "pre-check {t}");
        }
        // After DNS: the addresses the engine is about to connect to.
        let post: &[(&str, &str, Option<u16>, Option<&str>)] = &[
            ("tcp://db.other.example:1433", "10.1.2.4", Some(1433), None),
            (
                "tcp://db.other.example:1433",
                "20.0.0.5",
                Some(1433),
                Some("allow_list"),
            ),
            // A pattern admits the name whatever private address it has...
            (
                "tcp://api.internal.contoso.com:443",
                "172.16.0.9",
                Some(443),
                None,
            ),
            // ...but never the always-denied ones (DNS rebinding to IMDS or loopback).
            (
                "tcp://api.internal.contoso.com:443",
                "169.254.169.254",
                Some(443),
                Some("always.link_local"),
            ),
            (
                "tcp://api.internal.contoso.com:443",
                "127.0.0.1",
                Some(443),
                Some("always.loopback"),
            ),
            (
                "dns://x.internal.contoso.com",
                "168.63.129.16",
                None,
                Some("always.azure_platform"),
            ),
            (
                "tcp://dns.internal.contoso.com:53",
                "168.63.129.16",
                Some(53),
                None,
            ),
            (
                "tcp://db.other.example:1433",
                "64:ff9b::a9fe:a9fe",
                Some(1433),
                Some("always.link_local"),
            ),
            (
                "tcp://db.other.example:1433",
                "::ffff:10.1.2.4",
                Some(1433),
                None,
            ),
        ];
        for (t, ip, port, want) in post {
            let got = p
                .check_address(&spec(t), ip.parse().unwrap(), *port)
                .err()
                .map(|d| d.rule);
            assert_eq!(got, *want, "after DNS {t} -> {ip}");
        }
        // Only patterns: a name outside them is refused before any lookup.
        let names_only = policy(&["*.internal.contoso.com"], None);
        assert_eq!(
            names_only
                .check_target(&spec("tcp://db.other.example:1433"))
                .unwrap_err()
                .rule,
            "allow_list"
        );
        // Every rule the policy can name is documented in ALWAYS_DENIED (or is the list).
        for (t, _) in pre.iter().filter(|(_, w)| w.is_some()) {
            let rule = p.check_target(&spec(t)).unwrap_err().rule;
            assert!(
                rule == "allow_list"
                    || rule == "adhoc.scheme"
                    || ALWAYS_DENIED.iter().any(|(r, _)| *r == rule),
                "{rule}"
            );
        }
    }
}
