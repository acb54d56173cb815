//! From a service's answer (status, headers, a bounded body) to a verdict and evidence.
//!
//! What each service answers, and where it is documented:
//! - **Storage**, anonymous, passing the network rules: from `x-ms-version` 2019-12-12 on,
//!   Blob/Queue/File/DFS answer a request without credentials 401 `NoAuthenticationInformation`
//!   ("Server failed to authenticate the request. Please refer to the information in the
//!   www-authenticate header.") with a bearer challenge
//!   `WWW-Authenticate: Bearer authorization_uri=https://login.microsoftonline.com/TENANT/oauth2/authorize resource_id=https://storage.azure.com`
//!   (Microsoft Storage REST: "Authorize with Microsoft Entra ID", section "Bearer
//!   challenge", learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory;
//!   codes in "Common REST API error codes", learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes).
//!   Older versions answered 404 `ResourceNotFound`. Refused by the account's network rules:
//!   403 `AuthorizationFailure` ("This request is not authorized to perform this
//!   operation."). A missing data role: 403 `AuthorizationPermissionMismatch`. Every storage
//!   answer carries `x-ms-request-id`.
//! - **Azurite** answers the anonymous request 403 `AuthorizationFailure` (its own
//!   authenticator, not a network rule): with the target declared an emulator this is
//!   `EmulatorQuirk` (reached, with a note), never `Firewall`.
//! - **Key Vault**: 401 with `WWW-Authenticate: Bearer authorization="…", resource="https://vault.azure.net"`;
//!   403 with `innererror.code` `ForbiddenByFirewall` / `ForbiddenByConnection` (network) or
//!   `ForbiddenByRbac` / `AccessDenied` (role or access policy); `x-ms-request-id` and
//!   `x-ms-keyvault-network-info` on every answer (Key Vault "Common error codes" and the
//!   private-link diagnostics page, see `witness.rs`).
//! - **Cosmos DB**: 401 "Required Header authorization is missing"; 403 "Request originated
//!   from IP A through public internet. This is blocked by your Cosmos DB account firewall
//!   settings."; 403 substatus 5301 "… cannot be authorized by AAD token in data plane" (no
//!   data role); `x-ms-activity-id` on every answer (Cosmos DB "HTTP status codes" and
//!   "Troubleshoot forbidden" pages).
//! - **App Configuration**: 401 with a challenge, `x-ms-request-id` (REST "Authentication").
//! - **Container Registry**: `GET /v2/` 401 `Bearer realm="https://R.azurecr.io/oauth2/token",service="R.azurecr.io"`
//!   with `Docker-Distribution-Api-Version: registry/2.0` (the registry v2 API); firewall
//!   403 "client with IP 'A' is not allowed access" (ACR "Troubleshoot network issues").
//!
//! - **An app running routeproof** (`/api/health`, `handler::client`): 200 with a JSON body
//!   `{"status": "ok", "service": "routeproof", "version", "client": {"address", "from"} | null}`;
//!   the body's `service` is the marker (App Service adds no header of its own that a
//!   proxy could not), `client.address` the witness. Anything else did not come from it.
//!
//! Anything without the service's own marker header is `NotTheService`: a proxy, WAF or
//! appliance answered (Key Vault's diagnostics page says the same of a missing
//! `x-ms-keyvault-network-info`).

use hyper::HeaderMap;
use serde::Serialize;

use super::kind::{ServiceKind, ServiceTarget};
use super::request::Purpose;
use super::witness::{self, Witness};
use super::{ServiceClass, Verdict};
use crate::secret::scrub;

/// What the answer showed; nothing in it is a credential (messages are scrubbed, and an
/// authorised read's body is never kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The service's request id (`x-ms-request-id`, Cosmos `x-ms-activity-id`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The header that shows the service itself answered, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_marker: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulator_note: Option<String>,
}

/// The verdict on one answer, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub evidence: Evidence,
}

impl Judgement {
    pub fn class(&self) -> Option<ServiceClass> {
        self.verdict.class()
    }
}

const MAX_TEXT: usize = 300;

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    let v = h.get(name)?;
    let s = String::from_utf8_lossy(v.as_bytes());
    Some(scrub(&s).chars().take(MAX_TEXT).collect())
}

