//! The service layer for Azure PaaS hosts: after HTTP proved *something* answers, prove
//! that the *service* answered, whether its network rules let this source in, whether the
//! app's identity has a data role, and which client address the service saw.
//!
//! Pieces (plain inputs, plain outputs; the engine wires them in):
//! - [`kind`]: the service, recognised from the host suffix or declared (emulators, custom domains);
//! - [`request`]: what is sent (credential-free, and the one authorised read), token scopes;
//! - [`sharedkey`]: the authorised read signed with a storage account key;
//! - [`exchange`]: one HTTP/1.1 request over a proven (TLS) stream, bounded body read;
//! - [`verdict`]: status + headers + body → [`Verdict`] and evidence;
//! - [`witness`]: the service's view of our address → private path proven / public path.
//!
//! | verdict | class | hint (decisive content) |
//! |---|---|---|
//! | `reached_service` | — (ok) | the service answered and would take an authenticated call |
//! | `authorized_read_ok` | — (ok) | the app's identity read (names only) |
//! | `emulator_quirk` | — (ok, note) | Azurite's 403 `AuthorizationFailure` is its authenticator, not a firewall |
//! | `firewall` | `service.firewall` | the service's network rules refused this source: the private endpoint (Approved, zone `privatelink.…` linked to the VNet) or the resource's Networking > firewall setting (public network access / allowed subnets and addresses) |
//! | `rbac` | `service.rbac` | the route works; the identity lacks a data role: `Storage Blob Data Reader` / `Storage Queue Data Reader` / `Storage Table Data Reader`, `Key Vault Secrets User` (or an access policy with List), `Cosmos DB Built-in Data Reader`, `App Configuration Data Reader`, `AcrPull` |
//! | `credential_rejected` | `service.auth_failed` | the token or key was refused: audience = the scope in `request.rs`, key rotated, `allowSharedKeyAccess` off |
//! | `not_the_service` | `service.not_service` | no service marker header: a proxy, WAF, Application Gateway or firewall appliance answered, or DNS points elsewhere |
//! | `service_error` | `service.error` | 5xx / 429 from the service itself: retry; Azure status |
//! | `unexpected` | `service.unexpected` | an answer of the service that none of the above explains |
//! | (witness public, `private = true`) | `service.public_path` | the service saw a public address: zone not linked / custom DNS not forwarding to 168.63.129.16, no private endpoint, or route-all (`vnetRouteAllEnabled`, `outboundVnetRouting.allTraffic`) off |
//! | exchange: deadline | `service.deadline` | no answer before the run deadline |
//! | exchange: not HTTP / closed | `service.http_protocol` | the peer broke HTTP/1.1 |

pub mod kind;
pub mod layer;
pub mod request;
pub mod sharedkey;
pub mod verdict;
pub mod witness;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::HeaderMap;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

pub use kind::{Cloud, ServiceKind, ServiceTarget};
pub use request::{Purpose, ServiceRequest};
pub use verdict::{Evidence, Judgement, judge};
pub use witness::{PathConclusion, PathEvidence, Witness};

/// Failure classes of the service layer (and their stable strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ServiceClass {
    #[serde(rename = "service.firewall")]
    Firewall,
    #[serde(rename = "service.rbac")]
    Rbac,
    #[serde(rename = "service.auth_failed")]
    AuthFailed,
    #[serde(rename = "service.not_service")]
    NotService,
    #[serde(rename = "service.error")]
    Error,
    #[serde(rename = "service.unexpected")]
    Unexpected,
    #[serde(rename = "service.public_path")]
    PublicPath,
    #[serde(rename = "service.deadline")]
    Deadline,
    #[serde(rename = "service.http_protocol")]
    HttpProtocol,
}

impl ServiceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceClass::Firewall => "service.firewall",
            ServiceClass::Rbac => "service.rbac",
            ServiceClass::AuthFailed => "service.auth_failed",
            ServiceClass::NotService => "service.not_service",
            ServiceClass::Error => "service.error",
            ServiceClass::Unexpected => "service.unexpected",
            ServiceClass::PublicPath => "service.public_path",
            ServiceClass::Deadline => "service.deadline",
            ServiceClass::HttpProtocol => "service.http_protocol",
        }
    }
}

/// What the service's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    ReachedService,
    AuthorizedReadOk,
    EmulatorQuirk,
    Firewall,
    Rbac,
    CredentialRejected,
    NotTheService,
    ServiceError,
    Unexpected,
}

impl Verdict {
    pub fn ok(self) -> bool {
        self.class().is_none()
    }

    pub fn class(self) -> Option<ServiceClass> {
        match self {
            Verdict::ReachedService | Verdict::AuthorizedReadOk | Verdict::EmulatorQuirk => None,
            Verdict::Firewall => Some(ServiceClass::Firewall),
            Verdict::Rbac => Some(ServiceClass::Rbac),
            Verdict::CredentialRejected => Some(ServiceClass::AuthFailed),
            Verdict::NotTheService => Some(ServiceClass::NotService),
            Verdict::ServiceError => Some(ServiceClass::Error),
            Verdict::Unexpected => Some(ServiceClass::Unexpected),
        }
    }
}

