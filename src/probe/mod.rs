//! The engine: one entry point (`Engine::run`) for the CLI, the HTTP trigger and the
//! timer. Targets run concurrently on tasks (never a thread each) under a semaphore;
//! each is a pipeline of layers that stops at the first failure; the run has one
//! deadline and every layer gets `min(its timeout, what remains)`.

pub mod dns;
pub mod http;
pub mod resolvers;
pub mod service;
pub mod smb;
pub mod tcp;
pub mod tds;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{ConfigError, EngineSettings, EnvLookup, TargetConfig, TlsOptions};
use crate::diagnose::{self, Context};
use crate::report::{
    Environment, FailureClass, Layer, LayerResult, Report, ResolverInfo, SCHEMA, Skipped,
    TargetReport, ms,
};
use crate::target::{Host, TargetSpec};

/// Time left in a run. Layers ask it for their limit so a layer timeout can never push a
/// run past its deadline, and so a timeout caused by the deadline is reported as
/// `deadline`, not blamed on the layer.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Instant,
}

impl Budget {
    pub fn until(deadline: Instant) -> Self {
        Budget { deadline }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The limit for a layer whose own timeout is `timeout`, and whether the run
    /// deadline (not the layer timeout) is what binds.
    pub fn limit(&self, timeout: Duration) -> (Duration, bool) {
        let left = self.remaining();
        if timeout >= left {
            (left, true)
        } else {
            (timeout, false)
        }
    }
}

/// Consulted between DNS and TCP with exactly the addresses the next layers will use.
/// The engine never resolves a name twice, so what passes here is what gets connected
/// to: a DNS answer that changes between check and use (rebinding) cannot slip through.
/// Ad-hoc runs pass one (`policy::Policy`); configured targets do not.
pub trait AddressPolicy: Send + Sync {
    fn check(
        &self,
        spec: &TargetSpec,
        ip: IpAddr,
        port: Option<u16>,
    ) -> Result<(), crate::policy::Denial>;
}

pub struct Engine {
    settings: EngineSettings,
    nameservers: Vec<resolvers::Nameserver>,
    environment: Environment,
    /// Site facts and DNS settings, for route reasoning.
    facts: crate::azure::Facts,
    /// Azure DNS, asked when a custom DNS server fails (see `dns::resolve_compared`).
    azure_dns: Option<resolvers::Nameserver>,
    /// System roots plus `engine.ca_file`, loaded on the first TLS probe and kept.
    roots: OnceLock<Arc<rustls::RootCertStore>>,
    /// The App Service managed-identity endpoint, when the app has one.
    identity: Option<tds::IdentityEndpoint>,
}

impl Engine {
    /// Builds the resolvers once. `explicit_source` labels `settings.dns_servers` in
    /// the report (`config` or `cli`).
    pub fn new(
        settings: EngineSettings,
        explicit_source: &str,
        env: EnvLookup,
    ) -> Result<Arc<Engine>, ConfigError> {
        let infos = resolvers::discover(
            &settings.dns_servers,
            explicit_source,
            env,
            &settings.resolv_conf,
        )
        .map_err(|m| ConfigError::new("engine.dns_servers", m))?;
        let nameservers = resolvers::build(&infos, settings.timeouts.dns)
            .map_err(|m| ConfigError::new("engine.dns_servers", m))?;
        let facts = crate::azure::facts(
            env,
            &settings.resolv_conf,
            &infos,
            settings.route_all,
            settings.azure_dns,
        );
        let azure_dns = match &facts.dns.azure_dns {
            Some(server) => resolvers::build(
                &[ResolverInfo {
                    server: server.clone(),
                    source: "azure_dns".into(),
                }],
                settings.timeouts.dns,
            )
            .map_err(|m| ConfigError::new("engine.azure_dns", m))?
            .pop(),
            None => None,
        };
        let environment = Environment {
            hostname: hostname(),
            on_azure: facts.on_azure,
            note: (!facts.on_azure).then(|| crate::azure::OFF_AZURE.to_string()),
            site: facts.site.clone(),
            dns: facts.dns.clone(),
            resolvers: infos,
            discovery: settings.discovery.clone(),
        };
        Ok(Arc::new(Engine {
            settings,
            nameservers,
            environment,
            facts,
            azure_dns,
            roots: OnceLock::new(),
            identity: identity_endpoint(env),
        }))
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    pub fn resolvers(&self) -> &[ResolverInfo] {
        &self.environment.resolvers
    }

    /// Runs `targets` and returns the report in target order. `deadline` shortens the
    /// configured run deadline (callers pass their own budget), never lengthens it.
    pub async fn run(
        self: &Arc<Self>,
        targets: &[TargetConfig],
        deadline: Option<Duration>,
    ) -> Report {
        self.run_with(targets, deadline, None).await
    }

    /// `run`, with every address a target resolves to checked by `policy` before any
    /// connection (ad-hoc requests).
    pub async fn run_with(
        self: &Arc<Self>,
        targets: &[TargetConfig],
        deadline: Option<Duration>,
        policy: Option<Arc<dyn AddressPolicy>>,
    ) -> Report {
        let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let start = Instant::now();
        let total = deadline.map_or(self.settings.deadline, |d| d.min(self.settings.deadline));
        let budget = Budget::until(start + total);
        let sem = Arc::new(Semaphore::new(self.settings.concurrency));

        let mut set = JoinSet::new();
        for (i, t) in targets.iter().enumerate() {
            let engine = Arc::clone(self);
            let target = t.clone();
            let sem = Arc::clone(&sem);
            let policy = policy.clone();
            set.spawn(async move {
                let Ok(Ok(_permit)) =
                    tokio::time::timeout_at(budget.deadline, sem.acquire_owned()).await
                else {
                    return (i, not_started(&target));
                };
                // A slot freed by a target the deadline just cut comes too late to use.
                if budget.remaining().is_zero() {
                    return (i, not_started(&target));
                }
                (i, engine.probe(&target, &budget, policy.as_deref()).await)
            });
        }

        let mut slots: Vec<Option<TargetReport>> = vec![None; targets.len()];
        // Layers already stop at the deadline; the grace only covers scheduling jitter.
        let hard_stop = budget.deadline + Duration::from_millis(250);
        loop {
            match tokio::time::timeout_at(hard_stop, set.join_next()).await {
                Ok(Some(Ok((i, r)))) => slots[i] = Some(r),
                Ok(Some(Err(e))) => tracing::error!(error = %e, "probe task failed"),
                Ok(None) => break,
                Err(_) => {
                    set.abort_all();
                    break;
                }
            }
        }
        let reports: Vec<TargetReport> = slots
            .into_iter()
            .zip(targets)
            .map(|(slot, t)| slot.unwrap_or_else(|| not_started(t)))
            .collect();
        let summary = Report::summarize(&reports);
        Report {
            schema: SCHEMA,
            version: env!("CARGO_PKG_VERSION"),
            started_at,
            duration_ms: ms(start.elapsed()),
            deadline_ms: ms(total),
            ok: summary.failed == 0,
            summary,
            environment: self.environment.clone(),
            targets: reports,
        }
    }

    /// One target through its layers, stopping at the first that fails.
    async fn probe(
        &self,
        t: &TargetConfig,
        budget: &Budget,
        policy: Option<&dyn AddressPolicy>,
    ) -> TargetReport {
        let start = Instant::now();
        let plan = t.spec.layers();
        let mut layers: Vec<LayerResult> = Vec::new();
        let mut warnings = Vec::new();
        let mut ctx = Context::new(t.spec.dns_name().unwrap_or_default());
        ctx.resolver_sources = self
            .environment
            .resolvers
            .iter()
            .map(|r| r.source.clone())
            .collect();

        let addresses: Vec<IpAddr> = match t.spec.dns_name() {
            Some(name) => {
                let qtype = match &t.spec {
                    TargetSpec::Dns { qtype, .. } => Some(*qtype),
                    _ => None,
                };
                let out = dns::resolve_compared(
                    &self.nameservers,
                    name,
                    &dns::types_for(qtype),
                    self.settings.timeouts.dns,
                    budget,
                    &t.expect,
                    self.azure_dns.as_ref(),
                )
                .await;
                warnings.extend(out.warnings);
                let ok = out.result.ok;
                layers.push(out.result);
                if !ok {
                    return finish(t, &plan, layers, warnings, start);
                }
                out.addresses
            }
            None => match t.spec.host() {
                Some(Host::Ip(ip)) => vec![*ip],
                _ => Vec::new(),
            },
        };
        ctx.addresses = addresses.clone();
        let route: Vec<crate::azure::AddressRoute> = addresses
            .iter()
            .map(|ip| crate::azure::route(&self.facts, *ip))
            .collect();
        if let Some(w) = layers.last().and_then(privatelink_public_warning) {
            warnings.push(w);
        }
        // Between DNS and TCP, on exactly the addresses the next layers will use.
        if let Some(policy) = policy {
            let port = t.spec.port();
            if let Some(d) = addresses
                .iter()
                .find_map(|ip| policy.check(&t.spec, *ip, port).err())
            {
                let mut r = finish(t, &plan, layers, warnings, start);
                for s in &mut r.skipped {
                    s.reason = format!("not run: refused by policy ({})", d.rule);
                }
                r.failure = Some(diagnose::denied(d.rule, d.message, &ctx));
                r.ok = false;
                r.route = route;
                return r;
            }
        }

        if plan.contains(&Layer::Tcp) {
            let port = t.spec.port().unwrap_or_default();
            let addrs: Vec<SocketAddr> = addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect();
            let settle = match t.spec {
                TargetSpec::Tcp { .. } => self.settings.tcp_settle,
                // Upper layers see a reset themselves, with more context.
                _ => Duration::ZERO,
            };
            let out = tcp::connect(
                tcp::TcpPlan {
                    addrs: &addrs,
                    all: t.all_addresses.unwrap_or(self.settings.all_addresses),
                    timeout: self.settings.timeouts.tcp,
                    settle,
                    ctx: &ctx,
                },
                budget,
            )
            .await;
            warnings.extend(out.warnings);
            layers.push(out.result);
            if let Some(stream) = out.stream {
                // Boxed: the TLS and HTTP futures are large (rustls, hyper), and inline
                // they would make every spawned probe that size, TCP-only ones included
                // (12 KB a task, measured with massif on 1,000 targets).
                Box::pin(self.upper_layers(t, &plan, stream, &ctx, budget, &mut layers)).await;
            }
        }
        let mut r = finish(t, &plan, layers, warnings, start);
        r.route = route;
        r
    }

    /// TLS and HTTP over the connection the TCP layer opened: the route the report
    /// shows is the one these layers used.
    async fn upper_layers(
        &self,
        t: &TargetConfig,
        plan: &[Layer],
        stream: tokio::net::TcpStream,
        ctx: &Context,
        budget: &Budget,
        layers: &mut Vec<LayerResult>,
    ) {
        let peer_ip = stream.peer_addr().map(|a| a.ip()).ok();
        let name = t.tls.sni.clone().or_else(|| match t.spec.host() {
            Some(Host::Name(n)) => Some(n.clone()),
            _ => None,
        });
        if plan.contains(&Layer::Tds) {
            layers.push(self.tds(t, stream, name, ctx, budget).await);
            return;
        }
        if plan.contains(&Layer::Tls) {
            let server_name = match (&name, t.spec.host(), peer_ip) {
                (Some(n), _, _) => rustls::pki_types::ServerName::try_from(n.clone()).ok(),
                (None, Some(Host::Ip(ip)), _) => Some((*ip).into()),
                (None, _, Some(ip)) => Some(ip.into()),
                _ => None,
            };
            let Some(server_name) = server_name else {
                return;
            };
            let alpn = if plan.contains(&Layer::Http) {
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            } else {
                Vec::new()
            };
            let out = tls::handshake(
                stream,
                tls::TlsPlan {
                    server_name,
                    roots: self.roots_for(&t.tls),
                    insecure: t.tls.insecure,
                    alpn,
                    timeout: self.settings.timeouts.tls,
                    cert_days_left: t.tls.cert_days_left,
                    ctx,
                },
                budget,
            )
            .await;
            let ok = out.result.ok;
            layers.push(out.result);
            if let (true, Some(tls_stream)) = (ok, out.stream)
                && plan.contains(&Layer::Http)
            {
                let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                layers.push(self.http(t, tls_stream, h2, name, ctx, budget).await);
            }
        } else if plan.contains(&Layer::Http) {
            layers.push(self.http(t, stream, false, name, ctx, budget).await);
        }
    }

    async fn http<IO>(
        &self,
        t: &TargetConfig,
        io: IO,
        h2: bool,
        sni: Option<String>,
        ctx: &Context,
        budget: &Budget,
    ) -> LayerResult
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let TargetSpec::Http { url, .. } = &t.spec else {
            unreachable!("the HTTP layer is planned only for http(s) targets")
        };
        // With `sni` set for an IP target, the virtual host is that name too.
        let host_name = t
            .tls
            .sni
            .clone()
            .or(sni)
            .unwrap_or_else(|| url.host_str().unwrap_or("").to_string());
        let host = match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name,
        };
        http::request(
            io,
            http::HttpPlan {
                url,
                opts: &t.http,
                host,
                h2,
                ttfb_timeout: self.settings.timeouts.http,
                body_timeout: self.settings.timeouts.body,
                enforce_body_limit: t.http.enforce_body_limit,
                ctx,
            },
            budget,
        )
        .await
    }

