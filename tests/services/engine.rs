//! The service and SMB layers through the Engine (config text -> Engine -> report), as
//! every door runs them: the loopback contract stubs of `stubs.rs` for Key Vault and
//! Storage (the stubs name their documentation), real smbd for SMB.

use routeproof::report::{FailureClass, Layer, TargetReport};

use crate::certs::Ca;
use crate::engine_support::class;
use crate::{Site, ca_file, failed, peers, service_layer as service_json, stubs};

const VAULT: &str = "kv1.vault.azure.net";
const BLOB: &str = "acct1.blob.core.windows.net";

/// Every service name of these tests resolves to the loopback stub.
const NAMES: [&str; 3] = [VAULT, BLOB, "files.contoso.example"];

async fn one(text: &str) -> TargetReport {
    let site = Site {
        names: &NAMES,
        private_ip: "10.0.1.5",
        env: Vec::new(),
        deadline: None,
    };
    site.one(text).await.0
}

/// An https target at the stub, verified for `sni` against the test CA.
fn https_target(
    stub: &stubs::Stub,
    sni: &str,
    ca: &tempfile::NamedTempFile,
    extra: &str,
) -> String {
    format!(
        "[[targets]]\nname = \"t\"\ntarget = \"https://{sni}:{}/\"\nca_file = \"{}\"\n{extra}\n",
        stub.addr.port(),
        ca.path().display()
    )
}

#[tokio::test]
async fn keyvault_private_witness_is_ok_and_private() {
    let ca = Ca::new("routeproof test CA");
    let stub = stubs::serve(
        &ca,
        &[VAULT],
        stubs::keyvault_401("10.0.1.5"),
        stubs::keyvault_401("10.0.1.5"),
    )
    .await;
    let f = ca_file(&ca);
    let t = one(&https_target(&stub, VAULT, &f, "private = true")).await;
    assert_eq!(class(&t), None, "{t:#?}");
    let v = service_json(&t);
    assert_eq!(v["service"], "keyvault", "{v}");
    assert_eq!(v["verdict"], "reached_service", "{v}");
    assert_eq!(v["witness"]["conclusion"], "private_path_proven", "{v}");
    assert_eq!(v["witness"]["witness"]["addr"], "10.0.1.5", "{v}");
    assert_eq!(v["witness"]["matched"], "website_private_ip", "{v}");
    assert!(t.skipped.iter().all(|s| s.layer != Layer::Http), "{t:#?}");
}

#[tokio::test]
async fn keyvault_public_witness_with_private_fails_public_path() {
    let ca = Ca::new("routeproof test CA");
    let fw = stubs::keyvault_firewall("198.51.100.20");
    let stub = stubs::serve(&ca, &[VAULT], fw.clone(), fw).await;
    let f = ca_file(&ca);
    let t = one(&https_target(&stub, VAULT, &f, "private = true")).await;
    failed(
        &t,
        FailureClass::ServicePublicPath,
        &[
            "198.51.100.20",
            "privatelink.vaultcore.azure.net",
            "168.63.129.16",
            "vnetRouteAllEnabled",
        ],
    );
    let v = service_json(&t);
    assert_eq!(v["witness"]["conclusion"], "public_path", "{v}");
    assert_eq!(v["verdict"], "firewall", "{v}");
}

#[tokio::test]
async fn storage_firewall_is_service_firewall() {
    let ca = Ca::new("routeproof test CA");
    let stub = stubs::serve(
        &ca,
        &[BLOB],
        stubs::storage_firewall(),
        stubs::storage_firewall(),
    )
    .await;
    let f = ca_file(&ca);
    let t = one(&https_target(&stub, BLOB, &f, "")).await;
    failed(
        &t,
        FailureClass::ServiceFirewall,
        &[
            "AuthorizationFailure",
            "privatelink.blob.core.windows.net",
            "Approved",
        ],
    );
    let v = service_json(&t);
    assert_eq!(v["answer"]["request_id"], "s-fw", "{v}");
    assert_eq!(v["witness"]["conclusion"], "unknown", "{v}");
}

#[tokio::test]
async fn declared_service_behind_a_proxy_page_is_not_the_service() {
    let ca = Ca::new("routeproof test CA");
    let stub = stubs::serve(
        &ca,
        &["files.contoso.example"],
        stubs::proxy_403(),
        stubs::proxy_403(),
    )
    .await;
    let f = ca_file(&ca);
    let t = one(&https_target(
        &stub,
        "files.contoso.example",
        &f,
        "service = \"blob\"",
    ))
    .await;
    failed(
        &t,
        FailureClass::ServiceNotService,
        &["proxy", "x-ms-request-id"],
    );
}

#[tokio::test]
async fn smbd_through_the_engine_reports_the_dialect() {
    let samba = match peers::samba() {
        Ok(s) => s,
        Err(e) => return peers::skip("engine smb", &e),
    };
    let t = one(&format!(
        "[[targets]]\nname = \"share\"\ntarget = \"smb://127.0.0.1:{}\"\n",
        samba.port
    ))
    .await;
    assert_eq!(class(&t), None, "{t:#?}");
    let l = t
        .layers
        .iter()
        .find(|l| l.layer == Layer::Smb)
        .expect("smb layer");
    let v = serde_json::to_value(l).unwrap();
    assert_eq!(v["smb"]["dialect"], "3.1.1", "{v}");
}

#[tokio::test]
async fn refused_445_is_smb_refused() {
    let port = peers::free_port();
    let t = one(&format!(
        "[[targets]]\nname = \"share\"\ntarget = \"smb://127.0.0.1:{port}\"\n"
    ))
    .await;
    failed(
        &t,
        FailureClass::SmbRefused,
        &["privatelink.file.core.windows.net", "NSG", "445"],
    );
}
