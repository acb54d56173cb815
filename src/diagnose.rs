//! A failure explains itself: every class carries a hint naming the likely Azure cause
//! and the fix. Hints match on the class and on facts from the probe (a `privatelink`
//! hop in the CNAME chain, a custom DNS server), never on error text.

use std::net::IpAddr;

use crate::addr::AddrClass;
use crate::report::{Failure, FailureClass, Layer};

/// What a hint may use about the target, gathered by the layers as they run.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub name: String,
    /// CNAME targets in order.
    pub chain: Vec<String>,
    pub addresses: Vec<IpAddr>,
    /// Where the DNS servers came from (`WEBSITE_DNS_SERVER`, `resolv.conf`, ...).
    pub resolver_sources: Vec<String>,
    pub port: Option<u16>,
}

impl Context {
    pub fn new(name: &str) -> Self {
        Context {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// The `privatelink.*` name in the chain, if the name went through one.
    fn privatelink_hop(&self) -> Option<&str> {
        self.chain
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.name.as_str()))
            .find(|n| n.split('.').any(|l| l == "privatelink"))
    }

    /// `privatelink.database.windows.net` for `x.privatelink.database.windows.net.`
    fn privatelink_zone(&self) -> Option<String> {
        let hop = self.privatelink_hop()?.trim_end_matches('.');
        let i = hop.find("privatelink.")?;
        Some(hop[i..].to_string())
    }

    fn custom_dns(&self) -> bool {
        self.resolver_sources
            .iter()
            .any(|s| s.starts_with("WEBSITE_DNS") || s == "config" || s == "cli")
    }
}

pub fn failure(
    layer: Option<Layer>,
    class: FailureClass,
    message: String,
    ctx: &Context,
) -> Failure {
    Failure {
        layer,
        class,
        hint: hint(class, ctx),
        message,
    }
}

pub fn hint(class: FailureClass, ctx: &Context) -> String {
    let zone = ctx.privatelink_zone();
    let forwarder = "a custom DNS server needs a conditional forwarder for the privatelink zone to Azure DNS (168.63.129.16), or use an Azure DNS Private Resolver";
    match class {
        FailureClass::DnsNxdomain => match &zone {
            Some(z) => format!(
                "The name reached the private zone {z}, which has no record for it: the private endpoint's A record is missing. Check the endpoint's DNS zone group (or add the A record to {z}) and that the zone is linked to the app's VNet."
            ),
            None if ctx.custom_dns() => format!(
                "This DNS server says the name does not exist. Check the spelling; if it is a private endpoint, {forwarder}, and the private DNS zone must be linked to the VNet."
            ),
            None => "The name does not exist for this resolver. Check the spelling; for a private endpoint, link its private DNS zone (e.g. privatelink.database.windows.net) to the VNet the app is integrated with.".into(),
        },
        FailureClass::DnsServfail => format!(
            "The DNS server could not get an answer upstream. With a custom DNS server (WEBSITE_DNS_SERVER), {forwarder}; Azure DNS answers only from inside the VNet, so the forwarder itself must run there."
        ),
        FailureClass::DnsRefused => "The DNS server refuses this client: allow the integration subnet's address range in the server's ACL / recursion settings, or point WEBSITE_DNS_SERVER at a server that serves the VNet.".into(),
        FailureClass::DnsTimeout => "No DNS answer: an NSG or firewall blocks UDP/TCP 53 from the integration subnet to the DNS server, or the server in WEBSITE_DNS_SERVER is down or not reachable through the VNet (check peering and route tables toward it).".into(),
        FailureClass::DnsNoRecords => "The name exists but has no record of the type asked: an A record may be missing in the private DNS zone (only a CNAME or TXT was created), or the service is IPv4-only and AAAA was asked.".into(),
        FailureClass::DnsPublicAddress => match &zone {
            Some(z) => format!(
                "The name went through {z} but ended on a public address: the private DNS zone {z} is not linked to the app's VNet or has no record for this name, so public DNS answered. Link the zone (Private DNS zone > Virtual network links), or {forwarder}."
            ),
            None => "The name resolves to a public address, so traffic goes to the service's public endpoint (through the VNet only with route-all on, and rejected when public network access is disabled). Create a private endpoint with its private DNS zone, and use the public FQDN so the privatelink CNAME applies.".into(),
        },
        FailureClass::DnsError => "The DNS exchange failed (unexpected response code or malformed answer). Query the server directly (e.g. `dig @server name`) and check its logs.".into(),
        FailureClass::TcpRefused => {
            let port = ctx.port.map(|p| format!("port {p}")).unwrap_or_else(|| "this port".into());
            format!(
                "The address answered with a reset: the route works but nothing accepts {port} there (wrong port, service stopped), or an NSG/firewall rule rejects it. For a private endpoint, check that its connection is Approved."
            )
        }
        FailureClass::TcpTimeout => {
            let public = ctx.addresses.iter().any(|a| AddrClass::of(*a) == AddrClass::Public);
            let extra = if public {
                " The address is public: without route-all (vnetRouteAllEnabled) this traffic does not use the VNet at all."
            } else {
                ""
            };
            format!(
                "SYN unanswered: an NSG on the integration or endpoint subnet drops it, a route table (UDR) sends it to a firewall/NVA that drops it, or the target's VNet is not peered. Check the integration subnet's effective routes and NSG flow logs.{extra}"
            )
        }
        FailureClass::TcpReset => "The connection was accepted, then reset: a firewall/NVA in the path (TLS inspection, session rules) or an unhealthy service behind the private endpoint or load balancer.".into(),
        FailureClass::TcpUnreachable => "No route from the instance to this address: it is outside the integrated VNet and its peerings (missing peering or UDR), or it is IPv6, which regional VNet integration does not route.".into(),
        FailureClass::TcpForbidden => "The platform refused to open this socket (EACCES/EPERM): App Service's sandbox blocks some outbound traffic (e.g. IPv6 through VNet integration, SMTP port 25). Use an IPv4 address or another port.".into(),
        FailureClass::TcpError => "The connection failed with an unexpected socket error; the message carries the OS error.".into(),
        FailureClass::ExpectAddresses => "The name resolved, but not to the expected address: a stale A record in the private DNS zone (the private endpoint was recreated with a new IP), or another zone answered.".into(),
        FailureClass::ExpectMaxMs => "Every layer passed but the probe took longer than `max_ms`; compare the layer timings to see which one is slow.".into(),
        FailureClass::ConfigInvalid => "Fix the named key or target and run `routeproof check --config FILE`.".into(),
        FailureClass::Deadline => "The run deadline expired first: raise `engine.deadline` (keep it under the Functions timeout), shorten layer timeouts, or raise `engine.concurrency`.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_a_hint() {
        let ctx = Context::new("x.example");
        for c in FailureClass::ALL {
            assert!(hint(*c, &ctx).len() > 40, "{c}");
        }
    }

    #[test]
    fn privatelink_hop_sharpens_hints() {
        let mut ctx = Context::new("myserver.database.windows.net");
        ctx.chain = vec!["myserver.privatelink.database.windows.net.".into()];
        let h = hint(FailureClass::DnsPublicAddress, &ctx);
        assert!(
            h.contains("privatelink.database.windows.net is not linked"),
            "{h}"
        );
        let h = hint(FailureClass::DnsNxdomain, &ctx);
        assert!(h.contains("A record is missing"), "{h}");
    }
}
