//! OAuth: Azurite over HTTPS with `--oauth basic`, the token from an emulated App Service
//! identity endpoint on loopback (the identity-based `AzureWebJobsStorage__*` settings).

use routeproof::store::{LastOutcome, StoreClass, Trigger};

use crate::fixtures::{azurite_or_skip, now_rfc3339, report, store};
use crate::{auth, azurite};

#[tokio::test]
async fn oauth_over_https_with_the_identity_endpoint() {
    let ca = rcgen_ca();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) = (
        dir.path().join("server.pem"),
        dir.path().join("server.key"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, &ca.1).unwrap();
    std::fs::write(&key, &ca.2).unwrap();
    std::fs::write(&ca_file, &ca.0).unwrap();
    let Some(az) = azurite_or_skip(
        "oauth_over_https_with_the_identity_endpoint",
        Some(azurite::Tls { cert, key }),
    ) else {
        return;
    };
    let idp = auth::IdentityEndpoint::start("PLANTED-IDENTITY-HEADER").await;
    let base = |header: &str| {
        vec![
            ("AzureWebJobsStorage__blobServiceUri", az.https_endpoint()),
            (
                "AzureWebJobsStorage__credential",
                "managedidentity".to_string(),
            ),
            (
                "AzureWebJobsStorage__clientId",
                "11111111-2222-3333-4444-555555555555".to_string(),
            ),
            ("IDENTITY_ENDPOINT", idp.url.clone()),
            ("IDENTITY_HEADER", header.to_string()),
            ("ROUTEPROOF_STORAGE_CA_FILE", ca_file.display().to_string()),
            ("ROUTEPROOF_STORAGE_CACHE_SECS", "0".into()),
        ]
    };
    let s = store(base("PLANTED-IDENTITY-HEADER")).unwrap();
    assert_eq!(s.info().auth, "managed_identity_user");
    let w = s
        .record(
            &report(2, &[], &now_rfc3339(-100), 10.0, ""),
            Trigger::Timer,
        )
        .await
        .unwrap();
    assert_eq!(w.last, LastOutcome::Created);
    assert_eq!(s.last().await.unwrap().unwrap().run.targets.len(), 2);
    let seen = idp.seen.lock().unwrap().clone();
    assert!(seen.header_ok);
    assert_eq!(seen.resource.as_deref(), Some("https://storage.azure.com/"));
    assert_eq!(seen.api_version.as_deref(), Some("2019-08-01"));
    assert_eq!(
        seen.client_id.as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(seen.requests, 1, "the token is cached across requests");

    // A wrong identity header: the endpoint refuses, the store says store.auth, no secret.
    let s = store(base("WRONG-PLANTED-HEADER")).unwrap();
    let e = s.last().await.unwrap_err();
    assert_eq!(e.class, StoreClass::Auth, "{e}");
    assert!(
        e.message.contains("managed identity endpoint answered 401"),
        "{e}"
    );
    assert!(!format!("{e} {e:?} {s:?}").contains("PLANTED"), "{e}");
}

/// (CA PEM, server cert PEM, server key PEM) for 127.0.0.1.
fn rcgen_ca() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "routeproof store test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