    /// PRELOGIN, TLS, and with credentials the login and query; a routing redirect is
    /// followed through this engine's own DNS and TCP layers.
    async fn tds(
        &self,
        t: &TargetConfig,
        stream: tokio::net::TcpStream,
        name: Option<String>,
        ctx: &Context,
        budget: &Budget,
    ) -> LayerResult {
        let start = Instant::now();
        let TargetSpec::Sql {
            host,
            port,
            database,
            ..
        } = &t.spec
        else {
            unreachable!("the TDS layer is planned only for sqlserver targets")
        };
        let peer = stream.peer_addr().ok();
        let host_str = match host {
            Host::Name(n) => n.clone(),
            Host::Ip(ip) => ip.to_string(),
        };
        let server_name = match (&name, peer) {
            (Some(n), _) => rustls::pki_types::ServerName::try_from(n.clone()).ok(),
            (None, Some(p)) => Some(p.ip().into()),
            (None, None) => None,
        };
        let mut ctx = ctx.clone();
        ctx.tls_name = server_name.as_ref().map(|s| s.to_str().into_owned());
        let mut ca_pem = self.settings.ca_pem.clone();
        ca_pem.extend_from_slice(&t.tls.ca_pem);
        let plan = tds::TdsPlan {
            server_name: server_name.unwrap_or_else(|| {
                rustls::pki_types::ServerName::try_from("localhost").expect("static name")
            }),
            host: host_str,
            port: *port,
            database: database.as_deref(),
            auth: &t.tds.auth,
            strict: t.tds.strict,
            query: &t.tds.query,
            roots: self.roots_for(&t.tls),
            ca_pem: (!ca_pem.is_empty()).then_some(ca_pem),
            insecure: t.tls.insecure,
            tls_timeout: self.settings.timeouts.tls,
            login_timeout: self.settings.timeouts.login,
            query_timeout: self.settings.timeouts.query,
            identity: self.identity.as_ref(),
            ctx: &ctx,
        };
        let mut ev = crate::report::TdsEvidence::default();
        let mut redirect_target = None;
        let res = async {
            tds::prelogin_and_tls(stream, &plan, budget, &mut ev).await?;
            if t.tds.auth == tds::LoginAuth::None {
                return Ok(());
            }
            let Some(peer) = peer else {
                return Err((
                    FailureClass::TdsLoginFailed,
                    "the connection has no peer address".to_string(),
                ));
            };
            match tds::login(peer, &plan, budget, &mut ev).await? {
                tds::Login::Done => Ok(()),
                tds::Login::Redirect { host, port } => {
                    redirect_target = Some(format!("{host}:{port}"));
                    self.follow_redirect(&host, port, &plan, budget, &mut ev)
                        .await
                }
            }
        }
        .await;
        let sql_error = ev.sql_error.as_ref().map(|e| e.number);
        let error = res.err().map(|(class, message)| {
            let mut ctx = plan.ctx.clone();
            ctx.sql_error = sql_error;
            ctx.redirect = redirect_target;
            diagnose::failure(Some(Layer::Tds), class, message, &ctx)
        });
        LayerResult {
            layer: Layer::Tds,
            ok: error.is_none(),
            duration_ms: crate::report::ms(start.elapsed()),
            error,
            evidence: crate::report::Evidence::Tds(Box::new(ev)),
        }
    }

