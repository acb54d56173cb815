//! The HTML status page (`/api/probe?format=html`, or `Accept: text/html`): one row per
//! target with a clear PASS/FAIL, the layer reached, the failure class and hint, and a
//! per-layer timing waterfall; then the environment, the last scheduled run and the
//! full text report.
//!
//! Self-contained: inline CSS only, no scripts, fonts, images or links to anything, so
//! it renders under `default-src 'none'; style-src 'unsafe-inline'` and behind the
//! function key (nothing else needs fetching). Every value is escaped: target names,
//! DNS answers and error messages are not ours to trust. Narrow screens get the rows
//! stacked (a flex layout that wraps), so it reads on a phone.

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::report::{Layer, LayerResult, Report, TargetReport};

const STYLE: &str = "\
:root{color-scheme:light}\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:1rem;color:#1d1d1f;background:#f4f5f7;line-height:1.4}\
main{max-width:60rem;margin:0 auto}\
h1{font-size:1.4rem;margin:.2rem 0 .4rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}\
.verdict{display:inline-block;padding:.1rem .6rem;border-radius:.3rem;color:#fff;font-size:1rem;vertical-align:middle}\
.v-ok{background:#1a7f37}.v-fail{background:#c62828}\
.meta{color:#555;font-size:.9rem;margin:.2rem 0;overflow-wrap:anywhere}\
.row{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:flex-start;background:#fff;border-radius:.5rem;\
padding:.7rem .8rem;margin:.5rem 0;border-left:.4rem solid #1a7f37;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
.row.fail{border-left-color:#c62828}\
.badge{font-weight:700;font-size:.85rem;padding:.1rem .5rem;border-radius:.25rem;color:#fff;background:#1a7f37}\
.fail .badge{background:#c62828}\
.who{flex:1 1 14rem;min-width:0}.name{font-weight:600;word-break:break-word}\
.tgt{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;color:#555;word-break:break-all}\
.reached{font-size:.85rem;color:#333}\
.why{flex:1 1 100%;font-size:.9rem}.class{font-family:ui-monospace,Menlo,Consolas,monospace;color:#c62828;font-weight:600}\
.hint{color:#333;margin-top:.15rem}\
.wf{flex:1 1 100%}.lane{display:flex;align-items:center;gap:.5rem;font-size:.78rem;margin:.12rem 0}\
.lname{width:3.6rem;text-align:right;font-family:ui-monospace,Menlo,Consolas,monospace;color:#444}\
.track{position:relative;flex:1;height:.8rem;background:#eef0f3;border-radius:.2rem}\
.bar{position:absolute;top:0;height:100%;border-radius:.2rem;min-width:2px;background:#7a869a}\
.ms{width:5.5rem;color:#444;font-variant-numeric:tabular-nums}\
.l-dns{background:#6b5bd2}.l-tcp{background:#2b7bb9}.l-tls{background:#1f9d8a}.l-tds{background:#9c6644}.l-http{background:#e09a1f}\
.bad{background:#c62828!important}\
.skip{font-size:.78rem;color:#777}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;background:#fff;padding:.7rem .8rem;border-radius:.5rem;margin:0}\
dt{font-weight:600;color:#444}dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem;word-break:break-word}\
details{background:#fff;border-radius:.5rem;padding:.5rem .8rem;margin-top:1rem}\
pre{overflow-x:auto;font-size:.78rem}\
@media (max-width:30rem){body{padding:.5rem}dl{grid-template-columns:1fr}dt{margin-top:.3rem}}";

/// Renders the whole page. `extra` carries the invocation and, for `?last`, the
/// `scheduled` object (invocation, finished_at, is_past_due): shown as "last
/// scheduled run".
pub fn render(report: &Report, extra: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(8192);
    let verdict = if report.ok { "ALL OK" } else { "FAILED" };
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>routeproof: {} ({}/{} ok)</title><style>{STYLE}{}</style></head><body><main>\n",
        verdict,
        report.summary.ok,
        report.summary.total,
        super::history::STYLE,
    );
    let _ = writeln!(
        out,
        "<h1>routeproof <span class=\"verdict {}\">{verdict}</span></h1>",
        if report.ok { "v-ok" } else { "v-fail" },
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} target(s): <b>{} ok</b>, <b>{} failed</b> &middot; started {} &middot; {} (deadline {})</p>",
        report.summary.total,
        report.summary.ok,
        report.summary.failed,
        escape(&report.started_at),
        fmt_ms(report.duration_ms),
        fmt_ms(report.deadline_ms),
    );
    // `scheduled`: this instance's own run; `stored`: the shared store's record.
    if let Some(s) = extra.get("scheduled").or_else(|| extra.get("stored")) {
        let finished = s.get("finished_at").and_then(Value::as_str).unwrap_or("?");
        let instance = s.get("instance").and_then(Value::as_str);
        let past_due = s
            .get("is_past_due")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let id = s
            .pointer("/invocation/id")
            .and_then(Value::as_str)
            .unwrap_or("");
        let _ = writeln!(
            out,
            "<p class=\"meta\">Last scheduled run: finished {}{}{}{}</p>",
            escape(finished),
            instance
                .map(|i| format!(
                    " &middot; instance <code>{}</code> (shared store)",
                    escape(i)
                ))
                .unwrap_or_default(),
            if id.is_empty() {
                String::new()
            } else {
                format!(" &middot; invocation <code>{}</code>", escape(id))
            },
            if past_due { " &middot; past due" } else { "" },
        );
    }

    out.push_str("<h2>Targets</h2>\n");
    let scale = report
        .targets
        .iter()
        .map(|t| t.duration_ms)
        .fold(0.0f64, f64::max)
        .max(0.001);
    for t in &report.targets {
        target_row(&mut out, t, scale);
    }

    if let Some(h) = extra.get("history") {
        let order: Vec<&str> = report.targets.iter().map(|t| t.name.as_str()).collect();
        super::history::section(&mut out, h, &order);
    }
    environment(&mut out, report);
    for (k, v) in extra {
        if k == "scheduled" || k == "stored" || k == "history" {
            continue;
        }
        let _ = writeln!(
            out,
            "<p class=\"meta\">{}: <code>{}</code></p>",
            escape(k),
            escape(&pairs(v))
        );
    }
    out.push_str("<details><summary>Full report (text)</summary><pre>");
    out.push_str(&escape(&super::text::render(report)));
    out.push_str("</pre></details>\n</main></body></html>\n");
    out
}

fn target_row(out: &mut String, t: &TargetReport, scale: f64) {
    let _ = write!(
        out,
        "<section class=\"row{}\"><span class=\"badge\">{}</span>\
         <div class=\"who\"><div class=\"name\">{}</div><div class=\"tgt\">{}</div></div>\
         <div class=\"reached\">reached <b>{}</b> &middot; {}</div>",
        if t.ok { "" } else { " fail" },
        if t.ok { "PASS" } else { "FAIL" },
        escape(&t.name),
        escape(&t.target),
        t.reached.map(Layer::as_str).unwrap_or("nothing"),
        fmt_ms(t.duration_ms),
    );
    if let Some(f) = &t.failure {
        let _ = write!(
            out,
            "<div class=\"why\"><span class=\"class\">{}</span>{}: {}<div class=\"hint\">{}</div></div>",
            escape(f.class.as_str()),
            f.layer
                .map(|l| format!(" at {}", l.as_str()))
                .unwrap_or_default(),
            escape(&f.message),
            escape(&f.hint),
        );
    }
    if !t.layers.is_empty() {
        out.push_str("<div class=\"wf\">");
        for (l, start) in t.layers.iter().zip(layer_starts(t)) {
            lane(out, l, start, scale);
        }
        for s in &t.skipped {
            let _ = write!(
                out,
                "<div class=\"skip\">{} skipped: {}</div>",
                s.layer.as_str(),
                escape(&s.reason)
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</section>\n");
}

/// Where each layer's bar starts, in ms from the target's start: the layer's real start
/// (`start_ms`, set by the engine where it began the layer), so gaps between layers (a
/// policy check, loading the trust store) and a layer nested in another (TLS inside a
/// PostgreSQL layer) are drawn where they happened.
pub fn layer_starts(t: &TargetReport) -> Vec<f64> {
    t.layers.iter().map(|l| l.start_ms.max(0.0)).collect()
}

/// One waterfall lane at its start offset (also in `data-start-ms`, with the duration in
/// `data-ms`, exactly as the report has them). Widths are relative to the slowest target
/// on the page.
fn lane(out: &mut String, l: &LayerResult, offset: f64, scale: f64) {
    let left = (offset / scale * 100.0).clamp(0.0, 100.0);
    let width = (l.duration_ms.max(0.0) / scale * 100.0).clamp(0.0, 100.0 - left);
    let _ = write!(
        out,
        "<div class=\"lane\" data-start-ms=\"{offset:.3}\" data-ms=\"{:.3}\" title=\"{} from {} to {}\">\
         <span class=\"lname\">{}</span><span class=\"track\">\
         <span class=\"bar l-{}{}\" style=\"left:{left:.2}%;width:{width:.2}%\"></span></span>\
         <span class=\"ms\">{}{}</span></div>",
        l.duration_ms,
        l.layer.as_str(),
        fmt_ms(offset),
        fmt_ms(offset + l.duration_ms.max(0.0)),
        l.layer.as_str(),
        l.layer.as_str(),
        if l.ok { "" } else { " bad" },
        fmt_ms(l.duration_ms),
        if l.ok { "" } else { " &#10007;" },
    );
}

/// The environment as labelled rows: where this ran (site, instance, private IP),
/// how its traffic leaves (route-all and where that came from), which DNS servers it
/// asked and why, and what discovery added. Never raw JSON.
fn environment(out: &mut String, report: &Report) {
    let env = &report.environment;
    out.push_str("<h2>Environment</h2>\n<dl>");
    let mut row = |label: &str, value: String| {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(&value));
    };
    if let Some(h) = &env.hostname {
        row("host", h.clone());
    }
    match &env.site {
        Some(site) => {
            let mut where_ = site.name.clone();
            for (k, v) in [("region", &site.region), ("plan", &site.sku)] {
                if let Some(v) = v {
                    where_.push_str(&format!(" · {k} {v}"));
                }
            }
            row("site", where_);
            row(
                "instance",
                site.instance_id.clone().unwrap_or_else(|| "unknown".into()),
            );
            row(
                "private IP",
                match &site.private_ip {
                    Some(ip) => {
                        format!("{ip} (VNet integration {})", site.vnet_integration.as_str())
                    }
                    None => format!(
                        "none seen (VNet integration {})",
                        site.vnet_integration.as_str()
                    ),
                },
            );
            row(
                "route-all",
                format!("{} ({})", site.route_all.as_str(), site.route_all_source),
            );
        }
        None => row(
            "site",
            env.note
                .clone()
                .unwrap_or_else(|| "not on Azure".to_string()),
        ),
    }
    let servers: Vec<String> = env
        .resolvers
        .iter()
        .map(|r| format!("{} ({})", r.server, r.source))
        .collect();
    row(
        "resolvers",
        if servers.is_empty() {
            "none".to_string()
        } else {
            servers.join(", ")
        },
    );
    let dns = &env.dns;
    let mut settings = Vec::new();
    if let Some(v) = &dns.website_dns_server {
        settings.push(format!("WEBSITE_DNS_SERVER {v}"));
    }
    if let Some(v) = &dns.website_dns_alt_server {
        settings.push(format!("WEBSITE_DNS_ALT_SERVER {v}"));
    }
    if settings.is_empty() && !dns.resolv_conf.is_empty() {
        settings.push(format!("resolv.conf {}", dns.resolv_conf.join(", ")));
    }
    settings.push(if dns.custom {
        "a custom DNS server answers".to_string()
    } else {
        "Azure DNS answers".to_string()
    });
    row("DNS settings", settings.join(" · "));
    row(
        "Azure DNS compared",
        match &dns.azure_dns {
            Some(a) => format!("{a} ({})", dns.azure_dns_why),
            None => format!("no ({})", dns.azure_dns_why),
        },
    );
    if let Some(d) = &env.discovery {
        let mut text = format!("{} ({})", if d.enabled { "on" } else { "off" }, d.why);
        if d.enabled {
            text.push_str(&format!(", {} target(s) added", d.added));
        }
        for n in &d.notes {
            text.push_str(&format!("; note: {n}"));
        }
        row("discovery", text);
    }
    out.push_str("</dl>\n");
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// `key=value` pairs of a small JSON object (nested objects inline), never braces.
fn pairs(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}={}", pairs(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(a) => a.iter().map(pairs).collect::<Vec<_>>().join(", "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// HTML-escapes text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_ms(0.42), "0.4 ms");
        assert_eq!(fmt_ms(123.4), "123 ms");
        assert_eq!(fmt_ms(12_345.0), "12.3 s");
    }
}
