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

use super::resolvers::ResolvConf;
use crate::addr::{AZURE_PLATFORM_IP, AddrClass};
use crate::env::EnvLookup;
use crate::report::ResolverInfo;
pub use crate::report::{AddressRoute, DnsSettings, RouteAllBasis, RoutePath, Site, Tri};

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
    resolv_conf: &ResolvConf,
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
        let sku = get("WEBSITE_SKU");
        let RouteAll {
            state: route_all,
            basis: route_all_basis,
            why: route_all_source,
        } = route_all(
            get("WEBSITE_VNET_ROUTE_ALL"),
            route_all_declared,
            is_flex(sku.as_deref()),
        );
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
            sku,
            runtime: get("FUNCTIONS_WORKER_RUNTIME"),
            functions_version: get("FUNCTIONS_EXTENSION_VERSION"),
            route_all,
            route_all_source,
            route_all_basis,
            // Unset or 0 proves nothing: the site property vnetContentShareEnabled
            // (invisible here) replaced the setting.
            content_over_vnet: match get("WEBSITE_CONTENTOVERVNET")
                .as_deref()
                .map(crate::setting::parse_yes_no)
            {
                Some(Some(true)) => Tri::On,
                _ => Tri::Unknown,
            },
        }
    });
    let resolv: Vec<String> = resolv_conf
        .servers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(IpAddr::to_string)
        .collect();
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
            resolvers_why: resolvers_why(resolvers, on_azure),
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

/// `WEBSITE_SKU=FlexConsumption`: a value the platform sets (the Functions host's source
/// names it) but no documentation of the variable lists.
fn is_flex(sku: Option<&str>) -> bool {
    sku.is_some_and(|s| s.eq_ignore_ascii_case("FlexConsumption"))
}

/// The route-all verdict: the state, what it rests on, and the sentence for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteAll {
    pub state: Tri,
    pub basis: RouteAllBasis,
    pub why: String,
}

/// Route-all as far as the app can know it. The site property `vnetRouteAllEnabled`
/// (newer API versions: `outboundVnetRouting.applicationTraffic`) overrides the legacy
/// app setting and is not visible from inside the app, so: Flex Consumption routes
/// everything through the VNet; else the operator's declaration (`engine.route_all`);
/// else `WEBSITE_VNET_ROUTE_ALL=1` turns it on (a weak signal), while `0` proves
/// nothing; else unknown, with the command that tells (docs/azure-facts.md R3-R6, R9).
pub fn route_all(setting: Option<String>, declared: Option<bool>, flex: bool) -> RouteAll {
    let v = |state, basis, why: String| RouteAll { state, basis, why };
    const CHECK: &str = "check with `az functionapp config show -g RG -n APP --query vnetRouteAllEnabled` and declare engine.route_all";
    if flex {
        return v(
            Tri::On,
            RouteAllBasis::FlexConsumption,
            "Flex Consumption: all outbound traffic goes through the integrated VNet (detected from WEBSITE_SKU=FlexConsumption, a value the platform sets but does not document)".into(),
        );
    }
    if let Some(d) = declared {
        return v(
            if d { Tri::On } else { Tri::Off },
            RouteAllBasis::Declared,
            "declared in the config (engine.route_all)".into(),
        );
    }
    match setting.as_deref().map(|s| (s, crate::setting::parse_yes_no(s))) {
        Some((_, Some(true))) => v(
            Tri::On,
            RouteAllBasis::AppSetting,
            "WEBSITE_VNET_ROUTE_ALL=1: the legacy setting turns route-all on (a weak signal: the site properties vnetRouteAllEnabled / outboundVnetRouting are not visible to the app; declare engine.route_all to be sure)".into(),
        ),
        Some((_, Some(false))) => v(
            Tri::Unknown,
            RouteAllBasis::None,
            format!("WEBSITE_VNET_ROUTE_ALL=0 proves nothing: the site property vnetRouteAllEnabled (or outboundVnetRouting.applicationTraffic) overrides it and is not visible to the app; {CHECK}"),
        ),
        Some((raw, None)) => v(
            Tri::Unknown,
            RouteAllBasis::None,
            format!(
                "WEBSITE_VNET_ROUTE_ALL=`{}` is not 0 or 1; {CHECK}",
                raw.chars().take(16).collect::<String>()
            ),
        ),
        None => v(
            Tri::Unknown,
            RouteAllBasis::None,
            "not visible to the app: route-all is the site property vnetRouteAllEnabled (newer API versions: outboundVnetRouting.applicationTraffic); check it with `az functionapp config show -g RG -n APP --query vnetRouteAllEnabled` and declare it as engine.route_all".into(),
        ),
    }
}

/// Says which server is the app's own resolver path and which are asked to compare.
fn resolvers_why(resolvers: &[ResolverInfo], on_azure: bool) -> String {
    use crate::report::ResolverSource as S;
    let has = |s: S| resolvers.iter().any(|r| r.source == s);
    if has(S::Config) || has(S::Cli) {
        return "explicit servers (--dns-server or engine.dns_servers) only".into();
    }
    let settings = has(S::WebsiteDnsServer) || has(S::WebsiteDnsAltServer);
    match (on_azure, has(S::ResolvConf), settings) {
        (true, true, true) => "resolv.conf first: the instance's own resolver path, which applies the site property dnsConfiguration.dnsServers and the VNet's DNS servers (both invisible to the app); WEBSITE_DNS_SERVER / WEBSITE_DNS_ALT_SERVER are asked alongside to compare (deprecated on Flex Consumption). A server named by both is labelled with the setting".into(),
        (true, true, false) => "resolv.conf: the instance's own resolver path (no WEBSITE_DNS_SERVER is set)".into(),
        (true, false, true) => "WEBSITE_DNS_SERVER / WEBSITE_DNS_ALT_SERVER only: resolv.conf was unreadable or named no server".into(),
        (false, _, true) => "not on Azure: the app settings WEBSITE_DNS_SERVER / WEBSITE_DNS_ALT_SERVER, as set here".into(),
        _ => "resolv.conf: this machine's resolver".into(),
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
                format!(
                    "public, and route-all is on{}: through the integration subnet, so its NSG and route table apply; without a route elsewhere it still leaves from the app's outbound addresses (a NAT gateway or firewall on the route becomes the source)",
                    match site.route_all_basis {
                        RouteAllBasis::FlexConsumption => " (Flex Consumption)",
                        RouteAllBasis::Declared => " (declared)",
                        RouteAllBasis::AppSetting => {
                            " (only WEBSITE_VNET_ROUTE_ALL=1 says so, a weak signal)"
                        }
                        RouteAllBasis::None => "",
                    }
                ),
            ),
            Tri::Off => (
                RoutePath::Internet,
                "public, and route-all is off: leaves through the app's default outbound path, bypassing the VNet, its NSGs and route tables (a service with public network access disabled refuses it)"
                    .to_string(),
            ),
            Tri::Unknown => (
                RoutePath::RouteAllUnknown,
                "public: through the integration subnet only if route-all is on (the site property vnetRouteAllEnabled / outboundVnetRouting, not visible here), otherwise out the default path, bypassing NSGs and route tables; declare engine.route_all"
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
mod tests;
