//! What the handler holds between invocations: the engine, the configured targets,
//! the edge's own settings (deadlines, body limit, ad-hoc policy), the single-flight
//! table and the last scheduled report.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::Instrument;

use crate::config::{Config, ConfigError, EnvLookup, TargetConfig};
use crate::policy::Policy;
use crate::probe::{AddressPolicy, Engine};
use crate::report::Report;
use crate::store::Store;
use crate::telemetry::Exports;

use super::flight::{Abandoned, Role, SingleFlight};
use super::invocation::Invocation;

/// The Azure front end drops an HTTP-triggered call after 230 s whatever
/// `functionTimeout` says (docs/host-contract.md §1.8).
pub const FRONT_END_LIMIT: Duration = Duration::from_secs(230);
/// Time kept back from every budget to render and send the reply.
pub const REPLY_MARGIN: Duration = Duration::from_secs(10);
/// The largest caller body /api/probe accepts (ad-hoc target lists are small).
pub const BODY_LIMIT: usize = 64 * 1024;
/// The largest payload-mode envelope: it wraps the caller's body plus headers and
/// identities, so it is allowed to be larger than `BODY_LIMIT`.
pub const ENVELOPE_LIMIT: usize = 4 * 1024 * 1024;

/// The edge's settings. They are app settings (environment) rather than config-file
/// keys because the config file's schema belongs to the engine and rejects unknown keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Budget of an HTTP-triggered run (`ROUTEPROOF_HTTP_DEADLINE`, default 20 s).
    pub http_deadline: Duration,
    /// Budget of a timer run (`ROUTEPROOF_TIMER_DEADLINE`, default 4 min).
    pub timer_deadline: Duration,
    /// `functionTimeout` from host.json, when known; both budgets stay under it.
    pub function_timeout: Option<Duration>,
    pub body_limit: usize,
    /// `ROUTEPROOF_ALLOW_ADHOC`: overrides `[policy] allow_adhoc` either way (`false` is
    /// a kill switch that needs no redeploy). On needs the config's allow-list: without
    /// one, any caller with a function key could aim the app's network identity at
    /// anything inside the VNet, so start-up refuses it.
    pub allow_adhoc: Option<bool>,
    /// The port this handler listens on: ad-hoc targets may never name it.
    pub handler_port: Option<u16>,
    /// Where finished runs are exported (`OTEL_*`, `APPLICATIONINSIGHTS_CONNECTION_STRING`):
    /// owned here, by the handler, and built by `serve` at start-up.
    pub telemetry: Exports,
    /// The shared store (docs/storage.md), built once by `serve`; `None` keeps
    /// everything in memory on this instance.
    pub store: StoreHandle,
}

/// One `Arc<Store>` per process, or none. Two handles are equal when they share the store.
#[derive(Debug, Clone, Default)]
pub struct StoreHandle(pub Option<Arc<Store>>);

impl PartialEq for StoreHandle {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl StoreHandle {
    /// `Store::from_env`; unusable settings are logged once (class only) and give none.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> StoreHandle {
        match Store::from_env(env) {
            None => StoreHandle(None),
            Some(Ok(s)) => {
                let info = s.info();
                tracing::info!(source = info.source, endpoint = %info.endpoint, container = %info.container, auth = info.auth, "run history: store configured");
                StoreHandle(Some(Arc::new(s)))
            }
            Some(Err(e)) => {
                tracing::warn!(class = %e.class, "run history: store unusable, keeping runs in memory only: {e}");
                StoreHandle(None)
            }
        }
    }

    pub fn get(&self) -> Option<&Arc<Store>> {
        self.0.as_ref()
    }
}

/// The store's reads and writes, each on a task of its own: the futures own their `Arc`,
/// so the handler's futures stay `Send` for every lifetime axum asks about. A task that
/// panics reads as a store error, never as a failed invocation.
pub mod shared {
    use std::sync::Arc;

    use crate::report::Report;
    use crate::store::{
        History, HistoryFilter, Last, Store, StoreClass, StoreError, TargetUptime, Trigger, Written,
    };

