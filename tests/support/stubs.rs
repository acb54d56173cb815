//! Loopback HTTPS contract stubs for the services that have no installable emulator (Key
//! Vault, Cosmos DB, App Configuration, Container Registry) and for the storage answers
//! Azurite does not emulate (network-rule refusal, RBAC mismatch), plus a proxy's 403 page.
//! Each answers exactly one documented response; the source is named next to it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response};

use super::certs::{Ca, LeafSpec};
use super::web;

/// One documented answer: status, headers, body.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Canned {
    pub fn new(status: u16, headers: &[(&'static str, &str)], body: &str) -> Canned {
        Canned {
            status,
            headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            body: body.to_string(),
        }
    }
}

/// What the stub saw of the last request (to check the credential arrived intact).
#[derive(Default, Clone)]
pub struct Seen {
    pub authorization: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
}

/// A running stub; dropping it stops it.
pub struct Stub {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    _server: web::Server,
}

/// An HTTPS server on 127.0.0.1 for `names`, answering `anonymous` to a request without
/// credentials and `authorized` to one with (an `Authorization` header or a form body).
pub async fn serve(ca: &Ca, names: &[&str], anonymous: Canned, authorized: Canned) -> Stub {
    let leaf = ca.issue(&LeafSpec::new(names.iter().copied()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    let app = Router::new().fallback(move |req: Request<Body>| {
        let (anonymous, authorized, seen) = (anonymous.clone(), authorized.clone(), seen2.clone());
        async move {
            let h: &HeaderMap = req.headers();
            let auth = h
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let form = h.get("content-type").is_some_and(|v| {
                v.as_bytes()
                    .starts_with(b"application/x-www-form-urlencoded")
            });
            {
                let mut s = seen.lock().unwrap();
                s.authorization = auth.clone();
                s.path = req.uri().path_and_query().map(|p| p.to_string());
                s.host = h
                    .get("host")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
            }
            let c = if auth.is_some() || form {
                authorized
            } else {
                anonymous
            };
            let mut b = Response::builder().status(c.status);
            for (k, v) in &c.headers {
                b = b.header(*k, v.as_str());
            }
            b.body(Body::from(c.body)).unwrap()
        }
    });
    let server = web::https_with(leaf.server_config(&[], &[b"http/1.1"]), app).await;
    Stub {
        addr: server.addr,
        seen,
        _server: server,
    }
}

// ---- The documented answers -------------------------------------------------------------

/// Key Vault, unauthenticated: 401 with the Bearer challenge, x-ms-request-id and the
/// network-info header. Headers as recorded by the Azure SDK for JavaScript's Key Vault
/// test recordings (azure-sdk-for-js, sdk/keyvault/keyvault-secrets/recordings: 401 with
/// `WWW-Authenticate: Bearer authorization="https://login.windows.net/TENANT", resource="https://vault.azure.net"`,
/// `x-ms-keyvault-network-info: conn_type=Ipv4;addr=…;act_addr_fam=InterNetwork;`), body as
/// Key Vault's "Authentication, requests and responses" page (AKV10000).
pub fn keyvault_401(witness: &str) -> Canned {
    Canned::new(
        401,
        &[
            (
                "www-authenticate",
                "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", resource=\"https://vault.azure.net\"",
            ),
            ("x-ms-request-id", "6f77daee-2b5e-4b66-9dca-3341510db27d"),
            ("x-ms-keyvault-region", "westeurope"),
            ("x-ms-keyvault-service-version", "1.9.1000.1"),
            (
                "x-ms-keyvault-network-info",
                &format!("conn_type=Ipv4;addr={witness};act_addr_fam=InterNetwork;"),
            ),
            ("content-type", "application/json; charset=utf-8"),
        ],
        r#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#,
    )
}

/// Key Vault firewall refusal: 403, inner error `ForbiddenByFirewall`, "Client address: A"
/// (Key Vault "Common error codes" page and "Troubleshooting Azure Key Vault access policy
/// issues"; the inner code as in Microsoft's private-link diagnostics page).
pub fn keyvault_firewall(witness: &str) -> Canned {
    Canned::new(
        403,
        &[
            ("x-ms-request-id", "2a4efc3a-64ef-11eb-91de-0242ac120003"),
            (
                "x-ms-keyvault-network-info",
                &format!("conn_type=Ipv4;addr={witness};act_addr_fam=InterNetwork;"),
            ),
            ("content-type", "application/json; charset=utf-8"),
        ],
        &format!(
            "{{\"error\":{{\"code\":\"Forbidden\",\"message\":\"Client address is not authorized and caller is not a trusted service.\\r\\nClient address: {witness}\\r\\nCaller: appid=00000000-0000-0000-0000-000000000001;oid=00000000-0000-0000-0000-000000000002\\r\\nVault: kv1;location=westeurope\",\"innererror\":{{\"code\":\"ForbiddenByFirewall\"}}}}}}"
        ),
    )
}

/// Key Vault, the caller has no role (RBAC vault): 403 `ForbiddenByRbac` (Key Vault
/// "Troubleshoot Azure RBAC" / "Common error codes").
pub fn keyvault_rbac() -> Canned {
    Canned::new(
        403,
        &[
            ("x-ms-request-id", "r-rbac"),
            (
                "x-ms-keyvault-network-info",
                "conn_type=Ipv4;addr=10.60.1.5;act_addr_fam=InterNetwork;",
            ),
        ],
        r#"{"error":{"code":"Forbidden","message":"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nAction: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'","innererror":{"code":"ForbiddenByRbac"}}}"#,
    )
}

/// Key Vault on the access-policy model, the caller has no policy with List on secrets:
/// 403, inner error `AccessDenied`, "… does not have secrets list permission on key vault
/// …" (the service's text as quoted in turbot/steampipe-plugin-azure issue 127; Key Vault
/// "Common error codes": access denied by access policy).
pub fn keyvault_access_denied() -> Canned {
    Canned::new(
        403,
        &[
            ("x-ms-request-id", "r-policy"),
            (
                "x-ms-keyvault-network-info",
                "conn_type=Ipv4;addr=10.60.1.5;act_addr_fam=InterNetwork;",
            ),
        ],
        r#"{"error":{"code":"Forbidden","message":"The user, group or application 'appid=00000000-0000-0000-0000-000000000001;oid=00000000-0000-0000-0000-000000000002;iss=https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/' does not have secrets list permission on key vault 'kv1;location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287","innererror":{"code":"AccessDenied"}}}"#,
    )
}

/// Key Vault list secrets: names and attributes, never values (Key Vault REST "Get
/// Secrets", api-version 7.4).
pub fn keyvault_list() -> Canned {
    Canned::new(
        200,
        &[
            ("x-ms-request-id", "r-list"),
            (
                "x-ms-keyvault-network-info",
                "conn_type=Ipv4;addr=10.60.1.5;act_addr_fam=InterNetwork;",
            ),
        ],
        r#"{"value":[{"id":"https://kv1.vault.azure.net/secrets/listed-name","attributes":{"enabled":true}}],"nextLink":null}"#,
    )
}

/// Cosmos DB without credentials: 401 "Required Header authorization is missing" with
/// x-ms-activity-id (Cosmos DB REST "HTTP status codes" page; "Common Azure Cosmos DB REST
/// request headers").
pub fn cosmos_401() -> Canned {
    Canned::new(
        401,
        &[
            ("x-ms-activity-id", "d2b5c8f4-0000-0000-0000-000000000000"),
            ("x-ms-gatewayversion", "2.0.0"),
            ("content-type", "application/json"),
        ],
        r#"{"code":"Unauthorized","message":"Required Header authorization is missing. Ensure a valid Authorization token is passed.\r\nActivityId: d2b5c8f4-0000-0000-0000-000000000000, Microsoft.Azure.Documents.Common/2.14.0"}"#,
    )
}

/// Cosmos DB firewall: 403 "Request originated from IP A through public internet" (Cosmos
/// DB "Diagnose and troubleshoot forbidden exceptions", aka.ms/cosmosdb-tsg-forbidden).
pub fn cosmos_firewall(witness: &str) -> Canned {
    Canned::new(
        403,
        &[("x-ms-activity-id", "a-fw"), ("x-ms-substatus", "0")],
        &format!(
            "{{\"code\":\"Forbidden\",\"message\":\"Request originated from IP {witness} through public internet. This is blocked by your Cosmos DB account firewall settings. More info: https://aka.ms/cosmosdb-tsg-forbidden\\r\\nActivityId: a-fw, Microsoft.Azure.Documents.Common/2.14.0\"}}"
        ),
    )
}

/// App Configuration without credentials: 401 with its challenge and x-ms-request-id (App
/// Configuration REST "Authentication" / "HMAC authentication" pages).
pub fn appconfig_401() -> Canned {
    Canned::new(
        401,
        &[
            ("www-authenticate", "HMAC-SHA256, Bearer"),
            ("x-ms-request-id", "ac-1"),
            ("x-ms-correlation-request-id", "ac-1"),
        ],
        "",
    )
}

/// App Configuration, identity without a data role: 403 (App Configuration "Use Microsoft
/// Entra ID" page: the data-plane roles).
pub fn appconfig_403() -> Canned {
    Canned::new(
        403,
        &[
            ("x-ms-request-id", "ac-2"),
            ("content-type", "application/problem+json"),
        ],
        r#"{"type":"https://azconfig.io/errors/forbidden","title":"Access to the requested resource is forbidden.","status":403}"#,
    )
}

/// Container Registry `GET /v2/` unauthenticated: 401 with the registry challenge (ACR
/// "Azure Container Registry authentication" REST page; Docker registry HTTP API v2).
pub fn acr_401(host: &str) -> Canned {
    Canned::new(
        401,
        &[
            ("docker-distribution-api-version", "registry/2.0"),
            (
                "www-authenticate",
                &format!("Bearer realm=\"https://{host}/oauth2/token\",service=\"{host}\""),
            ),
            ("content-type", "application/json; charset=utf-8"),
        ],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required, visit https://aka.ms/acr/authorization for more information.","detail":null}]}"#,
    )
}

/// Container Registry firewall: 403 "client with IP 'A' is not allowed access" (ACR
/// "Troubleshoot network issues with registry").
pub fn acr_firewall(witness: &str) -> Canned {
    Canned::new(
        403,
        &[("docker-distribution-api-version", "registry/2.0")],
        &format!(
            "{{\"errors\":[{{\"code\":\"DENIED\",\"message\":\"client with IP '{witness}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.\"}}]}}"
        ),
    )
}

/// Container Registry token exchange: 200 with a refresh token (ACR "authentication" REST).
pub fn acr_exchange(refresh: &str) -> Canned {
    Canned::new(
        200,
        &[
            ("x-ms-correlation-request-id", "x1"),
            ("content-type", "application/json"),
        ],
        &format!("{{\"refresh_token\":\"{refresh}\"}}"),
    )
}

/// Storage network-rule refusal: 403 `AuthorizationFailure` "This request is not authorized
/// to perform this operation." (Storage REST "Common REST API error codes"; Storage
/// "Configure Azure Storage firewalls and virtual networks").
pub fn storage_firewall() -> Canned {
    Canned::new(
        403,
        &[
            ("x-ms-request-id", "s-fw"),
            ("x-ms-error-code", "AuthorizationFailure"),
            ("x-ms-version", "2023-11-03"),
            ("server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"),
            ("content-type", "application/xml"),
        ],
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationFailure</Code><Message>This request is not authorized to perform this operation.\nRequestId:s-fw\nTime:2026-12-01T10:00:00.0000000Z</Message></Error>",
    )
}

/// Storage, passing the rules, no credentials: 401 `NoAuthenticationInformation` and the
/// Bearer challenge (Storage REST "Authorize with Microsoft Entra ID", "Bearer challenge").
pub fn storage_401() -> Canned {
    Canned::new(
        401,
        &[
            ("x-ms-request-id", "s-401"),
            ("x-ms-error-code", "NoAuthenticationInformation"),
            (
                "www-authenticate",
                "Bearer authorization_uri=https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize resource_id=https://storage.azure.com",
            ),
        ],
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>NoAuthenticationInformation</Code><Message>Server failed to authenticate the request. Please refer to the information in the www-authenticate header.\nRequestId:s-401</Message></Error>",
    )
}

/// Storage, identity without a data role: 403 `AuthorizationPermissionMismatch` (Storage
/// "Troubleshoot … authorization" / "Common REST API error codes").
pub fn storage_rbac() -> Canned {
    Canned::new(
        403,
        &[
            ("x-ms-request-id", "s-rbac"),
            ("x-ms-error-code", "AuthorizationPermissionMismatch"),
        ],
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.\nRequestId:s-rbac</Message></Error>",
    )
}

/// Storage throttling: 503 `ServerBusy` "The server is currently unable to receive
/// requests. Please retry your request." (Storage REST "Common REST API error codes",
/// learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes), with the
/// service's `x-ms-request-id`.
pub fn storage_server_busy() -> Canned {
    Canned::new(
        503,
        &[
            ("x-ms-request-id", "s-busy"),
            ("x-ms-error-code", "ServerBusy"),
            ("server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"),
        ],
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code><Message>The server is currently unable to receive requests. Please retry your request.\nRequestId:s-busy</Message></Error>",
    )
}

/// Storage refusing the verb: 405 `UnsupportedHttpVerb` "The resource doesn't support the
/// specified HTTP verb." (Storage REST "Common REST API error codes"): the service's own
/// answer, but none the service layer's verdicts explain.
pub fn storage_unsupported_verb() -> Canned {
    Canned::new(
        405,
        &[
            ("x-ms-request-id", "s-405"),
            ("x-ms-error-code", "UnsupportedHttpVerb"),
            ("allow", "PUT"),
        ],
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>UnsupportedHttpVerb</Code><Message>The resource doesn't support the specified HTTP verb.\nRequestId:s-405</Message></Error>",
    )
}

/// Azure Files, the authorised read passing: 200 with the "List Shares" document (Storage
/// REST "List Shares": `EnumerationResults` with `Shares`/`Share`/`Name`, `x-ms-request-id`).
pub fn file_list_shares() -> Canned {
    Canned::new(
        200,
        &[
            ("x-ms-request-id", "f-list"),
            ("x-ms-version", "2023-11-03"),
            ("content-type", "application/xml"),
        ],
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"https://fnstore.file.core.windows.net/\"><MaxResults>1</MaxResults><Shares><Share><Name>orders-func-share</Name></Share></Shares><NextMarker /></EnumerationResults>",
    )
}

/// A reverse proxy's own 403 page (an nginx default error page): no storage headers.
pub fn proxy_403() -> Canned {
    Canned::new(
        403,
        &[("server", "nginx"), ("content-type", "text/html")],
        "<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1></center><hr><center>nginx</center></body></html>",
    )
}
