//! The report as a terminal table: one block per target, one line per layer, the failure
//! and its hint in words. Meant to be read at 3 a.m. without scrolling through JSON.

use std::fmt::Write;

use crate::report::{
    DnsEvidence, Evidence, Failure, HttpEvidence, LayerResult, Report, TargetReport, TcpEvidence,
    TdsEvidence, TlsEvidence,
};

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "routeproof {}  {}  {} target(s): {} ok, {} failed  ({:.1} ms, deadline {:.0} ms)",
        r.version,
        r.started_at,
        r.summary.total,
        r.summary.ok,
        r.summary.failed,
        r.duration_ms,
        r.deadline_ms
    );
    let resolvers: Vec<String> = r
        .environment
        .resolvers
        .iter()
        .map(|x| format!("{} ({})", x.server, x.source))
        .collect();
    let _ = writeln!(
        out,
        "host {}{}  dns {}",
        r.environment.hostname.as_deref().unwrap_or("?"),
        if r.environment.on_azure {
            " (Azure)"
        } else {
            ""
        },
        if resolvers.is_empty() {
            "-".into()
        } else {
            resolvers.join(", ")
        }
    );
    environment(&mut out, &r.environment);
    for t in &r.targets {
        out.push('\n');
        target(&mut out, t);
    }
    out
}

/// The site facts, DNS comparison and discovery, one line each when present.
fn environment(out: &mut String, e: &crate::report::Environment) {
    if let Some(n) = &e.note {
        let _ = writeln!(out, "note {n}");
    }
    if let Some(s) = &e.site {
        let opt = |v: &Option<String>| v.as_deref().unwrap_or("?").to_string();
        let _ = writeln!(
            out,
            "site {}  instance {}  region {}  sku {}  runtime {} {}",
            s.name,
            s.instance_id
                .as_deref()
                .map(|i| i.chars().take(12).collect::<String>())
                .unwrap_or_else(|| "?".into()),
            opt(&s.region),
            opt(&s.sku),
            opt(&s.runtime),
            opt(&s.functions_version),
        );
        let _ = writeln!(
            out,
            "vnet private ip {}  route-all {} ({})",
            opt(&s.private_ip),
            s.route_all.as_str(),
            s.route_all_source
        );
    }
    match &e.dns.azure_dns {
        Some(a) => {
            let _ = writeln!(out, "dns custom; failures compared with Azure DNS {a}");
        }
        // Off Azure the note above already says why nothing is compared.
        None if e.dns.custom && e.on_azure => {
            let _ = writeln!(out, "dns custom; not compared: {}", e.dns.azure_dns_why);
        }
        None => {}
    }
    if let Some(d) = &e.discovery
        && d.enabled
    {
        let _ = writeln!(out, "discovery {} target(s) from app settings", d.added);
        for n in &d.notes {
            let _ = writeln!(out, "      note: {n}");
        }
    }
}

fn target(out: &mut String, t: &TargetReport) {
    let verdict = if t.ok { "PASS" } else { "FAIL" };
    let reached = t.reached.map(|l| l.as_str()).unwrap_or("nothing");
    let _ = writeln!(out, "{verdict}  {}  {}", t.name, t.target);
    if let Some(s) = &t.source {
        let _ = writeln!(out, "      from app setting {s}");
    }
    let _ = writeln!(out, "      reached {reached}, {:.1} ms", t.duration_ms);
    for l in &t.layers {
        layer(out, l, t.failure.as_ref());
    }
    for s in &t.skipped {
        let _ = writeln!(out, "      {:<5} --     {}", s.layer.as_str(), s.reason);
    }
    for a in &t.route {
        let _ = writeln!(
            out,
            "      route {} -> {}: {}",
            a.ip,
            a.path.as_str(),
            a.why
        );
    }
    if let Some(f) = &t.failure {
        match &f.rule {
            Some(rule) => {
                let _ = writeln!(out, "      => {} ({rule}): {}", f.class, f.message);
            }
            None => {
                let _ = writeln!(out, "      => {}: {}", f.class, f.message);
            }
        }
        let _ = writeln!(out, "      hint: {}", f.hint);
    }
    for w in &t.warnings {
        let _ = writeln!(out, "      warning: {w}");
    }
}