    fn joined<T>(
        r: Result<Result<T, StoreError>, tokio::task::JoinError>,
    ) -> Result<T, StoreError> {
        r.unwrap_or_else(|e| {
            Err(StoreError {
                class: StoreClass::Error,
                message: format!("the store task ended: {e}"),
            })
        })
    }

    pub async fn record(
        store: &Arc<Store>,
        report: &Arc<Report>,
        trigger: Trigger,
    ) -> Result<Written, StoreError> {
        let (s, r) = (Arc::clone(store), Arc::clone(report));
        joined(tokio::spawn(async move { s.record(&r, trigger).await }).await)
    }

    pub async fn last(store: &Arc<Store>) -> Result<Option<Last>, StoreError> {
        let s = Arc::clone(store);
        joined(tokio::spawn(async move { s.last().await }).await)
    }

    pub async fn uptime(store: &Arc<Store>) -> Result<Vec<TargetUptime>, StoreError> {
        let s = Arc::clone(store);
        joined(tokio::spawn(async move { s.uptime().await }).await)
    }

    pub async fn history(store: &Arc<Store>, filter: HistoryFilter) -> Result<History, StoreError> {
        let s = Arc::clone(store);
        joined(tokio::spawn(async move { s.history(&filter).await }).await)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http_deadline: Duration::from_secs(20),
            timer_deadline: Duration::from_secs(240),
            function_timeout: None,
            body_limit: BODY_LIMIT,
            allow_adhoc: None,
            handler_port: None,
            telemetry: Exports::default(),
            store: StoreHandle::default(),
        }
    }
}

impl Settings {
    /// The HTTP run's deadline: the setting, capped by the front-end limit and by
    /// `functionTimeout`, each less the reply margin.
    pub fn http_run_deadline(&self) -> Duration {
        let mut d = self.http_deadline.min(under(FRONT_END_LIMIT));
        if let Some(ft) = self.function_timeout {
            d = d.min(under(ft));
        }
        d
    }

    /// The timer run's deadline: the setting, capped by `functionTimeout` less the margin.
    pub fn timer_run_deadline(&self) -> Duration {
        match self.function_timeout {
            Some(ft) => self.timer_deadline.min(under(ft)),
            None => self.timer_deadline,
        }
    }
}

/// `limit` less the reply margin; a limit too short for the margin gets half of itself.
fn under(limit: Duration) -> Duration {
    if limit > REPLY_MARGIN * 2 {
        limit - REPLY_MARGIN
    } else {
        limit / 2
    }
}

/// Parses host.json's `functionTimeout` (.NET TimeSpan text: `[d.]hh:mm:ss[.fff]`).
/// `-1` (unbounded) and anything unreadable give `None`: no cap beyond our own.
pub fn parse_function_timeout(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if !d.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, s),
    };
    let mut parts = rest.split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || m > 59 || !(0.0..60.0).contains(&sec) {
        return None;
    }
    let total =
        Duration::from_secs(days * 86_400 + h * 3600 + m * 60) + Duration::from_secs_f64(sec);
    (!total.is_zero()).then_some(total)
}

/// A finished scheduled run, kept in memory for `?last`. Each instance keeps its own:
/// a scaled-out app has one per instance, and a restart forgets it.
#[derive(Debug, Clone)]
pub struct Scheduled {
    pub report: Arc<Report>,
    pub invocation: Invocation,
    pub finished_at: String,
    pub is_past_due: bool,
}

/// The run a caller asks for: which targets (sorted names) under which deadline.
/// Identical keys in flight at the same time share one engine run.
pub type RunKey = (Vec<String>, Duration);

/// Every ad-hoc slot is taken: the caller gets `429`.
#[derive(Debug)]
pub struct Busy;

/// Ad-hoc targets switched on: the policy and its limits.
pub struct Adhoc {
    pub policy: Arc<Policy>,
    pub max_targets: usize,
    slots: Arc<tokio::sync::Semaphore>,
    max_concurrent: usize,
}

