//! Key Vault, Cosmos DB, App Configuration, Container Registry and the storage answers
//! Azurite does not emulate, against the loopback contract stubs in stubs.rs, through the
//! real `exchange` (hyper over rustls) and `judge`; the witness against this instance's
//! addresses.

use std::time::SystemTime;

use routeproof::probe::service::witness::{PathConclusion, WitnessMatch, conclude};
use routeproof::probe::service::{
    Purpose, ServiceClass, ServiceTarget, Verdict, hint, judge, request,
};
use routeproof::secret::Secret;

use crate::certs::Ca;
use crate::stubs::{self, Canned};
use crate::{PLANTED_TOKEN, assert_clean, over_tls};

struct Case {
    host: &'static str,
    anonymous: Canned,
    authorized: Canned,
}

/// Runs the anonymous exchange and the authorised read against a stub for `c.host`.
async fn run(
    c: Case,
) -> (
    ServiceTarget,
    routeproof::probe::service::Judgement,
    routeproof::probe::service::Judgement,
    stubs::Seen,
) {
    crate::certs::install_crypto_provider();
    let ca = Ca::new("routeproof stub CA");
    let stub = stubs::serve(&ca, &[c.host], c.anonymous, c.authorized).await;
    let t = ServiceTarget::recognise(c.host).expect("recognised");
    let client = ca.client_config(&[b"http/1.1"]);
    let req = request::anonymous(&t);
    let a = over_tls(stub.addr, c.host, client.clone(), &req).await;
    eprintln!("timing: {} anonymous {:?}", t.kind, a.elapsed);
    let anon = judge(&t, Purpose::Anonymous, a.status, &a.headers, &a.body);
    let token = Secret::new(PLANTED_TOKEN);
    let req = request::authorized(&t, &token, SystemTime::now());
    let a = over_tls(stub.addr, c.host, client, &req).await;
    eprintln!("timing: {} authorised {:?}", t.kind, a.elapsed);
    let auth = judge(&t, Purpose::Authorized, a.status, &a.headers, &a.body);
    let seen = stub.seen.lock().unwrap().clone();
    for j in [&anon, &auth] {
        let mut text = format!("{j:?} {}", serde_json::to_string(j).unwrap());
        if let Some(class) = j.class() {
            text.push_str(&hint(class, &t, Some(&j.evidence)));
        }
        assert_clean(c.host, &text, &["PLANTED-BEARER-TOKEN", "PLANTED-REFRESH"]);
    }
    (t, anon, auth, seen)
}

#[tokio::test]
async fn key_vault_private_witness_and_authorised_read() {
    let (t, anon, auth, seen) = run(Case {
        host: "kv1.vault.azure.net",
        anonymous: stubs::keyvault_401("10.60.1.5"),
        authorized: stubs::keyvault_list(),
    })
    .await;
    assert_eq!(anon.verdict, Verdict::ReachedService);
    assert!(
        anon.evidence
            .challenge
            .as_deref()
            .unwrap()
            .contains("resource=\"https://vault.azure.net\"")
    );
    let w = anon.evidence.witness.clone().unwrap();
    assert_eq!(w.addr.to_string(), "10.60.1.5");
    let path = conclude(
        Some(&w),
        Some("169.254.254.2".parse().unwrap()),
        Some("10.60.1.5"),
        true,
    );
    assert_eq!(path.conclusion, PathConclusion::PrivatePathProven);
    assert_eq!(path.matched, Some(WitnessMatch::WebsitePrivateIp));
    assert!(!path.failed);
    assert_eq!(auth.verdict, Verdict::AuthorizedReadOk);
    assert!(
        auth.evidence.message.is_none(),
        "no secret names in evidence"
    );
    // The token went to the vault intact, and only there.
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {PLANTED_TOKEN}"))
    );
    assert_eq!(seen.host.as_deref(), Some("kv1.vault.azure.net"));
    assert_eq!(request::token_scope(&t), "https://vault.azure.net/.default");
}

