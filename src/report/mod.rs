//! The report: what every door (CLI, HTTP trigger, timer) gets back from the engine.
//!
//! `ok` (every expectation held) is kept apart from `reached` (the last layer that
//! answered): a refused login or a 401 proves the route even though the target is not ok.
//! A layer that did not run is absent from `layers` and named in `skipped`, never a 0 ms entry.

mod azure;
mod class;
mod evidence;
mod resolver;
#[cfg(test)]
mod roundtrip;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

pub use self::azure::{AddressRoute, DnsSettings, RouteAllBasis, RoutePath, Site, Tri};
pub use self::class::FailureClass;
pub use self::evidence::*;
pub use self::resolver::ResolverSource;
pub use crate::layer::Layer;

/// A name fixed at compile time. Spelled through this alias because serde borrows a
/// field written `&str` from its input, which a `'static` one cannot be; the field's
/// `deserialize_with` maps the stored text onto our own constant instead.
pub type StaticName = &'static str;

/// Bumped whenever a field changes meaning or disappears; additions keep the version.
pub const SCHEMA: &str = "routeproof.report/v1";

/// Why a target is not ok: the layer, the stable class, what happened, and what to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub layer: Option<Layer>,
    pub class: FailureClass,
    pub message: String,
    pub hint: String,
    /// For `policy.denied`: the rule that refused the target (`always.link_local`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Deserializes too, so a report stored by any instance (docs/storage.md) renders as
/// the one in memory does; a report of another schema is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    #[serde(deserialize_with = "this_schema")]
    pub schema: StaticName,
    /// The routeproof version that ran it (another instance's may differ from ours).
    pub version: Cow<'static, str>,
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
}

/// Where the probe ran: the site facts the platform exposes (instance, private IP,
/// route-all), the DNS settings in effect and the resolvers asked, because a DNS answer
/// means nothing without who gave it and a route nothing without where it starts.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Environment {
    pub hostname: Option<String>,
    pub on_azure: bool,
    /// Off Azure: says so, instead of guessing site facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The App Service / Functions site (on Azure only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
    pub dns: DnsSettings,
    pub resolvers: Vec<ResolverInfo>,
    /// Targets discovered from app settings (`engine.discover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<crate::spec::DiscoverySummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResolverInfo {
    /// `ip:port`
    pub server: String,
    /// Where this server came from: `config`, `cli`, `WEBSITE_DNS_SERVER`,
    /// `WEBSITE_DNS_ALT_SERVER` or `resolv.conf`.
    pub source: ResolverSource,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetReport {
    pub name: String,
    /// The target as written, secrets redacted.
    pub target: String,
    /// The app setting a discovered target came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub ok: bool,
    /// The last layer that answered; `null` when not even DNS answered.
    pub reached: Option<Layer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub duration_ms: f64,
    /// For each address the target resolved to (or is): the path it takes out of the
    /// instance (integration subnet or not) and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<AddressRoute>,
    pub layers: Vec<LayerResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Observations that do not fail the target but an engineer should see
    /// (e.g. two configured DNS servers that disagree).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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

impl<'de> Deserialize<'de> for LayerResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            layer: Layer,
            ok: bool,
            // A report stored before issue 17 has none: its layers start at 0.
            #[serde(default)]
            start_ms: f64,
            duration_ms: f64,
            #[serde(default)]
            error: Option<Failure>,
            #[serde(flatten)]
            evidence: serde_json::Map<String, serde_json::Value>,
        }
        let w = Wire::deserialize(d)?;
        Ok(LayerResult {
            layer: w.layer,
            ok: w.ok,
            start_ms: w.start_ms,
            duration_ms: w.duration_ms,
            error: w.error,
            evidence: Evidence::from_fields(w.evidence).map_err(serde::de::Error::custom)?,
        })
    }
}

fn this_schema<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    if s == SCHEMA {
        Ok(SCHEMA)
    } else {
        Err(serde::de::Error::custom(format!(
            "report schema {s:?} is not {SCHEMA:?}"
        )))
    }
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
