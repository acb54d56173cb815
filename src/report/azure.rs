//! The Azure evidence in a report: the site facts, the DNS settings in effect, and the
//! route each address takes out of the instance. `platform::azure` gathers them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::addr::AddrClass;

/// A yes/no fact the platform may not expose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tri {
    On,
    Off,
    #[default]
    Unknown,
}

impl Tri {
    pub fn as_str(self) -> &'static str {
        match self {
            Tri::On => "on",
            Tri::Off => "off",
            Tri::Unknown => "unknown",
        }
    }
}

/// The site facts, on Azure only.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Site {
    /// `WEBSITE_SITE_NAME`
    pub name: String,
    /// `WEBSITE_INSTANCE_ID`: the instance this report came from (per-instance truth on
    /// scale-out: DNS caches, private IPs and SNAT state are per instance).
    pub instance_id: Option<String>,
    /// `WEBSITE_PRIVATE_IP`: this instance's address in the integration subnet.
    pub private_ip: Option<String>,
    /// `REGION_NAME`
    pub region: Option<String>,
    /// `WEBSITE_SKU` as the platform sets it. Documented values are Free, Shared, Basic
    /// and Standard; others (ElasticPremium, FlexConsumption, Dynamic) appear in the
    /// Functions host's source but not in documentation, so code that branches on them
    /// says so.
    pub sku: Option<String>,
    /// `FUNCTIONS_WORKER_RUNTIME` (absent on Flex Consumption, where it is a site property).
    pub runtime: Option<String>,
    /// `FUNCTIONS_EXTENSION_VERSION`
    pub functions_version: Option<String>,
    /// VNet integration as far as the instance can tell: `on` when it has a
    /// `WEBSITE_PRIVATE_IP`, `unknown` otherwise (some plans do not expose it).
    pub vnet_integration: Tri,
    /// Whether public destinations go through the VNet too.
    pub route_all: Tri,
    /// Where `route_all` came from, or why it is unknown.
    pub route_all_source: String,
    /// What `route_all` rests on: `flex_consumption`, `declared`, `app_setting` (a weak
    /// signal) or `none`.
    pub route_all_basis: RouteAllBasis,
    /// `WEBSITE_CONTENTOVERVNET`: the legacy setting asking for the content share over the
    /// VNet, replaced by the site property vnetContentShareEnabled (not visible to the app)
    /// and not used on Flex Consumption; `on` when it asks for it, otherwise `unknown`
    /// (unset or 0 proves nothing).
    pub content_over_vnet: Tri,
}

/// What the route-all verdict rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RouteAllBasis {
    /// The plan is Flex Consumption, where all outbound traffic goes through the VNet
    /// (detected from `WEBSITE_SKU=FlexConsumption`, an undocumented value).
    FlexConsumption,
    /// The operator's declaration, `engine.route_all`.
    Declared,
    /// `WEBSITE_VNET_ROUTE_ALL=1` alone: a weak signal, the site properties override it.
    AppSetting,
    /// Nothing the app can see says.
    #[default]
    None,
}

/// The DNS settings in effect, and whether Azure DNS is asked alongside.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct DnsSettings {
    /// `WEBSITE_DNS_SERVER` as set (a comma-separated list of IPs).
    pub website_dns_server: Option<String>,
    /// `WEBSITE_DNS_ALT_SERVER` as set.
    pub website_dns_alt_server: Option<String>,
    /// `nameserver` lines of the resolv.conf routeproof reads.
    pub resolv_conf: Vec<String>,
    /// Which of the servers asked is the app's own resolver path and which are asked
    /// alongside to compare (see `environment.resolvers[].source`).
    pub resolvers_why: String,
    /// A DNS server other than Azure DNS answers this app's queries.
    pub custom: bool,
    /// The Azure DNS address asked when a custom server fails, or `null` when no
    /// comparison is made (`azure_dns_why` says why).
    pub azure_dns: Option<String>,
    pub azure_dns_why: String,
}

/// The path one address takes out of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutePath {
    /// Through the integration subnet: its NSG and route table apply.
    Vnet,
    /// The default outbound path: bypasses the VNet, its NSGs and UDRs.
    Internet,
    /// Public, and whether route-all is on is not visible: one of the two above.
    RouteAllUnknown,
    /// Never leaves the instance (loopback, unspecified).
    Local,
    /// The platform's own endpoints (168.63.129.16, link-local IMDS/identity).
    Platform,
    /// Not running on Azure: this machine's own routing applies.
    OffAzure,
}

impl RoutePath {
    pub fn as_str(self) -> &'static str {
        match self {
            RoutePath::Vnet => "vnet",
            RoutePath::Internet => "internet",
            RoutePath::RouteAllUnknown => "route_all_unknown",
            RoutePath::Local => "local",
            RoutePath::Platform => "platform",
            RoutePath::OffAzure => "off_azure",
        }
    }
}

/// The route reasoning for one address of a target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AddressRoute {
    pub ip: IpAddr,
    pub class: AddrClass,
    pub path: RoutePath,
    pub why: String,
}
