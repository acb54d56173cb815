//! Credentials for the tests: an account SAS signed with the development key, and an
//! emulated App Service identity endpoint that hands out tokens Azurite accepts.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// An account SAS (Storage REST "Create an account SAS", version 2019-12-12: string to
/// sign = account, permissions, services, resource types, start, expiry, IP, protocol,
/// version, each followed by a newline; HMAC-SHA256 with the decoded account key).
pub fn account_sas(account: &str, key_b64: &str, permissions: &str) -> String {
    let key = STANDARD.decode(key_b64).expect("base64 key");
    let expiry =
        humantime::format_rfc3339_seconds(SystemTime::now() + std::time::Duration::from_secs(3600))
            .to_string();
    let (sv, ss, srt, spr) = ("2019-12-12", "b", "sco", "https,http");
    let to_sign = format!("{account}\n{permissions}\n{ss}\n{srt}\n\n{expiry}\n\n{spr}\n{sv}\n");
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let sig = STANDARD.encode(aws_lc_rs::hmac::sign(&k, to_sign.as_bytes()).as_ref());
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={permissions}&se={}&spr={}&sig={}",
        enc(&expiry),
        enc(spr),
        enc(&sig)
    )
}

/// A JWT of the shape Azure Storage gets from Microsoft Entra ID: audience
/// `https://storage.azure.com`, a `sts.windows.net` issuer, a valid lifetime. Azurite
/// (`--oauth basic`) checks exactly these and not the signature (Azurite README).
pub fn storage_jwt(lifetime_s: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "aud": "https://storage.azure.com",
        "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "iat": now - 60, "nbf": now - 60, "exp": now + lifetime_s,
        "oid": "00000000-0000-0000-0000-0000000000aa",
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!(
        "{header}.{claims}.{}",
        URL_SAFE_NO_PAD.encode(b"not-a-real-signature")
    )
}

#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub requests: u32,
    pub resource: Option<String>,
    pub api_version: Option<String>,
    pub client_id: Option<String>,
    pub header_ok: bool,
}

/// The App Service identity endpoint as documented (App Service "Managed identities",
/// REST protocol): `GET IDENTITY_ENDPOINT?resource=…&api-version=2019-08-01[&client_id=…]`
/// with `X-IDENTITY-HEADER: $IDENTITY_HEADER`; answers `{access_token, expires_on (a
/// string of unix seconds), resource, token_type}`, 400/401 without the right header.
pub struct IdentityEndpoint {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl IdentityEndpoint {
    pub async fn start(header: &'static str) -> IdentityEndpoint {
        use axum::extract::{Query, State};
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        type S = Arc<Mutex<Seen>>;
        async fn token(
            State(seen): State<S>,
            headers: HeaderMap,
            Query(q): Query<std::collections::HashMap<String, String>>,
        ) -> axum::response::Response {
            let want = headers
                .get("x-identity-header")
                .and_then(|v| v.to_str().ok())
                == Some(HEADER.get().unwrap().as_str());
            {
                let mut s = seen.lock().unwrap();
                s.requests += 1;
                s.resource = q.get("resource").cloned();
                s.api_version = q.get("api-version").cloned();
                s.client_id = q.get("client_id").cloned();
                s.header_ok = want;
            }
            if !want {
                return (
                    StatusCode::UNAUTHORIZED,
                    "{\"error\":\"invalid X-IDENTITY-HEADER\"}",
                )
                    .into_response();
            }
            let exp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600;
            axum::Json(serde_json::json!({
                "access_token": storage_jwt(3600),
                "expires_on": exp.to_string(),
                "resource": "https://storage.azure.com/",
                "token_type": "Bearer",
            }))
            .into_response()
        }
        static HEADER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let _ = HEADER.set(header.to_string());
        let seen: S = Arc::default();
        let app = axum::Router::new()
            .route("/msi/token", axum::routing::get(token))
            .with_state(seen.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/msi/token", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        IdentityEndpoint { url, seen, task }
    }
}

impl Drop for IdentityEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}
