//! What routeproof knows about the Function App it runs in, and what that means for each
//! address a target resolves to.
//!
//! Everything here comes from the platform's own app settings (`WEBSITE_*`, `REGION_NAME`,
//! `FUNCTIONS_*`) read through the injected `EnvLookup`, so tests control it and nothing
//! is guessed: a fact the platform does not expose is reported as `unknown`, and off Azure
//! the report says so instead of inventing site facts. Only named, non-secret settings
//! are read; connection strings, `IDENTITY_HEADER` and the like never are.
//!
//! Route reasoning answers the question an Azure engineer asks of every address: "does
//! this packet go through the integration subnet (its NSG, its route table, its DNS)?"
//! With regional VNet integration a private (RFC 1918) destination always does; a public
//! one only when route-all is on, otherwise it leaves through the app's default outbound
//! path and no NSG or UDR of yours ever sees it.

use std::net::{IpAddr, SocketAddr};

use super::resolvers::parse_resolv_conf;
use crate::addr::{AZURE_PLATFORM_IP, AddrClass};
use crate::env::EnvLookup;
use crate::report::ResolverInfo;
pub use crate::report::{AddressRoute, DnsSettings, RoutePath, Site, Tri};

/// Azure DNS, the platform resolver every VNet can reach.
pub const AZURE_DNS: SocketAddr = SocketAddr::new(IpAddr::V4(AZURE_PLATFORM_IP), 53);

/// Facts gathered once per engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub on_azure: bool,
    pub site: Option<Site>,
    pub dns: DnsSettings,
}

/// Reads the site facts and DNS settings. `route_all_declared` is `engine.route_all`
/// (the operator's word for the site property `vnetRouteAllEnabled`, which apps cannot
/// read); `azure_dns` is `engine.azure_dns` when set.
pub fn facts(
    env: EnvLookup,
    resolv_conf: &std::path::Path,
    resolvers: &[ResolverInfo],
    route_all_declared: Option<bool>,
    azure_dns: Option<SocketAddr>,
) -> Facts {
    let get = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let on_azure = get("WEBSITE_SITE_NAME").is_some();
    let site = get("WEBSITE_SITE_NAME").map(|name| {
        let (route_all, route_all_source) =
            route_all(get("WEBSITE_VNET_ROUTE_ALL"), route_all_declared);
        let private_ip = get("WEBSITE_PRIVATE_IP");
        Site {
            name,
            instance_id: get("WEBSITE_INSTANCE_ID"),
            vnet_integration: if private_ip.is_some() {
                Tri::On
            } else {
                Tri::Unknown
            },
            private_ip,
            region: get("REGION_NAME"),
            sku: get("WEBSITE_SKU"),
            runtime: get("FUNCTIONS_WORKER_RUNTIME"),
            functions_version: get("FUNCTIONS_EXTENSION_VERSION"),
            route_all,
            route_all_source,
            content_over_vnet: match get("WEBSITE_CONTENTOVERVNET").as_deref().map(flag) {
                Some(Some(true)) => Tri::On,
                Some(Some(false)) => Tri::Off,
                _ => Tri::Unknown,
            },
        }
    });
    let resolv: Vec<String> = std::fs::read_to_string(resolv_conf)
        .map(|t| {
            parse_resolv_conf(&t)
                .iter()
                .map(IpAddr::to_string)
                .collect()
        })
        .unwrap_or_default();
    let custom = resolvers
        .iter()
        .any(|r| r.source.is_custom() && !is_azure_dns(&r.server));
    let azure_listed = resolvers.iter().any(|r| is_azure_dns(&r.server));
    let (azure, why) = match (custom, azure_dns, on_azure) {
        (false, _, _) => (
            None,
            "no custom DNS server is configured: Azure DNS (or the platform's resolver) answers already"
                .to_string(),
        ),
        (true, _, _) if azure_listed && azure_dns.is_none() => (
            None,
            "Azure DNS is already one of the servers asked".to_string(),
        ),
        (true, Some(a), _) => (
            Some(a),
            "custom DNS is configured; engine.azure_dns is asked when it fails".to_string(),
        ),
        (true, None, true) => (
            Some(AZURE_DNS),
            "custom DNS is configured; Azure DNS is asked when it fails, to tell a missing forwarder from a missing record"
                .to_string(),
        ),
        (true, None, false) => (
            None,
            "not on Azure, where 168.63.129.16 is unreachable; set engine.azure_dns to compare with another server"
                .to_string(),
        ),
    };
    Facts {
        on_azure,
        site,
        dns: DnsSettings {
            website_dns_server: get("WEBSITE_DNS_SERVER"),
            website_dns_alt_server: get("WEBSITE_DNS_ALT_SERVER"),
            resolv_conf: resolv,
            custom,
            azure_dns: azure.map(|a| a.to_string()),
            azure_dns_why: why,
        },
    }
}

