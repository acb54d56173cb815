//! What is stored: the compact per-run history record, the hour segments that hold them,
//! and the `last` envelope around the full report. Every stored document carries a
//! `schema` string; a blob without ours is foreign and skipped, never an error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::report::{FailureClass, Report, TargetReport};

pub const SEGMENT_SCHEMA: &str = "routeproof.history/v1";
pub const LAST_SCHEMA: &str = "routeproof.last/v1";

/// Which door ran the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Timer,
    Http,
    Cli,
    #[serde(other)]
    Other,
}

impl Trigger {
    /// As serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Timer => "timer",
            Trigger::Http => "http",
            Trigger::Cli => "cli",
            Trigger::Other => "other",
        }
    }
}

/// A failure class as stored: one of today's classes, or a class a newer build wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoredClass {
    Known(FailureClass),
    Other(String),
}

impl StoredClass {
    pub fn as_str(&self) -> &str {
        match self {
            StoredClass::Known(c) => c.as_str(),
            StoredClass::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> StoredClass {
        FailureClass::ALL
            .iter()
            .find(|c| c.as_str() == s)
            .map(|c| StoredClass::Known(*c))
            .unwrap_or_else(|| StoredClass::Other(s.to_string()))
    }
}

impl Serialize for StoredClass {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StoredClass {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StoredClass::parse(&String::deserialize(d)?))
    }
}

/// One target's outcome in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRecord {
    pub name: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<StoredClass>,
    /// Total milliseconds (0.1 ms resolution).
    pub ms: f64,
    /// Per-layer milliseconds, in the order the layers ran: `[["dns", 1.2], ...]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<(String, f64)>,
    /// The service verdict (witness-based path conclusion) when a layer reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

/// One finished run, compact: what history, uptime and the page strip need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `<started_at>/<instance>`: the same run retried is recognised, never counted twice.
    pub id: String,
    pub scope: String,
    pub trigger: Trigger,
    pub instance: String,
    pub started_at: String,
    pub finished_at: String,
    pub ok: bool,
    pub targets: Vec<TargetRecord>,
}

impl RunRecord {
    pub fn from_report(
        report: &Report,
        trigger: Trigger,
        scope: &str,
        instance: &str,
    ) -> RunRecord {
        let started = parse_time(&report.started_at).unwrap_or_else(now_ms);
        let finished = started + report.duration_ms.max(0.0).round() as i64;
        let started_at = format_time(started);
        RunRecord {
            id: format!("{started_at}/{instance}"),
            scope: scope.to_string(),
            trigger,
            instance: instance.to_string(),
            started_at,
            finished_at: format_time(finished),
            ok: report.ok,
            targets: report.targets.iter().map(target_record).collect(),
        }
    }

    pub fn finished_ms(&self) -> Option<i64> {
        parse_time(&self.finished_at)
    }
}

fn tenth(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

fn target_record(t: &TargetReport) -> TargetRecord {
    let verdict = t
        .layers
        .iter()
        .rev()
        .filter_map(|l| serde_json::to_value(l).ok())
        .find_map(|v| {
            v.get("verdict")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
    TargetRecord {
        name: t.name.clone(),
        ok: t.ok,
        reached: t.reached.map(|l| l.as_str().to_string()),
        class: t.failure.as_ref().map(|f| StoredClass::Known(f.class)),
        ms: tenth(t.duration_ms),
        layers: t
            .layers
            .iter()
            .map(|l| (l.layer.as_str().to_string(), tenth(l.duration_ms)))
            .collect(),
        verdict,
    }
}

/// All runs one instance finished in one UTC hour: `history/YYYY/MM/DD/HH/<instance>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    pub schema: String,
    pub instance: String,
    /// `YYYY-MM-DDTHH` (UTC).
    pub hour: String,
    pub runs: Vec<RunRecord>,
}

impl Segment {
    pub fn new(instance: &str, hour: &str) -> Segment {
        Segment {
            schema: SEGMENT_SCHEMA.into(),
            instance: instance.into(),
            hour: hour.into(),
            runs: Vec::new(),
        }
    }

    /// `Err(reason)` for a blob that is not one of ours.
    pub fn parse(bytes: &[u8]) -> Result<Segment, String> {
        let s: Segment =
            serde_json::from_slice(bytes).map_err(|e| format!("not a history segment: {e}"))?;
        if s.schema != SEGMENT_SCHEMA {
            return Err(format!(
                "schema `{}` is not {SEGMENT_SCHEMA}",
                s.schema.chars().take(64).collect::<String>()
            ));
        }
        Ok(s)
    }
}

/// Who wrote the `last` record, when, and from which run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastMeta {
    pub scope: String,
    pub instance: String,
    pub trigger: Trigger,
    pub started_at: String,
    pub finished_at: String,
    pub written_at: String,
}

/// `last/<scope>.json`: the full report (as JSON) with its compact run and meta.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastEnvelope {
    pub schema: String,
    pub meta: LastMeta,
    pub run: RunRecord,
    pub report: serde_json::Value,
}

impl LastEnvelope {
    pub fn parse(bytes: &[u8]) -> Result<LastEnvelope, String> {
        let e: LastEnvelope =
            serde_json::from_slice(bytes).map_err(|e| format!("not a last record: {e}"))?;
        if e.schema != LAST_SCHEMA {
            return Err(format!(
                "schema `{}` is not {LAST_SCHEMA}",
                e.schema.chars().take(64).collect::<String>()
            ));
        }
        Ok(e)
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn parse_time(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(s)
        .or_else(|_| humantime::parse_rfc3339_weak(s))
        .ok()?;
    t.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

pub fn format_time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// `YYYY-MM-DDTHH` of a time.
pub fn hour_of(ms: i64) -> String {
    format_time(ms)[..13].to_string()
}

/// `history/YYYY/MM/DD/HH/` for an hour string.
pub fn hour_prefix(hour: &str) -> String {
    format!(
        "history/{}/{}/{}/{}/",
        &hour[0..4],
        &hour[5..7],
        &hour[8..10],
        &hour[11..13]
    )
}

/// The hour a history blob name stands for (`history/2026/12/01/17/x.json` → ms at 17:00).
pub fn hour_start_of_name(name: &str) -> Option<i64> {
    let mut p = name.strip_prefix("history/")?.split('/');
    let (y, m, d, h) = (p.next()?, p.next()?, p.next()?, p.next()?);
    if [y.len(), m.len(), d.len(), h.len()] != [4, 2, 2, 2] {
        return None;
    }
    parse_time(&format!("{y}-{m}-{d}T{h}:00:00Z"))
}