    async fn follow_redirect(
        &self,
        host: &str,
        port: u16,
        plan: &tds::TdsPlan<'_>,
        budget: &Budget,
        ev: &mut crate::report::TdsEvidence,
    ) -> Result<(), tds::Fail> {
        let target = format!("{host}:{port}");
        let mut hop = Vec::new();
        let addrs: Vec<IpAddr> = match crate::target::parse_host(host) {
            Ok(Host::Ip(ip)) => vec![ip],
            Ok(Host::Name(n)) => {
                let out = dns::resolve(
                    &self.nameservers,
                    &n,
                    &dns::types_for(None),
                    self.settings.timeouts.dns,
                    budget,
                    &crate::config::Expectations::default(),
                )
                .await;
                let failure = out.result.error.clone();
                hop.push(out.result);
                if let Some(f) = failure {
                    ev.redirect = Some(crate::report::RedirectEvidence {
                        target: target.clone(),
                        layers: hop,
                    });
                    return Err((
                        FailureClass::TdsRedirect,
                        format!("redirect to {target}: {}: {}", f.class, f.message),
                    ));
                }
                out.addresses
            }
            Err(e) => {
                return Err((
                    FailureClass::TdsRedirect,
                    format!("redirect to an unusable host `{host}`: {e}"),
                ));
            }
        };
        let sockaddrs: Vec<SocketAddr> =
            addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
        let out = tcp::connect(
            tcp::TcpPlan {
                addrs: &sockaddrs,
                all: false,
                timeout: self.settings.timeouts.tcp,
                settle: Duration::ZERO,
                ctx: plan.ctx,
            },
            budget,
        )
        .await;
        let failure = out.result.error.clone();
        hop.push(out.result);
        ev.redirect = Some(crate::report::RedirectEvidence {
            target: target.clone(),
            layers: hop,
        });
        let Some(stream) = out.stream else {
            let (class, msg) = failure
                .map(|f| (f.class, f.message))
                .unwrap_or((FailureClass::TcpError, "no connection".into()));
            return Err((
                FailureClass::TdsRedirect,
                format!("redirect to {target}: {class}: {msg}"),
            ));
        };
        match tds::login_on(stream, host, port, plan, budget, ev).await? {
            tds::Login::Done => Ok(()),
            tds::Login::Redirect { host, port } => Err((
                FailureClass::TdsRedirect,
                format!(
                    "redirected again, to {host}:{port}: the probe follows one redirect, as clients do"
                ),
            )),
        }
    }

