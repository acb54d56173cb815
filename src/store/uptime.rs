//! Uptime, the last failure and the last good time per target, from run records alone
//! (pure functions: the unit tests feed them a synthetic week).
//!
//! Uptime over a window is the share of runs in it where the target was ok (the same
//! measure Gatus and Uptime Kuma show: checks passed over checks made); a window with no
//! runs has no uptime (`None`), not 0 % or 100 %.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::{RunRecord, StoredClass, format_time};

pub const DAY_MS: i64 = 24 * 3600 * 1000;
/// How many recent runs the status strip gets per target.
pub const STRIP_RUNS: usize = 30;
/// UTC calendar days in the page's week row (today and the six before it).
pub const WEEK_DAYS: i64 = 7;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub runs: u32,
    pub ok: u32,
    /// `ok / runs` in 0..=1; `None` without runs.
    pub uptime: Option<f64>,
}

/// The most recent failure streak of a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastFailure {
    /// The class of the streak's latest failed run.
    pub class: Option<StoredClass>,
    /// When the streak's first failed run finished.
    pub since: String,
    /// When the first ok run after it finished; `None`: still failing.
    pub until: Option<String>,
    /// `until - since`, or `now - since` while it lasts.
    pub duration_ms: i64,
    pub runs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub at: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<StoredClass>,
}

/// One UTC calendar day of a target's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`
    pub day: String,
    #[serde(flatten)]
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetUptime {
    pub name: String,
    pub day: Window,
    pub week: Window,
    pub last_good: Option<String>,
    pub last_failure: Option<LastFailure>,
    /// Oldest first, at most `STRIP_RUNS`.
    pub recent: Vec<Mark>,
    /// The last `WEEK_DAYS` UTC days, oldest first (today last, so far).
    pub days: Vec<Day>,
}

/// (finished at, ok, class) of one target in one run.
type Point<'a> = (i64, bool, Option<&'a StoredClass>);

fn window(points: &[Point], from: i64, to: i64) -> Window {
    let (mut runs, mut ok) = (0u32, 0u32);
    for (t, good, _) in points {
        if *t > from && *t <= to {
            runs += 1;
            ok += u32::from(*good);
        }
    }
    Window {
        runs,
        ok,
        uptime: (runs > 0).then(|| f64::from(ok) / f64::from(runs)),
    }
}

/// Per target (by name, in name order): 24 h and 7 d uptime ending at `now_ms`, the last
/// good time, the last failure streak and the recent strip.
pub fn summarize(runs: &[RunRecord], now_ms: i64) -> Vec<TargetUptime> {
    let mut by_target: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for run in runs {
        let Some(t) = run.finished_ms() else { continue };
        if t > now_ms {
            continue;
        }
        for tr in &run.targets {
            by_target
                .entry(tr.name.as_str())
                .or_default()
                .push((t, tr.ok, tr.class.as_ref()));
        }
    }
    by_target
        .into_iter()
        .map(|(name, mut pts)| {
            pts.sort_by_key(|p| p.0);
            let last_good = pts.iter().rev().find(|p| p.1).map(|p| format_time(p.0));
            TargetUptime {
                name: name.to_string(),
                day: window(&pts, now_ms - DAY_MS, now_ms),
                week: window(&pts, now_ms - 7 * DAY_MS, now_ms),
                last_good,
                last_failure: last_failure(&pts, now_ms),
                days: days(&pts, now_ms),
                recent: pts[pts.len().saturating_sub(STRIP_RUNS)..]
                    .iter()
                    .map(|p| Mark {
                        at: format_time(p.0),
                        ok: p.1,
                        class: p.2.cloned(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Runs in `[start, start + 1 day)` for each of the last `WEEK_DAYS` UTC days.
fn days(pts: &[Point], now_ms: i64) -> Vec<Day> {
    let today = now_ms - now_ms.rem_euclid(DAY_MS);
    (0..WEEK_DAYS)
        .rev()
        .map(|k| {
            let start = today - k * DAY_MS;
            Day {
                day: format_time(start)[..10].to_string(),
                window: window(pts, start - 1, start + DAY_MS - 1),
            }
        })
        .collect()
}

/// `pts` sorted by time.
fn last_failure(pts: &[Point], now_ms: i64) -> Option<LastFailure> {
    let end = pts.iter().rposition(|p| !p.1)?;
    let start = pts[..end]
        .iter()
        .rposition(|p| p.1)
        .map(|i| i + 1)
        .unwrap_or(0);
    let since = pts[start].0;
    let until = pts.get(end + 1).map(|p| p.0);
    Some(LastFailure {
        class: pts[end].2.cloned(),
        since: format_time(since),
        until: until.map(format_time),
        duration_ms: until.unwrap_or(now_ms) - since,
        runs: (end - start + 1) as u32,
    })
}
