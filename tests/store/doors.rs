//! The doors on a shared Azurite: two `routeproof serve` processes (instance A runs the
//! timer, instance B answers `?last` in every format, `/api/metrics`, `?history` and the
//! page with A's run), B restarted on the same store, an outage (A's timer still 2xx and
//! says persistence failed, B's metrics say stale), recovery, and the CLI's
//! `probe --record` / `history --json` (a laptop's run sits in history and never becomes
//! the app's last).

use serde_json::Value;

use crate::azurite::KEY;
use crate::fixtures::azurite_or_skip;
use crate::serve::{Serve, command, logs, store_env};

#[tokio::test]
async fn two_serve_processes_share_one_store_through_an_outage() {
    let Some(mut az) = azurite_or_skip(
        "two_serve_processes_share_one_store_through_an_outage",
        None,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap();
    let config = dir.path().join("routeproof.toml");
    std::fs::write(
        &config,
        format!(
            "[engine]\ndns_servers = [\"127.0.0.1:9\"]\ntcp_settle = \"0s\"\n\n[[targets]]\nname = \"api\"\ntarget = \"tcp://{open_addr}\"\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let a = Serve::start(&config, &store_env(&az, "instance-a")).await;
    let mut b = Serve::start(&config, &store_env(&az, "instance-b")).await;
    let mut outputs = Vec::new();

    // B before any run: nothing stored, nothing in memory.
    let (status, body) = b.get("/api/probe?last").await;
    assert_eq!(status, 404, "{body}");

    // A's timer records; B answers with A's run.
    let (status, reply) = a.timer().await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        logs(&reply).contains("persisted: history/"),
        "{}",
        logs(&reply)
    );
    let (status, body) = b.get("/api/probe?last").await;
    outputs.push(body.clone());
    assert_eq!(status, 200, "{body}");
    let last: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(last["stored"]["instance"], "instance-a");
    assert_eq!(last["stored"]["trigger"], "timer");
    assert!(last["stored"]["finished_at"].as_str().is_some());
    assert_eq!(last["targets"][0]["name"], "api");
    assert_eq!(
        last["targets"][0]["layers"][0]["layer"], "tcp",
        "the full report"
    );
    let first_finished = last["stored"]["finished_at"].as_str().unwrap().to_string();

    // The same stored run as text and as the page, on B (which never ran the timer).
    let (status, text) = b.get("/api/probe?last&format=text").await;
    outputs.push(text.clone());
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("api") && text.contains("instance=instance-a"),
        "{text}"
    );
    let (status, page) = b.get("/api/probe?last&format=html").await;
    outputs.push(page.clone());
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Last scheduled run: finished")
            && page.contains("instance <code>instance-a</code> (shared store)"),
        "{page}"
    );
    assert!(page.contains("<h2>History</h2>") && page.contains("class=\"strip\""));
    assert_metrics_of_a(&b.get("/api/metrics").await, &mut outputs);

    let (status, body) = b.get("/api/probe?history&target=api&limit=10").await;
    outputs.push(body.clone());
    assert_eq!(status, 200, "{body}");
    let h: Value = serde_json::from_str(&body).unwrap();
    let runs = h["history"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["instance"], "instance-a");
    assert_eq!(runs[0]["targets"][0]["name"], "api");
    let (status, body) = b.get("/api/probe?history&from=yesterday").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("request.invalid") && body.contains("RFC 3339"),
        "{body}"
    );

    // B's page: its own run on top, the stored strip and uptime under it.
    let (status, page) = b.get("/api/probe?format=html").await;
    outputs.push(page.clone());
    assert_eq!(status, 200);
    assert!(page.contains("<h2>History</h2>"), "{page}");
    assert!(page.contains("class=\"strip\""), "{page}");
    assert!(page.contains("uptime 24 h 100.00%"), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );

    // B restarted on the same store (a new process, empty memory): still A's run.
    outputs.push(b.stop());
    b = Serve::start(&config, &store_env(&az, "instance-b")).await;
    let (status, body) = b.get("/api/probe?last").await;
    assert_eq!(status, 200, "{body}");
    let last: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(last["stored"]["instance"], "instance-a");
    assert_eq!(last["stored"]["finished_at"], first_finished.as_str());
    assert_metrics_of_a(&b.get("/api/metrics").await, &mut outputs);
    let (_, body) = b.get("/api/probe?history").await;
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["history"]["runs"][0]["instance"], "instance-a", "{body}");

    // Outage: A's timer still answers 2xx and says why persistence failed; B is stale.
    az.stop();
    let (status, reply) = a.timer().await;
    assert_eq!(status, 200, "{reply}");
    let l = logs(&reply);
    assert!(l.contains("persistence failed: store.unreachable"), "{l}");
    assert!(
        reply["ReturnValue"]
            .as_str()
            .unwrap()
            .contains("persistence failed: store.unreachable"),
        "{reply}"
    );
    let (status, metrics) = b.get("/api/metrics").await;
    outputs.push(metrics.clone());
    assert_eq!(status, 200);
    assert!(
        metrics.contains("routeproof_store_stale{class=\"store.unreachable\"} 1"),
        "{metrics}"
    );
    let (status, body) = b.get("/api/probe?history").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("history.unavailable") && body.contains("store.unreachable"),
        "{body}"
    );

    // Back: the next run is recorded next to the first.
    az.restart();
    let (status, reply) = a.timer().await;
    assert_eq!(status, 200);
    assert!(logs(&reply).contains("persisted: history/"), "{reply}");
    let (_, body) = b.get("/api/probe?history").await;
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["history"]["runs"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) = b.get("/api/probe?last").await;
    let last: Value = serde_json::from_str(&body).unwrap();
    let second_finished = last["stored"]["finished_at"].as_str().unwrap().to_string();
    assert!(second_finished > first_finished, "{body}");

    // The CLI on an operator's laptop: probe --record, then history --json.
    let mut env = store_env(&az, "laptop");
    env.pop();
    let out = command(
        &["probe", "--record", "--json", &format!("tcp://{open_addr}")],
        &env,
    )
    .output()
    .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    assert!(se.contains("recorded in history/"), "{se}");
    outputs.push(so + &se);
    let out = command(&["history", "--json"], &env).output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{so}");
    let h: Value = serde_json::from_str(&so).unwrap();
    let runs = h["history"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{so}");
    assert_eq!(runs[2]["instance"], "laptop");
    assert_eq!(runs[2]["trigger"], "cli");
    assert_eq!(runs[2]["scope"], "cli");
    assert!(
        h["uptime"].as_array().is_some_and(|u| !u.is_empty()),
        "{so}"
    );
    outputs.push(so);
    let out = command(&["history", "--target", "api"], &env)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(so.contains("api: uptime 24h 100.00% (2 runs)"), "{so}");
    outputs.push(so);
    // The laptop's run is history, not the app's last: ?last and the metrics still
    // report A's timer run.
    let (_, body) = b.get("/api/probe?last").await;
    let last: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(last["stored"]["instance"], "instance-a", "{body}");
    assert_eq!(last["stored"]["finished_at"], second_finished.as_str());
    let (_, metrics) = b.get("/api/metrics").await;
    assert!(
        metrics.contains(
            "routeproof_report_source_info{source_instance=\"instance-a\",trigger=\"timer\""
        ),
        "{metrics}"
    );

    // Without a store: the CLI says how to turn history on.
    let out = command(&["history"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("set AzureWebJobsStorage or ROUTEPROOF_STORAGE")
    );

    outputs.push(a.stop());
    outputs.push(b.stop());
    for o in &outputs {
        assert!(!o.contains(KEY), "the account key leaked:\n{o}");
    }
    drop(open);
}

/// B's `/api/metrics` with A's stored run: the full report's series (as the instance that
/// ran it renders them from memory), where it came from, fresh, and uptime.
fn assert_metrics_of_a((status, metrics): &(u16, String), outputs: &mut Vec<String>) {
    outputs.push(metrics.clone());
    assert_eq!(*status, 200);
    for want in [
        "routeproof_report_available 1",
        "routeproof_report_source_info{source_instance=\"instance-a\",trigger=\"timer\",scope=\"configured\"",
        "routeproof_build_info{version=",
        "routeproof_run_duration_seconds ",
        "routeproof_targets{result=\"ok\"} 1",
        "probe_success{target=\"api\"} 1",
        "probe_reached_layer_info{target=\"api\",layer=\"tcp\"} 1",
        "probe_layer_duration_seconds{target=\"api\",layer=\"tcp\"} ",
        "routeproof_store_stale 0",
        "routeproof_uptime_ratio{target=\"api\",window=\"24h\"} 1",
        "routeproof_uptime_ratio{target=\"api\",window=\"7d\"} 1",
        "routeproof_last_run_timestamp_seconds ",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in\n{metrics}");
    }
}

/// A `last` record whose report this build cannot read (a newer routeproof wrote it: a
/// class this build does not know): JSON is served as stored, text and the page say why
/// with `406 report.not_renderable`, and the metrics say stale with `store.corrupt`.
#[tokio::test]
async fn a_last_record_from_a_newer_build() {
    use object_store::{ObjectStoreExt as _, PutPayload};
    let Some(az) = azurite_or_skip("a_last_record_from_a_newer_build", None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routeproof.toml");
    std::fs::write(
        &config,
        format!(
            "[engine]\ndns_servers = [\"127.0.0.1:9\"]\ntcp_settle = \"0s\"\n\n[[targets]]\nname = \"db\"\ntarget = \"tcp://127.0.0.1:{}\"\n",
            crate::azurite::free_port()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let a = Serve::start(&config, &store_env(&az, "instance-a")).await;
    let b = Serve::start(&config, &store_env(&az, "instance-b")).await;
    let (status, _) = a.timer().await;
    assert_eq!(status, 200);

    // The newer writer's record: the same run with a class this build has never heard of.
    let raw = crate::raw(&az);
    let path = object_store::path::Path::from("last/configured.json");
    let body = raw.get(&path).await.unwrap().bytes().await.unwrap();
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["report"]["targets"][0]["failure"]["class"], "tcp.refused");
    v["report"]["targets"][0]["failure"]["class"] = "tcp.quantum_refused".into();
    raw.put(&path, PutPayload::from(serde_json::to_vec(&v).unwrap()))
        .await
        .unwrap();

    let (status, body) = b.get("/api/probe?last").await;
    assert_eq!(status, 503, "the stored run failed: {body}");
    let last: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(last["stored"]["instance"], "instance-a");
    assert_eq!(
        last["targets"][0]["failure"]["class"], "tcp.quantum_refused",
        "as stored"
    );
    for format in ["html", "text"] {
        let (status, body) = b.get(&format!("/api/probe?last&format={format}")).await;
        assert_eq!(status, 406, "{body}");
        assert!(
            body.contains("report.not_renderable")
                && body.contains("tcp.quantum_refused")
                && body.contains("format=json")
                && !body.contains("dns.nxdomain"),
            "says which class, and does not list every known one: {body}"
        );
    }
    let (status, metrics) = b.get("/api/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("routeproof_store_stale{class=\"store.corrupt\"} 1")
            && metrics.contains("routeproof_report_available 0"),
        "B has no run of its own: {metrics}"
    );
    drop((a, b));
}
