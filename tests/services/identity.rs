//! The service layer's authorised read with the app's managed identity, through the
//! engine: the emulated App Service identity endpoint (`support/identity.rs`) hands out
//! the tokens; Azurite with `--oauth basic` over HTTPS (a real storage server, which
//! checks a token's audience, issuer and lifetime but not its signature) takes the read;
//! the Key Vault and storage contract stubs of `stubs.rs` answer what Azure documents for
//! a missing role or access policy.

use routeproof::report::{FailureClass, Layer, TargetReport};

use crate::certs::Ca;
use crate::engine_support::{class, hint};
use crate::identity_support::{IdentityEndpoint, down_url, jwt};
use crate::{Site, ca_file, failed, peers, service_layer as service, stubs};

const VAULT: &str = "kv1.vault.azure.net";
const BLOB: &str = "acct1.blob.core.windows.net";
const HEADER: &str = "idh-PLANTED-5c3f";
const CLIENT: &str = "8a7b6c5d-1111-4222-8333-444455556666";

/// Runs `targets` with an engine that asks the loopback DNS (Azure names -> 127.0.0.1)
/// and the app settings `env` (the identity endpoint's, plus the site's).
async fn one(targets: &str, env: &[(&'static str, String)]) -> (TargetReport, String) {
    let site = Site {
        names: &[VAULT, BLOB],
        private_ip: "10.60.1.5",
        env: env.to_vec(),
        deadline: None,
    };
    site.one(targets).await
}

fn target(host: &str, port: u16, ca: &tempfile::NamedTempFile, extra: &str) -> String {
    format!(
        "[[targets]]\nname = \"t\"\ntarget = \"https://{host}:{port}/\"\nca_file = \"{}\"\nauthentication = \"managed_identity\"\n{extra}\n",
        ca.path().display()
    )
}

fn no_leak(shown: &str, secrets: &[&str]) {
    for s in secrets.iter().chain([&HEADER]) {
        assert!(!shown.contains(s), "a secret leaked: {shown}");
    }
}

/// Azurite with `--oauth basic` over HTTPS, the test CA's file to verify it, and the
/// emulated identity endpoint (answering `header`) holding a storage-audience token for
/// the identity `oid`; `None` when Azurite is missing (the skip is said for `test`).
pub struct OauthStorage {
    pub az: peers::Azurite,
    pub ca: tempfile::NamedTempFile,
    pub token: String,
    pub idp: IdentityEndpoint,
}

pub async fn oauth_storage(test: &str, header: &str, oid: &str) -> Option<OauthStorage> {
    let a = match peers::azurite_oauth() {
        Ok(a) => a,
        Err(e) => {
            peers::skip(test, &e);
            return None;
        }
    };
    let token = jwt("https://storage.azure.com", oid);
    let idp = IdentityEndpoint::start(header, &[("https://storage.azure.com", &token)], &[]).await;
    Some(OauthStorage {
        az: a.az,
        ca: ca_file(&a.ca),
        token,
        idp,
    })
}

#[tokio::test]
async fn azurite_oauth_reads_with_the_identity_token() {
    let Some(OauthStorage {
        az,
        ca: f,
        token,
        idp,
    }) = oauth_storage(
        "azurite_oauth_reads_with_the_identity_token",
        HEADER,
        "00000000-0000-0000-0000-0000000000aa",
    )
    .await
    else {
        return;
    };
    let text = target(
        "127.0.0.1",
        az.blob,
        &f,
        "service = \"blob\"\nemulator = true",
    );
    let (t, shown) = one(&text, &idp.env()).await;
    assert_eq!(class(&t), None, "{t:#?}");
    let v = service(&t);
    // Azurite's anonymous answer is its quirk (noted), then the read with the token is 200.
    assert_eq!(v["answer"]["status"], 403, "{v}");
    assert!(v["answer"]["emulator_note"].is_string(), "{v}");
    assert_eq!(v["verdict"], "authorized_read_ok", "{v}");
    assert_eq!(v["authorized"]["status"], 200, "{v}");
    assert_eq!(
        v["identity"]["resource"], "https://storage.azure.com",
        "{v}"
    );
    assert_eq!(v["identity"]["identity"], "system-assigned", "{v}");
    eprintln!(
        "timing: azurite blob anonymous + authorised read {} ms (token {} ms)",
        v["duration_ms"], v["identity"]["token_ms"]
    );
    let seen = idp.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].header_ok, "{seen:?}");
    assert_eq!(
        seen[0].resource.as_deref(),
        Some("https://storage.azure.com")
    );
    no_leak(&shown, &[&token]);

    // A token of another audience: Azurite's authenticator refuses it (service.auth_failed).
    let vault_token = jwt(
        "https://vault.azure.net",
        "00000000-0000-0000-0000-0000000000aa",
    );
    let idp =
        IdentityEndpoint::start(HEADER, &[("https://storage.azure.com", &vault_token)], &[]).await;
    let (t, shown) = one(&text, &idp.env()).await;
    failed(
        &t,
        FailureClass::ServiceAuthFailed,
        &["https://storage.azure.com", "system-assigned"],
    );
    no_leak(&shown, &[&vault_token]);
}

