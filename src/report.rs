//! The report: what every door (CLI, HTTP trigger, timer) gets back from the engine.
//!
//! `ok` (every expectation held) is kept apart from `reached` (the last layer that
//! answered): a refused login or a 401 proves the route even though the target is not ok.
//! A layer that did not run is absent from `layers` and named in `skipped`, never a 0 ms entry.

use std::fmt;

use serde::Serialize;

use crate::addr::AddrClass;

/// Bumped whenever a field changes meaning or disappears; additions keep the version.
pub const SCHEMA: &str = "routeproof.report/v1";

/// The layers of a probe pipeline, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Dns,
    Tcp,
    Tls,
    Tds,
    Http,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Dns => "dns",
            Layer::Tcp => "tcp",
            Layer::Tls => "tls",
            Layer::Tds => "tds",
            Layer::Http => "http",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stable failure classes (`layer.reason`). Hints, exit codes and telemetry match on
/// these, never on message text, so the strings are part of the report contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum FailureClass {
    #[serde(rename = "dns.nxdomain")]
    DnsNxdomain,
    #[serde(rename = "dns.servfail")]
    DnsServfail,
    #[serde(rename = "dns.refused")]
    DnsRefused,
    #[serde(rename = "dns.timeout")]
    DnsTimeout,
    #[serde(rename = "dns.no_records")]
    DnsNoRecords,
    #[serde(rename = "dns.public_address")]
    DnsPublicAddress,
    /// Any other resolver failure (FORMERR, NOTIMP, malformed answer, socket error).
    #[serde(rename = "dns.error")]
    DnsError,
    /// The custom DNS server failed (NXDOMAIN, SERVFAIL, no records or a public answer)
    /// where Azure DNS (168.63.129.16) resolves the name to a private address: the
    /// custom server does not forward the privatelink zone.
    #[serde(rename = "dns.divergent")]
    DnsDivergent,
    #[serde(rename = "tcp.refused")]
    TcpRefused,
    #[serde(rename = "tcp.timeout")]
    TcpTimeout,
    #[serde(rename = "tcp.reset")]
    TcpReset,
    #[serde(rename = "tcp.unreachable")]
    TcpUnreachable,
    #[serde(rename = "tcp.forbidden")]
    TcpForbidden,
    /// Any other socket error, with the OS error in the message.
    #[serde(rename = "tcp.error")]
    TcpError,
    #[serde(rename = "tls.untrusted")]
    TlsUntrusted,
    /// Expired or not yet valid.
    #[serde(rename = "tls.expired")]
    TlsExpired,
    #[serde(rename = "tls.name_mismatch")]
    TlsNameMismatch,
    /// Protocol failure: an alert, no common parameters, not TLS at all.
    #[serde(rename = "tls.handshake")]
    TlsHandshake,
    #[serde(rename = "tls.timeout")]
    TlsTimeout,
    #[serde(rename = "http.status")]
    HttpStatus,
    #[serde(rename = "http.body")]
    HttpBody,
    /// The message says which phase: first byte or body.
    #[serde(rename = "http.timeout")]
    HttpTimeout,
    #[serde(rename = "http.too_large")]
    HttpTooLarge,
    #[serde(rename = "http.redirects")]
    HttpRedirects,
    /// Not a valid HTTP response, or the connection closed mid-response.
    #[serde(rename = "http.protocol")]
    HttpProtocol,
    /// The chain's earliest certificate expires sooner than `cert_days_left`.
    #[serde(rename = "expect.cert_days_left")]
    ExpectCertDaysLeft,
    /// Not a TDS server, or it closed the connection during PRELOGIN.
    #[serde(rename = "tds.prelogin")]
    TdsPrelogin,
    /// Client and server cannot agree on encryption.
    #[serde(rename = "tds.encryption")]
    TdsEncryption,
    /// The server refused the login (the message carries the SQL error number and state).
    #[serde(rename = "tds.login_failed")]
    TdsLoginFailed,
    /// The server redirected the login (Redirect connection policy) and the redirect
    /// target could not be reached.
    #[serde(rename = "tds.redirect")]
    TdsRedirect,
    #[serde(rename = "tds.query")]
    TdsQuery,
    /// The message says which phase: prelogin, login or query.
    #[serde(rename = "tds.timeout")]
    TdsTimeout,
    /// The request was refused by policy before any packet was sent (ad-hoc targets).
    #[serde(rename = "policy.denied")]
    PolicyDenied,
    /// The resolved addresses are not the ones the target expects.
    #[serde(rename = "expect.addresses")]
    ExpectAddresses,
    /// Every layer passed but the whole probe took longer than `max_ms`.
    #[serde(rename = "expect.max_ms")]
    ExpectMaxMs,
    #[serde(rename = "config.invalid")]
    ConfigInvalid,
    /// The run deadline expired before this layer (or target) finished.
    #[serde(rename = "deadline")]
    Deadline,
}