/// The data-plane role that the authorised read needs.
pub fn reader_role(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::StorageBlob | ServiceKind::StorageDfs => "Storage Blob Data Reader",
        ServiceKind::StorageQueue => "Storage Queue Data Reader",
        ServiceKind::StorageTable => "Storage Table Data Reader",
        ServiceKind::StorageFile => "Storage File Data Privileged Reader",
        ServiceKind::KeyVault => "Key Vault Secrets User",
        ServiceKind::CosmosDb => "Cosmos DB Built-in Data Reader",
        ServiceKind::AppConfiguration => "App Configuration Data Reader",
        ServiceKind::ContainerRegistry => "AcrPull",
        // The health function is anonymous: there is no authorised read.
        ServiceKind::FunctionApp => "(none: /api/health is anonymous)",
    }
}

/// The Azure-aware hint for a failing verdict (or `service.public_path`).
pub fn hint(class: ServiceClass, t: &ServiceTarget, ev: Option<&Evidence>) -> String {
    let label = t.kind.label();
    let zone = t.kind.privatelink_zone();
    let seen = ev
        .and_then(|e| e.witness.as_ref())
        .map(|w| format!(" {label} saw the request come from {}.", w.addr))
        .unwrap_or_default();
    let code = ev
        .and_then(|e| e.error_code.as_deref())
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    match class {
        ServiceClass::Firewall => format!(
            "{label} refused this source with its network rules{code}: the request did not arrive through its private endpoint.{seen} Check that {host} resolves to the private endpoint's address (private DNS zone {zone} linked to the VNet) and that the private endpoint connection is Approved; or allow the integration subnet in the resource's firewall (Networking: public network access, virtual networks and IP rules).",
            host = t.host
        ),
        ServiceClass::Rbac if access_policy(t, ev) => format!(
            "The network path to {label} works, but the vault's access policies do not let the app's identity list secrets{code}: add an access policy for the identity with List (and Get) on secrets, or switch the vault to Azure RBAC and assign `{role}`.",
            role = reader_role(t.kind)
        ),
        ServiceClass::Rbac => format!(
            "The network path to {label} works, but the app's identity lacks a data-plane role{code}: assign `{role}` on the resource to the identity (role assignments take a few minutes to apply).",
            role = reader_role(t.kind)
        ),
        ServiceClass::AuthFailed => format!(
            "{label} answered but refused the credential{code}: a token must be issued for {resource} (scope {resource}/.default); an account key must be the current one, and KeyBasedAuthenticationNotPermitted means Shared Key access is disabled on the account (allowSharedKeyAccess).",
            resource = request::token_resource(t)
        ),
        ServiceClass::NotService if t.kind == ServiceKind::FunctionApp => app_not_routeproof(t, ev),
        ServiceClass::NotService => format!(
            "The answer did not come from {label}: it lacks the service's own headers (x-ms-request-id and the like). Something in between answered (a proxy, WAF, Application Gateway or firewall appliance on a forced-tunnel route), or {host} resolves to a server that is not {label}: check the route table of the integration subnet and the DNS answer (zone {zone}).",
            host = t.host
        ),
        ServiceClass::Error => format!(
            "{label} itself answered with a server error or throttling{code}: retry, and check Azure status / the resource's health."
        ),
        ServiceClass::Unexpected => format!(
            "{label} answered{code} in a way the probe does not explain; the evidence has the status, code and request id to quote in a support case."
        ),
        ServiceClass::PublicPath => format!(
            "{label} saw this request come from a public address:{seen} it went over the internet, not through the private endpoint. Causes: private DNS zone {zone} not linked to the VNet (or custom DNS not forwarding to 168.63.129.16), no private endpoint, or the app's outbound traffic not routed into the VNet (vnetRouteAllEnabled / outboundVnetRouting.allTraffic off)."
        ),
        ServiceClass::Deadline => format!("{label} did not answer before the run deadline."),
        ServiceClass::HttpProtocol => format!(
            "The peer at {host} did not speak HTTP/1.1 as {label} does: it is not the service, or a middlebox broke the exchange.",
            host = t.host
        ),
    }
}

/// A Key Vault on the access-policy model refuses a caller without a policy with 403
/// `AccessDenied` ("… does not have secrets list permission on key vault …"); an RBAC
/// vault with `ForbiddenByRbac`.
fn access_policy(t: &ServiceTarget, ev: Option<&Evidence>) -> bool {
    t.kind == ServiceKind::KeyVault
        && ev.and_then(|e| e.error_code.as_deref()).is_some_and(|c| {
            c.eq_ignore_ascii_case("AccessDenied") || c.eq_ignore_ascii_case("ForbiddenByPolicy")
        })
}

