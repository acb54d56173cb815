//! The status page's history section (docs/storage.md): per target a strip of the last
//! runs (green ok, red failed, the title says class and time), uptime over 24 h and 7 d,
//! the last failure (class, when, for how long) and the last good time. Built from the
//! `history` object the handler puts next to the report; inline CSS only, every value
//! escaped.

use std::fmt::Write;

use serde_json::Value;

use super::html::escape;

pub const STYLE: &str = "\
.hist{background:#fff;border-radius:.5rem;padding:.6rem .8rem;margin:.5rem 0}\
.strip{display:flex;gap:2px;flex-wrap:wrap;margin:.3rem 0}\
.run{display:inline-block;width:.55rem;height:1.1rem;border-radius:2px;background:#1a7f37}\
.run.f{background:#c62828}\
.up{font-size:.85rem;color:#333;font-variant-numeric:tabular-nums}";

/// `history`: `{"off": text}`, `{"error": class}` or `{"uptime": [TargetUptime…],
/// "store": StoreInfo}`.
pub fn section(out: &mut String, history: &Value) {
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
    let targets = history
        .get("uptime")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if targets.is_empty() {
        out.push_str("<p class=\"meta\">No runs stored yet.</p>\n");
        return;
    }
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
        escape(match text("/last_good") {
            "" => "never",
            s => s,
        }),
    );
    if let Some(f) = t.get("last_failure").filter(|f| f.is_object()) {
        let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
        let mins = f.get("duration_ms").and_then(Value::as_f64).unwrap_or(0.0) / 60_000.0;
        let until = match s("until") {
            "" => "ongoing".to_string(),
            u => format!("until {u}"),
        };
        let _ = write!(
            out,
            "<div class=\"up\">last failure <span class=\"class\">{}</span> since {}, {} ({:.1} min, {} runs)</div>",
            escape(match s("class") {
                "" => "unknown",
                c => c,
            }),
            escape(s("since")),
            escape(&until),
            mins,
            f.get("runs").and_then(Value::as_u64).unwrap_or(0),
        );
    }
    out.push_str("</div>\n");
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
                       {"at": "2026-12-01T10:01:00.000Z", "ok": false, "class": "tcp.refused"}]
        }]});
        let mut out = String::new();
        section(&mut out, &h);
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
        assert!(out.contains("ongoing (2.0 min, 2 runs)"), "{out}");
        let mut out = String::new();
        section(
            &mut out,
            &json!({"off": "history is off: set AzureWebJobsStorage or ROUTEPROOF_STORAGE"}),
        );
        assert!(
            out.contains("history is off: set AzureWebJobsStorage"),
            "{out}"
        );
    }
}
