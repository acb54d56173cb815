//! `routeproof serve` as the Functions host runs it: a child process with the host's
//! environment, polled for readiness, invoked, then stopped. Checks what the host relies
//! on: readiness, JSON logs on stdout, nothing on stderr but real problems, one-line
//! fatal errors with a non-zero exit, and never exit 0 under the host.

use crate::support;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::host::{Caller, Host};

const BIN: &str = env!("CARGO_BIN_EXE_routeproof");
const IID: &str = "c0ffee00-1a7b-4e0c-9f1e-0d2c3b4a5f60";

pub(super) fn free_port() -> u16 {
    // As the host does it: bind port 0, read it, close it, hand it over.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The child's environment is only what the test gives it (plus the host's variables).
pub(super) fn serve(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("serve")
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

pub(super) struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Waits for the child (on a blocking thread) and collects its output.
pub(super) async fn finish(mut child: Child) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let status = child.wait().unwrap();
        Output {
            code: status.code(),
            stdout: t_out.join().unwrap(),
            stderr: t_err.join().unwrap(),
        }
    })
    .await
    .unwrap()
}

pub(super) fn sigterm(child: &Child) {
    // SAFETY: sends a signal to a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
}

pub(super) fn write_config(dir: &Path, open: SocketAddr) -> String {
    let path = dir.join("routeproof.toml");
    std::fs::write(
        &path,
        format!(
            "[engine]\ndns_servers = [\"127.0.0.1:9\"]\ntcp_settle = \"0s\"\n\n[[targets]]\nname = \"api\"\ntarget = \"tcp://127.0.0.1:{}\"\n",
            open.port()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn under_the_host_it_becomes_ready_serves_logs_json_and_never_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = write_config(dir.path(), open.local_addr().unwrap());
    // host.json in the app root caps the timer budget under functionTimeout.
    std::fs::write(
        dir.path().join("host.json"),
        r#"{"version":"2.0","functionTimeout":"00:00:30"}"#,
    )
    .unwrap();
    let port = free_port();
    let child = serve(
        &[],
        &[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            ("FUNCTIONS_HTTPWORKER_PORT", port.to_string()),
            (
                "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
                "7f6c2f7e-0000-4000-8000-000000000001".into(),
            ),
            ("FUNCTIONS_APP_ROOT_PATH", dir.path().display().to_string()),
            ("ROUTEPROOF_CONFIG", config),
            ("ROUTEPROOF_SCHEDULE", "0 */5 * * * *".into()),
        ],
    )
    .spawn()
    .unwrap();
    let host = Host::new(SocketAddr::from(([127, 0, 0, 1], port)));
    let (ready, _) = host.wait_ready().await;
    assert_eq!(ready.status, 200);
    let r = host
        .forward(&Caller::get("/api/probe?code=SECRETKEY"), IID, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["targets"][0]["name"], "api");
    assert_eq!(r.json()["deadline_ms"], 20000.0, "the HTTP budget: 20 s");
    let (_, timer) = host
        .timer(
            "scheduled",
            "timer",
            support::host::TimerStatus::Steady,
            IID,
        )
        .await;
    let (logs, ..) = timer.succeeded();
    assert_eq!(logs[0], "routeproof timer: 1 targets, 1 ok, 0 failed");

    sigterm(&child);
    let out = finish(child).await;
    assert_eq!(
        out.code,
        Some(143),
        "under the host a stop is never exit 0; stderr: {}",
        out.stderr
    );
    assert_eq!(out.stderr, "", "nothing on stderr but real errors");

    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect();
    let serving = lines
        .iter()
        .find(|l| l["message"] == "routeproof serving")
        .expect("start-up line");
    assert_eq!(serving["listen"], format!("127.0.0.1:{port}"));
    assert_eq!(serving["targets"], 1);
    assert_eq!(serving["http_deadline_ms"], 20000);
    assert_eq!(
        serving["timer_deadline_ms"], 20000,
        "functionTimeout 30 s less the 10 s margin"
    );
    let answered = lines
        .iter()
        .find(|l| l["message"] == "request answered" && l["path"] == "/api/probe")
        .expect("access log line");
    assert_eq!(answered["status"], 200);
    assert_eq!(
        answered["span"]["invocation_id"], IID,
        "the request span carries the invocation id"
    );
    assert_eq!(answered["span"]["mode"], "forward");
    assert!(
        !out.stdout.contains("SECRETKEY"),
        "the function key is never logged"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "scheduled run finished" && l["ok"] == true)
    );
}

#[tokio::test]
async fn standalone_port_serves_and_sigterm_is_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = write_config(dir.path(), open.local_addr().unwrap());
    let port = free_port();
    let child = serve(&["--port", &port.to_string(), "--config", &config], &[])
        .spawn()
        .unwrap();
    let host = Host::new(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(host.wait_ready().await.0.status, 200);
    let health = host.forward(&Caller::get("/api/health"), IID, None).await;
    assert_eq!(health.json()["status"], "ok");
    sigterm(&child);
    let out = finish(child).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
}

#[tokio::test]
async fn a_missing_schedule_setting_is_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = write_config(dir.path(), open.local_addr().unwrap());
    let port = free_port();
    let child = serve(
        &[],
        &[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            ("ROUTEPROOF_CONFIG", config),
        ],
    )
    .spawn()
    .unwrap();
    let host = Host::new(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(host.wait_ready().await.0.status, 200);
    // A request through the real server: start-up, and so the warning, is over by then
    // (the early loop answers readiness before it; a SIGTERM then is the default action).
    let health = host.forward(&Caller::get("/api/health"), IID, None).await;
    assert_eq!(health.status, 200);
    sigterm(&child);
    let out = finish(child).await;
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    // The host logs a stderr line containing "warn" as a warning, not an error.
    assert!(
        lines[0].contains("warning") && lines[0].contains("ROUTEPROOF_SCHEDULE"),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn fatal_start_up_errors_exit_2_with_one_stderr_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[engine]\nconcurrency = 0\n").unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[engine]\ndeadlin = \"5s\"\n").unwrap();
    let good = write_config(dir.path(), "127.0.0.1:9".parse().unwrap());
    let port = || free_port().to_string();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", port()),
                ("ROUTEPROOF_CONFIG", bad.display().to_string()),
            ],
            "config.invalid: `engine.concurrency`: 0 is outside 1..=4096",
        ),
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", port()),
                ("ROUTEPROOF_CONFIG", typo.display().to_string()),
            ],
            "unknown field `deadlin`",
        ),
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", port()),
                (
                    "ROUTEPROOF_CONFIG",
                    dir.path().join("nope.toml").display().to_string(),
                ),
            ],
            "cannot read",
        ),
        (
            vec![("ROUTEPROOF_CONFIG", good.clone())],
            "no port: the Functions host sets FUNCTIONS_CUSTOMHANDLER_PORT",
        ),
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "http".into()),
                ("ROUTEPROOF_CONFIG", good.clone()),
            ],
            "is not a port number",
        ),
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", port()),
                ("ROUTEPROOF_CONFIG", good.clone()),
                ("ROUTEPROOF_ALLOW_ADHOC", "true".into()),
            ],
            "allow-list",
        ),
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", port()),
                ("ROUTEPROOF_CONFIG", good.clone()),
                ("ROUTEPROOF_HTTP_DEADLINE", "soon".into()),
            ],
            "ROUTEPROOF_HTTP_DEADLINE",
        ),
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", port()),
                ("ROUTEPROOF_CONFIG", good.clone()),
                ("ROUTEPROOF_TIMER_DEADLINE", "later".into()),
            ],
            "ROUTEPROOF_TIMER_DEADLINE",
        ),
    ];
    for (env, want) in cases {
        let out = finish(serve(&[], &env).spawn().unwrap()).await;
        assert_eq!(out.code, Some(2), "{env:?}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "one line for the host's crash message: {:?}",
            out.stderr
        );
        assert!(lines[0].starts_with("routeproof serve: "), "{}", lines[0]);
        assert!(
            lines[0].contains(want),
            "{env:?}: got {:?}, want {want:?}",
            lines[0]
        );
    }
    // A port someone else holds: cannot listen, non-zero.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().port().to_string();
    let out = finish(
        serve(&["--port", &taken, "--config", &good], &[])
            .spawn()
            .unwrap(),
    )
    .await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("cannot listen on 127.0.0.1:"),
        "{}",
        out.stderr
    );
}