/// An app target whose answer is not routeproof's health: what the status says.
fn app_not_routeproof(t: &ServiceTarget, ev: Option<&Evidence>) -> String {
    let host = &t.host;
    let why = match ev.map(|e| e.status) {
        Some(403) => format!(
            "403 is App Service's front end refusing the request at the entry it came through: an app with a private endpoint turns its public endpoint off unless public access is set to Enabled, and access restrictions apply to the public endpoint only (a stopped app answers 403 too). If {host} should be reached privately, the request did not arrive through the private endpoint: {host} must resolve to the endpoint's private address (zone privatelink.azurewebsites.net linked to this VNet, or a custom DNS server forwarding it to 168.63.129.16)."
        ),
        Some(404) => "404: the app answered, but no routeproof health function is at this path: the app runs something else, or its host.json sets another routePrefix (try /health)."
            .to_string(),
        Some(s) if s >= 500 => format!(
            "{s}: the app or its Functions host is down or starting (the front end answered for it); check the app's state and logs."
        ),
        _ => "something else answered: a proxy or firewall appliance on the route, or an app that is not routeproof.".to_string(),
    };
    format!(
        "The answer did not come from routeproof's /api/health on {host} (no `\"service\": \"routeproof\"` in a JSON body): {why}"
    )
}

/// The service's answer: status, headers, at most [`MAX_BODY`] bytes of body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body was longer than [`MAX_BODY`]; the rest was not read.
    pub truncated: bool,
    /// From the request written to the response head.
    pub ttfb: Duration,
    /// The whole exchange, request to the end of the body.
    pub elapsed: Duration,
}

/// Enough for any error document; a service list is cut here (and not needed).
pub const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no answer before the deadline (phase: {0})")]
    Deadline(&'static str),
    #[error("HTTP/1.1 exchange failed: {0}")]
    Protocol(String),
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl Error {
    pub fn class(&self) -> ServiceClass {
        match self {
            Error::Deadline(_) => ServiceClass::Deadline,
            _ => ServiceClass::HttpProtocol,
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One HTTP/1.1 request `req` to `host` over `stream` (already connected, already TLS),
/// the whole exchange bounded by `deadline`, the body read bounded by [`MAX_BODY`].
/// Nothing outlives the call: the connection task is aborted when it returns.
pub async fn exchange<S>(
    stream: S,
    host: &str,
    req: &ServiceRequest,
    deadline: Instant,
) -> Result<Answer, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Session::open(stream, deadline)
        .await?
        .send(host, req, deadline)
        .await
}

/// An HTTP/1.1 connection for several requests in turn (the anonymous request, then the
/// authorised read on the same proven stream). Dropping it aborts the connection task.
pub struct Session {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    _conn: AbortOnDrop,
}

impl Session {
    pub async fn open<S>(stream: S, deadline: Instant) -> Result<Session, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = tokio::time::timeout_at(
            deadline,
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::Deadline("handshake"))?
        .map_err(|e| Error::Protocol(e.to_string()))?;
        Ok(Session {
            sender,
            _conn: AbortOnDrop(tokio::spawn(async move { drop(conn.await) })),
        })
    }

    /// One request and its answer; the body is read to its end (or [`MAX_BODY`]).
    pub async fn send(
        &mut self,
        host: &str,
        req: &ServiceRequest,
        deadline: Instant,
    ) -> Result<Answer, Error> {
        send(&mut self.sender, host, req, deadline).await
    }
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: &str,
    req: &ServiceRequest,
    deadline: Instant,
) -> Result<Answer, Error> {
    let start = Instant::now();
    let within = |phase: &'static str| move |_| Error::Deadline(phase);
    let mut builder = hyper::Request::builder()
        .method(req.method.clone())
        .uri(req.path.as_str())
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("routeproof/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in &req.headers {
        builder = builder.header(*k, v.as_str());
    }
    if let Some(auth) = &req.authorization {
        let mut v = hyper::header::HeaderValue::from_str(auth.expose())
            .map_err(|_| Error::BadRequest("the credential is not a valid header value".into()))?;
        v.set_sensitive(true);
        builder = builder.header(hyper::header::AUTHORIZATION, v);
    }
    if let Some((ctype, _)) = &req.body {
        builder = builder.header(hyper::header::CONTENT_TYPE, *ctype);
    }
    let request = builder
        .body(Full::new(req.body_bytes()))
        .map_err(|e| Error::BadRequest(crate::secret::scrub(&e.to_string())))?;

    let t0 = Instant::now();
    let resp = tokio::time::timeout_at(deadline, async {
        sender.ready().await?;
        sender.send_request(request).await
    })
    .await
    .map_err(within("response head"))?
    .map_err(|e| Error::Protocol(e.to_string()))?;
    let ttfb = t0.elapsed();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    let mut truncated = false;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Protocol(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                let room = MAX_BODY - buf.len();
                if data.len() > room {
                    buf.extend_from_slice(&data[..room]);
                    truncated = true;
                    break;
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok::<(), Error>(())
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(within("body"))??;
    Ok(Answer {
        status,
        headers,
        body: buf.freeze(),
        truncated,
        ttfb,
        elapsed: start.elapsed(),
    })
}
