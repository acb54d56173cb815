//! The engine: one entry point (`Engine::run`) for the CLI, the HTTP trigger and the
//! timer. Targets run concurrently on tasks (never a thread each) under a semaphore;
//! each is a pipeline of layers that stops at the first failure; the run has one
//! deadline and every layer gets `min(its timeout, what remains)`.

pub mod amqp;
pub mod dns;
pub mod handshake;
mod hop;
pub mod http;
pub mod identity;
pub mod kafka;
pub mod mysql;
mod pipeline;
pub mod postgres;
pub mod redis;
pub mod service;
pub mod smb;
pub mod step;
pub mod tcp;
pub mod tds;
pub mod tls;
pub mod tls_upgrade;
pub mod trust;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use crate::budget::Budget;
use crate::env::{ConfigError, EnvLookup};
pub use crate::platform::resolvers;
pub use crate::policy::AddressPolicy;
use crate::report::{Environment, Report, ResolverInfo, ResolverSource, SCHEMA, TargetReport, ms};
use crate::spec::{EngineSettings, TargetConfig, TlsOptions};

use self::pipeline::not_started;

pub struct Engine {
    settings: EngineSettings,
    nameservers: Vec<resolvers::Nameserver>,
    environment: Environment,
    /// Site facts and DNS settings, for route reasoning.
    facts: crate::azure::Facts,
    /// Azure DNS, asked when a custom DNS server fails (see `dns::run`).
    azure_dns: Option<resolvers::Nameserver>,
    /// System roots plus `engine.ca_file`, loaded on the first TLS probe and kept.
    roots: OnceLock<Arc<rustls::RootCertStore>>,
    /// The App Service managed-identity endpoint, as the environment describes it; each
    /// run gets its own token cache over it (`identity::Tokens`).
    identity: Arc<crate::platform::identity::Setup>,
    /// App settings read when a probe runs (a storage key a target references by setting
    /// name, `account_key`): the process environment, or a test's table.
    app_settings: AppSettings,
}

/// Reads one app setting when a probe runs.
pub type AppSettings = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// An engine's settings with their resolvers found (`Engine::check`). What is left,
/// `build`, parses addresses `check` wrote and builds hickory resolvers over UDP and TCP:
/// no config can make it fail.
pub struct Checked {
    settings: EngineSettings,
    resolv_conf: resolvers::ResolvConf,
    infos: Vec<ResolverInfo>,
}

impl Checked {
    /// The DNS servers found, in the order they are asked.
    pub fn resolvers(&self) -> &[ResolverInfo] {
        &self.infos
    }

    /// The resolvers and the site facts; `env` as given to `Engine::check`.
    pub fn build(
        self,
        env: EnvLookup,
        app_settings: AppSettings,
    ) -> Result<Arc<Engine>, ConfigError> {
        let Checked {
            settings,
            resolv_conf,
            infos,
        } = self;
        let timeout = settings.timeouts.dns;
        let nameservers = resolvers::build(&infos, timeout)
            .map_err(|m| ConfigError::new("engine.dns_servers", m))?;
        let facts = crate::azure::facts(
            env,
            &resolv_conf,
            &infos,
            settings.route_all,
            settings.azure_dns,
        );
        let azure_dns = match &facts.dns.azure_dns {
            Some(server) => resolvers::build(
                &[ResolverInfo {
                    server: server.clone(),
                    source: ResolverSource::AzureDns,
                }],
                timeout,
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
            identity: Arc::new(crate::platform::identity::Setup::from_env(env)),
            app_settings,
        }))
    }
}

impl Engine {
    /// Builds the resolvers once. `explicit_source` labels `settings.dns_servers` in
    /// the report (`config` or `cli`).
    pub fn new(
        settings: EngineSettings,
        explicit_source: &str,
        env: EnvLookup,
    ) -> Result<Arc<Engine>, ConfigError> {
        Engine::with_app_settings(
            settings,
            explicit_source,
            env,
            Arc::new(crate::env::process_env),
        )
    }

    /// `new`, with `app_settings` as what a probe reads at run time (tests pass the
    /// same table as `env`; production the process environment).
    pub fn with_app_settings(
        settings: EngineSettings,
        explicit_source: &str,
        env: EnvLookup,
        app_settings: AppSettings,
    ) -> Result<Arc<Engine>, ConfigError> {
        Engine::check(settings, explicit_source, env)?.build(env, app_settings)
    }

    /// Every config error an engine can have, found without building anything: the
    /// resolvers the settings, `WEBSITE_DNS_SERVER` or resolv.conf name. `serve` checks
    /// this before it answers its first readiness poll and builds after
    /// (docs/host-contract.md).
    pub fn check(
        settings: EngineSettings,
        explicit_source: &str,
        env: EnvLookup,
    ) -> Result<Checked, ConfigError> {
        let resolv_conf = resolvers::ResolvConf::read(&settings.resolv_conf);
        let infos = resolvers::discover(&settings.dns_servers, explicit_source, env, &resolv_conf)
            .map_err(|m| ConfigError::new("engine.dns_servers", m))?;
        Ok(Checked {
            settings,
            resolv_conf,
            infos,
        })
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
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
        self.run_inner(targets, deadline, policy, None).await
    }

