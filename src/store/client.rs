//! The blob client: Apache Arrow's `object_store` (Azure backend) signs and sends every
//! request; this file only configures it, supplies the App Service managed-identity
//! token, creates the container once, and turns its errors into `StoreError`s.
//!
//! Why `object_store` and not Microsoft's `azure_storage_blob`: docs/storage.md.

use std::sync::Arc;
use std::time::Duration;

use object_store::azure::{
    AzureAccessKey, AzureAuthorizer, AzureCredential, MicrosoftAzure, MicrosoftAzureBuilder,
};
use object_store::{ClientOptions, CredentialProvider, RetryConfig, StaticCredentialProvider};
use tokio::sync::Mutex;

use super::error::{StoreClass, StoreError, mask_values};
use super::settings::{Auth, ManagedIdentity, StoreSettings};
use crate::secret::Secret;

/// The token audience of Azure Storage (Microsoft Entra "Authorize with Microsoft Entra
/// ID" for Blob: resource `https://storage.azure.com/`).
const STORAGE_RESOURCE: &str = "https://storage.azure.com/";
/// The App Service identity endpoint's API version (App Service "Managed identities",
/// REST endpoint reference: `api-version=2019-08-01`, header `X-IDENTITY-HEADER`).
const IDENTITY_API_VERSION: &str = "2019-08-01";

pub struct Backend {
    pub blobs: MicrosoftAzure,
    http: reqwest::Client,
    settings: Arc<StoreSettings>,
    secrets: Vec<Secret>,
}

impl Backend {
    pub fn new(settings: Arc<StoreSettings>) -> Result<Backend, StoreError> {
        let mut secrets = Vec::new();
        let mut opts = ClientOptions::new()
            .with_timeout(settings.timeout)
            .with_connect_timeout(Duration::from_secs(3).min(settings.timeout))
            .with_allow_http(settings.endpoint.scheme() == "http");
        let mut http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(3).min(settings.timeout));
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                StoreError::new(
                    StoreClass::Config,
                    format!("ROUTEPROOF_STORAGE_CA_FILE `{path}`: {e}"),
                )
            })?;
            let bad = |e: String| {
                StoreError::new(
                    StoreClass::Config,
                    format!("ROUTEPROOF_STORAGE_CA_FILE `{path}`: {e}"),
                )
            };
            opts = opts.with_root_certificate(
                object_store::Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?,
            );
            http = http.add_root_certificate(
                reqwest::Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?,
            );
        }
        let http = http
            .build()
            .map_err(|e| StoreError::new(StoreClass::Config, format!("HTTP client: {e}")))?;
        let credential: Arc<dyn CredentialProvider<Credential = AzureCredential>> = match &settings
            .auth
        {
            Auth::AccountKey(k) => {
                secrets.push(k.clone());
                let key = AzureAccessKey::try_new(k.expose())
                    .map_err(|_| StoreError::new(StoreClass::Config, "AccountKey is not base64"))?;
                Arc::new(StaticCredentialProvider::new(AzureCredential::AccessKey(
                    key,
                )))
            }
            Auth::Sas(s) => {
                secrets.push(s.clone());
                let pairs = object_store::azure::split_sas(s.expose()).map_err(|_| {
                    StoreError::new(
                        StoreClass::Config,
                        "SharedAccessSignature is not a query string",
                    )
                })?;
                Arc::new(StaticCredentialProvider::new(AzureCredential::SASToken(
                    pairs,
                )))
            }
            Auth::ManagedIdentity(mi) => {
                secrets.push(mi.header.clone());
                Arc::new(IdentityProvider {
                    mi: mi.clone(),
                    http: http.clone(),
                    cached: Mutex::new(None),
                })
            }
        };
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: settings.timeout,
            ..RetryConfig::default()
        };
        let blobs = MicrosoftAzureBuilder::new()
            .with_account(&settings.account)
            .with_container_name(&settings.container)
            .with_endpoint(settings.endpoint.as_str().trim_end_matches('/').to_string())
            .with_credentials(credential)
            .with_client_options(opts)
            .with_retry(retry)
            .build()
            .map_err(|e| StoreError::new(StoreClass::Config, mask_values(&e.to_string(), &[])))?;
        Ok(Backend {
            blobs,
            http,
            settings,
            secrets,
        })
    }

    /// Every configured secret value, for masking text that might quote one.
    pub fn mask(&self, text: &str) -> String {
        let values: Vec<&str> = self.secrets.iter().map(|s| s.expose()).collect();
        mask_values(text, &values)
    }

    /// Maps an `object_store` error to a store error with a masked message.
    pub fn error(&self, e: &object_store::Error, doing: &str) -> StoreError {
        let mut chain = Vec::new();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut class = None;
        while let Some(err) = cur {
            if let Some(s) = err.downcast_ref::<StoreError>() {
                return s.clone();
            }
            if let Some(h) = err.downcast_ref::<object_store::client::HttpError>() {
                use object_store::client::HttpErrorKind as K;
                if matches!(
                    h.kind(),
                    K::Connect | K::Request | K::Timeout | K::Interrupted
                ) {
                    class.get_or_insert(StoreClass::Unreachable);
                }
            }
            chain.push(err.to_string());
            cur = err.source();
        }
        let text = chain.join(": ");
        let class = match e {
            object_store::Error::Precondition { .. }
            | object_store::Error::AlreadyExists { .. } => StoreClass::Conflict,
            _ if text.contains("ContainerNotFound") => StoreClass::ContainerMissing,
            _ => class.unwrap_or_else(|| classify_text(&text)),
        };
        let mut msg = self.mask(&text);
        if msg.len() > 400 {
            let mut cut = 400;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
            msg.push('…');
        }
        StoreError::new(class, format!("{doing}: {msg}"))
    }

    /// Creates the container (`Create Container`, signed by `object_store`'s own
    /// authorizer); an existing one is fine.
    pub async fn create_container(&self) -> Result<(), StoreError> {
        let cred = self
            .blobs
            .credentials()
            .get_credential()
            .await
            .map_err(|e| self.error(&e, "creating the container"))?;
        let url = format!(
            "{}/{}?restype=container",
            self.settings.endpoint.as_str().trim_end_matches('/'),
            self.settings.container
        );
        let mut req = http::Request::builder()
            .method(http::Method::PUT)
            .uri(&url)
            .header(http::header::CONTENT_LENGTH, "0")
            .body(object_store::client::HttpRequestBody::empty())
            .map_err(|e| StoreError::new(StoreClass::Config, e.to_string()))?;
        AzureAuthorizer::new(&cred, &self.settings.account)
            .try_authorize(&mut req)
            .map_err(|e| StoreError::new(StoreClass::Auth, self.mask(&e.to_string())))?;
        let resp = self
            .http
            .put(req.uri().to_string())
            .headers(req.headers().clone())
            .send()
            .await
            .map_err(|e| {
                StoreError::new(
                    StoreClass::Unreachable,
                    self.mask(&format!("creating the container: {}", e.without_url())),
                )
            })?;
        let status = resp.status().as_u16();
        let code = resp
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match status {
            200..=299 => Ok(()),
            409 if code == "ContainerAlreadyExists" => Ok(()),
            401 | 403 => Err(StoreError::new(
                StoreClass::Auth,
                format!(
                    "creating the container `{}`: {status} {code} (the identity needs Storage Blob Data Contributor on the account, or create the container yourself)",
                    self.settings.container
                ),
            )),
            _ => Err(StoreError::new(
                StoreClass::ContainerMissing,
                format!(
                    "creating the container `{}`: {status} {code}",
                    self.settings.container
                ),
            )),
        }
    }
}

