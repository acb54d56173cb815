//! A real OTLP receiver for telemetry tests: rotel (`pip install rotel`, a Rust OTel
//! collector shipped inside the wheel as `site-packages/rotel/rotel-agent`), started on
//! loopback ports with its debug log on, so tests grep what arrived.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use routeproof::report::Report;

pub struct Rotel {
    child: Child,
    pub http: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ROUTEPROOF_ROTEL`, or the binary inside the Python package.
pub fn rotel_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ROUTEPROOF_ROTEL") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && p.is_file()).then_some(p)
}

pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Rotel {
    pub fn start(bin: &PathBuf) -> Rotel {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("rotel.log");
        let file = std::fs::File::create(&log).unwrap();
        let http = free_port();
        let grpc = free_port();
        let child = Command::new(bin)
            .args(["start", "--otlp-grpc-endpoint"])
            .arg(grpc.to_string())
            .arg("--otlp-http-endpoint")
            .arg(http.to_string())
            .args([
                "--exporter",
                "blackhole",
                "--debug-log",
                "traces",
                "--debug-log",
                "metrics",
                "--debug-log-verbosity",
                "detailed",
            ])
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("rotel-agent starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(http).is_err() {
            assert!(Instant::now() < deadline, "rotel did not listen on {http}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Rotel {
            child,
            http,
            log,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until every needle is in the log; panics with the log otherwise.
    pub async fn wait_for(&self, needles: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            let missing: Vec<&&str> = needles.iter().filter(|n| !log.contains(**n)).collect();
            if missing.is_empty() {
                return log;
            }
            if Instant::now() > deadline {
                panic!("not received by rotel: {missing:?}\n--- rotel log ---\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `OtelConfig` for an endpoint, with Azure facts as a Function App would have them.
pub fn config(endpoint: &str) -> routeproof::telemetry::OtelConfig {
    let endpoint = endpoint.to_string();
    let env = move |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
        "OTEL_SERVICE_NAME" => Some("routeproof-test".into()),
        "OTEL_RESOURCE_ATTRIBUTES" => Some("deployment.environment=ci".into()),
        "WEBSITE_SITE_NAME" => Some("func-routeproof-test".into()),
        "WEBSITE_INSTANCE_ID" => Some("instance-0123".into()),
        "REGION_NAME" => Some("westeurope".into()),
        _ => None,
    };
    routeproof::telemetry::OtelConfig::from_lookup(&env)
        .unwrap()
        .expect("endpoint set")
}

pub fn target_names(r: &Report) -> Vec<&str> {
    r.targets.iter().map(|t| t.name.as_str()).collect()
}
