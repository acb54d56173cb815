//! One target through its layers, stopping at the first that fails: DNS (for a name),
//! the policy check on the resolved addresses, TCP, then one `match` on the spec for the
//! layers above the connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::hop::Connector;
use super::identity::Tokens;
use super::step::Step;
use super::{Engine, dns, http, smb, tcp, tds};
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::policy::AddressPolicy;
use crate::report::{Evidence, FailureClass, Layer, LayerResult, Skipped, TargetReport, ms};
use crate::spec::{Host, TargetConfig, TargetSpec};

mod data;
mod messaging;
mod services;
mod steps;
use steps::smb_transport_class;

/// The layers run so far and the warnings they raised, with the target's start: each
/// layer's `start_ms` is the instant the engine started it, measured from `origin`.
struct Ran {
    origin: Instant,
    layers: Vec<LayerResult>,
    warnings: Vec<String>,
}

impl Ran {
    fn new(origin: Instant) -> Ran {
        Ran {
            origin,
            layers: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Runs one layer (`layer` is its `run` future, which does nothing until awaited, so
    /// the start is taken right before the layer's first step) and records it.
    async fn run<N>(&mut self, layer: impl Future<Output = Step<N>>) -> Option<N> {
        let began = Instant::now();
        let step = layer.await;
        self.push(began, step)
    }

    /// Records a layer's step begun at `began` and hands on what the next layer builds
    /// on, if it passed.
    fn push<N>(&mut self, began: Instant, step: Step<N>) -> Option<N> {
        self.warnings.extend(step.warnings);
        let ok = step.result.ok;
        let mut result = step.result;
        result.start_ms = self.offset(began);
        self.layers.push(result);
        step.next.filter(|_| ok)
    }

    fn offset(&self, at: Instant) -> f64 {
        ms(at.saturating_duration_since(self.origin))
    }

    /// A data-service layer (`layer`: its `run` future) and, before it in the report, the
    /// TLS layer's result if TLS ran inside it (it began when the handshake did, after the
    /// data-service layer itself).
    async fn run_tls_and(&mut self, layer: impl Future<Output = super::tls_upgrade::Ran>) {
        let began = Instant::now();
        let out = layer.await;
        if let Some((tls_began, tls)) = out.tls {
            self.push::<()>(tls_began, Step::last(tls));
        }
        self.push(began, out.step);
    }
}

impl Engine {
    pub(super) async fn probe(
        &self,
        t: &TargetConfig,
        budget: &Budget,
        policy: Option<&dyn AddressPolicy>,
        tokens: &Tokens,
    ) -> TargetReport {
        let start = Instant::now();
        let plan = t.spec.layers();
        let mut ran = Ran::new(start);
        let mut ctx = Context::new(t.spec.dns_name().unwrap_or_default());
        ctx.resolver_sources = self
            .environment
            .resolvers
            .iter()
            .map(|r| r.source)
            .collect();

        let addresses: Vec<IpAddr> = match t.spec.dns_name() {
            Some(name) => {
                let qtype = match &t.spec {
                    TargetSpec::Dns { qtype, .. } => Some(*qtype),
                    _ => None,
                };
                let types = dns::types_for(qtype);
                let step = dns::DnsStep {
                    servers: &self.nameservers,
                    name,
                    types: &types,
                    timeout: self.settings.timeouts.dns,
                    expect: &t.expect,
                    azure: self.azure_dns.as_ref(),
                };
                match ran.run(dns::run(step, budget)).await {
                    Some(a) => a,
                    None => return finish(t, &plan, ran, start),
                }
            }
            None => match t.spec.host() {
                Some(Host::Ip(ip)) => vec![*ip],
                _ => Vec::new(),
            },
        };
        ctx.addresses = addresses.clone();
        // The CNAME chain DNS saw, so the hints of the layers above know a privatelink hop.
        if let Some(Evidence::Dns(d)) = ran.layers.last().map(|l| &l.evidence) {
            ctx.chain = d.cname_chain.iter().map(|h| h.target.clone()).collect();
        }
        let route: Vec<crate::report::AddressRoute> = addresses
            .iter()
            .map(|ip| crate::platform::azure::route(&self.facts, *ip))
            .collect();
        if let Some(w) = ran.layers.last().and_then(privatelink_public_warning) {
            ran.warnings.push(w);
        }
        // Between DNS and TCP, on exactly the addresses the next layers will use.
        if let Some(policy) = policy {
            let port = t.spec.port();
            if let Some(d) = addresses
                .iter()
                .find_map(|ip| policy.check(&t.spec, *ip, port).err())
            {
                let mut r = finish(t, &plan, ran, start);
                for s in &mut r.skipped {
                    s.reason = format!("not run: refused by policy ({})", d.rule);
                }
                r.failure = Some(diagnose::denied(d.rule, d.message, &ctx));
                r.ok = false;
                r.route = route;
                return r;
            }
        }

        if let Some(port) = t.spec.port() {
            let addrs: Vec<SocketAddr> = addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect();
            let settle = match t.spec {
                TargetSpec::Tcp { .. } => self.settings.tcp_settle,
                // Upper layers see a reset themselves, with more context.
                _ => Duration::ZERO,
            };
            let step = tcp::TcpStep {
                addrs: &addrs,
                all: t.all_addresses.unwrap_or(self.settings.all_addresses),
                timeout: self.settings.timeouts.tcp,
                settle,
                ctx: &ctx,
            };
            let began = Instant::now();
            let mut tcp_step = tcp::run(step, budget).await;
            if let TargetSpec::Smb { .. } = t.spec {
                smb_transport_class(&mut tcp_step.result);
            }
            if let Some(stream) = ran.push(began, tcp_step) {
                // Boxed: the TLS and HTTP futures are large (rustls, hyper), and inline
                // they would make every spawned probe that size, TCP-only ones included
                // (12 KB a task, measured with massif on 1,000 targets).
                Box::pin(self.above_tcp(t, stream, &ctx, budget, policy, tokens, &mut ran)).await;
            }
        }
        let mut r = finish(t, &plan, ran, start);
        r.route = route;
        r
    }

    /// The layers over the connection the TCP layer opened (so the route the report
    /// shows is the one they used): one arm per kind of target.
    #[allow(clippy::too_many_arguments)]
    async fn above_tcp(
        &self,
        t: &TargetConfig,
        stream: TcpStream,
        ctx: &Context,
        budget: &Budget,
        policy: Option<&dyn AddressPolicy>,
        tokens: &Tokens,
        ran: &mut Ran,
    ) {
        let name = t.tls.sni.clone().or_else(|| match t.spec.host() {
            Some(Host::Name(n)) => Some(n.clone()),
            _ => None,
        });
        match &t.spec {
            TargetSpec::Dns { .. } | TargetSpec::Tcp { .. } => {}
            TargetSpec::Amqp { .. } => self.amqp(t, stream, ctx, budget, tokens, ran).await,
            TargetSpec::Kafka { .. } => self.kafka(t, stream, ctx, budget, tokens, ran).await,
            TargetSpec::Tls { host, .. } => {
                self.tls(
                    t,
                    stream,
                    host,
                    name.as_deref(),
                    Vec::new(),
                    ctx,
                    budget,
                    ran,
                )
                .await;
            }
            TargetSpec::Http { url, host, .. } if self.service_target(t, host).is_some() => {
                let Some(target) = self.service_target(t, host) else {
                    return;
                };
                let https = url.scheme() == "https";
                self.service_layer(
                    t,
                    stream,
                    https,
                    host,
                    name.as_deref(),
                    target,
                    ctx,
                    budget,
                    tokens,
                    ran,
                )
                .await;
            }
            TargetSpec::Smb { .. } => {
                ran.run(smb::run(stream, smb::SmbStep { ctx }, budget))
                    .await;
            }
            TargetSpec::Http { url, host, .. } if url.scheme() == "https" => {
                if t.http.identity.is_some() {
                    ran.warnings.push(format!(
                        "authentication = \"managed_identity\" is for the service layer, and {host} is not a recognised Azure service host (or the target has HTTP checks of its own): no token was asked for; declare `service = \"…\"` for an emulator or a custom domain"
                    ));
                }
                let alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                let io = self.tls(t, stream, host, name.as_deref(), alpn, ctx, budget, ran);
                if let Some(io) = io.await {
                    let h2 = io.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                    let step = self.http_step(t, url, h2, name, ctx);
                    ran.run(http::run(io, step, budget)).await;
                }
            }
            TargetSpec::Http { url, .. } => {
                let step = self.http_step(t, url, false, name, ctx);
                ran.run(http::run(stream, step, budget)).await;
            }
            TargetSpec::Sql {
                host,
                port,
                database,
                ..
            } => {
                let mut ctx = ctx.clone();
                let server_name = tds::server_name(name.as_deref(), stream.peer_addr().ok());
                ctx.tls_name = Some(server_name.to_str().into_owned());
                let hop = Connector {
                    engine: self,
                    origin: ran.origin,
                    spec: &t.spec,
                    policy,
                };
                let step = tds::TdsStep {
                    server_name,
                    host: match host {
                        Host::Name(n) => n.clone(),
                        Host::Ip(ip) => ip.to_string(),
                    },
                    port: *port,
                    database: database.as_deref(),
                    auth: &t.tds.auth,
                    strict: t.tds.strict,
                    query: &t.tds.query,
                    roots: self.roots_for(&t.tls),
                    insecure: t.tls.insecure,
                    tls_timeout: self.settings.timeouts.tls,
                    login_timeout: self.settings.timeouts.login,
                    query_timeout: self.settings.timeouts.query,
                    tokens,
                    ctx: &ctx,
                    hop: &hop,
                };
                ran.run(tds::run(stream, step, budget)).await;
            }
            TargetSpec::Postgres { .. } | TargetSpec::Mysql { .. } | TargetSpec::Redis { .. } => {
                self.data_service(t, stream, name, ctx, budget, tokens, ran)
                    .await;
            }
        }
    }
}

/// Turns the layers that ran into the target's verdict: `reached`, `ok`, the failure,
/// the skipped layers, and the `max_ms` expectation.
fn finish(t: &TargetConfig, plan: &[Layer], ran: Ran, start: Instant) -> TargetReport {
    let Ran {
        layers, warnings, ..
    } = ran;
    let elapsed = start.elapsed();
    let mut failure = layers.iter().find_map(|l| l.error.clone());
    let reached = layers
        .iter()
        .rev()
        .find(|l| l.ok || l.error.as_ref().is_some_and(|f| f.class.layer_answered()))
        .map(|l| l.layer);
    let mut ran: Vec<Layer> = layers.iter().map(|l| l.layer).collect();
    // The service layer takes the HTTP layer's place on a service host.
    if ran.contains(&Layer::Service) {
        ran.push(Layer::Http);
    }
    let mut skipped = Vec::new();
    for layer in plan.iter().filter(|l| !ran.contains(l)) {
        let reason = match &failure {
            Some(f) => format!(
                "not run: {} failed first",
                f.layer.map(|l| l.as_str()).unwrap_or("the run")
            ),
            None => "not run".to_string(),
        };
        skipped.push(Skipped {
            layer: *layer,
            reason,
        });
    }
    if failure.is_none()
        && let Some(max) = t.expect.max_ms
        && elapsed > Duration::from_millis(max)
    {
        failure = Some(diagnose::failure(
            None,
            FailureClass::ExpectMaxMs,
            format!("took {:.1} ms, more than max_ms = {max}", ms(elapsed)),
            &Context::new(t.spec.dns_name().unwrap_or_default()),
        ));
    }
    TargetReport {
        name: t.name.clone(),
        target: t.spec.to_string(),
        source: t.source.clone(),
        ok: failure.is_none(),
        reached,
        failure,
        duration_ms: ms(elapsed),
        route: Vec::new(),
        layers,
        skipped,
        warnings,
    }
}

/// A name that went through a `privatelink` zone but ended on a public address passed
/// DNS (the target did not ask for `private`), yet it is the classic unlinked-zone symptom.
fn privatelink_public_warning(l: &LayerResult) -> Option<String> {
    let Evidence::Dns(d) = &l.evidence else {
        return None;
    };
    let zone = crate::zone::first_privatelink(d.cname_chain.iter().map(|h| h.target.as_str()))
        .and_then(crate::zone::privatelink_zone)?;
    let public = d
        .addresses
        .iter()
        .find(|a| a.class == crate::addr::AddrClass::Public)?;
    Some(format!(
        "{} goes through {zone} but resolved to public {}: if this app should reach it through a private endpoint, the zone {zone} is not linked to the VNet (or has no record for the name), or a custom DNS server does not forward it to 168.63.129.16. Set `private = true` to fail on this (dns.public_address)",
        d.query, public.ip
    ))
}

/// A target the deadline caught before it could start (or finish, if its task had to
/// be aborted).
pub(super) fn not_started(t: &TargetConfig) -> TargetReport {
    let f = diagnose::failure(
        None,
        FailureClass::Deadline,
        "run deadline reached before this target finished".into(),
        &Context::new(t.spec.dns_name().unwrap_or_default()),
    );
    TargetReport {
        name: t.name.clone(),
        target: t.spec.to_string(),
        source: t.source.clone(),
        ok: false,
        reached: None,
        failure: Some(f),
        duration_ms: 0.0,
        route: Vec::new(),
        layers: Vec::new(),
        skipped: t
            .spec
            .layers()
            .into_iter()
            .map(|layer| Skipped {
                layer,
                reason: "not run: run deadline".into(),
            })
            .collect(),
        warnings: Vec::new(),
    }
}