impl FailureClass {
    pub const ALL: &'static [FailureClass] = &[
        FailureClass::DnsNxdomain,
        FailureClass::DnsServfail,
        FailureClass::DnsRefused,
        FailureClass::DnsTimeout,
        FailureClass::DnsNoRecords,
        FailureClass::DnsPublicAddress,
        FailureClass::DnsError,
        FailureClass::DnsDivergent,
        FailureClass::TcpRefused,
        FailureClass::TcpTimeout,
        FailureClass::TcpReset,
        FailureClass::TcpUnreachable,
        FailureClass::TcpForbidden,
        FailureClass::TcpError,
        FailureClass::TlsUntrusted,
        FailureClass::TlsExpired,
        FailureClass::TlsNameMismatch,
        FailureClass::TlsHandshake,
        FailureClass::TlsTimeout,
        FailureClass::HttpStatus,
        FailureClass::HttpBody,
        FailureClass::HttpTimeout,
        FailureClass::HttpTooLarge,
        FailureClass::HttpRedirects,
        FailureClass::HttpProtocol,
        FailureClass::ExpectCertDaysLeft,
        FailureClass::TdsPrelogin,
        FailureClass::TdsEncryption,
        FailureClass::TdsLoginFailed,
        FailureClass::TdsRedirect,
        FailureClass::TdsQuery,
        FailureClass::TdsTimeout,
        FailureClass::PolicyDenied,
        FailureClass::ExpectAddresses,
        FailureClass::ExpectMaxMs,
        FailureClass::ConfigInvalid,
        FailureClass::Deadline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::DnsNxdomain => "dns.nxdomain",
            FailureClass::DnsServfail => "dns.servfail",
            FailureClass::DnsRefused => "dns.refused",
            FailureClass::DnsTimeout => "dns.timeout",
            FailureClass::DnsNoRecords => "dns.no_records",
            FailureClass::DnsPublicAddress => "dns.public_address",
            FailureClass::DnsError => "dns.error",
            FailureClass::DnsDivergent => "dns.divergent",
            FailureClass::TcpRefused => "tcp.refused",
            FailureClass::TcpTimeout => "tcp.timeout",
            FailureClass::TcpReset => "tcp.reset",
            FailureClass::TcpUnreachable => "tcp.unreachable",
            FailureClass::TcpForbidden => "tcp.forbidden",
            FailureClass::TcpError => "tcp.error",
            FailureClass::TlsUntrusted => "tls.untrusted",
            FailureClass::TlsExpired => "tls.expired",
            FailureClass::TlsNameMismatch => "tls.name_mismatch",
            FailureClass::TlsHandshake => "tls.handshake",
            FailureClass::TlsTimeout => "tls.timeout",
            FailureClass::HttpStatus => "http.status",
            FailureClass::HttpBody => "http.body",
            FailureClass::HttpTimeout => "http.timeout",
            FailureClass::HttpTooLarge => "http.too_large",
            FailureClass::HttpRedirects => "http.redirects",
            FailureClass::HttpProtocol => "http.protocol",
            FailureClass::ExpectCertDaysLeft => "expect.cert_days_left",
            FailureClass::TdsPrelogin => "tds.prelogin",
            FailureClass::TdsEncryption => "tds.encryption",
            FailureClass::TdsLoginFailed => "tds.login_failed",
            FailureClass::TdsRedirect => "tds.redirect",
            FailureClass::TdsQuery => "tds.query",
            FailureClass::TdsTimeout => "tds.timeout",
            FailureClass::PolicyDenied => "policy.denied",
            FailureClass::ExpectAddresses => "expect.addresses",
            FailureClass::ExpectMaxMs => "expect.max_ms",
            FailureClass::ConfigInvalid => "config.invalid",
            FailureClass::Deadline => "deadline",
        }
    }

    /// Whether a failure of this class still proves the server answered at this layer.
    /// Expectation failures happen after the layer answered; transport failures do not.
    /// A certificate the client rejects was still served, and a 401 or 500 is an HTTP
    /// server answering: the route works, something above it does not.
    pub fn layer_answered(self) -> bool {
        matches!(
            self,
            FailureClass::DnsPublicAddress
                | FailureClass::ExpectAddresses
                | FailureClass::ExpectMaxMs
                | FailureClass::DnsNxdomain
                | FailureClass::DnsNoRecords
                | FailureClass::DnsDivergent
                | FailureClass::TlsUntrusted
                | FailureClass::TlsExpired
                | FailureClass::TlsNameMismatch
                | FailureClass::ExpectCertDaysLeft
                | FailureClass::HttpStatus
                | FailureClass::HttpBody
                | FailureClass::HttpTooLarge
                | FailureClass::HttpRedirects
                | FailureClass::TdsEncryption
                | FailureClass::TdsLoginFailed
                | FailureClass::TdsRedirect
                | FailureClass::TdsQuery
        )
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a target is not ok: the layer, the stable class, what happened, and what to do.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failure {
    pub layer: Option<Layer>,
    pub class: FailureClass,
    pub message: String,
    pub hint: String,
    /// For `policy.denied`: the rule that refused the target (`always.link_local`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub version: &'static str,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: f64,
    /// The run deadline in force, so a reader can tell `deadline` failures from slowness.
    pub deadline_ms: f64,
    pub ok: bool,
    pub summary: Summary,
    pub environment: Environment,
    pub targets: Vec<TargetReport>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
}

/// Where the probe ran: the site facts the platform exposes (instance, private IP,
/// route-all), the DNS settings in effect and the resolvers asked, because a DNS answer
/// means nothing without who gave it and a route nothing without where it starts.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Environment {
    pub hostname: Option<String>,
    pub on_azure: bool,
    /// Off Azure: says so, instead of guessing site facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The App Service / Functions site (on Azure only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<crate::azure::Site>,
    pub dns: crate::azure::DnsSettings,
    pub resolvers: Vec<ResolverInfo>,
    /// Targets discovered from app settings (`engine.discover`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<crate::discover::Summary>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResolverInfo {
    /// `ip:port`
    pub server: String,
    /// Where this server came from: `config`, `cli`, `WEBSITE_DNS_SERVER`,
    /// `WEBSITE_DNS_ALT_SERVER` or `resolv.conf`.
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    /// The target as written, secrets redacted.
    pub target: String,
    /// The app setting a discovered target came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub ok: bool,
    /// The last layer that answered; `null` when not even DNS answered.
    pub reached: Option<Layer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub duration_ms: f64,
    /// For each address the target resolved to (or is): the path it takes out of the
    /// instance (integration subnet or not) and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<crate::azure::AddressRoute>,
    pub layers: Vec<LayerResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Observations that do not fail the target but an engineer should see
    /// (e.g. two configured DNS servers that disagree).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub layer: Layer,
    pub reason: String,
}

