//! The store against a real Azurite on 127.0.0.1 (started per test): account key, SAS and
//! OAuth (HTTPS, token from an emulated identity endpoint); two instances sharing one
//! account; overlapping runs; retention; outage and recovery; foreign blobs; planted
//! credentials. Missing Azurite: skipped, or a failure under ROUTEPROOF_REQUIRE_PEERS=1.

mod auth;
mod azurite;
mod bench;
mod blobs;
mod doors;
mod fixtures;
mod oauth;
mod page;
mod planted;
mod prometheus;
mod secrets;
mod serve;
#[path = "../support/mod.rs"]
mod support;

use futures_util::TryStreamExt as _;
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::{ObjectStore as _, ObjectStoreExt as _};
use routeproof::store::{HistoryFilter, LastOutcome, StoreClass, Trigger};

use azurite::ACCOUNT;
use fixtures::{azurite_or_skip, now_rfc3339, report, store};

pub(crate) fn key_env(az: &azurite::Azurite, instance: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AzureWebJobsStorage", az.key_connection_string()),
        ("WEBSITE_INSTANCE_ID", instance.to_string()),
        ("ROUTEPROOF_STORAGE_CACHE_SECS", "0".into()),
        ("ROUTEPROOF_STORAGE_TIMEOUT_SECS", "3".into()),
    ]
}

/// A client of the test's own, to look at (and plant) blobs behind the store's back.
pub(crate) fn raw(az: &azurite::Azurite) -> MicrosoftAzure {
    MicrosoftAzureBuilder::new()
        .with_account(ACCOUNT)
        .with_access_key(&az.key)
        .with_endpoint(az.http_endpoint())
        .with_allow_http(true)
        .with_container_name("routeproof")
        .build()
        .unwrap()
}

pub(crate) async fn all_blobs(az: &azurite::Azurite) -> Vec<(String, String)> {
    let r = raw(az);
    let metas: Vec<_> = r.list(None).try_collect().await.unwrap();
    let mut out = Vec::new();
    for m in metas {
        let body = r.get(&m.location).await.unwrap().bytes().await.unwrap();
        out.push((
            m.location.to_string(),
            String::from_utf8_lossy(&body).into_owned(),
        ));
    }
    out
}