#[tokio::test]
async fn key_vault_firewall_with_a_public_witness_is_public_path() {
    let (t, anon, auth, _) = run(Case {
        host: "kv1.vault.azure.net",
        anonymous: stubs::keyvault_401("52.178.1.2"),
        authorized: stubs::keyvault_firewall("52.178.1.2"),
    })
    .await;
    assert_eq!(anon.verdict, Verdict::ReachedService);
    assert_eq!(auth.class(), Some(ServiceClass::Firewall));
    assert_eq!(
        auth.evidence.error_code.as_deref(),
        Some("ForbiddenByFirewall")
    );
    let w = auth.evidence.witness.clone().unwrap();
    assert_eq!(w.addr.to_string(), "52.178.1.2");
    let h = hint(ServiceClass::Firewall, &t, Some(&auth.evidence));
    assert!(
        h.contains("privatelink.vaultcore.azure.net") && h.contains("52.178.1.2"),
        "{h}"
    );
    let path = conclude(
        Some(&w),
        Some("169.254.254.2".parse().unwrap()),
        Some("10.60.1.5"),
        true,
    );
    assert_eq!(
        (path.conclusion, path.failed),
        (PathConclusion::PublicPath, true)
    );
    let h = hint(ServiceClass::PublicPath, &t, Some(&auth.evidence));
    assert!(
        h.contains("vnetRouteAllEnabled") && h.contains("168.63.129.16"),
        "{h}"
    );
    assert_eq!(ServiceClass::PublicPath.as_str(), "service.public_path");
}

#[tokio::test]
async fn key_vault_missing_role_is_rbac() {
    let (t, _, auth, _) = run(Case {
        host: "kv1.vault.azure.net",
        anonymous: stubs::keyvault_401("10.60.1.5"),
        authorized: stubs::keyvault_rbac(),
    })
    .await;
    assert_eq!(auth.class(), Some(ServiceClass::Rbac));
    let h = hint(ServiceClass::Rbac, &t, Some(&auth.evidence));
    assert!(
        h.contains("Key Vault Secrets User") && h.contains("ForbiddenByRbac"),
        "{h}"
    );
}

#[tokio::test]
async fn cosmos_reached_and_firewall_witness() {
    let (t, anon, auth, seen) = run(Case {
        host: "db1.documents.azure.com",
        anonymous: stubs::cosmos_401(),
        authorized: stubs::cosmos_firewall("20.50.2.3"),
    })
    .await;
    assert_eq!(anon.verdict, Verdict::ReachedService);
    assert_eq!(
        anon.evidence.request_id.as_deref(),
        Some("d2b5c8f4-0000-0000-0000-000000000000")
    );
    assert_eq!(auth.class(), Some(ServiceClass::Firewall));
    assert_eq!(
        auth.evidence.witness.as_ref().unwrap().addr.to_string(),
        "20.50.2.3"
    );
    assert!(
        hint(ServiceClass::Firewall, &t, Some(&auth.evidence))
            .contains("privatelink.documents.azure.com")
    );
    // Cosmos's AAD form of the header, URL-encoded.
    assert!(
        seen.authorization
            .unwrap()
            .starts_with("type%3Daad%26ver%3D1.0%26sig%3D")
    );
    assert_eq!(
        request::token_scope(&t),
        "https://db1.documents.azure.com/.default"
    );
}

#[tokio::test]
async fn app_configuration_reached_and_rbac() {
    let (t, anon, auth, seen) = run(Case {
        host: "cfg1.azconfig.io",
        anonymous: stubs::appconfig_401(),
        authorized: stubs::appconfig_403(),
    })
    .await;
    assert_eq!(anon.verdict, Verdict::ReachedService);
    assert_eq!(auth.class(), Some(ServiceClass::Rbac));
    assert!(
        hint(ServiceClass::Rbac, &t, Some(&auth.evidence))
            .contains("App Configuration Data Reader")
    );
    assert_eq!(
        seen.path.as_deref(),
        Some("/keys?api-version=1.0"),
        "names only, never /kv values"
    );
}