/// The headers that only the service itself sends, per service.
fn markers(kind: ServiceKind) -> &'static [&'static str] {
    match kind {
        ServiceKind::KeyVault => &["x-ms-request-id", "x-ms-keyvault-network-info"],
        ServiceKind::CosmosDb => &["x-ms-activity-id", "x-ms-gatewayversion"],
        ServiceKind::AppConfiguration => &["x-ms-request-id", "x-ms-correlation-request-id"],
        ServiceKind::ContainerRegistry => &[
            "docker-distribution-api-version",
            "x-ms-correlation-request-id",
            "x-ms-request-id",
        ],
        _ => &["x-ms-request-id"],
    }
}

/// `<Code>` and `<Message>` of a storage XML error, or `code`/`message` of a JSON error
/// (`{"error":{"code","message","innererror":{"code"}}}`, `{"code","message"}`, or the
/// registry's `{"errors":[{"code","message"}]}`). The innermost code wins.
fn parse_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('<') {
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let start = t.find(&open)? + open.len();
            let end = t[start..].find(&format!("</{name}>"))? + start;
            Some(t[start..end].trim().to_string())
        };
        return (tag("Code"), tag("Message"));
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(t) else {
        return (None, None);
    };
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    if let Some(e) = v.get("error") {
        let code = e
            .get("innererror")
            .and_then(|i| s(i, "code"))
            .or_else(|| s(e, "code"));
        return (code, s(e, "message"));
    }
    if let Some(e) = v.get("errors").and_then(|e| e.get(0)) {
        return (s(e, "code"), s(e, "message"));
    }
    (s(&v, "code"), s(&v, "message").or_else(|| s(&v, "detail")))
}

fn short(message: &str) -> String {
    let first: String = message
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(2)
        .collect::<Vec<_>>()
        .join(" / ");
    scrub(&first).chars().take(MAX_TEXT).collect()
}

fn has_any(message: &str, needles: &[&str]) -> bool {
    let m = message.to_ascii_lowercase();
    needles.iter().any(|n| m.contains(n))
}

/// Judges one answer from `t`'s service to a request of `purpose`.
pub fn judge(
    t: &ServiceTarget,
    purpose: Purpose,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Judgement {
    if t.kind == ServiceKind::FunctionApp {
        return app_health(status, headers, body);
    }
    let marker = markers(t.kind)
        .iter()
        .copied()
        .find(|m| headers.contains_key(*m));
    let (body_code, body_message) = parse_body(body);
    let code = header(headers, "x-ms-error-code").or(body_code);
    let full_message = body_message.unwrap_or_default();
    let mut ev = Evidence {
        status,
        error_code: code.as_ref().map(|c| scrub(c).chars().take(80).collect()),
        // An authorised read's body is data (names) or, for ACR, a refresh token: never kept.
        message: (purpose == Purpose::Anonymous || !(200..300).contains(&status))
            .then(|| short(&full_message))
            .filter(|m| !m.is_empty())
            .filter(|_| {
                !(t.kind == ServiceKind::ContainerRegistry && (200..300).contains(&status))
            }),
        request_id: header(headers, "x-ms-request-id")
            .or_else(|| header(headers, "x-ms-activity-id")),
        service_marker: marker,
        challenge: header(headers, "www-authenticate"),
        server: header(headers, "server"),
        witness: None,
        emulator_note: None,
    };
    ev.witness = match t.kind {
        ServiceKind::KeyVault => headers
            .get("x-ms-keyvault-network-info")
            .and_then(|v| v.to_str().ok())
            .and_then(witness::from_keyvault_header)
            .or_else(|| witness::from_keyvault_message(&full_message)),
        ServiceKind::CosmosDb => witness::from_cosmos_message(&full_message),
        ServiceKind::ContainerRegistry => witness::from_registry_message(&full_message),
        _ => None,
    };
    if marker.is_none() {
        return Judgement {
            verdict: Verdict::NotTheService,
            evidence: Evidence {
                witness: None,
                ..ev
            },
        };
    }
    let code_is = |names: &[&str]| {
        code.as_deref()
            .is_some_and(|c| names.iter().any(|n| c.eq_ignore_ascii_case(n)))
    };
    let ok = (200..300).contains(&status);
    let served = |reached: bool| match (purpose, reached) {
        (Purpose::Anonymous, _) => Verdict::ReachedService,
        (Purpose::Authorized, true) => Verdict::AuthorizedReadOk,
        (Purpose::Authorized, false) => Verdict::CredentialRejected,
    };
    let verdict = if status == 429 || status >= 500 {
        Verdict::ServiceError
    } else if t.kind.is_storage() {
        storage(t, purpose, status, &code_is, &mut ev)
    } else if ok {
        served(true)
    } else if status == 401 {
        served(false)
    } else if status == 403 {
        let network = match t.kind {
            ServiceKind::KeyVault => {
                code_is(&["ForbiddenByFirewall", "ForbiddenByConnection"])
                    || has_any(
                        &full_message,
                        &[
                            "client address is not authorized",
                            "public network access is disabled",
                            "private link",
                        ],
                    )
            }
            ServiceKind::CosmosDb => has_any(
                &full_message,
                &["through public internet", "firewall", "originated from"],
            ),
            ServiceKind::ContainerRegistry => {
                has_any(&full_message, &["not allowed access", "firewall"])
            }
            _ => has_any(
                &full_message,
                &["network", "firewall", "private endpoint", "private link"],
            ),
        };
        // Without a credential no role can be missing: the service's own 403 to an
        // anonymous request is its network rules.
        if network || purpose == Purpose::Anonymous {
            Verdict::Firewall
        } else {
            Verdict::Rbac
        }
    } else {
        Verdict::Unexpected
    };
    Judgement {
        verdict,
        evidence: ev,
    }
}

/// The marker of an app's answer: routeproof's health body.
const ROUTEPROOF_MARKER: &str = "body: service=routeproof";

/// An app's `/api/health`: routeproof's own answer (reached, with the address the front
/// end saw us come from) or not routeproof at all.
fn app_health(status: u16, headers: &HeaderMap, body: &[u8]) -> Judgement {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(|x| x.as_str())
            .map(|x| scrub(x).chars().take(40).collect::<String>())
    };
    let ours = (200..300).contains(&status) && field("service").as_deref() == Some("routeproof");
    let witness = v
        .as_ref()
        .and_then(|v| v.pointer("/client/address"))
        .and_then(|a| a.as_str())
        .filter(|_| ours)
        .and_then(witness::from_app_health);
    let ev = Evidence {
        status,
        error_code: None,
        message: ours.then(|| {
            format!(
                "routeproof {} health {}",
                field("version").unwrap_or_default(),
                field("status").unwrap_or_default()
            )
        }),
        request_id: None,
        service_marker: ours.then_some(ROUTEPROOF_MARKER),
        challenge: None,
        server: header(headers, "server"),
        witness,
        emulator_note: None,
    };
    Judgement {
        verdict: if ours {
            Verdict::ReachedService
        } else {
            Verdict::NotTheService
        },
        evidence: ev,
    }
}

