//! Unit tests of `verdict::judge` on the documented answers (sources in verdict.rs).

use hyper::HeaderMap;

use super::*;
use crate::probe::service::{ServiceClass, Verdict};

fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(*k, v.parse().unwrap());
    }
    m
}

fn blob() -> ServiceTarget {
    ServiceTarget::recognise("acct.blob.core.windows.net").unwrap()
}

const STORAGE_401: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>NoAuthenticationInformation</Code><Message>Server failed to authenticate the request. Please refer to the information in the www-authenticate header.\nRequestId:1\nTime:2026-01-01T00:00:00Z</Message></Error>";
const STORAGE_FW: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationFailure</Code><Message>This request is not authorized to perform this operation.\nRequestId:1\nTime:2026-01-01T00:00:00Z</Message></Error>";

#[test]
fn storage_anonymous_answers() {
    let rid = ("x-ms-request-id", "5d1c-01");
    let j = judge(
        &blob(),
        Purpose::Anonymous,
        401,
        &h(&[
            rid,
            ("x-ms-error-code", "NoAuthenticationInformation"),
            (
                "www-authenticate",
                "Bearer authorization_uri=https://login.microsoftonline.com/t/oauth2/authorize resource_id=https://storage.azure.com",
            ),
        ]),
        STORAGE_401.as_bytes(),
    );
    assert_eq!(j.verdict, Verdict::ReachedService);
    assert_eq!(
        j.evidence.error_code.as_deref(),
        Some("NoAuthenticationInformation")
    );
    assert!(
        j.evidence
            .challenge
            .as_deref()
            .unwrap()
            .contains("resource_id=https://storage.azure.com")
    );
    assert_eq!(j.evidence.request_id.as_deref(), Some("5d1c-01"));

    let j = judge(
        &blob(),
        Purpose::Anonymous,
        403,
        &h(&[rid, ("x-ms-error-code", "AuthorizationFailure")]),
        STORAGE_FW.as_bytes(),
    );
    assert_eq!(
        (j.verdict, j.class()),
        (Verdict::Firewall, Some(ServiceClass::Firewall))
    );

    // The same answer from a declared emulator is Azurite's quirk.
    let emu = ServiceTarget::declared(ServiceKind::StorageBlob, "127.0.0.1", None, true);
    let j = judge(
        &emu,
        Purpose::Anonymous,
        403,
        &h(&[rid, ("x-ms-error-code", "AuthorizationFailure")]),
        b"",
    );
    assert_eq!(j.verdict, Verdict::EmulatorQuirk);
    assert!(j.verdict.ok() && j.evidence.emulator_note.is_some());

    // No request id: a proxy's page, whatever it says.
    let j = judge(
        &blob(),
        Purpose::Anonymous,
        403,
        &h(&[("server", "nginx")]),
        b"<html>403 Forbidden</html>",
    );
    assert_eq!(j.verdict, Verdict::NotTheService);
    let j = judge(&blob(), Purpose::Anonymous, 200, &HeaderMap::new(), b"ok");
    assert_eq!(j.verdict, Verdict::NotTheService);
    let j = judge(&blob(), Purpose::Anonymous, 503, &h(&[rid]), b"");
    assert_eq!(j.verdict, Verdict::ServiceError);
}

#[test]
fn storage_authorized_answers() {
    let rid = ("x-ms-request-id", "r");
    let j = judge(&blob(), Purpose::Authorized, 200, &h(&[rid]), b"<EnumerationResults><Containers><Container><Name>secret-name</Name></Container></Containers></EnumerationResults>");
    assert_eq!(j.verdict, Verdict::AuthorizedReadOk);
    assert!(j.evidence.message.is_none(), "no listing in evidence");
    let j = judge(
        &blob(),
        Purpose::Authorized,
        403,
        &h(&[rid, ("x-ms-error-code", "AuthorizationPermissionMismatch")]),
        b"",
    );
    assert_eq!(j.verdict, Verdict::Rbac);
    let j = judge(
        &blob(),
        Purpose::Authorized,
        403,
        &h(&[rid, ("x-ms-error-code", "AuthenticationFailed")]),
        b"",
    );
    assert_eq!(j.verdict, Verdict::CredentialRejected);
    let j = judge(
        &blob(),
        Purpose::Authorized,
        403,
        &h(&[rid, ("x-ms-error-code", "AuthorizationFailure")]),
        b"",
    );
    assert_eq!(j.verdict, Verdict::Firewall);
}

