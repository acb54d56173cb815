//! DNS layer: resolve a name through every configured server, use the first definitive
//! answer in server order (as a stub resolver fails over), and keep each server's own
//! answer so a split horizon (the #1 private-endpoint failure) is visible, not averaged.
//!
//! With a custom DNS server, a failure a missing forwarder would explain (NXDOMAIN,
//! SERVFAIL, no records, a public answer through a privatelink hop) is checked against
//! Azure DNS: when 168.63.129.16 resolves the name to a private address, the class is
//! `dns.divergent` (the custom server does not forward the privatelink zone); when it
//! agrees, the ordinary class stands, because then the record itself is the problem.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::addr::AddrClass;
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::platform::resolvers::Nameserver;
use crate::report::{
    AddressInfo, CnameHop, DnsEvidence, Evidence, Failure, FailureClass, Layer, LayerResult,
    RecordInfo, ServerAnswer, ms,
};
use crate::spec::Expectations;
use crate::spec::QueryType;

/// What the layer hands on: the report entry, the addresses later layers must use (the
/// very ones reported, never a second lookup), and any warnings for the target.
pub struct DnsOutcome {
    pub result: LayerResult,
    pub addresses: Vec<IpAddr>,
    pub warnings: Vec<String>,
}

/// One server's answer to all the record types asked.
struct ServerResult {
    rcode: Option<ResponseCode>,
    /// `None`: a definitive answer (records, NXDOMAIN or NODATA). `Some`: no usable answer.
    error: Option<(FailureClass, String)>,
    records: Vec<hickory_resolver::proto::rr::Record>,
    elapsed: Duration,
}

impl ServerResult {
    fn definitive(&self) -> bool {
        self.error.is_none()
    }
}

/// Record types to ask: address targets ask A and AAAA together, as getaddrinfo does.
pub fn types_for(qtype: Option<QueryType>) -> Vec<RecordType> {
    match qtype {
        None => vec![RecordType::A, RecordType::AAAA],
        Some(QueryType::A) => vec![RecordType::A],
        Some(QueryType::Aaaa) => vec![RecordType::AAAA],
        Some(QueryType::Cname) => vec![RecordType::CNAME],
        Some(QueryType::Txt) => vec![RecordType::TXT],
        Some(QueryType::Srv) => vec![RecordType::SRV],
        Some(QueryType::Mx) => vec![RecordType::MX],
    }
}

pub async fn resolve(
    servers: &[Nameserver],
    name: &str,
    types: &[RecordType],
    timeout: Duration,
    budget: &Budget,
    expect: &Expectations,
) -> DnsOutcome {
    resolve_compared(servers, name, types, timeout, budget, expect, None).await
}

