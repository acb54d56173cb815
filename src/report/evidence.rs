//! What each layer saw, kept on failure too: an NXDOMAIN is only useful with the server
//! that said it.

use serde::{Deserialize, Serialize};

use super::{FailureClass, LayerResult, ResolverSource};
use crate::addr::AddrClass;

/// Serialized flat into the layer's object (`LayerResult`), so a stored report names no
/// variant: `Evidence::from_fields` tells them apart by the fields only each one has.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Evidence {
    Dns(DnsEvidence),
    Tcp(TcpEvidence),
    Tls(TlsEvidence),
    Http(HttpEvidence),
    Tds(Box<TdsEvidence>),
    Service(Box<ServiceEvidence>),
    Smb(SmbEvidence),
    Protocol(Box<ProtocolEvidence>),
    None {},
}

/// A data-service protocol layer (`postgres`): the probe module's own evidence, as it
/// serializes it, and the address the server said it saw us as, if it named one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProtocolEvidence {
    /// The layer's name (`postgres`, `mysql`, `redis`).
    #[serde(deserialize_with = "protocol_name")]
    pub protocol: super::StaticName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<std::net::IpAddr>,
    /// The module's evidence (`postgres::Evidence`), never a password or token.
    pub detail: serde_json::Value,
    /// The managed-identity token the login used (`authentication = "managed_identity"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityEvidence>,
}

/// A token request to the managed-identity endpoint (`platform::identity`): for which
/// resource and identity, how long it took, whether this run had it already. Never the
/// token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityEvidence {
    /// The token audience asked for, e.g. `https://storage.azure.com`.
    pub resource: String,
    /// `system-assigned` or `user-assigned (client id …)`.
    pub identity: String,
    pub ok: bool,
    /// The run already had this token (another target asked first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ms: Option<f64>,
    /// Seconds the token had left when the login got it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<i64>,
}

/// SQL Server / Azure SQL evidence. Phases are absent when they did not run.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TdsEvidence {
    /// From PRELOGIN, e.g. `16.0.1000` (SQL Server 2022) or `12.0.2000` (Azure SQL).
    pub server_version: Option<String>,
    /// What we asked for and what the server answered (`on`, `off`, `required`, ...).
    pub encryption_client: Option<String>,
    pub encryption_server: Option<String>,
    /// What the connection got.
    pub encryption: Option<String>,
    /// Azure SQL: the server wants Microsoft Entra authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fedauth_required: Option<bool>,
    /// TDS 8 strict mode: TLS before PRELOGIN.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
    pub prelogin_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    /// The certificate, as the TLS layer reports it (the handshake ran inside PRELOGIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_user: Option<String>,
    /// The connection the login and query ran on: the one the TCP layer proved (PRELOGIN,
    /// TLS, LOGIN7 and the query share it), or after a redirect the hop's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_connection: Option<ConnectionInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ms: Option<f64>,
    /// The token request behind a managed-identity login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logged_in: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_error: Option<SqlError>,
    /// The routing target of Azure SQL's Redirect policy, and how reaching it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectEvidence>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SqlError {
    pub number: u32,
    pub state: u8,
    pub class: u8,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub peer: Option<std::net::SocketAddr>,
    pub local: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedirectEvidence {
    /// `host:port` from the routing ENVCHANGE.
    pub target: String,
    /// The redirect hop's own DNS and TCP results.
    pub layers: Vec<LayerResult>,
    /// The hop's own PRELOGIN and TLS (the node's version, encryption and certificate), when
    /// its connection opened; kept when its handshake failed too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<HopHandshake>,
}

/// What PRELOGIN and the TLS handshake showed on a redirect hop's connection.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct HopHandshake {
    pub server_version: Option<String>,
    pub encryption: Option<String>,
    pub prelogin_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsEvidence>,
}

impl HopHandshake {
    /// The PRELOGIN and TLS fields of the hop's own TDS evidence.
    pub fn of(hop: TdsEvidence) -> HopHandshake {
        HopHandshake {
            server_version: hop.server_version,
            encryption: hop.encryption,
            prelogin_ms: hop.prelogin_ms,
            tls_ms: hop.tls_ms,
            tls: hop.tls,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_fail: Option<String>,
    /// Leaf first, as the server sent it; present on failure too.
    pub chain: Vec<CertInfo>,
    /// Whole days until the earliest expiry in the chain (negative once expired).
    pub days_left: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(from = "CertWire")]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub sha256: String,
    /// Not in the JSON; a stored report gets it back from `not_after`.
    #[serde(skip)]
    pub not_after_unix: Option<i64>,
}

/// `CertInfo` as it is serialized.
#[derive(Deserialize)]
struct CertWire {
    subject: String,
    issuer: String,
    sans: Vec<String>,
    not_before: String,
    not_after: String,
    sha256: String,
}

impl From<CertWire> for CertInfo {
    fn from(w: CertWire) -> CertInfo {
        let not_after_unix = humantime::parse_rfc3339_weak(&w.not_after)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        CertInfo {
            subject: w.subject,
            issuer: w.issuer,
            sans: w.sans,
            not_before: w.not_before,
            not_after: w.not_after,
            sha256: w.sha256,
            not_after_unix,
        }
    }
}

fn protocol_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let layer = crate::layer::Layer::deserialize(d)?;
    Ok(layer.as_str())
}

