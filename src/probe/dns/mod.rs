//! DNS layer: resolve a name through every configured server, use the first definitive
//! answer in server order (as a stub resolver fails over), and keep each server's own
//! answer so a split horizon (the #1 private-endpoint failure) is visible, not averaged.
//!
//! With a custom DNS server, a failure a missing forwarder would explain (NXDOMAIN,
//! SERVFAIL, no records, a public answer through a privatelink hop) is checked against
//! Azure DNS: when 168.63.129.16 resolves the name to a private address, the class is
//! `dns.divergent` (the custom server does not forward the privatelink zone); when it
//! agrees, the ordinary class stands, because then the record itself is the problem.

mod compare;
mod judge;
mod query;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

use self::compare::{Compare, Custom};
use self::judge::{asks_addresses, disagreement, judge, privatelink_public};
use self::query::{addresses_of, cname_chain, futures_join_all, query_server, rcode_str};
use super::step::Step;
use crate::addr::AddrClass;
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::platform::resolvers::Nameserver;
use crate::report::{
    AddressInfo, CnameHop, DnsEvidence, Evidence, Failure, FailureClass, Layer, LayerResult,
    RecordInfo, ServerAnswer, ms,
};
use crate::spec::{Expectations, QueryType};

/// The DNS layer's input. It hands on the addresses later layers must use (the very
/// ones reported, never a second lookup).
pub struct DnsStep<'a> {
    pub servers: &'a [Nameserver],
    pub name: &'a str,
    pub types: &'a [RecordType],
    pub timeout: Duration,
    pub expect: &'a Expectations,
    /// Azure DNS, asked when a custom server's failure looks like a missing forwarder.
    pub azure: Option<&'a Nameserver>,
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

/// Every server at once, the first definitive answer used, the expectations judged, and
/// a suspicious failure compared with Azure DNS.
pub async fn run(step: DnsStep<'_>, budget: &Budget) -> Step<Vec<IpAddr>> {
    let start = Instant::now();
    let fqdn = format!("{}.", step.name.trim_end_matches('.'));
    let (limit, cut_by_deadline) = budget.limit(step.timeout);

    // Ask every server at once: the comparison costs no extra wall time that way.
    let results: Vec<ServerResult> = futures_join_all(
        step.servers
            .iter()
            .map(|ns| query_server(ns, &fqdn, step.types, limit, start))
            .collect(),
    )
    .await;

    let mut evidence = DnsEvidence {
        query: fqdn.clone(),
        types: step.types.iter().map(|t| t.to_string()).collect(),
        servers: server_answers(step.servers, &results),
        ..Default::default()
    };

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
    let mut ctx = Context::new(step.name);
    ctx.resolver_sources = step.servers.iter().map(|s| s.source).collect();
    let cmp = step
        .azure
        .filter(|_| asks_addresses(step.types))
        .map(|azure| Compare {
            azure,
            fqdn: &fqdn,
            types: step.types,
            timeout: step.timeout,
            budget,
        });

    let Some(ci) = chosen else {
        let failure = no_answer(&step, &results, cut_by_deadline, &ctx);
        let failure = match (&cmp, failure.class) {
            (Some(cmp), FailureClass::DnsServfail) => {
                let custom = Custom {
                    server: &step.servers[0],
                    said: "SERVFAIL".into(),
                };
                cmp.run(&custom, step.name, &mut evidence, &mut warnings)
                    .await
                    .unwrap_or(failure)
            }
            _ => failure,
        };
        return Step {
            result: layer_result(duration, Some(failure), evidence),
            warnings,
            next: None,
        };
    };

    let used = &results[ci];
    evidence.server = Some(step.servers[ci].addr.to_string());
    answer_evidence(&mut evidence, used, &fqdn, step.types);
    ctx.chain = evidence
        .cname_chain
        .iter()
        .map(|h| h.target.clone())
        .collect();
    ctx.addresses = evidence.addresses.iter().map(|a| a.ip).collect();

    if ci > 0 {
        warnings.push(failed_over(step.servers, &results, ci));
    }
    if let Some(w) = disagreement(step.servers, &results) {
        evidence.disagreement = true;
        warnings.push(w);
    }

    let mut failure = judge(used, step.types, &evidence, step.expect, &ctx);
    let suspect = match failure.as_ref().map(|f| f.class) {
        Some(
            FailureClass::DnsNxdomain | FailureClass::DnsNoRecords | FailureClass::DnsPublicAddress,
        ) => true,
        Some(_) => false,
        None => privatelink_public(&evidence),
    };
    if let Some(cmp) = &cmp
        && suspect
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
            server: &step.servers[ci],
            said,
        };
        if let Some(f) = cmp
            .run(&custom, step.name, &mut evidence, &mut warnings)
            .await
        {
            failure = Some(f);
        }
    }
    let ok = failure.is_none();
    Step {
        result: layer_result(duration, failure, evidence),
        warnings,
        next: ok.then_some(ctx.addresses),
    }
}

fn layer_result(duration: Duration, failure: Option<Failure>, ev: DnsEvidence) -> LayerResult {
    LayerResult {
        layer: Layer::Dns,
        ok: failure.is_none(),
        start_ms: 0.0,
        duration_ms: ms(duration),
        error: failure,
        evidence: Evidence::Dns(ev),
    }
}

/// Every server's own answer, when more than one was asked.
fn server_answers(servers: &[Nameserver], results: &[ServerResult]) -> Vec<ServerAnswer> {
    if servers.len() <= 1 {
        return Vec::new();
    }
    servers
        .iter()
        .zip(results)
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
        .collect()
}

/// No server gave a usable answer: the first server's failure, because that is the
/// server every client tries first.
fn no_answer(
    step: &DnsStep<'_>,
    results: &[ServerResult],
    cut_by_deadline: bool,
    ctx: &Context,
) -> Failure {
    let (mut class, mut message) = results
        .first()
        .and_then(|r| r.error.clone())
        .unwrap_or((FailureClass::DnsError, "no DNS server configured".into()));
    if class == FailureClass::DnsTimeout && cut_by_deadline {
        class = FailureClass::Deadline;
        message = format!("run deadline reached while resolving ({message})");
    }
    if results.len() > 1 {
        let all: Vec<String> = step
            .servers
            .iter()
            .zip(results)
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
    diagnose::failure(Some(Layer::Dns), class, message, ctx)
}

/// The answer used: its server's rcode, the CNAME chain, the addresses and the other
/// records asked for.
fn answer_evidence(ev: &mut DnsEvidence, used: &ServerResult, fqdn: &str, types: &[RecordType]) {
    ev.rcode = used.rcode.map(rcode_str);
    ev.cname_chain = cname_chain(fqdn, &used.records);
    ev.addresses = addresses_of(&used.records)
        .iter()
        .map(|(ip, ttl)| AddressInfo {
            ip: *ip,
            ttl: *ttl,
            class: AddrClass::of(*ip),
        })
        .collect();
    ev.records = used
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
        ev.records.extend(ev.cname_chain.iter().map(|h| RecordInfo {
            name: h.name.clone(),
            rtype: "CNAME".into(),
            ttl: h.ttl,
            data: h.target.clone(),
        }));
    }
}

/// The first server gave no usable answer and a later one did.
fn failed_over(servers: &[Nameserver], results: &[ServerResult], ci: usize) -> String {
    format!(
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
    )
}