/// `resolve`, comparing a suspicious failure with `azure` (Azure DNS) when given.
pub async fn resolve_compared(
    servers: &[Nameserver],
    name: &str,
    types: &[RecordType],
    timeout: Duration,
    budget: &Budget,
    expect: &Expectations,
    azure: Option<&Nameserver>,
) -> DnsOutcome {
    let start = Instant::now();
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let (limit, cut_by_deadline) = budget.limit(timeout);

    // Ask every server at once: the comparison costs no extra wall time that way.
    let results: Vec<ServerResult> = futures_join_all(
        servers
            .iter()
            .map(|ns| query_server(ns, &fqdn, types, limit, start))
            .collect(),
    )
    .await;

    let mut evidence = DnsEvidence {
        query: fqdn.clone(),
        types: types.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    if servers.len() > 1 {
        evidence.servers = servers
            .iter()
            .zip(&results)
            .map(|(ns, r)| ServerAnswer {
                server: ns.addr.to_string(),
                source: ns.source,
                rcode: r.rcode.map(rcode_str),
                class: r.error.as_ref().map(|e| e.0),
                addresses: addresses_of(&r.records)
                    .into_iter()
                    .map(|(ip, _)| ip)
                    .collect(),
                duration_ms: ms(r.elapsed),
            })
            .collect();
    }

    let chosen = results.iter().position(ServerResult::definitive);
    // The time a failing-over client would have waited: every earlier server's failure
    // plus the chosen one's answer.
    let upto = chosen.unwrap_or(results.len().saturating_sub(1));
    let duration = results[..=upto.min(results.len().saturating_sub(1))]
        .iter()
        .map(|r| r.elapsed)
        .max()
        .unwrap_or_default();

    let mut warnings = Vec::new();
    let mut ctx = Context::new(name);
    ctx.resolver_sources = servers.iter().map(|s| s.source).collect();

    let Some(ci) = chosen else {
        // No server gave a usable answer: report the first server's failure, because
        // that is the server every client tries first.
        let (mut class, mut message) = results
            .first()
            .and_then(|r| r.error.clone())
            .unwrap_or((FailureClass::DnsError, "no DNS server configured".into()));
        if class == FailureClass::DnsTimeout && cut_by_deadline {
            class = FailureClass::Deadline;
            message = format!("run deadline reached while resolving ({message})");
        }
        if results.len() > 1 {
            let all: Vec<String> = servers
                .iter()
                .zip(&results)
                .map(|(ns, r)| {
                    format!(
                        "{} {}",
                        ns.addr,
                        r.error.as_ref().map(|e| e.0.as_str()).unwrap_or("ok")
                    )
                })
                .collect();
            message = format!("{message}; every server failed: {}", all.join(", "));
        }
        let mut failure = diagnose::failure(Some(Layer::Dns), class, message, &ctx);
        if let Some(az) = azure
            && class == FailureClass::DnsServfail
            && asks_addresses(types)
        {
            let custom = Custom {
                server: &servers[0],
                said: "SERVFAIL".into(),
            };
            let cmp = Compare {
                azure: az,
                fqdn: &fqdn,
                types,
                timeout,
                budget,
            };
            if let Some(f) = cmp.run(&custom, name, &mut evidence, &mut warnings).await {
                failure = f;
            }
        }
        return DnsOutcome {
            result: LayerResult {
                layer: Layer::Dns,
                ok: false,
                duration_ms: ms(duration),
                error: Some(failure),
                evidence: Evidence::Dns(evidence),
            },
            addresses: Vec::new(),
            warnings,
        };
    };

    let used = &results[ci];
    evidence.server = Some(servers[ci].addr.to_string());
    evidence.rcode = used.rcode.map(rcode_str);
    evidence.cname_chain = cname_chain(&fqdn, &used.records);
    let addrs = addresses_of(&used.records);
    evidence.addresses = addrs
        .iter()
        .map(|(ip, ttl)| AddressInfo {
            ip: *ip,
            ttl: *ttl,
            class: AddrClass::of(*ip),
        })
        .collect();
    evidence.records = used
        .records
        .iter()
        .filter(|r| !matches!(r.data, RData::A(_) | RData::AAAA(_) | RData::CNAME(_)))
        .filter(|r| types.contains(&r.record_type()))
        .map(|r| RecordInfo {
            name: r.name.to_string(),
            rtype: r.record_type().to_string(),
            ttl: r.ttl,
            data: r.data.to_string(),
        })
        .collect();
    if types.contains(&RecordType::CNAME) {
        // A CNAME query's answer *is* the chain; show it as records too.
        evidence
            .records
            .extend(evidence.cname_chain.iter().map(|h| RecordInfo {
                name: h.name.clone(),
                rtype: "CNAME".into(),
                ttl: h.ttl,
                data: h.target.clone(),
            }));
    }
    ctx.chain = evidence
        .cname_chain
        .iter()
        .map(|h| h.target.clone())
        .collect();
    ctx.addresses = addrs.iter().map(|(ip, _)| *ip).collect();

    if ci > 0 {
        warnings.push(format!(
            "DNS server {} ({}) gave no usable answer ({}); the answer came from {} ({})",
            servers[0].addr,
            servers[0].source,
            results[0]
                .error
                .as_ref()
                .map(|e| e.1.as_str())
                .unwrap_or("?"),
            servers[ci].addr,
            servers[ci].source
        ));
    }
    if let Some(w) = disagreement(servers, &results) {
        evidence.disagreement = true;
        warnings.push(w);
    }

    let mut failure = judge(used, types, &evidence, expect, &ctx);
    let suspect = match failure.as_ref().map(|f| f.class) {
        Some(
            FailureClass::DnsNxdomain | FailureClass::DnsNoRecords | FailureClass::DnsPublicAddress,
        ) => true,
        Some(_) => false,
        None => privatelink_public(&evidence),
    };
    if let Some(az) = azure
        && suspect
        && asks_addresses(types)
    {
        let said = match evidence
            .addresses
            .iter()
            .find(|a| a.class == AddrClass::Public)
        {
            Some(a) => format!("public {}", a.ip),
            None => evidence.rcode.clone().unwrap_or_else(|| "no answer".into()),
        };
        let custom = Custom {
            server: &servers[ci],
            said,
        };
        let cmp = Compare {
            azure: az,
            fqdn: &fqdn,
            types,
            timeout,
            budget,
        };
        if let Some(f) = cmp.run(&custom, name, &mut evidence, &mut warnings).await {
            failure = Some(f);
        }
    }
    let ok = failure.is_none();
    DnsOutcome {
        result: LayerResult {
            layer: Layer::Dns,
            ok,
            duration_ms: ms(duration),
            error: failure,
            evidence: Evidence::Dns(evidence),
        },
        addresses: if ok { ctx.addresses } else { Vec::new() },
        warnings,
    }
}

fn asks_addresses(types: &[RecordType]) -> bool {
    types
        .iter()
        .all(|t| matches!(t, RecordType::A | RecordType::AAAA))
}

/// A public answer reached through a `privatelink` hop: the symptom of a private DNS
/// zone the resolver cannot see.
fn privatelink_public(ev: &DnsEvidence) -> bool {
    ev.cname_chain
        .iter()
        .any(|h| h.target.split('.').any(|l| l == "privatelink"))
        && ev.addresses.iter().any(|a| a.class == AddrClass::Public)
}

/// The custom server whose answer is in doubt, and what it said.
struct Custom<'a> {
    server: &'a Nameserver,
    said: String,
}

