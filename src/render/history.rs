//! The status page's history section (docs/storage.md): per target a strip of the last
//! runs (green ok, red failed, the title says class and time), uptime over 24 h and 7 d,
//! the last failure (class, when, for how long) and the last good time. Built from the
//! `history` object the handler puts next to the report; inline CSS only, every value
//! escaped. And the same history as `routeproof history` prints it (`lines`).

use std::fmt::Write;

use serde_json::Value;

use crate::store::{History, TargetUptime};

use super::html::escape;

/// `routeproof history` without `--json`: one line per run (time, instance, trigger,
/// verdict, each target's), then each target's uptime over 24 h and 7 d.
pub fn lines(h: &History, uptime: &[TargetUptime]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} run(s) from {} to {}", h.runs.len(), h.from, h.to);
    for r in &h.runs {
        let targets: Vec<String> = r
            .targets
            .iter()
            .map(|t| match &t.class {
                Some(c) if !t.ok => format!("{} FAIL {}", t.name, c.as_str()),
                _ if !t.ok => format!("{} FAIL", t.name),
                _ => format!("{} ok", t.name),
            })
            .collect();
        let _ = writeln!(
            out,
            "{}  {:<16} {:<5} {}  {}",
            r.finished_at,
            r.instance,
            format!("{:?}", r.trigger).to_lowercase(),
            if r.ok { "ok  " } else { "FAIL" },
            targets.join(", ")
        );
    }
    let pct = |u: Option<f64>| u.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0));
    for u in uptime {
        let _ = writeln!(
            out,
            "{}: uptime 24h {} ({} runs), 7d {} ({} runs); last good {}",
            u.name,
            pct(u.day.uptime),
            u.day.runs,
            pct(u.week.uptime),
            u.week.runs,
            u.last_good.as_deref().unwrap_or("never")
        );
    }
    out
}

pub const STYLE: &str = "\
.hist{background:#fff;border-radius:.5rem;padding:.6rem .8rem;margin:.5rem 0}\
.strip{display:flex;gap:2px;flex-wrap:wrap;margin:.3rem 0}\
.run{display:inline-block;width:.55rem;height:1.1rem;border-radius:2px;background:#1a7f37}\
.run.f{background:#c62828}\
.week{display:grid;grid-template-columns:repeat(7,minmax(0,1fr));gap:2px;margin:.3rem 0;max-width:28rem}\
.d{font-size:.7rem;text-align:center;padding:.1rem 0;border-radius:3px;color:#fff;background:#1a7f37;font-variant-numeric:tabular-nums}\
.d b{display:block;font-weight:600}.d.part{background:#b26a00}.d.bad{background:#c62828}.d.none{background:#dfe2e6;color:#555}\
.up{font-size:.85rem;color:#333;font-variant-numeric:tabular-nums}.t{white-space:nowrap}";

/// `history`: `{"off": text}`, `{"error": class}` or `{"uptime": [TargetUptime…],
/// "store": StoreInfo}`. Targets come in `order` (the report's), then any others.
pub fn section(out: &mut String, history: &Value, order: &[&str]) {
    out.push_str("<h2>History</h2>\n");
    if let Some(off) = history.get("off").and_then(Value::as_str) {
        let _ = writeln!(out, "<p class=\"meta\">{}</p>", escape(off));
        return;
    }
    if let Some(class) = history.get("error").and_then(Value::as_str) {
        let _ = writeln!(
            out,
            "<p class=\"meta\">The store could not be read (<span class=\"class\">{}</span>): history is not shown.</p>",
            escape(class)
        );
        return;
    }
    let mut targets: Vec<&Value> = history
        .get("uptime")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if targets.is_empty() {
        out.push_str("<p class=\"meta\">No runs stored yet.</p>\n");
        return;
    }
    targets.sort_by_key(|t| {
        let name = t.get("name").and_then(Value::as_str).unwrap_or("");
        order.iter().position(|n| *n == name).unwrap_or(order.len())
    });
    let _ = writeln!(
        out,
        "<p class=\"meta\">Per target: the last {} runs (oldest first, hover for time and class), \
         the last 7 days (UTC), uptime and the last failure.</p>",
        crate::store::uptime::STRIP_RUNS
    );
    for t in targets {
        target(out, t);
    }
}

