//! Key Vault, Cosmos DB, App Configuration, Container Registry and the storage answers
//! Azurite does not emulate, against the loopback contract stubs in stubs.rs, through the
//! real `exchange` (hyper over rustls) and `judge`; the witness against this instance's
//! addresses.

use std::time::SystemTime;

use routeproof::probe::service::witness::{PathConclusion, WitnessMatch, conclude};
use routeproof::probe::service::{
    Judgement, Purpose, ServiceClass, ServiceTarget, Verdict, hint, judge, request,
};
use routeproof::secret::Secret;

use crate::certs::Ca;
use crate::stubs::{self, Canned};
use crate::{PLANTED_TOKEN, assert_clean, over_tls};

/// One row: the stub for `host` and its two answers, the verdicts the anonymous
/// exchange and the authorised read must get, the words the hint of the failing one
/// (the read's, else the anonymous answer's) must carry, and the row's own checks.
struct Case {
    name: &'static str,
    host: &'static str,
    anonymous: fn() -> Canned,
    authorized: fn() -> Canned,
    anon: Verdict,
    auth: Verdict,
    hint: &'static [&'static str],
    more: fn(&Outcome),
}

/// What a row ran into.
struct Outcome {
    t: ServiceTarget,
    anon: Judgement,
    auth: Judgement,
    seen: stubs::Seen,
}

/// Runs the anonymous exchange and the authorised read against a stub for `c.host`.
async fn exchange_both(c: &Case) -> Outcome {
    crate::certs::install_crypto_provider();
    let ca = Ca::new("routeproof stub CA");
    let stub = stubs::serve(&ca, &[c.host], (c.anonymous)(), (c.authorized)()).await;
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
    Outcome {
        t,
        anon,
        auth,
        seen,
    }
}

async fn run_case(c: &Case) {
    let o = exchange_both(c).await;
    assert_eq!(o.anon.verdict, c.anon, "{}: anonymous {:?}", c.name, o.anon);
    assert_eq!(
        o.auth.verdict, c.auth,
        "{}: authorised {:?}",
        c.name, o.auth
    );
    let failing = [&o.auth, &o.anon].into_iter().find(|j| j.class().is_some());
    match failing {
        Some(j) => {
            let h = hint(j.class().unwrap(), &o.t, Some(&j.evidence));
            for w in c.hint {
                assert!(h.contains(w), "{}: the hint lacks {w:?}: {h}", c.name);
            }
        }
        None => assert!(c.hint.is_empty(), "{}: nothing failed to hint", c.name),
    }
    (c.more)(&o);
}

/// The path conclusion for a witness in `j`, from this instance (WEBSITE_PRIVATE_IP
/// 10.60.1.5, a link-local local address as App Service's sandbox has), private required.
fn path_of(j: &Judgement) -> routeproof::probe::service::PathEvidence {
    conclude(
        j.evidence.witness.as_ref(),
        Some("169.254.254.2".parse().unwrap()),
        Some("10.60.1.5"),
        true,
    )
}

fn witness(j: &Judgement) -> String {
    j.evidence
        .witness
        .as_ref()
        .expect("a witness")
        .addr
        .to_string()
}