#[tokio::test]
async fn key_two_instances_share_last_and_history() {
    let Some(az) = azurite_or_skip("key_two_instances_share_last_and_history", None) else {
        return;
    };
    let a = store(key_env(&az, "instance-a")).unwrap();
    let b = store(key_env(&az, "instance-b")).unwrap();
    assert!(
        b.last().await.unwrap().is_none(),
        "nothing before the first write"
    );

    // Instance A writes (the container is created on first use); B reads A's run.
    let w = a
        .record(
            &report(10, &[3], &now_rfc3339(-2000), 1500.0, "refused"),
            Trigger::Timer,
        )
        .await
        .unwrap();
    assert_eq!(w.last, LastOutcome::Created);
    assert!(
        w.history_blob.starts_with("history/") && w.history_blob.ends_with("/instance-a.json"),
        "{}",
        w.history_blob
    );
    let last = b.last().await.unwrap().expect("B sees A's last");
    assert_eq!(last.meta.instance, "instance-a");
    assert_eq!(last.meta.trigger, Trigger::Timer);
    assert_eq!(last.report["targets"].as_array().unwrap().len(), 10);
    assert_eq!(last.report["targets"][3]["failure"]["class"], "tcp.refused");
    assert_eq!(
        last.run.targets[3].class.as_ref().unwrap().as_str(),
        "tcp.refused"
    );

    // B writes a later run; both see B's as last and both runs in history.
    let w = b
        .record(
            &report(10, &[], &now_rfc3339(-500), 100.0, ""),
            Trigger::Timer,
        )
        .await
        .unwrap();
    assert_eq!(w.last, LastOutcome::Replaced);
    for s in [&a, &b] {
        assert_eq!(s.last().await.unwrap().unwrap().meta.instance, "instance-b");
        let h = s.history(&HistoryFilter::default()).await.unwrap();
        let who: Vec<&str> = h.runs.iter().map(|r| r.instance.as_str()).collect();
        assert_eq!(who, ["instance-a", "instance-b"], "oldest first");
        assert!(h.skipped.is_empty(), "{:?}", h.skipped);
    }
    // Filter by target: one record per run, only that target.
    let h = a
        .history(&HistoryFilter {
            target: Some("target-03".into()),
            ..HistoryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(h.runs.len(), 2);
    assert!(
        h.runs
            .iter()
            .all(|r| r.targets.len() == 1 && r.targets[0].name == "target-03")
    );
    assert_eq!(
        (h.runs[0].targets[0].ok, h.runs[1].targets[0].ok),
        (false, true)
    );
    // Time range: only A's run (it finished before B's started).
    let b_started = routeproof::store::record::parse_time(&h.runs[1].started_at).unwrap();
    let h = a
        .history(&HistoryFilter {
            to_ms: Some(b_started),
            ..HistoryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(h.runs.len(), 1);
    assert_eq!(h.runs[0].instance, "instance-a");
    // Uptime over the two runs: target-03 failed once of two, the others never.
    let u = b.uptime().await.unwrap();
    let t3 = u.iter().find(|t| t.name == "target-03").unwrap();
    assert_eq!((t3.day.runs, t3.day.ok), (2, 1));
    assert_eq!(
        t3.last_failure
            .as_ref()
            .unwrap()
            .class
            .as_ref()
            .unwrap()
            .as_str(),
        "tcp.refused"
    );
    assert!(
        t3.last_failure.as_ref().unwrap().until.is_some(),
        "recovered"
    );
    assert_eq!(
        u.iter()
            .find(|t| t.name == "target-00")
            .unwrap()
            .week
            .uptime,
        Some(1.0)
    );
}

#[tokio::test]
async fn an_older_run_finishing_later_does_not_replace_last() {
    let Some(az) = azurite_or_skip("an_older_run_finishing_later_does_not_replace_last", None)
    else {
        return;
    };
    let s = store(key_env(&az, "i1")).unwrap();
    // The newer run (started later, finished at now-1s) is written first...
    let newer = report(2, &[], &now_rfc3339(-2000), 1000.0, "");
    assert_eq!(
        s.record(&newer, Trigger::Timer).await.unwrap().last,
        LastOutcome::Created
    );
    // ...then a past-due run that started earlier and finished earlier (now-5s) arrives.
    let older = report(2, &[0], &now_rfc3339(-60_000), 55_000.0, "late");
    let w = s.record(&older, Trigger::Timer).await.unwrap();
    let newer_finished = s.last().await.unwrap().unwrap().meta.finished_at;
    assert_eq!(
        w.last,
        LastOutcome::KeptNewer {
            finished_at: newer_finished.clone()
        }
    );
    let last = s.last().await.unwrap().unwrap();
    assert_eq!(last.meta.finished_at, newer_finished);
    assert!(last.run.ok, "the newer (passing) run stays last");
    // The older run is still in history: nothing lost.
    let h = s.history(&HistoryFilter::default()).await.unwrap();
    assert_eq!(h.runs.len(), 2);
    assert!(!h.runs[0].ok && h.runs[1].ok, "ordered by finished_at");
    // The same run recorded twice is one record.
    s.record(&older, Trigger::Timer).await.unwrap();
    assert_eq!(
        s.history(&HistoryFilter::default())
            .await
            .unwrap()
            .runs
            .len(),
        2
    );

    // Two concurrent writers on the same segment and last: neither run is lost.
    let t1 = report(1, &[], &now_rfc3339(-800), 10.0, "");
    let t2 = report(1, &[], &now_rfc3339(-700), 10.0, "");
    let (r1, r2) = tokio::join!(s.record(&t1, Trigger::Timer), s.record(&t2, Trigger::Http));
    r1.unwrap();
    r2.unwrap();
    assert_eq!(
        s.history(&HistoryFilter::default())
            .await
            .unwrap()
            .runs
            .len(),
        4
    );
    assert_eq!(
        s.last().await.unwrap().unwrap().meta.trigger,
        Trigger::Http,
        "the later-finishing of the two"
    );
}

#[tokio::test]
async fn outage_gives_a_typed_error_and_the_next_write_lands() {
    let Some(mut az) = azurite_or_skip("outage_gives_a_typed_error_and_the_next_write_lands", None)
    else {
        return;
    };
    let s = store(key_env(&az, "i1")).unwrap();
    s.record(
        &report(1, &[], &now_rfc3339(-3000), 1.0, ""),
        Trigger::Timer,
    )
    .await
    .unwrap();
    az.stop();
    let e = s
        .record(
            &report(1, &[0], &now_rfc3339(-2000), 1.0, ""),
            Trigger::Timer,
        )
        .await
        .unwrap_err();
    assert_eq!(e.class, StoreClass::Unreachable, "{e}");
    assert_eq!(s.last().await.unwrap_err().class, StoreClass::Unreachable);
    assert_eq!(
        s.history(&HistoryFilter::default())
            .await
            .unwrap_err()
            .class,
        StoreClass::Unreachable
    );
    az.restart();
    let w = s
        .record(
            &report(1, &[], &now_rfc3339(-1000), 1.0, ""),
            Trigger::Timer,
        )
        .await
        .unwrap();
    assert_eq!(
        w.last,
        LastOutcome::Replaced,
        "the run written before the outage is still there"
    );
    assert_eq!(
        s.history(&HistoryFilter::default())
            .await
            .unwrap()
            .runs
            .len(),
        2
    );
}