#[tokio::test]
async fn keyvault_without_a_role_is_service_rbac_with_the_role() {
    let ca = Ca::new("routeproof identity test CA");
    let stub = stubs::serve(
        &ca,
        &[VAULT],
        stubs::keyvault_401("10.60.1.5"),
        stubs::keyvault_rbac(),
    )
    .await;
    let token = jwt(
        "https://vault.azure.net",
        "00000000-0000-0000-0000-0000000000bb",
    );
    let idp =
        IdentityEndpoint::start(HEADER, &[("https://vault.azure.net", &token)], &[CLIENT]).await;
    let f = ca_file(&ca);
    let (t, shown) = one(
        &target(
            VAULT,
            stub.addr.port(),
            &f,
            &format!("client_id = \"{CLIENT}\"\nprivate = true"),
        ),
        &idp.env(),
    )
    .await;
    failed(
        &t,
        FailureClass::ServiceRbac,
        &["Key Vault Secrets User", "network path", CLIENT],
    );
    assert_eq!(t.reached, Some(Layer::Service));
    let v = service(&t);
    assert_eq!(v["verdict"], "rbac", "{v}");
    assert_eq!(v["authorized"]["error_code"], "ForbiddenByRbac", "{v}");
    // The private path was proven by the anonymous answer's witness.
    assert_eq!(v["witness"]["conclusion"], "private_path_proven", "{v}");
    // The read was names only: GET /secrets, and the token arrived as a Bearer.
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(
        seen.path.as_deref(),
        Some("/secrets?api-version=7.4&maxresults=1")
    );
    assert_eq!(seen.authorization, Some(format!("Bearer {token}")));
    assert_eq!(idp.seen()[0].client_id.as_deref(), Some(CLIENT));
    no_leak(&shown, &[&token]);
}

