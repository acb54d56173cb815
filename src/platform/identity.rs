//! Microsoft Entra tokens for the app's managed identity, from the App Service / Functions
//! identity endpoint: one place for every layer that logs in with the identity (TDS, the
//! service layer, PostgreSQL, MySQL, Redis; AMQP CBS and Kafka OAUTHBEARER call the same
//! [`Tokens::get`] with [`resource::SERVICE_BUS`] / [`resource::EVENT_HUBS`]).
//!
//! The protocol (App Service *Managed identities*, "Using the REST protocol"; rows I1-I4 of
//! docs/azure-facts.md): `GET $IDENTITY_ENDPOINT?resource=R&api-version=2019-08-01[&client_id=C]`
//! with header `X-IDENTITY-HEADER: $IDENTITY_HEADER`; a 200 answer is JSON with
//! `access_token` and `expires_on` (seconds since 1970, sent as a string). The endpoint is
//! local to the instance (`http://localhost:…` or a link-local address), so plain HTTP/1.1
//! on a socket of our own, never through the probe's DNS, TCP or policy.
//!
//! Tokens are cached per `(resource, client_id)` for one run ([`Tokens`] lives as long as
//! `Engine::run`), so ten targets of one storage account ask once; a cached token is
//! reused only while it outlives the run's deadline. Errors are cached too: an endpoint
//! that is down costs the run one timeout, not one per target. A token is a [`Secret`]
//! from the moment it is parsed; nothing here logs.
//!
//! | error | class | hint's decisive content |
//! |---|---|---|
//! | `NotConfigured` | `identity.not_configured` | `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` unset: the app has no managed identity (Identity blade), or this is not App Service |
//! | `Unavailable` | `identity.unavailable` | refused, reset or no answer: identity not enabled, `WEBSITE_DISABLE_MSI`, `IDENTITY_ENDPOINT` unreachable |
//! | `Refused` | `identity.refused` | the endpoint's own error (400 "Unable to load the proper Managed Identity" for a client id not assigned to the app: `client_id` / `__clientId`) |
//! | `Malformed` | `identity.malformed` | 200 without a usable `access_token` / `expires_on`, or a token already expired |
//! | `Deadline` | `deadline` | the run deadline cut the request |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::budget::Budget;
use crate::env::EnvLookup;
use crate::report::{FailureClass, IdentityEvidence, ms};
use crate::secret::{MASK, Secret};

/// The identity endpoint's API version (the header form `X-IDENTITY-HEADER`).
pub const API_VERSION: &str = "2019-08-01";

/// Token audiences (`resource=`, the v1 form the identity endpoint takes), public cloud.
pub mod resource {
    /// Azure SQL (the TDS layer).
    pub const SQL: &str = "https://database.windows.net/";
    /// Azure Database for PostgreSQL and MySQL flexible server.
    pub const OSSRDBMS: &str = "https://ossrdbms-aad.database.windows.net";
    /// Azure Cache for Redis and Azure Managed Redis.
    pub const REDIS: &str = "https://redis.azure.com";
    /// Service Bus (AMQP CBS `jwt` put-token).
    pub const SERVICE_BUS: &str = "https://servicebus.azure.net";
    /// Event Hubs (AMQP CBS, Kafka OAUTHBEARER).
    pub const EVENT_HUBS: &str = "https://eventhubs.azure.net";
}

/// The bytes of an error answer kept for the report.
const MAX_TEXT: usize = 300;
/// A token this close to expiry is not handed to a login.
const SKEW: Duration = Duration::from_secs(30);

/// The App Service managed-identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: url::Url,
    /// Rotated by the platform; an SSRF guard, so a secret like any other.
    pub header: Secret,
}

/// What the environment says about the identity endpoint.
#[derive(Debug, Clone)]
pub enum Setup {
    Ready(Endpoint),
    /// Neither variable, or one of the two, is set: the name of a missing one.
    Missing(&'static str),
    /// `IDENTITY_ENDPOINT` is set but is not an http URL.
    Invalid(String),
}

impl Setup {
    pub fn from_env(env: EnvLookup) -> Setup {
        let (Some(url), Some(header)) = (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")) else {
            return Setup::Missing(if env("IDENTITY_ENDPOINT").is_some() {
                "IDENTITY_HEADER"
            } else {
                "IDENTITY_ENDPOINT"
            });
        };
        match url::Url::parse(&url) {
            Ok(u) if u.scheme() == "http" && u.host_str().is_some() => Setup::Ready(Endpoint {
                url: u,
                header: Secret::new(header),
            }),
            Ok(u) => Setup::Invalid(format!(
                "IDENTITY_ENDPOINT is a `{}` URL, not http://HOST:PORT/…",
                u.scheme()
            )),
            Err(e) => Setup::Invalid(format!("IDENTITY_ENDPOINT is not a URL: {e}")),
        }
    }

