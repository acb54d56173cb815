//! The service layer (src/probe/service) and the SMB 445 probe (src/probe/smb.rs) against
//! real peers on 127.0.0.1 (Azurite, Samba smbd) and loopback HTTPS contract stubs for the
//! services without an emulator. Nothing leaves the loopback: stubs answer for Azure host
//! names through TLS SNI, but every connection goes to 127.0.0.1.

#[path = "../support/cases.rs"]
mod cases;
#[allow(dead_code)]
#[path = "../support/certs.rs"]
mod certs;
#[allow(dead_code)]
#[path = "../support/dns.rs"]
mod dns_support;
#[allow(dead_code)]
#[path = "../support/engine.rs"]
mod engine_support;
#[allow(dead_code)]
#[path = "../support/faults.rs"]
mod faults;
#[allow(dead_code)]
#[path = "../support/identity.rs"]
mod identity_support;
mod peers;
#[allow(dead_code)]
#[path = "../support/stubs.rs"]
mod stubs;
#[allow(dead_code)]
#[path = "../support/web.rs"]
mod web;

mod azurite;
mod classes;
mod discovered;
mod discovered_identity;
mod engine;
mod identity;
mod services;
mod smb;
mod timings;

use std::net::SocketAddr;
use std::time::Duration;

use routeproof::probe::service::{self, Answer, ServiceRequest};
use routeproof::report::{Evidence, Failure, FailureClass, Layer, Report, TargetReport};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub const PLANTED_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.PLANTED-BEARER-TOKEN.c2ln";

pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// One exchange over plain TCP (Azurite's HTTP ports).
pub async fn over_tcp(addr: SocketAddr, host: &str, req: &ServiceRequest) -> Answer {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    service::exchange(tcp, host, req, deadline(10))
        .await
        .expect("exchange")
}

/// One exchange over TLS to 127.0.0.1 with `sni` as the server name and Host.
pub async fn over_tls(
    addr: SocketAddr,
    sni: &str,
    roots: std::sync::Arc<rustls::ClientConfig>,
    req: &ServiceRequest,
) -> Answer {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(sni.to_string()).expect("server name");
    let tls = tokio_rustls::TlsConnector::from(roots)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    service::exchange(tls, sni, req, deadline(10))
        .await
        .expect("exchange")
}

/// No planted credential anywhere in what a report could carry.
pub fn assert_clean(what: &str, text: &str, planted: &[&str]) {
    for p in planted {
        assert!(
            !text.contains(p),
            "{what} leaks a planted credential: {text}"
        );
    }
}

/// The service layer of `t` as JSON (its evidence flattened beside `duration_ms`).
pub fn service_layer(t: &TargetReport) -> serde_json::Value {
    let l = t
        .layers
        .iter()
        .find(|l| l.layer == Layer::Service)
        .unwrap_or_else(|| panic!("{}: no service layer: {t:#?}", t.name));
    assert!(matches!(l.evidence, Evidence::Service(_)), "{l:?}");
    serde_json::to_value(l).unwrap()
}

/// The test CA's certificate in a file, for a target's or the engine's `ca_file`.
pub fn ca_file(ca: &certs::Ca) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(ca.pem().as_bytes()).unwrap();
    f
}

/// An App Service site as the engine sees it: a loopback DNS server answering every one
/// of `names` with 127.0.0.1, `engine.azure_dns` on a dead loopback port, the site's
/// `WEBSITE_SITE_NAME` / `WEBSITE_PRIVATE_IP` plus `env`.
pub struct Site<'a> {
    pub names: &'a [&'a str],
    pub private_ip: &'a str,
    pub env: Vec<(&'static str, String)>,
    pub deadline: Option<Duration>,
}

impl Site<'_> {
    /// Runs `targets` (`[[targets]]` tables) through config parsing and the engine; the
    /// report, and everything a reader could be shown of it (JSON and `{:?}`).
    pub async fn run(&self, targets: &str) -> (Report, String) {
        let zone = self
            .names
            .iter()
            .fold(dns_support::Zone::new(), |z, n| z.a(n, "127.0.0.1", 0));
        let dns = dns_support::DnsServer::start(zone).await;
        let text = format!(
            "[engine]\ndns_servers = [\"{}\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\n{targets}",
            dns.addr
        );
        let mut pairs: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.extend([
            ("WEBSITE_SITE_NAME", "app1"),
            ("WEBSITE_PRIVATE_IP", self.private_ip),
        ]);
        let env = engine_support::env_of(&pairs);
        let r = engine_support::run(&text, &env, self.deadline).await;
        let shown = format!("{}\n{r:?}", serde_json::to_string(&r).unwrap());
        (r, shown)
    }

    /// The one target of `targets`, and what could be shown of the run.
    pub async fn one(&self, targets: &str) -> (TargetReport, String) {
        let (mut r, shown) = self.run(targets).await;
        (r.targets.remove(0), shown)
    }
}

/// `t` failed with `want`, and its hint says every one of `words`.
pub fn failed<'a>(t: &'a TargetReport, want: FailureClass, words: &[&str]) -> &'a Failure {
    let f = t
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{}: expected {want}, it passed: {t:#?}", t.name));
    assert_eq!(f.class, want, "{t:#?}");
    for w in words {
        assert!(
            f.hint.contains(w),
            "{want}: the hint lacks {w:?}: {}",
            f.hint
        );
    }
    f
}

/// App settings (owned pairs) as the environment a config and an engine read.
pub fn env_from(
    settings: &[(String, String)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: std::collections::HashMap<String, String> = settings.iter().cloned().collect();
    move |k: &str| map.get(k).cloned()
}
