//! Asking one server, and reading its answer: the CNAME chain, the addresses, the
//! classified error.

use super::*;

pub(super) async fn query_server(
    ns: &Nameserver,
    fqdn: &str,
    types: &[RecordType],
    limit: Duration,
    start: Instant,
) -> ServerResult {
    let per_type = futures_join_all(
        types
            .iter()
            .map(|t| async move {
                match tokio::time::timeout(limit, ns.resolver.lookup(fqdn, *t)).await {
                    Ok(r) => r,
                    Err(_) => Err(NetError::Timeout),
                }
            })
            .collect(),
    )
    .await;
    let elapsed = start.elapsed();
    let mut out = ServerResult {
        rcode: None,
        error: None,
        records: Vec::new(),
        elapsed,
    };
    let mut nodata = None;
    let mut first_error = None;
    for r in per_type {
        match r {
            Ok(lookup) => {
                out.rcode = Some(lookup.message().metadata.response_code);
                for rec in lookup.answers() {
                    if !out.records.contains(rec) {
                        out.records.push(rec.clone());
                    }
                }
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => {
                if nodata.is_none() || nr.response_code == ResponseCode::NXDomain {
                    nodata = Some(nr.response_code);
                }
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(classify(&e, ns));
                }
            }
        }
    }
    if out.rcode.is_some() {
        // At least one type answered: NXDOMAIN for another type cannot be (same name).
        return out;
    }
    if let Some(code) = nodata {
        out.rcode = Some(code);
        return out;
    }
    out.error = Some(first_error.unwrap_or((FailureClass::DnsError, "no answer".into())));
    out
}

pub(super) fn classify(e: &NetError, ns: &Nameserver) -> (FailureClass, String) {
    let server = format!("{} ({})", ns.addr, ns.source);
    match e {
        NetError::Timeout => (
            FailureClass::DnsTimeout,
            format!("no answer from {server} within the timeout"),
        ),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => (
            FailureClass::DnsServfail,
            format!("{server} answered SERVFAIL"),
        ),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => (
            FailureClass::DnsRefused,
            format!("{server} answered REFUSED"),
        ),
        NetError::Dns(DnsError::ResponseCode(code)) => (
            FailureClass::DnsError,
            format!("{server} answered {}", rcode_str(*code)),
        ),
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => (
            FailureClass::DnsTimeout,
            format!("no answer from {server}: {io}"),
        ),
        NetError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => (
            FailureClass::DnsRefused,
            format!("{server}: nothing listens there (ICMP port unreachable / connection refused)"),
        ),
        other => (FailureClass::DnsError, format!("{server}: {other}")),
    }
}

pub(super) fn rcode_str(c: ResponseCode) -> String {
    match c {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        other => other.to_string().to_ascii_uppercase(),
    }
}

/// The CNAME hops from the queried name, in order, stopping on a loop.
pub(super) fn cname_chain(
    fqdn: &str,
    records: &[hickory_resolver::proto::rr::Record],
) -> Vec<CnameHop> {
    let map: HashMap<String, (String, u32)> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some((lower(&r.name.to_string()), (lower(&c.0.to_string()), r.ttl))),
            _ => None,
        })
        .collect();
    let mut chain = Vec::new();
    let mut cur = lower(fqdn);
    while let Some((target, ttl)) = map.get(&cur) {
        if chain.iter().any(|h: &CnameHop| &h.name == target) || chain.len() > 16 {
            break;
        }
        chain.push(CnameHop {
            name: cur.clone(),
            target: target.clone(),
            ttl: *ttl,
        });
        cur = target.clone();
    }
    chain
}

pub(super) fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// A/AAAA answers in answer order, IPv4 first (the order a client tries them).
pub(super) fn addresses_of(records: &[hickory_resolver::proto::rr::Record]) -> Vec<(IpAddr, u32)> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for r in records {
        match &r.data {
            RData::A(a) => v4.push((IpAddr::V4(a.0), r.ttl)),
            RData::AAAA(a) => v6.push((IpAddr::V6(a.0), r.ttl)),
            _ => {}
        }
    }
    v4.extend(v6);
    v4.dedup_by(|a, b| a.0 == b.0);
    v4
}

/// Joins futures concurrently on the current task, keeping their order. Small lists only
/// (servers × record types), so a plain poll-all loop beats pulling in `futures`.
pub(super) async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}