    pub fn ready(&self) -> bool {
        matches!(self, Setup::Ready(_))
    }
}

/// Why there is no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("no managed identity: {0}")]
    NotConfigured(String),
    #[error("the identity endpoint is unavailable: {0}")]
    Unavailable(String),
    #[error("the identity endpoint answered {status}: {message}")]
    Refused {
        status: u16,
        message: String,
        client_id: Option<String>,
    },
    #[error("the identity endpoint's answer is not a usable token: {0}")]
    Malformed(String),
    #[error("run deadline reached waiting for the identity endpoint")]
    Deadline,
}

impl IdentityError {
    pub fn class(&self) -> FailureClass {
        match self {
            IdentityError::NotConfigured(_) => FailureClass::IdentityNotConfigured,
            IdentityError::Unavailable(_) => FailureClass::IdentityUnavailable,
            IdentityError::Refused { .. } => FailureClass::IdentityRefused,
            IdentityError::Malformed(_) => FailureClass::IdentityMalformed,
            IdentityError::Deadline => FailureClass::Deadline,
        }
    }
}

/// A token as the endpoint handed it out.
#[derive(Debug)]
pub struct Token {
    secret: Secret,
    expires_at: Option<SystemTime>,
}

impl Token {
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The `oid` claim (the identity's object id), read from the JWT payload without
    /// checking the signature: the token is our own, from the platform. Redis names its
    /// Entra ACL user by it.
    pub fn object_id(&self) -> Option<String> {
        use base64::Engine as _;
        let payload = self.secret.expose().split('.').nth(1)?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        let oid = v.get("oid")?.as_str()?;
        (!oid.is_empty() && oid.len() <= 64 && oid.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| oid.to_string())
    }

    /// Usable until `at` (with a margin): the run may still log in then.
    fn lasts_until(&self, at: SystemTime) -> bool {
        self.expires_at.is_none_or(|e| e > at + SKEW)
    }
}

type Slot = Arc<OnceCell<Result<Arc<Token>, IdentityError>>>;

/// One run's tokens, keyed by `(resource, client_id)`.
pub struct Tokens {
    setup: Arc<Setup>,
    cache: Mutex<HashMap<(String, Option<String>), Slot>>,
}

impl Tokens {
    pub fn new(setup: Arc<Setup>) -> Tokens {
        Tokens {
            setup,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `resource` (`client_id`: a user-assigned identity; `None`: the
    /// system-assigned one), fetched within `min(timeout, what the run has left)` or taken
    /// from this run's cache. The evidence says which identity, how long, whether cached;
    /// never the token.
    pub async fn get(
        &self,
        resource: &str,
        client_id: Option<&str>,
        budget: &Budget,
        timeout: Duration,
    ) -> (Result<Arc<Token>, IdentityError>, IdentityEvidence) {
        let t0 = Instant::now();
        let mut ev = IdentityEvidence {
            resource: resource.to_string(),
            identity: match client_id {
                Some(c) => format!("user-assigned (client id {c})"),
                None => "system-assigned".into(),
            },
            ..Default::default()
        };
        let key = (resource.to_string(), client_id.map(str::to_string));
        // The wall-clock instant the run ends: a cached token must outlive it.
        let run_end = SystemTime::now() + budget.remaining();
        let slot = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let stale = cache
                .get(&key)
                .is_some_and(|s| matches!(s.get(), Some(Ok(t)) if !t.lasts_until(run_end)));
            if stale {
                cache.remove(&key);
            }
            cache.entry(key).or_default().clone()
        };
        let mut fetched = false;
        let res = slot
            .get_or_init(|| {
                fetched = true;
                self.fetch(resource, client_id, budget, timeout)
            })
            .await
            .clone();
        ev.cached = !fetched;
        ev.token_ms = Some(ms(t0.elapsed()));
        if let Ok(t) = &res {
            ev.ok = true;
            ev.expires_in_s = t.expires_at.map(|e| {
                e.duration_since(SystemTime::now())
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0)
            });
        }
        (res, ev)
    }

    async fn fetch(
        &self,
        resource: &str,
        client_id: Option<&str>,
        budget: &Budget,
        timeout: Duration,
    ) -> Result<Arc<Token>, IdentityError> {
        let ep = match &*self.setup {
            Setup::Ready(ep) => ep,
            Setup::Missing(var) => {
                return Err(IdentityError::NotConfigured(format!(
                    "{var} is not set (App Service sets IDENTITY_ENDPOINT and IDENTITY_HEADER when the app has a managed identity)"
                )));
            }
            Setup::Invalid(why) => return Err(IdentityError::NotConfigured(why.clone())),
        };
        let (limit, cut) = budget.limit(timeout);
        match tokio::time::timeout(limit, request(ep, resource, client_id)).await {
            Err(_) if cut => Err(IdentityError::Deadline),
            Err(_) => Err(IdentityError::Unavailable(format!(
                "no answer within {}",
                humantime::format_duration(limit)
            ))),
            Ok(Err(e)) => Err(e),
            Ok(Ok((status, body))) => {
                parse_answer(status, &body, client_id, SystemTime::now(), ep).map(Arc::new)
            }
        }
    }
}

/// One GET to the endpoint; the status and body, or why there were none.
async fn request(
    ep: &Endpoint,
    resource: &str,
    client_id: Option<&str>,
) -> Result<(u16, bytes::Bytes), IdentityError> {
    use http_body_util::BodyExt;
    let mut url = ep.url.clone();
    url.query_pairs_mut()
        .append_pair("resource", resource)
        .append_pair("api-version", API_VERSION);
    if let Some(id) = client_id {
        url.query_pairs_mut().append_pair("client_id", id);
    }
    let host = url.host_str().unwrap_or("localhost").to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let down = |what: &str, e: &dyn std::fmt::Display| {
        IdentityError::Unavailable(format!("{what} {host}:{port}: {e}"))
    };
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| down("connecting to", &e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| down("HTTP with", &e))?;
    let task = tokio::spawn(async move { drop(conn.await) });
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header("X-IDENTITY-HEADER", ep.header.expose())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|_| {
            IdentityError::NotConfigured("IDENTITY_HEADER is not a valid header value".into())
        })?;
    let out = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| down("no answer from", &e))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| down("the answer broke off from", &e))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    task.abort();
    out
}

