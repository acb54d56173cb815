//! Planted credentials (an account key, a SAS) appear in no error, Debug or stored record.

use routeproof::store::{StoreClass, Trigger};

use crate::azurite::{ACCOUNT, KEY};
use crate::fixtures::{azurite_or_skip, now_rfc3339, report, store};
use crate::{all_blobs, auth, key_env};

#[tokio::test]
async fn sas_writes_and_reads_and_never_shows_the_signature() {
    let Some(az) = azurite_or_skip("sas_writes_and_reads_and_never_shows_the_signature", None)
    else {
        return;
    };
    let sas = auth::account_sas(ACCOUNT, KEY, "rwdlac");
    let sig = sas.split("sig=").nth(1).unwrap().to_string();
    let conn = format!(
        "BlobEndpoint={};SharedAccessSignature={sas}",
        az.http_endpoint()
    );
    let s = store(vec![
        ("AzureWebJobsStorage", conn),
        ("ROUTEPROOF_STORAGE_CACHE_SECS", "0".into()),
    ])
    .unwrap();
    assert_eq!(s.info().auth, "sas");
    // A planted copy of the signature in a target's message must not reach the store.
    let r = report(
        3,
        &[1],
        &now_rfc3339(-1000),
        10.0,
        &format!("the app said sig={sig} and {sas}"),
    );
    s.record(&r, Trigger::Cli).await.unwrap();
    assert_eq!(s.last().await.unwrap().unwrap().meta.trigger, Trigger::Cli);
    let dbg = format!("{s:?} {:?}", s.info());
    let decoded: String = url::form_urlencoded::parse(format!("x={sig}").as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect();
    for (name, body) in all_blobs(&az).await {
        assert!(
            !body.contains(&sig) && !body.contains(&decoded),
            "{name} carries the SAS signature"
        );
    }
    assert!(!dbg.contains(&sig) && !dbg.contains(&decoded), "{dbg}");

    // A SAS with a planted bad signature: a typed auth error that does not quote it.
    let bad = sas.replace(&sig, "UExBTlRFRC1TQVMtU0lHTkFUVVJF");
    let conn = format!(
        "BlobEndpoint={};SharedAccessSignature={bad}",
        az.http_endpoint()
    );
    let s = store(vec![("AzureWebJobsStorage", conn)]).unwrap();
    let e = s.record(&r, Trigger::Cli).await.unwrap_err();
    assert_eq!(e.class, StoreClass::Auth, "{e}");
    let text = format!("{e} {e:?} {s:?}");
    assert!(!text.contains("UExBTlRFRC1TQVMtU0lHTkFUVVJF"), "{text}");
}

#[tokio::test]
async fn a_planted_account_key_shows_nowhere() {
    let Some(az) = azurite_or_skip("a_planted_account_key_shows_nowhere", None) else {
        return;
    };
    let planted = "UExBTlRFRC1BQ0NPVU5ULUtFWS1mb3ItdGhlLXRlc3Qtb25seS0wMTIzNDU2Nzg5";
    let conn = format!(
        "AccountName={ACCOUNT};AccountKey={planted};BlobEndpoint={}",
        az.http_endpoint()
    );
    let s = store(vec![("AzureWebJobsStorage", conn)]).unwrap();
    let e = s
        .record(
            &report(
                1,
                &[0],
                &now_rfc3339(-10),
                1.0,
                &format!("AccountKey={planted}"),
            ),
            Trigger::Timer,
        )
        .await
        .unwrap_err();
    assert_eq!(e.class, StoreClass::Auth, "{e}");
    let e2 = s.last().await.unwrap_err();
    assert_eq!(e2.class, StoreClass::Auth, "{e2}");
    let text = format!(
        "{e} {e:?} {e2} {s:?} {}",
        serde_json::to_string(&e).unwrap()
    );
    assert!(
        !text.contains(planted) && !text.contains(&planted[..20]),
        "{text}"
    );

    // With the right key, a report quoting the key verbatim is stored with it masked.
    let good = store(key_env(&az, "i1")).unwrap();
    good.record(
        &report(1, &[0], &now_rfc3339(-10), 1.0, &format!("x {KEY} y")),
        Trigger::Timer,
    )
    .await
    .unwrap();
    for (name, body) in all_blobs(&az).await {
        assert!(!body.contains(KEY), "{name} carries the account key");
    }
}
