//! Which DNS servers a probe asks, and why: explicit (`--dns-server` or config); on Azure,
//! the instance's own resolver path (resolv.conf) first, because the site property
//! dnsConfiguration.dnsServers and the VNet's servers are applied there and are invisible
//! to the app, with WEBSITE_DNS_SERVER / WEBSITE_DNS_ALT_SERVER asked alongside and
//! compared (on Flex Consumption they are deprecated); elsewhere the app settings, then
//! resolv.conf. A server that resolv.conf and a setting both name is labelled with the
//! setting (it says why the server is there). docs/azure-facts.md D2, D4-D6.
//! Every server gets its own single-server resolver so the report can say exactly which
//! one answered: a pooled resolver hides that, and that is the fact a 3 a.m. SRE needs.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::config::parse_dns_server;
use crate::env::EnvLookup;
use crate::report::{ResolverInfo, ResolverSource};

pub struct Nameserver {
    pub addr: SocketAddr,
    pub source: ResolverSource,
    pub resolver: Resolver<TokioRuntimeProvider>,
}

/// resolv.conf as read once per engine: `discover` and the site facts both use this read,
/// so they agree, and start-up reads the file once.
pub struct ResolvConf {
    pub path: PathBuf,
    /// Its `nameserver` addresses, or why it could not be read.
    pub servers: Result<Vec<IpAddr>, String>,
}

impl ResolvConf {
    pub fn read(path: &Path) -> ResolvConf {
        ResolvConf {
            path: path.to_path_buf(),
            servers: std::fs::read_to_string(path)
                .map(|t| parse_resolv_conf(&t))
                .map_err(|e| e.to_string()),
        }
    }
}

/// Servers in the order a client on this instance would use them.
pub fn discover(
    explicit: &[SocketAddr],
    explicit_source: &str,
    env: EnvLookup,
    resolv_conf: &ResolvConf,
) -> Result<Vec<ResolverInfo>, String> {
    let mut out: Vec<ResolverInfo> = Vec::new();
    fn push(out: &mut Vec<ResolverInfo>, addr: SocketAddr, source: ResolverSource) {
        let server = addr.to_string();
        if !out.iter().any(|r| r.server == server) {
            out.push(ResolverInfo { server, source });
        }
    }
    if !explicit.is_empty() {
        for a in explicit {
            push(&mut out, *a, ResolverSource::explicit(explicit_source));
        }
        return Ok(out);
    }
    // Azure defines both settings as comma-separated lists of IPs.
    let mut settings: Vec<(SocketAddr, ResolverSource)> = Vec::new();
    for (key, source) in [
        ("WEBSITE_DNS_SERVER", ResolverSource::WebsiteDnsServer),
        (
            "WEBSITE_DNS_ALT_SERVER",
            ResolverSource::WebsiteDnsAltServer,
        ),
    ] {
        if let Some(v) = env(key) {
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let addr = parse_dns_server(item).map_err(|e| format!("{key}: {e}"))?;
                settings.push((addr, source));
            }
        }
    }
    let on_azure = env("WEBSITE_SITE_NAME").is_some_and(|v| !v.trim().is_empty());
    let resolv = &resolv_conf.servers;
    if on_azure && let Ok(ips) = &resolv {
        for ip in ips {
            let addr = SocketAddr::new(*ip, 53);
            let source = settings
                .iter()
                .find(|(a, _)| *a == addr)
                .map_or(ResolverSource::ResolvConf, |(_, s)| *s);
            push(&mut out, addr, source);
        }
    }
    for (addr, source) in &settings {
        push(&mut out, *addr, *source);
    }
    if !out.is_empty() {
        return Ok(out);
    }
    match resolv {
        Ok(ips) => {
            for ip in ips {
                push(
                    &mut out,
                    SocketAddr::new(*ip, 53),
                    ResolverSource::ResolvConf,
                );
            }
        }
        Err(e) => {
            return Err(format!(
                "no DNS server configured and {} unreadable: {e}",
                resolv_conf.path.display()
            ));
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no DNS server configured and {} lists none",
            resolv_conf.path.display()
        ));
    }
    Ok(out)
}

/// `nameserver` lines only; zone ids (`fe80::1%eth0`) are dropped with the address
/// because a scoped link-local resolver is not something we can ask by plain address.
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let l = l.split(['#', ';']).next()?.trim();
            let mut it = l.split_whitespace();
            (it.next()? == "nameserver").then_some(())?;
            it.next()?.parse::<IpAddr>().ok()
        })
        .collect()
}

