//! The engine's settings (`[engine]`), as `config` produces them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// Explicit DNS servers; empty means "Azure app settings, then resolv.conf".
    pub dns_servers: Vec<SocketAddr>,
    pub resolv_conf: PathBuf,
    /// `engine.discover`: add targets found in app settings (`None`: on inside Azure).
    pub discover: Option<bool>,
    /// `engine.azure_dns`: the Azure DNS to compare a failing custom DNS server with.
    /// `None`: 168.63.129.16:53, asked only when running on Azure.
    pub azure_dns: Option<SocketAddr>,
    /// `engine.route_all`: the operator's word for the site property
    /// `vnetRouteAllEnabled`, which the app cannot read.
    pub route_all: Option<bool>,
    /// What discovery did (set by `discover::apply`), for the report's environment.
    pub discovery: Option<super::DiscoverySummary>,
    /// Targets probed at once. Bounded because every probe is traffic into a private network.
    pub concurrency: usize,
    /// The whole run's budget; callers may shorten it (the HTTP trigger's own deadline).
    pub deadline: Duration,
    pub timeouts: Timeouts,
    /// Connect to every resolved address instead of the first.
    pub all_addresses: bool,
    /// How long a bare `tcp://` probe watches a fresh connection for an immediate reset.
    pub tcp_settle: Duration,
    /// Extra trust anchors for every TLS target (`engine.ca_file`), on top of the system store.
    pub ca_roots: Vec<CertificateDer<'static>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub dns: Duration,
    pub tcp: Duration,
    pub tls: Duration,
    /// Request written to the first response byte.
    pub http: Duration,
    /// First byte to the end of the body read.
    pub body: Duration,
    /// TDS: PRELOGIN, and the login (token, handshake, LOGINACK).
    pub login: Duration,
    /// TDS: the query after the login.
    pub query: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            dns_servers: Vec::new(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            discover: None,
            azure_dns: None,
            route_all: None,
            discovery: None,
            concurrency: 32,
            deadline: Duration::from_secs(30),
            timeouts: Timeouts {
                dns: Duration::from_secs(2),
                tcp: Duration::from_secs(3),
                tls: Duration::from_secs(5),
                http: Duration::from_secs(10),
                body: Duration::from_secs(10),
                login: Duration::from_secs(15),
                query: Duration::from_secs(30),
            },
            all_addresses: false,
            tcp_settle: Duration::from_millis(20),
            ca_roots: Vec::new(),
        }
    }
}
