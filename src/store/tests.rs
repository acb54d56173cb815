use super::record::{
    RunRecord, Segment, TargetRecord, Trigger, format_time, hour_of, hour_prefix,
    hour_start_of_name, parse_time,
};
use super::settings::{Auth, Source, StoreSettings};
use super::uptime::{DAY_MS, summarize};
use super::*;
use crate::report::{
    Environment, Evidence, Failure, FailureClass, Layer, LayerResult, Summary, TargetReport,
};

const KEY: &str = "UExBTlRFRC1LRVktZm9yLXRlc3RzLW9ubHktMTIzNDU2Nzg5MA==";

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| v.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
}

fn settings(pairs: &[(&str, &str)]) -> Result<StoreSettings, StoreError> {
    StoreSettings::from_env(&env_of(pairs)).expect("configured")
}

#[test]
fn connection_string_forms() {
    let s = settings(&[(
        "AzureWebJobsStorage",
        &format!("DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"),
    )])
    .unwrap();
    assert_eq!(
        s.endpoint.as_str(),
        "https://acct1.blob.core.chinacloudapi.cn/"
    );
    assert_eq!(s.account, "acct1");
    assert!(matches!(s.auth, Auth::AccountKey(_)));
    assert_eq!(s.source, Source::ConnectionString);
    assert_eq!((s.container.as_str(), s.history_days), ("routeproof", 7));

    let s = settings(&[(
        "AzureWebJobsStorage",
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;SharedAccessSignature=?sv=2022-11-02&ss=b&sig=PLANTED%3D",
    )])
    .unwrap();
    assert_eq!(s.account, "devstoreaccount1");
    assert!(matches!(&s.auth, Auth::Sas(x) if x.expose() == "sv=2022-11-02&ss=b&sig=PLANTED%3D"));
    assert_eq!(
        s.endpoint.as_str(),
        "http://127.0.0.1:10000/devstoreaccount1"
    );

    let s = settings(&[("AzureWebJobsStorage", "UseDevelopmentStorage=true")]).unwrap();
    assert_eq!(
        s.endpoint.as_str(),
        "http://127.0.0.1:10000/devstoreaccount1"
    );

    let e = settings(&[("AzureWebJobsStorage", "AccountName=a;EndpointSuffix=x")]).unwrap_err();
    assert_eq!(e.class, StoreClass::Config);
    assert!(
        e.message.contains("AccountKey or SharedAccessSignature"),
        "{e}"
    );
    assert!(StoreSettings::from_env(&env_of(&[])).is_none());
    assert!(
        StoreSettings::from_env(&env_of(&[
            ("ROUTEPROOF_STORAGE", "off"),
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        ]))
        .is_none()
    );
}

#[test]
fn identity_based_and_override() {
    let mi = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
        ("IDENTITY_HEADER", "PLANTED-HEADER"),
    ];
    let mut e = vec![
        ("AzureWebJobsStorage__accountName", "acct2"),
        ("AzureWebJobsStorage__clientId", "cid-1"),
    ];
    e.extend(mi);
    let s = settings(&e).unwrap();
    assert_eq!(s.endpoint.as_str(), "https://acct2.blob.core.windows.net/");
    assert!(matches!(&s.auth, Auth::ManagedIdentity(m) if m.client_id.as_deref() == Some("cid-1")));
    assert!(!format!("{s:?}").contains("PLANTED"));

    let e = settings(&[(
        "AzureWebJobsStorage__blobServiceUri",
        "https://acct3.blob.core.windows.net",
    )])
    .unwrap_err();
    assert_eq!(e.class, StoreClass::Auth);
    assert!(e.message.contains("IDENTITY_ENDPOINT"), "{e}");

    let e = settings(&[
        ("AzureWebJobsStorage__accountName", "a"),
        ("AzureWebJobsStorage__credential", "azurecli"),
    ])
    .unwrap_err();
    assert!(e.message.contains("managedidentity"), "{e}");

    // The override wins over AzureWebJobsStorage; a URL with a query is a SAS.
    let s = settings(&[
        ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
        (
            "ROUTEPROOF_STORAGE",
            "https://other.blob.core.windows.net/?sv=1&sig=PLANTED",
        ),
        ("ROUTEPROOF_HISTORY_DAYS", "3"),
        ("ROUTEPROOF_STORAGE_CONTAINER", "rp-results"),
    ])
    .unwrap();
    assert_eq!(
        (s.account.as_str(), s.history_days, s.container.as_str()),
        ("other", 3, "rp-results")
    );
    assert_eq!(s.source, Source::RouteproofStorage);
    assert!(matches!(&s.auth, Auth::Sas(_)));
    assert!(!format!("{s:?}").contains("PLANTED"));

    for (k, v) in [
        ("ROUTEPROOF_HISTORY_DAYS", "0"),
        ("ROUTEPROOF_STORAGE_CONTAINER", "Bad_Name"),
        ("ROUTEPROOF_HISTORY_MAX_BYTES_PER_TARGET", "12"),
    ] {
        let e = settings(&[
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            (k, v),
        ])
        .unwrap_err();
        assert_eq!(e.class, StoreClass::Config, "{k}");
        assert!(e.message.contains(k), "{e}");
    }
}