const CASES: &[Case] = &[
    Case {
        name: "key_vault_private_witness_and_authorised_read",
        host: "kv1.vault.azure.net",
        anonymous: || stubs::keyvault_401("10.60.1.5"),
        authorized: stubs::keyvault_list,
        anon: Verdict::ReachedService,
        auth: Verdict::AuthorizedReadOk,
        hint: &[],
        more: |o| {
            let challenge = o.anon.evidence.challenge.as_deref().unwrap();
            assert!(
                challenge.contains("resource=\"https://vault.azure.net\""),
                "{challenge}"
            );
            assert_eq!(witness(&o.anon), "10.60.1.5");
            let path = path_of(&o.anon);
            assert_eq!(path.conclusion, PathConclusion::PrivatePathProven);
            assert_eq!(path.matched, Some(WitnessMatch::WebsitePrivateIp));
            assert!(!path.failed);
            assert!(
                o.auth.evidence.message.is_none(),
                "no secret names in evidence"
            );
            // The token went to the vault intact, and only there.
            assert_eq!(
                o.seen.authorization.as_deref(),
                Some(&*format!("Bearer {PLANTED_TOKEN}"))
            );
            assert_eq!(o.seen.host.as_deref(), Some("kv1.vault.azure.net"));
            assert_eq!(
                request::token_scope(&o.t),
                "https://vault.azure.net/.default"
            );
        },
    },
    Case {
        name: "key_vault_firewall_with_a_public_witness_is_public_path",
        host: "kv1.vault.azure.net",
        anonymous: || stubs::keyvault_401("52.178.1.2"),
        authorized: || stubs::keyvault_firewall("52.178.1.2"),
        anon: Verdict::ReachedService,
        auth: Verdict::Firewall,
        hint: &["privatelink.vaultcore.azure.net", "52.178.1.2"],
        more: |o| {
            assert_eq!(
                o.auth.evidence.error_code.as_deref(),
                Some("ForbiddenByFirewall")
            );
            assert_eq!(witness(&o.auth), "52.178.1.2");
            let path = path_of(&o.auth);
            assert_eq!(
                (path.conclusion, path.failed),
                (PathConclusion::PublicPath, true)
            );
            let h = hint(ServiceClass::PublicPath, &o.t, Some(&o.auth.evidence));
            assert!(
                h.contains("vnetRouteAllEnabled") && h.contains("168.63.129.16"),
                "{h}"
            );
            assert_eq!(ServiceClass::PublicPath.as_str(), "service.public_path");
        },
    },
    Case {
        name: "key_vault_missing_role_is_rbac",
        host: "kv1.vault.azure.net",
        anonymous: || stubs::keyvault_401("10.60.1.5"),
        authorized: stubs::keyvault_rbac,
        anon: Verdict::ReachedService,
        auth: Verdict::Rbac,
        hint: &["Key Vault Secrets User", "ForbiddenByRbac"],
        more: |_| {},
    },
    Case {
        name: "cosmos_reached_and_firewall_witness",
        host: "db1.documents.azure.com",
        anonymous: stubs::cosmos_401,
        authorized: || stubs::cosmos_firewall("20.50.2.3"),
        anon: Verdict::ReachedService,
        auth: Verdict::Firewall,
        hint: &["privatelink.documents.azure.com", "20.50.2.3"],
        more: |o| {
            assert_eq!(
                o.anon.evidence.request_id.as_deref(),
                Some("d2b5c8f4-0000-0000-0000-000000000000")
            );
            assert_eq!(witness(&o.auth), "20.50.2.3");
            // Cosmos's AAD form of the header, URL-encoded.
            let auth = o.seen.authorization.as_deref().unwrap();
            assert!(
                auth.starts_with("type%3Daad%26ver%3D1.0%26sig%3D"),
                "{auth}"
            );
            assert_eq!(
                request::token_scope(&o.t),
                "https://db1.documents.azure.com/.default"
            );
        },
    },
    Case {
        name: "app_configuration_reached_and_rbac",
        host: "cfg1.azconfig.io",
        anonymous: stubs::appconfig_401,
        authorized: stubs::appconfig_403,
        anon: Verdict::ReachedService,
        auth: Verdict::Rbac,
        hint: &["App Configuration Data Reader"],
        more: |o| {
            assert_eq!(
                o.seen.path.as_deref(),
                Some("/keys?api-version=1.0"),
                "names only, never /kv values"
            );
        },
    },
    Case {
        name: "container_registry_reached_and_token_exchange_ok",
        host: "reg1.azurecr.io",
        anonymous: || stubs::acr_401("reg1.azurecr.io"),
        authorized: || stubs::acr_exchange("PLANTED-REFRESH-TOKEN"),
        anon: Verdict::ReachedService,
        auth: Verdict::AuthorizedReadOk,
        hint: &[],
        more: |o| {
            let challenge = o.anon.evidence.challenge.as_deref().unwrap();
            assert!(
                challenge.contains("realm=\"https://reg1.azurecr.io/oauth2/token\""),
                "{challenge}"
            );
        },
    },
    Case {
        name: "container_registry_data_endpoint_firewall_witness",
        host: "reg1.westeurope.data.azurecr.io",
        anonymous: || stubs::acr_firewall("40.74.1.1"),
        authorized: || stubs::acr_firewall("40.74.1.1"),
        anon: Verdict::Firewall,
        auth: Verdict::Firewall,
        hint: &["40.74.1.1", "privatelink.azurecr.io"],
        more: |o| assert_eq!(witness(&o.anon), "40.74.1.1"),
    },
    Case {
        name: "storage_documented_anonymous_answer_then_rbac",
        host: "acct1.blob.core.windows.net",
        anonymous: stubs::storage_401,
        authorized: stubs::storage_rbac,
        anon: Verdict::ReachedService,
        auth: Verdict::Rbac,
        hint: &[
            "Storage Blob Data Reader",
            "AuthorizationPermissionMismatch",
        ],
        more: |o| {
            assert_eq!(
                o.anon.evidence.error_code.as_deref(),
                Some("NoAuthenticationInformation")
            );
        },
    },
    Case {
        name: "storage_firewall",
        host: "acct1.queue.core.windows.net",
        anonymous: stubs::storage_firewall,
        authorized: stubs::storage_firewall,
        anon: Verdict::Firewall,
        auth: Verdict::Firewall,
        hint: &["privatelink.queue.core.windows.net", "private endpoint"],
        more: |o| {
            for j in [&o.anon, &o.auth] {
                assert_eq!(
                    j.evidence.error_code.as_deref(),
                    Some("AuthorizationFailure")
                );
            }
        },
    },
    Case {
        name: "a_proxy_page_in_front_of_storage_is_not_the_service",
        host: "acct1.blob.core.windows.net",
        anonymous: stubs::proxy_403,
        authorized: stubs::proxy_403,
        anon: Verdict::NotTheService,
        auth: Verdict::NotTheService,
        hint: &["proxy", "x-ms-request-id"],
        more: |o| {
            for j in [&o.anon, &o.auth] {
                assert!(j.evidence.request_id.is_none());
                assert_eq!(j.evidence.server.as_deref(), Some("nginx"));
            }
        },
    },
];

crate::cases!(
    key_vault_private_witness_and_authorised_read,
    key_vault_firewall_with_a_public_witness_is_public_path,
    key_vault_missing_role_is_rbac,
    cosmos_reached_and_firewall_witness,
    app_configuration_reached_and_rbac,
    container_registry_reached_and_token_exchange_ok,
    container_registry_data_endpoint_firewall_witness,
    storage_documented_anonymous_answer_then_rbac,
    storage_firewall,
    a_proxy_page_in_front_of_storage_is_not_the_service,
);

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