/// One resolver per server: UDP with TCP fallback for truncated answers, no cache (a
/// prober that answers from cache proves nothing), one attempt, CNAMEs kept in answers.
pub fn build(infos: &[ResolverInfo], timeout: Duration) -> Result<Vec<Nameserver>, String> {
    infos
        .iter()
        .map(|info| {
            let addr: SocketAddr = info
                .server
                .parse()
                .map_err(|e| format!("{}: {e}", info.server))?;
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            let mut opts = ResolverOpts::default();
            opts.timeout = timeout;
            opts.attempts = 1;
            opts.cache_size = 0;
            opts.preserve_intermediates = true;
            opts.ndots = 0;
            opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
            opts.try_tcp_on_error = false;
            let resolver = Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
            .with_options(opts)
            .build()
            .map_err(|e| format!("resolver for {addr}: {e}"))?;
            Ok(Nameserver {
                addr,
                source: info.source,
                resolver,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_lines() {
        let text = "# comment\nsearch x.internal\nnameserver 10.255.255.53\nnameserver ::1 # v6\nnameserver fe80::1%eth0\noptions ndots:5\n";
        let ips = parse_resolv_conf(text);
        assert_eq!(
            ips,
            vec![
                "10.255.255.53".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn order_explicit_then_azure_then_resolv_conf() {
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join("resolv.conf");
        std::fs::write(&rc, "nameserver 127.0.0.11\n").unwrap();
        let azure = |k: &str| match k {
            "WEBSITE_DNS_SERVER" => Some("127.0.0.2, 127.0.0.3".to_string()),
            "WEBSITE_DNS_ALT_SERVER" => Some("127.0.0.4".to_string()),
            _ => None,
        };
        let none = |_: &str| None;
        let explicit: Vec<SocketAddr> = vec!["127.0.0.53:5353".parse().unwrap()];
        let got = discover(&explicit, "cli", &azure, &ResolvConf::read(&rc)).unwrap();
        assert_eq!(
            got,
            vec![ResolverInfo {
                server: "127.0.0.53:5353".into(),
                source: ResolverSource::Cli
            }]
        );
        let got = discover(&[], "config", &azure, &ResolvConf::read(&rc)).unwrap();
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|r| (r.server.as_str(), r.source.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("127.0.0.2:53", "WEBSITE_DNS_SERVER"),
                ("127.0.0.3:53", "WEBSITE_DNS_SERVER"),
                ("127.0.0.4:53", "WEBSITE_DNS_ALT_SERVER"),
            ]
        );
        let got = discover(&[], "config", &none, &ResolvConf::read(&rc)).unwrap();
        assert_eq!(got[0].server, "127.0.0.11:53");
        assert_eq!(got[0].source, "resolv.conf");
        let bad = |k: &str| (k == "WEBSITE_DNS_SERVER").then(|| "not-an-ip".to_string());
        assert!(
            discover(&[], "config", &bad, &ResolvConf::read(&rc))
                .unwrap_err()
                .contains("WEBSITE_DNS_SERVER")
        );
        assert!(
            discover(
                &[],
                "config",
                &none,
                &ResolvConf::read(&dir.path().join("missing"))
            )
            .is_err()
        );
    }

    #[test]
    fn on_azure_resolv_conf_first_and_the_settings_compared() {
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join("resolv.conf");
        std::fs::write(&rc, "nameserver 127.0.0.11\nnameserver 127.0.0.3\n").unwrap();
        let azure = |k: &str| match k {
            "WEBSITE_SITE_NAME" => Some("app".to_string()),
            "WEBSITE_DNS_SERVER" => Some("127.0.0.2,127.0.0.3".to_string()),
            "WEBSITE_DNS_ALT_SERVER" => Some("127.0.0.4".to_string()),
            _ => None,
        };
        let pairs = |got: Vec<ResolverInfo>| -> Vec<(String, &'static str)> {
            got.into_iter()
                .map(|r| (r.server, r.source.as_str()))
                .collect()
        };
        let got = discover(&[], "config", &azure, &ResolvConf::read(&rc)).unwrap();
        assert_eq!(
            pairs(got),
            vec![
                ("127.0.0.11:53".into(), "resolv.conf"),
                // named by resolv.conf and WEBSITE_DNS_SERVER: labelled with the setting
                ("127.0.0.3:53".into(), "WEBSITE_DNS_SERVER"),
                ("127.0.0.2:53".into(), "WEBSITE_DNS_SERVER"),
                ("127.0.0.4:53".into(), "WEBSITE_DNS_ALT_SERVER"),
            ]
        );
        // explicit servers still come first and alone
        let explicit: Vec<SocketAddr> = vec!["127.0.0.53:5353".parse().unwrap()];
        let got = discover(&explicit, "cli", &azure, &ResolvConf::read(&rc)).unwrap();
        assert_eq!(pairs(got), vec![("127.0.0.53:5353".into(), "cli")]);
        // resolv.conf unreadable on Azure: the settings alone
        let got = discover(
            &[],
            "config",
            &azure,
            &ResolvConf::read(&dir.path().join("missing")),
        )
        .unwrap();
        assert_eq!(got[0].source, "WEBSITE_DNS_SERVER");
        assert_eq!(got.len(), 3);
        // on Azure without settings: resolv.conf
        let bare = |k: &str| (k == "WEBSITE_SITE_NAME").then(|| "app".to_string());
        let got = discover(&[], "config", &bare, &ResolvConf::read(&rc)).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|r| r.source == "resolv.conf"));
    }
}