#[test]
fn errors_and_debug_never_carry_the_key() {
    let conn = format!("AccountName=acct;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:1/acct");
    let store = Store::from_env(&env_of(&[("AzureWebJobsStorage", &conn)]))
        .unwrap()
        .unwrap();
    let dbg = format!("{store:?}");
    assert!(!dbg.contains(KEY) && dbg.contains("account_key"), "{dbg}");
    let masked = store.backend.mask(&format!(
        "oops {KEY} and {}",
        url::form_urlencoded::byte_serialize(KEY.as_bytes()).collect::<String>()
    ));
    assert!(
        !masked.contains(KEY) && !masked.contains("UExBTlRFRC1LRVkt"),
        "{masked}"
    );
    let e = StoreError::new(
        StoreClass::Auth,
        "AccountKey=abc;x https://h/c?sv=1&sig=PLANTEDSIG",
    );
    assert!(
        !e.to_string().contains("PLANTEDSIG") && !e.to_string().contains("abc;"),
        "{e}"
    );
}

#[test]
fn time_and_names() {
    let t = parse_time("2026-12-01T17:59:33.123Z").unwrap();
    assert_eq!(format_time(t), "2026-12-01T17:59:33.123Z");
    assert_eq!(hour_of(t), "2026-12-01T17");
    assert_eq!(hour_prefix("2026-12-01T17"), "history/2026/12/01/17/");
    assert_eq!(
        hour_start_of_name("history/2026/12/01/17/i1.json"),
        parse_time("2026-12-01T17:00:00Z")
    );
    assert_eq!(hour_start_of_name("history/junk.json"), None);
    assert!(
        Segment::parse(
            b"{\"schema\":\"someone.else\",\"instance\":\"x\",\"hour\":\"h\",\"runs\":[]}"
        )
        .is_err()
    );
    assert!(Segment::parse(b"{\"schema\":\"routeproof.history/v1\",\"ins").is_err());
}

pub(crate) fn report(n: usize, failing: &[usize], started_at: &str) -> Report {
    let targets: Vec<TargetReport> = (0..n)
        .map(|i| {
            let bad = failing.contains(&i);
            let failure = bad.then(|| Failure {
                layer: Some(Layer::Tcp),
                class: FailureClass::TcpRefused,
                message: "refused".into(),
                hint: "h".into(),
                rule: None,
            });
            let layer = |l: Layer, ms: f64, ok: bool| LayerResult {
                layer: l,
                ok,
                start_ms: 0.0,
                duration_ms: ms,
                error: None,
                evidence: Evidence::None {},
            };
            TargetReport {
                name: format!("target-{i:02}"),
                target: format!("tcp://svc{i}.privatelink.database.windows.net:1433"),
                source: None,
                ok: !bad,
                reached: Some(if bad { Layer::Dns } else { Layer::Tcp }),
                failure,
                duration_ms: 12.345,
                route: Vec::new(),
                layers: vec![
                    layer(Layer::Dns, 1.234, true),
                    layer(Layer::Tcp, 11.1, !bad),
                ],
                skipped: Vec::new(),
                warnings: Vec::new(),
            }
        })
        .collect();
    Report {
        schema: crate::report::SCHEMA,
        version: "test".into(),
        started_at: started_at.into(),
        duration_ms: 1500.0,
        deadline_ms: 10_000.0,
        ok: failing.is_empty(),
        summary: Summary {
            total: n,
            ok: n - failing.len(),
            failed: failing.len(),
        },
        environment: Environment::default(),
        targets,
    }
}

