//! Foreign and corrupt blobs are skipped with a reason; retention by age and by bytes.

use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutPayload};
use routeproof::store::{HistoryFilter, Trigger};

use crate::fixtures::{azurite_or_skip, now_rfc3339, report, store};
use crate::{all_blobs, key_env, raw};

#[tokio::test]
async fn foreign_and_corrupt_blobs_are_skipped_with_a_reason() {
    let Some(az) = azurite_or_skip("foreign_and_corrupt_blobs_are_skipped_with_a_reason", None)
    else {
        return;
    };
    let s = store(key_env(&az, "i1")).unwrap();
    s.record(
        &report(2, &[], &now_rfc3339(-1000), 1.0, ""),
        Trigger::Timer,
    )
    .await
    .unwrap();
    let r = raw(&az);
    let hour = routeproof::store::record::hour_of(routeproof::store::record::now_ms());
    let prefix = routeproof::store::record::hour_prefix(&hour);
    let put = |p: String, b: &'static [u8]| {
        let r = r.clone();
        async move {
            r.put(&Path::from(p), PutPayload::from_static(b))
                .await
                .unwrap()
        }
    };
    put(
        format!("{prefix}half.json"),
        b"{\"schema\":\"routeproof.history/v1\",\"instance\":\"x\",\"runs\":[{\"id\"",
    )
    .await;
    put(
        format!("{prefix}other.json"),
        b"{\"schema\":\"someone.else/v9\",\"instance\":\"x\",\"hour\":\"h\",\"runs\":[]}",
    )
    .await;
    put("history/notes.txt".into(), b"hello").await;
    let h = s.history(&HistoryFilter::default()).await.unwrap();
    assert_eq!(h.runs.len(), 1, "our run is still read");
    let reasons: Vec<String> = h
        .skipped
        .iter()
        .map(|k| format!("{} {}", k.blob, k.reason))
        .collect();
    assert_eq!(h.skipped.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("half.json") && r.contains("not a history segment")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("other.json") && r.contains("someone.else/v9")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("notes.txt")),
        "{reasons:?}"
    );
    assert_eq!(
        s.uptime().await.unwrap().len(),
        2,
        "uptime ignores them too"
    );

    // A corrupt last record reads as none (with the reason), and the next run replaces it.
    put("last/configured.json".into(), b"<html>not json</html>").await;
    let (last, skip) = s.last_in("configured").await.unwrap();
    assert!(last.is_none());
    assert!(skip.unwrap().reason.contains("not a last record"));
    s.record(&report(2, &[], &now_rfc3339(-10), 1.0, ""), Trigger::Timer)
        .await
        .unwrap();
    assert!(s.last().await.unwrap().is_some());
}

#[tokio::test]
async fn retention_deletes_old_segments_and_keeps_the_byte_bound() {
    let Some(az) = azurite_or_skip(
        "retention_deletes_old_segments_and_keeps_the_byte_bound",
        None,
    ) else {
        return;
    };
    // Runs 3 days ago (outside a 2-day window) and 1 day ago (inside), written by an
    // instance keeping 7 days; then a run of an instance keeping 2 days prunes.
    let week = store(key_env(&az, "i7")).unwrap();
    let day = 24 * 3600 * 1000;
    week.record(
        &report(2, &[], &now_rfc3339(-3 * day), 1.0, ""),
        Trigger::Timer,
    )
    .await
    .unwrap();
    week.record(
        &report(2, &[], &now_rfc3339(-3 * day - 7_200_000), 1.0, ""),
        Trigger::Timer,
    )
    .await
    .unwrap();
    week.record(&report(2, &[], &now_rfc3339(-day), 1.0, ""), Trigger::Timer)
        .await
        .unwrap();
    let mut e = key_env(&az, "i1");
    e.push(("ROUTEPROOF_HISTORY_DAYS", "2".into()));
    let s = store(e).unwrap();
    let w = s
        .record(&report(2, &[], &now_rfc3339(-10), 1.0, ""), Trigger::Timer)
        .await
        .unwrap();
    assert_eq!(w.pruned, 2, "{w:?}");
    let names: Vec<String> = all_blobs(&az)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("history/"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let h = s
        .history(&HistoryFilter {
            from_ms: Some(0),
            ..HistoryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(h.runs.len(), 2);

    // The byte bound: with 4 KiB per target, old hours go although inside the window.
    let mut e = key_env(&az, "i1");
    e.push(("ROUTEPROOF_HISTORY_MAX_BYTES_PER_TARGET", "4096".into()));
    let s = store(e).unwrap();
    for h in (1..=30).rev() {
        s.record(
            &report(1, &[], &now_rfc3339(-h * 3_600_000), 1.0, ""),
            Trigger::Timer,
        )
        .await
        .unwrap();
    }
    let total: usize = all_blobs(&az)
        .await
        .iter()
        .filter(|(n, _)| n.starts_with("history/"))
        .map(|(_, b)| b.len())
        .sum();
    assert!(
        total <= 4096 + 400,
        "history holds {total} bytes for one target"
    );
    let h = s.history(&HistoryFilter::default()).await.unwrap();
    assert!(
        h.runs.len() >= 5 && h.runs.last().unwrap().finished_at > now_rfc3339(-2 * 3_600_000),
        "the newest are kept"
    );
}