    fn roots_for(&self, opts: &TlsOptions) -> Arc<rustls::RootCertStore> {
        let base = self
            .roots
            .get_or_init(|| Arc::new(tls::roots(&self.settings.ca_roots).0))
            .clone();
        if opts.ca_roots.is_empty() {
            return base;
        }
        let mut store = (*base).clone();
        for c in &opts.ca_roots {
            let _ = store.add(c.clone());
        }
        Arc::new(store)
    }
}

/// Turns the layers that ran into the target's verdict: `reached`, `ok`, the failure,
/// the skipped layers, and the `max_ms` expectation.
fn finish(
    t: &TargetConfig,
    plan: &[Layer],
    layers: Vec<LayerResult>,
    warnings: Vec<String>,
    start: Instant,
) -> TargetReport {
    let elapsed = start.elapsed();
    let mut failure = layers.iter().find_map(|l| l.error.clone());
    let reached = layers
        .iter()
        .rev()
        .find(|l| l.ok || l.error.as_ref().is_some_and(|f| f.class.layer_answered()))
        .map(|l| l.layer);
    let ran: Vec<Layer> = layers.iter().map(|l| l.layer).collect();
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
    let crate::report::Evidence::Dns(d) = &l.evidence else {
        return None;
    };
    let hop = d
        .cname_chain
        .iter()
        .find(|h| h.target.split('.').any(|x| x == "privatelink"))?;
    let public = d
        .addresses
        .iter()
        .find(|a| a.class == crate::addr::AddrClass::Public)?;
    let zone = hop
        .target
        .find("privatelink.")
        .map(|i| hop.target[i..].trim_end_matches('.').to_string())
        .unwrap_or_default();
    Some(format!(
        "{} goes through {zone} but resolved to public {}: if this app should reach it through a private endpoint, the zone {zone} is not linked to the VNet (or has no record for the name), or a custom DNS server does not forward it to 168.63.129.16. Set `private = true` to fail on this (dns.public_address)",
        d.query, public.ip
    ))
}