#[tokio::test]
async fn keyvault_access_policy_and_list_and_storage_rbac() {
    let ca = Ca::new("routeproof identity test CA");
    let f = ca_file(&ca);
    let token = jwt(
        "https://vault.azure.net",
        "00000000-0000-0000-0000-0000000000cc",
    );
    let st = jwt(
        "https://storage.azure.com",
        "00000000-0000-0000-0000-0000000000cc",
    );
    let idp = IdentityEndpoint::start(
        HEADER,
        &[
            ("https://vault.azure.net", &token),
            ("https://storage.azure.com", &st),
        ],
        &[],
    )
    .await;

    // An access-policy vault without List on secrets: the hint says access policy.
    let stub = stubs::serve(
        &ca,
        &[VAULT],
        stubs::keyvault_401("10.60.1.5"),
        stubs::keyvault_access_denied(),
    )
    .await;
    let (t, _) = one(&target(VAULT, stub.addr.port(), &f, ""), &idp.env()).await;
    failed(&t, FailureClass::ServiceRbac, &["access polic"]);

    // A role that lists: authorized_read_ok, and no secret name or value kept.
    let stub = stubs::serve(
        &ca,
        &[VAULT],
        stubs::keyvault_401("10.60.1.5"),
        stubs::keyvault_list(),
    )
    .await;
    let (t, shown) = one(&target(VAULT, stub.addr.port(), &f, ""), &idp.env()).await;
    assert_eq!(class(&t), None, "{t:#?}");
    assert_eq!(service(&t)["verdict"], "authorized_read_ok");
    assert!(
        !shown.contains("listed-name"),
        "a secret name was kept: {shown}"
    );

    // Storage: the identity has no data role (AuthorizationPermissionMismatch).
    let stub = stubs::serve(&ca, &[BLOB], stubs::storage_401(), stubs::storage_rbac()).await;
    let (t, shown) = one(&target(BLOB, stub.addr.port(), &f, ""), &idp.env()).await;
    failed(&t, FailureClass::ServiceRbac, &["Storage Blob Data Reader"]);
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.path.as_deref(), Some("/?comp=list&maxresults=1"));
    assert_eq!(
        idp.seen()
            .iter()
            .filter(|s| s.resource.as_deref() == Some("https://storage.azure.com"))
            .count(),
        1
    );
    no_leak(&shown, &[&token, &st]);

    // A firewall refusal stops before the token: no read, no token request.
    let before = idp.seen().len();
    let stub = stubs::serve(
        &ca,
        &[BLOB],
        stubs::storage_firewall(),
        stubs::storage_rbac(),
    )
    .await;
    let (t, _) = one(&target(BLOB, stub.addr.port(), &f, ""), &idp.env()).await;
    assert_eq!(class(&t), Some(FailureClass::ServiceFirewall), "{t:#?}");
    assert_eq!(idp.seen().len(), before);
}

#[tokio::test]
async fn identity_endpoint_down_or_refusing_is_its_own_class() {
    let ca = Ca::new("routeproof identity test CA");
    let f = ca_file(&ca);
    let stub = stubs::serve(
        &ca,
        &[VAULT],
        stubs::keyvault_401("10.60.1.5"),
        stubs::keyvault_list(),
    )
    .await;
    let text = target(VAULT, stub.addr.port(), &f, "");

    // Down: refused on loopback.
    let env = [
        ("IDENTITY_ENDPOINT", down_url()),
        ("IDENTITY_HEADER", HEADER.to_string()),
    ];
    let (t, shown) = one(&text, &env).await;
    let fl = failed(
        &t,
        FailureClass::IdentityUnavailable,
        &[
            "managed identity is not enabled",
            "IDENTITY_ENDPOINT",
            "The route works",
        ],
    );
    assert_eq!(t.reached, Some(Layer::Service));
    assert_eq!(fl.layer, Some(Layer::Service));
    assert_eq!(service(&t)["verdict"], "reached_service");
    no_leak(&shown, &[]);

    // A client id the app does not have: 400 from the endpoint, named in the hint.
    let idp = IdentityEndpoint::start(HEADER, &[("https://vault.azure.net", "a.b.c")], &[]).await;
    let (t, _) = one(
        &target(
            VAULT,
            stub.addr.port(),
            &f,
            &format!("client_id = \"{CLIENT}\""),
        ),
        &idp.env(),
    )
    .await;
    assert_eq!(class(&t), Some(FailureClass::IdentityRefused), "{t:#?}");
    for words in [
        CLIENT,
        "__clientId",
        "Unable to load the proper Managed Identity",
    ] {
        assert!(
            hint(&t).contains(words) || t.failure.as_ref().unwrap().message.contains(words),
            "{words}: {t:#?}"
        );
    }
    // A wrong IDENTITY_HEADER: the endpoint's 401, classified the same way.
    let env = [
        ("IDENTITY_ENDPOINT", idp.url.clone()),
        ("IDENTITY_HEADER", "stale".to_string()),
    ];
    let (t, _) = one(&text, &env).await;
    assert_eq!(class(&t), Some(FailureClass::IdentityRefused), "{t:#?}");
    assert!(
        t.failure.as_ref().unwrap().message.contains("401"),
        "{t:#?}"
    );
}