const AZURITE_NOTE: &str = "emulator: Azurite answers a request it cannot authenticate with 403 AuthorizationFailure; real Azure Storage uses that code only for a network-rule refusal and answers an anonymous request 401 NoAuthenticationInformation. Read here as: the emulator's service answered.";

fn storage(
    t: &ServiceTarget,
    purpose: Purpose,
    status: u16,
    code_is: &dyn Fn(&[&str]) -> bool,
    ev: &mut Evidence,
) -> Verdict {
    let auth_codes = [
        "NoAuthenticationInformation",
        "AuthenticationFailed",
        "InvalidAuthenticationInfo",
        "KeyBasedAuthenticationNotPermitted",
    ];
    let rbac_codes = [
        "AuthorizationPermissionMismatch",
        "InsufficientAccountPermissions",
        "AuthorizationResourceTypeMismatch",
        "AuthorizationServiceMismatch",
    ];
    match purpose {
        Purpose::Anonymous => {
            if code_is(&["AuthorizationFailure"]) && status == 403 {
                if t.emulator {
                    ev.emulator_note = Some(AZURITE_NOTE.into());
                    Verdict::EmulatorQuirk
                } else {
                    Verdict::Firewall
                }
            } else if code_is(&rbac_codes) {
                Verdict::Rbac
            } else if matches!(status, 200..=299 | 400 | 401 | 403 | 404 | 409) {
                if t.emulator && status == 403 {
                    ev.emulator_note = Some(AZURITE_NOTE.into());
                    Verdict::EmulatorQuirk
                } else {
                    Verdict::ReachedService
                }
            } else {
                Verdict::Unexpected
            }
        }
        Purpose::Authorized => {
            if (200..300).contains(&status) {
                Verdict::AuthorizedReadOk
            } else if code_is(&rbac_codes) {
                Verdict::Rbac
            } else if code_is(&["AuthorizationFailure"]) {
                // Azurite's answer to a wrong key or token; Azure's network-rule refusal.
                if t.emulator {
                    Verdict::CredentialRejected
                } else {
                    Verdict::Firewall
                }
            } else if code_is(&auth_codes) || matches!(status, 400 | 401 | 403) {
                Verdict::CredentialRejected
            } else {
                Verdict::Unexpected
            }
        }
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
