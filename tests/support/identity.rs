//! An emulated App Service managed-identity endpoint on 127.0.0.1, answering as the REST
//! protocol documents it (App Service *Managed identities*, "Using the REST protocol",
//! MicrosoftDocs/azure-docs `articles/app-service/overview-managed-identity.md`; rows I1-I4
//! of docs/azure-facts.md): `GET /msi/token?resource=R&api-version=2019-08-01[&client_id=C]`
//! with `X-IDENTITY-HEADER: $IDENTITY_HEADER`, a 200 answer
//! `{access_token, expires_on (unix seconds, a string), resource, token_type, client_id}`.
//! Its refusals: a client id not assigned to the app is 400
//! `{"statusCode":400,"message":"Unable to load the proper Managed Identity.","correlationId":…}`
//! (as quoted from App Service in Azure/azure-sdk-for-net issue 43691); a missing or wrong
//! header 401, a resource it has no token for 400.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One token request as the endpoint saw it.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub resource: Option<String>,
    pub api_version: Option<String>,
    pub client_id: Option<String>,
    pub header_ok: bool,
}

#[derive(Clone)]
struct Issue {
    header: String,
    /// resource -> token
    tokens: HashMap<String, String>,
    /// Client ids of the user-assigned identities "assigned to the app".
    clients: Vec<String>,
    /// Answer every authenticated request 200 with this body instead of a token (a
    /// malformed answer: something else at IDENTITY_ENDPOINT).
    raw: Option<String>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub struct IdentityEndpoint {
    pub url: String,
    pub header: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IdentityEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn token(
    State(issue): State<Issue>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let header_ok = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        == Some(issue.header.as_str());
    let seen = Seen {
        resource: q.get("resource").cloned(),
        api_version: q.get("api-version").cloned(),
        client_id: q.get("client_id").cloned(),
        header_ok,
    };
    issue.seen.lock().unwrap().push(seen.clone());
    let json = |status: StatusCode, v: serde_json::Value| (status, axum::Json(v)).into_response();
    if !header_ok {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or invalid"}),
        );
    }
    if seen.api_version.as_deref() != Some("2019-08-01") {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"statusCode": 400, "message": "api-version is not supported"}),
        );
    }
    if let Some(c) = &seen.client_id
        && !issue.clients.contains(c)
    {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"statusCode": 400, "message": "Unable to load the proper Managed Identity.", "correlationId": "7b8c1d2e-0000-4000-8000-000000000001"}),
        );
    }
    if let Some(body) = &issue.raw {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            body.clone(),
        )
            .into_response();
    }
    let resource = seen.resource.clone().unwrap_or_default();
    let Some(tok) = issue.tokens.get(&resource) else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"statusCode": 400, "message": format!("AADSTS500011: The resource principal named {resource} was not found in the tenant.")}),
        );
    };
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": tok,
            "expires_on": exp.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": seen.client_id.clone().unwrap_or_else(|| "5e29463d-71da-4fe0-8e69-999b57db23b0".into()),
        }),
    )
}

impl IdentityEndpoint {
    /// Hands out `tokens` (`(resource, token)`) to a caller with `header`, for the
    /// system-assigned identity and the user-assigned ones in `clients`.
    pub async fn start(header: &str, tokens: &[(&str, &str)], clients: &[&str]) -> Self {
        Self::serve(header, tokens, clients, None).await
    }

    /// Answers every request that carries `header` 200 with `body` (not a usable token).
    pub async fn start_raw(header: &str, body: &str) -> Self {
        Self::serve(header, &[], &[], Some(body.to_string())).await
    }

    async fn serve(
        header: &str,
        tokens: &[(&str, &str)],
        clients: &[&str],
        raw: Option<String>,
    ) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let issue = Issue {
            header: header.to_string(),
            tokens: tokens
                .iter()
                .map(|(r, t)| (r.to_string(), t.to_string()))
                .collect(),
            clients: clients.iter().map(|c| c.to_string()).collect(),
            raw,
            seen: seen.clone(),
        };
        let app = axum::Router::new()
            .route("/msi/token", axum::routing::get(token))
            .with_state(issue);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/msi/token", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        IdentityEndpoint {
            url,
            header: header.to_string(),
            seen,
            task,
        }
    }

    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` as App Service sets them.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("IDENTITY_ENDPOINT", self.url.clone()),
            ("IDENTITY_HEADER", self.header.clone()),
        ]
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// An `IDENTITY_ENDPOINT` on a loopback port nothing listens on (bound, then released).
pub fn down_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/msi/token")
}

/// A JWT of the shape Microsoft Entra ID issues (header, claims, signature; the signature
/// is not real): `aud`, an `sts.windows.net` issuer, a valid lifetime and the identity's
/// `oid`. Azurite's `--oauth basic` checks exactly these and not the signature.
pub fn jwt(aud: &str, oid: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "aud": aud,
        "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "oid": oid,
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    });
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(&claims.to_string()),
        b64("not-a-real-signature")
    )
}