fn classify_text(text: &str) -> StoreClass {
    let auth_codes = [
        "status code: 401",
        "status code: 403",
        "AuthenticationFailed",
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "InvalidAuthenticationInfo",
        "NoAuthenticationInformation",
    ];
    if auth_codes.iter().any(|c| text.contains(c)) {
        StoreClass::Auth
    } else if text.contains("error sending request")
        || text.contains("Connection refused")
        || text.contains("timed out")
    {
        StoreClass::Unreachable
    } else {
        StoreClass::Error
    }
}

/// Tokens from the App Service / Functions identity endpoint, cached until five minutes
/// before they expire. (`object_store`'s own IMDS provider reads `IDENTITY_HEADER` from
/// the process environment; this one takes it from the settings it was given.)
struct IdentityProvider {
    mi: ManagedIdentity,
    http: reqwest::Client,
    cached: Mutex<Option<(Arc<AzureCredential>, std::time::Instant)>>,
}

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("endpoint", &self.mi.endpoint.as_str())
            .field("client_id", &self.mi.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Unix seconds; App Service sends it as a string.
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

impl IdentityProvider {
    async fn fetch(&self) -> Result<(String, Duration), StoreError> {
        let mut url = self.mi.endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", IDENTITY_API_VERSION)
                .append_pair("resource", STORAGE_RESOURCE);
            if let Some(c) = &self.mi.client_id {
                q.append_pair("client_id", c);
            }
        }
        let auth = |m: String| StoreError::new(StoreClass::Auth, m);
        let resp = self
            .http
            .get(url)
            .header("X-IDENTITY-HEADER", self.mi.header.expose())
            .send()
            .await
            .map_err(|e| {
                auth(format!(
                    "managed identity endpoint unreachable: {}",
                    e.without_url()
                ))
            })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| auth(format!("managed identity endpoint: {}", e.without_url())))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)])
                .replace(self.mi.header.expose(), crate::secret::MASK);
            return Err(auth(format!(
                "managed identity endpoint answered {status}: {text}"
            )));
        }
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            auth("managed identity endpoint answered without an access_token".into())
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let exp = match t.expires_on {
            Some(serde_json::Value::String(s)) => s.parse::<u64>().ok(),
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            _ => None,
        }
        .unwrap_or(now + 3600);
        Ok((t.access_token, Duration::from_secs(exp.saturating_sub(now))))
    }
}

#[async_trait::async_trait]
impl CredentialProvider for IdentityProvider {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AzureCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((c, until)) = cached.as_ref()
            && std::time::Instant::now() < *until
        {
            return Ok(c.clone());
        }
        let (token, life) = self
            .fetch()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "ManagedIdentity",
                source: Box::new(e),
            })?;
        let c = Arc::new(AzureCredential::BearerToken(token));
        let keep = life.saturating_sub(Duration::from_secs(300));
        *cached = Some((c.clone(), std::time::Instant::now() + keep));
        Ok(c)
    }
}
