//! Asking Azure DNS the same question when a custom DNS server failed in a way a
//! missing forwarder would explain (`dns.divergent`).

use super::*;

/// The custom server whose answer is in doubt, and what it said.
pub(super) struct Custom<'a> {
    pub(super) server: &'a Nameserver,
    pub(super) said: String,
}

/// Asking Azure DNS the same question.
pub(super) struct Compare<'a> {
    pub(super) azure: &'a Nameserver,
    pub(super) fqdn: &'a str,
    pub(super) types: &'a [RecordType],
    pub(super) timeout: Duration,
    pub(super) budget: &'a Budget,
}

impl Compare<'_> {
    /// Records Azure DNS's answer in `ev` and returns `dns.divergent` when it resolves
    /// the name to private addresses only; otherwise the caller's class stands, with a
    /// warning saying whether Azure DNS agreed.
    pub(super) async fn run(
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