#[test]
fn keyvault_cosmos_appconfig_acr() {
    let kv = ServiceTarget::recognise("kv.vault.azure.net").unwrap();
    let net = (
        "x-ms-keyvault-network-info",
        "conn_type=Ipv4;addr=10.60.1.5;act_addr_fam=InterNetwork;",
    );
    let j = judge(&kv, Purpose::Anonymous, 401, &h(&[("x-ms-request-id", "k"), net, ("www-authenticate", "Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"https://vault.azure.net\"")]),
        br#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#);
    assert_eq!(j.verdict, Verdict::ReachedService);
    assert_eq!(
        j.evidence.witness.as_ref().unwrap().addr.to_string(),
        "10.60.1.5"
    );
    let body = br#"{"error":{"code":"Forbidden","message":"Client address is not authorized and caller is not a trusted service.\r\nClient address: 52.1.2.3\r\nCaller: appid=1;oid=2\r\nVault: kv;location=westeurope","innererror":{"code":"ForbiddenByFirewall"}}}"#;
    let j = judge(
        &kv,
        Purpose::Authorized,
        403,
        &h(&[("x-ms-request-id", "k")]),
        body,
    );
    assert_eq!(
        (j.verdict, j.evidence.error_code.as_deref()),
        (Verdict::Firewall, Some("ForbiddenByFirewall"))
    );
    assert_eq!(
        j.evidence.witness.as_ref().unwrap().addr.to_string(),
        "52.1.2.3"
    );
    let rbac = br#"{"error":{"code":"Forbidden","message":"Caller is not authorized to perform action on resource.","innererror":{"code":"ForbiddenByRbac"}}}"#;
    assert_eq!(
        judge(
            &kv,
            Purpose::Authorized,
            403,
            &h(&[("x-ms-request-id", "k")]),
            rbac
        )
        .verdict,
        Verdict::Rbac
    );

    let cosmos = ServiceTarget::recognise("db.documents.azure.com").unwrap();
    let fw = br#"{"code":"Forbidden","message":"Request originated from IP 52.9.9.9 through public internet. This is blocked by your Cosmos DB account firewall settings. More info: https://aka.ms/cosmosdb-tsg-forbidden\r\nActivityId: a"}"#;
    let j = judge(
        &cosmos,
        Purpose::Anonymous,
        403,
        &h(&[("x-ms-activity-id", "a")]),
        fw,
    );
    assert_eq!(j.verdict, Verdict::Firewall);
    assert_eq!(j.evidence.witness.unwrap().addr.to_string(), "52.9.9.9");
    let no_role = br#"{"code":"Forbidden","message":"Request blocked by Auth db : The given request [GET /dbs] cannot be authorized by AAD token in data plane."}"#;
    assert_eq!(
        judge(
            &cosmos,
            Purpose::Authorized,
            403,
            &h(&[("x-ms-activity-id", "a")]),
            no_role
        )
        .verdict,
        Verdict::Rbac
    );

    let acr = ServiceTarget::recognise("reg.azurecr.io").unwrap();
    let j = judge(
        &acr,
        Purpose::Anonymous,
        401,
        &h(&[
            ("docker-distribution-api-version", "registry/2.0"),
            (
                "www-authenticate",
                "Bearer realm=\"https://reg.azurecr.io/oauth2/token\",service=\"reg.azurecr.io\"",
            ),
        ]),
        br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
    );
    assert_eq!(j.verdict, Verdict::ReachedService);
    let j = judge(
        &acr,
        Purpose::Authorized,
        200,
        &h(&[("docker-distribution-api-version", "registry/2.0")]),
        br#"{"refresh_token":"PLANTED-REFRESH"}"#,
    );
    assert_eq!(j.verdict, Verdict::AuthorizedReadOk);
    assert!(!format!("{j:?}").contains("PLANTED"));

    let cfg = ServiceTarget::recognise("cfg.azconfig.io").unwrap();
    assert_eq!(
        judge(
            &cfg,
            Purpose::Anonymous,
            401,
            &h(&[("x-ms-request-id", "c")]),
            b""
        )
        .verdict,
        Verdict::ReachedService
    );
    assert_eq!(
        judge(
            &cfg,
            Purpose::Authorized,
            403,
            &h(&[("x-ms-request-id", "c")]),
            b""
        )
        .verdict,
        Verdict::Rbac
    );
    assert_eq!(
        judge(&cfg, Purpose::Anonymous, 401, &HeaderMap::new(), b"").verdict,
        Verdict::NotTheService
    );
}

#[test]
fn messages_are_scrubbed() {
    let body = "<Error><Code>AuthenticationFailed</Code><Message>bad sig=PLANTED-SAS&amp;x</Message></Error>";
    let j = judge(
        &blob(),
        Purpose::Authorized,
        403,
        &h(&[("x-ms-request-id", "r")]),
        body.as_bytes(),
    );
    assert!(!serde_json::to_string(&j).unwrap().contains("PLANTED"));
}

#[test]
fn app_health_is_routeproof_or_not_the_service() {
    let app = ServiceTarget::recognise("func1.azurewebsites.net").unwrap();
    let body = r#"{"status":"ok","service":"routeproof","version":"0.1.0","client":{"address":"10.0.1.4","from":"x-forwarded-for"}}"#;
    let j = judge(&app, Purpose::Anonymous, 200, &h(&[]), body.as_bytes());
    assert_eq!(j.verdict, Verdict::ReachedService);
    let w = j.evidence.witness.as_ref().unwrap();
    assert_eq!(
        (w.addr.to_string(), w.source),
        ("10.0.1.4".to_string(), witness::WitnessSource::AppHealth)
    );
    assert_eq!(j.evidence.service_marker, Some(ROUTEPROOF_MARKER));
    // routeproof that could not tell: reached, no witness.
    let none = r#"{"status":"ok","service":"routeproof","version":"0.1.0","client":null}"#;
    let j = judge(&app, Purpose::Anonymous, 200, &h(&[]), none.as_bytes());
    assert_eq!(
        (j.verdict, j.evidence.witness.is_none()),
        (Verdict::ReachedService, true)
    );
    // Someone else's 200, App Service's 403 page, a body naming an address: not routeproof,
    // and an address in a body that is not routeproof's is never a witness.
    let other = r#"{"service":"other","client":{"address":"10.0.1.4"}}"#;
    for (status, body) in [
        (200, other),
        (403, "<h1>Error 403 - Forbidden</h1>"),
        (404, ""),
        (500, body),
    ] {
        let j = judge(&app, Purpose::Anonymous, status, &h(&[]), body.as_bytes());
        assert_eq!(j.verdict, Verdict::NotTheService, "{status} {body}");
        assert!(j.evidence.witness.is_none(), "{status}");
        assert_eq!(j.class(), Some(ServiceClass::NotService));
    }
}
