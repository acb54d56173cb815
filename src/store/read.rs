//! The read side: the last record, history by target and time range, uptime. One list of
//! `history/` per cache period; a segment is fetched again only when its ETag changed. A
//! blob that is not ours (foreign, truncated, another schema) is skipped with a reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore as _, ObjectStoreExt as _};
use serde::Serialize;

use super::record::{self, LastEnvelope, LastMeta, RunRecord, Segment};
use super::uptime::{self, TargetUptime};
use super::{Store, StoreError};

/// The `last` record: the full report as stored (JSON), its compact run and who wrote it.
#[derive(Debug, Clone, Serialize)]
pub struct Last {
    pub meta: LastMeta,
    pub run: RunRecord,
    pub report: serde_json::Value,
}

impl Last {
    /// The stored report as a `Report`, so every renderer (JSON, text, the page,
    /// Prometheus) shows it as the instance that ran it would. `Err` says why this build
    /// cannot read it: another report schema, or a class or evidence kind it does not
    /// know (a newer instance wrote it).
    pub fn full_report(&self) -> Result<crate::report::Report, String> {
        serde_json::from_value(self.report.clone()).map_err(|e| {
            // serde lists every variant it expected: hundreds of classes, no help here.
            let e = e.to_string();
            let e = e.split(", expected one of").next().unwrap_or(&e);
            format!(
                "the stored report (routeproof {}) does not read as this build's report: {e}",
                self.report
                    .get("version")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?")
            )
        })
    }
}

/// A blob that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub blob: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Keep only this target's records (runs without it are left out).
    pub target: Option<String>,
    /// Unix milliseconds, inclusive; default: the retention window.
    pub from_ms: Option<i64>,
    /// Unix milliseconds, inclusive; default: now.
    pub to_ms: Option<i64>,
    pub scope: Option<String>,
    /// The newest N runs.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub from: String,
    pub to: String,
    /// Oldest first.
    pub runs: Vec<RunRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skip>,
}

type Parsed = Result<Arc<Segment>, String>;

pub(super) struct Cache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    list: Option<(Instant, Arc<Vec<ObjectMeta>>)>,
    last: HashMap<String, (Instant, Option<Last>, Option<Skip>)>,
    /// name → (ETag, parsed segment or the reason it was skipped)
    segments: HashMap<String, (Option<String>, Parsed)>,
}