/// The endpoint's answer as a token, or the classified reason it is none.
fn parse_answer(
    status: u16,
    body: &[u8],
    client_id: Option<&str>,
    now: SystemTime,
    ep: &Endpoint,
) -> Result<Token, IdentityError> {
    let text = || {
        let t: String = String::from_utf8_lossy(body)
            .chars()
            .take(MAX_TEXT)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        crate::secret::scrub(&t.replace(ep.header.expose(), MASK))
    };
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        // App Service's errors are `{"statusCode":400,"message":"…","correlationId":"…"}`;
        // Entra's pass-through ones `{"error":"…","error_description":"…"}`.
        let message = json
            .as_ref()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("error_description"))
                    .or_else(|| v.get("error"))
            })
            .and_then(|m| m.as_str())
            .map(|m| {
                let m: String = m.chars().take(MAX_TEXT).collect();
                crate::secret::scrub(&m.replace(ep.header.expose(), MASK))
            })
            .unwrap_or_else(text);
        return Err(IdentityError::Refused {
            status,
            message,
            client_id: client_id.map(str::to_string),
        });
    }
    let Some(v) = json else {
        return Err(IdentityError::Malformed(format!(
            "status {status} but the body is not JSON: {:?}",
            text()
        )));
    };
    let token = match v.get("access_token").and_then(|t| t.as_str()) {
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()) => t,
        Some(_) => {
            return Err(IdentityError::Malformed(
                "`access_token` is empty or not a printable token".into(),
            ));
        }
        None => return Err(IdentityError::Malformed("no `access_token`".into())),
    };
    let expires_at = match v.get("expires_on") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| {
            IdentityError::Malformed(format!(
                "`expires_on` is {s:?}, not seconds since 1970 (api-version {API_VERSION})"
            ))
        })?),
        Some(serde_json::Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
            IdentityError::Malformed(format!("`expires_on` is {n}, not seconds since 1970"))
        })?),
        Some(other) => {
            return Err(IdentityError::Malformed(format!(
                "`expires_on` is {other}, not seconds since 1970"
            )));
        }
    }
    .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    if let Some(e) = expires_at
        && e <= now
    {
        let ago = now.duration_since(e).unwrap_or_default().as_secs();
        return Err(IdentityError::Malformed(format!(
            "the token expired {ago} s before it was handed out (`expires_on` in the past: check the instance clock)"
        )));
    }
    Ok(Token {
        secret: Secret::new(token),
        expires_at,
    })
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
