//! Shared results: each finished run's report and its compact history, kept in the app's
//! own storage account so every instance answers the same (docs/storage.md).
//!
//! Layout in the container (`routeproof` unless `ROUTEPROOF_STORAGE_CONTAINER`):
//! - `last/<scope>.json`: the newest run's full report in an envelope (`record::LastEnvelope`),
//!   replaced by a conditional put (If-Match on the ETag read) only by a run that finished
//!   later, so an older run finishing after a newer one never wins.
//! - `history/YYYY/MM/DD/HH/<instance>.json`: one segment per instance and UTC hour holding
//!   that hour's compact run records (`record::Segment`), appended by read-modify-write
//!   with If-Match / If-None-Match, so two writers never lose each other's run.
//!
//! Retention deletes whole hour segments older than the window (and the oldest beyond the
//! byte bound), a bounded number per run. Reads list `history/` once and fetch only the
//! segments whose ETag changed; everything read is cached for a few seconds.
//!
//! - `settings`: the app settings parsed (connection string, identity-based, override).
//! - `client`: the `object_store` Azure client, the managed-identity token, error mapping.
//! - `record`: the stored documents. `read`: the read side and its cache.
//! - `uptime`: uptime, last failure and last good from run records (pure).

mod client;
pub mod error;
mod read;
pub mod record;
pub mod settings;
pub mod uptime;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use object_store::path::Path;
use object_store::{
    ObjectStore as _, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::Serialize;

pub use error::{StoreClass, StoreError};
pub use read::{History, HistoryFilter, Last, Skip};
pub use record::{RunRecord, StoredClass, TargetRecord, Trigger};
pub use settings::StoreSettings;
pub use uptime::TargetUptime;

use crate::report::Report;
use record::{LAST_SCHEMA, LastEnvelope, LastMeta, SEGMENT_SCHEMA, Segment};

/// How often a conditional write is retried after losing to another writer.
const WRITE_ATTEMPTS: usize = 6;
/// At most this many history segments are deleted per run (retention is bounded work).
const PRUNE_PER_RUN: usize = 24;

pub struct Store {
    settings: Arc<StoreSettings>,
    backend: client::Backend,
    container_ready: AtomicBool,
    cache: read::Cache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("info", &self.info())
            .finish_non_exhaustive()
    }
}

/// What the page and `?last` may say about the store: never a credential.
#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    pub source: &'static str,
    pub endpoint: String,
    pub container: String,
    pub auth: &'static str,
    pub scope: String,
    pub instance: String,
    pub history_days: u32,
    pub max_bytes_per_target: u64,
}