impl Evidence {
    /// The evidence of a stored layer from the fields left once `layer`, `ok`,
    /// `duration_ms` and `error` are taken: each variant is known by fields only it
    /// serializes (its `Option`s serialize as `null`, so their names are always there).
    /// Fields that fit no variant are an error, never silently dropped evidence.
    pub fn from_fields(
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Evidence, serde_json::Error> {
        use serde::de::Error as _;
        use serde_json::from_value;
        if fields.is_empty() {
            return Ok(Evidence::None {});
        }
        let has = |k: &str| fields.contains_key(k);
        let dns = has("query") && has("types");
        let tds = has("encryption_client") && has("prelogin_ms");
        let http = has("method") && has("url");
        let tls = has("verified") && has("chain");
        let service = has("service") && has("verdict");
        let protocol = has("protocol") && has("detail");
        let smb = has("smb");
        let tcp = has("peer") && has("local");
        if !(dns || tds || http || tls || service || protocol || smb || tcp) {
            let names: Vec<&str> = fields.keys().map(String::as_str).take(8).collect();
            return Err(serde_json::Error::custom(format!(
                "evidence with fields [{}] is of no kind this version knows",
                names.join(", ")
            )));
        }
        let v = serde_json::Value::Object(fields);
        Ok(if dns {
            Evidence::Dns(from_value(v)?)
        } else if tds {
            Evidence::Tds(Box::new(from_value(v)?))
        } else if http {
            Evidence::Http(from_value(v)?)
        } else if tls {
            Evidence::Tls(from_value(v)?)
        } else if service {
            Evidence::Service(Box::new(from_value(v)?))
        } else if protocol {
            Evidence::Protocol(Box::new(from_value(v)?))
        } else if smb {
            Evidence::Smb(from_value(v)?)
        } else {
            Evidence::Tcp(from_value(v)?)
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    /// Selected response headers; never cookies or credentials.
    pub headers: Vec<(String, String)>,
    /// Every redirect seen, in order: `status location`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordInfo>,
    /// Every configured server's own answer, when more than one was asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerAnswer>,
    /// True when the servers asked gave different answers (split horizon).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disagreement: bool,
    /// Azure DNS's own answer, asked when a custom DNS server failed (`dns.divergent`
    /// when it resolves where the custom server did not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_dns: Option<ServerAnswer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CnameHop {
    pub name: String,
    pub target: String,
    pub ttl: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressInfo {
    pub ip: std::net::IpAddr,
    pub ttl: u32,
    pub class: AddrClass,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerAnswer {
    pub server: String,
    pub source: ResolverSource,
    pub rcode: Option<String>,
    /// Set when the server did not answer usefully (timeout, SERVFAIL, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    pub addresses: Vec<std::net::IpAddr>,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TcpEvidence {
    /// The address connected to (or tried last).
    pub peer: Option<std::net::SocketAddr>,
    /// Our side of the connection: on Azure, an address in the integration subnet.
    pub local: Option<std::net::SocketAddr>,
    /// Every address tried, in order, when more than one was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<TcpAttempt>,
    /// How long the fresh connection was watched for an immediate reset (bare `tcp://`
    /// targets). Not part of `duration_ms`, which is connect time only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TcpAttempt {
    pub peer: std::net::SocketAddr,
    pub ok: bool,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<std::net::SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The service layer's evidence (`probe/service/`): which service, the verdict, the
/// service's answer (status, error code, request id, challenge; never a credential) and
/// the witness of our address next to this instance's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceEvidence {
    /// e.g. `key_vault`, `storage_blob`.
    pub service: String,
    /// e.g. `reached_service`, `firewall`.
    pub verdict: String,
    /// The service's answer, as `probe/service/verdict.rs` records it.
    pub answer: serde_json::Value,
    /// `{conclusion: private_path_proven | public_path | unknown, witness, matched, ...}`.
    pub witness: serde_json::Value,
    /// The authorised read (the app's identity, or a referenced storage key), as
    /// `verdict.rs` records it (the verdict above is then this read's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityEvidence>,
}

/// The SMB2 NEGOTIATE layer's evidence (`probe/smb.rs`): dialect, signing, server GUID,
/// capabilities; or what answered instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmbEvidence {
    pub smb: serde_json::Value,
}