#[test]
fn compact_record_of_a_ten_target_run() {
    let r = report(10, &[3], "2026-12-01T17:00:00.000Z");
    let run = RunRecord::from_report(&r, Trigger::Timer, "configured", "inst-a");
    assert_eq!(run.finished_at, "2026-12-01T17:00:01.500Z");
    assert_eq!(
        run.targets[3].class,
        Some(StoredClass::Known(FailureClass::TcpRefused))
    );
    assert_eq!(
        run.targets[0].layers,
        vec![("dns".to_string(), 1.2), ("tcp".to_string(), 11.1)]
    );
    let bytes = serde_json::to_vec(&run).unwrap().len();
    // About 100 bytes per target: 7 days of a 1-minute timer fit the default bound.
    assert!(bytes < 1500, "{bytes}");
    let back: RunRecord = serde_json::from_slice(&serde_json::to_vec(&run).unwrap()).unwrap();
    assert_eq!(back, run);
    let foreign: TargetRecord =
        serde_json::from_str(r#"{"name":"x","ok":false,"class":"future.class","ms":1}"#).unwrap();
    assert_eq!(
        foreign.class,
        Some(StoredClass::Other("future.class".into()))
    );
}

fn run_at(ms: i64, ok_a: bool, ok_b: bool) -> RunRecord {
    let t = |name: &str, ok: bool| TargetRecord {
        name: name.into(),
        ok,
        reached: None,
        class: (!ok).then_some(StoredClass::Known(FailureClass::TcpTimeout)),
        ms: 1.0,
        layers: Vec::new(),
        verdict: None,
    };
    RunRecord {
        id: format!("{ms}"),
        scope: "configured".into(),
        trigger: Trigger::Timer,
        instance: "i".into(),
        started_at: format_time(ms - 1000),
        finished_at: format_time(ms),
        ok: ok_a && ok_b,
        targets: vec![t("a", ok_a), t("b", ok_b)],
    }
}

/// A synthetic week of a 10-minute timer: `a` fails for 2 h on day 2 and for the last
/// 30 minutes (ongoing); `b` never fails.
#[test]
fn uptime_over_a_synthetic_week() {
    let now = parse_time("2026-12-08T00:00:00Z").unwrap();
    let step = 10 * 60 * 1000;
    let start = now - 7 * DAY_MS;
    let outage = (
        start + DAY_MS + 3600 * 1000,
        start + DAY_MS + 3 * 3600 * 1000,
    );
    let runs: Vec<RunRecord> = (1..=7 * 144)
        .map(|i| {
            let t = start + i * step;
            let a_ok = !((t >= outage.0 && t < outage.1) || t > now - 30 * 60 * 1000);
            run_at(t, a_ok, true)
        })
        .collect();
    let u = summarize(&runs, now);
    let (a, b) = (&u[0], &u[1]);
    assert_eq!((a.name.as_str(), b.name.as_str()), ("a", "b"));
    assert_eq!((a.week.runs, b.week.runs), (1008, 1008));
    // 12 runs of the 2 h outage and 3 of the last 30 min (00:00 included, 23:30 not).
    assert_eq!(a.week.ok, 1008 - 12 - 3);
    assert_eq!(a.day.runs, 144);
    assert_eq!(a.day.ok, 141);
    assert!((a.day.uptime.unwrap() - 141.0 / 144.0).abs() < 1e-9);
    assert_eq!(b.week.uptime, Some(1.0));
    let lf = a.last_failure.as_ref().unwrap();
    assert_eq!(lf.until, None);
    assert_eq!(lf.runs, 3);
    assert_eq!(lf.since, format_time(now - 20 * 60 * 1000));
    assert_eq!(lf.duration_ms, 20 * 60 * 1000);
    assert_eq!(lf.class, Some(StoredClass::Known(FailureClass::TcpTimeout)));
    assert_eq!(
        a.last_good.as_deref(),
        Some(format_time(now - 30 * 60 * 1000).as_str())
    );
    assert!(b.last_failure.is_none());
    assert_eq!(a.recent.len(), 30);
    assert!(!a.recent.last().unwrap().ok);
    // The week row: UTC days 12-02 (the outage) to 12-08 (only its 00:00 run, failed).
    let days: Vec<(&str, u32, u32)> = a
        .days
        .iter()
        .map(|d| (d.day.as_str(), d.window.runs, d.window.ok))
        .collect();
    assert_eq!(
        days,
        [
            ("2026-12-02", 144, 132),
            ("2026-12-03", 144, 144),
            ("2026-12-04", 144, 144),
            ("2026-12-05", 144, 144),
            ("2026-12-06", 144, 144),
            ("2026-12-07", 144, 142),
            ("2026-12-08", 1, 0),
        ]
    );

    // The earlier outage, seen from just after it: 12 failed runs, lasted 2 h.
    let u = summarize(&runs, outage.1 + step);
    let lf = u[0].last_failure.as_ref().unwrap();
    assert_eq!(lf.runs, 12);
    assert_eq!(lf.since, format_time(outage.0));
    assert_eq!(lf.until.as_deref(), Some(format_time(outage.1).as_str()));
    assert_eq!(lf.duration_ms, 2 * 3600 * 1000);
    // Nothing in the window: no uptime, not 0 %.
    assert_eq!(summarize(&runs, start - DAY_MS).len(), 0);
}