/// What happened to the `last` record on a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum LastOutcome {
    Created,
    Replaced,
    /// A run that finished later is already there; it stays.
    KeptNewer {
        finished_at: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub last: LastOutcome,
    pub history_blob: String,
    /// Bytes of this run's compact record (JSON).
    pub record_bytes: usize,
    pub pruned: usize,
    /// Things that went wrong without losing the run (retention, a replaced corrupt blob).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Store {
    /// `None`: no storage configured (everything stays in memory, as before).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Result<Store, StoreError>> {
        StoreSettings::from_env(env).map(|r| r.and_then(Store::new))
    }

    pub fn new(settings: StoreSettings) -> Result<Store, StoreError> {
        let settings = Arc::new(settings);
        Ok(Store {
            backend: client::Backend::new(settings.clone())?,
            cache: read::Cache::new(settings.cache_ttl),
            settings,
            container_ready: AtomicBool::new(false),
        })
    }

    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    pub fn info(&self) -> StoreInfo {
        let s = &self.settings;
        StoreInfo {
            source: s.source.as_str(),
            endpoint: s.endpoint.to_string(),
            container: s.container.clone(),
            auth: s.auth.kind(),
            scope: s.scope.clone(),
            instance: s.instance.clone(),
            history_days: s.history_days,
            max_bytes_per_target: s.max_bytes_per_target,
        }
    }

    /// Writes a finished run: its history record, then `last` for the default scope.
    pub async fn record(&self, report: &Report, trigger: Trigger) -> Result<Written, StoreError> {
        let scope = self.settings.scope.clone();
        self.record_in(report, trigger, &scope).await
    }

    pub async fn record_in(
        &self,
        report: &Report,
        trigger: Trigger,
        scope: &str,
    ) -> Result<Written, StoreError> {
        if !settings::valid_name(scope) {
            return Err(StoreError::new(
                StoreClass::Config,
                format!("scope `{scope}` is not a valid name"),
            ));
        }
        let run = RunRecord::from_report(report, trigger, scope, &self.settings.instance);
        // The report is redacted by construction; mask the store's own secrets as well,
        // in case a message quoted one.
        let text = serde_json::to_string(report)
            .map_err(|e| StoreError::new(StoreClass::Error, e.to_string()))?;
        let masked = self.backend.mask(&text);
        let report_json: serde_json::Value = serde_json::from_str(&masked)
            .map_err(|e| StoreError::new(StoreClass::Error, e.to_string()))?;
        self.write_run(run, report_json).await
    }

    /// The write path behind `record` (public for the tests' synthetic runs).
    pub async fn write_run(
        &self,
        run: RunRecord,
        report: serde_json::Value,
    ) -> Result<Written, StoreError> {
        let mut warnings = Vec::new();
        let record_bytes = serde_json::to_vec(&run).map(|v| v.len()).unwrap_or(0);
        let history = self.with_container(|| self.append_history(&run)).await;
        let last = self.with_container(|| self.put_last(&run, &report)).await;
        self.cache.invalidate();
        let (history_blob, hw) = history?;
        warnings.extend(hw);
        let last = last?;
        let pruned = match self.prune(run.targets.len()).await {
            Ok(n) => n,
            Err(e) => {
                warnings.push(format!("retention: {e}"));
                0
            }
        };
        for w in &warnings {
            tracing::warn!(store.warning = %w, "store write");
        }
        Ok(Written {
            last,
            history_blob,
            record_bytes,
            pruned,
            warnings,
        })
    }

    /// Runs `op`; when the container is missing, creates it once and runs `op` again.
    async fn with_container<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        match op().await {
            Err(e)
                if e.class == StoreClass::ContainerMissing
                    && !self.container_ready.load(Ordering::Relaxed) =>
            {
                self.backend.create_container().await?;
                self.container_ready.store(true, Ordering::Relaxed);
                op().await
            }
            other => other,
        }
    }

    async fn get_versioned(
        &self,
        path: &Path,
        doing: &str,
    ) -> Result<Option<(bytes::Bytes, UpdateVersion)>, StoreError> {
        match self.backend.blobs.get(path).await {
            Ok(r) => {
                let version = UpdateVersion {
                    e_tag: r.meta.e_tag.clone(),
                    version: None,
                };
                let body = r.bytes().await.map_err(|e| self.backend.error(&e, doing))?;
                Ok(Some((body, version)))
            }
            Err(object_store::Error::NotFound { source, .. })
                if source.to_string().contains("ContainerNotFound") =>
            {
                Err(StoreError::new(
                    StoreClass::ContainerMissing,
                    format!("{doing}: container `{}` not found", self.settings.container),
                ))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend.error(&e, doing)),
        }
    }

    /// `Ok(true)`: written; `Ok(false)`: lost a race (re-read and try again).
    async fn put_conditional(
        &self,
        path: &Path,
        body: Vec<u8>,
        version: Option<UpdateVersion>,
        doing: &str,
    ) -> Result<bool, StoreError> {
        let mode = match version {
            Some(v) => PutMode::Update(v),
            None => PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .backend
            .blobs
            .put_opts(path, PutPayload::from(body), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(false),
            Err(e) => Err(self.backend.error(&e, doing)),
        }
    }

    async fn append_history(&self, run: &RunRecord) -> Result<(String, Vec<String>), StoreError> {
        let finished = run.finished_ms().unwrap_or_else(record::now_ms);
        let hour = record::hour_of(finished);
        let name = format!(
            "{}{}.json",
            record::hour_prefix(&hour),
            self.settings.instance
        );
        let path = Path::from(name.as_str());
        let mut warnings = Vec::new();
        for _ in 0..WRITE_ATTEMPTS {
            let current = self
                .get_versioned(&path, "reading the history segment")
                .await?;
            let (mut seg, version) = match current {
                None => (Segment::new(&self.settings.instance, &hour), None),
                Some((body, v)) => match Segment::parse(&body) {
                    Ok(s) => (s, Some(v)),
                    Err(reason) => {
                        warnings.push(format!(
                            "{name}: replaced a blob that is not ours ({reason})"
                        ));
                        (Segment::new(&self.settings.instance, &hour), Some(v))
                    }
                },
            };
            if seg.runs.iter().any(|r| r.id == run.id) {
                return Ok((name, warnings));
            }
            seg.schema = SEGMENT_SCHEMA.into();
            seg.runs.push(run.clone());
            seg.runs.sort_by_key(|r| r.finished_ms().unwrap_or(0));
            let body = serde_json::to_vec(&seg)
                .map_err(|e| StoreError::new(StoreClass::Error, e.to_string()))?;
            if self
                .put_conditional(&path, body, version, "writing the history segment")
                .await?
            {
                return Ok((name, warnings));
            }
        }
        Err(StoreError::new(
            StoreClass::Conflict,
            format!("{name}: lost {WRITE_ATTEMPTS} conditional writes in a row"),
        ))
    }

    async fn put_last(
        &self,
        run: &RunRecord,
        report: &serde_json::Value,
    ) -> Result<LastOutcome, StoreError> {
        let path = Path::from(format!("last/{}.json", run.scope));
        let ours = run.finished_ms().unwrap_or(0);
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.get_versioned(&path, "reading the last record").await?;
            let (version, existed) = match current {
                None => (None, false),
                Some((body, v)) => {
                    if let Ok(env) = LastEnvelope::parse(&body) {
                        let theirs = env.run.finished_ms().unwrap_or(0);
                        if theirs > ours || (theirs == ours && env.run.id != run.id) {
                            return Ok(LastOutcome::KeptNewer {
                                finished_at: env.run.finished_at,
                            });
                        }
                    } else {
                        tracing::warn!(blob = %path, "replacing a last record that is not ours");
                    }
                    (Some(v), true)
                }
            };
            let env = LastEnvelope {
                schema: LAST_SCHEMA.into(),
                meta: LastMeta {
                    scope: run.scope.clone(),
                    instance: run.instance.clone(),
                    trigger: run.trigger,
                    started_at: run.started_at.clone(),
                    finished_at: run.finished_at.clone(),
                    written_at: record::format_time(record::now_ms()),
                },
                run: run.clone(),
                report: report.clone(),
            };
            let body = serde_json::to_vec(&env)
                .map_err(|e| StoreError::new(StoreClass::Error, e.to_string()))?;
            if self
                .put_conditional(&path, body, version, "writing the last record")
                .await?
            {
                return Ok(if existed {
                    LastOutcome::Replaced
                } else {
                    LastOutcome::Created
                });
            }
        }
        Err(StoreError::new(
            StoreClass::Conflict,
            format!("{path}: lost {WRITE_ATTEMPTS} conditional writes in a row"),
        ))
    }

    /// Deletes history segments older than the window, then the oldest while the history
    /// holds more than `max_bytes_per_target` per target; at most `PRUNE_PER_RUN`.
    async fn prune(&self, targets: usize) -> Result<usize, StoreError> {
        let list = self.list_history().await?;
        let cutoff = record::now_ms() - i64::from(self.settings.history_days) * uptime::DAY_MS;
        let mut segs: Vec<(i64, &object_store::ObjectMeta)> = list
            .iter()
            .filter_map(|m| record::hour_start_of_name(m.location.as_ref()).map(|h| (h, m)))
            .collect();
        segs.sort_by_key(|(h, _)| *h);
        let targets = targets.max(1) as u64;
        let mut total: u64 = segs.iter().map(|(_, m)| m.size).sum();
        let budget = self.settings.max_bytes_per_target.saturating_mul(targets);
        let mut doomed = Vec::new();
        for (hour, m) in &segs {
            if doomed.len() >= PRUNE_PER_RUN {
                break;
            }
            let expired = *hour + 3600 * 1000 <= cutoff;
            if expired || total > budget {
                doomed.push(m.location.clone());
                total = total.saturating_sub(m.size);
            } else {
                break;
            }
        }
        let mut n = 0;
        for p in doomed {
            match self.backend.blobs.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => n += 1,
                Err(e) => return Err(self.backend.error(&e, "deleting an old history segment")),
            }
        }
        if n > 0 {
            self.cache.invalidate();
        }
        Ok(n)
    }
}
