//! What is sent to each service: the smallest credential-free request the service answers
//! itself, and the one authorised read (with the app's token, or a storage account key).
//!
//! | service | credential-free request | authorised read (never a value) | token scope |
//! |---|---|---|---|
//! | blob | `GET /?comp=list&maxresults=1` | list containers | `https://storage.azure.com/.default` |
//! | queue | `GET /?comp=list&maxresults=1` | list queues | same |
//! | table | `GET /Tables?$top=1` | list tables | same |
//! | dfs | `GET /?resource=account&maxResults=1` | list file systems | same |
//! | file (REST) | `GET /?comp=list&maxresults=1` | list shares | same (+ `x-ms-file-request-intent: backup`) |
//! | Key Vault | `GET /secrets?api-version=7.4&maxresults=1` | list secret *names* | `https://vault.azure.net/.default` (cn: `vault.azure.cn`, us: `vault.usgovcloudapi.net`) |
//! | Cosmos DB | `GET /` | list databases (`GET /dbs`) | `https://ACCOUNT.documents.azure.com/.default` |
//! | App Configuration | `GET /keys?api-version=1.0` | list key *names* | `https://azconfig.io/.default` (cn: `appconfig.azure.cn`, us: `appconfig.azure.us`) |
//! | Container Registry | `GET /v2/` | `POST /oauth2/exchange` (token accepted) | `https://containerregistry.azure.net/.default` |
//! | an app running routeproof | `GET /api/health` (the target's path) | none: the function is anonymous | none |
//!
//! Storage requests carry `x-ms-version: 2023-11-03` (tables: `2019-02-02`, the Table
//! service's own version line): from version 2019-12-12 on, an anonymous request that passes
//! the network rules is answered 401 `NoAuthenticationInformation` with a Bearer
//! challenge (see `verdict.rs`). Credentials are `Secret`s: a request's Debug shows none.

use std::time::SystemTime;

use bytes::Bytes;
use hyper::Method;
use serde::Serialize;

use super::kind::{Cloud, ServiceKind, ServiceTarget};
use crate::secret::Secret;

pub const STORAGE_VERSION: &str = "2023-11-03";
pub const TABLE_VERSION: &str = "2019-02-02";
pub const KEYVAULT_API: &str = "7.4";
pub const APPCONFIG_API: &str = "1.0";
pub const COSMOS_VERSION: &str = "2018-12-31";
/// routeproof's anonymous health function under the shipped host.json (`routePrefix: "api"`).
pub const HEALTH_PATH: &str = "/api/health";

/// Which of the two exchanges a request is: the verdict reads the answer accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// No credential: proves the service answered, and whether its network rules let us in.
    Anonymous,
    /// The one authorised read: tells a missing role apart from a network block.
    Authorized,
}

