//! The report: what every door (CLI, HTTP trigger, timer) gets back from the engine.
//!
//! `ok` (every expectation held) is kept apart from `reached` (the last layer that
//! answered): a refused login or a 401 proves the route even though the target is not ok.
//! A layer that did not run is absent from `layers` and named in `skipped`, never a 0 ms entry.

mod azure;
mod class;
mod evidence;
mod resolver;

use serde::Serialize;

pub use self::azure::{AddressRoute, DnsSettings, RouteAllBasis, RoutePath, Site, Tri};
pub use self::class::FailureClass;
pub use self::evidence::*;
pub use self::resolver::ResolverSource;
pub use crate::layer::Layer;

/// Bumped whenever a field changes meaning or disappears; additions keep the version.
pub const SCHEMA: &str = "routeproof.report/v1";

/// Why a target is not ok: the layer, the stable class, what happened, and what to do.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failure {
    pub layer: Option<Layer>,
    pub class: FailureClass,
    pub message: String,
    pub hint: String,
    /// For `policy.denied`: the rule that refused the target (`always.link_local`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub version: &'static str,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: f64,
    /// The run deadline in force, so a reader can tell `deadline` failures from slowness.
    pub deadline_ms: f64,
    pub ok: bool,
    pub summary: Summary,
    pub environment: Environment,
    pub targets: Vec<TargetReport>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
}

/// Where the probe ran: the site facts the platform exposes (instance, private IP,
/// route-all), the DNS settings in effect and the resolvers asked, because a DNS answer
/// means nothing without who gave it and a route nothing without where it starts.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Environment {
    pub hostname: Option<String>,
    pub on_azure: bool,
    /// Off Azure: says so, instead of guessing site facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The App Service / Functions site (on Azure only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
    pub dns: DnsSettings,
    pub resolvers: Vec<ResolverInfo>,
    /// Targets discovered from app settings (`engine.discover`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<crate::spec::DiscoverySummary>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResolverInfo {
    /// `ip:port`
    pub server: String,
    /// Where this server came from: `config`, `cli`, `WEBSITE_DNS_SERVER`,
    /// `WEBSITE_DNS_ALT_SERVER` or `resolv.conf`.
    pub source: ResolverSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    /// The target as written, secrets redacted.
    pub target: String,
    /// The app setting a discovered target came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub ok: bool,
    /// The last layer that answered; `null` when not even DNS answered.
    pub reached: Option<Layer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub duration_ms: f64,
    /// For each address the target resolved to (or is): the path it takes out of the
    /// instance (integration subnet or not) and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<AddressRoute>,
    pub layers: Vec<LayerResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Observations that do not fail the target but an engineer should see
    /// (e.g. two configured DNS servers that disagree).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub layer: Layer,
    pub reason: String,
}

/// One layer's outcome with its evidence. Evidence is kept on failure too: an NXDOMAIN
/// is only useful with the server that said it.
#[derive(Debug, Clone, Serialize)]
pub struct LayerResult {
    pub layer: Layer,
    pub ok: bool,
    /// When the layer began, in ms from the target's start (set by the engine, which
    /// starts each layer; a layer that runs inside another, like TLS inside a PostgreSQL
    /// layer, starts after its parent). The page's waterfall is drawn from it.
    pub start_ms: f64,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    #[serde(flatten)]
    pub evidence: Evidence,
}

/// Milliseconds with microsecond resolution: enough for loopback timings, short in JSON.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Report {
    pub fn summarize(targets: &[TargetReport]) -> Summary {
        let ok = targets.iter().filter(|t| t.ok).count();
        Summary {
            total: targets.len(),
            ok,
            failed: targets.len() - ok,
        }
    }
}
