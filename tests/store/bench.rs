//! Numbers for docs/storage.md, not checks (ignored; run with
//! `cargo test --test store bench -- --ignored --nocapture`): the bytes of the `last`
//! record and of one history record for a realistic 10-target run (DNS with CNAME chains,
//! TLS with certificate chains, HTTP, the service layer for Azure PaaS names, a refused
//! port), and write / read latency against Azurite, median of 50.
//!
//! The run is real: `routeproof serve`'s timer probes servers on 127.0.0.1 whose Azure-
//! like names the test's DNS server answers with 127.0.0.1.

use std::time::Instant;

use routeproof::report::Report;
use routeproof::store::{HistoryFilter, Trigger};

use crate::azurite::free_port;
use crate::fixtures::{azurite_or_skip, median, now_rfc3339, store};
use crate::serve::{Serve, store_env};
use crate::support::certs::{self, Ca, LeafSpec, PemFiles};
use crate::support::dns::{DnsServer, Zone};
use crate::support::web;

const HTTPS: [(&str, &str); 4] = [
    ("kv-1", "kv1.vault.azure.net"),
    ("kv-2", "kv2.vault.azure.net"),
    ("blob-1", "st1.blob.core.windows.net"),
    ("blob-2", "st2.blob.core.windows.net"),
];
const HTTP: [(&str, &str); 3] = [
    ("api-1", "api1.internal.contoso.com"),
    ("api-2", "api2.internal.contoso.com"),
    ("api-3", "api3.internal.contoso.com"),
];
const TCP: [(&str, &str); 3] = [
    ("sql-1", "sql1.database.windows.net"),
    ("redis-1", "redis1.redis.cache.windows.net"),
    ("legacy", "legacy.internal.contoso.com"),
];

fn zone() -> Zone {
    let mut z = Zone::new();
    for (_, name) in HTTPS.iter().chain(&HTTP).chain(&TCP) {
        // The public name points at its privatelink name, which answers 127.0.0.1.
        let (host, rest) = name.split_once('.').unwrap();
        let private = format!("{host}.privatelink.{rest}");
        z = z.cname(name, &private, 300).a(&private, "127.0.0.1", 10);
    }
    z
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/storage.md, not a check"]
async fn bench_store_latency_and_record_sizes() {
    let Some(az) = azurite_or_skip("bench_store_latency_and_record_sizes", None) else {
        return;
    };
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof bench CA");
    let names: Vec<&str> = HTTPS.iter().map(|(_, n)| *n).collect();
    let leaf = ca.issue(&LeafSpec::new(names));
    let pem = PemFiles::write(&ca, &leaf);
    let https = web::https(leaf.server_config(&[], &[b"http/1.1"])).await;
    let http = web::http().await;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dns = DnsServer::start(zone()).await;

    let mut config = format!(
        "[engine]\ndns_servers = [\"{}\"]\ntcp_settle = \"0s\"\nca_file = \"{}\"\n",
        dns.addr,
        pem.ca.display()
    );
    let mut add = |name: &str, target: String| {
        config.push_str(&format!(
            "\n[[targets]]\nname = \"{name}\"\ntarget = \"{target}\"\n"
        ));
    };
    for (n, host) in HTTPS {
        add(n, format!("https://{host}:{}/", https.addr.port()));
    }
    for (n, host) in HTTP {
        add(n, format!("http://{host}:{}/", http.addr.port()));
    }
    let closed = free_port();
    for (n, host) in TCP {
        let port = if n == "legacy" {
            closed
        } else {
            open.local_addr().unwrap().port()
        };
        add(n, format!("tcp://{host}:{port}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routeproof.toml");
    std::fs::write(&path, config).unwrap();
    let a = Serve::start(&path.display().to_string(), &store_env(&az, "instance-a")).await;
    let (status, reply) = a.timer().await;
    assert_eq!(status, 200, "{reply}");

    let blobs = crate::all_blobs(&az).await;
    let (_, last) = blobs.iter().find(|(n, _)| n.starts_with("last/")).unwrap();
    let (_, seg) = blobs
        .iter()
        .find(|(n, _)| n.starts_with("history/"))
        .unwrap();
    let seg: serde_json::Value = serde_json::from_str(seg).unwrap();
    let envelope: serde_json::Value = serde_json::from_str(last).unwrap();
    let report: Report = serde_json::from_value(envelope["report"].clone()).unwrap();
    assert_eq!(report.targets.len(), 10);
    let failed: Vec<String> = report
        .targets
        .iter()
        .filter(|t| !t.ok)
        .map(|t| {
            let class = t.failure.as_ref().map_or("?", |f| f.class.as_str());
            format!("{} {class}", t.name)
        })
        .collect();
    eprintln!(
        "RECORD_BYTES 10 targets ({} failed: {failed:?}): last blob {} bytes (report {} bytes), one history record {} bytes, its segment blob {} bytes",
        failed.len(),
        last.len(),
        serde_json::to_vec(&envelope["report"]).unwrap().len(),
        serde_json::to_vec(&seg["runs"][0]).unwrap().len(),
        serde_json::to_vec(&seg).unwrap().len(),
    );
    drop(a);

    // Latency of the store itself, this real report written 50 times (one hour segment
    // growing to 51 runs, as a 1-minute timer's does), and read back with the cache off.
    let s = store(crate::key_env(&az, "instance-b")).unwrap();
    let (mut writes, mut lasts, mut hist, mut ups) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..50 {
        let r = Report {
            started_at: now_rfc3339(-60_000 + i * 100),
            ..report.clone()
        };
        let t = Instant::now();
        s.record(&r, Trigger::Timer).await.unwrap();
        writes.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        s.last().await.unwrap().unwrap();
        lasts.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        s.history(&HistoryFilter::default()).await.unwrap();
        hist.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        s.uptime().await.unwrap();
        ups.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    eprintln!(
        "LATENCY azurite http key, n=50 medians: record {:.1} ms, last {:.1} ms, history {:.1} ms, uptime {:.1} ms",
        median(writes),
        median(lasts),
        median(hist),
        median(ups)
    );
    drop((https, http, open, dns));
}