/// A config `State::check` has accepted; `build` makes the state from it.
pub struct Checked {
    engine: crate::probe::Checked,
    targets: Vec<TargetConfig>,
    policy: crate::config::PolicyConfig,
    adhoc: bool,
}

impl Checked {
    /// Builds the engine (`crate::probe::Checked::build`); `settings.allow_adhoc` was
    /// read by `State::check`.
    pub fn build(self, settings: Settings, env: EnvLookup) -> Result<Arc<State>, ConfigError> {
        let p = &self.policy;
        let adhoc = self.adhoc.then(|| Adhoc {
            policy: Arc::new(Policy::new(p, settings.handler_port, env)),
            max_targets: p.max_targets,
            slots: Arc::new(tokio::sync::Semaphore::new(p.max_concurrent)),
            max_concurrent: p.max_concurrent,
        });
        let engine = self.engine.build(env, Arc::new(crate::env::process_env))?;
        Ok(Arc::new(State {
            engine,
            targets: Arc::new(self.targets),
            settings,
            adhoc,
            flights: SingleFlight::default(),
            last: RwLock::new(None),
        }))
    }
}

pub struct State {
    engine: Arc<Engine>,
    targets: Arc<Vec<TargetConfig>>,
    settings: Settings,
    adhoc: Option<Adhoc>,
    flights: SingleFlight<RunKey, Arc<Report>>,
    last: RwLock<Option<Arc<Scheduled>>>,
}

impl State {
    /// Builds the engine once. `env` is what the engine sees of app settings
    /// (`WEBSITE_DNS_SERVER` ...); tests pass an empty lookup.
    pub fn new(
        config: Config,
        settings: Settings,
        env: EnvLookup,
    ) -> Result<Arc<State>, ConfigError> {
        State::check(config, settings.allow_adhoc, env)?.build(settings, env)
    }

