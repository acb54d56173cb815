//! Address classes. The question an Azure engineer asks of every DNS answer is "will
//! this go through the integration subnet?", which only a private address does unless
//! route-all is on, so the class is part of the evidence, not a derived nicety.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddrClass {
    /// RFC 1918, 100.64.0.0/10 (shared address space) and fc00::/7 (unique local).
    Private,
    Loopback,
    /// 169.254.0.0/16 and fe80::/10: IMDS and the managed-identity endpoint live here.
    LinkLocal,
    /// 168.63.129.16: the Azure platform's virtual IP (DNS, health probes).
    AzurePlatform,
    Unspecified,
    Public,
}

pub const AZURE_PLATFORM_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(168, 63, 129, 16);

impl AddrClass {
    pub fn of(ip: IpAddr) -> AddrClass {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                if v4.is_loopback() {
                    AddrClass::Loopback
                } else if v4.is_unspecified() {
                    AddrClass::Unspecified
                } else if v4.is_link_local() {
                    AddrClass::LinkLocal
                } else if v4 == AZURE_PLATFORM_IP {
                    AddrClass::AzurePlatform
                } else if v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
                    AddrClass::Private
                } else {
                    AddrClass::Public
                }
            }
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return AddrClass::of(IpAddr::V4(v4));
                }
                let s = v6.segments();
                if v6.is_loopback() {
                    AddrClass::Loopback
                } else if v6.is_unspecified() {
                    AddrClass::Unspecified
                } else if (s[0] & 0xffc0) == 0xfe80 {
                    AddrClass::LinkLocal
                } else if (s[0] & 0xfe00) == 0xfc00 {
                    AddrClass::Private
                } else {
                    AddrClass::Public
                }
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddrClass::Private => "private",
            AddrClass::Loopback => "loopback",
            AddrClass::LinkLocal => "link_local",
            AddrClass::AzurePlatform => "azure_platform",
            AddrClass::Unspecified => "unspecified",
            AddrClass::Public => "public",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let cases = [
            ("10.1.2.4", AddrClass::Private),
            ("172.16.0.1", AddrClass::Private),
            ("172.31.255.255", AddrClass::Private),
            ("172.32.0.1", AddrClass::Public),
            ("192.168.1.1", AddrClass::Private),
            ("100.64.0.1", AddrClass::Private),
            ("100.127.255.255", AddrClass::Private),
            ("100.128.0.1", AddrClass::Public),
            ("127.0.0.53", AddrClass::Loopback),
            ("169.254.169.254", AddrClass::LinkLocal),
            ("168.63.129.16", AddrClass::AzurePlatform),
            ("0.0.0.0", AddrClass::Unspecified),
            ("20.0.0.5", AddrClass::Public),
            ("::1", AddrClass::Loopback),
            ("fd00::1", AddrClass::Private),
            ("fc00::1", AddrClass::Private),
            ("fe80::1", AddrClass::LinkLocal),
            ("::", AddrClass::Unspecified),
            ("2001:db8::1", AddrClass::Public),
            ("::ffff:10.0.0.1", AddrClass::Private),
        ];
        for (ip, want) in cases {
            assert_eq!(AddrClass::of(ip.parse().unwrap()), want, "{ip}");
        }
    }
}