fn is_azure_dns(server: &str) -> bool {
    server
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip() == IpAddr::V4(AZURE_PLATFORM_IP))
}

fn flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The legacy app setting is what the instance can see; the site property
/// `vnetRouteAllEnabled` is not visible from inside the app, so without the setting
/// only the operator's declaration (`engine.route_all`) can say.
fn route_all(setting: Option<String>, declared: Option<bool>) -> (Tri, String) {
    match (setting.as_deref().map(|s| (s, flag(s))), declared) {
        (Some((_, Some(true))), _) => (Tri::On, "WEBSITE_VNET_ROUTE_ALL=1".into()),
        (Some((_, Some(false))), _) => (
            Tri::Off,
            "WEBSITE_VNET_ROUTE_ALL=0 (the site property vnetRouteAllEnabled is not visible to the app)".into(),
        ),
        (_, Some(d)) => (
            if d { Tri::On } else { Tri::Off },
            "declared in the config (engine.route_all)".into(),
        ),
        (Some((raw, None)), None) => (
            Tri::Unknown,
            format!(
                "WEBSITE_VNET_ROUTE_ALL=`{}` is not 0 or 1",
                raw.chars().take(16).collect::<String>()
            ),
        ),
        (None, None) => (
            Tri::Unknown,
            "not visible to the app: vnetRouteAllEnabled is a site property; check it with `az functionapp show --query vnetRouteAllEnabled` or declare it as engine.route_all"
                .into(),
        ),
    }
}

/// The path `ip` takes from this instance, and why.
pub fn route(facts: &Facts, ip: IpAddr) -> AddressRoute {
    let class = AddrClass::of(ip);
    let (path, why) = match (class, &facts.site) {
        (AddrClass::Loopback | AddrClass::Unspecified, _) => {
            (RoutePath::Local, "stays on this instance".to_string())
        }
        (AddrClass::LinkLocal, _) => (
            RoutePath::Platform,
            "link-local: the platform host's own endpoints (IMDS, managed identity), never the VNet"
                .to_string(),
        ),
        (AddrClass::AzurePlatform, _) => (
            RoutePath::Platform,
            "168.63.129.16, the Azure platform address (DNS, health): reached through the host, not the VNet's routes"
                .to_string(),
        ),
        (_, None) => (
            RoutePath::OffAzure,
            "not running on Azure: this machine's own routing applies".to_string(),
        ),
        (AddrClass::Private, Some(site)) => (
            RoutePath::Vnet,
            match &site.private_ip {
                Some(p) => format!(
                    "private: through the integration subnet (this instance is {p} there), so its NSG and route table apply"
                ),
                None => "private: through the integration subnet if the app has VNet integration (WEBSITE_PRIVATE_IP is not visible, so it could not be confirmed)".to_string(),
            },
        ),
        (_, Some(site)) => match site.route_all {
            Tri::On => (
                RoutePath::Vnet,
                "public, and route-all is on: through the integration subnet, so its NSG and route table apply and the VNet needs an outbound path (NAT gateway or firewall)"
                    .to_string(),
            ),
            Tri::Off => (
                RoutePath::Internet,
                "public, and route-all is off: leaves through the app's default outbound path, bypassing the VNet, its NSGs and route tables (a service with public network access disabled refuses it)"
                    .to_string(),
            ),
            Tri::Unknown => (
                RoutePath::RouteAllUnknown,
                "public: through the integration subnet only if route-all (vnetRouteAllEnabled) is on, otherwise out the default path, bypassing NSGs and route tables; route-all is not visible here"
                    .to_string(),
            ),
        },
    };
    AddressRoute {
        ip,
        class,
        path,
        why,
    }
}