impl Cache {
    pub(super) fn new(ttl: Duration) -> Cache {
        Cache {
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops what a write may have changed (segments stay: they are checked by ETag).
    pub(super) fn invalidate(&self) {
        let mut g = self.lock();
        g.list = None;
        g.last.clear();
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }
}

impl Store {
    pub(super) async fn list_history(&self) -> Result<Arc<Vec<ObjectMeta>>, StoreError> {
        if let Some((at, l)) = &self.cache.lock().list
            && self.cache.fresh(*at)
        {
            return Ok(l.clone());
        }
        let prefix = Path::from("history");
        let list: Vec<ObjectMeta> = match self.backend.blobs.list(Some(&prefix)).try_collect().await
        {
            Ok(l) => l,
            Err(e) => {
                let err = self.backend.error(&e, "listing history");
                if err.class == super::StoreClass::ContainerMissing {
                    Vec::new()
                } else {
                    return Err(err);
                }
            }
        };
        let list = Arc::new(list);
        self.cache.lock().list = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// The newest run's record for the default scope; `None` before the first write.
    pub async fn last(&self) -> Result<Option<Last>, StoreError> {
        let scope = self.settings.scope.clone();
        self.last_in(&scope).await.map(|(l, _)| l)
    }

    /// The last record of `scope`, and the reason when the blob there is not readable.
    pub async fn last_in(&self, scope: &str) -> Result<(Option<Last>, Option<Skip>), StoreError> {
        if let Some((at, l, s)) = self.cache.lock().last.get(scope)
            && self.cache.fresh(*at)
        {
            return Ok((l.clone(), s.clone()));
        }
        let name = format!("last/{scope}.json");
        let got = match self
            .get_versioned(&Path::from(name.as_str()), "reading the last record")
            .await
        {
            Ok(g) => g,
            Err(e) if e.class == super::StoreClass::ContainerMissing => None,
            Err(e) => return Err(e),
        };
        let (last, skip) = match got {
            None => (None, None),
            Some((body, _)) => match LastEnvelope::parse(&body) {
                Ok(e) => (
                    Some(Last {
                        meta: e.meta,
                        run: e.run,
                        report: e.report,
                    }),
                    None,
                ),
                Err(reason) => {
                    tracing::warn!(blob = %name, %reason, "skipping a last record that is not ours");
                    (None, Some(Skip { blob: name, reason }))
                }
            },
        };
        self.cache.lock().last.insert(
            scope.to_string(),
            (Instant::now(), last.clone(), skip.clone()),
        );
        Ok((last, skip))
    }

    /// Runs finished in the filter's range (default: the retention window), oldest first.
    pub async fn history(&self, filter: &HistoryFilter) -> Result<History, StoreError> {
        let now = record::now_ms();
        let to = filter.to_ms.unwrap_or(now);
        let from = filter
            .from_ms
            .unwrap_or(now - i64::from(self.settings.history_days) * uptime::DAY_MS);
        let list = self.list_history().await?;
        let wanted: Vec<&ObjectMeta> = list
            .iter()
            .filter(|m| {
                record::hour_start_of_name(m.location.as_ref())
                    .is_some_and(|h| h + 3600 * 1000 > from && h <= to)
            })
            .collect();
        let mut skipped: Vec<Skip> = list
            .iter()
            .filter(|m| record::hour_start_of_name(m.location.as_ref()).is_none())
            .map(|m| Skip {
                blob: m.location.to_string(),
                reason: "not a history segment name (history/YYYY/MM/DD/HH/<instance>.json)".into(),
            })
            .collect();
        // Owned, so the fetch futures borrow nothing but `self` and stay `Send` for any
        // lifetime a caller's executor asks about.
        let stale: Vec<ObjectMeta> = {
            let g = self.cache.lock();
            wanted
                .iter()
                .filter(|m| {
                    g.segments
                        .get(m.location.as_ref())
                        .is_none_or(|(etag, _)| etag.is_none() || *etag != m.e_tag)
                })
                .map(|m| (*m).clone())
                .collect()
        };
        let fetched: Vec<(String, Option<String>, Parsed)> = futures_util::stream::iter(stale)
            .map(|m| async move {
                let name = m.location.to_string();
                let parsed = match self.backend.blobs.get(&m.location).await {
                    Ok(r) => match r.bytes().await {
                        Ok(b) => Segment::parse(&b).map(Arc::new),
                        Err(e) => return Err(self.backend.error(&e, "reading a history segment")),
                    },
                    Err(object_store::Error::NotFound { .. }) => {
                        Err("deleted while reading".to_string())
                    }
                    Err(e) => return Err(self.backend.error(&e, "reading a history segment")),
                };
                Ok((name, m.e_tag, parsed))
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let mut runs = Vec::new();
        {
            let mut g = self.cache.lock();
            for (name, etag, parsed) in fetched {
                g.segments.insert(name, (etag, parsed));
            }
            let keep: std::collections::HashSet<&str> =
                list.iter().map(|m| m.location.as_ref()).collect();
            g.segments.retain(|k, _| keep.contains(k.as_str()));
            for m in &wanted {
                match g.segments.get(m.location.as_ref()).map(|(_, p)| p) {
                    Some(Ok(seg)) => runs.extend(seg.runs.iter().cloned()),
                    Some(Err(reason)) => {
                        tracing::warn!(blob = %m.location, %reason, "skipping a history blob that is not ours");
                        skipped.push(Skip {
                            blob: m.location.to_string(),
                            reason: reason.clone(),
                        })
                    }
                    None => {}
                }
            }
        }
        let mut runs: Vec<RunRecord> = runs
            .into_iter()
            .filter(|r| r.finished_ms().is_some_and(|t| t >= from && t <= to))
            .filter(|r| filter.scope.as_ref().is_none_or(|s| *s == r.scope))
            .filter_map(|mut r| match &filter.target {
                None => Some(r),
                Some(t) => {
                    r.targets.retain(|x| x.name == *t);
                    (!r.targets.is_empty()).then_some(r)
                }
            })
            .collect();
        runs.sort_by_key(|r| r.finished_ms().unwrap_or(0));
        runs.dedup_by(|a, b| a.id == b.id);
        if let Some(n) = filter.limit {
            let drop = runs.len().saturating_sub(n);
            runs.drain(..drop);
        }
        Ok(History {
            from: record::format_time(from),
            to: record::format_time(to),
            runs,
            skipped,
        })
    }

    /// Uptime over 24 h and 7 d, last failure and last good per target, ending now.
    pub async fn uptime(&self) -> Result<Vec<TargetUptime>, StoreError> {
        let now = record::now_ms();
        let h = self
            .history(&HistoryFilter {
                from_ms: Some(now - 7 * uptime::DAY_MS),
                scope: Some(self.settings.scope.clone()),
                ..HistoryFilter::default()
            })
            .await?;
        Ok(uptime::summarize(&h.runs, now))
    }
}
