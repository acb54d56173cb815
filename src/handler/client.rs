//! The inbound witness: which client address the app saw, for `/api/health`, so a
//! `routeproof probe https://APP.azurewebsites.net/api/health` from a VM or another app in
//! the VNet learns whether its request arrived through the app's private endpoint.
//!
//! The Functions host always connects from 127.0.0.1, so the socket says nothing; the
//! address comes from the App Service front end, which adds `X-Forwarded-For` (plus
//! `X-Client-IP`, `X-Client-Port`, `Client-IP`) to every request it passes to the
//! instance. Through a private endpoint the front end names the caller's VNet address
//! (e.g. `X-Forwarded-For: 10.10.0.5`); over the internet its public address with the
//! port (`152.37.70.253:4598`); rows in docs/azure-facts.md.
//!
//! Only the **last** `X-Forwarded-For` entry is trusted: a client may send its own
//! header with any addresses in it, and a proxy appends what it saw after whatever
//! arrived, so the last entry is the one the front end wrote, whether it appends to a
//! client's header or replaces it. Earlier entries are never read, and an unparsable last
//! entry gives no address (never a fallback to an earlier, client-written one).
//! `X-Client-IP` is not used: that the front end overwrites a client's value is not
//! documented anywhere we could find.
//!
//! By how the request reached the handler (docs/host-contract.md):
//! - forward mode (the shipped host.json) and payload mode: the host copies the caller's
//!   headers as the front end delivered them, so the last entry is the front end's;
//! - proxy mode: the host's YARP forwarder sets `X-Forwarded-For` to its own peer (YARP's
//!   default action is `Set`), which is the front end's hop, not the caller: no address;
//! - direct (no host in front): nobody trustworthy wrote the header: no address.

use std::net::IpAddr;

use super::invocation::Mode;

pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address to report for a request that arrived in `mode` with these
/// `X-Forwarded-For` header values (in arrival order), or `None` when no trustworthy
/// front end wrote one.
pub fn seen<'a>(mode: Mode, forwarded_for: impl IntoIterator<Item = &'a str>) -> Option<IpAddr> {
    match mode {
        Mode::Forward | Mode::Payload => last_entry(forwarded_for),
        Mode::Proxy | Mode::Direct => None,
    }
}

/// The last entry of the last value: several header lines are one comma-separated list.
fn last_entry<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<IpAddr> {
    let last = values.into_iter().last()?;
    parse_entry(last.rsplit(',').next()?)
}

/// `10.0.1.4`, `10.0.1.4:51234`, `2001:db8::5`, `[2001:db8::5]:443`; an IPv4-mapped IPv6
/// address is its IPv4 address.
fn parse_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let ip = if let Some(rest) = s.strip_prefix('[') {
        rest.split(']').next()?.parse::<IpAddr>().ok()?
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = s.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse::<std::net::Ipv4Addr>().ok()?.into()
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_last_entry_is_the_front_ends() {
        let fwd = |v: &[&str]| seen(Mode::Forward, v.iter().copied());
        assert_eq!(fwd(&["10.10.0.5"]), ip("10.10.0.5"));
        assert_eq!(fwd(&["152.37.70.253:4598"]), ip("152.37.70.253"));
        // A client's own header comes first; the front end appended the real address.
        assert_eq!(fwd(&["10.0.1.4, 203.0.113.7:5555"]), ip("203.0.113.7"));
        assert_eq!(fwd(&["10.0.1.4", "203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(fwd(&["[2001:db8::5]:443"]), ip("2001:db8::5"));
        assert_eq!(fwd(&["2001:db8::5"]), ip("2001:db8::5"));
        assert_eq!(fwd(&["::ffff:10.0.1.4"]), ip("10.0.1.4"));
        // Garbage last: nothing, never the client-written entry before it.
        assert_eq!(fwd(&["10.0.1.4, unknown"]), None);
        assert_eq!(fwd(&["10.0.1.4,"]), None);
        assert_eq!(fwd(&["10.0.1.4:99999"]), None);
        assert_eq!(fwd(&[]), None);
        assert_eq!(
            seen(Mode::Payload, ["203.0.113.9"].into_iter()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn proxy_and_direct_give_no_address() {
        for mode in [Mode::Proxy, Mode::Direct] {
            assert_eq!(seen(mode, ["10.0.1.4"].into_iter()), None);
        }
    }
}