fn target(out: &mut String, t: &Value) {
    let text = |p: &str| t.pointer(p).and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        out,
        "<div class=\"hist\"><div class=\"name\">{}</div><div class=\"strip\">",
        escape(text("/name"))
    );
    for m in t
        .get("recent")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let ok = m.get("ok").and_then(Value::as_bool).unwrap_or(false);
        let at = m.get("at").and_then(Value::as_str).unwrap_or("");
        let title = match m.get("class").and_then(Value::as_str) {
            Some(c) if !ok => format!("{at} failed: {c}"),
            _ if !ok => format!("{at} failed"),
            _ => format!("{at} ok"),
        };
        let _ = write!(
            out,
            "<span class=\"run{}\" title=\"{}\"></span>",
            if ok { "" } else { " f" },
            escape(&title)
        );
    }
    out.push_str("</div>");
    week(out, t);
    let pct = |w: &str| {
        let runs = t
            .pointer(&format!("/{w}/runs"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match t.pointer(&format!("/{w}/uptime")).and_then(Value::as_f64) {
            Some(u) => format!("{:.2}% ({runs} runs)", u * 100.0),
            None => "no runs".to_string(),
        }
    };
    let _ = write!(
        out,
        "<div class=\"up\">uptime 24 h {} &middot; 7 d {} &middot; last good {}</div>",
        escape(&pct("day")),
        escape(&pct("week")),
        match text("/last_good") {
            "" => "never".to_string(),
            s => time(s),
        },
    );
    if let Some(f) = t.get("last_failure").filter(|f| f.is_object()) {
        let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
        let ms = f.get("duration_ms").and_then(Value::as_i64).unwrap_or(0);
        let until = match s("until") {
            "" => "ongoing".to_string(),
            u => format!("until {}", time(u)),
        };
        let _ = write!(
            out,
            "<div class=\"up\">last failure <span class=\"class\">{}</span> since {}, {} ({}, {})</div>",
            escape(match s("class") {
                "" => "unknown",
                c => c,
            }),
            time(s("since")),
            until,
            duration(ms),
            match f.get("runs").and_then(Value::as_u64).unwrap_or(0) {
                1 => "1 run".to_string(),
                n => format!("{n} runs"),
            },
        );
    }
    out.push_str("</div>\n");
}

/// The week row: one cell per UTC day (`days`), green when every run was ok, amber
/// when some failed, red when all did, grey without runs; the title has the counts.
fn week(out: &mut String, t: &Value) {
    let Some(days) = t.get("days").and_then(Value::as_array) else {
        return;
    };
    out.push_str("<div class=\"week\">");
    for d in days {
        let day = d.get("day").and_then(Value::as_str).unwrap_or("");
        let runs = d.get("runs").and_then(Value::as_u64).unwrap_or(0);
        let ok = d.get("ok").and_then(Value::as_u64).unwrap_or(0);
        let (class, label) = match d.get("uptime").and_then(Value::as_f64) {
            None => ("d none", "&ndash;".to_string()),
            Some(u) if ok == runs => ("d", format!("{:.0}%", u * 100.0)),
            Some(u) if ok == 0 => ("d bad", format!("{:.0}%", u * 100.0)),
            Some(u) => ("d part", format!("{:.1}%", (u * 1000.0).floor() / 10.0)),
        };
        let _ = write!(
            out,
            "<span class=\"{class}\" title=\"{}: {ok} of {runs} runs ok\"><b>{}</b>{label}</span>",
            escape(day),
            escape(day.get(5..).unwrap_or(day)),
        );
    }
    out.push_str("</div>");
}

/// `2026-12-01T10:03:00.000Z` as `2026-12-01 10:03 UTC`, kept on one line.
fn time(rfc3339: &str) -> String {
    let short = match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(d), Some(hm)) if rfc3339.ends_with('Z') => format!("{d} {hm} UTC"),
        _ => rfc3339.to_string(),
    };
    format!("<span class=\"t\">{}</span>", escape(&short))
}

/// `45 s`, `53 min`, `4 h 53 min`, `2 d 3 h`.
fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strip_uptime_and_last_failure_escaped() {
        let h = json!({"uptime": [{
            "name": "<sql>",
            "day": {"runs": 4, "ok": 3, "uptime": 0.75},
            "week": {"runs": 0, "ok": 0, "uptime": null},
            "last_good": "2026-12-01T10:03:00.000Z",
            "last_failure": {"class": "tcp.refused", "since": "2026-12-01T10:01:00.000Z",
                "until": null, "duration_ms": 120000, "runs": 2},
            "recent": [{"at": "2026-12-01T10:00:00.000Z", "ok": true},
                       {"at": "2026-12-01T10:01:00.000Z", "ok": false, "class": "tcp.refused"}],
            "days": [{"day": "2026-11-30", "runs": 0, "ok": 0, "uptime": null},
                     {"day": "2026-12-01", "runs": 4, "ok": 3, "uptime": 0.75}]
        }, {
            "name": "api", "day": {"runs": 0, "ok": 0, "uptime": null},
            "week": {"runs": 0, "ok": 0, "uptime": null}, "recent": []
        }]});
        let mut out = String::new();
        section(&mut out, &h, &[]);
        assert!(
            out.contains("&lt;sql&gt;") && !out.contains("<sql>"),
            "{out}"
        );
        assert!(
            out.contains("uptime 24 h 75.00% (4 runs) &middot; 7 d no runs"),
            "{out}"
        );
        assert!(
            out.contains("title=\"2026-12-01T10:01:00.000Z failed: tcp.refused\""),
            "{out}"
        );
        assert!(out.contains("<span class=\"run f\""), "{out}");
        // The week row: a grey day without runs, an amber one with a failure.
        assert!(
            out.contains("<span class=\"d none\" title=\"2026-11-30: 0 of 0 runs ok\"><b>11-30</b>&ndash;</span>")
                && out.contains("<span class=\"d part\" title=\"2026-12-01: 3 of 4 runs ok\"><b>12-01</b>75.0%</span>"),
            "{out}"
        );
        // The report's order, not the store's.
        let mut ordered = String::new();
        section(&mut ordered, &h, &["api", "<sql>"]);
        assert!(ordered.find(">api<").unwrap() < ordered.find("&lt;sql&gt;").unwrap());
        assert!(out.find("&lt;sql&gt;").unwrap() < out.find(">api<").unwrap());
        assert_eq!(duration(3 * 3600 * 1000), "3 h");
        assert_eq!(duration(293 * 60 * 1000), "4 h 53 min");
        assert_eq!(duration(2 * 86_400_000 + 3 * 3_600_000), "2 d 3 h");
        assert_eq!(duration(45_000), "45 s");
        assert!(out.contains("ongoing (2 min, 2 runs)"), "{out}");
        assert!(
            out.contains("since <span class=\"t\">2026-12-01 10:01 UTC</span>"),
            "{out}"
        );
        let mut out = String::new();
        section(
            &mut out,
            &json!({"off": "history is off: set AzureWebJobsStorage or ROUTEPROOF_STORAGE"}),
            &[],
        );
        assert!(
            out.contains("history is off: set AzureWebJobsStorage"),
            "{out}"
        );
    }
}