/// One layer's outcome with its evidence. Evidence is kept on failure too: an NXDOMAIN
/// is only useful with the server that said it.
#[derive(Debug, Clone, Serialize)]
pub struct LayerResult {
    pub layer: Layer,
    pub ok: bool,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    #[serde(flatten)]
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Evidence {
    Dns(DnsEvidence),
    Tcp(TcpEvidence),
    Tls(TlsEvidence),
    Http(HttpEvidence),
    Tds(Box<TdsEvidence>),
    None {},
}

/// SQL Server / Azure SQL evidence. Phases are absent when they did not run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TdsEvidence {
    /// From PRELOGIN, e.g. `16.0.1000` (SQL Server 2022) or `12.0.2000` (Azure SQL).
    pub server_version: Option<String>,
    /// What we asked for and what the server answered (`on`, `off`, `required`, ...).
    pub encryption_client: Option<String>,
    pub encryption_server: Option<String>,
    /// What the connection got.
    pub encryption: Option<String>,
    /// Azure SQL: the server wants Microsoft Entra authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fedauth_required: Option<bool>,
    /// TDS 8 strict mode: TLS before PRELOGIN.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
    pub prelogin_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    /// The certificate, as the TLS layer reports it (the handshake ran inside PRELOGIN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsEvidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_user: Option<String>,
    /// The login's own connection (tiberius opens it to the same address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_connection: Option<ConnectionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_ms: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub logged_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql_error: Option<SqlError>,
    /// The routing target of Azure SQL's Redirect policy, and how reaching it went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectEvidence>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SqlError {
    pub number: u32,
    pub state: u8,
    pub class: u8,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub peer: Option<std::net::SocketAddr>,
    pub local: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedirectEvidence {
    /// `host:port` from the routing ENVCHANGE.
    pub target: String,
    /// The redirect hop's own DNS and TCP results.
    pub layers: Vec<LayerResult>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct TlsEvidence {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub alpn: Option<String>,
    /// The SNI sent; `null` when the target is an IP address (no SNI is sent then).
    pub sni: Option<String>,
    /// The chain verified against the trust store (false only with `insecure = true`).
    pub verified: bool,
    /// With `insecure = true`: the class and reason verification would have failed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_fail: Option<String>,
    /// Leaf first, as the server sent it; present on failure too.
    pub chain: Vec<CertInfo>,
    /// Whole days until the earliest expiry in the chain (negative once expired).
    pub days_left: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub sha256: String,
    #[serde(skip)]
    pub not_after_unix: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct HttpEvidence {
    pub method: String,
    /// The request URL, credentials redacted.
    pub url: String,
    pub status: Option<u16>,
    /// `HTTP/1.1`, `HTTP/2`.
    pub version: Option<String>,
    /// Request written to first response byte.
    pub ttfb_ms: Option<f64>,
    /// First byte to the end of the body read (absent when the body was not read).
    pub transfer_ms: Option<f64>,
    pub body_bytes: u64,
    /// True when reading stopped at `max_body_bytes`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    /// Selected response headers; never cookies or credentials.
    pub headers: Vec<(String, String)>,
    /// Every redirect seen, in order: `status location`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct DnsEvidence {
    /// The name queried, fully qualified.
    pub query: String,
    /// Record types asked, e.g. `["A", "AAAA"]`.
    pub types: Vec<String>,
    /// `ip:port` of the server whose answer was used; `null` if none answered.
    pub server: Option<String>,
    /// The response code of the answer used (`NOERROR`, `NXDOMAIN`, ...).
    pub rcode: Option<String>,
    /// Names from the query to the final owner, in order (empty without CNAMEs).
    pub cname_chain: Vec<CnameHop>,
    pub addresses: Vec<AddressInfo>,
    /// Non-address answers (TXT, MX, SRV, CNAME-only queries), as presentation text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordInfo>,
    /// Every configured server's own answer, when more than one was asked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerAnswer>,
    /// True when the servers asked gave different answers (split horizon).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disagreement: bool,
    /// Azure DNS's own answer, asked when a custom DNS server failed (`dns.divergent`
    /// when it resolves where the custom server did not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_dns: Option<ServerAnswer>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CnameHop {
    pub name: String,
    pub target: String,
    pub ttl: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AddressInfo {
    pub ip: std::net::IpAddr,
    pub ttl: u32,
    pub class: AddrClass,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecordInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerAnswer {
    pub server: String,
    pub source: String,
    pub rcode: Option<String>,
    /// Set when the server did not answer usefully (timeout, SERVFAIL, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    pub addresses: Vec<std::net::IpAddr>,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct TcpEvidence {
    /// The address connected to (or tried last).
    pub peer: Option<std::net::SocketAddr>,
    /// Our side of the connection: on Azure, an address in the integration subnet.
    pub local: Option<std::net::SocketAddr>,
    /// Every address tried, in order, when more than one was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<TcpAttempt>,
    /// How long the fresh connection was watched for an immediate reset (bare `tcp://`
    /// targets). Not part of `duration_ms`, which is connect time only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TcpAttempt {
    pub peer: std::net::SocketAddr,
    pub ok: bool,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<std::net::SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Milliseconds with microsecond resolution: enough for loopback timings, short in JSON.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Report {
    pub fn summarize(targets: &[TargetReport]) -> Summary {
        let ok = targets.iter().filter(|t| t.ok).count();
        Summary {
            total: targets.len(),
            ok,
            failed: targets.len() - ok,
        }
    }
}
