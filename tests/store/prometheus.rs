//! A real Prometheus (Debian's `prometheus` package) scrapes instance B's `/api/metrics`
//! while instance A runs the timer: Prometheus's own parser and TSDB, not ours, must
//! give back `probe_success` for the target with its labels, the uptime gauge and the
//! store's series, and the scrape must have no error. Started on 127.0.0.1 with a
//! temporary config and storage directory, a 1 s scrape interval, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::azurite::free_port;
use crate::fixtures::{azurite_or_skip, skip};
use crate::serve::{Serve, http, store_env};

fn prometheus_binary() -> Option<PathBuf> {
    std::env::var_os("ROUTEPROOF_PROMETHEUS")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("PATH").into_iter().flat_map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("prometheus"))
                .collect::<Vec<_>>()
        }))
        .find(|p| p.is_file())
}

struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(bin: &PathBuf, scrape_port: u16) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: routeproof\n    metrics_path: /api/metrics\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{scrape_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, port, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>`, or `None` while Prometheus is not listening yet.
    async fn api(&self, path: &str) -> Option<Value> {
        tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let (status, body) = http(self.port, "GET", &format!("/api/v1/{path}"), "").await;
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    async fn query(&self, q: &str) -> Vec<Value> {
        let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        self.api(&format!("query?query={q}"))
            .await
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Polls `q` until it has a result (bounded; how fast is not the point).
    async fn wait_for(&self, q: &str) -> Vec<Value> {
        let t0 = Instant::now();
        loop {
            let r = self.query(q).await;
            if !r.is_empty() {
                return r;
            }
            if t0.elapsed() > Duration::from_secs(90) {
                panic!(
                    "prometheus has no result for {q} after 90 s\n--- log ---\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The only result of a query: its labels and its value.
fn one(results: Vec<Value>) -> (serde_json::Map<String, Value>, String) {
    assert_eq!(results.len(), 1, "{results:?}");
    let r = &results[0];
    (
        r["metric"].as_object().unwrap().clone(),
        r["value"][1].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn prometheus_scrapes_b_and_queries_a_s_run() {
    const TEST: &str = "prometheus_scrapes_b_and_queries_a_s_run";
    let Some(bin) = prometheus_binary() else {
        skip(
            TEST,
            "prometheus not found (apt-get install prometheus, or set ROUTEPROOF_PROMETHEUS)",
        );
        return;
    };
    let Some(az) = azurite_or_skip(TEST, None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = dir.path().join("routeproof.toml");
    std::fs::write(
        &config,
        format!(
            "[engine]\ndns_servers = [\"127.0.0.1:9\"]\ntcp_settle = \"0s\"\n\n\
             [[targets]]\nname = \"api\"\ntarget = \"tcp://{}\"\n\n\
             [[targets]]\nname = \"closed\"\ntarget = \"tcp://127.0.0.1:{}\"\n",
            open.local_addr().unwrap(),
            free_port()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let a = Serve::start(&config, &store_env(&az, "instance-a")).await;
    let b = Serve::start(&config, &store_env(&az, "instance-b")).await;
    let (status, _) = a.timer().await;
    assert_eq!(status, 200);

    let prom = Prometheus::start(&bin, b.port);
    let target = format!("127.0.0.1:{}", b.port);
    let results = prom.wait_for("probe_success").await;
    assert_eq!(results.len(), 2, "{results:?}");
    for (name, want) in [("api", "1"), ("closed", "0")] {
        let r = results
            .iter()
            .find(|r| r["metric"]["target"] == name)
            .unwrap_or_else(|| panic!("no probe_success for {name}: {results:?}"));
        assert_eq!(r["value"][1], want, "{r}");
        assert_eq!(r["metric"]["job"], "routeproof");
        assert_eq!(r["metric"]["instance"], target.as_str());
    }

    // The scrape itself is clean: Prometheus's parser took every line.
    let (labels, v) = one(prom.query("up{job=\"routeproof\"}").await);
    assert_eq!(
        (labels["instance"].as_str(), v.as_str()),
        (Some(target.as_str()), "1")
    );
    let targets = prom.api("targets").await.unwrap();
    let active = &targets["data"]["activeTargets"][0];
    assert_eq!(active["health"], "up", "{active}");
    assert_eq!(active["lastError"], "", "{active}");

    let (labels, v) = one(prom
        .wait_for("routeproof_uptime_ratio{target=\"api\",window=\"24h\"}")
        .await);
    assert_eq!(v, "1", "{labels:?}");
    let (_, v) = one(prom
        .wait_for("routeproof_uptime_ratio{target=\"closed\",window=\"7d\"}")
        .await);
    assert_eq!(v, "0");
    let (labels, _) = one(prom.wait_for("probe_failure_info").await);
    assert_eq!(
        (labels["target"].as_str(), labels["class"].as_str()),
        (Some("closed"), Some("tcp.refused"))
    );
    // Where the run came from arrives under its own name, not renamed `exported_instance`.
    let (labels, _) = one(prom.wait_for("routeproof_report_source_info").await);
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    assert_eq!(label("source_instance"), Some("instance-a"), "{labels:?}");
    assert_eq!(label("trigger"), Some("timer"));
    assert!(!labels.contains_key("exported_instance"), "{labels:?}");
    let (_, v) = one(prom.wait_for("routeproof_store_stale").await);
    assert_eq!(v, "0");
    drop(prom);
    drop(open);
}
