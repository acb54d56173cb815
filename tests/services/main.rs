//! The service layer (src/probe/service) and the SMB 445 probe (src/probe/smb.rs) against
//! real peers on 127.0.0.1 (Azurite, Samba smbd) and loopback HTTPS contract stubs for the
//! services without an emulator. Nothing leaves the loopback: stubs answer for Azure host
//! names through TLS SNI, but every connection goes to 127.0.0.1.

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
#[path = "../support/identity.rs"]
mod identity_support;
mod peers;
mod stubs;

mod azurite;
mod discovered;
mod engine;
mod identity;
mod services;
mod smb;

use std::net::SocketAddr;
use std::time::Duration;

use routeproof::probe::service::{self, Answer, ServiceRequest};
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
