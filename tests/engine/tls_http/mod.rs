//! TLS and HTTP layers against real servers on loopback: axum behind rustls with
//! rcgen-made certificates (private CA, self-signed, expired, not yet valid, wrong name,
//! TLS 1.2 only, HTTP/2), raw responders for stalls and non-HTTP, and curl as an
//! independent oracle. Every assertion names the layer and the class.

use crate::support;

use routeproof::report::{FailureClass, Layer, Report};
use support::certs::{self, Ca, LeafSpec, PemFiles, Validity};
use support::dns::{DnsServer, Zone};
use support::engine::{class, env_of, http_ev, layers, tls_ev};
use support::web;

/// Names the tests use; all resolve to 127.0.0.1 through the test DNS server.
fn zone() -> Zone {
    Zone::new()
        .a("api.internal.test", "127.0.0.1", 60)
        .cname("app.contoso.test", "app.privatelink.contoso.test", 60)
        .a("app.privatelink.contoso.test", "127.0.0.1", 60)
}

struct Fixture {
    dns: DnsServer,
    ca: Ca,
    pem: PemFiles,
    leaf: certs::Material,
}

async fn fixture() -> Fixture {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof test CA");
    let leaf = ca.issue(&LeafSpec::new(["api.internal.test", "app.contoso.test"]));
    let pem = PemFiles::write(&ca, &leaf);
    Fixture {
        dns: DnsServer::start(zone()).await,
        ca,
        pem,
        leaf,
    }
}

async fn run(f: &Fixture, targets: &str, env: &[(&str, &str)]) -> Report {
    let text = format!(
        "[engine]\ndns_servers = [\"{}\"]\n[engine.timeouts]\ndns = \"1s\"\ntcp = \"1s\"\ntls = \"600ms\"\nhttp = \"600ms\"\nbody = \"600ms\"\n{targets}",
        f.dns.addr
    );
    support::engine::run(&text, &env_of(env), None).await
}

/// A target table with a unique name: several tests probe one URL with different options.
fn target(url: &str, extra: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("[[targets]]\nname = \"t{n}\"\ntarget = \"{url}\"\n{extra}\n")
}

fn ca_line(f: &Fixture) -> String {
    format!("ca_file = \"{}\"", f.pem.ca.display())
}

mod http;
mod tls;