fn layer(out: &mut String, l: &LayerResult, target_failure: Option<&Failure>) {
    let status = if l.ok { "ok" } else { "FAIL" };
    let head = format!(
        "      {:<5} {:<4} {:>8.3} ms  ",
        l.layer.as_str(),
        status,
        l.duration_ms
    );
    let pad = " ".repeat(head.len());
    match &l.evidence {
        Evidence::Dns(d) => dns(out, &head, &pad, d),
        Evidence::Tcp(t) => tcp(out, &head, &pad, t),
        Evidence::Tls(t) => tls(out, &head, &pad, t),
        Evidence::Http(h) => http(out, &head, &pad, h),
        Evidence::Tds(t) => tds(out, &head, &pad, t),
        Evidence::Service(v) => {
            let w = &v.witness;
            let seen = w["witness"]["addr"].as_str().unwrap_or("-");
            let zone = w["privatelink_zone"]
                .as_str()
                .map(|z| format!(", DNS through {z}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{head}{} {} (status {}), witness {} ({}){zone}",
                v.service,
                v.verdict,
                v.answer["status"],
                seen,
                w["conclusion"].as_str().unwrap_or("unknown")
            );
            if let Some(a) = &v.authorized {
                let _ = writeln!(out, "{pad}authorised read: status {}", a["status"]);
            }
            identity(out, &pad, v.identity.as_ref());
        }
        Evidence::Smb(s) => {
            let _ = writeln!(
                out,
                "{head}SMB {}",
                s.smb["dialect"].as_str().unwrap_or("no dialect")
            );
        }
        Evidence::Protocol(p) => {
            let what = format!("{}{}", p.protocol, protocol_summary(p));
            let _ = match p.witness {
                Some(w) => writeln!(out, "{head}{what} (server saw us as {w})"),
                None => writeln!(out, "{head}{what}"),
            };
            identity(out, &pad, p.identity.as_ref());
        }
        Evidence::None {} => {
            let _ = writeln!(out, "{head}");
        }
    }
    // The target's failure is printed once below; a layer's own error only when it differs.
    if let Some(e) = l.error.as_ref().filter(|e| Some(*e) != target_failure) {
        let _ = writeln!(out, "{pad}{}: {}", e.class, e.message);
    }
}

/// The managed-identity token request behind a login: which identity, for what, how long.
fn identity(out: &mut String, pad: &str, i: Option<&crate::report::IdentityEvidence>) {
    let Some(i) = i else { return };
    let how = match (i.ok, i.cached) {
        (false, _) => "no token".to_string(),
        (true, true) => "token (cached in this run)".to_string(),
        (true, false) => format!("token in {:.3} ms", i.token_ms.unwrap_or_default()),
    };
    let _ = writeln!(
        out,
        "{pad}identity {} for {}: {how}",
        i.identity, i.resource
    );
}

/// The messaging layers' decisive evidence in a few words: AMQP's SASL mechanisms and
/// container, Kafka's API key range and advertised brokers.
fn protocol_summary(p: &crate::report::ProtocolEvidence) -> String {
    let d = &p.detail;
    let list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    match p.protocol {
        "amqp" => {
            let mechs = list(&d["mechanisms"]);
            if !mechs.is_empty() {
                parts.push(format!("SASL {}", mechs.join(" ")));
            }
            if let Some(c) = d["container_id"].as_str() {
                parts.push(format!("container {c}"));
            }
        }
        "kafka" => {
            if let Some(r) = d["api_key_range"].as_array()
                && let [lo, hi] = r.as_slice()
            {
                parts.push(format!("API keys {lo}-{hi}"));
            }
            let brokers = list(&d["brokers"]);
            if !brokers.is_empty() {
                parts.push(format!("brokers {}", brokers.join(" ")));
            }
        }
        _ => {}
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

fn dns(out: &mut String, head: &str, pad: &str, d: &DnsEvidence) {
    let _ = writeln!(
        out,
        "{head}{} {} {} via {}",
        d.query,
        d.types.join("/"),
        d.rcode.as_deref().unwrap_or("no answer"),
        d.server.as_deref().unwrap_or("-")
    );
    for h in &d.cname_chain {
        let _ = writeln!(
            out,
            "{pad}{} -> {} (CNAME, ttl {})",
            h.name, h.target, h.ttl
        );
    }
    for a in &d.addresses {
        let _ = writeln!(out, "{pad}{} {} (ttl {})", a.ip, a.class.as_str(), a.ttl);
    }
    for r in &d.records {
        if r.rtype != "CNAME" {
            let _ = writeln!(
                out,
                "{pad}{} {} {} (ttl {})",
                r.name, r.rtype, r.data, r.ttl
            );
        }
    }
    if let Some(a) = &d.azure_dns {
        let what = answer(a);
        let _ = writeln!(
            out,
            "{pad}Azure DNS {}: {what}, {:.3} ms",
            a.server, a.duration_ms
        );
    }
    for s in &d.servers {
        let what = answer(s);
        let _ = writeln!(
            out,
            "{pad}server {} ({}): {what}, {:.3} ms",
            s.server, s.source, s.duration_ms
        );
    }
}

/// One server's answer in a word: its failure class, its rcode, or its addresses.
fn answer(a: &crate::report::ServerAnswer) -> String {
    match (&a.class, a.addresses.is_empty()) {
        (Some(c), _) => c.as_str().to_string(),
        (None, true) => a.rcode.clone().unwrap_or_default(),
        (None, false) => a
            .addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn tcp(out: &mut String, head: &str, pad: &str, t: &TcpEvidence) {
    let peer = t.peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let local = t.local.map(|l| format!(" from {l}")).unwrap_or_default();
    let settle = t
        .settle_ms
        .map(|s| format!(", then watched {s:.0} ms for a reset"))
        .unwrap_or_default();
    let _ = writeln!(out, "{head}{peer}{local}{settle}");
    for a in &t.attempts {
        let what = if a.ok {
            "ok".to_string()
        } else {
            a.class.map(|c| c.to_string()).unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "{pad}attempt {} {what} {:.3} ms",
            a.peer, a.duration_ms
        );
    }
}

fn tls(out: &mut String, head: &str, pad: &str, t: &TlsEvidence) {
    let _ = writeln!(
        out,
        "{head}{} {} alpn {} sni {}{}",
        t.version.as_deref().unwrap_or("no handshake"),
        t.cipher.as_deref().unwrap_or(""),
        t.alpn.as_deref().unwrap_or("-"),
        t.sni.as_deref().unwrap_or("(none: IP)"),
        t.days_left
            .map(|d| format!(", expires in {d} days"))
            .unwrap_or_default()
    );
    tls_lines(out, pad, t);
}

/// The verification verdict and chain, shared by the TLS layer and TDS's handshake.
fn tls_lines(out: &mut String, pad: &str, t: &TlsEvidence) {
    if let Some(w) = &t.would_fail {
        let _ = writeln!(out, "{pad}NOT VERIFIED (insecure = true): {w}");
    }
    for (i, c) in t.chain.iter().enumerate() {
        let _ = writeln!(
            out,
            "{pad}cert[{i}] {} (issuer {}) {} .. {}",
            c.subject, c.issuer, c.not_before, c.not_after
        );
        if !c.sans.is_empty() {
            let _ = writeln!(out, "{pad}        {}", c.sans.join(", "));
        }
    }
}

fn http(out: &mut String, head: &str, pad: &str, h: &HttpEvidence) {
    let status = h
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "no answer".into());
    let phases = [("first byte", h.ttfb_ms), ("body", h.transfer_ms)]
        .iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n} {v:.3} ms")))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "{head}{} {} -> {status} {} ({} bytes{}) {phases}",
        h.method,
        h.url,
        h.version.as_deref().unwrap_or(""),
        h.body_bytes,
        if h.body_truncated { ", truncated" } else { "" }
    );
    for r in &h.redirects {
        let _ = writeln!(out, "{pad}redirect {r}");
    }
}

fn tds(out: &mut String, head: &str, pad: &str, t: &TdsEvidence) {
    let phases = [
        ("prelogin", t.prelogin_ms),
        ("tls", t.tls_ms),
        ("token", t.token_ms),
        ("login", t.login_ms),
        ("query", t.query_ms),
    ]
    .iter()
    .filter_map(|(n, v)| v.map(|v| format!("{n} {v:.3} ms")))
    .collect::<Vec<_>>()
    .join(", ");
    let _ = writeln!(
        out,
        "{head}SQL Server {} encryption {} (server {}){} {phases}",
        t.server_version.as_deref().unwrap_or("?"),
        t.encryption.as_deref().unwrap_or("-"),
        t.encryption_server.as_deref().unwrap_or("-"),
        if t.fedauth_required == Some(true) {
            ", Entra auth required"
        } else {
            ""
        },
    );
    if let Some(tls) = &t.tls {
        tls_lines(out, pad, tls);
    }
    if let Some(m) = &t.login_method {
        let who = t
            .login_user
            .as_deref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default();
        let conn = t
            .login_connection
            .as_ref()
            .and_then(|c| c.local.zip(c.peer))
            .map(|(l, p)| format!(" ({l} -> {p})"))
            .unwrap_or_default();
        let outcome = if t.logged_in {
            "logged in"
        } else {
            "login not completed"
        };
        let _ = writeln!(out, "{pad}login {m}{who}{conn}: {outcome}");
    }
    if let (Some(q), Some(r)) = (&t.query, &t.result) {
        let _ = writeln!(out, "{pad}query `{q}`: {r}");
    }
    if let Some(e) = &t.sql_error {
        let _ = writeln!(
            out,
            "{pad}SQL error {} state {} class {}: {}",
            e.number, e.state, e.class, e.message
        );
    }
    if let Some(r) = &t.redirect {
        let _ = writeln!(out, "{pad}redirected to {}", r.target);
        for l in &r.layers {
            let status = if l.ok { "ok" } else { "FAIL" };
            let _ = writeln!(
                out,
                "{pad}  {} {status} {:.3} ms",
                l.layer.as_str(),
                l.duration_ms
            );
        }
        if let Some(h) = &r.handshake {
            let _ = writeln!(
                out,
                "{pad}  there: SQL Server {} encryption {}, prelogin {}, tls {}",
                h.server_version.as_deref().unwrap_or("?"),
                h.encryption.as_deref().unwrap_or("-"),
                h.prelogin_ms.map_or("-".into(), |v| format!("{v:.3} ms")),
                h.tls_ms.map_or("-".into(), |v| format!("{v:.3} ms")),
            );
            if let Some(tls) = &h.tls {
                tls_lines(out, &format!("{pad}  "), tls);
            }
        }
    }
}
