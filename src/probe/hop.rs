//! The connector the TDS layer asks for a redirect's next hop: the engine's own DNS and
//! TCP layers, and the address policy when the run has one, so the hop is proven the
//! same way as the target itself.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use super::tds::{Hop, HopError, NextHop};
use super::{Engine, dns, tcp};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::policy::AddressPolicy;
use crate::spec::{Expectations, Host, TargetSpec, uri};

pub(super) struct Connector<'a> {
    pub engine: &'a Engine,
    /// The target's start: the hop's layers' `start_ms` are measured from it.
    pub origin: Instant,
    pub spec: &'a TargetSpec,
    pub policy: Option<&'a dyn AddressPolicy>,
}

impl NextHop for Connector<'_> {
    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        ctx: &'a Context,
        budget: &'a Budget,
    ) -> Pin<Box<dyn Future<Output = Result<Hop, HopError>> + Send + 'a>> {
        Box::pin(async move {
            let mut layers = Vec::new();
            let stamp = |mut r: crate::report::LayerResult, began: Instant| {
                r.start_ms = crate::report::ms(began.saturating_duration_since(self.origin));
                r
            };
            let addrs: Vec<IpAddr> = match uri::parse_host(host) {
                Ok(Host::Ip(ip)) => vec![ip],
                Ok(Host::Name(n)) => {
                    let types = dns::types_for(None);
                    let began = Instant::now();
                    let out = dns::run(
                        dns::DnsStep {
                            servers: &self.engine.nameservers,
                            name: &n,
                            types: &types,
                            timeout: self.engine.settings.timeouts.dns,
                            expect: &Expectations::default(),
                            azure: None,
                        },
                        budget,
                    )
                    .await;
                    layers.push(stamp(out.result, began));
                    match out.next {
                        Some(a) => a,
                        None => {
                            return Ok(Hop {
                                layers,
                                stream: None,
                            });
                        }
                    }
                }
                Err(e) => return Err(HopError::Unusable(e.0)),
            };
            if let Some(policy) = self.policy
                && let Some(d) = addrs
                    .iter()
                    .find_map(|ip| policy.check(self.spec, *ip, Some(port)).err())
            {
                return Err(HopError::Refused {
                    rule: d.rule,
                    message: d.message,
                });
            }
            let sockaddrs: Vec<SocketAddr> =
                addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
            let began = Instant::now();
            let out = tcp::run(
                tcp::TcpStep {
                    addrs: &sockaddrs,
                    all: false,
                    timeout: self.engine.settings.timeouts.tcp,
                    settle: Duration::ZERO,
                    ctx,
                },
                budget,
            )
            .await;
            layers.push(stamp(out.result, began));
            Ok(Hop {
                layers,
                stream: out.next,
            })
        })
    }
}