    /// Every reason `new` can refuse a config, found without building anything:
    /// ad-hoc targets without an allow-list, and the engine's own (`Engine::check`).
    /// `allow_adhoc` is `Settings::allow_adhoc`, which `build` then takes from here.
    pub fn check(
        config: Config,
        allow_adhoc: Option<bool>,
        env: EnvLookup,
    ) -> Result<Checked, ConfigError> {
        let adhoc = allow_adhoc.unwrap_or(config.policy.allow_adhoc);
        if adhoc && config.policy.is_empty() {
            return Err(ConfigError::new(
                "ROUTEPROOF_ALLOW_ADHOC",
                "ad-hoc targets need an allow-list of networks and host patterns in the config \
                 ([policy] allow = [\"10.20.0.0/16\", \"*.internal.contoso.com\"]); add one or unset it",
            ));
        }
        Ok(Checked {
            engine: Engine::check(config.engine, "config", env)?,
            targets: config.targets,
            policy: config.policy,
            adhoc,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The budget an HTTP-triggered run really gets: the edge's cap and the engine's
    /// own `engine.deadline`, whichever is shorter.
    pub fn http_deadline(&self) -> Duration {
        self.settings
            .http_run_deadline()
            .min(self.engine.settings().deadline)
    }

    /// The budget a timer run really gets (see `http_deadline`).
    pub fn timer_deadline(&self) -> Duration {
        self.settings
            .timer_run_deadline()
            .min(self.engine.settings().deadline)
    }

    pub fn targets(&self) -> &[TargetConfig] {
        &self.targets
    }

    /// Runs `names` (all configured targets when `None`) under `deadline`, sharing the
    /// run with identical concurrent requests.
    pub async fn run(
        &self,
        names: Option<&[String]>,
        deadline: Duration,
    ) -> Result<(Arc<Report>, Role), Abandoned> {
        let subset: Vec<TargetConfig> = match names {
            None => self.targets.to_vec(),
            // Config order, not request order: the same key always gives the same report.
            Some(n) => self
                .targets
                .iter()
                .filter(|t| n.contains(&t.name))
                .cloned()
                .collect(),
        };
        let mut key_names: Vec<String> = subset.iter().map(|t| t.name.clone()).collect();
        key_names.sort();
        let engine = Arc::clone(&self.engine);
        self.flights
            .run((key_names, deadline), move || {
                // The run's own log lines belong to the invocation that started it.
                async move { Arc::new(engine.run(&subset, Some(deadline)).await) }.in_current_span()
            })
            .await
    }

    /// The ad-hoc policy, when ad-hoc targets are on.
    pub fn adhoc(&self) -> Option<&Adhoc> {
        self.adhoc.as_ref()
    }

    /// Runs ad-hoc targets under the policy, or `Busy` when every ad-hoc slot is taken.
    /// Ad-hoc runs never join the single-flight table: their targets are the caller's.
    pub async fn run_adhoc(
        &self,
        targets: Vec<TargetConfig>,
        deadline: Duration,
    ) -> Result<Report, Busy> {
        let Some(a) = &self.adhoc else {
            return Err(Busy);
        };
        let _slot = Arc::clone(&a.slots).try_acquire_owned().map_err(|_| Busy)?;
        let policy: Arc<dyn AddressPolicy> = a.policy.clone();
        Ok(self
            .engine
            .run_with(&targets, Some(deadline), Some(policy))
            .await)
    }

    /// Ad-hoc runs in flight on this instance.
    pub fn adhoc_running(&self) -> usize {
        self.adhoc
            .as_ref()
            .map_or(0, |a| a.max_concurrent - a.slots.available_permits())
    }

    pub fn store_scheduled(&self, s: Scheduled) {
        let mut last = self.last.write().unwrap_or_else(|p| p.into_inner());
        *last = Some(Arc::new(s));
    }

    pub fn last_scheduled(&self) -> Option<Arc<Scheduled>> {
        self.last.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Engine runs started since start-up (joins not counted).
    pub fn runs_started(&self) -> usize {
        self.flights.started()
    }

    /// Callers waiting for a run right now, leaders included.
    pub fn callers_waiting(&self) -> usize {
        self.flights.waiting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_timeout_text() {
        let table = [
            ("00:05:00", Some(300.0)),
            ("00:00:01", Some(1.0)),
            ("01:00:00", Some(3600.0)),
            ("1.00:00:00", Some(86_400.0)),
            ("00:00:30.5", Some(30.5)),
            ("-1", None),
            ("00:00:00", None),
            ("5m", None),
            ("00:61:00", None),
            ("", None),
        ];
        for (text, want) in table {
            let got = parse_function_timeout(text).map(|d| d.as_secs_f64());
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn deadline_arithmetic() {
        // (http setting s, timer setting s, functionTimeout s) -> (http run s, timer run s)
        let table: [(u64, u64, Option<u64>, u64, u64); 6] = [
            (20, 240, None, 20, 240),
            (20, 240, Some(300), 20, 240),
            (300, 600, Some(300), 220, 290),
            (300, 600, None, 220, 600),
            (20, 240, Some(30), 20, 20),
            (20, 240, Some(10), 5, 5),
        ];
        for (http, timer, ft, want_http, want_timer) in table {
            let s = Settings {
                http_deadline: Duration::from_secs(http),
                timer_deadline: Duration::from_secs(timer),
                function_timeout: ft.map(Duration::from_secs),
                ..Settings::default()
            };
            assert_eq!(
                (
                    s.http_run_deadline().as_secs(),
                    s.timer_run_deadline().as_secs()
                ),
                (want_http, want_timer),
                "http {http} timer {timer} functionTimeout {ft:?}"
            );
        }
    }

    #[test]
    fn adhoc_cannot_be_switched_on_without_an_allow_list() {
        let cfg = Config::default();
        let s = Settings {
            allow_adhoc: Some(true),
            ..Settings::default()
        };
        let Err(e) = State::new(cfg, s, &|_| None) else {
            panic!("ad-hoc must be refused");
        };
        assert_eq!(e.key, "ROUTEPROOF_ALLOW_ADHOC");
        assert!(e.message.contains("allow-list"), "{e}");
    }
}