/// One sentence for the report's environment when not on Azure.
pub const OFF_AZURE: &str = "not running in Azure App Service or Functions (WEBSITE_SITE_NAME is not set): no site facts, and route reasoning describes this machine";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ResolverSource;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn resolver(server: &str, source: ResolverSource) -> ResolverInfo {
        ResolverInfo {
            server: server.into(),
            source,
        }
    }

    #[test]
    fn route_table() {
        let env = env_of(&[
            ("WEBSITE_SITE_NAME", "app"),
            ("WEBSITE_PRIVATE_IP", "10.0.1.5"),
        ]);
        let missing = std::path::Path::new("/nonexistent/resolv.conf");
        let mut f = facts(&env, missing, &[], None, None);
        let cases = [
            ("10.1.2.4", RoutePath::Vnet),
            ("20.0.0.5", RoutePath::RouteAllUnknown),
            ("127.0.0.1", RoutePath::Local),
            ("169.254.169.254", RoutePath::Platform),
            ("168.63.129.16", RoutePath::Platform),
        ];
        for (ip, want) in cases {
            assert_eq!(route(&f, ip.parse().unwrap()).path, want, "{ip}");
        }
        assert!(
            route(&f, "10.1.2.4".parse().unwrap())
                .why
                .contains("10.0.1.5")
        );
        f.site.as_mut().unwrap().route_all = Tri::On;
        assert_eq!(route(&f, "20.0.0.5".parse().unwrap()).path, RoutePath::Vnet);
        f.site.as_mut().unwrap().route_all = Tri::Off;
        let r = route(&f, "20.0.0.5".parse().unwrap());
        assert_eq!(r.path, RoutePath::Internet);
        assert!(r.why.contains("bypassing"), "{}", r.why);
        let off = facts(&|_| None, missing, &[], None, None);
        assert_eq!(
            route(&off, "10.1.2.4".parse().unwrap()).path,
            RoutePath::OffAzure
        );
    }

    #[test]
    fn route_all_sources() {
        assert_eq!(route_all(Some("1".into()), Some(false)).0, Tri::On);
        assert_eq!(route_all(Some("0".into()), None).0, Tri::Off);
        assert_eq!(route_all(None, Some(true)).0, Tri::On);
        let (t, why) = route_all(None, None);
        assert_eq!(t, Tri::Unknown);
        assert!(why.contains("vnetRouteAllEnabled"), "{why}");
        assert_eq!(route_all(Some("maybe".into()), None).0, Tri::Unknown);
    }

    #[test]
    fn azure_dns_is_compared_only_with_custom_dns_and_on_azure_or_configured() {
        let missing = std::path::Path::new("/nonexistent/resolv.conf");
        let azure = env_of(&[("WEBSITE_SITE_NAME", "app")]);
        let custom = [resolver("10.0.0.4:53", ResolverSource::WebsiteDnsServer)];
        let platform = [resolver("168.63.129.16:53", ResolverSource::ResolvConf)];
        let loopback: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        // (env on Azure, resolvers, engine.azure_dns) -> compared with
        type Case<'a> = (bool, &'a [ResolverInfo], Option<SocketAddr>, Option<String>);
        let table: [Case; 5] = [
            (true, &custom, None, Some(AZURE_DNS.to_string())),
            (false, &custom, None, None),
            (false, &custom, Some(loopback), Some(loopback.to_string())),
            (true, &platform, None, None),
            (
                true,
                &[resolver(
                    "168.63.129.16:53",
                    ResolverSource::WebsiteDnsServer,
                )],
                None,
                None,
            ),
        ];
        for (on, rs, configured, want) in table {
            let f = if on {
                facts(&azure, missing, rs, None, configured)
            } else {
                facts(&|_| None, missing, rs, None, configured)
            };
            assert_eq!(
                f.dns.azure_dns, want,
                "{on} {rs:?} {configured:?}: {}",
                f.dns.azure_dns_why
            );
        }
    }
}