/// What `serve` does while its runtime starts (src/handler/early.rs): a readiness poll
/// is answered from the socket; a probe request that came as early is kept, unread,
/// and served by the real server once it runs, byte for byte as if it had just arrived.
#[tokio::test]
async fn connections_accepted_before_the_runtime_are_answered_or_served_later() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut poll = std::net::TcpStream::connect(addr).unwrap();
    poll.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut health = std::net::TcpStream::connect(addr).unwrap();
    health
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();

    let calls = std::cell::Cell::new(0);
    let kept = routeproof::handler::early::answer_until(&listener, || {
        calls.set(calls.get() + 1);
        calls.get() > 100
    });
    let mut ready = String::new();
    poll.read_to_string(&mut ready).unwrap();
    assert!(ready.starts_with("HTTP/1.1 200 OK\r\n"), "{ready}");
    assert!(ready.ends_with("\r\n\r\nready\n"), "{ready}");
    assert_eq!(
        kept.len(),
        1,
        "the health request waits for the real server"
    );

    let cfg = routeproof::config::parse("", &|_| None).unwrap();
    let state = routeproof::handler::State::new(cfg, Default::default(), &|_| None).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(routeproof::handler::server::run_with(
        listener,
        kept,
        state,
        std::future::pending(),
    ));
    let reply = tokio::task::spawn_blocking(move || {
        health
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut s = String::new();
        health.read_to_string(&mut s).map(|_| s)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.contains("\"service\":\"routeproof\""),
        "health body: {reply}"
    );
    // And the server still accepts new connections after the kept one.
    let (resp, attempts) = Host::new(addr).wait_ready().await;
    assert_eq!((resp.status, attempts), (200, 1));
}
