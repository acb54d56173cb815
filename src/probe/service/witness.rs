//! The far end's witness: the client address a service says it saw, and what it proves.
//!
//! Sources, each parsed from text the service itself sends:
//! - Key Vault's `x-ms-keyvault-network-info: conn_type=…;addr=A;act_addr_fam=…;` header on
//!   every answer. Microsoft's "Diagnose private links configuration issues on Azure Key
//!   Vault" (learn.microsoft.com/azure/key-vault/general/private-link-diagnostics, section
//!   "Validate that requests to key vault use private link"): `addr` is the origin of the
//!   request as the vault saw it; a private address means private link or a service
//!   endpoint, a public one means the request reached the vault through the internet (NAT).
//! - Key Vault's firewall refusal: `Client address: A` in the 403 message.
//! - Cosmos DB's firewall refusal: `Request originated from IP A through public internet`
//!   (or `client IP A`).
//! - Container Registry's firewall refusal: `client with IP 'A' is not allowed access`.
//! - routeproof's own `/api/health` on an app: `client.address`, the address the App
//!   Service front end saw the request come from (`handler::client`: the last
//!   `X-Forwarded-For` entry, the one the front end wrote). The inbound witness: a private
//!   address says the request came through the app's private endpoint.
//!
//! The conclusion compares the witness with this instance's own addresses: the local
//! address of the probe's socket and `WEBSITE_PRIVATE_IP` (the instance's address in the
//! integration subnet, set by App Service when VNet integration is on).
//!
//! | conclusion | meaning | with `private = true` |
//! |---|---|---|
//! | `private_path_proven` | the service saw a private address (ours, or one of our VNet's after custom routing) | ok |
//! | `public_path` | the service saw a public address: the request went over the internet | fails: `service.public_path` |
//! | `unknown` | the service gave no address | ok (no witness) |

use std::net::IpAddr;

use serde::Serialize;

/// Where a witness address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WitnessSource {
    KeyVaultNetworkInfo,
    KeyVaultFirewallMessage,
    CosmosFirewallMessage,
    RegistryFirewallMessage,
    /// routeproof's `/api/health` on an app: `client.address`, the last
    /// `X-Forwarded-For` entry the App Service front end wrote (`handler::client`).
    AppHealth,
}

/// The address a service reported, with where it said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Witness {
    pub addr: IpAddr,
    pub source: WitnessSource,
    /// Key Vault's `conn_type` (e.g. `Ipv4`, `PrivateLink`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_type: Option<String>,
}

/// Parses `x-ms-keyvault-network-info` (`conn_type=Ipv4;addr=1.2.3.4;act_addr_fam=…;`).
pub fn from_keyvault_header(value: &str) -> Option<Witness> {
    let mut addr = None;
    let mut conn_type = None;
    for part in value.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "addr" => addr = parse_ip(v.trim()),
            "conn_type" => conn_type = Some(v.trim().chars().take(32).collect()),
            _ => {}
        }
    }
    Some(Witness {
        addr: addr?,
        source: WitnessSource::KeyVaultNetworkInfo,
        conn_type,
    })
}

/// The address after `marker` in a firewall message (case-insensitive), e.g.
/// `Client address: 1.2.3.4`.
fn after(message: &str, marker: &str) -> Option<IpAddr> {
    let lower = message.to_ascii_lowercase();
    let marker = marker.to_ascii_lowercase();
    // The first occurrence followed by an address: "Client address is not authorized …
    // Client address: A" names the marker twice.
    lower.match_indices(&marker).find_map(|(at, _)| {
        let rest = &message[at + marker.len()..];
        let token: String = rest
            .trim_start_matches([' ', ':', '\'', '"'])
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '.' || *c == ':')
            .collect();
        parse_ip(token.trim_end_matches([':', '.']))
    })
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    // IPv4-mapped IPv6 (`::ffff:10.0.0.4`) is the IPv4 address.
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(
            v6.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
        ),
        v4 => Some(v4),
    }
}

pub fn from_keyvault_message(message: &str) -> Option<Witness> {
    Some(Witness {
        addr: after(message, "Client address")?,
        source: WitnessSource::KeyVaultFirewallMessage,
        conn_type: None,
    })
}

pub fn from_cosmos_message(message: &str) -> Option<Witness> {
    let addr = after(message, "originated from client IP")
        .or_else(|| after(message, "originated from IP"))?;
    Some(Witness {
        addr,
        source: WitnessSource::CosmosFirewallMessage,
        conn_type: None,
    })
}

/// `client.address` of routeproof's health answer.
pub fn from_app_health(address: &str) -> Option<Witness> {
    Some(Witness {
        addr: parse_ip(address.trim())?,
        source: WitnessSource::AppHealth,
        conn_type: None,
    })
}

pub fn from_registry_message(message: &str) -> Option<Witness> {
    Some(Witness {
        addr: after(message, "client with IP")?,
        source: WitnessSource::RegistryFirewallMessage,
        conn_type: None,
    })
}

/// A private (non-internet) address: RFC 1918, shared address space (100.64/10, used by
/// some Azure paths), link-local, loopback, IPv6 unique-local and link-local.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

/// What the witness proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathConclusion {
    PrivatePathProven,
    PublicPath,
    Unknown,
}

