//! Turning the answer used into pass or fail, and noticing servers that disagree.

use super::*;

pub(super) fn asks_addresses(types: &[RecordType]) -> bool {
    types
        .iter()
        .all(|t| matches!(t, RecordType::A | RecordType::AAAA))
}

/// A public answer reached through a `privatelink` hop: the symptom of a private DNS
/// zone the resolver cannot see.
pub(super) fn privatelink_public(ev: &DnsEvidence) -> bool {
    ev.cname_chain
        .iter()
        .any(|h| crate::zone::is_privatelink(&h.target))
        && ev.addresses.iter().any(|a| a.class == AddrClass::Public)
}

/// Turns a definitive answer into pass/fail: NXDOMAIN, NODATA, then the expectations.
pub(super) fn judge(
    used: &ServerResult,
    types: &[RecordType],
    ev: &DnsEvidence,
    expect: &Expectations,
    ctx: &Context,
) -> Option<Failure> {
    let fail = |class, msg: String| Some(diagnose::failure(Some(Layer::Dns), class, msg, ctx));
    if used.rcode == Some(ResponseCode::NXDomain) {
        let last = ev
            .cname_chain
            .last()
            .map(|h| h.target.as_str())
            .unwrap_or(&ev.query);
        return fail(
            FailureClass::DnsNxdomain,
            format!("{last} does not exist (NXDOMAIN)"),
        );
    }
    let wanted = types
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join("/");
    let asks_addresses = types
        .iter()
        .all(|t| matches!(t, RecordType::A | RecordType::AAAA));
    let empty = if asks_addresses {
        ev.addresses.is_empty()
    } else {
        ev.records.is_empty()
    };
    if empty {
        return fail(
            FailureClass::DnsNoRecords,
            format!(
                "{} has no {wanted} records (NOERROR, empty answer)",
                ev.query
            ),
        );
    }
    if expect.private
        && let Some(a) = ev.addresses.iter().find(|a| a.class == AddrClass::Public)
    {
        return fail(
            FailureClass::DnsPublicAddress,
            format!(
                "{} resolved to public address {} but `private = true`",
                ev.query, a.ip
            ),
        );
    }
    if !expect.addresses.is_empty()
        && let Some(a) = ev
            .addresses
            .iter()
            .find(|a| !expect.addresses.iter().any(|n| n.contains(&a.ip)))
    {
        let want: Vec<String> = expect.addresses.iter().map(|n| n.to_string()).collect();
        return fail(
            FailureClass::ExpectAddresses,
            format!(
                "{} resolved to {}, outside the expected {}",
                ev.query,
                a.ip,
                want.join(", ")
            ),
        );
    }
    None
}

/// Two servers disagree when both answered definitively with different rcodes or
/// address sets. Failures are not disagreement: they are reported per server.
pub(super) fn disagreement(servers: &[Nameserver], results: &[ServerResult]) -> Option<String> {
    let answered: Vec<(usize, Option<ResponseCode>, Vec<IpAddr>)> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.definitive())
        .map(|(i, r)| {
            let mut a: Vec<IpAddr> = addresses_of(&r.records)
                .into_iter()
                .map(|(ip, _)| ip)
                .collect();
            a.sort();
            (i, r.rcode, a)
        })
        .collect();
    let first = answered.first()?;
    let differ = answered.iter().find(|o| o.1 != first.1 || o.2 != first.2)?;
    let show = |o: &(usize, Option<ResponseCode>, Vec<IpAddr>)| {
        let what = if o.2.is_empty() {
            o.1.map(rcode_str).unwrap_or_else(|| "?".into())
        } else {
            o.2.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{} ({}) says {what}",
            servers[o.0].addr, servers[o.0].source
        )
    };
    Some(format!(
        "DNS servers disagree (split horizon): {}; {}. Clients that fail over between them will get different answers",
        show(first),
        show(differ)
    ))
}
