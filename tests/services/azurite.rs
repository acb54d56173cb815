//! Azurite (a real Azure Storage server): blob/queue/table answers through `exchange` +
//! `judge`, Shared Key with the emulator's well-known key, and OAuth over HTTPS
//! (`--oauth basic`, which checks a token's audience, issuer and lifetime but not its
//! signature: Azurite's README, "OAuth authentication").

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use routeproof::probe::service::{
    ServiceClass, ServiceKind, ServiceTarget, Verdict, hint, judge, request, sharedkey,
};
use routeproof::secret::Secret;

use crate::{PLANTED_TOKEN, assert_clean, over_tcp, over_tls, peers};

/// Azurite's documented development account key (Azurite README, "Default storage account").
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn emulator(kind: ServiceKind) -> ServiceTarget {
    ServiceTarget::declared(kind, "127.0.0.1", None, true)
}

#[tokio::test]
async fn anonymous_answers_are_the_emulator_quirk_and_shared_key_reads() {
    let az = match peers::azurite(None) {
        Ok(a) => a,
        Err(e) => return peers::skip("azurite anonymous/shared key", &e),
    };
    for (kind, port) in [
        (ServiceKind::StorageBlob, az.blob),
        (ServiceKind::StorageQueue, az.queue),
        (ServiceKind::StorageTable, az.table),
    ] {
        let t = emulator(kind);
        let host = format!("127.0.0.1:{port}");
        let req = request::anonymous(&t);
        let a = over_tcp(loopback(port), &host, &req).await;
        let j = judge(&t, req.purpose, a.status, &a.headers, &a.body);
        eprintln!("timing: azurite {kind} anonymous {:?}", a.elapsed);
        // Azurite: 403 (AuthorizationFailure, queue: AuthenticationFailed), with its request id.
        assert_eq!(a.status, 403, "{kind}: {j:?}");
        assert!(
            j.evidence.request_id.is_some(),
            "{kind}: the service's request id"
        );
        assert_eq!(j.verdict, Verdict::EmulatorQuirk, "{kind}: {j:?}");
        assert!(j.verdict.ok());
        let note = j.evidence.emulator_note.as_deref().unwrap();
        assert!(note.contains("NoAuthenticationInformation"), "{note}");

        // The same answer from a host NOT declared an emulator is what Azure means by it:
        // the account's network rules refused this source.
        if kind == ServiceKind::StorageBlob {
            let azure = ServiceTarget::declared(kind, "127.0.0.1", Some("devstoreaccount1"), false);
            let j2 = judge(&azure, req.purpose, a.status, &a.headers, &a.body);
            assert_eq!(j2.class(), Some(ServiceClass::Firewall));
        }

        // Shared Key with the well-known key: the authorised read succeeds.
        let key = Secret::new(DEV_KEY);
        let req = sharedkey::shared_key(&t, &key, SystemTime::now()).unwrap();
        let a = over_tcp(loopback(port), &host, &req).await;
        let j = judge(&t, req.purpose, a.status, &a.headers, &a.body);
        eprintln!("timing: azurite {kind} shared key {:?}", a.elapsed);
        assert_eq!(
            j.verdict,
            Verdict::AuthorizedReadOk,
            "{kind}: {} {:?}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        let shown = format!("{j:?} {} {req:?}", serde_json::to_string(&j).unwrap());
        assert_clean("shared key read", &shown, &[DEV_KEY, &DEV_KEY[..20]]);

        // A wrong key: the credential is refused (Azurite: 403 AuthorizationFailure).
        let wrong = Secret::new(STANDARD.encode(b"PLANTED-WRONG-KEY-PLANTED-WRONG-KEY!"));
        let req = sharedkey::shared_key(&t, &wrong, SystemTime::now()).unwrap();
        let a = over_tcp(loopback(port), &host, &req).await;
        let j = judge(&t, req.purpose, a.status, &a.headers, &a.body);
        assert_eq!(j.class(), Some(ServiceClass::AuthFailed), "{kind}: {j:?}");
        let h = hint(ServiceClass::AuthFailed, &t, Some(&j.evidence));
        assert!(h.contains("https://storage.azure.com"), "{h}");
        let shown = format!("{j:?} {h} {req:?}");
        assert_clean("wrong key", &shown, &[wrong.expose()]);
    }
}

fn jwt(aud: &str, exp_offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "aud": aud,
        "iss": "https://sts.windows.net/ab1f708d-50f6-404c-a006-d71b2ac7a606/",
        "iat": now - 60, "nbf": now - 60, "exp": now + exp_offset,
        "oid": "00000000-0000-0000-0000-000000000009",
        "tid": "ab1f708d-50f6-404c-a006-d71b2ac7a606",
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{claims}.UExBTlRFRC1TSUc")
}

#[tokio::test]
async fn oauth_over_https_reads_with_a_token_of_the_storage_audience() {
    let (az, ca) = match peers::azurite_oauth() {
        Ok(a) => (a.az, a.ca),
        Err(e) => return peers::skip("azurite oauth", &e),
    };
    let t = emulator(ServiceKind::StorageBlob);
    assert_eq!(
        request::token_scope(&t),
        "https://storage.azure.com/.default"
    );
    let client = ca.client_config(&[b"http/1.1"]);
    let host = "127.0.0.1";

    let good = Secret::new(jwt("https://storage.azure.com", 3600));
    let req = request::authorized(&t, &good, SystemTime::now());
    let a = over_tls(loopback(az.blob), host, client.clone(), &req).await;
    let j = judge(&t, req.purpose, a.status, &a.headers, &a.body);
    eprintln!("timing: azurite blob oauth (TLS) {:?}", a.elapsed);
    assert_eq!(
        j.verdict,
        Verdict::AuthorizedReadOk,
        "{} {}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
    let shown = format!("{j:?} {req:?} {}", serde_json::to_string(&j).unwrap());
    assert_clean("oauth read", &shown, &[good.expose()]);

    // The wrong audience: refused by the service's authenticator, not a network rule.
    let wrong = Secret::new(jwt("https://vault.azure.net", 3600));
    let req = request::authorized(&t, &wrong, SystemTime::now());
    let a = over_tls(loopback(az.blob), host, client.clone(), &req).await;
    let j = judge(&t, req.purpose, a.status, &a.headers, &a.body);
    assert_eq!(j.class(), Some(ServiceClass::AuthFailed), "{j:?}");
    assert_eq!(
        j.evidence.error_code.as_deref(),
        Some("AuthenticationFailed")
    );

    // A planted token shape: never in evidence, Debug or the hint.
    let planted = Secret::new(PLANTED_TOKEN);
    let req = request::authorized(&t, &planted, SystemTime::now());
    let a = over_tls(loopback(az.blob), host, client, &req).await;
    let j = judge(&t, req.purpose, a.status, &a.headers, &a.body);
    assert!(!j.verdict.ok());
    let shown = format!(
        "{j:?} {req:?} {} {}",
        serde_json::to_string(&j).unwrap(),
        hint(j.class().unwrap(), &t, Some(&j.evidence))
    );
    assert_clean("planted token", &shown, &["PLANTED-BEARER-TOKEN"]);
}