/// Which of our addresses the witness is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WitnessMatch {
    /// The probe socket's local address.
    LocalAddress,
    /// `WEBSITE_PRIVATE_IP`: this instance's address in the integration subnet.
    WebsitePrivateIp,
    /// A private address that is neither (custom routing, an NVA's SNAT, another instance).
    OtherPrivate,
    /// Not private: the request crossed the internet.
    Public,
}

/// The witness next to this instance's addresses, and the conclusion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathEvidence {
    pub conclusion: PathConclusion,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<WitnessMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_addr: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website_private_ip: Option<IpAddr>,
    /// The target requires the private path and the witness says public: `service.public_path`.
    pub failed: bool,
    /// The `privatelink` zone the name's CNAME chain went through (the DNS layer's
    /// answer), when it did: the private endpoint's DNS half, next to the witness's word
    /// on the path the request took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privatelink_zone: Option<String>,
}

/// Compares `witness` with `local_addr` and `website_private_ip` (the raw setting value;
/// unparsable is ignored), and fails a public witness when `private_required`.
pub fn conclude(
    witness: Option<&Witness>,
    local_addr: Option<IpAddr>,
    website_private_ip: Option<&str>,
    private_required: bool,
) -> PathEvidence {
    let wpi = website_private_ip.and_then(|s| parse_ip(s.trim()));
    let local_addr = local_addr.map(|a| parse_ip(&a.to_string()).unwrap_or(a));
    let (conclusion, matched) = match witness {
        None => (PathConclusion::Unknown, None),
        Some(w) if Some(w.addr) == wpi => (
            PathConclusion::PrivatePathProven,
            Some(WitnessMatch::WebsitePrivateIp),
        ),
        Some(w) if Some(w.addr) == local_addr && is_private(w.addr) => (
            PathConclusion::PrivatePathProven,
            Some(WitnessMatch::LocalAddress),
        ),
        Some(w) if is_private(w.addr) => (
            PathConclusion::PrivatePathProven,
            Some(WitnessMatch::OtherPrivate),
        ),
        Some(_) => (PathConclusion::PublicPath, Some(WitnessMatch::Public)),
    };
    PathEvidence {
        conclusion,
        witness: witness.cloned(),
        matched,
        local_addr,
        website_private_ip: wpi,
        failed: private_required && conclusion == PathConclusion::PublicPath,
        privatelink_zone: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_source() {
        let w = from_keyvault_header("conn_type=Ipv4;addr=72.68.182.20;act_addr_fam=InterNetwork;")
            .unwrap();
        assert_eq!(w.addr.to_string(), "72.68.182.20");
        assert_eq!(w.conn_type.as_deref(), Some("Ipv4"));
        let w = from_keyvault_header("addr=10.4.5.6;act_addr_fam=InterNetworkV6;").unwrap();
        assert_eq!(w.addr.to_string(), "10.4.5.6");
        assert!(from_keyvault_header("conn_type=Ipv4;").is_none());
        assert!(from_keyvault_header("addr=not-an-ip").is_none());
        let m = "Client address is not authorized and caller is not a trusted service.\r\nClient address: 20.1.2.3\r\nCaller: appid=x";
        assert_eq!(
            from_keyvault_message(m).unwrap().addr.to_string(),
            "20.1.2.3"
        );
        let c = "Request originated from IP 52.1.2.3 through public internet. This is blocked by your Cosmos DB account firewall settings.";
        assert_eq!(from_cosmos_message(c).unwrap().addr.to_string(), "52.1.2.3");
        let r = "client with IP '40.1.2.3' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.";
        assert_eq!(
            from_registry_message(r).unwrap().addr.to_string(),
            "40.1.2.3"
        );
        assert!(
            from_cosmos_message("Request originated from VNET through service endpoint").is_none()
        );
    }

    #[test]
    fn conclusions() {
        let w = |a: &str| Witness {
            addr: a.parse().unwrap(),
            source: WitnessSource::KeyVaultNetworkInfo,
            conn_type: None,
        };
        let e = conclude(Some(&w("10.60.1.5")), None, Some("10.60.1.5"), true);
        assert_eq!(
            (e.conclusion, e.matched, e.failed),
            (
                PathConclusion::PrivatePathProven,
                Some(WitnessMatch::WebsitePrivateIp),
                false
            )
        );
        let e = conclude(
            Some(&w("10.60.1.9")),
            Some("169.254.0.2".parse().unwrap()),
            Some("10.60.1.5"),
            true,
        );
        assert_eq!(e.matched, Some(WitnessMatch::OtherPrivate));
        let e = conclude(
            Some(&w("127.0.0.1")),
            Some("127.0.0.1".parse().unwrap()),
            None,
            true,
        );
        assert_eq!(e.matched, Some(WitnessMatch::LocalAddress));
        let e = conclude(Some(&w("52.1.2.3")), None, Some("10.60.1.5"), true);
        assert_eq!((e.conclusion, e.failed), (PathConclusion::PublicPath, true));
        let e = conclude(Some(&w("52.1.2.3")), None, None, false);
        assert_eq!(
            (e.conclusion, e.failed),
            (PathConclusion::PublicPath, false)
        );
        let e = conclude(None, None, Some("garbage"), true);
        assert_eq!(
            (e.conclusion, e.failed, e.website_private_ip),
            (PathConclusion::Unknown, false, None)
        );
        assert!(
            is_private("100.64.0.1".parse().unwrap()) && is_private("fd00::1".parse().unwrap())
        );
        assert!(
            !is_private("8.8.8.8".parse().unwrap()) && !is_private("2001:db8::1".parse().unwrap())
        );
    }
}