/// Asking Azure DNS the same question.
struct Compare<'a> {
    azure: &'a Nameserver,
    fqdn: &'a str,
    types: &'a [RecordType],
    timeout: Duration,
    budget: &'a Budget,
}

impl Compare<'_> {
    /// Records Azure DNS's answer in `ev` and returns `dns.divergent` when it resolves
    /// the name to private addresses only; otherwise the caller's class stands, with a
    /// warning saying whether Azure DNS agreed.
    async fn run(
        &self,
        custom: &Custom<'_>,
        name: &str,
        ev: &mut DnsEvidence,
        warnings: &mut Vec<String>,
    ) -> Option<Failure> {
        let (limit, _) = self.budget.limit(self.timeout);
        if limit.is_zero() {
            return None;
        }
        let r = query_server(self.azure, self.fqdn, self.types, limit, Instant::now()).await;
        let addrs: Vec<IpAddr> = addresses_of(&r.records)
            .into_iter()
            .map(|(ip, _)| ip)
            .collect();
        ev.azure_dns = Some(ServerAnswer {
            server: self.azure.addr.to_string(),
            source: self.azure.source,
            rcode: r.rcode.map(rcode_str),
            class: r.error.as_ref().map(|e| e.0),
            addresses: addrs.clone(),
            duration_ms: ms(r.elapsed),
        });
        let who = format!("{} ({})", custom.server.addr, custom.server.source);
        let private = !addrs.is_empty()
            && r.definitive()
            && addrs
                .iter()
                .all(|ip| AddrClass::of(*ip) == AddrClass::Private);
        if !private {
            let azure_said = match (&r.error, addrs.is_empty()) {
                (Some((class, _)), _) => format!("could not answer ({class})"),
                (None, true) => format!(
                    "agrees ({})",
                    r.rcode.map(rcode_str).unwrap_or_else(|| "no answer".into())
                ),
                (None, false) => format!(
                    "answers {} too",
                    addrs
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            warnings.push(format!(
                "compared with Azure DNS {}: it {azure_said}, so {who} is not the only one that cannot resolve {name}: look at the record or the zone, not the forwarder",
                self.azure.addr
            ));
            return None;
        }
        let chain = cname_chain(self.fqdn, &r.records);
        let mut ctx = Context::new(name);
        // Either chain may name the privatelink zone the hint should point at.
        ctx.chain = chain
            .iter()
            .chain(&ev.cname_chain)
            .map(|h| h.target.clone())
            .collect();
        ctx.addresses = addrs.clone();
        let via = chain
            .last()
            .map(|h| format!(" (via {})", h.target))
            .unwrap_or_default();
        let message = format!(
            "{who} says {} for {name}, but Azure DNS {} resolves it to private {}{via}: the custom DNS server does not forward this zone to Azure DNS",
            custom.said,
            self.azure.addr,
            addrs
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        );
        Some(diagnose::failure(
            Some(Layer::Dns),
            FailureClass::DnsDivergent,
            message,
            &ctx,
        ))
    }
}

/// Turns a definitive answer into pass/fail: NXDOMAIN, NODATA, then the expectations.
fn judge(
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
fn disagreement(servers: &[Nameserver], results: &[ServerResult]) -> Option<String> {
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

async fn query_server(
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

fn classify(e: &NetError, ns: &Nameserver) -> (FailureClass, String) {
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

fn rcode_str(c: ResponseCode) -> String {
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
fn cname_chain(fqdn: &str, records: &[hickory_resolver::proto::rr::Record]) -> Vec<CnameHop> {
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

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// A/AAAA answers in answer order, IPv4 first (the order a client tries them).
fn addresses_of(records: &[hickory_resolver::proto::rr::Record]) -> Vec<(IpAddr, u32)> {
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
async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
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
