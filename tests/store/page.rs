//! The status page with a week of history, rendered by headless Chromium (Debian's
//! `chromium`): a week of 15-minute runs for four targets is seeded into Azurite (an
//! outage two days ago, a flapping target, one failing now), instance A's timer writes
//! the last run, and instance B serves `?last&format=html`. Screenshots at 1280 px and
//! at a phone's 390 px go to `target/artifacts/`; the rendered DOM must show the
//! history. Runs with `ROUTEPROOF_BROWSER_TESTS=1`, and in CI (`ROUTEPROOF_REQUIRE_PEERS=1`,
//! where a missing chromium is a failure).

use object_store::{ObjectStoreExt as _, PutPayload};
use routeproof::store::Trigger;
use routeproof::store::record::{
    RunRecord, Segment, StoredClass, TargetRecord, format_time, hour_of, hour_prefix, now_ms,
};

use crate::azurite::free_port;
use crate::fixtures::azurite_or_skip;
use crate::serve::{Serve, store_env};
use crate::support::chromium;

const TARGETS: [&str; 4] = ["sql-private", "kv-private", "storage-blob", "legacy-api"];
const STEP_MS: i64 = 15 * 60 * 1000;

/// How target `i` did in the run finished at `t` (`age` ms ago): `None` is ok.
fn failure(i: usize, age: i64) -> Option<&'static str> {
    const H: i64 = 3600 * 1000;
    match i {
        // A three-hour outage two days ago.
        1 if (48 * H..51 * H).contains(&age) => Some("dns.nxdomain"),
        // Flapping: one run in eleven.
        2 if (age / STEP_MS) % 11 == 3 => Some("tcp.timeout"),
        // Failing for the last five hours (and now: its port is closed).
        3 if age < 5 * H => Some("tcp.refused"),
        _ => None,
    }
}

/// A week of runs by instance A, one segment per hour, as the store writes them.
async fn seed_week(az: &crate::azurite::Azurite) -> usize {
    let raw = crate::raw(az);
    let now = now_ms();
    // Whole hours, ending before the current one (A's real run writes that one).
    let end = now - now % 3_600_000;
    let mut runs = 0;
    let mut t = end - 7 * 24 * 3_600_000 + STEP_MS;
    while t < end {
        let hour = hour_of(t);
        let mut seg = Segment::new("instance-a", &hour);
        while t < end && hour_of(t) == hour {
            let targets = TARGETS
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let f = failure(i, now - t);
                    TargetRecord {
                        name: name.to_string(),
                        ok: f.is_none(),
                        reached: Some(if f.is_some() { "dns" } else { "tcp" }.into()),
                        class: f.map(StoredClass::parse),
                        ms: 4.2 + i as f64,
                        layers: vec![("dns".into(), 1.1), ("tcp".into(), 3.1)],
                        verdict: None,
                    }
                })
                .collect::<Vec<_>>();
            let started = format_time(t - 900);
            seg.runs.push(RunRecord {
                id: format!("{started}/instance-a"),
                scope: "configured".into(),
                trigger: Trigger::Timer,
                instance: "instance-a".into(),
                started_at: started,
                finished_at: format_time(t),
                ok: targets.iter().all(|t| t.ok),
                targets,
            });
            runs += 1;
            t += STEP_MS;
        }
        let name = format!("{}instance-a.json", hour_prefix(&hour));
        raw.put(
            &name.as_str().into(),
            PutPayload::from(serde_json::to_vec(&seg).unwrap()),
        )
        .await
        .unwrap();
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_a_week_of_history() {
    const TEST: &str = "chromium_renders_a_week_of_history";
    let Some(bin) = chromium::for_test(TEST) else {
        return;
    };
    let Some(az) = azurite_or_skip(TEST, None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = "[engine]\ndns_servers = [\"127.0.0.1:9\"]\ntcp_settle = \"0s\"\n".to_string();
    for name in TARGETS {
        let port = if name == "legacy-api" {
            free_port()
        } else {
            open.local_addr().unwrap().port()
        };
        config.push_str(&format!(
            "\n[[targets]]\nname = \"{name}\"\ntarget = \"tcp://127.0.0.1:{port}\"\n"
        ));
    }
    let path = dir.path().join("routeproof.toml");
    std::fs::write(&path, config).unwrap();
    let path = path.display().to_string();
    let a = Serve::start(&path, &store_env(&az, "instance-a")).await;
    let b = Serve::start(&path, &store_env(&az, "instance-b")).await;
    // A's run creates the container and writes the last record and this hour's segment;
    // the week before it is seeded.
    let (status, _) = a.timer().await;
    assert_eq!(status, 200);
    let seeded = seed_week(&az).await;
    assert!(seeded > 600, "{seeded} runs");

    let url = format!("http://127.0.0.1:{}/api/probe?last&format=html", b.port);
    let (status, page) = b.get("/api/probe?last&format=html").await;
    assert_eq!(status, 503, "legacy-api fails");
    assert!(page.contains("instance <code>instance-a</code>"), "{page}");
    let out = chromium::artifacts();
    for (file, size) in [
        ("store-history-week.png", "1280,2000"),
        ("store-history-week-phone.png", "390,3200"),
    ] {
        let png = out.join(file);
        let _ = std::fs::remove_file(&png);
        chromium::run(
            &bin,
            &url,
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={size}"),
            ],
        )
        .await;
        let bytes = std::fs::read(&png).expect("screenshot written");
        assert!(bytes.starts_with(b"\x89PNG"), "{file} is a PNG");
        assert!(bytes.len() > 10_000, "{file} is not blank");
        eprintln!("screenshot: {}", png.display());
    }
    let dom = chromium::run(&bin, &url, &["--dump-dom".to_string()]).await;
    for visible in [
        "History",
        "sql-private",
        "uptime 24 h 100.00%",
        "last failure",
        "dns.nxdomain",
        "tcp.timeout",
        "tcp.refused",
        "ongoing",
        "instance-a",
    ] {
        assert!(dom.contains(visible), "{visible:?} not in the rendered DOM");
    }
    // 30 marks per target in the strip; 7 days per target in the week row, the outage's
    // day amber for kv-private, every day green for sql-private.
    assert_eq!(dom.matches("class=\"run").count(), 4 * 30, "{dom}");
    assert_eq!(dom.matches("<span class=\"d").count(), 4 * 7, "{dom}");
    // A target's week row (its cells are spans, so the first `</div>` ends it).
    let row = |name: &str| {
        let history = &dom[dom.find("<h2>History</h2>").unwrap()..];
        let rest = &history[history.find(&format!(">{name}</div>")).unwrap()..];
        let w0 = rest.find("<div class=\"week\">").unwrap();
        let w1 = w0 + rest[w0..].find("</div>").unwrap();
        rest[w0..w1].to_string()
    };
    assert!(
        row("kv-private").contains("class=\"d part\""),
        "{}",
        row("kv-private")
    );
    assert!(!row("sql-private").contains("part") && !row("sql-private").contains("bad"));
    drop((a, b, open));
}
