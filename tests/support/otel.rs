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

// ------------------------------------------------ App Insights ingestion on loopback

/// A loopback stand-in for `{IngestionEndpoint}/v2.1/track` (availability results) and
/// `/v2/track` (the exporter's spans and metrics). Answers as the Breeze ingestion API
/// documents (`itemsReceived`/`itemsAccepted`/`errors`), or 503 while `fail` is set.
#[derive(Default)]
pub struct Ingestion {
    /// Headers and the decoded (gunzipped when needed) JSON array of each POST.
    pub posts: std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<serde_json::Value>)>>,
    pub fail: std::sync::atomic::AtomicBool,
}

impl Ingestion {
    fn router(self: &std::sync::Arc<Self>) -> axum::Router {
        use axum::http::{HeaderMap, StatusCode};
        let me = std::sync::Arc::clone(self);
        let track = axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let me = std::sync::Arc::clone(&me);
            async move {
                let items = gunzip(&headers, &body);
                let n = items.len();
                me.posts.lock().unwrap().push((headers, items));
                if me.fail.load(std::sync::atomic::Ordering::SeqCst) {
                    (StatusCode::SERVICE_UNAVAILABLE, "{}".to_string())
                } else {
                    (
                        StatusCode::OK,
                        format!(r#"{{"itemsReceived":{n},"itemsAccepted":{n},"errors":[]}}"#),
                    )
                }
            }
        });
        axum::Router::new()
            .route("/v2.1/track", track.clone())
            .route("/v2/track", track)
            .fallback(|uri: axum::http::Uri| async move {
                eprintln!("ingestion receiver: unexpected {uri}");
                StatusCode::NOT_FOUND
            })
    }

    /// Plain HTTP on 127.0.0.1 (availability results may go to an http endpoint).
    pub async fn start_http() -> (std::sync::Arc<Ingestion>, SocketAddr) {
        let rx = std::sync::Arc::new(Ingestion::default());
        let app = rx.router();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        (rx, addr)
    }

    /// HTTPS on 127.0.0.1 with a leaf of `ca` (the exporter always speaks https).
    pub async fn start_https(ca: &super::certs::Ca) -> (std::sync::Arc<Ingestion>, SocketAddr) {
        let leaf = ca.issue(&super::certs::LeafSpec::new(["127.0.0.1", "localhost"]));
        let rx = std::sync::Arc::new(Ingestion::default());
        let app = rx.router();
        let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let listener = TlsListener {
            inner,
            acceptor: tokio_rustls::TlsAcceptor::from(leaf.server_config(&[], &[b"http/1.1"])),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        (rx, addr)
    }
}

struct TlsListener {
    inner: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.inner.accept().await else {
                continue;
            };
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

fn gunzip(headers: &axum::http::HeaderMap, body: &[u8]) -> Vec<serde_json::Value> {
    let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).unwrap();
        out
    } else {
        body.to_vec()
    };
    serde_json::from_slice(&raw).unwrap_or_default()
}

/// Only a guard against hangs, never a speed claim: an export that blocks the run
/// would block past any reasonable bound, and this turns that into a clear failure.
pub async fn no_hang<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not complete: export blocked it"))
}