/// One HTTP request to a service. Headers that carry credentials are kept apart, as
/// `Secret`s, so neither Debug nor a report can show them.
#[derive(Debug, Clone)]
pub struct ServiceRequest {
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Headers without credentials.
    pub headers: Vec<(&'static str, String)>,
    /// The `Authorization` header value (Bearer token, SharedKey signature, Cosmos AAD sig).
    pub authorization: Option<Secret>,
    /// A body that carries a credential (ACR's token exchange form), with its content type.
    pub body: Option<(&'static str, Secret)>,
    pub purpose: Purpose,
}

impl ServiceRequest {
    fn get(path: String, purpose: Purpose) -> ServiceRequest {
        ServiceRequest {
            method: Method::GET,
            path,
            headers: Vec::new(),
            authorization: None,
            body: None,
            purpose,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> ServiceRequest {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body_bytes(&self) -> Bytes {
        match &self.body {
            Some((_, b)) => Bytes::copy_from_slice(b.expose().as_bytes()),
            None => Bytes::new(),
        }
    }
}

/// `/?QUERY` on Azure, `/ACCOUNT?QUERY` on an emulator (path-style).
fn root(t: &ServiceTarget, query: &str) -> String {
    let prefix = t.path_prefix();
    if prefix.is_empty() {
        format!("/?{query}")
    } else {
        format!("{prefix}?{query}")
    }
}

/// The path of the read for `t`, the same for both purposes: a storage answer then
/// differs only by the credential.
fn read_path(t: &ServiceTarget) -> String {
    match t.kind {
        ServiceKind::StorageBlob | ServiceKind::StorageQueue | ServiceKind::StorageFile => {
            root(t, "comp=list&maxresults=1")
        }
        ServiceKind::StorageDfs => root(t, "resource=account&maxResults=1"),
        ServiceKind::StorageTable => format!("{}/Tables?$top=1", t.path_prefix()),
        ServiceKind::KeyVault => format!("/secrets?api-version={KEYVAULT_API}&maxresults=1"),
        ServiceKind::CosmosDb => "/".to_string(),
        ServiceKind::AppConfiguration => format!("/keys?api-version={APPCONFIG_API}"),
        ServiceKind::ContainerRegistry => "/v2/".to_string(),
        ServiceKind::FunctionApp => t.path.clone().unwrap_or_else(|| HEALTH_PATH.to_string()),
    }
}

fn with_service_headers(t: &ServiceTarget, req: ServiceRequest) -> ServiceRequest {
    match t.kind {
        ServiceKind::StorageTable => req
            .header("x-ms-version", TABLE_VERSION)
            .header("accept", "application/json;odata=nometadata")
            .header("dataserviceversion", "3.0;NetFx")
            .header("maxdataserviceversion", "3.0;NetFx"),
        k if k.is_storage() => req.header("x-ms-version", STORAGE_VERSION),
        ServiceKind::CosmosDb => req
            .header("x-ms-version", COSMOS_VERSION)
            .header("accept", "application/json"),
        ServiceKind::KeyVault | ServiceKind::AppConfiguration | ServiceKind::FunctionApp => {
            req.header("accept", "application/json")
        }
        _ => req,
    }
}

/// The smallest credential-free request `t`'s service answers itself.
pub fn anonymous(t: &ServiceTarget) -> ServiceRequest {
    with_service_headers(t, ServiceRequest::get(read_path(t), Purpose::Anonymous))
}

/// The token scope (`.default` form) for `t` in its cloud.
pub fn token_scope(t: &ServiceTarget) -> String {
    format!("{}/.default", token_resource(t))
}

/// The resource (v1 `resource=` form, as App Service's managed-identity endpoint takes it).
pub fn token_resource(t: &ServiceTarget) -> String {
    match (t.kind, t.cloud) {
        (k, _) if k.is_storage() => "https://storage.azure.com".into(),
        (ServiceKind::KeyVault, Cloud::Public) => "https://vault.azure.net".into(),
        (ServiceKind::KeyVault, Cloud::China) => "https://vault.azure.cn".into(),
        (ServiceKind::KeyVault, Cloud::UsGov) => "https://vault.usgovcloudapi.net".into(),
        (ServiceKind::CosmosDb, _) => format!("https://{}", t.host),
        (ServiceKind::AppConfiguration, Cloud::Public) => "https://azconfig.io".into(),
        (ServiceKind::AppConfiguration, Cloud::China) => "https://appconfig.azure.cn".into(),
        (ServiceKind::AppConfiguration, Cloud::UsGov) => "https://appconfig.azure.us".into(),
        // Never asked: the health function is anonymous, so there is no authorised read.
        (ServiceKind::FunctionApp, _) => format!("https://{}", t.host),
        _ => "https://containerregistry.azure.net".into(),
    }
}

/// The one authorised read with a bearer token for [`token_scope`].
pub fn authorized(t: &ServiceTarget, token: &Secret, now: SystemTime) -> ServiceRequest {
    let mut req = with_service_headers(t, ServiceRequest::get(read_path(t), Purpose::Authorized));
    match t.kind {
        ServiceKind::CosmosDb => {
            // Cosmos DB's AAD form: `type=aad&ver=1.0&sig=TOKEN`, URL-encoded as a whole,
            // with x-ms-date (Cosmos DB REST "Access control on Cosmos DB resources").
            req.path = "/dbs".into();
            let raw = format!("type=aad&ver=1.0&sig={}", token.expose());
            let enc: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
            req.authorization = Some(Secret::new(enc));
            req = req.header("x-ms-date", httpdate::fmt_http_date(now).to_lowercase());
        }
        ServiceKind::ContainerRegistry => {
            // ACR's AAD-token exchange (Azure Container Registry "authentication" REST
            // docs): the answer holds a refresh token, which is why the verdict never keeps
            // an ACR body.
            req.method = Method::POST;
            req.path = "/oauth2/exchange".into();
            let form = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "access_token")
                .append_pair("service", &t.host)
                .append_pair("access_token", token.expose())
                .finish();
            req.body = Some(("application/x-www-form-urlencoded", Secret::new(form)));
        }
        k => {
            if k == ServiceKind::StorageFile {
                req = req.header("x-ms-file-request-intent", "backup");
            }
            req.authorization = Some(Secret::new(format!("Bearer {}", token.expose())));
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_service() {
        let blob = ServiceTarget::recognise("acct.blob.core.windows.net").unwrap();
        let r = anonymous(&blob);
        assert_eq!(r.path, "/?comp=list&maxresults=1");
        assert!(
            r.headers
                .contains(&("x-ms-version", STORAGE_VERSION.into()))
        );
        assert!(r.authorization.is_none());
        let emu = ServiceTarget::declared(ServiceKind::StorageBlob, "127.0.0.1", None, true);
        assert_eq!(
            anonymous(&emu).path,
            "/devstoreaccount1?comp=list&maxresults=1"
        );
        let table = ServiceTarget::declared(ServiceKind::StorageTable, "127.0.0.1", None, true);
        assert_eq!(anonymous(&table).path, "/devstoreaccount1/Tables?$top=1");
        let kv = ServiceTarget::recognise("kv.vault.azure.cn").unwrap();
        assert_eq!(anonymous(&kv).path, "/secrets?api-version=7.4&maxresults=1");
        assert_eq!(token_scope(&kv), "https://vault.azure.cn/.default");
        let cosmos = ServiceTarget::recognise("db.documents.azure.com").unwrap();
        assert_eq!(
            token_scope(&cosmos),
            "https://db.documents.azure.com/.default"
        );
        let acr = ServiceTarget::recognise("reg.azurecr.io").unwrap();
        assert_eq!(anonymous(&acr).path, "/v2/");
    }

    #[test]
    fn credentials_never_print() {
        let tok = Secret::new("eyJ.PLANTED-TOKEN.sig");
        let now = SystemTime::now();
        for host in [
            "acct.blob.core.windows.net",
            "kv.vault.azure.net",
            "db.documents.azure.com",
            "cfg.azconfig.io",
            "reg.azurecr.io",
        ] {
            let t = ServiceTarget::recognise(host).unwrap();
            let r = authorized(&t, &tok, now);
            let dbg = format!("{r:?}");
            assert!(!dbg.contains("PLANTED"), "{host}: {dbg}");
            assert!(r.authorization.is_some() || r.body.is_some(), "{host}");
        }
    }
}