#[tokio::test]
async fn container_registry_reached_exchange_ok_and_firewall() {
    let (_, anon, auth, _) = run(Case {
        host: "reg1.azurecr.io",
        anonymous: stubs::acr_401("reg1.azurecr.io"),
        authorized: stubs::acr_exchange("PLANTED-REFRESH-TOKEN"),
    })
    .await;
    assert_eq!(anon.verdict, Verdict::ReachedService);
    assert!(
        anon.evidence
            .challenge
            .as_deref()
            .unwrap()
            .contains("realm=\"https://reg1.azurecr.io/oauth2/token\"")
    );
    assert_eq!(auth.verdict, Verdict::AuthorizedReadOk);
    let (_, anon, _, _) = run(Case {
        host: "reg1.westeurope.data.azurecr.io",
        anonymous: stubs::acr_firewall("40.74.1.1"),
        authorized: stubs::acr_firewall("40.74.1.1"),
    })
    .await;
    assert_eq!(anon.class(), Some(ServiceClass::Firewall));
    assert_eq!(anon.evidence.witness.unwrap().addr.to_string(), "40.74.1.1");
}

#[tokio::test]
async fn storage_firewall_rbac_and_the_documented_anonymous_answer() {
    let (t, anon, auth, _) = run(Case {
        host: "acct1.blob.core.windows.net",
        anonymous: stubs::storage_401(),
        authorized: stubs::storage_rbac(),
    })
    .await;
    assert_eq!(anon.verdict, Verdict::ReachedService);
    assert_eq!(
        anon.evidence.error_code.as_deref(),
        Some("NoAuthenticationInformation")
    );
    assert_eq!(auth.class(), Some(ServiceClass::Rbac));
    assert!(
        hint(ServiceClass::Rbac, &t, Some(&auth.evidence)).contains("Storage Blob Data Reader")
    );

    let (t, anon, auth, _) = run(Case {
        host: "acct1.queue.core.windows.net",
        anonymous: stubs::storage_firewall(),
        authorized: stubs::storage_firewall(),
    })
    .await;
    for j in [&anon, &auth] {
        assert_eq!(j.class(), Some(ServiceClass::Firewall), "{j:?}");
        assert_eq!(
            j.evidence.error_code.as_deref(),
            Some("AuthorizationFailure")
        );
    }
    let h = hint(ServiceClass::Firewall, &t, Some(&anon.evidence));
    assert!(
        h.contains("privatelink.queue.core.windows.net") && h.contains("private endpoint"),
        "{h}"
    );
}

#[tokio::test]
async fn a_proxy_page_in_front_of_storage_is_not_the_service() {
    let (t, anon, auth, _) = run(Case {
        host: "acct1.blob.core.windows.net",
        anonymous: stubs::proxy_403(),
        authorized: stubs::proxy_403(),
    })
    .await;
    for j in [&anon, &auth] {
        assert_eq!(j.class(), Some(ServiceClass::NotService), "{j:?}");
        assert!(j.evidence.request_id.is_none());
        assert_eq!(j.evidence.server.as_deref(), Some("nginx"));
    }
    let h = hint(ServiceClass::NotService, &t, Some(&anon.evidence));
    assert!(h.contains("proxy") && h.contains("x-ms-request-id"), "{h}");
}

#[tokio::test]
async fn deadline_is_honoured_on_a_silent_https_peer() {
    // A TCP listener that accepts and never answers: the exchange ends at the deadline
    // with its own class, and does not hang.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut keep = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            keep.push(s);
        }
    });
    let t = ServiceTarget::recognise("acct1.blob.core.windows.net").unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = request::anonymous(&t);
    let outer = std::time::Duration::from_secs(10);
    let r = tokio::time::timeout(
        outer,
        routeproof::probe::service::exchange(tcp, &t.host, &req, crate::deadline(1)),
    )
    .await;
    let err = r
        .expect("returned before the outer guard")
        .expect_err("no answer");
    assert_eq!(err.class(), ServiceClass::Deadline, "{err}");
    hold.abort();
}