/// A target the deadline caught before it could start (or finish, if its task had to
/// be aborted).
fn not_started(t: &TargetConfig) -> TargetReport {
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

/// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, as App Service sets them for a managed identity.
fn identity_endpoint(env: EnvLookup) -> Option<tds::IdentityEndpoint> {
    let url = url::Url::parse(&env("IDENTITY_ENDPOINT")?).ok()?;
    Some(tds::IdentityEndpoint {
        url,
        header: crate::secret::Secret::new(env("IDENTITY_HEADER")?),
    })
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budget_arithmetic() {
        let b = Budget::until(Instant::now() + Duration::from_secs(10));
        // (layer timeout, elapsed before asking) -> (limit, cut by deadline)
        let table = [
            (2, 0, 2, false),
            (10, 0, 10, true),
            (30, 0, 10, true),
            (2, 7, 2, false),
            (5, 7, 3, true),
            (5, 12, 0, true),
        ];
        let mut elapsed = 0;
        for (timeout, at, want, cut) in table {
            tokio::time::advance(Duration::from_secs(at - elapsed)).await;
            elapsed = at;
            let (limit, c) = b.limit(Duration::from_secs(timeout));
            assert_eq!(
                (limit, c),
                (Duration::from_secs(want), cut),
                "timeout {timeout} at {at}s"
            );
        }
    }
}