    /// `run`, telling `progress` when the run starts and as each target finishes (the
    /// CLI's progress line on a terminal).
    pub async fn run_observed(
        self: &Arc<Self>,
        targets: &[TargetConfig],
        deadline: Option<Duration>,
        progress: &dyn Progress,
    ) -> Report {
        self.run_inner(targets, deadline, None, Some(progress))
            .await
    }

    async fn run_inner(
        self: &Arc<Self>,
        targets: &[TargetConfig],
        deadline: Option<Duration>,
        policy: Option<Arc<dyn AddressPolicy>>,
        progress: Option<&dyn Progress>,
    ) -> Report {
        let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let start = Instant::now();
        let total = deadline.map_or(self.settings.deadline, |d| d.min(self.settings.deadline));
        let budget = Budget::until(start + total);
        let sem = Arc::new(Semaphore::new(self.settings.concurrency));
        // One token per (resource, identity) for the whole run.
        let tokens = Arc::new(identity::Tokens::new(Arc::clone(&self.identity)));
        if let Some(p) = progress {
            p.started(targets.len(), budget.deadline().into_std());
        }

        let mut set = JoinSet::new();
        for (i, t) in targets.iter().enumerate() {
            let engine = Arc::clone(self);
            let target = t.clone();
            let sem = Arc::clone(&sem);
            let policy = policy.clone();
            let tokens = Arc::clone(&tokens);
            set.spawn(waiting(engine, i, target, sem, budget, policy, tokens));
        }

        let mut slots: Vec<Option<TargetReport>> = vec![None; targets.len()];
        // Layers already stop at the deadline; the grace only covers scheduling jitter.
        let hard_stop = budget.deadline() + Duration::from_millis(250);
        loop {
            match tokio::time::timeout_at(hard_stop, set.join_next()).await {
                Ok(Some(Ok((i, r)))) => {
                    if let Some(p) = progress {
                        p.finished(&r);
                    }
                    slots[i] = Some(r);
                }
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
            version: env!("CARGO_PKG_VERSION").into(),
            started_at,
            duration_ms: ms(start.elapsed()),
            deadline_ms: ms(total),
            ok: summary.failed == 0,
            summary,
            environment: self.environment.clone(),
            targets: reports,
        }
    }

    fn roots_for(&self, opts: &TlsOptions) -> Arc<rustls::RootCertStore> {
        let base = self
            .roots
            .get_or_init(|| Arc::new(trust::roots(&self.settings.ca_roots).0))
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

/// One target's task: it waits for a slot, then probes. A run spawns every target's task
/// up front, so the probe's own future (the largest state of every protocol's layers, some
/// kilobytes) is boxed only once the slot is held: a task that waits holds its target's
/// settings and its wait, and the boxes of finished probes are reused by the next.
// Not an `async fn`: its future keeps the arguments beside the body's state, nearly twice
// the size while it waits (1,960 against 1,088 bytes in a debug build).
#[allow(clippy::manual_async_fn)]
fn waiting(
    engine: Arc<Engine>,
    i: usize,
    target: TargetConfig,
    sem: Arc<Semaphore>,
    budget: Budget,
    policy: Option<Arc<dyn AddressPolicy>>,
    tokens: Arc<identity::Tokens>,
) -> impl Future<Output = (usize, TargetReport)> + Send + 'static {
    async move {
        let Ok(Ok(_permit)) = tokio::time::timeout_at(budget.deadline(), sem.acquire_owned()).await
        else {
            return (i, not_started(&target));
        };
        // A slot freed by a target the deadline just cut comes too late to use.
        if budget.remaining().is_zero() {
            return (i, not_started(&target));
        }
        let report = Box::pin(engine.probe(&target, &budget, policy.as_deref(), &tokens)).await;
        (i, report)
    }
}

/// What a door hears while a run goes on (the CLI's progress line): defined here, below
/// the doors, so the engine never knows who listens. Calls come from the run's collecting
/// loop, one at a time, in the order targets finish; they must return quickly.
pub trait Progress: Send + Sync {
    /// Before any target starts: how many targets, and when the run deadline falls.
    fn started(&self, total: usize, deadline: std::time::Instant);
    /// One target's report, as soon as it is done (a target the deadline kept from
    /// starting counts too, with class `deadline`).
    fn finished(&self, target: &TargetReport);
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

    #[test]
    fn a_waiting_target_holds_little_and_the_probe_is_boxed() {
        let engine = Engine::new(
            EngineSettings {
                dns_servers: vec!["127.0.0.1:9".parse().unwrap()],
                ..Default::default()
            },
            "config",
            &|_| None,
        )
        .unwrap();
        // A TDS target: among the largest pipelines.
        let target = TargetConfig::adhoc(
            crate::spec::target::parse_uri("sqlserver://127.0.0.1:1433").unwrap(),
        );
        let budget = Budget::until(Instant::now() + Duration::from_secs(1));
        let tokens = identity::Tokens::new(Arc::clone(&engine.identity));
        let probe = engine.probe(&target, &budget, None, &tokens);
        let whole = std::mem::size_of_val(&probe);
        drop(probe);
        let task = waiting(
            Arc::clone(&engine),
            0,
            target.clone(),
            Arc::new(Semaphore::new(1)),
            budget,
            None,
            Arc::new(tokens),
        );
        let waiting = std::mem::size_of_val(&task);
        // The 1,000 tasks of a large run each hold this while they wait for a slot.
        assert!(
            waiting * 2 < whole,
            "a waiting task is {waiting} bytes, the probe's future {whole}"
        );
    }
}
